/**
 * One DCE/RPC connection-oriented association (a TCP connection, or one SMB named pipe): frames
 * PDUs out of the bytes of each direction, keeps the presentation-context map (bind ->
 * interface UUID), reassembles fragmented requests (bounded), matches responses to requests by
 * call_id, and emits one Pdu per unit through the sink.
 *
 * Bytes may arrive in pieces that are not contiguous in the carrying stream (DCE/RPC inside SMB
 * WRITE messages): `data(dir, chunk, off)` takes each piece's absolute stream offset. Field spans
 * are given only for PDUs whose bytes were contiguous in the stream.
 */
import type {AnomalySink} from '../../events/anomaly.js'
import type {AnalyzerContext, Direction, FieldValue, Fields, Pdu} from '../types.js'
import {latin1} from '../line/text.js'
import {
  DCERPC_HEADER_LEN,
  INTERFACE_NAMES,
  PFC_FIRST_FRAG,
  PFC_LAST_FRAG,
  PFC_OBJECT_UUID,
  PTYPE_NAMES,
  authInfo,
  parseBind,
  parseBindAck,
  readHeader,
  HEADER_ERROR,
  HEADER_OK,
  rd16,
  rd32,
  scanEpmTowers,
  scanNdrStrings,
  uuidAt,
  type DcerpcHeader,
} from './parser.js'
import {DCERPC_FIELDS, type DcerpcField} from './fields.js'
import {fieldWants, type DirWants, type Wants} from '../wants.js'

export interface DcerpcLimits {
  /** reassembled stub bytes kept for one fragmented request (hitting it: dcerpc.fragment_limit) */
  maxStubBytes: number
  /** fragments accepted for one request (hitting it: dcerpc.fragment_limit) */
  maxFragments: number
  /** requests being reassembled at the same time */
  maxPendingCalls: number
  /** presentation contexts remembered (hitting it: dcerpc.context_limit) */
  maxContexts: number
  /** requests awaiting a response, for response -> opnum matching (hitting it: dcerpc.call_limit) */
  maxCalls: number
  /** NDR strings decoded from one stub */
  maxStrings: number
  /** characters kept of one decoded NDR string */
  maxStringChars: number
  /** endpoint-mapper towers reported from one response */
  maxTowers: number
}

export const DCERPC_LIMITS: Readonly<DcerpcLimits> = {
  maxStubBytes: 256 * 1024,
  maxFragments: 1024,
  maxPendingCalls: 16,
  maxContexts: 64,
  maxCalls: 256,
  maxStrings: 32,
  maxStringChars: 1024,
  maxTowers: 16,
}

/** what the association needs from its host analyzer */
export interface DcerpcSink {
  emit(pdu: Pdu): void
  anomaly: AnomalySink
  dynamicService?: AnalyzerContext['dynamicService']
  /** the server address, for endpoint-mapper towers that carry 0.0.0.0 */
  serverIp?: string
  /** the rules' field needs: fields no rule reads are left out (absent: every field is built) */
  reads?: AnalyzerContext['reads']
}

const dcerpcWants = fieldWants(DCERPC_FIELDS)

/** every field a response or fault PDU may carry (pdu, response, auth, iface) */
const RESPONSE_FIELDS: readonly DcerpcField[] = [
  'dcerpc.ptype',
  'dcerpc.flags',
  'dcerpc.little_endian',
  'dcerpc.frag_length',
  'dcerpc.auth_length',
  'dcerpc.call_id',
  'dcerpc.alloc_hint',
  'dcerpc.context_id',
  'dcerpc.opnum',
  'dcerpc.interface',
  'dcerpc.interface.version',
  'dcerpc.interface.name',
  'dcerpc.auth.type',
  'dcerpc.auth.level',
  'dcerpc.auth.pad_length',
  'dcerpc.fault.status',
  'dcerpc.stub.length',
  'dcerpc.stub',
  'dcerpc.epm.port',
  'dcerpc.epm.interface',
]

/**
 * The fields of the responses and faults of a direction in which no rule reads any of theirs:
 * one map for all, always empty (nothing is added to an emitted PDU's fields)
 */
const NO_FIELDS: Fields = new Map()

/** request fields made from the stub bytes (not only from their count) */
const STUB_FIELDS: readonly DcerpcField[] = [
  'dcerpc.stub',
  'dcerpc.stub.strings',
  'dcerpc.stub.max_string_length',
  'netlogon.client_credential',
  'netlogon.client_credential.raw',
  'netlogon.client_credential_zero',
  'netlogon.client_credential.leading_zeros',
  'netlogon.authenticator_zero',
  'netlogon.new_password_zero',
]

