/**
 * Small byte-level helpers shared by the line-protocol analyzers: latin1 decoding, verb/argument
 * splitting, decimal parsing, base64 checks, field building. No regular expressions over packet
 * bytes; each helper walks a Uint8Array by index.
 */
import type {FieldValue, Fields} from '../types.js'

/**
 * Node's own latin1 decoder (what Buffer#toString('latin1') runs), called on any Uint8Array: it
 * takes an ArrayBufferView, so no Buffer object is made per string.
 */
const latin1Slice = (Buffer.prototype as unknown as {latin1Slice?: (this: Uint8Array, start: number, end: number) => string}).latin1Slice

/** latin1 string of bytes [from, to) (one char per byte, binary-safe) */
export function latin1(b: Uint8Array, from = 0, to = b.length): string {
  const n = to - from
  if (n <= 0) return ''
  // up to 8 bytes a JS loop is as fast; beyond, each += copied the string so far (measured: a
  // 48-byte value took 2.4 us char by char, 0.5 us through the decoder)
  if (n > 8) return latin1Slice !== undefined ? latin1Slice.call(b, from, to) : Buffer.from(b.buffer, b.byteOffset + from, n).toString('latin1')
  let s = ''
  for (let i = from; i < to; i++) s += String.fromCharCode(b[i]!)
  return s
}

/** ASCII upper-case of a latin1 string (other bytes unchanged) */
export function upperAscii(s: string): string {
  let out = ''
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    out += c >= 97 && c <= 122 ? String.fromCharCode(c - 32) : s[i]
  }
  return out
}

export function isSpace(c: number): boolean {
  return c === 32 || c === 9
}

/** index of the first space/tab at or after `from`, or b.length */
export function wordEnd(b: Uint8Array, from = 0): number {
  let i = from
  while (i < b.length && !isSpace(b[i]!)) i++
  return i
}

/** index of the first non-space/tab at or after `from`, or b.length */
export function skipSpaces(b: Uint8Array, from = 0): number {
  let i = from
  while (i < b.length && isSpace(b[i]!)) i++
  return i
}

/** index just past the last non-space/tab byte in [from, to) */
export function trimEnd(b: Uint8Array, from: number, to: number): number {
  let j = to
  while (j > from && isSpace(b[j - 1]!)) j--
  return j
}

/** the bytes [from, to) are all ASCII digits and there is at least one */
export function allDigits(b: Uint8Array, from: number, to: number): boolean {
  if (to <= from) return false
  for (let i = from; i < to; i++) {
    const c = b[i]!
    if (c < 48 || c > 57) return false
  }
  return true
}

/** decimal digits [from, to) as bigint (caller checked allDigits) */
export function decimalBig(b: Uint8Array, from: number, to: number): bigint {
  // at most 15 digits fit a double exactly; longer strings go through BigInt
  if (to - from <= 15) return BigInt(decimalSmall(b, from, to))
  return BigInt(latin1(b, from, to))
}

/** decimal digits [from, to) as number (exact up to 15 digits) */
export function decimalSmall(b: Uint8Array, from: number, to: number): number {
  let v = 0
  for (let i = from; i < to; i++) v = v * 10 + (b[i]! - 48)
  return v
}

/** case-insensitive compare of bytes [from, from+word.length) with an upper-case ASCII word */
export function matchWordCI(b: Uint8Array, from: number, word: string): boolean {
  if (from + word.length > b.length) return false
  for (let k = 0; k < word.length; k++) {
    let c = b[from + k]!
    if (c >= 97 && c <= 122) c -= 32
    if (c !== word.charCodeAt(k)) return false
  }
  return true
}

/** count of one byte value in [from, to) */
export function countByte(b: Uint8Array, value: number, from = 0, to = b.length): number {
  let n = 0
  for (let i = from; i < to; i++) if (b[i] === value) n++
  return n
}

