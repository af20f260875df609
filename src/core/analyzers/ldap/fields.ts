import type {FieldSpec} from '../types.js'

/**
 * Fields of the LDAP analyzer's PDUs (one per LDAPMessage). Kinds: bind_request, bind_response,
 * unbind_request, search_request, search_result_entry, search_result_done,
 * search_result_reference, modify_request, add_request, del_request, modify_dn_request,
 * compare_request, abandon_request, extended_request, extended_response, ..._response,
 * intermediate_response; `message` for an operation tag RFC 4511 does not define.
 */
export const LDAP_FIELDS: readonly FieldSpec[] = [
  {name: 'ldap.message_id', description: 'messageID of the LDAPMessage', type: 'number'},
  {name: 'ldap.op', description: 'operation: the unit kind, e.g. search_request, search_result_entry', type: 'string'},
  {name: 'ldap.op_tag', description: 'protocolOp application tag number (0 bindRequest ... 25 intermediateResponse)', type: 'number'},
  {name: 'ldap.length', description: 'message length in bytes (tag and length included)', type: 'number'},
  {name: 'ldap.truncated', description: '1 when the message was longer than maxMessageBytes and was inspected truncated', type: 'number'},
  {name: 'ldap.malformed', description: '1 when the message does not decode as BER LDAP allows (see anomaly ldap.malformed)', type: 'number'},
  {name: 'ldap.dn', description: 'the DN the operation names: bind name, search base, entry name (result entry, add, modify, delete, modify DN, compare)', type: 'string'},
  {name: 'ldap.bind.version', description: 'bind request: protocol version', type: 'number'},
  {name: 'ldap.bind.auth', description: "bind request: 'simple', 'sasl' or 'other'", type: 'string'},
  {name: 'ldap.bind.mechanism', description: 'bind request: SASL mechanism name', type: 'string'},
  {name: 'ldap.search.scope', description: 'search request: 0 base, 1 one level, 2 subtree', type: 'number'},
  {name: 'ldap.search.size_limit', description: 'search request: size limit', type: 'number'},
  {name: 'ldap.search.attributes', description: 'search request: attribute descriptions asked for', type: 'string', multi: true},
  {name: 'ldap.search.filter.length', description: 'search request: encoded filter length in bytes', type: 'number'},
  {name: 'ldap.attribute', description: 'attribute types of an entry (search result entry, add request, modify request, compare), as sent', type: 'string', multi: true},
  {name: 'ldap.attr.<type>', description: 'values of one attribute type of an entry (the type lower-cased in the name), e.g. ldap.attr.objectclass, ldap.attr.javacodebase', type: 'bytes', multi: true},
  {name: 'ldap.values', description: 'attribute values in the message', type: 'number'},
  {name: 'ldap.result.code', description: 'response: resultCode (0 success, 49 invalidCredentials...)', type: 'number'},
  {name: 'ldap.result.matched_dn', description: 'response: matchedDN', type: 'string'},
  {name: 'ldap.result.message', description: 'response: diagnosticMessage', type: 'string'},
  {name: 'ldap.referral', description: 'LDAP URLs of a referral (response) or a search result reference', type: 'string', multi: true},
  {name: 'ldap.extended.name', description: 'extended request: requestName OID (1.3.6.1.4.1.1466.20037 StartTLS); extended response: responseName', type: 'string'},
]
