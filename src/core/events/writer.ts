/**
 * Event sinks: `EventLog` (JSON lines appended to a file, size-based rotation), an in-memory
 * collector and a stdout writer, all behind `EventSink`.
 *
 * EventLog writes synchronously from a bounded buffer: the buffer is flushed when it reaches
 * `bufferBytes`, every `flushIntervalMs`, on close, and on process exit (a sync write is the only
 * kind that can still run in an `exit` handler). Rotation renames eve.json -> eve.json.1 ->
 * eve.json.2 ... and deletes the one beyond `keep`: a reader keeps reading the file it has open,
 * nothing is ever truncated. One writer per file (use withLock across processes).
 *
 * Problems (oversized event, unserializable event, write error) are reported through the
 * AnomalySink and counted; write() never throws.
 */
import {closeSync, fstatSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync} from 'node:fs'
import path from 'node:path'
import type {AnomalySink} from './anomaly.js'
import {ignoreAnomalies} from './anomaly.js'
import type {EventSink, EveEvent} from './eve.js'

export const DEFAULT_ROTATE_BYTES = 100 * 1024 * 1024
export const DEFAULT_KEEP = 5
/** buffered bytes before a write to disk */
export const DEFAULT_BUFFER_BYTES = 64 * 1024
export const DEFAULT_FLUSH_INTERVAL_MS = 1000
/** larger events are dropped (and reported) */
export const MAX_EVENT_BYTES = 1024 * 1024
/** rotated files kept at most, whatever the options say */
export const MAX_KEEP = 1000
/** MemoryEventSink default capacity */
export const DEFAULT_MEMORY_EVENTS = 100_000

export interface EventLogOptions {
  rotateBytes?: number
  keep?: number
  bufferBytes?: number
  /** 0 disables the timer (flush on size, close and exit only) */
  flushIntervalMs?: number
  maxEventBytes?: number
  anomalies?: AnomalySink
}

export interface EventLogStats {
  /** events accepted into the buffer */
  written: number
  dropped: number
  rotations: number
  writeErrors: number
}

const openLogs = new Set<EventLog>()
let exitHookInstalled = false
function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const log of openLogs) log.closeSync()
  })
}

export class EventLog implements EventSink {
  readonly path: string
  readonly stats: EventLogStats = {written: 0, dropped: 0, rotations: 0, writeErrors: 0}
  private readonly rotateBytes: number
  private readonly keep: number
  private readonly bufferBytes: number
  private readonly maxEventBytes: number
  private readonly anomalies: AnomalySink
  private fd = -1
  private size = 0
  private chunks: string[] = []
  private pendingBytes = 0
  private timer: NodeJS.Timeout | undefined
  private closed = false

  constructor(file: string, options: EventLogOptions = {}) {
    this.path = path.resolve(file)
    this.rotateBytes = Math.max(1, options.rotateBytes ?? DEFAULT_ROTATE_BYTES)
    this.keep = Math.min(MAX_KEEP, Math.max(0, Math.trunc(options.keep ?? DEFAULT_KEEP)))
    this.bufferBytes = Math.max(0, options.bufferBytes ?? DEFAULT_BUFFER_BYTES)
    this.maxEventBytes = Math.max(1, options.maxEventBytes ?? MAX_EVENT_BYTES)
    this.anomalies = options.anomalies ?? ignoreAnomalies
    const interval = options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS
    if (interval > 0) {
      this.timer = setInterval(() => this.flush(), interval)
      this.timer.unref()
    }
    openLogs.add(this)
    installExitHook()
  }

  write(ev: EveEvent): void {
    if (this.closed) {
      this.drop('eventlog.write_after_close', {})
      return
    }
    let line: string
    try {
      line = JSON.stringify(ev) + '\n'
    } catch (err) {
      this.drop('eventlog.unserializable', {error: String((err as Error).message).slice(0, 200)})
      return
    }
    const bytes = Buffer.byteLength(line)
    if (bytes > this.maxEventBytes) {
      this.drop('eventlog.event_too_large', {bytes, limit: this.maxEventBytes})
      return
    }
    this.chunks.push(line)
    this.pendingBytes += bytes
    this.stats.written++
    if (this.pendingBytes >= this.bufferBytes) this.flush()
  }

