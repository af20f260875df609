import type {FieldSpec} from '../types.js'

/**
 * Fields of the MySQL analyzer's PDUs. Kinds: toclient greeting, ok, error, eof, auth,
 * auth_switch, resultset, row, local_infile, packet; toserver ssl_request, login, auth, command,
 * packet. String values carry spans (absolute stream offsets) unless noted; with the compressed
 * protocol only values of a packet sent whole in one uncompressed compressed packet keep them.
 */
export const MYSQL_FIELDS: readonly FieldSpec[] = [
  {name: 'mysql.packet.length', description: 'payload length from the 3-byte packet header', type: 'number'},
  {name: 'mysql.seq', description: 'packet sequence id', type: 'number'},
  {name: 'mysql.packet.truncated', description: '1 when the packet was longer than maxPacketBytes and was inspected truncated', type: 'number'},
  {name: 'mysql.compressed', description: '1 on packets carried by the compressed protocol (CLIENT_COMPRESS negotiated)', type: 'number'},
  {name: 'mysql.continuation', description: '1 on a packet continuing a 0xffffff-byte payload', type: 'number'},
  {name: 'mysql.protocol_version', description: 'greeting: protocol version byte (10 for HandshakeV10)', type: 'number'},
  {name: 'mysql.server_version', description: 'greeting: server version string', type: 'string'},
  {name: 'mysql.connection_id', description: 'greeting: connection (thread) id', type: 'number'},
  {name: 'mysql.server_capabilities', description: 'greeting: server capability flags (32 bits)', type: 'number'},
  {name: 'mysql.auth_plugin', description: 'authentication plugin name (greeting, login, auth switch request)', type: 'string'},
  {name: 'mysql.capabilities', description: 'login/ssl_request: client capability flags', type: 'number'},
  {name: 'mysql.max_packet', description: 'login: client max packet size', type: 'number'},
  {name: 'mysql.charset', description: 'login: character set id', type: 'number'},
  {name: 'mysql.ssl_request', description: '1 on an SSLRequest packet (TLS follows; the analyzer stops)', type: 'number'},
  {name: 'mysql.user', description: 'login/COM_CHANGE_USER: user name (to the end of the packet when unterminated)', type: 'string'},
  {name: 'mysql.user.length', description: 'length in bytes of mysql.user', type: 'number'},
  {name: 'mysql.login.user_unterminated', description: 'login/COM_CHANGE_USER: 1 when the user name has no NUL before the end of the packet', type: 'number'},
  {name: 'mysql.login.malformed', description: 'login/COM_CHANGE_USER: 1 when a declared length leaves the packet, a string lacks its NUL or the fixed part is short', type: 'number'},
  {name: 'mysql.auth_response.length', description: 'login: declared auth-response length (length byte or lenenc; NUL-terminated form: bytes present); auth: payload length', type: 'number'},
  {name: 'mysql.auth_response.available', description: 'login: auth-response bytes actually present in the packet', type: 'number'},
  {name: 'mysql.database', description: 'login database, or schema of COM_INIT_DB / COM_CREATE_DB / COM_DROP_DB', type: 'string'},
  {name: 'mysql.command', description: 'command name, e.g. COM_QUERY (COM_0xNN for unknown codes); no span', type: 'string'},
  {name: 'mysql.command.code', description: 'command byte', type: 'number'},
  {name: 'mysql.query', description: 'COM_QUERY / COM_STMT_PREPARE statement text (first maxPacketBytes of the packet)', type: 'string'},
  {name: 'mysql.query.length', description: 'statement length in bytes as declared by the packet header', type: 'number'},
  {name: 'mysql.query.truncated', description: '1 when mysql.query holds only the first part of the statement', type: 'number'},
  {name: 'mysql.table', description: 'COM_FIELD_LIST table name', type: 'string'},
  {name: 'mysql.error_code', description: 'ERR packet: error code', type: 'number'},
  {name: 'mysql.sql_state', description: 'ERR packet: 5-character SQL state', type: 'string'},
  {name: 'mysql.error_message', description: 'ERR packet: message text', type: 'string'},
  {name: 'mysql.auth_failed', description: 'ERR packet answering a login or COM_CHANGE_USER: 1', type: 'number'},
  {name: 'mysql.auth_failures', description: 'failed logins so far on this flow (every PDU; counts the current one)', type: 'number'},
  {name: 'mysql.local_infile', description: 'server LOCAL INFILE request (0xFB): file name the server asks the client for', type: 'string'},
  {name: 'mysql.response_to', description: 'toclient command-phase PDUs: name of the last client command (no span)', type: 'string'},
]
