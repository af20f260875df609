import {describe, it, expect} from 'vitest'
import fc from 'fast-check'
import {existsSync, readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import type {AnomalyReport} from '../events/anomaly.js'
import {
  RETAIN_FREE_LARGE_BYTES, TcpMemoryPool, TcpSession, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, TCP_URG, overlapNewWins,
  type StreamSink, type TcpEndReason, type TcpLimits, type TcpOverlapPolicy, type TcpSegmentInput,
} from './tcp.js'
import {seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt} from './tcp-seq.js'

const FUZZ_RUNS = Number(process.env.PATCHPOINT_FUZZ_RUNS ?? '0') || 0
const runs = (dflt: number): number => (FUZZ_RUNS > 0 ? FUZZ_RUNS : dflt)

class Recorder implements StreamSink {
  chunks: number[] = []
  gaps: number[] = []
  ends: TcpEndReason[] = []
  onData(data: Uint8Array): void {
    for (const b of data) this.chunks.push(b)
  }
  onGap(length: number): void {
    this.gaps.push(length)
  }
  onEnd(reason: TcpEndReason): void {
    this.ends.push(reason)
  }
  get text(): string {
    return Buffer.from(this.chunks).toString('latin1')
  }
}

interface Harness {
  s: TcpSession
  srv: Recorder
  cli: Recorder
  anomalies: AnomalyReport[]
  events: () => string[]
}

function harness(opts: {policy?: TcpOverlapPolicy; limits?: Partial<TcpLimits>; memory?: TcpMemoryPool;
  urgent?: 'inline' | 'oob'; rst?: 'in-window' | 'exact'} = {}): Harness {
  const srv = new Recorder()
  const cli = new Recorder()
  const anomalies: AnomalyReport[] = []
  const s = new TcpSession({...opts, onAnomaly: (a) => anomalies.push(a), toServer: srv, toClient: cli})
  return {s, srv, cli, anomalies, events: () => anomalies.map((a) => a.event)}
}

function seg(seq: number, flags: number, payload: string | Uint8Array = '', extra: Partial<TcpSegmentInput> = {}): TcpSegmentInput {
  return {
    seq: seq >>> 0, ack: 0, flags, window: 65535, urgentPointer: 0,
    payload: typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload, ...extra,
  }
}

/** SYN, SYN-ACK, ACK; returns helpers that build data segments for each side */
function handshake(h: Harness, ci: number, si: number, ts = false) {
  const t = (v: number) => (ts ? {tsVal: v, tsEcr: 0} : {})
  h.s.onSegment(true, seg(ci, TCP_SYN, '', {windowScale: 7, ...t(1000)}))
  h.s.onSegment(false, seg(si, TCP_SYN | TCP_ACK, '', {ack: seqAdd(ci, 1), windowScale: 7, ...t(5000)}))
  h.s.onSegment(true, seg(seqAdd(ci, 1), TCP_ACK, '', {ack: seqAdd(si, 1), ...t(1001)}))
  return {
    c: (off: number, data: string | Uint8Array, flags = TCP_ACK, extra: Partial<TcpSegmentInput> = {}) =>
      h.s.onSegment(true, seg(seqAdd(ci, 1 + off), flags, data, {ack: seqAdd(si, 1), ...extra})),
    sv: (off: number, data: string | Uint8Array, flags = TCP_ACK, extra: Partial<TcpSegmentInput> = {}) =>
      h.s.onSegment(false, seg(seqAdd(si, 1 + off), flags, data, {ack: seqAdd(ci, 1), ...extra})),
  }
}

describe('tcp-seq', () => {
  it('compares across the 2^32 wrap', () => {
    expect(seqDiff(0, 0xffffffff)).toBe(1)
    expect(seqDiff(0xffffffff, 0)).toBe(-1)
    expect(seqLt(0xfffffff0, 5)).toBe(true)
    expect(seqGt(5, 0xfffffff0)).toBe(true)
    expect(seqLe(7, 7) && seqGe(7, 7)).toBe(true)
    expect(seqAdd(0xffffffff, 2)).toBe(1)
    expect(seqAdd(0, -1)).toBe(0xffffffff)
  })
})

describe('TcpSession basics', () => {
  it('tracks the handshake and delivers in order across the sequence wrap', () => {
    const h = harness()
    const ci = 0xfffffffd
    const {c, sv} = handshake(h, ci, 77)
    expect(h.s.state).toBe('established')
    c(0, 'abc') // seq 0xfffffffe .. 0x00000000
    c(6, 'ghi') // out of order, past the wrap
    c(3, 'def')
    sv(0, 'reply')
    expect(h.srv.text).toBe('abcdefghi')
    expect(h.cli.text).toBe('reply')
    expect(h.s.direction(true).nextSeq).toBe(seqAdd(ci, 10))
    expect(h.s.midstream).toBe(false)
    expect(h.anomalies).toEqual([])
  })

  it('ignores identical retransmissions of delivered bytes and flags conflicting ones (delivered stands)', () => {
    const h = harness({policy: 'last'})
    const {c} = handshake(h, 1000, 2000)
    c(0, 'hello world')
    c(0, 'hello')
    expect(h.anomalies).toEqual([])
    expect(h.s.direction(true).retransmissions).toBe(1)
    c(6, 'WORLD!')
    expect(h.srv.text).toBe('hello world!')
    const conflict = h.anomalies.find((a) => a.event === 'tcp.overlap_conflict')
    expect(conflict?.detail).toMatchObject({offset: 6, length: 5, delivered: true})
  })

  it('picks up a flow mid-stream', () => {
    const h = harness()
    h.s.onSegment(true, seg(500, TCP_ACK, 'GET /', {ack: 9000}))
    h.s.onSegment(false, seg(9000, TCP_ACK, 'HTTP/1.1', {ack: 505}))
    h.s.onSegment(true, seg(505, TCP_ACK, ' HTTP', {ack: 9008}))
    expect(h.s.midstream).toBe(true)
    expect(h.s.state).toBe('established')
    expect(h.srv.text).toBe('GET / HTTP')
    expect(h.cli.text).toBe('HTTP/1.1')
  })

  it('counts SYN retransmissions and flags a SYN-ACK that does not ack the SYN', () => {
    const h = harness()
    h.s.onSegment(true, seg(10, TCP_SYN))
    h.s.onSegment(true, seg(10, TCP_SYN))
    expect(h.s.synRetransmissions).toBe(1)
    h.s.onSegment(false, seg(99, TCP_SYN | TCP_ACK, '', {ack: 50}))
    expect(h.events()).toContain('tcp.synack_bad_ack')
    expect(h.s.state).toBe('syn_sent')
    h.s.onSegment(false, seg(99, TCP_SYN | TCP_ACK, '', {ack: 11}))
    expect(h.s.state).toBe('syn_received')
  })

  it('holds data on SYN until the handshake completes, and drops it if the connection is reset', () => {
    const h = harness()
    h.s.onSegment(true, seg(10, TCP_SYN, 'early'))
    expect(h.srv.text).toBe('')
    expect(h.events()).toContain('tcp.data_on_syn')
    h.s.onSegment(false, seg(99, TCP_SYN | TCP_ACK, '', {ack: 16}))
    h.s.onSegment(true, seg(16, TCP_ACK, '+more', {ack: 100}))
    expect(h.srv.text).toBe('early+more')

    const h2 = harness()
    h2.s.onSegment(true, seg(10, TCP_SYN, 'early'))
    h2.s.onSegment(false, seg(0, TCP_RST | TCP_ACK, '', {ack: 11}))
    expect(h2.s.state).toBe('reset')
    expect(h2.srv.text).toBe('')
    expect(h2.srv.ends).toEqual(['rst'])
  })
})

describe('FIN', () => {
  it('ends a direction only once everything before the FIN is delivered', () => {
    const h = harness()
    const {c} = handshake(h, 1, 1)
    c(5, '', TCP_ACK | TCP_FIN)
    c(3, 'de')
    expect(h.srv.ends).toEqual([])
    c(0, 'abc')
    expect(h.srv.text).toBe('abcde')
    expect(h.srv.ends).toEqual(['fin'])
    expect(h.s.state).toBe('closing')
    c(5, 'zz')
    expect(h.events()).toContain('tcp.data_after_fin')
    expect(h.srv.text).toBe('abcde')
  })

  it('flags data beyond a known FIN and delivers only what precedes it', () => {
    const h = harness()
    const {c, sv} = handshake(h, 1, 1)
    c(0, 'ab', TCP_ACK | TCP_FIN)
    c(0, 'abXYZ')
    expect(h.srv.text).toBe('ab')
    expect(h.events()).toContain('tcp.data_after_fin')
    sv(0, 'ok', TCP_ACK | TCP_FIN)
    expect(h.s.state).toBe('closed')
    expect(h.s.bytesHeld).toBe(0)
  })
})

describe('RST', () => {
  it('accepts a RST at the next expected sequence number', () => {
    const h = harness()
    const {c} = handshake(h, 100, 200)
    c(0, 'abc')
    h.s.onSegment(true, seg(104, TCP_RST))
    expect(h.s.state).toBe('reset')
    expect(h.srv.ends).toEqual(['rst'])
    expect(h.cli.ends).toEqual(['rst'])
  })

  it('accepts an in-window RST by default and rejects it in exact mode', () => {
    for (const mode of ['in-window', 'exact'] as const) {
      const h = harness({rst: mode})
      const {c, sv} = handshake(h, 100, 200)
      c(0, 'abc')
      sv(0, 'x') // the server advertises its window
      h.s.onSegment(true, seg(104 + 500, TCP_RST))
      if (mode === 'in-window') {
        expect(h.s.state).toBe('reset')
      } else {
        expect(h.s.state).toBe('established')
        expect(h.events()).toContain('tcp.rst_out_of_window')
      }
    }
  })

  it('ignores an out-of-window RST and keeps the stream alive', () => {
    const h = harness()
    const {c, sv} = handshake(h, 100, 200)
    sv(0, 'x', TCP_ACK, {window: 10}) // scaled by 2^7 = 1280 bytes
    h.s.onSegment(true, seg(104 + 5000, TCP_RST))
    h.s.onSegment(true, seg(50, TCP_RST))
    expect(h.events().filter((e) => e === 'tcp.rst_out_of_window')).toHaveLength(2)
    c(0, 'still here')
    expect(h.srv.text).toBe('still here')
    expect(h.srv.ends).toEqual([])
  })

  it('in SYN-SENT accepts a RST only if it acknowledges the SYN', () => {
    const h = harness()
    h.s.onSegment(true, seg(10, TCP_SYN))
    h.s.onSegment(false, seg(0, TCP_RST | TCP_ACK, '', {ack: 99}))
    h.s.onSegment(false, seg(0, TCP_RST))
    expect(h.s.state).toBe('syn_sent')
    expect(h.events()).toEqual(['tcp.rst_out_of_window', 'tcp.rst_out_of_window'])
    h.s.onSegment(false, seg(0, TCP_RST | TCP_ACK, '', {ack: 11}))
    expect(h.s.state).toBe('reset')
  })
})

describe('PAWS', () => {
  it('ignores a segment whose TSval is older than the last accepted one', () => {
    const h = harness()
    const {c} = handshake(h, 1, 1, true)
    c(0, 'good', TCP_ACK, {tsVal: 1002})
    c(4, 'EVIL', TCP_ACK, {tsVal: 900})
    c(4, 'ok', TCP_ACK, {tsVal: 1003})
    expect(h.srv.text).toBe('goodok')
    expect(h.events()).toEqual(['tcp.paws_reject'])
  })

  it('a segment that overtook an earlier one does not make the earlier one a PAWS reject (TS.Recent moves in order)', () => {
    const h = harness()
    const {c} = handshake(h, 1, 1, true)
    c(0, 'one-', TCP_ACK, {tsVal: 1002})
    c(8, 'three', TCP_ACK, {tsVal: 1004})
    c(4, 'two-', TCP_ACK, {tsVal: 1003})
    expect(h.srv.text).toBe('one-two-three')
    expect(h.events()).toEqual([])
    // an in-order segment older than what was accepted in order is still rejected
    c(13, 'EVIL', TCP_ACK, {tsVal: 1001})
    c(13, '!', TCP_ACK, {tsVal: 1005})
    expect(h.srv.text).toBe('one-two-three!')
    expect(h.events()).toEqual(['tcp.paws_reject'])
  })

  it('in SYN-SENT ignores a RST whose TSecr was never sent by the SYN sender', () => {
    const h = harness()
    h.s.onSegment(true, seg(10, TCP_SYN, '', {tsVal: 5000, tsEcr: 0}))
    h.s.onSegment(false, seg(0, TCP_RST | TCP_ACK, '', {ack: 11, tsVal: 100, tsEcr: 100}))
    expect(h.s.state).toBe('syn_sent')
    expect(h.events()).toEqual(['tcp.paws_reject'])
    h.s.onSegment(false, seg(0, TCP_RST | TCP_ACK, '', {ack: 11, tsVal: 100, tsEcr: 5000}))
    expect(h.s.state).toBe('reset')
  })
})

describe('gaps, windows and limits', () => {
  it('reports a gap when the receiver ACKs beyond a hole', () => {
    const h = harness()
    const {c, sv} = handshake(h, 1, 1)
    c(0, 'abc')
    c(8, 'ijk')
    sv(0, '', TCP_ACK, {ack: seqAdd(1, 1 + 11)})
    expect(h.srv.gaps).toEqual([5])
    expect(h.srv.text).toBe('abcijk')
    expect(h.s.direction(true).gapBytes).toBe(5)
    c(3, 'defgh') // arrives late: already skipped, no conflict check possible
    expect(h.srv.text).toBe('abcijk')
  })

  it('flushes with gaps at close', () => {
    const h = harness()
    const {c} = handshake(h, 1, 1)
    c(0, 'ab')
    c(4, 'ef')
    c(10, 'kl')
    h.s.close('timeout')
    expect(h.srv.text).toBe('abefkl')
    expect(h.srv.gaps).toEqual([2, 4])
    expect(h.srv.ends).toEqual(['timeout'])
    expect(h.cli.ends).toEqual(['timeout'])
    expect(h.s.state).toBe('closed')
    expect(h.s.bytesHeld).toBe(0)
  })

  it('drops a segment beyond the advertised window', () => {
    const h = harness({limits: {windowSlack: 100}})
    const {c, sv} = handshake(h, 1, 1)
    sv(0, '', TCP_ACK, {window: 8}) // 8 << 7 = 1024 bytes
    c(2000, 'far')
    expect(h.events()).toContain('tcp.segment_out_of_window')
    expect(h.s.direction(true).outOfOrderBytes).toBe(0)
    c(1000, 'near')
    expect(h.s.direction(true).outOfOrderBytes).toBe(4)
  })

  it('keeps bytesHeld under the caps under a flood of out-of-order segments', () => {
    const limits = {maxOutOfOrderBytes: 4096, maxOutOfOrderSegments: 32, maxRetainedBytes: 1024}
    const h = harness({limits})
    const {c} = handshake(h, 7, 7)
    let max = 0
    for (let i = 0; i < 3000; i++) {
      c(1 + ((i * 7919) % 50000), Buffer.alloc(1 + (i % 200), i & 0xff))
      max = Math.max(max, h.s.bytesHeld)
      expect(h.s.direction(true).outOfOrderSegments).toBeLessThanOrEqual(32)
    }
    expect(max).toBeLessThanOrEqual(4096 + 1024)
    expect(h.events()).toContain('tcp.reassembly_limit')
    expect(h.srv.gaps.length).toBeGreaterThan(0)
  })

  it('reuses idle rings by size, keeping at most RETAIN_FREE_LARGE_BYTES of the larger ones', () => {
    const pool = new TcpMemoryPool(1 << 30)
    const ring = pool.takeRing(8192)
    pool.giveRing(ring)
    expect(pool.idleBytes).toBe(8192)
    expect(pool.takeRing(16384)).not.toBe(ring)
    expect(pool.takeRing(8192)).toBe(ring)
    expect(pool.idleBytes).toBe(0)
    const size = 256 * 1024
    const rings = Array.from({length: RETAIN_FREE_LARGE_BYTES / size + 3}, () => pool.takeRing(size))
    rings.forEach((r) => pool.giveRing(r))
    expect(pool.idleBytes).toBe(RETAIN_FREE_LARGE_BYTES)
  })

  it('a session on reused rings compares retransmissions as on fresh ones', () => {
    // the first session leaves grown rings with its bytes in them; the second must not see them
    const pool = new TcpMemoryPool(1 << 30)
    const first = harness({memory: pool})
    const f = handshake(first, 1000, 5000)
    for (let i = 0; i < 40; i++) f.c(1001 + i * 1000, Buffer.alloc(1000, 0x41 + (i % 20)))
    first.s.close('close')
    expect(pool.idleBytes).toBeGreaterThan(2048)
    const h = harness({memory: pool})
    const {c} = handshake(h, 1000, 5000)
    for (let i = 0; i < 40; i++) c(1001 + i * 1000, Buffer.alloc(1000, 0x61))
    // same bytes again: a plain retransmission; then different bytes over delivered ones: a conflict
    c(1001 + 5000, Buffer.alloc(1000, 0x61))
    expect(h.events()).not.toContain('tcp.overlap_conflict')
    c(1001 + 7000, Buffer.alloc(1000, 0x41 + 7))
    expect(h.events()).toContain('tcp.overlap_conflict')
  })

  it('shares a memory pool cap across sessions', () => {
    const pool = new TcpMemoryPool(3000)
    const hs = [harness({memory: pool}), harness({memory: pool})]
    const cs = hs.map((h, i) => handshake(h, 100 * i, 5).c)
    for (let i = 0; i < 400; i++) {
      cs[i % 2](10 + i * 50, Buffer.alloc(40, 1))
      expect(pool.used).toBeLessThanOrEqual(3000)
      expect(pool.used).toBe(hs[0].s.bytesHeld + hs[1].s.bytesHeld)
    }
    expect(hs.some((h) => h.events().includes('tcp.reassembly_limit'))).toBe(true)
    hs.forEach((h) => h.s.close('close'))
    expect(pool.used).toBe(0)
  })
})

describe('urgent data', () => {
  it('delivers the urgent byte inline by default and removes it in oob mode', () => {
    for (const mode of ['inline', 'oob'] as const) {
      const h = harness({urgent: mode})
      const {c} = handshake(h, 1, 1)
      c(0, 'abcXdef', TCP_ACK | TCP_URG, {urgentPointer: 4}) // urgent byte: offset 3 (BSD/Linux)
      expect(h.srv.text).toBe(mode === 'inline' ? 'abcXdef' : 'abcdef')
      expect(h.anomalies.find((a) => a.event === 'tcp.urgent_data')?.detail).toMatchObject({offset: 3, mode})
    }
  })
})

describe('overlap policies (out-of-order buffer)', () => {
  // new segment vs old segment, both waiting behind a hole at offset 0
  const cases: Array<[string, number, string, number, string, Record<TcpOverlapPolicy, string>]> = [
    // name, oldOff, old, newOff, new, expected bytes at offsets 1..
    ['same range', 1, 'AAAA', 1, 'BBBB', {first: 'AAAA', last: 'BBBB', bsd: 'AAAA', windows: 'AAAA', linux: 'AAAA', solaris: 'BBBB'}],
    ['new starts before, ends inside', 2, 'AAAA', 1, 'BBB', {first: 'BAAAA', last: 'BBBAA', bsd: 'BBBAA', windows: 'BBBAA', linux: 'BBBAA', solaris: 'BAAAA'}],
    ['same start, new longer', 1, 'AA', 1, 'BBBB', {first: 'AABB', last: 'BBBB', bsd: 'AABB', windows: 'AABB', linux: 'BBBB', solaris: 'BBBB'}],
    ['new starts after, ends after', 1, 'AAA', 2, 'BBB', {first: 'AAAB', last: 'ABBB', bsd: 'AAAB', windows: 'AAAB', linux: 'AAAB', solaris: 'ABBB'}],
    ['new inside old', 1, 'AAAA', 2, 'BB', {first: 'AAAA', last: 'ABBA', bsd: 'AAAA', windows: 'AAAA', linux: 'AAAA', solaris: 'AAAA'}],
    ['new covers old', 2, 'AA', 1, 'BBBB', {first: 'BAAB', last: 'BBBB', bsd: 'BBBB', windows: 'BBBB', linux: 'BBBB', solaris: 'BBBB'}],
  ]
  for (const [name, oo, od, no, nd, exp] of cases) {
    for (const policy of Object.keys(exp) as TcpOverlapPolicy[]) {
      it(`${name}: ${policy}`, () => {
        const h = harness({policy})
        const {c} = handshake(h, 50, 60)
        c(oo, od)
        c(no, nd)
        c(0, '_')
        expect(h.srv.text.slice(1)).toBe(exp[policy])
        expect(h.events()).toContain('tcp.overlap_conflict')
      })
    }
  }
})

// ------------------------------------------------------------------ property tests

function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Piece { off: number; data: Uint8Array; fin?: boolean }

/** cut into segments, add overlapping retransmissions of the same bytes and duplicates, shuffle */
function cutShuffle(bytes: Uint8Array, r: () => number, withFin: boolean, firstInPlace: boolean): Piece[] {
  const out: Piece[] = []
  let pos = 0
  while (pos < bytes.length) {
    const n = 1 + Math.floor(r() * 60)
    out.push({off: pos, data: bytes.subarray(pos, Math.min(bytes.length, pos + n))})
    pos += n
  }
  const extra = Math.floor(r() * 8)
  for (let i = 0; i < extra && bytes.length > 0; i++) {
    const a = Math.floor(r() * bytes.length)
    const b = Math.min(bytes.length, a + 1 + Math.floor(r() * 80))
    out.push({off: a, data: bytes.subarray(a, b)})
  }
  if (withFin) out.push({off: bytes.length, data: new Uint8Array(0), fin: true})
  const dups = Math.floor(r() * 4)
  for (let i = 0; i < dups && out.length > 0; i++) out.push(out[Math.floor(r() * out.length)])
  const head = firstInPlace && out.length > 0 ? out.shift() as Piece : null
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1))
    const t = out[i]
    out[i] = out[j]
    out[j] = t
  }
  if (head) out.unshift(head)
  return out
}

