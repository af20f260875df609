/**
 * The terminal dashboard of `patchpoint run`: the model and the ink component through fake
 * terminal streams, runGateway feeding a view (proxy mode on loopback, no root), and the real
 * binary under tmux (curl sends Shellshock through the proxy; q exits with 0).
 */
import {execFile, execFileSync, spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, realpathSync, statSync, writeFileSync} from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import type {AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'
import React from 'react'
import {render} from 'ink'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import type {EveEvent} from '../../src/core/events/eve.js'
import type {ForwarderStats} from '../../src/core/gateway/forwarder.js'
import type {ProxyStats} from '../../src/core/gateway/proxy.js'
import {runGateway, type RunInfo, type RunSnapshot} from '../../src/core/gateway/run.js'
import {initProject} from '../../src/core/project/init.js'
import {
  Counts, DASHBOARD_MAX_EVENTS, DashboardModel, Ring, RunDashboard, STALL_MS, eventRow, formatBytes, formatRate,
  startDashboard,
} from '../../src/cli/run-dashboard.js'
import {wantsDashboard} from '../../src/commands/run.js'
import {bin, repoRoot} from '../support/cli.js'
import {FakeStdin, FakeStdout} from '../support/fake-tty.js'

/** debug mode writes each dashboard frame whole: the last one */
class DashboardStdout extends FakeStdout {
  constructor() {
    super(160, 40)
  }

  get last(): string { return this.lastWhere((f) => f.includes('latest events') || f.includes('starting...')) }
}

const tick = (ms = 30) => new Promise((r) => setTimeout(r, ms))

/** a free loopback port (bound then released) */
async function freePort(): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
  const p = (s.address() as AddressInfo).port
  await new Promise<void>((r) => s.close(() => r()))
  return p
}

function alert(i: number, action: 'drop' | 'fix' | 'log', shadow = false): EveEvent {
  return {
    timestamp: `2026-11-26T10:00:${String(i % 60).padStart(2, '0')}.000000+0000`,
    event_type: 'alert', src_ip: '192.0.2.7', src_port: 40000 + i, dest_ip: '198.51.100.9', dest_port: 80, proto: 'TCP',
    alert: {action: action === 'log' || shadow ? 'allowed' : 'blocked', gid: 1, signature_id: 9000000 + i, rev: 1, signature: `PP-TEST-${i} test rule number ${i}`, category: 'x', severity: 1},
    patchpoint: {action, rule_id: `PP-TEST-${i}`, cves: [], gateway: 'gw', ...(shadow ? {shadow: true} : {})},
  }
}

function anomaly(i: number): EveEvent {
  return {timestamp: '2026-11-26T10:01:00.000000+0000', event_type: 'anomaly', src_ip: '192.0.2.8', src_port: 1, dest_ip: '198.51.100.9', dest_port: 25, anomaly: {type: 'stream', event: `stream.test_${i}`}}
}

const FWD0: ForwarderStats = {
  framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0, held: 0, heldNow: 0, heldBytesNow: 0, fixedFrames: 0, droppedFrames: 0,
  blockedFlows: 0, resetsSent: 0, holdOverflows: 0, holdTimeouts: 0, duplicatesDiscarded: 0, fragmentsHeld: 0,
}
const PROXY0: ProxyStats = {connections: 0, active: 0, bytesToServer: 0, bytesToClient: 0, blocked: 0, fixed: 0, replied: 0, holdOverflows: 0}

function snap(atMs: number, fwd: Partial<ForwarderStats> = {}, px: Partial<ProxyStats> = {}, events = 0): RunSnapshot {
  return {
    atMs, forwarder: {...FWD0, ...fwd}, proxy: {...PROXY0, ...px},
    engine: {flows: 12, peakFlows: 40, alerts: 3, anomalies: 1, flowsEvicted: 0},
    events, rssBytes: 123 * 1048576, heapBytes: 45 * 1048576,
  }
}

const INFO: RunInfo = {
  mode: ['inline', 'proxy'], ifaces: ['ppd-a', 'ppd-b'], bridge: 'ppd-br', services: 3, failClosed: false,
  proxies: [{listen: '127.0.0.1:8080', upstream: '127.0.0.1:80'}], startedAt: 1_000_000,
}

