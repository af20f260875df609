/**
 * LDAPv3 message decoding (RFC 4511 §4 and §5.1): the BER subset LDAP allows — definite lengths
 * only, low tag numbers — read from one whole message without copying. Every length is checked
 * against its container; a message that breaks the rules is `malformed` with a reason, never an
 * exception.
 *
 *   LDAPMessage ::= SEQUENCE {                       30 len
 *        messageID       INTEGER (0 .. maxInt),      02 len id
 *        protocolOp      CHOICE { bindRequest ... }, [APPLICATION n]: 0x60|n constructed, 0x40|n primitive
 *        controls        [0] Controls OPTIONAL }     a0 len
 */

/** BER universal and LDAP context tags used here */
export const BER = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  OCTET_STRING: 0x04,
  ENUMERATED: 0x0a,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const

/** protocolOp application tag numbers (RFC 4511 §4.2-§4.14) -> unit kind */
export const LDAP_OPS: Readonly<Record<number, string>> = {
  0: 'bind_request',
  1: 'bind_response',
  2: 'unbind_request',
  3: 'search_request',
  4: 'search_result_entry',
  5: 'search_result_done',
  6: 'modify_request',
  7: 'modify_response',
  8: 'add_request',
  9: 'add_response',
  10: 'del_request',
  11: 'del_response',
  12: 'modify_dn_request',
  13: 'modify_dn_response',
  14: 'compare_request',
  15: 'compare_response',
  16: 'abandon_request',
  19: 'search_result_reference',
  23: 'extended_request',
  24: 'extended_response',
  25: 'intermediate_response',
}

/** the StartTLS extended operation (RFC 4511 §4.14.1) */
export const STARTTLS_OID = '1.3.6.1.4.1.1466.20037'

/**
 * Header bytes the framer reads to learn a message's length: tag, then a length of up to
 * 1 + 4 bytes. Every LDAPMessage is longer (messageID and an operation take at least 5 bytes).
 */
export const LDAP_HEADER = 6

/**
 * Total length (header included) of the message starting at b[o] (LDAP_HEADER bytes available),
 * or -1 when the bytes cannot start one: not a SEQUENCE, indefinite length, more than 4 length
 * bytes, or too short to hold a messageID and an operation.
 */
export function messageLength(b: Uint8Array, o: number): number {
  if (b[o] !== BER.SEQUENCE) return -1
  const l0 = b[o + 1]!
  let len: number
  let hdr: number
  if (l0 < 0x80) {
    len = l0
    hdr = 2
  } else {
    const n = l0 & 0x7f
    if (n === 0 || n > 4) return -1
    len = 0
    for (let i = 0; i < n; i++) len = len * 256 + b[o + 2 + i]!
    hdr = 2 + n
  }
  if (len < 5) return -1
  return hdr + len
}

/** one BER element: identifier octet, value span [vs, ve) */
export class Tlv {
  tag = 0
  vs = 0
  ve = 0
  /** why the last read failed */
  error = ''
  /** a truncated message: an element running past the end is cut there instead of failing */
  clamp = false

  /** read the element at b[off] within `end`; false (and `error`) when it does not fit or is not BER LDAP allows */
  read(b: Uint8Array, off: number, end: number): boolean {
    if (off + 2 > end) return this.fail('short element')
    const tag = b[off]!
    if ((tag & 0x1f) === 0x1f) return this.fail('high tag number')
    const l0 = b[off + 1]!
    let p = off + 2
    let len: number
    if (l0 < 0x80) len = l0
    else {
      const n = l0 & 0x7f
      if (n === 0) return this.fail('indefinite length')
      if (n > 4) return this.fail('length of more than 4 bytes')
      if (p + n > end) return this.fail('short length')
      len = 0
      for (let i = 0; i < n; i++) len = len * 256 + b[p + i]!
      p += n
    }
    if (len > end - p) {
      if (!this.clamp) return this.fail('length beyond its container')
      len = end - p
    }
    this.tag = tag
    this.vs = p
    this.ve = p + len
    return true
  }

  private fail(reason: string): false {
    this.error = reason
    return false
  }
}

/** a BER INTEGER or ENUMERATED value as a number (two's complement; at most 6 bytes, else NaN) */
export function berInt(b: Uint8Array, vs: number, ve: number): number {
  const n = ve - vs
  if (n === 0 || n > 6) return Number.NaN
  let v = b[vs]! & 0x80 ? -1 : 0
  for (let i = vs; i < ve; i++) v = v * 256 + b[i]!
  return v
}
