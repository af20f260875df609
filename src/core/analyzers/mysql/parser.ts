/**
 * Stateless parsers for the MySQL client/server protocol (MySQL Server internals documentation,
 * "Client/Server Protocol": Protocol::Packet, Protocol::HandshakeV10, HandshakeResponse41/320,
 * SSLRequest, COM_* commands, OK_Packet, ERR_Packet, EOF_Packet).
 *
 * All positions returned are indexes into the packet bytes given (header included), so the
 * analyzer adds the packet's absolute start to get stream spans. Nothing here throws: truncated
 * input is reported through `status` and flags.
 */
import {u16le, u24le, u32le} from './records.js'

/*
 * Protocol::Packet (section "MySQL Packets"):
 *
 *   0        3     4
 *   +--------+-----+------------------------------+
 *   | length | seq | payload (length bytes)        |
 *   | int<3> | int<1>                              |
 *   +--------+-----+------------------------------+
 *
 * A payload of exactly 0xffffff bytes continues in the next packet.
 */
export const MYSQL_HEADER = 4
export const MYSQL_MAX_PAYLOAD = 0xffffff

/*
 * Compressed packet (section "Compressed Packet"), used on both sides after the login's OK when
 * the greeting and the login both set CLIENT_COMPRESS:
 *
 *   0                 3       4                       7
 *   +-----------------+-------+-----------------------+------------------------------+
 *   | compressed len  | seq   | uncompressed len      | payload (compressed len)     |
 *   | int<3>          | int<1>| int<3>                |                              |
 *   +-----------------+-------+-----------------------+------------------------------+
 *
 * An uncompressed length of 0 means the payload is sent as is; otherwise it is a zlib stream
 * that inflates to that many bytes. The unwrapped bytes of a direction are a sequence of
 * ordinary packets (header + payload), which may straddle compressed packets.
 */
export const MYSQL_COMPRESSED_HEADER = 7

export interface PacketHeader {
  status: 'ok' | 'incomplete'
  /** payload length */
  length: number
  seq: number
  consumed: number
}

export function parsePacketHeader(b: Uint8Array, off = 0): PacketHeader {
  if (b.length - off < MYSQL_HEADER) return {status: 'incomplete', length: 0, seq: 0, consumed: 0}
  return {status: 'ok', length: u24le(b, off), seq: b[off + 3]!, consumed: MYSQL_HEADER}
}

// capability flags (Protocol::CapabilityFlags)
export const CLIENT_LONG_PASSWORD = 0x1
export const CLIENT_CONNECT_WITH_DB = 0x8
export const CLIENT_COMPRESS = 0x20
export const CLIENT_PROTOCOL_41 = 0x200
export const CLIENT_SSL = 0x800
export const CLIENT_SECURE_CONNECTION = 0x8000
export const CLIENT_PLUGIN_AUTH = 0x80000
export const CLIENT_CONNECT_ATTRS = 0x100000
export const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA = 0x200000
export const CLIENT_DEPRECATE_EOF = 0x1000000

/** index of the first NUL in [from, to), or -1 */
export function findNul(b: Uint8Array, from: number, to: number): number {
  for (let i = from; i < to; i++) if (b[i] === 0) return i
  return -1
}

/**
 * Length-encoded integer (Protocol::LengthEncodedInteger): <0xfb 1 byte, 0xfc+2, 0xfd+3, 0xfe+8.
 * Returns the value (a number; 8-byte values above 2^53 saturate to MAX_SAFE_INTEGER) and the
 * bytes used, or used = -1 when truncated or 0xfb/0xff.
 */
export function lenenc(b: Uint8Array, o: number, end: number): {value: number; used: number} {
  if (o >= end) return {value: 0, used: -1}
  const c = b[o]!
  if (c < 0xfb) return {value: c, used: 1}
  if (c === 0xfc) return o + 3 <= end ? {value: u16le(b, o + 1), used: 3} : {value: 0, used: -1}
  if (c === 0xfd) return o + 4 <= end ? {value: u24le(b, o + 1), used: 4} : {value: 0, used: -1}
  if (c === 0xfe) {
    if (o + 9 > end) return {value: 0, used: -1}
    const hi = u32le(b, o + 5)
    const v = hi * 0x100000000 + u32le(b, o + 1)
    return {value: Math.min(v, Number.MAX_SAFE_INTEGER), used: 9}
  }
  return {value: 0, used: -1}
}

