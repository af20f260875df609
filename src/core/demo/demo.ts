/**
 * `patchpoint demo`: the whole product on one machine, with the real commands.
 *
 * Lab mode (root): builds the namespace lab (lab.ts), then runs `node bin/run.js ...` inside the
 * right namespace for each step: init, discover, fingerprint, protect --all, run (inline,
 * background), benign traffic (checked byte for byte), the rule pack's exploit samples
 * (samples.ts, sent by client.ts from the attacker namespace), report (tables + HTML). Tears
 * everything down at the end and on SIGINT/SIGTERM; `keep` leaves it up.
 *
 * Offline mode (no root, no network): replays the shipped captures (examples/pcaps) into a temp
 * project and reports.
 *
 * Every failure is a step result; `runDemo` resolves with the steps and never throws.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync, mkdtempSync, readFileSync, writeFileSync, chmodSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {teardownLabs} from '../lab/netns.js'
import type {ClientResult} from './client.js'
import {countAlerts, judgeExploits, parseEvents, type ExploitVerdict} from './judge.js'
import {ATTACKER_IP, buildTopology, DEMO_PREFIX, FTP_FILE, missingTools, PAGE_NAME, pageBytes, removeCable, SERVER_IP, startServers, SUBNET, type DemoLab} from './lab.js'
import {loadExploitSamples, type ProtectedTarget} from './samples.js'

export const DEMO_LIMITS = {
  /** lines of a command's output shown per step */
  maxShownLines: 60,
  /** bytes of a command's output kept */
  maxOutputBytes: 32 * 1024 * 1024,
  /** one command's run time, ms */
  commandMs: 90_000,
  /** gateway start-up, ms */
  gatewayReadyMs: 60_000,
  /** event-log bytes read back */
  maxEventBytes: 64 * 1024 * 1024,
}
export type DemoLimits = typeof DEMO_LIMITS

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const BIN = path.join(REPO_ROOT, 'bin', 'run.js')
const RULES_DIR = path.join(REPO_ROOT, 'rules')
const CLIENT = fileURLToPath(new URL('./client.js', import.meta.url))

export interface DemoStep {
  id: string
  title: string
  ok: boolean
  skipped?: boolean
  /** the command line, as a user would type it */
  command?: string
  exit_code?: number | null
  note?: string
  details?: unknown
}

export interface BenignCheck {
  what: string
  url: string
  expected_sha256: string
  got_sha256: string
  bytes: number
  arrived: boolean
}

export interface DemoResult {
  mode: 'lab' | 'offline'
  ok: boolean
  /** why it could not run at all (no root, missing tools) */
  error?: string
  project?: string
  report_html?: string
  lab?: {id: string; namespaces: string[]; attacker: string; gateway: string; server: string; subnet: string; kept: boolean; servers: {name: string; port: number; started: boolean; note?: string}[]}
  steps: DemoStep[]
  benign: BenignCheck[]
  exploits: ExploitVerdict[]
  /** alerts counted in the event log vs. what `report --json` says */
  report_check?: {log: ReturnType<typeof countAlerts>; report: {alerts: number; fix: number; log: number; drop: number; shadow: number}; matches: boolean}
}

export interface DemoOptions {
  keep?: boolean
  /** print the walk-through (false for --json) */
  print?: (line: string) => void
  limits?: Partial<DemoLimits>
  /** install SIGINT/SIGTERM handlers that tear the lab down (default true) */
  trapSignals?: boolean
}

interface Exec {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs commands, printing each step; remembers the running child for the signal handler. */
class Walker {
  readonly steps: DemoStep[] = []
  private readonly children = new Set<ChildProcess>()
  private n = 0

  constructor(readonly say: (line: string) => void, readonly limits: DemoLimits) {}

  header(title: string, why: string): void {
    this.n++
    this.say('')
    this.say(`==> ${this.n}. ${title}`)
    for (const l of why.split('\n')) this.say(`    ${l}`)
  }

