/**
 * Bounded, incremental CRLF line framing for the text protocols (SMTP, FTP, IMAP, POP3), with
 * absolute stream offsets and a byte-count mode for literals and chunks (IMAP `{n}`, SMTP BDAT).
 *
 * RFC 5321 section 2.3.8 / RFC 959 section 2.2 / RFC 9051 section 2.2 / RFC 1939 section 3:
 * a line is a sequence of octets terminated by CR LF.
 *
 *   +--------------- content ---------------+----+----+
 *   | verb SP args ...                      | CR | LF |
 *   +---------------------------------------+----+----+
 *   ^ start                                            ^ end
 *
 * - Content longer than `maxLineBytes` is emitted early (a line event with `tooLong`, the first
 *   `maxLineBytes` bytes as the value and `length = maxLineBytes + 1`, the same whatever the
 *   chunking), an anomaly `<proto>.line_too_long` is reported, and the rest up to the next LF is
 *   skipped. So the splitter never holds more than `maxLineBytes + 1` bytes.
 * - A line ended by LF alone is accepted (`bareLf`); the first one per direction is reported as
 *   `<proto>.bare_lf`.
 * - `expectBytes(n)` switches to byte-count mode: the next n bytes go to `onBytes` (views into the
 *   caller's chunk, never copied), then line mode resumes.
 */
import {Buffer} from 'node:buffer'
import type {AnomalySink} from '../../events/anomaly.js'

/**
 * Node's Buffer indexOf, called on any Uint8Array: a byte search with memchr. The TypedArray
 * builtin compares element by element in the runtime: finding the LF of a 1,000-byte line cost
 * about ten times as much (the end of every line of an SMTP body is searched for).
 */
const bufferIndexOf = Buffer.prototype.indexOf as (this: Uint8Array, value: number, byteOffset: number) => number

/** index of the first `byte` in `a` at or after `from`, or -1 (as Uint8Array.prototype.indexOf) */
export function indexOfByte(a: Uint8Array, byte: number, from: number): number {
  return from >= a.length ? -1 : bufferIndexOf.call(a, byte, from)
}

export interface LineLimits {
  /** longest line content (without CR LF) delivered whole */
  maxLineBytes: number
}

export const LINE_LIMITS: Readonly<LineLimits> = {
  maxLineBytes: 4096,
}

/** One line. Reused between calls: read it inside the callback, copy what must outlive it. */
export interface LineEvent {
  /** absolute stream offset of the first content byte */
  start: number
  /** absolute offset just past the terminator (for an overlong line: just past the bytes consumed so far) */
  end: number
  /** the content without CR LF (a view valid only during the callback); at most maxLineBytes bytes */
  line: Uint8Array
  /** content length seen: line.length, or maxLineBytes + 1 for an overlong line */
  length: number
  /** longer than maxLineBytes: value truncated, the rest of the line is skipped */
  tooLong: boolean
  /** terminated by a bare LF */
  bareLf: boolean
  /** flushed at end of stream without a terminator */
  unterminated: boolean
}

export interface LineSink {
  onLine(ev: LineEvent): void
  /** bytes of a byte-count unit: `data` is a view valid only during the call; `done` on the last piece */
  onBytes(data: Uint8Array, off: number, done: boolean): void
}

export class LineSplitter {
  /** absolute offset of the next byte this direction will deliver */
  offset = 0
  private buf: Uint8Array | null = null
  private bufLen = 0
  private lineStart = -1
  private skipping = false
  private bytesLeft = 0
  private stopped = false
  /** where bytes go once stopped (stop's `rest`) */
  private rest: ((data: Uint8Array) => void) | undefined = undefined
  private sawBareLf = false
  private readonly max: number
  private readonly ev: LineEvent = {start: 0, end: 0, line: new Uint8Array(0), length: 0, tooLong: false, bareLf: false, unterminated: false}

  constructor(
    private readonly sink: LineSink,
    private readonly anomaly: AnomalySink,
    private readonly protocol: string,
    limits: Partial<LineLimits> = {},
  ) {
    this.max = Math.max(1, limits.maxLineBytes ?? LINE_LIMITS.maxLineBytes)
  }

  /** the line cap in force */
  get maxLineBytes(): number {
    return this.max
  }

  /** bytes currently held for an incomplete line (always <= maxLineBytes + 1) */
  get buffered(): number {
    return this.bufLen
  }

  /** true while in byte-count mode */
  get inBytes(): boolean {
    return this.bytesLeft > 0
  }

  get isStopped(): boolean {
    return this.stopped
  }

  /** absolute offset where the held, incomplete line starts, or -1 */
  pendingStart(): number {
    return this.bufLen > 0 && !this.skipping ? this.lineStart : -1
  }

  /** true when the held, incomplete line is a prefix of `line` (bytes, terminator included) */
  heldIsPrefixOf(line: readonly number[]): boolean {
    if (this.bufLen === 0 || this.skipping || this.buf === null || this.bufLen > line.length) return false
    for (let i = 0; i < this.bufLen; i++) if (this.buf[i] !== line[i]) return false
    return true
  }

  /** the next n bytes (Infinity: the rest of the stream) are delivered raw to onBytes */
  expectBytes(n: number): void {
    this.bytesLeft = n > 0 ? n : 0
  }

  /** leave byte-count mode (e.g. a synchronising literal the server refused) */
  cancelBytes(): void {
    this.bytesLeft = 0
  }

