/**
 * Real servers from Debian packages, started inside a lab host with a private config (NOTES.md:
 * packages must not start their system daemons: /usr/sbin/policy-rc.d exits 101). Each helper
 * returns once the port accepts connections.
 */
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, chmodSync} from 'node:fs'
import path from 'node:path'
import type {Lab} from './netns.js'

export interface NginxOptions {
  /** serve files from this folder (default: every path answers "lab") */
  root?: string
  /** write an access log here (default: none) */
  accessLog?: string
}

export async function startNginx(lab: Lab, host: string, ip: string, ports: number[], options: NginxOptions = {}): Promise<void> {
  const d = lab.folder(`${host}-nginx`)
  const location = options.root === undefined ? 'location / { return 200 "lab\\n"; }' : `root ${options.root};`
  const conf = lab.write(path.join(d, 'nginx.conf'), `
pid ${d}/nginx.pid;
error_log ${d}/error.log;
worker_processes 1;
events { worker_connections 256; }
http {
  access_log ${options.accessLog ?? 'off'};
  client_body_temp_path ${d}/body;
  proxy_temp_path ${d}/proxy;
  fastcgi_temp_path ${d}/fastcgi;
  uwsgi_temp_path ${d}/uwsgi;
  scgi_temp_path ${d}/scgi;
  server {
${ports.map((p) => `    listen ${ip}:${p};`).join('\n')}
    ${location}
  }
}
`)
  lab.run(host, '/usr/sbin/nginx', ['-c', conf, '-p', d])
  lab.trackPidFile(`${d}/nginx.pid`)
  for (const p of ports) await lab.waitPort(host, ip, p)
}

export async function startSshd(lab: Lab, host: string, ip: string, port = 22): Promise<void> {
  const d = lab.folder(`${host}-sshd`)
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', `${d}/key`])
  mkdirSync('/run/sshd', {recursive: true})
  const conf = lab.write(path.join(d, 'sshd_config'), `Port ${port}\nListenAddress ${ip}\nHostKey ${d}/key\nPidFile ${d}/sshd.pid\nUsePAM no\n`)
  lab.run(host, '/usr/sbin/sshd', ['-f', conf])
  lab.trackPidFile(`${d}/sshd.pid`)
  await lab.waitPort(host, ip, port)
}

export async function startVsftpd(lab: Lab, host: string, ip: string): Promise<void> {
  const d = lab.folder(`${host}-vsftpd`)
  const root = lab.folder(`${host}-vsftpd/anon`)
  chmodSync(root, 0o555)
  mkdirSync('/var/run/vsftpd/empty', {recursive: true})
  const conf = lab.write(path.join(d, 'vsftpd.conf'), [
    'listen=YES', 'listen_ipv6=NO', `listen_address=${ip}`, 'anonymous_enable=YES', 'local_enable=NO',
    `anon_root=${root}`, 'secure_chroot_dir=/var/run/vsftpd/empty', 'pasv_min_port=40000', 'pasv_max_port=40100',
    `xferlog_file=${d}/xfer.log`, 'seccomp_sandbox=NO', 'background=NO', '',
  ].join('\n'))
  lab.spawn(host, '/usr/sbin/vsftpd', [conf])
  await lab.waitPort(host, ip, 21)
}

export async function startDovecot(lab: Lab, host: string, ip: string): Promise<void> {
  const d = lab.folder(`${host}-dovecot`)
  const conf = lab.write(path.join(d, 'dovecot.conf'), `
base_dir = ${d}/run
state_dir = ${d}/state
log_path = ${d}/dovecot.log
listen = ${ip}
protocols = imap${existsSync('/usr/lib/dovecot/pop3') ? ' pop3' : ''}
ssl = no
mail_location = mbox:${d}/mail
passdb {
  driver = static
  args = password=lab
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=${d}/home
}
`)
  lab.run(host, '/usr/sbin/dovecot', ['-c', conf])
  lab.trackPidFile(`${d}/run/master.pid`)
  await lab.waitPort(host, ip, 143)
}

