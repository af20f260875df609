import {describe, it, expect} from 'vitest'
import fc from 'fast-check'
import {compileProbes, fillTemplate, loadProbes, matchAnyProbe, matchProbe, probeOrder, unescapeProbe, TRANSFORMS} from './probes.js'

const probes = loadProbes()

const b = (s: string) => Buffer.from(s, 'latin1')

describe('shipped probe files', () => {
  it('load without diagnostics', () => {
    expect(probes.diagnostics).toEqual([])
    expect(probes.probes.length).toBeGreaterThanOrEqual(12)
    for (const name of ['NULL', 'GetRequest', 'TLSClientHello', 'SMTPEhlo', 'IMAPCapability', 'MSSQLPrelogin', 'OracleTNS', 'SMBNegotiate', 'DCERPCBind', 'RPCNull', 'RDPConnect', 'RedisInfo', 'PostgresStartup', 'DNSVersionBind']) {
      expect(probes.byName.has(name), name).toBe(true)
    }
  })
})

describe('banners (NULL probe) from real servers', () => {
  const cases: [string, string, Partial<{service: string; product: string; version: string; os: string}>][] = [
    // Debian 12 openssh-server
    ['SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n', 'openssh debian', {service: 'ssh', product: 'openbsd/openssh', version: '9.2p1', os: 'linux'}],
    ['SSH-2.0-OpenSSH_8.9\r\n', 'openssh plain', {service: 'ssh', product: 'openbsd/openssh', version: '8.9'}],
    ['SSH-2.0-OpenSSH_for_Windows_8.1\r\n', 'openssh windows', {product: 'microsoft/openssh', version: '8.1', os: 'windows'}],
    ['SSH-2.0-dropbear_2022.83\r\n', 'dropbear', {product: 'dropbear_ssh_project/dropbear_ssh', version: '2022.83'}],
    // corpus benign_ftp_anonymous_dlt_null.pcap
    ['220 ProFTPD 1.3.0a Server (ProFTPD Default Installation) [127.0.0.1]\r\n', 'proftpd', {service: 'ftp', product: 'proftpd/proftpd', version: '1.3.0a'}],
    // Debian 12 vsftpd
    ['220 (vsFTPd 3.0.3)\r\n', 'vsftpd', {service: 'ftp', product: 'vsftpd/vsftpd', version: '3.0.3'}],
    // corpus benign_ftp_session.pcap
    ['220 ftp.NetBSD.org FTP server (NetBSD-ftpd 20100320) ready.\r\n', 'netbsd ftpd', {product: 'netbsd/ftpd', version: '20100320', os: 'bsd'}],
    ['220 Microsoft FTP Service\r\n', 'iis ftp', {product: 'microsoft/iis', os: 'windows'}],
    // corpus benign_smtp_session.pcap (multi-line greeting)
    ['220-xc90.websitewelcome.com ESMTP Exim 4.69 #1 Mon, 05 Oct 2009 01:05:54 -0500 \r\n220-We do not authorize\r\n', 'exim', {service: 'smtp', product: 'exim/exim', version: '4.69'}],
    // Debian 12 postfix
    ['220 mail.lab.test ESMTP Postfix (Debian/GNU)\r\n', 'postfix', {service: 'smtp', product: 'postfix/postfix'}],
    ['220 mx.example.com ESMTP Sendmail 8.15.2/8.15.2; Mon, 1 Jan 2024 00:00:00 GMT\r\n', 'sendmail', {product: 'sendmail/sendmail', version: '8.15.2'}],
    ['220 EX01.corp.example Microsoft ESMTP MAIL Service ready at Mon, 1 Jan 2024 00:00:00 +0000\r\n', 'exchange smtp', {product: 'microsoft/exchange_server', os: 'windows'}],
    // Debian 12 dovecot
    ['* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot (Debian) ready.\r\n', 'dovecot imap', {service: 'imap', product: 'dovecot/dovecot'}],
    ['+OK Dovecot (Debian) ready.\r\n', 'dovecot pop3', {service: 'pop3', product: 'dovecot/dovecot'}],
    // corpus benign_imap_session.pcap
    ['* OK Microsoft Exchange IMAP4rev1 server version 5.5.2650.23 (umr-mail02) ready\r\n', 'exchange imap', {service: 'imap', product: 'microsoft/exchange_server', version: '5.5.2650.23'}],
    // MariaDB 10.11 (Debian 12) greeting: len 3 bytes, seq 0, protocol 10, version NUL
    ['\x5b\x00\x00\x00\x0a5.5.5-10.11.6-MariaDB-0+deb12u1\x00\x1f\x00\x00\x00', 'mariadb', {service: 'mysql', product: 'mariadb/mariadb', version: '10.11.6'}],
    ['\x4a\x00\x00\x00\x0a8.0.36\x00\x08\x00\x00\x00', 'mysql 8', {service: 'mysql', product: 'mysql/mysql', version: '8.0.36'}],
    // MariaDB refusing a client host (error 1130 instead of the greeting)
    ["\x4e\x00\x00\x00\xff\x6a\x04Host '198.51.100.2' is not allowed to connect to this MariaDB server", 'mariadb refusing', {service: 'mysql', product: 'mariadb/mariadb'}],
    ['\x4a\x00\x00\x00\x0a5.0.54\x00\x5e\x00\x00\x00', 'mysql 5.0 (corpus benign_mysql_session)', {product: 'mysql/mysql', version: '5.0.54'}],
  ]
  for (const [banner, name, want] of cases) {
    it(name, () => {
      const m = matchProbe(probes, 'NULL', b(banner))
      expect(m).not.toBeNull()
      expect(m!.soft).toBe(false)
      if (want.service) expect(m!.service).toBe(want.service)
      if (want.product) expect(m!.product).toBe(want.product)
      if (want.version) expect(m!.version).toBe(want.version)
      if (want.os) expect(m!.os?.family).toBe(want.os)
    })
  }

  it('an unknown FTP server is a soft match that names only the service', () => {
    const m = matchProbe(probes, 'NULL', b('220 Welcome to the Example FTP daemon\r\n'))
    expect(m).toMatchObject({service: 'ftp', soft: true})
    expect(m!.product).toBeUndefined()
  })

  it('nothing matches random binary noise', () => {
    expect(matchProbe(probes, 'NULL', new Uint8Array([1, 2, 3, 0xff, 0xfe]))).toBeNull()
  })
})

