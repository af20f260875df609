/**
 * Shared skeleton of the line-protocol analyzers: one LineSplitter per direction, gap/end
 * handling, STARTTLS. Subclasses implement the per-line state machines.
 *
 * Once the server accepts STARTTLS (SMTP, RFC 3207; IMAP and POP3, RFC 2595; FTP AUTH TLS, RFC
 * 4217) the lines stop and a TLS analyzer takes each direction over from the first byte after the
 * exchange, at its stream offsets: its PDUs (protocol `tls`) reach the TLS rules, so Heartbleed
 * through STARTTLS is judged like Heartbleed on port 443.
 */
import {TlsAnalyzer} from '../tls/analyzer.js'
import type {Analyzer, AnalyzerContext, Direction, Pdu} from '../types.js'
import {LineSplitter, type LineEvent, type LineLimits} from './splitter.js'

export abstract class LineAnalyzerBase implements Analyzer {
  readonly protocol: string
  protected readonly cs: LineSplitter
  protected readonly sc: LineSplitter
  /** the TLS layer after STARTTLS */
  private inner: TlsAnalyzer | undefined

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
      this.inner?.gap(dir, length)
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
    this.inner?.end(dir)
    this.onEnd(dir)
  }

  pendingFrom(dir: Direction): number {
    const sp = dir === 'toserver' ? this.cs : this.sc
    if (sp.isStopped) return this.inner?.pendingFrom(dir) ?? -1
    const unit = this.unitStart(dir)
    if (unit >= 0) return unit
    return sp.pendingStart()
  }

  /** sizes of what this analyzer holds (line buffers, queues, tables): for tests and accounting */
  heldState(): Record<string, number> {
    const held: Record<string, number> = {clientLine: this.cs.buffered, serverLine: this.sc.buffered}
    if (this.inner) held.tls = this.inner.stats().buffered
    return held
  }

  /** parsing stopped for good (TLS negotiated) */
  protected get tls(): boolean {
    return this.inner !== undefined
  }

  /** STARTTLS / AUTH TLS accepted: a TLS analyzer takes both directions over, the lines stop */
  protected startTls(): void {
    if (this.inner) return
    const inner = new TlsAnalyzer(this.ctx)
    this.inner = inner
    for (const [dir, sp] of [['toserver', this.cs], ['toclient', this.sc]] as const) {
      // from a held incomplete line (bytes sent before the go-ahead) or the next byte
      const held = sp.pendingStart()
      inner.startAt(dir, held >= 0 ? held : sp.offset)
      sp.stop((data) => inner.data(dir, data))
    }
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
