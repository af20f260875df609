/** Test support for the binary RPC analyzers (dcerpc, smb, oncrpc): span checks. Not used by the engine. */
import {runAnalyzer, summarize, type HarnessOptions, type ScriptStep} from '../harness.js'
import {directionBytes} from '../line/testing.js'
import type {AnalyzerFactory, Direction, Pdu} from '../types.js'

/**
 * Every field value with a span must match the stream bytes under it: strings as latin1 or as
 * UTF-16LE text, numbers as a little- or big-endian unsigned integer, bigints as little-endian.
 */
export function binarySpanMismatches(pdus: readonly Pdu[], script: readonly ScriptStep[]): string[] {
  const streams = {toserver: directionBytes(script, 'toserver'), toclient: directionBytes(script, 'toclient')}
  const bad: string[] = []
  for (const p of pdus) {
    const s = streams[p.dir]
    for (const [name, fv] of p.fields) {
      for (const v of Array.isArray(fv) ? fv : [fv]) {
        if (v.off === undefined || v.len === undefined) continue
        if (v.off < p.start || v.off + v.len > p.end || v.off + v.len > s.length) {
          bad.push(`${name}@${v.off}+${v.len} outside pdu [${p.start},${p.end})`)
          continue
        }
        const raw = Buffer.from(s.subarray(v.off, v.off + v.len))
        let ok: boolean
        if (typeof v.v === 'string') ok = raw.toString('latin1') === v.v || raw.toString('utf16le') === v.v || Buffer.from(raw.toString('utf16le'), 'utf8').toString('latin1') === v.v
        else if (typeof v.v === 'bigint') ok = v.len === 8 && raw.readBigUInt64LE(0) === v.v
        else ok = v.len <= 4 && v.len > 0 && (raw.readUIntLE(0, v.len) === v.v || raw.readUIntBE(0, v.len) === v.v)
        if (!ok) bad.push(`${name}@${v.off}+${v.len}: ${raw.toString('hex').slice(0, 40)} != ${String(v.v).slice(0, 40)}`)
      }
    }
  }
  return bad
}

/**
 * The PDUs an analyzer emits when told what the rules read (`reads`) must be those it emits
 * without it, each with exactly the fields read in its direction (same values, spans and order):
 * returns the differences (empty when none). Anomalies and dynamic services must not change.
 */
export function readsMismatches(
  factory: AnalyzerFactory,
  script: readonly ScriptStep[],
  reads: (field: string, dir?: Direction) => boolean,
  opts: HarnessOptions = {},
): string[] {
  const all = runAnalyzer(factory, script, opts)
  const some = runAnalyzer(factory, script, {...opts, reads})
  const bad: string[] = []
  const expected = summarize(all.pdus.map((p) => ({...p, fields: new Map([...p.fields].filter(([k]) => reads(k, p.dir)))})))
  const got = summarize(some.pdus)
  if (JSON.stringify(got) !== JSON.stringify(expected)) {
    for (let i = 0; i < Math.max(got.length, expected.length); i++) {
      const [g, e] = [JSON.stringify(got[i]), JSON.stringify(expected[i])]
      if (g !== e) bad.push(`pdu ${i}: got ${g?.slice(0, 300)} expected ${e?.slice(0, 300)}`)
      if (bad.length >= 3) break
    }
  }
  if (JSON.stringify(some.anomalies) !== JSON.stringify(all.anomalies)) bad.push('anomalies differ')
  if (JSON.stringify(some.dynamic) !== JSON.stringify(all.dynamic)) bad.push('dynamic services differ')
  return bad
}
