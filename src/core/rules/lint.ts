/**
 * `rules lint`: every problem of a rule file as `file:line:col: message`.
 *
 * Schema errors (ajv against rules/schema/rule.schema.json) and YAML syntax errors come from the
 * shared project helper (src/core/project/yaml-schema.ts); the semantic checks below add: regexes
 * that RE2 rejects, unknown transforms, condition syntax and unknown selection names, fields the
 * protocol's analyzer does not emit, version-range syntax, id vs file name, duplicate ids, and
 * `stable` rules without both a malicious and a benign sample.
 */
import {readdirSync, readFileSync, statSync} from 'node:fs'
import path from 'node:path'
import type {FieldSpec} from '../analyzers/types.js'
import {formatDiagnostic, parseYamlWithSchema, type YamlDiagnostic} from '../project/yaml-schema.js'
import {compileRule, type CompiledRule, type Path} from './compile.js'
import type {RuleDoc, SampleDoc, StepDoc} from './types.js'
import {parseRange, parseVersion} from './versions.js'
import {ruleSchema} from './rule-schema.js'

/** Most rule files one lint/load walks (the rest are reported, not read). */
export const MAX_RULE_FILES = 10_000
/** Deepest directory nesting walked under a rules directory. */
export const MAX_RULE_DIR_DEPTH = 8

export type LintError = YamlDiagnostic

export const formatLintError = formatDiagnostic

export interface LintOptions {
  /**
   * Fields an analyzer emits, by protocol (from the analyzer registry). Omit to skip the field
   * check; return undefined for a protocol without an analyzer (an error).
   */
  fieldsFor?: (protocol: string) => readonly FieldSpec[] | undefined
  /** name shown in messages (default: the path as given) */
  displayName?: string
}

export interface LintResult {
  rule?: CompiledRule
  errors: LintError[]
}

