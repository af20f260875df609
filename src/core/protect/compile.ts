/**
 * From policy.yaml + inventory + rules to what `run` enforces (`.patchpoint/policy.json`) and
 * what has been retired (`.patchpoint/retired.json`). Pure: the time is an argument.
 *
 * Retirement: an assigned rule (listed by id, or recommended and in force in the previous
 * compiled policy) whose product matches the service but whose affected ranges no longer hold
 * the service's version (the vendor patch is in) is retired, with the date and the evidence
 * (version seen, when, by manual value or fingerprint). It stays retired while the version stays
 * outside the ranges (the entry, its date included, is kept as is: runs are idempotent). When
 * the version goes back into a range (or becomes unknown), the entry is dropped and the rule is
 * enforced again. Only a definite identity (one product, a parseable version) retires anything.
 */
import type {Inventory, InventoryHost, InventoryService} from '../inventory/inventory.js'
import type {CompiledRule} from '../rules/compile.js'
import type {Action} from '../rules/types.js'
import {serviceKey, type HostNetPolicy, type Policy, type ServicePolicy} from '../gateway/policy.js'
import {OS_POLICIES} from '../engine/session.js'
import {compareIp} from '../inventory/inventory.js'
import {
  formatAssignmentKey, parseAssignmentKey, RECOMMENDED,
  type Assignment, type AssignmentKey, type ProtectFile,
} from './policy-file.js'
import {encryptedRules, recommend, serviceIdentities, serviceProtocol, serviceVerdict, type Recommendation} from './recommend.js'

export const RETIRED_VERSION = 1
/** Most retired entries kept (oldest dropped first beyond this; the report bounds its read too). */
export const MAX_RETIRED = 100_000

export interface RetiredEvidence {
  /** product and version the inventory shows */
  product: string
  version_seen: string
  /** 'fingerprint' (a scan saw it) or 'manual' (`fingerprint --set`) */
  source: 'fingerprint' | 'manual'
  /** when that version was seen (service last_seen, or the manual value's set_at) */
  seen_at: string
  /** the rule's affected ranges and fixed versions for that product */
  affected: string[]
  fixed: string[]
}

export interface RetiredRecord {
  host: string
  port: number
  proto: 'tcp' | 'udp'
  rule_id: string
  /** first CVE (what `report` keys on), or the rule id when the rule names none */
  cve: string
  cves: string[]
  product: string
  version: string
  retired_at: string
  evidence: RetiredEvidence
}

export interface RetiredFile {
  version: number
  retired: RetiredRecord[]
}

/** One service as `protect` shows it. */
export interface ServiceView {
  host: string
  port: number
  proto: 'tcp' | 'udp'
  /** the policy.yaml key assigning it, when assigned */
  key?: string
  service?: string
  protocol?: string
  product?: string
  version?: string
  rpc_program?: number
  dcerpc_interface?: string
  in_inventory: boolean
  recommended: Recommendation[]
  assigned: Assignment | null
  /** rules `run` enforces (or shadows) on it */
  active: string[]
  retired: string[]
  action?: Action
  shadow: boolean
}

export interface CompileResult {
  policy: Policy
  retired: RetiredFile
  services: ServiceView[]
  /** retirements new in this run, and the ones undone (version went back) */
  newlyRetired: RetiredRecord[]
  unretired: RetiredRecord[]
  warnings: string[]
}

export interface CompileInput {
  file: ProtectFile
  inventory: Inventory
  rules: readonly CompiledRule[]
  previousPolicy?: Policy
  previousRetired?: readonly RetiredRecord[]
  now: string
}

interface Concrete {
  host: InventoryHost | undefined
  svc: InventoryService | undefined
  ip: string
  port: number
  proto: 'tcp' | 'udp'
}

/** The inventory services an assignment key designates (a program may run on several ports). */
export function resolveKey(inv: Inventory, k: AssignmentKey): Concrete[] {
  const host = inv.hosts.find((h) => h.ip === k.host)
  if (k.kind === 'port') {
    return [{host, svc: host?.services.find((s) => s.port === k.port && s.proto === k.proto), ip: k.host, port: k.port, proto: k.proto}]
  }
  const out: Concrete[] = []
  for (const s of host?.services ?? []) {
    const hit = k.kind === 'rpc' ? s.rpc_program?.program === k.program : s.dcerpc_interface?.uuid.toLowerCase() === k.uuid
    if (hit) out.push({host, svc: s, ip: k.host, port: s.port, proto: s.proto})
  }
  return out
}

