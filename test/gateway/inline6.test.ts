/**
 * The inline gateway protecting an IPv6 service, in network namespaces (topology in lab6.ts):
 * real nginx on [::], real curl -6, scapy for IPv6 fragments.
 * Policy: [fd00:6::3]:80 drop (written in a non-canonical spelling: the rules' own action is fix,
 * so a drop shows the service was found), :81 fix, :82 log; 8080 unprotected.
 * Runs the built CLI (dist/, `npm test` builds it first).
 */
import {describe, it, expect, beforeAll, afterAll} from 'vitest'
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import type {ChildProcess} from 'node:child_process'
import {labSkipReason, linesOf, textOf, waitFor} from './lab.js'
import {CLIENT6, GW_PORTS, GatewayLab6, SERVER6} from './lab6.js'

const skip = labSkipReason()
if (skip) console.warn(`skipping the inline IPv6 gateway suite: ${skip}`)
const repo = fileURLToPath(new URL('../../', import.meta.url))
const bin = path.join(repo, 'bin/run.js')
const evade6 = fileURLToPath(new URL('./evade6.py', import.meta.url))
const SHELLSHOCK_UA = '() { :; }; /bin/cat /etc/passwd'
const URL6 = `http://[${SERVER6}]`

describe.skipIf(skip !== null)('patchpoint run --iface, IPv6 services (inline, namespaces)', () => {
  let lab: GatewayLab6
  let gw: ChildProcess
  let out = ''
  let accessLog = ''
  let oneMbSha = ''
  let eventsFile = ''

  const curl = (args: string, timeoutMs = 20_000) => lab.curl(args, timeoutMs, '-6 -g')
  const access = () => textOf(accessLog)
  const events = () => linesOf(eventsFile)
  const statLines = () => out.split('\n').filter((l) => l.startsWith('stats '))
  /** the forwarder's bytesIn from a stats line printed after `afterLines` stats lines */
  const bytesInAfter = async (afterLines: number): Promise<number> => {
    await waitFor(() => statLines().length >= afterLines + 2, 5000)
    const l = statLines().at(-1) ?? ''
    return Number(/\bbytesIn=(\d+)/.exec(l)?.[1] ?? NaN)
  }

  beforeAll(async () => {
    // the CLI runs from dist/: a build without IPv6 sets would make every check below misleading
    const built = path.join(repo, 'dist/core/gateway/nft.js')
    if (!fs.existsSync(built) || !fs.readFileSync(built, 'utf8').includes('tcp6')) throw new Error('dist/ is stale or missing: run `npm run build`')
    lab = new GatewayLab6()
    lab.create()
    const ng = lab.startNginx([80, 81, 82, 8080])
    accessLog = ng.accessLog
    oneMbSha = createHash('sha256').update(fs.readFileSync(ng.oneMb)).digest('hex')
    const policy = path.join(lab.dir, 'policy.json')
    fs.writeFileSync(policy, JSON.stringify({services: [
      {ip: 'FD00:0006:0:0::0003', port: 80, proto: 'tcp', action: 'drop'},
      {ip: SERVER6, port: 81, proto: 'tcp', action: 'fix'},
      {ip: SERVER6, port: 82, proto: 'tcp', action: 'log'},
    ]}))
    eventsFile = path.join(lab.dir, 'events.json')
    gw = lab.spawn(lab.gw, [process.execPath, bin, 'run', '--iface', GW_PORTS.join(','), '--policy', policy, '--events', eventsFile, '--stats-interval', '1'])
    gw.stdout!.on('data', (d: Buffer) => (out += d.toString()))
    gw.stderr!.on('data', (d: Buffer) => (out += d.toString()))
    const ready = await waitFor(() => out.includes('patchpoint: ready') || gw.exitCode !== null, 90_000)
    if (!ready || gw.exitCode !== null) throw new Error(`gateway did not start: ${out}`)
    // neighbour discovery (ICMPv6, not diverted) through the bridge
    await waitFor(() => lab.try(lab.client, `ping -6 -c1 -W1 ${SERVER6}`).code === 0, 10_000, 200)
  }, 120_000)

  afterAll(() => {
    lab?.destroy()
  })

  it('starts without the old "not diverted" note and diverts the IPv6 services', () => {
    expect(out).not.toContain('not diverted')
    expect(out).toContain('3 protected services')
    const rules = lab.sh(lab.gw, 'nft list table netdev patchpoint')
    expect(rules).toMatch(/elements = \{ fd00:6::3 \. 80,\s*fd00:6::3 \. 81,\s*fd00:6::3 \. 82 \}/)
  })

  it('(a) a benign 1 MB download from a protected IPv6 port arrives byte for byte, through the engine', async () => {
    const before = await bytesInAfter(statLines().length)
    const r = curl(`-o - ${URL6}:80/1mb.bin | sha256sum`)
    expect(r.code, r.out).toBe(0)
    expect(r.out.split(' ')[0]).toBe(oneMbSha)
    const after = await bytesInAfter(statLines().length)
    expect(after - before).toBeGreaterThan(1 << 20)
  })

  it('(b) an unprotected IPv6 port passes through the kernel bridge, not the engine', async () => {
    const before = await bytesInAfter(statLines().length)
    const r = curl(`-o - ${URL6}:8080/1mb.bin | sha256sum`)
    expect(r.out.split(' ')[0]).toBe(oneMbSha)
    const after = await bytesInAfter(statLines().length)
    // the engine saw at most a few stray frames, not the megabyte
    expect(after - before).toBeLessThan(64 * 1024)
    expect(gw.exitCode).toBeNull()
  })

  it('(c) drop: Shellshock via curl -6 is reset and never reaches nginx; the next request works', () => {
    const r = curl(`-o /dev/null -w '%{http_code}' -H 'User-Agent: ${SHELLSHOCK_UA}' ${URL6}:80/pp6-drop-ss`, 10_000)
    expect(r.code, r.out).not.toBe(0)
    expect(r.out).toMatch(/reset|Empty reply|Recv failure/i)
    expect(access()).not.toContain('pp6-drop-ss')
    expect(curl(`-o /dev/null -w '%{http_code}' ${URL6}:80/pp6-after-drop`).out).toBe('200')
  })

  it('(c) fix: the request arrives neutralised and the session lives (200)', async () => {
    const r = curl(`-o /dev/null -w '%{http_code}' -H 'User-Agent: ${SHELLSHOCK_UA}' ${URL6}:81/pp6-fix-ss`)
    expect(r.out).toBe('200')
    await waitFor(() => access().includes('pp6-fix-ss'), 2000)
    const line = access().split('\n').find((l) => l.includes('pp6-fix-ss'))
    expect(line).toBeDefined()
    expect(line).not.toContain('() {')
  })

  it('(d) an exploit cut into IPv6 fragments is blocked, no fragment reaches the server; benign fragments pass', async () => {
    // the client kernel must not reset scapy's connections
    lab.sh(lab.client, "nft add table inet ev6; nft add chain inet ev6 o '{ type filter hook output priority 0; }'; nft add rule inet ev6 o tcp flags rst drop")
    const pcap = path.join(lab.dir, 'server-frags.pcap')
    const td = lab.spawn(lab.server, ['tcpdump', '-U', '-nn', '-i', 'p6s0', '-w', pcap, `ip6 and src host ${CLIENT6} and ip6[6] == 44`])
    let tdErr = ''
    td.stderr!.on('data', (d: Buffer) => (tdErr += d.toString()))
    await waitFor(() => tdErr.includes('listening on'), 10_000)
    const req = (marker: string, ua: string) => {
      const f = path.join(lab.dir, `${marker}.txt`)
      fs.writeFileSync(f, `GET /${marker} HTTP/1.1\r\nHost: x\r\nUser-Agent: ${ua}\r\n\r\n`)
      return f
    }
    const blockedBefore = events().filter((l) => l.includes('"gateway.flow_blocked"')).length
    const r = lab.try(lab.client, `/usr/bin/python3 ${evade6} ${SERVER6} 80 ${req('pp6-frag-ss', SHELLSHOCK_UA)} 32`, 30_000)
    // dropped on the reassembled datagram: the session is reset like any other drop
    expect(r.out, r.out).toMatch(/^RST/)
    const frags = Number(/FRAGS (\d+)/.exec(r.out)?.[1])
    expect(frags).toBeGreaterThanOrEqual(3)
    const sport = Number(/SPORT (\d+)/.exec(r.out)?.[1])
    await new Promise((res) => setTimeout(res, 300))
    td.kill('SIGINT')
    await waitFor(() => td.exitCode !== null || td.signalCode !== null, 5000)
    expect(access()).not.toContain('pp6-frag-ss')
    // not one fragment of the exploit crossed the bridge (nftables diverted the non-first ones too)
    const seen = lab.sh(lab.server, `tcpdump -nn -r ${pcap} 2>/dev/null`)
    expect(seen.trim(), seen).toBe('')
    await waitFor(() => events().slice(blockedBefore).some((l) => l.includes('"gateway.flow_blocked"')), 2000)
    const blocked = events().filter((l) => l.includes('"gateway.flow_blocked"')).slice(blockedBefore)
      .map((l) => (JSON.parse(l) as {src_port?: number}).src_port)
    expect(blocked).toContain(sport)
    // the same fragmented delivery of a benign request on the drop port goes through the engine
    // and arrives; the exploit on the log port arrives (control: nginx gets fragmented exploits)
    const ok = lab.try(lab.client, `/usr/bin/python3 ${evade6} ${SERVER6} 80 ${req('pp6-frag-benign', 'curl/8')} 32`, 30_000)
    expect(ok.out, ok.out).toMatch(/^OK/)
    const ctl = lab.try(lab.client, `/usr/bin/python3 ${evade6} ${SERVER6} 82 ${req('pp6-frag-control', SHELLSHOCK_UA)} 32`, 30_000)
    expect(ctl.out, ctl.out).toMatch(/^OK/)
    await waitFor(() => access().includes('pp6-frag-benign') && access().includes('pp6-frag-control'), 3000)
    expect(access()).toContain('pp6-frag-benign')
    expect(access().split('\n').find((l) => l.includes('pp6-frag-control'))).toContain('() { :; }')
    lab.sh(lab.client, 'nft delete table inet ev6')
  }, 60_000)

  it('(e) kill -9: the ip6 alive element expires, protected IPv6 traffic resumes within ~1 s', async () => {
    process.kill(gw.pid!, 'SIGKILL')
    const killedAt = Date.now()
    let resumedMs = -1
    while (Date.now() - killedAt < 5000) {
      const r = curl(`-o /dev/null -w '%{http_code}' --connect-timeout 1 ${URL6}:80/pp6-after-kill`, 2000)
      if (r.out === '200') {
        resumedMs = Date.now() - killedAt
        break
      }
    }
    console.log(`fail-open (IPv6): protected traffic resumed ${resumedMs} ms after kill -9`)
    expect(resumedMs).toBeGreaterThanOrEqual(0)
    expect(resumedMs).toBeLessThan(2500)
  })
})
