/**
 * IP defragmentation (IPv4 RFC 791 section 3.2 "Fragmentation and Reassembly", IPv6 RFC 8200
 * section 4.5 "Fragment Header") with target-based overlap policies (see ./defrag-policy.ts).
 *
 * Input is an already-decoded fragment (the decoder lives elsewhere). The header fields we rely
 * on, for reference:
 *
 * RFC 791 section 3.1, Internet Header Format:
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |Version|  IHL  |Type of Service|          Total Length         |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |         Identification        |Flags|      Fragment Offset    |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |  Time to Live |    Protocol   |         Header Checksum       |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                       Source Address                          |
 *    |                    Destination Address                        |
 *    |                    Options                    |    Padding    |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    Flags: bit 0 reserved, bit 1 DF, bit 2 MF. Offset in 8-octet units.
 *
 * RFC 8200 section 4.5, Fragment Header (follows the unfragmentable part):
 *
 *    +---------------+---------------+-------------------------+-+-+
 *    |  Next Header  |   Reserved    |      Fragment Offset    |Res|M|
 *    +---------------+---------------+-------------------------+-+-+
 *    |                         Identification                        |
 *    +---------------+---------------+---------------+---------------+
 *
 * Rebuilt datagram:
 *  - v4: the header of the offset-0 fragment whose bytes won byte 0 (options kept as they came),
 *    MF and offset cleared (reserved bit and DF kept), Total Length set, checksum recomputed.
 *  - v6: the unfragmentable part of that fragment, with the next-header byte that held 44 set
 *    to the Fragment header's Next Header (`proto`) and Payload Length fixed.
 *
 * Datagram key: family, src, dst, proto, id.
 *
 * What happens to bad input (every case reports an anomaly of type 'defrag', never throws):
 *  - defrag.impossible_offset: the FRAGMENT is dropped and the datagram kept, except for an
 *    unaligned non-last fragment, which is cut down to a multiple of 8 like Linux and Snort do
 *    (dropped if nothing remains). reason: unaligned_offset | zero_length | unaligned_length |
 *    beyond_end | second_last | last_before_data.
 *  - defrag.too_large: the fragment AND the whole datagram are dropped (ping of death).
 *  - defrag.first_fragment_too_small: reported only; the fragment is kept.
 *  - defrag.overlap_conflict: reported once per fragment whose overlapping bytes differ from the
 *    bytes held so far; the policy decides who wins.
 *  - defrag.bad_header: header shorter than a minimal IPv4/IPv6 header: fragment dropped.
 *  - limits: see DEFRAG_LIMITS.
 */
import type {AnomalyReport, AnomalySink} from '../events/anomaly.js'
import {type DefragPolicy, newerWins} from './defrag-policy.js'

export type {DefragPolicy} from './defrag-policy.js'
export {DEFRAG_POLICIES, isDefragPolicy, newerWins} from './defrag-policy.js'

export interface DefragLimits {
  /** accepted fragments per datagram; one more drops the whole datagram (and that fragment) */
  maxFragmentsPerDatagram: number
  /** datagrams in flight; a new datagram beyond it evicts the OLDEST datagram */
  maxDatagrams: number
  /** bytes of fragment data + kept headers held in total; over it the OLDEST other datagrams
   * are evicted, and if that is not enough the datagram the fragment belongs to is dropped */
  maxBytes: number
  /** incomplete datagrams older than this (from their first fragment) are dropped, like
   * Linux's net.ipv4.ipfrag_time = 30 s */
  timeoutUs: number
  /** max IPv4 total length / IPv6 payload length (65,535; the IPv6 fixed header comes on top) */
  maxDatagramSize: number
}

export const DEFRAG_LIMITS: Readonly<DefragLimits> = Object.freeze({
  maxFragmentsPerDatagram: 256,
  maxDatagrams: 10_000,
  maxBytes: 32 * 1024 * 1024,
  timeoutUs: 30_000_000,
  maxDatagramSize: 65_535,
})

/** The default policy when neither `defaultPolicy` nor `policyFor` says otherwise. */
export const DEFAULT_DEFRAG_POLICY: DefragPolicy = 'linux'

