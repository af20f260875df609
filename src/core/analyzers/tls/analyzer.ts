/**
 * The stateful TLS analyzer: splits each direction into records (RFC 8446 §5, RFC 5246 §6.2),
 * reassembles cleartext handshake messages across records (bounded), and emits one PDU per record:
 * kind 'client_hello' / 'server_hello' when the record completes such a message, 'heartbeat' for
 * heartbeat records (RFC 6520), 'record' otherwise.
 *
 * After a ChangeCipherSpec (or a TLS 1.3 ServerHello) a direction is encrypted: record headers are
 * still parsed, contents are not. Heartbeat records in an encrypted direction are only read when
 * they cannot be ciphertext (shorter than any encrypted heartbeat and starting with a heartbeat
 * type): real Heartbleed exploits send them in cleartext.
 *
 * Every buffer is capped (TLS_LIMITS); hitting a cap reports an anomaly, emits what was seen and
 * skips. Garbage and gaps are resynchronised at the next plausible record header, within
 * maxResyncBytes, else the direction is given up.
 */
import type {Analyzer, AnalyzerContext, Direction, FieldValue, Fields, Pdu} from '../types.js'
import {latin1} from '../line/text.js'
import {fieldWants, type DirWants} from '../wants.js'
import {tlsFields} from './fields.js'
import {
  CT_ALERT, CT_CHANGE_CIPHER_SPEC, CT_HANDSHAKE, CT_HEARTBEAT, HS_CLIENT_HELLO, HS_SERVER_HELLO, MAX_RECORD_LENGTH,
  RECORD_HEADER_LEN, heartbeatOverflows, parseClientHello, parseHeartbeat, parseServerHello, plausibleRecordHeader,
  type At,
} from './parser.js'

/**
 * Per direction, the fields some loaded rule reads: the others are left out (heartbeat fields are
 * always built; DTLS builds all of its few)
 */
const tlsWants = fieldWants(tlsFields)

export interface TlsLimits {
  /** most bytes of one record's fragment held (bigger records: emitted truncated, rest skipped) */
  maxRecordHold: number
  /** most bytes of one handshake message reassembled across records */
  maxHandshakeBytes: number
  /** most records one handshake message may span */
  maxHandshakePieces: number
  /** most cipher suites / extensions / handshake types listed per PDU (counts go on) */
  maxListItems: number
  /** most bytes scanned for a record header after garbage or a gap before giving up the direction */
  maxResyncBytes: number
  /** most unanswered heartbeat requests remembered per direction */
  maxPendingHeartbeats: number
}

export const TLS_LIMITS: Readonly<TlsLimits> = Object.freeze({
  maxRecordHold: MAX_RECORD_LENGTH,
  maxHandshakeBytes: 64 * 1024,
  maxHandshakePieces: 64,
  maxListItems: 256,
  maxResyncBytes: 64 * 1024,
  maxPendingHeartbeats: 16,
})

/** Smallest possible encrypted heartbeat record: 3 + 16 padding + 16 (AEAD tag / MAC). */
export const MIN_ENCRYPTED_HEARTBEAT = 35

const HEADER = 0
const BODY = 1
const SKIP = 2
const DEAD = 3

const TLS13 = 0x0304

class DirState {
  /** absolute offset of the next byte of this direction */
  pos = 0
  phase = HEADER
  readonly hdr = new Uint8Array(RECORD_HEADER_LEN)
  hdrLen = 0
  hdrStart = 0
  resyncing = false
  resyncScanned = 0
  recType = 0
  recVersion = 0
  recLength = 0
  recStart = 0
  /** bytes of the current fragment seen / held */
  bodySeen = 0
  bodyLen = 0
  body: Uint8Array | undefined
  skip = 0
  encrypted = false
  /** becomes encrypted after the current record (TLS 1.3 ServerHello) */
  encryptAfter = false
  /** handshake reassembly: an incomplete message */
  hs: Uint8Array | undefined
  hsLen = 0
  /** flat [bufferIndex, streamOffset, ...]: where each record's piece of `hs` came from */
  readonly pieces: number[] = []
  /** start of the record holding the first byte of the incomplete message */
  hsStart = -1
  /** bytes of an over-long handshake message still to skip */
  hsSkip = 0
  /** record lengths of this direction's heartbeat requests awaiting a response */
  readonly hbQueue: number[] = []
}

