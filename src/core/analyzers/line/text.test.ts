import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {latin1} from './text.js'

describe('latin1', () => {
  it('equals Buffer latin1 decoding of the same range, for every length and offset, on views too', () => {
    fc.assert(fc.property(fc.uint8Array({maxLength: 300}), fc.nat(40), fc.nat(300), fc.nat(300), (bytes, pad, a, b) => {
      // a view that does not start at its buffer's first byte
      const backing = new Uint8Array(pad + bytes.length)
      backing.set(bytes, pad)
      const view = backing.subarray(pad)
      const from = Math.min(a, b, bytes.length)
      const to = Math.min(Math.max(a, b), bytes.length)
      expect(latin1(view, from, to)).toBe(Buffer.from(bytes.subarray(from, to)).toString('latin1'))
      expect(latin1(view)).toBe(Buffer.from(bytes).toString('latin1'))
    }), {numRuns: 500})
  })

  it('keeps every byte value as one char', () => {
    const all = Uint8Array.from({length: 256}, (_, i) => i)
    const s = latin1(all)
    expect(s.length).toBe(256)
    expect([...s].map((c) => c.charCodeAt(0))).toEqual([...all])
    expect(latin1(all, 250, 240)).toBe('')
  })
})
