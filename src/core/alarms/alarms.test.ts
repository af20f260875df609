import dgram from 'node:dgram'
import http from 'node:http'
import net from 'node:net'
import type {AddressInfo} from 'node:net'
import {setTimeout as sleep} from 'node:timers/promises'
import {afterEach, describe, expect, it} from 'vitest'
import type {AnomalyReport} from '../events/anomaly.js'
import type {EveEvent} from '../events/eve.js'
import {checkAlarmsText, normalizeAlarms} from './config.js'
import {createAlarms} from './dispatcher.js'
import type {AlarmDispatcher} from './dispatcher.js'
import {clipUtf8, escapeParamValue, formatSyslog} from './syslog.js'

const alert = (i = 0, action: 'fix' | 'log' | 'drop' = 'fix', shadow = false): EveEvent => ({
  timestamp: '2026-03-01T10:00:00.123456+0000', flow_id: i, event_type: 'alert', src_ip: '203.0.113.9', src_port: 40000 + i,
  dest_ip: '192.0.2.10', dest_port: 80, proto: 'TCP', app_proto: 'http',
  alert: {action: 'blocked', gid: 1, signature_id: 9000001, rev: 1, signature: 'Log4Shell "jndi" ]lookup[', category: 'vp', severity: 1},
  patchpoint: {action, rule_id: 'PP-2021-44228', cves: ['CVE-2021-44228'], gateway: 'gw-01', ...(shadow ? {shadow: true} : {})},
})

// RFC 5424 section 6 header, then one SD-ELEMENT and MSG
const RFC5424 = /^<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,6}Z) ([!-~]{1,255}) ([!-~]{1,48}) ([!-~]{1,128}) ([!-~]{1,32}) (\[[^ \]]+(?: [^=\s]+="(?:[^"\\\]]|\\["\\\]])*")*\]) (.*)$/s

let open: AlarmDispatcher[] = []
afterEach(async () => {
  for (const d of open) await d.close(100)
  open = []
})
const make = (cfg: Record<string, unknown>, opts = {}) => {
  const d = createAlarms(cfg, {gateway: 'gw-01', ...opts})
  open.push(d)
  return d
}

describe('syslog message (RFC 5424)', () => {
  it('has the RFC 5424 syntax, PRI from facility and severity, escaped SD values', () => {
    const m = formatSyslog(alert(), {facility: 'local0', appName: 'patchpoint', hostname: 'gw 01', procId: '42'})
    const g = RFC5424.exec(m)
    expect(g, m).not.toBeNull()
    expect(Number(g![1])).toBe(16 * 8 + 3) // local0, err (alert severity 1)
    expect(g![2]).toBe('2026-03-01T10:00:00.123456Z')
    expect(g![3]).toBe('gw01')
    expect(g![6]).toBe('alert')
    expect(g![7]).toContain('[patchpoint@32473 event="alert" action="fix" rule="PP-2021-44228" cves="CVE-2021-44228"')
    expect(g![8]).toContain('fix PP-2021-44228 203.0.113.9:40000 -> 192.0.2.10:80')
    expect(escapeParamValue('a"b\\c]')).toBe('a\\"b\\\\c\\]')
  })
  it('clips to the byte limit without splitting a UTF-8 character', () => {
    expect(clipUtf8('aé€', 4)).toBe('aé')
    expect(Buffer.byteLength(formatSyslog({...alert(), src_ip: 'é'.repeat(5000)}, {facility: 'user', appName: 'p', hostname: 'h', maxBytes: 2048}))).toBeLessThanOrEqual(2048)
  })
})

describe('config', () => {
  it('names file:line:col of a bad value', () => {
    const r = checkAlarmsText('gateway: {id: x}\nalarms:\n  syslog:\n    host: 10.0.0.1\n    protocol: sctp\n', 'pp.yaml')
    expect(r.config).toBeUndefined()
    expect(r.diagnostics[0]).toMatchObject({file: 'pp.yaml', line: 5})
  })
  it('applies defaults', () => {
    const r = checkAlarmsText('alarms:\n  webhook: {url: "http://127.0.0.1:9/x"}\n')
    expect(r.config).toMatchObject({events: ['alert'], rate_limit: {per_second: 10, burst: 50}, webhook: {retries: 8, queue: 1000}})
    expect(() => normalizeAlarms({webhook: {url: 'ftp://x'}})).toThrow(/alarms\.webhook\.url/)
  })
})

describe('syslog transport', () => {
  it('UDP: alarms arrive at a local listener', async () => {
    const sock = dgram.createSocket('udp4')
    const got: string[] = []
    sock.on('message', (m) => got.push(m.toString()))
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r))
    const port = (sock.address() as AddressInfo).port
    const d = make({syslog: {host: '127.0.0.1', port, protocol: 'udp'}})
    for (let i = 0; i < 5; i++) expect(d.offer(alert(i))).toBe(true)
    for (let i = 0; i < 50 && got.length < 5; i++) await sleep(20)
    sock.close()
    expect(got).toHaveLength(5)
    for (const m of got) expect(m).toMatch(RFC5424)
    expect(d.stats().transports[`syslog udp://127.0.0.1:${port}`]).toMatchObject({sent: 5, dropped: 0})
  })

  it('TCP: octet-counting frames, and reconnects after the receiver restarts', async () => {
    const got: string[] = []
    let buf = ''
    const onData = (c: Buffer) => {
      buf += c.toString()
      for (;;) {
        const sp = buf.indexOf(' ')
        if (sp < 0) break
        const len = Number(buf.slice(0, sp))
        if (Buffer.byteLength(buf.slice(sp + 1)) < len) break
        const rest = Buffer.from(buf.slice(sp + 1))
        got.push(rest.subarray(0, len).toString())
        buf = rest.subarray(len).toString()
      }
    }
    const conns = new Set<net.Socket>()
    let server = net.createServer((s) => { conns.add(s); s.on('data', onData) })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as AddressInfo).port
    const d = make({syslog: {host: '127.0.0.1', port, protocol: 'tcp'}})
    d.offer(alert(1))
    d.offer(alert(2))
    for (let i = 0; i < 100 && got.length < 2; i++) await sleep(20)
    expect(got).toHaveLength(2)
    for (const m of got) expect(m).toMatch(RFC5424)
    // receiver goes away, comes back on the same port
    for (const c of conns) c.destroy()
    await new Promise<void>((r) => server.close(() => r()))
    await sleep(100)
    server = net.createServer((s) => s.on('data', onData))
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r))
    d.offer(alert(3))
    for (let i = 0; i < 150 && !got.some((m) => m.includes('40003')); i++) await sleep(20)
    server.close()
    expect(got.some((m) => m.includes('40003'))).toBe(true)
  })
})

