import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {Args, Flags} from '@oclif/core'
import {PatchpointCommand} from '../cli/base-command.js'
import {renderTable} from '../cli/output.js'
import {EXIT, UserError} from '../core/errors.js'
import {runReplay, type ReplayRunResult} from '../core/engine/replay-run.js'
import {DEFRAG_POLICIES, TCP_POLICIES} from '../core/project/config-schema.js'

const EXAMPLES_DIR = fileURLToPath(new URL('../../examples/pcaps/', import.meta.url))

export class Replay extends PatchpointCommand<typeof Replay> {
  static override summary = 'Run capture files through the engine, offline, and write the events it raises.'

  static override description = `Each file (pcap or pcapng, told apart by magic number) goes through the same engine as the
inline gateway: decoding, IP defragmentation, TCP reassembly, protocol analyzers and rules. Events
are EVE JSON lines (Suricata's eve.json format) written to the project's event log, or to
--events FILE ('-' for standard output). With no FILE, the sample captures shipped in
examples/pcaps are replayed.

A file that cannot be read (wrong magic, truncated, unsupported link type) gets one line on
stderr; the other files are still processed.

Exit codes: 0 nothing found; 1 alerts or anomalies were raised; 2 a file or flag was bad (this
wins over 1); 70 internal error.`

  static override examples = [
    {description: 'Replay the shipped sample captures.', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Replay two captures into the project event log.', command: '<%= config.bin %> <%= command.id %> monday.pcap tuesday.pcapng'},
    {description: 'Events to stdout, for jq.', command: "<%= config.bin %> <%= command.id %> attack.pcap --events - | jq 'select(.event_type==\"alert\")'"},
    {description: 'See what each server received, byte for byte.', command: '<%= config.bin %> <%= command.id %> transfer.pcap --write-streams ./streams'},
  ]

  static override strict = false

  static override args = {
    file: Args.string({description: 'capture files (pcap or pcapng); default: the shipped samples', required: false}),
  }

  static override flags = {
    events: Flags.string({
      summary: "Write events to FILE ('-' = standard output) instead of the project's event log.",
      helpValue: 'FILE',
    }),
    'write-streams': Flags.directory({
      summary: 'Write each reassembled TCP stream direction into DIR, named as tcpflow names them (192.000.002.010.40000-192.000.002.020.00080).',
      helpValue: 'DIR',
    }),
    'flow-events': Flags.boolean({summary: 'Also write a `flow` event for every flow when it ends.'}),
    'defrag-policy': Flags.option({options: [...DEFRAG_POLICIES], summary: 'IP fragment overlap policy for every host (default: the project config, else first).'})(),
    'tcp-policy': Flags.option({options: [...TCP_POLICIES], summary: 'TCP overlap policy for every host (default: the project config, else first).'})(),
  }

  /** --events - with --json: the summary follows the event lines as one more JSON line */
  protected override logJson(json: unknown): void {
    if (this.flags?.events === '-') process.stdout.write(JSON.stringify(json) + '\n')
    else super.logJson(json)
  }

  public async run(): Promise<ReplayRunResult> {
    const {argv} = await this.parse(Replay)
    let files = (argv as string[]).filter((a) => typeof a === 'string')
    if (files.length === 0) {
      files = fs.readdirSync(EXAMPLES_DIR).filter((f) => /\.pcap(ng)?$/.test(f)).sort().map((f) => path.join(EXAMPLES_DIR, f))
      if (files.length === 0) throw new UserError(`no capture given and no samples in ${EXAMPLES_DIR}`)
    }
    const flags = this.flags
    const result = await runReplay({
      files,
      project: this.optionalProject(),
      eventsFile: flags.events,
      writeStreamsDir: flags['write-streams'],
      flowEvents: flags['flow-events'],
      defragPolicy: flags['defrag-policy'],
      tcpPolicy: flags['tcp-policy'],
      keepEvents: this.jsonEnabled() && flags.events === undefined,
    })
    for (const f of result.files) if (f.error) process.stderr.write(`patchpoint: ${f.error}\n`)
    if (!this.jsonEnabled() && flags.events !== '-') {
      this.log(renderTable(
        ['file', 'packets', 'flows', 'tcp streams', 'anomalies', 'alerts', 'status'],
        result.files.map((f) => [path.basename(f.file), f.packets, f.flows, f.tcpStreams, f.anomalies, f.alerts, f.error ? 'error' : 'ok']),
        {align: ['left', 'right', 'right', 'right', 'right', 'right', 'left']},
      ))
      this.log(result.eventsWrittenTo
        ? `${result.totals.events} events written to ${result.eventsWrittenTo}`
        : `${result.totals.events} events (not stored: no project here; use --events FILE, --project DIR or --json)`)
    }
    this.setExitCode(result.files.some((f) => f.error) ? EXIT.USER : result.totals.alerts + result.totals.anomalies > 0 ? EXIT.FINDINGS : EXIT.OK)
    return result
  }

  /** the project if there is one; replay also works outside any project */
  private optionalProject() {
    try {
      return this.project()
    } catch (err) {
      if ((this.flags as {project?: string}).project || process.env.PATCHPOINT_PROJECT) throw err
      return undefined
    }
  }
}