  /** Write the buffer to disk now (rotating first if needed). Never throws. */
  flush(): void {
    if (this.chunks.length === 0) return
    const data = this.chunks.length === 1 ? this.chunks[0] : this.chunks.join('')
    const len = this.pendingBytes
    this.chunks = []
    this.pendingBytes = 0
    try {
      if (this.fd < 0) this.openFile()
      if (this.size > 0 && this.size + len > this.rotateBytes) this.rotate()
      const buf = Buffer.from(data, 'utf8')
      let off = 0
      while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off)
      this.size += buf.length
    } catch (err) {
      this.stats.writeErrors++
      this.anomalies({type: 'limit', event: 'eventlog.write_error', detail: {error: String((err as NodeJS.ErrnoException).code ?? (err as Error).message), bytes: len}})
    }
  }

  /** Flush and close (idempotent). */
  async close(): Promise<void> {
    this.closeSync()
  }

  /** Synchronous close, for exit handlers. */
  closeSync(): void {
    if (this.closed) return
    this.flush()
    this.closed = true
    if (this.timer) clearInterval(this.timer)
    openLogs.delete(this)
    if (this.fd >= 0) {
      try {
        closeSync(this.fd)
      } catch {
        // nothing to do
      }
      this.fd = -1
    }
  }

  private drop(event: string, detail: Record<string, number | string>): void {
    this.stats.dropped++
    this.anomalies({type: 'limit', event, detail})
  }

  private openFile(): void {
    mkdirSync(path.dirname(this.path), {recursive: true})
    this.fd = openSync(this.path, 'a', 0o644)
    this.size = fstatSync(this.fd).size
  }

  /** eve.json.(keep-1) -> eve.json.keep, ..., eve.json -> eve.json.1; then a fresh eve.json. */
  private rotate(): void {
    closeSync(this.fd)
    this.fd = -1
    if (this.keep === 0) {
      unlinkQuiet(this.path)
    } else {
      unlinkQuiet(`${this.path}.${this.keep}`)
      for (let i = this.keep - 1; i >= 1; i--) renameQuiet(`${this.path}.${i}`, `${this.path}.${i + 1}`)
      renameQuiet(this.path, `${this.path}.1`)
    }
    this.stats.rotations++
    this.openFile()
  }
}

function unlinkQuiet(p: string): void {
  try {
    unlinkSync(p)
  } catch {
    // absent
  }
}
function renameQuiet(from: string, to: string): void {
  try {
    renameSync(from, to)
  } catch {
    // absent
  }
}

/** Keeps events in memory (tests, replay summaries), up to `limit`; the rest are counted. */
export class MemoryEventSink implements EventSink {
  readonly events: EveEvent[] = []
  dropped = 0
  closed = false
  constructor(
    private readonly limit = DEFAULT_MEMORY_EVENTS,
    private readonly anomalies: AnomalySink = ignoreAnomalies,
  ) {}

  write(ev: EveEvent): void {
    if (this.events.length >= this.limit) {
      if (this.dropped++ === 0) this.anomalies({type: 'limit', event: 'eventlog.memory_full', detail: {limit: this.limit}})
      return
    }
    this.events.push(ev)
  }

  async close(): Promise<void> {
    this.closed = true
  }
}

/** Minimal writable, so tests can pass their own. */
export interface LineWritable {
  write(chunk: string): unknown
}

/** Writes each event as one JSON line to stdout (or another stream). */
export class StdoutEventSink implements EventSink {
  dropped = 0
  constructor(private readonly out: LineWritable = process.stdout) {}

  write(ev: EveEvent): void {
    try {
      this.out.write(JSON.stringify(ev) + '\n')
    } catch {
      this.dropped++ // closed pipe, unserializable event
    }
  }

  async close(): Promise<void> {}
}
