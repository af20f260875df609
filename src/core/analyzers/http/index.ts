/** HTTP/1.0 and HTTP/1.1 analyzer (RFC 9112 syntax, RFC 9110 semantics). */
import type {AnalyzerFactory, Direction} from '../types.js'
import {HTTP_LIMITS, HttpAnalyzer, type HttpLimits} from './analyzer.js'
import {httpFields} from './fields.js'
import {looksLikeRequest, looksLikeResponse} from './parser.js'

export {HTTP_LIMITS, HttpAnalyzer, type HttpLimits} from './analyzer.js'
export {httpAnomalies, httpFields} from './fields.js'
export {normalizeUri, percentDecode, collapseOverlong, URI_LIMITS, type NormalizedUri} from './uri.js'

function detect(dir: Direction, firstBytes: Uint8Array): boolean {
  const b = firstBytes.subarray(0, 64)
  return dir === 'toserver' ? looksLikeRequest(b, 0, b.length) === 1 : looksLikeResponse(b, 0, b.length) === 1
}

/** An HTTP analyzer factory with limits overridden (tests, tuning). */
export function httpAnalyzerWith(limits: Partial<HttpLimits> = {}): AnalyzerFactory {
  return {
    protocol: 'http',
    fields: httpFields,
    ports: [80, 8080, 8000, 8008, 8888, 3128],
    transport: 'tcp',
    detect,
    create: (ctx) => new HttpAnalyzer(ctx, limits),
  }
}

export const httpAnalyzer: AnalyzerFactory = httpAnalyzerWith(HTTP_LIMITS)
