/**
 * `patchpoint discover CIDR...`: host discovery.
 *
 * With raw access (root or CAP_NET_RAW), per interface the routing table picks:
 * 1. directly attached targets: ARP requests (RFC 826). A host that answers ARP is up even if
 *    its firewall drops every IP probe (as nmap's ARP ping). Then, to the hosts that answered,
 *    ICMP echo and timestamp (RFC 792), TCP SYN to the port list and TCP ACK: how else they
 *    answer goes to `found_by`, their TTL and SYN-ACK window to OS hints, open ports to the
 *    inventory. The IP probes to a host leave as soon as its ARP reply is read, interleaved with
 *    the rest of the ARP sweep (pipeline.ts), not after it.
 * 2. routed targets: ICMP echo + timestamp, SYN and ACK through the gateway's MAC (as soon as
 *    the gateway answered ARP).
 * Waiting is adaptive (`discoveryTail`): the scan ends when every address answered every probe,
 * or when nothing arrived for a few measured round trips, not after a fixed wait.
 * Without raw access: TCP connect() to the port list (an accepted or refused connection means
 * the host is up); this machine's own addresses are left out (raw probes never hear from them).
 *
 * Only addresses from `expandTargets` (ranges minus excludes) are ever sent to. Replies from
 * elsewhere are ignored.
 */
import {permissionError, UserError} from '../errors.js'
import type {AnomalySink} from '../events/anomaly.js'
import type {FoundBy, Inventory, OsHint} from '../inventory/inventory.js'
import {mergeHost, mergeService, updateInventory} from '../inventory/inventory.js'
import {macVendor} from '../inventory/oui.js'
import type {ProjectLocation} from '../project/find.js'
import {parseMac} from '../packet/address.js'
import {connectScan, pool} from './connect.js'
import {ttlHint, windowHint} from './oshints.js'
import {ignoreProgress, type ProgressSink} from './progress.js'
import {CapLink, RAW_LIMITS, RawScanner, type RawLink, type RawReply} from './raw.js'
import {runPipeline} from './pipeline.js'
import {attachedInterface, inSubnet, interfaceInfo, ipv4ToInt, routeTo, type CommandRunner, type InterfaceInfo, type RouteInfo} from './route.js'
import {DISCOVERY_PORTS, expandTargets, inTargets, MAX_TARGETS} from './targets.js'
import {networkInterfaces} from 'node:os'

export const DISCOVER_DEFAULTS = {
  rate: RAW_LIMITS.defaultRate,
  retries: 1,
  waitMs: 1000,
  /** TCP ACK probes go to these ports (a stateless firewall often lets them through) */
  ackPorts: [80, 443] as readonly number[],
}

/**
 * Adaptive waiting: how long the scan waits after its last packet (sent or received) before a
 * round is over. From the slowest round trip measured (ARP and IP replies, including our own
 * event-loop delay): TAIL.rttFactor x RTT + TAIL.slackMs, at least TAIL.minMs, at most `waitMs`.
 * Without any reply to measure, on-link only: min(waitMs, TAIL.blindMs); routed targets that
 * have not answered yet: the full `waitMs`. The measured RTT includes our own event-loop delay
 * (replies wait in the capture buffer while we send), which is exactly what the tail must cover.
 * A retry round starts after half the tail (at least TAIL.retryMinMs): it resends only what is
 * still unanswered, so starting early costs at most a duplicate request to a slow responder.
 */
export const TAIL = {minMs: 30, rttFactor: 2, slackMs: 10, blindMs: 300, retryMinMs: 15}

export function discoveryTail(rttMs: number, waitMs: number, routed: {answered: number; rtt: number} | null): number {
  const clamp = (rtt: number) => Math.min(waitMs, Math.max(TAIL.minMs, TAIL.rttFactor * rtt + TAIL.slackMs))
  let t = rttMs > 0 ? clamp(rttMs) : Math.min(waitMs, TAIL.blindMs)
  if (routed) t = Math.max(t, routed.answered > 0 ? clamp(routed.rtt) : waitMs)
  return t
}