/**
 * A line with its Telnet commands removed, as FTP servers that speak Telnet on the control
 * connection read it (RFC 959 section 4.1, RFC 854): IAC IAC is a data byte 255, IAC
 * WILL/WONT/DO/DONT and their option byte go, IAC SB ... IAC SE goes, any other IAC command (IP,
 * DM, AYT...) goes. `b` itself when it holds no IAC.
 */
export function stripTelnet(b: Uint8Array): Uint8Array {
  if (b.indexOf(0xff) < 0) return b
  const out = new Uint8Array(b.length)
  let n = 0
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!
    if (c !== 0xff) {
      out[n++] = c
      continue
    }
    const cmd = b[i + 1]
    if (cmd === undefined) break
    if (cmd === 0xff) {
      out[n++] = 0xff
      i++
    } else if (cmd >= 251) {
      i += 2
    } else if (cmd === 250) {
      // subnegotiation: up to IAC SE (or the end of the line)
      let j = i + 2
      while (j < b.length && !(b[j] === 0xff && b[j + 1] === 240)) j++
      i = j + 1
    } else {
      i++
    }
  }
  return out.subarray(0, n)
}

function isB64(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47
}

/**
 * RFC 4648 section 4 base64 check: alphabet, '=' only as 1 or 2 trailing pad bytes, length a
 * multiple of 4. (Exim CVE-2018-6789 mis-sizes its buffer for inputs of length 4n+3.)
 */
export function base64Valid(b: Uint8Array, from: number, to: number): boolean {
  const n = to - from
  if (n % 4 !== 0) return false
  let pad = 0
  for (let i = from; i < to; i++) {
    const c = b[i]!
    if (c === 61) {
      pad++
      continue
    }
    if (pad > 0 || !isB64(c)) return false
  }
  return pad <= 2
}

/** lenient base64 decode (skips bytes outside the alphabet, stops at '='), as latin1; at most maxOut bytes */
export function base64DecodeLatin1(b: Uint8Array, from: number, to: number, maxOut: number): string {
  const clean = Buffer.allocUnsafe(Math.max(0, to - from))
  let k = 0
  for (let i = from; i < to; i++) {
    const c = b[i]!
    if (c === 61) break
    if (isB64(c)) clean[k++] = c
  }
  const out = Buffer.from(clean.toString('latin1', 0, k), 'base64')
  return out.toString('latin1', 0, Math.min(out.length, maxOut))
}

/** a field value with its absolute span */
export function span(v: string | number | bigint, off: number, len: number): FieldValue {
  return {v, off, len}
}

/** append to a multi-valued field */
export function addMulti(fields: Fields, name: string, value: FieldValue): void {
  const cur = fields.get(name)
  if (cur === undefined) fields.set(name, [value])
  else if (Array.isArray(cur)) cur.push(value)
  else fields.set(name, [cur, value])
}

/**
 * parse `h1,h2,h3,h4,p1,p2` (RFC 959 section 4.1.2 host-port) in [from, to); null when malformed.
 * Read as leniently as servers that take each number with strtoul/atoi do: blanks around a
 * number and leading zeros are accepted (`PORT 10, 9, 9, 9, 0, 025`), so a bounce cannot hide
 * behind a spelling the server still understands.
 */
export function parseHostPort(b: Uint8Array, from: number, to: number): {ip: string; port: number} | null {
  const nums: number[] = []
  let i = from
  const blank = (k: number): boolean => b[k] === 32 || b[k] === 9
  while (i < to && nums.length < 6) {
    while (i < to && blank(i)) i++
    let j = i
    while (j < to && b[j] === 48) j++
    const d = j
    while (j < to && b[j]! >= 48 && b[j]! <= 57) j++
    if (j === i || j - d > 3) return null
    const v = j === d ? 0 : decimalSmall(b, d, j)
    if (v > 255) return null
    nums.push(v)
    while (j < to && blank(j)) j++
    if (nums.length < 6) {
      if (j >= to || b[j] !== 44) return null
      j++
    }
    i = j
  }
  if (nums.length !== 6 || i !== to) return null
  return {ip: `${nums[0]}.${nums[1]}.${nums[2]}.${nums[3]}`, port: nums[4]! * 256 + nums[5]!}
}
