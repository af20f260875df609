/** Test helpers for the TLS analyzer: fixture loading (fixtures/extract.sh made them). */
import {readFileSync} from 'node:fs'
import type {ScriptStep} from '../harness.js'
import type {FieldValue, Pdu} from '../types.js'

export const FIXTURE_DIR = new URL('./fixtures/', import.meta.url)
export const FIXTURES = ['heartbleed', 'ecdhe', 'rawip'] as const

/** Read a fixture: '> HEX' lines are toserver segments, '< HEX' toclient, '#' comments. */
export function loadFixture(name: string): ScriptStep[] {
  const text = readFileSync(new URL(name + '.txt', FIXTURE_DIR), 'latin1')
  const steps: ScriptStep[] = []
  for (const line of text.split('\n')) {
    if (line.startsWith('> ') || line.startsWith('< ')) {
      steps.push({dir: line[0] === '>' ? 'toserver' : 'toclient', data: Uint8Array.from(Buffer.from(line.slice(2).trim(), 'hex'))})
    }
  }
  return steps
}

/** All bytes of one direction, concatenated: stream offsets index into it. */
export function streamOf(steps: readonly ScriptStep[], dir: 'toserver' | 'toclient'): Uint8Array {
  return Uint8Array.from(Buffer.concat(steps.filter((s) => s.dir === dir).map((s) => s.data)))
}

/** hex text (spaces allowed) -> bytes */
export function hex(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text.replace(/\s+/g, ''), 'hex'))
}

/**
 * Check every field value with off/len against the stream: strings equal the latin1 bytes,
 * numbers equal the big-endian value of the bytes. Returns the mismatches.
 */
export function spanProblems(pdus: readonly Pdu[], streams: Record<'toserver' | 'toclient', Uint8Array>): string[] {
  const problems: string[] = []
  for (const p of pdus) {
    const stream = streams[p.dir]
    for (const [name, val] of p.fields) {
      for (const fv of (Array.isArray(val) ? val : [val]) as FieldValue[]) {
        if (fv.off === undefined) continue
        const len = fv.len ?? -1
        if (fv.off < 0 || len < 0 || fv.off + len > stream.length) {
          problems.push(`${name}: span ${fv.off}+${len} outside stream of ${stream.length}`)
          continue
        }
        const raw = stream.subarray(fv.off, fv.off + len)
        const ok = typeof fv.v === 'number' ? raw.reduce((n, b) => n * 256 + b, 0) === fv.v : Buffer.from(raw).toString('latin1') === fv.v
        if (!ok) problems.push(`${name}@${fv.off}: stream bytes ${Buffer.from(raw).toString('hex')} != value ${String(fv.v)}`)
      }
    }
  }
  return problems
}

/** the single value of a field (first when several), or undefined */
export function val(p: Pdu | undefined, name: string): string | number | bigint | undefined {
  const f = p?.fields.get(name)
  if (f === undefined) return undefined
  return Array.isArray(f) ? f[0]?.v : f.v
}

/** all values of a field */
export function vals(p: Pdu | undefined, name: string): (string | number | bigint)[] {
  const f = p?.fields.get(name)
  if (f === undefined) return []
  return (Array.isArray(f) ? f : [f]).map((x) => x.v)
}