const isnArb = fc.oneof(fc.integer({min: 0, max: 0xffffffff}), fc.integer({min: 0xffffff00, max: 0xffffffff}))

describe('reassembly properties', () => {
  it('reassembles reordered, duplicated, overlapping same-byte segments exactly (both directions)', () => {
    fc.assert(fc.property(
      fc.uint8Array({maxLength: 700}), fc.uint8Array({maxLength: 700}), isnArb, isnArb,
      fc.boolean(), fc.boolean(), fc.boolean(), fc.integer(),
      (cBytes, sBytes, ci, si, withHandshake, cFin, sFin, seed) => {
        const r = rng(seed)
        const h = harness({policy: (['first', 'last', 'bsd', 'linux', 'windows', 'solaris'] as const)[seed & 3]})
        const mid = !withHandshake
        const cp = cutShuffle(cBytes, r, cFin, mid)
        const sp = cutShuffle(sBytes, r, sFin, mid)
        if (withHandshake) handshake(h, ci, si)
        const cBase = withHandshake ? seqAdd(ci, 1) : ci
        const sBase = withHandshake ? seqAdd(si, 1) : si
        let i = 0
        let j = 0
        while (i < cp.length || j < sp.length) {
          const fromClient = j >= sp.length || (i < cp.length && r() < 0.5)
          const p = fromClient ? cp[i++] : sp[j++]
          const base = fromClient ? cBase : sBase
          const ack = fromClient ? sBase : cBase
          h.s.onSegment(fromClient, seg(seqAdd(base, p.off), (withHandshake ? TCP_ACK : 0) | (p.fin ? TCP_FIN : 0), p.data, {ack}))
        }
        h.s.close('close')
        expect(Buffer.from(h.srv.chunks)).toEqual(Buffer.from(cBytes))
        expect(Buffer.from(h.cli.chunks)).toEqual(Buffer.from(sBytes))
        expect(h.srv.gaps).toEqual([])
        expect(h.cli.gaps).toEqual([])
        expect(h.srv.ends).toEqual([cFin ? 'fin' : 'close'])
        expect(h.cli.ends).toEqual([sFin ? 'fin' : 'close'])
        expect(h.events().filter((e) => e !== 'tcp.data_after_fin')).toEqual([])
        expect(h.s.bytesHeld).toBe(0)
      }), {numRuns: runs(300)})
  })

  /** per-byte reference model of delivery under an overlap policy */
  function model(policy: TcpOverlapPolicy, segs: Piece[]): {out: number[]; conflict: boolean} {
    const held = new Map<number, {b: number; s: number; e: number}>()
    const out: number[] = []
    let conflict = false
    for (const {off: s, data} of segs) {
      const e = s + data.length
      for (let k = 0; k < data.length; k++) {
        const x = s + k
        const b = data[k]
        if (x < out.length) {
          if (out[x] !== b) conflict = true
          continue
        }
        const cur = held.get(x)
        if (!cur) {
          held.set(x, {b, s, e})
        } else {
          if (cur.b !== b) conflict = true
          if (overlapNewWins(policy, s, e, cur.s, cur.e)) held.set(x, {b, s, e})
        }
      }
      for (let cur = held.get(out.length); cur; cur = held.get(out.length)) {
        held.delete(out.length)
        out.push(cur.b)
      }
    }
    return {out, conflict}
  }

  it('resolves conflicting overlaps to the policy\'s bytes and reports them', () => {
    const policyArb = fc.constantFrom<TcpOverlapPolicy>('first', 'last', 'bsd', 'linux', 'windows', 'solaris')
    const segArb = fc.record({off: fc.nat({max: 120}), data: fc.uint8Array({minLength: 1, maxLength: 30, min: 65, max: 67})})
    fc.assert(fc.property(policyArb, isnArb, fc.array(segArb, {maxLength: 25}), fc.array(fc.nat({max: 29}), {maxLength: 20}),
      fc.integer({min: 0, max: 255}),
      (policy, ci, segs, cuts, fillByte) => {
        const N = 150
        // fill the whole range last, in pieces, so the stream completes
        const fill: Piece[] = []
        let pos = 0
        let k = 0
        while (pos < N) {
          const n = 1 + (cuts[k++ % Math.max(1, cuts.length)] ?? 9)
          fill.push({off: pos, data: new Uint8Array(Math.min(n, N - pos)).fill(fillByte)})
          pos += n
        }
        const all: Piece[] = [...segs, ...fill.reverse()]
        const h = harness({policy})
        const {c} = handshake(h, ci, 1)
        for (const p of all) c(p.off, p.data)
        const m = model(policy, all)
        expect(m.out.length).toBeGreaterThanOrEqual(N)
        expect(h.srv.chunks).toEqual(m.out)
        expect(h.events().includes('tcp.overlap_conflict')).toBe(m.conflict)
        expect(h.srv.gaps).toEqual([])
      }), {numRuns: runs(400)})
  })

  it('fuzz: random segments never throw and keep memory bounded', () => {
    const limits = {maxOutOfOrderBytes: 2000, maxOutOfOrderSegments: 20, maxRetainedBytes: 500}
    const segArb = fc.record({
      fromClient: fc.boolean(), seq: fc.oneof(fc.integer({min: 0, max: 0xffffffff}), fc.integer({min: 0, max: 3000})),
      ack: fc.oneof(fc.integer({min: 0, max: 0xffffffff}), fc.integer({min: 0, max: 3000})),
      flags: fc.integer({min: 0, max: 255}), window: fc.integer({min: -5, max: 70000}), len: fc.nat({max: 400}),
      urg: fc.nat({max: 70000}), ts: fc.option(fc.integer({min: 0, max: 0xffffffff})), ws: fc.option(fc.integer({min: -1, max: 20})),
    })
    const pool = new TcpMemoryPool(3000)
    fc.assert(fc.property(fc.array(segArb, {maxLength: 80}), fc.constantFrom<TcpOverlapPolicy>('first', 'last', 'bsd', 'linux', 'windows', 'solaris'),
      fc.boolean(), (segs, policy, oob) => {
        const h = harness({policy, limits, memory: pool, urgent: oob ? 'oob' : 'inline'})
        for (const x of segs) {
          h.s.onSegment(x.fromClient, {
            seq: x.seq, ack: x.ack, flags: x.flags, window: x.window, urgentPointer: x.urg,
            payload: new Uint8Array(x.len).fill(x.len & 0xff), tsVal: x.ts ?? undefined, tsEcr: x.ts ?? undefined,
            windowScale: x.ws ?? undefined,
          })
          expect(h.s.bytesHeld).toBeLessThanOrEqual(2 * (limits.maxOutOfOrderBytes + limits.maxRetainedBytes))
          expect(pool.used).toBeLessThanOrEqual(pool.capBytes)
          for (const dir of [true, false]) expect(h.s.direction(dir).outOfOrderSegments).toBeLessThanOrEqual(limits.maxOutOfOrderSegments)
        }
        h.s.close('timeout')
        expect(h.s.bytesHeld).toBe(0)
        expect(pool.used).toBe(0)
        expect(h.srv.ends).toHaveLength(1)
        expect(h.cli.ends).toHaveLength(1)
      }), {numRuns: runs(300)})
  })
})

