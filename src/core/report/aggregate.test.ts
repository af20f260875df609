import fc from 'fast-check'
import {describe, expect, it} from 'vitest'
import {parseEveTimestamp} from '../events/eve.js'
import type {EveEvent} from '../events/eve.js'
import type {AnomalyReport} from '../events/anomaly.js'
import {ReportAggregator} from './aggregate.js'
import {parseRetired, parseTime} from './run.js'
import {bruteForce, generateEvents} from './testing.js'
import {SpaceSaving} from './topk.js'

const RUNS = Number(process.env.PATCHPOINT_FUZZ_RUNS ?? 30)

describe('SpaceSaving', () => {
  it('is exact while the keys fit', () => {
    fc.assert(fc.property(fc.array(fc.integer({min: 0, max: 20}), {maxLength: 500}), (xs) => {
      const t = new SpaceSaving(21)
      const m = new Map<string, number>()
      for (const x of xs) {
        t.add(String(x))
        m.set(String(x), (m.get(String(x)) ?? 0) + 1)
      }
      expect(t.evictions).toBe(0)
      for (const [k, v] of m) expect(t.get(k)).toMatchObject({count: v, error: 0})
      const top = t.top()
      for (let i = 1; i < top.length; i++) expect(top[i - 1].count).toBeGreaterThanOrEqual(top[i].count)
    }), {numRuns: RUNS})
  })

  it('bounds: size <= capacity, count-error <= true <= count, heavy hitters kept', () => {
    fc.assert(fc.property(fc.array(fc.integer({min: 0, max: 200}), {minLength: 1, maxLength: 2000}), fc.integer({min: 1, max: 30}), (xs, cap) => {
      const t = new SpaceSaving(cap)
      const m = new Map<string, number>()
      for (const x of xs) {
        t.add(String(x))
        m.set(String(x), (m.get(String(x)) ?? 0) + 1)
      }
      expect(t.size).toBeLessThanOrEqual(cap)
      for (const e of t.top()) {
        const truth = m.get(e.key) ?? 0
        expect(e.count).toBeGreaterThanOrEqual(truth)
        expect(e.count - e.error).toBeLessThanOrEqual(truth)
      }
      for (const [k, v] of m) if (v > xs.length / cap) expect(t.get(k)).toBeDefined()
    }), {numRuns: RUNS})
  })
})

