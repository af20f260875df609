/**
 * `patchpoint protect` as a function: read policy.yaml, the inventory, the rules and the previous
 * compiled state; apply the requested edits; compile; write what changed (atomically, under the
 * project lock `protect`); report `changed` and the difference.
 *
 * Idempotent: files are rewritten only when their bytes change, and retirement dates are kept
 * from the previous run, so the same run twice changes nothing the second time.
 */
import {mkdir, readFile, stat} from 'node:fs/promises'
import path from 'node:path'
import {UserError} from '../errors.js'
import {ruleDirsFor} from '../rules/fields.js'
import {loadPolicy, MAX_POLICY_BYTES, policyPath, serviceKey, type Policy, type ServicePolicy} from '../gateway/policy.js'
import {loadInventory, type Inventory} from '../inventory/inventory.js'
import {atomicWriteFile} from '../project/atomic.js'
import type {ProjectLocation} from '../project/find.js'
import {withLock} from '../project/lock.js'
import {formatDiagnostic, MAX_YAML_BYTES} from '../project/yaml-schema.js'
import type {CompiledRule} from '../rules/compile.js'
import {loadRules} from '../rules/engine.js'
import {formatLintError} from '../rules/lint.js'
import type {Action} from '../rules/types.js'
import {
  compileProtection, parseRetiredFile, serializePolicy, serializeRetired, resolveKey,
  type RetiredRecord, type ServiceView,
} from './compile.js'
import {
  canonicalAssignment, formatAssignmentKey, parseAssignmentKey, parseProtectFile, PROTECT_FILE_NAME, RECOMMENDED, renderProtectFile,
  type Assignment, type AssignmentKey, type ProtectFile,
} from './policy-file.js'
import {recommend} from './recommend.js'

export const PROTECT_LOCK = 'protect'
export const RETIRED_FILE_NAME = 'retired.json'
/** Largest retired.json read. */
export const MAX_RETIRED_BYTES = 16 * 1024 * 1024
/** Most targets (HOST:PORT arguments) in one command. */
export const MAX_TARGETS = 4096

export type ProtectOp =
  | {op: 'show'}
  | {op: 'all'; action?: Action; shadow?: boolean}
  | {op: 'add'; targets: string[]; rules?: string[]; action?: Action; shadow?: boolean}
  | {op: 'remove'; targets: string[]; rules?: string[]}

export interface ProtectOptions {
  project: ProjectLocation
  op: ProtectOp
  /** set policy.yaml's default_action */
  defaultAction?: Action
  dryRun?: boolean
  /** current time (ISO), for tests */
  now?: string
  /** already loaded rules (tests); default: the package's and the project's */
  rules?: readonly CompiledRule[]
}

export interface ServiceChange {
  service: string
  change: 'added' | 'removed' | 'changed'
  rules_added?: string[]
  rules_removed?: string[]
  action?: {from: Action | null; to: Action | null}
  shadow?: {from: boolean; to: boolean}
}

export interface ProtectDiff {
  /** policy.yaml entries added, removed or edited */
  assignments: {added: string[]; removed: string[]; changed: string[]}
  default_action?: {from: Action | null; to: Action | null}
  /** compiled policy (what `run` enforces) */
  services: ServiceChange[]
  retired: RetiredRecord[]
  unretired: RetiredRecord[]
}

export interface ProtectResult {
  changed: boolean
  dry_run: boolean
  files: {policy_yaml: string; policy_json: string; retired_json: string}
  /** which files were (or, with --dry-run, would be) rewritten */
  written: string[]
  diff: ProtectDiff
  default_action: Action | null
  services: ServiceView[]
  retired: RetiredRecord[]
  warnings: string[]
}

export function protectFilePath(project: ProjectLocation): string {
  return path.join(project.dir, PROTECT_FILE_NAME)
}

