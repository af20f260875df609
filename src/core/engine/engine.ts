/**
 * The packet engine: frames in; decoded, defragmented, flow-tracked, reassembled streams out,
 * judged by protocol analyzers and rules; EVE events out. The same engine serves `replay` (frames
 * from a capture file) and the inline gateway (frames from libpcap): it never reads files or
 * sockets itself, and time is the packets' own, so a replay gives the same events every time.
 */
import type {AnomalyReport} from '../events/anomaly.js'
import {PacketDecoder, type DecodedPacket} from '../packet/decode.js'
import {Defragmenter, type DefragPolicy} from '../flow/defrag.js'
import {TcpMemoryPool, TcpSession, type StreamSink, type TcpOverlapPolicy, type TcpSegmentInput} from '../flow/tcp.js'
import {FLOW_LIMITS, FlowTable, flowKey, type EvictReason, type FlowBase, type LruList} from '../flow/table.js'
import type {Analyzer, AnalyzerFactory, Direction, FlowInfo, Pdu} from '../analyzers/types.js'
import {anomalyEvent, eveProto, flowIdFor, formatEveTimestamp, type EveCommon, type EveEvent} from '../events/eve.js'
import {anomalyPdu} from '../protections/anomaly-fields.js'
import {SharedScope} from '../analyzers/scope.js'

export const ENGINE_LIMITS = {
  /** bytes of each direction kept for protocol detection before giving up */
  detectBytes: 64,
  /** TCP reassembly memory across all sessions */
  tcpMemoryBytes: 256 * 1024 * 1024,
  /** anomaly events of one code per flow (later ones are only counted) */
  anomaliesPerFlowCode: 1,
  /** anomaly events of one code outside flows, per second of packet time */
  globalAnomaliesPerSecond: 20,
  /** run idle expiry at most this often (packet time) */
  expireEveryUs: 1e6,
}

/** FIN, SYN, RST and ACK: a bare SYN has only SYN among them */
const TCP_HANDSHAKE_FLAGS = 0x17
const NO_BYTES = new Uint8Array(0)

export interface HostPolicy {
  defrag?: DefragPolicy
  tcp?: TcpOverlapPolicy
}

/** How protections report: through the engine's anomaly path for `flow` (null: the current packet). */
export type ProtectionReport = (a: AnomalyReport, flow: EngineFlow | null) => void

/** Generic protections (src/core/protections/): see flows start, every PDU, and the clock. */
export interface EngineProtections {
  /** a new flow (after it entered the table) */
  onFlowStart(flow: EngineFlow, report: ProtectionReport): void
  /** every PDU an analyzer emits, before the judge */
  onPdu(pdu: Pdu, flow: EngineFlow, report: ProtectionReport): void
  /** bytes the client sent were delivered (every in-order client chunk: the flow may hold an incomplete request) */
  onClientData(flow: EngineFlow, report: ProtectionReport): void
  /** the once-per-second (packet time) expiry tick */
  tick(nowUs: number, report: ProtectionReport): void
}

/** What the engine asks of the rule layer: judge one PDU. */
export interface PduJudge {
  judge(pdu: Pdu, flow: EngineFlow, emit: (ev: EveEvent) => void): void
  /** does any rule read this field (in PDUs of `dir`)? (absent: every field may be read; see AnalyzerContext.reads) */
  reads?(field: string, dir?: Direction): boolean
}

export interface EngineOptions {
  onEvent: (ev: EveEvent) => void
  defragPolicy?: DefragPolicy
  tcpPolicy?: TcpOverlapPolicy
  /** per destination host policy (from the project's hosts: section / OS hints) */
  hostPolicy?: (ip: string) => HostPolicy | undefined
  /** analyzers to run; none = flows and streams only */
  analyzers?: readonly AnalyzerFactory[]
  judge?: PduJudge
  protections?: EngineProtections
  /** sees every reassembled byte (for --write-streams) */
  streamTap?: (flow: EngineFlow, dir: Direction, data: Uint8Array) => void
  /** write a `flow` event when each flow ends */
  flowEvents?: boolean
  maxFlows?: number
  /** flows of which only a bare SYN was seen, at most (default: a quarter of maxFlows) */
  maxEmbryonicFlows?: number
  /** fields added to every event (pcap_filename, gateway id) */
  extra?: Record<string, unknown>
}

