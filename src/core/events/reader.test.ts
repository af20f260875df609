import {appendFileSync, mkdirSync, mkdtempSync, renameSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import fc from 'fast-check'
import {describe, expect, it} from 'vitest'
import type {EveEvent} from './eve.js'
import {readEvents, rotatedFiles} from './reader.js'

const RUNS = Number(process.env.PATCHPOINT_FUZZ_RUNS ?? 50)
const root = mkdtempSync(path.join(tmpdir(), 'pp-reader-'))
let n = 0
function folder(): string {
  const d = path.join(root, String(n++))
  mkdirSync(d)
  return d
}
const line = (id: number) => JSON.stringify({timestamp: 't', event_type: 'flow', flow_id: id}) + '\n'

async function collect(file: string, opts = {}) {
  const s = readEvents(file, opts)
  const ids: number[] = []
  for await (const e of s) ids.push((e as EveEvent).flow_id!)
  return {ids, stats: s.stats}
}

describe('readEvents', () => {
  it('reads rotated files oldest first, then the live file', async () => {
    const d = folder()
    const f = path.join(d, 'eve.json')
    writeFileSync(`${f}.10`, line(1))
    writeFileSync(`${f}.2`, line(2) + line(3))
    writeFileSync(`${f}.1`, line(4))
    writeFileSync(f, line(5))
    writeFileSync(`${f}.bak`, line(99))
    writeFileSync(`${f}.01`, line(98))
    const {ids, stats} = await collect(f)
    expect(ids).toEqual([1, 2, 3, 4, 5])
    expect(stats.files.map((p) => path.basename(p))).toEqual(['eve.json.10', 'eve.json.2', 'eve.json.1', 'eve.json'])
    expect((await collect(f, {rotated: false})).ids).toEqual([5])
    expect((await rotatedFiles(f)).map((p) => path.basename(p))).toEqual(['eve.json.10', 'eve.json.2', 'eve.json.1'])
  })

  it('skips and counts malformed lines', async () => {
    const d = folder()
    const f = path.join(d, 'eve.json')
    const bad: [string, number][] = []
    writeFileSync(f, line(1) + 'not json\n' + '[1,2]\n' + '{"event_type":"x"}\n' + '\n' + line(2).replace('\n', '\r\n') + '{"timestamp":"t","event_type":"flow","flow_id":3')
    const {ids, stats} = await collect(f, {onMalformed: (_f: string, l: number, r: string) => bad.push([r, l])})
    expect(ids).toEqual([1, 2])
    expect(stats).toMatchObject({lines: 7, events: 2, malformed: 3, truncated: 1, oversize: 0})
    expect(bad).toEqual([['json', 2], ['not_event', 3], ['not_event', 4], ['truncated', 7]])
  })

  it('accepts a complete last event without a final newline', async () => {
    const f = path.join(folder(), 'eve.json')
    writeFileSync(f, line(1) + line(2).trimEnd())
    expect((await collect(f)).ids).toEqual([1, 2])
  })

  it('skips lines over maxLineBytes without buffering them, across chunk boundaries', async () => {
    const f = path.join(folder(), 'eve.json')
    const huge = JSON.stringify({timestamp: 't', event_type: 'flow', flow_id: 7, pad: 'y'.repeat(200_000)}) + '\n'
    writeFileSync(f, line(1) + huge + line(2) + huge.trimEnd())
    const {ids, stats} = await collect(f, {maxLineBytes: 1000})
    expect(ids).toEqual([1, 2])
    expect(stats.oversize).toBe(2)
    expect((await collect(f)).ids).toEqual([1, 7, 2, 7])
  })

  it('a missing log is empty', async () => {
    const {ids, stats} = await collect(path.join(root, 'nope', 'eve.json'))
    expect(ids).toEqual([])
    expect(stats.files).toEqual([])
  })

  it('a rotation during reading does not lose or repeat events', async () => {
    const d = folder()
    const f = path.join(d, 'eve.json')
    writeFileSync(`${f}.1`, line(1))
    writeFileSync(f, line(2) + line(3))
    const s = readEvents(f)
    const it = s[Symbol.asyncIterator]()
    expect((await it.next()).value.flow_id).toBe(1)
    // the writer rotates now: eve.json -> eve.json.1 (old .1 deleted), new eve.json
    renameSync(f, `${f}.1`)
    writeFileSync(f, line(4))
    appendFileSync(`${f}.1`, line(35))
    const rest: number[] = []
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value.flow_id!)
    expect(rest).toEqual([2, 3, 35])
  })

  it('never throws on arbitrary bytes; counts add up (fuzz)', async () => {
    const d = folder()
    const f = path.join(d, 'eve.json')
    const piece = fc.oneof(
      fc.constant(line(1)), fc.constant('\n'), fc.constant('\r\n'), fc.constant('{'), fc.constant('"event_type"'),
      fc.uint8Array({maxLength: 40}).map((b) => Buffer.from(b).toString('latin1')),
    )
    await fc.assert(fc.asyncProperty(fc.array(piece, {maxLength: 30}), fc.integer({min: 1, max: 64}), async (parts, maxLine) => {
      writeFileSync(f, parts.join(''), 'latin1')
      const {ids, stats} = await collect(f, {maxLineBytes: maxLine})
      expect(ids.length).toBe(stats.events)
      expect(stats.events + stats.malformed + stats.oversize + stats.truncated).toBeLessThanOrEqual(stats.lines)
    }), {numRuns: RUNS})
  })
})
