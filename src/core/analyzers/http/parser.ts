/**
 * Stateless HTTP/1.x parsing functions (RFC 9112 message syntax, RFC 9110 semantics). They work
 * on byte ranges of a Uint8Array and return offsets relative to that array; the stateful
 * analyzer adds the absolute stream base. Nothing here throws on malformed input: problems are
 * returned as anomaly codes.
 *
 * RFC 9112 §2.1 message format:
 *
 *   HTTP-message   = start-line CRLF
 *                    *( field-line CRLF )
 *                    CRLF
 *                    [ message-body ]
 *   start-line     = request-line / status-line
 *
 * RFC 9112 §3 request line:            RFC 9112 §4 status line:
 *
 *   request-line = method SP             status-line = HTTP-version SP status-code SP
 *                  request-target SP                    [ reason-phrase ]
 *                  HTTP-version          HTTP-version = "HTTP" "/" DIGIT "." DIGIT
 *
 * RFC 9112 §5 field lines (§5.2 obsolete line folding):
 *
 *   field-line   = field-name ":" OWS field-value OWS
 *   obs-fold     = OWS CRLF RWS          ; a line starting with SP/HTAB continues the previous value
 *
 * RFC 9112 §7.1 chunked transfer coding:
 *
 *   chunked-body   = *chunk
 *                    last-chunk
 *                    trailer-section
 *                    CRLF
 *   chunk          = chunk-size [ chunk-ext ] CRLF
 *                    chunk-data CRLF
 *   chunk-size     = 1*HEXDIG
 *   last-chunk     = 1*("0") [ chunk-ext ] CRLF
 *   chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
 */
import {latin1} from '../line/text.js'

export const CR = 13
export const LF = 10
export const SP = 32
export const HT = 9
const COLON = 58