const retiredKey = (host: string, proto: string, port: number, rule: string) => `${host}|${proto}|${port}|${rule}`

function compareStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

export function compareRetired(a: RetiredRecord, b: RetiredRecord): number {
  return compareIp(a.host, b.host) || compareStr(a.proto, b.proto) || a.port - b.port || compareStr(a.rule_id, b.rule_id)
}

function evidenceFor(rule: CompiledRule, svc: InventoryService, product: string, version: string): RetiredEvidence {
  const p = product.toLowerCase()
  const affected: string[] = []
  const fixed: string[] = []
  for (const a of rule.doc.affects ?? []) {
    if (a.product.toLowerCase() !== p) continue
    affected.push(...(a.versions ?? []))
    fixed.push(...(a.fixed ?? []))
  }
  return {
    product, version_seen: version,
    source: svc.manual ? 'manual' : 'fingerprint',
    seen_at: svc.manual ? svc.manual.set_at : svc.last_seen,
    affected, fixed,
  }
}

export function compileProtection(input: CompileInput): CompileResult {
  const {file, inventory, rules, now} = input
  const byId = new Map(rules.map((r) => [r.id, r]))
  const prevRules = new Map<string, Set<string>>()
  for (const s of input.previousPolicy?.services ?? []) prevRules.set(serviceKey(s.ip, s.port, s.proto), new Set(s.rules ?? []))
  const prevRetired = new Map<string, RetiredRecord>()
  for (const r of input.previousRetired ?? []) prevRetired.set(retiredKey(r.host, r.proto, r.port, r.rule_id), r)
  const retiredOut = new Map(prevRetired)
  const newlyRetired: RetiredRecord[] = []
  const unretired: RetiredRecord[] = []
  const warnings: string[] = []
  const services: ServicePolicy[] = []
  const views: ServiceView[] = []
  const compiled = new Set<string>()
  const viewed = new Set<string>()

  // port keys first: they win over a program key naming the same port
  const entries = Object.entries(file.services)
    .map(([text, a]) => ({text, a, k: parseAssignmentKey(text)}))
    .filter((e): e is {text: string; a: Assignment; k: AssignmentKey} => e.k !== undefined)
    .sort((x, y) => (x.k.kind === 'port' ? 0 : 1) - (y.k.kind === 'port' ? 0 : 1))

  for (const {text, a, k} of entries) {
    const targets = resolveKey(inventory, k)
    if (targets.length === 0) {
      warnings.push(`${text}: no such program on ${k.host} in the inventory (run fingerprint); nothing compiled`)
      continue
    }
    for (const t of targets) {
      const sk = serviceKey(t.ip, t.port, t.proto)
      if (compiled.has(sk) || viewed.has(sk)) {
        warnings.push(`${text}: ${formatAssignmentKey({kind: 'port', host: t.ip, port: t.port, proto: t.proto})} is already assigned by another entry; ignored`)
        continue
      }
      viewed.add(sk)
      const recs = t.svc ? recommend(t.svc, rules) : []
      const wanted = new Set<string>()
      for (const id of a.rules) {
        if (id === RECOMMENDED) for (const r of recs) wanted.add(r.rule_id)
        else wanted.add(id)
      }
      // candidates for retirement: wanted, plus recommended rules in force before, plus retired ones
      const consider = new Set(wanted)
      if (a.rules.includes(RECOMMENDED)) for (const id of prevRules.get(sk) ?? []) consider.add(id)
      for (const r of prevRetired.values()) if (r.host === t.ip && r.port === t.port && r.proto === t.proto) consider.add(r.rule_id)
      const ident = t.svc ? serviceIdentities(t.svc) : {ids: [], fromCandidates: false, definite: false}
      const retiredIds: string[] = []
      for (const id of consider) {
        const rule = byId.get(id)
        if (!rule) continue
        const rk = retiredKey(t.ip, t.proto, t.port, id)
        const v = serviceVerdict(rule, ident.ids)
        const was = prevRetired.get(rk)
        if (ident.definite && v === 'out') {
          retiredIds.push(id)
          if (!was) {
            const {product, version} = ident.ids[0] as {product: string; version: string}
            const rec: RetiredRecord = {
              host: t.ip, port: t.port, proto: t.proto, rule_id: id, cve: rule.cves[0] ?? id, cves: [...rule.cves],
              product, version, retired_at: now, evidence: evidenceFor(rule, t.svc as InventoryService, product, version),
            }
            retiredOut.set(rk, rec)
            newlyRetired.push(rec)
          }
        } else if (was && (v === 'in' || v === 'unknown' || v === 'generic')) {
          retiredOut.delete(rk)
          unretired.push(was)
        } else if (was) {
          retiredIds.push(id) // e.g. the product changed: the history stays, the rule stays off
        }
      }
      const retiredSet = new Set(retiredIds)
      const active = [...wanted].filter((id) => !retiredSet.has(id) && byId.has(id)).sort(compareStr)
      for (const id of wanted) if (!byId.has(id)) warnings.push(`${text}: unknown rule ${id}; ignored`)
      const protocol = t.svc ? serviceProtocol(t.svc) : undefined
      if (protocol === 'tls' && t.svc) {
        const where = formatAssignmentKey({kind: 'port', host: t.ip, port: t.port, proto: t.proto})
        const blind = active.filter((id) => byId.get(id)?.protocol !== 'tls')
        if (blind.length > 0) warnings.push(`${where} speaks TLS: ${blind.join(', ')} cannot see inside it and will not fire`)
        const exposed = encryptedRules(t.svc, rules).filter((id) => !retiredSet.has(id))
        if (exposed.length > 0) {
          warnings.push(`${where} speaks TLS: its product is exposed to ${exposed.join(', ')}, which no gateway can enforce on encrypted traffic; patch the server, or terminate TLS in front of it and protect the plain side`)
        }
      }
      views.push({
        host: t.ip, port: t.port, proto: t.proto, key: text, service: t.svc?.service, protocol,
        product: t.svc?.product, version: t.svc?.version,
        rpc_program: t.svc?.rpc_program?.program, dcerpc_interface: t.svc?.dcerpc_interface?.uuid,
        in_inventory: t.svc !== undefined, recommended: recs, assigned: a, active,
        retired: retiredIds.sort(compareStr), action: a.action ?? file.default_action, shadow: a.shadow === true,
      })
      if (active.length === 0) continue
      compiled.add(sk)
      const sp: ServicePolicy = {ip: t.ip, port: t.port, proto: t.proto}
      if (protocol) sp.protocol = protocol
      sp.rules = active
      if (a.action) sp.action = a.action
      if (a.shadow !== undefined) sp.shadow = a.shadow
      const ra = Object.entries(a.rule_actions ?? {}).filter(([id]) => active.includes(id)).sort(([x], [y]) => compareStr(x, y))
      if (ra.length > 0) sp.rule_actions = Object.fromEntries(ra)
      if (k.kind === 'rpc') sp.rpc_program = k.program
      if (k.kind === 'dcerpc') sp.dcerpc_interface = k.uuid
      services.push(sp)
    }
  }

  // every other inventory service, so the table shows what could be protected
  for (const h of inventory.hosts) {
    for (const s of h.services) {
      if (s.state !== 'open' || viewed.has(serviceKey(h.ip, s.port, s.proto))) continue
      views.push({
        host: h.ip, port: s.port, proto: s.proto, service: s.service, protocol: serviceProtocol(s), product: s.product,
        version: s.version, rpc_program: s.rpc_program?.program, dcerpc_interface: s.dcerpc_interface?.uuid,
        in_inventory: true, recommended: recommend(s, rules), assigned: null, active: [], retired: [], shadow: false,
      })
    }
  }

  const order = (a: {ip?: string; host?: string; proto: string; port: number}, b: typeof a) =>
    compareIp(a.ip ?? a.host ?? '', b.ip ?? b.host ?? '') || compareStr(a.proto, b.proto) || a.port - b.port
  services.sort(order)
  views.sort(order)

  const policy: Policy = {services}
  if (file.default_action) policy.default_action = file.default_action
  const hosts = hostPolicies(inventory, services)
  if (hosts.length > 0) policy.hosts = hosts

  let retired = [...retiredOut.values()].sort(compareRetired)
  if (retired.length > MAX_RETIRED) {
    warnings.push(`retired.json: more than ${MAX_RETIRED} entries; the oldest were dropped`)
    retired = [...retired].sort((a, b) => compareStr(b.retired_at, a.retired_at)).slice(0, MAX_RETIRED).sort(compareRetired)
  }
  return {policy, retired: {version: RETIRED_VERSION, retired}, services: views, newlyRetired, unretired, warnings}
}

