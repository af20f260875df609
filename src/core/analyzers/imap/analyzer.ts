/**
 * Stateful IMAP analyzer (RFC 9051 / RFC 3501, RFC 7888 LITERAL+, RFC 4959 SASL-IR).
 *
 * toserver: one 'command' PDU per tagged command, literals included (the command is held, up to
 * maxCommandBytes, until its last line); AUTHENTICATE continuation lines are 'auth' PDUs.
 *
 * Synchronising literals (RFC 9051 section 4.3, RFC 3501 section 7.5): a line that ends with
 * `{n}` makes the client wait for the server's `+` before sending the literal, so the command
 * cannot be held whole (the gateway would hold the line the server must answer: deadlock). Such a
 * command is judged in parts, each a 'command' PDU over the bytes not judged yet:
 *
 *   a APPEND INBOX {310}\r\n   <- part 1 (imap.part 1, imap.partial 1): judged before the server
 *                                  sees the line; pendingFrom() then returns -1 until more bytes
 *   <310 literal bytes> ...\r\n <- part 2: the literal and the rest of the command, up to the next
 *                                  line ending in `{n}` or the end of the command (last part:
 *                                  imap.part without imap.partial)
 *
 * Every part carries imap.command / imap.subcommand (context, so a rule can qualify the new
 * fields) and only the fields whose bytes it adds: imap.tag, imap.args, imap.line.length and the
 * FETCH / AUTHENTICATE fields in part 1; each imap.literal.size / imap.literal in the part that
 * holds it; imap.login.* in the part where the value ends; imap.command.length in the last part.
 * So a rule on any of those never matches the same bytes twice. A rule on imap.command alone
 * matches every part: AND it with `not` a selection `imap.part gt 1` to judge each command once.
 * LITERAL+ `{n+}` does not wait for the server: no part, the command is held whole. The literal
 * and the rest stay held until the command ends (bounded by maxCommandBytes): a literal larger
 * than the client's TCP window still waits for the gateway's hold timeout.
 * toclient: one 'response' / 'continuation' PDU per response line; literals inside responses
 * (FETCH bodies) are skipped by count, never held. STARTTLS + tagged OK: the lines stop, the TLS analyzer reads both directions.
 */
import type {AnalyzerContext, Direction, FieldValue, Fields} from '../types.js'
import {LineAnalyzerBase} from '../line/base.js'
import type {LineEvent, LineLimits} from '../line/splitter.js'
import {latin1, matchWordCI, skipSpaces, span, upperAscii, wordEnd} from '../line/text.js'
import {parseAstring, parseTrailingLiteral} from './parser.js'
import {IMAP_FIELDS} from './fields.js'
import {fieldWants, type Wants} from '../wants.js'

/** the response fields some loaded rule reads (imap.response.status and .command always: protections read them) */
const imapWants = fieldWants(IMAP_FIELDS)

export interface ImapLimits extends LineLimits {
  /** bytes of one command (lines, CRLFs and literals) held until it completes */
  maxCommandBytes: number
  /** literals larger than this are not followed (the size is reported, framing resumes on lines) */
  maxLiteralSize: number
  /** literals in one command */
  maxLiterals: number
  /** tagged commands awaiting completion */
  maxPending: number
}

export const IMAP_LIMITS: Readonly<ImapLimits> = {
  maxLineBytes: 8192,
  maxCommandBytes: 64 * 1024,
  maxLiteralSize: 64 * 1024 * 1024,
  maxLiterals: 64,
  maxPending: 64,
}

/** the command buffer before the first byte is held */
const NO_BYTES = new Uint8Array(0)
/** first allocation of the command buffer (it doubles up to maxCommandBytes) */
const IMAP_FIRST_COMMAND_BYTES = 1024

const STATUS = new Set(['OK', 'NO', 'BAD', 'BYE', 'PREAUTH'])

