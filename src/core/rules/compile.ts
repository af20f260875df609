/**
 * Rule document (parsed YAML, schema-checked) -> CompiledRule: transforms resolved, regexes
 * compiled with re2js (RE2 semantics: linear time, no backtracking), the condition parsed, the
 * prefilter literals extracted. Problems are returned with the path of the offending node so lint
 * can point at file:line:col.
 */
import {RE2JS} from 're2js'
import {fixedSuffixLength, mayMatch, requiredLiterals} from './regex-literals.js'
import type {Direction, FieldValue, Fields} from '../analyzers/types.js'
import {foldLatin1} from './aho.js'
import {ConditionError, parseCondition} from './condition.js'
import {toNum, satisfies, type Bound, type BoundOp} from './numeric.js'
import {transforms, applyTransforms, type Transform} from './transforms.js'
import {isSqli} from './sqli.js'
import type {
  Action, Bounds, CondNode, FixDoc, MatcherDoc, MatchedValue, RuleDoc, RuleStatus, SelectionDoc, Severity,
} from './types.js'

/** Most values of one matcher's fields looked at per PDU (the rest are skipped, with an anomaly). */
export const MAX_VALUES_PER_MATCHER = 1024
/** Longest regex source accepted. */
export const MAX_REGEX_LENGTH = 4096

export type Path = (string | number)[]

export interface CompileProblem {
  path: Path
  message: string
}

type StrOp = 'equals' | 'contains' | 'startswith' | 'endswith'
export type MatcherOp = StrOp | 'regex' | 'length' | 'num' | 'exists' | 'sqli' | 'none'

export interface CompiledMatcher {
  /** exact field names */
  fields: string[]
  /** prefixes from `name.*` patterns (with the trailing dot) */
  prefixes: string[]
  transformNames: string[]
  transforms: Transform[]
  nocase: boolean
  op: MatcherOp
  strs: string[]
  res: RE2JS[]
  /** per regex: what every match contains (see requiredLiterals; checked before running it) */
  musts: string[][][]
  /**
   * per regex `P$` whose matches all have one length L (see fixedSuffixLength): L and `^(?:P)$`,
   * run on the value's last L characters instead; 0 and null for every other regex
   */
  tailLens: number[]
  tails: (RE2JS | null)[]
  bounds: Bound[]
  count?: Bound[]
  exists?: boolean
  /** `sqli: true` holds on values the SQL injection detector flags (`false`: on values it does not) */
  sqli?: boolean
  /**
   * nocase string operators: per string, an ASCII character other than a letter that it contains
   * (no character lowercases to one, so a value without any of them cannot match and is not
   * lowercased); undefined when some string has none
   */
  needChars?: string[]
}

export interface CompiledSelection {
  name: string
  mode: 'all' | 'any'
  matchers: CompiledMatcher[]
}

export type CompiledFix =
  | {op: 'overwrite'; field: string; with?: string}
  | {op: 'rename'; field: string}
  | {op: 'defuse'; field: string; chars: string; with: string}
  | {op: 'truncate'; field: string; length: number}
  | {op: 'remove'; field: string}
  | {op: 'replace_unit'; data: Uint8Array}
  | {op: 'reply'; data: Uint8Array}

/** exact field names and `prefix.` families */
export interface FieldSet {
  fields: string[]
  prefixes: string[]
}

export interface CompiledRule {
  id: string
  rev: number
  status: RuleStatus
  title: string
  severity: Severity
  cves: string[]
  protocol: string
  direction: Direction
  /** unit kinds judged; empty = every kind */
  units: string[]
  selections: CompiledSelection[]
  condition: CondNode
  fixes: CompiledFix[]
  action: Action
  /** prefilter: the condition needs one of these (case-folded) literals; undefined = always run */
  anchors?: string[]
  /** fields the anchor literals must be found in (exact names and `prefix.` families) */
  anchorFields?: {fields: string[]; prefixes: string[]}
  /**
   * prefilter: the condition can only hold on a PDU that has, for each entry, one of its fields
   * (or a field of one of its `prefix.` families); undefined = no such need (see presenceOf)
   */
  needs?: FieldSet[]
  doc: RuleDoc
  file?: string
}

