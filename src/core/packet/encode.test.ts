import {existsSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import fc from 'fast-check'
import {describe, expect, it} from 'vitest'
import {parseIp} from './address.js'
import {ACK, FIN, PSH, PacketDecoder, RST, SYN, ipv4HeaderChecksumOk, l4ChecksumOk, type DecodedPacket} from './decode.js'
import {
  buildArp, buildEthernet, buildIcmpEcho, buildIpv4, buildIpv6, buildTcp, buildTcpPacket, buildTcpReset,
  buildUdpPacket, fragmentIpv4, fragmentIpv6, internetChecksum, pseudoHeaderSum, recomputeChecksums,
} from './encode.js'
import {LINKTYPE} from './linktype.js'
import {readCorpusFile} from './pcap-fixture.js'

const CORPUS = fileURLToPath(new URL('../../../../shared/corpus/pcaps/', import.meta.url))
const haveCorpus = existsSync(CORPUS)
const RUNS = Math.max(1, Number(process.env.PATCHPOINT_FUZZ_RUNS ?? 0) / 100 || 300)
const te = new TextEncoder()

/**
 * Independent one's-complement check: sum even and odd bytes separately, recombine and reduce
 * modulo 0xffff. Data that carries a correct checksum sums to a non-zero multiple of 0xffff.
 */
function onesComplementVerifies(...parts: Uint8Array[]): boolean {
  const all: number[] = []
  for (const p of parts) {
    for (const b of p) all.push(b)
    if (all.length % 2 === 1 && p !== parts[parts.length - 1]) throw new Error('odd inner part')
  }
  let hi = 0
  let lo = 0
  for (let i = 0; i < all.length; i++) {
    if (i % 2 === 0) hi += all[i]
    else lo += all[i]
  }
  const total = hi * 256 + lo
  return total > 0 && total % 0xffff === 0
}

function pseudoHeaderBytes(src: Uint8Array, dst: Uint8Array, proto: number, len: number): Uint8Array {
  if (src.length === 4) return Uint8Array.from([...src, ...dst, 0, proto, len >> 8, len & 0xff])
  return Uint8Array.from([...src, ...dst, 0, 0, len >> 8, len & 0xff, 0, 0, 0, proto])
}

describe('internetChecksum / pseudoHeaderSum', () => {
  it('RFC 1071 §3 example', () => {
    const b = new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])
    expect(internetChecksum(b)).toBe(~0xddf2 & 0xffff)
  })

  it('odd lengths pad with a zero byte; storing the checksum makes the data verify', () => {
    fc.assert(fc.property(fc.uint8Array({minLength: 0, maxLength: 301}), (data) => {
      const padded = new Uint8Array(data.length + (data.length & 1) + 2)
      padded.set(data)
      const c = internetChecksum(data)
      padded[padded.length - 2] = c >> 8
      padded[padded.length - 1] = c & 0xff
      expect(internetChecksum(padded)).toBe(0)
      if (c !== 0) expect(onesComplementVerifies(padded)).toBe(true)
    }), {numRuns: RUNS})
  })

  it('start/end select a range', () => {
    const b = new Uint8Array([9, 9, 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7, 9])
    expect(internetChecksum(b, 2, 10)).toBe(0x220d)
  })

  it('pseudo-header sums equal the sum of the explicit pseudo-header bytes', () => {
    fc.assert(fc.property(fc.boolean(), fc.uint8Array({minLength: 16, maxLength: 16}), fc.uint8Array({minLength: 16, maxLength: 16}),
      fc.integer({min: 0, max: 255}), fc.integer({min: 0, max: 65535}), (v6, s, d, proto, len) => {
        const src = v6 ? s : s.subarray(0, 4)
        const dst = v6 ? d : d.subarray(0, 4)
        const bytes = pseudoHeaderBytes(src, dst, proto, len)
        expect(internetChecksum(new Uint8Array(0), 0, 0, pseudoHeaderSum(src, dst, proto, len))).toBe(internetChecksum(bytes))
      }), {numRuns: RUNS})
  })
})