export class ImapAnalyzer extends LineAnalyzerBase {
  private readonly limits: ImapLimits
  // command being assembled
  private buf: Uint8Array | null = null
  private len = 0
  private open = false
  private cmdStart = -1
  private firstLineLen = 0
  private firstLineLength = 0
  private literalSizes: FieldValue[] = []
  private literals: FieldValue[] = []
  private literalCount = 0
  private total = 0
  private truncated = false
  /** the command was already emitted (cap): swallow the rest of it */
  private swallowing = false
  private cmdTag = ''
  /** a synchronising literal was announced and has not started */
  private awaitingPlus = false
  // judging in parts (synchronising literals): bytes before judgedTo were emitted in a part
  private judgedTo = 0
  private parts = 0
  /** literals whose bytes were all seen (bounded by maxLiterals like the announcements) */
  private literalsDone = 0
  private countSent = 0
  private truncatedSent = false
  private curLiteralOff = -1
  private curLiteralHeld = 0
  // pending tagged commands: tag -> verb
  private readonly pending = new Map<string, string>()
  private authTag: string | null = null
  private authTurn = false
  /** AUTHENTICATE sent and no '+' yet: a line pipelined now is read by the server as the first SASL response */
  private authEarly = false
  // server
  private respCont = false
  /** the fields of server lines (toclient) some loaded rule reads */
  private readonly respWant: Wants<string>

  constructor(ctx: AnalyzerContext, limits: Partial<ImapLimits> = IMAP_LIMITS) {
    const l = limits === IMAP_LIMITS ? IMAP_LIMITS : {...IMAP_LIMITS, ...limits}
    super(ctx, 'imap', l)
    this.limits = l
    this.respWant = imapWants(ctx.reads).toclient
  }

  /** start of the command's bytes not judged yet, when there are any (see the header: parts) */
  protected override unitStart(dir: Direction): number {
    return dir === 'toserver' && this.open && !this.swallowing && this.cs.offset > this.judgedTo ? this.judgedTo : -1
  }

  override heldState(): Record<string, number> {
    return {...super.heldState(), command: this.len, pending: this.pending.size, literals: this.literals.length + this.literalSizes.length}
  }

  private hold(src: Uint8Array): number {
    const room = this.limits.maxCommandBytes - this.len
    const n = Math.min(room, src.length)
    if (n > 0) {
      const need = this.len + n
      if (this.buf === null || this.buf.length < need) this.grow(need)
      this.buf!.set(src.subarray(0, n), this.len)
      this.len += n
    }
    if (n < src.length) this.truncated = true
    return n
  }

  /**
   * Room for `need` bytes of the command: the buffer starts at IMAP_FIRST_COMMAND_BYTES and
   * doubles, never past maxCommandBytes (it used to be the whole maxCommandBytes, 64 KB
   * zero-filled, at every flow's first command).
   */
  private grow(need: number): void {
    const max = this.limits.maxCommandBytes
    let size = Math.max(this.buf === null ? IMAP_FIRST_COMMAND_BYTES : this.buf.length * 2, 1)
    while (size < need) size *= 2
    const nb = new Uint8Array(Math.min(size, max))
    if (this.buf !== null && this.len > 0) nb.set(this.buf.subarray(0, this.len))
    this.buf = nb
  }

  private static readonly CRLF = Uint8Array.of(13, 10)
  private static readonly LF = Uint8Array.of(10)

  // ---- client -------------------------------------------------------------------------------

