/**
 * Stateless TLS parsing: record headers, handshake message headers, ClientHello, ServerHello,
 * heartbeat and alert messages. Every function takes (buf, start, end), reads only inside
 * [start, end), returns buffer indexes (the caller maps them onto stream offsets) and never
 * throws: declared lengths are checked against what is there, malformed input is a status.
 */

/** RFC 5246 §6.2.1 / RFC 8446 §5.1: ContentType values */
export const CT_CHANGE_CIPHER_SPEC = 20
export const CT_ALERT = 21
export const CT_HANDSHAKE = 22
export const CT_APPLICATION_DATA = 23
/** RFC 6520 §3 */
export const CT_HEARTBEAT = 24

export const HS_CLIENT_HELLO = 1
export const HS_SERVER_HELLO = 2

export const EXT_SERVER_NAME = 0
export const EXT_HEARTBEAT = 15
export const EXT_SUPPORTED_VERSIONS = 43

export const RECORD_HEADER_LEN = 5
/** RFC 5246 §6.2.3: TLSCiphertext.length MUST NOT exceed 2^14 + 2048 */
export const MAX_RECORD_LENGTH = (1 << 14) + 2048
/** RFC 6520 §4: at least 16 bytes of padding follow the payload */
export const HEARTBEAT_MIN_PADDING = 16

/** SHA-256("HelloRetryRequest"): the ServerHello.random of a TLS 1.3 HelloRetryRequest (RFC 8446 §4.1.3) */
const HRR_RANDOM = Uint8Array.from(Buffer.from('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex'))

const u16 = (b: Uint8Array, i: number): number => (b[i] << 8) | b[i + 1]
const u24 = (b: Uint8Array, i: number): number => (b[i] << 16) | (b[i + 1] << 8) | b[i + 2]

/**
 * RFC 8446 §5.1 (TLSPlaintext), RFC 5246 §6.2.1:
 *
 *    0        1        2        3        4
 *   +--------+--------+--------+--------+--------+----------------------+
 *   |  type  | version (major.minor) |     length      | fragment[length] |
 *   +--------+--------+--------+--------+--------+----------------------+
 *
 * A plausible header: type 20..24, major 3, minor 0..4 (SSL 3.0 .. TLS 1.3).
 */
export function plausibleRecordHeader(b: Uint8Array, i: number): boolean {
  const t = b[i]
  return t >= CT_CHANGE_CIPHER_SPEC && t <= CT_HEARTBEAT && b[i + 1] === 3 && b[i + 2] <= 4
}

export interface RecordHeader {
  type: number
  version: number
  length: number
}

/** Parse a record header at `i`; 'incomplete' when fewer than 5 bytes, 'error' when implausible. */
export function parseRecordHeader(b: Uint8Array, i: number, end: number, out: RecordHeader): 'ok' | 'incomplete' | 'error' {
  if (end - i < RECORD_HEADER_LEN) return 'incomplete'
  if (!plausibleRecordHeader(b, i)) return 'error'
  out.type = b[i]
  out.version = u16(b, i + 1)
  out.length = u16(b, i + 3)
  return 'ok'
}

/**
 * RFC 8446 §4 / RFC 5246 §7.4: handshake message header
 *
 *   +--------+--------+--------+--------+-----------------+
 *   | msg_type |      length (uint24)   | body[length]    |
 *   +--------+--------+--------+--------+-----------------+
 */
export function parseHandshakeHeader(b: Uint8Array, i: number, end: number): {status: 'ok' | 'incomplete'; type: number; length: number} {
  if (end - i < 4) return {status: 'incomplete', type: end > i ? b[i] : -1, length: -1}
  return {status: 'ok', type: b[i], length: u24(b, i + 1)}
}

/** A value with its buffer index and length (mapped onto the stream by the caller). */
export interface At {
  v: number
  at: number
  len: number
}

