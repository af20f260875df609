/**
 * Proxy mode: `run --proxy LISTEN=UPSTREAM`, a TCP protection proxy per service for hosts where
 * bridging is impossible (no root needed). Each connection gets its own analyzer (chosen by the
 * upstream port, else by content), fed with each direction's bytes; data of a unit not yet
 * judged is held; a fix may change lengths (the rule's edits are applied to the held bytes), a
 * `reply` answers the sender instead of forwarding, a drop closes both sockets.
 */
import net from 'node:net'
import type {Analyzer, AnalyzerFactory, Direction, FlowInfo, Pdu} from '../analyzers/types.js'
import type {Engine, EngineFlow} from '../engine/engine.js'
import {anomalyEvent, flowIdFor, formatEveTimestamp, type EveCommon, type EveEvent} from '../events/eve.js'
import type {AnomalyReport} from '../events/anomaly.js'
import {UserError} from '../errors.js'
import {RuleSet} from '../rules/engine.js'
import {RuleJudge} from '../engine/judge.js'
import type {CompiledRule} from '../rules/compile.js'
import type {Action, Match} from '../rules/types.js'
import {effectiveAction} from './service-judge.js'
import {SharedScope} from '../analyzers/scope.js'

/** bytes held per direction while a unit is pending; beyond it the unit passes unjudged (or the connection closes, fail-closed) */
export const PROXY_HOLD_BYTES = 1024 * 1024
/** connections at once per listener; more are refused */
export const PROXY_MAX_CONNECTIONS = 4096
/** bytes kept for content detection before giving up */
export const PROXY_DETECT_BYTES = 64
export const PROXY_CONNECT_TIMEOUT_MS = 10_000

export interface ProxySpec {
  listenHost: string
  listenPort: number
  upstreamHost: string
  upstreamPort: number
}

/** `0.0.0.0:8080=10.0.0.5:80` or `8080=10.0.0.5:80`; `[::1]:8080=...` for IPv6 */
export function parseProxySpec(text: string): ProxySpec {
  const eq = text.indexOf('=')
  if (eq < 0) throw new UserError(`--proxy ${text}: expected LISTEN=UPSTREAM, e.g. 0.0.0.0:8080=10.0.0.5:80`, {code: 'FLAG_INVALID'})
  const hp = (s: string, what: string, defHost: string | null) => {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]+)):(\d+)$/.exec(s) ?? (defHost !== null ? /^()()(\d+)$/.exec(s) : null)
    if (!m) throw new UserError(`--proxy ${text}: ${what} "${s}" is not HOST:PORT`, {code: 'FLAG_INVALID'})
    const port = Number(m[3])
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UserError(`--proxy ${text}: ${what} port ${m[3]} out of range`, {code: 'FLAG_INVALID'})
    return {host: m[1] || m[2] || defHost || '', port}
  }
  const l = hp(text.slice(0, eq), 'LISTEN', '0.0.0.0')
  const u = hp(text.slice(eq + 1), 'UPSTREAM', null)
  return {listenHost: l.host, listenPort: l.port, upstreamHost: u.host, upstreamPort: u.port}
}

export interface ProxyOptions {
  specs: ProxySpec[]
  analyzers: readonly AnalyzerFactory[]
  rules: readonly CompiledRule[]
  onEvent: (ev: EveEvent) => void
  action?: Action
  failClosed?: boolean
  holdBytes?: number
  extra?: Record<string, unknown>
}

export interface ProxyStats {
  connections: number
  active: number
  bytesToServer: number
  bytesToClient: number
  blocked: number
  fixed: number
  replied: number
  holdOverflows: number
}

interface Side {
  sock: net.Socket
  /** bytes of this direction not yet forwarded, from absolute offset `base` */
  buf: Buffer
  base: number
  /** total bytes received in this direction */
  total: number
  ended: boolean
}

