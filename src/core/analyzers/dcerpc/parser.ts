/**
 * DCE/RPC connection-oriented PDU parsing (C706 chapter 12 "RPC PDU Encodings", MS-RPCE 2.2.2).
 * Stateless: each function reads one PDU (or part of one) out of a contiguous byte view.
 *
 * C706 12.6.3.1 common header (16 bytes, integers in the byte order given by drep[0] bit 4):
 *
 *    0        1        2        3        4        5        6        7
 *  +--------+--------+--------+--------+--------+--------+--------+--------+
 *  |rpc_vers| minor  | PTYPE  |pfc_flgs|   packed_drep (4)                 |
 *  +--------+--------+--------+--------+--------+--------+--------+--------+
 *  |   frag_length   |   auth_length   |            call_id                |
 *  +--------+--------+--------+--------+--------+--------+--------+--------+
 *
 * request (12.6.4.9):  alloc_hint(4) p_cont_id(2) opnum(2) [object uuid(16)] stub... [auth]
 * response (12.6.4.10): alloc_hint(4) p_cont_id(2) cancel_count(1) reserved(1) stub... [auth]
 * fault (12.6.4.7):    alloc_hint(4) p_cont_id(2) cancel_count(1) reserved(1) status(4)
 * bind / alter_context (12.6.4.3): max_xmit_frag(2) max_recv_frag(2) assoc_group_id(4)
 *                       n_context_elem(1) pad(3) { p_cont_id(2) n_transfer_syn(1) pad(1)
 *                       abstract_syntax(uuid 16 + version 4) transfer_syntaxes(20 each) }*
 * bind_ack (12.6.4.4): max_xmit_frag(2) max_recv_frag(2) assoc_group_id(4)
 *                       sec_addr(length(2) + port_spec[length]) pad-to-4 n_results(1) pad(3)
 *                       { result(2) reason(2) transfer_syntax(20) }*
 * auth verifier (13.2.6.1): auth_pad[auth_pad_length] auth_type(1) auth_level(1)
 *                       auth_pad_length(1) reserved(1) auth_context_id(4) auth_value[auth_length]
 */

import {latin1} from '../line/text.js'

export const DCERPC_HEADER_LEN = 16
export const PFC_FIRST_FRAG = 0x01
export const PFC_LAST_FRAG = 0x02
export const PFC_OBJECT_UUID = 0x80

export const PTYPE_NAMES: Readonly<Record<number, string>> = {
  0: 'request',
  1: 'ping',
  2: 'response',
  3: 'fault',
  4: 'working',
  5: 'nocall',
  6: 'reject',
  7: 'ack',
  8: 'cl_cancel',
  9: 'fack',
  10: 'cancel_ack',
  11: 'bind',
  12: 'bind_ack',
  13: 'bind_nak',
  14: 'alter_context',
  15: 'alter_context_resp',
  16: 'auth3',
  17: 'shutdown',
  18: 'co_cancel',
  19: 'orphaned',
}

/** well-known interface UUIDs -> names (MS-RPCE, MS-SRVS, MS-LSAD, MS-NRPC, MS-SAMR, MS-DRSR, MS-DCOM, MS-EFSR, MS-WKST, MS-DSSP, MS-RPRN...) */
export const INTERFACE_NAMES: Readonly<Record<string, string>> = {
  '4b324fc8-1670-01d3-1278-5a47bf6ee188': 'srvsvc',
  '12345778-1234-abcd-ef00-0123456789ab': 'lsarpc',
  '12345678-1234-abcd-ef00-01234567cffb': 'netlogon',
  '12345778-1234-abcd-ef00-0123456789ac': 'samr',
  'e3514235-4b06-11d1-ab04-00c04fc2dcd2': 'drsuapi',
  'e1af8308-5d1f-11c9-91a4-08002b14a0fa': 'epmapper',
  '000001a0-0000-0000-c000-000000000046': 'ISystemActivator',
  '4d9f4ab8-7d1c-11cf-861e-0020af6e7c57': 'IRemoteActivation',
  '99fcfec4-5260-101b-bbcb-00aa0021347a': 'IOXIDResolver',
  'c681d488-d850-11d0-8c52-00c04fd90f7e': 'efsrpc',
  'df1941c5-fe89-4e79-bf10-463657acf44d': 'efsrpc',
  '6bffd098-a112-3610-9833-46c3f87e345a': 'wkssvc',
  '3919286a-b10c-11d0-9ba8-00c04fd92ef5': 'dssetup',
  '12345678-1234-abcd-ef00-0123456789ab': 'spoolss',
  '76f03f96-cdfd-44fc-a22c-64950a001209': 'IRemoteWinspool',
  '338cd001-2244-31f1-aaaa-900038001003': 'winreg',
  '367abb81-9844-35f1-ad32-98f038001003': 'svcctl',
  '1ff70682-0a51-30e8-076d-740be8cee98b': 'atsvc',
  '86d35949-83c9-4044-b424-db363231fd0c': 'ITaskSchedulerService',
  '82273fdc-e32a-18c3-3f78-827929dc23ea': 'eventlog',
  'afa8bd80-7d8a-11c9-bef4-08002b102989': 'mgmt',
  'a4f1db00-ca47-1067-b31f-00dd010662da': 'exchange_mapi',
  '8a885d04-1ceb-11c9-9fe8-08002b104860': 'ndr',
  '71710533-beba-4937-8319-b5dbef9ccc36': 'ndr64',
}

