/**
 * A bounded map in least-recently-used order: a Map for lookup and an intrusive doubly linked
 * list for the order, so touching and evicting are O(1) and the Map never sees a delete+set per
 * touch (V8's ordered hash tables keep deleted slots until they rehash, and iterating from the
 * front to find the oldest entry then walks over every one of them).
 */

/** What an entry carries for the list. */
export interface LruEntry<K> {
  lruKey: K
  lruPrev: LruEntry<K> | null
  lruNext: LruEntry<K> | null
}

export class LruMap<K, E extends LruEntry<K>> {
  private readonly map = new Map<K, E>()
  private head: E | null = null
  private tail: E | null = null

  get size(): number {
    return this.map.size
  }

  get(key: K): E | undefined {
    return this.map.get(key)
  }

  /** move to the recent end */
  touch(e: E): void {
    if (this.tail === e) return
    this.unlink(e)
    this.append(e)
  }

  /** add (the caller made room first when it must) */
  set(e: E): void {
    this.map.set(e.lruKey, e)
    this.append(e)
  }

  /** remove and return the least recently used entry */
  evictOldest(): E | null {
    const e = this.head
    if (e === null) return null
    this.unlink(e)
    this.map.delete(e.lruKey)
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
