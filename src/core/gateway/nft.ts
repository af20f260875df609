/**
 * The nftables side of inline mode: a table of our own in the BRIDGE family whose forward chain
 * drops (diverts away from the kernel bridge) the frames of protected services; the engine
 * captures them on the ports and re-injects them itself. Everything else is bridged by the
 * kernel.
 *
 * Fail-open: every divert rule also requires the `alive` set to hold the element `ip` (the
 * IPv4 ethertype). The engine writes it with a 1 s timeout and refreshes it every 300 ms through
 * a long-lived `nft -i` child: if the engine dies (even `kill -9`), the element expires and the
 * kernel bridges the protected flows again within a second. The refresh runs in a worker thread
 * (alive-worker.ts) guarded by a heartbeat of the main thread, so a pause of the main thread
 * shorter than ENGINE_STALL_MS (a reload, a GC) does not open the divert: during a lapse the
 * kernel would forward protected flows unjudged. Fail-closed writes the element without a
 * timeout (and the divert rules stay until an explicit teardown).
 */
import {spawn, execFileSync, type ChildProcess} from 'node:child_process'
import fs from 'node:fs'
import {Worker} from 'node:worker_threads'
import type {ServicePolicy} from './policy.js'

export const NFT_TABLE = 'patchpoint'
/** lifetime of the `alive` element; the refresh runs every REFRESH_MS */
export const ALIVE_TIMEOUT_MS = 1000
export const REFRESH_MS = 300
/** the main thread may pause this long before the refresh stops (a hung engine fails open) */
export const ENGINE_STALL_MS = 3000
/** how often the main thread stamps its heartbeat */
export const HEARTBEAT_MS = 200
/** bypassed flows stay in the kernel path this long after their last refresh */
export const BYPASS_TIMEOUT_S = 60
/** longest nft command line written to the child */
export const MAX_NFT_LINE = 64 * 1024

export interface DivertSets {
  tcp4: string[]
  udp4: string[]
  hosts4: string[]
}

/** services -> set elements (`10.0.0.3 . 80`); IPv6 services are not diverted (reported by the caller) */
export function divertSets(services: readonly Pick<ServicePolicy, 'ip' | 'port' | 'proto'>[]): DivertSets {
  const tcp4 = new Set<string>()
  const udp4 = new Set<string>()
  const hosts4 = new Set<string>()
  for (const s of services) {
    if (s.ip.includes(':')) continue
    ;(s.proto === 'tcp' ? tcp4 : udp4).add(`${s.ip} . ${s.port}`)
    hosts4.add(s.ip)
  }
  return {tcp4: [...tcp4], udp4: [...udp4], hosts4: [...hosts4]}
}

function elements(list: readonly string[]): string {
  return list.length === 0 ? '' : `elements = { ${list.join(', ')} }`
}

/** The whole table, as an `nft -f` script (replaces any table left by an earlier run). */
export function rulesetScript(sets: DivertSets, opts: {failClosed?: boolean; ports?: readonly string[]} = {}): string {
  const alive = opts.failClosed ? 'ip' : `ip timeout ${ALIVE_TIMEOUT_MS}ms`
  // only frames entering through our two ports (another bridge on the host is left alone)
  const br = opts.ports && opts.ports.length > 0 ? `iifname { ${opts.ports.map((p) => `"${p}"`).join(', ')} } ` : ''
  const on = `${br}ether type @alive`
  return `table bridge ${NFT_TABLE}
delete table bridge ${NFT_TABLE}
table bridge ${NFT_TABLE} {
  set tcp4 { type ipv4_addr . inet_service; ${elements(sets.tcp4)} }
  set udp4 { type ipv4_addr . inet_service; ${elements(sets.udp4)} }
  set hosts4 { type ipv4_addr; ${elements(sets.hosts4)} }
  set alive { type ether_type; flags timeout; elements = { ${alive} } }
  set bypass4 { type ipv4_addr . inet_service . ipv4_addr . inet_service; flags timeout; }
  chain forward {
    type filter hook forward priority -200; policy accept;
    ${on} ip saddr . tcp sport . ip daddr . tcp dport @bypass4 accept
    ${on} ip daddr . tcp dport @tcp4 drop
    ${on} ip saddr . tcp sport @tcp4 drop
    ${on} ip daddr . udp dport @udp4 drop
    ${on} ip saddr . udp sport @udp4 drop
    ${on} ip frag-off & 0x3fff != 0 ip daddr @hosts4 drop
    ${on} ip frag-off & 0x3fff != 0 ip saddr @hosts4 drop
  }
}
`
}

