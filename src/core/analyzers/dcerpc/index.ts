/** DCE/RPC connection-oriented analyzer (C706 chapter 12, MS-RPCE) over TCP. */
import type {AnalyzerFactory} from '../types.js'
import {DcerpcAnalyzer, detectDcerpc} from './analyzer.js'
import {DCERPC_LIMITS, type DcerpcLimits} from './conn.js'
import {DCERPC_FIELDS} from './fields.js'

export {DcerpcAnalyzer, detectDcerpc} from './analyzer.js'
export {DCERPC_LIMITS, DcerpcConn, type DcerpcLimits, type DcerpcSink} from './conn.js'
export {DCERPC_ANOMALIES, DCERPC_FIELDS} from './fields.js'
export * from './parser.js'

/** a DCE/RPC-over-TCP analyzer factory with some limits overridden */
export function makeDcerpcAnalyzer(limits: Partial<DcerpcLimits> = DCERPC_LIMITS): AnalyzerFactory {
  return {
    protocol: 'dcerpc',
    fields: DCERPC_FIELDS,
    ports: [135, 593],
    transport: 'tcp',
    detect: detectDcerpc,
    create: (ctx) => new DcerpcAnalyzer(ctx, limits),
  }
}

export const dcerpcAnalyzer: AnalyzerFactory = makeDcerpcAnalyzer()
