/**
 * Stateless parsers for Oracle Net (TNS / Net8). Oracle publishes no specification; layouts follow
 * the Wireshark TNS dissector and the open-source thin drivers (python-oracledb, oracle-nio). All
 * integers are big-endian. Nothing here throws.
 */
import {u16be, u32be} from '../mysql/records.js'

/*
 * Packet header, 8 bytes:
 *
 *   0                2                  4      5       6                 8
 *   +----------------+------------------+------+-------+-----------------+--------
 *   | packet length  | packet checksum  | type | flags | header checksum | body ...
 *   +----------------+------------------+------+-------+-----------------+--------
 *
 * From version 315 on, once the ACCEPT packet has agreed on it, bytes 0..3 hold a 32-bit length.
 * Types: 1 CONNECT, 2 ACCEPT, 3 ACK, 4 REFUSE, 5 REDIRECT, 6 DATA, 7 NULL, 9 ABORT, 11 RESEND,
 * 12 MARKER, 13 ATTENTION, 14 CONTROL.
 */
export const TNS_HEADER = 8
export const TNS_CONNECT = 1
export const TNS_ACCEPT = 2
export const TNS_REFUSE = 4
export const TNS_REDIRECT = 5
export const TNS_DATA = 6
export const TNS_RESEND = 11
export const TNS_MARKER = 12
/** first version whose post-ACCEPT packets carry a 32-bit length */
export const TNS_VERSION_LARGE_SDU = 315

export const TNS_TYPE_NAMES: Readonly<Record<number, string>> = {
  1: 'connect', 2: 'accept', 3: 'ack', 4: 'refuse', 5: 'redirect', 6: 'data', 7: 'null', 9: 'abort',
  11: 'resend', 12: 'marker', 13: 'attention', 14: 'control',
}

export interface TnsHeader {
  status: 'ok' | 'incomplete' | 'error'
  length: number
  type: number
  flags: number
  consumed: number
}

export function parseTnsHeader(b: Uint8Array, off = 0, large = false): TnsHeader {
  if (b.length - off < TNS_HEADER) return {status: 'incomplete', length: 0, type: -1, flags: 0, consumed: 0}
  const length = large ? u32be(b, off) : u16be(b, off)
  const type = b[off + 4]!
  return {status: length >= TNS_HEADER && TNS_TYPE_NAMES[type] !== undefined ? 'ok' : 'error', length, type, flags: b[off + 5]!, consumed: TNS_HEADER}
}

/*
 * CONNECT body (offsets from the packet start):
 *
 *   8 version(2)  10 compatible version(2)  12 service options(2)  14 SDU size(2)  16 TDU size(2)
 *   18 NT protocol characteristics(2)  20 line turnaround(2)  22 value of one(2)
 *   24 connect data length(2)  26 connect data offset(2)  28 max receivable connect data(4)
 *   32 connect flags 0(1)  33 connect flags 1(1)  ...  connect data at its offset
 *
 * When the connect data is too long for the CONNECT packet (over 230 bytes), its offset points at
 * the end of the packet and the data follows in a DATA packet.
 */
export interface Connect {
  status: 'ok' | 'error'
  version: number
  compatVersion: number
  sdu: number
  tdu: number
  cdLength: number
  cdOffset: number
  /** the connect data lies inside this packet */
  cdInline: boolean
  /** the connect data is announced after the end of this packet */
  cdDeferred: boolean
}

export function parseConnect(b: Uint8Array): Connect {
  const n = b.length
  if (n < 28) return {status: 'error', version: n >= 10 ? u16be(b, 8) : -1, compatVersion: -1, sdu: -1, tdu: -1, cdLength: -1, cdOffset: -1, cdInline: false, cdDeferred: false}
  const cdLength = u16be(b, 24)
  const cdOffset = u16be(b, 26)
  const cdInline = cdLength > 0 && cdOffset >= 28 && cdOffset + cdLength <= n
  const cdDeferred = cdLength > 0 && cdOffset >= n
  return {
    status: cdLength === 0 || cdInline || cdDeferred ? 'ok' : 'error',
    version: u16be(b, 8),
    compatVersion: u16be(b, 10),
    sdu: u16be(b, 14),
    tdu: u16be(b, 16),
    cdLength,
    cdOffset,
    cdInline,
    cdDeferred,
  }
}

