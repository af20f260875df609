/**
 * `patchpoint run` as a function: loads the project's config, rules and policy, starts inline
 * mode and/or proxy mode, writes events (project event log + one line per event on stdout),
 * prints a periodic stats line, reloads on SIGHUP and tears down on SIGINT/SIGTERM. Resolves
 * when stopped. With a `view` (the terminal dashboard) the operator lines and events go to the
 * view instead of stdout, no stats line is printed, and the view reads the counters itself.
 */
import path from 'node:path'
import v8 from 'node:v8'
import {EventLog} from '../events/writer.js'
import type {EventSink, EveEvent} from '../events/eve.js'
import {eventsFilePath, loadConfig} from '../project/config.js'
import type {ProjectLocation} from '../project/find.js'
import {engineDetection} from '../engine/detection.js'
import {defaultGatewayId, hostPolicyFromConfig, tcpPolicyOf} from '../engine/session.js'
import type {DefragPolicy} from '../flow/defrag.js'
import {UserError} from '../errors.js'
import {loadPolicy, policyPath, type Policy} from './policy.js'
import {createAlarms} from '../alarms/index.js'
import {combinedHostPolicy} from './host-policy.js'
import {startInline, type InlineHandle} from './inline.js'
import {ProxyServer, parseProxySpec, type ProxyStats} from './proxy.js'
import type {ForwarderStats} from './forwarder.js'

/** What is running, told to a view once the gateway is up. */
export interface RunInfo {
  mode: string[]
  ifaces: string[]
  bridge?: string
  proxies: {listen: string; upstream: string}[]
  /** protected services in the policy (inline mode) */
  services: number
  failClosed: boolean
  /** Date.now() when ready */
  startedAt: number
}

/** The gateway's counters at one moment (copies: the view may keep them). */
export interface RunSnapshot {
  atMs: number
  forwarder?: ForwarderStats
  engine?: {flows: number; peakFlows: number; alerts: number; anomalies: number; flowsEvicted: number}
  proxy?: ProxyStats
  events: number
  rssBytes: number
  heapBytes: number
}

/**
 * A live view of the gateway (the terminal dashboard). `event` is called for every event on the
 * data path: it must stay O(1) (count, keep a reference); rendering happens on the view's timer,
 * which calls `snapshot()`. `stop()` stops the gateway exactly as SIGINT does.
 */
export interface RunView {
  event(ev: EveEvent): void
  /** an operator line that would otherwise go to stdout (setup, reload, stop) */
  line(line: string): void
  ready(info: RunInfo, snapshot: () => RunSnapshot, stop: () => void): void
}

export interface RunGatewayOptions {
  project?: ProjectLocation
  ifaces?: string[]
  bridge?: string
  force?: boolean
  failClosed?: boolean
  proxies?: string[]
  policyFile?: string
  /** '-' = stdout only */
  eventsFile?: string
  json?: boolean
  statsIntervalS?: number
  /** every line, the operator's and the events' (tests); default stdout, the operator's on stderr with `json` */
  out?: (line: string) => void
  /** resolves when this promise does (tests); default: SIGINT/SIGTERM */
  until?: Promise<void>
  /** the terminal dashboard: takes the lines, events and stats instead of stdout */
  view?: RunView
}

export interface RunGatewayResult {
  mode: string[]
  bridge?: string
  proxies?: {listen: string; upstream: string}[]
  stats: Record<string, number>
  events: number
  eventsWrittenTo: string | null
}

/** one plain line for an event (no TTY, no --json) */
export function eventLine(ev: EveEvent): string {
  const where = `${ev.src_ip ?? ''}:${ev.src_port ?? ''} -> ${ev.dest_ip ?? ''}:${ev.dest_port ?? ''}`
  if (ev.event_type === 'alert') {
    const pp = (ev as {patchpoint?: {action?: string; shadow?: boolean}}).patchpoint
    return `${ev.timestamp} ${pp?.action ?? ev.alert.action}${pp?.shadow ? ' (shadow)' : ''} ${ev.alert.signature} ${where}`
  }
  if (ev.event_type === 'anomaly') return `${ev.timestamp} anomaly ${ev.anomaly.event} ${where}`
  return `${ev.timestamp} ${ev.event_type} ${where}`
}

