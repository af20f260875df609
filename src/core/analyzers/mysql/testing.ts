/**
 * Test support for the binary database analyzers (mysql, tds, tns, ssrp): span checks and fuzz
 * inputs. (Not used by the engine.)
 */
import fc from 'fast-check'
import type {ScriptStep} from '../harness.js'
import {directionBytes} from '../line/testing.js'
import type {Direction, FieldValue, Pdu} from '../types.js'

/**
 * Every value with a span must lie inside its PDU and equal the stream bytes under it: latin1 for
 * strings, UCS-2LE decoded to latin1 ('?' above U+00FF) for fields `ucs2(name)` selects.
 * Returns the offenders (empty when all match).
 */
export function binarySpanMismatches(pdus: readonly Pdu[], script: readonly ScriptStep[], ucs2: (name: string) => boolean = () => false): string[] {
  const streams = {toserver: directionBytes(script, 'toserver'), toclient: directionBytes(script, 'toclient')}
  const bad: string[] = []
  for (const p of pdus) {
    const s = streams[p.dir]
    for (const [name, fv] of p.fields) {
      for (const v of Array.isArray(fv) ? fv : [fv]) {
        if (v.off === undefined || v.len === undefined) continue
        if (v.off < p.start || v.off + v.len > p.end || v.off + v.len > s.length) {
          bad.push(`${name}@${v.off}+${v.len} outside pdu [${p.start}, ${p.end})`)
          continue
        }
        const raw = s.subarray(v.off, v.off + v.len)
        const got = ucs2(name)
          ? Buffer.from(raw).toString('utf16le').replace(/[^\u0000-\u00ff]/g, '?')
          : Buffer.from(raw).toString('latin1')
        if (got !== v.v) bad.push(`${name}@${v.off}+${v.len}: ${JSON.stringify(got.slice(0, 40))} != ${JSON.stringify(String(v.v).slice(0, 40))}`)
      }
    }
  }
  return bad
}

/** the single value of a field (throws in tests when absent or multi) */
export function one(p: Pdu | undefined, name: string): FieldValue {
  const v = p?.fields.get(name)
  if (v === undefined || Array.isArray(v)) throw new Error(`${name}: ${JSON.stringify(v)}`)
  return v
}

/** the values of a field as a list */
export function many(p: Pdu | undefined, name: string): FieldValue[] {
  const v = p?.fields.get(name)
  return v === undefined ? [] : Array.isArray(v) ? v : [v]
}

/** a fast-check arbitrary of scripts: random bytes, or fixture steps with bytes flipped, cut or inserted */
export function fuzzScripts(fixture: readonly ScriptStep[]): fc.Arbitrary<ScriptStep[]> {
  const dir = fc.constantFrom<Direction>('toserver', 'toclient')
  const random = fc.array(fc.record({dir, data: fc.uint8Array({maxLength: 300})}), {maxLength: 8})
  const mutated = fc
    .record({
      flips: fc.array(fc.tuple(fc.nat(), fc.integer({min: 0, max: 255})), {maxLength: 6}),
      cut: fc.option(fc.nat(), {nil: undefined}),
      insert: fc.option(fc.tuple(fc.nat(), fc.uint8Array({minLength: 1, maxLength: 40})), {nil: undefined}),
    })
    .map(({flips, cut, insert}) => {
      const steps = fixture.map((s) => ({dir: s.dir, data: Uint8Array.from(s.data)}))
      const total = steps.reduce((n, s) => n + s.data.length, 0)
      if (total === 0) return steps
      const at = (pos: number): [number, number] => {
        let p = pos % total
        for (let i = 0; i < steps.length; i++) {
          if (p < steps[i]!.data.length) return [i, p]
          p -= steps[i]!.data.length
        }
        return [0, 0]
      }
      for (const [pos, v] of flips) {
        const [i, o] = at(pos)
        steps[i]!.data[o] = v
      }
      if (insert !== undefined) {
        const [i, o] = at(insert[0])
        const d = steps[i]!.data
        steps[i] = {dir: steps[i]!.dir, data: Uint8Array.from([...d.subarray(0, o), ...insert[1], ...d.subarray(o)])}
      }
      if (cut !== undefined) {
        const [i, o] = at(cut)
        steps.length = i + 1
        steps[i] = {dir: steps[i]!.dir, data: steps[i]!.data.subarray(0, o)}
      }
      return steps
    })
  return fc.oneof(random, mutated)
}

/**
 * Feeds `script` to `a` in `chunk`-byte pieces (0: each step whole) and returns the largest buffer
 * capacity its `stats()` reported after any piece (the fuzz tests' bound on held memory).
 */
export function feedMaxCapacity(a: {data(dir: Direction, chunk: Uint8Array): void; stats(): {capacity: number}}, script: readonly ScriptStep[], chunk: number): number {
  let maxCap = 0
  for (const s of script) {
    const step = chunk === 0 ? s.data.length || 1 : chunk
    for (let i = 0; i < s.data.length; i += step) {
      a.data(s.dir, s.data.subarray(i, i + step))
      maxCap = Math.max(maxCap, a.stats().capacity)
    }
  }
  return maxCap
}