export interface EngineStats {
  packets: number
  bytes: number
  decodeErrors: number
  truncated: number
  flows: number
  tcpStreams: number
  anomalies: number
  alerts: number
  fragments: number
  reassembledDatagrams: number
  flowsEvicted: number
  /** the largest number of flows held at once */
  peakFlows: number
}

export interface EngineFlow {
  key: string
  /** EVE flow_id; 0 until an event needs it (see flowCommon) */
  id: number
  proto: number
  clientIp: string
  clientPort: number
  serverIp: string
  serverPort: number
  startUs: number
  lastUs: number
  idleUs: number
  pktsToServer: number
  pktsToClient: number
  bytesToServer: number
  bytesToClient: number
  tcp: TcpSession | null
  appProto: string | null
  analyzer: Analyzer | null
  /** detection: bytes seen per direction before an analyzer was chosen */
  detectToServer: Uint8Array | null
  detectToClient: Uint8Array | null
  detectDone: boolean
  /** absolute stream offsets (bytes delivered + gaps) per direction: [toserver, toclient] */
  offsets: [number, number]
  /** the SYN of a flow nothing else has been seen of yet (its TCP session starts with the next packet) */
  pendingSyn: TcpSegmentInput | null
  /** anomaly events per code in this flow (created on the first anomaly) */
  anomalyCounts: Map<string, number> | null
  alerted: number
  ended: boolean
  lruPrev: FlowBase | null
  lruNext: FlowBase | null
  lruList: LruList | null
  v4: boolean
  v4lo: number
  v4hi: number
  v4ports: number
  hashNext: FlowBase | null
  /** 4 or 6 */
  family: number
  /** IPv4: the addresses as signed 32-bit numbers (direction tests and keys without strings); 0 for IPv6 */
  clientAddr4: number
  serverAddr4: number
  /** per-flow state of the generic protections (the engine never reads it) */
  protection: object | null
}

/**
 * What few flows need: set on first write (a scan's or a flood's flows never carry a byte, end
 * without an event and are never asked for their key or their addresses as text).
 */
class FlowExtra {
  id = 0
  clientIp: string | null = null
  serverIp: string | null = null
  key: string | null = null
  appProto: string | null = null
  detectToServer: Uint8Array | null = null
  detectToClient: Uint8Array | null = null
  anomalyCounts: Map<string, number> | null = null
  alerted = 0
  readonly offsets: [number, number] = [0, 0]
}

/**
 * The engine's flow. IPv4 flows keep their addresses as numbers: the text forms (and the
 * table key, which only non-IPv4 lookups and the gateway use) are built on first use, and most
 * flows of a scan or a flood never need them. Fields few flows set live in a {@link FlowExtra}
 * made on first write (a flow is held for its whole idle timeout: every field is copied by each
 * scavenge it survives). Every field is initialised with a value of its own kind: a field first
 * set to `undefined` (a class field without initialiser) holds later doubles (the packet times)
 * as a new heap number per write.
 */
class Flow implements EngineFlow {
  readonly proto: number = 0
  readonly clientPort: number = 0
  readonly serverPort: number = 0
  readonly clientAddr4: number = 0
  readonly serverAddr4: number = 0
  readonly startUs: number = 0
  lastUs = 0
  idleUs = 0
  detectDone = false
  pktsToServer = 0
  pktsToClient = 0
  bytesToServer = 0
  bytesToClient = 0
  tcp: TcpSession | null = null
  analyzer: Analyzer | null = null
  pendingSyn: TcpSegmentInput | null = null
  protection: object | null = null
  ended = false
  lruPrev: FlowBase | null = null
  lruNext: FlowBase | null = null
  lruList: LruList | null = null
  /** IPv4 (family 4); IPv4 flows in the table are found by the tuple below (FlowTable.setV4Tuple) */
  v4 = false
  v4lo = 0
  v4hi = 0
  v4ports = 0
  hashNext: FlowBase | null = null
  private extra: FlowExtra | null = null

  constructor(
    proto: number,
    clientIp: string | null,
    clientPort: number,
    serverIp: string | null,
    serverPort: number,
    clientAddr4: number,
    serverAddr4: number,
    startUs: number,
    idleUs: number,
    detectDone: boolean,
    family: number,
  ) {
    this.proto = proto
    this.clientPort = clientPort
    this.serverPort = serverPort
    this.clientAddr4 = clientAddr4
    this.serverAddr4 = serverAddr4
    this.startUs = startUs
    this.lastUs = startUs
    this.idleUs = idleUs
    this.detectDone = detectDone
    this.v4 = family === 4
    if (clientIp !== null || serverIp !== null) {
      const x = this.more()
      x.clientIp = clientIp
      x.serverIp = serverIp
    }
  }