export interface DcerpcHeader {
  ptype: number
  flags: number
  le: boolean
  minor: number
  fragLength: number
  authLength: number
  callId: number
}

/** read a u16/u32 with the PDU's byte order */
export function rd16(b: Uint8Array, i: number, le: boolean): number {
  return le ? b[i]! | (b[i + 1]! << 8) : (b[i]! << 8) | b[i + 1]!
}
export function rd32(b: Uint8Array, i: number, le: boolean): number {
  return le ? (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16)) + b[i + 3]! * 0x1000000 : ((b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) + b[i]! * 0x1000000
}

export type HeaderResult = {status: 'ok'; header: DcerpcHeader} | {status: 'incomplete'} | {status: 'error'; reason: string}

/** Parse the 16-byte common header at `at` (C706 12.6.3.1). */
export function parseHeader(b: Uint8Array, at: number): HeaderResult {
  const header: DcerpcHeader = {ptype: 0, flags: 0, le: false, minor: 0, fragLength: 0, authLength: 0, callId: 0}
  const st = readHeader(b, at, header)
  return st === HEADER_OK ? {status: 'ok', header} : st === HEADER_INCOMPLETE ? {status: 'incomplete'} : {status: 'error', reason: 'version'}
}

export const HEADER_OK = 0
export const HEADER_INCOMPLETE = 1
/** not DCE/RPC version 5.0/5.1 */
export const HEADER_ERROR = 2

/** parseHeader without allocating: fills `out` (only on HEADER_OK) and returns HEADER_OK, HEADER_INCOMPLETE or HEADER_ERROR */
export function readHeader(b: Uint8Array, at: number, out: DcerpcHeader): number {
  if (b.length - at < DCERPC_HEADER_LEN) {
    // reject early what cannot be DCE/RPC
    if (b.length > at && b[at] !== 5) return HEADER_ERROR
    if (b.length > at + 1 && b[at + 1]! > 1) return HEADER_ERROR
    return HEADER_INCOMPLETE
  }
  if (b[at] !== 5 || b[at + 1]! > 1) return HEADER_ERROR
  const le = (b[at + 4]! & 0x10) !== 0
  out.ptype = b[at + 2]!
  out.flags = b[at + 3]!
  out.le = le
  out.minor = b[at + 1]!
  out.fragLength = rd16(b, at + 8, le)
  out.authLength = rd16(b, at + 10, le)
  out.callId = rd32(b, at + 12, le)
  return HEADER_OK
}

/** two hex digits per byte value */
const HEX2: readonly string[] = Array.from({length: 256}, (_, v) => v.toString(16).padStart(2, '0'))
/** source byte of each of the 16 canonical UUID bytes: the first three fields swapped when little-endian */
const UUID_ORDER_LE = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15]
const UUID_ORDER_BE = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]

/**
 * UUID strings by their canonical bytes: binds, requests and endpoint-mapper towers repeat a
 * few dozen interface and transfer-syntax UUIDs, so each string is made once and later PDUs get
 * the same string. Direct-mapped and bounded; a collision or a UUID an attacker varies only
 * costs a miss.
 */
