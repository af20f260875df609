/**
 * Passive learning: services from observed traffic, no packet sent.
 *
 * - A SYN-ACK names an open port on its sender (whatever the port number); its TTL and window
 *   give OS hints.
 * - The first bytes a server sends on a reassembled stream (Engine streamTap) are matched by the
 *   same probe matchers as an active scan: banners by the NULL probe's, answers to a client's
 *   request by every probe's (HTTP Server headers, ...).
 * - Portmapper DUMP replies seen on TCP 111 add the dynamic RPC ports they list.
 *
 * Bounded: servers tracked, bytes kept per stream, flows sampled per service (PASSIVE_LIMITS).
 */
import type {AnomalySink} from '../events/anomaly.js'
import {ignoreAnomalies} from '../events/anomaly.js'
import type {OsHint} from '../inventory/inventory.js'
import {Engine, type EngineFlow} from '../engine/engine.js'
import {PacketDecoder, SYN, ACK} from '../packet/decode.js'
import {openCapture} from '../capture/reader.js'
import type {Direction} from '../analyzers/types.js'
import {matchAnyProbe, type ProbeSet, type ServiceMatch} from './probes.js'
import {ttlHint, windowHint} from './oshints.js'
import {parsePmapDumpReply, readRecord, rpcServices, PMAP_PORT} from './sunrpc.js'
import {CapLink, type RawLink} from './raw.js'

export const PASSIVE_LIMITS = {
  /** distinct (server, port) pairs tracked */
  maxServices: 65_536,
  /** server bytes kept per stream for matching */
  streamBytes: 4096,
  /** streams examined per service before giving up on identifying it */
  streamsPerService: 8,
  /** streams being collected at once */
  maxOpenStreams: 16_384,
}

export interface PassiveService {
  ip: string
  port: number
  proto: 'tcp' | 'udp'
  /** how it was seen: syn-ack, stream, rpc */
  seen: string[]
  match?: ServiceMatch
  rpc?: {program: number; name?: string; product?: string; versions: number[]}
}

export interface PassiveHost {
  ip: string
  mac?: string
  os_hints: OsHint[]
}

interface Collect {
  buf: Uint8Array
  len: number
  clientSpoke: boolean
}

export class PassiveLearner {
  readonly services = new Map<string, PassiveService>()
  readonly hosts = new Map<string, PassiveHost>()
  private readonly decoder = new PacketDecoder()
  private readonly engine: Engine
  private readonly streams = new Map<string, Collect>()
  private readonly tries = new Map<string, number>()
  frames = 0

  constructor(private readonly probes: ProbeSet, private readonly onAnomaly: AnomalySink = ignoreAnomalies, private readonly limits = PASSIVE_LIMITS) {
    this.engine = new Engine({onEvent: () => {}, streamTap: (flow, dir, data) => this.tap(flow, dir, data)})
  }

  /** one frame; `data` may be reused by the caller afterwards */
  frame(data: Uint8Array, linktype: number, tsUs: number): void {
    this.frames++
    const p = this.decoder.decode(data, linktype)
    if (p.l4 === 'tcp' && (p.tcpFlags & (SYN | ACK)) === (SYN | ACK) && p.ipVersion !== 0) {
      const svc = this.service(p.src, p.srcPort, 'tcp')
      if (svc && !svc.seen.includes('syn-ack')) svc.seen.push('syn-ack')
      const h = this.host(p.src)
      if (h && h.os_hints.length === 0) {
        const a = ttlHint(p.ttl)
        const b = windowHint(p.ttl, p.window)
        if (a) h.os_hints.push(a)
        if (b) h.os_hints.push(b)
        if (p.srcMacOffset >= 0) h.mac = p.srcMac
      }
    }
    this.engine.processFrame(data, linktype, tsUs)
  }

  private host(ip: string): PassiveHost | undefined {
    let h = this.hosts.get(ip)
    if (!h) {
      if (this.hosts.size >= this.limits.maxServices) return undefined
      this.hosts.set(ip, h = {ip, os_hints: []})
    }
    return h
  }

  private service(ip: string, port: number, proto: 'tcp' | 'udp'): PassiveService | undefined {
    const k = `${ip}|${proto}|${port}`
    let s = this.services.get(k)
    if (!s) {
      if (this.services.size >= this.limits.maxServices) {
        this.onAnomaly({type: 'limit', event: 'passive.max_services', detail: {limit: this.limits.maxServices}})
        return undefined
      }
      this.services.set(k, s = {ip, port, proto, seen: []})
    }
    return s
  }

