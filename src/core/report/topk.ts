/**
 * Bounded top-N counting: the Space-Saving algorithm (Metwally, Agrawal, El Abbadi, "Efficient
 * Computation of Frequent and Top-k Elements in Data Streams", ICDT 2005).
 *
 * At most `capacity` keys are tracked. While fewer distinct keys than that have been seen, every
 * count is exact. Once full, a new key replaces the key with the smallest count c and starts at
 * c + 1 with `error` c: counts are then upper bounds, `count - error` a lower bound, and every key
 * whose true count exceeds (total / capacity) is guaranteed to be tracked.
 *
 * The keys sit in a min-heap on count, so an increment and an eviction are O(log capacity).
 */

/** Default number of keys tracked per dimension. */
export const DEFAULT_TOPK_CAPACITY = 5000

export interface TopKEntry<E> {
  key: string
  /** upper bound of the true count (exact when `error` is 0) */
  count: number
  /** overestimation bound (0 = exact) */
  error: number
  /** first and last event time seen for this key (microseconds since the epoch, NaN if none) */
  firstUs: number
  lastUs: number
  /** per-key extra data (e.g. counts by action); reset when the key is evicted */
  extra: E
}

export class SpaceSaving<E = undefined> {
  readonly capacity: number
  /** keys dropped to make room (0 = all counts are exact) */
  evictions = 0
  /** sum of all increments */
  total = 0
  private readonly index = new Map<string, number>()
  private readonly heap: TopKEntry<E>[] = []
  private readonly makeExtra: () => E

  constructor(capacity = DEFAULT_TOPK_CAPACITY, makeExtra?: () => E) {
    this.capacity = Math.max(1, Math.trunc(capacity))
    this.makeExtra = makeExtra ?? (() => undefined as E)
  }

  get size(): number {
    return this.heap.length
  }

  /** Count one occurrence of `key` at time `tsUs`; returns its entry (valid until the next call). */
  add(key: string, tsUs = NaN, weight = 1): TopKEntry<E> {
    this.total += weight
    const at = this.index.get(key)
    let e: TopKEntry<E>
    let i: number
    if (at !== undefined) {
      i = at
      e = this.heap[i]
      e.count += weight
    } else if (this.heap.length < this.capacity) {
      e = {key, count: weight, error: 0, firstUs: NaN, lastUs: NaN, extra: this.makeExtra()}
      i = this.heap.length
      this.heap.push(e)
      this.index.set(key, i)
      i = this.up(i)
    } else {
      // replace the minimum (root)
      e = this.heap[0]
      this.index.delete(e.key)
      this.evictions++
      e.error = e.count
      e.count += weight
      e.key = key
      e.firstUs = NaN
      e.lastUs = NaN
      e.extra = this.makeExtra()
      this.index.set(key, 0)
      i = 0
    }
    this.down(i)
    if (!(e.firstUs <= tsUs)) e.firstUs = tsUs
    if (!(e.lastUs >= tsUs)) e.lastUs = tsUs
    return e
  }

  get(key: string): TopKEntry<E> | undefined {
    const i = this.index.get(key)
    return i === undefined ? undefined : this.heap[i]
  }

  /** The `n` largest entries, biggest first (ties by key). */
  top(n = this.capacity): TopKEntry<E>[] {
    return [...this.heap].sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)).slice(0, Math.max(0, n))
  }

  private swap(a: number, b: number): void {
    const h = this.heap
    const t = h[a]
    h[a] = h[b]
    h[b] = t
    this.index.set(h[a].key, a)
    this.index.set(h[b].key, b)
  }

  private up(i: number): number {
    const h = this.heap
    while (i > 0) {
      const p = (i - 1) >> 1
      if (h[p].count <= h[i].count) break
      this.swap(i, p)
      i = p
    }
    return i
  }

  private down(i: number): void {
    const h = this.heap
    const n = h.length
    for (;;) {
      const l = 2 * i + 1
      if (l >= n) return
      const r = l + 1
      const m = r < n && h[r].count < h[l].count ? r : l
      if (h[i].count <= h[m].count) return
      this.swap(i, m)
      i = m
    }
  }
}