/** YAML text -> bytes: latin1 when every char fits, else UTF-8 (a rule author writing 'é' means its UTF-8 bytes). */
export function textBytes(s: string): Uint8Array {
  const enc = /^[\x00-\xff]*$/.test(s) ? 'latin1' : 'utf8'
  return new Uint8Array(Buffer.from(s, enc))
}

function toLatin1(s: string): string {
  return /^[\x00-\xff]*$/.test(s) ? s : Buffer.from(s, 'utf8').toString('latin1')
}

const BOUND_OPS: BoundOp[] = ['gt', 'gte', 'lt', 'lte', 'eq']
const STR_OPS: StrOp[] = ['equals', 'contains', 'startswith', 'endswith']

function compileBounds(b: Bounds, path: Path, problems: CompileProblem[]): Bound[] {
  const out: Bound[] = []
  for (const op of BOUND_OPS) {
    const raw = b[op]
    if (raw === undefined) continue
    if (typeof raw === 'number' && Number.isInteger(raw) && !Number.isSafeInteger(raw)) {
      problems.push({path: [...path, op], message: `${raw} is beyond 2^53 and lost precision in YAML: write it as a quoted digit string`})
    }
    const val = toNum(raw)
    if (val === undefined) problems.push({path: [...path, op], message: `'${String(raw)}' is not a number`})
    else out.push({op, val})
  }
  return out
}

function compileMatcher(m: MatcherDoc, path: Path, problems: CompileProblem[]): CompiledMatcher {
  const names = m.fields ?? (m.field !== undefined ? [m.field] : [])
  if (names.length === 0) problems.push({path, message: 'a matcher needs `field` or `fields`'})
  const fields: string[] = []
  const prefixes: string[] = []
  for (const n of names) {
    if (n.endsWith('.*')) prefixes.push(n.slice(0, -1))
    else if (n.includes('*')) problems.push({path: [...path, m.fields ? 'fields' : 'field'], message: `'${n}': only a trailing '.*' wildcard is allowed`})
    else fields.push(n)
  }
  const transformNames = m.transform ?? []
  const tfs: Transform[] = []
  transformNames.forEach((t, i) => {
    const fn = transforms.get(t)
    if (fn === undefined) problems.push({path: [...path, 'transform', i], message: `unknown transform '${t}' (known: ${[...transforms.keys()].join(', ')})`})
    else tfs.push(fn)
  })
  const nocase = m.nocase === true
  const cm: CompiledMatcher = {fields, prefixes, transformNames, transforms: tfs, nocase, op: 'none', strs: [], res: [], musts: [], tailLens: [], tails: [], bounds: []}
  const ops: string[] = []
  for (const op of STR_OPS) {
    const v = m[op]
    if (v === undefined) continue
    ops.push(op)
    cm.op = op
    cm.strs = (Array.isArray(v) ? v : [v]).map((s) => {
      const l = toLatin1(String(s))
      return nocase ? l.toLowerCase() : l
    })
  }
  if (nocase && cm.strs.length > 0) {
    const need = cm.strs.map((x) => [...x].find((c) => c < '\x80' && !/[a-z]/i.test(c)))
    if (need.every((c) => c !== undefined)) cm.needChars = need as string[]
  }
  if (m.regex !== undefined) {
    ops.push('regex')
    cm.op = 'regex'
    const list = Array.isArray(m.regex) ? m.regex : [m.regex]
    list.forEach((src, i) => {
      const p = Array.isArray(m.regex) ? [...path, 'regex', i] : [...path, 'regex']
      if (src.length > MAX_REGEX_LENGTH) {
        problems.push({path: p, message: `regex longer than ${MAX_REGEX_LENGTH} chars`})
        return
      }
      try {
        const flags = (nocase ? RE2JS.CASE_INSENSITIVE : 0) | RE2JS.DOTALL
        cm.res.push(RE2JS.compile(src, flags))
        cm.musts.push(requiredLiterals(src, nocase))
        const tail = tailRegex(src, flags)
        cm.tailLens.push(tail?.length ?? 0)
        cm.tails.push(tail?.re ?? null)
      } catch (e) {
        problems.push({path: p, message: `regex does not compile under RE2: ${(e as Error).message}`})
      }
    })
  }
  if (m.length !== undefined) {
    ops.push('length')
    cm.op = 'length'
    cm.bounds = compileBounds(m.length, [...path, 'length'], problems)
  }
  const numBounds = BOUND_OPS.filter((op) => m[op] !== undefined)
  if (numBounds.length > 0) {
    ops.push('numeric')
    cm.op = 'num'
    cm.bounds = compileBounds(m, path, problems)
  }
  if (m.exists !== undefined) {
    ops.push('exists')
    cm.op = 'exists'
    cm.exists = m.exists
  }
  const sqli = m.sqli
  if (sqli !== undefined) {
    ops.push('sqli')
    cm.op = 'sqli'
    cm.sqli = sqli
  }
  if (m.count !== undefined) cm.count = compileBounds(m.count, [...path, 'count'], problems)
  if (ops.length > 1) problems.push({path, message: `a matcher takes ONE operator, found: ${ops.join(', ')}`})
  if (ops.length === 0 && m.count === undefined) problems.push({path, message: 'a matcher needs an operator (equals, contains, startswith, endswith, regex, length, gt/gte/lt/lte/eq, count, exists, sqli)'})
  if (cm.op === 'exists' && cm.count !== undefined) problems.push({path, message: '`exists` cannot be combined with `count`'})
  return cm
}

