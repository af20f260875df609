import type {FieldSpec} from '../types.js'

/** Fields of the POP3 analyzer's PDUs (kinds: command, auth, reply, continuation). */
export const POP3_FIELDS: readonly FieldSpec[] = [
  {name: 'pop3.command', description: 'command keyword, upper-cased', type: 'string'},
  {name: 'pop3.command.raw', description: 'command keyword as sent, with span', type: 'string'},
  {name: 'pop3.args', description: 'everything after the keyword, blanks trimmed, with span', type: 'string'},
  {name: 'pop3.line', description: 'the whole command line without CRLF (first maxLineBytes bytes of an overlong one), with span', type: 'string'},
  {name: 'pop3.line.length', description: 'line length without CRLF; maxLineBytes+1 when longer than the cap', type: 'number'},
  {name: 'pop3.user', description: 'USER / APOP name, with span', type: 'string'},
  {name: 'pop3.pass', description: 'PASS argument, with span', type: 'string'},
  {name: 'pop3.auth.mechanism', description: 'AUTH SASL mechanism, with span', type: 'string'},
  {name: 'pop3.auth.data', description: 'AUTH initial response or continuation line, raw base64, with span', type: 'string'},
  {name: 'pop3.auth.cancelled', description: '1 when the client cancelled AUTH with "*"', type: 'number'},
  {name: 'pop3.reply.status', description: '"+OK" or "-ERR" as sent, with span', type: 'string'},
  {name: 'pop3.reply.text', description: 'text after the status indicator, with span', type: 'string'},
  {name: 'pop3.reply.command', description: 'upper-cased keyword of the command this reply answers', type: 'string'},
  {name: 'pop3.reply.multiline', description: '1 when a multi-line body follows (skipped up to ".", not held)', type: 'number'},
  {name: 'pop3.greeting', description: '1 on the server greeting', type: 'number'},
  {name: 'pop3.continuation.text', description: 'AUTH challenge after "+ ", with span', type: 'string'},
]
