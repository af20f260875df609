/**
 * Exact numeric comparison for rule bounds: values may be numbers, bigints or digit strings of
 * any length (a Range end of 2^64 must compare exactly, not through a double).
 */

/** Longest digit string parsed (anything longer is not a number for the rules). */
export const MAX_DIGITS = 4096

const INT_RE = /^\s*[+-]?\d+\s*$/
const FLOAT_RE = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/

/** number | bigint, or undefined when `v` is not numeric. Integers beyond 2^53 become bigint. */
export function toNum(v: unknown): number | bigint | undefined {
  if (typeof v === 'number') return Number.isNaN(v) ? undefined : v
  if (typeof v === 'bigint') return v
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_DIGITS) return undefined
  if (INT_RE.test(v)) {
    const t = v.trim()
    return t.length <= 15 ? Number(t) : BigInt(t)
  }
  if (FLOAT_RE.test(v)) return Number(v)
  return undefined
}

/** -1, 0 or 1 */
export function cmpNum(a: number | bigint, b: number | bigint): number {
  if (typeof a === typeof b) return a < b ? -1 : a > b ? 1 : 0
  if (typeof a === 'number') {
    if (!Number.isFinite(a)) return a < 0 ? -1 : 1
    if (Number.isInteger(a)) return cmpNum(BigInt(a), b)
    const fb = Number(b)
    return a < fb ? -1 : a > fb ? 1 : 0
  }
  return -cmpNum(b, a)
}

export type BoundOp = 'gt' | 'gte' | 'lt' | 'lte' | 'eq'

export interface Bound {
  op: BoundOp
  val: number | bigint
}

export function satisfies(v: number | bigint, bounds: readonly Bound[]): boolean {
  for (let i = 0; i < bounds.length; i++) {
    const b = bounds[i]
    const c = cmpNum(v, b.val)
    switch (b.op) {
      case 'gt':
        if (c <= 0) return false
        break
      case 'gte':
        if (c < 0) return false
        break
      case 'lt':
        if (c >= 0) return false
        break
      case 'lte':
        if (c > 0) return false
        break
      case 'eq':
        if (c !== 0) return false
        break
    }
  }
  return true
}