const tcpSpecArb = fc.record({
  v6: fc.boolean(),
  s: fc.uint8Array({minLength: 16, maxLength: 16}),
  d: fc.uint8Array({minLength: 16, maxLength: 16}),
  srcPort: fc.integer({min: 0, max: 65535}),
  dstPort: fc.integer({min: 0, max: 65535}),
  seq: fc.integer({min: 0, max: 0xffffffff}),
  ack: fc.integer({min: 0, max: 0xffffffff}),
  flags: fc.integer({min: 0, max: 255}),
  window: fc.integer({min: 0, max: 65535}),
  urgent: fc.integer({min: 0, max: 65535}),
  mss: fc.option(fc.integer({min: 0, max: 65535}), {nil: undefined}),
  windowScale: fc.option(fc.integer({min: 0, max: 14}), {nil: undefined}),
  sackPermitted: fc.boolean(),
  timestamp: fc.option(fc.tuple(fc.integer({min: 0, max: 0xffffffff}), fc.integer({min: 0, max: 0xffffffff})), {nil: undefined}),
  vlan: fc.array(fc.integer({min: 0, max: 4095}), {maxLength: 3}),
  ttl: fc.integer({min: 1, max: 255}),
  payload: fc.uint8Array({maxLength: 120}),
})

describe('round trips: decode(build(x)) gives back x', () => {
  const dec = new PacketDecoder()

  it('TCP over IPv4/IPv6, with VLANs and options; checksums verify independently', () => {
    fc.assert(fc.property(tcpSpecArb, (x) => {
      const src = x.v6 ? x.s : x.s.subarray(0, 4)
      const dst = x.v6 ? x.d : x.d.subarray(0, 4)
      const frame = buildTcpPacket({
        src, dst, srcPort: x.srcPort, dstPort: x.dstPort, seq: x.seq, ack: x.ack, flags: x.flags, window: x.window,
        urgent: x.urgent, vlan: x.vlan, ttl: x.ttl, payload: x.payload,
        options: {mss: x.mss, windowScale: x.windowScale, sackPermitted: x.sackPermitted, timestamp: x.timestamp},
      })
      const p = dec.decode(frame, LINKTYPE.ETHERNET)
      expect(p.anomalies).toEqual([])
      expect(p.truncated).toBe(false)
      expect(p.vlanIds).toEqual(x.vlan)
      expect(p.ipVersion).toBe(x.v6 ? 6 : 4)
      expect(Array.from(p.srcAddr)).toEqual(Array.from(src))
      expect(Array.from(p.dstAddr)).toEqual(Array.from(dst))
      expect(parseIp(p.src)).toEqual(new Uint8Array(src))
      expect(p.ttl).toBe(x.ttl)
      expect([p.srcPort, p.dstPort, p.seq, p.ack, p.tcpFlags, p.window, p.urgentPointer])
        .toEqual([x.srcPort, x.dstPort, x.seq, x.ack, x.flags, x.window, x.urgent])
      expect(p.mss).toBe(x.mss ?? -1)
      expect(p.windowScale).toBe(x.windowScale ?? -1)
      expect(p.sackPermitted).toBe(x.sackPermitted)
      expect(p.hasTimestamp).toBe(x.timestamp !== undefined)
      if (x.timestamp) expect([p.tsVal, p.tsEcr]).toEqual(x.timestamp)
      expect(Array.from(p.payload)).toEqual(Array.from(x.payload))
      expect(l4ChecksumOk(p)).toBe(true)
      const seg = frame.subarray(p.l4Offset, p.ipEnd)
      expect(onesComplementVerifies(pseudoHeaderBytes(src, dst, 6, seg.length), seg)).toBe(true)
      if (!x.v6) {
        expect(ipv4HeaderChecksumOk(p)).toBe(true)
        expect(onesComplementVerifies(frame.subarray(p.ipOffset, p.ipOffset + 20))).toBe(true)
      }
    }), {numRuns: RUNS})
  })

  it('UDP over IPv4/IPv6 (raw link)', () => {
    fc.assert(fc.property(fc.boolean(), fc.integer({min: 0, max: 65535}), fc.integer({min: 0, max: 65535}), fc.uint8Array({maxLength: 200}),
      (v6, sp, dp, payload) => {
        const src = v6 ? '2001:db8::1' : '198.51.100.1'
        const dst = v6 ? '2001:db8::2' : '198.51.100.2'
        const p = dec.decode(buildUdpPacket({src, dst, srcPort: sp, dstPort: dp, payload, link: 'raw'}), LINKTYPE.RAW)
        expect([p.l4, p.src, p.dst, p.srcPort, p.dstPort, p.udpLength]).toEqual(['udp', src, dst, sp, dp, 8 + payload.length])
        expect(Array.from(p.payload)).toEqual(Array.from(payload))
        expect(l4ChecksumOk(p)).toBe(true)
        expect(p.udpChecksum).not.toBe(0)
      }), {numRuns: RUNS})
  })

  it('ICMP echo v4 and v6; ICMPv6 checksum includes the pseudo-header', () => {
    const v4 = dec.decodeIp(buildIpv4({src: '10.0.0.1', dst: '10.0.0.2', proto: 1}, buildIcmpEcho({id: 77, seq: 3, reply: true}, te.encode('abc'))))
    expect([v4.icmpType, v4.icmpId, v4.icmpSeq]).toEqual([0, 77, 3])
    expect(l4ChecksumOk(v4)).toBe(true)
    const msg = buildIcmpEcho({id: 1, seq: 2}, te.encode('abc'), 'fe80::1', 'ff02::1')
    const v6 = dec.decodeIp(buildIpv6({src: 'fe80::1', dst: 'ff02::1', nextHeader: 58}, msg))
    expect([v6.icmpType, v6.icmpId, v6.icmpSeq]).toEqual([128, 1, 2])
    expect(l4ChecksumOk(v6)).toBe(true)
    expect(onesComplementVerifies(pseudoHeaderBytes(parseIp('fe80::1')!, parseIp('ff02::1')!, 58, msg.length), msg)).toBe(true)
  })

  it('ARP', () => {
    const f = buildEthernet({etherType: 0x0806, dst: 'ff:ff:ff:ff:ff:ff', src: '00:11:22:33:44:55'},
      buildArp({op: 2, senderMac: '00:11:22:33:44:55', senderIp: '10.0.0.1', targetMac: '66:77:88:99:aa:bb', targetIp: '10.0.0.2'}))
    const p = dec.decode(f, LINKTYPE.ETHERNET)
    expect([p.arp.op, p.arp.senderMac, p.arp.senderIp, p.arp.targetMac, p.arp.targetIp])
      .toEqual([2, '00:11:22:33:44:55', '10.0.0.1', '66:77:88:99:aa:bb', '10.0.0.2'])
    expect(p.dstMac).toBe('ff:ff:ff:ff:ff:ff')
  })

  it('builders reject unparsable addresses', () => {
    expect(() => buildIpv4({src: '1.2.3', dst: '1.2.3.4', proto: 6}, new Uint8Array(0))).toThrow(TypeError)
    expect(() => buildEthernet({etherType: 1, src: 'nope'}, new Uint8Array(0))).toThrow(TypeError)
  })
})