describe('dashboard model', () => {
  it('a ring keeps the newest `capacity` items, newest first', () => {
    const r = new Ring<number>(5)
    for (let i = 0; i < 1000; i++) r.push(i)
    expect(r.size).toBe(5)
    expect(r.total).toBe(1000)
    expect(r.newest(3)).toEqual([999, 998, 997])
    expect(r.newest(50)).toEqual([999, 998, 997, 996, 995])
    expect(new Ring<number>(3).newest(3)).toEqual([])
  })

  it('counters keep at most maxKeys keys, the rest under other', () => {
    const c = new Counts(4)
    for (let i = 0; i < 100; i++) c.add(`k${i}`)
    c.add('k0')
    expect(c.map.size).toBeLessThanOrEqual(4)
    expect(c.get('k0')).toBe(2)
    expect(c.get('other')).toBe(97)
  })

  it('units and event rows', () => {
    expect(formatBytes(512)).toBe('512 B')
    expect(formatBytes(1_500_000)).toBe('1.4 MB')
    expect(formatRate(1_000_000)).toBe('8.0 Mbit/s')
    expect(formatRate(50)).toBe('400 bit/s')
    const r = eventRow(alert(7, 'fix'))
    expect(r).toMatchObject({time: '10:00:07', kind: 'fix', tone: 'fix', where: '192.0.2.7:40007 -> 198.51.100.9:80'})
    expect(r.text).toContain('PP-TEST-7')
    expect(eventRow(alert(1, 'drop', true)).kind).toBe('shadow')
    expect(eventRow(anomaly(2))).toMatchObject({kind: 'anomaly', text: 'stream.test_2'})
  })

  it('rates come from the last two snapshots; actions and alerts are counted by type', () => {
    const m = new DashboardModel()
    m.info = INFO
    m.tick(snap(5_000, {framesIn: 100, bytesIn: 100_000, framesOut: 90, bytesOut: 90_000}, {bytesToServer: 1000, connections: 2}))
    m.tick(snap(7_000, {framesIn: 2100, bytesIn: 2_100_000, framesOut: 2090, bytesOut: 1_090_000, fixedFrames: 4, droppedFrames: 6, blockedFlows: 2, resetsSent: 4}, {bytesToServer: 251_000, connections: 12, blocked: 1}))
    for (const a of ['drop', 'drop', 'fix', 'log'] as const) m.event(alert(1, a))
    m.event(alert(2, 'drop', true))
    m.event(anomaly(1))
    const f = m.frame({columns: 160, rows: 40}, 1_000_000 + 3_723_000)
    const inRow = f.traffic.find((t) => t.label.startsWith('in'))
    expect(inRow?.bytesPerS).toBe(1_000_000)
    expect(inRow?.framesPerS).toBe(1000)
    expect(f.traffic.find((t) => t.label.startsWith('out'))?.bytesPerS).toBe(500_000)
    expect(f.traffic.find((t) => t.label.startsWith('proxy in'))?.bytesPerS).toBe(125_000)
    expect(f.actions).toContain('fixed 4 frames')
    expect(f.actions).toContain('dropped 6 frames (2 flows blocked, 4 resets)')
    expect(f.actions).toContain('proxy: fixed 0, dropped 1 connections')
    expect(f.actions).toContain('logged 2')
    expect(f.alerts).toMatch(/^5 alerts \(drop 2, .*fix 1.*\), 1 anomalies/)
    expect(f.alerts).toContain('shadow 1')
    expect(f.flows).toContain('inline 12 now, 40 peak')
    expect(f.flows).toContain('proxy 0 connections now, 12 total, 5.0/s')
    expect(f.health).toContain('up 01:02:03')
    expect(f.health).toContain('rss 123 MB')
    expect(f.health).toContain('fail-open armed')
    expect(f.mode[0]).toContain('inline ppd-a <-> ppd-b (bridge ppd-br), 3 protected services, fail-open')
    expect(f.mode[1]).toBe('proxy 127.0.0.1:8080 -> 127.0.0.1:80')
    expect(f.healthy).toBe(true)
  })

  it('a redraw late by more than the stall limit counts as a stall and shows', () => {
    const m = new DashboardModel({refreshMs: 1000})
    m.info = {...INFO, failClosed: true}
    m.tick(snap(10_000))
    m.tick(snap(11_000))
    expect(m.stalls).toBe(0)
    m.tick(snap(11_000 + 1000 + STALL_MS + 500))
    expect(m.stalls).toBe(1)
    const f = m.frame({}, 11_000 + 1000 + STALL_MS + 600)
    expect(f.healthy).toBe(false)
    expect(f.health).toContain('STALLED')
    expect(f.health).toContain('stalls 1')
    expect(f.health).toContain('fail-closed armed')
  })

  it('the event list shown fits the terminal and the ring stays bounded', () => {
    const m = new DashboardModel({maxEvents: 50})
    for (let i = 0; i < 10_000; i++) m.event(alert(i, 'drop'))
    expect(m.events.size).toBe(50)
    const small = m.frame({columns: 80, rows: 24})
    expect(small.events.length).toBeLessThanOrEqual(24)
    expect(small.events.length).toBeGreaterThanOrEqual(3)
    expect(small.events[0].text).toContain('PP-TEST-9999')
    const tall = m.frame({columns: 80, rows: 500})
    expect(tall.events.length).toBe(50)
    expect(tall.eventsTotal).toBe(10_000)
    const dflt = new DashboardModel()
    for (let i = 0; i < 10_000; i++) dflt.event(anomaly(i))
    expect(dflt.events.size).toBe(DASHBOARD_MAX_EVENTS)
    expect(dflt.types.get('anomaly')).toBe(10_000)
  })

  it('wantsDashboard: a terminal, not --json, not CI, not dumb; the flag wins', () => {
    expect(wantsDashboard(undefined, false, {isTTY: true}, {})).toBe(true)
    expect(wantsDashboard(undefined, false, {isTTY: false}, {})).toBe(false)
    expect(wantsDashboard(undefined, true, {isTTY: true}, {})).toBe(false)
    expect(wantsDashboard(undefined, false, {isTTY: true}, {CI: '1'})).toBe(false)
    expect(wantsDashboard(undefined, false, {isTTY: true}, {TERM: 'dumb'})).toBe(false)
    expect(wantsDashboard(false, false, {isTTY: true}, {})).toBe(false)
    expect(wantsDashboard(true, false, {isTTY: false}, {})).toBe(true)
    expect(wantsDashboard(true, true, {isTTY: true}, {})).toBe(false)
  })
})

