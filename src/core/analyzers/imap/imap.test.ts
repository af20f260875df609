import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {bytes, runAnalyzer, summarize, type ScriptStep} from '../harness.js'
import {fuzzRuns, loadHexFixture, spanMismatches, splitInvariance} from '../line/testing.js'
import {readsMismatches} from '../testing.js'
import type {FieldValue, Pdu} from '../types.js'
import {loadRules, RuleSet} from '../../rules/engine.js'
import {fieldsFor} from '../../rules/fields.js'
import {IMAP_FIELDS, IMAP_LIMITS, ImapAnalyzer, imapAnalyzer, makeImapAnalyzer, parseAstring, parseTrailingLiteral} from './index.js'

const fx = (name: string) => loadHexFixture(new URL(`./fixtures/${name}.hex`, import.meta.url))
const one = (p: Pdu, name: string): FieldValue => {
  const v = p.fields.get(name)
  if (v === undefined || Array.isArray(v)) throw new Error(`${name}: ${JSON.stringify(v)}`)
  return v
}
const many = (p: Pdu, name: string): FieldValue[] => {
  const v = p.fields.get(name)
  return v === undefined ? [] : Array.isArray(v) ? v : [v]
}
const S = (s: string): ScriptStep => ({dir: 'toserver', data: bytes(s)})
const C = (s: string): ScriptStep => ({dir: 'toclient', data: bytes(s)})
const GREET = C('* OK ready\r\n')
const cmds = (r: {pdus: Pdu[]}) => r.pdus.filter((p) => p.dir === 'toserver')

describe('imap: fixtures', () => {
  for (const name of ['benign_imap_session.s0', 'benign_imap_starttls.s0']) {
    it(`${name}: every split and 1-byte chunks give the same PDUs`, () => {
      // cut at every 7th (21 KB session) / 3rd (6 KB, mostly TLS after STARTTLS) position to keep the suite fast
      expect(splitInvariance(imapAnalyzer, fx(name), name === 'benign_imap_session.s0' ? 7 : 3)).toEqual([])
    })
    it(`${name}: every span maps onto the stream bytes`, () => {
      const script = fx(name)
      const r = runAnalyzer(imapAnalyzer, script)
      expect(r.pdus.length).toBeGreaterThan(4)
      expect(spanMismatches(r.pdus, script)).toEqual([])
    })
  }

  it('benign session: LOGIN quoted args, FETCH args, server literals skipped', () => {
    const r = runAnalyzer(imapAnalyzer, fx('benign_imap_session.s0'))
    expect(r.anomalies).toEqual([])
    const login = cmds(r).find((p) => one(p, 'imap.command').v === 'LOGIN')!
    expect(one(login, 'imap.tag')).toEqual({v: 'a0001', off: 18, len: 5})
    expect(one(login, 'imap.login.user')).toEqual({v: 'neulingern', off: 31, len: 10})
    expect(one(login, 'imap.login.password').v).toBe('XXXXXX')
    const fetch = cmds(r).find((p) => one(p, 'imap.command').v === 'FETCH')!
    expect(one(fetch, 'imap.fetch.set').v).toBe('1:13')
    // every tagged command got its tagged completion (the FETCH bodies did not confuse framing)
    const tagged = r.pdus.filter((p) => p.fields.has('imap.response.command'))
    expect(tagged.length).toBe(cmds(r).length)
    const withLit = r.pdus.filter((p) => p.fields.has('imap.response.literal.size'))
    expect(withLit.length).toBeGreaterThan(20)
  })

  it('STARTTLS + OK: the lines stop, the TLS layer is read from the first byte after the exchange', () => {
    const r = runAnalyzer(imapAnalyzer, fx('benign_imap_starttls.s0'))
    const imap = r.pdus.filter((p) => p.protocol === 'imap')
    expect(imap.map((p) => `${p.dir === 'toserver' ? '>' : '<'}${p.kind}`)).toEqual(['<response', '>command', '<response', '<response', '>command', '<response'])
    // the real session's handshake, record by record, from just after `a002 STARTTLS` and its OK
    const tls = r.pdus.filter((p) => p.protocol === 'tls')
    expect(tls[0]).toMatchObject({dir: 'toserver', kind: 'client_hello', start: imap[4].end})
    expect(tls.find((p) => p.dir === 'toclient')).toMatchObject({kind: 'server_hello', start: imap[5].end})
    expect(tls.filter((p) => (p.fields.get('tls.record.encrypted') as {v: unknown} | undefined)?.v === 1).length).toBe(6)
    expect(r.anomalies).toEqual([])
  })
})

