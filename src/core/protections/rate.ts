/**
 * Excessive requests, per source IP and service (server ip:port), in packet time:
 *
 *   protection.request_rate     HTTP requests, SMTP/FTP/IMAP/POP3 commands above a token bucket
 *   protection.connection_rate  new connections above a token bucket per source+service, and
 *                               per source over all services (port scans)
 *   protection.auth_failures    failed logins above `max` per `window_s` (a token bucket of
 *                               size max refilled at max/window_s): FTP 530/5xx after PASS or
 *                               USER, SMTP 535, IMAP NO to LOGIN/AUTHENTICATE, POP3 -ERR to
 *                               PASS/APOP/AUTH, MySQL auth failures
 *   protection.slow_request     a source holding `max_per_source` or more flows whose request
 *                               (head, or body the analyzer holds) has been incomplete for
 *                               `head_timeout_s` (slowloris, slow POST)
 *
 * Each crossing is reported as an anomaly (type 'protection') on the flow that crossed it; the
 * engine writes the EVE anomaly and judges it like any unit, so rules
 * (rules/generic/PP-EXCESSIVE-*.yaml) decide the action. The engine reports one event per code
 * and flow, so a flood costs one event per offending flow.
 *
 * Bounded: source and source+service entries live in LRU maps (lru.ts) of `max_sources` entries each;
 * flows watched for slow requests (TCP flows whose client sent bytes since a scan last found
 * nothing pending: a SYN scan's flows never are) are capped at MAX_WATCHED_FLOWS. Per-flow state lives in the flow's `protection` slot. A full table forgets the
 * least recently seen entry and reports `protection.table_full` (type 'limit') once per tick.
 *
 * A flow's slot holds its service entry alone while that entry's `src` is the flow's source entry
 * (the usual case: most flows of a scan never send a byte, and cost no object of their own); a
 * FlowState (service, source, pending clock) replaces it when the client sends bytes, or at the
 * start when the service entry outlived its source entry's eviction. (An evicted source entry stays
 * reachable from the service entries made with it: at most one per service entry, so the maps'
 * cap still bounds them.)
 */
import type {AnomalyReport} from '../events/anomaly.js'
import type {Pdu} from '../analyzers/types.js'
import type {EngineFlow, ProtectionReport} from '../engine/engine.js'
import type {ProtectionsConfig} from './config.js'
import {TupleLru, type LruLinks, type TupleEntry} from './lru.js'

/** TCP flows watched for incomplete requests at once (the rest are not watched; reported). */
export const MAX_WATCHED_FLOWS = 65_536

/**
 * A scan or flood over the limit would otherwise raise one event per connection or request:
 * each source and service reports a crossed rate at most once per this much packet time.
 */
export const REPORT_EVERY_US = 1_000_000

export interface RateOptions {
  maxWatchedFlows?: number
}

/**
 * Token bucket state, kept as plain numbers in the entries (no object per bucket). Entries are
 * class instances, not object literals: their number fields change representation (whole ->
 * fractional tokens, addresses beyond V8's small-integer range), and in profiles of a replay
 * building them as literals cost several times as much as constructing them.
 */
class ServiceEntry implements TupleEntry {
  lruPrev: LruLinks | null = null
  lruNext: LruLinks | null = null
  /** the source entry of the client when this entry was made (it stays, evicted or not) */
  src: SourceEntry | null = null
  authFailures = 0
  /** packet time of the last rate report for this service (reports are at most one per REPORT_EVERY_US) */
  reportedUs = -Infinity

  constructor(
    readonly k0: number,
    readonly k1: number,
    readonly k2: number,
    readonly text: string | null,
    public reqTokens: number,
    public reqUs: number,
    public connTokens: number,
    public connUs: number,
    public authTokens: number,
    public authUs: number,
    /** the tick in which the entry last moved to the recent end of its LRU map */
    public touchedTick: number,
  ) {}
}

class SourceEntry implements TupleEntry {
  lruPrev: LruLinks | null = null
  lruNext: LruLinks | null = null
  readonly k1 = 0
  readonly k2 = 0
  /** slow flows counted during the current tick */
  slow = 0
  slowTick = 0
  reportedUs = -Infinity

  constructor(
    readonly k0: number,
    readonly text: string | null,
    public connTokens: number,
    public connUs: number,
    public touchedTick: number,
  ) {}
}

