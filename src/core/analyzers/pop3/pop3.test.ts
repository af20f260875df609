import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {bytes, runAnalyzer, type ScriptStep} from '../harness.js'
import {fuzzRuns, spanMismatches, splitInvariance} from '../line/testing.js'
import type {FieldValue, Pdu} from '../types.js'
import {POP3_FIELDS, POP3_LIMITS, Pop3Analyzer, isMultiLine, parseStatus, pop3Analyzer} from './index.js'

const one = (p: Pdu, name: string): FieldValue => {
  const v = p.fields.get(name)
  if (v === undefined || Array.isArray(v)) throw new Error(`${name}: ${JSON.stringify(v)}`)
  return v
}
const S = (s: string): ScriptStep => ({dir: 'toserver', data: bytes(s)})
const C = (s: string): ScriptStep => ({dir: 'toclient', data: bytes(s)})

/** hand-written session (no POP3 capture in the corpus): RFC 1939 section 10 example plus CAPA, pipelining, AUTH */
const SESSION: ScriptStep[] = [
  C('+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n'),
  S('CAPA\r\n'),
  C('+OK Capability list follows\r\nTOP\r\nUSER\r\nSASL PLAIN\r\nPIPELINING\r\n.\r\n'),
  S('USER mrose\r\n'),
  C('+OK mrose is a real hoopy frood\r\n'),
  S('PASS tanstaaf\r\n'),
  C('+OK mrose\'s maildrop has 2 messages (320 octets)\r\n'),
  S('STAT\r\nLIST\r\n'),
  C('+OK 2 320\r\n+OK 2 messages (320 octets)\r\n1 120\r\n2 200\r\n.\r\n'),
  S('RETR 1\r\n'),
  C('+OK 120 octets\r\nSubject: hi\r\n\r\n..dot-stuffed\r\n+OK inside the body\r\n.\r\n'),
  S('DELE 1\r\n'),
  C('+OK message 1 deleted\r\n'),
  S('AUTH PLAIN\r\n'),
  C('+ \r\n'),
  S('AG1yb3NlAHRhbnN0YWFm\r\n'),
  C('-ERR already authenticated\r\n'),
  S('QUIT\r\n'),
  C('+OK dewey POP3 server signing off (maildrop empty)\r\n'),
]

describe('pop3: session', () => {
  it('every split and 1-byte chunks give the same PDUs', () => {
    expect(splitInvariance(pop3Analyzer, SESSION)).toEqual([])
  })

  it('spans map onto the stream bytes', () => {
    const r = runAnalyzer(pop3Analyzer, SESSION)
    expect(spanMismatches(r.pdus, SESSION)).toEqual([])
  })

  it('commands, replies, multi-line bodies skipped (not mistaken for replies), AUTH continuation', () => {
    const r = runAnalyzer(pop3Analyzer, SESSION)
    expect(r.anomalies).toEqual([])
    const toS = r.pdus.filter((p) => p.dir === 'toserver')
    expect(toS.map((p) => (p.kind === 'auth' ? 'auth' : one(p, 'pop3.command').v))).toEqual(['CAPA', 'USER', 'PASS', 'STAT', 'LIST', 'RETR', 'DELE', 'AUTH', 'auth', 'QUIT'])
    expect(one(toS[1]!, 'pop3.user')).toEqual({v: 'mrose', off: 11, len: 5})
    expect(one(toS[2]!, 'pop3.pass').v).toBe('tanstaaf')
    const replies = r.pdus.filter((p) => p.dir === 'toclient' && p.kind === 'reply')
    expect(replies.map((p) => p.fields.has('pop3.reply.command') ? one(p, 'pop3.reply.command').v : 'greeting')).toEqual(['greeting', 'CAPA', 'USER', 'PASS', 'STAT', 'LIST', 'RETR', 'DELE', 'AUTH', 'QUIT'])
    expect(replies.filter((p) => p.fields.has('pop3.reply.multiline')).length).toBe(3)
    expect(one(replies.at(-2)!, 'pop3.reply.status').v).toBe('-ERR')
    expect(r.pdus.filter((p) => p.kind === 'continuation').length).toBe(1)
    expect(one(toS[8]!, 'pop3.auth.data').v).toBe('AG1yb3NlAHRhbnN0YWFm')
  })

  it('STLS + +OK: the lines stop, the TLS layer is read from the next byte (Heartbleed after STLS)', () => {
    const r = runAnalyzer(pop3Analyzer, [C('+OK hi\r\n'), S('STLS\r\n'), C('+OK begin TLS\r\n'), S('\x18\x03\x02\x00\x03\x01\x40\x00')])
    expect(r.pdus.map((p) => `${p.protocol} ${p.kind} ${p.start}-${p.end}`)).toEqual(['pop3 reply 0-8', 'pop3 command 0-6', 'pop3 reply 8-23', 'tls heartbeat 6-14'])
    expect((r.pdus[3].fields.get('tls.heartbeat.overflow') as {v: unknown} | undefined)?.v).toBe(1)
  })
})