/*
 * Protocol::HandshakeV10 (payload):
 *
 *   1              protocol version (10; 9 for HandshakeV9)
 *   string[NUL]    server version
 *   4              connection id
 *   string[8]      auth-plugin-data-part-1
 *   1              filler (0)
 *   2              capability flags (lower 2 bytes)
 *   -- if more data --
 *   1              character set
 *   2              status flags
 *   2              capability flags (upper 2 bytes)
 *   1              length of auth-plugin-data (if CLIENT_PLUGIN_AUTH) else 0
 *   string[10]     reserved
 *   string[n]      auth-plugin-data-part-2, n = max(13, length - 8) (if CLIENT_SECURE_CONNECTION)
 *   string[NUL]    auth-plugin name (if CLIENT_PLUGIN_AUTH)
 */
export interface Greeting {
  status: 'ok' | 'error'
  protocol: number
  versionStart: number
  versionEnd: number
  connectionId: number
  capabilities: number
  charset: number
  pluginStart: number
  pluginEnd: number
}

/** `b` is the whole packet (header included); positions are indexes into b */
export function parseGreeting(b: Uint8Array): Greeting {
  const end = b.length
  const g: Greeting = {status: 'error', protocol: -1, versionStart: -1, versionEnd: -1, connectionId: -1, capabilities: 0, charset: -1, pluginStart: -1, pluginEnd: -1}
  let o = MYSQL_HEADER
  if (o >= end) return g
  g.protocol = b[o++]!
  const nul = findNul(b, o, end)
  g.versionStart = o
  g.versionEnd = nul < 0 ? end : nul
  if (nul < 0) return g
  o = nul + 1
  if (g.protocol !== 10) {
    g.status = g.protocol === 9 ? 'ok' : 'error'
    return g
  }
  if (o + 4 + 8 + 1 + 2 > end) return g
  g.connectionId = u32le(b, o)
  o += 4 + 8 + 1
  g.capabilities = u16le(b, o)
  o += 2
  g.status = 'ok'
  if (o >= end) return g
  if (o + 1 + 2 + 2 + 1 + 10 > end) {
    g.status = 'error'
    return g
  }
  g.charset = b[o]!
  g.capabilities += u16le(b, o + 3) * 0x10000
  const authLen = b[o + 5]!
  o += 16
  if (g.capabilities & CLIENT_SECURE_CONNECTION) {
    o += Math.max(13, authLen - 8)
    if (o > end) {
      g.status = 'error'
      return g
    }
  }
  if (g.capabilities & CLIENT_PLUGIN_AUTH && o < end) {
    const n = findNul(b, o, end)
    g.pluginStart = o
    g.pluginEnd = n < 0 ? end : n
  }
  return g
}

/*
 * Protocol::HandshakeResponse41 (payload):
 *
 *   4              capability flags (CLIENT_PROTOCOL_41 set)
 *   4              max-packet size
 *   1              character set
 *   string[23]     reserved (all 0)
 *   string[NUL]    username
 *   if CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA: lenenc-int length, string[n] auth-response
 *   else if CLIENT_SECURE_CONNECTION:         1 length, string[n] auth-response
 *   else:                                     string[NUL] auth-response
 *   string[NUL]    database (if CLIENT_CONNECT_WITH_DB)
 *   string[NUL]    auth plugin name (if CLIENT_PLUGIN_AUTH)
 *   lenenc attrs   (if CLIENT_CONNECT_ATTRS)
 *
 * Protocol::HandshakeResponse320: 2 capability flags, 3 max-packet size, string[NUL] username,
 * then the auth-response (NUL-terminated when CLIENT_CONNECT_WITH_DB, followed by the database,
 * else the rest of the packet).
 *
 * Protocol::SSLRequest: the first 32 payload bytes of a HandshakeResponse41 (4 for 320) with
 * CLIENT_SSL set; TLS follows.
 */
export interface Login {
  status: 'ok' | 'error'
  ssl: boolean
  protocol41: boolean
  capabilities: number
  maxPacket: number
  charset: number
  userStart: number
  userEnd: number
  userTerminated: boolean
  /** declared auth-response length (-1: NUL-terminated or absent) */
  authDeclared: number
  authStart: number
  /** auth-response bytes actually present */
  authAvailable: number
  dbStart: number
  dbEnd: number
  pluginStart: number
  pluginEnd: number
  /** a declared length leaves the packet, a string lacks its NUL, or the fixed part is short */
  malformed: boolean
}

