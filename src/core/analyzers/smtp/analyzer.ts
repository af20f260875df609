/**
 * Stateful SMTP analyzer (RFC 5321, RFC 2920 pipelining, RFC 3030 BDAT, RFC 4954 AUTH,
 * RFC 3207 STARTTLS).
 *
 * toserver: one 'command' PDU per command line; AUTH continuation lines are 'auth' PDUs; after
 * DATA the message's header section is one 'message' PDU (held until the blank line, capped) and
 * the final "." gives a 'data_end' PDU carrying the message length. BDAT chunks (RFC 3030) are
 * taken by byte count; the header section they carry is read line by line across chunks and
 * judged as 'message' PDUs, one per chunk that completed header lines (a client waits for each
 * chunk's reply, so a chunk cannot be held for the next). toclient: one 'reply' PDU per
 * (multi-line) reply. Replies are matched to commands through a bounded FIFO (pipelining). After STARTTLS + 220 the lines stop and the TLS analyzer reads both directions (line/base.ts).
 */
import type {AnalyzerContext, Direction, FieldValue, Fields} from '../types.js'
import {LineAnalyzerBase} from '../line/base.js'
import {ReplyCollector, type ReplyLimits} from '../line/reply.js'
import {LineSplitter, type LineEvent, type LineLimits} from '../line/splitter.js'
import {addMulti, allDigits, base64DecodeLatin1, base64Valid, decimalBig, latin1, matchWordCI, span, upperAscii} from '../line/text.js'
import {parseBdat, parseHeaderLine, parsePath, splitCommand} from './parser.js'
import {SMTP_FIELDS} from './fields.js'
import {fieldWants, type Wants} from '../wants.js'

/** the reply fields some loaded rule reads (smtp.reply.code and .command always: protections read them) */
const smtpWants = fieldWants(SMTP_FIELDS)

export interface SmtpLimits extends LineLimits, ReplyLimits {
  /** commands awaiting a reply (pipelining) */
  maxPipeline: number
  /** header-section bytes held for one message */
  maxHeaderBytes: number
  /** header fields kept for one message */
  maxHeaders: number
  /** bytes kept of one header value (folded lines included) */
  maxHeaderValueBytes: number
  /** bytes of decoded AUTH data exposed */
  maxAuthDecoded: number
  /** RFC 5321 section 4.5.3.1.4 command line limit (512 with CRLF): longer ones get smtp.command_too_long */
  maxCommandLine: number
}

export const SMTP_LIMITS: Readonly<SmtpLimits> = {
  maxLineBytes: 4096,
  maxReplyLines: 256,
  maxPipeline: 128,
  maxHeaderBytes: 64 * 1024,
  maxHeaders: 256,
  maxHeaderValueBytes: 16 * 1024,
  maxAuthDecoded: 1024,
  maxCommandLine: 510,
}

type ClientState = 'command' | 'data' | 'auth'

interface HeaderAcc {
  name: string
  /** absolute offset of the field's first byte, of its value */
  off: number
  valueOff: number
  raw: string
  value: string
  full: boolean
  /** BDAT: the field's bytes are not one run of the stream (a chunk boundary cuts them): no span */
  split?: boolean
}

/** the DATA terminator line, ".\r\n" */
const DOT_LINE = [46, 13, 10] as const

export class SmtpAnalyzer extends LineAnalyzerBase {
  private readonly limits: SmtpLimits
  private readonly reply: ReplyCollector
  private state: ClientState = 'command'
  /** verbs awaiting replies, oldest first */
  private readonly queue: string[] = []
  private greeted = false
  /** AUTH: the server's last reply was 334, the next client line is a response */
  private authTurn = false
  /**
   * AUTH without an initial response was sent and the server has not answered yet: the next
   * client line, sent ahead of the 334, is what the server reads as the first response if it
   * does answer 334 (it is already in its input buffer)
   */
  private authAhead = false
  // DATA
  private dataStart = -1
  private dataLines = 0
  private dataBytes = 0
  private inHeaders = false
  private headerBytes = 0
  private headerCount = 0
  private headers: HeaderAcc[] = []
  private cur: HeaderAcc | null = null
  /** end of the part delivered of an overlong header line (the splitter skips the rest), or -1 */
  private skipFrom = -1
  private bdatLast = false
  /** a BDAT message whose header section is still being read (its chunks' lines, not the stream's) */
  private bdatHeaders = false
  /** a BDAT message past its header section: only its LAST chunk matters */
  private bdatBody = false
  /** the lines of a BDAT message's chunks, and the stream offset of the current chunk's first byte */
  private bdatLines: LineSplitter | null = null
  private bdatChunkStart = 0
  private mailFrom: FieldValue | null = null
  private rcpts: FieldValue[] = []
  /** the fields of replies (toclient) some loaded rule reads */
  private readonly replyWant: Wants<string>

