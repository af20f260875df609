import {describe, it, expect} from 'vitest'
import {RateProtection, isAuthFailure} from './rate.js'
import {protectionsConfig} from './config.js'
import {collector, fakeFlow, pdu, pendingAnalyzer} from '../../../test/protections/support.js'

const S = 1e6

describe('request rate', () => {
  it('flags requests beyond the burst within a second, not a steady rate under the limit', () => {
    const rp = new RateProtection(protectionsConfig({request_rate: {per_second: 10, burst: 20}}))
    const c = collector()
    const flow = fakeFlow()
    rp.onFlowStart(flow, c.report)
    for (let i = 0; i < 20; i++) rp.onPdu(pdu('http', 'request', 'toserver'), flow, c.report)
    expect(c.events('protection.request_rate')).toEqual([])
    rp.onPdu(pdu('http', 'request', 'toserver'), flow, c.report)
    expect(c.events('protection.request_rate').length).toBe(1)
    // near miss: 9 requests per second for a minute from another source
    const ok = fakeFlow({clientIp: '198.51.100.8'})
    rp.onFlowStart(ok, c.report)
    for (let i = 0; i < 540; i++) {
      ok.lastUs = Math.floor(i * S / 9)
      rp.onPdu(pdu('http', 'request', 'toserver'), ok, c.report)
    }
    expect(c.reports.filter((r) => r.flow === ok)).toEqual([])
  })

  it('counts mail and FTP commands, not replies or other protocols', () => {
    const rp = new RateProtection(protectionsConfig({request_rate: {per_second: 1, burst: 2}}))
    const c = collector()
    const flow = fakeFlow({serverPort: 25})
    rp.onFlowStart(flow, c.report)
    for (let i = 0; i < 5; i++) rp.onPdu(pdu('smtp', 'reply', 'toclient'), flow, c.report)
    for (let i = 0; i < 5; i++) rp.onPdu(pdu('tls', 'record', 'toserver'), flow, c.report)
    expect(c.reports).toEqual([])
    for (let i = 0; i < 3; i++) rp.onPdu(pdu('smtp', 'command', 'toserver'), flow, c.report)
    expect(c.events('protection.request_rate').length).toBe(1)
  })

  it('keys on source and service: another port of the same server has its own bucket', () => {
    const rp = new RateProtection(protectionsConfig({request_rate: {per_second: 1, burst: 2}}))
    const c = collector()
    const a = fakeFlow({serverPort: 80})
    const b = fakeFlow({serverPort: 8080, clientPort: 40001})
    rp.onFlowStart(a, c.report)
    rp.onFlowStart(b, c.report)
    for (let i = 0; i < 2; i++) rp.onPdu(pdu('http', 'request', 'toserver'), a, c.report)
    for (let i = 0; i < 2; i++) rp.onPdu(pdu('http', 'request', 'toserver'), b, c.report)
    expect(c.reports).toEqual([])
  })
})

describe('connection rate', () => {
  it('per service and per source (a scan touches each port once)', () => {
    const rp = new RateProtection(protectionsConfig({connection_rate: {per_second: 5, burst: 5, per_source_per_second: 10, per_source_burst: 20}}))
    const c = collector()
    for (let i = 0; i < 6; i++) rp.onFlowStart(fakeFlow({clientPort: 1000 + i, startUs: 0}), c.report)
    expect(c.events('protection.connection_rate').map((r) => r.a.detail?.scope)).toEqual(['service'])
    const scan = collector()
    for (let p = 1; p <= 30; p++) rp.onFlowStart(fakeFlow({clientIp: '203.0.113.9', serverPort: p, startUs: 0}), scan.report)
    // 10 connections over the source's burst in the same second: reported once, not 10 times
    expect(scan.events('protection.connection_rate').length).toBe(1)
    expect(scan.reports.every((r) => r.a.detail?.scope === 'source')).toBe(true)
    // a second later the scan goes on over the limit: reported again
    for (let p = 31; p <= 60; p++) rp.onFlowStart(fakeFlow({clientIp: '203.0.113.9', serverPort: p, startUs: S}), scan.report)
    expect(scan.events('protection.connection_rate').length).toBe(2)
  })

  it('near miss: connections spread over time stay under the limit', () => {
    const rp = new RateProtection(protectionsConfig({connection_rate: {per_second: 5, burst: 5}}))
    const c = collector()
    for (let i = 0; i < 100; i++) rp.onFlowStart(fakeFlow({clientPort: 1000 + i, startUs: i * 0.25 * S}), c.report)
    expect(c.reports).toEqual([])
  })
})

