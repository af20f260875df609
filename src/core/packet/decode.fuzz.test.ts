import {existsSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import fc from 'fast-check'
import {describe, expect, it} from 'vitest'
import {
  DECODE_ANOMALIES, MAX_ANOMALIES_PER_PACKET, MAX_IPV6_EXT_HEADERS, MAX_VLAN_TAGS, PacketDecoder,
  ipv4HeaderChecksumOk, l4ChecksumOk, type DecodedPacket,
} from './decode.js'
import {buildEthernet, buildIpv6, buildTcpPacket, buildTcpReset, buildUdp, ipv6FragmentHeader, recomputeChecksums} from './encode.js'
import {LINKTYPE} from './linktype.js'
import {corpusFiles, readCorpusFile} from './pcap-fixture.js'

const CORPUS = fileURLToPath(new URL('../../../../shared/corpus/pcaps/', import.meta.url))
const haveCorpus = existsSync(CORPUS)
/** total frames through decode; `npm run fuzz` raises it with PATCHPOINT_FUZZ_RUNS */
const RUNS = Number(process.env.PATCHPOINT_FUZZ_RUNS ?? 0) || 100_000
const LINKTYPES = [...Object.values(LINKTYPE), 9999]
const KNOWN = new Set<string>(DECODE_ANOMALIES)

/** xorshift32: fast, seeded, reproducible */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x
  }
}

/** invariants that must hold whatever the bytes */
function checkBounded(p: DecodedPacket, len: number): void {
  const ok =
    p.anomalies.length <= MAX_ANOMALIES_PER_PACKET &&
    p.vlanIds.length <= MAX_VLAN_TAGS &&
    p.ipv6ExtHeaderCount <= MAX_IPV6_EXT_HEADERS &&
    p.payloadOffset >= 0 && p.payloadLength >= 0 && p.payloadOffset + p.payloadLength <= len &&
    p.payload.length === p.payloadLength &&
    p.ipEnd <= len &&
    (p.l4Offset < 0 || p.l4Offset + p.l4HeaderLength <= len || p.anomalies.length > 0) &&
    (p.fragDataOffset < 0 || p.fragDataOffset + p.fragDataLength <= len) &&
    (p.ipVersion === 0 || p.ipOffset + (p.ipVersion === 4 ? 20 : 40) <= len) &&
    p.seq >= 0 && p.seq <= 0xffffffff && p.ack >= 0 && p.ack <= 0xffffffff &&
    p.anomalies.every((a) => KNOWN.has(a)) &&
    !p.anomalies.includes('decode.internal_error')
  if (!ok) {
    throw new Error(`invariant broken: ${JSON.stringify({
      lt: p.linktype, len, anomalies: p.anomalies, vlan: p.vlanIds, ext: p.ipv6ExtHeaderCount, po: p.payloadOffset,
      pl: p.payloadLength, ipEnd: p.ipEnd, l4: p.l4, l4o: p.l4Offset, l4h: p.l4HeaderLength, fdo: p.fragDataOffset, fdl: p.fragDataLength,
      frame: Buffer.from(p.frame).toString('hex'),
    })}`)
  }
  // the lazily computed parts must not throw either
  void p.src
  void p.dst
  void p.ipHeader.length
  void p.fragData.length
  void p.tcpOptions.length
  void p.srcMac
  void p.arp.senderIp
  ipv4HeaderChecksumOk(p)
  l4ChecksumOk(p)
}

