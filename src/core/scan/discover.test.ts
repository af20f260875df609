import {describe, it, expect} from 'vitest'
import {PacketDecoder, SYN, ACK, RST} from '../packet/decode.js'
import {buildArp, buildEthernet, buildIcmpEcho, buildIpv4, buildTcpPacket} from '../packet/encode.js'
import {discover, discoveryTail, TAIL} from './discover.js'
import type {RawLink} from './raw.js'
import type {CommandRunner} from './route.js'

const ME = '10.0.0.2'
const MY_MAC = '02:00:00:00:00:02'

/**
 * A fake 10.0.0.0/24 segment answering asynchronously (after `delayMs`):
 * .5 answers ARP, ICMP echo and every TCP probe (22 open); .6 answers ARP only (firewalled);
 * .7 ignores its first ARP request (a lost packet) and answers the retry.
 */
class FakeSegment implements RawLink {
  handler: ((f: Uint8Array) => void) | null = null
  log: string[] = []
  private readonly dec = new PacketDecoder()
  private arp7 = 0
  constructor(private readonly delayMs = 1) {}
  onFrame(h: (f: Uint8Array) => void): void { this.handler = h }
  close(): void {}
  private later(f: Uint8Array): void {
    setTimeout(() => this.handler?.(f), this.delayMs)
  }
  send(frame: Uint8Array): void {
    const p = this.dec.decode(frame, 1)
    if (p.net === 'arp') {
      const t = p.arp.targetIp
      this.log.push(`arp ${t}`)
      if (t === '10.0.0.7' && this.arp7++ === 0) return
      if (t === '10.0.0.5' || t === '10.0.0.6' || t === '10.0.0.7') {
        const mac = `52:54:00:00:00:0${t.slice(-1)}`
        this.later(buildEthernet({src: mac, dst: p.srcMac, etherType: 0x0806}, buildArp({op: 2, senderMac: mac, senderIp: t, targetMac: p.srcMac, targetIp: ME})))
      }
      return
    }
    this.log.push(`${p.l4} ${p.dst}`)
    if (p.dst !== '10.0.0.5') return
    const mac = '52:54:00:00:00:05'
    if (p.l4 === 'icmp' && p.icmpType === 8) {
      const echo = buildIcmpEcho({id: p.icmpId, seq: 1, reply: true}, new Uint8Array(0))
      this.later(buildEthernet({src: mac, dst: p.srcMac, etherType: 0x0800}, buildIpv4({src: p.dst, dst: p.src, proto: 1, ttl: 64}, echo)))
    } else if (p.l4 === 'tcp') {
      const syn = p.hasFlag(SYN)
      const flags = syn ? (p.dstPort === 22 ? SYN | ACK : RST | ACK) : RST
      this.later(buildTcpPacket({src: p.dst, dst: p.src, srcMac: mac, dstMac: p.srcMac, srcPort: p.dstPort, dstPort: p.srcPort,
        seq: syn ? 777 : p.ack, ack: syn ? (p.seq + 1) >>> 0 : 0, flags, window: 64240, ttl: 64}))
    }
  }
}

const runner: CommandRunner = (_cmd, args) => {
  if (args[1] === 'route') return JSON.stringify([{dst: args[3], dev: 'eth0', prefsrc: ME, type: 'unicast'}])
  return JSON.stringify([{ifname: 'eth0', address: MY_MAC, mtu: 1500, flags: ['UP'], addr_info: [{family: 'inet', local: ME, prefixlen: 24}]}])
}

