/**
 * The interactive picker of `protect`: the ink component driven through fake terminal streams,
 * its selection applied through runProtect, and the real binary under tmux.
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {copyFileSync, existsSync, mkdtempSync, readFileSync, realpathSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {beforeAll, describe, expect, it} from 'vitest'
import {parse as parseYaml} from 'yaml'
import {initProject} from '../../src/core/project/init.js'
import {projectLocation, type ProjectLocation} from '../../src/core/project/find.js'
import {loadRules} from '../../src/core/rules/engine.js'
import {packageRulesDir} from '../../src/core/rules/rule-schema.js'
import type {CompiledRule} from '../../src/core/rules/compile.js'
import {loadPolicy} from '../../src/core/gateway/policy.js'
import {runProtect} from '../../src/core/protect/protect.js'
import type {ServiceView} from '../../src/core/protect/compile.js'
import {mergeResults, runPicker, selectionOps, type Selection} from '../../src/cli/protect-picker.js'
import {bin, repoRoot} from '../support/cli.js'
import {FakeStdin, FakeStdout} from '../support/fake-tty.js'

const fixture = fileURLToPath(new URL('./fixtures/inventory-lab.json', import.meta.url))
const root = realpathSync(mkdtempSync(path.join(tmpdir(), 'pp-picker-')))
const NOW = '2026-03-02T10:05:00.000Z'
let rules: CompiledRule[] = []
let n = 0

beforeAll(() => {
  rules = loadRules(packageRulesDir).rules
})

async function project(): Promise<ProjectLocation> {
  const dir = path.join(root, `p${n++}`)
  await initProject(dir)
  const p = projectLocation(dir, 'flag')
  copyFileSync(fixture, path.join(p.stateDir, 'inventory.json'))
  return p
}

async function servicesOf(p: ProjectLocation): Promise<ServiceView[]> {
  return (await runProtect({project: p, op: {op: 'show'}, rules, now: NOW, dryRun: true})).services
}

class PickerStdout extends FakeStdout {
  get last(): string { return this.lastWhere((f) => f.trim() !== '') }
}

const KEY = {up: '\u001b[A', down: '\u001b[B', enter: '\r', esc: '\u001b', space: ' '}
const tick = () => new Promise((r) => setTimeout(r, 30))

/** Runs the picker, pressing `keys` one by one (each after a render), returns its result. */
async function drive(services: ServiceView[], keys: string[]): Promise<{sel: Selection | null; out: PickerStdout}> {
  const stdin = new FakeStdin()
  const stdout = new PickerStdout()
  const done = runPicker(services, {stdin: stdin as unknown as NodeJS.ReadStream, stdout: stdout as unknown as NodeJS.WriteStream, debug: true})
  await tick()
  for (const k of keys) {
    stdin.press(k)
    await tick()
  }
  const sel = await Promise.race([done, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 2000))])
  if (sel === 'timeout') throw new Error(`picker did not finish; last frame:\n${stdout.last}`)
  return {sel, out: stdout}
}

const idx = (svcs: ServiceView[], host: string, port: number) => svcs.findIndex((s) => s.host === host && s.port === port)
const moveTo = (i: number) => Array.from({length: i}, () => KEY.down)

