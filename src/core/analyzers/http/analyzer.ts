/**
 * The stateful HTTP/1.x analyzer: one per TCP flow, incremental over both directions.
 *
 * Each direction runs the same state machine (RFC 9112 §6.3 message body length):
 *
 *   HEAD ──(empty line)──> body by Transfer-Encoding: chunked  -> CHUNK_SIZE <-> CHUNK_DATA/CRLF -> TRAILERS
 *                       └> body by Content-Length             -> BODY_LEN
 *                       └> response without length            -> BODY_CLOSE (until end of stream)
 *                       └> no body                            -> HEAD (next pipelined message)
 *
 * Only what a rule may judge is held: the head (up to maxHeaderBytes) and the first
 * maxBodyInspect (requests) / maxResponseBody (responses) body bytes; the rest of a body is
 * counted and passed. A request PDU is emitted when its head and inspected body are complete; a
 * response PDU when its head and first maxResponseBody body bytes are in.
 */
import type {AnomalySink} from '../../events/anomaly.js'
import type {Analyzer, AnalyzerContext, Direction, FieldValue, Fields, Pdu} from '../types.js'
import {
  CR, LF, contentTypeParam, latin1, looksLikeRequest, looksLikeResponse, parseArgs, parseChunkSize,
  parseContentLength, parseCookies, parseHead, type HeadOptions, parseJsonStrings, parseMultipart, parseRanges, parseTransferEncoding,
  type ParsedHead,
} from './parser.js'
import {normalizeUri, percentDecode, URI_LIMITS} from './uri.js'
import {jsonUnescape} from '../../rules/transforms.js'
import {httpFields} from './fields.js'
import {fieldWants, type DirWants} from '../wants.js'

export const HTTP_LIMITS = {
  /** request/status line + header fields, bytes (anomaly http.header_too_long) */
  maxHeaderBytes: 64 * 1024,
  /** request line, bytes (anomaly http.request_line_too_long) */
  maxRequestLine: 16 * 1024,
  /** header fields kept per message (anomaly http.too_many_headers) */
  maxHeaders: 128,
  /** request body bytes held for inspection (http.body; more: http.body.truncated) */
  maxBodyInspect: 64 * 1024,
  /** response body bytes held for inspection (http.response.body) */
  maxResponseBody: 4 * 1024,
  /** chunk-size line incl. extensions, bytes (anomaly http.chunk_line_too_long) */
  maxChunkLine: 4 * 1024,
  /** chunk extensions recorded per message */
  maxChunkExts: 16,
  /** requests awaiting their response (pipelining); beyond, responses assume GET */
  maxPipeline: 64,
  /** query + form args per request (anomaly http.too_many_args) */
  maxArgs: 256,
  /** cookies per request */
  maxCookies: 128,
  /** byte ranges per request (anomaly http.range_invalid) */
  maxRanges: 64,
  /** multipart parts per request (anomaly http.multipart.too_many_parts) */
  maxMultipartParts: 64,
  /** bytes kept per multipart part body */
  maxPartBytes: 8 * 1024,
  /** contiguous body pieces remembered to map body offsets back to stream spans */
  maxBodyPieces: 256,
  /** percent-decoding passes for the URI path */
  maxDecodePasses: URI_LIMITS.maxDecodePasses,
}

export type HttpLimits = typeof HTTP_LIMITS

/** Which optional fields the loaded rules read (AnalyzerContext.reads); everything without it. */
interface HttpNeeds {
  /** http.response.body */
  responseBody: boolean
  /** http.header_name.<name> */
  headerName: boolean
  /** http.header_names */
  headerNames: boolean
  /** http.response.header.<name> */
  responseHeader: boolean
  /** http.response.header_names */
  responseHeaderNames: boolean
}

const ALL_NEEDS: HttpNeeds = {responseBody: true, headerName: true, headerNames: true, responseHeader: true, responseHeaderNames: true}
/** one answer per engine (its reads function), not per flow */
const needsByReads = new WeakMap<(field: string) => boolean, HttpNeeds>()

function needsOf(reads: ((field: string) => boolean) | undefined): HttpNeeds {
  if (reads === undefined) return ALL_NEEDS
  let n = needsByReads.get(reads)
  if (n === undefined) {
    n = {
      responseBody: reads('http.response.body'),
      headerName: reads('http.header_name.'),
      headerNames: reads('http.header_names'),
      responseHeader: reads('http.response.header.'),
      responseHeaderNames: reads('http.response.header_names'),
    }
    needsByReads.set(reads, n)
  }
  return n
}

/**
 * Per direction, the fields some loaded rule reads (every field without AnalyzerContext.reads):
 * the others are left out. Whatever a rule reads, a few request fields are always built because
 * the engine reads them too: http.method, http.uri.raw, http.uri.host and the request header
 * values (outbound protection, gateway tunnel detection).
 */
const httpWants = fieldWants(httpFields)

const S_HEAD = 0
const S_SKIP_HEAD = 1
const S_BODY_LEN = 2
const S_CHUNK_SIZE = 3
const S_CHUNK_DATA = 4
const S_CHUNK_CRLF = 5
const S_TRAILERS = 6
const S_BODY_CLOSE = 7
const S_RESYNC = 8
const S_TUNNEL = 9

const RESYNC_WINDOW = 32
/**
 * The response header fields read when no rule reads response header values or names: the
 * framing ones (body length, http.cl_and_te, http.response.content_length / transfer_encoding)
 */
const FRAMING_HEADERS: ReadonlySet<string> = new Set(['transfer-encoding', 'content-length'])
const NO_BYTES = new Uint8Array(0)

