/**
 * DTLS over UDP (dtls.ts): record fields and their spans, several records per datagram, epochs,
 * anomalies, detection, malformed datagrams; and through the engine with the rule pack, a
 * DTLS Heartbleed on a port no analyzer claims is found by content and alerted.
 */
import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {runAnalyzer, type ScriptStep} from '../harness.js'
import {DTLS_MAX_RECORDS_PER_DATAGRAM, dtlsAnalyzer} from './index.js'
import {spanProblems, streamOf, val, vals} from './testing.js'
import {Engine} from '../../engine/engine.js'
import {engineDetection} from '../../engine/detection.js'
import {buildUdpPacket} from '../../packet/encode.js'
import {PacketDecoder} from '../../packet/decode.js'
import {openCapture} from '../../capture/reader.js'
import {LINKTYPE} from '../../packet/linktype.js'
import type {EveEvent} from '../../events/eve.js'
import {replayFile} from '../../engine/replay.js'
import type {Pdu} from '../types.js'

const FUZZ_RUNS = Number(process.env.PATCHPOINT_FUZZ_RUNS ?? 50)

const be16 = (n: number): number[] => [(n >> 8) & 0xff, n & 0xff]
const u24 = (n: number): number[] => [n >> 16, (n >> 8) & 0xff, n & 0xff]
const cat = (...parts: (number[] | Uint8Array)[]): Uint8Array => Uint8Array.from(Buffer.concat(parts.map((p) => Buffer.from(p))))
/** a DTLSPlaintext record: type, version, epoch, 48-bit sequence number, length, fragment */
const rec = (type: number, epoch: number, seq: number, body: Uint8Array, version = 0xfefd): Uint8Array =>
  cat([type], be16(version), be16(epoch), [0, 0, 0, 0], be16(seq), be16(body.length), body)
/** a whole (unfragmented) DTLS handshake message */
const hs = (type: number, body: Uint8Array, msgSeq = 0): Uint8Array => cat([type], u24(body.length), be16(msgSeq), u24(0), u24(body.length), body)
const CLIENT_HELLO = rec(22, 0, 0, hs(1, cat(be16(0xfefd), new Uint8Array(32).fill(0x11), [0], [0], be16(2), [0xc0, 0x2b], [1, 0], be16(5), [0, 15, 0, 1, 1])))
const hb = (type: number, claim: number, payload: number, pad: number, epoch = 0): Uint8Array =>
  rec(24, epoch, 1, cat([type], be16(claim), new Uint8Array(payload).fill(0x41), new Uint8Array(pad)))

const S = (data: Uint8Array): ScriptStep => ({dir: 'toserver', data})
const C = (data: Uint8Array): ScriptStep => ({dir: 'toclient', data})
const streams = (script: ScriptStep[]) => ({toserver: streamOf(script, 'toserver'), toclient: streamOf(script, 'toclient')})