function seedFrames(): {linktype: number, data: Uint8Array}[] {
  const seeds: {linktype: number, data: Uint8Array}[] = []
  if (haveCorpus) {
    for (const f of corpusFiles()) {
      const frames = readCorpusFile(f)
      // a few frames per file keeps it varied and cheap
      for (let i = 0; i < frames.length && i < 12; i++) seeds.push(frames[i])
    }
  }
  const s = '2001:db8::1'
  const d = '2001:db8::2'
  seeds.push({linktype: LINKTYPE.ETHERNET, data: buildEthernet({etherType: 0x86dd, vlan: [1, 2]}, buildIpv6({src: s, dst: d, nextHeader: 17,
    extHeaders: [{type: 0, body: new Uint8Array(6)}, {type: 43, body: new Uint8Array(6)}, ipv6FragmentHeader(0, true, 9), {type: 60}]},
  buildUdp({srcPort: 1, dstPort: 2}, new Uint8Array(20), s, d)))})
  seeds.push({linktype: LINKTYPE.ETHERNET, data: buildTcpPacket({src: '1.2.3.4', dst: '5.6.7.8', srcPort: 1, dstPort: 2,
    options: {mss: 1, windowScale: 2, sackPermitted: true, sack: [[1, 2], [3, 4]], timestamp: [5, 6]}, payload: new Uint8Array(10)})})
  return seeds
}