interface DirState {
  /** bytes of the unit being buffered (header first, then the whole fragment; may be longer) */
  buf: Uint8Array
  /**
   * the buffer of the last fragment that spanned chunks, for the next one (nothing refers to a
   * fragment's bytes once it was judged: fields are copies); at most SPARE_BUFFER_MAX bytes
   */
  spare: Uint8Array
  len: number
  /** bytes needed before the buffer can be parsed (16, then frag_length) */
  need: number
  /** absolute offset of buf[0] */
  start: number
  /** absolute offset just past the last byte received */
  next: number
  contig: boolean
  dead: boolean
}

interface Reassembly {
  callId: number
  start: number
  ctxId: number
  opnum: number
  allocHint: number
  object: string
  parts: Uint8Array[]
  kept: number
  total: number
  frags: number
  le: boolean
  /** already emitted because a limit was hit; further fragments are only counted */
  flushed: boolean
}

interface Ctx {
  uuid: string
  version: string
  /** INTERFACE_NAMES[uuid] */
  name: string | undefined
  /** the bind offered the NDR64 transfer syntax for it (the server may pick it: stubs are read both ways) */
  ndr64: boolean
}

/** the NDR64 transfer syntax (MS-RPCE 2.2.5.3.4.2) */
const NDR64_SYNTAX = '71710533-beba-4937-8319-b5dbef9ccc36'

/** candidates a context id may stand for beyond the established one (until the server's bind_ack decides) */
const MAX_CANDIDATES = 4

const EMPTY = new Uint8Array(0)

/** the largest fragment buffer a direction keeps for its next fragment (larger ones are dropped) */
export const SPARE_BUFFER_MAX = 16 * 1024
/** fragment buffers are at least this long (one for the header grows less often) */
const MIN_BUFFER = 1024

function sp(v: string | number | bigint, base: number, rel: number, len: number): FieldValue {
  return base < 0 ? {v} : {v, off: base + rel, len}
}

function hex(b: Uint8Array, from: number, to: number): string {
  return Buffer.from(b.buffer, b.byteOffset + from, to - from).toString('hex')
}

function allZero(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false
  return true
}

/**
 * End of the NDR conformant varying string (C706 14.3.4.2: max_count, offset, actual_count,
 * then actual_count UTF-16 units) that starts at the first 4-aligned offset from `at`, or -1
 * when it does not fit in the stub or its counts are inconsistent.
 */
function ndrStringEnd(stub: Uint8Array, at: number, le: boolean): number {
  const i = (at + 3) & ~3
  if (i + 12 > stub.length) return -1
  const max = rd32(stub, i, le)
  const offset = rd32(stub, i + 4, le)
  const actual = rd32(stub, i + 8, le)
  if (actual > max || offset + actual > max) return -1
  const end = i + 12 + 2 * actual
  return end <= stub.length ? end : -1
}

/**
 * Offset of the field after ComputerName in the netlogon calls that start with
 * (PrimaryName [unique string], AccountName [string], SecureChannelType [enum16],
 * ComputerName [string]): NetrServerAuthenticate/2/3 (their ClientCredential, 8 bytes of
 * alignment 1, so it follows the string with no padding) and NetrServerPasswordSet2. -1 when
 * the stub does not parse that way.
 */
function netlogonCredentialAt(stub: Uint8Array, le: boolean): number {
  if (stub.length < 4) return -1
  let i = 4
  if (rd32(stub, 0, le) !== 0) i = ndrStringEnd(stub, i, le)
  if (i >= 0) i = ndrStringEnd(stub, i, le)
  if (i < 0) return -1
  i = ((i + 1) & ~1) + 2
  i = ndrStringEnd(stub, i, le)
  return i >= 0 && i + 8 <= stub.length ? i : -1
}

export class DcerpcConn {
  private readonly st: Record<Direction, DirState>
  /**
   * context id -> what it may stand for: the interface the server accepted for it, or, while the
   * bind / alter_context proposing it is unanswered, every interface proposed for that id (a
   * request may follow its bind before the bind_ack: the server runs it on whichever it
   * accepts). The bind_ack's results settle it: an accepted proposal replaces the list, a
   * rejected one leaves it (so an alter_context the server rejects does not hide the interface
   * it keeps using).
   */
  private readonly contexts = new Map<number, Ctx[]>()
  /** call_id of a bind / alter_context awaiting its answer -> the contexts it proposed, in order */
  private readonly proposals = new Map<number, {id: number; ctx: Ctx}[]>()
  /** call_id -> context id * 0x10000 + opnum of its request (a number: no object per call) */
  private readonly calls = new Map<number, number>()
  private readonly frags = new Map<number, Reassembly>()
  private readonly hdr: DcerpcHeader = {ptype: 0, flags: 0, le: false, minor: 0, fragLength: 0, authLength: 0, callId: 0}
  /** per direction: the fields some rule reads (all without sink.reads) */
  private readonly want: DirWants<DcerpcField>
  /** some request field is made from the stub bytes: fragments' stubs are kept for it */
  private readonly stubRead: boolean
  /** per direction: some rule reads a field of responses and faults (else they share NO_FIELDS) */
  private readonly responseRead: Record<Direction, boolean>

