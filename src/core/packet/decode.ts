/**
 * Zero-copy, bounds-checked packet decoder.
 *
 * One `PacketDecoder` owns ONE `DecodedPacket` that every `decode()` call resets and fills: the
 * packet holds offsets into the caller's frame plus lazily created `subarray` views, so nothing is
 * copied. The capture library reuses one Buffer for every packet: a consumer that keeps anything
 * past the next `decode()` must copy it.
 *
 * Malformed input is data: every problem is recorded as a stable dotted anomaly code in
 * `packet.anomalies` (and `truncated` when a length field points past the data), and decoding
 * never throws.
 *
 * All `*Offset` fields are absolute offsets into `packet.frame`, except `prevNextHeaderOffset` and
 * `unfragmentableLength`, which count from the start of the IP header (as the defragmenter needs).
 */
import type {AnomalySink} from '../events/anomaly.js'
import {formatIpv4At, formatIpv6At, formatMacAt} from './address.js'
import {internetChecksum, pseudoHeaderSum} from './checksum.js'
import {LINKTYPE} from './linktype.js'

export {formatIp, parseIp, formatMac, parseMac} from './address.js'

/** Most VLAN tags (802.1Q / 802.1ad / 0x9100) accepted in front of one frame. */
export const MAX_VLAN_TAGS = 4
/** Most IPv6 extension headers walked per packet. */
export const MAX_IPV6_EXT_HEADERS = 8
/** Most anomaly codes recorded per packet (further ones are dropped; the last slot says so). */
export const MAX_ANOMALIES_PER_PACKET = 16

export interface PacketDecoderOptions {
  maxVlanTags?: number
  maxIpv6ExtHeaders?: number
  maxAnomalies?: number
  /** also report each anomaly here (type `decode`, or `limit` for limit hits) */
  onAnomaly?: AnomalySink
}

/** TCP flag bits (RFC 9293 §3.1, RFC 3168 §6.1.1 for ECE/CWR) as found in `tcpFlags`. */
export const FIN = 0x01
export const SYN = 0x02
export const RST = 0x04
export const PSH = 0x08
export const ACK = 0x10
export const URG = 0x20
export const ECE = 0x40
export const CWR = 0x80
export const TCP_FLAGS = {FIN, SYN, RST, PSH, ACK, URG, ECE, CWR} as const

export const ETHERTYPE = {
  IPV4: 0x0800,
  ARP: 0x0806,
  VLAN: 0x8100,
  QINQ: 0x88a8,
  VLAN_9100: 0x9100,
  IPV6: 0x86dd,
} as const

export const IPPROTO = {
  HOPOPTS: 0,
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  ROUTING: 43,
  FRAGMENT: 44,
  ESP: 50,
  AH: 51,
  ICMPV6: 58,
  NONE: 59,
  DSTOPTS: 60,
} as const

/** Every anomaly code this module can emit (stable: rules match on them). */
export const DECODE_ANOMALIES = [
  'decode.internal_error',
  'decode.too_many_anomalies',
  'link.truncated',
  'link.unknown_ethertype',
  'link.unknown_family',
  'link.unsupported_linktype',
  'vlan.too_many_tags',
  'vlan.truncated',
  'arp.truncated',
  'arp.unsupported',
  'ip.truncated',
  'ip.bad_version',
  'ipv4.truncated',
  'ipv4.bad_version',
  'ipv4.bad_header_length',
  'ipv4.bad_total_length',
  'ipv4.reserved_flag',
  'ipv4.frag_too_large',
  'ipv4.frag_l4_header_split',
  'ipv6.truncated',
  'ipv6.bad_version',
  'ipv6.jumbogram',
  'ipv6.too_many_ext_headers',
  'ipv6.hopopts_not_first',
  'ipv6.multiple_fragment_headers',
  'ipv6.frag_too_large',
  'ipv6.frag_l4_header_split',
  'tcp.truncated',
  'tcp.bad_data_offset',
  'tcp.bad_option',
  'udp.truncated',
  'udp.bad_length',
  'udp.length_mismatch',
  'icmp.truncated',
  'icmpv6.truncated',
] as const

const EMPTY = new Uint8Array(0)

export type NetKind = 'none' | 'ipv4' | 'ipv6' | 'arp' | 'other'
export type L4Kind = 'none' | 'tcp' | 'udp' | 'icmp' | 'icmpv6'

/** ARP (RFC 826) over Ethernet/IPv4. Views point into the frame. */
export class ArpInfo {
  op = 0
  hardwareType = 0
  protocolType = 0
  senderMacOffset = -1
  senderIpOffset = -1
  targetMacOffset = -1
  targetIpOffset = -1
  /** @internal */ frame: Uint8Array = EMPTY
  get senderMac(): string { return this.senderMacOffset < 0 ? '' : formatMacAt(this.frame, this.senderMacOffset) }
  get targetMac(): string { return this.targetMacOffset < 0 ? '' : formatMacAt(this.frame, this.targetMacOffset) }
  get senderIp(): string { return this.senderIpOffset < 0 ? '' : formatIpv4At(this.frame, this.senderIpOffset) }
  get targetIp(): string { return this.targetIpOffset < 0 ? '' : formatIpv4At(this.frame, this.targetIpOffset) }
}

/**
 * The result of a decode. Reused: valid until the next `decode()` on the same decoder and only
 * while the frame's bytes are unchanged.
 */
export class DecodedPacket {
  /**
   * the buffer holding the frame (or datagram) that was decoded: the frame is
   * `frame[frameStart, frameEnd)` and every offset below is an index into `frame`
   */
  frame: Uint8Array = EMPTY
  frameStart = 0
  frameEnd = 0
  linktype = 0

