/**
 * Streaming aggregation of EVE events into the figures of `patchpoint report`, in bounded memory
 * whatever the size of the log: every per-key table is a Space-Saving top-N (topk.ts), the
 * exposure table and the time series have named limits, and hitting a limit is reported as a
 * `limit` anomaly (once per limit) and flagged in the result (`limits`), never thrown.
 *
 * Actions: an alert counts under `patchpoint.action` (fix | log | drop), or under `shadow` when
 * the rule ran in shadow mode (it would have acted, only logged). Alerts without patchpoint
 * fields (plain Suricata) count as drop when `alert.action` is `blocked`, else log.
 */
import type {AnomalySink} from '../events/anomaly.js'
import {ignoreAnomalies} from '../events/anomaly.js'
import {parseEveTimestamp} from '../events/eve.js'
import type {EveEvent} from '../events/eve.js'
import {DEFAULT_TOPK_CAPACITY, SpaceSaving} from './topk.js'
import type {TopKEntry} from './topk.js'

/** (gateway, host, CVE) triples tracked for patch exposure; more are dropped and flagged. */
export const MAX_EXPOSURE_PAIRS = 100_000
/** Time buckets held (hours, or days once hours would exceed it); more are dropped and flagged. */
export const MAX_TIME_BUCKETS = 24 * 400
/** Gateways tracked (Space-Saving capacity of the gateway table). */
export const MAX_GATEWAYS = 10_000
/** Rows per table in the result (the tables keep `capacity` keys, the report shows the top). */
export const DEFAULT_TOP_ROWS = 25
/** Time series longer than this many hours are shown per day. */
export const HOURLY_MAX_SPAN_HOURS = 14 * 24
/** Longest string kept from an event field (keys are truncated beyond it). */
export const MAX_KEY_CHARS = 256

export const ACTIONS = ['fix', 'log', 'drop', 'shadow'] as const
export type ReportAction = (typeof ACTIONS)[number]
const A_FIX = 0
const A_LOG = 1
const A_DROP = 2
const A_SHADOW = 3
const S_ANOMALY = 4
const SERIES_WIDTH = 5

const HOUR_US = 3_600_000_000
const DAY_US = 24 * HOUR_US

/** One retirement: the real patch for `cve` is installed on `host` (all hosts when absent). */
export interface RetiredEntry {
  cve: string
  /** protected server (event dest_ip), or absent for every host */
  host?: string
  /** gateway id, or absent for every gateway */
  gateway?: string
  /** microseconds since the epoch */
  retiredUs: number
}

export interface AggregatorOptions {
  /** keep only events at or after / before this time (microseconds since the epoch) */
  sinceUs?: number
  untilUs?: number
  /** keys tracked per table (default DEFAULT_TOPK_CAPACITY) */
  capacity?: number
  maxExposurePairs?: number
  maxTimeBuckets?: number
  maxGateways?: number
  /** rows per table in the result */
  topRows?: number
  /** gateway id for events that carry none (set per input by the caller) */
  defaultGateway?: string
  retired?: readonly RetiredEntry[]
  /** ids of the rules loaded in the project(s), for coverage (undefined: unknown) */
  rulesLoaded?: readonly string[]
  anomalies?: AnomalySink
  /** "now" for open exposures when no --until (microseconds) */
  nowUs?: number
}

export interface CountRow {
  key: string
  count: number
  /** Space-Saving overestimation bound: 0 means exact */
  error: number
  fix: number
  log: number
  drop: number
  shadow: number
  first_seen: string | null
  last_seen: string | null
}

export interface TimelineRow {
  /** bucket start, ISO 8601 UTC */
  start: string
  fix: number
  log: number
  drop: number
  shadow: number
  anomalies: number
}

export interface ExposureRow {
  gateway: string
  host: string
  cve: string
  first_seen: string
  last_seen: string
  alerts: number
  retired_at: string | null
  status: 'retired' | 'open'
  /** days from the first alert to retirement (or to the end of the report when still open) */
  days_shielded: number
}

