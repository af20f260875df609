/**
 * DTLS (RFC 6347, DTLS 1.0 and 1.2 over UDP): the TLS record layer with an epoch and a sequence
 * number in every record header, each datagram holding one or more whole records (a record never
 * spans datagrams, RFC 6347 §4.1.1). It emits the same PDUs as the TLS analyzer (protocol 'tls',
 * kinds 'record' and 'heartbeat', the same field names), so the TLS rules judge DTLS too:
 * OpenSSL 1.0.1-1.0.1f's DTLS heartbeat code (d1_both.c dtls1_process_heartbeat) had the very
 * Heartbleed over-read its TLS code had (CVE-2014-0160), fixed in 1.0.1g by the same check.
 *
 *   0      1      2      3      4      5 .. 10            11     12
 *   +------+------+------+------+------+------------------+------+------+-----------------+
 *   | type |   version   |    epoch    | sequence_number  |    length   | fragment[length] |
 *   +------+------+------+------+------+------------------+------+------+-----------------+
 *
 * A record of epoch 0 is cleartext; any later epoch is protected (after ChangeCipherSpec): only its
 * header is read. Handshake records list their messages' types and lengths (12-byte DTLS message
 * headers, RFC 6347 §4.2.2); the hellos themselves are not parsed (no SNI or cipher fields over
 * DTLS). A DTLS 1.3 ciphertext record (RFC 9147 unified header, first byte 001xxxxx) ends the
 * parsing of its datagram: nothing in it is cleartext.
 */
import type {Analyzer, AnalyzerContext, AnalyzerFactory, Direction, FieldValue, Fields, Pdu} from '../types.js'
import {TLS_LIMITS, heartbeatFields, type HeartbeatSide, type TlsLimits} from './analyzer.js'
import {tlsFields} from './fields.js'
import {CT_ALERT, CT_CHANGE_CIPHER_SPEC, CT_HANDSHAKE, CT_HEARTBEAT, MAX_RECORD_LENGTH} from './parser.js'

export const DTLS_RECORD_HEADER_LEN = 13
/** DTLS handshake message header: type, length(3), message_seq(2), fragment_offset(3), fragment_length(3) */
export const DTLS_HANDSHAKE_HEADER_LEN = 12
/** records parsed per datagram (a datagram of 13-byte empty records would otherwise cost one PDU each) */
export const DTLS_MAX_RECORDS_PER_DATAGRAM = 64

/** record versions: DTLS 1.0 (0xfeff) and 1.2 (0xfefd, also DTLS 1.3's legacy_record_version) */
function dtlsVersion(major: number, minor: number): boolean {
  return major === 0xfe && (minor === 0xff || minor === 0xfd)
}

/** a DTLSPlaintext header at `i`: content type 20..24 and a DTLS version */
export function plausibleDtlsHeader(b: Uint8Array, i: number): boolean {
  const t = b[i]
  return t >= CT_CHANGE_CIPHER_SPEC && t <= CT_HEARTBEAT && dtlsVersion(b[i + 1], b[i + 2])
}

class Side implements HeartbeatSide {
  /** absolute offset of the next datagram's first byte */
  pos = 0
  readonly hbQueue: number[] = []
}

export class DtlsAnalyzer implements Analyzer {
  readonly protocol = 'tls'
  private readonly ctx: AnalyzerContext
  private readonly limits: TlsLimits
  private readonly st: Record<Direction, Side> = {toserver: new Side(), toclient: new Side()}

  constructor(ctx: AnalyzerContext, limits: Partial<TlsLimits> = TLS_LIMITS) {
    this.ctx = ctx
    this.limits = limits === TLS_LIMITS ? TLS_LIMITS : {...TLS_LIMITS, ...limits}
  }

