/**
 * Micro benchmark of PacketDecoder on the corpus captures (wired into `npm run bench` by the
 * lead). Reports packets/s for plain decode, decode + address strings, and MB/s.
 */
import {performance} from 'node:perf_hooks'
import {PacketDecoder} from './decode.js'
import {buildTcpPacket} from './encode.js'
import {corpusFiles, readCorpusFile, type FixtureFrame} from './pcap-fixture.js'

export interface BenchResult {
  name: string
  value: number
  unit: string
}

/** Minimum measured time per case. */
export const BENCH_MIN_MS = 300

function loadFrames(): FixtureFrame[] {
  const frames: FixtureFrame[] = []
  for (const f of corpusFiles()) for (const fr of readCorpusFile(f)) frames.push(fr)
  if (frames.length === 0) {
    // no corpus: a synthetic mix so the bench still runs
    for (let i = 0; i < 256; i++) {
      frames.push({linktype: 1, data: buildTcpPacket({src: '10.0.0.1', dst: '10.0.0.2', srcPort: 1000 + i, dstPort: 80,
        options: {mss: 1460, timestamp: [i, i]}, payload: new Uint8Array(i * 4)})})
    }
  }
  return frames
}

function run(frames: FixtureFrame[], withStrings: boolean): {pps: number, bps: number} {
  const dec = new PacketDecoder()
  let sink = 0
  const pass = (): number => {
    let bytes = 0
    for (let i = 0; i < frames.length; i++) {
      const p = dec.decode(frames[i].data, frames[i].linktype)
      sink += p.payloadLength + p.srcPort
      if (withStrings) sink += p.src.length + p.dst.length
      bytes += frames[i].data.length
    }
    return bytes
  }
  for (let w = 0; w < 20; w++) pass() // warm-up
  let packets = 0
  let bytes = 0
  const t0 = performance.now()
  let t = t0
  while (t - t0 < BENCH_MIN_MS) {
    bytes += pass()
    packets += frames.length
    t = performance.now()
  }
  if (sink === -1) console.log(sink) // keep the work observable
  const s = (t - t0) / 1000
  return {pps: packets / s, bps: bytes / s}
}

export async function benchDecode(): Promise<BenchResult[]> {
  const frames = loadFrames()
  const plain = run(frames, false)
  const strings = run(frames, true)
  return [
    {name: 'packet.decode', value: Math.round(plain.pps), unit: 'packets/s'},
    {name: 'packet.decode.throughput', value: Math.round(plain.bps / 1e6), unit: 'MB/s'},
    {name: 'packet.decode+addresses', value: Math.round(strings.pps), unit: 'packets/s'},
    {name: 'packet.decode.frames', value: frames.length, unit: 'frames'},
  ]
}
