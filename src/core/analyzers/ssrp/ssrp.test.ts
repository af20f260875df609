import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {runAnalyzer, type ScriptStep} from '../harness.js'
import {fuzzRuns} from '../line/testing.js'
import {binarySpanMismatches, one} from '../mysql/testing.js'
import type {Pdu} from '../types.js'
import {SSRP_FIELDS, SsrpAnalyzer, detectSsrp, ssrpAnalyzer} from './index.js'

const cat = (...parts: (string | number[])[]): Uint8Array =>
  Uint8Array.from(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p)))))
const S = (d: Uint8Array): ScriptStep => ({dir: 'toserver', data: d})
const C = (d: Uint8Array): ScriptStep => ({dir: 'toclient', data: d})
const RESP = 'ServerName;DB1;InstanceName;MSSQLSERVER;IsClustered;No;Version;15.0.2000.5;tcp;1433;;'
/** SQL Slammer's request: 0x04 then 375 bytes of 0x01 filler and code, no NUL (CVE-2002-0649) */
const SLAMMER = cat([0x04], new Array<number>(96).fill(0x01), [0xdc, 0xc9, 0xb0, 0x42, 0xeb, 0x0e], new Array<number>(273).fill(0x90))

describe('ssrp: datagrams', () => {
  it('requests and response', () => {
    const script = [S(cat([0x02])), S(cat([0x03])), S(cat([0x04], 'SQLEXPRESS', [0])), C(cat([0x05], [RESP.length, 0], RESP)), S(cat([0x0f, 1], 'MSSQLSERVER', [0]))]
    const r = runAnalyzer(ssrpAnalyzer, script)
    expect(r.anomalies).toEqual([])
    expect(r.pdus.map((p) => p.kind)).toEqual(['clnt_bcast_ex', 'clnt_ucast_ex', 'clnt_ucast_inst', 'svr_resp', 'clnt_ucast_dac'])
    expect(r.pdus.map((p) => one(p, 'ssrp.type').v)).toEqual([2, 3, 4, 5, 15])
    const inst = r.pdus[2]!
    expect(one(inst, 'ssrp.instance')).toEqual({v: 'SQLEXPRESS', off: 3, len: 10})
    expect([inst.start, inst.end]).toEqual([2, 14])
    expect(one(inst, 'ssrp.instance_unterminated').v).toBe(0)
    expect(one(inst, 'ssrp.malformed').v).toBe(0)
    expect(one(r.pdus[3], 'ssrp.response').v).toBe(RESP)
    expect(one(r.pdus[3], 'ssrp.response.size').v).toBe(RESP.length)
    expect(one(r.pdus[4], 'ssrp.protocol_version').v).toBe(1)
    expect(one(r.pdus[4], 'ssrp.instance').v).toBe('MSSQLSERVER')
    expect(binarySpanMismatches(r.pdus, script)).toEqual([])
  })

  it('SQL Slammer (CVE-2002-0649): type 4, overlong unterminated instance', () => {
    const r = runAnalyzer(ssrpAnalyzer, [S(SLAMMER)])
    const p = r.pdus[0]!
    expect(one(p, 'ssrp.type').v).toBe(4)
    expect(one(p, 'ssrp.length').v).toBe(376)
    expect(one(p, 'ssrp.instance.length').v).toBe(375)
    expect((one(p, 'ssrp.instance').v as string).length).toBe(375)
    expect(one(p, 'ssrp.instance_unterminated').v).toBe(1)
    expect(one(p, 'ssrp.malformed').v).toBe(1)
    expect(r.anomalies.map((a) => a.event)).toEqual(['ssrp.instance_too_long'])
    expect(binarySpanMismatches(r.pdus, [S(SLAMMER)])).toEqual([])
  })

  it('malformed datagrams are flagged', () => {
    const r = runAnalyzer(ssrpAnalyzer, [S(cat([0x02, 0x00])), S(cat([0x42, 1, 2])), C(cat([0x05], [200, 0], 'short')), S(cat([0x04], 'A', [0], 'tail'))])
    expect(r.pdus.map((p) => one(p, 'ssrp.malformed').v)).toEqual([1, 1, 1, 1])
    expect(r.anomalies.map((a) => a.event)).toEqual(['ssrp.malformed', 'ssrp.unknown_type', 'ssrp.malformed', 'ssrp.malformed'])
  })

  it('values are capped at maxValueBytes, lengths stay real', () => {
    const a = new SsrpAnalyzer({emit: (p) => pdus.push(p), anomaly: () => {}}, {maxValueBytes: 16})
    const pdus: Pdu[] = []
    a.data('toserver', SLAMMER)
    expect((one(pdus[0], 'ssrp.instance').v as string).length).toBe(16)
    expect(one(pdus[0], 'ssrp.instance').len).toBe(16)
    expect(one(pdus[0], 'ssrp.instance.length').v).toBe(375)
    expect(a.pendingFrom('toserver')).toBe(-1)
  })

  it('detect', () => {
    expect(detectSsrp('toserver', cat([0x02]))).toBe(true)
    expect(detectSsrp('toserver', cat([0x04], 'MSSQLSERVER', [0]))).toBe(true)
    expect(detectSsrp('toclient', cat([0x05], [RESP.length, 0], RESP))).toBe(true)
    expect(detectSsrp('toserver', cat([0x02, 0x00]))).toBe(false)
    expect(detectSsrp('toserver', cat([0x12, 0x34, 1, 0, 0, 1]))).toBe(false) // DNS query header
    expect(detectSsrp('toserver', cat([0x04, 0x56, 1, 0, 0, 1]))).toBe(true) // ambiguous: DNS id 0x0456 with 'V'
    expect(detectSsrp('toserver', new Uint8Array(0))).toBe(false)
  })

  it('every emitted field is documented', () => {
    const known = new Set(SSRP_FIELDS.map((f) => f.name))
    const r = runAnalyzer(ssrpAnalyzer, [S(SLAMMER), C(cat([0x05], [3, 0], 'a;b')), S(cat([0x0f, 1], 'X', [0]))])
    for (const p of r.pdus) for (const k of p.fields.keys()) expect(known.has(k), k).toBe(true)
  })

  it('fuzz: never throws, one PDU per datagram, spans inside', () => {
    fc.assert(
      fc.property(fc.array(fc.record({dir: fc.constantFrom('toserver' as const, 'toclient' as const), data: fc.oneof(fc.uint8Array({maxLength: 600}), fc.tuple(fc.constantFrom(2, 3, 4, 5, 15), fc.uint8Array({maxLength: 40})).map(([t, b]) => cat([t], [...b])))}), {maxLength: 6}), (script) => {
        const r = runAnalyzer(ssrpAnalyzer, script)
        expect(r.pdus.length).toBe(script.length)
        const bad = binarySpanMismatches(r.pdus, script)
        if (bad.length > 0) expect(bad).toEqual([])
      }),
      {numRuns: fuzzRuns(10_000)},
    )
  })
})
