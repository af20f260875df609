/**
 * URI normalization for virtual patching: the canonical view a rule matches, whatever encoding
 * tricks the client used (RFC 3986 §2.1 percent-encoding, §5.2.4 remove_dot_segments, plus the
 * non-standard decodings real servers apply: IIS %uXXXX, overlong UTF-8, backslashes, `;` path
 * parameters, Windows trailing dots and spaces).
 *
 * Strings are latin1 (one char per byte): a decoded byte 0xC0 is the char U+00C0.
 *
 *   absolute-URI  = scheme ":" hier-part [ "?" query ]        (RFC 3986 §4.3)
 *   origin-form   = absolute-path [ "?" query ]                (RFC 9112 §3.2.1)
 *   absolute-path = 1*( "/" segment )
 */

export const URI_LIMITS = {
  /** percent-decoding passes over the path (2+ passes that change something = double encoding) */
  maxDecodePasses: 3,
  /** path segments kept after normalization; more are dropped (anomaly http.uri.too_many_segments) */
  maxSegments: 512,
}

export type UriLimits = typeof URI_LIMITS

export interface NormalizedUri {
  /** scheme://authority of an absolute-form target, '' otherwise */
  authority: string
  /** raw path (before '?'), as sent */
  pathRaw: string
  /** raw query (after the first '?', without it), undefined when there is no '?' */
  queryRaw: string | undefined
  /** normalized path: decoded, dot-segments resolved, params and trailing dots stripped */
  path: string
  /** query decoded once (%XX and %uXXXX; '+' kept), undefined when there is no '?' */
  query: string | undefined
  /** path + ('?' + query when present) */
  decoded: string
  /** normalized path segments (no empty ones) */
  segments: string[]
  /** `;` path parameters stripped from segments (text after the ';') */
  params: string[]
  /** lower-case extension of the last normalized segment, '' when none */
  extension: string
  /** anomaly codes (each at most once): http.uri.double_encoding, http.uri.u_encoding, ... */
  anomalies: string[]
}

const PCT = 37
const SLASH = 47
const BSLASH = 92

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 65 && c <= 70) return c - 55
  if (c >= 97 && c <= 102) return c - 87
  return -1
}

/** char codes -> latin1 string without spreading huge arrays on the stack */
export function fromCodes(codes: number[], start = 0, end = codes.length): string {
  let s = ''
  for (let i = start; i < end; i += 8192) {
    s += String.fromCharCode.apply(null, codes.slice(i, Math.min(end, i + 8192)))
  }
  return s
}

function pushUtf8(out: number[], cp: number): void {
  if (cp < 0x80) out.push(cp)
  else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f))
  else out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f))
}

export interface DecodeFlags {
  /** a %uXXXX escape was decoded */
  u: boolean
}

/**
 * Path-separator and dot look-alikes that IIS's %u decoding maps to ASCII through the Windows
 * "best fit" code-page tables, beside the fullwidth forms (an IDS evasion: `..%u2215..`)
 */
const U_BEST_FIT = new Map<number, number>([[0x2215, 0x2f], [0x2044, 0x2f], [0x2216, 0x5c], [0x2024, 0x2e]])

/**
 * One percent-decoding pass: %XX -> byte, %uXXXX -> code point (fullwidth U+FF01..U+FF5E and the
 * U_BEST_FIT look-alikes folded to ASCII as IIS does, others above 0xFF as UTF-8 bytes), invalid
 * escapes kept literally. With `plus`, '+' becomes a space (form encoding).
 */
export function percentDecode(s: string, flags?: DecodeFlags, plus = false): string {
  if (s.indexOf('%') < 0 && (!plus || s.indexOf('+') < 0)) return s
  const out: number[] = []
  const n = s.length
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c === PCT) {
      if (i + 2 < n) {
        const h = hexVal(s.charCodeAt(i + 1))
        const l = hexVal(s.charCodeAt(i + 2))
        if (h >= 0 && l >= 0) {
          out.push((h << 4) | l)
          i += 2
          continue
        }
      }
      const u = i + 1 < n ? s.charCodeAt(i + 1) : 0
      if ((u === 117 || u === 85) && i + 5 < n) {
        const a = hexVal(s.charCodeAt(i + 2))
        const b = hexVal(s.charCodeAt(i + 3))
        const d = hexVal(s.charCodeAt(i + 4))
        const e = hexVal(s.charCodeAt(i + 5))
        if (a >= 0 && b >= 0 && d >= 0 && e >= 0) {
          let cp = (a << 12) | (b << 8) | (d << 4) | e
          if (cp >= 0xff01 && cp <= 0xff5e) cp -= 0xfee0
          else if (cp >= 0x2000) cp = U_BEST_FIT.get(cp) ?? cp
          if (cp < 0x100) out.push(cp)
          else pushUtf8(out, cp)
          if (flags) flags.u = true
          i += 5
          continue
        }
      }
      out.push(c)
    } else if (plus && c === 43) {
      out.push(32)
    } else {
      out.push(c & 0xff)
    }
  }
  return fromCodes(out)
}

