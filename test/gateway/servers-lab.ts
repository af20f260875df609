/**
 * Namespace lab for the inline gateway with real mail, FTP, IMAP and MySQL servers:
 *
 *   [ppc-ID-client 10.77.0.1] pcc0 ---- pcga [ppc-ID-gw: bridge pcbr0 over pcga,pcgb] pcgb ---- pcs0 [ppc-ID-server]
 *
 * The server namespace holds one address per action (FIX_IP, LOG_IP, DROP_IP): every server
 * listens on all three, so one policy entry per address and port picks the action while each
 * protocol keeps its standard port. Addresses come from 10.77.0.0/24 inside the namespaces only,
 * no route out. The servers are Debian packages started with private configs under the lab's
 * temp folder (NOTES.md: packages must not start their system daemons; policy-rc.d exits 101).
 * `cleanup()` kills what the lab started (by pid) and deletes the namespaces.
 */
import {execFileSync, type ChildProcess} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {Lab, hasCommand} from '../../src/core/lab/netns.js'

export const CLIENT_IP = '10.77.0.1'
export const FIX_IP = '10.77.0.10'
export const LOG_IP = '10.77.0.11'
export const DROP_IP = '10.77.0.12'
export const SERVER_IPS = [FIX_IP, LOG_IP, DROP_IP] as const
/** the mail domain Postfix delivers to (a virtual maildir) */
export const MAIL_DOMAIN = 'lab.test'
/** the password Dovecot (static passdb) and MariaDB (user `lab`) accept */
export const LAB_PASSWORD = 'lab'

const TOOLS = ['ip', 'nft', 'ethtool', 'tcpdump', 'postfix', 'postconf', 'openssl', 'vsftpd', 'dovecot', 'mariadbd', 'mariadb-install-db', 'mariadb', '/usr/bin/python3']

export function protocolsLabSkipReason(): string | null {
  if (process.platform !== 'linux') return 'the protocols lab needs Linux network namespaces'
  if (process.getuid?.() !== 0) return 'the protocols lab needs root (network namespaces, bridge, nftables)'
  for (const c of TOOLS) {
    if (!hasCommand(c)) return `the protocols lab needs ${c} (apt-get install iproute2 nftables ethtool tcpdump postfix openssl vsftpd dovecot-imapd mariadb-server python3)`
  }
  return null
}

export class ProtocolsLab {
  readonly lab = new Lab(24, {prefix: 'ppc-', switch: false})
  readonly client: string
  readonly gw: string
  readonly server: string
  readonly bridge = 'pcbr0'
  /** gateway-side ports, client side first */
  readonly ifaces = ['pcga', 'pcgb'] as const
  readonly serverIf = 'pcs0'

  constructor() {
    this.client = this.lab.addNamespace('client')
    this.gw = this.lab.addNamespace('gw')
    this.server = this.lab.addNamespace('server')
    // Lab's per-host helpers (spawn, run, exec) look hosts up by name
    this.lab.hosts.set('client', {name: 'client', ns: this.client, ip: CLIENT_IP, mac: ''})
    this.lab.hosts.set('server', {name: 'server', ns: this.server, ip: FIX_IP, mac: ''})
    const ip = (args: string[]) => execFileSync('ip', args, {stdio: 'pipe'})
    ip(['link', 'add', 'pcc0', 'netns', this.client, 'type', 'veth', 'peer', 'name', 'pcga', 'netns', this.gw])
    ip(['link', 'add', 'pcs0', 'netns', this.server, 'type', 'veth', 'peer', 'name', 'pcgb', 'netns', this.gw])
    const off = 'tx off tso off gso off gro off'
    this.sh(this.client, `ip addr add ${CLIENT_IP}/24 dev pcc0; ethtool -K pcc0 ${off} >/dev/null 2>&1; ip link set pcc0 up`)
    this.sh(this.server, `${SERVER_IPS.map((a) => `ip addr add ${a}/24 dev pcs0`).join('; ')}; ethtool -K pcs0 ${off} >/dev/null 2>&1; ip link set pcs0 up`)
    // the gateway adds pcga,pcgb to this bridge itself (--bridge pcbr0)
    this.sh(this.gw, `ip link add ${this.bridge} type bridge forward_delay 0 stp_state 0; ip link set ${this.bridge} up`)
  }

