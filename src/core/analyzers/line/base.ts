/**
 * Shared skeleton of the line-protocol analyzers: one LineSplitter per direction, gap/end
 * handling, STARTTLS stop. Subclasses implement the per-line state machines.
 */
import type {Analyzer, AnalyzerContext, Direction, Pdu} from '../types.js'
import {LineSplitter, type LineEvent, type LineLimits} from './splitter.js'

export abstract class LineAnalyzerBase implements Analyzer {
  readonly protocol: string
  protected readonly cs: LineSplitter
  protected readonly sc: LineSplitter
  /** parsing stopped for good (TLS negotiated) */
  protected tls = false

  constructor(
    protected readonly ctx: AnalyzerContext,
    protocol: string,
    limits: Partial<LineLimits>,
  ) {
    this.protocol = protocol
    this.cs = new LineSplitter(
      {onLine: (ev) => this.clientLine(ev), onBytes: (d, off, done) => this.clientBytes(d, off, done)},
      ctx.anomaly,
      protocol,
      limits,
    )
    this.sc = new LineSplitter(
      {onLine: (ev) => this.serverLine(ev), onBytes: (d, off, done) => this.serverBytes(d, off, done)},
      ctx.anomaly,
      protocol,
      limits,
    )
  }

  data(dir: Direction, chunk: Uint8Array): void {
    if (dir === 'toserver') this.cs.push(chunk)
    else this.sc.push(chunk)
  }

  gap(dir: Direction, length: number): void {
    const sp = dir === 'toserver' ? this.cs : this.sc
    if (sp.isStopped) {
      sp.gap(length)
      return
    }
    const at = sp.offset
    const inBytes = sp.gap(length)
    this.ctx.anomaly({type: 'applayer', event: `${this.protocol}.gap`, detail: {dir, offset: at, length}})
    this.onGap(dir, inBytes)
  }

  end(dir: Direction): void {
    if (dir === 'toserver') this.cs.finish()
    else this.sc.finish()
    this.onEnd(dir)
  }

  pendingFrom(dir: Direction): number {
    const sp = dir === 'toserver' ? this.cs : this.sc
    if (sp.isStopped) return -1
    const unit = this.unitStart(dir)
    if (unit >= 0) return unit
    return sp.pendingStart()
  }

  /** sizes of what this analyzer holds (line buffers, queues, tables): for tests and accounting */
  heldState(): Record<string, number> {
    return {clientLine: this.cs.buffered, serverLine: this.sc.buffered}
  }

  /** STARTTLS / AUTH TLS accepted: the TLS analyzer takes over, this one stops */
  protected startTls(): void {
    this.tls = true
    this.cs.stop()
    this.sc.stop()
  }

  protected emit(kind: string, dir: Direction, start: number, end: number, fields: Pdu['fields']): void {
    this.ctx.emit({protocol: this.protocol, kind, dir, start, end, fields})
  }

  protected abstract clientLine(ev: LineEvent): void
  protected abstract serverLine(ev: LineEvent): void
  protected clientBytes(_d: Uint8Array, _off: number, _done: boolean): void {}
  protected serverBytes(_d: Uint8Array, _off: number, _done: boolean): void {}
  /** a gap was reported; `inBytes`: a byte-count unit goes on without the lost bytes */
  protected onGap(_dir: Direction, _inBytes: boolean): void {}
  protected onEnd(_dir: Direction): void {}
  /** absolute start of a multi-line unit being held (not yet emitted), or -1 */
  protected unitStart(_dir: Direction): number {
    return -1
  }
}
