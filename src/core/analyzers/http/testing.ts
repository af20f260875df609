/** Test helpers for the HTTP analyzer: fixture loading (see fixtures/README.md). */
import {readFileSync} from 'node:fs'
import type {ScriptStep} from '../harness.js'
import type {FieldValue, Pdu} from '../types.js'
import {percentDecode} from './uri.js'
import {jsonUnescape} from '../../rules/transforms.js'

export const FIXTURE_DIR = new URL('./fixtures/', import.meta.url)

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

export const FIXTURES = [
  'get', 'pipelined', 'wikipedia-1', 'wikipedia-2', 'webdav-1', 'webdav-2', 'smuggling-cl-te',
  'smuggling-te-cl', 'cl-uint64max', 'shellshock', 'log4shell-uri', 'log4shell-class',
] as const


/**
 * Check that every field value carrying off/len maps onto the stream bytes it came from:
 * raw text equals the value (args: decodes to it; folded headers: unfolds to it; numbers parse
 * to it). Returns the mismatches (empty when all spans are right).
 */
export function spanProblems(pdus: readonly Pdu[], streams: Record<'toserver' | 'toclient', Uint8Array>): string[] {
  const problems: string[] = []
  for (const p of pdus) {
    const stream = streams[p.dir]
    for (const [name, val] of p.fields) {
      const list: FieldValue[] = Array.isArray(val) ? val : [val]
      for (const fv of list) {
        if (fv.off === undefined) continue
        const len = fv.len ?? -1
        if (fv.off < 0 || len < 0 || fv.off + len > stream.length) {
          problems.push(`${name}: span ${fv.off}+${len} outside stream of ${stream.length}`)
          continue
        }
        const raw = Buffer.from(stream.subarray(fv.off, fv.off + len)).toString('latin1')
        let ok: boolean
        if (typeof fv.v === 'bigint') ok = (fv.v === -1n && raw === '') || (/^\s*\d+\s*$/.test(raw) && BigInt(raw.trim()) === fv.v)
        else if (typeof fv.v === 'number') ok = String(fv.v) === raw
        else if (name.startsWith('http.arg.') || name === 'http.args') ok = percentDecode(raw, undefined, true) === fv.v
        else if (name === 'http.json_values') ok = jsonUnescape(raw) === fv.v
        else ok = raw === fv.v || raw.replace(/[ \t]*\r?\n[ \t]+/g, ' ') === fv.v
        if (!ok) problems.push(`${name}: stream bytes ${JSON.stringify(raw.slice(0, 80))} != value ${JSON.stringify(String(fv.v).slice(0, 80))}`)
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