  get dir(): string {
    return this.lab.dir
  }

  sh(ns: string, cmd: string, timeoutMs = 60_000): string {
    return execFileSync('ip', ['netns', 'exec', ns, 'sh', '-c', cmd], {encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe']})
  }

  /** run and return exit code + stdout/stderr, never throws */
  try(ns: string, cmd: string, timeoutMs = 60_000): {code: number; out: string; err: string} {
    try {
      return {code: 0, out: this.sh(ns, cmd, timeoutMs), err: ''}
    } catch (e) {
      const err = e as {status?: number; stdout?: string; stderr?: string}
      return {code: err.status ?? -1, out: err.stdout ?? '', err: err.stderr ?? ''}
    }
  }

  /** a long-running process in a namespace, stdout+stderr appended to `logFile`; killed by cleanup() */
  spawnLogged(ns: string, argv: string[], logFile: string): ChildProcess {
    return this.lab.spawnLogged(ns, argv, logFile)
  }

  cleanup(): void {
    this.lab.cleanup()
  }
}

/** wait until `pred` holds, polling */
export async function waitFor(pred: () => boolean, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (pred()) return true
    await new Promise((r) => setTimeout(r, stepMs))
  }
  return pred()
}

async function waitPorts(p: ProtocolsLab, port: number, timeoutMs = 30_000): Promise<void> {
  for (const a of SERVER_IPS) await p.lab.waitPort('server', a, port, timeoutMs)
}

/**
 * Postfix on port 25 of every server address, delivering mail for @lab.test into one Maildir
 * (virtual delivery as nobody). STARTTLS is offered (smtpd_tls_security_level = may) with a
 * self-signed certificate for mail.lab.test made here; each TLS session is logged and noted in
 * the Received header, and the log names each client's port (to find one connection's lines).
 * Returns the Maildir's `new/` folder and the mail log.
 */
export async function startPostfix(p: ProtocolsLab): Promise<{maildirNew: string; maillog: string}> {
  const d = p.lab.folder('postfix')
  const q = p.lab.folder('postfix/queue')
  const data = p.lab.folder('postfix/data')
  const boxes = p.lab.folder('postfix/mail')
  const tls = p.lab.folder('postfix/tls')
  execFileSync('chown', ['postfix', data])
  execFileSync('chown', ['nobody:nogroup', boxes])
  const maillog = path.join(d, 'maillog')
  // smtpd reads the key as root before it drops privileges: root-only is enough
  const cert = path.join(tls, 'cert.pem')
  const key = path.join(tls, 'key.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=mail.lab.test', '-days', '2', '-keyout', key, '-out', cert],
    {stdio: 'ignore', timeout: 30_000})
  fs.chmodSync(key, 0o600)
  fs.writeFileSync(path.join(d, 'main.cf'), [
    `queue_directory = ${q}`, `data_directory = ${data}`, 'command_directory = /usr/sbin', 'daemon_directory = /usr/lib/postfix/sbin',
    `inet_interfaces = ${SERVER_IPS.join(', ')}`, 'inet_protocols = ipv4', 'myhostname = mail.lab.test', 'mydestination =',
    'compatibility_level = 3.6', `maillog_file = ${maillog}`, `maillog_file_prefixes = ${d}`,
    'smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)', 'smtpd_peername_lookup = no', 'alias_maps =', 'alias_database =',
    'smtp_dns_support_level = disabled', 'disable_dns_lookups = yes', `mynetworks = 10.77.0.0/24`,
    `virtual_mailbox_domains = ${MAIL_DOMAIN}`, `virtual_mailbox_base = ${boxes}`, 'virtual_mailbox_maps = static:box/',
    'virtual_uid_maps = static:65534', 'virtual_gid_maps = static:65534', 'virtual_minimum_uid = 100',
    'message_size_limit = 20480000',
    'smtpd_tls_security_level = may', `smtpd_tls_cert_file = ${cert}`, `smtpd_tls_key_file = ${key}`,
    'smtpd_tls_loglevel = 1', 'smtpd_tls_received_header = yes', 'smtpd_client_port_logging = yes', '',
  ].join('\n'))
  fs.copyFileSync('/etc/postfix/master.cf', path.join(d, 'master.cf'))
  // no chroot: the private queue folder holds none of the files a chrooted daemon needs
  execFileSync('postconf', ['-c', d, '-F', '*/*/chroot = n'], {stdio: 'ignore'})
  p.lab.run('server', '/usr/sbin/postfix', ['-c', d, 'start'])
  p.lab.trackPidFile(`${q}/pid/master.pid`)
  await waitPorts(p, 25)
  return {maildirNew: path.join(boxes, 'box', 'new'), maillog}
}

