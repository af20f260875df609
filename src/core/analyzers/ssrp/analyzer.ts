/**
 * SSRP analyzer ([MC-SQLR]): each datagram is one data() call and one PDU (transport 'udp').
 * Offsets count datagram bytes per direction. Nothing is buffered; long string values are
 * exposed up to maxValueBytes (their real length in the `.length` fields).
 */
import type {AnomalySink} from '../../events/anomaly.js'
import type {Analyzer, AnalyzerContext, Direction, Fields, Pdu} from '../types.js'
import {latin1} from '../line/text.js'
import {SSRP_MAX_INSTANCE, SSRP_TYPE_NAMES, parseSsrp} from './parser.js'

export const SSRP_LIMITS = {
  /** bytes of an instance name or server response exposed as a value */
  maxValueBytes: 8 * 1024,
}

export type SsrpLimits = typeof SSRP_LIMITS

export class SsrpAnalyzer implements Analyzer {
  readonly protocol = 'mssql-ssrp'
  private readonly limits: SsrpLimits
  private readonly emitPdu: (pdu: Pdu) => void
  private readonly anomalySink: AnomalySink
  private posC = 0
  private posS = 0

  constructor(ctx: AnalyzerContext, limits: Partial<SsrpLimits> = SSRP_LIMITS) {
    this.limits = limits === SSRP_LIMITS ? SSRP_LIMITS : {...SSRP_LIMITS, ...limits}
    this.emitPdu = ctx.emit
    this.anomalySink = ctx.anomaly
  }

  data(dir: Direction, d: Uint8Array): void {
    const start = dir === 'toserver' ? this.posC : this.posS
    if (dir === 'toserver') this.posC += d.length
    else this.posS += d.length
    const m = parseSsrp(d)
    const f: Fields = new Map()
    f.set('ssrp.type', {v: m.type})
    f.set('ssrp.length', {v: d.length})
    const cap = this.limits.maxValueBytes
    if (m.instStart >= 0) {
      const len = m.instEnd - m.instStart
      const keep = Math.min(len, cap)
      f.set('ssrp.instance', {v: latin1(d, m.instStart, m.instStart + keep), off: start + m.instStart, len: keep})
      f.set('ssrp.instance.length', {v: len})
      f.set('ssrp.instance_unterminated', {v: m.unterminated ? 1 : 0})
      if (len > SSRP_MAX_INSTANCE || m.unterminated) {
        this.anomaly('ssrp.instance_too_long', {offset: start, length: len, terminated: !m.unterminated})
      }
    }
    if (m.protocolVersion >= 0) f.set('ssrp.protocol_version', {v: m.protocolVersion})
    if (m.respSize >= 0) {
      f.set('ssrp.response.size', {v: m.respSize})
      const keep = Math.min(m.dataEnd - m.dataStart, cap)
      f.set('ssrp.response', {v: latin1(d, m.dataStart, m.dataStart + keep), off: start + m.dataStart, len: keep})
    }
    f.set('ssrp.malformed', {v: m.status === 'ok' ? 0 : 1})
    if (m.status !== 'ok') {
      if (m.instStart < 0) {
        this.anomaly(m.reason === 'unknown_type' ? 'ssrp.unknown_type' : 'ssrp.malformed', {offset: start, type: m.type, length: d.length})
      } else if (!m.unterminated && m.instEnd - m.instStart <= SSRP_MAX_INSTANCE) {
        this.anomaly('ssrp.malformed', {offset: start, type: m.type, length: d.length, reason: 'bytes after instance'})
      }
    }
    this.emitPdu({protocol: 'mssql-ssrp', kind: SSRP_TYPE_NAMES[m.type] ?? 'message', dir, start, end: start + d.length, fields: f})
  }

  gap(dir: Direction, length: number): void {
    if (length <= 0) return
    if (dir === 'toserver') this.posC += length
    else this.posS += length
  }

  end(_dir: Direction): void {}

  pendingFrom(_dir: Direction): number {
    return -1
  }

  private anomaly(event: string, detail: Record<string, number | string | boolean>): void {
    this.anomalySink({type: 'applayer', event, detail})
  }
}