describe('dashboard (ink, fake terminal)', () => {
  it('the component draws the stats and events of a frame', async () => {
    const m = new DashboardModel()
    m.info = INFO
    m.tick(snap(1_000, {framesIn: 10, bytesIn: 10_000}))
    m.tick(snap(2_000, {framesIn: 1010, bytesIn: 1_010_000, framesOut: 1000, bytesOut: 1_000_000, fixedFrames: 3}))
    m.event(alert(1, 'drop'))
    m.event(alert(2, 'fix'))
    m.event(anomaly(3))
    m.line('patchpoint: ready')
    const out = new DashboardStdout()
    const app = render(React.createElement(RunDashboard, {frame: m.frame({columns: 160, rows: 40}, 60_000 + INFO.startedAt), keys: false}), {stdout: out as unknown as NodeJS.WriteStream, debug: true, patchConsole: false})
    await tick()
    app.unmount()
    const text = out.last
    expect(text).toContain('patchpoint run  inline + proxy')
    expect(text).toContain('proxy 127.0.0.1:8080 -> 127.0.0.1:80')
    expect(text).toMatch(/in {2}\(diverted to the engine\)\s+1010\s+986 KB\s+8\.0 Mbit\/s\s+1000/)
    expect(text).toContain('fixed 3 frames')
    expect(text).toContain('up 00:01:00')
    expect(text).toContain('latest events (newest first, 3 of 3)')
    // newest first
    const lines = text.split('\n')
    const iAnom = lines.findIndex((l) => l.includes('stream.test_3'))
    const iFix = lines.findIndex((l) => l.includes('PP-TEST-2'))
    const iDrop = lines.findIndex((l) => l.includes('PP-TEST-1 '))
    expect(iAnom).toBeGreaterThan(0)
    expect(iAnom).toBeLessThan(iFix)
    expect(iFix).toBeLessThan(iDrop)
    expect(lines[iDrop]).toMatch(/10:00:01 drop\s+192\.0\.2\.7:40001 -> 198\.51\.100\.9:80\s+PP-TEST-1 test rule/)
    expect(text).toContain('patchpoint: ready')
    // no line wider than the terminal
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(160)
  })

  it('startDashboard: draws on its timer from the snapshot, keeps the events bounded, q stops the gateway', async () => {
    const stdin = new FakeStdin()
    const stdout = new DashboardStdout()
    const dash = startDashboard({stdin: stdin as unknown as NodeJS.ReadStream, stdout: stdout as unknown as NodeJS.WriteStream, debug: true}, {refreshMs: 50, maxEvents: 20})
    await tick()
    expect(stdout.last).toContain('starting...')
    dash.view.line('patchpoint: proxy 127.0.0.1:1 -> 127.0.0.1:2')
    let bytes = 0
    let stops = 0
    dash.view.ready({...INFO, mode: ['proxy'], startedAt: Date.now()}, () => ({atMs: Date.now(), proxy: {...PROXY0, bytesToServer: bytes, blocked: 7}, events: 5000, rssBytes: 1, heapBytes: 1}), () => { stops++ })
    const framesBefore = stdout.frames.length
    for (let i = 0; i < 5000; i++) dash.view.event(alert(i, i % 2 ? 'drop' : 'fix'))
    // no drawing per event: feeding 5000 events drew nothing by itself
    expect(stdout.frames.length).toBe(framesBefore)
    bytes = 1_234_567
    await tick(200)
    const text = stdout.last
    expect(text).toMatch(/proxy in {2}\(client -> server\)\s+-\s+1\.2 MB/)
    expect(text).toContain('dropped 7 connections')
    expect(text).toContain('PP-TEST-4999')
    expect(text).not.toContain('PP-TEST-4979 ')
    expect(text).toContain('latest events (newest first, 20 of 5000)')
    expect(dash.model.events.size).toBe(20)
    stdin.press('q')
    await tick()
    expect(stops).toBe(1)
    expect(dash.model.stopping).toBe(true)
    dash.view.line('patchpoint: stopped')
    await dash.close()
    expect(stdout.last).toContain('patchpoint: stopped')
    expect(stdout.last).toMatch(/engine health\s+stopped/)
  })

  it('Ctrl-C stops the gateway too; q before ready stops it as soon as it is up', async () => {
    const stdin = new FakeStdin()
    const stdout = new DashboardStdout()
    const dash = startDashboard({stdin: stdin as unknown as NodeJS.ReadStream, stdout: stdout as unknown as NodeJS.WriteStream, debug: true}, {refreshMs: 50})
    await tick()
    stdin.press('\u0003')
    await tick()
    let stops = 0
    dash.view.ready(INFO, () => snap(Date.now()), () => { stops++ })
    expect(stops).toBe(1)
    stdin.press('\u0003')
    stdin.press('q')
    await tick()
    expect(stops).toBe(1)
    await dash.close()
  })

  it('closed before the gateway came up: the operator lines are printed plainly', async () => {
    const stdout = new DashboardStdout()
    const dash = startDashboard({stdin: new FakeStdin() as unknown as NodeJS.ReadStream, stdout: stdout as unknown as NodeJS.WriteStream, debug: true}, {refreshMs: 50})
    dash.view.line('patchpoint: IPv6 services are not diverted inline yet: [2001:db8::1]:80')
    await dash.close()
    expect(stdout.frames.at(-1)).toBe('patchpoint: IPv6 services are not diverted inline yet: [2001:db8::1]:80\n')
  })
})

