/**
 * TCP stream reassembly for one connection, as an inline normalizer sees it: each direction's
 * bytes are delivered to a StreamSink once, in order, with holes reported as gaps.
 *
 * Segment fields used (RFC 9293 §3.1, header format):
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |          Source Port          |       Destination Port        |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                        Sequence Number                        |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                    Acknowledgment Number                      |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |  Data |       |C|E|U|A|P|R|S|F|                               |
 *    | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
 *    |       |       |R|E|G|K|H|T|N|N|                               |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |           Checksum            |         Urgent Pointer        |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                    Options (TSval/TSecr RFC 7323 §3, WScale §2)|
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Positions: each direction keeps `nextSeq` (uint32, the next byte to deliver) and `nextOff`, the
 * same position as an unwrapped stream offset (a JS number, 0 = first byte after the SYN or the
 * first byte seen on pick-up). A segment's offset is `nextOff + seqDiff(seq, nextSeq)`, so all
 * buffering below works on plain numbers and 2^32 wrap-around is handled in one place.
 *
 * Overlap handling:
 * - Bytes already delivered are final (what was forwarded cannot be recalled). A retransmission
 *   is compared with the retained copy of delivered bytes (kept until the receiver ACKs them,
 *   bounded): identical -> counted, different -> `tcp.overlap_conflict`, delivered bytes stand.
 * - Bytes still waiting in the out-of-order buffer are resolved per byte by the overlap policy,
 *   comparing the new segment's [start, end) with that of the segment that currently supplies
 *   the byte ("old"). Derived from Snort 3's target-based reassemblers (tcp_reassemblers.cc,
 *   segment_overlap_editor.cc: left_overlap_keep_first / trim_first / keep_last,
 *   right_overlap_truncate_existing / truncate_new, full_right_overlap_os1..os5), which
 *   implement Novak & Sturges, "Target-Based TCP Stream Reassembly" (2007):
 *
 *   | policy  | the NEW segment's byte replaces the OLD one iff           | Snort 3 handlers        |
 *   |---------|-----------------------------------------------------------|-------------------------|
 *   | first   | never                                                     | keep_first/trunc_new/os5|
 *   | last    | always                                                    | keep_last/trunc_exist/os4|
 *   | bsd     | new.start < old.start                                     | keep_first/trunc_exist/os1|
 *   | windows | new.start < old.start            (same handlers as bsd)   | keep_first/trunc_exist/os1|
 *   | linux   | new.start < old.start, or same start and new.end > old.end| keep_first/trunc_exist/os2|
 *   | solaris | new.end > old.end, or same end and new.start <= old.start | trim_first/trunc_new/os3 |
 *
 *   Deviations from Snort, kept for a per-byte rule that a model can check: Snort's solaris
 *   keeps the old segment when an exact same-size duplicate arrives after a hole (os3 special
 *   case); we let the new one win. Whenever overlapping bytes differ, `tcp.overlap_conflict`.
 *
 * RST (RFC 9293 §3.10.7.4, RFC 5961 §3.2): accepted when its sequence number is exactly the next
 * expected one, or (option `rst: 'in-window'`, the default, as Linux did before challenge ACKs)
 * anywhere inside the receiver's advertised window. In SYN-SENT it must ACK the SYN (RFC 9293
 * §3.10.7.3) and pass Linux's TSecr check. A RST from the SYN sender before any SYN-ACK is seen
 * is ignored: Linux sends it from SYN-SENT in answer to an unacceptable segment and its own
 * socket stays in SYN-SENT, and the peer's window is unknown, so it cannot be validated.
 *
 * PAWS (RFC 7323 §5.3): a non-RST segment whose TSval is older than the last accepted TSval from
 * that sender is ignored (`tcp.paws_reject`); in SYN-SENT a segment whose TSecr does not echo a
 * TSval the SYN sender has sent is ignored as Linux does (tcp_rcv_synsent_state_process), which
 * defeats the "RST/FIN with bad timestamps before the SYN-ACK" evasion.
 *
 * Sinks must not call back into the session (onSegment/close) from inside a callback.
 */
import type {AnomalySink, AnomalyType} from '../events/anomaly.js'
import {seqAdd, seqDiff, seqGe} from './tcp-seq.js'

export const TCP_FIN = 1
export const TCP_SYN = 2
export const TCP_RST = 4
export const TCP_PSH = 8
export const TCP_ACK = 16
export const TCP_URG = 32

export interface TcpLimits {
  /** bytes held in the out-of-order buffer, per direction */
  maxOutOfOrderBytes: number
  /** segments (pieces) held in the out-of-order buffer, per direction */
  maxOutOfOrderSegments: number
  /** delivered bytes retained for retransmission comparison, per direction */
  maxRetainedBytes: number
  /** hard cap on how far past the next expected byte a segment or ACK may reach */
  maxWindow: number
  /** tolerance added to the receiver's advertised (scaled) window */
  windowSlack: number
}

export const TCP_LIMITS: Readonly<TcpLimits> = Object.freeze({
  maxOutOfOrderBytes: 1 << 20,
  maxOutOfOrderSegments: 2048,
  maxRetainedBytes: 256 << 10,
  maxWindow: 1 << 30,
  windowSlack: 1 << 20,
})

export type TcpOverlapPolicy = 'first' | 'last' | 'bsd' | 'linux' | 'windows' | 'solaris'
export type TcpEndReason = 'fin' | 'rst' | 'timeout' | 'close' | 'limit'
export type TcpState = 'new' | 'syn_sent' | 'syn_received' | 'established' | 'closing' | 'closed' | 'reset'

