/**
 * TCP connect() probing: the fallback when raw sockets are not permitted, and the transport of
 * service detection (`exchange`: connect, optionally TLS, send a probe, read the answer).
 */
import net from 'node:net'
import tls from 'node:tls'

export const CONNECT_LIMITS = {
  /** sockets open at once */
  concurrency: 256,
  connectTimeoutMs: 1500,
}

/**
 * Bytes of a service's answer kept for matching (probes.ts re-exports it). Defined here so the
 * discovery path does not load the probe compiler (yaml, re2js: ~0.5 s of start-up).
 */
export const MAX_RESPONSE_BYTES = 16 * 1024

export type PortState = 'open' | 'closed' | 'filtered'

/** connect() to host:port; open on success, closed on refusal, filtered on timeout/unreachable. */
export function probeConnect(host: string, port: number, timeoutMs = CONNECT_LIMITS.connectTimeoutMs): Promise<PortState> {
  return new Promise((resolve) => {
    const sock = net.connect({host, port})
    let done = false
    const finish = (s: PortState) => {
      if (done) return
      done = true
      clearTimeout(timer)
      sock.destroy()
      resolve(s)
    }
    const timer = setTimeout(() => finish('filtered'), timeoutMs)
    sock.once('connect', () => finish('open'))
    sock.once('error', (err: NodeJS.ErrnoException) => finish(err.code === 'ECONNREFUSED' ? 'closed' : 'filtered'))
  })
}

/** Runs fn over items with at most `concurrency` in flight. */
export async function pool<T, R>(items: readonly T[], concurrency: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    for (;;) {
      const i = next++
      if (i >= items.length) return
      out[i] = await fn(items[i], i)
    }
  }
  await Promise.all(Array.from({length: Math.max(1, Math.min(concurrency, items.length))}, worker))
  return out
}

/** connect() scan: the ports of `host` that accepted, and whether anything answered at all. */
export async function connectScan(host: string, ports: readonly number[], o: {concurrency?: number; timeoutMs?: number; onProgress?: (done: number) => void} = {}): Promise<{open: number[]; answered: boolean}> {
  let done = 0
  const states = await pool(ports, o.concurrency ?? CONNECT_LIMITS.concurrency, async (p) => {
    const s = await probeConnect(host, p, o.timeoutMs)
    o.onProgress?.(++done)
    return s
  })
  return {open: ports.filter((_, i) => states[i] === 'open'), answered: states.some((s) => s !== 'filtered')}
}

export interface ExchangeRequest {
  host: string
  port: number
  send: Uint8Array
  tls: boolean
  waitMs: number
  connectTimeoutMs?: number
  /** return true to stop reading early (called with all bytes so far) */
  done?: (data: Uint8Array) => boolean
}

export interface ExchangeResult {
  data: Uint8Array
  /** could not connect (refused, timeout, TLS handshake failed) */
  connectFailed: boolean
  /** the peer closed the connection */
  closed: boolean
}

export type Exchange = (req: ExchangeRequest) => Promise<ExchangeResult>

/** Real network exchange over node:net / node:tls (certificates are not verified: we only look). */
export const netExchange: Exchange = (req) => new Promise((resolve) => {
  const chunks: Buffer[] = []
  let size = 0
  let connected = false
  let finished = false
  const sock: net.Socket = req.tls
    ? tls.connect({host: req.host, port: req.port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1']})
    : net.connect({host: req.host, port: req.port})
  const finish = (closed: boolean) => {
    if (finished) return
    finished = true
    clearTimeout(connectTimer)
    clearTimeout(readTimer)
    sock.destroy()
    resolve({data: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks), connectFailed: !connected, closed})
  }
  let readTimer: NodeJS.Timeout | undefined
  const connectTimer = setTimeout(() => finish(false), req.connectTimeoutMs ?? 3000)
  sock.once(req.tls ? 'secureConnect' : 'connect', () => {
    connected = true
    clearTimeout(connectTimer)
    if (req.send.length > 0) sock.write(req.send)
    readTimer = setTimeout(() => finish(false), req.waitMs)
  })
  sock.on('data', (d: Buffer) => {
    if (size >= MAX_RESPONSE_BYTES) return
    const take = d.subarray(0, MAX_RESPONSE_BYTES - size)
    chunks.push(Buffer.from(take))
    size += take.length
    if (size >= MAX_RESPONSE_BYTES) return finish(false)
    if (req.done) {
      const all = Buffer.concat(chunks)
      chunks.length = 0
      chunks.push(all)
      if (req.done(all)) finish(false)
    }
  })
  sock.once('end', () => finish(true))
  sock.once('close', () => finish(true))
  sock.once('error', () => finish(true))
})
