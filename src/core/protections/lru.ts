/**
 * Bounded maps in least-recently-used order: an index for lookup and an intrusive doubly linked
 * list for the order, so touching and evicting are O(1) and the index never sees a delete+set per
 * touch (V8's ordered hash tables keep deleted slots until they rehash, and iterating from the
 * front to find the oldest entry then walks over every one of them).
 *
 * TupleLru is indexed by three 32-bit integers (an IPv4 tuple: no key text per lookup) in an
 * open-addressing table, or by text (IPv6).
 */

/** The list links an entry carries. */
export interface LruLinks {
  lruPrev: LruLinks | null
  lruNext: LruLinks | null
}

/** The order alone: the oldest entry at the head, the most recent at the tail. */
export class LruList<E extends LruLinks> {
  private head: E | null = null
  private tail: E | null = null
  private count = 0

  get size(): number {
    return this.count
  }

  /** move to the recent end */
  touch(e: E): void {
    if (this.tail === e) return
    this.unlink(e)
    this.append(e)
  }

  /** add at the recent end */
  protected link(e: E): void {
    this.append(e)
    this.count++
  }

  /** take the least recently used entry off the list */
  protected unlinkOldest(): E | null {
    const e = this.head
    if (e === null) return null
    this.unlink(e)
    this.count--
    return e
  }

  private unlink(e: E): void {
    if (e.lruPrev) e.lruPrev.lruNext = e.lruNext
    else this.head = e.lruNext as E | null
    if (e.lruNext) e.lruNext.lruPrev = e.lruPrev
    else this.tail = e.lruPrev as E | null
    e.lruPrev = e.lruNext = null
  }

  private append(e: E): void {
    e.lruPrev = this.tail
    e.lruNext = null
    if (this.tail) this.tail.lruNext = e
    else this.head = e
    this.tail = e
  }
}

/** A TupleLru entry: its key is (k0, k1, k2) when `text` is null, else `text`. */
export interface TupleEntry extends LruLinks {
  k0: number
  k1: number
  k2: number
  text: string | null
}

/** First slot count of a TupleLru's table (it doubles while more than half full). */
export const TUPLE_TABLE_INITIAL_SLOTS = 64

/** seeded: the keys are addresses and ports a sender chooses, so probe runs cannot be aimed */
function tupleHash(seed: number, a: number, b: number, c: number): number {
  let h = Math.imul(a ^ seed, 0x9e3779b1) ^ Math.imul(b, 0x85ebca6b) ^ Math.imul(c ^ (seed >>> 7), 0xc2b2ae35)
  h ^= h >>> 15
  h = Math.imul(h, 0x27d4eb2f)
  return h ^ (h >>> 13)
}

/**
 * An LRU keyed by three integers (stored as int32: pass `x | 0`) or by text. The integer index is
 * open addressing with linear probing and backward-shift deletion; it holds at most as many
 * entries as the list (the owner evicts before it adds, so its cap bounds the table too).
 *
 * The index is one Int32Array, two numbers per slot: the entry's place in `items` (+1, 0 = empty)
 * and the key's hash. A probe compares hashes and reads an entry only when they agree (a lookup
 * that finds nothing reads no entry); growing moves integers, without rehashing. A table of
 * object slots had to be built element by element at each doubling (a packed array cannot be
 * allocated empty), and keys kept beside the slots made the index four times the size: in a
 * replay, fresh memory is what growing costs.
 */
export class TupleLru<E extends TupleEntry> extends LruList<E> {
  private readonly byText = new Map<string, E>()
  /** integer-keyed entries; a removed entry's place is reused (`freeItems`) */
  private readonly items: (E | null)[] = []
  private readonly freeItems: number[] = []
  /** slot i: [2i] = index in `items` + 1 (0: empty), [2i + 1] = the key's hash */
  private table = new Int32Array(TUPLE_TABLE_INITIAL_SLOTS * 2)
  private mask = TUPLE_TABLE_INITIAL_SLOTS - 1
  private used = 0
  /** per-table random seed of the hash */
  private readonly seed = (Math.random() * 0x7fffffff) | 0

  get4(a: number, b: number, c: number): E | undefined {
    const t = this.table
    const mask = this.mask
    const h = tupleHash(this.seed, a, b, c)
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const x = t[i * 2]
      if (x === 0) return undefined
      if (t[i * 2 + 1] === h) {
        const e = this.items[x - 1]!
        if (e.k0 === a && e.k1 === b && e.k2 === c) return e
      }
    }
  }

  getText(key: string): E | undefined {
    return this.byText.get(key)
  }

  /** add (the key is not present; the caller made room first when it must) */
  set(e: E): void {
    if (e.text !== null) this.byText.set(e.text, e)
    else {
      if ((this.used + 1) * 4 > this.table.length) this.grow()
      let item = this.freeItems.pop()
      if (item === undefined) {
        item = this.items.length
        this.items.push(e)
      } else this.items[item] = e
      this.insert(item + 1, tupleHash(this.seed, e.k0, e.k1, e.k2))
      this.used++
    }
    this.link(e)
  }

  /** remove and return the least recently used entry */
  evictOldest(): E | null {
    const e = this.unlinkOldest()
    if (e === null) return null
    if (e.text !== null) this.byText.delete(e.text)
    else this.remove(e)
    return e
  }

  private insert(x: number, h: number): void {
    const mask = this.mask
    const t = this.table
    let i = h & mask
    while (t[i * 2] !== 0) i = (i + 1) & mask
    t[i * 2] = x
    t[i * 2 + 1] = h
  }

  private remove(e: E): void {
    const mask = this.mask
    const t = this.table
    const items = this.items
    let i = tupleHash(this.seed, e.k0, e.k1, e.k2) & mask
    for (;;) {
      const x = t[i * 2]
      if (x === 0) return
      if (items[x - 1] === e) break
      i = (i + 1) & mask
    }
    const item = t[i * 2] - 1
    items[item] = null
    this.freeItems.push(item)
    t[i * 2] = 0
    this.used--
    // backward shift: move later entries of the probe run into the hole when their home slot allows
    for (let j = (i + 1) & mask; t[j * 2] !== 0; j = (j + 1) & mask) {
      const home = t[j * 2 + 1] & mask
      // the entry at j stays when its home lies cyclically in (i, j]
      const stays = i <= j ? home > i && home <= j : home > i || home <= j
      if (stays) continue
      t[i * 2] = t[j * 2]
      t[i * 2 + 1] = t[j * 2 + 1]
      t[j * 2] = 0
      i = j
    }
  }

  private grow(): void {
    const old = this.table
    this.table = new Int32Array(old.length * 2)
    this.mask = old.length - 1
    for (let i = 0; i < old.length; i += 2) if (old[i] !== 0) this.insert(old[i], old[i + 1])
  }
}
