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
  /**
   * a flow of which only the client's SYN was seen (a scan, a flood, or the first packet of a real
   * connection): its own timeout class, so a cap can apply to these flows alone
   */
  tcpEmbryonicIdleUs: 30 * 1e6,
  /** after a RST or both FINs: linger briefly for retransmissions, then go */
  tcpClosedIdleUs: 10 * 1e6,
  udpIdleUs: 60 * 1e6,
  otherIdleUs: 30 * 1e6,
}
export type FlowLimits = typeof FLOW_LIMITS

/** buckets of the IPv4 flow index at most (2^22: 32 MB of pointers at a 2M-flow cap) */
const MAX_BUCKETS = 1 << 22
/** buckets of the IPv4 flow index at first (it doubles while it holds more flows than half its buckets) */
export const FIRST_BUCKETS = 1024

/** Canonical key: the same for both directions of a conversation. */
export function flowKey(proto: number, src: string, srcPort: number, dst: string, dstPort: number): string {
  if (src < dst || (src === dst && srcPort <= dstPort)) return proto + '|' + src + '|' + srcPort + '|' + dst + '|' + dstPort
  return proto + '|' + dst + '|' + dstPort + '|' + src + '|' + srcPort
}

/** What the table needs of a flow: its key, its clock and its place in an LRU list. */
export interface FlowBase {
  key: string
  proto: number
  /**
   * IPv4 flows are found by their tuple as numbers (ports 0 for protocols without ports) (no string is built per packet):
   * the end with the lower (address, port) is `lo`. Set by {@link FlowTable.setV4Tuple}.
   */
  v4: boolean
  v4lo: number
  v4hi: number
  /** lo port << 16 | hi port */
  v4ports: number
  /** next flow in the same hash bucket */
  hashNext: FlowBase | null
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
  /** flows in the list */
  count: number
}

/**
 * One LRU list per idle-timeout class (established TCP, closing TCP, UDP...): within a list the
 * order of last-seen times is also the order of expiry, so expiry only ever looks at flows that
 * are due, and a flow changing class moves to the tail of its new list.
 */
export class FlowTable<F extends FlowBase> {
  /** flows other than IPv4, by key */
  private readonly flows = new Map<string, F>()
  /**
   * IPv4 flows: an array of buckets (a power of two), each the head of a chain through
   * `hashNext`, indexed by a seeded hash of the tuple. A Map here cost a hash-table entry per new
   * flow and a deleted slot per ended one (V8 rehashes to drop them). The array grows with the
   * flows held (at most twice the flow cap): sized for the cap from the start, it was megabytes
   * of pointers that each lookup touched at a random place, for the few thousand flows a busy
   * link holds at once.
   */
  private buckets4: (F | null)[]
  private count4 = 0
  /** per-table random seed: bucket collisions cannot be aimed from outside */
  private readonly seed = (Math.random() * 0x7fffffff) | 0
  private hashMask: number
  /** the mask at the largest size (twice the flow cap, or the constructor's `hashMask`) */
  private readonly maxHashMask: number
  private readonly maxFlows: number
  private readonly lists: LruList[] = []
  evicted = 0
  expired = 0

  constructor(
    private readonly onEvict: (flow: F, reason: EvictReason) => void,
    maxFlows = FLOW_LIMITS.maxFlows,
    /** bucket bits of the IPv4 index (tests shrink it to force collisions) */
    hashMask = 0x3fffffff,
  ) {
    this.maxFlows = Math.max(1, maxFlows)
    let n = 16
    while (n < this.maxFlows * 2 && n < MAX_BUCKETS) n *= 2
    this.maxHashMask = Math.min(hashMask, n - 1)
    this.hashMask = Math.min(this.maxHashMask, FIRST_BUCKETS - 1)
    this.buckets4 = new Array<F | null>(this.hashMask + 1).fill(null)
  }

  get size(): number {
    return this.flows.size + this.count4
  }

  get(key: string): F | undefined {
    return this.flows.get(key)
  }

  /** the IPv4 flow of (proto, a:ap <-> b:bp), either direction; addresses as 32-bit numbers (signed or not, used alike) */
  get4(proto: number, a: number, ap: number, b: number, bp: number): F | undefined {
    let lo = a
    let hi = b
    let ports = (ap << 16) | bp
    if (a > b || (a === b && ap > bp)) {
      lo = b
      hi = a
      ports = (bp << 16) | ap
    }
    let f = this.buckets4[this.hash4(proto, lo, hi, ports)] as FlowBase | null
    while (f) {
      if (f.v4lo === lo && f.v4hi === hi && f.v4ports === ports && f.proto === proto) return f as F
      f = f.hashNext
    }
    return undefined
  }

  /** make `flow` an IPv4-indexed flow of (a:ap <-> b:bp) before {@link add} */
  setV4Tuple(flow: F, a: number, ap: number, b: number, bp: number): void {
    flow.v4 = true
    if (a > b || (a === b && ap > bp)) {
      flow.v4lo = b
      flow.v4hi = a
      flow.v4ports = (bp << 16) | ap
    } else {
      flow.v4lo = a
      flow.v4hi = b
      flow.v4ports = (ap << 16) | bp
    }
  }

