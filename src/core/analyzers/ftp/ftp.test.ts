import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {bytes, runAnalyzer, type ScriptStep} from '../harness.js'
import {fuzzRuns, loadHexFixture, spanMismatches, splitInvariance} from '../line/testing.js'
import {readsMismatches} from '../testing.js'
import type {FieldValue, FlowInfo, Pdu} from '../types.js'
import {FTP_FIELDS, FTP_LIMITS, FtpAnalyzer, ftpAnalyzer, makeFtpAnalyzer, parseEprt, parseEpsvReply} from './index.js'

const fx = (name: string) => loadHexFixture(new URL(`./fixtures/${name}.hex`, import.meta.url))
const one = (p: Pdu, name: string): FieldValue => {
  const v = p.fields.get(name)
  if (v === undefined || Array.isArray(v)) throw new Error(`${name}: ${JSON.stringify(v)}`)
  return v
}
const S = (s: string): ScriptStep => ({dir: 'toserver', data: bytes(s)})
const C = (s: string): ScriptStep => ({dir: 'toclient', data: bytes(s)})
const flow = (clientIp: string, serverIp: string): FlowInfo => ({clientIp, clientPort: 40000, serverIp, serverPort: 21, transport: 'tcp'})
const cmd = (r: {pdus: Pdu[]}, verb: string) => r.pdus.filter((p) => p.kind === 'command' && one(p, 'ftp.command').v === verb)

const FIXTURES: [string, FlowInfo][] = [
  ['benign_ftp_session.s0', flow('141.142.220.235', '199.233.217.249')],
  ['ftp_bounce_port_command.s0', flow('1.1.1.2', '2.2.2.1')],
  ['ftp_bounce_port_command.s1', flow('1.1.1.2', '2.2.2.1')],
  ['ftp_overlong_command_4k.s0', flow('1.1.1.1', '2.2.2.2')],
  ['ftp_bruteforce_login.s0', flow('192.168.56.1', '192.168.56.101')],
  ['benign_ftp_anonymous_dlt_null.s0', flow('127.0.0.1', '127.0.0.1')],
]

