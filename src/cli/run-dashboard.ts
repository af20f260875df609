/**
 * The terminal dashboard of `patchpoint run` (stdout a terminal, no --json, no --no-dashboard):
 * mode, traffic in and out with rates, protected flows, actions by type, engine health and the
 * latest events, redrawn about once a second.
 *
 * It never slows the data path: `view.event` (called per event by runGateway) only counts and
 * keeps a reference in a bounded ring; the counters are read and the frame drawn on a timer.
 * Memory is bounded: DASHBOARD_MAX_EVENTS events, DASHBOARD_MAX_NOTES operator lines and
 * DASHBOARD_MAX_KEYS distinct action / event-type counters (the rest count under 'other').
 *
 * Keys: q or Ctrl-C stops the gateway exactly as SIGINT does (same teardown).
 *
 * The model ({@link DashboardModel}) is plain data and pure functions of it; the ink component
 * ({@link RunDashboard}) only lays a {@link DashboardFrame} out; {@link startDashboard} wires
 * both to runGateway's `view` hooks.
 */
import {monitorEventLoopDelay, type IntervalHistogram} from 'node:perf_hooks'
import React from 'react'
import {Box, render, Text, useInput, type Key} from 'ink'
import type {EveEvent} from '../core/events/eve.js'
import type {RunInfo, RunSnapshot, RunView} from '../core/gateway/run.js'
import {ENGINE_STALL_MS} from '../core/gateway/nft.js'

const h = React.createElement

/** events kept for the "latest events" panel (a ring: older ones are forgotten) */
export const DASHBOARD_MAX_EVENTS = 100
/** operator lines kept (setup, reload, warnings) */
export const DASHBOARD_MAX_NOTES = 8
/** distinct keys per counter map (actions, event types); more count under 'other' */
export const DASHBOARD_MAX_KEYS = 16
/** redraw period */
export const DASHBOARD_REFRESH_MS = 1000
/** terminal size assumed when the stream does not say */
export const DEFAULT_COLUMNS = 100
export const DEFAULT_ROWS = 30
/** lines of the dashboard that are not events or notes */
export const FIXED_ROWS = 14
/** events shown at least, however small the terminal */
export const MIN_EVENT_ROWS = 3
/** a stall counts when a redraw comes this much later than due (the keep-alive's own limit) */
export const STALL_MS = ENGINE_STALL_MS
/** a stall this recent shows the health as degraded */
export const STALL_RECENT_MS = 60_000

export interface DashboardOptions {
  maxEvents?: number
  maxNotes?: number
  maxKeys?: number
  refreshMs?: number
}

/** A bounded ring of references, newest last. */
export class Ring<T> {
  private readonly items: (T | undefined)[]
  private next = 0
  /** items ever pushed */
  total = 0

  constructor(readonly capacity: number) {
    this.items = new Array<T | undefined>(Math.max(1, capacity))
  }

  push(x: T): void {
    this.items[this.next] = x
    this.next = (this.next + 1) % this.items.length
    this.total++
  }

  get size(): number {
    return Math.min(this.total, this.items.length)
  }

  /** up to `n` items, newest first */
  newest(n: number): T[] {
    const out: T[] = []
    const len = this.items.length
    for (let i = 1; i <= Math.min(n, this.size); i++) out.push(this.items[(this.next - i + len) % len] as T)
    return out
  }
}

/** Counts per key, at most `maxKeys` keys (the others count under 'other'). */
export class Counts {
  readonly map = new Map<string, number>()
  constructor(private readonly maxKeys: number) {}
  add(key: string): void {
    const n = this.map.get(key)
    if (n !== undefined) this.map.set(key, n + 1)
    else if (this.map.size < this.maxKeys - 1 || key === 'other') this.map.set(key, 1)
    else this.map.set('other', (this.map.get('other') ?? 0) + 1)
  }
  get(key: string): number {
    return this.map.get(key) ?? 0
  }
}

/** One line of the "latest events" panel. */
export interface EventRow {
  time: string
  kind: string
  text: string
  where: string
  tone: 'drop' | 'fix' | 'log' | 'anomaly' | 'other'
}

/** Everything the component draws (plain data). */
export interface DashboardFrame {
  title: string
  mode: string[]
  traffic: {label: string; frames?: number; bytes: number; bytesPerS: number; framesPerS?: number}[]
  flows: string
  actions: string
  alerts: string
  health: string
  healthy: boolean
  events: EventRow[]
  eventsTotal: number
  notes: string[]
  columns: number
  eventRows: number
}