  exec(ns: string | null, argv: string[], timeoutMs = this.limits.commandMs): Promise<Exec> {
    const full = ns === null ? argv : ['ip', 'netns', 'exec', ns, ...argv]
    return new Promise((resolve) => {
      const c = spawn(full[0], full.slice(1), {stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, FORCE_COLOR: '0', NO_COLOR: '1'}})
      this.children.add(c)
      let out = ''
      let err = ''
      const max = this.limits.maxOutputBytes
      c.stdout.on('data', (d: Buffer) => {
        if (out.length < max) out += d.toString('utf8')
      })
      c.stderr.on('data', (d: Buffer) => {
        if (err.length < max) err += d.toString('utf8')
      })
      const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs)
      c.on('error', (e) => {
        err += e.message
      })
      c.on('close', (code) => {
        clearTimeout(t)
        this.children.delete(c)
        resolve({code, stdout: out, stderr: err})
      })
    })
  }

  /** a patchpoint command, shown as the user would type it */
  async patchpoint(ns: string | null, args: string[], show = true): Promise<Exec & {command: string}> {
    const command = `${ns === null ? '' : `ip netns exec ${ns} `}patchpoint ${args.join(' ')}`
    if (show) this.say(`    $ ${command}`)
    const r = await this.exec(ns, [process.execPath, BIN, ...args])
    if (show) this.show(r.stdout + (r.stderr.trim() === '' ? '' : `\n${r.stderr}`))
    return {...r, command}
  }

  show(text: string): void {
    // progress bars printed for pipes (one line per update) say nothing once the command is done
    const lines = text.replace(/\s+$/, '').split('\n').filter((l) => !/\[[#.]+\]\s+\d+%/.test(l))
    const max = this.limits.maxShownLines
    for (const l of lines.slice(0, max)) this.say(`      ${l}`)
    if (lines.length > max) this.say(`      ... (${lines.length - max} more lines)`)
  }

  record(step: DemoStep): DemoStep {
    this.steps.push(step)
    if (!step.ok && !step.skipped) this.say(`    !! ${step.title}: ${step.note ?? 'failed'}`)
    else if (step.note) this.say(`    -> ${step.note}`)
    return step
  }

  killChildren(): void {
    for (const c of this.children) {
      try {
        if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid, 'SIGKILL')
      } catch {
        // gone
      }
    }
  }
}

/**
 * Shorten a text of blank-line separated tables: a section longer than `maxRows` keeps its title,
 * its column header and its last `maxRows - 2` rows (the captures span years, so the per-day
 * timeline of the offline demo would fill the screen).
 */
export function compactSections(text: string, maxRows: number): string {
  const out: string[] = []
  for (const sec of text.replace(/\s+$/, '').split(/\n\s*\n/)) {
    const lines = sec.split('\n')
    if (lines.length <= maxRows + 2) out.push(sec)
    else out.push([...lines.slice(0, 2), `  ... ${lines.length - maxRows} rows not shown ...`, ...lines.slice(lines.length - (maxRows - 2))].join('\n'))
  }
  return out.join('\n\n')
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex')
}

function readEvents(project: string, maxBytes: number) {
  const f = path.join(project, '.patchpoint', 'events', 'eve.json')
  if (!existsSync(f)) return []
  const buf = readFileSync(f)
  return parseEvents(buf.subarray(0, maxBytes).toString('utf8'))
}

async function waitUntil(pred: () => boolean, ms: number, step = 100): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (pred()) return true
    await new Promise((r) => setTimeout(r, step))
  }
  return pred()
}