describe('responses to sent probes', () => {
  const http = (server: string, extra = '') => b(`HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n${extra}Server: ${server}\r\nContent-Length: 0\r\n\r\n`)
  it('HTTP Server headers', () => {
    expect(matchProbe(probes, 'GetRequest', http('nginx/1.22.1'))).toMatchObject({product: 'nginx/nginx', version: '1.22.1'})
    expect(matchProbe(probes, 'GetRequest', http('Apache/2.4.62 (Debian)'))).toMatchObject({product: 'apache/http_server', version: '2.4.62', os: {family: 'linux'}})
    expect(matchProbe(probes, 'GetRequest', http('Microsoft-IIS/10.0'))).toMatchObject({product: 'microsoft/iis', version: '10.0'})
    expect(matchProbe(probes, 'GetRequest', http('lighttpd/1.4.69'))).toMatchObject({product: 'lighttpd/lighttpd', version: '1.4.69'})
    expect(matchProbe(probes, 'GetRequest', http('nginx'))).toMatchObject({product: 'nginx/nginx', version: undefined})
    expect(matchProbe(probes, 'GetRequest', http('Microsoft-IIS/10.0', 'X-OWA-Version: 15.2.1118.7\r\n'))).toMatchObject({product: 'microsoft/exchange_server', version: '15.2.1118.7'})
    const other = matchProbe(probes, 'GetRequest', http('SomethingElse/1.0'))
    expect(other).toMatchObject({service: 'http', extra: 'SomethingElse/1.0', soft: false})
    expect(other!.product).toBeUndefined()
  })

  it('MS-SQL PRELOGIN version (SQL Server 2019 15.0.2000)', () => {
    const resp = b('\x04\x01\x00\x25\x00\x00\x01\x00\x00\x00\x15\x00\x06\x01\x00\x1b\x00\x01\x02\x00\x1c\x00\x01\x03\x00\x1d\x00\x00\xff\x0f\x00\x07\xd0\x00\x00\x00\x00\x00')
    expect(matchProbe(probes, 'MSSQLPrelogin', resp)).toMatchObject({service: 'ms-sql-s', product: 'microsoft/sql_server', version: '15.0.2000'})
  })

  it('Oracle TNS refuse with VSNNUM (19.0.0.0.0) and 11.2.0.2.0', () => {
    const refuse = (vsn: number) => b(`\x00\x41\x00\x00\x04\x00\x00\x00\x22\x00\x00\x35(DESCRIPTION=(TMP=)(VSNNUM=${vsn})(ERR=0)(ALIAS=LISTENER))`)
    expect(matchProbe(probes, 'OracleTNS', refuse(318767104))).toMatchObject({product: 'oracle/database', version: '19.0.0.0.0'})
    expect(matchProbe(probes, 'OracleTNS', refuse(186647040))).toMatchObject({version: '11.2.0.2.0'})
  })

  it('SMB2 negotiate response: dialect, Samba-or-Windows candidates', () => {
    const hdr = '\xfeSMB\x40\x00' + '\x00'.repeat(58)
    const resp = b('\x00\x00\x00\xa0' + hdr + '\x41\x00\x01\x00\xff\x02')
    const m = matchProbe(probes, 'SMBNegotiate', resp)!
    expect(m).toMatchObject({service: 'microsoft-ds', extra: 'SMB dialect 2.x'})
    expect(m.candidates?.map((c) => c.product)).toEqual(['samba/samba', 'microsoft/windows'])
  })

  it('DCE/RPC bind_ack, RDP confirm, Redis INFO, PostgreSQL, DNS version.bind, TLS ServerHello, RPC reply', () => {
    expect(matchProbe(probes, 'DCERPCBind', b('\x05\x00\x0c\x03\x10\x00\x00\x00\x3c\x00\x00\x00\x01\x00\x00\x00'))).toMatchObject({service: 'msrpc'})
    expect(matchProbe(probes, 'RDPConnect', b('\x03\x00\x00\x13\x0e\xd0\x00\x00\x12\x34\x00\x02\x1f\x08\x00\x08\x00\x00\x00'))).toMatchObject({service: 'ms-wbt-server'})
    expect(matchProbe(probes, 'RedisInfo', b('$3000\r\n# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\nos:Linux 6.1.0-18-amd64 x86_64\r\n'))).toMatchObject({product: 'redis/redis', version: '7.0.15', extra: 'Linux 6.1.0-18-amd64 x86_64'})
    expect(matchProbe(probes, 'PostgresStartup', b('R\x00\x00\x00\x17\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00'))).toMatchObject({product: 'postgresql/postgresql'})
    expect(matchProbe(probes, 'PostgresStartup', b('E\x00\x00\x00\x64SFATAL\x00VFATAL\x00C28000\x00Mno pg_hba.conf entry\x00\x00'))).toMatchObject({product: 'postgresql/postgresql'})
    const dns = b('\x00\x3c\x00\x06\x85\x80\x00\x01\x00\x01\x00\x00\x00\x00\x07version\x04bind\x00\x00\x10\x00\x03\xc0\x0c\x00\x10\x00\x03\x00\x00\x00\x00\x00\x14\x139.18.24-1-Debian')
    expect(matchProbe(probes, 'DNSVersionBind', dns)).toMatchObject({product: 'isc/bind', version: '9.18.24-1-Debian'})
    expect(matchProbe(probes, 'TLSClientHello', b('\x16\x03\x03\x00\x5d\x02\x00\x00\x59\x03\x03' + 'x'.repeat(32)))).toMatchObject({service: 'ssl', extra: 'ServerHello version 3.3'})
    expect(matchProbe(probes, 'RPCNull', b('\x80\x00\x00\x18\x72\xfe\x1d\x13\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00'))).toMatchObject({service: 'rpcbind'})
  })

  it('passive matching over every probe finds an HTTP server and a banner', () => {
    expect(matchAnyProbe(probes, b('HTTP/1.1 404 Not Found\r\nServer: nginx/1.22.1\r\n\r\n'))).toMatchObject({product: 'nginx/nginx'})
    expect(matchAnyProbe(probes, b('220 (vsFTPd 3.0.3)\r\n'))).toMatchObject({product: 'vsftpd/vsftpd'})
  })
})