describe('imap: literals and attacks (hand-written)', () => {
  it('{4294967296} literal: bigint size with span, overflow anomaly, framing resumes on lines', () => {
    const script = [GREET, S('A1 APPEND INBOX {4294967296}\r\nA2 NOOP\r\n')]
    const r = runAnalyzer(imapAnalyzer, script)
    const app = cmds(r)[0]!
    expect(many(app, 'imap.literal.size')).toEqual([{v: 4294967296n, off: 17, len: 10}])
    expect(one(app, 'imap.literal.count').v).toBe(1)
    expect(r.anomalies.map((a) => a.event)).toEqual(['imap.literal_size_overflow'])
    expect(one(cmds(r)[1]!, 'imap.command').v).toBe('NOOP')
    expect(spanMismatches(r.pdus, script)).toEqual([])
  })

  it('LOGIN with literals: judged in two parts, user and password spans point at the literal bytes', () => {
    const script = [GREET, S('a LOGIN {4}\r\n'), C('+ go\r\n'), S('f\x00oo {6+}\r\nse"cr\\\r\n')]
    const r = runAnalyzer(imapAnalyzer, script)
    const [p1, p2, ...rest] = cmds(r)
    expect(rest).toEqual([])
    // part 1: the line the client sends before waiting for '+'
    expect([p1!.start, p1!.end]).toEqual([0, 13])
    expect(Object.fromEntries([...p1!.fields].map(([k, v]) => [k, Array.isArray(v) ? v.map((x) => x.v) : v.v]))).toEqual({
      'imap.tag': 'a', 'imap.command': 'LOGIN', 'imap.args': '{4}', 'imap.line.length': 11,
      'imap.literal.count': 1, 'imap.literal.size': [4n], 'imap.part': 1, 'imap.partial': 1,
    })
    // part 2: the literal and the rest; no field of part 1 again (tag, args, first size)
    expect([p2!.start, p2!.end]).toEqual([13, 32])
    expect(one(p2!, 'imap.login.user')).toEqual({v: 'f\x00oo', off: 13, len: 4})
    expect(one(p2!, 'imap.login.password')).toEqual({v: 'se"cr\\', off: 24, len: 6})
    expect(many(p2!, 'imap.literal').map((v) => v.v)).toEqual(['f\x00oo', 'se"cr\\'])
    expect(many(p2!, 'imap.literal.size').map((v) => v.v)).toEqual([6n])
    expect(one(p2!, 'imap.literal.count').v).toBe(2)
    expect(one(p2!, 'imap.command.length').v).toBe(32)
    expect(one(p2!, 'imap.part').v).toBe(2)
    expect(one(p2!, 'imap.command').v).toBe('LOGIN')
    for (const k of ['imap.tag', 'imap.args', 'imap.line.length', 'imap.partial']) expect(p2!.fields.has(k), k).toBe(false)
    expect(spanMismatches(r.pdus, script)).toEqual([])
  })

  it('three parts: the user ends in part 2, the password in part 3', () => {
    const script = [GREET, S('t LOGIN {3}\r\n'), C('+ \r\n'), S('joe {5}\r\n'), C('+ \r\n'), S('s3cr!\r\n'), C('t OK\r\n')]
    const r = runAnalyzer(imapAnalyzer, script)
    const parts = cmds(r)
    expect(parts.map((p) => [p.start, p.end, one(p, 'imap.part').v, p.fields.has('imap.partial')])).toEqual([[0, 13, 1, true], [13, 22, 2, true], [22, 29, 3, false]])
    expect(parts.map((p) => many(p, 'imap.login.user').map((v) => v.v))).toEqual([[], ['joe'], []])
    expect(parts.map((p) => many(p, 'imap.login.password').map((v) => v.v))).toEqual([[], [], ['s3cr!']])
    // the tagged completion still names the command
    expect(r.pdus.filter((p) => p.fields.has('imap.response.command')).map((p) => one(p, 'imap.response.command').v)).toEqual(['LOGIN'])
    expect(spanMismatches(r.pdus, script)).toEqual([])
  })

  it('a refused synchronising literal is not read as literal bytes (and its line is judged once)', () => {
    const r = runAnalyzer(imapAnalyzer, [GREET, S('a APPEND box {10}\r\n'), C('a NO too big\r\n'), S('b NOOP\r\n'), C('b OK\r\n')])
    expect(cmds(r).map((p) => [one(p, 'imap.command').v, p.fields.has('imap.partial')])).toEqual([['APPEND', true], ['NOOP', false]])
    expect(r.pdus.filter((p) => p.fields.has('imap.response.command')).map((p) => one(p, 'imap.response.command').v)).toEqual(['APPEND', 'NOOP'])
  })

  it('AUTHENTICATE: continuation lines are auth PDUs until the tagged response', () => {
    const r = runAnalyzer(imapAnalyzer, [GREET, S('x AUTHENTICATE PLAIN\r\n'), C('+ \r\n'), S('AGZvbwBiYXI=\r\n'), C('x OK done\r\n'), S('y NOOP\r\n')])
    expect(cmds(r).map((p) => p.kind)).toEqual(['command', 'auth', 'command'])
    expect(one(cmds(r)[0]!, 'imap.auth.mechanism').v).toBe('PLAIN')
    expect(one(cmds(r)[1]!, 'imap.auth.data')).toMatchObject({v: 'AGZvbwBiYXI='})
  })

  it('command cap: emitted early (truncated) and the rest swallowed; held bytes stay bounded', () => {
    const lim = makeImapAnalyzer({maxCommandBytes: 100})
    const r = runAnalyzer(lim, [GREET, S(`a APPEND box {500+}\r\n${'x'.repeat(500)} {3+}\r\nabc\r\nb NOOP\r\n`)])
    const c = cmds(r)
    expect(c.map((p) => one(p, 'imap.command').v)).toEqual(['APPEND', 'NOOP'])
    expect(one(c[0]!, 'imap.truncated').v).toBe(1)
    expect(c[0]!.end - c[0]!.start).toBe(100)
    expect(r.anomalies.map((a) => a.event)).toEqual(['imap.command_too_long'])
  })

  it('pendingFrom: -1 once a synchronising-literal line is judged, held again from the literal on', () => {
    const pdus: Pdu[] = []
    const a = new ImapAnalyzer({emit: (p) => pdus.push(p), anomaly: () => {}})
    a.data('toserver', bytes('t1 LOGIN {3}'))
    expect(a.pendingFrom('toserver')).toBe(0)
    a.data('toserver', bytes('\r\n'))
    // the line was emitted (judged): nothing held, so the server gets it and can answer '+'
    expect(pdus.map((p) => [p.start, p.end, p.fields.get('imap.partial')])).toEqual([[0, 14, {v: 1}]])
    expect(a.pendingFrom('toserver')).toBe(-1)
    a.data('toserver', bytes('ab'))
    expect(a.pendingFrom('toserver')).toBe(14)
    a.data('toserver', bytes('c "pw"'))
    expect(a.pendingFrom('toserver')).toBe(14)
    a.data('toserver', bytes('\r\n'))
    expect(a.pendingFrom('toserver')).toBe(-1)
    expect(pdus.map((p) => [p.start, p.end])).toEqual([[0, 14], [14, 24]])
  })

  it('pendingFrom: a LITERAL+ command is held whole (no part: the client does not wait)', () => {
    const pdus: Pdu[] = []
    const a = new ImapAnalyzer({emit: (p) => pdus.push(p), anomaly: () => {}})
    a.data('toserver', bytes('t1 LOGIN {3+}\r\n'))
    expect(pdus).toEqual([])
    expect(a.pendingFrom('toserver')).toBe(0)
    a.data('toserver', bytes('abc x\r\n'))
    expect(a.pendingFrom('toserver')).toBe(-1)
    expect(pdus.map((p) => [p.start, p.end, p.fields.has('imap.part')])).toEqual([[0, 22, false]])
  })

  it('every prefix: emitted parts are a prefix of the whole run, pendingFrom = first unjudged byte', () => {
    const text = 'a1 APPEND INBOX (\\Seen) {12}\r\nSubject: x\r\n a2 {3+}\r\nabc {0}\r\n\r\n' +
      'a2 LOGIN {3}\r\njoe "pw"\r\na3 NOOP\r\na4 LOGIN joe {4}\r\npass\r\n'
    const all = bytes(text)
    const run = (n: number) => {
      const pdus: Pdu[] = []
      const a = new ImapAnalyzer({emit: (p) => pdus.push(p), anomaly: () => {}})
      a.data('toserver', all.subarray(0, n))
      return {pdus, pending: a.pendingFrom('toserver')}
    }
    const whole = run(all.length)
    const want = summarize(whole.pdus)
    expect(whole.pdus.map((p) => `${one(p, 'imap.command').v}${p.fields.has('imap.part') ? `/${one(p, 'imap.part').v}` : ''}`))
      .toEqual(['APPEND/1', 'APPEND/2', 'APPEND/3', 'LOGIN/1', 'LOGIN/2', 'NOOP', 'LOGIN/1', 'LOGIN/2'])
    expect(whole.pending).toBe(-1)
    for (let i = 0; i <= all.length; i++) {
      const got = run(i)
      expect(summarize(got.pdus)).toEqual(want.slice(0, got.pdus.length))
      const judged = got.pdus.length > 0 ? got.pdus[got.pdus.length - 1]!.end : 0
      expect(got.pending, `prefix ${i}`).toBe(judged === i ? -1 : judged)
    }
  })

  it('a line ending in {1} is judged (not passed unjudged) and an oversized literal is judged at its line', () => {
    const pdus: Pdu[] = []
    const anomalies: string[] = []
    const a = new ImapAnalyzer({emit: (p) => pdus.push(p), anomaly: (x) => anomalies.push(x.event)})
    a.data('toserver', bytes(`a FETCH 1 (BODY[${'A'.repeat(1100)}]) {1}\r\n`))
    expect(pdus).toHaveLength(1)
    expect(one(pdus[0]!, 'imap.fetch.items').v).toBe(`(BODY[${'A'.repeat(1100)}]) {1}`)
    a.data('toserver', bytes('b APPEND INBOX {4294967296}\r\n'))
    // part 2 of the FETCH command (the 'literal' byte 'b' and the rest of the line), no FETCH fields again
    expect(pdus).toHaveLength(2)
    expect(pdus[1]!.fields.has('imap.fetch.items')).toBe(false)
    const b = new ImapAnalyzer({emit: (p) => pdus.push(p), anomaly: () => {}})
    b.data('toserver', bytes('b APPEND INBOX {4294967296}\r\n'))
    expect(pdus).toHaveLength(3)
    expect([pdus[2]!.start, pdus[2]!.end]).toEqual([0, 29])
    expect(many(pdus[2]!, 'imap.literal.size')).toEqual([{v: 4294967296n, off: 16, len: 10}])
    expect(b.pendingFrom('toserver')).toBe(-1)
  })

  it('invalid literal and invalid command are flagged', () => {
    const r = runAnalyzer(imapAnalyzer, [GREET, S('a LOGIN {x1}\r\n\r\n')])
    expect(r.anomalies.map((a) => a.event)).toEqual(['imap.literal_invalid', 'imap.invalid_command'])
  })

  it('parsers: trailing literal and astring', () => {
    expect(parseTrailingLiteral(bytes('a LOGIN {12+}'))).toMatchObject({status: 'ok', none: false, size: 12n, nonSync: true})
    expect(parseTrailingLiteral(bytes('a NOOP')).none).toBe(true)
    expect(parseAstring(bytes('"a\\"b" x'), 0)).toMatchObject({status: 'ok', kind: 'quoted', vStart: 1, vEnd: 5})
    expect(parseAstring(bytes('{3}\r\nab'), 0).status).toBe('incomplete')
  })
})