/** Run `report` three ways: tables (shown), HTML (path), JSON (checked against the log). */
async function reportSteps(w: Walker, project: string, result: DemoResult): Promise<void> {
  w.header('report: what was stopped, in tables and in an HTML report',
    'The event log (.patchpoint/events/eve.json, EVE format) summarized by action, rule, CVE, host and source.')
  const table = await w.patchpoint(null, ['report', '--project', project], false)
  w.say(`    $ ${table.command}`)
  w.show(compactSections(table.stdout + table.stderr, 12))
  const html = path.join(project, 'report.html')
  const h = await w.patchpoint(null, ['report', '--project', project, '--out', html], false)
  const j = await w.patchpoint(null, ['report', '--project', project, '--json'], false)
  let rep: {totals?: {alerts?: number; by_action?: Record<string, number>}} = {}
  try {
    rep = JSON.parse(j.stdout) as typeof rep
  } catch {
    // below: the check fails
  }
  const log = countAlerts(readEvents(project, w.limits.maxEventBytes))
  const ba = rep.totals?.by_action ?? {}
  const r = {alerts: rep.totals?.alerts ?? -1, fix: ba.fix ?? -1, log: ba.log ?? -1, drop: ba.drop ?? -1, shadow: ba.shadow ?? -1}
  const matches = r.alerts === log.alerts && r.fix === log.fix && r.log === log.log && r.drop === log.drop && r.shadow === log.shadow
  result.report_check = {log, report: r, matches}
  const htmlOk = (h.code === 0 || h.code === 1) && existsSync(html)
  if (htmlOk) result.report_html = html
  w.say(`    HTML report: ${htmlOk ? html : '(not written)'}`)
  w.record({id: 'report', title: 'report', ok: table.code !== null && table.code <= 1 && htmlOk && matches, command: table.command, exit_code: table.code,
    note: matches ? `the report counts ${log.alerts} alerts (fix ${log.fix}, drop ${log.drop}, log ${log.log}), as the event log does` : `report and event log disagree: report ${JSON.stringify(r)}, log ${JSON.stringify(log)}`,
    details: {html: htmlOk ? html : null}})
}

/** `demo --offline`: replay the shipped captures into a temp project and report. No root, no network. */
export async function runOfflineDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const limits = {...DEMO_LIMITS, ...options.limits}
  const w = new Walker(options.print ?? (() => {}), limits)
  const result: DemoResult = {mode: 'offline', ok: false, steps: w.steps, benign: [], exploits: []}
  const project = mkdtempSync(path.join(tmpdir(), 'patchpoint-demo-offline-'))
  result.project = project
  w.say('patchpoint demo --offline: the shipped captures (examples/pcaps) through the same engine the gateway runs.')
  w.header('init: a project for the demo', `A temporary project in ${project}.`)
  const init = await w.patchpoint(null, ['init', project])
  w.record({id: 'init', title: 'init', ok: init.code === 0, command: init.command, exit_code: init.code})
  if (init.code !== 0) return result

  w.header('replay: real exploits and evasions beside benign sessions',
    'Each capture is decoded, defragmented, reassembled and judged by the analyzers and rules;\nalerts go to the project event log (exit 1 = something was found).')
  const rp = await w.patchpoint(null, ['replay', '--project', project])
  const events = readEvents(project, limits.maxEventBytes)
  const counts = countAlerts(events)
  w.record({id: 'replay', title: 'replay', ok: rp.code === 1 && counts.alerts > 0, command: rp.command, exit_code: rp.code,
    note: `${counts.alerts} alerts in the event log (fix ${counts.fix}, drop ${counts.drop}, log ${counts.log})`})
  await reportSteps(w, project, result)
  result.ok = w.steps.every((s) => s.ok || s.skipped === true)
  w.say('')
  w.say(result.ok ? `Done. The project stays in ${project} (rm -r it when finished).` : 'The offline demo did not complete: see the steps marked !!.')
  return result
}

/** `demo --teardown`: remove labs left by `demo --keep` (or an interrupted demo). */
export function teardownDemo(): {namespaces: string[]; folders: string[]} {
  return teardownLabs(DEMO_PREFIX)
}

