/**
 * Stateless parsers for Microsoft's Tabular Data Stream ([MS-TDS]): packet header (2.2.3.1),
 * PRELOGIN (2.2.6.5), LOGIN7 (2.2.6.4), SQLBatch (2.2.6.7), RPC request (2.2.6.6) and
 * ALL_HEADERS (2.2.5.3). Message parsers take the reassembled message payload (packet headers
 * removed) and return indexes into it; the analyzer maps them onto stream spans. Nothing throws.
 */
import {u16be, u16le, u32le} from '../mysql/records.js'

/*
 * Packet header ([MS-TDS] 2.2.3.1), 8 bytes, big-endian Length and SPID:
 *
 *   0      1        2          4        6          7        8
 *   +------+--------+----------+--------+----------+--------+---------------
 *   | Type | Status |  Length  |  SPID  | PacketID | Window | payload ...
 *   +------+--------+----------+--------+----------+--------+---------------
 *
 * Length covers the header. Status bit 0x01 (EOM) ends a message; a message may span packets.
 */
export const TDS_HEADER = 8
export const TDS_STATUS_EOM = 0x01

export const TDS_SQL_BATCH = 0x01
export const TDS_PRE7_LOGIN = 0x02
export const TDS_RPC = 0x03
export const TDS_RESPONSE = 0x04
export const TDS_ATTENTION = 0x06
export const TDS_BULK_LOAD = 0x07
export const TDS_FEDAUTH_TOKEN = 0x08
export const TDS_TRANSACTION_MANAGER = 0x0e
export const TDS_LOGIN7 = 0x10
export const TDS_SSPI = 0x11
export const TDS_PRELOGIN = 0x12

export const TDS_TYPE_NAMES: Readonly<Record<number, string>> = {
  0x01: 'sql_batch', 0x02: 'login_pre7', 0x03: 'rpc', 0x04: 'response', 0x06: 'attention', 0x07: 'bulk_load',
  0x08: 'fedauth_token', 0x0e: 'transaction_manager', 0x10: 'login', 0x11: 'sspi', 0x12: 'prelogin',
}

export function validType(t: number): boolean {
  return TDS_TYPE_NAMES[t] !== undefined
}

/** a TLS record header (content type 20..23, major version 3) at b[o..]: handshake/login encryption */
export function isTlsRecord(b: Uint8Array, o: number): boolean {
  const t = b[o]!
  return t >= 0x14 && t <= 0x17 && b[o + 1] === 0x03
}

export interface TdsHeader {
  status: 'ok' | 'incomplete' | 'error'
  type: number
  flags: number
  length: number
  spid: number
  packetId: number
  consumed: number
}

export function parseTdsHeader(b: Uint8Array, off = 0): TdsHeader {
  if (b.length - off < TDS_HEADER) return {status: 'incomplete', type: -1, flags: 0, length: 0, spid: 0, packetId: 0, consumed: 0}
  const length = u16be(b, off + 2)
  return {
    status: length >= TDS_HEADER && validType(b[off]!) ? 'ok' : 'error',
    type: b[off]!,
    flags: b[off + 1]!,
    length,
    spid: u16be(b, off + 4),
    packetId: b[off + 6]!,
    consumed: TDS_HEADER,
  }
}

/*
 * PRELOGIN ([MS-TDS] 2.2.6.5): option table, terminator, option data; offsets are from the start
 * of the message payload, big-endian:
 *
 *   +-------+----------+----------+     +------+-------------------------
 *   | token | offset   | length   | ... | 0xFF | option data ...
 *   | 1     | 2 (BE)   | 2 (BE)   |     |      |
 *   +-------+----------+----------+     +------+-------------------------
 *
 *   tokens: 0 VERSION (4 version + 2 sub-build), 1 ENCRYPTION (1), 2 INSTOPT (NUL-terminated
 *   instance name), 3 THREADID (4), 4 MARS (1), 5 TRACEID (36), 6 FEDAUTHREQUIRED (1), 7 NONCEOPT (32)
 */
export const PL_VERSION = 0
export const PL_ENCRYPTION = 1
export const PL_INSTOPT = 2
export const PL_THREADID = 3
export const PL_MARS = 4
export const PL_TERMINATOR = 0xff

export interface PreloginOption {
  token: number
  offset: number
  length: number
  /** offset + length leaves the message, or the data overlaps the option table */
  invalid: boolean
}

