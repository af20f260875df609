/**
 * The nftables side of inline mode: a table of our own in the NETDEV family. An ingress chain on
 * each bridge port sends the frames of protected services (`fwd to`) into a veth pair of that
 * port (divertVeths): the engine captures them on the pair's far end, so its capture sockets
 * only ever see diverted frames, and re-injects what it forwards into the OTHER port's pair,
 * whose ingress chain forwards it out of that port. Everything else (accepted by the ingress
 * chain) goes on to the Linux bridge and is bridged by the kernel without a copy to user space.
 * (Before: a bridge-family forward chain dropped the protected frames and the engine captured
 * on the ports themselves: its packet sockets saw, filtered and often copied every frame of the
 * bridge, which cost 0.1-0.2 of the bare bridge's throughput.)
 *
 *   port A --ingress: divert?--yes--fwd--> A-ppk ==veth== A-ppe  --capture--> engine
 *          \--no--> bridge --> port B                                          |
 *   port B <--fwd-- B-ppk (ingress: fwd to B) <==veth== B-ppe <--send (A->B)----'
 *
 * IPv6 services are diverted the same way (sets tcp6/udp6/hosts6, `ip6` rules). Fragments carry no
 * ports after the first: every IPv4 or IPv6 fragment to or from a protected host is diverted by
 * address. IPv6 frames to or from a protected host whose first next header is not TCP, UDP or
 * ICMPv6 (extension headers) are diverted by address too: the kernel finds a TCP header behind
 * a Destination Options header, libpcap's `tcp port` does not, and the capture filter (bpf.ts)
 * must see every frame nftables diverts.
 *
 * Fail-open: every divert rule also requires the `alive` set to hold the frame's ethertype (the
 * elements `ip` and `ip6`). The engine writes them with a 1 s timeout and refreshes them every
 * 300 ms through a long-lived `nft -i` child: if the engine dies (even `kill -9`), the elements
 * expire and the kernel bridges the protected flows again within a second. The refresh runs in a worker thread
 * (alive-worker.ts) guarded by a heartbeat of the main thread, so a pause of the main thread
 * shorter than ENGINE_STALL_MS (a reload, a GC) does not open the divert: during a lapse the
 * kernel would forward protected flows unjudged. Fail-closed writes the element without a
 * timeout (and the divert rules stay until an explicit teardown): with the engine dead, the
 * diverted frames reach a veth end nobody reads (and whose ingress chain drops them).
 */
import {spawn, execFileSync, type ChildProcess} from 'node:child_process'
import fs from 'node:fs'
import {Worker} from 'node:worker_threads'
import {formatIp, parseIp} from '../packet/address.js'
import type {ServicePolicy} from './policy.js'

export const NFT_TABLE = 'patchpoint'
/** the table's family: ingress hooks per device, `fwd to` */
export const NFT_FAMILY = 'netdev'
/** longest interface name (IFNAMSIZ - 1) */
export const MAX_IFNAME = 15
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

/**
 * Pure ACKs (IPv4, RFC 9293 §3.1: flags exactly ACK, no payload: total length = IHL*4 + data
 * offset*4, no IP options, not a fragment) are left to the kernel even on protected tuples: they
 * carry no stream bytes, and a download's receiver sends one per two segments, each a capture,
 * an engine pass and an injection otherwise. The engine still sees the ACK field of every
 * segment that carries data, a SYN, FIN or RST (what resets and reassembly need).
 * PURE_ACK4_NFT (nftables) and PURE_ACK4_BPF (the capture filter, bpf.ts) must select exactly
 * the same frames: a pure ACK both forwarded by the kernel and captured would reach the
 * receiver twice (duplicate ACKs trigger fast retransmits); one neither forwarded nor captured
 * would be lost. The length test comes first: a full-size segment (most frames, protected or
 * not) leaves the rule after one comparison.
 */
