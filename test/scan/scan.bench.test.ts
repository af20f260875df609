/**
 * Bench: patchpoint discover vs `nmap -sn` (/24 and /20), fingerprint vs `nmap -sV`, in the same
 * run and lab (src/bench/scan.ts, also part of `npm run bench`). Runs only with
 * PATCHPOINT_BENCH=1 (root, nmap and the lab packages needed); prints the markdown table.
 */
import {rmSync} from 'node:fs'
import path from 'node:path'
import {describe, it, expect} from 'vitest'
import {hasCommand, labSupport} from '../lab/netns.js'
import {compileEntry, REPO_ROOT} from '../lab/compile.js'
import {benchScan} from '../../src/bench/scan.js'

const enabled = process.env.PATCHPOINT_BENCH === '1' && labSupport().ok && hasCommand('nmap')

describe.skipIf(!enabled)('scan bench (PATCHPOINT_BENCH=1)', () => {
  it('discover /24 and /20 vs nmap -sn; fingerprint vs nmap -sV', async () => {
    const runner = compileEntry('src/bench/scan-child.ts')
    try {
      const report = await benchScan({runner, probesDir: path.join(REPO_ROOT, 'rules/probes'), runs: Number(process.env.PATCHPOINT_BENCH_RUNS ?? 3), log: (l) => console.log(l)})
      console.log(report)
      // every discovery row: no host that nmap found and we missed
      const rows = report.split('\n').filter((l) => l.startsWith('| discover'))
      expect(rows).toHaveLength(2)
      for (const r of rows) expect(r.split('|').at(-2)!.trim()).toBe('0')
    } finally {
      rmSync(path.dirname(path.dirname(path.dirname(runner))), {recursive: true, force: true})
    }
  }, 900_000)
})