/** the anchored form of a fixed-length `P$` regex (see CompiledMatcher.tails), if it has one */
function tailRegex(src: string, flags: number): {length: number; re: RE2JS} | undefined {
  const length = fixedSuffixLength(src)
  if (length === undefined) return undefined
  try {
    return {length, re: RE2JS.compile(`^(?:${src.slice(0, -1)})$`, flags)}
  } catch {
    return undefined
  }
}

function compileSelection(name: string, s: SelectionDoc, path: Path, problems: CompileProblem[]): CompiledSelection {
  if (s !== null && typeof s === 'object' && ('all' in s || 'any' in s) && Object.keys(s).length !== 1) {
    problems.push({path, message: 'a selection is either one matcher, or `all:` / `any:` alone'})
  }
  if (s !== null && typeof s === 'object' && 'all' in s && Array.isArray(s.all)) {
    return {name, mode: 'all', matchers: s.all.map((m, i) => compileMatcher(m, [...path, 'all', i], problems))}
  }
  if (s !== null && typeof s === 'object' && 'any' in s && Array.isArray(s.any)) {
    return {name, mode: 'any', matchers: s.any.map((m, i) => compileMatcher(m, [...path, 'any', i], problems))}
  }
  return {name, mode: 'all', matchers: [compileMatcher(s as MatcherDoc, path, problems)]}
}

const FIX_OPS = ['overwrite', 'rename', 'defuse', 'truncate', 'remove', 'replace_unit', 'reply']