export const PURE_ACK4_NFT = 'ip length <= 80 ip hdrlength 5 ip frag-off & 0x3fff == 0 tcp flags == ack jump pureack4'
/**
 * the pureack4 chain: total length against data offset, one rule per offset, the usual ones
 * first (timestamps, none, SACK blocks). One rule each: an anonymous set of `ip length . tcp doff`
 * loads but nft 1.0.6 aborts listing it (mergesort.c assertion), and `nft list ruleset` must work.
 */
const PURE_ACK4_CHAIN = [8, 5, 11, 10, 13, 15, 6, 7, 9, 12, 14].map((doff) => `    ip length ${20 + 4 * doff} tcp doff ${doff} accept`).join('\n')
/**
 * SYN floods: bare SYNs (no payload) to protected services are diverted up to this rate per port;
 * above it, they go through the kernel bridge. A bare SYN carries no byte to judge, and the
 * engine picks the flow up from the SYN-ACK or the first data (what a SYN says, window scale and
 * timestamps, is then unknown to it: window checks assume the largest scale). So a flood cannot
 * swamp the engine, and a legitimate connection opened during one still gets through, judged.
 * A SYN with data (TCP Fast Open) is always diverted.
 */
export const SYN_DIVERT_PER_SECOND = 10_000
const NO_PAYLOAD6_CHAIN = [8, 5, 11, 10, 13, 15, 6, 7, 9, 12, 14].map((doff) => `    ip6 length ${4 * doff} tcp doff ${doff} accept`).join('\n')
/**
 * The commonest frame on a port, a segment of an unprotected IPv4 TCP flow, leaves the port's
 * ingress chain after one of these two rules and goes on to the bridge. They accept only frames
 * the divert chains would accept too: TCP (a UDP or ICMP frame goes on to them), not a fragment
 * (every fragment of a protected host, the first one included, is diverted by address), and
 * neither the destination nor the source tuple in `tcp4`. The first rule tests the ports alone
 * against `tports4` (the ports of `tcp4`, a bitmap: two bit tests), which settles most frames;
 * the second, the tuples (two hash lookups), settles a port shared with a protected service on
 * another host. Before, such a frame cost the alive lookup, a verdict-map jump and all six IPv4
 * divert rules (four hash lookups): about 17% of the CPU the bridge path took in an iperf3
 * profile, about 9% with the tuple rule alone.
 */
export const UNPROTECTED_TCP4_NFT = [
  'ip frag-off & 0x3fff == 0 meta l4proto tcp tcp dport != @tports4 tcp sport != @tports4 accept',
  'ip frag-off & 0x3fff == 0 meta l4proto tcp ip daddr . tcp dport != @tcp4 ip saddr . tcp sport != @tcp4 accept',
] as const
export const PURE_ACK4_BPF = '(tcp[13] == 0x10 and ip[0] & 0xf == 5 and ip[6:2] & 0x3fff == 0 and ip[2:2] == 20 + ((tcp[12] & 0xf0) >> 2))'

export interface DivertSets {
  tcp4: string[]
  udp4: string[]
  hosts4: string[]
  tcp6: string[]
  udp6: string[]
  hosts6: string[]
}

export type DivertSetName = keyof DivertSets

const SET_NAMES: readonly DivertSetName[] = ['tcp4', 'udp4', 'hosts4', 'tcp6', 'udp6', 'hosts6']

/** the veth pair of one bridge port */
export interface DivertVeth {
  /** the end nftables forwards the port's diverted frames into; its ingress forwards out of the port */
  kernel: string
  /** the end the engine captures on and sends through */
  engine: string
}

/**
 * The veth pair of a port, named after it (`ga` -> `ga-ppk`, `ga-ppe`), at most MAX_IFNAME
 * characters: a port name longer than 11 keeps its first 6 characters and a 5-digit hash of the
 * whole name (two long names with the same beginning still get different pairs).
 */
