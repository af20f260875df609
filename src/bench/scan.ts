/**
 * Scan bench: `discover` against `nmap -sn` with the same probes, and `fingerprint` against
 * `nmap -sV` on the same hosts, in the same run and the same namespace lab (needs root, nmap,
 * nginx, OpenSSH, nftables). Each discovery figure is the median of `runs` alternating runs.
 *
 *   ns client 198.18.0.2 ─┐                               (lab prefix /20, RFC 2544 range,
 *   ns web    198.18.0.11  nginx :80 :43389, OpenSSH :22  ─┤  no route out)
 *   ns fw     198.18.0.14  drops all IP but :2222 (OpenSSH)─┤ br0 (ns sw)
 *   ns crowd  198.18.0.20-59 (40 addresses, nginx :80)     ─┤
 *   ns range  198.18.8.1 + local route 198.18.4.0/22       ─┘
 *             (answers ARP, ICMP and TCP for 1,024 addresses: the /20 responder)
 *
 * Both scanners run inside `client` only. Our time is the whole process (node start included),
 * the same as nmap's; the in-process time is shown beside it.
 */
import {execFileSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {hasCommand, Lab, labSupport} from '../core/lab/netns.js'
import {firewallAllBut, startNginx, startSshd} from '../core/lab/servers.js'
import type {DiscoverResult} from '../core/scan/discover.js'
import type {FingerprintResult} from '../core/scan/fingerprint.js'

const here = path.dirname(fileURLToPath(import.meta.url))

export const SCAN_BENCH = {
  net: '198.18.0',
  /** probes shared with nmap: -PE -PP -PS<ports> -PA80,443 */
  synPorts: [21, 22, 25, 80, 443, 3389] as readonly number[],
  rate: 20_000,
  runs: 3,
  fingerprintPorts: [22, 80, 2222, 43389] as readonly number[],
}

export interface ScanBenchOptions {
  /** compiled scan-child.js (default: next to this module, i.e. dist/bench) */
  runner?: string
  /** rules/probes folder */
  probesDir?: string
  runs?: number
  rate?: number
  log?: (line: string) => void
}

interface Timed<T> { result: T; wallMs: number; startMs: number; processMs: number }

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** Builds the lab, runs the scans, tears the lab down; returns a markdown report. */
export async function benchScan(o: ScanBenchOptions = {}): Promise<string> {
  const support = labSupport()
  if (!support.ok) return `scan bench skipped: ${support.reason}\n`
  const missing = ['nmap', 'nginx', 'sshd', 'nft'].filter((c) => !hasCommand(c) && !hasCommand(`/usr/sbin/${c}`))
  if (missing.length) return `scan bench skipped: missing ${missing.join(', ')}\n`
  const runner = o.runner ?? path.join(here, 'scan-child.js')
  if (!existsSync(runner)) return `scan bench skipped: ${runner} not built (npm run build)\n`
  const probesDir = o.probesDir ?? path.resolve(here, '../../rules/probes')
  const runs = Math.max(1, o.runs ?? SCAN_BENCH.runs)
  const rate = o.rate ?? SCAN_BENCH.rate
  const log = o.log ?? (() => {})
  const N = SCAN_BENCH.net
  const lab = new Lab(20, {prefix: 'ppb'})
  try {
    lab.addHost('client', `${N}.2`)
    lab.addHost('web', `${N}.11`)
    lab.addHost('fw', `${N}.14`)
    lab.addHost('crowd', `${N}.20`)
    lab.addAddresses('crowd', Array.from({length: 39}, (_, i) => `${N}.${21 + i}`))
    lab.addHost('range', '198.18.8.1')
    lab.ip(lab.ns('range'), 'route', 'add', 'local', '198.18.4.0/22', 'dev', 'eth0', 'table', 'local')
    await startNginx(lab, 'web', `${N}.11`, [80, 43389])
    await startSshd(lab, 'web', `${N}.11`)
    await startNginx(lab, 'crowd', `${N}.20`, [80])
    await startSshd(lab, 'fw', `${N}.14`, 2222)
    firewallAllBut(lab, 'fw', 2222)

    const exec = (args: string[]) => {
      const t0 = performance.now()
      const out = execFileSync('ip', ['netns', 'exec', lab.ns('client'), ...args], {encoding: 'utf8', timeout: 600_000, maxBuffer: 64 << 20})
      return {out, ms: Math.round(performance.now() - t0)}
    }
    const ours = <T>(kind: string, options: object): Timed<T> => {
      const r = exec([process.execPath, runner, JSON.stringify({kind, options, probesDir})])
      const j = JSON.parse(r.out.trim().split('\n').pop()!) as {result: T; wallMs: number; startMs: number}
      return {...j, processMs: r.ms}
    }
    const me = `${N}.2`
    const rows: string[] = []
    const details: string[] = []
    for (const [label, cidr] of [['/24', `${N}.0/24`], ['/20', `${N}.0/20`]] as const) {
      const our: Timed<DiscoverResult>[] = []
      const theirs: {ms: number; hosts: string[]}[] = []
      for (let i = 0; i < runs; i++) {
        our.push(ours<DiscoverResult>('discover', {targets: [cidr], exclude: [me], method: 'raw', rate, retries: 1, waitMs: 500, ports: SCAN_BENCH.synPorts}))
        const n = exec(['nmap', '-n', '-sn', '-PE', '-PP', `-PS${SCAN_BENCH.synPorts.join(',')}`, '-PA80,443', '--exclude', me, '-oG', '-', cidr])
        theirs.push({ms: n.ms, hosts: (n.out.match(/Host: (\S+) .*Status: Up/g) ?? []).map((l) => l.split(' ')[1])})
        log(`discover ${label} run ${i + 1}: patchpoint ${our[i].result.hosts.length} hosts ${our[i].processMs} ms (scan ${our[i].wallMs}, node start-up ${our[i].startMs}, ${our[i].result.packetsSent} packets); nmap ${theirs[i].hosts.length} hosts ${n.ms} ms`)
      }
      const pm = median(our.map((r) => r.processMs))
      const nm = median(theirs.map((r) => r.ms))
      const ourHosts = new Set(our.map((r) => r.result.hosts.map((h) => h.ip)).reduce((a, b) => (a.length <= b.length ? a : b)))
      const nmapHosts = theirs.map((r) => r.hosts).reduce((a, b) => (a.length >= b.length ? a : b))
      const nmapOnly = nmapHosts.filter((h) => !ourHosts.has(h))
      rows.push(`| discover ${label} (${cidr}) | ${Math.min(...our.map((r) => r.result.hosts.length))} | ${Math.max(...theirs.map((r) => r.hosts.length))} | ${pm} | ${median(our.map((r) => r.wallMs))} | ${nm} | ${(pm / nm).toFixed(2)} | ${nmapOnly.length} |`)
      details.push(`discover ${label}: patchpoint ms ${our.map((r) => r.processMs).join(', ')}; nmap ms ${theirs.map((r) => r.ms).join(', ')}${nmapOnly.length ? `; nmap-only hosts: ${nmapOnly.slice(0, 20).join(' ')}` : ''}`)
    }
    const hosts = [`${N}.11`, `${N}.14`, `${N}.20`]
    const f = ours<FingerprintResult>('fingerprint', {hosts, ports: SCAN_BENCH.fingerprintPorts, method: 'raw'})
    const v = exec(['nmap', '-n', '-Pn', '-sV', '-p', SCAN_BENCH.fingerprintPorts.join(','), '-oG', '-', ...hosts])
    const ourIds = f.result.hosts.flatMap((h) => h.services.filter((s) => s.product).map((s) => `${h.ip}:${s.port}=${s.product} ${s.version ?? ''}`.trim()))
    const nmapIds = v.out.match(/\d+\/open\/tcp\/\/[^/]*\/\/[^/]+\//g) ?? []
    rows.push(`| fingerprint 3 hosts, ports ${SCAN_BENCH.fingerprintPorts.join(',')} | ${ourIds.length} identified | ${nmapIds.length} identified | ${f.processMs} | ${f.wallMs} | ${v.ms} | ${(f.processMs / v.ms).toFixed(2)} | |`)
    details.push(`patchpoint: ${ourIds.join('; ')}`, `nmap -sV: ${nmapIds.join('; ')}`)
    return [
      '', `### scan: patchpoint vs nmap (same lab, same run; discovery: median of ${runs}, rate ${rate}/s, probes ARP + -PE -PP -PS${SCAN_BENCH.synPorts.join(',')} -PA80,443)`, '',
      '| scan | patchpoint hosts | nmap hosts | patchpoint ms (process) | patchpoint ms (in-process) | nmap ms | ratio | nmap-only hosts |',
      '|---|---|---|---|---|---|---|---|',
      ...rows, '', ...details.map((d) => `- ${d}`), '',
    ].join('\n')
  } finally {
    lab.cleanup()
  }
}
