/**
 * The inline gateway against the bare kernel bridge, measured in the same run (root only):
 *
 *   [client 10.0.0.1] c0 ---- ga [gateway: bridge over ga,gb] gb ---- s0 [server 10.0.0.3]
 *
 * Three network namespaces of our own (unique names, deleted at the end), addresses inside
 * them only, no default route: nothing leaves the namespaces. PATCHPOINT_BENCH_RUNS (default 3)
 * rounds, each measuring the bare bridge and then a fresh gateway back to back (before its HTTP
 * and SMTP runs the gateway carries PATCHPOINT_BENCH_WARMUP_S seconds, default 2, of each,
 * unmeasured: figures are its steady state, not its JIT's first seconds); a figure is the
 * median of the per-round ratios against the bare bridge or nginx:
 *  - iperf3 through the gateway on an unprotected port / through a twin path (its own veth
 *    pairs over a bare bridge of its own in the same namespaces, always up), OPEN_PAIRS runs
 *    of each per round, alternating, once the fresh gateway is idle (the bare bridge has no
 *    process beside it): the shared machine's drift over seconds falls on both alike;
 *  - iperf3 through the bare bridge / through the gateway on a protected port (a plain TCP
 *    stream through the engine);
 *  - wrk of a 1 MB file from nginx on a protected port / through the bare bridge;
 *  - wrk through `run --proxy` / nginx direct;
 *  - SMTP: mails with a 1 MB body per second, a Python smtplib client against a Python sink
 *    (stdlib only) on a protected SMTP port / through the bare bridge;
 *  - peak RSS of the gateway under a SYN flood from random spoofed sources (hping3
 *    --rand-source, bounded to PATCHPOINT_BENCH_FLOOD_S seconds), with legitimate curl sessions
 *    to the protected port running during it (all must succeed).
 * PATCHPOINT_BENCH_PARTS (open, protected, wrk, smtp, proxy, flood; comma-separated, default all)
 * runs only some of them; every round's ratio is printed (the machine is shared: single rounds
 * vary widely). PATCHPOINT_BENCH_NODE_ARGS passes node options to the gateways (e.g. --cpu-prof).
 * Needs iperf3, wrk, hping3, nginx, curl, python3, nftables, ethtool (Debian packages).
 * Namespaces are named `ppd-<role>-<id>` (unique per run: parallel benches and tests do not collide).
 */
import {execFileSync, spawn, type ChildProcess} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {parseDocument} from 'yaml'

const here = path.dirname(fileURLToPath(import.meta.url))
const bin = path.resolve(here, '../../bin/run.js')
const CLIENT_IP = '10.0.0.1'
const SERVER_IP = '10.0.0.3'
/** the twin path: a second client-server link over a bare bridge of its own, always up */
const TWIN_CLIENT_IP = '10.0.1.1'
const TWIN_SERVER_IP = '10.0.1.3'
/** unprotected iperf3: pairs of runs per round, alternating the twin bare bridge and the gateway */
const OPEN_PAIRS = 3
/** seconds per iperf3 / wrk run */
export const BENCH_SECONDS = Number(process.env.PATCHPOINT_BENCH_SECONDS ?? 4)
/** length of the SYN flood (hping3 is stopped by `timeout` after this) */
/** unmeasured traffic through each round's fresh gateway before its measured runs */
export const WARMUP_SECONDS = Number(process.env.PATCHPOINT_BENCH_WARMUP_S ?? 2)
export const FLOOD_SECONDS = Number(process.env.PATCHPOINT_BENCH_FLOOD_S ?? 10)
/** longest wait for the gateway to say it is ready */
export const GATEWAY_START_MS = 120_000
/** at most this long waiting for a fresh gateway to go idle before the unprotected run */
const SETTLE_MS = 15_000
const RUNS = Math.max(1, Number(process.env.PATCHPOINT_BENCH_RUNS ?? 3))
/** extra node options of the gateway processes (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`), space-separated */
const NODE_ARGS = (process.env.PATCHPOINT_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)
/** the parts of the bench, all by default; PATCHPOINT_BENCH_PARTS=open,smtp runs only those */
export const BENCH_PARTS = ['open', 'protected', 'wrk', 'smtp', 'proxy', 'flood'] as const
export type BenchPart = (typeof BENCH_PARTS)[number]
/** the parts named in `env` (comma-separated; unknown names ignored), all when empty */
export function benchParts(env: string | undefined): ReadonlySet<BenchPart> {
  const names = (env ?? '').split(',').map((s) => s.trim()).filter(Boolean)
  const picked = BENCH_PARTS.filter((p) => names.includes(p))
  return new Set(picked.length > 0 ? picked : BENCH_PARTS)
}
const OFFLOADS_OFF = 'tx off tso off gso off gro off'
const PORT_HTTP = 80
const PORT_HTTP_OPEN = 8080
const PORT_IPERF_OPEN = 5201
const PORT_IPERF_PROT = 5202
const PORT_PROXY = 9080
const PORT_SMTP = 25
/** body of each bench mail */
export const SMTP_BODY_BYTES = 1 << 20

