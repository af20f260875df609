/**
 * The inline gateway's per-packet decision: every diverted frame goes through the engine, then
 * is forwarded (unchanged or fixed in place), held until the protocol unit it belongs to is
 * judged, or dropped (the flow is blocked: resets to both ends, later packets discarded).
 *
 * No sockets here: frames come in with the index of the port they arrived on (0 or 1) and leave
 * through `ports[1 - in]`, so tests drive it with captures and fake ports.
 *
 * Holding: a TCP segment whose bytes reach the first byte of a unit the analyzer has not judged
 * yet (`pendingFrom(dir)`), or that arrives while earlier segments of its direction are held,
 * is copied into the flow's queue; after each packet, queued segments now judged are released
 * in order. Bounded per flow and in total: on overflow the flow's queue is released unjudged and
 * the flow passes unjudged from then on (`gateway.hold_overflow`), or with `failClosed` the flow
 * is blocked. Fixes (same-length edits at absolute stream offsets) are remembered per flow, so a
 * retransmission of bytes already forwarded is rewritten the same way.
 *
 * One unit is held whole only up to `holdUnitBytes` of payload per direction (below any initial
 * TCP window): past that, the held segments except the newest (the one(s) at the unit's current
 * end) are forwarded before the judgement, so the receiver ACKs and the sender goes on (a sender
 * waits for ACKs of what it has in flight: holding a unit larger than its window would stall
 * the flow until the hold timeout). The segment that completes the unit is still held until the
 * judgement: `drop` blocks the flow before it goes out, so the receiver never gets the whole
 * unit. A `fix` whose edit falls in bytes already forwarded (early, or by a timeout or overflow)
 * cannot be applied: the flow is blocked instead (`gateway.fix_too_late`, then
 * `gateway.flow_blocked` with reason `fix_too_late`). A segment that only carries bytes already
 * forwarded (a retransmission) is forwarded at once, with the flow's fixes applied.
 *
 * Bypass: once nothing needs a flow's server->client direction any more (`BypassHooks.eligible`:
 * no rule or protection of the service reads responses, the protocol's own state does not need
 * them), its tuple goes into the nftables `bypass4` set and the kernel forwards the responses;
 * the client->server direction stays here. Frames of the bypassed direction that still reach us
 * (diverted before the kernel applied the element, or copies the capture taps see of frames the
 * kernel forwarded) are never judged: copies seen leaving the client's port prove the kernel
 * forwards them (from that sequence number on, the server-side copies are discarded); anything
 * else is forwarded (a duplicate at worst, never a loss). The element is refreshed while the
 * flow lives and deleted when it ends or is blocked. FIN, SYN and RST are never bypassed. A
 * request that leaves the protocol (CONNECT, Upgrade: `eligible` turns false) ends the bypass
 * before it goes out: the client's bytes are held until the kernel confirms the delete
 * (`BypassHooks.confirm`), so the server's answer (101, 200) and what follows reach the engine.
 */
import type {Pdu} from '../analyzers/types.js'
import type {Engine, EngineFlow} from '../engine/engine.js'
import type {AnomalyReport} from '../events/anomaly.js'
import {anomalyEvent, type EveEvent} from '../events/eve.js'
import {PacketDecoder, FIN, RST, SYN, type DecodedPacket} from '../packet/decode.js'
import {seqGe} from '../flow/tcp-seq.js'
import {buildTcpReset, recomputeChecksums} from '../packet/encode.js'
import {LINKTYPE} from '../packet/linktype.js'
import type {Edit, Match} from '../rules/types.js'
import {bypassAddLine, bypassDeleteLine, bypassRefreshLine} from './nft.js'

export const GATEWAY_LIMITS = {
  /** bytes of frames held per flow while a unit is judged */
  holdBytesPerFlow: 512 * 1024,
  /** frames held per flow */
  holdPacketsPerFlow: 1024,
  /** bytes held across all flows */
  holdBytesTotal: 64 * 1024 * 1024,
  /**
   * a unit pending longer than this (packet time): its held frames are released (or the flow is
   * blocked, fail-closed) and judging goes on, so the rest of the unit is held again
   */
  holdTimeoutUs: 10e6,
  /**
   * the same while the flow's protocol is not detected yet: a client that says less than the
   * detection needs and then waits for the server (iperf3's cookie, a server-first protocol
   * on an unexpected port) would otherwise stall for holdTimeoutUs
   */
  detectHoldTimeoutUs: 300e3,
  /**
   * payload bytes of one direction held while its unit is judged; past this, all but the newest
   * held segment are forwarded before the judgement (a sender stops after its window: ~14 KB at
   * the start of a connection, so keep this below it)
   */
  holdUnitBytes: 8 * 1024,
  /**
   * disjoint ranges of forwarded stream bytes remembered per direction (reordering leaves holes);
   * past this the two closest merge (a fix may then be refused for bytes of a hole:
   * `gateway.forwarded_ranges`, once per flow)
   */
  forwardedRanges: 16,
  /** fix edits remembered per flow (for retransmissions) */
  editsPerFlow: 256,
  /** flows with gateway state */
  flows: 262_144,
  /** IP datagrams whose fragments are held until complete */
  fragmentDatagrams: 4096,
  /** fragments per held datagram */
  fragmentsPerDatagram: 64,
  /** an incomplete fragmented datagram is discarded after this long */
  fragmentTimeoutUs: 30e6,
  /** resets answered to packets of a blocked flow */
  resetsPerFlow: 8,
  /** flows whose server->client direction is bypassed at once (elements of the nft set) */
  bypassFlows: 16_384,
  /** a bypass element is rewritten this often while its flow lives (its timeout is longer) */
  bypassRefreshUs: 20e6,
}

