/**
 * Length-prefixed record framing for one direction of a binary TCP protocol (MySQL packets, TDS
 * packets, TNS packets): shared by the mysql, tds and tns analyzers.
 *
 * Bytes are fed in any split; each complete record is handed to `onRecord` once, as a view that
 * is only valid during the call (zero-copy when a record lies inside one data() chunk, else from
 * an internal buffer). A record longer than `maxRecord` is handed over truncated: its first
 * `maxRecord` bytes with `truncated` set and its declared length, then the rest is skipped by
 * count. After a gap inside a record, or a header whose length field is impossible, the direction
 * stops (framing cannot be recovered in a length-prefixed stream without a sync marker).
 */
import type {FieldValue, Fields} from '../types.js'

export interface RecordSink {
  /**
   * Total record length (header included) from the first `headerLen` bytes at hdr[off..], or a
   * negative number when the header is impossible (the direction stops).
   */
  recordLength(hdr: Uint8Array, off: number): number
  /** one complete (or truncated) record; `rec` is only valid during the call */
  onRecord(rec: Uint8Array, start: number, declared: number, truncated: boolean): void
  /** the header at `start` is impossible (recordLength returned < 0); the direction stops */
  onBadHeader(hdr: Uint8Array, start: number): void
  /** a gap the framing could not absorb; the direction stops */
  onLost(at: number, length: number): void
}

/** shared zero-length buffer of framers that have not buffered anything yet */
const NO_BYTES = new Uint8Array(0)
/** first allocation of a framer's buffer (a record that does not arrive whole in one chunk) */
const FIRST_BUFFER_BYTES = 256

export class RecordFramer {
  /** absolute offset of the next byte this direction receives */
  pos = 0
  /** stopped: further bytes are counted and ignored */
  dead = false
  /**
   * bytes of the current record buffered, from absolute offset bufStart; allocated on the first
   * record that does not arrive whole (most records are handed over where they lie)
   */
  private buf: Uint8Array = NO_BYTES
  private len = 0
  private bufStart = 0
  /** declared total length of the buffered record, or -1 while its header is incomplete */
  private want = -1
  /** bytes still to skip of an oversized record */
  private skip = 0

  constructor(
    private readonly headerLen: number,
    private readonly maxRecord: number,
    private readonly sink: RecordSink,
  ) {}

  /** absolute start of the unit being buffered, or -1 */
  pending(): number {
    return this.len > 0 && !this.dead ? this.bufStart : -1
  }

  /** bytes held in the internal buffer (tests, accounting) */
  held(): number {
    return this.len
  }

  capacity(): number {
    return this.buf.length
  }

  stop(): void {
    this.dead = true
    this.len = 0
    this.want = -1
    this.skip = 0
  }

  data(chunk: Uint8Array): void {
    const base = this.pos
    this.pos += chunk.length
    if (this.dead) return
    const n = chunk.length
    let p = 0
    while (p < n && !this.dead) {
      if (this.skip > 0) {
        const t = Math.min(this.skip, n - p)
        this.skip -= t
        p += t
        continue
      }
      if (this.len === 0) {
        // fast path: parse straight from the chunk
        if (n - p < this.headerLen) {
          this.append(chunk, p, n, base + p)
          return
        }
        const total = this.sink.recordLength(chunk, p)
        if (total < this.headerLen) {
          this.bad(chunk.subarray(p, p + this.headerLen), base + p)
          return
        }
        if (total <= n - p && total <= this.maxRecord) {
          this.sink.onRecord(chunk.subarray(p, p + total), base + p, total, false)
          p += total
          continue
        }
        this.want = total
        const take = Math.min(n - p, total, this.maxRecord)
        this.append(chunk, p, p + take, base + p)
        p += take
        this.flushIfReady()
        continue
      }
      // slow path: a record is being assembled
      if (this.want < 0) {
        const need = this.headerLen - this.len
        const take = Math.min(need, n - p)
        this.append(chunk, p, p + take, base + p)
        p += take
        if (this.len < this.headerLen) return
        const total = this.sink.recordLength(this.buf, 0)
        if (total < this.headerLen) {
          this.bad(this.buf.subarray(0, this.headerLen), this.bufStart)
          return
        }
        this.want = total
        this.flushIfReady()
        continue
      }
      const limit = Math.min(this.want, this.maxRecord)
      const take = Math.min(limit - this.len, n - p)
      this.append(chunk, p, p + take, base + p)
      p += take
      this.flushIfReady()
    }
  }

  /** `length` bytes never seen */
  gap(length: number): void {
    if (length <= 0) return
    const at = this.pos
    this.pos += length
    if (this.dead) return
    if (this.len === 0 && this.skip >= length) {
      this.skip -= length
      return
    }
    this.sink.onLost(at, length)
    this.stop()
  }

  private bad(hdr: Uint8Array, start: number): void {
    this.sink.onBadHeader(hdr, start)
    this.stop()
  }

  private flushIfReady(): void {
    const w = this.want
    if (w < 0) return
    if (this.len >= w) {
      this.deliver(w, false)
    } else if (this.len >= this.maxRecord) {
      this.skip = w - this.len
      this.deliver(w, true)
    }
  }

  private deliver(declared: number, truncated: boolean): void {
    const rec = this.buf.subarray(0, this.len)
    const start = this.bufStart
    this.len = 0
    this.want = -1
    this.sink.onRecord(rec, start, declared, truncated)
    // shrink a buffer grown for one large record
    if (this.buf.length > 64 * 1024) this.buf = NO_BYTES
  }

  private append(src: Uint8Array, from: number, to: number, absFrom: number): void {
    const n = to - from
    if (n <= 0) return
    if (this.len === 0) this.bufStart = absFrom
    const need = this.len + n
    if (need > this.buf.length) {
      let size = Math.max(this.buf.length * 2, FIRST_BUFFER_BYTES)
      while (size < need) size *= 2
      const nb = new Uint8Array(Math.min(Math.max(size, need), Math.max(this.maxRecord, this.headerLen)))
      nb.set(this.buf.subarray(0, this.len))
      this.buf = nb
    }
    this.buf.set(src.subarray(from, to), this.len)
    this.len = need
  }
}

/** little-endian unsigned 16/24/32-bit reads (caller checks bounds) */
export function u16le(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8)
}
export function u24le(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16)
}
export function u32le(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16)) + b[o + 3]! * 0x1000000
}
export function u16be(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!
}
export function u32be(b: Uint8Array, o: number): number {
  return b[o]! * 0x1000000 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!)
}

/** push a value onto a multi field */
export function addValue(f: Fields, k: string, v: FieldValue): void {
  const a = f.get(k)
  if (a === undefined) f.set(k, [v])
  else if (Array.isArray(a)) a.push(v)
  else f.set(k, [a, v])
}