// ------------------------------------------------------------------ real captures

const corpus = fileURLToPath(new URL('../../../../shared/corpus/pcaps/', import.meta.url))
const haveCorpus = existsSync(corpus)

interface Pkt { src: string; dst: string; seg: TcpSegmentInput }

/** tiny pcap (Ethernet, 802.1Q) / IPv4 / TCP reader, test-only: the real decoder lives elsewhere */
function readTcpPcap(file: string): Pkt[] {
  const b = readFileSync(file)
  const magic = b.readUInt32LE(0)
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o))
  expect(u32(20)).toBe(1) // LINKTYPE_ETHERNET
  const out: Pkt[] = []
  for (let o = 24; o + 16 <= b.length;) {
    const incl = u32(o + 8)
    const f = b.subarray(o + 16, o + 16 + incl)
    o += 16 + incl
    let p = 14
    let type = f.readUInt16BE(12)
    while (type === 0x8100 || type === 0x88a8) {
      type = f.readUInt16BE(p + 2)
      p += 4
    }
    if (type !== 0x0800 || f[p + 9] !== 6) continue
    const ipEnd = p + f.readUInt16BE(p + 2)
    const t = p + (f[p] & 15) * 4
    const doff = (f[t + 12] >> 4) * 4
    const seg: TcpSegmentInput = {
      seq: f.readUInt32BE(t + 4), ack: f.readUInt32BE(t + 8), flags: f[t + 13], window: f.readUInt16BE(t + 14),
      urgentPointer: f.readUInt16BE(t + 18), payload: f.subarray(t + doff, ipEnd),
    }
    for (let q = t + 20; q < t + doff;) {
      const kind = f[q]
      if (kind === 0) break
      if (kind === 1) { q++; continue }
      const len = f[q + 1]
      if (len < 2) break
      if (kind === 3) seg.windowScale = f[q + 2]
      if (kind === 8) { seg.tsVal = f.readUInt32BE(q + 2); seg.tsEcr = f.readUInt32BE(q + 6) }
      q += len
    }
    out.push({src: `${f.subarray(p + 12, p + 16).join('.')}:${f.readUInt16BE(t)}`, dst: `${f.subarray(p + 16, p + 20).join('.')}:${f.readUInt16BE(t + 2)}`, seg})
  }
  return out
}

