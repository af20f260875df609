import type {FieldSpec} from '../types.js'

/**
 * Fields of the IMAP analyzer's PDUs (kinds: command, auth, response, continuation). A command
 * with synchronising literals is judged in parts (see analyzer.ts): each part carries only the
 * fields of the bytes it adds, plus imap.command / imap.subcommand.
 */
export const IMAP_FIELDS: readonly FieldSpec[] = [
  {name: 'imap.tag', description: 'command tag, with span (first part only)', type: 'string'},
  {name: 'imap.command', description: 'command name, upper-cased (every part)', type: 'string'},
  {name: 'imap.subcommand', description: 'UID command: the command after UID, upper-cased', type: 'string'},
  {name: 'imap.args', description: "rest of the command's first line after the command name (literal announcements included), with span", type: 'string'},
  {name: 'imap.line.length', description: 'first line length without CRLF; maxLineBytes+1 when longer than the cap', type: 'number'},
  {name: 'imap.command.length', description: 'bytes of the whole command: lines, CRLFs and literals (last part only)', type: 'number'},
  {name: 'imap.literal.size', description: 'announced size of each literal {n} / {n+} in this PDU, with span over the digits (may exceed 2^32)', type: 'bigint', multi: true},
  {name: 'imap.literal.count', description: 'literals announced in the command so far (in the PDUs that announce one)', type: 'number'},
  {name: 'imap.literal', description: 'bytes of each literal held (first bytes up to maxCommandBytes) that ends in this PDU, with span', type: 'bytes', multi: true},
  {name: 'imap.part', description: 'command judged in parts (synchronising literal): 1-based index of this part', type: 'number'},
  {name: 'imap.partial', description: '1 when more parts of the command follow (the line ended with a synchronising literal {n})', type: 'number'},
  {name: 'imap.truncated', description: '1 when the command exceeded maxCommandBytes, had an overlong line, a gap or no end', type: 'number'},
  {name: 'imap.login.user', description: 'LOGIN userid (atom, quoted content or literal bytes), with span', type: 'string'},
  {name: 'imap.login.password', description: 'LOGIN password (atom, quoted content or literal bytes), with span', type: 'string'},
  {name: 'imap.auth.mechanism', description: 'AUTHENTICATE SASL mechanism, with span', type: 'string'},
  {name: 'imap.auth.data', description: 'AUTHENTICATE initial response (SASL-IR) or continuation line, raw base64, with span', type: 'string'},
  {name: 'imap.auth.cancelled', description: '1 when the client cancelled AUTHENTICATE with "*"', type: 'number'},
  {name: 'imap.fetch.set', description: 'FETCH / UID FETCH sequence set, with span', type: 'string'},
  {name: 'imap.fetch.items', description: 'FETCH / UID FETCH data items (rest of the first line), with span', type: 'string'},
  {name: 'imap.response.tag', description: 'response tag ("*" for untagged), with span', type: 'string'},
  {name: 'imap.response.number', description: 'untagged numeric response: the number (EXISTS, FETCH, ...)', type: 'number'},
  {name: 'imap.response.type', description: 'response keyword, upper-cased (OK, NO, BAD, BYE, CAPABILITY, FETCH, ...)', type: 'string'},
  {name: 'imap.response.status', description: 'OK / NO / BAD / BYE / PREAUTH when the response is a status', type: 'string'},
  {name: 'imap.response.text', description: 'rest of the response line, with span', type: 'string'},
  {name: 'imap.response.literal.size', description: 'size of a literal announced at the end of the response line, with span', type: 'bigint'},
  {name: 'imap.response.command', description: 'tagged response: the command it completes, upper-cased', type: 'string'},
  {name: 'imap.continuation.text', description: 'continuation request "+" text, with span', type: 'string'},
]