  private more(): FlowExtra {
    return (this.extra ??= new FlowExtra())
  }

  get family(): number {
    return this.v4 ? 4 : 6
  }

  get clientIp(): string {
    const x = this.more()
    return (x.clientIp ??= formatIpv4(this.clientAddr4))
  }

  get serverIp(): string {
    const x = this.more()
    return (x.serverIp ??= formatIpv4(this.serverAddr4))
  }

  get key(): string {
    const x = this.more()
    return (x.key ??= flowKey(this.proto, this.clientIp, this.clientPort, this.serverIp, this.serverPort))
  }

  get offsets(): [number, number] {
    return this.more().offsets
  }

  get id(): number {
    return this.extra === null ? 0 : this.extra.id
  }

  set id(v: number) {
    if (v !== 0 || this.extra !== null) this.more().id = v
  }

  get appProto(): string | null {
    return this.extra === null ? null : this.extra.appProto
  }

  set appProto(v: string | null) {
    if (v !== null || this.extra !== null) this.more().appProto = v
  }

  get detectToServer(): Uint8Array | null {
    return this.extra === null ? null : this.extra.detectToServer
  }

  set detectToServer(v: Uint8Array | null) {
    if (v !== null || this.extra !== null) this.more().detectToServer = v
  }

  get detectToClient(): Uint8Array | null {
    return this.extra === null ? null : this.extra.detectToClient
  }

  set detectToClient(v: Uint8Array | null) {
    if (v !== null || this.extra !== null) this.more().detectToClient = v
  }

  get anomalyCounts(): Map<string, number> | null {
    return this.extra === null ? null : this.extra.anomalyCounts
  }

  set anomalyCounts(v: Map<string, number> | null) {
    if (v !== null || this.extra !== null) this.more().anomalyCounts = v
  }

  get alerted(): number {
    return this.extra === null ? 0 : this.extra.alerted
  }

  set alerted(v: number) {
    if (v !== 0 || this.extra !== null) this.more().alerted = v
  }
}

/** a bare SYN kept until its flow goes on (fixed shape, no payload) */
class SynCopy implements TcpSegmentInput {
  readonly seq: number
  readonly ack: number
  readonly flags: number
  readonly window: number
  readonly urgentPointer: number
  readonly payload = NO_BYTES
  readonly tsVal: number | undefined
  readonly tsEcr: number | undefined
  readonly windowScale: number | undefined

  constructor(s: TcpSegmentInput) {
    this.seq = s.seq
    this.ack = s.ack
    this.flags = s.flags
    this.window = s.window
    this.urgentPointer = s.urgentPointer
    this.tsVal = s.tsVal
    this.tsEcr = s.tsEcr
    this.windowScale = s.windowScale
  }
}

/** analyzer lookup key of a transport port: TCP ports as they are, UDP ports above them */
function portKey(proto: number, port: number): number {
  return proto === 6 ? port : 65536 + port
}

function formatIpv4(a: number): string {
  return (a >>> 24) + '.' + ((a >>> 16) & 255) + '.' + ((a >>> 8) & 255) + '.' + (a & 255)
}

/**
 * Where the last processed packet landed: its flow, direction and the stream offsets its payload
 * covers. The inline gateway reads it after each `processFrame` to decide the packet's fate.
 */
export interface PacketPlacement {
  flow: EngineFlow | null
  fromClient: boolean
  /** absolute stream offset of the payload's first byte (TCP), -1 when unknown or not TCP */
  streamOffset: number
  payloadLength: number
  /** the packet was a fragment held by the defragmenter (nothing to forward yet) */
  heldFragment: boolean
  /**
   * the packet completed a fragmented datagram: the reassembled datagram (from its IP header; a
   * buffer the defragmenter built) that the flow and offsets describe, else null
   */
  datagram: Uint8Array | null
}

