import {describe, it, expect, beforeAll, afterAll} from 'vitest'
import {existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {gzipSync} from 'node:zlib'
import fc from 'fast-check'
import {CaptureError, openCapture, openCaptureBytes, readCaptureFile, MAX_RECORD_BYTES} from './reader.js'
import type {AnomalyReport} from '../events/anomaly.js'
import type {CaptureReader, CaptureRecord} from './reader.js'
import {PcapWriter, encodePcap, encodePcapng} from './writer.js'
import {benchRead} from './reader.bench.js'
import type {PcapngBlockInput} from './writer.js'

const corpusDir = fileURLToPath(new URL('../../../../shared/corpus/pcaps/', import.meta.url))
const manifestPath = fileURLToPath(new URL('../../../../shared/corpus/MANIFEST.tsv', import.meta.url))
const haveCorpus = existsSync(corpusDir) && existsSync(manifestPath)

interface Got {tsUs: number; linktype: number; interfaceId: number; data: number[]; capturedLength: number; originalLength: number}

function snap(r: CaptureRecord): Got {
  return {
    tsUs: r.tsUs, linktype: r.linktype, interfaceId: r.interfaceId, data: Array.from(r.data),
    capturedLength: r.capturedLength, originalLength: r.originalLength,
  }
}

/** Reads to the end; returns the records and the error (if any) that ended the read. */
function drain(r: CaptureReader): {recs: Got[]; error: unknown} {
  const recs: Got[] = []
  try {
    for (let x = r.next(); x !== null; x = r.next()) recs.push(snap(x))
    return {recs, error: null}
  } catch (error) {
    return {recs, error}
  }
}

function bytes(...xs: number[]): Uint8Array {
  return Uint8Array.from(xs)
}

function pkt(n: number, seed = 0): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + 1) & 0xff
  return b
}

function expectCaptureError(fn: () => unknown, code: string, re?: RegExp): CaptureError {
  let caught: unknown
  try {
    fn()
  } catch (e) {
    caught = e
  }
  expect(caught).toBeInstanceOf(CaptureError)
  const e = caught as CaptureError
  expect(e.code).toBe(code)
  if (re) expect(e.message).toMatch(re)
  expect(e.message).not.toContain('\n')
  return e
}

let tmp: string
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'pp-capture-'))
})
afterAll(() => {
  rmSync(tmp, {recursive: true, force: true})
})

