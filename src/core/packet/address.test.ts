import {isIP} from 'node:net'
import fc from 'fast-check'
import {describe, expect, it} from 'vitest'
import {formatIp, formatMac, parseIp, parseMac} from './address.js'

describe('formatIp / parseIp', () => {
  it('RFC 5952 examples', () => {
    const cases: [string, string][] = [
      ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of two equal runs
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
      ['2001:DB8::AAAA', '2001:db8::aaaa'],
      ['0:0:0:0:0:0:0:0', '::'],
      ['0:0:0:0:0:0:0:1', '::1'],
      ['1:0:0:0:0:0:0:0', '1::'],
      ['2001:db8:0:0:0:1:0:0', '2001:db8::1:0:0'],
      ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
      ['fe80::3074:17d5:2052:c324', 'fe80::3074:17d5:2052:c324'],
    ]
    for (const [input, out] of cases) {
      const b = parseIp(input)
      expect(b, input).not.toBeNull()
      expect(formatIp(b!)).toBe(out)
    }
    expect(formatIp(new Uint8Array([192, 168, 0, 255]))).toBe('192.168.0.255')
    expect(formatIp(new Uint8Array(3))).toBe('')
  })

  it('rejects malformed text', () => {
    for (const s of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1..2.3', 'a.b.c.d', '1.2.3.4 ',
      ':', ':::', '1:2:3:4:5:6:7:8:9', '1::2::3', '12345::', 'g::', '1:2:3:4:5:6:7', '::1.2.3', '1:', ':1']) {
      expect(parseIp(s), s).toBeNull()
    }
  })

  it('IPv6 text matches the WHATWG URL serializer (same compression rule) and round-trips', () => {
    fc.assert(fc.property(fc.uint8Array({minLength: 16, maxLength: 16}), fc.integer({min: 0, max: 255}), (b, z) => {
      // zero some groups so runs of zeros are common
      for (let g = 0; g < 8; g++) if ((z >> g) & 1) b[2 * g] = b[2 * g + 1] = 0
      const s = formatIp(b)
      expect(isIP(s)).toBe(6)
      expect(Array.from(parseIp(s)!)).toEqual(Array.from(b))
      const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff
      if (!mapped) expect(s).toBe(new URL(`http://[${s}]/`).hostname.slice(1, -1))
    }), {numRuns: 2000})
  })

  it('IPv4 round-trips', () => {
    fc.assert(fc.property(fc.uint8Array({minLength: 4, maxLength: 4}), (b) => {
      const s = formatIp(b)
      expect(isIP(s)).toBe(4)
      expect(Array.from(parseIp(s)!)).toEqual(Array.from(b))
    }), {numRuns: 500})
  })

  it('parseIp accepts what node:net accepts for generated IPv6 text', () => {
    fc.assert(fc.property(fc.ipV6(), (s) => {
      const b = parseIp(s)
      expect(b).not.toBeNull()
      // canonical forms agree
      expect(formatIp(b!)).toBe(formatIp(parseIp(formatIp(b!))!))
    }), {numRuns: 1000})
  })

  it('MAC addresses', () => {
    expect(formatMac(parseMac('00:1B:17:00:14:30')!)).toBe('00:1b:17:00:14:30')
    expect(parseMac('00-1b-17-00-14-30')).toEqual(new Uint8Array([0, 0x1b, 0x17, 0, 0x14, 0x30]))
    expect(parseMac('00:1b:17:00:14')).toBeNull()
    expect(parseMac('zz:1b:17:00:14:30')).toBeNull()
  })
})
