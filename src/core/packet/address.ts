/**
 * IP and MAC address parsing and formatting without regular expressions.
 *
 * IPv6 text follows RFC 5952 §4: lower-case hex, no leading zeros in a group, the longest run of
 * two or more all-zero groups becomes `::` (the first such run on a tie), and IPv4-mapped
 * addresses (`::ffff:0:0/96`) use the mixed notation of RFC 5952 §5.
 */

const HEX = '0123456789abcdef'

/** Formats 4 bytes at `off` as a dotted quad. Caller guarantees `off + 4 <= buf.length`. */
export function formatIpv4At(buf: Uint8Array, off: number): string {
  return buf[off] + '.' + buf[off + 1] + '.' + buf[off + 2] + '.' + buf[off + 3]
}

function hexGroup(v: number): string {
  if (v < 0x10) return HEX[v]
  if (v < 0x100) return HEX[v >> 4] + HEX[v & 15]
  if (v < 0x1000) return HEX[v >> 8] + HEX[(v >> 4) & 15] + HEX[v & 15]
  return HEX[v >> 12] + HEX[(v >> 8) & 15] + HEX[(v >> 4) & 15] + HEX[v & 15]
}

/** Formats 16 bytes at `off` as RFC 5952 text. Caller guarantees `off + 16 <= buf.length`. */
export function formatIpv6At(buf: Uint8Array, off: number): string {
  // longest run of zero groups (length >= 2), first one wins on a tie
  let bestStart = -1
  let bestLen = 1
  let runStart = -1
  for (let g = 0; g < 8; g++) {
    const zero = buf[off + 2 * g] === 0 && buf[off + 2 * g + 1] === 0
    if (zero) {
      if (runStart < 0) runStart = g
      const len = g - runStart + 1
      if (len > bestLen) {
        bestLen = len
        bestStart = runStart
      }
    } else {
      runStart = -1
    }
  }
  // IPv4-mapped ::ffff:a.b.c.d (RFC 5952 §5)
  if (bestStart === 0 && bestLen === 5 && buf[off + 10] === 0xff && buf[off + 11] === 0xff) {
    return '::ffff:' + formatIpv4At(buf, off + 12)
  }
  let s = ''
  for (let g = 0; g < 8; g++) {
    if (g === bestStart) {
      s += '::'
      g += bestLen - 1
      continue
    }
    if (s.length > 0 && s.charCodeAt(s.length - 1) !== 58 /* : */) s += ':'
    s += hexGroup((buf[off + 2 * g] << 8) | buf[off + 2 * g + 1])
  }
  return s
}

/** Formats a 4- or 16-byte address; anything else yields `''`. */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return formatIpv4At(bytes, 0)
  if (bytes.length === 16) return formatIpv6At(bytes, 0)
  return ''
}

/** Formats 6 bytes at `off` as `aa:bb:cc:dd:ee:ff`. */
export function formatMacAt(buf: Uint8Array, off: number): string {
  let s = ''
  for (let i = 0; i < 6; i++) {
    const b = buf[off + i]
    if (i > 0) s += ':'
    s += HEX[b >> 4] + HEX[b & 15]
  }
  return s
}

export function formatMac(bytes: Uint8Array): string {
  return bytes.length >= 6 ? formatMacAt(bytes, 0) : ''
}

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 97 && c <= 102) return c - 87
  if (c >= 65 && c <= 70) return c - 55
  return -1
}

/** Parses a MAC written as 6 hex pairs separated by `:` or `-`; null when malformed. */
export function parseMac(s: string): Uint8Array | null {
  if (s.length !== 17) return null
  const out = new Uint8Array(6)
  for (let i = 0; i < 6; i++) {
    const hi = hexVal(s.charCodeAt(3 * i))
    const lo = hexVal(s.charCodeAt(3 * i + 1))
    if (hi < 0 || lo < 0) return null
    if (i < 5) {
      const sep = s.charCodeAt(3 * i + 2)
      if (sep !== 58 && sep !== 45) return null
    }
    out[i] = (hi << 4) | lo
  }
  return out
}

/** Parses a dotted quad into `out` at `off`; false when malformed (no leading zeros, 0..255). */
function parseIpv4Into(s: string, start: number, end: number, out: Uint8Array, off: number): boolean {
  let part = 0
  let val = 0
  let digits = 0
  for (let i = start; i <= end; i++) {
    const c = i < end ? s.charCodeAt(i) : 46
    if (c === 46) {
      if (digits === 0 || part > 3) return false
      out[off + part] = val
      part++
      val = 0
      digits = 0
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && val === 0) return false // leading zero
      val = val * 10 + (c - 48)
      digits++
      if (val > 255) return false
    } else {
      return false
    }
  }
  return part === 4
}

function parseIpv6(s: string): Uint8Array | null {
  const out = new Uint8Array(16)
  const groups: number[] = []
  let gapAt = -1
  let i = 0
  const n = s.length
  if (n < 2 || n > 45) return null
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return null
    gapAt = 0
    i = 2
    if (i === n) return out // "::"
  }
  while (i < n) {
    // read one group or a trailing IPv4
    let j = i
    let val = 0
    let dot = false
    while (j < n) {
      const c = s.charCodeAt(j)
      if (c === 58) break
      if (c === 46) dot = true
      j++
    }
    if (dot) {
      if (j !== n || groups.length > 6) return null
      const tmp = new Uint8Array(4)
      if (!parseIpv4Into(s, i, n, tmp, 0)) return null
      groups.push((tmp[0] << 8) | tmp[1], (tmp[2] << 8) | tmp[3])
      i = n
      break
    }
    const len = j - i
    if (len < 1 || len > 4) return null
    for (let k = i; k < j; k++) {
      const h = hexVal(s.charCodeAt(k))
      if (h < 0) return null
      val = (val << 4) | h
    }
    groups.push(val)
    if (groups.length > 8) return null
    if (j === n) {
      i = n
      break
    }
    // j is at ':'
    if (j + 1 < n && s.charCodeAt(j + 1) === 58) {
      if (gapAt >= 0) return null
      gapAt = groups.length
      i = j + 2
    } else {
      i = j + 1
      if (i === n) return null // trailing single ':'
    }
  }
  if (gapAt < 0) {
    if (groups.length !== 8) return null
  } else if (groups.length > 7) {
    return null
  }
  const tail = gapAt < 0 ? 0 : groups.length - gapAt
  const head = groups.length - tail
  for (let g = 0; g < head; g++) {
    out[2 * g] = groups[g] >> 8
    out[2 * g + 1] = groups[g] & 0xff
  }
  for (let g = 0; g < tail; g++) {
    const idx = 8 - tail + g
    out[2 * idx] = groups[head + g] >> 8
    out[2 * idx + 1] = groups[head + g] & 0xff
  }
  return out
}

/** Parses an IPv4 dotted quad or IPv6 text (with `::` and IPv4 tail); null when malformed. */
export function parseIp(s: string): Uint8Array | null {
  if (typeof s !== 'string') return null
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) === 58) return parseIpv6(s)
  }
  const out = new Uint8Array(4)
  return parseIpv4Into(s, 0, s.length, out, 0) ? out : null
}
