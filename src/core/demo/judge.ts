/**
 * Verdicts of the demo, from what the client saw and what the gateway wrote in the event log.
 * Pure functions over parsed data: never throw, tolerate malformed lines.
 */
import type {ClientResult} from './client.js'

/** Most event-log lines the demo reads back (the demo writes a few hundred). */
export const MAX_EVENT_LINES = 200_000

/** The fields of an EVE event the demo uses. */
export interface DemoEvent {
  event_type?: string
  src_ip?: string
  src_port?: number
  dest_ip?: string
  dest_port?: number
  patchpoint?: {action?: string; rule_id?: string; shadow?: boolean}
}

export interface ExploitVerdict extends ClientResult {
  /** enforced (fix or drop) by the gateway */
  stopped: boolean
  /** the action of the alert on this connection for this rule ('' = none) */
  action: string
  /** every rule that fired on the connection */
  rules_fired: string[]
}

/** Parse JSON lines, skipping malformed ones; at most `max` lines. */
export function parseEvents(text: string, max = MAX_EVENT_LINES): DemoEvent[] {
  const out: DemoEvent[] = []
  let start = 0
  while (start < text.length && out.length < max) {
    let nl = text.indexOf('\n', start)
    if (nl < 0) nl = text.length
    const line = text.slice(start, nl).trim()
    start = nl + 1
    if (line === '') continue
    try {
      const v = JSON.parse(line) as unknown
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) out.push(v as DemoEvent)
    } catch {
      // a torn last line while the gateway writes: skip
    }
  }
  return out
}

/**
 * A sample is stopped when an alert for its connection (our source port, the server's address
 * and port) says fix or drop and is not shadowed. The sample's own rule is preferred; another
 * enforcing rule on the same connection also counts (it still never reached the server intact).
 */
export function judgeExploits(results: readonly ClientResult[], events: readonly DemoEvent[]): ExploitVerdict[] {
  const byConn = new Map<string, DemoEvent[]>()
  for (const e of events) {
    if (e.event_type !== 'alert' || typeof e.src_port !== 'number') continue
    const k = `${e.src_port}>${e.dest_ip ?? ''}:${e.dest_port ?? ''}`
    const list = byConn.get(k)
    if (list) list.push(e)
    else byConn.set(k, [e])
  }
  return results.map((r) => {
    const alerts = r.local_port > 0 ? byConn.get(`${r.local_port}>${r.ip}:${r.port}`) ?? [] : []
    const enforced = (e: DemoEvent) => (e.patchpoint?.action === 'fix' || e.patchpoint?.action === 'drop') && e.patchpoint.shadow !== true
    const own = alerts.find((e) => e.patchpoint?.rule_id === r.rule)
    const stopper = own !== undefined && enforced(own) ? own : alerts.find(enforced)
    return {
      ...r,
      stopped: stopper !== undefined,
      action: (stopper ?? own)?.patchpoint?.action ?? '',
      rules_fired: [...new Set(alerts.map((e) => e.patchpoint?.rule_id ?? '?'))],
    }
  })
}

/** Alerts per action in the event log, as `report` counts them (shadow alerts apart). */
export function countAlerts(events: readonly DemoEvent[]): {alerts: number; fix: number; log: number; drop: number; shadow: number} {
  const c = {alerts: 0, fix: 0, log: 0, drop: 0, shadow: 0}
  for (const e of events) {
    if (e.event_type !== 'alert') continue
    c.alerts++
    if (e.patchpoint?.shadow === true) c.shadow++
    else if (e.patchpoint?.action === 'fix') c.fix++
    else if (e.patchpoint?.action === 'drop') c.drop++
    else if (e.patchpoint?.action === 'log') c.log++
  }
  return c
}
