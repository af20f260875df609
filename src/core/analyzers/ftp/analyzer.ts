/**
 * Stateful FTP control-connection analyzer (RFC 959, RFC 2428, RFC 2228 / RFC 4217 AUTH TLS).
 *
 * toserver: one 'command' PDU per line, carrying the login state. toclient: one 'reply' PDU per
 * (multi-line) reply. PASV/EPSV answers announce the data connection through
 * ctx.dynamicService. AUTH TLS + 234: the TLS analyzer takes both directions over.
 */
import type {AnalyzerContext, Direction, FieldValue, Fields} from '../types.js'
import {LineAnalyzerBase} from '../line/base.js'
import {ReplyCollector, type ReplyLimits} from '../line/reply.js'
import type {LineEvent, LineLimits} from '../line/splitter.js'
import {countByte, latin1, matchWordCI, skipSpaces, span, stripTelnet, trimEnd, upperAscii, wordEnd} from '../line/text.js'
import {parseEprt, parseEpsvReply, parsePasvReply, parsePort} from './parser.js'
import {FTP_FIELDS} from './fields.js'
import {fieldWants, type DirWants} from '../wants.js'

export interface FtpLimits extends LineLimits, ReplyLimits {
  /** commands awaiting a reply */
  maxPending: number
}

export const FTP_LIMITS: Readonly<FtpLimits> = {
  maxLineBytes: 4096,
  maxReplyLines: 256,
  maxPending: 64,
}

/**
 * Per direction, the fields some loaded rule reads: the others are left out. ftp.reply.code and
 * ftp.reply.command are always built (the login-failure protection reads them).
 */
const ftpWants = fieldWants(FTP_FIELDS)

export class FtpAnalyzer extends LineAnalyzerBase {
  private readonly limits: FtpLimits
  private readonly reply: ReplyCollector
  private readonly queue: string[] = []
  private greeted = false
  private loggedIn = 0
  private failures = 0
  private user: string | null = null
  private readonly want: DirWants<string>

  constructor(ctx: AnalyzerContext, limits: Partial<FtpLimits> = FTP_LIMITS) {
    const l = limits === FTP_LIMITS ? FTP_LIMITS : {...FTP_LIMITS, ...limits}
    super(ctx, 'ftp', l)
    this.limits = l
    this.reply = new ReplyCollector('loose', l)
    this.want = ftpWants(ctx.reads)
    const w = this.want.toclient
    // the first reply's text is the banner
    this.reply.keepText = w['ftp.reply.text'] || w['ftp.banner']
  }

  protected override unitStart(dir: Direction): number {
    return dir === 'toclient' && this.reply.holding ? this.reply.start : -1
  }

  override heldState(): Record<string, number> {
    return {...super.heldState(), queue: this.queue.length, replyLines: this.reply.texts.length}
  }

  private session(f: Fields, dir: Direction): void {
    const w = this.want[dir]
    if (w['ftp.logged_in']) f.set('ftp.logged_in', {v: this.loggedIn})
    if (w['ftp.login_failures']) f.set('ftp.login_failures', {v: this.failures})
    if (this.user !== null && w['ftp.user'] && !f.has('ftp.user')) f.set('ftp.user', {v: this.user})
  }

