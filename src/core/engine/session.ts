/**
 * Building an engine configuration from a project: policies per host, limits, gateway id. Shared
 * by `replay` and (later) `run`, so both judge traffic the same way.
 */
import os from 'node:os'
import type {PatchpointConfig} from '../project/config-schema.js'
import type {DefragPolicy} from '../flow/defrag.js'
import type {TcpOverlapPolicy} from '../flow/tcp.js'
import {parseIp} from '../packet/address.js'
import type {HostPolicy} from './engine.js'

/**
 * Overlap policies by operating system (target-based reassembly: the engine must rebuild the
 * bytes the way the protected host will, or an attacker shows the gateway one payload and the
 * host another). After Novak & Sturges, "Target-Based TCP Stream Reassembly" (2007) and the
 * host tables Snort and Suricata ship.
 */
export const OS_POLICIES: Record<string, {defrag: DefragPolicy; tcp: TcpOverlapPolicy}> = {
  linux: {defrag: 'linux', tcp: 'linux'},
  'old-linux': {defrag: 'linux', tcp: 'linux'},
  windows: {defrag: 'windows', tcp: 'windows'},
  vista: {defrag: 'windows', tcp: 'windows'},
  bsd: {defrag: 'bsd', tcp: 'bsd'},
  macos: {defrag: 'bsd', tcp: 'bsd'},
  solaris: {defrag: 'solaris', tcp: 'solaris'},
  hpux10: {defrag: 'bsd', tcp: 'bsd'},
  hpux11: {defrag: 'first', tcp: 'solaris'},
  irix: {defrag: 'bsd', tcp: 'bsd'},
}

/** TCP policy names the config accepts beyond the engine's own, mapped onto them. */
const TCP_POLICY_ALIASES: Record<string, TcpOverlapPolicy> = {
  'old-linux': 'linux', vista: 'windows', hpux10: 'bsd', hpux11: 'solaris', irix: 'bsd', macos: 'bsd',
}

export function tcpPolicyOf(name: string): TcpOverlapPolicy {
  return TCP_POLICY_ALIASES[name] ?? (name as TcpOverlapPolicy)
}

interface CidrEntry {
  net: Uint8Array
  bits: number
  policy: HostPolicy
}

/** Parse `10.0.0.0/8`, `2001:db8::/32` or a bare address; null when malformed. */
export function parseCidr(text: string): {net: Uint8Array; bits: number} | null {
  const slash = text.indexOf('/')
  const addr = parseIp(slash < 0 ? text : text.slice(0, slash))
  if (!addr) return null
  const max = addr.length * 8
  const bits = slash < 0 ? max : Number(text.slice(slash + 1))
  if (!Number.isInteger(bits) || bits < 0 || bits > max) return null
  return {net: addr, bits}
}

export function inCidr(addr: Uint8Array, net: Uint8Array, bits: number): boolean {
  if (addr.length !== net.length) return false
  let i = 0
  for (; bits >= 8; bits -= 8, i++) if (addr[i] !== net[i]) return false
  if (bits === 0) return true
  const mask = (0xff << (8 - bits)) & 0xff
  return (addr[i] & mask) === (net[i] & mask)
}

/**
 * Per-destination policy lookup from the config's `hosts:` list (first match wins; explicit
 * policies beat the OS's). Results are memoised per address, bounded.
 */
export function hostPolicyFromConfig(config: Pick<PatchpointConfig, 'hosts'>): ((ip: string) => HostPolicy | undefined) | undefined {
  const entries: CidrEntry[] = []
  for (const h of config.hosts ?? []) {
    const c = parseCidr(h.match)
    if (!c) continue
    const byOs = h.os ? OS_POLICIES[h.os] : undefined
    entries.push({
      ...c,
      policy: {
        defrag: h.defrag_policy ?? byOs?.defrag,
        tcp: h.tcp_policy ? tcpPolicyOf(h.tcp_policy) : byOs?.tcp,
      },
    })
  }
  if (entries.length === 0) return undefined
  const memo = new Map<string, HostPolicy | undefined>()
  return (ip) => {
    if (memo.has(ip)) return memo.get(ip)
    const addr = parseIp(ip)
    const found = addr ? entries.find((e) => inCidr(addr, e.net, e.bits))?.policy : undefined
    if (memo.size >= 65_536) memo.clear()
    memo.set(ip, found)
    return found
  }
}

export function defaultGatewayId(): string {
  return os.hostname()
}
