/**
 * The inventory: every host and service patchpoint knows about, in
 * `<project>/.patchpoint/inventory.json`.
 *
 * - Machine-written and diffable: keys in a fixed order, hosts sorted by address (IPv4 before
 *   IPv6, numerically), services by protocol then port, lists sorted, absent fields omitted.
 * - Written atomically under the project lock `inventory` (a cron `discover` and an admin's
 *   `fingerprint --set` never clobber each other): `updateInventory()` reads, merges, writes.
 * - Merging is pure (`mergeHost`, `mergeService`, `setManual`) and takes the time as an
 *   argument, so it is unit-tested without a clock or a disk.
 * - A manual value (`fingerprint --set`) wins over every later detection until it is changed
 *   or cleared; detections are still recorded under `detected` so the admin can compare.
 * - Bounded: hosts, services per host, candidates, OS hints and string lengths have limits
 *   (INVENTORY_LIMITS); hitting one reports a `limit` anomaly and drops the excess.
 */
import {mkdir, readFile} from 'node:fs/promises'
import path from 'node:path'
import type {AnomalySink} from '../events/anomaly.js'
import {ignoreAnomalies} from '../events/anomaly.js'
import {writeJsonAtomic} from '../project/atomic.js'
import {withLock} from '../project/lock.js'
import {parseIp} from '../packet/address.js'
import {UserError} from '../errors.js'
import {macVendor} from './oui.js'

export const INVENTORY_FILE_NAME = 'inventory.json'
export const INVENTORY_VERSION = 1
export const INVENTORY_LOCK = 'inventory'

export const INVENTORY_LIMITS = {
  maxHosts: 65_536,
  maxServicesPerHost: 4096,
  maxCandidates: 8,
  maxOsHints: 16,
  /** longest product / version / extra / banner text kept */
  maxFieldChars: 256,
  maxCpes: 8,
  /** inventory.json larger than this is refused (never trust a file either) */
  maxFileBytes: 64 * 1024 * 1024,
}
export type InventoryLimits = typeof INVENTORY_LIMITS

export const FOUND_BY = ['arp', 'icmp', 'tcp-syn', 'tcp-ack', 'connect', 'manual', 'passive'] as const
export type FoundBy = (typeof FOUND_BY)[number]
export type ServiceSource = 'active' | 'passive' | 'manual'
export type ServiceState = 'open' | 'closed' | 'filtered'

export interface Candidate {
  product: string
  version?: string
  /** 0..1 */
  confidence: number
}

export interface OsHint {
  /** what the hint is based on */
  source: 'ttl' | 'tcp_window' | 'banner' | 'smb' | 'manual'
  /** a family: linux, windows, bsd, solaris, network-device, unix, ... */
  os: string
  /** e.g. "ttl=64", "Debian-5+deb12u1" */
  detail?: string
  confidence: number
}

export interface RpcProgram {
  program: number
  name?: string
  versions: number[]
}

export interface DcerpcInterface {
  uuid: string
  version: string
  annotation?: string
}

/** What a scan reported (active or passive), kept beside a manual override. */
export interface Detection {
  product?: string
  version?: string
  extra?: string
  cpe?: string[]
  candidates?: Candidate[]
}

export interface InventoryService {
  port: number
  proto: 'tcp' | 'udp'
  state: ServiceState
  /** service name (http, ssh, ftp, ...) */
  service?: string
  /** `vendor/product`, lower case */
  product?: string
  version?: string
  extra?: string
  /** 'ssl' when the service speaks TLS first */
  tunnel?: 'ssl'
  cpe?: string[]
  candidates?: Candidate[]
  rpc_program?: RpcProgram
  dcerpc_interface?: DcerpcInterface
  source: ServiceSource
  first_seen: string
  last_seen: string
  /** set by `fingerprint --set`; wins over detections until changed */
  manual?: {product?: string; version?: string; set_at: string}
  /** the latest detection when a manual value overrides it */
  detected?: Detection
}