/**
 * A minimal SMTP sink (RFC 5321 §3.3 transaction: EHLO, MAIL, RCPT, DATA, QUIT; every reply
 * positive), Python stdlib only: one thread per connection, the DATA body read up to the
 * terminating <CRLF>.<CRLF> and discarded.
 */
const SMTP_SINK_PY = `import socketserver, sys
class H(socketserver.StreamRequestHandler):
    def handle(self):
        w = self.wfile.write
        w(b'220 sink ESMTP\\r\\n')
        while True:
            line = self.rfile.readline(65536)
            if not line:
                return
            cmd = line[:4].upper()
            if cmd in (b'EHLO', b'HELO'):
                w(b'250-sink\\r\\n250 SIZE 104857600\\r\\n')
            elif cmd == b'DATA':
                w(b'354 go ahead\\r\\n')
                while True:
                    l = self.rfile.readline(1 << 20)
                    if not l or l == b'.\\r\\n':
                        break
                w(b'250 queued\\r\\n')
            elif cmd == b'QUIT':
                w(b'221 bye\\r\\n')
                return
            else:
                w(b'250 ok\\r\\n')
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
S((sys.argv[1], int(sys.argv[2])), H).serve_forever()
`

/** mails sent for `seconds` over one connection each, printed as mails/s */
const SMTP_CLIENT_PY = `import smtplib, sys, time
host, port, secs, size = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
body = (b'X' * 998 + b'\\r\\n') * (size // 1000)
msg = b'From: a@example.com\\r\\nTo: b@example.com\\r\\nSubject: bench\\r\\n\\r\\n' + body
n = 0
end = time.time() + secs
start = time.time()
while time.time() < end:
    s = smtplib.SMTP(host, port, timeout=10)
    s.sendmail('a@example.com', ['b@example.com'], msg)
    s.quit()
    n += 1
print(n / (time.time() - start))
`

export const GATEWAY_BENCH_TOOLS = ['ip', 'nft', 'ethtool', 'nginx', 'curl', 'iperf3', 'wrk', 'hping3', 'timeout', 'python3']

/** why the gateway bench cannot run here, or null */
export function gatewayBenchSkipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, bridge, nftables)'
  for (const c of GATEWAY_BENCH_TOOLS) {
    try {
      execFileSync('sh', ['-c', `command -v ${c}`], {stdio: 'ignore'})
    } catch {
      return `needs ${c} (apt-get install -y iproute2 nftables ethtool nginx curl iperf3 wrk hping3)`
    }
  }
  return null
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

