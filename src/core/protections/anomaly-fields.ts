/**
 * Field specs of the pseudo-protocol 'anomaly': the engine judges every anomaly report as a unit
 * of protocol 'anomaly', kind = the anomaly type, with these fields (anomalyPdu, used by
 * src/core/engine/engine.ts judgeAnomaly). `rules lint` needs them for anomaly rules
 * (rules/generic/PP-EXCESSIVE-*.yaml, PP-EVASION-*.yaml, PP-OUTBOUND-HTTP.yaml).
 */
import type {Direction, FieldSpec, Fields, Pdu} from '../analyzers/types.js'
import type {AnomalyReport} from '../events/anomaly.js'

export const anomalyFields: readonly FieldSpec[] = [
  {name: 'anomaly.event', type: 'string', description: "stable dotted anomaly code, e.g. 'tcp.overlap_conflict', 'protection.request_rate'"},
  {name: 'anomaly.type', type: 'string', description: "anomaly layer: 'decode', 'defrag', 'stream', 'applayer', 'limit' or 'protection'"},
  {name: 'anomaly.dir', type: 'string', description: "side whose bytes raised it, 'toserver' or 'toclient', for protocol anomalies that say (absent otherwise)"},
]

/** an anomaly report as the unit anomaly rules judge (always direction toserver: rules protect servers) */
export function anomalyPdu(a: AnomalyReport): Pdu {
  const fields: Fields = new Map([
    ['anomaly.event', {v: a.event}],
    ['anomaly.type', {v: a.type}],
  ])
  const dir = a.detail?.dir
  if (dir === 'toserver' || dir === 'toclient') fields.set('anomaly.dir', {v: dir satisfies Direction})
  return {protocol: 'anomaly', kind: a.type, dir: 'toserver', start: 0, end: 0, fields}
}

/** The anomaly codes the generic protections report (type 'protection'). */
export const protectionAnomalies: readonly string[] = [
  'protection.request_rate',
  'protection.connection_rate',
  'protection.auth_failures',
  'protection.slow_request',
  'protection.outbound_not_allowed',
]
