/**
 * The capture filter of inline mode: exactly the frames nftables diverts (protected service
 * tuples in both directions, and IPv4 fragments to or from protected hosts), so the kernel
 * bridge forwards everything else without a copy to user space. No `inbound`/`outbound`
 * qualifiers: libpcap 1.10 loses the first matching frame with them (see shared NOTES); our own
 * sends are not looped back to the socket that sent them.
 */
import type {DivertSets} from './nft.js'

/** longest filter compiled (libpcap's optimiser grows with terms) */
export const MAX_FILTER_TERMS = 2048

export function captureFilter(sets: DivertSets): string {
  const terms: string[] = []
  for (const [list, proto] of [[sets.tcp4, 'tcp'], [sets.udp4, 'udp']] as const) {
    for (const el of list) {
      if (terms.length >= MAX_FILTER_TERMS) break
      const [ip, port] = el.split(' . ')
      terms.push(`(dst host ${ip} and ${proto} dst port ${port})`, `(src host ${ip} and ${proto} src port ${port})`)
    }
  }
  const hosts = sets.hosts4.slice(0, MAX_FILTER_TERMS).map((h) => `host ${h}`)
  if (terms.length === 0) return 'ip and ip[6:2] & 0x3fff != 0 and host 0.0.0.0'
  const frag = hosts.length > 0 ? ` or (ip[6:2] & 0x3fff != 0 and (${hosts.join(' or ')}))` : ''
  return `(ip and (${terms.join(' or ')}))${frag}`
}
