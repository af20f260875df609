import type {AnalyzerFactory} from '../types.js'
import {POP3_LIMITS, Pop3Analyzer, detectPop3, type Pop3Limits} from './analyzer.js'
import {POP3_FIELDS} from './fields.js'

export {Pop3Analyzer, POP3_LIMITS, detectPop3, type Pop3Limits} from './analyzer.js'
export {POP3_FIELDS} from './fields.js'
export * from './parser.js'

/** a POP3 analyzer factory with some limits overridden */
export function makePop3Analyzer(limits: Partial<Pop3Limits> = POP3_LIMITS): AnalyzerFactory {
  return {
    protocol: 'pop3',
    fields: POP3_FIELDS,
    ports: [110],
    transport: 'tcp',
    detect: detectPop3,
    create: (ctx) => new Pop3Analyzer(ctx, limits),
  }
}

export const pop3Analyzer: AnalyzerFactory = makePop3Analyzer()
