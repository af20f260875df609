/**
 * A report over a generated event log of at least 1 GB, in bounded memory. Slow: runs with
 * PATCHPOINT_BIG=1 (size: PATCHPOINT_BIG_BYTES, default 1 GiB). Prints time and peak RSS.
 */
import {execFileSync} from 'node:child_process'
import {createWriteStream, mkdtempSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {generateEvents} from '../../src/core/report/testing.js'
import {ensureBuilt, repoRoot} from './support.js'

const BYTES = Number(process.env.PATCHPOINT_BIG_BYTES ?? 1024 ** 3)

describe.skipIf(process.env.PATCHPOINT_BIG !== '1')('report over a 1 GB log', () => {
  it('completes with bounded memory', async () => {
    ensureBuilt()
    const dir = mkdtempSync(path.join(tmpdir(), 'pp-big-'))
    const file = path.join(dir, 'eve.json')
    const out = createWriteStream(file)
    let written = 0
    let n = 0
    const gen = generateEvents(Number.MAX_SAFE_INTEGER, {seed: 9, gateways: ['gw-1', 'gw-2', 'gw-3'], sources: 100_000, stepUs: 1_000_000})
    while (written < BYTES) {
      const chunk: string[] = []
      for (let i = 0; i < 10_000; i++) chunk.push(JSON.stringify(gen.next().value))
      const s = chunk.join('\n') + '\n'
      written += Buffer.byteLength(s)
      n += 10_000
      if (!out.write(s)) await new Promise<void>((r) => out.once('drain', () => r()))
    }
    await new Promise<void>((r) => out.end(() => r()))
    const script = `
      import {runReport} from '${path.join(repoRoot, 'dist/core/report/run.js')}'
      const t0 = Date.now()
      const r = await runReport({inputs: [{label: 'big', logFile: ${JSON.stringify(file)}}]})
      console.log(JSON.stringify({ms: Date.now() - t0, maxRssKb: process.resourceUsage().maxRSS, events: r.totals.events, sources: r.sources.length, approximate: r.limits.approximate}))
    `
    const res = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], {encoding: 'utf8', maxBuffer: 1 << 20}))
    console.log(`big report: ${(statSync(file).size / 1024 ** 3).toFixed(2)} GiB, ${n} events, ${(res.ms / 1000).toFixed(1)} s, peak RSS ${(res.maxRssKb / 1024).toFixed(0)} MiB`)
    rmSync(dir, {recursive: true, force: true})
    expect(res.events).toBe(n)
    expect(res.maxRssKb).toBeLessThan(512 * 1024)
  }, 3_600_000)
})
