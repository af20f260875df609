import {describe, it, expect} from 'vitest'
import {UserError} from '../errors.js'
import {divertVeths, type Exec} from './nft.js'
import {DIVERT_VLAN_HEADROOM, HostNet} from './system.js'

interface FakeLink {
  kind?: string
  peer?: string
  up: boolean
  master?: string
  mtu: number
  offloads: Record<string, boolean>
}

/** a fake host: `ip` and `ethtool` over a table of links; every call is recorded */
function fakeHost(links: Record<string, FakeLink>, failOn?: (args: readonly string[]) => boolean) {
  const calls: string[] = []
  const exec: Exec = (cmd, args) => {
    calls.push(`${cmd} ${args.join(' ')}`)
    if (failOn?.(args)) throw new Error('RTNETLINK answers: Operation not permitted')
    if (cmd === 'ethtool') {
      const l = links[args[1]]
      if (!l) throw new Error('no such device')
      if (args[0] === '-k') {
        const names: Record<string, string> = {tx: 'tx-checksumming', tso: 'tcp-segmentation-offload', gso: 'generic-segmentation-offload', gro: 'generic-receive-offload'}
        return Object.entries(names).map(([k, n]) => `${n}: ${l.offloads[k] === false ? 'off' : 'on'}`).join('\n')
      }
      for (let i = 2; i + 1 < args.length; i += 2) l.offloads[args[i]] = args[i + 1] === 'on'
      return ''
    }
    if (args[0] === '-j' && args[1] === '-d') {
      const l = links[args[5]]
      if (!l) throw new Error('Device does not exist')
      return JSON.stringify([{ifname: args[5], mtu: l.mtu, flags: l.up ? ['UP'] : [], ...(l.master ? {master: l.master} : {}), ...(l.peer ? {link: l.peer} : {}), ...(l.kind ? {linkinfo: {info_kind: l.kind}} : {})}])
    }
    if (args[0] === '-j') return '[]'
    if (args[0] === 'link' && args[1] === 'add') {
      const mtu = args.includes('mtu') ? Number(args[args.indexOf('mtu') + 1]) : 1500
      const peer = args.includes('peer') ? args[args.indexOf('name') + 1] : undefined
      links[args[2]] = {kind: args.includes('veth') ? 'veth' : args.includes('bridge') ? 'bridge' : undefined, peer, up: false, mtu, offloads: {}}
      if (peer) links[peer] = {kind: 'veth', peer: args[2], up: false, mtu, offloads: {}}
      return ''
    }
    if (args[0] === 'link' && args[1] === 'del') {
      if (!links[args[2]]) throw new Error('Cannot find device')
      delete links[args[2]]
      // deleting one end of a pair deletes both
      const v = Object.values(divertVeths(args[2].replace(/-pp[ke]$/, ''))) as string[]
      if (v.includes(args[2])) for (const d of v) delete links[d]
      return ''
    }
    if (args[0] === 'link' && args[1] === 'set') {
      const dev = args[2] === 'dev' ? args[3] : args[2]
      const l = links[dev]
      if (!l) throw new Error('Cannot find device')
      if (args.includes('up')) l.up = true
      if (args.includes('down')) l.up = false
      if (args.includes('master')) l.master = args[args.indexOf('master') + 1]
      if (args.includes('nomaster')) delete l.master
      return ''
    }
    return ''
  }
  return {exec, calls, links}
}

const port = (mtu = 1500): FakeLink => ({up: false, mtu, offloads: {tx: true, tso: true, gso: true, gro: true}})

describe('HostNet: bridge and divert veth pairs', () => {
  it('creates one pair per port (ports MTU plus VLAN headroom, offloads off, up), and teardown leaves the host as found', () => {
    const links: Record<string, FakeLink> = {ga: port(1500), gb: port(9000)}
    const before = JSON.parse(JSON.stringify(links)) as Record<string, FakeLink>
    const h = fakeHost(links)
    const host = new HostNet(h.exec)
    const s = host.setup(['ga', 'gb'])
    expect(s.veths).toEqual([divertVeths('ga'), divertVeths('gb')])
    for (const v of s.veths) {
      for (const dev of [v.kernel, v.engine]) {
        expect(links[dev], dev).toBeDefined()
        expect(links[dev].kind).toBe('veth')
        expect(links[dev].up).toBe(true)
        // the largest port MTU: frames of either port cross either pair, with their VLAN tags
        expect(links[dev].mtu).toBe(9000 + DIVERT_VLAN_HEADROOM)
        expect(links[dev].offloads).toEqual({tx: false, tso: false, gso: false, gro: false})
        expect(h.calls).toContain(`ip link set dev ${dev} addrgenmode none`)
        expect(h.calls).toContain(`sysctl -q -w net/ipv6/conf/${dev}/disable_ipv6=1`)
      }
      // the pairs are not bridge ports
      expect(links[v.kernel].master).toBeUndefined()
    }
    expect(links.ga.master).toBe(s.bridge)
    expect(links.ga.offloads.gro).toBe(false)
    host.teardown(s)
    expect(links).toEqual(before)
  })

  it('replaces a pair left by a killed run; refuses a name taken by something else', () => {
    const v = divertVeths('ga')
    const links: Record<string, FakeLink> = {ga: port(), gb: port(), [v.kernel]: {kind: 'veth', peer: v.engine, up: true, mtu: 1500, offloads: {}}, [v.engine]: {kind: 'veth', peer: v.kernel, up: true, mtu: 1500, offloads: {}}}
    const h = fakeHost(links)
    const s = new HostNet(h.exec).setup(['ga', 'gb'])
    const del = h.calls.indexOf(`ip link del ${v.kernel}`)
    const add = h.calls.findIndex((c) => c.startsWith(`ip link add ${v.kernel} `))
    expect(del).toBeGreaterThanOrEqual(0)
    expect(add).toBeGreaterThan(del)
    expect(s.veths.length).toBe(2)

    // not a veth, or a veth paired with something else: refused before anything changed
    const g = divertVeths('gb')
    for (const taken of [
      {ga: port(), gb: port(), [g.engine]: {kind: 'dummy', up: true, mtu: 1500, offloads: {}}},
      {ga: port(), gb: port(), [g.kernel]: {kind: 'veth', peer: 'vethother', up: true, mtu: 1500, offloads: {}}, vethother: {kind: 'veth', peer: g.kernel, up: true, mtu: 1500, offloads: {}}},
    ] as Record<string, FakeLink>[]) {
      const h2 = fakeHost(taken)
      expect(() => new HostNet(h2.exec).setup(['ga', 'gb'])).toThrow(UserError)
      expect(h2.calls.filter((c) => / link (add|set|del) /.test(c))).toEqual([])
    }
  })

  it('a failure halfway undoes what was done and rethrows', () => {
    const links: Record<string, FakeLink> = {ga: port(), gb: port()}
    const before = JSON.parse(JSON.stringify(links)) as Record<string, FakeLink>
    const gbPair = divertVeths('gb').kernel
    const h = fakeHost(links, (args) => args[0] === 'link' && args[1] === 'add' && args[2] === gbPair)
    expect(() => new HostNet(h.exec).setup(['ga', 'gb'])).toThrow(/not permitted/)
    // the bridge and ga's pair are gone again, the ports restored
    expect(links).toEqual(before)
  })
})
