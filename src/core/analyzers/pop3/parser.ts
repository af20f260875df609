/**
 * Stateless POP3 parsers.
 *
 * RFC 1939 section 3 / RFC 2449 section 3 / RFC 5034 section 4:
 *
 *   command        = keyword *(SP param) CRLF         ; keyword 3-4 chars, params up to 40 chars
 *   single-line    = status [SP text] CRLF            ; status = "+OK" / "-ERR"
 *   multi-line     = single-line *dot-stuffed-line "." CRLF
 *   continue-req   = "+" SP [base64] CRLF             ; AUTH exchange
 *
 * Multi-line responses follow +OK to RETR, TOP, CAPA, and LIST / UIDL without argument
 * (RFC 1939 section 5, RFC 2449 section 5), and AUTH without argument (RFC 5034 section 4).
 */
import {matchWordCI} from '../line/text.js'

export interface Pop3Status {
  status: 'ok' | 'error'
  kind: 'ok' | 'err' | 'continue' | 'other'
  /** end of the status indicator */
  indicatorEnd: number
}

/** classify a server line's status indicator */
export function parseStatus(line: Uint8Array): Pop3Status {
  if (line.length >= 3 && line[0] === 43 && matchWordCI(line, 1, 'OK') && (line.length === 3 || line[3] === 32)) {
    return {status: 'ok', kind: 'ok', indicatorEnd: 3}
  }
  if (line.length >= 4 && line[0] === 45 && matchWordCI(line, 1, 'ERR') && (line.length === 4 || line[4] === 32)) {
    return {status: 'ok', kind: 'err', indicatorEnd: 4}
  }
  if (line.length >= 1 && line[0] === 43 && (line.length === 1 || line[1] === 32)) {
    return {status: 'ok', kind: 'continue', indicatorEnd: 1}
  }
  return {status: 'error', kind: 'other', indicatorEnd: 0}
}

/** does +OK to this command (upper-cased verb, `hasArgs`) start a multi-line response? */
export function isMultiLine(verb: string, hasArgs: boolean): boolean {
  switch (verb) {
    case 'RETR':
    case 'TOP':
    case 'CAPA':
      return true
    case 'LIST':
    case 'UIDL':
    case 'AUTH':
      return !hasArgs
    default:
      return false
  }
}
