/**
 * The capture filter of inline mode: exactly the frames nftables diverts (nft.ts). The handles
 * capture on the veth pairs, which carry nothing but diverted frames, so the filter is a
 * defence (anything else on a pair, e.g. a frame sent by hand, is not taken for traffic):
 * - protected service tuples in both directions, IPv4 and IPv6;
 * - IPv4 fragments to or from protected IPv4 hosts (offset or MF set, RFC 791 §3.1);
 * - IPv6 frames to or from protected IPv6 hosts whose first next header (byte 6 of the fixed
 *   header, RFC 8200 §3) is not TCP, UDP or ICMPv6: every fragment (a Fragment header, 44, or
 *   any extension header before it) and TCP/UDP behind extension headers, which libpcap's
 *   `tcp port` does not see (it only looks at byte 6) but nftables does (it walks the chain).
 *
 *   RFC 8200 §3:
 *   +-------+---------------+-------------------------------+
 *   |Version| Traffic Class |           Flow Label          |
 *   +-------+-------+-------+-------+-----------+-----------+
 *   |         Payload Length        |  Next Header (6) |  Hop Limit  |
 *   +-------------------------------+------------------+-------------+
 *   |                Source Address (8..23)                         |
 *   |              Destination Address (24..39)                     |
 *
 * No `inbound`/`outbound` qualifiers: libpcap 1.10 loses the first matching frame with them (see
 * shared NOTES); our own sends are not looped back to the socket that sent them.
 */
import {PURE_ACK4_BPF, type DivertSets} from './nft.js'

/** longest filter compiled (libpcap's optimiser grows with terms) */
export const MAX_FILTER_TERMS = 2048

/** a filter that matches nothing (no protected service) */
export const MATCH_NOTHING = 'ip and ip[6:2] & 0x3fff != 0 and host 0.0.0.0'

/** IPv6 frames whose first next header is an extension header (or anything but TCP/UDP/ICMPv6) */
const V6_EXT = 'ip6[6] != 6 and ip6[6] != 17 and ip6[6] != 58'

/**
 * The filter for the divert sets. At most MAX_FILTER_TERMS address terms: the per-host terms
 * (fragments, extension headers) come first, then the service tuples; `onLimit` is told how many
 * were left out (their frames are diverted by nftables but not captured: the operator must know).
 */
export function captureFilter(sets: DivertSets, onLimit?: (omitted: number) => void): string {
  let budget = MAX_FILTER_TERMS
  let omitted = 0
  const hostTerms = (hosts: readonly string[]): string[] => {
    const n = Math.min(hosts.length, budget)
    budget -= n
    omitted += hosts.length - n
    return hosts.slice(0, n).map((h) => `host ${h}`)
  }
  const tuples = (lists: readonly (readonly [readonly string[], 'tcp' | 'udp'])[]): string[] => {
    const terms: string[] = []
    for (const [list, proto] of lists) {
      for (const el of list) {
        if (budget < 2) {
          omitted += 2
          continue
        }
        budget -= 2
        const [ip, port] = el.split(' . ')
        terms.push(`(dst host ${ip} and ${proto} dst port ${port})`, `(src host ${ip} and ${proto} src port ${port})`)
      }
    }
    return terms
  }
  const h4 = hostTerms(sets.hosts4)
  const h6 = hostTerms(sets.hosts6)
  const t4 = tuples([[sets.tcp4, 'tcp'], [sets.udp4, 'udp']])
  const t6 = tuples([[sets.tcp6, 'tcp'], [sets.udp6, 'udp']])
  if (omitted > 0) onLimit?.(omitted)
  const parts: string[] = []
  // pure ACKs are forwarded by the kernel (nft.ts PURE_ACK4_NFT): not captured either
  if (t4.length > 0) parts.push(`(ip and not ${PURE_ACK4_BPF} and (${t4.join(' or ')}))`)
  if (h4.length > 0 && sets.tcp4.length + sets.udp4.length > 0) parts.push(`(ip[6:2] & 0x3fff != 0 and (${h4.join(' or ')}))`)
  if (t6.length > 0) parts.push(`(ip6 and (${t6.join(' or ')}))`)
  if (h6.length > 0 && sets.tcp6.length + sets.udp6.length > 0) parts.push(`(ip6 and ${V6_EXT} and (${h6.join(' or ')}))`)
  return parts.length === 0 ? MATCH_NOTHING : parts.join(' or ')
}