describe('imap: the rule pack on commands judged in parts', () => {
  const loaded = loadRules(fileURLToPath(new URL('../../../../rules/imap/', import.meta.url)), {fieldsFor})
  const errors = loaded.errors
  const rules = loaded.rules.filter((r) => r.protocol === 'imap')
  const set = new RuleSet(rules)
  /** per rule: the [start, end) of every PDU it matched */
  const hits = (script: ScriptStep[], limits: Partial<typeof IMAP_LIMITS> = {}) => {
    const out: Record<string, number[][]> = {}
    for (const p of runAnalyzer(makeImapAnalyzer(limits), script).pdus) {
      for (const m of set.evaluate(p)) (out[m.rule.id] ??= []).push([p.start, p.end])
    }
    return out
  }

  it('loads the imap rules', () => {
    expect(errors).toEqual([])
    expect(rules.map((r) => r.id).sort()).toEqual(['PP-2008-1276', 'PP-IMAP-LITERAL-OVERFLOW', 'PP-IMAP-LONG-AUTHENTICATE', 'PP-IMAP-LONG-FETCH'].sort())
  })

  it('each rule fires once per command, on the part that holds the offending bytes', () => {
    const user = 'u'.repeat(300)
    const pw = 'p'.repeat(1100)
    // long user as a synchronising literal, then a long password as another: two parts match
    expect(hits([GREET, S('a LOGIN {300}\r\n'), C('+ \r\n'), S(`${user} {1100}\r\n`), C('+ \r\n'), S(`${pw}\r\n`)]))
      .toEqual({'PP-2008-1276': [[15, 324], [324, 1426]]})
    // long user quoted on the line: judged at the line only, not again with the literal password
    expect(hits([GREET, S(`a LOGIN "${user}" {4}\r\n`), C('+ \r\n'), S('pass\r\n')])).toEqual({'PP-2008-1276': [[0, 316]]})
    // an overlong FETCH line with `{1}` appended: judged at the line, before the server can answer '+'
    expect(hits([GREET, S(`a FETCH 1 (BODY[${'A'.repeat(1100)}]) {1}\r\n`), C('+ \r\n'), S('x)\r\n')])).toEqual({'PP-IMAP-LONG-FETCH': [[0, 1124]]})
  })

  it('PP-IMAP-LITERAL-OVERFLOW is judged at the line, before the server answers +', () => {
    // default limits: the size is beyond maxLiteralSize, the command ends at the line
    expect(hits([GREET, S('a APPEND INBOX {4294967296}\r\n')])).toEqual({'PP-IMAP-LITERAL-OVERFLOW': [[0, 29]]})
    // limits that follow the literal: the line is a part of its own
    expect(hits([GREET, S('a APPEND INBOX {4294967296}\r\n')], {maxLiteralSize: 2 ** 40})).toEqual({'PP-IMAP-LITERAL-OVERFLOW': [[0, 29]]})
    // a later literal of the same command: its part only
    expect(hits([GREET, S('a APPEND INBOX {3}\r\n'), C('+ \r\n'), S('abc {2147483648}\r\n')])).toEqual({'PP-IMAP-LITERAL-OVERFLOW': [[20, 38]]})
  })

  it('a benign APPEND with a synchronising literal raises nothing', () => {
    const msg = 'Subject: a\r\n\r\nbody {3}\r\n* OK\r\n'
    expect(hits([GREET, S(`A003 APPEND INBOX (\\Seen) {${msg.length}}\r\n`), C('+ OK\r\n'), S(`${msg}\r\n`), C('A003 OK\r\n')])).toEqual({})
  })
})