/**
 * The ranges to sweep and the hosts to add, from the words oclif gave `discover`. A repeatable
 * flag takes every word after it, so in `discover --add 198.51.100.20 192.0.2.0/24` the range
 * arrives as an --add and in `discover --exclude 10.1.0.200-250 10.1.0.0/24` as an exclusion.
 * --add takes single addresses: a block or range among its words (a '/' or '-') is a range to
 * sweep. --exclude takes ranges, so which of its words were meant to be swept cannot be told:
 * excludes without any range to sweep are refused with how to write it instead (nothing is probed).
 */
export function discoverWords(args: readonly string[], add: readonly string[] = [], exclude: readonly string[] = []): {targets: string[]; add: string[]} {
  const isRange = (w: string) => /[/-]/.test(w)
  const targets = [...args, ...add.filter(isRange)]
  const hosts = add.filter((w) => !isRange(w))
  if (targets.length === 0 && exclude.length > 0) {
    throw new UserError(`no address range given: --exclude took every word after it (${exclude.join(' ')})`, {
      code: 'FLAG_INVALID',
      suggestion: 'give the ranges before --exclude (patchpoint discover 10.1.0.0/24 --exclude 10.1.0.200-250), or end its list with --',
    })
  }
  if (targets.length === 0 && hosts.length === 0) throw new UserError('no address range given', {code: 'FLAG_INVALID', suggestion: 'e.g. patchpoint discover 192.0.2.0/24'})
  return {targets, add: hosts}
}

export interface DiscoverOptions {
  targets: string[]
  exclude?: string[]
  /** hosts added by hand (not probed) */
  add?: string[]
  ports?: readonly number[]
  rate?: number
  retries?: number
  waitMs?: number
  maxHosts?: number
  /** 'auto' (raw when permitted), 'raw', 'connect' */
  method?: 'auto' | 'raw' | 'connect'
  /** merge into this project's inventory */
  project?: ProjectLocation
  onProgress?: ProgressSink
  onAnomaly?: AnomalySink
  /** test seams */
  runCommand?: CommandRunner
  openLink?: (iface: string, filter: string) => RawLink
  now?: () => string
}

export interface DiscoveredHost {
  ip: string
  mac?: string
  vendor?: string
  found_by: FoundBy[]
  open_ports: number[]
  ttl?: number
  os_hints: OsHint[]
}

export interface DiscoverResult {
  method: 'raw' | 'connect'
  targets: number
  excluded: number
  hosts: DiscoveredHost[]
  added: string[]
  packetsSent: number
  elapsedMs: number
  /** where the inventory was written (undefined without a project) */
  inventory?: string
  interfaces: string[]
}

interface HostState {
  ip: string
  ipInt: number
  mac?: string
  found: Set<FoundBy>
  open: Set<number>
  ttl?: number
  hints: OsHint[]
}

