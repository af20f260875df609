/**
 * Stateless IMAP parsers.
 *
 * RFC 9051 section 9 (formal syntax; RFC 3501 section 9 is the same for these rules), RFC 7888
 * (LITERAL+):
 *
 *   command         = tag SP (command-any / command-auth / command-nonauth / command-select) CRLF
 *   tag             = 1*<any ASTRING-CHAR except "+">
 *   astring         = 1*ASTRING-CHAR / string
 *   string          = quoted / literal
 *   quoted          = DQUOTE *QUOTED-CHAR DQUOTE          ; "\" escapes DQUOTE and "\"
 *   literal         = "{" number64 ["+"] "}" CRLF *CHAR8  ; number64 octets follow the CRLF
 *   login           = "LOGIN" SP userid SP password
 *   authenticate    = "AUTHENTICATE" SP auth-type [SP initial-resp] *(CRLF base64)
 *   response        = *(continue-req / response-data) response-done
 *   continue-req    = "+" [SP (resp-text / base64)] CRLF
 *   response-tagged = tag SP resp-cond-state CRLF        ; OK / NO / BAD
 *   response-untagged = "*" SP (...) CRLF
 */
import {allDigits, decimalBig} from '../line/text.js'

export interface LiteralSpec {
  status: 'ok' | 'error'
  /** no literal at the end of the line */
  none: boolean
  /** octet count (bigint: a client may announce 2^32 or more) */
  size: bigint
  /** digits [digitsStart, digitsEnd) within the line */
  digitsStart: number
  digitsEnd: number
  /** `{n+}`: non-synchronising (LITERAL+) */
  nonSync: boolean
}

const NONE: LiteralSpec = {status: 'ok', none: true, size: 0n, digitsStart: 0, digitsEnd: 0, nonSync: false}

/** a literal announcement `{n}` / `{n+}` at the end of a line's content */
export function parseTrailingLiteral(line: Uint8Array): LiteralSpec {
  const n = line.length
  if (n < 3 || line[n - 1] !== 125) return NONE
  let e = n - 1
  const nonSync = line[e - 1] === 43
  if (nonSync) e--
  const open = line.lastIndexOf(123, e - 1)
  if (open < 0) return NONE
  if (!allDigits(line, open + 1, e)) return {status: 'error', none: false, size: 0n, digitsStart: open + 1, digitsEnd: e, nonSync}
  return {status: 'ok', none: false, size: decimalBig(line, open + 1, e), digitsStart: open + 1, digitsEnd: e, nonSync}
}

export interface AstringParse {
  status: 'ok' | 'incomplete' | 'error'
  kind: 'atom' | 'quoted' | 'literal'
  /** raw value bytes [vStart, vEnd) (quoted: between the quotes, escapes kept) */
  vStart: number
  vEnd: number
  /** index after the token */
  next: number
}

/**
 * One astring at or after `from` in a command's bytes (the first line, then any literal bytes
 * and continuation lines, contiguous as on the wire). 'incomplete' when the bytes end inside it.
 */
export function parseAstring(b: Uint8Array, from: number, end = b.length): AstringParse {
  let p = from
  while (p < end && b[p] === 32) p++
  if (p >= end) return {status: 'incomplete', kind: 'atom', vStart: p, vEnd: p, next: p}
  const c = b[p]!
  if (c === 34) {
    let q = p + 1
    while (q < end) {
      const d = b[q]!
      if (d === 92) q += 2
      else if (d === 34) return {status: 'ok', kind: 'quoted', vStart: p + 1, vEnd: q, next: q + 1}
      else if (d === 13 || d === 10) return {status: 'error', kind: 'quoted', vStart: p + 1, vEnd: q, next: q}
      else q++
    }
    return {status: 'incomplete', kind: 'quoted', vStart: p + 1, vEnd: Math.min(q, end), next: end}
  }
  if (c === 123) {
    let q = p + 1
    while (q < end && b[q]! >= 48 && b[q]! <= 57) q++
    const digitsEnd = q
    if (q < end && b[q] === 43) q++
    if (q >= end || b[q] !== 125 || digitsEnd === p + 1) return {status: 'error', kind: 'literal', vStart: p, vEnd: p, next: q}
    q++
    if (q < end && b[q] === 13) q++
    if (q >= end || b[q] !== 10) return {status: 'incomplete', kind: 'literal', vStart: q, vEnd: q, next: end}
    q++
    const size = decimalBig(b, p + 1, digitsEnd)
    const avail = BigInt(end - q)
    if (size > avail) return {status: 'incomplete', kind: 'literal', vStart: q, vEnd: end, next: end}
    const vEnd = q + Number(size)
    return {status: 'ok', kind: 'literal', vStart: q, vEnd, next: vEnd}
  }
  let q = p
  while (q < end) {
    const d = b[q]!
    if (d === 32 || d === 13 || d === 10 || d === 40 || d === 41 || d === 123 || d === 34) break
    q++
  }
  if (q === p) return {status: 'error', kind: 'atom', vStart: p, vEnd: p, next: p}
  return {status: 'ok', kind: 'atom', vStart: p, vEnd: q, next: q}
}
