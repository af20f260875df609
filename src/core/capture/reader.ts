/**
 * Streaming readers for pcap and pcapng capture files.
 *
 * Memory stays flat however large the file is: bytes are read in chunks (CHUNK_BYTES) into ONE
 * reused Buffer that grows by doubling only when a single record or block does not fit, and never
 * beyond a capped size. Every record handed out is a view into that buffer, valid only until the
 * next `next()` call: callers that keep bytes must copy them.
 *
 * Errors: malformed files are reported as `CaptureError` (code + file + byte offset + one human
 * line). `next()` returns every complete record first, then throws; after an error every further
 * `next()` throws the same error again. Nothing else (RangeError etc.) escapes the public API.
 */
import {closeSync, fstatSync, openSync, readSync} from 'node:fs'
import {ignoreAnomalies} from '../events/anomaly.js'
import type {AnomalySink} from '../events/anomaly.js'

/** Bytes requested from the OS per read. */
export const CHUNK_BYTES = 1 << 20
/** Largest captured length of one packet; larger -> CaptureError('corrupt'). */
export const MAX_RECORD_BYTES = 256 * 1024
/** Largest pcapng block that is read into memory (SHB, IDB, EPB, SPB, PB); unknown blocks of any size are skipped without reading them. */
export const MAX_BLOCK_BYTES = 4 << 20
/** Interfaces (IDBs) per pcapng section. */
export const MAX_INTERFACES = 4096

export interface CaptureOptions {
  chunkBytes?: number
  maxRecordBytes?: number
  maxBlockBytes?: number
  maxInterfaces?: number
  /** Non-fatal oddities (captured length > original length, limits hit). */
  onAnomaly?: AnomalySink
}

export interface CaptureRecord {
  /** microseconds since the epoch (integer; sub-microsecond digits are truncated) */
  tsUs: number
  /** link type of the record's interface (LINKTYPE_* number); the engine checks support */
  linktype: number
  /** 0 for pcap; the pcapng Interface ID within the current section */
  interfaceId: number
  /** view into the reader's buffer, valid only until the next next() call */
  readonly data: Uint8Array
  /**
   * the reader's buffer and where the record starts in it (`data` is
   * `buffer.subarray(offset, offset + capturedLength)`): a consumer that can work on a range
   * decodes the record where it lies, without a view per record
   */
  readonly buffer: Uint8Array
  readonly offset: number
  capturedLength: number
  originalLength: number
}

/** The reader's one record object: the `data` view is only built when someone asks for it. */
class Record implements CaptureRecord {
  tsUs = 0
  linktype = 0
  interfaceId = 0
  buffer: Uint8Array = new Uint8Array(0)
  offset = 0
  capturedLength = 0
  originalLength = 0
  private view: Uint8Array | null = null

  get data(): Uint8Array {
    return (this.view ??= this.buffer.subarray(this.offset, this.offset + this.capturedLength))
  }

  /** point at the next record */
  at(buffer: Uint8Array, offset: number, capturedLength: number): void {
    this.buffer = buffer
    this.offset = offset
    this.capturedLength = capturedLength
    this.view = null
  }
}

export type CaptureErrorCode = 'bad_magic' | 'truncated' | 'unknown_linktype' | 'corrupt' | 'io'

export class CaptureError extends Error {
  override readonly name = 'CaptureError'
  readonly code: CaptureErrorCode
  readonly file: string
  readonly offset: number

  /** `what` is a short phrase ("truncated record"), `detail` the numbers that explain it. */
  constructor(code: CaptureErrorCode, file: string, offset: number, what: string, detail?: string) {
    super(`${file}: ${what} at byte ${offset}${detail ? ` (${detail})` : ''}`)
    this.code = code
    this.file = file
    this.offset = offset
  }
}