export function divertVeths(port: string): DivertVeth {
  let stem = port
  if (stem.length > MAX_IFNAME - 4) {
    // FNV-1a, 32 bits
    let h = 0x811c9dc5
    for (let i = 0; i < port.length; i++) h = Math.imul(h ^ port.charCodeAt(i), 0x01000193) >>> 0
    stem = port.slice(0, 6) + h.toString(16).padStart(8, '0').slice(0, 5)
  }
  return {kernel: `${stem}-ppk`, engine: `${stem}-ppe`}
}

/**
 * An address as the engine prints it (RFC 5952 for IPv6: `FD00:0006::0003` -> `fd00:6::3`), so
 * policy entries, set elements and flow keys agree; null when it is not an address.
 */
export function canonicalIp(ip: string): string | null {
  const b = parseIp(ip)
  return b === null ? null : formatIp(b)
}

/** services -> set elements (`10.0.0.3 . 80`, `fd00:6::3 . 80`); unparsable addresses are skipped */
export function divertSets(services: readonly Pick<ServicePolicy, 'ip' | 'port' | 'proto'>[]): DivertSets {
  const out = {tcp4: new Set<string>(), udp4: new Set<string>(), hosts4: new Set<string>(), tcp6: new Set<string>(), udp6: new Set<string>(), hosts6: new Set<string>()}
  for (const s of services) {
    const ip = canonicalIp(s.ip)
    if (ip === null) continue
    const v6 = ip.includes(':')
    ;(s.proto === 'tcp' ? (v6 ? out.tcp6 : out.tcp4) : v6 ? out.udp6 : out.udp4).add(`${ip} . ${s.port}`)
    ;(v6 ? out.hosts6 : out.hosts4).add(ip)
  }
  return {
    tcp4: [...out.tcp4], udp4: [...out.udp4], hosts4: [...out.hosts4],
    tcp6: [...out.tcp6], udp6: [...out.udp6], hosts6: [...out.hosts6],
  }
}

/** the ports of `tcp4` elements (`10.0.0.3 . 80` -> `80`), each once: the `tports4` set */
export function tcpPorts4(tcp4: readonly string[]): string[] {
  return [...new Set(tcp4.map((e) => e.slice(e.lastIndexOf(' ') + 1)))]
}

function elements(list: readonly string[]): string {
  return list.length === 0 ? '' : `elements = { ${list.join(', ')} }`
}

/**
 * The divert rules of one port's chains, IPv4 or IPv6: each sends its frames into `dev`. IPv4
 * TCP frames of protected tuples jump to a chain per direction (`tcp4c_N` toward the service,
 * `tcp4s_N` from it), so a frame of an unprotected flow costs the two tuple lookups only; the
 * SYN-flood limit, pure ACKs and bypassed responses are sorted out inside those chains.
 */
function divertRules(v6: boolean, dev: string, i: number): string {
  const to = `fwd to "${dev}"`
  const rules = v6
    ? [
        `ip6 nexthdr tcp tcp flags & (fin | syn | rst | ack) == syn ip6 daddr . tcp dport @tcp6 limit rate over ${SYN_DIVERT_PER_SECOND}/second jump baresyn6`,
        `ip6 daddr . tcp dport @tcp6 ${to}`,
        `ip6 saddr . tcp sport @tcp6 ${to}`,
        `ip6 daddr . udp dport @udp6 ${to}`,
        `ip6 saddr . udp sport @udp6 ${to}`,
        `exthdr frag exists ip6 daddr @hosts6 ${to}`,
        `exthdr frag exists ip6 saddr @hosts6 ${to}`,
        `ip6 nexthdr != { tcp, udp, ipv6-icmp } ip6 daddr @hosts6 ${to}`,
        `ip6 nexthdr != { tcp, udp, ipv6-icmp } ip6 saddr @hosts6 ${to}`,
      ]
    : [
        `ip daddr . tcp dport @tcp4 jump tcp4c_${i}`,
        `ip saddr . tcp sport @tcp4 jump tcp4s_${i}`,
        `ip daddr . udp dport @udp4 ${to}`,
        `ip saddr . udp sport @udp4 ${to}`,
        `ip frag-off & 0x3fff != 0 ip daddr @hosts4 ${to}`,
        `ip frag-off & 0x3fff != 0 ip saddr @hosts4 ${to}`,
      ]
  return rules.map((r) => `    ${r}`).join('\n')
}