  // ---- link layer
  /** offset of the network header (after link header and VLAN tags), -1 when none */
  networkOffset = -1
  /** ethertype / SLL protocol of the network layer (after VLAN tags), 0 when none */
  etherType = 0
  /** Ethernet MAC offsets (-1 when absent); SLL: srcMacOffset is the sender's address when 6 bytes long */
  srcMacOffset = -1
  dstMacOffset = -1
  /** VLAN ids outermost first (reused array) */
  readonly vlanIds: number[] = []
  /** Linux cooked packet type (0 host, 1 broadcast, 2 multicast, 3 other host, 4 outgoing), -1 otherwise */
  sllPacketType = -1
  /** loopback (NULL/LOOP) address family, -1 otherwise */
  loopbackFamily = -1

  net: NetKind = 'none'
  readonly arp = new ArpInfo()

  // ---- IP
  /** 4 or 6 once the fixed IP header (and so the addresses) could be read, else 0 */
  ipVersion: 0 | 4 | 6 = 0
  ipOffset = -1
  /** v4: IHL*4; v6: 40 + all extension headers walked before the upper layer */
  ipHeaderLength = 0
  /** v4 total length / v6 40 + payload length, as the header claims */
  ipTotalLength = 0
  /** end (exclusive) of the IP datagram bytes present: min(claimed end, frame end); padding excluded */
  ipEnd = 0
  /** start of the upper-layer header (after v4 options / v6 extension headers) */
  ipPayloadOffset = -1
  /** upper-layer protocol (after IPv6 extension headers); for non-first fragments the fragment's protocol */
  proto = -1
  ttl = 0
  tos = 0
  flowLabel = 0
  ipv6ExtHeaderCount = 0

  // ---- fragments
  /** a real fragment: offset > 0 or more-fragments set (an IPv6 atomic fragment is not) */
  isFragment = false
  /** IPv6 only: a Fragment header was present (atomic or not) */
  hasFragmentHeader = false
  /** v4 identification (16 bit) or v6 Fragment header identification (32 bit) */
  fragId = 0
  /** fragment offset in bytes */
  fragOffset = 0
  moreFragments = false
  dontFragment = false
  /** v6: next header inside the Fragment header; v4: the protocol field */
  fragNextHeader = -1
  /** bytes from the IP header start to the fragmentable part (v4: IHL*4; v6: to the Fragment header) */
  unfragmentableLength = 0
  /** v6: offset (from the IP header start) of the byte whose value 44 pointed at the Fragment header; v4: -1 */
  prevNextHeaderOffset = -1
  /** start of the fragment's data (after the v4 header / the v6 Fragment header) */
  fragDataOffset = -1
  fragDataLength = 0

  // ---- L4
  l4: L4Kind = 'none'
  l4Offset = -1
  l4HeaderLength = 0
  srcPort = 0
  dstPort = 0
  seq = 0
  ack = 0
  tcpFlags = 0
  window = 0
  urgentPointer = 0
  tcpChecksum = 0
  tcpOptionsOffset = -1
  tcpOptionsLength = 0
  /** -1 when absent */
  mss = -1
  /** -1 when absent */
  windowScale = -1
  sackPermitted = false
  sackBlocks = 0
  hasTimestamp = false
  tsVal = 0
  tsEcr = 0
  udpLength = 0
  udpChecksum = 0
  icmpType = -1
  icmpCode = -1
  /** echo/timestamp id and sequence, -1 otherwise */
  icmpId = -1
  icmpSeq = -1
  /** ICMP/ICMPv6 error: offset of the embedded (offending) IP header, -1 otherwise */
  icmpEmbeddedOffset = -1

  // ---- payload: L4 payload, or IP payload for other protocols, or fragment data
  payloadOffset = 0
  payloadLength = 0

  /** a length field points past the available bytes */
  truncated = false
  /** anomaly codes of this packet (reused array, cleared per decode) */
  readonly anomalies: string[] = []

  /** @internal */ _src: string | null = null
  /** @internal */ _dst: string | null = null
  /** @internal */ _payload: Uint8Array | null = null

  /** source address text (dotted quad / RFC 5952), '' when no IP header */
  get src(): string {
    if (this._src === null) this._src = this.formatAddr(this.srcAddrOffset())
    return this._src
  }

  get dst(): string {
    if (this._dst === null) this._dst = this.formatAddr(this.dstAddrOffset())
    return this._dst
  }

  /** IPv4 only: source address as a SIGNED 32-bit number (a small integer, never a heap number) */
  get src4(): number {
    return r32(this.frame, this.ipOffset + 12) | 0
  }

  /** IPv4 only: destination address as a signed 32-bit number */
  get dst4(): number {
    return r32(this.frame, this.ipOffset + 16) | 0
  }

  /** source address bytes (view into the frame), empty when no IP header */
  get srcAddr(): Uint8Array {
    const o = this.srcAddrOffset()
    return o < 0 ? EMPTY : this.frame.subarray(o, o + (this.ipVersion === 4 ? 4 : 16))
  }

  get dstAddr(): Uint8Array {
    const o = this.dstAddrOffset()
    return o < 0 ? EMPTY : this.frame.subarray(o, o + (this.ipVersion === 4 ? 4 : 16))
  }

  get srcMac(): string { return this.srcMacOffset < 0 ? '' : formatMacAt(this.frame, this.srcMacOffset) }
  get dstMac(): string { return this.dstMacOffset < 0 ? '' : formatMacAt(this.frame, this.dstMacOffset) }