export interface CaptureReader {
  readonly path: string
  readonly format: 'pcap' | 'pcapng'
  /** The next record (one reused object), null at a clean end; throws CaptureError. */
  next(): CaptureRecord | null
  close(): void
  /** file offset just past the last record or block consumed */
  bytesRead: number
  /** file size in bytes when opened */
  size: number
  /** current capacity of the reused read buffer (bounded; for memory checks) */
  readonly bufferBytes: number
}

// ---------------------------------------------------------------------------------------------
// Byte sources: a file descriptor or bytes already in memory (tests, stdin slurps).

interface ByteSource {
  readonly size: number
  /** Reads up to `length` bytes at file `position` into `buf[offset..]`; 0 at end of file. */
  read(buf: Buffer, offset: number, length: number, position: number): number
  close(): void
}

class FdSource implements ByteSource {
  private fd: number
  constructor(fd: number, readonly size: number) {
    this.fd = fd
  }
  read(buf: Buffer, offset: number, length: number, position: number): number {
    return readSync(this.fd, buf, offset, length, position)
  }
  close(): void {
    if (this.fd >= 0) {
      const fd = this.fd
      this.fd = -1
      closeSync(fd)
    }
  }
}

class MemorySource implements ByteSource {
  readonly size: number
  constructor(private bytes: Uint8Array) {
    this.size = bytes.length
  }
  read(buf: Buffer, offset: number, length: number, position: number): number {
    if (position >= this.bytes.length) return 0
    const n = Math.min(length, this.bytes.length - position)
    buf.set(this.bytes.subarray(position, position + n), offset)
    return n
  }
  close(): void {
    this.bytes = new Uint8Array(0)
  }
}

function osReason(err: unknown): string {
  const e = err as {code?: unknown; message?: unknown}
  if (typeof e?.message === 'string') {
    // Node: "ENOENT: no such file or directory, open 'x'" -> "ENOENT: no such file or directory"
    const m = e.message
    const comma = m.indexOf(', ')
    return comma > 0 && typeof e.code === 'string' && m.startsWith(e.code) ? m.slice(0, comma) : m
  }
  return String(err)
}

// ---------------------------------------------------------------------------------------------
// Opening: format by magic number.

const PCAP_MAGIC_US = 0xa1b2c3d4
const PCAP_MAGIC_NS = 0xa1b23c4d
const PCAPNG_SHB = 0x0a0d0d0a
const PCAPNG_BOM = 0x1a2b3c4d

/**
 * Opens a capture file; the format is chosen by its magic number, not its name.
 * Throws CaptureError: 'io' (unreadable, directory), 'bad_magic' (empty, gzip, unknown),
 * 'truncated' (file shorter than its file header), 'corrupt' (impossible header).
 */
export function openCapture(path: string, options: CaptureOptions = {}): CaptureReader {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (err) {
    throw new CaptureError('io', path, 0, 'cannot open file', osReason(err))
  }
  let size: number
  try {
    const st = fstatSync(fd)
    if (st.isDirectory()) throw Object.assign(new Error('EISDIR: illegal operation on a directory'), {code: 'EISDIR'})
    size = st.size
  } catch (err) {
    closeSync(fd)
    throw new CaptureError('io', path, 0, 'cannot read file', osReason(err))
  }
  const src = new FdSource(fd, size)
  try {
    return openSource(src, path, options)
  } catch (err) {
    src.close()
    throw err
  }
}

/** Same as openCapture, for bytes already in memory; `name` is used in error messages. */
export function openCaptureBytes(bytes: Uint8Array, name = '<memory>', options: CaptureOptions = {}): CaptureReader {
  return openSource(new MemorySource(bytes), name, options)
}

/** Convenience: iterate every record (the SAME object each time, data valid for one step). */
export function* readCaptureFile(path: string, options: CaptureOptions = {}): Generator<CaptureRecord, void, undefined> {
  const r = openCapture(path, options)
  try {
    for (let rec = r.next(); rec !== null; rec = r.next()) yield rec
  } finally {
    r.close()
  }
}

