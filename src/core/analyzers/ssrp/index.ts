/** SQL Server Resolution Protocol analyzer ([MC-SQLR], UDP 1434; the SQL Server Browser). */
import type {AnalyzerFactory, Direction} from '../types.js'
import {SSRP_LIMITS, SsrpAnalyzer, type SsrpLimits} from './analyzer.js'
import {SSRP_FIELDS} from './fields.js'
import {looksLikeSsrp} from './parser.js'

export {SSRP_LIMITS, SsrpAnalyzer, type SsrpLimits} from './analyzer.js'
export {SSRP_FIELDS} from './fields.js'
export {looksLikeSsrp, parseSsrp} from './parser.js'

export function detectSsrp(_dir: Direction, firstBytes: Uint8Array): boolean {
  return looksLikeSsrp(firstBytes.subarray(0, 64))
}

/** an SSRP analyzer factory with limits overridden (tests, tuning) */
export function makeSsrpAnalyzer(limits: Partial<SsrpLimits> = SSRP_LIMITS): AnalyzerFactory {
  return {
    protocol: 'mssql-ssrp',
    fields: SSRP_FIELDS,
    ports: [1434],
    transport: 'udp',
    detect: detectSsrp,
    create: (ctx) => new SsrpAnalyzer(ctx, limits),
  }
}

export const ssrpAnalyzer: AnalyzerFactory = makeSsrpAnalyzer()
