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
 * The table is typed arrays only: per slot the key and the entry's place in `items` (+1, 0 =
 * empty). Growing it allocates zeroed typed arrays and moves integers; a table of object slots
 * had to be built element by element at each doubling (a packed array cannot be allocated
 * empty), which cost more than all the lookups of a replay.
 */
export class TupleLru<E extends TupleEntry> extends LruList<E> {
  private readonly byText = new Map<string, E>()
  /** integer-keyed entries; a removed entry's place is reused (`freeItems`) */
  private readonly items: (E | null)[] = []
  private readonly freeItems: number[] = []
  /** per slot: index in `items` + 1, 0 when the slot is empty */
  private slots = new Int32Array(TUPLE_TABLE_INITIAL_SLOTS)
  /** per slot: its entry's key, three int32 */
  private keys = new Int32Array(TUPLE_TABLE_INITIAL_SLOTS * 3)
  private mask = TUPLE_TABLE_INITIAL_SLOTS - 1
  private used = 0
  /** per-table random seed of the hash */
  private readonly seed = (Math.random() * 0x7fffffff) | 0

  get4(a: number, b: number, c: number): E | undefined {
    const keys = this.keys
    const slots = this.slots
    const mask = this.mask
    for (let i = tupleHash(this.seed, a, b, c) & mask; ; i = (i + 1) & mask) {
      const x = slots[i]
      if (x === 0) return undefined
      if (keys[i * 3] === a && keys[i * 3 + 1] === b && keys[i * 3 + 2] === c) return this.items[x - 1]!
    }
  }

  getText(key: string): E | undefined {
    return this.byText.get(key)
  }

  /** add (the key is not present; the caller made room first when it must) */
  set(e: E): void {
    if (e.text !== null) this.byText.set(e.text, e)
    else {
      if ((this.used + 1) * 2 > this.slots.length) this.grow()
      let item = this.freeItems.pop()
      if (item === undefined) {
        item = this.items.length
        this.items.push(e)
      } else this.items[item] = e
      this.insert(item + 1, e.k0, e.k1, e.k2)
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

  private insert(x: number, k0: number, k1: number, k2: number): void {
    const mask = this.mask
    const slots = this.slots
    let i = tupleHash(this.seed, k0, k1, k2) & mask
    while (slots[i] !== 0) i = (i + 1) & mask
    slots[i] = x
    this.keys[i * 3] = k0
    this.keys[i * 3 + 1] = k1
    this.keys[i * 3 + 2] = k2
  }

  private remove(e: E): void {
    const mask = this.mask
    const slots = this.slots
    const keys = this.keys
    const items = this.items
    let i = tupleHash(this.seed, e.k0, e.k1, e.k2) & mask
    for (;;) {
      const x = slots[i]
      if (x === 0) return
      if (items[x - 1] === e) break
      i = (i + 1) & mask
    }
    const item = slots[i] - 1
    items[item] = null
    this.freeItems.push(item)
    slots[i] = 0
    this.used--
    // backward shift: move later entries of the probe run into the hole when their home slot allows
    for (let j = (i + 1) & mask; slots[j] !== 0; j = (j + 1) & mask) {
      const home = tupleHash(this.seed, keys[j * 3], keys[j * 3 + 1], keys[j * 3 + 2]) & mask
      // the entry at j stays when its home lies cyclically in (i, j]
      const stays = i <= j ? home > i && home <= j : home > i || home <= j
      if (stays) continue
      slots[i] = slots[j]
      keys[i * 3] = keys[j * 3]
      keys[i * 3 + 1] = keys[j * 3 + 1]
      keys[i * 3 + 2] = keys[j * 3 + 2]
      slots[j] = 0
      i = j
    }
  }

  private grow(): void {
    const oldSlots = this.slots
    const oldKeys = this.keys
    const n = oldSlots.length * 2
    this.slots = new Int32Array(n)
    this.keys = new Int32Array(n * 3)
    this.mask = n - 1
    for (let i = 0; i < oldSlots.length; i++) {
      if (oldSlots[i] !== 0) this.insert(oldSlots[i], oldKeys[i * 3], oldKeys[i * 3 + 1], oldKeys[i * 3 + 2])
    }
  }
}
