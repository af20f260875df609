/**
 * An unknown command is a user error in patchpoint's own form (the real binary over dist/).
 */
import {describe, expect, it} from 'vitest'
import {runCli} from '../support/cli.js'

describe('patchpoint UNKNOWN', () => {
  it('one line and a did-you-mean hint on stderr, exit 2; nothing on stdout', async () => {
    const cases: [string[], string, string][] = [
      [['discovr', '10.0.0.0/24'], 'discovr', "did you mean 'discover'?"],
      [['rules', 'lnt', 'x.yaml'], 'rules lnt', "did you mean 'rules lint'?"],
      [['ruls'], 'ruls', "did you mean 'rules'?"],
      [['frobnicate'], 'frobnicate', 'patchpoint --help lists every command'],
    ]
    for (const [args, asked, hint] of cases) {
      const r = await runCli(args)
      expect(r.code).toBe(2)
      expect(r.stdout).toBe('')
      const lines = r.stderr.split('\n').filter((l) => l !== '')
      expect(lines).toHaveLength(2)
      expect(lines[0]).toBe(`patchpoint: unknown command '${asked}'`)
      expect(lines[1]).toMatch(/^ {2}hint: /)
      expect(lines[1]).toContain(hint)
    }
  })

  it('with --json: the error object on stdout, exit 2', async () => {
    const r = await runCli(['discovr', '--json'])
    expect(r.code).toBe(2)
    expect(JSON.parse(r.stdout)).toEqual({error: {message: "unknown command 'discovr'", code: 'COMMAND_UNKNOWN', exitCode: 2, suggestion: "did you mean 'discover'? (patchpoint --help lists every command)"}})
  })
})