export interface StreamSink {
  /** in-order bytes; the view may be reused after return -> sinks copy what they keep */
  onData(data: Uint8Array): void
  /** bytes that were never seen (not papered over) */
  onGap(length: number): void
  onEnd(reason: TcpEndReason): void
}

/** 32-bit fields (seq, ack, tsVal, tsEcr) are read as `x >>> 0`: uint32 or the int32 of the same bits */
export interface TcpSegmentInput {
  seq: number
  ack: number
  /** FIN 1 SYN 2 RST 4 PSH 8 ACK 16 URG 32 */
  flags: number
  window: number
  urgentPointer: number
  /** VIEW into a reused buffer: copied when kept */
  payload: Uint8Array
  tsVal?: number
  tsEcr?: number
  /** from SYN/SYN-ACK options */
  windowScale?: number
}

export interface TcpSessionOptions {
  policy?: TcpOverlapPolicy
  limits?: Partial<TcpLimits>
  memory?: TcpMemoryPool
  onAnomaly: AnomalySink
  toServer: StreamSink
  toClient: StreamSink
  /** 'inline' (default) delivers the urgent byte; 'oob' removes it, as Linux without SO_OOBINLINE */
  urgent?: 'inline' | 'oob'
  /** 'in-window' (default) accepts a RST anywhere in the receive window; 'exact' only at RCV.NXT */
  rst?: 'in-window' | 'exact'
}

/** Counters and positions of one direction, for logs and tests. */
export interface TcpDirectionInfo {
  /** uint32 sequence number of the next byte to deliver (valid once `synchronized`) */
  nextSeq: number
  /** bytes of stream position passed so far: delivered + gaps (+1 for SYN-less FIN) */
  nextOffset: number
  synchronized: boolean
  ended: boolean
  deliveredBytes: number
  gaps: number
  gapBytes: number
  retransmissions: number
  overlaps: number
  conflicts: number
  outOfOrderBytes: number
  outOfOrderSegments: number
  retainedBytes: number
}

/** Byte budget shared by every session that is given the same pool. */
/** first capacity of a direction's retention ring (doubles as needed up to maxRetainedBytes) */
export const RETAIN_MIN_BYTES = 2048
/** idle rings of the first capacity kept for reuse by new sessions (bounds the free list) */
export const RETAIN_FREE_LIST = 4096
/**
 * bytes of idle larger rings kept for reuse, all sizes together: a ring grows by doubling and
 * goes back when its bytes are acknowledged (or at once, when the receiver's ACKs bypass the
 * engine, at the session's end), so without reuse every such flow allocated its sizes anew
 */
export const RETAIN_FREE_LARGE_BYTES = 8 * 1024 * 1024

export class TcpMemoryPool {
  readonly capBytes: number
  used = 0
  /** idle RETAIN_MIN_BYTES rings: a flow's first ring is taken from here, not allocated */
  private readonly free: Uint8Array[] = []
  /** idle larger rings by size (sizes are few: doublings of RETAIN_MIN_BYTES and the cap) */
  private readonly freeLarge = new Map<number, Uint8Array[]>()
  private freeLargeBytes = 0

  constructor(capBytes: number) {
    this.capBytes = capBytes > 0 ? capBytes : 0
  }

  /** reserve n bytes if they fit under the cap */
  reserve(n: number): boolean {
    if (this.used + n > this.capBytes) return false
    this.used += n
    return true
  }

  release(n: number): void {
    this.used -= n
    if (this.used < 0) this.used = 0
  }

  get overCap(): boolean {
    return this.used > this.capBytes
  }

  /** a zero-filled-or-reused ring of `size` bytes (its bytes are counted by the caller) */
  takeRing(size: number): Uint8Array {
    if (size === RETAIN_MIN_BYTES) return this.free.pop() ?? new Uint8Array(size)
    const reused = this.freeLarge.get(size)?.pop()
    if (reused === undefined) return new Uint8Array(size)
    this.freeLargeBytes -= size
    return reused
  }

  giveRing(ring: Uint8Array): void {
    const size = ring.length
    if (size === RETAIN_MIN_BYTES) {
      if (this.free.length < RETAIN_FREE_LIST) this.free.push(ring)
      return
    }
    if (this.freeLargeBytes + size > RETAIN_FREE_LARGE_BYTES) return
    let list = this.freeLarge.get(size)
    if (list === undefined) this.freeLarge.set(size, (list = []))
    list.push(ring)
    this.freeLargeBytes += size
  }

  /** bytes of idle rings held for reuse (not counted in `used`) */
  get idleBytes(): number {
    return this.free.length * RETAIN_MIN_BYTES + this.freeLargeBytes
  }
}

interface Piece {
  /** stream offsets [start, end) */
  start: number
  end: number
  /** end - start bytes, owned copy */
  data: Uint8Array
  /** offsets of the whole segment that supplied these bytes (for the overlap policy) */
  segStart: number
  segEnd: number
}

class Direction {
  readonly sink: StreamSink
  /** position known: SYN seen, or first data picked up */
  synced = false
  /** ISN known from a SYN */
  hasIsn = false
  isn = 0
  synTsVal = -1
  nextSeq = 0
  nextOff = 0
  /** delivery allowed (handshake done or pick-up) */
  open = false
  ended = false
  finOff = -1
  urgOff = -1
  ooo: Piece[] = []
  oooBytes = 0
  /**
   * Delivered bytes kept until ACKed: a ring holding stream offsets [retStart, retStart +
   * retainedBytes), its first byte at index retHead. Delivered bytes are contiguous, so one ring
   * per direction replaces a copy per segment; its capacity is what the memory pool counts.
   */
  retBuf: Uint8Array | null = null
  retHead = 0
  retStart = 0
  retainedBytes = 0
  /** as a receiver: last advertised window in bytes */
  advWin = 0
  winSeen = false
  wscale = -1
  tsSeen = false
  lastTsVal = 0
  retainLimitReported = false
  /**
   * handed to the kernel by the inline gateway (TcpSession.bypass): its bytes no longer pass
   * here, so the other side's ACKs and its own later segments move its position without gaps
   */
  bypassed = false
  delivered = 0
  gaps = 0
  gapBytes = 0
  retransmissions = 0
  overlaps = 0
  conflicts = 0

