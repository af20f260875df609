import {describe, expect, it} from 'vitest'
import {execFileSync} from 'node:child_process'
import fs from 'node:fs'
import fc from 'fast-check'
import {fuzzRuns} from '../line/testing.js'
import {decompressedLength, XCA_CORRUPT, XCA_INCOMPLETE, XCA_LZ77, XCA_LZNT1, XCA_UNSUPPORTED} from './xca.js'

const hex = (h: string) => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ''), 'hex'))
const BIG = 0xffffffff

/** Samba's Plain LZ77 compressor (lzxpress_compress in samba-libs), an implementation independent of ours */
const SAMBA_LIB = '/usr/lib/x86_64-linux-gnu/samba/libndr-samba-samba4.so.0'
function sambaCompress(inputs: Uint8Array[]): Uint8Array[] {
  const py = `
import ctypes, json, sys
f = ctypes.CDLL(${JSON.stringify(SAMBA_LIB)}).lzxpress_compress
f.restype = ctypes.c_ssize_t
f.argtypes = [ctypes.c_char_p, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_uint32]
out = []
for h in json.load(sys.stdin):
    data = bytes.fromhex(h)
    buf = ctypes.create_string_buffer(len(data) * 2 + 64)
    n = f(data, len(data), buf, len(buf))
    assert n >= 0, n
    out.append(buf.raw[:n].hex())
json.dump(out, sys.stdout)
`
  const out = execFileSync('python3', ['-c', py], {input: JSON.stringify(inputs.map((b) => Buffer.from(b).toString('hex'))), maxBuffer: 64 << 20})
  return (JSON.parse(out.toString()) as string[]).map(hex)
}

describe('decompressedLength: Plain LZ77 ([MS-XCA] 2.4)', () => {
  it('the specification\'s examples (3.1, 3.2)', () => {
    expect(decompressedLength(XCA_LZ77, hex('3f000000' + Buffer.from('abcdefghijklmnopqrstuvwxyz').toString('hex')), BIG)).toBe(26)
    // 'abc' x 100: three literals and one match of 297 bytes (half byte 15, byte 255, 16-bit 294)
    expect(decompressedLength(XCA_LZ77, hex('ffffff1f 616263 1700 0f ff 2601'), BIG)).toBe(300)
  })

  it('counts up to the limit only; corrupt data is not sized', () => {
    expect(decompressedLength(XCA_LZ77, hex('ffffff1f 616263 1700 0f ff 2601'), 100)).toBe(100)
    // a match reaching back before the start of the output
    expect(decompressedLength(XCA_LZ77, hex('ffffff1f 616263 2000'), BIG)).toBe(XCA_CORRUPT)
    // a match cut short, a flag word cut short
    expect(decompressedLength(XCA_LZ77, hex('ffffff1f 616263 17'), BIG)).toBe(XCA_CORRUPT)
    expect(decompressedLength(XCA_LZ77, hex('ffffff1f 616263 1700 0f ff 26'), BIG)).toBe(XCA_CORRUPT)
    expect(decompressedLength(XCA_LZ77, hex('ffff'), BIG)).toBe(XCA_CORRUPT)
    // the input ending between tokens ends the data
    expect(decompressedLength(XCA_LZ77, hex('00000000 6162'), BIG)).toBe(2)
    expect(decompressedLength(XCA_LZ77, hex(''), BIG)).toBe(0)
  })

  it.skipIf(!fs.existsSync(SAMBA_LIB))('whatever Samba\'s compressor makes of any input sizes back to the input\'s length (property)', () => {
    const sample = fc.sample(fc.oneof(
      fc.uint8Array({maxLength: 3000}),
      // repetitive data: long matches, extended lengths in half bytes, bytes, 16 and 32 bits
      fc.tuple(fc.uint8Array({minLength: 1, maxLength: 40}), fc.integer({min: 1, max: 3000}), fc.uint8Array({maxLength: 50}))
        .map(([unit, times, tail]) => Uint8Array.from([...Array.from({length: times}, () => [...unit]).flat().slice(0, 70_000), ...tail])),
    ), fuzzRuns(200))
    const compressed = sambaCompress(sample)
    sample.forEach((input, i) => {
      expect(decompressedLength(XCA_LZ77, compressed[i], BIG)).toBe(input.length)
      expect(decompressedLength(XCA_LZ77, compressed[i], input.length + 1)).toBe(input.length)
      if (input.length > 0) expect(decompressedLength(XCA_LZ77, compressed[i], input.length - 1)).toBe(input.length - 1)
      // a first part never gives a wrong length: the right one (capped) or incomplete
      const cut = Math.floor(compressed[i].length / 2)
      const limit = Math.floor(input.length / 3)
      const part = decompressedLength(XCA_LZ77, compressed[i].subarray(0, cut), limit, false)
      expect(part === XCA_INCOMPLETE || part === limit).toBe(true)
    })
  })
})