/** Alert action as patchpoint applied it: drop | fix | log | reply ..., `shadow` when only logged. */
export function actionOf(ev: EveEvent): string {
  if (ev.event_type !== 'alert') return ev.event_type
  const pp = ev.patchpoint
  if (pp?.shadow) return 'shadow'
  return pp?.action ?? (ev.alert.action === 'blocked' ? 'drop' : 'log')
}

function hhmmss(ts: string): string {
  const m = /T(\d\d:\d\d:\d\d)/.exec(ts)
  return m ? m[1] : ts.slice(0, 8)
}

/** The one-line summary of an event shown in the panel. */
export function eventRow(ev: EveEvent): EventRow {
  const where = ev.src_ip !== undefined || ev.dest_ip !== undefined
    ? `${ev.src_ip ?? '?'}:${ev.src_port ?? ''} -> ${ev.dest_ip ?? '?'}:${ev.dest_port ?? ''}`
    : ''
  if (ev.event_type === 'alert') {
    const kind = actionOf(ev)
    const tone = kind === 'drop' || kind === 'fix' || kind === 'log' ? kind : kind === 'shadow' ? 'log' : 'other'
    return {time: hhmmss(ev.timestamp), kind, text: ev.alert.signature, where, tone}
  }
  if (ev.event_type === 'anomaly') return {time: hhmmss(ev.timestamp), kind: 'anomaly', text: ev.anomaly.event, where, tone: 'anomaly'}
  if (ev.event_type === 'flow') return {time: hhmmss(ev.timestamp), kind: 'flow', text: `${ev.flow.state ?? ''} ${ev.flow.reason ?? ''}`.trim(), where, tone: 'other'}
  return {time: hhmmss(ev.timestamp), kind: ev.event_type, text: '', where, tone: 'other'}
}

/** 1234567 -> '1.2 MB' */
export function formatBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`
  const units = ['KB', 'MB', 'GB', 'TB']
  let v = n / 1024
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`
}