  constructor(sink: StreamSink) {
    this.sink = sink
  }

  offsetOf(seq: number): number {
    return this.nextOff + seqDiff(seq, this.nextSeq)
  }
}

function policyNewWins(policy: TcpOverlapPolicy, ns: number, ne: number, os: number, oe: number): boolean {
  switch (policy) {
    case 'first':
      return false
    case 'last':
      return true
    case 'bsd':
    case 'windows':
      return ns < os
    case 'linux':
      return ns < os || (ns === os && ne > oe)
    case 'solaris':
      return ne > oe || (ne === oe && ns <= os)
  }
}

function copyOf(src: Uint8Array, from: number, to: number): Uint8Array {
  const out = new Uint8Array(to - from)
  out.set(src.subarray(from, to))
  return out
}

/** a piece's bytes [from, to), compacted when the view would pin a much larger buffer */
function subPiece(p: Piece, from: number, to: number): Piece {
  let data = p.data.subarray(from - p.start, to - p.start)
  if (data.length * 2 < data.buffer.byteLength) data = copyOf(data, 0, data.length)
  return {start: from, end: to, data, segStart: p.segStart, segEnd: p.segEnd}
}

export class TcpSession {
  readonly policy: TcpOverlapPolicy
  readonly limits: Readonly<TcpLimits>
  /** picked up without seeing the handshake */
  midstream = false
  synRetransmissions = 0
  segmentsIgnored = 0

  private _state: TcpState = 'new'
  private readonly c2s: Direction
  private readonly s2c: Direction
  private initiator: Direction | null = null
  /** both SYNs seen: window scaling is known (RFC 7323 §2.2) */
  private scaleKnown = false
  private readonly pool: TcpMemoryPool
  private readonly report: AnomalySink
  private readonly oob: boolean
  private readonly rstExact: boolean

  constructor(opts: TcpSessionOptions) {
    this.policy = opts.policy ?? 'bsd'
    this.limits = opts.limits ? {...TCP_LIMITS, ...opts.limits} : TCP_LIMITS
    this.pool = opts.memory ?? new TcpMemoryPool(Number.POSITIVE_INFINITY)
    this.report = opts.onAnomaly
    this.oob = opts.urgent === 'oob'
    this.rstExact = opts.rst === 'exact'
    this.c2s = new Direction(opts.toServer)
    this.s2c = new Direction(opts.toClient)
  }

  get state(): TcpState {
    return this._state
  }

  /** out-of-order plus retained bytes of both directions */
  get bytesHeld(): number {
    return this.c2s.oooBytes + this.c2s.retainedBytes + this.s2c.oooBytes + this.s2c.retainedBytes
  }

  /**
   * Absolute stream offset of sequence number `seq` in one direction (what analyzers and rule
   * fixes call offsets), or -1 while that direction's position is unknown. The inline gateway
   * maps a packet's payload onto held stream bytes with it.
   */
  offsetOf(fromClient: boolean, seq: number): number {
    const d = fromClient ? this.c2s : this.s2c
    return d.synced ? d.offsetOf(seq) : -1
  }

  direction(fromClient: boolean): TcpDirectionInfo {
    const d = fromClient ? this.c2s : this.s2c
    return {
      nextSeq: d.nextSeq, nextOffset: d.nextOff, synchronized: d.synced, ended: d.ended,
      deliveredBytes: d.delivered, gaps: d.gaps, gapBytes: d.gapBytes,
      retransmissions: d.retransmissions, overlaps: d.overlaps, conflicts: d.conflicts,
      outOfOrderBytes: d.oooBytes, outOfOrderSegments: d.ooo.length, retainedBytes: d.retainedBytes,
    }
  }

  /** fromClient: direction as decided by the flow table (SYN sender, or first packet's sender on pick-up) */
  onSegment(fromClient: boolean, seg: TcpSegmentInput): void {
    if (this._state === 'closed' || this._state === 'reset') {
      this.segmentsIgnored++
      return
    }
    const snd = fromClient ? this.c2s : this.s2c
    const rcv = fromClient ? this.s2c : this.c2s
    const flags = seg.flags & 0xff

    if (flags & TCP_SYN) {
      this.onSyn(snd, rcv, seg, flags)
      return
    }

    if (this._state === 'new') {
      this.midstream = true
      this.setState('established')
      this.c2s.open = true
      this.s2c.open = true
    }

    if (this._state === 'syn_sent') {
      if (snd !== this.initiator) {
        this.onResponderBeforeSynAck(rcv, seg, flags)
        return
      }
      if (flags & TCP_RST) {
        this.anomaly('stream', 'tcp.rst_unverifiable', {state: 'syn_sent'})
        this.segmentsIgnored++
        return
      }
      if (flags & TCP_ACK) {
        // the SYN-ACK was not seen: the ACK tells the responder's ISN
        rcv.hasIsn = true
        rcv.isn = seqAdd(seg.ack >>> 0, -1)
        this.sync(rcv, seg.ack >>> 0)
        this.anomaly('stream', 'tcp.synack_missed')
        this.establish()
      }
    }

    if (this._state === 'syn_received' && !(flags & TCP_RST)) {
      if (!(flags & TCP_ACK)) {
        this.segmentsIgnored++
        return
      }
      if (rcv.hasIsn && !seqGe(seg.ack >>> 0, seqAdd(rcv.isn, 1))) {
        this.anomaly('stream', 'tcp.handshake_bad_ack', {ack: seg.ack >>> 0})
        this.segmentsIgnored++
        return
      }
      this.establish()
    }

    if (flags & TCP_RST) {
      this.onRst(snd, rcv, seg)
      return
    }

    // PAWS, RFC 7323 §5.3 R1
    if (seg.tsVal !== undefined && snd.tsSeen && seqDiff(seg.tsVal >>> 0, snd.lastTsVal) < 0) {
      this.anomaly('stream', 'tcp.paws_reject', {tsVal: seg.tsVal >>> 0, last: snd.lastTsVal})
      this.segmentsIgnored++
      return
    }

    this.onData(snd, rcv, seg, flags)
  }