  /** one datagram */
  data(dir: Direction, d: Uint8Array): void {
    const s = this.st[dir]
    const base = s.pos
    s.pos += d.length
    let i = 0
    let records = 0
    while (i < d.length) {
      if ((d[i] & 0xe0) === 0x20) return // DTLS 1.3 ciphertext (unified header): opaque
      if (d.length - i < DTLS_RECORD_HEADER_LEN || !plausibleDtlsHeader(d, i)) {
        this.ctx.anomaly({type: 'applayer', event: 'tls.record_invalid', detail: {offset: base + i, type: d[i], major: d[i + 1] ?? -1, minor: d[i + 2] ?? -1}})
        return
      }
      if (records++ === DTLS_MAX_RECORDS_PER_DATAGRAM) {
        this.ctx.anomaly({type: 'limit', event: 'tls.records_per_datagram', detail: {offset: base + i, limit: DTLS_MAX_RECORDS_PER_DATAGRAM}})
        return
      }
      const declared = (d[i + 11] << 8) | d[i + 12]
      const from = i + DTLS_RECORD_HEADER_LEN
      const to = Math.min(d.length, from + declared)
      const truncated = to - from < declared
      if (truncated) this.ctx.anomaly({type: 'applayer', event: 'tls.record_truncated', detail: {offset: base + i, declared, seen: to - from}})
      this.record(dir, s, d, base, i, from, to, declared, truncated)
      i = to
    }
  }

  private record(dir: Direction, s: Side, d: Uint8Array, base: number, i: number, from: number, to: number, declared: number, truncated: boolean): void {
    const start = base + i
    const type = d[i]
    const epoch = (d[i + 3] << 8) | d[i + 4]
    const encrypted = epoch !== 0
    const fields: Fields = new Map()
    fields.set('tls.record.type', {v: type, off: start, len: 1})
    fields.set('tls.record.version', {v: (d[i + 1] << 8) | d[i + 2], off: start + 1, len: 2})
    fields.set('tls.record.epoch', {v: epoch, off: start + 3, len: 2})
    fields.set('tls.record.length', {v: declared, off: start + 11, len: 2})
    if (truncated) fields.set('tls.record.truncated', {v: 1})
    fields.set('tls.record.encrypted', {v: encrypted ? 1 : 0})
    const pdu: Pdu = {protocol: 'tls', kind: 'record', dir, start, end: base + to, fields}
    const fragStream = base + from
    if (type === CT_HANDSHAKE && !encrypted) this.handshake(d, base, from, to, fields)
    else if (type === CT_ALERT && !encrypted && to - from >= 2) {
      fields.set('tls.alert.level', {v: d[from], off: fragStream, len: 1})
      fields.set('tls.alert.description', {v: d[from + 1], off: fragStream + 1, len: 1})
    } else if (type === CT_HEARTBEAT) {
      const other = this.st[dir === 'toserver' ? 'toclient' : 'toserver']
      // a record cannot outgrow its datagram: what the peer can read is what is there
      heartbeatFields(this.ctx, this.limits, s, other, encrypted, to - from, d, from, to, fragStream, pdu)
    }
    this.ctx.emit(pdu)
  }

  /** the messages of a cleartext handshake record: type and declared length of each */
  private handshake(d: Uint8Array, base: number, from: number, to: number, fields: Fields): void {
    const types: FieldValue[] = []
    const lengths: FieldValue[] = []
    let p = from
    while (to - p >= DTLS_HANDSHAKE_HEADER_LEN && types.length < this.limits.maxListItems) {
      const length = (d[p + 1] << 16) | (d[p + 2] << 8) | d[p + 3]
      const fragLen = (d[p + 9] << 16) | (d[p + 10] << 8) | d[p + 11]
      types.push({v: d[p], off: base + p, len: 1})
      lengths.push({v: length})
      p += DTLS_HANDSHAKE_HEADER_LEN + fragLen
    }
    if (types.length > 0) {
      fields.set('tls.handshake.type', types)
      fields.set('tls.handshake.length', lengths)
    }
  }

  gap(): void {
    // datagrams: nothing spans a gap
  }

  end(): void {
    // nothing held
  }

  pendingFrom(): number {
    return -1
  }
}

/** The first datagram starts with a DTLS record header of a plausible length. */
function detect(_dir: Direction, first: Uint8Array): boolean {
  return first.length >= DTLS_RECORD_HEADER_LEN && plausibleDtlsHeader(first, 0) && ((first[11] << 8) | first[12]) <= MAX_RECORD_LENGTH
}

export const dtlsAnalyzer: AnalyzerFactory = {
  protocol: 'tls',
  fields: tlsFields,
  // DTLS-only ports: CoAP over DTLS, syslog over DTLS, SNMP over DTLS, and 4433 (OpenSSL's
  // s_server default); on any other UDP port a DTLS flow is found by its first datagram
  ports: [4433, 5684, 6514, 10161, 10162],
  transport: 'udp',
  detect,
  create: (ctx) => new DtlsAnalyzer(ctx),
}
