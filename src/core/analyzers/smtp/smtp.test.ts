import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {bytes, runAnalyzer, type ScriptStep} from '../harness.js'
import {fuzzRuns, loadHexFixture, spanMismatches, splitInvariance} from '../line/testing.js'
import {readsMismatches} from '../testing.js'
import type {FieldValue, Pdu} from '../types.js'
import {SMTP_FIELDS, SMTP_LIMITS, SmtpAnalyzer, makeSmtpAnalyzer, parsePath, smtpAnalyzer} from './index.js'

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
const GREET = C('220 mx.example ESMTP\r\n')
/** a TLS heartbeat request claiming 16384 bytes and carrying none (RFC 6520; CVE-2014-0160) */
const HEARTBLEED = '\x18\x03\x02\x00\x03\x01\x40\x00'

describe('smtp: fixtures', () => {
  const fixtures = ['benign_smtp_session.s0', 'benign_smtp_session.s2', 'smtp_overlong_command_line.s0']
  for (const name of fixtures) {
    it(`${name}: every split and 1-byte chunks give the same PDUs`, () => {
      const script = fx(name)
      // the 15 KB DATA fixture is cut at every 5th position to keep the suite fast
      expect(splitInvariance(smtpAnalyzer, script, name === 'benign_smtp_session.s0' ? 5 : 1)).toEqual([])
    })
    it(`${name}: every span maps onto the stream bytes`, () => {
      const script = fx(name)
      const r = runAnalyzer(smtpAnalyzer, script)
      expect(r.pdus.length).toBeGreaterThan(4)
      expect(spanMismatches(r.pdus, script)).toEqual([])
    })
  }

  it('benign session: greeting, EHLO, AUTH LOGIN, MAIL/RCPT, DATA headers and end', () => {
    const r = runAnalyzer(smtpAnalyzer, fx('benign_smtp_session.s0'))
    expect(r.anomalies).toEqual([])
    const kinds = r.pdus.map((p) => `${p.dir === 'toserver' ? '>' : '<'}${p.kind}`)
    expect(kinds.slice(0, 8)).toEqual(['<reply', '>command', '<reply', '>command', '<reply', '>auth', '<reply', '>auth'])
    const greet = r.pdus[0]!
    expect(one(greet, 'smtp.reply.code').v).toBe(220)
    expect(many(greet, 'smtp.reply.text').map((t) => t.v)).toEqual([
      'xc90.websitewelcome.com ESMTP Exim 4.69 #1 Mon, 05 Oct 2009 01:05:54 -0500 ',
      'We do not authorize the use of this system to transport unsolicited, ',
      'and/or bulk e-mail.',
    ])
    const ehlo = r.pdus.find((p) => p.kind === 'command' && one(p, 'smtp.command').v === 'EHLO')!
    expect(one(ehlo, 'smtp.helo')).toEqual({v: 'GP', off: 5, len: 2})
    const auths = r.pdus.filter((p) => p.kind === 'auth')
    expect(auths.map((p) => one(p, 'smtp.auth.decoded').v)).toEqual(['gurpartap@patriots.in', 'punjab@123'])
    const mail = r.pdus.find((p) => p.fields.has('smtp.mail_from'))!
    expect(one(mail, 'smtp.mail_from').v).toBe('gurpartap@patriots.in')
    const msg = r.pdus.find((p) => p.kind === 'message')!
    expect(one(msg, 'smtp.data.header_count').v).toBe(12)
    expect(many(msg, 'smtp.data.header.subject').map((v) => v.v)).toEqual(['SMTP'])
    expect(many(msg, 'smtp.data.header.content-type')[0]!.v).toBe('multipart/mixed;\r\n\tboundary="----=_NextPart_000_0004_01CA45B0.095693F0"')
    const end = r.pdus.find((p) => p.kind === 'data_end')!
    expect(one(end, 'smtp.data.length').v).toBe(end.start - msg.start)
    const last = r.pdus.filter((p) => p.dir === 'toclient').at(-2)!
    expect(one(last, 'smtp.reply.command').v).toBe('.')
  })

  it('three RCPT TO are collected on the message PDU', () => {
    const r = runAnalyzer(smtpAnalyzer, fx('benign_smtp_session.s2'))
    const msg = r.pdus.find((p) => p.kind === 'message')!
    expect(many(msg, 'smtp.rcpt_to').map((v) => v.v)).toEqual(['ericlim220@yahoo.com', 'felica4uu@hotmail.com', 'davis_mark1@outlook.com'])
    expect(many(msg, 'smtp.data.header.cc')[0]!.v).toBe('felica4uu@hotmail.com,\r\n davis_mark1@outlook.com')
  })

  it('overlong EHLO (4 KB): length exposed, command_too_long anomaly, framing continues', () => {
    const r = runAnalyzer(smtpAnalyzer, fx('smtp_overlong_command_line.s0'))
    const ehlo = r.pdus.find((p) => p.kind === 'command')!
    expect(one(ehlo, 'smtp.line.length').v).toBe(4095)
    expect(r.anomalies.map((a) => a.event)).toContain('smtp.command_too_long')
    // with a lower line cap the line is cut, still emitted with its length
    const small = runAnalyzer(makeSmtpAnalyzer({maxLineBytes: 1000}), fx('smtp_overlong_command_line.s0'))
    const cut = small.pdus.find((p) => p.kind === 'command')!
    expect(one(cut, 'smtp.line.length').v).toBe(1001)
    expect(one(cut, 'smtp.line')).toMatchObject({off: 0, len: 1000})
    expect(small.anomalies.map((a) => a.event)).toContain('smtp.line_too_long')
    expect(small.pdus.filter((p) => p.kind === 'command').map((p) => one(p, 'smtp.command').v)).toEqual(['EHLO', 'AUTH'])
  })
})

