import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {runAnalyzer, type ScriptStep} from '../harness.js'
import {fuzzRuns, loadHexFixture, splitInvariance} from '../line/testing.js'
import {binarySpanMismatches, feedMaxCapacity, fuzzScripts, many, one} from '../mysql/testing.js'
import type {Pdu} from '../types.js'
import {TNS_FIELDS, TnsAnalyzer, detectTns, makeTnsAnalyzer, parseDescriptor, tnsAnalyzer} from './index.js'

const fixture = loadHexFixture(new URL('./fixtures/benign_oracle_tns_connect.s0.hex', import.meta.url))

const cat = (...parts: (string | number[] | Uint8Array)[]): Uint8Array =>
  Uint8Array.from(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p)))))
const be16 = (n: number): number[] => [(n >> 8) & 0xff, n & 0xff]

/** a CONNECT packet carrying `cd` inline (or announcing it for a following DATA packet when `deferred`) */
function connect(cd: string, deferred = false, version = 314): Uint8Array {
  const fixedLen = 58
  const total = deferred ? fixedLen : fixedLen + cd.length
  const body = [
    ...be16(version), ...be16(300), 0x0c, 0x41, ...be16(8192), ...be16(0xffff), 0x4f, 0x98, 0, 0, 0, 1,
    ...be16(cd.length), ...be16(fixedLen), 0, 0, 0x08, 0, 0x41, 0x41,
  ]
  const pad = new Array<number>(fixedLen - 8 - body.length).fill(0)
  return cat(be16(total), [0, 0, 1, 0, 0, 0], body, pad, deferred ? '' : cd)
}
const data = (payload: Uint8Array | string, flags = 0): Uint8Array => {
  const p = cat(payload)
  return cat(be16(p.length + 10), [0, 0, 6, 0, 0, 0], be16(flags), p)
}
const S = (d: Uint8Array): ScriptStep => ({dir: 'toserver', data: d})
const C = (d: Uint8Array): ScriptStep => ({dir: 'toclient', data: d})
const POISON = '(CONNECT_DATA=(COMMAND=service_register_NSGR))'

describe('tns: fixture benign_oracle_tns_connect (port 1522)', () => {
  it('every split and 1-byte chunks give the same PDUs', () => {
    expect(splitInvariance(tnsAnalyzer, fixture)).toEqual([])
  })

  it('CONNECT descriptor parsed into tns.cd.* with spans', () => {
    const r = runAnalyzer(tnsAnalyzer, fixture)
    expect(r.anomalies).toEqual([])
    expect(binarySpanMismatches(r.pdus, fixture)).toEqual([])
    const c = r.pdus[0]!
    expect(c.kind).toBe('connect')
    expect(one(c, 'tns.type').v).toBe(1)
    expect(one(c, 'tns.length').v).toBe(224)
    expect(one(c, 'tns.version').v).toBe(315)
    expect(one(c, 'tns.connect_data.length').v).toBe(154)
    expect((one(c, 'tns.connect_data').v as string).startsWith('(DESCRIPTION=(ADDRESS=(PROTOCOL=TCP)')).toBe(true)
    expect(one(c, 'tns.connect_data').off).toBe(70)
    expect(many(c, 'tns.cd.connect_data.service_name')).toEqual([{v: 'xxxxx.xxx', off: 212, len: 9}])
    expect(many(c, 'tns.cd.address.host').map((v) => v.v)).toEqual(['10.000.000.11'])
    expect(many(c, 'tns.cd.address.port').map((v) => v.v)).toEqual(['1522'])
    expect(many(c, 'tns.cd.connect_data.cid.user').map((v) => v.v)).toEqual(['user'])
    expect(one(c, 'tns.cd.max_value_length').v).toBe(13)
    expect(one(c, 'tns.connect_data_malformed').v).toBe(0)
  })
})

