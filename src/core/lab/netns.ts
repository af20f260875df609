/**
 * Network-namespace lab (the scan tests and `patchpoint demo`).
 *
 *   ns <id>-sw : bridge br0 (no address; the switch)
 *        |-- v<host> <-veth-> eth0 in ns <id>-<host>   (one per host, e.g. 198.51.100.11/24)
 *
 * or, without the switch (`{switch: false}`), hosts whose eth0 is the peer of an interface in
 * another lab namespace (`addHost(name, ip, {peerNs, peerIf})`), e.g. the two ports of a gateway.
 *
 * Names are unique per run (`<prefix><random>`, prefix `pp` by default), every address lives
 * inside the lab's namespaces (TEST-NET ranges), there is no route out, and `cleanup()` kills
 * every process the lab started (by pid) and deletes the namespaces. Use `labSupport()` to skip
 * when not root or without `ip netns`. `teardownLabs(prefix)` removes labs left behind by a
 * process that is gone (`patchpoint demo --teardown`).
 */
import {execFileSync, spawn, type ChildProcess} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, chmodSync, openSync, closeSync, readdirSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

export function labSupport(): {ok: boolean; reason?: string} {
  if (process.platform !== 'linux') return {ok: false, reason: 'network namespaces need Linux'}
  if (process.getuid?.() !== 0) return {ok: false, reason: 'network-namespace tests need root (run as root or skip)'}
  try {
    execFileSync('ip', ['netns', 'list'], {stdio: 'ignore'})
  } catch {
    return {ok: false, reason: '`ip netns` is not available (package iproute2)'}
  }
  return {ok: true}
}

export function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], {stdio: 'ignore'})
    return true
  } catch {
    return false
  }
}

export interface LabOptions {
  /** name prefix of the namespaces and the temp folder (letters/digits); default 'pp' */
  prefix?: string
  /** create the switch namespace `<id>-sw` with bridge br0 (default true) */
  switch?: boolean
}

export interface AddHostOptions {
  /** put eth0's veth peer in this lab namespace (instead of the switch) */
  peerNs?: string
  /** the peer's interface name (<= 15 characters) */
  peerIf?: string
}

export interface LabHost {
  name: string
  ns: string
  ip: string
  mac: string
}

export class Lab {
  readonly id: string
  readonly dir: string
  readonly sw: string
  readonly hosts = new Map<string, LabHost>()
  private readonly procs: ChildProcess[] = []
  private readonly pidFiles: string[] = []
  private readonly namespaces: string[] = []

  constructor(readonly prefixlen = 24, options: LabOptions = {}) {
    this.id = `${options.prefix ?? 'pp'}${Math.random().toString(36).slice(2, 8)}`
    this.dir = mkdtempSync(path.join(tmpdir(), `${this.id}-`))
    chmodSync(this.dir, 0o755)
    this.sw = `${this.id}-sw`
    if (options.switch !== false) {
      this.addNs(this.sw)
      this.ip(this.sw, 'link', 'add', 'br0', 'type', 'bridge')
      this.ip(this.sw, 'link', 'set', 'br0', 'up')
      this.ip(this.sw, 'link', 'set', 'lo', 'up')
    }
  }

  private addNs(ns: string): void {
    execFileSync('ip', ['netns', 'add', ns])
    this.namespaces.push(ns)
  }

  /** the lab's namespaces, in creation order */
  get namespaceNames(): readonly string[] {
    return this.namespaces
  }

  /** a namespace with only lo (up), e.g. a gateway whose ports come from addHost(..., {peerNs}) */
  addNamespace(name: string): string {
    const ns = `${this.id}-${name}`
    this.addNs(ns)
    this.ip(ns, 'link', 'set', 'lo', 'up')
    return ns
  }

  /** `ip -n NS ...` */
  ip(ns: string, ...args: string[]): string {
    return execFileSync('ip', ['-n', ns, ...args], {encoding: 'utf8'})
  }