describe('decompressedLength: LZNT1 ([MS-XCA] 2.5)', () => {
  // "Hello world": one compressed chunk (header 0xb00c: 13 bytes), two flag bytes, all literals
  const HELLO = hex('0cb0 00 48656c6c6f20776f 00 726c64')
  // 'abc' then a back-reference of 297 bytes at displacement 3 (at 3 bytes out: 4 displacement
  // bits, 12 length bits: token (3-1) << 12 | (297-3) = 0x2126): chunk of 6 bytes, header 0xb005
  const ABC300 = hex('05b0 08 616263 2621')

  it('literal and back-reference chunks', () => {
    expect(decompressedLength(XCA_LZNT1, HELLO, BIG)).toBe(11)
    expect(decompressedLength(XCA_LZNT1, ABC300, BIG)).toBe(300)
    expect(decompressedLength(XCA_LZNT1, ABC300, 250)).toBe(250)
    // an uncompressed chunk (bit 15 clear): its bytes as they are
    expect(decompressedLength(XCA_LZNT1, hex('0330 61626364'), BIG)).toBe(4)
    // a zero header ends the buffer; what follows is not read
    expect(decompressedLength(XCA_LZNT1, Uint8Array.from([...HELLO, 0, 0, ...ABC300]), BIG)).toBe(11)
  })

  it('a chunk followed by another counts as a whole 4096 bytes', () => {
    expect(decompressedLength(XCA_LZNT1, Uint8Array.from([...HELLO, ...ABC300]), BIG)).toBe(4096 + 300)
  })

  it('the displacement field widens as the chunk fills: 5 bits after 16 bytes out', () => {
    // 17 literals (flags 0x00, 0x00, then 0x02: one literal, then a reference), then at 17 bytes
    // out a reference with 5 displacement bits, 11 length bits: displacement 17, length 10
    const lit = Buffer.from('abcdefghijklmnopq').toString('hex')
    const token = ((17 - 1) << 11) | (10 - 3)
    const body = hex(`00 ${lit.slice(0, 16)} 00 ${lit.slice(16, 32)} 02 ${lit.slice(32)} ${(token & 0xff).toString(16).padStart(2, '0')}${(token >> 8).toString(16).padStart(2, '0')}`)
    const chunk = Uint8Array.from([(body.length - 1) & 0xff, 0xb0 | ((body.length - 1) >> 8), ...body])
    expect(decompressedLength(XCA_LZNT1, chunk, BIG)).toBe(27)
    // 8 bytes out: 4 displacement bits; displacement 9 (token 0x8000) reaches before the start
    expect(decompressedLength(XCA_LZNT1, hex(`0bb0 00 ${lit.slice(0, 16)} 01 0080`), BIG)).toBe(XCA_CORRUPT)
    expect(decompressedLength(XCA_LZNT1, hex(`0bb0 00 ${lit.slice(0, 16)} 01 0070`), BIG)).toBe(8 + 3)
  })

  it('corrupt chunks are not sized', () => {
    // a reference before anything is out
    expect(decompressedLength(XCA_LZNT1, hex('02b0 01 0010'), BIG)).toBe(XCA_CORRUPT)
    // a chunk longer than the data
    expect(decompressedLength(XCA_LZNT1, hex('0cb0 00 4865'), BIG)).toBe(XCA_CORRUPT)
    // a reference cut in half
    expect(decompressedLength(XCA_LZNT1, hex('04b0 08 616263 26'), BIG)).toBe(XCA_CORRUPT)
  })

  it('of a first part: sized when the part decides (end marker, limit), else incomplete', () => {
    const part = (d: Uint8Array, limit = BIG) => decompressedLength(XCA_LZNT1, d, limit, false)
    expect(part(Uint8Array.from([...HELLO, 0, 0, 0x41, 0x42]))).toBe(11)
    expect(part(HELLO)).toBe(XCA_INCOMPLETE)
    expect(part(HELLO, 11)).toBe(11)
    expect(part(HELLO.subarray(0, 9))).toBe(XCA_INCOMPLETE)
    expect(part(Uint8Array.from([...HELLO, 0x05]))).toBe(XCA_INCOMPLETE)
    // a chunk followed by the start of another: 4096, then unknown
    expect(part(Uint8Array.from([...HELLO, ...ABC300.subarray(0, 4)]))).toBe(XCA_INCOMPLETE)
    expect(part(Uint8Array.from([...HELLO, ...ABC300.subarray(0, 4)]), 4096)).toBe(4096)
    const lz = (d: Uint8Array, limit = BIG) => decompressedLength(XCA_LZ77, d, limit, false)
    const abc = hex('ffffff1f 616263 1700 0f ff 2601')
    expect(lz(abc)).toBe(XCA_INCOMPLETE)
    expect(lz(abc, 300)).toBe(300)
    expect(lz(abc.subarray(0, 9), 100)).toBe(XCA_INCOMPLETE)
    expect(lz(abc.subarray(0, 9), 3)).toBe(3)
  })

  it('LZ77+Huffman, Pattern_V1 and unknown algorithms are not sized', () => {
    for (const alg of [0, 3, 4, 99]) expect(decompressedLength(alg, HELLO, BIG)).toBe(XCA_UNSUPPORTED)
  })
})

describe('decompressedLength: any bytes', () => {
  it('never throws, never counts past the limit, and is done in one pass (property)', () => {
    fc.assert(fc.property(fc.constantFrom(XCA_LZNT1, XCA_LZ77), fc.uint8Array({maxLength: 2000}), fc.integer({min: 0, max: 0xffffffff}), (alg, data, limit) => {
      const n = decompressedLength(alg, data, limit)
      expect(n === XCA_CORRUPT || (n >= 0 && n <= limit)).toBe(true)
    }), {numRuns: fuzzRuns(500)})
    // a literal, then matches with 32-bit lengths (pairs share a half byte): the count goes on past 2^32
    const pair = [0x07, 0x00, 0xff, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff]
    const long = Uint8Array.from([0xff, 0xff, 0xff, 0x7f, 0x61, ...Array.from({length: 15}, () => pair).flat()])
    expect(decompressedLength(XCA_LZ77, long, Number.MAX_SAFE_INTEGER)).toBe(1 + 30 * (0xffffffff + 3))
  })
})

