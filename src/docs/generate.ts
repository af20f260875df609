/**
 * Reference docs generated from the code, so they cannot drift (issue 8, item 3):
 *
 * - docs/rule-language.md: the rule file format, from rules/schema/rule.schema.json, the
 *   transform registry (src/core/rules/transforms.ts) and every analyzer's FieldSpec list
 *   (src/core/analyzers/registry.ts, plus the 'anomaly' pseudo-protocol of src/core/rules/fields.ts).
 * - docs/commands.md: every command's help, from the oclif command classes that `Config.load`
 *   finds under dist/commands (whatever commands exist when it runs).
 *
 * Output is deterministic: no timestamps, no absolute paths, commands and analyzers sorted.
 * Run: `npm run docs` (builds, then `node dist/docs/generate.js [OUT_DIR]`; default: docs/).
 * test/docs/docs.test.ts regenerates into a temp folder and fails when docs/ differs.
 */
import {existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'
import {Config} from '@oclif/core'
import type {Command} from '@oclif/core'
import {analyzerFactories} from '../core/analyzers/registry.js'
import type {FieldSpec} from '../core/analyzers/types.js'
import {EXIT} from '../core/errors.js'
import {anomalyFields} from '../core/rules/fields.js'
import {transforms} from '../core/rules/transforms.js'

/** The package root (holds package.json, rules/, dist/): two levels above src/docs or dist/docs. */
export const PACKAGE_ROOT: string = fileURLToPath(new URL('../../', import.meta.url))
/** Where `npm run docs` writes. */
export const DOCS_DIR: string = path.join(PACKAGE_ROOT, 'docs')
/** The rule the intro shows in full. */
export const EXAMPLE_RULE = 'rules/apache/PP-2011-3192.yaml'
/** Most lines of the example rule quoted in the intro (a longer rule is cut, with a note). */
export const MAX_EXAMPLE_LINES = 200

/**
 * One line per transform. The registry (transforms.ts) holds bare functions, so the prose lives
 * here; the docs test fails when a registered transform has no entry, so a new transform cannot
 * ship undocumented.
 */
export const TRANSFORM_DESCRIPTIONS: Readonly<Record<string, string>> = {
  lowercase: 'Lower-cases the value.',
  url_decode: '`%XX` and IIS `%uXXXX` escapes decoded once; `+` is left alone (literal in paths); malformed escapes stay.',
  url_decode_all: '`url_decode` repeated until the value stops changing (at most MAX_URL_DECODE_ROUNDS = 4 rounds): double encoding.',
  utf8_overlong: "Overlong UTF-8 encodings of ASCII (`C0 AF` = '/', `E0 80 AE` = '.', `F0 80 80 AE` = '.') decoded to the ASCII byte: the classic path-traversal evasion.",
  html_entity: '`&#DDD;`, `&#xHH;` (semicolon optional for numeric forms) and common named entities (`&lt;`, `&colon;`, `&lpar;`...) decoded.',
  base64_decode: 'Base64 (standard or URL-safe, padding optional) decoded; characters outside the alphabet are skipped.',
  compress_whitespace: 'Every run of whitespace (space, \\t, \\n, \\v, \\f, \\r, NBSP) becomes one space.',
  remove_whitespace: 'Every whitespace character (space, \\t, \\n, \\v, \\f, \\r, NBSP) removed.',
  remove_nulls: 'NUL bytes removed.',
  normalize_path: "Path normalisation: backslashes to '/', repeated slashes collapsed, '.' dropped, '..' removes the previous segment (never above the root); a query string is kept verbatim.",
  trim: 'Leading and trailing whitespace removed.',
  log4j_lookups: 'Log4j lookups resolved the way Log4j would: `${lower:x}`/`${upper:x}`, `${env:NOPE:-j}` defaults, `${date:\'j\'}` quoted text, nested lookups inside-out; others kept as `${...}`, so `${${lower:j}ndi:ldap://x}` becomes `${jndi:ldap://x}`.',
  hex_decode: '`\\xHH` escapes decoded in place; a value that is entirely hex (optional `0x`) is decoded whole.',
  json_unescape: 'JSON string escapes decoded as a JSON parser would: `\\uXXXX` (surrogate pairs joined, above 255 as UTF-8 bytes) and `\\n`, `\\"`, `\\\\`, `\\/`...; other backslashes stay.',
}

/** Meaning of each process exit code (EXIT in src/core/errors.ts); the docs test fails on a code missing here. */
export const EXIT_DESCRIPTIONS: Readonly<Record<string, string>> = {
  OK: 'success, nothing to report',
  FINDINGS: 'ran fine, but found alerts, anomalies or warnings (for cron and CI)',
  USER: 'bad input: flag, argument, file, config',
  PERMISSION: 'needs root, CAP_NET_ADMIN or CAP_NET_RAW',
  BUG: 'internal error in patchpoint (EX_SOFTWARE from sysexits.h)',
}

// ---------------------------------------------------------------------------------------------
// Markdown helpers

/** Text for a table cell: newlines joined, `<` and `*` escaped outside code spans (table() escapes pipes). */
export function cell(text: string): string {
  const parts = text.replace(/\r?\n\s*/g, ' ').split('`')
  for (let i = 0; i < parts.length; i += 2) parts[i] = parts[i].replace(/</g, '&lt;').replace(/\*/g, '\\*')
  return parts.join('`')
}

/** Every unescaped `|` escaped (GitHub splits table cells on pipes even inside code spans). */
function pipes(c: string): string {
  return c.replace(/(^|[^\\])\|/g, '$1\\|').replace(/(^|[^\\])\|/g, '$1\\|')
}

/** Inline code that survives any content (longer fence when the text holds backticks). */
export function code(text: string): string {
  if (!text.includes('`')) return '`' + text + '`'
  return '`` ' + text + ' ``'
}

function table(head: string[], rows: string[][]): string[] {
  return [
    '| ' + head.join(' | ') + ' |',
    '|' + head.map(() => '---').join('|') + '|',
    ...rows.map((r) => '| ' + r.map(pipes).join(' | ') + ' |'),
  ]
}

/** A code block fence longer than any backtick run inside `text`. */
function fence(text: string, lang = ''): string[] {
  let n = 3
  for (const m of text.matchAll(/`+/g)) n = Math.max(n, m[0].length + 1)
  const f = '`'.repeat(n)
  return [f + lang, ...text.replace(/\s+$/, '').split('\n'), f]
}

function anchor(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '')
}

// ---------------------------------------------------------------------------------------------
// Rule language reference (JSON Schema)

/** The subset of draft-07 the rule schema uses. */
export interface SchemaNode {
  type?: string | string[]
  description?: string
  title?: string
  enum?: unknown[]
  oneOf?: SchemaNode[]
  anyOf?: SchemaNode[]
  $ref?: string
  items?: SchemaNode
  properties?: Record<string, SchemaNode>
  additionalProperties?: boolean | SchemaNode
  propertyNames?: SchemaNode
  required?: string[]
  definitions?: Record<string, SchemaNode>
  pattern?: string
  minLength?: number
  maxLength?: number
  minimum?: number
  maximum?: number
  minItems?: number
  maxItems?: number
  minProperties?: number
  maxProperties?: number
}

/** One analyzer as the docs show it. */
export interface AnalyzerDoc {
  protocol: string
  transport: string
  ports: readonly number[]
  fields: readonly FieldSpec[]
}

export interface RuleLanguageInput {
  schema: SchemaNode
  /** names registered in the transform registry */
  transformNames: readonly string[]
  transformDescriptions: Readonly<Record<string, string>>
  analyzers: readonly AnalyzerDoc[]
  anomalyFields: readonly FieldSpec[]
  /** the example rule's YAML text and its repo-relative path */
  example: {file: string; text: string}
}

/** A section to render: an object schema reached at `title`. */
interface PendingSection {
  title: string
  node: SchemaNode
  /** definition name when the section documents a `definitions` entry */
  def?: string
}

function defName(ref: string): string {
  return ref.replace(/^#\/definitions\//, '')
}

function defAnchor(name: string): string {
  return 'def-' + anchor(name)
}

function resolve(schema: SchemaNode, node: SchemaNode): SchemaNode {
  if (node.$ref === undefined) return node
  return schema.definitions?.[defName(node.$ref)] ?? node
}

function isObjectWithProps(n: SchemaNode): boolean {
  return n.properties !== undefined
}

/** Human type of a schema node; `queue` collects nested object sections to render later. */
function typeText(schema: SchemaNode, node: SchemaNode, where: string, queue: PendingSection[]): string {
  if (node.$ref !== undefined) {
    const name = defName(node.$ref)
    const target = schema.definitions?.[name]
    if (target && !queue.some((q) => q.def === name)) queue.push({title: name, node: target, def: name})
    return `[${name}](#${defAnchor(name)})`
  }
  if (node.enum) return 'one of ' + node.enum.map((v) => code(String(v))).join(', ')
  const alts = node.oneOf ?? node.anyOf
  if (alts) return alts.map((a, i) => typeText(schema, a, `${where}/${i}`, queue)).join(' or ')
  const t = Array.isArray(node.type) ? node.type.join(' or ') : node.type
  if (t === 'array' && node.items) {
    const inner = typeText(schema, node.items, where + '[]', queue)
    return `array of ${inner}`
  }
  if (t === 'object' || (t === undefined && isObjectWithProps(node))) {
    if (isObjectWithProps(node)) {
      queue.push({title: where, node})
      return `[object](#${anchor('obj-' + where)})`
    }
    if (node.additionalProperties && typeof node.additionalProperties === 'object') {
      const val = typeText(schema, node.additionalProperties, where + '.*', queue)
      return `map of name to ${val}`
    }
    return 'object'
  }
  if (t === 'string' && node.pattern !== undefined && !node.description && where.endsWith('/1')) {
    // the numeric-string alternative of the bounds (gt/gte/...)
    return 'string (' + code(node.pattern) + ')'
  }
  return t ?? 'any'
}

/** Constraints worth stating (lengths, counts, patterns). */
function constraints(node: SchemaNode): string[] {
  const out: string[] = []
  const n = node
  if (n.pattern !== undefined) out.push('pattern ' + code(n.pattern))
  if (n.minLength !== undefined) out.push(`at least ${n.minLength} character(s)`)
  if (n.maxLength !== undefined) out.push(`at most ${n.maxLength} character(s)`)
  if (n.minimum !== undefined) out.push(`minimum ${n.minimum}`)
  if (n.maximum !== undefined) out.push(`maximum ${n.maximum}`)
  if (n.minItems !== undefined) out.push(`at least ${n.minItems} item(s)`)
  if (n.maxItems !== undefined) out.push(`at most ${n.maxItems} item(s)`)
  if (n.minProperties !== undefined) out.push(`at least ${n.minProperties} key(s)`)
  if (n.maxProperties !== undefined) out.push(`at most ${n.maxProperties} key(s)`)
  if (n.propertyNames?.pattern !== undefined) out.push('names match ' + code(n.propertyNames.pattern))
  if (n.items && n.items.pattern !== undefined && n.items.$ref === undefined) out.push('each item matches ' + code(n.items.pattern))
  return out
}

function propertyRow(schema: SchemaNode, parent: SchemaNode, key: string, where: string, queue: PendingSection[]): string[] {
  const raw = parent.properties![key]
  const node = raw
  const type = typeText(schema, node, where === '' ? key : `${where}.${key}`, queue)
  const required = parent.required?.includes(key) ? 'yes' : ''
  let desc = node.description ?? (node.$ref ? resolve(schema, node).description ?? '' : '')
  const extra = constraints(node)
  if (extra.length > 0) desc += (desc ? ' ' : '') + '(' + extra.join('; ') + ')'
  return [code(key), cell(type), required, cell(desc)]
}

/** Keys of `sub` that `sup` has with exactly the same schema (for "everything in X, plus"). */
function sharedWith(sup: SchemaNode, sub: SchemaNode): boolean {
  const a = sup.properties ?? {}
  const b = sub.properties ?? {}
  const keys = Object.keys(b)
  if (keys.length === 0 || keys.length >= Object.keys(a).length) return false
  return keys.every((k) => a[k] !== undefined && JSON.stringify(a[k]) === JSON.stringify(b[k]))
}

function renderObjectSection(schema: SchemaNode, sec: PendingSection, queue: PendingSection[], done: Map<string, SchemaNode>): string[] {
  const out: string[] = []
  const id = sec.def !== undefined ? defAnchor(sec.def) : anchor('obj-' + sec.title)
  const heading = sec.def !== undefined ? `Definition \`${sec.def}\`` : `\`${sec.title}\``
  out.push(`<a id="${id}"></a>`, '', `### ${heading}`, '')
  if (sec.node.description) out.push(sec.node.description, '')
  const extra = constraints(sec.node)
  if (sec.node.additionalProperties === false) extra.push('no other keys')
  if (extra.length > 0) out.push('Constraints: ' + extra.join('; ') + '.', '')
  let keys = Object.keys(sec.node.properties ?? {})
  // a definition that repeats every property of an earlier one: say so, list only the rest
  for (const [name, other] of done) {
    if (sec.def !== undefined && sharedWith(sec.node, other)) {
      const otherKeys = new Set(Object.keys(other.properties ?? {}))
      keys = keys.filter((k) => !otherKeys.has(k))
      out.push(`Every key of [\`${name}\`](#${defAnchor(name)}), plus:`, '')
      break
    }
  }
  const where = sec.def !== undefined ? sec.def : sec.title
  out.push(...table(['Key', 'Type', 'Required', 'Description'], keys.map((k) => propertyRow(schema, sec.node, k, where, queue))))
  out.push('')
  if (sec.def !== undefined) done.set(sec.def, sec.node)
  return out
}

function fieldTable(fields: readonly FieldSpec[]): string[] {
  const sorted = [...fields].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  return table(['Field', 'Type', 'Multi', 'Description'], sorted.map((f) => [code(f.name), f.type, f.multi ? 'yes' : '', cell(f.description)]))
}

const INTRO = (example: {file: string; text: string}): string[] => {
  const lines = example.text.replace(/\s+$/, '').split('\n')
  const cut = lines.length > MAX_EXAMPLE_LINES
  const shown = cut ? [...lines.slice(0, MAX_EXAMPLE_LINES), '# ... (cut)'] : lines
  return [
    'A rule also says how to make a matching unit harmless (`fix`) and carries its own evidence',
    '(`samples`). One rule per YAML file; the file name is the rule id. The package ships its pack',
    "under `rules/`; a project's own rules go in its `rules/` folder.",
    '',
    'How a rule is judged: the analyzer of `protocol` emits units; units of the rule\'s',
    '`direction` (and `units` kinds, when given) are tested. Each named selection under `detect`',
    'holds when its matcher(s) hold on the unit\'s fields; `condition` combines the selections.',
    'When it holds, the rule\'s `action` applies: `fix` edits the unit\'s bytes (see `fix`), `log`',
    'only records an event, `drop` blocks the unit.',
    '',
    'A unit may carry context from bytes judged before it (an HTTP body sent after',
    '`Expect: 100-continue` is its own unit, kind `request_body`, carrying its request head; DCE/RPC',
    'requests carry their bind). A match is reported only when at least one of the values that made',
    'it lies in the unit\'s own bytes (or has no stream span): a match of context alone belonged to',
    'the earlier unit. So a rule that reads HTTP bodies or arguments lists `units: [request,',
    'request_body]`.',
    '',
    '## A complete rule',
    '',
    `\`${example.file}\`:`,
    '',
    ...fence(shown.join('\n'), 'yaml'),
    '',
    '## Lint and test a rule',
    '',
    '```sh',
    '# schema, regexes, conditions, fields the analyzer emits, samples present',
    `patchpoint rules lint ${example.file}`,
    '# run the rule\'s own samples through the real analyzer: every malicious sample must match',
    '# (and no longer match once fixed), no benign sample may match',
    `patchpoint rules test ${example.text.match(/^id:\s*(\S+)/m)?.[1] ?? '<RULE-ID>'}`,
    '# a rule being written, outside the pack',
    'patchpoint rules lint ./my-rules && patchpoint rules test --help',
    '```',
    '',
    'Add `# yaml-language-server: $schema=../schema/rule.schema.json` as the first line for',
    'completion and validation in editors. `status: stable` needs at least one malicious and one',
    'benign sample.',
    '',
  ]
}

/** docs/rule-language.md, from the schema, the transform registry and the analyzers. */
export function renderRuleLanguage(input: RuleLanguageInput): string {
  const {schema} = input
  const out: string[] = [
    '<!-- Generated by src/docs/generate.ts (npm run docs). Do not edit: edit the schema, the analyzers or the generator. -->',
    '',
    '# Rule language reference',
    '',
    schema.description ?? '',
    '',
    ...INTRO(input.example),
    '## Contents',
    '',
    '- [Rule file keys](#rule-file-keys)',
    '- [Nested objects and definitions](#nested-objects-and-definitions)',
    '- [Matcher operators](#matcher-operators)',
    '- [Transforms](#transforms)',
    '- [Fixes](#fixes)',
    '- [Analyzer field reference](#analyzer-field-reference)',
    '',
    '## Rule file keys',
    '',
    'Source: `rules/schema/rule.schema.json`.' + (schema.additionalProperties === false ? ' No other keys are allowed.' : ''),
    '',
  ]
  const queue: PendingSection[] = []
  out.push(...table(['Key', 'Type', 'Required', 'Description'], Object.keys(schema.properties ?? {}).map((k) => propertyRow(schema, schema, k, '', queue))))
  out.push('')
  out.push('## Nested objects and definitions', '')
  const done = new Map<string, SchemaNode>()
  const rendered = new Set<string>()
  for (let i = 0; i < queue.length; i++) {
    const sec = queue[i]
    const key = sec.def !== undefined ? 'def:' + sec.def : 'obj:' + sec.title
    if (rendered.has(key)) continue
    // a definition that contains another one whole: document the smaller one first
    if (sec.def !== undefined) {
      for (const [name, other] of Object.entries(schema.definitions ?? {})) {
        if (name === sec.def || rendered.has('def:' + name) || !sharedWith(sec.node, other)) continue
        rendered.add('def:' + name)
        out.push(...renderObjectSection(schema, {title: name, node: other, def: name}, queue, done))
      }
    }
    rendered.add(key)
    out.push(...renderObjectSection(schema, sec, queue, done))
  }
  // definitions never referenced still get documented
  for (const name of Object.keys(schema.definitions ?? {})) {
    if (rendered.has('def:' + name)) continue
    rendered.add('def:' + name)
    out.push(...renderObjectSection(schema, {title: name, node: schema.definitions![name], def: name}, queue, done))
  }

  // operators: the matcher keys that are not field selection or value preparation
  const matcher = schema.definitions?.matcher
  const NON_OPERATORS = new Set(['field', 'fields', 'transform', 'nocase'])
  const ops = Object.keys(matcher?.properties ?? {}).filter((k) => !NON_OPERATORS.has(k))
  out.push('## Matcher operators', '')
  out.push('A matcher names its field(s) with `field` or `fields`, may prepare each value with `transform` (and', '`nocase`), and tests it with ONE of these operators (`count` may accompany another operator):', '')
  out.push(...table(['Operator', 'Description'], ops.map((k) => [code(k), cell(matcher!.properties![k].description ?? resolve(schema, matcher!.properties![k]).description ?? '')])))
  out.push('')

  out.push('## Transforms', '')
  out.push('Listed in `transform: [...]`, applied in order to each value before the operator. Values are', 'latin1 strings (one character per byte); every output is capped (MAX_TRANSFORM_OUTPUT), so a chain is', 'linear and bounded. Source: the registry in `src/core/rules/transforms.ts`.', '')
  const schemaEnum = (matcher?.properties?.transform?.items?.enum ?? []).map(String)
  const names = [...input.transformNames].sort()
  out.push(...table(['Transform', 'Description'], names.map((n) => [
    code(n),
    cell((input.transformDescriptions[n] ?? '(undocumented)') + (schemaEnum.length > 0 && !schemaEnum.includes(n) ? ' (registered at run time; not in the schema enum)' : '')),
  ])))
  out.push('')

  const fix = schema.properties?.fix
  out.push('## Fixes', '')
  if (fix?.description) out.push(fix.description, '')
  const fixItem = fix?.items
  if (fixItem?.properties) {
    out.push(...table(['Operation', 'Mode', 'Value', 'Description'], Object.keys(fixItem.properties).map((k) => {
      const p = fixItem.properties![k]
      const d = p.description ?? ''
      const mode = /^Proxy only/i.test(d) ? 'proxy only' : /^Inline/i.test(d) ? 'inline and proxy' : ''
      return [code(k), mode, cell(typeText(schema, p, 'fix[].' + k, [])), cell(d)]
    })))
    out.push('')
  }

  out.push('## Analyzer field reference', '')
  out.push('The fields each protocol analyzer emits: what `field:` and `fields:` may name (`rules lint` rejects', 'other fields). A name ending in `<name>` is a family (e.g. one field per header); `field: prefix.*`', 'matches every field of a family. Multi: the field may carry several values; a matcher holds when', 'ANY value matches. Source: `src/core/analyzers/registry.ts`.', '')
  const byProto = new Map<string, AnalyzerDoc[]>()
  for (const a of input.analyzers) {
    const list = byProto.get(a.protocol) ?? []
    list.push(a)
    byProto.set(a.protocol, list)
  }
  const protos = [...byProto.keys(), 'anomaly'].sort()
  out.push(...protos.map((p) => `- [${p}](#protocol-${anchor(p)})`), '')
  for (const p of protos) {
    out.push(`<a id="protocol-${anchor(p)}"></a>`, '', `### \`${p}\``, '')
    if (p === 'anomaly') {
      out.push('Pseudo-protocol: the engine judges every anomaly report (malformed or evasive traffic, a limit', 'hit) as a unit of protocol `anomaly` whose kind is the anomaly type, so rules can act on them.', 'Source: `src/core/rules/fields.ts`.', '')
      out.push(...fieldTable(input.anomalyFields), '')
      continue
    }
    const list = byProto.get(p)!
    for (const a of [...list].sort((x, y) => (x.transport < y.transport ? -1 : x.transport > y.transport ? 1 : 0))) {
      out.push(`- transport ${a.transport}, default ports: ${a.ports.length > 0 ? [...a.ports].sort((x, y) => x - y).join(', ') : 'none (content detection only)'}`)
    }
    out.push('')
    // fields of every transport, once each (the same analyzer over TCP and UDP)
    const seen = new Map<string, FieldSpec>()
    for (const a of list) for (const f of a.fields) if (!seen.has(f.name)) seen.set(f.name, f)
    out.push(...fieldTable([...seen.values()]), '')
  }
  return out.join('\n').replace(/\n{3,}/g, '\n\n').replace(/\s+$/, '') + '\n'
}

// ---------------------------------------------------------------------------------------------
// Command reference (oclif)

/** A flag or argument as the docs show it (the subset of oclif's cached metadata used). */
export interface FlagDoc {
  name: string
  char?: string
  type: 'boolean' | 'option'
  summary?: string
  description?: string
  helpValue?: string | string[]
  options?: readonly string[]
  default?: unknown
  multiple?: boolean
  required?: boolean
  env?: string
  helpGroup?: string
  hidden?: boolean
  allowNo?: boolean
}

export interface ArgDoc {
  name: string
  description?: string
  required?: boolean
  options?: readonly string[]
  default?: unknown
}

export type ExampleDoc = string | {description: string; command: string}

export interface CommandDoc {
  /** oclif id, ':'-separated ('rules:lint') */
  id: string
  summary?: string
  description?: string
  usage?: string | string[]
  examples?: ExampleDoc[]
  args: Record<string, ArgDoc>
  flags: Record<string, FlagDoc>
  strict?: boolean
  hidden?: boolean
  aliases?: string[]
}

export interface CommandsInput {
  bin: string
  topicSeparator: string
  /** topic name ('rules') -> description */
  topics: Record<string, string>
  commands: readonly CommandDoc[]
  /** process exit codes, in code order */
  exitCodes?: readonly {code: number; name: string; meaning: string}[]
}

function displayId(id: string, sep: string): string {
  return id.split(':').join(sep)
}

function template(text: string, bin: string, id: string): string {
  return text.replace(/<%=\s*config\.bin\s*%>/g, bin).replace(/<%=\s*command\.id\s*%>/g, id)
}

function defaultText(v: unknown): string {
  if (v === undefined || v === null) return ''
  if (typeof v === 'function') return '(computed)'
  if (Array.isArray(v)) return v.map(String).join(', ')
  return String(v)
}

function flagSyntax(f: FlagDoc): string {
  let s = (f.char ? `-${f.char}, ` : '') + `--${f.allowNo ? '[no-]' : ''}${f.name}`
  if (f.type === 'option') {
    const hv = Array.isArray(f.helpValue) ? f.helpValue.join(' ') : f.helpValue
    s += ' ' + (hv ?? (f.options && f.options.length > 0 ? f.options.join('|') : 'VALUE'))
    if (f.multiple) s += '...'
  }
  return s
}

function usageLine(c: CommandDoc, bin: string, sep: string): string[] {
  const id = displayId(c.id, sep)
  if (c.usage !== undefined) {
    const list = Array.isArray(c.usage) ? c.usage : [c.usage]
    return list.map((u) => template(u.includes('<%') ? u : `${bin} ${u}`, bin, id))
  }
  const parts = [bin, id]
  for (const a of Object.values(c.args)) {
    const n = a.name.toUpperCase() + (c.strict === false ? '...' : '')
    parts.push(a.required ? n : `[${n}]`)
  }
  const visible = Object.values(c.flags).filter((f) => !f.hidden)
  for (const f of visible.filter((x) => x.required).sort((a, b) => (a.name < b.name ? -1 : 1))) parts.push(flagSyntax(f))
  if (visible.some((f) => !f.required)) parts.push('[FLAGS]')
  return [parts.join(' ')]
}

function flagRow(f: FlagDoc): string[] {
  const notes: string[] = []
  if (f.options && f.options.length > 0) notes.push('options: ' + f.options.map(code).join(', '))
  if (f.multiple && !/repeatable/i.test(f.summary ?? '')) notes.push('repeatable')
  if (f.required) notes.push('required')
  if (f.env) notes.push('env: ' + code(f.env))
  let desc = f.summary ?? ''
  if (f.description && f.description !== f.summary) desc += (desc ? ' ' : '') + f.description
  if (notes.length > 0) desc += (desc ? ' ' : '') + '(' + notes.join('; ') + ')'
  const dflt = f.type === 'boolean' && (f.default === false || f.default === undefined) ? '' : defaultText(f.default)
  return [code(flagSyntax(f)), dflt === '' ? '' : code(dflt), cell(desc)]
}

/** docs/commands.md: every visible command, sorted by id. */
export function renderCommands(input: CommandsInput): string {
  const {bin, topicSeparator: sep} = input
  const cmds = input.commands.filter((c) => !c.hidden).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const out: string[] = [
    '<!-- Generated by src/docs/generate.ts (npm run docs) from the command classes. Do not edit: edit the commands. -->',
    '',
    '# Command reference',
    '',
    `Every \`${bin}\` command, with the help \`${bin} COMMAND --help\` prints.`,
    '',
  ]
  if (input.exitCodes && input.exitCodes.length > 0) {
    out.push('Exit codes (every command):', '')
    out.push(...table(['Code', 'Name', 'Meaning'], input.exitCodes.map((e) => [String(e.code), code(e.name), cell(e.meaning)])))
    out.push('')
  }
  // flags every command shares (the base command's global flags), documented once
  const globalNames = cmds.length === 0 ? [] : Object.keys(cmds[0].flags).filter((n) =>
    cmds.every((c) => c.flags[n] !== undefined && JSON.stringify(c.flags[n]) === JSON.stringify(cmds[0].flags[n])) && !cmds[0].flags[n].hidden)
  globalNames.sort()
  out.push('## Commands', '')
  out.push(...table(['Command', 'Summary'], cmds.map((c) => {
    const id = displayId(c.id, sep)
    return [`[\`${bin} ${id}\`](#${anchor(bin + ' ' + id)})`, cell(c.summary ?? firstLineOf(c.description ?? ''))]
  })))
  out.push('')
  const topicNames = Object.keys(input.topics).filter((t) => cmds.some((c) => c.id.startsWith(t + ':'))).sort()
  if (topicNames.length > 0) {
    out.push('Topics:', '')
    for (const t of topicNames) out.push(`- \`${bin} ${displayId(t, sep)}\`: ${cell(input.topics[t])}`)
    out.push('')
  }
  if (globalNames.length > 0) {
    out.push('## Global flags', '', 'Every command accepts:', '')
    out.push(...table(['Flag', 'Default', 'Description'], globalNames.map((n) => flagRow(cmds[0].flags[n]))))
    out.push('')
  }
  for (const c of cmds) {
    const id = displayId(c.id, sep)
    out.push(`## \`${bin} ${id}\``, '')
    if (c.summary) out.push(template(c.summary, bin, id), '')
    out.push('Usage:', '', ...fence(usageLine(c, bin, sep).join('\n'), 'sh'), '')
    if (c.aliases && c.aliases.length > 0) out.push('Aliases: ' + c.aliases.map((a) => code(`${bin} ${displayId(a, sep)}`)).join(', '), '')
    const args = Object.values(c.args)
    if (args.length > 0) {
      out.push('Arguments:', '')
      out.push(...table(['Argument', 'Required', 'Description'], args.map((a) => {
        const notes: string[] = []
        if (a.options && a.options.length > 0) notes.push('options: ' + a.options.map(code).join(', '))
        if (a.default !== undefined) notes.push('default: ' + code(defaultText(a.default)))
        if (c.strict === false) notes.push('several may be given')
        return [code(a.name.toUpperCase()), a.required ? 'yes' : '', cell((a.description ?? '') + (notes.length > 0 ? ' (' + notes.join('; ') + ')' : ''))]
      })))
      out.push('')
    }
    const own = Object.values(c.flags).filter((f) => !f.hidden && !globalNames.includes(f.name)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    if (own.length > 0) {
      out.push('Flags:', '')
      out.push(...table(['Flag', 'Default', 'Description'], own.map(flagRow)))
      out.push('')
    }
    if (globalNames.length > 0) out.push('Global flags: ' + globalNames.map((n) => `[\`--${n}\`](#global-flags)`).join(', '), '')
    if (c.description) out.push('Description:', '', ...fence(template(c.description, bin, id), 'text'), '')
    const examples = c.examples ?? []
    if (examples.length > 0) {
      out.push('Examples:', '')
      const lines: string[] = []
      for (const e of examples) {
        if (typeof e === 'string') {
          for (const l of template(e, bin, id).split('\n')) lines.push(l.startsWith('$ ') || l.startsWith('#') ? l : '$ ' + l)
        } else {
          lines.push('# ' + template(e.description, bin, id).replace(/\n/g, '\n# '))
          for (const l of template(e.command, bin, id).split('\n')) lines.push('$ ' + l)
        }
      }
      out.push(...fence(lines.join('\n'), 'sh'), '')
    }
  }
  return out.join('\n').replace(/\n{3,}/g, '\n\n').replace(/\s+$/, '') + '\n'
}

function firstLineOf(s: string): string {
  const nl = s.indexOf('\n')
  return nl < 0 ? s : s.slice(0, nl)
}

/** The subset of oclif's cached flag/arg metadata we keep (no functions, no parse hooks). */
function toFlagDoc(name: string, f: Command.Flag.Cached): FlagDoc {
  const o = f as unknown as Record<string, unknown>
  return {
    name,
    char: typeof o.char === 'string' ? o.char : undefined,
    type: o.type === 'boolean' ? 'boolean' : 'option',
    summary: typeof o.summary === 'string' ? o.summary : undefined,
    description: typeof o.description === 'string' ? o.description : undefined,
    helpValue: o.helpValue as string | string[] | undefined,
    options: Array.isArray(o.options) ? (o.options as unknown[]).map(String) : undefined,
    default: o.default,
    multiple: o.multiple === true,
    required: o.required === true,
    env: typeof o.env === 'string' ? o.env : undefined,
    helpGroup: typeof o.helpGroup === 'string' ? o.helpGroup : undefined,
    hidden: o.hidden === true,
    allowNo: o.allowNo === true,
  }
}

/**
 * Every command oclif finds for the package at `root` (its package.json `oclif.commands`:
 * dist/commands, so build first), as plain data.
 */
export async function loadCommands(root: string = PACKAGE_ROOT): Promise<CommandsInput> {
  const config = await Config.load({root})
  const commands: CommandDoc[] = config.commands
    .filter((c) => c.pluginType === 'core' || c.pluginName === config.name)
    .map((c) => ({
      id: c.id,
      summary: c.summary,
      description: c.description,
      usage: c.usage as string | string[] | undefined,
      examples: c.examples as ExampleDoc[] | undefined,
      strict: c.strict,
      hidden: c.hidden,
      aliases: [...(c.aliases ?? [])].sort(),
      args: Object.fromEntries(Object.entries(c.args ?? {}).map(([k, a]) => [k, {
        name: a.name ?? k,
        description: a.description,
        required: a.required === true,
        options: a.options ? [...a.options].map(String) : undefined,
        default: a.default,
      }])),
      flags: Object.fromEntries(Object.entries(c.flags ?? {}).map(([k, f]) => [k, toFlagDoc(k, f)])),
    }))
  // oclif only warns when a command module fails to import, and leaves the command out: a
  // reference missing a command must not be written, so every module must have become a command
  const missing = commandFilesIn(root, config.pjson.oclif.commands).filter((id) => !commands.some((c) => c.id === id))
  if (missing.length > 0) throw new Error(`command(s) that oclif could not load (see its warning above): ${missing.join(', ')}`)
  // the topics package.json declares (oclif also derives one per command folder, described by
  // whichever command it found first: not worth documenting)
  const topics: Record<string, string> = {}
  const declared = (config.pjson.oclif.topics ?? {}) as Record<string, {description?: string; hidden?: boolean}>
  for (const [name, t] of Object.entries(declared)) if (t.description && !t.hidden) topics[name] = t.description
  const exitCodes = Object.entries(EXIT)
    .map(([name, c]) => ({code: c as number, name, meaning: EXIT_DESCRIPTIONS[name] ?? '(undocumented)'}))
    .sort((a, b) => a.code - b.code)
  return {bin: config.bin, topicSeparator: config.topicSeparator === ' ' ? ' ' : (config.topicSeparator ?? ':'), topics, commands, exitCodes}
}

/** Command ids of the command modules under package.json's `oclif.commands` folder ('rules/lint.js' -> 'rules:lint'). */
export function commandFilesIn(root: string, commands: unknown): string[] {
  if (typeof commands !== 'string') return []
  const dir = path.resolve(root, commands)
  if (!existsSync(dir)) return []
  const ids: string[] = []
  const walk = (sub: string[]): void => {
    for (const e of readdirSync(path.join(dir, ...sub), {withFileTypes: true})) {
      if (e.isDirectory()) walk([...sub, e.name])
      else if (/\.js$/.test(e.name) && !/\.(test|d)\.js$/.test(e.name)) {
        const base = e.name.replace(/\.js$/, '')
        ids.push([...sub, ...(base === 'index' ? [] : [base])].join(':'))
      }
    }
  }
  walk([])
  return ids.filter((id) => id !== '').sort()
}

/** The inputs of rule-language.md, read from the code and the schema file. */
export function loadRuleLanguageInput(root: string = PACKAGE_ROOT): RuleLanguageInput {
  const schema = JSON.parse(readFileSync(path.join(root, 'rules/schema/rule.schema.json'), 'utf8')) as SchemaNode
  return {
    schema,
    transformNames: [...transforms.keys()],
    transformDescriptions: TRANSFORM_DESCRIPTIONS,
    analyzers: analyzerFactories.map((f) => ({protocol: f.protocol, transport: f.transport, ports: f.ports, fields: f.fields})),
    anomalyFields,
    example: {file: EXAMPLE_RULE, text: readFileSync(path.join(root, EXAMPLE_RULE), 'utf8')},
  }
}

/** Write docs/rule-language.md and docs/commands.md into `outDir`; returns the files written. */
export async function generateDocs(outDir: string = DOCS_DIR, root: string = PACKAGE_ROOT): Promise<string[]> {
  const files: [string, string][] = [
    ['rule-language.md', renderRuleLanguage(loadRuleLanguageInput(root))],
    ['commands.md', renderCommands(await loadCommands(root))],
  ]
  if (!existsSync(outDir)) mkdirSync(outDir, {recursive: true})
  const written: string[] = []
  for (const [name, text] of files) {
    const file = path.join(outDir, name)
    writeFileSync(file, text)
    written.push(file)
  }
  return written
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const out = process.argv[2] !== undefined ? path.resolve(process.argv[2]) : DOCS_DIR
  generateDocs(out).then(
    (files) => {
      for (const f of files) process.stdout.write(`wrote ${path.relative(process.cwd(), f) || f}\n`)
    },
    (err: unknown) => {
      process.stderr.write(`gen-docs: ${err instanceof Error ? err.message : String(err)}\n`)
      process.exitCode = 1
    },
  )
}
