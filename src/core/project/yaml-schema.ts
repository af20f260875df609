/**
 * Load a YAML file, validate it against a JSON Schema (ajv), and report every problem as a
 * compiler-style diagnostic `file:line:col: message`: YAML syntax errors come from the parser's
 * offsets, schema errors are mapped back through the ajv `instancePath` to the YAML node that
 * holds the offending value (or its key, for unknown keys). Shared by the project config loader
 * and the rule linter.
 *
 * Never throws on bad input: unreadable, oversized, malformed or invalid files are diagnostics.
 */
import {readFile, stat} from 'node:fs/promises'
import {isIP} from 'node:net'
import path from 'node:path'
import {Ajv} from 'ajv'
import type {ErrorObject, ValidateFunction} from 'ajv'
import {isMap, isScalar, isSeq, LineCounter, parseDocument} from 'yaml'
import type {Document, Node as YamlNode} from 'yaml'

/** Largest YAML file we parse (config and rule files are small; anything bigger is a mistake). */
export const MAX_YAML_BYTES = 4 * 1024 * 1024
/** Most diagnostics reported for one file (the rest are counted in a final diagnostic). */
export const MAX_DIAGNOSTICS = 100
/** YAML alias expansion limit (billion-laughs guard), passed to yaml's toJS. */
export const MAX_YAML_ALIASES = 100

export interface YamlDiagnostic {
  /** file name as shown to the user */
  file: string
  /** 1-based; 0 when the problem is about the whole file (unreadable, too large) */
  line: number
  /** 1-based; 0 when line is 0 */
  col: number
  message: string
  /** optional one-line suggestion, e.g. a did-you-mean */
  hint?: string
  /** JSON pointer of the value in the document ('' for the root or for syntax errors) */
  pointer: string
  severity: 'error' | 'warning'
  /** 'io' | 'too_large' | 'syntax' | 'schema' | ajv keyword, e.g. 'additionalProperties' */
  code: string
}

export interface YamlSchemaResult<T> {
  /** true when there is no error-severity diagnostic */
  ok: boolean
  /** the validated value with schema defaults applied (only when ok) */
  value?: T
  diagnostics: YamlDiagnostic[]
  /** position of the YAML node at a JSON pointer (when the document parsed) */
  locate?: (pointer: string) => {line: number; col: number}
}

export interface YamlSchemaOptions {
  /** name used in diagnostics; default: path relative to cwd (absolute when outside cwd) */
  displayName?: string
  /** default MAX_YAML_BYTES */
  maxBytes?: number
  /** value used for an empty document (default: undefined, so the schema decides) */
  emptyValue?: unknown
  /** adjust the parsed data before validation (e.g. `section:` with only comments -> {}) */
  prepare?: (data: unknown) => unknown
}

/** `file:line:col: message` (or `file: message` when the problem has no position). */
export function formatDiagnostic(d: YamlDiagnostic): string {
  const where = d.line > 0 ? `${d.file}:${d.line}:${d.col}` : d.file
  const sev = d.severity === 'warning' ? 'warning: ' : ''
  return `${where}: ${sev}${d.message}`
}

/** True for an IPv4/IPv6 address or a CIDR block (`10.0.0.0/8`, `2001:db8::/32`). */
export function isIpOrCidr(s: string): boolean {
  const slash = s.indexOf('/')
  if (slash < 0) return isIP(s) !== 0
  const fam = isIP(s.slice(0, slash))
  const prefix = s.slice(slash + 1)
  if (fam === 0 || !/^\d{1,3}$/.test(prefix)) return false
  return Number(prefix) <= (fam === 4 ? 32 : 128)
}

/** Closest candidate within a small edit distance, for did-you-mean hints. */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase()
  let best: string | undefined
  let bestD = Math.max(1, Math.min(3, Math.floor(w.length / 3)))
  for (const c of candidates) {
    const d = c.toLowerCase() === w ? 0 : editDistance(w, c.toLowerCase(), bestD + 1)
    if (d <= bestD) {
      best = c
      bestD = d
    }
  }
  return best
}

/** Edit distance with adjacent transpositions (optimal string alignment), capped at `cap`. */
function editDistance(a: string, b: string, cap: number): number {
  if (Math.abs(a.length - b.length) >= cap) return cap
  let prev2 = new Array<number>(b.length + 1).fill(0)
  let prev = new Array<number>(b.length + 1)
  let cur = new Array<number>(b.length + 1)
  for (let j = 0; j <= b.length; j++) prev[j] = j
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i
    let rowMin = i
    for (let j = 1; j <= b.length; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1
      let v = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      if (i > 1 && j > 1 && a.charCodeAt(i - 1) === b.charCodeAt(j - 2) && a.charCodeAt(i - 2) === b.charCodeAt(j - 1)) {
        v = Math.min(v, prev2[j - 2] + 1)
      }
      cur[j] = v
      if (v < rowMin) rowMin = v
    }
    if (rowMin >= cap) return cap
    const t = prev2
    prev2 = prev
    prev = cur
    cur = t
  }
  return Math.min(prev[b.length], cap)
}