interface Msg {
  kind: 'request' | 'response'
  start: number
  headEnd: number
  fields: Fields
  /** Expect: 100-continue: the head went out alone, the body follows as kind 'request_body' */
  split: boolean
  emitted: boolean
  bodyStart: number
  /** bytes left of a Content-Length body or of the current chunk */
  remaining: number
  cap: number
  bodyLen: number
  /** a body byte did not fit in the inspection buffer */
  overflow: boolean
  /** a gap fell inside the body: stop inspecting */
  hole: boolean
  /** flat [decodedStart, absOff, len] triples */
  pieces: number[]
  /**
   * the whole body, where it lies in the segment being delivered, when one segment carried all
   * of a Content-Length body: the message is emitted before that segment's delivery returns
   */
  inPlace: Uint8Array | undefined
  chunks: number
  chunkExts: number
  contentType: string
  crlf: number
  /** the head announced a body (Content-Length > 0, chunked, or until close) */
  hasBody: boolean
}

class Side {
  state = S_HEAD
  /** absolute offset of the next byte this side receives */
  pos = 0
  /** head, trailer, chunk-size line or resync bytes being accumulated */
  /** allocated on first use: most heads arrive whole in one segment and are parsed where they lie */
  buf: Uint8Array = NO_BYTES
  len = 0
  bufStart = 0
  started = false
  lineNonCr = 0
  lineCount = 0
  atLineStart = true
  body: Uint8Array | undefined
  msg: Msg | undefined
  ended = false
  constructor(
    readonly dir: Direction,
    readonly req: boolean,
  ) {}
}

/**
 * Field keys of the per-header families ('http.header.' + name...), one string per family and
 * name: the names come interned from the parser, so the same key string (hash kept) is found
 * again instead of concatenating and hashing a new one per header. Bounded per family.
 */
const MAX_KEYS_PER_FAMILY = 1024

interface KeyFamily {
  prefix: string
  keys: Map<string, string>
}

const NAME_KEYS: KeyFamily = {prefix: 'http.header_name.', keys: new Map()}
const REQUEST_HEADER_KEYS: KeyFamily = {prefix: 'http.header.', keys: new Map()}
const RESPONSE_HEADER_KEYS: KeyFamily = {prefix: 'http.response.header.', keys: new Map()}

function fieldKey(family: KeyFamily, lname: string): string {
  let key = family.keys.get(lname)
  if (key === undefined) {
    key = family.prefix + lname
    if (family.keys.size < MAX_KEYS_PER_FAMILY) family.keys.set(lname, key)
  }
  return key
}

function put(f: Fields, k: string, v: FieldValue): void {
  f.set(k, v)
}

function push(f: Fields, k: string, v: FieldValue): void {
  const a = f.get(k)
  if (a === undefined) f.set(k, [v])
  else if (Array.isArray(a)) a.push(v)
  else f.set(k, [a, v])
}

function copyFields(f: Fields): Fields {
  const out: Fields = new Map()
  for (const [k, v] of f) out.set(k, Array.isArray(v) ? v.slice() : v)
  return out
}

function headerValues(h: ParsedHead, lname: string): string[] {
  const out: string[] = []
  for (const x of h.headers) if (x.lname === lname) out.push(x.value)
  return out
}

export class HttpAnalyzer implements Analyzer {
  readonly protocol = 'http'
  private readonly cs = new Side('toserver', true)
  private readonly sc = new Side('toclient', false)
  /** methods of requests whose final response has not been seen */
  private readonly pipeline: string[] = []
  private readonly limits: HttpLimits
  private readonly emitPdu: (pdu: Pdu) => void
  private readonly anomalySink: AnomalySink
  private readonly needs: HttpNeeds
  private readonly want: DirWants<string>
  /** what parseHead makes of request and response heads: what this analyzer reads */
  private readonly requestHead: HeadOptions
  private readonly responseHead: HeadOptions

  constructor(ctx: AnalyzerContext, limits: Partial<HttpLimits> = {}) {
    this.limits = limits === HTTP_LIMITS ? HTTP_LIMITS : {...HTTP_LIMITS, ...limits}
    this.emitPdu = ctx.emit
    this.anomalySink = ctx.anomaly
    this.needs = needsOf(ctx.reads)
    this.want = httpWants(ctx.reads)
    this.requestHead = {line: this.want.toserver['http.request_line']}
    const allHeaders = this.needs.responseHeader || this.needs.responseHeaderNames
    this.responseHead = {keep: allHeaders ? undefined : FRAMING_HEADERS, line: this.want.toclient['http.status_line']}
  }

  data(dir: Direction, chunk: Uint8Array): void {
    const side = dir === 'toserver' ? this.cs : this.sc
    if (side.ended) return
    const base = side.pos
    this.run(side, chunk, 0, base)
    side.pos = base + chunk.length
  }

  gap(dir: Direction, length: number): void {
    const side = dir === 'toserver' ? this.cs : this.sc
    if (side.ended || length <= 0) return
    const at = side.pos
    side.pos += length
    if (side.state === S_TUNNEL) return
    const m = side.msg
    this.anomaly(side, 'http.gap', at, {length})
    if (m !== undefined && (side.state === S_BODY_LEN || side.state === S_CHUNK_DATA) && m.remaining >= length) {
      m.remaining -= length
      m.hole = true
      if (m.remaining === 0) {
        if (side.state === S_BODY_LEN) this.complete(side, side.pos)
        else {
          side.state = S_CHUNK_CRLF
          m.crlf = 0
        }
      }
      return
    }
    if (m !== undefined && side.state === S_BODY_CLOSE) {
      m.hole = true
      return
    }
    if (side.state === S_HEAD && side.started) this.emitPartialHead(side, at)
    else if (m !== undefined) this.abort(side, at)
    this.startResync(side)
  }

  end(dir: Direction): void {
    const side = dir === 'toserver' ? this.cs : this.sc
    if (side.ended) return
    side.ended = true
    const at = side.pos
    switch (side.state) {
      case S_HEAD:
        if (side.started) {
          this.anomaly(side, 'http.incomplete_message', at)
          this.emitPartialHead(side, at)
        }
        break
      case S_BODY_CLOSE:
        this.complete(side, at)
        break
      case S_BODY_LEN:
      case S_CHUNK_SIZE:
      case S_CHUNK_DATA:
      case S_CHUNK_CRLF:
      case S_TRAILERS:
        this.anomaly(side, 'http.incomplete_message', at)
        this.abort(side, at)
        break
      default:
        break
    }
    side.msg = undefined
    side.len = 0
    side.state = S_TUNNEL
  }

