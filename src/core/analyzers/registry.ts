/**
 * Every protocol analyzer the engine knows, in detection order (more specific first).
 */
import type {AnalyzerFactory} from './types.js'
import {httpAnalyzer} from './http/index.js'
import {smtpAnalyzer} from './smtp/index.js'
import {ftpAnalyzer} from './ftp/index.js'
import {imapAnalyzer} from './imap/index.js'
import {pop3Analyzer} from './pop3/index.js'
import {dtlsAnalyzer, tlsAnalyzer} from './tls/index.js'
import {mysqlAnalyzer} from './mysql/index.js'
import {tdsAnalyzer} from './tds/index.js'
import {ssrpAnalyzer} from './ssrp/index.js'
import {tnsAnalyzer} from './tns/index.js'
import {smbAnalyzer} from './smb/index.js'
import {dcerpcAnalyzer} from './dcerpc/index.js'
import {oncrpcAnalyzer, oncrpcUdpAnalyzer} from './oncrpc/index.js'
import {ldapAnalyzer} from './ldap/index.js'

export const analyzerFactories: readonly AnalyzerFactory[] = [
  httpAnalyzer,
  smtpAnalyzer,
  ftpAnalyzer,
  imapAnalyzer,
  pop3Analyzer,
  tlsAnalyzer,
  dtlsAnalyzer,
  mysqlAnalyzer,
  tdsAnalyzer,
  ssrpAnalyzer,
  tnsAnalyzer,
  smbAnalyzer,
  dcerpcAnalyzer,
  oncrpcAnalyzer,
  oncrpcUdpAnalyzer,
  ldapAnalyzer,
]

export function factoryFor(protocol: string): AnalyzerFactory | undefined {
  return analyzerFactories.find((f) => f.protocol === protocol)
}
