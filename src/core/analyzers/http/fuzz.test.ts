/**
 * Fuzz: random HTTP-ish token soups and mutated real captures, fed in random pieces with random
 * gaps, under small limits. The analyzer must never throw, must keep every buffer under its cap,
 * and must emit PDUs whose spans lie inside what it was fed. PATCHPOINT_FUZZ_RUNS raises the runs.
 */
import fc from 'fast-check'
import {describe, expect, it} from 'vitest'
import type {AnalyzerContext, Direction, Pdu} from '../types.js'
import {runAnalyzer, summarize} from '../harness.js'
import {HttpAnalyzer, httpAnalyzerWith, type HttpLimits} from './index.js'
import {FIXTURES, loadFixture} from './testing.js'

/** default: 7,500 token-soup runs + 2,500 mutated-capture runs = 10,000 */
const RUNS = Number(process.env.PATCHPOINT_FUZZ_RUNS ?? 7500)
const MUTATED_RUNS = Math.max(1, Math.round(RUNS / 3))

const SMALL: Partial<HttpLimits> = {
  maxHeaderBytes: 300, maxRequestLine: 120, maxHeaders: 8, maxBodyInspect: 64, maxResponseBody: 32,
  maxChunkLine: 40, maxChunkExts: 2, maxPipeline: 4, maxArgs: 5, maxCookies: 3, maxRanges: 3,
  maxMultipartParts: 2, maxPartBytes: 8, maxBodyPieces: 4,
}
const RESYNC_SLACK = 32

const TOKENS = [
  'GET ', 'POST ', 'HEAD ', 'CONNECT ', 'PUT ', '/', '/a/../b', '%2e%2e', '%c0%af', '%u002e', '%25', '?', '&', '=', ';', '+',
  ' HTTP/1.1', ' HTTP/1.0', 'HTTP/1.1 ', '200 OK', '100 Continue', '101 X', '204 N', '304 N', '404 N',
  '\r\n', '\r\n\r\n', '\n', '\r', ' ', '\t', ':', 'Host: x', 'Content-Length: ', 'Content-Length: 18446744073709551616',
  'Transfer-Encoding: chunked', 'Transfer-Encoding: gzip', 'Expect: 100-continue', 'Range: bytes=0-5,-3',
  'Cookie: a=1; b=2', 'Content-Type: multipart/form-data; boundary=B', 'Content-Type: application/x-www-form-urlencoded',
  '--B\r\nContent-Disposition: form-data; name="n"; filename="f.php"\r\n\r\n', '--B--', '0', '5', '1a', 'fffffffffffffffff', ';ext',
  '12', 'abcdef', '\u0000', '\u00ff',
]

type Op = {dir: Direction; data: Uint8Array} | {dir: Direction; gap: number}

function drive(ops: readonly Op[], limits: Partial<HttpLimits>): Pdu[] {
  const pdus: Pdu[] = []
  const ctx: AnalyzerContext = {
    emit: (p) => pdus.push(p),
    anomaly: (r) => {
      if (r.type !== 'applayer') throw new Error(`anomaly type ${r.type}`)
    },
  }
  const a = new HttpAnalyzer(ctx, limits)
  const fed = {toserver: 0, toclient: 0}
  const L = {...limits} as HttpLimits
  const maxCap = 2 * (L.maxHeaderBytes + RESYNC_SLACK)
  for (const op of ops) {
    if ('gap' in op) {
      a.gap(op.dir, op.gap)
      fed[op.dir] += op.gap
    } else {
      a.data(op.dir, op.data)
      fed[op.dir] += op.data.length
    }
    // plain comparisons per op (expect() per byte-sized op is too slow for 10k runs)
    const st = a.stats()
    if (st.capacity > maxCap + 2 * 512 || st.buffered > maxCap) throw new Error(`head buffers over cap: ${JSON.stringify(st)}`)
    if (st.bodyCapacity > L.maxBodyInspect + L.maxResponseBody) throw new Error(`body buffers over cap: ${JSON.stringify(st)}`)
    if (st.pipeline > L.maxPipeline) throw new Error(`pipeline over cap: ${st.pipeline}`)
    for (const d of ['toserver', 'toclient'] as const) {
      const pf = a.pendingFrom(d)
      if (!(pf === -1 || (pf >= 0 && pf <= fed[d]))) throw new Error(`pendingFrom ${pf} outside [0, ${fed[d]}]`)
    }
  }
  a.end('toserver')
  a.end('toclient')
  for (const p of pdus) {
    if (!(p.start <= p.end && p.end <= fed[p.dir])) throw new Error(`pdu [${p.start}, ${p.end}) outside ${fed[p.dir]}`)
    for (const [k, v] of p.fields) {
      for (const fv of Array.isArray(v) ? v : [v]) {
        if (fv.off !== undefined && (fv.off < 0 || fv.off + (fv.len ?? 0) > fed[p.dir])) throw new Error(`${k} span ${fv.off}+${fv.len} outside ${fed[p.dir]}`)
      }
    }
  }
  return pdus
}