/** tchar (RFC 9110 §5.6.2) lookup */
const TCHAR = new Uint8Array(256)
for (let c = 0; c < 256; c++) {
  const ch = String.fromCharCode(c)
  TCHAR[c] = /[A-Za-z0-9!#$%&'*+\-.^_`|~]/.test(ch) ? 1 : 0
}

export function isTchar(c: number): boolean {
  return TCHAR[c] === 1
}

/** latin1 text of a byte range (shared with the line protocols) */
export {latin1}

/**
 * Header-name strings by their bytes: heads repeat a few dozen names, so each name is made (and
 * lower-cased) once and later heads reuse the same strings, whose hashes V8 keeps: field keys
 * built from them and Map lookups by them stay cheap. Direct-mapped and bounded; a collision or
 * a name an attacker varies only costs a miss.
 */
const NAME_CACHE_SLOTS = 512
const NAME_CACHE_MAX_LEN = 48
const nameCacheBytes: Uint8Array[] = Array.from({length: NAME_CACHE_SLOTS}, () => new Uint8Array(0))
const nameCacheName: string[] = Array.from({length: NAME_CACHE_SLOTS}, () => '')
const nameCacheLname: string[] = Array.from({length: NAME_CACHE_SLOTS}, () => '')
/** the result of internName */
let internedName = ''
let internedLname = ''

function internName(buf: Uint8Array, s: number, e: number): void {
  const len = e - s
  if (len > NAME_CACHE_MAX_LEN) {
    internedName = latin1(buf, s, e)
    internedLname = internedName.toLowerCase()
    return
  }
  let h = 0x811c9dc5 ^ len
  for (let i = s; i < e; i++) h = Math.imul(h ^ buf[i], 0x01000193)
  const slot = (h >>> 0) & (NAME_CACHE_SLOTS - 1)
  const cached = nameCacheBytes[slot]
  if (cached.length === len) {
    let same = true
    for (let i = 0; i < len; i++) {
      if (cached[i] !== buf[s + i]) {
        same = false
        break
      }
    }
    if (same) {
      internedName = nameCacheName[slot]
      internedLname = nameCacheLname[slot]
      return
    }
  }
  internedName = latin1(buf, s, e)
  internedLname = internedName.toLowerCase()
  // a copy (never Buffer#slice, a view the caller may overwrite)
  nameCacheBytes[slot] = new Uint8Array(buf.subarray(s, e))
  nameCacheName[slot] = internedName
  nameCacheLname[slot] = internedLname
}

export interface HeaderLine {
  /** name as sent (trimmed of whitespace before the colon) */
  name: string
  /** lower-case name */
  lname: string
  nameOff: number
  nameLen: number
  /** value with OWS trimmed; obs-fold continuations joined with one SP */
  value: string
  /** span of the value bytes (for a folded value: from its first to its last byte, folds included) */
  valueOff: number
  valueLen: number
}

export interface ParsedHead {
  /** start line span (without its line terminator) */
  lineOff: number
  lineLen: number
  line: string
  /** request: method, target, version; response: version, status, reason */
  methodOff: number
  methodLen: number
  method: string
  targetOff: number
  targetLen: number
  target: string
  versionOff: number
  versionLen: number
  version: string
  status: number
  statusOff: number
  statusLen: number
  reason: string
  /** the start line parsed well */
  valid: boolean
  /** the header fields parseHead was asked to keep (all, or those of the names in `keep`) */
  headers: HeaderLine[]
  /** header fields counted against maxHeaders, kept or not (headers.length when all are kept) */
  count: number
  /** header lines seen (including those dropped past maxHeaders) */
  headerLines: number
  anomalies: string[]
}

function flag(list: string[], code: string): void {
  if (!list.includes(code)) list.push(code)
}

/** request-line split on SP/HTAB runs (lenient like most servers; extra whitespace is flagged) */
function parseRequestLine(buf: Uint8Array, s: number, e: number, h: ParsedHead): void {
  let p = s
  const a = h.anomalies
  while (p < e && isTchar(buf[p])) p++
  h.methodOff = s
  h.methodLen = p - s
  h.method = latin1(buf, s, p)
  if (p === s || (p < e && buf[p] !== SP && buf[p] !== HT)) {
    flag(a, 'http.invalid_request_line')
    h.valid = false
    if (p === s) return
    // method followed by a non-token byte: take the rest up to whitespace as the method's tail
    while (p < e && buf[p] !== SP && buf[p] !== HT) p++
    h.methodLen = p - s
    h.method = latin1(buf, s, p)
  }
  let ws = 0
  while (p < e && (buf[p] === SP || buf[p] === HT)) {
    p++
    ws++
  }
  if (ws !== 1) flag(a, 'http.invalid_request_line')
  const ts = p
  while (p < e && buf[p] !== SP && buf[p] !== HT) p++
  h.targetOff = ts
  h.targetLen = p - ts
  h.target = latin1(buf, ts, p)
  if (p === ts) {
    flag(a, 'http.invalid_request_line')
    h.valid = false
    return
  }
  ws = 0
  while (p < e && (buf[p] === SP || buf[p] === HT)) {
    p++
    ws++
  }
  const vs = p
  while (p < e && buf[p] !== SP && buf[p] !== HT) p++
  h.versionOff = vs
  h.versionLen = p - vs
  h.version = latin1(buf, vs, p)
  if (p === vs) {
    // HTTP/0.9 style "GET /" without a version
    flag(a, 'http.invalid_request_line')
    h.valid = false
    return
  }
  if (ws !== 1 || !/^HTTP\/\d\.\d$/.test(h.version)) flag(a, 'http.invalid_request_line')
  while (p < e && (buf[p] === SP || buf[p] === HT)) p++
  if (p < e) flag(a, 'http.invalid_request_line')
}

function parseStatusLine(buf: Uint8Array, s: number, e: number, h: ParsedHead): void {
  let p = s
  while (p < e && buf[p] !== SP && buf[p] !== HT) p++
  h.versionOff = s
  h.versionLen = p - s
  h.version = latin1(buf, s, p)
  if (!/^HTTP\/\d\.\d$/.test(h.version)) {
    flag(h.anomalies, 'http.invalid_status_line')
    h.valid = false
  }
  while (p < e && (buf[p] === SP || buf[p] === HT)) p++
  const cs = p
  let code = 0
  while (p < e && buf[p] >= 48 && buf[p] <= 57 && p - cs < 3) code = code * 10 + buf[p++] - 48
  h.statusOff = cs
  h.statusLen = p - cs
  if (p - cs !== 3 || (p < e && buf[p] !== SP && buf[p] !== HT)) {
    flag(h.anomalies, 'http.invalid_status_line')
    h.valid = false
    h.status = p - cs === 3 ? code : 0
    return
  }
  h.status = code
  while (p < e && (buf[p] === SP || buf[p] === HT)) p++
  h.reason = latin1(buf, p, e)
}

const FRAMING_NAMES = ['transfer-encoding', 'content-length']

/**
 * Does buf[a, e) begin with a framing field name (Transfer-Encoding, Content-Length; any case,
 * `_` for `-` as CGI-style header-to-variable mappings read it) followed by OWS and ':'?
 */
function foldedFramingName(buf: Uint8Array, a: number, e: number): boolean {
  let c = a
  while (c < e && isTchar(buf[c])) c++
  const nameEnd = c
  while (c < e && (buf[c] === SP || buf[c] === HT)) c++
  if (c >= e || buf[c] !== COLON) return false
  return FRAMING_NAMES.includes(latin1(buf, a, nameEnd).toLowerCase().replace(/_/g, '-'))
}

export interface HeadOptions {
  /** lower-case names of the header fields recorded in `headers` (absent: all); no value string is made for the others */
  readonly keep?: ReadonlySet<string>
  /** the start line's text is made (`line`; '' when false) */
  readonly line: boolean
}

const ALL_OF_HEAD: HeadOptions = {line: true}

/**
 * Parse a message head held in buf[start, end): the start line, then field lines up to the empty
 * line. `end` may cut the head short (a head that hit its size cap): the last, unterminated line is
 * parsed as far as it goes. `opts` may leave out what the caller does not read (every field is
 * still checked, counted and flagged alike).
 */
export function parseHead(buf: Uint8Array, start: number, end: number, kind: 'request' | 'response' | 'trailer', maxHeaders: number, opts: HeadOptions = ALL_OF_HEAD): ParsedHead {
  const keep = opts.keep
  const h: ParsedHead = {
    lineOff: start, lineLen: 0, line: '',
    methodOff: start, methodLen: 0, method: '',
    targetOff: start, targetLen: 0, target: '',
    versionOff: start, versionLen: 0, version: '',
    status: 0, statusOff: start, statusLen: 0, reason: '',
    valid: true, headers: [], count: 0, headerLines: 0, anomalies: [],
  }
  let p = start
  let first = kind !== 'trailer'
  let last: HeaderLine | undefined
  let nextCr = -1
  while (p < end) {
    // one line: [p, le) content, terminator ends at next
    let q = buf.indexOf(LF, p)
    if (q < 0 || q > end) q = end
    let le = q
    const next = q < end ? q + 1 : end
    if (q < end) {
      if (le > p && buf[le - 1] === CR) le--
      else flag(h.anomalies, 'http.bare_lf')
    }
    // the next CR at or after p, searched again only once p has passed it (linear over the head)
    if (nextCr < p) {
      nextCr = buf.indexOf(CR, p)
      if (nextCr < 0) nextCr = Number.MAX_SAFE_INTEGER
    }
    if (nextCr < le) flag(h.anomalies, 'http.bare_cr')
    if (first) {
      first = false
      h.lineOff = p
      h.lineLen = le - p
      if (opts.line) h.line = latin1(buf, p, le)
      if (kind === 'request') parseRequestLine(buf, p, le, h)
      else parseStatusLine(buf, p, le, h)
      p = next
      continue
    }
    if (le === p) break // empty line: end of head
    if (buf[p] === SP || buf[p] === HT) {
      // obs-fold (RFC 9112 §5.2): continuation of the previous field value
      flag(h.anomalies, 'http.obs_fold')
      let a = p
      while (a < le && (buf[a] === SP || buf[a] === HT)) a++
      // a continuation that reads as a framing field line: a recipient that does not unfold
      // (RFC 9112 §5.2 lets it reject or replace the fold with SP, some just start a new line)
      // sees Transfer-Encoding / Content-Length where this parser sees part of another value
      if (kind === 'request' && foldedFramingName(buf, a, le)) flag(h.anomalies, 'http.obs_fold_framing')
      let b = le
      while (b > a && (buf[b - 1] === SP || buf[b - 1] === HT)) b--
      if (last !== undefined && b > a) {
        last.value = last.value.length > 0 ? last.value + ' ' + latin1(buf, a, b) : latin1(buf, a, b)
        if (last.valueLen === 0) last.valueOff = a
        last.valueLen = b - last.valueOff
      }
      p = next
      continue
    }
    h.headerLines++
    let c = p
    while (c < le && buf[c] !== COLON) c++
    if (c === le) {
      flag(h.anomalies, 'http.header_invalid')
      last = undefined
      p = next
      continue
    }
    let ne = c
    if (ne > p && (buf[ne - 1] === SP || buf[ne - 1] === HT)) {
      flag(h.anomalies, 'http.space_before_colon')
      while (ne > p && (buf[ne - 1] === SP || buf[ne - 1] === HT)) ne--
    }
    for (let i = p; i < ne; i++) {
      if (!isTchar(buf[i])) {
        flag(h.anomalies, 'http.header_invalid')
        break
      }
    }
    if (ne === p) flag(h.anomalies, 'http.header_invalid')
    let vs = c + 1
    while (vs < le && (buf[vs] === SP || buf[vs] === HT)) vs++
    let ve = le
    while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HT)) ve--
    if (h.count >= maxHeaders) {
      flag(h.anomalies, 'http.too_many_headers')
      last = undefined
      p = next
      continue
    }
    h.count++
    internName(buf, p, ne)
    if (keep !== undefined && !keep.has(internedLname)) {
      // not recorded: its obs-fold continuations have nothing to join
      last = undefined
      p = next
      continue
    }
    last = {
      name: internedName,
      lname: internedLname,
      nameOff: p,
      nameLen: ne - p,
      value: latin1(buf, vs, ve),
      valueOff: vs,
      valueLen: ve - vs,
    }
    h.headers.push(last)
    p = next
  }
  return h
}