  protected clientLine(ev: LineEvent): void {
    if (!this.open && this.authTag !== null && this.authTurn) {
      this.authLine(ev)
      return
    }
    if (!this.open && this.authTag !== null && this.authEarly) {
      // pipelined ahead of the '+': a server that accepts the mechanism reads this line from its
      // input buffer as the first response, so it is judged as SASL data; it is also parsed as
      // a command below (a server that refuses the AUTHENTICATE reads it as one)
      this.authEarly = false
      this.authLine(ev)
    }
    const b = ev.line
    if (!this.open) {
      this.open = true
      this.swallowing = false
      this.cmdStart = ev.start
      this.len = 0
      this.total = 0
      this.truncated = false
      this.literalSizes = []
      this.literals = []
      this.literalCount = 0
      this.judgedTo = ev.start
      this.parts = 0
      this.literalsDone = 0
      this.countSent = 0
      this.truncatedSent = false
      this.firstLineLen = b.length
      this.firstLineLength = ev.length
      const te = wordEnd(b, 0)
      this.cmdTag = latin1(b, 0, Math.min(te, 64))
    }
    this.total += ev.end - ev.start
    if (!this.swallowing) {
      this.hold(b)
      if (ev.tooLong) this.truncated = true
      else if (!ev.unterminated) this.hold(ev.bareLf ? ImapAnalyzer.LF : ImapAnalyzer.CRLF)
    }
    const lit = ev.tooLong ? null : parseTrailingLiteral(b)
    if (lit === null || lit.none) {
      this.finishCommand(ev.end)
      return
    }
    if (lit.status === 'error') {
      this.ctx.anomaly({type: 'applayer', event: 'imap.literal_invalid', detail: {offset: ev.start + lit.digitsStart}})
      this.finishCommand(ev.end)
      return
    }
    this.literalCount++
    if (this.literalCount <= this.limits.maxLiterals) {
      this.literalSizes.push(span(lit.size, ev.start + lit.digitsStart, lit.digitsEnd - lit.digitsStart))
    } else if (this.literalCount === this.limits.maxLiterals + 1) {
      this.ctx.anomaly({type: 'applayer', event: 'imap.too_many_literals', detail: {offset: this.cmdStart, limit: this.limits.maxLiterals}})
    }
    if (lit.size > BigInt(this.limits.maxLiteralSize)) {
      this.ctx.anomaly({type: 'applayer', event: 'imap.literal_size_overflow', detail: {offset: ev.start + lit.digitsStart, limit: this.limits.maxLiteralSize}})
      this.finishCommand(ev.end)
      return
    }
    const size = Number(lit.size)
    this.awaitingPlus = !lit.nonSync
    if (this.truncated && !this.swallowing) this.emitEarly()
    // the client waits for '+' before the literal: judge the command so far now
    else if (!lit.nonSync && !this.swallowing) this.emitCommand(ev.end, false)
    if (size === 0) return
    this.curLiteralOff = ev.end
    this.curLiteralHeld = 0
    this.cs.expectBytes(size)
  }

  protected override clientBytes(d: Uint8Array, _off: number, done: boolean): void {
    if (!this.open) return
    this.awaitingPlus = false
    this.total += d.length
    if (!this.swallowing) {
      const kept = this.hold(d)
      this.curLiteralHeld += kept
      if (done && this.literalsDone < this.limits.maxLiterals) {
        this.literalsDone++
        const at = this.curLiteralOff - this.cmdStart
        const held = Math.min(this.curLiteralHeld, Math.max(0, this.len - at))
        this.literals.push(span(latin1(this.buf!, at, at + held), this.curLiteralOff, held))
      }
      if (this.truncated && !done) this.emitEarly()
    }
  }

  /** the cap is reached inside the command: judge what is held, swallow the rest of it */
  private emitEarly(): void {
    this.ctx.anomaly({type: 'applayer', event: 'imap.command_too_long', detail: {offset: this.cmdStart, limit: this.limits.maxCommandBytes}})
    this.emitCommand(Math.max(this.cmdStart + this.len, this.judgedTo))
    this.swallowing = true
  }

  private finishCommand(end: number): void {
    // a command judged in parts whose last part adds no byte (refused literal, end, gap) is done
    if (!this.swallowing && (this.parts === 0 || end > this.judgedTo)) this.emitCommand(end)
    this.open = false
    this.swallowing = false
    this.awaitingPlus = false
    this.len = 0
  }

