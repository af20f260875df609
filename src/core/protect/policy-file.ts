/**
 * `policy.yaml` in the project: the human-edited protection policy. `patchpoint protect` edits
 * it (keeping comments and the order of what it does not touch), an admin may too; `protect`
 * compiles it into `.patchpoint/policy.json` for `run`.
 *
 *   version: 1
 *   default_action: fix            # fix | log | drop (absent: each rule's own action)
 *   services:
 *     192.0.2.10:80/tcp:           # HOST:PORT/tcp|udp, [IPv6]:PORT/tcp
 *       rules: [recommended]       # rule ids, and/or `recommended` (what `protect` recommends)
 *       action: drop               # for this service (absent: default_action)
 *       shadow: true               # judge and log, never enforce
 *       rule_actions:              # per-rule overrides
 *         PP-2021-41773: log
 *     192.0.2.20/rpc:100003:       # an ONC RPC program: follows its port
 *       rules: [recommended]
 *     192.0.2.30/dcerpc:12345778-1234-abcd-ef00-0123456789ac:
 *       rules: [PP-X]
 *
 * Validated with a JSON Schema (ajv, through parseYamlWithSchema) plus semantic checks (key
 * syntax, rule ids), every problem as `file:line:col: message`.
 */
import {isIP} from 'node:net'
import {isMap, isScalar, LineCounter, parseDocument, type Document} from 'yaml'
import type {Action} from '../rules/types.js'
import {didYouMean, parseYamlWithSchema, type YamlDiagnostic} from '../project/yaml-schema.js'

export const PROTECT_FILE_NAME = 'policy.yaml'
/** Most assignments in one policy.yaml (the compiled policy allows MAX_SERVICES services). */
export const MAX_ASSIGNMENTS = 4096
/** Most rule ids (and per-rule actions) per assignment. */
export const MAX_ASSIGNED_RULES = 1024
export const RECOMMENDED = 'recommended'
export const ACTIONS: readonly Action[] = ['fix', 'log', 'drop']

export interface Assignment {
  rules: string[]
  action?: Action
  shadow?: boolean
  rule_actions?: Record<string, Action>
}

export interface ProtectFile {
  version?: number
  default_action?: Action
  services: Record<string, Assignment>
}

export type AssignmentKey =
  | {kind: 'port'; host: string; port: number; proto: 'tcp' | 'udp'}
  | {kind: 'rpc'; host: string; program: number}
  | {kind: 'dcerpc'; host: string; uuid: string}

const RULE_ID = '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'

export const protectFileSchema = {
  $id: 'https://patchpoint.dev/schema/protect-policy.json',
  type: 'object',
  additionalProperties: false,
  properties: {
    version: {enum: [1]},
    default_action: {enum: [...ACTIONS]},
    services: {
      type: 'object',
      maxProperties: MAX_ASSIGNMENTS,
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['rules'],
        properties: {
          rules: {type: 'array', maxItems: MAX_ASSIGNED_RULES, items: {type: 'string', pattern: RULE_ID}},
          action: {enum: [...ACTIONS]},
          shadow: {type: 'boolean'},
          rule_actions: {
            type: 'object',
            maxProperties: MAX_ASSIGNED_RULES,
            propertyNames: {pattern: RULE_ID},
            additionalProperties: {enum: [...ACTIONS]},
          },
        },
      },
    },
  },
} as const

/** `HOST:PORT[/tcp|udp]`, `[v6]:PORT[/proto]`, `HOST/rpc:N`, `HOST/dcerpc:UUID`. */
export function parseAssignmentKey(text: string): AssignmentKey | undefined {
  const t = text.trim()
  const prog = /^(.+)\/(rpc|dcerpc):([0-9A-Za-z-]+)$/.exec(t)
  if (prog) {
    const host = unbracket(prog[1])
    if (isIP(host) === 0) return undefined
    if (prog[2] === 'rpc') {
      if (!/^\d{1,10}$/.test(prog[3]) || Number(prog[3]) > 0xffffffff) return undefined
      return {kind: 'rpc', host, program: Number(prog[3])}
    }
    if (!/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(prog[3])) return undefined
    return {kind: 'dcerpc', host, uuid: prog[3].toLowerCase()}
  }
  const m = /^(\[[0-9A-Fa-f:.]+\]|[0-9.]+):(\d{1,5})(?:\/(tcp|udp))?$/.exec(t)
  if (!m) return undefined
  const host = unbracket(m[1])
  const port = Number(m[2])
  if (isIP(host) === 0 || port < 1 || port > 65535) return undefined
  return {kind: 'port', host, port, proto: (m[3] as 'tcp' | 'udp' | undefined) ?? 'tcp'}
}

function unbracket(h: string): string {
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h
}

/** The canonical text of a key (the form `protect` writes). */
export function formatAssignmentKey(k: AssignmentKey): string {
  const h = k.host.includes(':') ? `[${k.host}]` : k.host
  if (k.kind === 'port') return `${h}:${k.port}/${k.proto}`
  return k.kind === 'rpc' ? `${h}/rpc:${k.program}` : `${h}/dcerpc:${k.uuid}`
}

export interface ParsedProtectFile {
  ok: boolean
  value?: ProtectFile
  diagnostics: YamlDiagnostic[]
}

/**
 * Parse and validate policy.yaml text. `knownRules` (when given) makes unknown rule ids errors.
 * Never throws.
 */