/** bytes per second as bits per second, '3.4 Mbit/s' */
export function formatRate(bytesPerS: number): string {
  const b = bytesPerS * 8
  if (b < 1000) return `${Math.round(b)} bit/s`
  const units = ['kbit/s', 'Mbit/s', 'Gbit/s']
  let v = b / 1000
  let i = 0
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000
    i++
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`
}

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  const hh = Math.floor(s / 3600)
  const mm = Math.floor((s % 3600) / 60)
  const ss = s % 60
  const two = (n: number) => String(n).padStart(2, '0')
  return hh >= 24 ? `${Math.floor(hh / 24)}d ${two(hh % 24)}:${two(mm)}:${two(ss)}` : `${two(hh)}:${two(mm)}:${two(ss)}`
}

/**
 * The dashboard's state: the events and lines fed to it (bounded), the gateway's info and the
 * last two snapshots (for rates). `frame()` turns it into what is drawn.
 */
export class DashboardModel {
  readonly events: Ring<EveEvent>
  readonly notes: Ring<string>
  readonly actions: Counts
  readonly types: Counts
  info: RunInfo | null = null
  stopping = false
  stopped = false
  private prev: RunSnapshot | null = null
  private last: RunSnapshot | null = null
  /** health as measured by the refresh timer itself */
  stalls = 0
  lastStallAt = 0
  loopP99Ms = 0
  loopMaxMs = 0
  private lastTickAt = 0
  readonly refreshMs: number

  constructor(opts: DashboardOptions = {}) {
    this.events = new Ring(opts.maxEvents ?? DASHBOARD_MAX_EVENTS)
    this.notes = new Ring(opts.maxNotes ?? DASHBOARD_MAX_NOTES)
    this.actions = new Counts(opts.maxKeys ?? DASHBOARD_MAX_KEYS)
    this.types = new Counts(opts.maxKeys ?? DASHBOARD_MAX_KEYS)
    this.refreshMs = opts.refreshMs ?? DASHBOARD_REFRESH_MS
  }

  /** per event, on the data path: O(1), no formatting */
  event(ev: EveEvent): void {
    this.events.push(ev)
    this.types.add(ev.event_type)
    if (ev.event_type === 'alert') this.actions.add(actionOf(ev))
  }

  line(l: string): void {
    this.notes.push(l)
  }

  /** a new snapshot of the counters (the refresh timer), with the timer's own lateness */
  tick(s: RunSnapshot, nowMs = s.atMs): void {
    if (this.lastTickAt > 0 && nowMs - this.lastTickAt - this.refreshMs > STALL_MS) {
      this.stalls++
      this.lastStallAt = nowMs
    }
    this.lastTickAt = nowMs
    this.prev = this.last
    this.last = s
  }

  frame(size: {columns?: number; rows?: number} = {}, nowMs = Date.now()): DashboardFrame {
    const columns = size.columns ?? DEFAULT_COLUMNS
    const rows = size.rows ?? DEFAULT_ROWS
    const info = this.info
    const s = this.last
    const p = this.prev
    const dt = s && p ? Math.max(0.001, (s.atMs - p.atMs) / 1000) : 0
    const rate = (f: (x: RunSnapshot) => number | undefined) => {
      if (!s || !p || dt === 0) return 0
      const a = f(s)
      const b = f(p)
      return a === undefined || b === undefined ? 0 : Math.max(0, (a - b) / dt)
    }
    const mode: string[] = []
    if (!info) mode.push('starting...')
    else {
      if (info.mode.includes('inline')) {
        mode.push(`inline ${info.ifaces.join(' <-> ')} (bridge ${info.bridge ?? '?'}), ${info.services} protected services, ${info.failClosed ? 'fail-closed' : 'fail-open'}`)
      }
      for (const px of info.proxies) mode.push(`proxy ${px.listen} -> ${px.upstream}`)
    }
    const traffic: DashboardFrame['traffic'] = []
    if (s?.forwarder) {
      const f = s.forwarder
      traffic.push({label: 'in  (diverted to the engine)', frames: f.framesIn, bytes: f.bytesIn, bytesPerS: rate((x) => x.forwarder?.bytesIn), framesPerS: rate((x) => x.forwarder?.framesIn)})
      traffic.push({label: 'out (re-injected)', frames: f.framesOut, bytes: f.bytesOut, bytesPerS: rate((x) => x.forwarder?.bytesOut), framesPerS: rate((x) => x.forwarder?.framesOut)})
    }
    if (s?.proxy) {
      traffic.push({label: 'proxy in  (client -> server)', bytes: s.proxy.bytesToServer, bytesPerS: rate((x) => x.proxy?.bytesToServer)})
      traffic.push({label: 'proxy out (server -> client)', bytes: s.proxy.bytesToClient, bytesPerS: rate((x) => x.proxy?.bytesToClient)})
    }
    const flows: string[] = []
    if (s?.engine) flows.push(`inline ${s.engine.flows} now, ${s.engine.peakFlows} peak${s.engine.flowsEvicted ? `, ${s.engine.flowsEvicted} evicted` : ''}`)
    if (s?.proxy) flows.push(`proxy ${s.proxy.active} connections now, ${s.proxy.connections} total, ${rate((x) => x.proxy?.connections).toFixed(1)}/s`)
    const actions: string[] = []
    if (s?.forwarder) {
      const f = s.forwarder
      actions.push(`forwarded ${f.framesOut} frames`, `fixed ${f.fixedFrames} frames`, `dropped ${f.droppedFrames} frames (${f.blockedFlows} flows blocked, ${f.resetsSent} resets)`)
    }
    if (s?.proxy) actions.push(`proxy: fixed ${s.proxy.fixed}, dropped ${s.proxy.blocked} connections, replied ${s.proxy.replied}`)
    actions.push(`logged ${this.actions.get('log') + this.actions.get('shadow')}`)
    const alertKeys = [...this.actions.map.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`)
    const alerts = `${this.types.get('alert')} alerts${alertKeys.length ? ` (${alertKeys.join(', ')})` : ''}, ${this.types.get('anomaly')} anomalies, ${s?.events ?? this.events.total} events`
    const recentStall = this.lastStallAt > 0 && nowMs - this.lastStallAt < STALL_RECENT_MS
    const healthy = !recentStall && !this.stopping && !this.stopped
    const health: string[] = []
    health.push(this.stopped ? 'stopped' : this.stopping ? 'stopping' : recentStall ? 'STALLED recently' : info ? 'alive' : 'starting')
    if (info?.mode.includes('inline')) {
      health.push(info.failClosed ? 'fail-closed armed' : recentStall ? 'fail-open engaged during the stall' : 'fail-open armed (kernel takes over 1 s after a stall or exit)')
    }
    if (info) health.push(`up ${formatDuration(nowMs - info.startedAt)}`)
    if (s) health.push(`rss ${formatBytes(s.rssBytes)}`, `heap ${formatBytes(s.heapBytes)}`)
    if (s?.forwarder) {
      const f = s.forwarder
      health.push(`held ${f.heldNow} (${formatBytes(f.heldBytesNow)}), ${f.fragmentsHeld} frags, ${f.holdOverflows} overflows, ${f.holdTimeouts} timeouts`)
    }
    if (s?.proxy?.holdOverflows) health.push(`proxy hold overflows ${s.proxy.holdOverflows}`)
    health.push(`loop p99 ${this.loopP99Ms.toFixed(1)} ms, max ${this.loopMaxMs.toFixed(0)} ms`, `stalls ${this.stalls}`)
    const notes = this.notes.newest(this.notes.capacity).reverse()
    const fixedRows = FIXED_ROWS + traffic.length + mode.length + notes.length
    const eventRows = Math.max(MIN_EVENT_ROWS, Math.min(this.events.capacity, rows - fixedRows))
    return {
      title: `patchpoint run${info ? `  ${info.mode.join(' + ')}` : ''}`,
      mode,
      traffic,
      flows: flows.join('; ') || '-',
      actions: actions.join(', '),
      alerts,
      health: health.join(', '),
      healthy,
      events: this.events.newest(eventRows).map(eventRow),
      eventsTotal: this.events.total,
      notes,
      columns,
      eventRows,
    }
  }
}