/**
 * vsftpd (anonymous, passive ports 40000-40100) on every server address, logging each command.
 * `files` are written into the anonymous root. Returns the protocol log.
 */
export async function startVsftpd(p: ProtocolsLab, files: Record<string, Buffer>): Promise<{log: string}> {
  const d = p.lab.folder('vsftpd')
  const root = p.lab.folder('vsftpd/anon')
  for (const [name, bytes] of Object.entries(files)) fs.writeFileSync(path.join(root, name), bytes, {mode: 0o644})
  fs.chmodSync(root, 0o555)
  fs.mkdirSync('/var/run/vsftpd/empty', {recursive: true})
  const log = path.join(d, 'vsftpd.log')
  const conf = path.join(d, 'vsftpd.conf')
  fs.writeFileSync(conf, [
    'listen=YES', 'listen_ipv6=NO', 'anonymous_enable=YES', 'local_enable=NO', 'no_anon_password=YES',
    `anon_root=${root}`, 'secure_chroot_dir=/var/run/vsftpd/empty', 'pasv_enable=YES', 'pasv_min_port=40000', 'pasv_max_port=40100',
    'xferlog_enable=YES', 'xferlog_std_format=NO', 'log_ftp_protocol=YES', `vsftpd_log_file=${log}`,
    'seccomp_sandbox=NO', 'background=NO', 'max_per_ip=50', '',
  ].join('\n'))
  p.lab.spawn('server', '/usr/sbin/vsftpd', [conf])
  await waitPorts(p, 21)
  return {log}
}

/** Dovecot IMAP (plaintext LOGIN allowed, any user, password `lab`, Maildir as nobody) on every server address. */
export async function startDovecot(p: ProtocolsLab): Promise<{log: string}> {
  const d = p.lab.folder('dovecot')
  const homes = p.lab.folder('dovecot/home')
  fs.chmodSync(homes, 0o777)
  const log = path.join(d, 'dovecot.log')
  const conf = path.join(d, 'dovecot.conf')
  // Dovecot rejects nested { } on one line (NOTES.md): one setting per line
  fs.writeFileSync(conf, `
base_dir = ${d}/run
state_dir = ${d}/state
log_path = ${log}
listen = *
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
passdb {
  driver = static
  args = password=${LAB_PASSWORD}
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=${homes}/%u
}
`)
  p.lab.run('server', '/usr/sbin/dovecot', ['-c', conf])
  p.lab.trackPidFile(`${d}/run/master.pid`)
  await waitPorts(p, 143)
  return {log}
}

