/**
 * EVE events: the JSON-lines event format of Suricata (`eve.json`), so existing tooling (jq,
 * Filebeat's suricata module, Splunk/Elastic dashboards) reads patchpoint's log unchanged.
 * Field names and nesting follow Suricata's "Eve JSON Format" documentation; patchpoint's own
 * fields live under a `patchpoint` object that Suricata consumers ignore.
 *
 *   {"timestamp":"2026-11-26T07:33:04.123456+0000","flow_id":1234,"event_type":"alert",
 *    "src_ip":"192.0.2.1","src_port":51000,"dest_ip":"192.0.2.9","dest_port":445,"proto":"TCP",
 *    "app_proto":"smb","alert":{"action":"blocked","gid":1,"signature_id":9000001,"rev":1,
 *    "signature":"...","category":"...","severity":1},
 *    "patchpoint":{"action":"fix","rule_id":"...","cves":["CVE-..."],"gateway":"gw-01"}}
 */
import type {AnomalyReport, AnomalyType} from './anomaly.js'

/** EVE proto: IANA name for the common ones, else the protocol number. */
export type EveProto = 'TCP' | 'UDP' | 'ICMP' | 'IPv6-ICMP' | 'SCTP' | number

/** patchpoint's own fields (under `patchpoint`). */
export interface PatchpointEveFields {
  /** what the rule did: rewrote the traffic, only logged it, or dropped it */
  action: 'fix' | 'log' | 'drop'
  rule_id: string
  cves: string[]
  /** gateway.id from the config */
  gateway: string
  /** true when the rule runs in shadow mode (would have acted, only logged) */
  shadow?: boolean
}

/** Fields common to every event type (Suricata's "common section"). */
export interface EveCommon {
  timestamp: string
  flow_id?: number
  /** interface name, when live */
  in_iface?: string
  src_ip?: string
  src_port?: number
  dest_ip?: string
  dest_port?: number
  proto?: EveProto
  app_proto?: string
  /** set when replaying a capture */
  pcap_filename?: string
  /** packet number in the capture, when replaying */
  pcap_cnt?: number
  patchpoint?: PatchpointEveFields
}

export interface EveAlert {
  action: 'allowed' | 'blocked'
  gid: number
  signature_id: number
  rev: number
  signature: string
  category: string
  /** 1 (high) .. 3 (low) */
  severity: 1 | 2 | 3
  metadata?: Record<string, string[]>
}

export interface EveAlertEvent extends EveCommon {
  event_type: 'alert'
  alert: EveAlert
}

export interface EveAnomaly {
  /** Suricata uses decode | stream | applayer; patchpoint adds defrag and limit */
  type: AnomalyType
  /** stable dotted code, e.g. ipv4.frag_overlap_conflict */
  event: string
  /** applayer anomalies: where it happened (Suricata: proto_detect, parser, ...) */
  layer?: string
  /** patchpoint extension: numbers / words that explain it */
  detail?: Record<string, number | string | boolean>
}

export interface EveAnomalyEvent extends EveCommon {
  event_type: 'anomaly'
  anomaly: EveAnomaly
}

export type EveFlowState = 'new' | 'established' | 'closed' | 'bypassed'
export type EveFlowReason = 'timeout' | 'forced' | 'shutdown'

/** End-of-flow record. */
export interface EveFlow {
  pkts_toserver: number
  pkts_toclient: number
  bytes_toserver: number
  bytes_toclient: number
  /** EVE timestamps */
  start: string
  end: string
  /** seconds */
  age: number
  state: EveFlowState
  reason: EveFlowReason
  alerted: boolean
}

export interface EveFlowEvent extends EveCommon {
  event_type: 'flow'
  flow: EveFlow
}

/** Counters tree, e.g. {uptime: 60, capture: {kernel_packets: 10}, decoder: {...}}. */
export interface EveStats {
  uptime: number
  [section: string]: number | EveStatsSection
}
export interface EveStatsSection {
  [name: string]: number | EveStatsSection
}

export interface EveStatsEvent extends EveCommon {
  event_type: 'stats'
  stats: EveStats
}

export type EveEvent = EveAlertEvent | EveAnomalyEvent | EveFlowEvent | EveStatsEvent
export type EveEventType = EveEvent['event_type']
export const EVE_EVENT_TYPES: readonly EveEventType[] = ['alert', 'anomaly', 'flow', 'stats']

/** Where events go (file, memory, stdout). write never throws. */
export interface EventSink {
  write(ev: EveEvent): void
  close(): Promise<void>
}

const pad2 = (n: number) => (n < 10 ? '0' : '') + n
let cachedSecond = NaN
let cachedPrefix = ''

/**
 * EVE timestamp from microseconds since the epoch, always UTC:
 * `2026-11-26T07:33:04.123456+0000`. Non-finite input gives the epoch (never throws).
 */
export function formatEveTimestamp(tsUs: number): string {
  if (!Number.isFinite(tsUs)) tsUs = 0
  tsUs = Math.trunc(tsUs)
  let sec = Math.floor(tsUs / 1_000_000)
  let us = tsUs - sec * 1_000_000
  if (us < 0 || us >= 1_000_000) { // float edge cases
    us = 0
  }
  if (sec > 253_402_300_799) sec = 253_402_300_799 // 9999-12-31T23:59:59
  if (sec < -62_135_596_800) sec = -62_135_596_800 // 0001-01-01
  if (sec !== cachedSecond) {
    const d = new Date(sec * 1000)
    cachedPrefix = `${String(d.getUTCFullYear()).padStart(4, '0')}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}` +
      `T${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}.`
    cachedSecond = sec
  }
  return `${cachedPrefix}${String(us).padStart(6, '0')}+0000`
}

