/**
 * Stateful POP3 analyzer (RFC 1939, RFC 2449 CAPA / PIPELINING / STLS, RFC 5034 AUTH).
 *
 * toserver: one 'command' PDU per line; AUTH continuation lines are 'auth' PDUs. toclient: one
 * 'reply' PDU per status line (emitted at once: the body of a multi-line response is skipped up
 * to its "." line, never held); "+ " challenges are 'continuation' PDUs. STLS + +OK: the TLS analyzer takes over.
 */
import type {AnalyzerContext, Direction, Fields} from '../types.js'
import {LineAnalyzerBase} from '../line/base.js'
import type {LineEvent, LineLimits} from '../line/splitter.js'
import {latin1, matchWordCI, skipSpaces, span, trimEnd, upperAscii, wordEnd} from '../line/text.js'
import {isMultiLine, parseStatus} from './parser.js'

export interface Pop3Limits extends LineLimits {
  /** commands awaiting a reply (pipelining) */
  maxPipeline: number
  /** RFC 2449 section 4: command lines longer than this (255 octets with CRLF) get pop3.command_too_long */
  maxCommandLine: number
}

export const POP3_LIMITS: Readonly<Pop3Limits> = {
  maxLineBytes: 4096,
  maxPipeline: 128,
  maxCommandLine: 253,
}

interface Queued {
  verb: string
  multi: boolean
}

export class Pop3Analyzer extends LineAnalyzerBase {
  private readonly limits: Pop3Limits
  private readonly queue: Queued[] = []
  private greeted = false
  /** inside a multi-line response body */
  private body = false
  private bodyLines = 0
  private inAuth = false
  private authTurn = false

  constructor(ctx: AnalyzerContext, limits: Partial<Pop3Limits> = POP3_LIMITS) {
    const l = limits === POP3_LIMITS ? POP3_LIMITS : {...POP3_LIMITS, ...limits}
    super(ctx, 'pop3', l)
    this.limits = l
  }

  override heldState(): Record<string, number> {
    return {...super.heldState(), queue: this.queue.length}
  }

  protected clientLine(ev: LineEvent): void {
    if (this.inAuth && this.authTurn) {
      const f: Fields = new Map()
      f.set('pop3.auth.data', span(latin1(ev.line), ev.start, ev.line.length))
      f.set('pop3.line.length', {v: ev.length})
      if (ev.line.length === 1 && ev.line[0] === 42) f.set('pop3.auth.cancelled', {v: 1})
      this.authTurn = false
      this.emit('auth', 'toserver', ev.start, ev.end, f)
      return
    }
    const b = ev.line
    const base = ev.start
    const f: Fields = new Map()
    const ve = wordEnd(b, 0)
    const raw = latin1(b, 0, ve)
    const verb = upperAscii(raw)
    const a0 = skipSpaces(b, ve)
    const a1 = trimEnd(b, a0, b.length)
    f.set('pop3.command', {v: verb})
    f.set('pop3.command.raw', span(raw, base, ve))
    if (a1 > a0) f.set('pop3.args', span(latin1(b, a0, a1), base + a0, a1 - a0))
    f.set('pop3.line', span(latin1(b), base, b.length))
    f.set('pop3.line.length', {v: ev.length})
    if (ev.length > this.limits.maxCommandLine) {
      this.ctx.anomaly({type: 'applayer', event: 'pop3.command_too_long', detail: {offset: base, length: ev.length, limit: this.limits.maxCommandLine}})
    }
    switch (verb) {
      case 'USER':
      case 'APOP': {
        const ue = verb === 'APOP' ? wordEnd(b, a0) : a1
        if (ue > a0) f.set('pop3.user', span(latin1(b, a0, ue), base + a0, ue - a0))
        break
      }
      case 'PASS':
        if (a1 > a0) f.set('pop3.pass', span(latin1(b, a0, a1), base + a0, a1 - a0))
        break
      case 'AUTH': {
        const me = wordEnd(b, a0)
        if (me > a0) {
          f.set('pop3.auth.mechanism', span(latin1(b, a0, me), base + a0, me - a0))
          this.inAuth = true
          this.authTurn = false
        }
        const ir = skipSpaces(b, me)
        if (a1 > ir) f.set('pop3.auth.data', span(latin1(b, ir, a1), base + ir, a1 - ir))
        break
      }
      default:
        break
    }
    if (this.queue.length < this.limits.maxPipeline) {
      this.queue.push({verb: verb.length > 8 ? verb.slice(0, 8) : verb, multi: isMultiLine(verb, a1 > a0)})
    } else {
      this.ctx.anomaly({type: 'applayer', event: 'pop3.pipeline_overflow', detail: {limit: this.limits.maxPipeline}})
    }
    this.emit('command', 'toserver', base, ev.end, f)
  }

  protected serverLine(ev: LineEvent): void {
    const b = ev.line
    if (this.body) {
      if (b.length === 1 && b[0] === 46) this.body = false
      else this.bodyLines++
      return
    }
    const base = ev.start
    const st = parseStatus(b)
    const f: Fields = new Map()
    f.set('pop3.line.length', {v: ev.length})
    if (st.kind === 'continue' && this.inAuth) {
      const ts = skipSpaces(b, 1)
      if (b.length > ts) f.set('pop3.continuation.text', span(latin1(b, ts), base + ts, b.length - ts))
      this.authTurn = true
      this.emit('continuation', 'toclient', base, ev.end, f)
      return
    }
    if (st.status === 'error') this.ctx.anomaly({type: 'applayer', event: 'pop3.invalid_reply', detail: {offset: base}})
    if (st.indicatorEnd > 0) f.set('pop3.reply.status', span(latin1(b, 0, st.indicatorEnd), base, st.indicatorEnd))
    const ts = skipSpaces(b, st.indicatorEnd)
    if (b.length > ts) f.set('pop3.reply.text', span(latin1(b, ts), base + ts, b.length - ts))
    let q: Queued | undefined
    if (!this.greeted) {
      this.greeted = true
      f.set('pop3.greeting', {v: 1})
    } else {
      q = this.queue.shift()
      if (q !== undefined) f.set('pop3.reply.command', {v: q.verb})
    }
    if (q !== undefined && q.verb === 'AUTH') {
      this.inAuth = false
      this.authTurn = false
    }
    if (st.kind === 'ok' && q !== undefined && q.multi) {
      this.body = true
      this.bodyLines = 0
      f.set('pop3.reply.multiline', {v: 1})
    }
    this.emit('reply', 'toclient', base, ev.end, f)
    if (q !== undefined && q.verb === 'STLS' && st.kind === 'ok') this.startTls()
  }

  protected override onGap(dir: Direction): void {
    if (dir === 'toserver') this.authTurn = false
  }
}

/** `+OK` greeting (RFC 1939 section 4) */
export function detectPop3(dir: Direction, b: Uint8Array): boolean {
  return dir === 'toclient' && b.length >= 4 && b[0] === 43 && matchWordCI(b, 1, 'OK') && (b[3] === 32 || b[3] === 13)
}