const EMPTY_PIECES: number[] = []

export class TlsAnalyzer implements Analyzer {
  readonly protocol = 'tls'
  private readonly ctx: AnalyzerContext
  private readonly limits: TlsLimits
  private readonly st: Record<Direction, DirState> = {toserver: new DirState(), toclient: new DirState()}
  /** the mapping used while parsing one buffer: flat [bufferIndex, streamOffset, ...] */
  private map: number[] = EMPTY_PIECES
  private readonly directMap: number[] = [0, 0]
  /** per direction: the fields some rule reads (all without ctx.reads) */
  private readonly want: DirWants<string>
  /** records finished so far: the one being finished is `record` */
  private record = 0
  /** the record whose PDU has a ClientHello's / ServerHello's version (the first hello of a record wins) */
  private clientHelloRecord = -1
  private serverHelloRecord = -1
  /** handshake types listed for the record being finished (at most maxListItems) */
  private hsTypes = 0

  constructor(ctx: AnalyzerContext, limits: Partial<TlsLimits> = TLS_LIMITS) {
    this.ctx = ctx
    this.limits = limits === TLS_LIMITS ? TLS_LIMITS : {...TLS_LIMITS, ...limits}
    this.want = tlsWants(ctx.reads)
  }

  /**
   * The direction's first byte is at stream offset `at` (the TLS layer after a STARTTLS exchange:
   * the bytes before it were the other protocol's). Before any data of that direction only.
   */
  startAt(dir: Direction, at: number): void {
    this.st[dir].pos = at
  }

  /** buffer sizes, for tests: never above the caps */
  stats(): {buffered: number; capacity: number; pieces: number; queued: number} {
    let buffered = 0
    let capacity = 0
    let pieces = 0
    let queued = 0
    for (const s of [this.st.toserver, this.st.toclient]) {
      buffered += s.bodyLen + s.hsLen + s.hdrLen
      capacity += (s.body?.length ?? 0) + (s.hs?.length ?? 0)
      pieces = Math.max(pieces, s.pieces.length >> 1)
      queued = Math.max(queued, s.hbQueue.length)
    }
    return {buffered, capacity, pieces, queued}
  }

  data(dir: Direction, chunk: Uint8Array): void {
    const s = this.st[dir]
    const n = chunk.length
    let i = 0
    while (i < n) {
      if (s.phase === DEAD) {
        s.pos += n - i
        return
      }
      if (s.phase === HEADER) {
        if (s.hdrLen === 0) s.hdrStart = s.pos
        while (s.hdrLen < RECORD_HEADER_LEN && i < n) {
          s.hdr[s.hdrLen++] = chunk[i++]
          s.pos++
        }
        if (s.hdrLen < RECORD_HEADER_LEN) return
        if (plausibleRecordHeader(s.hdr, 0)) this.startRecord(dir, s)
        else this.slide(dir, s)
        continue
      }
      if (s.phase === SKIP) {
        const take = Math.min(n - i, s.skip)
        s.skip -= take
        s.pos += take
        i += take
        if (s.skip === 0) s.phase = HEADER
        continue
      }
      // BODY
      const want = s.recLength - s.bodySeen
      const take = Math.min(n - i, want)
      if (s.bodySeen === 0 && take === s.recLength && s.recLength <= this.limits.maxRecordHold) {
        // the whole fragment is in this chunk: parse it in place, no copy
        s.pos += take
        s.bodySeen = take
        this.finishRecord(dir, s, chunk, i, i + take, false)
        i += take
        continue
      }
      const hold = Math.min(s.recLength, this.limits.maxRecordHold)
      const keep = Math.min(take, hold - s.bodyLen)
      if (keep > 0) {
        if (s.body === undefined || s.body.length < s.bodyLen + keep) s.body = grow(s.body, s.bodyLen, s.bodyLen + keep, hold)
        s.body.set(chunk.subarray(i, i + keep), s.bodyLen)
        s.bodyLen += keep
      }
      s.pos += keep
      s.bodySeen += keep
      i += keep
      if (s.bodySeen === s.recLength) {
        this.finishRecord(dir, s, s.body ?? chunk, 0, s.bodyLen, false)
      } else if (s.bodyLen >= hold) {
        // over the hold cap: emit what was seen, skip the rest of the fragment
        const rest = s.recLength - s.bodySeen
        this.finishRecord(dir, s, s.body!, 0, s.bodyLen, true)
        s.phase = SKIP
        s.skip = rest
      }
    }
  }