export interface Prelogin {
  status: 'ok' | 'error'
  options: PreloginOption[]
  /** options past maxOptions were seen (not kept) */
  overflow: boolean
  /** index of the end of the option table (after 0xFF), or -1 when it is missing */
  tableEnd: number
  anyInvalid: boolean
}

export function parsePrelogin(b: Uint8Array, maxOptions: number): Prelogin {
  const n = b.length
  const out: Prelogin = {status: 'error', options: [], overflow: false, tableEnd: -1, anyInvalid: false}
  let o = 0
  while (o < n) {
    const t = b[o]!
    if (t === PL_TERMINATOR) {
      out.tableEnd = o + 1
      break
    }
    if (o + 5 > n) break
    if (out.options.length >= maxOptions) {
      out.overflow = true
    } else {
      out.options.push({token: t, offset: u16be(b, o + 1), length: u16be(b, o + 3), invalid: false})
    }
    o += 5
  }
  if (out.tableEnd < 0) out.anyInvalid = true
  const dataFrom = out.tableEnd < 0 ? o : out.tableEnd
  for (const opt of out.options) {
    if (opt.offset + opt.length > n || (opt.length > 0 && opt.offset < dataFrom)) {
      opt.invalid = true
      out.anyInvalid = true
    }
  }
  out.status = out.tableEnd >= 0 ? 'ok' : 'error'
  return out
}

/** "major.minor.build.subbuild" from a VERSION option (6 bytes: UL_VERSION BE-ish bytes + US_SUBBUILD) */
export function formatVersion(b: Uint8Array, o: number, len: number): string {
  if (len < 4) return ''
  const build = u16be(b, o + 2)
  const sub = len >= 6 ? u16be(b, o + 4) : 0
  return `${b[o]}.${b[o + 1]}.${build}.${sub}`
}

/*
 * LOGIN7 ([MS-TDS] 2.2.6.4), little-endian:
 *
 *   0  Length(4)  4 TDSVersion(4)  8 PacketSize(4)  12 ClientProgVer(4)  16 ClientPID(4)
 *   20 ConnectionID(4)  24 OptionFlags1  25 OptionFlags2  26 TypeFlags  27 OptionFlags3
 *   28 ClientTimeZone(4)  32 ClientLCID(4)
 *   36 OffsetLength: (ib 2, cch 2) pairs for HostName, UserName, Password, AppName, ServerName,
 *      Extension/Unused, CltIntName, Language, Database; 72 ClientID(6); 78 SSPI (ib, cb);
 *      82 AtchDBFile; [TDS 7.2+: 86 ChangePassword, 90 cbSSPILong(4)]
 *   Data: UCS-2 strings at ib (from the start of LOGIN7), cch characters each
 */
export const LOGIN7_FIXED = 94
export const LOGIN7_FIXED_MIN = 86

export interface LoginString {
  name: string
  /** byte index of the UCS-2 data within the message, byte length */
  offset: number
  bytes: number
  invalid: boolean
}

export interface Login7 {
  status: 'ok' | 'error'
  length: number
  tdsVersion: number
  packetSize: number
  strings: LoginString[]
  anyInvalid: boolean
}

/** [name, offset of the ib/cch pair] for the string fields exposed */
const LOGIN_STRINGS: readonly (readonly [string, number])[] = [
  ['hostname', 36], ['user', 40], ['password', 44], ['appname', 48], ['servername', 52],
  ['library', 60], ['language', 64], ['database', 68], ['attach_db_file', 82],
]

export function parseLogin7(b: Uint8Array): Login7 {
  const n = b.length
  const out: Login7 = {status: 'error', length: -1, tdsVersion: -1, packetSize: -1, strings: [], anyInvalid: true}
  if (n < LOGIN7_FIXED_MIN) return out
  out.length = u32le(b, 0)
  out.tdsVersion = u32le(b, 4)
  out.packetSize = u32le(b, 8)
  out.status = 'ok'
  out.anyInvalid = out.length !== n && out.length > n
  const fixedEnd = out.tdsVersion >= 0x72000000 && n >= LOGIN7_FIXED ? LOGIN7_FIXED : LOGIN7_FIXED_MIN
  for (const [name, at] of LOGIN_STRINGS) {
    const ib = u16le(b, at)
    const cch = u16le(b, at + 2)
    const bytes = cch * 2
    const invalid = bytes > 0 && (ib < fixedEnd || ib + bytes > n)
    if (invalid) out.anyInvalid = true
    out.strings.push({name, offset: ib, bytes, invalid})
  }
  return out
}