const UUID_CACHE_SLOTS = 256
const uuidCacheBytes = new Uint8Array(UUID_CACHE_SLOTS * 16)
const uuidCacheText: string[] = Array.from({length: UUID_CACHE_SLOTS}, () => '')
const uuidScratch = new Uint8Array(16)

/** UUID at b[i..i+16) as the canonical string (first three fields in the PDU's byte order) */
export function uuidAt(b: Uint8Array, i: number, le: boolean): string {
  const order = le ? UUID_ORDER_LE : UUID_ORDER_BE
  const u = uuidScratch
  let h = 0x811c9dc5
  for (let k = 0; k < 16; k++) {
    const v = b[i + order[k]!]!
    u[k] = v
    h = Math.imul(h ^ v, 0x01000193)
  }
  const slot = (h >>> 0) & (UUID_CACHE_SLOTS - 1)
  const at = slot * 16
  const cached = uuidCacheText[slot]!
  if (cached !== '') {
    let same = true
    for (let k = 0; k < 16; k++) {
      if (uuidCacheBytes[at + k] !== u[k]) {
        same = false
        break
      }
    }
    if (same) return cached
  }
  const s = HEX2[u[0]!]! + HEX2[u[1]!]! + HEX2[u[2]!]! + HEX2[u[3]!]! + '-' + HEX2[u[4]!]! + HEX2[u[5]!]! + '-' + HEX2[u[6]!]! + HEX2[u[7]!]! + '-'
    + HEX2[u[8]!]! + HEX2[u[9]!]! + '-' + HEX2[u[10]!]! + HEX2[u[11]!]! + HEX2[u[12]!]! + HEX2[u[13]!]! + HEX2[u[14]!]! + HEX2[u[15]!]!
  uuidCacheBytes.set(u, at)
  uuidCacheText[slot] = s
  return s
}

/** the auth verifier of a PDU [0, fragLength) of b at `at`: stub end and trailer values */
export interface AuthInfo {
  /** end (exclusive, relative to the PDU) of the body before auth padding */
  bodyEnd: number
  type: number
  level: number
  padLength: number
  /** auth_length + 8 exceeds the room after the fixed header */
  bad: boolean
}

export function authInfo(b: Uint8Array, at: number, h: DcerpcHeader, fixedLen: number): AuthInfo {
  const frag = h.fragLength
  if (h.authLength === 0) return {bodyEnd: frag, type: 0, level: 0, padLength: 0, bad: false}
  const trailer = frag - h.authLength - 8
  if (trailer < fixedLen) return {bodyEnd: frag, type: 0, level: 0, padLength: 0, bad: true}
  const pad = b[at + trailer + 2]!
  const bodyEnd = trailer - pad < fixedLen ? trailer : trailer - pad
  return {bodyEnd, type: b[at + trailer]!, level: b[at + trailer + 1]!, padLength: pad, bad: trailer - pad < fixedLen}
}

/** one context element of a bind / alter_context */
export interface BindContext {
  id: number
  uuid: string
  /** major.minor */
  version: string
  transfer: string[]
}

export interface BindBody {
  maxXmit: number
  maxRecv: number
  assocGroup: number
  declaredCount: number
  contexts: BindContext[]
  /** the context list runs past the PDU */
  truncated: boolean
}

/** bind / alter_context body of the PDU b[at, at+fragLength) (C706 12.6.4.3) */
export function parseBind(b: Uint8Array, at: number, h: DcerpcHeader, end: number, maxContexts: number): BindBody {
  const le = h.le
  const out: BindBody = {maxXmit: 0, maxRecv: 0, assocGroup: 0, declaredCount: 0, contexts: [], truncated: false}
  let i = at + 16
  if (i + 12 > end) {
    out.truncated = true
    return out
  }
  out.maxXmit = rd16(b, i, le)
  out.maxRecv = rd16(b, i + 2, le)
  out.assocGroup = rd32(b, i + 4, le)
  out.declaredCount = b[i + 8]!
  i += 12
  for (let n = 0; n < out.declaredCount; n++) {
    if (i + 24 > end) {
      out.truncated = true
      break
    }
    const id = rd16(b, i, le)
    const nts = b[i + 2]!
    const ctx: BindContext = {id, uuid: uuidAt(b, i + 4, le), version: `${rd16(b, i + 20, le)}.${rd16(b, i + 22, le)}`, transfer: []}
    i += 24
    for (let t = 0; t < nts; t++) {
      if (i + 20 > end) {
        out.truncated = true
        break
      }
      if (ctx.transfer.length < 8) ctx.transfer.push(uuidAt(b, i, le))
      i += 20
    }
    if (out.contexts.length < maxContexts) out.contexts.push(ctx)
    if (out.truncated) break
  }
  return out
}

