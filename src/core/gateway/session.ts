/**
 * One gateway session: the engine, the per-service judge and the forwarder wired together.
 * Shared by inline mode (frames from libpcap) and tests (frames from captures or builders).
 */
import type {AnalyzerContext, AnalyzerFactory} from '../analyzers/types.js'
import {Engine, type EngineOptions} from '../engine/engine.js'
import type {Detection} from '../engine/detection.js'
import type {EveEvent} from '../events/eve.js'
import type {CompiledRule} from '../rules/compile.js'
import {Forwarder, type GatewayLimits, type GatewayPort} from './forwarder.js'
import type {Policy} from './policy.js'
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
}

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

  constructor(opts: GatewaySessionOptions) {
    let engine: Engine | null = null
    const getEngine = () => engine!
    let fwd: Forwarder | null = null
    this.judge = new ServiceJudge(getEngine, opts.detection.rules, opts.policy, (m, pdu, flow, shadow) => fwd?.onMatch(m, pdu, flow, shadow))
    engine = new Engine({
      ...opts.engine,
      onEvent: opts.onEvent,
      analyzers: gatewayFactories(opts.detection.analyzers, opts.policy, opts.onDynamicService),
      judge: this.judge,
      protections: opts.detection.protectionsFor(),
    })
    this.engine = engine
    fwd = new Forwarder({engine, ports: opts.ports, onEvent: opts.onEvent, failClosed: opts.failClosed, limits: opts.limits})
    this.forwarder = fwd
  }

  /** SIGHUP: new rules and policy, established flows kept */
  reload(rules: readonly CompiledRule[], policy: Policy): void {
    this.judge.reload(rules, policy)
  }
}
