import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {runAnalyzer, summarize, type ScriptStep} from '../harness.js'
import {fuzzRuns, splitInvariance} from '../line/testing.js'
import {binarySpanMismatches} from '../dcerpc/testing.js'
import type {FieldValue, Pdu} from '../types.js'
import {OncrpcAnalyzer, detectOncrpcTcp, detectOncrpcUdp, oncrpcAnalyzer, oncrpcUdpAnalyzer} from './index.js'

// Hand-built messages (RFC 5531 / RFC 1833): no ONC RPC capture in the corpus.
const w = (...xs: number[]): Buffer => {
  const b = Buffer.alloc(4 * xs.length)
  xs.forEach((x, i) => b.writeUInt32BE(x >>> 0, 4 * i))
  return b
}
const xstr = (s: string, declared = s.length): Buffer => Buffer.concat([w(declared), Buffer.from(s), Buffer.alloc((4 - (s.length % 4)) % 4)])
const call = (xid: number, prog: number, vers: number, proc: number, args: Buffer): Buffer => Buffer.concat([w(xid, 0, 2, prog, vers, proc, 0, 0, 0, 0), args])
const reply = (xid: number, results: Buffer): Buffer => Buffer.concat([w(xid, 1, 0, 0, 0, 0), results])
const rm = (b: Buffer, last = true): Buffer => Buffer.concat([w((last ? 0x80000000 : 0) + b.length), b])
const one = (p: Pdu, name: string): FieldValue => {
  const v = p.fields.get(name)
  if (v === undefined || Array.isArray(v)) throw new Error(`${name}: ${JSON.stringify(v)}`)
  return v
}

const getport = call(0x1234, 100000, 2, 3, w(100003, 3, 6, 0))
const getaddr = call(0x99, 100000, 4, 3, Buffer.concat([w(100005, 3), xstr('tcp'), xstr(''), xstr('')]))
const script: ScriptStep[] = [
  {dir: 'toserver', data: rm(getport)},
  {dir: 'toclient', data: rm(reply(0x1234, w(2049)))},
  {dir: 'toserver', data: rm(getaddr)},
  {dir: 'toclient', data: rm(reply(0x99, xstr('192.0.2.2.78.80')))},
]

describe('oncrpc', () => {
  it('portmapper GETPORT and rpcbind GETADDR replies announce dynamic services (matched by xid)', () => {
    const r = runAnalyzer(oncrpcAnalyzer, script)
    expect(r.anomalies).toEqual([])
    expect(r.dynamic).toEqual([
      {ip: '192.0.2.2', port: 2049, proto: 'tcp', protocol: 'oncrpc', program: '100003'},
      {ip: '192.0.2.2', port: 20048, proto: 'tcp', protocol: 'oncrpc', program: '100005'},
    ])
    const c = r.pdus[0]!
    expect(c.kind).toBe('call')
    expect(one(c, 'oncrpc.xid')).toEqual({v: 0x1234, off: 4, len: 4})
    expect(one(c, 'oncrpc.program').v).toBe(100000)
    expect(one(c, 'oncrpc.procedure').v).toBe(3)
    expect(one(c, 'oncrpc.body.length').v).toBe(16)
    expect(one(r.pdus[1]!, 'oncrpc.procedure').v).toBe(3)
    expect(binarySpanMismatches(r.pdus, script)).toEqual([])
  })

  it('every split and 1-byte chunks give the same PDUs', () => {
    expect(splitInvariance(oncrpcAnalyzer, script)).toEqual([])
  })

  it('multi-fragment record is reassembled', () => {
    const one2 = rm(getport.subarray(0, 20), false)
    const two = rm(getport.subarray(20))
    const r = runAnalyzer(oncrpcAnalyzer, [{dir: 'toserver', data: Buffer.concat([one2, two])}])
    expect(r.pdus).toHaveLength(1)
    expect(one(r.pdus[0]!, 'oncrpc.fragment_count').v).toBe(2)
    expect(one(r.pdus[0]!, 'oncrpc.xid').off).toBeUndefined()
  })

  it('rpcbomb: huge declared XDR length in an rpcbind call', () => {
    const bomb = call(7, 100000, 3, 3, Buffer.concat([w(100000, 2), xstr('tcp'), xstr('', 0x7fffffff)]))
    const r = runAnalyzer(oncrpcUdpAnalyzer, [{dir: 'toserver', data: bomb}])
    expect(one(r.pdus[0]!, 'oncrpc.xdr.max_length').v).toBe(0x7fffffff)
    expect(one(r.pdus[0]!, 'oncrpc.xdr.length_exceeds_body').v).toBe(1)
    expect(r.anomalies.map((a) => a.event)).toEqual(['oncrpc.xdr_length_exceeds_body'])
  })

  it('malformed message and oversize record: anomalies, bounded', () => {
    expect(runAnalyzer(oncrpcUdpAnalyzer, [{dir: 'toserver', data: w(1, 7)}]).anomalies[0]!.event).toBe('oncrpc.malformed')
    const events: string[] = []
    const a = new OncrpcAnalyzer({emit: () => {}, anomaly: (x) => events.push(x.event)}, 'tcp', {maxRecordBytes: 64})
    a.data('toserver', rm(Buffer.concat([getport, Buffer.alloc(200)])))
    expect(events).toContain('oncrpc.record_too_long')
    expect(a.heldState().recToserver).toBe(0)
  })

  it('detect', () => {
    expect(detectOncrpcTcp('toserver', rm(getport))).toBe(true)
    expect(detectOncrpcUdp('toserver', getport)).toBe(true)
    expect(detectOncrpcTcp('toserver', Buffer.from('GET / HTTP/1.1\r\n\r\n1234'))).toBe(false)
  })

  it('UDP: one message per datagram, same result whole', () => {
    const r = runAnalyzer(oncrpcUdpAnalyzer, [{dir: 'toserver', data: getport}, {dir: 'toclient', data: reply(0x1234, w(2049))}])
    expect(summarize(r.pdus).length).toBe(2)
    expect(r.dynamic[0]!.port).toBe(2049)
  })

  it('fuzz: never throws, buffers bounded', () => {
    fc.assert(
      fc.property(fc.uint8Array({maxLength: 300}), fc.integer({min: 1, max: 40}), (rnd, chunk) => {
        const a = new OncrpcAnalyzer({emit: () => {}, anomaly: () => {}}, 'tcp', {maxRecordBytes: 1024, maxPending: 8})
        for (let i = 0; i < rnd.length; i += chunk) a.data('toserver', rnd.subarray(i, i + chunk))
        const u = new OncrpcAnalyzer({emit: () => {}, anomaly: () => {}}, 'udp', {maxPending: 8})
        u.data('toserver', rnd)
        expect(a.heldState().recToserver).toBeLessThanOrEqual(1024)
        expect(u.heldState().calls).toBeLessThanOrEqual(8)
      }),
      {numRuns: fuzzRuns(10000)},
    )
  })
})
