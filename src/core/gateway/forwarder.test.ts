import {describe, it, expect, beforeAll} from 'vitest'
import fc from 'fast-check'
import {tcpConversation} from '../../../test/support/tcp-conversation.js'
import {ACK, PSH, PacketDecoder, RST, SYN, l4ChecksumOk} from '../packet/decode.js'
import {buildTcpPacket, buildUdpPacket, fragmentIpv4, buildEthernet} from '../packet/encode.js'
import {LINKTYPE} from '../packet/linktype.js'
import {engineDetection, type Detection} from '../engine/detection.js'
import type {EveEvent} from '../events/eve.js'
import {GatewaySession} from './session.js'
import {applyEdits, type GatewayPort} from './forwarder.js'
import type {Policy} from './policy.js'
import {frameView} from './live.js'

const FUZZ_RUNS = Number(process.env.PATCHPOINT_FUZZ_RUNS ?? 20)
const CLIENT = '10.0.0.1'
const SERVER = '10.0.0.3'
const enc = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'))
const SHELLSHOCK = 'GET /cgi-bin/status HTTP/1.1\r\nHost: x\r\nUser-Agent: () { :; }; /bin/cat /etc/passwd\r\nAccept: */*\r\n\r\n'
const BENIGN = 'GET /index.html HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n'
const RESPONSE = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'

class FakePort implements GatewayPort {
  frames: Uint8Array[] = []
  send(frame: Uint8Array): void {
    this.frames.push(frame.slice())
  }
}

let detection: Detection
beforeAll(async () => {
  detection = await engineDetection()
})

function session(action: 'fix' | 'drop' | 'log', limits = {}, failClosed = false) {
  const policy: Policy = {services: [{ip: SERVER, port: 80, proto: 'tcp', action}]}
  const ports = [new FakePort(), new FakePort()] as const
  const events: EveEvent[] = []
  const s = new GatewaySession({detection, policy, ports, onEvent: (e) => events.push(e), limits, failClosed})
  return {s, ports, events}
}

/** client frames arrive on port 0, server frames on port 1 */
function run(s: GatewaySession, frames: {tsUs: number; data: Uint8Array}[]) {
  const dec = new PacketDecoder()
  for (const f of frames) {
    const p = dec.decode(f.data, LINKTYPE.ETHERNET)
    s.forwarder.handle(f.data.slice(), p.src === CLIENT ? 0 : 1, f.tsUs)
  }
}

/** the TCP payload bytes of the frames (in seq order, duplicates removed), and resets */
function stream(frames: Uint8Array[]): {bytes: string; resets: number; badChecksums: number} {
  const dec = new PacketDecoder()
  const bySeq = new Map<number, string>()
  let resets = 0
  let bad = 0
  for (const f of frames) {
    const p = dec.decode(f, LINKTYPE.ETHERNET)
    if (p.l4 !== 'tcp') continue
    if (l4ChecksumOk(p) === false) bad++
    if ((p.tcpFlags & RST) !== 0) resets++
    if (p.payloadLength > 0) bySeq.set(p.seq, Buffer.from(p.payload).toString('latin1'))
  }
  const seqs = [...bySeq.keys()].sort((a, b) => a - b)
  let out = ''
  let next = seqs[0] ?? 0
  for (const s of seqs) {
    const v = bySeq.get(s)!
    if (s + v.length <= next) continue
    out += v.slice(Math.max(0, next - s))
    next = s + v.length
  }
  return {bytes: out, resets, badChecksums: bad}
}