function compileFix(f: FixDoc, path: Path, problems: CompileProblem[]): CompiledFix | undefined {
  const ops = Object.keys(f).filter((k) => FIX_OPS.includes(k))
  if (ops.length !== 1) {
    problems.push({path, message: `a fix item takes exactly one of ${FIX_OPS.join(', ')}${ops.length > 1 ? ` (found ${ops.join(', ')})` : ''}`})
    return undefined
  }
  if ('with' in f && !('overwrite' in f)) problems.push({path: [...path, 'with'], message: '`with` belongs beside `overwrite`'})
  if ('overwrite' in f) {
    if (f.with !== undefined && f.with.length !== 1) problems.push({path: [...path, 'with'], message: '`with` must be one character'})
    return {op: 'overwrite', field: f.overwrite, with: f.with}
  }
  if ('rename' in f) return {op: 'rename', field: f.rename}
  if ('defuse' in f) {
    const w = f.defuse.with ?? '_'
    if (w.length !== 1) problems.push({path: [...path, 'defuse', 'with'], message: '`with` must be one character'})
    return {op: 'defuse', field: f.defuse.field, chars: f.defuse.chars, with: w}
  }
  if ('truncate' in f) return {op: 'truncate', field: f.truncate.field, length: f.truncate.length}
  if ('remove' in f) return {op: 'remove', field: f.remove}
  if ('replace_unit' in f) return {op: 'replace_unit', data: textBytes(f.replace_unit)}
  if ('reply' in f) return {op: 'reply', data: textBytes(f.reply)}
  problems.push({path, message: 'unknown fix'})
  return undefined
}

// ---- prefilter literal extraction ----

const LITERAL_OPS = new Set<MatcherOp>(['equals', 'contains', 'startswith', 'endswith'])

function matcherAnchor(m: CompiledMatcher): string[] | undefined {
  if (!LITERAL_OPS.has(m.op) || m.count !== undefined) return undefined
  if (!m.transformNames.every((t) => t === 'lowercase')) return undefined
  if (m.strs.length === 0 || m.strs.some((s) => s.length === 0)) return undefined
  return m.strs.map(foldLatin1)
}

function better(a: string[] | undefined, b: string[] | undefined): string[] | undefined {
  if (a === undefined) return b
  if (b === undefined) return a
  const ma = Math.min(...a.map((s) => s.length))
  const mb = Math.min(...b.map((s) => s.length))
  if (ma !== mb) return ma > mb ? a : b
  return a.length <= b.length ? a : b
}

function union(list: (string[] | undefined)[]): string[] | undefined {
  if (list.length === 0 || list.some((x) => x === undefined)) return undefined
  return [...new Set(list.flat() as string[])]
}

function selectionAnchor(s: CompiledSelection): string[] | undefined {
  const a = s.matchers.map(matcherAnchor)
  return s.mode === 'all' ? a.reduce(better, undefined) : union(a)
}

function condAnchor(n: CondNode, sels: readonly CompiledSelection[]): string[] | undefined {
  switch (n.t) {
    case 'sel':
      return selectionAnchor(sels[n.i])
    case 'not':
      return undefined
    case 'and':
      return n.a.map((c) => condAnchor(c, sels)).reduce(better, undefined)
    case 'or':
      return union(n.a.map((c) => condAnchor(c, sels)))
  }
}

function anchorFieldsOf(sels: readonly CompiledSelection[]): {fields: string[]; prefixes: string[]} {
  const fields = new Set<string>()
  const prefixes = new Set<string>()
  for (const s of sels) {
    for (const m of s.matchers) {
      if (matcherAnchor(m) === undefined) continue
      m.fields.forEach((f) => fields.add(f))
      m.prefixes.forEach((p) => prefixes.add(p))
    }
  }
  return {fields: [...fields], prefixes: [...prefixes]}
}

// ---- prefilter presence needs ----
// A matcher sees no value when none of its fields is in the PDU: it then holds only if a count
// of 0 satisfies it, or as `exists: false`. Otherwise the PDU must have one of its fields. The
// needs of a condition are a list of such sets, every one of which the PDU must meet (an AND
// lists its parts' sets; an OR needs one field of any branch: the union, or nothing when some
// branch needs nothing; NOT needs nothing).

