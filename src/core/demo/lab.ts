/**
 * The demo's throwaway network, in namespaces with unique names (`ppdemo<random>-*`):
 *
 *   [<id>-atk  198.51.100.66] eth0 ---- ga [<id>-gw: ga, gb] gb ---- eth0 [<id>-srv  198.51.100.10]
 *        attacker / client                 the gateway's two ports        nginx, vsftpd, postfix
 *
 * Addresses come from TEST-NET-2 (RFC 5737) and exist only inside the namespaces; there is no
 * default route, so nothing leaves the lab. Until `patchpoint run` bridges ga and gb, a plain
 * kernel bridge (`cable0`) joins them, as the switch port the gateway is later inserted into.
 */
import {execFileSync} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {hasCommand, Lab} from '../lab/netns.js'
import {startNginx, startPostfix, startVsftpd} from '../lab/servers.js'

export const DEMO_PREFIX = 'ppdemo'
export const SUBNET = '198.51.100.0/24'
export const ATTACKER_IP = '198.51.100.66'
export const SERVER_IP = '198.51.100.10'
/** the benign download: deterministic bytes, checked byte for byte at the client */
export const PAGE_BYTES = 256 * 1024
export const PAGE_NAME = 'demo-page.bin'
export const FTP_FILE = 'readme.txt'

export interface ServerStatus {
  name: string
  port: number
  started: boolean
  /** why it was skipped or failed */
  note?: string
}

export interface DemoLab {
  lab: Lab
  /** namespace names */
  attacker: string
  gateway: string
  server: string
  www: string
  ftpRoot?: string
  servers: ServerStatus[]
}

/** The page nginx serves for the benign check (deterministic, every byte value present). */
export function pageBytes(n = PAGE_BYTES): Buffer {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = (Math.imul(i, 2654435761) >>> 24) & 0xff
  return b
}

/** Build the namespaces and links (throws on a failing `ip` command; the caller cleans up). */
export function buildTopology(): DemoLab {
  const lab = new Lab(24, {prefix: DEMO_PREFIX, switch: false})
  try {
    const gateway = lab.addNamespace('gw')
    const atk = lab.addHost('atk', ATTACKER_IP, {peerNs: gateway, peerIf: 'ga'})
    const srv = lab.addHost('srv', SERVER_IP, {peerNs: gateway, peerIf: 'gb'})
    connectCable(lab, gateway)
    return {lab, attacker: atk.ns, gateway, server: srv.ns, www: '', servers: []}
  } catch (err) {
    lab.cleanup()
    throw err
  }
}

/** The "cable" before the gateway: a plain bridge over ga and gb. */
export function connectCable(lab: Lab, gateway: string): void {
  lab.ip(gateway, 'link', 'add', 'cable0', 'type', 'bridge')
  lab.ip(gateway, 'link', 'set', 'ga', 'master', 'cable0')
  lab.ip(gateway, 'link', 'set', 'gb', 'master', 'cable0')
  lab.ip(gateway, 'link', 'set', 'cable0', 'up')
}

/** Remove the cable so `patchpoint run` can bridge the two ports itself. */
export function removeCable(lab: Lab, gateway: string): void {
  lab.ip(gateway, 'link', 'del', 'cable0')
  lab.ip(gateway, 'link', 'set', 'ga', 'up')
  lab.ip(gateway, 'link', 'set', 'gb', 'up')
}

function userExists(name: string): boolean {
  try {
    execFileSync('id', [name], {stdio: 'ignore'})
    return true
  } catch {
    return false
  }
}

/** Start nginx (required) and vsftpd / postfix when installed; a missing one is noted, not fatal. */
export async function startServers(d: DemoLab): Promise<void> {
  const {lab} = d
  d.www = lab.folder('www')
  writeFileSync(path.join(d.www, PAGE_NAME), pageBytes())
  writeFileSync(path.join(d.www, 'index.html'), '<h1>patchpoint demo</h1>\n')
  await startNginx(lab, 'srv', SERVER_IP, [80], {root: d.www, accessLog: path.join(lab.dir, 'access.log')})
  d.servers.push({name: 'nginx', port: 80, started: true})

  if (!existsSync('/usr/sbin/vsftpd')) {
    d.servers.push({name: 'vsftpd', port: 21, started: false, note: 'not installed (apt-get install vsftpd): FTP part skipped'})
  } else {
    try {
      await startVsftpd(lab, 'srv', SERVER_IP)
      const root = path.join(lab.dir, 'srv-vsftpd', 'anon')
      writeFileSync(path.join(root, FTP_FILE), 'patchpoint demo: a file fetched over FTP through the gateway\n'.repeat(64))
      d.ftpRoot = root
      d.servers.push({name: 'vsftpd', port: 21, started: true})
    } catch (err) {
      d.servers.push({name: 'vsftpd', port: 21, started: false, note: `did not start: ${(err as Error).message.split('\n')[0]}`})
    }
  }

  if (!existsSync('/usr/sbin/postfix') || !existsSync('/etc/postfix/master.cf') || !userExists('postfix')) {
    d.servers.push({name: 'postfix', port: 25, started: false, note: 'not installed (apt-get install postfix): SMTP part skipped'})
  } else {
    try {
      await startPostfix(lab, 'srv', SERVER_IP)
      d.servers.push({name: 'postfix', port: 25, started: true})
    } catch (err) {
      d.servers.push({name: 'postfix', port: 25, started: false, note: `did not start: ${(err as Error).message.split('\n')[0]}`})
    }
  }
}

/** What the demo needs on the host; empty when everything is there. */
export function missingTools(): string[] {
  const need: [string, string][] = [['ip', 'iproute2'], ['nft', 'nftables'], ['nginx', 'nginx'], ['curl', 'curl']]
  return need.filter(([c]) => !hasCommand(c) && !existsSync(`/usr/sbin/${c}`)).map(([c, pkg]) => `${c} (apt-get install ${pkg})`)
}

/** a folder readable by the servers' unprivileged workers */
export function publicFolder(p: string): string {
  mkdirSync(p, {recursive: true})
  chmodSync(p, 0o755)
  return p
}
