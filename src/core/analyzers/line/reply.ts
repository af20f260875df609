/**
 * Numbered replies shared by SMTP and FTP.
 *
 * RFC 5321 section 4.2 (SMTP) and RFC 959 section 4.2 (FTP):
 *
 *   Reply-line     = *( Reply-code "-" [ textstring ] CRLF )
 *                       Reply-code [ SP textstring ] CRLF
 *   Reply-code     = %x32-35 %x30-35 %x30-39
 *
 *   "123-First line            FTP: the lines between the first and the last need not
 *    Second line                 carry the code; the reply ends at the first line that
 *   123 The last line"           starts with the same code followed by SP.
 *
 * The collector holds at most `maxReplyLines` line texts; past that it reports the reply as
 * truncated (emit what it has) and skips to the closing line.
 */
import type {FieldValue} from '../types.js'
import {latin1, span} from './text.js'
import type {LineEvent} from './splitter.js'

export interface ReplyLimits {
  /** lines kept for one multi-line reply */
  maxReplyLines: number
}

export const REPLY_LIMITS: Readonly<ReplyLimits> = {
  maxReplyLines: 256,
}

export type ReplyStep =
  /** a complete reply is ready: read the collector's fields, then call reset() */
  | 'done'
  /** a multi-line reply goes on (held) */
  | 'more'
  /** the held reply hit the line cap: emit it now (truncated), the rest is skipped */
  | 'overflow'
  /** a line swallowed while skipping the rest of an overflowed reply */
  | 'skipped'

function codeAt(b: Uint8Array): number {
  if (b.length < 3) return -1
  const a = b[0]!
  const c = b[1]!
  const d = b[2]!
  if (a < 48 || a > 57 || c < 48 || c > 57 || d < 48 || d > 57) return -1
  if (b.length > 3 && b[3] !== 32 && b[3] !== 45) return -1
  return (a - 48) * 100 + (c - 48) * 10 + (d - 48)
}

export class ReplyCollector {
  /** absolute start of the reply's first line, -1 when none open */
  start = -1
  end = 0
  /** reply code (-1: first line malformed) */
  code = -1
  codeOff = 0
  texts: FieldValue[] = []
  lineCount = 0
  /** some line was not in the expected format */
  malformed = false
  truncated = false
  /** collect the line texts (`texts`); false when no rule reads them: they stay empty */
  keepText = true
  private open = false
  private skipping = false
  private readonly maxLines: number

  constructor(
    /** 'strict': every line must carry the code (SMTP); 'loose': FTP */
    private readonly mode: 'strict' | 'loose',
    limits: Partial<ReplyLimits> = {},
  ) {
    this.maxLines = Math.max(1, limits.maxReplyLines ?? REPLY_LIMITS.maxReplyLines)
  }

  /** true while a multi-line reply is held */
  get holding(): boolean {
    return this.open && !this.skipping
  }

  reset(): void {
    this.start = -1
    this.code = -1
    this.texts = []
    this.lineCount = 0
    this.malformed = false
    this.truncated = false
    this.open = false
    this.skipping = false
  }

  feed(ev: LineEvent): ReplyStep {
    const b = ev.line
    const code = codeAt(b)
    if (this.skipping) {
      if (code === this.code && (b.length === 3 || b[3] === 32)) {
        this.reset()
      }
      return 'skipped'
    }
    if (!this.open) {
      this.start = ev.start
      this.code = code
      this.codeOff = ev.start
      this.malformed = code < 0
      this.texts = []
      this.lineCount = 0
      this.truncated = ev.tooLong
    }
    this.end = ev.end
    this.lineCount++
    const last = code < 0 ? !this.open : code === this.code && (b.length === 3 || b[3] === 32)
    if (code >= 0) {
      if (code !== this.code && this.mode === 'strict') this.malformed = true
      const t0 = Math.min(4, b.length)
      if (this.keepText) this.texts.push(span(latin1(b, t0), ev.start + t0, b.length - t0))
    } else {
      if (this.mode === 'strict' && this.open) this.malformed = true
      if (this.keepText) this.texts.push(span(latin1(b), ev.start, b.length))
    }
    if (ev.tooLong) this.truncated = true
    if (last || (this.mode === 'strict' && this.open && code < 0)) {
      this.open = false
      return 'done'
    }
    if (!this.open) {
      this.open = true
      return 'more'
    }
    // lineCount: the lines held (as many as texts, when they are kept)
    if (this.lineCount >= this.maxLines) {
      this.truncated = true
      this.skipping = true
      return 'overflow'
    }
    return 'more'
  }

  /** after 'overflow': forget the held lines but keep skipping to the closing line */
  releaseOverflow(): void {
    this.start = -1
    this.texts = []
  }
}