describe('decoder fuzzing', () => {
  it(`${RUNS} random and mutated frames through decode with every link type: never throws, stays bounded`, () => {
    const dec = new PacketDecoder()
    const seeds = seedFrames()
    const next = rng(0x5eed)
    const scratch = new Uint8Array(2048)
    let withIp = 0
    for (let i = 0; i < RUNS; i++) {
      let frame: Uint8Array
      let lt: number
      const r = next()
      if (i % 4 === 0) {
        // random bytes, random link type, often starting like an IP header
        const len = next() % 160
        frame = scratch.subarray(0, len)
        for (let k = 0; k < len; k++) frame[k] = next() & 0xff
        if (len > 0 && (r & 1)) frame[0] = (r & 2 ? 0x40 : 0x60) | (frame[0] & 0x0f)
        lt = LINKTYPES[next() % LINKTYPES.length]
      } else {
        // mutate a real frame: flip bytes, poke length fields, truncate, or re-interpret the link type
        const seed = seeds[next() % seeds.length]
        const len = Math.min(seed.data.length, scratch.length)
        frame = scratch.subarray(0, len)
        frame.set(seed.data.subarray(0, len))
        const flips = 1 + (next() % 6)
        for (let k = 0; k < flips && len > 0; k++) {
          const pos = next() % Math.min(len, (r & 4) ? 80 : len)
          frame[pos] = (r & 8) ? next() & 0xff : frame[pos] ^ (1 << (next() & 7))
        }
        if ((r & 0x30) === 0x30) frame = frame.subarray(0, next() % (len + 1))
        lt = (r & 0x1c0) === 0x1c0 ? LINKTYPES[next() % LINKTYPES.length] : seed.linktype
      }
      let p: DecodedPacket
      try {
        p = (i & 1) ? dec.decode(frame, lt) : (lt === LINKTYPE.RAW ? dec.decodeIp(frame) : dec.decode(frame, lt))
      } catch (e) {
        throw new Error(`decode threw on lt=${lt} frame=${Buffer.from(frame).toString('hex')}: ${String(e)}`)
      }
      checkBounded(p, frame.length)
      if (p.ipVersion !== 0) withIp++
      // the gateway-facing helpers must not throw on whatever decoded
      if ((i & 15) === 0) {
        buildTcpReset(p, 'to-source')
        recomputeChecksums(frame, p)
      }
    }
    // mutation must still reach the IP layer most of the time, or the fuzz is shallow
    expect(withIp).toBeGreaterThan(RUNS / 3)
  })

  it('fast-check: arbitrary bytes with any link type', () => {
    const dec = new PacketDecoder()
    fc.assert(fc.property(fc.uint8Array({maxLength: 200}), fc.constantFrom(...LINKTYPES), (bytes, lt) => {
      checkBounded(dec.decode(bytes, lt), bytes.length)
      checkBounded(dec.decodeIp(bytes), bytes.length)
    }), {numRuns: Math.max(200, Math.floor(RUNS / 50))})
  })

  it('a frame decoded where it lies in a bigger buffer (a capture reader\'s chunk) decodes as its own copy does', () => {
    // what a replay does: decode(chunk, lt, start, end). Bytes around the frame are random, so a
    // read past `end` or before `start` shows as a difference.
    const OFFSETS = ['networkOffset', 'srcMacOffset', 'dstMacOffset', 'ipOffset', 'ipEnd', 'ipPayloadOffset', 'fragDataOffset',
      'l4Offset', 'tcpOptionsOffset', 'payloadOffset', 'icmpEmbeddedOffset'] as const
    const SCALARS = ['etherType', 'sllPacketType', 'loopbackFamily', 'net', 'ipVersion', 'ipHeaderLength', 'ipTotalLength', 'proto',
      'ttl', 'tos', 'flowLabel', 'ipv6ExtHeaderCount', 'isFragment', 'hasFragmentHeader', 'fragId', 'fragOffset', 'moreFragments',
      'dontFragment', 'fragNextHeader', 'unfragmentableLength', 'prevNextHeaderOffset', 'fragDataLength', 'l4', 'l4HeaderLength',
      'srcPort', 'dstPort', 'seq', 'ack', 'tcpFlags', 'window', 'urgentPointer', 'tcpChecksum', 'tcpOptionsLength', 'mss',
      'windowScale', 'sackPermitted', 'sackBlocks', 'hasTimestamp', 'tsVal', 'tsEcr', 'udpLength', 'udpChecksum', 'icmpType',
      'icmpCode', 'icmpId', 'icmpSeq', 'payloadLength', 'truncated'] as const
    const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
    const view = (p: DecodedPacket, start: number): Record<string, unknown> => {
      const v: Record<string, unknown> = {}
      for (const k of SCALARS) v[k] = p[k]
      // offsets index the buffer: relative to the frame's start they must agree (-1 and unset 0 stay)
      for (const k of OFFSETS) v[k] = p[k] >= start ? p[k] - start : p[k]
      const a = p.arp
      v.arp = [a.op, a.senderMac, a.senderIp, a.targetMac, a.targetIp]
      Object.assign(v, {
        anomalies: [...p.anomalies], vlan: [...p.vlanIds], src: p.src, dst: p.dst, srcMac: p.srcMac, dstMac: p.dstMac,
        payload: hex(p.payload), ipHeader: hex(p.ipHeader), fragData: hex(p.fragData), tcpOptions: hex(p.tcpOptions),
        ipDatagram: hex(p.ipDatagram), ipSum: ipv4HeaderChecksumOk(p), l4Sum: l4ChecksumOk(p),
      })
      return v
    }
    const own = new PacketDecoder()
    const inPlace = new PacketDecoder()
    const seeds = seedFrames()
    const next = rng(0xb0f5)
    const runs = Math.max(2000, Math.floor(RUNS / 20))
    for (let i = 0; i < runs; i++) {
      const seed = seeds[next() % seeds.length]
      const frame = Uint8Array.from(seed.data.subarray(0, next() % (seed.data.length + 1)))
      for (let k = next() % 4; k > 0 && frame.length > 0; k--) frame[next() % frame.length] ^= 1 << (next() & 7)
      const before = 1 + (next() % 64)
      const chunk = new Uint8Array(before + frame.length + 1 + (next() % 256))
      for (let k = 0; k < chunk.length; k++) chunk[k] = next() & 0xff
      chunk.set(frame, before)
      const lt = (i & 7) === 0 ? LINKTYPES[next() % LINKTYPES.length] : seed.linktype
      const want = view(own.decode(frame, lt), 0)
      const got = inPlace.decode(chunk, lt, before, before + frame.length)
      checkBounded(got, before + frame.length)
      expect(got.frameStart).toBe(before)
      expect(view(got, before), `lt=${lt} frame=${hex(frame)}`).toEqual(want)
    }
  })

  it('non-Uint8Array input is treated as empty data', () => {
    const dec = new PacketDecoder()
    const p = dec.decode(null as unknown as Uint8Array, LINKTYPE.ETHERNET)
    expect(p.truncated).toBe(true)
    expect(p.anomalies).toEqual(['link.truncated'])
  })
})