export class Engine {
  /** valid after each processFrame, until the next */
  readonly placement: PacketPlacement = {flow: null, fromClient: true, streamOffset: -1, payloadLength: 0, heldFragment: false, datagram: null}
  readonly stats: EngineStats = {
    packets: 0, bytes: 0, decodeErrors: 0, truncated: 0, flows: 0, tcpStreams: 0, anomalies: 0,
    alerts: 0, fragments: 0, reassembledDatagrams: 0, flowsEvicted: 0, peakFlows: 0,
  }
  private readonly decoder = new PacketDecoder()
  private readonly defrag: Defragmenter
  private readonly table: FlowTable<EngineFlow>
  private readonly maxEmbryonic: number
  private readonly tcpMemory = new TcpMemoryPool(ENGINE_LIMITS.tcpMemoryBytes)
  /** analyzers by (transport, port): see portKey */
  private readonly analyzersByPort = new Map<number, AnalyzerFactory[]>()
  private nowUs = 0
  private readonly seg: TcpSegmentInput = {
    seq: 0, ack: 0, flags: 0, window: 0, urgentPointer: 0, payload: new Uint8Array(0),
    tsVal: undefined, tsEcr: undefined, windowScale: undefined,
  }
  private lastExpireUs = 0
  private readonly globalAnomalyWindow = new Map<string, {second: number; count: number}>()
  /** the packet being processed: anomalies without a flow still name its addresses */
  private current: DecodedPacket | null = null
  private readonly protectionReport: ProtectionReport = (a, flow) => this.reportAnomaly(a, flow)
  /**
   * the judge's field needs, handed to each analyzer (AnalyzerContext.reads); analyzers remember
   * their answers per function, so a new function (rereadFieldNeeds) means new answers
   */
  private fieldReads: ((field: string, dir?: Direction) => boolean) | undefined
  /** what the analyzers of this engine share across flows (budgets of the whole engine) */
  private readonly analyzerScope = new SharedScope(() => this.nowUs)

  constructor(private readonly opts: EngineOptions) {
    this.rereadFieldNeeds()
    this.defrag = new Defragmenter({
      defaultPolicy: opts.defragPolicy ?? 'first',
      policyFor: (dst) => opts.hostPolicy?.(dst)?.defrag,
      onAnomaly: (a) => this.reportAnomaly(a, null),
    })
    this.table = new FlowTable<EngineFlow>((flow, reason) => this.endFlow(flow, reason), opts.maxFlows ?? FLOW_LIMITS.maxFlows)
    this.maxEmbryonic = Math.max(1, opts.maxEmbryonicFlows ?? Math.floor((opts.maxFlows ?? FLOW_LIMITS.maxFlows) / 4))
    for (const f of opts.analyzers ?? []) {
      for (const port of f.ports) {
        const k = portKey(f.transport === 'tcp' ? 6 : 17, port)
        const list = this.analyzersByPort.get(k) ?? []
        list.push(f)
        this.analyzersByPort.set(k, list)
      }
    }
  }

  /**
   * The judge's rules changed (a reload): analyzers of flows that start from now on ask it again
   * which fields to build. Flows already running keep their analyzers and their answers.
   */
  rereadFieldNeeds(): void {
    const judge = this.opts.judge
    this.fieldReads = judge?.reads === undefined ? undefined : (field, dir) => judge.reads!(field, dir)
  }

  /**
   * one captured frame: `data`, or `data[start, end)` (a record in a capture reader's buffer);
   * the bytes may be reused by the caller after return
   */
  processFrame(data: Uint8Array, linktype: number, tsUs: number, start = 0, end = data.length): void {
    this.stats.packets++
    this.stats.bytes += end - start
    this.advanceClock(tsUs)
    const pl = this.placement
    pl.flow = null
    pl.streamOffset = -1
    pl.payloadLength = 0
    pl.heldFragment = false
    pl.datagram = null
    const pkt = this.decoder.decode(data, linktype, start, end)
    this.handleDecoded(pkt)
  }

  private advanceClock(tsUs: number): void {
    if (tsUs > this.nowUs) this.nowUs = tsUs
    if (this.nowUs - this.lastExpireUs >= ENGINE_LIMITS.expireEveryUs) {
      this.lastExpireUs = this.nowUs
      this.table.expire(this.nowUs)
      this.defrag.expire(this.nowUs)
      this.opts.protections?.tick(this.nowUs, this.protectionReport)
    }
  }