  constructor(ctx: AnalyzerContext, limits: Partial<SmtpLimits> = {}) {
    const l = {...SMTP_LIMITS, ...limits}
    super(ctx, 'smtp', l)
    this.limits = l
    this.reply = new ReplyCollector('strict', l)
    this.replyWant = smtpWants(ctx.reads).toclient
    this.reply.keepText = this.replyWant['smtp.reply.text']
  }

  /**
   * In a message body no line is a unit of its own: only an incomplete line that may still become
   * the "." terminator (its line completes the data_end unit) is pending. Any other body bytes
   * can go on at once; holding each segment's partial last line until the next segment arrived
   * made an inline gateway hold nearly every segment of a mail.
   */
  override pendingFrom(dir: Direction): number {
    const p = super.pendingFrom(dir)
    if (p >= 0 && dir === 'toserver' && this.state === 'data' && !this.inHeaders && !this.cs.heldIsPrefixOf(DOT_LINE)) return -1
    return p
  }

  protected override unitStart(dir: Direction): number {
    if (dir === 'toclient') return this.reply.holding ? this.reply.start : -1
    if (this.bdatHeaders) return this.inHeaders && this.cs.inBytes ? this.dataStart : -1
    return this.state === 'data' && this.inHeaders ? this.dataStart : -1
  }

  override heldState(): Record<string, number> {
    return {
      ...super.heldState(),
      queue: this.queue.length,
      replyLines: this.reply.texts.length,
      headers: this.headers.length,
      bdatLine: this.bdatLines?.buffered ?? 0,
      headerBytes: this.inHeaders ? this.headerBytes : 0,
      rcpts: this.rcpts.length,
    }
  }

  // ---- client -------------------------------------------------------------------------------

  protected clientLine(ev: LineEvent): void {
    if (this.state === 'data') {
      this.dataLine(ev)
      return
    }
    if (this.state === 'auth' && this.authTurn) {
      this.authLine(ev)
      return
    }
    this.command(ev)
  }