  pendingFrom(dir: Direction): number {
    const side = dir === 'toserver' ? this.cs : this.sc
    switch (side.state) {
      case S_HEAD:
        return side.started ? side.bufStart : -1
      case S_RESYNC:
        return side.len > 0 ? side.bufStart : -1
      case S_SKIP_HEAD:
      case S_TUNNEL:
        return -1
      default: {
        const m = side.msg
        if (m === undefined || m.emitted) return -1
        return m.split ? m.bodyStart : m.start
      }
    }
  }

  /** buffer sizes, for tests and memory accounting */
  stats(): {buffered: number; capacity: number; bodyCapacity: number; pipeline: number} {
    let buffered = 0
    let capacity = 0
    let bodyCapacity = 0
    for (const side of [this.cs, this.sc]) {
      buffered += side.len
      capacity += side.buf.length
      bodyCapacity += side.body === undefined ? 0 : side.body.length
    }
    return {buffered, capacity, bodyCapacity, pipeline: this.pipeline.length}
  }

  // ---------------------------------------------------------------- driving

  private run(side: Side, chunk: Uint8Array, p: number, base: number): void {
    const n = chunk.length
    while (p < n) {
      switch (side.state) {
        case S_HEAD:
          p = this.scanHead(side, chunk, p, base, false)
          break
        case S_TRAILERS:
          p = this.scanHead(side, chunk, p, base, true)
          break
        case S_SKIP_HEAD:
          p = this.skipHead(side, chunk, p)
          break
        case S_BODY_LEN: {
          const m = side.msg as Msg
          const take = Math.min(m.remaining, n - p)
          this.takeBody(side, m, chunk, p, p + take, base)
          m.remaining -= take
          p += take
          if (m.remaining === 0) this.complete(side, base + p)
          break
        }
        case S_CHUNK_SIZE:
          p = this.scanChunkSize(side, chunk, p, base)
          break
        case S_CHUNK_DATA: {
          const m = side.msg as Msg
          const take = Math.min(m.remaining, n - p)
          this.takeBody(side, m, chunk, p, p + take, base)
          m.remaining -= take
          p += take
          if (m.remaining === 0) {
            side.state = S_CHUNK_CRLF
            m.crlf = 0
          }
          break
        }
        case S_CHUNK_CRLF: {
          const m = side.msg as Msg
          const b = chunk[p]
          if (m.crlf === 0 && b === CR) {
            m.crlf = 1
            p++
          } else if (b === LF) {
            if (m.crlf === 0) this.anomaly(side, 'http.chunk_bare_lf', base + p)
            p++
            side.state = S_CHUNK_SIZE
            side.len = 0
          } else {
            // chunk data longer than its size line said: framing is lost
            this.anomaly(side, 'http.chunk_size_invalid', base + p, {reason: 'missing CRLF after chunk data'})
            this.abort(side, base + p)
            this.startResync(side)
          }
          break
        }
        case S_BODY_CLOSE: {
          const m = side.msg as Msg
          this.takeBody(side, m, chunk, p, n, base)
          p = n
          break
        }
        case S_RESYNC:
          p = this.resync(side, chunk, p, base)
          break
        default:
          p = n
      }
    }
  }

  private grow(side: Side, need: number): void {
    if (side.buf.length >= need) return
    let size = Math.max(512, side.buf.length * 2)
    while (size < need) size *= 2
    size = Math.max(need, Math.min(size, this.limits.maxHeaderBytes + RESYNC_WINDOW))
    const nb = new Uint8Array(size)
    nb.set(side.buf.subarray(0, side.len))
    side.buf = nb
  }

  private append(side: Side, chunk: Uint8Array, s: number, e: number): void {
    if (e <= s) return
    this.grow(side, side.len + e - s)
    side.buf.set(chunk.subarray(s, e), side.len)
    side.len += e - s
  }

  /**
   * Accumulate a head (or trailer section) up to its empty line. Leading empty lines before a
   * request/status line are skipped (RFC 9112 §2.2).
   */
  private scanHead(side: Side, chunk: Uint8Array, p: number, base: number, trailer: boolean): number {
    const n = chunk.length
    let i = p
    if (!side.started) {
      if (!trailer) {
        while (i < n && (chunk[i] === CR || chunk[i] === LF)) i++
        if (i === n) return n
      }
      side.started = true
      side.bufStart = base + i
      side.len = 0
      side.lineNonCr = 0
      side.lineCount = trailer ? 1 : 0
    }
    const s = i
    const L = this.limits
    // line by line (indexOf finds each LF natively); the counters live in locals and are written
    // back before anything else reads them
    let lineCount = side.lineCount
    let lineNonCr = side.lineNonCr
    while (i < n) {
      const limit = lineCount === 0 ? L.maxRequestLine : L.maxHeaderBytes
      // the index at which the head reaches its size limit (before reading that byte)
      const stop = Math.max(i, s + limit - side.len)
      const end = Math.min(n, stop)
      let lf = end > i ? chunk.indexOf(LF, i) : -1
      if (lf >= end) lf = -1
      const lineEnd = lf < 0 ? end : lf
      if (lineNonCr === 0) {
        for (let k = i; k < lineEnd; k++) {
          if (chunk[k] !== CR) {
            lineNonCr = 1
            break
          }
        }
      }
      if (lf < 0) {
        i = end
        // the limit falls on a byte of a later chunk (or on none yet): it is checked there
        if (stop >= n) break
        side.lineCount = lineCount
        side.lineNonCr = lineNonCr
        this.append(side, chunk, s, i)
        const code = lineCount === 0 ? (side.req ? 'http.request_line_too_long' : 'http.status_line_too_long') : 'http.header_too_long'
        this.anomaly(side, code, base + i, {limit})
        if (trailer) {
          this.abort(side, base + i)
          side.started = false
          side.len = 0
        } else {
          this.emitPartialHead(side, base + i)
        }
        side.state = S_SKIP_HEAD
        return i
      }
      i = lf + 1
      if (lineNonCr === 0 && lineCount > 0) {
        side.lineCount = lineCount
        side.lineNonCr = lineNonCr
        if (side.len === 0) {
          side.started = false
          if (trailer) this.onTrailers(side, chunk, s, i, base + s)
          else this.onHead(side, chunk, s, i, base + s)
        } else {
          this.append(side, chunk, s, i)
          side.started = false
          const hb = side.buf
          const hl = side.len
          side.len = 0
          if (trailer) this.onTrailers(side, hb, 0, hl, side.bufStart)
          else this.onHead(side, hb, 0, hl, side.bufStart)
        }
        return i
      }
      lineCount++
      lineNonCr = 0
    }
    side.lineCount = lineCount
    side.lineNonCr = lineNonCr
    this.append(side, chunk, s, n)
    return n
  }