export interface ClientHello {
  /** true when every declared length fitted; false: what was parsed before the problem */
  ok: boolean
  problem?: string
  version?: At
  sessionIdLength?: number
  cipherSuites: At[]
  cipherSuitesCount: number
  compressionCount?: number
  extensions: At[]
  extensionsCount: number
  sni?: {at: number; len: number}
  heartbeatExt: boolean
}

/**
 * RFC 8446 §4.1.2 / RFC 5246 §7.4.1.2: ClientHello body (after the 4-byte handshake header)
 *
 *   legacy_version (2) | random (32) | session_id<0..32> (1-byte length)
 *   | cipher_suites<2..2^16-2> (2-byte length) | compression_methods<1..2^8-1> (1-byte length)
 *   | extensions<0..2^16-1> (2-byte length; absent in old clients)
 *
 * Extension (RFC 8446 §4.2): type (2) | length (2) | data. server_name (RFC 6066 §3):
 *   server_name_list length (2) | { name_type (1) = 0 host_name | length (2) | name }*
 *
 * `maxList` bounds the cipher suites and extensions kept (counts go on).
 */
export function parseClientHello(b: Uint8Array, start: number, end: number, maxList: number): ClientHello {
  const r: ClientHello = {ok: false, cipherSuites: [], cipherSuitesCount: 0, extensions: [], extensionsCount: 0, heartbeatExt: false}
  let i = start
  if (end - i < 2 + 32 + 1) {
    if (end - i >= 2) r.version = {v: u16(b, i), at: i, len: 2}
    r.problem = 'short_hello'
    return r
  }
  r.version = {v: u16(b, i), at: i, len: 2}
  i += 34
  const sidLen = b[i++]
  r.sessionIdLength = sidLen
  if (sidLen > 32 || i + sidLen > end) {
    r.problem = 'session_id'
    return r
  }
  i += sidLen
  if (end - i < 2) {
    r.problem = 'cipher_suites'
    return r
  }
  const csLen = u16(b, i)
  i += 2
  if (csLen % 2 !== 0 || i + csLen > end) {
    r.problem = 'cipher_suites'
    return r
  }
  r.cipherSuitesCount = csLen >> 1
  for (let k = 0; k < csLen; k += 2) {
    if (r.cipherSuites.length < maxList) r.cipherSuites.push({v: u16(b, i + k), at: i + k, len: 2})
  }
  i += csLen
  if (end - i < 1 || i + 1 + b[i] > end) {
    r.problem = 'compression_methods'
    return r
  }
  r.compressionCount = b[i]
  i += 1 + b[i]
  if (i === end) {
    r.ok = true // no extensions (SSL 3.0 / early TLS clients)
    return r
  }
  if (end - i < 2) {
    r.problem = 'extensions'
    return r
  }
  const extEnd = i + 2 + u16(b, i)
  i += 2
  if (extEnd > end) {
    r.problem = 'extensions'
    return r
  }
  while (i < extEnd) {
    if (extEnd - i < 4) {
      r.problem = 'extension'
      return r
    }
    const type = u16(b, i)
    const len = u16(b, i + 2)
    const data = i + 4
    if (data + len > extEnd) {
      r.problem = 'extension'
      return r
    }
    r.extensionsCount++
    if (r.extensions.length < maxList) r.extensions.push({v: type, at: i, len: 2})
    if (type === EXT_HEARTBEAT) r.heartbeatExt = true
    else if (type === EXT_SERVER_NAME && r.sni === undefined) {
      // first host_name entry
      if (len >= 2) {
        const listEnd = Math.min(data + 2 + u16(b, data), data + len)
        let j = data + 2
        while (j + 3 <= listEnd) {
          const nameType = b[j]
          const nameLen = u16(b, j + 1)
          if (j + 3 + nameLen > listEnd) {
            r.problem = 'server_name'
            break
          }
          if (nameType === 0) {
            r.sni = {at: j + 3, len: nameLen}
            break
          }
          j += 3 + nameLen
        }
      }
    }
    i = data + len
  }
  r.ok = extEnd === end
  if (!r.ok) r.problem = 'trailing_bytes'
  return r
}