function matcherNeeds(m: CompiledMatcher): FieldSet[] {
  if (m.count !== undefined ? satisfies(0, m.count) : m.op === 'exists' && m.exists === false) return []
  return [{fields: m.fields, prefixes: m.prefixes}]
}

function anyOf(list: FieldSet[][]): FieldSet[] {
  if (list.length === 0 || list.some((sets) => sets.length === 0)) return []
  const fields = new Set<string>()
  const prefixes = new Set<string>()
  for (const sets of list) {
    for (const set of sets) {
      set.fields.forEach((f) => fields.add(f))
      set.prefixes.forEach((p) => prefixes.add(p))
    }
  }
  return [{fields: [...fields], prefixes: [...prefixes]}]
}

function condNeeds(n: CondNode, sels: readonly CompiledSelection[]): FieldSet[] {
  switch (n.t) {
    case 'sel': {
      const s = sels[n.i]
      const each = s.matchers.map(matcherNeeds)
      return s.mode === 'all' ? each.flat() : anyOf(each)
    }
    case 'not':
      return []
    case 'and':
      return n.a.flatMap((c) => condNeeds(c, sels))
    case 'or':
      return anyOf(n.a.map((c) => condNeeds(c, sels)))
  }
}

/** the presence needs of a rule's condition (CompiledRule.needs), duplicates dropped; undefined when none */
export function presenceOf(condition: CondNode, sels: readonly CompiledSelection[]): FieldSet[] | undefined {
  const seen = new Set<string>()
  const out: FieldSet[] = []
  for (const set of condNeeds(condition, sels)) {
    const key = JSON.stringify([set.fields, set.prefixes])
    if (seen.has(key)) continue
    seen.add(key)
    out.push(set)
  }
  return out.length > 0 ? out : undefined
}

/** Compile a schema-valid rule document. */
export function compileRule(doc: RuleDoc, file?: string): {rule?: CompiledRule; problems: CompileProblem[]} {
  const problems: CompileProblem[] = []
  const names = Object.keys(doc.detect ?? {})
  const selections = names.map((n) => compileSelection(n, doc.detect[n], ['detect', n], problems))
  let condition: CondNode = {t: 'and', a: []}
  try {
    condition = parseCondition(String(doc.condition ?? ''), names)
  } catch (e) {
    if (e instanceof ConditionError) problems.push({path: ['condition'], message: `condition: ${e.message}`})
    else throw e
  }
  const fixes: CompiledFix[] = []
  ;(doc.fix ?? []).forEach((f, i) => {
    const c = compileFix(f, ['fix', i], problems)
    if (c) fixes.push(c)
  })
  if (problems.length > 0) return {problems}
  const anchors = condAnchor(condition, selections)
  const rule: CompiledRule = {
    id: doc.id,
    rev: doc.rev,
    status: doc.status,
    title: doc.title,
    severity: doc.severity,
    cves: doc.cves ?? [],
    protocol: doc.protocol,
    direction: doc.direction ?? 'toserver',
    units: doc.units ?? [],
    selections,
    condition,
    fixes,
    action: doc.action ?? (fixes.length > 0 ? 'fix' : 'drop'),
    anchors,
    anchorFields: anchors ? anchorFieldsOf(selections) : undefined,
    needs: presenceOf(condition, selections),
    doc,
    file,
  }
  return {rule, problems}
}

// ---- matcher evaluation (hot path) ----

/** Receives values beyond MAX_VALUES_PER_MATCHER (one call per matcher evaluation that hit it). */
export type LimitHook = (field: string) => void