  private tap(flow: EngineFlow, dir: Direction, data: Uint8Array): void {
    if (flow.proto !== 6) return
    const skey = `${flow.serverIp}|tcp|${flow.serverPort}`
    const known = this.services.get(skey)
    if (known?.match && !known.match.soft && flow.serverPort !== PMAP_PORT) return
    let c = this.streams.get(flow.key)
    if (!c) {
      if ((this.tries.get(skey) ?? 0) >= this.limits.streamsPerService) return
      if (this.streams.size >= this.limits.maxOpenStreams) {
        this.onAnomaly({type: 'limit', event: 'passive.max_open_streams', detail: {limit: this.limits.maxOpenStreams}})
        return
      }
      this.tries.set(skey, (this.tries.get(skey) ?? 0) + 1)
      c = {buf: new Uint8Array(this.limits.streamBytes), len: 0, clientSpoke: false}
      this.streams.set(flow.key, c)
    }
    if (dir === 'toserver') {
      if (c.len === 0) c.clientSpoke = true
      return
    }
    if (c.len >= c.buf.length) return
    const take = Math.min(data.length, c.buf.length - c.len)
    c.buf.set(data.subarray(0, take), c.len)
    c.len += take
    const bytes = c.buf.subarray(0, c.len)
    const svc = this.service(flow.serverIp, flow.serverPort, 'tcp')
    if (!svc) return
    if (!svc.seen.includes('stream')) svc.seen.push('stream')
    if (flow.serverPort === PMAP_PORT) this.rpcReply(flow.serverIp, bytes)
    const m = matchAnyProbe(this.probes, bytes, c.clientSpoke ? ['GetRequest', 'NULL'] : ['NULL'])
    if (m && (!svc.match || (svc.match.soft && !m.soft) || (!svc.match.product && m.product))) svc.match = m
    if (c.len >= c.buf.length || (m && !m.soft && m.product)) {
      // done with this stream: free the buffer
      c.len = c.buf.length
      c.buf = new Uint8Array(0)
    }
  }

  private rpcReply(ip: string, bytes: Uint8Array): void {
    const r = readRecord(bytes)
    if (r.status !== 'complete') return
    const dump = parsePmapDumpReply(r.record)
    if (!dump) return
    for (const s of rpcServices(dump.entries)) {
      const svc = this.service(ip, s.port, s.proto)
      if (!svc) return
      svc.rpc = {program: s.program, name: s.name, product: s.product, versions: s.versions}
      if (!svc.seen.includes('rpc')) svc.seen.push('rpc')
    }
  }

  /** end of input: flush the engine (streams still open are matched as they are) */
  finish(): void {
    this.engine.finish()
  }

  results(): {hosts: PassiveHost[]; services: PassiveService[]} {
    const services = [...this.services.values()].filter((s) => s.seen.includes('syn-ack') || s.match || s.rpc)
    for (const s of services) this.host(s.ip)
    return {hosts: [...this.hosts.values()].filter((h) => services.some((s) => s.ip === h.ip)), services}
  }
}

/** Learn from a capture file. Throws CaptureError for unreadable files (caller reports). */
export function learnFromPcap(file: string, probes: ProbeSet, onAnomaly?: AnomalySink): {hosts: PassiveHost[]; services: PassiveService[]; frames: number} {
  const l = new PassiveLearner(probes, onAnomaly)
  const r = openCapture(file)
  try {
    for (let rec = r.next(); rec; rec = r.next()) l.frame(rec.data, rec.linktype, rec.tsUs)
  } finally {
    r.close()
  }
  l.finish()
  return {...l.results(), frames: l.frames}
}

export const LIVE_LIMITS = {
  /** longest --duration, ms (a day) */
  maxDurationMs: 24 * 3600 * 1000,
  /** capture filter: everything the learner can use */
  filter: 'tcp or udp',
}

export interface LiveOptions {
  onAnomaly?: AnomalySink
  /** stop early */
  signal?: AbortSignal
  /** called once the capture is open (tests start their traffic then) */
  onReady?: () => void
  /** test seam: frame source (default a libpcap handle on the interface, see CapLink) */
  openLink?: (iface: string, filter: string) => RawLink
}

/**
 * Learn from live traffic on `iface` for `durationMs` through libpcap (`cap`), with the same
 * PassiveLearner as a capture file. CapLink keeps the one Buffer cap writes every packet into
 * referenced for the handle's life; each frame is a view of it, valid only during the call
 * (the learner copies what it keeps). Throws a permission UserError when capture is not allowed.
 */
export async function learnLive(iface: string, durationMs: number, probes: ProbeSet, o: LiveOptions = {}): Promise<{hosts: PassiveHost[]; services: PassiveService[]; frames: number}> {
  const l = new PassiveLearner(probes, o.onAnomaly)
  const link = (o.openLink ?? ((i, f) => new CapLink(i, f)))(iface, LIVE_LIMITS.filter)
  link.onFrame((frame) => l.frame(frame, 1, Math.round((performance.timeOrigin + performance.now()) * 1000)))
  try {
    o.onReady?.()
    const ms = Math.max(0, Math.min(durationMs, LIVE_LIMITS.maxDurationMs))
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms)
      function done() {
        clearTimeout(timer)
        o.signal?.removeEventListener('abort', done)
        resolve()
      }
      if (o.signal?.aborted) done()
      else o.signal?.addEventListener('abort', done)
    })
  } finally {
    link.close()
  }
  l.finish()
  return {...l.results(), frames: l.frames}
}
