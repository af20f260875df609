import {Args, Flags} from '@oclif/core'
import {PatchpointCommand} from '../cli/base-command.js'
import {renderTable} from '../cli/output.js'
import {mergeResults, runPicker, selectionOps} from '../cli/protect-picker.js'
import {runProtect, splitTargetWords, type ProtectOp, type ProtectResult} from '../core/protect/protect.js'
import type {ServiceView} from '../core/protect/compile.js'
import type {Action} from '../core/rules/types.js'
import {UserError} from '../core/errors.js'

/** Exit code of --detailed-exitcode when something changed (or would, with --dry-run). */
export const EXIT_CHANGED = 3

export class Protect extends PatchpointCommand<typeof Protect> {
  static override summary = 'Choose which virtual patches protect which service, and retire them when the real patch lands.'

  static override description = `With no arguments, shows per inventory service the recommended rules (product and version
match the rule's affected ranges; "version unknown", "candidates", "generic" and "by protocol"
say how sure the match is), the assigned rules, the action and the retired virtual patches.

TLS: a service that speaks TLS first (https, imaps...) is judged on its TLS records only, so it
gets the TLS rules (Heartbleed), judged against the OpenSSL version its banner names when it
names one; the rules of what it carries cannot see inside, and protect warns which of them its
product needs. Mail and FTP services (STARTTLS, AUTH TLS) get the TLS rules beside their own.

The choices live in policy.yaml in the project (readable, diffable, hand-editable, validated
with file:line:col errors); every run compiles it into .patchpoint/policy.json, which \`run\`
enforces (SIGHUP reloads it). An ONC RPC or DCE/RPC service is assigned by program/interface
(HOST/rpc:PROGRAM), so protection follows it when its port changes at the next fingerprint.

Retirement: when the inventory shows a service at a version outside a rule's affected range
(the vendor patch is in), the rule is retired at the next \`protect\` run, with the date and the
evidence in .patchpoint/retired.json (read by \`report\`). It comes back if the version goes back.

--action with --rule sets a per-rule override; without --rule, the service's action.
Without selection flags, in a terminal (stdin and stdout a TTY, CI unset), an interactive picker
chooses services, their rules, the action and shadow mode (w writes, q quits); elsewhere the
table is printed.

Scripting: the same run twice changes nothing the second time. --json prints {changed, diff,
written, services, retired}; use \`changed_when: (out.stdout | from_json).changed\` in Ansible.
Exit codes: 0 success (changed or not); 3 with --detailed-exitcode when something changed (or
would, with --dry-run), 0 when nothing did; 2 bad flag, target, rule id or policy.yaml (printed
as file:line:col); 70 internal error.`

