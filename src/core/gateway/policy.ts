/**
 * The protection policy `run` enforces: which services (address, port, transport) the gateway
 * diverts into the engine, which rules apply to each and with what action. Until `protect`
 * writes it, `.patchpoint/policy.json` in the project is written by hand (or by tests):
 *
 *   {"services": [{"ip": "10.0.0.3", "port": 80, "proto": "tcp", "protocol": "http",
 *                  "rules": ["PP-SHELLSHOCK"], "action": "drop", "shadow": false}],
 *    "default_action": "fix"}
 *
 * The loader validates every field and names file, line and field on error (a UserError, exit
 * 2), and writes every address in the engine's text form (RFC 5952 for IPv6: `FD00:0006::0003`
 * is `fd00:6::3`), so every consumer (the engine's per-service judge and host policies, the
 * nftables sets, `protect`, status output) compares the same text the engine prints for flows.
 */
import fs from 'node:fs'
import path from 'node:path'
import {UserError} from '../errors.js'
import {formatIp, parseIp} from '../packet/address.js'
import type {Action} from '../rules/types.js'
import {DEFRAG_POLICIES, type DefragPolicy} from '../flow/defrag-policy.js'
import type {TcpOverlapPolicy} from '../flow/tcp.js'

/** Most services one policy may list (each becomes an nftables set element and a BPF term). */
export const MAX_SERVICES = 4096
/** Largest policy file read. */
export const MAX_POLICY_BYTES = 4 * 1024 * 1024
/** Most rule ids per service. */
export const MAX_RULES_PER_SERVICE = 1024

export const POLICY_FILE = 'policy.json'
const ACTIONS: readonly Action[] = ['fix', 'log', 'drop']

export interface ServicePolicy {
  ip: string
  port: number
  proto: 'tcp' | 'udp'
  /** analyzer to use (default: detected from content and port) */
  protocol?: string
  /** rule ids that apply (default: every rule of the protocol) */
  rules?: string[]
  /** overrides each rule's default action */
  action?: Action
  /** judge and alert, never enforce */
  shadow?: boolean
  /** per-rule action overrides (beat `action`); written by `protect` */
  rule_actions?: Record<string, Action>
  /** the ONC RPC program this port was assigned for (informational: `protect` follows its port) */
  rpc_program?: number
  /** the DCE/RPC interface uuid this port was assigned for (informational, like rpc_program) */
  dcerpc_interface?: string
}

/** Reassembly policies of one protected host (from its OS hints); written by `protect`. */
export interface HostNetPolicy {
  ip: string
  /** the OS family the policies come from */
  os?: string
  defrag: DefragPolicy
  tcp: TcpOverlapPolicy
}

/** TCP overlap policies a host entry may name. */
const TCP_OVERLAP: readonly TcpOverlapPolicy[] = ['first', 'last', 'bsd', 'linux', 'windows', 'solaris']
/** Most host entries one policy may list. */
export const MAX_POLICY_HOSTS = 65_536

export interface Policy {
  services: ServicePolicy[]
  /** action for services that set none (default: each rule's own) */
  default_action?: Action
  /** per-host defragmentation / TCP overlap policies (optional; written by `protect`) */
  hosts?: HostNetPolicy[]
}

export function policyPath(projectStateDir: string): string {
  return path.join(projectStateDir, POLICY_FILE)
}

/** the line (1-based) of a field path such as `services[2].ip` in the source text, if known */
export type LineOf = (field: string) => number | undefined

function failAt(file: string, lineOf: LineOf | undefined, field: string, msg: string): never {
  const line = lineOf?.(field)
  throw new UserError(`${file}${line === undefined ? '' : `:${line}`}: ${field}: ${msg}`, {
    code: 'POLICY_INVALID', suggestion: 'fix the policy file (see `patchpoint run --help` for its format)',
  })
}

/**
 * An address as the engine prints it, or null: IPv4 dotted quad (no leading zeros: `010.0.0.3`
 * is octal to some parsers and decimal to others) or IPv6 in any RFC 4291 form, no zone id.
 */
export function normalizeIp(ip: string): string | null {
  const b = parseIp(ip)
  return b === null ? null : formatIp(b)
}

