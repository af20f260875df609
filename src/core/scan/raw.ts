/**
 * Stateless raw probing through libpcap (`cap`): ARP requests, ICMP echo and timestamp requests,
 * TCP SYN and TCP ACK, sent at a fixed rate from prebuilt frame templates patched in place, with
 * replies matched to probes by a cookie instead of a table of sent probes (the masscan/zmap
 * design):
 *
 * - TCP SYN: sequence number = cookie(dst, dport); a SYN-ACK or RST acknowledges cookie + 1.
 * - TCP ACK: acknowledgment number = cookie(dst, dport); the RST it draws carries seq = cookie.
 * - ICMP echo / timestamp: identifier = cookie(dst, 0) & 0xffff.
 * - ARP: replies whose sender address is one of the targets.
 *
 * The cookie is keyed by a random per-scan secret, so stray or spoofed packets do not count. The
 * capture Buffer is held on the scanner for the handle's whole life (NOTES.md: cap does not keep
 * it alive). The frame source is an interface (`RawLink`) so tests drive the scanner without root.
 */
import {createRequire} from 'node:module'
import {randomBytes} from 'node:crypto'
import {setTimeout as sleep} from 'node:timers/promises'
import {PacketDecoder, SYN, ACK, RST} from '../packet/decode.js'
import {buildArp, buildEthernet, buildTcpPacket, buildIcmpEcho, buildIpv4} from '../packet/encode.js'
import {internetChecksum, pseudoHeaderSum} from '../packet/checksum.js'
import {parseIp, parseMac} from '../packet/address.js'
import {keepCapHandle} from '../capture/cap-handles.js'
import {permissionError} from '../errors.js'
import {intToIpv4, ipv4ToInt} from './route.js'

export const RAW_LIMITS = {
  /** packets per second when no --rate is given */
  defaultRate: 5000,
  maxRate: 1_000_000,
  /** libpcap kernel buffer */
  captureBufferBytes: 8 * 1024 * 1024,
  /** largest frame read */
  snapBytes: 65_535,
}

const LINKTYPE_ETHERNET = 1

export interface RawReply {
  kind: 'arp' | 'icmp-echo' | 'icmp-timestamp' | 'icmp-unreachable' | 'syn-ack' | 'rst'
  ip: string
  /** 32-bit address */
  ipInt: number
  mac: string
  /** TCP port the reply came from (0 otherwise) */
  port: number
  /** which probe drew it: 'syn' | 'ack' | 'icmp' | 'arp' */
  probe: 'syn' | 'ack' | 'icmp' | 'arp'
  ttl: number
  window: number
  /** TCP MSS option of a SYN-ACK, -1 when absent */
  mss: number
}

/** Where frames go and come from: libpcap live (CapLink) or a test double. */
export interface RawLink {
  send(frame: Uint8Array): void
  /** frames seen on the interface; `frame` is valid only during the call */
  onFrame(handler: (frame: Uint8Array) => void): void
  close(): void
}

interface CapHandle {
  open(device: string, filter: string, bufSize: number, buffer: Buffer): string
  send(buffer: Buffer, nBytes?: number): void
  close(): void
  on(ev: 'packet', fn: (nbytes: number, truncated: boolean) => void): void
  setMinBytes?: (n: number) => void
}

/** A live libpcap handle on `iface`. Throws a permission UserError when raw access is denied. */
export class CapLink implements RawLink {
  private readonly cap: CapHandle
  /** held for the handle's life: cap writes every packet into it */
  private readonly buffer: Buffer
  private handler: ((frame: Uint8Array) => void) | null = null
  private closed = false

  constructor(iface: string, filter: string) {
    const require = createRequire(import.meta.url)
    const {Cap} = require('cap') as {Cap: new () => CapHandle}
    // never collected, even after close: cap's destructor crashes node (cap-handles.ts)
    this.cap = keepCapHandle(new Cap())
    this.buffer = Buffer.alloc(RAW_LIMITS.snapBytes)
    let linktype: string
    try {
      linktype = this.cap.open(iface, filter, RAW_LIMITS.captureBufferBytes, this.buffer)
    } catch (err) {
      const msg = (err as Error).message
      if (/permit|permission|EPERM|EACCES/i.test(msg)) throw permissionError(`cannot open ${iface} for raw packets: ${msg}`)
      throw err
    }
    if (linktype !== 'ETHERNET') {
      this.cap.close()
      throw new Error(`${iface}: link type ${linktype} is not Ethernet`)
    }
    this.cap.setMinBytes?.(0)
    this.cap.on('packet', (nbytes) => {
      if (this.handler && !this.closed) this.handler(this.buffer.subarray(0, nbytes))
    })
  }