export async function startPostfix(lab: Lab, host: string, ip: string): Promise<void> {
  const d = lab.folder(`${host}-postfix`)
  const q = lab.folder(`${host}-postfix/queue`)
  const data = lab.folder(`${host}-postfix/data`)
  execFileSync('chown', ['postfix', data])
  lab.write(path.join(d, 'main.cf'), [
    `queue_directory = ${q}`, `data_directory = ${data}`, 'command_directory = /usr/sbin', 'daemon_directory = /usr/lib/postfix/sbin',
    `inet_interfaces = ${ip}`, 'inet_protocols = ipv4', 'myhostname = mail.lab.test', 'mydestination =', 'compatibility_level = 3.6',
    `maillog_file = ${d}/maillog`, `maillog_file_prefixes = ${d}`, 'smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)',
    'smtpd_peername_lookup = no', 'alias_maps =', 'alias_database =', '',
  ].join('\n'))
  execFileSync('cp', ['/etc/postfix/master.cf', path.join(d, 'master.cf')])
  lab.run(host, '/usr/sbin/postfix', ['-c', d, 'start'])
  lab.trackPidFile(`${q}/pid/master.pid`)
  await lab.waitPort(host, ip, 25)
}

export async function startMariadb(lab: Lab, host: string, ip: string): Promise<void> {
  const d = lab.folder(`${host}-mariadb`)
  const data = path.join(d, 'data')
  execFileSync('chown', ['mysql', d])
  execFileSync('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--user=mysql', '--auth-root-authentication-method=normal', '--skip-test-db'], {stdio: 'ignore', timeout: 120_000})
  lab.spawn(host, '/usr/sbin/mariadbd', ['--no-defaults', `--datadir=${data}`, '--user=mysql', `--bind-address=${ip}`, '--port=3306',
    `--socket=${d}/mysql.sock`, `--pid-file=${d}/mysql.pid`, '--skip-log-bin', '--innodb-buffer-pool-size=16M'])
  await lab.waitPort(host, ip, 3306, 60_000)
  // a remote account, as a real server has: clients then get the greeting (with the version)
  execFileSync('mariadb', ['--no-defaults', `--socket=${d}/mysql.sock`, '-uroot', '-e', "CREATE USER 'lab'@'%' IDENTIFIED BY 'lab'"], {stdio: 'ignore', timeout: 30_000})
}

export async function startApache(lab: Lab, host: string, ip: string, port: number): Promise<void> {
  const d = lab.folder(`${host}-apache`)
  const conf = lab.write(path.join(d, 'httpd.conf'), `
ServerRoot /etc/apache2
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule dir_module /usr/lib/apache2/modules/mod_dir.so
Listen ${ip}:${port}
ServerName lab.test
PidFile ${d}/httpd.pid
ErrorLog ${d}/error.log
DefaultRuntimeDir ${d}
User www-data
Group www-data
DocumentRoot ${d}
`)
  lab.spawn(host, '/usr/sbin/apache2', ['-f', conf, '-DFOREGROUND'])
  await lab.waitPort(host, ip, port)
}

/** rpcbind (111) and rpc.statd (program 100024 on a dynamic port) */
export async function startRpc(lab: Lab, host: string, ip: string): Promise<void> {
  mkdirSync('/run/rpcbind', {recursive: true})
  if (!existsSync('/var/lib/nfs/statd')) mkdirSync('/var/lib/nfs/statd/sm', {recursive: true})
  lab.spawn(host, '/usr/sbin/rpcbind', ['-f', '-w'])
  await lab.waitPort(host, ip, 111)
  lab.spawn(host, '/usr/sbin/rpc.statd', ['-F', '--no-notify'])
  // statd registers with rpcbind shortly after start
  const until = Date.now() + 15_000
  while (Date.now() < until) {
    try {
      if (lab.exec(host, 'rpcinfo', ['-p', ip]).includes('100024')) return
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error('lab: rpc.statd did not register with rpcbind')
}

/** drop every inbound IPv4 packet except TCP `port` (ARP is not IP: it still answers) */
export function firewallAllBut(lab: Lab, host: string, port: number): void {
  lab.exec(host, 'nft', ['-f', '-'], `table inet labfw {
  chain input {
    type filter hook input priority 0; policy drop;
    iif lo accept
    ct state established,related accept
    tcp dport ${port} accept
  }
}
`)
}
