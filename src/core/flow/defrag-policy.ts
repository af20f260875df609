/**
 * Target-based overlap policies for IP fragment reassembly (Novak 2005, "Target-Based
 * Fragmentation Reassembly"; same names as Snort frag3 / stream_ip and Suricata defrag).
 *
 * Every policy is a PER-BYTE rule. For a byte already held from an older fragment O (the
 * fragment whose data currently occupies that byte) and covered again by a newer fragment N,
 * the rule decides who wins, looking only at the ORIGINAL extents of the two fragments
 * (offset = first byte, end = one past the last byte, before any trimming):
 *
 * | policy     | N (newer) wins the byte iff                            | modelled target              |
 * |------------|--------------------------------------------------------|------------------------------|
 * | first      | never (O always)                                       | Windows-like "first wins"    |
 * | last       | always                                                 | Cisco IOS-like "last wins"   |
 * | bsd        | N.offset < O.offset                                    | *BSD, AIX, IRIX, macOS       |
 * | bsd-right  | N.end > O.end, or (N.end == O.end and N.offset <= O.offset) | HP JetDirect            |
 * | linux      | N.offset <= O.offset                                   | Linux before 4.19 (see note) |
 * | windows    | N.offset < O.offset and N.end > O.end                  | Windows NT/2000/XP/2003      |
 * | solaris    | N.offset < O.offset and N.end >= O.end                 | Solaris, HP-UX               |
 *
 * Sources checked: Snort 3 src/stream/ip/ip_defrag.cc (Defrag::insert, left/right overlap
 * switches) and the classic Linux ip_frag_queue(): a new fragment is trimmed by a predecessor
 * that starts strictly before it and eats the head of / replaces any stored fragment that
 * starts at or after its own offset, hence `N.offset <= O.offset` (the brief's guess of
 * "equal offset only if N.end >= O.end" does not match either source). bsd-right in Snort
 * keeps the left fragment only when it reaches at least as far right as the new one and trims
 * the new one against a right fragment that outlasts it: the fragment that reaches further
 * right wins, ties on the end go to the newer one when it also starts at or before the older.
 * Windows and Solaris keep the older bytes unless the newer fragment starts strictly before
 * and ends after (windows) or at-or-after (solaris) the older one.
 *
 * Note: Linux since 4.19 / 2018 (CVE-2018-5391 hardening) and RFC 5722 for IPv6 silently
 * discard a datagram with overlapping fragments; 'linux' here models the classic behaviour,
 * which is what older kernels and most IDS configurations still assume.
 */
export type DefragPolicy = 'first' | 'last' | 'bsd' | 'bsd-right' | 'linux' | 'windows' | 'solaris'

export const DEFRAG_POLICIES: readonly DefragPolicy[] = Object.freeze([
  'first', 'last', 'bsd', 'bsd-right', 'linux', 'windows', 'solaris',
] as DefragPolicy[])

/** Type guard for configuration input (e.g. YAML). */
export function isDefragPolicy(s: unknown): s is DefragPolicy {
  return typeof s === 'string' && (DEFRAG_POLICIES as readonly string[]).includes(s)
}

/**
 * Does the newer fragment [nOff, nEnd) win a byte it shares with the older fragment
 * [oOff, oEnd)? See the table above. Pure, no allocation.
 */
export function newerWins(policy: DefragPolicy, oOff: number, oEnd: number, nOff: number, nEnd: number): boolean {
  switch (policy) {
    case 'first': return false
    case 'last': return true
    case 'bsd': return nOff < oOff
    case 'bsd-right': return nEnd > oEnd || (nEnd === oEnd && nOff <= oOff)
    case 'linux': return nOff <= oOff
    case 'windows': return nOff < oOff && nEnd > oEnd
    case 'solaris': return nOff < oOff && nEnd >= oEnd
    default: return false
  }
}
