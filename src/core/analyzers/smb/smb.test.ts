import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {runAnalyzer} from '../harness.js'
import {fuzzRuns, loadHexFixture, splitInvariance} from '../line/testing.js'
import {binarySpanMismatches} from '../dcerpc/testing.js'
import {readsMismatches} from '../testing.js'
import {DCERPC_FIELDS} from '../dcerpc/fields.js'
import type {Direction, FieldValue, Pdu} from '../types.js'
import {RuleSet, loadRules} from '../../rules/engine.js'
import {packageRulesDir} from '../../rules/rule-schema.js'
import {SMB_FIELDS, SmbAnalyzer, detectSmb, makeSmbAnalyzer, smbAnalyzer} from './index.js'

const fx = (name: string) => loadHexFixture(new URL(`./fixtures/${name}.hex`, import.meta.url))
const one = (p: Pdu, name: string): FieldValue => {
  const v = p.fields.get(name)
  if (v === undefined || Array.isArray(v)) throw new Error(`${name}: ${JSON.stringify(v)}`)
  return v
}
const nb = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, b.length >> 16, (b.length >> 8) & 255, b.length & 255]), b])

function smb1(cmd: number, words: Buffer, mid = 1): Buffer {
  const h = Buffer.alloc(32)
  Buffer.from('ff534d42', 'hex').copy(h)
  h.writeUInt8(cmd, 4)
  h.writeUInt16LE(mid, 30)
  return nb(Buffer.concat([h, Buffer.from([words.length / 2]), words, Buffer.from([0, 0])]))
}

describe('smb: fixtures', () => {
  const names = ['smbghost', 'smb2-read-write', 'smb1-negotiate-sll', 'cve-2022-26809-smb2', 'cve-2022-26809-smb1']
  for (const name of names) {
    it(`${name}: splits give the same PDUs; spans map onto the stream`, () => {
      const script = fx(name)
      const big = name === 'smb2-read-write' || name === 'cve-2022-26809-smb1'
      expect(splitInvariance(smbAnalyzer, script, big ? 97 : 7)).toEqual([])
      const r = runAnalyzer(smbAnalyzer, script)
      expect(binarySpanMismatches(r.pdus, script)).toEqual([])
      expect(detectSmb('toserver', script[0]!.data.subarray(0, 64))).toBe(true)
    })
  }

  it('SMB3.1.1 negotiate: dialects, compression context', () => {
    const r = runAnalyzer(smbAnalyzer, fx('smbghost'))
    const neg = r.pdus[0]!
    expect((neg.fields.get('smb2.dialects') as FieldValue[]).map((v) => v.v)).toContain(0x311)
    expect((neg.fields.get('smb2.negotiate.context_type') as FieldValue[]).map((v) => v.v)).toEqual([1, 3])
    expect((neg.fields.get('smb2.compression.algorithms') as FieldValue[]).map((v) => v.v)).toEqual([1])
  })

  it('DCE/RPC over SMB2 and SMB1 named pipes is emitted as dcerpc PDUs', () => {
    const r2 = runAnalyzer(smbAnalyzer, fx('cve-2022-26809-smb2'))
    const create = r2.pdus.find((p) => p.fields.has('smb.pipe'))!
    expect(one(create, 'smb.pipe').v).toBe('lsarpc')
    const req = r2.pdus.find((p) => p.protocol === 'dcerpc' && p.kind === 'request')!
    expect(one(req, 'dcerpc.interface.name').v).toBe('efsrpc')
    const r1 = runAnalyzer(smbAnalyzer, fx('cve-2022-26809-smb1'))
    const acks = r1.pdus.filter((p) => p.protocol === 'dcerpc' && p.kind === 'bind_ack')
    expect(acks.length).toBeGreaterThan(0)
    expect(one(acks[0]!, 'dcerpc.bind_ack.malformed').v).toBe(1)
    expect(r1.anomalies.map((a) => a.event)).toContain('dcerpc.bind_ack_malformed')
    expect(r1.pdus.some((p) => p.protocol === 'dcerpc' && p.kind === 'bind' && one(p, 'dcerpc.bind.context_count').v === 3)).toBe(true)
  })

  it('detect negative', () => {
    expect(detectSmb('toserver', Buffer.from('GET / HTTP/1.1\r\n'))).toBe(false)
  })
})