describe('ftp: fixtures', () => {
  for (const [name, f] of FIXTURES) {
    it(`${name}: every split and 1-byte chunks give the same PDUs`, () => {
      expect(splitInvariance(ftpAnalyzer, fx(name), 1, {flow: f})).toEqual([])
    })
    it(`${name}: every span maps onto the stream bytes`, () => {
      const script = fx(name)
      const r = runAnalyzer(ftpAnalyzer, script, {flow: f})
      expect(r.pdus.length).toBeGreaterThan(4)
      expect(spanMismatches(r.pdus, script)).toEqual([])
    })
  }

  it('benign session: banner, login state, multi-line 230, PASV -> dynamic service, own PORT', () => {
    const r = runAnalyzer(ftpAnalyzer, fx('benign_ftp_session.s0'), {flow: FIXTURES[0]![1]})
    expect(r.anomalies).toEqual([])
    expect(one(r.pdus[0]!, 'ftp.banner').v).toBe('ftp.NetBSD.org FTP server (NetBSD-ftpd 20100320) ready.')
    const welcome = r.pdus.find((p) => p.kind === 'reply' && one(p, 'ftp.reply.code').v === 230)!
    expect(one(welcome, 'ftp.reply.line_count').v).toBeGreaterThan(20)
    expect(one(welcome, 'ftp.logged_in').v).toBe(1)
    expect(one(cmd(r, 'USER')[0]!, 'ftp.logged_in').v).toBe(0)
    expect(one(cmd(r, 'SYST')[0]!, 'ftp.logged_in').v).toBe(1)
    expect(one(cmd(r, 'SYST')[0]!, 'ftp.user').v).toBe('anonymous')
    expect(r.dynamic).toEqual([
      {ip: '199.233.217.249', port: 56666, proto: 'tcp', protocol: 'ftp-data'},
      {ip: '199.233.217.249', port: 56667, proto: 'tcp', protocol: 'ftp-data'},
    ])
    const ports = cmd(r, 'PORT')
    expect(ports.map((p) => [one(p, 'ftp.port.ip').v, one(p, 'ftp.port.port').v, one(p, 'ftp.port.mismatch').v])).toEqual([
      ['141.142.220.235', 33582, 0],
      ['141.142.220.235', 37835, 0],
    ])
    // 150 then 226 both answer LIST
    const list = r.pdus.filter((p) => p.kind === 'reply' && p.fields.has('ftp.reply.command') && one(p, 'ftp.reply.command').v === 'LIST')
    expect(list.map((p) => one(p, 'ftp.reply.code').v)).toEqual([150, 226, 150, 226])
  })

  it('FTP bounce: PORT to a third host sets ftp.port.mismatch = 1, own address 0', () => {
    const ok = runAnalyzer(ftpAnalyzer, fx('ftp_bounce_port_command.s0'), {flow: FIXTURES[1]![1]})
    expect(one(cmd(ok, 'PORT')[0]!, 'ftp.port.mismatch').v).toBe(0)
    const bad = runAnalyzer(ftpAnalyzer, fx('ftp_bounce_port_command.s1'), {flow: FIXTURES[2]![1]})
    const port = cmd(bad, 'PORT')[0]!
    expect([one(port, 'ftp.port.ip').v, one(port, 'ftp.port.port').v, one(port, 'ftp.port.mismatch').v]).toEqual(['2.2.2.3', 80, 1])
    expect(one(port, 'ftp.args')).toEqual({v: '2,2,2,3,0,80', off: 21, len: 12})
  })

  it('without flow info the mismatch is left unset', () => {
    const a = new FtpAnalyzer({emit: (p) => pdus.push(p), anomaly: () => {}})
    const pdus: Pdu[] = []
    a.data('toserver', bytes('PORT 2,2,2,3,0,80\r\n'))
    expect(pdus[0]!.fields.has('ftp.port.mismatch')).toBe(false)
    expect(one(pdus[0]!, 'ftp.port.port').v).toBe(80)
  })

  it('overlong RETR (> 4096): emitted with length 4097, first 4096 bytes, anomaly; next command parsed', () => {
    const r = runAnalyzer(ftpAnalyzer, fx('ftp_overlong_command_4k.s0'), {flow: FIXTURES[3]![1]})
    const retr = cmd(r, 'RETR')
    expect(retr.length).toBe(2)
    expect(one(retr[0]!, 'ftp.line.length').v).toBe(4097)
    expect(one(retr[0]!, 'ftp.line').len).toBe(4096)
    expect(r.anomalies.map((a) => a.event)).toEqual(['ftp.line_too_long'])
    expect(one(retr[1]!, 'ftp.args').v).toBe('index.html')
  })

  it('brute force: 530 counts a login failure', () => {
    const r = runAnalyzer(ftpAnalyzer, fx('ftp_bruteforce_login.s0'), {flow: FIXTURES[4]![1]})
    const quit = cmd(r, 'QUIT')[0]!
    expect(one(quit, 'ftp.login_failures').v).toBe(1)
    expect(one(quit, 'ftp.logged_in').v).toBe(0)
    const many = runAnalyzer(ftpAnalyzer, [C('220 ftp\r\n'), ...Array.from({length: 5}, (_, i) => [S('USER bro\r\n'), C('331 pw\r\n'), S(`PASS ${i}\r\n`), C('530 no\r\n')]).flat()])
    expect(one(many.pdus.at(-1)!, 'ftp.login_failures').v).toBe(5)
  })

  it('dlt_null ProFTPD session: bad PORTs, bare-LF multi-line reply, trailing NUL', () => {
    const r = runAnalyzer(ftpAnalyzer, fx('benign_ftp_anonymous_dlt_null.s0'), {flow: FIXTURES[5]![1]})
    expect(r.anomalies.map((a) => a.event)).toEqual(['ftp.port_invalid', 'ftp.port_invalid', 'ftp.bare_lf', 'ftp.unterminated_line', 'ftp.invalid_reply'])
    const feat = r.pdus.find((p) => p.kind === 'reply' && p.fields.has('ftp.reply.code') && one(p, 'ftp.reply.code').v === 211)!
    expect(one(feat, 'ftp.reply.line_count').v).toBe(5)
  })
})

