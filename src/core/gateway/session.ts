/**
 * One gateway session: the engine, the per-service judge and the forwarder wired together.
 * Shared by inline mode (frames from libpcap) and tests (frames from captures or builders).
 */
import type {AnalyzerContext, AnalyzerFactory, Pdu} from '../analyzers/types.js'
import {Engine, type EngineFlow, type EngineOptions, type PduJudge} from '../engine/engine.js'
import type {Detection} from '../engine/detection.js'
import type {EveEvent} from '../events/eve.js'
import type {CompiledRule} from '../rules/compile.js'
import {Forwarder, type BypassHooks, type GatewayLimits, type GatewayPort} from './forwarder.js'
import {MAX_NFT_LINE} from './nft.js'
import {serviceKey, type Policy} from './policy.js'
import {ServiceJudge} from './service-judge.js'

export interface DynamicService {
  ip: string
  port: number
  proto: 'tcp' | 'udp'
  protocol: string
  program?: string
}

export interface GatewaySessionOptions {
  detection: Pick<Detection, 'analyzers' | 'rules' | 'protectionsFor'>
  policy: Policy
  ports: readonly [GatewayPort, GatewayPort]
  onEvent: (ev: EveEvent) => void
  failClosed?: boolean
  limits?: Partial<GatewayLimits>
  engine?: Pick<EngineOptions, 'defragPolicy' | 'tcpPolicy' | 'hostPolicy' | 'maxFlows' | 'extra' | 'flowEvents'>
  /** a port learned at run time (portmapper, endpoint mapper, FTP passive) */
  onDynamicService?: (svc: DynamicService) => void
  /**
   * nft commands (the long-lived `nft -i` child): given, flows whose responses nothing needs are
   * bypassed (Forwarder); writes are batched once per event-loop turn
   */
  nftWrite?: (line: string) => void
  /**
   * nft commands whose completion matters (BypassHooks.confirm): `done` once the kernel applied
   * the line; absent, such lines go through nftWrite and nothing waits
   */
  nftConfirm?: (line: string, done: () => void) => void
  /** protocols whose responses may be bypassed (default BYPASS_PROTOCOLS) */
  bypassProtocols?: readonly string[]
}

/**
 * Protocols whose analyzer keeps no state from responses that later requests depend on. HTTP:
 * request framing never depends on the response, except after CONNECT or an Upgrade (the stream
 * stops being HTTP when the server agrees): such flows are never bypassed (see bypassable). Not
 * here: FTP (227/229 replies open data ports), SMTP/IMAP/POP3 (STARTTLS replies, login failures
 * counted by the rate protection), portmapper and endpoint mappers (replies name dynamic ports),
 * TLS, MySQL (the handshake reply decides the client's packet format).
 */
export const BYPASS_PROTOCOLS: readonly string[] = ['http']
/** pending nft lines (bypass adds/refreshes/deletes) before new ones are dropped */
export const MAX_PENDING_NFT_LINES = 65_536

/**
 * Analyzer factories as the gateway uses them: a service whose policy names its protocol adds
 * its port to that analyzer's ports; every analyzer reports dynamic services to the session.
 */
export function gatewayFactories(factories: readonly AnalyzerFactory[], policy: Policy, onDynamic?: (svc: DynamicService) => void): AnalyzerFactory[] {
  return factories.map((f) => {
    const extra = policy.services.filter((s) => s.protocol === f.protocol && s.proto === f.transport && !f.ports.includes(s.port)).map((s) => s.port)
    if (extra.length === 0 && !onDynamic) return f
    const wrapped: AnalyzerFactory = Object.assign(Object.create(f) as AnalyzerFactory, {
      ports: [...f.ports, ...new Set(extra)],
      create: (ctx: AnalyzerContext) => f.create(onDynamic ? {...ctx, dynamicService: onDynamic} : ctx),
    })
    return wrapped
  })
}

export class GatewaySession {
  readonly engine: Engine
  readonly forwarder: Forwarder
  readonly judge: ServiceJudge
  /** nft lines dropped because MAX_PENDING_NFT_LINES were pending */
  nftLinesDropped = 0
  /** per service key (and '' for flows of no service): protocols some enabled rule judges in responses */
  private responseProtocols = new Map<string, Set<string>>()
  /** flows that asked to stop being HTTP (CONNECT, Upgrade): their responses are always judged */
  private readonly keepResponses = new WeakSet<EngineFlow>()
  private readonly bypassProtocols: ReadonlySet<string>
  private pending: string[] = []
  private flushScheduled = false