/*
 * ACCEPT body: 8 version(2)  10 service options(2)  12 SDU(2)  14 TDU(2)  16 value of one(2)
 *   18 accept data length(2)  20 accept data offset(2)  22 connect flags ...
 * REFUSE body: 8 user reason(1)  9 system reason(1)  10 data length(2)  12 data
 * REDIRECT body: 8 data length(2)  10 data
 * DATA body: 8 data flags(2)  10 payload
 */
export function acceptVersion(b: Uint8Array): number {
  return b.length >= 10 ? u16be(b, 8) : -1
}

/** [start, end) of REFUSE/REDIRECT text inside the packet, clipped to the packet */
export function bodyText(b: Uint8Array, lenAt: number): {start: number; end: number; declared: number} {
  if (b.length < lenAt + 2) return {start: -1, end: -1, declared: -1}
  const declared = u16be(b, lenAt)
  const start = lenAt + 2
  return {start, end: Math.min(b.length, start + declared), declared}
}

/*
 * Connect descriptor (Oracle Net Services Reference, "Syntax Rules for Configuration Files"):
 * nested keyword-value pairs
 *
 *   (DESCRIPTION=(ADDRESS=(PROTOCOL=TCP)(HOST=db)(PORT=1521))(CONNECT_DATA=(SERVICE_NAME=orcl)))
 *
 * A value is a literal up to ')' (double quotes may enclose parentheses) or a list of nested pairs.
 * Each literal is reported with its keyword path, lower-cased, dot-joined, without the wrapper
 * keywords DESCRIPTION, DESCRIPTION_LIST and ADDRESS_LIST (so ADDRESS.HOST is stable).
 */
export interface CdValue {
  path: string
  start: number
  end: number
}

export interface Descriptor {
  values: CdValue[]
  maxValueLength: number
  maxDepth: number
  malformed: boolean
  /** why it is malformed: '', 'depth', 'values', 'syntax', 'unbalanced' */
  reason: string
}

const WRAPPERS = new Set(['description', 'description_list', 'address_list'])

function ws(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13
}

function lowerKey(b: Uint8Array, from: number, to: number): string {
  let s = ''
  for (let i = from; i < to; i++) {
    const c = b[i]!
    s += String.fromCharCode(c >= 65 && c <= 90 ? c + 32 : c)
  }
  return s
}

/**
 * Keyword paths are interned in a tree shared by every connection: a node per path seen, found
 * from its parent by the keyword's bytes (ASCII case folded), so a descriptor of known keywords
 * builds no key or path string. The tree is bounded (TNS_PATH_NODES in all, TNS_PATH_CHILDREN
 * under one node); past that, paths are built as strings each time, with the same result.
 */
export const TNS_PATH_NODES = 1024
export const TNS_PATH_CHILDREN = 64
/** keywords longer than this are never interned */
const TNS_PATH_KEY_BYTES = 64

interface PathNode {
  /** lower-cased keyword (empty at the root) */
  key: string
  /** dot-joined path of the keywords down to here, wrappers left out */
  path: string
  children: PathNode[]
}

const PATH_ROOT: PathNode = {key: '', path: '', children: []}
let pathNodes = 0

function sameKey(key: string, b: Uint8Array, from: number, to: number): boolean {
  if (key.length !== to - from) return false
  for (let i = from; i < to; i++) {
    const c = b[i]!
    if ((c >= 65 && c <= 90 ? c + 32 : c) !== key.charCodeAt(i - from)) return false
  }
  return true
}

