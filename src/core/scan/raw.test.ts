import {describe, it, expect} from 'vitest'
import {PacketDecoder, SYN, ACK, RST} from '../packet/decode.js'
import {buildArp, buildEthernet, buildTcpPacket} from '../packet/encode.js'
import {probeCookie, RawScanner, sendPaced, type RawLink, type RawReply} from './raw.js'
import {ipv4ToInt} from './route.js'

/** A fake segment: host 10.0.0.5 answers ARP, has port 22 open and 23 closed; 10.0.0.6 is silent. */
class FakeLink implements RawLink {
  handler: ((f: Uint8Array) => void) | null = null
  sent: Uint8Array[] = []
  private readonly dec = new PacketDecoder()
  onFrame(h: (f: Uint8Array) => void): void { this.handler = h }
  close(): void {}
  send(frame: Uint8Array): void {
    this.sent.push(Uint8Array.from(frame))
    const p = this.dec.decode(frame, 1)
    const me = '10.0.0.5'
    const mac = '52:54:00:00:00:05'
    if (p.net === 'arp' && p.arp.targetIp === me) {
      this.handler?.(buildEthernet({src: mac, dst: p.srcMac, etherType: 0x0806}, buildArp({op: 2, senderMac: mac, senderIp: me, targetMac: p.srcMac, targetIp: p.src || p.arp.senderIp})))
    } else if (p.l4 === 'tcp' && p.dst === me) {
      const open = p.dstPort === 22
      this.handler?.(buildTcpPacket({src: me, dst: p.src, srcMac: mac, dstMac: p.srcMac, srcPort: p.dstPort, dstPort: p.srcPort, seq: 777, ack: (p.seq + 1) >>> 0, flags: open ? SYN | ACK : RST | ACK, window: 64240, ttl: 64}))
      // a forged SYN-ACK with a wrong ack must be ignored
      this.handler?.(buildTcpPacket({src: me, dst: p.src, srcPort: 80, dstPort: p.srcPort, seq: 1, ack: 12345, flags: SYN | ACK}))
    }
  }
}

describe('RawScanner (no root: fake link)', () => {
  it('matches ARP, SYN-ACK and RST replies to probes by cookie, ignores forged ones', async () => {
    const link = new FakeLink()
    const replies: RawReply[] = []
    const s = new RawScanner({link, srcIp: '10.0.0.2', srcMac: '02:00:00:00:00:02', srcPort: 45000, secret: 42, onReply: (r) => replies.push({...r})})
    s.sendArp(ipv4ToInt('10.0.0.5'))
    s.sendArp(ipv4ToInt('10.0.0.6'))
    const mac = new Uint8Array([0x52, 0x54, 0, 0, 0, 5])
    s.sendTcp(ipv4ToInt('10.0.0.5'), mac, 22, false)
    s.sendTcp(ipv4ToInt('10.0.0.5'), mac, 23, false)
    expect(replies.map((r) => `${r.kind}:${r.ip}:${r.port}`)).toEqual(['arp:10.0.0.5:0', 'syn-ack:10.0.0.5:22', 'rst:10.0.0.5:23'])
    expect(replies[1]).toMatchObject({probe: 'syn', ttl: 64, window: 64240})
    // the SYN carried the cookie as its sequence number, with a valid checksum
    const p = new PacketDecoder().decode(link.sent[2], 1)
    expect(p.seq).toBe(probeCookie(ipv4ToInt('10.0.0.5'), 22, 42))
    expect(p.hasFlag(SYN)).toBe(true)
  })

  it('sendPaced keeps the rate and skips answered probes on retries', async () => {
    const sent: number[] = []
    const t0 = performance.now()
    await sendPaced(50, (i) => sent.push(i), (i, round) => round > 0 && i % 2 === 0, {rate: 1000, retries: 1, waitMs: 10})
    const ms = performance.now() - t0
    expect(sent.length).toBe(75)
    expect(ms).toBeGreaterThanOrEqual(60)
  })
})