  constructor(
    private readonly sink: DcerpcSink,
    private readonly limits: DcerpcLimits = DCERPC_LIMITS,
  ) {
    this.want = dcerpcWants(sink.reads)
    const w = this.want.toserver
    this.stubRead = STUB_FIELDS.some((name) => w[name])
    const wc = this.want.toclient
    this.responseRead = {toserver: RESPONSE_FIELDS.some((name) => w[name]), toclient: RESPONSE_FIELDS.some((name) => wc[name])}
    const mk = (): DirState => ({buf: EMPTY, spare: EMPTY, len: 0, need: DCERPC_HEADER_LEN, start: 0, next: 0, contig: true, dead: false})
    this.st = {toserver: mk(), toclient: mk()}
  }

  /** state sizes, for tests that check bounds */
  heldState(): Record<string, number> {
    let kept = 0
    for (const r of this.frags.values()) kept += r.kept
    return {
      bufToserver: this.st.toserver.len,
      bufToclient: this.st.toclient.len,
      contexts: this.contexts.size,
      calls: this.calls.size,
      pendingCalls: this.frags.size,
      stubKept: kept,
    }
  }

  isDead(dir: Direction): boolean {
    return this.st[dir].dead
  }

  /** `chunk` is the next piece of direction `dir`, starting at absolute offset `off` */
  data(dir: Direction, chunk: Uint8Array, off: number): void {
    const s = this.st[dir]
    if (s.dead) return
    if (s.len > 0 && off !== s.next) s.contig = false
    // the header of the PDU at hand: one object, rewritten for each PDU (pdu() keeps none)
    const h = this.hdr
    let i = 0
    const n = chunk.length
    while (i < n && !s.dead) {
      if (s.len === 0) {
        const st = readHeader(chunk, i, h)
        if (st === HEADER_ERROR) {
          this.stop(dir, 'dcerpc.bad_version', off + i)
          break
        }
        if (st === HEADER_OK) {
          const frag = h.fragLength
          if (frag < DCERPC_HEADER_LEN) {
            this.stop(dir, 'dcerpc.frag_too_short', off + i, frag)
            break
          }
          if (n - i >= frag) {
            this.pdu(dir, chunk.subarray(i, i + frag), h, off + i, off + i, off + i + frag)
            i += frag
            continue
          }
          s.need = frag
        } else {
          s.need = DCERPC_HEADER_LEN
        }
        s.buf = s.spare.length >= s.need ? s.spare : new Uint8Array(Math.max(s.need, MIN_BUFFER))
        s.spare = EMPTY
        s.start = off + i
        s.contig = true
      }
      const take = Math.min(s.need - s.len, n - i)
      s.buf.set(chunk.subarray(i, i + take), s.len)
      s.len += take
      i += take
      if (s.len < s.need) break
      if (readHeader(s.buf, 0, h) !== HEADER_OK) {
        this.stop(dir, 'dcerpc.bad_version', s.start)
        break
      }
      const frag = h.fragLength
      if (frag < DCERPC_HEADER_LEN) {
        this.stop(dir, 'dcerpc.frag_too_short', s.start, frag)
        break
      }
      if (s.need < frag) {
        if (s.buf.length < frag) {
          const nb = new Uint8Array(frag)
          nb.set(s.buf.subarray(0, s.len))
          s.buf = nb
        }
        s.need = frag
        continue
      }
      const buf = s.buf
      s.buf = EMPTY
      s.len = 0
      s.need = DCERPC_HEADER_LEN
      this.pdu(dir, buf.length === frag ? buf : buf.subarray(0, frag), h, s.contig ? s.start : -1, s.start, off + i)
      if (buf.length <= SPARE_BUFFER_MAX) s.spare = buf
    }
    s.next = off + n
  }

  /** bytes of `dir` were lost: stop parsing that direction */
  gap(dir: Direction, length: number): void {
    const s = this.st[dir]
    if (s.dead) return
    this.sink.anomaly({type: 'applayer', event: 'dcerpc.gap', detail: {length, offset: s.next}})
    this.flushPending(dir)
    s.dead = true
    s.buf = EMPTY
    s.len = 0
  }

  end(dir: Direction): void {
    const s = this.st[dir]
    if (s.len > 0 && !s.dead) {
      this.sink.anomaly({type: 'applayer', event: 'dcerpc.truncated_pdu', detail: {offset: s.start, have: s.len, need: s.need}})
    }
    this.flushPending(dir)
    s.buf = EMPTY
    s.len = 0
  }