describe('smb: attacks and malformed input', () => {
  it('SMBGhost: compression transform with original_size + offset overflowing 32 bits', () => {
    const t = Buffer.alloc(16 + 8)
    Buffer.from('fc534d42', 'hex').copy(t)
    t.writeUInt32LE(0xffffffff, 4)
    t.writeUInt16LE(1, 8)
    t.writeUInt32LE(0x10, 12)
    const r = runAnalyzer(smbAnalyzer, [{dir: 'toserver', data: nb(t)}])
    const p = r.pdus[0]!
    expect(p.kind).toBe('compression_transform')
    expect(one(p, 'smb2.compression.overflow').v).toBe(1)
    expect(one(p, 'smb2.compression.original_size')).toEqual({v: 0xffffffff, off: 8, len: 4})
    expect(r.anomalies.map((a) => a.event)).toEqual(['smb2.compression_overflow'])
  })

  it('SMBleed: a transform whose data decompresses to fewer bytes than OriginalCompressedSegmentSize (LZ77, LZNT1)', () => {
    // [MS-XCA] 3.2: 'abc' x 100 in Plain LZ77; an LZNT1 chunk of 'Hello world'
    const LZ77_300 = Buffer.from('ffffff1f61626317000fff2601', 'hex')
    const LZNT1_11 = Buffer.from('0cb0' + '00' + Buffer.from('Hello wo').toString('hex') + '00' + Buffer.from('rld').toString('hex'), 'hex')
    const transform = (orig: number, alg: number, data: Buffer, opts: {flags?: number; prefix?: Buffer} = {}) => {
      const t = Buffer.alloc(16)
      Buffer.from('fc534d42', 'hex').copy(t)
      t.writeUInt32LE(orig, 4)
      t.writeUInt16LE(alg, 8)
      t.writeUInt16LE(opts.flags ?? 0, 10)
      t.writeUInt32LE(opts.prefix?.length ?? 0, 12)
      return nb(Buffer.concat([t, opts.prefix ?? Buffer.alloc(0), data]))
    }
    const judge = (msg: Buffer, limits = {}) => {
      const r = runAnalyzer(makeSmbAnalyzer(limits), [{dir: 'toserver', data: msg}])
      const p = r.pdus.find((x) => x.kind === 'compression_transform')!
      const n = p.fields.get('smb2.compression.decompressed_length') as FieldValue | undefined
      return {length: n?.v, anomalies: r.anomalies.map((a) => [a.event, a.detail?.['decompressed']])}
    }
    // honest: the declared size is what the data decompresses to
    expect(judge(transform(300, 2, LZ77_300))).toEqual({length: 300, anomalies: []})
    expect(judge(transform(11, 1, LZNT1_11))).toEqual({length: 11, anomalies: []})
    // an uncompressed prefix (Offset) is not part of the declared size
    expect(judge(transform(300, 2, LZ77_300, {prefix: Buffer.alloc(64, 0xfe)}))).toEqual({length: 300, anomalies: []})
    // more data than declared: decompression stops at the declared size (no leak)
    expect(judge(transform(100, 2, LZ77_300))).toEqual({length: 100, anomalies: []})
    // SMBleed: declared larger than the data
    expect(judge(transform(300 + 0x1000, 2, LZ77_300))).toEqual({length: 300, anomalies: [['smb2.compression_short', 300]]})
    expect(judge(transform(0x1000, 1, LZNT1_11))).toEqual({length: 11, anomalies: [['smb2.compression_short', 11]]})
    // corrupt data: the server rejects it (no leak), reported apart
    expect(judge(transform(300, 2, Buffer.from('ffffff1f6162632000', 'hex'))).anomalies).toEqual([['smb2.compression_corrupt', undefined]])
    // not sized: chained, LZ77+Huffman, a message held only in part
    expect(judge(transform(0x1000, 2, LZ77_300, {flags: 1}))).toEqual({length: undefined, anomalies: []})
    expect(judge(transform(0x1000, 3, LZ77_300))).toEqual({length: undefined, anomalies: []})
    expect(judge(transform(0x1000, 2, Buffer.concat([LZ77_300, Buffer.alloc(200)])), {maxMessageBytes: 64}).length).toBeUndefined()
    // ... unless the part held decides it: LZNT1 ends at its end marker, padding after it is never read
    const padded = transform(0x1000, 1, Buffer.concat([LZNT1_11, Buffer.alloc(2), Buffer.alloc(200_000, 0x50)]))
    expect(judge(padded)).toEqual({length: 11, anomalies: [['smb.message_too_long', undefined], ['smb2.compression_short', 11]]})
    // and data that reaches the declared size within the part held is whole enough
    expect(judge(transform(300, 2, Buffer.concat([LZ77_300, Buffer.alloc(200)])), {maxMessageBytes: 64}).length).toBe(300)
  })

  it('MS17-010: NT_TRANSACT primary then TRANS2_SECONDARY with the same MID and displacement past the total', () => {
    const nt = Buffer.alloc(38 + 2)
    nt.writeUInt32LE(30, 3)
    nt.writeUInt32LE(66512, 7)
    nt.writeUInt32LE(30, 19)
    nt.writeUInt32LE(1000, 27)
    nt.writeUInt32LE(100, 31)
    const sec = Buffer.alloc(18)
    sec.writeUInt16LE(0, 0)
    sec.writeUInt16LE(4096, 2)
    sec.writeUInt16LE(4000, 10)
    sec.writeUInt16LE(60, 12)
    sec.writeUInt16LE(65000, 14)
    const r = runAnalyzer(smbAnalyzer, [{dir: 'toserver', data: Buffer.concat([smb1(0xa0, nt, 9), smb1(0x33, sec, 9)])}])
    expect(r.pdus).toHaveLength(2)
    expect(one(r.pdus[0]!, 'smb.trans.total_data_count').v).toBe(66512)
    expect(one(r.pdus[0]!, 'smb.trans.inconsistent').v).toBe(1) // data offset 100 + 1000 > message
    expect(one(r.pdus[1]!, 'smb.trans.type_mismatch').v).toBe(1)
    expect(one(r.pdus[1]!, 'smb.trans.inconsistent').v).toBe(1)
    expect(r.anomalies.filter((a) => a.event === 'smb.trans_inconsistent')).toHaveLength(2)
  })

  it('bad NetBIOS header stops the direction with an anomaly; oversize message is truncated', () => {
    expect(runAnalyzer(smbAnalyzer, [{dir: 'toserver', data: Buffer.from('47455420', 'hex')}]).anomalies[0]!.event).toBe('smb.bad_nbss')
    const a = new SmbAnalyzer({emit: () => {}, anomaly: () => {}}, {maxMessageBytes: 100})
    const big = smb1(0x2f, Buffer.concat([Buffer.from([0xff]), Buffer.alloc(23)])) // AndXCommand 0xff: no chained command
    const padded = Buffer.concat([nb(Buffer.concat([big.subarray(4), Buffer.alloc(500)]))])
    const events: string[] = []
    const b = new SmbAnalyzer({emit: () => {}, anomaly: (x) => events.push(x.event)}, {maxMessageBytes: 100})
    b.data('toserver', padded)
    expect(events).toEqual(['smb.message_too_long'])
    a.data('toserver', padded.subarray(0, 50))
    expect(a.pendingFrom('toserver')).toBe(0)
    expect(a.heldState().bufToserver).toBeLessThanOrEqual(100)
  })

  it('fuzz: random and mutated input never throws and keeps state bounded', () => {
    const base = Buffer.concat(fx('cve-2022-26809-smb2').filter((s) => s.dir === 'toserver').map((s) => Buffer.from(s.data)))
    fc.assert(
      fc.property(fc.uint8Array({maxLength: 300}), fc.array(fc.tuple(fc.nat(), fc.integer({min: 0, max: 255})), {maxLength: 8}), fc.integer({min: 1, max: 200}), (rnd, muts, chunk) => {
        const m = Uint8Array.from(base)
        for (const [i, v] of muts) m[i % m.length] = v
        for (const data of [rnd, m]) {
          const a = new SmbAnalyzer({emit: () => {}, anomaly: () => {}}, {maxMessageBytes: 4096, maxPipes: 4})
          for (let i = 0; i < data.length; i += chunk) a.data('toserver', data.subarray(i, i + chunk))
          const h = a.heldState()
          expect(h.bufToserver).toBeLessThanOrEqual(4096)
          expect(h.pipes).toBeLessThanOrEqual(4)
        }
      }),
      {numRuns: fuzzRuns(10000)},
    )
  })
})

