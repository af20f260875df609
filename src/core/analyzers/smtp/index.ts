import type {AnalyzerFactory} from '../types.js'
import {SmtpAnalyzer, detectSmtp, type SmtpLimits} from './analyzer.js'
import {SMTP_FIELDS} from './fields.js'

export {SmtpAnalyzer, SMTP_LIMITS, detectSmtp, type SmtpLimits} from './analyzer.js'
export {SMTP_FIELDS} from './fields.js'
export * from './parser.js'

/** an SMTP analyzer factory with some limits overridden */
export function makeSmtpAnalyzer(limits: Partial<SmtpLimits> = {}): AnalyzerFactory {
  return {
    protocol: 'smtp',
    fields: SMTP_FIELDS,
    ports: [25, 587, 2525],
    transport: 'tcp',
    detect: detectSmtp,
    create: (ctx) => new SmtpAnalyzer(ctx, limits),
  }
}

export const smtpAnalyzer: AnalyzerFactory = makeSmtpAnalyzer()
