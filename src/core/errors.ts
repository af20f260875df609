/**
 * Two kinds of error, and the process exit codes the CLI uses.
 *
 * - `UserError`: the user can fix it (bad flag, missing file, invalid config, lock held by
 *   someone else, missing privileges). The CLI prints ONE line `patchpoint: <message>` (plus an
 *   optional `  hint: <suggestion>` line) and never a stack trace.
 * - anything else is a bug in patchpoint: the CLI says so in one line, explains how to report
 *   it, and prints the stack only with `PATCHPOINT_DEBUG=1`.
 */

/**
 * Process exit codes (stable: scripts, cron jobs and CI depend on them).
 *
 * | code | name       | meaning                                                            |
 * |------|------------|--------------------------------------------------------------------|
 * | 0    | OK         | success, nothing to report                                         |
 * | 1    | FINDINGS   | ran fine, but found alerts / anomalies / warnings (for cron and CI) |
 * | 2    | USER       | bad input: flag, argument, file, config                            |
 * | 4    | PERMISSION | needs root / CAP_NET_ADMIN / CAP_NET_RAW                           |
 * | 70   | BUG        | internal error in patchpoint (EX_SOFTWARE from sysexits.h)        |
 */
export const EXIT = Object.freeze({
  OK: 0,
  FINDINGS: 1,
  USER: 2,
  PERMISSION: 4,
  BUG: 70,
} as const)

export type ExitCode = (typeof EXIT)[keyof typeof EXIT]

/** Where users report bugs. */
export const ISSUE_TRACKER_URL = 'https://github.com/patchpoint/patchpoint/issues'

export interface UserErrorOptions {
  /** process exit code, default EXIT.USER */
  exitCode?: number
  /** one-line hint printed after the message */
  suggestion?: string
  /** stable machine-readable code, e.g. 'CONFIG_INVALID' (default 'USER_ERROR') */
  code?: string
  /** further lines (e.g. more diagnostics after the first); printed one per line */
  details?: string[]
  cause?: unknown
}

/** An error the user can fix: printed as one line, no stack trace. */
export class UserError extends Error {
  readonly exitCode: number
  readonly suggestion?: string
  readonly code: string
  readonly details: string[]

  constructor(message: string, options: UserErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = 'UserError'
    this.exitCode = options.exitCode ?? EXIT.USER
    this.suggestion = options.suggestion
    this.code = options.code ?? 'USER_ERROR'
    this.details = options.details ?? []
  }
}

/** A UserError for missing privileges (exit 4). */
export function permissionError(message: string, suggestion?: string): UserError {
  return new UserError(message, {
    exitCode: EXIT.PERMISSION,
    code: 'PERMISSION',
    suggestion: suggestion ?? 'run as root, or grant CAP_NET_ADMIN and CAP_NET_RAW to node',
  })
}

export function isUserError(err: unknown): err is UserError {
  return err instanceof UserError
}