// -------------------------------------------------------------------------------------------
describe.skipIf(!haveCorpus)('real captures from the corpus', () => {
  const linktypes: Record<string, number[]> = {ether: [1], 'linux-sll': [113], null: [0], rawip: [101], rawip4: [228, 101]}
  const rows = haveCorpus
    ? readFileSync(manifestPath, 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t'))
    : []

  it('the manifest lists every file in the folder', () => {
    const files = readdirSync(corpusDir).sort()
    expect(rows.map((r) => r[0]).sort()).toEqual(files)
    expect(rows.length).toBeGreaterThan(10)
  })

  for (const row of rows) {
    const file = row[0]
    const notes = row[row.length - 1]
    it(`${file}: packet count, link type and format match the manifest`, () => {
      const packets = Number(/packets=(\d+)/.exec(notes)?.[1])
      const size = Number(/bytes=(\d+)/.exec(notes)?.[1])
      const format = /format=(\w+)/.exec(notes)?.[1]
      const lt = /linktype=([\w-]+)/.exec(notes)?.[1] ?? ''
      const r = openCapture(join(corpusDir, file))
      try {
        expect(r.format).toBe(format)
        expect(r.size).toBe(size)
        let n = 0
        let last = 0
        const seenLinktypes = new Set<number>()
        for (let rec = r.next(); rec !== null; rec = r.next()) {
          n++
          seenLinktypes.add(rec.linktype)
          expect(rec.data.length).toBe(rec.capturedLength)
          expect(rec.capturedLength).toBeLessThanOrEqual(rec.originalLength)
          expect(Number.isSafeInteger(rec.tsUs)).toBe(true)
          last = rec.tsUs
        }
        expect(n).toBe(packets)
        expect(r.bytesRead).toBe(size)
        expect(last).toBeGreaterThan(Date.UTC(1995, 0, 1) * 1000)
        expect([...seenLinktypes]).toHaveLength(1)
        expect(linktypes[lt]).toContain([...seenLinktypes][0])
        expect(r.next()).toBeNull()
      } finally {
        r.close()
      }
    })
  }

  it('timestamps and lengths agree with tshark (frame.time_epoch, frame.cap_len)', () => {
    const first = (f: string, k = 0): CaptureRecord => {
      const r = openCapture(join(corpusDir, f))
      let rec = r.next()
      for (let i = 0; i < k; i++) rec = r.next()
      return rec as CaptureRecord
    }
    // pcapng, if_tsresol = 9: 1730145002.900383409 -> truncated to microseconds
    expect(first('sqli_dvwa_or_union_http.pcapng').tsUs).toBe(1730145002900383)
    expect(first('sqli_dvwa_or_union_http.pcapng', 1).tsUs).toBe(1730145002901314)
    expect(first('benign_http_webdav_methods.pcapng').tsUs).toBe(1677169246853624)
    expect(first('benign_http_webdav_methods.pcapng', 1).capturedLength).toBe(58)
    expect(first('http_smuggling_te_cl_desync.pcap').tsUs).toBe(1780352611276246)
    expect(first('http_smuggling_te_cl_desync.pcap').linktype).toBe(228)
    expect(first('benign_ftp_anonymous_dlt_null.pcap', 1).tsUs).toBe(1612510490000001)
    expect(first('benign_ftp_anonymous_dlt_null.pcap', 1).capturedLength).toBe(52)
    let last = 0
    for (const rec of readCaptureFile(join(corpusDir, 'sqli_dvwa_or_union_http.pcapng'))) last = rec.tsUs
    expect(last).toBe(1730145073257679)
  })

  it('a tiny read buffer (64-byte chunks, growing by doubling) gives the same records', () => {
    for (const f of ['benign_http_pipelined.pcap', 'sqli_dvwa_or_union_http.pcapng', 'benign_tls12_rawip.pcap']) {
      const a = drain(openCapture(join(corpusDir, f)))
      const small = openCapture(join(corpusDir, f), {chunkBytes: 64})
      const b = drain(small)
      expect(a.error).toBeNull()
      expect(b.error).toBeNull()
      expect(b.recs).toEqual(a.recs)
      expect(small.bufferBytes).toBeLessThanOrEqual(MAX_RECORD_BYTES * 16)
    }
  })

  it('benchRead counts every packet and captured byte', async () => {
    const res = await benchRead(join(corpusDir, 'benign_http_get.pcap'))
    // 14 packets; file 6335 bytes = 24-byte header + 14 * 16-byte record headers + data
    expect(res.packets).toBe(14)
    expect(res.bytes).toBe(6335 - 24 - 14 * 16)
    expect(res.seconds).toBeGreaterThan(0)
  })

  it('record data is a view of one reused buffer (no copy per packet)', () => {
    const r = openCapture(join(corpusDir, 'benign_http_get.pcap'))
    const a = r.next() as CaptureRecord
    const bufA = a.data.buffer
    const b = r.next() as CaptureRecord
    expect(b).toBe(a)
    expect(b.data.buffer).toBe(bufA)
    r.close()
  })
})

// -------------------------------------------------------------------------------------------
describe('pcap round trips', () => {
  const recs = [
    {tsUs: 1_700_000_000_123_456, data: pkt(60, 1)},
    {tsUs: 1_700_000_001_000_001, data: pkt(1514, 2), originalLength: 1514},
    {tsUs: 1_700_000_002_999_999, data: pkt(1, 3), originalLength: 9000},
  ]

  for (const nanos of [false, true]) {
    for (const bigEndian of [false, true]) {
      it(`encodePcap ${nanos ? 'nano' : 'micro'} ${bigEndian ? 'big' : 'little'}-endian reads back`, () => {
        const file = encodePcap(113, recs, {nanos, bigEndian})
        const r = openCaptureBytes(file, 'x.pcap')
        const {recs: got, error} = drain(r)
        expect(error).toBeNull()
        expect(got).toEqual(recs.map((x) => ({
          tsUs: x.tsUs, linktype: 113, interfaceId: 0, data: Array.from(x.data),
          capturedLength: x.data.length, originalLength: x.originalLength ?? x.data.length,
        })))
      })
    }
  }

  it('hand-crafted big-endian files (micro and nano magic) decode field by field', () => {
    const header = (magic: number[]): number[] => [
      ...magic, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
      0x10, 0x00, 0x00, 0x65, // FCS bits set in the top nibble; low 16 bits = 101 (raw IP)
    ]
    const record = [
      0x65, 0x53, 0xf1, 0x00, // 1700000000 s
      0x00, 0x01, 0xe2, 0x40, // 123456
      0, 0, 0, 4, 0, 0, 0, 5,
      0xde, 0xad, 0xbe, 0xef,
    ]
    const micro = openCaptureBytes(bytes(...header([0xa1, 0xb2, 0xc3, 0xd4]), ...record))
    expect(micro.format).toBe('pcap')
    const m = micro.next() as CaptureRecord
    expect(snap(m)).toEqual({
      tsUs: 1_700_000_000_123_456, linktype: 101, interfaceId: 0, data: [0xde, 0xad, 0xbe, 0xef],
      capturedLength: 4, originalLength: 5,
    })
    expect(micro.next()).toBeNull()
    const nano = openCaptureBytes(bytes(...header([0xa1, 0xb2, 0x3c, 0x4d]), ...record))
    expect((nano.next() as CaptureRecord).tsUs).toBe(1_700_000_000_000_123)
  })

  it('PcapWriter writes a file that reads back, cuts to snaplen, clamps bad timestamps', () => {
    const path = join(tmp, 'w.pcap')
    const w = PcapWriter.open(path, {linktype: 1, snaplen: 100, nanos: true, bufferBytes: 256})
    w.write(1_600_000_000_000_001, pkt(60))
    w.write(1_600_000_000_000_002, pkt(300), 300) // longer than snaplen and than the buffer
    for (let i = 0; i < 50; i++) w.write(1_600_000_001_000_000 + i, pkt(i + 1, i))
    w.write(-5, pkt(10))
    w.close()
    expect(w.clampedTimestamps).toBe(1)
    expect(readFileSync(path).length).toBe(w.bytes)
    const r = openCapture(path)
    expect(r.format).toBe('pcap')
    const {recs: got, error} = drain(r)
    expect(error).toBeNull()
    expect(got).toHaveLength(53)
    expect(got[0].tsUs).toBe(1_600_000_000_000_001)
    expect(got[1]).toMatchObject({capturedLength: 100, originalLength: 300, data: Array.from(pkt(300).subarray(0, 100))})
    expect(got[51]).toMatchObject({tsUs: 1_600_000_001_000_049, data: Array.from(pkt(50, 49))})
    expect(got[52].tsUs).toBe(0)
    expect(r.bytesRead).toBe(r.size)
  })

  it('PcapWriter reports an unwritable path as CaptureError io', () => {
    expectCaptureError(() => PcapWriter.open(join(tmp, 'no', 'such', 'dir.pcap'), {linktype: 1}), 'io', /ENOENT/)
  })
})

// -------------------------------------------------------------------------------------------
describe('pcapng', () => {
  it('two interfaces with different link types and if_tsresol, SPB, unknown blocks skipped', () => {
    const blocks: PcapngBlockInput[] = [
      {kind: 'raw', blockType: 4, body: bytes(1, 0, 4, 0, 10, 0, 0, 1, 0, 0, 0, 0)}, // NRB
      {kind: 'epb', interfaceId: 0, tsUs: 1_700_000_000_000_001, data: pkt(61, 1)},
      {kind: 'epb', interfaceId: 1, ts: 1_730_145_002_900_383_409n, data: pkt(42, 2), originalLength: 100},
      {kind: 'raw', blockType: 5, body: new Uint8Array(20)}, // ISB
      {kind: 'spb', data: pkt(33, 3)},
      {kind: 'raw', blockType: 0x40000bad, body: pkt(9)}, // custom block
      {kind: 'raw', blockType: 0x12345678, body: new Uint8Array(0)}, // unknown, empty body
      {kind: 'epb', interfaceId: 2, ts: (1_700_000_000n << 20n) + (1n << 19n), data: pkt(3, 4)},
    ]
    const file = encodePcapng([
      {linktype: 1},
      {linktype: 113, tsresol: 9, snaplen: 65535},
      {linktype: 228, tsresol: 0x80 | 20, tsoffset: 10},
    ], blocks)
    const r = openCaptureBytes(file, 'two.pcapng')
    expect(r.format).toBe('pcapng')
    const {recs: got, error} = drain(r)
    expect(error).toBeNull()
    expect(got.map((g) => [g.interfaceId, g.linktype, g.tsUs, g.capturedLength, g.originalLength])).toEqual([
      [0, 1, 1_700_000_000_000_001, 61, 61],
      [1, 113, 1_730_145_002_900_383, 42, 100],
      [0, 1, 1_730_145_002_900_383, 33, 33], // SPB: interface 0, last seen timestamp
      [2, 228, 1_700_000_010_500_000, 3, 3], // 2^-20 units, +10 s offset
    ])
    expect(got[2].data).toEqual(Array.from(pkt(33, 3)))
    expect(r.bytesRead).toBe(file.length)
  })

  it('several sections, each with its own byte order; interfaces reset per section', () => {
    const s1 = encodePcapng([{linktype: 1}, {linktype: 101}], [
      {kind: 'epb', interfaceId: 1, tsUs: 5_000_000, data: pkt(20)},
    ])
    const s2 = encodePcapng([{linktype: 113, tsresol: 3}], [
      {kind: 'epb', interfaceId: 0, tsUs: 7_000_000, data: pkt(21)},
      {kind: 'spb', data: pkt(5), originalLength: 5},
    ], {bigEndian: true})
    const s3 = encodePcapng([{linktype: 0}], [
      {kind: 'epb', interfaceId: 0, tsUs: 9_000_000, data: pkt(22)},
    ])
    const ok = drain(openCaptureBytes(Buffer.concat([s2, s1, s3])))
    expect(ok.error).toBeNull()
    expect(ok.recs.map((g) => [g.interfaceId, g.linktype, g.tsUs, g.capturedLength])).toEqual([
      [0, 113, 7_000_000, 21], [0, 113, 7_000_000, 5], [1, 101, 5_000_000, 20], [0, 0, 9_000_000, 22],
    ])
    // interface 1 existed in section 1 only: naming it in a later section is corrupt
    const s4 = encodePcapng([{linktype: 1}], [{kind: 'epb', interfaceId: 1, tsUs: 1, data: pkt(4)}], {bigEndian: true})
    const bad = drain(openCaptureBytes(Buffer.concat([s1, s4]), 'sec.pcapng'))
    expect(bad.recs).toHaveLength(1)
    expect(bad.error).toBeInstanceOf(CaptureError)
    expect((bad.error as CaptureError).code).toBe('corrupt')
    expect((bad.error as CaptureError).offset).toBe(s1.length + 28 + 20)
    expect((bad.error as CaptureError).message).toMatch(/^sec\.pcapng: enhanced packet block names an unknown interface at byte \d+ \(interface 1, section has 1\)$/)
  })

  it('reads the obsolete Packet Block (type 2)', () => {
    const body = Buffer.alloc(20 + 4)
    body.writeUInt16LE(0, 0) // interface
    body.writeUInt16LE(7, 2) // drops
    body.writeUInt32LE(0, 4)
    body.writeUInt32LE(1_234_567, 8)
    body.writeUInt32LE(3, 12)
    body.writeUInt32LE(3, 16)
    body.set([9, 8, 7], 20)
    const file = encodePcapng([{linktype: 1}], [{kind: 'raw', blockType: 2, body}])
    const got = drain(openCaptureBytes(file))
    expect(got.error).toBeNull()
    expect(got.recs).toEqual([{tsUs: 1_234_567, linktype: 1, interfaceId: 0, data: [9, 8, 7], capturedLength: 3, originalLength: 3}])
  })

  it('timestamps in any if_tsresol convert exactly (property, against BigInt arithmetic)', () => {
    const resols = [0, 1, 3, 6, 7, 9, 12, 15, 18, 0x80, 0x80 | 10, 0x80 | 20, 0x80 | 32, 0x80 | 40]
    fc.assert(fc.property(
      fc.constantFrom(...resols), fc.bigInt({min: 0n, max: (1n << 64n) - 1n}), fc.integer({min: -1000, max: 1000}),
      (tsresol, raw, offset) => {
        const units = (tsresol & 0x80) ? 1n << BigInt(tsresol & 0x7f) : 10n ** BigInt(tsresol)
        const expected = (raw * 1_000_000n) / units + BigInt(offset) * 1_000_000n
        fc.pre(expected >= 0n && expected < 2n ** 53n)
        const file = encodePcapng([{linktype: 1, tsresol, tsoffset: offset}], [{kind: 'epb', interfaceId: 0, ts: raw, data: pkt(1)}])
        const rec = openCaptureBytes(file).next() as CaptureRecord
        expect(rec.tsUs).toBe(Number(expected))
      },
    ), {numRuns: 300})
  })

  it('block length sanity and other corruption -> CaptureError corrupt', () => {
    const good = Buffer.from(encodePcapng([{linktype: 1}], [{kind: 'epb', interfaceId: 0, tsUs: 1, data: pkt(8)}]))
    const epbAt = 28 + 20
    const mut = (f: (b: Buffer) => void): Buffer => {
      const b = Buffer.from(good)
      f(b)
      return b
    }
    const cases: [string, Buffer, RegExp][] = [
      ['not a multiple of 4', mut((b) => b.writeUInt32LE(42, epbAt + 4)), /bad block length at byte 48/],
      ['shorter than 12', mut((b) => b.writeUInt32LE(8, epbAt + 4)), /bad block length/],
      ['trailer differs', mut((b) => b.writeUInt32LE(44, b.length - 4)), /trailer length mismatch at byte 48 \(leading 40, trailing 44\)/],
      ['caplen beyond block', mut((b) => b.writeUInt32LE(9, epbAt + 20)), /overruns its block/],
      ['unknown interface', mut((b) => b.writeUInt32LE(3, epbAt + 8)), /unknown interface/],
      ['version 2', mut((b) => b.writeUInt16LE(2, 12)), /unsupported pcapng version at byte 0/],
      ['IDB option overrun', Buffer.from(encodePcapng([{linktype: 1, tsresol: 9}], [])).fill(0xff, 28 + 18, 28 + 20), /option/],
    ]
    for (const [what, file, re] of cases) {
      const res = drain(openCaptureBytes(file, 'c.pcapng'))
      expect(res.error, what).toBeInstanceOf(CaptureError)
      expect((res.error as CaptureError).code, what).toBe('corrupt')
      expect((res.error as CaptureError).message, what).toMatch(re)
    }
    const spbFirst = encodePcapng([], [{kind: 'spb', data: pkt(4)}])
    expect((drain(openCaptureBytes(spbFirst)).error as CaptureError).code).toBe('corrupt')
    expect((drain(openCaptureBytes(Buffer.from(encodePcapng([{linktype: 1, snaplen: 4}], [
      {kind: 'epb', interfaceId: 0, tsUs: 1, data: pkt(8)},
    ])))).error as CaptureError).message).toMatch(/snaplen 4/)
  })

  it('a bad byte-order magic in the first section header is bad_magic', () => {
    const b = Buffer.from(encodePcapng([{linktype: 1}], []))
    b.writeUInt32LE(0x11223344, 8)
    expectCaptureError(() => openCaptureBytes(b), 'bad_magic', /byte-order magic/)
  })

  it('an unknown block larger than the block limit is skipped without reading it, trailer still checked', () => {
    const big = pkt(10_000)
    const file = encodePcapng([{linktype: 1}], [
      {kind: 'raw', blockType: 0x0bad, body: big},
      {kind: 'epb', interfaceId: 0, tsUs: 42, data: pkt(4)},
    ])
    const r = openCaptureBytes(file, 'big.pcapng', {maxBlockBytes: 256, chunkBytes: 128})
    const res = drain(r)
    expect(res.error).toBeNull()
    expect(res.recs.map((g) => g.tsUs)).toEqual([42])
    expect(r.bufferBytes).toBeLessThanOrEqual(256)
    const broken = Buffer.from(file)
    broken.writeUInt32LE(12, 48 + 12 + 10_000 - 4) // corrupt the big block's trailer
    const e = drain(openCaptureBytes(broken, 'big.pcapng', {maxBlockBytes: 256})).error as CaptureError
    expect(e.code).toBe('corrupt')
    expect(e.offset).toBe(48)
    // a KNOWN block over the limit is corrupt, not skipped
    const epbBig = encodePcapng([{linktype: 1}], [{kind: 'epb', interfaceId: 0, tsUs: 1, data: pkt(1000)}])
    expect((drain(openCaptureBytes(epbBig, 'x', {maxBlockBytes: 256})).error as CaptureError).message).toMatch(/block too large/)
  })
})

// -------------------------------------------------------------------------------------------
describe('truncation at every byte', () => {
  it('pcap: complete records come out, then truncated (or a clean end on a record boundary)', () => {
    const lens = [60, 1, 200, 17]
    const file = encodePcap(1, lens.map((n, i) => ({tsUs: 1e15 + i, data: pkt(n, i)})))
    const ends: number[] = []
    let o = 24
    for (const n of lens) ends.push((o += 16 + n))
    for (let cut = 0; cut <= file.length; cut++) {
      const part = file.subarray(0, cut)
      if (cut < 4) {
        expectCaptureError(() => openCaptureBytes(part, 'cut.pcap'), 'bad_magic', /^cut\.pcap: /)
        continue
      }
      if (cut < 24) {
        expectCaptureError(() => openCaptureBytes(part, 'cut.pcap'), 'truncated', /truncated pcap file header at byte 0/)
        continue
      }
      const r = openCaptureBytes(part, 'cut.pcap')
      const {recs: got, error} = drain(r)
      const complete = ends.filter((e) => e <= cut).length
      expect(got.map((g) => g.capturedLength)).toEqual(lens.slice(0, complete))
      const recStart = complete === 0 ? 24 : ends[complete - 1]
      if (recStart === cut) {
        expect(error).toBeNull()
        expect(r.bytesRead).toBe(cut)
      } else {
        const e = error as CaptureError
        expect(e).toBeInstanceOf(CaptureError)
        expect(e.code).toBe('truncated')
        expect(e.offset).toBe(recStart)
        const left = cut - recStart
        expect(e.message).toBe(left < 16
          ? `cut.pcap: truncated record header at byte ${recStart} (16 bytes needed, ${left} left)`
          : `cut.pcap: truncated record at byte ${recStart} (header says ${lens[complete]} bytes, ${left - 16} left)`)
        // the error is sticky
        expect(() => r.next()).toThrow(e)
      }
    }
  })

  it('pcapng: complete packets come out, then truncated', () => {
    const blocks: PcapngBlockInput[] = [
      {kind: 'epb', interfaceId: 0, tsUs: 1, data: pkt(13)},
      {kind: 'raw', blockType: 5, body: new Uint8Array(8)},
      {kind: 'spb', data: pkt(7)},
      {kind: 'epb', interfaceId: 1, tsUs: 2, data: pkt(40)},
    ]
    const file = encodePcapng([{linktype: 1}, {linktype: 101, tsresol: 9}], blocks)
    // block boundaries and which of them end a packet
    const ends: {end: number; packet: boolean}[] = []
    for (let o = 0; o < file.length;) {
      const type = Buffer.from(file.buffer, file.byteOffset).readUInt32LE(o)
      o += Buffer.from(file.buffer, file.byteOffset).readUInt32LE(o + 4)
      ends.push({end: o, packet: type === 6 || type === 3})
    }
    for (let cut = 4; cut <= file.length; cut++) {
      const part = file.subarray(0, cut)
      if (cut < 12) {
        expectCaptureError(() => openCaptureBytes(part), 'truncated')
        continue
      }
      const {recs: got, error} = drain(openCaptureBytes(part, 'cut.pcapng'))
      expect(got).toHaveLength(ends.filter((e) => e.end <= cut && e.packet).length)
      const onBoundary = cut === file.length || ends.some((e) => e.end === cut)
      if (onBoundary) {
        expect(error).toBeNull()
      } else {
        expect(error).toBeInstanceOf(CaptureError)
        expect((error as CaptureError).code).toBe('truncated')
        const blockStart = Math.max(0, ...ends.filter((e) => e.end <= cut).map((e) => e.end))
        expect((error as CaptureError).offset).toBe(blockStart)
      }
    }
  })
})

// -------------------------------------------------------------------------------------------
describe('opening: format by magic, errors', () => {
  const small = encodePcap(1, [{tsUs: 1, data: pkt(10)}])

  it('format comes from the magic number, not the file name', () => {
    const a = join(tmp, 'really-pcapng.pcap')
    const b = join(tmp, 'really-pcap.pcapng')
    writeFileSync(a, encodePcapng([{linktype: 1}], [{kind: 'epb', interfaceId: 0, tsUs: 1, data: pkt(3)}]))
    writeFileSync(b, small)
    expect(openCapture(a).format).toBe('pcapng')
    expect(openCapture(b).format).toBe('pcap')
  })

  it('gzip, empty, unknown magic -> bad_magic', () => {
    const gz = join(tmp, 'x.pcap.gz')
    writeFileSync(gz, gzipSync(small))
    expectCaptureError(() => openCapture(gz), 'bad_magic', new RegExp(`^${gz.replace(/[.]/g, '\\.')}: gzip-compressed file, not a capture at byte 0`))
    const empty = join(tmp, 'empty.pcap')
    writeFileSync(empty, '')
    expectCaptureError(() => openCapture(empty), 'bad_magic', /empty file/)
    expectCaptureError(() => openCaptureBytes(Buffer.from('GET / HTTP/1.1\r\n'), 'http.txt'), 'bad_magic', /^http\.txt: unknown magic number, not a pcap or pcapng file at byte 0 \(0x47455420\)$/)
    // the Kuznetzov "modified pcap" magic is not supported
    expectCaptureError(() => openCaptureBytes(bytes(0x34, 0xcd, 0xb2, 0xa1, ...new Array(40).fill(0))), 'bad_magic')
  })

  it('directory and missing file -> io with the OS reason', () => {
    expectCaptureError(() => openCapture(tmp), 'io', /EISDIR/)
    const e = expectCaptureError(() => openCapture(join(tmp, 'nope.pcap')), 'io', /ENOENT: no such file or directory/)
    expect(e.file).toBe(join(tmp, 'nope.pcap'))
    expect(e.offset).toBe(0)
  })

  it('pcap caplen over snaplen or over the record limit -> corrupt', () => {
    const over = Buffer.from(encodePcap(1, [{tsUs: 1, data: pkt(10)}], {snaplen: 9000}))
    over.writeUInt32LE(9001, 24 + 8)
    expectCaptureError(() => openCaptureBytes(over, 'o.pcap').next(), 'corrupt', /^o\.pcap: impossible record length at byte 24 \(header says 9001 bytes, more than the snaplen 9000\)$/)
    const huge = Buffer.from(over)
    huge.writeUInt32LE(0, 16) // snaplen 0 = unset: only the record limit applies
    huge.writeUInt32LE(MAX_RECORD_BYTES + 1, 24 + 8)
    expectCaptureError(() => openCaptureBytes(huge).next(), 'corrupt', /record limit 262144/)
    huge.writeUInt32LE(10, 24 + 8)
    expect(openCaptureBytes(huge).next()?.capturedLength).toBe(10)
  })

  it('caplen > original length is reported as an anomaly, the record still comes out', () => {
    const file = encodePcap(1, [{tsUs: 1, data: pkt(10), originalLength: 4}])
    const seen: AnomalyReport[] = []
    const r = openCaptureBytes(file, 'a', {onAnomaly: (a) => seen.push(a)})
    expect(r.next()?.capturedLength).toBe(10)
    expect(seen).toEqual([{type: 'decode', event: 'capture.caplen_exceeds_len', detail: {offset: 24, captured: 10, original: 4}}])
  })

  it('next() after close() is an io error, not a clean end', () => {
    const p = join(tmp, 'closed.pcap')
    writeFileSync(p, small)
    const r = openCapture(p)
    r.close()
    r.close()
    expectCaptureError(() => r.next(), 'io', /reader is closed/)
  })
})

// -------------------------------------------------------------------------------------------
const FUZZ_RUNS = Number(process.env.PATCHPOINT_FUZZ_RUNS ?? 150)

describe.skipIf(!haveCorpus)('fuzz: mutated real files', () => {
  const names = ['benign_http_get.pcap', 'sqli_dvwa_or_union_http.pcapng', 'benign_http_webdav_methods.pcapng',
    'benign_smb1_negotiate_linux_sll.pcap', 'http_smuggling_te_cl_desync.pcap']
  const seeds = haveCorpus ? names.map((n) => readFileSync(join(corpusDir, n))) : []
  seeds.push(Buffer.from(encodePcapng([{linktype: 1}, {linktype: 113, tsresol: 0x80 | 20, tsoffset: 5}], [
    {kind: 'epb', interfaceId: 1, tsUs: 1e15, data: pkt(30)}, {kind: 'spb', data: pkt(20)},
    {kind: 'raw', blockType: 2, body: Buffer.alloc(28, 1)}, {kind: 'raw', blockType: 0x99, body: pkt(16)},
  ], {bigEndian: true})))
  const maxBlockBytes = 1 << 16
  const chunkBytes = 512

  it('only records or CaptureError come out; state stays bounded', () => {
    fc.assert(fc.property(
      fc.nat({max: seeds.length - 1}),
      fc.array(fc.tuple(fc.nat(), fc.nat({max: 255}), fc.boolean()), {minLength: 1, maxLength: 8}),
      fc.option(fc.nat(), {nil: undefined}),
      (which, edits, cutAt) => {
        const src = seeds[which]
        const b = Buffer.from(src.subarray(0, Math.min(src.length, 4096)))
        for (const [at, v, inHeader] of edits) b[inHeader ? at % Math.min(b.length, 64) : at % b.length] = v
        const file = cutAt === undefined ? b : b.subarray(0, cutAt % (b.length + 1))
        let r: CaptureReader
        try {
          r = openCaptureBytes(file, 'fuzz', {maxBlockBytes, chunkBytes})
        } catch (e) {
          expect(e).toBeInstanceOf(CaptureError)
          return
        }
        let n = 0
        let last = r.bytesRead
        try {
          for (let rec = r.next(); rec !== null; rec = r.next()) {
            n++
            expect(rec.data.length).toBe(rec.capturedLength)
            expect(rec.capturedLength).toBeLessThanOrEqual(MAX_RECORD_BYTES)
            expect(r.bytesRead).toBeGreaterThan(last) // always makes progress
            last = r.bytesRead
          }
        } catch (e) {
          if (!(e instanceof CaptureError)) throw e
          expect(['truncated', 'corrupt']).toContain(e.code)
          expect(e.offset).toBeGreaterThanOrEqual(0)
          expect(e.offset).toBeLessThanOrEqual(file.length)
        }
        expect(n).toBeLessThanOrEqual(file.length / 16)
        expect(r.bytesRead).toBeLessThanOrEqual(file.length)
        expect(r.bufferBytes).toBeLessThanOrEqual(Math.max(chunkBytes, maxBlockBytes, MAX_RECORD_BYTES + 16))
      },
    ), {numRuns: FUZZ_RUNS})
  })
})

// -------------------------------------------------------------------------------------------
describe.skipIf(process.env.PATCHPOINT_BIG !== '1')('big file (PATCHPOINT_BIG=1)', () => {
  it('reads a ~300 MB pcap with flat memory', () => {
    const path = join(tmp, 'big.pcap')
    const w = PcapWriter.open(path, {linktype: 1})
    const p = pkt(1400)
    const count = 210_000
    for (let i = 0; i < count; i++) w.write(1e15 + i, p)
    w.close()
    const before = process.memoryUsage().rss
    const r = openCapture(path)
    let n = 0
    let peak = before
    for (let rec = r.next(); rec !== null; rec = r.next()) {
      n++
      if ((n & 0xffff) === 0) peak = Math.max(peak, process.memoryUsage().rss)
    }
    r.close()
    expect(n).toBe(count)
    expect(r.bufferBytes).toBe(1 << 20)
    expect(peak - before).toBeLessThan(64 << 20)
  })
})