describe('smtp: attacks (hand-written)', () => {
  it('a line pipelined right after AUTH without initial response carries the SASL data fields too', () => {
    const r = runAnalyzer(smtpAnalyzer, [GREET, S('EHLO a\r\n'), C('250 ok\r\n'), S('AUTH CRAM-MD5\r\nQUFBQUFBQ\r\nNOOP\r\n'), C('334 PDEyPg==\r\n501 bad\r\n250 ok\r\n')])
    const cmds = r.pdus.filter((p) => p.kind === 'command')
    expect(cmds.map((p) => one(p, 'smtp.command').v)).toEqual(['EHLO', 'AUTH', 'QUFBQUFBQ', 'NOOP'])
    expect(one(cmds[2]!, 'smtp.auth.data')).toEqual({v: 'QUFBQUFBQ', off: expect.any(Number), len: 9})
    expect(one(cmds[2]!, 'smtp.auth.data.length').v).toBe(9)
    // only the first line after AUTH, and not once the server answered
    expect(cmds[3]!.fields.has('smtp.auth.data')).toBe(false)
    const r2 = runAnalyzer(smtpAnalyzer, [GREET, S('AUTH LOGIN\r\n'), C('334 VXNlcm5hbWU6\r\n'), S('dXNlcg==\r\n'), C('334 UGFzc3dvcmQ6\r\n'), S('cGFzcw==\r\n'), C('235 ok\r\n'), S('MAIL FROM:<a@b>\r\n')])
    expect(r2.pdus.filter((p) => p.kind === 'command').every((p) => !p.fields.has('smtp.auth.data'))).toBe(true)
    expect(r2.pdus.filter((p) => p.kind === 'auth')).toHaveLength(2)
  })

  it('an overlong header line counts whole in smtp.data.header_bytes (bytes past the line cap included), whatever the chunking', () => {
    const headers = `X-A: ${'a'.repeat(3000)}\r\nBoom: ${'B'.repeat(6000)}\r\nSubject: x\r\n\r\n`
    const script = [GREET, S('EHLO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n'), C('250 a\r\n250 b\r\n250 c\r\n354 go\r\n'), S(`${headers}body\r\n.\r\n`)]
    for (const chunkSize of [undefined, 1, 997]) {
      const r = runAnalyzer(smtpAnalyzer, script, {chunkSize})
      const msg = r.pdus.find((p) => p.kind === 'message')!
      expect(one(msg, 'smtp.data.header_bytes').v).toBe(headers.length)
      const end = r.pdus.find((p) => p.kind === 'data_end')!
      expect(one(end, 'smtp.data.header_bytes').v).toBe(headers.length)
    }
  })

  it('BDAT: an overlong header line counts whole in smtp.data.header_bytes', () => {
    const m = `Boom: ${'B'.repeat(9000)}\r\nSubject: x\r\n\r\nbody\r\n`
    const r = runAnalyzer(smtpAnalyzer, [GREET, S('EHLO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n'), C('250 a\r\n250 b\r\n250 c\r\n'), S(`BDAT ${m.length} LAST\r\n${m}`)])
    const msg = r.pdus.find((p) => p.kind === 'message')!
    expect(one(msg, 'smtp.data.header_bytes').v).toBe(m.length - 'body\r\n'.length)
  })

  it('Exim ${run{...}} in RCPT TO: address with exact span', () => {
    const script = [GREET, S('RCPT TO:<${run{/bin/sh -c "id"}}@x>\r\n')]
    const r = runAnalyzer(smtpAnalyzer, script)
    const rcpt = one(r.pdus[1]!, 'smtp.rcpt_to')
    expect(rcpt.v).toBe('${run{/bin/sh -c "id"}}@x')
    expect(spanMismatches(r.pdus, script)).toEqual([])
  })

  it('OpenSMTPD MAIL FROM:<;sleep 66;> with params', () => {
    const script = [GREET, S('MAIL FROM:<;sleep 66;> SIZE=10\r\n')]
    const r = runAnalyzer(smtpAnalyzer, script)
    expect(one(r.pdus[1]!, 'smtp.mail_from')).toEqual({v: ';sleep 66;', off: 11, len: 10})
    expect(one(r.pdus[1]!, 'smtp.mail_from.params').v).toBe('SIZE=10')
  })

  it('quoted local part may contain ">"', () => {
    const line = bytes('FROM:<"a>b"@x> BODY=8BITMIME')
    const p = parsePath(line, 5)
    expect(Buffer.from(line.subarray(p.addrStart, p.addrEnd)).toString()).toBe('"a>b"@x')
    expect(Buffer.from(line.subarray(p.paramsStart, p.paramsEnd)).toString()).toBe('BODY=8BITMIME')
  })

  it('unterminated path is flagged', () => {
    const r = runAnalyzer(smtpAnalyzer, [GREET, S('MAIL FROM:<abc\r\n')])
    expect(r.anomalies.map((a) => a.event)).toEqual(['smtp.invalid_path'])
    expect(one(r.pdus[1]!, 'smtp.mail_from').v).toBe('abc')
  })

  it('crackaddr-style <><><> header is exposed whole', () => {
    const evil = '<>'.repeat(300)
    const script = [GREET, S('MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n'), C('250 ok\r\n250 ok\r\n354 go\r\n'), S(`From: ${evil}\r\nSubject: x\r\n\r\nbody\r\n.\r\n`)]
    const r = runAnalyzer(smtpAnalyzer, script)
    const msg = r.pdus.find((p) => p.kind === 'message')!
    const from = many(msg, 'smtp.data.header.from')[0]!
    expect(from.v).toBe(evil)
    expect(from.len).toBe(600)
    expect(spanMismatches(r.pdus, script)).toEqual([])
  })

  it('AUTH PLAIN with base64 of length 4n+3 (Exim CVE-2018-6789)', () => {
    const b64 = 'QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB' + 'QUF' // 4n+3
    const r = runAnalyzer(smtpAnalyzer, [GREET, S(`AUTH PLAIN ${b64}\r\n`)])
    const cmd = r.pdus[1]!
    expect(one(cmd, 'smtp.auth.mechanism').v).toBe('PLAIN')
    expect(one(cmd, 'smtp.auth.data')).toEqual({v: b64, off: 11, len: b64.length})
    expect((one(cmd, 'smtp.auth.data.length').v as number) % 4).toBe(3)
    expect(one(cmd, 'smtp.auth.base64_invalid').v).toBe(1)
    expect(r.anomalies.map((a) => a.event)).toEqual(['smtp.auth_base64_invalid'])
  })

  it('AUTH LOGIN continuation lines only after 334; pipelined commands stay commands', () => {
    const r = runAnalyzer(smtpAnalyzer, [GREET, S('AUTH LOGIN\r\n'), C('334 VXNlcm5hbWU6\r\n'), S('dXNlcg==\r\n'), C('334 UGFzc3dvcmQ6\r\n'), S('cGFzcw==\r\n'), C('235 ok\r\n'), S('MAIL FROM:<a@b>\r\n')])
    expect(r.pdus.filter((p) => p.dir === 'toserver').map((p) => p.kind)).toEqual(['command', 'auth', 'auth', 'command'])
    expect(one(r.pdus.filter((p) => p.kind === 'auth')[1]!, 'smtp.auth.decoded').v).toBe('pass')
  })

  it('STARTTLS + 220: the lines stop, commands pipelined after STARTTLS are flagged, the TLS layer is read from the next byte', () => {
    // after the 220: a heartbeat request claiming 16384 bytes and carrying none (Heartbleed), and a fatal alert
    const r = runAnalyzer(smtpAnalyzer, [GREET, S('STARTTLS\r\nRSET\r\n'), C('220 go ahead\r\n'), S(HEARTBLEED), C('\x15\x03\x03\x00\x02\x02\x28')])
    expect(r.anomalies.map((a) => a.event)).toEqual(['smtp.starttls_pipelined', 'tls.heartbeat_overflow'])
    expect(r.pdus.map((p) => `${p.protocol} ${p.kind} ${p.start}-${p.end}`)).toEqual([
      'smtp reply 0-22', 'smtp command 0-10', 'smtp command 10-16', 'smtp reply 22-36', 'tls heartbeat 16-24', 'tls record 36-43',
    ])
    expect((r.pdus[4].fields.get('tls.heartbeat.overflow') as {v: unknown} | undefined)?.v).toBe(1)
  })

  it('DATA refused: client stays in command mode', () => {
    const r = runAnalyzer(smtpAnalyzer, [GREET, S('DATA\r\n'), C('503 need MAIL\r\n'), S('QUIT\r\n')])
    expect(r.pdus.filter((p) => p.dir === 'toserver').map((p) => one(p, 'smtp.command').v)).toEqual(['DATA', 'QUIT'])
  })

  it('BDAT chunks are taken by count (no command inside them), sizes reported as bigint', () => {
    const r = runAnalyzer(smtpAnalyzer, [GREET, S('BDAT 12\r\nQUIT\r\nQUIT\r\nBDAT 0 LAST\r\nNOOP\r\n')])
    const cmds = r.pdus.filter((p) => p.dir === 'toserver' && p.kind === 'command')
    expect(cmds.map((p) => one(p, 'smtp.command').v)).toEqual(['BDAT', 'BDAT', 'NOOP'])
    expect(one(cmds[0]!, 'smtp.bdat.size')).toEqual({v: 12n, off: 5, len: 2})
    expect(one(cmds[1]!, 'smtp.bdat.last').v).toBe(1)
    const huge = runAnalyzer(smtpAnalyzer, [GREET, S('BDAT 99999999999999999999\r\nNOOP\r\n')])
    expect(huge.anomalies.map((a) => a.event)[0]).toBe('smtp.bdat_size_overflow')
    // the rest of the stream is the chunk: no command after it (its lines are read as headers)
    expect(huge.pdus.filter((p) => p.dir === 'toserver' && p.kind === 'command').length).toBe(1)
  })

  it('BDAT: the header section is read across chunks and judged per chunk, spans in the stream', () => {
    const hdr = 'From: <a@b>\r\nTo: <c@d>,\r\n\t<e@f>\r\nSubject: hi\r\n\r\nbody line\r\nX-Not: a header\r\n'
    const cut = 20 // inside "To: ..."
    const c1 = hdr.slice(0, cut)
    const c2 = hdr.slice(cut)
    const conv = [GREET, S('MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n'), C('250 ok\r\n250 ok\r\n'),
      S(`BDAT ${c1.length}\r\n${c1}`), C('250 ok\r\n'), S(`BDAT ${c2.length} LAST\r\n${c2}`), C('250 ok\r\n'), S('QUIT\r\n')]
    for (const chunkSize of [undefined, 1, 7]) {
      const r = runAnalyzer(smtpAnalyzer, conv, {chunkSize})
      const msgs = r.pdus.filter((p) => p.kind === 'message')
      expect(msgs.length, String(chunkSize)).toBe(2)
      // first chunk: the complete From line only, marked partial; judged up to the chunk's end
      expect(msgs[0]!.fields.get('smtp.data.partial')).toEqual({v: 1})
      const h0 = msgs[0]!.fields.get('smtp.data.headers')
      expect((Array.isArray(h0) ? h0 : [h0!]).map((h) => h.v)).toEqual(['From: <a@b>'])
      // second: every header (folded To complete), none of the body, and each span is the stream's bytes
      const h1 = msgs[1]!.fields.get('smtp.data.headers')
      const all = Array.isArray(h1) ? h1 : [h1!]
      expect(all.map((h) => h.v)).toEqual(['From: <a@b>', 'To: <c@d>,\r\n\t<e@f>', 'Subject: hi'])
      const stream = Buffer.concat(conv.filter((x) => x.dir === 'toserver').map((x) => Buffer.from(x.data))).toString('latin1')
      // To: is cut by the chunk boundary (the next BDAT line lies between its halves): no span
      expect(all[1]!.off).toBeUndefined()
      for (const h of [all[0]!, all[2]!]) expect(stream.slice(h.off!, h.off! + h.len!)).toBe(h.v)
      expect(msgs[1]!.fields.get('smtp.data.header_count')).toEqual({v: 3})
      // each unit covers its own chunk
      expect(stream.slice(msgs[0]!.start, msgs[0]!.end)).toBe(c1)
      expect(stream.slice(msgs[1]!.start, msgs[1]!.start + 10)).toBe(c2.slice(0, 10))
      expect(r.pdus.filter((p) => p.kind === 'command').map((p) => (p.fields.get('smtp.command') as {v: string}).v)).toEqual(['MAIL', 'RCPT', 'BDAT', 'BDAT', 'QUIT'])
    }
  })

  it('BDAT: chunk bytes are held only while their header lines are unjudged, and a new MAIL starts over', () => {
    const a = new SmtpAnalyzer({emit: () => {}, anomaly: () => {}})
    a.data('toclient', bytes('220 mx\r\n'))
    a.data('toserver', bytes('MAIL FROM:<a@b>\r\nBDAT 30\r\nSubject: one\r\nX: t'))
    const start = 'MAIL FROM:<a@b>\r\nBDAT 30\r\n'.length
    expect(a.pendingFrom('toserver')).toBe(start)
    a.data('toserver', bytes('wo\r\nY: three\r\n'))
    // the chunk is complete: judged, nothing held while the client waits for the reply
    expect(a.pendingFrom('toserver')).toBe(-1)
  })

  it('header section cap: message emitted early, truncated, anomaly', () => {
    const lim = makeSmtpAnalyzer({maxHeaderBytes: 200})
    const hdrs = Array.from({length: 20}, (_, i) => `X-H${i}: ${'v'.repeat(20)}\r\n`).join('')
    const r = runAnalyzer(lim, [GREET, S('DATA\r\n'), C('354 go\r\n'), S(`${hdrs}\r\nbody\r\n.\r\n`)])
    const msg = r.pdus.find((p) => p.kind === 'message')!
    expect(one(msg, 'smtp.data.truncated').v).toBe(1)
    expect(r.anomalies.map((a) => a.event)).toContain('smtp.data.headers_too_long')
    expect(r.pdus.filter((p) => p.kind === 'data_end').length).toBe(1)
  })

  it('multi-line reply held until its last line; pendingFrom points at it', () => {
    const a = new SmtpAnalyzer({emit: () => {}, anomaly: () => {}})
    a.data('toclient', bytes('250-one\r\n250-two\r\n'))
    expect(a.pendingFrom('toclient')).toBe(0)
    a.data('toclient', bytes('250 three\r\n'))
    expect(a.pendingFrom('toclient')).toBe(-1)
    a.data('toserver', bytes('MAIL FROM:<a'))
    expect(a.pendingFrom('toserver')).toBe(0)
  })

  it('pendingFrom in DATA: the header section is pending; in the body only a partial line that may become "."', () => {
    const a = new SmtpAnalyzer({emit: () => {}, anomaly: () => {}})
    let at = 0
    const send = (s: string): void => {
      a.data('toserver', bytes(s))
      at += s.length
    }
    a.data('toclient', bytes('220 mx ESMTP\r\n'))
    send('DATA\r\n')
    a.data('toclient', bytes('354 go\r\n'))
    const dataStart = at
    send('Subject: hi\r\nFrom: a')
    expect(a.pendingFrom('toserver')).toBe(dataStart)
    send('@b\r\n\r\nbody line one\r\nand a partial li')
    expect(a.pendingFrom('toserver')).toBe(-1)
    send('ne\r\n..dot-stuffed')
    expect(a.pendingFrom('toserver')).toBe(-1)
    send('\r\n.')
    expect(a.pendingFrom('toserver')).toBe(at - 1)
    send('\r')
    expect(a.pendingFrom('toserver')).toBe(at - 2)
    send('\nRCPT TO:<x')
    // the terminator's line completed data_end; the command after it is a unit again
    expect(a.pendingFrom('toserver')).toBe(at - 'RCPT TO:<x'.length)
  })

  it('malformed reply lines and a reply cut by end of stream are flagged', () => {
    const r = runAnalyzer(smtpAnalyzer, [C('hello\r\n250-a\r\n')])
    expect(r.anomalies.map((a) => a.event)).toEqual(['smtp.invalid_reply', 'smtp.reply_unterminated'])
    expect(r.pdus.length).toBe(2)
  })

  it('gap inside DATA headers emits the message truncated', () => {
    const events: string[] = []
    const a = smtpAnalyzer.create({emit: (p) => events.push(p.kind), anomaly: (x) => events.push(x.event)})
    a.data('toclient', bytes('354 go\r\n'))
    a.data('toserver', bytes('DATA\r\nSubject: x\r\n'))
    a.gap('toserver', 100)
    a.data('toserver', bytes('junk\r\n.\r\n'))
    expect(events).toEqual(['reply', 'command', 'smtp.gap', 'message', 'data_end'])
  })
})

