/**
 * `patchpoint fingerprint [HOST...]`: port scan, service detection by the data-driven probes,
 * dynamic RPC ports from the portmapper, OS hints; results merge into the inventory. Also
 * `--set HOST:PORT product=X version=Y` (manual values that win until changed).
 */
import {UserError} from '../errors.js'
import type {AnomalySink} from '../events/anomaly.js'
import {loadInventory, mergeHost, mergeService, setManual, updateInventory, type Candidate, type DcerpcInterface, type Inventory, type OsHint, type RpcProgram} from '../inventory/inventory.js'
import {EPM_PORT, eptLookupAll, type EpmEntry, type EpmOptions} from './epm.js'
import type {ProjectLocation} from '../project/find.js'
import {pool, netExchange, type Exchange} from './connect.js'
import {portScan, type PortScanOptions} from './portscan.js'
import {loadProbes, probeDiagnosticsText, type ProbeSet} from './probes.js'
import {ignoreProgress, type ProgressSink} from './progress.js'
import {ipv4ToInt} from './route.js'
import {detectService, type DetectResult} from './service.js'
import {buildPmapDump, parsePmapDumpReply, readRecord, rpcServices, PMAP_PORT, type RpcService} from './sunrpc.js'
import {DISCOVERY_PORTS} from './targets.js'

export const FINGERPRINT_DEFAULTS = {
  /** (host, port) pairs probed at once */
  concurrency: 64,
  intensity: 7,
}

export interface FingerprintOptions {
  /** hosts to scan; default every host of the inventory */
  hosts?: string[]
  ports?: readonly number[]
  method?: PortScanOptions['method']
  rate?: number
  retries?: number
  intensity?: number
  concurrency?: number
  /** query the portmapper and the DCE/RPC endpoint mapper for dynamic RPC ports (default true) */
  rpc?: boolean
  /** endpoint-mapper client options (test seam: port) */
  epm?: EpmOptions
  probes?: ProbeSet
  project?: ProjectLocation
  onProgress?: ProgressSink
  onAnomaly?: AnomalySink
  /** test seams */
  exchange?: Exchange
  portScanOptions?: Partial<PortScanOptions>
  waitScale?: number
  now?: () => string
}

export interface FingerprintService {
  port: number
  proto: 'tcp' | 'udp'
  service: string
  product?: string
  version?: string
  extra?: string
  tunnel?: 'ssl'
  cpe?: string[]
  candidates?: Candidate[]
  rpc_program?: RpcProgram
  /** DCE/RPC interface registered on this port at the endpoint mapper (the first one listed) */
  dcerpc_interface?: DcerpcInterface
  banner?: string
}

export interface FingerprintHost {
  ip: string
  up: boolean
  os_hints: OsHint[]
  services: FingerprintService[]
}

export interface FingerprintResult {
  method: 'raw' | 'connect'
  ports: number
  hosts: FingerprintHost[]
  probesSent: number
  elapsedMs: number
  inventory?: string
}

/** Portmapper DUMP over TCP; [] when it does not answer. */
export async function queryPortmapper(host: string, exchange: Exchange = netExchange, port = PMAP_PORT): Promise<RpcService[]> {
  const xid = (Math.random() * 0xffffffff) >>> 0
  const res = await exchange({
    host, port, send: buildPmapDump(xid), tls: false, waitMs: 3000,
    done: (d) => readRecord(d).status !== 'need',
  })
  const rec = readRecord(res.data)
  if (rec.status !== 'complete') return []
  const dump = parsePmapDumpReply(rec.record)
  return dump ? rpcServices(dump.entries) : []
}

function osFromMatch(d: DetectResult): OsHint | null {
  if (!d.os?.family) return null
  return {source: 'banner', os: d.os.family, detail: [d.product, d.os.detail].filter(Boolean).join(' '), confidence: 0.7}
}