  private handleDecoded(pkt: DecodedPacket): void {
    this.current = pkt
    if (pkt.truncated) this.stats.truncated++
    for (const code of pkt.anomalies) {
      this.stats.decodeErrors++
      this.reportAnomaly({type: 'decode', event: code}, null)
    }
    if (pkt.ipVersion === 0) return
    if (pkt.isFragment) {
      this.stats.fragments++
      const datagram = this.defrag.add({
        family: pkt.ipVersion as 4 | 6,
        src: pkt.src,
        dst: pkt.dst,
        proto: pkt.proto,
        id: pkt.fragId,
        offset: pkt.fragOffset,
        moreFragments: pkt.moreFragments,
        data: pkt.fragData,
        header: pkt.ipHeader,
        prevNextHeaderOffset: pkt.prevNextHeaderOffset >= 0 ? pkt.prevNextHeaderOffset : undefined,
        tsUs: this.nowUs,
      })
      if (!datagram) {
        this.placement.heldFragment = true
        return
      }
      this.stats.reassembledDatagrams++
      this.placement.datagram = datagram
      const whole = this.decoder.decodeIp(datagram)
      this.current = whole
      for (const code of whole.anomalies) this.reportAnomaly({type: 'decode', event: code}, null)
      this.handleTransport(whole)
      return
    }
    this.handleTransport(pkt)
  }

  private handleTransport(pkt: DecodedPacket): void {
    if (pkt.truncated && pkt.l4Offset < 0) return
    const proto = pkt.proto
    const hasPorts = proto === 6 || proto === 17
    const sport = hasPorts ? pkt.srcPort : 0
    const dport = hasPorts ? pkt.dstPort : 0
    if (hasPorts && pkt.l4Offset < 0) return
    // IPv4 (nearly all traffic): found by the tuple as numbers, no string per packet
    const v4 = pkt.ipVersion === 4
    const src4 = v4 ? pkt.src4 : 0
    const dst4 = v4 ? pkt.dst4 : 0
    let flow = v4 ? this.table.get4(proto, src4, sport, dst4, dport) : this.table.get(flowKey(proto, pkt.src, sport, pkt.dst, dport))
    if (!flow) {
      flow = this.newFlow(pkt, sport, dport)
      if (v4) this.table.setV4Tuple(flow, src4, sport, dst4, dport)
      // a bare SYN starts an embryonic flow: its own timeout class, capped apart from the rest
      const embryonic = proto === 6 && (pkt.tcpFlags & TCP_HANDSHAKE_FLAGS) === 0x02 && pkt.payloadLength === 0
      if (embryonic) flow.idleUs = FLOW_LIMITS.tcpEmbryonicIdleUs
      this.table.add(flow, embryonic ? this.maxEmbryonic : Number.POSITIVE_INFINITY)
      this.stats.flows++
      if (this.table.size > this.stats.peakFlows) this.stats.peakFlows = this.table.size
      this.opts.protections?.onFlowStart(flow, this.protectionReport)
    }
    this.table.touch(flow, this.nowUs)
    const fromClient = sport === flow.clientPort && (v4 ? src4 === flow.clientAddr4 : pkt.src === flow.clientIp)
    if (fromClient) {
      flow.pktsToServer++
      flow.bytesToServer += pkt.ipTotalLength
    } else {
      flow.pktsToClient++
      flow.bytesToClient += pkt.ipTotalLength
    }
    const pl = this.placement
    pl.flow = flow
    pl.fromClient = fromClient
    pl.payloadLength = pkt.payloadLength
    if (proto === 6) {
      // one reused segment object: the reassembler reads it during the call and keeps nothing.
      // The 32-bit fields go in as int32 (the reassembler reads them `>>> 0`): small integers in
      // V8, where uint32 values past 2^31 were a heap number per field and packet (and per kept SYN)
      const seg = this.seg
      seg.seq = pkt.seq | 0
      seg.ack = pkt.ack | 0
      seg.flags = pkt.tcpFlags
      seg.window = pkt.window
      seg.urgentPointer = pkt.urgentPointer
      seg.payload = pkt.payload
      seg.tsVal = pkt.hasTimestamp ? pkt.tsVal | 0 : undefined
      seg.tsEcr = pkt.hasTimestamp ? pkt.tsEcr | 0 : undefined
      seg.windowScale = pkt.windowScale >= 0 ? pkt.windowScale : undefined
      if (!flow.tcp) {
        // A bare SYN (most of a scan or a flood): remember it, and start reassembly only when the
        // conversation goes on; a flow that never does costs a few fields, not a TCP session.
        if ((pkt.tcpFlags & TCP_HANDSHAKE_FLAGS) === 0x02 && pkt.payloadLength === 0 && fromClient) {
          flow.pendingSyn = new SynCopy(seg)
          return
        }
        this.startTcp(flow)
        if (flow.pendingSyn) {
          flow.tcp!.onSegment(true, flow.pendingSyn)
          flow.pendingSyn = null
        }
      }
      flow.tcp!.onSegment(fromClient, seg)
      pl.streamOffset = pkt.payloadLength > 0 ? flow.tcp!.offsetOf(fromClient, (pkt.seq + ((pkt.tcpFlags & 0x02) !== 0 ? 1 : 0)) >>> 0) : -1
      const state = flow.tcp!.state
      flow.idleUs = state === 'established' ? FLOW_LIMITS.tcpEstablishedIdleUs
        : state === 'closed' || state === 'reset' ? FLOW_LIMITS.tcpClosedIdleUs
          : FLOW_LIMITS.tcpOtherIdleUs
    } else if (proto === 17 && pkt.payloadLength > 0) {
      this.deliver(flow, fromClient ? 'toserver' : 'toclient', pkt.payload)
    }
  }

