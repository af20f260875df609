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
  http: 'http', 'http-proxy': 'http', 'http-alt': 'http', www: 'http',
  ftp: 'ftp', smtp: 'smtp', submission: 'smtp', imap: 'imap',
  pop3: 'pop3', mysql: 'mysql', 'microsoft-ds': 'smb', 'netbios-ssn': 'smb', smb: 'smb',
  msrpc: 'dcerpc', dcerpc: 'dcerpc', 'ms-sql-m': 'mssql-ssrp', rpcbind: 'oncrpc', sunrpc: 'oncrpc',
}

/**
 * Service names of protocols that speak TLS from their first byte (implicit TLS, RFC 8314 for
 * mail; nmap's names): on the wire the gateway sees TLS records and nothing of what they carry.
 */
const TLS_FIRST_SERVICES: ReadonlySet<string> = new Set([
  'ssl', 'tls', 'dtls', 'https', 'https-alt', 'smtps', 'submissions', 'imaps', 'pop3s', 'ftps', 'ldaps', 'nntps', 'ircs',
])

/**
 * Protocols whose analyzers hand the stream to the TLS analyzer after STARTTLS (line/base.ts):
 * their services get the TLS rules too.
 */
const STARTTLS_PROTOCOLS: ReadonlySet<string> = new Set(['smtp', 'imap', 'pop3', 'ftp'])

/** Does the service speak TLS first (the scan found TLS, `tunnel: ssl`, or its name says so)? */
function speaksTlsFirst(s: Pick<InventoryService, 'service' | 'tunnel'>): boolean {
  return s.tunnel === 'ssl' || (s.service !== undefined && TLS_FIRST_SERVICES.has(s.service.toLowerCase()))
}

/**
 * The analyzer protocol a service speaks on the wire, when we can tell: `tls` for a service that
 * speaks TLS first, whatever it carries inside.
 */
export function serviceProtocol(s: Pick<InventoryService, 'service' | 'tunnel' | 'rpc_program' | 'dcerpc_interface'>): string | undefined {
  if (s.rpc_program) return 'oncrpc'
  if (s.dcerpc_interface) return 'dcerpc'
  if (speaksTlsFirst(s)) return 'tls'
  return s.service ? SERVICE_PROTOCOL[s.service.toLowerCase()] : undefined
}

/** `OpenSSL/1.0.1f` in a banner's text (Apache's and others' Server header name the library) */
const OPENSSL_IN_TEXT = /\bOpenSSL\/(\d+\.\d+\.\d+[a-z]{0,2}(?:-(?:beta|pre)\d+)?)/i
/** `cpe:/a:openssl:openssl:1.0.1f` */
const OPENSSL_CPE = /^cpe:\/a:openssl:openssl:([^:]+)/i

/**
 * The TLS library of a TLS-first service, as far as its fingerprint tells (the scan repeats its
 * probes inside TLS, so a web server's Server header is read: `Apache/2.4.7 (Ubuntu)
 * OpenSSL/1.0.1f`). Empty when nothing names it.
 */
export function tlsLibraryIds(s: Pick<InventoryService, 'extra' | 'cpe'>): Identity[] {
  const out: Identity[] = []
  for (const c of s.cpe ?? []) {
    const m = OPENSSL_CPE.exec(c)
    if (m) out.push({product: 'openssl/openssl', version: m[1]})
  }
  const m = s.extra === undefined ? null : OPENSSL_IN_TEXT.exec(s.extra)
  if (m && !out.some((i) => i.version === m[1])) out.push({product: 'openssl/openssl', version: m[1]})
  return out
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

/**
 * Rules recommended for one service, sorted by rule id. A TLS-first service gets the TLS rules
 * only (the rules of what it carries cannot see through the encryption: `encryptedRules` lists
 * the ones its product would need); a service that can switch to TLS (STARTTLS) gets them beside
 * its own protocol's. TLS rules are judged against the TLS library when the fingerprint names one
 * (tlsLibraryIds), else recommended `by protocol`: a web or mail server's banner rarely says
 * which library answers the handshake.
 */
export function recommend(s: InventoryService, rules: readonly CompiledRule[]): Recommendation[] {
  const protocol = serviceProtocol(s)
  const tlsFirst = protocol === 'tls'
  const carriesTls = tlsFirst || (protocol !== undefined && STARTTLS_PROTOCOLS.has(protocol))
  const {ids, fromCandidates} = serviceIdentities(s)
  const tlsIds = carriesTls ? tlsLibraryIds(s) : []
  const out: Recommendation[] = []
  for (const r of rules) {
    if (r.status === 'deprecated') continue
    const tlsRule = carriesTls && r.protocol === 'tls'
    if (tlsFirst && !tlsRule) continue
    const own = tlsRule ? 'tls' : protocol
    let basis: MatchBasis | undefined
    const idsFor = tlsRule ? [...ids, ...tlsIds] : ids
    const v = idsFor.length === 0 ? undefined : serviceVerdict(r, idsFor)
    if (v === undefined || (tlsRule && v === 'other' && tlsIds.length === 0)) {
      // nothing says which product (or which TLS library) answers: every rule of the protocol
      if (own !== undefined && r.protocol === own) basis = 'by protocol'
    } else if (v === 'in') basis = fromCandidates ? 'candidates' : 'version'
    else if (v === 'unknown') basis = fromCandidates ? 'candidates' : 'version unknown'
    else if (v === 'generic' && own !== undefined && r.protocol === own) basis = 'generic'
    if (basis) out.push({rule_id: r.id, basis, cves: r.cves, severity: r.severity, title: r.title})
  }
  out.sort((a, b) => (a.rule_id < b.rule_id ? -1 : a.rule_id > b.rule_id ? 1 : 0))
  return out
}

/**
 * Rules a TLS-first service's product is exposed to (by version, or version unknown) that no
 * gateway can enforce: they judge the protocol inside the encryption. Empty for other services.
 */
export function encryptedRules(s: InventoryService, rules: readonly CompiledRule[]): string[] {
  if (serviceProtocol(s) !== 'tls') return []
  const {ids} = serviceIdentities(s)
  if (ids.length === 0) return []
  const out: string[] = []
  for (const r of rules) {
    if (r.status === 'deprecated' || r.protocol === 'tls') continue
    const v = serviceVerdict(r, ids)
    if (v === 'in' || v === 'unknown') out.push(r.id)
  }
  return out.sort()
}
