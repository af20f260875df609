import type {FieldSpec} from '../types.js'

/**
 * Fields of the TDS analyzer's PDUs (one per message). Kinds: prelogin, login, sql_batch, rpc,
 * attention, bulk_load, sspi, ..., prelogin_response, response, tls_handshake, tls. Spans cover
 * the stream bytes of a value when contiguous; UCS-2 values are decoded to latin1 ('?' above
 * U+00FF) and their span covers the UCS-2 bytes.
 */
export const TDS_FIELDS: readonly FieldSpec[] = [
  {name: 'tds.type', description: 'packet type of the message (0x01 SQL batch, 0x03 RPC, 0x04 response, 0x10 LOGIN7, 0x12 PRELOGIN...)', type: 'number'},
  {name: 'tds.length', description: 'Length field of the message\'s first packet (header included); TLS record length on tls PDUs', type: 'number'},
  {name: 'tds.status', description: 'status byte of the message\'s last packet', type: 'number'},
  {name: 'tds.packets', description: 'TDS packets in the message', type: 'number'},
  {name: 'tds.message.length', description: 'message payload bytes (packet headers excluded), also those beyond maxMessageBytes', type: 'number'},
  {name: 'tds.truncated', description: '1 when the message was inspected partially (cap, gap, end of stream, bad header)', type: 'number'},
  {name: 'tds.tls.content_type', description: 'tls PDU: TLS record content type', type: 'number'},
  {name: 'tds.prelogin.option', description: 'PRELOGIN option token numbers, in table order', type: 'number', multi: true},
  {name: 'tds.prelogin.option_length', description: 'PRELOGIN option data lengths, in table order', type: 'number', multi: true},
  {name: 'tds.prelogin.option_offset_invalid', description: '1 when an option\'s offset+length leaves the message or overlaps the option table, or the terminator is missing', type: 'number'},
  {name: 'tds.prelogin.version', description: 'client PRELOGIN VERSION as "major.minor.build.subbuild"', type: 'string'},
  {name: 'tds.prelogin.encryption', description: 'PRELOGIN ENCRYPTION byte (0 off, 1 on, 2 not supported, 3 required)', type: 'number'},
  {name: 'tds.prelogin.instance', description: 'INSTOPT instance name up to its NUL (or the whole option), latin1, with span', type: 'string'},
  {name: 'tds.prelogin.instance.length', description: 'length of tds.prelogin.instance in bytes', type: 'number'},
  {name: 'tds.prelogin.thread_id', description: 'PRELOGIN THREADID', type: 'number'},
  {name: 'tds.prelogin.mars', description: 'PRELOGIN MARS byte', type: 'number'},
  {name: 'tds.server_version', description: 'server PRELOGIN response VERSION as "major.minor.build.subbuild"', type: 'string'},
  {name: 'tds.encrypted', description: 'prelogin_response: 1 when both sides agreed to TLS (login or whole session encrypted)', type: 'number'},
  {name: 'tds.login.length', description: 'LOGIN7 Length field', type: 'number'},
  {name: 'tds.login.tds_version', description: 'LOGIN7 TDSVersion (e.g. 0x74000004)', type: 'number'},
  {name: 'tds.login.packet_size', description: 'LOGIN7 requested packet size', type: 'number'},
  {name: 'tds.login.hostname', description: 'LOGIN7 client host name', type: 'string'},
  {name: 'tds.login.user', description: 'LOGIN7 user name', type: 'string'},
  {name: 'tds.login.password.length', description: 'LOGIN7 password length in characters (the value is not exposed)', type: 'number'},
  {name: 'tds.login.appname', description: 'LOGIN7 application name', type: 'string'},
  {name: 'tds.login.servername', description: 'LOGIN7 server name', type: 'string'},
  {name: 'tds.login.library', description: 'LOGIN7 client interface library name (CltIntName)', type: 'string'},
  {name: 'tds.login.language', description: 'LOGIN7 language', type: 'string'},
  {name: 'tds.login.database', description: 'LOGIN7 initial database', type: 'string'},
  {name: 'tds.login.attach_db_file', description: 'LOGIN7 database file to attach', type: 'string'},
  {name: 'tds.login.field_invalid', description: '1 when an offset/length pair leaves the message or points into the fixed part, or Length exceeds the message', type: 'number'},
  {name: 'tds.sql', description: 'SQL batch text after ALL_HEADERS, UCS-2 decoded to latin1 (first maxMessageBytes)', type: 'string'},
  {name: 'tds.sql.length', description: 'SQL batch text length in characters (whole message, also beyond the cap)', type: 'number'},
  {name: 'tds.rpc.proc_name', description: 'RPC procedure name (or the well-known name of a ProcID)', type: 'string'},
  {name: 'tds.rpc.proc_id', description: 'RPC well-known ProcID (10 sp_executesql, 12 sp_execute...)', type: 'number'},
]