describe('smtp: fuzz', () => {
  it('random and mutated input never throws and stays bounded', () => {
    const base = [fx('benign_smtp_session.s2'), fx('smtp_overlong_command_line.s0')]
    const limits = {...SMTP_LIMITS, maxLineBytes: 256, maxHeaderBytes: 1024, maxHeaders: 8, maxPipeline: 8, maxReplyLines: 8}
    const steps = fc.array(
      fc.record({
        dir: fc.constantFrom<'toserver' | 'toclient'>('toserver', 'toclient'),
        data: fc.oneof(
          fc.uint8Array({maxLength: 300}),
          fc.array(fc.constantFrom('MAIL FROM:<', 'RCPT TO:', 'DATA', 'BDAT 5', 'AUTH LOGIN', '334 x', '250-', '354 ', '.', '\r\n', '\n', 'STARTTLS', '220 ', 'a: b', ' c'), {maxLength: 30}).map((a) => bytes(a.join(''))),
        ),
      }),
      {maxLength: 12},
    )
    fc.assert(
      fc.property(fc.nat(1), steps, fc.nat(), fc.integer({min: 7, max: 700}), (which, extra, seed, chunk) => {
        const fixture = base[which]!
        const mutated = fixture.map((s, i) => {
          if (i % 3 !== seed % 3) return s
          const d = Uint8Array.from(s.data)
          if (d.length > 0) d[seed % d.length] = seed & 0xff
          return {dir: s.dir, data: d}
        })
        const a = new SmtpAnalyzer({emit: () => {}, anomaly: () => {}}, limits)
        let worst = 0
        for (const s of [...mutated.slice(0, 4), ...extra, ...mutated.slice(4)]) {
          for (let i = 0; i < s.data.length; i += chunk) a.data(s.dir, s.data.subarray(i, i + chunk))
          const h = a.heldState()
          if (h.clientLine! > limits.maxLineBytes + 1 || h.serverLine! > limits.maxLineBytes + 1) worst = 1
          if (h.queue! > limits.maxPipeline || h.headers! > limits.maxHeaders || h.replyLines! > limits.maxReplyLines) worst = 2
          if (h.headerBytes! > limits.maxHeaderBytes + limits.maxLineBytes + 2) worst = 3
        }
        expect(worst).toBe(0)
        a.end('toserver')
        a.end('toclient')
      }),
      {numRuns: fuzzRuns(10_000)},
    )
  })
})