describe('imap: fuzz', () => {
  it('random and mutated input never throws and stays bounded', () => {
    const base = [fx('benign_imap_starttls.s0').slice(0, 4), fx('benign_imap_session.s0').slice(0, 12)]
    const limits = {...IMAP_LIMITS, maxLineBytes: 256, maxCommandBytes: 512, maxLiteralSize: 4096, maxLiterals: 4, maxPending: 8}
    const steps = fc.array(
      fc.record({
        dir: fc.constantFrom<'toserver' | 'toclient'>('toserver', 'toclient'),
        data: fc.oneof(
          fc.uint8Array({maxLength: 300}),
          fc.array(fc.constantFrom('a1 ', 'LOGIN ', 'AUTHENTICATE ', '{5}', '{3+}', '{0}', '{99999999999}', '"q\\"', '* ', '+ ', 'OK ', 'STARTTLS', '\r\n', '\n', 'xyz'), {maxLength: 30}).map((a) => bytes(a.join(''))),
        ),
      }),
      {maxLength: 12},
    )
    fc.assert(
      fc.property(fc.nat(1), steps, fc.nat(), fc.integer({min: 7, max: 700}), (which, extra, seed, chunk) => {
        const mutated = base[which]!.map((s, i) => {
          if (i % 3 !== seed % 3) return s
          const d = Uint8Array.from(s.data)
          if (d.length > 0) d[seed % d.length] = seed & 0xff
          return {dir: s.dir, data: d}
        })
        const a = new ImapAnalyzer({emit: () => {}, anomaly: () => {}}, limits)
        let worst = 0
        for (const s of [...mutated.slice(0, 2), ...extra, ...mutated.slice(2)]) {
          for (let i = 0; i < s.data.length; i += chunk) a.data(s.dir, s.data.subarray(i, i + chunk))
          const h = a.heldState()
          if (h.clientLine! > limits.maxLineBytes + 1 || h.serverLine! > limits.maxLineBytes + 1) worst = 1
          if (h.command! > limits.maxCommandBytes || h.pending! > limits.maxPending || h.literals! > 2 * limits.maxLiterals) worst = 2
        }
        a.end('toserver')
        a.end('toclient')
        expect(worst).toBe(0)
      }),
      {numRuns: fuzzRuns(10_000)},
    )
  })
})