export function parseLogin(b: Uint8Array): Login {
  const end = b.length
  const payload = end - MYSQL_HEADER
  const l: Login = {
    status: 'error', ssl: false, protocol41: false, capabilities: 0, maxPacket: 0, charset: -1,
    userStart: -1, userEnd: -1, userTerminated: true, authDeclared: -1, authStart: -1, authAvailable: 0,
    dbStart: -1, dbEnd: -1, pluginStart: -1, pluginEnd: -1, malformed: true,
  }
  let o = MYSQL_HEADER
  if (payload < 2) return l
  const caps16 = u16le(b, o)
  l.protocol41 = (caps16 & CLIENT_PROTOCOL_41) !== 0
  if (l.protocol41) {
    if (payload < 32) return l
    l.capabilities = u32le(b, o)
    l.maxPacket = u32le(b, o + 4)
    l.charset = b[o + 8]!
    o += 32
    if (payload === 32 && l.capabilities & CLIENT_SSL) {
      l.ssl = true
      l.status = 'ok'
      l.malformed = false
      return l
    }
  } else {
    if (payload < 5) return l
    l.capabilities = caps16
    l.maxPacket = u24le(b, o + 2)
    o += 5
    if (payload === 5 && caps16 & CLIENT_SSL) {
      l.ssl = true
      l.status = 'ok'
      l.malformed = false
      return l
    }
  }
  l.status = 'ok'
  l.malformed = false
  const caps = l.capabilities
  // username
  const un = findNul(b, o, end)
  l.userStart = o
  l.userEnd = un < 0 ? end : un
  if (un < 0) {
    l.userTerminated = false
    l.malformed = true
    return l
  }
  o = un + 1
  // auth-response
  if (l.protocol41 && caps & (CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | CLIENT_SECURE_CONNECTION)) {
    let declared: number
    if (caps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) {
      const le = lenenc(b, o, end)
      if (le.used < 0) {
        l.malformed = o < end
        return l
      }
      declared = le.value
      o += le.used
    } else {
      if (o >= end) return l // nothing after the user name: old clients
      declared = b[o]!
      o++
    }
    l.authDeclared = declared
    l.authStart = o
    l.authAvailable = Math.min(declared, end - o)
    if (declared > end - o) {
      l.malformed = true
      return l
    }
    o += declared
  } else {
    const an = findNul(b, o, end)
    l.authStart = o
    if (!l.protocol41 && !(caps & CLIENT_CONNECT_WITH_DB)) {
      l.authAvailable = end - o
      return l
    }
    l.authAvailable = (an < 0 ? end : an) - o
    if (an < 0) {
      l.malformed = o < end && (caps & CLIENT_CONNECT_WITH_DB) !== 0
      return l
    }
    o = an + 1
  }
  if (caps & CLIENT_CONNECT_WITH_DB && o < end) {
    const dn = findNul(b, o, end)
    l.dbStart = o
    l.dbEnd = dn < 0 ? end : dn
    if (dn < 0) {
      l.malformed = true
      return l
    }
    o = dn + 1
  }
  if (l.protocol41 && caps & CLIENT_PLUGIN_AUTH && o < end) {
    const pn = findNul(b, o, end)
    l.pluginStart = o
    // the plugin name is the last string when no attributes follow: a missing NUL is tolerated
    l.pluginEnd = pn < 0 ? end : pn
    if (pn < 0 && caps & CLIENT_CONNECT_ATTRS) l.malformed = true
    o = pn < 0 ? end : pn + 1
  }
  if (l.protocol41 && caps & CLIENT_CONNECT_ATTRS && o < end) {
    const le = lenenc(b, o, end)
    if (le.used < 0 || le.value > end - o - le.used) l.malformed = true
  }
  return l
}

/*
 * COM_CHANGE_USER (payload): 1 [0x11], string[NUL] user, then (CLIENT_SECURE_CONNECTION) 1
 * auth-response length + string[n], else string[NUL]; string[NUL] schema; [2 charset,
 * string[NUL] plugin, attrs].
 */