export interface BindAckBody {
  maxXmit: number
  maxRecv: number
  assocGroup: number
  /** declared sec_addr length, its bytes [secAddrStart, secAddrEnd) relative to b */
  secAddrLength: number
  secAddrStart: number
  secAddrEnd: number
  declaredResults: number
  results: number[]
  /** some declared size runs past the PDU */
  malformed: boolean
}

/** bind_ack / alter_context_resp body (C706 12.6.4.4) */
export function parseBindAck(b: Uint8Array, at: number, h: DcerpcHeader, end: number, maxResults: number): BindAckBody {
  const le = h.le
  const out: BindAckBody = {maxXmit: 0, maxRecv: 0, assocGroup: 0, secAddrLength: 0, secAddrStart: 0, secAddrEnd: 0, declaredResults: 0, results: [], malformed: false}
  let i = at + 16
  if (i + 10 > end) {
    out.malformed = true
    return out
  }
  out.maxXmit = rd16(b, i, le)
  out.maxRecv = rd16(b, i + 2, le)
  out.assocGroup = rd32(b, i + 4, le)
  out.secAddrLength = rd16(b, i + 8, le)
  i += 10
  out.secAddrStart = i
  if (i + out.secAddrLength > end) {
    out.malformed = true
    out.secAddrEnd = end
    return out
  }
  i += out.secAddrLength
  out.secAddrEnd = i
  i = at + ((i - at + 3) & ~3)
  if (i + 4 > end) {
    out.malformed = true
    return out
  }
  out.declaredResults = b[i]!
  i += 4
  for (let n = 0; n < out.declaredResults; n++) {
    if (i + 24 > end) {
      out.malformed = true
      break
    }
    if (out.results.length < maxResults) out.results.push(rd16(b, i, le))
    i += 24
  }
  return out
}

/** scratch for one decoded NDR string (grows to the longest string decoded, maxChars at most) */
let ndrChars = new Uint8Array(256)

export interface NdrStrings {
  strings: string[]
  /** largest declared actual_count (characters) among the strings found */
  maxLength: number
  /** stub offset just past the last string found, -1 when none */
  lastEnd: number
}

/**
 * Heuristic NDR scan for conformant varying UTF-16 strings (C706 14.3.4.2): at each 4-aligned
 * offset look for max_count(4) offset(4)=0 actual_count(4)<=max_count followed by UTF-16 text
 * in the PDU's byte order whose first character is printable ASCII, or - whatever the first
 * character (shellcode, non-Latin names) - by a whole [string] that fits in the stub and ends
 * with its NUL terminator (the server's unmarshaller insists on both). Strings are decoded up
 * to maxChars characters (latin1, characters above 0xff become '?'), at most maxStrings of them.
 * `ndr64`: the NDR64 transfer syntax (MS-RPCE 2.2.5.3.4.2), whose counts are 8 bytes at 8-aligned
 * offsets (max_count(8) offset(8)=0 actual_count(8), each under 2^32).
 */