/**
 * V8 lets the old generation grow to about four times what was live after the last full GC. A
 * flood churns short-lived flows through it (each evicted flow is old garbage), and the gateway's
 * RSS grew to 384 MB for 62 MB live in a 1M-SYN flood through the engine; growing by 40% at most
 * kept the peak at 215 MB, and the run was no slower (the flood measured in-process, see the
 * issue 4 note). The engine's own caps bound what is live.
 */
export const HEAP_GROWING_PERCENT = 40

export async function runGateway(opts: RunGatewayOptions): Promise<RunGatewayResult> {
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`)
  const view = opts.view
  const stdout = (l: string) => process.stdout.write(l + '\n')
  // event and stats lines: stdout (JSON with --json)
  const emit = view ? (l: string) => view.line(l) : opts.out ?? stdout
  // the gateway's own lines (setup, ready, reload, stopped): stdout, but stderr with --json so that
  // stdout carries JSON only
  const out = view ? (l: string) => view.line(l) : opts.out ?? (opts.json ? (l: string) => process.stderr.write(l + '\n') : stdout)
  const ifaces = opts.ifaces ?? []
  const proxies = (opts.proxies ?? []).map(parseProxySpec)
  if (ifaces.length === 0 && proxies.length === 0) {
    throw new UserError('nothing to run: give --iface A,B (inline) or --proxy LISTEN=UPSTREAM', {suggestion: 'see `patchpoint run --help`'})
  }
  const config = opts.project ? await loadConfig(opts.project.configPath) : undefined
  const policyFile = opts.policyFile ?? (opts.project ? policyPath(opts.project.stateDir) : undefined)
  let policy: Policy = {services: []}
  if (ifaces.length > 0) {
    if (!policyFile) throw new UserError('inline mode needs a policy: run inside a project (.patchpoint/policy.json) or give --policy FILE')
    policy = loadPolicy(policyFile)
  } else if (policyFile && opts.policyFile) policy = loadPolicy(policyFile)

  let sink: EventSink | null = null
  let writtenTo: string | null = null
  if (opts.eventsFile && opts.eventsFile !== '-') {
    sink = new EventLog(path.resolve(opts.eventsFile))
    writtenTo = path.resolve(opts.eventsFile)
  } else if (!opts.eventsFile && opts.project && config) {
    writtenTo = eventsFilePath(config, opts.project.dir)
    sink = new EventLog(writtenTo, {rotateBytes: config.events.rotate_bytes, keep: config.events.keep})
  }
  let events = 0
  const gateway = config?.gateway.id ?? defaultGatewayId()
  // log and alarm: alarms go out on their own queue, never blocking the data path
  const alarms = createAlarms(config?.alarms, {gateway})
  const onEvent = (ev: EveEvent) => {
    events++
    sink?.write(ev)
    alarms.offer(ev)
    if (view) view.event(ev)
    else emit(opts.json ? JSON.stringify(ev) : eventLine(ev))
  }
  const detectionOpts = {protections: config?.protections}
  let detection = await engineDetection(opts.project, detectionOpts)
  const modes: string[] = []
  let inline: InlineHandle | null = null
  let proxy: ProxyServer | null = null
  let proxyAddrs: {listen: string; upstream: string}[] | undefined
  const cleanup = async () => {
    inline?.stop()
    await proxy?.close()
    await alarms.close()
    await sink?.close()
  }
  try {
    if (ifaces.length > 0) {
      inline = startInline({
        ifaces, bridge: opts.bridge, force: opts.force, failClosed: opts.failClosed, policy, detection, onEvent,
        engine: {
          defragPolicy: (config?.engine.defrag_policy ?? 'first') as DefragPolicy,
          tcpPolicy: tcpPolicyOf(config?.engine.tcp_policy ?? 'first'),
          hostPolicy: combinedHostPolicy(policy, config ? hostPolicyFromConfig(config) : undefined),
          maxFlows: config?.engine.limits.flows,
          extra: {host: gateway},
        },
        note: (l) => out(`patchpoint: ${l}`),
      })
      modes.push('inline')
      out(`patchpoint: inline on ${ifaces.join(',')} (bridge ${inline.bridge}), ${policy.services.length} protected services${opts.failClosed ? ', fail-closed' : ''}`)
    }
    if (proxies.length > 0) {
      proxy = new ProxyServer({
        specs: proxies, analyzers: detection.analyzers, rules: detection.rules, onEvent,
        action: policy.default_action, failClosed: opts.failClosed, extra: {host: gateway},
      })
      proxyAddrs = await proxy.listen()
      modes.push('proxy')
      for (const p of proxyAddrs) out(`patchpoint: proxy ${p.listen} -> ${p.upstream}`)
    }
  } catch (err) {
    await cleanup()
    throw err
  }
  out('patchpoint: ready')

  const statsOf = (): Record<string, number> => ({
    ...(inline ? inline.session.forwarder.stats : {}),
    ...(inline ? {flows: inline.session.engine.flowCount, alerts: inline.session.engine.stats.alerts} : {}),
    ...(proxy ? Object.fromEntries(Object.entries(proxy.stats).map(([k, v]) => [`proxy_${k}`, v])) : {}),
    events,
    rss_mb: Math.round(process.memoryUsage().rss / 1048576),
  })
  const interval = view ? 0 : opts.statsIntervalS ?? 60
  const statsTimer = interval > 0 ? setInterval(() => {
    const s = statsOf()
    emit(opts.json ? JSON.stringify({event_type: 'stats', timestamp: new Date().toISOString(), patchpoint_gateway: s}) : `stats ${Object.entries(s).map(([k, v]) => `${k}=${v}`).join(' ')}`)
  }, interval * 1000) : null

  const reload = async () => {
    try {
      detection = await engineDetection(opts.project, detectionOpts)
      const p = policyFile && (ifaces.length > 0 || opts.policyFile) ? loadPolicy(policyFile) : policy
      policy = p
      inline?.reload(p, detection)
      proxy?.reload(detection.rules, p.default_action)
      out(`patchpoint: reloaded ${detection.rules.length} rules, ${p.services.length} services`)
    } catch (err) {
      out(`patchpoint: reload failed, keeping the running rules: ${(err as Error).message}`)
    }
  }
  const onHup = () => void reload()
  process.on('SIGHUP', onHup)
  let stopNow = () => {}
  const stopped = new Promise<void>((resolve) => { stopNow = resolve })
  const onSignal = () => stopNow()
  if (!opts.until) {
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
  }
  if (view) {
    const snapshot = (): RunSnapshot => {
      const mem = process.memoryUsage()
      const e = inline?.session.engine
      return {
        atMs: Date.now(),
        forwarder: inline ? {...inline.session.forwarder.stats} : undefined,
        engine: e ? {flows: e.flowCount, peakFlows: e.stats.peakFlows, alerts: e.stats.alerts, anomalies: e.stats.anomalies, flowsEvicted: e.stats.flowsEvicted} : undefined,
        proxy: proxy ? {...proxy.stats} : undefined,
        events,
        rssBytes: mem.rss,
        heapBytes: mem.heapUsed,
      }
    }
    view.ready({
      mode: modes, ifaces, bridge: inline?.bridge, proxies: proxyAddrs ?? [], services: policy.services.length,
      failClosed: opts.failClosed === true, startedAt: Date.now(),
    }, snapshot, () => stopNow())
  }
  await (opts.until ? Promise.race([opts.until, stopped]) : stopped)
  process.off('SIGINT', onSignal)
  process.off('SIGTERM', onSignal)
  process.off('SIGHUP', onHup)
  if (statsTimer) clearInterval(statsTimer)
  const stats = statsOf()
  await cleanup()
  out('patchpoint: stopped')
  return {mode: modes, bridge: inline?.bridge, proxies: proxyAddrs, stats, events, eventsWrittenTo: writtenTo}
}
