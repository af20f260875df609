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
 * flows watched for slow requests (TCP flows whose client has sent bytes: a SYN scan's flows never
 * are) are capped at MAX_WATCHED_FLOWS. Per-flow state lives in the flow's `protection` slot. A full table forgets the
 * least recently seen entry and reports `protection.table_full` (type 'limit') once per tick.
 */
import type {AnomalyReport} from '../events/anomaly.js'
import type {Pdu} from '../analyzers/types.js'
import type {EngineFlow, ProtectionReport} from '../engine/engine.js'
import type {ProtectionsConfig} from './config.js'
import {LruMap, type LruEntry} from './lru.js'

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

/** Token bucket state, kept as plain numbers in the entries (no object per bucket). */
interface ServiceEntry extends LruEntry<string> {
  reqTokens: number
  reqUs: number
  connTokens: number
  connUs: number
  authTokens: number
  authUs: number
  authFailures: number
  /** packet time of the last rate report for this service (reports are at most one per REPORT_EVERY_US) */
  reportedUs: number
  /** the tick in which the entry last moved to the recent end of its LRU map */
  touchedTick: number
}

interface SourceEntry extends LruEntry<string | number> {
  connTokens: number
  connUs: number
  /** slow flows counted during the current tick */
  slow: number
  slowTick: number
  reportedUs: number
  touchedTick: number
}

interface FlowState {
  svc: ServiceEntry
  src: SourceEntry
  /** packet time since which the toserver direction has had a pending unit (0 = none seen) */
  pendingSinceUs: number
}

/** Refill then take one token; returns false when the bucket was empty (the limit is crossed). */
function take(tokens: number, lastUs: number, nowUs: number, perSecond: number, burst: number): number {
  let t = tokens + (Math.max(0, nowUs - lastUs) / 1e6) * perSecond
  if (t > burst) t = burst
  return t - 1
}

export class RateProtection {
  /** by client . server . port . proto (IPv4: a six-unit binary string, see stateOf) */
  private readonly services = new LruMap<string, ServiceEntry>()
  /** by client address: a number for IPv4, the text for IPv6 */
  private readonly sources = new LruMap<string | number, SourceEntry>()
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
    const st = this.stateOf(flow, report)
    const c = this.cfg.connection_rate
    const now = flow.startUs
    if (c.enabled) {
      const svc = st.svc
      const t = take(svc.connTokens, svc.connUs, now, c.per_second, c.burst)
      svc.connUs = now
      const src = st.src
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

  /** the client sent its first bytes: from now on the flow can hold an incomplete request */
  onClientData(flow: EngineFlow, report: ProtectionReport): void {
    if (!this.cfg.slow_requests.enabled || flow.proto !== 6) return
    if (this.watched.size < this.maxWatched) this.watched.add(flow)
    else this.limit(report, 'protection.watched_flows', this.maxWatched)
  }

  onPdu(pdu: Pdu, flow: EngineFlow, report: ProtectionReport): void {
    const st = this.stateOf(flow, report)
    const now = flow.lastUs
    if (pdu.dir === 'toserver') {
      st.pendingSinceUs = 0
      if (isRequest(pdu)) {
        const r = this.cfg.request_rate
        if (!r.enabled) return
        const svc = st.svc
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
    const svc = st.svc
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
    this.limitsReported.clear()
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
    for (const flow of this.watched) {
      if (flow.ended) {
        this.watched.delete(flow)
        continue
      }
      const st = flow.protection as FlowState | null
      if (!st) continue
      if (!pendingToServer(flow)) {
        st.pendingSinceUs = 0
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
      st.src.slow++
    }
    // pass 2: flag every slow flow of a source at or over the limit
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

  private stateOf(flow: EngineFlow, report: ProtectionReport): FlowState {
    let st = flow.protection as FlowState | null
    if (st) return st
    const v4 = flow.family === 4
    const client = v4 ? flow.clientAddr4 : flow.clientIp
    // IPv4: six UTF-16 units (addresses in halves, port, protocol), no number-to-text per flow
    const svcKey = v4
      ? String.fromCharCode(flow.clientAddr4 >>> 16, flow.clientAddr4 & 0xffff, flow.serverAddr4 >>> 16, flow.serverAddr4 & 0xffff, flow.serverPort, flow.proto)
      : `${flow.clientIp}|${flow.serverIp}|${flow.proto}|${flow.serverPort}`
    let svc = this.services.get(svcKey)
    if (svc) {
      // LRU order only needs to be right to the second: move an entry at most once per tick
      if (svc.touchedTick !== this.tickNo) {
        svc.touchedTick = this.tickNo
        this.services.touch(svc)
      }
    } else {
      const c = this.cfg
      svc = {
        reqTokens: c.request_rate.burst, reqUs: flow.startUs,
        connTokens: c.connection_rate.burst, connUs: flow.startUs,
        authTokens: c.auth_failures.max, authUs: flow.startUs, authFailures: 0, reportedUs: -Infinity, touchedTick: this.tickNo,
        lruKey: svcKey, lruPrev: null, lruNext: null,
      }
      if (this.services.size >= this.cfg.max_sources) this.evict(this.services, report)
      this.services.set(svc)
    }
    let src = this.sources.get(client)
    if (src) {
      if (src.touchedTick !== this.tickNo) {
        src.touchedTick = this.tickNo
        this.sources.touch(src)
      }
    } else {
      src = {
        connTokens: this.cfg.connection_rate.per_source_burst, connUs: flow.startUs, slow: 0, slowTick: 0, reportedUs: -Infinity, touchedTick: this.tickNo,
        lruKey: client, lruPrev: null, lruNext: null,
      }
      if (this.sources.size >= this.cfg.max_sources) this.evict(this.sources, report)
      this.sources.set(src)
    }
    st = {svc, src, pendingSinceUs: 0}
    flow.protection = st
    return st
  }

  private evict(map: LruMap<string, ServiceEntry> | LruMap<string | number, SourceEntry>, report: ProtectionReport): void {
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
  const v = str(pdu, name)
  return v === undefined ? undefined : Number(v)
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