  gap(dir: Direction, length: number): void {
    const s = this.st[dir]
    if (length <= 0) return
    this.ctx.anomaly({type: 'applayer', event: 'tls.gap', detail: {offset: s.pos, length}})
    this.dropHandshake(s, 'gap')
    const phase = s.phase
    s.pos += length
    if (phase === DEAD) return
    let clean = false
    if (phase === BODY) {
      const remaining = s.recLength - s.bodySeen
      this.finishRecord(dir, s, s.body ?? new Uint8Array(0), 0, s.bodyLen, true)
      if (length < remaining) {
        s.phase = SKIP
        s.skip = remaining - length
        return
      }
      clean = length === remaining
    } else if (phase === SKIP) {
      if (length < s.skip) {
        s.skip -= length
        return
      }
      clean = length === s.skip
      s.skip = 0
    }
    s.phase = HEADER
    s.hdrLen = 0
    if (!clean && !s.resyncing) {
      s.resyncing = true
      s.resyncScanned = 0
    }
  }

  end(dir: Direction): void {
    const s = this.st[dir]
    if (s.phase === BODY) {
      this.ctx.anomaly({type: 'applayer', event: 'tls.record_truncated', detail: {offset: s.recStart, declared: s.recLength, seen: s.bodySeen}})
      this.finishRecord(dir, s, s.body ?? new Uint8Array(0), 0, s.bodyLen, true)
    } else if (s.phase === HEADER && s.hdrLen > 0 && !s.resyncing) {
      this.ctx.anomaly({type: 'applayer', event: 'tls.record_truncated', detail: {offset: s.hdrStart, declared: -1, seen: s.hdrLen}})
    }
    this.dropHandshake(s, 'end')
    s.phase = DEAD
    s.hdrLen = 0
    s.body = undefined
    s.bodyLen = 0
  }

  pendingFrom(dir: Direction): number {
    const s = this.st[dir]
    let p = -1
    if (s.phase === BODY) p = s.recStart
    else if (s.phase === HEADER && s.hdrLen > 0) p = s.hdrStart
    if (s.hsLen > 0 && s.hsStart >= 0 && (p < 0 || s.hsStart < p)) p = s.hsStart
    return p
  }

  // ---------------------------------------------------------------------------------------------

  /** the 5 header bytes are not a record header: slide one byte (resynchronising) */
  private slide(dir: Direction, s: DirState): void {
    if (!s.resyncing) {
      this.ctx.anomaly({type: 'applayer', event: 'tls.record_invalid', detail: {offset: s.hdrStart, type: s.hdr[0], major: s.hdr[1], minor: s.hdr[2]}})
      s.resyncing = true
      s.resyncScanned = 0
      this.dropHandshake(s, 'invalid')
    }
    s.hdr.copyWithin(0, 1)
    s.hdrLen = RECORD_HEADER_LEN - 1
    s.hdrStart++
    if (++s.resyncScanned > this.limits.maxResyncBytes) {
      this.ctx.anomaly({type: 'applayer', event: 'tls.resync_failed', detail: {scanned: s.resyncScanned}})
      s.phase = DEAD
      s.hdrLen = 0
    }
    void dir
  }

  private startRecord(dir: Direction, s: DirState): void {
    if (s.resyncing) {
      if (s.resyncScanned > 0) this.ctx.anomaly({type: 'applayer', event: 'tls.resync', detail: {offset: s.hdrStart, skipped: s.resyncScanned}})
      s.resyncing = false
      s.resyncScanned = 0
    }
    const h = s.hdr
    s.recType = h[0]
    s.recVersion = (h[1] << 8) | h[2]
    s.recLength = (h[3] << 8) | h[4]
    s.recStart = s.hdrStart
    s.hdrLen = 0
    s.bodySeen = 0
    s.bodyLen = 0
    if (s.recLength > MAX_RECORD_LENGTH) {
      this.ctx.anomaly({type: 'applayer', event: 'tls.record_too_long', detail: {offset: s.recStart, length: s.recLength, limit: MAX_RECORD_LENGTH}})
    }
    if (s.recLength === 0) {
      if (s.recType !== 23) this.ctx.anomaly({type: 'applayer', event: 'tls.empty_record', detail: {offset: s.recStart, type: s.recType}})
      this.finishRecord(dir, s, h, 0, 0, false)
      return
    }
    s.phase = BODY
  }

