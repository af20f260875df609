/**
 * Value transforms for rule matchers: pure functions on latin1 strings (one char per byte).
 * None of them expands its input by more than a constant, and every output is capped at
 * MAX_TRANSFORM_OUTPUT characters, so a chain of transforms is linear and bounded.
 *
 * The registry is extensible: `registerTransform(name, fn)`.
 */

/** Hard cap on a transform's output length (chars). */
export const MAX_TRANSFORM_OUTPUT = 1 << 20
/** url_decode_all repeats url_decode at most this many times. */
export const MAX_URL_DECODE_ROUNDS = 4
/** log4j_lookups resolves nesting at most this deep (deeper text is kept verbatim). */
export const MAX_LOG4J_DEPTH = 16

export type Transform = (s: string) => string

const HEX: Int8Array = (() => {
  const t = new Int8Array(256).fill(-1)
  for (let i = 0; i < 10; i++) t[48 + i] = i
  for (let i = 0; i < 6; i++) {
    t[65 + i] = 10 + i
    t[97 + i] = 10 + i
  }
  return t
})()

function hexAt(s: string, i: number): number {
  const c = s.charCodeAt(i)
  return c < 256 ? HEX[c] : -1
}

function cap(s: string): string {
  return s.length > MAX_TRANSFORM_OUTPUT ? s.slice(0, MAX_TRANSFORM_OUTPUT) : s
}

/** a code point as latin1 text: itself below 256, else its UTF-8 bytes */
function codeToLatin1(cp: number): string {
  if (cp < 256) return String.fromCharCode(cp)
  if (cp > 0x10ffff) return ''
  return Buffer.from(String.fromCodePoint(cp), 'utf8').toString('latin1')
}

export function lowercase(s: string): string {
  return s.toLowerCase()
}

/** %XX and %uXXXX (IIS); '+' is left alone (it is literal in paths). Malformed escapes stay. */
export function urlDecode(s: string): string {
  if (s.indexOf('%') < 0) return s
  let out = ''
  let last = 0
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) !== 37) continue
    let rep = ''
    let n = 0
    const h1 = hexAt(s, i + 1)
    const h2 = hexAt(s, i + 2)
    if (h1 >= 0 && h2 >= 0) {
      rep = String.fromCharCode(h1 * 16 + h2)
      n = 3
    } else if ((s.charCodeAt(i + 1) | 0x20) === 0x75) {
      const a = hexAt(s, i + 2), b = hexAt(s, i + 3), c = hexAt(s, i + 4), d = hexAt(s, i + 5)
      if (a >= 0 && b >= 0 && c >= 0 && d >= 0) {
        rep = codeToLatin1(((a * 16 + b) * 16 + c) * 16 + d)
        n = 6
      }
    }
    if (n === 0) continue
    out += s.slice(last, i) + rep
    i += n - 1
    last = i + 1
  }
  return cap(out + s.slice(last))
}

export function urlDecodeAll(s: string): string {
  let cur = s
  for (let r = 0; r < MAX_URL_DECODE_ROUNDS; r++) {
    const next = urlDecode(cur)
    if (next === cur) break
    cur = next
  }
  return cur
}

/**
 * Overlong UTF-8 encodings of ASCII (C0 AF = '/', E0 80 AE = '.', F0 80 80 AE = '.') decoded to
 * the ASCII byte, the classic path-traversal evasion. Other bytes are kept.
 */
