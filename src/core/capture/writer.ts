/**
 * pcap writer (buffered, streaming) and in-memory encoders for pcap and pcapng (for tests and
 * tools). File layouts: see the diagrams in reader.ts (draft-ietf-opsawg-pcap sections 4-5,
 * draft-ietf-opsawg-pcapng sections 3-4).
 */
import {closeSync, openSync, writeSync} from 'node:fs'
import {CaptureError} from './reader.js'

/** Bytes buffered before one write(2). */
export const WRITE_BUFFER_BYTES = 1 << 20
/** Default snaplen written in the file header; longer packets are cut to it. */
export const DEFAULT_SNAPLEN = 262144

const MAX_U32 = 0xffffffff

export interface PcapWriterOptions {
  linktype: number
  snaplen?: number
  /** nanosecond magic (0xa1b23c4d) instead of microsecond */
  nanos?: boolean
  bufferBytes?: number
}

export interface PcapRecordInput {
  tsUs: number
  data: Uint8Array
  /** defaults to data.length */
  originalLength?: number
}

export interface EncodePcapOptions {
  snaplen?: number
  nanos?: boolean
  bigEndian?: boolean
}

function u32(v: number): number {
  return v < 0 || !Number.isFinite(v) ? 0 : v > MAX_U32 ? MAX_U32 : Math.floor(v)
}

function writeFileHeader(buf: Buffer, o: number, linktype: number, snaplen: number, nanos: boolean, be: boolean): void {
  const w32 = be ? buf.writeUInt32BE.bind(buf) : buf.writeUInt32LE.bind(buf)
  const w16 = be ? buf.writeUInt16BE.bind(buf) : buf.writeUInt16LE.bind(buf)
  w32(nanos ? 0xa1b23c4d : 0xa1b2c3d4, o)
  w16(2, o + 4)
  w16(4, o + 6)
  w32(0, o + 8)
  w32(0, o + 12)
  w32(u32(snaplen), o + 16)
  w32(linktype & 0xffff, o + 20)
}

/** Writes a 16-byte record header; returns true if the timestamp had to be clamped to 0..2^32-1 s. */
function writeRecordHeader(buf: Buffer, o: number, tsUs: number, caplen: number, origlen: number, nanos: boolean, be: boolean): boolean {
  let sec = Math.floor(tsUs / 1e6)
  let frac = Math.floor(tsUs - sec * 1e6)
  let clamped = false
  if (!(sec >= 0)) {
    sec = 0
    frac = 0
    clamped = true
  } else if (sec > MAX_U32) {
    sec = MAX_U32
    frac = 999999
    clamped = true
  }
  if (nanos) frac *= 1000
  if (be) {
    buf.writeUInt32BE(sec, o)
    buf.writeUInt32BE(frac, o + 4)
    buf.writeUInt32BE(caplen, o + 8)
    buf.writeUInt32BE(u32(origlen), o + 12)
  } else {
    buf.writeUInt32LE(sec, o)
    buf.writeUInt32LE(frac, o + 4)
    buf.writeUInt32LE(caplen, o + 8)
    buf.writeUInt32LE(u32(origlen), o + 12)
  }
  return clamped
}

export class PcapWriter {
  readonly path: string
  readonly linktype: number
  readonly snaplen: number
  readonly nanos: boolean
  packets = 0
  /** bytes handed to the OS so far plus bytes still buffered */
  bytes = 0
  /** records whose timestamp was outside what pcap can hold (clamped) */
  clampedTimestamps = 0
  private fd: number
  private buf: Buffer
  private used = 0

  private constructor(path: string, fd: number, opts: PcapWriterOptions) {
    this.path = path
    this.fd = fd
    this.linktype = opts.linktype
    this.snaplen = opts.snaplen && opts.snaplen > 0 ? Math.min(u32(opts.snaplen), MAX_U32) : DEFAULT_SNAPLEN
    this.nanos = opts.nanos === true
    const size = opts.bufferBytes && opts.bufferBytes >= 64 ? Math.floor(opts.bufferBytes) : WRITE_BUFFER_BYTES
    this.buf = Buffer.allocUnsafe(size)
    writeFileHeader(this.buf, 0, this.linktype, this.snaplen, this.nanos, false)
    this.used = 24
    this.bytes = 24
  }