describe('runGateway with a view (proxy mode on loopback, no root)', () => {
  const seen: string[] = []
  let server: http.Server
  let upstreamPort = 0
  const dir = realpathSync(mkdtempSync(path.join(tmpdir(), 'pp-dash-')))
  const policyFile = path.join(dir, 'policy.json')

  beforeAll(async () => {
    writeFileSync(policyFile, JSON.stringify({services: [], default_action: 'drop'}))
    server = http.createServer((req, res) => {
      seen.push(`${req.url}`)
      res.setHeader('connection', 'close')
      res.end('hello\n')
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    upstreamPort = (server.address() as AddressInfo).port
  })

  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()))
  })

  function request(port: number, text: string): Promise<string> {
    return new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.write(text))
      let got = ''
      s.on('data', (d) => (got += d.toString('latin1')))
      s.on('close', () => resolve(got))
      s.on('error', () => resolve(got))
      setTimeout(() => s.destroy(), 3000)
    })
  }

  it('events and lines go to the view, not stdout; the snapshot has the proxy counters; stop() ends it', {timeout: 30_000}, async () => {
    const plain: string[] = []
    const got: EveEvent[] = []
    const lines: string[] = []
    let ready: {info: RunInfo; snapshot: () => RunSnapshot; stop: () => void} | null = null
    const done = runGateway({
      proxies: [`127.0.0.1:${await freePort()}=127.0.0.1:${upstreamPort}`], policyFile, eventsFile: '-',
      out: (l) => plain.push(l),
      view: {event: (ev) => got.push(ev), line: (l) => lines.push(l), ready: (info, snapshot, stop) => { ready = {info, snapshot, stop} }},
    })
    for (let t = 0; t < 200 && !ready; t++) await tick(50)
    const r = ready as unknown as {info: RunInfo; snapshot: () => RunSnapshot; stop: () => void}
    expect(r.info.mode).toEqual(['proxy'])
    const port = Number(r.info.proxies[0].listen.split(':').pop())
    expect(await request(port, 'GET /pp-dash-benign HTTP/1.1\r\nHost: x\r\n\r\n')).toMatch(/^HTTP\/1.1 200/)
    expect(await request(port, 'GET /pp-dash-exploit HTTP/1.1\r\nHost: x\r\nUser-Agent: () { :; }; /bin/id\r\n\r\n')).toBe('')
    const s = r.snapshot()
    expect(s.proxy?.connections).toBe(2)
    expect(s.proxy?.blocked).toBe(1)
    expect(s.events).toBe(got.length)
    expect(got.some((e) => e.event_type === 'alert' && e.patchpoint?.action === 'drop' && e.alert.signature.startsWith('PP-SHELLSHOCK'))).toBe(true)
    expect(seen).toContain('/pp-dash-benign')
    expect(seen).not.toContain('/pp-dash-exploit')
    r.stop()
    const res = await done
    expect(res.stats.proxy_blocked).toBe(1)
    expect(plain).toEqual([])
    expect(lines[0]).toMatch(/^patchpoint: proxy 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+$/)
    expect(lines).toContain('patchpoint: ready')
    expect(lines.at(-1)).toBe('patchpoint: stopped')
  })

  it('without a view the plain lines are unchanged (event line, no dashboard)', {timeout: 30_000}, async () => {
    const plain: string[] = []
    let stop = () => {}
    const until = new Promise<void>((r) => { stop = r })
    const done = runGateway({proxies: [`127.0.0.1:${await freePort()}=127.0.0.1:${upstreamPort}`], policyFile, eventsFile: '-', out: (l) => plain.push(l), until, statsIntervalS: 0})
    for (let t = 0; t < 200 && !plain.includes('patchpoint: ready'); t++) await tick(50)
    const port = Number(/proxy 127\.0\.0\.1:(\d+)/.exec(plain[0])?.[1])
    await request(port, 'GET /pp-dash-plain HTTP/1.1\r\nHost: x\r\nUser-Agent: () { :; }; /bin/id\r\n\r\n')
    stop()
    await done
    expect(plain.some((l) => / drop PP-SHELLSHOCK .* 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+$/.test(l))).toBe(true)
    expect(plain.at(-1)).toBe('patchpoint: stopped')
  })
})

