/**
 * discover + fingerprint against real servers in network namespaces.
 *
 *   ns client 198.51.100.2 ──┐
 *   ns web    198.51.100.11 ─┤  nginx :80 and :43389 (non-default port), OpenSSH :22
 *   ns mail   198.51.100.12 ─┤  vsftpd :21, Postfix :25, Dovecot :143/:110
 *   ns db     198.51.100.13 ─┤  MariaDB :3306, Apache :8080, rpcbind :111 + rpc.statd (dynamic)
 *   ns fw     198.51.100.14 ─┘  nftables: drops all IP but TCP :2222 (OpenSSH); answers ARP
 *           (bridge br0 in ns sw; TEST-NET-2 addresses; no route out)
 *
 * The scanner runs only in `client` (ip netns exec). Needs root, iproute2, nftables, ethtool,
 * and the Debian packages: nginx openssh-server vsftpd postfix dovecot-imapd dovecot-pop3d
 * mariadb-server apache2 rpcbind nfs-common.
 */
import {execFileSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, it, expect, beforeAll, afterAll} from 'vitest'
import {hasCommand, Lab, labSupport} from '../lab/netns.js'
import {compileEntry, REPO_ROOT} from '../lab/compile.js'
import {firewallAllBut, startApache, startDovecot, startMariadb, startNginx, startPostfix, startRpc, startSshd, startVsftpd} from '../lab/servers.js'
import type {DiscoverResult} from '../../src/core/scan/discover.js'
import type {FingerprintResult} from '../../src/core/scan/fingerprint.js'
import type {Inventory} from '../../src/core/inventory/inventory.js'

const support = labSupport()
const NEEDED = ['nginx', 'sshd', 'vsftpd', 'postfix', 'dovecot', 'mariadbd', 'apache2', 'rpcbind', 'rpc.statd', 'nft', 'rpcinfo']
const missing = support.ok ? NEEDED.filter((c) => !hasCommand(c) && !hasCommand(`/usr/sbin/${c}`)) : []
const skip = !support.ok || missing.length > 0
if (skip) console.warn(`test/scan/lab.test.ts skipped: ${support.reason ?? `missing ${missing.join(', ')}`}`)

const NET = '198.51.100'