export interface InventoryHost {
  ip: string
  mac?: string
  vendor?: string
  hostname?: string
  first_seen: string
  last_seen: string
  found_by: FoundBy[]
  os_hints: OsHint[]
  services: InventoryService[]
}

export interface Inventory {
  version: number
  updated: string
  hosts: InventoryHost[]
}

export function emptyInventory(now = new Date().toISOString()): Inventory {
  return {version: INVENTORY_VERSION, updated: now, hosts: []}
}

export function inventoryPath(stateDir: string): string {
  return path.join(stateDir, INVENTORY_FILE_NAME)
}

// ---------------------------------------------------------------------------------------------
// ordering

/** Sort key of an address: IPv4 first, then IPv6, bytewise; unparsable last by text. */
export function ipSortKey(ip: string): string {
  const b = parseIp(ip)
  if (!b) return 'z' + ip
  let s = b.length === 4 ? '4' : '6'
  for (const x of b) s += x.toString(16).padStart(2, '0')
  return s
}

export function compareIp(a: string, b: string): number {
  const ka = ipSortKey(a)
  const kb = ipSortKey(b)
  return ka < kb ? -1 : ka > kb ? 1 : 0
}

function compareService(a: InventoryService, b: InventoryService): number {
  if (a.proto !== b.proto) return a.proto < b.proto ? -1 : 1
  return a.port - b.port
}

function clip(s: string | undefined, limits: InventoryLimits): string | undefined {
  if (s === undefined || s === '') return undefined
  // keep printable text only: banners are attacker-controlled
  const clean = s.replace(/[\x00-\x1f\x7f]/g, ' ').trim()
  if (clean === '') return undefined
  return clean.length > limits.maxFieldChars ? clean.slice(0, limits.maxFieldChars) : clean
}

/** undefined-free object with keys in the given order */
function ordered<T extends object>(obj: T, keys: readonly (keyof T)[]): T {
  const out: Record<string, unknown> = {}
  for (const k of keys) {
    const v = obj[k]
    if (v === undefined) continue
    if (Array.isArray(v) && v.length === 0 && k !== 'found_by' && k !== 'os_hints' && k !== 'services') continue
    out[k as string] = v
  }
  return out as T
}

const SERVICE_KEYS: (keyof InventoryService)[] = [
  'port', 'proto', 'state', 'service', 'product', 'version', 'extra', 'tunnel', 'cpe', 'candidates',
  'rpc_program', 'dcerpc_interface', 'source', 'first_seen', 'last_seen', 'manual', 'detected',
]
const HOST_KEYS: (keyof InventoryHost)[] = ['ip', 'mac', 'vendor', 'hostname', 'first_seen', 'last_seen', 'found_by', 'os_hints', 'services']

function canonCandidates(c: Candidate[] | undefined): Candidate[] | undefined {
  if (!c || c.length === 0) return undefined
  return [...c]
    .sort((a, b) => b.confidence - a.confidence || (a.product + (a.version ?? '')).localeCompare(b.product + (b.version ?? '')))
    .map((x) => ordered({product: x.product, version: x.version, confidence: Math.round(x.confidence * 100) / 100}, ['product', 'version', 'confidence']))
}

function canonService(s: InventoryService): InventoryService {
  return ordered({
    ...s,
    cpe: s.cpe ? [...new Set(s.cpe)].sort() : undefined,
    candidates: canonCandidates(s.candidates),
    rpc_program: s.rpc_program
      ? ordered({program: s.rpc_program.program, name: s.rpc_program.name, versions: [...new Set(s.rpc_program.versions)].sort((a, b) => a - b)}, ['program', 'name', 'versions'])
      : undefined,
    dcerpc_interface: s.dcerpc_interface ? ordered({...s.dcerpc_interface}, ['uuid', 'version', 'annotation']) : undefined,
    manual: s.manual ? ordered({...s.manual}, ['product', 'version', 'set_at']) : undefined,
    detected: s.detected
      ? ordered({...s.detected, cpe: s.detected.cpe?.length ? [...s.detected.cpe].sort() : undefined, candidates: canonCandidates(s.detected.candidates)}, ['product', 'version', 'extra', 'cpe', 'candidates'])
      : undefined,
  }, SERVICE_KEYS)
}

