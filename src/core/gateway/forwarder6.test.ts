/**
 * The forwarder over IPv6 (inline mode diverts IPv6 services too): forward, fix (checksums over
 * the IPv6 pseudo-header, RFC 8200 §8.1), drop (forged resets in IPv6 frames), and exploits cut
 * into IPv6 fragments (RFC 8200 §4.5).
 */
import {describe, it, expect, beforeAll} from 'vitest'
import fc from 'fast-check'
import {tcpConversation} from '../../../test/support/tcp-conversation.js'
import {PacketDecoder, RST, l4ChecksumOk} from '../packet/decode.js'
import {buildEthernet, fragmentIpv6} from '../packet/encode.js'
import {LINKTYPE} from '../packet/linktype.js'
import {engineDetection, type Detection} from '../engine/detection.js'
import {GatewaySession} from './session.js'
import type {GatewayLimits} from './forwarder.js'
import {BENIGN, RESPONSE, SHELLSHOCK, enc, gatewaySession, runFrames} from '../../../test/support/gateway.js'

const FUZZ_RUNS = Number(process.env.PATCHPOINT_FUZZ_RUNS ?? 10)
const CLIENT = 'fd00:6::1'
const SERVER = 'fd00:6::3'
let detection: Detection
beforeAll(async () => {
  detection = await engineDetection()
})

const session = (action: 'fix' | 'drop' | 'log', limits: Partial<GatewayLimits> = {}, failClosed = false) => gatewaySession(detection, SERVER, action, limits, failClosed)
const run = (s: GatewaySession, frames: {tsUs: number; data: Uint8Array}[]) => runFrames(s, CLIENT, frames)

interface Seen {
  bytes: string
  resets: {src: string; dst: string; etherType: number; ipVersion: number}[]
  badChecksums: number
  fragments: number
  v4: number
}

/** the TCP payload (seq order, duplicates removed), the resets, bad checksums, fragments left */
function stream(frames: Uint8Array[]): Seen {
  const dec = new PacketDecoder()
  const bySeq = new Map<number, string>()
  const out: Seen = {bytes: '', resets: [], badChecksums: 0, fragments: 0, v4: 0}
  for (const f of frames) {
    const p = dec.decode(f, LINKTYPE.ETHERNET)
    if (p.ipVersion === 4) out.v4++
    if (p.isFragment) {
      out.fragments++
      continue
    }
    if (p.l4 !== 'tcp') continue
    if (l4ChecksumOk(p) !== true) out.badChecksums++
    if ((p.tcpFlags & RST) !== 0) out.resets.push({src: p.src, dst: p.dst, etherType: (f[12] << 8) | f[13], ipVersion: p.ipVersion})
    if (p.payloadLength > 0) bySeq.set(p.seq, Buffer.from(p.payload).toString('latin1'))
  }
  const seqs = [...bySeq.keys()].sort((a, b) => a - b)
  let next = seqs[0] ?? 0
  for (const s of seqs) {
    const v = bySeq.get(s)!
    if (s + v.length <= next) continue
    out.bytes += v.slice(Math.max(0, next - s))
    next = s + v.length
  }
  return out
}

/** the conversation with every client data segment cut into IPv6 fragments of `size` bytes */
function fragmented(conv: {tsUs: number; data: Uint8Array}[], size: number) {
  const dec = new PacketDecoder()
  const frames: {tsUs: number; data: Uint8Array}[] = []
  let id = 0x600
  for (const f of conv) {
    const p = dec.decode(f.data, LINKTYPE.ETHERNET)
    if (p.src === CLIENT && p.payloadLength > 0) {
      const eth = f.data.subarray(0, 14)
      for (const frag of fragmentIpv6(f.data.slice(14), size, id++)) {
        frames.push({tsUs: f.tsUs, data: buildEthernet({src: eth.subarray(6, 12), dst: eth.subarray(0, 6), etherType: 0x86dd}, frag)})
      }
    } else frames.push(f)
  }
  return frames
}