export function utf8Overlong(s: string): string {
  let out = ''
  let last = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c !== 0xc0 && c !== 0xc1 && c !== 0xe0 && c !== 0xf0) continue
    const c1 = s.charCodeAt(i + 1)
    let cp = -1
    let n = 0
    if ((c === 0xc0 || c === 0xc1) && (c1 & 0xc0) === 0x80) {
      cp = ((c & 0x1f) << 6) | (c1 & 0x3f)
      n = 2
    } else if (c === 0xe0 && c1 >= 0x80 && c1 <= 0x9f) {
      const c2 = s.charCodeAt(i + 2)
      if ((c2 & 0xc0) === 0x80) {
        cp = ((c1 & 0x3f) << 6) | (c2 & 0x3f)
        n = 3
      }
    } else if (c === 0xf0 && c1 >= 0x80 && c1 <= 0x8f) {
      const c2 = s.charCodeAt(i + 2), c3 = s.charCodeAt(i + 3)
      if ((c2 & 0xc0) === 0x80 && (c3 & 0xc0) === 0x80) {
        cp = ((c1 & 0x3f) << 12) | ((c2 & 0x3f) << 6) | (c3 & 0x3f)
        n = 4
      }
    }
    if (n === 0 || cp < 0 || cp >= 0x80) continue
    out += s.slice(last, i) + String.fromCharCode(cp)
    i += n - 1
    last = i + 1
  }
  return last === 0 ? s : out + s.slice(last)
}

const NAMED_ENTITIES: Record<string, string> = {
  lt: '<', gt: '>', amp: '&', quot: '"', apos: "'", nbsp: '\xa0', colon: ':', sol: '/', bsol: '\\',
  lpar: '(', rpar: ')', dollar: '$', lcub: '{', rcub: '}', lbrace: '{', rbrace: '}', tab: '\t',
  newline: '\n', period: '.', comma: ',', semi: ';', equals: '=', num: '#', excl: '!', quest: '?',
}

/** &#DDD; &#xHH; (semicolon optional for numeric forms) and common named entities */
export function htmlEntity(s: string): string {
  if (s.indexOf('&') < 0) return s
  let out = ''
  let last = 0
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) !== 38) continue
    let j = i + 1
    let rep: string | undefined
    if (s.charCodeAt(j) === 35) {
      j++
      const hex = (s.charCodeAt(j) | 0x20) === 0x78
      if (hex) j++
      const startDigits = j
      let cp = 0
      while (j < s.length && j - startDigits < 8) {
        const d = hex ? hexAt(s, j) : s.charCodeAt(j) - 48
        if (d < 0 || d > (hex ? 15 : 9)) break
        cp = cp * (hex ? 16 : 10) + d
        j++
      }
      if (j === startDigits) continue
      rep = codeToLatin1(cp)
      if (s.charCodeAt(j) === 59) j++
    } else {
      const semi = s.indexOf(';', j)
      if (semi < 0 || semi - j > 10) continue
      rep = NAMED_ENTITIES[s.slice(j, semi).toLowerCase()]
      if (rep === undefined) continue
      j = semi + 1
    }
    out += s.slice(last, i) + rep
    last = j
    i = j - 1
  }
  return last === 0 ? s : out + s.slice(last)
}

/** Base64 (standard or URL-safe, padding optional); characters outside the alphabet are skipped. */
export function base64Decode(s: string): string {
  return Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('latin1')
}

function isWs(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || c === 0xa0
}

export function compressWhitespace(s: string): string {
  // each whitespace run becomes one space; the text between runs is appended whole, and a value
  // whose whitespace is already single spaces comes back as it is
  let out = ''
  let run = 0
  let changed = false
  for (let i = 0; i < s.length; i++) {
    if (!isWs(s.charCodeAt(i))) continue
    let j = i + 1
    while (j < s.length && isWs(s.charCodeAt(j))) j++
    if (j - i > 1 || s.charCodeAt(i) !== 32) changed = true
    out += s.slice(run, i) + ' '
    run = j
    i = j - 1
  }
  return changed ? out + s.slice(run) : s
}

export function removeWhitespace(s: string): string {
  // runs between whitespace are appended whole (a char at a time copied the string per char);
  // a value without whitespace comes back as it is
  let out = ''
  let run = 0
  for (let i = 0; i < s.length; i++) {
    if (!isWs(s.charCodeAt(i))) continue
    if (i > run) out += s.slice(run, i)
    run = i + 1
  }
  return run === 0 ? s : out + s.slice(run)
}

export function removeNulls(s: string): string {
  return s.indexOf('\0') < 0 ? s : s.split('\0').join('')
}

