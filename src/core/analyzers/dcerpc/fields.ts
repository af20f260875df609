import type {FieldSpec} from '../types.js'

/**
 * Fields of the DCE/RPC analyzer's PDUs (kind = PTYPE name: request, response, fault, bind,
 * bind_ack, bind_nak, alter_context, alter_context_resp, auth3, shutdown, co_cancel, orphaned).
 * Emitted both for DCE/RPC over TCP and for DCE/RPC carried in SMB named pipes. Spans are given
 * only when the PDU's bytes were contiguous in the carrying stream.
 */
export const DCERPC_FIELDS = [
  {name: 'dcerpc.ptype', description: 'PDU type (0 request, 2 response, 3 fault, 11 bind, 12 bind_ack, 14 alter_context...), with span', type: 'number'},
  {name: 'dcerpc.flags', description: 'pfc_flags (1 first frag, 2 last frag, 0x80 object uuid), with span', type: 'number'},
  {name: 'dcerpc.little_endian', description: '1 when the data representation is little-endian', type: 'number'},
  {name: 'dcerpc.frag_length', description: 'frag_length of the PDU, with span', type: 'number'},
  {name: 'dcerpc.auth_length', description: 'auth_length (auth verifier value bytes), with span', type: 'number'},
  {name: 'dcerpc.call_id', description: 'call_id, with span', type: 'number'},
  {name: 'dcerpc.auth.type', description: 'sec_trailer auth_type (9 SPNEGO, 10 NTLM, 16 Kerberos, 68 netlogon)', type: 'number'},
  {name: 'dcerpc.auth.level', description: 'sec_trailer auth_level', type: 'number'},
  {name: 'dcerpc.auth.pad_length', description: 'sec_trailer auth_pad_length', type: 'number'},
  {name: 'dcerpc.opnum', description: 'operation number (request: with span; response: from the matching request)', type: 'number'},
  {name: 'dcerpc.context_id', description: 'presentation context id, with span on unfragmented PDUs', type: 'number'},
  {name: 'dcerpc.alloc_hint', description: 'alloc_hint (announced stub size), with span on unfragmented PDUs', type: 'number'},
  {name: 'dcerpc.object', description: 'object UUID of a request with PFC_OBJECT_UUID', type: 'string'},
  {name: 'dcerpc.interface', description: 'interface UUID (request/response: resolved through the context id; bind: every abstract syntax)', type: 'string', multi: true},
  {name: 'dcerpc.interface.name', description: 'well-known interface name: srvsvc, lsarpc, netlogon, samr, drsuapi, epmapper, ISystemActivator, IRemoteActivation, efsrpc, wkssvc, dssetup, spoolss...', type: 'string', multi: true},
  {name: 'dcerpc.interface.version', description: 'interface version "major.minor"', type: 'string', multi: true},
  {name: 'dcerpc.stub', description: 'request/response stub data (request: reassembled across fragments, first maxStubBytes; span only when not fragmented)', type: 'bytes'},
  {name: 'dcerpc.stub.length', description: 'stub bytes (request: total over all fragments, also beyond the cap)', type: 'number'},
  {name: 'dcerpc.stub.truncated', description: '1 when the reassembled stub hit maxStubBytes/maxFragments or the stream ended mid-request', type: 'number'},
  {name: 'dcerpc.frag_count', description: 'fragments the request was sent in', type: 'number'},
  {name: 'dcerpc.stub.strings', description: 'NDR conformant varying UTF-16 strings found in the request stub (heuristic scan), decoded, first maxStringChars characters', type: 'string', multi: true},
  {name: 'dcerpc.stub.max_string_length', description: 'largest declared actual_count (characters) of those NDR strings, 0 when none', type: 'number'},
  {name: 'dcerpc.fault.status', description: 'fault status code, with span', type: 'number'},
  {name: 'dcerpc.max_xmit', description: 'bind/bind_ack max_xmit_frag, with span', type: 'number'},
  {name: 'dcerpc.max_recv', description: 'bind/bind_ack max_recv_frag, with span', type: 'number'},
  {name: 'dcerpc.bind.context_count', description: 'declared n_context_elem of a bind/alter_context', type: 'number'},
  {name: 'dcerpc.bind.transfer_syntax', description: 'transfer syntax UUIDs offered in a bind', type: 'string', multi: true},
  {name: 'dcerpc.bind_ack.secondary_address', description: 'bind_ack secondary address (port spec) bytes present, with span', type: 'string'},
  {name: 'dcerpc.bind_ack.secondary_address.length', description: 'declared secondary address length, with span', type: 'number'},
  {name: 'dcerpc.bind_ack.result_count', description: 'declared n_results of a bind_ack', type: 'number'},
  {name: 'dcerpc.bind_ack.results', description: 'result of each context (0 acceptance, 1 user rejection, 2 provider rejection)', type: 'number', multi: true},
  {name: 'dcerpc.bind_ack.malformed', description: '1 when a declared size of the bind_ack runs past the PDU or max_xmit/max_recv < 1432 (CVE-2022-26809 class)', type: 'number'},
  {name: 'dcerpc.bind_nak.reason', description: 'bind_nak provider reject reason, with span', type: 'number'},
  {name: 'dcerpc.epm.port', description: 'endpoint-mapper ept_map response: port of each tower', type: 'number', multi: true},
  {name: 'dcerpc.epm.interface', description: 'endpoint-mapper ept_map response: interface UUID of each tower', type: 'string', multi: true},
  {name: 'netlogon.client_credential', description: 'NetrServerAuthenticate, 2 and 3 (netlogon opnums 5, 15, 26) ClientCredential, hex of the 8 bytes (located by parsing the NDR stub)', type: 'string'},
  {name: 'netlogon.client_credential.raw', description: 'the same 8 bytes raw, with span when the request was not fragmented', type: 'bytes'},
  {name: 'netlogon.client_credential_zero', description: '1 when the ClientCredential is all zero (Zerologon CVE-2020-1472)', type: 'number'},
  {name: 'netlogon.client_credential.leading_zeros', description: 'zero bytes at the start of the ClientCredential (0-8; under Zerologon, a zero-IV AES-CFB8, a credential of k <= 7 leading zeros is accepted once in 2^(8(8-k)) tries, 8 once in 256)', type: 'number'},
  {name: 'netlogon.authenticator_zero', description: 'NetrServerPasswordSet2 (opnum 30): 1 when the Authenticator credential is all zero', type: 'number'},
  {name: 'netlogon.new_password_zero', description: 'NetrServerPasswordSet2 (opnum 30): 1 when the 516-byte ClearNewPassword is all zero', type: 'number'},
] as const satisfies readonly FieldSpec[]

export type DcerpcField = (typeof DCERPC_FIELDS)[number]['name']

/** anomaly codes this analyzer reports */
export const DCERPC_ANOMALIES: readonly string[] = [
  'dcerpc.bad_version',
  'dcerpc.frag_too_short',
  'dcerpc.auth_length_too_long',
  'dcerpc.pdu_too_short',
  'dcerpc.fragment_limit',
  'dcerpc.fragment_restart',
  'dcerpc.fragment_without_first',
  'dcerpc.fragment_incomplete',
  'dcerpc.truncated_pdu',
  'dcerpc.gap',
  'dcerpc.context_limit',
  'dcerpc.call_limit',
  'dcerpc.bind_malformed',
  'dcerpc.bind_ack_malformed',
  'dcerpc.bind_ack_frag_size',
]