/** A fake engine for RuleJudge: only flowCommon and now are used. */
class ProxyEngineView {
  constructor(private readonly extra: Record<string, unknown> | undefined) {}
  get now(): number {
    return Date.now() * 1000
  }
  flowCommon(flow: EngineFlow, tsUs: number): EveCommon {
    return {
      timestamp: formatEveTimestamp(tsUs), flow_id: flow.id, src_ip: flow.clientIp, src_port: flow.clientPort,
      dest_ip: flow.serverIp, dest_port: flow.serverPort, proto: 'TCP', ...(flow.appProto ? {app_proto: flow.appProto} : {}), ...this.extra,
    }
  }
}

class ProxyConn {
  private analyzer: Analyzer | null = null
  private detectDone = false
  private detectBufs: [Buffer, Buffer] = [Buffer.alloc(0), Buffer.alloc(0)]
  private readonly sides: [Side, Side]
  private matches: Match[] = []
  private closed = false
  private unjudged = false
  readonly flow: EngineFlow

  constructor(private readonly px: ProxyServer, client: net.Socket, upstream: net.Socket, spec: ProxySpec) {
    this.sides = [
      {sock: client, buf: Buffer.alloc(0), base: 0, total: 0, ended: false},
      {sock: upstream, buf: Buffer.alloc(0), base: 0, total: 0, ended: false},
    ]
    const now = Date.now() * 1000
    const clientIp = (client.remoteAddress ?? '').replace(/^::ffff:/, '')
    const clientPort = client.remotePort ?? 0
    this.flow = {
      key: '', id: flowIdFor(clientIp, clientPort, spec.upstreamHost, spec.upstreamPort, 6, now), proto: 6,
      clientIp, clientPort, serverIp: spec.upstreamHost, serverPort: spec.upstreamPort, startUs: now, lastUs: now, idleUs: 0,
      pktsToServer: 0, pktsToClient: 0, bytesToServer: 0, bytesToClient: 0, tcp: null, appProto: null, analyzer: null,
      detectToServer: null, detectToClient: null, detectDone: false, offsets: [0, 0], anomalyCounts: null, alerted: 0, ended: false, lruPrev: null, lruNext: null,
    } as Partial<EngineFlow> as EngineFlow
    client.on('data', (d: Buffer) => this.data(0, d))
    upstream.on('data', (d: Buffer) => this.data(1, d))
    client.on('end', () => this.end(0))
    upstream.on('end', () => this.end(1))
    const onClose = () => this.close()
    client.on('close', onClose)
    upstream.on('close', onClose)
    client.on('error', onClose)
    upstream.on('error', onClose)
  }

  onMatch(m: Match): void {
    this.matches.push(m)
  }

  private data(d: 0 | 1, chunk: Buffer): void {
    if (this.closed) return
    const s = this.sides[d]
    s.total += chunk.length
    if (d === 0) this.px.stats.bytesToServer += chunk.length
    else this.px.stats.bytesToClient += chunk.length
    s.buf = s.buf.length === 0 ? chunk : Buffer.concat([s.buf, chunk])
    const dir: Direction = d === 0 ? 'toserver' : 'toclient'
    this.matches.length = 0
    if (this.analyzer) this.analyzer.data(dir, chunk)
    else if (!this.detectDone) this.detect(d, chunk)
    if (!this.apply()) return
    this.flush(0)
    this.flush(1)
  }