function openSource(src: ByteSource, name: string, options: CaptureOptions): CaptureReader {
  const head = Buffer.alloc(4)
  let n: number
  try {
    n = src.read(head, 0, 4, 0)
  } catch (err) {
    throw new CaptureError('io', name, 0, 'cannot read file', osReason(err))
  }
  if (n === 0) throw new CaptureError('bad_magic', name, 0, 'empty file, not a capture')
  if (n >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
    throw new CaptureError('bad_magic', name, 0, 'gzip-compressed file, not a capture', 'decompress it first')
  }
  if (n < 4) throw new CaptureError('bad_magic', name, 0, 'file too short for a capture magic number', `${n} bytes`)
  const le = head.readUInt32LE(0)
  if (le === PCAPNG_SHB) return new PcapngReader(src, name, options)
  if (le === PCAP_MAGIC_US || le === PCAP_MAGIC_NS) return new PcapReader(src, name, options, true, le === PCAP_MAGIC_NS)
  const be = head.readUInt32BE(0)
  if (be === PCAP_MAGIC_US || be === PCAP_MAGIC_NS) return new PcapReader(src, name, options, false, be === PCAP_MAGIC_NS)
  throw new CaptureError('bad_magic', name, 0, 'unknown magic number, not a pcap or pcapng file', `0x${head.toString('hex')}`)
}

// ---------------------------------------------------------------------------------------------
// Shared chunked buffer.

abstract class ChunkedReader {
  bytesRead = 0
  size: number
  protected buf: Buffer
  /** `buf` as a plain Uint8Array: records are its subarrays (Buffer#subarray builds a FastBuffer per call) */
  protected u8: Uint8Array
  /** file offset of buf[0] */
  protected start = 0
  /** valid bytes in buf */
  protected len = 0
  /** next unread index in buf */
  protected pos = 0
  protected le = true
  protected readonly maxRecord: number
  protected readonly maxBuffer: number
  protected readonly onAnomaly: AnomalySink
  protected readonly rec = new Record()
  private eof = false
  private failed: CaptureError | null = null
  private closed = false

