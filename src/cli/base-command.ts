/**
 * Base class of every patchpoint command.
 *
 * - `--json` on every command (oclif's enableJsonFlag): the command's return value is printed
 *   as JSON; errors too: `{"error": {"message", "code", "exitCode"}}` on stdout.
 * - global `--project DIR` (or env PATCHPOINT_PROJECT): see `this.project()`.
 * - errors: a UserError (and oclif's own flag/argument errors) prints ONE line
 *   `patchpoint: <message>` (+ `  hint: <suggestion>`) on stderr and exits with its code
 *   (EXIT.USER = 2 by default). Anything else is a bug: one line saying so and where to report
 *   it, exit EXIT.BUG = 70; the stack only with PATCHPOINT_DEBUG=1.
 * - `this.exit(n)` exits with n (oclif's ExitError passes through untouched). To exit non-zero
 *   AND print the JSON result, return the result after `this.setExitCode(EXIT.FINDINGS)`.
 */
import {Command, Errors, Flags} from '@oclif/core'
import type {Interfaces} from '@oclif/core'
import {EXIT, ISSUE_TRACKER_URL, UserError} from '../core/errors.js'
import {findProject} from '../core/project/find.js'
import type {ProjectLocation} from '../core/project/find.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof PatchpointCommand)['baseFlags'] & T['flags']>
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

/** What the error handler decided to print. */
export interface ErrorReport {
  message: string
  code: string
  exitCode: number
  suggestion?: string
  details?: string[]
  /** only for bugs */
  stack?: string
}

/** Classify any thrown value: user error, oclif parse error, or our bug. */
export function describeError(err: unknown): ErrorReport {
  if (err instanceof UserError) {
    return {message: err.message, code: err.code, exitCode: err.exitCode, suggestion: err.suggestion, details: err.details.length > 0 ? err.details : undefined}
  }
  if (err instanceof Errors.CLIError) {
    // oclif: flag/argument parse errors (they carry `parse`), this.error(), unknown options
    const lines = err.message.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !/^See more help with/.test(l))
    const isParse = 'parse' in err || /^Parsing --?\w/.test(err.message)
    const exit = (err as Errors.CLIError).oclif?.exit
    return {
      message: lines.join(' ').replace(/\s+/g, ' ').replace(/^(Parsing --?[\w-]+) /, '$1: '),
      code: isParse ? 'FLAG_INVALID' : (err.code ?? 'USER_ERROR'),
      exitCode: isParse || typeof exit !== 'number' || exit === 1 ? EXIT.USER : exit,
      suggestion: isParse ? 'see --help' : err.suggestions?.[0],
    }
  }
  const e = err instanceof Error ? err : new Error(String(err))
  return {
    message: `internal error (this is a bug in patchpoint): ${firstLine(e.message) || e.name}`,
    code: 'BUG',
    exitCode: EXIT.BUG,
    suggestion: `please report it at ${ISSUE_TRACKER_URL}` +
      (process.env.PATCHPOINT_DEBUG === '1' ? '' : ' with the output of PATCHPOINT_DEBUG=1'),
    stack: e.stack,
  }
}

function firstLine(s: string): string {
  const nl = s.indexOf('\n')
  return nl < 0 ? s : s.slice(0, nl)
}

/** Text lines printed on stderr for an error (no colours, no stack unless debugging). */
export function renderError(r: ErrorReport, debug = process.env.PATCHPOINT_DEBUG === '1'): string[] {
  const lines = [`patchpoint: ${r.message}`]
  if (r.suggestion) lines.push(`  hint: ${r.suggestion}`)
  for (const d of r.details ?? []) lines.push(`patchpoint: ${d}`)
  if (debug && r.stack) lines.push(r.stack)
  return lines
}

export abstract class PatchpointCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true

  static override baseFlags = {
    project: Flags.directory({
      summary: 'Project folder (holds patchpoint.yaml). Env: PATCHPOINT_PROJECT.',
      description: 'Default: PATCHPOINT_PROJECT, else the nearest folder upwards holding patchpoint.yaml.',
      helpGroup: 'GLOBAL',
      helpValue: 'DIR',
    }),
  }

  protected flags!: BaseFlags<T>
  protected args!: BaseArgs<T>

  public override async init(): Promise<void> {
    await super.init()
    const ctor = this.ctor as typeof PatchpointCommand
    const {args, flags} = await this.parse({
      flags: ctor.flags,
      baseFlags: ctor.baseFlags,
      enableJsonFlag: ctor.enableJsonFlag,
      args: ctor.args,
      strict: ctor.strict,
    })
    this.flags = flags as BaseFlags<T>
    this.args = args as BaseArgs<T>
  }

  /** The project: --project, else PATCHPOINT_PROJECT, else walk up from cwd. UserError if none. */
  protected project(): ProjectLocation {
    const flags = this.flags as {project?: string}
    return findProject({explicit: flags.project, env: process.env.PATCHPOINT_PROJECT, cwd: process.cwd()})
  }

  /** Exit with `code` after the command returns normally (so --json still prints the result). */
  protected setExitCode(code: number): void {
    process.exitCode = code
  }

  protected override async catch(err: Error & {exitCode?: number}): Promise<unknown> {
    if (err instanceof Errors.ExitError) throw err // this.exit(n): already decided
    const report = describeError(err)
    if (this.jsonEnabled()) {
      const error: Record<string, unknown> = {message: report.message, code: report.code, exitCode: report.exitCode}
      if (report.suggestion) error.suggestion = report.suggestion
      if (report.details) error.details = report.details
      if (report.stack && process.env.PATCHPOINT_DEBUG === '1') error.stack = report.stack
      process.stdout.write(JSON.stringify({error}, null, 2) + '\n')
    } else {
      process.stderr.write(renderError(report).join('\n') + '\n')
    }
    // ExitError: oclif's handler exits with this code and prints nothing more
    throw new Errors.ExitError(report.exitCode)
  }
}