  /**
   * The inline gateway forwards this direction's bytes in the kernel from now on (RFC 9293
   * §3.10.7: the receiver's ACK field still tells how far it got). Its retained and out-of-order
   * bytes are freed; the other side's ACKs and this side's own later segments (FIN, RST) move
   * its position silently instead of reporting gaps, so the flow still ends and resets can still
   * be checked against the sequence space. Idempotent.
   */
  bypass(fromClient: boolean): void {
    const d = fromClient ? this.c2s : this.s2c
    if (d.bypassed) return
    d.bypassed = true
    this.freeAll(d)
    // the other direction's bytes are acknowledged by segments we no longer see: what was
    // forwarded counts as acknowledged, nothing of it is retained any more
    this.freeRetained(fromClient ? this.s2c : this.c2s)
  }

  /** flush what can be flushed (with gaps) and end both directions */
  close(reason: 'timeout' | 'close'): void {
    if (this._state === 'closed' || this._state === 'reset') return
    this.finish(this.c2s, reason)
    this.finish(this.s2c, reason)
    this.setState('closed')
  }

  // ---------------------------------------------------------------- handshake

  private onSyn(snd: Direction, rcv: Direction, seg: TcpSegmentInput, flags: number): void {
    const seq = seg.seq >>> 0
    if (flags & TCP_RST) {
      this.anomaly('stream', 'tcp.invalid_flags', {flags})
      this.segmentsIgnored++
      return
    }
    const ackFlag = (flags & TCP_ACK) !== 0
    if (!ackFlag) {
      if (snd.hasIsn) {
        if (seq === snd.isn) {
          // a retransmitted SYN: its TSval may be echoed by the SYN-ACK
          this.synRetransmissions++
          if (seg.tsVal !== undefined && snd.tsSeen && seqDiff(seg.tsVal >>> 0, snd.lastTsVal) > 0) snd.lastTsVal = seg.tsVal >>> 0
        } else {
          this.anomaly('stream', 'tcp.syn_seq_changed', {isn: snd.isn, seq})
        }
        this.segmentsIgnored++
        return
      }
      if (this._state !== 'new') {
        this.anomaly('stream', 'tcp.syn_unexpected', {state: this._state})
        this.segmentsIgnored++
        return
      }
      this.initiator = snd
      this.takeSyn(snd, seg, seq)
      this.setState('syn_sent')
      this.synPayload(snd, rcv, seg, flags)
      return
    }

    // SYN-ACK
    const ack = seg.ack >>> 0
    if (snd.hasIsn) {
      if (seq === snd.isn) this.synRetransmissions++
      else this.anomaly('stream', 'tcp.synack_unexpected', {isn: snd.isn, seq})
      this.segmentsIgnored++
      return
    }
    if (this._state === 'syn_sent' && snd !== this.initiator) {
      if (ack !== seqAdd(rcv.isn, 1)) {
        this.anomaly('stream', 'tcp.synack_bad_ack', {expected: seqAdd(rcv.isn, 1), ack})
        this.segmentsIgnored++
        return
      }
      if (!this.tsEcrAcceptable(rcv, seg)) return
      this.takeSyn(snd, seg, seq)
      this.scaleKnown = true
      this.setState('syn_received')
      this.synPayload(snd, rcv, seg, flags)
      return
    }
    if (this._state === 'new') {
      // picked up at the SYN-ACK: the initiator's ISN is the ACK - 1
      this.initiator = rcv
      rcv.hasIsn = true
      rcv.isn = seqAdd(ack, -1)
      this.sync(rcv, ack)
      this.takeSyn(snd, seg, seq)
      this.setState('syn_received')
      this.synPayload(snd, rcv, seg, flags)
      return
    }
    this.anomaly('stream', 'tcp.synack_unexpected', {state: this._state})
    this.segmentsIgnored++
  }

  private takeSyn(d: Direction, seg: TcpSegmentInput, seq: number): void {
    d.hasIsn = true
    d.isn = seq
    this.sync(d, seqAdd(seq, 1))
    if (seg.windowScale !== undefined) d.wscale = Math.min(14, Math.max(0, seg.windowScale | 0))
    if (seg.tsVal !== undefined) {
      d.synTsVal = seg.tsVal >>> 0
      d.tsSeen = true
      d.lastTsVal = d.synTsVal
    }
    // SYN windows are never scaled (RFC 7323 §2.2)
    d.advWin = seg.window & 0xffff
    d.winSeen = true
  }

