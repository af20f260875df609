/** Test support for every analyzer: what leaving out unread fields may change. Not used by the engine. */
import {runAnalyzer, summarize, type HarnessOptions, type ScriptStep} from './harness.js'
import type {AnalyzerFactory, Direction} from './types.js'

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
