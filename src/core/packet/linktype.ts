/**
 * Link-layer header types, as registered at https://www.tcpdump.org/linktypes.html
 * (the LINKTYPE_* values stored in pcap/pcapng files, not the platform DLT_* values).
 */
export const LINKTYPE = {
  /** BSD loopback: 4-byte address family in the capturing host's byte order */
  NULL: 0,
  /** Ethernet II / 802.3 */
  ETHERNET: 1,
  /** raw IPv4 or IPv6, the version nibble decides */
  RAW: 101,
  /** OpenBSD loopback: 4-byte address family (network byte order, either accepted) */
  LOOP: 108,
  /** Linux cooked capture v1, 16-byte header */
  LINUX_SLL: 113,
  /** raw IPv4 only */
  IPV4: 228,
  /** raw IPv6 only */
  IPV6: 229,
  /** Linux cooked capture v2, 20-byte header */
  LINUX_SLL2: 276,
} as const

export type Linktype = (typeof LINKTYPE)[keyof typeof LINKTYPE]

const NAMES: Record<number, string> = {
  0: 'NULL',
  1: 'ETHERNET',
  101: 'RAW',
  108: 'LOOP',
  113: 'LINUX_SLL',
  228: 'IPV4',
  229: 'IPV6',
  276: 'LINUX_SLL2',
}

/** `'ETHERNET'` for 1, ..., `'UNKNOWN(n)'` for values this decoder does not know. */
export function linktypeName(n: number): string {
  return NAMES[n] ?? `UNKNOWN(${n})`
}

/** True when PacketDecoder.decode understands frames of this link type. */
export function isSupportedLinktype(n: number): boolean {
  return Object.prototype.hasOwnProperty.call(NAMES, n)
}