export function parseProtectFile(text: string, file: string, knownRules?: ReadonlySet<string>): ParsedProtectFile {
  const r = parseYamlWithSchema<ProtectFile>(text, file, protectFileSchema, {
    emptyValue: {},
    prepare: (d) => {
      if (d && typeof d === 'object' && !Array.isArray(d)) {
        const o = d as Record<string, unknown>
        if (o.services === null || o.services === undefined) o.services = {}
      }
      return d
    },
  })
  if (!r.ok || !r.value) return {ok: false, diagnostics: r.diagnostics}
  const diags = [...r.diagnostics]
  const at = (pointer: string) => r.locate?.(pointer) ?? {line: 1, col: 1}
  const err = (pointer: string, message: string, hint?: string) => {
    diags.push({file, ...at(pointer), message, hint, pointer, severity: 'error', code: 'semantic'})
  }
  const esc = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1')
  // key positions (locate() points at values; a bad key is reported where the key is)
  const lc = new LineCounter()
  const doc = parseDocument(text, {lineCounter: lc})
  const svcMap = doc.get('services', true)
  const keyAt = (key: string): {line: number; col: number} => {
    if (isMap(svcMap)) {
      for (const it of svcMap.items) {
        if (isScalar(it.key) && String(it.key.value) === key && it.key.range) return lc.linePos(it.key.range[0])
      }
    }
    return at(`/services/${esc(key)}`)
  }
  const canon = new Map<string, string>()
  const known = knownRules ? [...knownRules] : []
  for (const [key, a] of Object.entries(r.value.services)) {
    const ptr = `/services/${esc(key)}`
    const k = parseAssignmentKey(key)
    if (!k) {
      diags.push({file, ...keyAt(key), message: `services: '${key}' is not HOST:PORT/tcp|udp, HOST/rpc:PROGRAM or HOST/dcerpc:UUID`, hint: 'e.g. 192.0.2.10:80/tcp', pointer: ptr, severity: 'error', code: 'semantic'})
      continue
    }
    const c = formatAssignmentKey(k)
    const prev = canon.get(c)
    if (prev !== undefined) diags.push({file, ...keyAt(key), message: `services: '${key}' is the same service as '${prev}'`, pointer: ptr, severity: 'error', code: 'semantic'})
    canon.set(c, key)
    const check = (id: string, p: string) => {
      if (knownRules && id !== RECOMMENDED && !knownRules.has(id)) {
        const guess = didYouMean(id, known)
        err(p, `services.${key}: unknown rule '${id}'`, guess ? `did you mean '${guess}'?` : 'see `patchpoint rules list`')
      }
    }
    a.rules.forEach((id, i) => check(id, `${ptr}/rules/${i}`))
    if (a.rules.length === 0) err(`${ptr}/rules`, `services.${key}.rules: empty (list rule ids or 'recommended', or remove the service)`)
    for (const id of Object.keys(a.rule_actions ?? {})) {
      if (id === RECOMMENDED) err(`${ptr}/rule_actions/${esc(id)}`, `services.${key}.rule_actions: '${RECOMMENDED}' is not a rule id`)
      else check(id, `${ptr}/rule_actions/${esc(id)}`)
    }
  }
  diags.sort((a, b) => a.line - b.line || a.col - b.col)
  const ok = !diags.some((d) => d.severity === 'error')
  return {ok, value: ok ? r.value : undefined, diagnostics: diags}
}

const HEADER = `# patchpoint protection policy: which virtual patches protect which service.
# Edited by \`patchpoint protect\` and by hand; \`patchpoint protect\` compiles it into
# .patchpoint/policy.json, which \`patchpoint run\` enforces (SIGHUP reloads it).
#
# services:
#   HOST:PORT/tcp:             (or HOST/rpc:PROGRAM, HOST/dcerpc:UUID: follows the port)
#     rules: [recommended]     rule ids and/or 'recommended'
#     action: fix|log|drop     default: default_action, else each rule's own
#     shadow: true             log what would have been blocked, change nothing
#     rule_actions: {ID: log}  per-rule override
`

/** Assignment with keys in a fixed order and empty parts left out. */
export function canonicalAssignment(a: Assignment): Assignment {
  const out: Assignment = {rules: [...new Set(a.rules)]}
  if (a.action !== undefined) out.action = a.action
  if (a.shadow !== undefined) out.shadow = a.shadow
  const ra = Object.entries(a.rule_actions ?? {}).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
  if (ra.length > 0) out.rule_actions = Object.fromEntries(ra)
  return out
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}

/**
 * New policy.yaml text for `next`, editing `oldText` in place (comments and the order of the
 * entries not changed survive). Returns oldText itself when nothing changed.
 */
export function renderProtectFile(oldText: string | undefined, prev: ProtectFile, next: ProtectFile): string {
  const doc: Document = oldText !== undefined && oldText.trim() !== '' ? parseDocument(oldText) : parseDocument(HEADER + 'version: 1\nservices: {}\n')
  let touched = oldText === undefined || oldText.trim() === ''
  if (prev.default_action !== next.default_action) {
    if (next.default_action === undefined) doc.delete('default_action')
    else doc.set('default_action', next.default_action)
    touched = true
  }
  if (!isMap(doc.get('services'))) {
    doc.set('services', doc.createNode({}))
    touched = true
  }
  const services = doc.get('services') as import('yaml').YAMLMap
  services.flow = false
  for (const key of Object.keys(prev.services)) {
    if (!(key in next.services)) {
      services.delete(key)
      touched = true
    }
  }
  for (const [key, a] of Object.entries(next.services)) {
    const old = prev.services[key]
    if (old && sameJson(canonicalAssignment(old), canonicalAssignment(a))) continue
    const node = doc.createNode(canonicalAssignment(a)) as import('yaml').YAMLMap
    const rules = node.get('rules', true) as unknown as {flow?: boolean} | undefined
    if (rules) rules.flow = true
    services.set(key, node)
    touched = true
  }
  if (!touched) return oldText ?? ''
  if (services.items.length === 0) services.flow = true
  return doc.toString({lineWidth: 0})
}