  private command(ev: LineEvent): void {
    const b = ev.line
    const base = ev.start
    const f: Fields = new Map()
    const sc = splitCommand(b)
    const raw = latin1(b, 0, sc.verbEnd)
    const verb = upperAscii(raw)
    f.set('smtp.command', {v: verb})
    f.set('smtp.command.raw', span(raw, base, sc.verbEnd))
    if (sc.argsEnd > sc.argsStart) f.set('smtp.args', span(latin1(b, sc.argsStart, sc.argsEnd), base + sc.argsStart, sc.argsEnd - sc.argsStart))
    f.set('smtp.line', span(latin1(b), base, b.length))
    f.set('smtp.line.length', {v: ev.length})
    if (sc.status === 'error') this.ctx.anomaly({type: 'applayer', event: 'smtp.empty_command', detail: {offset: base}})
    if (ev.length > this.limits.maxCommandLine) {
      this.ctx.anomaly({type: 'applayer', event: 'smtp.command_too_long', detail: {offset: base, length: ev.length, limit: this.limits.maxCommandLine}})
    }
    // a line pipelined right after AUTH (no initial response) is judged as SASL data too: it is the
    // server's first response if the server answers 334, a command if it refuses the AUTH
    if (this.authAhead) {
      this.authAhead = false
      if (this.state === 'auth' && !this.authTurn) this.authData(f, b, 0, b.length, base)
    }
    if (this.queue.includes('STARTTLS')) {
      this.ctx.anomaly({type: 'applayer', event: 'smtp.starttls_pipelined', detail: {offset: base}})
    }
    const a0 = sc.argsStart
    const a1 = sc.argsEnd
    let after: 'data' | 'auth' | 'bdat' | null = null
    let bdatSize = 0
    switch (verb) {
      case 'MAIL':
      case 'RCPT': {
        const kw = verb === 'MAIL' ? 'FROM:' : 'TO:'
        if (!matchWordCI(b, a0, kw)) {
          this.ctx.anomaly({type: 'applayer', event: 'smtp.invalid_path', detail: {offset: base, command: verb}})
          break
        }
        const p = parsePath(b, a0 + kw.length, a1)
        if (p.status !== 'ok') this.ctx.anomaly({type: 'applayer', event: 'smtp.invalid_path', detail: {offset: base, command: verb}})
        if (p.status === 'error') break
        const name = verb === 'MAIL' ? 'smtp.mail_from' : 'smtp.rcpt_to'
        const addr = span(latin1(b, p.addrStart, p.addrEnd), base + p.addrStart, p.addrEnd - p.addrStart)
        f.set(name, addr)
        if (p.paramsEnd > p.paramsStart) f.set(`${name}.params`, span(latin1(b, p.paramsStart, p.paramsEnd), base + p.paramsStart, p.paramsEnd - p.paramsStart))
        if (verb === 'MAIL') {
          this.mailFrom = {v: addr.v}
          this.rcpts = []
          this.bdatHeaders = false
        } else if (this.rcpts.length < this.limits.maxPipeline) {
          this.rcpts.push({v: addr.v})
        }
        break
      }
      case 'EHLO':
      case 'HELO':
      case 'LHLO':
        if (a1 > a0) f.set('smtp.helo', span(latin1(b, a0, a1), base + a0, a1 - a0))
        break
      case 'VRFY':
      case 'EXPN':
        if (a1 > a0) f.set(verb === 'VRFY' ? 'smtp.vrfy' : 'smtp.expn', span(latin1(b, a0, a1), base + a0, a1 - a0))
        break
      case 'AUTH': {
        let me = a0
        while (me < a1 && b[me] !== 32 && b[me] !== 9) me++
        if (me > a0) f.set('smtp.auth.mechanism', span(latin1(b, a0, me), base + a0, me - a0))
        let ir = me
        while (ir < a1 && (b[ir] === 32 || b[ir] === 9)) ir++
        if (ir < a1) this.authData(f, b, ir, a1, base)
        after = 'auth'
        this.authAhead = ir >= a1
        break
      }
      case 'DATA':
        after = 'data'
        break
      case 'BDAT': {
        const p = parseBdat(b, a0, a1)
        if (p.status !== 'ok') {
          this.ctx.anomaly({type: 'applayer', event: 'smtp.bdat_invalid', detail: {offset: base}})
          break
        }
        const size = decimalBig(b, p.sizeStart, p.sizeEnd)
        f.set('smtp.bdat.size', span(size, base + p.sizeStart, p.sizeEnd - p.sizeStart))
        f.set('smtp.bdat.last', {v: p.last ? 1 : 0})
        if (size > BigInt(Number.MAX_SAFE_INTEGER)) {
          this.ctx.anomaly({type: 'applayer', event: 'smtp.bdat_size_overflow', detail: {offset: base}})
          bdatSize = Infinity
        } else {
          bdatSize = Number(size)
        }
        this.bdatLast = p.last
        after = 'bdat'
        if (!this.bdatHeaders && !this.bdatBody) this.beginBdat()
        break
      }
      default:
        break
    }
    this.push(verb)
    this.emit('command', 'toserver', base, ev.end, f)
    if (after === 'data') this.beginData(ev.end)
    else if (after === 'auth') {
      this.state = 'auth'
      this.authTurn = false
    } else if (after === 'bdat' && bdatSize > 0) {
      this.cs.expectBytes(bdatSize)
    } else if (after === 'bdat' && this.bdatLast) {
      this.endBdat(ev.end)
    }
  }

  private push(verb: string): void {
    if (this.queue.length >= this.limits.maxPipeline) {
      this.ctx.anomaly({type: 'applayer', event: 'smtp.pipeline_overflow', detail: {limit: this.limits.maxPipeline}})
      return
    }
    this.queue.push(verb.length > 16 ? verb.slice(0, 16) : verb)
  }