  protected clientLine(ev: LineEvent): void {
    // the command as the server reads it: Telnet commands (IAC ...) inside the line removed
    const b = stripTelnet(ev.line)
    const base = ev.start
    const f: Fields = new Map()
    const ve = wordEnd(b, 0)
    const raw = latin1(b, 0, ve)
    const verb = upperAscii(raw)
    const a0 = skipSpaces(b, ve)
    // trailing blanks are part of the argument for paths; only CR LF was stripped
    const a1 = b.length
    f.set('ftp.command', {v: verb})
    f.set('ftp.command.raw', span(raw, base, ve))
    if (a1 > a0) f.set('ftp.args', span(latin1(b, a0, a1), base + a0, a1 - a0))
    f.set('ftp.line.length', {v: ev.length})
    const iac = countByte(ev.line, 0xff)
    if (iac > 0) {
      f.set('ftp.iac.count', {v: iac})
      this.ctx.anomaly({type: 'applayer', event: 'ftp.telnet_iac', detail: {offset: base, count: iac}})
    }
    if (ve === 0) this.ctx.anomaly({type: 'applayer', event: 'ftp.empty_command', detail: {offset: base}})
    switch (verb) {
      case 'USER':
        this.user = latin1(b, a0, a1)
        this.loggedIn = 0
        if (this.want.toserver['ftp.user']) f.set('ftp.user', span(this.user, base + a0, a1 - a0))
        break
      case 'PASS':
        if (a1 > a0) f.set('ftp.pass', span(latin1(b, a0, a1), base + a0, a1 - a0))
        break
      case 'PORT':
      case 'EPRT': {
        const e = trimEnd(b, a0, a1)
        const p = verb === 'PORT' ? parsePort(b, a0, e) : parseEprt(b, a0, e)
        if (p.status !== 'ok') {
          this.ctx.anomaly({type: 'applayer', event: 'ftp.port_invalid', detail: {offset: base, command: verb}})
          break
        }
        f.set('ftp.port.ip', verb === 'EPRT' ? span(p.ip, base + p.ipStart, p.ipEnd - p.ipStart) : {v: p.ip})
        f.set('ftp.port.port', {v: p.port})
        const client = this.ctx.flow?.clientIp
        if (client !== undefined) f.set('ftp.port.mismatch', {v: p.ip === client.toLowerCase() ? 0 : 1})
        break
      }
      case 'SITE': {
        const se = wordEnd(b, a0)
        if (se > a0) f.set('ftp.site.command', {v: upperAscii(latin1(b, a0, se))})
        const s0 = skipSpaces(b, se)
        if (a1 > s0) f.set('ftp.site.args', span(latin1(b, s0, a1), base + s0, a1 - s0))
        break
      }
      default:
        break
    }
    // values parsed out of a stripped line do not map onto the stream: no spans (a fix drops)
    if (b !== ev.line) for (const [k, v] of f) f.set(k, Array.isArray(v) ? v.map(withoutSpan) : withoutSpan(v))
    f.set('ftp.line', span(latin1(ev.line), base, ev.line.length))
    this.session(f, 'toserver')
    if (this.queue.length < this.limits.maxPending) this.queue.push(verb.length > 16 ? verb.slice(0, 16) : verb)
    else this.ctx.anomaly({type: 'applayer', event: 'ftp.pending_overflow', detail: {limit: this.limits.maxPending}})
    this.emit('command', 'toserver', base, ev.end, f)
  }

  protected serverLine(ev: LineEvent): void {
    const r = this.reply
    const step = r.feed(ev)
    if (step === 'more' || step === 'skipped') return
    const firstLine = ev.start === r.start ? ev.line : null
    const f: Fields = new Map()
    const code = r.code
    const w = this.want.toclient
    if (code >= 0) f.set('ftp.reply.code', span(code, r.codeOff, 3))
    if (w['ftp.reply.text']) f.set('ftp.reply.text', r.texts)
    if (w['ftp.reply.line_count']) f.set('ftp.reply.line_count', {v: r.lineCount})
    if (r.truncated && w['ftp.reply.truncated']) f.set('ftp.reply.truncated', {v: 1})
    if (r.malformed) this.ctx.anomaly({type: 'applayer', event: 'ftp.invalid_reply', detail: {offset: r.start}})
    const start = r.start
    const end = r.end
    const texts = r.texts
    if (step === 'overflow') {
      this.ctx.anomaly({type: 'applayer', event: 'ftp.reply_too_long', detail: {offset: start}})
      r.releaseOverflow()
    } else {
      r.reset()
    }
    const preliminary = code >= 100 && code < 200
    let cmd: string | undefined
    if (!this.greeted) {
      if (texts.length > 0 && w['ftp.banner']) f.set('ftp.banner', texts[0]!)
      if (!preliminary) this.greeted = true
    } else {
      cmd = this.queue[0]
      if (!preliminary) this.queue.shift()
      if (cmd !== undefined) f.set('ftp.reply.command', {v: cmd})
    }
    if (cmd === 'USER' || cmd === 'PASS' || cmd === 'ACCT') {
      if (code === 230) this.loggedIn = 1
      else if (code === 530 || (cmd === 'PASS' && code >= 500)) {
        this.failures++
        this.loggedIn = 0
      }
    } else if (cmd === 'REIN' && code >= 200 && code < 300) {
      this.loggedIn = 0
    }
    if (code === 227 || code === 229) this.passive(f, code, firstLine, start)
    this.session(f, 'toclient')
    this.emit('reply', 'toclient', start, end, f)
    if (cmd === 'AUTH' && code === 234) this.startTls()
  }

