/**
 * The alarm dispatcher the gateway calls for every event: `offer(event)` filters, rate-limits
 * (token bucket) and queues the alarm on each transport, then returns: sending happens later on
 * the event loop, so a slow or dead receiver can never slow or block the data path. Every bound
 * (rate, queue sizes, message sizes) drops and counts instead of waiting; the first drop of each
 * kind is reported as a `limit` anomaly.
 */
import {hostname} from 'node:os'
import type {AnomalySink} from '../events/anomaly.js'
import {ignoreAnomalies} from '../events/anomaly.js'
import type {EveEvent} from '../events/eve.js'
import {normalizeAlarms} from './config.js'
import type {AlarmsConfig} from './config.js'
import type {AlarmTransport, TransportStats} from './queue.js'
import {formatSyslog, SyslogTransport} from './syslog.js'
import {WebhookTransport} from './webhook.js'

export interface AlarmStats {
  offered: number
  /** not an alarm by the events/actions filters */
  ignored: number
  /** over the rate limit */
  suppressed: number
  accepted: number
  transports: Record<string, TransportStats>
}

export interface AlarmDispatcher {
  /** Consider one event; returns at once (true when queued on at least one transport). */
  offer(event: EveEvent): boolean
  stats(): AlarmStats
  /** Wait until the queues are empty, at most timeoutMs. */
  flush(timeoutMs?: number): Promise<void>
  close(timeoutMs?: number): Promise<void>
}

export interface CreateAlarmsOptions {
  /** gateway id: syslog HOSTNAME and the webhook's `gateway` (default: the host name) */
  gateway?: string
  anomalies?: AnomalySink
  /** for tests: clock in milliseconds */
  now?: () => number
  /** for tests */
  fetch?: typeof fetch
}

class Dispatcher implements AlarmDispatcher {
  private readonly cfg: AlarmsConfig
  private readonly transports: AlarmTransport[] = []
  private readonly syslog?: SyslogTransport
  private readonly webhook?: WebhookTransport
  private readonly gateway: string
  private readonly anomalies: AnomalySink
  private readonly now: () => number
  private tokens: number
  private refilledAt: number
  private readonly reported = new Set<string>()
  private readonly counts = {offered: 0, ignored: 0, suppressed: 0, accepted: 0}
  private readonly wantAlert: boolean
  private readonly wantAnomaly: boolean
  private readonly actions: Set<string>

  constructor(cfg: AlarmsConfig, opts: CreateAlarmsOptions) {
    this.cfg = cfg
    this.gateway = opts.gateway ?? hostname()
    this.anomalies = opts.anomalies ?? ignoreAnomalies
    this.now = opts.now ?? Date.now
    this.tokens = cfg.rate_limit.burst
    this.refilledAt = this.now()
    this.wantAlert = cfg.events.includes('alert')
    this.wantAnomaly = cfg.events.includes('anomaly')
    this.actions = new Set(cfg.actions)
    if (cfg.syslog) this.transports.push(this.syslog = new SyslogTransport(cfg.syslog))
    if (cfg.webhook) this.transports.push(this.webhook = new WebhookTransport(cfg.webhook, opts.fetch))
  }

  private limitOnce(event: string, detail: Record<string, string | number>): void {
    if (this.reported.has(event)) return
    this.reported.add(event)
    this.anomalies({type: 'limit', event, detail})
  }

  offer(ev: EveEvent): boolean {
    this.counts.offered++
    if (this.transports.length === 0 || !this.wanted(ev)) {
      this.counts.ignored++
      return false
    }
    // token bucket
    const now = this.now()
    const elapsed = now - this.refilledAt
    if (elapsed > 0) {
      this.tokens = Math.min(this.cfg.rate_limit.burst, this.tokens + (elapsed / 1000) * this.cfg.rate_limit.per_second)
      this.refilledAt = now
    }
    if (this.tokens < 1) {
      this.counts.suppressed++
      this.limitOnce('alarms.rate_limited', {limit: 'rate_limit.per_second', value: this.cfg.rate_limit.per_second})
      return false
    }
    this.tokens -= 1
    this.counts.accepted++
    let queued = false
    try {
      if (this.syslog?.full) this.syslog.refuse()
      else if (this.syslog) {
        const host = this.cfg.syslog?.hostname ?? this.gateway
        queued = this.syslog.enqueue(formatSyslog(ev, {facility: this.cfg.syslog!.facility, appName: this.cfg.syslog!.app_name, hostname: host, maxBytes: this.syslog.maxBytes})) || queued
      }
      if (this.webhook?.full) this.webhook.refuse()
      else if (this.webhook) {
        let body = JSON.stringify({source: 'patchpoint', gateway: this.gateway, event: ev})
        if (Buffer.byteLength(body) > this.webhook.maxBytes) {
          // keep the envelope, drop the bulky event body
          body = JSON.stringify({source: 'patchpoint', gateway: this.gateway, truncated: true,
            event: {timestamp: ev.timestamp, event_type: ev.event_type, src_ip: ev.src_ip, dest_ip: ev.dest_ip, patchpoint: ev.patchpoint}})
        }
        queued = this.webhook.enqueue(body) || queued
      }
    } catch {
      // an unserializable event (cycle, BigInt): not an alarm
      this.limitOnce('alarms.unserializable', {limit: 'event'})
      return false
    }
    if (!queued) this.limitOnce('alarms.queue_full', {limit: 'queue'})
    return queued
  }

  private wanted(ev: EveEvent): boolean {
    if (ev.event_type === 'alert') {
      if (!this.wantAlert) return false
      const pp = ev.patchpoint
      const action = pp ? (pp.shadow === true ? 'shadow' : pp.action) : (ev.alert?.action === 'blocked' ? 'drop' : 'log')
      return this.actions.has(action)
    }
    return ev.event_type === 'anomaly' && this.wantAnomaly
  }

  stats(): AlarmStats {
    const transports: Record<string, TransportStats> = {}
    for (const t of this.transports) transports[t.name] = {...t.stats}
    return {...this.counts, transports}
  }

  async flush(timeoutMs = 5000): Promise<void> {
    await Promise.all(this.transports.map((t) => t.flush(timeoutMs)))
  }

  async close(timeoutMs = 2000): Promise<void> {
    await Promise.all(this.transports.map((t) => t.close(timeoutMs)))
  }
}

/**
 * Build the dispatcher from the `alarms:` section (PatchpointConfig.alarms: defaults applied
 * here). With neither syslog nor webhook configured, offer() is a cheap no-op.
 * Throws UserError on an invalid section (validate earlier with checkAlarmsText for file:line).
 */
export function createAlarms(config: AlarmsConfig | Record<string, unknown> | undefined, options: CreateAlarmsOptions = {}): AlarmDispatcher {
  return new Dispatcher(normalizeAlarms(config ?? {}), options)
}
