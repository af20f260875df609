/**
 * Read an EVE log and its rotated files, oldest first (eve.json.N ... eve.json.1, eve.json),
 * streaming, one event at a time. Malformed lines are skipped and counted, never thrown.
 *
 * All files are opened before reading starts, so a rotation happening meanwhile (renames, the
 * oldest file deleted) changes nothing for this reader: it reads the files that existed when it
 * started, to their end.
 */
import {open, readdir} from 'node:fs/promises'
import type {FileHandle} from 'node:fs/promises'
import path from 'node:path'
import type {EveEvent} from './eve.js'

/** Lines longer than this are skipped (counted as oversize) without being buffered. */
export const MAX_LINE_BYTES = 4 * 1024 * 1024
/** Rotated files considered at most (the newest ones). */
export const MAX_ROTATED_FILES = 1000
export const READ_CHUNK_BYTES = 64 * 1024

export interface ReadEventsOptions {
  maxLineBytes?: number
  /** also read rotated files (default true) */
  rotated?: boolean
  /** called for each skipped line (1-based line number in that file) */
  onMalformed?: (file: string, line: number, reason: 'json' | 'not_event' | 'oversize' | 'truncated') => void
}

export interface ReadEventsStats {
  /** files read, oldest first */
  files: string[]
  lines: number
  events: number
  /** lines that are not JSON, or not an event object */
  malformed: number
  /** lines longer than maxLineBytes */
  oversize: number
  /** a last line without newline that does not parse (a writer was mid-write) */
  truncated: number
}

export interface EventStream extends AsyncIterable<EveEvent> {
  readonly stats: ReadEventsStats
}

/** Stream the events of `file` (and its rotated predecessors). A missing log is empty. */
export function readEvents(file: string, options: ReadEventsOptions = {}): EventStream {
  const stats: ReadEventsStats = {files: [], lines: 0, events: 0, malformed: 0, oversize: 0, truncated: 0}
  return {
    stats,
    [Symbol.asyncIterator]: () => iterate(path.resolve(file), options, stats),
  }
}

/** Rotated siblings of `file` (file.1, file.2, ...), oldest (highest number) first. */
export async function rotatedFiles(file: string): Promise<string[]> {
  const dir = path.dirname(file)
  const base = path.basename(file)
  let names: string[]
  try {
    names = await readdir(dir)
  } catch {
    return []
  }
  const found: {n: number; p: string}[] = []
  for (const name of names) {
    if (!name.startsWith(base + '.')) continue
    const suffix = name.slice(base.length + 1)
    if (!/^[1-9]\d{0,5}$/.test(suffix)) continue
    found.push({n: Number(suffix), p: path.join(dir, name)})
  }
  found.sort((a, b) => b.n - a.n)
  return found.slice(Math.max(0, found.length - MAX_ROTATED_FILES)).map((f) => f.p)
}

async function* iterate(file: string, options: ReadEventsOptions, stats: ReadEventsStats): AsyncGenerator<EveEvent> {
  const names = options.rotated === false ? [file] : [...(await rotatedFiles(file)), file]
  const handles: {name: string; fh: FileHandle}[] = []
  try {
    for (const name of names) {
      try {
        handles.push({name, fh: await open(name, 'r')})
      } catch {
        // vanished (rotated away) or unreadable: skip
      }
    }
    for (const {name, fh} of handles) {
      stats.files.push(name)
      yield* readLines(name, fh, options, stats)
    }
  } finally {
    for (const {fh} of handles) await fh.close().catch(() => {})
  }
}

async function* readLines(name: string, fh: FileHandle, options: ReadEventsOptions, stats: ReadEventsStats): AsyncGenerator<EveEvent> {
  const maxLine = options.maxLineBytes ?? MAX_LINE_BYTES
  const buf = Buffer.alloc(READ_CHUNK_BYTES)
  let parts: Buffer[] = []
  let partLen = 0
  let skipping = false // inside an oversize line
  let lineNo = 0
  const skip = (reason: 'json' | 'not_event' | 'oversize' | 'truncated') => {
    if (reason === 'oversize') stats.oversize++
    else if (reason === 'truncated') stats.truncated++
    else stats.malformed++
    options.onMalformed?.(name, lineNo, reason)
  }
  for (;;) {
    const {bytesRead} = await fh.read(buf, 0, buf.length, null)
    if (bytesRead === 0) break
    let start = 0
    while (start < bytesRead) {
      const nl = buf.indexOf(10, start)
      const end = nl < 0 || nl >= bytesRead ? bytesRead : nl
      const len = end - start
      if (!skipping) {
        if (partLen + len > maxLine) {
          skipping = true
          parts = []
          partLen = 0
        } else if (len > 0) {
          parts.push(Buffer.from(buf.subarray(start, end))) // buf is reused for the next read
          partLen += len
        }
      }
      if (end === bytesRead) break // line continues in the next chunk
      lineNo++
      stats.lines++
      if (skipping) {
        skip('oversize')
        skipping = false
      } else {
        const ev = parseLine(parts, partLen)
        parts = []
        partLen = 0
        if (ev === 'blank') { /* ignore */ } else if (typeof ev === 'string') skip(ev)
        else {
          stats.events++
          yield ev
        }
      }
      start = end + 1
    }
  }
  if (skipping || partLen > 0) {
    lineNo++
    stats.lines++
    if (skipping) skip('oversize')
    else {
      // no final newline: a complete event written by hand, or a writer caught mid-line
      const ev = parseLine(parts, partLen)
      if (typeof ev === 'object') {
        stats.events++
        yield ev
      } else if (ev !== 'blank') skip('truncated')
    }
  }
}

function parseLine(parts: Buffer[], len: number): EveEvent | 'blank' | 'json' | 'not_event' {
  if (len === 0) return 'blank'
  let text = (parts.length === 1 ? parts[0] : Buffer.concat(parts, len)).toString('utf8')
  if (text.endsWith('\r')) text = text.slice(0, -1)
  if (text.trim() === '') return 'blank'
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    return 'json'
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'not_event'
  const o = v as Record<string, unknown>
  if (typeof o.event_type !== 'string' || typeof o.timestamp !== 'string') return 'not_event'
  return v as EveEvent
}