  constructor(opts: GatewaySessionOptions) {
    let engine: Engine | null = null
    const getEngine = () => engine!
    let fwd: Forwarder | null = null
    this.judge = new ServiceJudge(getEngine, opts.detection.rules, opts.policy, (m, pdu, flow, shadow) => fwd?.onMatch(m, pdu, flow, shadow))
    this.bypassProtocols = new Set(opts.bypassProtocols ?? BYPASS_PROTOCOLS)
    this.responseProtocols = responseProtocols(opts.detection.rules, opts.policy)
    const judge = this.judge
    const keep = this.keepResponses
    // sees every PDU on its way to the rules: CONNECT and Upgrade requests pin a flow's responses
    const watch: PduJudge = {
      judge(pdu, flow, emit) {
        if (pdu.protocol === 'http' && pdu.dir === 'toserver' && leavesHttp(pdu)) keep.add(flow)
        judge.judge(pdu, flow, emit)
      },
      reads: (field, dir) => judge.reads(field, dir),
    }
    engine = new Engine({
      ...opts.engine,
      onEvent: opts.onEvent,
      analyzers: gatewayFactories(opts.detection.analyzers, opts.policy, opts.onDynamicService),
      judge: watch,
      protections: opts.detection.protectionsFor(),
    })
    this.engine = engine
    const write = opts.nftWrite
    const confirm = opts.nftConfirm
    const bypass: BypassHooks | undefined = write === undefined ? undefined : {
      eligible: (flow) => this.bypassable(flow),
      write: (line) => this.queueNft(line, write),
      ...(confirm === undefined ? {} : {confirm: (line: string, done: () => void) => confirm(line, done)}),
    }
    fwd = new Forwarder({engine, ports: opts.ports, onEvent: opts.onEvent, failClosed: opts.failClosed, limits: opts.limits, bypass})
    this.forwarder = fwd
  }

  /** SIGHUP: new rules and policy, established flows kept */
  reload(rules: readonly CompiledRule[], policy: Policy): void {
    this.judge.reload(rules, policy)
    this.engine.rereadFieldNeeds()
    this.responseProtocols = responseProtocols(rules, policy)
  }

  /**
   * May the kernel forward this flow's responses? Its protocol keeps no state from responses
   * (BYPASS_PROTOCOLS), no rule enabled for its service judges that protocol's responses, and
   * it never asked to leave HTTP. Re-asked on every client packet of a bypassed flow: a reload
   * that enables a response rule, or an Upgrade, ends the bypass.
   */
  bypassable(flow: EngineFlow): boolean {
    const proto = flow.appProto
    if (proto === null || !this.bypassProtocols.has(proto) || this.keepResponses.has(flow)) return false
    const key = serviceKey(flow.serverIp, flow.serverPort, flow.proto)
    const needs = this.responseProtocols.get(key) ?? this.responseProtocols.get('')
    return needs === undefined || !needs.has(proto)
  }

  private queueNft(line: string, write: (line: string) => void): void {
    if (this.pending.length >= MAX_PENDING_NFT_LINES) {
      this.nftLinesDropped++
      return
    }
    this.pending.push(line)
    if (this.flushScheduled) return
    this.flushScheduled = true
    setImmediate(() => {
      this.flushScheduled = false
      const lines = this.pending
      this.pending = []
      let batch = ''
      for (const l of lines) {
        if (batch.length > 0 && batch.length + l.length + 2 > MAX_NFT_LINE) {
          write(batch)
          batch = ''
        }
        batch = batch.length === 0 ? l : `${batch}; ${l}`
      }
      if (batch.length > 0) write(batch)
    })
  }
}

/** for each service of the policy (and '' for flows of none): protocols whose responses an enabled rule judges */
function responseProtocols(rules: readonly CompiledRule[], policy: Policy): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>()
  const of = (enabled: (id: string) => boolean): Set<string> => {
    const set = new Set<string>()
    for (const r of rules) if (r.direction === 'toclient' && enabled(r.id)) set.add(r.protocol)
    return set
  }
  for (const s of policy.services) {
    const ids = s.rules ? new Set(s.rules) : null
    out.set(serviceKey(s.ip, s.port, s.proto), of((id) => ids === null || ids.has(id)))
  }
  out.set('', of(() => true))
  return out
}

/** an HTTP request after which the connection may stop carrying HTTP (RFC 9110 §9.3.6, §7.8) */
function leavesHttp(pdu: Pdu): boolean {
  const m = pdu.fields.get('http.method')
  const method = Array.isArray(m) ? m[0]?.v : m?.v
  if (typeof method === 'string' && method.toUpperCase() === 'CONNECT') return true
  // request header values are always built (header_name.* only when a rule reads it)
  return pdu.fields.has('http.header.upgrade')
}