class BenchLab {
  readonly id = `${process.pid % 10000}${Math.floor(Math.random() * 1000)}`
  readonly client = `ppd-c-${this.id}`
  readonly gw = `ppd-g-${this.id}`
  readonly server = `ppd-s-${this.id}`
  readonly bridge = `ppdb${this.id}`.slice(0, 15)
  readonly twinBridge = `ppdt${this.id}`.slice(0, 15)
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pp-gwbench-'))
  private children: ChildProcess[] = []

  sh(ns: string, cmd: string, timeoutMs = 120_000): string {
    return execFileSync('ip', ['netns', 'exec', ns, 'sh', '-c', cmd], {encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 16 << 20})
  }

  spawn(ns: string, argv: string[]): ChildProcess {
    const c = spawn('ip', ['netns', 'exec', ns, ...argv], {stdio: ['ignore', 'pipe', 'pipe']})
    this.children.push(c)
    return c
  }

  create(): void {
    const run = (args: string[]) => execFileSync('ip', args, {stdio: 'pipe'})
    for (const ns of [this.client, this.gw, this.server]) run(['netns', 'add', ns])
    run(['link', 'add', 'c0', 'netns', this.client, 'type', 'veth', 'peer', 'name', 'ga', 'netns', this.gw])
    run(['link', 'add', 's0', 'netns', this.server, 'type', 'veth', 'peer', 'name', 'gb', 'netns', this.gw])
    this.sh(this.client, `ip link set lo up; ip addr add ${CLIENT_IP}/24 dev c0; ethtool -K c0 ${OFFLOADS_OFF} >/dev/null 2>&1; ip link set c0 up`)
    this.sh(this.server, `ip link set lo up; ip addr add ${SERVER_IP}/24 dev s0; ethtool -K s0 ${OFFLOADS_OFF} >/dev/null 2>&1; ip link set s0 up`)
    this.sh(this.gw, `ip link set lo up; for d in ga gb; do ethtool -K $d ${OFFLOADS_OFF} >/dev/null 2>&1; ip link set $d up; done`)
    // the twin: c1 -- ta [bare bridge] tb -- s1, same namespaces, same settings, its own subnet
    run(['link', 'add', 'c1', 'netns', this.client, 'type', 'veth', 'peer', 'name', 'ta', 'netns', this.gw])
    run(['link', 'add', 's1', 'netns', this.server, 'type', 'veth', 'peer', 'name', 'tb', 'netns', this.gw])
    this.sh(this.client, `ip addr add ${TWIN_CLIENT_IP}/24 dev c1; ethtool -K c1 ${OFFLOADS_OFF} >/dev/null 2>&1; ip link set c1 up`)
    this.sh(this.server, `ip addr add ${TWIN_SERVER_IP}/24 dev s1; ethtool -K s1 ${OFFLOADS_OFF} >/dev/null 2>&1; ip link set s1 up`)
    this.sh(this.gw, `for d in ta tb; do ethtool -K $d ${OFFLOADS_OFF} >/dev/null 2>&1; ip link set $d up; done; ` +
      `ip link add ${this.twinBridge} type bridge forward_delay 0 stp_state 0; ip link set ta master ${this.twinBridge}; ip link set tb master ${this.twinBridge}; ip link set ${this.twinBridge} up`)
  }

  /** the baseline: a plain kernel bridge over ga,gb */
  bareBridge(on: boolean): void {
    if (on) this.sh(this.gw, `ip link add ${this.bridge} type bridge forward_delay 0 stp_state 0; ip link set ga master ${this.bridge}; ip link set gb master ${this.bridge}; ip link set ${this.bridge} up`)
    else this.sh(this.gw, `ip link del ${this.bridge}`)
  }

