/**
 * Outbound HTTP whitelist: a protected server that starts an HTTP request itself (it is the
 * flow's client) may only reach allowed hosts. A compromised web server fetching a second stage,
 * an SSRF, or a reverse shell over HTTP shows up as a request from a server to a host nobody
 * listed.
 *
 * The target is every host the request names: the absolute-form URI's authority, the CONNECT
 * target (authority-form), and each Host header. All must be allowed (a request whose Host and
 * URI disagree cannot slip through on the allowed one). No host at all is not allowed.
 *
 * Allow entries: `example.com` (exactly that host), `*.example.com` (any subdomain, not
 * example.com itself), an address or a CIDR block (for requests to IP literals).
 * Reports `protection.outbound_not_allowed` (type 'protection') on the request's flow.
 */
import type {Pdu} from '../analyzers/types.js'
import type {EngineFlow, ProtectionReport} from '../engine/engine.js'
import {parseIp} from '../packet/address.js'
import {inCidr, parseCidr} from '../engine/session.js'

/** Client addresses whose "is it a protected server" answer is memoised. */
export const MAX_SERVER_CACHE = 4096
/** Host names checked per request (Host headers beyond it are ignored; an anomaly says so). */
export const MAX_HOSTS_PER_REQUEST = 8

interface Net {
  net: Uint8Array
  bits: number
}

export interface OutboundOptions {
  servers: readonly string[]
  allow: readonly string[]
}

export class OutboundHttp {
  private readonly servers: Net[] = []
  private readonly exact = new Set<string>()
  private readonly suffixes: string[] = []
  private readonly nets: Net[] = []
  private readonly cache = new Map<string, boolean>()
  readonly enabled: boolean

  constructor(opts: OutboundOptions) {
    for (const s of opts.servers) {
      const c = parseCidr(s.trim())
      if (c) this.servers.push(c)
    }
    for (const raw of opts.allow) {
      const a = raw.trim().toLowerCase().replace(/\.$/, '')
      if (a.startsWith('*.')) this.suffixes.push(a.slice(1))
      else if (/^[0-9a-f:.]+(\/\d+)?$/.test(a) && (a.includes('/') || parseIp(a) !== null)) {
        const c = parseCidr(a)
        if (c) this.nets.push(c)
        else this.exact.add(a)
      } else this.exact.add(a)
    }
    this.enabled = this.servers.length > 0
  }

  /** is `ip` one of the protected servers? */
  isServer(ip: string): boolean {
    let r = this.cache.get(ip)
    if (r !== undefined) return r
    const addr = parseIp(ip)
    r = addr !== null && this.servers.some((n) => inCidr(addr, n.net, n.bits))
    if (this.cache.size >= MAX_SERVER_CACHE) this.cache.clear()
    this.cache.set(ip, r)
    return r
  }

  /** may a protected server reach `host` (a Host header value or URI authority, port allowed)? */
  allowed(host: string): boolean {
    const h = hostOnly(host)
    if (h === '') return false
    if (this.exact.has(h)) return true
    for (const s of this.suffixes) if (h.length > s.length && h.endsWith(s)) return true
    if (this.nets.length > 0) {
      const addr = parseIp(h)
      if (addr && this.nets.some((n) => inCidr(addr, n.net, n.bits))) return true
    }
    return false
  }

  onPdu(pdu: Pdu, flow: EngineFlow, report: ProtectionReport): void {
    if (!this.enabled || pdu.protocol !== 'http' || pdu.kind !== 'request' || pdu.dir !== 'toserver') return
    if (!this.isServer(flow.clientIp)) return
    const hosts = requestHosts(pdu)
    let bad: string | undefined
    if (hosts.length === 0) bad = ''
    for (const h of hosts) {
      if (!this.allowed(h)) {
        bad = h
        break
      }
    }
    if (bad === undefined) return
    report({type: 'protection', event: 'protection.outbound_not_allowed', detail: {host: bad.slice(0, 253), server: flow.clientIp}}, flow)
  }
}

/** every host a request names: absolute URI / CONNECT authority, then Host headers */
export function requestHosts(pdu: Pdu): string[] {
  const out: string[] = []
  const uriHost = pdu.fields.get('http.uri.host')
  const method = pdu.fields.get('http.method')
  const m = method && !Array.isArray(method) ? String(method.v).toUpperCase() : ''
  if (uriHost !== undefined && !Array.isArray(uriHost)) out.push(String(uriHost.v))
  else if (m === 'CONNECT') {
    const raw = pdu.fields.get('http.uri.raw')
    if (raw !== undefined && !Array.isArray(raw)) out.push(String(raw.v))
  }
  const hh = pdu.fields.get('http.header.host')
  if (hh !== undefined) {
    const list = Array.isArray(hh) ? hh : [hh]
    for (let i = 0; i < list.length && out.length < MAX_HOSTS_PER_REQUEST; i++) out.push(String(list[i].v))
  }
  return out
}

/** `Host: Example.COM.:8080` -> `example.com`; `[2001:db8::1]:443` -> `2001:db8::1`; userinfo dropped */
export function hostOnly(v: string): string {
  let h = v.trim().toLowerCase()
  const at = h.lastIndexOf('@')
  if (at >= 0) h = h.slice(at + 1)
  if (h.startsWith('[')) {
    const close = h.indexOf(']')
    return close < 0 ? '' : h.slice(1, close)
  }
  const colon = h.indexOf(':')
  if (colon >= 0 && h.indexOf(':', colon + 1) < 0) h = h.slice(0, colon)
  while (h.endsWith('.')) h = h.slice(0, -1)
  return h
}
