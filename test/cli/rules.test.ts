/**
 * `patchpoint rules list|show|lint|test`: runs the REAL binary (bin/run.js on the tsc build in dist/).
 */
import {execFile, execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {beforeAll, describe, expect, it} from 'vitest'
import {initProject} from '../../src/core/project/init.js'

const repo = fileURLToPath(new URL('../../', import.meta.url))
const bin = path.join(repo, 'bin', 'run.js')
const root = realpathSync(mkdtempSync(path.join(tmpdir(), 'pp-rules-')))
/** rules known to ship (the pack grows: tests check these are there, not that nothing else is) */
const SHIPPED = ['PP-2011-3192', 'PP-2021-44228', 'PP-SHELLSHOCK']
/** each case runs the binary a few times; a loaded machine makes one run take seconds */
const SLOW = {timeout: 180_000}

interface Run {code: number; stdout: string; stderr: string}

function run(args: string[], opts: {cwd?: string} = {}): Promise<Run> {
  const env: NodeJS.ProcessEnv = {...process.env, NO_COLOR: '1'}
  delete env.PATCHPOINT_PROJECT
  delete env.PATCHPOINT_DEBUG
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], {cwd: opts.cwd ?? root, env}, (err, stdout, stderr) => {
      resolve({code: err ? Number((err as {code?: number}).code ?? 1) : 0, stdout, stderr})
    })
  })
}

const errLines = (r: Run) => r.stderr.split('\n').filter((l) => l !== '')

function newestSource(): number {
  let newest = 0
  const walk = (p: string) => {
    const st = statSync(p)
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(path.join(p, n))
    else if (p.endsWith('.ts') && !p.endsWith('.test.ts')) newest = Math.max(newest, st.mtimeMs)
  }
  for (const p of ['src/cli', 'src/commands', 'src/core/rules', 'src/core/analyzers', 'src/core/project', 'src/core/errors.ts']) {
    if (existsSync(path.join(repo, p))) walk(path.join(repo, p))
  }
  return newest
}

beforeAll(() => {
  const built = path.join(repo, 'dist', 'commands', 'rules', 'test.js')
  if (!existsSync(built) || statSync(built).mtimeMs < newestSource()) {
    try {
      execFileSync('npm', ['run', 'build'], {cwd: repo, stdio: 'pipe'})
    } catch {
      // tsc emits even when another folder fails to type-check; checked below
    }
  }
  if (!existsSync(built)) throw new Error('build did not produce dist/commands/rules/test.js')
}, 180_000)

/** a project (set up in-process) whose rules/ folder holds these files */
let n = 0
async function projectWith(files: Record<string, string>): Promise<string> {
  const dir = path.join(root, `proj${n++}`)
  await initProject(dir)
  mkdirSync(path.join(dir, 'rules'), {recursive: true})
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, 'rules', name), text)
  return dir
}

const LOCAL_RULE = `id: PP-LOCAL-1
rev: 2
status: experimental
title: evil paths
severity: low
affects:
  - product: acme/widget
protocol: http
direction: toserver
units: [request]
detect:
  evil:
    field: http.uri.raw
    contains: evil
condition: evil
action: log
samples:
  malicious:
    - name: evil path
      toserver: "GET /evil HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"
  benign:
    - name: not so benign
      toserver: "GET /evil-twin HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"
`

