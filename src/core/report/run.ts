/**
 * `patchpoint report` without the CLI: find the event logs (a project, several projects, or
 * folders of collected logs), read `.patchpoint/retired.json`, stream every event once through
 * a ReportAggregator.
 *
 * retired.json (written by `protect` when a real patch retires a virtual one, see
 * src/core/protect/compile.ts RetiredRecord; hand-editable). The fields read here:
 *
 *   {"version": 1,
 *    "retired": [{"cve": "CVE-2021-44228", "host": "192.0.2.10", "gateway": "gw-01",
 *                 "cves": ["CVE-2021-44228", "CVE-2021-45046"], "retired_at": "2026-02-01T00:00:00Z"}]}
 *
 * `host` (the protected server, as in the events' dest_ip) and `gateway` are optional: absent
 * means every host / gateway. A bare array of entries is accepted too. Bad entries are skipped
 * and reported, never thrown.
 */
import {readdir, readFile, stat} from 'node:fs/promises'
import path from 'node:path'
import type {AnomalySink} from '../events/anomaly.js'
import {ignoreAnomalies} from '../events/anomaly.js'
import {parseEveTimestamp} from '../events/eve.js'
import {readEvents} from '../events/reader.js'
import {checkConfig, CONFIG_FILE_NAME, eventsFilePath} from '../project/config.js'
import {CONFIG_DEFAULTS} from '../project/config-schema.js'
import {ReportAggregator} from './aggregate.js'
import type {AggregatorOptions, ReportData, RetiredEntry} from './aggregate.js'

export const RETIRED_FILE = 'retired.json'
export const MAX_RETIRED_BYTES = 8 * 1024 * 1024
export const MAX_RETIRED_ENTRIES = 100_000
/** Log files collected from one --from folder at most. */
export const MAX_INPUT_FILES = 10_000
/** Folder depth walked under a --from folder. */
export const MAX_INPUT_DEPTH = 6

export interface ReportInput {
  /** as shown in the report */
  label: string
  /** the live log (its rotated siblings are read too) */
  logFile: string
  /** gateway id for events without one */
  gateway?: string
}

export interface ResolvedInputs {
  inputs: ReportInput[]
  retiredFiles: string[]
  /** one line each: folders that hold nothing, unreadable configs */
  problems: string[]
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile()
  } catch {
    return false
  }
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory()
  } catch {
    return false
  }
}

/** One project folder: its configured log, its gateway id, its retired.json. */
export async function projectInput(dir: string, problems: string[] = []): Promise<{input: ReportInput; retired: string}> {
  const check = await checkConfig(path.join(dir, CONFIG_FILE_NAME))
  let logFile = path.resolve(dir, CONFIG_DEFAULTS.events.file)
  let gateway: string | undefined
  if (check.config) {
    logFile = eventsFilePath(check.config, dir)
    gateway = check.config.gateway.id
  } else {
    problems.push(`${path.join(dir, CONFIG_FILE_NAME)}: invalid (${check.diagnostics[0]?.message ?? 'unreadable'}); reading ${logFile}`)
  }
  return {input: {label: dir, logFile, gateway}, retired: path.join(dir, '.patchpoint', RETIRED_FILE)}
}

/**
 * Turn `--from` arguments into logs: a log file; a project folder (holds patchpoint.yaml); or a
 * folder of collected logs, walked for `*.json` / `*.jsonl` files (rotated `eve.json.N` files
 * are read with their live file). In a collected folder the first sub-folder name is the
 * gateway id of events that carry none (`collected/<gateway>/eve.json`, as Ansible's fetch lays
 * them out).
 */
export async function resolveInputs(froms: readonly string[]): Promise<ResolvedInputs> {
  const out: ResolvedInputs = {inputs: [], retiredFiles: [], problems: []}
  for (const from of froms) {
    const abs = path.resolve(from)
    if (await isFile(abs)) {
      if (path.basename(abs) === RETIRED_FILE) out.retiredFiles.push(abs)
      else out.inputs.push({label: abs, logFile: abs})
      continue
    }
    if (!(await isDir(abs))) {
      out.problems.push(`${from}: no such file or folder`)
      continue
    }
    if (await isFile(path.join(abs, CONFIG_FILE_NAME))) {
      const {input, retired} = await projectInput(abs, out.problems)
      out.inputs.push(input)
      out.retiredFiles.push(retired)
      continue
    }
    const before = out.inputs.length
    let count = 0
    const walk = async (dir: string, depth: number, gateway: string | undefined): Promise<void> => {
      if (depth > MAX_INPUT_DEPTH || count >= MAX_INPUT_FILES) return
      let ents
      try {
        ents = await readdir(dir, {withFileTypes: true})
      } catch {
        out.problems.push(`${dir}: cannot read`)
        return
      }
      ents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      for (const e of ents) {
        if (count >= MAX_INPUT_FILES) {
          out.problems.push(`${from}: more than ${MAX_INPUT_FILES} log files; the rest were not read`)
          return
        }
        const p = path.join(dir, e.name)
        if (e.isDirectory()) {
          if (e.name === 'locks' || e.name === 'trusted-keys' || e.name.startsWith('rules')) continue
          await walk(p, depth + 1, gateway ?? (depth === 0 ? e.name : undefined))
        } else if (e.isFile()) {
          if (e.name === RETIRED_FILE) out.retiredFiles.push(p)
          else if (/\.jsonl?$/.test(e.name) && !e.name.endsWith('.bundle.json') && e.name !== 'rules-state.json') {
            count++
            out.inputs.push({label: path.relative(path.dirname(abs), p), logFile: p, gateway: gateway ?? path.basename(abs)})
          }
        }
      }
    }
    await walk(abs, 0, undefined)
    if (out.inputs.length === before) out.problems.push(`${from}: no event logs found`)
  }
  return out
}

