/**
 * Scan progress: one event stream, three renderers (STYLE.md): a bar with ETA on a terminal,
 * plain throttled lines for pipes and CI, JSON lines (on stderr, so `--json` stdout stays the
 * result).
 */
export interface ProgressEvent {
  phase: string
  done: number
  total: number
  /** hosts or services found so far */
  found: number
  elapsedMs: number
}

export type ProgressSink = (e: ProgressEvent) => void

export const ignoreProgress: ProgressSink = () => {}

export function etaMs(e: ProgressEvent): number | undefined {
  if (e.done <= 0 || e.total <= 0 || e.done >= e.total) return undefined
  return Math.round((e.elapsedMs / e.done) * (e.total - e.done))
}

function fmtMs(ms: number | undefined): string {
  if (ms === undefined) return '--'
  const s = Math.ceil(ms / 1000)
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`
}

/** A progress line: `discover [#####.....] 50% 127/254 found 3 eta 2s` */
export function formatProgress(e: ProgressEvent, width = 24): string {
  const frac = e.total > 0 ? Math.min(1, e.done / e.total) : 0
  const fill = Math.round(frac * width)
  return `${e.phase.padEnd(10)} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${String(Math.round(frac * 100)).padStart(3)}% ${e.done}/${e.total} found ${e.found} eta ${fmtMs(etaMs(e))}`
}

export interface RendererOptions {
  mode: 'tty' | 'plain' | 'json' | 'none'
  write?: (s: string) => void
  /** plain mode: at most one line per this many ms (and on phase change / completion) */
  plainEveryMs?: number
}

/** A sink that renders to stderr in the chosen mode; call `.end()` when the scan is over. */
export function progressRenderer(o: RendererOptions): ProgressSink & {end: () => void} {
  const write = o.write ?? ((s: string) => { process.stderr.write(s) })
  let lastPhase = ''
  let lastAt = -Infinity
  let lastTty = 0
  const sink = ((e: ProgressEvent) => {
    if (o.mode === 'none') return
    const now = e.elapsedMs
    const complete = e.done >= e.total
    const phaseChange = e.phase !== lastPhase
    if (o.mode === 'json') {
      if (!phaseChange && !complete && now - lastAt < (o.plainEveryMs ?? 1000)) return
      write(JSON.stringify({progress: {...e, eta_ms: etaMs(e) ?? null}}) + '\n')
    } else if (o.mode === 'plain') {
      if (!phaseChange && !complete && now - lastAt < (o.plainEveryMs ?? 2000)) return
      write(formatProgress(e) + '\n')
    } else {
      if (!phaseChange && !complete && now - lastTty < 100) return
      if (phaseChange && lastPhase !== '') write('\n')
      lastTty = now
      write('\r' + formatProgress(e) + '\x1b[K')
    }
    lastPhase = e.phase
    lastAt = now
  }) as ProgressSink & {end: () => void}
  sink.end = () => { if (o.mode === 'tty' && lastPhase !== '') write('\n') }
  return sink
}