  /** 227 / 229: announce the data connection (RFC 959 section 4.1.2 PASV, RFC 2428 section 3 EPSV) */
  private passive(f: Fields, code: number, line: Uint8Array | null, start: number): void {
    if (line === null) return
    const server = this.ctx.flow?.serverIp
    if (code === 227) {
      const p = parsePasvReply(line, 4, line.length)
      if (p.status !== 'ok') {
        this.ctx.anomaly({type: 'applayer', event: 'ftp.pasv_invalid', detail: {offset: start}})
        return
      }
      f.set('ftp.pasv.ip', {v: p.ip})
      f.set('ftp.pasv.port', {v: p.port})
      if (server !== undefined) f.set('ftp.pasv.mismatch', {v: p.ip === server ? 0 : 1})
      this.ctx.dynamicService?.({ip: p.ip, port: p.port, proto: 'tcp', protocol: 'ftp-data'})
      return
    }
    const port = parseEpsvReply(line, 4, line.length)
    if (port < 0) {
      this.ctx.anomaly({type: 'applayer', event: 'ftp.epsv_invalid', detail: {offset: start}})
      return
    }
    f.set('ftp.pasv.port', {v: port})
    if (server !== undefined) this.ctx.dynamicService?.({ip: server, port, proto: 'tcp', protocol: 'ftp-data'})
  }

  protected override onGap(dir: Direction): void {
    if (dir === 'toclient') this.reply.reset()
  }

  protected override onEnd(dir: Direction): void {
    if (dir !== 'toclient' || !this.reply.holding) return
    const r = this.reply
    const f: Fields = new Map()
    const w = this.want.toclient
    if (r.code >= 0) f.set('ftp.reply.code', span(r.code, r.codeOff, 3))
    if (w['ftp.reply.text']) f.set('ftp.reply.text', r.texts)
    if (w['ftp.reply.line_count']) f.set('ftp.reply.line_count', {v: r.lineCount})
    if (w['ftp.reply.truncated']) f.set('ftp.reply.truncated', {v: 1})
    this.session(f, 'toclient')
    this.ctx.anomaly({type: 'applayer', event: 'ftp.reply_unterminated', detail: {offset: r.start}})
    this.emit('reply', 'toclient', r.start, r.end, f)
    r.reset()
  }
}

/** a 220 (or 120) greeting that does not look like SMTP (RFC 959 section 5.4) */
export function detectFtp(dir: Direction, b: Uint8Array): boolean {
  if (dir !== 'toclient') return false
  if (b.length < 4 || b[1] !== 50 || b[2] !== 48 || (b[0] !== 50 && b[0] !== 49) || (b[3] !== 32 && b[3] !== 45)) return false
  const n = Math.min(b.length, 64)
  let ftp = false
  for (let i = 4; i + 3 <= n; i++) {
    if (matchWordCI(b, i, 'FTP')) ftp = true
    else if (matchWordCI(b, i, 'SMTP') || matchWordCI(b, i, 'MAIL')) return false
  }
  return ftp || b[0] === 50
}

function withoutSpan(v: FieldValue): FieldValue {
  return v.off === undefined ? v : {v: v.v}
}