/** Validate a parsed policy; `file` (and `lineOf`, its lines) name the source in errors. Throws UserError. */
export function validatePolicy(value: unknown, file: string, lineOf?: LineOf): Policy {
  // annotated, so that TypeScript narrows after each call
  const fail: (f: string, field: string, msg: string) => never = (f, field, msg) => failAt(f, lineOf, field, msg)
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(file, '(top)', 'must be an object')
  const obj = value as Record<string, unknown>
  for (const k of Object.keys(obj)) if (k !== 'services' && k !== 'default_action' && k !== 'hosts') fail(file, k, 'unknown field (expected services, default_action, hosts)')
  const out: Policy = {services: []}
  if (obj.default_action !== undefined) {
    if (!ACTIONS.includes(obj.default_action as Action)) fail(file, 'default_action', `must be one of ${ACTIONS.join(', ')}, got ${JSON.stringify(obj.default_action)}`)
    out.default_action = obj.default_action as Action
  }
  if (!Array.isArray(obj.services)) fail(file, 'services', 'must be an array')
  if (obj.services.length > MAX_SERVICES) fail(file, 'services', `at most ${MAX_SERVICES} services, got ${obj.services.length}`)
  const seen = new Set<string>()
  obj.services.forEach((s: unknown, i: number) => {
    const at = `services[${i}]`
    if (typeof s !== 'object' || s === null || Array.isArray(s)) fail(file, at, 'must be an object')
    const e = s as Record<string, unknown>
    for (const k of Object.keys(e)) {
      if (!['ip', 'port', 'proto', 'protocol', 'rules', 'action', 'shadow', 'rule_actions', 'rpc_program', 'dcerpc_interface'].includes(k)) fail(file, `${at}.${k}`, 'unknown field')
    }
    const ip = typeof e.ip === 'string' ? normalizeIp(e.ip) : null
    if (ip === null) fail(file, `${at}.ip`, `must be an IPv4 or IPv6 address, got ${JSON.stringify(e.ip)}`)
    if (typeof e.port !== 'number' || !Number.isInteger(e.port) || e.port < 1 || e.port > 65535) fail(file, `${at}.port`, `must be an integer 1-65535, got ${JSON.stringify(e.port)}`)
    if (e.proto !== 'tcp' && e.proto !== 'udp') fail(file, `${at}.proto`, `must be "tcp" or "udp", got ${JSON.stringify(e.proto)}`)
    const svc: ServicePolicy = {ip, port: e.port, proto: e.proto}
    if (e.protocol !== undefined) {
      if (typeof e.protocol !== 'string' || !/^[a-z0-9-]{1,32}$/.test(e.protocol)) fail(file, `${at}.protocol`, 'must be an analyzer name such as "http"')
      svc.protocol = e.protocol
    }
    if (e.rules !== undefined) {
      if (!Array.isArray(e.rules) || e.rules.some((r) => typeof r !== 'string' || r === '')) fail(file, `${at}.rules`, 'must be an array of rule ids')
      if (e.rules.length > MAX_RULES_PER_SERVICE) fail(file, `${at}.rules`, `at most ${MAX_RULES_PER_SERVICE} rule ids`)
      svc.rules = e.rules as string[]
    }
    if (e.action !== undefined) {
      if (!ACTIONS.includes(e.action as Action)) fail(file, `${at}.action`, `must be one of ${ACTIONS.join(', ')}, got ${JSON.stringify(e.action)}`)
      svc.action = e.action as Action
    }
    if (e.shadow !== undefined) {
      if (typeof e.shadow !== 'boolean') fail(file, `${at}.shadow`, 'must be true or false')
      svc.shadow = e.shadow
    }
    if (e.rule_actions !== undefined) {
      if (typeof e.rule_actions !== 'object' || e.rule_actions === null || Array.isArray(e.rule_actions)) fail(file, `${at}.rule_actions`, 'must be an object of rule id -> action')
      const ra = e.rule_actions as Record<string, unknown>
      if (Object.keys(ra).length > MAX_RULES_PER_SERVICE) fail(file, `${at}.rule_actions`, `at most ${MAX_RULES_PER_SERVICE} rule ids`)
      for (const [id, act] of Object.entries(ra)) {
        if (id === '' || !ACTIONS.includes(act as Action)) fail(file, `${at}.rule_actions.${id}`, `must be one of ${ACTIONS.join(', ')}, got ${JSON.stringify(act)}`)
      }
      svc.rule_actions = ra as Record<string, Action>
    }
    if (e.rpc_program !== undefined) {
      if (typeof e.rpc_program !== 'number' || !Number.isInteger(e.rpc_program) || e.rpc_program < 0 || e.rpc_program > 0xffffffff) fail(file, `${at}.rpc_program`, 'must be an RPC program number')
      svc.rpc_program = e.rpc_program
    }
    if (e.dcerpc_interface !== undefined) {
      if (typeof e.dcerpc_interface !== 'string' || !/^[0-9a-fA-F-]{36}$/.test(e.dcerpc_interface)) fail(file, `${at}.dcerpc_interface`, 'must be an interface uuid')
      svc.dcerpc_interface = e.dcerpc_interface
    }
    const key = serviceKey(svc.ip, svc.port, svc.proto)
    if (seen.has(key)) fail(file, at, `duplicate service ${svc.ip} ${svc.proto}/${svc.port}${e.ip !== ip ? ` (written ${JSON.stringify(e.ip)})` : ''}`)
    seen.add(key)
    out.services.push(svc)
  })
  if (obj.hosts !== undefined) {
    if (!Array.isArray(obj.hosts)) fail(file, 'hosts', 'must be an array')
    if (obj.hosts.length > MAX_POLICY_HOSTS) fail(file, 'hosts', `at most ${MAX_POLICY_HOSTS} hosts`)
    out.hosts = obj.hosts.map((h: unknown, i: number) => {
      const at = `hosts[${i}]`
      if (typeof h !== 'object' || h === null || Array.isArray(h)) fail(file, at, 'must be an object')
      const e = h as Record<string, unknown>
      for (const k of Object.keys(e)) if (!['ip', 'os', 'defrag', 'tcp'].includes(k)) fail(file, `${at}.${k}`, 'unknown field')
      const ip = typeof e.ip === 'string' ? normalizeIp(e.ip) : null
      if (ip === null) fail(file, `${at}.ip`, `must be an IPv4 or IPv6 address, got ${JSON.stringify(e.ip)}`)
      if (e.os !== undefined && typeof e.os !== 'string') fail(file, `${at}.os`, 'must be a string')
      if (!DEFRAG_POLICIES.includes(e.defrag as DefragPolicy)) fail(file, `${at}.defrag`, `must be one of ${DEFRAG_POLICIES.join(', ')}`)
      if (!TCP_OVERLAP.includes(e.tcp as TcpOverlapPolicy)) fail(file, `${at}.tcp`, `must be one of ${TCP_OVERLAP.join(', ')}`)
      const hp: HostNetPolicy = {ip, defrag: e.defrag as DefragPolicy, tcp: e.tcp as TcpOverlapPolicy}
      if (typeof e.os === 'string') hp.os = e.os
      return hp
    })
  }
  return out
}