describe('pop3: attacks (hand-written)', () => {
  it('overlong USER: emitted with its length and the first maxLineBytes bytes; anomalies', () => {
    const name = 'A'.repeat(5000)
    const script = [C('+OK hi\r\n'), S(`USER ${name}\r\nPASS x\r\n`)]
    const r = runAnalyzer(pop3Analyzer, script)
    const user = r.pdus[1]!
    expect(one(user, 'pop3.line.length').v).toBe(POP3_LIMITS.maxLineBytes + 1)
    expect(one(user, 'pop3.user')).toMatchObject({off: 5, len: POP3_LIMITS.maxLineBytes - 5})
    expect(r.anomalies.map((a) => a.event)).toEqual(['pop3.line_too_long', 'pop3.command_too_long'])
    expect(one(r.pdus[2]!, 'pop3.command').v).toBe('PASS')
    expect(spanMismatches(r.pdus, script)).toEqual([])
  })

  it('a USER longer than the RFC 2449 limit but under the cap is whole, with command_too_long', () => {
    const r = runAnalyzer(pop3Analyzer, [C('+OK hi\r\n'), S(`USER ${'b'.repeat(300)}\r\n`)])
    expect(one(r.pdus[1]!, 'pop3.user').v).toBe('b'.repeat(300))
    expect(r.anomalies.map((a) => a.event)).toEqual(['pop3.command_too_long'])
  })

  it('garbage reply is flagged', () => {
    const r = runAnalyzer(pop3Analyzer, [C('HELLO\r\n')])
    expect(r.anomalies.map((a) => a.event)).toEqual(['pop3.invalid_reply'])
  })

  it('parsers', () => {
    expect(parseStatus(bytes('+OK')).kind).toBe('ok')
    expect(parseStatus(bytes('-ERR no')).kind).toBe('err')
    expect(parseStatus(bytes('+ abc')).kind).toBe('continue')
    expect(parseStatus(bytes('+OKAY')).kind).toBe('other')
    expect(isMultiLine('LIST', false)).toBe(true)
    expect(isMultiLine('LIST', true)).toBe(false)
  })
})

describe('pop3: fuzz', () => {
  it('random and mutated input never throws and stays bounded', () => {
    const limits = {...POP3_LIMITS, maxLineBytes: 128, maxPipeline: 8}
    const steps = fc.array(
      fc.record({
        dir: fc.constantFrom<'toserver' | 'toclient'>('toserver', 'toclient'),
        data: fc.oneof(
          fc.uint8Array({maxLength: 300}),
          fc.array(fc.constantFrom('+OK', '-ERR', '+ ', '.', 'RETR 1', 'LIST', 'AUTH X', 'STLS', 'USER ', '\r\n', '\n', 'zz'), {maxLength: 30}).map((a) => bytes(a.join(''))),
        ),
      }),
      {maxLength: 12},
    )
    fc.assert(
      fc.property(steps, fc.nat(), fc.integer({min: 3, max: 300}), (extra, seed, chunk) => {
        const mutated = SESSION.map((s, i) => {
          if (i % 3 !== seed % 3) return s
          const d = Uint8Array.from(s.data)
          if (d.length > 0) d[seed % d.length] = seed & 0xff
          return {dir: s.dir, data: d}
        })
        const a = new Pop3Analyzer({emit: () => {}, anomaly: () => {}}, limits)
        let worst = 0
        for (const s of [...mutated.slice(0, 5), ...extra, ...mutated.slice(5)]) {
          for (let i = 0; i < s.data.length; i += chunk) a.data(s.dir, s.data.subarray(i, i + chunk))
          const h = a.heldState()
          if (h.clientLine! > limits.maxLineBytes + 1 || h.serverLine! > limits.maxLineBytes + 1 || h.queue! > limits.maxPipeline) worst = 1
        }
        a.end('toserver')
        a.end('toclient')
        expect(worst).toBe(0)
      }),
      {numRuns: fuzzRuns(10_000)},
    )
  })
})

describe('pop3: detect and fields', () => {
  it('detects the +OK greeting only', () => {
    expect(pop3Analyzer.detect('toclient', SESSION[0]!.data.subarray(0, 64))).toBe(true)
    expect(pop3Analyzer.detect('toclient', bytes('* OK IMAP\r\n'))).toBe(false)
    expect(pop3Analyzer.detect('toserver', bytes('+OK '))).toBe(false)
  })

  it('every emitted field is documented', () => {
    const names = new Set(POP3_FIELDS.map((f) => f.name))
    const r = runAnalyzer(pop3Analyzer, [...SESSION, S('APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n')])
    for (const p of r.pdus) for (const k of p.fields.keys()) expect(names.has(k)).toBe(true)
  })
})