export async function fingerprint(o: FingerprintOptions): Promise<FingerprintResult> {
  const t0 = performance.now()
  const progress = o.onProgress ?? ignoreProgress
  const probes = o.probes ?? loadProbes()
  if (probes.diagnostics.some((d) => d.severity === 'error')) {
    throw new UserError('service probe files have errors', {code: 'PROBES_INVALID', details: probeDiagnosticsText(probes)})
  }
  let hosts = o.hosts
  if (!hosts || hosts.length === 0) {
    if (!o.project) throw new UserError('no hosts given and no project inventory to take them from', {suggestion: 'name hosts, or run `patchpoint discover` in a project first'})
    const inv = await loadInventory(o.project.stateDir)
    hosts = inv.hosts.map((h) => h.ip)
    if (hosts.length === 0) throw new UserError('the inventory holds no hosts', {suggestion: 'run `patchpoint discover CIDR` first, or name hosts'})
  }
  for (const h of hosts) if (ipv4ToInt(h) < 0) throw new UserError(`${h}: not an IPv4 address`)
  const ports = o.ports ?? DISCOVERY_PORTS
  const scan = await portScan(hosts, ports, {method: o.method, rate: o.rate, retries: o.retries, onProgress: progress, ...o.portScanOptions})
  const exchange = o.exchange ?? netExchange

  // dynamic RPC ports first: they join the ports to identify
  const rpcByHost = new Map<string, RpcService[]>()
  if (o.rpc !== false) {
    await Promise.all(scan.hosts.filter((h) => h.open.includes(PMAP_PORT)).map(async (h) => {
      const svcs = await queryPortmapper(h.ip, exchange)
      rpcByHost.set(h.ip, svcs)
      for (const s of svcs) if (s.proto === 'tcp' && !h.open.includes(s.port)) h.open.push(s.port)
      h.open.sort((a, b) => a - b)
    }))
  }

  // DCE/RPC endpoint mapper: ept_lookup lists the dynamic ncacn_ip_tcp / ncadg_ip_udp ports
  const epmByHost = new Map<string, EpmEntry[]>()
  if (o.rpc !== false) {
    await Promise.all(scan.hosts.filter((h) => h.open.includes(o.epm?.port ?? EPM_PORT)).map(async (h) => {
      const r = await eptLookupAll(h.ip, o.epm)
      epmByHost.set(h.ip, r.entries)
      for (const e of r.entries) if (e.proto === 'tcp' && e.port > 0 && !h.open.includes(e.port)) h.open.push(e.port)
      h.open.sort((a, b) => a - b)
    }))
  }

  const pairs = scan.hosts.flatMap((h) => h.open.map((port) => ({ip: h.ip, port})))
  let done = 0
  let probesSent = 0
  const detected = await pool(pairs, o.concurrency ?? FINGERPRINT_DEFAULTS.concurrency, async ({ip, port}) => {
    const d = await detectService(ip, port, {probes, exchange, intensity: o.intensity ?? FINGERPRINT_DEFAULTS.intensity, waitScale: o.waitScale})
    probesSent += d.tried
    progress({phase: 'services', done: ++done, total: pairs.length, found: done, elapsedMs: performance.now() - t0})
    return {ip, d}
  })

  const result: FingerprintHost[] = scan.hosts.map((h) => {
    const rpc = rpcByHost.get(h.ip) ?? []
    const hints = [...h.os_hints]
    const services: FingerprintService[] = []
    for (const {d} of detected.filter((x) => x.ip === h.ip)) {
      const r = rpc.find((s) => s.proto === 'tcp' && s.port === d.port)
      const svc: FingerprintService = {
        port: d.port, proto: 'tcp', service: d.service, product: d.product, version: d.version, extra: d.extra,
        tunnel: d.tunnel, cpe: d.cpe, candidates: d.candidates, banner: d.banner,
      }
      if (r) {
        svc.rpc_program = {program: r.program, name: r.name, versions: r.versions}
        if (svc.service === 'unknown' || svc.service === 'rpc') svc.service = r.name ?? 'rpc'
        if (!svc.product && r.product && svc.service !== 'rpcbind') svc.product = r.product
        if (svc.service === 'rpcbind' && !svc.product) svc.product = 'rpcbind/rpcbind'
      }
      const eps = (epmByHost.get(h.ip) ?? []).filter((e) => e.proto === 'tcp' && e.port === d.port)
      if (eps.length > 0) applyEpm(svc, eps)
      services.push(svc)
      const hint = osFromMatch(d)
      if (hint && !hints.some((x) => x.source === 'banner' && x.os === hint.os)) hints.push(hint)
    }
    for (const r of rpc.filter((s) => s.proto === 'udp')) {
      services.push({port: r.port, proto: 'udp', service: r.name ?? 'rpc', product: r.product, rpc_program: {program: r.program, name: r.name, versions: r.versions}})
    }
    const udpEpm = new Map<number, EpmEntry[]>()
    for (const e of epmByHost.get(h.ip) ?? []) if (e.proto === 'udp' && e.port > 0) udpEpm.set(e.port, [...(udpEpm.get(e.port) ?? []), e])
    for (const [port, eps] of udpEpm) {
      if (services.some((s) => s.proto === 'udp' && s.port === port)) continue
      const svc: FingerprintService = {port, proto: 'udp', service: 'msrpc'}
      applyEpm(svc, eps)
      services.push(svc)
    }
    services.sort((a, b) => a.proto.localeCompare(b.proto) || a.port - b.port)
    return {ip: h.ip, up: h.up || services.length > 0, os_hints: hints, services}
  })

  const out: FingerprintResult = {method: scan.method, ports: ports.length, hosts: result, probesSent, elapsedMs: Math.round(performance.now() - t0)}
  if (o.project) {
    const now = o.now?.() ?? new Date().toISOString()
    await updateInventory(o.project.dir, o.project.stateDir, (inv) => mergeFingerprint(inv, out, now, o.onAnomaly))
    out.inventory = `${o.project.stateDir}/inventory.json`
  }
  return out
}

