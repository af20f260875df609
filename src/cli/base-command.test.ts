import {fileURLToPath} from 'node:url'
import {Args, Errors, Flags} from '@oclif/core'
import {afterEach, beforeEach, describe, expect, it, vi} from 'vitest'
import {EXIT, UserError} from '../core/errors.js'
import {describeError, PatchpointCommand, renderError} from './base-command.js'

const repoRoot = fileURLToPath(new URL('../../', import.meta.url))

class Probe extends PatchpointCommand<typeof Probe> {
  static override args = {what: Args.string({required: true})}
  static override flags = {n: Flags.integer()}
  async run(): Promise<unknown> {
    switch (this.args.what) {
      case 'user': throw new UserError('bad thing', {suggestion: 'do better', code: 'BAD'})
      case 'perm': throw new UserError('needs root', {exitCode: EXIT.PERMISSION})
      case 'bug': throw new TypeError('x is undefined')
      case 'exit': return this.exit(EXIT.FINDINGS)
      case 'findings': this.setExitCode(EXIT.FINDINGS); return {found: 3}
      case 'project': return {project: this.project().dir}
      default: return {ok: true, n: this.flags.n ?? null}
    }
  }
}

let out: string
let err: string
beforeEach(() => {
  out = ''
  err = ''
  vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => { out += String(c); return true })
  vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => { err += String(c); return true })
  // oclif prints results with console.log
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { out += a.join(' ') + '\n' })
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { err += a.join(' ') + '\n' })
})
afterEach(() => {
  vi.restoreAllMocks()
  process.exitCode = undefined
  delete process.env.PATCHPOINT_DEBUG
})

/** Run Probe in-process; returns the exit code oclif's handler would use. */
async function run(argv: string[]): Promise<number> {
  try {
    await Probe.run(argv, repoRoot)
    return Number(process.exitCode ?? 0)
  } catch (e) {
    if (e instanceof Errors.ExitError) return e.oclif.exit as number
    throw e
  }
}

describe('PatchpointCommand error handling', () => {
  it('success: exit 0, --json prints the result', async () => {
    expect(await run(['ok', '--n', '3', '--json'])).toBe(0)
    expect(JSON.parse(out)).toEqual({ok: true, n: 3})
  })

  it('UserError: one line + hint on stderr, its exit code, no stack', async () => {
    expect(await run(['user'])).toBe(2)
    expect(err).toBe('patchpoint: bad thing\n  hint: do better\n')
    expect(await run(['perm'])).toBe(4)
  })

  it('UserError with --json: error object on stdout, same exit code', async () => {
    expect(await run(['user', '--json'])).toBe(2)
    expect(JSON.parse(out)).toEqual({error: {message: 'bad thing', code: 'BAD', exitCode: 2, suggestion: 'do better'}})
    expect(err).toBe('')
  })

  it('bugs: exit 70, one line + where to report, stack only with PATCHPOINT_DEBUG=1', async () => {
    expect(await run(['bug'])).toBe(70)
    const lines = err.trimEnd().split('\n')
    expect(lines[0]).toBe('patchpoint: internal error (this is a bug in patchpoint): x is undefined')
    expect(lines[1]).toMatch(/^ {2}hint: please report it at https:\/\/\S+ with the output of PATCHPOINT_DEBUG=1$/)
    expect(lines).toHaveLength(2)
    err = ''
    process.env.PATCHPOINT_DEBUG = '1'
    expect(await run(['bug'])).toBe(70)
    expect(err).toContain('TypeError: x is undefined\n    at ')
  })

  it('oclif parse errors (unknown flag, missing arg, bad value) are one line, exit 2', async () => {
    for (const argv of [['ok', '--bogus'], [], ['ok', '--n', 'abc'], ['ok', 'extra']]) {
      err = ''
      expect(await run(argv), argv.join(' ')).toBe(2)
      const lines = err.trimEnd().split('\n')
      expect(lines[0]).toMatch(/^patchpoint: \S/)
      expect(lines, err).toHaveLength(2) // message + hint
      expect(err).not.toMatch(/\n\s+at /)
    }
    out = ''
    expect(await run(['ok', '--bogus', '--json'])).toBe(2)
    expect(JSON.parse(out).error).toMatchObject({code: 'FLAG_INVALID', exitCode: 2, message: 'Nonexistent flag: --bogus'})
  })

  it('this.exit(n) and setExitCode pass through untouched', async () => {
    expect(await run(['exit'])).toBe(1)
    expect(err).toBe('')
    expect(await run(['findings', '--json'])).toBe(1)
    expect(JSON.parse(out)).toEqual({found: 3})
  })

  it('--project and PATCHPOINT_PROJECT feed findProject', async () => {
    expect(await run(['project', '--project', '/nonexistent-pp'])).toBe(2)
    expect(err).toMatch(/^patchpoint: --project: not a patchpoint project \(\/nonexistent-pp does not exist\)\n/)
  })
})

describe('describeError / renderError', () => {
  it('classifies', () => {
    expect(describeError(new UserError('u')).exitCode).toBe(2)
    expect(describeError(new Error('b')).code).toBe('BUG')
    expect(describeError('a string').exitCode).toBe(70)
    expect(describeError(new Errors.CLIError('from this.error')).exitCode).toBe(2)
  })
  it('renders details after the hint', () => {
    expect(renderError({message: 'm', code: 'c', exitCode: 2, suggestion: 's', details: ['d1']}, false)).toEqual(['patchpoint: m', '  hint: s', 'patchpoint: d1'])
  })
})