export interface ReportData {
  generated_at: string
  period: {since: string | null; until: string | null; first_event: string | null; last_event: string | null}
  inputs: {label: string; gateway: string | null; files: string[]; lines: number; events: number; malformed: number}[]
  totals: {
    events: number
    alerts: number
    anomalies: number
    flows: number
    stats: number
    other: number
    /** outside --since/--until */
    filtered: number
    /** events whose timestamp does not parse */
    bad_timestamp: number
    by_action: Record<ReportAction, number>
  }
  timeline: {bucket: 'hour' | 'day'; rows: TimelineRow[]}
  actions: {action: ReportAction; count: number}[]
  rules: CountRow[]
  cves: CountRow[]
  destinations: CountRow[]
  services: CountRow[]
  sources: CountRow[]
  gateways: CountRow[]
  anomalies: CountRow[]
  coverage: {
    rules_loaded: number | null
    rules_fired: number
    /** loaded rules that raised no alert in the period (first 100) */
    rules_silent: string[]
    services_protected: number
    hosts_protected: number
    gateways: number
    shadow_alerts: number
    /** shadow-mode alerts whose rule would have fixed or dropped the traffic */
    shadow_would_block: number
  }
  exposure: ExposureRow[]
  limits: {
    /** true when some table evicted keys: its counts are upper bounds (see `error`) */
    approximate: boolean
    evictions: Record<string, number>
    exposure_dropped: number
    timeline_dropped: number
  }
}

interface ExposureAcc {
  gateway: string
  host: string
  cve: string
  firstUs: number
  lastUs: number
  alerts: number
}

type Extra = Float64Array

const newExtra = (): Extra => new Float64Array(4)

/** an event field as a report key: strings (clipped) and plain numbers; anything else is no key */
function clip(s: unknown): string {
  if (typeof s === 'string') return s.length > MAX_KEY_CHARS ? s.slice(0, MAX_KEY_CHARS) : s
  if (typeof s === 'number' || typeof s === 'bigint' || typeof s === 'boolean') return String(s)
  // an object in a hand-edited or foreign log line: String() would call its own toString (which
  // may throw, e.g. {"toString": []}, or build a huge string)
  return ''
}

export function isoUs(us: number): string | null {
  if (!Number.isFinite(us)) return null
  const d = new Date(Math.floor(us / 1000))
  return Number.isNaN(d.getTime()) ? null : d.toISOString()
}

/** Feed events with `add`; read the figures with `result`. Never throws on odd events. */
export class ReportAggregator {
  readonly rules: SpaceSaving<Extra>
  readonly cves: SpaceSaving<Extra>
  readonly destinations: SpaceSaving<Extra>
  readonly services: SpaceSaving<Extra>
  readonly sources: SpaceSaving<Extra>
  readonly gateways: SpaceSaving<Extra>
  readonly anomalyKinds: SpaceSaving<Extra>
  defaultGateway: string
  private readonly opts: AggregatorOptions
  private readonly sinceUs: number
  private readonly untilUs: number
  private readonly maxExposure: number
  private readonly maxBuckets: number
  private readonly anomalies: AnomalySink
  private readonly exposure = new Map<string, ExposureAcc>()
  private exposureDropped = 0
  /** bucket index (hours or days since the epoch) -> counts */
  private series = new Map<number, Float64Array>()
  private bucketUs = HOUR_US
  private timelineDropped = 0
  private readonly reported = new Set<string>()
  private firstUs = NaN
  private lastUs = NaN
  private shadowWouldBlock = 0
  readonly totals = {events: 0, alerts: 0, anomalies: 0, flows: 0, stats: 0, other: 0, filtered: 0, bad_timestamp: 0}
  readonly byAction = new Float64Array(4)
  readonly inputs: ReportData['inputs'] = []

  constructor(options: AggregatorOptions = {}) {
    this.opts = options
    const cap = options.capacity ?? DEFAULT_TOPK_CAPACITY
    this.rules = new SpaceSaving(cap, newExtra)
    this.cves = new SpaceSaving(cap, newExtra)
    this.destinations = new SpaceSaving(cap, newExtra)
    this.services = new SpaceSaving(cap, newExtra)
    this.sources = new SpaceSaving(cap, newExtra)
    this.anomalyKinds = new SpaceSaving(cap, newExtra)
    this.gateways = new SpaceSaving(options.maxGateways ?? MAX_GATEWAYS, newExtra)
    this.sinceUs = options.sinceUs ?? -Infinity
    this.untilUs = options.untilUs ?? Infinity
    this.maxExposure = options.maxExposurePairs ?? MAX_EXPOSURE_PAIRS
    this.maxBuckets = Math.max(2, options.maxTimeBuckets ?? MAX_TIME_BUCKETS)
    this.anomalies = options.anomalies ?? ignoreAnomalies
    this.defaultGateway = options.defaultGateway ?? 'unknown'
  }

