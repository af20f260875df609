import type {AnalyzerFactory} from '../types.js'
import {FTP_LIMITS, FtpAnalyzer, detectFtp, type FtpLimits} from './analyzer.js'
import {FTP_FIELDS} from './fields.js'

export {FtpAnalyzer, FTP_LIMITS, detectFtp, type FtpLimits} from './analyzer.js'
export {FTP_FIELDS} from './fields.js'
export * from './parser.js'

/** an FTP analyzer factory with some limits overridden */
export function makeFtpAnalyzer(limits: Partial<FtpLimits> = FTP_LIMITS): AnalyzerFactory {
  return {
    protocol: 'ftp',
    fields: FTP_FIELDS,
    ports: [21],
    transport: 'tcp',
    detect: detectFtp,
    create: (ctx) => new FtpAnalyzer(ctx, limits),
  }
}

export const ftpAnalyzer: AnalyzerFactory = makeFtpAnalyzer()