  send(frame: Uint8Array): void {
    if (this.closed) return
    const b = Buffer.isBuffer(frame) ? frame : Buffer.from(frame.buffer, frame.byteOffset, frame.length)
    this.cap.send(b, b.length)
  }

  onFrame(handler: (frame: Uint8Array) => void): void {
    this.handler = handler
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.cap.close()
  }
}

/** 32-bit keyed mix of (address, port): the stateless probe cookie. */
export function probeCookie(ipInt: number, port: number, secret: number): number {
  let h = (ipInt ^ secret) >>> 0
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b)
  h = Math.imul((h ^ (h >>> 16) ^ (port * 0x9e3779b1)) >>> 0, 0x45d9f3b)
  return (h ^ (h >>> 16)) >>> 0
}

export interface RawScannerOptions {
  link: RawLink
  srcIp: string
  srcMac: string
  /** source port of TCP probes (default random 40000-59999) */
  srcPort?: number
  secret?: number
  onReply: (r: RawReply) => void
}

// frame offsets (Ethernet + 20-byte IPv4)
const IP = 14
const L4 = 34

/**
 * Builds probe frames from templates and decodes replies. Sending order and pacing are the
 * caller's (see `sendPaced`).
 */
export class RawScanner {
  readonly srcIp: string
  readonly srcPort: number
  private readonly secret: number
  private readonly srcIpInt: number
  private readonly decoder = new PacketDecoder()
  private readonly arpTpl: Uint8Array
  private readonly tcpTpl: Uint8Array
  private readonly echoTpl: Uint8Array
  private readonly tsTpl: Uint8Array
  private readonly srcIpBytes: Uint8Array
  private ipId = 1
  /** one reused reply object: valid during onReply only */
  private readonly reply: RawReply = {kind: 'arp', ip: '', ipInt: 0, mac: '', port: 0, probe: 'arp', ttl: 0, window: 0, mss: -1}
  sent = 0
  received = 0

  constructor(private readonly opts: RawScannerOptions) {
    this.srcIp = opts.srcIp
    this.srcIpInt = ipv4ToInt(opts.srcIp)
    this.srcIpBytes = parseIp(opts.srcIp) ?? new Uint8Array(4)
    this.secret = opts.secret ?? randomBytes(4).readUInt32BE(0)
    this.srcPort = opts.srcPort ?? 40000 + (randomBytes(2).readUInt16BE(0) % 20000)
    const mac = parseMac(opts.srcMac) ?? new Uint8Array(6)
    const bcast = new Uint8Array([255, 255, 255, 255, 255, 255])
    this.arpTpl = buildEthernet({src: mac, dst: bcast, etherType: 0x0806, pad: true}, buildArp({op: 1, senderMac: mac, senderIp: this.srcIpBytes, targetIp: '0.0.0.0'}))
    this.tcpTpl = buildTcpPacket({src: opts.srcIp, dst: '0.0.0.0', srcMac: mac, dstMac: bcast, srcPort: this.srcPort, dstPort: 0, flags: SYN, window: 1024, options: new Uint8Array([2, 4, 0x05, 0xb4]), ttl: 64})
    this.echoTpl = buildEthernet({src: mac, dst: bcast, etherType: 0x0800}, buildIpv4({src: opts.srcIp, dst: '0.0.0.0', proto: 1, ttl: 64}, buildIcmpEcho({id: 0, seq: 0}, new Uint8Array(0))))
    const ts = new Uint8Array(20)
    ts[0] = 13
    this.tsTpl = buildEthernet({src: mac, dst: bcast, etherType: 0x0800}, buildIpv4({src: opts.srcIp, dst: '0.0.0.0', proto: 1, ttl: 64}, ts))
    opts.link.onFrame((f) => this.onFrame(f))
  }

  /** BPF filter that passes the replies (and little else) */
  static filter(srcIp: string, srcPort: number): string {
    return `(arp and arp[6:2] = 2) or (dst host ${srcIp} and (icmp or (tcp and dst port ${srcPort})))`
  }