  constructor(protected src: ByteSource, readonly path: string, options: CaptureOptions, maxBlock: number) {
    this.size = src.size
    const chunk = clampInt(options.chunkBytes, CHUNK_BYTES, 64, 1 << 30)
    this.maxRecord = clampInt(options.maxRecordBytes, MAX_RECORD_BYTES, 1, 1 << 30)
    this.maxBuffer = Math.max(chunk, maxBlock)
    this.onAnomaly = options.onAnomaly ?? ignoreAnomalies
    this.buf = Buffer.allocUnsafe(Math.min(chunk, Math.max(64, this.size + 64)))
    this.u8 = new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.buf.length)
  }

  /** Current capacity of the reused buffer (bounded by max(chunkBytes, block/record limit)). */
  get bufferBytes(): number {
    return this.buf.length
  }

  next(): CaptureRecord | null {
    if (this.failed) throw this.failed
    if (this.closed) throw new CaptureError('io', this.path, this.bytesRead, 'reader is closed')
    try {
      const r = this.read()
      this.bytesRead = this.start + this.pos
      return r
    } catch (err) {
      this.failed = err instanceof CaptureError
        ? err
        : new CaptureError('io', this.path, this.start + this.pos, 'read failed', osReason(err))
      throw this.failed
    }
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    try {
      this.src.close()
    } catch {
      // closing a read-only descriptor cannot lose data
    }
  }

  protected abstract read(): CaptureRecord | null

  protected get offset(): number {
    return this.start + this.pos
  }

  /** Makes at least n bytes available at pos (n <= maxBuffer); returns how many are (fewer only at EOF). */
  protected fill(n: number): number {
    const avail = this.len - this.pos
    if (avail >= n) return avail
    if (this.pos > 0) {
      this.buf.copyWithin(0, this.pos, this.len)
      this.start += this.pos
      this.len = avail
      this.pos = 0
    }
    if (n > this.buf.length) {
      let cap = this.buf.length
      while (cap < n) cap *= 2
      const grown = Buffer.allocUnsafe(Math.min(cap, this.maxBuffer))
      this.buf.copy(grown, 0, 0, this.len)
      this.buf = grown
      this.u8 = new Uint8Array(grown.buffer, grown.byteOffset, grown.length)
    }
    while (this.len < n && !this.eof) {
      const got = this.src.read(this.buf, this.len, this.buf.length - this.len, this.start + this.len)
      if (got === 0) this.eof = true
      this.len += got
    }
    return this.len - this.pos
  }

  /** Moves the read position to an absolute file offset (used to skip big unknown blocks). */
  protected seek(fileOffset: number): void {
    if (fileOffset >= this.start && fileOffset <= this.start + this.len) {
      this.pos = fileOffset - this.start
      return
    }
    this.start = fileOffset
    this.len = 0
    this.pos = 0
    this.eof = false
  }

  // Plain byte reads: callers only read inside what fill() made available, and Buffer's
  // readUInt32LE/BE (bounds checks, argument validation) cost more than the bytes per record.
  protected u16(o: number): number {
    const b = this.u8
    return this.le ? b[o] | (b[o + 1] << 8) : (b[o] << 8) | b[o + 1]
  }

  protected u32(o: number): number {
    const b = this.u8
    return this.le
      ? (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16)) + b[o + 3] * 0x1000000
      : b[o] * 0x1000000 + ((b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3])
  }

  protected err(code: CaptureErrorCode, offset: number, what: string, detail?: string): CaptureError {
    return new CaptureError(code, this.path, offset, what, detail)
  }

  protected checkLengths(offset: number, captured: number, original: number): void {
    if (captured > original) {
      this.onAnomaly({type: 'decode', event: 'capture.caplen_exceeds_len', detail: {offset, captured, original}})
    }
  }
}

function clampInt(v: number | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined || !Number.isFinite(v)) return dflt
  return Math.min(max, Math.max(min, Math.floor(v)))
}

// ---------------------------------------------------------------------------------------------
// pcap (draft-ietf-opsawg-pcap, section 4 "File Header" and section 5 "Packet Record")
//
//  File Header:
//                         1                   2                   3
//     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   0 |                          Magic Number                         |
//     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   4 |          Major Version        |         Minor Version         |
//     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   8 |                           Reserved1                           |
//     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  12 |                           Reserved2                           |
//     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  16 |                            SnapLen                            |
//     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  20 | FCS |f|0 0 0 0 0 0 0 0 0 0 0 0|         LinkType              |
//     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
//  Packet Record:
//     +---------------------------------------------------------------+
//   0 |                      Timestamp (Seconds)                      |
//   4 |            Timestamp (Microseconds or nanoseconds)            |
//   8 |                    Captured Packet Length                     |
//  12 |                    Original Packet Length                     |
//  16 /                          Packet Data                          /
//     +---------------------------------------------------------------+

const PCAP_FILE_HEADER = 24
const PCAP_RECORD_HEADER = 16

class PcapReader extends ChunkedReader implements CaptureReader {
  readonly format = 'pcap' as const
  readonly snaplen: number
  readonly linktype: number
  readonly nanos: boolean
  private readonly maxCap: number

