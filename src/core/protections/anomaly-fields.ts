/**
 * Field specs of the pseudo-protocol 'anomaly': the engine judges every anomaly report as a unit
 * of protocol 'anomaly', kind = the anomaly type, with these two fields (see
 * src/core/engine/engine.ts judgeAnomaly). `rules lint` needs them for anomaly rules
 * (rules/generic/PP-EXCESSIVE-*.yaml, PP-EVASION-*.yaml, PP-OUTBOUND-HTTP.yaml).
 */
import type {FieldSpec} from '../analyzers/types.js'

export const anomalyFields: readonly FieldSpec[] = [
  {name: 'anomaly.event', type: 'string', description: "stable dotted anomaly code, e.g. 'tcp.overlap_conflict', 'protection.request_rate'"},
  {name: 'anomaly.type', type: 'string', description: "anomaly layer: 'decode', 'defrag', 'stream', 'applayer', 'limit' or 'protection'"},
]

/** The anomaly codes the generic protections report (type 'protection'). */
export const protectionAnomalies: readonly string[] = [
  'protection.request_rate',
  'protection.connection_rate',
  'protection.auth_failures',
  'protection.slow_request',
  'protection.outbound_not_allowed',
]