  private detect(d: 0 | 1, chunk: Buffer): void {
    const seen = Buffer.concat([this.detectBufs[d], chunk])
    this.detectBufs[d] = seen
    const dir: Direction = d === 0 ? 'toserver' : 'toclient'
    const px = this.px
    const byPort = px.analyzers.filter((f) => f.transport === 'tcp' && f.ports.includes(this.flow.serverPort))
    let chosen = byPort.find((f) => f.detect(dir, seen)) ?? px.analyzers.find((f) => f.transport === 'tcp' && f.detect(dir, seen))
    if (!chosen) {
      if (seen.length < PROXY_DETECT_BYTES) return
      chosen = byPort[0]
    }
    this.detectDone = true
    if (!chosen) return
    this.flow.appProto = chosen.protocol
    const info: FlowInfo = {clientIp: this.flow.clientIp, clientPort: this.flow.clientPort, serverIp: this.flow.serverIp, serverPort: this.flow.serverPort, transport: 'tcp'}
    this.analyzer = chosen.create({
      flow: info,
      reads: px.fieldReads,
      engine: px.scope,
      emit: (pdu: Pdu) => px.judge.judge(pdu, this.flow, (ev) => px.emit(ev)),
      anomaly: (a: AnomalyReport) => px.emit(anomalyEvent(a, px.view.flowCommon(this.flow, px.view.now))),
    })
    this.flow.analyzer = this.analyzer
    const [ts, tc] = this.detectBufs
    this.detectBufs = [Buffer.alloc(0), Buffer.alloc(0)]
    if (ts.length > 0) this.analyzer.data('toserver', ts)
    if (tc.length > 0) this.analyzer.data('toclient', tc)
  }

  /** enforce the matches of this chunk; false when the connection was closed */
  private apply(): boolean {
    for (const m of this.matches) {
      if (m.action === 'log' || this.px.shadow) continue
      const d = m.rule.direction === 'toserver' ? 0 : 1
      if (m.action === 'drop') {
        this.px.stats.blocked++
        this.close()
        return false
      }
      if (m.reply) {
        this.px.stats.replied++
        const other = this.sides[1 - d]
        const s = this.sides[d]
        // the unit is answered, not forwarded: everything held in its direction is discarded
        s.base += s.buf.length
        s.buf = Buffer.alloc(0)
        other.sock.write(m.reply)
        continue
      }
      this.applyEdits(d, m)
    }
    return true
  }

  private applyEdits(d: 0 | 1, m: Match): void {
    const s = this.sides[d]
    // edits sorted by offset, applied back to front so earlier offsets stay valid
    const edits = [...m.edits].sort((a, b) => b.off - a.off)
    let buf = s.buf
    for (const e of edits) {
      const at = e.off - s.base
      if (at < 0 || at + e.len > buf.length) continue // bytes already forwarded: too late
      buf = Buffer.concat([buf.subarray(0, at), Buffer.from(e.data), buf.subarray(at + e.len)])
    }
    // offsets of the analyzer stay those of the received stream: account for the size change
    const delta = buf.length - s.buf.length
    s.buf = buf
    s.base -= delta
    this.px.stats.fixed++
  }

  private pending(d: 0 | 1): number {
    if (this.unjudged) return -1
    if (!this.detectDone) return 0
    return this.analyzer ? this.analyzer.pendingFrom(d === 0 ? 'toserver' : 'toclient') : -1
  }

  private flush(d: 0 | 1): void {
    const s = this.sides[d]
    if (s.buf.length === 0) return
    const p = this.pending(d)
    let upto = s.buf.length
    if (p >= 0) upto = Math.max(0, Math.min(upto, p - s.base))
    if (upto === 0 && s.buf.length > this.px.holdBytes) {
      this.px.stats.holdOverflows++
      this.px.emit(anomalyEvent({type: 'limit', event: 'gateway.hold_overflow', detail: {held_bytes: s.buf.length, fail_closed: this.px.failClosed}}, this.px.view.flowCommon(this.flow, this.px.view.now)))
      if (this.px.failClosed) {
        this.close()
        return
      }
      this.unjudged = true
      upto = s.buf.length
    }
    if (upto === 0) return
    const out = s.buf.subarray(0, upto)
    s.buf = s.buf.subarray(upto)
    s.base += upto
    this.sides[1 - d].sock.write(out)
    if (s.buf.length === 0 && s.ended) this.sides[1 - d].sock.end()
  }

  private end(d: 0 | 1): void {
    const s = this.sides[d]
    s.ended = true
    this.analyzer?.end(d === 0 ? 'toserver' : 'toclient')
    this.matches.length = 0
    if (s.buf.length > 0) {
      // the peer closed: what it sent is complete, judge what the analyzer could and pass the rest
      this.unjudged = this.unjudged || this.pending(d) >= 0
      this.flush(d)
    } else this.sides[1 - d].sock.end()
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.flow.ended = true
    this.px.stats.active--
    for (const s of this.sides) s.sock.destroy()
  }
}

