/**
 * Files the user names on the command line (report --out, rules bundle --out and --generate-key)
 * land where the README and the help say, even when their folder does not exist yet, and a path
 * the file system refuses is one line and exit 2, not "internal error" and exit 70. The real
 * binary over dist/, in temporary folders.
 */
import {existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, statSync, writeFileSync, copyFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {beforeAll, describe, expect, it} from 'vitest'
import {repoRoot, runCli, type CliRun} from '../support/cli.js'

const root = realpathSync(mkdtempSync(path.join(tmpdir(), 'pp-outfiles-')))
const project = path.join(root, 'gw')
const home = path.join(root, 'home')
const cli = (...args: string[]) => runCli(args, {cwd: project, env: {HOME: home}})

function oneLineError(r: CliRun, pattern: RegExp): void {
  expect(r.code).toBe(2)
  const lines = r.stderr.split('\n').filter((l) => l !== '')
  expect(lines).toHaveLength(1)
  expect(lines[0]).toMatch(pattern)
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /)
}

describe('output files in folders that do not exist yet', () => {
  beforeAll(async () => {
    mkdirSync(home)
    expect((await runCli(['init', project])).code).toBe(0)
  }, 60_000)

  it("README's cron line: report --project DIR --since 24h --out DIR/reports/DATE.html makes reports/", async () => {
    const out = path.join(project, 'reports', '2026-03-01.html')
    const r = await runCli(['report', '--project', project, '--since', '24h', '--out', out], {cwd: root})
    expect(r.stderr).toBe(`patchpoint: report written to ${out}\n`)
    expect(r.code).toBe(0)
    expect(statSync(out).size).toBeGreaterThan(1000)
  })

  it('report --out for xlsx and a csv folder, nested', async () => {
    expect((await cli('report', '--out', 'a/b/march.xlsx')).code).toBe(0)
    expect(existsSync(path.join(project, 'a/b/march.xlsx'))).toBe(true)
    expect((await cli('report', '--format', 'csv', '--out', 'c/d')).code).toBe(0)
    expect(readdirSync(path.join(project, 'c/d'))).toContain('summary.csv')
  })

  it("the help's rules bundle examples on a machine without ~/.patchpoint: the key folder is made private", async () => {
    const key = path.join(home, '.patchpoint', 'signing.key')
    const g = await cli('rules', 'bundle', '--generate-key', key)
    expect(g.stderr).toBe('')
    expect(g.code).toBe(0)
    expect(statSync(key).mode & 0o777).toBe(0o600)
    expect(statSync(path.dirname(key)).mode & 0o777).toBe(0o700)
    expect(existsSync(key + '.pub')).toBe(true)
    // a fresh project has no rules/ folder yet: one line saying so, not ENOENT from lstat
    const none = await cli('rules', 'bundle', '--key', key)
    expect(none.code).toBe(2)
    expect(none.stderr.split('\n').filter((l) => l !== '')).toEqual([
      `patchpoint: ${path.join(project, 'rules')}: no such folder, nothing to bundle`,
      "  hint: put the rule files in the project's rules/ folder, or name one with --dir",
    ])
    // "Bundle this project's rules/" (into a folder that does not exist yet either)
    mkdirSync(path.join(project, 'rules', 'iis'), {recursive: true})
    copyFileSync(path.join(repoRoot, 'rules/iis/PP-2015-1635.yaml'), path.join(project, 'rules/iis/PP-2015-1635.yaml'))
    const b = await cli('rules', 'bundle', '--key', key, '--out', 'files/rules-2026-03.bundle.json')
    expect(b.stderr).toBe('')
    expect(b.code).toBe(0)
    expect(existsSync(path.join(project, 'files/rules-2026-03.bundle.json'))).toBe(true)
  })

  it('a path the file system refuses is one line naming the flag and the file, exit 2', async () => {
    mkdirSync(path.join(project, 'taken.html'))
    writeFileSync(path.join(project, 'plain-file'), 'x')
    oneLineError(await cli('report', '--out', 'taken.html'), /^patchpoint: --out .*taken\.html: cannot write it \(it is a folder\)$/)
    oneLineError(await cli('report', '--out', 'plain-file/r.html'), /^patchpoint: --out .*plain-file\/r\.html: cannot write it \(a part of the path is a file, not a folder\)$/)
    oneLineError(await cli('rules', 'bundle', '--generate-key', 'plain-file/k'), /^patchpoint: --generate-key .*plain-file\/k: cannot write it/)
  })
})