  /**
   * Emit the command's bytes from judgedTo to `end`: the whole command, or one part of a command
   * judged in parts (`last` false: more parts follow). See the header for which fields a part
   * carries.
   */
  private emitCommand(end: number, last = true): void {
    const b = this.buf ?? NO_BYTES
    const base = this.cmdStart
    const from = this.judgedTo
    const first = this.parts === 0
    const split = !first || !last
    const n = this.len
    const line1 = Math.min(this.firstLineLen, n)
    const f: Fields = new Map()
    // the first line, one view for every scan below
    const head = b.subarray(0, line1)
    const te = wordEnd(head, 0)
    const cs = skipSpaces(head, te)
    const ce = wordEnd(head, cs)
    const verb = upperAscii(latin1(b, cs, ce))
    if (te > 0 && first) f.set('imap.tag', span(latin1(b, 0, te), base, te))
    f.set('imap.command', {v: verb})
    const as = skipSpaces(head, ce)
    if (first) {
      if (line1 > as) f.set('imap.args', span(latin1(b, as, line1), base + as, line1 - as))
      f.set('imap.line.length', {v: this.firstLineLength})
      if (te === 0 || ce === cs) this.ctx.anomaly({type: 'applayer', event: 'imap.invalid_command', detail: {offset: base}})
    }
    if (last) f.set('imap.command.length', {v: this.total})
    if (this.literalCount > this.countSent) {
      f.set('imap.literal.count', {v: this.literalCount})
      this.countSent = this.literalCount
    }
    // the lists hold what is not emitted yet; once emitted, a list belongs to its PDU
    if (this.literalSizes.length > 0) {
      f.set('imap.literal.size', this.literalSizes)
      this.literalSizes = []
    }
    if (this.literals.length > 0) {
      f.set('imap.literal', this.literals)
      this.literals = []
    }
    if (this.truncated && !this.truncatedSent) {
      f.set('imap.truncated', {v: 1})
      this.truncatedSent = true
    }
    if (split) f.set('imap.part', {v: this.parts + 1})
    if (!last) f.set('imap.partial', {v: 1})
    let sub = verb
    let subStart = as
    if (verb === 'UID') {
      const se = wordEnd(head, as)
      sub = upperAscii(latin1(b, as, se))
      f.set('imap.subcommand', {v: sub})
      subStart = skipSpaces(head, se)
    }
    const body = b.subarray(0, n)
    switch (sub) {
      case 'LOGIN': {
        // values may end in a later part (literals): each is reported in the part where it ends
        const u = parseAstring(body, as)
        if (u.status !== 'error' && u.vEnd > u.vStart) {
          if (base + u.vEnd > from) f.set('imap.login.user', span(latin1(body, u.vStart, u.vEnd), base + u.vStart, u.vEnd - u.vStart))
          const p = parseAstring(body, u.next)
          if (p.status !== 'error' && p.vEnd > p.vStart && base + p.vEnd > from) {
            f.set('imap.login.password', span(latin1(body, p.vStart, p.vEnd), base + p.vStart, p.vEnd - p.vStart))
          }
        }
        break
      }
      case 'AUTHENTICATE': {
        if (first) {
          const me = wordEnd(head, as)
          if (me > as) f.set('imap.auth.mechanism', span(latin1(body, as, me), base + as, me - as))
          const ir = skipSpaces(head, me)
          if (line1 > ir) f.set('imap.auth.data', span(latin1(body, ir, line1), base + ir, line1 - ir))
        }
        if (te > 0 && last) {
          this.authTag = latin1(b, 0, te)
          this.authTurn = false
          this.authEarly = !f.has('imap.auth.data')
        }
        break
      }
      case 'FETCH': {
        if (!first) break
        const se = wordEnd(head, subStart)
        if (se > subStart) f.set('imap.fetch.set', span(latin1(body, subStart, se), base + subStart, se - subStart))
        const is = skipSpaces(head, se)
        if (line1 > is) f.set('imap.fetch.items', span(latin1(body, is, line1), base + is, line1 - is))
        break
      }
      default:
        break
    }
    // the tag awaits its completion from the first part on (the server may answer any part)
    if (te > 0 && first) {
      if (this.pending.size < this.limits.maxPending) this.pending.set(this.cmdTag, verb)
      else this.ctx.anomaly({type: 'applayer', event: 'imap.pending_overflow', detail: {limit: this.limits.maxPending}})
    }
    this.parts++
    this.judgedTo = end
    this.emit('command', 'toserver', from, end, f)
  }

  private authLine(ev: LineEvent): void {
    const f: Fields = new Map()
    const b = ev.line
    f.set('imap.auth.data', span(latin1(b), ev.start, b.length))
    f.set('imap.line.length', {v: ev.length})
    if (b.length === 1 && b[0] === 42) f.set('imap.auth.cancelled', {v: 1})
    this.authTurn = false
    this.emit('auth', 'toserver', ev.start, ev.end, f)
  }

  // ---- server -------------------------------------------------------------------------------

  protected serverLine(ev: LineEvent): void {
    const b = ev.line
    const lit = ev.tooLong ? null : parseTrailingLiteral(b)
    const follows = lit !== null && !lit.none && lit.status === 'ok'
    if (follows && lit.size > BigInt(this.limits.maxLiteralSize)) {
      this.ctx.anomaly({type: 'applayer', event: 'imap.literal_size_overflow', detail: {offset: ev.start + lit.digitsStart, limit: this.limits.maxLiteralSize}})
    } else if (follows && lit.size > 0n) {
      this.sc.expectBytes(Number(lit.size))
    }
    const cont = this.respCont
    this.respCont = follows && lit.size <= BigInt(this.limits.maxLiteralSize)
    if (cont) return
    this.response(ev, follows ? lit : null)
  }

