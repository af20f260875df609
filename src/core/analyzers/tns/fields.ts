import type {FieldSpec} from '../types.js'

/**
 * Fields of the TNS analyzer's PDUs (one per TNS packet). Kinds: connect, accept, ack, refuse,
 * redirect, data, null, abort, resend, marker, attention, control. Strings carry spans.
 */
export const TNS_FIELDS: readonly FieldSpec[] = [
  {name: 'tns.type', description: 'packet type (1 CONNECT, 2 ACCEPT, 4 REFUSE, 5 REDIRECT, 6 DATA, 11 RESEND, 12 MARKER...)', type: 'number'},
  {name: 'tns.length', description: 'packet length field (header included; 32-bit after a version >= 315 ACCEPT)', type: 'number'},
  {name: 'tns.flags', description: 'packet flags byte', type: 'number'},
  {name: 'tns.truncated', description: '1 when the packet was longer than maxPacketBytes and was inspected truncated', type: 'number'},
  {name: 'tns.version', description: 'CONNECT: requested version; ACCEPT: agreed version', type: 'number'},
  {name: 'tns.compat_version', description: 'CONNECT: lowest compatible version', type: 'number'},
  {name: 'tns.sdu', description: 'CONNECT: session data unit size', type: 'number'},
  {name: 'tns.tdu', description: 'CONNECT: transport data unit size', type: 'number'},
  {name: 'tns.connect_data', description: 'connect descriptor text as sent (CONNECT, or the DATA packet carrying a long descriptor)', type: 'string'},
  {name: 'tns.connect_data.length', description: 'connect data length (declared by CONNECT; actual on the packet carrying it)', type: 'number'},
  {name: 'tns.connect_data.offset', description: 'CONNECT: connect data offset from the packet start', type: 'number'},
  {name: 'tns.connect_data_malformed', description: '1 when the connect data offset/length leave the packet or the descriptor does not parse (syntax, unbalanced, too deep, too many values)', type: 'number'},
  {name: 'tns.cd.<path>', description: 'descriptor value by lower-cased keyword path without DESCRIPTION/DESCRIPTION_LIST/ADDRESS_LIST, e.g. tns.cd.connect_data.service_name, tns.cd.connect_data.command, tns.cd.address.host', type: 'string', multi: true},
  {name: 'tns.cd.max_value_length', description: 'longest descriptor value in bytes', type: 'number'},
  {name: 'tns.cd.max_depth', description: 'deepest keyword nesting of the descriptor', type: 'number'},
  {name: 'tns.cd.count', description: 'descriptor values parsed', type: 'number'},
  {name: 'tns.refuse.user_reason', description: 'REFUSE: user reason byte', type: 'number'},
  {name: 'tns.refuse.system_reason', description: 'REFUSE: system reason byte', type: 'number'},
  {name: 'tns.refuse.data', description: 'REFUSE: refusal text, e.g. (DESCRIPTION=(ERR=12514)...)', type: 'string'},
  {name: 'tns.redirect.data', description: 'REDIRECT: redirect descriptor text', type: 'string'},
  {name: 'tns.data.flags', description: 'DATA: data flags word', type: 'number'},
  {name: 'tns.data.length', description: 'DATA: payload bytes after the flags word', type: 'number'},
]