/** Content-Length (RFC 9110 §8.6): 1*DIGIT, a comma list of identical values is tolerated */
export interface ContentLength {
  status: 'ok' | 'invalid' | 'overflow' | 'differ'
  value: bigint
}

export const INT63_MAX = (1n << 63n) - 1n

/** Parse one or more Content-Length values (one per header line). */
export function parseContentLength(values: readonly string[]): ContentLength {
  // the usual case, one value of a few digits: what the general loop below gives, without
  // splitting, trimming and a regular expression
  if (values.length === 1) {
    const raw = values[0]!
    const n = raw.length
    let v = n > 0 && n <= 15 ? 0 : -1
    for (let i = 0; i < n && v >= 0; i++) {
      const c = raw.charCodeAt(i)
      v = c >= 48 && c <= 57 ? v * 10 + (c - 48) : -1
    }
    if (v >= 0) return {status: 'ok', value: BigInt(v)}
  }
  let value = -1n
  let status: ContentLength['status'] = 'ok'
  for (const raw of values) {
    for (const part of raw.split(',')) {
      const t = part.trim()
      if (t.length === 0 || !/^[0-9]+$/.test(t)) {
        if (status === 'ok') status = 'invalid'
        continue
      }
      // bounded: a head is at most maxHeaderBytes, but skip absurd digit strings cheaply
      const v = t.length > 40 ? (1n << 140n) : BigInt(t)
      if (value >= 0n && v !== value) status = 'differ'
      if (value < 0n) value = v
      if (v > INT63_MAX && status === 'ok') status = 'overflow'
    }
  }
  return {status, value}
}

