/**
 * Syslog alarms: RFC 5424 messages over UDP (RFC 5426) or TCP with octet-counting framing
 * (RFC 6587 section 3.4.1: `MSG-LEN SP SYSLOG-MSG`).
 *
 * RFC 5424 section 6:
 *   SYSLOG-MSG      = HEADER SP STRUCTURED-DATA [SP MSG]
 *   HEADER          = PRI VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID
 *   PRI             = "<" PRIVAL ">"          ; PRIVAL = facility * 8 + severity
 *   STRUCTURED-DATA = NILVALUE / 1*SD-ELEMENT ; SD-ELEMENT = "[" SD-ID *(SP SD-PARAM) "]"
 *   SD-PARAM        = PARAM-NAME "=" %d34 PARAM-VALUE %d34  ; '"', '\' and ']' escaped with '\'
 *   HOSTNAME 1*255, APP-NAME 1*48, PROCID 1*128, MSGID 1*32 PRINTUSASCII (%d33-126), or "-"
 *
 * SD-ID `patchpoint@32473` uses the documentation Private Enterprise Number (RFC 5612).
 */
import dgram from 'node:dgram'
import net from 'node:net'
import type {EveEvent} from '../events/eve.js'
import {parseEveTimestamp} from '../events/eve.js'
import {SYSLOG_FACILITIES} from './config.js'
import type {SyslogFacility, SyslogTarget} from './config.js'
import {BoundedQueue} from './queue.js'
import type {AlarmTransport, TransportStats} from './queue.js'

/** Longest UDP message sent (RFC 5426 section 3.2: receivers SHOULD accept 2048 octets). */
export const MAX_SYSLOG_UDP_BYTES = 2048
/** Longest TCP message sent. */
export const MAX_SYSLOG_TCP_BYTES = 8192
/** UDP datagrams in flight at once. */
export const MAX_UDP_IN_FLIGHT = 64
/** TCP reconnect delay: first, and cap (doubling). */
export const TCP_RECONNECT_MS = 500
export const TCP_RECONNECT_MAX_MS = 30_000
export const SD_ID = 'patchpoint@32473'

export const SEVERITY = {emerg: 0, alert: 1, crit: 2, err: 3, warning: 4, notice: 5, info: 6, debug: 7} as const

export function facilityCode(f: SyslogFacility): number {
  return Math.max(0, SYSLOG_FACILITIES.indexOf(f))
}

/** PRINTUSASCII only, clipped; '-' (NILVALUE) when empty. */
export function headerField(s: string | undefined, max: number): string {
  const v = (s ?? '').replace(/[^!-~]/g, '').slice(0, max)
  return v === '' ? '-' : v
}

