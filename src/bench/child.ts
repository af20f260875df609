/**
 * One measured run in a fresh process, so each figure's peak RSS is its own:
 *   node dist/bench/child.js read|replay|replay-rules FILE
 * Prints one JSON line: {packets, bytes, seconds, maxRssMb}.
 */
import {benchRead} from '../core/capture/reader.bench.js'
import {replayFile} from '../core/engine/replay.js'
import {engineDetection} from '../core/engine/detection.js'

const [mode, file] = process.argv.slice(2)
let packets = 0
let bytes = 0
let seconds = 0
let events = 0
if (mode === 'read') {
  ({packets, bytes, seconds} = await benchRead(file))
} else {
  const detection = mode === 'replay-rules' ? await engineDetection() : undefined
  const r = replayFile(file, {onEvent: () => { events++ }, detection})
  if (r.error) throw new Error(r.error)
  packets = r.packets
  bytes = r.bytes
  seconds = r.seconds
}
process.stdout.write(JSON.stringify({mode, packets, bytes, seconds, events, maxRssMb: process.resourceUsage().maxRSS / 1024}) + '\n')