function clip(s: string, w: number): string {
  return s.length > w ? s.slice(0, Math.max(1, w - 1)) + '~' : s
}

function pad(s: string, w: number): string {
  return s.length >= w ? s.slice(0, w) : s + ' '.repeat(w - s.length)
}

const TONE: Record<EventRow['tone'], string | undefined> = {drop: 'red', fix: 'yellow', log: 'cyan', anomaly: 'magenta', other: undefined}

export interface RunDashboardProps {
  frame: DashboardFrame
  /** q or Ctrl-C */
  onQuit?: () => void
  /** read keys (false when stdin is not a terminal: Ctrl-C then arrives as SIGINT) */
  keys?: boolean
}

/** The dashboard, drawn from one frame. */
export function RunDashboard(props: RunDashboardProps): React.ReactElement {
  const {frame: f, onQuit} = props
  useInput((input: string, key: Key) => {
    if (input === 'q' || input === 'Q' || (key.ctrl && input === 'c')) onQuit?.()
  }, {isActive: props.keys !== false})
  const w = Math.max(40, f.columns - 1)
  // one Text of nested Texts (one per line, each clipped to the width): a single layout node,
  // several times cheaper to draw than a Box of one Text per line
  const line = (key: string, text: string, extra: Record<string, unknown> = {}) => h(Text, {key, ...extra}, clip(text, w) + '\n')
  const section = (key: string, title: string) => h(Text, {key, bold: true}, clip(title, w) + '\n')
  const rows: React.ReactElement[] = []
  rows.push(h(Text, {key: 'title', bold: true, inverse: true}, clip(pad(`${f.title}   (q quits)`, w), w) + '\n'))
  rows.push(section('mode-h', 'mode'))
  f.mode.forEach((m, i) => rows.push(line(`mode${i}`, `  ${m}`)))
  rows.push(section('traffic-h', `traffic${' '.repeat(25)}${pad('frames', 12)}${pad('bytes', 10)}${pad('rate', 14)}frames/s`))
  if (f.traffic.length === 0) rows.push(line('traffic-none', '  (no counters yet)', {dimColor: true}))
  f.traffic.forEach((t, i) => rows.push(line(`t${i}`, `  ${pad(t.label, 30)}${pad(t.frames === undefined ? '-' : String(t.frames), 12)}${pad(formatBytes(t.bytes), 10)}${pad(formatRate(t.bytesPerS), 14)}${t.framesPerS === undefined ? '-' : t.framesPerS.toFixed(0)}`)))
  rows.push(line('flows', `protected flows  ${f.flows}`))
  rows.push(line('actions', `actions          ${f.actions}`))
  rows.push(line('alerts', `alerts           ${f.alerts}`))
  rows.push(line('health', `engine health    ${f.health}`, {color: f.healthy ? 'green' : 'red'}))
  rows.push(section('events-h', `latest events (newest first, ${f.events.length} of ${f.eventsTotal})`))
  if (f.events.length === 0) rows.push(line('ev-none', '  none yet', {dimColor: true}))
  f.events.forEach((e, i) => rows.push(line(`e${i}`, `  ${e.time} ${pad(e.kind, 8)}${e.where ? e.where.padEnd(44) + '  ' : ''}${e.text}`, {color: TONE[e.tone]})))
  if (f.notes.length > 0) {
    rows.push(section('notes-h', 'notes'))
    f.notes.forEach((n, i) => rows.push(line(`n${i}`, `  ${n}`, {dimColor: true})))
  }
  rows.push(h(Text, {key: 'end', dimColor: true}, ' '))
  return h(Box, {flexDirection: 'column'}, h(Text, {wrap: 'truncate-end'}, ...rows))
}