export function escapeParamValue(s: string): string {
  return s.replace(/[\\"\]]/g, (c) => '\\' + c)
}

/** RFC 3339 UTC timestamp with microseconds, from an EVE timestamp (now if it does not parse). */
export function syslogTimestamp(eve: string | undefined, nowMs = Date.now()): string {
  let us = typeof eve === 'string' ? parseEveTimestamp(eve) : NaN
  if (!Number.isFinite(us)) us = nowMs * 1000
  const ms = Math.floor(us / 1000)
  const d = new Date(ms)
  if (Number.isNaN(d.getTime())) return new Date(nowMs).toISOString()
  const micro = String(Math.floor(us - ms * 1000)).padStart(3, '0')
  return d.toISOString().replace(/\.(\d{3})Z$/, `.$1${micro}Z`)
}

/** Syslog severity of an event: alert severity 1/2/3 -> err/warning/notice; anomalies notice. */
export function eventSeverity(ev: EveEvent): number {
  if (ev.event_type === 'alert') {
    const s = (ev.alert as {severity?: unknown} | undefined)?.severity
    return s === 1 ? SEVERITY.err : s === 2 ? SEVERITY.warning : SEVERITY.notice
  }
  return SEVERITY.notice
}

export interface SyslogFormatOptions {
  facility: SyslogFacility
  appName: string
  hostname: string
  procId?: string
  maxBytes?: number
}

/** One RFC 5424 message for an event (no framing). */
export function formatSyslog(ev: EveEvent, opts: SyslogFormatOptions): string {
  const o = ev as unknown as Record<string, unknown>
  const pp = (o.patchpoint ?? {}) as Record<string, unknown>
  const alert = (o.alert ?? {}) as Record<string, unknown>
  const anomaly = (o.anomaly ?? {}) as Record<string, unknown>
  const pri = facilityCode(opts.facility) * 8 + eventSeverity(ev)
  const params: [string, unknown][] = [
    ['event', ev.event_type],
    ['action', pp.shadow === true ? 'shadow' : pp.action ?? alert.action],
    ['rule', pp.rule_id ?? (alert.signature_id !== undefined ? `sid:${alert.signature_id}` : undefined)],
    ['cves', Array.isArray(pp.cves) ? pp.cves.slice(0, 32).join(',') : undefined],
    ['anomaly', anomaly.event],
    ['gateway', o.host ?? pp.gateway],
    ['src', o.src_ip], ['sport', o.src_port], ['dst', o.dest_ip], ['dport', o.dest_port],
    ['proto', o.proto], ['app', o.app_proto], ['flow_id', o.flow_id],
  ]
  const sd = '[' + SD_ID + params
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => ` ${k}="${escapeParamValue(String(v).slice(0, 512))}"`).join('') + ']'
  const what = ev.event_type === 'alert'
    ? `${pp.shadow === true ? 'shadow ' : ''}${String(pp.action ?? alert.action ?? 'alert')} ${String(pp.rule_id ?? alert.signature ?? '')}`
    : `${ev.event_type} ${String(anomaly.event ?? '')}`
  const tuple = o.src_ip !== undefined ? ` ${String(o.src_ip)}:${String(o.src_port ?? '-')} -> ${String(o.dest_ip)}:${String(o.dest_port ?? '-')}` : ''
  const sig = typeof alert.signature === 'string' && pp.rule_id !== undefined ? `: ${alert.signature}` : ''
  const msg = `${what}${tuple}${sig}`.replace(/[\u0000-\u001f\u007f]/g, ' ')
  const line = `<${pri}>1 ${syslogTimestamp(ev.timestamp)} ${headerField(opts.hostname, 255)} ${headerField(opts.appName, 48)} ` +
    `${headerField(opts.procId ?? String(process.pid), 128)} ${headerField(ev.event_type, 32)} ${sd} ${msg}`
  return clipUtf8(line, opts.maxBytes ?? MAX_SYSLOG_UDP_BYTES)
}

/** Cut a string to at most `max` UTF-8 bytes without splitting a character. */
export function clipUtf8(s: string, max: number): string {
  if (Buffer.byteLength(s) <= max) return s
  const b = Buffer.from(s).subarray(0, max)
  let end = b.length
  while (end > 0 && (b[end - 1] & 0xc0) === 0x80) end--
  if (end > 0 && b[end - 1] >= 0xc0) end--
  return b.subarray(0, end).toString('utf8')
}

/** Sends queued messages over UDP or TCP; never throws, never blocks the caller. */
export class SyslogTransport implements AlarmTransport {
  readonly name: string
  readonly stats: TransportStats = {queued: 0, sent: 0, dropped: 0, failed: 0, retries: 0}
  private readonly target: SyslogTarget
  private readonly queue: BoundedQueue<string>
  private udp: dgram.Socket | undefined
  private tcp: net.Socket | undefined
  private tcpReady = false
  private tcpBackoff = TCP_RECONNECT_MS
  private reconnectTimer: NodeJS.Timeout | undefined
  private inFlight = 0
  private scheduled = false
  private closed = false
  private idleWaiters: (() => void)[] = []

  constructor(target: SyslogTarget) {
    this.target = target
    this.name = `syslog ${target.protocol}://${target.host}:${target.port}`
    this.queue = new BoundedQueue<string>(target.queue)
  }

  get maxBytes(): number {
    return this.target.protocol === 'tcp' ? MAX_SYSLOG_TCP_BYTES : MAX_SYSLOG_UDP_BYTES
  }

  get full(): boolean {
    return this.closed || this.queue.full
  }

  refuse(): void {
    this.stats.dropped++
  }

  enqueue(msg: string): boolean {
    if (this.closed || !this.queue.push(msg)) {
      this.stats.dropped++
      return false
    }
    this.stats.queued++
    this.schedule()
    return true
  }

  private schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      this.pump()
    })
  }

  private pump(): void {
    if (this.target.protocol === 'udp') this.pumpUdp()
    else this.pumpTcp()
    this.checkIdle()
  }

  private pumpUdp(): void {
    if (!this.udp) {
      const v6 = net.isIPv6(this.target.host)
      this.udp = dgram.createSocket(v6 ? 'udp6' : 'udp4')
      this.udp.on('error', () => { this.stats.failed++ })
      this.udp.unref()
    }
    while (this.inFlight < MAX_UDP_IN_FLIGHT) {
      const msg = this.queue.shift()
      if (msg === undefined) break
      this.inFlight++
      this.udp.send(Buffer.from(msg), this.target.port, this.target.host, (err) => {
        this.inFlight--
        if (err) this.stats.failed++
        else this.stats.sent++
        if (this.queue.length > 0) this.pumpUdp()
        this.checkIdle()
      })
    }
  }

  private pumpTcp(): void {
    if (!this.tcp) {
      this.connectTcp()
      return
    }
    if (!this.tcpReady) return
    const sock = this.tcp
    while (this.queue.length > 0) {
      const msg = this.queue.shift() as string
      const body = Buffer.from(msg)
      this.inFlight++
      const ok = sock.write(`${body.length} ${msg}`, (err) => {
        this.inFlight--
        if (err) this.stats.failed++
        else this.stats.sent++
        this.checkIdle()
      })
      if (!ok) {
        sock.once('drain', () => this.pumpTcp())
        return
      }
    }
  }

  private connectTcp(): void {
    if (this.closed || this.reconnectTimer) return
    const sock = net.connect({host: this.target.host, port: this.target.port})
    this.tcp = sock
    this.tcpReady = false
    sock.setNoDelay(true)
    sock.unref()
    sock.on('connect', () => {
      this.tcpReady = true
      this.tcpBackoff = TCP_RECONNECT_MS
      this.pumpTcp()
    })
    sock.on('error', () => { /* 'close' follows */ })
    sock.on('close', () => {
      this.tcp = undefined
      this.tcpReady = false
      if (this.closed) return
      this.stats.retries++
      const delay = this.tcpBackoff
      this.tcpBackoff = Math.min(TCP_RECONNECT_MAX_MS, this.tcpBackoff * 2)
      this.reconnectTimer = setTimeout(() => {
        this.reconnectTimer = undefined
        if (this.queue.length > 0) this.connectTcp()
      }, delay)
      this.reconnectTimer.unref()
    })
  }

  private checkIdle(): void {
    if (this.queue.length === 0 && this.inFlight === 0) {
      const w = this.idleWaiters
      this.idleWaiters = []
      for (const f of w) f()
    }
  }

  /** Wait until everything queued was handed to the socket, at most `timeoutMs`. */
  async flush(timeoutMs: number): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return
    this.schedule()
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timeoutMs)
      t.unref()
      this.idleWaiters.push(() => {
        clearTimeout(t)
        resolve()
      })
    })
  }

  async close(timeoutMs = 2000): Promise<void> {
    await this.flush(timeoutMs)
    this.closed = true
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer)
    this.stats.dropped += this.queue.length
    this.queue.clear()
    this.udp?.close()
    this.udp = undefined
    this.tcp?.end()
    this.tcp = undefined
  }
}