  constructor(src: ByteSource, path: string, options: CaptureOptions, littleEndian: boolean, nanos: boolean) {
    const maxRecord = clampInt(options.maxRecordBytes, MAX_RECORD_BYTES, 1, 1 << 30)
    super(src, path, options, maxRecord + PCAP_RECORD_HEADER)
    this.le = littleEndian
    this.nanos = nanos
    const avail = this.fill(PCAP_FILE_HEADER)
    if (avail < PCAP_FILE_HEADER) {
      throw this.err('truncated', 0, 'truncated pcap file header', `${PCAP_FILE_HEADER} bytes needed, ${avail} left`)
    }
    this.snaplen = this.u32(16)
    this.linktype = this.u32(20) & 0xffff
    // snaplen 0 (seen in the wild) means "not set": only the record limit applies.
    this.maxCap = this.snaplen === 0 ? this.maxRecord : Math.min(this.snaplen, this.maxRecord)
    this.pos = PCAP_FILE_HEADER
    this.bytesRead = PCAP_FILE_HEADER
    this.rec.linktype = this.linktype
  }

  protected read(): CaptureRecord | null {
    const at = this.offset
    let avail = this.fill(PCAP_RECORD_HEADER)
    if (avail === 0) return null
    if (avail < PCAP_RECORD_HEADER) {
      throw this.err('truncated', at, 'truncated record header', `${PCAP_RECORD_HEADER} bytes needed, ${avail} left`)
    }
    const p = this.pos
    const sec = this.u32(p)
    const frac = this.u32(p + 4)
    const caplen = this.u32(p + 8)
    const origlen = this.u32(p + 12)
    if (caplen > this.maxCap) {
      const limit = caplen > this.maxRecord ? `record limit ${this.maxRecord}` : `snaplen ${this.snaplen}`
      throw this.err('corrupt', at, 'impossible record length', `header says ${caplen} bytes, more than the ${limit}`)
    }
    const need = PCAP_RECORD_HEADER + caplen
    avail = this.fill(need)
    if (avail < need) {
      throw this.err('truncated', at, 'truncated record', `header says ${caplen} bytes, ${avail - PCAP_RECORD_HEADER} left`)
    }
    const d = this.pos + PCAP_RECORD_HEADER
    const rec = this.rec
    rec.tsUs = sec * 1e6 + (this.nanos ? Math.floor(frac / 1000) : frac)
    rec.at(this.u8, d, caplen)
    rec.originalLength = origlen
    this.pos += need
    if (caplen > origlen) this.checkLengths(at, caplen, origlen)
    return rec
  }
}

// ---------------------------------------------------------------------------------------------
// pcapng (draft-ietf-opsawg-pcapng, section 3.1 "General Block Structure")
//
//                         1                   2                   3
//     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//     +---------------------------------------------------------------+
//   0 |                          Block Type                           |
//     +---------------------------------------------------------------+
//   4 |                      Block Total Length                       |
//     +---------------------------------------------------------------+
//   8 /                          Block Body                           /
//     /              variable length, padded to 32 bits               /
//     +---------------------------------------------------------------+
//     |                      Block Total Length                       |
//     +---------------------------------------------------------------+
//
// Section Header Block (4.1): body = Byte-Order Magic 0x1A2B3C4D, Major 1, Minor 0,
//   Section Length (64 bits, may be -1), Options.
// Interface Description Block (4.2): body = LinkType (16), Reserved (16), SnapLen (32), Options
//   (if_tsresol = 9, 1 byte; if_tsoffset = 14, 8 bytes signed seconds).
// Enhanced Packet Block (4.3): body = Interface ID, Timestamp (Upper), Timestamp (Lower),
//   Captured Packet Length, Original Packet Length, Packet Data (padded), Options.
// Simple Packet Block (4.4): body = Original Packet Length, Packet Data (padded).
// Packet Block (obsolete, Appendix A): body = Interface ID (16), Drops Count (16), Timestamp
//   (Upper), Timestamp (Lower), Captured Len, Packet Len, Packet Data, Options.
// Options (3.5): Option Code (16), Option Length (16), Value padded to 32 bits; code 0 ends.

const BT_SHB = PCAPNG_SHB
const BT_IDB = 1
const BT_PB = 2
const BT_SPB = 3
const BT_EPB = 6

const MIN_BLOCK = 12
const MIN_SHB = 28
const MIN_IDB = 20
const MIN_EPB = 32
const MIN_SPB = 16
const MIN_PB = 32