  /**
   * No more lines: STARTTLS accepted (or the protocol lost). With `rest`, every later byte goes to
   * it in order (the TLS layer that follows), starting with a held incomplete line (at
   * pendingStart(), else at `offset`); without, they are ignored.
   */
  stop(rest?: (data: Uint8Array) => void): void {
    this.stopped = true
    this.rest = rest
    if (rest && this.bufLen > 0 && !this.skipping && this.buf !== null) rest(this.buf.subarray(0, this.bufLen))
    this.bufLen = 0
    this.bytesLeft = 0
  }

  push(chunk: Uint8Array): void {
    const n = chunk.length
    let i = 0
    while (i < n) {
      if (this.stopped) {
        this.rest?.(chunk.subarray(i))
        this.offset += n - i
        return
      }
      if (this.bytesLeft > 0) {
        const take = Math.min(this.bytesLeft, n - i)
        const off = this.offset
        this.offset += take
        this.bytesLeft -= take
        const piece = chunk.subarray(i, i + take)
        i += take
        this.sink.onBytes(piece, off, this.bytesLeft === 0)
        continue
      }
      const lf = indexOfByte(chunk, 10, i)
      if (this.skipping) {
        if (lf < 0) {
          this.offset += n - i
          return
        }
        this.offset += lf + 1 - i
        i = lf + 1
        this.skipping = false
        continue
      }
      const stop = lf < 0 ? n : lf
      const avail = stop - i
      const room = this.max + 1 - this.bufLen
      if (avail > room) {
        // overlong: deliver the first max bytes now, skip the rest of the line
        const start = this.bufLen > 0 ? this.lineStart : this.offset
        let view: Uint8Array
        if (this.bufLen === 0) {
          view = chunk.subarray(i, i + this.max)
        } else {
          const b = this.buffer()
          b.set(chunk.subarray(i, i + room), this.bufLen)
          view = b.subarray(0, this.max)
        }
        this.offset += room
        i += room
        this.bufLen = 0
        this.skipping = true
        this.anomaly({type: 'applayer', event: `${this.protocol}.line_too_long`, detail: {offset: start, limit: this.max}})
        this.deliver(start, this.offset, view, this.max + 1, true, false, false)
        continue
      }
      if (lf < 0) {
        if (this.bufLen === 0) this.lineStart = this.offset
        this.buffer().set(chunk.subarray(i, n), this.bufLen)
        this.bufLen += avail
        this.offset += avail
        return
      }
      const start = this.bufLen > 0 ? this.lineStart : this.offset
      // the line's bytes before the LF, and the content without its CR: one view of it
      const lineLen = this.bufLen + avail
      let content: Uint8Array
      let bareLf: boolean
      if (this.bufLen === 0) {
        bareLf = lineLen === 0 || chunk[lf - 1] !== 13
        content = chunk.subarray(i, bareLf ? lf : lf - 1)
      } else {
        const b = this.buffer()
        if (avail > 0) b.set(chunk.subarray(i, lf), this.bufLen)
        bareLf = b[lineLen - 1] !== 13
        content = b.subarray(0, bareLf ? lineLen : lineLen - 1)
      }
      this.bufLen = 0
      this.offset += avail + 1
      i = lf + 1
      if (bareLf && !this.sawBareLf) {
        this.sawBareLf = true
        this.anomaly({type: 'applayer', event: `${this.protocol}.bare_lf`, detail: {offset: this.offset - 1}})
      }
      if (content.length > this.max) {
        this.anomaly({type: 'applayer', event: `${this.protocol}.line_too_long`, detail: {offset: start, limit: this.max}})
        this.deliver(start, this.offset, content.subarray(0, this.max), content.length, true, bareLf, false)
      } else {
        this.deliver(start, this.offset, content, content.length, false, bareLf, false)
      }
    }
  }

  /**
   * `length` bytes were never seen. In byte-count mode the unit just loses them (returns true
   * while the unit goes on); otherwise the partial line is dropped and framing resumes after the
   * next LF (returns false).
   */
  gap(length: number): boolean {
    const len = Math.max(0, length)
    this.offset += len
    if (this.stopped) return false
    if (this.bytesLeft > len) {
      this.bytesLeft -= len
      return true
    }
    this.bytesLeft = 0
    this.bufLen = 0
    this.skipping = true
    return false
  }

  /** end of stream: deliver a held unterminated line */
  finish(): void {
    if (this.stopped || this.skipping || this.bufLen === 0) {
      this.bufLen = 0
      return
    }
    const b = this.buffer()
    const len = this.bufLen
    this.bufLen = 0
    const content = len > this.max ? b.subarray(0, this.max) : b.subarray(0, len)
    this.anomaly({type: 'applayer', event: `${this.protocol}.unterminated_line`, detail: {offset: this.lineStart, length: len}})
    this.deliver(this.lineStart, this.offset, content, len, len > this.max, false, true)
  }

  private buffer(): Uint8Array {
    if (this.buf === null) this.buf = new Uint8Array(this.max + 1)
    return this.buf
  }

  private deliver(start: number, end: number, line: Uint8Array, length: number, tooLong: boolean, bareLf: boolean, unterminated: boolean): void {
    const ev = this.ev
    ev.start = start
    ev.end = end
    ev.line = line
    ev.length = length
    ev.tooLong = tooLong
    ev.bareLf = bareLf
    ev.unterminated = unterminated
    this.sink.onLine(ev)
  }
}