  private response(ev: LineEvent, lit: ReturnType<typeof parseTrailingLiteral> | null): void {
    const b = ev.line
    const base = ev.start
    const f: Fields = new Map()
    const w = this.respWant
    if (w['imap.line.length']) f.set('imap.line.length', {v: ev.length})
    if (b.length > 0 && b[0] === 43) {
      const ts = skipSpaces(b, 1)
      if (b.length > ts && w['imap.continuation.text']) f.set('imap.continuation.text', span(latin1(b, ts), base + ts, b.length - ts))
      this.emit('continuation', 'toclient', base, ev.end, f)
      if (this.authTag !== null) {
        this.authTurn = true
        this.authEarly = false
      }
      return
    }
    const te = wordEnd(b, 0)
    const tag = latin1(b, 0, te)
    if (te > 0 && w['imap.response.tag']) f.set('imap.response.tag', span(tag, base, te))
    let ws = skipSpaces(b, te)
    let we = wordEnd(b, ws)
    let word = upperAscii(latin1(b, ws, Math.min(we, ws + 32)))
    if (tag === '*' && word.length > 0 && word.charCodeAt(0) >= 48 && word.charCodeAt(0) <= 57) {
      if (w['imap.response.number']) f.set('imap.response.number', {v: Number(word.length > 15 ? word.slice(0, 15) : word)})
      ws = skipSpaces(b, we)
      we = wordEnd(b, ws)
      word = upperAscii(latin1(b, ws, Math.min(we, ws + 32)))
    }
    if (STATUS.has(word)) f.set('imap.response.status', {v: word})
    if (word.length > 0 && w['imap.response.type']) f.set('imap.response.type', {v: word})
    const xs = skipSpaces(b, we)
    if (b.length > xs && w['imap.response.text']) f.set('imap.response.text', span(latin1(b, xs), base + xs, b.length - xs))
    if (lit !== null && w['imap.response.literal.size']) f.set('imap.response.literal.size', span(lit.size, base + lit.digitsStart, lit.digitsEnd - lit.digitsStart))
    if (te === 0) this.ctx.anomaly({type: 'applayer', event: 'imap.invalid_response', detail: {offset: base}})
    let verb: string | undefined
    if (tag !== '*' && te > 0) {
      verb = this.pending.get(tag)
      if (verb !== undefined) {
        this.pending.delete(tag)
        f.set('imap.response.command', {v: verb})
      }
      if (this.authTag === tag) {
        this.authTag = null
        this.authTurn = false
        this.authEarly = false
      }
      if (this.open && this.awaitingPlus && tag === this.cmdTag) {
        // the server refused a synchronising literal: the client will not send it
        this.cs.cancelBytes()
        this.finishCommand(this.cs.offset)
      }
    }
    this.emit('response', 'toclient', base, ev.end, f)
    if (verb === 'STARTTLS' && word === 'OK') this.startTls()
  }

  // ---- gaps and end -------------------------------------------------------------------------

  protected override onGap(dir: Direction, inBytes: boolean): void {
    if (dir === 'toclient') {
      if (!inBytes) this.respCont = false
      return
    }
    if (inBytes) {
      this.truncated = true
      return
    }
    if (this.open) {
      this.truncated = true
      this.finishCommand(this.cs.offset)
    }
    this.authTurn = false
    this.authEarly = false
  }

  protected override onEnd(dir: Direction): void {
    if (dir === 'toserver' && this.open && !this.tls) {
      this.truncated = true
      this.ctx.anomaly({type: 'applayer', event: 'imap.command_unterminated', detail: {offset: this.cmdStart}})
      this.finishCommand(this.cs.offset)
    }
  }
}

/** `* OK` / `* PREAUTH` / `* BYE` greeting (RFC 9051 section 7.1) */
export function detectImap(dir: Direction, b: Uint8Array): boolean {
  if (dir !== 'toclient' || b.length < 4 || b[0] !== 42 || b[1] !== 32) return false
  return matchWordCI(b, 2, 'OK') || matchWordCI(b, 2, 'PREAUTH') || (b.length >= 5 && matchWordCI(b, 2, 'BYE'))
}

