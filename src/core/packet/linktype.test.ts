import {describe, expect, it} from 'vitest'
import {LINKTYPE, isSupportedLinktype, linktypeName} from './linktype.js'

describe('linktype', () => {
  it('has the tcpdump.org LINKTYPE_ values', () => {
    expect(LINKTYPE).toEqual({NULL: 0, ETHERNET: 1, RAW: 101, LOOP: 108, LINUX_SLL: 113, IPV4: 228, IPV6: 229, LINUX_SLL2: 276})
  })

  it('names and support', () => {
    expect(linktypeName(113)).toBe('LINUX_SLL')
    expect(linktypeName(276)).toBe('LINUX_SLL2')
    expect(linktypeName(12)).toBe('UNKNOWN(12)')
    for (const v of Object.values(LINKTYPE)) expect(isSupportedLinktype(v)).toBe(true)
    expect(isSupportedLinktype(12)).toBe(false) // DLT_RAW on some BSDs, but not a LINKTYPE_ value we take
    expect(isSupportedLinktype(-1)).toBe(false)
    expect(isSupportedLinktype(Number.NaN)).toBe(false)
  })
})
