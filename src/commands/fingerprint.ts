import path from 'node:path'
import {Args, Flags} from '@oclif/core'
import {PatchpointCommand} from '../cli/base-command.js'
import {isInteractive, renderTable} from '../cli/output.js'
import {UserError} from '../core/errors.js'
import {mergeHost, mergeService, updateInventory, type Inventory} from '../core/inventory/inventory.js'
import {applyManualSets, fingerprint, FINGERPRINT_DEFAULTS, parseSetWords, type FingerprintResult} from '../core/scan/fingerprint.js'
import {learnFromPcap, learnLive, LIVE_LIMITS} from '../core/scan/passive.js'
import {loadProbes} from '../core/scan/probes.js'
import {progressRenderer} from '../core/scan/progress.js'
import {parsePorts} from '../core/scan/targets.js'

export type FingerprintCommandResult =
  | ({mode: 'active'} & FingerprintResult)
  | {mode: 'set'; services: {host: string; port: number; product?: string; version?: string}[]}
  | {mode: 'pcap'; files: {file: string; frames: number; services: number; error?: string}[]; hosts: Inventory['hosts']}
  | {mode: 'passive'; iface: string; durationMs: number; frames: number; services: number; hosts: Inventory['hosts']}

/** `30`, `30s`, `500ms`, `5m`, `2h` -> milliseconds; UserError otherwise */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim())
  if (!m) throw new UserError(`--duration ${text}: expected a number of seconds or e.g. 30s, 5m, 1h`)
  const ms = Number(m[1]) * {ms: 1, s: 1000, m: 60_000, h: 3_600_000}[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h']
  if (!(ms > 0) || ms > LIVE_LIMITS.maxDurationMs) throw new UserError(`--duration ${text}: between 1 ms and 24 h`)
  return Math.round(ms)
}

export class Fingerprint extends PatchpointCommand<typeof Fingerprint> {
  static override summary = "Name each service's product and version, and record them in the inventory."

  static override description = `Scans the ports of the given hosts (default: every inventory host; SYN through libpcap,
else connect()), then identifies each open port with the probes in rules/probes/: a banner first,
then the probes hinted for the port, then the others by rarity, so services on non-default ports
are named too. A TLS port is probed again inside TLS. When the portmapper (TCP 111) answers, its
dynamic RPC ports are added with their programs.

Where the version cannot be told apart the inventory keeps candidates with a confidence;
--set HOST:PORT product=X version=Y fixes it, and a manual value wins until changed (--set
HOST:PORT clear removes it). --pcap FILE learns passively from a capture instead (SYN-ACKs,
banners, server answers, portmapper replies); --passive --iface IF --duration D learns the same
way from live traffic (libpcap; nothing is sent; Ctrl-C stops early and keeps what was learned).

Exit codes: 0 services found; 1 none; 2 bad flag, host or file; 4 raw access denied with
--method raw or --passive.`

