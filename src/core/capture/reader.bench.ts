/**
 * Read-only throughput baseline: how fast the capture reader alone walks a file. Replay
 * throughput is compared against this number.
 *
 * As a script (after `npm run build`): `node dist/core/capture/reader.bench.js FILE...`
 */
import {pathToFileURL} from 'node:url'
import {openCapture} from './reader.js'

export interface ReadBenchResult {
  packets: number
  /** sum of captured packet bytes (not counting file and record headers) */
  bytes: number
  seconds: number
}

export async function benchRead(path: string): Promise<ReadBenchResult> {
  const t0 = process.hrtime.bigint()
  const r = openCapture(path)
  let packets = 0
  let bytes = 0
  try {
    for (let rec = r.next(); rec !== null; rec = r.next()) {
      packets++
      bytes += rec.capturedLength
    }
  } finally {
    r.close()
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  return {packets, bytes, seconds}
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const file of process.argv.slice(2)) {
    const {packets, bytes, seconds} = await benchRead(file)
    const mb = bytes / 1e6
    console.log(`${file}: ${packets} packets, ${mb.toFixed(1)} MB in ${seconds.toFixed(3)} s = ` +
      `${(mb / seconds).toFixed(0)} MB/s, ${(packets / seconds / 1e6).toFixed(2)} Mpps`)
  }
}
