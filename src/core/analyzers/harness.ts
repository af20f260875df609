/**
 * Drive an analyzer over a scripted conversation without the packet engine: used by analyzer
 * tests (every-prefix / every-split checks) and by `rules test` to run rule samples through the
 * real analyzers.
 */
import type {AnomalyReport} from '../events/anomaly.js'
import type {AnalyzerFactory, Direction, EngineScope, FlowInfo, Pdu} from './types.js'

export interface ScriptStep {
  dir: Direction
  data: Uint8Array
}

export interface HarnessResult {
  pdus: Pdu[]
  anomalies: AnomalyReport[]
  dynamic: {ip: string; port: number; proto: 'tcp' | 'udp'; protocol: string; program?: string}[]
}

export interface HarnessOptions {
  /** feed each step in chunks of this many bytes (default: whole steps) */
  chunkSize?: number
  /** call end() on both directions after the script (default true) */
  end?: boolean
  /** flow addresses handed to the analyzer (default: client 192.0.2.1:40000 -> server 192.0.2.2 on the factory's first port) */
  flow?: FlowInfo
  /** the rules' field needs (AnalyzerContext.reads; default: every field is read) */
  reads?: (field: string, dir?: Direction) => boolean
  /** what the analyzers of one engine share (AnalyzerContext.engine; default: none) */
  engine?: EngineScope
}

export function runAnalyzer(factory: AnalyzerFactory, script: readonly ScriptStep[], opts: HarnessOptions = {}): HarnessResult {
  const result: HarnessResult = {pdus: [], anomalies: [], dynamic: []}
  const analyzer = factory.create({
    flow: opts.flow ?? {
      clientIp: '192.0.2.1',
      clientPort: 40000,
      serverIp: '192.0.2.2',
      serverPort: factory.ports[0] ?? 0,
      transport: factory.transport,
    },
    emit: (pdu) => result.pdus.push(pdu),
    anomaly: (a) => result.anomalies.push(a),
    dynamicService: (d) => result.dynamic.push(d),
    reads: opts.reads,
    engine: opts.engine,
  })
  const size = opts.chunkSize ?? 0
  for (const step of script) {
    if (size <= 0) {
      analyzer.data(step.dir, step.data)
      continue
    }
    for (let i = 0; i < step.data.length; i += size) {
      analyzer.data(step.dir, step.data.subarray(i, Math.min(step.data.length, i + size)))
    }
  }
  if (opts.end !== false) {
    analyzer.end('toserver')
    analyzer.end('toclient')
  }
  return result
}

/** latin1 text -> bytes, for fixtures written as strings */
export function bytes(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text, 'latin1'))
}

/** A comparable summary of PDUs (field maps turned into plain objects) for split-invariance tests. */
export function summarize(pdus: readonly Pdu[]): unknown[] {
  return pdus.map((p) => ({
    protocol: p.protocol,
    kind: p.kind,
    dir: p.dir,
    start: p.start,
    end: p.end,
    fields: Object.fromEntries([...p.fields.entries()].map(([k, v]) => [k, Array.isArray(v) ? v.map(plain) : plain(v)])),
  }))
}

function plain(v: {v: unknown; off?: number; len?: number}): unknown {
  return {v: typeof v.v === 'bigint' ? `${v.v}n` : v.v, off: v.off, len: v.len}
}