  pendingFrom(dir: Direction): number {
    const s = this.st[dir]
    let p = s.len > 0 && !s.dead ? s.start : -1
    if (dir === 'toserver') {
      for (const r of this.frags.values()) if (!r.flushed && (p < 0 || r.start < p)) p = r.start
    }
    return p
  }

  private stop(dir: Direction, event: string, offset: number, value?: number): void {
    const detail: Record<string, number> = {offset}
    if (value !== undefined) detail.frag_length = value
    this.sink.anomaly({type: 'applayer', event, detail})
    this.flushPending(dir)
    const s = this.st[dir]
    s.dead = true
    s.buf = EMPTY
    s.len = 0
  }

  /** emit the requests still being reassembled (end of stream, gap): a rule may still judge them */
  private flushPending(dir: Direction): void {
    if (dir !== 'toserver') return
    for (const r of this.frags.values()) {
      if (!r.flushed) {
        this.sink.anomaly({type: 'applayer', event: 'dcerpc.fragment_incomplete', detail: {call_id: r.callId, fragments: r.frags}})
        this.emitReassembled(r, r.start + 0, -1, true)
      }
    }
    this.frags.clear()
  }

  /** one complete PDU b = [0, frag_length); base = its absolute offset when contiguous, else -1 */
  private pdu(dir: Direction, b: Uint8Array, h: DcerpcHeader, base: number, start: number, end: number): void {
    const f: Fields = (h.ptype === 2 || h.ptype === 3) && !this.responseRead[dir] ? NO_FIELDS : new Map()
    const le = h.le
    const w = this.want[dir]
    if (w['dcerpc.ptype']) f.set('dcerpc.ptype', sp(h.ptype, base, 2, 1))
    if (w['dcerpc.flags']) f.set('dcerpc.flags', sp(h.flags, base, 3, 1))
    if (w['dcerpc.little_endian']) f.set('dcerpc.little_endian', {v: le ? 1 : 0})
    if (w['dcerpc.frag_length']) f.set('dcerpc.frag_length', sp(h.fragLength, base, 8, 2))
    if (w['dcerpc.auth_length']) f.set('dcerpc.auth_length', sp(h.authLength, base, 10, 2))
    if (w['dcerpc.call_id']) f.set('dcerpc.call_id', sp(h.callId, base, 12, 4))
    const kind = PTYPE_NAMES[h.ptype] ?? 'unknown'
    if (h.authLength > 0 && h.authLength + 8 + DCERPC_HEADER_LEN > h.fragLength) {
      this.sink.anomaly({type: 'applayer', event: 'dcerpc.auth_length_too_long', detail: {offset: start, auth_length: h.authLength, frag_length: h.fragLength}})
    }
    switch (h.ptype) {
      case 0:
        this.request(dir, b, h, base, start, end, f, w)
        return
      case 2:
      case 3:
        this.response(b, h, base, f, w)
        break
      case 11:
      case 14:
        this.bind(b, h, base, f, w)
        break
      case 12:
      case 15:
        this.bindAck(b, h, base, start, f, w)
        break
      case 13:
        // bind_nak: every context the bind proposed is rejected
        this.settle(h.callId, null)
        if (b.length >= 18 && w['dcerpc.bind_nak.reason']) f.set('dcerpc.bind_nak.reason', sp(rd16(b, 16, le), base, 16, 2))
        break
      default:
        break
    }
    this.sink.emit({protocol: 'dcerpc', kind, dir, start, end, fields: f})
  }

  private auth(b: Uint8Array, h: DcerpcHeader, fixed: number, f: Fields, w: Wants<DcerpcField>): number {
    const a = authInfo(b, 0, h, Math.min(fixed, b.length))
    if (h.authLength > 0 && !a.bad) {
      if (w['dcerpc.auth.type']) f.set('dcerpc.auth.type', {v: a.type})
      if (w['dcerpc.auth.level']) f.set('dcerpc.auth.level', {v: a.level})
      if (w['dcerpc.auth.pad_length']) f.set('dcerpc.auth.pad_length', {v: a.padLength})
    }
    return Math.max(Math.min(a.bodyEnd, b.length), fixed)
  }

  private iface(f: Fields, ctxId: number, w: Wants<DcerpcField>): Ctx[] | undefined {
    const list = this.contexts.get(ctxId)
    if (list === undefined) return undefined
    if (list.length === 1) {
      const c = list[0]!
      if (w['dcerpc.interface']) f.set('dcerpc.interface', {v: c.uuid})
      if (w['dcerpc.interface.version']) f.set('dcerpc.interface.version', {v: c.version})
      if (w['dcerpc.interface.name'] && c.name !== undefined) f.set('dcerpc.interface.name', {v: c.name})
      return list
    }
    if (w['dcerpc.interface']) f.set('dcerpc.interface', list.map((c) => ({v: c.uuid})))
    if (w['dcerpc.interface.version']) f.set('dcerpc.interface.version', list.map((c) => ({v: c.version})))
    if (w['dcerpc.interface.name']) {
      const names = list.filter((c) => c.name !== undefined).map((c) => ({v: c.name!}))
      if (names.length > 0) f.set('dcerpc.interface.name', names)
    }
    return list
  }

