import {Flags} from '@oclif/core'
import {PatchpointCommand} from '../cli/base-command.js'
import {EXIT} from '../core/errors.js'
import {runDemo, runOfflineDemo, teardownDemo, type DemoResult} from '../core/demo/demo.js'

export class Demo extends PatchpointCommand<typeof Demo> {
  static override summary = 'Show the whole product on one machine: a throwaway lab, real servers, real exploits.'

  static override description = `As root, builds a lab in network namespaces (an attacker, the gateway's two interfaces, a
server with nginx, and vsftpd and postfix when installed; TEST-NET addresses, no route out) and
walks through the real commands: init, discover, fingerprint, protect --all, run (inline, in the
background), benign downloads checked byte for byte, the rule pack's own exploit samples sent
through the gateway, and report (tables and an HTML file). Everything is torn down at the end
and on Ctrl-C; --keep leaves the lab up, --teardown removes it later.

Without root, --offline replays the shipped captures (examples/pcaps) through the same engine
into a temporary project and reports: no root, no network.

Exit codes: 0 the exploits were stopped and the benign traffic arrived (offline: the report
matches the event log); 1 otherwise; 4 not root (lab mode).`

  static override examples = [
    {description: 'The full demo (root).', command: 'sudo <%= config.bin %> <%= command.id %>'},
    {description: 'Leave the lab up to explore it, then remove it.', command: 'sudo <%= config.bin %> <%= command.id %> --keep\nsudo <%= config.bin %> <%= command.id %> --teardown'},
    {description: 'Without root or network: replay the shipped captures.', command: '<%= config.bin %> <%= command.id %> --offline'},
    {description: 'The steps and their results as JSON.', command: 'sudo <%= config.bin %> <%= command.id %> --json'},
  ]

  static override flags = {
    offline: Flags.boolean({summary: 'Replay the shipped captures instead of building the lab (no root, no network).', exclusive: ['keep', 'teardown']}),
    keep: Flags.boolean({summary: 'Leave the lab (namespaces, servers, gateway) up and print how to explore it.', exclusive: ['teardown']}),
    teardown: Flags.boolean({summary: 'Remove labs left by --keep (or an interrupted demo) and exit.'}),
  }

  public async run(): Promise<DemoResult | {teardown: {namespaces: string[]; folders: string[]}}> {
    const print = this.jsonEnabled() ? undefined : (l: string) => this.log(l)
    if (this.flags.teardown) {
      if (process.getuid?.() !== 0) {
        this.logToStderr('patchpoint: demo --teardown needs root (it deletes network namespaces)')
        this.setExitCode(EXIT.PERMISSION)
        return {teardown: {namespaces: [], folders: []}}
      }
      const t = teardownDemo()
      print?.(t.namespaces.length === 0 ? 'No demo lab found; nothing to remove.' : `Removed ${t.namespaces.length} namespaces (${t.namespaces.join(', ')}) and ${t.folders.length} folders.`)
      return {teardown: t}
    }
    const result = this.flags.offline ? await runOfflineDemo({print}) : await runDemo({keep: this.flags.keep, print})
    if (result.error !== undefined) {
      this.logToStderr(`patchpoint: ${result.error}`)
      this.setExitCode(process.getuid?.() !== 0 ? EXIT.PERMISSION : EXIT.FINDINGS)
      return result
    }
    this.setExitCode(result.ok ? EXIT.OK : EXIT.FINDINGS)
    return result
  }
}
