import {describe, expect, it} from 'vitest'
import {runAnalyzer, summarize, type ScriptStep} from '../harness.js'
import type {Pdu} from '../types.js'
import {MAX_RECORD_LENGTH, parseClientHello, tlsAnalyzer, tlsAnalyzerWith, tlsFields} from './index.js'
import {FIXTURES, hex, loadFixture, spanProblems, streamOf, val, vals} from './testing.js'
import {readsMismatches} from '../testing.js'
import fc from 'fast-check'

// ---- builders for hand-written records ----
const u16 = (n: number): number[] => [(n >> 8) & 0xff, n & 0xff]
const u24 = (n: number): number[] => [(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]
function record(type: number, body: ArrayLike<number>, version = 0x0303, length = body.length): Uint8Array {
  return Uint8Array.from([type, ...u16(version), ...u16(length), ...Array.from(body)])
}
function hsMsg(type: number, body: ArrayLike<number>): number[] {
  return [type, ...u24(body.length), ...Array.from(body)]
}
function ext(type: number, data: number[]): number[] {
  return [...u16(type), ...u16(data.length), ...data]
}
function sniExt(name: string): number[] {
  const n = [...Buffer.from(name, 'latin1')]
  return ext(0, [...u16(n.length + 3), 0, ...u16(n.length), ...n])
}
function clientHelloBody(opts: {sni?: string; heartbeat?: boolean; suites?: number[]} = {}): number[] {
  const suites = opts.suites ?? [0xc02f, 0x009c]
  const exts = [...(opts.sni !== undefined ? sniExt(opts.sni) : []), ...(opts.heartbeat ? ext(15, [1]) : []), ...ext(10, [0, 2, 0, 23])]
  return [3, 3, ...new Array(32).fill(7), 0, ...u16(suites.length * 2), ...suites.flatMap(u16), 1, 0, ...u16(exts.length), ...exts]
}
function serverHelloBody(opts: {tls13?: boolean} = {}): number[] {
  const exts = opts.tls13 ? ext(43, [3, 4]) : ext(0xff01, [0])
  return [3, 3, ...new Array(32).fill(9), 0, 0xc0, 0x2f, 0, ...u16(exts.length), ...exts]
}
function heartbeat(type: number, payloadLength: number, payload: number, padding = 16): Uint8Array {
  return record(24, [type, ...u16(payloadLength), ...new Array(payload).fill(0x41), ...new Array(padding).fill(0)])
}
const cat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(Buffer.concat(parts))
const ts = (data: Uint8Array): ScriptStep => ({dir: 'toserver', data})
const tc = (data: Uint8Array): ScriptStep => ({dir: 'toclient', data})
const streams = (script: ScriptStep[]) => ({toserver: streamOf(script, 'toserver'), toclient: streamOf(script, 'toclient')})
const events = (r: {anomalies: {event: string}[]}) => r.anomalies.map((a) => a.event)

/** split step `at` of the script at byte `cut` */
function splitAt(script: readonly ScriptStep[], step: number, cut: number): ScriptStep[] {
  const s = script[step]
  return [...script.slice(0, step), {dir: s.dir, data: s.data.subarray(0, cut)}, {dir: s.dir, data: s.data.subarray(cut)}, ...script.slice(step + 1)]
}

describe('fixtures (real captures)', () => {
  const fx = Object.fromEntries(FIXTURES.map((f) => [f, loadFixture(f)])) as Record<(typeof FIXTURES)[number], ScriptStep[]>

  it('heartbleed: ClientHello offers heartbeat; frame 19 is an overflowing heartbeat request', () => {
    const r = runAnalyzer(tlsAnalyzer, fx.heartbleed)
    const ch = r.pdus.find((p) => p.kind === 'client_hello')!
    expect(val(ch, 'tls.client.version')).toBe(0x0303)
    expect(val(ch, 'tls.heartbeat_ext')).toBe(1)
    expect(val(ch, 'tls.cipher_suites.count')).toBe(64)
    expect(vals(ch, 'tls.extensions')).toEqual([11, 10, 13, 15])
    const hb = r.pdus.filter((p) => p.kind === 'heartbeat')
    expect(hb).toHaveLength(1)
    expect(hb[0].dir).toBe('toserver')
    expect(val(hb[0], 'tls.heartbeat.type')).toBe(1)
    expect(val(hb[0], 'tls.heartbeat.payload_length')).toBe(16365)
    expect(val(hb[0], 'tls.heartbeat.record_length')).toBe(16368)
    expect(val(hb[0], 'tls.heartbeat.overflow')).toBe(1)
    expect(val(hb[0], 'tls.heartbeat.encrypted')).toBe(0)
    expect([hb[0].start, hb[0].end]).toEqual([267, 267 + 5 + 16368])
    expect(events(r)).toEqual(['tls.heartbeat_overflow'])
    const sh = r.pdus.find((p) => p.kind === 'server_hello')!
    expect(val(sh, 'tls.server.cipher_suite')).toBe(0xc02f)
  })

  it('ecdhe: record and handshake types as tshark shows them; encrypted after ChangeCipherSpec', () => {
    const r = runAnalyzer(tlsAnalyzer, fx.ecdhe)
    expect(r.anomalies).toEqual([])
    const ts = r.pdus.filter((p) => p.dir === 'toserver')
    expect(ts.map((p) => val(p, 'tls.record.type'))).toEqual([22, 22, 20, 22, 23, 21])
    expect(ts.map((p) => val(p, 'tls.record.length'))).toEqual([159, 70, 1, 64, 48, 48])
    expect(ts.map((p) => val(p, 'tls.record.encrypted'))).toEqual([0, 0, 0, 1, 1, 1])
    expect(vals(ts[1], 'tls.handshake.type')).toEqual([16])
    expect(ts[3].fields.has('tls.handshake.type')).toBe(false) // encrypted Finished is not parsed
    expect(ts[5].fields.has('tls.alert.level')).toBe(false)
    const tcl = r.pdus.filter((p) => p.dir === 'toclient')
    expect(tcl.flatMap((p) => vals(p, 'tls.handshake.type'))).toEqual([2, 11, 12, 14, 4])
    expect(r.pdus.filter((p) => p.kind === 'heartbeat')).toEqual([])
  })

  it('rawip: SNI value and its span', () => {
    const script = fx.rawip
    const r = runAnalyzer(tlsAnalyzer, script)
    const ch = r.pdus.find((p) => p.kind === 'client_hello')!
    const sni = ch.fields.get('tls.sni') as {v: string; off: number; len: number}
    expect(sni.v).toBe('p130-contacts.icloud.com')
    expect(Buffer.from(streamOf(script, 'toserver').subarray(sni.off, sni.off + sni.len)).toString('latin1')).toBe(sni.v)
    expect(val(ch, 'tls.heartbeat_ext')).toBe(0)
    expect(val(ch, 'tls.extensions.count')).toBe(16)
    expect(vals(ch, 'tls.extensions')).toContain(0)
  })

  it.each(FIXTURES)('%s: every span maps onto the stream bytes it came from', (name) => {
    const script = fx[name]
    const r = runAnalyzer(tlsAnalyzer, script)
    expect(r.pdus.length).toBeGreaterThan(3)
    expect(spanProblems(r.pdus, streams(script))).toEqual([])
    // PDUs tile each direction without holes
    for (const dir of ['toserver', 'toclient'] as const) {
      const ps = r.pdus.filter((p) => p.dir === dir)
      for (let i = 1; i < ps.length; i++) expect(ps[i].start).toBe(ps[i - 1].end)
      expect(ps.at(-1)!.end).toBe(streamOf(script, dir).length)
    }
  })

  it.each(FIXTURES)('%s: every split point and 1-byte chunks give the same PDUs', (name) => {
    const script = fx[name]
    const whole = summarize(runAnalyzer(tlsAnalyzer, script).pdus)
    expect(summarize(runAnalyzer(tlsAnalyzer, script, {chunkSize: 1}).pdus)).toEqual(whole)
    const wholeJson = JSON.stringify(whole)
    for (let s = 0; s < script.length; s++) {
      // long steps (the heartbeat's 'A's) are cut every 97 bytes, the rest at every byte
      const stride = script[s].data.length > 2000 ? 97 : 1
      for (let cut = 1; cut < script[s].data.length; cut += stride) {
        const got = JSON.stringify(summarize(runAnalyzer(tlsAnalyzer, splitAt(script, s, cut)).pdus))
        if (got !== wholeJson) expect({step: s, cut, got: JSON.parse(got)}).toEqual({step: s, cut, got: whole})
      }
    }
  })

  it('detect(): first bytes of each fixture, and negatives', () => {
    for (const f of FIXTURES) expect(tlsAnalyzer.detect('toserver', fx[f][0].data.subarray(0, 64))).toBe(true)
    expect(tlsAnalyzer.detect('toserver', Buffer.from('GET / HTTP/1.1\r\n'))).toBe(false)
    expect(tlsAnalyzer.detect('toserver', hex('160305'))).toBe(false) // no TLS 1.4
    expect(tlsAnalyzer.detect('toserver', hex('1703'))).toBe(false) // too short
    expect(tlsAnalyzer.detect('toserver', hex('170303'))).toBe(false) // not a handshake
  })
})

describe('handshake reassembly', () => {
  const hello = hsMsg(1, clientHelloBody({sni: 'example.com', heartbeat: true}))

  it('a ClientHello split over three records: fields, kind, start and spans', () => {
    const a = hello.slice(0, 2)
    const b = hello.slice(2, 50) // the SNI (bytes 58..68 of the message) lies in the third piece
    const c = hello.slice(50)
    const script = [ts(cat(record(22, a), record(22, b), record(22, c)))]
    const r = runAnalyzer(tlsAnalyzer, script)
    expect(r.anomalies).toEqual([])
    expect(r.pdus.map((p) => p.kind)).toEqual(['record', 'record', 'client_hello'])
    const ch = r.pdus[2]
    expect(ch.start).toBe(0) // the unit starts with the first record carrying it
    expect(ch.end).toBe(15 + hello.length)
    expect(val(ch, 'tls.sni')).toBe('example.com')
    expect(val(ch, 'tls.heartbeat_ext')).toBe(1)
    expect(vals(ch, 'tls.handshake.type')).toEqual([1])
    expect(spanProblems(r.pdus, streams(script))).toEqual([])
    const sni = ch.fields.get('tls.sni') as {off: number}
    expect(sni.off).toBe(15 + 58) // inside the third record: 3 headers + 58
    // the header byte of the message is in the first record: its span is there
    expect(ch.fields.get('tls.handshake.type')).toEqual([{v: 1, off: 5, len: 1}])
  })

  it('a field spanning two records has no span; the value is still right', () => {
    const sniAt = hello.indexOf('e'.charCodeAt(0), 40)
    const script = [ts(cat(record(22, hello.slice(0, sniAt + 3)), record(22, hello.slice(sniAt + 3))))]
    const r = runAnalyzer(tlsAnalyzer, script)
    const ch = r.pdus.find((p) => p.kind === 'client_hello')!
    expect(ch.fields.get('tls.sni')).toEqual({v: 'example.com'})
    expect(spanProblems(r.pdus, streams(script))).toEqual([])
  })

  it('pendingFrom holds the first record of an incomplete message until it completes', () => {
    const pdus: Pdu[] = []
    const a = tlsAnalyzer.create({emit: (p) => pdus.push(p), anomaly: () => {}})
    expect(a.pendingFrom('toserver')).toBe(-1)
    a.data('toserver', record(22, hello.slice(0, 30)))
    expect(pdus).toHaveLength(1)
    expect(a.pendingFrom('toserver')).toBe(0)
    const second = record(22, hello.slice(30))
    a.data('toserver', second.subarray(0, 3))
    expect(a.pendingFrom('toserver')).toBe(0)
    a.data('toserver', second.subarray(3))
    expect(pdus.at(-1)!.kind).toBe('client_hello')
    expect(a.pendingFrom('toserver')).toBe(-1)
  })

  it('several messages in one record, ServerHello first: kind server_hello, all types listed', () => {
    const body = [...hsMsg(2, serverHelloBody()), ...hsMsg(11, [0, 0, 0]), ...hsMsg(14, [])]
    const r = runAnalyzer(tlsAnalyzer, [tc(record(22, body))])
    expect(r.pdus[0].kind).toBe('server_hello')
    expect(vals(r.pdus[0], 'tls.handshake.type')).toEqual([2, 11, 14])
    expect(val(r.pdus[0], 'tls.server.cipher_suite')).toBe(0xc02f)
  })

  it('TLS 1.3 ServerHello: later handshake records are encrypted in both directions', () => {
    const r = runAnalyzer(tlsAnalyzer, [
      ts(record(22, hello)),
      tc(cat(record(22, hsMsg(2, serverHelloBody({tls13: true}))), record(22, hsMsg(8, [0, 0])))),
      ts(record(22, hsMsg(20, new Array(32).fill(1)))),
    ])
    const sh = r.pdus.find((p) => p.kind === 'server_hello')!
    expect(val(sh, 'tls.server.supported_version')).toBe(0x0304)
    expect(r.pdus.slice(2).map((p) => [val(p, 'tls.record.encrypted'), p.fields.has('tls.handshake.type')])).toEqual([[1, false], [1, false]])
  })

  it('an over-long handshake message is reported and skipped; the next message still parses', () => {
    const f = tlsAnalyzerWith({maxHandshakeBytes: 100})
    const big = hsMsg(11, new Array(150).fill(0))
    const script = [ts(cat(record(22, big.slice(0, 80)), record(22, [...big.slice(80), ...hello])))]
    const r = runAnalyzer(f, script)
    expect(events(r)).toEqual(['tls.handshake_too_long'])
    expect(r.anomalies[0].type).toBe('limit')
    expect(vals(r.pdus[0], 'tls.handshake.type')).toEqual([11])
    expect(r.pdus[1].kind).toBe('client_hello')
    expect(val(r.pdus[1], 'tls.sni')).toBe('example.com')
  })

  it('a message spread over more records than maxHandshakePieces is dropped', () => {
    const f = tlsAnalyzerWith({maxHandshakePieces: 4})
    const recs: Uint8Array[] = []
    for (let i = 0; i < hello.length; i += 10) recs.push(record(22, hello.slice(i, i + 10)))
    const r = runAnalyzer(f, [ts(cat(...recs, record(22, hello)))])
    expect(events(r)).toEqual(['tls.handshake_pieces'])
    expect(r.pdus.filter((p) => p.kind === 'client_hello')).toHaveLength(1)
    expect(r.pdus.at(-1)!.kind).toBe('client_hello')
  })

  it('a malformed ClientHello is flagged with what was parsed', () => {
    const body = clientHelloBody({sni: 'x.org'})
    body[35 + 1] = 0xff // cipher_suites length high byte: runs past the message
    const r = runAnalyzer(tlsAnalyzer, [ts(record(22, hsMsg(1, body)))])
    expect(events(r)).toEqual(['tls.client_hello_malformed'])
    expect(r.anomalies[0].detail?.problem).toBe('cipher_suites')
    expect(val(r.pdus[0], 'tls.client_hello.malformed')).toBe(1)
    expect(val(r.pdus[0], 'tls.client.version')).toBe(0x0303)
    expect(r.pdus[0].fields.has('tls.sni')).toBe(false)
  })

  it('parseClientHello keeps at most maxList suites and extensions but counts them all', () => {
    const body = clientHelloBody({suites: Array.from({length: 40}, (_, i) => i)})
    const h = parseClientHello(Uint8Array.from(body), 0, body.length, 5)
    expect(h.ok).toBe(true)
    expect(h.cipherSuites.map((c) => c.v)).toEqual([0, 1, 2, 3, 4])
    expect(h.cipherSuitesCount).toBe(40)
  })
})

describe('heartbeats (RFC 6520, CVE-2014-0160)', () => {
  it('a well-formed request and response: no overflow, small excess', () => {
    const r = runAnalyzer(tlsAnalyzer, [ts(heartbeat(1, 4, 4)), tc(heartbeat(2, 4, 4))])
    expect(r.anomalies).toEqual([])
    expect(r.pdus.map((p) => p.kind)).toEqual(['heartbeat', 'heartbeat'])
    expect(val(r.pdus[0], 'tls.heartbeat.overflow')).toBe(0)
    expect(val(r.pdus[0], 'tls.heartbeat.record_length')).toBe(23)
    expect(val(r.pdus[1], 'tls.heartbeat.type')).toBe(2)
    expect(val(r.pdus[1], 'tls.heartbeat.response_excess')).toBe(0)
    expect(val(r.pdus[0], 'tls.heartbeat.response_excess')).toBeUndefined()
  })

  it('the classic exploit: 3-byte record claiming 16384 bytes, then the leak as a big response', () => {
    const script = [ts(record(24, [1, 0x40, 0x00])), tc(record(24, [2, 0x40, 0x00, ...new Array(16384 + 16).fill(0x55)]))]
    const r = runAnalyzer(tlsAnalyzer, script)
    expect(val(r.pdus[0], 'tls.heartbeat.payload_length')).toBe(16384)
    expect(val(r.pdus[0], 'tls.heartbeat.overflow')).toBe(1)
    expect(val(r.pdus[1], 'tls.heartbeat.response_excess')).toBe(16403 - 3)
    expect(events(r)).toEqual(['tls.heartbeat_overflow'])
    expect(spanProblems(r.pdus, streams(script))).toEqual([])
    // the span of payload_length lets a fix overwrite exactly those two bytes
    expect(r.pdus[0].fields.get('tls.heartbeat.payload_length')).toEqual({v: 16384, off: 6, len: 2})
  })

  it('after ChangeCipherSpec: a tiny cleartext exploit record is still read; a real encrypted one is not', () => {
    const ccs = record(20, [1])
    const encrypted = record(24, Array.from({length: 40}, (_, i) => (i * 37) & 0xff))
    const r = runAnalyzer(tlsAnalyzer, [
      ts(cat(ccs, record(24, [1, 0xff, 0xff]))), tc(cat(ccs, record(24, new Array(2000).fill(0x33)))),
      ts(encrypted), tc(record(24, new Array(40).fill(0x77))),
    ])
    const hb = r.pdus.filter((p) => p.kind === 'heartbeat')
    expect(hb.map((p) => val(p, 'tls.heartbeat.encrypted'))).toEqual([0, 1, 1, 1])
    expect(val(hb[0], 'tls.heartbeat.overflow')).toBe(1)
    expect(val(hb[1], 'tls.heartbeat.response_excess')).toBe(2000 - 3) // the leak
    expect(hb[2].fields.has('tls.heartbeat.payload_length')).toBe(false)
    expect(val(hb[3], 'tls.heartbeat.response_excess')).toBe(0)
  })

  it('a heartbeat record shorter than its header is an anomaly', () => {
    const r = runAnalyzer(tlsAnalyzer, [ts(record(24, [1, 0]))])
    expect(events(r)).toEqual(['tls.heartbeat_short'])
    expect(val(r.pdus[0], 'tls.heartbeat.type')).toBe(1)
    expect(r.pdus[0].fields.has('tls.heartbeat.payload_length')).toBe(false)
  })

  it('the queue of unanswered requests is bounded', () => {
    const f = tlsAnalyzerWith({maxPendingHeartbeats: 3})
    const a = f.create({emit: () => {}, anomaly: () => {}}) as unknown as {data: (d: 'toserver', b: Uint8Array) => void; stats(): {queued: number}}
    for (let i = 0; i < 10; i++) a.data('toserver', heartbeat(1, 1, 1))
    expect(a.stats().queued).toBe(3)
  })
})

describe('record layer anomalies', () => {
  it('garbage before a record: invalid, then resync at the next plausible header', () => {
    const hello = record(22, hsMsg(1, clientHelloBody({sni: 'a.b'})))
    const script = [ts(cat(Buffer.from('hello there'), hello))]
    const r = runAnalyzer(tlsAnalyzer, script)
    expect(events(r)).toEqual(['tls.record_invalid', 'tls.resync'])
    expect(r.anomalies[1].detail).toMatchObject({offset: 11, skipped: 11})
    expect(r.pdus).toHaveLength(1)
    expect(r.pdus[0].start).toBe(11)
    expect(val(r.pdus[0], 'tls.sni')).toBe('a.b')
    expect(spanProblems(r.pdus, streams(script))).toEqual([])
  })

  it('a record over 2^14+2048 is reported; the PDU carries what was held; the next record parses', () => {
    const f = tlsAnalyzerWith({maxRecordHold: 1000})
    const big = record(23, new Array(MAX_RECORD_LENGTH + 1).fill(1))
    const r = runAnalyzer(f, [ts(cat(big, record(21, [2, 40])))])
    expect(events(r)).toEqual(['tls.record_too_long'])
    expect(r.pdus).toHaveLength(2)
    expect(val(r.pdus[0], 'tls.record.length')).toBe(MAX_RECORD_LENGTH + 1)
    expect(val(r.pdus[0], 'tls.record.truncated')).toBe(1)
    expect(r.pdus[0].end).toBe(1005)
    expect(val(r.pdus[1], 'tls.alert.description')).toBe(40)
    expect(r.pdus[1].start).toBe(5 + MAX_RECORD_LENGTH + 1)
  })

  it('the end of the stream inside a record: truncated PDU and an anomaly', () => {
    const r = runAnalyzer(tlsAnalyzer, [ts(heartbeat(1, 100, 100).subarray(0, 20))])
    expect(events(r)).toEqual(['tls.record_truncated'])
    expect(r.pdus).toHaveLength(1)
    expect(val(r.pdus[0], 'tls.record.truncated')).toBe(1)
    expect(val(r.pdus[0], 'tls.heartbeat.payload_length')).toBe(100)
    expect(val(r.pdus[0], 'tls.heartbeat.overflow')).toBe(0) // judged on the declared record length
  })

  it('a gap inside a record: truncated PDU, the rest skipped, the next record parses', () => {
    const pdus: Pdu[] = []
    const ev: string[] = []
    const a = tlsAnalyzer.create({emit: (p) => pdus.push(p), anomaly: (x) => ev.push(x.event)})
    const rec = record(23, new Array(100).fill(9))
    a.data('toserver', rec.subarray(0, 30))
    a.gap('toserver', 50)
    a.data('toserver', rec.subarray(80))
    a.data('toserver', record(21, [1, 0]))
    expect(ev).toEqual(['tls.gap'])
    expect(pdus.map((p) => [p.start, p.end, val(p, 'tls.record.truncated')])).toEqual([[0, 30, 1], [105, 112, undefined]])
  })

  it('a gap across records: resync at the next plausible header', () => {
    const pdus: Pdu[] = []
    const ev: string[] = []
    const a = tlsAnalyzer.create({emit: (p) => pdus.push(p), anomaly: (x) => ev.push(x.event)})
    a.data('toserver', record(23, [1, 2, 3]))
    a.gap('toserver', 500)
    a.data('toserver', cat(Uint8Array.from([0, 0, 0x42]), record(21, [2, 10])))
    expect(ev).toEqual(['tls.gap', 'tls.resync'])
    expect(pdus.at(-1)!.start).toBe(8 + 500 + 3)
  })

  it('no record header within maxResyncBytes: the direction is given up, nothing held', () => {
    const f = tlsAnalyzerWith({maxResyncBytes: 64})
    const pdus: Pdu[] = []
    const ev: string[] = []
    const a = f.create({emit: (p) => pdus.push(p), anomaly: (x) => ev.push(x.event)})
    a.data('toserver', new Uint8Array(200).fill(0x41))
    a.data('toserver', record(21, [2, 10]))
    expect(ev).toEqual(['tls.record_invalid', 'tls.resync_failed'])
    expect(pdus).toEqual([])
    expect(a.pendingFrom('toserver')).toBe(-1)
  })
})

describe('fields no rule reads are left out', () => {
  // heartbeat fields are always built
  const always = (f: string) => f.startsWith('tls.heartbeat.')
  const names = tlsFields.map((f) => f.name).filter((f) => !always(f))
  const hello = hsMsg(1, clientHelloBody({sni: 'example.com', heartbeat: true}))
  const scripts: ScriptStep[][] = [
    ...FIXTURES.map((f) => loadFixture(f)),
    // a ClientHello too short for its version, then two whole ones in one record (the first whole one wins);
    // one split over records; an alert; ServerHello and more messages than maxListItems
    [
      ts(cat(record(22, [...hsMsg(1, [3]), ...hello, ...hsMsg(1, clientHelloBody({sni: 'second.example'}))]), record(22, hello.slice(0, 30)), record(22, hello.slice(30)), record(21, [2, 40]))),
      tc(cat(record(22, [...hsMsg(2, serverHelloBody()), ...hsMsg(2, serverHelloBody({tls13: true})), ...hsMsg(11, [0, 0, 0]), ...hsMsg(14, []), ...hsMsg(14, [])]), record(21, [1, 0]))),
      ts(cat(heartbeat(1, 16, 16), record(20, [1]), record(22, [1, 2, 3]))),
      tc(cat(heartbeat(2, 16, 16), record(22, hsMsg(2, serverHelloBody({tls13: true}))))),
    ],
  ]
  const limited = tlsAnalyzerWith({maxListItems: 3, maxHandshakeBytes: 80})

  it('same PDUs, anomalies and kinds with any set of fields read, per direction, any chunking', () => {
    fc.assert(
      fc.property(fc.subarray(names), fc.subarray(names), fc.integer({min: 0, max: scripts.length - 1}), fc.integer({min: 0, max: 60}), (up, down, k, chunkSize) => {
        const reads = (f: string, dir?: 'toserver' | 'toclient') => always(f) || (dir !== 'toclient' && up.includes(f)) || (dir !== 'toserver' && down.includes(f))
        expect(readsMismatches(tlsAnalyzer, scripts[k]!, reads, {chunkSize})).toEqual([])
        expect(readsMismatches(limited, scripts[k]!, reads, {chunkSize})).toEqual([])
      }),
      {numRuns: 150},
    )
    // each field read alone
    for (const name of names) {
      for (const script of scripts) expect([name, readsMismatches(limited, script, (f) => always(f) || f === name)]).toEqual([name, []])
    }
  })

  it('with only the heartbeat fields read: hellos keep their kind and carry no field', () => {
    const reads = (f: string) => f.startsWith('tls.heartbeat.')
    const r = runAnalyzer(tlsAnalyzer, scripts.at(-1)!, {reads})
    expect(r.pdus.map((p) => p.kind)).toEqual(runAnalyzer(tlsAnalyzer, scripts.at(-1)!).pdus.map((p) => p.kind))
    const hellos = r.pdus.filter((p) => p.kind === 'client_hello' || p.kind === 'server_hello')
    expect(hellos.length).toBeGreaterThan(2)
    expect(hellos.every((p) => p.fields.size === 0)).toBe(true)
    expect(r.pdus.filter((p) => p.kind === 'heartbeat').every((p) => p.fields.has('tls.heartbeat.type'))).toBe(true)
  })
})

describe('field list', () => {
  it('every field an analyzer PDU carries is documented', () => {
    const names = new Set(tlsFields.map((f) => f.name))
    const script = [...loadFixture('heartbleed'), ...loadFixture('rawip')]
    const seen = new Set<string>()
    for (const p of runAnalyzer(tlsAnalyzer, script).pdus) for (const k of p.fields.keys()) seen.add(k)
    for (const p of runAnalyzer(tlsAnalyzer, [ts(record(24, [1, 0x40, 0])), tc(record(24, new Array(99).fill(2))), ts(record(21, [1, 0]))]).pdus) {
      for (const k of p.fields.keys()) seen.add(k)
    }
    for (const k of seen) expect(names.has(k), k).toBe(true)
    expect(seen.size).toBeGreaterThan(20)
  })
})