  // ---- request ------------------------------------------------------------------------------

  private request(dir: Direction, b: Uint8Array, h: DcerpcHeader, base: number, start: number, end: number, f: Fields, w: Wants<DcerpcField>): void {
    const le = h.le
    const hasObj = (h.flags & PFC_OBJECT_UUID) !== 0
    const fixed = 24 + (hasObj ? 16 : 0)
    if (b.length < fixed) {
      this.sink.anomaly({type: 'applayer', event: 'dcerpc.pdu_too_short', detail: {offset: start, frag_length: h.fragLength, ptype: 0}})
      this.sink.emit({protocol: 'dcerpc', kind: 'request', dir, start, end, fields: f})
      return
    }
    const allocHint = rd32(b, 16, le)
    const ctxId = rd16(b, 20, le)
    const opnum = rd16(b, 22, le)
    const object = hasObj ? uuidAt(b, 24, le) : ''
    const bodyEnd = this.auth(b, h, fixed, f, w)
    const stub = b.subarray(fixed, bodyEnd)
    const first = (h.flags & PFC_FIRST_FRAG) !== 0
    const last = (h.flags & PFC_LAST_FRAG) !== 0
    if (first && last) {
      this.frags.delete(h.callId)
      if (w['dcerpc.alloc_hint']) f.set('dcerpc.alloc_hint', sp(allocHint, base, 16, 4))
      if (w['dcerpc.context_id']) f.set('dcerpc.context_id', sp(ctxId, base, 20, 2))
      if (w['dcerpc.opnum']) f.set('dcerpc.opnum', sp(opnum, base, 22, 2))
      if (hasObj && w['dcerpc.object']) f.set('dcerpc.object', sp(object, base, 24, 16))
      this.remember(h.callId, ctxId, opnum)
      this.requestBody(f, w, ctxId, opnum, stub, le, base < 0 ? -1 : base + fixed, 1, stub.length, false)
      this.sink.emit({protocol: 'dcerpc', kind: 'request', dir, start, end, fields: f})
      return
    }
    // fragmented request (C706 12.6.3.7): one PDU when the last fragment arrives
    let r = this.frags.get(h.callId)
    if (first && r !== undefined) {
      this.sink.anomaly({type: 'applayer', event: 'dcerpc.fragment_restart', detail: {call_id: h.callId, offset: start}})
      if (!r.flushed) this.emitReassembled(r, end, -1, true)
      this.frags.delete(h.callId)
      r = undefined
    }
    if (r === undefined) {
      if (!first) this.sink.anomaly({type: 'applayer', event: 'dcerpc.fragment_without_first', detail: {call_id: h.callId, offset: start}})
      if (this.frags.size >= this.limits.maxPendingCalls) {
        this.sink.anomaly({type: 'applayer', event: 'dcerpc.fragment_limit', detail: {limit: this.limits.maxPendingCalls, what: 'pending_calls'}})
        const oldest = this.frags.values().next().value as Reassembly
        if (!oldest.flushed) this.emitReassembled(oldest, end, -1, true)
        this.frags.delete(oldest.callId)
      }
      r = {callId: h.callId, start, ctxId, opnum, allocHint, object, parts: [], kept: 0, total: 0, frags: 0, le, flushed: false}
      this.frags.set(h.callId, r)
      this.remember(h.callId, ctxId, opnum)
    }
    r.frags++
    r.total += stub.length
    if (!r.flushed) {
      const room = this.limits.maxStubBytes - r.kept
      if (stub.length > 0 && room > 0) {
        const keep = Math.min(room, stub.length)
        // no copy when no field made from the stub is read
        if (this.stubRead) r.parts.push(stub.slice(0, keep))
        r.kept += keep
      }
      if (r.total > this.limits.maxStubBytes || r.frags > this.limits.maxFragments) {
        this.sink.anomaly({
          type: 'applayer',
          event: 'dcerpc.fragment_limit',
          detail: {call_id: h.callId, fragments: r.frags, stub_bytes: r.total, limit: r.total > this.limits.maxStubBytes ? this.limits.maxStubBytes : this.limits.maxFragments},
        })
        this.emitReassembled(r, end, h.flags, true)
        r.flushed = true
        r.parts = []
      }
    }
    if (last) {
      if (!r.flushed) this.emitReassembled(r, end, h.flags, false)
      this.frags.delete(h.callId)
    }
  }

