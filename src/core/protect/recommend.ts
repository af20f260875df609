/**
 * Recommendations: which rules protect an inventory service.
 *
 * A rule's `affects:` names products (`vendor/product`) and version ranges. The version
 * comparison is `../rules/versions.ts` (our own comparator: npm semver cannot parse `1.3.5rc3`,
 * `8.17.1.9` or `5.5.20-log`). For one service:
 *
 *  - the identity is the manual value (`fingerprint --set`) when there is one, else the detected
 *    product and version; when the version is unknown and the scan kept candidates, every
 *    candidate is tried and the union is recommended (marked `candidates`);
 *  - a rule whose product matches and whose range holds the version: `version`;
 *  - product matches but the version is unknown or unparseable: `version unknown` (a virtual
 *    patch errs on the side of protection);
 *  - a rule for every product of its protocol (`product: '*'`, or no `affects`): `generic`,
 *    when the service speaks that protocol;
 *  - a service with no product at all: every rule of its protocol, `by protocol`.
 *
 * Pure functions: no disk, no clock.
 */
import type {InventoryService} from '../inventory/inventory.js'
import type {CompiledRule} from '../rules/compile.js'
import {inAnyRange, parseVersion} from '../rules/versions.js'

export type MatchBasis = 'version' | 'version unknown' | 'candidates' | 'generic' | 'by protocol'

export interface Recommendation {
  rule_id: string
  basis: MatchBasis
  cves: string[]
  severity: string
  title: string
}

/**
 * How a rule relates to one product/version:
 *  - in: product matches, version in range (or the rule gives no range);
 *  - unknown: product matches, version unknown or unparseable;
 *  - generic: the rule covers every product (of its protocol);
 *  - out: product matches, version outside every range (the vendor patch is in);
 *  - other: the rule is about other products.
 */
export type Verdict = 'in' | 'unknown' | 'generic' | 'out' | 'other'

const RANK: Record<Verdict, number> = {in: 4, unknown: 3, generic: 2, out: 1, other: 0}

export function ruleVerdict(rule: Pick<CompiledRule, 'doc'>, product: string | undefined, version: string | undefined): Verdict {
  const list = rule.doc.affects
  if (list === undefined || list.length === 0) return 'generic'
  const p = product?.toLowerCase()
  let best: Verdict = 'other'
  const take = (v: Verdict) => {
    if (RANK[v] > RANK[best]) best = v
  }
  for (const a of list) {
    if (a.product === '*') {
      take('generic')
      continue
    }
    if (p === undefined || a.product.toLowerCase() !== p) continue
    if (a.versions === undefined || a.versions.length === 0 || a.versions.includes('*')) take('in')
    else if (version === undefined || parseVersion(version) === undefined) take('unknown')
    else take(inAnyRange(version, a.versions) ? 'in' : 'out')
  }
  return best
}

/** Inventory service names -> analyzer protocol names. */
const SERVICE_PROTOCOL: Readonly<Record<string, string>> = {
  http: 'http', 'http-proxy': 'http', 'http-alt': 'http', https: 'http', 'https-alt': 'http', www: 'http',
  ftp: 'ftp', smtp: 'smtp', submission: 'smtp', smtps: 'smtp', imap: 'imap', imaps: 'imap',
  pop3: 'pop3', pop3s: 'pop3', mysql: 'mysql', 'microsoft-ds': 'smb', 'netbios-ssn': 'smb', smb: 'smb',
  msrpc: 'dcerpc', dcerpc: 'dcerpc', 'ms-sql-m': 'mssql-ssrp', rpcbind: 'oncrpc', sunrpc: 'oncrpc',
}

/** The analyzer protocol a service speaks, when we can tell. */
export function serviceProtocol(s: Pick<InventoryService, 'service' | 'rpc_program' | 'dcerpc_interface'>): string | undefined {
  if (s.rpc_program) return 'oncrpc'
  if (s.dcerpc_interface) return 'dcerpc'
  return s.service ? SERVICE_PROTOCOL[s.service.toLowerCase()] : undefined
}

export interface Identity {
  product?: string
  version?: string
}

/**
 * What the service is, as far as matching goes. `definite` when there is exactly one product
 * and a parseable version (only then can a rule be retired); `fromCandidates` when the scan
 * could not decide and several candidates are tried.
 */
export function serviceIdentities(s: InventoryService): {ids: Identity[]; fromCandidates: boolean; definite: boolean} {
  if (s.manual) {
    const id = {product: s.manual.product ?? s.product, version: s.manual.version}
    return {ids: id.product ? [id] : [], fromCandidates: false, definite: isDefinite(id)}
  }
  if (s.product && s.version) {
    const id = {product: s.product, version: s.version}
    return {ids: [id], fromCandidates: false, definite: isDefinite(id)}
  }
  const cands = (s.candidates ?? []).filter((c) => s.product === undefined || c.product === s.product)
  if (cands.length > 0) return {ids: cands.map((c) => ({product: c.product, version: c.version})), fromCandidates: true, definite: false}
  if (s.product) return {ids: [{product: s.product}], fromCandidates: false, definite: false}
  return {ids: [], fromCandidates: false, definite: false}
}

function isDefinite(id: Identity): boolean {
  return id.product !== undefined && id.version !== undefined && parseVersion(id.version) !== undefined
}

/** The best verdict of a rule over every identity of a service. */
export function serviceVerdict(rule: Pick<CompiledRule, 'doc'>, ids: readonly Identity[]): Verdict {
  let best: Verdict = ids.length === 0 ? ruleVerdict(rule, undefined, undefined) : 'other'
  for (const id of ids) {
    const v = ruleVerdict(rule, id.product, id.version)
    if (RANK[v] > RANK[best]) best = v
  }
  return best
}

/** Rules recommended for one service, sorted by rule id. */
export function recommend(s: InventoryService, rules: readonly CompiledRule[]): Recommendation[] {
  const protocol = serviceProtocol(s)
  const {ids, fromCandidates} = serviceIdentities(s)
  const out: Recommendation[] = []
  for (const r of rules) {
    if (r.status === 'deprecated') continue
    let basis: MatchBasis | undefined
    if (ids.length === 0) {
      if (protocol !== undefined && r.protocol === protocol) basis = 'by protocol'
    } else {
      const v = serviceVerdict(r, ids)
      if (v === 'in') basis = fromCandidates ? 'candidates' : 'version'
      else if (v === 'unknown') basis = fromCandidates ? 'candidates' : 'version unknown'
      else if (v === 'generic' && protocol !== undefined && r.protocol === protocol) basis = 'generic'
    }
    if (basis) out.push({rule_id: r.id, basis, cves: r.cves, severity: r.severity, title: r.title})
  }
  out.sort((a, b) => (a.rule_id < b.rule_id ? -1 : a.rule_id > b.rule_id ? 1 : 0))
  return out
}
