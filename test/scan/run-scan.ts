/**
 * Runs one scan in the current network namespace and prints its JSON result: the integration
 * tests start it with `ip netns exec CLIENT node run-scan.js '<json>'` (a compiled copy), so the
 * scanner process lives only inside the lab.
 */
import {discover, type DiscoverOptions} from '../../src/core/scan/discover.js'
import {fingerprint, type FingerprintOptions} from '../../src/core/scan/fingerprint.js'
import {learnLive} from '../../src/core/scan/passive.js'
import {loadProbes} from '../../src/core/scan/probes.js'
import {projectLocation} from '../../src/core/project/find.js'

interface Job {
  kind: 'discover' | 'fingerprint' | 'passive'
  probesDir: string
  projectDir?: string
  options: Partial<DiscoverOptions> & Partial<FingerprintOptions> & {iface?: string; durationMs?: number}
}

const job = JSON.parse(process.argv[2]) as Job
const project = job.projectDir ? projectLocation(job.projectDir, 'flag') : undefined
const t0 = performance.now()
const result = job.kind === 'discover'
  ? await discover({...(job.options as DiscoverOptions), project})
  : job.kind === 'passive'
    // "ready" on stderr once the capture is open: the test starts its traffic then
    ? await learnLive(job.options.iface ?? 'eth0', job.options.durationMs ?? 3000, loadProbes(job.probesDir), {onReady: () => process.stderr.write('ready\n')})
    : await fingerprint({...(job.options as FingerprintOptions), probes: loadProbes(job.probesDir), project})
process.stdout.write(JSON.stringify({result, wallMs: Math.round(performance.now() - t0)}) + '\n', () => process.exit(0))
