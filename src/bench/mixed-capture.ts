/**
 * A large mixed capture for benchmarks: every Ethernet capture of the sample set (and of the
 * shared corpus when it is beside the repository), repeated with shifted addresses and times so
 * each repetition is a new set of flows, until the file reaches the wanted size.
 */
import fs from 'node:fs'
import path from 'node:path'
import {openCapture} from '../core/capture/reader.js'
import {PcapWriter} from '../core/capture/writer.js'
import {LINKTYPE} from '../core/packet/linktype.js'
import {PacketDecoder} from '../core/packet/decode.js'
import {recomputeChecksums} from '../core/packet/encode.js'

interface Frame {
  tsUs: number
  data: Uint8Array
}

export function sourceCaptures(dirs: readonly string[]): string[] {
  const out: string[] = []
  for (const dir of dirs) {
    if (!fs.existsSync(dir)) continue
    for (const f of fs.readdirSync(dir).sort()) if (/\.pcap(ng)?$/.test(f)) out.push(path.join(dir, f))
  }
  return out
}

/**
 * Ethernet frames of the given files on one time line: each file starts a second after the
 * previous one ended, and gaps inside a file are capped at a second (sample captures were taken
 * years apart; the benchmark wants their packets, not their idle time).
 */
function loadFrames(files: readonly string[]): {frames: Frame[]; spanUs: number} {
  const frames: Frame[] = []
  let now = 0
  for (const file of files) {
    let prev = -1
    let r
    try {
      r = openCapture(file)
      for (let rec = r.next(); rec; rec = r.next()) {
        if (rec.linktype !== LINKTYPE.ETHERNET) continue
        if (prev >= 0) now += Math.min(1_000_000, Math.max(0, rec.tsUs - prev))
        prev = rec.tsUs
        frames.push({tsUs: now, data: rec.data.slice()})
      }
    } catch {
      // a bad sample file is skipped: the benchmark needs volume, not every file
    } finally {
      r?.close()
    }
    now += 1_000_000
  }
  return {frames, spanUs: now}
}

/**
 * Writes `targetBytes` (at least) of frames to `out`. Repetition k XORs k into the second and
 * third bytes of every IPv4 address (both ends alike, so conversations stay conversations) and
 * moves time forward by the sample span.
 */
export function buildMixedCapture(out: string, sources: readonly string[], targetBytes: number): {packets: number; bytes: number} {
  const {frames, spanUs} = loadFrames(sources)
  if (frames.length === 0) throw new Error('no Ethernet frames in the benchmark sources')
  const writer = PcapWriter.open(out, {linktype: LINKTYPE.ETHERNET})
  const decoder = new PacketDecoder()
  const base = 1_700_000_000_000_000
  let bytes = 0
  let packets = 0
  try {
    for (let rep = 0; bytes < targetBytes; rep++) {
      const hi = (rep >> 8) & 0xff
      const lo = rep & 0xff
      for (const f of frames) {
        const data = f.data.slice()
        const pkt = decoder.decode(data, LINKTYPE.ETHERNET)
        if (rep > 0 && pkt.ipVersion === 4 && !pkt.truncated) {
          const o = pkt.ipOffset
          data[o + 13] ^= hi
          data[o + 14] ^= lo
          data[o + 17] ^= hi
          data[o + 18] ^= lo
          recomputeChecksums(data, decoder.decode(data, LINKTYPE.ETHERNET))
        }
        writer.write(base + rep * spanUs + f.tsUs, data)
        bytes += data.length
        packets++
      }
    }
  } finally {
    writer.close()
  }
  return {packets, bytes}
}