describe('webhook transport', () => {
  it('delivers JSON POSTs, including the ones queued while the server was down', async () => {
    const bodies: {gateway: string; event: EveEvent}[] = []
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      let b = ''
      req.on('data', (c) => (b += c))
      req.on('end', () => {
        expect(req.headers['content-type']).toBe('application/json')
        bodies.push(JSON.parse(b))
        res.end('ok')
      })
    }
    // find a free port, leave it closed: the server is "down"
    const probe = http.createServer()
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r))
    const port = (probe.address() as AddressInfo).port
    await new Promise<void>((r) => probe.close(() => r()))
    const d = make({webhook: {url: `http://127.0.0.1:${port}/hook`, backoff_ms: 50, max_backoff_ms: 200, retries: 50, timeout_ms: 1000}})
    const t0 = performance.now()
    for (let i = 0; i < 3; i++) d.offer(alert(i))
    expect(performance.now() - t0).toBeLessThan(50) // offer never waits for the network
    await sleep(400)
    expect(bodies).toHaveLength(0)
    const st = d.stats().transports[`webhook http://127.0.0.1:${port}/hook`]
    expect(st.retries).toBeGreaterThan(0)
    const server = http.createServer(handler)
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r))
    await d.flush(5000)
    server.close()
    expect(bodies.map((b) => b.event.flow_id)).toEqual([0, 1, 2]) // in order, none lost
    expect(bodies[0]).toMatchObject({gateway: 'gw-01', event: {patchpoint: {rule_id: 'PP-2021-44228'}}})
  })

  it('gives up on 4xx without retrying, and bounds its queue', async () => {
    let calls = 0
    const fakeFetch = (async () => {
      calls++
      return new Response('no', {status: 400})
    }) as typeof fetch
    const reports: AnomalyReport[] = []
    const d = make({webhook: {url: 'http://x.invalid/', queue: 3}, rate_limit: {per_second: 1000, burst: 1000}}, {fetch: fakeFetch, anomalies: (r: AnomalyReport) => reports.push(r)})
    for (let i = 0; i < 10; i++) d.offer(alert(i))
    await d.flush(1000)
    const st = d.stats().transports['webhook http://x.invalid/']
    expect(st.queued).toBe(3)
    expect(st.dropped).toBe(7)
    expect(st.failed).toBe(3)
    expect(calls).toBe(3)
    expect(reports.map((r) => r.event)).toEqual(['alarms.queue_full'])
  })
})

describe('dispatcher', () => {
  it('filters by event type and action, and rate-limits with a token bucket', () => {
    let now = 0
    const sent: string[] = []
    const fakeFetch = (async (_u: string, init: {body: string}) => {
      sent.push(init.body)
      return new Response('')
    }) as unknown as typeof fetch
    const d = make({webhook: {url: 'http://x/'}, actions: ['drop'], rate_limit: {per_second: 2, burst: 3}}, {fetch: fakeFetch, now: () => now})
    expect(d.offer(alert(0, 'fix'))).toBe(false)
    expect(d.offer(alert(0, 'drop', true))).toBe(false) // shadow not selected
    expect(d.offer({timestamp: 'x', event_type: 'anomaly', anomaly: {type: 'decode', event: 'x'}} as EveEvent)).toBe(false)
    const results = Array.from({length: 5}, (_, i) => d.offer(alert(i, 'drop')))
    expect(results).toEqual([true, true, true, false, false])
    now += 1000 // two more tokens
    expect([d.offer(alert(8, 'drop')), d.offer(alert(9, 'drop')), d.offer(alert(10, 'drop'))]).toEqual([true, true, false])
    expect(d.stats()).toMatchObject({offered: 11, ignored: 3, suppressed: 3, accepted: 5})
  })

  it('with no target configured, offer is a no-op', () => {
    const d = make({})
    expect(d.offer(alert())).toBe(false)
    expect(d.stats().transports).toEqual({})
  })

  it('offer stays fast with a dead receiver and a flood of events', () => {
    const d = make({webhook: {url: 'http://127.0.0.1:9/', retries: 3}, syslog: {host: '127.0.0.1', port: 9, protocol: 'tcp'}, rate_limit: {per_second: 100000, burst: 100000}})
    const t0 = performance.now()
    for (let i = 0; i < 20000; i++) d.offer(alert(i, 'drop'))
    const ms = performance.now() - t0
    expect(ms).toBeLessThan(2000)
    const st = d.stats()
    for (const t of Object.values(st.transports)) expect(t.queued).toBeLessThanOrEqual(1000)
  })
})
