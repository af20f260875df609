/** Helpers for the rule engine's tests and benchmark: build rules and PDUs by hand. */
import {parse} from 'yaml'
import type {Fields, FieldValue, Pdu} from '../analyzers/types.js'
import {compileRule, type CompiledRule} from './compile.js'
import type {RuleDoc} from './types.js'

/** Compile a rule from YAML text (with defaults for the boilerplate keys); throws on problems. */
export function ruleFromYaml(yaml: string, overrides: Partial<RuleDoc> = {}): CompiledRule {
  const doc = {id: 'PP-TEST-1', rev: 1, status: 'test', title: 't', severity: 'low', protocol: 'http', ...(parse(yaml) as object), ...overrides} as RuleDoc
  const {rule, problems} = compileRule(doc)
  if (!rule) throw new Error(problems.map((p) => `${p.path.join('.')}: ${p.message}`).join('; '))
  return rule
}

/** A PDU from a plain object: string/number/bigint values, arrays for multi-valued fields. */
export function pduOf(fields: Record<string, FieldValue['v'] | FieldValue | (FieldValue['v'] | FieldValue)[]>, kind = 'request', protocol = 'http'): Pdu {
  const f: Fields = new Map()
  const fv = (x: FieldValue['v'] | FieldValue): FieldValue => (typeof x === 'object' && x !== null && 'v' in x ? x : {v: x})
  for (const [k, v] of Object.entries(fields)) f.set(k, Array.isArray(v) ? v.map(fv) : fv(v))
  return {protocol, kind, dir: 'toserver', start: 0, end: 1000, fields: f}
}
