/**
 * Stateless FTP parsers.
 *
 * RFC 959 section 4.1 / 5.3 (commands and arguments):
 *
 *   <command> [<SP> <argument>] <CRLF>
 *   PORT <SP> <host-port> <CRLF>        host-port = h1,h2,h3,h4,p1,p2   (decimal 0..255)
 *   SITE <SP> <string> <CRLF>           e.g. "SITE EXEC ...", ProFTPD mod_copy "SITE CPFR path"
 *
 * RFC 959 section 4.2.1 (227):  227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)
 *
 * RFC 2428 section 2 / 3 (EPRT, EPSV):
 *
 *   EPRT<SP><d><net-prt><d><net-addr><d><tcp-port><d>     e.g. EPRT |1|132.235.1.2|6275|
 *   229 Entering Extended Passive Mode (<d><d><d><tcp-port><d>)
 *
 * Telnet (RFC 854): the control connection is a Telnet stream; IAC (0xFF) starts a command.
 */
import {allDigits, decimalSmall, latin1, parseHostPort} from '../line/text.js'

export interface HostPortParse {
  status: 'ok' | 'error'
  ip: string
  port: number
  /** EPRT: span of the address text within the line */
  ipStart: number
  ipEnd: number
}

const BAD: HostPortParse = {status: 'error', ip: '', port: 0, ipStart: 0, ipEnd: 0}

/** PORT argument [from, to) */
export function parsePort(b: Uint8Array, from: number, to: number): HostPortParse {
  const hp = parseHostPort(b, from, to)
  return hp === null ? BAD : {status: 'ok', ip: hp.ip, port: hp.port, ipStart: from, ipEnd: to}
}

/** EPRT argument [from, to): |proto|addr|port| with any delimiter byte in 33..126 */
export function parseEprt(b: Uint8Array, from: number, to: number): HostPortParse {
  if (to - from < 7) return BAD
  const d = b[from]!
  if (d < 33 || d > 126) return BAD
  const p1 = b.indexOf(d, from + 1)
  if (p1 < 0 || p1 >= to) return BAD
  const p2 = b.indexOf(d, p1 + 1)
  if (p2 < 0 || p2 >= to) return BAD
  const p3 = b.indexOf(d, p2 + 1)
  if (p3 < 0 || p3 >= to || p3 !== to - 1) return BAD
  if (!allDigits(b, p2 + 1, p3) || p3 - p2 - 1 > 5) return BAD
  const port = decimalSmall(b, p2 + 1, p3)
  if (port > 65535 || p2 - p1 - 1 <= 0) return BAD
  return {status: 'ok', ip: latin1(b, p1 + 1, p2).toLowerCase(), port, ipStart: p1 + 1, ipEnd: p2}
}

/** the host-port in a 227 reply text: the first run of digits and commas that parses */
export function parsePasvReply(b: Uint8Array, from: number, to: number): HostPortParse {
  let i = from
  while (i < to) {
    while (i < to && (b[i]! < 48 || b[i]! > 57)) i++
    let j = i
    while (j < to && ((b[j]! >= 48 && b[j]! <= 57) || b[j] === 44)) j++
    if (j > i) {
      const r = parsePort(b, i, j)
      if (r.status === 'ok') return r
    }
    i = j
  }
  return BAD
}

/** the port in a 229 reply text: "(<d><d><d>port<d>)"; -1 when absent */
export function parseEpsvReply(b: Uint8Array, from: number, to: number): number {
  const open = b.indexOf(40, from)
  if (open < 0 || open + 5 >= to) return -1
  const d = b[open + 1]!
  if (b[open + 2] !== d || b[open + 3] !== d) return -1
  const s = open + 4
  const e = b.indexOf(d, s)
  if (e < 0 || e >= to || !allDigits(b, s, e) || e - s > 5) return -1
  const port = decimalSmall(b, s, e)
  return port <= 65535 ? port : -1
}