const OPT_ENDOFOPT = 0
const OPT_IF_TSRESOL = 9
const OPT_IF_TSOFFSET = 14

const TWO32 = 4294967296

/** How an interface's timestamp units turn into microseconds (precomputed per IDB). */
const TS_MULTIPLY = 0
const TS_DIVIDE = 1
const TS_POW2 = 2
const TS_BIGINT = 3

interface Iface {
  linktype: number
  snaplen: number
  mode: number
  /** Multiply: factor; Divide: divisor d; Pow2: 2^k */
  k1: number
  /** Divide: floor(2^32 / d) */
  q: number
  /** Divide: 2^32 mod d */
  r: number
  /** BigInt mode: units per second */
  big: bigint
  offsetUs: number
}

function makeIface(linktype: number, snaplen: number, tsresol: number, offsetSec: number): Iface {
  const f: Iface = {linktype, snaplen, mode: TS_MULTIPLY, k1: 1, q: 0, r: 0, big: 0n, offsetUs: offsetSec * 1e6}
  const exp = tsresol & 0x7f
  if ((tsresol & 0x80) === 0) {
    if (exp <= 6) {
      f.k1 = 10 ** (6 - exp)
    } else if (exp <= 12) {
      const d = 10 ** (exp - 6)
      f.mode = TS_DIVIDE
      f.k1 = d
      f.q = Math.floor(TWO32 / d)
      f.r = TWO32 - f.q * d
    } else {
      f.mode = TS_BIGINT
      f.big = 10n ** BigInt(exp)
    }
  } else if (exp <= 32) {
    f.mode = TS_POW2
    f.k1 = 2 ** exp
  } else {
    f.mode = TS_BIGINT
    f.big = 1n << BigInt(exp)
  }
  return f
}

function toMicros(f: Iface, hi: number, lo: number): number {
  switch (f.mode) {
    case TS_MULTIPLY:
      return (hi * TWO32 + lo) * f.k1 + f.offsetUs
    case TS_DIVIDE:
      // (hi*2^32 + lo) / d  ==  hi*q + (hi*r + lo) / d   with 2^32 = q*d + r; every term exact
      return hi * f.q + Math.floor((hi * f.r + lo) / f.k1) + f.offsetUs
    case TS_POW2: {
      const p = f.k1
      const secLo = Math.floor(lo / p)
      const frac = lo - secLo * p
      const sec = hi * (TWO32 / p) + secLo
      return sec * 1e6 + Math.floor((frac * 1e6) / p) + f.offsetUs
    }
    default: {
      const units = (BigInt(hi) << 32n) | BigInt(lo)
      return Number((units * 1000000n) / f.big) + f.offsetUs
    }
  }
}

class PcapngReader extends ChunkedReader implements CaptureReader {
  readonly format = 'pcapng' as const
  private readonly maxBlock: number
  private readonly maxIfaces: number
  private ifaces: Iface[] = []
  private lastTsUs = 0
  /** number of Section Header Blocks seen */
  sections = 0

  constructor(src: ByteSource, path: string, options: CaptureOptions) {
    const maxBlock = clampInt(options.maxBlockBytes, MAX_BLOCK_BYTES, 64, 1 << 30)
    super(src, path, options, maxBlock)
    this.maxBlock = maxBlock
    this.maxIfaces = clampInt(options.maxInterfaces, MAX_INTERFACES, 1, 1 << 20)
    const avail = this.fill(12)
    if (avail < 12) throw this.err('truncated', 0, 'truncated pcapng section header', `12 bytes needed, ${avail} left`)
    const bom = this.buf.readUInt32LE(8)
    if (bom !== PCAPNG_BOM && this.buf.readUInt32BE(8) !== PCAPNG_BOM) {
      throw this.err('bad_magic', 0, 'pcapng section header without byte-order magic', `0x${this.buf.toString('hex', 8, 12)}`)
    }
  }