  private setIpDst(f: Uint8Array, dstInt: number, dstMac: Uint8Array): void {
    f.set(dstMac, 0)
    f[IP + 16] = dstInt >>> 24
    f[IP + 17] = (dstInt >>> 16) & 0xff
    f[IP + 18] = (dstInt >>> 8) & 0xff
    f[IP + 19] = dstInt & 0xff
    const id = this.ipId = (this.ipId + 1) & 0xffff
    f[IP + 4] = id >>> 8
    f[IP + 5] = id & 0xff
    f[IP + 10] = 0
    f[IP + 11] = 0
    const c = internetChecksum(f, IP, IP + 20)
    f[IP + 10] = c >>> 8
    f[IP + 11] = c & 0xff
  }

  sendArp(dstInt: number): void {
    const f = this.arpTpl
    f[14 + 24] = dstInt >>> 24
    f[14 + 25] = (dstInt >>> 16) & 0xff
    f[14 + 26] = (dstInt >>> 8) & 0xff
    f[14 + 27] = dstInt & 0xff
    this.opts.link.send(f)
    this.sent++
  }

  /** TCP SYN (`ack` false) or ACK probe to dst:port */
  sendTcp(dstInt: number, dstMac: Uint8Array, port: number, ack: boolean): void {
    const f = this.tcpTpl
    this.setIpDst(f, dstInt, dstMac)
    const c = probeCookie(dstInt, port, this.secret)
    f[L4 + 2] = port >>> 8
    f[L4 + 3] = port & 0xff
    const seq = ack ? (c ^ 0x5a5a5a5a) >>> 0 : c
    const an = ack ? c : 0
    f[L4 + 4] = seq >>> 24; f[L4 + 5] = (seq >>> 16) & 0xff; f[L4 + 6] = (seq >>> 8) & 0xff; f[L4 + 7] = seq & 0xff
    f[L4 + 8] = an >>> 24; f[L4 + 9] = (an >>> 16) & 0xff; f[L4 + 10] = (an >>> 8) & 0xff; f[L4 + 11] = an & 0xff
    f[L4 + 13] = ack ? ACK : SYN
    f[L4 + 16] = 0
    f[L4 + 17] = 0
    const len = f.length - L4
    const cs = internetChecksum(f, L4, f.length, pseudoHeaderSum(this.srcIpBytes, f.subarray(IP + 16, IP + 20), 6, len))
    f[L4 + 16] = cs >>> 8
    f[L4 + 17] = cs & 0xff
    this.opts.link.send(f)
    this.sent++
  }

  /** ICMP echo (timestamp false) or timestamp request */
  sendIcmp(dstInt: number, dstMac: Uint8Array, timestamp: boolean, seq: number): void {
    const f = timestamp ? this.tsTpl : this.echoTpl
    this.setIpDst(f, dstInt, dstMac)
    const id = probeCookie(dstInt, 0, this.secret) & 0xffff
    f[L4 + 4] = id >>> 8
    f[L4 + 5] = id & 0xff
    f[L4 + 6] = (seq >>> 8) & 0xff
    f[L4 + 7] = seq & 0xff
    f[L4 + 2] = 0
    f[L4 + 3] = 0
    const cs = internetChecksum(f, L4, f.length)
    f[L4 + 2] = cs >>> 8
    f[L4 + 3] = cs & 0xff
    this.opts.link.send(f)
    this.sent++
  }

