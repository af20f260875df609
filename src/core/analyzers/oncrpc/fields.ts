import type {FieldSpec} from '../types.js'

/** Fields of the ONC RPC analyzer's PDUs (kinds: call, reply, malformed); spans only on single-fragment records. */
export const ONCRPC_FIELDS: readonly FieldSpec[] = [
  {name: 'oncrpc.xid', description: 'transaction id, with span', type: 'number'},
  {name: 'oncrpc.rpc_version', description: 'call: RPC protocol version (2), with span', type: 'number'},
  {name: 'oncrpc.program', description: 'program number (call: with span; reply: from the matching call)', type: 'number'},
  {name: 'oncrpc.version', description: 'program version', type: 'number'},
  {name: 'oncrpc.procedure', description: 'procedure number', type: 'number'},
  {name: 'oncrpc.cred_flavor', description: 'call credential flavor (0 none, 1 AUTH_SYS, 6 RPCSEC_GSS), with span', type: 'number'},
  {name: 'oncrpc.cred_length', description: 'call credential body length, with span', type: 'number'},
  {name: 'oncrpc.body.length', description: 'call: bytes of procedure arguments (declared record length minus the call header)', type: 'number'},
  {name: 'oncrpc.record.length', description: 'record length over all fragments (TCP) or datagram length (UDP)', type: 'number'},
  {name: 'oncrpc.fragment_count', description: 'record-marking fragments of the record', type: 'number'},
  {name: 'oncrpc.truncated', description: '1 when the record was longer than maxRecordBytes', type: 'number'},
  {name: 'oncrpc.xdr.max_length', description: 'rpcbind v3/v4 call (and v2 CALLIT): largest declared XDR string/opaque/netbuf length in the arguments (rpcbomb CVE-2017-8779), with span', type: 'number'},
  {name: 'oncrpc.xdr.length_exceeds_body', description: '1 when a declared XDR length runs past the arguments', type: 'number'},
  {name: 'oncrpc.reply_stat', description: 'reply: 0 accepted, 1 denied, with span', type: 'number'},
  {name: 'oncrpc.accept_stat', description: 'accepted reply: 0 success, 1 prog_unavail, 2 prog_mismatch, 3 proc_unavail, 4 garbage_args, 5 system_err', type: 'number'},
  {name: 'oncrpc.reject_stat', description: 'denied reply: 0 rpc_mismatch, 1 auth_error', type: 'number'},
  {name: 'oncrpc.portmap.port', description: 'portmapper/rpcbind GETPORT/GETADDR/DUMP reply: announced ports', type: 'number', multi: true},
  {name: 'oncrpc.portmap.program', description: 'portmapper/rpcbind reply: program of each announced port', type: 'number', multi: true},
]

export const ONCRPC_ANOMALIES: readonly string[] = [
  'oncrpc.malformed',
  'oncrpc.record_too_long',
  'oncrpc.fragment_limit',
  'oncrpc.call_limit',
  'oncrpc.gap',
  'oncrpc.truncated_record',
  'oncrpc.xdr_length_exceeds_body',
]
