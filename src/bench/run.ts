/**
 * `npm run bench`: every figure beside a baseline measured in the same run.
 *
 * Replay: a mixed capture of PATCHPOINT_BENCH_MB megabytes (default 1024) built from the sample
 * captures; the baseline is only reading the same file. Each measurement runs in its own process
 * (peak RSS is per process); the median of PATCHPOINT_BENCH_RUNS (default 3) runs is reported.
 * Then, as root, the scanner and gateway labs (PATCHPOINT_BENCH_LAB=0 skips them).
 */
import {execFileSync} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {buildMixedCapture, sourceCaptures} from './mixed-capture.js'
import {buildBulkCapture} from './bulk-capture.js'
import {benchGateway} from './gateway.js'
import {benchScan} from './scan.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const repo = path.resolve(here, '../..')
const targetMb = Number(process.env.PATCHPOINT_BENCH_MB ?? 1024)
const runs = Math.max(1, Number(process.env.PATCHPOINT_BENCH_RUNS ?? 3))

interface Measure {
  mode: string
  packets: number
  bytes: number
  seconds: number
  events: number
  maxRssMb: number
}

function measure(mode: string, file: string): Measure {
  const results: Measure[] = []
  for (let i = 0; i < runs; i++) {
    const out = execFileSync(process.execPath, [path.join(here, 'child.js'), mode, file], {encoding: 'utf8', maxBuffer: 1 << 20})
    results.push(JSON.parse(out.trim().split('\n').pop()!) as Measure)
  }
  results.sort((a, b) => a.seconds - b.seconds)
  const median = results[Math.floor(results.length / 2)]
  return {...median, maxRssMb: Math.max(...results.map((r) => r.maxRssMb))}
}

function table(title: string, rows: [string, Measure][]): void {
  const base = rows[0][1]
  const noRules = rows[1][1]
  console.log('')
  console.log(`### ${title}`)
  console.log('')
  console.log('| run | Gbit/s | packets/s | vs read | vs no rules | peak RSS MB |')
  console.log('|---|---|---|---|---|---|')
  for (const [name, m] of rows) {
    const gbps = (m.bytes * 8) / m.seconds / 1e9
    const pps = m.packets / m.seconds
    console.log(`| ${name} | ${gbps.toFixed(2)} | ${Math.round(pps).toLocaleString('en-US')} | ${(base.seconds / m.seconds).toFixed(3)} | ${(noRules.seconds / m.seconds).toFixed(3)} | ${m.maxRssMb.toFixed(0)} |`)
  }
}

function replayRows(file: string): [string, Measure][] {
  return [
    ['read only (baseline)', measure('read', file)],
    ['replay, engine without rules', measure('replay', file)],
    ['replay, analyzers + rule pack', measure('replay-rules', file)],
  ]
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'patchpoint-bench-'))
try {
  console.log(`patchpoint bench: median of ${runs} runs per figure, ${os.cpus().length} cores, node ${process.version}`)
  const mixed = path.join(dir, 'mixed.pcap')
  const sources = sourceCaptures([path.join(repo, 'examples/pcaps'), path.resolve(repo, '../shared/corpus/pcaps')])
  const built = buildMixedCapture(mixed, sources, targetMb * 1e6)
  table(`mixed capture: ${built.packets.toLocaleString('en-US')} packets, ${(fs.statSync(mixed).size / 1e9).toFixed(2)} GB, ${sources.length} sample captures repeated with shifted addresses`, replayRows(mixed))
  fs.rmSync(mixed)
  const bulk = path.join(dir, 'bulk.pcap')
  const b = buildBulkCapture(bulk, targetMb * 1e6)
  table(`bulk capture: ${b.packets.toLocaleString('en-US')} packets, ${(fs.statSync(bulk).size / 1e9).toFixed(2)} GB, HTTP downloads of 1 MB in 1448-byte segments`, replayRows(bulk))
} finally {
  fs.rmSync(dir, {recursive: true, force: true})
}

// the gateway and the scanners against the kernel bridge and nmap, in namespace labs (root;
// each says why it skipped otherwise)
if (process.env.PATCHPOINT_BENCH_LAB !== '0') {
  console.log('')
  console.log(await benchScan({log: (l) => console.error(l)}))
  console.log('')
  console.log(await benchGateway())
}