export type GatewayLimits = typeof GATEWAY_LIMITS

/**
 * Held frames are copied into buffers of this size, which are recycled once the frame went out
 * (a held SMTP or HTTP body segment is copied, held until the next segment and sent: a fresh
 * buffer per segment cost an allocation, zeroing and garbage collection each). It holds a
 * 1500-byte MTU frame with a VLAN tag; longer frames get a buffer of their own.
 */
export const FRAME_BUFFER_BYTES = 1536
/** spare frame buffers kept for reuse (at most FRAME_BUFFER_BYTES each: 768 KB) */
export const FRAME_BUFFERS_SPARE = 512

export interface GatewayPort {
  /** `frame` is only valid during the call (the forwarder reuses its buffer): copy it to keep it */
  send(frame: Uint8Array): void
}

/** How the forwarder hands a direction to the kernel (inline mode; absent: nothing is bypassed). */
export interface BypassHooks {
  /** may this flow's server->client direction be forwarded by the kernel from now on? */
  eligible(flow: EngineFlow): boolean
  /** an nft command for the bypass set (the caller batches them; never blocks) */
  write(line: string): void
  /**
   * Run an nft command and call `done` once the kernel applied it (or failed to; never blocks).
   * Used to end the bypass of a flow that asked to leave its protocol (CONNECT, Upgrade): its
   * request is held until the kernel stops forwarding the responses itself, or the server's
   * answer (101, 200) would pass the engine by. Absent: `write` and no wait.
   */
  confirm?(line: string, done: () => void): void
}

export interface ForwarderOptions {
  engine: Engine
  ports: readonly [GatewayPort, GatewayPort]
  /** EVE events of the gateway itself (anomalies, drops); the engine's go through its own onEvent */
  onEvent: (ev: EveEvent) => void
  failClosed?: boolean
  limits?: Partial<GatewayLimits>
  linktype?: number
  bypass?: BypassHooks
}

export interface ForwarderStats {
  framesIn: number
  framesOut: number
  bytesIn: number
  bytesOut: number
  held: number
  heldNow: number
  heldBytesNow: number
  fixedFrames: number
  droppedFrames: number
  blockedFlows: number
  resetsSent: number
  holdOverflows: number
  holdTimeouts: number
  duplicatesDiscarded: number
  fragmentsHeld: number
}

/** bypass counters (part of Forwarder.stats: the periodic stats line shows them) */
export interface BypassStats {
  /** flows whose server->client direction was handed to the kernel */
  bypassedFlows: number
  bypassedNow: number
  /** frames of a bypassed direction forwarded here (before the kernel took over) */
  bypassForwarded: number
  /** frames of a bypassed direction discarded (the kernel forwarded them) */
  bypassDiscarded: number
  /** bypass ends (CONNECT, Upgrade) whose client bytes were held until the kernel confirmed */
  unbypassWaits: number
}

/** counters of units larger than holdUnitBytes (part of Forwarder.stats) */
export interface HoldStats {
  /** held frames forwarded before their unit was judged (the unit passed holdUnitBytes) */
  releasedEarly: number
  /** fix verdicts whose edits fell in bytes already forwarded: the flow was blocked instead */
  fixTooLate: number
}

interface Held {
  /** a frame, or the frames of a fragmented datagram */
  frame: Uint8Array | null
  group: Uint8Array[] | null
  outPort: number
  /** stream offsets [so, end) of the payload; -1 when none (pure FIN) */
  so: number
  end: number
  payloadOff: number
  len: number
  bytes: number
  tsUs: number
}

interface FlowState {
  flow: EngineFlow
  blocked: boolean
  /** hold limits were hit: the flow passes unjudged */
  unjudged: boolean
  held: [Held[], Held[]]
  /** payload bytes held per direction (compared with holdUnitBytes) */
  heldLen: [number, number]
  /**
   * stream bytes forwarded per direction: sorted disjoint ranges, flat [s0, e0, s1, e1, ...]
   * (an edit that overlaps them comes too late); at most limits.forwardedRanges ranges
   */
  fwd: [number[], number[]]
  /** forwardedRanges was hit (reported once) */
  fwdMerged: boolean
  heldBytes: number
  heldCount: number
  /** highest stream end held per direction (duplicates of held bytes are discarded) */
  maxHeldEnd: [number, number]
  edits: [Edit[], Edit[]]
  resets: number
  /** 0 no bypass, 1 server->client bypassed, 2 bypass ended (never again for this flow) */
  bypass: 0 | 1 | 2
  /** port the client's frames arrive on (copies of bypassed frames seen there left through it) */
  clientSide: number
  /** the kernel forwards the bypassed direction from server sequence number bypassSeq on */
  bypassSeen: boolean
  bypassSeq: number
  bypassRefreshUs: number
  /** nft element of the server->client tuple */
  bypassElement: string
  /** key in `bypassed`: the client's IPv4 address and port */
  bypassKey: number
  /** the server's IPv4 address as an unsigned number */
  bypassServer: number
  /** the bypass delete of a flow leaving its protocol is not confirmed yet: client bytes are held */
  unbypassPending: boolean
}

interface FragGroup {
  frames: Uint8Array[]
  bytes: number
  tsUs: number
}

interface Collected {
  match: Match
  dir: 0 | 1
  shadow: boolean
}

const DIR_NAMES = ['toserver', 'toclient'] as const