  /** base64 SASL data [from, to) of line b (RFC 4954 section 4) */
  private authData(f: Fields, b: Uint8Array, from: number, to: number, base: number): void {
    const len = to - from
    f.set('smtp.auth.data', span(latin1(b, from, to), base + from, len))
    f.set('smtp.auth.data.length', {v: len})
    if (len === 1 && b[from] === 42) {
      f.set('smtp.auth.cancelled', {v: 1})
      return
    }
    if (len === 1 && b[from] === 61) return // "=": empty initial response
    const ok = base64Valid(b, from, to)
    f.set('smtp.auth.base64_invalid', {v: ok ? 0 : 1})
    if (!ok) this.ctx.anomaly({type: 'applayer', event: 'smtp.auth_base64_invalid', detail: {offset: base + from, length: len, mod4: len % 4}})
    f.set('smtp.auth.decoded', {v: base64DecodeLatin1(b, from, to, this.limits.maxAuthDecoded)})
  }

  private authLine(ev: LineEvent): void {
    const f: Fields = new Map()
    const b = ev.line
    f.set('smtp.line.length', {v: ev.length})
    this.authData(f, b, 0, b.length, ev.start)
    this.authTurn = false
    this.emit('auth', 'toserver', ev.start, ev.end, f)
  }

  // ---- DATA ---------------------------------------------------------------------------------

  private beginData(at: number): void {
    this.state = 'data'
    this.dataStart = at
    this.dataLines = 0
    this.dataBytes = 0
    this.inHeaders = true
    this.headerBytes = 0
    this.headerCount = 0
    this.headers = []
    this.cur = null
    this.skipFrom = -1
  }

  private dataLine(ev: LineEvent): void {
    const b = ev.line
    if (b.length === 1 && b[0] === 46 && !ev.tooLong) {
      if (this.inHeaders) {
        this.countSkipped(ev.start)
        this.emitMessage(ev.start, false)
      }
      const f: Fields = new Map()
      f.set('smtp.data.length', {v: this.dataBytes})
      f.set('smtp.data.header_bytes', {v: this.headerBytes})
      f.set('smtp.data.lines', {v: this.dataLines})
      this.emit('data_end', 'toserver', ev.start, ev.end, f)
      this.state = 'command'
      this.push('.')
      return
    }
    this.dataLines++
    this.dataBytes += ev.end - ev.start
    if (this.inHeaders) this.headerLine(ev)
  }

  /** one line of a message's header section (DATA lines, or BDAT chunk content split into lines) */
  private headerLine(ev: LineEvent): void {
    const b = ev.line
    const split = this.bdatHeaders && ev.start < this.bdatChunkStart
    const h = parseHeaderLine(b)
    this.countSkipped(ev.start)
    if (h.type === 'end' || h.status === 'error') {
      if (h.status === 'error') this.ctx.anomaly({type: 'applayer', event: 'smtp.data.malformed_header', detail: {offset: ev.start}})
      this.headerBytes += ev.end - ev.start
      this.emitMessage(ev.end, false)
      return
    }
    this.headerBytes += ev.end - ev.start
    if (ev.tooLong) this.skipFrom = ev.end
    const eol = ev.bareLf ? '\n' : '\r\n'
    if (h.type === 'continuation') {
      const c = this.cur
      if (c === null) {
        this.ctx.anomaly({type: 'applayer', event: 'smtp.data.malformed_header', detail: {offset: ev.start}})
      } else if (!c.full) {
        const add = eol + latin1(b)
        const room = this.limits.maxHeaderValueBytes - c.value.length
        if (add.length > room) {
          c.full = true
          this.ctx.anomaly({type: 'applayer', event: 'smtp.data.header_value_too_long', detail: {offset: c.off}})
        }
        const piece = add.length > room ? add.slice(0, Math.max(0, room)) : add
        c.value += piece
        c.raw += piece
        if (split) c.split = true
      }
    } else {
      this.headerCount++
      if (this.headers.length < this.limits.maxHeaders) {
        let v = latin1(b, h.valueStart)
        const full = v.length > this.limits.maxHeaderValueBytes
        if (full) v = v.slice(0, this.limits.maxHeaderValueBytes)
        const acc: HeaderAcc = {
          name: latin1(b, 0, h.nameEnd).toLowerCase(),
          off: ev.start,
          valueOff: ev.start + h.valueStart,
          raw: latin1(b, 0, h.valueStart) + v,
          value: v,
          full: full || ev.tooLong,
          split,
        }
        this.headers.push(acc)
        this.cur = acc
      } else {
        this.cur = null
        if (this.headerCount === this.limits.maxHeaders + 1) {
          this.ctx.anomaly({type: 'applayer', event: 'smtp.data.too_many_headers', detail: {limit: this.limits.maxHeaders}})
        }
      }
    }
    if (this.headerBytes > this.limits.maxHeaderBytes) {
      this.ctx.anomaly({type: 'applayer', event: 'smtp.data.headers_too_long', detail: {offset: this.dataStart, limit: this.limits.maxHeaderBytes}})
      this.emitMessage(ev.end, true)
    }
  }