  private emitReassembled(r: Reassembly, end: number, _flags: number, truncated: boolean): void {
    const f: Fields = new Map()
    const w = this.want.toserver
    if (w['dcerpc.ptype']) f.set('dcerpc.ptype', {v: 0})
    if (w['dcerpc.call_id']) f.set('dcerpc.call_id', {v: r.callId})
    if (w['dcerpc.little_endian']) f.set('dcerpc.little_endian', {v: r.le ? 1 : 0})
    if (w['dcerpc.alloc_hint']) f.set('dcerpc.alloc_hint', {v: r.allocHint})
    if (w['dcerpc.context_id']) f.set('dcerpc.context_id', {v: r.ctxId})
    if (w['dcerpc.opnum']) f.set('dcerpc.opnum', {v: r.opnum})
    if (r.object !== '' && w['dcerpc.object']) f.set('dcerpc.object', {v: r.object})
    const stub = r.parts.length === 0 ? EMPTY : r.parts.length === 1 ? r.parts[0]! : Uint8Array.from(Buffer.concat(r.parts))
    // without stubRead no part was kept: the stub length comes from r.kept
    this.requestBody(f, w, r.ctxId, r.opnum, stub, r.le, -1, r.frags, r.total, truncated, this.stubRead ? stub.length : r.kept)
    r.parts = []
    this.sink.emit({protocol: 'dcerpc', kind: 'request', dir: 'toserver', start: r.start, end: Math.max(end, r.start), fields: f})
  }

  /**
   * stub-derived fields; stubBase = absolute offset of stub[0] when it maps onto the stream;
   * kept = stub bytes held (stub.length, or what was counted when no part was kept)
   */
  private requestBody(f: Fields, w: Wants<DcerpcField>, ctxId: number, opnum: number, stub: Uint8Array, le: boolean, stubBase: number, frags: number, total: number, truncated: boolean, kept = stub.length): void {
    const c = this.iface(f, ctxId, w)
    if (w['dcerpc.stub']) f.set('dcerpc.stub', sp(latin1(stub, 0, stub.length), stubBase, 0, stub.length))
    if (w['dcerpc.stub.length']) f.set('dcerpc.stub.length', {v: total})
    if (w['dcerpc.frag_count']) f.set('dcerpc.frag_count', {v: frags})
    if ((truncated || total > kept) && w['dcerpc.stub.truncated']) f.set('dcerpc.stub.truncated', {v: 1})
    const wantStrings = w['dcerpc.stub.strings']
    const wantMax = w['dcerpc.stub.max_string_length']
    if (wantStrings || wantMax) {
      const ndr = scanNdrStrings(stub, le, this.limits.maxStrings, this.limits.maxStringChars)
      let strings = ndr.strings
      let maxLength = ndr.maxLength
      if (c?.some((x) => x.ndr64) === true) {
        const wide = scanNdrStrings(stub, le, this.limits.maxStrings, this.limits.maxStringChars, true)
        if (wide.strings.length > 0) strings = strings.concat(wide.strings).slice(0, this.limits.maxStrings)
        maxLength = Math.max(maxLength, wide.maxLength)
      }
      if (strings.length > 0 && wantStrings) f.set('dcerpc.stub.strings', strings.map((s) => ({v: s})))
      if (wantMax) f.set('dcerpc.stub.max_string_length', {v: maxLength})
    }
    if (c === undefined || !c.some((x) => x.name === 'netlogon')) return
    const n = stub.length
    // MS-NRPC 3.5.4.4.1-3 NetrServerAuthenticate (5), NetrServerAuthenticate2 (15) and 3 (26):
    // PrimaryName, AccountName, SecureChannelType, ComputerName, ClientCredential(8)[, NegotiateFlags]
    if (opnum === 5 || opnum === 15 || opnum === 26) {
      let at = netlogonCredentialAt(stub, le)
      // not parseable as NDR: the last 8 bytes (opnum 5) or the 8 before NegotiateFlags
      if (at < 0) at = opnum === 5 ? n - 8 : n - 12
      if (at >= 0 && at + 8 <= n) {
        if (w['netlogon.client_credential']) f.set('netlogon.client_credential', {v: hex(stub, at, at + 8)})
        if (w['netlogon.client_credential.raw']) f.set('netlogon.client_credential.raw', sp(latin1(stub, at, at + 8), stubBase, at, 8))
        if (w['netlogon.client_credential_zero']) f.set('netlogon.client_credential_zero', {v: allZero(stub, at, at + 8) ? 1 : 0})
        let z = 0
        while (z < 8 && stub[at + z] === 0) z++
        if (w['netlogon.client_credential.leading_zeros']) f.set('netlogon.client_credential.leading_zeros', {v: z})
      }
    }
    // MS-NRPC 3.5.4.4.5 NetrServerPasswordSet2: ..., ComputerName, Authenticator(8 + 4), ClearNewPassword(516)
    if (opnum === 30) {
      const cred = netlogonCredentialAt(stub, le)
      const auth = cred < 0 ? n - 528 : (cred + 3) & ~3
      if (auth >= 0 && auth + 528 <= n) {
        if (w['netlogon.authenticator_zero']) f.set('netlogon.authenticator_zero', {v: allZero(stub, auth, auth + 8) ? 1 : 0})
        if (w['netlogon.new_password_zero']) f.set('netlogon.new_password_zero', {v: allZero(stub, auth + 12, auth + 528) ? 1 : 0})
      }
    }
  }