  /** a new flow of `pkt` (IPv4: addresses stay numbers until their text is asked for) */
  private newFlow(pkt: DecodedPacket, sport: number, dport: number): Flow {
    // Who is the client: the SYN's sender; the SYN-ACK's receiver; otherwise the side on the
    // higher port (a client's ephemeral port), the sender when ports tie.
    let clientIsSrc = true
    if (pkt.proto === 6) {
      const syn = (pkt.tcpFlags & 0x02) !== 0
      const ack = (pkt.tcpFlags & 0x10) !== 0
      if (syn) clientIsSrc = !ack
      else clientIsSrc = this.isServerPort(pkt.proto, dport, sport)
    } else if (pkt.proto === 17) {
      clientIsSrc = this.isServerPort(pkt.proto, dport, sport)
    }
    const idleUs = pkt.proto === 6 ? FLOW_LIMITS.tcpOtherIdleUs : pkt.proto === 17 ? FLOW_LIMITS.udpIdleUs : FLOW_LIMITS.otherIdleUs
    const detectDone = (this.opts.analyzers ?? []).length === 0
    const clientPort = clientIsSrc ? sport : dport
    const serverPort = clientIsSrc ? dport : sport
    if (pkt.ipVersion === 4) {
      const src4 = pkt.src4
      const dst4 = pkt.dst4
      return new Flow(pkt.proto, null, clientPort, null, serverPort, clientIsSrc ? src4 : dst4, clientIsSrc ? dst4 : src4, this.nowUs, idleUs, detectDone, 4)
    }
    const src = pkt.src
    const dst = pkt.dst
    return new Flow(pkt.proto, clientIsSrc ? src : dst, clientPort, clientIsSrc ? dst : src, serverPort, 0, 0, this.nowUs, idleUs, detectDone, 6)
  }

  /** true when `dport` looks like the server side of (sport -> dport) */
  private isServerPort(proto: number, dport: number, sport: number): boolean {
    const dKnown = this.analyzersByPort.has(portKey(proto, dport))
    const sKnown = this.analyzersByPort.has(portKey(proto, sport))
    if (dKnown !== sKnown) return dKnown
    return dport <= sport
  }

  private startTcp(flow: EngineFlow): void {
    this.stats.tcpStreams++
    const policy = this.opts.hostPolicy?.(flow.serverIp)?.tcp ?? this.opts.tcpPolicy ?? 'first'
    flow.tcp = new TcpSession({
      policy,
      memory: this.tcpMemory,
      onAnomaly: (a) => this.reportAnomaly(a, flow),
      toServer: new FlowSink(this, flow, 'toserver'),
      toClient: new FlowSink(this, flow, 'toclient'),
    })
  }

  /** in-order bytes of one direction (a TCP stream chunk or a UDP datagram) */
  deliver(flow: EngineFlow, dir: Direction, data: Uint8Array): void {
    const i = dir === 'toserver' ? 0 : 1
    if (i === 0 && data.length > 0) this.opts.protections?.onClientData(flow, this.protectionReport)
    flow.offsets[i] += data.length
    this.opts.streamTap?.(flow, dir, data)
    if (flow.analyzer) {
      flow.analyzer.data(dir, data)
      return
    }
    if (flow.detectDone) return
    this.detect(flow, dir, data)
  }

