/** ONC RPC analyzer (RFC 5531) with portmapper/rpcbind (RFC 1833), TCP and UDP. */
import type {AnalyzerFactory} from '../types.js'
import {ONCRPC_LIMITS, OncrpcAnalyzer, detectOncrpcTcp, detectOncrpcUdp, type OncrpcLimits} from './analyzer.js'
import {ONCRPC_FIELDS} from './fields.js'

export {ONCRPC_LIMITS, OncrpcAnalyzer, detectOncrpcTcp, detectOncrpcUdp, type OncrpcLimits} from './analyzer.js'
export {ONCRPC_ANOMALIES, ONCRPC_FIELDS} from './fields.js'
export * from './parser.js'

export function makeOncrpcAnalyzer(transport: 'tcp' | 'udp', limits: Partial<OncrpcLimits> = ONCRPC_LIMITS): AnalyzerFactory {
  return {
    protocol: 'oncrpc',
    fields: ONCRPC_FIELDS,
    ports: [111],
    transport,
    detect: transport === 'tcp' ? detectOncrpcTcp : detectOncrpcUdp,
    create: (ctx) => new OncrpcAnalyzer(ctx, transport, limits),
  }
}

export const oncrpcAnalyzer: AnalyzerFactory = makeOncrpcAnalyzer('tcp')
export const oncrpcUdpAnalyzer: AnalyzerFactory = makeOncrpcAnalyzer('udp')
