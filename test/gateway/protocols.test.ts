/**
 * Issue 4: mail (Postfix), FTP (vsftpd), IMAP (Dovecot) and MySQL (MariaDB) through the inline
 * gateway, in namespaces (topology in servers-lab.ts), with real clients (python smtplib,
 * ftplib, imaplib; the mariadb client). Postfix offers STARTTLS (OpenSSL 3, self-signed).
 *
 * One server address per action: every service on FIX_IP is `fix`, on LOG_IP `log`, on DROP_IP
 * `drop` (the whole rule pack applies; the action overrides each rule's own). Benign traffic goes
 * to FIX_IP (through the engine) and must arrive byte for byte; the exploits, each from a rule's
 * samples, are:
 *   SMTP  PP-2020-7247   MAIL FROM:<;sleep 66;>          fix: metacharacters -> '_'
 *   SMTP  PP-2014-0160   after STARTTLS + 220 and a real TLS 1.2 ClientHello/ServerHello, the heartbeat
 *                        request 18 03 03 00 03 01 40 00 (16 KB claimed in a 3-byte record: the rule's
 *                        first sample, TLS 1.2 version; raw-socket client)  fix: none defined, so drop
 *   FTP   PP-2011-2523   USER x:)                        fix: ':' -> '_'
 *   IMAP  PP-IMAP-LITERAL-OVERFLOW  APPEND {4294967296}  fix: the size's digits -> '0'
 *   MySQL PP-2016-6662   SET GLOBAL general_log_file = '.../my.cnf'  fix: the statement -> spaces
 * Then two attack tools' own checks, unchanged: nmap's NSE scripts ftp-vsftpd-backdoor and
 * mysql-vuln-cve2012-2122 (40 logins, one connection each) against the drop address.
 * What the server received is read from a capture on the server's own interface (every
 * client->server TCP payload byte, reassembled per connection) and from the servers' logs,
 * mailbox and replies.
 */
import {describe, it, expect, beforeAll, afterAll} from 'vitest'
import {createHash} from 'node:crypto'
import {execFileSync} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {
  CLIENT_IP, DROP_IP, FIX_IP, LOG_IP, LAB_PASSWORD, MAIL_DOMAIN, ProtocolsLab, protocolsLabSkipReason, startDovecot, startMariadb,
  startPostfix, startVsftpd, tcpStreams, waitFor, type CapturedStream,
} from './servers-lab.js'
import {linesOf, textOf} from './lab.js'

const skip = protocolsLabSkipReason()
if (skip) console.warn(`skipping the protocols gateway suite: ${skip}`)
const repo = fileURLToPath(new URL('../../', import.meta.url))
const bin = path.join(repo, 'bin/run.js')
const clientPy = fileURLToPath(new URL('./protocols-client.py', import.meta.url))
const PORTS = {smtp: 25, ftp: 21, imap: 143, mysql: 3306} as const
const ACTIONS = [[FIX_IP, 'fix'], [LOG_IP, 'log'], [DROP_IP, 'drop']] as const
const MYSQL_EXPLOIT = "SET GLOBAL general_log_file = '/var/lib/mysql/my.cnf'"

/** deterministic bytes that are not all text (FTP binary transfer) */
function pseudoRandom(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n)
  let x = seed >>> 0
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0
    b[i] = x >>> 24
  }
  return b
}

interface ClientResult {
  reset: boolean
  error?: string
  [k: string]: unknown
}

/** what protocols-client.py smtp-heartbleed saw */
interface HeartbleedResult extends ClientResult {
  port: number
  phase: 'smtp' | 'handshake' | 'heartbeat'
  starttls: [number, string[]]
  /** the ClientHello and the heartbeat record sent, hex */
  hello: string
  heartbeat: string
  /** the server's flight: [content type, version, length] per record; handshake message types */
  records: [number, number, number][]
  handshake: number[]
  server_hello: {version: number; suite: number; extensions: number[]} | null
  alert: number[] | null
  /** records received after the heartbeat request ([type, version, length, ...alert bytes]) */
  after?: number[][]
  closed?: boolean
  timeout?: boolean
  ehlo_ms: number
  flight_ms: number
}

