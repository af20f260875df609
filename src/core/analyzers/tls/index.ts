/** TLS record-layer analyzer (RFC 8446 §5, RFC 5246 §6.2), handshake hellos and heartbeats (RFC 6520); DTLS over UDP (dtls.ts). */
import type {AnalyzerFactory, Direction} from '../types.js'
import {TLS_LIMITS, TlsAnalyzer, type TlsLimits} from './analyzer.js'
import {tlsFields} from './fields.js'
import {CT_HANDSHAKE} from './parser.js'

export {MIN_ENCRYPTED_HEARTBEAT, TLS_LIMITS, TlsAnalyzer, type TlsLimits} from './analyzer.js'
export {tlsAnomalies, tlsFields} from './fields.js'
export {DTLS_MAX_RECORDS_PER_DATAGRAM, DtlsAnalyzer, dtlsAnalyzer, plausibleDtlsHeader} from './dtls.js'
export {heartbeatOverflows, MAX_RECORD_LENGTH, parseClientHello, parseHeartbeat, parseRecordHeader, parseServerHello} from './parser.js'

/** A flow starts with a handshake record header: 0x16 0x03 0x00..0x04 (SSL 3.0 .. TLS 1.3). */
function detect(_dir: Direction, firstBytes: Uint8Array): boolean {
  return firstBytes.length >= 3 && firstBytes[0] === CT_HANDSHAKE && firstBytes[1] === 3 && firstBytes[2] <= 4
}

/** A TLS analyzer factory with limits overridden (tests, tuning). */
export function tlsAnalyzerWith(limits: Partial<TlsLimits> = TLS_LIMITS): AnalyzerFactory {
  return {
    protocol: 'tls',
    fields: tlsFields,
    ports: [443, 465, 993, 995, 636, 8443, 5061],
    transport: 'tcp',
    detect,
    create: (ctx) => new TlsAnalyzer(ctx, limits),
  }
}

export const tlsAnalyzer: AnalyzerFactory = tlsAnalyzerWith(TLS_LIMITS)