class FlowState {
  /** packet time since which the toserver direction has had a pending unit (0 = none seen) */
  pendingSinceUs = 0
  /** in `watched`: the client sent bytes since the last scan found nothing pending */
  watched = false

  constructor(readonly svc: ServiceEntry, readonly src: SourceEntry) {}
}

/** Refill then take one token; returns false when the bucket was empty (the limit is crossed). */
function take(tokens: number, lastUs: number, nowUs: number, perSecond: number, burst: number): number {
  let t = tokens + (Math.max(0, nowUs - lastUs) / 1e6) * perSecond
  if (t > burst) t = burst
  return t - 1
}

export class RateProtection {
  /** by client, server, port and protocol (IPv4: three integers, see begin; IPv6: text) */
  private readonly services = new TupleLru<ServiceEntry>()
  /** by client address (IPv4: the address as an integer; IPv6: its text) */
  private readonly sources = new TupleLru<SourceEntry>()
  private readonly watched = new Set<EngineFlow>()
  private readonly maxWatched: number
  private tickNo = 0
  /** limit events already reported this tick */
  private readonly limitsReported = new Set<string>()

  constructor(private readonly cfg: ProtectionsConfig, opts: RateOptions = {}) {
    this.maxWatched = opts.maxWatchedFlows ?? MAX_WATCHED_FLOWS
  }

  /** entries tracked now (for tests and stats) */
  get size(): {services: number; sources: number; watched: number} {
    return {services: this.services.size, sources: this.sources.size, watched: this.watched.size}
  }

  onFlowStart(flow: EngineFlow, report: ProtectionReport): void {
    const st = (flow.protection as ServiceEntry | FlowState | null) ?? this.begin(flow, report)
    const c = this.cfg.connection_rate
    const now = flow.startUs
    if (c.enabled) {
      const svc = st instanceof FlowState ? st.svc : st
      const t = take(svc.connTokens, svc.connUs, now, c.per_second, c.burst)
      svc.connUs = now
      const src = st instanceof FlowState ? st.src : st.src!
      const u = take(src.connTokens, src.connUs, now, c.per_source_per_second, c.per_source_burst)
      src.connUs = now
      if (t < 0) {
        svc.connTokens = 0
        if (now - svc.reportedUs >= REPORT_EVERY_US) {
          svc.reportedUs = now
          report({type: 'protection', event: 'protection.connection_rate', detail: {scope: 'service', per_second: c.per_second, burst: c.burst}}, flow)
        }
      } else svc.connTokens = t
      if (u < 0) {
        src.connTokens = 0
        if (t >= 0 && now - src.reportedUs >= REPORT_EVERY_US) {
          src.reportedUs = now
          report({type: 'protection', event: 'protection.connection_rate', detail: {scope: 'source', per_second: c.per_source_per_second, burst: c.per_source_burst}}, flow)
        }
      } else src.connTokens = u
    }
  }

  /**
   * The client sent bytes: the flow may now hold an incomplete request, so it is watched until a
   * scan finds nothing pending (an idle keep-alive flow costs the scans nothing).
   */
  onClientData(flow: EngineFlow, report: ProtectionReport): void {
    if (!this.cfg.slow_requests.enabled || flow.proto !== 6) return
    const st = this.stateOf(flow, report)
    if (st.watched) return
    if (this.watched.size < this.maxWatched) {
      this.watched.add(flow)
      st.watched = true
    } else this.limit(report, 'protection.watched_flows', this.maxWatched)
  }

