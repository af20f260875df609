import {Flags} from '@oclif/core'
import {PatchpointCommand} from '../../cli/base-command.js'
import {renderTable} from '../../cli/output.js'
import {loadRules} from '../../core/rules/engine.js'
import {fieldsFor, optionalProject, ruleDirsFor, ruleMatches, summarizeRule, type RuleSummary} from '../../core/rules/fields.js'
import {formatLintError} from '../../core/rules/lint.js'

export interface RulesListResult {
  /** the directories read */
  dirs: string[]
  rules: RuleSummary[]
  /** rule files that failed to load (see `patchpoint rules lint`), as file:line:col: message */
  problems: string[]
}

export class RulesList extends PatchpointCommand<typeof RulesList> {
  static override summary = 'List the virtual-patch rules: the package pack plus the project\'s rules/ folder.'

  static override description = `Shows id, revision, status, severity, CVEs, affected products, protocol and default action of
every rule that loads. Filters combine (all must match). Works outside a project (package rules
only). Rule files that do not load are counted on stderr; see \`patchpoint rules lint\`.`

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    {description: 'Rules for one product.', command: '<%= config.bin %> <%= command.id %> --product apache'},
    {description: 'Is a CVE covered?', command: '<%= config.bin %> <%= command.id %> --cve CVE-2021-44228 --json'},
  ]

  static override flags = {
    product: Flags.string({summary: "Only rules affecting a product whose name contains TEXT (e.g. 'apache').", helpValue: 'TEXT'}),
    protocol: Flags.string({summary: 'Only rules for this protocol (http, smtp, tls, ...).', helpValue: 'NAME'}),
    cve: Flags.string({summary: 'Only rules for this CVE id.', helpValue: 'CVE-YYYY-N'}),
    status: Flags.option({options: ['experimental', 'test', 'stable', 'deprecated'] as const, summary: 'Only rules with this status.'})(),
  }

  public async run(): Promise<RulesListResult> {
    const f = this.flags
    const dirs = ruleDirsFor(optionalProject(f.project, process.env.PATCHPOINT_PROJECT, process.cwd()))
    const loaded = loadRules(dirs, {fieldsFor})
    const rules = loaded.rules.map(summarizeRule)
      .filter((r) => ruleMatches(r, {product: f.product, protocol: f.protocol, cve: f.cve, status: f.status}))
      .sort((a, b) => a.id.localeCompare(b.id))
    const problems = loaded.errors.filter((e) => e.severity !== 'warning').map(formatLintError)
    if (problems.length > 0) {
      this.logToStderr(`patchpoint: ${problems.length} problem(s) in rule files; those rules are not listed (run \`patchpoint rules lint\`)`)
    }
    if (!this.jsonEnabled()) {
      this.log(renderTable(
        ['id', 'rev', 'status', 'severity', 'cves', 'products', 'protocol', 'action'],
        rules.map((r) => [r.id, r.rev, r.status, r.severity, r.cves.join(' '), r.products.join(' '), r.protocol, r.action]),
        {align: ['left', 'right']},
      ))
      this.log(`${rules.length} rule(s)`)
    }
    return {dirs, rules, problems}
  }
}