  /** Emit the current record's PDU; [from, to) of `buf` holds the fragment bytes seen (maybe fewer than declared). */
  private finishRecord(dir: Direction, s: DirState, buf: Uint8Array, from: number, to: number, truncated: boolean): void {
    const start = s.recStart
    const fields: Fields = new Map()
    const w = this.want[dir]
    this.record++
    this.hsTypes = 0
    if (w['tls.record.type']) fields.set('tls.record.type', {v: s.recType, off: start, len: 1})
    if (w['tls.record.version']) fields.set('tls.record.version', {v: s.recVersion, off: start + 1, len: 2})
    if (w['tls.record.length']) fields.set('tls.record.length', {v: s.recLength, off: start + 3, len: 2})
    if (truncated && w['tls.record.truncated']) fields.set('tls.record.truncated', {v: 1})
    if (w['tls.record.encrypted']) fields.set('tls.record.encrypted', {v: s.encrypted ? 1 : 0})
    const pdu: Pdu = {protocol: 'tls', kind: 'record', dir, start, end: start + RECORD_HEADER_LEN + (to - from), fields}
    const fragStream = start + RECORD_HEADER_LEN
    switch (s.recType) {
      case CT_HANDSHAKE:
        if (s.encrypted) break
        if (truncated) this.dropHandshake(s, 'truncated')
        else this.handshake(s, buf, from, to, fragStream, pdu)
        break
      case CT_ALERT:
        if (!s.encrypted && to - from >= 2) {
          if (w['tls.alert.level']) fields.set('tls.alert.level', {v: buf[from], off: fragStream, len: 1})
          if (w['tls.alert.description']) fields.set('tls.alert.description', {v: buf[from + 1], off: fragStream + 1, len: 1})
        }
        break
      case CT_CHANGE_CIPHER_SPEC:
        this.dropHandshake(s, 'ccs')
        s.encryptAfter = true
        break
      case CT_HEARTBEAT:
        this.heartbeat(dir, s, buf, from, to, fragStream, pdu)
        break
    }
    // reset before emitting: the emit callback may feed more data re-entrantly
    s.phase = HEADER
    s.bodySeen = 0
    s.bodyLen = 0
    if (s.encryptAfter) {
      s.encrypted = true
      s.encryptAfter = false
    }
    this.ctx.emit(pdu)
  }

  private heartbeat(dir: Direction, s: DirState, buf: Uint8Array, from: number, to: number, fragStream: number, pdu: Pdu): void {
    const other = this.st[dir === 'toserver' ? 'toclient' : 'toserver']
    heartbeatFields(this.ctx, this.limits, s, other, s.encrypted, s.recLength, buf, from, to, fragStream, pdu)
  }

  /** forget a partial handshake message */
  private dropHandshake(s: DirState, why: string): void {
    if (s.hsLen > 0) this.ctx.anomaly({type: 'applayer', event: 'tls.handshake_incomplete', detail: {offset: s.hsStart, held: s.hsLen, why}})
    s.hsLen = 0
    s.hsStart = -1
    s.hsSkip = 0
    s.pieces.length = 0
    if (why === 'end') s.hs = undefined
  }

