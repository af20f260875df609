/**
 * Runs the REAL binary (bin/run.js on the tsc build in dist/) in temporary folders.
 */
import {execFile, execFileSync} from 'node:child_process'
import {existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {beforeAll, describe, expect, it} from 'vitest'
import {CONFIG_TEMPLATE, initProject} from '../../src/core/project/init.js'

const repo = fileURLToPath(new URL('../../', import.meta.url))
const bin = path.join(repo, 'bin', 'run.js')
const root = realpathSync(mkdtempSync(path.join(tmpdir(), 'pp-cli-')))

interface Run {code: number; stdout: string; stderr: string}

function run(args: string[], opts: {cwd?: string; env?: Record<string, string>} = {}): Promise<Run> {
  const env: NodeJS.ProcessEnv = {...process.env, ...opts.env}
  if (!opts.env?.PATCHPOINT_PROJECT) delete env.PATCHPOINT_PROJECT
  delete env.PATCHPOINT_DEBUG
  env.NO_COLOR = '1'
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], {cwd: opts.cwd ?? root, env}, (err, stdout, stderr) => {
      resolve({code: err ? Number((err as {code?: number}).code ?? 1) : 0, stdout, stderr})
    })
  })
}

const errLines = (r: Run) => r.stderr.split('\n').filter((l) => l !== '')

/** Newest mtime of the sources the CLI commands are built from. */
function newestSource(): number {
  let newest = 0
  const walk = (p: string) => {
    const st = statSync(p)
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(path.join(p, n))
    else if (p.endsWith('.ts') && !p.endsWith('.test.ts')) newest = Math.max(newest, st.mtimeMs)
  }
  for (const p of ['src/cli', 'src/commands', 'src/core/project', 'src/core/events', 'src/core/errors.ts']) {
    if (existsSync(path.join(repo, p))) walk(path.join(repo, p))
  }
  return newest
}

beforeAll(() => {
  // `npm test` builds first (pretest); build here only when dist is older than our sources.
  // tsc emits even when other folders are mid-edit and fail to type-check; we only need our commands
  const built = path.join(repo, 'dist', 'commands', 'config', 'check.js')
  if (!existsSync(built) || statSync(built).mtimeMs < newestSource()) {
    try {
      execFileSync('npm', ['run', 'build'], {cwd: repo, stdio: 'pipe'})
    } catch {
      // checked below
    }
  }
  if (!existsSync(path.join(repo, 'dist', 'commands', 'init.js'))) throw new Error('build did not produce dist/commands/init.js')
}, 180_000)

