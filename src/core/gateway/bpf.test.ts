/**
 * The capture filter, run by the real libpcap: `tcpdump -r` reads a capture of crafted frames
 * through the filter, so the test checks which frames it selects, not just that it compiles.
 */
import {describe, it, expect} from 'vitest'
import {execFileSync} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {buildEthernet, buildIcmpEcho, buildIpv6, buildTcp, buildTcpPacket, buildUdpPacket, fragmentIpv4, fragmentIpv6} from '../packet/encode.js'
import {ACK, PSH, SYN} from '../packet/decode.js'
import {MATCH_NOTHING, MAX_FILTER_TERMS, captureFilter} from './bpf.js'
import {divertSets} from './nft.js'
import {writeFrames} from '../../../test/support/pcap.js'
import {hasCommand} from '../lab/netns.js'

const hasTcpdump = hasCommand('tcpdump')

const C6 = 'fd00:6::1'
const S6 = 'fd00:6::3'
const OTHER6 = 'fd00:6::9'
const C4 = '10.66.0.1'
const S4 = '10.66.0.3'
const body = new Uint8Array(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: () { :; }; /bin/cat /etc/passwd\r\n\r\n'))

const eth6 = (dg: Uint8Array) => buildEthernet({etherType: 0x86dd}, dg)
const eth4 = (dg: Uint8Array) => buildEthernet({etherType: 0x0800}, dg)
/** a TCP segment behind a Destination Options header (60), 8 bytes of PadN */
function tcpBehindDestOpts(src: string, dst: string, dport: number): Uint8Array {
  const seg = buildTcp({srcPort: 40000, dstPort: dport, flags: SYN}, new Uint8Array(0), src, dst)
  return eth6(buildIpv6({src, dst, nextHeader: 6, extHeaders: [{type: 60, body: new Uint8Array([1, 4, 0, 0, 0, 0])}]}, seg))
}

/** names of the frames the filter selects */
function selected(filter: string, frames: readonly [string, Uint8Array][]): string[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pp6-bpf-'))
  try {
    const file = path.join(dir, 'f.pcap')
    writeFrames(file, frames.map(([, f]) => f))
    const out = execFileSync('tcpdump', ['-tt', '-nn', '-r', file, filter], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})
    return out.split('\n').filter((l) => l.length > 0).map((l) => frames[Number(l.split('.')[0]) - 1][0])
  } finally {
    fs.rmSync(dir, {recursive: true, force: true})
  }
}