export interface TransferCoding {
  /** the final coding is chunked */
  chunked: boolean
  /** lower-case codings in order */
  codings: string[]
}

/** trim OWS only (RFC 9110 §5.6.3: SP / HTAB), not the VT, FF, NBSP... that String.trim drops */
function trimOws(s: string): string {
  let a = 0
  let b = s.length
  while (a < b && (s.charCodeAt(a) === SP || s.charCodeAt(a) === HT)) a++
  while (b > a && (s.charCodeAt(b - 1) === SP || s.charCodeAt(b - 1) === HT)) b--
  return s.slice(a, b)
}

/**
 * Transfer-Encoding values -> codings (RFC 9112 §6.1). Only SP/HT are trimmed around a coding:
 * `\x0bchunked` or `chunked\xa0` is another token for a strict parser, and a parameter on
 * chunked (`chunked;x=1`, none is defined) is kept in the coding, so neither counts as the
 * chunked coding: one processor's chunked is another one's unknown coding.
 */
export function parseTransferEncoding(values: readonly string[]): TransferCoding {
  const codings: string[] = []
  for (const v of values) {
    for (const part of v.split(',')) {
      const semi = part.indexOf(';')
      const name = trimOws(semi >= 0 ? part.slice(0, semi) : part).toLowerCase()
      const t = semi >= 0 && name === 'chunked' ? trimOws(part).toLowerCase() : name
      if (t.length > 0) codings.push(t)
    }
  }
  return {chunked: codings.length > 0 && codings[codings.length - 1] === 'chunked', codings}
}

