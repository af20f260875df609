import type {FieldSpec} from '../types.js'

/** Fields of the FTP analyzer's PDUs (kinds: command, reply). */
export const FTP_FIELDS: readonly FieldSpec[] = [
  {name: 'ftp.command', description: 'command verb, upper-cased (raw verb with span: ftp.command.raw)', type: 'string'},
  {name: 'ftp.command.raw', description: 'command verb as sent, with span', type: 'string'},
  {name: 'ftp.args', description: 'everything after the verb and its blanks up to CRLF, with span', type: 'string'},
  {name: 'ftp.line', description: 'the whole command line as sent, Telnet commands included, without CRLF (first maxLineBytes bytes of an overlong one), with span; the other command fields are read from the line with its Telnet commands (IAC ...) removed, as the server reads it, and have no span when any was', type: 'string'},
  {name: 'ftp.line.length', description: 'command line length without CRLF; maxLineBytes+1 when longer than the cap', type: 'number'},
  {name: 'ftp.user', description: 'USER argument (with span on the USER command; the session user, without span, on later PDUs)', type: 'string'},
  {name: 'ftp.pass', description: 'PASS argument, with span', type: 'string'},
  {name: 'ftp.logged_in', description: '1 once a 230 answered USER/PASS/ACCT (0 again after a failure or REIN), on every PDU', type: 'number'},
  {name: 'ftp.login_failures', description: 'failed logins (530 to USER/PASS, 5xx to PASS) so far on this connection, on every PDU', type: 'number'},
  {name: 'ftp.port.ip', description: 'PORT/EPRT target address (EPRT: with span)', type: 'string'},
  {name: 'ftp.port.port', description: 'PORT/EPRT target port', type: 'number'},
  {name: 'ftp.port.mismatch', description: "1 when the PORT/EPRT address is not the client's own (FTP bounce), 0 when it is; absent without flow info", type: 'number'},
  {name: 'ftp.site.command', description: 'SITE subcommand, upper-cased (EXEC, CHMOD, CPFR, CPTO, ...)', type: 'string'},
  {name: 'ftp.site.args', description: 'SITE subcommand arguments, with span', type: 'string'},
  {name: 'ftp.iac.count', description: 'Telnet IAC (0xFF) bytes in the command line (present only when > 0)', type: 'number'},
  {name: 'ftp.reply.code', description: 'reply code, with span', type: 'number'},
  {name: 'ftp.reply.text', description: 'text of each reply line (after "ddd " / "ddd-" when present), with span', type: 'string', multi: true},
  {name: 'ftp.reply.line_count', description: 'lines in the reply', type: 'number'},
  {name: 'ftp.reply.truncated', description: '1 when the reply hit maxReplyLines or the stream ended inside it', type: 'number'},
  {name: 'ftp.reply.command', description: 'upper-cased verb of the command this reply answers', type: 'string'},
  {name: 'ftp.banner', description: 'first line of the server greeting, with span', type: 'string'},
  {name: 'ftp.pasv.ip', description: '227 reply: announced data address', type: 'string'},
  {name: 'ftp.pasv.port', description: '227/229 reply: announced data port', type: 'number'},
  {name: 'ftp.pasv.mismatch', description: "227 reply: 1 when the announced address is not the server's own", type: 'number'},
]