/** Stable form of an inventory: sorted, fixed key order, no undefined. Idempotent. */
export function canonicalInventory(inv: Inventory): Inventory {
  const hosts = [...inv.hosts].sort((a, b) => compareIp(a.ip, b.ip)).map((h) => ordered({
    ...h,
    found_by: [...new Set(h.found_by)].sort(),
    os_hints: [...h.os_hints]
      .sort((a, b) => b.confidence - a.confidence || a.source.localeCompare(b.source) || a.os.localeCompare(b.os))
      .map((o) => ordered({...o}, ['source', 'os', 'detail', 'confidence'])),
    services: [...h.services].sort(compareService).map(canonService),
  }, HOST_KEYS))
  return {version: inv.version, updated: inv.updated, hosts}
}

// ---------------------------------------------------------------------------------------------
// merging

export interface HostObservation {
  ip: string
  mac?: string
  hostname?: string
  found_by?: FoundBy[]
  os_hints?: OsHint[]
}

export interface ServiceObservation {
  port: number
  proto?: 'tcp' | 'udp'
  state?: ServiceState
  service?: string
  product?: string
  version?: string
  extra?: string
  tunnel?: 'ssl'
  cpe?: string[]
  candidates?: Candidate[]
  rpc_program?: RpcProgram
  dcerpc_interface?: DcerpcInterface
  source: ServiceSource
}

export interface MergeOptions {
  now?: string
  limits?: Partial<InventoryLimits>
  onAnomaly?: AnomalySink
}

function lim(o: MergeOptions): InventoryLimits {
  return {...INVENTORY_LIMITS, ...o.limits}
}

function findHost(inv: Inventory, ip: string): InventoryHost | undefined {
  return inv.hosts.find((h) => h.ip === ip)
}

/** Adds or refreshes a host. Returns the host, or undefined when the host limit was hit. */
export function mergeHost(inv: Inventory, obs: HostObservation, options: MergeOptions = {}): InventoryHost | undefined {
  const now = options.now ?? new Date().toISOString()
  const limits = lim(options)
  let h = findHost(inv, obs.ip)
  if (!h) {
    if (inv.hosts.length >= limits.maxHosts) {
      (options.onAnomaly ?? ignoreAnomalies)({type: 'limit', event: 'inventory.max_hosts', detail: {limit: limits.maxHosts, ip: obs.ip}})
      return undefined
    }
    h = {ip: obs.ip, first_seen: now, last_seen: now, found_by: [], os_hints: [], services: []}
    inv.hosts.push(h)
  }
  if (now > h.last_seen) h.last_seen = now
  if (obs.mac) {
    h.mac = obs.mac.toLowerCase()
    h.vendor = macVendor(h.mac) ?? h.vendor
  }
  if (obs.hostname) h.hostname = clip(obs.hostname, limits)
  for (const f of obs.found_by ?? []) if (!h.found_by.includes(f)) h.found_by.push(f)
  for (const hint of obs.os_hints ?? []) addOsHint(h, hint, limits, options.onAnomaly)
  inv.updated = now > inv.updated ? now : inv.updated
  return h
}

function addOsHint(h: InventoryHost, hint: OsHint, limits: InventoryLimits, onAnomaly?: AnomalySink): void {
  const same = h.os_hints.findIndex((x) => x.source === hint.source && x.os === hint.os)
  const clean: OsHint = {source: hint.source, os: clip(hint.os, limits) ?? 'unknown', detail: clip(hint.detail, limits), confidence: hint.confidence}
  if (same >= 0) {
    h.os_hints[same] = clean
    return
  }
  if (h.os_hints.length >= limits.maxOsHints) {
    (onAnomaly ?? ignoreAnomalies)({type: 'limit', event: 'inventory.max_os_hints', detail: {limit: limits.maxOsHints, ip: h.ip}})
    return
  }
  h.os_hints.push(clean)
}