export function trim(s: string): string {
  let a = 0
  let b = s.length
  while (a < b && (isWs(s.charCodeAt(a)) || s.charCodeAt(a) === 0)) a++
  while (b > a && (isWs(s.charCodeAt(b - 1)) || s.charCodeAt(b - 1) === 0)) b--
  return s.slice(a, b)
}

/**
 * Path normalisation: backslashes to '/', repeated slashes collapsed, '.' dropped, '..' removes
 * the previous segment (never above the root). A query string ('?...') is kept verbatim.
 */
export function normalizePath(s: string): string {
  const q = s.indexOf('?')
  const path = (q < 0 ? s : s.slice(0, q)).replace(/\\/g, '/')
  const query = q < 0 ? '' : s.slice(q)
  const abs = path.startsWith('/')
  const parts = path.split('/')
  const stack: string[] = []
  for (const p of parts) {
    if (p === '' || p === '.') continue
    if (p === '..') {
      stack.pop()
      continue
    }
    stack.push(p)
  }
  const trailing = path.length > 1 && (path.endsWith('/') || path.endsWith('/.') || path.endsWith('/..'))
  let out = (abs ? '/' : '') + stack.join('/')
  if (trailing && stack.length > 0) out += '/'
  return out + query
}

/**
 * Resolve Log4j2 lookup obfuscations to their literal text, conservatively:
 * `${lower:X}` / `${upper:X}` -> case-changed X (upper: also the dotless i and long s that
 * Java upper-cases to ASCII); anything with a `:-` default (`${::-j}`,
 * `${env:NOPE:-j}`, `${sys:x:-j}`) -> the default; `${date:'j'}` -> the quoted text; nested
 * lookups are resolved inside-out. Other lookups (`${jndi:...}`, `${env:HOME}`) are kept as
 * `${...}` with their resolved content, so `${${lower:j}ndi:ldap://x}` becomes `${jndi:ldap://x}`.
 */
export function log4jLookups(s: string): string {
  if (s.indexOf('${') < 0) return s
  const r = resolveLog4j(s, 0, 0, false)
  return cap(r.text)
}

function resolveLog4j(s: string, i: number, depth: number, inner: boolean): {text: string; end: number} {
  let out = ''
  while (i < s.length) {
    const c = s.charCodeAt(i)
    if (inner && c === 125) return {text: out, end: i}
    if (c === 36 && s.charCodeAt(i + 1) === 123 && depth < MAX_LOG4J_DEPTH) {
      const r = resolveLog4j(s, i + 2, depth + 1, true)
      if (r.end >= s.length) {
        // unterminated: keep literally
        out += '${' + r.text
        i = r.end
        continue
      }
      out += evalLookup(r.text)
      i = r.end + 1
      continue
    }
    out += s[i]
    i++
  }
  return {text: out, end: i}
}

function evalLookup(body: string): string {
  const colon = body.indexOf(':')
  const prefix = colon < 0 ? '' : body.slice(0, colon).toLowerCase().trim()
  const rest = colon < 0 ? '' : body.slice(colon + 1)
  if (prefix === 'lower') return rest.toLowerCase()
  // Java's toUpperCase maps the dotless i (U+0131, UTF-8 C4 B1) to 'I' and the long s (U+017F,
  // C5 BF) to 'S': `${jnd${upper:\u0131}:...}` spells jndI, which Log4j's prefix match accepts
  if (prefix === 'upper') return rest.replace(/\xc4\xb1/g, 'I').replace(/\xc5\xbf/g, 'S').toUpperCase()
  const dflt = body.indexOf(':-')
  if (dflt >= 0 && prefix !== 'jndi') return body.slice(dflt + 2)
  if (prefix === 'date') {
    // only the quoted literals of a SimpleDateFormat pattern are predictable text
    let lit = ''
    const re = /'([^']*)'/g
    let m: RegExpExecArray | null
    while ((m = re.exec(rest)) !== null) lit += m[1]
    return lit
  }
  return '${' + body + '}'
}