  /** data on SYN (RFC 9293 §3.10.7.2): queued, delivered once the connection is established */
  private synPayload(snd: Direction, rcv: Direction, seg: TcpSegmentInput, flags: number): void {
    if (seg.payload.length === 0 && !(flags & TCP_FIN)) return
    this.anomaly('stream', 'tcp.data_on_syn', {length: seg.payload.length})
    this.accept(snd, rcv, seg, flags, seqAdd(seg.seq >>> 0, 1))
  }

  /** Linux SYN-SENT: TSecr must echo a TSval the SYN sender sent (tcp_rcv_synsent_state_process) */
  private tsEcrAcceptable(initiator: Direction, seg: TcpSegmentInput): boolean {
    if (seg.tsEcr === undefined || (seg.tsEcr >>> 0) === 0 || initiator.synTsVal < 0) return true
    const ecr = seg.tsEcr >>> 0
    if (seqDiff(ecr, initiator.synTsVal) >= 0 && seqDiff(ecr, initiator.lastTsVal) <= 0) return true
    this.anomaly('stream', 'tcp.paws_reject', {tsEcr: ecr, synTsVal: initiator.synTsVal, state: 'syn_sent'})
    this.segmentsIgnored++
    return false
  }

  /** a segment from the SYN receiver while no acceptable SYN-ACK has been seen */
  private onResponderBeforeSynAck(rcv: Direction, seg: TcpSegmentInput, flags: number): void {
    if (flags & TCP_ACK) {
      const ack = seg.ack >>> 0
      if (ack !== seqAdd(rcv.isn, 1)) {
        // RFC 9293 §3.10.7.3: unacceptable ACK; a RST carrying it is dropped
        if (flags & TCP_RST) this.anomaly('stream', 'tcp.rst_out_of_window', {state: 'syn_sent', ack})
        else this.anomaly('stream', 'tcp.segment_before_synack', {flags})
        this.segmentsIgnored++
        return
      }
      if (!this.tsEcrAcceptable(rcv, seg)) return
      if (flags & TCP_RST) {
        this.reset()
        return
      }
    } else if (flags & TCP_RST) {
      this.anomaly('stream', 'tcp.rst_out_of_window', {state: 'syn_sent', ack: 'none'})
      this.segmentsIgnored++
      return
    }
    this.anomaly('stream', 'tcp.segment_before_synack', {flags})
    this.segmentsIgnored++
  }

  private sync(d: Direction, nextSeq: number): void {
    d.synced = true
    d.nextSeq = nextSeq
    d.nextOff = 0
  }

  private establish(): void {
    this.setState('established')
    this.c2s.open = true
    this.s2c.open = true
    this.drain(this.c2s)
    this.drain(this.s2c)
  }

  private setState(s: TcpState): void {
    this._state = s
  }

  // ---------------------------------------------------------------- RST

  private onRst(snd: Direction, rcv: Direction, seg: TcpSegmentInput): void {
    const seq = seg.seq >>> 0
    if (!snd.synced) {
      this.anomaly('stream', 'tcp.rst_unverifiable', {state: this._state})
      this.segmentsIgnored++
      return
    }
    const d = seqDiff(seq, snd.nextSeq)
    let ok = d === 0
    if (!ok && !this.rstExact && rcv.winSeen) ok = d > 0 && d < rcv.advWin
    if (!ok) {
      this.anomaly('stream', 'tcp.rst_out_of_window', {offset: d, window: rcv.winSeen ? rcv.advWin : -1})
      this.segmentsIgnored++
      return
    }
    this.reset()
  }

  private reset(): void {
    this.setState('reset')
    for (const d of [this.c2s, this.s2c]) {
      this.freeAll(d)
      if (!d.ended) {
        d.ended = true
        d.sink.onEnd('rst')
      }
    }
  }

  // ---------------------------------------------------------------- data

  private onData(snd: Direction, rcv: Direction, seg: TcpSegmentInput, flags: number): void {
    const seq = seg.seq >>> 0
    if (!snd.synced) {
      if (seg.payload.length === 0 && !(flags & TCP_FIN)) {
        // a pure ACK from a side whose data we have not seen yet
        this.noteWindow(snd, seg)
        if (flags & TCP_ACK) this.onAck(rcv, seg.ack >>> 0)
        return
      }
      this.sync(snd, seq)
      snd.open = this._state === 'established' || this._state === 'closing'
      this.midstream = true
    }
    if (snd.bypassed) this.resyncBypassed(snd, snd.offsetOf(seq))
    if (!this.accept(snd, rcv, seg, flags, seq)) return
    if (this._state === 'closed' || this._state === 'reset') return
    this.noteWindow(snd, seg)
    if (flags & TCP_ACK) this.onAck(rcv, seg.ack >>> 0)
  }

  private noteWindow(d: Direction, seg: TcpSegmentInput): void {
    let scale: number
    if (this.scaleKnown) {
      scale = this.c2s.wscale >= 0 && this.s2c.wscale >= 0 ? d.wscale : 0
    } else {
      scale = 14 // scale unknown: assume the largest
    }
    // scale is 0..14 (takeSyn clamps it): a shift, where `2 ** scale` was a Math.pow call per segment
    d.advWin = (seg.window & 0xffff) * (1 << scale)
    d.winSeen = true
  }

  private allowedAhead(rcv: Direction): number {
    const L = this.limits
    if (!rcv.winSeen) return L.maxWindow
    return Math.min(L.maxWindow, rcv.advWin + L.windowSlack)
  }

