/**
 * The host side of inline mode: privileges, interface checks, the Linux bridge, the veth pair of
 * each port (the divert path, see nft.ts) and offloads. Every change is recorded so teardown
 * leaves the interfaces as they were found.
 */
import fs from 'node:fs'
import {EXIT, UserError, permissionError} from '../errors.js'
import {divertVeths, execSync, type DivertVeth, type Exec} from './nft.js'

const CAP_NET_ADMIN = 12
const CAP_NET_RAW = 13
/** offload features turned off on each port (see shared NOTES: partial checksums, super-frames) */
export const OFFLOADS = ['tx', 'tso', 'gso', 'gro'] as const
/**
 * bytes the divert pairs' MTU exceeds the ports': the engine sends tagged frames with their tags
 * in the frame, and a packet socket lets a frame pass the MTU by one 802.1Q tag only (not an
 * 802.1ad tag, not two tags): a full-size 802.1ad frame was refused (EMSGSIZE) and lost
 */
export const DIVERT_VLAN_HEADROOM = 8
const OFFLOAD_NAMES: Record<string, string> = {
  tx: 'tx-checksumming', tso: 'tcp-segmentation-offload', gso: 'generic-segmentation-offload', gro: 'generic-receive-offload',
}

/** which of CAP_NET_ADMIN / CAP_NET_RAW this process lacks (from /proc/self/status CapEff) */
export function missingCapabilities(status = safeRead('/proc/self/status')): string[] {
  const m = /^CapEff:\s*([0-9a-f]+)/m.exec(status)
  const eff = m ? BigInt('0x' + m[1]) : 0n
  const out: string[] = []
  if ((eff & (1n << BigInt(CAP_NET_ADMIN))) === 0n) out.push('CAP_NET_ADMIN')
  if ((eff & (1n << BigInt(CAP_NET_RAW))) === 0n) out.push('CAP_NET_RAW')
  return out
}

function safeRead(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8')
  } catch {
    return ''
  }
}

export function requirePrivileges(status?: string): void {
  const missing = missingCapabilities(status)
  if (missing.length > 0) {
    throw permissionError(`inline mode needs ${missing.join(' and ')} (bridge, nftables and raw capture)`,
      'run as root, or: sudo setcap cap_net_admin,cap_net_raw+ep $(command -v node); proxy mode (--proxy) needs neither')
  }
}

interface LinkInfo {
  ifname: string
  mtu?: number
  /** a veth's peer (when in the same namespace) */
  link?: string
  flags?: string[]
  master?: string
  linkinfo?: {info_kind?: string}
}

export interface PortState {
  name: string
  wasUp: boolean
  master: string | null
  offloads: Record<string, boolean>
}

export interface BridgeSetup {
  bridge: string
  created: boolean
  ports: PortState[]
  /** the veth pairs we created, one per port, in the ports' order (deleted by teardown) */
  veths: DivertVeth[]
}

export class HostNet {
  constructor(private readonly exec: Exec = execSync) {}

  link(name: string): LinkInfo {
    let out: string
    try {
      out = this.exec('ip', ['-j', '-d', 'link', 'show', 'dev', name])
    } catch {
      throw new UserError(`interface ${name} does not exist`, {code: 'IFACE_MISSING', suggestion: 'list interfaces with `ip link`'})
    }
    return (JSON.parse(out) as LinkInfo[])[0]
  }

  defaultRouteDevices(): string[] {
    const devs: string[] = []
    for (const fam of ['-4', '-6']) {
      try {
        const routes = JSON.parse(this.exec('ip', ['-j', fam, 'route', 'show', 'default'])) as {dev?: string}[]
        for (const r of routes) if (r.dev) devs.push(r.dev)
      } catch {
        // no routes of that family
      }
    }
    return devs
  }

  /** refuse missing interfaces, the same one twice, and the default route's unless forced */
  validate(ifaces: readonly string[], force: boolean, bridge?: string): void {
    if (ifaces.length !== 2) throw new UserError(`--iface needs exactly two interfaces (A,B), got ${ifaces.length}`, {suggestion: 'e.g. --iface eth1,eth2'})
    if (ifaces[0] === ifaces[1]) throw new UserError(`--iface names ${ifaces[0]} twice`)
    const routed = this.defaultRouteDevices()
    for (const i of ifaces) {
      const l = this.link(i)
      if (l.linkinfo?.info_kind === 'bridge') throw new UserError(`${i} is a bridge; give its two ports with --iface and the bridge with --bridge`)
      if (bridge && l.master && l.master !== bridge) throw new UserError(`${i} is a port of ${l.master}, not of --bridge ${bridge}`)
      if (!bridge && l.master) throw new UserError(`${i} is already a port of ${l.master}`, {suggestion: `add --bridge ${l.master} to reuse that bridge`})
      const carries = routed.includes(i) || (l.master !== undefined && routed.includes(l.master))
      if (carries && !force) {
        throw new UserError(`${i} carries this machine's default route: bridging it would cut the machine off`, {
          code: 'IFACE_DEFAULT_ROUTE', suggestion: 'use two other interfaces, or --force if you know what you are doing',
        })
      }
    }
  }

  offloads(dev: string): Record<string, boolean> {
    const out: Record<string, boolean> = {}
    let text = ''
    try {
      text = this.exec('ethtool', ['-k', dev])
    } catch {
      return out
    }
    for (const k of OFFLOADS) {
      const m = new RegExp(`^${OFFLOAD_NAMES[k]}:\\s*(on|off)`, 'm').exec(text)
      if (m) out[k] = m[1] === 'on'
    }
    return out
  }