  private limitOnce(event: string, detail: Record<string, number | string>): void {
    if (this.reported.has(event)) return
    this.reported.add(event)
    this.anomalies({type: 'limit', event, detail})
  }

  /** Count one event. */
  add(ev: EveEvent): void {
    const ts = typeof ev.timestamp === 'string' ? parseEveTimestamp(ev.timestamp) : NaN
    if (Number.isNaN(ts)) {
      if (this.sinceUs !== -Infinity || this.untilUs !== Infinity) {
        this.totals.filtered++
        this.totals.bad_timestamp++
        return
      }
      this.totals.bad_timestamp++
    } else if (ts < this.sinceUs || ts >= this.untilUs) {
      this.totals.filtered++
      return
    }
    this.totals.events++
    if (!(this.firstUs <= ts)) this.firstUs = ts
    if (!(this.lastUs >= ts)) this.lastUs = ts
    const pp = (ev as {patchpoint?: {gateway?: unknown}}).patchpoint
    const hostField = (ev as {host?: unknown}).host
    const gateway = clip(typeof hostField === 'string' && hostField !== '' ? hostField
      : pp && typeof pp.gateway === 'string' && pp.gateway !== '' ? pp.gateway : this.defaultGateway)
    switch (ev.event_type) {
      case 'alert':
        this.addAlert(ev, ts, gateway)
        break
      case 'anomaly': {
        this.totals.anomalies++
        const a = (ev as {anomaly?: {type?: unknown; event?: unknown}}).anomaly
        const key = a && typeof a === 'object' ? `${clip(a.type)}/${clip(a.event)}` : 'unknown'
        this.anomalyKinds.add(key, ts)
        this.gateways.add(gateway, ts)
        this.bucket(ts, S_ANOMALY)
        break
      }
      case 'flow':
        this.totals.flows++
        break
      case 'stats':
        this.totals.stats++
        break
      default:
        this.totals.other++
    }
  }

  private addAlert(ev: EveEvent, ts: number, gateway: string): void {
    this.totals.alerts++
    const o = ev as unknown as Record<string, unknown>
    const pp = (o.patchpoint && typeof o.patchpoint === 'object' ? o.patchpoint : undefined) as Record<string, unknown> | undefined
    const alert = (o.alert && typeof o.alert === 'object' ? o.alert : {}) as Record<string, unknown>
    let a: number
    if (pp && pp.shadow === true) {
      a = A_SHADOW
      if (pp.action === 'fix' || pp.action === 'drop') this.shadowWouldBlock++
    } else if (pp && (pp.action === 'fix' || pp.action === 'log' || pp.action === 'drop')) {
      a = pp.action === 'fix' ? A_FIX : pp.action === 'log' ? A_LOG : A_DROP
    } else a = alert.action === 'blocked' ? A_DROP : A_LOG
    this.byAction[a]++
    this.bucket(ts, a)
    const rule = pp && typeof pp.rule_id === 'string' ? clip(pp.rule_id) : `sid:${clip(alert.signature_id)}`
    this.rules.add(rule, ts).extra[a]++
    this.gateways.add(gateway, ts).extra[a]++
    const src = clip(o.src_ip) || '-'
    const dst = clip(o.dest_ip) || '-'
    this.sources.add(src, ts).extra[a]++
    this.destinations.add(dst, ts).extra[a]++
    const svc = typeof o.app_proto === 'string' && o.app_proto !== '' && o.app_proto !== 'failed'
      ? clip(o.app_proto).toLowerCase()
      : `${typeof o.proto === 'string' ? o.proto.toLowerCase() : clip(o.proto) || 'ip'}/${clip(o.dest_port) || '-'}`
    this.services.add(svc, ts).extra[a]++
    const cves = pp && Array.isArray(pp.cves) ? pp.cves : undefined
    if (cves) {
      for (let i = 0; i < cves.length && i < 64; i++) {
        const cve = clip(cves[i])
        if (cve === '') continue
        this.cves.add(cve, ts).extra[a]++
        if (!Number.isNaN(ts)) this.expose(gateway, dst, cve, ts)
      }
    }
  }