  /** run a command inside a host's namespace and return stdout */
  exec(host: string, cmd: string, args: string[] = [], input?: string): string {
    return execFileSync('ip', ['netns', 'exec', this.ns(host), cmd, ...args], {encoding: 'utf8', input, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], timeout: 120_000})
  }

  /** run a command that daemonizes itself (no pipes kept: a forked daemon must not hold them) */
  run(host: string, cmd: string, args: string[] = []): void {
    execFileSync('ip', ['netns', 'exec', this.ns(host), cmd, ...args], {stdio: 'ignore', timeout: 120_000})
  }

  ns(host: string): string {
    const h = this.hosts.get(host)
    if (!h) throw new Error(`lab: no host ${host}`)
    return h.ns
  }

  /** a host namespace with eth0 on the bridge; `ip` without prefix */
  addHost(name: string, ip: string, options: AddHostOptions = {}): LabHost {
    const ns = `${this.id}-${name}`
    this.addNs(ns)
    const peerNs = options.peerNs ?? this.sw
    const peer = (options.peerIf ?? `v${name}`).slice(0, 15)
    this.ip(peerNs, 'link', 'add', peer, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns)
    if (options.peerNs === undefined) this.ip(this.sw, 'link', 'set', peer, 'master', 'br0', 'up')
    else this.ip(peerNs, 'link', 'set', peer, 'up')
    this.ip(ns, 'link', 'set', 'lo', 'up')
    this.ip(ns, 'addr', 'add', `${ip}/${this.prefixlen}`, 'dev', 'eth0')
    this.ip(ns, 'link', 'set', 'eth0', 'up')
    for (const [n, dev] of [[peerNs, peer], [ns, 'eth0']]) {
      try {
        execFileSync('ip', ['netns', 'exec', n, 'ethtool', '-K', dev, 'tx', 'off', 'tso', 'off', 'gso', 'off', 'gro', 'off'], {stdio: 'ignore'})
      } catch {
        // ethtool missing: offloads stay on (fine for connect-based tests)
      }
    }
    const mac = (JSON.parse(this.ip(ns, '-j', 'link', 'show', 'eth0')) as {address: string}[])[0].address
    const h = {name, ns, ip, mac}
    this.hosts.set(name, h)
    return h
  }

  /** extra addresses on a host's eth0 (a responder for many addresses) */
  addAddresses(host: string, ips: string[]): void {
    for (const a of ips) this.ip(this.ns(host), 'addr', 'add', `${a}/${this.prefixlen}`, 'dev', 'eth0')
  }

  /** a private folder for one server's config and state */
  folder(name: string): string {
    const d = path.join(this.dir, name)
    mkdirSync(d, {recursive: true})
    chmodSync(d, 0o755)
    return d
  }

  write(file: string, text: string): string {
    writeFileSync(file, text)
    return file
  }

  /** start a long-running process inside a host namespace; killed by cleanup() */
  spawn(host: string, cmd: string, args: string[], logName = path.basename(cmd)): ChildProcess {
    void logName
    const p = spawn('ip', ['netns', 'exec', this.ns(host), cmd, ...args], {stdio: ['ignore', 'ignore', 'ignore'], detached: false})
    this.procs.push(p)
    return p
  }

  /**
   * start a long-running process in a namespace (by namespace name), its output appended to
   * `logFile`; `detached` lets it outlive this process (demo --keep). Killed by cleanup().
   */
  spawnLogged(ns: string, argv: string[], logFile: string, detached = false): ChildProcess {
    const fd = openSync(logFile, 'a')
    try {
      const p = spawn('ip', ['netns', 'exec', ns, ...argv], {stdio: ['ignore', fd, fd], detached})
      this.procs.push(p)
      if (detached) p.unref()
      return p
    } finally {
      closeSync(fd)
    }
  }

  /** a daemon that forks itself: remember its pid file so cleanup kills it */
  trackPidFile(file: string): void {
    this.pidFiles.push(file)
  }

  /** wait until host:port accepts TCP connections (from inside the host's namespace) */
  async waitPort(host: string, ip: string, port: number, timeoutMs = 20_000): Promise<void> {
    const until = Date.now() + timeoutMs
    for (;;) {
      try {
        execFileSync('ip', ['netns', 'exec', this.ns(host), 'bash', '-c', `exec 3<>/dev/tcp/${ip}/${port}`], {stdio: 'ignore', timeout: 2000})
        return
      } catch {
        if (Date.now() > until) throw new Error(`lab: ${ip}:${port} did not open within ${timeoutMs} ms`)
        await new Promise((r) => setTimeout(r, 200))
      }
    }
  }

  /** let this process exit while the lab's processes keep running (`demo --keep`) */
  release(): void {
    for (const p of this.procs) p.unref()
  }

  /** kill processes (by pid), delete namespaces and the temp folder; safe to call twice */
  cleanup(): void {
    for (const f of this.pidFiles) {
      try {
        const pid = Number(readFileSync(f, 'utf8').trim().split(/\s+/)[0])
        if (pid > 1) process.kill(pid, 'SIGTERM')
      } catch {
        // already gone
      }
    }
    for (const p of this.procs) {
      try {
        if (p.pid && p.exitCode === null) process.kill(p.pid, 'SIGTERM')
      } catch {
        // already gone
      }
    }
    // processes still inside our namespaces (forked daemons) go by pid too
    for (const ns of this.namespaces) {
      try {
        const pids = execFileSync('ip', ['netns', 'pids', ns], {encoding: 'utf8'}).split(/\s+/).filter(Boolean).map(Number)
        for (const pid of pids) {
          try {
            process.kill(pid, 'SIGKILL')
          } catch {
            // gone
          }
        }
      } catch {
        // namespace gone
      }
    }
    for (const ns of [...this.namespaces].reverse()) {
      try {
        execFileSync('ip', ['netns', 'del', ns], {stdio: 'ignore'})
      } catch {
        // gone
      }
    }
    this.namespaces.length = 0
    rmSync(this.dir, {recursive: true, force: true})
  }
}