export interface ChunkSize {
  status: 'ok' | 'invalid' | 'overflow'
  /** chunk size (clamped to Number.MAX_SAFE_INTEGER) */
  size: number
  /** offset/length of chunk-ext (from the first ';'), length 0 when none */
  extOff: number
  extLen: number
}

/** Parse a chunk-size line buf[start, end) (without CRLF): 1*HEXDIG [ BWS chunk-ext ] */
export function parseChunkSize(buf: Uint8Array, start: number, end: number): ChunkSize {
  let p = start
  let size = 0
  let digits = 0
  let overflow = false
  while (p < end) {
    const c = buf[p]
    let v: number
    if (c >= 48 && c <= 57) v = c - 48
    else if (c >= 65 && c <= 70) v = c - 55
    else if (c >= 97 && c <= 102) v = c - 87
    else break
    if (digits > 0 || v > 0) digits++
    if (digits > 16) overflow = true
    size = size * 16 + v
    p++
  }
  const hexEnd = p
  const res: ChunkSize = {status: 'ok', size: Math.min(size, Number.MAX_SAFE_INTEGER), extOff: end, extLen: 0}
  if (hexEnd === start) res.status = 'invalid'
  while (p < end && (buf[p] === SP || buf[p] === HT)) p++
  if (p < end) {
    if (buf[p] === 59) {
      res.extOff = p
      res.extLen = end - p
      // RFC 9112 §7.1.1: an extension is tokens, '=', quoted strings and blanks; a control byte
      // in it (a bare CR that another parser takes for the line's end) makes the line invalid
      for (let k = p; k < end; k++) {
        const c = buf[k]!
        if ((c < 0x20 && c !== HT) || c === 0x7f) {
          res.status = 'invalid'
          break
        }
      }
    } else {
      res.status = 'invalid'
    }
  }
  if (overflow) {
    res.status = 'overflow'
    res.size = Number.MAX_SAFE_INTEGER
  }
  return res
}

export interface ByteRange {
  /** first byte, -1n for a suffix range (-N) */
  start: bigint
  /** last byte (or suffix length for -N), -1n when open (N-) */
  end: bigint
  /** offsets relative to the value string (add the value's stream offset) */
  startOff: number
  startLen: number
  endOff: number
  endLen: number
}

export const MAX_RANGE_DIGITS = 64

/**
 * Range / Request-Range (RFC 9110 §14.1.2), parsed leniently as servers do: unit name
 * case-insensitive, whitespace anywhere around '=', ',', '-', leading zeros ignored in the
 * digit limit. Returns the ranges (at most maxRanges, plus the later range with the largest end
 * when there are more) and whether something did not parse.
 */
export function parseRanges(value: string, maxRanges: number): {ranges: ByteRange[]; invalid: boolean; tooMany: boolean} {
  const ranges: ByteRange[] = []
  let invalid = false
  let tooMany = false
  const eq = value.indexOf('=')
  if (eq < 0 || value.slice(0, eq).trim().toLowerCase() !== 'bytes') return {ranges, invalid: true, tooMany}
  let p = eq + 1
  const n = value.length
  const isWs = (c: number): boolean => c === SP || c === HT
  // digits without leading zeros: 0000000018446744073709551615 is still 2^64-1
  const significant = (from: number, to: number): number => {
    while (from < to - 1 && value.charCodeAt(from) === 48) from++
    return to - from
  }
  let beyond: ByteRange | undefined
  while (p <= n) {
    let e = value.indexOf(',', p)
    if (e < 0) e = n
    let a = p
    while (a < e && isWs(value.charCodeAt(a))) a++
    if (a < e) {
      const s0 = a
      while (a < e && value.charCodeAt(a) >= 48 && value.charCodeAt(a) <= 57) a++
      const s1 = a
      while (a < e && isWs(value.charCodeAt(a))) a++
      if (a >= e || value.charCodeAt(a) !== 45) {
        invalid = true
      } else {
        a++
        while (a < e && isWs(value.charCodeAt(a))) a++
        const e0 = a
        while (a < e && value.charCodeAt(a) >= 48 && value.charCodeAt(a) <= 57) a++
        const e1 = a
        while (a < e && isWs(value.charCodeAt(a))) a++
        if (a !== e || (s1 === s0 && e1 === e0) || significant(s0, s1) > MAX_RANGE_DIGITS || significant(e0, e1) > MAX_RANGE_DIGITS) {
          invalid = true
        } else {
          const g: ByteRange = {
            start: s1 > s0 ? BigInt(value.slice(s0, s1)) : -1n,
            end: e1 > e0 ? BigInt(value.slice(e0, e1)) : -1n,
            startOff: s0,
            startLen: s1 - s0,
            endOff: e0,
            endLen: e1 - e0,
          }
          if (ranges.length < maxRanges) ranges.push(g)
          else {
            // past the cap only the range with the largest end is kept (one more entry): a
            // huge end hidden behind many small ranges (MS15-034) must stay visible
            tooMany = true
            if (beyond === undefined || g.end > beyond.end) beyond = g
          }
        }
      }
    }
    p = e + 1
  }
  if (beyond !== undefined) ranges.push(beyond)
  return {ranges, invalid, tooMany}
}

