/**
 * The real binary: report figures against the log they came from, the html report in headless
 * Chromium (skipped when absent), and signed rule updates (tampered bundle refused, rules unchanged).
 */
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {beforeAll, describe, expect, it} from 'vitest'
import {bruteForce, generateEvents} from '../../src/core/report/testing.js'
import {ensureBuilt, repoRoot, runCli} from './support.js'

const root = realpathSync(mkdtempSync(path.join(tmpdir(), 'pp-report-cli-')))
const events = (seed: number, gw: string) => [...generateEvents(800, {seed, gateways: [gw]})]
const gwA = events(21, 'gw-a')
const gwB = events(22, 'gw-b')

function project(name: string, evs: ReturnType<typeof events>): string {
  const p = path.join(root, name)
  mkdirSync(path.join(p, '.patchpoint', 'events'), {recursive: true})
  writeFileSync(path.join(p, 'patchpoint.yaml'), `gateway: {id: ${name}}\n`)
  writeFileSync(path.join(p, '.patchpoint', 'events', 'eve.json'), evs.map((e) => JSON.stringify(e)).join('\n') + '\n')
  return p
}

beforeAll(() => ensureBuilt(), 300_000)

describe.concurrent('patchpoint report (real binary)', () => {
  const a = project('gw-a', gwA)
  const b = project('gw-b', gwB)

  it('--format json over two gateways (--from): figures equal counts from the logs', async () => {
    const r = await runCli(['report', '--from', a, '--from', b, '--format', 'json', '--top', '1000'])
    expect(r.code, r.stderr).toBe(0)
    const data = JSON.parse(r.stdout)
    const brute = bruteForce([...gwA, ...gwB])
    expect(data.totals).toMatchObject({events: 1600, alerts: brute.alerts, anomalies: brute.anomalies, by_action: brute.byAction})
    expect(new Map(data.cves.map((x: {key: string; count: number}) => [x.key, x.count]))).toEqual(brute.byKey.cves)
    expect(new Map(data.gateways.map((x: {key: string; count: number}) => [x.key, x.count]))).toEqual(brute.byKey.gateways)
  })

  it('--format csv --out DIR: one file per table, the sources table equals the log', async () => {
    const out = path.join(root, 'csv')
    const r = await runCli(['report', '--format', 'csv', '--out', out, '--top', '1000'], {cwd: a})
    expect(r.code, r.stderr).toBe(0)
    expect(readdirSync(out)).toEqual(expect.arrayContaining(['sources.csv', 'rules.csv', 'exposure.csv', 'timeline.csv']))
    const lines = readFileSync(path.join(out, 'sources.csv'), 'utf8').trim().split('\n').slice(1)
    const got = new Map(lines.map((l) => [l.split(',')[0], Number(l.split(',')[1])]))
    expect(got).toEqual(bruteForce(gwA).byKey.sources)
  })

  it('--json --out FILE: the data as JSON on stdout, and the file written too', async () => {
    const out = path.join(root, 'json-and-out', 'report.html')
    const r = await runCli(['report', '--json', '--out', out], {cwd: a})
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout).totals).toMatchObject({events: 800})
    expect(readFileSync(out, 'utf8')).toMatch(/^<!DOCTYPE html>/i)
  })

  it('--since/--until and bad values', async () => {
    const r = await runCli(['report', '--json', '--since', '2999-01-01'], {cwd: a})
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout).totals).toMatchObject({events: 0, filtered: 800})
    const bad = await runCli(['report', '--since', 'someday'], {cwd: a})
    expect(bad.code).toBe(2)
    expect(bad.stderr.split('\n')[0]).toBe("patchpoint: --since: cannot read 'someday' as a time")
  })

  it('xlsx and terminal table', async () => {
    const x = await runCli(['report', '--out', path.join(root, 'r.xlsx')], {cwd: a})
    expect(x.code, x.stderr).toBe(0)
    expect(readFileSync(path.join(root, 'r.xlsx')).subarray(0, 2).toString()).toBe('PK')
    const t = await runCli(['report'], {cwd: a})
    expect(t.stdout).toMatch(/^patchpoint report: 800 events/)
    expect(t.stdout).toMatch(/Top attacking sources/)
  })

  const chromium = ['chromium', 'chromium-browser', 'google-chrome'].find((c) => {
    try {
      execFileSync('sh', ['-c', `command -v ${c}`], {stdio: 'pipe'})
      return true
    } catch {
      return false
    }
  })

  it.skipIf(!chromium)('html renders in headless Chromium to a PNG without console errors', async () => {
    const html = path.join(root, 'r.html')
    const r = await runCli(['report', '--from', a, '--from', b, '--out', html])
    expect(r.code, r.stderr).toBe(0)
    const png = path.join(root, 'r.png')
    let log = ''
    try {
      execFileSync(chromium!, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run', `--user-data-dir=${path.join(root, 'chrome-profile')}`, '--enable-logging=stderr', '--v=0',
        '--window-size=1200,3000', `--screenshot=${png}`, `file://${html}`], {stdio: 'pipe', timeout: 120_000})
    } catch (e) {
      log = String((e as {stderr?: Buffer}).stderr ?? e)
    }
    expect(existsSync(png), log).toBe(true)
    expect(statSync(png).size).toBeGreaterThan(10_000)
    expect(readFileSync(png).subarray(1, 4).toString()).toBe('PNG')
    // console messages and CSP violations are logged as CONSOLE(...) / "Refused to"
    expect(log).not.toMatch(/CONSOLE\(|Refused to|Uncaught/)
  }, 180_000)
})

