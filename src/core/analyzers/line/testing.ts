/**
 * Test support for the line-protocol analyzers: hex fixture loading and split-invariance runs.
 * (Not used by the engine.)
 */
import {readFileSync} from 'node:fs'
import {runAnalyzer, summarize, type HarnessOptions, type ScriptStep} from '../harness.js'
import type {AnalyzerFactory, Pdu} from '../types.js'

/** read a fixture: '#' comments, '> HEX' toserver, '< HEX' toclient (see fixtures/README.md) */
export function loadHexFixture(url: URL): ScriptStep[] {
  const steps: ScriptStep[] = []
  for (const raw of readFileSync(url, 'latin1').split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const dir = line[0] === '>' ? 'toserver' : line[0] === '<' ? 'toclient' : null
    if (dir === null) throw new Error(`bad fixture line: ${line.slice(0, 20)}`)
    steps.push({dir, data: Uint8Array.from(Buffer.from(line.slice(1).trim(), 'hex'))})
  }
  return steps
}

/** the script with the byte at global position `pos` starting a new data() call */
export function splitAt(script: readonly ScriptStep[], pos: number): ScriptStep[] {
  const out: ScriptStep[] = []
  let base = 0
  for (const s of script) {
    const n = s.data.length
    if (pos > base && pos < base + n) {
      out.push({dir: s.dir, data: s.data.subarray(0, pos - base)}, {dir: s.dir, data: s.data.subarray(pos - base)})
    } else {
      out.push(s)
    }
    base += n
  }
  return out
}

/** total bytes of a script */
export function scriptBytes(script: readonly ScriptStep[]): number {
  let n = 0
  for (const s of script) n += s.data.length
  return n
}

/**
 * Compare the whole-feed summary with every single cut (every `stride`-th position) and with
 * 1-byte chunks; returns the positions that differ (empty when invariant).
 */
export function splitInvariance(factory: AnalyzerFactory, script: readonly ScriptStep[], stride = 1, opts: HarnessOptions = {}): number[] {
  const whole = JSON.stringify(summarize(runAnalyzer(factory, script, opts).pdus))
  const bad: number[] = []
  const total = scriptBytes(script)
  for (let p = 1; p < total; p += stride) {
    const got = JSON.stringify(summarize(runAnalyzer(factory, splitAt(script, p), opts).pdus))
    if (got !== whole) bad.push(p)
  }
  const bytewise = JSON.stringify(summarize(runAnalyzer(factory, script, {...opts, chunkSize: 1}).pdus))
  if (bytewise !== whole) bad.push(-1)
  return bad
}

/** stream bytes of one direction, concatenated (to check field spans against) */
export function directionBytes(script: readonly ScriptStep[], dir: 'toserver' | 'toclient'): Uint8Array {
  return Uint8Array.from(Buffer.concat(script.filter((s) => s.dir === dir).map((s) => s.data)))
}

/** runs for property tests: PATCHPOINT_FUZZ_RUNS or the default */
export function fuzzRuns(defaultRuns: number): number {
  const env = Number(process.env.PATCHPOINT_FUZZ_RUNS)
  return Number.isFinite(env) && env > 0 ? env : defaultRuns
}

/**
 * Every string field value that carries a span must equal the stream bytes under it (latin1);
 * numbers and bigints with a span must equal the decimal digits under it, or, in TLS PDUs (the
 * layer after STARTTLS, binary), the big-endian integer the bytes hold. Returns the offenders.
 */
export function spanMismatches(pdus: readonly Pdu[], script: readonly ScriptStep[]): string[] {
  const streams = {toserver: directionBytes(script, 'toserver'), toclient: directionBytes(script, 'toclient')}
  const bad: string[] = []
  for (const p of pdus) {
    const s = streams[p.dir]
    for (const [name, fv] of p.fields) {
      for (const v of Array.isArray(fv) ? fv : [fv]) {
        if (v.off === undefined || v.len === undefined) continue
        if (v.off < p.start || v.off + v.len > p.end || v.off + v.len > s.length) {
          bad.push(`${name}@${v.off}+${v.len} outside stream/pdu`)
          continue
        }
        const under = s.subarray(v.off, v.off + v.len)
        const raw = p.protocol === 'tls' && typeof v.v === 'number' ? String(under.reduce((n, b) => n * 256 + b, 0)) : Buffer.from(under).toString('latin1')
        const want = typeof v.v === 'string' ? v.v : String(v.v)
        if (raw !== want) bad.push(`${name}@${v.off}+${v.len}: ${JSON.stringify(raw.slice(0, 40))} != ${JSON.stringify(want.slice(0, 40))}`)
      }
    }
  }
  return bad
}
