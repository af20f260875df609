/**
 * `patchpoint demo --offline` with the real binary: no root, no network. When the suite runs as
 * root, the binary is also run as an unprivileged user (setpriv) to prove it needs no root, and
 * the lab demo is checked to refuse in one line and offer --offline.
 */
import {describe, it, expect, afterAll} from 'vitest'
import {execFile} from 'node:child_process'
import {existsSync, readFileSync, rmSync, statSync} from 'node:fs'
import {bin, repoRoot, runCli} from '../support/cli.js'

interface Result {
  mode: string
  ok: boolean
  project: string
  report_html?: string
  steps: {id: string; ok: boolean}[]
  report_check: {log: {alerts: number; fix: number; drop: number; log: number}; report: {alerts: number; fix: number; drop: number; log: number}; matches: boolean}
}

const isRoot = process.getuid?.() === 0
const canDrop = isRoot && existsSync('/usr/bin/setpriv') && (statSync(repoRoot).mode & 0o005) === 0o005
const made: string[] = []

function asNobody(args: string[]): Promise<{code: number; stdout: string; stderr: string}> {
  return new Promise((resolve) => {
    execFile('/usr/bin/setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, bin, ...args],
      {cwd: '/tmp', env: {PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/tmp', NO_COLOR: '1'}, maxBuffer: 64 << 20},
      (err, stdout, stderr) => resolve({code: err ? Number((err as {code?: number}).code ?? 1) : 0, stdout, stderr}))
  })
}

afterAll(() => {
  for (const d of made) rmSync(d, {recursive: true, force: true})
})

describe('patchpoint demo --offline', () => {
  it('replays the shipped captures into a temp project, reports, and the report matches the event log (as nobody when root)', async () => {
    const r = canDrop ? await asNobody(['demo', '--offline', '--json']) : await runCli(['demo', '--offline', '--json'])
    const res = JSON.parse(r.stdout) as Result
    made.push(res.project)
    expect(r.code, r.stderr).toBe(0)
    expect(res.mode).toBe('offline')
    expect(res.ok).toBe(true)
    expect(res.steps.map((s) => s.id)).toEqual(['init', 'replay', 'report'])
    // the shipped captures hold fixed and dropped exploits
    expect(res.report_check.log.fix).toBeGreaterThan(0)
    expect(res.report_check.log.drop).toBeGreaterThan(0)
    expect(res.report_check.report).toEqual({...res.report_check.log, shadow: 0, alerts: res.report_check.log.alerts, log: res.report_check.log.log})
    // count the alerts in the event log ourselves
    const log = readFileSync(`${res.project}/.patchpoint/events/eve.json`, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as {event_type: string})
    expect(log.filter((e) => e.event_type === 'alert').length).toBe(res.report_check.report.alerts)
    expect(res.report_html).toBeDefined()
    const html = readFileSync(res.report_html!, 'utf8')
    expect(html).toMatch(/<svg/)
    expect(html).toContain('PP-SHELLSHOCK')
    if (canDrop) expect(statSync(res.project).uid).toBe(65534)
  }, 120_000)

  it('prints the walk-through with the commands and the HTML report path', async () => {
    const r = await runCli(['demo', '--offline'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('$ patchpoint replay --project')
    expect(r.stdout).toMatch(/Alerts by rule/)
    const html = /HTML report: (\S+)/.exec(r.stdout)?.[1]
    expect(html).toBeDefined()
    expect(existsSync(html!)).toBe(true)
    const project = /project stays in (\S+) /.exec(r.stdout)?.[1]
    if (project) made.push(project)
  }, 120_000)

  it.skipIf(!canDrop)('without root the lab demo says so in one line and offers --offline (exit 4)', async () => {
    const r = await asNobody(['demo'])
    expect(r.code).toBe(4)
    const lines = r.stderr.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/needs root.*demo --offline/)
  }, 60_000)
})
