/** Helpers for the protections tests: fake flows and PDUs, and a replay with protections on. */
import fs from 'node:fs'
import {fileURLToPath} from 'node:url'
import type {Analyzer, Pdu} from '../../src/core/analyzers/types.js'
import type {AnomalyReport} from '../../src/core/events/anomaly.js'
import type {EveEvent} from '../../src/core/events/eve.js'
import {openCapture} from '../../src/core/capture/reader.js'
import {Engine, type EngineFlow} from '../../src/core/engine/engine.js'
import {engineDetection} from '../../src/core/engine/detection.js'
import {createProtections} from '../../src/core/protections/index.js'
import type {DeepPartial, ProtectionsConfig} from '../../src/core/protections/config.js'

export const corpusDir = fileURLToPath(new URL('../../../shared/corpus/pcaps/', import.meta.url))
export const haveCorpus = fs.existsSync(corpusDir)

/** dotted quad -> signed 32-bit number, as the engine keeps IPv4 addresses */
function addr4(ip: string): number {
  return ip.split('.').reduce((a, b) => (a << 8) | Number(b), 0) | 0
}

export function fakeFlow(o: Partial<EngineFlow> = {}): EngineFlow {
  const f = fakeFlowFields(o)
  const v4 = !f.clientIp.includes(':')
  return {...f, family: v4 ? 4 : 6, clientAddr4: v4 ? addr4(f.clientIp) : 0, serverAddr4: v4 ? addr4(f.serverIp) : 0, ...o}
}

function fakeFlowFields(o: Partial<EngineFlow>): Omit<EngineFlow, 'family' | 'clientAddr4' | 'serverAddr4'> {
  return {
    key: '', id: 1, proto: 6, clientIp: '198.51.100.7', clientPort: 40000, serverIp: '192.0.2.10', serverPort: 80,
    startUs: 0, lastUs: 0, idleUs: 0, pktsToServer: 0, pktsToClient: 0, bytesToServer: 0, bytesToClient: 0,
    tcp: null, appProto: 'http', analyzer: null, detectToServer: null, detectToClient: null, detectDone: true, offsets: [0, 0],
    pendingSyn: null, anomalyCounts: null, alerted: 0, ended: false, lruPrev: null, lruNext: null, lruList: null,
    v4: false, v4lo: 0, v4hi: 0, v4ports: 0, hashNext: null, protection: null,
    ...o,
  }
}

/** an analyzer stub whose toserver direction has (or has not) a pending unit */
export function pendingAnalyzer(pending: () => boolean): Analyzer {
  return {protocol: 'http', data() {}, gap() {}, end() {}, pendingFrom: (dir) => (dir === 'toserver' && pending() ? 0 : -1)}
}

export function pdu(protocol: string, kind: string, dir: 'toserver' | 'toclient', fields: Record<string, string | number> = {}): Pdu {
  const f: Pdu['fields'] = new Map()
  for (const [k, v] of Object.entries(fields)) f.set(k, {v})
  return {protocol, kind, dir, start: 0, end: 0, fields: f}
}

export interface Reported {
  a: AnomalyReport
  flow: EngineFlow | null
}

export function collector(): {reports: Reported[]; report: (a: AnomalyReport, flow: EngineFlow | null) => void; events: (name: string) => Reported[]} {
  const reports: Reported[] = []
  return {reports, report: (a, flow) => reports.push({a, flow}), events: (name) => reports.filter((r) => r.a.event === name)}
}

/** Replay a capture through the engine with the analyzers, the package rules and the protections. */
let detectionOnce: ReturnType<typeof engineDetection> | undefined

export async function replayWithProtections(file: string, config: DeepPartial<ProtectionsConfig> = {}): Promise<{events: EveEvent[]; engine: Engine}> {
  detectionOnce ??= engineDetection()
  const detection = await detectionOnce
  const events: EveEvent[] = []
  const protections = createProtections(config)
  const engine: Engine = new Engine({
    onEvent: (ev) => events.push(ev),
    analyzers: detection.analyzers,
    judge: detection.judgeFor(() => engine),
    protections,
  })
  const r = openCapture(file)
  try {
    for (let rec = r.next(); rec; rec = r.next()) engine.processFrame(rec.data, rec.linktype, rec.tsUs)
  } finally {
    r.close()
  }
  engine.finish()
  return {events, engine}
}

export function anomalies(events: readonly EveEvent[], code: string): EveEvent[] {
  return events.filter((e) => e.event_type === 'anomaly' && (e as {anomaly?: {event?: string}}).anomaly?.event === code)
}

export function alerts(events: readonly EveEvent[], ruleId: string): EveEvent[] {
  return events.filter((e) => e.event_type === 'alert' && (e as {patchpoint?: {rule_id?: string}}).patchpoint?.rule_id === ruleId)
}
