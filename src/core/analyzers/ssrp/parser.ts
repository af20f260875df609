/**
 * Stateless parser for the SQL Server Resolution Protocol ([MC-SQLR], UDP 1434): one message per
 * datagram. Nothing throws.
 */
import {u16le} from '../mysql/records.js'

/*
 * [MC-SQLR] 2.2 messages:
 *
 *   2.2.1 CLNT_BCAST_EX    +------+
 *   2.2.2 CLNT_UCAST_EX    | 0x02 / 0x03 |                         (1 byte)
 *                          +------+
 *   2.2.3 CLNT_UCAST_INST  +------+------------------------------+
 *                          | 0x04 | INSTANCENAME (MBCS, NUL-terminated, <= 32 bytes)
 *                          +------+------------------------------+
 *   2.2.4 CLNT_UCAST_DAC   +------+------------------+--------------+
 *                          | 0x0F | PROTOCOLVERSION=1 | INSTANCENAME |
 *                          +------+------------------+--------------+
 *   2.2.5 SVR_RESP         +------+-----------------+--------------------------+
 *                          | 0x05 | RESP_SIZE (2 LE) | RESP_DATA (MBCS text)   |
 *                          +------+-----------------+--------------------------+
 */
export const SSRP_CLNT_BCAST_EX = 0x02
export const SSRP_CLNT_UCAST_EX = 0x03
export const SSRP_CLNT_UCAST_INST = 0x04
export const SSRP_SVR_RESP = 0x05
export const SSRP_CLNT_UCAST_DAC = 0x0f
/** [MC-SQLR] 2.2.3: INSTANCENAME no greater than 32 bytes, the terminating NUL excluded */
export const SSRP_MAX_INSTANCE = 32

export const SSRP_TYPE_NAMES: Readonly<Record<number, string>> = {
  0x02: 'clnt_bcast_ex', 0x03: 'clnt_ucast_ex', 0x04: 'clnt_ucast_inst', 0x05: 'svr_resp', 0x0f: 'clnt_ucast_dac',
}

export interface SsrpMessage {
  status: 'ok' | 'error'
  type: number
  /** instance name [instStart, instEnd) (0x04, 0x0F), -1 when absent */
  instStart: number
  instEnd: number
  /** the instance name has no NUL before the end of the datagram */
  unterminated: boolean
  protocolVersion: number
  /** SVR_RESP: declared RESP_SIZE, data [dataStart, dataEnd) */
  respSize: number
  dataStart: number
  dataEnd: number
  /** why status is 'error': '', 'unknown_type', 'length', 'empty' */
  reason: string
}

export function parseSsrp(b: Uint8Array): SsrpMessage {
  const n = b.length
  const m: SsrpMessage = {status: 'ok', type: -1, instStart: -1, instEnd: -1, unterminated: false, protocolVersion: -1, respSize: -1, dataStart: -1, dataEnd: -1, reason: ''}
  if (n === 0) {
    m.status = 'error'
    m.reason = 'empty'
    return m
  }
  const t = b[0]!
  m.type = t
  switch (t) {
    case SSRP_CLNT_BCAST_EX:
    case SSRP_CLNT_UCAST_EX:
      if (n !== 1) {
        m.status = 'error'
        m.reason = 'length'
      }
      return m
    case SSRP_CLNT_UCAST_INST:
    case SSRP_CLNT_UCAST_DAC: {
      let o = 1
      if (t === SSRP_CLNT_UCAST_DAC) {
        if (n < 2) {
          m.status = 'error'
          m.reason = 'length'
          return m
        }
        m.protocolVersion = b[1]!
        o = 2
      }
      let z = o
      while (z < n && b[z] !== 0) z++
      m.instStart = o
      m.instEnd = z
      m.unterminated = z >= n
      if (m.unterminated || z - o > SSRP_MAX_INSTANCE || z + 1 !== n) {
        m.status = 'error'
        m.reason = 'length'
      }
      return m
    }
    case SSRP_SVR_RESP:
      if (n < 3) {
        m.status = 'error'
        m.reason = 'length'
        return m
      }
      m.respSize = u16le(b, 1)
      m.dataStart = 3
      m.dataEnd = Math.min(n, 3 + m.respSize)
      if (m.respSize !== n - 3) {
        m.status = 'error'
        m.reason = 'length'
      }
      return m
    default:
      m.status = 'error'
      m.reason = 'unknown_type'
      return m
  }
}

/**
 * Content detection on a first datagram: a 1-byte CLNT_BCAST_EX/CLNT_UCAST_EX, a
 * CLNT_UCAST_INST whose name starts printable, a DAC request with protocol version 1, or a
 * SVR_RESP whose size matches. (Malformed 0x04 requests such as Slammer's are left to the port.)
 */
export function looksLikeSsrp(b: Uint8Array): boolean {
  const n = b.length
  if (n === 0) return false
  const t = b[0]!
  if (t === SSRP_CLNT_BCAST_EX || t === SSRP_CLNT_UCAST_EX) return n === 1
  if (t === SSRP_CLNT_UCAST_INST) return n >= 2 && b[1]! >= 0x20 && b[1]! < 0x7f
  if (t === SSRP_CLNT_UCAST_DAC) return n >= 3 && b[1] === 1 && b[2]! >= 0x20 && b[2]! < 0x7f
  if (t === SSRP_SVR_RESP) return n >= 3 && (n >= 64 || u16le(b, 1) === n - 3)
  return false
}
