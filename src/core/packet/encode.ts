/**
 * Checksums and packet builders: used by the gateway to rewrite packets and forge resets, and by
 * tests and scanners to craft packets. Builders return new Uint8Arrays and never keep a
 * reference to their inputs.
 *
 * Builders take addresses as text or bytes; an unparsable address is a programmer error and
 * throws a TypeError. Everything that takes a decoded packet (recomputeChecksums,
 * buildTcpReset) never throws and reports failure in its return value.
 */
import {parseIp, parseMac} from './address.js'
import {foldSum, internetChecksum, pseudoHeaderSum, sumWords} from './checksum.js'
import {ACK, ETHERTYPE, FIN, RST, SYN, l4ChecksumRange, type DecodedPacket} from './decode.js'
import {LINKTYPE} from './linktype.js'

export {foldSum, internetChecksum, pseudoHeaderSum, sumWords}

export type IpLike = string | Uint8Array
export type MacLike = string | Uint8Array

/** Largest IPv4 options block (IHL 15 => 60-byte header). */
export const MAX_IPV4_OPTIONS = 40
/** Largest TCP options block (data offset 15 => 60-byte header). */
export const MAX_TCP_OPTIONS = 40

function ip(a: IpLike): Uint8Array {
  if (a instanceof Uint8Array) {
    if (a.length === 4 || a.length === 16) return a
    throw new TypeError(`address must be 4 or 16 bytes, got ${a.length}`)
  }
  const b = parseIp(a)
  if (b === null) throw new TypeError(`bad IP address: ${String(a)}`)
  return b
}

function mac(a: MacLike | undefined, dflt: Uint8Array): Uint8Array {
  if (a === undefined) return dflt
  if (a instanceof Uint8Array) {
    if (a.length === 6) return a
    throw new TypeError(`MAC must be 6 bytes, got ${a.length}`)
  }
  const b = parseMac(a)
  if (b === null) throw new TypeError(`bad MAC address: ${String(a)}`)
  return b
}

function w16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff
  b[o + 1] = v & 0xff
}

function w32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff
  b[o + 1] = (v >>> 16) & 0xff
  b[o + 2] = (v >>> 8) & 0xff
  b[o + 3] = v & 0xff
}

function r16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1]
}

const DEFAULT_SRC_MAC = new Uint8Array([0x02, 0, 0, 0, 0, 0x01])
const DEFAULT_DST_MAC = new Uint8Array([0x02, 0, 0, 0, 0, 0x02])

// ---------------------------------------------------------------------------------------------
// Ethernet

export interface EthernetSpec {
  src?: MacLike
  dst?: MacLike
  etherType: number
  /** VLAN id(s), outermost first */
  vlan?: number | readonly number[]
  /** TPID for every tag (default 0x8100; 0x88a8 for 802.1ad) */
  vlanTpid?: number
  /** pad to the 60-byte Ethernet minimum (as NICs do) */
  pad?: boolean
}

/** Ethernet II frame (IEEE 802.3 clause 3.2.6) with optional 802.1Q tags. */
export function buildEthernet(spec: EthernetSpec, payload: Uint8Array): Uint8Array {
  const tags = spec.vlan === undefined ? [] : typeof spec.vlan === 'number' ? [spec.vlan] : spec.vlan
  const hlen = 14 + 4 * tags.length
  let len = hlen + payload.length
  if (spec.pad && len < 60) len = 60
  const out = new Uint8Array(len)
  out.set(mac(spec.dst, DEFAULT_DST_MAC), 0)
  out.set(mac(spec.src, DEFAULT_SRC_MAC), 6)
  let o = 12
  for (const id of tags) {
    w16(out, o, spec.vlanTpid ?? ETHERTYPE.VLAN)
    w16(out, o + 2, id & 0x0fff)
    o += 4
  }
  w16(out, o, spec.etherType)
  out.set(payload, hlen)
  return out
}

// ---------------------------------------------------------------------------------------------
// IPv4 (RFC 791 §3.1)