  /** Interfaces of the current section. */
  get interfaceCount(): number {
    return this.ifaces.length
  }

  protected read(): CaptureRecord | null {
    for (;;) {
      const at = this.offset
      let avail = this.fill(MIN_BLOCK)
      if (avail === 0) return null
      if (avail < 8) throw this.err('truncated', at, 'truncated block header', `8 bytes needed, ${avail} left`)
      let p = this.pos
      const type = this.u32(p)
      if (type === BT_SHB) {
        if (avail < 12) throw this.err('truncated', at, 'truncated section header block', `12 bytes needed, ${avail} left`)
        const bom = this.buf.readUInt32LE(p + 8)
        if (bom === PCAPNG_BOM) this.le = true
        else if (this.buf.readUInt32BE(p + 8) === PCAPNG_BOM) this.le = false
        else throw this.err('corrupt', at, 'section header block without byte-order magic', `0x${this.buf.toString('hex', p + 8, p + 12)}`)
      }
      const blen = this.u32(p + 4)
      if (blen < MIN_BLOCK || blen % 4 !== 0) {
        throw this.err('corrupt', at, 'bad block length', `block type 0x${type.toString(16)} says ${blen} bytes; must be a multiple of 4 and at least ${MIN_BLOCK}`)
      }
      const known = type === BT_SHB || type === BT_IDB || type === BT_EPB || type === BT_SPB || type === BT_PB
      if (blen > this.maxBlock) {
        if (known) {
          throw this.err('corrupt', at, 'block too large', `block type 0x${type.toString(16)} says ${blen} bytes, limit ${this.maxBlock}`)
        }
        // Unknown big block: jump to its trailer without reading its body.
        this.seek(at + blen - 4)
        avail = this.fill(4)
        if (avail < 4) throw this.err('truncated', at, 'truncated block', `header says ${blen} bytes, ${this.size - at} left`)
        if (this.u32(this.pos) !== blen) {
          throw this.err('corrupt', at, 'block trailer length mismatch', `leading ${blen}, trailing ${this.u32(this.pos)}`)
        }
        this.pos += 4
        continue
      }
      avail = this.fill(blen)
      if (avail < blen) throw this.err('truncated', at, 'truncated block', `header says ${blen} bytes, ${avail} left`)
      p = this.pos
      const trailer = this.u32(p + blen - 4)
      if (trailer !== blen) throw this.err('corrupt', at, 'block trailer length mismatch', `leading ${blen}, trailing ${trailer}`)
      let rec: CaptureRecord | null = null
      switch (type) {
        case BT_SHB: this.sectionHeader(at, p, blen); break
        case BT_IDB: this.interfaceBlock(at, p, blen); break
        case BT_EPB: rec = this.packetBlock(at, p, blen, false); break
        case BT_PB: rec = this.packetBlock(at, p, blen, true); break
        case BT_SPB: rec = this.simplePacket(at, p, blen); break
        default: break // NRB, ISB, DSB, custom, ...: skipped by length
      }
      this.pos = p + blen
      if (rec) return rec
    }
  }

  private sectionHeader(at: number, p: number, blen: number): void {
    if (blen < MIN_SHB) throw this.err('corrupt', at, 'section header block too short', `${blen} bytes, minimum ${MIN_SHB}`)
    const major = this.u16(p + 12)
    if (major !== 1) throw this.err('corrupt', at, 'unsupported pcapng version', `${major}.${this.u16(p + 14)}`)
    this.ifaces = []
    this.sections++
  }

