/**
 * Test helpers: deterministic synthetic EVE events, and brute-force counts to check the
 * streaming aggregator against.
 */
import {formatEveTimestamp} from '../events/eve.js'
import type {EveEvent} from '../events/eve.js'

/** xorshift32: small deterministic PRNG */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s / 0x1_0000_0000
  }
}

export interface GenOptions {
  seed?: number
  /** first event time, microseconds */
  startUs?: number
  /** mean gap between events, microseconds */
  stepUs?: number
  gateways?: string[]
  sources?: number
  /** pad each event with this many bytes of signature text (for big logs) */
  pad?: number
}

const RULES = [['PP-2021-44228', 'CVE-2021-44228'], ['PP-2011-3192', 'CVE-2011-3192'], ['PP-SHELLSHOCK', 'CVE-2014-6271'], ['PP-SMBGHOST', 'CVE-2020-0796']]
const ACTIONS = ['fix', 'log', 'drop'] as const

/** Event number i of a deterministic stream (alerts ~85%, anomalies ~10%, flows ~5%). */
export function* generateEvents(n: number, o: GenOptions = {}): Generator<EveEvent> {
  const r = rng(o.seed ?? 1)
  const gws = o.gateways ?? ['gw-01']
  const nsrc = o.sources ?? 50
  let t = o.startUs ?? Date.UTC(2026, 0, 1) * 1000
  const step = o.stepUs ?? 60_000_000
  const pad = o.pad ? 'x'.repeat(o.pad) : ''
  for (let i = 0; i < n; i++) {
    t += Math.floor(r() * step * 2)
    const ts = formatEveTimestamp(t)
    const gw = gws[Math.floor(r() * gws.length)]
    const src = `203.0.113.${1 + Math.floor(r() * nsrc)}`
    const x = r()
    if (x < 0.85) {
      const [rule, cve] = RULES[Math.floor(r() * RULES.length)]
      const shadow = r() < 0.1
      yield {
        timestamp: ts, flow_id: i, event_type: 'alert', src_ip: src, src_port: 40000 + (i % 20000),
        dest_ip: `192.0.2.${1 + Math.floor(r() * 5)}`, dest_port: rule === 'PP-SMBGHOST' ? 445 : 80, proto: 'TCP',
        app_proto: rule === 'PP-SMBGHOST' ? 'smb' : 'http',
        alert: {action: 'blocked', gid: 1, signature_id: 9000000 + i % 4, rev: 1, signature: `${rule} ${pad}`, category: 'virtual patch', severity: 1},
        patchpoint: {action: ACTIONS[Math.floor(r() * 3)], rule_id: rule, cves: [cve], gateway: gw, ...(shadow ? {shadow: true} : {})},
        ...({host: gw} as object),
      } as EveEvent
    } else if (x < 0.95) {
      yield {timestamp: ts, event_type: 'anomaly', src_ip: src, dest_ip: '192.0.2.1', anomaly: {type: 'stream', event: r() < 0.5 ? 'tcp.overlap_conflict' : 'tcp.reassembly_memcap'}, ...({host: gw} as object)} as EveEvent
    } else {
      yield {timestamp: ts, event_type: 'flow', src_ip: src, dest_ip: '192.0.2.1', flow: {pkts_toserver: 1, pkts_toclient: 1, bytes_toserver: 60, bytes_toclient: 60, start: ts, end: ts, age: 0, state: 'closed', reason: 'timeout', alerted: false}, ...({host: gw} as object)} as EveEvent
    }
  }
}

export interface BruteCounts {
  events: number
  alerts: number
  anomalies: number
  byAction: Record<string, number>
  byKey: Record<'rules' | 'cves' | 'sources' | 'destinations' | 'services' | 'gateways', Map<string, number>>
}

/** Exact counts the simple way (whole maps in memory), for small streams. */
export function bruteForce(events: Iterable<EveEvent>): BruteCounts {
  const c: BruteCounts = {events: 0, alerts: 0, anomalies: 0, byAction: {fix: 0, log: 0, drop: 0, shadow: 0},
    byKey: {rules: new Map(), cves: new Map(), sources: new Map(), destinations: new Map(), services: new Map(), gateways: new Map()}}
  const inc = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1)
  for (const ev of events) {
    c.events++
    const gw = (ev as {host?: string}).host ?? ev.patchpoint?.gateway ?? 'unknown'
    if (ev.event_type === 'anomaly') {
      c.anomalies++
      inc(c.byKey.gateways, gw)
    }
    if (ev.event_type !== 'alert') continue
    c.alerts++
    const pp = ev.patchpoint!
    c.byAction[pp.shadow ? 'shadow' : pp.action]++
    inc(c.byKey.rules, pp.rule_id)
    for (const cve of pp.cves) inc(c.byKey.cves, cve)
    inc(c.byKey.sources, ev.src_ip!)
    inc(c.byKey.destinations, ev.dest_ip!)
    inc(c.byKey.services, ev.app_proto!)
    inc(c.byKey.gateways, gw)
  }
  return c
}