export function serviceKey(ip: string, port: number, proto: 'tcp' | 'udp' | number): string {
  const p = proto === 6 ? 'tcp' : proto === 17 ? 'udp' : proto
  return `${p}|${ip}|${port}`
}

/** Read and validate a policy file (addresses normalised). Throws UserError naming the file, line and field. */
export function loadPolicy(file: string): Policy {
  let text: string
  try {
    const st = fs.statSync(file)
    if (st.size > MAX_POLICY_BYTES) failAt(file, undefined, '(file)', `larger than ${MAX_POLICY_BYTES} bytes`)
    text = fs.readFileSync(file, 'utf8')
  } catch (err) {
    if (err instanceof UserError) throw err
    throw new UserError(`${file}: cannot read the policy (${(err as NodeJS.ErrnoException).code ?? String(err)})`, {
      code: 'POLICY_MISSING',
      suggestion: 'write .patchpoint/policy.json in the project (see `patchpoint run --help`), or use --policy FILE',
    })
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    const msg = (err as Error).message
    const pos = /at position (\d+)/.exec(msg)
    const line = pos ? lineAt(text, Number(pos[1])) : undefined
    failAt(file, () => line, '(json)', msg)
  }
  return validatePolicy(parsed, file, (field) => fieldLine(text, field))
}

function lineAt(text: string, pos: number): number {
  let line = 1
  for (let i = 0; i < pos && i < text.length; i++) if (text.charCodeAt(i) === 10) line++
  return line
}

/**
 * The line of a field path (`services[2].ip`, `default_action`) in JSON text, or of its nearest
 * enclosing value present (a missing field is reported at its object): a scan of the text that
 * records where each value starts. Only run on an error. Undefined when the text does not scan.
 */
export function fieldLine(text: string, field: string): number | undefined {
  const lines = new Map<string, number>()
  let i = 0
  let line = 1
  const ws = () => {
    for (; i < text.length; i++) {
      const c = text[i]
      if (c === '\n') line++
      else if (c !== ' ' && c !== '\t' && c !== '\r') break
    }
  }
  const str = (): string => {
    const start = i
    i++
    for (; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++
    i++
    return JSON.parse(text.slice(start, i)) as string
  }
  const value = (p: string, depth: number): void => {
    ws()
    if (!lines.has(p)) lines.set(p, line)
    if (depth > 64) throw new Error('too deep')
    const c = text[i]
    if (c === '{') {
      i++
      ws()
      if (text[i] === '}') {
        i++
        return
      }
      for (;;) {
        ws()
        const keyLine = line
        const key = str()
        const kp = p === '' ? key : `${p}.${key}`
        lines.set(kp, keyLine)
        ws()
        i++ // ':'
        value(kp, depth + 1)
        ws()
        if (text[i++] !== ',') return
      }
    } else if (c === '[') {
      i++
      ws()
      if (text[i] === ']') {
        i++
        return
      }
      for (let n = 0; ; n++) {
        value(`${p}[${n}]`, depth + 1)
        ws()
        if (text[i++] !== ',') return
      }
    } else if (c === '"') str()
    else while (i < text.length && !/[\s,\]}]/.test(text[i])) i++
  }
  try {
    value('', 0)
  } catch {
    return undefined
  }
  for (let f = field; ; ) {
    const l = lines.get(f)
    if (l !== undefined) return l
    const cut = Math.max(f.lastIndexOf('.'), f.lastIndexOf('['))
    if (cut <= 0) return lines.get('')
    f = f.slice(0, cut)
  }
}