describe.skipIf(skip)('discover and fingerprint in a namespace lab', () => {
  let lab: Lab
  let runner: string
  let project: string

  const run = <T>(kind: 'discover' | 'fingerprint', options: object): {result: T; wallMs: number} => {
    const job = JSON.stringify({kind, options, probesDir: path.join(REPO_ROOT, 'rules/probes'), projectDir: project})
    const out = execFileSync('ip', ['netns', 'exec', lab.ns('client'), process.execPath, runner, job], {encoding: 'utf8', timeout: 150_000})
    return JSON.parse(out.trim().split('\n').pop()!)
  }

  beforeAll(async () => {
    lab = new Lab()
    try {
      const compiling = Promise.resolve().then(() => compileEntry('test/scan/run-scan.ts'))
      lab.addHost('client', `${NET}.2`)
      lab.addHost('web', `${NET}.11`)
      lab.addHost('mail', `${NET}.12`)
      lab.addHost('db', `${NET}.13`)
      lab.addHost('fw', `${NET}.14`)
      project = mkdtempSync(path.join(tmpdir(), 'pp-scan-project-'))
      writeFileSync(path.join(project, 'patchpoint.yaml'), '# lab project\n')
      await startNginx(lab, 'web', `${NET}.11`, [80, 43389])
      await startSshd(lab, 'web', `${NET}.11`)
      await startVsftpd(lab, 'mail', `${NET}.12`)
      await startPostfix(lab, 'mail', `${NET}.12`)
      await startDovecot(lab, 'mail', `${NET}.12`)
      await startMariadb(lab, 'db', `${NET}.13`)
      await startApache(lab, 'db', `${NET}.13`, 8080)
      await startRpc(lab, 'db', `${NET}.13`)
      await startSshd(lab, 'fw', `${NET}.14`, 2222)
      firewallAllBut(lab, 'fw', 2222)
      runner = await compiling
    } catch (err) {
      lab.cleanup()
      throw err
    }
  }, 300_000)

  afterAll(() => {
    lab?.cleanup()
    if (project) rmSync(project, {recursive: true, force: true})
    if (runner) rmSync(path.dirname(path.dirname(path.dirname(runner))), {recursive: true, force: true})
  })

  it('discover finds every host, including the firewalled one (ARP only), never one outside the range', () => {
    const {result} = run<DiscoverResult>('discover', {targets: [`${NET}.0/24`], exclude: [`${NET}.200-254`], rate: 20000, retries: 1, waitMs: 500, method: 'raw'})
    const ips = result.hosts.map((h) => h.ip)
    expect(result.method).toBe('raw')
    expect(ips).toEqual([`${NET}.11`, `${NET}.12`, `${NET}.13`, `${NET}.14`])
    const fw = result.hosts.find((h) => h.ip === `${NET}.14`)!
    expect(fw.found_by).toEqual(['arp'])
    const web = result.hosts.find((h) => h.ip === `${NET}.11`)!
    expect(web.found_by).toEqual(expect.arrayContaining(['arp', 'icmp', 'tcp-syn']))
    expect(web.open_ports).toEqual(expect.arrayContaining([22, 80]))
    expect(web.os_hints.map((h) => h.os)).toContain('unix')
    expect(result.targets).toBe(254 - 55)
    const inv = JSON.parse(readFileSync(path.join(project, '.patchpoint/inventory.json'), 'utf8')) as Inventory
    expect(inv.hosts.map((h) => h.ip)).toEqual(ips)
    expect(inv.hosts[0].mac).toBe(lab.hosts.get('web')!.mac)
  })

  it('discover without raw access falls back to connect() and finds the hosts with open ports', () => {
    // the range holds the scanner's own address (.2): it answers connect() but is not listed
    const {result} = run<DiscoverResult>('discover', {targets: [`${NET}.2`, `${NET}.10-15`], method: 'connect', waitMs: 500})
    expect(result.method).toBe('connect')
    expect(result.hosts.map((h) => h.ip)).toEqual([`${NET}.11`, `${NET}.12`, `${NET}.13`])
  })

  it('fingerprint names every product (and version where the service tells it), the high port and dynamic RPC ports', () => {
    const ports = '21,22,25,80,110,111,143,2222,3306,8080,43389'.split(',').map(Number)
    const {result} = run<FingerprintResult>('fingerprint', {hosts: [`${NET}.11`, `${NET}.12`, `${NET}.13`, `${NET}.14`], ports, method: 'raw'})
    const svc = (ip: string, port: number) => result.hosts.find((h) => h.ip === `${NET}.${ip}`)?.services.find((s) => s.port === port && s.proto === 'tcp')
    expect(svc('11', 80)).toMatchObject({service: 'http', product: 'nginx/nginx'})
    expect(svc('11', 80)?.version).toMatch(/^1\.\d+\.\d+$/)
    expect(svc('11', 43389)).toMatchObject({service: 'http', product: 'nginx/nginx'})
    expect(svc('11', 22)).toMatchObject({service: 'ssh', product: 'openbsd/openssh'})
    expect(svc('11', 22)?.version).toMatch(/^\d+\.\d+p\d$/)
    expect(svc('12', 21)).toMatchObject({service: 'ftp', product: 'vsftpd/vsftpd'})
    expect(svc('12', 21)?.version).toMatch(/^\d+\.\d+\.\d+$/)
    expect(svc('12', 25)).toMatchObject({service: 'smtp', product: 'postfix/postfix'})
    expect(svc('12', 143)).toMatchObject({service: 'imap', product: 'dovecot/dovecot'})
    if (existsSync('/usr/lib/dovecot/pop3')) expect(svc('12', 110)).toMatchObject({service: 'pop3', product: 'dovecot/dovecot'})
    expect(svc('13', 3306)).toMatchObject({service: 'mysql', product: 'mariadb/mariadb'})
    expect(svc('13', 3306)?.version).toMatch(/^10\.\d+\.\d+$/)
    expect(svc('13', 8080)).toMatchObject({service: 'http', product: 'apache/http_server'})
    expect(svc('13', 8080)?.version).toMatch(/^2\.4\.\d+$/)
    expect(svc('13', 111)).toMatchObject({service: 'rpcbind', product: 'rpcbind/rpcbind'})
    const statd = result.hosts.find((h) => h.ip === `${NET}.13`)!.services.filter((s) => s.rpc_program?.program === 100024)
    expect(statd.length).toBeGreaterThanOrEqual(1)
    expect(statd.some((s) => s.proto === 'tcp' && s.port > 1024 && s.service === 'status')).toBe(true)
    expect(svc('14', 2222)).toMatchObject({service: 'ssh', product: 'openbsd/openssh'})
    const inv = JSON.parse(readFileSync(path.join(project, '.patchpoint/inventory.json'), 'utf8')) as Inventory
    const dbHost = inv.hosts.find((h) => h.ip === `${NET}.13`)!
    expect(dbHost.services.find((s) => s.port === 3306)?.product).toBe('mariadb/mariadb')
    expect(dbHost.os_hints.length).toBeGreaterThan(0)
  })
})