/** Defragmentation and TCP overlap policy per protected host, from its strongest OS hint. */
export function hostPolicies(inv: Inventory, services: readonly ServicePolicy[]): HostNetPolicy[] {
  const ips = [...new Set(services.map((s) => s.ip))].sort(compareIp)
  const out: HostNetPolicy[] = []
  for (const ip of ips) {
    const h = inv.hosts.find((x) => x.ip === ip)
    const hint = [...(h?.os_hints ?? [])].sort((a, b) => b.confidence - a.confidence).find((o) => OS_POLICIES[o.os] !== undefined)
    if (!hint) continue
    const p = OS_POLICIES[hint.os]
    out.push({ip, os: hint.os, defrag: p.defrag, tcp: p.tcp})
  }
  return out
}

/** policy.json text: fixed key order, so an unchanged policy is byte-identical. */
export function serializePolicy(p: Policy): string {
  const services = p.services.map((s) => {
    const o: Record<string, unknown> = {ip: s.ip, port: s.port, proto: s.proto}
    for (const k of ['protocol', 'rules', 'action', 'shadow', 'rule_actions', 'rpc_program', 'dcerpc_interface'] as const) {
      if (s[k] !== undefined) o[k] = s[k]
    }
    return o
  })
  const out: Record<string, unknown> = {}
  if (p.default_action) out.default_action = p.default_action
  out.services = services
  if (p.hosts) out.hosts = p.hosts.map((h) => ({ip: h.ip, ...(h.os ? {os: h.os} : {}), defrag: h.defrag, tcp: h.tcp}))
  return JSON.stringify(out, null, 2) + '\n'
}

