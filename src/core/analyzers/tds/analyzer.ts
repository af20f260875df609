/**
 * Stateful TDS analyzer ([MS-TDS]): frames TDS packets in each direction, reassembles messages
 * split over several packets (until the EOM status bit; bounded by maxMessageBytes and
 * maxMessagePackets) and emits one PDU per message: client PRELOGIN, LOGIN7, SQL batch, RPC,
 * attention..., server responses (the PRELOGIN response is parsed for the server version and
 * encryption; other responses are counted, not held). TLS records (TDS 8 strict encryption, or
 * the login encrypted after PRELOGIN) become 'tls' PDUs without inspection.
 *
 * Field spans point at the stream bytes of a value when they are contiguous (a value split by a
 * packet header carries no span). UCS-2 values are decoded to latin1 ('?' above U+00FF); their
 * span covers the UCS-2 bytes (2 per character).
 */
import type {AnomalySink} from '../../events/anomaly.js'
import type {Analyzer, AnalyzerContext, Direction, FieldValue, Fields, Pdu} from '../types.js'
import {latin1} from '../line/text.js'
import {RecordFramer, addValue, u16be, u32le} from '../mysql/records.js'
import {
  PL_ENCRYPTION, PL_INSTOPT, PL_MARS, PL_THREADID, PL_VERSION, TDS_HEADER, TDS_LOGIN7, TDS_PRELOGIN,
  TDS_PROC_NAMES, TDS_RESPONSE, TDS_RPC, TDS_SQL_BATCH, TDS_STATUS_EOM, TDS_TYPE_NAMES, formatVersion,
  isTlsRecord, parseLogin7, parsePrelogin, parseRpcHead, skipAllHeaders, ucs2ToLatin1, validType,
} from './parser.js'

export const TDS_LIMITS = {
  /** message payload bytes held for inspection; the rest is counted (tds.truncated, anomaly tds.message_too_long) */
  maxMessageBytes: 256 * 1024,
  /** packets of one message (anomaly tds.too_many_packets) */
  maxMessagePackets: 1024,
  /** PRELOGIN options kept (anomaly tds.prelogin.too_many_options) */
  maxPreloginOptions: 32,
}

export type TdsLimits = typeof TDS_LIMITS

/** larger than any TDS packet (16-bit length) or TLS record (5 + 2^16) */
const MAX_RECORD = 5 + 65536

class Msg {
  active = false
  type = -1
  start = 0
  end = 0
  firstLength = 0
  status = 0
  packets = 0
  /** payload bytes seen (also those beyond the cap) */
  total = 0
  inspect = false
  truncated = false
  buf: Uint8Array = new Uint8Array(0)
  len = 0
  /** flat [messageOffset, absoluteOffset, length] triples */
  pieces: number[] = []

  reset(): void {
    this.active = false
    this.len = 0
    this.pieces.length = 0
    this.truncated = false
    if (this.buf.length > 64 * 1024) this.buf = new Uint8Array(0)
  }
}

export class TdsAnalyzer implements Analyzer {
  readonly protocol = 'tds'
  private readonly limits: TdsLimits
  private readonly emitPdu: (pdu: Pdu) => void
  private readonly anomalySink: AnomalySink
  private readonly cs: RecordFramer
  private readonly sc: RecordFramer
  private readonly cm = new Msg()
  private readonly sm = new Msg()
  private lastClientType = -1
  private clientEncryption = -1
  /** true / false once the login announced the TDS version, undefined before */
  private tds72: boolean | undefined

  constructor(ctx: AnalyzerContext, limits: Partial<TdsLimits> = TDS_LIMITS) {
    this.limits = limits === TDS_LIMITS ? TDS_LIMITS : {...TDS_LIMITS, ...limits}
    this.emitPdu = ctx.emit
    this.anomalySink = ctx.anomaly
    this.cs = this.framer('toserver')
    this.sc = this.framer('toclient')
  }

