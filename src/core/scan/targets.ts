/**
 * Target ranges and port lists. Nothing outside the given ranges is ever probed: every address
 * a scan sends to comes from `expandTargets`, which applies the excludes and the size limit.
 */
import {readFileSync} from 'node:fs'
import {UserError} from '../errors.js'
import {intToIpv4, ipv4ToInt} from './route.js'

/** addresses one scan may cover (a /16 by default); raise with --max-hosts */
export const MAX_TARGETS = 65_536

/** Common server ports probed by `discover` (TCP SYN) and scanned by default by `fingerprint`. */
export const DISCOVERY_PORTS: readonly number[] = [
  21, 22, 23, 25, 53, 80, 110, 111, 135, 139, 143, 389, 443, 445, 465, 587, 636, 993, 995, 1433,
  1521, 2049, 3306, 3389, 5432, 5900, 5985, 6379, 8000, 8080, 8443, 9200,
]

/**
 * Our own list of ~100 server ports (web, mail, file, database, directory, remote access, RPC,
 * middleware), used as `top100`. Ordered by port.
 */
export const TOP100_PORTS: readonly number[] = [
  7, 21, 22, 23, 25, 53, 69, 79, 80, 81, 88, 106, 110, 111, 113, 119, 123, 135, 137, 139, 143,
  161, 179, 199, 389, 427, 443, 444, 445, 465, 500, 512, 513, 514, 515, 548, 554, 587, 593, 631,
  636, 873, 902, 989, 990, 993, 995, 1025, 1080, 1099, 1194, 1433, 1434, 1521, 1723, 1883, 2049,
  2121, 2181, 2375, 2376, 3000, 3128, 3268, 3306, 3389, 3690, 4443, 4848, 5000, 5060, 5432, 5672,
  5900, 5985, 5986, 6000, 6379, 6443, 7001, 8000, 8008, 8009, 8080, 8081, 8088, 8443, 8888, 9000,
  9090, 9092, 9200, 9443, 10000, 11211, 27017, 32768, 49152, 49153, 50000,
]

const NMAP_SERVICES = '/usr/share/nmap/nmap-services'

/**
 * The N most frequently open TCP ports. When nmap's frequency table is installed it is read at
 * run time (it is not shipped with patchpoint); otherwise ports 1-1024 plus TOP100_PORTS.
 */
export function topPorts(n: number, servicesFile = NMAP_SERVICES): number[] {
  if (n <= TOP100_PORTS.length) return TOP100_PORTS.slice(0, n)
  try {
    const rows: [number, number][] = []
    for (const line of readFileSync(servicesFile, 'utf8').split('\n')) {
      if (line.startsWith('#')) continue
      const f = line.split(/\s+/)
      const m = /^(\d+)\/tcp$/.exec(f[1] ?? '')
      if (m && f[2]) rows.push([Number(m[1]), Number(f[2])])
    }
    if (rows.length >= n) {
      const set = new Set(rows.sort((a, b) => b[1] - a[1]).slice(0, n).map((r) => r[0]))
      for (const p of TOP100_PORTS) set.add(p)
      return [...set].sort((a, b) => a - b)
    }
  } catch {
    // not installed: fall through
  }
  const set = new Set<number>(TOP100_PORTS)
  for (let p = 1; p <= 1024 && set.size < n; p++) set.add(p)
  return [...set].sort((a, b) => a - b)
}

/** `top100`, `top1000`, `all`, `default` or a list `22,80,8000-8100`. UserError when malformed. */
export function parsePorts(spec: string): number[] {
  const s = spec.trim().toLowerCase()
  if (s === 'default') return [...DISCOVERY_PORTS]
  if (s === 'all' || s === '-') return Array.from({length: 65535}, (_, i) => i + 1)
  const top = /^top(\d+)$/.exec(s)
  if (top) return topPorts(Math.min(65535, Number(top[1])))
  const set = new Set<number>()
  for (const part of s.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim())
    if (!m) throw new UserError(`--ports: cannot read "${part}"`, {suggestion: 'use top100, top1000, all, or a list like 22,80,8000-8100'})
    const a = Number(m[1])
    const b = m[2] === undefined ? a : Number(m[2])
    if (a < 1 || b > 65535 || a > b) throw new UserError(`--ports: ${part} is not within 1-65535`, {suggestion: 'ports are 1-65535; a range is LOW-HIGH'})
    for (let p = a; p <= b; p++) set.add(p)
  }
  return [...set].sort((x, y) => x - y)
}