export interface FragmentInput {
  family: 4 | 6
  src: string
  dst: string
  /** upper-layer protocol (v4 protocol field / v6 Fragment header next header) */
  proto: number
  /** v4 16-bit identification / v6 32-bit identification */
  id: number
  /** in bytes */
  offset: number
  moreFragments: boolean
  /** the fragment's payload: a VIEW into the caller's buffer (copied when kept) */
  data: Uint8Array
  /** v4: IPv4 header incl. options; v6: IPv6 header + unfragmentable extension headers. View. */
  header: Uint8Array
  /** v6: offset inside `header` of the next-header byte that holds 44 */
  prevNextHeaderOffset?: number
  /** packet time, microseconds */
  tsUs: number
}

export interface DefragStats {
  datagramsInFlight: number
  bytesHeld: number
  reassembled: number
  /** incomplete datagrams dropped (timeout, limits, too large) */
  dropped: number
  /** single fragments refused (impossible offsets, bad header) */
  fragmentsDropped: number
}

export interface DefragOptions {
  defaultPolicy?: DefragPolicy
  policyFor?: (dst: string) => DefragPolicy | undefined
  limits?: Partial<DefragLimits>
  onAnomaly: AnomalySink
}

const TCP = 6
const UDP = 17
const V6_FRAGMENT = 44

/** one received fragment whose bytes are still visible somewhere in the datagram */
interface FragRec {
  off: number
  end: number
  /** view into the caller's buffer during insertion, then an owned copy if it won any byte */
  bytes: Uint8Array
  /** number of pieces referencing this fragment */
  pieces: number
}

/** a maximal run of bytes [start, end) currently taken from `frag` */
interface Piece {
  start: number
  end: number
  frag: FragRec
}

interface Datagram {
  key: string
  family: 4 | 6
  src: string
  dst: string
  proto: number
  id: number
  policy: DefragPolicy
  createdUs: number
  /** sorted, non-overlapping */
  pieces: Piece[]
  /** bytes covered by pieces */
  covered: number
  /** length of the fragmentable part once the last fragment is known, else -1 */
  totalLen: number
  /** highest end of any accepted fragment */
  maxEnd: number
  fragments: number
  /** bytes charged to this datagram in stats.bytesHeld */
  bytes: number
  /** copy of the header of the offset-0 fragment that owns byte 0 */
  header: Uint8Array | null
  /** v6: where the 44 sits in `header` (-1 unknown) */
  prevNh: number
}

export class Defragmenter {
  private readonly limits: Readonly<DefragLimits>
  private readonly defaultPolicy: DefragPolicy
  private readonly policyFor: ((dst: string) => DefragPolicy | undefined) | undefined
  private readonly onAnomaly: AnomalySink
  private readonly table = new Map<string, Datagram>()
  private readonly st: DefragStats = {datagramsInFlight: 0, bytesHeld: 0, reassembled: 0, dropped: 0, fragmentsDropped: 0}
  /** reused piece list: insertion builds into it, then swaps it with the datagram's */
  private scratch: Piece[] = []
  // conflict tracking for the insertion in progress (avoids allocating a result object)
  private confStart = -1
  private confEnd = -1
  private newlyCovered = 0

  constructor(opts: DefragOptions) {
    this.limits = Object.freeze({...DEFRAG_LIMITS, ...(opts.limits ?? {})})
    this.defaultPolicy = opts.defaultPolicy ?? DEFAULT_DEFRAG_POLICY
    this.policyFor = opts.policyFor
    this.onAnomaly = opts.onAnomaly
  }

  /** live counters (read-only view) */
  get stats(): Readonly<DefragStats> {
    return this.st
  }