describe('smtp: detect and fields', () => {
  it('detects SMTP greetings and EHLO, not FTP or HTTP', () => {
    expect(smtpAnalyzer.detect('toclient', fx('benign_smtp_session.s0')[0]!.data.subarray(0, 64))).toBe(true)
    expect(smtpAnalyzer.detect('toclient', fx('smtp_overlong_command_line.s0')[0]!.data.subarray(0, 64))).toBe(true)
    expect(smtpAnalyzer.detect('toserver', bytes('EHLO GP\r\n'))).toBe(true)
    expect(smtpAnalyzer.detect('toclient', bytes('220 ProFTPD 1.3.0a Server\r\n'))).toBe(false)
    expect(smtpAnalyzer.detect('toserver', bytes('GET / HTTP/1.1\r\n'))).toBe(false)
    expect(smtpAnalyzer.detect('toclient', bytes('22'))).toBe(false)
  })

  it('every emitted field is documented', () => {
    const names = new Set(SMTP_FIELDS.map((f) => f.name))
    const r = runAnalyzer(smtpAnalyzer, [...fx('benign_smtp_session.s0'), S('BDAT 1 LAST\r\nx'), S('VRFY a\r\nEXPN b\r\n')])
    for (const p of r.pdus) {
      for (const k of p.fields.keys()) expect(names.has(k) || names.has(k.replace(/^smtp\.data\.header\..*/, 'smtp.data.header.<name>'))).toBe(true)
    }
  })
})