describe.concurrent('patchpoint rules list (real binary)', SLOW, () => {
  it('--json: every shipped rule with its summary', async () => {
    const r = await run(['rules', 'list', '--json'])
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(Object.keys(out).sort()).toEqual(['dirs', 'problems', 'rules'])
    expect(out.problems).toEqual([])
    const ids: string[] = out.rules.map((x: {id: string}) => x.id)
    expect(ids).toEqual(expect.arrayContaining(SHIPPED))
    expect(ids).toEqual([...ids].sort())
    const killer = out.rules.find((x: {id: string}) => x.id === 'PP-2011-3192')
    expect(Object.keys(killer).sort()).toEqual(['action', 'cves', 'direction', 'file', 'id', 'products', 'protocol', 'rev', 'severity', 'status', 'title'])
    expect(killer).toMatchObject({id: 'PP-2011-3192', cves: ['CVE-2011-3192'], products: ['apache/http_server'], protocol: 'http', direction: 'toserver'})
    expect(killer.rev).toBeGreaterThanOrEqual(1)
    expect(killer.file).toBe(path.join(repo, 'rules', 'apache', 'PP-2011-3192.yaml'))
  })

  it('filters: --product, --protocol, --cve, --status combine', async () => {
    const list = async (...args: string[]) => JSON.parse((await run(['rules', 'list', '--json', ...args])).stdout).rules as {id: string; products: string[]; protocol: string}[]
    const ids = async (...args: string[]) => (await list(...args)).map((x) => x.id)
    const apache = await list('--product', 'apache')
    expect(apache.map((x) => x.id)).toEqual(expect.arrayContaining(['PP-2011-3192', 'PP-2021-44228']))
    expect(apache.map((x) => x.id)).not.toContain('PP-SHELLSHOCK')
    for (const x of apache) expect(x.products.some((p) => p.includes('apache'))).toBe(true)
    expect(await ids('--cve', 'cve-2021-45046')).toEqual(['PP-2021-44228', 'PP-2021-44228-JNDI-LDAP'])
    expect(await ids('--status', 'stable', '--product', 'log4j', '--protocol', 'ldap')).toEqual(['PP-2021-44228-JNDI-LDAP'])
  })

  it('a table by default; a bad --status is a flag error (exit 2)', async () => {
    const r = await run(['rules', 'list', '--cve', 'CVE-2014-6271'])
    expect(r.code).toBe(0)
    expect(r.stdout.split('\n')[0]).toMatch(/^id\s+rev\s+status\s+severity\s+cves\s+products\s+protocol\s+action$/)
    expect(r.stdout).toMatch(/^PP-SHELLSHOCK\s+2\s+stable\s+critical\s+CVE-2014-6271 CVE-2014-7169\s+gnu\/bash\s+http\s+fix$/m)
    const bad = await run(['rules', 'list', '--status', 'shiny'])
    expect(bad.code).toBe(2)
    expect(errLines(bad)[0]).toMatch(/^patchpoint: .*shiny/)
  })

  it("includes the project's rules/ folder", async () => {
    const dir = await projectWith({'PP-LOCAL-1.yaml': LOCAL_RULE})
    const r = await run(['rules', 'list', '--json', '--product', 'acme'], {cwd: dir})
    expect(JSON.parse(r.stdout).rules).toMatchObject([{id: 'PP-LOCAL-1', rev: 2, status: 'experimental', action: 'log', products: ['acme/widget']}])
  })
})

describe.concurrent('patchpoint rules show (real binary)', SLOW, () => {
  it('a known id: everything about it, --json', async () => {
    const dir = await projectWith({'PP-LOCAL-1.yaml': LOCAL_RULE})
    const r = await run(['rules', 'show', 'PP-LOCAL-1', '--json'], {cwd: dir})
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({
      id: 'PP-LOCAL-1', rev: 2, status: 'experimental', severity: 'low', title: 'evil paths', cves: [],
      products: ['acme/widget'], protocol: 'http', direction: 'toserver', action: 'log',
      file: path.join(dir, 'rules', 'PP-LOCAL-1.yaml'), description: '', references: [],
      affects: [{product: 'acme/widget'}], units: ['request'],
      detect: {evil: {field: 'http.uri.raw', contains: 'evil'}}, condition: 'evil', fix: [],
      samples: {malicious: 1, benign: 1},
    })
    const human = await run(['rules', 'show', 'PP-LOCAL-1'], {cwd: dir})
    expect(human.stdout).toContain('PP-LOCAL-1 (rev 2, experimental): evil paths')
    expect(human.stdout).toContain(`file:       ${path.join(dir, 'rules', 'PP-LOCAL-1.yaml')}`)
    expect(human.stdout).toContain('condition:  evil')
    expect(human.stdout).toContain('samples:    1 malicious, 1 benign')
    // a shipped rule: source path, description and the fix that the pack holds
    const pack = JSON.parse((await run(['rules', 'show', 'PP-2011-3192', '--json'])).stdout)
    expect(pack).toMatchObject({id: 'PP-2011-3192', file: path.join(repo, 'rules', 'apache', 'PP-2011-3192.yaml'), cves: ['CVE-2011-3192'], protocol: 'http'})
    expect(pack.description).toMatch(/^httpd before 2\.2\.20/)
    expect(pack.samples.malicious).toBeGreaterThan(0)
    expect(pack.samples.benign).toBeGreaterThan(0)
  })

  it('an unknown id: one line with a did-you-mean hint, exit 2', async () => {
    const r = await run(['rules', 'show', 'PP-2011-3129'])
    expect(r.code).toBe(2)
    expect(errLines(r)).toEqual(["patchpoint: unknown rule 'PP-2011-3129'", "  hint: did you mean 'PP-2011-3192'?"])
    const j = await run(['rules', 'show', 'PP-NOPE-NOPE-NOPE', '--json'])
    expect(j.code).toBe(2)
    expect(JSON.parse(j.stdout)).toMatchObject({error: {message: "unknown rule 'PP-NOPE-NOPE-NOPE'", code: 'RULE_NOT_FOUND', exitCode: 2}})
  })
})