  /** place a segment's payload (at dataSeq) and FIN; returns false when the segment is dropped */
  private accept(snd: Direction, rcv: Direction, seg: TcpSegmentInput, flags: number, dataSeq: number): boolean {
    const payload = seg.payload
    const len = payload.length
    const off = snd.offsetOf(dataSeq)
    const segEnd = off + len
    let end = segEnd
    const fin = (flags & TCP_FIN) !== 0

    if (end - snd.nextOff > this.allowedAhead(rcv)) {
      this.anomaly('stream', 'tcp.segment_out_of_window', {offset: off - snd.nextOff, length: len})
      this.segmentsIgnored++
      return false
    }
    if (snd.ended && end > snd.nextOff) {
      this.anomaly('stream', 'tcp.data_after_fin', {offset: off - snd.nextOff, length: len})
      this.segmentsIgnored++
      return false
    }
    if (snd.finOff >= 0 && end > snd.finOff) {
      this.anomaly('stream', 'tcp.data_after_fin', {offset: snd.finOff, length: end - Math.max(off, snd.finOff)})
      end = Math.max(off, snd.finOff)
    }
    // TS.Recent moves only on a segment that starts at or before the next expected byte (RFC 7323
    // §4.3, Linux's tcp_replace_ts_recent): a later segment that overtook an earlier one must not
    // make the earlier one, with its older TSval, look like a PAWS reject the receiver would not do
    if (seg.tsVal !== undefined && (!snd.tsSeen || (seqDiff(seg.tsVal >>> 0, snd.lastTsVal) > 0 && off <= snd.nextOff))) {
      snd.tsSeen = true
      snd.lastTsVal = seg.tsVal >>> 0
    }
    if ((flags & TCP_URG) && len > 0) {
      const ptr = seg.urgentPointer & 0xffff
      const uo = off + (ptr > 0 ? ptr : 1) - 1
      this.anomaly('stream', 'tcp.urgent_data', {offset: uo, mode: this.oob ? 'oob' : 'inline'})
      if (this.oob && uo >= snd.nextOff && uo > snd.urgOff) snd.urgOff = uo
    }

    if (off < snd.nextOff && end > off) {
      this.compareDelivered(snd, payload, off, Math.min(end, snd.nextOff))
    }
    if (end > snd.nextOff) {
      const s = Math.max(off, snd.nextOff)
      if (s === snd.nextOff && snd.ooo.length === 0 && snd.open) {
        this.deliver(snd, s === off && end === segEnd ? payload : payload.subarray(s - off, end - off))
      } else {
        this.insert(snd, payload, off, s, end, off, segEnd)
      }
    }
    if (fin) {
      if (snd.finOff < 0) {
        if (segEnd >= snd.nextOff) snd.finOff = segEnd
        else this.anomaly('stream', 'tcp.fin_conflict', {offset: segEnd - snd.nextOff})
      } else if (segEnd !== snd.finOff) {
        this.anomaly('stream', 'tcp.fin_conflict', {offset: segEnd - snd.finOff})
      }
    }
    this.drain(snd)
    this.enforce(snd)
    return true
  }

  /** compare a retransmission of delivered bytes [from, to) with what was retained */
  private compareDelivered(d: Direction, payload: Uint8Array, off: number, to: number): void {
    let diffs = 0
    let first = -1
    const ring = d.retBuf
    const a = Math.max(off, d.retStart)
    const b = Math.min(to, d.retStart + d.retainedBytes)
    if (ring !== null && a < b) {
      const cap = ring.length
      let i = (d.retHead + (a - d.retStart)) % cap
      for (let x = a; x < b; x++) {
        if (ring[i] !== payload[x - off]) {
          if (first < 0) first = x
          diffs++
        }
        if (++i === cap) i = 0
      }
    }
    if (diffs > 0) {
      d.conflicts++
      this.anomaly('stream', 'tcp.overlap_conflict', {offset: first, length: diffs, delivered: true})
    } else {
      d.retransmissions++
    }
  }