describe('protect picker (ink, fake terminal)', () => {
  it('lists the services with product/version and recommended state', async () => {
    const svcs = await servicesOf(await project())
    const {sel, out} = await drive(svcs, ['q'])
    expect(sel).toBeNull()
    const web = svcs[idx(svcs, '10.77.0.10', 80)]
    expect(out.frames.join('')).toContain('10.77.0.10:80/tcp')
    expect(out.frames.join('')).toContain([web.product, web.version].filter(Boolean).join(' '))
    expect(out.frames.join('')).toMatch(/\d+ recommended/)
    expect(out.frames.join('')).toContain('not assigned')
  })

  it('space + a + s + w selects the service with the recommended rules, action and shadow', async () => {
    const svcs = await servicesOf(await project())
    const i = idx(svcs, '10.77.0.10', 80)
    expect(i).toBeGreaterThanOrEqual(0)
    const {sel} = await drive(svcs, [...moveTo(i), KEY.space, 'a', 'a', 's', 'w'])
    expect(sel).toEqual({services: [{target: '10.77.0.10:80/tcp', action: 'log', shadow: true}]})
  })

  it('enter opens the rules: unticking one leaves the others as explicit --rule ids', async () => {
    const svcs = await servicesOf(await project())
    const i = svcs.findIndex((s) => s.recommended.length >= 2)
    expect(i).toBeGreaterThanOrEqual(0)
    const recs = svcs[i].recommended.map((r) => r.rule_id)
    const {sel, out} = await drive(svcs, [...moveTo(i), KEY.enter, KEY.down, KEY.space, KEY.esc, 'w'])
    expect(out.frames.join('')).toContain(recs[1])
    expect(sel?.services).toHaveLength(1)
    expect(sel?.services[0].rules).toEqual(recs.filter((id) => id !== recs[1]))
  })

  it('keys arriving in one write (fast typing, tmux send-keys) each count', async () => {
    const svcs = await servicesOf(await project())
    const i = idx(svcs, '10.77.0.10', 80)
    const {sel} = await drive(svcs, [moveTo(i).join('') + ' as\r\u001b[A' + 'w'])
    expect(sel).toEqual({services: [{target: '10.77.0.10:80/tcp', action: 'fix', shadow: true}]})
  })

  it('q and Esc quit with nothing; w with nothing selected does not finish', async () => {
    const svcs = await servicesOf(await project())
    expect((await drive(svcs, [KEY.space, KEY.esc])).sel).toBeNull()
    const {sel, out} = await drive(svcs, ['w', 'q'])
    expect(sel).toBeNull()
    expect(out.frames.join('')).toContain('nothing selected')
  })

  it('the selection runs through runProtect as `protect T --rule .. --action ..` and lands in policy.yaml', async () => {
    const p = await project()
    const svcs = await servicesOf(p)
    const i = idx(svcs, '10.77.0.10', 80)
    const j = idx(svcs, '10.77.0.10', 21)
    // select both; the cursor ends on the later one, whose action becomes drop
    const {sel} = await drive(svcs, [...moveTo(Math.min(i, j)), KEY.space, ...moveTo(Math.abs(i - j)), KEY.space, 'a', 'a', 'a', 'w'])
    expect(sel?.services.map((s) => s.target).sort()).toEqual(['10.77.0.10:21/tcp', '10.77.0.10:80/tcp'])
    const ops = selectionOps(sel as Selection)
    const results = []
    for (const op of ops) results.push(await runProtect({project: p, op, rules, now: NOW}))
    const r = mergeResults(results)
    expect(r.changed).toBe(true)
    expect(r.diff.assignments.added.sort()).toEqual(['10.77.0.10:21/tcp', '10.77.0.10:80/tcp'])
    const yaml = parseYaml(readFileSync(path.join(p.dir, 'policy.yaml'), 'utf8')) as {services: Record<string, {rules: string[]; action?: string}>}
    const last = i > j ? '10.77.0.10:80/tcp' : '10.77.0.10:21/tcp'
    expect(yaml.services[last]).toMatchObject({rules: ['recommended'], action: 'drop'})
    const policy = loadPolicy(path.join(p.stateDir, 'policy.json'))
    expect(policy.services.find((s) => s.ip === '10.77.0.10' && s.port === 80)?.rules).toContain('PP-2021-41773')
    // the same choice again changes nothing (the CLI path is idempotent)
    for (const op of ops) expect((await runProtect({project: p, op, rules, now: NOW})).changed).toBe(false)
  })
})

const hasTmux = spawnSync('tmux', ['-V']).status === 0

describe.skipIf(!hasTmux)('protect picker (real binary under tmux)', () => {
  beforeAll(() => {
    const built = path.join(repoRoot, 'dist', 'cli', 'protect-picker.js')
    const src = path.join(repoRoot, 'src', 'cli', 'protect-picker.ts')
    const cmd = path.join(repoRoot, 'dist', 'commands', 'protect.js')
    if (!existsSync(built) || statSync(built).mtimeMs < statSync(src).mtimeMs ||
      !existsSync(cmd) || statSync(cmd).mtimeMs < statSync(path.join(repoRoot, 'src/commands/protect.ts')).mtimeMs) {
      try {
        execFileSync('npm', ['run', 'build'], {cwd: repoRoot, stdio: 'pipe'})
      } catch {
        // tsc emits even when another folder fails to type-check
      }
    }
    if (!existsSync(built)) throw new Error('build did not produce dist/cli/protect-picker.js')
  }, 180_000)

  it('shows the services, and space + w writes the assignment to policy.yaml', {timeout: 60_000}, async () => {
    const p = await project()
    const svcs = await servicesOf(p)
    const i = idx(svcs, '10.77.0.10', 80)
    const session = `pp-picker-${process.pid}`
    const tmux = (...args: string[]) => execFileSync('tmux', args, {encoding: 'utf8'})
    const pane = () => tmux('capture-pane', '-p', '-t', session)
    const waitFor = async (re: RegExp) => {
      for (let t = 0; t < 150; t++) {
        const text = pane()
        if (re.test(text)) return text
        await new Promise((r) => setTimeout(r, 100))
      }
      throw new Error(`pane never matched ${re}:\n${pane()}`)
    }
    const env = `env -u CI -u PATCHPOINT_PROJECT NO_COLOR=1`
    tmux('new-session', '-d', '-s', session, '-x', '160', '-y', '40',
      `${env} ${process.execPath} ${bin} protect --project ${p.dir}; echo EXIT=$?; sleep 30`)
    try {
      const first = await waitFor(/choose services and rules/)
      expect(first).toContain('10.77.0.10:80/tcp')
      expect(first).toContain('not assigned')
      for (let k = 0; k < i; k++) tmux('send-keys', '-t', session, 'Down')
      tmux('send-keys', '-t', session, 'Space')
      await waitFor(/\(1 selected\)/)
      tmux('send-keys', '-t', session, 'w')
      const end = await waitFor(/EXIT=\d+/)
      expect(end).toContain('EXIT=0')
      expect(end).toMatch(/changed: .*policy\.yaml/)
    } finally {
      try { tmux('kill-session', '-t', session) } catch { /* gone */ }
    }
    const yaml = parseYaml(readFileSync(path.join(p.dir, 'policy.yaml'), 'utf8')) as {services: Record<string, {rules: string[]}>}
    expect(Object.keys(yaml.services)).toEqual(['10.77.0.10:80/tcp'])
    expect(yaml.services['10.77.0.10:80/tcp'].rules).toEqual(['recommended'])
  })
})
