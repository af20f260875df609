import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {latin1, stripTelnet} from './text.js'

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

describe('stripTelnet', () => {
  const strip = (s: string) => Buffer.from(stripTelnet(new Uint8Array(Buffer.from(s, 'latin1')))).toString('latin1')
  it('removes Telnet commands and keeps IAC IAC as one data byte', () => {
    expect(strip('SI\xff\xf4TE CPFR')).toBe('SITE CPFR')
    expect(strip('A\xff\xfd\x01B\xff\xfb\x03C')).toBe('ABC')
    expect(strip('x\xff\xfa\x18\x01abc\xff\xf0y')).toBe('xy')
    expect(strip('a\xff\xffb')).toBe('a\xffb')
    expect(strip('a\xff')).toBe('a')
    expect(strip('a\xff\xfa\x18 unterminated')).toBe('a')
  })
  it('returns the line itself when it holds no IAC; never grows; no IAC survives except as data', () => {
    const plain = new Uint8Array(Buffer.from('USER joe'))
    expect(stripTelnet(plain)).toBe(plain)
    fc.assert(fc.property(fc.uint8Array({maxLength: 64}).map((a) => a.map((x) => (x % 3 === 0 ? 0xff : x))), (line) => {
      const out = stripTelnet(line)
      expect(out.length).toBeLessThanOrEqual(line.length)
      // stripping again only turns the IAC IAC data bytes' survivors into commands: bytes that
      // were not 0xff come through in order
      const kept = [...line].filter((x) => x !== 0xff)
      expect([...out].filter((x) => x !== 0xff).every((x) => kept.includes(x))).toBe(true)
    }))
  })
})