  private onFrame(frame: Uint8Array): void {
    const p = this.decoder.decode(frame, LINKTYPE_ETHERNET)
    const r = this.reply
    if (p.net === 'arp') {
      if (p.arp.op !== 2 || p.arp.senderIpOffset < 0) return
      const o = p.arp.senderIpOffset
      r.kind = 'arp'
      r.probe = 'arp'
      r.ipInt = ((frame[o] << 24) | (frame[o + 1] << 16) | (frame[o + 2] << 8) | frame[o + 3]) >>> 0
      r.ip = intToIpv4(r.ipInt)
      r.mac = p.arp.senderMac
      r.port = 0
      r.ttl = 0
      r.window = 0
      r.mss = -1
      this.deliver()
      return
    }
    if (p.ipVersion !== 4 || p.isFragment) return
    const d = p.ipOffset + 16
    const dst = ((frame[d] << 24) | (frame[d + 1] << 16) | (frame[d + 2] << 8) | frame[d + 3]) >>> 0
    if (dst !== this.srcIpInt) return
    const s = p.ipOffset + 12
    const src = ((frame[s] << 24) | (frame[s + 1] << 16) | (frame[s + 2] << 8) | frame[s + 3]) >>> 0
    r.ipInt = src
    r.ttl = p.ttl
    r.window = 0
    r.mss = -1
    r.port = 0
    if (p.l4 === 'icmp') {
      if (p.icmpType === 0 || p.icmpType === 14) {
        if (p.icmpId !== (probeCookie(src, 0, this.secret) & 0xffff)) return
        r.kind = p.icmpType === 0 ? 'icmp-echo' : 'icmp-timestamp'
      } else if (p.icmpType === 3 && p.icmpEmbeddedOffset >= 0 && p.icmpEmbeddedOffset + 20 <= frame.length) {
        // an error from the target itself about one of our probes
        const e = p.icmpEmbeddedOffset
        const edst = ((frame[e + 16] << 24) | (frame[e + 17] << 16) | (frame[e + 18] << 8) | frame[e + 19]) >>> 0
        const esrc = ((frame[e + 12] << 24) | (frame[e + 13] << 16) | (frame[e + 14] << 8) | frame[e + 15]) >>> 0
        if (edst !== src || esrc !== this.srcIpInt) return
        r.kind = 'icmp-unreachable'
      } else return
      r.probe = 'icmp'
    } else if (p.l4 === 'tcp') {
      if (p.dstPort !== this.srcPort) return
      const c = probeCookie(src, p.srcPort, this.secret)
      const flags = p.tcpFlags
      if ((flags & (SYN | ACK)) === (SYN | ACK)) {
        if (p.ack !== ((c + 1) >>> 0)) return
        r.kind = 'syn-ack'
        r.probe = 'syn'
        r.window = p.window
        r.mss = p.mss
      } else if (flags & RST) {
        if (p.ack === ((c + 1) >>> 0) && (flags & ACK)) r.probe = 'syn'
        else if (p.seq === c) r.probe = 'ack'
        else return
        r.kind = 'rst'
        r.window = p.window
      } else return
      r.port = p.srcPort
    } else return
    r.ip = intToIpv4(src)
    r.mac = p.srcMac
    this.deliver()
  }

  private deliver(): void {
    this.received++
    this.opts.onReply(this.reply)
  }
}

export interface PacedOptions {
  /** packets per second */
  rate: number
  /** extra rounds for probes still unanswered */
  retries: number
  /** wait after the last round (and between rounds) for late replies, ms */
  waitMs: number
  /** stop early: true when nothing is left to wait for */
  allDone?: () => boolean
  onProgress?: (sent: number, total: number) => void
  signal?: AbortSignal
}

/**
 * Sends `count` probes (send(i) sends probe i unless skip(i)) at `rate` per second, for
 * 1 + retries rounds, yielding to the event loop so replies are processed while sending.
 */
export async function sendPaced(count: number, send: (i: number) => void, skip: (i: number, round: number) => boolean, o: PacedOptions): Promise<{sent: number}> {
  const rate = Math.max(1, Math.min(o.rate, RAW_LIMITS.maxRate))
  const batch = Math.max(1, Math.floor(rate / 200))
  let sent = 0
  const total = count * (1 + o.retries)
  const start = performance.now()
  for (let round = 0; round <= o.retries; round++) {
    for (let i = 0; i < count; i++) {
      if (o.signal?.aborted) return {sent}
      if (skip(i, round)) continue
      send(i)
      sent++
      if (sent % batch === 0) {
        const ahead = (sent * 1000) / rate - (performance.now() - start)
        if (ahead >= 1) await sleep(ahead)
        else await new Promise<void>((r) => setImmediate(r))
        o.onProgress?.(round * count + i + 1, total)
      }
    }
    o.onProgress?.((round + 1) * count, total)
    if (o.allDone?.()) break
    // let the replies of this round arrive before resending
    const pause = round < o.retries ? Math.min(o.waitMs, 150) : o.waitMs
    const until = performance.now() + pause
    while (performance.now() < until) {
      if (o.allDone?.() || o.signal?.aborted) break
      await sleep(Math.min(20, Math.max(1, until - performance.now())))
    }
  }
  return {sent}
}
