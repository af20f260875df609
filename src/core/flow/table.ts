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

/** What the table needs of a flow: its key, its clock and its place in an LRU list. */
export interface FlowBase {
  key: string
  lastUs: number
  idleUs: number
  lruPrev: FlowBase | null
  lruNext: FlowBase | null
  lruList: LruList | null
}

export type EvictReason = 'timeout' | 'limit' | 'flush'

/** Flows sharing one idle timeout, least recently seen first. */
export interface LruList {
  idleUs: number
  head: FlowBase | null
  tail: FlowBase | null
}

/**
 * One LRU list per idle-timeout class (established TCP, closing TCP, UDP...): within a list the
 * order of last-seen times is also the order of expiry, so expiry only ever looks at flows that
 * are due, and a flow changing class moves to the tail of its new list.
 */
export class FlowTable<F extends FlowBase> {
  private readonly flows = new Map<string, F>()
  private readonly maxFlows: number
  private readonly lists: LruList[] = []
  evicted = 0
  expired = 0

  constructor(
    private readonly onEvict: (flow: F, reason: EvictReason) => void,
    maxFlows = FLOW_LIMITS.maxFlows,
  ) {
    this.maxFlows = Math.max(1, maxFlows)
  }

  get size(): number {
    return this.flows.size
  }

  get(key: string): F | undefined {
    return this.flows.get(key)
  }

  /** mark a flow as just seen (moves it to the recent end of its timeout class) */
  touch(flow: F, nowUs: number): void {
    flow.lastUs = nowUs
    const list = flow.lruList && flow.lruList.idleUs === flow.idleUs ? flow.lruList : this.listFor(flow.idleUs)
    if (list.tail === flow) return
    this.unlink(flow)
    this.append(list, flow)
  }

  /** admit a new flow, evicting the least recently used one when the table is full */
  add(flow: F): void {
    if (this.flows.size >= this.maxFlows) {
      let oldest: FlowBase | null = null
      for (const l of this.lists) if (l.head && (!oldest || l.head.lastUs < oldest.lastUs)) oldest = l.head
      if (oldest) {
        this.remove(oldest as F)
        this.evicted++
        this.onEvict(oldest as F, 'limit')
      }
    }
    this.flows.set(flow.key, flow)
    this.append(this.listFor(flow.idleUs), flow)
  }

  /** Expire flows idle past their timeout: each list is walked from its oldest end until a fresh flow. */
  expire(nowUs: number, maxExpire = 100_000): void {
    let n = 0
    for (const l of this.lists) {
      while (l.head && nowUs - l.head.lastUs >= l.idleUs && n++ < maxExpire) {
        const f = l.head as F
        this.remove(f)
        this.expired++
        this.onEvict(f, 'timeout')
      }
    }
  }

  /** end every flow (end of capture, shutdown) */
  flush(): void {
    const all = [...this.flows.values()].sort((a, b) => a.lastUs - b.lastUs)
    for (const l of this.lists) l.head = l.tail = null
    this.flows.clear()
    for (const f of all) {
      f.lruPrev = f.lruNext = null
      f.lruList = null
      this.onEvict(f, 'flush')
    }
  }

  values(): IterableIterator<F> {
    return this.flows.values()
  }

  private listFor(idleUs: number): LruList {
    for (const l of this.lists) if (l.idleUs === idleUs) return l
    const l: LruList = {idleUs, head: null, tail: null}
    this.lists.push(l)
    return l
  }

  private remove(flow: F): void {
    this.flows.delete(flow.key)
    this.unlink(flow)
  }

  private unlink(f: FlowBase): void {
    const l = f.lruList
    if (!l) return
    if (f.lruPrev) f.lruPrev.lruNext = f.lruNext
    else l.head = f.lruNext
    if (f.lruNext) f.lruNext.lruPrev = f.lruPrev
    else l.tail = f.lruPrev
    f.lruPrev = f.lruNext = null
    f.lruList = null
  }

  private append(l: LruList, f: FlowBase): void {
    f.lruPrev = l.tail
    f.lruNext = null
    f.lruList = l
    if (l.tail) l.tail.lruNext = f
    else l.head = f
    l.tail = f
  }
}