describe('DTLS analyzer', () => {
  it('records of several datagrams and of one datagram: fields, kinds, offsets and spans', () => {
    const script = [S(CLIENT_HELLO), S(cat(hb(1, 2, 2, 16), rec(21, 0, 2, Uint8Array.of(1, 0)))), C(hb(2, 2, 2, 16))]
    const r = runAnalyzer(dtlsAnalyzer, script)
    expect(r.anomalies).toEqual([])
    expect(r.pdus.map((p) => [p.protocol, p.kind, p.dir, p.start, p.end])).toEqual([
      ['tls', 'record', 'toserver', 0, CLIENT_HELLO.length],
      ['tls', 'heartbeat', 'toserver', CLIENT_HELLO.length, CLIENT_HELLO.length + 34],
      ['tls', 'record', 'toserver', CLIENT_HELLO.length + 34, CLIENT_HELLO.length + 49],
      ['tls', 'heartbeat', 'toclient', 0, 34],
    ])
    const [ch, req, alert, resp] = r.pdus
    expect(vals(ch, 'tls.handshake.type')).toEqual([1])
    expect(val(ch, 'tls.record.epoch')).toBe(0)
    expect(val(req, 'tls.heartbeat.overflow')).toBe(0)
    expect(val(alert, 'tls.alert.level')).toBe(1)
    expect(val(resp, 'tls.heartbeat.response_excess')).toBe(0)
    expect(spanProblems(r.pdus, streams(script))).toEqual([])
  })

  it('Heartbleed: a claim beyond the record is an overflow and an anomaly; the honest one is not', () => {
    const r = runAnalyzer(dtlsAnalyzer, [S(CLIENT_HELLO), S(hb(1, 0x4000, 0, 0)), S(hb(1, 100, 100, 16))])
    const beats = r.pdus.filter((p) => p.kind === 'heartbeat')
    expect(beats.map((p) => [val(p, 'tls.heartbeat.payload_length'), val(p, 'tls.heartbeat.overflow')])).toEqual([[0x4000, 1], [100, 0]])
    expect(r.anomalies.map((a) => a.event)).toEqual(['tls.heartbeat_overflow'])
  })

  it('a later epoch is protected: only the header is read, and a big answer to a small beat is an excess', () => {
    const r = runAnalyzer(dtlsAnalyzer, [S(rec(24, 1, 7, new Uint8Array(64).fill(3))), C(rec(24, 1, 3, new Uint8Array(16448).fill(4)))])
    expect(r.pdus.map((p) => [val(p, 'tls.record.encrypted'), val(p, 'tls.heartbeat.encrypted'), val(p, 'tls.heartbeat.type')])).toEqual([[1, 1, undefined], [1, 1, undefined]])
    expect(val(r.pdus[1], 'tls.heartbeat.response_excess')).toBe(16448 - 64)
  })

  it('a record cut by the end of its datagram is truncated; a heartbeat in it is judged on what is there', () => {
    const whole = hb(1, 40, 40, 16)
    const r = runAnalyzer(dtlsAnalyzer, [S(whole.subarray(0, whole.length - 10))])
    expect(r.anomalies.map((a) => a.event)).toEqual(['tls.record_truncated', 'tls.heartbeat_overflow'])
    expect(val(r.pdus[0], 'tls.record.truncated')).toBe(1)
    expect(val(r.pdus[0], 'tls.heartbeat.record_length')).toBe(whole.length - 10 - 13)
  })

  it('garbage after a record, and DTLS 1.3 ciphertext: the rest of the datagram is left alone', () => {
    const bad = runAnalyzer(dtlsAnalyzer, [S(cat(CLIENT_HELLO, [0x17, 3, 3, 0, 1, 0]))])
    expect(bad.pdus).toHaveLength(1)
    expect(bad.anomalies.map((a) => a.event)).toEqual(['tls.record_invalid'])
    const d13 = runAnalyzer(dtlsAnalyzer, [S(cat(CLIENT_HELLO, [0x2c, 0, 1, 0, 4, 1, 2, 3, 4]))])
    expect(d13.pdus).toHaveLength(1)
    expect(d13.anomalies).toEqual([])
  })

  it('records per datagram are capped', () => {
    const many = cat(...Array.from({length: DTLS_MAX_RECORDS_PER_DATAGRAM + 10}, (_, i) => rec(23, 1, i, Uint8Array.of(i))))
    const r = runAnalyzer(dtlsAnalyzer, [S(many)])
    expect(r.pdus).toHaveLength(DTLS_MAX_RECORDS_PER_DATAGRAM)
    expect(r.anomalies.map((a) => a.event)).toEqual(['tls.records_per_datagram'])
  })

  it('detect(): DTLS 1.0 and 1.2 record headers; not TLS, QUIC, DNS or a short datagram', () => {
    expect(dtlsAnalyzer.detect('toserver', CLIENT_HELLO)).toBe(true)
    expect(dtlsAnalyzer.detect('toserver', hb(1, 0x4000, 0, 0).subarray(0, 13))).toBe(true)
    expect(dtlsAnalyzer.detect('toserver', rec(22, 0, 0, new Uint8Array(4), 0xfeff))).toBe(true)
    expect(dtlsAnalyzer.detect('toserver', Uint8Array.of(22, 3, 3, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0))).toBe(false)
    expect(dtlsAnalyzer.detect('toserver', cat([0xc3, 0, 0, 0, 1, 8], new Uint8Array(40)))).toBe(false)
    expect(dtlsAnalyzer.detect('toserver', cat([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0], new Uint8Array(20)))).toBe(false)
    expect(dtlsAnalyzer.detect('toserver', CLIENT_HELLO.subarray(0, 12))).toBe(false)
  })

  it('the real session cut short: each datagram truncated at every length never throws, and what is whole parses as whole', () => {
    const r = openCapture(new URL('./fixtures/dtls12_openssl.pcap', import.meta.url).pathname)
    const dec = new PacketDecoder()
    const script: ScriptStep[] = []
    for (let rec = r.next(); rec; rec = r.next()) {
      const p = dec.decode(rec.data, rec.linktype)
      script.push({dir: p.srcPort === 4444 ? 'toclient' : 'toserver', data: Uint8Array.from(p.payload)})
    }
    r.close()
    const whole = runAnalyzer(dtlsAnalyzer, script)
    expect(whole.anomalies).toEqual([])
    for (let d = 0; d < script.length; d++) {
      for (let cut = 0; cut < script[d].data.length; cut++) {
        const cutScript = script.map((s, i) => (i === d ? {dir: s.dir, data: s.data.subarray(0, cut)} : s))
        const res = runAnalyzer(dtlsAnalyzer, cutScript)
        // the other datagrams' records are unchanged; the cut one loses at most its own
        expect(res.pdus.length).toBeLessThanOrEqual(whole.pdus.length)
        expect(res.pdus.length).toBeGreaterThanOrEqual(whole.pdus.length - 3)
      }
    }
  })

  it('fuzz: any datagram, never throws; every PDU lies inside its datagram', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({maxLength: 200}), {maxLength: 6}), fc.boolean(), (dgs, dtlsStart) => {
      const script = dgs.map((d) => S(dtlsStart ? cat(CLIENT_HELLO.subarray(0, 13), d) : d))
      const r = runAnalyzer(dtlsAnalyzer, script)
      const total = script.reduce((n, s) => n + s.data.length, 0)
      for (const p of r.pdus) expect(p.start <= p.end && p.end <= total).toBe(true)
    }), {numRuns: FUZZ_RUNS * 10})
  })
})