  /** a handshake record's fragment: complete messages are parsed, an incomplete one is kept */
  private handshake(s: DirState, buf: Uint8Array, from: number, to: number, fragStream: number, pdu: Pdu): void {
    let p = from
    if (s.hsSkip > 0) {
      const k = Math.min(s.hsSkip, to - p)
      s.hsSkip -= k
      p += k
    }
    if (s.hsLen > 0 && p < to) {
      // continue the held message: this record is one more piece of it
      let drop = ''
      if ((s.pieces.length >> 1) >= this.limits.maxHandshakePieces) drop = 'tls.handshake_pieces'
      else {
        s.pieces.push(s.hsLen, fragStream + (p - from))
        this.map = s.pieces
        if (s.hsLen < 4) {
          const k = Math.min(4 - s.hsLen, to - p)
          s.hs!.set(buf.subarray(p, p + k), s.hsLen)
          s.hsLen += k
          p += k
        }
        if (s.hsLen >= 4 && 4 + hsBodyLength(s.hs!) > this.limits.maxHandshakeBytes) drop = 'tls.handshake_too_long'
      }
      if (drop !== '') {
        const hs = s.hs!
        const total = s.hsLen >= 4 ? 4 + hsBodyLength(hs) : -1
        this.ctx.anomaly({type: 'limit', event: drop, detail: {offset: s.hsStart, length: total, limit: drop === 'tls.handshake_pieces' ? this.limits.maxHandshakePieces : this.limits.maxHandshakeBytes}})
        this.pushType(pdu, hs[0], total >= 0 ? total - 4 : -1, 0)
        this.map = EMPTY_PIECES
        s.hsSkip = total >= 0 ? total - s.hsLen : 0
        s.hsLen = 0
        s.hsStart = -1
        s.pieces.length = 0
        const k = Math.min(s.hsSkip, to - p)
        s.hsSkip -= k
        p += k
      } else if (s.hsLen >= 4) {
        const total = 4 + hsBodyLength(s.hs!)
        const k = Math.min(total - s.hsLen, to - p)
        if (s.hs!.length < total) s.hs = grow(s.hs, s.hsLen, total, this.limits.maxHandshakeBytes)
        s.hs!.set(buf.subarray(p, p + k), s.hsLen)
        s.hsLen += k
        p += k
        if (s.hsLen === total) {
          this.messages(s, s.hs!, 0, total, pdu, s.hsStart)
          s.hsLen = 0
          s.hsStart = -1
          s.pieces.length = 0
        }
      }
      this.map = EMPTY_PIECES
    }
    if (p >= to) return
    this.directMap[0] = p
    this.directMap[1] = fragStream + (p - from)
    this.map = this.directMap
    const done = this.messages(s, buf, p, to, pdu, s.recStart)
    this.map = EMPTY_PIECES
    if (done < to && s.hsSkip === 0) this.keep(s, buf, done, to, fragStream + (done - from))
  }

  /** keep an incomplete message [from, to) of buf (from this record) for the next handshake record */
  private keep(s: DirState, buf: Uint8Array, from: number, to: number, stream: number): void {
    if (s.hsSkip > 0) return
    const len = to - from
    if (s.hs === undefined || s.hs.length < len) s.hs = grow(s.hs, 0, len, this.limits.maxHandshakeBytes)
    s.hs.set(buf.subarray(from, to), 0)
    s.hsLen = len
    s.hsStart = s.recStart
    s.pieces.length = 0
    s.pieces.push(0, stream)
  }

  /**
   * Parse complete handshake messages in [p, end); returns where the first incomplete one starts
   * (end when none). An over-long message is reported and skipped (hsSkip), returning end.
   */
  private messages(s: DirState, b: Uint8Array, p: number, end: number, pdu: Pdu, firstStart: number): number {
    let first = true
    while (end - p >= 4) {
      const type = b[p]
      const len = (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]
      if (4 + len > this.limits.maxHandshakeBytes) {
        this.ctx.anomaly({type: 'limit', event: 'tls.handshake_too_long', detail: {offset: this.stream(p) ?? -1, length: len, limit: this.limits.maxHandshakeBytes}})
        this.pushType(pdu, type, len, p)
        const avail = end - p
        s.hsSkip = 4 + len - avail
        return end
      }
      if (end - p < 4 + len) return p
      this.pushType(pdu, type, len, p)
      if (first && firstStart < pdu.start) pdu.start = firstStart
      first = false
      if (type === HS_CLIENT_HELLO) this.clientHello(b, p + 4, p + 4 + len, pdu)
      else if (type === HS_SERVER_HELLO) this.serverHello(s, b, p + 4, p + 4 + len, pdu)
      p += 4 + len
    }
    return p
  }

  /** a handshake message of `type` and `len` at buffer index `at`: listed while the list has room */
  private pushType(pdu: Pdu, type: number, len: number, at: number): void {
    if (this.hsTypes >= this.limits.maxListItems) return
    this.hsTypes++
    const w = this.want[pdu.dir]
    if (w['tls.handshake.type']) {
      const span = this.span(at, 1)
      listOf(pdu.fields, 'tls.handshake.type').push(span ? {v: type, off: span.off, len: span.len} : {v: type})
    }
    if (w['tls.handshake.length']) listOf(pdu.fields, 'tls.handshake.length').push({v: len})
  }