describe('Forwarder over IPv6', () => {
  it('forwards a benign conversation byte for byte, both ways, nothing held at the end', () => {
    const {s, ports} = session('drop')
    run(s, tcpConversation({client: CLIENT, server: SERVER, clientPort: 40000, serverPort: 80, toServer: enc(BENIGN), toClient: enc(RESPONSE), maxSegment: 7, seed: 3}))
    const up = stream(ports[1].frames)
    expect(up.bytes).toBe(BENIGN)
    expect(up.badChecksums).toBe(0)
    expect(up.v4).toBe(0)
    expect(stream(ports[0].frames).bytes).toBe(RESPONSE)
    expect(s.forwarder.stats.held).toBeGreaterThan(0) // the request head was held until judged
    expect(s.forwarder.stats.heldNow).toBe(0)
    expect(s.forwarder.stats.resetsSent).toBe(0)
  })

  it('drop: nothing reaches the server; both ends get IPv6 resets with valid checksums', () => {
    const {s, ports, events} = session('drop')
    run(s, tcpConversation({client: CLIENT, server: SERVER, clientPort: 40001, serverPort: 80, toServer: enc(SHELLSHOCK), toClient: enc(RESPONSE), maxSegment: 5, seed: 9}))
    const up = stream(ports[1].frames)
    const down = stream(ports[0].frames)
    expect(up.bytes).toBe('')
    expect(down.bytes).toBe('')
    expect(up.badChecksums + down.badChecksums).toBe(0)
    // to the server in the client's name, to the client in the server's name, as IPv6 frames
    expect(up.resets.length).toBeGreaterThanOrEqual(1)
    expect(down.resets.length).toBeGreaterThanOrEqual(1)
    for (const r of up.resets) expect(r).toEqual({src: CLIENT, dst: SERVER, etherType: 0x86dd, ipVersion: 6})
    for (const r of down.resets) expect(r).toEqual({src: SERVER, dst: CLIENT, etherType: 0x86dd, ipVersion: 6})
    expect(up.resets.length + down.resets.length).toBeLessThanOrEqual(2 + s.forwarder.limits.resetsPerFlow)
    expect(events.some((e) => e.event_type === 'alert')).toBe(true)
    expect(s.forwarder.stats.blockedFlows).toBe(1)
  })

  it('fix: the server receives the neutralised header, same length, valid IPv6 checksums', () => {
    const {s, ports} = session('fix')
    run(s, tcpConversation({client: CLIENT, server: SERVER, clientPort: 40002, serverPort: 80, toServer: enc(SHELLSHOCK), toClient: enc(RESPONSE), maxSegment: 11, seed: 5, duplicate: 0.3}))
    const up = stream(ports[1].frames)
    expect(up.bytes.length).toBe(SHELLSHOCK.length)
    expect(up.bytes).not.toContain('() {')
    expect(up.bytes).toContain('GET /cgi-bin/status HTTP/1.1\r\nHost: x\r\n')
    expect(s.forwarder.stats.fixedFrames).toBeGreaterThan(0)
    expect(up.badChecksums).toBe(0)
    expect(stream(ports[0].frames).bytes).toBe(RESPONSE)
  })

  it('IPv6 fragments of an exploit are held until complete, then dropped with the flow', () => {
    const {s, ports} = session('drop')
    const frames = fragmented(tcpConversation({client: CLIENT, server: SERVER, clientPort: 40003, serverPort: 80, toServer: enc(SHELLSHOCK), maxSegment: 2000, seed: 1}), 16)
    expect(frames.length).toBeGreaterThan(8)
    run(s, frames)
    const up = stream(ports[1].frames)
    expect(up.fragments).toBe(0)
    expect(up.bytes).toBe('')
    expect(s.forwarder.stats.blockedFlows).toBe(1)
    expect(s.forwarder.fragmentGroups).toBe(0)
    expect(s.forwarder.stats.fragmentsHeld).toBe(0)
  })

  it('IPv6 fragments of a benign request pass, still fragmented, and the response comes back', () => {
    const {s, ports} = session('drop')
    const frames = fragmented(tcpConversation({client: CLIENT, server: SERVER, clientPort: 40004, serverPort: 80, toServer: enc(BENIGN), toClient: enc(RESPONSE), maxSegment: 2000, seed: 2}), 24)
    run(s, frames)
    const up = stream(ports[1].frames)
    expect(up.fragments).toBeGreaterThan(2)
    expect(stream(ports[0].frames).bytes).toBe(RESPONSE)
    expect(s.forwarder.stats.blockedFlows).toBe(0)
    expect(s.forwarder.fragmentGroups).toBe(0)
  })

  it('any segmentation or fragmentation of the exploit over IPv6 is stopped (property)', () => {
    fc.assert(fc.property(fc.integer({min: 1, max: 40}), fc.integer({min: 1, max: 1 << 20}), fc.constantFrom(0, 8, 16, 64), (seg, seed, fragSize) => {
      const {s, ports} = session('drop')
      let conv = tcpConversation({client: CLIENT, server: SERVER, clientPort: 41000, serverPort: 80, toServer: enc(SHELLSHOCK), maxSegment: seg, seed})
      if (fragSize > 0) conv = fragmented(conv, fragSize)
      run(s, conv)
      const got = stream(ports[1].frames).bytes
      expect(got).not.toContain('/bin/cat')
      expect(s.forwarder.stats.heldNow).toBe(0)
      expect(s.forwarder.fragmentGroups).toBeLessThanOrEqual(s.forwarder.limits.fragmentDatagrams)
    }), {numRuns: FUZZ_RUNS})
  })
})

