/**
 * Stateless SMTP line parsers.
 *
 * RFC 5321 section 4.1.1 (commands) and 4.1.2 (paths):
 *
 *   command       = verb [ SP args ] CRLF
 *   mail          = "MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF
 *   rcpt          = "RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" /
 *                   Forward-path ) [SP Rcpt-parameters] CRLF
 *   Reverse-path  = Path / "<>"
 *   Path          = "<" [ A-d-l ":" ] Mailbox ">"
 *   Mailbox       = Local-part "@" ( Domain / address-literal )
 *   Local-part    = Dot-string / Quoted-string
 *
 * RFC 5322 section 2.2 (header fields, in DATA):
 *
 *   field-name ":" field-body CRLF      ; unfolding: a CRLF followed by WSP continues the field
 *
 * RFC 3030 section 2: "BDAT" SP chunk-size [ SP end-marker ] CRLF, end-marker = "LAST".
 */
import {allDigits, isSpace, skipSpaces, trimEnd, wordEnd} from '../line/text.js'

export interface CommandSplit {
  status: 'ok' | 'error'
  /** verb = [0, verbEnd) */
  verbEnd: number
  /** args = [argsStart, argsEnd) (empty when argsStart === argsEnd) */
  argsStart: number
  argsEnd: number
}

/** split a command line's content into verb and arguments; 'error' for an empty line */
export function splitCommand(line: Uint8Array): CommandSplit {
  const verbEnd = wordEnd(line, 0)
  const argsStart = skipSpaces(line, verbEnd)
  const argsEnd = trimEnd(line, argsStart, line.length)
  return {status: verbEnd === 0 ? 'error' : 'ok', verbEnd, argsStart, argsEnd}
}

export interface PathParse {
  status: 'ok' | 'incomplete' | 'error'
  /** the address without the angle brackets: [addrStart, addrEnd) */
  addrStart: number
  addrEnd: number
  /** parameters after the path: [paramsStart, paramsEnd) */
  paramsStart: number
  paramsEnd: number
  /** the path was written with angle brackets */
  bracketed: boolean
}

/**
 * Parse `FROM:<path> params` / `TO:<path> params` starting at `from` (just after the colon).
 * Quoted local parts may hold '>' (RFC 5321 section 4.1.2 Quoted-string). 'incomplete' when the
 * '<' is never closed (the address then runs to the end of the line).
 */
export function parsePath(line: Uint8Array, from: number, to = line.length): PathParse {
  const i = skipSpaces(line, from)
  if (i < to && line[i] === 60) {
    let j = i + 1
    let quoted = false
    while (j < to) {
      const c = line[j]!
      if (quoted) {
        if (c === 92) j++
        else if (c === 34) quoted = false
      } else if (c === 34) {
        quoted = true
      } else if (c === 62) {
        break
      }
      j++
    }
    if (j >= to) {
      return {status: 'incomplete', addrStart: i + 1, addrEnd: trimEnd(line, i + 1, to), paramsStart: to, paramsEnd: to, bracketed: true}
    }
    const ps = skipSpaces(line, j + 1)
    return {status: 'ok', addrStart: i + 1, addrEnd: j, paramsStart: ps, paramsEnd: trimEnd(line, ps, to), bracketed: true}
  }
  if (i >= to) return {status: 'error', addrStart: i, addrEnd: i, paramsStart: i, paramsEnd: i, bracketed: false}
  let e = i
  while (e < to && !isSpace(line[e]!)) e++
  const ps = skipSpaces(line, e)
  return {status: 'ok', addrStart: i, addrEnd: e, paramsStart: ps, paramsEnd: trimEnd(line, ps, to), bracketed: false}
}

export interface HeaderLine {
  status: 'ok' | 'error'
  /** 'continuation': folded line (starts with WSP); 'field': name ":" value; 'end': the empty line */
  type: 'field' | 'continuation' | 'end'
  nameEnd: number
  valueStart: number
}

/** classify one header-section line of a message (RFC 5322 section 2.2) */
export function parseHeaderLine(line: Uint8Array): HeaderLine {
  if (line.length === 0) return {status: 'ok', type: 'end', nameEnd: 0, valueStart: 0}
  if (isSpace(line[0]!)) return {status: 'ok', type: 'continuation', nameEnd: 0, valueStart: skipSpaces(line, 0)}
  const colon = line.indexOf(58)
  if (colon <= 0) return {status: 'error', type: 'field', nameEnd: 0, valueStart: 0}
  const nameEnd = trimEnd(line, 0, colon)
  for (let k = 0; k < nameEnd; k++) {
    const c = line[k]!
    if (c <= 32 || c >= 127) return {status: 'error', type: 'field', nameEnd: 0, valueStart: 0}
  }
  return {status: 'ok', type: 'field', nameEnd, valueStart: skipSpaces(line, colon + 1)}
}

export interface BdatArgs {
  status: 'ok' | 'error'
  sizeStart: number
  sizeEnd: number
  last: boolean
}

/** `chunk-size [SP LAST]` in [from, to) */
export function parseBdat(line: Uint8Array, from: number, to: number): BdatArgs {
  const se = wordEnd(line, from)
  if (se > to || !allDigits(line, from, se)) return {status: 'error', sizeStart: from, sizeEnd: from, last: false}
  const rest = skipSpaces(line, se)
  let last = false
  if (rest < to) {
    const w = wordEnd(line, rest)
    last = w - rest === 4 && (line[rest]! | 32) === 108 && (line[rest + 1]! | 32) === 97 && (line[rest + 2]! | 32) === 115 && (line[rest + 3]! | 32) === 116
    if (!last) return {status: 'error', sizeStart: from, sizeEnd: se, last: false}
  }
  return {status: 'ok', sizeStart: from, sizeEnd: se, last}
}