/**
 * VLAN-tagged frames (802.1Q, or an 802.1ad S-tag), one rule in each port's `in` chain. At the
 * ingress hook the kernel has already moved the outermost tag out of the frame (skb metadata):
 * `ether type` still reads the tag's TPID (nft rebuilds the tag for link-layer loads), but the
 * network header and `meta protocol` are those of the frame inside the tag, so the same divert
 * chains (tuple sets, pure ACKs, SYN limit, bypass) apply to it unchanged. The capture socket
 * on the veth pair sees the frame as the kernel holds it (BPF on the untagged bytes) and libpcap
 * hands it up with the tag put back; the engine decodes it, and re-injects it tag and all.
 */
export function vlanDivertRule(i: number): string {
  return `ether type { 8021q, 8021ad } meta protocol @alive meta protocol vmap { ip : jump divert4_${i}, ip6 : jump divert6_${i} }`
}

/**
 * The whole table, as an `nft -f` script (replaces any table left by an earlier run). `ports`
 * are the bridge ports; their veth pairs (divertVeths) must exist (nft resolves `fwd to` and the
 * hooks' devices when it loads the script).
 */
export function rulesetScript(sets: DivertSets, opts: {failClosed?: boolean; ports: readonly string[]}): string {
  const alive = opts.failClosed ? 'ip, ip6' : `ip timeout ${ALIVE_TIMEOUT_MS}ms, ip6 timeout ${ALIVE_TIMEOUT_MS}ms`
  const hook = (dev: string, policy: 'accept' | 'drop') => `type filter hook ingress device "${dev}" priority -200; policy ${policy};`
  // per port: segments of unprotected IPv4 TCP flows (most frames) are accepted (go on to the
  // bridge) by the first rule; then, while alive, IPv4 and IPv6 frames jump to the port's divert
  // chains, and everything else (ARP...) is accepted after the alive lookup
  const chains = opts.ports.map((port, i) => {
    const v = divertVeths(port)
    return `  chain in${i} {
    ${hook(port, 'accept')}
    ${UNPROTECTED_TCP4_NFT.join('\n    ')}
    ether type @alive ether type vmap { ip : jump divert4_${i}, ip6 : jump divert6_${i} }
    ${vlanDivertRule(i)}
  }
  chain divert4_${i} {
${divertRules(false, v.kernel, i)}
  }
  chain tcp4c_${i} {
    ip hdrlength 5 ip frag-off & 0x3fff == 0 tcp flags & (fin | syn | rst | ack) == syn limit rate over ${SYN_DIVERT_PER_SECOND}/second jump baresyn4
    ${PURE_ACK4_NFT}
    fwd to "${v.kernel}"
  }
  chain tcp4s_${i} {
    ${PURE_ACK4_NFT}
    tcp flags & (fin | syn | rst) == 0 ip saddr . tcp sport . ip daddr . tcp dport @bypass4 accept
    fwd to "${v.kernel}"
  }
  chain divert6_${i} {
${divertRules(true, v.kernel, i)}
  }
  chain out${i} {
    ${hook(v.kernel, 'accept')}
    fwd to "${port}"
  }
  chain engine${i} {
    ${hook(v.engine, 'drop')}
  }
`
  }).join('')
  return `table ${NFT_FAMILY} ${NFT_TABLE}
delete table ${NFT_FAMILY} ${NFT_TABLE}
table ${NFT_FAMILY} ${NFT_TABLE} {
  set tcp4 { type ipv4_addr . inet_service; ${elements(sets.tcp4)} }
  set tports4 { type inet_service; ${elements(tcpPorts4(sets.tcp4))} }
  set udp4 { type ipv4_addr . inet_service; ${elements(sets.udp4)} }
  set hosts4 { type ipv4_addr; ${elements(sets.hosts4)} }
  set tcp6 { type ipv6_addr . inet_service; ${elements(sets.tcp6)} }
  set udp6 { type ipv6_addr . inet_service; ${elements(sets.udp6)} }
  set hosts6 { type ipv6_addr; ${elements(sets.hosts6)} }
  set alive { type ether_type; flags timeout; elements = { ${alive} } }
  set bypass4 { type ipv4_addr . inet_service . ipv4_addr . inet_service; flags timeout; }
${chains}  chain pureack4 {
${PURE_ACK4_CHAIN}
  }
  chain baresyn4 {
${PURE_ACK4_CHAIN}
  }
  chain baresyn6 {
${NO_PAYLOAD6_CHAIN}
  }
}
`
}

