/**
 * Bench: patchpoint discover vs `nmap -sn`, fingerprint vs `nmap -sV`, in the same run, same lab.
 * Runs only with PATCHPOINT_BENCH=1 (root, nmap and the lab packages needed); prints a table.
 *
 *   ns client 198.51.100.2 ─┐
 *   ns crowd  198.51.100.20-59 (40 addresses on one host, nginx :80 on .20) ─┤ br0 (ns sw)
 *   ns web    198.51.100.11  nginx :80 :43389, OpenSSH :22 ─┤
 *   ns fw     198.51.100.14  drops all IP but :2222 (OpenSSH) ─┘
 */
import {execFileSync} from 'node:child_process'
import {rmSync} from 'node:fs'
import path from 'node:path'
import {describe, it, expect, beforeAll, afterAll} from 'vitest'
import {hasCommand, Lab, labSupport} from '../lab/netns.js'
import {compileEntry, REPO_ROOT} from '../lab/compile.js'
import {firewallAllBut, startNginx, startSshd} from '../lab/servers.js'
import type {DiscoverResult} from '../../src/core/scan/discover.js'
import type {FingerprintResult} from '../../src/core/scan/fingerprint.js'

const NET = '198.51.100'
const enabled = process.env.PATCHPOINT_BENCH === '1' && labSupport().ok && hasCommand('nmap')

describe.skipIf(!enabled)('scan bench (PATCHPOINT_BENCH=1)', () => {
  let lab: Lab
  let runner: string
  const exec = (args: string[]) => execFileSync('ip', ['netns', 'exec', lab.ns('client'), ...args], {encoding: 'utf8', timeout: 600_000})
  const ours = <T>(kind: string, options: object) => JSON.parse(exec([process.execPath, runner, JSON.stringify({kind, options, probesDir: path.join(REPO_ROOT, 'rules/probes')})]).trim().split('\n').pop()!) as {result: T; wallMs: number}
  const timed = (args: string[]) => {
    const t0 = performance.now()
    const out = exec(args)
    return {out, ms: Math.round(performance.now() - t0)}
  }

  beforeAll(async () => {
    lab = new Lab()
    try {
      const compiling = Promise.resolve().then(() => compileEntry('test/scan/run-scan.ts'))
      lab.addHost('client', `${NET}.2`)
      lab.addHost('web', `${NET}.11`)
      lab.addHost('fw', `${NET}.14`)
      lab.addHost('crowd', `${NET}.20`)
      lab.addAddresses('crowd', Array.from({length: 39}, (_, i) => `${NET}.${21 + i}`))
      await startNginx(lab, 'web', `${NET}.11`, [80, 43389])
      await startSshd(lab, 'web', `${NET}.11`)
      await startNginx(lab, 'crowd', `${NET}.20`, [80])
      await startSshd(lab, 'fw', `${NET}.14`, 2222)
      firewallAllBut(lab, 'fw', 2222)
      runner = await compiling
    } catch (err) {
      lab.cleanup()
      throw err
    }
  }, 300_000)

  afterAll(() => {
    lab?.cleanup()
    if (runner) rmSync(path.dirname(path.dirname(path.dirname(runner))), {recursive: true, force: true})
  })

  it('discover /24 vs nmap -sn; fingerprint vs nmap -sV', () => {
    const rows: string[] = []
    const d = ours<DiscoverResult>('discover', {targets: [`${NET}.0/24`], method: 'raw', rate: 20000, retries: 1, waitMs: 500})
    const n = timed(['nmap', '-n', '-sn', '-PE', '-PP', '-PS21,22,25,80,443,3389', '-PA80,443', '-oG', '-', `${NET}.0/24`])
    const nmapHosts = (n.out.match(/Host: (\S+) .*Status: Up/g) ?? []).map((l) => l.split(' ')[1]).filter((ip) => ip !== `${NET}.2`)
    const ourHosts = d.result.hosts.map((h) => h.ip)
    rows.push(`discover /24: patchpoint ${ourHosts.length} hosts in ${d.wallMs} ms; nmap -sn ${nmapHosts.length} hosts in ${n.ms} ms; ratio ${(d.wallMs / n.ms).toFixed(2)}`)
    rows.push(`  nmap-only hosts: ${nmapHosts.filter((h) => !ourHosts.includes(h)).join(' ') || 'none'}; patchpoint-only: ${ourHosts.filter((h) => !nmapHosts.includes(h)).join(' ') || 'none'}`)
    const hosts = [`${NET}.11`, `${NET}.14`, `${NET}.20`]
    const ports = '22,80,2222,43389'
    const f = ours<FingerprintResult>('fingerprint', {hosts, ports: ports.split(',').map(Number), method: 'raw'})
    const v = timed(['nmap', '-n', '-Pn', '-sV', '-p', ports, '-oG', '-', ...hosts])
    const ourIds = f.result.hosts.flatMap((h) => h.services.filter((s) => s.product).map((s) => `${h.ip}:${s.port}=${s.product} ${s.version ?? ''}`.trim()))
    const nmapIds = (v.out.match(/\d+\/open\/tcp\/\/[^/]*\/\/[^/]+\//g) ?? [])
    rows.push(`fingerprint: patchpoint ${ourIds.length} identified in ${f.wallMs} ms; nmap -sV ${nmapIds.length} identified in ${v.ms} ms; ratio ${(f.wallMs / v.ms).toFixed(2)}`)
    rows.push(`  patchpoint: ${ourIds.join('; ')}`)
    rows.push(`  nmap: ${nmapIds.join('; ')}`)
    console.log(rows.join('\n'))
    expect(ourHosts).toEqual(expect.arrayContaining(nmapHosts))
  }, 600_000)
})