describe('tns: hand-written packets', () => {
  it('TNS Poison (CVE-2012-1675 class): service_register_NSGR command', () => {
    const script = [S(connect(POISON))]
    const r = runAnalyzer(tnsAnalyzer, script)
    expect(many(r.pdus[0], 'tns.cd.connect_data.command').map((v) => v.v)).toEqual(['service_register_NSGR'])
    expect(binarySpanMismatches(r.pdus, script)).toEqual([])
  })

  it('long descriptor in a following DATA packet; ACCEPT >= 315 switches to 32-bit lengths', () => {
    const cd = `(DESCRIPTION=(CONNECT_DATA=(SERVICE_NAME=${'s'.repeat(300)})(COMMAND=status))(ADDRESS_LIST=(ADDRESS=(HOST=a))(ADDRESS=(HOST=b))))`
    const accept = cat(be16(32), [0, 0, 2, 0, 0, 0], be16(315), new Array<number>(22).fill(0))
    const big = cat([0, 0, 0, 14, 6, 0, 0, 0], [0, 0], 'abcd') // 32-bit length
    const script = [S(connect(cd, true)), S(data(cd)), C(accept), S(big)]
    const r = runAnalyzer(tnsAnalyzer, script)
    expect(r.anomalies).toEqual([])
    expect(r.pdus.map((p) => p.kind)).toEqual(['connect', 'data', 'accept', 'data'])
    const d = r.pdus[1]!
    expect(one(d, 'tns.connect_data').v).toBe(cd)
    expect(one(d, 'tns.connect_data.length').v).toBe(cd.length)
    expect(many(d, 'tns.cd.connect_data.command').map((v) => v.v)).toEqual(['status'])
    expect(many(d, 'tns.cd.address.host').map((v) => v.v)).toEqual(['a', 'b'])
    expect(one(d, 'tns.cd.max_value_length').v).toBe(300)
    expect(one(r.pdus[2], 'tns.version').v).toBe(315)
    expect(one(r.pdus[3], 'tns.length').v).toBe(14)
    expect(binarySpanMismatches(r.pdus, script)).toEqual([])
    expect(splitInvariance(tnsAnalyzer, script, 7)).toEqual([])
  })

  it('malformed descriptors and offsets are flagged', () => {
    for (const [cd, reason] of [
      ['(CONNECT_DATA=(SID=x)', 'unbalanced'],
      ['(A=b(C=d))', 'syntax'],
      ['garbage', 'syntax'],
      ['(A='.repeat(40) + 'x' + ')'.repeat(40), 'depth'],
    ] as const) {
      const r = runAnalyzer(tnsAnalyzer, [S(connect(cd))])
      expect(one(r.pdus[0], 'tns.connect_data_malformed').v, cd).toBe(1)
      expect(r.anomalies.map((a) => [a.event, a.detail?.reason]), cd).toEqual([['tns.connect_data_malformed', reason]])
    }
    const p = connect(POISON)
    p[27] = 80 // connect data offset inside the packet, offset + length past its end
    const r = runAnalyzer(tnsAnalyzer, [S(p)])
    expect(one(r.pdus[0], 'tns.connect_data_malformed').v).toBe(1)
    expect(r.anomalies[0]!.detail?.reason).toBe('offset')
  })

  it('descriptor value cap', () => {
    const d = parseDescriptor(Buffer.from('(A=1)(B=2)(C=3)'), 0, 15, 8, 2)
    expect(d.malformed).toBe(true)
    expect(d.reason).toBe('values')
    expect(d.values.length).toBe(2)
    const q = parseDescriptor(Buffer.from('(A="x)y")'), 0, 9, 8, 8)
    expect(q.values[0]).toEqual({path: 'a', start: 3, end: 8})
  })

  it('descriptor paths: case folded, wrappers left out, the same past the intern caps', () => {
    const paths = (text: string) => {
      const d = parseDescriptor(Buffer.from(text), 0, text.length, 16, 256)
      return d.values.map((v) => [v.path, text.slice(v.start, v.end)])
    }
    const cd = '(DESCRIPTION=(ADDRESS_LIST=(ADDRESS=(PROTOCOL=TCP)(Host=db)))(CONNECT_DATA=(SERVICE_NAME=orcl)(cid=(PROGRAM=x))))'
    const want = [['address.protocol', 'TCP'], ['address.host', 'db'], ['connect_data.service_name', 'orcl'], ['connect_data.cid.program', 'x']]
    expect(paths(cd)).toEqual(want)
    // a second parse, other cases: the same paths (now from the interned tree)
    const lower = '(description=(address_list=(address=(protocol=TCP)(HOST=db)))(connect_data=(Service_Name=ORCL)(CID=(program=X))))'
    expect(paths(lower)).toEqual([['address.protocol', 'TCP'], ['address.host', 'db'], ['connect_data.service_name', 'ORCL'], ['connect_data.cid.program', 'X']])
    // more distinct keywords under one node than the tree keeps: each still has its own path
    const many = Array.from({length: 100}, (_, i) => `(K${i}=v${i})`).join('')
    const got = paths(`(CONNECT_DATA=${many})`)
    expect(got).toEqual(Array.from({length: 100}, (_, i) => [`connect_data.k${i}`, `v${i}`]))
    expect(paths(`(CONNECT_DATA=${many})`)).toEqual(got)
  })

  it('REFUSE text, oversize packet truncated, bad header stops', () => {
    const text = '(DESCRIPTION=(ERR=12514)(VSNNUM=0))'
    const refuse = cat(be16(12 + text.length), [0, 0, 4, 0, 0, 0], [34, 0], be16(text.length), text)
    const r = runAnalyzer(makeTnsAnalyzer({maxPacketBytes: 200}), [C(refuse), S(data('x'.repeat(500))), S(data('y'))])
    expect(one(r.pdus[0], 'tns.refuse.data').v).toBe(text)
    expect(one(r.pdus[1], 'tns.truncated').v).toBe(1)
    expect(one(r.pdus[2], 'tns.data.length').v).toBe(1)
    expect(r.anomalies.map((a) => a.event)).toEqual(['tns.packet_too_long'])
    const b = runAnalyzer(tnsAnalyzer, [S(cat([0, 20, 0, 0, 0x33, 0, 0, 0], new Uint8Array(12))), S(connect(POISON))])
    expect(b.pdus).toEqual([])
    expect(b.anomalies.map((a) => a.event)).toEqual(['tns.invalid_header'])
  })

  it('pendingFrom holds a partial packet', () => {
    const a = new TnsAnalyzer({emit: () => {}, anomaly: () => {}})
    const p = connect(POISON)
    a.data('toserver', p.subarray(0, 30))
    expect(a.pendingFrom('toserver')).toBe(0)
    a.data('toserver', p.subarray(30))
    expect(a.pendingFrom('toserver')).toBe(-1)
  })
})

