import {Args} from '@oclif/core'
import {stringify} from 'yaml'
import {PatchpointCommand} from '../../cli/base-command.js'
import {UserError} from '../../core/errors.js'
import {didYouMean} from '../../core/project/yaml-schema.js'
import {loadRules} from '../../core/rules/engine.js'
import {fieldsFor, optionalProject, ruleDirsFor, summarizeRule, type RuleSummary} from '../../core/rules/fields.js'
import type {AffectsDoc, FixDoc, SelectionDoc} from '../../core/rules/types.js'

export interface RulesShowResult extends RuleSummary {
  description: string
  references: string[]
  affects: AffectsDoc[]
  units: string[]
  detect: Record<string, SelectionDoc>
  condition: string
  fix: FixDoc[]
  samples: {malicious: number; benign: number}
}

export class RulesShow extends PatchpointCommand<typeof RulesShow> {
  static override summary = 'Show everything about one rule: source file, description, affected versions, condition, fix, samples.'

  static override examples = [
    '<%= config.bin %> <%= command.id %> PP-2021-44228',
    '<%= config.bin %> <%= command.id %> PP-2011-3192 --json',
  ]

  static override args = {
    id: Args.string({description: 'rule id, e.g. PP-2021-44228', required: true}),
  }

  public async run(): Promise<RulesShowResult> {
    const want = this.args.id
    const dirs = ruleDirsFor(optionalProject(this.flags.project, process.env.PATCHPOINT_PROJECT, process.cwd()))
    const {rules} = loadRules(dirs, {fieldsFor})
    const rule = rules.find((r) => r.id === want) ?? rules.find((r) => r.id.toLowerCase() === want.toLowerCase())
    if (!rule) {
      const guess = didYouMean(want, rules.map((r) => r.id))
      throw new UserError(`unknown rule '${want}'`, {
        code: 'RULE_NOT_FOUND',
        suggestion: guess ? `did you mean '${guess}'?` : 'see `patchpoint rules list`',
      })
    }
    const d = rule.doc
    const result: RulesShowResult = {
      ...summarizeRule(rule),
      description: d.description?.trimEnd() ?? '',
      references: d.references ?? [],
      affects: d.affects ?? [],
      units: rule.units,
      detect: d.detect,
      condition: d.condition,
      fix: d.fix ?? [],
      samples: {malicious: d.samples?.malicious?.length ?? 0, benign: d.samples?.benign?.length ?? 0},
    }
    if (!this.jsonEnabled()) {
      const r = result
      this.log(`${r.id} (rev ${r.rev}, ${r.status}): ${r.title}`)
      this.log(`file:       ${r.file}`)
      this.log(`severity:   ${r.severity}`)
      this.log(`cves:       ${r.cves.join(', ') || '-'}`)
      this.log(`protocol:   ${r.protocol} ${r.direction}${r.units.length > 0 ? ` (units: ${r.units.join(', ')})` : ''}`)
      this.log(`action:     ${r.action}`)
      this.log(`samples:    ${r.samples.malicious} malicious, ${r.samples.benign} benign`)
      if (r.affects.length > 0) {
        this.log('affects:')
        for (const a of r.affects) {
          this.log(`  ${a.product}: ${(a.versions ?? ['all versions']).join(', ')}${a.fixed ? ` (fixed in ${a.fixed.join(', ')})` : ''}`)
        }
      }
      if (r.references.length > 0) this.log(`references:\n${r.references.map((x) => `  ${x}`).join('\n')}`)
      if (r.description) this.log(`description:\n${r.description.split('\n').map((l) => `  ${l}`).join('\n')}`)
      this.log(`detect:\n${indent(stringify(r.detect))}`)
      this.log(`condition:  ${r.condition}`)
      this.log(r.fix.length > 0 ? `fix:\n${indent(stringify(r.fix))}` : 'fix:        none')
    }
    return result
  }
}

function indent(text: string): string {
  return text.trimEnd().split('\n').map((l) => `  ${l}`).join('\n')
}
