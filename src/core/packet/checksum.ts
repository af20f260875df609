/**
 * Internet checksum (RFC 1071) and the TCP/UDP/ICMPv6 pseudo-headers
 * (RFC 9293 §3.1 and RFC 768 for IPv4, RFC 8200 §8.1 for IPv6).
 *
 * Sums are kept unfolded as plain numbers: a 64 KiB buffer adds at most 32768 * 0xffff, far
 * below 2^53, so folding happens once at the end.
 */

/** Adds the 16-bit big-endian words of buf[start, end) to `initial`; an odd last byte is padded with zero. */
export function sumWords(buf: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial
  let i = start
  const last = end - 1
  for (; i < last; i += 2) sum += (buf[i] << 8) | buf[i + 1]
  if (i < end) sum += buf[i] << 8
  return sum
}

/** Folds a sum to 16 bits (one's-complement addition of the carries). */
export function foldSum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000)
  return sum
}

/**
 * RFC 1071 checksum of buf[start, end) plus `initial` (e.g. a pseudo-header sum): the one's
 * complement of the folded one's-complement sum, 0..0xffff. Verifying data that already holds
 * its checksum gives 0.
 */
export function internetChecksum(buf: Uint8Array, start = 0, end = buf.length, initial = 0): number {
  if (start < 0) start = 0
  if (end > buf.length) end = buf.length
  return ~foldSum(sumWords(buf, start, end, initial)) & 0xffff
}

/**
 * Unfolded sum of the pseudo-header: for IPv4 (RFC 9293 §3.1) src, dst, zero, protocol, TCP/UDP
 * length; for IPv6 (RFC 8200 §8.1) src, dst, 32-bit upper-layer length, 3 zero bytes, next header.
 * `src`/`dst` are 4- or 16-byte views (read at their offsets 0..len).
 */
export function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, proto: number, length: number): number {
  let sum = sumWords(src, 0, src.length) + sumWords(dst, 0, dst.length)
  if (src.length === 16) {
    sum += Math.floor(length / 0x10000) + (length & 0xffff) + proto
  } else {
    sum += proto + (length & 0xffff)
  }
  return sum
}
