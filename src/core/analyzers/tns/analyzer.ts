/**
 * Stateful Oracle TNS analyzer: one PDU per TNS packet in each direction. CONNECT packets expose
 * the version and the connect descriptor (parsed into `tns.cd.<path>` fields); when the descriptor
 * follows in a DATA packet (over 230 bytes), that DATA packet carries it. ACCEPT switches both
 * directions to 32-bit packet lengths from version 315. REFUSE / REDIRECT texts are exposed.
 */
import type {AnomalySink} from '../../events/anomaly.js'
import type {Analyzer, AnalyzerContext, Direction, Fields, Pdu} from '../types.js'
import {latin1} from '../line/text.js'
import {RecordFramer, addValue, u16be, u32be} from '../mysql/records.js'
import {
  TNS_ACCEPT, TNS_CONNECT, TNS_DATA, TNS_HEADER, TNS_REDIRECT, TNS_REFUSE, TNS_TYPE_NAMES, TNS_VERSION_LARGE_SDU,
  acceptVersion, bodyText, parseConnect, parseDescriptor,
} from './parser.js'

export const TNS_LIMITS = {
  /** bytes held of one packet (header included); longer packets are inspected truncated (anomaly tns.packet_too_long) */
  maxPacketBytes: 128 * 1024,
  /** nesting depth of the connect descriptor (anomaly tns.connect_data_malformed, reason depth) */
  maxDescriptorDepth: 16,
  /** keyword values kept from one descriptor (reason values) */
  maxDescriptorValues: 256,
}

export type TnsLimits = typeof TNS_LIMITS

/** field names `tns.cd.<path>` kept for reuse (the parser interns the paths themselves) */
const CD_FIELD_NAMES = 1024
const cdFieldNames = new Map<string, string>()

function cdField(path: string): string {
  let name = cdFieldNames.get(path)
  if (name === undefined) {
    name = `tns.cd.${path}`
    if (cdFieldNames.size < CD_FIELD_NAMES) cdFieldNames.set(path, name)
  }
  return name
}

export class TnsAnalyzer implements Analyzer {
  readonly protocol = 'tns'
  private readonly limits: TnsLimits
  private readonly emitPdu: (pdu: Pdu) => void
  private readonly anomalySink: AnomalySink
  private readonly cs: RecordFramer
  private readonly sc: RecordFramer
  /** 32-bit packet lengths (after an ACCEPT with version >= 315) */
  private large = false
  /** connect data announced by CONNECT, expected in the next client DATA packet */
  private deferredCd = 0

  constructor(ctx: AnalyzerContext, limits: Partial<TnsLimits> = TNS_LIMITS) {
    this.limits = limits === TNS_LIMITS ? TNS_LIMITS : {...TNS_LIMITS, ...limits}
    this.emitPdu = ctx.emit
    this.anomalySink = ctx.anomaly
    this.cs = this.framer('toserver')
    this.sc = this.framer('toclient')
  }

  private framer(dir: Direction): RecordFramer {
    return new RecordFramer(TNS_HEADER, Math.max(this.limits.maxPacketBytes, 64), {
      recordLength: (h, o) => {
        if (TNS_TYPE_NAMES[h[o + 4]!] === undefined) return -1
        return this.large ? u32be(h, o) : u16be(h, o)
      },
      onRecord: (rec, start, declared, truncated) => this.packet(dir, rec, start, declared, truncated),
      onBadHeader: (h, start) => this.anomaly('tns.invalid_header', {dir, offset: start, type: h[4]!, length: u16be(h, 0)}),
      onLost: (at, length) => this.anomaly('tns.gap', {dir, offset: at, length}),
    })
  }

  data(dir: Direction, chunk: Uint8Array): void {
    ;(dir === 'toserver' ? this.cs : this.sc).data(chunk)
  }

  gap(dir: Direction, length: number): void {
    ;(dir === 'toserver' ? this.cs : this.sc).gap(length)
  }

  end(dir: Direction): void {
    const fr = dir === 'toserver' ? this.cs : this.sc
    if (!fr.dead && fr.held() > 0) this.anomaly('tns.truncated_packet', {dir, offset: fr.pending(), held: fr.held()})
    fr.stop()
  }

  pendingFrom(dir: Direction): number {
    return (dir === 'toserver' ? this.cs : this.sc).pending()
  }

  /** buffer use, for tests and memory accounting */
  stats(): {held: number; capacity: number} {
    return {held: this.cs.held() + this.sc.held(), capacity: this.cs.capacity() + this.sc.capacity()}
  }

  private anomaly(event: string, detail: Record<string, number | string | boolean>): void {
    this.anomalySink({type: 'applayer', event, detail})
  }

