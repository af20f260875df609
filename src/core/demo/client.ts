/**
 * The demo's attacker: a plain TCP client that replays the client half of exploit samples
 * (src/core/demo/samples.ts) against a server and records what came back. The demo runs it
 * inside the attacker namespace (`ip netns exec NS node dist/core/demo/client.js JOB.json`); it
 * prints one JSON document (`ClientResult[]`) on stdout.
 *
 * Bounded: at most `maxResponseBytes` of each answer are kept, every wait has a timeout, and at
 * most `concurrency` connections are open at once. Connection errors are results, never thrown.
 */
import {readFileSync} from 'node:fs'
import net from 'node:net'
import {fileURLToPath} from 'node:url'
import type {ExploitSample} from './samples.js'

export const CLIENT_LIMITS = {
  /** bytes of the server's answer kept per sample */
  maxResponseBytes: 4096,
  /** connect timeout, ms */
  connectMs: 3000,
  /** wait for a banner (server-speaks-first protocols), ms */
  bannerMs: 2000,
  /** wait for an answer after each chunk, ms */
  answerMs: 1500,
  /** quiet time that ends a wait once something arrived, ms */
  idleMs: 150,
  /** connections at once */
  concurrency: 6,
}
export type ClientLimits = typeof CLIENT_LIMITS

/** Protocols whose server speaks first (the client waits for the greeting). */
const SERVER_FIRST = new Set(['ftp', 'smtp', 'imap', 'pop3', 'mysql'])

export interface ClientResult {
  rule: string
  name: string
  ip: string
  port: number
  /** our source port (matches the event log's src_port), 0 if never connected */
  local_port: number
  connected: boolean
  /** client bytes written */
  sent: number
  /** the connection was reset (ECONNRESET / EPIPE) */
  reset: boolean
  /** the server (or the gateway) closed it */
  closed: boolean
  /** first line of what came back after the greeting, printable */
  answer: string
  error?: string
}

/** Replay one sample; resolves with its result, never rejects. */
export function sendSample(s: ExploitSample, limits: ClientLimits = CLIENT_LIMITS): Promise<ClientResult> {
  const r: ClientResult = {rule: s.rule, name: s.name, ip: s.ip, port: s.port, local_port: 0, connected: false, sent: 0, reset: false, closed: false, answer: ''}
  return new Promise((resolve) => {
    const sock = net.connect({host: s.ip, port: s.port})
    let buf = Buffer.alloc(0)
    let greetingLen = 0
    let waiter: (() => void) | undefined
    let finished = false
    const wake = () => waiter?.()
    // wait until data arrived and the line went quiet, or the timeout, or the end
    const waitAnswer = (ms: number): Promise<void> => new Promise((res) => {
      if (r.closed || r.reset) return res()
      const start = buf.length
      let idle: NodeJS.Timeout | undefined
      const done = () => {
        clearTimeout(t)
        clearTimeout(idle)
        waiter = undefined
        res()
      }
      const t = setTimeout(done, ms)
      waiter = () => {
        if (r.closed || r.reset) return done()
        if (buf.length > start) {
          clearTimeout(idle)
          idle = setTimeout(done, limits.idleMs)
        }
      }
    })
    const finish = () => {
      if (finished) return
      finished = true
      const rest = buf.subarray(greetingLen)
      const text = rest.toString('latin1')
      const nl = text.indexOf('\n')
      r.answer = (nl < 0 ? text : text.slice(0, nl)).replace(/[^\x20-\x7e]/g, '.').slice(0, 200)
      sock.destroy()
      resolve(r)
    }
    sock.setTimeout(limits.connectMs, () => {
      if (!r.connected) {
        r.error = 'connect timeout'
        finish()
      }
    })
    sock.on('data', (d: Buffer) => {
      if (buf.length < limits.maxResponseBytes) buf = Buffer.concat([buf, d.subarray(0, limits.maxResponseBytes - buf.length)])
      wake()
    })
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET' || e.code === 'EPIPE') r.reset = true
      else r.error = e.code ?? e.message
      wake()
      if (!r.connected) finish()
    })
    sock.on('close', () => {
      r.closed = true
      wake()
    })
    sock.on('connect', () => {
      r.connected = true
      r.local_port = sock.localPort ?? 0
      sock.setTimeout(0)
      void (async () => {
        if (SERVER_FIRST.has(s.protocol)) {
          await waitAnswer(limits.bannerMs)
          greetingLen = buf.length
        }
        for (const c of s.chunks) {
          if (r.closed || r.reset) break
          const bytes = Buffer.from(c, 'base64')
          await new Promise<void>((res) => sock.write(bytes, () => res()))
          if (!r.reset) r.sent += bytes.length
          await waitAnswer(limits.answerMs)
        }
        finish()
      })()
    })
  })
}

/** Replay samples, `concurrency` at a time; results in the samples' order. */
export async function sendSamples(samples: readonly ExploitSample[], limits: ClientLimits = CLIENT_LIMITS): Promise<ClientResult[]> {
  const out: ClientResult[] = new Array<ClientResult>(samples.length)
  let next = 0
  const worker = async () => {
    while (next < samples.length) {
      const i = next++
      out[i] = await sendSample(samples[i], limits)
    }
  }
  await Promise.all(Array.from({length: Math.max(1, Math.min(limits.concurrency, samples.length))}, worker))
  return out
}

// entry point: node client.js JOB.json (JOB: {"samples": ExploitSample[]})
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const job = JSON.parse(readFileSync(process.argv[2] ?? '/dev/stdin', 'utf8')) as {samples: ExploitSample[]}
  void sendSamples(job.samples).then((res) => process.stdout.write(JSON.stringify(res) + '\n'))
}