  /** after an oversized head: drop bytes up to its empty line */
  private skipHead(side: Side, chunk: Uint8Array, p: number): number {
    const n = chunk.length
    for (let i = p; i < n; i++) {
      const b = chunk[i]
      if (b === LF) {
        if (side.lineNonCr === 0 && side.lineCount > 0) {
          side.state = S_HEAD
          side.started = false
          side.len = 0
          return i + 1
        }
        side.lineCount++
        side.lineNonCr = 0
      } else if (b !== CR) {
        side.lineNonCr++
      }
    }
    return n
  }

  private scanChunkSize(side: Side, chunk: Uint8Array, p: number, base: number): number {
    const n = chunk.length
    const m = side.msg as Msg
    if (side.len === 0) side.bufStart = base + p
    for (let i = p; i < n; i++) {
      if (side.len + (i - p) >= this.limits.maxChunkLine) {
        this.anomaly(side, 'http.chunk_line_too_long', base + i, {limit: this.limits.maxChunkLine})
        this.anomaly(side, 'http.chunk_size_invalid', side.bufStart)
        side.len = 0
        this.abort(side, base + i)
        this.startResync(side)
        return i
      }
      if (chunk[i] !== LF) continue
      let buf = chunk
      let s = p
      let e = i + 1
      if (side.len > 0) {
        this.append(side, chunk, p, i + 1)
        buf = side.buf
        s = 0
        e = side.len
      }
      const lineAbs = side.bufStart
      side.len = 0
      let ce = e - 1
      if (ce > s && buf[ce - 1] === CR) ce--
      else this.anomaly(side, 'http.chunk_bare_lf', base + i)
      const cs = parseChunkSize(buf, s, ce)
      if (cs.status !== 'ok') {
        this.anomaly(side, cs.status === 'overflow' ? 'http.chunk_size_overflow' : 'http.chunk_size_invalid', lineAbs, {line: latin1(buf, s, Math.min(ce, s + 64))})
        const held = buf.slice(s, e)
        this.abort(side, lineAbs)
        this.startResync(side)
        // resync from the bad line itself: a smuggled request may start there
        this.run(side, held, 0, lineAbs)
        return i + 1
      }
      if (cs.size > 0) m.chunks++
      if (cs.extLen > 0 && m.chunkExts < this.limits.maxChunkExts) {
        m.chunkExts++
        push(m.fields, side.req ? 'http.chunk_ext' : 'http.response.chunk_ext', {v: latin1(buf, cs.extOff, cs.extOff + cs.extLen), off: lineAbs + (cs.extOff - s), len: cs.extLen})
      }
      if (cs.size === 0) {
        side.state = S_TRAILERS
        side.started = false
      } else {
        m.remaining = cs.size
        side.state = S_CHUNK_DATA
      }
      return i + 1
    }
    this.append(side, chunk, p, n)
    return n
  }

  private startResync(side: Side): void {
    side.msg = undefined
    side.state = S_RESYNC
    side.len = 0
    side.started = false
    side.atLineStart = true
  }

  /** look for the start of the next message at a line start */
  private resync(side: Side, chunk: Uint8Array, p: number, base: number): number {
    const n = chunk.length
    for (let i = p; i < n; i++) {
      const b = chunk[i]
      if (side.atLineStart) {
        if (side.len === 0 && (b === CR || b === LF)) continue
        if (side.len === 0) side.bufStart = base + i
        this.grow(side, side.len + 1)
        side.buf[side.len++] = b
        const r = side.req ? looksLikeRequest(side.buf, 0, side.len) : looksLikeResponse(side.buf, 0, side.len)
        if (r === 1) {
          const held = side.buf.slice(0, side.len)
          const at = side.bufStart
          side.len = 0
          side.state = S_HEAD
          side.started = false
          this.anomaly(side, 'http.resync', at)
          this.run(side, held, 0, at)
          return i + 1
        }
        if (r === 0 || side.len >= RESYNC_WINDOW) {
          side.atLineStart = false
          side.len = 0
        } else {
          continue
        }
      }
      if (b === LF) side.atLineStart = true
    }
    return n
  }

  /**
   * The body buffer grows by doubling up to the message's cap: most bodies are small, and a
   * zero-filled buffer of the full cap per flow cost more than the rest of the body handling.
   */
  private growBody(side: Side, m: Msg, need: number): Uint8Array {
    const old = side.body
    let size = Math.max(1024, old === undefined ? 0 : old.length * 2)
    while (size < need) size *= 2
    const nb = new Uint8Array(Math.min(size, m.cap))
    if (old !== undefined && m.bodyLen > 0) nb.set(old.subarray(0, m.bodyLen))
    side.body = nb
    return nb
  }