export function parseChangeUser(b: Uint8Array, secure: boolean): Login {
  const end = b.length
  const l: Login = {
    status: 'ok', ssl: false, protocol41: true, capabilities: 0, maxPacket: 0, charset: -1,
    userStart: -1, userEnd: -1, userTerminated: true, authDeclared: -1, authStart: -1, authAvailable: 0,
    dbStart: -1, dbEnd: -1, pluginStart: -1, pluginEnd: -1, malformed: false,
  }
  let o = MYSQL_HEADER + 1
  const un = findNul(b, o, end)
  l.userStart = o
  l.userEnd = un < 0 ? end : un
  if (un < 0) {
    l.userTerminated = false
    l.malformed = true
    return l
  }
  o = un + 1
  if (secure) {
    if (o >= end) {
      l.malformed = true
      return l
    }
    const declared = b[o]!
    o++
    l.authDeclared = declared
    l.authStart = o
    l.authAvailable = Math.min(declared, end - o)
    if (declared > end - o) {
      l.malformed = true
      return l
    }
    o += declared
  } else {
    const an = findNul(b, o, end)
    l.authStart = o
    l.authAvailable = (an < 0 ? end : an) - o
    if (an < 0) {
      l.malformed = true
      return l
    }
    o = an + 1
  }
  if (o < end) {
    const dn = findNul(b, o, end)
    l.dbStart = o
    l.dbEnd = dn < 0 ? end : dn
    if (dn < 0) l.malformed = true
  }
  return l
}

/*
 * ERR_Packet (payload): 1 [0xff], 2 error code, (CLIENT_PROTOCOL_41) 1 '#' + string[5] SQL
 * state, string[EOF] message.
 */
export interface ErrPacket {
  status: 'ok' | 'error'
  code: number
  stateStart: number
  msgStart: number
}

export function parseErr(b: Uint8Array): ErrPacket {
  const end = b.length
  const o = MYSQL_HEADER
  if (end - o < 3 || b[o] !== 0xff) return {status: 'error', code: -1, stateStart: -1, msgStart: -1}
  const code = u16le(b, o + 1)
  if (end - o >= 9 && b[o + 3] === 0x23) return {status: 'ok', code, stateStart: o + 4, msgStart: o + 9}
  return {status: 'ok', code, stateStart: -1, msgStart: o + 3}
}

/** COM_* command names by code (MySQL internals "Text Protocol" / "Prepared Statements" / "Replication") */
export const MYSQL_COMMANDS: readonly string[] = [
  'COM_SLEEP', 'COM_QUIT', 'COM_INIT_DB', 'COM_QUERY', 'COM_FIELD_LIST', 'COM_CREATE_DB', 'COM_DROP_DB',
  'COM_REFRESH', 'COM_SHUTDOWN', 'COM_STATISTICS', 'COM_PROCESS_INFO', 'COM_CONNECT', 'COM_PROCESS_KILL',
  'COM_DEBUG', 'COM_PING', 'COM_TIME', 'COM_DELAYED_INSERT', 'COM_CHANGE_USER', 'COM_BINLOG_DUMP',
  'COM_TABLE_DUMP', 'COM_CONNECT_OUT', 'COM_REGISTER_SLAVE', 'COM_STMT_PREPARE', 'COM_STMT_EXECUTE',
  'COM_STMT_SEND_LONG_DATA', 'COM_STMT_CLOSE', 'COM_STMT_RESET', 'COM_SET_OPTION', 'COM_STMT_FETCH',
  'COM_DAEMON', 'COM_BINLOG_DUMP_GTID', 'COM_RESET_CONNECTION',
]

export const COM_QUIT = 0x01
export const COM_INIT_DB = 0x02
export const COM_QUERY = 0x03
export const COM_FIELD_LIST = 0x04
export const COM_CREATE_DB = 0x05
export const COM_DROP_DB = 0x06
export const COM_CHANGE_USER = 0x11
export const COM_STMT_PREPARE = 0x16
export const COM_STMT_SEND_LONG_DATA = 0x18
export const COM_STMT_CLOSE = 0x19

export function commandName(code: number): string {
  return MYSQL_COMMANDS[code] ?? `COM_0x${code.toString(16).padStart(2, '0')}`
}

/**
 * Content detection on the server's first bytes: a packet with sequence 0 whose payload starts
 * with protocol version 10 (or 9) and a printable version string.
 */
export function looksLikeGreeting(b: Uint8Array): boolean {
  if (b.length < 6) return false
  const len = u24le(b, 0)
  if (len < 2 || len > 1024 || b[3] !== 0) return false
  const proto = b[4]!
  if (proto !== 10 && proto !== 9) return false
  // version string: digits first ("5.7.33", "8.0.36-0ubuntu"), printable until NUL
  const c = b[5]!
  if (c < 0x30 || c > 0x39) return false
  const end = Math.min(b.length, 4 + len, 64)
  for (let i = 6; i < end; i++) {
    const x = b[i]!
    if (x === 0) return true
    if (x < 0x20 || x > 0x7e) return false
  }
  return end === b.length // NUL not yet seen but all printable so far
}
