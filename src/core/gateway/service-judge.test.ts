import {describe, expect, it} from 'vitest'
import {loadRules} from '../rules/engine.js'
import {packageRulesDir} from '../rules/rule-schema.js'
import {effectiveAction} from './service-judge.js'

const {rules} = loadRules(packageRulesDir)
const byId = (id: string) => {
  const r = rules.find((x) => x.id === id)
  if (!r) throw new Error(`no rule ${id}`)
  return r
}

describe('effectiveAction', () => {
  it('a per-rule override wins, then the blanket action, then the rule\'s own', () => {
    const r = byId('PP-2015-1635')
    expect(r.status).not.toBe('experimental')
    expect(effectiveAction(r, {'PP-2015-1635': 'fix'}, 'drop')).toBe('fix')
    expect(effectiveAction(r, {'PP-OTHER': 'fix'}, 'log')).toBe('log')
    expect(effectiveAction(r, undefined, undefined)).toBe(r.action)
  })

  it('an experimental rule keeps its own action under a blanket action; only a per-rule override changes it', () => {
    const paws = byId('PP-EVASION-TCP-PAWS')
    expect(paws.status).toBe('experimental')
    expect(paws.action).toBe('log')
    expect(effectiveAction(paws, undefined, 'drop')).toBe('log')
    expect(effectiveAction(paws, {}, 'drop')).toBe('log')
    expect(effectiveAction(paws, {'PP-EVASION-TCP-PAWS': 'drop'}, 'log')).toBe('drop')
    for (const r of rules.filter((x) => x.status === 'experimental')) expect(effectiveAction(r, undefined, 'drop')).toBe(r.action)
  })
})