export function scanNdrStrings(stub: Uint8Array, le: boolean, maxStrings: number, maxChars: number, ndr64 = false): NdrStrings {
  const out: NdrStrings = {strings: [], maxLength: 0, lastEnd: -1}
  // a count's size (and the alignment), the header's size
  const F = ndr64 ? 8 : 4
  const H = 3 * F
  let i = 0
  const n = stub.length
  // a character's low and high byte, relative to its offset, in this byte order
  const loAt = le ? 0 : 1
  const hiAt = le ? 1 : 0
  // NDR64: where the low 32 bits of an 8-byte count lie, and its high half must be zero
  const low = le ? 0 : 4
  const high = le ? 4 : 0
  while (i + H + 2 <= n && out.strings.length < maxStrings) {
    // offset = 0 first: most positions fail it
    if ((stub[i + F]! | stub[i + F + 1]! | stub[i + F + 2]! | stub[i + F + 3]!) !== 0
      || (ndr64 && (stub[i + 12]! | stub[i + 13]! | stub[i + 14]! | stub[i + 15]!) !== 0)) {
      i += F
      continue
    }
    let max: number
    let actual: number
    if (!ndr64) {
      max = rd32(stub, i, le)
      actual = rd32(stub, i + 8, le)
    } else if ((stub[i + high]! | stub[i + high + 1]! | stub[i + high + 2]! | stub[i + high + 3]!
      | stub[i + 16 + high]! | stub[i + 17 + high]! | stub[i + 18 + high]! | stub[i + 19 + high]!) !== 0) {
      i += F
      continue
    } else {
      max = rd32(stub, i + low, le)
      actual = rd32(stub, i + 16 + low, le)
    }
    const c0 = stub[i + H + loAt]!
    const c1 = stub[i + H + hiAt]!
    const printable = c1 === 0 && c0 >= 0x20 && c0 < 0x7f
    const whole = (c0 | c1) !== 0 && actual >= 2 && i + H + 2 * actual <= n && stub[i + H - 2 + 2 * actual] === 0 && stub[i + H - 1 + 2 * actual] === 0
    if (actual > 0 && actual <= max && (printable || whole)) {
      const take = Math.min(actual, maxChars, (n - i - H) >> 1)
      let end = take
      // drop the terminating NUL of a [string]
      if (take === actual && take > 0 && stub[i + H + 2 * (take - 1)]! === 0 && stub[i + H + 1 + 2 * (take - 1)]! === 0) end = take - 1
      // the characters as latin1 bytes, decoded in one go (not a string grown char by char)
      const chars = end <= ndrChars.length ? ndrChars : (ndrChars = new Uint8Array(end))
      for (let k = 0; k < end; k++) {
        const at = i + H + 2 * k
        chars[k] = stub[at + hiAt] === 0 ? stub[at + loAt]! : 0x3f
      }
      out.strings.push(latin1(chars, 0, end))
      if (actual > out.maxLength) out.maxLength = actual
      const stop = i + H + 2 * actual
      out.lastEnd = Math.min(stop, n)
      i = Math.ceil(stop / F) * F
      continue
    }
    i += F
  }
  return out
}

export interface EpmTower {
  uuid: string
  port: number
  proto: 'tcp' | 'udp'
  ip: string
}

/**
 * Endpoint-mapper towers in an ept_map response stub (C706 appendix L, MS-RPCE 2.2.1.1.7): scan
 * for the floor encodings [lhs_len=19, 0x0d, uuid(16), ver(2), rhs_len=2, minor(2)],
 * [lhs_len=1, 0x07 (tcp) / 0x08 (udp), rhs_len=2, port (big-endian)] and
 * [lhs_len=1, 0x09 (ip), rhs_len=4, address]. Floor length fields are always little-endian.
 */
export function scanEpmTowers(stub: Uint8Array, maxTowers: number): EpmTower[] {
  const out: EpmTower[] = []
  let uuid = ''
  let port = -1
  let proto: 'tcp' | 'udp' = 'tcp'
  const n = stub.length
  for (let i = 0; i + 7 <= n && out.length < maxTowers; i++) {
    if (stub[i] === 0x13 && stub[i + 1] === 0 && stub[i + 2] === 0x0d && i + 24 <= n) {
      if (uuid === '') uuid = uuidAt(stub, i + 3, true)
      i += 23
      continue
    }
    if (stub[i] !== 1 || stub[i + 1] !== 0) continue
    const p = stub[i + 2]
    if ((p === 7 || p === 8) && stub[i + 3] === 2 && stub[i + 4] === 0) {
      port = (stub[i + 5]! << 8) | stub[i + 6]!
      proto = p === 7 ? 'tcp' : 'udp'
      i += 6
    } else if (p === 9 && stub[i + 3] === 4 && stub[i + 4] === 0 && i + 9 <= n) {
      if (port >= 0) out.push({uuid, port, proto, ip: `${stub[i + 5]}.${stub[i + 6]}.${stub[i + 7]}.${stub[i + 8]}`})
      uuid = ''
      port = -1
      i += 8
    }
  }
  return out
}