describe.skipIf(skip !== null)('patchpoint run --iface with real SMTP, FTP, IMAP and MySQL servers (namespaces)', () => {
  let p: ProtocolsLab
  let gwLog = ''
  let eventsFile = ''
  let pcap = ''
  let maildirNew = ''
  let maillog = ''
  let ftpLog = ''
  let imapHome = ''
  const ftpFile = pseudoRandom(300 * 1024 + 17, 7)

  const gwOut = () => textOf(gwLog)
  const events = (): Record<string, unknown>[] => linesOf(eventsFile).filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
  const alerts = (ip: string, port: number, rule: string) => events().filter((e) => e.event_type === 'alert' && e.dest_ip === ip && e.dest_port === port
    && (e.patchpoint as {rule_id?: string} | undefined)?.rule_id === rule)
  const blocked = (ip: string, port: number) => events().filter((e) => e.event_type === 'anomaly' && e.dest_ip === ip && e.dest_port === port
    && (e.anomaly as {event?: string}).event === 'gateway.flow_blocked')
  const client = (args: string[], timeoutMs = 40_000): ClientResult => {
    const r = p.try(p.client, `/usr/bin/python3 ${clientPy} ${args.map((a) => `'${a}'`).join(' ')}`, timeoutMs)
    const line = r.out.trim().split('\n').pop() ?? ''
    if (!line.startsWith('{')) throw new Error(`client ${args.join(' ')} failed (${r.code}): ${r.out}${r.err}`)
    return JSON.parse(line) as ClientResult
  }
  /** statements from stdin (one per line), going on after errors */
  const mariadb = (ip: string, sql: string, timeoutS = 30) => {
    const file = path.join(p.dir, `q-${Date.now()}.sql`)
    fs.writeFileSync(file, sql.split(/;\s*/).filter(Boolean).map((q) => `${q};\n`).join(''))
    return p.try(p.client, `timeout ${timeoutS} mariadb --no-defaults --skip-ssl -h ${ip} -ulab -p${LAB_PASSWORD} -N -B --force < ${file} 2>&1`, (timeoutS + 5) * 1000)
  }
  /** every client->server stream to ip:port the server's interface saw so far */
  const streams = (ip: string, port: number): CapturedStream[] => tcpStreams(pcap, CLIENT_IP).filter((s) => s.dstIp === ip && s.dstPort === port)
  const seenNow = (ip: string, port: number, bytes: string | Buffer) => streams(ip, port).some((s) => s.payload.includes(bytes))
  /** the server's interface saw these bytes (waits a little for tcpdump to write them) */
  const seen = async (ip: string, port: number, bytes: string | Buffer) => waitFor(() => seenNow(ip, port, bytes), 3000, 100)
  /** never seen: checked once the capture holds `flushed` (a later byte of the same test), plus a margin */
  const unseen = async (ip: string, port: number, bytes: string | Buffer, flushed: string) => {
    expect(await seen(ip, port, flushed), `capture holds ${flushed}`).toBe(true)
    await new Promise((res) => setTimeout(res, 300))
    return !seenNow(ip, port, bytes)
  }
  const mails = () => (fs.existsSync(maildirNew) ? fs.readdirSync(maildirNew).map((f) => fs.readFileSync(path.join(maildirNew, f))) : [])

  beforeAll(async () => {
    p = new ProtocolsLab()
    const t0 = Date.now()
    ;({maildirNew, maillog} = await startPostfix(p))
    ;({log: ftpLog} = await startVsftpd(p, {'pp-file.bin': ftpFile}))
    const dove = await startDovecot(p)
    imapHome = path.join(path.dirname(dove.log), 'home')
    await startMariadb(p)
    const servicesMs = Date.now() - t0
    // every client->server TCP segment on the server's own interface
    pcap = path.join(p.dir, 'server.pcap')
    const tdLog = path.join(p.dir, 'tcpdump.log')
    p.spawnLogged(p.server, ['tcpdump', '--immediate-mode', '-U', '-nn', '-s', '0', '-i', p.serverIf, '-w', pcap, `tcp and src host ${CLIENT_IP}`], tdLog)
    const policy = path.join(p.dir, 'policy.json')
    fs.writeFileSync(policy, JSON.stringify({services: Object.values(PORTS).flatMap((port) => ACTIONS.map(([ip, action]) => ({ip, port, proto: 'tcp', action})))}))
    eventsFile = path.join(p.dir, 'events.json')
    gwLog = path.join(p.dir, 'gateway.log')
    const gw = p.spawnLogged(p.gw, [process.execPath, bin, 'run', '--iface', p.ifaces.join(','), '--bridge', p.bridge, '--policy', policy,
      '--events', eventsFile, '--stats-interval', '0'], gwLog)
    const ready = await waitFor(() => gwOut().includes('patchpoint: ready') || gw.exitCode !== null, 90_000, 100)
    if (!ready || gw.exitCode !== null) throw new Error(`gateway did not start: ${gwOut()}`)
    await waitFor(() => fs.existsSync(tdLog) && fs.readFileSync(tdLog, 'utf8').includes('listening on'), 10_000)
    // the bridge learns both ends
    await waitFor(() => p.try(p.client, `ping -c1 -W1 ${FIX_IP}`).code === 0, 10_000, 200)
    console.log(`protocols lab: servers up in ${servicesMs} ms, gateway ready after ${Date.now() - t0} ms`)
  }, 240_000)

  afterAll(() => {
    p?.cleanup()
  })

  describe('SMTP (Postfix), PP-2020-7247', () => {
    it('benign: a 200 KB mail sent with smtplib arrives in the Maildir byte for byte', async () => {
      const marker = `pp-benign-${Date.now()}`
      const body = Array.from({length: 3000}, (_, i) => (i % 500 === 7 ? `.a line that needs dot-stuffing ${i}` : `line ${i} ${'x'.repeat(i % 61)} =?:;<>()`)).join('\r\n')
      const msg = `From: Sender <sender@example.net>\r\nTo: box@${MAIL_DOMAIN}\r\nSubject: ${marker}\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\n`
        + `Message-ID: <${marker}@example.net>\r\n\r\n${body}\r\n`
      const file = path.join(p.dir, 'mail.eml')
      fs.writeFileSync(file, msg)
      const r = client(['smtp-send', FIX_IP, file, `box@${MAIL_DOMAIN}`])
      expect(r, JSON.stringify(r)).toMatchObject({ok: true, reset: false, refused: {}})
      await waitFor(() => mails().some((m) => m.includes(marker)), 10_000, 100)
      const got = mails().find((m) => m.includes(marker))
      expect(got).toBeDefined()
      // the Maildir stores LF line ends; Postfix prepends Return-Path, Delivered-To, Received
      expect(got!.subarray(got!.length - Buffer.byteLength(msg.replace(/\r\n/g, '\n'))).toString('latin1')).toBe(msg.replace(/\r\n/g, '\n'))
    })

    it('fix: the sender arrives neutralised, Postfix accepts and delivers the mail', async () => {
      const r = client(['smtp-exploit', FIX_IP, 'pp-smtp-fix'])
      expect(r.reset, JSON.stringify(r)).toBe(false)
      expect(r.mail).toEqual([250, '2.1.0 Ok'])
      expect((r.data as [number, string])[0]).toBe(250)
      await waitFor(() => mails().some((m) => m.includes('pp-smtp-fix')), 10_000, 100)
      const mail = mails().find((m) => m.includes('pp-smtp-fix'))!.toString('latin1')
      expect(mail).toContain('Return-Path: <_sleep_66_@')
      expect(await seen(FIX_IP, 25, 'mail FROM:<_sleep_66_>')).toBe(true)
      expect(await unseen(FIX_IP, 25, ';sleep 66;', 'pp-smtp-fix')).toBe(true)
      expect(await waitFor(() => alerts(FIX_IP, 25, 'PP-2020-7247').length > 0, 3000, 100)).toBe(true)
    })

    it('log: the exploit arrives unchanged (Postfix rejects it itself) and an alert is written', async () => {
      const r = client(['smtp-exploit', LOG_IP, 'pp-smtp-log'])
      expect(r.reset, JSON.stringify(r)).toBe(false)
      expect((r.mail as [number, string])[0]).toBe(501)
      expect(r.noop).toBe(250)
      await waitFor(() => fs.readFileSync(maillog, 'utf8').includes('<;sleep 66;>'), 5000)
      expect(fs.readFileSync(maillog, 'utf8')).toMatch(/Illegal address syntax .* <;sleep 66;>/)
      expect(await seen(LOG_IP, 25, 'mail FROM:<;sleep 66;>')).toBe(true)
      expect(await waitFor(() => alerts(LOG_IP, 25, 'PP-2020-7247').some((e) => (e.patchpoint as {action: string}).action === 'log'), 3000, 100)).toBe(true)
    })

    it('drop: the session is reset and the server never sees the exploit', async () => {
      const r = client(['smtp-exploit', DROP_IP, 'pp-smtp-drop'])
      expect(r.reset, JSON.stringify(r)).toBe(true)
      await new Promise((res) => setTimeout(res, 300))
      expect(streams(DROP_IP, 25).length).toBeGreaterThan(0)
      expect(await unseen(DROP_IP, 25, 'sleep', 'ehlo client.lab.test')).toBe(true)
      expect(await waitFor(() => blocked(DROP_IP, 25).length > 0, 3000, 100)).toBe(true)
    })
  })

  /**
   * SMTP STARTTLS: after `STARTTLS` and Postfix's 220 the gateway reads the connection as TLS
   * (line/base.ts startTls), so the TLS rules judge the records. Postfix's OpenSSL 3 does not
   * negotiate heartbeats: it answers the ClientHello without the extension and rejects a heartbeat
   * record as unexpected (so a leak is not expected either way); PP-2014-0160 judges the request.
   */
  describe('SMTP STARTTLS (Postfix, OpenSSL 3), PP-2014-0160 after the 220', () => {
    const HEARTBLEED = Buffer.from('1803030003014000', 'hex')
    const RAW_PLAIN = 'EHLO client.lab.test\r\nSTARTTLS\r\n'
    const ofConn = (e: Record<string, unknown>, port: number) => e.src_port === port && e.dest_port === 25
    /** the capture of one connection once `done` holds for it (undefined if it never does) */
    const conn = async (ip: string, srcPort: number, done: (s: CapturedStream) => boolean) => {
      const find = () => streams(ip, 25).find((s) => s.srcPort === srcPort)
      await waitFor(() => {
        const s = find()
        return s !== undefined && done(s)
      }, 5000, 100)
      return find()
    }
    const heartbleed = (ip: string): HeartbleedResult => {
      const r = client(['smtp-heartbleed', ip]) as HeartbleedResult
      console.log(`smtp-heartbleed ${ip}:${r.port}: EHLO answered in ${r.ehlo_ms} ms, the server's flight (${JSON.stringify(r.handshake)}, suite `
        + `0x${r.server_hello?.suite.toString(16)}) ${r.flight_ms} ms after the ClientHello; after the request: ${r.error ?? JSON.stringify(r.after)}`)
      // the real server took the ClientHello: a TLS 1.2 ServerHello without the heartbeat
      // extension, the rest of its flight up to ServerHelloDone (14)
      expect(r.phase, JSON.stringify(r)).toBe('heartbeat')
      expect(r.starttls[0]).toBe(220)
      expect(r.alert).toBeNull()
      expect(r.handshake[0]).toBe(2)
      expect(r.handshake.at(-1)).toBe(14)
      expect(r.server_hello).toMatchObject({version: 0x0303})
      expect(r.server_hello!.extensions).not.toContain(15)
      expect(r.heartbeat).toBe(HEARTBLEED.toString('hex'))
      return r
    }
    const maillogHas = (text: string) => fs.readFileSync(maillog, 'utf8').includes(text)
    const sentBefore = (r: HeartbleedResult) => Buffer.concat([Buffer.from(RAW_PLAIN), Buffer.from(r.hello, 'hex')])

    it('benign: smtplib EHLO, STARTTLS, EHLO and a mail through the fix address: delivered byte for byte over TLS, no reset, no alert', async () => {
      const marker = `pp-starttls-${Date.now()}`
      const body = Array.from({length: 800}, (_, i) => (i % 200 === 3 ? `.dot-stuffed over TLS ${i}` : `tls line ${i} ${'t'.repeat(i % 53)} <>;:()`)).join('\r\n')
      const msg = `From: Sender <sender@example.net>\r\nTo: box@${MAIL_DOMAIN}\r\nSubject: ${marker}\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\n`
        + `Message-ID: <${marker}@example.net>\r\n\r\n${body}\r\n`
      const file = path.join(p.dir, 'mail-starttls.eml')
      fs.writeFileSync(file, msg)
      const r = client(['smtp-starttls-send', FIX_IP, file, `box@${MAIL_DOMAIN}`])
      console.log(`smtp-starttls-send ${FIX_IP}:${String(r.port)}: ${String(r.tls)} ${String(r.cipher)}, STARTTLS + handshake ${String(r.handshake_ms)} ms`)
      expect(r, JSON.stringify(r)).toMatchObject({ok: true, reset: false, offered: true, refused: {}})
      expect((r.starttls as [number, string])[0]).toBe(220)
      expect(String(r.tls)).toMatch(/^TLSv1\.[23]$/)
      await waitFor(() => mails().some((m) => m.includes(marker)), 10_000, 100)
      const got = mails().find((m) => m.includes(marker))
      expect(got).toBeDefined()
      expect(got!.subarray(got!.length - Buffer.byteLength(msg.replace(/\r\n/g, '\n'))).toString('latin1')).toBe(msg.replace(/\r\n/g, '\n'))
      // Postfix's own view (smtpd_tls_received_header): the mail came over the TLS session the client negotiated
      expect(got!.toString('latin1')).toContain(`(using ${String(r.tls)} with cipher ${String(r.cipher)} `)
      // the server's interface: the lines before STARTTLS in clear, then TLS records; the mail itself never in clear
      const s = await conn(FIX_IP, r.port as number, (c) => c.payload.length > 2000)
      expect(s, 'capture of the connection').toBeDefined()
      const plain = 'ehlo client.lab.test\r\nSTARTTLS\r\n'
      expect(s!.payload.subarray(0, plain.length).toString('latin1')).toBe(plain)
      expect([...s!.payload.subarray(plain.length, plain.length + 3)]).toEqual([22, 3, 1])
      expect(s!.payload.includes(marker)).toBe(false)
      // the gateway: no alert and no block on this connection (the event log flushes every second)
      await new Promise((res) => setTimeout(res, 1500))
      const mine = events().filter((e) => ofConn(e, r.port as number))
      expect(mine.filter((e) => e.event_type === 'alert' || (e.anomaly as {event?: string} | undefined)?.event === 'gateway.flow_blocked')).toEqual([])
    })

    for (const [ip, action] of [[DROP_IP, 'drop'], [FIX_IP, 'fix']] as const) {
      it(`${action}: the heartbeat request after STARTTLS never reaches Postfix, both ends are reset, PP-2014-0160 alerts${action === 'fix' ? ' (no fix defined: drop)' : ''}`, async () => {
        const r = heartbleed(ip)
        // the gateway reset the client; nothing came back for the request
        expect(r.reset, JSON.stringify(r)).toBe(true)
        expect(r.error).toMatch(/^ConnectionResetError/)
        expect(r.after).toEqual([])
        // the server's interface, up to the gateway's reset in the client's name: the SMTP lines
        // and the ClientHello byte for byte, nothing after them
        const s = await conn(ip, r.port, (c) => c.rst)
        expect(s?.rst, 'reset seen by the server').toBe(true)
        expect(s!.payload.toString('hex')).toBe(sentBefore(r).toString('hex'))
        expect(s!.payload.includes(HEARTBLEED)).toBe(false)
        expect(await waitFor(() => alerts(ip, 25, 'PP-2014-0160').some((e) => ofConn(e, r.port)), 3000, 100)).toBe(true)
        const alert = alerts(ip, 25, 'PP-2014-0160').find((e) => ofConn(e, r.port))!
        expect(alert.patchpoint).toMatchObject({action: 'drop', ...(action === 'fix' ? {note: 'no_fix_defined_drop'} : {})})
        expect(blocked(ip, 25).some((e) => ofConn(e, r.port))).toBe(true)
        // Postfix saw the reset in the middle of its handshake, not a TLS error of its own
        expect(await waitFor(() => maillogHas(`SSL_accept error from unknown[${CLIENT_IP}]:${r.port}: Connection reset by peer`), 5000, 100)).toBe(true)
      })
    }

    it('log: the heartbeat request reaches Postfix unchanged (its OpenSSL 3 refuses it itself) and an alert is written', async () => {
      const r = heartbleed(LOG_IP)
      expect(r.reset, JSON.stringify(r)).toBe(false)
      const s = await conn(LOG_IP, r.port, (c) => c.payload.length >= sentBefore(r).length + HEARTBLEED.length)
      expect(s!.payload.toString('hex')).toBe(Buffer.concat([sentBefore(r), HEARTBLEED]).toString('hex'))
      expect(await waitFor(() => alerts(LOG_IP, 25, 'PP-2014-0160').some((e) => ofConn(e, r.port) && (e.patchpoint as {action: string}).action === 'log'), 3000, 100)).toBe(true)
      expect(blocked(LOG_IP, 25).some((e) => ofConn(e, r.port))).toBe(false)
      // OpenSSL 3 treats the heartbeat record as unexpected: a fatal unexpected_message (10) alert, then Postfix hangs up
      expect(r.after).toEqual([[21, 0x0303, 2, 2, 10]])
      expect(r.closed).toBe(true)
      const failed = new RegExp(`smtpd\\[(\\d+)\\]: SSL_accept error from unknown\\[${CLIENT_IP.replace(/\./g, '\\.')}\\]:${r.port}: -1\\n`
        + '.* postfix/smtpd\\[\\1\\]: warning: TLS library problem: .*unexpected record')
      expect(await waitFor(() => failed.test(fs.readFileSync(maillog, 'utf8')), 5000, 100), fs.readFileSync(maillog, 'utf8').slice(-2000)).toBe(true)
    })
  })

  describe('FTP (vsftpd), PP-2011-2523', () => {
    it('benign: a 300 KB binary file arrives byte for byte (passive RETR with ftplib)', async () => {
      const out = path.join(p.dir, 'ftp-got.bin')
      const r = client(['ftp-get', FIX_IP, 'pp-file.bin', out])
      expect(r.reset, JSON.stringify(r)).toBe(false)
      expect(r.retr).toMatch(/^226/)
      expect(createHash('sha256').update(fs.readFileSync(out)).digest('hex')).toBe(createHash('sha256').update(ftpFile).digest('hex'))
    })

    it('fix: vsftpd receives the user name without the ":)" pair and the session goes on', async () => {
      const r = client(['ftp-exploit', FIX_IP, 'ppfix:)'])
      expect(r.reset, JSON.stringify(r)).toBe(false)
      expect(r.user).toMatch(/^530/)
      expect(r.again).toMatch(/^(230|331) /)
      await waitFor(() => fs.readFileSync(ftpLog, 'utf8').includes('ppfix'), 5000)
      expect(fs.readFileSync(ftpLog, 'utf8')).toContain('"USER ppfix_)"')
      expect(fs.readFileSync(ftpLog, 'utf8')).not.toContain('ppfix:)')
      expect(await seen(FIX_IP, 21, 'USER ppfix_)\r\n')).toBe(true)
      expect(await unseen(FIX_IP, 21, 'ppfix:)', 'USER anonymous')).toBe(true)
      expect(await waitFor(() => alerts(FIX_IP, 21, 'PP-2011-2523').length > 0, 3000, 100)).toBe(true)
    })

    it('log: the exploit arrives unchanged and an alert is written', async () => {
      const r = client(['ftp-exploit', LOG_IP, 'pplog:)'])
      expect(r.reset, JSON.stringify(r)).toBe(false)
      expect(r.again).toMatch(/^(230|331) /)
      await waitFor(() => fs.readFileSync(ftpLog, 'utf8').includes('pplog'), 5000)
      expect(fs.readFileSync(ftpLog, 'utf8')).toContain('"USER pplog:)"')
      expect(await seen(LOG_IP, 21, 'USER pplog:)\r\n')).toBe(true)
      expect(await waitFor(() => alerts(LOG_IP, 21, 'PP-2011-2523').some((e) => (e.patchpoint as {action: string}).action === 'log'), 3000, 100)).toBe(true)
    })

    it('drop: the session is reset and the server never sees the exploit', async () => {
      const r = client(['ftp-exploit', DROP_IP, 'ppdrop:)'])
      expect(r.reset, JSON.stringify(r)).toBe(true)
      await new Promise((res) => setTimeout(res, 300))
      expect(streams(DROP_IP, 21).length).toBeGreaterThan(0)
      // nothing follows the USER line on this connection: give tcpdump a margin
      await new Promise((res) => setTimeout(res, 500))
      expect(seenNow(DROP_IP, 21, 'ppdrop')).toBe(false)
      expect(fs.readFileSync(ftpLog, 'utf8')).not.toContain('ppdrop')
      expect(await waitFor(() => blocked(DROP_IP, 21).length > 0, 3000, 100)).toBe(true)
    })
  })

  describe('IMAP (Dovecot), PP-IMAP-LITERAL-OVERFLOW', () => {
    it('benign: a 100 KB message is fetched byte for byte (imaplib FETCH BODY.PEEK[])', async () => {
      // delivered straight into the Maildir on the server side (APPEND is the next test)
      const md = path.join(imapHome, 'fetcher', 'Maildir')
      for (const sub of ['new', 'cur', 'tmp']) fs.mkdirSync(path.join(md, sub), {recursive: true})
      const body = Array.from({length: 2000}, (_, i) => `fetch line ${i} ${'y'.repeat(i % 47)} {3} * OK ()`).join('\n')
      const stored = `From: a@example.net\nTo: fetcher@${MAIL_DOMAIN}\nSubject: pp-imap-benign\n\n${body}\n`
      fs.writeFileSync(path.join(md, 'new', '1700000000.pp1.lab'), stored)
      execFileSync('chown', ['-R', 'nobody:nogroup', path.join(imapHome, 'fetcher')])
      const out = path.join(p.dir, 'imap-got.eml')
      const r = client(['imap-fetch', FIX_IP, 'fetcher', out])
      expect(r, JSON.stringify(r)).toMatchObject({reset: false, fetch: 'OK', select: '1'})
      expect(fs.readFileSync(out).toString('latin1')).toBe(stored.replace(/\n/g, '\r\n'))
    })

    it('benign: a 100 KB message APPENDed with a synchronising literal (imaplib) within 8 s is fetched back byte for byte', async () => {
      // two issue 4 bugs (fixed): the analyzer held the line `APPEND INBOX {n}` until the literal
      // arrived, and the client sends the literal only after the server's '+' to that line (the
      // line is now judged and released on its own); and a literal larger than the client's TCP
      // window stalled while held whole (the gateway now holds at most holdUnitBytes of one unit)
      const body = Array.from({length: 2000}, (_, i) => `append line ${i} ${'z'.repeat(i % 41)} {3} * OK ()`).join('\n')
      const stored = `From: a@example.net\nTo: appender@${MAIL_DOMAIN}\nSubject: pp-imap-append\n\n${body}\n`
      expect(stored.length).toBeGreaterThan(90_000)
      expect(stored.length).toBeLessThan(120_000)
      const msg = path.join(p.dir, 'imap-append.eml')
      fs.writeFileSync(msg, stored)
      const a = p.try(p.client, `timeout 8 /usr/bin/python3 -c "import imaplib; m = imaplib.IMAP4('${FIX_IP}'); m.login('appender', '${LAB_PASSWORD}'); print(m.append('INBOX', None, None, open('${msg}', 'rb').read())[0])"`, 15_000)
      expect(a.code, a.out + a.err).toBe(0)
      expect(a.out.trim()).toBe('OK')
      const out = path.join(p.dir, 'imap-appended.eml')
      const r = client(['imap-fetch', FIX_IP, 'appender', out])
      expect(r, JSON.stringify(r)).toMatchObject({reset: false, fetch: 'OK', select: '1'})
      expect(fs.readFileSync(out).toString('latin1')).toBe(stored.replace(/\n/g, '\r\n'))
    })

    it('fix: Dovecot receives a zero-size literal instead of 2^32 and the session goes on', async () => {
      const r = client(['imap-exploit', FIX_IP, 'ppfix'])
      expect(r.reset, JSON.stringify(r)).toBe(false)
      expect(r.append).toMatch(/^pp1 NO /)
      expect(r.noop).toBe('OK')
      expect(await seen(FIX_IP, 143, 'pp1 APPEND INBOX {0000000000}\r\n')).toBe(true)
      expect(await unseen(FIX_IP, 143, '{4294967296}', 'LOGOUT')).toBe(true)
      expect(await waitFor(() => alerts(FIX_IP, 143, 'PP-IMAP-LITERAL-OVERFLOW').length > 0, 3000, 100)).toBe(true)
    })

    it('log: the exploit arrives unchanged and an alert is written', async () => {
      const r = client(['imap-exploit', LOG_IP, 'pplog'])
      expect(r.reset, JSON.stringify(r)).toBe(false)
      // Dovecot invites the 4 GB literal ('+ OK'); the client then hangs up
      expect(String(r.append)).toMatch(/^(\+ |pp1 (NO|BAD) )/)
      expect(await seen(LOG_IP, 143, 'pp1 APPEND INBOX {4294967296}\r\n')).toBe(true)
      expect(await waitFor(() => alerts(LOG_IP, 143, 'PP-IMAP-LITERAL-OVERFLOW').some((e) => (e.patchpoint as {action: string}).action === 'log'), 3000, 100)).toBe(true)
    })

    it('drop: the session is reset and the server never sees the exploit', async () => {
      const r = client(['imap-exploit', DROP_IP, 'ppdrop'])
      expect(r.reset || r.append === '', JSON.stringify(r)).toBe(true)
      await new Promise((res) => setTimeout(res, 300))
      expect(await unseen(DROP_IP, 143, 'APPEND', 'LOGIN ppdrop')).toBe(true)
      expect(await waitFor(() => blocked(DROP_IP, 143).length > 0, 3000, 100)).toBe(true)
    })
  })

  describe('MySQL (MariaDB), PP-2016-6662', () => {
    it('benign: a 6 KB query result arrives byte for byte (mariadb client)', async () => {
      // a result larger than the TCP window: see 'units larger than the TCP window' below
      const r = mariadb(FIX_IP, "SELECT SHA2(REPEAT('patchpoint-', 5000), 256), REPEAT('ab', 3000), 6*7")
      expect(r.code, r.out).toBe(0)
      const sha = createHash('sha256').update('patchpoint-'.repeat(5000)).digest('hex')
      expect(r.out).toBe(`${sha}\t${'ab'.repeat(3000)}\t42\n`)
    })

    it('fix: the statement arrives blanked (MariaDB: query was empty) and the session goes on', async () => {
      const r = mariadb(FIX_IP, `SELECT 'pp-before'; ${MYSQL_EXPLOIT}; SELECT 'pp-after-fix'`)
      expect(r.out).toContain('pp-before')
      expect(r.out).toContain('ERROR 1065')
      expect(r.out).toContain('pp-after-fix')
      expect(await seen(FIX_IP, 3306, "SELECT 'pp-after-fix'")).toBe(true)
      expect(await unseen(FIX_IP, 3306, 'general_log_file', "SELECT 'pp-after-fix'")).toBe(true)
      expect(seenNow(FIX_IP, 3306, 'my.cnf')).toBe(false)
      expect(await waitFor(() => alerts(FIX_IP, 3306, 'PP-2016-6662').length > 0, 3000, 100)).toBe(true)
    })

    it('log: the statement arrives unchanged (MariaDB refuses it: no SUPER) and an alert is written', async () => {
      const r = mariadb(LOG_IP, `${MYSQL_EXPLOIT}; SELECT 'pp-after-log'`)
      expect(r.out).toContain('ERROR 1227')
      expect(r.out).toContain('pp-after-log')
      expect(await seen(LOG_IP, 3306, MYSQL_EXPLOIT)).toBe(true)
      expect(await waitFor(() => alerts(LOG_IP, 3306, 'PP-2016-6662').some((e) => (e.patchpoint as {action: string}).action === 'log'), 3000, 100)).toBe(true)
    })

    it('drop: the session is reset and the server never sees the statement', async () => {
      const r = mariadb(DROP_IP, `SELECT 'pp-before-drop'; ${MYSQL_EXPLOIT}; SELECT 'pp-after-drop'`)
      expect(r.out).toContain('pp-before-drop')
      expect(r.out).toMatch(/ERROR 20(13|06)/)
      await new Promise((res) => setTimeout(res, 300))
      expect(await unseen(DROP_IP, 3306, 'general_log_file', "SELECT 'pp-before-drop'")).toBe(true)
      expect(await waitFor(() => blocked(DROP_IP, 3306).length > 0, 3000, 100)).toBe(true)
    })
  })

  it('no hold timeout or overflow on any protected service (every unit was judged in time)', () => {
    const limits = events().filter((e) => e.event_type === 'anomaly' && /^gateway\.hold_/.test(String((e.anomaly as {event?: string}).event)))
    expect(limits.map((e) => `${String(e.dest_ip)}:${String(e.dest_port)} ${JSON.stringify(e.anomaly)}`)).toEqual([])
  })

  /**
   * Units larger than the sender's TCP window: they used to stall on a protected port until the
   * gateway's hold timeout (10 s) released what it held; each must pass in well under 8 s.
   */
  describe('units larger than the TCP window', () => {
    it('a MySQL row larger than the initial TCP window (80 KB result) arrives within 8 s', () => {
      // issue 4 bug (fixed): the analyzer holds each server packet whole (up to 256 KB) and the
      // server stopped after its congestion window (~10 segments) waiting for ACKs of bytes the
      // gateway held; the gateway now holds at most holdUnitBytes of one unit (the newest
      // segment stays held until the judgement)
      const r = mariadb(FIX_IP, "SELECT REPEAT('ab', 40000)", 8)
      expect(r.code, r.out).toBe(0)
      expect(r.out).toBe(`${'ab'.repeat(40000)}\n`)
    })
  })

  /**
   * nmap's own exploit checks (NSE scripts shipped with Debian's nmap), unchanged, against the
   * drop address: the attack tool's bytes, not our samples. Last in this file: the MySQL one
   * leaves DROP_IP:3306 locked for this client (PP-2012-2122 counts failures across connections).
   * (ssl-heartbleed is not here: it sends its heartbeat only to a server whose ServerHello
   * offers the heartbeat extension, which Postfix's OpenSSL 3 never does.)
   */
  describe('nmap NSE exploit checks through the gateway (drop address)', () => {
    const nse = (script: string, port: number, args = '') =>
      p.try(p.client, `timeout 150 nmap -n -Pn -sT -p ${port} --script ${script}${args ? ` --script-args ${args}` : ''} ${DROP_IP} 2>&1`, 160_000)
    /** events written after `from` (the event log flushes every second) */
    const newAlerts = (from: number, port: number, rule: string) => events().slice(from).filter((e) => e.event_type === 'alert' && e.dest_ip === DROP_IP
      && e.dest_port === port && (e.patchpoint as {rule_id?: string} | undefined)?.rule_id === rule)

    it('ftp-vsftpd-backdoor: PP-2011-2523 drops it, vsftpd never receives USER X:)', async () => {
      const from = events().length
      const r = nse('ftp-vsftpd-backdoor', 21)
      expect(r.code, r.out).toBe(0)
      expect(await waitFor(() => newAlerts(from, 21, 'PP-2011-2523').length > 0, 5000, 100), r.out).toBe(true)
      await new Promise((res) => setTimeout(res, 500))
      expect(seenNow(DROP_IP, 21, 'X:)')).toBe(false)
      expect(fs.readFileSync(ftpLog, 'utf8')).not.toContain('X:)')
    }, 170_000)

    it('mysql-vuln-cve2012-2122 (40 logins, one connection each): PP-2012-2122 stops the series after 5 failures', async () => {
      const from = events().length
      const r = nse('mysql-vuln-cve2012-2122', 3306, 'mysql-vuln-cve2012-2122.iterations=40')
      expect(r.code, r.out).toBe(0)
      expect(await waitFor(() => newAlerts(from, 3306, 'PP-2012-2122').length > 0, 5000, 100), r.out).toBe(true)
      await new Promise((res) => setTimeout(res, 500))
      // the logins MariaDB received: the script's user name in a login packet
      const logins = streams(DROP_IP, 3306).filter((c) => c.payload.includes('root\x00'))
      expect(logins.length).toBeGreaterThanOrEqual(5)
      expect(logins.length).toBeLessThanOrEqual(6)
    }, 170_000)
  })
})