  private holdBody(side: Side, m: Msg, chunk: Uint8Array, s: number, k: number): void {
    if (m.bodyLen === 0 && k === m.remaining && side.state === S_BODY_LEN) {
      m.inPlace = chunk.subarray(s, s + k)
      return
    }
    const need = m.bodyLen + k
    const body = side.body !== undefined && side.body.length >= need ? side.body : this.growBody(side, m, need)
    body.set(chunk.subarray(s, s + k), m.bodyLen)
  }

  private takeBody(side: Side, m: Msg, chunk: Uint8Array, s: number, e: number, base: number): void {
    if (e <= s) return
    if (m.hole) return
    const room = m.cap - m.bodyLen
    const k = Math.min(room, e - s)
    if (k > 0) {
      // a response body no rule reads is only counted (its .length and .truncated fields); a
      // request body also gives arguments, multipart parts and their anomalies: always kept
      if (side.req || this.needs.responseBody) this.holdBody(side, m, chunk, s, k)
      const abs = base + s
      const pc = m.pieces
      const last = pc.length - 3
      if (last >= 0 && pc[last + 1] + pc[last + 2] === abs) pc[last + 2] += k
      else if (pc.length < this.limits.maxBodyPieces * 3) pc.push(m.bodyLen, abs, k)
      m.bodyLen += k
    }
    if (m.emitted) return
    if (k < e - s) {
      m.overflow = true
      this.emitMsg(side, m, base + s + k, true)
    } else if (m.bodyLen >= m.cap && side.state === S_BODY_LEN && m.remaining > e - s) {
      m.overflow = true
      this.emitMsg(side, m, base + e, true)
    }
  }

  /** the message ended at absolute offset `end`: emit it if not yet out, then await the next head */
  private complete(side: Side, end: number): void {
    const m = side.msg
    if (m !== undefined && !m.emitted) this.emitMsg(side, m, end, false)
    side.msg = undefined
    side.state = S_HEAD
    side.started = false
    side.len = 0
  }

  /** framing lost mid-message: emit what there is */
  private abort(side: Side, at: number): void {
    const m = side.msg
    if (m !== undefined && !m.emitted) this.emitMsg(side, m, at, false)
    side.msg = undefined
  }

  // ---------------------------------------------------------------- heads

  private newMsg(kind: 'request' | 'response', start: number, headEnd: number, fields: Fields, cap: number): Msg {
    return {
      kind, start, headEnd, fields, split: false, emitted: false, bodyStart: headEnd, remaining: 0,
      cap, bodyLen: 0, overflow: false, hole: false, pieces: [], inPlace: undefined, chunks: 0, chunkExts: 0, contentType: '', crlf: 0, hasBody: false,
    }
  }

  /** a head cut short (size cap, gap, end of stream): emit what it says, without a body */
  private emitPartialHead(side: Side, at: number): void {
    const h = parseHead(side.buf, 0, side.len, side.req ? 'request' : 'response', this.limits.maxHeaders, side.req ? this.requestHead : this.responseHead)
    const lineCut = side.lineCount === 0
    const fields = side.req ? this.requestFields(side, h, side.buf, 0, side.len, side.bufStart, lineCut) : this.responseFields(side, h, side.bufStart, side.len)
    put(fields, 'http.head_truncated', {v: 1})
    if (side.req && this.pipeline.length < this.limits.maxPipeline) this.pipeline.push(h.method)
    this.emitPdu({protocol: 'http', kind: side.req ? 'request' : 'response', dir: side.dir, start: side.bufStart, end: at, fields})
    side.started = false
    side.len = 0
  }

  private onHead(side: Side, buf: Uint8Array, s: number, e: number, abs: number): void {
    if (side.req) this.onRequestHead(side, buf, s, e, abs)
    else this.onResponseHead(side, buf, s, e, abs)
  }

  private requestFields(side: Side, h: ParsedHead, buf: Uint8Array, s: number, e: number, abs: number, lineCut = false): Fields {
    const d = abs - s
    const f: Fields = new Map()
    const w = this.want.toserver
    for (const code of h.anomalies) {
      // a request line cut by its size cap lacks its version: that is not a second problem
      if (!(lineCut && code === 'http.invalid_request_line')) this.anomaly(side, code, abs)
    }
    if (w['http.request_line']) put(f, 'http.request_line', {v: h.line, off: h.lineOff + d, len: h.lineLen})
    put(f, 'http.method', {v: h.method, off: h.methodOff + d, len: h.methodLen})
    if (h.versionLen > 0 && w['http.version']) put(f, 'http.version', {v: h.version, off: h.versionOff + d, len: h.versionLen})
    if (h.targetLen > 0) {
      const targetOff = h.targetOff + d
      put(f, 'http.uri.raw', {v: h.target, off: targetOff, len: h.targetLen})
      const u = normalizeUri(h.target, {maxDecodePasses: this.limits.maxDecodePasses})
      for (const code of u.anomalies) this.anomaly(side, code, targetOff)
      const pathOff = targetOff + u.authority.length
      if (u.authority.length > 0) {
        const hs = u.authority.indexOf('://') + 3
        put(f, 'http.uri.host', {v: u.authority.slice(hs), off: targetOff + hs, len: u.authority.length - hs})
      }
      if (w['http.uri.path.raw']) put(f, 'http.uri.path.raw', {v: u.pathRaw, off: pathOff, len: u.pathRaw.length})
      if (w['http.uri.path']) put(f, 'http.uri.path', {v: u.path})
      if (w['http.uri.decoded']) put(f, 'http.uri.decoded', {v: u.decoded})
      if (u.extension.length > 0 && w['http.uri.extension']) put(f, 'http.uri.extension', {v: u.extension})
      if (w['http.uri.segments']) for (const seg of u.segments) push(f, 'http.uri.segments', {v: seg})
      if (w['http.uri.path_params']) for (const prm of u.params) push(f, 'http.uri.path_params', {v: prm})
      if (u.queryRaw !== undefined && u.query !== undefined) {
        const qOff = pathOff + u.pathRaw.length + 1
        if (w['http.uri.query.raw']) put(f, 'http.uri.query.raw', {v: u.queryRaw, off: qOff, len: u.queryRaw.length})
        if (w['http.uri.query']) put(f, 'http.uri.query', {v: u.query})
        this.addArgs(side, f, u.queryRaw, qOff, (o) => qOff + o)
      }
    }
    this.commonHeaderFields(side, f, h, d, 'http.')
    if (w['http.header_bytes']) put(f, 'http.header_bytes', {v: e - s})
    // cookies
    let cookies = 0
    const rawCookies = w['http.cookie']
    for (const x of h.headers) {
      if (x.lname !== 'cookie') continue
      if (rawCookies) push(f, 'http.cookie', {v: x.value, off: x.valueOff + d, len: x.valueLen})
      for (const c of parseCookies(x.value, this.limits.maxCookies - cookies)) {
        cookies++
        push(f, 'http.cookie.' + c.name.toLowerCase(), {v: c.value, off: x.valueOff + d + c.valueOff, len: c.valueLen})
      }
    }
    // ranges
    let count = 0
    for (const x of h.headers) {
      if (x.lname !== 'range' && x.lname !== 'request-range') continue
      const r = parseRanges(x.value, this.limits.maxRanges - count)
      if (r.invalid || r.tooMany) this.anomaly(side, 'http.range_invalid', x.valueOff + d, {tooMany: r.tooMany})
      for (const g of r.ranges) {
        count++
        push(f, 'http.range.start', {v: g.start, off: x.valueOff + d + g.startOff, len: g.startLen})
        push(f, 'http.range.end', {v: g.end, off: x.valueOff + d + g.endOff, len: g.endLen})
      }
    }
    if (count > 0) put(f, 'http.range.count', {v: count})
    return f
  }

