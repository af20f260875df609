import type {AnalyzerFactory} from '../types.js'
import {IMAP_LIMITS, ImapAnalyzer, detectImap, type ImapLimits} from './analyzer.js'
import {IMAP_FIELDS} from './fields.js'

export {ImapAnalyzer, IMAP_LIMITS, detectImap, type ImapLimits} from './analyzer.js'
export {IMAP_FIELDS} from './fields.js'
export * from './parser.js'

/** an IMAP analyzer factory with some limits overridden */
export function makeImapAnalyzer(limits: Partial<ImapLimits> = IMAP_LIMITS): AnalyzerFactory {
  return {
    protocol: 'imap',
    fields: IMAP_FIELDS,
    ports: [143],
    transport: 'tcp',
    detect: detectImap,
    create: (ctx) => new ImapAnalyzer(ctx, limits),
  }
}

export const imapAnalyzer: AnalyzerFactory = makeImapAnalyzer()
