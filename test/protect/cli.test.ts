/**
 * `patchpoint protect` through the REAL binary (bin/run.js on the tsc build in dist/).
 */
import {execFileSync} from 'node:child_process'
import {copyFileSync, existsSync, mkdtempSync, readFileSync, realpathSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {beforeAll, describe, expect, it} from 'vitest'
import {initProject} from '../../src/core/project/init.js'
import {repoRoot, runCli} from '../support/cli.js'
import {splitTargetWords} from '../../src/core/protect/protect.js'

const fixture = fileURLToPath(new URL('./fixtures/inventory-lab.json', import.meta.url))
const root = realpathSync(mkdtempSync(path.join(tmpdir(), 'pp-protect-cli-')))
const SLOW = {timeout: 180_000}

beforeAll(() => {
  const built = path.join(repoRoot, 'dist', 'commands', 'protect.js')
  const src = path.join(repoRoot, 'src', 'commands', 'protect.ts')
  if (!existsSync(built) || statSync(built).mtimeMs < statSync(src).mtimeMs ||
    statSync(built).mtimeMs < statSync(path.join(repoRoot, 'src/core/protect/protect.ts')).mtimeMs) {
    try {
      execFileSync('npm', ['run', 'build'], {cwd: repoRoot, stdio: 'pipe'})
    } catch {
      // tsc emits even when another folder fails to type-check
    }
  }
  if (!existsSync(built)) throw new Error('build did not produce dist/commands/protect.js')
}, 180_000)

let n = 0
async function project(): Promise<string> {
  const dir = path.join(root, `p${n++}`)
  await initProject(dir)
  copyFileSync(fixture, path.join(dir, '.patchpoint', 'inventory.json'))
  return dir
}

describe('patchpoint protect (binary)', () => {
  it('--all --json twice: changed then unchanged, files byte-identical; --detailed-exitcode 3 then 0', SLOW, async () => {
    const dir = await project()
    const a = await runCli(['protect', '--all', '--json', '--detailed-exitcode'], {cwd: dir})
    expect(a.code, a.stderr).toBe(3)
    const ja = JSON.parse(a.stdout) as {changed: boolean; diff: {services: {service: string; rules_added?: string[]}[]}}
    expect(ja.changed).toBe(true)
    expect(ja.diff.services.find((s) => s.service === '10.77.0.10:80/tcp')?.rules_added).toContain('PP-2021-41773')
    const snap = ['policy.yaml', '.patchpoint/policy.json'].map((f) => readFileSync(path.join(dir, f), 'utf8'))
    const b = await runCli(['protect', '--all', '--json', '--detailed-exitcode'], {cwd: dir})
    expect(b.code, b.stderr).toBe(0)
    expect(JSON.parse(b.stdout)).toMatchObject({changed: false, written: []})
    expect(['policy.yaml', '.patchpoint/policy.json'].map((f) => readFileSync(path.join(dir, f), 'utf8'))).toEqual(snap)
    // without --detailed-exitcode a change still exits 0 (Ansible reads .changed)
    const c = await runCli(['protect', '10.77.0.10:80', '--shadow', '--json'], {cwd: dir})
    expect(c.code, c.stderr).toBe(0)
    expect(JSON.parse(c.stdout)).toMatchObject({changed: true, diff: {services: [{service: '10.77.0.10:80/tcp', shadow: {from: false, to: true}}]}})
  })

  it('shows retirement after a fingerprint reports the fixed version', SLOW, async () => {
    const dir = await project()
    expect((await runCli(['protect', '--all'], {cwd: dir})).code).toBe(0)
    const invFile = path.join(dir, '.patchpoint', 'inventory.json')
    writeFileSync(invFile, readFileSync(invFile, 'utf8').replace('"version": "2.4.49", "extra": "(Unix)"', '"version": "2.4.51", "extra": "(Unix)"'))
    const r = await runCli(['protect', '--json'], {cwd: dir})
    expect(r.code, r.stderr).toBe(0)
    const j = JSON.parse(r.stdout) as {changed: boolean; retired: {rule_id: string; host: string; version: string}[]; services: {host: string; port: number; retired: string[]}[]}
    expect(j.changed).toBe(true)
    expect(j.retired).toEqual([expect.objectContaining({rule_id: 'PP-2021-41773', host: '10.77.0.10', version: '2.4.51'})])
    expect(j.services.find((s) => s.host === '10.77.0.10' && s.port === 80)?.retired).toEqual(['PP-2021-41773'])
    const text = await runCli(['protect'], {cwd: dir})
    expect(text.stdout).toMatch(/10\.77\.0\.10:80\/tcp .*PP-2021-41773\s*$/m)
    expect(JSON.parse(readFileSync(path.join(dir, '.patchpoint', 'retired.json'), 'utf8')).retired).toHaveLength(1)
  })

  it('a bad policy.yaml exits 2 with file:line:col', SLOW, async () => {
    const dir = await project()
    writeFileSync(path.join(dir, 'policy.yaml'), 'services:\n  10.77.0.10:80/tcp:\n    rules: [recommended]\n    shadow: maybe\n')
    const r = await runCli(['protect'], {cwd: dir})
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^patchpoint: policy\.yaml:4:13: services\.10\.77\.0\.10:80\/tcp\.shadow: must be a boolean$/m)
    const j = await runCli(['protect', '--json'], {cwd: dir})
    expect(j.code).toBe(2)
    expect(JSON.parse(j.stdout)).toMatchObject({error: {code: 'PROTECT_POLICY_INVALID', exitCode: 2}})
  })

  it('HOST:PORT after --rule IDS is a target, not a rule id (a repeatable flag takes every word after it)', SLOW, async () => {
    const dir = await project()
    type Diff = {changed: boolean; diff: {services: {service: string; change: string; rules_added?: string[]; rules_removed?: string[]}[]}}
    const a = await runCli(['protect', '--rule', 'PP-2021-41773', '--rule', 'PP-SQLI', '10.77.0.10:80', '--json'], {cwd: dir})
    expect(a.code, a.stdout + a.stderr).toBe(0)
    expect((JSON.parse(a.stdout) as Diff).diff.services).toEqual([
      expect.objectContaining({service: '10.77.0.10:80/tcp', change: 'added', rules_added: ['PP-2021-41773', 'PP-SQLI']}),
    ])
    // a target on each side of --rule
    const b = await runCli(['protect', '10.77.0.11:80', '--rule', 'PP-XSS', '10.77.0.12:80', '--json'], {cwd: dir})
    expect(b.code, b.stdout + b.stderr).toBe(0)
    expect((JSON.parse(b.stdout) as Diff).diff.services.map((s) => [s.service, s.rules_added])).toEqual([
      ['10.77.0.11:80/tcp', ['PP-XSS']], ['10.77.0.12:80/tcp', ['PP-XSS']],
    ])
    const c = await runCli(['protect', '--remove', '--rule', 'PP-SQLI', '10.77.0.10:80', '--json'], {cwd: dir})
    expect(c.code, c.stdout + c.stderr).toBe(0)
    expect((JSON.parse(c.stdout) as Diff).diff.services).toEqual([expect.objectContaining({service: '10.77.0.10:80/tcp', rules_removed: ['PP-SQLI']})])
    // --all still refuses targets, wherever they are
    expect((await runCli(['protect', '--all', '--rule', 'PP-SQLI', '10.77.0.10:80'], {cwd: dir})).code).toBe(2)
  })
})

describe('splitTargetWords', () => {
  it('words with a colon are targets, the others rule ids; no id left means the recommended rules', () => {
    expect(splitTargetWords(['192.0.2.10:80'], ['PP-2021-41773', '192.0.2.11:53/udp', '[2001:db8::7]:443', '192.0.2.12/rpc:100003']))
      .toEqual({targets: ['192.0.2.10:80', '192.0.2.11:53/udp', '[2001:db8::7]:443', '192.0.2.12/rpc:100003'], rules: ['PP-2021-41773']})
    expect(splitTargetWords([], ['192.0.2.10:80'])).toEqual({targets: ['192.0.2.10:80'], rules: undefined})
    expect(splitTargetWords(['192.0.2.10:80'])).toEqual({targets: ['192.0.2.10:80'], rules: undefined})
  })
})
