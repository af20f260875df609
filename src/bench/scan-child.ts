/**
 * One scan in the current network namespace, for the scan bench and the lab tests:
 *   ip netns exec CLIENT node dist/bench/scan-child.js '<job json>'
 * Prints one JSON line: {result, wallMs, startMs} (wallMs: the scan itself; startMs: node start-up
 * and module loading before it).
 */
import {discover, type DiscoverOptions} from '../core/scan/discover.js'
import type {FingerprintOptions} from '../core/scan/fingerprint.js'

export interface ScanJob {
  kind: 'discover' | 'fingerprint'
  probesDir?: string
  projectDir?: string
  options: Partial<DiscoverOptions> & Partial<FingerprintOptions>
}

const job = JSON.parse(process.argv[2] ?? '{}') as ScanJob
const project = job.projectDir ? (await import('../core/project/find.js')).projectLocation(job.projectDir, 'flag') : undefined
const t0 = performance.now()
// fingerprint (and the probe compiler: yaml, re2js) is loaded only when needed, as the CLI does
const result = job.kind === 'discover'
  ? await discover({...(job.options as DiscoverOptions), project})
  : await import('../core/scan/fingerprint.js').then(async ({fingerprint}) => {
    const {loadProbes} = await import('../core/scan/probes.js')
    return fingerprint({...(job.options as FingerprintOptions), probes: job.probesDir ? loadProbes(job.probesDir) : loadProbes(), project})
  })
// exit only once the (possibly large) line is flushed to the pipe
process.stdout.write(JSON.stringify({result, wallMs: Math.round(performance.now() - t0), startMs: Math.round(t0)}) + '\n', () => process.exit(0))