describe('ftp: attacks (hand-written)', () => {
  it('wu-ftpd SITE EXEC format string', () => {
    const script = [C('220 wu-ftpd\r\n'), S('SITE EXEC %p%p%p%n\r\n')]
    const r = runAnalyzer(ftpAnalyzer, script)
    const site = r.pdus[1]!
    expect(one(site, 'ftp.site.command').v).toBe('EXEC')
    expect(one(site, 'ftp.site.args')).toEqual({v: '%p%p%p%n', off: 10, len: 8})
  })

  it('ProFTPD mod_copy SITE CPFR / CPTO', () => {
    const r = runAnalyzer(ftpAnalyzer, [C('220 ProFTPD\r\n'), S('site cpfr /etc/passwd\r\n'), C('350 ok\r\n'), S('SITE CPTO /var/www/x.php\r\n')])
    const sites = cmd(r, 'SITE')
    expect(sites.map((p) => [one(p, 'ftp.site.command').v, one(p, 'ftp.site.args').v])).toEqual([
      ['CPFR', '/etc/passwd'],
      ['CPTO', '/var/www/x.php'],
    ])
  })

  it('Telnet IAC bytes in a command are counted (ProFTPD CVE-2010-4221)', () => {
    const r = runAnalyzer(ftpAnalyzer, [C('220 x\r\n'), S(`RETR ${'\xff\xff'.repeat(10)}A\r\n`)])
    expect(one(r.pdus[1]!, 'ftp.iac.count').v).toBe(20)
    expect(r.anomalies.map((a) => a.event)).toEqual(['ftp.telnet_iac'])
  })

  it('EPRT / EPSV (RFC 2428)', () => {
    const r = runAnalyzer(ftpAnalyzer, [C('220 x\r\n'), S('EPRT |1|10.9.9.9|6275|\r\n'), C('200 ok\r\n'), S('EPSV\r\n'), C('229 Entering Extended Passive Mode (|||6446|)\r\n')], {flow: flow('192.0.2.1', '192.0.2.2')})
    const eprt = r.pdus[1]!
    expect(one(eprt, 'ftp.port.ip')).toEqual({v: '10.9.9.9', off: 8, len: 8})
    expect(one(eprt, 'ftp.port.mismatch').v).toBe(1)
    expect(r.dynamic).toEqual([{ip: '192.0.2.2', port: 6446, proto: 'tcp', protocol: 'ftp-data'}])
    expect(parseEprt(bytes('|2|::1|21|'), 0, 10)).toMatchObject({status: 'ok', ip: '::1', port: 21})
    expect(parseEprt(bytes('|1|1.2.3.4|99999|'), 0, 17).status).toBe('error')
    expect(parseEpsvReply(bytes('229 (|||x|)'), 4, 11)).toBe(-1)
  })

  it('AUTH TLS + 234: the lines stop, the TLS layer is read from the next byte', () => {
    // a record header declaring 3338 bytes, then what would be a command line: TLS bytes, not a command
    const r = runAnalyzer(ftpAnalyzer, [C('220 x\r\n'), S('AUTH TLS\r\n'), C('234 go\r\n'), S('\x16\x03\x01\r\nUSER x\r\n')])
    expect(r.pdus.map((p) => `${p.protocol} ${p.kind} ${p.start}-${p.end}`)).toEqual(['ftp reply 0-7', 'ftp command 0-10', 'ftp reply 7-15', 'tls record 10-23'])
    expect((r.pdus[3].fields.get('tls.record.truncated') as {v: unknown} | undefined)?.v).toBe(1)
    expect(r.anomalies.map((a) => a.event)).toEqual(['tls.record_truncated'])
  })

  it('reply line cap: overflow emitted truncated, rest of the reply skipped', () => {
    const lines = Array.from({length: 20}, (_, i) => `line ${i}\r\n`).join('')
    const r = runAnalyzer(makeFtpAnalyzer({maxReplyLines: 5}), [C(`220-hi\r\n${lines}220 end\r\n`), S('USER a\r\n'), C('331 pw\r\n')])
    expect(r.pdus.map((p) => p.kind)).toEqual(['reply', 'command', 'reply'])
    expect(one(r.pdus[0]!, 'ftp.reply.truncated').v).toBe(1)
    expect(r.anomalies.map((a) => a.event)).toEqual(['ftp.reply_too_long'])
    expect(one(r.pdus[2]!, 'ftp.reply.command').v).toBe('USER')
  })

  it('a malformed 227 is flagged and announces nothing', () => {
    const r = runAnalyzer(ftpAnalyzer, [C('220 x\r\n'), S('PASV\r\n'), C('227 Entering Passive Mode (999,1,1,1,1,1)\r\n')])
    expect(r.dynamic).toEqual([])
    expect(r.anomalies.map((a) => a.event)).toEqual(['ftp.pasv_invalid'])
  })
})

