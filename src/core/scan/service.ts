/**
 * Service detection on one open TCP port: the probes of `rules/probes/` in order (NULL first,
 * then those hinted for the port, then the rest by rarity), each on a fresh connection, until a
 * hard match. A soft match narrows the later probes to the ones that can name that service. A
 * TLS answer repeats the whole sequence inside TLS (tunnel 'ssl'). The transport is injected
 * (`Exchange`), so tests run against fakes or local servers.
 */
import {matchResponse, probeOrder, responseText, type ProbeSet, type ServiceMatch} from './probes.js'
import {netExchange, type Exchange} from './connect.js'

export const SERVICE_LIMITS = {
  /** time spent on one port at most, ms */
  portBudgetMs: 20_000,
  /** NULL-probe wait when another probe is hinted for the port (a banner comes at once or not at all) */
  hintedNullWaitMs: 600,
  /** printable banner chars kept */
  bannerChars: 160,
}

export interface DetectOptions {
  probes: ProbeSet
  exchange?: Exchange
  /** highest rarity tried on ports no probe is hinted for (default 7) */
  intensity?: number
  budgetMs?: number
  /** scale every probe wait (tests, fast LANs), default 1 */
  waitScale?: number
}

export interface DetectResult extends Partial<ServiceMatch> {
  port: number
  /** service name, 'unknown' when nothing matched */
  service: string
  tunnel?: 'ssl'
  /** printable start of the first response */
  banner?: string
  /** probes sent */
  tried: number
}

function printable(data: Uint8Array): string | undefined {
  if (data.length === 0) return undefined
  const s = responseText(data.subarray(0, SERVICE_LIMITS.bannerChars * 2)).replace(/[^\x20-\x7e]+/g, ' ').trim()
  return s === '' ? undefined : s.slice(0, SERVICE_LIMITS.bannerChars)
}

async function runProbes(host: string, port: number, tls: boolean, o: DetectOptions, deadline: number, counter: {tried: number; banner?: string}): Promise<ServiceMatch | null> {
  const exchange = o.exchange ?? netExchange
  const scale = o.waitScale ?? 1
  const order = probeOrder(o.probes, port, {intensity: o.intensity, tls})
  const hintedElsewhere = order.some((p) => p.bytes.length > 0 && (p.ports.has(port) || (tls && p.tlsPorts.has(port))))
  let soft: ServiceMatch | null = null
  for (const p of order) {
    const left = deadline - Date.now()
    if (left <= 0) break
    if (soft && !p.services.has(soft.service)) continue
    const nul = p.bytes.length === 0
    const wait = Math.min(left, Math.max(50, Math.round((nul && hintedElsewhere ? SERVICE_LIMITS.hintedNullWaitMs : p.waitMs) * scale)))
    const onlyService = soft?.service
    counter.tried++
    const res = await exchange({
      host, port, send: p.bytes, tls, waitMs: wait,
      done: (d) => {
        const m = matchResponse(p.allMatchers, d, onlyService)
        return m !== null && !m.soft && m.product !== undefined
      },
    })
    if (res.connectFailed) {
      if (tls) return soft
      // the port went away (or a TLS handshake failed): nothing more to learn
      if (counter.tried === 1) return null
      continue
    }
    if (counter.banner === undefined) counter.banner = printable(res.data)
    const m = matchResponse(p.allMatchers, res.data, onlyService)
    if (m && !m.soft) return m
    if (m && !soft) soft = m
  }
  return soft
}

/** Identify the service on host:port. Never throws. */
export async function detectService(host: string, port: number, o: DetectOptions): Promise<DetectResult> {
  const deadline = Date.now() + (o.budgetMs ?? SERVICE_LIMITS.portBudgetMs)
  const counter: {tried: number; banner?: string} = {tried: 0}
  let m: ServiceMatch | null = null
  try {
    m = await runProbes(host, port, false, o, deadline, counter)
    if (m?.service === 'ssl') {
      const inner = await runProbes(host, port, true, o, deadline, counter)
      if (inner) return {...inner, port, tunnel: 'ssl', extra: [inner.extra, m.extra].filter(Boolean).join('; ') || undefined, banner: counter.banner, tried: counter.tried}
      return {...m, port, tunnel: 'ssl', banner: counter.banner, tried: counter.tried}
    }
  } catch {
    // a bug in a transport must not end a scan: the port stays "unknown"
  }
  if (!m) return {port, service: 'unknown', banner: counter.banner, tried: counter.tried}
  return {...m, port, banner: counter.banner, tried: counter.tried}
}