/**
 * nftables diverts every fragment to or from a protected host whatever its port (non-first
 * fragments carry none), so the engine sees fragments of unprotected ports too, mid-stream (the
 * handshake went through the kernel bridge): judged by the default rules, like any flow that
 * matches no service.
 */
describe('Forwarder over IPv6: fragments to an unprotected port of a protected host', () => {
  const fragmentsOnly = (toServer: string, clientPort: number) => fragmented(
    tcpConversation({client: CLIENT, server: SERVER, clientPort, serverPort: 8080, toServer: enc(toServer), maxSegment: 2000, seed: 1}), 32,
  ).filter((f) => new PacketDecoder().decode(f.data, LINKTYPE.ETHERNET).isFragment)

  it('a benign request is forwarded, fragments intact (after the detection hold at the latest)', () => {
    const {s, ports} = session('drop')
    const frames = fragmentsOnly(BENIGN, 42000)
    expect(frames.length).toBeGreaterThan(2)
    run(s, frames)
    s.forwarder.sweep(frames.at(-1)!.tsUs + s.forwarder.limits.detectHoldTimeoutUs + 1)
    expect(ports[1].frames.length).toBe(frames.length)
    expect(ports[1].frames.map((f) => Buffer.from(f).toString('hex'))).toEqual(frames.map((f) => Buffer.from(f.data).toString('hex')))
    expect(s.forwarder.stats.heldNow).toBe(0)
    expect(s.forwarder.stats.blockedFlows).toBe(0)
  })

  it('an exploit is judged by the default rules and dropped: no fragment reaches the server, both ends get a reset', () => {
    const {s, ports} = session('drop')
    run(s, fragmentsOnly(SHELLSHOCK, 42001))
    const dec = new PacketDecoder()
    const sent = (i: 0 | 1) => ports[i].frames.map((f) => {
      const p = dec.decode(f, LINKTYPE.ETHERNET)
      return {rst: (p.tcpFlags & RST) !== 0, fragment: p.isFragment, payload: p.payloadLength, ok: l4ChecksumOk(p), src: p.src}
    })
    expect(sent(1)).toEqual([{rst: true, fragment: false, payload: 0, ok: true, src: CLIENT}])
    expect(sent(0)).toEqual([{rst: true, fragment: false, payload: 0, ok: true, src: SERVER}])
    expect(s.forwarder.stats.blockedFlows).toBe(1)
  })
})