  startServers(): void {
    const root = path.join(this.dir, 'www')
    fs.mkdirSync(root, {recursive: true})
    const mb = Buffer.alloc(1 << 20)
    for (let i = 0; i < mb.length; i++) mb[i] = (i * 2654435761) >>> 24
    fs.writeFileSync(path.join(root, '1mb.bin'), mb)
    fs.writeFileSync(path.join(root, 'index.html'), 'hello\n')
    const d = this.dir
    fs.writeFileSync(path.join(d, 'nginx.conf'), `daemon on;
user root;
worker_processes 1;
pid ${d}/nginx.pid;
error_log ${d}/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${d}/body;
  proxy_temp_path ${d}/proxy;
  fastcgi_temp_path ${d}/fastcgi;
  uwsgi_temp_path ${d}/uwsgi;
  scgi_temp_path ${d}/scgi;
  server {
    listen ${SERVER_IP}:${PORT_HTTP};
    listen ${SERVER_IP}:${PORT_HTTP_OPEN};
    root ${root};
    location / { try_files $uri /index.html; }
  }
}
`)
    fs.chmodSync(d, 0o755)
    this.sh(this.server, `nginx -c ${d}/nginx.conf`)
    for (const p of [PORT_IPERF_OPEN, PORT_IPERF_PROT]) this.sh(this.server, `iperf3 -s -D -B ${SERVER_IP} -p ${p} --logfile ${d}/iperf-${p}.log`)
    this.sh(this.server, `iperf3 -s -D -B ${TWIN_SERVER_IP} -p ${PORT_IPERF_OPEN} --logfile ${d}/iperf-twin.log`)
    fs.writeFileSync(path.join(d, 'smtp-sink.py'), SMTP_SINK_PY)
    fs.writeFileSync(path.join(d, 'smtp-client.py'), SMTP_CLIENT_PY)
    this.spawn(this.server, ['python3', path.join(d, 'smtp-sink.py'), SERVER_IP, String(PORT_SMTP)])
  }

  /** mails with a SMTP_BODY_BYTES body per second (0 when the client failed) */
  smtp(port: number, seconds = BENCH_SECONDS): number {
    try {
      const out = this.sh(this.client, `python3 ${this.dir}/smtp-client.py ${SERVER_IP} ${port} ${seconds} ${SMTP_BODY_BYTES}`, (seconds + 60) * 1000)
      const v = Number(out.trim().split('\n').pop())
      return Number.isFinite(v) ? v : 0
    } catch {
      return 0
    }
  }

  /** iperf3 client -> server (the twin's server when asked), bits/s received */
  iperf(port: number, server = SERVER_IP): number {
    // a run that failed (the server busy with a stale test, a reset) exits 1 with an `error` and
    // no sums: it counts as 0 (the median of the rounds carries the figure)
    try {
      const out = this.sh(this.client, `iperf3 -c ${server} -p ${port} -t ${BENCH_SECONDS} -J`, (BENCH_SECONDS + 30) * 1000)
      const j = JSON.parse(out) as {end?: {sum_received?: {bits_per_second?: number}}}
      return j.end?.sum_received?.bits_per_second ?? 0
    } catch {
      return 0
    }
  }