  static override examples = [
    {description: 'Identify the services of every inventory host (common ports).', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Two hosts, top 1000 ports.', command: '<%= config.bin %> <%= command.id %> 192.0.2.10 192.0.2.11 --ports top1000'},
    {description: 'Every port of one host.', command: '<%= config.bin %> <%= command.id %> 192.0.2.10 --ports all'},
    {description: 'Settle an ambiguous version by hand.', command: '<%= config.bin %> <%= command.id %> --set 192.0.2.10:443 product=nginx/nginx version=1.22.1'},
    {description: 'Learn from a capture.', command: '<%= config.bin %> <%= command.id %> --pcap monday.pcap --json'},
    {description: 'Learn from live traffic for ten minutes.', command: '<%= config.bin %> <%= command.id %> --passive --iface eth0 --duration 10m'},
  ]

  static override strict = false

  static override args = {
    host: Args.string({description: 'hosts to fingerprint (default: every inventory host)', required: false}),
  }

  static override flags = {
    ports: Flags.string({summary: 'default, top100, top1000, all, or a list like 22,80,8000-8100.', default: 'default'}),
    set: Flags.string({summary: 'HOST:PORT[/udp] followed by product=X version=Y (or clear): a manual value; repeatable.', multiple: true, helpValue: 'HOST:PORT'}),
    pcap: Flags.string({summary: 'Learn passively from capture files instead of scanning; repeatable.', multiple: true, helpValue: 'FILE'}),
    passive: Flags.boolean({summary: 'Learn from live traffic on --iface for --duration instead of scanning.', dependsOn: ['iface']}),
    iface: Flags.string({summary: 'Interface to listen on with --passive.', helpValue: 'IF'}),
    duration: Flags.string({summary: 'How long --passive listens: seconds, or 30s, 5m, 1h.', default: '60s', helpValue: 'D'}),
    method: Flags.option({options: ['auto', 'raw', 'connect'] as const, default: 'auto', summary: 'Port scan: raw SYN (libpcap), connect, or auto.'})(),
    rate: Flags.integer({summary: 'SYN packets per second.', default: 5000, min: 1}),
    intensity: Flags.integer({summary: 'Highest probe rarity tried on ports no probe is meant for (1-9).', default: FINGERPRINT_DEFAULTS.intensity, min: 1, max: 9}),
    concurrency: Flags.integer({summary: 'Ports probed at once.', default: FINGERPRINT_DEFAULTS.concurrency, min: 1, max: 1024}),
    'no-rpc': Flags.boolean({summary: 'Do not ask the portmapper for dynamic RPC ports.'}),
    'no-inventory': Flags.boolean({summary: 'Do not write the inventory (works outside a project).'}),
  }

  public async run(): Promise<FingerprintCommandResult> {
    const {argv} = await this.parse(Fingerprint)
    const words = (argv as string[]).filter((a) => typeof a === 'string')
    const f = this.flags
    if (f.set?.length) return this.runSet(f.set, words)
    if (f.pcap?.length) return this.runPcap(f.pcap)
    if (f.passive) return this.runPassive(f.iface!, parseDuration(f.duration))
    const render = progressRenderer({mode: this.jsonEnabled() ? 'json' : isInteractive(process.stderr) ? 'tty' : 'plain'})
    const project = f['no-inventory'] ? undefined : words.length > 0 ? this.optionalProject() : this.project()
    const result = await fingerprint({
      hosts: words, ports: parsePorts(f.ports), method: f.method, rate: f.rate, intensity: f.intensity,
      concurrency: f.concurrency, rpc: !f['no-rpc'], project, onProgress: render,
    })
    render.end()
    if (!this.jsonEnabled()) {
      for (const h of result.hosts.filter((x) => x.up)) {
        this.log(`\n${h.ip}${h.os_hints[0] ? `  (os: ${h.os_hints.map((o) => o.os).filter((v, i, a) => a.indexOf(v) === i).join(', ')})` : ''}`)
        this.log(renderTable(['port', 'service', 'product', 'version', 'extra'], h.services.map((s) => [
          `${s.port}/${s.proto}`, s.tunnel ? `${s.service}/ssl` : s.service,
          s.product ?? (s.candidates ? s.candidates.map((c) => `${c.product}?`).join(' ') : ''), s.version,
          s.rpc_program ? `rpc ${s.rpc_program.program} ${s.rpc_program.name ?? ''} v${s.rpc_program.versions.join(',')}` : s.extra,
        ])))
      }
      const n = result.hosts.reduce((a, h) => a + h.services.length, 0)
      this.log(`\n${n} services on ${result.hosts.filter((h) => h.up).length} hosts (${result.method} scan of ${result.ports} ports, ${(result.elapsedMs / 1000).toFixed(1)} s)`)
    }
    this.setExitCode(result.hosts.some((h) => h.services.length > 0) ? 0 : 1)
    return {mode: 'active', ...result}
  }

  private async runSet(sets: string[], words: string[]): Promise<FingerprintCommandResult> {
    const parsed = parseSetWords([...sets, ...words])
    const inv = await applyManualSets(this.project(), parsed)
    const services = parsed.map((p) => {
      const s = inv.hosts.find((h) => h.ip === p.host)?.services.find((x) => x.port === p.port && x.proto === p.proto)
      return {host: p.host, port: p.port, product: s?.product, version: s?.version}
    })
    if (!this.jsonEnabled()) for (const s of services) this.log(`${s.host}:${s.port} = ${s.product ?? '?'} ${s.version ?? ''}`.trimEnd())
    return {mode: 'set', services}
  }

  private async runPcap(files: string[]): Promise<FingerprintCommandResult> {
    const probes = loadProbes()
    const project = this.flags['no-inventory'] ? undefined : this.optionalProject()
    const out: {file: string; frames: number; services: number; error?: string}[] = []
    const learned: ReturnType<typeof learnFromPcap>[] = []
    for (const file of files) {
      try {
        const r = learnFromPcap(file, probes)
        learned.push(r)
        out.push({file, frames: r.frames, services: r.services.length})
      } catch (err) {
        out.push({file, frames: 0, services: 0, error: (err as Error).message})
        process.stderr.write(`patchpoint: ${(err as Error).message}\n`)
      }
    }
    const hosts = await this.mergeLearned(learned, project)
    if (!this.jsonEnabled()) {
      this.log(renderTable(['host', 'port', 'service', 'product', 'version', 'source'], hosts.flatMap((h) => h.services.map((s) => [h.ip, `${s.port}/${s.proto}`, s.service, s.product, s.version, s.source]))))
      for (const f of out) this.log(`${path.basename(f.file)}: ${f.frames} frames, ${f.services} services${f.error ? ` (error: ${f.error})` : ''}`)
    }
    this.setExitCode(out.some((f) => f.error) ? 2 : hosts.some((h) => h.services.length > 0) ? 0 : 1)
    return {mode: 'pcap', files: out, hosts}
  }

  private async runPassive(iface: string, durationMs: number): Promise<FingerprintCommandResult> {
    const probes = loadProbes()
    const project = this.flags['no-inventory'] ? undefined : this.optionalProject()
    const stop = new AbortController()
    const onSigint = () => stop.abort()
    process.once('SIGINT', onSigint)
    let r: Awaited<ReturnType<typeof learnLive>>
    try {
      if (!this.jsonEnabled()) process.stderr.write(`listening on ${iface} for ${(durationMs / 1000).toFixed(0)} s (Ctrl-C stops early)\n`)
      r = await learnLive(iface, durationMs, probes, {signal: stop.signal})
    } finally {
      process.removeListener('SIGINT', onSigint)
    }
    const hosts = await this.mergeLearned([r], project)
    if (!this.jsonEnabled()) {
      this.log(renderTable(['host', 'port', 'service', 'product', 'version', 'source'], hosts.flatMap((h) => h.services.map((s) => [h.ip, `${s.port}/${s.proto}`, s.service, s.product, s.version, s.source]))))
      this.log(`${iface}: ${r.frames} frames, ${r.services.length} services`)
    }
    this.setExitCode(hosts.some((h) => h.services.length > 0) ? 0 : 1)
    return {mode: 'passive', iface, durationMs, frames: r.frames, services: r.services.length, hosts}
  }

  /** passive results into the project's inventory (or a throw-away one without a project) */
  private async mergeLearned(learned: {hosts: ReturnType<typeof learnFromPcap>['hosts']; services: ReturnType<typeof learnFromPcap>['services']}[], project: ReturnType<Fingerprint['optionalProject']>): Promise<Inventory['hosts']> {
    const now = new Date().toISOString()
    const apply = (inv: Inventory) => {
      for (const r of learned) {
        for (const h of r.hosts) mergeHost(inv, {ip: h.ip, mac: h.mac, found_by: ['passive'], os_hints: h.os_hints}, {now})
        for (const s of r.services) {
          mergeService(inv, s.ip, {
            port: s.port, proto: s.proto, state: 'open', source: 'passive', service: s.match?.service ?? s.rpc?.name,
            product: s.match?.soft ? undefined : s.match?.product ?? s.rpc?.product, version: s.match?.soft ? undefined : s.match?.version,
            extra: s.match?.extra, cpe: s.match?.cpe, candidates: s.match?.candidates,
            rpc_program: s.rpc ? {program: s.rpc.program, name: s.rpc.name, versions: s.rpc.versions} : undefined,
          }, {now})
        }
      }
    }
    let hosts: Inventory['hosts']
    if (project) hosts = (await updateInventory(project.dir, project.stateDir, apply)).inventory.hosts
    else {
      const inv: Inventory = {version: 1, updated: now, hosts: []}
      apply(inv)
      hosts = inv.hosts
    }
    // what this learning saw (as the inventory now holds it), not the rest of the inventory
    const seenHosts = new Set(learned.flatMap((r) => [...r.hosts.map((h) => h.ip), ...r.services.map((x) => x.ip)]))
    const seenServices = new Set(learned.flatMap((r) => r.services.map((x) => `${x.ip}|${x.port}|${x.proto}`)))
    return hosts.filter((h) => seenHosts.has(h.ip)).map((h) => ({...h, services: h.services.filter((x) => seenServices.has(`${h.ip}|${x.port}|${x.proto}`))}))
  }

  private optionalProject() {
    try {
      return this.project()
    } catch (err) {
      if (this.flags.project || process.env.PATCHPOINT_PROJECT) throw err
      return undefined
    }
  }
}