export function serializeRetired(r: RetiredFile): string {
  const retired = r.retired.map((e) => ({
    host: e.host, port: e.port, proto: e.proto, rule_id: e.rule_id, cve: e.cve, cves: e.cves, product: e.product,
    version: e.version, retired_at: e.retired_at,
    evidence: {
      product: e.evidence.product, version_seen: e.evidence.version_seen, source: e.evidence.source,
      seen_at: e.evidence.seen_at, affected: e.evidence.affected, fixed: e.evidence.fixed,
    },
  }))
  return JSON.stringify({version: r.version, retired}, null, 2) + '\n'
}

/** Read retired.json entries written by `protect`; bad entries are skipped and counted. */
export function parseRetiredFile(text: string, problems: string[] = [], file = 'retired.json'): RetiredRecord[] {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    problems.push(`${file}: not JSON; starting a new one`)
    return []
  }
  const list = v && typeof v === 'object' && Array.isArray((v as {retired?: unknown}).retired) ? (v as {retired: unknown[]}).retired : undefined
  if (!list) {
    problems.push(`${file}: no retired list; starting a new one`)
    return []
  }
  const out: RetiredRecord[] = []
  let bad = 0
  for (const item of list.slice(0, MAX_RETIRED)) {
    const o = item as Partial<RetiredRecord> | null
    if (!o || typeof o.host !== 'string' || typeof o.port !== 'number' || (o.proto !== 'tcp' && o.proto !== 'udp') ||
      typeof o.rule_id !== 'string' || typeof o.retired_at !== 'string' || typeof o.evidence !== 'object' || o.evidence === null) {
      bad++
      continue
    }
    out.push({
      host: o.host, port: o.port, proto: o.proto, rule_id: o.rule_id,
      cve: typeof o.cve === 'string' ? o.cve : o.rule_id,
      cves: Array.isArray(o.cves) ? o.cves.filter((c): c is string => typeof c === 'string') : [],
      product: typeof o.product === 'string' ? o.product : '', version: typeof o.version === 'string' ? o.version : '',
      retired_at: o.retired_at, evidence: o.evidence,
    })
  }
  if (list.length > MAX_RETIRED) problems.push(`${file}: more than ${MAX_RETIRED} entries; the rest were ignored`)
  if (bad > 0) problems.push(`${file}: ${bad} malformed entr${bad === 1 ? 'y' : 'ies'} dropped`)
  return out
}