/** One line refreshing the `alive` element (add first so the delete cannot fail). */
export function refreshLine(): string {
  return `add element bridge ${NFT_TABLE} alive { ip timeout ${ALIVE_TIMEOUT_MS}ms }; delete element bridge ${NFT_TABLE} alive { ip }; add element bridge ${NFT_TABLE} alive { ip timeout ${ALIVE_TIMEOUT_MS}ms }`
}

/** Lines replacing the divert sets (SIGHUP, dynamic ports). */
export function setLines(sets: DivertSets): string[] {
  const out: string[] = []
  for (const name of ['tcp4', 'udp4', 'hosts4'] as const) {
    out.push(`flush set bridge ${NFT_TABLE} ${name}`)
    const list = sets[name]
    for (let i = 0; i < list.length; i += 256) out.push(`add element bridge ${NFT_TABLE} ${name} { ${list.slice(i, i + 256).join(', ')} }`)
  }
  return out
}

export function addElementLine(set: 'tcp4' | 'udp4' | 'hosts4', element: string): string {
  return `add element bridge ${NFT_TABLE} ${set} { ${element} }`
}

export type Exec = (cmd: string, args: readonly string[], input?: string) => string

export const execSync: Exec = (cmd, args, input) => execFileSync(cmd, args, {input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe']})

/** Owns the table: installs it, keeps it alive, removes it. */
export class NftDivert {
  private child: ChildProcess | null = null
  private timer: NodeJS.Timeout | null = null
  private worker: Worker | null = null
  lastError = ''
  /** times the refresher saw the main thread stalled past ENGINE_STALL_MS */
  stalls = 0

  constructor(private readonly exec: Exec = execSync) {}

  install(sets: DivertSets, opts: {failClosed?: boolean; ports?: readonly string[]} = {}): void {
    this.exec('nft', ['-f', '-'], rulesetScript(sets, opts))
  }

  /** start the `nft -i` child and the refresh timer (not in fail-closed mode) */
  keepAlive(failClosed: boolean): void {
    const child = spawn('nft', ['-i'], {stdio: ['pipe', 'ignore', 'pipe']})
    child.stderr?.on('data', (d: Buffer) => {
      this.lastError = d.toString('utf8').slice(0, 500)
    })
    child.on('error', (e) => {
      this.lastError = String(e)
    })
    child.stdin?.on('error', () => {})
    this.child = child
    if (failClosed) return
    const workerFile = new URL('./alive-worker.js', import.meta.url)
    if (!fs.existsSync(workerFile)) {
      // running from the TypeScript sources (tests): refresh from the main thread
      this.timer = setInterval(() => this.write(refreshLine()), REFRESH_MS)
      this.timer.unref()
      return
    }
    const heartbeat = new SharedArrayBuffer(8)
    const beat = new Float64Array(heartbeat)
    beat[0] = Date.now()
    // the main thread refreshes too (through its own child) until the worker has booted, and
    // afterwards whenever it runs: two writers of the same element do no harm
    let n = 0
    this.timer = setInterval(() => {
      beat[0] = Date.now()
      if (++n % Math.max(1, Math.round(REFRESH_MS / HEARTBEAT_MS)) === 0) this.write(refreshLine())
    }, HEARTBEAT_MS)
    this.timer.unref()
    const w = new Worker(workerFile, {workerData: {line: refreshLine(), refreshMs: REFRESH_MS, stallMs: ENGINE_STALL_MS, heartbeat}})
    w.on('message', (m: {error?: string; stalled?: number}) => {
      if (m.error) this.lastError = m.error
      if (m.stalled) this.stalls++
    })
    w.on('error', (e) => {
      this.lastError = String(e)
    })
    w.unref()
    this.worker = w
  }

  write(line: string): void {
    if (line.length > MAX_NFT_LINE) return
    this.child?.stdin?.write(line + '\n')
  }

  /** remove the table (idempotent) and stop the child */
  remove(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    this.worker?.postMessage({stop: true})
    void this.worker?.terminate()
    this.worker = null
    try {
      this.child?.stdin?.end()
      this.child?.kill()
    } catch {
      // already gone
    }
    this.child = null
    try {
      this.exec('nft', ['delete', 'table', 'bridge', NFT_TABLE])
    } catch {
      // not there
    }
  }
}
