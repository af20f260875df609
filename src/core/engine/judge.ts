/**
 * The rule layer as the engine sees it: each PDU an analyzer emits is evaluated by the rule set,
 * and each match becomes an EVE alert carrying patchpoint's action, rule id and CVEs. The
 * gateway applies the action; replay reports what it would have been.
 */
import type {Direction, Pdu} from '../analyzers/types.js'
import type {EveAlertEvent, EveEvent} from '../events/eve.js'
import {fnv1a52} from '../events/eve.js'
import type {RuleSet} from '../rules/engine.js'
import type {Match} from '../rules/types.js'
import type {CompiledRule} from '../rules/compile.js'
import type {Engine, EngineFlow, PduJudge} from './engine.js'

/** Suricata wants a numeric signature id: a stable one per rule id, in a range of our own. */
export function signatureId(ruleId: string): number {
  return 2_100_000_000 + (fnv1a52([ruleId]) % 100_000_000)
}

const SEVERITY: Record<CompiledRule['severity'], 1 | 2 | 3> = {critical: 1, high: 1, medium: 2, low: 3}

export interface RuleJudgeOptions {
  /** rules judged but never enforced: alerts say what would have happened */
  shadow?: (rule: CompiledRule) => boolean
  /** called for every match (the gateway enforces from here) */
  onMatch?: (match: Match, pdu: Pdu, flow: EngineFlow) => void
}

export class RuleJudge implements PduJudge {
  /** signature ids already hashed: one entry per rule of the set at most */
  private readonly sids = new Map<CompiledRule, number>()

  constructor(
    private readonly engine: () => Engine,
    private readonly rules: RuleSet,
    private readonly opts: RuleJudgeOptions = {},
  ) {}

  reads(field: string, dir?: Direction): boolean {
    return this.rules.reads(field, dir)
  }

  judge(pdu: Pdu, flow: EngineFlow, emit: (ev: EveEvent) => void): void {
    const matches = this.rules.evaluate(pdu)
    for (let i = 0; i < matches.length; i++) {
      const m = matches[i]
      const shadow = this.opts.shadow?.(m.rule) ?? false
      const engine = this.engine()
      // flowCommon gives a fresh object: the alert's keys follow its own (no copy of it)
      const ev = engine.flowCommon(flow, engine.now) as EveAlertEvent
      ev.event_type = 'alert'
      ev.alert = {
        action: m.action === 'log' || shadow ? 'allowed' : 'blocked',
        gid: 1,
        signature_id: this.signatureIdOf(m.rule),
        rev: m.rule.rev,
        signature: `${m.rule.id} ${m.rule.title}`,
        category: 'Attempted Administrator Privilege Gain',
        severity: SEVERITY[m.rule.severity],
        metadata: {cve: m.rule.cves, evidence: [`${m.evidence.field}: ${m.evidence.value}`]},
      }
      ev.patchpoint = {
        action: m.action,
        rule_id: m.rule.id,
        cves: m.rule.cves,
        gateway: String((ev as {host?: string}).host ?? ''),
        ...(shadow ? {shadow: true} : {}),
      }
      if (m.note) (ev.patchpoint as unknown as Record<string, unknown>).note = m.note
      emit(ev)
      this.opts.onMatch?.(m, pdu, flow)
    }
  }

  private signatureIdOf(rule: CompiledRule): number {
    let sid = this.sids.get(rule)
    if (sid === undefined) {
      sid = signatureId(rule.id)
      this.sids.set(rule, sid)
    }
    return sid
  }
}