describe('ReportAggregator', () => {
  it('figures equal brute-force counts over a generated stream', () => {
    const events = [...generateEvents(3000, {seed: 7, gateways: ['gw-a', 'gw-b']})]
    const agg = new ReportAggregator({topRows: 1000})
    for (const ev of events) agg.add(ev)
    const r = agg.result()
    const b = bruteForce(events)
    expect(r.totals.events).toBe(b.events)
    expect(r.totals.alerts).toBe(b.alerts)
    expect(r.totals.anomalies).toBe(b.anomalies)
    expect(r.totals.flows).toBe(3000 - b.alerts - b.anomalies)
    expect(r.totals.by_action).toEqual(b.byAction)
    for (const name of ['rules', 'cves', 'sources', 'destinations', 'services', 'gateways'] as const) {
      const got = new Map(r[name].map((x) => [x.key, x.count]))
      expect(got, name).toEqual(b.byKey[name])
    }
    const tl = r.timeline.rows.reduce((a, x) => a + x.fix + x.log + x.drop + x.shadow, 0)
    expect(tl).toBe(b.alerts)
    expect(r.timeline.rows.reduce((a, x) => a + x.anomalies, 0)).toBe(b.anomalies)
    expect(r.limits.approximate).toBe(false)
    expect(r.coverage.gateways).toBe(2)
    expect(r.coverage.shadow_alerts).toBe(b.byAction.shadow)
  })

  it('filters by --since/--until (half-open)', () => {
    const events = [...generateEvents(500, {seed: 3})]
    const ts = events.map((e) => parseEveTimestamp(e.timestamp))
    const since = ts[100]
    const until = ts[400]
    const agg = new ReportAggregator({sinceUs: since, untilUs: until})
    for (const ev of events) agg.add(ev)
    const want = ts.filter((t) => t >= since && t < until).length
    const r = agg.result()
    expect(r.totals.events).toBe(want)
    expect(r.totals.filtered).toBe(500 - want)
  })

  it('patch exposure: days from first alert to retirement, or to the end of the period', () => {
    const day = 86_400_000_000
    const t0 = Date.UTC(2026, 0, 1) * 1000
    const alert = (us: number, host: string, cve: string): EveEvent => ({
      timestamp: new Date(us / 1000).toISOString(), event_type: 'alert', src_ip: '203.0.113.1', dest_ip: host,
      alert: {action: 'blocked', gid: 1, signature_id: 1, rev: 1, signature: 's', category: 'c', severity: 1},
      patchpoint: {action: 'fix', rule_id: 'R', cves: [cve], gateway: 'gw'},
    })
    const agg = new ReportAggregator({
      untilUs: t0 + 30 * day,
      retired: parseRetired(JSON.stringify({version: 1, retired: [{cve: 'CVE-1', host: '192.0.2.1', retired_at: new Date((t0 + 10 * day) / 1000).toISOString()}]})),
    })
    agg.add(alert(t0, '192.0.2.1', 'CVE-1'))
    agg.add(alert(t0 + 2 * day, '192.0.2.1', 'CVE-1'))
    agg.add(alert(t0 + 5 * day, '192.0.2.2', 'CVE-1'))
    const ex = agg.result().exposure
    const byHost = Object.fromEntries(ex.map((e) => [e.host, e]))
    expect(byHost['192.0.2.1']).toMatchObject({status: 'retired', days_shielded: 10, alerts: 2})
    expect(byHost['192.0.2.2']).toMatchObject({status: 'open', days_shielded: 25, retired_at: null})
  })

  it('stays bounded under many distinct keys and reports each limit once', () => {
    const reports: AnomalyReport[] = []
    const agg = new ReportAggregator({capacity: 50, maxExposurePairs: 100, maxTimeBuckets: 10, anomalies: (r) => reports.push(r)})
    fc.assert(fc.property(fc.array(fc.record({
      t: fc.integer({min: 0, max: 2_000_000_000}), src: fc.string({maxLength: 400}), dst: fc.ipV4(), cve: fc.string(), odd: fc.anything(),
    }), {maxLength: 200}), (rows) => {
      for (const x of rows) {
        agg.add({timestamp: new Date(x.t * 1000).toISOString(), event_type: 'alert', src_ip: x.src, dest_ip: x.dst,
          alert: x.odd, patchpoint: {action: 'drop', rule_id: x.src, cves: [x.cve, x.odd], gateway: x.cve}} as unknown as EveEvent)
        agg.add({timestamp: x.src, event_type: x.cve, anomaly: x.odd} as unknown as EveEvent)
      }
      for (const t of [agg.rules, agg.sources, agg.cves, agg.destinations, agg.services, agg.anomalyKinds]) expect(t.size).toBeLessThanOrEqual(50)
      const r = agg.result()
      expect(r.exposure.length).toBeLessThanOrEqual(100)
      for (const row of r.rules) expect(row.key.length).toBeLessThanOrEqual(256)
    }), {numRuns: RUNS})
    const r = agg.result()
    expect(r.limits.approximate).toBe(true)
    const events = reports.map((x) => x.event)
    expect(new Set(events).size).toBe(events.length)
  })

  it('objects where keys belong (a foreign or hand-edited log) are no keys, never a throw', () => {
    const agg = new ReportAggregator()
    const odd = {toString: []}
    agg.add({timestamp: new Date(0).toISOString(), event_type: 'alert', src_ip: odd, dest_ip: '192.0.2.1', alert: {signature_id: odd},
      patchpoint: {action: 'drop', rule_id: 'PP-X', cves: ['CVE-1', odd], gateway: odd}} as unknown as EveEvent)
    agg.add({timestamp: new Date(0).toISOString(), event_type: 'anomaly', anomaly: {type: odd, event: 'e'}} as unknown as EveEvent)
    const r = agg.result()
    expect(r.rules.map((x) => x.key)).toEqual(['PP-X'])
    expect(r.sources.map((x) => x.key)).toEqual(['-'])
    expect(r.anomalies.map((x) => x.key)).toEqual(['/e'])
  })

  it('rolls hourly buckets up to days instead of dropping', () => {
    const agg = new ReportAggregator({maxTimeBuckets: 48})
    const t0 = Date.UTC(2026, 0, 1) * 1000
    for (let h = 0; h < 24 * 10; h++) {
      agg.add({timestamp: new Date((t0 + h * 3_600_000_000) / 1000).toISOString(), event_type: 'anomaly', anomaly: {type: 'decode', event: 'x'}} as EveEvent)
    }
    const r = agg.result()
    expect(r.timeline.bucket).toBe('day')
    expect(r.timeline.rows).toHaveLength(10)
    expect(r.timeline.rows.every((x) => x.anomalies === 24)).toBe(true)
    expect(r.limits.timeline_dropped).toBe(0)
  })
})

describe('parseTime / parseRetired', () => {
  it('reads dates, date-times and relative durations', () => {
    const now = Date.UTC(2026, 2, 10, 12)
    expect(parseTime('2026-03-01', now)).toBe(Date.UTC(2026, 2, 1) * 1000)
    expect(parseTime('2026-03-01T10:00:00Z', now)).toBe(Date.UTC(2026, 2, 1, 10) * 1000)
    expect(parseTime('2026-03-01T10:00:00+02:00', now)).toBe(Date.UTC(2026, 2, 1, 8) * 1000)
    expect(parseTime('24h', now)).toBe((now - 86_400_000) * 1000)
    expect(parseTime('7d', now)).toBe((now - 7 * 86_400_000) * 1000)
    expect(parseTime('yesterday', now)).toBeNaN()
  })
  it('skips bad retired entries and says so', () => {
    const problems: string[] = []
    const r = parseRetired('[{"cve":"CVE-1","retired_at":"2026-01-01"},{"cve":"CVE-2"},{"retired_at":"2026-01-01"}]', 'r.json', problems)
    expect(r).toEqual([{cve: 'CVE-1', retiredUs: Date.UTC(2026, 0, 1) * 1000}])
    expect(problems).toEqual(['r.json: 2 entries without cve or a valid retired_at, ignored'])
    expect(parseRetired('nope', 'r.json', problems)).toEqual([])
    // protect's records: cve + cves, host, port, ...
    const p = parseRetired(JSON.stringify({version: 1, retired: [{host: '10.0.0.5', port: 80, proto: 'tcp', rule_id: 'R', cve: 'CVE-A', cves: ['CVE-A', 'CVE-B'], retired_at: '2026-02-01T00:00:00Z', evidence: {}}]}))
    expect(p.map((x) => [x.cve, x.host])).toEqual([['CVE-A', '10.0.0.5'], ['CVE-B', '10.0.0.5']])
  })
})