  private remember(callId: number, ctxId: number, opnum: number): void {
    if (!this.calls.has(callId) && this.calls.size >= this.limits.maxCalls) {
      this.sink.anomaly({type: 'applayer', event: 'dcerpc.call_limit', detail: {limit: this.limits.maxCalls}})
      this.calls.delete(this.calls.keys().next().value as number)
    }
    this.calls.set(callId, ctxId * 0x10000 + opnum)
  }

  // ---- response / fault ---------------------------------------------------------------------

  private response(b: Uint8Array, h: DcerpcHeader, base: number, f: Fields, w: Wants<DcerpcField>): void {
    const le = h.le
    if (b.length < 24) {
      this.sink.anomaly({type: 'applayer', event: 'dcerpc.pdu_too_short', detail: {frag_length: h.fragLength, ptype: h.ptype}})
      return
    }
    if (w['dcerpc.alloc_hint']) f.set('dcerpc.alloc_hint', sp(rd32(b, 16, le), base, 16, 4))
    if (w['dcerpc.context_id']) f.set('dcerpc.context_id', sp(rd16(b, 20, le), base, 20, 2))
    const call = this.calls.get(h.callId)
    if ((h.flags & PFC_LAST_FRAG) !== 0) this.calls.delete(h.callId)
    const opnum = call === undefined ? -1 : call & 0xffff
    const ctxId = call === undefined ? -1 : call >>> 16
    if (call !== undefined) {
      if (w['dcerpc.opnum']) f.set('dcerpc.opnum', {v: opnum})
      this.iface(f, ctxId, w)
    }
    if (h.ptype === 3) {
      if (b.length >= 28 && w['dcerpc.fault.status']) f.set('dcerpc.fault.status', sp(rd32(b, 24, le), base, 24, 4))
      return
    }
    const bodyEnd = this.auth(b, h, 24, f, w)
    const stubEnd = Math.max(24, bodyEnd)
    if (w['dcerpc.stub.length']) f.set('dcerpc.stub.length', {v: stubEnd - 24})
    if (w['dcerpc.stub']) f.set('dcerpc.stub', sp(latin1(b, 24, stubEnd), base, 24, stubEnd - 24))
    if (opnum === 3 && this.contexts.get(ctxId)?.some((c) => c.uuid === 'e1af8308-5d1f-11c9-91a4-08002b14a0fa') === true) {
      const towers = scanEpmTowers(b.subarray(24, bodyEnd), this.limits.maxTowers)
      if (towers.length > 0) {
        if (w['dcerpc.epm.port']) f.set('dcerpc.epm.port', towers.map((t) => ({v: t.port})))
        if (w['dcerpc.epm.interface']) f.set('dcerpc.epm.interface', towers.map((t) => ({v: t.uuid})))
      }
      for (const t of towers) {
        const ip = t.ip === '0.0.0.0' && this.sink.serverIp !== undefined ? this.sink.serverIp : t.ip
        this.sink.dynamicService?.({ip, port: t.port, proto: t.proto, protocol: 'dcerpc', program: t.uuid})
      }
    }
  }

  // ---- bind ---------------------------------------------------------------------------------

