import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {bytes, runAnalyzer, type ScriptStep} from '../harness.js'
import {fuzzRuns, loadHexFixture, spanMismatches, splitInvariance} from '../line/testing.js'
import type {FieldValue, Pdu} from '../types.js'
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

  it('STARTTLS + OK stops parsing (TLS bytes produce no PDUs)', () => {
    const r = runAnalyzer(imapAnalyzer, fx('benign_imap_starttls.s0'))
    expect(r.pdus.map((p) => `${p.dir === 'toserver' ? '>' : '<'}${p.kind}`)).toEqual(['<response', '>command', '<response', '<response', '>command', '<response'])
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

  it('LOGIN with literals: user and password spans point at the literal bytes', () => {
    const script = [GREET, S('a LOGIN {4}\r\n'), C('+ go\r\n'), S('f\x00oo {6+}\r\nse"cr\\\r\n')]
    const r = runAnalyzer(imapAnalyzer, script)
    const login = cmds(r)[0]!
    expect(one(login, 'imap.login.user')).toEqual({v: 'f\x00oo', off: 13, len: 4})
    expect(one(login, 'imap.login.password')).toEqual({v: 'se"cr\\', off: 24, len: 6})
    expect(many(login, 'imap.literal').map((v) => v.v)).toEqual(['f\x00oo', 'se"cr\\'])
    expect(one(login, 'imap.command.length').v).toBe(32)
    expect(spanMismatches(r.pdus, script)).toEqual([])
  })

  it('a refused synchronising literal is not read as literal bytes', () => {
    const r = runAnalyzer(imapAnalyzer, [GREET, S('a APPEND box {10}\r\n'), C('a NO too big\r\n'), S('b NOOP\r\n')])
    expect(cmds(r).map((p) => one(p, 'imap.command').v)).toEqual(['APPEND', 'NOOP'])
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

  it('pendingFrom holds a command across its literal', () => {
    const a = new ImapAnalyzer({emit: () => {}, anomaly: () => {}})
    a.data('toserver', bytes('t1 LOGIN {3}\r\nab'))
    expect(a.pendingFrom('toserver')).toBe(0)
    a.data('toserver', bytes('c "pw"\r\n'))
    expect(a.pendingFrom('toserver')).toBe(-1)
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