/**
 * Adds or refreshes a service of a host (the host is created if needed, found_by untouched).
 * A detection never replaces a manual value; it is stored under `detected` instead. A service
 * found only as open (no product) keeps the product an earlier scan found.
 */
export function mergeService(inv: Inventory, ip: string, obs: ServiceObservation, options: MergeOptions = {}): InventoryService | undefined {
  const now = options.now ?? new Date().toISOString()
  const limits = lim(options)
  const h = mergeHost(inv, {ip}, options)
  if (!h) return undefined
  const proto = obs.proto ?? 'tcp'
  let s = h.services.find((x) => x.port === obs.port && x.proto === proto)
  if (!s) {
    if (h.services.length >= limits.maxServicesPerHost) {
      (options.onAnomaly ?? ignoreAnomalies)({type: 'limit', event: 'inventory.max_services', detail: {limit: limits.maxServicesPerHost, ip}})
      return undefined
    }
    s = {port: obs.port, proto, state: obs.state ?? 'open', source: obs.source, first_seen: now, last_seen: now}
    h.services.push(s)
  }
  if (now > s.last_seen) s.last_seen = now
  s.state = obs.state ?? s.state
  if (obs.service) s.service = clip(obs.service, limits)
  if (obs.tunnel) s.tunnel = obs.tunnel
  if (obs.rpc_program) s.rpc_program = {...obs.rpc_program, name: clip(obs.rpc_program.name, limits)}
  if (obs.dcerpc_interface) s.dcerpc_interface = {...obs.dcerpc_interface, annotation: clip(obs.dcerpc_interface.annotation, limits)}
  if (s.source !== 'manual' && obs.source === 'active') s.source = 'active'
  const det: Detection = {
    product: clip(obs.product?.toLowerCase(), limits),
    version: clip(obs.version, limits),
    extra: clip(obs.extra, limits),
    cpe: obs.cpe?.slice(0, limits.maxCpes).map((c) => clip(c, limits) ?? '').filter((c) => c !== ''),
    candidates: obs.candidates?.slice(0, limits.maxCandidates).map((c) => ({product: clip(c.product.toLowerCase(), limits) ?? '?', version: clip(c.version, limits), confidence: Math.max(0, Math.min(1, c.confidence))})),
  }
  if ((obs.candidates?.length ?? 0) > limits.maxCandidates) {
    (options.onAnomaly ?? ignoreAnomalies)({type: 'limit', event: 'inventory.max_candidates', detail: {limit: limits.maxCandidates, ip, port: obs.port}})
  }
  const hasDetection = det.product !== undefined || det.version !== undefined
  if (!hasDetection) return s
  if (s.manual) {
    s.detected = det
    return s
  }
  // a product-only detection (no version) does not erase a version found before for the same product
  const keepVersion = det.version === undefined && det.product === s.product ? s.version : undefined
  s.product = det.product
  s.version = det.version ?? keepVersion
  s.extra = det.extra
  s.cpe = det.cpe && det.cpe.length > 0 ? det.cpe : undefined
  s.candidates = det.candidates && det.candidates.length > 0 ? det.candidates : undefined
  return s
}

/**
 * `fingerprint --set HOST:PORT product=X version=Y`: a manual value that wins until changed.
 * `fields` null clears the manual value (the latest detection, if any, comes back).
 */