/** Never throws for unreachable hosts; throws UserError for bad input or missing privileges with method 'raw'. */
export async function discover(o: DiscoverOptions): Promise<DiscoverResult> {
  const t0 = performance.now()
  const progress = o.onProgress ?? ignoreProgress
  const set = expandTargets(o.targets, o.exclude ?? [], o.maxHosts ?? MAX_TARGETS)
  for (const a of o.add ?? []) if (ipv4ToInt(a) < 0) throw new UserError(`--add ${a}: not an IPv4 address`)
  const ports = o.ports ?? DISCOVERY_PORTS
  const states = new Map<number, HostState>()
  const state = (ip: string, ipInt: number): HostState => {
    let s = states.get(ipInt)
    if (!s) states.set(ipInt, s = {ip, ipInt, found: new Set(), open: new Set(), hints: []})
    return s
  }
  let method: 'raw' | 'connect' = o.method === 'connect' ? 'connect' : 'raw'
  let sent = 0
  const ifaces = new Set<string>()

  if (method === 'raw') {
    try {
      sent = await rawDiscover(set.addresses, set, ports, o, state, ifaces, progress, t0)
    } catch (err) {
      if (o.method === 'raw' || !(err instanceof UserError && err.code === 'PERMISSION')) throw err
      method = 'connect'
    }
  }
  if (method === 'connect') {
    let done = 0
    // this machine's own addresses answer connect() (a refusal is an answer) but are no server
    // behind the gateway; raw discovery never hears from them either
    const own = localIpv4Addresses()
    await pool(set.addresses.filter((ip) => !own.has(ip)), 32, async (ip) => {
      const r = await connectScan(ip, ports, {concurrency: 16, timeoutMs: o.waitMs ?? DISCOVER_DEFAULTS.waitMs})
      sent += ports.length
      if (r.answered) {
        const s = state(ip, ipv4ToInt(ip))
        s.found.add('connect')
        for (const p of r.open) s.open.add(p)
      }
      progress({phase: 'connect', done: ++done, total: set.addresses.length, found: states.size, elapsedMs: performance.now() - t0})
    })
  }

  const hosts: DiscoveredHost[] = [...states.values()]
    .filter((s) => s.found.size > 0 && inTargets(s.ip, set))
    .sort((a, b) => a.ipInt - b.ipInt)
    .map((s) => ({
      ip: s.ip, mac: s.mac, vendor: s.mac ? macVendor(s.mac) : undefined, found_by: [...s.found].sort(),
      open_ports: [...s.open].sort((a, b) => a - b), ttl: s.ttl, os_hints: s.hints,
    }))
  const added = [...new Set(o.add ?? [])]
  const result: DiscoverResult = {
    method, targets: set.addresses.length, excluded: countExcluded(o, set.addresses.length), hosts, added, packetsSent: sent,
    elapsedMs: Math.round(performance.now() - t0), interfaces: [...ifaces].sort(),
  }
  if (o.project) {
    const now = o.now?.() ?? new Date().toISOString()
    await updateInventory(o.project.dir, o.project.stateDir, (inv) => mergeDiscovery(inv, result, now, o.onAnomaly))
    result.inventory = `${o.project.stateDir}/inventory.json`
  }
  return result
}

function countExcluded(o: DiscoverOptions, kept: number): number {
  if (!o.exclude?.length) return 0
  try {
    return expandTargets(o.targets, [], o.maxHosts ?? MAX_TARGETS).addresses.length - kept
  } catch {
    return 0
  }
}

/** Discovery results into the inventory (pure apart from `inv`). */
export function mergeDiscovery(inv: Inventory, r: DiscoverResult, now: string, onAnomaly?: AnomalySink): void {
  for (const h of r.hosts) {
    mergeHost(inv, {ip: h.ip, mac: h.mac, found_by: h.found_by, os_hints: h.os_hints}, {now, onAnomaly})
    for (const p of h.open_ports) mergeService(inv, h.ip, {port: p, state: 'open', source: 'active'}, {now, onAnomaly})
  }
  for (const ip of r.added) mergeHost(inv, {ip, found_by: ['manual']}, {now, onAnomaly})
}

async function rawDiscover(
  addresses: string[], set: ReturnType<typeof expandTargets>, ports: readonly number[], o: DiscoverOptions,
  state: (ip: string, ipInt: number) => HostState, ifaces: Set<string>, progress: ProgressSink, t0: number,
): Promise<number> {
  if (addresses.length === 0) return 0
  // group targets by outgoing interface (one route lookup per range; per address only when a
  // range straddles the interface's subnets)
  const groups = new Map<string, {route: RouteInfo; iface: InterfaceInfo; onLink: number[]; routed: number[]}>()
  const routeCache = new Map<string, {route: RouteInfo; iface: InterfaceInfo} | null>()
  const lookup = (ip: string) => {
    for (const g of groups.values()) {
      if (g.iface.ipv4.some((a) => inSubnet(ip, a.address, a.prefixlen))) return {route: {...g.route, onLink: true, gateway: undefined}, iface: g.iface}
    }
    // a directly attached subnet needs no `ip route get` (a child process per lookup)
    if (!o.runCommand) {
      const a = attachedInterface(ip)
      if (a) return a
    }
    const r = routeTo(ip, o.runCommand)
    if (!r) return null
    const key = `${r.dev}|${r.gateway ?? ''}`
    if (routeCache.has(key)) return routeCache.get(key)!
    const i = interfaceInfo(r.dev, o.runCommand)
    const v = i ? {route: r, iface: i} : null
    routeCache.set(key, v)
    return v
  }
  for (const ip of addresses) {
    const ri = lookup(ip)
    if (!ri) continue
    let g = groups.get(ri.iface.name)
    if (!g) groups.set(ri.iface.name, g = {route: ri.route, iface: ri.iface, onLink: [], routed: []})
    const onLink = ri.iface.ipv4.some((a) => inSubnet(ip, a.address, a.prefixlen))
    ;(onLink ? g.onLink : g.routed).push(ipv4ToInt(ip))
  }
  let sent = 0
  for (const g of groups.values()) {
    ifaces.add(g.iface.name)
    sent += await rawGroup(g, set, ports, o, state, progress, t0)
  }
  return sent
}