export interface DashboardStreams {
  stdin?: NodeJS.ReadStream
  stdout?: NodeJS.WriteStream
  /** ink debug mode: every frame written whole (tests) */
  debug?: boolean
}

export interface DashboardHandle {
  /** give this to runGateway({view}) */
  view: RunView
  model: DashboardModel
  /** draw now (the timer does it every refreshMs) */
  redraw(): void
  /**
   * The last frame drawn, then unmount: the final frame stays on screen. If the gateway never
   * came up, the dashboard is cleared and its operator lines are printed plainly instead.
   */
  close(): Promise<void>
}

/**
 * Mounts the dashboard on the terminal; it draws "starting..." until runGateway calls
 * `view.ready`, then redraws every refreshMs from the gateway's snapshot. q / Ctrl-C call the
 * gateway's stop (the SIGINT path).
 */
export function startDashboard(streams: DashboardStreams = {}, opts: DashboardOptions = {}): DashboardHandle {
  const model = new DashboardModel(opts)
  const stdout = streams.stdout ?? process.stdout
  const stdin = streams.stdin ?? process.stdin
  let snapshot: (() => RunSnapshot) | null = null
  let stopGateway: (() => void) | null = null
  let quitEarly = false
  let closed = false
  const loop: IntervalHistogram | null = (() => {
    try {
      const hist = monitorEventLoopDelay({resolution: 20})
      hist.enable()
      return hist
    } catch {
      return null
    }
  })()
  const onQuit = () => {
    if (model.stopping) return
    model.stopping = true
    if (stopGateway) stopGateway()
    else quitEarly = true
    redraw()
  }
  const keys = stdin.isTTY === true
  const element = () => h(RunDashboard, {frame: model.frame({columns: stdout.columns, rows: stdout.rows}), onQuit, keys})
  const app = render(element(), {
    stdin,
    stdout,
    debug: streams.debug ?? false,
    patchConsole: false,
    exitOnCtrlC: false,
  })
  function redraw(): void {
    if (closed) return
    app.rerender(element())
  }
  const timer = setInterval(() => {
    if (snapshot) model.tick(snapshot(), Date.now())
    if (loop) {
      model.loopP99Ms = loop.percentile(99) / 1e6
      model.loopMaxMs = loop.max / 1e6
      loop.reset()
    }
    redraw()
  }, model.refreshMs)
  timer.unref()
  const view: RunView = {
    event: (ev) => model.event(ev),
    line: (l) => model.line(l),
    ready(info, snap, stop) {
      model.info = info
      snapshot = snap
      stopGateway = stop
      model.tick(snap(), Date.now())
      if (quitEarly) stop()
      redraw()
    },
  }
  return {
    view,
    model,
    redraw,
    async close() {
      if (closed) return
      clearInterval(timer)
      loop?.disable()
      closed = true
      if (!snapshot) {
        // never came up (a bad flag, a port in use): no dashboard left on screen, only the
        // operator lines, as plain mode prints them, before the error
        app.clear()
        app.unmount()
        await app.waitUntilExit().catch(() => {})
        for (const l of model.notes.newest(model.notes.capacity).reverse()) stdout.write(l + '\n')
        return
      }
      model.tick(snapshot(), Date.now())
      model.stopped = true
      app.rerender(element())
      app.unmount()
      await app.waitUntilExit().catch(() => {})
    },
  }
}