  private framer(dir: Direction): RecordFramer {
    return new RecordFramer(5, MAX_RECORD, {
      recordLength: (h, o) => {
        if (isTlsRecord(h, o)) return 5 + u16be(h, o + 3)
        if (!validType(h[o]!)) return -1
        const len = u16be(h, o + 2)
        return len >= TDS_HEADER ? len : -1
      },
      onRecord: (rec, start, declared) => this.record(dir, rec, start, declared),
      onBadHeader: (h, start) => {
        this.anomaly('tds.invalid_header', {dir, offset: start, type: h[0]!, length: u16be(h, 2)})
        this.flushPartial(dir)
      },
      onLost: (at, length) => {
        this.anomaly('tds.gap', {dir, offset: at, length})
        this.flushPartial(dir)
      },
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
    if (fr.dead) return
    const m = dir === 'toserver' ? this.cm : this.sm
    if (fr.held() > 0 || m.active) this.anomaly('tds.truncated_message', {dir, offset: m.active ? m.start : fr.pending()})
    this.flushPartial(dir)
    fr.stop()
  }

  pendingFrom(dir: Direction): number {
    const m = dir === 'toserver' ? this.cm : this.sm
    if (m.active && m.inspect) return m.start
    return (dir === 'toserver' ? this.cs : this.sc).pending()
  }

  /** buffer use, for tests and memory accounting */
  stats(): {held: number; capacity: number; pieces: number} {
    return {
      held: this.cs.held() + this.sc.held() + this.cm.len + this.sm.len,
      capacity: this.cs.capacity() + this.sc.capacity() + this.cm.buf.length + this.sm.buf.length,
      pieces: this.cm.pieces.length + this.sm.pieces.length,
    }
  }

  private anomaly(event: string, detail: Record<string, number | string | boolean>): void {
    this.anomalySink({type: 'applayer', event, detail})
  }

  // ---- framing ------------------------------------------------------------------------------

  private record(dir: Direction, rec: Uint8Array, start: number, declared: number): void {
    if (isTlsRecord(rec, 0)) {
      const m = dir === 'toserver' ? this.cm : this.sm
      if (m.active) this.flushPartial(dir)
      const f: Fields = new Map()
      f.set('tds.tls.content_type', {v: rec[0]!})
      f.set('tds.length', {v: declared})
      this.emitPdu({protocol: 'tds', kind: 'tls', dir, start, end: start + declared, fields: f})
      return
    }
    const m = dir === 'toserver' ? this.cm : this.sm
    const type = rec[0]!
    const status = rec[1]!
    if (m.active && m.type !== type) {
      this.anomaly('tds.type_changed', {dir, offset: start, from: m.type, to: type})
      this.flushPartial(dir)
    }
    const eom = (status & TDS_STATUS_EOM) !== 0
    const plen = rec.length - TDS_HEADER
    if (!m.active) {
      m.active = true
      m.type = type
      m.start = start
      m.firstLength = declared
      m.packets = 0
      m.total = 0
      m.inspect = dir === 'toserver' || (type === TDS_RESPONSE && this.lastClientType === TDS_PRELOGIN)
      if (eom) {
        // one-packet message: parse straight from the packet
        m.packets = 1
        m.total = plen
        m.status = status
        m.end = start + declared
        m.pieces.push(0, start + TDS_HEADER, plen)
        this.finish(dir, m, m.inspect ? rec.subarray(TDS_HEADER) : rec.subarray(0, 0))
        return
      }
    }
    m.packets++
    m.status = status
    m.end = start + declared
    if (m.inspect && !m.truncated) {
      if (m.packets > this.limits.maxMessagePackets) {
        this.anomaly('tds.too_many_packets', {dir, offset: m.start, limit: this.limits.maxMessagePackets})
        m.truncated = true
      } else {
        const room = this.limits.maxMessageBytes - m.len
        const take = Math.min(room, plen)
        if (take < plen) {
          this.anomaly('tds.message_too_long', {dir, offset: m.start, limit: this.limits.maxMessageBytes})
          m.truncated = true
        }
        if (take > 0) {
          this.append(m, rec, TDS_HEADER, take)
          m.pieces.push(m.total, start + TDS_HEADER, take)
        }
      }
    }
    m.total += plen
    if (eom) this.finish(dir, m, m.buf.subarray(0, m.len))
  }

  private append(m: Msg, rec: Uint8Array, from: number, n: number): void {
    const need = m.len + n
    if (need > m.buf.length) {
      const nb = new Uint8Array(Math.min(this.limits.maxMessageBytes, Math.max(need, m.buf.length * 2, 1024)))
      nb.set(m.buf.subarray(0, m.len))
      m.buf = nb
    }
    m.buf.set(rec.subarray(from, from + n), m.len)
    m.len = need
  }

  /** emit what is held of an unfinished message (gap, bad header, end of stream) */
  private flushPartial(dir: Direction): void {
    const m = dir === 'toserver' ? this.cm : this.sm
    if (!m.active) return
    m.truncated = true
    this.finish(dir, m, m.buf.subarray(0, m.len))
  }

  // ---- messages -----------------------------------------------------------------------------

  /** absolute span of message bytes [o, o+n) when they are contiguous in the stream */
  private span(m: Msg, v: string | number, o: number, n: number): FieldValue {
    const p = m.pieces
    for (let i = 0; i < p.length; i += 3) {
      const mo = p[i]!
      if (o >= mo && o + n <= mo + p[i + 2]!) return {v, off: p[i + 1]! + (o - mo), len: n}
    }
    return {v}
  }

  private finish(dir: Direction, m: Msg, b: Uint8Array): void {
    const f: Fields = new Map()
    const type = m.type
    f.set('tds.type', {v: type})
    f.set('tds.length', {v: m.firstLength})
    f.set('tds.status', {v: m.status})
    f.set('tds.packets', {v: m.packets})
    f.set('tds.message.length', {v: m.total})
    if (m.truncated) f.set('tds.truncated', {v: 1})
    let kind = TDS_TYPE_NAMES[type] ?? 'message'
    if (m.inspect) {
      if (dir === 'toserver') {
        this.lastClientType = type
        switch (type) {
          case TDS_PRELOGIN:
            if (this.clientEncryption >= 0 && b.length > 0 && isTlsRecord(b, 0)) kind = 'tls_handshake'
            else this.prelogin(f, m, b, true)
            break
          case TDS_LOGIN7:
            this.login(f, m, b)
            break
          case TDS_SQL_BATCH:
            this.sqlBatch(f, m, b)
            break
          case TDS_RPC:
            this.rpc(f, m, b)
            break
          default:
            break
        }
      } else if (type === TDS_RESPONSE) {
        if (b.length > 0 && isTlsRecord(b, 0)) kind = 'tls_handshake'
        else {
          kind = 'prelogin_response'
          this.prelogin(f, m, b, false)
        }
      }
    }
    const start = m.start
    const end = m.end
    m.reset()
    this.emitPdu({protocol: 'tds', kind, dir, start, end, fields: f})
  }

  private prelogin(f: Fields, m: Msg, b: Uint8Array, client: boolean): void {
    const p = parsePrelogin(b, this.limits.maxPreloginOptions)
    if (p.overflow) this.anomaly('tds.prelogin.too_many_options', {offset: m.start, limit: this.limits.maxPreloginOptions})
    let invalid = p.status !== 'ok'
    for (const o of p.options) {
      addValue(f, 'tds.prelogin.option', {v: o.token})
      addValue(f, 'tds.prelogin.option_length', {v: o.length})
      if (o.invalid) {
        invalid = true
        continue
      }
      const at = o.offset
      const len = o.length
      switch (o.token) {
        case PL_VERSION:
          if (len >= 4) f.set(client ? 'tds.prelogin.version' : 'tds.server_version', {v: formatVersion(b, at, len)})
          break
        case PL_ENCRYPTION:
          if (len >= 1) {
            f.set('tds.prelogin.encryption', {v: b[at]!})
            if (client) this.clientEncryption = b[at]!
            else if (this.clientEncryption >= 0 && this.clientEncryption !== 2 && b[at] !== 2) f.set('tds.encrypted', {v: 1})
          }
          break
        case PL_INSTOPT: {
          let z = at
          while (z < at + len && b[z] !== 0) z++
          f.set('tds.prelogin.instance', this.span(m, latin1(b, at, z), at, z - at))
          f.set('tds.prelogin.instance.length', {v: z - at})
          break
        }
        case PL_THREADID:
          if (len >= 4) f.set('tds.prelogin.thread_id', {v: u32le(b, at)})
          break
        case PL_MARS:
          if (len >= 1) f.set('tds.prelogin.mars', {v: b[at]!})
          break
        default:
          break
      }
    }
    f.set('tds.prelogin.option_offset_invalid', {v: invalid ? 1 : 0})
    if (invalid) this.anomaly('tds.prelogin.invalid_option', {offset: m.start, terminated: p.tableEnd >= 0})
  }

  private login(f: Fields, m: Msg, b: Uint8Array): void {
    const l = parseLogin7(b)
    if (l.status !== 'ok') {
      f.set('tds.login.field_invalid', {v: 1})
      this.anomaly('tds.login.malformed', {offset: m.start, length: b.length})
      return
    }
    f.set('tds.login.length', {v: l.length})
    f.set('tds.login.tds_version', {v: l.tdsVersion})
    f.set('tds.login.packet_size', {v: l.packetSize})
    this.tds72 = l.tdsVersion >= 0x72000000 && l.tdsVersion < 0x80000000
    for (const s of l.strings) {
      if (s.name === 'password') {
        f.set('tds.login.password.length', {v: s.bytes / 2})
        continue
      }
      if (s.bytes === 0 || s.offset >= b.length) continue
      const n = Math.min(s.bytes, b.length - s.offset) & ~1
      f.set(`tds.login.${s.name}`, this.span(m, ucs2ToLatin1(b, s.offset, n), s.offset, n))
    }
    f.set('tds.login.field_invalid', {v: l.anyInvalid ? 1 : 0})
    if (l.anyInvalid) {
      const bad = l.strings.filter((s) => s.invalid).map((s) => s.name).join(',')
      this.anomaly('tds.login.field_invalid', {offset: m.start, fields: bad, length: l.length, actual: b.length})
    }
  }

  private headers(m: Msg, b: Uint8Array): number {
    const at = skipAllHeaders(b, this.tds72)
    if (at < 0) this.anomaly('tds.all_headers_invalid', {offset: m.start})
    return at < 0 ? 0 : at
  }

  private sqlBatch(f: Fields, m: Msg, b: Uint8Array): void {
    const at = this.headers(m, b)
    const n = (b.length - at) & ~1
    f.set('tds.sql', this.span(m, ucs2ToLatin1(b, at, n), at, n))
    f.set('tds.sql.length', {v: Math.floor((m.total - at) / 2)})
  }

  private rpc(f: Fields, m: Msg, b: Uint8Array): void {
    const at = this.headers(m, b)
    const r = parseRpcHead(b, at)
    if (r.status !== 'ok') this.anomaly('tds.rpc.malformed', {offset: m.start})
    if (r.procId >= 0) {
      f.set('tds.rpc.proc_id', {v: r.procId})
      const name = TDS_PROC_NAMES[r.procId]
      if (name !== undefined) f.set('tds.rpc.proc_name', {v: name})
    } else if (r.nameOffset >= 0 && r.nameBytes > 0) {
      const n = r.nameBytes & ~1
      f.set('tds.rpc.proc_name', this.span(m, ucs2ToLatin1(b, r.nameOffset, n), r.nameOffset, n))
    }
  }
}