describe.concurrent('patchpoint init (real binary)', () => {
  it('creates a project; --json gives {project, created, files}; exit 0', async () => {
    const dir = path.join(root, 'gw1')
    const r = await run(['init', dir, '--json'])
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(Object.keys(out).sort()).toEqual(['created', 'files', 'project'])
    expect(out.project).toBe(dir)
    expect(out.created).toBe(true)
    expect(out.files).toEqual(expect.arrayContaining([path.join(dir, 'patchpoint.yaml'), path.join(dir, '.patchpoint', 'events')]))
    expect(readFileSync(path.join(dir, 'patchpoint.yaml'), 'utf8')).toMatch(/^# patchpoint\.yaml/)
  })

  it('is idempotent: the second run changes nothing and says so', async () => {
    const dir = path.join(root, 'gw2')
    expect((await run(['init', dir])).code).toBe(0)
    writeFileSync(path.join(dir, 'patchpoint.yaml'), 'gateway: {id: edited}\n')
    const r = await run(['init', dir, '--json'])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({project: dir, created: false, files: []})
    const human = await run(['init'], {cwd: dir})
    expect(human.code).toBe(0)
    expect(human.stdout).toBe(`${dir} is already a patchpoint project; nothing changed.\n`)
    expect(readFileSync(path.join(dir, 'patchpoint.yaml'), 'utf8')).toBe('gateway: {id: edited}\n')
  })

  it('help has a summary and examples', async () => {
    const r = await run(['init', '--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('EXAMPLES')
    expect(r.stdout).toContain('--project')
    expect(r.stdout).toContain('--json')
  })

  it('an unknown flag: one line (+hint), exit 2, no stack trace', async () => {
    const r = await run(['init', '--bogus'])
    expect(r.code).toBe(2)
    expect(errLines(r)[0]).toBe('patchpoint: Nonexistent flag: --bogus')
    expect(errLines(r).length).toBeLessThanOrEqual(2)
    expect(r.stderr).not.toMatch(/\n\s+at /)
    const j = await run(['init', '--bogus', '--json'])
    expect(j.code).toBe(2)
    expect(JSON.parse(j.stdout)).toMatchObject({error: {message: 'Nonexistent flag: --bogus', code: 'FLAG_INVALID', exitCode: 2}})
  })
})

describe.concurrent('patchpoint config check (real binary)', () => {
  let n = 0
  /** a fresh project (set up in-process: faster than running the binary) with this config */
  async function project(config: string): Promise<string> {
    const dir = path.join(root, `cfg${n++}`)
    await initProject(dir)
    writeFileSync(path.join(dir, 'patchpoint.yaml'), config)
    return dir
  }

  it('a fresh project is valid; --json prints the effective config', async () => {
    const dir = await project(CONFIG_TEMPLATE)
    const r = await run(['config', 'check', '--json'], {cwd: path.join(dir, '.patchpoint', 'events')})
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out).toMatchObject({project: dir, valid: true, warnings: []})
    expect(out.effective.events).toEqual({file: '.patchpoint/events/eve.json', rotate_bytes: 104857600, keep: 5})
    expect(out.effective.engine.tcp_policy).toBe('first')
  })

  it('a YAML syntax error: exactly one line naming patchpoint.yaml:LINE:COL, exit 2', async () => {
    const dir = await project('events:\n  keep: 3\n  file: [oops\n')
    const r = await run(['config', 'check'], {cwd: dir})
    expect(r.code).toBe(2)
    expect(errLines(r)).toHaveLength(1)
    expect(errLines(r)[0]).toMatch(/^patchpoint: patchpoint\.yaml:\d+:\d+: \S/)
    expect(r.stdout).toBe('')
  })

  it('a schema error: exactly one line naming the exact position, exit 2', async () => {
    const dir = await project('engine:\n  limits:\n    flows: lots\n')
    const r = await run(['config', 'check'], {cwd: dir})
    expect(r.code).toBe(2)
    expect(errLines(r)).toEqual(['patchpoint: patchpoint.yaml:3:12: engine.limits.flows: must be an integer'])
    const j = await run(['config', 'check', '--json'], {cwd: dir})
    expect(j.code).toBe(2)
    expect(JSON.parse(j.stdout)).toEqual({error: {message: 'patchpoint.yaml:3:12: engine.limits.flows: must be an integer', code: 'CONFIG_INVALID', exitCode: 2}})
  })

  it('an unknown top-level key: did-you-mean hint', async () => {
    const dir = await project('evnets: {}\n')
    const r = await run(['config', 'check'], {cwd: dir})
    expect(r.code).toBe(2)
    expect(errLines(r)).toEqual(["patchpoint: patchpoint.yaml:1:1: unknown top-level key 'evnets'", "  hint: did you mean 'events'?"])
  })

  it('warnings exit 1 (findings) and still print the JSON result', async () => {
    const dir = await project('hosts:\n  - match: 10.0.0.0/8\n  - match: 10.0.0.0/8\n')
    const r = await run(['config', 'check', '--json'], {cwd: dir})
    expect(r.code).toBe(1)
    expect(JSON.parse(r.stdout).warnings).toEqual(["patchpoint.yaml:3:5: warning: hosts[1]: '10.0.0.0/8' is already matched by hosts[0]; the first entry wins"])
  })

  it('finds the project through --project and PATCHPOINT_PROJECT; none -> exit 2 with a hint', async () => {
    const dir = await project('gateway: {id: gw-x}\n')
    const byFlag = await run(['config', 'check', '--json', '--project', dir], {cwd: root})
    expect(JSON.parse(byFlag.stdout).effective.gateway.id).toBe('gw-x')
    const byEnv = await run(['config', 'check', '--json'], {cwd: root, env: {PATCHPOINT_PROJECT: dir}})
    expect(JSON.parse(byEnv.stdout).project).toBe(dir)
    const none = await run(['config', 'check'], {cwd: root})
    expect(none.code).toBe(2)
    expect(errLines(none)).toEqual([
      `patchpoint: not a patchpoint project: no patchpoint.yaml in ${root} or any parent folder`,
      '  hint: create one with `patchpoint init`, or point to it with --project DIR or PATCHPOINT_PROJECT',
    ])
  })
})