  private hash4(proto: number, lo: number, hi: number, ports: number): number {
    let h = Math.imul(lo ^ this.seed, 0x9e3779b1)
    h = Math.imul(h ^ (h >>> 15) ^ hi, 0x85ebca77)
    h = Math.imul(h ^ (h >>> 13) ^ ports, 0xc2b2ae3d)
    h ^= (h >>> 16) ^ proto
    return h & this.hashMask
  }

  /** mark a flow as just seen (moves it to the recent end of its timeout class) */
  touch(flow: F, nowUs: number): void {
    flow.lastUs = nowUs
    const list = flow.lruList && flow.lruList.idleUs === flow.idleUs ? flow.lruList : this.listFor(flow.idleUs)
    if (list.tail === flow) return
    this.unlink(flow)
    this.append(list, flow)
  }

  /**
   * Admit a new flow, evicting the least recently used one when the table is full. `classCap`
   * bounds the flows of the new flow's timeout class: at the cap, that class's least recently
   * used flow goes (a SYN flood then only ever evicts its own flows, never established ones).
   */
  add(flow: F, classCap = Number.POSITIVE_INFINITY): void {
    const list = this.listFor(flow.idleUs)
    if (list.count >= classCap && list.head) {
      const oldest = list.head as F
      this.remove(oldest)
      this.evicted++
      this.onEvict(oldest, 'limit')
    }
    if (this.size >= this.maxFlows) {
      // the flow furthest through its own timeout goes: a minute-idle SYN before a minute-idle
      // established session (whose timeout is ten minutes)
      let oldest: FlowBase | null = null
      let worst = -1
      for (const l of this.lists) {
        if (!l.head) continue
        const due = (flow.lastUs - l.head.lastUs) / l.idleUs
        if (due > worst) {
          worst = due
          oldest = l.head
        }
      }
      if (oldest) {
        this.remove(oldest as F)
        this.evicted++
        this.onEvict(oldest as F, 'limit')
      }
    }
    if (flow.v4) {
      if (this.count4 * 2 >= this.buckets4.length && this.hashMask < this.maxHashMask) this.growBuckets()
      const h = this.hash4(flow.proto, flow.v4lo, flow.v4hi, flow.v4ports)
      flow.hashNext = this.buckets4[h]
      this.buckets4[h] = flow
      this.count4++
    } else {
      this.flows.set(flow.key, flow)
    }
    this.append(list, flow)
  }

  /** flows in the timeout class `idleUs` */
  countOf(idleUs: number): number {
    for (const l of this.lists) if (l.idleUs === idleUs) return l.count
    return 0
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
    // plain loops in the order of values(): the generator allocated a result per bucket
    const all: F[] = [...this.flows.values()]
    const buckets = this.buckets4
    for (let i = 0; i < buckets.length; i++) {
      for (let f = buckets[i] as FlowBase | null; f; f = f.hashNext) all.push(f as F)
    }
    all.sort((a, b) => a.lastUs - b.lastUs)
    for (const l of this.lists) {
      l.head = l.tail = null
      l.count = 0
    }
    this.flows.clear()
    this.buckets4.fill(null)
    this.count4 = 0
    for (const f of all) {
      f.hashNext = null
      f.lruPrev = f.lruNext = null
      f.lruList = null
      this.onEvict(f, 'flush')
    }
  }

  *values(): IterableIterator<F> {
    yield* this.flows.values()
    for (const head of this.buckets4) {
      for (let f: FlowBase | null = head; f; f = f.hashNext) yield f as F
    }
  }

  /** twice the buckets, every IPv4 flow rehashed into them */
  private growBuckets(): void {
    const old = this.buckets4
    this.hashMask = this.hashMask * 2 + 1
    const buckets = new Array<F | null>(this.hashMask + 1).fill(null)
    for (let i = 0; i < old.length; i++) {
      let f = old[i] as FlowBase | null
      while (f) {
        const next = f.hashNext
        const h = this.hash4(f.proto, f.v4lo, f.v4hi, f.v4ports)
        f.hashNext = buckets[h]
        buckets[h] = f as F
        f = next
      }
    }
    this.buckets4 = buckets
  }

  private listFor(idleUs: number): LruList {
    for (const l of this.lists) if (l.idleUs === idleUs) return l
    const l: LruList = {idleUs, head: null, tail: null, count: 0}
    this.lists.push(l)
    return l
  }

  private remove(flow: F): void {
    if (flow.v4) this.remove4(flow)
    else this.flows.delete(flow.key)
    this.unlink(flow)
  }

  private remove4(flow: F): void {
    const h = this.hash4(flow.proto, flow.v4lo, flow.v4hi, flow.v4ports)
    const head = this.buckets4[h]
    if (head === null) return
    if (head === flow) {
      this.buckets4[h] = flow.hashNext as F | null
    } else {
      let p: FlowBase = head
      while (p.hashNext && p.hashNext !== flow) p = p.hashNext
      if (p.hashNext !== flow) return
      p.hashNext = flow.hashNext
    }
    flow.hashNext = null
    this.count4--
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
    l.count--
  }

  private append(l: LruList, f: FlowBase): void {
    f.lruPrev = l.tail
    f.lruNext = null
    f.lruList = l
    if (l.tail) l.tail.lruNext = f
    else l.head = f
    l.tail = f
    l.count++
  }
}
