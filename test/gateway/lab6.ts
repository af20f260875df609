/**
 * IPv6 namespace lab for the inline gateway (the pattern of lab.ts, its own names and addresses
 * so it runs beside the IPv4 lab):
 *
 *   [pp6-c-ID client fd00:6::1] p6c0 ---- p6ga [pp6-g-ID gateway: bridge] p6gb ---- p6s0 [pp6-s-ID server fd00:6::3]
 *
 * ULA addresses from fd00:6::/64 inside the namespaces only, `nodad` so they are usable at once,
 * no default route; `destroy()` deletes the namespaces (and so everything in them).
 */
import {execFileSync, spawn, type ChildProcess} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export const CLIENT6 = 'fd00:6::1'
export const SERVER6 = 'fd00:6::3'
export const GW_PORTS = ['p6ga', 'p6gb'] as const

export class GatewayLab6 {
  readonly id = `${process.pid % 10000}${Math.floor(Math.random() * 1000)}`
  readonly client = `pp6-c-${this.id}`
  readonly gw = `pp6-g-${this.id}`
  readonly server = `pp6-s-${this.id}`
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pp6-gwlab-'))
  private children: ChildProcess[] = []

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

  spawn(ns: string, argv: string[]): ChildProcess {
    const c = spawn('ip', ['netns', 'exec', ns, ...argv], {stdio: ['ignore', 'pipe', 'pipe']})
    this.children.push(c)
    return c
  }

  create(): void {
    const run = (args: string[]) => execFileSync('ip', args, {stdio: 'pipe'})
    for (const ns of [this.client, this.gw, this.server]) run(['netns', 'add', ns])
    run(['link', 'add', 'p6c0', 'netns', this.client, 'type', 'veth', 'peer', 'name', GW_PORTS[0], 'netns', this.gw])
    run(['link', 'add', 'p6s0', 'netns', this.server, 'type', 'veth', 'peer', 'name', GW_PORTS[1], 'netns', this.gw])
    const off = 'tx off tso off gso off gro off'
    for (const [ns, dev, addr] of [[this.client, 'p6c0', CLIENT6], [this.server, 'p6s0', SERVER6]] as const) {
      this.sh(ns, `ip link set lo up; ip -6 addr add ${addr}/64 dev ${dev} nodad; ethtool -K ${dev} ${off} >/dev/null 2>&1; ip link set ${dev} up`)
    }
    this.sh(this.gw, 'ip link set lo up')
  }

  /** nginx in the server namespace on [::]:PORT: a 1 MB file, access log with the User-Agent */
  startNginx(ports: number[]): {accessLog: string; oneMb: string} {
    const root = path.join(this.dir, 'www')
    fs.mkdirSync(root, {recursive: true})
    const oneMb = path.join(root, '1mb.bin')
    fs.writeFileSync(oneMb, Buffer.from(Array.from({length: 1 << 20}, (_, i) => (i * 2654435761) >>> 24)))
    fs.writeFileSync(path.join(root, 'index.html'), 'hello\n')
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
${ports.map((p) => `    listen [::]:${p} ipv6only=on;`).join('\n')}
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
