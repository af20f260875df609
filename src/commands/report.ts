import path from 'node:path'
import {Flags} from '@oclif/core'
import {PatchpointCommand} from '../cli/base-command.js'
import {isInteractive} from '../cli/output.js'
import {UserError} from '../core/errors.js'
import {writeOutputFile} from '../core/project/atomic.js'
import type {ReportData} from '../core/report/aggregate.js'
import {REPORT_FORMATS, renderCsvFiles, renderCsvStream, renderJson, renderTerminal} from '../core/report/format.js'
import type {ReportFormat} from '../core/report/format.js'
import {renderHtml} from '../core/report/html.js'
import {parseTime, projectInput, resolveInputs, runReport} from '../core/report/run.js'
import type {ReportInput} from '../core/report/run.js'
import {renderXlsx} from '../core/report/xlsx.js'
import {lintRules} from '../core/rules/lint.js'
import {fieldsFor, ruleDirsFor} from '../core/rules/fields.js'

const EXT_FORMAT: Record<string, ReportFormat> = {'.xlsx': 'xlsx', '.html': 'html', '.htm': 'html', '.json': 'json', '.csv': 'csv', '.txt': 'table'}

export class Report extends PatchpointCommand<typeof Report> {
  static override summary = 'Summarize the event log: alerts by action, rule, CVE, host, service and source, over time; coverage; patch exposure.'

  static override description = `Streams the event log (and its rotated files) once, in bounded memory: per-key tables keep
the top keys (Space-Saving counts; exact until a table holds more than its capacity, then marked
approximate with a "max overcount" column). With --from, merges the logs of several gateways:
each DIR is a project folder, a log file, or a folder of collected logs (collected/<gateway>/eve.json).

Patch exposure: for each CVE and protected host, the days from its first alert until the real
patch retired the virtual one (.patchpoint/retired.json), or until the end of the period.

Formats: table (terminal, with bar charts), csv (one file per table in --out DIR, or all tables
on stdout each after a "# name" line), xlsx (needs --out), html (one self-contained file with
SVG charts), json. Without --format, the --out file extension decides. With --json the report
data is printed as JSON on stdout, and --out is written too.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> --since 7d',
    {description: 'Monthly spreadsheet.', command: '<%= config.bin %> <%= command.id %> --since 2026-03-01 --until 2026-04-01 --out march.xlsx'},
    {description: 'Fleet report from collected logs.', command: '<%= config.bin %> <%= command.id %> --from collected/ --out fleet.html'},
  ]

  static override flags = {
    since: Flags.string({summary: 'Only events at or after this time: ISO date/time (UTC), or 24h, 7d, 2w ago.', helpValue: 'TIME'}),
    until: Flags.string({summary: 'Only events before this time (same forms as --since).', helpValue: 'TIME'}),
    format: Flags.option({options: [...REPORT_FORMATS], summary: 'Output format (default: from the --out extension, else table).'})(),
    out: Flags.string({summary: 'Write the report to FILE (csv: a folder) instead of standard output.', helpValue: 'FILE'}),
    from: Flags.string({summary: 'Read these project folders, log files or folders of collected logs instead of this project (repeatable).', helpValue: 'DIR', multiple: true}),
    top: Flags.integer({summary: 'Rows per table.', default: 25, min: 1, max: 100_000}),
  }

  public async run(): Promise<ReportData> {
    const f = this.flags
    const sinceUs = f.since === undefined ? undefined : parseTime(f.since)
    const untilUs = f.until === undefined ? undefined : parseTime(f.until)
    if (Number.isNaN(sinceUs)) throw new UserError(`--since: cannot read '${f.since}' as a time`, {suggestion: 'use 2026-03-01, 2026-03-01T12:00:00Z, 24h or 7d'})
    if (Number.isNaN(untilUs)) throw new UserError(`--until: cannot read '${f.until}' as a time`, {suggestion: 'use 2026-03-01, 2026-03-01T12:00:00Z, 24h or 7d'})
    if (sinceUs !== undefined && untilUs !== undefined && untilUs <= sinceUs) throw new UserError('--until must be later than --since')
    const format: ReportFormat = f.format ?? (f.out ? EXT_FORMAT[path.extname(f.out).toLowerCase()] ?? (path.extname(f.out) === '' ? 'csv' : 'table') : 'table')
    if (format === 'xlsx' && !f.out && process.stdout.isTTY) throw new UserError('--format xlsx writes a binary file: give --out FILE.xlsx')

    const problems: string[] = []
    let inputs: ReportInput[]
    let retiredFiles: string[]
    let rulesLoaded: string[] | undefined
    if (f.from && f.from.length > 0) {
      const r = await resolveInputs(f.from)
      inputs = r.inputs
      retiredFiles = r.retiredFiles
      problems.push(...r.problems)
      if (inputs.length === 0) throw new UserError(`--from: no event logs found in ${f.from.join(', ')}`)
    } else {
      const project = this.project()
      const p = await projectInput(project.dir, problems)
      inputs = [p.input]
      retiredFiles = [p.retired]
      try {
        rulesLoaded = lintRules(ruleDirsFor(project), {fieldsFor}).rules.map((r) => r.id)
      } catch {
        rulesLoaded = undefined // coverage shows "unknown" rather than failing the report
      }
    }
    const data = await runReport({inputs, retiredFiles, problems, sinceUs, untilUs, topRows: f.top, rulesLoaded})
    for (const p of problems) this.logToStderr(`patchpoint: ${p}`)
    // --json prints the data on stdout; an --out file is written all the same
    if (this.jsonEnabled() && !f.out) return data

    switch (format) {
      case 'json':
        await this.emit(renderJson(data), f.out)
        break
      case 'html':
        await this.emit(renderHtml(data), f.out)
        break
      case 'xlsx':
        await this.emit(await renderXlsx(data), f.out)
        break
      case 'csv':
        if (f.out) {
          const files = renderCsvFiles(data)
          for (const [name, text] of files) await writeOutputFile(path.resolve(f.out, name), text, {flag: '--out'})
          this.logToStderr(`patchpoint: ${files.size} csv files written to ${path.resolve(f.out)}`)
        } else process.stdout.write(renderCsvStream(data))
        break
      default:
        await this.emit(renderTerminal(data, {interactive: f.out ? false : isInteractive()}) + '\n', f.out)
    }
    return data
  }

  private async emit(content: string | Buffer, out: string | undefined): Promise<void> {
    if (out) {
      await writeOutputFile(path.resolve(out), content, {flag: '--out'})
      this.logToStderr(`patchpoint: report written to ${path.resolve(out)}`)
    } else process.stdout.write(content)
  }
}
