import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import type {AnomalyReport} from '../../events/anomaly.js'
import {bytes} from '../harness.js'
import {LineSplitter, indexOfByte, type LineEvent} from './splitter.js'
import {fuzzRuns} from './testing.js'

interface Got {
  lines: {start: number; end: number; text: string; length: number; tooLong: boolean; bareLf: boolean; unterminated: boolean}[]
  bytes: {off: number; text: string; done: boolean}[]
  anomalies: string[]
}

/** feed `chunks`; lines matching /\{(\d+)\}$/ switch to byte mode for that many bytes */
function run(chunks: string[], max = 16): {got: Got; sp: LineSplitter} {
  const got: Got = {lines: [], bytes: [], anomalies: []}
  const ref: {sp?: LineSplitter} = {}
  const sink = {
    onLine(ev: LineEvent) {
      const text = Buffer.from(ev.line).toString('latin1')
      got.lines.push({start: ev.start, end: ev.end, text, length: ev.length, tooLong: ev.tooLong, bareLf: ev.bareLf, unterminated: ev.unterminated})
      const m = /\{(\d+)\}$/.exec(text)
      if (m) ref.sp!.expectBytes(Number(m[1]))
    },
    onBytes(d: Uint8Array, off: number, done: boolean) {
      got.bytes.push({off, text: Buffer.from(d).toString('latin1'), done})
    },
  }
  const sp = new LineSplitter(sink, (a: AnomalyReport) => got.anomalies.push(a.event), 'x', {maxLineBytes: max})
  ref.sp = sp
  for (const c of chunks) sp.push(bytes(c))
  sp.finish()
  return {got, sp}
}

/** merge consecutive byte pieces so different chunkings compare equal */
function norm(g: Got): unknown {
  const merged: {off: number; text: string}[] = []
  for (const b of g.bytes) {
    const last = merged[merged.length - 1]
    if (last && last.off + last.text.length === b.off) last.text += b.text
    else merged.push({off: b.off, text: b.text})
  }
  return {lines: g.lines, bytes: merged, anomalies: g.anomalies}
}