describe('DTLS through the engine', () => {
  it('a real OpenSSL 3 DTLS 1.2 session on port 4444 (s_server and s_client on loopback): found by content, every record parsed, no event', async () => {
    const detection = await engineDetection()
    const pdus: Pdu[] = []
    const events: EveEvent[] = []
    const r = replayFile(new URL('./fixtures/dtls12_openssl.pcap', import.meta.url).pathname, {
      onEvent: (ev) => events.push(ev),
      detection: {...detection, judgeFor: () => ({judge: (pdu) => { pdus.push(pdu) }})},
    })
    expect(r.error).toBeNull()
    expect(events).toEqual([])
    const summary = pdus.map((p) => `${p.dir[2]}:${val(p, 'tls.record.type')}/${val(p, 'tls.record.epoch')}${p.fields.has('tls.handshake.type') ? '/' + vals(p, 'tls.handshake.type').join(',') : ''}`)
    // ClientHello, HelloVerifyRequest, ClientHello with the cookie, ServerHello, the certificate in
    // five fragments, ServerKeyExchange in two, ServerHelloDone, ClientKeyExchange,
    // ChangeCipherSpec, Finished (epoch 1), NewSessionTicket, ..., application data, close_notify
    expect(summary.join(' ')).toBe('s:22/0/1 c:22/0/3 s:22/0/1 c:22/0/2 c:22/0/11 c:22/0/11 c:22/0/11 c:22/0/11 c:22/0/11 c:22/0/12 c:22/0/12 c:22/0/14 s:22/0/16 s:20/0 s:22/1 c:22/0/4 c:20/0 c:22/1 s:23/1 c:21/1 s:21/1')
  })

  it('a DTLS Heartbleed on a port no analyzer claims is detected by content and alerted', async () => {
    const detection = await engineDetection()
    const events: EveEvent[] = []
    const engine: Engine = new Engine({
      onEvent: (ev) => events.push(ev),
      analyzers: detection.analyzers,
      judge: detection.judgeFor(() => engine),
    })
    let now = 1_700_000_000_000_000
    const send = (payload: Uint8Array) => engine.processFrame(buildUdpPacket({src: '198.51.100.7', dst: '192.0.2.9', srcPort: 50000, dstPort: 7777, payload}), LINKTYPE.ETHERNET, now += 1000)
    send(CLIENT_HELLO)
    send(hb(1, 0x4000, 1, 0))
    engine.finish()
    const alerts = events.filter((e) => e.event_type === 'alert') as (EveEvent & {app_proto?: string; alert: {signature: string}})[]
    expect(alerts.map((a) => [a.app_proto, a.alert.signature.split(' ')[0]])).toEqual([['tls', 'PP-2014-0160']])
  })
})
