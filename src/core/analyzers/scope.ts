/**
 * What the analyzers of one engine share across its flows (AnalyzerContext.engine): the engine's
 * packet clock, and objects made once per engine, such as budgets that bound the work of every
 * flow together. A per-flow budget alone does not bound an engine: an attacker opens more flows.
 */
import type {EngineScope} from './types.js'

export class SharedScope implements EngineScope {
  private readonly objects = new Map<string, unknown>()

  constructor(readonly nowUs: () => number) {}

  shared<T>(key: string, make: () => T): T {
    let o = this.objects.get(key) as T | undefined
    if (o === undefined) {
      o = make()
      // keys are analyzer names written in code, not traffic: a handful per engine
      this.objects.set(key, o)
    }
    return o
  }
}

/**
 * A token bucket of bytes in packet time: `perSecond` refill, at most `burst` saved; full at the
 * start. `take` spends when the bucket holds enough, and otherwise spends nothing.
 */
export class ByteBudget {
  private tokens: number
  private lastUs = -1

  constructor(readonly perSecond: number, readonly burst: number) {
    this.tokens = burst
  }

  take(bytes: number, nowUs: number): boolean {
    if (this.lastUs >= 0 && nowUs > this.lastUs) this.tokens = Math.min(this.burst, this.tokens + ((nowUs - this.lastUs) / 1e6) * this.perSecond)
    if (nowUs > this.lastUs) this.lastUs = nowUs
    if (bytes > this.tokens) return false
    this.tokens -= bytes
    return true
  }
}