function replay(file: string, policy: TcpOverlapPolicy = 'linux'): Harness {
  const pkts = readTcpPcap(corpus + file)
  const first = pkts.find((x) => (x.seg.flags & (TCP_SYN | TCP_ACK)) === TCP_SYN) ?? pkts[0]
  const h = harness({policy})
  for (const x of pkts) h.s.onSegment(x.src === first.src, x.seg)
  return h
}

describe.skipIf(!haveCorpus)('captures', () => {
  it('control: the plain HTTP exchange is delivered without anomalies', () => {
    const h = replay('benign_tcp_evasion_control_http.pcap')
    expect(h.srv.text).toMatch(/^GET \/ HTTP\/1\.1\r\n/)
    expect(h.cli.text).toContain('THIS_IS_A_TEST')
    expect(h.anomalies).toEqual([])
    expect(h.s.state).toBe('established')
  })

  it('evasion: RST and FIN with bad timestamps before the SYN-ACK do not tear the stream down', () => {
    const h = replay('tcp_evasion_rst_then_synack_linux.pcap')
    expect(h.s.state).toBe('established')
    expect(h.srv.text).toMatch(/^GET \/ HTTP\/1\.1\r\n/)
    expect(h.cli.text).toContain('THIS_IS_A_TEST')
    expect(h.srv.ends).toEqual([])
    expect(h.cli.ends).toEqual([])
    expect(h.events()).toEqual(['tcp.paws_reject', 'tcp.paws_reject', 'tcp.rst_unverifiable'])
    h.s.close('close')
    expect(h.cli.ends).toEqual(['close'])
  })

  it('overlap with conflicting payload (802.1Q): GOOD is delivered, EVIL is flagged', () => {
    for (const policy of ['first', 'last'] as const) {
      const h = replay('tcp_overlap_conflicting_payload_vlan.pcap', policy)
      expect(h.srv.text).toBe('GOOD')
      const a = h.anomalies.filter((x) => x.event === 'tcp.overlap_conflict')
      expect(a).toHaveLength(1)
      expect(a[0].detail).toMatchObject({offset: 0, length: 4, delivered: true})
    }
  })
})