export class Forwarder {
  readonly stats: ForwarderStats & BypassStats & HoldStats = {
    framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0, held: 0, heldNow: 0, heldBytesNow: 0, fixedFrames: 0,
    droppedFrames: 0, blockedFlows: 0, resetsSent: 0, holdOverflows: 0, holdTimeouts: 0, duplicatesDiscarded: 0,
    fragmentsHeld: 0, bypassedFlows: 0, bypassedNow: 0, bypassForwarded: 0, bypassDiscarded: 0, unbypassWaits: 0,
    releasedEarly: 0, fixTooLate: 0,
  }
  readonly limits: GatewayLimits
  private readonly engine: Engine
  private readonly ports: readonly [GatewayPort, GatewayPort]
  private readonly decoder = new PacketDecoder()
  /** decodes held frames (never the current packet's decoder: its result is still in use) */
  private readonly decoder2 = new PacketDecoder()
  /** decodes the reassembled datagram of a completed fragment group (wholePacket) */
  private readonly decoder3 = new PacketDecoder()
  /** by the engine's flow object (identity: no key text per flow; a flow replaced in the engine's table ends, and sweep drops its state) */
  private readonly flows = new Map<EngineFlow, FlowState>()
  private readonly frags = new Map<string, FragGroup>()
  /** bypassed flows by client IPv4 address * 65536 + client port (exact in a double) */
  private readonly bypassed = new Map<number, FlowState[]>()
  private readonly collected: Collected[] = []
  /** frame buffers of held frames that went out, for the next held frames (FRAME_BUFFERS_SPARE) */
  private readonly spare: ArrayBuffer[] = []
  private readonly linktype: number
  private nowUs = 0
  failClosed: boolean

  constructor(private readonly opts: ForwarderOptions) {
    this.engine = opts.engine
    this.ports = opts.ports
    this.limits = {...GATEWAY_LIMITS, ...opts.limits}
    this.failClosed = opts.failClosed === true
    this.linktype = opts.linktype ?? LINKTYPE.ETHERNET
  }

  /** the judge's onMatch hook: called during engine.processFrame */
  onMatch(match: Match, pdu: Pdu, _flow: EngineFlow, shadow: boolean): void {
    this.collected.push({match, dir: pdu.dir === 'toserver' ? 0 : 1, shadow})
  }

  /**
   * One frame that arrived on port `inPort`. `frame` may be reused by the caller after return
   * (it is copied when held); it may be modified in place before it is sent.
   */
  handle(frame: Uint8Array, inPort: 0 | 1, tsUs: number): void {
    const st = this.stats
    st.framesIn++
    st.bytesIn += frame.length
    if (tsUs > this.nowUs) this.nowUs = tsUs
    if (this.bypassed.size > 0 && this.bypassFrame(frame, inPort)) return
    this.collected.length = 0
    this.engine.processFrame(frame, this.linktype, tsUs)
    const pl = this.engine.placement
    const pkt = this.decoder.decode(frame, this.linktype)
    const outPort = 1 - inPort
    if (pl.heldFragment) {
      this.holdFragment(frame, pkt, outPort)
      return
    }
    let group: Uint8Array[] | null = null
    if (pkt.isFragment) group = this.completeFragments(frame, pkt)
    const flow = pl.flow
    if (flow === null) {
      this.sendAny(frame, group, outPort)
      return
    }
    let gf = this.flows.get(flow)
    if (gf === undefined) {
      // no state until a flow carries bytes or a verdict: a SYN flood from spoofed sources
      // costs the engine's flow entries, not ours too
      if (this.collected.length === 0 && flow.proto === 6 && pl.payloadLength === 0 && (group !== null || (pkt.tcpFlags & FIN) === 0)) {
        this.sendAny(frame, group, outPort)
        return
      }
      gf = this.newState(flow)
    }
    const d = pl.fromClient ? 0 : 1
    // verdicts of the units judged during this packet
    let block = false
    let blockNote = ''
    for (let i = 0; i < this.collected.length; i++) {
      const c = this.collected[i]
      const m = c.match
      if (c.shadow || m.action === 'log') continue
      if (m.action === 'drop') {
        block = true
        blockNote = 'drop'
      } else if (m.action === 'fix') {
        if (!m.inline || group !== null) {
          block = true
          blockNote = group !== null ? 'fix_fragmented_drop' : 'fix_not_inline_drop'
        } else if (this.fixTooLate(gf, c.dir, m)) {
          block = true
          blockNote = 'fix_too_late'
        } else this.addEdits(gf, c.dir, m.edits)
      }
    }
    if (block && !gf.blocked) {
      // a completed fragment group: the resets answer the reassembled segment (the last
      // fragment carries no TCP header)
      const rp = group === null ? pkt : this.wholePacket(frame, pkt, pl.datagram)
      this.block(gf, rp ?? pkt, d, rp !== null, pl.streamOffset, inPort, blockNote)
      return
    }
    if (gf.blocked) {
      st.droppedFrames++
      if (flow.proto === 6 && gf.resets < this.limits.resetsPerFlow) {
        const rp = group === null ? pkt : this.wholePacket(frame, pkt, pl.datagram)
        if (rp !== null && rp.l4 === 'tcp' && (rp.tcpFlags & RST) === 0) {
          gf.resets++
          this.sendReset(rp, 'to-source', inPort)
        }
      }
      return
    }
    if (d === 0 && gf.bypass === 1 && !this.opts.bypass!.eligible(flow)) {
      // this request asked to leave the protocol (CONNECT, Upgrade): the kernel must stop
      // forwarding the responses before the server sees the request (see unbypassPending)
      this.endBypass(gf)
    }
    if (flow.proto === 17) {
      // one datagram = one unit, judged during processFrame
      if (group === null && gf.edits[d].length > 0 && pkt.payloadLength > 0) {
        const so = flow.offsets[d] - pkt.payloadLength
        if (applyEdits(frame, pkt.payloadOffset, so, pkt.payloadLength, gf.edits[d])) this.fixChecksums(frame, false)
      }
      this.sendAny(frame, group, outPort)
      return
    }
    const len = pl.payloadLength
    const so = pl.streamOffset
    const end = so >= 0 ? so + len : -1
    const queue = gf.held[d]
    const fin = group === null && (pkt.tcpFlags & FIN) !== 0
    if (queue.length > 0 && end >= 0 && end <= gf.maxHeldEnd[d] && coveredBy(queue, so, end)) {
      // a retransmission of bytes already held: the held copy goes out once judged
      st.duplicatesDiscarded++
      this.releaseJudged(gf)
      return
    }
    if (len > 0 && !fin && so >= 0 && rangesCover(gf.fwd[d], so, end)) {
      // only bytes already forwarded (a retransmission, or a hole below segments released
      // early): holding them again would stall a sender that waits for their ACK
      if (group === null && gf.edits[d].length > 0) {
        if (applyEdits(frame, pkt.payloadOffset, so, len, gf.edits[d])) this.fixChecksums(frame, false)
      }
      this.sendAny(frame, group, outPort)
      this.releaseJudged(gf)
      return
    }
    const pending = this.pendingOf(gf, d)
    const mustHold = (queue.length > 0 && (len > 0 || fin)) || (pending >= 0 && end > pending)
    if (mustHold) {
      this.hold(gf, d, frame, group, outPort, so, end, group === null ? pkt.payloadOffset : -1, len)
    } else {
      this.releaseJudged(gf)
      if (group === null && end >= 0 && gf.edits[d].length > 0) {
        if (applyEdits(frame, pkt.payloadOffset, so, len, gf.edits[d])) this.fixChecksums(frame, false)
      }
      if (len > 0 && so >= 0) this.forwarded(gf, d, so, end)
      this.sendAny(frame, group, outPort)
    }
    this.releaseJudged(gf)
    if (d === 0 && this.opts.bypass !== undefined) this.considerBypass(gf, inPort)
  }