  /** insert payload bytes [s, e) (payload index = offset - off) into the out-of-order buffer */
  private insert(d: Direction, payload: Uint8Array, off: number, s: number, e: number, ns: number, ne: number): void {
    const q = d.ooo
    let lo = 0
    let hi = q.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (q[mid].end <= s) lo = mid + 1
      else hi = mid
    }
    const i = lo
    if (i === q.length || q[i].start >= e) {
      // no overlap: the common case
      const data = copyOf(payload, s - off, e - off)
      q.splice(i, 0, {start: s, end: e, data, segStart: ns, segEnd: ne})
      d.oooBytes += e - s
      this.pool.used += e - s
      return
    }
    const pieces: Piece[] = []
    let copy: Uint8Array | null = null
    let pos = s
    let diffs = 0
    let first = -1
    let added = 0
    let removed = 0
    let j = i
    for (; j < q.length && q[j].start < e; j++) {
      const c = q[j]
      if (pos < c.start) {
        copy ??= copyOf(payload, s - off, e - off)
        pieces.push({start: pos, end: c.start, data: copy.subarray(pos - s, c.start - s), segStart: ns, segEnd: ne})
        added += c.start - pos
      }
      const a = Math.max(c.start, s)
      const b = Math.min(c.end, e)
      let localDiff = 0
      for (let x = a; x < b; x++) {
        if (c.data[x - c.start] !== payload[x - off]) {
          if (first < 0) first = x
          localDiff++
        }
      }
      diffs += localDiff
      d.overlaps++
      if (policyNewWins(this.policy, ns, ne, c.segStart, c.segEnd)) {
        copy ??= copyOf(payload, s - off, e - off)
        if (c.start < a) pieces.push(subPiece(c, c.start, a))
        pieces.push({start: a, end: b, data: copy.subarray(a - s, b - s), segStart: ns, segEnd: ne})
        if (b < c.end) pieces.push(subPiece(c, b, c.end))
        added += b - a
        removed += b - a
      } else {
        pieces.push(c)
      }
      pos = Math.max(pos, c.end)
    }
    if (pos < e) {
      copy ??= copyOf(payload, s - off, e - off)
      pieces.push({start: pos, end: e, data: copy.subarray(pos - s, e - s), segStart: ns, segEnd: ne})
      added += e - pos
    }
    if (copy !== null && copy.length > 0) {
      // compact pieces that pin a mostly unused copy
      for (let k = 0; k < pieces.length; k++) {
        const p = pieces[k]
        if (p.data.buffer === copy.buffer && p.data.length * 2 < copy.length) p.data = copyOf(p.data, 0, p.data.length)
      }
    }
    q.splice(i, j - i, ...pieces)
    d.oooBytes += added - removed
    this.pool.used += added - removed
    if (diffs > 0) {
      d.conflicts++
      this.anomaly('stream', 'tcp.overlap_conflict', {offset: first, length: diffs, delivered: false, policy: this.policy})
    } else {
      d.retransmissions++
    }
  }

  /** deliver contiguous buffered data, then a FIN sitting at the next position */
  private drain(d: Direction): void {
    if (!d.open || d.ended) return
    const q = d.ooo
    let n = 0
    while (n < q.length && q[n].start <= d.nextOff) {
      const p = q[n++]
      d.oooBytes -= p.end - p.start
      this.pool.release(p.end - p.start)
      if (p.end > d.nextOff) {
        const piece = p.start < d.nextOff ? subPiece(p, d.nextOff, p.end) : p
        this.deliver(d, piece.data)
      }
    }
    if (n > 0) q.splice(0, n)
    if (d.finOff >= 0 && d.finOff === d.nextOff) {
      d.ended = true
      d.nextOff += 1
      d.nextSeq = seqAdd(d.nextSeq, 1)
      if (d.oooBytes > 0) this.anomaly('stream', 'tcp.data_after_fin', {offset: d.finOff, length: d.oooBytes})
      this.freeOoo(d)
      d.sink.onEnd('fin')
      if (this.c2s.ended && this.s2c.ended) {
        this.setState('closed')
        this.freeAll(this.c2s)
        this.freeAll(this.s2c)
      } else {
        this.setState('closing')
      }
    }
  }

  /** hand in-order bytes to the sink and retain them */
  private deliver(d: Direction, data: Uint8Array): void {
    const len = data.length
    if (len === 0) return
    const start = d.nextOff
    d.nextOff += len
    d.nextSeq = seqAdd(d.nextSeq, len)
    d.delivered += len
    this.retain(d, data, start)
    const u = d.urgOff
    if (u >= start && u < start + len) {
      d.urgOff = -1
      if (u > start) d.sink.onData(data.subarray(0, u - start))
      if (u + 1 < start + len) d.sink.onData(data.subarray(u + 1 - start))
      return
    }
    d.sink.onData(data)
  }

  /** copy delivered bytes [start, start + data.length) into the direction's ring */
  private retain(d: Direction, data: Uint8Array, start: number): void {
    // the receiver's ACKs travel in a bypassed direction: delivered bytes count as acknowledged
    if ((d === this.c2s ? this.s2c : this.c2s).bypassed) return
    const max = this.limits.maxRetainedBytes
    let len = data.length
    let from = 0
    if (len > max) {
      from = len - max
      len = max
    }
    if (len <= 0) return
    const at = start + from
    // not contiguous with what is held (a gap was skipped): the old bytes can no longer be compared
    if (d.retainedBytes > 0 && d.retStart + d.retainedBytes !== at) this.trimRetained(d, d.retainedBytes)
    if (d.retainedBytes + len > max) {
      this.trimRetained(d, d.retainedBytes + len - max)
      this.retainLimit(d, 'retained')
    }
    if (d.retainedBytes === 0) {
      d.retStart = at
      d.retHead = 0
    }
    const need = d.retainedBytes + len
    let ring = d.retBuf
    if (ring === null || ring.length < need) {
      const old = ring === null ? 0 : ring.length
      let cap = old === 0 ? RETAIN_MIN_BYTES : old * 2
      while (cap < need) cap *= 2
      if (cap > max) cap = Math.max(need, max)
      if (!this.pool.reserve(cap - old)) {
        // over the shared budget: keep nothing for this direction rather than grow
        this.freeRetained(d)
        this.retainLimit(d, 'memory')
        return
      }
      const grown = this.pool.takeRing(cap)
      if (ring !== null) {
        const n = d.retainedBytes
        const first = Math.min(n, old - d.retHead)
        grown.set(ring.subarray(d.retHead, d.retHead + first), 0)
        if (first < n) grown.set(ring.subarray(0, n - first), first)
        this.pool.giveRing(ring)
      }
      d.retBuf = ring = grown
      d.retHead = 0
    }
    const cap = ring.length
    let w = d.retHead + d.retainedBytes
    if (w >= cap) w -= cap
    const first = Math.min(len, cap - w)
    ring.set(from === 0 && first === data.length ? data : data.subarray(from, from + first), w)
    if (first < len) ring.set(data.subarray(from + first, from + len), 0)
    d.retainedBytes += len
  }

  /** forget the oldest n retained bytes (the ring stays) */
  private trimRetained(d: Direction, n: number): void {
    if (n <= 0 || d.retBuf === null) return
    d.retainedBytes -= n
    d.retStart += n
    d.retHead = d.retainedBytes === 0 ? 0 : (d.retHead + n) % d.retBuf.length
  }

  /** drop a direction's ring and return its capacity to the pool; false when it had none */
  private freeRetained(d: Direction): boolean {
    const ring = d.retBuf
    if (ring === null) return false
    d.retStart += d.retainedBytes
    d.retainedBytes = 0
    d.retHead = 0
    d.retBuf = null
    this.pool.release(ring.length)
    this.pool.giveRing(ring)
    return true
  }

  private retainLimit(d: Direction, which: string): void {
    if (d.retainLimitReported) return
    d.retainLimitReported = true
    this.anomaly('limit', 'tcp.reassembly_limit', {which})
  }

  /** the receiver acknowledged up to `ack`: trim retained bytes, and report bytes we never saw */
  private onAck(d: Direction, ack: number): void {
    if (!d.synced) return
    const ackOff = d.offsetOf(ack)
    if (d.bypassed) {
      this.resyncBypassed(d, ackOff)
      return
    }
    if (d.retainedBytes > 0 && ackOff > d.retStart) {
      this.trimRetained(d, Math.min(ackOff - d.retStart, d.retainedBytes))
      // a ring grown past its first size goes back once everything in it is acknowledged
      if (d.retainedBytes === 0 && d.retBuf !== null && d.retBuf.length > RETAIN_MIN_BYTES) this.freeRetained(d)
    }
    if (ackOff <= d.nextOff || !d.open || d.ended) return
    if (ackOff - d.nextOff > this.limits.maxWindow) {
      this.anomaly('stream', 'tcp.ack_out_of_window', {offset: ackOff - d.nextOff})
      return
    }
    let target = ackOff
    if (d.finOff >= 0 && target > d.finOff) target = d.finOff
    this.skipTo(d, target, 'ack')
    this.drain(d)
  }

  /** a bypassed direction: move its position forward to offset `to` (no gap, no delivery) */
  private resyncBypassed(d: Direction, to: number): void {
    const n = to - d.nextOff
    if (n <= 0 || n > this.limits.maxWindow || d.ended) return
    if (d.finOff >= 0 && to > d.finOff) return
    d.nextOff = to
    d.nextSeq = seqAdd(d.nextSeq, n)
    d.retStart = to
  }

  /** advance to `target`, delivering buffered bytes and reporting holes as gaps */
  private skipTo(d: Direction, target: number, cause: string): void {
    while (d.nextOff < target && !d.ended) {
      const q = d.ooo
      if (q.length > 0 && q[0].start <= d.nextOff) {
        this.drain(d)
        continue
      }
      const holeEnd = q.length > 0 ? Math.min(q[0].start, target) : target
      this.gap(d, holeEnd - d.nextOff, cause)
    }
  }

  private gap(d: Direction, n: number, cause: string): void {
    d.nextOff += n
    d.nextSeq = seqAdd(d.nextSeq, n)
    d.gaps++
    d.gapBytes += n
    if (d.urgOff >= 0 && d.urgOff < d.nextOff) d.urgOff = -1
    this.anomaly('stream', 'tcp.gap', {length: n, cause})
    d.sink.onGap(n)
  }

  /** keep the out-of-order buffer and the memory pool under their caps by skipping holes */
  private enforce(d: Direction): void {
    const L = this.limits
    let which = ''
    for (;;) {
      const overBytes = d.oooBytes > L.maxOutOfOrderBytes
      const overSegs = d.ooo.length > L.maxOutOfOrderSegments
      const overPool = this.pool.overCap
      if (!overBytes && !overSegs && !overPool) break
      if (overPool && !overBytes && !overSegs) {
        if (this.freeRetained(d) || this.freeRetained(d === this.c2s ? this.s2c : this.c2s)) {
          this.retainLimit(d, 'memory')
          continue
        }
      }
      if (d.ooo.length === 0) break
      which ||= overBytes ? 'out_of_order_bytes' : overSegs ? 'out_of_order_segments' : 'memory'
      if (d.open) {
        this.skipTo(d, d.ooo[0].start, 'limit')
        this.drain(d)
      } else {
        const p = d.ooo.shift() as Piece
        d.oooBytes -= p.end - p.start
        this.pool.release(p.end - p.start)
      }
      if (d.ended) break
    }
    if (which !== '') this.anomaly('limit', 'tcp.reassembly_limit', {which})
  }

  private finish(d: Direction, reason: 'timeout' | 'close'): void {
    if (d.ended) {
      this.freeAll(d)
      return
    }
    if (d.synced) {
      d.open = true
      while (d.ooo.length > 0 && !d.ended) {
        this.skipTo(d, d.ooo[0].start, reason)
        this.drain(d)
      }
      if (!d.ended && d.finOff > d.nextOff) {
        this.gap(d, d.finOff - d.nextOff, reason)
        this.drain(d)
      }
    }
    this.freeAll(d)
    if (!d.ended) {
      d.ended = true
      d.sink.onEnd(reason)
    }
  }

  private freeOoo(d: Direction): void {
    this.pool.release(d.oooBytes)
    d.oooBytes = 0
    d.ooo.length = 0
  }

  private freeAll(d: Direction): void {
    this.freeOoo(d)
    this.freeRetained(d)
  }

  private anomaly(type: AnomalyType, event: string, detail?: Record<string, number | string | boolean>): void {
    this.report(detail === undefined ? {type, event} : {type, event, detail})
  }
}

/** exported for tests and tools: the per-byte overlap rule used for the out-of-order buffer */
export function overlapNewWins(policy: TcpOverlapPolicy, newStart: number, newEnd: number, oldStart: number, oldEnd: number): boolean {
  return policyNewWins(policy, newStart, newEnd, oldStart, oldEnd)
}