const hasTmux = spawnSync('tmux', ['-V']).status === 0
const hasCurl = spawnSync('curl', ['--version']).status === 0

describe.skipIf(!hasTmux || !hasCurl)('run dashboard (real binary under tmux)', () => {
  let server: http.Server
  let upstreamPort = 0
  const seen: string[] = []

  beforeAll(async () => {
    const stale = (d: string, s: string) => !existsSync(path.join(repoRoot, d)) || statSync(path.join(repoRoot, d)).mtimeMs < statSync(path.join(repoRoot, s)).mtimeMs
    if (stale('dist/cli/run-dashboard.js', 'src/cli/run-dashboard.ts') || stale('dist/commands/run.js', 'src/commands/run.ts') || stale('dist/core/gateway/run.js', 'src/core/gateway/run.ts')) {
      try {
        execFileSync('npm', ['run', 'build'], {cwd: repoRoot, stdio: 'pipe'})
      } catch {
        // tsc emits even when another folder fails to type-check
      }
    }
    if (!existsSync(path.join(repoRoot, 'dist/cli/run-dashboard.js'))) throw new Error('build did not produce dist/cli/run-dashboard.js')
    server = http.createServer((req, res) => {
      seen.push(`${req.url}`)
      res.setHeader('connection', 'close')
      res.end('hello from upstream\n')
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    upstreamPort = (server.address() as AddressInfo).port
  }, 180_000)

  afterAll(async () => {
    await new Promise<void>((r) => server?.close(() => r()))
  })

  const curl = (args: string[]) => new Promise<{code: number; out: string}>((resolve) => {
    execFile('curl', ['-s', '--max-time', '5', ...args], {encoding: 'utf8'}, (err, out) => resolve({code: err ? Number((err as {code?: number}).code ?? 1) : 0, out}))
  })

  it('shows the alert and the counters, and q exits with 0', {timeout: 60_000}, async () => {
    const dir = realpathSync(mkdtempSync(path.join(tmpdir(), 'pp-dash-tmux-')))
    await initProject(dir)
    writeFileSync(path.join(dir, 'policy-drop.json'), JSON.stringify({services: [], default_action: 'drop'}))
    const port = await freePort()
    const session = `pp-dash-${process.pid}`
    const tmux = (...args: string[]) => execFileSync('tmux', args, {encoding: 'utf8'})
    const pane = () => tmux('capture-pane', '-p', '-t', session)
    const waitFor = async (re: RegExp) => {
      for (let t = 0; t < 200; t++) {
        const text = pane()
        if (re.test(text)) return text
        await tick(100)
      }
      throw new Error(`pane never matched ${re}:\n${pane()}`)
    }
    const env = 'env -u CI -u PATCHPOINT_PROJECT -u PATCHPOINT_DEBUG NO_COLOR=1 TERM=xterm'
    tmux('new-session', '-d', '-s', session, '-x', '150', '-y', '40',
      `cd ${dir} && ${env} ${process.execPath} ${bin} run --proxy 127.0.0.1:${port}=127.0.0.1:${upstreamPort} --policy policy-drop.json; echo EXIT=$?; sleep 30`)
    try {
      const first = await waitFor(/patchpoint: ready/)
      expect(first).toContain('patchpoint run  proxy')
      expect(first).toContain(`proxy 127.0.0.1:${port} -> 127.0.0.1:${upstreamPort}`)
      expect(first).toContain('latest events')
      const ok = await curl([`http://127.0.0.1:${port}/pp-dash-ok`])
      expect(ok.out).toBe('hello from upstream\n')
      const bad = await curl(['-H', 'User-Agent: () { :; }; /bin/id', `http://127.0.0.1:${port}/pp-dash-shellshock`])
      expect(bad.out).toBe('')
      expect(bad.code).not.toBe(0)
      const shown = await waitFor(/dropped 1 connections/)
      expect(shown).toMatch(/drop\s+127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+\s+PP-SHELLSHOCK/)
      expect(shown).toContain('1 alerts (drop 1)')
      expect(shown).toMatch(/proxy 0 connections now, 2 total/)
      expect(shown).toMatch(/engine health\s+alive, up \d\d:\d\d:\d\d, rss \d+/)
      tmux('send-keys', '-t', session, 'q')
      const end = await waitFor(/EXIT=\d+/)
      expect(end).toContain('EXIT=0')
      expect(end).toContain('patchpoint: stopped')
    } finally {
      try { tmux('kill-session', '-t', session) } catch { /* gone */ }
    }
    expect(seen).toContain('/pp-dash-ok')
    expect(seen).not.toContain('/pp-dash-shellshock')
  })
})