export interface NameValue {
  name: string
  value: string
  /** offsets relative to the parsed string */
  valueOff: number
  valueLen: number
}

/** Cookie header (RFC 6265 §5.4): name=value pairs separated by ';' (values kept raw) */
export function parseCookies(value: string, max: number): NameValue[] {
  const out: NameValue[] = []
  let p = 0
  const n = value.length
  while (p < n && out.length < max) {
    let e = value.indexOf(';', p)
    if (e < 0) e = n
    const eq = value.indexOf('=', p)
    if (eq >= 0 && eq < e) {
      const name = value.slice(p, eq).trim()
      let vs = eq + 1
      while (vs < e && (value.charCodeAt(vs) === SP || value.charCodeAt(vs) === HT)) vs++
      let ve = e
      while (ve > vs && (value.charCodeAt(ve - 1) === SP || value.charCodeAt(ve - 1) === HT)) ve--
      if (name.length > 0) out.push({name, value: value.slice(vs, ve), valueOff: vs, valueLen: ve - vs})
    }
    p = e + 1
  }
  return out
}

/**
 * application/x-www-form-urlencoded (and query strings): '&'-separated name=value, names and
 * values decoded once ('+' is a space, %XX, %uXXXX). Offsets are of the raw value.
 */
export function parseArgs(s: string, max: number, decode: (x: string) => string): {args: NameValue[]; tooMany: boolean} {
  const args: NameValue[] = []
  let p = 0
  const n = s.length
  let tooMany = false
  while (p < n) {
    let e = s.indexOf('&', p)
    if (e < 0) e = n
    if (e > p) {
      if (args.length >= max) {
        tooMany = true
        break
      }
      const eq = s.indexOf('=', p)
      if (eq >= 0 && eq < e) args.push({name: decode(s.slice(p, eq)), value: decode(s.slice(eq + 1, e)), valueOff: eq + 1, valueLen: e - eq - 1})
      else args.push({name: decode(s.slice(p, e)), value: '', valueOff: e, valueLen: 0})
    }
    p = e + 1
  }
  return {args, tooMany}
}

/**
 * String values of a JSON text (RFC 8259), the way the application's JSON parser hands them over:
 * every string that is not an object member name, escapes decoded by `unescape`. Tolerant (a
 * body cut by the inspection cap still gives the values before the cut); numbers and literals
 * are skipped. Offsets are of the raw string content (between the quotes).
 */
export function parseJsonStrings(s: string, max: number, unescape: (x: string) => string): {values: NameValue[]; tooMany: boolean} {
  const values: NameValue[] = []
  const n = s.length
  let p = 0
  while (p < n) {
    const q = s.indexOf('"', p)
    if (q < 0) break
    let e = q + 1
    while (e < n && s.charCodeAt(e) !== 34) e += s.charCodeAt(e) === 92 ? 2 : 1
    if (e > n) e = n
    let a = e + 1
    while (a < n && (s.charCodeAt(a) === SP || s.charCodeAt(a) === HT || s.charCodeAt(a) === CR || s.charCodeAt(a) === LF)) a++
    if (a >= n || s.charCodeAt(a) !== COLON) {
      if (values.length >= max) return {values, tooMany: true}
      const raw = s.slice(q + 1, e)
      values.push({name: '', value: unescape(raw), valueOff: q + 1, valueLen: raw.length})
    }
    p = e + 1
  }
  return {values, tooMany: false}
}

