import path from 'node:path'
import {stringify} from 'yaml'
import {PatchpointCommand} from '../../cli/base-command.js'
import {EXIT} from '../../core/errors.js'
import {checkConfig, configError} from '../../core/project/config.js'
import type {PatchpointConfig} from '../../core/project/config-schema.js'
import {formatDiagnostic} from '../../core/project/yaml-schema.js'

export interface ConfigCheckResult {
  project: string
  config: string
  valid: true
  warnings: string[]
  effective: PatchpointConfig
}

export class ConfigCheck extends PatchpointCommand<typeof ConfigCheck> {
  static override summary = 'Validate patchpoint.yaml and print the effective configuration (defaults applied).'

  static override description = `Problems are reported as file:line:col: message. Exit codes: 0 valid, 1 valid with
warnings (e.g. duplicate host entries), 2 invalid.`

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --project /etc/patchpoint --json',
  ]

  public async run(): Promise<ConfigCheckResult> {
    const loc = this.project()
    const name = path.relative(process.cwd(), loc.configPath)
    const display = name === '' || name.startsWith('..') || path.isAbsolute(name) ? loc.configPath : name
    const res = await checkConfig(loc.configPath, display)
    if (!res.config) throw configError(res.diagnostics)
    const warnings = res.diagnostics.filter((d) => d.severity === 'warning').map(formatDiagnostic)
    for (const w of warnings) this.logToStderr(`patchpoint: ${w}`)
    this.log(`# effective configuration of ${loc.configPath}`)
    this.log(stringify(res.config).trimEnd())
    if (warnings.length > 0) this.setExitCode(EXIT.FINDINGS)
    return {project: loc.dir, config: loc.configPath, valid: true, warnings, effective: res.config}
  }
}
