/** The fields the TLS analyzer exposes to rules (`rules lint` checks rule fields against this list). */
import type {FieldSpec} from '../types.js'

export const tlsFields: readonly FieldSpec[] = [
  // record layer (every PDU)
  {name: 'tls.record.type', type: 'number', description: 'record content type: 20 change_cipher_spec, 21 alert, 22 handshake, 23 application_data, 24 heartbeat (span)'},
  {name: 'tls.record.version', type: 'number', description: 'record-layer version, e.g. 771 = 0x0303 (span, 2 bytes big-endian)'},
  {name: 'tls.record.epoch', type: 'number', description: 'DTLS only: record epoch (span, 2 bytes big-endian); 0 is cleartext, later epochs are protected'},
  {name: 'tls.record.length', type: 'number', description: 'declared record fragment length (span, 2 bytes big-endian); over 2^14+2048 is an anomaly'},
  {name: 'tls.record.truncated', type: 'number', description: '1 when the PDU carries less than the declared record (size cap, gap, end of stream)'},
  {name: 'tls.record.encrypted', type: 'number', description: '1 when the record follows a ChangeCipherSpec (or a TLS 1.3 ServerHello) in its direction, or (DTLS) its epoch is above 0: contents not parsed'},
  // handshake
  {name: 'tls.handshake.type', type: 'number', multi: true, description: 'type of each cleartext handshake message completed (or skipped) in this record (span of the type byte)'},
  {name: 'tls.handshake.length', type: 'number', multi: true, description: 'declared length of each of those handshake messages'},
  // ClientHello (kind client_hello)
  {name: 'tls.client.version', type: 'number', description: 'ClientHello legacy_version, e.g. 771 = TLS 1.2 (span)'},
  {name: 'tls.client.session_id.length', type: 'number', description: 'ClientHello session_id length'},
  {name: 'tls.cipher_suites', type: 'number', multi: true, description: 'ClientHello cipher suites, first maxListItems (span of each 2 bytes)'},
  {name: 'tls.cipher_suites.count', type: 'number', description: 'number of cipher suites the ClientHello offers'},
  {name: 'tls.compression_methods.count', type: 'number', description: 'number of compression methods the ClientHello offers'},
  {name: 'tls.extensions', type: 'number', multi: true, description: 'ClientHello extension types in order, first maxListItems (span of each type)'},
  {name: 'tls.extensions.count', type: 'number', description: 'number of ClientHello extensions'},
  {name: 'tls.sni', type: 'string', description: 'first host_name of the ClientHello server_name extension, latin1 (span)'},
  {name: 'tls.heartbeat_ext', type: 'number', description: '1 when the ClientHello offers the heartbeat extension (15), else 0'},
  {name: 'tls.client_hello.malformed', type: 'number', description: '1 when a ClientHello length field did not fit (fields hold what was parsed before)'},
  // ServerHello (kind server_hello)
  {name: 'tls.server.version', type: 'number', description: 'ServerHello legacy_version (span)'},
  {name: 'tls.server.supported_version', type: 'number', description: 'version selected by the supported_versions extension (772 = TLS 1.3) (span)'},
  {name: 'tls.server.cipher_suite', type: 'number', description: 'cipher suite the ServerHello selected (span)'},
  {name: 'tls.server.extensions', type: 'number', multi: true, description: 'ServerHello extension types (span of each type)'},
  {name: 'tls.server.hello_retry', type: 'number', description: '1 when the ServerHello is a TLS 1.3 HelloRetryRequest'},
  // alert
  {name: 'tls.alert.level', type: 'number', description: 'cleartext alert level: 1 warning, 2 fatal (span)'},
  {name: 'tls.alert.description', type: 'number', description: 'cleartext alert description code (span)'},
  // heartbeat (kind heartbeat, RFC 6520)
  {name: 'tls.heartbeat.type', type: 'number', description: 'heartbeat message type: 1 request, 2 response (span; absent when encrypted)'},
  {name: 'tls.heartbeat.payload_length', type: 'number', description: 'declared heartbeat payload_length (span, 2 bytes big-endian; absent when encrypted)'},
  {name: 'tls.heartbeat.record_length', type: 'number', description: 'actual length of the heartbeat record fragment'},
  {name: 'tls.heartbeat.overflow', type: 'number', description: '1 when 3 + payload_length + 16 > record length: the Heartbleed condition (CVE-2014-0160), else 0'},
  {name: 'tls.heartbeat.encrypted', type: 'number', description: '1 when the heartbeat record is encrypted (only its length is known), else 0'},
  {name: 'tls.heartbeat.response_excess', type: 'number', description: 'heartbeat response (or encrypted heartbeat) record length minus the length of the request it answers from the other side: a large value is the Heartbleed leak'},
]

/** anomaly codes the analyzer reports (type 'applayer') */
export const tlsAnomalies: readonly string[] = [
  'tls.record_invalid', 'tls.record_too_long', 'tls.record_truncated', 'tls.resync', 'tls.resync_failed', 'tls.gap',
  'tls.handshake_too_long', 'tls.handshake_pieces', 'tls.handshake_incomplete', 'tls.client_hello_malformed',
  'tls.server_hello_malformed', 'tls.heartbeat_overflow', 'tls.heartbeat_short', 'tls.heartbeat_queue_full',
  'tls.empty_record', 'tls.records_per_datagram',
]