/** Content-Type parameter (RFC 9110 §5.6.6), case-insensitive name, quoted-string unquoted */
export function contentTypeParam(ct: string, param: string): string | undefined {
  const parts = ct.split(';')
  for (let i = 1; i < parts.length; i++) {
    const eq = parts[i].indexOf('=')
    if (eq < 0) continue
    if (parts[i].slice(0, eq).trim().toLowerCase() !== param) continue
    let v = parts[i].slice(eq + 1).trim()
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1)
    return v
  }
  return undefined
}

export interface MultipartPart {
  name: string | undefined
  filename: string | undefined
  /** offsets relative to the body */
  nameOff: number
  filenameOff: number
  /** filename* (RFC 8187 extended parameter) value without its charset'lang' prefix */
  filenameExt?: string
  filenameExtOff?: number
  contentType: string | undefined
  bodyOff: number
  bodyLen: number
}

function findBytes(hay: Uint8Array, from: number, end: number, needle: Uint8Array): number {
  const n = needle.length
  if (n === 0) return -1
  const first = needle[0]
  for (let i = hay.indexOf(first, from); i >= 0 && i + n <= end; i = hay.indexOf(first, i + 1)) {
    let k = 1
    while (k < n && hay[i + k] === needle[k]) k++
    if (k === n) return i
  }
  return -1
}

function dispositionParam(v: string, param: string): {value: string; off: number} | undefined {
  // form-data; name="x"; filename="y" (RFC 7578 §4.2); names are case-insensitive
  const re = new RegExp(`(?:^|;)\\s*${param}\\s*=\\s*("([^"]*)"|[^;]*)`, 'i')
  const m = re.exec(v)
  if (!m) return undefined
  const quoted = m[2] !== undefined
  const value = quoted ? m[2] : m[1].trim()
  const off = m.index + m[0].length - m[1].length + (quoted ? 1 : 0)
  return {value, off}
}

/**
 * multipart/form-data (RFC 7578, RFC 2046 §5.1.1) over an inspected body prefix:
 *
 *   --boundary CRLF
 *   part headers CRLF CRLF
 *   part body
 *   CRLF --boundary [--]
 *
 * A part cut by the end of the buffer is returned with the bytes present (truncated).
 */
export function parseMultipart(body: Uint8Array, len: number, boundary: string, maxParts: number): {parts: MultipartPart[]; tooMany: boolean; malformed: boolean} {
  const parts: MultipartPart[] = []
  const delim = Uint8Array.from(Buffer.from('--' + boundary, 'latin1'))
  let malformed = false
  let tooMany = false
  let p = findBytes(body, 0, len, delim)
  if (p < 0) return {parts, tooMany, malformed: true}
  while (p >= 0) {
    let q = p + delim.length
    if (q + 1 < len && body[q] === 45 && body[q + 1] === 45) break // close delimiter
    // rest of the delimiter line
    while (q < len && body[q] !== LF) q++
    if (q >= len) break
    q++
    // part headers
    const hs = q
    let he = -1
    let bs = -1
    while (q < len) {
      let le = q
      while (le < len && body[le] !== LF) le++
      if (le >= len) break
      const content = le > q && body[le - 1] === CR ? le - 1 : le
      if (content === q) {
        he = q
        bs = le + 1
        break
      }
      q = le + 1
    }
    if (parts.length >= maxParts) {
      tooMany = true
      break
    }
    const part: MultipartPart = {name: undefined, filename: undefined, nameOff: -1, filenameOff: -1, contentType: undefined, bodyOff: len, bodyLen: 0}
    const headText = latin1(body, hs, he >= 0 ? he : len)
    let lineStart = hs
    for (const line of headText.split('\n')) {
      const c = line.indexOf(':')
      if (c > 0) {
        const name = line.slice(0, c).trim().toLowerCase()
        const vStartInLine = c + 1 + (line.slice(c + 1).length - line.slice(c + 1).trimStart().length)
        const v = line.slice(c + 1).trim()
        if (name === 'content-disposition') {
          const nm = dispositionParam(v, 'name')
          if (nm) {
            part.name = nm.value
            part.nameOff = lineStart + vStartInLine + nm.off
          }
          const fn = dispositionParam(v, 'filename')
          if (fn) {
            part.filename = fn.value
            part.filenameOff = lineStart + vStartInLine + fn.off
          }
          // filename*=charset'lang'pct-encoded (RFC 7578 §4.2 / RFC 8187): servers that honour
          // it (commons-fileupload, Tomcat, ...) take it over filename=, others ignore it, so
          // both are names (kept percent-encoded as sent, the charset'lang' prefix dropped)
          const ext = dispositionParam(v, 'filename\\*')
          if (ext) {
            const q = ext.value.indexOf("'")
            const q2 = q >= 0 ? ext.value.indexOf("'", q + 1) : -1
            const skip = q2 >= 0 ? q2 + 1 : 0
            part.filenameExt = ext.value.slice(skip)
            part.filenameExtOff = lineStart + vStartInLine + ext.off + skip
          }
        } else if (name === 'content-type') {
          part.contentType = v
        }
      }
      lineStart += line.length + 1
    }
    parts.push(part)
    if (bs < 0) {
      malformed = true
      break
    }
    const nextDelim = findBytes(body, bs, len, delim)
    let be = nextDelim >= 0 ? nextDelim : len
    if (nextDelim >= 0) {
      if (be > bs && body[be - 1] === LF) be--
      if (be > bs && body[be - 1] === CR) be--
    }
    part.bodyOff = bs
    part.bodyLen = be - bs
    p = nextDelim
  }
  return {parts, tooMany, malformed}
}