/** namespaces whose name starts with `prefix` (from `ip netns list`) */
export function listLabNamespaces(prefix: string): string[] {
  try {
    return execFileSync('ip', ['netns', 'list'], {encoding: 'utf8'}).split('\n')
      .map((l) => l.trim().split(/\s+/)[0] ?? '').filter((n) => n !== '' && n.startsWith(prefix))
  } catch {
    return []
  }
}

/**
 * Remove labs left behind (e.g. `patchpoint demo --keep`): every process inside a namespace named
 * `<prefix>...` is killed by pid, the namespaces are deleted, and the temp folders
 * `<tmpdir>/<prefix>...-*` go. Returns what was removed. Never throws.
 */
export function teardownLabs(prefix: string): {namespaces: string[]; folders: string[]} {
  if (!/^[a-z][a-z0-9]{2,}$/.test(prefix)) return {namespaces: [], folders: []}
  const namespaces = listLabNamespaces(prefix)
  for (const ns of namespaces) {
    try {
      const pids = execFileSync('ip', ['netns', 'pids', ns], {encoding: 'utf8'}).split(/\s+/).filter(Boolean).map(Number)
      for (const pid of pids) {
        try {
          // SIGTERM first: a gateway removes its nftables table and bridge on SIGTERM
          process.kill(pid, 'SIGTERM')
        } catch {
          // gone
        }
      }
    } catch {
      // namespace gone
    }
  }
  if (namespaces.length > 0) execFileSync('sleep', ['1'])
  for (const ns of namespaces) {
    try {
      const pids = execFileSync('ip', ['netns', 'pids', ns], {encoding: 'utf8'}).split(/\s+/).filter(Boolean).map(Number)
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          // gone
        }
      }
    } catch {
      // namespace gone
    }
    try {
      execFileSync('ip', ['netns', 'del', ns], {stdio: 'ignore'})
    } catch {
      // gone
    }
  }
  const folders: string[] = []
  try {
    for (const f of readdirSync(tmpdir())) {
      if (!f.startsWith(prefix) || !/^[a-z0-9]+-/.test(f)) continue
      rmSync(path.join(tmpdir(), f), {recursive: true, force: true})
      folders.push(path.join(tmpdir(), f))
    }
  } catch {
    // tmpdir unreadable
  }
  return {namespaces, folders}
}
