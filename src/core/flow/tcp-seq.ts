/**
 * 32-bit TCP sequence-number arithmetic (RFC 9293 §3.4, serial-number arithmetic as in RFC 1982):
 * sequence numbers live modulo 2^32, and `a` is "before" `b` when the signed 32-bit difference
 * a - b is negative. Valid only for numbers less than 2^31 apart, which a TCP window guarantees.
 *
 * All inputs are coerced to uint32 by the arithmetic itself: `| 0` wraps the difference to int32.
 */

/** Signed distance from `b` to `a` (a - b) in the range [-2^31, 2^31). */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0
}

/** a + n modulo 2^32, as an unsigned number. */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0
}

export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0
}

export function seqLe(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0
}

export function seqGt(a: number, b: number): boolean {
  return ((a - b) | 0) > 0
}

export function seqGe(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0
}
