/**
 * A tiny HTTP/1.x request analyzer for the rule engine's own tests and benchmark, standing in
 * for the real one (src/core/analyzers/http). It emits one `request` PDU per request head
 * (+ Content-Length body) with spans on every field. NOT for production: no limits beyond a
 * buffer cap, no chunked bodies, no responses.
 */
import type {Analyzer, AnalyzerContext, AnalyzerFactory, Direction, FieldSpec, FieldValue, Fields} from '../analyzers/types.js'

/** Largest request (head + body) the fake analyzer buffers. */
export const FAKE_HTTP_MAX_BUFFER = 1 << 20

export const fakeHttpFields: readonly FieldSpec[] = [
  {name: 'http.method', description: 'request method', type: 'string'},
  {name: 'http.uri.raw', description: 'request target as sent', type: 'string'},
  {name: 'http.uri.path', description: 'path part of the target', type: 'string'},
  {name: 'http.arg.<name>', description: 'query/form parameter values (raw here; the real analyzer decodes)', type: 'string', multi: true},
  {name: 'http.header.<name>', description: 'header values by lower-case name', type: 'string', multi: true},
  {name: 'http.header_name.<name>', description: 'header names as sent, by lower-case name', type: 'string', multi: true},
  {name: 'http.cookie.<name>', description: 'cookie values (raw)', type: 'string', multi: true},
  {name: 'http.range.count', description: 'number of byte ranges in Range', type: 'number'},
  {name: 'http.range.start', description: 'first byte of each range, -1 for a suffix range', type: 'bigint', multi: true},
  {name: 'http.range.end', description: 'last byte of each range, -1 when open', type: 'bigint', multi: true},
  {name: 'http.body', description: 'request body (Content-Length)', type: 'bytes'},
]

function add(fields: Fields, name: string, fv: FieldValue): void {
  const cur = fields.get(name)
  if (cur === undefined) fields.set(name, fv)
  else if (Array.isArray(cur)) cur.push(fv)
  else fields.set(name, [cur, fv])
}

function parseParams(fields: Fields, prefix: string, s: string, base: number, sep: RegExp): void {
  let pos = 0
  for (const part of s.split(sep)) {
    const lead = part.length - part.trimStart().length
    const p = part.trimStart()
    const eq = p.indexOf('=')
    if (eq > 0) add(fields, prefix + p.slice(0, eq).toLowerCase(), {v: p.slice(eq + 1), off: base + pos + lead + eq + 1, len: p.length - eq - 1})
    pos += part.length + (s.slice(pos + part.length).match(sep)?.[0].length ?? 0)
  }
}

function rangeFields(fields: Fields, v: string): void {
  const m = /^\s*bytes\s*=(.*)$/i.exec(v)
  if (!m) return
  const list = m[1].split(',')
  for (const r of list) {
    const mm = /^\s*(\d*)\s*-\s*(\d*)\s*$/.exec(r)
    if (!mm) continue
    add(fields, 'http.range.start', {v: mm[1] === '' ? -1n : BigInt(mm[1])})
    add(fields, 'http.range.end', {v: mm[2] === '' ? -1n : BigInt(mm[2])})
  }
  fields.set('http.range.count', {v: list.length})
}

class FakeHttp implements Analyzer {
  readonly protocol = 'http'
  private buf = ''
  private base = 0
  constructor(private readonly ctx: AnalyzerContext) {}

  data(dir: Direction, chunk: Uint8Array): void {
    if (dir !== 'toserver') return
    if (this.buf.length + chunk.length > FAKE_HTTP_MAX_BUFFER) {
      this.ctx.anomaly({type: 'limit', event: 'http.fake_buffer'})
      return
    }
    this.buf += Buffer.from(chunk).toString('latin1')
    for (;;) if (!this.step()) break
  }

  private step(): boolean {
    const he = this.buf.indexOf('\r\n\r\n')
    if (he < 0) return false
    const head = this.buf.slice(0, he)
    const lines = head.split('\r\n')
    const fields: Fields = new Map()
    let bodyLen = 0
    let pos = lines[0].length + 2
    const rl = /^(\S+) (\S+) HTTP\/\d\.\d$/.exec(lines[0])
    if (rl) {
      const b = this.base
      fields.set('http.method', {v: rl[1], off: b, len: rl[1].length})
      const uo = b + rl[1].length + 1
      fields.set('http.uri.raw', {v: rl[2], off: uo, len: rl[2].length})
      const q = rl[2].indexOf('?')
      fields.set('http.uri.path', {v: q < 0 ? rl[2] : rl[2].slice(0, q), off: uo, len: q < 0 ? rl[2].length : q})
      if (q >= 0) parseParams(fields, 'http.arg.', rl[2].slice(q + 1), uo + q + 1, /&/)
    }
    for (let i = 1; i < lines.length; i++) {
      const l = lines[i]
      const c = l.indexOf(':')
      if (c > 0) {
        const name = l.slice(0, c)
        const ln = name.toLowerCase()
        const lead = l.slice(c + 1).length - l.slice(c + 1).trimStart().length
        const value = l.slice(c + 1 + lead).trimEnd()
        const vo = this.base + pos + c + 1 + lead
        add(fields, 'http.header_name.' + ln, {v: name, off: this.base + pos, len: name.length})
        add(fields, 'http.header.' + ln, {v: value, off: vo, len: value.length})
        if (ln === 'content-length') bodyLen = Math.min(Number(value) || 0, FAKE_HTTP_MAX_BUFFER)
        if (ln === 'range') rangeFields(fields, value)
        if (ln === 'cookie') parseParams(fields, 'http.cookie.', value, vo, /;/)
      }
      pos += l.length + 2
    }
    const total = he + 4 + bodyLen
    if (this.buf.length < total) return false
    if (bodyLen > 0) {
      const body = this.buf.slice(he + 4, total)
      fields.set('http.body', {v: body, off: this.base + he + 4, len: bodyLen})
      if (/x-www-form-urlencoded/i.test(String((fields.get('http.header.content-type') as FieldValue | undefined)?.v ?? ''))) {
        parseParams(fields, 'http.arg.', body, this.base + he + 4, /&/)
      }
    }
    this.ctx.emit({protocol: 'http', kind: 'request', dir: 'toserver', start: this.base, end: this.base + total, fields})
    this.buf = this.buf.slice(total)
    this.base += total
    return true
  }

  gap(): void {}
  end(): void {}
  pendingFrom(dir: Direction): number {
    return dir === 'toserver' && this.buf.length > 0 ? this.base : -1
  }
}

export const fakeHttpFactory: AnalyzerFactory = {
  protocol: 'http',
  fields: fakeHttpFields,
  ports: [80],
  transport: 'tcp',
  detect: (dir, b) => dir === 'toserver' && /^[A-Z]+ /.test(Buffer.from(b.subarray(0, 16)).toString('latin1')),
  create: (ctx) => new FakeHttp(ctx),
}