  private expose(gateway: string, host: string, cve: string, ts: number): void {
    const key = `${gateway}\u0000${host}\u0000${cve}`
    let e = this.exposure.get(key)
    if (!e) {
      if (this.exposure.size >= this.maxExposure) {
        this.exposureDropped++
        this.limitOnce('report.exposure_limit', {limit: 'maxExposurePairs', value: this.maxExposure})
        return
      }
      e = {gateway, host, cve, firstUs: ts, lastUs: ts, alerts: 0}
      this.exposure.set(key, e)
    }
    e.alerts++
    if (ts < e.firstUs) e.firstUs = ts
    if (ts > e.lastUs) e.lastUs = ts
  }

  private bucket(ts: number, col: number): void {
    if (Number.isNaN(ts)) return
    const b = Math.floor(ts / this.bucketUs)
    let row = this.series.get(b)
    if (!row) {
      if (this.series.size >= this.maxBuckets) {
        if (this.bucketUs === HOUR_US) {
          this.rollToDays()
          this.bucket(ts, col)
          return
        }
        this.timelineDropped++
        this.limitOnce('report.timeline_limit', {limit: 'maxTimeBuckets', value: this.maxBuckets})
        return
      }
      row = new Float64Array(SERIES_WIDTH)
      this.series.set(b, row)
    }
    row[col]++
  }

  private rollToDays(): void {
    const days = new Map<number, Float64Array>()
    for (const [h, row] of this.series) {
      const d = Math.floor((h * HOUR_US) / DAY_US)
      const acc = days.get(d)
      if (acc) for (let i = 0; i < SERIES_WIDTH; i++) acc[i] += row[i]
      else days.set(d, row)
    }
    this.series = days
    this.bucketUs = DAY_US
  }

  /** Record an input's reader statistics (shown in the report). */
  addInput(input: ReportData['inputs'][number]): void {
    this.inputs.push(input)
  }

  result(now = Date.now() * 1000): ReportData {
    const n = this.opts.topRows ?? DEFAULT_TOP_ROWS
    const rows = (t: SpaceSaving<Extra>, limit = n): CountRow[] => t.top(limit).map(countRow)
    const ev: Record<string, number> = {}
    const tables: [string, SpaceSaving<Extra>][] = [['rules', this.rules], ['cves', this.cves], ['destinations', this.destinations],
      ['services', this.services], ['sources', this.sources], ['gateways', this.gateways], ['anomalies', this.anomalyKinds]]
    for (const [name, t] of tables) ev[name] = t.evictions
    const endUs = this.untilUs !== Infinity ? this.untilUs : (this.opts.nowUs ?? now)
    const loaded = this.opts.rulesLoaded
    const silent = loaded ? loaded.filter((id) => this.rules.get(id) === undefined) : []
    return {
      generated_at: new Date(Math.floor(now / 1000)).toISOString(),
      period: {
        since: this.sinceUs === -Infinity ? null : isoUs(this.sinceUs),
        until: this.untilUs === Infinity ? null : isoUs(this.untilUs),
        first_event: isoUs(this.firstUs),
        last_event: isoUs(this.lastUs),
      },
      inputs: this.inputs,
      totals: {...this.totals, by_action: {fix: this.byAction[A_FIX], log: this.byAction[A_LOG], drop: this.byAction[A_DROP], shadow: this.byAction[A_SHADOW]}},
      timeline: this.timeline(),
      actions: ACTIONS.map((action, i) => ({action, count: this.byAction[i]})),
      rules: rows(this.rules),
      cves: rows(this.cves),
      destinations: rows(this.destinations),
      services: rows(this.services),
      sources: rows(this.sources),
      gateways: rows(this.gateways, this.gateways.capacity),
      anomalies: rows(this.anomalyKinds),
      coverage: {
        rules_loaded: loaded ? loaded.length : null,
        rules_fired: this.rules.size,
        rules_silent: silent.slice(0, 100),
        services_protected: this.services.size,
        hosts_protected: this.destinations.size,
        gateways: this.gateways.size,
        shadow_alerts: this.byAction[A_SHADOW],
        shadow_would_block: this.shadowWouldBlock,
      },
      exposure: this.exposureRows(endUs),
      limits: {
        approximate: Object.values(ev).some((v) => v > 0),
        evictions: ev,
        exposure_dropped: this.exposureDropped,
        timeline_dropped: this.timelineDropped,
      },
    }
  }