  onPdu(pdu: Pdu, flow: EngineFlow, report: ProtectionReport): void {
    const st = (flow.protection as ServiceEntry | FlowState | null) ?? this.begin(flow, report)
    const svc = st instanceof FlowState ? st.svc : st
    const now = flow.lastUs
    if (pdu.dir === 'toserver') {
      if (st instanceof FlowState) st.pendingSinceUs = 0
      if (isRequest(pdu)) {
        const r = this.cfg.request_rate
        if (!r.enabled) return
        const t = take(svc.reqTokens, svc.reqUs, now, r.per_second, r.burst)
        svc.reqUs = now
        if (t < 0) {
          svc.reqTokens = 0
          if (now - svc.reportedUs >= REPORT_EVERY_US) {
            svc.reportedUs = now
            report({type: 'protection', event: 'protection.request_rate', detail: {per_second: r.per_second, burst: r.burst, protocol: pdu.protocol}}, flow)
          }
        } else svc.reqTokens = t
      }
      return
    }
    if (!this.cfg.auth_failures.enabled || !isAuthFailure(pdu)) return
    const a = this.cfg.auth_failures
    svc.authFailures++
    const t = take(svc.authTokens, svc.authUs, now, a.max / a.window_s, a.max)
    svc.authUs = now
    if (t < 0) {
      svc.authTokens = 0
      report({type: 'protection', event: 'protection.auth_failures', detail: {max: a.max, window_s: a.window_s, failures: svc.authFailures, protocol: pdu.protocol}}, flow)
    } else svc.authTokens = t
  }

  tick(nowUs: number, report: ProtectionReport): void {
    this.tickNo++
    // clearing a Set builds a new table even when it is empty: most ticks report no limit
    if (this.limitsReported.size > 0) this.limitsReported.clear()
    const s = this.cfg.slow_requests
    if (!s.enabled) {
      this.watched.clear()
      return
    }
    // incomplete requests are only interesting after head_timeout_s: scanning every watched flow
    // every second would cost O(flows) per second for a verdict that needs seconds anyway
    const every = Math.max(1, Math.floor(s.head_timeout_s / 4))
    if (this.tickNo % every !== 0) return
    const timeoutUs = s.head_timeout_s * 1e6
    const tick = this.tickNo
    // pass 1: update pending state, count slow flows per source
    let over = false
    for (const flow of this.watched) {
      if (flow.ended) {
        this.watched.delete(flow)
        continue
      }
      const st = flow.protection as FlowState | null
      if (!st) continue
      if (!pendingToServer(flow)) {
        // nothing pending: unwatched until the client sends again (onClientData)
        st.pendingSinceUs = 0
        st.watched = false
        this.watched.delete(flow)
        continue
      }
      if (st.pendingSinceUs === 0) {
        // first tick that sees it pending: the clock starts now (1 s granularity)
        st.pendingSinceUs = nowUs
        continue
      }
      if (nowUs - st.pendingSinceUs < timeoutUs) continue
      if (st.src.slowTick !== tick) {
        st.src.slowTick = tick
        st.src.slow = 0
      }
      if (++st.src.slow >= s.max_per_source) over = true
    }
    // pass 2 (only when some source reached the limit): flag every slow flow of such a source
    if (!over) return
    for (const flow of this.watched) {
      const st = flow.protection as FlowState | null
      if (!st || st.pendingSinceUs === 0 || nowUs - st.pendingSinceUs < timeoutUs) continue
      if (st.src.slowTick === tick && st.src.slow >= s.max_per_source) {
        report({type: 'protection', event: 'protection.slow_request', detail: {
          incomplete_s: Math.floor((nowUs - st.pendingSinceUs) / 1e6), flows: st.src.slow, max_per_source: s.max_per_source,
        }}, flow)
      }
    }
  }

  /** the flow's own state (made from its service entry the first time) */
  private stateOf(flow: EngineFlow, report: ProtectionReport): FlowState {
    const p = (flow.protection as ServiceEntry | FlowState | null) ?? this.begin(flow, report)
    if (p instanceof FlowState) return p
    const st = new FlowState(p, p.src!)
    flow.protection = st
    return st
  }