  /** wrk of the 1 MB file, requests/s (0 when a request failed) */
  wrk(port: number, file = '1mb.bin', seconds = BENCH_SECONDS): number {
    const out = this.sh(this.client, `wrk -t1 -c4 -d${seconds}s --timeout 5s http://${SERVER_IP}:${port}/${file}`, (seconds + 30) * 1000)
    const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)
    return rps ? Number(rps[1]) : 0
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
    try {
      // iperf3 daemons of the server namespace
      execFileSync('ip', ['netns', 'pids', this.server], {encoding: 'utf8'}).split('\n').filter(Boolean).forEach((p) => {
        try {
          process.kill(Number(p), 'SIGKILL')
        } catch {
          // gone
        }
      })
    } catch {
      // no namespace
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

interface Gateway {
  proc: ChildProcess
  out: () => string
  /** peak RSS so far (VmHWM), MB */
  peakRssMb(): number
  /** resolves once the process is idle: start-up work (JIT, first GCs) done; false on timeout */
  settled(): Promise<boolean>
  stop(): Promise<void>
}

/** a process's CPU time so far (utime + stime), in clock ticks; NaN when it is gone */
function cpuTicks(pid: number | undefined): number {
  try {
    // fields after the command name, which is in parentheses and may hold spaces
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ')
    return Number(f[11]) + Number(f[12])
  } catch {
    return NaN
  }
}

async function startGateway(lab: BenchLab, args: string[], ns: string): Promise<Gateway> {
  let out = ''
  const proc = lab.spawn(ns, [process.execPath, ...NODE_ARGS, bin, 'run', ...args, '--events', '-', '--stats-interval', '2', '--no-dashboard'])
  proc.stdout!.on('data', (d: Buffer) => {
    out = (out + d.toString()).slice(-20_000)
  })
  proc.stderr!.on('data', (d: Buffer) => {
    out = (out + d.toString()).slice(-20_000)
  })
  const end = Date.now() + GATEWAY_START_MS
  while (!out.includes('patchpoint: ready') && proc.exitCode === null && Date.now() < end) await sleep(100)
  if (!out.includes('patchpoint: ready')) {
    proc.kill('SIGKILL')
    throw new Error(`the gateway did not start: ${out.slice(-2000)}`)
  }
  return {
    proc,
    out: () => out,
    peakRssMb() {
      try {
        const st = fs.readFileSync(`/proc/${proc.pid}/status`, 'utf8')
        const m = /VmHWM:\s+(\d+) kB/.exec(st)
        return m ? Number(m[1]) / 1024 : NaN
      } catch {
        return NaN
      }
    },
    async settled() {
      // idle = under 3 ticks (30 ms at USER_HZ 100) of CPU in a second, for at most SETTLE_MS
      const end = Date.now() + SETTLE_MS
      let before = cpuTicks(proc.pid)
      while (Date.now() < end) {
        await sleep(1000)
        const now = cpuTicks(proc.pid)
        if (!(now - before >= 3)) return true
        before = now
      }
      return false
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      proc.kill('SIGTERM')
      const until = Date.now() + 10_000
      while (proc.exitCode === null && proc.signalCode === null && Date.now() < until) await sleep(50)
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
    },
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** curl in a loop to a protected port while `during` runs; returns [ok, failed] */
async function curlLoop(lab: BenchLab, port: number, during: Promise<unknown>): Promise<[number, number]> {
  let ok = 0
  let failed = 0
  let done = false
  void during.finally(() => (done = true))
  while (!done) {
    const code = await new Promise<string>((resolve) => {
      const c = lab.spawn(lab.client, ['curl', '-s', '-o', '/dev/null', '--max-time', '5', '-w', '%{http_code}', `http://${SERVER_IP}:${port}/index.html`])
      let s = ''
      c.stdout!.on('data', (d: Buffer) => (s += d.toString()))
      c.on('close', () => resolve(s))
    })
    if (code === '200') ok++
    else failed++
    await sleep(200)
  }
  return [ok, failed]
}

function fmtRate(bps: number): string {
  return `${(bps / 1e9).toFixed(2)} Gbit/s`
}

function row(what: string, base: string, val: string, ratio: number, target: string): string {
  return `| ${what} | ${base} | ${val} | ${ratio.toFixed(3)} | ${target} |`
}

/** Run the gateway bench; returns a markdown table (throws only when the lab cannot be built). */
export async function benchGateway(): Promise<string> {
  const skip = gatewayBenchSkipReason()
  if (skip) return `### Inline gateway\n\nskipped: ${skip}\n`
  const parts = benchParts(process.env.PATCHPOINT_BENCH_PARTS)
  const lab = new BenchLab()
  const rows: string[] = []
  const notes: string[] = []
  try {
    lab.create()
    lab.startServers()
    // A project whose rate protections allow the load generators: a benchmark client sends far
    // more requests and connections per second than the defaults let one source send (the
    // defaults would reset some of its sessions, which measures the protection, not the path)
    const project = path.join(lab.dir, 'project')
    execFileSync(process.execPath, [bin, 'init', project], {stdio: 'ignore'})
    const cfgFile = path.join(project, 'patchpoint.yaml')
    const cfg = parseDocument(fs.readFileSync(cfgFile, 'utf8'))
    for (const k of ['per_second', 'burst']) cfg.setIn(['protections', 'request_rate', k], 1_000_000)
    for (const k of ['per_second', 'burst', 'per_source_per_second', 'per_source_burst']) cfg.setIn(['protections', 'connection_rate', k], 1_000_000)
    fs.writeFileSync(cfgFile, cfg.toString())
    const policy = path.join(lab.dir, 'policy.json')
    fs.writeFileSync(policy, JSON.stringify({services: [
      {ip: SERVER_IP, port: PORT_HTTP, proto: 'tcp', protocol: 'http', action: 'drop'},
      {ip: SERVER_IP, port: PORT_IPERF_PROT, proto: 'tcp', action: 'drop'},
      {ip: SERVER_IP, port: PORT_SMTP, proto: 'tcp', protocol: 'smtp', action: 'drop'},
    ]}))

    // Rounds: the bare kernel bridge, then the gateway, back to back, so each ratio compares two
    // measurements taken a few seconds apart (the machine is shared: load drifts over minutes,
    // and measuring all of one side first skewed ratios past 1.0)
    const bareIperf: number[] = []
    const bareWrk: number[] = []
    const bareSmtp: number[] = []
    const directWrk: number[] = []
    const proxyWrk: number[] = []
    const openIperf: number[] = []
    const twinIperf: number[] = []
    /** the gateway process's CPU during the unprotected runs, share of one core */
    const openCpu: number[] = []
    const protIperf: number[] = []
    const protWrk: number[] = []
    const protSmtp: number[] = []
    let floodRss = NaN
    let idleRss = NaN
    let legit: [number, number] = [0, 0]
    let unsettled = 0
    // proxy mode in the server's namespace, next to nginx; the client reaches both over the bridge
    const proxy = parts.has('proxy') ? await startGateway(lab, ['--proxy', `${SERVER_IP}:${PORT_PROXY}=${SERVER_IP}:${PORT_HTTP}`], lab.server) : null
    try {
      for (let i = 0; i < RUNS; i++) {
        lab.bareBridge(true)
        await waitReachable(lab)
        if (parts.has('protected')) bareIperf.push(lab.iperf(PORT_IPERF_OPEN))
        if (parts.has('wrk')) bareWrk.push(lab.wrk(PORT_HTTP))
        if (parts.has('smtp')) bareSmtp.push(lab.smtp(PORT_SMTP))
        if (parts.has('proxy')) {
          directWrk.push(lab.wrk(PORT_HTTP))
          proxyWrk.push(lab.wrk(PORT_PROXY))
        }
        lab.bareBridge(false)

        const gw = await startGateway(lab, ['--iface', 'ga,gb', '--policy', policy, '--project', project], lab.gw)
        try {
          await waitReachable(lab)
          idleRss = gw.peakRssMb()
          // the bare bridge had no process beside it: the unprotected run starts once the
          // gateway's own start-up (its first second or two of JIT and GC) is over
          if (parts.has('open')) {
            if (!(await gw.settled())) unsettled++
            // pairs of runs, twin (bare bridge) and gateway alternating, in ABBA order: drift of
            // the shared machine over seconds falls on both sides alike
            let twin = 0
            let open = 0
            const ticks = cpuTicks(gw.proc.pid)
            const t0 = Date.now()
            for (let k = 0; k < OPEN_PAIRS; k++) {
              if (k % 2 === 0) twin += lab.iperf(PORT_IPERF_OPEN, TWIN_SERVER_IP)
              open += lab.iperf(PORT_IPERF_OPEN)
              if (k % 2 === 1) twin += lab.iperf(PORT_IPERF_OPEN, TWIN_SERVER_IP)
            }
            openCpu.push((cpuTicks(gw.proc.pid) - ticks) / ((Date.now() - t0) / 10))
            twinIperf.push(twin / OPEN_PAIRS)
            openIperf.push(open / OPEN_PAIRS)
          }
          if (parts.has('protected')) protIperf.push(lab.iperf(PORT_IPERF_PROT))
          // unmeasured warm-up before the protected HTTP and SMTP runs: each round starts a fresh
          // gateway, and its first seconds are the JIT compiling the engine (a fresh gateway spent
          // twice the CPU per mail of a warm one); a gateway runs for months, so these figures
          // are its steady state
          if (parts.has('wrk')) lab.wrk(PORT_HTTP, '1mb.bin', WARMUP_SECONDS)
          if (parts.has('smtp')) lab.smtp(PORT_SMTP, WARMUP_SECONDS)
          if (parts.has('wrk')) protWrk.push(lab.wrk(PORT_HTTP))
          if (parts.has('smtp')) protSmtp.push(lab.smtp(PORT_SMTP))
          if (i === RUNS - 1 && parts.has('flood')) {
            // SYN flood from random spoofed sources to the protected port, bounded by `timeout`
            const flood = lab.spawn(lab.client, ['timeout', '-s', 'INT', String(FLOOD_SECONDS), 'hping3', '-S', '-p', String(PORT_HTTP), '--flood', '--rand-source', SERVER_IP])
            let floodErr = ''
            flood.stderr!.on('data', (d: Buffer) => (floodErr = (floodErr + d.toString()).slice(-2000)))
            const floodDone = new Promise<void>((r) => flood.on('close', () => r()))
            legit = await curlLoop(lab, PORT_HTTP, floodDone)
            floodRss = gw.peakRssMb()
            const sent = /(\d+) packets transmitted/.exec(floodErr)
            if (sent) notes.push(`SYN flood: ${Number(sent[1]).toLocaleString('en-US')} SYNs from random sources in ${FLOOD_SECONDS} s`)
            const alive = gw.proc.exitCode === null && gw.proc.signalCode === null
            if (!alive) notes.push(`the gateway died during the flood: ${gw.out().slice(-500)}`)
          }
          const stats = [...gw.out().matchAll(/^stats (.*)$/gm)].pop()?.[1]
          if (stats && i === RUNS - 1) notes.push(`gateway stats (last round, after the flood): ${stats.split(' ').filter((kv) => /^(framesIn|framesOut|bypassedFlows|bypassForwarded|bypassDiscarded|flows|rss_mb)=/.test(kv)).join(' ')}`)
        } finally {
          await gw.stop()
        }
      }
    } finally {
      await proxy?.stop()
    }

    /** median of the per-round ratios */
    const ratio = (xs: number[], base: number[]) => median(xs.map((x, i) => (base[i] > 0 ? x / base[i] : 0)))
    if (parts.has('open')) rows.push(row('iperf3, unprotected port through the gateway (baseline: the twin bare bridge)', fmtRate(median(twinIperf)), fmtRate(median(openIperf)), ratio(openIperf, twinIperf), '>= 0.95'))
    if (parts.has('protected')) rows.push(row('iperf3, protected port (TCP stream through the engine)', fmtRate(median(bareIperf)), fmtRate(median(protIperf)), ratio(protIperf, bareIperf), ''))
    if (parts.has('wrk')) rows.push(row('wrk, 1 MB file, protected HTTP', `${median(bareWrk).toFixed(1)} req/s`, `${median(protWrk).toFixed(1)} req/s`, ratio(protWrk, bareWrk), '>= 0.6'))
    if (parts.has('smtp')) rows.push(row('SMTP, mails with a 1 MB body, protected port', `${median(bareSmtp).toFixed(1)} mails/s`, `${median(protSmtp).toFixed(1)} mails/s`, ratio(protSmtp, bareSmtp), '>= 0.5'))
    if (parts.has('proxy')) rows.push(row('wrk, 1 MB file, `run --proxy` vs nginx direct', `${median(directWrk).toFixed(1)} req/s`, `${median(proxyWrk).toFixed(1)} req/s`, ratio(proxyWrk, directWrk), ''))
    if (parts.has('open')) notes.push(`the gateway process's own CPU while the unprotected runs went on (its libpcap reader idle, timers, the fail-open refresher): ${openCpu.map((c) => `${(100 * c).toFixed(1)}%`).join(', ')} of a core per round`)
    if (parts.has('flood')) {
      notes.push(`gateway RSS: ${idleRss.toFixed(0)} MB at start, peak ${floodRss.toFixed(0)} MB after the flood (target <= 300 MB)`)
      notes.push(`legitimate curl sessions to the protected port during the flood: ${legit[0]} succeeded, ${legit[1]} failed`)
    }
    const spread = (name: string, xs: number[], base: number[]) => xs.length === 0 ? '' : `${name} ${xs.map((x, i) => (base[i] > 0 ? x / base[i] : 0).toFixed(3)).join(', ')}; `
    notes.push(`per-round ratios: ${spread('unprotected', openIperf, twinIperf)}${spread('protected iperf3', protIperf, bareIperf)}${spread('wrk', protWrk, bareWrk)}${spread('smtp', protSmtp, bareSmtp)}${spread('proxy', proxyWrk, directWrk)}`)
    notes.push(`rounds: ${RUNS} (ratio = median of per-round ratios, bare and gateway measured back to back), ${BENCH_SECONDS} s each (the unprotected runs, ${OPEN_PAIRS} per round alternating with as many through the twin bare bridge, start once the fresh gateway is idle${unsettled ? `, which ${unsettled} round(s) did not reach within ${SETTLE_MS / 1000} s` : ''}; the gateway warmed by ${WARMUP_SECONDS} s of HTTP and SMTP, unmeasured, before those runs); parts: ${[...parts].join(', ')}; raw: bare iperf3 ${bareIperf.map(fmtRate).join(', ')}; twin bare bridge ${twinIperf.map(fmtRate).join(', ')}; ` +
      `unprotected ${openIperf.map(fmtRate).join(', ')}; protected ${protIperf.map(fmtRate).join(', ')}; ` +
      `wrk bare ${bareWrk.map((x) => x.toFixed(0)).join(', ')}, protected ${protWrk.map((x) => x.toFixed(0)).join(', ')}, ` +
      `direct ${directWrk.map((x) => x.toFixed(0)).join(', ')}, proxy ${proxyWrk.map((x) => x.toFixed(0)).join(', ')}; ` +
      `smtp bare ${bareSmtp.map((x) => x.toFixed(1)).join(', ')}, protected ${protSmtp.map((x) => x.toFixed(1)).join(', ')} mails/s`)
  } finally {
    lab.destroy()
  }
  return ['### Inline gateway (network namespaces, 2 cores shared by client, server, gateway and load)', '',
    '| what | baseline | measured | ratio | target |', '|---|---|---|---|---|', ...rows, '', ...notes.map((n) => `- ${n}`), ''].join('\n')
}

async function waitReachable(lab: BenchLab): Promise<void> {
  const end = Date.now() + 15_000
  while (Date.now() < end) {
    try {
      lab.sh(lab.client, `curl -s -o /dev/null --max-time 1 http://${SERVER_IP}:${PORT_HTTP_OPEN}/`, 5000)
      return
    } catch {
      await sleep(200)
    }
  }
  throw new Error('the server is not reachable through the bridge')
}