describe('discover (fake segment, no root)', () => {
  it('finds ARP-only and lost-ARP hosts, pipelines IP probes into the ARP sweep, and stops long before waitMs', async () => {
    const seg = new FakeSegment(1)
    const r = await discover({targets: ['10.0.0.0/24'], method: 'raw', rate: 20000, retries: 1, waitMs: 2000, ports: [22, 80], runCommand: runner, openLink: () => seg})
    expect(r.hosts.map((h) => h.ip)).toEqual(['10.0.0.5', '10.0.0.6', '10.0.0.7'])
    const h5 = r.hosts[0]
    expect(h5.found_by).toEqual(['arp', 'icmp', 'tcp-ack', 'tcp-syn'])
    expect(h5.open_ports).toEqual([22])
    expect(r.hosts[1].found_by).toEqual(['arp'])
    expect(r.hosts[2].mac).toBe('52:54:00:00:00:07')
    // adaptive waiting: two ARP rounds of 254 at 20k/s plus short tails, far below 2 x 2000 ms
    expect(r.elapsedMs).toBeLessThan(1000)
    // pipelined: the first IP probe to .5 left before the ARP sweep of round 1 was over
    const firstIp = seg.log.findIndex((l) => !l.startsWith('arp'))
    const lastArpRound0 = seg.log.indexOf('arp 10.0.0.254')
    expect(firstIp).toBeGreaterThan(0)
    expect(firstIp).toBeLessThan(lastArpRound0)
    // the retry round resent only unanswered ARPs (not .5/.6), and nothing outside the range
    expect(seg.log.filter((l) => l === 'arp 10.0.0.5')).toHaveLength(1)
    expect(seg.log.filter((l) => l === 'arp 10.0.0.7')).toHaveLength(2)
    expect(seg.log.filter((l) => l === 'arp 10.0.0.9')).toHaveLength(2)
    expect(seg.log.every((l) => /^(arp|icmp|tcp) 10\.0\.0\.(\d+)$/.test(l) && !/\.(0|255)$/.test(l))).toBe(true)
  })

  it('stops at once when every address answered everything', async () => {
    const seg = new FakeSegment(1)
    const r = await discover({targets: ['10.0.0.5/32'], method: 'raw', rate: 20000, retries: 3, waitMs: 5000, ports: [22, 80], runCommand: runner, openLink: () => seg})
    expect(r.hosts.map((h) => h.ip)).toEqual(['10.0.0.5'])
    expect(r.elapsedMs).toBeLessThan(TAIL.minMs + 200)
  })

  it('tail: from the measured RTT, bounded by waitMs; blind and routed cases', () => {
    expect(discoveryTail(1, 1000, null)).toBe(TAIL.minMs)
    expect(discoveryTail(50, 1000, null)).toBe(TAIL.rttFactor * 50 + TAIL.slackMs)
    expect(discoveryTail(900, 1000, null)).toBe(1000)
    expect(discoveryTail(0, 1000, null)).toBe(TAIL.blindMs)
    expect(discoveryTail(0, 100, null)).toBe(100)
    expect(discoveryTail(1, 1000, {answered: 0, rtt: 0})).toBe(1000)
    expect(discoveryTail(1, 1000, {answered: 3, rtt: 30})).toBe(TAIL.rttFactor * 30 + TAIL.slackMs)
  })
})

describe('attachedInterface (no `ip` command for on-link targets)', () => {
  it('picks the longest attached prefix, ignores loopback, null when routed', async () => {
    const {attachedInterface} = await import('./route.js')
    const a = (address: string, cidr: string, internal = false) => ({address, netmask: '', family: 'IPv4' as const, mac: '02:00:00:00:00:01', internal, cidr})
    const list = {lo: [a('127.0.0.1', '127.0.0.1/8', true)], eth0: [a('10.0.0.2', '10.0.0.2/16')], eth1: [a('10.0.5.1', '10.0.5.1/24'), a('10.0.5.9', '10.0.5.9/24')]}
    expect(attachedInterface('10.0.5.77', list)).toMatchObject({route: {dev: 'eth1', src: '10.0.5.1', onLink: true}, iface: {name: 'eth1', ipv4: [{address: '10.0.5.1', prefixlen: 24}, {address: '10.0.5.9', prefixlen: 24}]}})
    expect(attachedInterface('10.0.9.1', list)?.route.dev).toBe('eth0')
    expect(attachedInterface('127.0.0.5', list)).toBeNull()
    expect(attachedInterface('192.0.2.1', list)).toBeNull()
  })
})