  private bind(b: Uint8Array, h: DcerpcHeader, base: number, f: Fields, w: Wants<DcerpcField>): void {
    const body = parseBind(b, 0, h, b.length, this.limits.maxContexts)
    if (b.length >= 20) {
      if (w['dcerpc.max_xmit']) f.set('dcerpc.max_xmit', sp(body.maxXmit, base, 16, 2))
      if (w['dcerpc.max_recv']) f.set('dcerpc.max_recv', sp(body.maxRecv, base, 18, 2))
    }
    if (w['dcerpc.bind.context_count']) f.set('dcerpc.bind.context_count', {v: body.declaredCount})
    if (body.truncated) this.sink.anomaly({type: 'applayer', event: 'dcerpc.bind_malformed', detail: {declared: body.declaredCount, parsed: body.contexts.length}})
    if (body.contexts.length > 0) {
      if (w['dcerpc.interface']) f.set('dcerpc.interface', body.contexts.map((c) => ({v: c.uuid})))
      if (w['dcerpc.interface.version']) f.set('dcerpc.interface.version', body.contexts.map((c) => ({v: c.version})))
      if (w['dcerpc.interface.name']) {
        const names = body.contexts.map((c) => INTERFACE_NAMES[c.uuid]).filter((x): x is string => x !== undefined)
        if (names.length > 0) f.set('dcerpc.interface.name', names.map((v) => ({v})))
      }
      if (w['dcerpc.bind.transfer_syntax']) {
        const ts: FieldValue[] = []
        for (const c of body.contexts) for (const t of c.transfer) ts.push({v: t})
        if (ts.length > 0) f.set('dcerpc.bind.transfer_syntax', ts)
      }
    }
    const proposed: {id: number; ctx: Ctx}[] = []
    for (const c of body.contexts) {
      const ctx: Ctx = {uuid: c.uuid, version: c.version, name: INTERFACE_NAMES[c.uuid], ndr64: c.transfer.includes(NDR64_SYNTAX)}
      proposed.push({id: c.id, ctx})
      const list = this.contexts.get(c.id)
      if (list === undefined) {
        if (this.contexts.size >= this.limits.maxContexts) {
          this.sink.anomaly({type: 'applayer', event: 'dcerpc.context_limit', detail: {limit: this.limits.maxContexts}})
          continue
        }
        this.contexts.set(c.id, [ctx])
      } else if (!list.some((x) => x.uuid === ctx.uuid && x.version === ctx.version)) {
        // the oldest proposal gives way; the established interface (first) stays
        if (list.length >= MAX_CANDIDATES) list.splice(1, 1)
        list.push(ctx)
      }
    }
    if (proposed.length > 0) {
      if (!this.proposals.has(h.callId) && this.proposals.size >= this.limits.maxPendingCalls) this.proposals.delete(this.proposals.keys().next().value as number)
      this.proposals.set(h.callId, proposed)
    }
  }

  /**
   * The server's answer to the bind / alter_context `callId` (results in the order of its
   * contexts; null: a bind_nak, all rejected): an accepted context id now stands for the
   * proposed interface alone, a rejected proposal is dropped from its id's candidates, and a
   * proposal without a result (a bind_ack cut short) stays a candidate.
   */
  private settle(callId: number, results: readonly number[] | null): void {
    const proposed = this.proposals.get(callId)
    if (proposed === undefined) return
    this.proposals.delete(callId)
    proposed.forEach((p, i) => {
      const list = this.contexts.get(p.id)
      const r = results === null ? 2 : results[i]
      if (r === undefined) return
      if (r === 0) {
        if (list !== undefined || this.contexts.size < this.limits.maxContexts) this.contexts.set(p.id, [p.ctx])
        return
      }
      if (list === undefined) return
      const k = list.indexOf(p.ctx)
      if (k < 0) return
      if (list.length === 1) this.contexts.delete(p.id)
      else list.splice(k, 1)
    })
  }

  private bindAck(b: Uint8Array, h: DcerpcHeader, base: number, start: number, f: Fields, w: Wants<DcerpcField>): void {
    const a = parseBindAck(b, 0, h, b.length, this.limits.maxContexts)
    if (b.length >= 20) {
      if (w['dcerpc.max_xmit']) f.set('dcerpc.max_xmit', sp(a.maxXmit, base, 16, 2))
      if (w['dcerpc.max_recv']) f.set('dcerpc.max_recv', sp(a.maxRecv, base, 18, 2))
    }
    if (b.length >= 26) {
      if (w['dcerpc.bind_ack.secondary_address.length']) f.set('dcerpc.bind_ack.secondary_address.length', sp(a.secAddrLength, base, 24, 2))
      if (w['dcerpc.bind_ack.secondary_address']) f.set('dcerpc.bind_ack.secondary_address', sp(latin1(b, a.secAddrStart, a.secAddrEnd), base, a.secAddrStart, a.secAddrEnd - a.secAddrStart))
    }
    if (w['dcerpc.bind_ack.result_count']) f.set('dcerpc.bind_ack.result_count', {v: a.declaredResults})
    if (a.results.length > 0 && w['dcerpc.bind_ack.results']) f.set('dcerpc.bind_ack.results', a.results.map((v) => ({v})))
    this.settle(h.callId, a.results)
    const tooSmall = b.length >= 20 && (a.maxXmit < 1432 || a.maxRecv < 1432)
    if (w['dcerpc.bind_ack.malformed']) f.set('dcerpc.bind_ack.malformed', {v: a.malformed || tooSmall ? 1 : 0})
    if (a.malformed) this.sink.anomaly({type: 'applayer', event: 'dcerpc.bind_ack_malformed', detail: {offset: start, sec_addr_length: a.secAddrLength, results: a.declaredResults}})
    if (tooSmall) this.sink.anomaly({type: 'applayer', event: 'dcerpc.bind_ack_frag_size', detail: {offset: start, max_xmit: a.maxXmit, max_recv: a.maxRecv}})
  }
}