/**
 * Collapse overlong UTF-8 forms (RFC 3629 §3 forbids them; old IIS and others decoded them):
 * C0/C1 xx -> ASCII (IIS accepted a non-continuation second byte too: %c1%1c -> '\'),
 * E0 80..9F xx and F0 80..8F xx xx -> the shortest form. Returns undefined when nothing changed.
 */
export function collapseOverlong(s: string): string | undefined {
  const n = s.length
  let i = 0
  for (; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c === 0xc0 || c === 0xc1 || c === 0xe0 || c === 0xf0) break
  }
  if (i === n) return undefined
  const out: number[] = []
  for (let k = 0; k < i; k++) out.push(s.charCodeAt(k))
  let changed = false
  for (; i < n; i++) {
    const c = s.charCodeAt(i)
    if ((c === 0xc0 || c === 0xc1) && i + 1 < n) {
      const b = s.charCodeAt(i + 1)
      if (b < 0x40 || (b >= 0x80 && b <= 0xbf)) {
        out.push(((c & 1) << 6) | (b & 0x3f))
        i += 1
        changed = true
        continue
      }
    } else if (c === 0xe0 && i + 2 < n) {
      const b = s.charCodeAt(i + 1)
      const d = s.charCodeAt(i + 2)
      if (b >= 0x80 && b <= 0x9f && d >= 0x80 && d <= 0xbf) {
        pushUtf8(out, ((b & 0x3f) << 6) | (d & 0x3f))
        i += 2
        changed = true
        continue
      }
    } else if (c === 0xf0 && i + 3 < n) {
      const b = s.charCodeAt(i + 1)
      const d = s.charCodeAt(i + 2)
      const e = s.charCodeAt(i + 3)
      if (b >= 0x80 && b <= 0x8f && d >= 0x80 && d <= 0xbf && e >= 0x80 && e <= 0xbf) {
        pushUtf8(out, ((b & 0x3f) << 12) | ((d & 0x3f) << 6) | (e & 0x3f))
        i += 3
        changed = true
        continue
      }
    }
    out.push(c)
  }
  return changed ? fromCodes(out) : undefined
}

function isDotsAndSpaces(seg: string): boolean {
  for (let i = 0; i < seg.length; i++) {
    const c = seg.charCodeAt(i)
    if (c !== 46 && c !== 32) return false
  }
  return true
}

/** strip Windows trailing dots and spaces (`file.asp. ` -> `file.asp`); '.' and '..' stay */
function stripTrailing(seg: string): string {
  if (isDotsAndSpaces(seg)) {
    let e = seg.length
    while (e > 0 && seg.charCodeAt(e - 1) === 32) e--
    return seg.slice(0, e)
  }
  let e = seg.length
  while (e > 0) {
    const c = seg.charCodeAt(e - 1)
    if (c !== 46 && c !== 32) break
    e--
  }
  return seg.slice(0, e)
}

/**
 * Normalize a request-target (origin-form, absolute-form, '*' or authority-form).
 * Path: percent-decode repeatedly (up to maxDecodePasses; a second pass that still decodes is
 * `http.uri.double_encoding`), %uXXXX (`http.uri.u_encoding`), overlong UTF-8
 * (`http.uri.overlong_utf8`), cut at NUL (`http.uri.nul`), '\' -> '/', drop empty segments,
 * strip `;params` and trailing dots/spaces per segment, resolve '.' and '..' (RFC 3986 §5.2.4;
 * above root: `http.uri.traversal_above_root`, clamped). Query: decoded once.
 */