  private packet(dir: Direction, rec: Uint8Array, start: number, declared: number, truncated: boolean): void {
    const type = rec[4]!
    const f: Fields = new Map()
    f.set('tns.type', {v: type})
    f.set('tns.length', {v: declared})
    f.set('tns.flags', {v: rec[5]!})
    if (truncated) {
      f.set('tns.truncated', {v: 1})
      this.anomaly('tns.packet_too_long', {dir, offset: start, length: declared, limit: this.limits.maxPacketBytes})
    }
    switch (type) {
      case TNS_CONNECT:
        if (dir === 'toserver') this.connect(f, rec, start)
        break
      case TNS_ACCEPT: {
        const v = acceptVersion(rec)
        if (v >= 0) f.set('tns.version', {v})
        if (dir === 'toclient' && v >= TNS_VERSION_LARGE_SDU) this.large = true
        break
      }
      case TNS_REFUSE: {
        if (rec.length >= 10) {
          f.set('tns.refuse.user_reason', {v: rec[8]!})
          f.set('tns.refuse.system_reason', {v: rec[9]!})
        }
        const t = bodyText(rec, 10)
        if (t.start >= 0) f.set('tns.refuse.data', {v: latin1(rec, t.start, t.end), off: start + t.start, len: t.end - t.start})
        break
      }
      case TNS_REDIRECT: {
        const t = bodyText(rec, 8)
        if (t.start >= 0) f.set('tns.redirect.data', {v: latin1(rec, t.start, t.end), off: start + t.start, len: t.end - t.start})
        break
      }
      case TNS_DATA:
        if (rec.length >= 10) f.set('tns.data.flags', {v: u16be(rec, 8)})
        f.set('tns.data.length', {v: Math.max(0, declared - 10)})
        if (dir === 'toserver' && this.deferredCd > 0) {
          const want = this.deferredCd
          this.deferredCd = 0
          const body = rec.length - TNS_HEADER
          // python-oracledb and OCI send the flags word first; accept the bare form too
          const from = body - 2 === want ? 10 : body === want ? TNS_HEADER : -1
          if (from < 0) {
            f.set('tns.connect_data_malformed', {v: 1})
            this.anomaly('tns.connect_data_malformed', {offset: start, reason: 'deferred length', declared: want, actual: body})
          } else {
            this.descriptor(f, rec, start, from, from + want)
          }
        }
        break
      default:
        break
    }
    this.emitPdu({protocol: 'tns', kind: TNS_TYPE_NAMES[type] ?? 'packet', dir, start, end: start + declared, fields: f})
  }

  private connect(f: Fields, rec: Uint8Array, start: number): void {
    const c = parseConnect(rec)
    if (c.version >= 0) f.set('tns.version', {v: c.version})
    if (c.status === 'error' && c.cdLength < 0) {
      f.set('tns.connect_data_malformed', {v: 1})
      this.anomaly('tns.connect_data_malformed', {offset: start, reason: 'short connect packet'})
      return
    }
    f.set('tns.compat_version', {v: c.compatVersion})
    f.set('tns.sdu', {v: c.sdu})
    f.set('tns.tdu', {v: c.tdu})
    f.set('tns.connect_data.length', {v: c.cdLength})
    f.set('tns.connect_data.offset', {v: c.cdOffset})
    if (c.cdInline) {
      this.descriptor(f, rec, start, c.cdOffset, c.cdOffset + c.cdLength)
    } else if (c.cdDeferred) {
      this.deferredCd = c.cdLength
      f.set('tns.connect_data_malformed', {v: 0})
    } else if (c.cdLength > 0) {
      // offset/length leave the packet: expose what is there
      f.set('tns.connect_data_malformed', {v: 1})
      this.anomaly('tns.connect_data_malformed', {offset: start, reason: 'offset', cd_offset: c.cdOffset, cd_length: c.cdLength, packet: rec.length})
      if (c.cdOffset >= TNS_HEADER && c.cdOffset < rec.length) {
        f.set('tns.connect_data', {v: latin1(rec, c.cdOffset, rec.length), off: start + c.cdOffset, len: rec.length - c.cdOffset})
      }
    } else {
      f.set('tns.connect_data_malformed', {v: 0})
    }
  }

  private descriptor(f: Fields, rec: Uint8Array, start: number, from: number, to: number): void {
    f.set('tns.connect_data', {v: latin1(rec, from, to), off: start + from, len: to - from})
    f.set('tns.connect_data.length', {v: to - from})
    const d = parseDescriptor(rec, from, to, this.limits.maxDescriptorDepth, this.limits.maxDescriptorValues)
    for (const v of d.values) {
      addValue(f, cdField(v.path), {v: latin1(rec, v.start, v.end), off: start + v.start, len: v.end - v.start})
    }
    f.set('tns.cd.max_value_length', {v: d.maxValueLength})
    f.set('tns.cd.max_depth', {v: d.maxDepth})
    f.set('tns.cd.count', {v: d.values.length})
    f.set('tns.connect_data_malformed', {v: d.malformed ? 1 : 0})
    if (d.malformed) this.anomaly('tns.connect_data_malformed', {offset: start + from, reason: d.reason})
  }
}
