/**
 * The protection policy `run` enforces: which services (address, port, transport) the gateway
 * diverts into the engine, which rules apply to each and with what action. Until `protect`
 * writes it, `.patchpoint/policy.json` in the project is written by hand (or by tests):
 *
 *   {"services": [{"ip": "10.0.0.3", "port": 80, "proto": "tcp", "protocol": "http",
 *                  "rules": ["PP-SHELLSHOCK"], "action": "drop", "shadow": false}],
 *    "default_action": "fix"}
 *
 * The loader validates every field and names file and field on error (a UserError, exit 2).
 */
import fs from 'node:fs'
import path from 'node:path'
import net from 'node:net'
import {UserError} from '../errors.js'
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

function fail(file: string, field: string, msg: string): never {
  throw new UserError(`${file}: ${field}: ${msg}`, {code: 'POLICY_INVALID', suggestion: 'fix the policy file (see `patchpoint run --help` for its format)'})
}

/** Validate a parsed policy; `file` names the source in errors. Throws UserError. */
export function validatePolicy(value: unknown, file: string): Policy {
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
    if (typeof e.ip !== 'string' || net.isIP(e.ip) === 0) fail(file, `${at}.ip`, `must be an IPv4 or IPv6 address, got ${JSON.stringify(e.ip)}`)
    if (typeof e.port !== 'number' || !Number.isInteger(e.port) || e.port < 1 || e.port > 65535) fail(file, `${at}.port`, `must be an integer 1-65535, got ${JSON.stringify(e.port)}`)
    if (e.proto !== 'tcp' && e.proto !== 'udp') fail(file, `${at}.proto`, `must be "tcp" or "udp", got ${JSON.stringify(e.proto)}`)
    const svc: ServicePolicy = {ip: e.ip, port: e.port, proto: e.proto}
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
    if (seen.has(key)) fail(file, at, `duplicate service ${svc.ip} ${svc.proto}/${svc.port}`)
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
      if (typeof e.ip !== 'string' || net.isIP(e.ip) === 0) fail(file, `${at}.ip`, `must be an IPv4 or IPv6 address, got ${JSON.stringify(e.ip)}`)
      if (e.os !== undefined && typeof e.os !== 'string') fail(file, `${at}.os`, 'must be a string')
      if (!DEFRAG_POLICIES.includes(e.defrag as DefragPolicy)) fail(file, `${at}.defrag`, `must be one of ${DEFRAG_POLICIES.join(', ')}`)
      if (!TCP_OVERLAP.includes(e.tcp as TcpOverlapPolicy)) fail(file, `${at}.tcp`, `must be one of ${TCP_OVERLAP.join(', ')}`)
      const hp: HostNetPolicy = {ip: e.ip, defrag: e.defrag as DefragPolicy, tcp: e.tcp as TcpOverlapPolicy}
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

/** Read and validate a policy file. Throws UserError naming the file (and the field). */
export function loadPolicy(file: string): Policy {
  let text: string
  try {
    const st = fs.statSync(file)
    if (st.size > MAX_POLICY_BYTES) fail(file, '(file)', `larger than ${MAX_POLICY_BYTES} bytes`)
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
    fail(file, '(json)', (err as Error).message)
  }
  return validatePolicy(parsed, file)
}