describe('recomputeChecksums', () => {
  const dec = new PacketDecoder()

  it('after a same-length rewrite the checksums match a freshly built packet', () => {
    fc.assert(fc.property(fc.boolean(), fc.uint8Array({minLength: 1, maxLength: 80}), fc.uint8Array({minLength: 1, maxLength: 80}), (v6, a, b0) => {
      const b = b0.length === a.length ? b0 : Uint8Array.from({length: a.length}, (_, i) => b0[i % b0.length])
      const src = v6 ? '2001:db8::7' : '203.0.113.7'
      const dst = v6 ? '2001:db8::8' : '203.0.113.8'
      for (const make of [buildTcpPacket, buildUdpPacket]) {
        const spec = {src, dst, srcPort: 1000, dstPort: 2000, seq: 5, flags: ACK, payload: a, vlan: 9}
        const frame = make(spec)
        const p = dec.decode(frame, LINKTYPE.ETHERNET)
        frame.set(b, p.payloadOffset)
        if (!v6) frame[p.ipOffset + 8] = 17 // TTL rewrite too: IPv4 header checksum must follow
        expect(recomputeChecksums(frame, p)).toBe(true)
        const expected = make({...spec, payload: b, ttl: v6 ? undefined : 17})
        expect(Array.from(frame)).toEqual(Array.from(expected))
      }
    }), {numRuns: Math.ceil(RUNS / 3)})
  })

  it('ICMP and ICMPv6, and refuses fragments', () => {
    const f = buildIpv4({src: '10.0.0.1', dst: '10.0.0.2', proto: 1}, buildIcmpEcho({id: 1, seq: 1}, te.encode('aaaa')))
    let p = dec.decodeIp(f)
    f[p.payloadOffset] = 0x62
    expect(l4ChecksumOk(p)).toBe(false)
    expect(recomputeChecksums(f, p)).toBe(true)
    expect(l4ChecksumOk(dec.decodeIp(f))).toBe(true)

    const g = buildIpv6({src: '::1', dst: '::2', nextHeader: 58}, buildIcmpEcho({id: 1, seq: 1}, te.encode('aaaa'), '::1', '::2'))
    p = dec.decodeIp(g)
    g[p.payloadOffset] = 0x62
    expect(recomputeChecksums(g, p)).toBe(true)
    expect(l4ChecksumOk(dec.decodeIp(g))).toBe(true)

    const frag = buildIpv4({src: '10.0.0.1', dst: '10.0.0.2', proto: 17, fragOffset: 8}, new Uint8Array(8))
    frag[10] = frag[11] = 0
    expect(recomputeChecksums(frag, dec.decodeIp(frag))).toBe(false)
    expect(ipv4HeaderChecksumOk(dec.decodeIp(frag))).toBe(true) // the header part was still fixed
  })

  it.skipIf(!haveCorpus)('rewriting an HTTP request in a real capture keeps it valid', () => {
    const frames = readCorpusFile('benign_http_get.pcap')
    let rewritten = 0
    for (const fr of frames) {
      const frame = fr.data.slice()
      const p = dec.decode(frame, fr.linktype)
      if (p.l4 !== 'tcp' || p.payloadLength === 0 || l4ChecksumOk(p) !== true) continue
      for (let i = p.payloadOffset; i < p.payloadOffset + p.payloadLength; i++) if (frame[i] >= 97 && frame[i] <= 122) frame[i] -= 32
      expect(l4ChecksumOk(p)).toBe(false)
      expect(recomputeChecksums(frame, p)).toBe(true)
      const q = dec.decode(frame, fr.linktype)
      expect(l4ChecksumOk(q)).toBe(true)
      expect(ipv4HeaderChecksumOk(q)).toBe(true)
      rewritten++
    }
    expect(rewritten).toBeGreaterThan(0)
  })
})