/** The full demo in the namespace lab (needs root). */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const limits = {...DEMO_LIMITS, ...options.limits}
  const say = options.print ?? (() => {})
  const w = new Walker(say, limits)
  const result: DemoResult = {mode: 'lab', ok: false, steps: w.steps, benign: [], exploits: []}
  if (process.getuid?.() !== 0) {
    result.error = 'the lab demo needs root (network namespaces); run `patchpoint demo --offline` to replay the shipped captures instead'
    return result
  }
  const missing = missingTools()
  if (missing.length > 0) {
    result.error = `the lab demo needs ${missing.join(', ')}; or run \`patchpoint demo --offline\``
    return result
  }

  let d: DemoLab | undefined
  let gateway: ChildProcess | undefined
  let tornDown = false
  const teardown = async (): Promise<void> => {
    if (tornDown || d === undefined) return
    tornDown = true
    w.killChildren()
    if (gateway?.pid !== undefined && gateway.exitCode === null) {
      // SIGTERM: run removes its nftables table and bridge and leaves the interfaces as found
      try {
        process.kill(gateway.pid, 'SIGTERM')
      } catch {
        // gone
      }
      const g = gateway
      await waitUntil(() => g.exitCode !== null || g.signalCode !== null, 5000)
    }
    d.lab.cleanup()
  }
  const onSignal = (sig: NodeJS.Signals) => {
    say(`\n${sig}: tearing the lab down...`)
    void teardown().then(() => {
      say('lab removed.')
      process.exit(sig === 'SIGINT' ? 130 : 143)
    })
  }
  const trap = options.trapSignals !== false
  if (trap) {
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  }
  try {
    await walk()
  } catch (err) {
    w.record({id: 'error', title: 'demo', ok: false, note: (err as Error).message.split('\n')[0]})
  } finally {
    if (!options.keep || d === undefined || w.steps.some((s) => s.id === 'lab' && !s.ok)) {
      if (d !== undefined) {
        say('')
        say('==> teardown: stopping the gateway and servers, deleting the namespaces')
      }
      await teardown()
      if (result.lab) result.lab.kept = false
    } else {
      d.lab.release()
      printKeep(say, d, result.project ?? '')
    }
    if (trap) {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
  }
  const exploitsOk = result.exploits.length > 0 && result.exploits.every((e) => e.stopped)
  const benignOk = result.benign.length > 0 && result.benign.every((b) => b.arrived)
  result.ok = exploitsOk && benignOk && w.steps.every((s) => s.ok || s.skipped === true)
  say('')
  say(result.ok
    ? `Done: ${result.exploits.length} exploits stopped, benign traffic arrived intact. Project: ${result.project}`
    : 'The demo found a problem: see the steps marked !! above.')
  return result

  async function walk(): Promise<void> {
    say('patchpoint demo: a throwaway network in namespaces, an attacker, a gateway and real servers.')
    w.header('lab: network namespaces with unique names, TEST-NET addresses, no route out',
      `attacker ${ATTACKER_IP} --- [gateway: ga | gb] --- server ${SERVER_IP} (nginx, vsftpd, postfix when installed)`)
    d = buildTopology()
    const lab = d.lab
    await startServers(d)
    result.lab = {id: lab.id, namespaces: [...lab.namespaceNames], attacker: d.attacker, gateway: d.gateway, server: d.server, subnet: SUBNET, kept: options.keep === true, servers: d.servers}
    for (const s of d.servers) say(`    ${s.started ? 'started' : 'skipped'} ${s.name} (port ${s.port})${s.note ? `: ${s.note}` : ''}`)
    w.record({id: 'lab', title: 'lab', ok: true, note: `namespaces ${lab.namespaceNames.join(', ')}`, details: {servers: d.servers}})

    const project = mkdtempSync(path.join(tmpdir(), 'patchpoint-demo-'))
    chmodSync(project, 0o755)
    result.project = project
    w.header('init: a project holds the configuration, inventory, policy and event log', `A temporary project in ${project}.`)
    const init = await w.patchpoint(null, ['init', project])
    w.record({id: 'init', title: 'init', ok: init.code === 0, command: init.command, exit_code: init.code})
    if (init.code !== 0) return

    w.header('discover: find the live hosts on the server subnet',
      'ARP on the attached subnet, then ICMP and TCP probes, from the attacker side of the wire.')
    const disc = await w.patchpoint(d.attacker, ['discover', SUBNET, '--exclude', ATTACKER_IP, '--project', project])
    w.record({id: 'discover', title: 'discover', ok: disc.code === 0 && disc.stdout.includes(SERVER_IP), command: disc.command, exit_code: disc.code,
      note: disc.stdout.includes(SERVER_IP) ? `found ${SERVER_IP}` : `${SERVER_IP} not found`})

    w.header('fingerprint: name each service, product and version', 'Port scan, then data-driven probes (banners, HTTP, FTP, SMTP ...).')
    const fp = await w.patchpoint(d.attacker, ['fingerprint', '--project', project])
    w.record({id: 'fingerprint', title: 'fingerprint', ok: fp.code === 0, command: fp.command, exit_code: fp.code})

    w.header('protect --all: assign the recommended virtual patches to every service',
      'Rules whose product and version range match each service; the policy goes to policy.yaml\nand is compiled to .patchpoint/policy.json for the gateway.')
    const pr = await w.patchpoint(null, ['protect', '--all', '--project', project])
    let targets: ProtectedTarget[] = []
    try {
      targets = (JSON.parse(readFileSync(path.join(project, '.patchpoint', 'policy.json'), 'utf8')) as {services?: ProtectedTarget[]}).services ?? []
    } catch {
      // no policy: the step fails below
    }
    w.record({id: 'protect', title: 'protect', ok: pr.code === 0 && targets.length > 0, command: pr.command, exit_code: pr.code,
      note: `${targets.length} protected services: ${targets.map((t) => `${t.ip}:${t.port} (${t.rules?.length ?? 0} rules)`).join(', ')}`})
    if (targets.length === 0) return

    w.header('run: the gateway goes inline between the attacker and the servers',
      'The cable between ga and gb is replaced by `run`: a kernel bridge for everything, and nftables\ndiverting only the protected services into the engine. It runs in the background.')
    removeCable(lab, d.gateway)
    const log = path.join(lab.dir, 'gateway.log')
    const runArgs = ['run', '--iface', 'ga,gb', '--project', project, '--stats-interval', '0']
    say(`    $ ip netns exec ${d.gateway} patchpoint ${runArgs.join(' ')} &`)
    gateway = lab.spawnLogged(d.gateway, [process.execPath, BIN, ...runArgs], log, options.keep === true)
    const g = gateway
    const readLog = () => (existsSync(log) ? readFileSync(log, 'utf8') : '')
    const ready = await waitUntil(() => readLog().includes('patchpoint: ready') || g.exitCode !== null, limits.gatewayReadyMs, 200)
    const up = ready && g.exitCode === null
    w.show(readLog())
    w.record({id: 'run', title: 'run', ok: up, command: `patchpoint ${runArgs.join(' ')}`, note: up ? `gateway up (log: ${log})` : 'the gateway did not start (see its log above)'})
    if (!up) return
    // the bridge learns both ends
    await waitUntil(() => false, 300)

    w.header('benign traffic: real clients, checked byte for byte',
      'A page from nginx (and a file from vsftpd) downloaded through the gateway by curl in the attacker namespace.')
    const page = pageBytes()
    const checks: {what: string; url: string; expected: Buffer}[] = [{what: 'HTTP download (nginx)', url: `http://${SERVER_IP}/${PAGE_NAME}`, expected: page}]
    if (d.ftpRoot !== undefined) checks.push({what: 'FTP download (vsftpd)', url: `ftp://${SERVER_IP}/${FTP_FILE}`, expected: readFileSync(path.join(d.ftpRoot, FTP_FILE))})
    for (const c of checks) {
      const out = path.join(lab.dir, `got-${result.benign.length}`)
      say(`    $ ip netns exec ${d.attacker} curl -sS -o ${out} ${c.url}`)
      const r = await w.exec(d.attacker, ['curl', '-sS', '--max-time', '20', '-o', out, c.url], 30_000)
      const got = existsSync(out) ? readFileSync(out) : Buffer.alloc(0)
      const b: BenignCheck = {what: c.what, url: c.url, expected_sha256: sha256(c.expected), got_sha256: sha256(got), bytes: got.length, arrived: r.code === 0 && got.equals(c.expected)}
      result.benign.push(b)
      say(`      ${b.arrived ? 'arrived intact' : 'DID NOT ARRIVE INTACT'}: ${got.length} bytes, sha256 ${b.got_sha256.slice(0, 16)}...${r.stderr.trim() ? ` (${r.stderr.trim()})` : ''}`)
    }
    w.record({id: 'benign', title: 'benign traffic', ok: result.benign.every((b) => b.arrived), note: `${result.benign.filter((b) => b.arrived).length}/${result.benign.length} transfers intact`})

    w.header("exploits: the rule pack's own samples, sent through the gateway",
      'For each protected service, the malicious samples of its rules (rules/**/*.yaml, samples.malicious)\nare sent by a TCP client from the attacker namespace to the real server.')
    const loaded = loadExploitSamples(RULES_DIR, targets)
    for (const p of loaded.problems) say(`    note: ${p}`)
    if (loaded.samples.length === 0) {
      w.record({id: 'exploits', title: 'exploits', ok: false, note: 'no exploit samples for the protected services'})
      return
    }
    const job = path.join(lab.dir, 'exploits.json')
    writeFileSync(job, JSON.stringify({samples: loaded.samples}))
    chmodSync(job, 0o644)
    say(`    $ ip netns exec ${d.attacker} node ${path.relative(process.cwd(), CLIENT) || CLIENT} ${job}   (${loaded.samples.length} samples)`)
    const cr = await w.exec(d.attacker, [process.execPath, CLIENT, job], 120_000)
    let sent: ClientResult[] = []
    try {
      sent = JSON.parse(cr.stdout) as ClientResult[]
    } catch {
      w.record({id: 'exploits', title: 'exploits', ok: false, note: `the client failed: ${cr.stderr.split('\n')[0]}`})
      return
    }
    // the gateway writes its events as it judges; give the last ones a moment
    const judged = () => judgeExploits(sent, readEvents(project, limits.maxEventBytes))
    await waitUntil(() => judged().every((v) => v.stopped), 3000, 200)
    result.exploits = judged()
    for (const v of result.exploits) {
      const seen = v.reset ? 'reset' : v.answer !== '' ? `server said "${v.answer.slice(0, 40)}"` : v.closed ? 'closed' : v.error ?? 'no answer'
      say(`    ${v.stopped ? 'STOPPED' : 'PASSED '} ${v.action.padEnd(4)} ${v.rule.padEnd(28)} ${v.name.slice(0, 50).padEnd(50)} ${v.port}  client saw: ${seen}`)
    }
    const stopped = result.exploits.filter((v) => v.stopped).length
    w.record({id: 'exploits', title: 'exploits', ok: stopped === result.exploits.length,
      note: `${stopped}/${result.exploits.length} exploit samples stopped (fixed in flight or dropped)`})

    await reportSteps(w, project, result)
  }
}

function printKeep(say: (l: string) => void, d: DemoLab, project: string): void {
  say('')
  say('==> the lab stays up (--keep). Explore it by hand:')
  say(`    ip netns exec ${d.attacker} curl -v http://${SERVER_IP}/                      # through the gateway`)
  say(`    ip netns exec ${d.attacker} curl "http://${SERVER_IP}/?id=1%27%20OR%20%271%27=%271"   # an exploit (reset)`)
  say(`    ip netns exec ${d.gateway} nft list table netdev patchpoint                   # what is diverted`)
  say(`    ip netns exec ${d.server} ss -ltnp                                             # the servers`)
  say(`    tail -f ${project}/.patchpoint/events/eve.json                                 # the event log`)
  say(`    patchpoint report --project ${project}`)
  say('    ip netns exec NS bash                                                          # a shell in a namespace')
  say('Tear it down with: patchpoint demo --teardown')
}