describe('ftp: fuzz', () => {
  it('random and mutated input never throws and stays bounded', () => {
    const base = [fx('benign_ftp_session.s0'), fx('ftp_bounce_port_command.s1'), fx('benign_ftp_anonymous_dlt_null.s0')]
    const limits = {...FTP_LIMITS, maxLineBytes: 128, maxReplyLines: 8, maxPending: 8}
    const steps = fc.array(
      fc.record({
        dir: fc.constantFrom<'toserver' | 'toclient'>('toserver', 'toclient'),
        data: fc.oneof(
          fc.uint8Array({maxLength: 300}),
          fc.array(fc.constantFrom('PORT ', 'EPRT |1|', '1,2,3,4,5,6', '227 (', '229 (|||', '230-', '220 ', '530 ', 'SITE ', '\xff', '\r\n', '\n', 'AUTH TLS', '234 '), {maxLength: 30}).map((a) => bytes(a.join(''))),
        ),
      }),
      {maxLength: 12},
    )
    fc.assert(
      fc.property(fc.nat(2), steps, fc.nat(), fc.integer({min: 7, max: 700}), (which, extra, seed, chunk) => {
        const mutated = base[which]!.map((s, i) => {
          if (i % 3 !== seed % 3) return s
          const d = Uint8Array.from(s.data)
          if (d.length > 0) d[seed % d.length] = seed & 0xff
          return {dir: s.dir, data: d}
        })
        const a = new FtpAnalyzer({emit: () => {}, anomaly: () => {}, dynamicService: () => {}, flow: flow('1.1.1.2', '2.2.2.1')}, limits)
        let worst = 0
        for (const s of [...mutated.slice(0, 3), ...extra, ...mutated.slice(3)]) {
          for (let i = 0; i < s.data.length; i += chunk) a.data(s.dir, s.data.subarray(i, i + chunk))
          const h = a.heldState()
          if (h.clientLine! > limits.maxLineBytes + 1 || h.serverLine! > limits.maxLineBytes + 1) worst = 1
          if (h.queue! > limits.maxPending || h.replyLines! > limits.maxReplyLines) worst = 2
        }
        a.end('toserver')
        a.end('toclient')
        expect(worst).toBe(0)
      }),
      {numRuns: fuzzRuns(10_000)},
    )
  })
})

describe('ftp: detect and fields', () => {
  it('detects FTP greetings, not SMTP', () => {
    for (const [name] of FIXTURES) expect(ftpAnalyzer.detect('toclient', fx(name)[0]!.data.subarray(0, 64))).toBe(true)
    expect(ftpAnalyzer.detect('toclient', bytes('220 mail.inliniac.net ESMTP\r\n'))).toBe(false)
    expect(ftpAnalyzer.detect('toclient', bytes('+OK POP3 ready\r\n'))).toBe(false)
    expect(ftpAnalyzer.detect('toserver', bytes('USER x\r\n'))).toBe(false)
  })

  it('every emitted field is documented', () => {
    const names = new Set(FTP_FIELDS.map((f) => f.name))
    const r = runAnalyzer(ftpAnalyzer, [...fx('benign_ftp_session.s0'), S('SITE EXEC x\r\nEPRT |1|1.2.3.4|5|\r\nRETR \xff\r\n')])
    for (const p of r.pdus) for (const k of p.fields.keys()) expect(names.has(k)).toBe(true)
  })
})

describe('ftp: fields no rule reads are left out', () => {
  // the fields the analyzer may leave out (the others are always built)
  const optional = ['ftp.user', 'ftp.logged_in', 'ftp.login_failures', 'ftp.reply.text', 'ftp.reply.line_count', 'ftp.reply.truncated', 'ftp.banner']
  const always = FTP_FIELDS.map((f) => f.name).filter((n) => !optional.includes(n))

  it('same PDUs, anomalies and services with any set of them read, per direction, any chunking', () => {
    const scripts: [ScriptStep[], FlowInfo][] = FIXTURES.map(([name, f]) => [fx(name), f])
    fc.assert(
      fc.property(fc.subarray(optional), fc.subarray(optional), fc.integer({min: 0, max: scripts.length - 1}), fc.integer({min: 0, max: 40}), (up, down, k, chunkSize) => {
        const reads = (name: string, dir?: 'toserver' | 'toclient') => always.includes(name) || (dir === 'toclient' ? down : up).includes(name)
        const [script, f] = scripts[k]!
        expect(readsMismatches(ftpAnalyzer, script, reads, {flow: f, chunkSize})).toEqual([])
      }),
      {numRuns: fuzzRuns(40)},
    )
  })

  it('with none read: replies carry the code, the command and the PASV facts only', () => {
    const reads = (name: string) => always.includes(name)
    const r = runAnalyzer(ftpAnalyzer, fx('benign_ftp_session.s0'), {flow: FIXTURES[0]![1], reads})
    const keys = new Set(r.pdus.filter((p) => p.kind === 'reply').flatMap((p) => [...p.fields.keys()]))
    expect([...keys].filter((x) => optional.includes(x))).toEqual([])
    expect(keys.has('ftp.reply.code')).toBe(true)
  })
})