export function setManual(
  inv: Inventory, ip: string, port: number, proto: 'tcp' | 'udp',
  fields: {product?: string; version?: string} | null, options: MergeOptions = {},
): InventoryService | undefined {
  const now = options.now ?? new Date().toISOString()
  const limits = lim(options)
  const h = mergeHost(inv, {ip, found_by: fields ? ['manual'] : []}, options)
  if (!h) return undefined
  let s = h.services.find((x) => x.port === port && x.proto === proto)
  if (!s) {
    if (!fields) return undefined
    s = {port, proto, state: 'open', source: 'manual', first_seen: now, last_seen: now}
    h.services.push(s)
  }
  if (!fields) {
    if (!s.manual) return s
    const det = s.detected
    delete s.manual
    delete s.detected
    s.product = det?.product
    s.version = det?.version
    s.extra = det?.extra
    s.cpe = det?.cpe
    s.candidates = det?.candidates
    if (s.source === 'manual') s.source = 'active'
    return s
  }
  if (!s.manual) s.detected = {product: s.product, version: s.version, extra: s.extra, cpe: s.cpe, candidates: s.candidates}
  const product = clip(fields.product?.toLowerCase(), limits) ?? s.manual?.product ?? s.product
  const version = clip(fields.version, limits) ?? (fields.product !== undefined && fields.version === undefined ? undefined : s.manual?.version ?? s.version)
  s.manual = {product, version, set_at: now}
  s.product = product
  s.version = version
  s.candidates = undefined
  s.source = 'manual'
  return s
}

// ---------------------------------------------------------------------------------------------
// disk

/** Parses inventory JSON; throws UserError naming the file when it is not an inventory. */
export function parseInventory(text: string, file = INVENTORY_FILE_NAME): Inventory {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new UserError(`${file}: not valid JSON (${(err as Error).message})`, {code: 'INVENTORY_INVALID', suggestion: 'move the file away; the next discover writes a new one'})
  }
  const inv = raw as Partial<Inventory>
  if (!inv || typeof inv !== 'object' || !Array.isArray(inv.hosts)) {
    throw new UserError(`${file}: not a patchpoint inventory (no hosts list)`, {code: 'INVENTORY_INVALID'})
  }
  if (inv.version !== INVENTORY_VERSION) {
    throw new UserError(`${file}: inventory version ${String(inv.version)} is not supported (expected ${INVENTORY_VERSION})`, {code: 'INVENTORY_INVALID'})
  }
  for (const h of inv.hosts) {
    if (!h || typeof h.ip !== 'string' || !parseIp(h.ip)) throw new UserError(`${file}: host entry without a valid ip`, {code: 'INVENTORY_INVALID'})
    h.found_by ??= []
    h.os_hints ??= []
    h.services ??= []
  }
  return {version: INVENTORY_VERSION, updated: typeof inv.updated === 'string' ? inv.updated : '', hosts: inv.hosts}
}

export async function loadInventory(stateDir: string): Promise<Inventory> {
  const file = inventoryPath(stateDir)
  let text: string
  try {
    const buf = await readFile(file)
    if (buf.length > INVENTORY_LIMITS.maxFileBytes) {
      throw new UserError(`${file}: ${buf.length} bytes, more than the ${INVENTORY_LIMITS.maxFileBytes} allowed`, {code: 'INVENTORY_INVALID'})
    }
    text = buf.toString('utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyInventory('')
    throw err
  }
  return parseInventory(text, file)
}

export function serializeInventory(inv: Inventory): string {
  return JSON.stringify(canonicalInventory(inv), null, 2) + '\n'
}

export async function saveInventory(stateDir: string, inv: Inventory): Promise<void> {
  await writeJsonAtomic(inventoryPath(stateDir), canonicalInventory(inv))
}

/**
 * Read-modify-write under the project lock: `fn` changes the inventory in place (and may return
 * a value); the canonical result is written atomically.
 */
export async function updateInventory<T>(projectDir: string, stateDir: string, fn: (inv: Inventory) => T | Promise<T>): Promise<{inventory: Inventory; result: T}> {
  await mkdir(stateDir, {recursive: true})
  return withLock(projectDir, INVENTORY_LOCK, async () => {
    const inv = await loadInventory(stateDir)
    const result = await fn(inv)
    const canon = canonicalInventory(inv)
    await writeJsonAtomic(inventoryPath(stateDir), canon)
    return {inventory: canon, result}
  })
}