function testValue(m: CompiledMatcher, fv: FieldValue): boolean {
  const raw = fv.v
  if (m.op === 'num') {
    if (m.transforms.length === 0 || typeof raw !== 'string') {
      const n = toNum(raw)
      return n !== undefined && satisfies(n, m.bounds)
    }
    const n = toNum(applyTransforms(m.transforms, raw))
    return n !== undefined && satisfies(n, m.bounds)
  }
  if (m.op === 'none' || m.op === 'exists') return true
  let s = typeof raw === 'string' ? raw : String(raw)
  if (m.transforms.length > 0) s = applyTransforms(m.transforms, s)
  switch (m.op) {
    case 'length':
      return satisfies(s.length, m.bounds)
    case 'regex':
      for (let i = 0; i < m.res.length; i++) {
        if (!mayMatch(s, m.musts[i])) continue
        const tl = m.tailLens[i]
        if (tl === 0) {
          if (m.res[i].test(s)) return true
        } else if (s.length >= tl) {
          // fewer than tl characters cannot hold a match of tl characters
          if (noSurrogates(s, s.length - tl) ? m.tails[i]!.test(s.slice(s.length - tl)) : m.res[i].test(s)) return true
        }
      }
      return false
    case 'sqli':
      return isSqli(s) === m.sqli
  }
  if (m.nocase) {
    const need = m.needChars
    if (need !== undefined) {
      let possible = false
      for (let i = 0; i < need.length && !possible; i++) possible = s.includes(need[i])
      if (!possible) return false
    }
    s = s.toLowerCase()
  }
  const strs = m.strs
  for (let i = 0; i < strs.length; i++) {
    const x = strs[i]
    switch (m.op) {
      case 'equals':
        if (s === x) return true
        break
      case 'contains':
        if (s.includes(x)) return true
        break
      case 'startswith':
        if (s.startsWith(x)) return true
        break
      case 'endswith':
        if (s.endsWith(x)) return true
        break
    }
  }
  return false
}

/** no UTF-16 surrogate from `from` to the end: there, characters and code points (what RE2 counts) agree */
function noSurrogates(s: string, from: number): boolean {
  for (let i = from; i < s.length; i++) if ((s.charCodeAt(i) & 0xf800) === 0xd800) return false
  return true
}

/**
 * Scratch state for one matcher evaluation: avoids a closure per call. `collect`, when set,
 * receives every satisfying value (used after a rule matched, to build evidence and fixes).
 */
interface Walk {
  m: CompiledMatcher
  seen: number
  hits: number
  stop: boolean
  collect: MatchedValue[] | undefined
  limit: LimitHook | undefined
}

const walk: Walk = {m: undefined as unknown as CompiledMatcher, seen: 0, hits: 0, stop: false, collect: undefined, limit: undefined}

function visit(name: string, entry: FieldValue | FieldValue[]): void {
  const w = walk
  const m = w.m
  const stopAtFirst = m.count === undefined && w.collect === undefined
  if (Array.isArray(entry)) {
    for (let i = 0; i < entry.length; i++) {
      if (w.seen >= MAX_VALUES_PER_MATCHER) {
        w.limit?.(name)
        w.stop = true
        return
      }
      w.seen++
      if (testValue(m, entry[i])) {
        w.hits++
        w.collect?.push({field: name, value: entry[i]})
        if (stopAtFirst) {
          w.stop = true
          return
        }
      }
    }
    return
  }
  if (w.seen >= MAX_VALUES_PER_MATCHER) {
    w.limit?.(name)
    w.stop = true
    return
  }
  w.seen++
  if (testValue(m, entry)) {
    w.hits++
    w.collect?.push({field: name, value: entry})
    if (stopAtFirst) w.stop = true
  }
}

/**
 * The fields of one PDU whose names start with any prefix (`name.*` family) its rules use,
 * gathered once per PDU by the rule engine (gatherPrefixed), in the Map's order: each family
 * matcher then walks these few instead of every field of the PDU.
 */
const prefixed = {
  fields: undefined as Fields | undefined,
  keys: [] as string[],
  entries: [] as (FieldValue | FieldValue[])[],
  n: 0,
  prefixes: [] as readonly string[],
}

