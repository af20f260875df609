import {Args} from '@oclif/core'
import {PatchpointCommand} from '../../cli/base-command.js'
import {EXIT} from '../../core/errors.js'
import {fieldsFor, optionalProject, ruleDirsFor} from '../../core/rules/fields.js'
import {findRuleFiles, formatLintError, lintRules, type LintError} from '../../core/rules/lint.js'

export interface RulesLintResult {
  /** files and folders checked */
  paths: string[]
  /** rule files read */
  files: number
  /** rules that compiled */
  rules: number
  errors: number
  warnings: number
  problems: LintError[]
}

export class RulesLint extends PatchpointCommand<typeof RulesLint> {
  static override summary = 'Check rule files: YAML, schema, regexes, conditions, fields the analyzers emit, samples.'

  static override description = `Every problem is printed as file:line:col: message. With no PATH: the package pack and the
project's rules/ folder. Exit codes: 0 clean, 1 warnings only, 2 any error.`

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    {description: 'Check rules being written.', command: '<%= config.bin %> <%= command.id %> ./my-rules PP-LOCAL-1.yaml'},
  ]

  static override strict = false

  static override args = {
    path: Args.string({description: 'rule files or folders (default: the rule directories)', required: false}),
  }

  public async run(): Promise<RulesLintResult> {
    const {argv} = await this.parse(RulesLint)
    let paths = (argv as unknown[]).filter((a): a is string => typeof a === 'string')
    if (paths.length === 0) paths = ruleDirsFor(optionalProject(this.flags.project, process.env.PATCHPOINT_PROJECT, process.cwd()))
    const files = findRuleFiles(paths).length
    const {rules, errors: problems} = lintRules(paths, {fieldsFor})
    const errors = problems.filter((p) => p.severity !== 'warning').length
    const warnings = problems.length - errors
    if (!this.jsonEnabled()) {
      for (const p of problems) this.log(formatLintError(p))
      this.log(`${files} file(s), ${rules.length} rule(s): ${errors} error(s), ${warnings} warning(s)`)
    }
    this.setExitCode(errors > 0 ? EXIT.USER : warnings > 0 ? EXIT.FINDINGS : EXIT.OK)
    return {paths, files, rules: rules.length, errors, warnings, problems}
  }
}