  /** timers: units pending too long, stale fragments, ended flows (call every few hundred ms) */
  sweep(nowUs: number): void {
    if (nowUs > this.nowUs) this.nowUs = nowUs
    const lim = this.limits
    for (const [key, gf] of this.flows) {
      if (gf.heldCount > 0) {
        const oldest = Math.min(gf.held[0][0]?.tsUs ?? Infinity, gf.held[1][0]?.tsUs ?? Infinity)
        if (this.nowUs - oldest > (gf.flow.detectDone ? lim.holdTimeoutUs : lim.detectHoldTimeoutUs)) {
          this.stats.holdTimeouts++
          this.timeout(gf)
        }
      }
      if (gf.flow.ended) {
        this.release(gf, true)
        this.endBypass(gf)
        this.flows.delete(key)
      } else if (gf.bypass === 1 && this.nowUs - gf.bypassRefreshUs >= lim.bypassRefreshUs) {
        gf.bypassRefreshUs = this.nowUs
        this.opts.bypass?.write(bypassRefreshLine(gf.bypassElement))
      }
    }
    for (const [key, g] of this.frags) {
      if (this.nowUs - g.tsUs > lim.fragmentTimeoutUs) {
        this.frags.delete(key)
        this.stats.fragmentsHeld -= g.frames.length
      }
    }
  }

  /** release everything held (shutdown); bypass elements are deleted */
  flushAll(): void {
    for (const gf of this.flows.values()) {
      this.release(gf, true)
      this.endBypass(gf)
    }
  }

  get flowStates(): number {
    return this.flows.size
  }

  get fragmentGroups(): number {
    return this.frags.size
  }

  isBlocked(flow: EngineFlow): boolean {
    return this.flows.get(flow)?.blocked === true
  }

  // ------------------------------------------------------------------------------------------

  private newState(flow: EngineFlow): FlowState {
    if (this.flows.size >= this.limits.flows) {
      const first = this.flows.entries().next().value
      if (first) {
        this.release(first[1], true)
        this.endBypass(first[1])
        this.flows.delete(first[0])
        this.report(first[1].flow, {type: 'limit', event: 'gateway.flow_table_full', detail: {limit: this.limits.flows}})
      }
    }
    const gf: FlowState = {
      flow, blocked: false, unjudged: false, held: [[], []], heldLen: [0, 0], fwd: [[], []], fwdMerged: false, heldBytes: 0, heldCount: 0,
      maxHeldEnd: [-1, -1], edits: [[], []], resets: 0,
      bypass: 0, clientSide: -1, bypassSeen: false, bypassSeq: 0, bypassRefreshUs: 0, bypassElement: '', bypassKey: 0, bypassServer: 0,
      unbypassPending: false,
    }
    this.flows.set(flow, gf)
    return gf
  }

  private pendingOf(gf: FlowState, d: 0 | 1): number {
    // every client byte waits for the kernel to stop bypassing the responses
    if (d === 0 && gf.unbypassPending) return 0
    if (gf.unjudged) return -1
    const flow = gf.flow
    if (!flow.detectDone) return 0
    const a = flow.analyzer
    if (a === null) return -1
    return a.pendingFrom(DIR_NAMES[d])
  }