  private clientHello(b: Uint8Array, start: number, end: number, pdu: Pdu): void {
    const f = pdu.fields
    if (this.clientHelloRecord === this.record) return // the first ClientHello of a record wins
    pdu.kind = 'client_hello'
    const w = this.want[pdu.dir]
    // no list of suites and extensions when neither is read (the counts go on)
    const h = parseClientHello(b, start, end, w['tls.cipher_suites'] || w['tls.extensions'] ? this.limits.maxListItems : 0)
    if (!h.ok) {
      this.ctx.anomaly({type: 'applayer', event: 'tls.client_hello_malformed', detail: {offset: this.stream(start) ?? -1, problem: h.problem ?? ''}})
      if (w['tls.client_hello.malformed']) f.set('tls.client_hello.malformed', {v: 1})
    }
    if (h.version) {
      this.clientHelloRecord = this.record
      if (w['tls.client.version']) f.set('tls.client.version', this.at(h.version))
    }
    if (h.sessionIdLength !== undefined && w['tls.client.session_id.length']) f.set('tls.client.session_id.length', {v: h.sessionIdLength})
    if (h.cipherSuites.length > 0 && w['tls.cipher_suites']) f.set('tls.cipher_suites', h.cipherSuites.map((x) => this.at(x)))
    if (w['tls.cipher_suites.count']) f.set('tls.cipher_suites.count', {v: h.cipherSuitesCount})
    if (h.compressionCount !== undefined && w['tls.compression_methods.count']) f.set('tls.compression_methods.count', {v: h.compressionCount})
    if (h.extensions.length > 0 && w['tls.extensions']) f.set('tls.extensions', h.extensions.map((x) => this.at(x)))
    if (w['tls.extensions.count']) f.set('tls.extensions.count', {v: h.extensionsCount})
    if (h.sni && w['tls.sni']) {
      const v = latin1(b, h.sni.at, h.sni.at + h.sni.len)
      const sp = this.span(h.sni.at, h.sni.len)
      f.set('tls.sni', sp ? {v, off: sp.off, len: sp.len} : {v})
    }
    if (w['tls.heartbeat_ext']) f.set('tls.heartbeat_ext', {v: h.heartbeatExt ? 1 : 0})
  }

  private serverHello(s: DirState, b: Uint8Array, start: number, end: number, pdu: Pdu): void {
    const f = pdu.fields
    if (this.serverHelloRecord === this.record) return // the first ServerHello of a record wins
    if (pdu.kind === 'record') pdu.kind = 'server_hello'
    const h = parseServerHello(b, start, end, this.limits.maxListItems)
    const w = this.want[pdu.dir]
    if (!h.ok) this.ctx.anomaly({type: 'applayer', event: 'tls.server_hello_malformed', detail: {offset: this.stream(start) ?? -1, problem: h.problem ?? ''}})
    if (h.version) {
      this.serverHelloRecord = this.record
      if (w['tls.server.version']) f.set('tls.server.version', this.at(h.version))
    }
    if (h.cipherSuite && w['tls.server.cipher_suite']) f.set('tls.server.cipher_suite', this.at(h.cipherSuite))
    if (h.extensions.length > 0 && w['tls.server.extensions']) f.set('tls.server.extensions', h.extensions.map((x) => this.at(x)))
    if (h.supportedVersion && w['tls.server.supported_version']) f.set('tls.server.supported_version', this.at(h.supportedVersion))
    if (w['tls.server.hello_retry']) f.set('tls.server.hello_retry', {v: h.helloRetry ? 1 : 0})
    if (h.supportedVersion?.v === TLS13 && !h.helloRetry) {
      // TLS 1.3: everything after the ServerHello is encrypted, both ways (RFC 8446 §2)
      s.encryptAfter = true
      const other = s === this.st.toclient ? this.st.toserver : this.st.toclient
      other.encrypted = true
      this.dropHandshake(other, 'tls13')
    }
  }

  /** stream offset of buffer index i under the current mapping */
  private stream(i: number): number | undefined {
    const sp = this.span(i, 0)
    return sp?.off
  }

  /** the stream span of buffer bytes [i, i+len) when they come from one record, else undefined */
  private span(i: number, len: number): {off: number; len: number} | undefined {
    const m = this.map
    for (let k = m.length - 2; k >= 0; k -= 2) {
      if (m[k] <= i) {
        if (k + 2 < m.length && i + len > m[k + 2]) return undefined
        return {off: m[k + 1] + (i - m[k]), len}
      }
    }
    return undefined
  }

