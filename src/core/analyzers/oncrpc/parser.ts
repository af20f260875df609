/**
 * ONC RPC message parsing (RFC 5531 section 9 "RPC Message Protocol"; record marking section 11;
 * portmapper RFC 1833 section 3 (v2), rpcbind section 2 (v3/v4)). XDR: big-endian, 4-aligned.
 *
 * Record marking (TCP): each fragment is a 4-byte header: bit 31 = last fragment, bits 0-30 =
 * fragment length; a record is the concatenation of fragments up to the last one.
 *
 * call_body (msg_type 0):                      reply_body (msg_type 1):
 *   +------+---------+--------+------+------+    +------+---------+-------------------------+
 *   | xid  | CALL(0) | rpcvers| prog | vers |    | xid  | REPLY(1)| reply_stat (0 accepted) |
 *   +------+---------+--------+------+------+    +------+---------+-------------------------+
 *   | proc | cred: flavor, len, body | verf  |   accepted: verf(flavor,len,body) accept_stat results
 *   +------+-------------------------+-------+   denied: reject_stat ...
 *   | procedure arguments (XDR)              |
 */

export const PMAP_PROG = 100000

export function be32(b: Uint8Array, i: number): number {
  return ((b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) + b[i]! * 0x1000000
}

export interface RpcCall {
  xid: number
  rpcvers: number
  prog: number
  vers: number
  proc: number
  credFlavor: number
  credLength: number
  /** offset of the procedure arguments */
  argsStart: number
}

export interface RpcReply {
  xid: number
  replyStat: number
  /** accept_stat (accepted) or reject_stat (denied) */
  stat: number
  /** offset of the results (accepted, SUCCESS), -1 otherwise */
  resultsStart: number
}

export type RpcMessage = {status: 'ok'; call: RpcCall} | {status: 'ok'; reply: RpcReply} | {status: 'error'; reason: string}

/** one whole RPC message b[0, b.length) (RFC 5531 section 9) */
export function parseMessage(b: Uint8Array): RpcMessage {
  const n = b.length
  if (n < 8) return {status: 'error', reason: 'short'}
  const xid = be32(b, 0)
  const type = be32(b, 4)
  if (type === 0) {
    if (n < 32) return {status: 'error', reason: 'short'}
    const credFlavor = be32(b, 24)
    const credLength = be32(b, 28)
    if (credLength > 400 || 32 + credLength + 8 > n) return {status: 'error', reason: 'cred'}
    const v = 32 + ((credLength + 3) & ~3)
    const verfLength = be32(b, v + 4)
    if (verfLength > 400 || v + 8 + verfLength > n) return {status: 'error', reason: 'verf'}
    return {
      status: 'ok',
      call: {xid, rpcvers: be32(b, 8), prog: be32(b, 12), vers: be32(b, 16), proc: be32(b, 20), credFlavor, credLength, argsStart: v + 8 + ((verfLength + 3) & ~3)},
    }
  }
  if (type === 1) {
    if (n < 12) return {status: 'error', reason: 'short'}
    const replyStat = be32(b, 8)
    if (replyStat === 0) {
      if (n < 24) return {status: 'error', reason: 'short'}
      const verfLength = be32(b, 16)
      if (verfLength > 400 || 20 + verfLength + 4 > n) return {status: 'error', reason: 'verf'}
      const at = 20 + ((verfLength + 3) & ~3)
      const stat = be32(b, at)
      return {status: 'ok', reply: {xid, replyStat, stat, resultsStart: stat === 0 ? at + 4 : -1}}
    }
    return {status: 'ok', reply: {xid, replyStat, stat: n >= 16 ? be32(b, 12) : -1, resultsStart: -1}}
  }
  return {status: 'error', reason: 'msg_type'}
}

export interface XdrLengths {
  /** largest declared opaque/string/array length found */
  max: number
  /** a declared length runs past the arguments */
  exceeds: boolean
  /** offset of that length word */
  maxAt: number
}

/**
 * Declared XDR lengths in rpcbind/portmapper call arguments. rpcbind v3/v4 (RFC 1833 section 2.1)
 * rpcb = {prog, vers, netid<>, addr<>, owner<>}; GETADDR/SET/UNSET/GETVERSADDR carry it; v3
 * TADDR2UADDR carries a netbuf {maxlen, buf<>} and UADDR2TADDR a string. Portmapper v2 args are
 * fixed-size (no lengths) except CALLIT's (RFC 1833 section 3.2: prog, vers, proc, args<>), which
 * rpcbind decodes with the same unbounded xdr_bytes as v3/v4's (rpcb_svc_com.c xdr_encap_parms).
 * For other programs nothing is declared here.
 */
export function xdrLengths(b: Uint8Array, at: number, prog: number, vers: number, proc: number): XdrLengths {
  const out: XdrLengths = {max: 0, exceeds: false, maxAt: -1}
  if (prog !== PMAP_PROG || (vers < 3 && !(vers === 2 && proc === 5))) return out
  const n = b.length
  const str = (i: number): number => {
    if (i + 4 > n) {
      out.exceeds = true
      return n
    }
    const len = be32(b, i)
    if (len > out.max) {
      out.max = len
      out.maxAt = i
    }
    if (i + 4 + len > n) {
      out.exceeds = true
      return n
    }
    return i + 4 + Math.ceil(len / 4) * 4
  }
  // procedures with an rpcb argument: 1 SET, 2 UNSET, 3 GETADDR, 9 GETVERSADDR (v4), 10 INDIRECT (v4), 11 GETADDRLIST (v4)
  if (proc === 1 || proc === 2 || proc === 3 || proc === 9 || proc === 11) {
    let i = at + 8
    if (i > n) {
      out.exceeds = true
      return out
    }
    for (let k = 0; k < 3 && i < n; k++) i = str(i)
    if (i >= n && out.max === 0) out.exceeds = out.exceeds || i > n
  } else if (proc === 5 || proc === 10) {
    // CALLIT / BCAST (v2 and v3 5, v4 5/10 INDIRECT): prog, vers, proc, args<>
    if (at + 12 <= n) str(at + 12)
    else out.exceeds = true
  } else if (proc === 7) {
    // UADDR2TADDR: string
    str(at)
  } else if (proc === 8) {
    // TADDR2UADDR: netbuf {maxlen, buf<>}
    if (at + 4 <= n) {
      const maxlen = be32(b, at)
      if (maxlen > out.max) {
        out.max = maxlen
        out.maxAt = at
      }
      str(at + 4)
    } else out.exceeds = true
  }
  return out
}