describe('smb: fields no rule reads are left out', () => {
  const pack = new RuleSet(loadRules(packageRulesDir).rules)
  const packReads = (f: string, dir?: Direction) => pack.reads(f, dir)
  const names = [...SMB_FIELDS, ...DCERPC_FIELDS].map((f) => f.name)
  const fixtures = ['smbghost', 'smb2-read-write', 'smb1-negotiate-sll', 'cve-2022-26809-smb2', 'cve-2022-26809-smb1']

  it('with the pack: PDUs carry the fields its rules read', () => {
    for (const name of fixtures) expect(readsMismatches(smbAnalyzer, fx(name), packReads), name).toEqual([])
    const r = runAnalyzer(smbAnalyzer, fx('smbghost'), {reads: packReads})
    expect([...r.pdus[0]!.fields.keys()]).toEqual(['smb2.negotiate.context_type', 'smb2.compression.algorithm_count'])
    const rpc = runAnalyzer(smbAnalyzer, fx('cve-2022-26809-smb1'), {reads: packReads}).pdus
    expect(rpc.filter((p) => p.protocol === 'smb').length).toBeGreaterThan(0)
    expect(rpc.some((p) => p.fields.get('smb.trans.inconsistent') !== undefined)).toBe(true)
  })

  /** SMB1 requests of every command the analyzer reads words of (transactions primary, secondary, pipe) */
  function smb1Commands(): Buffer {
    const w = (n: number, set: [number, number][] = []): Buffer => {
      const b = Buffer.alloc(2 * n)
      for (const [at, v] of set) b.writeUInt16LE(v, at)
      return b
    }
    const nt = w(20, [[3, 30], [7, 1000], [19, 30], [27, 1000], [31, 100]])
    return Buffer.concat([
      // AndXCommand 0xff: not chained
      smb1(0x2f, w(12, [[0, 0xff], [4, 0x4000], [20, 8], [22, 64]]), 1),
      smb1(0x0b, w(5, [[0, 0x4000]]), 2),
      smb1(0x2e, w(10, [[0, 0xff], [4, 0x4000]]), 3),
      smb1(0x25, w(16, [[0, 4], [2, 100], [18, 2], [20, 70], [22, 10], [24, 72], [26, 2], [28, 0x26], [30, 0x4000]]), 4),
      smb1(0x26, w(8, [[0, 4], [2, 100], [4, 2], [8, 2], [10, 90], [14, 10]]), 4),
      smb1(0x32, w(15, [[0, 2], [2, 2], [18, 2], [22, 2], [28, 5]]), 5),
      smb1(0x26, w(8), 77),
      smb1(0xa0, nt, 9),
      smb1(0x33, w(9, [[2, 4096], [10, 4000], [12, 60], [14, 65000]]), 9),
      smb1(0xa0, w(3), 10),
    ])
  }

  it('same PDUs with any set of fields read, in each direction, any chunking', () => {
    const scripts = [...fixtures.map((n) => fx(n)), [{dir: 'toserver' as const, data: Uint8Array.from(smb1Commands())}]]
    const built = runAnalyzer(smbAnalyzer, scripts[scripts.length - 1]!).pdus
    for (const f of ['smb.fid', 'smb.write.length', 'smb.trans.function', 'smb.trans2.subcommand', 'smb.trans.no_primary', 'smb.trans.type_mismatch', 'smb.nt_transact.function', 'smb.trans.primary_total_data_count']) {
      expect(built.some((p) => p.fields.has(f)), f).toBe(true)
    }
    // a primary has no displacement words (0, no span); a secondary's come with their spans
    const [primary, secondary] = [built[3]!, built[4]!]
    expect([primary.fields.get('smb.trans.param_displacement'), primary.fields.get('smb.trans.data_displacement')]).toEqual([{v: 0}, {v: 0}])
    expect(primary.fields.get('smb.trans.data_offset')).toEqual({v: 72, off: primary.start + 4 + 33 + 24, len: 2})
    expect(secondary.fields.get('smb.trans.param_displacement')).toEqual({v: 2, off: secondary.start + 4 + 33 + 8, len: 2})
    fc.assert(
      fc.property(fc.subarray(names), fc.subarray(names), fc.integer({min: 0, max: scripts.length - 1}), fc.integer({min: 0, max: 2000}), (up, down, k, chunk) => {
        const ups = new Set<string>(up)
        const downs = new Set<string>(down)
        const reads = (f: string, dir?: Direction) => (dir !== 'toclient' && ups.has(f)) || (dir !== 'toserver' && downs.has(f))
        expect(readsMismatches(smbAnalyzer, scripts[k]!, reads, {chunkSize: chunk})).toEqual([])
      }),
      {numRuns: fuzzRuns(150)},
    )
  })

  it('reading no field: the same PDUs, all empty; anomalies unchanged', () => {
    for (const name of fixtures) {
      const all = runAnalyzer(smbAnalyzer, fx(name))
      const none = runAnalyzer(smbAnalyzer, fx(name), {reads: () => false})
      expect(none.pdus.map((p) => [p.protocol, p.kind, p.dir, p.start, p.end]), name).toEqual(all.pdus.map((p) => [p.protocol, p.kind, p.dir, p.start, p.end]))
      expect(none.pdus.every((p) => p.fields.size === 0), name).toBe(true)
      expect(none.anomalies, name).toEqual(all.anomalies)
    }
  })

  it('every split with the pack reads gives the same PDUs (held message buffers reused)', () => {
    expect(splitInvariance(smbAnalyzer, fx('cve-2022-26809-smb1'), 97, {reads: packReads})).toEqual([])
  })
})
