/**
 * Tiny capture-file reader for the packet tests and the decode benchmark only (the real capture
 * reader lives in src/core/capture). Reads classic pcap (either byte order, µs or ns) and the
 * pcapng blocks that matter here (SHB, IDB, EPB, SPB). Bounded and non-throwing: a malformed
 * file yields the frames read so far.
 */
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

/** Most frames returned per file. */
export const MAX_FIXTURE_FRAMES = 200_000

export interface FixtureFrame {
  linktype: number
  data: Uint8Array
}

/** The shared corpus folder (`<repo>/../shared/corpus/pcaps`), from src/core/packet or dist/core/packet. */
export const CORPUS_DIR = fileURLToPath(new URL('../../../../shared/corpus/pcaps/', import.meta.url))

export function corpusExists(): boolean {
  return existsSync(CORPUS_DIR)
}

/** Names of the capture files in the corpus (sorted). */
export function corpusFiles(): string[] {
  if (!corpusExists()) return []
  return readdirSync(CORPUS_DIR).filter((f) => f.endsWith('.pcap') || f.endsWith('.pcapng')).sort()
}

export function readCorpusFile(name: string): FixtureFrame[] {
  return parseCapture(readFileSync(CORPUS_DIR + name))
}

export function parseCapture(buf: Uint8Array): FixtureFrame[] {
  if (buf.length < 4) return []
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const magicBE = dv.getUint32(0, false)
  if (magicBE === 0x0a0d0d0a) return parsePcapng(buf, dv)
  return parsePcap(buf, dv)
}

function parsePcap(buf: Uint8Array, dv: DataView): FixtureFrame[] {
  const out: FixtureFrame[] = []
  if (buf.length < 24) return out
  const m = dv.getUint32(0, true)
  let le: boolean
  if (m === 0xa1b2c3d4 || m === 0xa1b23c4d) le = true
  else if (m === 0xd4c3b2a1 || m === 0x4d3cb2a1) le = false
  else return out
  const linktype = dv.getUint32(20, le) & 0x0fffffff
  let o = 24
  while (o + 16 <= buf.length && out.length < MAX_FIXTURE_FRAMES) {
    const incl = dv.getUint32(o + 8, le)
    const start = o + 16
    if (start + incl > buf.length) break
    out.push({linktype, data: buf.subarray(start, start + incl)})
    o = start + incl
  }
  return out
}

function parsePcapng(buf: Uint8Array, dv: DataView): FixtureFrame[] {
  const out: FixtureFrame[] = []
  const ifLinktypes: number[] = []
  let le = true
  let o = 0
  while (o + 12 <= buf.length && out.length < MAX_FIXTURE_FRAMES) {
    const typeLE = dv.getUint32(o, true)
    if (typeLE === 0x0a0d0d0a) {
      const bom = dv.getUint32(o + 8, true)
      le = bom === 0x1a2b3c4d
      ifLinktypes.length = 0
    }
    const type = dv.getUint32(o, le)
    const len = dv.getUint32(o + 4, le)
    if (len < 12 || len % 4 !== 0 || o + len > buf.length) break
    if (type === 1 && len >= 20) {
      ifLinktypes.push(dv.getUint16(o + 8, le))
    } else if (type === 6 && len >= 32) {
      const ifid = dv.getUint32(o + 8, le)
      const cap = dv.getUint32(o + 20, le)
      if (o + 28 + cap <= o + len) out.push({linktype: ifLinktypes[ifid] ?? -1, data: buf.subarray(o + 28, o + 28 + cap)})
    } else if (type === 3 && len >= 16) {
      const orig = dv.getUint32(o + 8, le)
      const cap = Math.min(orig, len - 16)
      out.push({linktype: ifLinktypes[0] ?? -1, data: buf.subarray(o + 12, o + 12 + cap)})
    }
    o += len
  }
  return out
}

/** Parses a `tcpdump -XX` hex dump (lines `0x0000:  0000 5e00 ...  ascii`) into bytes. */
export function hexDump(dump: string): Uint8Array {
  const bytes: number[] = []
  for (const line of dump.split('\n')) {
    const colon = line.indexOf(':')
    if (colon < 0 || line.trim().length === 0) continue
    const rest = line.slice(colon + 1)
    // hex part: up to 8 groups of 4 hex digits separated by single spaces, ends at two spaces
    const hexPart = rest.trimStart().split('  ')[0]
    for (const group of hexPart.split(' ')) {
      for (let i = 0; i + 1 < group.length; i += 2) bytes.push(parseInt(group.slice(i, i + 2), 16))
    }
  }
  return Uint8Array.from(bytes)
}