describe('buildTcpReset', () => {
  const dec = new PacketDecoder()
  const rdec = new PacketDecoder()

  function data(p: DecodedPacket) {
    return {src: p.src, dst: p.dst, sp: p.srcPort, dp: p.dstPort, seq: p.seq, ack: p.ack, flags: p.tcpFlags}
  }

  it('answers a data segment in both directions with exact sequence numbers', () => {
    const f = buildTcpPacket({src: '10.0.0.1', dst: '10.0.0.2', srcPort: 40000, dstPort: 80, seq: 1000, ack: 5000,
      flags: ACK | PSH, payload: te.encode('GET / HTTP/1.1\r\n'), vlan: [10, 20], srcMac: '00:00:00:00:00:01', dstMac: '00:00:00:00:00:02'})
    const p = dec.decode(f, LINKTYPE.ETHERNET)
    const back = rdec.decode(buildTcpReset(p, 'to-source')!, LINKTYPE.ETHERNET)
    expect(data(back)).toEqual({src: '10.0.0.2', dst: '10.0.0.1', sp: 80, dp: 40000, seq: 5000, ack: 1016, flags: RST | ACK})
    expect(back.vlanIds).toEqual([10, 20])
    expect([back.srcMac, back.dstMac]).toEqual(['00:00:00:00:00:02', '00:00:00:00:00:01'])
    expect(l4ChecksumOk(back)).toBe(true)
    expect(ipv4HeaderChecksumOk(back)).toBe(true)

    const fwd = rdec.decode(buildTcpReset(p, 'to-destination')!, LINKTYPE.ETHERNET)
    expect(data(fwd)).toEqual({src: '10.0.0.1', dst: '10.0.0.2', sp: 40000, dp: 80, seq: 1000, ack: 5000, flags: RST | ACK})
    expect([fwd.srcMac, fwd.dstMac]).toEqual(['00:00:00:00:00:01', '00:00:00:00:00:02'])
    const after = rdec.decode(buildTcpReset(p, 'to-destination', {delivered: true})!, LINKTYPE.ETHERNET)
    expect(after.seq).toBe(1016)
  })

  it('SYN, FIN and wrap-around; v6 and raw link types; never answers a RST', () => {
    const syn = dec.decode(buildTcpPacket({src: '2001:db8::1', dst: '2001:db8::2', srcPort: 1, dstPort: 2, seq: 0xffffffff, flags: SYN, link: 'raw'}), LINKTYPE.RAW)
    const r = buildTcpReset(syn, 'to-source')!
    const back = rdec.decodeIp(r)
    expect(data(back)).toEqual({src: '2001:db8::2', dst: '2001:db8::1', sp: 2, dp: 1, seq: 0, ack: 0, flags: RST | ACK})
    expect(l4ChecksumOk(back)).toBe(true)
    const fin = dec.decode(buildTcpPacket({src: '1.1.1.1', dst: '2.2.2.2', srcPort: 1, dstPort: 2, seq: 10, ack: 3, flags: FIN | ACK}), LINKTYPE.ETHERNET)
    expect(rdec.decode(buildTcpReset(fin, 'to-source')!, LINKTYPE.ETHERNET).ack).toBe(11)
    const rst = dec.decode(buildTcpPacket({src: '1.1.1.1', dst: '2.2.2.2', srcPort: 1, dstPort: 2, flags: RST}), LINKTYPE.ETHERNET)
    expect(buildTcpReset(rst, 'to-source')).toBeNull()
    const udp = dec.decode(buildUdpPacket({src: '1.1.1.1', dst: '2.2.2.2', srcPort: 1, dstPort: 2}), LINKTYPE.ETHERNET)
    expect(buildTcpReset(udp, 'to-destination')).toBeNull()
  })
})