  /** Creates (truncates) `path`; throws CaptureError('io') with the OS reason. */
  static open(path: string, opts: PcapWriterOptions): PcapWriter {
    let fd: number
    try {
      fd = openSync(path, 'w')
    } catch (err) {
      throw new CaptureError('io', path, 0, 'cannot create file', (err as Error).message)
    }
    return new PcapWriter(path, fd, opts)
  }

  /** Appends one packet; data longer than snaplen is cut (originalLength keeps the real size). */
  write(tsUs: number, data: Uint8Array, originalLength: number = data.length): void {
    if (this.fd < 0) throw new CaptureError('io', this.path, this.bytes, 'writer is closed')
    const caplen = Math.min(data.length, this.snaplen)
    const need = 16 + caplen
    if (this.used + need > this.buf.length) this.flush()
    if (need > this.buf.length) {
      if (writeRecordHeader(this.buf, 0, tsUs, caplen, originalLength, this.nanos, false)) this.clampedTimestamps++
      this.out(this.buf.subarray(0, 16))
      this.out(data.subarray(0, caplen))
    } else {
      if (writeRecordHeader(this.buf, this.used, tsUs, caplen, originalLength, this.nanos, false)) this.clampedTimestamps++
      this.buf.set(caplen === data.length ? data : data.subarray(0, caplen), this.used + 16)
      this.used += need
    }
    this.packets++
    this.bytes += need
  }

  /** Writes buffered bytes to the file. */
  flush(): void {
    if (this.used > 0 && this.fd >= 0) {
      this.out(this.buf.subarray(0, this.used))
      this.used = 0
    }
  }

  close(): void {
    if (this.fd < 0) return
    try {
      this.flush()
    } finally {
      const fd = this.fd
      this.fd = -1
      closeSync(fd)
    }
  }

  private out(bytes: Uint8Array): void {
    let off = 0
    while (off < bytes.length) {
      try {
        off += writeSync(this.fd, bytes, off, bytes.length - off)
      } catch (err) {
        throw new CaptureError('io', this.path, this.bytes, 'write failed', (err as Error).message)
      }
    }
  }
}

/** Encodes a whole pcap file in memory (little-endian unless opts.bigEndian). */
export function encodePcap(linktype: number, records: readonly PcapRecordInput[], opts: EncodePcapOptions = {}): Uint8Array {
  const snaplen = opts.snaplen && opts.snaplen > 0 ? opts.snaplen : DEFAULT_SNAPLEN
  const nanos = opts.nanos === true
  const be = opts.bigEndian === true
  let total = 24
  for (const r of records) total += 16 + Math.min(r.data.length, snaplen)
  const buf = Buffer.alloc(total)
  writeFileHeader(buf, 0, linktype, snaplen, nanos, be)
  let o = 24
  for (const r of records) {
    const caplen = Math.min(r.data.length, snaplen)
    writeRecordHeader(buf, o, r.tsUs, caplen, r.originalLength ?? r.data.length, nanos, be)
    buf.set(r.data.subarray(0, caplen), o + 16)
    o += 16 + caplen
  }
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length)
}

// ---------------------------------------------------------------------------------------------
// pcapng (minimal): one section = SHB + IDBs + the given blocks.

export interface PcapngInterfaceInput {
  linktype: number
  /** 0 = no limit (default) */
  snaplen?: number
  /** raw if_tsresol byte: 6 = microseconds (default, option omitted), 9 = ns, 0x80|k = 2^-k */
  tsresol?: number
  /** if_tsoffset in seconds */
  tsoffset?: number
}

export type PcapngBlockInput =
  | {
    kind: 'epb'
    interfaceId: number
    /** microseconds since the epoch; converted to the interface's units */
    tsUs?: number
    /** raw timestamp in the interface's units (wins over tsUs) */
    ts?: bigint
    data: Uint8Array
    originalLength?: number
  }
  | {kind: 'spb'; data: Uint8Array; originalLength?: number}
  /** any block, body given raw (padded to 4 here): unknown types, NRB, ISB, custom... */
  | {kind: 'raw'; blockType: number; body: Uint8Array}