  /**
   * header fields shared by requests ('http.') and responses ('http.response.'); the per-header
   * families no loaded rule reads are left out (three fields per header otherwise)
   */
  private commonHeaderFields(side: Side, f: Fields, h: ParsedHead, d: number, pre: string): void {
    const n = this.needs
    const values = side.req || n.responseHeader
    const byName = side.req && n.headerName
    const names = side.req ? n.headerNames : n.responseHeaderNames
    if (values || byName || names) {
      const valueKeys = side.req ? REQUEST_HEADER_KEYS : RESPONSE_HEADER_KEYS
      for (const x of h.headers) {
        if (values) push(f, fieldKey(valueKeys, x.lname), {v: x.value, off: x.valueOff + d, len: x.valueLen})
        if (byName) push(f, fieldKey(NAME_KEYS, x.lname), {v: x.name, off: x.nameOff + d, len: x.nameLen})
        if (names) push(f, pre + 'header_names', {v: x.name, off: x.nameOff + d, len: x.nameLen})
      }
    }
    const w = side.req ? this.want.toserver : this.want.toclient
    if (side.req ? w['http.headers.count'] : w['http.response.headers.count']) put(f, pre + 'headers.count', {v: h.count})
    if (side.req ? w['http.transfer_encoding'] : w['http.response.transfer_encoding']) {
      for (const x of h.headers) {
        if (x.lname === 'transfer-encoding') push(f, pre + 'transfer_encoding', {v: x.value, off: x.valueOff + d, len: x.valueLen})
      }
    }
    const wantLength = side.req ? w['http.content_length'] : w['http.response.content_length']
    const cl = wantLength ? h.headers.find((x) => x.lname === 'content-length') : undefined
    if (cl !== undefined) {
      const r = parseContentLength([cl.value])
      if (r.value >= 0n) put(f, pre + 'content_length', {v: r.value, off: cl.valueOff + d, len: cl.valueLen})
    }
  }

  private addArgs(side: Side, f: Fields, s: string, at: number, map: (o: number, len: number) => number | undefined): void {
    const have = f.get('http.args')
    const used = have === undefined ? 0 : Array.isArray(have) ? have.length : 1
    const r = parseArgs(s, this.limits.maxArgs - used, (x) => percentDecode(x, undefined, true))
    if (r.tooMany) this.anomaly(side, 'http.too_many_args', at, {limit: this.limits.maxArgs})
    for (const a of r.args) this.addArg(f, a.name, a.value, map(a.valueOff, a.valueLen), a.valueLen)
  }

  private addArg(f: Fields, name: string, value: string, off: number | undefined, len: number): void {
    const fv: FieldValue = off === undefined ? {v: value} : {v: value, off, len}
    push(f, 'http.arg.' + name.toLowerCase(), fv)
    push(f, 'http.args', fv)
    push(f, 'http.arg_names', {v: name})
  }

  /** body framing from the head (RFC 9112 §6.3); reports smuggling anomalies */
  private framing(side: Side, h: ParsedHead, abs: number): {mode: 'none' | 'len' | 'chunked' | 'close'; length: number} {
    const te = headerValues(h, 'transfer-encoding')
    const cl = headerValues(h, 'content-length')
    // Transfer_Encoding / Content_Length: CGI-style back ends (header -> HTTP_TRANSFER_ENCODING,
    // CONTENT_LENGTH; e.g. Werkzeug's server, which dechunks on HTTP_TRANSFER_ENCODING) read
    // them as the framing header this parser ignores
    if (side.req && h.headers.some((x) => x.lname === 'transfer_encoding' || x.lname === 'content_length')) {
      this.anomaly(side, 'http.framing_name_underscore', abs)
    }
    if (te.length > 0) {
      if (cl.length > 0) this.anomaly(side, 'http.cl_and_te', abs)
      const tc = parseTransferEncoding(te)
      // RFC 9112 §6.1: chunked is applied once; `chunked, chunked` is decoded once or twice
      // depending on the processor
      if (tc.chunked && side.req && tc.codings.indexOf('chunked') < tc.codings.length - 1) {
        this.anomaly(side, 'http.te_chunked_twice', abs, {codings: tc.codings.join(',')})
      }
      if (tc.chunked) return {mode: 'chunked', length: 0}
      if (side.req) this.anomaly(side, 'http.te_not_chunked', abs, {codings: tc.codings.join(',')})
      return {mode: 'close', length: 0}
    }
    if (cl.length > 0) {
      const r = parseContentLength(cl)
      switch (r.status) {
        case 'ok':
          return r.value === 0n ? {mode: 'none', length: 0} : {mode: 'len', length: Number(r.value)}
        case 'differ':
          this.anomaly(side, 'http.multiple_content_length', abs)
          return r.value > 0n && r.value <= BigInt(Number.MAX_SAFE_INTEGER) ? {mode: 'len', length: Number(r.value)} : {mode: 'none', length: 0}
        case 'overflow':
          this.anomaly(side, 'http.content_length_overflow', abs)
          break
        default:
          this.anomaly(side, 'http.content_length_invalid', abs)
      }
      // an unusable length: requests are taken as bodiless (what follows is parsed as the next
      // request, so a smuggled one is seen), responses run to the end of the connection
      return side.req ? {mode: 'none', length: 0} : {mode: 'close', length: 0}
    }
    return side.req ? {mode: 'none', length: 0} : {mode: 'close', length: 0}
  }