describe('captureFilter (text)', () => {
  it('no service: a filter that matches nothing', () => {
    expect(captureFilter(divertSets([]))).toBe(MATCH_NOTHING)
  })

  it('IPv6 tuples in both directions, extension-header frames by host, no IPv4 part for an IPv6-only policy', () => {
    const f = captureFilter(divertSets([{ip: 'FD00:6::3', port: 80, proto: 'tcp'}]))
    expect(f).toContain('(dst host fd00:6::3 and tcp dst port 80)')
    expect(f).toContain('(src host fd00:6::3 and tcp src port 80)')
    expect(f).toContain('ip6[6] != 6 and ip6[6] != 17 and ip6[6] != 58 and (host fd00:6::3)')
    expect(f).not.toMatch(/\(ip and|ip\[6:2\]/)
  })

  it('bounded: at most MAX_FILTER_TERMS terms however many services, host terms first, the rest reported', () => {
    const many = divertSets(Array.from({length: 1500}, (_, i) => ({ip: `fd00:6::${(i + 1).toString(16)}`, port: 80, proto: 'tcp' as const})))
    let omitted = 0
    const f = captureFilter(many, (n) => (omitted = n))
    const terms = (f.match(/host /g) ?? []).length
    expect(terms).toBe(MAX_FILTER_TERMS)
    // every host keeps its fragment term; 1500 hosts + 274 tuples x 2 directions fit
    expect((f.match(/\(host |or host /g) ?? []).length).toBe(1500)
    expect(omitted).toBe(1500 * 3 - MAX_FILTER_TERMS)
    let called = false
    captureFilter(divertSets([{ip: S6, port: 80, proto: 'tcp'}]), () => (called = true))
    expect(called).toBe(false)
  })
})

describe.skipIf(!hasTcpdump)('captureFilter run by libpcap (tcpdump -r)', () => {
  const policy = [
    {ip: S6, port: 80, proto: 'tcp' as const},
    {ip: S6, port: 53, proto: 'udp' as const},
    {ip: S4, port: 80, proto: 'tcp' as const},
  ]
  const v6req = buildTcpPacket({src: C6, dst: S6, srcPort: 40000, dstPort: 80, seq: 1, ack: 1, flags: PSH | ACK, payload: body})
  const v6frags = fragmentIpv6(v6req.subarray(14), 16, 0x51)
  const v4req = buildTcpPacket({src: C4, dst: S4, srcPort: 40000, dstPort: 80, seq: 1, ack: 1, flags: PSH | ACK, payload: body})
  const v4frags = fragmentIpv4(v4req.subarray(14), 16)
  const frames: [string, Uint8Array][] = [
    ['v6 to service', v6req],
    ['v6 from service', buildTcpPacket({src: S6, dst: C6, srcPort: 80, dstPort: 40000, flags: SYN | ACK})],
    ['v6 udp to service', buildUdpPacket({src: C6, dst: S6, srcPort: 5000, dstPort: 53, payload: new Uint8Array(12)})],
    ['v6 first fragment', eth6(v6frags[0])],
    ['v6 middle fragment', eth6(v6frags[2])],
    ['v6 last fragment', eth6(v6frags[v6frags.length - 1])],
    ['v6 fragment from protected host', eth6(fragmentIpv6(buildTcpPacket({src: S6, dst: C6, srcPort: 80, dstPort: 40000, payload: body}).subarray(14), 32)[1])],
    ['v6 tcp behind destination options', tcpBehindDestOpts(C6, S6, 80)],
    ['v6 tcp behind destination options, other port', tcpBehindDestOpts(C6, S6, 8080)],
    ['v4 to service', v4req],
    ['v4 later fragment', eth4(v4frags[2])],
    // not diverted
    ['v6 unprotected port', buildTcpPacket({src: C6, dst: S6, srcPort: 40000, dstPort: 8080, flags: SYN})],
    ['v6 unprotected udp port', buildUdpPacket({src: C6, dst: S6, srcPort: 5000, dstPort: 54})],
    ['v6 other host port 80', buildTcpPacket({src: C6, dst: OTHER6, srcPort: 40000, dstPort: 80, flags: SYN})],
    ['v6 fragment to other host', eth6(fragmentIpv6(buildTcpPacket({src: C6, dst: OTHER6, srcPort: 40000, dstPort: 80, payload: body}).subarray(14), 16)[1])],
    ['icmpv6 echo to protected host', eth6(buildIpv6({src: C6, dst: S6, nextHeader: 58}, buildIcmpEcho({id: 1, seq: 1}, new Uint8Array(8), C6, S6)))],
    ['v4 unprotected port', buildTcpPacket({src: C4, dst: S4, srcPort: 40000, dstPort: 8080, flags: SYN})],
    ['v4 port 80 of another host', buildTcpPacket({src: C4, dst: '10.66.0.9', srcPort: 40000, dstPort: 80, flags: SYN})],
  ]
  const diverted = frames.slice(0, 11).map(([n]) => n)

  it('selects exactly the frames nftables diverts (IPv4 and IPv6)', () => {
    expect(v6frags.length).toBeGreaterThan(3)
    expect(selected(captureFilter(divertSets(policy)), frames)).toEqual(diverted)
  })

  it('an IPv6-only policy selects only IPv6 frames', () => {
    const got = selected(captureFilter(divertSets(policy.filter((s) => s.ip.includes(':')))), frames)
    expect(got).toEqual(diverted.filter((n) => n.startsWith('v6')))
  })

  it('the no-service filter compiles and selects nothing', () => {
    expect(selected(MATCH_NOTHING, frames)).toEqual([])
  })
})
