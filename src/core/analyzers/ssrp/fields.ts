import type {FieldSpec} from '../types.js'

/**
 * Fields of the SSRP analyzer's PDUs (protocol 'mssql-ssrp', one per datagram). Kinds:
 * clnt_bcast_ex, clnt_ucast_ex, clnt_ucast_inst, clnt_ucast_dac, svr_resp, message (unknown).
 */
export const SSRP_FIELDS: readonly FieldSpec[] = [
  {name: 'ssrp.type', description: 'message type byte (2 CLNT_BCAST_EX, 3 CLNT_UCAST_EX, 4 CLNT_UCAST_INST, 5 SVR_RESP, 15 CLNT_UCAST_DAC)', type: 'number'},
  {name: 'ssrp.length', description: 'datagram length in bytes', type: 'number'},
  {name: 'ssrp.instance', description: 'CLNT_UCAST_INST / DAC instance name up to its NUL or the datagram end (first maxValueBytes), with span', type: 'string'},
  {name: 'ssrp.instance.length', description: 'instance name length in bytes, NUL excluded (the protocol allows 32; SQL Slammer sends ~370 without NUL)', type: 'number'},
  {name: 'ssrp.instance_unterminated', description: '1 when the instance name has no NUL before the end of the datagram', type: 'number'},
  {name: 'ssrp.protocol_version', description: 'CLNT_UCAST_DAC protocol version (1)', type: 'number'},
  {name: 'ssrp.response.size', description: 'SVR_RESP declared RESP_SIZE', type: 'number'},
  {name: 'ssrp.response', description: 'SVR_RESP data ("ServerName;X;InstanceName;Y;...") first maxValueBytes, with span', type: 'string'},
  {name: 'ssrp.malformed', description: '1 when the datagram breaks [MC-SQLR] (unknown type, wrong length, overlong or unterminated instance, RESP_SIZE mismatch)', type: 'number'},
]