  /**
   * A fix whose edit falls in bytes of its direction already forwarded cannot be applied (the
   * receiver has them): true (reported) when the flow must be blocked instead.
   */
  private fixTooLate(gf: FlowState, d: 0 | 1, m: Match): boolean {
    const fwd = gf.fwd[d]
    if (fwd.length === 0) return false
    for (let i = 0; i < m.edits.length; i++) {
      const e = m.edits[i]
      if (e.len === 0 || e.len !== e.data.length || !rangesOverlap(fwd, e.off, e.off + e.len)) continue
      this.stats.fixTooLate++
      this.report(gf.flow, {type: 'applayer', event: 'gateway.fix_too_late', detail: {
        rule: m.rule.id, direction: DIR_NAMES[d], edit_offset: e.off, edit_len: e.len, forwarded_to: fwd[fwd.length - 1],
        hold_unit_bytes: this.limits.holdUnitBytes,
      }})
      return true
    }
    return false
  }

  /** stream bytes [so, end) of direction d went out */
  private forwarded(gf: FlowState, d: 0 | 1, so: number, end: number): void {
    if (addRange(gf.fwd[d], so, end, this.limits.forwardedRanges) && !gf.fwdMerged) {
      gf.fwdMerged = true
      this.report(gf.flow, {type: 'limit', event: 'gateway.forwarded_ranges', detail: {limit: this.limits.forwardedRanges}})
    }
  }

  private addEdits(gf: FlowState, d: 0 | 1, edits: readonly Edit[]): void {
    const list = gf.edits[d]
    for (const e of edits) {
      if (e.len !== e.data.length) continue
      if (list.length >= this.limits.editsPerFlow) {
        list.shift()
        this.report(gf.flow, {type: 'limit', event: 'gateway.edits_per_flow', detail: {limit: this.limits.editsPerFlow}})
      }
      list.push(e)
    }
  }

  private hold(gf: FlowState, d: 0 | 1, frame: Uint8Array, group: Uint8Array[] | null, outPort: number, so: number, end: number, payloadOff: number, len: number): void {
    const lim = this.limits
    const bytes = group === null ? frame.length : group.reduce((n, f) => n + f.length, 0)
    if (gf.heldBytes + bytes > lim.holdBytesPerFlow || gf.heldCount + 1 > lim.holdPacketsPerFlow || this.stats.heldBytesNow + bytes > lim.holdBytesTotal) {
      this.stats.holdOverflows++
      this.overflow(gf, 'gateway.hold_overflow')
      if (gf.blocked) {
        this.stats.droppedFrames++
        return
      }
      if (group === null && end >= 0 && gf.edits[d].length > 0) {
        if (applyEdits(frame, payloadOff, so, len, gf.edits[d])) this.fixChecksums(frame, false)
      }
      if (len > 0 && so >= 0) this.forwarded(gf, d, so, end)
      this.sendAny(frame, group, outPort)
      return
    }
    const h: Held = {
      frame: group === null ? this.copyFrame(frame) : null, group, outPort, so, end, payloadOff, len, bytes, tsUs: this.nowUs,
    }
    gf.held[d].push(h)
    gf.heldBytes += bytes
    gf.heldLen[d] += len
    gf.heldCount++
    if (end > gf.maxHeldEnd[d]) gf.maxHeldEnd[d] = end
    this.stats.held++
    this.stats.heldNow++
    this.stats.heldBytesNow += bytes
    if (gf.heldLen[d] > lim.holdUnitBytes) this.releaseEarly(gf, d)
  }

  /**
   * The held unit passed holdUnitBytes: forward what is held of direction d except the
   * segment(s) at its current end (and pure FINs), unjudged; the judgement still stops the
   * segment that completes the unit.
   */
  private releaseEarly(gf: FlowState, d: 0 | 1): void {
    const q = gf.held[d]
    const keepEnd = gf.maxHeldEnd[d]
    let w = 0
    for (let i = 0; i < q.length; i++) {
      const h = q[i]
      if (h.end >= 0 && h.end < keepEnd) {
        this.stats.releasedEarly += h.group === null ? 1 : h.group.length
        this.sendHeld(gf, d, h)
      } else q[w++] = h
    }
    q.length = w
  }

  /** hold limit or timeout: release unjudged (fail-open) or block (fail-closed) */
  private overflow(gf: FlowState, code: string): void {
    this.report(gf.flow, {type: 'limit', event: code, detail: {
      held_bytes: gf.heldBytes, held_packets: gf.heldCount, fail_closed: this.failClosed,
    }})
    if (this.failClosed) {
      const first = gf.held[0][0] ?? gf.held[1][0]
      const d = gf.held[0].length > 0 ? 0 : 1
      this.blockHeld(gf, first, d)
      return
    }
    gf.unjudged = true
    this.release(gf, true)
  }

  /**
   * A unit pending too long: release what is held (the receiver gets a prefix of the unit, not
   * the whole of it) but keep judging, so the rest is held until judged and a match still blocks
   * the flow. Marking the flow unjudged here would let a client that pauses past the timeout
   * send anything afterwards. Fail-closed blocks the flow instead.
   */
  private timeout(gf: FlowState): void {
    // a bypass delete never confirmed: stop waiting for it (fail-open, like any hold timeout)
    gf.unbypassPending = false
    if (gf.flow.detectDone) {
      this.report(gf.flow, {type: 'limit', event: 'gateway.hold_timeout', detail: {
        held_bytes: gf.heldBytes, held_packets: gf.heldCount, fail_closed: this.failClosed,
      }})
    }
    if (this.failClosed && gf.flow.detectDone) {
      const first = gf.held[0][0] ?? gf.held[1][0]
      this.blockHeld(gf, first, gf.held[0].length > 0 ? 0 : 1)
      return
    }
    this.release(gf, true)
  }

  private releaseJudged(gf: FlowState): void {
    if (gf.heldCount === 0) return
    this.releaseDir(gf, 0, false)
    this.releaseDir(gf, 1, false)
  }

