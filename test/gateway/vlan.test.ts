/**
 * The inline gateway on a trunk: client and server send and receive VLAN-tagged frames only
 * (802.1Q, then an 802.1ad S-tag). This kernel has no 802.1Q module (`ip link add ... type vlan`
 * fails), so each host's VLAN end is vlan-relay.py: the host's stack sits on a veth of its own,
 * and the relay tags what it sends and passes on only frames that arrive with the host's tag.
 * Real nginx and curl; policy: port 80 drop, 8080 unprotected.
 */
import {describe, it, expect, beforeAll, afterAll} from 'vitest'
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import type {ChildProcess} from 'node:child_process'
import {CLIENT_IP, GatewayLab, LAB4, SERVER_IP, labSkipReason, linesOf, textOf, waitFor, type LabTopology} from './lab.js'

const skip = labSkipReason()
if (skip) console.warn(`skipping the VLAN gateway suite: ${skip}`)
const repo = fileURLToPath(new URL('../../', import.meta.url))
const bin = path.join(repo, 'bin/run.js')
const relayPy = fileURLToPath(new URL('./vlan-relay.py', import.meta.url))
const SHELLSHOCK_UA = '() { :; }; /bin/cat /etc/passwd'
const VLAN_LAB: LabTopology = {...LAB4, ns: {client: 'ppvc-', gw: 'ppvg-', server: 'ppvs-'}, tmpPrefix: 'pp-vlanlab-'}

