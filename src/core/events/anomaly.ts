/**
 * Anomalies are data, not exceptions: every layer of the engine (decoder, defragmenter, TCP
 * reassembler, analyzers) reports what it saw through an AnomalySink, and the engine turns each
 * report into an EVE `anomaly` event carrying the flow's addresses.
 *
 * Codes are dotted and stable (rules match on them): `<layer>.<what>`, e.g.
 * `ipv4.frag_overlap_conflict`, `tcp.overlap_conflict`, `tcp.reassembly_memcap`.
 */
/** 'protection': a generic protection's threshold (src/core/protections/), e.g. protection.request_rate */
export type AnomalyType = 'decode' | 'defrag' | 'stream' | 'applayer' | 'limit' | 'protection'

export interface AnomalyReport {
  /** EVE anomaly.type */
  type: AnomalyType
  /** EVE anomaly.event: stable dotted code */
  event: string
  /** optional numbers or words that explain it (offsets, lengths, limit names) */
  detail?: Record<string, number | string | boolean>
}

export type AnomalySink = (report: AnomalyReport) => void

/** A sink that drops everything: for callers that do not care. */
export const ignoreAnomalies: AnomalySink = () => {}
