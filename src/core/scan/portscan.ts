/**
 * TCP port scan of known hosts: SYN through libpcap (stateless, cookie-matched, see raw.ts) when
 * raw access is permitted, else connect(). Returns open ports per host plus what the SYN-ACKs
 * say about the OS.
 */
import {UserError} from '../errors.js'
import type {OsHint} from '../inventory/inventory.js'
import {parseMac} from '../packet/address.js'
import {connectScan, pool} from './connect.js'
import {ttlHint, windowHint} from './oshints.js'
import {ignoreProgress, type ProgressSink} from './progress.js'
import {CapLink, RAW_LIMITS, RawScanner, sendPaced, type RawLink, type RawReply} from './raw.js'
import {inSubnet, interfaceInfo, ipv4ToInt, routeTo, type CommandRunner} from './route.js'

export interface PortScanOptions {
  method?: 'auto' | 'raw' | 'connect'
  rate?: number
  retries?: number
  waitMs?: number
  onProgress?: ProgressSink
  runCommand?: CommandRunner
  openLink?: (iface: string, filter: string) => RawLink
}

export interface PortScanHost {
  ip: string
  open: number[]
  /** anything answered (SYN-ACK, RST, ARP) */
  up: boolean
  mac?: string
  os_hints: OsHint[]
}

export interface PortScanResult {
  method: 'raw' | 'connect'
  hosts: PortScanHost[]
  packetsSent: number
}

export async function portScan(hosts: readonly string[], ports: readonly number[], o: PortScanOptions = {}): Promise<PortScanResult> {
  const progress = o.onProgress ?? ignoreProgress
  if (o.method !== 'connect') {
    try {
      return await rawPortScan(hosts, ports, o, progress)
    } catch (err) {
      if (o.method === 'raw' || !(err instanceof UserError && err.code === 'PERMISSION')) throw err
    }
  }
  const t0 = performance.now()
  let done = 0
  const total = hosts.length * ports.length
  const res = await pool(hosts, 4, async (ip) => {
    const r = await connectScan(ip, ports, {timeoutMs: o.waitMs ?? 1500, onProgress: () => progress({phase: 'portscan', done: ++done, total, found: 0, elapsedMs: performance.now() - t0})})
    return {ip, open: r.open, up: r.answered, os_hints: []}
  })
  return {method: 'connect', hosts: res, packetsSent: total}
}

async function rawPortScan(hosts: readonly string[], ports: readonly number[], o: PortScanOptions, progress: ProgressSink): Promise<PortScanResult> {
  const t0 = performance.now()
  // group hosts by interface
  const groups = new Map<string, {src: string; mac: string; hosts: {ip: string; ipInt: number; hop: number}[]}>()
  for (const ip of hosts) {
    const r = routeTo(ip, o.runCommand)
    if (!r) continue
    const i = interfaceInfo(r.dev, o.runCommand)
    if (!i) continue
    let g = groups.get(r.dev)
    if (!g) groups.set(r.dev, g = {src: r.src, mac: i.mac, hosts: []})
    const onLink = i.ipv4.some((a) => inSubnet(ip, a.address, a.prefixlen)) || !r.gateway
    g.hosts.push({ip, ipInt: ipv4ToInt(ip), hop: ipv4ToInt(onLink ? ip : r.gateway!)})
  }
  const out = new Map<number, PortScanHost>()
  for (const ip of hosts) out.set(ipv4ToInt(ip), {ip, open: [], up: false, os_hints: []})
  let sent = 0
  for (const [dev, g] of groups) {
    const srcPort = 40000 + Math.floor(Math.random() * 20000)
    const link = (o.openLink ?? ((i, f) => new CapLink(i, f)))(dev, RawScanner.filter(g.src, srcPort))
    const hopMacs = new Map<number, Uint8Array>()
    const answered = new Set<string>()
    const openSets = new Map<number, Set<number>>()
    const onReply = (r: RawReply) => {
      if (r.kind === 'arp') {
        if (!hopMacs.has(r.ipInt)) hopMacs.set(r.ipInt, parseMac(r.mac) ?? new Uint8Array(6))
        const h = out.get(r.ipInt)
        if (h) { h.up = true; h.mac = r.mac }
        return
      }
      const h = out.get(r.ipInt)
      if (!h || r.port === 0) return
      h.up = true
      answered.add(`${r.ipInt}:${r.port}`)
      if (r.kind === 'syn-ack') {
        let s = openSets.get(r.ipInt)
        if (!s) openSets.set(r.ipInt, s = new Set())
        s.add(r.port)
        if (h.os_hints.length === 0) {
          const a = ttlHint(r.ttl)
          const b = windowHint(r.ttl, r.window)
          if (a) h.os_hints.push(a)
          if (b) h.os_hints.push(b)
        }
      }
    }
    const scanner = new RawScanner({link, srcIp: g.src, srcMac: g.mac, srcPort, onReply})
    try {
      const hops = [...new Set(g.hosts.map((h) => h.hop))]
      await sendPaced(hops.length, (i) => scanner.sendArp(hops[i]), (i) => hopMacs.has(hops[i]), {
        rate: o.rate ?? RAW_LIMITS.defaultRate, retries: 2, waitMs: 300, allDone: () => hops.every((h) => hopMacs.has(h)),
      })
      const targets = g.hosts.filter((h) => hopMacs.has(h.hop))
      const n = targets.length * ports.length
      await sendPaced(n, (i) => {
        const t = targets[i % targets.length]
        scanner.sendTcp(t.ipInt, hopMacs.get(t.hop)!, ports[Math.floor(i / targets.length)], false)
      }, (i, round) => {
        if (round === 0) return false
        const t = targets[i % targets.length]
        return answered.has(`${t.ipInt}:${ports[Math.floor(i / targets.length)]}`)
      }, {
        rate: o.rate ?? RAW_LIMITS.defaultRate, retries: o.retries ?? 1, waitMs: o.waitMs ?? 1000,
        onProgress: (d, t) => progress({phase: 'portscan', done: d, total: t, found: [...openSets.values()].reduce((a, s) => a + s.size, 0), elapsedMs: performance.now() - t0}),
      })
      sent += scanner.sent
    } finally {
      link.close()
    }
    for (const [ipInt, s] of openSets) out.get(ipInt)!.open = [...s].sort((a, b) => a - b)
  }
  return {method: 'raw', hosts: [...out.values()], packetsSent: sent}
}