/** MariaDB on port 3306 of every server address; user `lab`@`%` with password `lab`. */
export async function startMariadb(p: ProtocolsLab): Promise<void> {
  const d = p.lab.folder('mariadb')
  const data = path.join(d, 'data')
  execFileSync('chown', ['mysql', d])
  execFileSync('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--user=mysql', '--auth-root-authentication-method=normal', '--skip-test-db'], {stdio: 'ignore', timeout: 120_000})
  p.lab.spawn('server', '/usr/sbin/mariadbd', ['--no-defaults', `--datadir=${data}`, '--user=mysql', '--bind-address=0.0.0.0', '--port=3306',
    `--socket=${d}/mysql.sock`, `--pid-file=${d}/mysql.pid`, '--skip-log-bin', '--skip-name-resolve', '--innodb-buffer-pool-size=16M'])
  await waitPorts(p, 3306, 60_000)
  execFileSync('mariadb', ['--no-defaults', `--socket=${d}/mysql.sock`, '-uroot', '-e', `CREATE USER 'lab'@'%' IDENTIFIED BY '${LAB_PASSWORD}'`], {stdio: 'ignore', timeout: 30_000})
}

/** one TCP connection's client->server payload as the capture saw it (in sequence order, each byte once) */
export interface CapturedStream {
  srcPort: number
  dstIp: string
  dstPort: number
  payload: Buffer
  /** a segment with RST was seen from the client */
  rst: boolean
}

/**
 * The client->server payload of every TCP connection in a classic pcap (Ethernet, IPv4) written
 * by tcpdump, reassembled by sequence number (a retransmitted byte counts once). Test helper:
 * reads the whole file; tolerates a last record cut short (tcpdump still writing).
 */
export function tcpStreams(file: string, srcIp: string): CapturedStream[] {
  const buf = fs.readFileSync(file)
  if (buf.length < 24) return []
  const magic = buf.readUInt32LE(0)
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o))
  const src = srcIp.split('.').map(Number)
  const streams = new Map<string, {s: CapturedStream; isn: number | null; pieces: Map<number, Buffer>}>()
  let off = 24
  while (off + 16 <= buf.length) {
    const incl = u32(off + 8)
    const start = off + 16
    off = start + incl
    if (off > buf.length) break
    const f = buf.subarray(start, start + incl)
    if (f.length < 14 + 20 || f.readUInt16BE(12) !== 0x0800) continue
    const ip = f.subarray(14)
    const ihl = (ip[0] & 0x0f) * 4
    if (ip[9] !== 6 || ip.length < ihl + 20) continue
    if (ip[12] !== src[0] || ip[13] !== src[1] || ip[14] !== src[2] || ip[15] !== src[3]) continue
    const total = Math.min(ip.readUInt16BE(2), ip.length)
    const tcp = ip.subarray(ihl, total)
    const sport = tcp.readUInt16BE(0)
    const dport = tcp.readUInt16BE(2)
    const dst = `${ip[16]}.${ip[17]}.${ip[18]}.${ip[19]}`
    const seq = tcp.readUInt32BE(4)
    const flags = tcp[13]
    const data = tcp.subarray((tcp[12] >> 4) * 4)
    const key = `${sport}|${dst}|${dport}`
    let st = streams.get(key)
    if (!st || (flags & 0x02) !== 0 && st.isn !== null && ((seq - st.isn) >>> 0) > 0x7fffffff) {
      st = {s: {srcPort: sport, dstIp: dst, dstPort: dport, payload: Buffer.alloc(0), rst: false}, isn: null, pieces: new Map()}
      streams.set(key, st)
    }
    if (flags & 0x02) st.isn = (seq + 1) >>> 0
    if (flags & 0x04) st.s.rst = true
    if (data.length > 0 && st.isn !== null) {
      const rel = (seq - st.isn) >>> 0
      if (!st.pieces.has(rel) || st.pieces.get(rel)!.length < data.length) st.pieces.set(rel, Buffer.from(data))
    }
  }
  const out: CapturedStream[] = []
  for (const st of streams.values()) {
    const parts: Buffer[] = []
    let next = 0
    for (const rel of [...st.pieces.keys()].sort((a, b) => a - b)) {
      const b = st.pieces.get(rel)!
      if (rel + b.length <= next) continue
      parts.push(b.subarray(Math.max(0, next - rel)))
      next = rel + b.length
    }
    st.s.payload = Buffer.concat(parts)
    out.push(st.s)
  }
  return out
}
