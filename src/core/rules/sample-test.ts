/**
 * `rules test`: run a rule's own samples through the REAL analyzer and the engine.
 *  - a malicious sample must match, a benign one must not;
 *  - the fix, applied to the malicious sample's bytes, must neutralize it (re-run: no match);
 *  - the same verdicts must hold when the samples are fed in 1-byte chunks.
 */
import type {AnalyzerFactory, Direction} from '../analyzers/types.js'
import {runAnalyzer, type ScriptStep} from '../analyzers/harness.js'
import {textBytes, type CompiledRule} from './compile.js'
import {RuleSet} from './engine.js'
import {applyEdits} from './fixes.js'
import type {Edit, SampleDoc, StepDoc} from './types.js'

/** Largest sample conversation tested (bytes); bigger samples fail the test instead of running. */
export const MAX_SAMPLE_BYTES = 1 << 20

export interface SampleResult {
  kind: 'malicious' | 'benign'
  name: string
  ok: boolean
  /** what failed, one line each */
  problems: string[]
}

export interface RuleTestResult {
  id: string
  ok: boolean
  samples: SampleResult[]
}

function stepToScript(s: StepDoc): ScriptStep | undefined {
  if (s.toserver !== undefined) return {dir: 'toserver', data: textBytes(s.toserver)}
  if (s.toclient !== undefined) return {dir: 'toclient', data: textBytes(s.toclient)}
  if (s.toserver_hex !== undefined) return {dir: 'toserver', data: new Uint8Array(Buffer.from(s.toserver_hex.replace(/\s+/g, ''), 'hex'))}
  if (s.toclient_hex !== undefined) return {dir: 'toclient', data: new Uint8Array(Buffer.from(s.toclient_hex.replace(/\s+/g, ''), 'hex'))}
  if (s.toserver_base64 !== undefined) return {dir: 'toserver', data: new Uint8Array(Buffer.from(s.toserver_base64, 'base64'))}
  if (s.toclient_base64 !== undefined) return {dir: 'toclient', data: new Uint8Array(Buffer.from(s.toclient_base64, 'base64'))}
  return undefined
}

/** A sample as a harness script. */
export function sampleScript(s: SampleDoc): ScriptStep[] {
  const steps = s.steps ?? [s]
  const out: ScriptStep[] = []
  for (const st of steps) {
    const x = stepToScript(st)
    if (x) out.push(x)
  }
  return out
}

/** Map an offset of the original stream to the edited stream (edits sorted, non-overlapping). */
function mapOffset(o: number, edits: readonly Edit[]): number {
  let delta = 0
  for (const e of edits) {
    if (e.off + e.len <= o) delta += e.data.length - e.len
    else if (e.off < o) return e.off + delta + e.data.length
    else break
  }
  return o + delta
}

/** Apply per-direction edits to a script, keeping the step order (step boundaries are remapped). */
export function applyEditsToScript(script: readonly ScriptStep[], edits: Record<Direction, Edit[]>): ScriptStep[] {
  const streams: Record<Direction, Uint8Array> = {toserver: new Uint8Array(0), toclient: new Uint8Array(0)}
  const bounds: {dir: Direction; start: number; end: number}[] = []
  for (const dir of ['toserver', 'toclient'] as const) {
    const parts = script.filter((s) => s.dir === dir).map((s) => s.data)
    streams[dir] = new Uint8Array(Buffer.concat(parts))
  }
  const pos: Record<Direction, number> = {toserver: 0, toclient: 0}
  for (const s of script) {
    bounds.push({dir: s.dir, start: pos[s.dir], end: pos[s.dir] + s.data.length})
    pos[s.dir] += s.data.length
  }
  const fixed: Record<Direction, Uint8Array> = {
    toserver: applyEdits(streams.toserver, 0, edits.toserver),
    toclient: applyEdits(streams.toclient, 0, edits.toclient),
  }
  const sorted: Record<Direction, Edit[]> = {
    toserver: [...edits.toserver].sort((a, b) => a.off - b.off),
    toclient: [...edits.toclient].sort((a, b) => a.off - b.off),
  }
  return bounds.map((b) => ({
    dir: b.dir,
    data: fixed[b.dir].subarray(mapOffset(b.start, sorted[b.dir]), mapOffset(b.end, sorted[b.dir])),
  }))
}

function judge(set: RuleSet, factory: AnalyzerFactory, script: readonly ScriptStep[], chunkSize?: number) {
  const res = runAnalyzer(factory, script, {chunkSize})
  const edits: Record<Direction, Edit[]> = {toserver: [], toclient: []}
  let matched = 0
  let fixable = true
  let notes: string[] = []
  for (const pdu of res.pdus) {
    for (const m of set.evaluate(pdu)) {
      matched++
      edits[pdu.dir].push(...m.edits)
      if (m.note) {
        fixable = false
        notes = [...notes, m.note]
      }
    }
  }
  return {matched, edits, fixable, notes, pdus: res.pdus.length}
}

/** Test one rule's samples with the analyzer of its protocol. Never throws on sample content. */
export function testRule(rule: CompiledRule, factory: AnalyzerFactory): RuleTestResult {
  const set = new RuleSet([rule], {actionFor: () => 'fix'})
  const samples: SampleResult[] = []
  const groups: ['malicious' | 'benign', SampleDoc[]][] = [
    ['malicious', rule.doc.samples?.malicious ?? []],
    ['benign', rule.doc.samples?.benign ?? []],
  ]
  for (const [kind, list] of groups) {
    for (const s of list) {
      const problems: string[] = []
      const script = sampleScript(s)
      const size = script.reduce((n, st) => n + st.data.length, 0)
      if (size > MAX_SAMPLE_BYTES) {
        samples.push({kind, name: s.name, ok: false, problems: [`sample larger than ${MAX_SAMPLE_BYTES} bytes`]})
        continue
      }
      try {
        const whole = judge(set, factory, script)
        // a datagram is atomic: only stream protocols can be cut into 1-byte chunks
        const bytewise = factory.transport === 'udp' ? whole : judge(set, factory, script, 1)
        if (whole.pdus === 0) problems.push('the analyzer emitted no unit for this sample')
        if (kind === 'malicious') {
          if (whole.matched === 0) problems.push('malicious sample did not match')
          if (bytewise.matched === 0) problems.push('malicious sample did not match when fed in 1-byte chunks')
          if (whole.matched > 0 && rule.fixes.length > 0) {
            if (!whole.fixable) problems.push(`fix could not be applied (${whole.notes.join(', ')})`)
            else {
              const fixed = applyEditsToScript(script, whole.edits)
              const after = judge(set, factory, fixed)
              if (after.matched > 0) problems.push('the fix does not neutralize the sample: the rule still matches after it')
            }
          }
        } else {
          if (whole.matched > 0) problems.push('benign sample matched')
          if (bytewise.matched > 0) problems.push('benign sample matched when fed in 1-byte chunks')
        }
      } catch (e) {
        problems.push(`analyzer or engine threw: ${(e as Error).message}`)
      }
      samples.push({kind, name: s.name, ok: problems.length === 0, problems})
    }
  }
  return {id: rule.id, ok: samples.every((s) => s.ok), samples}
}
