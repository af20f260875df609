/**
 * `fingerprint` without raw-socket rights: --method raw and --passive exit 4 (missing
 * privileges) with one line, and the help's exit codes say so. The real binary over dist/, run as
 * user nobody (setpriv, no capabilities) inside a lab namespace that holds only lo:
 *
 *   ns <id>-fp : lo (127.0.0.1) only, no route
 *
 * Nothing is sent: opening the capture fails first. Needs root (to drop to nobody) and setpriv.
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, chmodSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {hasCommand, Lab, labSupport} from '../lab/netns.js'
import {bin, runCli} from '../support/cli.js'

const support = labSupport()
const skip = !support.ok || !hasCommand('setpriv')
if (skip) console.warn(`test/cli/fingerprint-privileges.test.ts skipped: ${support.reason ?? 'setpriv missing (util-linux)'}`)

describe('fingerprint exit codes', () => {
  it('the help lists exit 4 for raw access denied', async () => {
    const r = await runCli(['fingerprint', '--help'])
    expect(r.stdout.replace(/\s+/g, ' ')).toContain('4 raw access denied with --method raw or --passive')
  })
})

describe.skipIf(skip)('fingerprint as an unprivileged user (namespace with lo only)', () => {
  let lab: Lab
  let ns: string
  let home: string

  beforeAll(() => {
    lab = new Lab(24, {switch: false})
    ns = lab.addNamespace('fp')
    home = mkdtempSync(path.join(tmpdir(), 'pp-fp-nobody-'))
    chmodSync(home, 0o777)
  })

  afterAll(() => lab?.cleanup())

  const asNobody = (...args: string[]) => {
    const r = spawnSync('ip', ['netns', 'exec', ns, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all',
      'env', `HOME=${home}`, 'NO_COLOR=1', process.execPath, bin, ...args], {cwd: home, encoding: 'utf8', timeout: 60_000})
    return {code: r.status, stdout: r.stdout, lines: r.stderr.split('\n').filter((l) => l !== '' && !/^listening on /.test(l))}
  }

  it('--passive: exit 4, one line and its hint', () => {
    const r = asNobody('fingerprint', '--passive', '--iface', 'lo', '--duration', '1s', '--no-inventory')
    expect(r.code).toBe(4)
    expect(r.lines[0]).toMatch(/^patchpoint: cannot open lo for raw packets/)
    expect(r.lines.slice(1)).toEqual([expect.stringMatching(/^ {2}hint: /)])
  })

  it('--method raw: exit 4', () => {
    const r = asNobody('fingerprint', '127.0.0.1', '--method', 'raw', '--ports', '9', '--no-inventory')
    expect(r.code).toBe(4)
    expect(r.lines.filter((l) => l.startsWith('patchpoint:'))).toEqual([expect.stringMatching(/raw packets|permission|not permitted/)])
  })
})