describe('imap: detect and fields', () => {
  it('detects the * OK greeting only', () => {
    expect(imapAnalyzer.detect('toclient', fx('benign_imap_session.s0')[0]!.data.subarray(0, 64))).toBe(true)
    expect(imapAnalyzer.detect('toclient', fx('benign_imap_starttls.s0')[0]!.data.subarray(0, 64))).toBe(true)
    expect(imapAnalyzer.detect('toclient', bytes('+OK POP3\r\n'))).toBe(false)
    expect(imapAnalyzer.detect('toserver', bytes('* OK'))).toBe(false)
  })

  it('every emitted field is documented', () => {
    const names = new Set(IMAP_FIELDS.map((f) => f.name))
    const r = runAnalyzer(imapAnalyzer, [...fx('benign_imap_session.s0'), S('z UID FETCH 1 BODY\r\nq LOGIN {1+}\r\na b\r\n'), C('+ go\r\n')])
    for (const p of r.pdus) for (const k of p.fields.keys()) expect(names.has(k)).toBe(true)
  })
})

describe('imap: response fields no rule reads are left out', () => {
  // the server-line fields the analyzer may leave out (every other field is always built)
  const optional = ['imap.line.length', 'imap.continuation.text', 'imap.response.tag', 'imap.response.number', 'imap.response.type', 'imap.response.text', 'imap.response.literal.size']
  const always = IMAP_FIELDS.map((f) => f.name).filter((n) => !optional.includes(n))

  it('same PDUs, anomalies and services with any set of them read, any chunking', () => {
    const scripts = [fx('benign_imap_session.s0'), fx('benign_imap_starttls.s0')]
    fc.assert(
      fc.property(fc.subarray(optional), fc.integer({min: 0, max: scripts.length - 1}), fc.integer({min: 0, max: 40}), (down, k, chunkSize) => {
        // toserver PDUs carry all of their fields (imap.line.length included), and so do TLS's after STARTTLS
        const reads = (name: string, dir?: 'toserver' | 'toclient') => always.includes(name) || dir === 'toserver' || name.startsWith('tls.') || down.includes(name)
        expect(readsMismatches(imapAnalyzer, scripts[k]!, reads, {chunkSize})).toEqual([])
      }),
      {numRuns: fuzzRuns(30)},
    )
  })
})