/** One line refreshing the `alive` elements, IPv4 and IPv6 (add first so the delete cannot fail). */
export function refreshLine(): string {
  const add = `add element ${NFT_FAMILY} ${NFT_TABLE} alive { ip timeout ${ALIVE_TIMEOUT_MS}ms, ip6 timeout ${ALIVE_TIMEOUT_MS}ms }`
  return `${add}; delete element ${NFT_FAMILY} ${NFT_TABLE} alive { ip, ip6 }; ${add}`
}

/** Lines replacing the divert sets (SIGHUP, dynamic ports). */
export function setLines(sets: DivertSets): string[] {
  const out: string[] = []
  const lists: [string, readonly string[]][] = SET_NAMES.map((name) => [name, sets[name]])
  lists.push(['tports4', tcpPorts4(sets.tcp4)])
  for (const [name, list] of lists) {
    out.push(`flush set ${NFT_FAMILY} ${NFT_TABLE} ${name}`)
    for (let i = 0; i < list.length; i += 256) out.push(`add element ${NFT_FAMILY} ${NFT_TABLE} ${name} { ${list.slice(i, i + 256).join(', ')} }`)
  }
  return out
}

/**
 * Lines for one element of the `bypass4` set (`server . port . client . port`, the tuple of the
 * server->client frames the kernel forwards itself). Add, refresh and delete are each written so
 * they cannot fail halfway (an nft line is one transaction): a refresh adds, deletes and adds
 * again (an existing element's timeout is not renewed by `add`), a delete adds first.
 */
export function bypassAddLine(element: string): string {
  return `add element ${NFT_FAMILY} ${NFT_TABLE} bypass4 { ${element} timeout ${BYPASS_TIMEOUT_S}s }`
}

export function bypassRefreshLine(element: string): string {
  const add = bypassAddLine(element)
  return `${add}; delete element ${NFT_FAMILY} ${NFT_TABLE} bypass4 { ${element} }; ${add}`
}

export function bypassDeleteLine(element: string): string {
  return `${bypassAddLine(element)}; delete element ${NFT_FAMILY} ${NFT_TABLE} bypass4 { ${element} }`
}

/** one element added to a divert set (a `tcp4` element's port goes into `tports4` in the same line) */
export function addElementLine(set: DivertSetName, element: string): string {
  const add = `add element ${NFT_FAMILY} ${NFT_TABLE} ${set} { ${element} }`
  return set === 'tcp4' ? `${add}; add element ${NFT_FAMILY} ${NFT_TABLE} tports4 { ${tcpPorts4([element])[0]} }` : add
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

  install(sets: DivertSets, opts: {failClosed?: boolean; ports: readonly string[]}): void {
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
      this.exec('nft', ['delete', 'table', NFT_FAMILY, NFT_TABLE])
    } catch {
      // not there
    }
  }
}