  /** the payload bytes (view) */
  get payload(): Uint8Array {
    if (this._payload === null) {
      this._payload = this.payloadLength === 0 ? EMPTY : this.frame.subarray(this.payloadOffset, this.payloadOffset + this.payloadLength)
    }
    return this._payload
  }

  /** the IP datagram as present in the frame (view, padding excluded) */
  get ipDatagram(): Uint8Array {
    return this.ipOffset < 0 || this.ipVersion === 0 ? EMPTY : this.frame.subarray(this.ipOffset, this.ipEnd)
  }

  /**
   * Header view for the defragmenter: v4 header with options; v6 header plus the unfragmentable
   * extension headers when a Fragment header is present, else all walked extension headers.
   */
  get ipHeader(): Uint8Array {
    if (this.ipOffset < 0 || this.ipVersion === 0) return EMPTY
    const len = this.ipVersion === 6 && this.hasFragmentHeader ? this.unfragmentableLength : this.ipHeaderLength
    return this.frame.subarray(this.ipOffset, Math.min(this.ipOffset + len, this.frameEnd))
  }

  /** the fragment's data (view), empty when not a fragment */
  get fragData(): Uint8Array {
    return this.fragDataOffset < 0 ? EMPTY : this.frame.subarray(this.fragDataOffset, this.fragDataOffset + this.fragDataLength)
  }

  /** TCP options bytes (view) */
  get tcpOptions(): Uint8Array {
    return this.tcpOptionsOffset < 0 ? EMPTY : this.frame.subarray(this.tcpOptionsOffset, this.tcpOptionsOffset + this.tcpOptionsLength)
  }

  /** IP family as a number for convenience: 4, 6 or 0 */
  get family(): 0 | 4 | 6 { return this.ipVersion }

  hasFlag(flag: number): boolean { return (this.tcpFlags & flag) !== 0 }

  private srcAddrOffset(): number {
    if (this.ipVersion === 4) return this.ipOffset + 12
    if (this.ipVersion === 6) return this.ipOffset + 8
    return -1
  }

  private dstAddrOffset(): number {
    if (this.ipVersion === 4) return this.ipOffset + 16
    if (this.ipVersion === 6) return this.ipOffset + 24
    return -1
  }

  private formatAddr(o: number): string {
    if (o < 0) return ''
    return this.ipVersion === 4 ? formatIpv4At(this.frame, o) : formatIpv6At(this.frame, o)
  }
}

function r16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1]
}

function r32(b: Uint8Array, o: number): number {
  return b[o] * 0x1000000 + ((b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3])
}

export class PacketDecoder {
  /** the single reused result object */
  readonly packet = new DecodedPacket()
  /** end (exclusive) of the frame being decoded in its buffer: the bound of every length check */
  private end = 0
  private readonly maxVlanTags: number
  private readonly maxExtHeaders: number
  private readonly maxAnomalies: number
  private readonly onAnomaly: AnomalySink | undefined

  constructor(options: PacketDecoderOptions = {}) {
    this.maxVlanTags = options.maxVlanTags ?? MAX_VLAN_TAGS
    this.maxExtHeaders = options.maxIpv6ExtHeaders ?? MAX_IPV6_EXT_HEADERS
    this.maxAnomalies = Math.max(1, options.maxAnomalies ?? MAX_ANOMALIES_PER_PACKET)
    this.onAnomaly = options.onAnomaly
  }

  /**
   * Decodes a captured frame of the given link type: `frame`, or `frame[start, end)` (a record
   * inside a capture reader's buffer, decoded where it lies: offsets in the result index `frame`).
   * Never throws.
   */
  decode(frame: Uint8Array, linktype: number, start = 0, end = -1): DecodedPacket {
    const p = this.reset(frame, linktype, start, end)
    frame = p.frame
    const o = p.frameStart
    try {
      switch (linktype) {
        case LINKTYPE.ETHERNET: this.ethernet(frame, o); break
        case LINKTYPE.NULL:
        case LINKTYPE.LOOP: this.loopback(frame, o, linktype === LINKTYPE.LOOP); break
        case LINKTYPE.RAW: this.rawIp(frame, o); break
        case LINKTYPE.IPV4: this.network(frame, ETHERTYPE.IPV4, o); break
        case LINKTYPE.IPV6: this.network(frame, ETHERTYPE.IPV6, o); break
        case LINKTYPE.LINUX_SLL: this.sll(frame, o); break
        case LINKTYPE.LINUX_SLL2: this.sll2(frame, o); break
        default: this.anomaly('link.unsupported_linktype', false)
      }
    } catch {
      this.anomaly('decode.internal_error', false)
    }
    return p
  }

  /** Decodes a datagram that starts at an IP header (version nibble decides). Never throws. */
  decodeIp(datagram: Uint8Array): DecodedPacket {
    const p = this.reset(datagram, LINKTYPE.RAW)
    try {
      this.rawIp(p.frame, p.frameStart)
    } catch {
      this.anomaly('decode.internal_error', false)
    }
    return p
  }

