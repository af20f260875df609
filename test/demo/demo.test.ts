/**
 * The full `patchpoint demo --json` as root: namespace lab, real nginx (and vsftpd/postfix when
 * installed), the real commands, the rule pack's exploit samples through the inline gateway.
 * Checks: benign traffic arrived byte for byte, every exploit sample was stopped, the report
 * matches the event log, and the machine is left as found (no demo namespace remains).
 */
import {describe, it, expect, afterAll} from 'vitest'
import {execFileSync} from 'node:child_process'
import {readFileSync, rmSync} from 'node:fs'
import {runCli} from '../support/cli.js'

function skipReason(): string | null {
  if (process.getuid?.() !== 0) return 'the demo lab needs root'
  for (const c of ['ip', 'nft', 'nginx', 'curl']) {
    try {
      execFileSync('sh', ['-c', `command -v ${c} || test -x /usr/sbin/${c}`], {stdio: 'ignore'})
    } catch {
      return `the demo lab needs ${c}`
    }
  }
  return null
}
const skip = skipReason()
if (skip) console.warn(`skipping the demo lab test: ${skip}`)

const demoNamespaces = () => execFileSync('ip', ['netns', 'list'], {encoding: 'utf8'}).split('\n').filter((l) => l.startsWith('ppdemo'))

interface Result {
  mode: string
  ok: boolean
  project: string
  report_html?: string
  lab: {namespaces: string[]; kept: boolean; servers: {name: string; started: boolean}[]}
  steps: {id: string; ok: boolean; note?: string}[]
  benign: {what: string; arrived: boolean; bytes: number; expected_sha256: string; got_sha256: string}[]
  exploits: {rule: string; name: string; port: number; local_port: number; stopped: boolean; action: string}[]
  report_check: {log: Record<string, number>; report: Record<string, number>; matches: boolean}
}

describe.skipIf(skip !== null)('patchpoint demo (root, namespace lab)', () => {
  let project = ''
  afterAll(() => {
    if (project) rmSync(project, {recursive: true, force: true})
  })

  it('runs end to end: benign arrives, exploits are stopped, the report matches the event log, nothing is left behind', async () => {
    const before = demoNamespaces()
    const t0 = Date.now()
    const r = await runCli(['demo', '--json'])
    const ms = Date.now() - t0
    const res = JSON.parse(r.stdout) as Result
    project = res.project
    const failed = res.steps.filter((s) => !s.ok).map((s) => `${s.id}: ${s.note}`).join('; ')
    expect(res.steps.map((s) => s.id)).toEqual(['lab', 'init', 'discover', 'fingerprint', 'protect', 'run', 'benign', 'exploits', 'report'])
    // benign: the HTTP page (and FTP file when vsftpd runs) byte for byte
    expect(res.benign.length).toBeGreaterThanOrEqual(1)
    for (const b of res.benign) {
      expect(b.arrived, b.what).toBe(true)
      expect(b.got_sha256).toBe(b.expected_sha256)
    }
    // exploits: every sample sent was stopped by an enforcing alert on its own connection
    expect(res.exploits.length).toBeGreaterThan(0)
    const passed = res.exploits.filter((e) => !e.stopped).map((e) => `${e.rule} "${e.name}"`)
    expect(passed, failed).toEqual([])
    // the report matches the event log (counted here, independently of the demo)
    const events = readFileSync(`${project}/.patchpoint/events/eve.json`, 'utf8').split('\n').filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as {event_type: string; src_port?: number; patchpoint?: {action?: string}})
    const alerts = events.filter((e) => e.event_type === 'alert')
    expect(res.report_check.report.alerts).toBe(alerts.length)
    for (const a of ['fix', 'drop', 'log'] as const) expect(res.report_check.report[a], a).toBe(alerts.filter((e) => e.patchpoint?.action === a).length)
    for (const e of res.exploits) expect(alerts.some((x) => x.src_port === e.local_port), `${e.rule} ${e.name}`).toBe(true)
    expect(res.report_check.matches).toBe(true)
    expect(readFileSync(res.report_html!, 'utf8')).toMatch(/<svg/)
    expect(r.code, failed).toBe(0)
    expect(res.ok).toBe(true)
    // torn down: the lab's namespaces are gone, nothing else was touched
    expect(res.lab.kept).toBe(false)
    expect(demoNamespaces()).toEqual(before)
    for (const ns of res.lab.namespaces) expect(demoNamespaces()).not.toContain(ns)
    expect(ms).toBeLessThan(150_000)
  }, 240_000)

  it('--keep leaves the lab up with the gateway running; --teardown removes it', async () => {
    const r = await runCli(['demo', '--keep', '--json'])
    const res = JSON.parse(r.stdout) as Result
    rmSync(res.project, {recursive: true, force: true})
    expect(res.lab.kept).toBe(true)
    const gw = res.lab.namespaces.find((n) => n.endsWith('-gw'))!
    const atk = res.lab.namespaces.find((n) => n.endsWith('-atk'))!
    try {
      expect(demoNamespaces().some((l) => l.startsWith(gw))).toBe(true)
      // still protected: an exploit through the kept gateway is reset
      const out = execFileSync('ip', ['netns', 'exec', atk, 'sh', '-c',
        "curl -sS -o /dev/null -w '%{http_code}' --max-time 5 'http://198.51.100.10/?id=1%27%20OR%20%271%27=%271' ; echo \" rc=$?\""], {encoding: 'utf8'})
      expect(out).not.toMatch(/^200/)
      // and benign traffic flows
      expect(execFileSync('ip', ['netns', 'exec', atk, 'curl', '-sS', '--max-time', '5', 'http://198.51.100.10/index.html'], {encoding: 'utf8'})).toContain('patchpoint demo')
    } finally {
      const t = await runCli(['demo', '--teardown', '--json'])
      expect(t.code).toBe(0)
      expect((JSON.parse(t.stdout) as {teardown: {namespaces: string[]}}).teardown.namespaces).toEqual(expect.arrayContaining(res.lab.namespaces))
    }
    for (const ns of res.lab.namespaces) expect(demoNamespaces().some((l) => l.startsWith(ns))).toBe(false)
  }, 240_000)
})