  setOffloads(dev: string, values: Record<string, boolean>): void {
    const args: string[] = ['-K', dev]
    for (const [k, v] of Object.entries(values)) args.push(k, v ? 'on' : 'off')
    if (args.length === 2) return
    try {
      this.exec('ethtool', args)
    } catch {
      // a feature that cannot change (fixed): nothing to undo either
    }
  }

  /** the interface's details, or null when there is none of that name */
  private tryLink(name: string): LinkInfo | null {
    try {
      return this.link(name)
    } catch {
      return null
    }
  }

  /**
   * bridge A and B (or reuse `bridge`), create each port's veth pair, offloads off; returns what
   * to undo. A failure halfway undoes what was done and rethrows.
   */
  setup(ifaces: readonly string[], bridge?: string): BridgeSetup {
    const infos = ifaces.map((name) => this.link(name))
    const ports: PortState[] = infos.map((l, i) => ({name: ifaces[i], wasUp: (l.flags ?? []).includes('UP'), master: l.master ?? null, offloads: this.offloads(ifaces[i])}))
    // the pairs' names must not be anything else on the host (a pair of ours left by a killed
    // run is replaced below)
    for (const p of ifaces) {
      const v = divertVeths(p)
      for (const [dev, peer] of [[v.kernel, v.engine], [v.engine, v.kernel]]) {
        const l = this.tryLink(dev)
        if (l && (l.linkinfo?.info_kind !== 'veth' || l.link !== peer)) {
          throw new UserError(`${dev} exists and is not patchpoint's (a veth paired with ${peer}); it is needed as the divert path of ${p}`, {suggestion: `rename or delete ${dev}`})
        }
      }
    }
    let name = bridge
    let created = false
    if (!name) {
      name = `pp${process.pid % 100000}br`
      this.exec('ip', ['link', 'add', name, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0'])
      created = true
    } else {
      const b = this.link(name)
      if (b.linkinfo?.info_kind !== 'bridge') throw new UserError(`--bridge ${name} is not a bridge`)
    }
    const done: BridgeSetup = {bridge: name, created, ports, veths: []}
    try {
      const off: Record<string, boolean> = {}
      for (const k of OFFLOADS) off[k] = false
      for (const p of ports) {
        this.setOffloads(p.name, off)
        if (p.master !== name) this.exec('ip', ['link', 'set', p.name, 'master', name])
        this.exec('ip', ['link', 'set', p.name, 'up'])
      }
      // frames of either port cross either pair (A's frames enter A's pair, leave through B's);
      // room for VLAN tags in the frames the engine sends (DIVERT_VLAN_HEADROOM)
      const mtu = Math.max(...infos.map((l) => l.mtu ?? 1500)) + DIVERT_VLAN_HEADROOM
      for (const p of ifaces) {
        const v = divertVeths(p)
        done.veths.push(v)
        this.addVeth(v, mtu, off)
      }
      this.exec('ip', ['link', 'set', name, 'up'])
    } catch (err) {
      this.teardown(done)
      throw err
    }
    return done
  }

  /**
   * One divert pair: MTU of the ports plus DIVERT_VLAN_HEADROOM, offloads off as on the ports, no IPv6 (no link-local
   * address, so neither end sends neighbour discovery: what the engine end sends leaves through
   * a port), both ends up. A pair of the same name (a killed run's) is replaced.
   */
  private addVeth(v: DivertVeth, mtu: number, off: Record<string, boolean>): void {
    if (this.tryLink(v.kernel)) this.exec('ip', ['link', 'del', v.kernel])
    if (this.tryLink(v.engine)) this.exec('ip', ['link', 'del', v.engine])
    this.exec('ip', ['link', 'add', v.kernel, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', v.engine, 'mtu', String(mtu)])
    for (const dev of [v.kernel, v.engine]) {
      try {
        this.exec('ip', ['link', 'set', 'dev', dev, 'addrgenmode', 'none'])
      } catch {
        // an old iproute2: disable_ipv6 below does it
      }
      try {
        // the slash form keeps a dot in an interface name
        this.exec('sysctl', ['-q', '-w', `net/ipv6/conf/${dev}/disable_ipv6=1`])
      } catch {
        // no IPv6 in this kernel, or /proc/sys read-only: addrgenmode none suffices
      }
      this.setOffloads(dev, off)
    }
    for (const dev of [v.kernel, v.engine]) this.exec('ip', ['link', 'set', dev, 'up'])
  }

  teardown(s: BridgeSetup): void {
    for (const v of s.veths) {
      try {
        this.exec('ip', ['link', 'del', v.kernel])
      } catch {
        // gone already (deleting one end deletes both)
      }
    }
    for (const p of s.ports) {
      const tryExec = (args: string[]) => {
        try {
          this.exec('ip', args)
        } catch {
          // gone already
        }
      }
      if (p.master === null) tryExec(['link', 'set', p.name, 'nomaster'])
      if (!p.wasUp) tryExec(['link', 'set', p.name, 'down'])
      const restore: Record<string, boolean> = {}
      for (const [k, v] of Object.entries(p.offloads)) if (v) restore[k] = true
      this.setOffloads(p.name, restore)
    }
    if (s.created) {
      try {
        this.exec('ip', ['link', 'del', s.bridge])
      } catch {
        // gone already
      }
    }
  }
}

export {EXIT}