/** Read retired.json files; missing files are fine, bad content is reported and skipped. */
export async function readRetired(files: readonly string[], problems: string[] = []): Promise<RetiredEntry[]> {
  const out: RetiredEntry[] = []
  for (const f of files) {
    let text: string
    try {
      const st = await stat(f)
      if (st.size > MAX_RETIRED_BYTES) {
        problems.push(`${f}: larger than ${MAX_RETIRED_BYTES} bytes, ignored`)
        continue
      }
      text = await readFile(f, 'utf8')
    } catch {
      continue // no retirements recorded
    }
    out.push(...parseRetired(text, f, problems, MAX_RETIRED_ENTRIES - out.length))
  }
  return out
}

/** Parse the text of a retired.json (see the module comment). Never throws. */
export function parseRetired(text: string, file = RETIRED_FILE, problems: string[] = [], max = MAX_RETIRED_ENTRIES): RetiredEntry[] {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    problems.push(`${file}: not JSON, ignored`)
    return []
  }
  const list = Array.isArray(v) ? v : v && typeof v === 'object' && Array.isArray((v as {retired?: unknown}).retired) ? (v as {retired: unknown[]}).retired : undefined
  if (!list) {
    problems.push(`${file}: expected {"version": 1, "retired": [...]}, ignored`)
    return []
  }
  const out: RetiredEntry[] = []
  let bad = 0
  for (const item of list) {
    if (out.length >= max) {
      problems.push(`${file}: more than ${max} entries; the rest were ignored`)
      break
    }
    const o = item as Record<string, unknown>
    const us = o && typeof o.retired_at === 'string' ? parseTime(o.retired_at) : NaN
    if (!o || typeof o.cve !== 'string' || o.cve === '' || Number.isNaN(us)) {
      bad++
      continue
    }
    // protect's records carry `cve` (the first) and `cves` (all of the rule's): retire each
    const cves = new Set([o.cve, ...(Array.isArray(o.cves) ? o.cves.filter((c): c is string => typeof c === 'string' && c !== '').slice(0, 64) : [])])
    for (const cve of cves) {
      const e: RetiredEntry = {cve, retiredUs: us}
      if (typeof o.host === 'string' && o.host !== '') e.host = o.host
      if (typeof o.gateway === 'string' && o.gateway !== '') e.gateway = o.gateway
      out.push(e)
    }
  }
  if (bad > 0) problems.push(`${file}: ${bad} entr${bad === 1 ? 'y' : 'ies'} without cve or a valid retired_at, ignored`)
  return out
}

/**
 * A --since / --until value in microseconds since the epoch: an ISO date or date-time (UTC
 * unless it has an offset), `now`, or a duration before now: `90m`, `24h`, `7d`, `2w`.
 * NaN when it does not parse.
 */
export function parseTime(s: string, nowMs = Date.now()): number {
  const t = s.trim()
  if (t === 'now') return nowMs * 1000
  const rel = /^(\d{1,6})\s*(s|m|h|d|w)$/.exec(t)
  if (rel) {
    const unit = {s: 1, m: 60, h: 3600, d: 86_400, w: 604_800}[rel[2] as 's' | 'm' | 'h' | 'd' | 'w']
    return (nowMs - Number(rel[1]) * unit * 1000) * 1000
  }
  if (/^\d{4}-\d\d-\d\d$/.test(t)) return parseEveTimestamp(`${t}T00:00:00Z`)
  const us = parseEveTimestamp(t.replace(' ', 'T'))
  if (!Number.isNaN(us)) return us
  return NaN
}

export interface RunReportOptions extends Omit<AggregatorOptions, 'retired' | 'defaultGateway'> {
  inputs: readonly ReportInput[]
  retiredFiles?: readonly string[]
  /** lines about skipped inputs and bad retired entries are appended here */
  problems?: string[]
  anomalies?: AnomalySink
}

/** Stream every input through one aggregator and return the figures. */
export async function runReport(options: RunReportOptions): Promise<ReportData> {
  const problems = options.problems ?? []
  const retired = await readRetired(options.retiredFiles ?? [], problems)
  const agg = new ReportAggregator({...options, retired, anomalies: options.anomalies ?? ignoreAnomalies})
  for (const input of options.inputs) {
    agg.defaultGateway = input.gateway ?? input.label
    const stream = readEvents(input.logFile)
    for await (const ev of stream) agg.add(ev)
    agg.addInput({
      label: input.label,
      gateway: input.gateway ?? null,
      files: stream.stats.files,
      lines: stream.stats.lines,
      events: stream.stats.events,
      malformed: stream.stats.malformed + stream.stats.oversize + stream.stats.truncated,
    })
  }
  return agg.result()
}