async function readText(file: string, max: number): Promise<string | undefined> {
  try {
    const st = await stat(file)
    if (st.size > max) throw new UserError(`${file}: ${st.size} bytes, more than the ${max} allowed`, {code: 'FILE_TOO_LARGE'})
    return await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

export function loadProjectRules(project: ProjectLocation): CompiledRule[] {
  const loaded = loadRules(ruleDirsFor(project))
  if (loaded.errors.length > 0) {
    throw new UserError(formatLintError(loaded.errors[0]), {
      code: 'RULE_INVALID',
      details: loaded.errors.slice(1, 5).map(formatLintError),
      suggestion: 'run `patchpoint rules lint` for every problem',
    })
  }
  return loaded.rules
}

export async function runProtect(opts: ProtectOptions): Promise<ProtectResult> {
  const {project} = opts
  await mkdir(project.stateDir, {recursive: true})
  const rules = opts.rules ?? loadProjectRules(project)
  const body = () => protectLocked(opts, rules)
  return opts.dryRun ? body() : withLock(project.dir, PROTECT_LOCK, body)
}

async function protectLocked(opts: ProtectOptions, rules: readonly CompiledRule[]): Promise<ProtectResult> {
  const {project} = opts
  const now = opts.now ?? new Date().toISOString()
  const yamlFile = protectFilePath(project)
  const jsonFile = policyPath(project.stateDir)
  const retiredFile = path.join(project.stateDir, RETIRED_FILE_NAME)
  const known = new Set(rules.map((r) => r.id))

  const yamlText = await readText(yamlFile, MAX_YAML_BYTES)
  let current: ProtectFile = {services: {}}
  if (yamlText !== undefined) {
    const rel = path.relative(process.cwd(), yamlFile)
    const parsed = parseProtectFile(yamlText, rel === '' || rel.startsWith('..') ? yamlFile : rel, known)
    if (!parsed.ok || !parsed.value) {
      const errs = parsed.diagnostics.filter((d) => d.severity === 'error')
      throw new UserError(formatDiagnostic(errs[0]), {
        code: 'PROTECT_POLICY_INVALID',
        details: errs.slice(1, 10).map(formatDiagnostic),
        suggestion: errs[0].hint ?? `fix ${PROTECT_FILE_NAME} (see \`patchpoint protect --help\`)`,
      })
    }
    current = parsed.value
  }
  const inventory = await loadInventory(project.stateDir)

  const next = applyOp(current, opts.op, inventory, rules, known)
  if (opts.defaultAction) next.default_action = opts.defaultAction

  const oldJson = await readText(jsonFile, MAX_POLICY_BYTES)
  let previousPolicy: Policy | undefined
  const warnings: string[] = []
  if (oldJson !== undefined) {
    try {
      previousPolicy = loadPolicy(jsonFile)
    } catch (err) {
      warnings.push(`${jsonFile}: ${(err as Error).message}; it will be replaced`)
    }
  }
  const oldRetired = await readText(retiredFile, MAX_RETIRED_BYTES)
  const previousRetired = oldRetired === undefined ? [] : parseRetiredFile(oldRetired, warnings, retiredFile)

  const result = compileProtection({file: next, inventory, rules, previousPolicy, previousRetired, now})
  warnings.push(...result.warnings)

  // a project that never ran protect (no policy.yaml) and asks only to see: nothing is written,
  // so a hand-written policy.json stays as it is
  const manages = yamlText !== undefined || opts.op.op !== 'show' || opts.defaultAction !== undefined
  const newYaml = manages ? renderProtectFile(yamlText, current, next) : yamlText
  const newJson = manages ? serializePolicy(result.policy) : oldJson
  const newRetired = manages ? serializeRetired(result.retired) : oldRetired
  const written: string[] = []
  if (newYaml !== undefined && newYaml !== yamlText) written.push(yamlFile)
  if (newJson !== undefined && newJson !== oldJson) written.push(jsonFile)
  if (newRetired !== undefined && newRetired !== oldRetired && !(oldRetired === undefined && result.retired.retired.length === 0)) written.push(retiredFile)

  if (!opts.dryRun) {
    // retired.json first, the compiled policy next, policy.yaml last: a crash in between is
    // repaired by the next run, which recompiles from policy.yaml
    if (written.includes(retiredFile)) await atomicWriteFile(retiredFile, newRetired as string)
    if (written.includes(jsonFile)) await atomicWriteFile(jsonFile, newJson as string)
    if (written.includes(yamlFile)) await atomicWriteFile(yamlFile, newYaml as string)
  }

  const diff: ProtectDiff = {
    assignments: diffAssignments(current, next),
    services: manages ? diffPolicies(previousPolicy, result.policy) : [],
    retired: manages ? result.newlyRetired : [],
    unretired: manages ? result.unretired : [],
  }
  if ((current.default_action ?? null) !== (next.default_action ?? null)) {
    diff.default_action = {from: current.default_action ?? null, to: next.default_action ?? null}
  }
  return {
    changed: written.length > 0,
    dry_run: opts.dryRun === true,
    files: {policy_yaml: yamlFile, policy_json: jsonFile, retired_json: retiredFile},
    written,
    diff,
    default_action: next.default_action ?? null,
    services: result.services,
    retired: result.retired.retired,
    warnings,
  }
}

/** The key in `file` naming the same service as `k` (whatever its spelling), else the canonical text. */
function keyIn(file: ProtectFile, k: AssignmentKey): string {
  const canon = formatAssignmentKey(k)
  for (const text of Object.keys(file.services)) {
    const p = parseAssignmentKey(text)
    if (p && formatAssignmentKey(p) === canon) return text
  }
  return canon
}

/** A port of an RPC program or DCE/RPC interface is assigned by program: it follows the port. */
function assignmentKeyFor(target: AssignmentKey, inv: Inventory): AssignmentKey {
  if (target.kind !== 'port') return target
  const s = inv.hosts.find((h) => h.ip === target.host)?.services.find((x) => x.port === target.port && x.proto === target.proto)
  if (s?.rpc_program && target.port !== 111) return {kind: 'rpc', host: target.host, program: s.rpc_program.program}
  if (s?.dcerpc_interface && target.port !== 135) return {kind: 'dcerpc', host: target.host, uuid: s.dcerpc_interface.uuid.toLowerCase()}
  return target
}

/**
 * Rule ids and targets from the words of `protect` (HOST:PORT arguments) and of --rule. oclif
 * hands a repeatable flag every word after it, so in `protect --rule PP-2021-41773 192.0.2.10:80`
 * the target arrives as a rule id. A rule id never holds ':' (rule.schema.json:
 * ^[A-Z][A-Z0-9]*-[A-Za-z0-9._-]+$) and every target does (HOST:PORT, [V6]:PORT, HOST/rpc:PROGRAM,
 * HOST/dcerpc:UUID), so a --rule word with ':' is a target. `rules` is undefined when no id is
 * left (the recommended rules).
 */
export function splitTargetWords(args: readonly string[], ruleWords: readonly string[] = []): {targets: string[]; rules?: string[]} {
  const rules = ruleWords.filter((w) => !w.includes(':'))
  return {targets: [...args, ...ruleWords.filter((w) => w.includes(':'))], rules: rules.length > 0 ? rules : undefined}
}

function parseTarget(t: string): AssignmentKey {
  const k = parseAssignmentKey(t)
  if (!k) throw new UserError(`'${t}' is not HOST:PORT[/tcp|udp] (or HOST/rpc:PROGRAM, HOST/dcerpc:UUID)`, {code: 'TARGET_INVALID', suggestion: 'e.g. 192.0.2.10:80 or 192.0.2.10:53/udp'})
  return k
}

function checkRules(ids: readonly string[], known: ReadonlySet<string>): void {
  for (const id of ids) {
    if (!known.has(id)) throw new UserError(`unknown rule '${id}'`, {code: 'RULE_UNKNOWN', suggestion: 'see `patchpoint rules list`'})
  }
}

/** policy.yaml after the requested edit (a new object; `file` is not changed). */
export function applyOp(file: ProtectFile, op: ProtectOp, inv: Inventory, rules: readonly CompiledRule[], known: ReadonlySet<string>): ProtectFile {
  const next: ProtectFile = {...file, services: Object.fromEntries(Object.entries(file.services).map(([k, a]) => [k, canonicalAssignment(a)]))}
  if (op.op === 'show') return next
  if (op.op === 'all') {
    for (const h of inv.hosts) {
      for (const s of h.services) {
        if (s.state !== 'open' || recommend(s, rules).length === 0) continue
        const k = assignmentKeyFor({kind: 'port', host: h.ip, port: s.port, proto: s.proto}, inv)
        const key = keyIn(next, k)
        const a = next.services[key] ?? {rules: []}
        next.services[key] = canonicalAssignment({
          ...a, rules: a.rules.includes(RECOMMENDED) ? a.rules : [RECOMMENDED, ...a.rules],
          action: op.action ?? a.action, shadow: op.shadow ?? a.shadow,
        })
      }
    }
    return next
  }
  if (op.targets.length === 0) throw new UserError('give HOST:PORT (or --all)', {code: 'TARGET_MISSING'})
  if (op.targets.length > MAX_TARGETS) throw new UserError(`at most ${MAX_TARGETS} targets at once`, {code: 'TARGET_INVALID'})
  if (op.rules) checkRules(op.rules, known)
  for (const t of op.targets) {
    const target = assignmentKeyFor(parseTarget(t), inv)
    const key = keyIn(next, target)
    if (op.op === 'remove') {
      const a = next.services[key]
      if (!a) continue // nothing to remove: idempotent
      if (!op.rules || op.rules.length === 0) {
        delete next.services[key]
        continue
      }
      // removing one rule of `recommended`: the list becomes explicit
      let ids = a.rules
      if (ids.includes(RECOMMENDED)) {
        const recs = new Set<string>()
        for (const c of resolveKey(inv, target)) if (c.svc) for (const r of recommend(c.svc, rules)) recs.add(r.rule_id)
        ids = [...new Set([...ids.filter((x) => x !== RECOMMENDED), ...[...recs].sort()])]
      }
      const drop = new Set(op.rules)
      const left = ids.filter((x) => !drop.has(x))
      if (left.length === 0) {
        delete next.services[key]
        continue
      }
      const ra = Object.fromEntries(Object.entries(a.rule_actions ?? {}).filter(([id]) => !drop.has(id)))
      next.services[key] = canonicalAssignment({...a, rules: left, rule_actions: ra})
      continue
    }
    const inInventory = resolveKey(inv, target).some((c) => c.svc !== undefined)
    if (!inInventory && !op.rules?.length) {
      throw new UserError(`${formatAssignmentKey(target)} is not in the inventory, so nothing can be recommended for it`, {
        code: 'TARGET_UNKNOWN',
        suggestion: 'run `patchpoint fingerprint` first, or name the rules with --rule ID',
      })
    }
    const a: Assignment = next.services[key] ?? {rules: []}
    const ids = op.rules?.length ? [...a.rules, ...op.rules] : a.rules.includes(RECOMMENDED) ? a.rules : [RECOMMENDED, ...a.rules]
    const upd: Assignment = {...a, rules: ids}
    if (op.action) {
      // with --rule, --action is a per-rule override; without, the service's action
      if (op.rules?.length) upd.rule_actions = {...a.rule_actions, ...Object.fromEntries(op.rules.map((id) => [id, op.action as Action]))}
      else upd.action = op.action
    }
    if (op.shadow !== undefined) upd.shadow = op.shadow
    next.services[key] = canonicalAssignment(upd)
  }
  return next
}

function diffAssignments(a: ProtectFile, b: ProtectFile): ProtectDiff['assignments'] {
  const out: ProtectDiff['assignments'] = {added: [], removed: [], changed: []}
  for (const k of Object.keys(b.services)) {
    if (!(k in a.services)) out.added.push(k)
    else if (JSON.stringify(canonicalAssignment(a.services[k])) !== JSON.stringify(canonicalAssignment(b.services[k]))) out.changed.push(k)
  }
  for (const k of Object.keys(a.services)) if (!(k in b.services)) out.removed.push(k)
  return out
}

function label(s: ServicePolicy): string {
  return formatAssignmentKey({kind: 'port', host: s.ip, port: s.port, proto: s.proto})
}

/** What `run` will do differently: services and rules added or removed, actions changed. */
export function diffPolicies(before: Policy | undefined, after: Policy): ServiceChange[] {
  const old = new Map((before?.services ?? []).map((s) => [serviceKey(s.ip, s.port, s.proto), s]))
  const out: ServiceChange[] = []
  const seen = new Set<string>()
  for (const s of after.services) {
    const k = serviceKey(s.ip, s.port, s.proto)
    seen.add(k)
    const o = old.get(k)
    if (!o) {
      out.push({service: label(s), change: 'added', rules_added: s.rules ?? []})
      continue
    }
    const c: ServiceChange = {service: label(s), change: 'changed'}
    const or = new Set(o.rules ?? [])
    const nr = new Set(s.rules ?? [])
    const added = [...nr].filter((x) => !or.has(x))
    const removed = [...or].filter((x) => !nr.has(x))
    if (added.length) c.rules_added = added
    if (removed.length) c.rules_removed = removed
    if ((o.action ?? null) !== (s.action ?? null)) c.action = {from: o.action ?? null, to: s.action ?? null}
    if ((o.shadow === true) !== (s.shadow === true)) c.shadow = {from: o.shadow === true, to: s.shadow === true}
    if (c.rules_added || c.rules_removed || c.action || c.shadow || JSON.stringify(o.rule_actions ?? {}) !== JSON.stringify(s.rule_actions ?? {})) out.push(c)
  }
  for (const [k, o] of old) if (!seen.has(k)) out.push({service: label(o), change: 'removed', rules_removed: o.rules ?? []})
  return out
}