  private reset(frame: Uint8Array, linktype: number, start = 0, end = -1): DecodedPacket {
    const p = this.packet
    p.frame = frame instanceof Uint8Array ? frame : EMPTY
    const len = p.frame.length
    p.frameEnd = this.end = end < 0 || end > len ? len : end
    p.frameStart = start < 0 ? 0 : start > p.frameEnd ? p.frameEnd : start
    p.linktype = linktype
    p.networkOffset = -1
    p.etherType = 0
    p.srcMacOffset = -1
    p.dstMacOffset = -1
    if (p.vlanIds.length !== 0) p.vlanIds.length = 0
    p.sllPacketType = -1
    p.loopbackFamily = -1
    p.net = 'none'
    const a = p.arp
    a.frame = p.frame
    a.op = 0
    a.hardwareType = 0
    a.protocolType = 0
    a.senderMacOffset = a.senderIpOffset = a.targetMacOffset = a.targetIpOffset = -1
    p.ipVersion = 0
    p.ipOffset = -1
    p.ipHeaderLength = 0
    p.ipTotalLength = 0
    p.ipEnd = 0
    p.ipPayloadOffset = -1
    p.proto = -1
    p.ttl = 0
    p.tos = 0
    p.flowLabel = 0
    p.ipv6ExtHeaderCount = 0
    p.isFragment = false
    p.hasFragmentHeader = false
    p.fragId = 0
    p.fragOffset = 0
    p.moreFragments = false
    p.dontFragment = false
    p.fragNextHeader = -1
    p.unfragmentableLength = 0
    p.prevNextHeaderOffset = -1
    p.fragDataOffset = -1
    p.fragDataLength = 0
    p.l4 = 'none'
    p.l4Offset = -1
    p.l4HeaderLength = 0
    p.srcPort = 0
    p.dstPort = 0
    p.seq = 0
    p.ack = 0
    p.tcpFlags = 0
    p.window = 0
    p.urgentPointer = 0
    p.tcpChecksum = 0
    p.tcpOptionsOffset = -1
    p.tcpOptionsLength = 0
    p.mss = -1
    p.windowScale = -1
    p.sackPermitted = false
    p.sackBlocks = 0
    p.hasTimestamp = false
    p.tsVal = 0
    p.tsEcr = 0
    p.udpLength = 0
    p.udpChecksum = 0
    p.icmpType = -1
    p.icmpCode = -1
    p.icmpId = -1
    p.icmpSeq = -1
    p.icmpEmbeddedOffset = -1
    p.payloadOffset = 0
    p.payloadLength = 0
    p.truncated = false
    // (the length setter is a builtin call: skip it in the common case of nothing to clear)
    if (p.anomalies.length !== 0) p.anomalies.length = 0
    p._src = null
    p._dst = null
    p._payload = null
    return p
  }

  private anomaly(code: string, truncated: boolean, limit = false): void {
    const p = this.packet
    if (truncated) p.truncated = true
    const list = p.anomalies
    if (list.length >= this.maxAnomalies) return
    if (list.length === this.maxAnomalies - 1) {
      code = 'decode.too_many_anomalies'
      limit = true
    }
    list.push(code)
    if (this.onAnomaly !== undefined) this.onAnomaly({type: limit ? 'limit' : 'decode', event: code})
  }

  private setPayload(start: number, end: number): void {
    const p = this.packet
    p.payloadOffset = start
    p.payloadLength = end > start ? end - start : 0
  }

  /*
   * Ethernet II (IEEE 802.3 clause 3.2.6), optional 802.1Q / 802.1ad tags:
   *
   *  0                   1                   2                   3
   * +-----------------------------------------------+
   * |              Destination MAC (6)              |
   * +-----------------------------------------------+
   * |                Source MAC (6)                 |
   * +-----------------------+-----------------------+
   * | TPID 0x8100/0x88a8 (2)| PCP|DEI| VLAN id (2)  |  (0..n tags)
   * +-----------------------+-----------------------+
   * |     EtherType (2)     |  payload ...
   * +-----------------------+
   */
  private ethernet(b: Uint8Array, o: number): void {
    const p = this.packet
    if (this.end - o < 14) {
      this.anomaly('link.truncated', true)
      return
    }
    p.dstMacOffset = o
    p.srcMacOffset = o + 6
    const type = r16(b, o + 12)
    if (type < 0x0600) {
      // 802.3 length field: LLC/SNAP frame (STP, CDP, ...), not IP
      p.etherType = type
      p.networkOffset = o + 14
      p.net = 'other'
      this.setPayload(o + 14, this.end)
      return
    }
    this.network(b, type, o + 14)
  }

  /*
   * Linux cooked capture v1 (LINKTYPE_LINUX_SLL, https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html)
   *
   * +---------------------------+
   * |  Packet type (2)          |
   * |  ARPHRD_ type (2)         |
   * |  Link-layer addr len (2)  |
   * |  Link-layer address (8)   |
   * |  Protocol type (2)        |
   * +---------------------------+
   */
  private sll(b: Uint8Array, o: number): void {
    const p = this.packet
    if (this.end - o < 16) {
      this.anomaly('link.truncated', true)
      return
    }
    p.sllPacketType = r16(b, o)
    const arphrd = r16(b, o + 2)
    if (r16(b, o + 4) === 6) p.srcMacOffset = o + 6
    this.cookedProtocol(b, arphrd, r16(b, o + 14), o + 16)
  }

  /*
   * Linux cooked capture v2 (LINKTYPE_LINUX_SLL2)
   *
   * +---------------------------+
   * |  Protocol type (2)        |
   * |  Reserved (2)             |
   * |  Interface index (4)      |
   * |  ARPHRD_ type (2)         |
   * |  Packet type (1)          |
   * |  Link-layer addr len (1)  |
   * |  Link-layer address (8)   |
   * +---------------------------+
   */
  private sll2(b: Uint8Array, o: number): void {
    const p = this.packet
    if (this.end - o < 20) {
      this.anomaly('link.truncated', true)
      return
    }
    p.sllPacketType = b[o + 10]
    if (b[o + 11] === 6) p.srcMacOffset = o + 12
    this.cookedProtocol(b, r16(b, o + 8), r16(b, o), o + 20)
  }