/** Fingerprint results into the inventory. */
export function mergeFingerprint(inv: Inventory, r: FingerprintResult, now: string, onAnomaly?: AnomalySink): void {
  for (const h of r.hosts) {
    if (!h.up) continue
    mergeHost(inv, {ip: h.ip, os_hints: h.os_hints}, {now, onAnomaly})
    for (const s of h.services) {
      mergeService(inv, h.ip, {
        port: s.port, proto: s.proto, state: 'open', service: s.service === 'unknown' ? undefined : s.service,
        product: s.product, version: s.version, extra: s.extra, tunnel: s.tunnel, cpe: s.cpe, candidates: s.candidates,
        rpc_program: s.rpc_program, dcerpc_interface: s.dcerpc_interface, source: 'active',
      }, {now, onAnomaly})
    }
  }
}

/** at most this many interface names listed in `extra` of one port */
const EPM_EXTRA_NAMES = 8

/** the endpoint mapper's registrations for one port onto its service entry */
function applyEpm(svc: FingerprintService, eps: EpmEntry[]): void {
  const first = eps.find((e) => e.name) ?? eps[0]
  svc.dcerpc_interface = {uuid: first.uuid, version: first.version, annotation: first.annotation}
  if (svc.service === 'unknown' || svc.service === 'msrpc' || svc.service === 'ncacn_http') svc.service = 'msrpc'
  const names = [...new Set(eps.map((e) => e.name ?? e.uuid))]
  const listed = names.slice(0, EPM_EXTRA_NAMES).join(', ') + (names.length > EPM_EXTRA_NAMES ? `, +${names.length - EPM_EXTRA_NAMES}` : '')
  svc.extra = svc.extra ? `${svc.extra}; ${listed}` : listed
}

export interface ManualSet {
  host: string
  port: number
  proto: 'tcp' | 'udp'
  /** null clears the manual value */
  fields: {product?: string; version?: string} | null
}

/** `HOST:PORT[/udp]` and `product=X version=Y` words -> ManualSet. UserError when malformed. */
export function parseSet(target: string, words: readonly string[]): ManualSet {
  const m = /^(\d+\.\d+\.\d+\.\d+):(\d+)(?:\/(tcp|udp))?$/.exec(target)
  if (!m || ipv4ToInt(m[1]) < 0 || Number(m[2]) < 1 || Number(m[2]) > 65535) {
    throw new UserError(`--set ${target}: expected HOST:PORT (e.g. 192.0.2.7:443 or 192.0.2.7:53/udp)`)
  }
  const fields: {product?: string; version?: string} = {}
  let clear = false
  for (const w of words) {
    if (w === 'clear' || w === 'auto') { clear = true; continue }
    const kv = /^(product|version)=(.*)$/.exec(w)
    if (!kv) throw new UserError(`--set ${target}: cannot read "${w}"`, {suggestion: 'use product=vendor/product version=X.Y, or clear'})
    if (kv[1] === 'product' && !/^[a-z0-9_.+-]+\/[a-z0-9_.+-]+$/i.test(kv[2])) {
      throw new UserError(`--set ${target}: product "${kv[2]}" is not vendor/product`, {suggestion: 'e.g. product=nginx/nginx'})
    }
    fields[kv[1] as 'product' | 'version'] = kv[2]
  }
  if (!clear && fields.product === undefined && fields.version === undefined) throw new UserError(`--set ${target}: nothing to set`, {suggestion: 'add product=... and/or version=..., or clear'})
  return {host: m[1], port: Number(m[2]), proto: (m[3] as 'tcp' | 'udp' | undefined) ?? 'tcp', fields: clear ? null : fields}
}

/**
 * Every `--set` word in order -> one ManualSet per target. oclif hands a repeatable flag every word
 * that follows it, so `--set 192.0.2.7:443 product=nginx/nginx version=1.22.1` arrives as three
 * values, and `--set "192.0.2.7:443 version=1.22.1"` as one: values are split at whitespace, a word
 * without '=' (other than clear/auto) starts a target, the words after it belong to it.
 */
export function parseSetWords(values: readonly string[]): ManualSet[] {
  const groups: {target: string; words: string[]}[] = []
  for (const w of values.flatMap((v) => v.trim().split(/\s+/)).filter((x) => x !== '')) {
    if (!w.includes('=') && w !== 'clear' && w !== 'auto') groups.push({target: w, words: []})
    else if (groups.length === 0) throw new UserError(`--set: "${w}" comes before any HOST:PORT`, {suggestion: 'write --set HOST:PORT product=X version=Y'})
    else groups[groups.length - 1].words.push(w)
  }
  return groups.map((g) => parseSet(g.target, g.words))
}

export async function applyManualSets(project: ProjectLocation, sets: readonly ManualSet[], now = new Date().toISOString()): Promise<Inventory> {
  const {inventory} = await updateInventory(project.dir, project.stateDir, (inv) => {
    for (const s of sets) {
      const r = setManual(inv, s.host, s.port, s.proto, s.fields, {now})
      if (!r && s.fields === null) throw new UserError(`--set ${s.host}:${s.port} clear: no such service in the inventory`)
    }
  })
  return inventory
}