  private timeline(): ReportData['timeline'] {
    let series = this.series
    let size = this.bucketUs
    const keys = [...series.keys()]
    if (keys.length === 0) return {bucket: size === HOUR_US ? 'hour' : 'day', rows: []}
    let lo = Math.min(...keys)
    let hi = Math.max(...keys)
    if (size === HOUR_US && hi - lo + 1 > HOURLY_MAX_SPAN_HOURS) {
      const days = new Map<number, Float64Array>()
      for (const [h, row] of series) {
        const d = Math.floor((h * HOUR_US) / DAY_US)
        const acc = days.get(d) ?? new Float64Array(SERIES_WIDTH)
        for (let i = 0; i < SERIES_WIDTH; i++) acc[i] += row[i]
        days.set(d, acc)
      }
      series = days
      size = DAY_US
      lo = Math.floor((lo * HOUR_US) / DAY_US)
      hi = Math.floor((hi * HOUR_US) / DAY_US)
    }
    const out: TimelineRow[] = []
    const fill = hi - lo + 1 <= this.maxBuckets
    const idx = fill ? Array.from({length: hi - lo + 1}, (_, i) => lo + i) : [...series.keys()].sort((a, b) => a - b)
    for (const b of idx) {
      const r = series.get(b)
      out.push({
        start: isoUs(b * size) ?? '',
        fix: r ? r[A_FIX] : 0, log: r ? r[A_LOG] : 0, drop: r ? r[A_DROP] : 0, shadow: r ? r[A_SHADOW] : 0, anomalies: r ? r[S_ANOMALY] : 0,
      })
    }
    return {bucket: size === HOUR_US ? 'hour' : 'day', rows: out}
  }

  private exposureRows(endUs: number): ExposureRow[] {
    const retired = this.opts.retired ?? []
    const out: ExposureRow[] = []
    for (const e of this.exposure.values()) {
      let ret = NaN
      for (const r of retired) {
        if (r.cve !== e.cve) continue
        if (r.host !== undefined && r.host !== e.host) continue
        if (r.gateway !== undefined && r.gateway !== e.gateway) continue
        if (Number.isNaN(ret) || r.retiredUs < ret) ret = r.retiredUs
      }
      const retiredNow = Number.isFinite(ret) && ret <= endUs
      const end = retiredNow ? ret : Math.max(endUs, e.lastUs)
      out.push({
        gateway: e.gateway,
        host: e.host,
        cve: e.cve,
        first_seen: isoUs(e.firstUs) ?? '',
        last_seen: isoUs(e.lastUs) ?? '',
        alerts: e.alerts,
        retired_at: retiredNow ? isoUs(ret) : null,
        status: retiredNow ? 'retired' : 'open',
        days_shielded: Math.max(0, Math.round(((end - e.firstUs) / DAY_US) * 100) / 100),
      })
    }
    out.sort((a, b) => b.days_shielded - a.days_shielded || a.cve.localeCompare(b.cve) || a.host.localeCompare(b.host) || a.gateway.localeCompare(b.gateway))
    return out
  }
}

function countRow(e: TopKEntry<Extra>): CountRow {
  return {
    key: e.key, count: e.count, error: e.error,
    fix: e.extra[A_FIX], log: e.extra[A_LOG], drop: e.extra[A_DROP], shadow: e.extra[A_SHADOW],
    first_seen: isoUs(e.firstUs), last_seen: isoUs(e.lastUs),
  }
}
