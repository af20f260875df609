/**
 * Fuzz: random record soups and mutated real captures, fed in random pieces with random gaps,
 * under small limits. The analyzer must never throw, must keep every buffer under its cap, and
 * must emit PDUs whose spans lie inside what it was fed. PATCHPOINT_FUZZ_RUNS raises the runs.
 */
import fc from 'fast-check'
import {describe, expect, it} from 'vitest'
import type {AnalyzerContext, Direction, Pdu} from '../types.js'
import {TLS_LIMITS, TlsAnalyzer, type TlsLimits} from './index.js'
import {FIXTURES, loadFixture} from './testing.js'

const RUNS = Number(process.env.PATCHPOINT_FUZZ_RUNS ?? 10000)

const SMALL: Partial<TlsLimits> = {
  maxRecordHold: 64, maxHandshakeBytes: 96, maxHandshakePieces: 3, maxListItems: 4, maxResyncBytes: 40, maxPendingHeartbeats: 2,
}

type Op = {dir: Direction; data: Uint8Array} | {dir: Direction; gap: number}

function drive(ops: readonly Op[], limits: Partial<TlsLimits>): Pdu[] {
  const pdus: Pdu[] = []
  const ctx: AnalyzerContext = {emit: (p) => pdus.push(p), anomaly: (a) => expect(['applayer', 'limit']).toContain(a.type)}
  const a = new TlsAnalyzer(ctx, limits)
  const L = {...TLS_LIMITS, ...limits}
  const fed = {toserver: 0, toclient: 0}
  for (const op of ops) {
    if ('gap' in op) {
      a.gap(op.dir, op.gap)
      fed[op.dir] += op.gap
    } else {
      a.data(op.dir, op.data)
      fed[op.dir] += op.data.length
    }
    // plain comparisons per op (expect() per op per byte is slow); expect() only on a violation
    const st = a.stats()
    const cap = 2 * (Math.max(L.maxRecordHold, 512) + Math.max(L.maxHandshakeBytes, 512))
    const held = 2 * (L.maxRecordHold + L.maxHandshakeBytes + 5)
    if (st.capacity > cap || st.buffered > held || st.pieces > L.maxHandshakePieces || st.queued > L.maxPendingHeartbeats) {
      expect({...st, cap, held}).toEqual('within caps')
    }
    for (const d of ['toserver', 'toclient'] as const) {
      const pf = a.pendingFrom(d)
      if (!(pf === -1 || (pf >= 0 && pf <= fed[d]))) expect({pendingFrom: pf, fed: fed[d]}).toEqual('within fed bytes')
    }
  }
  a.end('toserver')
  a.end('toclient')
  for (const p of pdus) {
    expect(p.start).toBeLessThanOrEqual(p.end)
    expect(p.end).toBeLessThanOrEqual(fed[p.dir])
    for (const v of p.fields.values()) {
      for (const fv of Array.isArray(v) ? v : [v]) {
        if (fv.off !== undefined) {
          expect(fv.off).toBeGreaterThanOrEqual(0)
          expect(fv.off + (fv.len ?? 0)).toBeLessThanOrEqual(fed[p.dir])
        }
      }
    }
  }
  return pdus
}

const dirArb = fc.constantFrom<Direction>('toserver', 'toclient')
/** a record header (often plausible) followed by a body that may or may not match its length */
const recordArb = fc.record({
  type: fc.constantFrom(20, 21, 22, 23, 24, 0, 0x80),
  minor: fc.constantFrom(0, 1, 3, 4, 9),
  len: fc.oneof(fc.integer({min: 0, max: 80}), fc.constantFrom(0xffff, 18433)),
  body: fc.uint8Array({maxLength: 90}),
  hs: fc.option(fc.record({type: fc.constantFrom(1, 2, 11), len: fc.integer({min: 0, max: 200})})),
}).map(({type, minor, len, body, hs}) => {
  const pre = hs ? [hs.type, 0, hs.len >> 8, hs.len & 0xff] : []
  return Uint8Array.from([type, 3, minor, len >> 8, len & 0xff, ...pre, ...body])
})
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {weight: 8, arbitrary: fc.record({dir: dirArb, data: recordArb})},
  {weight: 2, arbitrary: fc.record({dir: dirArb, data: fc.uint8Array({maxLength: 64})})},
  {weight: 1, arbitrary: fc.record({dir: dirArb, gap: fc.integer({min: 1, max: 200})})},
)

const fixtures = FIXTURES.map((f) => loadFixture(f))

describe('fuzz', () => {
  it('record soups and random bytes, random gaps, small limits', () => {
    fc.assert(fc.property(fc.array(opArb, {maxLength: 16}), (ops) => {
      drive(ops, SMALL)
    }), {numRuns: RUNS})
  })

  it('mutated captures in random pieces, default and small limits', () => {
    const mutation = fc.record({
      fixture: fc.integer({min: 0, max: fixtures.length - 1}),
      edits: fc.array(fc.record({at: fc.nat(), kind: fc.constantFrom('flip', 'insert', 'delete'), byte: fc.nat(255)}), {maxLength: 6}),
      piece: fc.oneof({weight: 1, arbitrary: fc.integer({min: 1, max: 8})}, {weight: 4, arbitrary: fc.integer({min: 9, max: 3000})}),
      small: fc.boolean(),
    })
    fc.assert(fc.property(mutation, ({fixture, edits, piece, small}) => {
      const ops: Op[] = []
      for (const [i, s] of fixtures[fixture].slice(0, 10).entries()) {
        let data = Buffer.from(s.data)
        for (const e of edits) {
          if (i % 3 === e.at % 3 && data.length > 0) {
            const at = e.at % data.length
            if (e.kind === 'flip') data[at] = e.byte
            else if (e.kind === 'insert') data = Buffer.concat([data.subarray(0, at), Buffer.from([e.byte]), data.subarray(at)])
            else data = Buffer.concat([data.subarray(0, at), data.subarray(at + 1)])
          }
        }
        for (let k = 0; k < data.length; k += piece) ops.push({dir: s.dir, data: Uint8Array.from(data.subarray(k, k + piece))})
      }
      drive(ops, small ? SMALL : {})
    }), {numRuns: Math.max(100, Math.floor(RUNS / 20))})
  })

  it('huge declared lengths hold nothing beyond the caps', () => {
    const ops: Op[] = [{dir: 'toserver', data: Uint8Array.from([22, 3, 3, 0xff, 0xff, 1, 0xff, 0xff, 0xff])}]
    for (let i = 0; i < 80; i++) ops.push({dir: 'toserver', data: new Uint8Array(1000).fill(0x16)})
    ops.push({dir: 'toserver', gap: 1e12})
    const pdus = drive(ops, SMALL)
    expect(pdus[0].fields.get('tls.record.truncated')).toEqual({v: 1})
  })
})
