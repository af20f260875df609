/**
 * A bounded FIFO (ring buffer) for alarms waiting to be sent, and what every transport exposes.
 */

export interface TransportStats {
  /** accepted into the queue */
  queued: number
  /** delivered (syslog: handed to the socket; webhook: 2xx answer) */
  sent: number
  /** refused because the queue was full, or left over at close */
  dropped: number
  /** given up after the last retry, or rejected by the receiver */
  failed: number
  /** retries and reconnects */
  retries: number
}

export interface AlarmTransport {
  readonly name: string
  readonly stats: TransportStats
  /** the longest message this transport sends (bytes) */
  readonly maxBytes: number
  /** true when enqueue would refuse (callers skip formatting the message) */
  readonly full: boolean
  /** count one message refused without formatting it (the queue was full) */
  refuse(): void
  /** queue one message; false when the queue is full (counted as dropped). Never blocks. */
  enqueue(message: string): boolean
  /** wait until the queue is empty, at most timeoutMs */
  flush(timeoutMs: number): Promise<void>
  close(timeoutMs?: number): Promise<void>
}

export class BoundedQueue<T> {
  readonly capacity: number
  private readonly items: (T | undefined)[]
  private head = 0
  private count = 0

  constructor(capacity: number) {
    this.capacity = Math.max(1, Math.trunc(capacity))
    this.items = new Array<T | undefined>(this.capacity)
  }

  get full(): boolean {
    return this.count >= this.capacity
  }

  get length(): number {
    return this.count
  }

  /** false when full (the item is not added) */
  push(item: T): boolean {
    if (this.count >= this.capacity) return false
    this.items[(this.head + this.count) % this.capacity] = item
    this.count++
    return true
  }

  peek(): T | undefined {
    return this.count === 0 ? undefined : this.items[this.head]
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined
    const item = this.items[this.head]
    this.items[this.head] = undefined
    this.head = (this.head + 1) % this.capacity
    this.count--
    return item
  }

  clear(): void {
    this.items.fill(undefined)
    this.head = 0
    this.count = 0
  }
}