describe('smtp: reply fields no rule reads are left out', () => {
  // the reply fields the analyzer may leave out (every other field is always built)
  const optional = ['smtp.reply.text', 'smtp.reply.line_count', 'smtp.reply.truncated', 'smtp.greeting']
  const always = SMTP_FIELDS.map((f) => f.name).filter((n) => !optional.includes(n))
  // a family (smtp.data.header.<name>) stands for each of its members
  const built = (name: string) => always.some((a) => a === name || (a.endsWith('>') && name.startsWith(a.slice(0, a.indexOf('<')))))

  it('same PDUs, anomalies and services with any set of them read, any chunking', () => {
    const scripts = [fx('benign_smtp_session.s2'), fx('smtp_overlong_command_line.s0'), [GREET, S('EHLO x\r\n'), C('250-a\r\n250-b\r\n250 c\r\n'), S('QUIT\r\n'), C('221-bye\r\n')]]
    fc.assert(
      fc.property(fc.subarray(optional), fc.integer({min: 0, max: scripts.length - 1}), fc.integer({min: 0, max: 40}), (down, k, chunkSize) => {
        const reads = (name: string, dir?: 'toserver' | 'toclient') => built(name) || (dir === 'toclient' && down.includes(name))
        expect(readsMismatches(smtpAnalyzer, scripts[k]!, reads, {chunkSize})).toEqual([])
      }),
      {numRuns: fuzzRuns(30)},
    )
  })
})