  private startBody(side: Side, m: Msg, fr: {mode: 'none' | 'len' | 'chunked' | 'close'; length: number}): void {
    side.msg = m
    m.hasBody = fr.mode !== 'none'
    switch (fr.mode) {
      case 'none':
        this.complete(side, m.headEnd)
        return
      case 'len':
        m.remaining = Math.min(fr.length, Number.MAX_SAFE_INTEGER)
        side.state = S_BODY_LEN
        break
      case 'chunked':
        side.state = S_CHUNK_SIZE
        side.len = 0
        break
      default:
        side.state = S_BODY_CLOSE
    }
  }

  private onRequestHead(side: Side, buf: Uint8Array, s: number, e: number, abs: number): void {
    const h = parseHead(buf, s, e, 'request', this.limits.maxHeaders, this.requestHead)
    const fields = this.requestFields(side, h, buf, s, e, abs)
    if (this.pipeline.length < this.limits.maxPipeline) this.pipeline.push(h.method)
    else this.anomaly(side, 'http.pipeline_too_deep', abs, {limit: this.limits.maxPipeline})
    const m = this.newMsg('request', abs, abs + (e - s), fields, this.limits.maxBodyInspect)
    const ct = h.headers.find((x) => x.lname === 'content-type')
    m.contentType = ct === undefined ? '' : ct.value
    if (looksLikeRequest(buf, h.lineOff, h.lineOff + h.lineLen) === 0) {
      // not a request at all: judge what there is, then look for the next real request line
      this.emitMsg(side, m, m.headEnd, false)
      this.startResync(side)
      return
    }
    const fr = this.framing(side, h, abs)
    const expect = h.headers.find((x) => x.lname === 'expect')
    if (fr.mode !== 'none' && expect !== undefined && expect.value.toLowerCase() === '100-continue') {
      // the client waits for "100 Continue" before sending the body: holding the head would
      // deadlock, so the head is judged now and the body later as kind 'request_body'
      this.emitPdu({protocol: 'http', kind: 'request', dir: side.dir, start: m.start, end: m.headEnd, fields: copyFields(fields)})
      m.split = true
    }
    this.startBody(side, m, fr)
  }

  private responseFields(side: Side, h: ParsedHead, abs: number, headLen: number): Fields {
    const d = abs - h.lineOff
    const f: Fields = new Map()
    for (const code of h.anomalies) this.anomaly(side, code, abs)
    const w = this.want.toclient
    if (w['http.status_line']) put(f, 'http.status_line', {v: h.line, off: h.lineOff + d, len: h.lineLen})
    if (h.statusLen > 0 && w['http.status']) put(f, 'http.status', {v: h.status, off: h.statusOff + d, len: h.statusLen})
    if (h.versionLen > 0 && w['http.response.version']) put(f, 'http.response.version', {v: h.version, off: h.versionOff + d, len: h.versionLen})
    this.commonHeaderFields(side, f, h, d, 'http.response.')
    if (w['http.response.header_bytes']) put(f, 'http.response.header_bytes', {v: headLen})
    return f
  }

  private onResponseHead(side: Side, buf: Uint8Array, s: number, e: number, abs: number): void {
    const h = parseHead(buf, s, e, 'response', this.limits.maxHeaders, this.responseHead)
    const fields = this.responseFields(side, h, abs, e - s)
    const m = this.newMsg('response', abs, abs + (e - s), fields, this.limits.maxResponseBody)
    if (!h.valid || looksLikeResponse(buf, s, e) !== 1) {
      this.emitMsg(side, m, m.headEnd, false)
      this.startResync(side)
      return
    }
    const st = h.status
    const informational = st >= 100 && st < 200
    const method = (informational && st !== 101 ? this.pipeline[0] : this.pipeline.shift()) ?? 'GET'
    if (this.want.toclient['http.request.method']) put(fields, 'http.request.method', {v: method})
    if (st === 101 || (method === 'CONNECT' && st >= 200 && st < 300)) {
      // the connection becomes a tunnel (RFC 9110 §9.3.6, §15.2.2): stop parsing both ways
      this.emitMsg(side, m, m.headEnd, false)
      this.tunnel()
      return
    }
    if (informational || st === 204 || st === 304 || method === 'HEAD') {
      if (headerValues(h, 'transfer-encoding').length > 0 && headerValues(h, 'content-length').length > 0) this.anomaly(side, 'http.cl_and_te', abs)
      this.startBody(side, m, {mode: 'none', length: 0})
      return
    }
    this.startBody(side, m, this.framing(side, h, abs))
  }

  private tunnel(): void {
    for (const side of [this.cs, this.sc]) {
      side.state = S_TUNNEL
      side.msg = undefined
      side.len = 0
      side.started = false
    }
  }