describe('probe engine', () => {
  it('unescapes nmap-style bytes', () => {
    expect([...unescapeProbe('a\\r\\n\\x00\\xff\\0\\\\')]).toEqual([0x61, 13, 10, 0, 0xff, 0, 0x5c])
  })

  it('fills templates: groups, integers, printable, substitution and transforms', () => {
    const g = ['all', 'v1.2', '\x01\x02', 'a\x00b', 'x_y', '318767104']
    expect(fillTemplate('$1 $I(2,>) $I(2,<) $P(3) $SUBST(4,"_",".") $T(oracle_vsnnum,5)', g)).toBe('v1.2 258 513 ab x.y 19.0.0.0.0')
    expect(fillTemplate('$9', g)).toBe('')
    expect(TRANSFORMS.ms_version('\x0f\x00\x07\xd0')).toBe('15.0.2000')
  })

  it('orders NULL first, then port-hinted probes, then the rest by rarity', () => {
    const order = probeOrder(probes, 443, {intensity: 9}).map((p) => p.name)
    expect(order[0]).toBe('NULL')
    expect(order[1]).toBe('TLSClientHello')
    const tlsOrder = probeOrder(probes, 443, {intensity: 9, tls: true}).map((p) => p.name)
    expect(tlsOrder).not.toContain('TLSClientHello')
    expect(tlsOrder[1]).toBe('GetRequest')
    const high = probeOrder(probes, 43389, {intensity: 1}).map((p) => p.name)
    expect(high).toEqual(['NULL', 'GetRequest'])
  })

  it('reports bad patterns and unknown fallbacks with file and line, and loads the rest', () => {
    const set = compileProbes([{file: 'x.yaml', text: "probes:\n  - name: A\n    send: 'x'\n    fallback: [Nope]\n    matchers:\n      - service: a\n        pattern: '(unclosed'\n      - service: b\n        pattern: '^ok'\n"}])
    expect(set.diagnostics.map((d) => d.message).join('\n')).toMatch(/bad pattern[\s\S]*unknown fallback probe Nope/)
    expect(set.diagnostics[0].line).toBe(7)
    expect(matchProbe(set, 'A', 'ok')).toMatchObject({service: 'b'})
  })

  it('fuzz: matching arbitrary bytes never throws and yields only known services', () => {
    const services = new Set(probes.probes.flatMap((p) => p.matchers.map((m) => m.spec.service)))
    fc.assert(fc.property(fc.uint8Array({maxLength: 600}), fc.constantFrom(...probes.probes.map((p) => p.name)), (data, name) => {
      const m = matchProbe(probes, name, data)
      if (m) expect(services.has(m.service)).toBe(true)
    }), {numRuns: Number(process.env.PATCHPOINT_FUZZ_RUNS ?? 300)})
  })
})
