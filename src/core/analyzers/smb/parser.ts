/**
 * SMB framing and header parsing: NetBIOS session service (RFC 1002 section 4.3), SMB1 header
 * (MS-SMB 2.2.3.1 / MS-CIFS 2.2.3.1), SMB2/3 header (MS-SMB2 2.2.1) and the SMB 3.1.1
 * compression transform header (MS-SMB2 2.2.42). Stateless; all little-endian.
 *
 * RFC 1002 4.3.1 session packet:
 *   +--------+--------+--------+--------+
 *   |  TYPE  | FLAGS/LENGTH (0x00: 24-bit length for SMB2 direct TCP; else 17-bit) |
 *   +--------+--------+--------+--------+
 *   TYPE 0x00 session message, 0x81 session request, 0x82 positive response,
 *   0x83 negative response, 0x84 retarget, 0x85 keepalive
 *
 * MS-SMB 2.2.3.1 SMB1 header (32 bytes):
 *   0 Protocol "\xffSMB" | 4 Command(1) | 5 Status(4) | 9 Flags(1) | 10 Flags2(2) | 12 PIDHigh(2)
 *   | 14 SecurityFeatures(8) | 22 Reserved(2) | 24 TID(2) | 26 PIDLow(2) | 28 UID(2) | 30 MID(2)
 *   then WordCount(1) Words[2*WordCount] ByteCount(2) Bytes[ByteCount]
 *
 * MS-SMB2 2.2.1 SMB2 header (64 bytes):
 *   0 ProtocolId "\xfeSMB" | 4 StructureSize(2)=64 | 6 CreditCharge(2) | 8 Status(4)
 *   | 12 Command(2) | 14 CreditRequest/Response(2) | 16 Flags(4) | 20 NextCommand(4)
 *   | 24 MessageId(8) | 32 Reserved(4)/AsyncId | 36 TreeId(4) | 40 SessionId(8) | 48 Signature(16)
 *
 * MS-SMB2 2.2.42 compression transform header (16 bytes):
 *   0 ProtocolId "\xfcSMB" | 4 OriginalCompressedSegmentSize(4) | 8 CompressionAlgorithm(2)
 *   | 10 Flags(2) | 12 Offset/Length(4)
 */

export const NBSS_HEADER_LEN = 4
export const SMB1_HEADER_LEN = 32
export const SMB2_HEADER_LEN = 64

export function u16(b: Uint8Array, i: number): number {
  return b[i]! | (b[i + 1]! << 8)
}
export function u32(b: Uint8Array, i: number): number {
  return (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16)) + b[i + 3]! * 0x1000000
}
export function u64(b: Uint8Array, i: number): bigint {
  return BigInt(u32(b, i)) | (BigInt(u32(b, i + 4)) << 32n)
}

export type NbssResult = {status: 'ok'; type: number; length: number} | {status: 'incomplete'} | {status: 'error'}

/** NetBIOS session header at `at` (RFC 1002 4.3.1) */
export function parseNbss(b: Uint8Array, at: number): NbssResult {
  if (b.length - at < NBSS_HEADER_LEN) return {status: 'incomplete'}
  const type = b[at]!
  if (type !== 0 && (type < 0x81 || type > 0x85)) return {status: 'error'}
  const length = type === 0 ? (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]! : ((b[at + 1]! & 1) << 16) | (b[at + 2]! << 8) | b[at + 3]!
  return {status: 'ok', type, length}
}

/** 1, 2, 3 (compression transform), 4 (encryption transform \xfdSMB) or 0 for the 4 bytes at `at` */
export function smbMagic(b: Uint8Array, at: number): number {
  if (b.length - at < 4 || b[at + 1] !== 0x53 || b[at + 2] !== 0x4d || b[at + 3] !== 0x42) return 0
  switch (b[at]) {
    case 0xff:
      return 1
    case 0xfe:
      return 2
    case 0xfc:
      return 3
    case 0xfd:
      return 4
    default:
      return 0
  }
}

/**
 * UTF-16LE bytes [from, to) (stopping at a NUL character) as a latin1 string: characters above
 * 0xff are written as their UTF-8 bytes. Returns the string and the byte end of the text.
 */
export function utf16(b: Uint8Array, from: number, to: number, maxChars: number): {s: string; end: number} {
  const parts: string[] = []
  let i = from
  const stop = Math.min(to, b.length)
  while (i + 1 < stop && parts.length < maxChars) {
    const c = b[i]! | (b[i + 1]! << 8)
    if (c === 0) break
    parts.push(String.fromCharCode(c))
    i += 2
  }
  let s = parts.join('')
  for (let k = 0; k < s.length; k++) {
    if (s.charCodeAt(k) > 0xff) {
      s = Buffer.from(s, 'utf8').toString('latin1')
      break
    }
  }
  return {s, end: i}
}

/** NUL-terminated single-byte string [from, to) */
export function cstr(b: Uint8Array, from: number, to: number, maxChars: number): {s: string; end: number} {
  let i = from
  const stop = Math.min(to, b.length, from + maxChars)
  while (i < stop && b[i] !== 0) i++
  return {s: i > from ? Buffer.from(b.buffer, b.byteOffset + from, i - from).toString('latin1') : '', end: i}
}

export const SMB1_COMMANDS: Readonly<Record<number, string>> = {
  0x04: 'close',
  0x0b: 'write',
  0x25: 'trans',
  0x26: 'trans_secondary',
  0x2d: 'open_andx',
  0x2e: 'read_andx',
  0x2f: 'write_andx',
  0x32: 'trans2',
  0x33: 'trans2_secondary',
  0x70: 'tree_connect',
  0x72: 'negotiate',
  0x73: 'session_setup_andx',
  0x75: 'tree_connect_andx',
  0xa0: 'nt_transact',
  0xa1: 'nt_transact_secondary',
  0xa2: 'nt_create_andx',
}

export const SMB2_COMMANDS: readonly string[] = [
  'negotiate',
  'session_setup',
  'logoff',
  'tree_connect',
  'tree_disconnect',
  'create',
  'close',
  'flush',
  'read',
  'write',
  'lock',
  'ioctl',
  'cancel',
  'echo',
  'query_directory',
  'change_notify',
  'query_info',
  'set_info',
  'oplock_break',
]

export const FSCTL_PIPE_TRANSCEIVE = 0x0011c017
