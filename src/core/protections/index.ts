/**
 * Generic protections (issue 3 item 4): SQL injection (a rule operator: src/core/rules/sqli.ts),
 * excessive requests (rate.ts), file-extension blacklist (file-extension.ts), outbound HTTP
 * whitelist (outbound.ts) and the flow layer's evasions (rules only: rules/generic/PP-EVASION-*).
 *
 * `createProtections(config)` gives the engine's hook object (EngineOptions.protections).
 */
import type {Pdu} from '../analyzers/types.js'
import type {EngineFlow, EngineProtections, ProtectionReport} from '../engine/engine.js'
import {protectionsConfig, type DeepPartial, type ProtectionsConfig} from './config.js'
import {OutboundHttp} from './outbound.js'
import {RateProtection, type RateOptions} from './rate.js'

export class Protections implements EngineProtections {
  readonly rate: RateProtection
  readonly outbound: OutboundHttp

  constructor(readonly config: ProtectionsConfig, opts: RateOptions = {}) {
    this.rate = new RateProtection(config, opts)
    this.outbound = new OutboundHttp(config.outbound_http)
  }

  onFlowStart(flow: EngineFlow, report: ProtectionReport): void {
    this.rate.onFlowStart(flow, report)
  }

  onClientData(flow: EngineFlow, report: ProtectionReport): void {
    this.rate.onClientData(flow, report)
  }

  onPdu(pdu: Pdu, flow: EngineFlow, report: ProtectionReport): void {
    this.rate.onPdu(pdu, flow, report)
    if (this.outbound.enabled) this.outbound.onPdu(pdu, flow, report)
  }

  tick(nowUs: number, report: ProtectionReport): void {
    this.rate.tick(nowUs, report)
  }
}

/** The engine hooks for a `protections:` section (partial sections get the defaults). */
export function createProtections(config: DeepPartial<ProtectionsConfig> | ProtectionsConfig = {}, opts: RateOptions = {}): Protections {
  return new Protections(protectionsConfig(config as DeepPartial<ProtectionsConfig>), opts)
}

export {protectionsConfig, protectionsSchema, PROTECTIONS_DEFAULTS, DEFAULT_REQUEST_EXTENSIONS, DEFAULT_UPLOAD_EXTENSIONS} from './config.js'
export type {ProtectionsConfig, RateLimit, DeepPartial} from './config.js'
export {protectionRules, withProtectionRules, fileExtensionRuleDoc, FILE_EXTENSION_RULE_ID} from './file-extension.js'
export {anomalyFields, protectionAnomalies} from './anomaly-fields.js'
export {RateProtection, isAuthFailure, isRequest, MAX_WATCHED_FLOWS} from './rate.js'
export {OutboundHttp, hostOnly, requestHosts} from './outbound.js'