  private detect(flow: EngineFlow, dir: Direction, data: Uint8Array): void {
    const toServer = dir === 'toserver'
    const prev = toServer ? flow.detectToServer : flow.detectToClient
    // undecided flows hold every byte so far (under detectBytes plus one chunk): the analyzer
    // chosen later must see the stream from its first byte. `seen` is the caller's view when
    // nothing was held: it is copied only when kept past this call (`new Uint8Array(view)`, never
    // `.slice()`, which on a Buffer is a view into the capture buffer that the next packet overwrites)
    const seen = prev ? concat(prev, data) : data
    if (toServer) flow.detectToServer = seen
    else flow.detectToClient = seen
    const transport = flow.proto === 6 ? 'tcp' : 'udp'
    const byPort = this.analyzersByPort.get(portKey(flow.proto, flow.serverPort)) ?? []
    let chosen: AnalyzerFactory | undefined
    for (const f of byPort) if (f.detect(dir, seen)) { chosen = f; break }
    if (!chosen) {
      for (const f of this.opts.analyzers ?? []) {
        if (f.transport === transport && !byPort.includes(f) && f.detect(dir, seen)) { chosen = f; break }
      }
    }
    if (!chosen) {
      const full = (flow.detectToServer?.length ?? 0) >= ENGINE_LIMITS.detectBytes || (flow.detectToClient?.length ?? 0) >= ENGINE_LIMITS.detectBytes
      if (full || flow.proto === 17) {
        // UDP: one datagram decides; TCP: 64 bytes without a match
        if (flow.proto === 17 && byPort.length > 0) chosen = byPort[0]
        else {
          flow.detectDone = true
          flow.detectToServer = flow.detectToClient = null
          return
        }
      } else {
        if (prev === null) {
          if (toServer) flow.detectToServer = new Uint8Array(data)
          else flow.detectToClient = new Uint8Array(data)
        }
        return
      }
    }
    flow.detectDone = true
    flow.appProto = chosen.protocol
    const info: FlowInfo = {
      clientIp: flow.clientIp, clientPort: flow.clientPort, serverIp: flow.serverIp, serverPort: flow.serverPort,
      transport,
    }
    const judge = this.opts.judge
    const protections = this.opts.protections
    // one alert sink per flow, not a closure per PDU
    const alert = (ev: EveEvent): void => this.emitAlert(ev, flow)
    flow.analyzer = chosen.create({
      flow: info,
      reads: this.fieldReads,
      engine: this.analyzerScope,
      emit: (pdu) => {
        protections?.onPdu(pdu, flow, this.protectionReport)
        judge?.judge(pdu, flow, alert)
      },
      anomaly: (a) => this.reportAnomaly(a, flow),
    })
    // replay what detection held, toserver first when both have bytes (a client that spoke first)
    const ts = flow.detectToServer
    const tc = flow.detectToClient
    flow.detectToServer = flow.detectToClient = null
    const serverFirst = dir === 'toclient' && ts === null
    if (serverFirst) {
      if (tc) flow.analyzer.data('toclient', tc)
    } else {
      if (ts) flow.analyzer.data('toserver', ts)
      if (tc) flow.analyzer.data('toclient', tc)
    }
  }

  private emitAlert(ev: EveEvent, flow: EngineFlow): void {
    this.stats.alerts++
    flow.alerted++
    this.opts.onEvent(ev)
  }

  private reportAnomaly(a: AnomalyReport, flow: EngineFlow | null): void {
    this.stats.anomalies++
    if (flow) {
      flow.anomalyCounts ??= new Map()
      const n = (flow.anomalyCounts.get(a.event) ?? 0) + 1
      flow.anomalyCounts.set(a.event, n)
      if (n > ENGINE_LIMITS.anomaliesPerFlowCode) return
      this.opts.onEvent(anomalyEvent(a, this.flowCommon(flow, this.nowUs)))
      this.judgeAnomaly(a, flow)
      return
    }
    const second = Math.floor(this.nowUs / 1e6)
    let w = this.globalAnomalyWindow.get(a.event)
    if (!w || w.second !== second) {
      if (!w && this.globalAnomalyWindow.size > 1000) this.globalAnomalyWindow.clear()
      w = {second, count: 0}
      this.globalAnomalyWindow.set(a.event, w)
    }
    if (++w.count > ENGINE_LIMITS.globalAnomaliesPerSecond) return
    const pkt = this.current
    const common: EveCommon = {timestamp: formatEveTimestamp(this.nowUs), ...this.opts.extra}
    if (pkt && pkt.ipVersion !== 0) {
      const hasPorts = (pkt.proto === 6 || pkt.proto === 17) && pkt.l4Offset >= 0
      common.src_ip = pkt.src
      common.dest_ip = pkt.dst
      if (hasPorts) {
        common.src_port = pkt.srcPort
        common.dest_port = pkt.dstPort
      }
      common.proto = eveProto(pkt.proto)
    }
    this.opts.onEvent(anomalyEvent(a, common))
    if (this.opts.judge && pkt && pkt.ipVersion !== 0) {
      // not part of a tracked flow (a fragment, a malformed header): judge it on a transient
      // flow made from the packet's addresses
      const hasPorts = (pkt.proto === 6 || pkt.proto === 17) && pkt.l4Offset >= 0
      const flow = this.newFlow(pkt, hasPorts ? pkt.srcPort : 0, hasPorts ? pkt.dstPort : 0)
      flow.detectDone = true
      this.judgeAnomaly(a, flow)
    }
  }

