/** SMB1/SMB2/SMB3 analyzer (MS-SMB, MS-CIFS, MS-SMB2) over TCP 445/139, with DCE/RPC on named pipes. */
import type {AnalyzerFactory} from '../types.js'
import {DCERPC_LIMITS, type DcerpcLimits} from '../dcerpc/conn.js'
import {SMB_LIMITS, SmbAnalyzer, detectSmb, type SmbLimits} from './analyzer.js'
import {SMB_FIELDS} from './fields.js'
import {DCERPC_FIELDS} from '../dcerpc/fields.js'

export {SMB_LIMITS, SmbAnalyzer, detectSmb, type SmbLimits} from './analyzer.js'
export {SMB_ANOMALIES, SMB_FIELDS} from './fields.js'
export * from './parser.js'

/** an SMB analyzer factory with some limits overridden */
export function makeSmbAnalyzer(limits: Partial<SmbLimits> = SMB_LIMITS, rpcLimits: Partial<DcerpcLimits> = DCERPC_LIMITS): AnalyzerFactory {
  return {
    protocol: 'smb',
    // SMB flows also emit 'dcerpc' PDUs for named-pipe RPC
    fields: [...SMB_FIELDS, ...DCERPC_FIELDS],
    ports: [445, 139],
    transport: 'tcp',
    detect: detectSmb,
    create: (ctx) => new SmbAnalyzer(ctx, limits, rpcLimits),
  }
}

export const smbAnalyzer: AnalyzerFactory = makeSmbAnalyzer()