describe('fragmentation helpers', () => {
  const dec = new PacketDecoder()

  it('fragmentIpv4 splits on 8-byte boundaries and the data reassembles', () => {
    fc.assert(fc.property(fc.uint8Array({minLength: 0, maxLength: 600}), fc.integer({min: 1, max: 300}), (payload, size) => {
      const dg = buildIpv4({src: '10.0.0.1', dst: '10.0.0.2', proto: 17, id: 4242},
        buildUdpPacket({src: '10.0.0.1', dst: '10.0.0.2', srcPort: 1, dstPort: 2, payload, link: 'raw'}).subarray(20))
      const frags = fragmentIpv4(dg, size)
      const step = Math.max(8, size & ~7)
      const data = dg.subarray(20)
      expect(frags.length).toBe(Math.max(1, Math.ceil(data.length / step)))
      const rebuilt = new Uint8Array(data.length)
      frags.forEach((f, i) => {
        const p = dec.decodeIp(f)
        expect(ipv4HeaderChecksumOk(p)).toBe(true)
        expect(p.fragId).toBe(4242)
        if (frags.length === 1) {
          expect(p.isFragment).toBe(false)
        } else {
          expect(p.fragOffset).toBe(i * step)
          expect(p.moreFragments).toBe(i < frags.length - 1)
        }
        rebuilt.set(frags.length === 1 ? p.ipDatagram.subarray(20) : p.fragData, p.fragOffset)
      })
      expect(Array.from(rebuilt)).toEqual(Array.from(data))
    }), {numRuns: Math.ceil(RUNS / 3)})
  })

  it('fragmentIpv4 copies only options with the copy bit into later fragments', () => {
    // router alert (0x94, copied) + record route (0x07, not copied)
    const opts = new Uint8Array([0x94, 4, 0, 0, 0x07, 7, 4, 0, 0, 0, 0, 0])
    const dg = buildIpv4({src: '1.1.1.1', dst: '2.2.2.2', proto: 6, options: opts}, new Uint8Array(64))
    const [a, b] = fragmentIpv4(dg, 32)
    expect(dec.decodeIp(a).ipHeaderLength).toBe(32)
    const pb = dec.decodeIp(b)
    expect(pb.ipHeaderLength).toBe(24)
    expect(Array.from(pb.ipHeader.subarray(20))).toEqual([0x94, 4, 0, 0])
    expect(fragmentIpv4(new Uint8Array(10), 8)).toEqual([])
  })

  it('fragmentIpv6 keeps the unfragmentable part and points it at the Fragment header', () => {
    const s = '2001:db8::1'
    const d = '2001:db8::2'
    const body = buildUdpPacket({src: s, dst: d, srcPort: 5, dstPort: 6, payload: new Uint8Array(100).map((_, i) => i), link: 'raw'}).subarray(40)
    const dg = buildIpv6({src: s, dst: d, nextHeader: 17, extHeaders: [
      {type: 0, body: new Uint8Array(6)}, {type: 43, body: new Uint8Array(6)}, {type: 60, body: new Uint8Array(6)},
    ]}, body)
    const frags = fragmentIpv6(dg, 48, 0xabcdef01)
    expect(frags.length).toBe(Math.ceil((8 + body.length) / 48))
    const unfragLen = 40 + 8 + 8
    const fragmentable = dg.subarray(unfragLen)
    const rebuilt = new Uint8Array(fragmentable.length)
    frags.forEach((f, i) => {
      const p = dec.decodeIp(f)
      expect(p.isFragment).toBe(true)
      expect(p.fragId).toBe(0xabcdef01)
      expect(p.unfragmentableLength).toBe(unfragLen)
      expect(p.prevNextHeaderOffset).toBe(48) // the routing header's next-header byte
      expect(p.fragNextHeader).toBe(60)
      expect(p.fragOffset).toBe(i * 48)
      expect(p.moreFragments).toBe(i < frags.length - 1)
      expect(Array.from(p.ipHeader.subarray(0, 48))).toEqual(Array.from(f.subarray(0, 48)))
      rebuilt.set(p.fragData, p.fragOffset)
    })
    expect(Array.from(rebuilt)).toEqual(Array.from(fragmentable))
    // the first fragment still shows the UDP header behind the destination options
    expect(dec.decodeIp(frags[0]).l4).toBe('udp')
  })

  it('fragmentIpv6 of a packet without extension headers', () => {
    const tcp = buildTcp({srcPort: 1, dstPort: 2}, new Uint8Array(30), '::1', '::2')
    const frags = fragmentIpv6(buildIpv6({src: '::1', dst: '::2', nextHeader: 6}, tcp), 16)
    const p = dec.decodeIp(frags[1])
    expect([p.prevNextHeaderOffset, p.unfragmentableLength, p.fragNextHeader, p.fragOffset]).toEqual([6, 40, 6, 16])
    expect(fragmentIpv6(new Uint8Array(39), 8)).toEqual([])
  })
})