export interface Ipv4Spec {
  src: IpLike
  dst: IpLike
  proto: number
  ttl?: number
  id?: number
  tos?: number
  df?: boolean
  mf?: boolean
  /** set the reserved ("evil") flag bit */
  reservedFlag?: boolean
  /** fragment offset in bytes (multiple of 8) */
  fragOffset?: number
  /** raw options, zero-padded to a multiple of 4 (at most 40 bytes) */
  options?: Uint8Array
  /** override the total length field (to craft malformed packets) */
  totalLength?: number
  /** override the IHL field in 32-bit words (to craft malformed packets) */
  ihl?: number
  /** override the header checksum (otherwise computed) */
  checksum?: number
}

export function buildIpv4(spec: Ipv4Spec, payload: Uint8Array): Uint8Array {
  const opts = spec.options ?? new Uint8Array(0)
  const optLen = Math.min(MAX_IPV4_OPTIONS, (opts.length + 3) & ~3)
  const hlen = 20 + optLen
  const out = new Uint8Array(hlen + payload.length)
  out[0] = 0x40 | ((spec.ihl ?? hlen >> 2) & 0x0f)
  out[1] = spec.tos ?? 0
  w16(out, 2, spec.totalLength ?? out.length)
  w16(out, 4, spec.id ?? 0)
  const ff = (spec.reservedFlag ? 0x8000 : 0) | (spec.df ? 0x4000 : 0) | (spec.mf ? 0x2000 : 0) |
    (((spec.fragOffset ?? 0) >>> 3) & 0x1fff)
  w16(out, 6, ff)
  out[8] = spec.ttl ?? 64
  out[9] = spec.proto
  out.set(ip(spec.src), 12)
  out.set(ip(spec.dst), 16)
  out.set(opts.subarray(0, optLen), 20)
  w16(out, 10, spec.checksum ?? internetChecksum(out, 0, hlen))
  out.set(payload, hlen)
  return out
}

// ---------------------------------------------------------------------------------------------
// IPv6 (RFC 8200 §3, §4)

/**
 * One extension header. `body` is everything after the first two bytes (next header and length /
 * reserved); it is zero-padded so the header is a multiple of 8 bytes. The builder fills the next
 * header byte and the length byte ((len/8)-1, or (len/4)-2 for AH 51; 0 for Fragment 44).
 */
export interface Ipv6ExtHeader {
  type: number
  body?: Uint8Array
}

/** A Fragment extension header (RFC 8200 §4.5): offset in bytes (multiple of 8). */
export function ipv6FragmentHeader(fragOffset: number, more: boolean, id: number): Ipv6ExtHeader {
  const body = new Uint8Array(6)
  w16(body, 0, (fragOffset & 0xfff8) | (more ? 1 : 0))
  w32(body, 2, id >>> 0)
  return {type: 44, body}
}

export interface Ipv6Spec {
  src: IpLike
  dst: IpLike
  /** the upper-layer protocol (after the extension headers) */
  nextHeader: number
  hopLimit?: number
  trafficClass?: number
  flowLabel?: number
  extHeaders?: readonly Ipv6ExtHeader[]
  /** override the payload length field */
  payloadLength?: number
}

function extHeaderLength(h: Ipv6ExtHeader): number {
  return (2 + (h.body?.length ?? 0) + 7) & ~7
}

export function buildIpv6(spec: Ipv6Spec, payload: Uint8Array): Uint8Array {
  const ext = spec.extHeaders ?? []
  let extLen = 0
  for (const h of ext) extLen += extHeaderLength(h)
  const out = new Uint8Array(40 + extLen + payload.length)
  const tc = spec.trafficClass ?? 0
  const fl = spec.flowLabel ?? 0
  out[0] = 0x60 | ((tc >> 4) & 0x0f)
  out[1] = ((tc & 0x0f) << 4) | ((fl >> 16) & 0x0f)
  w16(out, 2, fl & 0xffff)
  w16(out, 4, spec.payloadLength ?? extLen + payload.length)
  out[6] = ext.length > 0 ? ext[0].type : spec.nextHeader
  out[7] = spec.hopLimit ?? 64
  out.set(ip(spec.src), 8)
  out.set(ip(spec.dst), 24)
  let o = 40
  for (let i = 0; i < ext.length; i++) {
    const h = ext[i]
    const len = extHeaderLength(h)
    out[o] = i + 1 < ext.length ? ext[i + 1].type : spec.nextHeader
    out[o + 1] = h.type === 44 ? 0 : h.type === 51 ? (len >> 2) - 2 : (len >> 3) - 1
    if (h.body !== undefined) out.set(h.body, o + 2)
    o += len
  }
  out.set(payload, o)
  return out
}