export interface Range {
  /** first and last address, inclusive, as 32-bit integers */
  first: number
  last: number
  text: string
}

/** `10.0.0.0/24`, `10.0.0.5`, `10.0.0.10-10.0.0.20` or `10.0.0.10-20`. UserError when malformed. */
export function parseRange(text: string): Range {
  const t = text.trim()
  let m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(t)
  if (m) {
    const base = ipv4ToInt(m[1])
    const len = Number(m[2])
    if (base < 0 || len > 32) throw new UserError(`${t}: not an IPv4 CIDR block`, {suggestion: 'e.g. 192.0.2.0/24'})
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0
    const first = (base & mask) >>> 0
    return {first, last: (first | (~mask >>> 0)) >>> 0, text: t}
  }
  m = /^(\d+\.\d+\.\d+\.\d+)-(\d+(?:\.\d+\.\d+\.\d+)?)$/.exec(t)
  if (m) {
    const a = ipv4ToInt(m[1])
    const b = m[2].includes('.') ? ipv4ToInt(m[2]) : Number(m[2]) <= 255 ? ((a & 0xffffff00) | Number(m[2])) >>> 0 : -1
    if (a < 0 || b < 0 || b < a) throw new UserError(`${t}: not an address range`, {suggestion: 'e.g. 192.0.2.10-192.0.2.20 or 192.0.2.10-20'})
    return {first: a, last: b, text: t}
  }
  const single = ipv4ToInt(t)
  if (single >= 0) return {first: single, last: single, text: t}
  throw new UserError(`${t}: not an IPv4 address, range or CIDR block`, {suggestion: 'e.g. 192.0.2.0/24, 192.0.2.7 or 192.0.2.10-20 (IPv6 sweeps are not supported)'})
}

export interface TargetSet {
  /** addresses to probe, ascending, excludes applied */
  addresses: string[]
  ranges: Range[]
  excluded: Range[]
  /** true when the network and broadcast addresses of /0-/30 blocks were left out */
}

/**
 * Expand ranges minus excludes. Network and broadcast addresses of blocks /30 and larger are
 * left out. UserError when the result exceeds maxTargets (never silently truncated).
 */
export function expandTargets(include: readonly string[], exclude: readonly string[] = [], maxTargets = MAX_TARGETS): TargetSet {
  const ranges = include.map(parseRange)
  const excluded = exclude.map(parseRange)
  let total = 0
  for (const r of ranges) total += r.last - r.first + 1
  if (total > maxTargets * 4) throw new UserError(`the ranges hold ${total} addresses, more than the limit of ${maxTargets}`, {suggestion: 'scan smaller ranges, or raise --max-hosts'})
  const set = new Set<number>()
  for (const r of ranges) {
    const isBlock = /\/(\d+)$/.exec(r.text)
    const skipEdges = isBlock !== null && Number(isBlock[1]) <= 30
    for (let a = r.first; a <= r.last; a++) {
      if (skipEdges && (a === r.first || a === r.last)) continue
      if (excluded.some((x) => a >= x.first && a <= x.last)) continue
      set.add(a)
      if (set.size > maxTargets) throw new UserError(`more than ${maxTargets} addresses to scan`, {suggestion: 'scan smaller ranges, or raise --max-hosts'})
    }
  }
  return {addresses: [...set].sort((a, b) => a - b).map(intToIpv4), ranges, excluded}
}

/** true when ip lies in one of the ranges and none of the excludes */
export function inTargets(ip: string, t: Pick<TargetSet, 'ranges' | 'excluded'>): boolean {
  const a = ipv4ToInt(ip)
  if (a < 0) return false
  return t.ranges.some((r) => a >= r.first && a <= r.last) && !t.excluded.some((x) => a >= x.first && a <= x.last)
}