export interface EncodePcapngOptions {
  bigEndian?: boolean
}

function unitsPerSecond(tsresol: number): bigint {
  const exp = BigInt(tsresol & 0x7f)
  return (tsresol & 0x80) === 0 ? 10n ** exp : 1n << exp
}

/** Encodes one pcapng section. Concatenate several results for a multi-section file. */
export function encodePcapng(
  interfaces: readonly PcapngInterfaceInput[],
  blocks: readonly PcapngBlockInput[],
  opts: EncodePcapngOptions = {},
): Uint8Array {
  const be = opts.bigEndian === true
  const parts: Buffer[] = []
  const block = (type: number, body: Buffer): void => {
    const padded = (body.length + 3) & ~3
    const total = 12 + padded
    const b = Buffer.alloc(total)
    if (be) {
      b.writeUInt32BE(type, 0)
      b.writeUInt32BE(total, 4)
      b.writeUInt32BE(total, total - 4)
    } else {
      b.writeUInt32LE(type, 0)
      b.writeUInt32LE(total, 4)
      b.writeUInt32LE(total, total - 4)
    }
    body.copy(b, 8)
    parts.push(b)
  }
  const w32 = (b: Buffer, v: number, o: number): number => (be ? b.writeUInt32BE(v, o) : b.writeUInt32LE(v, o))
  const w16 = (b: Buffer, v: number, o: number): number => (be ? b.writeUInt16BE(v, o) : b.writeUInt16LE(v, o))

  // SHB body: BOM, major 1, minor 0, section length -1, no options
  const shb = Buffer.alloc(16)
  w32(shb, 0x1a2b3c4d, 0)
  w16(shb, 1, 4)
  w16(shb, 0, 6)
  shb.fill(0xff, 8, 16)
  block(0x0a0d0d0a, shb)

  for (const f of interfaces) {
    const opt: Buffer[] = []
    if (f.tsresol !== undefined && f.tsresol !== 6) {
      const o = Buffer.alloc(8)
      w16(o, 9, 0)
      w16(o, 1, 2)
      o[4] = f.tsresol
      opt.push(o)
    }
    if (f.tsoffset) {
      const o = Buffer.alloc(12)
      w16(o, 14, 0)
      w16(o, 8, 2)
      if (be) o.writeBigInt64BE(BigInt(f.tsoffset), 4)
      else o.writeBigInt64LE(BigInt(f.tsoffset), 4)
      opt.push(o)
    }
    if (opt.length > 0) opt.push(Buffer.alloc(4)) // opt_endofopt
    const head = Buffer.alloc(8)
    w16(head, f.linktype, 0)
    w32(head, f.snaplen ?? 0, 4)
    block(1, Buffer.concat([head, ...opt]))
  }

  for (const blk of blocks) {
    if (blk.kind === 'epb') {
      const f = interfaces[blk.interfaceId]
      let ts = blk.ts
      if (ts === undefined) {
        const units = unitsPerSecond(f?.tsresol ?? 6)
        const us = BigInt(Math.floor(blk.tsUs ?? 0)) - BigInt(f?.tsoffset ?? 0) * 1000000n
        ts = (us * units) / 1000000n
      }
      const head = Buffer.alloc(20)
      w32(head, blk.interfaceId, 0)
      w32(head, Number((ts >> 32n) & 0xffffffffn), 4)
      w32(head, Number(ts & 0xffffffffn), 8)
      w32(head, blk.data.length, 12)
      w32(head, blk.originalLength ?? blk.data.length, 16)
      block(6, Buffer.concat([head, Buffer.from(blk.data)]))
    } else if (blk.kind === 'spb') {
      const head = Buffer.alloc(4)
      w32(head, blk.originalLength ?? blk.data.length, 0)
      block(3, Buffer.concat([head, Buffer.from(blk.data)]))
    } else {
      block(blk.blockType, Buffer.from(blk.body))
    }
  }
  const out = Buffer.concat(parts)
  return new Uint8Array(out.buffer, out.byteOffset, out.length)
}