/** UCS-2LE [from, from+bytes) to latin1: code units above 0xFF become '?' */
export function ucs2ToLatin1(b: Uint8Array, from: number, bytes: number): string {
  const end = Math.min(b.length, from + bytes)
  const n = (end - from) & ~1
  if (n <= 0) return ''
  const s = Buffer.from(b.buffer, b.byteOffset + from, n).toString('utf16le')
  return NON_LATIN1.test(s) ? s.replace(NON_LATIN1_G, '?') : s
}

const NON_LATIN1 = /[^\u0000-\u00ff]/
const NON_LATIN1_G = /[^\u0000-\u00ff]/g

/*
 * ALL_HEADERS ([MS-TDS] 2.2.5.3), TDS 7.2+, before SQLBatch text and RPC requests:
 *
 *   TotalLength(4 LE, includes itself) { HeaderLength(4 LE) HeaderType(2 LE) HeaderData }
 *
 * Returns the index after ALL_HEADERS: 0 when absent (TDS 7.0/7.1), -1 when malformed.
 * `known72` forces presence (the login announced TDS 7.2+); otherwise it is detected.
 */
export function skipAllHeaders(b: Uint8Array, known72: boolean | undefined): number {
  const n = b.length
  if (n < 4) return known72 === true ? -1 : 0
  const total = u32le(b, 0)
  const plausible = total >= 4 && total <= n && (total === 4 || (total >= 10 && u32le(b, 4) >= 6 && u32le(b, 4) <= total - 4))
  if (known72 === false) return 0
  if (!plausible) return known72 === true ? -1 : 0
  return total
}

/*
 * RPC request ([MS-TDS] 2.2.6.6): ALL_HEADERS, then NameLenProcID: US_VARCHAR procedure name
 * (2-byte character count + UCS-2) or 0xFFFF + ProcID(2); OptionFlags(2); parameters.
 */
export interface RpcHead {
  status: 'ok' | 'error'
  procId: number
  nameOffset: number
  nameBytes: number
}

export function parseRpcHead(b: Uint8Array, from: number): RpcHead {
  if (from + 2 > b.length) return {status: 'error', procId: -1, nameOffset: -1, nameBytes: 0}
  const len = u16le(b, from)
  if (len === 0xffff) {
    if (from + 4 > b.length) return {status: 'error', procId: -1, nameOffset: -1, nameBytes: 0}
    return {status: 'ok', procId: u16le(b, from + 2), nameOffset: -1, nameBytes: 0}
  }
  const bytes = len * 2
  if (from + 2 + bytes > b.length) return {status: 'error', procId: -1, nameOffset: from + 2, nameBytes: b.length - from - 2}
  return {status: 'ok', procId: -1, nameOffset: from + 2, nameBytes: bytes}
}

/** well-known RPC ProcIDs ([MS-TDS] 2.2.6.6) */
export const TDS_PROC_NAMES: Readonly<Record<number, string>> = {
  1: 'sp_cursor', 2: 'sp_cursoropen', 3: 'sp_cursorprepare', 4: 'sp_cursorexecute', 5: 'sp_cursorprepexec',
  6: 'sp_cursorunprepare', 7: 'sp_cursorfetch', 8: 'sp_cursoroption', 9: 'sp_cursorclose', 10: 'sp_executesql',
  11: 'sp_prepare', 12: 'sp_execute', 13: 'sp_prepexec', 14: 'sp_prepexecrpc', 15: 'sp_unprepare',
}

/**
 * Content detection on the client's first bytes: a PRELOGIN (or pre-7 / 7.x LOGIN) packet
 * header with a plausible length, SPID 0 from the client, and for PRELOGIN a VERSION option first.
 */
export function looksLikeTds(b: Uint8Array): boolean {
  if (b.length < TDS_HEADER) return false
  const t = b[0]!
  if (t !== TDS_PRELOGIN && t !== TDS_LOGIN7 && t !== TDS_PRE7_LOGIN) return false
  if ((b[1]! & ~0x1f) !== 0) return false
  const len = u16be(b, 2)
  if (len < TDS_HEADER + 1 || len > 32768) return false
  if (t === TDS_PRELOGIN) {
    if (b.length < TDS_HEADER + 5) return true
    const tok = b[TDS_HEADER]!
    return tok === PL_VERSION && u16be(b, TDS_HEADER + 3) === 6
  }
  return true
}