  /**
   * The bytes of an overlong header line past the line cap are skipped by the splitter, not
   * delivered: count them in the header section's size (Exim logs the whole line) once the next
   * line shows where that line ended. (BDAT: a chunk boundary inside the skipped bytes adds the
   * BDAT command line too: a few bytes more on an already overlong line.)
   */
  private countSkipped(nextStart: number): void {
    if (this.skipFrom < 0) return
    if (nextStart > this.skipFrom) this.headerBytes += nextStart - this.skipFrom
    this.skipFrom = -1
  }

  /** `more`: a BDAT chunk ended inside the header section: judge what there is, keep reading */
  private emitMessage(end: number, truncated: boolean, more = false): void {
    const f: Fields = new Map()
    for (const h of this.headers) {
      addMulti(f, 'smtp.data.headers', h.split ? {v: h.raw} : span(h.raw, h.off, h.raw.length))
      addMulti(f, `smtp.data.header.${h.name}`, h.split ? {v: h.value} : span(h.value, h.valueOff, h.value.length))
    }
    f.set('smtp.data.header_count', {v: this.headerCount})
    f.set('smtp.data.header_bytes', {v: this.headerBytes})
    if (truncated) f.set('smtp.data.truncated', {v: 1})
    if (this.mailFrom !== null) f.set('smtp.mail_from', {v: this.mailFrom.v})
    if (this.rcpts.length > 0) f.set('smtp.rcpt_to', this.rcpts.slice())
    if (more) f.set('smtp.data.partial', {v: 1})
    else {
      this.inHeaders = false
      this.headers = []
      this.cur = null
    }
    this.emit('message', 'toserver', this.dataStart, end, f)
  }

  // ---- BDAT -------------------------------------------------------------------------------

  /** first BDAT chunk of a message: its header section is read from the chunks */
  private beginBdat(): void {
    this.bdatBody = false
    this.bdatHeaders = true
    this.dataStart = -1
    this.inHeaders = true
    this.headerBytes = 0
    this.headerCount = 0
    this.headers = []
    this.cur = null
    this.skipFrom = -1
    this.bdatLines = new LineSplitter({onLine: (ev) => this.inHeaders && this.headerLine(ev), onBytes: () => {}}, this.ctx.anomaly, 'smtp', this.limits)
  }

  protected override clientBytes(d: Uint8Array, off: number, done: boolean): void {
    if (this.bdatHeaders && this.inHeaders) {
      const lines = this.bdatLines!
      if (this.dataStart < 0) this.dataStart = off
      if (lines.offset !== off) this.bdatChunkStart = off
      lines.offset = off
      lines.push(d)
      if (this.inHeaders && done) {
        // the client waits for this chunk's reply: judge the header lines completed so far and
        // go on from the chunk's end (a header line cut by the chunk end is judged with the next)
        if (this.bdatLast) {
          lines.finish()
          if (this.inHeaders) this.emitMessage(off + d.length, false)
        } else if (this.headers.length > 0) {
          this.emitMessage(off + d.length, false, true)
          this.dataStart = -1
        }
      }
      if (!this.inHeaders) {
        this.bdatHeaders = false
        this.bdatBody = true
      }
    }
    if (done && this.bdatLast) this.endBdat(off + d.length)
  }

  /** the LAST chunk went through: the next BDAT starts a new message */
  private endBdat(end: number): void {
    if (this.bdatHeaders && this.inHeaders) this.emitMessage(end, true)
    this.bdatLast = false
    this.bdatHeaders = false
    this.bdatBody = false
    this.inHeaders = false
  }

  // ---- server -------------------------------------------------------------------------------

