/**
 * The flow table: one entry per conversation (TCP/UDP 5-tuple, or other IP protocol between two
 * hosts), kept in least-recently-used order on an intrusive doubly linked list, so that touching
 * a flow, idle expiry and eviction at the hard cap are all O(1) per flow and allocate nothing.
 * Bounded: at `maxFlows` the least recently used flow is evicted (and reported) before a new one
 * is admitted.
 */

export const FLOW_LIMITS = {
  /** hard cap on flows held at once */
  maxFlows: 100_000,
  /** idle timeouts, microseconds */
  tcpEstablishedIdleUs: 600 * 1e6,
  tcpOtherIdleUs: 60 * 1e6,
  /** after a RST or both FINs: linger briefly for retransmissions, then go */
  tcpClosedIdleUs: 10 * 1e6,
  udpIdleUs: 60 * 1e6,
  otherIdleUs: 30 * 1e6,
}
export type FlowLimits = typeof FLOW_LIMITS

/** Canonical key: the same for both directions of a conversation. */
export function flowKey(proto: number, src: string, srcPort: number, dst: string, dstPort: number): string {
  if (src < dst || (src === dst && srcPort <= dstPort)) return proto + '|' + src + '|' + srcPort + '|' + dst + '|' + dstPort
  return proto + '|' + dst + '|' + dstPort + '|' + src + '|' + srcPort
}

/** What the table needs of a flow: its key, its clock and its place in the LRU list. */
export interface FlowBase {
  key: string
  lastUs: number
  idleUs: number
  lruPrev: FlowBase | null
  lruNext: FlowBase | null
}

export type EvictReason = 'timeout' | 'limit' | 'flush'

export class FlowTable<F extends FlowBase> {
  private readonly flows = new Map<string, F>()
  private readonly maxFlows: number
  /** least recently used end */
  private head: FlowBase | null = null
  /** most recently used end */
  private tail: FlowBase | null = null
  private readonly minIdleUs: number
  evicted = 0
  expired = 0

  constructor(
    private readonly onEvict: (flow: F, reason: EvictReason) => void,
    maxFlows = FLOW_LIMITS.maxFlows,
  ) {
    this.maxFlows = Math.max(1, maxFlows)
    this.minIdleUs = Math.min(FLOW_LIMITS.tcpClosedIdleUs, FLOW_LIMITS.udpIdleUs, FLOW_LIMITS.otherIdleUs, FLOW_LIMITS.tcpOtherIdleUs)
  }

  get size(): number {
    return this.flows.size
  }

  get(key: string): F | undefined {
    return this.flows.get(key)
  }

  /** mark a flow as just seen (moves it to the recent end) */
  touch(flow: F, nowUs: number): void {
    flow.lastUs = nowUs
    if (this.tail === flow) return
    this.unlink(flow)
    this.append(flow)
  }

  /** admit a new flow, evicting the least recently used one when the table is full */
  add(flow: F): void {
    if (this.flows.size >= this.maxFlows && this.head) {
      const oldest = this.head as F
      this.remove(oldest)
      this.evicted++
      this.onEvict(oldest, 'limit')
    }
    this.flows.set(flow.key, flow)
    this.append(flow)
  }

  /**
   * Expire flows idle past their own timeout. The list is in last-seen order, so the walk stops
   * at the first flow seen within the shortest timeout; flows with longer timeouts ahead of it
   * are stepped over (at most `maxScan` per call).
   */
  expire(nowUs: number, maxScan = 10_000): void {
    let scanned = 0
    let f = this.head
    while (f && scanned++ < maxScan) {
      const next = f.lruNext
      const age = nowUs - f.lastUs
      if (age < this.minIdleUs) break
      if (age >= f.idleUs) {
        this.remove(f as F)
        this.expired++
        this.onEvict(f as F, 'timeout')
      }
      f = next
    }
  }

  /** end every flow (end of capture, shutdown), oldest first */
  flush(): void {
    for (let f = this.head; f; ) {
      const next = f.lruNext
      f.lruPrev = f.lruNext = null
      this.onEvict(f as F, 'flush')
      f = next
    }
    this.flows.clear()
    this.head = this.tail = null
  }

  values(): IterableIterator<F> {
    return this.flows.values()
  }

  private remove(flow: F): void {
    this.flows.delete(flow.key)
    this.unlink(flow)
  }

  private unlink(f: FlowBase): void {
    if (f.lruPrev) f.lruPrev.lruNext = f.lruNext
    else if (this.head === f) this.head = f.lruNext
    if (f.lruNext) f.lruNext.lruPrev = f.lruPrev
    else if (this.tail === f) this.tail = f.lruPrev
    f.lruPrev = f.lruNext = null
  }

  private append(f: FlowBase): void {
    f.lruPrev = this.tail
    f.lruNext = null
    if (this.tail) this.tail.lruNext = f
    else this.head = f
    this.tail = f
  }
}