describe('authentication failures', () => {
  const fail = {
    ftp: pdu('ftp', 'reply', 'toclient', {'ftp.reply.code': 530, 'ftp.reply.command': 'PASS'}),
    smtp: pdu('smtp', 'reply', 'toclient', {'smtp.reply.code': 535}),
    imap: pdu('imap', 'response', 'toclient', {'imap.response.status': 'NO', 'imap.response.command': 'LOGIN'}),
    pop3: pdu('pop3', 'reply', 'toclient', {'pop3.reply.status': '-ERR', 'pop3.reply.command': 'PASS'}),
    mysql: pdu('mysql', 'error', 'toclient', {'mysql.auth_failed': 1}),
  }
  it('recognises each protocol\'s failed login and not its near misses', () => {
    for (const p of Object.values(fail)) expect(isAuthFailure(p)).toBe(true)
    expect(isAuthFailure(pdu('ftp', 'reply', 'toclient', {'ftp.reply.code': 230, 'ftp.reply.command': 'PASS'}))).toBe(false)
    expect(isAuthFailure(pdu('ftp', 'reply', 'toclient', {'ftp.reply.code': 550, 'ftp.reply.command': 'RETR'}))).toBe(false)
    expect(isAuthFailure(pdu('smtp', 'reply', 'toclient', {'smtp.reply.code': 550}))).toBe(false)
    expect(isAuthFailure(pdu('imap', 'response', 'toclient', {'imap.response.status': 'NO', 'imap.response.command': 'SELECT'}))).toBe(false)
    expect(isAuthFailure(pdu('pop3', 'reply', 'toclient', {'pop3.reply.status': '-ERR', 'pop3.reply.command': 'RETR'}))).toBe(false)
    expect(isAuthFailure(pdu('mysql', 'error', 'toclient', {'mysql.error_code': 1146}))).toBe(false)
  })

  it('flags the failure past max within the window, per service', () => {
    const rp = new RateProtection(protectionsConfig({auth_failures: {max: 3, window_s: 60}}))
    const c = collector()
    const flow = fakeFlow({serverPort: 21})
    rp.onFlowStart(flow, c.report)
    for (let i = 0; i < 3; i++) rp.onPdu(fail.ftp, flow, c.report)
    expect(c.reports).toEqual([])
    rp.onPdu(fail.ftp, flow, c.report)
    expect(c.events('protection.auth_failures')[0].a.detail).toMatchObject({failures: 4, protocol: 'ftp'})
    // near miss: 3 failures a minute apart never cross max 3 per 60 s
    const slow = fakeFlow({clientIp: '198.51.100.99', serverPort: 21})
    rp.onFlowStart(slow, c.report)
    for (let i = 0; i < 10; i++) {
      slow.lastUs = i * 30 * S
      rp.onPdu(fail.ftp, slow, c.report)
    }
    expect(c.reports.filter((r) => r.flow === slow)).toEqual([])
  })
})

describe('slow requests', () => {
  it('flags a source holding max_per_source incomplete requests past the timeout, not fewer', () => {
    const rp = new RateProtection(protectionsConfig({slow_requests: {head_timeout_s: 10, max_per_source: 3}}))
    const c = collector()
    const slow = [0, 1, 2].map((i) => fakeFlow({clientPort: 2000 + i, analyzer: pendingAnalyzer(() => true)}))
    const fewer = [0, 1].map((i) => fakeFlow({clientIp: '198.51.100.50', clientPort: 3000 + i, analyzer: pendingAnalyzer(() => true)}))
    let done = false
    const finishing = fakeFlow({clientIp: '198.51.100.60', analyzer: pendingAnalyzer(() => !done)})
    for (const f of [...slow, ...fewer, finishing]) {
      rp.onFlowStart(f, c.report)
      rp.onClientData(f, c.report)
    }
    // a flow whose client never sent a byte (a SYN scan's) is not watched, however long it lasts
    const silent = fakeFlow({clientIp: '198.51.100.70', analyzer: pendingAnalyzer(() => true)})
    rp.onFlowStart(silent, c.report)
    expect(rp.size.watched).toBe(6)
    for (let t = 1; t <= 12; t++) {
      if (t === 5) done = true
      rp.tick(t * S, c.report)
    }
    const hits = c.events('protection.slow_request')
    expect(new Set(hits.map((h) => h.flow))).toEqual(new Set(slow))
    expect(hits[0].a.detail).toMatchObject({flows: 3, max_per_source: 3})
  })

  it('a request that completes resets the clock; ended flows leave the watch list', () => {
    const rp = new RateProtection(protectionsConfig({slow_requests: {head_timeout_s: 2, max_per_source: 1}}))
    const c = collector()
    const flow = fakeFlow({analyzer: pendingAnalyzer(() => true)})
    rp.onFlowStart(flow, c.report)
    rp.onClientData(flow, c.report)
    for (let t = 1; t <= 10; t++) {
      rp.onPdu(pdu('http', 'request', 'toserver'), flow, c.report)
      rp.tick(t * S, c.report)
    }
    expect(c.reports).toEqual([])
    flow.ended = true
    rp.tick(11 * S, c.report)
    expect(rp.size.watched).toBe(0)
  })
})

describe('bounded state', () => {
  it('the source tables never exceed max_sources and the watch list its cap; overflow is reported', () => {
    const rp = new RateProtection(protectionsConfig({max_sources: 16}), {maxWatchedFlows: 8})
    const c = collector()
    for (let i = 0; i < 1000; i++) {
      const f = fakeFlow({clientIp: `10.0.${i >> 8}.${i & 255}`, startUs: i})
      rp.onFlowStart(f, c.report)
      rp.onClientData(f, c.report)
    }
    expect(rp.size.services).toBeLessThanOrEqual(16)
    expect(rp.size.sources).toBeLessThanOrEqual(16)
    expect(rp.size.watched).toBeLessThanOrEqual(8)
    expect(c.events('protection.table_full').length).toBe(1) // once per tick
    expect(c.events('protection.watched_flows').length).toBe(1)
    expect(c.events('protection.table_full')[0].a.type).toBe('limit')
  })
})
