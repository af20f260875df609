import {Flags} from '@oclif/core'
import {PatchpointCommand} from '../../cli/base-command.js'
import {readTrustedKeys, verifyBundle} from '../../core/bundle/bundle.js'
import {installBundle, readBundleSource, rollbackRules} from '../../core/bundle/install.js'
import type {RulesVersion} from '../../core/bundle/install.js'
import {UserError} from '../../core/errors.js'
import {fieldsFor} from '../../core/rules/fields.js'
import {formatLintError, lintRules} from '../../core/rules/lint.js'

export interface RulesUpdateResult {
  /** false when the bundle was already installed */
  changed: boolean
  source: string | null
  current: RulesVersion
  previous: RulesVersion | null
  rulesDir: string
}

export class RulesUpdate extends PatchpointCommand<typeof RulesUpdate> {
  static override summary = "Install a signed rule bundle into the project's rules/, atomically; or roll back."

  static override description = `The bundle (made by \`patchpoint rules bundle\`) must be signed by a key in
.patchpoint/trusted-keys/*.pub, every file must match the signed manifest, and its rules must
pass lint. Then the project's rules/ is switched to the new version in one atomic step and the
version before is kept for --rollback. A bundle older than the installed one is refused (a
replayed old bundle) unless --allow-downgrade. Anything wrong: nothing changes, one line says
why, exit 2. A running gateway takes the new rules on SIGHUP (systemctl reload patchpoint).`

  static override examples = [
    '<%= config.bin %> <%= command.id %> --from rules-2026-03.bundle.json',
    '<%= config.bin %> <%= command.id %> --from https://rules.example.net/latest.bundle.json',
    '<%= config.bin %> <%= command.id %> --rollback',
  ]

  static override flags = {
    from: Flags.string({summary: 'Bundle file, folder (its newest *.bundle.json) or http(s) URL.', helpValue: 'FILE|DIR|URL', exactlyOne: ['from', 'rollback']}),
    rollback: Flags.boolean({summary: 'Switch back to the rules installed before the last update.'}),
    'allow-downgrade': Flags.boolean({summary: 'Install a bundle older than the installed one.'}),
  }

  public async run(): Promise<RulesUpdateResult> {
    const f = this.flags
    const project = this.project()
    if (f.rollback) {
      const r = await rollbackRules(project.dir)
      if (!this.jsonEnabled()) this.log(`rules rolled back to ${describe(r.current)}`)
      return {...r, source: null}
    }
    const {text, source} = await readBundleSource(f.from as string)
    const problems: string[] = []
    const keys = await readTrustedKeys(project.stateDir, problems)
    for (const p of problems) this.logToStderr(`patchpoint: ${p}`)
    const v = verifyBundle(text, keys)
    if (!v.ok) throw new UserError(`${source}: ${v.reason}; rules unchanged`, {code: 'BUNDLE_REFUSED'})
    const lint = (dir: string) => lintRules([dir], {fieldsFor}).errors.filter((e) => e.severity === 'error').map(formatLintError)
    const r = await installBundle(project.dir, v, {lint, allowDowngrade: f['allow-downgrade']})
    if (!this.jsonEnabled()) {
      this.log(r.changed
        ? `rules updated to ${describe(r.current)} (previous kept for --rollback); reload a running gateway with SIGHUP`
        : `rules ${describe(r.current)} already installed; nothing changed`)
    }
    return {...r, source}
  }
}

function describe(v: RulesVersion): string {
  return v.created ? `bundle ${v.id.slice(0, 12)} of ${v.created} (${v.files} files, key ${v.key_id})` : `the hand-made rules folder (${v.dir})`
}