  private at(x: At): FieldValue {
    const sp = this.span(x.at, x.len)
    return sp ? {v: x.v, off: sp.off, len: sp.len} : {v: x.v}
  }
}

/** the uint24 length of the handshake message header at the start of `hs` */
function hsBodyLength(hs: Uint8Array): number {
  return (hs[1] << 16) | (hs[2] << 8) | hs[3]
}

function listOf(f: Fields, name: string): FieldValue[] {
  let l = f.get(name)
  if (!Array.isArray(l)) {
    l = l === undefined ? [] : [l]
    f.set(name, l)
  }
  return l
}

/** a buffer of at least `need` bytes (doubling, at most `cap`), keeping the first `keep` bytes */
function grow(old: Uint8Array | undefined, keep: number, need: number, cap: number): Uint8Array {
  let size = Math.max(old?.length ?? 0, 512)
  while (size < need) size *= 2
  const b = new Uint8Array(Math.min(Math.max(size, need), Math.max(cap, need)))
  if (old && keep > 0) b.set(old.subarray(0, keep))
  return b
}

/** What a heartbeat record needs of its direction and of the other one. */
export interface HeartbeatSide {
  /** record lengths of this direction's heartbeat requests awaiting a response */
  readonly hbQueue: number[]
}

/**
 * The heartbeat fields of one record (RFC 6520), for TLS and DTLS alike: its fragment is
 * buf[from, to) (maybe fewer than the declared `rl` bytes), at stream offset `fragStream`.
 * Requests are remembered per side so that a response (or an encrypted heartbeat answering one)
 * gets `tls.heartbeat.response_excess`: how much longer it is than the request.
 */
export function heartbeatFields(
  ctx: AnalyzerContext, limits: Pick<TlsLimits, 'maxPendingHeartbeats'>, s: HeartbeatSide, other: HeartbeatSide,
  encrypted: boolean, rl: number, buf: Uint8Array, from: number, to: number, fragStream: number, pdu: Pdu,
): void {
  const f = pdu.fields
  pdu.kind = 'heartbeat'
  f.set('tls.heartbeat.record_length', {v: rl})
  const held = to - from
  const cleartext = !encrypted || (rl < MIN_ENCRYPTED_HEARTBEAT && held >= 1 && (buf[from] === 1 || buf[from] === 2))
  let type = -1
  if (cleartext) {
    f.set('tls.heartbeat.encrypted', {v: 0})
    const hb = parseHeartbeat(buf, from, to)
    if (hb.status === 'short') {
      if (rl < 3) ctx.anomaly({type: 'applayer', event: 'tls.heartbeat_short', detail: {offset: pdu.start, length: rl}})
      if (held >= 1) {
        type = buf[from]
        f.set('tls.heartbeat.type', {v: type, off: fragStream, len: 1})
      }
    } else {
      type = hb.type
      f.set('tls.heartbeat.type', {v: hb.type, off: fragStream, len: 1})
      f.set('tls.heartbeat.payload_length', {v: hb.payloadLength, off: fragStream + 1, len: 2})
      const over = heartbeatOverflows(hb.payloadLength, rl)
      f.set('tls.heartbeat.overflow', {v: over ? 1 : 0})
      if (over) ctx.anomaly({type: 'applayer', event: 'tls.heartbeat_overflow', detail: {offset: pdu.start, payload_length: hb.payloadLength, record_length: rl}})
    }
  } else {
    f.set('tls.heartbeat.encrypted', {v: 1})
  }
  // pair responses with the other side's requests (an encrypted record is a response when one is awaited)
  const isResponse = type === 2 || (type === -1 && !cleartext && other.hbQueue.length > 0)
  if (isResponse) {
    const req = other.hbQueue.shift()
    if (req !== undefined) f.set('tls.heartbeat.response_excess', {v: Math.max(0, rl - req)})
  } else if (type === 1 || !cleartext) {
    if (s.hbQueue.length >= limits.maxPendingHeartbeats) {
      ctx.anomaly({type: 'limit', event: 'tls.heartbeat_queue_full', detail: {limit: limits.maxPendingHeartbeats}})
      s.hbQueue.shift()
    }
    s.hbQueue.push(rl)
  }
}
