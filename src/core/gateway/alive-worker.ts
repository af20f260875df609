/**
 * The fail-open refresher, in a worker thread of the gateway process so that a long pause of
 * the main thread (a SIGHUP reload parsing the rule pack, a major GC, a busy burst) cannot let
 * the `alive` element lapse: the main thread only stamps a heartbeat; this thread writes the
 * refresh line to its own `nft -i` child every refreshMs while the heartbeat is younger than
 * stallMs. If the process dies (even `kill -9`) this thread dies with it and the element
 * expires; if the main thread hangs for longer than stallMs, refreshing stops too.
 */
import {spawn} from 'node:child_process'
import {parentPort, workerData} from 'node:worker_threads'

export interface AliveWorkerData {
  line: string
  refreshMs: number
  stallMs: number
  /** Float64Array(1) over a SharedArrayBuffer: the main thread's last Date.now() */
  heartbeat: SharedArrayBuffer
}

const data = workerData as AliveWorkerData
const beat = new Float64Array(data.heartbeat)
const child = spawn('nft', ['-i'], {stdio: ['pipe', 'ignore', 'pipe']})
child.stdin.on('error', () => {})
child.stderr.on('data', (d: Buffer) => parentPort?.postMessage({error: d.toString('utf8').slice(0, 500)}))
child.on('error', (e) => parentPort?.postMessage({error: String(e)}))
let stalled = false
const write = () => {
  const age = Date.now() - beat[0]
  if (age > data.stallMs) {
    if (!stalled) parentPort?.postMessage({stalled: age})
    stalled = true
    return
  }
  stalled = false
  child.stdin.write(data.line + '\n')
}
write()
setInterval(write, data.refreshMs)
parentPort?.on('message', (m: {stop?: boolean}) => {
  if (m.stop) {
    child.stdin.end()
    child.kill()
    process.exit(0)
  }
})