  private onTrailers(side: Side, buf: Uint8Array, s: number, e: number, abs: number): void {
    const m = side.msg as Msg
    const h = parseHead(buf, s, e, 'trailer', this.limits.maxHeaders)
    // the trailer section and its final empty line are chunked framing too
    for (const code of h.anomalies) this.anomaly(side, code === 'http.bare_lf' ? 'http.chunk_bare_lf' : code, abs)
    const d = abs - s
    const pre = side.req ? 'http.trailer.' : 'http.response.trailer.'
    for (const x of h.headers) push(m.fields, pre + x.lname, {v: x.value, off: x.valueOff + d, len: x.valueLen})
    this.complete(side, abs + (e - s))
  }

  // ---------------------------------------------------------------- emitting

  /** stream span of body bytes [o, o+len) when they sit in one contiguous piece */
  private bodySpan(m: Msg, o: number, len: number): number | undefined {
    const pc = m.pieces
    for (let i = 0; i < pc.length; i += 3) {
      if (o >= pc[i] && o + len <= pc[i] + pc[i + 2]) return pc[i + 1] + (o - pc[i])
    }
    return undefined
  }

  private emitMsg(side: Side, m: Msg, end: number, truncated: boolean): void {
    m.emitted = true
    const f = m.split ? copyFields(m.fields) : m.fields
    const req = m.kind === 'request'
    const body = m.inPlace ?? side.body
    m.inPlace = undefined
    const pre = req ? 'http.body' : 'http.response.body'
    if (m.bodyLen > 0 && body !== undefined) {
      const off = this.bodySpan(m, 0, m.bodyLen)
      const text = latin1(body, 0, m.bodyLen)
      put(f, pre, off === undefined ? {v: text} : {v: text, off, len: m.bodyLen})
      if (req) this.bodyArgs(side, m, f, body, text)
    } else if (req && m.hasBody) {
      // an announced but empty body (e.g. a chunked "0" body): present, so body rules still run
      put(f, pre, {v: ''})
    }
    const w = req ? this.want.toserver : this.want.toclient
    if ((req || m.bodyLen > 0) && (req ? w['http.body.length'] : w['http.response.body.length'])) put(f, pre + '.length', {v: m.bodyLen})
    if (truncated && (req ? w['http.body.truncated'] : w['http.response.body.truncated'])) put(f, pre + '.truncated', {v: 1})
    if (req && m.chunks > 0 && w['http.chunks']) put(f, 'http.chunks', {v: m.chunks})
    const kind = m.split ? 'request_body' : m.kind
    this.emitPdu({protocol: 'http', kind, dir: side.dir, start: m.split ? m.bodyStart : m.start, end, fields: f})
  }

  /** urlencoded and multipart/form-data bodies: args and parts */
  private bodyArgs(side: Side, m: Msg, f: Fields, body: Uint8Array, text: string): void {
    const ct = m.contentType.toLowerCase()
    if (ct.startsWith('application/x-www-form-urlencoded')) {
      this.addArgs(side, f, text, m.bodyStart, (o, len) => this.bodySpan(m, o, len))
      return
    }
    const media = (ct.split(';')[0] ?? '').trim()
    if (media === 'application/json' || media === 'text/json' || media.endsWith('+json')) {
      const r = parseJsonStrings(text, this.limits.maxArgs, jsonUnescape)
      if (r.tooMany) this.anomaly(side, 'http.too_many_args', m.bodyStart, {limit: this.limits.maxArgs})
      for (const v of r.values) {
        const o = this.bodySpan(m, v.valueOff, v.valueLen)
        push(f, 'http.json_values', o === undefined ? {v: v.value} : {v: v.value, off: o, len: v.valueLen})
      }
      return
    }
    if (!ct.startsWith('multipart/form-data')) return
    const boundary = contentTypeParam(m.contentType, 'boundary')
    if (boundary === undefined || boundary.length === 0) {
      this.anomaly(side, 'http.multipart.no_boundary', m.start)
      return
    }
    const r = parseMultipart(body, m.bodyLen, boundary, this.limits.maxMultipartParts)
    if (r.tooMany) this.anomaly(side, 'http.multipart.too_many_parts', m.bodyStart, {limit: this.limits.maxMultipartParts})
    if (r.malformed && !m.overflow) this.anomaly(side, 'http.multipart.malformed', m.bodyStart)
    const maxPart = this.limits.maxPartBytes
    for (const p of r.parts) {
      if (p.name !== undefined) {
        const o = this.bodySpan(m, p.nameOff, p.name.length)
        push(f, 'http.multipart.name', o === undefined ? {v: p.name} : {v: p.name, off: o, len: p.name.length})
      }
      if (p.filename !== undefined) {
        const o = this.bodySpan(m, p.filenameOff, p.filename.length)
        push(f, 'http.multipart.filename', o === undefined ? {v: p.filename} : {v: p.filename, off: o, len: p.filename.length})
      }
      if (p.filenameExt !== undefined && p.filenameExtOff !== undefined) {
        const o = this.bodySpan(m, p.filenameExtOff, p.filenameExt.length)
        push(f, 'http.multipart.filename', o === undefined ? {v: p.filenameExt} : {v: p.filenameExt, off: o, len: p.filenameExt.length})
      }
      if (p.contentType !== undefined) push(f, 'http.multipart.content_type', {v: p.contentType})
      const bl = Math.min(p.bodyLen, maxPart)
      const bo = this.bodySpan(m, p.bodyOff, bl)
      const v = latin1(body, p.bodyOff, p.bodyOff + bl)
      push(f, 'http.multipart.body', bo === undefined ? {v} : {v, off: bo, len: bl})
      if (p.filename === undefined && p.name !== undefined) this.addArg(f, p.name, v, bo, bl)
    }
  }

  private anomaly(side: Side, event: string, off: number, detail?: Record<string, number | string | boolean>): void {
    this.anomalySink({type: 'applayer', event, detail: {dir: side.dir, off, ...detail}})
  }
}
