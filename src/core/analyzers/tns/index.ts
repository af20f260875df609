/** Oracle Net (TNS) analyzer. */
import type {AnalyzerFactory, Direction} from '../types.js'
import {TNS_LIMITS, TnsAnalyzer, type TnsLimits} from './analyzer.js'
import {TNS_FIELDS} from './fields.js'
import {looksLikeTnsConnect} from './parser.js'

export {TNS_LIMITS, TnsAnalyzer, type TnsLimits} from './analyzer.js'
export {TNS_FIELDS} from './fields.js'
export {looksLikeTnsConnect, parseConnect, parseDescriptor, parseTnsHeader} from './parser.js'

/** by content (Oracle often runs on other ports than 1521): a client CONNECT packet */
export function detectTns(dir: Direction, firstBytes: Uint8Array): boolean {
  return dir === 'toserver' && looksLikeTnsConnect(firstBytes.subarray(0, 64))
}

/** a TNS analyzer factory with limits overridden (tests, tuning) */
export function makeTnsAnalyzer(limits: Partial<TnsLimits> = TNS_LIMITS): AnalyzerFactory {
  return {
    protocol: 'tns',
    fields: TNS_FIELDS,
    ports: [1521, 1526, 1522],
    transport: 'tcp',
    detect: detectTns,
    create: (ctx) => new TnsAnalyzer(ctx, limits),
  }
}

export const tnsAnalyzer: AnalyzerFactory = makeTnsAnalyzer()