const dirArb = fc.constantFrom<Direction>('toserver', 'toclient')
const tokenSoup = fc.array(fc.oneof(fc.constantFrom(...TOKENS), fc.string({maxLength: 6})), {maxLength: 40}).map((t) => Uint8Array.from(Buffer.from(t.join(''), 'latin1')))
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {weight: 8, arbitrary: fc.record({dir: dirArb, data: tokenSoup})},
  {weight: 2, arbitrary: fc.record({dir: dirArb, data: fc.uint8Array({maxLength: 64})})},
  {weight: 1, arbitrary: fc.record({dir: dirArb, gap: fc.integer({min: 1, max: 100})})},
)

const fixtures = FIXTURES.map((f) => loadFixture(f))

describe('fuzz', () => {
  it('token soups and random bytes, random gaps, small limits', () => {
    fc.assert(fc.property(fc.array(opArb, {maxLength: 12}), (ops) => {
      drive(ops, SMALL)
    }), {numRuns: RUNS})
  })

  it('mutated captures in random pieces, default and small limits', () => {
    const mutation = fc.record({
      fixture: fc.integer({min: 0, max: fixtures.length - 1}),
      edits: fc.array(fc.record({at: fc.nat(), kind: fc.constantFrom('flip', 'insert', 'delete', 'token'), byte: fc.nat(255), token: fc.constantFrom(...TOKENS)}), {maxLength: 6}),
      piece: fc.integer({min: 16, max: 1500}),
      small: fc.boolean(),
    })
    fc.assert(fc.property(mutation, ({fixture, edits, piece, small}) => {
      const steps = fixtures[fixture].slice(0, 12)
      const ops: Op[] = []
      for (const [i, s] of steps.entries()) {
        let data = Buffer.from(s.data)
        for (const e of edits) {
          if (i % 2 === e.at % 2 && data.length > 0) {
            const at = e.at % data.length
            if (e.kind === 'flip') data[at] = e.byte
            else if (e.kind === 'insert') data = Buffer.concat([data.subarray(0, at), Buffer.from([e.byte]), data.subarray(at)])
            else if (e.kind === 'delete') data = Buffer.concat([data.subarray(0, at), data.subarray(at + 1)])
            else data = Buffer.concat([data.subarray(0, at), Buffer.from(e.token, 'latin1'), data.subarray(at)])
          }
        }
        for (let k = 0; k < data.length; k += piece) ops.push({dir: s.dir, data: Uint8Array.from(data.subarray(k, k + piece))})
      }
      drive(ops, small ? SMALL : {maxHeaderBytes: 64 * 1024, maxRequestLine: 16 * 1024, maxBodyInspect: 64 * 1024, maxResponseBody: 4096, maxPipeline: 64})
    }), {numRuns: MUTATED_RUNS})
  })

  it('split invariance on random input: whole == 1-byte chunks == random cut', () => {
    const factory = httpAnalyzerWith(SMALL)
    fc.assert(fc.property(fc.array(fc.record({dir: dirArb, data: tokenSoup}), {maxLength: 6}), fc.nat(), (steps, cutSeed) => {
      const whole = runAnalyzer(factory, steps)
      const want = JSON.stringify([summarize(whole.pdus), whole.anomalies])
      const bytewise = runAnalyzer(factory, steps, {chunkSize: 1})
      expect(JSON.stringify([summarize(bytewise.pdus), bytewise.anomalies])).toBe(want)
      const chunk = 1 + (cutSeed % 17)
      const cut = runAnalyzer(factory, steps, {chunkSize: chunk})
      expect(JSON.stringify([summarize(cut.pdus), cut.anomalies])).toBe(want)
    }), {numRuns: Math.max(1, Math.round(RUNS / 5))})
  })

  it('huge declared lengths hold nothing beyond the caps', () => {
    const pdus = drive([
      {dir: 'toserver', data: Buffer.from('POST / HTTP/1.1\r\nContent-Length: 9223372036854775807\r\n\r\n', 'latin1')},
      ...Array.from({length: 50}, () => ({dir: 'toserver' as const, data: new Uint8Array(1000).fill(65)})),
      {dir: 'toserver', gap: 1e12},
    ], SMALL)
    expect(pdus.length).toBe(1)
    expect(pdus[0].fields.get('http.body.truncated')).toEqual({v: 1})
  })
})