  /** returns the whole reassembled IP datagram (new buffer) once complete, else null */
  add(frag: FragmentInput): Uint8Array | null {
    this.expire(frag.tsUs)
    const lim = this.limits
    const hdr = frag.header
    const minHdr = frag.family === 4 ? 20 : 40
    if (hdr.length < minHdr) {
      this.st.fragmentsDropped++
      this.report(frag, 'defrag.bad_header', {headerLength: hdr.length})
      return null
    }
    const off = frag.offset
    let len = frag.data.length
    if (off < 0 || off % 8 !== 0 || !Number.isInteger(off)) {
      return this.refuse(frag, 'unaligned_offset', off, len)
    }
    // RFC 791 total length / RFC 8200 payload length are 16-bit fields
    const size = (frag.family === 4 ? hdr.length : hdr.length - 40) + off + len
    const key = frag.family + '|' + frag.proto + '|' + frag.id + '|' + frag.src + '|' + frag.dst
    let dg = this.table.get(key)
    if (size > lim.maxDatagramSize) {
      if (dg) this.dropDatagram(dg)
      this.st.fragmentsDropped++
      this.report(frag, 'defrag.too_large', {offset: off, length: len, size, max: lim.maxDatagramSize})
      return null
    }
    const more = frag.moreFragments
    if (off === 0 && more) this.checkFirst(frag, len)
    if (more) {
      if (len === 0) return this.refuse(frag, 'zero_length', off, len)
      if (len % 8 !== 0) {
        // RFC 791: every fragment but the last carries a multiple of 8 octets. Linux and
        // Snort cut the tail off and go on; so do we.
        this.report(frag, 'defrag.impossible_offset', {reason: 'unaligned_length', offset: off, length: len})
        len -= len % 8
        if (len === 0) {
          this.st.fragmentsDropped++
          return null
        }
      }
    }
    const end = off + len
    if (dg) {
      if (more && dg.totalLen >= 0 && end > dg.totalLen) return this.refuse(frag, 'beyond_end', off, len, dg.totalLen)
      if (!more && dg.totalLen >= 0 && end !== dg.totalLen) return this.refuse(frag, 'second_last', off, len, dg.totalLen)
      if (!more && dg.maxEnd > end) return this.refuse(frag, 'last_before_data', off, len, dg.maxEnd)
    }

    if (!dg) {
      if (this.table.size >= lim.maxDatagrams) {
        const oldest = this.table.values().next().value
        if (oldest) this.limitDrop(oldest, 'defrag.limit_datagrams', 'maxDatagrams', lim.maxDatagrams, 'drop_oldest')
      }
      dg = {
        key, family: frag.family, src: frag.src, dst: frag.dst, proto: frag.proto, id: frag.id,
        policy: (this.policyFor && this.policyFor(frag.dst)) ?? this.defaultPolicy,
        createdUs: frag.tsUs, pieces: [], covered: 0, totalLen: -1, maxEnd: 0, fragments: 0, bytes: 0,
        header: null, prevNh: -1,
      }
      this.table.set(key, dg)
      this.st.datagramsInFlight = this.table.size
    }
    if (dg.fragments >= lim.maxFragmentsPerDatagram) {
      this.limitDrop(dg, 'defrag.limit_fragments', 'maxFragmentsPerDatagram', lim.maxFragmentsPerDatagram, 'drop_datagram')
      return null
    }
    const charge = len + (off === 0 ? hdr.length : 0)
    if (this.st.bytesHeld + charge > lim.maxBytes && !this.makeRoom(dg, charge)) {
      this.limitDrop(dg, 'defrag.limit_bytes', 'maxBytes', lim.maxBytes, 'drop_datagram')
      return null
    }

    // --- insert ---
    const rec: FragRec = {off, end, bytes: len === frag.data.length ? frag.data : frag.data.subarray(0, len), pieces: 0}
    this.insert(dg, rec)
    dg.fragments++
    if (end > dg.maxEnd) dg.maxEnd = end
    if (!more) dg.totalLen = end
    if (this.confStart >= 0) {
      this.report(dg, 'defrag.overlap_conflict', {offset: this.confStart, length: this.confEnd - this.confStart, policy: dg.policy})
    }
    if (rec.pieces > 0) {
      // the caller's buffer is reused: keep an own copy (not .slice(): on a Buffer it is a view)
      rec.bytes = new Uint8Array(rec.bytes)
      this.charge(dg, len)
    }
    if (off === 0 && ((dg.pieces.length > 0 && dg.pieces[0].frag === rec) || (end === 0 && dg.header === null))) {
      this.setHeader(dg, frag)
    }
    if (dg.totalLen >= 0 && dg.covered === dg.totalLen && dg.header !== null) {
      const out = this.build(dg)
      this.remove(dg)
      this.st.reassembled++
      return out
    }
    return null
  }