  private interfaceBlock(at: number, p: number, blen: number): void {
    if (blen < MIN_IDB) throw this.err('corrupt', at, 'interface description block too short', `${blen} bytes, minimum ${MIN_IDB}`)
    if (this.ifaces.length >= this.maxIfaces) {
      this.onAnomaly({type: 'limit', event: 'capture.interfaces_limit', detail: {offset: at, limit: this.maxIfaces}})
      throw this.err('corrupt', at, 'too many interfaces in one section', `limit ${this.maxIfaces}`)
    }
    const linktype = this.u16(p + 8)
    const snaplen = this.u32(p + 12)
    let tsresol = 6
    let offsetSec = 0
    const end = p + blen - 4
    let o = p + 16
    while (o + 4 <= end) {
      const code = this.u16(o)
      const olen = this.u16(o + 2)
      if (code === OPT_ENDOFOPT) break
      if (o + 4 + olen > end) {
        throw this.err('corrupt', at, 'interface option overruns its block', `option ${code} says ${olen} bytes, ${end - o - 4} left`)
      }
      if (code === OPT_IF_TSRESOL && olen >= 1) tsresol = this.buf[o + 4]
      else if (code === OPT_IF_TSOFFSET && olen >= 8) {
        offsetSec = Number(this.le ? this.buf.readBigInt64LE(o + 4) : this.buf.readBigInt64BE(o + 4))
      }
      o += 4 + ((olen + 3) & ~3)
    }
    this.ifaces.push(makeIface(linktype, snaplen, tsresol, offsetSec))
  }

  private packetBlock(at: number, p: number, blen: number, obsolete: boolean): CaptureRecord {
    const name = obsolete ? 'packet block' : 'enhanced packet block'
    if (blen < MIN_EPB) throw this.err('corrupt', at, `${name} too short`, `${blen} bytes, minimum ${obsolete ? MIN_PB : MIN_EPB}`)
    const id = obsolete ? this.u16(p + 8) : this.u32(p + 8)
    const f = this.ifaces[id]
    if (f === undefined) {
      throw this.err('corrupt', at, `${name} names an unknown interface`, `interface ${id}, section has ${this.ifaces.length}`)
    }
    const caplen = this.u32(p + 20)
    const origlen = this.u32(p + 24)
    const room = blen - MIN_EPB
    if (caplen > room) throw this.err('corrupt', at, `${name} overruns its block`, `header says ${caplen} bytes, block holds ${room}`)
    this.checkCaplen(at, caplen, f)
    const rec = this.rec
    rec.tsUs = toMicros(f, this.u32(p + 12), this.u32(p + 16))
    this.lastTsUs = rec.tsUs
    rec.linktype = f.linktype
    rec.interfaceId = id
    rec.at(this.u8, p + 28, caplen)
    rec.originalLength = origlen
    if (caplen > origlen) this.checkLengths(at, caplen, origlen)
    return rec
  }

  private simplePacket(at: number, p: number, blen: number): CaptureRecord {
    if (blen < MIN_SPB) throw this.err('corrupt', at, 'simple packet block too short', `${blen} bytes, minimum ${MIN_SPB}`)
    const f = this.ifaces[0]
    if (f === undefined) throw this.err('corrupt', at, 'simple packet block before any interface description block')
    const origlen = this.u32(p + 8)
    const room = blen - MIN_SPB
    let caplen = Math.min(origlen, room)
    if (f.snaplen !== 0 && caplen > f.snaplen) caplen = f.snaplen
    this.checkCaplen(at, caplen, f)
    const rec = this.rec
    rec.tsUs = this.lastTsUs
    rec.linktype = f.linktype
    rec.interfaceId = 0
    rec.at(this.u8, p + 12, caplen)
    rec.originalLength = origlen
    return rec
  }

  private checkCaplen(at: number, caplen: number, f: Iface): void {
    if (caplen > this.maxRecord) {
      throw this.err('corrupt', at, 'impossible packet length', `header says ${caplen} bytes, more than the record limit ${this.maxRecord}`)
    }
    if (f.snaplen !== 0 && caplen > f.snaplen) {
      throw this.err('corrupt', at, 'impossible packet length', `header says ${caplen} bytes, more than the interface snaplen ${f.snaplen}`)
    }
  }
}