export interface ServerHello {
  ok: boolean
  problem?: string
  version?: At
  cipherSuite?: At
  extensions: At[]
  supportedVersion?: At
  helloRetry: boolean
}

/**
 * RFC 8446 §4.1.3 / RFC 5246 §7.4.1.3: ServerHello body
 *
 *   legacy_version (2) | random (32) | session_id<0..32> (1-byte length) | cipher_suite (2)
 *   | compression_method (1) | extensions<0..2^16-1> (2-byte length; optional before TLS 1.3)
 *
 * supported_versions (RFC 8446 §4.2.1) in a ServerHello: selected_version (2).
 */
export function parseServerHello(b: Uint8Array, start: number, end: number, maxList: number): ServerHello {
  const r: ServerHello = {ok: false, extensions: [], helloRetry: false}
  let i = start
  if (end - i >= 2) r.version = {v: u16(b, i), at: i, len: 2}
  if (end - i < 2 + 32 + 1) {
    r.problem = 'short_hello'
    return r
  }
  r.helloRetry = isHelloRetryRandom(b, i + 2)
  i += 34
  const sidLen = b[i++]
  if (sidLen > 32 || i + sidLen + 3 > end) {
    r.problem = 'session_id'
    return r
  }
  i += sidLen
  r.cipherSuite = {v: u16(b, i), at: i, len: 2}
  i += 3
  if (i === end) {
    r.ok = true
    return r
  }
  if (end - i < 2 || i + 2 + u16(b, i) > end) {
    r.problem = 'extensions'
    return r
  }
  const extEnd = i + 2 + u16(b, i)
  i += 2
  while (i < extEnd) {
    if (extEnd - i < 4 || i + 4 + u16(b, i + 2) > extEnd) {
      r.problem = 'extension'
      return r
    }
    const type = u16(b, i)
    const len = u16(b, i + 2)
    if (r.extensions.length < maxList) r.extensions.push({v: type, at: i, len: 2})
    if (type === EXT_SUPPORTED_VERSIONS && len === 2) r.supportedVersion = {v: u16(b, i + 4), at: i + 4, len: 2}
    i += 4 + len
  }
  r.ok = extEnd === end
  if (!r.ok) r.problem = 'trailing_bytes'
  return r
}

/**
 * RFC 6520 §4: HeartbeatMessage (the whole fragment of a record of type 24)
 *
 *   +--------+--------+--------+----------------------+----------------------+
 *   |  type  | payload_length  | payload[payload_length] | padding (>= 16)   |
 *   +--------+--------+--------+----------------------+----------------------+
 *
 * type 1 = heartbeat_request, 2 = heartbeat_response. A message whose
 * 3 + payload_length + 16 exceeds the record length MUST be discarded (§4): OpenSSL before
 * 1.0.1g did not check it and echoed payload_length bytes of its memory (CVE-2014-0160).
 */
export function parseHeartbeat(b: Uint8Array, start: number, end: number): {status: 'ok' | 'short'; type: number; payloadLength: number} {
  if (end - start < 3) return {status: 'short', type: end > start ? b[start] : -1, payloadLength: -1}
  return {status: 'ok', type: b[start], payloadLength: u16(b, start + 1)}
}

/** true when a heartbeat with this declared payload length does not fit a record of `recordLength` bytes */
export function heartbeatOverflows(payloadLength: number, recordLength: number): boolean {
  return 3 + payloadLength + HEARTBEAT_MIN_PADDING > recordLength
}

/** true for a ServerHello.random marking a HelloRetryRequest */
export function isHelloRetryRandom(b: Uint8Array, i: number): boolean {
  for (let k = 0; k < 32; k++) if (b[i + k] !== HRR_RANDOM[k]) return false
  return true
}