/**
 * k.startsWith(p), compared from p's last character (every family prefix ends with '.', and most
 * field names that do not start with p differ there): the builtin's call costs more than the few
 * compares, and this runs for every field of a PDU
 */
export function hasPrefix(k: string, p: string): boolean {
  if (k.length < p.length) return false
  for (let i = p.length - 1; i >= 0; i--) if (k.charCodeAt(i) !== p.charCodeAt(i)) return false
  return true
}

function gatherOne(e: FieldValue | FieldValue[], k: string): void {
  const g = prefixed
  const ps = g.prefixes
  for (let i = 0; i < ps.length; i++) {
    if (hasPrefix(k, ps[i])) {
      g.keys[g.n] = k
      g.entries[g.n] = e
      g.n++
      return
    }
  }
}

/**
 * Gathers `fields`' entries under any of `prefixes` (which must include every prefix of every
 * matcher evaluated until releasePrefixed): evalMatcher walks them for these fields. Returns the
 * count; prefixedKey/prefixedEntry read them.
 */
export function gatherPrefixed(fields: Fields, prefixes: readonly string[]): number {
  const g = prefixed
  g.fields = fields
  g.n = 0
  g.prefixes = prefixes
  if (prefixes.length > 0) fields.forEach(gatherOne)
  return g.n
}

export function prefixedKey(i: number): string {
  return prefixed.keys[i]
}

export function prefixedEntry(i: number): FieldValue | FieldValue[] {
  return prefixed.entries[i]
}

/** ends a gatherPrefixed: later evaluations walk their fields themselves */
export function releasePrefixed(): void {
  const g = prefixed
  g.fields = undefined
  // drop the references, so no PDU's values outlive its judgement
  g.entries.fill(undefined as unknown as FieldValue, 0, g.n)
  g.n = 0
}

/** visit a field whose name starts with one of the current matcher's prefixes */
function visitPrefixed(e: FieldValue | FieldValue[], k: string): void {
  const w = walk
  if (w.stop) return
  const prefixes = w.m.prefixes
  for (let i = 0; i < prefixes.length; i++) {
    if (hasPrefix(k, prefixes[i])) {
      visit(k, e)
      return
    }
  }
}

/** Does matcher `m` hold on `fields`? Satisfying values are appended to `collect` when given. */
export function evalMatcher(m: CompiledMatcher, fields: Fields, collect?: MatchedValue[], limit?: LimitHook): boolean {
  const w = walk
  w.m = m
  w.seen = 0
  w.hits = 0
  w.stop = false
  w.collect = collect
  w.limit = limit
  for (let i = 0; i < m.fields.length && !w.stop; i++) {
    const e = fields.get(m.fields[i])
    if (e !== undefined) visit(m.fields[i], e)
  }
  // forEach with a module-level callback: iterating entries with for...of allocates a pair per field
  if (m.prefixes.length > 0 && !w.stop) {
    const g = prefixed
    if (g.fields === fields) {
      for (let i = 0; i < g.n && !w.stop; i++) visitPrefixed(g.entries[i], g.keys[i])
    } else {
      fields.forEach(visitPrefixed)
    }
  }
  w.collect = undefined
  w.limit = undefined
  if (m.count !== undefined) return satisfies(w.hits, m.count)
  if (m.op === 'exists') return (w.hits > 0) === m.exists
  return w.hits > 0
}

export function evalSelection(s: CompiledSelection, fields: Fields, collect?: MatchedValue[], limit?: LimitHook): boolean {
  const ms = s.matchers
  if (s.mode === 'all') {
    for (let i = 0; i < ms.length; i++) if (!evalMatcher(ms[i], fields, collect, limit)) return false
    return true
  }
  let any = false
  for (let i = 0; i < ms.length; i++) {
    if (evalMatcher(ms[i], fields, collect, limit)) {
      any = true
      if (collect === undefined) return true
    }
  }
  return any
}