  /** drop datagrams older than the timeout; report each incomplete one dropped */
  expire(nowUs: number): void {
    // nearly always empty (most traffic is not fragmented): no iterator for an empty table
    if (this.table.size === 0) return
    const timeout = this.limits.timeoutUs
    // Map iteration is insertion (= creation) order: stop at the first young datagram.
    for (const dg of this.table.values()) {
      if (nowUs - dg.createdUs < timeout) break
      this.report(dg, 'defrag.timeout', {ageUs: nowUs - dg.createdUs, fragments: dg.fragments, covered: dg.covered, totalLength: dg.totalLen})
      this.dropDatagram(dg)
    }
  }

  // ------------------------------------------------------------------------------------------

  /**
   * Merge `rec` into the datagram's piece list under the datagram's policy, counting the bytes
   * newly covered and the first/last conflicting overlap.
   */
  private insert(dg: Datagram, rec: FragRec): void {
    const policy = dg.policy
    const nOff = rec.off
    const nEnd = rec.end
    const nb = rec.bytes
    const out = this.scratch
    out.length = 0
    this.confStart = -1
    this.confEnd = -1
    this.newlyCovered = 0
    let cursor = nOff // first byte of the new fragment not yet placed
    const pieces = dg.pieces
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i]
      if (p.end <= nOff || p.start >= nEnd) {
        if (p.start >= nEnd && cursor < nEnd) {
          this.gap(out, cursor, nEnd, rec)
          cursor = nEnd
        }
        out.push(p)
        continue
      }
      const o = p.frag
      o.pieces-- // p itself is replaced by up to three parts
      if (p.start < nOff) this.push(out, p.start, nOff, o)
      const is = p.start > nOff ? p.start : nOff
      const ie = p.end < nEnd ? p.end : nEnd
      if (cursor < is) this.gap(out, cursor, is, rec)
      // conflict: bytes differ where both fragments cover
      const ob = o.bytes
      for (let b = is; b < ie; b++) {
        if (ob[b - o.off] !== nb[b - nOff]) {
          if (this.confStart < 0 || b < this.confStart) this.confStart = b
          let last = ie - 1
          while (ob[last - o.off] === nb[last - nOff]) last--
          if (last + 1 > this.confEnd) this.confEnd = last + 1
          break
        }
      }
      if (newerWins(policy, o.off, o.end, nOff, nEnd)) this.push(out, is, ie, rec)
      else this.push(out, is, ie, o)
      cursor = ie
      if (p.end > nEnd) this.push(out, nEnd, p.end, o)
      if (o.pieces === 0) this.uncharge(dg, o.bytes.length)
    }
    if (cursor < nEnd) this.gap(out, cursor, nEnd, rec)
    dg.covered += this.newlyCovered
    this.scratch = pieces
    pieces.length = 0
    dg.pieces = out
  }

  private gap(out: Piece[], start: number, end: number, rec: FragRec): void {
    this.newlyCovered += end - start
    this.push(out, start, end, rec)
  }

  /** append [start,end) of `frag`, merging with the previous piece when it continues it */
  private push(out: Piece[], start: number, end: number, frag: FragRec): void {
    const last = out.length > 0 ? out[out.length - 1] : undefined
    if (last !== undefined && last.frag === frag && last.end === start) {
      last.end = end
      return
    }
    out.push({start, end, frag})
    frag.pieces++
  }

  private setHeader(dg: Datagram, frag: FragmentInput): void {
    if (dg.header) this.uncharge(dg, dg.header.length)
    dg.header = new Uint8Array(frag.header) // copy
    this.charge(dg, dg.header.length)
    if (frag.family === 6) {
      const p = frag.prevNextHeaderOffset
      dg.prevNh = p !== undefined && Number.isInteger(p) && p >= 0 && p < dg.header.length ? p : findFragmentNextHeader(dg.header)
    }
  }

  private build(dg: Datagram): Uint8Array {
    const h = dg.header as Uint8Array
    const hl = h.length
    const out = new Uint8Array(hl + dg.totalLen)
    out.set(h, 0)
    for (const p of dg.pieces) {
      const f = p.frag
      out.set(f.bytes.subarray(p.start - f.off, p.end - f.off), hl + p.start)
    }
    if (dg.family === 4) {
      const total = hl + dg.totalLen
      out[2] = total >>> 8
      out[3] = total & 0xff
      out[6] &= 0xc0 // keep reserved + DF, clear MF and the offset's high bits
      out[7] = 0
      out[10] = 0
      out[11] = 0
      const sum = internetChecksum(out, 0, hl)
      out[10] = sum >>> 8
      out[11] = sum & 0xff
    } else {
      const plen = hl - 40 + dg.totalLen
      out[4] = plen >>> 8
      out[5] = plen & 0xff
      if (dg.prevNh >= 0) out[dg.prevNh] = dg.proto & 0xff
    }
    return out
  }

  /** RFC 793 / RFC 768: the first fragment must carry the whole transport header */
  private checkFirst(frag: FragmentInput, len: number): void {
    let need = 0
    if (frag.proto === TCP) {
      need = 20
      if (len >= 13) {
        const doff = (frag.data[12] >>> 4) * 4
        if (doff > need) need = doff
      }
    } else if (frag.proto === UDP) {
      need = 8
    }
    if (len < need) this.report(frag, 'defrag.first_fragment_too_small', {proto: frag.proto, length: len, need})
  }

  private refuse(frag: FragmentInput, reason: string, offset: number, length: number, end?: number): null {
    this.st.fragmentsDropped++
    const detail: Record<string, number | string> = {reason, offset, length}
    if (end !== undefined) detail.datagramEnd = end
    this.report(frag, 'defrag.impossible_offset', detail)
    return null
  }

  /** evict the oldest datagrams other than `keep` until `charge` more bytes fit */
  private makeRoom(keep: Datagram, charge: number): boolean {
    const max = this.limits.maxBytes
    for (const dg of this.table.values()) {
      if (this.st.bytesHeld + charge <= max) return true
      if (dg === keep) continue
      this.limitDrop(dg, 'defrag.limit_bytes', 'maxBytes', max, 'drop_oldest')
    }
    return this.st.bytesHeld + charge <= max
  }

  private limitDrop(dg: Datagram, event: string, name: keyof DefragLimits, limit: number, action: string): void {
    this.report(dg, event, {limitName: name, limit, action, fragments: dg.fragments, bytes: dg.bytes})
    this.dropDatagram(dg)
  }

  private dropDatagram(dg: Datagram): void {
    this.remove(dg)
    this.st.dropped++
  }

  private remove(dg: Datagram): void {
    if (this.table.get(dg.key) !== dg) return
    this.table.delete(dg.key)
    this.st.bytesHeld -= dg.bytes
    dg.bytes = 0
    dg.pieces = []
    dg.header = null
    this.st.datagramsInFlight = this.table.size
  }

  private charge(dg: Datagram, n: number): void {
    dg.bytes += n
    this.st.bytesHeld += n
  }

  private uncharge(dg: Datagram, n: number): void {
    dg.bytes -= n
    this.st.bytesHeld -= n
  }

  private report(who: {src: string; dst: string; id: number}, event: string, extra: Record<string, number | string | boolean>): void {
    const report: AnomalyReport = {type: 'defrag', event, detail: {src: who.src, dst: who.dst, id: who.id, ...extra}}
    this.onAnomaly(report)
  }
}

/**
 * Where, in an IPv6 unfragmentable part (fixed header + extension headers, RFC 8200 section
 * 4), the next-header byte holding 44 (Fragment) sits; -1 if the chain does not lead there.
 */
export function findFragmentNextHeader(h: Uint8Array): number {
  if (h.length < 40) return -1
  let at = 6
  let pos = 40
  for (let guard = 0; guard < 32; guard++) {
    const nh = h[at]
    if (nh === V6_FRAGMENT) return at
    if (pos + 2 > h.length) return -1
    let len: number
    if (nh === 0 || nh === 43 || nh === 60) len = (h[pos + 1] + 1) * 8 // HbH, Routing, DestOpts
    else if (nh === 51) len = (h[pos + 1] + 2) * 4 // AH, RFC 4302
    else return -1
    at = pos
    pos += len
  }
  return -1
}

/** RFC 1071 Internet checksum over buf[start, start+len): the value to store (big-endian). */
export function internetChecksum(buf: Uint8Array, start: number, len: number): number {
  let sum = 0
  const end = start + len
  let i = start
  for (; i + 1 < end; i += 2) sum += (buf[i] << 8) | buf[i + 1]
  if (i < end) sum += buf[i] << 8
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
  return ~sum & 0xffff
}
