/**
 * The outputs README.md shows for `./bin/run.js replay` and `rules list` are what the real binary
 * prints (the replay table whole; the rules table's rows, each as shown, in order from the top).
 */
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {repoRoot, runCli} from '../support/cli.js'

const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8')

/** the ```text block right after the line that starts with `marker` */
function sampleAfter(marker: string): string[] {
  const at = readme.indexOf(marker)
  expect(at, marker).toBeGreaterThanOrEqual(0)
  const m = /```text\n([\s\S]*?)```/.exec(readme.slice(at))
  expect(m, `text block after ${marker}`).not.toBeNull()
  return m![1].split('\n').filter((l) => l !== '')
}

const cells = (line: string) => line.trim().split(/\s{2,}/)

describe('README samples', () => {
  it('`./bin/run.js replay` (no project): the table and the closing line', async () => {
    const r = await runCli(['replay'], {cwd: repoRoot})
    expect(r.code).toBe(1)
    expect(r.stdout.split('\n').filter((l) => l !== '')).toEqual(sampleAfter('`replay` on the shipped samples'))
  })

  it('`rules list`: the rows shown are the first rows, as printed (columns compared cell by cell)', async () => {
    const r = await runCli(['rules', 'list'], {cwd: repoRoot})
    expect(r.code).toBe(0)
    const shown = sampleAfter('`rules list`:').filter((l) => l !== '...')
    const real = r.stdout.split('\n').filter((l) => l !== '')
    expect(shown.map(cells)).toEqual(real.slice(0, shown.length).map(cells))
  })
})
