/**
 * Per-service judging: each service of the policy gets its own rule set view (its rule ids, its
 * action override, shadow or not); flows that match no service (dynamic ports) use the default.
 * The engine sees one PduJudge; the gateway sees every enforceable match through `onMatch`.
 */
import type {Direction, Pdu} from '../analyzers/types.js'
import type {Engine, EngineFlow, PduJudge} from '../engine/engine.js'
import type {EveEvent} from '../events/eve.js'
import {RuleJudge} from '../engine/judge.js'
import {RuleSet} from '../rules/engine.js'
import type {CompiledRule} from '../rules/compile.js'
import type {Action, Match} from '../rules/types.js'
import {serviceKey, type Policy, type ServicePolicy} from './policy.js'

export type MatchHook = (match: Match, pdu: Pdu, flow: EngineFlow, shadow: boolean) => void

/**
 * A rule's action on a service: the per-rule override (`protect --rule ID --action`), else the
 * service's or the policy's blanket action, else the rule's own. An experimental rule keeps its
 * own action under a blanket action (`protect --all --action drop` must not turn a log-only
 * heuristic such as PP-EVASION-TCP-PAWS into session kills); only a per-rule override changes it.
 */
export function effectiveAction(rule: CompiledRule, perRule: Readonly<Record<string, Action>> | undefined, blanket: Action | undefined): Action {
  const own = perRule?.[rule.id]
  if (own !== undefined) return own
  if (blanket === undefined || rule.status === 'experimental') return rule.action
  return blanket
}

export class ServiceJudge implements PduJudge {
  private byService = new Map<string, RuleJudge>()
  private fallback!: RuleJudge
  private services = new Map<string, ServicePolicy>()

  constructor(
    private readonly engine: () => Engine,
    rules: readonly CompiledRule[],
    policy: Policy,
    private readonly onMatch: MatchHook,
  ) {
    this.reload(rules, policy)
  }

  /** SIGHUP: new rules and policy; flows keep their analyzers and offsets */
  reload(rules: readonly CompiledRule[], policy: Policy): void {
    const byService = new Map<string, RuleJudge>()
    const services = new Map<string, ServicePolicy>()
    for (const s of policy.services) {
      const ids = s.rules ? new Set(s.rules) : null
      const action = s.action ?? policy.default_action
      const shadow = s.shadow === true
      const set = new RuleSet(rules, {
        enabled: ids ? (r) => ids.has(r.id) : undefined,
        // per-rule overrides from `protect --rule ID --action`, then the service's, then the rule's own
        actionFor: s.rule_actions || action ? (r) => effectiveAction(r, s.rule_actions, action) : undefined,
      })
      byService.set(serviceKey(s.ip, s.port, s.proto), new RuleJudge(this.engine, set, {
        shadow: () => shadow,
        onMatch: (m, pdu, flow) => this.onMatch(m, pdu, flow, shadow),
      }))
      services.set(serviceKey(s.ip, s.port, s.proto), s)
    }
    const da = policy.default_action
    this.fallback = new RuleJudge(this.engine, new RuleSet(rules, {actionFor: da ? (r) => effectiveAction(r, undefined, da) : undefined}), {
      onMatch: (m, pdu, flow) => this.onMatch(m, pdu, flow, false),
    })
    this.byService = byService
    this.services = services
  }

  /**
   * Does a rule of any service, or of the default set, read this field? One engine serves every
   * service, so its analyzers build what any of them reads (the default set holds every rule).
   */
  reads(field: string, dir?: Direction): boolean {
    if (this.fallback.reads(field, dir)) return true
    for (const j of this.byService.values()) if (j.reads(field, dir)) return true
    return false
  }

  serviceOf(flow: EngineFlow): ServicePolicy | undefined {
    return this.services.get(serviceKey(flow.serverIp, flow.serverPort, flow.proto))
  }

  judge(pdu: Pdu, flow: EngineFlow, emit: (ev: EveEvent) => void): void {
    const j = this.byService.get(serviceKey(flow.serverIp, flow.serverPort, flow.proto)) ?? this.fallback
    j.judge(pdu, flow, emit)
  }
}