async function rawGroup(
  g: {route: RouteInfo; iface: InterfaceInfo; onLink: number[]; routed: number[]},
  set: ReturnType<typeof expandTargets>, ports: readonly number[], o: DiscoverOptions,
  state: (ip: string, ipInt: number) => HostState, progress: ProgressSink, t0: number,
): Promise<number> {
  const src = g.iface.ipv4.find((a) => a.address === g.route.src)?.address ?? g.route.src
  const rate = o.rate ?? DISCOVER_DEFAULTS.rate
  const retries = o.retries ?? DISCOVER_DEFAULTS.retries
  const waitMs = o.waitMs ?? DISCOVER_DEFAULTS.waitMs
  const srcPort = 40000 + Math.floor(Math.random() * 20000)
  const filter = RawScanner.filter(src, srcPort)
  let link: RawLink
  try {
    link = (o.openLink ?? ((i, f) => new CapLink(i, f)))(g.iface.name, filter)
  } catch (err) {
    if (err instanceof UserError) throw err
    const msg = (err as Error).message
    if (/permit|permission|EPERM|EACCES/i.test(msg)) throw permissionError(`raw packets on ${g.iface.name}: ${msg}`)
    throw err
  }
  const wanted = new Set<number>([...g.onLink, ...g.routed])
  const routedSet = new Set(g.routed)
  let gatewayInt = -1
  let gatewayMac: Uint8Array | null = null
  // primary lane: ARP to the on-link targets (and the gateway, for routed targets)
  const arpTargets = [...g.onLink]
  if (g.routed.length > 0 && g.route.gateway) {
    gatewayInt = ipv4ToInt(g.route.gateway)
    if (!arpTargets.includes(gatewayInt)) arpTargets.push(gatewayInt)
  }
  const arpIndex = new Map<number, number>()
  for (let i = 0; i < arpTargets.length; i++) arpIndex.set(arpTargets[i], i)
  const arpSentAt = new Float64Array(arpTargets.length)
  const arpDone = new Uint8Array(arpTargets.length)
  let arpAnswered = 0
  // follow-up lane: IP probes per host, queued when the host (or the gateway) answered ARP
  const perHost = 2 + ports.length + DISCOVER_DEFAULTS.ackPorts.length
  const qIp: number[] = []
  const qMac: Uint8Array[] = []
  let qHead = 0
  let qProbe = 0
  const queued = new Set<number>()
  /** host -> time its IP probes started; replies per host */
  const ipSentAt = new Map<number, number>()
  const ipReplies = new Map<number, number>()
  let hostsComplete = 0
  const answered = new Set<number>()
  let routedAnswered = 0
  let maxRtt = 0
  let routedMaxRtt = 0
  let lastReply = 0
  const enqueue = (ip: number, mac: Uint8Array) => {
    if (queued.has(ip)) return
    queued.add(ip)
    qIp.push(ip)
    qMac.push(mac)
  }
  const onReply = (r: RawReply) => {
    const now = performance.now()
    if (r.kind === 'arp') {
      const idx = arpIndex.get(r.ipInt)
      if (idx === undefined) return
      if (!arpDone[idx]) {
        arpDone[idx] = 1
        arpAnswered++
        lastReply = now
        if (arpSentAt[idx] > 0) maxRtt = Math.max(maxRtt, now - arpSentAt[idx])
        const mac = parseMac(r.mac) ?? new Uint8Array(6)
        if (r.ipInt === gatewayInt && !gatewayMac) {
          gatewayMac = mac
          for (const a of g.routed) enqueue(a, mac)
        }
        if (wanted.has(r.ipInt) && !routedSet.has(r.ipInt)) enqueue(r.ipInt, mac)
      }
      if (!wanted.has(r.ipInt) || routedSet.has(r.ipInt)) return
      const s = state(r.ip, r.ipInt)
      s.found.add('arp')
      s.mac = r.mac
      return
    }
    // `wanted` holds only addresses of the target set (ranges minus excludes): no string parsing here
    if (!wanted.has(r.ipInt)) return
    lastReply = now
    const t = ipSentAt.get(r.ipInt)
    if (t !== undefined) {
      if (routedSet.has(r.ipInt)) routedMaxRtt = Math.max(routedMaxRtt, now - t)
      else maxRtt = Math.max(maxRtt, now - t)
    }
    if (!answered.has(r.ipInt)) {
      answered.add(r.ipInt)
      if (routedSet.has(r.ipInt)) routedAnswered++
    }
    const n = (ipReplies.get(r.ipInt) ?? 0) + 1
    ipReplies.set(r.ipInt, n)
    if (n === perHost) hostsComplete++
    const s = state(r.ip, r.ipInt)
    if (r.kind === 'icmp-echo' || r.kind === 'icmp-timestamp' || r.kind === 'icmp-unreachable') s.found.add('icmp')
    else if (r.probe === 'syn') s.found.add('tcp-syn')
    else s.found.add('tcp-ack')
    if (r.ttl > 0 && s.ttl === undefined) {
      s.ttl = r.ttl
      const h = ttlHint(r.ttl)
      if (h) s.hints.push(h)
    }
    if (r.kind === 'syn-ack') {
      s.open.add(r.port)
      if (!s.hints.some((x) => x.source === 'tcp_window')) {
        const h = windowHint(r.ttl, r.window)
        if (h) s.hints.push(h)
      }
    }
  }
  const scanner = new RawScanner({link, srcIp: src, srcMac: g.iface.mac, srcPort, onReply})
  try {
    const total = arpTargets.length + (g.onLink.length + g.routed.length) * perHost
    await runPipeline({
      primaryCount: arpTargets.length,
      sendPrimary: (i) => {
        arpSentAt[i] = performance.now()
        scanner.sendArp(arpTargets[i])
      },
      primaryDone: (i) => arpDone[i] === 1,
      followUpPending: () => qHead < qIp.length,
      sendFollowUp: () => {
        const ip = qIp[qHead]
        const mac = qMac[qHead]
        const k = qProbe
        if (k === 0 && !ipSentAt.has(ip)) ipSentAt.set(ip, performance.now())
        if (k === 0) scanner.sendIcmp(ip, mac, false, 1)
        else if (k === 1) scanner.sendIcmp(ip, mac, true, 1)
        else if (k < 2 + ports.length) scanner.sendTcp(ip, mac, ports[k - 2], false)
        else scanner.sendTcp(ip, mac, DISCOVER_DEFAULTS.ackPorts[k - 2 - ports.length], true)
        if (++qProbe === perHost) {
          qProbe = 0
          qHead++
        }
      },
      allDone: () => arpAnswered === arpTargets.length && qHead === qIp.length && hostsComplete === qIp.length,
      tailMs: () => discoveryTail(maxRtt, waitMs, g.routed.length > 0 ? {answered: routedAnswered, rtt: routedMaxRtt} : null),
      retryTailMs: () => Math.max(TAIL.retryMinMs, discoveryTail(maxRtt, waitMs, g.routed.length > 0 ? {answered: routedAnswered, rtt: routedMaxRtt} : null) / 2),
      lastReplyAt: () => lastReply,
      onRound: () => {
        // routed hosts have no ARP to prove them up: resend their IP probes (on-link hosts that
        // answered ARP are up already; their IP answers only add detail)
        const gm = gatewayMac as Uint8Array | null
        if (!gm) return
        for (const a of g.routed) {
          if (answered.has(a)) continue
          qIp.push(a)
          qMac.push(gm)
        }
      },
      rate, retries,
      onProgress: (sentNow) => progress({phase: 'probe', done: Math.min(sentNow, total), total, found: arpAnswered + routedAnswered, elapsedMs: performance.now() - t0}),
    })
    return scanner.sent
  } finally {
    link.close()
  }
}

/** IPv4 addresses of this machine's interfaces (of its network namespace) */
function localIpv4Addresses(): Set<string> {
  const out = new Set<string>()
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4') out.add(a.address)
  return out
}