const ajv = new Ajv({allErrors: true, useDefaults: true, verbose: true, strictTypes: false, strictTuples: false})
ajv.addFormat('ip-or-cidr', isIpOrCidr)
const compiled = new WeakMap<object, ValidateFunction>()

function validatorFor(schema: object): ValidateFunction {
  let v = compiled.get(schema)
  if (!v) {
    const id = (schema as {$id?: unknown}).$id
    v = (typeof id === 'string' ? ajv.getSchema(id) : undefined) ?? ajv.compile(schema)
    compiled.set(schema, v)
  }
  return v
}

/** Read `file` and validate it. Never throws. */
export async function loadYamlWithSchema<T>(
  file: string,
  schema: object,
  options: YamlSchemaOptions = {},
): Promise<YamlSchemaResult<T>> {
  const name = options.displayName ?? displayPath(file)
  const maxBytes = options.maxBytes ?? MAX_YAML_BYTES
  const fail = (code: string, message: string): YamlSchemaResult<T> => ({
    ok: false,
    diagnostics: [{file: name, line: 0, col: 0, message, pointer: '', severity: 'error', code}],
  })
  let text: string
  try {
    const st = await stat(file)
    if (!st.isFile()) return fail('io', 'not a regular file')
    if (st.size > maxBytes) return fail('too_large', `file too large (${st.size} bytes, limit ${maxBytes})`)
    text = await readFile(file, 'utf8')
  } catch (err) {
    return fail('io', `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  return parseYamlWithSchema<T>(text, name, schema, {...options, displayName: name})
}

/** Validate YAML text already in memory. `file` is only used in diagnostics. Never throws. */
export function parseYamlWithSchema<T>(
  text: string,
  file: string,
  schema: object,
  options: YamlSchemaOptions = {},
): YamlSchemaResult<T> {
  const maxBytes = options.maxBytes ?? MAX_YAML_BYTES
  const diagnostics: YamlDiagnostic[] = []
  if (text.length > maxBytes) {
    diagnostics.push({file, line: 0, col: 0, message: `file too large (${text.length} characters, limit ${maxBytes})`, pointer: '', severity: 'error', code: 'too_large'})
    return {ok: false, diagnostics}
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, {lineCounter, prettyErrors: false, uniqueKeys: true, strict: true})
  const at = (offset: number) => {
    const p = lineCounter.linePos(Math.max(0, Math.min(offset, text.length)))
    return {line: p.line, col: p.col}
  }
  for (const e of doc.errors) {
    diagnostics.push({file, ...at(e.pos[0]), message: firstLine(e.message), pointer: '', severity: 'error', code: 'syntax'})
  }
  for (const w of doc.warnings) {
    diagnostics.push({file, ...at(w.pos[0]), message: firstLine(w.message), pointer: '', severity: 'warning', code: 'syntax'})
  }
  if (doc.errors.length > 0) return finish(diagnostics)

  let data: unknown
  try {
    data = doc.contents === null ? options.emptyValue : doc.toJS({maxAliasCount: MAX_YAML_ALIASES})
  } catch (err) {
    diagnostics.push({file, line: 1, col: 1, message: firstLine((err as Error).message), pointer: '', severity: 'error', code: 'syntax'})
    return finish(diagnostics)
  }
  if (data === null && options.emptyValue !== undefined) data = options.emptyValue
  if (options.prepare) data = options.prepare(data)

  const validate = validatorFor(schema)
  if (!validate(data)) {
    for (const e of validate.errors ?? []) diagnostics.push(schemaDiagnostic(e, doc, file, at))
  }
  const result = finish<T>(diagnostics)
  if (result.ok) result.value = data as T
  result.locate = (pointer) => {
    const node = nodeAtPointer(doc, pointer)
    return node?.range ? at(node.range[0]) : {line: 1, col: 1}
  }
  return result
}

function finish<T>(diagnostics: YamlDiagnostic[]): YamlSchemaResult<T> {
  diagnostics.sort((a, b) => a.line - b.line || a.col - b.col)
  // the same place can fail several ways (e.g. type and enum); keep one per place and code
  const seen = new Set<string>()
  let out = diagnostics.filter((d) => {
    const k = `${d.line}:${d.col}:${d.pointer}:${d.code}`
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
  if (out.length > MAX_DIAGNOSTICS) {
    const more = out.length - MAX_DIAGNOSTICS
    out = out.slice(0, MAX_DIAGNOSTICS)
    out.push({...out[MAX_DIAGNOSTICS - 1], message: `${more} more problems not shown`, hint: undefined, code: 'truncated'})
  }
  return {ok: !out.some((d) => d.severity === 'error'), diagnostics: out}
}

function firstLine(s: string): string {
  const nl = s.indexOf('\n')
  return (nl < 0 ? s : s.slice(0, nl)).replace(/ at line \d+, column \d+:?$/, '').trim()
}

function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file)
  return rel === '' || rel.startsWith('..') || path.isAbsolute(rel) ? file : rel
}

/** Decode a JSON pointer ('/a/0/b~1c') into segments. */
export function pointerSegments(pointer: string): string[] {
  if (pointer === '') return []
  return pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
}

/** Human path for messages: `engine.limits.flows`, `hosts[2].match`. */
export function dottedPath(pointer: string): string {
  let out = ''
  for (const seg of pointerSegments(pointer)) {
    if (/^\d+$/.test(seg)) out += `[${seg}]`
    else out += out === '' ? seg : `.${seg}`
  }
  return out
}

/** The YAML node at a JSON pointer (the deepest existing one), and the map pair key if asked. */
export function nodeAtPointer(doc: Document, pointer: string, childKey?: string): YamlNode | undefined {
  const root = doc.contents as YamlNode | null
  if (!root) return undefined
  let node: YamlNode = root
  for (const seg of pointerSegments(pointer)) {
    const next = childOf(node, seg)
    if (!next) return node
    const child = next.value ?? next.key
    if (!child) return node
    node = child
  }
  if (childKey !== undefined) {
    const pair = childOf(node, childKey)
    if (pair) return pair.key ?? node
  }
  return node
}

function childOf(node: YamlNode, seg: string): {key?: YamlNode; value?: YamlNode} | undefined {
  if (isMap(node)) {
    for (const p of node.items) {
      const k = p.key
      const kv = isScalar(k) ? k.value : k
      if (String(kv) === seg) {
        return {key: isScalar(k) ? k : undefined, value: (p.value as YamlNode | null) ?? undefined}
      }
    }
    return undefined
  }
  if (isSeq(node) && /^\d+$/.test(seg)) {
    const item = node.items[Number(seg)] as YamlNode | undefined
    return item ? {value: item} : undefined
  }
  return undefined
}

const article = (t: string) => (/^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`)

function schemaDiagnostic(
  e: ErrorObject,
  doc: Document,
  file: string,
  at: (offset: number) => {line: number; col: number},
): YamlDiagnostic {
  const where = dottedPath(e.instancePath)
  const subject = where === '' ? 'top level' : where
  let message: string
  let hint: string | undefined
  let node: YamlNode | undefined
  const params = e.params as Record<string, unknown>
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty)
      node = nodeAtPointer(doc, e.instancePath, key)
      const allowed = Object.keys((e.parentSchema as {properties?: object} | undefined)?.properties ?? {})
      message = where === '' ? `unknown top-level key '${key}'` : `unknown key '${key}' in ${where}`
      const guess = didYouMean(key, allowed)
      hint = guess ? `did you mean '${guess}'?` : allowed.length > 0 ? `allowed keys: ${allowed.join(', ')}` : undefined
      break
    }
    case 'required':
      message = `${subject}: missing required key '${String(params.missingProperty)}'`
      break
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]).map(String)
      message = `${subject}: must be one of ${allowed.join(', ')}`
      const guess = typeof e.data === 'string' ? didYouMean(e.data, allowed) : undefined
      if (guess) hint = `did you mean '${guess}'?`
      break
    }
    case 'type': {
      const types = String(params.type).split(',').map(article).join(' or ')
      message = `${subject}: must be ${types}`
      break
    }
    case 'format':
      message = params.format === 'ip-or-cidr'
        ? `${subject}: '${String(e.data)}' is not an IP address or CIDR block`
        : `${subject}: must be a valid ${String(params.format)}`
      if (params.format === 'ip-or-cidr') hint = 'e.g. 192.0.2.7, 10.0.0.0/8 or 2001:db8::/32'
      break
    default:
      message = `${subject}: ${e.message ?? 'is invalid'}`
  }
  node ??= nodeAtPointer(doc, e.instancePath)
  const pos = node?.range ? at(node.range[0]) : {line: 1, col: 1}
  return {file, ...pos, message, hint, pointer: e.instancePath, severity: 'error', code: e.keyword}
}