  private release(gf: FlowState, all: boolean): void {
    if (gf.heldCount === 0) return
    this.releaseDir(gf, 0, all)
    this.releaseDir(gf, 1, all)
  }

  private releaseDir(gf: FlowState, d: 0 | 1, all: boolean): void {
    const q = gf.held[d]
    if (q.length === 0) return
    const pending = all || gf.blocked ? -1 : this.pendingOf(gf, d)
    let n = 0
    for (; n < q.length; n++) {
      const h = q[n]
      if (pending >= 0 && h.end > pending) break
      this.sendHeld(gf, d, h)
    }
    if (n > 0) q.splice(0, n)
    if (q.length === 0) gf.maxHeldEnd[d] = -1
  }

  /** a held segment leaves the queue (the caller removes it) and goes out, fixed */
  private sendHeld(gf: FlowState, d: 0 | 1, h: Held): void {
    this.unhold(gf, h)
    gf.heldLen[d] -= h.len
    if (h.frame !== null && h.end >= 0 && gf.edits[d].length > 0) {
      if (applyEdits(h.frame, h.payloadOff, h.so, h.len, gf.edits[d])) this.fixChecksums(h.frame, true)
    }
    if (h.len > 0 && h.so >= 0) this.forwarded(gf, d, h.so, h.end)
    this.sendAny(h.frame!, h.group, h.outPort)
    if (h.frame !== null) this.recycle(h.frame)
  }

  /** a copy of a frame to hold, in a recycled buffer when it fits one */
  private copyFrame(frame: Uint8Array): Uint8Array {
    if (frame.length > FRAME_BUFFER_BYTES) return copy(frame)
    const out = new Uint8Array(this.spare.pop() ?? new ArrayBuffer(FRAME_BUFFER_BYTES), 0, frame.length)
    out.set(frame)
    return out
  }

  /** a held frame went out (ports do not keep it): its buffer serves the next held frame */
  private recycle(frame: Uint8Array): void {
    const b = frame.buffer
    if (b instanceof ArrayBuffer && b.byteLength === FRAME_BUFFER_BYTES && this.spare.length < FRAME_BUFFERS_SPARE) this.spare.push(b)
  }

  private unhold(gf: FlowState, h: Held): void {
    gf.heldBytes -= h.bytes
    gf.heldCount--
    this.stats.heldNow--
    this.stats.heldBytesNow -= h.bytes
  }

  private discardHeld(gf: FlowState): void {
    for (const q of gf.held) {
      for (const h of q) {
        this.unhold(gf, h)
        this.stats.droppedFrames += h.group === null ? 1 : h.group.length
      }
      q.length = 0
    }
    gf.heldLen[0] = 0
    gf.heldLen[1] = 0
    gf.maxHeldEnd[0] = -1
    gf.maxHeldEnd[1] = -1
  }

  /**
   * Block a flow on the current packet (`pkt`: the reassembled segment when the packet completed
   * a fragmented datagram; `usable` false when there is none to answer): resets to its sender
   * (answering this packet) and to the receiver (in the sender's name, at the first byte it has
   * not received: the first held segment of direction d, else this one), held frames discarded.
   * `so` is the stream offset of pkt's payload (-1 unknown): a held fragmented datagram has no
   * frame to answer, so its reset is this packet's with the sequence number moved back to it.
   */
  private block(gf: FlowState, pkt: DecodedPacket, d: 0 | 1, usable: boolean, so: number, inPort: number, note: string): void {
    const first = gf.held[d][0]
    const tcp = usable && pkt.l4 === 'tcp'
    if (tcp) this.sendReset(pkt, 'to-source', inPort)
    gf.blocked = true
    this.endBypass(gf)
    this.stats.blockedFlows++
    this.stats.droppedFrames++
    if (first?.frame) {
      const p = this.decoder2.decode(first.frame, this.linktype)
      this.sendReset(p, 'to-destination', first.outPort)
    } else if (tcp) {
      if (first !== undefined && first.so >= 0 && so >= first.so) {
        // this packet's bytes start (so - first.so) after the first byte the receiver lacks
        const seq = pkt.seq
        pkt.seq = (seq - (so - first.so)) >>> 0
        this.sendReset(pkt, 'to-destination', 1 - inPort)
        pkt.seq = seq
      } else this.sendReset(pkt, 'to-destination', 1 - inPort)
    }
    this.discardHeld(gf)
    this.report(gf.flow, {type: 'applayer', event: 'gateway.flow_blocked', detail: {reason: note}})
  }

  /**
   * The segment a completed fragment group carried, decoded as one frame (the current frame's
   * link header, VLAN tags included, in front of the reassembled datagram), so resets can answer
   * it; null when there is no datagram. Valid until the next call.
   */
  private wholePacket(frame: Uint8Array, pkt: DecodedPacket, datagram: Uint8Array | null): DecodedPacket | null {
    if (datagram === null || pkt.ipOffset < 0) return null
    const f = new Uint8Array(pkt.ipOffset + datagram.length)
    f.set(frame.subarray(0, pkt.ipOffset))
    f.set(datagram, pkt.ipOffset)
    const p = this.decoder3.decode(f, this.linktype)
    return p.ipVersion === 0 || p.isFragment ? null : p
  }

  /** fail-closed block with no current packet: reset from the first held frame */
  private blockHeld(gf: FlowState, first: Held | undefined, _d: number): void {
    gf.blocked = true
    this.endBypass(gf)
    this.stats.blockedFlows++
    if (first?.frame) {
      const p = this.decoder2.decode(first.frame, this.linktype)
      this.sendReset(p, 'to-destination', first.outPort)
      this.sendReset(p, 'to-source', 1 - first.outPort)
    }
    this.discardHeld(gf)
  }