  protected serverLine(ev: LineEvent): void {
    const r = this.reply
    const step = r.feed(ev)
    if (step === 'more' || step === 'skipped') return
    const f: Fields = new Map()
    const w = this.replyWant
    if (r.code >= 0) f.set('smtp.reply.code', span(r.code, r.codeOff, 3))
    if (w['smtp.reply.text']) f.set('smtp.reply.text', r.texts)
    if (w['smtp.reply.line_count']) f.set('smtp.reply.line_count', {v: r.lineCount})
    if (r.truncated && w['smtp.reply.truncated']) f.set('smtp.reply.truncated', {v: 1})
    if (r.malformed) this.ctx.anomaly({type: 'applayer', event: 'smtp.invalid_reply', detail: {offset: r.start}})
    const code = r.code
    const start = r.start
    const end = r.end
    if (step === 'overflow') {
      this.ctx.anomaly({type: 'applayer', event: 'smtp.reply_too_long', detail: {offset: start}})
      r.releaseOverflow()
    } else {
      r.reset()
    }
    let cmd: string | undefined
    if (!this.greeted) {
      this.greeted = true
      if (w['smtp.greeting']) f.set('smtp.greeting', {v: 1})
    } else {
      cmd = this.queue[0]
      if (cmd === 'AUTH') this.authAhead = false
      if (cmd === 'AUTH' && code === 334) {
        this.authTurn = this.state === 'auth'
      } else {
        this.queue.shift()
      }
      if (cmd !== undefined) f.set('smtp.reply.command', {v: cmd})
    }
    this.emit('reply', 'toclient', start, end, f)
    if (cmd === 'AUTH' && code !== 334 && this.state === 'auth') {
      this.state = 'command'
      this.authTurn = false
    } else if (cmd === 'DATA' && code !== 354 && this.state === 'data' && this.dataLines === 0) {
      this.state = 'command'
      this.inHeaders = false
    } else if (cmd === 'STARTTLS' && code === 220) {
      this.startTls()
    }
  }

  // ---- gaps and end -------------------------------------------------------------------------

  protected override onGap(dir: Direction, inBytes: boolean): void {
    if (dir === 'toclient') {
      this.reply.reset()
      return
    }
    if (inBytes) return
    if (this.state === 'data' && this.inHeaders) this.emitMessage(this.cs.offset, true)
    if (this.state === 'auth') this.authTurn = false
  }

  protected override onEnd(dir: Direction): void {
    if (dir === 'toserver') {
      if (this.state === 'data' && this.inHeaders && !this.tls) this.emitMessage(this.cs.offset, true)
      return
    }
    if (this.reply.holding) {
      const r = this.reply
      const f: Fields = new Map()
      const w = this.replyWant
      if (r.code >= 0) f.set('smtp.reply.code', span(r.code, r.codeOff, 3))
      if (w['smtp.reply.text']) f.set('smtp.reply.text', r.texts)
      if (w['smtp.reply.line_count']) f.set('smtp.reply.line_count', {v: r.lineCount})
      if (w['smtp.reply.truncated']) f.set('smtp.reply.truncated', {v: 1})
      this.ctx.anomaly({type: 'applayer', event: 'smtp.reply_unterminated', detail: {offset: r.start}})
      this.emit('reply', 'toclient', r.start, r.end, f)
      r.reset()
    }
  }
}

/** `220 ` / `220-` greeting from an SMTP server, or EHLO/HELO from the client (RFC 5321 section 4.3.1) */
export function detectSmtp(dir: Direction, b: Uint8Array): boolean {
  if (dir === 'toserver') {
    return (matchWordCI(b, 0, 'EHLO') || matchWordCI(b, 0, 'HELO') || matchWordCI(b, 0, 'LHLO')) && (b.length === 4 || b[4] === 32 || b[4] === 13)
  }
  if (b.length < 4 || !allDigits(b, 0, 3) || b[0] !== 50 || b[1] !== 50 || b[2] !== 48 || (b[3] !== 32 && b[3] !== 45)) return false
  // FTP greets with 220 too: require a mail word in what we have of the banner
  const n = Math.min(b.length, 64)
  for (let i = 4; i + 4 <= n; i++) {
    if (matchWordCI(b, i, 'SMTP') || matchWordCI(b, i, 'MAIL') || matchWordCI(b, i, 'EXIM') || matchWordCI(b, i, 'POSTFIX') || matchWordCI(b, i, 'SENDMAIL')) return true
  }
  return false
}
