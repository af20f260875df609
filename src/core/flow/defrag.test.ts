import {describe, it, expect} from 'vitest'
import fc from 'fast-check'
import {existsSync, readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import type {AnomalyReport} from '../events/anomaly.js'
import {
  Defragmenter, DEFRAG_LIMITS, DEFRAG_POLICIES, findFragmentNextHeader, internetChecksum,
  type DefragLimits, type DefragPolicy, type FragmentInput,
} from './defrag.js'

const RUNS = Number(process.env.PATCHPOINT_FUZZ_RUNS ?? '') || 150

// ---------------------------------------------------------------------------------------------
// helpers

function collect(): {list: AnomalyReport[]; sink: (r: AnomalyReport) => void; events: () => string[]} {
  const list: AnomalyReport[] = []
  return {list, sink: (r) => { list.push(r) }, events: () => list.map((r) => r.event)}
}

function mk(opts: {limits?: Partial<DefragLimits>; policy?: DefragPolicy; policyFor?: (d: string) => DefragPolicy | undefined} = {}) {
  const a = collect()
  const d = new Defragmenter({onAnomaly: a.sink, limits: opts.limits, defaultPolicy: opts.policy, policyFor: opts.policyFor})
  return {d, a}
}

/** a 20-byte (or longer, with options) IPv4 header with a valid checksum */
function v4Header(opts: {id: number; proto: number; totalLength: number; flagsOffset?: number; options?: number[]}): Uint8Array {
  const opt = opts.options ?? []
  const hl = 20 + opt.length
  const h = new Uint8Array(hl)
  h[0] = 0x40 | (hl / 4)
  h[2] = opts.totalLength >>> 8
  h[3] = opts.totalLength & 0xff
  h[4] = opts.id >>> 8
  h[5] = opts.id & 0xff
  const fo = opts.flagsOffset ?? 0
  h[6] = fo >>> 8
  h[7] = fo & 0xff
  h[8] = 64
  h[9] = opts.proto
  h.set([10, 0, 0, 1, 10, 0, 0, 2], 12)
  h.set(opt, 20)
  const c = internetChecksum(h, 0, hl)
  h[10] = c >>> 8
  h[11] = c & 0xff
  return h
}

/** IPv6 header (+ one 8-byte Destination Options header when `ext`) as in the ORIGINAL packet */
function v6Header(opts: {proto: number; payloadLength: number; ext: boolean}): Uint8Array {
  const h = new Uint8Array(opts.ext ? 48 : 40)
  h[0] = 0x60
  h[4] = opts.payloadLength >>> 8
  h[5] = opts.payloadLength & 0xff
  h[6] = opts.ext ? 60 : opts.proto
  h[7] = 64
  h[8] = 0x20
  h[9] = 0x01
  h[39] = 1
  h[24] = 0x20
  h[25] = 0x01
  h[23] = 2
  if (opts.ext) {
    h[40] = opts.proto
    h[41] = 0
    h[42] = 1 // PadN
    h[43] = 4
  }
  return h
}

interface Cut { off: number; end: number; more: boolean; bytes: Uint8Array }

function v4Frag(id: number, proto: number, c: Cut, ts = 0, src = '10.0.0.1', dst = '10.0.0.2', options: number[] = []): FragmentInput {
  const header = v4Header({id, proto, totalLength: 20 + options.length + c.bytes.length,
    flagsOffset: (c.more ? 0x2000 : 0) | (c.off / 8), options})
  return {family: 4, src, dst, proto, id, offset: c.off, moreFragments: c.more, data: c.bytes, header, tsUs: ts}
}

function v6Frag(id: number, proto: number, c: Cut, ext: boolean, giveOffset: boolean, ts = 0): FragmentInput {
  const header = v6Header({proto, payloadLength: 0, ext})
  // in a fragment, the next-header byte just before the Fragment header holds 44
  const at = ext ? 40 : 6
  header[at] = 44
  return {family: 6, src: '2001::1', dst: '2001::2', proto, id, offset: c.off, moreFragments: c.more,
    data: c.bytes, header, prevNextHeaderOffset: giveOffset ? at : undefined, tsUs: ts}
}

/** a fresh copy inside a larger Buffer, like the capture library hands out: the tests scribble
 * over it after add() to prove the defragmenter copied what it kept (Buffer#slice is a view!) */
function viewOf(bytes: Uint8Array): Uint8Array {
  const big = Buffer.alloc(bytes.length + 16)
  big.set(bytes, 7)
  return big.subarray(7, 7 + bytes.length)
}

function fill(n: number, v: number): Uint8Array {
  return new Uint8Array(n).fill(v)
}

// ---------------------------------------------------------------------------------------------
// per-byte REFERENCE MODEL (written independently of defrag-policy.ts on purpose)

const RULE: Record<DefragPolicy, (o: {off: number; end: number}, n: {off: number; end: number}) => boolean> = {
  first: () => false,
  last: () => true,
  bsd: (o, n) => n.off < o.off,
  'bsd-right': (o, n) => n.end > o.end || (n.end === o.end && n.off <= o.off),
  linux: (o, n) => n.off <= o.off,
  windows: (o, n) => n.off < o.off && n.end > o.end,
  solaris: (o, n) => n.off < o.off && n.end >= o.end,
}

interface ModelOut { doneAt: number; bytes: Uint8Array; conflicts: number }

/** Feed valid fragments in order; the datagram completes at the first index where the last
 * fragment has been seen and every byte of [0, total) is held. */
function model(frags: Cut[], policy: DefragPolicy): ModelOut {
  const owner: number[] = []
  const val: number[] = []
  let total = -1
  let conflicts = 0
  for (let i = 0; i < frags.length; i++) {
    const n = frags[i]
    let conflict = false
    for (let b = n.off; b < n.end; b++) {
      const v = n.bytes[b - n.off]
      const o = owner[b]
      if (o === undefined) {
        owner[b] = i
        val[b] = v
        continue
      }
      if (val[b] !== v) conflict = true
      if (RULE[policy](frags[o], n)) {
        owner[b] = i
        val[b] = v
      }
    }
    if (conflict) conflicts++
    if (!n.more) total = n.end
    if (total >= 0) {
      let all = true
      for (let b = 0; b < total; b++) if (owner[b] === undefined) { all = false; break }
      if (all) return {doneAt: i, bytes: Uint8Array.from(val.slice(0, total)), conflicts}
    }
  }
  return {doneAt: -1, bytes: new Uint8Array(0), conflicts}
}

/** feed until the first reassembled datagram */
function feed(d: Defragmenter, frags: FragmentInput[]): {doneAt: number; out: Uint8Array | null} {
  for (let i = 0; i < frags.length; i++) {
    const r = d.add(frags[i])
    if (r) return {doneAt: i, out: r}
  }
  return {doneAt: -1, out: null}
}

// ---------------------------------------------------------------------------------------------
// generators

/** cut [0,len) at random multiples of 8 */
const cutsArb = (len: number) =>
  fc.uniqueArray(fc.integer({min: 1, max: Math.max(1, Math.ceil(len / 8) - 1)}), {maxLength: 40})
    .map((ks) => [0, ...ks.map((k) => k * 8).filter((x) => x < len).sort((a, b) => a - b), len])

function cutsToFrags(points: number[], data: Uint8Array): Cut[] {
  const out: Cut[] = []
  for (let i = 0; i + 1 < points.length; i++) {
    const off = points[i]
    const end = points[i + 1]
    if (end === off) continue
    out.push({off, end, more: end !== data.length, bytes: data.slice(off, end)})
  }
  return out
}

/** an 8-aligned sub-range of [0,len) that is a valid fragment: non-last ends on a multiple of
 * 8, last ends exactly at len */
function subRange(len: number, a: number, b: number, asLast: boolean): {off: number; end: number; more: boolean} | null {
  const blocks = Math.floor(len / 8)
  if (asLast || blocks === 0) {
    const off = Math.min(a % (blocks + 1), blocks) * 8
    return {off, end: len, more: false}
  }
  const s = a % blocks
  const e = s + 1 + (b % (blocks - s))
  return {off: s * 8, end: e * 8, more: true}
}

function shuffle<T>(xs: T[], keys: number[]): T[] {
  return xs.map((x, i) => ({x, k: keys[i % Math.max(1, keys.length)] ?? 0, i}))
    .sort((p, q) => p.k - q.k || p.i - q.i).map((p) => p.x)
}

// ---------------------------------------------------------------------------------------------

describe('Defragmenter: properties', () => {
  it('(a) any 8-aligned cut, shuffled, duplicated, with identical overlaps, rebuilds the original (v4 and v6)', () => {
    fc.assert(fc.property(
      fc.uint8Array({minLength: 1, maxLength: 1200}).chain((p) => fc.tuple(fc.constant(p), cutsArb(p.length))),
      fc.constantFrom<4 | 6>(4, 6),
      fc.constantFrom(...DEFRAG_POLICIES),
      fc.boolean(),
      fc.array(fc.tuple(fc.nat(), fc.nat(), fc.boolean()), {maxLength: 8}),
      fc.array(fc.nat(), {maxLength: 60}),
      fc.array(fc.nat({max: 1000}), {minLength: 1, maxLength: 60}),
      fc.integer({min: 0, max: 0xffff}),
      ([payload, points], family, policy, flag, extras, dups, keys, id) =>
        runA(payload, points, family, policy, flag, extras, dups, keys, id),
    ), {numRuns: RUNS})

    function runA(payload: Uint8Array, points: number[], family: 4 | 6, policy: DefragPolicy, flag: boolean,
      extras: [number, number, boolean][], dups: number[], keys: number[], id: number): boolean {
      const len = payload.length
      const base = cutsToFrags(points, payload)
      const frags: Cut[] = [...base]
      for (const [a, b, last] of extras) {
        const r = subRange(len, a, b, last)
        if (r) frags.push({...r, bytes: payload.slice(r.off, r.end)})
      }
      for (const k of dups) frags.push(frags[k % frags.length])
      const order = shuffle(frags, keys)
      const proto = 17
      const {d, a} = mk({policy})
      const inputs = order.map((c, i) => family === 4
        ? v4Frag(id, proto, {...c, bytes: viewOf(c.bytes)}, i, '10.0.0.1', '10.0.0.2', flag ? [0x94, 4, 0, 0] : [])
        : v6Frag(id, proto, {...c, bytes: viewOf(c.bytes)}, flag, id % 2 === 0, i))
      // scribble over every caller buffer after its add(): kept bytes must have been copied
      let out: Uint8Array | null = null
      for (const f of inputs) {
        out = d.add(f)
        f.data.fill(0xee)
        f.header.fill(0xee)
        if (out) break
      }
      expect(out).not.toBeNull()
      const o = out as Uint8Array
      if (family === 4) {
        const hl = flag ? 24 : 20
        const expected = new Uint8Array(hl + len)
        expected.set(v4Header({id, proto, totalLength: hl + len, options: flag ? [0x94, 4, 0, 0] : []}), 0)
        expected.set(payload, hl)
        expect(Buffer.from(o).equals(Buffer.from(expected))).toBe(true)
        expect(internetChecksum(o, 0, hl)).toBe(0)
      } else {
        const h = v6Header({proto, payloadLength: (flag ? 8 : 0) + len, ext: flag})
        const expected = new Uint8Array(h.length + len)
        expected.set(h, 0)
        expected.set(payload, h.length)
        expect(Buffer.from(o).equals(Buffer.from(expected))).toBe(true)
      }
      // identical overlaps are not conflicts, and nothing else is anomalous either
      expect(a.list).toEqual([])
      expect(d.stats.datagramsInFlight).toBe(0)
      expect(d.stats.bytesHeld).toBe(0)
      expect(d.stats.reassembled).toBe(1)
      return true
    }
  })

  it('(b) conflicting overlaps rebuild exactly the per-byte model under every policy and are reported', () => {
    fc.assert(fc.property(
      fc.integer({min: 1, max: 160}).chain((n) => fc.tuple(fc.constant(n), cutsArb(n))),
      fc.constantFrom(...DEFRAG_POLICIES),
      fc.constantFrom<4 | 6>(4, 6),
      fc.array(fc.tuple(fc.nat(), fc.nat(), fc.boolean(), fc.integer({min: 0, max: 2})), {minLength: 1, maxLength: 10}),
      fc.array(fc.nat({max: 1000}), {minLength: 1, maxLength: 60}),
      ([len, points], policy, family, extras, keys) => {
        const payload = new Uint8Array(len).fill(7)
        const frags: Cut[] = cutsToFrags(points, payload)
        for (const [a, b, last, v] of extras) {
          const r = subRange(len, a, b, last)
          if (!r) continue
          // bytes drawn from {v, 7}: some overlaps identical, some in conflict, some partly
          const bytes = new Uint8Array(r.end - r.off)
          for (let i = 0; i < bytes.length; i++) bytes[i] = (i + a) % 3 === 0 ? 7 : v
          frags.push({...r, bytes})
        }
        const order = shuffle(frags, keys)
        const m = model(order, policy)
        const {d, a} = mk({policy})
        const inputs = order.map((c, i) => family === 4
          ? v4Frag(9, 253, {...c, bytes: viewOf(c.bytes)}, i)
          : v6Frag(9, 253, {...c, bytes: viewOf(c.bytes)}, false, true, i))
        const got = feed(d, inputs)
        expect(got.doneAt).toBe(m.doneAt)
        const hl = family === 4 ? 20 : 40
        expect(Array.from((got.out as Uint8Array).subarray(hl))).toEqual(Array.from(m.bytes))
        const conflicts = a.list.filter((r) => r.event === 'defrag.overlap_conflict')
        expect(conflicts.length).toBe(m.conflicts)
        for (const c of conflicts) expect(c.detail?.policy).toBe(policy)
        expect(a.events().filter((e) => e !== 'defrag.overlap_conflict')).toEqual([])
        expect(d.stats.bytesHeld).toBe(0)
      },
    ), {numRuns: RUNS * 4})
  })

  it('garbage fragments never throw and keep state under the limits (fuzz)', () => {
    const limits = {maxFragmentsPerDatagram: 8, maxDatagrams: 5, maxBytes: 3000, timeoutUs: 1000}
    fc.assert(fc.property(
      fc.array(fc.record({
        family: fc.constantFrom<4 | 6>(4, 6),
        id: fc.integer({min: 0, max: 3}),
        proto: fc.constantFrom(6, 17, 1),
        offset: fc.oneof(fc.integer({min: 0, max: 40}).map((k) => k * 8), fc.integer({min: 8180, max: 8191}).map((k) => k * 8),
          fc.integer({min: -8, max: 70_000})),
        more: fc.boolean(),
        len: fc.oneof(fc.integer({min: 0, max: 40}).map((k) => k * 8), fc.integer({min: 0, max: 1500})),
        hlen: fc.constantFrom(0, 19, 20, 24, 40, 48),
        ts: fc.integer({min: 0, max: 5000}),
      }), {maxLength: 60}),
      (items) => {
        const {d} = mk({limits})
        for (const it of items) {
          const f: FragmentInput = {family: it.family, src: 'a', dst: 'b', proto: it.proto, id: it.id,
            offset: it.offset, moreFragments: it.more, data: new Uint8Array(it.len).fill(it.id),
            header: new Uint8Array(it.hlen), tsUs: it.ts}
          const out = d.add(f)
          if (out) expect(out.length).toBeLessThanOrEqual(65_535 + 48)
          expect(d.stats.datagramsInFlight).toBeLessThanOrEqual(limits.maxDatagrams)
          expect(d.stats.bytesHeld).toBeLessThanOrEqual(limits.maxBytes)
          expect(d.stats.bytesHeld).toBeGreaterThanOrEqual(0)
        }
        d.expire(Number.MAX_SAFE_INTEGER)
        expect(d.stats.datagramsInFlight).toBe(0)
        expect(d.stats.bytesHeld).toBe(0)
      },
    ), {numRuns: RUNS})
  })
})

// ---------------------------------------------------------------------------------------------

describe('Defragmenter: overlap policies, worked examples', () => {
  // Older fragment O = [8,24) of 'A'; newer N of 'B'; the datagram is [0,40) (last = [32,40)).
  // Expected winner of the shared bytes, per policy: 'O' or 'N'.
  const cases: {name: string; n: [number, number]; win: Record<DefragPolicy, 'O' | 'N'>}[] = [
    {name: 'N starts before, ends inside', n: [0, 16],
      win: {first: 'O', last: 'N', bsd: 'N', 'bsd-right': 'O', linux: 'N', windows: 'O', solaris: 'O'}},
    {name: 'same start, shorter', n: [8, 16],
      win: {first: 'O', last: 'N', bsd: 'O', 'bsd-right': 'O', linux: 'N', windows: 'O', solaris: 'O'}},
    {name: 'same start, longer', n: [8, 32],
      win: {first: 'O', last: 'N', bsd: 'O', 'bsd-right': 'N', linux: 'N', windows: 'O', solaris: 'O'}},
    {name: 'exact duplicate extent', n: [8, 24],
      win: {first: 'O', last: 'N', bsd: 'O', 'bsd-right': 'N', linux: 'N', windows: 'O', solaris: 'O'}},
    {name: 'starts before, same end', n: [0, 24],
      win: {first: 'O', last: 'N', bsd: 'N', 'bsd-right': 'N', linux: 'N', windows: 'O', solaris: 'N'}},
    {name: 'N contains O on both sides', n: [0, 32],
      win: {first: 'O', last: 'N', bsd: 'N', 'bsd-right': 'N', linux: 'N', windows: 'N', solaris: 'N'}},
    {name: 'N starts inside, ends after', n: [16, 32],
      win: {first: 'O', last: 'N', bsd: 'O', 'bsd-right': 'N', linux: 'O', windows: 'O', solaris: 'O'}},
    {name: 'N inside O, same end', n: [16, 24],
      win: {first: 'O', last: 'N', bsd: 'O', 'bsd-right': 'O', linux: 'O', windows: 'O', solaris: 'O'}},
  ]
  for (const c of cases) {
    for (const policy of DEFRAG_POLICIES) {
      it(`${c.name}: ${policy} -> ${c.win[policy]}`, () => {
        const {d, a} = mk({policy})
        const O: Cut = {off: 8, end: 24, more: true, bytes: fill(16, 0x41)}
        const N: Cut = {off: c.n[0], end: c.n[1], more: true, bytes: fill(c.n[1] - c.n[0], 0x42)}
        expect(d.add(v4Frag(1, 253, O))).toBeNull()
        expect(d.add(v4Frag(1, 253, N))).toBeNull()
        let out: Uint8Array | null = null
        for (const blk of [0, 8, 16, 24]) {
          const covered = (blk >= 8 && blk < 24) || (blk >= c.n[0] && blk < c.n[1])
          if (!covered) expect(d.add(v4Frag(1, 253, {off: blk, end: blk + 8, more: true, bytes: fill(8, 0x43)}))).toBeNull()
        }
        out = d.add(v4Frag(1, 253, {off: 32, end: 40, more: false, bytes: fill(8, 0x5a)}))
        expect(out).not.toBeNull()
        const body = (out as Uint8Array).subarray(20)
        const s = Math.max(8, c.n[0])
        const e = Math.min(24, c.n[1])
        const want = c.win[policy] === 'N' ? 0x42 : 0x41
        for (let b = s; b < e; b++) expect(body[b]).toBe(want)
        const conf = a.list.filter((r) => r.event === 'defrag.overlap_conflict')
        expect(conf).toHaveLength(1)
        expect(conf[0].detail).toMatchObject({offset: s, length: e - s, policy, src: '10.0.0.1', dst: '10.0.0.2', id: 1})
      })
    }
  }

  it('picks the policy per destination through policyFor, default otherwise', () => {
    const {d} = mk({policy: 'first', policyFor: (dst) => dst === '10.0.0.9' ? 'last' : undefined})
    const run = (dst: string) => {
      d.add(v4Frag(5, 253, {off: 0, end: 8, more: true, bytes: fill(8, 1)}, 0, '10.0.0.1', dst))
      d.add(v4Frag(5, 253, {off: 0, end: 8, more: true, bytes: fill(8, 2)}, 0, '10.0.0.1', dst))
      return d.add(v4Frag(5, 253, {off: 8, end: 9, more: false, bytes: fill(1, 3)}, 0, '10.0.0.1', dst)) as Uint8Array
    }
    expect(run('10.0.0.9')[20]).toBe(2)
    expect(run('10.0.0.8')[20]).toBe(1)
  })

  it('takes the header (options, TTL) of the offset-0 fragment that wins byte 0', () => {
    const {d} = mk({policy: 'last'})
    const f1 = v4Frag(6, 253, {off: 0, end: 8, more: true, bytes: fill(8, 1)})
    const f2 = v4Frag(6, 253, {off: 0, end: 8, more: true, bytes: fill(8, 2)}, 0, '10.0.0.1', '10.0.0.2', [0x94, 4, 0, 0])
    d.add(f1)
    d.add(f2)
    const out = d.add(v4Frag(6, 253, {off: 8, end: 12, more: false, bytes: fill(4, 3)})) as Uint8Array
    expect(out.length).toBe(24 + 12)
    expect(out[0]).toBe(0x46)
    expect(Array.from(out.subarray(20, 24))).toEqual([0x94, 4, 0, 0])
    expect((out[2] << 8) | out[3]).toBe(36)
    expect(internetChecksum(out, 0, 24)).toBe(0)
  })
})

// ---------------------------------------------------------------------------------------------

describe('Defragmenter: anomalies', () => {
  const U = (off: number, len: number, more: boolean, v = 1): Cut => ({off, end: off + len, more, bytes: fill(len, v)})

  it('keeps DF, clears MF/offset, sets the total length and a valid checksum', () => {
    const {d, a} = mk()
    const f1 = v4Frag(77, 17, U(0, 16, true))
    f1.header[6] |= 0x40 // DF set on the fragments
    const f2 = v4Frag(77, 17, U(16, 5, false))
    expect(d.add(f1)).toBeNull()
    const out = d.add(f2) as Uint8Array
    expect(out.length).toBe(41)
    expect((out[6] << 8) | out[7]).toBe(0x4000)
    expect((out[2] << 8) | out[3]).toBe(41)
    expect(internetChecksum(out, 0, 20)).toBe(0)
    expect(a.list).toEqual([])
  })

  it('defrag.first_fragment_too_small: TCP < 20, TCP shorter than its data offset, UDP < 8', () => {
    const {d, a} = mk()
    d.add(v4Frag(1, 6, U(0, 16, true)))
    const syn = fill(24, 0)
    syn[12] = 0xa0 // data offset 10 words = 40 bytes
    d.add(v4Frag(2, 6, {off: 0, end: 24, more: true, bytes: syn}))
    const ok = fill(24, 0)
    ok[12] = 0x50
    d.add(v4Frag(3, 6, {off: 0, end: 24, more: true, bytes: ok}))
    d.add(v4Frag(4, 17, U(0, 4, true)))
    const small = a.list.filter((r) => r.event === 'defrag.first_fragment_too_small')
    expect(small.map((r) => [r.detail?.id, r.detail?.length, r.detail?.need])).toEqual([[1, 16, 20], [2, 24, 40], [4, 4, 8]])
  })

  it('defrag.too_large: ping of death drops the datagram', () => {
    const {d, a} = mk()
    expect(d.add(v4Frag(3, 1, U(0, 1480, true)))).toBeNull()
    expect(d.stats.datagramsInFlight).toBe(1)
    expect(d.add(v4Frag(3, 1, U(65_520, 16, false)))).toBeNull()
    expect(a.events()).toEqual(['defrag.too_large'])
    expect(a.list[0].detail).toMatchObject({size: 20 + 65_536, max: 65_535, id: 3})
    expect(d.stats.datagramsInFlight).toBe(0)
    expect(d.stats.bytesHeld).toBe(0)
    expect(d.stats.dropped).toBe(1)
    // exactly 65,535 is fine
    const {d: d2, a: a2} = mk()
    d2.add(v4Frag(4, 1, U(0, 8, true)))
    expect(d2.add(v4Frag(4, 1, U(65_512, 3, false)))).toBeNull()
    expect(a2.list).toEqual([])
  })

  it('defrag.too_large counts the IPv6 payload length (extension headers included)', () => {
    const {d, a} = mk()
    expect(d.add(v6Frag(1, 17, U(65_520, 8, false), true, true))).toBeNull()
    expect(a.events()).toEqual(['defrag.too_large'])
    const {d: d2, a: a2} = mk()
    expect(d2.add(v6Frag(1, 17, U(65_520, 15, false), false, true))).toBeNull()
    expect(a2.list).toEqual([])
  })

  it('defrag.impossible_offset: each teardrop-style shape, with its reason', () => {
    const {d, a} = mk()
    const reasons = () => a.list.filter((r) => r.event === 'defrag.impossible_offset').map((r) => r.detail?.reason)
    d.add(v4Frag(1, 253, U(8, 0, true)))
    expect(reasons()).toEqual(['zero_length'])
    d.add(v4Frag(1, 253, U(8, 12, true))) // cut to 8 bytes and kept
    expect(reasons()).toEqual(['zero_length', 'unaligned_length'])
    d.add(v4Frag(1, 253, U(24, 4, false))) // last: end 28
    d.add(v4Frag(1, 253, U(24, 16, true))) // beyond the end
    d.add(v4Frag(1, 253, U(16, 4, false))) // a different last fragment
    expect(reasons()).toEqual(['zero_length', 'unaligned_length', 'beyond_end', 'second_last'])
    // the datagram still completes from the sane fragments; the cut fragment gave [8,16)
    d.add(v4Frag(1, 253, U(0, 8, true, 2)))
    const out = d.add(v4Frag(1, 253, U(16, 8, true, 3))) as Uint8Array
    expect(out).not.toBeNull()
    expect(Array.from(out.subarray(20))).toEqual([...fill(8, 2), ...fill(8, 1), ...fill(8, 3), ...fill(4, 1)])
    // a last fragment that ends before data already held
    d.add(v4Frag(2, 253, U(32, 8, true)))
    d.add(v4Frag(2, 253, U(8, 4, false)))
    expect(reasons().at(-1)).toBe('last_before_data')
    expect(a.list.every((r) => r.detail?.src === '10.0.0.1' && r.detail?.dst === '10.0.0.2' && typeof r.detail?.id === 'number')).toBe(true)
    expect(d.stats.fragmentsDropped).toBe(4) // the unaligned one was cut, not dropped
  })

  it('a second identical last fragment is fine', () => {
    const {d, a} = mk()
    d.add(v4Frag(1, 253, U(8, 4, false)))
    d.add(v4Frag(1, 253, U(8, 4, false)))
    expect(d.add(v4Frag(1, 253, U(0, 8, true)))).not.toBeNull()
    expect(a.list).toEqual([])
  })

  it('defrag.limit_fragments: the datagram is dropped', () => {
    const {d, a} = mk({limits: {maxFragmentsPerDatagram: 4}})
    for (let i = 0; i < 4; i++) d.add(v4Frag(1, 253, U(0, 8, true)))
    expect(a.list).toEqual([])
    expect(d.add(v4Frag(1, 253, U(8, 1, false)))).toBeNull()
    expect(a.events()).toEqual(['defrag.limit_fragments'])
    expect(a.list[0].detail).toMatchObject({limit: 4, limitName: 'maxFragmentsPerDatagram', action: 'drop_datagram'})
    expect(d.stats).toMatchObject({datagramsInFlight: 0, bytesHeld: 0, dropped: 1})
  })

  it('defrag.limit_datagrams: the oldest datagram is evicted', () => {
    const {d, a} = mk({limits: {maxDatagrams: 3}})
    for (let id = 1; id <= 4; id++) d.add(v4Frag(id, 253, U(0, 8, true)))
    expect(a.events()).toEqual(['defrag.limit_datagrams'])
    expect(a.list[0].detail).toMatchObject({id: 1, limit: 3, action: 'drop_oldest'})
    expect(d.stats.datagramsInFlight).toBe(3)
    expect(d.add(v4Frag(1, 253, U(8, 1, false)))).toBeNull() // id 1 lost its first fragment
    expect(d.add(v4Frag(4, 253, U(8, 1, false)))).not.toBeNull()
  })

  it('defrag.limit_bytes: oldest others evicted first, then the datagram itself', () => {
    const {d, a} = mk({limits: {maxBytes: 100}})
    d.add(v4Frag(1, 253, U(8, 40, true))) // 40 bytes held (no header kept: not offset 0)
    d.add(v4Frag(2, 253, U(8, 40, true))) // 80
    expect(d.stats.bytesHeld).toBe(80)
    d.add(v4Frag(3, 253, U(8, 40, true))) // needs 120 -> evict id 1
    expect(a.events()).toEqual(['defrag.limit_bytes'])
    expect(a.list[0].detail).toMatchObject({id: 1, limit: 100, action: 'drop_oldest'})
    expect(d.stats.bytesHeld).toBe(80)
    d.add(v4Frag(4, 253, U(8, 200, true))) // can never fit
    expect(a.events().filter((e) => e === 'defrag.limit_bytes')).toHaveLength(4)
    expect(a.list.at(-1)?.detail).toMatchObject({id: 4, action: 'drop_datagram'})
    expect(d.stats.bytesHeld).toBeLessThanOrEqual(100)
  })

  it('overwritten fragments release their bytes', () => {
    const {d} = mk({policy: 'last'})
    for (let i = 0; i < 50; i++) d.add(v4Frag(1, 253, U(8, 64, true, i)))
    expect(d.stats.bytesHeld).toBe(64)
  })

  it('defrag.timeout: expire() drops incomplete datagrams after 30 s by default', () => {
    const {d, a} = mk()
    expect(DEFRAG_LIMITS.timeoutUs).toBe(30_000_000)
    d.add(v4Frag(1, 253, U(0, 8, true), 1_000_000))
    d.add(v4Frag(2, 253, U(0, 8, true), 5_000_000))
    d.expire(30_999_999)
    expect(a.list).toEqual([])
    d.expire(31_000_000)
    expect(a.events()).toEqual(['defrag.timeout'])
    expect(a.list[0].detail).toMatchObject({id: 1, ageUs: 30_000_000})
    expect(d.stats).toMatchObject({datagramsInFlight: 1, dropped: 1})
    // add() also expires: the late fragment of id 2 starts a new datagram
    expect(d.add(v4Frag(2, 253, U(8, 1, false), 40_000_000))).toBeNull()
    expect(a.events()).toEqual(['defrag.timeout', 'defrag.timeout'])
  })

  it('IPv6: finds the 44 by walking extension headers when prevNextHeaderOffset is missing', () => {
    const h = v6Header({proto: 17, payloadLength: 0, ext: true})
    h[40] = 44
    expect(findFragmentNextHeader(h)).toBe(40)
    const h2 = v6Header({proto: 17, payloadLength: 0, ext: false})
    h2[6] = 44
    expect(findFragmentNextHeader(h2)).toBe(6)
    h2[6] = 17
    expect(findFragmentNextHeader(h2)).toBe(-1)
  })

  it('defrag.bad_header: a header too short for its family drops the fragment', () => {
    const {d, a} = mk()
    const f = v4Frag(1, 17, U(0, 8, true))
    f.header = f.header.subarray(0, 12)
    expect(d.add(f)).toBeNull()
    expect(a.events()).toEqual(['defrag.bad_header'])
    expect(d.stats.datagramsInFlight).toBe(0)
  })
})

describe('Defragmenter: memory under a flood', () => {
  it('1,000,000 fragments of distinct ids stay at the caps', () => {
    const limits = {maxDatagrams: 1000, maxBytes: 4096}
    let anomalies = 0
    const d2 = new Defragmenter({limits, onAnomaly: () => { anomalies++ }})
    const header = v6Header({proto: 17, payloadLength: 0, ext: false})
    header[6] = 44
    const data = fill(8, 1)
    const f: FragmentInput = {family: 6, src: '2001::1', dst: '2001::2', proto: 17, id: 0, offset: 8,
      moreFragments: true, data, header, prevNextHeaderOffset: 6, tsUs: 0}
    const t0 = performance.now()
    for (let i = 0; i < 1_000_000; i++) {
      f.id = i
      d2.add(f)
    }
    const ms = performance.now() - t0
    // bytes bind first: 4096 / 8 = 512 datagrams
    expect(d2.stats.bytesHeld).toBe(4096)
    expect(d2.stats.datagramsInFlight).toBe(512)
    expect(anomalies).toBe(1_000_000 - 512)
    expect(d2.stats.dropped).toBe(1_000_000 - 512)
    // datagram cap binding instead
    const d3 = new Defragmenter({limits: {maxDatagrams: 1000}, onAnomaly: () => {}})
    for (let i = 0; i < 200_000; i++) {
      f.id = i
      d3.add(f)
    }
    expect(d3.stats.datagramsInFlight).toBe(1000)
    expect(d3.stats.bytesHeld).toBe(8000)
    console.log(`defrag flood: 1e6 fragments in ${ms.toFixed(0)} ms`)
  })
})

// ---------------------------------------------------------------------------------------------
// real captures

const PCAPS = fileURLToPath(new URL('../../../../shared/corpus/pcaps/', import.meta.url))
const havePcaps = existsSync(PCAPS)

interface Pkt { tsUs: number; frag: FragmentInput | null; ip: Uint8Array }

/** tiny pcap (classic, LE/BE, us/ns) + Ethernet (+802.1Q) + IPv4 reader for these tests */
function readPcapV4(name: string): Pkt[] {
  const b = readFileSync(PCAPS + name)
  const magic = b.readUInt32LE(0)
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d
  const nano = magic === 0xa1b23c4d || magic === 0x4d3cb2a1
  const u32 = (o: number) => le ? b.readUInt32LE(o) : b.readUInt32BE(o)
  const out: Pkt[] = []
  for (let o = 24; o + 16 <= b.length;) {
    const tsUs = u32(o) * 1e6 + (nano ? Math.floor(u32(o + 4) / 1000) : u32(o + 4))
    const cap = u32(o + 8)
    const p = b.subarray(o + 16, o + 16 + cap)
    o += 16 + cap
    let l3 = 14
    let type = p.readUInt16BE(12)
    if (type === 0x8100) { type = p.readUInt16BE(16); l3 = 18 }
    if (type !== 0x0800) continue
    const ip = p.subarray(l3)
    const hl = (ip[0] & 15) * 4
    const total = ip.readUInt16BE(2)
    const fo = ip.readUInt16BE(6)
    const mf = (fo & 0x2000) !== 0
    const off = (fo & 0x1fff) * 8
    const dot = (x: number) => `${ip[x]}.${ip[x + 1]}.${ip[x + 2]}.${ip[x + 3]}`
    const isFrag = mf || off > 0
    out.push({tsUs, ip, frag: isFrag ? {family: 4, src: dot(12), dst: dot(16), proto: ip[9], id: ip.readUInt16BE(4),
      offset: off, moreFragments: mf, data: ip.subarray(hl, Math.min(total, ip.length)), header: ip.subarray(0, hl), tsUs} : null})
  }
  return out
}

/** TCP/UDP checksum over the IPv4 pseudo-header; 0 when valid */
function l4Checksum(dgram: Uint8Array): number {
  const hl = (dgram[0] & 15) * 4
  const seg = dgram.subarray(hl)
  const pseudo = new Uint8Array(12 + seg.length)
  pseudo.set(dgram.subarray(12, 20), 0)
  pseudo[9] = dgram[9]
  pseudo[10] = seg.length >>> 8
  pseudo[11] = seg.length & 0xff
  pseudo.set(seg, 12)
  return internetChecksum(pseudo, 0, pseudo.length)
}

function runPcap(name: string, policy?: DefragPolicy) {
  const {d, a} = mk({policy})
  const outs: Uint8Array[] = []
  let last = 0
  for (const p of readPcapV4(name)) {
    last = p.tsUs
    if (!p.frag) continue
    const r = d.add(p.frag)
    if (r) outs.push(r)
  }
  const pending = d.stats.datagramsInFlight
  d.expire(last + DEFRAG_LIMITS.timeoutUs)
  return {outs, events: a.events(), list: a.list, pending, stats: d.stats}
}

describe.skipIf(!havePcaps)('Defragmenter: corpus captures', () => {
  it('ipv4_frag_tcp_syn.pcap: SYN whose 40-byte TCP header is split -> first_fragment_too_small, then rebuilt', () => {
    const r = runPcap('ipv4_frag_tcp_syn.pcap')
    expect(r.events).toEqual(['defrag.first_fragment_too_small'])
    expect(r.list[0].detail).toMatchObject({proto: 6, length: 24, need: 40, src: '192.168.1.100', dst: '10.0.0.5', id: 1})
    expect(r.outs).toHaveLength(1)
    const o = r.outs[0]
    expect((o[2] << 8) | o[3]).toBe(60)
    expect(internetChecksum(o, 0, 20)).toBe(0)
    expect(o[20 + 13] & 0x02).toBe(2) // SYN
    expect(o[20 + 12] >>> 4).toBe(10)
  })

  it('ipv4_frag_overlap_udp.pcap: unaligned 18-byte first fragment, then a first fragment past the end', () => {
    const r = runPcap('ipv4_frag_overlap_udp.pcap')
    expect(r.outs).toHaveLength(0)
    expect(r.list.map((x) => [x.event, x.detail?.reason ?? ''])).toEqual([
      ['defrag.impossible_offset', 'unaligned_length'],
      ['defrag.impossible_offset', 'beyond_end'],
      ['defrag.timeout', ''],
    ])
    expect(r.list[1].detail).toMatchObject({offset: 0, length: 304, datagramEnd: 164})
  })

  it('ipv4_frag_tcp_out_of_order_small.pcap: conflicting overlap; the winner depends on the policy', () => {
    const texts: Record<string, string> = {}
    const valid: Record<string, boolean> = {}
    for (const policy of DEFRAG_POLICIES) {
      const r = runPcap('ipv4_frag_tcp_out_of_order_small.pcap', policy)
      expect(r.events).toEqual(['defrag.overlap_conflict'])
      expect(r.list[0].detail).toMatchObject({offset: 48, length: 24, policy, src: '128.32.46.142', dst: '10.0.0.1', id: 0})
      expect(r.outs).toHaveLength(1)
      const o = r.outs[0]
      expect(o.length).toBe(20 + 89)
      texts[policy] = Buffer.from(o.subarray(40)).toString('latin1')
      valid[policy] = l4Checksum(o) === 0
    }
    const attack = 'GET /msadc/..%2f../..%2f../..%2f../winnt/system32/cmd.exe?/c+dir+c:\\\n'
    for (const p of ['first', 'windows'] as const) expect(texts[p]).toBe(attack)
    // the sender computed the TCP checksum over the traversal: only the Windows-like targets
    // (the IIS the exploit is for) see a valid segment; everyone else drops garbage
    expect(Object.entries(valid).filter(([, ok]) => ok).map(([p]) => p).sort()).toEqual(['first', 'windows'])
    for (const p of ['last', 'bsd', 'bsd-right', 'linux', 'solaris'] as const) {
      expect(texts[p].startsWith('GET /msadc/..%2f../..%2f../.RKNW')).toBe(true)
    }
    console.log('out_of_order_small per policy (tcp checksum ok?):', JSON.stringify(
      Object.fromEntries(DEFRAG_POLICIES.map((p) => [p, [valid[p], texts[p]]]))))
  })

  it('benign_ipv4_icmp_fragments.pcap: clean reassembly, valid ICMP checksum, no anomaly', () => {
    const r = runPcap('benign_ipv4_icmp_fragments.pcap')
    expect(r.events).toEqual([])
    expect(r.outs).toHaveLength(1)
    const o = r.outs[0]
    expect(o.length).toBe(20 + 976 + 432)
    expect(internetChecksum(o, 0, 20)).toBe(0)
    expect(internetChecksum(o, 20, o.length - 20)).toBe(0)
    expect(r.stats).toMatchObject({datagramsInFlight: 0, bytesHeld: 0, reassembled: 1})
  })
})