describe.concurrent('patchpoint rules lint (real binary)', SLOW, () => {
  it('the shipped rules are clean: exit 0', async () => {
    const r = await run(['rules', 'lint'])
    expect(r.code).toBe(0)
    expect(r.stdout.trim()).toMatch(/^(\d+) file\(s\), \1 rule\(s\): 0 error\(s\), 0 warning\(s\)$/)
  })

  it('a folder with broken rules: file:line:col: message for each, exit 2', async () => {
    const dir = path.join(root, 'broken')
    mkdirSync(dir, {recursive: true})
    // line 13, column 12: the unknown field's value
    writeFileSync(path.join(dir, 'PP-LOCAL-1.yaml'), LOCAL_RULE.replace('field: http.uri.raw', 'field: http.uri.nope'))
    writeFileSync(path.join(dir, 'PP-LOCAL-2.yaml'), 'id: PP-LOCAL-2\nrev: [oops\n')
    const r = await run(['rules', 'lint', dir])
    expect(r.code).toBe(2)
    const lines = r.stdout.trim().split('\n')
    expect(lines).toContain(`${path.join(dir, 'PP-LOCAL-1.yaml')}:13:12: unknown field 'http.uri.nope' for protocol 'http'`)
    expect(lines.some((l) => l.startsWith(`${path.join(dir, 'PP-LOCAL-2.yaml')}:`) && /:\d+:\d+: \S/.test(l))).toBe(true)
    expect(lines.at(-1)).toMatch(/^2 file\(s\), 0 rule\(s\): [1-9]\d* error\(s\)/)
    const j = await run(['rules', 'lint', path.join(dir, 'PP-LOCAL-1.yaml'), '--json'])
    expect(j.code).toBe(2)
    const out = JSON.parse(j.stdout)
    expect(out).toMatchObject({files: 1, rules: 0, errors: 1, warnings: 0})
    expect(out.problems).toMatchObject([{line: 13, col: 12, severity: 'error', message: "unknown field 'http.uri.nope' for protocol 'http'"}])
  })

  it('a path that does not exist is an error', async () => {
    const r = await run(['rules', 'lint', path.join(root, 'missing')])
    expect(r.code).toBe(2)
    expect(r.stdout).toContain('cannot read: ENOENT')
  })
})

describe.concurrent('patchpoint rules test (real binary)', SLOW, () => {
  it('the shipped rules pass their samples through the real analyzers: exit 0', async () => {
    const r = await run(['rules', 'test', '--json'])
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out).toMatchObject({ok: true, failed: 0, passed: out.rules.length, problems: []})
    expect(out.rules.map((x: {id: string}) => x.id)).toEqual(expect.arrayContaining(SHIPPED))
    // stable rules carry their evidence; rules judged on engine-made events (rates, outbound
    // requests) are at status test and have none
    const list = JSON.parse((await run(['rules', 'list', '--json'])).stdout) as {rules: {id: string; status: string}[]}
    const stable = new Set(list.rules.filter((x) => x.status === 'stable').map((x) => x.id))
    expect(stable.size).toBeGreaterThanOrEqual(45)
    for (const rule of out.rules) if (stable.has(rule.id)) expect(rule.samples.length, rule.id).toBeGreaterThanOrEqual(2)
    const human = await run(['rules', 'test', 'PP-SHELLSHOCK'])
    expect(human.code).toBe(0)
    expect(human.stdout).toMatch(/^PP-SHELLSHOCK\s+benign\s+JSON-looking parameter\s+pass$/m)
    expect(human.stdout.trim().split('\n').at(-1)).toBe('1 rule(s) passed, 0 failed')
  })

  it('a rule whose benign sample matches fails: exit 1, the failing sample named', async () => {
    const dir = await projectWith({'PP-LOCAL-1.yaml': LOCAL_RULE})
    const r = await run(['rules', 'test', 'PP-LOCAL-1', '--json', '--project', dir])
    expect(r.code).toBe(1)
    const out = JSON.parse(r.stdout)
    expect(out).toMatchObject({ok: false, passed: 0, failed: 1})
    expect(out.rules[0].samples).toEqual([
      {kind: 'malicious', name: 'evil path', ok: true, problems: []},
      {kind: 'benign', name: 'not so benign', ok: false, problems: ['benign sample matched', 'benign sample matched when fed in 1-byte chunks']},
    ])
    const human = await run(['rules', 'test', 'PP-LOCAL-1', 'PP-SHELLSHOCK'], {cwd: dir})
    expect(human.code).toBe(1)
    expect(human.stdout).toMatch(/^PP-LOCAL-1\s+benign\s+not so benign\s+FAIL\s+benign sample matched/m)
    expect(human.stdout.trim().split('\n').at(-1)).toBe('1 rule(s) passed, 1 failed')
  })

  it('an unknown id: exit 2 with a hint', async () => {
    const r = await run(['rules', 'test', 'PP-SHELLSHOK'])
    expect(r.code).toBe(2)
    expect(errLines(r)).toEqual(["patchpoint: unknown rule 'PP-SHELLSHOK'", "  hint: did you mean 'PP-SHELLSHOCK'?"])
  })
})