export function normalizeUri(raw: string, limits: Partial<UriLimits> = {}): NormalizedUri {
  const maxPasses = limits.maxDecodePasses ?? URI_LIMITS.maxDecodePasses
  const maxSegments = limits.maxSegments ?? URI_LIMITS.maxSegments
  const anomalies: string[] = []
  const flag = (code: string): void => {
    if (!anomalies.includes(code)) anomalies.push(code)
  }

  let authority = ''
  let rest = raw
  // absolute-form: scheme "://" authority
  const schemeEnd = raw.indexOf('://')
  if (schemeEnd > 0 && /^[A-Za-z][A-Za-z0-9+.-]*$/.test(raw.slice(0, schemeEnd))) {
    let p = schemeEnd + 3
    while (p < raw.length) {
      const c = raw.charCodeAt(p)
      if (c === SLASH || c === 63 || c === 35) break
      p++
    }
    authority = raw.slice(0, p)
    rest = raw.slice(p)
  }
  const q = rest.indexOf('?')
  let pathRaw = q >= 0 ? rest.slice(0, q) : rest
  let queryRaw = q >= 0 ? rest.slice(q + 1) : undefined
  // a fragment is never sent, but if it is, it is not part of the path or query
  const hashInPath = pathRaw.indexOf('#')
  if (hashInPath >= 0) {
    pathRaw = pathRaw.slice(0, hashInPath)
    queryRaw = undefined
  } else if (queryRaw !== undefined) {
    const h = queryRaw.indexOf('#')
    if (h >= 0) queryRaw = queryRaw.slice(0, h)
  }

  // --- decode the path
  const flags: DecodeFlags = {u: false}
  let cur = pathRaw
  for (let pass = 0; pass < maxPasses; pass++) {
    let next = percentDecode(cur, flags)
    const collapsed = collapseOverlong(next)
    if (collapsed !== undefined) {
      flag('http.uri.overlong_utf8')
      next = collapsed
    }
    if (next === cur) break
    if (pass > 0) flag('http.uri.double_encoding')
    cur = next
  }
  if (flags.u) flag('http.uri.u_encoding')
  const nul = cur.indexOf('\u0000')
  if (nul >= 0) {
    flag('http.uri.nul')
    cur = cur.slice(0, nul)
  }

  // --- segments
  let path: string
  const segments: string[] = []
  const params: string[] = []
  if (cur === '*' || (cur.length > 0 && cur.charCodeAt(0) !== SLASH && cur.charCodeAt(0) !== BSLASH && authority === '')) {
    // asterisk-form, authority-form (CONNECT host:port) or a relative target: no dot resolution
    path = cur
  } else {
    const parts = cur.split(/[/\\]/)
    const lastRaw = parts[parts.length - 1]
    let trailingSlash = parts.length > 1 && lastRaw === ''
    let above = false
    for (let i = 0; i < parts.length; i++) {
      let seg = parts[i]
      if (seg === '') continue
      const semi = seg.indexOf(';')
      if (semi >= 0) {
        params.push(seg.slice(semi + 1))
        seg = seg.slice(0, semi)
      }
      seg = stripTrailing(seg)
      const last = i === parts.length - 1
      if (seg === '' || seg === '.') {
        if (last) trailingSlash = true
        continue
      }
      if (seg === '..') {
        if (segments.length === 0) above = true
        else segments.pop()
        if (last) trailingSlash = true
        continue
      }
      if (segments.length >= maxSegments) {
        flag('http.uri.too_many_segments')
        continue
      }
      segments.push(seg)
    }
    if (above) flag('http.uri.traversal_above_root')
    path = '/' + segments.join('/')
    if (trailingSlash && segments.length > 0) path += '/'
  }

  // --- query: decoded once
  let query: string | undefined
  if (queryRaw !== undefined) {
    const qflags: DecodeFlags = {u: false}
    query = percentDecode(queryRaw, qflags)
    if (qflags.u) flag('http.uri.u_encoding')
  }

  let extension = ''
  if (segments.length > 0) {
    const lastSeg = segments[segments.length - 1]
    const dot = lastSeg.lastIndexOf('.')
    if (dot >= 0 && dot < lastSeg.length - 1 && !path.endsWith('/')) extension = lastSeg.slice(dot + 1).toLowerCase()
  }

  return {
    authority,
    pathRaw,
    queryRaw,
    path,
    query,
    decoded: query !== undefined ? path + '?' + query : path,
    segments,
    params,
    extension,
    anomalies,
  }
}