/** Parse an EVE timestamp back to microseconds since the epoch (NaN if malformed). */
export function parseEveTimestamp(s: string): number {
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:([+-])(\d\d):?(\d\d)|Z)?$/.exec(s)
  if (!m) return NaN
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6])
  const frac = m[7] ? Math.floor(Number(m[7].padEnd(6, '0').slice(0, 6))) : 0
  const off = m[8] ? (m[8] === '-' ? -1 : 1) * (Number(m[9]) * 60 + Number(m[10])) * 60_000_000 : 0
  return ms * 1000 + frac - off
}

// FNV-1a 64-bit, in two 32-bit halves (no BigInt on the flow path)
const FNV_OFFSET_HI = 0xcbf29ce4
const FNV_OFFSET_LO = 0x84222325
let hHi = 0
let hLo = 0

function fnvByte(b: number): void {
  // h ^= b; h *= 0x100000001b3  (= h * 0x1b3 + (h << 40))
  hLo = (hLo ^ b) >>> 0
  const loLow = hLo & 0xffff
  const loHigh = hLo >>> 16
  const a = loLow * 0x1b3
  const c = loHigh * 0x1b3 + (a >>> 16)
  const newLo = ((c & 0xffff) << 16 | (a & 0xffff)) >>> 0
  const carry = Math.floor(c / 0x10000)
  hHi = (Math.imul(hHi, 0x1b3) + carry + (hLo << 8)) >>> 0
  hLo = newLo
}

function fnvString(s: string): void {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    fnvByte(c & 0xff)
    if (c > 0xff) fnvByte(c >>> 8)
  }
  fnvByte(0) // separator
}

function fnvNumber(n: number): void {
  // 8 bytes little endian of a non-negative integer up to 2^53
  let lo = n >>> 0
  let hi = Math.floor(n / 0x1_0000_0000) >>> 0
  for (let i = 0; i < 4; i++, lo >>>= 8) fnvByte(lo & 0xff)
  for (let i = 0; i < 4; i++, hi >>>= 8) fnvByte(hi & 0xff)
}

/** Low 52 bits of an FNV-1a 64-bit hash of `parts`, for tests and reuse. */
export function fnv1a52(parts: readonly (string | number)[]): number {
  hHi = FNV_OFFSET_HI
  hLo = FNV_OFFSET_LO
  for (const p of parts) {
    if (typeof p === 'string') fnvString(p)
    else fnvNumber(Number.isFinite(p) ? Math.max(0, Math.trunc(p)) : 0)
  }
  return (hHi & 0xfffff) * 0x1_0000_0000 + hLo
}

/**
 * EVE flow_id: a stable 52-bit (safe integer) FNV-1a hash of the 5-tuple and the flow's start
 * time. Symmetric: either direction of the flow gives the same id (endpoints are ordered before
 * hashing). Pass addresses in one canonical text form (as written in events).
 */
export function flowIdFor(
  srcIp: string,
  srcPort: number,
  destIp: string,
  destPort: number,
  proto: number,
  startUs: number,
): number {
  const swap = srcIp > destIp || (srcIp === destIp && srcPort > destPort)
  hHi = FNV_OFFSET_HI
  hLo = FNV_OFFSET_LO
  fnvNumber(proto)
  if (swap) {
    fnvString(destIp); fnvNumber(destPort); fnvString(srcIp); fnvNumber(srcPort)
  } else {
    fnvString(srcIp); fnvNumber(srcPort); fnvString(destIp); fnvNumber(destPort)
  }
  fnvNumber(Number.isFinite(startUs) ? Math.max(0, Math.trunc(startUs)) : 0)
  return (hHi & 0xfffff) * 0x1_0000_0000 + hLo
}

/** EVE proto field for an IP protocol number. */
export function eveProto(proto: number): EveProto {
  switch (proto) {
    case 6: return 'TCP'
    case 17: return 'UDP'
    case 1: return 'ICMP'
    case 58: return 'IPv6-ICMP'
    case 132: return 'SCTP'
    default: return proto
  }
}

/**
 * Turn an AnomalyReport into an EVE anomaly event; `common` carries timestamp and tuple (it is
 * copied, not kept). Keys come out in the order of `{...common, event_type, anomaly}`, but built
 * with Object.assign: V8 runs an object spread of these variously shaped `common` objects
 * through a slow generic path (about 10 times slower, measured), and a replay can raise an
 * anomaly per packet.
 */
export function anomalyEvent(report: AnomalyReport, common: EveCommon, layer?: string): EveAnomalyEvent {
  const anomaly: EveAnomaly = {type: report.type, event: report.event}
  if (layer !== undefined) anomaly.layer = layer
  if (report.detail !== undefined) anomaly.detail = report.detail
  const ev = Object.assign({}, common) as EveAnomalyEvent
  ev.event_type = 'anomaly'
  ev.anomaly = anomaly
  return ev
}
