import {execFile} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'
import ts from 'typescript'
import {describe, expect, it} from 'vitest'
import type {AnomalyReport} from './anomaly.js'
import type {EveEvent} from './eve.js'
import {formatEveTimestamp} from './eve.js'
import {readEvents} from './reader.js'
import {EventLog, MemoryEventSink, StdoutEventSink} from './writer.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = mkdtempSync(path.join(tmpdir(), 'pp-writer-'))

function ev(i: number, pad = 0): EveEvent {
  return {
    timestamp: formatEveTimestamp(1_700_000_000_000_000 + i), flow_id: i, event_type: 'anomaly',
    src_ip: '10.0.0.1', dest_ip: '10.0.0.2', proto: 'TCP',
    anomaly: {type: 'stream', event: 'tcp.test', detail: {i, pad: 'x'.repeat(pad)}},
  }
}
const lines = (f: string) => readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as EveEvent)

describe('EventLog', () => {
  it('appends JSON lines, buffered until flush/close, creating the folder', async () => {
    const f = path.join(root, 'a', 'events', 'eve.json')
    const log = new EventLog(f, {flushIntervalMs: 0})
    log.write(ev(1))
    log.write(ev(2))
    expect(existsSync(f)).toBe(false) // still buffered
    await log.close()
    expect(lines(f).map((e) => e.flow_id)).toEqual([1, 2])
    expect(readFileSync(f, 'utf8').endsWith('\n')).toBe(true)
    // reopening appends
    const log2 = new EventLog(f, {flushIntervalMs: 0})
    log2.write(ev(3))
    await log2.close()
    expect(lines(f).map((e) => e.flow_id)).toEqual([1, 2, 3])
    expect(log2.stats).toEqual({written: 1, dropped: 0, rotations: 0, writeErrors: 0})
  })

  it('flushes by itself when the buffer is full', () => {
    const f = path.join(root, 'b', 'eve.json')
    const log = new EventLog(f, {flushIntervalMs: 0, bufferBytes: 1000})
    for (let i = 0; i < 20; i++) log.write(ev(i))
    expect(lines(f).length).toBeGreaterThan(0)
    log.closeSync()
    expect(lines(f)).toHaveLength(20)
  })

  it('rotates by size, keeps N files, loses nothing in between, never exceeds the size by more than one buffer', async () => {
    const dir = path.join(root, 'rot')
    const f = path.join(dir, 'eve.json')
    const log = new EventLog(f, {rotateBytes: 2000, keep: 3, bufferBytes: 0, flushIntervalMs: 0})
    const n = 40
    for (let i = 0; i < n; i++) log.write(ev(i, 100))
    await log.close()
    expect(readdirSync(dir).sort()).toEqual(['eve.json', 'eve.json.1', 'eve.json.2', 'eve.json.3'])
    const kept: number[] = []
    for await (const e of readEvents(f)) kept.push(e.flow_id!)
    // the newest events, in order, contiguous up to the last one
    expect(kept.at(-1)).toBe(n - 1)
    expect(kept).toEqual(Array.from({length: kept.length}, (_, i) => n - kept.length + i))
    for (const name of readdirSync(dir)) expect(readFileSync(path.join(dir, name)).length).toBeLessThanOrEqual(2000)
    expect(log.stats.rotations).toBeGreaterThan(3)
  })

  it('rotation renames: a reader holding the old file keeps its content', async () => {
    const dir = path.join(root, 'rot2')
    const f = path.join(dir, 'eve.json')
    const log = new EventLog(f, {rotateBytes: 500, keep: 1, bufferBytes: 0, flushIntervalMs: 0})
    log.write(ev(1, 300))
    const before = readFileSync(f, 'utf8')
    log.write(ev(2, 300)) // rotates
    expect(readFileSync(`${f}.1`, 'utf8')).toBe(before)
    await log.close()
  })

  it('drops oversized and unserializable events, reporting anomalies, never throwing', async () => {
    const reports: AnomalyReport[] = []
    const f = path.join(root, 'c', 'eve.json')
    const log = new EventLog(f, {maxEventBytes: 500, flushIntervalMs: 0, anomalies: (r) => reports.push(r)})
    log.write(ev(1, 1000))
    const bad = ev(2) as unknown as {anomaly: {detail: Record<string, unknown>}}
    bad.anomaly.detail.n = 10n
    log.write(bad as unknown as EveEvent)
    log.write(ev(3))
    await log.close()
    log.write(ev(4)) // after close
    expect(lines(f).map((e) => e.flow_id)).toEqual([3])
    expect(reports.map((r) => r.event)).toEqual(['eventlog.event_too_large', 'eventlog.unserializable', 'eventlog.write_after_close'])
    expect(log.stats.dropped).toBe(3)
  })

  it('write errors become anomalies', () => {
    const reports: AnomalyReport[] = []
    const blocker = path.join(root, 'blocker')
    writeFileSync(blocker, '')
    const log = new EventLog(path.join(blocker, 'eve.json'), {flushIntervalMs: 0, anomalies: (r) => reports.push(r)})
    log.write(ev(1))
    expect(() => log.closeSync()).not.toThrow()
    expect(log.stats.writeErrors).toBe(1)
    expect(reports[0]).toMatchObject({type: 'limit', event: 'eventlog.write_error'})
  })

  it('buffered events reach the file when the process exits without close()', async () => {
    const out = path.join(root, 'js')
    for (const rel of ['writer.ts', 'anomaly.ts']) {
      const js = ts.transpileModule(readFileSync(path.join(here, rel), 'utf8'), {compilerOptions: {module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022}}).outputText
      mkdirSync(out, {recursive: true})
      writeFileSync(path.join(out, rel.replace(/\.ts$/, '.js')), js)
    }
    writeFileSync(path.join(out, 'package.json'), '{"type":"module"}')
    const f = path.join(root, 'exit', 'eve.json')
    const script = `
      import {EventLog} from ${JSON.stringify(path.join(out, 'writer.js'))}
      const log = new EventLog(process.argv[1])
      for (let i = 0; i < 3; i++) log.write({timestamp: 't', event_type: 'stats', stats: {uptime: i}})
      process.exit(0)`
    await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script, f])
    expect(lines(f).map((e) => (e as {stats: {uptime: number}}).stats.uptime)).toEqual([0, 1, 2])
  })
})

describe('other sinks', () => {
  it('MemoryEventSink keeps events up to its limit', async () => {
    const reports: AnomalyReport[] = []
    const m = new MemoryEventSink(2, (r) => reports.push(r))
    for (let i = 0; i < 5; i++) m.write(ev(i))
    await m.close()
    expect(m.events.map((e) => e.flow_id)).toEqual([0, 1])
    expect(m.dropped).toBe(3)
    expect(reports).toHaveLength(1)
    expect(m.closed).toBe(true)
  })

  it('StdoutEventSink writes one JSON line per event and survives a broken stream', () => {
    const chunks: string[] = []
    const s = new StdoutEventSink({write: (c: string) => chunks.push(c)})
    s.write(ev(1))
    expect(chunks).toHaveLength(1)
    expect(chunks[0].endsWith('\n')).toBe(true)
    expect(JSON.parse(chunks[0])).toEqual(ev(1))
    const broken = new StdoutEventSink({write: () => { throw new Error('EPIPE') }})
    broken.write(ev(1))
    expect(broken.dropped).toBe(1)
  })
})