describe('tns: detect and fields', () => {
  it('detects a CONNECT by content, not other bytes', () => {
    expect(detectTns('toserver', fixture[0]!.data)).toBe(true)
    expect(detectTns('toserver', fixture[0]!.data.subarray(0, 12))).toBe(true)
    expect(detectTns('toserver', connect(POISON))).toBe(true)
    expect(detectTns('toclient', fixture[0]!.data)).toBe(false)
    expect(detectTns('toserver', data('hello'))).toBe(false)
    expect(detectTns('toserver', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n'))).toBe(false)
    expect(detectTns('toserver', connect(POISON, false, 999))).toBe(false)
  })

  it('every emitted field is documented (tns.cd.* as a family)', () => {
    const known = new Set(TNS_FIELDS.map((f) => f.name))
    for (const p of runAnalyzer(tnsAnalyzer, fixture).pdus) {
      for (const k of p.fields.keys()) expect(known.has(k) || k.startsWith('tns.cd.'), k).toBe(true)
    }
  })
})

describe('tns: fuzz', () => {
  it('never throws, keeps buffers under the cap', () => {
    const cap = 1024
    fc.assert(
      fc.property(fuzzScripts(fixture), fc.oneof(fc.constant(0), fc.constant(0), fc.integer({min: 1, max: 64})), (script, chunk) => {
        const pdus: Pdu[] = []
        const a = new TnsAnalyzer({emit: (p) => pdus.push(p), anomaly: () => {}}, {maxPacketBytes: cap, maxDescriptorValues: 16, maxDescriptorDepth: 8})
        const maxCap = feedMaxCapacity(a, script, chunk)
        a.end('toserver')
        a.end('toclient')
        expect(maxCap).toBeLessThanOrEqual(2 * cap)
        expect(pdus.every((p) => p.end > p.start && [...p.fields.keys()].filter((k) => k.startsWith('tns.cd.')).length <= 16 + 3)).toBe(true)
        const bad = binarySpanMismatches(pdus, script)
        if (bad.length > 0) expect(bad).toEqual([])
      }),
      {numRuns: fuzzRuns(10_000)},
    )
  })
})
