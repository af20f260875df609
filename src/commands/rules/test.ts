import {Args} from '@oclif/core'
import {PatchpointCommand} from '../../cli/base-command.js'
import {renderTable} from '../../cli/output.js'
import {EXIT, UserError} from '../../core/errors.js'
import {didYouMean} from '../../core/project/yaml-schema.js'
import {loadRules} from '../../core/rules/engine.js'
import {fieldsFor, optionalProject, ruleDirsFor, testFactoryFor} from '../../core/rules/fields.js'
import {formatLintError} from '../../core/rules/lint.js'
import {testRule, type RuleTestResult} from '../../core/rules/sample-test.js'

export interface RulesTestResult {
  ok: boolean
  passed: number
  failed: number
  rules: RuleTestResult[]
  /** rule files that did not load (file:line:col: message) */
  problems: string[]
}

export class RulesTest extends PatchpointCommand<typeof RulesTest> {
  static override summary = "Run each rule's own samples through the real protocol analyzers."

  static override description = `A malicious sample must match, a benign one must not; the fix, applied to a malicious sample,
must neutralize it; and the verdicts must not change when the sample arrives one byte at a time.
With no ID every rule is tested. Exit codes: 0 all pass, 1 a sample failed, 2 an unknown id or
(when testing every rule) a rule file that does not load.`

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> PP-2021-44228 --json',
  ]

  static override strict = false

  static override args = {
    id: Args.string({description: 'rule ids (default: every rule)', required: false}),
  }

  public async run(): Promise<RulesTestResult> {
    const {argv} = await this.parse(RulesTest)
    const ids = (argv as unknown[]).filter((a): a is string => typeof a === 'string')
    const dirs = ruleDirsFor(optionalProject(this.flags.project, process.env.PATCHPOINT_PROJECT, process.cwd()))
    const loaded = loadRules(dirs, {fieldsFor})
    const problems = loaded.errors.filter((e) => e.severity !== 'warning').map(formatLintError)
    // testing every rule: a file that does not load is a failure; with ids, other files do not matter
    if (ids.length === 0) for (const p of problems) this.logToStderr(`patchpoint: ${p}`)
    let rules = loaded.rules
    if (ids.length > 0) {
      const byId = new Map(rules.map((r) => [r.id, r]))
      const unknown = ids.filter((id) => !byId.has(id))
      if (unknown.length > 0) {
        const guess = didYouMean(unknown[0], [...byId.keys()])
        throw new UserError(`unknown rule '${unknown[0]}'`, {
          code: 'RULE_NOT_FOUND',
          suggestion: guess ? `did you mean '${guess}'?` : 'see `patchpoint rules list`',
        })
      }
      rules = ids.map((id) => byId.get(id)!)
    }
    const results: RuleTestResult[] = rules.map((rule) => {
      const factory = testFactoryFor(rule.protocol)
      if (!factory) {
        return {id: rule.id, ok: false, samples: [{kind: 'malicious', name: '(none)', ok: false, problems: [`no analyzer for protocol '${rule.protocol}'`]}]}
      }
      return testRule(rule, factory)
    })
    const failed = results.filter((r) => !r.ok).length
    const result: RulesTestResult = {ok: failed === 0, passed: results.length - failed, failed, rules: results, problems}
    if (!this.jsonEnabled()) {
      const rows: string[][] = []
      for (const r of results) {
        if (r.samples.length === 0) rows.push([r.id, '-', '(no samples)', 'pass', ''])
        for (const s of r.samples) rows.push([r.id, s.kind, s.name, s.ok ? 'pass' : 'FAIL', s.problems.join('; ')])
      }
      this.log(renderTable(['rule', 'sample', 'name', 'result', 'problem'], rows))
      this.log(`${result.passed} rule(s) passed, ${failed} failed`)
    }
    this.setExitCode(problems.length > 0 && ids.length === 0 ? EXIT.USER : failed > 0 ? EXIT.FINDINGS : EXIT.OK)
    return result
  }
}