describe('patchpoint rules bundle / update (real binary)', () => {
  it('signs, installs, refuses a tampered bundle leaving rules unchanged, rolls back', async () => {
    const p = project('gw-rules', [])
    mkdirSync(path.join(root, 'src-rules'), {recursive: true})
    writeFileSync(path.join(root, 'src-rules', 'PP-SHELLSHOCK.yaml'), readFileSync(path.join(repoRoot, 'rules/generic/PP-SHELLSHOCK.yaml')))
    const keyFile = path.join(root, 'signing.key')
    const k = await runCli(['rules', 'bundle', '--generate-key', keyFile])
    expect(k.code, k.stderr).toBe(0)
    expect(statSync(keyFile).mode & 0o777).toBe(0o600)
    const bundle = path.join(root, 'r1.bundle.json')
    const mk = await runCli(['rules', 'bundle', '--key', keyFile, '--dir', path.join(root, 'src-rules'), '--out', bundle])
    expect(mk.code, mk.stderr).toBe(0)
    // not trusted yet
    const untrusted = await runCli(['rules', 'update', '--from', bundle], {cwd: p})
    expect(untrusted.code).toBe(2)
    expect(untrusted.stderr).toMatch(/^patchpoint: .*no trusted keys.*rules unchanged\n/)
    mkdirSync(path.join(p, '.patchpoint', 'trusted-keys'), {recursive: true})
    writeFileSync(path.join(p, '.patchpoint', 'trusted-keys', 'ops.pub'), readFileSync(keyFile + '.pub'))
    const ok = await runCli(['rules', 'update', '--from', root, '--json'], {cwd: p}) // DIR: newest *.bundle.json
    expect(ok.code, ok.stderr).toBe(0)
    expect(JSON.parse(ok.stdout)).toMatchObject({changed: true})
    const before = readFileSync(path.join(p, 'rules', 'PP-SHELLSHOCK.yaml'), 'utf8')
    // tamper: change one byte of the rule inside the signed bundle
    const doc = JSON.parse(readFileSync(bundle, 'utf8'))
    const text = Buffer.from(doc.files['PP-SHELLSHOCK.yaml'], 'base64').toString().replace('severity: critical', 'severity: low')
    doc.files['PP-SHELLSHOCK.yaml'] = Buffer.from(text).toString('base64')
    const bad = path.join(root, 'tampered.json')
    writeFileSync(bad, JSON.stringify(doc))
    const refused = await runCli(['rules', 'update', '--from', bad], {cwd: p})
    expect(refused.code).toBe(2)
    expect(refused.stderr.trim().split('\n')).toHaveLength(1)
    expect(refused.stderr).toMatch(/differs from the signed manifest: PP-SHELLSHOCK\.yaml; rules unchanged/)
    delete doc.signature
    writeFileSync(bad, JSON.stringify(doc))
    expect((await runCli(['rules', 'update', '--from', bad], {cwd: p})).stderr).toMatch(/not signed/)
    expect(readFileSync(path.join(p, 'rules', 'PP-SHELLSHOCK.yaml'), 'utf8')).toBe(before)
    const again = await runCli(['rules', 'update', '--from', bundle, '--json'], {cwd: p})
    expect(JSON.parse(again.stdout)).toMatchObject({changed: false})
    const noPrev = await runCli(['rules', 'update', '--rollback'], {cwd: p})
    expect(noPrev.code).toBe(2)
    expect(noPrev.stderr).toMatch(/no previous rules/)
  }, 120_000)
})