  /** find or make the flow's service and source entries; the flow's slot gets one of the two forms */
  private begin(flow: EngineFlow, report: ProtectionReport): ServiceEntry | FlowState {
    const v4 = flow.family === 4
    // IPv4: keys are integers (no text per flow): client, server, port and protocol as (port << 8 | proto)
    const c4 = v4 ? flow.clientAddr4 | 0 : 0
    const s4 = v4 ? flow.serverAddr4 | 0 : 0
    const pp = v4 ? (flow.serverPort << 8) | flow.proto : 0
    const svcText = v4 ? null : `${flow.clientIp}|${flow.serverIp}|${flow.proto}|${flow.serverPort}`
    const srcText = v4 ? null : flow.clientIp
    let svc = svcText === null ? this.services.get4(c4, s4, pp) : this.services.getText(svcText)
    const made = svc === undefined
    if (svc) {
      // LRU order only needs to be right to the second: move an entry at most once per tick
      if (svc.touchedTick !== this.tickNo) {
        svc.touchedTick = this.tickNo
        this.services.touch(svc)
      }
    } else {
      const c = this.cfg
      const t0 = flow.startUs
      svc = new ServiceEntry(c4, s4, pp, svcText, c.request_rate.burst, t0, c.connection_rate.burst, t0, c.auth_failures.max, t0, this.tickNo)
      if (this.services.size >= this.cfg.max_sources) this.evict(this.services, report)
      this.services.set(svc)
    }
    let src = srcText === null ? this.sources.get4(c4, 0, 0) : this.sources.getText(srcText)
    if (src) {
      if (src.touchedTick !== this.tickNo) {
        src.touchedTick = this.tickNo
        this.sources.touch(src)
      }
    } else {
      src = new SourceEntry(c4, srcText, this.cfg.connection_rate.per_source_burst, flow.startUs, this.tickNo)
      if (this.sources.size >= this.cfg.max_sources) this.evict(this.sources, report)
      this.sources.set(src)
    }
    if (made) svc.src = src
    const st = svc.src === src ? svc : new FlowState(svc, src)
    flow.protection = st
    return st
  }

  private evict(map: TupleLru<ServiceEntry> | TupleLru<SourceEntry>, report: ProtectionReport): void {
    map.evictOldest()
    this.limit(report, 'protection.table_full', this.cfg.max_sources)
  }

  private limit(report: ProtectionReport, event: string, limit: number): void {
    if (this.limitsReported.has(event)) return
    this.limitsReported.add(event)
    const a: AnomalyReport = {type: 'limit', event, detail: {limit}}
    report(a, null)
  }
}

const COMMAND_PROTOCOLS = new Set(['smtp', 'ftp', 'imap', 'pop3'])

/** a client request: an HTTP request head or a mail/FTP command line */
export function isRequest(pdu: Pdu): boolean {
  if (pdu.protocol === 'http') return pdu.kind === 'request'
  return pdu.kind === 'command' && COMMAND_PROTOCOLS.has(pdu.protocol)
}

function str(pdu: Pdu, name: string): string | undefined {
  const e = pdu.fields.get(name)
  if (e === undefined) return undefined
  const v = Array.isArray(e) ? e[0]?.v : e.v
  return v === undefined ? undefined : String(v)
}

function num(pdu: Pdu, name: string): number | undefined {
  const e = pdu.fields.get(name)
  if (e === undefined) return undefined
  const v = Array.isArray(e) ? e[0]?.v : e.v
  if (v === undefined) return undefined
  // a number as it is (its text read back is the same number): no string per reply
  return typeof v === 'number' ? v : Number(String(v))
}

/** a server reply that says a login failed */
export function isAuthFailure(pdu: Pdu): boolean {
  if (pdu.dir !== 'toclient') return false
  switch (pdu.protocol) {
    case 'ftp': {
      if (pdu.kind !== 'reply') return false
      const code = num(pdu, 'ftp.reply.code')
      const cmd = str(pdu, 'ftp.reply.command')
      if (code === undefined) return false
      if (cmd === 'PASS') return code >= 500 && code < 600
      return code === 530 && (cmd === 'USER' || cmd === 'ACCT')
    }
    case 'smtp':
      return pdu.kind === 'reply' && num(pdu, 'smtp.reply.code') === 535
    case 'imap': {
      const cmd = str(pdu, 'imap.response.command')
      return str(pdu, 'imap.response.status') === 'NO' && (cmd === 'LOGIN' || cmd === 'AUTHENTICATE')
    }
    case 'pop3': {
      if (pdu.kind !== 'reply' || str(pdu, 'pop3.reply.status') !== '-ERR') return false
      const cmd = str(pdu, 'pop3.reply.command')
      return cmd === 'PASS' || cmd === 'APOP' || cmd === 'AUTH'
    }
    case 'mysql':
      return num(pdu, 'mysql.auth_failed') === 1
  }
  return false
}

/** the client has sent bytes of a unit the analyzer has not completed (or detection still holds) */
function pendingToServer(flow: EngineFlow): boolean {
  if (flow.analyzer) return flow.analyzer.pendingFrom('toserver') >= 0
  return !flow.detectDone && (flow.detectToServer?.length ?? 0) > 0
}
