import {existsSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'
import type {AnomalyReport} from '../events/anomaly.js'
import {
  ACK, CWR, DECODE_ANOMALIES, ECE, FIN, PSH, PacketDecoder, RST, SYN, URG, ipv4HeaderChecksumOk,
  l4ChecksumOk, type DecodedPacket,
} from './decode.js'
import {
  buildEthernet, buildIcmpEcho, buildIpv4, buildIpv6, buildTcp, buildTcpPacket, buildUdp,
  buildUdpPacket, ipv6FragmentHeader,
} from './encode.js'
import {LINKTYPE} from './linktype.js'
import {hexDump, parseCapture, readCorpusFile} from './pcap-fixture.js'

const CORPUS = fileURLToPath(new URL('../../../../shared/corpus/pcaps/', import.meta.url))
const haveCorpus = existsSync(CORPUS)
const te = new TextEncoder()

/** every anomaly code emitted must be a documented one */
function expectKnownCodes(p: DecodedPacket): void {
  for (const a of p.anomalies) expect(DECODE_ANOMALIES as readonly string[]).toContain(a)
}

describe('TCP flag constants', () => {
  it('match RFC 9293 / RFC 3168 bit positions', () => {
    expect([FIN, SYN, RST, PSH, ACK, URG, ECE, CWR]).toEqual([1, 2, 4, 8, 16, 32, 64, 128])
  })
})

describe('known frames (tcpdump -XX fixtures)', () => {
  const dec = new PacketDecoder()

  it('Ethernet + 802.1Q + IPv4 + TCP SYN with options', () => {
    // benign_oracle_tns_connect.pcap frame 1, `tcpdump -nnr FILE -XX -v -c 1`:
    // IP (tos 0x0, ttl 63, id 40170, offset 0, flags [DF], proto TCP (6), length 64, bad cksum 5226 (->8aad)!)
    //   10.0.0.16.64084 > 10.0.0.17.1522: Flags [S], cksum 0x3ede (incorrect -> 0x7765), seq 22249217,
    //   win 65535, options [mss 1360,nop,wscale 5,nop,nop,TS val 473829122 ecr 0,sackOK,eol], length 0
    const f = hexDump(`
	0x0000:  0000 5e00 0101 001b 1700 1430 8100 012c  ..^........0...,
	0x0010:  0800 4500 0040 9cea 4000 3f06 5226 0a00  ..E..@..@.?.R&..
	0x0020:  0010 0a00 0011 fa54 05f2 0153 7f01 0000  .......T...S....
	0x0030:  0000 b002 ffff 3ede 0000 0204 0550 0103  ......>......P..
	0x0040:  0305 0101 080a 1c3e 0f02 0000 0000 0402  .......>........
	0x0050:  0000                                     ..`)
    expect(f.length).toBe(82)
    const p = dec.decode(f, LINKTYPE.ETHERNET)
    expect(p.vlanIds).toEqual([300])
    expect(p.dstMac).toBe('00:00:5e:00:01:01')
    expect(p.srcMac).toBe('00:1b:17:00:14:30')
    expect(p.etherType).toBe(0x0800)
    expect(p.net).toBe('ipv4')
    expect(p.ipOffset).toBe(18)
    expect(p.src).toBe('10.0.0.16')
    expect(p.dst).toBe('10.0.0.17')
    expect(Array.from(p.srcAddr)).toEqual([10, 0, 0, 16])
    expect(p.ttl).toBe(63)
    expect(p.fragId).toBe(40170)
    expect(p.dontFragment).toBe(true)
    expect(p.isFragment).toBe(false)
    expect(p.l4).toBe('tcp')
    expect([p.srcPort, p.dstPort]).toEqual([64084, 1522])
    expect(p.seq).toBe(22249217)
    expect(p.ack).toBe(0)
    expect(p.tcpFlags).toBe(SYN)
    expect(p.window).toBe(65535)
    expect(p.l4HeaderLength).toBe(44)
    expect(p.mss).toBe(1360)
    expect(p.windowScale).toBe(5)
    expect(p.hasTimestamp).toBe(true)
    expect(p.tsVal).toBe(473829122)
    expect(p.tsEcr).toBe(0)
    expect(p.sackPermitted).toBe(true)
    expect(p.payloadLength).toBe(0)
    expect(p.truncated).toBe(false)
    expect(p.anomalies).toEqual([])
    // tcpdump says both checksums are wrong in this capture
    expect(ipv4HeaderChecksumOk(p)).toBe(false)
    expect(l4ChecksumOk(p)).toBe(false)
  })

  it('Linux cooked v1 + IPv4 + TCP SYN', () => {
    // benign_smb1_negotiate_linux_sll.pcap frame 1:
    // Out 00:30:2b:d9:38:4c 192.168.1.100.41688 > 192.168.1.3.445: Flags [S], seq 3760763994, win 29200,
    //   options [mss 1460,sackOK,TS val 929481094 ecr 0,nop,wscale 7], length 0
    const f = hexDump(`
	0x0000:  0004 0001 0006 0030 2bd9 384c 0000 0800  .......0+.8L....
	0x0010:  4500 003c c526 4000 4006 f1dd c0a8 0164  E..<.&@.@......d
	0x0020:  c0a8 0103 a2d8 01bd e028 b45a 0000 0000  .........(.Z....
	0x0030:  a002 7210 83e6 0000 0204 05b4 0402 080a  ..r.............
	0x0040:  3766 c186 0000 0000 0103 0307            7f..........`)
    const p = dec.decode(f, LINKTYPE.LINUX_SLL)
    expect(p.sllPacketType).toBe(4)
    expect(p.srcMac).toBe('00:30:2b:d9:38:4c')
    expect(p.networkOffset).toBe(16)
    expect(p.src).toBe('192.168.1.100')
    expect(p.dst).toBe('192.168.1.3')
    expect([p.srcPort, p.dstPort, p.seq, p.window]).toEqual([41688, 445, 3760763994, 29200])
    expect([p.mss, p.windowScale, p.tsVal]).toEqual([1460, 7, 929481094])
    expect(p.sackPermitted).toBe(true)
    expect(ipv4HeaderChecksumOk(p)).toBe(true)
    expect(p.anomalies).toEqual([])
  })

  it('BSD loopback (DLT_NULL, little-endian family 2) + IPv4 + TCP', () => {
    // benign_ftp_anonymous_dlt_null.pcap frame 1:
    // AF IPv4 (2), length 52: 127.0.0.1.62014 > 127.0.0.1.21: Flags [S], seq 268435456, win 65535,
    //   options [mss 65535,nop,wscale 7], length 0
    const f = hexDump(`
	0x0000:  0200 0000 4500 0030 0000 4000 4006 0000  ....E..0..@.@...
	0x0010:  7f00 0001 7f00 0001 f23e 0015 1000 0000  .........>......
	0x0020:  0000 0000 7002 ffff 0000 0000 0204 ffff  ....p...........
	0x0030:  0103 0307                                ....`)
    const p = dec.decode(f, LINKTYPE.NULL)
    expect(p.loopbackFamily).toBe(2)
    expect(p.src).toBe('127.0.0.1')
    expect([p.srcPort, p.dstPort, p.seq, p.mss, p.windowScale]).toEqual([62014, 21, 268435456, 65535, 7])
    expect(ipv4HeaderChecksumOk(p)).toBe(false) // checksum field is 0000 in the capture
  })

  it('Ethernet + IPv6 + UDP', () => {
    // benign_http_wikipedia_browsing.pcap: IP6 (hlim 1, next-header UDP (17) payload length: 41)
    //   fe80::3074:17d5:2052:c324.65373 > ff02::1:3.5355: [udp sum ok] UDP, length 33
    const f = hexDump(`
	0x0000:  3333 0001 0003 f04d a247 ba25 86dd 6000  33.....M.G.%..\`.
	0x0010:  0000 0029 1101 fe80 0000 0000 0000 3074  ...)..........0t
	0x0020:  17d5 2052 c324 ff02 0000 0000 0000 0000  ...R.$..........
	0x0030:  0000 0001 0003 ff5d 14eb 0029 c5e9 4620  .......]...)..F.
	0x0040:  0000 0001 0000 0000 0000 0f42 5257 4330  ...........BRWC0
	0x0050:  4342 3338 3344 3146 3432 0000 0100 01    CB383D1F42.....`)
    const p = dec.decode(f, LINKTYPE.ETHERNET)
    expect(p.ipVersion).toBe(6)
    expect(p.src).toBe('fe80::3074:17d5:2052:c324')
    expect(p.dst).toBe('ff02::1:3')
    expect(p.ttl).toBe(1)
    expect(p.l4).toBe('udp')
    expect([p.srcPort, p.dstPort, p.udpLength, p.payloadLength]).toEqual([65373, 5355, 41, 33])
    expect(p.payload[0]).toBe(0x46)
    expect(l4ChecksumOk(p)).toBe(true)
    expect(p.anomalies).toEqual([])
  })

  it('ARP request in a padded Ethernet frame', () => {
    // benign_http_wikipedia_browsing.pcap: ARP, Request who-has 141.142.220.26 tell 141.142.220.1, length 46
    const f = hexDump(`
	0x0000:  ffff ffff ffff 0013 7fbe 8cff 0806 0001  ................
	0x0010:  0800 0604 0001 0013 7fbe 8cff 8d8e dc01  ................
	0x0020:  0000 0000 0000 8d8e dc1a 0000 0000 0000  ................
	0x0030:  0000 0000 0000 0000 0000 0000            ............`)
    const p = dec.decode(f, LINKTYPE.ETHERNET)
    expect(p.net).toBe('arp')
    expect(p.arp.op).toBe(1)
    expect(p.arp.senderMac).toBe('00:13:7f:be:8c:ff')
    expect(p.arp.senderIp).toBe('141.142.220.1')
    expect(p.arp.targetMac).toBe('00:00:00:00:00:00')
    expect(p.arp.targetIp).toBe('141.142.220.26')
    expect(p.ipVersion).toBe(0)
    expect(p.src).toBe('')
    expect(p.truncated).toBe(false)
  })

  it('raw IPv4 (LINKTYPE_IPV4) + TCP', () => {
    // http_smuggling_te_cl_desync.pcap frame 1: IP 192.168.1.100.40004 > 192.168.1.200.80: Flags [S], seq 1000, win 8192
    const f = hexDump(`
	0x0000:  4500 0028 0001 0000 4006 f652 c0a8 0164  E..(....@..R...d
	0x0010:  c0a8 01c8 9c44 0050 0000 03e8 0000 0000  .....D.P........
	0x0020:  5002 2000 6ae9 0000                      P...j...`)
    for (const lt of [LINKTYPE.IPV4, LINKTYPE.RAW]) {
      const p = dec.decode(f, lt)
      expect(p.src).toBe('192.168.1.100')
      expect(p.dst).toBe('192.168.1.200')
      expect([p.srcPort, p.dstPort, p.seq, p.tcpFlags, p.window]).toEqual([40004, 80, 1000, SYN, 8192])
      expect(ipv4HeaderChecksumOk(p)).toBe(true)
      expect(l4ChecksumOk(p)).toBe(true)
    }
    // the same bytes are not IPv6
    const p6 = dec.decode(f, LINKTYPE.IPV6)
    expect(p6.anomalies).toContain('ipv6.bad_version')
    expect(p6.ipVersion).toBe(0)
    expect(dec.decodeIp(f).seq).toBe(1000)
  })
})

describe('truncation at every byte', () => {
  const dec = new PacketDecoder()
  const src6 = '2001:db8::1'
  const dst6 = '2001:db8::2'
  const frames: [string, Uint8Array, number][] = [
    ['eth+vlan+ipv4+tcp+options', buildTcpPacket({
      src: '10.1.2.3', dst: '10.3.2.1', srcPort: 1234, dstPort: 80, seq: 7, flags: SYN | ACK, vlan: [5, 6],
      options: {mss: 1400, windowScale: 7, sackPermitted: true, timestamp: [1, 2], sack: [[1, 2]]},
      payload: te.encode('hello'),
    }), LINKTYPE.ETHERNET],
    ['eth+ipv6+hbh+dst+udp', buildEthernet({etherType: 0x86dd}, buildIpv6({
      src: src6, dst: dst6, nextHeader: 17, extHeaders: [{type: 0, body: new Uint8Array(6)}, {type: 60, body: new Uint8Array(14)}],
    }, buildUdp({srcPort: 53, dstPort: 5353}, te.encode('q'), src6, dst6))), LINKTYPE.ETHERNET],
    ['raw ipv4 icmp', buildIpv4({src: '1.2.3.4', dst: '5.6.7.8', proto: 1}, buildIcmpEcho({id: 1, seq: 2}, te.encode('ping'))), LINKTYPE.RAW],
    ['null ipv6 tcp', concat(new Uint8Array([30, 0, 0, 0]), buildIpv6({src: src6, dst: dst6, nextHeader: 6},
      buildTcp({srcPort: 1, dstPort: 2, flags: ACK}, te.encode('x'), src6, dst6))), LINKTYPE.NULL],
    ['sll2 ipv4 udp', concat(sll2Header(0x0800), buildIpv4({src: '1.1.1.1', dst: '2.2.2.2', proto: 17},
      buildUdp({srcPort: 9, dstPort: 10}, te.encode('abc'), '1.1.1.1', '2.2.2.2'))), LINKTYPE.LINUX_SLL2],
  ]
  for (const [name, frame, lt] of frames) {
    it(name, () => {
      const full = dec.decode(frame, lt)
      expect(full.truncated).toBe(false)
      expect(full.anomalies).toEqual([])
      expect(full.l4).not.toBe('none')
      const fullL4 = full.l4
      for (let n = 0; n < frame.length; n++) {
        const p = dec.decode(frame.subarray(0, n), lt)
        expect(p.truncated, `${name} cut at ${n}`).toBe(true)
        expect(p.anomalies.length).toBeGreaterThan(0)
        expectKnownCodes(p)
        expect(p.payloadOffset + p.payloadLength).toBeLessThanOrEqual(n)
        if (p.l4 !== 'none') expect(p.l4).toBe(fullL4)
      }
    })
  }
})

describe('link layers', () => {
  const dec = new PacketDecoder()
  const dg = buildIpv4({src: '9.9.9.9', dst: '8.8.8.8', proto: 17}, buildUdp({srcPort: 1, dstPort: 2}, new Uint8Array(4), '9.9.9.9', '8.8.8.8'))
  const dg6 = buildIpv6({src: '::1', dst: '::2', nextHeader: 59}, new Uint8Array(0))

  it('loopback families in both byte orders (NULL and LOOP)', () => {
    for (const lt of [LINKTYPE.NULL, LINKTYPE.LOOP]) {
      expect(dec.decode(concat(new Uint8Array([0, 0, 0, 2]), dg), lt).src).toBe('9.9.9.9')
      expect(dec.decode(concat(new Uint8Array([2, 0, 0, 0]), dg), lt).src).toBe('9.9.9.9')
      for (const fam of [24, 28, 30]) {
        expect(dec.decode(concat(new Uint8Array([fam, 0, 0, 0]), dg6), lt).dst).toBe('::2')
        expect(dec.decode(concat(new Uint8Array([0, 0, 0, fam]), dg6), lt).dst).toBe('::2')
      }
      const p = dec.decode(concat(new Uint8Array([7, 0, 0, 0]), dg), lt)
      expect(p.anomalies).toEqual(['link.unknown_family'])
      expect(p.ipVersion).toBe(0)
    }
  })

  it('Linux cooked v1 and v2 carry the ethertype; SLL v2 packet type', () => {
    const sll = new Uint8Array(16)
    sll[1] = 0 // to us
    sll[3] = 1
    sll[5] = 6
    sll[14] = 0x08
    const p = dec.decode(concat(sll, dg), LINKTYPE.LINUX_SLL)
    expect(p.sllPacketType).toBe(0)
    expect(p.dst).toBe('8.8.8.8')
    const p2 = dec.decode(concat(sll2Header(0x86dd, 3), dg6), LINKTYPE.LINUX_SLL2)
    expect(p2.sllPacketType).toBe(3)
    expect(p2.srcMac).toBe('02:00:00:00:00:01')
    expect(p2.ipVersion).toBe(6)
    expect(p2.proto).toBe(59)
  })

  it('raw IP: the version nibble decides, a wrong one is flagged', () => {
    expect(dec.decode(dg6, LINKTYPE.RAW).ipVersion).toBe(6)
    expect(dec.decode(dg, LINKTYPE.RAW).ipVersion).toBe(4)
    const bad = dg.slice()
    bad[0] = 0x55
    expect(dec.decode(bad, LINKTYPE.RAW).anomalies).toEqual(['ip.bad_version'])
    expect(dec.decode(dg, LINKTYPE.IPV6).anomalies).toEqual(['ipv6.bad_version'])
    expect(dec.decode(new Uint8Array(0), LINKTYPE.RAW).truncated).toBe(true)
  })

  it('VLAN stacks of 802.1Q, 802.1ad and 0x9100 up to the limit', () => {
    for (const tpid of [0x8100, 0x88a8, 0x9100]) {
      const p = dec.decode(buildEthernet({etherType: 0x0800, vlan: [1, 2, 3, 4], vlanTpid: tpid}, dg), LINKTYPE.ETHERNET)
      expect(p.vlanIds).toEqual([1, 2, 3, 4])
      expect(p.src).toBe('9.9.9.9')
    }
    const reports: AnomalyReport[] = []
    const d2 = new PacketDecoder({onAnomaly: (r) => reports.push(r)})
    const p = d2.decode(buildEthernet({etherType: 0x0800, vlan: [1, 2, 3, 4, 5]}, dg), LINKTYPE.ETHERNET)
    expect(p.anomalies).toEqual(['vlan.too_many_tags'])
    expect(p.vlanIds).toEqual([1, 2, 3, 4])
    expect(p.ipVersion).toBe(0)
    expect(reports).toEqual([{type: 'limit', event: 'vlan.too_many_tags'}])
    const d3 = new PacketDecoder({maxVlanTags: 1})
    expect(d3.decode(buildEthernet({etherType: 0x0800, vlan: [1, 2]}, dg), LINKTYPE.ETHERNET).anomalies).toEqual(['vlan.too_many_tags'])
  })

  it('unknown ethertype and 802.3/LLC frames', () => {
    const p = dec.decode(buildEthernet({etherType: 0x88cc}, new Uint8Array(30)), LINKTYPE.ETHERNET)
    expect(p.net).toBe('other')
    expect(p.anomalies).toEqual(['link.unknown_ethertype'])
    expect(p.payloadOffset).toBe(14)
    const llc = dec.decode(buildEthernet({etherType: 39}, new Uint8Array(39)), LINKTYPE.ETHERNET)
    expect(llc.net).toBe('other')
    expect(llc.anomalies).toEqual([])
  })

  it('unsupported link type is an anomaly, not an exception', () => {
    const p = dec.decode(dg, 9999)
    expect(p.anomalies).toEqual(['link.unsupported_linktype'])
  })
})

describe('IPv4', () => {
  const dec = new PacketDecoder()
  const seg = buildTcp({srcPort: 1, dstPort: 2, flags: ACK | PSH}, te.encode('data'), '1.0.0.1', '1.0.0.2')

  it('Ethernet padding after total length is excluded from the payload', () => {
    const f = buildEthernet({etherType: 0x0800, pad: true},
      buildIpv4({src: '1.0.0.1', dst: '1.0.0.2', proto: 6}, buildTcp({srcPort: 1, dstPort: 2}, te.encode('ab'), '1.0.0.1', '1.0.0.2')))
    expect(f.length).toBe(60)
    const p = dec.decode(f, LINKTYPE.ETHERNET)
    expect(p.ipEnd).toBe(14 + 42)
    expect(p.payloadLength).toBe(2)
    expect(Array.from(p.payload)).toEqual([97, 98])
    expect(l4ChecksumOk(p)).toBe(true)
  })

  it('options are skipped via IHL', () => {
    const opts = new Uint8Array([0x94, 0x04, 0, 0, 0x01]) // router alert + NOP, padded to 8
    const p = dec.decodeIp(buildIpv4({src: '1.0.0.1', dst: '1.0.0.2', proto: 6, options: opts}, seg))
    expect(p.ipHeaderLength).toBe(28)
    expect(p.l4Offset).toBe(28)
    expect(p.srcPort).toBe(1)
    expect(Array.from(p.payload)).toEqual(Array.from(te.encode('data')))
    expect(ipv4HeaderChecksumOk(p)).toBe(true)
  })

  it('bad header length, bad total length and truncation are flagged', () => {
    const ihl4 = dec.decodeIp(buildIpv4({src: '1.0.0.1', dst: '1.0.0.2', proto: 6, ihl: 4}, seg))
    expect(ihl4.anomalies).toEqual(['ipv4.bad_header_length'])
    expect(ihl4.l4).toBe('none')
    expect(ihl4.src).toBe('1.0.0.1') // addresses are still readable for the event

    const ihlPast = buildIpv4({src: '1.0.0.1', dst: '1.0.0.2', proto: 6, ihl: 15}, new Uint8Array(10))
    const p2 = dec.decodeIp(ihlPast)
    expect(p2.anomalies).toEqual(['ipv4.truncated'])
    expect(p2.truncated).toBe(true)

    const tl = dec.decodeIp(buildIpv4({src: '1.0.0.1', dst: '1.0.0.2', proto: 6, totalLength: 12}, seg))
    expect(tl.anomalies).toEqual(['ipv4.bad_total_length'])
    expect(tl.l4).toBe('none')

    const long = dec.decodeIp(buildIpv4({src: '1.0.0.1', dst: '1.0.0.2', proto: 6, totalLength: 200}, seg))
    expect(long.truncated).toBe(true)
    expect(long.anomalies).toEqual(['ipv4.truncated'])
    expect(long.payloadLength).toBe(4) // what is there is still decoded
    expect(l4ChecksumOk(long)).toBe(null)
  })

  it('fragments expose id, offset, MF, DF, header and data views', () => {
    const data = new Uint8Array(64).map((_, i) => i)
    const first = dec.decodeIp(buildIpv4({src: '1.0.0.1', dst: '1.0.0.2', proto: 6, id: 777, mf: true}, concat(seg.subarray(0, 20), data.subarray(0, 20))))
    expect(first.isFragment).toBe(true)
    expect(first.moreFragments).toBe(true)
    expect(first.fragOffset).toBe(0)
    expect(first.fragId).toBe(777)
    expect(first.l4).toBe('tcp') // header fits in the offset-0 fragment
    expect(first.srcPort).toBe(1)
    expect(first.fragDataOffset).toBe(20)
    expect(first.fragDataLength).toBe(40)
    expect(l4ChecksumOk(first)).toBe(null)

    const later = dec.decodeIp(buildIpv4({src: '1.0.0.1', dst: '1.0.0.2', proto: 6, id: 777, fragOffset: 40, df: false, options: new Uint8Array([0x94, 4, 0, 0])}, data))
    expect(later.isFragment).toBe(true)
    expect(later.moreFragments).toBe(false)
    expect(later.fragOffset).toBe(40)
    expect(later.l4).toBe('none')
    expect(later.proto).toBe(6)
    expect(later.ipHeader.length).toBe(24)
    expect(later.ipHeader[20]).toBe(0x94)
    expect(Array.from(later.fragData)).toEqual(Array.from(data))
    expect(later.payloadLength).toBe(64)
    expect(later.prevNextHeaderOffset).toBe(-1)
    expect(later.unfragmentableLength).toBe(24)

    const tiny = dec.decodeIp(buildIpv4({src: '1.0.0.1', dst: '1.0.0.2', proto: 6, mf: true}, seg.subarray(0, 8)))
    expect(tiny.truncated).toBe(false)
    expect(tiny.l4).toBe('none')
    expect(tiny.anomalies).toEqual(['ipv4.frag_l4_header_split'])

    const big = dec.decodeIp(buildIpv4({src: '1.0.0.1', dst: '1.0.0.2', proto: 17, fragOffset: 65528}, new Uint8Array(16)))
    expect(big.anomalies).toEqual(['ipv4.frag_too_large'])
  })
})

describe('IPv6 extension headers and fragments', () => {
  const dec = new PacketDecoder()
  const s = '2001:db8::a'
  const d = '2001:db8::b'
  const udp = buildUdp({srcPort: 7, dstPort: 8}, te.encode('payload!'), s, d)

  it('walks hop-by-hop, routing, destination options and AH to the upper layer', () => {
    const f = buildIpv6({src: s, dst: d, nextHeader: 17, extHeaders: [
      {type: 0, body: new Uint8Array(6)}, {type: 43, body: new Uint8Array(14)}, {type: 60, body: new Uint8Array(6)},
      {type: 51, body: new Uint8Array(14)},
    ]}, udp)
    const p = dec.decodeIp(f)
    expect(p.ipv6ExtHeaderCount).toBe(4)
    expect(p.ipHeaderLength).toBe(40 + 8 + 16 + 8 + 16)
    expect(p.proto).toBe(17)
    expect(p.l4).toBe('udp')
    expect(p.srcPort).toBe(7)
    expect(te.encode('payload!')).toEqual(p.payload.slice())
    expect(l4ChecksumOk(p)).toBe(true)
    expect(p.anomalies).toEqual([])
  })

  it('fragment header fields for the defragmenter', () => {
    const f = buildIpv6({src: s, dst: d, nextHeader: 17, extHeaders: [
      {type: 0, body: new Uint8Array(6)}, ipv6FragmentHeader(0, true, 0xdeadbeef),
    ]}, udp)
    const p = dec.decodeIp(f)
    expect(p.hasFragmentHeader).toBe(true)
    expect(p.isFragment).toBe(true)
    expect(p.fragId).toBe(0xdeadbeef)
    expect(p.fragOffset).toBe(0)
    expect(p.moreFragments).toBe(true)
    expect(p.fragNextHeader).toBe(17)
    expect(p.unfragmentableLength).toBe(48)
    expect(p.prevNextHeaderOffset).toBe(40) // the hop-by-hop header's next-header byte
    expect(f[p.ipOffset + p.prevNextHeaderOffset]).toBe(44)
    expect(p.fragDataOffset).toBe(56)
    expect(p.fragDataLength).toBe(udp.length)
    expect(p.ipHeader.length).toBe(48)
    expect(p.l4).toBe('udp') // offset 0 and the header fits
    expect(p.srcPort).toBe(7)

    const later = dec.decodeIp(buildIpv6({src: s, dst: d, nextHeader: 6, extHeaders: [ipv6FragmentHeader(1232, false, 5)]}, new Uint8Array(24)))
    expect(later.isFragment).toBe(true)
    expect(later.fragOffset).toBe(1232)
    expect(later.moreFragments).toBe(false)
    expect(later.prevNextHeaderOffset).toBe(6)
    expect(later.unfragmentableLength).toBe(40)
    expect(later.fragNextHeader).toBe(6)
    expect(later.proto).toBe(6)
    expect(later.l4).toBe('none')
    expect(later.fragData.length).toBe(24)
  })

  it('an atomic fragment (offset 0, M=0) is decoded as a whole packet', () => {
    const p = dec.decodeIp(buildIpv6({src: s, dst: d, nextHeader: 17, extHeaders: [ipv6FragmentHeader(0, false, 1)]}, udp))
    expect(p.hasFragmentHeader).toBe(true)
    expect(p.isFragment).toBe(false)
    expect(p.l4).toBe('udp')
    expect(l4ChecksumOk(p)).toBe(true)
  })

  it('limits and ordering anomalies', () => {
    const nine = Array.from({length: 9}, () => ({type: 60, body: new Uint8Array(6)}))
    const p = dec.decodeIp(buildIpv6({src: s, dst: d, nextHeader: 17, extHeaders: nine}, udp))
    expect(p.anomalies).toEqual(['ipv6.too_many_ext_headers'])
    expect(p.ipv6ExtHeaderCount).toBe(8)
    expect(p.l4).toBe('none')

    const late = dec.decodeIp(buildIpv6({src: s, dst: d, nextHeader: 17, extHeaders: [{type: 60}, {type: 0}]}, udp))
    expect(late.anomalies).toEqual(['ipv6.hopopts_not_first'])
    expect(late.l4).toBe('udp')

    const two = dec.decodeIp(buildIpv6({src: s, dst: d, nextHeader: 17, extHeaders: [ipv6FragmentHeader(0, true, 1), ipv6FragmentHeader(0, true, 2)]}, udp))
    expect(two.anomalies).toEqual(['ipv6.multiple_fragment_headers'])

    const ext = buildIpv6({src: s, dst: d, nextHeader: 17, extHeaders: [{type: 60, body: new Uint8Array(6)}]}, udp)
    ext[41] = 200 // header claims 1608 bytes
    const bad = dec.decodeIp(ext)
    expect(bad.truncated).toBe(true)
    expect(bad.anomalies).toEqual(['ipv6.truncated'])
  })

  it('payload length past the data is truncation', () => {
    const p = dec.decodeIp(buildIpv6({src: s, dst: d, nextHeader: 17, payloadLength: 500}, udp))
    expect(p.truncated).toBe(true)
    expect(p.anomalies[0]).toBe('ipv6.truncated')
  })
})

describe('TCP, UDP and ICMP details', () => {
  const dec = new PacketDecoder()
  const a = '192.0.2.1'
  const b = '192.0.2.2'

  it('reads seq/ack as unsigned 32-bit and all flag bits', () => {
    const p = dec.decode(buildTcpPacket({src: a, dst: b, srcPort: 65535, dstPort: 1, seq: 0xffffffff, ack: 0x80000000,
      flags: 0xff, window: 1, urgent: 0xabcd}), LINKTYPE.ETHERNET)
    expect(p.seq).toBe(4294967295)
    expect(p.ack).toBe(2147483648)
    expect(p.tcpFlags).toBe(0xff)
    for (const f of [FIN, SYN, RST, PSH, ACK, URG, ECE, CWR]) expect(p.hasFlag(f)).toBe(true)
    expect(p.urgentPointer).toBe(0xabcd)
  })

  it('bad data offset and malformed options are flagged, the rest is kept', () => {
    const small = dec.decode(buildTcpPacket({src: a, dst: b, srcPort: 1, dstPort: 2, dataOffset: 3, payload: te.encode('zz')}), LINKTYPE.ETHERNET)
    expect(small.anomalies).toEqual(['tcp.bad_data_offset'])
    expect(small.srcPort).toBe(1)
    const past = dec.decode(buildTcpPacket({src: a, dst: b, srcPort: 1, dstPort: 2, dataOffset: 15}), LINKTYPE.ETHERNET)
    expect(past.anomalies).toEqual(['tcp.bad_data_offset'])
    expect(past.truncated).toBe(true)

    // MSS with length 5, then a valid window scale, then a kind-30 option whose length runs past the header
    const opts = new Uint8Array([2, 5, 1, 2, 3, 3, 3, 9, 30, 20, 0, 0])
    const p = dec.decode(buildTcpPacket({src: a, dst: b, srcPort: 1, dstPort: 2, options: opts, payload: te.encode('x')}), LINKTYPE.ETHERNET)
    expect(p.anomalies).toEqual(['tcp.bad_option', 'tcp.bad_option'])
    expect(p.mss).toBe(-1)
    expect(p.windowScale).toBe(9)
    expect(Array.from(p.payload)).toEqual([120])
    expect(l4ChecksumOk(p)).toBe(true)
  })

  it('SACK blocks are counted', () => {
    const p = dec.decode(buildTcpPacket({src: a, dst: b, srcPort: 1, dstPort: 2, options: {sack: [[1, 2], [3, 4], [5, 6]]}}), LINKTYPE.ETHERNET)
    expect(p.sackBlocks).toBe(3)
  })

  it('UDP length: short, long, and smaller than the IP payload', () => {
    const short = dec.decode(buildUdpPacket({src: a, dst: b, srcPort: 1, dstPort: 2, length: 4, payload: new Uint8Array(4)}), LINKTYPE.ETHERNET)
    expect(short.anomalies).toEqual(['udp.bad_length'])
    expect(short.payloadLength).toBe(0)
    const long = dec.decode(buildUdpPacket({src: a, dst: b, srcPort: 1, dstPort: 2, length: 100, payload: new Uint8Array(4)}), LINKTYPE.ETHERNET)
    expect(long.anomalies).toEqual(['udp.bad_length'])
    expect(long.truncated).toBe(true)
    const mism = dec.decode(buildUdpPacket({src: a, dst: b, srcPort: 1, dstPort: 2, length: 10, payload: te.encode('abcd')}), LINKTYPE.ETHERNET)
    expect(mism.anomalies).toEqual(['udp.length_mismatch'])
    expect(Array.from(mism.payload)).toEqual([97, 98])
  })

  it('ICMP echo id/seq and the embedded packet of an error', () => {
    const echo = dec.decodeIp(buildIpv4({src: a, dst: b, proto: 1}, buildIcmpEcho({id: 0x1234, seq: 9}, te.encode('hi'))))
    expect([echo.l4, echo.icmpType, echo.icmpCode, echo.icmpId, echo.icmpSeq]).toEqual(['icmp', 8, 0, 0x1234, 9])
    expect(l4ChecksumOk(echo)).toBe(true)
    const inner = buildIpv4({src: b, dst: a, proto: 17}, buildUdp({srcPort: 5, dstPort: 6}, new Uint8Array(0), b, a))
    const unreachBody = concat(new Uint8Array([3, 3, 0, 0, 0, 0, 0, 0]), inner)
    const err = dec.decodeIp(buildIpv4({src: a, dst: b, proto: 1}, unreachBody))
    expect(err.icmpType).toBe(3)
    expect(err.icmpId).toBe(-1)
    expect(err.icmpEmbeddedOffset).toBe(28)
    const innerPkt = new PacketDecoder().decodeIp(err.frame.subarray(err.icmpEmbeddedOffset))
    expect(innerPkt.dstPort).toBe(6)

    const v6 = dec.decodeIp(buildIpv6({src: '::1', dst: '::2', nextHeader: 58}, buildIcmpEcho({id: 3, seq: 4, reply: true}, new Uint8Array(2), '::1', '::2')))
    expect([v6.l4, v6.icmpType, v6.icmpId, v6.icmpSeq]).toEqual(['icmpv6', 129, 3, 4])
    expect(l4ChecksumOk(v6)).toBe(true)
  })
})

describe('anomaly bound', () => {
  it('caps anomalies per packet and says so', () => {
    const dec = new PacketDecoder({maxAnomalies: 3})
    // six malformed options -> more anomalies than the cap
    const opts = new Uint8Array([2, 3, 0, 2, 3, 0, 2, 3, 0, 2, 3, 0, 2, 3, 0, 2, 3, 0, 0, 0])
    const p = dec.decode(buildTcpPacket({src: '1.1.1.1', dst: '2.2.2.2', srcPort: 1, dstPort: 2, options: opts}), LINKTYPE.ETHERNET)
    expect(p.anomalies).toEqual(['tcp.bad_option', 'tcp.bad_option', 'decode.too_many_anomalies'])
  })

  it('the reused packet is reset between decodes', () => {
    const dec = new PacketDecoder()
    const a = dec.decode(buildTcpPacket({src: '1.1.1.1', dst: '2.2.2.2', srcPort: 1, dstPort: 2, vlan: 3, options: {mss: 1}}), LINKTYPE.ETHERNET)
    expect(a.mss).toBe(1)
    const b = dec.decode(buildUdpPacket({src: '::1', dst: '::3', srcPort: 5, dstPort: 6}), LINKTYPE.ETHERNET)
    expect(b).toBe(a)
    expect(b.mss).toBe(-1)
    expect(b.vlanIds).toEqual([])
    expect(b.src).toBe('::1')
    expect(b.l4).toBe('udp')
  })
})

// tcpdump counts: [file, packets, ip proto 6, ip proto 17, ip proto 1, ip6, arp, v4 fragments]
// (`tcpdump -nr FILE 'ip proto 6 or ip6 proto 6' | wc -l` etc.; VLAN files counted with `vlan and tcp`;
// packet totals from MANIFEST.tsv)
const COUNTS: [string, number, number, number, number, number, number, number][] = [
  ['benign_exchange_mapi_dcerpc.pcap', 800, 771, 24, 0, 0, 0, 0],
  ['benign_ftp_anonymous_dlt_null.pcap', 18, 18, 0, 0, 0, 0, 0],
  ['benign_http_webdav_methods.pcapng', 92, 92, 0, 0, 0, 0, 0],
  ['benign_http_wikipedia_browsing.pcap', 136, 78, 48, 0, 5, 6, 0],
  ['benign_ipv4_icmp_fragments.pcap', 3, 0, 0, 3, 0, 0, 2],
  ['benign_oracle_tns_connect.pcap', 6, 6, 0, 0, 0, 0, 0],
  ['benign_smb1_negotiate_linux_sll.pcap', 22, 20, 0, 0, 0, 2, 0],
  ['benign_smtp_session.pcap', 125, 118, 3, 4, 0, 0, 0],
  ['benign_tls12_rawip.pcap', 28, 28, 0, 0, 0, 0, 0],
  ['cve-2021-44228_log4shell_http_uri_ldap_ev0.pcap', 403, 223, 0, 180, 0, 0, 0],
  ['http_smuggling_te_cl_desync.pcap', 8, 8, 0, 0, 0, 0, 0],
  ['ipv4_frag_overlap_udp.pcap', 3, 0, 3, 0, 0, 0, 3],
  ['ipv4_frag_tcp_out_of_order_small.pcap', 6, 6, 0, 0, 0, 0, 4],
  ['ipv4_frag_tcp_syn.pcap', 2, 2, 0, 0, 0, 0, 2],
  ['sqli_dvwa_or_union_http.pcapng', 64, 48, 0, 0, 0, 16, 0],
  ['tcp_overlap_conflicting_payload_vlan.pcap', 7, 7, 0, 0, 0, 0, 0],
  ['tcp_syn_scan_nmap.pcap', 2011, 2011, 0, 0, 0, 0, 0],
]

describe.skipIf(!haveCorpus)('corpus captures', () => {
  it('per-file protocol counts agree with tcpdump', () => {
    const dec = new PacketDecoder()
    for (const [file, total, tcp, udp, icmp, ip6, arp, frags] of COUNTS) {
      const frames = readCorpusFile(file)
      expect(frames.length, file).toBe(total)
      const c = {tcp: 0, udp: 0, icmp: 0, ip6: 0, arp: 0, frags: 0}
      for (const f of frames) {
        const p = dec.decode(f.data, f.linktype)
        expectKnownCodes(p)
        expect(p.anomalies, file).not.toContain('decode.internal_error')
        if (p.proto === 6) c.tcp++
        if (p.proto === 17) c.udp++
        if (p.proto === 1) c.icmp++
        if (p.ipVersion === 6) c.ip6++
        if (p.net === 'arp') c.arp++
        if (p.isFragment) c.frags++
      }
      expect(c, file).toEqual({tcp, udp, icmp, ip6, arp, frags})
    }
  })

  it('each link type in the corpus decodes to IP with verified header checksums', () => {
    const dec = new PacketDecoder()
    const seen = new Set<number>()
    const files: [string, number][] = [
      ['benign_http_get.pcap', LINKTYPE.ETHERNET],
      ['tcp_overlap_conflicting_payload_vlan.pcap', LINKTYPE.ETHERNET],
      ['benign_smb1_negotiate_linux_sll.pcap', LINKTYPE.LINUX_SLL],
      ['benign_ftp_anonymous_dlt_null.pcap', LINKTYPE.NULL],
      ['benign_tls12_rawip.pcap', LINKTYPE.RAW],
      ['http_content_length_uint64max.pcap', LINKTYPE.IPV4],
    ]
    for (const [file, lt] of files) {
      const frames = readCorpusFile(file)
      let ipOk = 0
      let ip = 0
      for (const f of frames) {
        expect(f.linktype).toBe(lt)
        seen.add(f.linktype)
        const p = dec.decode(f.data, f.linktype)
        if (p.ipVersion === 4) {
          ip++
          if (ipv4HeaderChecksumOk(p)) ipOk++
          expect(p.truncated, file).toBe(false)
        }
      }
      expect(ip, file).toBeGreaterThan(0)
      // the DLT_NULL capture was synthesized with zero checksums; the others are real
      if (lt !== LINKTYPE.NULL) expect(ipOk, file).toBe(ip)
    }
    expect([...seen].sort((x, y) => x - y)).toEqual([0, 1, 101, 113, 228])
  })

  it('VLAN capture: ids, and the GOOD/EVIL overlap payloads', () => {
    const dec = new PacketDecoder()
    const frames = readCorpusFile('tcp_overlap_conflicting_payload_vlan.pcap')
    const payloads: string[] = []
    for (const f of frames) {
      const p = dec.decode(f.data, f.linktype)
      expect(p.vlanIds).toEqual([6])
      if (p.payloadLength > 0) payloads.push(new TextDecoder().decode(p.payload))
    }
    expect(payloads.join('|')).toContain('GOOD')
    expect(payloads.join('|')).toContain('EVIL')
  })

  it('fragment captures: ICMP echo fragments and a split TCP header', () => {
    const dec = new PacketDecoder()
    // tcpdump -v: id 46544 offset 0 flags [+] length 996; id 46544 offset 976 length 452; id 33782 length 1428
    const icmp = readCorpusFile('benign_ipv4_icmp_fragments.pcap').map((f) => {
      const p = dec.decode(f.data, f.linktype)
      return [p.fragId, p.fragOffset, p.moreFragments, p.ipTotalLength, p.l4, p.fragDataLength]
    })
    expect(icmp).toEqual([
      [46544, 0, true, 996, 'icmp', 976],
      [46544, 976, false, 452, 'none', 432],
      [33782, 0, false, 1428, 'icmp', 0],
    ])
    // SYN whose 40-byte header is cut by the 24-byte first fragment (tcpdump: bad hdr length 40 - too long, > 24)
    const syn = readCorpusFile('ipv4_frag_tcp_syn.pcap')
    const p = dec.decode(syn[0].data, syn[0].linktype)
    expect(p.isFragment).toBe(true)
    expect(p.truncated).toBe(false)
    expect(p.anomalies).toEqual(['ipv4.frag_l4_header_split'])
    expect(p.srcPort).toBe(12345)
  })

  it('IPv6 UDP checksums in the corpus verify', () => {
    const dec = new PacketDecoder()
    let n = 0
    for (const f of readCorpusFile('benign_http_wikipedia_browsing.pcap')) {
      const p = dec.decode(f.data, f.linktype)
      if (p.ipVersion !== 6) continue
      n++
      expect(l4ChecksumOk(p)).toBe(true)
    }
    expect(n).toBe(5)
  })
})

describe('pcap fixture reader', () => {
  it('reads a classic little-endian pcap it is given', () => {
    const hdr = new Uint8Array(24)
    const dv = new DataView(hdr.buffer)
    dv.setUint32(0, 0xa1b2c3d4, true)
    dv.setUint32(20, 101, true)
    const rec = new Uint8Array(16)
    new DataView(rec.buffer).setUint32(8, 3, true)
    const frames = parseCapture(concat(hdr, rec, new Uint8Array([0x45, 0, 0])))
    expect(frames).toEqual([{linktype: 101, data: new Uint8Array([0x45, 0, 0])}])
  })
})

function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0
  for (const p of parts) n += p.length
  const out = new Uint8Array(n)
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}

function sll2Header(protocol: number, pktType = 0): Uint8Array {
  const h = new Uint8Array(20)
  h[0] = protocol >> 8
  h[1] = protocol & 0xff
  h[7] = 2 // ifindex
  h[9] = 1 // ARPHRD_ETHER
  h[10] = pktType
  h[11] = 6
  h.set([2, 0, 0, 0, 0, 1], 12)
  return h
}