describe('Forwarder (inline decisions)', () => {
  it('forwards a benign conversation byte for byte, both ways, nothing held at the end', () => {
    const {s, ports} = session('drop')
    run(s, tcpConversation({client: CLIENT, server: SERVER, clientPort: 40000, serverPort: 80, toServer: enc(BENIGN), toClient: enc(RESPONSE), maxSegment: 7, seed: 3}))
    expect(stream(ports[1].frames).bytes).toBe(BENIGN)
    expect(stream(ports[0].frames).bytes).toBe(RESPONSE)
    expect(s.forwarder.stats.heldNow).toBe(0)
    expect(s.forwarder.stats.held).toBeGreaterThan(0) // the request head was held until judged
    expect(s.forwarder.stats.resetsSent).toBe(0)
  })

  it('drop: the exploit never reaches the server, both ends get a reset, later packets discarded', () => {
    const {s, ports, events} = session('drop')
    run(s, tcpConversation({client: CLIENT, server: SERVER, clientPort: 40001, serverPort: 80, toServer: enc(SHELLSHOCK), toClient: enc(RESPONSE), maxSegment: 5, seed: 9}))
    const toServer = stream(ports[1].frames)
    expect(toServer.bytes).not.toContain('() {')
    expect(toServer.bytes).toBe('')
    expect(toServer.resets).toBeGreaterThanOrEqual(1)
    expect(toServer.resets + stream(ports[0].frames).resets).toBeLessThanOrEqual(2 + 8) // bounded: resetsPerFlow
    expect(stream(ports[0].frames).resets).toBeGreaterThanOrEqual(1)
    expect(stream(ports[0].frames).bytes).toBe('') // the response of a blocked flow is discarded
    expect(events.some((e) => e.event_type === 'alert')).toBe(true)
    expect(s.forwarder.stats.blockedFlows).toBe(1)
  })

  it('fix: the server receives the neutralised header, same length, valid checksums', () => {
    const {s, ports} = session('fix')
    run(s, tcpConversation({client: CLIENT, server: SERVER, clientPort: 40002, serverPort: 80, toServer: enc(SHELLSHOCK), toClient: enc(RESPONSE), maxSegment: 11, seed: 5}))
    const got = stream(ports[1].frames)
    expect(got.bytes.length).toBe(SHELLSHOCK.length)
    expect(got.bytes).not.toContain('() {')
    expect(got.bytes).toContain('GET /cgi-bin/status HTTP/1.1\r\nHost: x\r\n')
    expect(got.badChecksums).toBe(0)
    expect(stream(ports[0].frames).bytes).toBe(RESPONSE)
  })

  it('fix: retransmissions of fixed bytes are rewritten the same way', () => {
    const {s, ports} = session('fix')
    run(s, tcpConversation({client: CLIENT, server: SERVER, clientPort: 40003, serverPort: 80, toServer: enc(SHELLSHOCK), maxSegment: 9, seed: 7, duplicate: 1}))
    const dec = new PacketDecoder()
    for (const f of ports[1].frames) {
      const p = dec.decode(f, LINKTYPE.ETHERNET)
      expect(Buffer.from(p.payload).toString('latin1')).not.toMatch(/\(\)|\{ :/)
    }
  })

  it('log: the exploit arrives unchanged and an alert is written', () => {
    const {s, ports, events} = session('log')
    run(s, tcpConversation({client: CLIENT, server: SERVER, clientPort: 40004, serverPort: 80, toServer: enc(SHELLSHOCK), maxSegment: 13, seed: 2}))
    expect(stream(ports[1].frames).bytes).toBe(SHELLSHOCK)
    expect(events.filter((e) => e.event_type === 'alert').length).toBe(1)
  })

  it('hold overflow releases unjudged and reports, bounded', () => {
    const {s, ports, events} = session('drop', {holdPacketsPerFlow: 3})
    const head = 'GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ' + 'a'.repeat(200)
    run(s, tcpConversation({client: CLIENT, server: SERVER, clientPort: 40005, serverPort: 80, toServer: enc(head), maxSegment: 20, seed: 4}))
    expect(events.some((e) => e.event_type === 'anomaly' && e.anomaly.event === 'gateway.hold_overflow')).toBe(true)
    expect(stream(ports[1].frames).bytes).toBe(head)
    expect(s.forwarder.stats.heldNow).toBe(0)
  })

  it('hold overflow with fail-closed blocks the flow', () => {
    const {s, ports} = session('drop', {holdPacketsPerFlow: 3}, true)
    const head = 'GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ' + 'a'.repeat(200)
    run(s, tcpConversation({client: CLIENT, server: SERVER, clientPort: 40006, serverPort: 80, toServer: enc(head), maxSegment: 20, seed: 4}))
    expect(stream(ports[1].frames).bytes).toBe('')
    expect(s.forwarder.stats.blockedFlows).toBe(1)
  })

  it('IP fragments of an exploit are held until complete, then dropped with the flow', () => {
    const {s, ports} = session('drop')
    const conv = tcpConversation({client: CLIENT, server: SERVER, clientPort: 40007, serverPort: 80, toServer: enc(SHELLSHOCK), maxSegment: 2000, seed: 1})
    const dec = new PacketDecoder()
    const frames: {tsUs: number; data: Uint8Array}[] = []
    for (const f of conv) {
      const p = dec.decode(f.data, LINKTYPE.ETHERNET)
      if (p.src === CLIENT && p.payloadLength > 0) {
        const eth = f.data.subarray(0, 14)
        for (const frag of fragmentIpv4(p.ipDatagram.slice(), 16)) {
          frames.push({tsUs: f.tsUs, data: buildEthernet({src: eth.subarray(6, 12), dst: eth.subarray(0, 6), etherType: 0x0800}, frag)})
        }
      } else frames.push(f)
    }
    run(s, frames)
    for (const f of ports[1].frames) {
      const p = dec.decode(f, LINKTYPE.ETHERNET)
      expect(p.isFragment).toBe(false)
    }
    expect(s.forwarder.stats.blockedFlows).toBe(1)
    expect(s.forwarder.fragmentGroups).toBe(0)
  })

  it('3-byte segments handed over in ONE reused capture buffer (as LivePort does) are held, judged and dropped', () => {
    const {s, ports, events} = session('drop')
    const shared = frameView(Buffer.alloc(65_535))
    // what scapy sends: handshake, then the request in 3-byte segments, no server ACK in between
    const c = {src: CLIENT, dst: SERVER, srcPort: 40010, dstPort: 80, srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02'}
    const frames: [Uint8Array, 0 | 1][] = [
      [buildTcpPacket({...c, seq: 1000, flags: SYN, window: 8192}), 0],
      [buildTcpPacket({src: SERVER, dst: CLIENT, srcPort: 80, dstPort: 40010, srcMac: c.dstMac, dstMac: c.srcMac, seq: 7000, ack: 1001, flags: SYN | ACK, window: 65535}), 1],
      [buildTcpPacket({...c, seq: 1001, ack: 7001, flags: ACK, window: 8192}), 0],
    ]
    const req = enc(SHELLSHOCK)
    for (let i = 0; i < req.length; i += 3) frames.push([buildTcpPacket({...c, seq: 1001 + i, ack: 7001, flags: PSH | ACK, window: 8192, payload: req.subarray(i, i + 3)}), 0])
    let t = 1_700_000_000_000_000
    for (const [f, port] of frames) {
      shared.fill(0x41)
      shared.set(f)
      s.forwarder.handle(shared.subarray(0, f.length), port, (t += 5000))
    }
    expect(events.some((e) => e.event_type === 'alert')).toBe(true)
    expect(stream(ports[1].frames).bytes).toBe('')
    expect(s.forwarder.stats.blockedFlows).toBe(1)
  })

  /** handshake frames of CLIENT:cport -> SERVER:80 and a builder of client data segments */
  function handshake(cport: number) {
    const c = {src: CLIENT, dst: SERVER, srcPort: cport, dstPort: 80, srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02'}
    const frames: [Uint8Array, 0 | 1][] = [
      [buildTcpPacket({...c, seq: 1000, flags: SYN, window: 8192}), 0],
      [buildTcpPacket({src: SERVER, dst: CLIENT, srcPort: 80, dstPort: cport, srcMac: c.dstMac, dstMac: c.srcMac, seq: 7000, ack: 1001, flags: SYN | ACK, window: 65535}), 1],
      [buildTcpPacket({...c, seq: 1001, ack: 7001, flags: ACK, window: 8192}), 0],
    ]
    const data = (off: number, payload: Uint8Array) => buildTcpPacket({...c, seq: 1001 + off, ack: 7001, flags: PSH | ACK, window: 8192, payload})
    return {frames, data}
  }

  it('a client that says less than detection needs and waits is released after detectHoldTimeoutUs, not after holdTimeoutUs', () => {
    const {s, ports} = session('drop')
    const h = handshake(40011)
    let t = 1_700_000_000_000_000
    for (const [f, port] of h.frames) s.forwarder.handle(f, port, (t += 1000))
    const cookie = new Uint8Array(37).fill(0x8f)
    s.forwarder.handle(h.data(0, cookie), 0, (t += 1000))
    s.forwarder.sweep(t + 100e3)
    expect(stream(ports[1].frames).bytes).toBe('')
    expect(s.forwarder.stats.heldNow).toBe(1)
    s.forwarder.sweep(t + s.forwarder.limits.detectHoldTimeoutUs + 1000)
    expect(stream(ports[1].frames).bytes.length).toBe(37)
    expect(s.forwarder.stats.heldNow).toBe(0)
  })

  it('hold timeout releases the prefix but keeps judging: an exploit sent after a long pause is still dropped', () => {
    const {s, ports, events} = session('drop')
    const h = handshake(40012)
    let t = 1_700_000_000_000_000
    for (const [f, port] of h.frames) s.forwarder.handle(f, port, (t += 1000))
    const head = enc('GET /cgi-bin/status HTTP/1.1\r\nHost: x\r\n')
    s.forwarder.handle(h.data(0, head), 0, (t += 1000))
    expect(stream(ports[1].frames).bytes).toBe('')
    t += s.forwarder.limits.holdTimeoutUs + 1000
    s.forwarder.sweep(t)
    expect(stream(ports[1].frames).bytes).toBe(Buffer.from(head).toString('latin1'))
    expect(events.some((e) => e.event_type === 'anomaly' && e.anomaly.event === 'gateway.hold_timeout')).toBe(true)
    const rest = enc('User-Agent: () { :; }; /bin/cat /etc/passwd\r\n\r\n')
    s.forwarder.handle(h.data(head.length, rest), 0, (t += 1000))
    expect(s.forwarder.stats.blockedFlows).toBe(1)
    expect(stream(ports[1].frames).bytes).not.toContain('() {')
  })

  it('a SYN flood from spoofed sources is forwarded without gateway flow state', () => {
    const {s, ports} = session('drop')
    const n = 2000
    for (let i = 0; i < n; i++) {
      const src = `198.51.${(i >> 8) & 255}.${i & 255}`
      s.forwarder.handle(buildTcpPacket({src, dst: SERVER, srcPort: 1024 + (i % 60000), dstPort: 80, srcMac: '02:00:00:00:00:09', dstMac: '02:00:00:00:00:02', seq: i, flags: SYN, window: 512}), 0, 1_700_000_000_000_000 + i)
    }
    expect(ports[1].frames.length).toBe(n)
    expect(s.forwarder.flowStates).toBe(0)
    expect(s.engine.flowCount).toBeGreaterThan(0)
  })

  it('frameView: slices of a capture frame are copies, not views of the reused buffer', () => {
    const buf = Buffer.from('GET / HTTP/1.1')
    const v = frameView(buf)
    expect(Buffer.isBuffer(v)).toBe(false)
    const kept = v.subarray(0, 3).slice()
    buf.write('XYZ')
    expect(Buffer.from(kept).toString()).toBe('GET')
  })

  it('UDP datagrams to unprotected ports pass unchanged', () => {
    const {s, ports} = session('drop')
    const f = buildUdpPacket({src: CLIENT, dst: SERVER, srcPort: 5000, dstPort: 9999, payload: enc('hello')})
    s.forwarder.handle(f.slice(), 0, 1)
    expect(ports[1].frames).toHaveLength(1)
    expect(Buffer.from(ports[1].frames[0]).equals(Buffer.from(f))).toBe(true)
  })

  it('any segmentation of the exploit is stopped; any of the benign request passes intact (property)', () => {
    fc.assert(fc.property(fc.integer({min: 1, max: 40}), fc.integer({min: 1, max: 1 << 30}), fc.boolean(), (maxSegment, seed, shuffle) => {
      const bad = session('drop')
      run(bad.s, tcpConversation({client: CLIENT, server: SERVER, clientPort: 41000, serverPort: 80, toServer: enc(SHELLSHOCK), maxSegment, seed, shuffle, duplicate: 0.2}))
      expect(stream(bad.ports[1].frames).bytes).not.toContain('() {')
      const good = session('drop')
      run(good.s, tcpConversation({client: CLIENT, server: SERVER, clientPort: 41001, serverPort: 80, toServer: enc(BENIGN), maxSegment, seed, shuffle, duplicate: 0.2}))
      expect(stream(good.ports[1].frames).bytes).toBe(BENIGN)
      expect(good.s.forwarder.stats.heldNow).toBe(0)
      expect(good.s.forwarder.flowStates).toBeLessThanOrEqual(1)
    }), {numRuns: FUZZ_RUNS})
  })
})

describe('applyEdits', () => {
  it('writes only the overlap of each same-length edit with the packet', () => {
    const frame = new Uint8Array(20).fill(0x61)
    const changed = applyEdits(frame, 10, 100, 10, [
      {off: 95, len: 7, data: enc('XXXXXXX')}, // covers 100..101
      {off: 108, len: 4, data: enc('YYYY')}, // covers 108..109
      {off: 50, len: 3, data: enc('ZZ')}, // length-changing: ignored
    ])
    expect(changed).toBe(true)
    expect(Buffer.from(frame).toString('latin1')).toBe('aaaaaaaaaaXXaaaaaaYY')
    expect(applyEdits(frame, 10, 200, 10, [{off: 0, len: 2, data: enc('QQ')}])).toBe(false)
  })
})

describe('Forwarder bypass (server->client direction handed to the kernel)', () => {
  const ELEMENT = `${SERVER} . 80 . ${CLIENT} . 40000`
  const tick = () => new Promise<void>((r) => setImmediate(r))

  function bypassSession(opts: {limits?: object; rules?: Detection['rules']; policy?: Policy} = {}) {
    const policy: Policy = opts.policy ?? {services: [{ip: SERVER, port: 80, proto: 'tcp', protocol: 'http', action: 'drop'}]}
    const ports = [new FakePort(), new FakePort()] as const
    const events: EveEvent[] = []
    const lines: string[] = []
    const det = opts.rules ? {...detection, rules: opts.rules} : detection
    const s = new GatewaySession({detection: det, policy, ports, onEvent: (e) => events.push(e), limits: opts.limits, nftWrite: (l) => lines.push(l)})
    return {s, ports, events, lines}
  }

  function frames(toServer: string, toClient: string, clientPort = 40000) {
    return tcpConversation({client: CLIENT, server: SERVER, clientPort, serverPort: 80, toServer: enc(toServer), toClient: enc(toClient), maxSegment: 9, seed: 5})
  }

  it('bypasses the responses of an HTTP flow once it is established and detected; nothing is lost; the element goes at the end', async () => {
    const {s, ports, lines} = bypassSession()
    run(s, frames(BENIGN, RESPONSE))
    // the request was judged here, the response reached the client (forwarded: no copy proved the kernel took over)
    expect(stream(ports[1].frames).bytes).toBe(BENIGN)
    expect(stream(ports[0].frames).bytes).toBe(RESPONSE)
    const st = s.forwarder.stats
    expect(st.bypassedFlows).toBe(1)
    expect(st.bypassForwarded).toBeGreaterThan(0)
    expect(st.bypassDiscarded).toBe(0)
    await tick()
    expect(lines.join('\n')).toContain(`add element bridge patchpoint bypass4 { ${ELEMENT} timeout 60s }`)
    // one batch per event-loop turn
    expect(lines.length).toBe(1)
    s.forwarder.flushAll()
    await tick()
    expect(lines[1]).toContain(`delete element bridge patchpoint bypass4 { ${ELEMENT} }`)
    expect(st.bypassedNow).toBe(0)
  })

  it('the engine keeps no response bytes and reports no gaps for the bypassed direction', async () => {
    const {s, events} = bypassSession()
    const conv = frames(BENIGN, RESPONSE + 'x'.repeat(3000))
    // drop the server's data segments: the kernel forwarded them, only the client's ACKs say so
    const dec = new PacketDecoder()
    let flow = null as null | {tcp: {bytesHeld: number; direction(c: boolean): {gaps: number; nextOffset: number}} | null}
    let heldBeforeFin = -1
    for (const f of conv) {
      const p = dec.decode(f.data, LINKTYPE.ETHERNET)
      if (p.src === SERVER && p.payloadLength > 0 && s.forwarder.stats.bypassedFlows > 0) continue
      // pure ACKs never reach the engine (the kernel forwards them: nft.ts PURE_ACK4_NFT)
      if (p.payloadLength === 0 && p.tcpFlags === ACK) continue
      if ((p.tcpFlags & 0x01) !== 0 && heldBeforeFin < 0) heldBeforeFin = flow!.tcp!.bytesHeld
      s.forwarder.handle(f.data.slice(), p.src === CLIENT ? 0 : 1, f.tsUs)
      flow = (s.engine.placement.flow as typeof flow) ?? flow
    }
    expect(s.forwarder.stats.bypassedFlows).toBe(1)
    const toClient = flow!.tcp!.direction(false)
    expect(toClient.gaps).toBe(0)
    // the client's ACK of the server's FIN moved the position over every bypassed byte
    expect(toClient.nextOffset).toBe(RESPONSE.length + 3000 + 1) // + the FIN
    expect(events.some((e) => e.event_type === 'anomaly' && (e as {anomaly: {event: string}}).anomaly.event === 'tcp.gap')).toBe(false)
    // the server's ACKs travel in the bypassed direction: the client's bytes count as acknowledged
    // (nothing retained while the flow was open)
    expect(heldBeforeFin).toBe(0)
  })

  it('a copy seen leaving the client port proves the kernel forwards: later server copies are discarded, earlier ones forwarded', () => {
    const {s, ports} = bypassSession()
    const conv = frames(BENIGN, 'HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n' + 'y'.repeat(40))
    const dec = new PacketDecoder()
    const serverData = conv.filter((f) => {
      const p = dec.decode(f.data, LINKTYPE.ETHERNET)
      return p.src === SERVER && p.payloadLength > 0
    })
    const rest = conv.filter((f) => !serverData.includes(f))
    // handshake, request, server's ACK (everything before the response data)
    const cut = rest.findIndex((f) => (dec.decode(f.data, LINKTYPE.ETHERNET).tcpFlags & 0x01) !== 0)
    run(s, rest.slice(0, cut))
    expect(s.forwarder.stats.bypassedFlows).toBe(1)
    const before = ports[0].frames.length
    // segment 0 arrives from the server before the kernel applied the element: forwarded
    s.forwarder.handle(serverData[0].data.slice(), 1, 1)
    expect(ports[0].frames.length).toBe(before + 1)
    // the tap's copy of segment 2 leaving the client port: the kernel forwards from its seq on
    s.forwarder.handle(serverData[2].data.slice(), 0, 2)
    s.forwarder.handle(serverData[1].data.slice(), 1, 3)
    s.forwarder.handle(serverData[2].data.slice(), 1, 4)
    s.forwarder.handle(serverData[3].data.slice(), 1, 5)
    // segment 1 (before the boundary) forwarded, 2 and 3 discarded, nothing sent towards the server
    expect(ports[0].frames.length).toBe(before + 2)
    expect(s.forwarder.stats.bypassDiscarded).toBe(3)
    expect(ports[1].frames.every((f) => dec.decode(f, LINKTYPE.ETHERNET).src === CLIENT)).toBe(true)
  })

  it('never bypasses CONNECT or Upgrade requests, protocols outside the list, or services with response rules', async () => {
    const ws = 'GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'
    const a = bypassSession()
    run(a.s, frames(ws, 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'))
    expect(a.s.forwarder.stats.bypassedFlows).toBe(0)
    const b = bypassSession()
    run(b.s, frames('CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n', 'HTTP/1.1 200 OK\r\n\r\n'))
    expect(b.s.forwarder.stats.bypassedFlows).toBe(0)
    // a response rule for HTTP enabled on the service
    const base = detection.rules.find((r) => r.protocol === 'http')!
    const c = bypassSession({rules: [...detection.rules, {...base, id: 'PPD-TEST-RESPONSE', direction: 'toclient'}]})
    run(c.s, frames(BENIGN, RESPONSE))
    expect(c.s.forwarder.stats.bypassedFlows).toBe(0)
    // ... but not on this service (its rule list names another rule): bypassed
    const d = bypassSession({
      rules: [...detection.rules, {...base, id: 'PPD-TEST-RESPONSE', direction: 'toclient'}],
      policy: {services: [{ip: SERVER, port: 80, proto: 'tcp', protocol: 'http', action: 'drop', rules: [base.id]}]},
    })
    run(d.s, frames(BENIGN, RESPONSE))
    expect(d.s.forwarder.stats.bypassedFlows).toBe(1)
    // no nft writer (tests, proxy): nothing is bypassed
    const e = session('drop')
    run(e.s, frames(BENIGN, RESPONSE))
    expect(e.s.forwarder.stats.bypassedFlows).toBe(0)
  })

  it('an exploit on a bypassed keep-alive flow is still dropped: resets at the sequence numbers the ends expect, element deleted', async () => {
    const {s, ports, lines} = bypassSession()
    // request 1 and its response (bypassed), without the closing FINs
    const first = frames(BENIGN, RESPONSE).slice(0, -3)
    run(s, first)
    expect(s.forwarder.stats.bypassedFlows).toBe(1)
    // request 2 on the same connection: the exploit, in two segments
    const cSeq = 1001 + BENIGN.length
    const sNext = 500_001 + RESPONSE.length
    const c = {src: CLIENT, dst: SERVER, srcPort: 40000, dstPort: 80, srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02'}
    const half = 20
    const t = first[first.length - 1].tsUs
    run(s, [
      {tsUs: t + 100, data: buildTcpPacket({...c, seq: cSeq, ack: sNext, flags: ACK | PSH, window: 65535, payload: enc(SHELLSHOCK.slice(0, half))})},
      {tsUs: t + 200, data: buildTcpPacket({...c, seq: cSeq + half, ack: sNext, flags: ACK | PSH, window: 65535, payload: enc(SHELLSHOCK.slice(half))})},
    ])
    expect(s.forwarder.stats.blockedFlows).toBe(1)
    expect(stream(ports[1].frames).bytes).toBe(BENIGN)
    const dec = new PacketDecoder()
    const resets = [0, 1].map((i) => ports[i].frames.map((f) => dec.decode(f, LINKTYPE.ETHERNET)).filter((p) => (p.tcpFlags & RST) !== 0).map((p) => ({seq: p.seq, src: p.src})))
    // to the client, in the server's name, at the client's next expected byte (the ACK field of its packets)
    expect(resets[0]).toContainEqual({seq: sNext, src: SERVER})
    // to the server, in the client's name, at the first byte it has not received (the held first half)
    expect(resets[1]).toContainEqual({seq: cSeq, src: CLIENT})
    await tick()
    expect(lines.join('\n')).toContain(`delete element bridge patchpoint bypass4 { ${ELEMENT} }`)
    expect(s.forwarder.stats.bypassedNow).toBe(0)
  })

  it('is bounded: at bypassFlows the next flows stay in the engine', () => {
    const {s} = bypassSession({limits: {bypassFlows: 2}})
    for (let i = 0; i < 5; i++) run(s, frames(BENIGN, RESPONSE, 42000 + i).slice(0, -3))
    expect(s.forwarder.stats.bypassedFlows).toBe(2)
    expect(s.forwarder.stats.bypassedNow).toBe(2)
  })

  it('refreshes the element while the flow lives (sweep)', async () => {
    const {s, lines} = bypassSession()
    const conv = frames(BENIGN, RESPONSE)
    run(s, conv.slice(0, -3))
    const t0 = conv[conv.length - 4].tsUs
    s.forwarder.sweep(t0 + 5e6)
    s.forwarder.sweep(t0 + 25e6)
    await tick()
    const all = lines.join('; ')
    expect(all.split(`delete element bridge patchpoint bypass4 { ${ELEMENT} }`).length - 1).toBe(1)
    // refresh = add, delete, add: the delete cannot fail and the last add renews the timeout
    expect(all).toMatch(/add element [^;]*bypass4[^;]*; delete element [^;]*bypass4[^;]*; add element [^;]*bypass4/)
  })
})
