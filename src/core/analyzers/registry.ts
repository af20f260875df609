/**
 * Every protocol analyzer the engine knows, in detection order (more specific first).
 */
import type {AnalyzerFactory} from './types.js'
import {httpAnalyzer} from './http/index.js'
import {smtpAnalyzer} from './smtp/index.js'
import {ftpAnalyzer} from './ftp/index.js'
import {imapAnalyzer} from './imap/index.js'
import {pop3Analyzer} from './pop3/index.js'

export const analyzerFactories: readonly AnalyzerFactory[] = [
  httpAnalyzer,
  smtpAnalyzer,
  ftpAnalyzer,
  imapAnalyzer,
  pop3Analyzer,
]

export function factoryFor(protocol: string): AnalyzerFactory | undefined {
  return analyzerFactories.find((f) => f.protocol === protocol)
}