describe('LineSplitter', () => {
  it('frames CRLF lines with absolute offsets', () => {
    const {got} = run(['HELO a\r\nMAIL', ' FROM:<x>\r\n'])
    expect(got.lines).toEqual([
      {start: 0, end: 8, text: 'HELO a', length: 6, tooLong: false, bareLf: false, unterminated: false},
      {start: 8, end: 23, text: 'MAIL FROM:<x>', length: 13, tooLong: false, bareLf: false, unterminated: false},
    ])
    expect(got.anomalies).toEqual([])
  })

  it('accepts bare LF and reports it once', () => {
    const {got} = run(['a\nb\nc\r\n'])
    expect(got.lines.map((l) => [l.text, l.bareLf])).toEqual([['a', true], ['b', true], ['c', false]])
    expect(got.anomalies).toEqual(['x.bare_lf'])
  })

  it('emits an overlong line early with the first max bytes and skips to the next LF', () => {
    const long = 'A'.repeat(40)
    const {got} = run([`${long}\r\nNEXT\r\n`], 16)
    expect(got.lines[0]).toEqual({start: 0, end: 17, text: 'A'.repeat(16), length: 17, tooLong: true, bareLf: false, unterminated: false})
    expect(got.lines[1]).toMatchObject({start: 42, text: 'NEXT', tooLong: false})
    expect(got.anomalies).toEqual(['x.line_too_long'])
  })

  it('treats exactly max bytes + CRLF as normal and max+1 as too long', () => {
    expect(run([`${'B'.repeat(16)}\r\n`]).got.lines[0]).toMatchObject({length: 16, tooLong: false})
    expect(run([`${'B'.repeat(17)}\r\n`]).got.lines[0]).toMatchObject({length: 17, tooLong: true, text: 'B'.repeat(16)})
    expect(run([`${'B'.repeat(17)}\n`]).got.lines[0]).toMatchObject({length: 17, tooLong: true, text: 'B'.repeat(16)})
  })

  it('switches to byte-count mode and back', () => {
    const {got} = run(['a {5}\r\nxy\r\nzb\r\n'])
    expect(got.lines.map((l) => l.text)).toEqual(['a {5}', 'b'])
    expect(got.bytes).toEqual([{off: 7, text: 'xy\r\nz', done: true}])
  })

  it('flushes an unterminated line at end of stream', () => {
    const {got} = run(['QUIT'])
    expect(got.lines).toEqual([{start: 0, end: 4, text: 'QUIT', length: 4, tooLong: false, bareLf: false, unterminated: true}])
    expect(got.anomalies).toEqual(['x.unterminated_line'])
  })

  it('resyncs after a gap at the next LF, or keeps a byte unit going', () => {
    const got: string[] = []
    const sp = new LineSplitter({onLine: (ev) => got.push(`${ev.start}:${Buffer.from(ev.line).toString('latin1')}`), onBytes: () => {}}, () => {}, 'x')
    sp.push(bytes('partial'))
    expect(sp.pendingStart()).toBe(0)
    expect(sp.gap(10)).toBe(false)
    expect(sp.pendingStart()).toBe(-1)
    sp.push(bytes('tail\r\nok\r\n'))
    expect(got).toEqual(['23:ok'])
    sp.expectBytes(100)
    expect(sp.gap(10)).toBe(true)
    expect(sp.inBytes).toBe(true)
  })

  it('stop() ignores the rest but keeps counting', () => {
    const {got, sp} = run([])
    sp.push(bytes('a\r\n'))
    sp.stop()
    sp.push(bytes('b\r\n'))
    expect(got.lines.map((l) => l.text)).toEqual(['a'])
    expect(sp.offset).toBe(6)
  })

  it('gives the same lines for every split of the input (property)', () => {
    const alphabet = fc.constantFrom('a', 'b', ' ', '\r', '\n', '{', '}', '2', '0')
    fc.assert(
      fc.property(fc.array(alphabet, {maxLength: 120}), fc.array(fc.nat(120), {maxLength: 8}), (chars, cuts) => {
        const s = chars.join('')
        const whole = norm(run([s], 8).got)
        const points = [...new Set(cuts.map((c) => c % (s.length + 1)))].sort((x, y) => x - y)
        const parts: string[] = []
        let prev = 0
        for (const p of points) {
          parts.push(s.slice(prev, p))
          prev = p
        }
        parts.push(s.slice(prev))
        const split = run(parts, 8)
        expect(norm(split.got)).toEqual(whole)
        expect(split.sp.buffered).toBeLessThanOrEqual(9)
      }),
      {numRuns: fuzzRuns(2000)},
    )
  })

  it('indexOfByte finds what Uint8Array.prototype.indexOf finds, in views of a larger buffer too (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({maxLength: 200}), fc.nat(200), fc.nat(200), fc.nat(210), fc.constantFrom(10, 13, 0, 255), (all, a, b, from, byte) => {
        const lo = Math.min(a, b, all.length)
        const hi = Math.min(Math.max(a, b), all.length)
        // LFs just outside the view must not be found
        const view = all.subarray(lo, hi)
        expect(indexOfByte(view, byte, from)).toBe(view.indexOf(byte, from))
        expect(indexOfByte(all, byte, from)).toBe(all.indexOf(byte, from))
      }),
      {numRuns: fuzzRuns(2000)},
    )
    const big = new Uint8Array(4000).fill(10)
    const mid = big.subarray(1000, 3000).fill(88)
    expect(indexOfByte(mid, 10, 0)).toBe(-1)
    mid[1999] = 10
    expect(indexOfByte(mid, 10, 5)).toBe(1999)
    expect(indexOfByte(mid, 10, 2000)).toBe(-1)
    expect(indexOfByte(new Uint8Array(0), 10, 0)).toBe(-1)
  })
})
