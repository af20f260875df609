/**
 * What the `rules` commands need from the analyzer registry: the fields each protocol's analyzer
 * emits (so lint can reject unknown fields), and a plain, JSON-friendly summary of a rule.
 */
import {existsSync} from 'node:fs'
import path from 'node:path'
import {analyzerFactories} from '../analyzers/registry.js'
import type {Analyzer, AnalyzerContext, AnalyzerFactory, Direction, FieldSpec} from '../analyzers/types.js'
import {findProject, type ProjectLocation} from '../project/find.js'
import type {CompiledRule} from './compile.js'
import {packageRulesDir} from './rule-schema.js'
import {anomalyFields, anomalyPdu} from '../protections/anomaly-fields.js'

export {anomalyFields}
import type {Action, AffectsDoc, RuleStatus, Severity} from './types.js'

/** The documented fields of `protocol`'s analyzer, or undefined when no analyzer handles it. */
export function fieldsFor(protocol: string): readonly FieldSpec[] | undefined {
  if (protocol === 'anomaly') return anomalyFields
  return analyzerFactories.find((f) => f.protocol === protocol)?.fields
}

/** Protocols that have an analyzer. */
export function knownProtocols(): string[] {
  return [...analyzerFactories.map((f) => f.protocol), 'anomaly']
}

/** One rule, summarized for listing (the `rules list --json` entries). */
export interface RuleSummary {
  id: string
  rev: number
  status: RuleStatus
  severity: Severity
  title: string
  cves: string[]
  /** affects[].product, in order, without duplicates */
  products: string[]
  protocol: string
  direction: 'toserver' | 'toclient'
  /** default action (operators may override it in patchpoint.yaml) */
  action: Action
  /** the YAML file it came from */
  file: string
}

export function summarizeRule(rule: CompiledRule): RuleSummary {
  return {
    id: rule.id,
    rev: rule.rev,
    status: rule.status,
    severity: rule.severity,
    title: rule.title,
    cves: [...rule.cves],
    products: [...new Set((rule.doc.affects ?? []).map((a: AffectsDoc) => a.product))],
    protocol: rule.protocol,
    direction: rule.direction,
    action: rule.action,
    file: rule.file ?? '',
  }
}

export interface RuleFilter {
  /** case-insensitive substring of an affected product ('apache' matches 'apache/http_server') */
  product?: string
  protocol?: string
  /** case-insensitive CVE id */
  cve?: string
  status?: string
}

/** Does the rule pass every given filter? */
export function ruleMatches(r: RuleSummary, f: RuleFilter): boolean {
  if (f.protocol !== undefined && r.protocol !== f.protocol.toLowerCase()) return false
  if (f.status !== undefined && r.status !== f.status) return false
  if (f.cve !== undefined && !r.cves.some((c) => c.toLowerCase() === f.cve!.toLowerCase())) return false
  if (f.product !== undefined && !r.products.some((p) => p.toLowerCase().includes(f.product!.toLowerCase()))) return false
  return true
}

/**
 * The project, when there is one: the rules commands also work outside any project (package
 * rules only). An explicit --project or PATCHPOINT_PROJECT that is not a project is still an error.
 */
export function optionalProject(explicit: string | undefined, env: string | undefined, cwd: string): ProjectLocation | undefined {
  try {
    return findProject({explicit, env, cwd})
  } catch (err) {
    if (explicit || env) throw err
    return undefined
  }
}

/** Rule directories: the package's own pack, plus the project's `rules/` folder when it exists. */
export function ruleDirsFor(project?: ProjectLocation): string[] {
  const dirs = [packageRulesDir]
  if (project) {
    const own = path.join(project.dir, 'rules')
    if (existsSync(own)) dirs.push(own)
  }
  return dirs
}

/** Most bytes buffered to pick the analyzer of an anomaly rule's sample (detect() needs at most 64). */
export const ANOMALY_DETECT_BYTES = 64

/**
 * A factory for `rules test` of an 'anomaly' rule: picks the analyzer whose detect() accepts the
 * sample's first bytes, forwards its units (so the sample is seen to produce something) and turns
 * each anomaly it reports into an 'anomaly' unit, as the engine does.
 */
export const anomalyTestFactory: AnalyzerFactory = {
  protocol: 'anomaly',
  fields: anomalyFields,
  ports: [],
  transport: 'tcp',
  detect: () => false,
  create(ctx: AnalyzerContext): Analyzer {
    const held: {dir: Direction; data: Uint8Array}[] = []
    let heldBytes = 0
    let inner: Analyzer | undefined
    let gaveUp = false
    const innerCtx: AnalyzerContext = {
      flow: ctx.flow,
      emit: (pdu) => ctx.emit(pdu),
      anomaly: (a) => {
        ctx.anomaly(a)
        ctx.emit(anomalyPdu(a))
      },
    }
    const pick = (force: boolean): void => {
      if (inner || gaveUp || held.length === 0) return
      if (!force && heldBytes < ANOMALY_DETECT_BYTES) return
      const first = held[0].dir
      const firstBytes = Uint8Array.from(Buffer.concat(held.filter((h) => h.dir === first).map((h) => h.data))).subarray(0, ANOMALY_DETECT_BYTES)
      const f = analyzerFactories.find((x) => x.transport === 'tcp' && x.detect(first, firstBytes))
      if (!f) {
        gaveUp = true
        return
      }
      inner = f.create(innerCtx)
      for (const h of held.splice(0)) inner.data(h.dir, h.data)
    }
    return {
      protocol: 'anomaly',
      data(dir, chunk) {
        if (inner) return inner.data(dir, chunk)
        if (gaveUp) return
        held.push({dir, data: Uint8Array.from(chunk)})
        heldBytes += chunk.length
        pick(false)
      },
      gap(dir, length) {
        pick(true)
        inner?.gap(dir, length)
      },
      end(dir) {
        pick(true)
        inner?.end(dir)
      },
      pendingFrom: (dir) => inner?.pendingFrom(dir) ?? -1,
    }
  },
}

/** The factory `rules test` runs a rule's samples through (the anomaly pseudo-protocol included). */
export function testFactoryFor(protocol: string): AnalyzerFactory | undefined {
  return protocol === 'anomaly' ? anomalyTestFactory : analyzerFactories.find((f) => f.protocol === protocol)
}