/** What a flow's first bytes look like: 1 yes, 0 no, -1 not enough bytes to tell */
export type Plausible = 1 | 0 | -1

const KNOWN_METHODS = [
  'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH',
  'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'SEARCH', 'REPORT',
  'MKACTIVITY', 'CHECKOUT', 'MERGE', 'M-SEARCH', 'NOTIFY', 'SUBSCRIBE', 'UNSUBSCRIBE', 'PURGE',
  'BPROPFIND', 'BPROPPATCH', 'BCOPY', 'BDELETE', 'BMOVE', 'POLL', 'ACL', 'BIND', 'UNBIND',
  'REBIND', 'LINK', 'UNLINK', 'MKCALENDAR', 'MKREDIRECTREF', 'UPDATEREDIRECTREF', 'ORDERPATCH',
  'VERSION-CONTROL', 'UPDATE', 'LABEL', 'MKWORKSPACE', 'BASELINE-CONTROL', 'DEBUG', 'RPC_IN_DATA', 'RPC_OUT_DATA',
]
const KNOWN_METHOD_SET = new Set(KNOWN_METHODS)
export const MAX_METHOD_LEN = 24

/** Does buf[start, end) begin like a request line? token SP then '/', '*', 'http(s)://' or a well-known method. */
export function looksLikeRequest(buf: Uint8Array, start: number, end: number): Plausible {
  let p = start
  while (p < end && p - start <= MAX_METHOD_LEN && isTchar(buf[p])) p++
  if (p === end) return p - start <= MAX_METHOD_LEN ? -1 : 0
  if (p === start || p - start > MAX_METHOD_LEN || buf[p] !== SP) return 0
  const method = latin1(buf, start, p)
  if (KNOWN_METHOD_SET.has(method)) return 1
  p++
  if (p === end) return -1
  const c = buf[p]
  if (c === 47 || c === 42) return 1
  if (c !== 104 && c !== 72) return 0
  const want = 'http://'
  const want2 = 'https://'
  let k = 0
  let ok1 = true
  let ok2 = true
  for (; p + k < end && k < want2.length; k++) {
    const b = buf[p + k] | 0x20
    if (k < want.length && b !== (want.charCodeAt(k) | 0x20)) ok1 = false
    if (b !== (want2.charCodeAt(k) | 0x20)) ok2 = false
  }
  if ((ok1 && k >= want.length) || (ok2 && k >= want2.length)) return 1
  if (!ok1 && !ok2) return 0
  return -1
}

/** Does buf[start, end) begin with "HTTP/1."? */
export function looksLikeResponse(buf: Uint8Array, start: number, end: number): Plausible {
  const want = 'HTTP/1.'
  for (let k = 0; k < want.length; k++) {
    if (start + k >= end) return -1
    if (buf[start + k] !== want.charCodeAt(k)) return 0
  }
  return 1
}