describe.skipIf(skip !== null)('patchpoint run --iface on VLAN-tagged traffic (namespaces)', () => {
  let lab: GatewayLab
  let gw: ChildProcess
  let out = ''
  let accessLog = ''
  let oneMbSha = ''
  let eventsFile = ''
  let relays: ChildProcess[] = []

  const curl = (args: string, timeoutMs = 30_000) => lab.curl(args, timeoutMs)
  const access = () => textOf(accessLog)
  const events = () => linesOf(eventsFile)
  const diverted = () => Number(lab.sh(lab.gw, 'cat /sys/class/net/ga-ppe/statistics/rx_packets').trim())

  /** both hosts' VLAN ends with `tags` (TPID:VID,...), replacing the previous ones */
  async function startRelays(tags: string): Promise<{stats: () => Promise<string[]>}> {
    for (const r of relays) r.kill('SIGTERM')
    await waitFor(() => relays.every((r) => r.exitCode !== null || r.signalCode !== null), 5000)
    const outs: string[] = ['', '']
    relays = [lab.spawn(lab.client, ['/usr/bin/python3', relayPy, 'cvr', 'c0', tags]), lab.spawn(lab.server, ['/usr/bin/python3', relayPy, 'svr', 's0', tags])]
    relays.forEach((r, i) => r.stdout!.on('data', (d: Buffer) => (outs[i] += d.toString())))
    const ok = await waitFor(() => outs.every((o) => o.includes('READY')), 10_000)
    if (!ok) throw new Error(`relays did not start: ${outs.join(' | ')}`)
    // the hosts learn each other's MAC through the tagged path
    lab.try(lab.client, `ip neigh flush dev cv; ping -c1 -W2 ${SERVER_IP}`)
    return {
      stats: async () => {
        for (const r of relays) r.kill('SIGTERM')
        await waitFor(() => outs.every((o) => o.includes('tagged_in')), 5000)
        return outs.map((o) => o.split('\n').find((l) => l.includes('tagged_in')) ?? '')
      },
    }
  }

  beforeAll(async () => {
    lab = new GatewayLab(VLAN_LAB)
    lab.create()
    // the hosts' addresses move to a veth of their own behind the relay; c0 and s0 carry only tagged frames
    const off = 'tx off tso off gso off gro off'
    for (const [ns, wire, dev, ip] of [[lab.client, 'c0', 'cv', CLIENT_IP], [lab.server, 's0', 'sv', SERVER_IP]] as const) {
      // the wire carries tagged full-size frames: room for two tags (see vlan-relay.py)
      lab.sh(ns, `ip addr flush dev ${wire}; ip link set ${wire} mtu 1508; ip link add ${dev} type veth peer name ${dev}r; ip addr add ${ip}/24 dev ${dev}; ` +
        `ethtool -K ${dev} ${off} >/dev/null 2>&1; ethtool -K ${dev}r ${off} >/dev/null 2>&1; ip link set ${dev}r up; ip link set ${dev} up`)
    }
    const ng = lab.startNginx([80, 8080])
    accessLog = ng.accessLog
    oneMbSha = createHash('sha256').update(fs.readFileSync(ng.oneMb)).digest('hex')
    const policy = path.join(lab.dir, 'policy.json')
    fs.writeFileSync(policy, JSON.stringify({services: [{ip: SERVER_IP, port: 80, proto: 'tcp', action: 'drop'}]}))
    eventsFile = path.join(lab.dir, 'events.json')
    gw = lab.spawn(lab.gw, [process.execPath, bin, 'run', '--iface', 'ga,gb', '--policy', policy, '--events', eventsFile, '--stats-interval', '0'])
    gw.stdout!.on('data', (d: Buffer) => (out += d.toString()))
    gw.stderr!.on('data', (d: Buffer) => (out += d.toString()))
    const ready = await waitFor(() => out.includes('patchpoint: ready') || gw.exitCode !== null, 90_000)
    if (!ready || gw.exitCode !== null) throw new Error(`gateway did not start: ${out}`)
  }, 120_000)

  afterAll(() => {
    for (const r of relays) r.kill('SIGTERM')
    lab?.destroy()
  })

  for (const [name, tags] of [['802.1Q (VLAN 10)', '0x8100:10'], ['802.1ad S-tag (VLAN 20)', '0x88a8:20']] as const) {
    it(`${name}: a protected download is inspected and arrives byte for byte; the exploit is reset and never reaches nginx`, async () => {
      const relay = await startRelays(tags)
      // the relays pass only frames with the tag: untagged, nothing gets through
      const before = diverted()
      const r = curl(`-o - http://${SERVER_IP}:80/1mb.bin | sha256sum`)
      expect(r.out.split(' ')[0], r.out).toBe(oneMbSha)
      // the tagged frames went through the engine (its end of ga's pair), not around it
      expect(diverted() - before).toBeGreaterThanOrEqual(3)
      const marker = `pp-vlan-${tags.slice(2, 6)}`
      const alertsBefore = events().filter((l) => l.includes('PP-SHELLSHOCK') && l.includes('"event_type":"alert"')).length
      const bad = curl(`-o /dev/null -w '%{http_code}' -H 'User-Agent: ${SHELLSHOCK_UA}' http://${SERVER_IP}:80/${marker}`, 10_000)
      expect(bad.code, bad.out).not.toBe(0)
      // the resets came back with the tag (the relay drops anything else), so curl fails at once
      expect(bad.out).toMatch(/reset|Empty reply/i)
      await new Promise((res) => setTimeout(res, 300))
      expect(access()).not.toContain(marker)
      const alerts = () => events().filter((l) => l.includes('PP-SHELLSHOCK') && l.includes('"event_type":"alert"')).length
      expect(await waitFor(() => alerts() > alertsBefore, 3000), events().join('\n')).toBe(true)
      // unprotected traffic on the same VLAN stays in the kernel bridge
      const d2 = diverted()
      const u = curl(`-o - http://${SERVER_IP}:8080/1mb.bin | sha256sum`)
      expect(u.out.split(' ')[0]).toBe(oneMbSha)
      expect(diverted() - d2).toBeLessThan(20)
      const [client, server] = await relay.stats()
      expect(Number(/tagged_in (\d+)/.exec(client)?.[1])).toBeGreaterThan(700)
      expect(Number(/out (\d+)/.exec(client)?.[1])).toBeGreaterThan(10)
      expect(Number(/tagged_in (\d+)/.exec(server)?.[1])).toBeGreaterThan(10)
      for (const o of [client, server]) expect(o).toContain('send_errors 0')
    }, 120_000)
  }
})