function childNode(parent: PathNode, b: Uint8Array, from: number, to: number): PathNode {
  const kids = parent.children
  for (let i = 0; i < kids.length; i++) if (sameKey(kids[i]!.key, b, from, to)) return kids[i]!
  const key = lowerKey(b, from, to)
  const path = WRAPPERS.has(key) ? parent.path : parent.path === '' ? key : `${parent.path}.${key}`
  const node: PathNode = {key, path, children: []}
  if (pathNodes < TNS_PATH_NODES && kids.length < TNS_PATH_CHILDREN && to - from <= TNS_PATH_KEY_BYTES) {
    kids.push(node)
    pathNodes++
  }
  return node
}

export function parseDescriptor(b: Uint8Array, from: number, to: number, maxDepth: number, maxValues: number): Descriptor {
  const d: Descriptor = {values: [], maxValueLength: 0, maxDepth: 0, malformed: false, reason: ''}
  // open keywords, innermost last (stack[i] is the node of the first i + 1 keywords)
  const stack: PathNode[] = []
  const fail = (reason: string): Descriptor => {
    d.malformed = true
    d.reason = reason
    return d
  }
  let i = from
  while (i < to) {
    const c = b[i]!
    if (ws(c)) {
      i++
      continue
    }
    if (c === 0x29) {
      // ')' closing a list value
      if (stack.length === 0) return fail('unbalanced')
      stack.pop()
      i++
      continue
    }
    if (c !== 0x28) return fail('syntax')
    // '(' KEY '='
    if (stack.length >= maxDepth) return fail('depth')
    let j = i + 1
    while (j < to && b[j] !== 0x3d && b[j] !== 0x28 && b[j] !== 0x29) j++
    if (j >= to || b[j] !== 0x3d) return fail(j >= to ? 'unbalanced' : 'syntax')
    let ks = i + 1
    let ke = j
    while (ks < ke && ws(b[ks]!)) ks++
    while (ke > ks && ws(b[ke - 1]!)) ke--
    if (ke === ks) return fail('syntax')
    stack.push(childNode(stack.length === 0 ? PATH_ROOT : stack[stack.length - 1]!, b, ks, ke))
    if (stack.length > d.maxDepth) d.maxDepth = stack.length
    i = j + 1
    while (i < to && ws(b[i]!)) i++
    if (i < to && b[i] === 0x28) continue // nested list
    // literal value up to ')', honouring double quotes
    let k = i
    let quoted = false
    while (k < to) {
      const x = b[k]!
      if (x === 0x22) quoted = !quoted
      else if (!quoted && (x === 0x29 || x === 0x28)) break
      k++
    }
    if (k >= to) return fail('unbalanced')
    if (b[k] === 0x28) return fail('syntax')
    let ve = k
    while (ve > i && ws(b[ve - 1]!)) ve--
    if (d.values.length >= maxValues) return fail('values')
    d.values.push({path: stack[stack.length - 1]!.path, start: i, end: ve})
    if (ve - i > d.maxValueLength) d.maxValueLength = ve - i
    stack.pop()
    i = k + 1
  }
  if (stack.length > 0) return fail('unbalanced')
  if (d.values.length === 0 && to > from) return fail('syntax')
  return d
}

/**
 * Content detection on the client's first bytes: a CONNECT packet whose 16-bit length is
 * plausible (at least the fixed part, at least the bytes seen when they are fewer than 64),
 * zero checksums, and a version in 300..330 with compatible version <= version.
 */
export function looksLikeTnsConnect(b: Uint8Array): boolean {
  if (b.length < 12) return false
  const len = u16be(b, 0)
  if (len < 34 || b[4] !== TNS_CONNECT) return false
  if (b.length < 64 && b.length > len) return false
  if (b[6] !== 0 || b[7] !== 0) return false
  const v = u16be(b, 8)
  const cv = u16be(b, 10)
  return v >= 300 && v <= 330 && cv <= v && cv >= 200
}