  /**
   * Anomalies are judged like protocol units (protocol 'anomaly', fields anomaly.event and
   * anomaly.type), so evasions such as conflicting TCP overlaps become rules with actions.
   */
  private judgeAnomaly(a: AnomalyReport, flow: EngineFlow): void {
    const judge = this.opts.judge
    if (!judge) return
    judge.judge(anomalyPdu(a), flow, (ev) => this.emitAlert(ev, flow))
  }

  /** the common EVE fields of a flow: client as source, server as destination */
  flowCommon(flow: EngineFlow, tsUs: number): EveCommon {
    if (flow.id === 0) flow.id = flowIdFor(flow.clientIp, flow.clientPort, flow.serverIp, flow.serverPort, flow.proto, flow.startUs)
    const common: EveCommon = {
      timestamp: formatEveTimestamp(tsUs),
      flow_id: flow.id,
      src_ip: flow.clientIp,
      dest_ip: flow.serverIp,
      proto: eveProto(flow.proto),
    }
    if (flow.proto === 6 || flow.proto === 17) {
      common.src_port = flow.clientPort
      common.dest_port = flow.serverPort
    }
    if (flow.appProto) common.app_proto = flow.appProto
    return Object.assign(common, this.opts.extra)
  }

  private endFlow(flow: EngineFlow, reason: EvictReason): void {
    if (flow.ended) return
    flow.ended = true
    if (reason === 'limit') this.stats.flowsEvicted++
    if (flow.tcp) flow.tcp.close(reason === 'timeout' ? 'timeout' : 'close')
    else if (flow.analyzer) {
      flow.analyzer.end('toserver')
      flow.analyzer.end('toclient')
    }
    if (this.opts.flowEvents) {
      this.opts.onEvent({
        ...this.flowCommon(flow, flow.startUs),
        event_type: 'flow',
        flow: {
          pkts_toserver: flow.pktsToServer,
          pkts_toclient: flow.pktsToClient,
          bytes_toserver: flow.bytesToServer,
          bytes_toclient: flow.bytesToClient,
          start: formatEveTimestamp(flow.startUs),
          end: formatEveTimestamp(flow.lastUs),
          age: Math.round((flow.lastUs - flow.startUs) / 1e6),
          state: flow.tcp ? (flow.tcp.state === 'established' ? 'established' : 'closed') : 'new',
          reason: reason === 'timeout' ? 'timeout' : reason === 'limit' ? 'forced' : 'shutdown',
          alerted: flow.alerted > 0,
        },
      })
    }
    // An ended flow that outlived a scavenge sits in the old generation until the next full GC;
    // what it still points to would survive every scavenge until then (and be promoted in turn).
    flow.pendingSyn = null
    flow.detectToServer = flow.detectToClient = null
  }

  /** end of input: close every flow and flush what reassembly still holds */
  finish(): void {
    this.table.flush()
  }

  /** packet time of the packet being processed, microseconds */
  get now(): number {
    return this.nowUs
  }

  get flowCount(): number {
    return this.table.size
  }
}

/** One direction of a TCP flow, as the reassembler's consumer (no closures per flow). */
class FlowSink implements StreamSink {
  constructor(
    private readonly engine: Engine,
    private readonly flow: EngineFlow,
    private readonly dir: Direction,
  ) {}

  onData(data: Uint8Array): void {
    this.engine.deliver(this.flow, this.dir, data)
  }

  onGap(length: number): void {
    this.flow.offsets[this.dir === 'toserver' ? 0 : 1] += length
    this.flow.analyzer?.gap(this.dir, length)
  }

  onEnd(): void {
    this.flow.analyzer?.end(this.dir)
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length)
  out.set(a)
  out.set(b, a.length)
  return out
}