function pointer(p: Path): string {
  return p.length === 0 ? '' : '/' + p.map((s) => String(s).replace(/~/g, '~0').replace(/\//g, '~1')).join('/')
}

/** Does `name` (exact, or `prefix.` family when `family`) exist in the analyzer's field list? */
export function fieldKnown(specs: readonly FieldSpec[], name: string): boolean {
  const family = name.endsWith('.*')
  const want = family ? name.slice(0, -1) : name
  for (const s of specs) {
    const lt = s.name.indexOf('<')
    if (lt >= 0) {
      const pre = s.name.slice(0, lt)
      if (family ? pre.startsWith(want) || want.startsWith(pre) : want.startsWith(pre) && want.length > pre.length) return true
    } else if (family ? s.name.startsWith(want) : s.name === want) return true
  }
  return false
}

function stepProblems(s: StepDoc, base: Path, out: {path: Path; message: string}[]): void {
  for (const k of ['toserver_hex', 'toclient_hex'] as const) {
    const v = s[k]
    if (v !== undefined && v.replace(/\s+/g, '').length % 2 !== 0) out.push({path: [...base, k], message: 'hex text has an odd number of digits'})
  }
  for (const k of ['toserver_base64', 'toclient_base64'] as const) {
    const v = s[k]
    if (v !== undefined && !/^[A-Za-z0-9+/=\s_-]*$/.test(v)) out.push({path: [...base, k], message: 'not base64 text'})
  }
}

function semanticProblems(doc: RuleDoc, file: string, opts: LintOptions): {path: Path; message: string; warning?: boolean}[] {
  const out: {path: Path; message: string; warning?: boolean}[] = []
  const base = path.basename(file).replace(/\.ya?ml$/i, '')
  if (base !== doc.id) out.push({path: ['id'], message: `id '${doc.id}' does not match the file name '${path.basename(file)}' (expected ${doc.id}.yaml)`})
  if (doc.status === 'stable' && (!(doc.samples?.malicious?.length) || !(doc.samples?.benign?.length))) {
    out.push({path: doc.samples ? ['samples'] : ['status'], message: 'a stable rule needs at least one malicious AND one benign sample'})
  }
  ;(doc.affects ?? []).forEach((a, i) => {
    ;(a.versions ?? []).forEach((r, j) => {
      const p = parseRange(r)
      if (typeof p === 'string') out.push({path: ['affects', i, 'versions', j], message: `version range '${r}': ${p}`})
    })
    ;(a.fixed ?? []).forEach((v, j) => {
      if (parseVersion(v) === undefined) out.push({path: ['affects', i, 'fixed', j], message: `'${v}' is not a version`})
    })
  })
  if (opts.fieldsFor) {
    const specs = opts.fieldsFor(doc.protocol)
    if (specs === undefined) out.push({path: ['protocol'], message: `no analyzer for protocol '${doc.protocol}'`})
    else {
      const check = (name: string, p: Path): void => {
        // the analyzer's field list is the truth: SMB units carry smb2.* fields, DCE/RPC units netlogon.*
        if (name !== 'matched' && !fieldKnown(specs, name)) {
          out.push({path: p, message: `unknown field '${name}' for protocol '${doc.protocol}'`})
        }
      }
      for (const [sel, s] of Object.entries(doc.detect ?? {})) {
        const ms = 'all' in s && Array.isArray(s.all) ? s.all.map((m, i) => ({m, p: ['detect', sel, 'all', i] as Path}))
          : 'any' in s && Array.isArray(s.any) ? s.any.map((m, i) => ({m, p: ['detect', sel, 'any', i] as Path}))
            : [{m: s as {field?: string; fields?: string[]}, p: ['detect', sel] as Path}]
        for (const {m, p} of ms) {
          if (m.field !== undefined) check(m.field, [...p, 'field'])
          m.fields?.forEach((f, i) => check(f, [...p, 'fields', i]))
        }
      }
      ;(doc.fix ?? []).forEach((f, i) => {
        for (const [k, v] of Object.entries(f)) {
          if (typeof v === 'string' && ['overwrite', 'rename', 'remove'].includes(k)) check(v, ['fix', i, k])
          else if (v !== null && typeof v === 'object' && typeof (v as {field?: unknown}).field === 'string') {
            check((v as {field: string}).field, ['fix', i, k, 'field'])
          }
        }
      })
    }
  }
  const samples: [string, SampleDoc[] | undefined][] = [['malicious', doc.samples?.malicious], ['benign', doc.samples?.benign]]
  for (const [kind, list] of samples) {
    ;(list ?? []).forEach((s, i) => {
      const p: Path = ['samples', kind, i]
      const dirs = Object.keys(s).filter((k) => k.startsWith('to'))
      if (s.steps !== undefined && dirs.length > 0) out.push({path: p, message: 'a sample has either `steps` or one direction key, not both'})
      if (s.steps === undefined && dirs.length !== 1) out.push({path: p, message: 'a sample needs `steps` or exactly one of toserver/toclient (or their _hex/_base64 forms)'})
      stepProblems(s, p, out)
      s.steps?.forEach((st, j) => stepProblems(st, [...p, 'steps', j], out))
    })
  }
  return out
}

/** Lint one rule's YAML text. Never throws. */
export function lintRuleText(text: string, file: string, opts: LintOptions = {}): LintResult {
  const name = opts.displayName ?? file
  const r = parseYamlWithSchema<RuleDoc>(text, name, ruleSchema)
  const errors = [...r.diagnostics]
  if (!r.ok || r.value === undefined) return {errors}
  const locate = r.locate ?? (() => ({line: 1, col: 1}))
  const diag = (p: Path, message: string, warning = false): LintError => ({
    file: name, ...locate(pointer(p)), message, pointer: pointer(p), severity: warning ? 'warning' : 'error', code: 'rule',
  })
  const {rule, problems} = compileRule(r.value, file)
  for (const pr of problems) errors.push(diag(pr.path, pr.message))
  for (const pr of semanticProblems(r.value, file, opts)) errors.push(diag(pr.path, pr.message, pr.warning))
  errors.sort((a, b) => a.line - b.line || a.col - b.col)
  const failed = errors.some((e) => e.severity === 'error')
  return {rule: failed ? undefined : rule, errors}
}

/** Lint one rule file. Never throws. */
export function lintRuleFile(file: string, opts: LintOptions = {}): LintResult {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    return {errors: [{file: opts.displayName ?? file, line: 0, col: 0, message: `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, pointer: '', severity: 'error', code: 'io'}]}
  }
  return lintRuleText(text, file, opts)
}

/** Folders under a rules directory that hold other data (the JSON Schema, fingerprint probes). */
export const NON_RULE_DIRS: ReadonlySet<string> = new Set(['schema', 'probes'])

/** Rule files under `paths` (files as given; directories walked for *.yaml/*.yml, skipping NON_RULE_DIRS). */
export function findRuleFiles(paths: readonly string[], errors: LintError[] = []): string[] {
  const out: string[] = []
  const walk = (p: string, depth: number): void => {
    if (out.length >= MAX_RULE_FILES) return
    let st
    try {
      st = statSync(p)
    } catch (e) {
      errors.push({file: p, line: 0, col: 0, message: `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, pointer: '', severity: 'error', code: 'io'})
      return
    }
    if (st.isFile()) {
      out.push(p)
      return
    }
    if (!st.isDirectory() || depth > MAX_RULE_DIR_DEPTH) return
    for (const ent of readdirSync(p, {withFileTypes: true}).sort((a, b) => a.name.localeCompare(b.name))) {
      if (ent.name.startsWith('.') || (ent.isDirectory() && NON_RULE_DIRS.has(ent.name))) continue
      const child = path.join(p, ent.name)
      if (ent.isDirectory()) walk(child, depth + 1)
      else if (/\.ya?ml$/i.test(ent.name)) walk(child, depth + 1)
    }
  }
  for (const p of paths) walk(p, 0)
  if (out.length >= MAX_RULE_FILES) {
    errors.push({file: paths[0] ?? '', line: 0, col: 0, message: `more than ${MAX_RULE_FILES} rule files: the rest were not read`, pointer: '', severity: 'error', code: 'limit'})
  }
  return out
}

/** Lint many files/directories; adds duplicate-id errors. */
export function lintRules(paths: readonly string[], opts: LintOptions = {}): {rules: CompiledRule[]; errors: LintError[]} {
  const errors: LintError[] = []
  const rules: CompiledRule[] = []
  const seen = new Map<string, string>()
  for (const f of findRuleFiles(paths, errors)) {
    const r = lintRuleFile(f, {...opts, displayName: undefined})
    errors.push(...r.errors)
    if (!r.rule) continue
    const prev = seen.get(r.rule.id)
    if (prev !== undefined) {
      errors.push({file: f, line: 1, col: 1, message: `duplicate rule id '${r.rule.id}' (also in ${prev})`, pointer: '/id', severity: 'error', code: 'rule'})
      continue
    }
    seen.set(r.rule.id, f)
    rules.push(r.rule)
  }
  return {rules, errors}
}
