/**
 * Namespace lab for the inline gateway:
 *
 *   [ppc-ID client 10.0.0.1] c0 ---- ga [ppg-ID gateway: bridge over ga,gb] gb ---- s0 [pps-ID server 10.0.0.3]
 *
 * Addresses from 10.0.0.0/24 inside the namespaces only, no default route; unique names per
 * run; `destroy()` deletes the namespaces (and so everything in them). `LabTopology` gives
 * another set of names and addresses (lab6.ts: IPv6 beside the IPv4 lab).
 */
import {execFileSync, spawn, type ChildProcess} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export const CLIENT_IP = '10.0.0.1'
export const SERVER_IP = '10.0.0.3'

/** a file's text, '' while it does not exist (server logs, event files the gateway writes) */
export function textOf(file: string): string {
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : ''
}

/** a file's lines, [] while it does not exist */
export function linesOf(file: string): string[] {
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n') : []
}

export function labSkipReason(): string | null {
  if (process.getuid?.() !== 0) return 'the gateway lab needs root (network namespaces, bridge, nftables)'
  for (const c of ['ip', 'nft', 'ethtool', 'nginx', 'curl']) {
    try {
      execFileSync('sh', ['-c', `command -v ${c}`], {stdio: 'ignore'})
    } catch {
      return `the gateway lab needs ${c} (apt-get install iproute2 nftables ethtool nginx curl)`
    }
  }
  return null
}

/** Names and addresses of one lab: namespace prefixes, veth names, the two hosts' addresses. */
export interface LabTopology {
  ns: {client: string; gw: string; server: string}
  /** client end, gateway port A, gateway port B, server end */
  devs: readonly [string, string, string, string]
  clientIp: string
  serverIp: string
  /** `listen` argument of nginx for a port */
  listen: (port: number) => string
  tmpPrefix: string
}

export const LAB4: LabTopology = {
  ns: {client: 'ppc-', gw: 'ppg-', server: 'pps-'},
  devs: ['c0', 'ga', 'gb', 's0'],
  clientIp: CLIENT_IP,
  serverIp: SERVER_IP,
  listen: (p) => `${SERVER_IP}:${p}`,
  tmpPrefix: 'pp-gwlab-',
}

export class GatewayLab {
  readonly id = `${process.pid % 10000}${Math.floor(Math.random() * 1000)}`
  readonly client: string
  readonly gw: string
  readonly server: string
  readonly dir: string
  private children: ChildProcess[] = []

  constructor(readonly topo: LabTopology = LAB4) {
    this.client = `${topo.ns.client}${this.id}`
    this.gw = `${topo.ns.gw}${this.id}`
    this.server = `${topo.ns.server}${this.id}`
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), topo.tmpPrefix))
  }

  sh(ns: string, cmd: string, opts: {timeoutMs?: number} = {}): string {
    return execFileSync('ip', ['netns', 'exec', ns, 'sh', '-c', cmd], {encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, stdio: ['ignore', 'pipe', 'pipe']})
  }

  /** run and return exit code + output, never throws */
  try(ns: string, cmd: string, timeoutMs = 60_000): {code: number; out: string} {
    try {
      return {code: 0, out: this.sh(ns, cmd, {timeoutMs})}
    } catch (e) {
      const err = e as {status?: number; stdout?: string; stderr?: string}
      return {code: err.status ?? -1, out: `${err.stdout ?? ''}${err.stderr ?? ''}`}
    }
  }

  /** curl (silent, errors shown) from the client namespace; `flags` go before the arguments (e.g. '-6 -g') */
  curl(args: string, timeoutMs = 30_000, flags = ''): {code: number; out: string} {
    return this.try(this.client, `curl ${flags ? `${flags} ` : ''}-sS --max-time ${Math.ceil(timeoutMs / 1000)} ${args}`, timeoutMs + 5000)
  }

  spawn(ns: string, argv: string[]): ChildProcess {
    const c = spawn('ip', ['netns', 'exec', ns, ...argv], {stdio: ['ignore', 'pipe', 'pipe']})
    this.children.push(c)
    return c
  }

  create(): void {
    const run = (args: string[]) => execFileSync('ip', args, {stdio: 'pipe'})
    for (const ns of [this.client, this.gw, this.server]) run(['netns', 'add', ns])
    const [c0, ga, gb, s0] = this.topo.devs
    run(['link', 'add', c0, 'netns', this.client, 'type', 'veth', 'peer', 'name', ga, 'netns', this.gw])
    run(['link', 'add', s0, 'netns', this.server, 'type', 'veth', 'peer', 'name', gb, 'netns', this.gw])
    const off = 'tx off tso off gso off gro off'
    for (const [ns, dev, ip] of [[this.client, c0, this.topo.clientIp], [this.server, s0, this.topo.serverIp]] as const) {
      // IPv6: nodad so the address is usable at once
      const addr = ip.includes(':') ? `ip -6 addr add ${ip}/64 dev ${dev} nodad` : `ip addr add ${ip}/24 dev ${dev}`
      this.sh(ns, `ip link set lo up; ${addr}; ethtool -K ${dev} ${off} >/dev/null 2>&1; ip link set ${dev} up`)
    }
    this.sh(this.gw, 'ip link set lo up')
  }

  /** nginx in the server namespace: ports, a 1 MB file, access log with the User-Agent */
  startNginx(ports: number[]): {accessLog: string; oneMb: string} {
    const root = path.join(this.dir, 'www')
    fs.mkdirSync(root, {recursive: true})
    const oneMb = path.join(root, '1mb.bin')
    fs.writeFileSync(oneMb, Buffer.from(Array.from({length: 1 << 20}, (_, i) => (i * 2654435761) >>> 24)))
    fs.writeFileSync(path.join(root, 'index.html'), 'hello\n')
    fs.writeFileSync(path.join(root, '4mb.bin'), Buffer.alloc(4 << 20, 7))
    const accessLog = path.join(this.dir, 'access.log')
    const conf = path.join(this.dir, 'nginx.conf')
    fs.writeFileSync(conf, `
daemon on;
user root;
worker_processes 1;
pid ${this.dir}/nginx.pid;
error_log ${this.dir}/error.log;
events { worker_connections 256; }
http {
  access_log ${accessLog} combined;
  client_body_temp_path ${this.dir}/body;
  proxy_temp_path ${this.dir}/proxy;
  fastcgi_temp_path ${this.dir}/fastcgi;
  uwsgi_temp_path ${this.dir}/uwsgi;
  scgi_temp_path ${this.dir}/scgi;
  server {
${ports.map((p) => `    listen ${this.topo.listen(p)};`).join('\n')}
    root ${root};
    location / { try_files $uri /index.html; }
  }
}
`)
    fs.chmodSync(this.dir, 0o755)
    this.sh(this.server, `nginx -c ${conf}`)
    return {accessLog, oneMb}
  }

  destroy(): void {
    for (const c of this.children) {
      if (c.exitCode === null && c.signalCode === null && c.pid) {
        try {
          process.kill(c.pid, 'SIGKILL')
        } catch {
          // gone
        }
      }
    }
    try {
      const pid = fs.readFileSync(path.join(this.dir, 'nginx.pid'), 'utf8').trim()
      if (pid) process.kill(Number(pid), 'SIGTERM')
    } catch {
      // not started
    }
    for (const ns of [this.client, this.gw, this.server]) {
      try {
        execFileSync('ip', ['netns', 'del', ns], {stdio: 'ignore'})
      } catch {
        // not there
      }
    }
    fs.rmSync(this.dir, {recursive: true, force: true})
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
