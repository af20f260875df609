/**
 * The SMTP / IMAP / POP3 / FTP rule pack (rules/smtp, rules/imap, rules/ftp): the rules lint
 * clean, pass their own samples, and - with EXTRA variants that are not in the samples (other
 * encodings, case, whitespace, splitting, pipelining) - the right rule fires through the real
 * analyzer and the engine, while near misses stay quiet. Also checked against the real captures.
 */
import {existsSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {runAnalyzer, type ScriptStep} from '../../src/core/analyzers/harness.js'
import {factoryFor} from '../../src/core/analyzers/registry.js'
import type {Direction} from '../../src/core/analyzers/types.js'
import {runReplay} from '../../src/core/engine/replay-run.js'
import {fieldsFor} from '../../src/core/rules/fields.js'
import {loadRules, RuleSet} from '../../src/core/rules/engine.js'
import {testRule} from '../../src/core/rules/sample-test.js'

const RULE_DIRS = ['smtp', 'imap', 'ftp'].map((d) => fileURLToPath(new URL(`../../rules/${d}/`, import.meta.url)))
const PCAPS = fileURLToPath(new URL('../../../shared/corpus/pcaps/', import.meta.url))
const FUZZ_RUNS = Number(process.env.PATCHPOINT_FUZZ_RUNS ?? 50)

const {rules, errors} = loadRules(RULE_DIRS, {fieldsFor})
const set = new RuleSet(rules, {actionFor: () => 'fix'})

type Step = [Direction, string]

const c = (s: string): Step => ['toclient', s]
const s = (s: string): Step => ['toserver', s]

function script(steps: readonly Step[]): ScriptStep[] {
  return steps.map(([dir, text]) => ({dir, data: new Uint8Array(Buffer.from(text, 'latin1'))}))
}

/** ids of the rules of this pack that fire on the conversation */
function fired(protocol: string, steps: readonly Step[], chunkSize?: number): string[] {
  const factory = factoryFor(protocol)
  if (factory === undefined) throw new Error(`no analyzer for ${protocol}`)
  const res = runAnalyzer(factory, script(steps), {chunkSize})
  const ids = new Set<string>()
  for (const pdu of res.pdus) for (const m of set.evaluate(pdu)) ids.add(m.rule.id)
  return [...ids].sort()
}

const SMTP_GREET: Step[] = [c('220 mx.example.org ESMTP\r\n'), s('EHLO client.example.net\r\n'), c('250 mx.example.org\r\n')]
/** an SMTP transaction whose header section is `headers` */
function smtpMessage(headers: string): Step[] {
  return [
    ...SMTP_GREET,
    s('MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n'),
    c('250 ok\r\n250 ok\r\n354 go\r\n'),
    s(`${headers}\r\nbody\r\n.\r\n`),
    c('250 queued\r\n'),
  ]
}
const FTP_LOGIN: Step[] = [c('220 ready\r\n'), s('USER joe\r\n'), c('331 pw\r\n'), s('PASS pw\r\n'), c('230 in\r\n')]
const IMAP_GREET: Step[] = [c('* OK IMAP4rev1 ready\r\n')]

interface Case {
  name: string
  protocol: string
  steps: Step[]
  /** exactly the rules of this pack that must fire ([] = none) */
  expect: string[]
}

const cases: Case[] = [
  // ---- Sendmail crackaddr
  {name: 'crackaddr: <> runs with blanks and commas in To', protocol: 'smtp', steps: smtpMessage('To: < > ,< > ,<  >, <>,<>\r\n'), expect: ['PP-2002-1337']},
  {name: 'crackaddr: RESENT-FROM upper case, unbalanced >', protocol: 'smtp', steps: smtpMessage('RESENT-FROM: a@b> c\r\n'), expect: ['PP-2002-1337']},
  {name: 'crackaddr: nested < in Sender', protocol: 'smtp', steps: smtpMessage('Sender: <a<b@example.org>\r\n'), expect: ['PP-2002-1337']},
  {name: 'crackaddr: quoted > is fine', protocol: 'smtp', steps: smtpMessage('From: "a > b" <a@example.org>\r\n'), expect: []},
  {name: 'crackaddr: brackets in Subject are not an address', protocol: 'smtp', steps: smtpMessage('Subject: >>>> ))) <><><><><>\r\n'), expect: []},
  // ---- Sendmail prescan
  {name: 'prescan: 0xFF in RCPT TO, pipelined', protocol: 'smtp', steps: [...SMTP_GREET, s('MAIL FROM:<>\r\nRCPT TO:<\xff\xff@example.org>\r\nRSET\r\n')], expect: ['PP-2003-0161']},
  {name: 'prescan: 0xFF in a folded Cc', protocol: 'smtp', steps: smtpMessage('Cc: a@example.org,\r\n b\xff@example.org\r\n'), expect: ['PP-2003-0161']},
  {name: 'prescan: 256-byte path is legal', protocol: 'smtp', steps: [...SMTP_GREET, s(`MAIL FROM:<${'a'.repeat(244)}@example.org>\r\n`)], expect: []},
  // ---- Exim CVE-2019-10149
  {name: 'exim wizard: ${run in a quoted local part', protocol: 'smtp', steps: [...SMTP_GREET, s('MAIL FROM:<>\r\nRCPT TO:<"${run{/bin/id}}"@localhost>\r\n')], expect: ['PP-2019-10149']},
  {name: 'exim wizard: upper-case \\X24 escape', protocol: 'smtp', steps: [...SMTP_GREET, s('MAIL FROM:<>\r\nRcPt To:<\\X24{RUN{\\x2fbin\\x2fid}}@localhost>\r\n')], expect: ['PP-2019-10149']},
  {name: 'exim wizard: ${ in MAIL FROM is not the recipient', protocol: 'smtp', steps: [...SMTP_GREET, s('MAIL FROM:<${x}@example.net>\r\n')], expect: []},
  // ---- OpenSMTPD CVE-2020-7247
  {name: 'opensmtpd: backticks and tab, no domain', protocol: 'smtp', steps: [...SMTP_GREET, s('MAIL FROM:<x;\tid>\r\n')], expect: ['PP-2020-7247']},
  {name: 'opensmtpd: quoted local part without domain', protocol: 'smtp', steps: [...SMTP_GREET, s('MAIL FROM:<"a b">\r\n')], expect: ['PP-2020-7247']},
  {name: 'opensmtpd: same characters with a domain', protocol: 'smtp', steps: [...SMTP_GREET, s('MAIL FROM:<x;id@example.net>\r\n')], expect: []},
  {name: 'opensmtpd: RCPT without domain is not MAIL', protocol: 'smtp', steps: [...SMTP_GREET, s('MAIL FROM:<>\r\nRCPT TO:<;id;>\r\n')], expect: []},
  // ---- Exim CVE-2018-6789
  {name: 'exim b64: LOGIN continuation of 7 chars', protocol: 'smtp', steps: [...SMTP_GREET, s('AUTH LOGIN\r\n'), c('334 VXNlcm5hbWU6\r\n'), s('AAAAAAA\r\n')], expect: ['PP-2018-6789']},
  {name: 'exim b64: 4n+2 is not the off-by-one', protocol: 'smtp', steps: [...SMTP_GREET, s('AUTH LOGIN\r\n'), c('334 VXNlcm5hbWU6\r\n'), s('AAAAAA\r\n')], expect: []},
  // ---- Exim CVE-2010-4344
  {name: 'exim string_format: header section over 64 KB of short lines', protocol: 'smtp', steps: smtpMessage(`${'X-Filler: 0123456789012345678901234567890123456789\r\n'.repeat(1400)}`), expect: ['PP-2010-4344']},
  {name: 'exim string_format: 300 tiny header fields stay under the log buffer', protocol: 'smtp', steps: smtpMessage('A: b\r\n'.repeat(300)), expect: []},
  {name: 'exim string_format: 1200-byte line after 9 KB of folded headers', protocol: 'smtp', steps: smtpMessage(`${'Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n'.repeat(60)}References: ${'<12345678.abcdefgh@lists.example.org>\r\n '.repeat(150)}x\r\nX-Long: ${'L'.repeat(1200)}\r\n`), expect: ['PP-2010-4344']},
  {name: 'exim string_format: 9 KB of folded headers with a 900-byte line is legal', protocol: 'smtp', steps: smtpMessage(`${'Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n'.repeat(60)}References: ${'<12345678.abcdefgh@lists.example.org>\r\n '.repeat(150)}x\r\nX-Long: ${'L'.repeat(900)}\r\n`), expect: []},
  {name: 'exim string_format: 998-byte header line is legal', protocol: 'smtp', steps: smtpMessage(`Subject: ${'s'.repeat(989)}\r\n`), expect: []},
  // ---- overlong SMTP lines / VRFY
  {name: 'smtp long line: RCPT TO of 600 bytes also trips prescan', protocol: 'smtp', steps: [...SMTP_GREET, s(`MAIL FROM:<>\r\nRCPT TO:<${'r'.repeat(600)}@x>\r\n`)], expect: ['PP-2003-0161', 'PP-SMTP-LONG-COMMAND']},
  {name: 'smtp long line: 510 bytes exactly is allowed', protocol: 'smtp', steps: [...SMTP_GREET, s(`NOOP ${'n'.repeat(505)}\r\n`)], expect: []},
  {name: 'mailenable vrfy: 257-byte VRFY with tabs', protocol: 'smtp', steps: [...SMTP_GREET, s(`VRFY\t${'v'.repeat(257)}\r\n`)], expect: ['PP-2008-1275']},
  // ---- IMAP
  {name: 'imap login: 257-byte user as a synchronizing literal', protocol: 'imap', steps: [...IMAP_GREET, s('a LOGIN {257}\r\n'), c('+ ok\r\n'), s(`${'u'.repeat(257)} pw\r\n`)], expect: ['PP-2008-1276']},
  {name: 'imap login: 1024-byte password is allowed', protocol: 'imap', steps: [...IMAP_GREET, s(`a LOGIN joe "${'p'.repeat(1024)}"\r\n`)], expect: []},
  {name: 'imap fetch: UID FETCH with a 1100-byte BINARY section', protocol: 'imap', steps: [...IMAP_GREET, s(`a UID FETCH 1 (BINARY.PEEK[${'1.'.repeat(550)}])\r\n`)], expect: ['PP-IMAP-LONG-FETCH']},
  {name: 'imap literal: APPEND with a 2^31 LITERAL+ split over packets', protocol: 'imap', steps: [...IMAP_GREET, s('a APPEND INBOX {21474'), s('83648+}\r\n')], expect: ['PP-IMAP-LITERAL-OVERFLOW']},
  {name: 'imap literal: 2^31-1 is below the bound', protocol: 'imap', steps: [...IMAP_GREET, s('a APPEND INBOX {2147483647}\r\n')], expect: []},
  {name: 'imap authenticate: overlong XOAUTH2 SASL-IR', protocol: 'imap', steps: [...IMAP_GREET, s(`a AUTHENTICATE XOAUTH2 ${'dXNlcj1'.repeat(1400)}\r\n`)], expect: ['PP-IMAP-LONG-AUTHENTICATE']},
  {name: 'imap authenticate: overlong response pipelined ahead of the +', protocol: 'imap', steps: [...IMAP_GREET, s(`a AUTHENTICATE PLAIN\r\n${'QUFB'.repeat(2500)}\r\n`), c('+ \r\na NO failed\r\n')], expect: ['PP-IMAP-LONG-AUTHENTICATE']},
  {name: 'imap authenticate: a short response pipelined ahead of the +, then a normal session', protocol: 'imap', steps: [...IMAP_GREET, s('a AUTHENTICATE PLAIN\r\nAGpvZQBzZWNyZXQ=\r\n'), c('+ \r\na OK done\r\n'), s('b SELECT INBOX\r\n'), c('b OK selected\r\n')], expect: []},
  {name: 'imap: long SEARCH is none of these', protocol: 'imap', steps: [...IMAP_GREET, s(`a SEARCH TEXT "${'w'.repeat(3000)}"\r\n`)], expect: []},
  // ---- POP3
  {name: 'pop3: PASS of 254 bytes', protocol: 'pop3', steps: [c('+OK ready\r\n'), s('USER joe\r\n'), c('+OK\r\n'), s(`PASS ${'p'.repeat(249)}\r\n`)], expect: ['PP-POP3-LONG-LOGIN']},
  {name: 'pop3: long TOP argument is not a login', protocol: 'pop3', steps: [c('+OK ready\r\n'), s(`TOP 1 ${'9'.repeat(300)}\r\n`)], expect: []},
  // ---- FTP
  {name: 'vsftpd backdoor: smiley after the name, tab separator', protocol: 'ftp', steps: [c('220 (vsFTPd 2.3.4)\r\n'), s('USER\troot:)\r\n')], expect: ['PP-2011-2523']},
  {name: 'vsftpd backdoor: ":)" in PASS only', protocol: 'ftp', steps: [c('220 (vsFTPd 2.3.4)\r\n'), s('USER joe\r\n'), c('331 pw\r\n'), s('PASS :)\r\n')], expect: []},
  {name: 'mod_copy: CPTO alone before login, mixed case', protocol: 'ftp', steps: [c('220 ProFTPD\r\n'), s('SiTe CpTo /tmp/x\r\n')], expect: ['PP-2015-3306']},
  {name: 'mod_copy: after REIN the session is logged out', protocol: 'ftp', steps: [...FTP_LOGIN, s('REIN\r\n'), c('220 ok\r\n'), s('SITE CPFR /etc/shadow\r\n')], expect: ['PP-2015-3306']},
  {name: 'proftpd iac: three IACs in a short line', protocol: 'ftp', steps: [c('220 ProFTPD\r\n'), s('NOOP \xff\xff\xff\r\n')], expect: ['PP-2010-4221']},
  {name: 'wu-ftpd: %p and %hhn conversions with spaces', protocol: 'ftp', steps: [...FTP_LOGIN, s('SITE  EXEC  a %p b %hhn\r\n')], expect: ['PP-2000-0573']},
  {name: 'wu-ftpd: %% is not a conversion', protocol: 'ftp', steps: [...FTP_LOGIN, s('SITE EXEC echo 50%% done\r\n')], expect: []},
  {name: 'ftp bounce: EPRT to an IPv6 host', protocol: 'ftp', steps: [...FTP_LOGIN, s('EPRT |2|2001:db8::7|80|\r\n')], expect: ['PP-FTP-BOUNCE']},
  {name: 'ftp long: 513-byte line', protocol: 'ftp', steps: [...FTP_LOGIN, s(`DELE ${'d'.repeat(508)}\r\n`)], expect: ['PP-FTP-LONG-COMMAND']},
  {name: 'vsftpd cwd: 1025-byte CWD also trips the long line rule', protocol: 'ftp', steps: [...FTP_LOGIN, s(`cwd ${'/x'.repeat(513)}\r\n`)], expect: ['PP-2007-5962', 'PP-FTP-LONG-COMMAND']},
  // RFC 3030 BDAT instead of DATA: the header section arrives in counted chunks
  {name: 'crackaddr: in a BDAT LAST chunk', protocol: 'smtp', steps: [...SMTP_GREET, s('MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n'), c('250 ok\r\n250 ok\r\n'),
    s(`BDAT 146 LAST\r\nTo: ${'<>'.repeat(60)}\r\nSubject: x\r\n\r\nbody\r\n`)], expect: ['PP-2002-1337']},
  {name: 'crackaddr: the header cut by a BDAT chunk boundary', protocol: 'smtp', steps: [...SMTP_GREET, s('MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n'), c('250 ok\r\n250 ok\r\n'),
    s(`BDAT 50\r\nTo: ${'<>'.repeat(23)}`), c('250 ok\r\n'), s(`BDAT 96 LAST\r\n${'<>'.repeat(37)}\r\nSubject: x\r\n\r\nbody\r\n`)], expect: ['PP-2002-1337']},
  {name: 'BDAT: an ordinary message in chunks', protocol: 'smtp', steps: [...SMTP_GREET, s('MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n'), c('250 ok\r\n250 ok\r\n'),
    s('BDAT 30\r\nFrom: <a@example.net>\r\nTo: <b@'), c('250 ok\r\n'), s('BDAT 36 LAST\r\nexample.org>\r\nSubject: hi\r\n\r\nhello\r\n')], expect: []},
  // Telnet commands inside a command line are removed by the server before it parses the line
  {name: 'mod_copy: Telnet IP and AYT inside SITE', protocol: 'ftp', steps: [c('220 ProFTPD\r\n'), s('SI\xff\xf4TE CP\xff\xf6FR /etc/passwd\r\n')], expect: ['PP-2015-3306']},
  {name: 'wu-ftpd: IAC DO option and IAC SB..SE inside EXEC', protocol: 'ftp', steps: [...FTP_LOGIN, s('SITE E\xff\xfd\x01XEC \xff\xfa\x18abc\xff\xf0%p%n\r\n')], expect: ['PP-2000-0573', 'PP-2010-4221']},
  {name: 'IAC IAC is a data byte, not a command', protocol: 'ftp', steps: [...FTP_LOGIN, s('SITE HELP \xff\xff\r\n')], expect: []},
  // ---- variants found by the mail/ftp audit (not in the rules' samples)
  {name: 'crackaddr: filled <x> groups in one address', protocol: 'smtp', steps: smtpMessage(`Sender: ${'S'.repeat(300)}${'<x>'.repeat(40)}\r\n`), expect: ['PP-2002-1337']},
  {name: 'crackaddr: two empty pairs per folded line', protocol: 'smtp', steps: smtpMessage('Cc: <><>\r\n <><>\r\n\t()()\r\n'), expect: ['PP-2002-1337']},
  {name: 'crackaddr: bracketed mailboxes separated by commas are fine', protocol: 'smtp', steps: smtpMessage('To: <a@example.org>, <b@example.org>, <c@example.org>,\r\n <d@example.org>, <e@example.org>\r\n'), expect: []},
  {name: 'proftpd iac: one IAC + data byte at the end of a 600-byte line', protocol: 'ftp', steps: [c('220 ProFTPD 1.3.3a\r\n'), s(`SITE ${'A'.repeat(600)}\xffB${'C'.repeat(100)}\r\n`)], expect: ['PP-2010-4221', 'PP-FTP-LONG-COMMAND']},
  {name: 'proftpd iac: one IAC in a 300-byte line', protocol: 'ftp', steps: [...FTP_LOGIN, s(`MKD ${'d'.repeat(300)}\xff\xf1\r\n`)], expect: ['PP-2010-4221']},
  {name: 'vsftpd backdoor: IAC WILL right before the smiley (vsftpd reads raw bytes)', protocol: 'ftp', steps: [c('220 (vsFTPd 2.3.4)\r\n'), s('USER root\xff\xfb:)\r\n')], expect: ['PP-2011-2523']},
  {name: 'vsftpd backdoor: IAC DO inside the pair is not the pair', protocol: 'ftp', steps: [c('220 (vsFTPd 2.3.4)\r\n'), s('USER root:\xff\xfd\x01)\r\n')], expect: []},
  {name: 'ftp bounce: EPRT to a privileged port of the client itself', protocol: 'ftp', steps: [...FTP_LOGIN, s('EPRT |1|192.0.2.1|513|\r\n')], expect: ['PP-FTP-BOUNCE']},
  {name: 'ftp bounce: PORT to the client itself on port 1024 is fine', protocol: 'ftp', steps: [...FTP_LOGIN, s('PORT 192,0,2,1,4,0\r\n')], expect: []},
  {name: 'ftp bounce: PORT with blanks and leading zeros (read by strtoul-based servers)', protocol: 'ftp', steps: [...FTP_LOGIN, s('PORT 10, 9, 9, 9, 0004,001\r\n')], expect: ['PP-FTP-BOUNCE']},
  {name: 'ftp bounce: PORT to the client itself with blanks is fine', protocol: 'ftp', steps: [...FTP_LOGIN, s('PORT 192, 0, 2, 1, 4, 0\r\n')], expect: []},
  {name: 'wu-ftpd: glibc %C and %Id conversions', protocol: 'ftp', steps: [...FTP_LOGIN, s('SITE EXEC %C%C%C%Id\r\n')], expect: ['PP-2000-0573']},
  {name: 'exim b64: 4n+3 response pipelined before the 334', protocol: 'smtp', steps: [...SMTP_GREET, s(`AUTH CRAM-MD5\r\n${'QUFB'.repeat(40)}QUF\r\n`), c('334 PDEyMz4=\r\n501 bad\r\n')], expect: ['PP-2018-6789']},
  {name: 'exim b64: commands pipelined after AUTH are not base64', protocol: 'smtp', steps: [...SMTP_GREET, s('AUTH PLAIN\r\nMAIL FROM:<a@example.net>\r\n'), c('503 no\r\n250 ok\r\n')], expect: []},
  {name: 'exim string_format: 3 KB of headers then one unfolded 6 KB line (past the analyzer line cap)', protocol: 'smtp', steps: smtpMessage(`${'X-Filler: 0123456789012345678901234567890123456789\r\n'.repeat(60)}Boom: ${'B'.repeat(6000)}\r\n`), expect: ['PP-2010-4344']},
  {name: 'exim string_format: one 5 KB line in a small header section stays under the log buffer', protocol: 'smtp', steps: smtpMessage(`Subject: hi\r\nX-Long: ${'L'.repeat(5000)}\r\n`), expect: []},
]

describe('mail / ftp rule pack', () => {
  it('lints clean: 20 rules, every one stable with samples', () => {
    expect(errors).toEqual([])
    expect(rules).toHaveLength(20)
    for (const r of rules) {
      expect(r.status).toBe('stable')
      expect(['smtp', 'imap', 'pop3', 'ftp']).toContain(r.protocol)
      expect(r.doc.samples?.malicious?.length ?? 0).toBeGreaterThanOrEqual(2)
      expect(r.doc.samples?.benign?.length ?? 0).toBeGreaterThanOrEqual(2)
    }
  })

  it('every rule passes its own samples (match, no match, fix neutralizes, 1-byte chunks)', () => {
    for (const r of rules) {
      const res = testRule(r, factoryFor(r.protocol)!)
      const failed = res.samples.filter((x) => !x.ok).map((x) => `${x.name}: ${x.problems.join('; ')}`)
      expect(failed, r.id).toEqual([])
    }
  })

  for (const k of cases) {
    it(`${k.name}`, () => {
      expect(fired(k.protocol, k.steps)).toEqual([...k.expect].sort())
      // the verdict must not depend on how the bytes are cut
      expect(fired(k.protocol, k.steps, 7)).toEqual([...k.expect].sort())
    })
  }

  it('property: ordinary SMTP transactions raise nothing', () => {
    const local = fc.stringMatching(/^[a-z0-9][a-z0-9.+_-]{0,30}$/)
    const domain = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}\.(org|net|com)$/)
    const addr = fc.tuple(local, domain).map(([l, d]) => `${l}@${d}`)
    const name = fc.stringMatching(/^[A-Za-z][A-Za-z .,'-]{0,30}$/)
    fc.assert(
      fc.property(addr, fc.array(fc.tuple(name, addr), {minLength: 1, maxLength: 20}), fc.string({maxLength: 200}), (from, to, subject) => {
        const toHdr = to.map(([n, a]) => `"${n}" <${a}>`).join(',\r\n ')
        const subj = subject.replace(/[\r\n]/g, ' ')
        const steps = [
          ...SMTP_GREET,
          s(`MAIL FROM:<${from}>\r\n${to.map(([, a]) => `RCPT TO:<${a}>\r\n`).join('')}DATA\r\n`),
          c(`250 ok\r\n${to.map(() => '250 ok\r\n').join('')}354 go\r\n`),
          s(`From: <${from}>\r\nTo: ${toHdr}\r\nSubject: ${subj}\r\n\r\nbody\r\n.\r\n`),
        ]
        expect(fired('smtp', steps)).toEqual([])
      }),
      {numRuns: FUZZ_RUNS},
    )
  })

  it('property: the verdict on a malicious variant is independent of the chunking', () => {
    const variants: [string, Step[], string][] = [
      ['smtp', [...SMTP_GREET, s('MAIL FROM:<>\r\nRCPT TO:<${run{\\x2fbin\\x2fid}}@x>\r\n')], 'PP-2019-10149'],
      ['ftp', [c('220 x\r\n'), s('USER a:)\r\n')], 'PP-2011-2523'],
      ['imap', [...IMAP_GREET, s('a APPEND INBOX {99999999999}\r\n')], 'PP-IMAP-LITERAL-OVERFLOW'],
    ]
    fc.assert(
      fc.property(fc.integer({min: 0, max: variants.length - 1}), fc.integer({min: 1, max: 64}), (i, chunk) => {
        const [proto, steps, id] = variants[i]!
        expect(fired(proto, steps, chunk)).toEqual([id])
      }),
      {numRuns: FUZZ_RUNS},
    )
  })
})

const corpus = existsSync(PCAPS)
const ours = new Set(rules.map((r) => r.id))

describe.skipIf(!corpus)('mail / ftp rule pack on the real captures', () => {
  const expectations: [string, string[]][] = [
    ['smtp_overlong_command_line.pcap', ['PP-SMTP-LONG-COMMAND']],
    ['ftp_overlong_command_4k.pcap', ['PP-FTP-LONG-COMMAND']],
    ['ftp_bounce_port_command.pcap', ['PP-FTP-BOUNCE']],
    // 30 sessions of one failed login each: a cross-flow rate limit, not a per-flow rule
    ['ftp_bruteforce_login.pcap', []],
    ['benign_smtp_session.pcap', []],
    ['benign_ftp_session.pcap', []],
    ['benign_imap_session.pcap', []],
    ['benign_imap_starttls.pcap', []],
    ['benign_ftp_anonymous_dlt_null.pcap', []],
  ]
  it('alerts exactly on the attack flows', async () => {
    const files = expectations.map(([f]) => PCAPS + f).filter((f) => existsSync(f))
    const res = await runReplay({files, keepEvents: true})
    const got = new Map<string, string[]>()
    for (const ev of res.events ?? []) {
      const e = ev as unknown as {event_type: string; pcap_filename?: string; patchpoint?: {rule_id?: string}}
      const id = e.patchpoint?.rule_id
      if (e.event_type !== 'alert' || id === undefined || !ours.has(id)) continue
      const f = (e.pcap_filename ?? '').split('/').pop() ?? ''
      got.set(f, [...(got.get(f) ?? []), id])
    }
    for (const [f, want] of expectations) {
      if (!existsSync(PCAPS + f)) continue
      expect(got.get(f) ?? [], f).toEqual(want)
    }
  })
})