  /**
   * A frame of a bypassed server->client direction (true: handled here, the engine never sees it).
   * Only plain segments: SYN, FIN and RST go through the engine (the flow still ends and resets).
   */
  private bypassFrame(frame: Uint8Array, inPort: number): boolean {
    const pkt = this.decoder.decode(frame, this.linktype)
    if (pkt.l4 !== 'tcp' || pkt.ipVersion !== 4 || pkt.isFragment || (pkt.tcpFlags & (SYN | FIN | RST)) !== 0) return false
    const list = this.bypassed.get((pkt.dst4 >>> 0) * 65536 + pkt.dstPort)
    if (list === undefined) return false
    let gf: FlowState | undefined
    for (let i = 0; i < list.length; i++) {
      if (list[i].flow.serverPort === pkt.srcPort && list[i].bypassServer === pkt.src4 >>> 0) gf = list[i]
    }
    if (gf === undefined) return false
    const st = this.stats
    st.framesIn++
    st.bytesIn += frame.length
    if (inPort === gf.clientSide) {
      // a capture tap's copy of a frame the kernel forwarded out of the client's port
      if (!gf.bypassSeen) {
        gf.bypassSeen = true
        gf.bypassSeq = pkt.seq
      }
      st.bypassDiscarded++
      return true
    }
    if (gf.bypassSeen && seqGe(pkt.seq, gf.bypassSeq)) {
      st.bypassDiscarded++
      return true
    }
    // diverted before the kernel applied the element: ours to forward
    st.bypassForwarded++
    this.send(frame, 1 - inPort)
    return true
  }

  /** after a client->server packet: hand the server->client direction to the kernel if allowed */
  private considerBypass(gf: FlowState, inPort: number): void {
    const flow = gf.flow
    if (gf.bypass === 1) {
      if (!this.opts.bypass!.eligible(flow)) this.endBypass(gf)
      return
    }
    if (gf.bypass !== 0 || gf.blocked || gf.unjudged || flow.proto !== 6 || flow.tcp === null || flow.analyzer === null) return
    if (flow.tcp.state !== 'established' || gf.held[1].length > 0 || gf.edits[1].length > 0 || flow.serverIp.includes(':')) return
    // only between requests: a request's head is judged (and `eligible` knows whether it asked
    // to leave the protocol, e.g. an HTTP Upgrade) before its response can start
    if (gf.heldCount > 0 || flow.analyzer.pendingFrom('toserver') >= 0) return
    if (this.stats.bypassedNow >= this.limits.bypassFlows) return
    if (!this.opts.bypass!.eligible(flow)) return
    gf.bypass = 1
    gf.clientSide = inPort
    gf.bypassRefreshUs = this.nowUs
    gf.bypassElement = `${flow.serverIp} . ${flow.serverPort} . ${flow.clientIp} . ${flow.clientPort}`
    gf.bypassKey = ipv4Number(flow.clientIp) * 65536 + flow.clientPort
    gf.bypassServer = ipv4Number(flow.serverIp)
    const list = this.bypassed.get(gf.bypassKey)
    if (list === undefined) this.bypassed.set(gf.bypassKey, [gf])
    else list.push(gf)
    flow.tcp.bypass(false)
    this.stats.bypassedFlows++
    this.stats.bypassedNow++
    this.opts.bypass!.write(bypassAddLine(gf.bypassElement))
  }

  /**
   * The flow ends, is blocked or needs its responses again: the kernel stops bypassing it. A flow
   * that lives on (it needs its responses again) holds its client bytes until the kernel
   * confirms the delete (BypassHooks.confirm; the hold timeout bounds the wait).
   */
  private endBypass(gf: FlowState): void {
    if (gf.bypass !== 1) return
    gf.bypass = 2
    this.stats.bypassedNow--
    const list = this.bypassed.get(gf.bypassKey)
    if (list !== undefined) {
      const i = list.indexOf(gf)
      if (i >= 0) list.splice(i, 1)
      if (list.length === 0) this.bypassed.delete(gf.bypassKey)
    }
    const hooks = this.opts.bypass
    const line = bypassDeleteLine(gf.bypassElement)
    if (hooks?.confirm === undefined || gf.blocked || gf.flow.ended) {
      hooks?.write(line)
      return
    }
    gf.unbypassPending = true
    this.stats.unbypassWaits++
    hooks.confirm(line, () => {
      if (!gf.unbypassPending) return
      gf.unbypassPending = false
      if (this.flows.get(gf.flow) === gf) this.releaseJudged(gf)
    })
  }

  private sendReset(pkt: DecodedPacket, dir: 'to-source' | 'to-destination', port: number): void {
    const rst = buildTcpReset(pkt, dir)
    if (rst === null) return
    const tags = pkt.vlanIds.length
    if (tags > 0 && pkt.linktype === LINKTYPE.ETHERNET && pkt.networkOffset === 14 + 4 * tags && rst.length >= 14 + 4 * tags) {
      // the tags as they came (TPID 0x88a8/0x9100 of an outer tag, priority bits), not 0x8100
      rst.set(pkt.frame.subarray(12, 12 + 4 * tags), 12)
    }
    this.stats.resetsSent++
    this.send(rst, port)
  }

