/**
 * Which interface and source address reach a target, from the kernel's routing table
 * (`ip -j route get ADDR`), and the interface's MAC and attached subnets (`ip -j addr`). The
 * command runner is injectable so tests feed recorded JSON.
 */
import {execFileSync} from 'node:child_process'
import os from 'node:os'
import {parseIp} from '../packet/address.js'

export interface RouteInfo {
  dst: string
  dev: string
  /** source address the kernel would use */
  src: string
  /** next hop when not directly attached */
  gateway?: string
  /** the destination is on a directly attached subnet (no gateway) */
  onLink: boolean
}

export interface InterfaceInfo {
  name: string
  mac: string
  mtu: number
  /** IPv4 subnets as [address, prefixlen] */
  ipv4: {address: string; prefixlen: number}[]
  up: boolean
}

export type CommandRunner = (cmd: string, args: string[]) => string

export const defaultRunner: CommandRunner = (cmd, args) => execFileSync(cmd, args, {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000})

type IfaceList = ReturnType<typeof os.networkInterfaces>

/**
 * The directly attached (non-loopback) interface whose IPv4 subnet holds `addr`, longest prefix
 * first, from the kernel's interface list (getifaddrs): no `ip` command run, so discovery of a
 * local subnet starts without a child process. Null when `addr` is not on an attached subnet
 * (then ask `routeTo`). Never throws.
 */
export function attachedInterface(addr: string, list: IfaceList = safeInterfaces()): {route: RouteInfo; iface: InterfaceInfo} | null {
  let best: {route: RouteInfo; iface: InterfaceInfo; prefixlen: number} | null = null
  for (const [name, addrs] of Object.entries(list)) {
    if (!addrs) continue
    const v4 = addrs.filter((a) => a.family === 'IPv4' && !a.internal)
    for (const a of v4) {
      const prefixlen = Number(a.cidr?.split('/')[1] ?? 32)
      if (!inSubnet(addr, a.address, prefixlen) || (best && best.prefixlen >= prefixlen)) continue
      best = {
        prefixlen,
        route: {dst: addr, dev: name, src: a.address, onLink: true},
        iface: {name, mac: a.mac, mtu: 1500, ipv4: v4.map((x) => ({address: x.address, prefixlen: Number(x.cidr?.split('/')[1] ?? 32)})), up: true},
      }
    }
  }
  return best ? {route: best.route, iface: best.iface} : null
}

function safeInterfaces(): IfaceList {
  try {
    return os.networkInterfaces()
  } catch {
    return {}
  }
}

/** The route to `addr`; null when there is none (unreachable, bad output). Never throws. */
export function routeTo(addr: string, run: CommandRunner = defaultRunner): RouteInfo | null {
  try {
    const j = JSON.parse(run('ip', ['-j', 'route', 'get', addr])) as {dst?: string; dev?: string; prefsrc?: string; gateway?: string; type?: string}[]
    const r = j[0]
    if (!r || !r.dev || !r.prefsrc || (r.type !== undefined && r.type !== 'unicast' && r.type !== 'local')) return null
    return {dst: r.dst ?? addr, dev: r.dev, src: r.prefsrc, gateway: r.gateway, onLink: r.gateway === undefined}
  } catch {
    return null
  }
}

export function interfaceInfo(dev: string, run: CommandRunner = defaultRunner): InterfaceInfo | null {
  try {
    const j = JSON.parse(run('ip', ['-j', 'addr', 'show', 'dev', dev])) as {
      ifname: string; address?: string; mtu?: number; flags?: string[]; operstate?: string
      addr_info?: {family: string; local: string; prefixlen: number}[]
    }[]
    const i = j[0]
    if (!i) return null
    return {
      name: i.ifname, mac: i.address ?? '00:00:00:00:00:00', mtu: i.mtu ?? 1500,
      ipv4: (i.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => ({address: a.local, prefixlen: a.prefixlen})),
      up: (i.flags ?? []).includes('UP'),
    }
  } catch {
    return null
  }
}

export function ipv4ToInt(ip: string): number {
  const b = parseIp(ip)
  if (!b || b.length !== 4) return -1
  return ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0
}

export function intToIpv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`
}

/** true when ip is inside address/prefixlen */
export function inSubnet(ip: string, address: string, prefixlen: number): boolean {
  const a = ipv4ToInt(ip)
  const b = ipv4ToInt(address)
  if (a < 0 || b < 0) return false
  if (prefixlen === 0) return true
  const mask = (0xffffffff << (32 - prefixlen)) >>> 0
  return ((a & mask) >>> 0) === ((b & mask) >>> 0)
}