  private cookedProtocol(b: Uint8Array, arphrd: number, protocol: number, off: number): void {
    const p = this.packet
    // ARPHRD_NETLINK carries a netlink family; protocols < 0x600 are LLC/802.3 pseudo-values
    if (arphrd === 824 || protocol < 0x0600) {
      p.etherType = protocol
      p.networkOffset = off
      p.net = 'other'
      this.setPayload(off, this.end)
      return
    }
    this.network(b, protocol, off)
  }

  /*
   * BSD loopback (LINKTYPE_NULL: host byte order; LINKTYPE_LOOP: network byte order)
   *
   * +---------------------------+
   * |  Address family (4)       |  2 = AF_INET, 24/28/30 = AF_INET6 (BSD variants)
   * +---------------------------+
   */
  private loopback(b: Uint8Array, o: number, networkOrderFirst: boolean): void {
    const p = this.packet
    if (this.end - o < 4) {
      this.anomaly('link.truncated', true)
      return
    }
    const le = (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0
    const be = r32(b, o)
    const first = networkOrderFirst ? be : le
    const second = networkOrderFirst ? le : be
    const fam = loopFamilyEthertype(first) !== 0 ? first : second
    p.loopbackFamily = fam
    const type = loopFamilyEthertype(fam)
    if (type === 0) {
      p.networkOffset = o + 4
      p.net = 'other'
      this.setPayload(o + 4, this.end)
      this.anomaly('link.unknown_family', false)
      return
    }
    this.network(b, type, o + 4)
  }

  private rawIp(b: Uint8Array, off: number): void {
    if (this.end <= off) {
      this.anomaly('ip.truncated', true)
      return
    }
    const v = b[off] >> 4
    if (v === 4) this.network(b, ETHERTYPE.IPV4, off)
    else if (v === 6) this.network(b, ETHERTYPE.IPV6, off)
    else {
      const p = this.packet
      p.networkOffset = off
      p.net = 'other'
      this.setPayload(off, this.end)
      this.anomaly('ip.bad_version', false)
    }
  }

  /** Walks VLAN tags then dispatches on the ethertype at `off`. */
  private network(b: Uint8Array, type: number, off: number): void {
    const p = this.packet
    while (type === ETHERTYPE.VLAN || type === ETHERTYPE.QINQ || type === ETHERTYPE.VLAN_9100) {
      if (p.vlanIds.length >= this.maxVlanTags) {
        p.etherType = type
        p.networkOffset = off
        p.net = 'other'
        this.setPayload(off, this.end)
        this.anomaly('vlan.too_many_tags', false, true)
        return
      }
      if (off + 4 > this.end) {
        this.anomaly('vlan.truncated', true)
        return
      }
      p.vlanIds.push(r16(b, off) & 0x0fff)
      type = r16(b, off + 2)
      off += 4
    }
    p.etherType = type
    p.networkOffset = off
    if (type === ETHERTYPE.IPV4) this.ipv4(b, off)
    else if (type === ETHERTYPE.IPV6) this.ipv6(b, off)
    else if (type === ETHERTYPE.ARP) this.arp(b, off)
    else {
      p.net = 'other'
      this.setPayload(off, this.end)
      this.anomaly('link.unknown_ethertype', false)
    }
  }

  /*
   * ARP (RFC 826) for Ethernet / IPv4:
   *
   * +---------------+---------------+---------------+---------------+
   * |     Hardware type (1)         |     Protocol type (0x0800)    |
   * +---------------+---------------+---------------+---------------+
   * |  HLEN (6)     |  PLEN (4)     |          Operation            |
   * +---------------+---------------+---------------+---------------+
   * |  Sender MAC (6) | Sender IP (4) | Target MAC (6) | Target IP (4) |
   * +---------------------------------------------------------------+
   */
  private arp(b: Uint8Array, off: number): void {
    const p = this.packet
    const a = p.arp
    p.net = 'arp'
    if (off + 8 > this.end) {
      this.anomaly('arp.truncated', true)
      return
    }
    a.hardwareType = r16(b, off)
    a.protocolType = r16(b, off + 2)
    a.op = r16(b, off + 6)
    this.setPayload(off + 8, this.end)
    if (a.hardwareType !== 1 || a.protocolType !== 0x0800 || b[off + 4] !== 6 || b[off + 5] !== 4) {
      this.anomaly('arp.unsupported', false)
      return
    }
    if (off + 28 > this.end) {
      this.anomaly('arp.truncated', true)
      return
    }
    a.senderMacOffset = off + 8
    a.senderIpOffset = off + 14
    a.targetMacOffset = off + 18
    a.targetIpOffset = off + 24
    this.setPayload(off + 28, off + 28)
  }

  /*
   * IPv4 header, RFC 791 §3.1:
   *
   *  0                   1                   2                   3
   *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   * |Version|  IHL  |Type of Service|          Total Length         |
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   * |         Identification        |Flags|      Fragment Offset    |
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   * |  Time to Live |    Protocol   |         Header Checksum       |
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   * |                       Source Address                          |
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   * |                    Destination Address                        |
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   * |                    Options                    |    Padding    |
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   */
  private ipv4(b: Uint8Array, off: number): void {
    const p = this.packet
    p.net = 'ipv4'
    p.ipOffset = off
    const avail = this.end - off
    if (avail > 0 && b[off] >> 4 !== 4) {
      this.anomaly('ipv4.bad_version', false)
      return
    }
    if (avail < 20) {
      this.anomaly('ipv4.truncated', true)
      return
    }
    p.ipVersion = 4
    const ihl = (b[off] & 0x0f) << 2
    p.ipHeaderLength = ihl
    p.tos = b[off + 1]
    const total = r16(b, off + 2)
    p.ipTotalLength = total
    p.fragId = r16(b, off + 4)
    const ff = r16(b, off + 6)
    p.dontFragment = (ff & 0x4000) !== 0
    p.moreFragments = (ff & 0x2000) !== 0
    p.fragOffset = (ff & 0x1fff) << 3
    p.isFragment = p.moreFragments || p.fragOffset !== 0
    p.ttl = b[off + 8]
    const proto = b[off + 9]
    p.proto = proto
    p.fragNextHeader = proto
    p.unfragmentableLength = ihl
    p.ipEnd = Math.min(this.end, off + 20)
    if ((ff & 0x8000) !== 0) this.anomaly('ipv4.reserved_flag', false)
    if (ihl < 20) {
      this.anomaly('ipv4.bad_header_length', false)
      return
    }
    if (ihl > avail) {
      this.anomaly('ipv4.truncated', true)
      return
    }
    if (total < ihl) {
      this.anomaly('ipv4.bad_total_length', false)
      return
    }
    let end = off + total
    if (end > this.end) {
      this.anomaly('ipv4.truncated', true)
      end = this.end
    }
    p.ipEnd = end
    const start = off + ihl
    p.ipPayloadOffset = start
    if (p.isFragment) {
      p.fragDataOffset = start
      p.fragDataLength = end - start
      if (p.fragOffset + (total - ihl) > 65535) this.anomaly('ipv4.frag_too_large', false)
      if (p.fragOffset !== 0) {
        this.setPayload(start, end)
        return
      }
    }
    this.l4(b, proto, start, end, p.isFragment)
  }

  /*
   * IPv6 header, RFC 8200 §3:
   *
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   * |Version| Traffic Class |           Flow Label                  |
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   * |         Payload Length        |  Next Header  |   Hop Limit   |
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   * |                     Source Address (16)                       |
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   * |                   Destination Address (16)                    |
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   *
   * Extension headers (RFC 8200 §4.3-4.6, AH RFC 4302 §2):
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   * |  Next Header  |  Hdr Ext Len  |  ... (Hdr Ext Len + 1) * 8 bytes; AH: (len + 2) * 4
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   *
   * Fragment header, RFC 8200 §4.5:
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   * |  Next Header  |   Reserved    |      Fragment Offset    |Res|M|
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   * |                         Identification                        |
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   */
  private ipv6(b: Uint8Array, off: number): void {
    const p = this.packet
    p.net = 'ipv6'
    p.ipOffset = off
    if (this.end > off && b[off] >> 4 !== 6) {
      this.anomaly('ipv6.bad_version', false)
      return
    }
    if (this.end - off < 40) {
      this.anomaly('ipv6.truncated', true)
      return
    }
    p.ipVersion = 6
    p.tos = ((b[off] & 0x0f) << 4) | (b[off + 1] >> 4)
    p.flowLabel = ((b[off + 1] & 0x0f) << 16) | (b[off + 2] << 8) | b[off + 3]
    p.ttl = b[off + 7]
    const plen = r16(b, off + 4)
    let nh = b[off + 6]
    p.ipTotalLength = 40 + plen
    let end = off + 40 + plen
    if (plen === 0 && nh === IPPROTO.HOPOPTS && this.end > off + 40) {
      // RFC 2675 jumbogram: the length is in a hop-by-hop option; use what was captured
      this.anomaly('ipv6.jumbogram', false)
      end = this.end
    } else if (end > this.end) {
      this.anomaly('ipv6.truncated', true)
      end = this.end
    }
    p.ipEnd = end
    let cur = off + 40
    let nhOff = off + 6
    let count = 0
    let inFirstFragment = false
    for (;;) {
      if (!isIpv6ExtHeader(nh)) break
      if (count >= this.maxExtHeaders) {
        this.anomaly('ipv6.too_many_ext_headers', false, true)
        this.ipv6Stop(nh, cur, end, count)
        return
      }
      if (nh === IPPROTO.HOPOPTS && count > 0) this.anomaly('ipv6.hopopts_not_first', false)
      if (nh === IPPROTO.FRAGMENT) {
        if (p.hasFragmentHeader) {
          this.anomaly('ipv6.multiple_fragment_headers', false)
          this.ipv6Stop(nh, cur, end, count)
          return
        }
        if (cur + 8 > end) {
          this.anomaly('ipv6.truncated', true)
          this.ipv6Stop(nh, cur, end, count)
          return
        }
        p.hasFragmentHeader = true
        p.unfragmentableLength = cur - off
        p.prevNextHeaderOffset = nhOff - off
        p.fragNextHeader = b[cur]
        const fo = r16(b, cur + 2)
        p.fragOffset = fo & 0xfff8
        p.moreFragments = (fo & 1) !== 0
        p.fragId = r32(b, cur + 4)
        p.fragDataOffset = cur + 8
        p.fragDataLength = end - (cur + 8)
        p.isFragment = p.fragOffset !== 0 || p.moreFragments
        nhOff = cur
        nh = b[cur]
        cur += 8
        count++
        if (p.isFragment) {
          if (p.fragOffset + p.fragDataLength > 65535) this.anomaly('ipv6.frag_too_large', false)
          if (p.fragOffset !== 0) {
            this.ipv6Stop(nh, cur, end, count)
            return
          }
          inFirstFragment = true
        }
        continue
      }
      const len = cur + 2 <= end ? (nh === IPPROTO.AH ? (b[cur + 1] + 2) << 2 : (b[cur + 1] + 1) << 3) : -1
      if (len < 0 || cur + len > end) {
        if (inFirstFragment) this.anomaly('ipv6.frag_l4_header_split', false)
        else this.anomaly('ipv6.truncated', true)
        this.ipv6Stop(nh, cur, end, count)
        return
      }
      nhOff = cur
      nh = b[cur]
      cur += len
      count++
    }
    p.ipv6ExtHeaderCount = count
    p.ipHeaderLength = cur - off
    p.ipPayloadOffset = cur
    p.proto = nh
    this.l4(b, nh, cur, end, inFirstFragment)
  }

  private ipv6Stop(nh: number, cur: number, end: number, count: number): void {
    const p = this.packet
    p.ipv6ExtHeaderCount = count
    p.ipHeaderLength = cur - p.ipOffset
    p.ipPayloadOffset = cur
    p.proto = nh
    this.setPayload(cur, end)
  }

  /**
   * Upper layer at [start, end). `partial` = first fragment of a fragmented datagram: lengths
   * refer to the whole datagram, and a header that does not fit is split, not truncated.
   */
  private l4(b: Uint8Array, proto: number, start: number, end: number, partial: boolean): void {
    const p = this.packet
    const v6 = p.ipVersion === 6
    if (proto === IPPROTO.TCP) this.tcp(b, start, end, partial)
    else if (proto === IPPROTO.UDP) this.udp(b, start, end, partial)
    else if (proto === IPPROTO.ICMP && !v6) this.icmp(b, start, end, partial, false)
    else if (proto === IPPROTO.ICMPV6 && v6) this.icmp(b, start, end, partial, true)
    else this.setPayload(start, end)
  }

  private split(start: number, end: number): void {
    this.anomaly(this.packet.ipVersion === 6 ? 'ipv6.frag_l4_header_split' : 'ipv4.frag_l4_header_split', false)
    this.setPayload(start, end)
  }

  /*
   * TCP header, RFC 9293 §3.1:
   *
   *  0                   1                   2                   3
   *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   * |          Source Port          |       Destination Port        |
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   * |                        Sequence Number                        |
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   * |                    Acknowledgment Number                      |
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   * |  Data |       |C|E|U|A|P|R|S|F|                               |
   * | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
   * |       |       |R|E|G|K|H|T|N|N|                               |
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   * |           Checksum            |         Urgent Pointer        |
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   * |                           [Options]                           |
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   */
  private tcp(b: Uint8Array, start: number, end: number, partial: boolean): void {
    const p = this.packet
    if (end - start < 20) {
      if (partial) this.split(start, end)
      else {
        this.setPayload(start, end)
        this.anomaly('tcp.truncated', true)
      }
      return
    }
    p.l4 = 'tcp'
    p.l4Offset = start
    p.srcPort = r16(b, start)
    p.dstPort = r16(b, start + 2)
    p.seq = r32(b, start + 4)
    p.ack = r32(b, start + 8)
    const doff = (b[start + 12] >> 4) << 2
    p.tcpFlags = b[start + 13]
    p.window = r16(b, start + 14)
    p.tcpChecksum = r16(b, start + 16)
    p.urgentPointer = r16(b, start + 18)
    p.l4HeaderLength = doff
    if (doff < 20) {
      p.l4HeaderLength = 20
      this.setPayload(start + 20, start + 20)
      this.anomaly('tcp.bad_data_offset', false)
      return
    }
    if (start + doff > end) {
      this.setPayload(end, end)
      if (partial) this.split(end, end)
      else if (p.truncated) this.anomaly('tcp.truncated', true)
      else this.anomaly('tcp.bad_data_offset', true)
      return
    }
    if (doff > 20) this.tcpOptions(b, start + 20, start + doff)
    this.setPayload(start + doff, end)
  }

  /*
   * TCP options, RFC 9293 §3.2 (EOL 0, NOP 1, MSS 2), RFC 7323 §2.2 / §3.2 (window scale 3,
   * timestamps 8), RFC 2018 §2 / §3 (SACK-permitted 4, SACK 5):
   *
   * +--------+--------+---------...
   * |  Kind  | Length |  data (Length - 2)
   * +--------+--------+---------...
   */
  private tcpOptions(b: Uint8Array, s: number, e: number): void {
    const p = this.packet
    p.tcpOptionsOffset = s
    p.tcpOptionsLength = e - s
    let i = s
    while (i < e) {
      const kind = b[i]
      if (kind === 0) break
      if (kind === 1) {
        i++
        continue
      }
      if (i + 1 >= e) {
        this.anomaly('tcp.bad_option', false)
        return
      }
      const len = b[i + 1]
      if (len < 2 || i + len > e) {
        this.anomaly('tcp.bad_option', false)
        return
      }
      switch (kind) {
        case 2:
          if (len === 4) p.mss = r16(b, i + 2)
          else this.anomaly('tcp.bad_option', false)
          break
        case 3:
          if (len === 3) p.windowScale = b[i + 2]
          else this.anomaly('tcp.bad_option', false)
          break
        case 4:
          if (len === 2) p.sackPermitted = true
          else this.anomaly('tcp.bad_option', false)
          break
        case 5:
          if (len >= 10 && ((len - 2) & 7) === 0) p.sackBlocks = (len - 2) >> 3
          else this.anomaly('tcp.bad_option', false)
          break
        case 8:
          if (len === 10) {
            p.hasTimestamp = true
            p.tsVal = r32(b, i + 2)
            p.tsEcr = r32(b, i + 6)
          } else this.anomaly('tcp.bad_option', false)
          break
        default:
          break
      }
      i += len
    }
  }

  /*
   * UDP header, RFC 768:
   *
   *  0      7 8     15 16    23 24    31
   * +--------+--------+--------+--------+
   * |     Source      |   Destination   |
   * |      Port       |      Port       |
   * +--------+--------+--------+--------+
   * |     Length      |    Checksum     |
   * +--------+--------+--------+--------+
   */
  private udp(b: Uint8Array, start: number, end: number, partial: boolean): void {
    const p = this.packet
    if (end - start < 8) {
      if (partial) this.split(start, end)
      else {
        this.setPayload(start, end)
        this.anomaly('udp.truncated', true)
      }
      return
    }
    p.l4 = 'udp'
    p.l4Offset = start
    p.l4HeaderLength = 8
    p.srcPort = r16(b, start)
    p.dstPort = r16(b, start + 2)
    const ulen = r16(b, start + 4)
    p.udpLength = ulen
    p.udpChecksum = r16(b, start + 6)
    if (partial) {
      this.setPayload(start + 8, end)
      return
    }
    if (ulen < 8) {
      this.setPayload(start + 8, start + 8)
      this.anomaly('udp.bad_length', false)
    } else if (start + ulen > end) {
      this.setPayload(start + 8, end)
      if (p.truncated) this.anomaly('udp.truncated', true)
      else this.anomaly('udp.bad_length', true)
    } else {
      if (start + ulen < end) this.anomaly('udp.length_mismatch', false)
      this.setPayload(start + 8, start + ulen)
    }
  }

  /*
   * ICMP, RFC 792 / ICMPv6, RFC 4443 §2.1:
   *
   *  0                   1                   2                   3
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   * |     Type      |     Code      |          Checksum             |
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   * |   Identifier (echo/timestamp) |   Sequence Number             |  (errors: unused / MTU / pointer)
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   * |  data ... (errors: the offending IP header + 8 bytes or more)
   */
  private icmp(b: Uint8Array, start: number, end: number, partial: boolean, v6: boolean): void {
    const p = this.packet
    if (end - start < 8) {
      if (partial) this.split(start, end)
      else {
        this.setPayload(start, end)
        this.anomaly(v6 ? 'icmpv6.truncated' : 'icmp.truncated', true)
      }
      return
    }
    p.l4 = v6 ? 'icmpv6' : 'icmp'
    p.l4Offset = start
    p.l4HeaderLength = 8
    const type = b[start]
    p.icmpType = type
    p.icmpCode = b[start + 1]
    let echo: boolean
    let error: boolean
    if (v6) {
      echo = type === 128 || type === 129
      error = type >= 1 && type <= 4
    } else {
      echo = type === 0 || type === 8 || (type >= 13 && type <= 18)
      error = type === 3 || type === 4 || type === 5 || type === 11 || type === 12
    }
    if (echo) {
      p.icmpId = r16(b, start + 4)
      p.icmpSeq = r16(b, start + 6)
    }
    if (error && start + 8 < end) p.icmpEmbeddedOffset = start + 8
    this.setPayload(start + 8, end)
  }
}

function isIpv6ExtHeader(nh: number): boolean {
  // hop-by-hop, routing, fragment, AH, destination options, mobility, HIP, shim6
  return nh === 0 || nh === 43 || nh === 44 || nh === 51 || nh === 60 || nh === 135 || nh === 139 || nh === 140
}

function loopFamilyEthertype(fam: number): number {
  if (fam === 2) return ETHERTYPE.IPV4
  if (fam === 24 || fam === 28 || fam === 30) return ETHERTYPE.IPV6
  return 0
}

/** True when the packet has a complete IPv4 header whose checksum verifies. */
export function ipv4HeaderChecksumOk(pkt: DecodedPacket): boolean {
  if (pkt.ipVersion !== 4 || pkt.ipHeaderLength < 20) return false
  const end = pkt.ipOffset + pkt.ipHeaderLength
  if (end > pkt.frameEnd) return false
  return internetChecksum(pkt.frame, pkt.ipOffset, end) === 0
}

/**
 * Verifies the TCP/UDP/ICMP/ICMPv6 checksum against the pseudo-header. Returns null when it
 * cannot be verified (no such L4, a fragment, truncated data); an IPv4 UDP checksum of 0
 * (not computed, RFC 768) counts as valid. IPv6 routing headers are not followed for the final
 * destination.
 */
export function l4ChecksumOk(pkt: DecodedPacket): boolean | null {
  const r = l4ChecksumRange(pkt)
  if (r < 0) return null
  if (pkt.l4 === 'udp' && pkt.udpChecksum === 0) return pkt.ipVersion === 4
  return l4ChecksumFold(pkt, r) === 0
}

/** @internal end offset of the checksummed L4 range, or -1 when it cannot be checksummed */
export function l4ChecksumRange(pkt: DecodedPacket): number {
  if (pkt.l4 === 'none' || pkt.isFragment || pkt.truncated || pkt.l4Offset < 0) return -1
  if (pkt.l4 === 'udp') {
    const e = pkt.l4Offset + pkt.udpLength
    return pkt.udpLength >= 8 && e <= pkt.ipEnd ? e : -1
  }
  return pkt.ipEnd
}

/** @internal folded complement of pseudo-header + L4 bytes up to `end` (0 when the stored checksum is right) */
export function l4ChecksumFold(pkt: DecodedPacket, end: number): number {
  const len = end - pkt.l4Offset
  let initial = 0
  if (pkt.l4 !== 'icmp') {
    const proto = pkt.l4 === 'tcp' ? 6 : pkt.l4 === 'udp' ? 17 : 58
    initial = pseudoHeaderSum(pkt.srcAddr, pkt.dstAddr, proto, len)
  }
  return internetChecksum(pkt.frame, pkt.l4Offset, end, initial)
}