/** `\xHH` escapes decoded in place; a string that is entirely hex (optional 0x) is decoded whole. */
export function hexDecode(s: string): string {
  let t = s.trim()
  if (t.startsWith('0x') || t.startsWith('0X')) t = t.slice(2)
  if (t.length > 0 && t.length % 2 === 0 && /^[0-9a-fA-F]+$/.test(t)) return Buffer.from(t, 'hex').toString('latin1')
  if (s.indexOf('\\x') < 0 && s.indexOf('\\X') < 0) return s
  let out = ''
  let last = 0
  for (let i = 0; i < s.length - 3; i++) {
    if (s.charCodeAt(i) !== 92 || (s.charCodeAt(i + 1) | 0x20) !== 0x78) continue
    const a = hexAt(s, i + 2), b = hexAt(s, i + 3)
    if (a < 0 || b < 0) continue
    out += s.slice(last, i) + String.fromCharCode(a * 16 + b)
    i += 3
    last = i + 1
  }
  return last === 0 ? s : out + s.slice(last)
}

/** `\b \f \n \r \t \" \\ \/` of a JSON string, by the character after the backslash */
const JSON_SIMPLE: Record<number, string> = {0x62: '\b', 0x66: '\f', 0x6e: '\n', 0x72: '\r', 0x74: '\t', 0x22: '"', 0x5c: '\\', 0x2f: '/'}

function hex4(s: string, i: number): number {
  if (i + 4 > s.length) return -1
  let v = 0
  for (let k = i; k < i + 4; k++) {
    const h = hexAt(s, k)
    if (h < 0) return -1
    v = v * 16 + h
  }
  return v
}

/**
 * JSON string escapes (RFC 8259 section 7) decoded the way a JSON parser would before the
 * application sees the value: `\uXXXX` (a surrogate pair joined; above 255 as UTF-8 bytes) and
 * the one-character escapes. Left to right, so `\\u0024` stays `\u0024`; a backslash before
 * anything else stays. Never longer than its input.
 */
export function jsonUnescape(s: string): string {
  if (s.indexOf('\\') < 0) return s
  let out = ''
  let last = 0
  for (let i = 0; i < s.length - 1; i++) {
    if (s.charCodeAt(i) !== 92) continue
    const c = s.charCodeAt(i + 1)
    let rep: string | undefined
    let n = 2
    if (c === 0x75) {
      let cp = hex4(s, i + 2)
      if (cp < 0) continue
      n = 6
      if (cp >= 0xd800 && cp < 0xdc00 && s.charCodeAt(i + 6) === 92 && s.charCodeAt(i + 7) === 0x75) {
        const lo = hex4(s, i + 8)
        if (lo >= 0xdc00 && lo < 0xe000) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00)
          n = 12
        }
      }
      rep = codeToLatin1(cp)
    } else {
      rep = JSON_SIMPLE[c]
      if (rep === undefined) continue
    }
    out += s.slice(last, i) + rep
    i += n - 1
    last = i + 1
  }
  return last === 0 ? s : out + s.slice(last)
}

export const transforms = new Map<string, Transform>([
  ['lowercase', lowercase],
  ['url_decode', urlDecode],
  ['url_decode_all', urlDecodeAll],
  ['utf8_overlong', utf8Overlong],
  ['html_entity', htmlEntity],
  ['base64_decode', base64Decode],
  ['compress_whitespace', compressWhitespace],
  ['remove_whitespace', removeWhitespace],
  ['remove_nulls', removeNulls],
  ['normalize_path', normalizePath],
  ['trim', trim],
  ['log4j_lookups', log4jLookups],
  ['hex_decode', hexDecode],
  ['json_unescape', jsonUnescape],
])

/** Add a transform (e.g. a protocol-specific decoder). It must be pure and not expand its input unboundedly. */
export function registerTransform(name: string, fn: Transform): void {
  transforms.set(name, (s) => cap(fn(s)))
}

/** Apply a chain of (already validated) transforms. */
export function applyTransforms(chain: readonly Transform[], s: string): string {
  let v = s
  for (let i = 0; i < chain.length; i++) v = chain[i](v)
  return v.length > MAX_TRANSFORM_OUTPUT ? v.slice(0, MAX_TRANSFORM_OUTPUT) : v
}
