/**
 * `patchpoint bogus`: an unknown command is a user error like any other, in patchpoint's own
 * form (one line and a hint on stderr, or `{"error": ...}` on stdout with --json), exit 2.
 */
import type {Hook} from '@oclif/core'
import {UserError} from '../core/errors.js'
import {didYouMean} from '../core/project/yaml-schema.js'
import {describeError, renderError} from '../cli/base-command.js'

const hook: Hook<'command_not_found'> = async function (opts) {
  // commands are shown with spaces (topicSeparator), their ids use ':'
  const shown = (id: string) => id.replaceAll(':', ' ')
  const ids = [...opts.config.commandIDs.filter((id) => !opts.config.findCommand(id)?.hidden), ...opts.config.topics.map((t) => t.name)].map(shown)
  // oclif joins the words after an unknown command into its id: keep the ones that can be command words
  const words = opts.id.split(':')
  const n = words.findIndex((w) => !/^[a-z][a-z0-9-]*$/i.test(w))
  const asked = (n < 0 ? words : words.slice(0, Math.max(1, n))).join(' ')
  const guess = didYouMean(asked, ids)
  const err = new UserError(`unknown command '${asked}'`, {
    code: 'COMMAND_UNKNOWN',
    suggestion: guess ? `did you mean '${guess}'? (patchpoint --help lists every command)` : 'patchpoint --help lists every command',
  })
  const report = describeError(err)
  if ((opts.argv ?? []).includes('--json')) {
    process.stdout.write(JSON.stringify({error: {message: report.message, code: report.code, exitCode: report.exitCode, suggestion: report.suggestion}}, null, 2) + '\n')
  } else process.stderr.write(renderError(report).join('\n') + '\n')
  this.exit(report.exitCode)
}

export default hook
