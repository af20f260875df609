/**
 * The protections on real captures: the brute force and the SYN scan must raise their
 * protections (and the rules turn them into alerts); benign captures must raise none.
 */
import fs from 'node:fs'
import path from 'node:path'
import {describe, it, expect} from 'vitest'
import {alerts, anomalies, corpusDir, haveCorpus, replayWithProtections} from './support.js'

const pcap = (n: string) => path.join(corpusDir, n)

describe.skipIf(!haveCorpus)('protections on the corpus', () => {
  it('ftp_bruteforce_login.pcap raises protection.auth_failures and PP-EXCESSIVE-AUTH-FAILURES', async () => {
    const {events} = await replayWithProtections(pcap('ftp_bruteforce_login.pcap'))
    const a = anomalies(events, 'protection.auth_failures')
    // 30 failed logins, 10 allowed per 60 s: every session past the 10th (minus the refill) is flagged
    expect(a.length).toBeGreaterThanOrEqual(15)
    expect(a.length).toBeLessThanOrEqual(20)
    expect(alerts(events, 'PP-EXCESSIVE-AUTH-FAILURES').length).toBe(a.length)
    // a stricter window flags more, a looser one none
    const strict = await replayWithProtections(pcap('ftp_bruteforce_login.pcap'), {auth_failures: {max: 3, window_s: 600}})
    expect(anomalies(strict.events, 'protection.auth_failures').length).toBe(27)
    const loose = await replayWithProtections(pcap('ftp_bruteforce_login.pcap'), {auth_failures: {max: 30, window_s: 60}})
    expect(anomalies(loose.events, 'protection.auth_failures')).toEqual([])
  })

  it('tcp_syn_scan_nmap.pcap raises protection.connection_rate (per source) and PP-EXCESSIVE-CONNECTIONS', async () => {
    const {events} = await replayWithProtections(pcap('tcp_syn_scan_nmap.pcap'))
    const a = anomalies(events, 'protection.connection_rate')
    // ~2000 SYNs in a few seconds: reported once per second of the scan, not once per SYN
    expect(a.length).toBeGreaterThanOrEqual(1)
    expect(a.length).toBeLessThan(50)
    expect(a.every((e) => (e as {src_ip?: string}).src_ip === '172.16.0.8')).toBe(true)
    expect(alerts(events, 'PP-EXCESSIVE-CONNECTIONS').length).toBe(a.length)
  })

  it('no benign capture raises any protection anomaly or alert', async () => {
    const files = fs.readdirSync(corpusDir).filter((f) => f.startsWith('benign_'))
    expect(files.length).toBeGreaterThan(10)
    for (const f of files) {
      const {events} = await replayWithProtections(pcap(f))
      const prot = events.filter((e) => e.event_type === 'anomaly' && String((e as {anomaly?: {event?: string}}).anomaly?.event).startsWith('protection.'))
      expect({f, prot}).toEqual({f, prot: []})
      expect({f, alerts: events.filter((e) => e.event_type === 'alert')}).toEqual({f, alerts: []})
    }
  })

  it('benign_http_pipelined.pcap stays under the request rate, and a tiny limit trips it', async () => {
    const {events} = await replayWithProtections(pcap('benign_http_pipelined.pcap'))
    expect(anomalies(events, 'protection.request_rate')).toEqual([])
    const tight = await replayWithProtections(pcap('benign_http_pipelined.pcap'), {request_rate: {per_second: 0.01, burst: 1}})
    expect(anomalies(tight.events, 'protection.request_rate').length).toBeGreaterThan(0)
  })

  it('the SQL injection captures alert with PP-SQLI', async () => {
    for (const f of ['sqli_dvwa_or_union_http.pcapng', 'sqli_dvwa_union_select_http.pcap']) {
      const {events} = await replayWithProtections(pcap(f))
      expect({f, n: alerts(events, 'PP-SQLI').length > 0}).toEqual({f, n: true})
    }
  })
})
