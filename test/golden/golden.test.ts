/**
 * Golden capture tests (after suricata-verify): one folder per case with a `test.yaml` naming a
 * capture from the shared corpus (or examples/pcaps), engine options, and the expected events as
 * field subsets (so unrelated fields may change), flow counts and stream contents.
 */
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {parse} from 'yaml'
import {describe, expect, it} from 'vitest'
import {replayFile} from '../../src/core/engine/replay.js'
import {engineDetection} from '../../src/core/engine/detection.js'
import type {EveEvent} from '../../src/core/events/eve.js'
import type {DefragPolicy} from '../../src/core/flow/defrag.js'
import type {TcpOverlapPolicy} from '../../src/core/flow/tcp.js'
import {corpusDir, examplesDir} from '../support/cli.js'

const here = path.dirname(fileURLToPath(import.meta.url))

interface Case {
  pcap: string
  options?: {defrag_policy?: DefragPolicy; tcp_policy?: TcpOverlapPolicy}
  flows?: number
  events?: {match: Record<string, unknown>; count?: number; min?: number}[]
  streams?: {dir: 'toserver' | 'toclient'; contains?: string; absent?: string}[]
}

/** every key of `want` is in `have` with an equal value (recursively for objects) */
export function subsetMatches(have: unknown, want: unknown): boolean {
  if (want !== null && typeof want === 'object' && !Array.isArray(want)) {
    if (have === null || typeof have !== 'object') return false
    return Object.entries(want).every(([k, v]) => subsetMatches((have as Record<string, unknown>)[k], v))
  }
  return have === want
}

function findPcap(name: string): string | undefined {
  for (const dir of [corpusDir, examplesDir]) {
    const p = path.join(dir, name)
    if (fs.existsSync(p)) return p
  }
  return undefined
}

const cases = fs.readdirSync(here).filter((d) => fs.existsSync(path.join(here, d, 'test.yaml'))).sort()
const detection = await engineDetection()

describe('golden captures', () => {
  it('has cases', () => expect(cases.length).toBeGreaterThan(5))

  for (const name of cases) {
    const spec = parse(fs.readFileSync(path.join(here, name, 'test.yaml'), 'utf8')) as Case
    const file = findPcap(spec.pcap)
    it.skipIf(!file)(name, () => {
      const events: EveEvent[] = []
      const streams = {toserver: [] as Buffer[], toclient: [] as Buffer[]}
      const r = replayFile(file!, {
        onEvent: (e) => events.push(e),
        detection,
        defragPolicy: spec.options?.defrag_policy,
        tcpPolicy: spec.options?.tcp_policy,
        streamTap: (_flow, dir, data) => {
          if (streams[dir].length < 10_000) streams[dir].push(Buffer.from(data))
        },
      })
      expect(r.error).toBeNull()
      if (spec.flows !== undefined) expect(r.flows).toBe(spec.flows)
      for (const e of spec.events ?? []) {
        const n = events.filter((ev) => subsetMatches(ev, e.match)).length
        if (e.count !== undefined) expect(n, JSON.stringify(e.match)).toBe(e.count)
        if (e.min !== undefined) expect(n, JSON.stringify(e.match)).toBeGreaterThanOrEqual(e.min)
      }
      for (const st of spec.streams ?? []) {
        const all = Buffer.concat(streams[st.dir]).toString('latin1')
        if (st.contains) expect(all).toContain(st.contains)
        if (st.absent) expect(all).not.toContain(st.absent)
      }
    })
  }
})