function buildIp(src: IpLike, dst: IpLike, proto: number, payload: Uint8Array, ttl?: number, id?: number, df?: boolean): Uint8Array {
  const s = ip(src)
  return s.length === 4
    ? buildIpv4({src: s, dst, proto, ttl, id, df}, payload)
    : buildIpv6({src: s, dst, nextHeader: proto, hopLimit: ttl}, payload)
}

// ---------------------------------------------------------------------------------------------
// TCP (RFC 9293 §3.1)

export interface TcpOptionsSpec {
  mss?: number
  windowScale?: number
  sackPermitted?: boolean
  /** SACK blocks [left, right] (at most 4) */
  sack?: readonly (readonly [number, number])[]
  /** [tsVal, tsEcr] */
  timestamp?: readonly [number, number]
}

/** Encodes TCP options (MSS, WS, SACK-permitted, SACK, timestamps), NOP-aligned, padded to 4. */
export function encodeTcpOptions(spec: TcpOptionsSpec): Uint8Array {
  const out: number[] = []
  if (spec.mss !== undefined) out.push(2, 4, (spec.mss >>> 8) & 0xff, spec.mss & 0xff)
  if (spec.sackPermitted) out.push(1, 1, 4, 2)
  if (spec.timestamp !== undefined) {
    const [v, e] = spec.timestamp
    out.push(1, 1, 8, 10, (v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff,
      (e >>> 24) & 0xff, (e >>> 16) & 0xff, (e >>> 8) & 0xff, e & 0xff)
  }
  if (spec.windowScale !== undefined) out.push(1, 3, 3, spec.windowScale & 0xff)
  if (spec.sack !== undefined && spec.sack.length > 0) {
    const blocks = spec.sack.slice(0, 4)
    out.push(1, 1, 5, 2 + 8 * blocks.length)
    for (const [l, r] of blocks) {
      out.push((l >>> 24) & 0xff, (l >>> 16) & 0xff, (l >>> 8) & 0xff, l & 0xff,
        (r >>> 24) & 0xff, (r >>> 16) & 0xff, (r >>> 8) & 0xff, r & 0xff)
    }
  }
  while (out.length & 3) out.push(0)
  return Uint8Array.from(out.slice(0, MAX_TCP_OPTIONS))
}

export interface TcpSpec {
  srcPort: number
  dstPort: number
  seq?: number
  ack?: number
  flags?: number
  window?: number
  urgent?: number
  /** raw bytes (zero-padded to 4) or a structured spec */
  options?: Uint8Array | TcpOptionsSpec
  /** override the data offset in 32-bit words (to craft malformed segments) */
  dataOffset?: number
  /** override the checksum (otherwise computed) */
  checksum?: number
}

/** A TCP segment checksummed against the IPv4 or IPv6 pseudo-header of src/dst. */
export function buildTcp(spec: TcpSpec, payload: Uint8Array, src: IpLike, dst: IpLike): Uint8Array {
  const o = spec.options
  const opts = o === undefined ? new Uint8Array(0) : o instanceof Uint8Array ? o : encodeTcpOptions(o)
  const optLen = Math.min(MAX_TCP_OPTIONS, (opts.length + 3) & ~3)
  const hlen = 20 + optLen
  const out = new Uint8Array(hlen + payload.length)
  w16(out, 0, spec.srcPort)
  w16(out, 2, spec.dstPort)
  w32(out, 4, (spec.seq ?? 0) >>> 0)
  w32(out, 8, (spec.ack ?? 0) >>> 0)
  out[12] = ((spec.dataOffset ?? hlen >> 2) & 0x0f) << 4
  out[13] = (spec.flags ?? 0) & 0xff
  w16(out, 14, spec.window ?? 65535)
  w16(out, 18, spec.urgent ?? 0)
  out.set(opts.subarray(0, optLen), 20)
  out.set(payload, hlen)
  w16(out, 16, spec.checksum ?? internetChecksum(out, 0, out.length, pseudoHeaderSum(ip(src), ip(dst), 6, out.length)))
  return out
}

// ---------------------------------------------------------------------------------------------
// UDP (RFC 768)

export interface UdpSpec {
  srcPort: number
  dstPort: number
  /** override the length field */
  length?: number
  /** override the checksum (otherwise computed; 0 means "none" on IPv4) */
  checksum?: number
}

export function buildUdp(spec: UdpSpec, payload: Uint8Array, src: IpLike, dst: IpLike): Uint8Array {
  const out = new Uint8Array(8 + payload.length)
  w16(out, 0, spec.srcPort)
  w16(out, 2, spec.dstPort)
  w16(out, 4, spec.length ?? out.length)
  out.set(payload, 8)
  let c = spec.checksum
  if (c === undefined) {
    c = internetChecksum(out, 0, out.length, pseudoHeaderSum(ip(src), ip(dst), 17, out.length))
    if (c === 0) c = 0xffff
  }
  w16(out, 6, c)
  return out
}

// ---------------------------------------------------------------------------------------------
// ICMP echo (RFC 792) and ICMPv6 echo (RFC 4443 §4.1)

export interface IcmpEchoSpec {
  id: number
  seq: number
  reply?: boolean
  /** ICMPv6 (types 128/129, checksum over the pseudo-header) instead of ICMP (8/0) */
  v6?: boolean
}

/** ICMP or ICMPv6 echo message; ICMPv6 needs src/dst for its checksum (defaults to ICMPv6 when src is 16 bytes). */
export function buildIcmpEcho(spec: IcmpEchoSpec, payload: Uint8Array, src?: IpLike, dst?: IpLike): Uint8Array {
  const s = src === undefined ? undefined : ip(src)
  const v6 = spec.v6 ?? (s !== undefined && s.length === 16)
  const out = new Uint8Array(8 + payload.length)
  out[0] = v6 ? (spec.reply ? 129 : 128) : spec.reply ? 0 : 8
  w16(out, 4, spec.id)
  w16(out, 6, spec.seq)
  out.set(payload, 8)
  const initial = v6 && s !== undefined && dst !== undefined ? pseudoHeaderSum(s, ip(dst), 58, out.length) : 0
  w16(out, 2, internetChecksum(out, 0, out.length, initial))
  return out
}

// ---------------------------------------------------------------------------------------------
// ARP (RFC 826) for Ethernet / IPv4

export interface ArpSpec {
  /** 1 request, 2 reply */
  op: number
  senderMac: MacLike
  senderIp: IpLike
  targetMac?: MacLike
  targetIp: IpLike
}

/** The 28-byte ARP body (wrap it with buildEthernet({etherType: 0x0806, ...})). */
export function buildArp(spec: ArpSpec): Uint8Array {
  const out = new Uint8Array(28)
  w16(out, 0, 1)
  w16(out, 2, 0x0800)
  out[4] = 6
  out[5] = 4
  w16(out, 6, spec.op)
  out.set(mac(spec.senderMac, DEFAULT_SRC_MAC), 8)
  out.set(ip(spec.senderIp).subarray(0, 4), 14)
  out.set(mac(spec.targetMac, new Uint8Array(6)), 18)
  out.set(ip(spec.targetIp).subarray(0, 4), 24)
  return out
}

// ---------------------------------------------------------------------------------------------
// whole frames

interface FrameCommon {
  src: IpLike
  dst: IpLike
  srcMac?: MacLike
  dstMac?: MacLike
  vlan?: number | readonly number[]
  ttl?: number
  id?: number
  df?: boolean
  payload?: Uint8Array
  /** 'ethernet' (default) or 'raw' (bare IP datagram, LINKTYPE_RAW) */
  link?: 'ethernet' | 'raw'
}

export interface TcpPacketSpec extends FrameCommon, TcpSpec {}
export interface UdpPacketSpec extends FrameCommon, UdpSpec {}

function wrap(spec: FrameCommon, datagram: Uint8Array): Uint8Array {
  if (spec.link === 'raw') return datagram
  const etherType = datagram[0] >> 4 === 6 ? ETHERTYPE.IPV6 : ETHERTYPE.IPV4
  return buildEthernet({src: spec.srcMac, dst: spec.dstMac, vlan: spec.vlan, etherType}, datagram)
}

/** A whole Ethernet (or raw) + IPv4/IPv6 (by address family) + TCP frame. */
export function buildTcpPacket(spec: TcpPacketSpec): Uint8Array {
  const payload = spec.payload ?? new Uint8Array(0)
  const seg = buildTcp(spec, payload, spec.src, spec.dst)
  return wrap(spec, buildIp(spec.src, spec.dst, 6, seg, spec.ttl, spec.id, spec.df))
}

/** A whole Ethernet (or raw) + IPv4/IPv6 + UDP frame. */
export function buildUdpPacket(spec: UdpPacketSpec): Uint8Array {
  const payload = spec.payload ?? new Uint8Array(0)
  const dg = buildUdp(spec, payload, spec.src, spec.dst)
  return wrap(spec, buildIp(spec.src, spec.dst, 17, dg, spec.ttl, spec.id, spec.df))
}

// ---------------------------------------------------------------------------------------------
// rewriting and resets

/**
 * After a same-length rewrite of a decoded packet's bytes, fixes the IPv4 header checksum and the
 * TCP/UDP/ICMP/ICMPv6 checksum in place. `pkt` must describe `frame` (offsets are taken from it).
 * Returns false when some checksum could not be recomputed (fragment, truncated, no IP); never
 * throws. An IPv4 UDP checksum of 0 ("none") is left at 0.
 */
export function recomputeChecksums(frame: Uint8Array, pkt: DecodedPacket): boolean {
  try {
    if (pkt.ipVersion === 0) return false
    const ipo = pkt.ipOffset
    if (pkt.ipVersion === 4) {
      const hend = ipo + pkt.ipHeaderLength
      if (pkt.ipHeaderLength < 20 || hend > frame.length) return false
      frame[ipo + 10] = 0
      frame[ipo + 11] = 0
      w16(frame, ipo + 10, internetChecksum(frame, ipo, hend))
    }
    if (pkt.l4 === 'none') return pkt.isFragment ? false : !pkt.truncated
    const end = l4ChecksumRange(pkt)
    if (end < 0 || end > frame.length) return false
    const l4o = pkt.l4Offset
    const field = pkt.l4 === 'tcp' ? l4o + 16 : pkt.l4 === 'udp' ? l4o + 6 : l4o + 2
    if (pkt.l4 === 'udp' && pkt.ipVersion === 4 && r16(frame, field) === 0) return true
    frame[field] = 0
    frame[field + 1] = 0
    let initial = 0
    if (pkt.l4 !== 'icmp') {
      const alen = pkt.ipVersion === 4 ? 4 : 16
      const so = pkt.ipVersion === 4 ? ipo + 12 : ipo + 8
      const proto = pkt.l4 === 'tcp' ? 6 : pkt.l4 === 'udp' ? 17 : 58
      initial = pseudoHeaderSum(frame.subarray(so, so + alen), frame.subarray(so + alen, so + 2 * alen), proto, end - l4o)
    }
    let c = internetChecksum(frame, l4o, end, initial)
    if (c === 0 && pkt.l4 === 'udp') c = 0xffff
    w16(frame, field, c)
    return true
  } catch {
    return false
  }
}

export type ResetDirection = 'to-source' | 'to-destination'

export interface ResetOptions {
  /**
   * to-destination only: the offending segment reached the receiver (its data counts), so the
   * RST continues after it. Default false: the gateway dropped it, the RST takes its place.
   */
  delivered?: boolean
  ttl?: number
}

/**
 * Forges a TCP RST answering a decoded TCP packet (RFC 9293 §3.10.7, exact-match seq so stacks
 * following RFC 5961 §3.2 accept it):
 * - `to-source`: back to the sender, seq = the sender's ACK (its RCV.NXT), ack = seq + segment
 *   length, flags RST|ACK (seq 0 when the segment carried no ACK, e.g. a SYN);
 * - `to-destination`: on to the receiver in the sender's name, seq = the segment's seq (+ its
 *   length when `delivered`), flags RST (|ACK with the segment's ack when it had ACK).
 * Ethernet input gives an Ethernet frame (MACs swapped for to-source, VLAN tags kept); other link
 * types give a bare IP datagram (LINKTYPE_RAW). Returns null for non-TCP packets, fragments and
 * RSTs (never answer a reset). Never throws.
 */
export function buildTcpReset(pkt: DecodedPacket, direction: ResetDirection, options: ResetOptions = {}): Uint8Array | null {
  try {
    if (pkt.l4 !== 'tcp' || pkt.isFragment || (pkt.tcpFlags & RST) !== 0 || pkt.ipVersion === 0) return null
    const segLen = pkt.payloadLength + ((pkt.tcpFlags & SYN) !== 0 ? 1 : 0) + ((pkt.tcpFlags & FIN) !== 0 ? 1 : 0)
    const hasAck = (pkt.tcpFlags & ACK) !== 0
    const back = direction === 'to-source'
    const src = new Uint8Array(back ? pkt.dstAddr : pkt.srcAddr)
    const dst = new Uint8Array(back ? pkt.srcAddr : pkt.dstAddr)
    let seq: number
    let ack: number
    let flags: number
    if (back) {
      seq = hasAck ? pkt.ack : 0
      ack = (pkt.seq + segLen) >>> 0
      flags = RST | ACK
    } else {
      seq = options.delivered ? (pkt.seq + segLen) >>> 0 : pkt.seq
      ack = hasAck ? pkt.ack : 0
      flags = hasAck ? RST | ACK : RST
    }
    const seg = buildTcp({
      srcPort: back ? pkt.dstPort : pkt.srcPort,
      dstPort: back ? pkt.srcPort : pkt.dstPort,
      seq, ack, flags, window: 0,
    }, new Uint8Array(0), src, dst)
    const dg = buildIp(src, dst, 6, seg, options.ttl ?? 64, 0, true)
    if (pkt.linktype !== LINKTYPE.ETHERNET || pkt.srcMacOffset < 0) return dg
    const f = pkt.frame
    const smac = f.slice(pkt.srcMacOffset, pkt.srcMacOffset + 6)
    const dmac = f.slice(pkt.dstMacOffset, pkt.dstMacOffset + 6)
    return buildEthernet({
      src: back ? dmac : smac,
      dst: back ? smac : dmac,
      vlan: pkt.vlanIds.slice(),
      etherType: pkt.ipVersion === 6 ? ETHERTYPE.IPV6 : ETHERTYPE.IPV4,
    }, dg)
  } catch {
    return null
  }
}

// ---------------------------------------------------------------------------------------------
// fragmentation

/**
 * Splits an IPv4 datagram (starting at its header) into fragments of at most
 * `fragmentPayloadSize` data bytes (rounded down to a multiple of 8, at least 8). Options whose
 * copy bit is set are repeated in every fragment, the others only in the first (RFC 791 §3.2).
 * A datagram that is already a fragment keeps its offset base and its MF on the last piece.
 * Returns [] when the input is not a well-formed IPv4 datagram; a single copy when it fits.
 */
export function fragmentIpv4(datagram: Uint8Array, fragmentPayloadSize: number): Uint8Array[] {
  if (datagram.length < 20 || datagram[0] >> 4 !== 4) return []
  const ihl = (datagram[0] & 0x0f) << 2
  const total = r16(datagram, 2)
  if (ihl < 20 || ihl > datagram.length || total < ihl || total > datagram.length) return []
  const size = Math.max(8, Math.floor(fragmentPayloadSize / 8) * 8)
  const data = datagram.subarray(ihl, total)
  if (data.length <= size) return [datagram.slice(0, total)]
  const ff = r16(datagram, 6)
  const baseOffset = (ff & 0x1fff) << 3
  const origMf = (ff & 0x2000) !== 0
  const flagsKeep = ff & 0xc000 // reserved + DF
  const firstHeader = datagram.subarray(0, ihl)
  const laterHeader = copiedOptionsHeader(firstHeader)
  const out: Uint8Array[] = []
  for (let off = 0; off < data.length; off += size) {
    const chunk = data.subarray(off, Math.min(off + size, data.length))
    const last = off + size >= data.length
    const hdr = off === 0 ? firstHeader : laterHeader
    const frag = new Uint8Array(hdr.length + chunk.length)
    frag.set(hdr, 0)
    frag.set(chunk, hdr.length)
    frag[0] = 0x40 | (hdr.length >> 2)
    w16(frag, 2, frag.length)
    w16(frag, 6, flagsKeep | (!last || origMf ? 0x2000 : 0) | (((baseOffset + off) >> 3) & 0x1fff))
    frag[10] = 0
    frag[11] = 0
    w16(frag, 10, internetChecksum(frag, 0, hdr.length))
    out.push(frag)
  }
  return out
}

function copiedOptionsHeader(hdr: Uint8Array): Uint8Array {
  const kept: number[] = []
  let i = 20
  while (i < hdr.length) {
    const t = hdr[i]
    if (t === 0) break
    if (t === 1) {
      i++
      continue
    }
    if (i + 1 >= hdr.length) break
    const len = hdr[i + 1]
    if (len < 2 || i + len > hdr.length) break
    if ((t & 0x80) !== 0) for (let k = 0; k < len; k++) kept.push(hdr[i + k])
    i += len
  }
  while (kept.length & 3) kept.push(0)
  const out = new Uint8Array(20 + kept.length)
  out.set(hdr.subarray(0, 20), 0)
  out.set(kept, 20)
  return out
}

/**
 * Splits an IPv6 packet (starting at its header) into fragments (RFC 8200 §4.5): the
 * unfragmentable part (IPv6 header, Hop-by-Hop, Routing and Destination Options before a Routing
 * header) is repeated, a Fragment header with `id` is inserted, the rest is cut into pieces of
 * at most `fragmentPayloadSize` bytes (multiple of 8, at least 8). Returns [] on malformed
 * input; always fragments (a packet that fits gives one atomic-style fragment with M=0).
 */
export function fragmentIpv6(datagram: Uint8Array, fragmentPayloadSize: number, id = 0x1234567): Uint8Array[] {
  if (datagram.length < 40 || datagram[0] >> 4 !== 6) return []
  const end = 40 + r16(datagram, 4)
  if (end > datagram.length) return []
  // find the end of the unfragmentable part
  let nh = datagram[6]
  let cur = 40
  let unfragEnd = 40
  let unfragNhOff = 6
  let count = 0
  while ((nh === 0 || nh === 43 || nh === 60) && count < 8) {
    if (cur + 2 > end) return []
    const len = (datagram[cur + 1] + 1) << 3
    if (cur + len > end) return []
    const next = datagram[cur]
    if (nh === 0 || nh === 43) {
      unfragEnd = cur + len
      unfragNhOff = cur
    }
    nh = next
    cur += len
    count++
  }
  const fragNh = datagram[unfragNhOff]
  const unfrag = datagram.subarray(0, unfragEnd)
  const data = datagram.subarray(unfragEnd, end)
  const size = Math.max(8, Math.floor(fragmentPayloadSize / 8) * 8)
  const out: Uint8Array[] = []
  for (let off = 0; off < data.length || off === 0; off += size) {
    const chunk = data.subarray(off, Math.min(off + size, data.length))
    const last = off + size >= data.length
    const frag = new Uint8Array(unfrag.length + 8 + chunk.length)
    frag.set(unfrag, 0)
    frag[unfragNhOff] = 44
    w16(frag, 4, frag.length - 40)
    const fo = unfrag.length
    frag[fo] = fragNh
    frag[fo + 1] = 0
    w16(frag, fo + 2, (off & 0xfff8) | (last ? 0 : 1))
    w32(frag, fo + 4, id >>> 0)
    frag.set(chunk, fo + 8)
    out.push(frag)
    if (last) break
  }
  return out
}
