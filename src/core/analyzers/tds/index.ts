/** Microsoft SQL Server Tabular Data Stream analyzer ([MS-TDS]). */
import type {AnalyzerFactory, Direction} from '../types.js'
import {TDS_LIMITS, TdsAnalyzer, type TdsLimits} from './analyzer.js'
import {TDS_FIELDS} from './fields.js'
import {looksLikeTds} from './parser.js'

export {TDS_LIMITS, TdsAnalyzer, type TdsLimits} from './analyzer.js'
export {TDS_FIELDS} from './fields.js'
export {formatVersion, looksLikeTds, parseLogin7, parsePrelogin, parseRpcHead, parseTdsHeader, skipAllHeaders, ucs2ToLatin1} from './parser.js'

/** the client speaks first: PRELOGIN (or LOGIN) packet header */
export function detectTds(dir: Direction, firstBytes: Uint8Array): boolean {
  return dir === 'toserver' && looksLikeTds(firstBytes.subarray(0, 64))
}

/** a TDS analyzer factory with limits overridden (tests, tuning) */
export function makeTdsAnalyzer(limits: Partial<TdsLimits> = TDS_LIMITS): AnalyzerFactory {
  return {
    protocol: 'tds',
    fields: TDS_FIELDS,
    ports: [1433],
    transport: 'tcp',
    detect: detectTds,
    create: (ctx) => new TdsAnalyzer(ctx, limits),
  }
}

export const tdsAnalyzer: AnalyzerFactory = makeTdsAnalyzer()
