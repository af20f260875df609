/**
 * Webhook alarms: each alarm is one JSON POST, sent in order, one request at a time. A failed
 * request (network error, timeout, 408, 429, 5xx) is retried with exponential backoff and jitter
 * (backoff_ms, doubling, capped at max_backoff_ms) up to `retries` times; meanwhile new alarms
 * wait in the bounded queue (full: dropped and counted). Other 4xx answers are not retried.
 * Timers are unref'd: a pending retry never keeps the process alive.
 */
import type {WebhookTarget} from './config.js'
import {BoundedQueue} from './queue.js'
import type {AlarmTransport, TransportStats} from './queue.js'

/** Largest JSON body posted. */
export const MAX_WEBHOOK_BODY_BYTES = 64 * 1024

export class WebhookTransport implements AlarmTransport {
  readonly name: string
  readonly stats: TransportStats = {queued: 0, sent: 0, dropped: 0, failed: 0, retries: 0}
  readonly maxBytes = MAX_WEBHOOK_BODY_BYTES
  private readonly target: WebhookTarget
  private readonly queue: BoundedQueue<string>
  private attempts = 0
  private busy = false
  private timer: NodeJS.Timeout | undefined
  private closed = false
  private idleWaiters: (() => void)[] = []
  private readonly fetchImpl: typeof fetch

  constructor(target: WebhookTarget, fetchImpl: typeof fetch = fetch) {
    this.target = target
    this.name = `webhook ${target.url.replace(/\/\/[^@/]*@/, '//***@')}`
    this.queue = new BoundedQueue<string>(target.queue)
    this.fetchImpl = fetchImpl
  }

  get full(): boolean {
    return this.closed || this.queue.full
  }

  refuse(): void {
    this.stats.dropped++
  }

  enqueue(body: string): boolean {
    if (this.closed || !this.queue.push(body)) {
      this.stats.dropped++
      return false
    }
    this.stats.queued++
    if (!this.busy && !this.timer) {
      this.busy = true
      setImmediate(() => void this.sendHead())
    }
    return true
  }

  /** Delay before retry number `attempt` (1-based): backoff * 2^(attempt-1), capped, 50-100% jitter. */
  backoff(attempt: number): number {
    const base = Math.min(this.target.max_backoff_ms, this.target.backoff_ms * 2 ** Math.min(30, attempt - 1))
    return Math.round(base * (0.5 + Math.random() * 0.5))
  }

  private async sendHead(): Promise<void> {
    this.busy = true
    const body = this.queue.peek()
    if (body === undefined || this.closed) {
      this.busy = false
      this.checkIdle()
      return
    }
    let retry = false
    try {
      const res = await this.fetchImpl(this.target.url, {
        method: 'POST',
        headers: {'content-type': 'application/json', 'user-agent': 'patchpoint-alarms', ...this.target.headers},
        body,
        signal: AbortSignal.timeout(this.target.timeout_ms),
      })
      await res.arrayBuffer().catch(() => undefined) // drain, so the connection is reused
      if (res.ok) this.stats.sent++
      else if (res.status === 408 || res.status === 429 || res.status >= 500) retry = true
      else this.stats.failed++
    } catch {
      retry = true
    }
    if (retry && this.attempts < this.target.retries && !this.closed) {
      this.attempts++
      this.stats.retries++
      this.busy = false
      this.timer = setTimeout(() => {
        this.timer = undefined
        void this.sendHead()
      }, this.backoff(this.attempts))
      this.timer.unref()
      return
    }
    if (retry) this.stats.failed++
    this.queue.shift()
    this.attempts = 0
    if (this.queue.length > 0 && !this.closed) {
      void this.sendHead()
      return
    }
    this.busy = false
    this.checkIdle()
  }

  private checkIdle(): void {
    if (this.queue.length === 0 && !this.busy) {
      const w = this.idleWaiters
      this.idleWaiters = []
      for (const f of w) f()
    }
  }

  async flush(timeoutMs: number): Promise<void> {
    if (this.queue.length === 0 && !this.busy) return
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timeoutMs)
      t.unref()
      this.idleWaiters.push(() => {
        clearTimeout(t)
        resolve()
      })
    })
  }

  async close(timeoutMs = 2000): Promise<void> {
    await this.flush(timeoutMs)
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    this.stats.dropped += this.queue.length
    this.queue.clear()
  }
}