  static override examples = [
    {description: 'What is recommended, assigned and retired.', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Protect every service with its recommended rules, logging only.', command: '<%= config.bin %> <%= command.id %> --all --action log'},
    {description: 'One service, two rules, tried in shadow mode first.', command: '<%= config.bin %> <%= command.id %> 192.0.2.10:80 --rule PP-2021-41773 --rule PP-2011-3192 --shadow'},
    {description: 'Stop protecting a service.', command: '<%= config.bin %> <%= command.id %> --remove 192.0.2.10:80'},
    {description: 'Ansible: report whether anything changed.', command: '<%= config.bin %> <%= command.id %> --all --json --detailed-exitcode'},
  ]

  static override strict = false

  static override args = {
    target: Args.string({description: 'HOST:PORT[/udp] (or HOST/rpc:PROGRAM) to protect, or to unprotect with --remove', required: false}),
  }

  static override flags = {
    all: Flags.boolean({summary: 'Assign the recommended rules to every inventory service that has any.'}),
    rule: Flags.string({summary: 'Rule id to assign (or remove); repeatable. Default: the recommended rules.', multiple: true, helpValue: 'ID'}),
    action: Flags.option({options: ['fix', 'log', 'drop'] as const, summary: 'What happens on a match (with --rule: for those rules only; without, experimental rules keep their own action).'})(),
    'default-action': Flags.option({options: ['fix', 'log', 'drop'] as const, summary: "policy.yaml's default action for services that set none."})(),
    shadow: Flags.boolean({summary: 'Log what would have been blocked, change nothing (--no-shadow enforces).', allowNo: true}),
    remove: Flags.boolean({summary: 'Unprotect the given targets (or only the --rule ids of them).'}),
    refresh: Flags.boolean({summary: 'Recompile policy.json and retire/unretire from the current inventory (what a run without flags does too).'}),
    'dry-run': Flags.boolean({summary: 'Show what would change; write nothing.'}),
    'detailed-exitcode': Flags.boolean({summary: 'Exit 3 when something changed (or would), 0 when nothing did.'}),
  }

  public async run(): Promise<ProtectResult> {
    const {argv} = await this.parse(Protect)
    const f = this.flags
    // HOST:PORT after --rule IDS arrives among the rule ids (a repeatable flag takes every word after it)
    const {targets, rules} = splitTargetWords((argv as string[]).filter((a) => typeof a === 'string'), f.rule)
    let op: ProtectOp
    if (f.remove) {
      if (f.all) throw new UserError('--remove takes HOST:PORT targets, not --all', {code: 'FLAG_INVALID'})
      if (targets.length === 0) throw new UserError('--remove needs HOST:PORT', {code: 'TARGET_MISSING'})
      op = {op: 'remove', targets, rules}
    } else if (f.all) {
      if (targets.length > 0 || rules) throw new UserError('--all assigns the recommended rules to every service; give no HOST:PORT or --rule with it', {code: 'FLAG_INVALID'})
      op = {op: 'all', action: f.action as Action | undefined, shadow: f.shadow}
    } else if (targets.length > 0) {
      op = {op: 'add', targets, rules, action: f.action as Action | undefined, shadow: f.shadow}
    } else {
      if (rules || f.action || f.shadow !== undefined) throw new UserError('--rule, --action and --shadow need HOST:PORT or --all', {code: 'FLAG_INVALID'})
      op = {op: 'show'}
      if (!f.refresh && !this.jsonEnabled() && process.stdout.isTTY && process.stdin.isTTY && !process.env.CI) return this.pick(f)
    }
    const result = await runProtect({project: this.project(), op, defaultAction: f['default-action'] as Action | undefined, dryRun: f['dry-run']})
    if (!this.jsonEnabled()) this.print(result)
    if (f['detailed-exitcode'] && result.changed) this.setExitCode(EXIT_CHANGED)
    return result
  }

  /** The interactive picker; its choice runs as `protect TARGET --rule ... --action ...` would. */
  private async pick(f: {'default-action'?: string; 'dry-run'?: boolean; 'detailed-exitcode'?: boolean}): Promise<ProtectResult> {
    const project = this.project()
    const defaultAction = f['default-action'] as Action | undefined
    const view = await runProtect({project, op: {op: 'show'}, dryRun: true})
    const selection = await runPicker(view.services)
    if (!selection) {
      this.log('quit: nothing written')
      return view
    }
    const results: ProtectResult[] = []
    for (const op of selectionOps(selection)) results.push(await runProtect({project, op, defaultAction, dryRun: f['dry-run']}))
    const result = mergeResults(results)
    this.print(result)
    if (f['detailed-exitcode'] && result.changed) this.setExitCode(EXIT_CHANGED)
    return result
  }

  private print(r: ProtectResult): void {
    for (const w of r.warnings) process.stderr.write(`patchpoint: warning: ${w}\n`)
    const rows = r.services.map((s) => [
      label(s), [s.product, s.version].filter(Boolean).join(' ') || s.service || '',
      s.recommended.map((x) => (x.basis === 'version' ? x.rule_id : `${x.rule_id} (${x.basis})`)).join('\n'),
      s.assigned ? s.active.join('\n') || '(none left)' : '',
      s.assigned ? (s.shadow ? `${s.action ?? 'rule default'} (shadow)` : s.action ?? 'rule default') : '',
      s.retired.join('\n'),
    ])
    if (rows.length === 0) this.log('no services in the inventory and none assigned (run `patchpoint discover` and `patchpoint fingerprint`)')
    else this.log(renderTable(['service', 'product', 'recommended', 'assigned', 'action', 'retired'], rows))
    for (const e of r.diff.retired) this.log(`retired ${e.rule_id} on ${e.host}:${e.port}/${e.proto}: ${e.product} ${e.version} is outside ${e.evidence.affected.join(', ')}`)
    for (const e of r.diff.unretired) this.log(`un-retired ${e.rule_id} on ${e.host}:${e.port}/${e.proto}: the version is back in the affected range`)
    for (const c of r.diff.services) {
      const parts = [c.rules_added?.length ? `+${c.rules_added.join(' +')}` : '', c.rules_removed?.length ? `-${c.rules_removed.join(' -')}` : '',
        c.action ? `action ${c.action.from ?? 'default'} -> ${c.action.to ?? 'default'}` : '', c.shadow ? `shadow ${c.shadow.from} -> ${c.shadow.to}` : '']
      this.log(`${c.change} ${c.service} ${parts.filter(Boolean).join(' ')}`.trimEnd())
    }
    const verb = r.dry_run ? 'would change' : 'changed'
    this.log(r.changed ? `${verb}: ${r.written.join(', ')}` : 'nothing changed')
  }
}

function label(s: ServiceView): string {
  const h = s.host.includes(':') ? `[${s.host}]` : s.host
  const base = `${h}:${s.port}/${s.proto}`
  return s.rpc_program !== undefined ? `${base} rpc ${s.rpc_program}` : base
}