export class ProxyServer {
  readonly stats: ProxyStats = {connections: 0, active: 0, bytesToServer: 0, bytesToClient: 0, blocked: 0, fixed: 0, replied: 0, holdOverflows: 0}
  readonly analyzers: readonly AnalyzerFactory[]
  readonly view: ProxyEngineView
  /** what the analyzers of every connection share (engine-wide budgets), on the wall clock */
  readonly scope: SharedScope
  judge!: RuleJudge
  /** the judge's field needs: one function per judge (analyzers remember their answers per function) */
  fieldReads!: (field: string, dir?: Direction) => boolean
  readonly holdBytes: number
  readonly failClosed: boolean
  shadow = false
  private servers: net.Server[] = []
  private conns = new Set<ProxyConn>()
  private current: ProxyConn | null = null

  constructor(private readonly opts: ProxyOptions) {
    this.analyzers = opts.analyzers
    this.view = new ProxyEngineView(opts.extra)
    this.scope = new SharedScope(() => this.view.now)
    this.holdBytes = opts.holdBytes ?? PROXY_HOLD_BYTES
    this.failClosed = opts.failClosed === true
    this.setRules(opts.rules, opts.action)
  }

  private setRules(rules: readonly CompiledRule[], action?: Action): void {
    const set = new RuleSet(rules, {actionFor: action ? (r) => effectiveAction(r, undefined, action) : undefined})
    const judge = new RuleJudge(() => this.view as unknown as Engine, set, {
      onMatch: (m, _pdu, flow) => {
        for (const c of this.conns) if (c.flow === flow) c.onMatch(m)
      },
    })
    this.judge = judge
    this.fieldReads = (field, dir) => judge.reads(field, dir)
  }

  /** new rules for connections that start from now on (running ones keep their analyzers' field needs) */
  reload(rules: readonly CompiledRule[], action?: Action): void {
    this.setRules(rules, action)
  }

  emit(ev: EveEvent): void {
    this.opts.onEvent(ev)
  }

  /** listen on every spec; resolves with the bound addresses */
  async listen(): Promise<{listen: string; upstream: string}[]> {
    const out: {listen: string; upstream: string}[] = []
    for (const spec of this.opts.specs) {
      const server = net.createServer({pauseOnConnect: false}, (client) => this.accept(client, spec))
      server.maxConnections = PROXY_MAX_CONNECTIONS
      await new Promise<void>((resolve, reject) => {
        server.once('error', (e) => reject(new UserError(`--proxy: cannot listen on ${spec.listenHost}:${spec.listenPort}: ${(e as NodeJS.ErrnoException).code ?? e.message}`, {code: 'PROXY_LISTEN'})))
        server.listen(spec.listenPort, spec.listenHost, () => resolve())
      })
      this.servers.push(server)
      const a = server.address() as net.AddressInfo
      out.push({listen: `${a.address}:${a.port}`, upstream: `${spec.upstreamHost}:${spec.upstreamPort}`})
    }
    return out
  }

  private accept(client: net.Socket, spec: ProxySpec): void {
    this.stats.connections++
    this.stats.active++
    client.pause()
    const upstream = net.connect({host: spec.upstreamHost, port: spec.upstreamPort, timeout: PROXY_CONNECT_TIMEOUT_MS})
    upstream.pause()
    const conn = new ProxyConn(this, client, upstream, spec)
    this.conns.add(conn)
    this.current = conn
    upstream.once('connect', () => {
      upstream.setTimeout(0)
      client.resume()
      upstream.resume()
    })
    upstream.once('timeout', () => conn.close())
    const forget = () => this.conns.delete(conn)
    client.once('close', forget)
    upstream.once('close', forget)
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.close()
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))))
    void this.current
  }
}