  private holdFragment(frame: Uint8Array, pkt: DecodedPacket, outPort: number): void {
    if (pkt.ipVersion === 0 || !pkt.isFragment) {
      // held or refused by the defragmenter but not a fragment we can key: pass it on
      this.send(frame, outPort)
      return
    }
    const key = fragKey(pkt)
    let g = this.frags.get(key)
    if (g === undefined) {
      if (this.frags.size >= this.limits.fragmentDatagrams) {
        this.report(null, {type: 'limit', event: 'gateway.fragments_full', detail: {limit: this.limits.fragmentDatagrams, fail_closed: this.failClosed}})
        if (this.failClosed) this.stats.droppedFrames++
        else this.send(frame, outPort)
        return
      }
      g = {frames: [], bytes: 0, tsUs: this.nowUs}
      this.frags.set(key, g)
    }
    if (g.frames.length >= this.limits.fragmentsPerDatagram) {
      this.stats.droppedFrames++
      return
    }
    g.frames.push(copy(frame))
    g.bytes += frame.length
    this.stats.fragmentsHeld++
  }

  private completeFragments(frame: Uint8Array, pkt: DecodedPacket): Uint8Array[] {
    const key = fragKey(pkt)
    const g = this.frags.get(key)
    const out = g ? g.frames : []
    if (g) {
      this.frags.delete(key)
      this.stats.fragmentsHeld -= g.frames.length
    }
    out.push(copy(frame))
    return out
  }

  private sendAny(frame: Uint8Array, group: Uint8Array[] | null, port: number): void {
    if (group === null) {
      this.send(frame, port)
      return
    }
    for (const f of group) this.send(f, port)
  }

  private send(frame: Uint8Array, port: number): void {
    this.stats.framesOut++
    this.stats.bytesOut += frame.length
    this.ports[port].send(frame)
  }

  private fixChecksums(frame: Uint8Array, held: boolean): void {
    this.stats.fixedFrames++
    const p = (held ? this.decoder2 : this.decoder).decode(frame, this.linktype)
    recomputeChecksums(frame, p)
  }

  private report(flow: EngineFlow | null, a: AnomalyReport): void {
    const common = flow ? this.engine.flowCommon(flow, this.engine.now) : {timestamp: new Date(this.nowUs / 1000).toISOString()}
    this.opts.onEvent(anomalyEvent(a, common))
  }
}

/** true when one held segment already carries stream bytes [so, end) */
function coveredBy(queue: readonly Held[], so: number, end: number): boolean {
  for (let i = 0; i < queue.length; i++) if (queue[i].so <= so && queue[i].end >= end) return true
  return false
}

/**
 * Adds [s, e) to sorted disjoint ranges `r` (flat [s0, e0, s1, e1, ...], touching ranges merge).
 * Past `max` ranges the two with the smallest hole between them merge (over-approximation):
 * returns true when that happened.
 */
export function addRange(r: number[], s: number, e: number, max: number): boolean {
  if (e <= s) return false
  const n = r.length
  // in order: extends (or lies in) the last range
  if (n >= 2 && s >= r[n - 2] && s <= r[n - 1]) {
    if (e > r[n - 1]) r[n - 1] = e
    return false
  }
  // first range ending at or after s
  let i = 0
  while (i < n && r[i + 1] < s) i += 2
  if (i === n || r[i] > e) {
    r.splice(i, 0, s, e)
  } else {
    // merge [s, e) with ranges i.. that it touches
    let j = i
    let hi = e
    while (j < n && r[j] <= e) {
      if (r[j + 1] > hi) hi = r[j + 1]
      j += 2
    }
    const lo = r[i] < s ? r[i] : s
    r.splice(i, j - i, lo, hi)
  }
  if (r.length <= 2 * max) return false
  while (r.length > 2 * Math.max(1, max)) {
    let best = 2
    for (let k = 4; k < r.length; k += 2) if (r[k] - r[k - 1] < r[best] - r[best - 1]) best = k
    r.splice(best - 1, 2)
  }
  return true
}

/** do ranges `r` hold every byte of [s, e)? */
export function rangesCover(r: readonly number[], s: number, e: number): boolean {
  for (let i = 0; i < r.length; i += 2) if (r[i] <= s && r[i + 1] >= e) return true
  return false
}

/** do ranges `r` hold any byte of [s, e)? */
export function rangesOverlap(r: readonly number[], s: number, e: number): boolean {
  for (let i = 0; i < r.length; i += 2) if (r[i] < e && r[i + 1] > s) return true
  return false
}

/** dotted IPv4 text -> unsigned number (0 for anything else) */
function ipv4Number(ip: string): number {
  let n = 0
  let part = 0
  let dots = 0
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i)
    if (c === 46) {
      n = n * 256 + part
      part = 0
      dots++
    } else if (c >= 48 && c <= 57) part = part * 10 + (c - 48)
    else return 0
  }
  return dots === 3 ? n * 256 + part : 0
}

function fragKey(pkt: DecodedPacket): string {
  return `${pkt.src}|${pkt.dst}|${pkt.proto}|${pkt.fragId}`
}

function copy(frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(frame.length)
  out.set(frame)
  return out
}

/**
 * Same-length edits of one direction's stream applied to a packet's payload: the packet carries
 * stream bytes [so, so + len) at `payloadOff` in `frame`. Returns true when a byte was written.
 */
export function applyEdits(frame: Uint8Array, payloadOff: number, so: number, len: number, edits: readonly Edit[]): boolean {
  let changed = false
  const end = so + len
  for (let i = 0; i < edits.length; i++) {
    const e = edits[i]
    if (e.len !== e.data.length) continue
    const s = e.off > so ? e.off : so
    const t = e.off + e.len < end ? e.off + e.len : end
    if (s >= t) continue
    frame.set(e.data.subarray(s - e.off, t - e.off), payloadOff + (s - so))
    changed = true
  }
  return changed
}
