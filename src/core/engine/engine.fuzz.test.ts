/**
 * Fuzzing the whole engine: random and mutated frames (from the sample captures) through
 * decoding, defragmentation, flow tracking, reassembly, every analyzer and the rule pack. Nothing
 * may throw out of the engine and no table may grow past its cap. PATCHPOINT_FUZZ_RUNS scales
 * the number of frames (default 100,000).
 */
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'
import {openCapture} from '../capture/reader.js'
import {LINKTYPE} from '../packet/linktype.js'
import {Engine} from './engine.js'
import {engineDetection} from './detection.js'

const examples = fileURLToPath(new URL('../../../examples/pcaps/', import.meta.url))
const corpus = fileURLToPath(new URL('../../../../shared/corpus/pcaps/', import.meta.url))
const FRAMES = Number(process.env.PATCHPOINT_FUZZ_RUNS ?? 100_000)

function seedFrames(): {data: Uint8Array; linktype: number}[] {
  const out: {data: Uint8Array; linktype: number}[] = []
  for (const dir of [examples, corpus]) {
    if (!fs.existsSync(dir)) continue
    for (const f of fs.readdirSync(dir).filter((n) => /\.pcap(ng)?$/.test(n))) {
      const r = openCapture(path.join(dir, f))
      try {
        for (let rec = r.next(); rec && out.length < 20_000; rec = r.next()) out.push({data: rec.data.slice(), linktype: rec.linktype})
      } catch {
        // a bad seed file only means fewer seeds
      } finally {
        r.close()
      }
    }
  }
  return out
}

/** xorshift32 */
function rng(seed: number) {
  let x = seed
  return () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) / 0x1_0000_0000
  }
}

describe('engine fuzz', () => {
  it(`survives ${FRAMES} random and mutated frames with bounded state`, async () => {
    const seeds = seedFrames()
    expect(seeds.length).toBeGreaterThan(100)
    const detection = await engineDetection()
    let events = 0
    const maxFlows = 256
    const engine: Engine = new Engine({
      onEvent: () => { events++ },
      analyzers: detection.analyzers,
      judge: detection.judgeFor(() => engine),
      maxFlows,
      flowEvents: true,
    })
    const r = rng(0x5eed)
    const linktypes = [LINKTYPE.ETHERNET, LINKTYPE.RAW, LINKTYPE.LINUX_SLL, LINKTYPE.LINUX_SLL2, LINKTYPE.NULL, LINKTYPE.IPV4, LINKTYPE.IPV6]
    let ts = 1_700_000_000_000_000
    let peakFlows = 0
    for (let i = 0; i < FRAMES; i++) {
      const seed = seeds[Math.floor(r() * seeds.length)]
      let frame: Uint8Array
      let linktype = seed.linktype
      const mode = r()
      if (mode < 0.1) {
        frame = new Uint8Array(Math.floor(r() * 200))
        for (let j = 0; j < frame.length; j++) frame[j] = Math.floor(r() * 256)
        linktype = linktypes[Math.floor(r() * linktypes.length)]
      } else {
        frame = seed.data.slice(0, mode < 0.2 ? Math.floor(r() * seed.data.length) : seed.data.length)
        const flips = Math.floor(r() * 6)
        for (let j = 0; j < flips && frame.length > 0; j++) frame[Math.floor(r() * frame.length)] = Math.floor(r() * 256)
        // shift addresses now and then so the flow table fills and evicts
        if (r() < 0.3 && frame.length > 34) frame[29] ^= Math.floor(r() * 256)
      }
      ts += Math.floor(r() * 2000)
      engine.processFrame(frame, linktype, ts)
      if (engine.flowCount > peakFlows) peakFlows = engine.flowCount
    }
    engine.finish()
    expect(peakFlows).toBeLessThanOrEqual(maxFlows)
    expect(engine.stats.packets).toBe(FRAMES)
    expect(engine.flowCount).toBe(0)
    expect(events).toBeGreaterThan(0)
  }, 600_000)
})
