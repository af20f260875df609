/**
 * `patchpoint replay` as a user runs it: the real binary on captures built by the test.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {encodePcap} from '../../src/core/capture/writer.js'
import {LINKTYPE} from '../../src/core/packet/linktype.js'
import {jsonLines, runCli} from '../support/cli.js'
import {rng, tcpConversation} from '../support/tcp-conversation.js'

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pp-replay-'))
afterAll(() => fs.rmSync(tmp, {recursive: true, force: true}))

function randomBytes(n: number, seed: number): Uint8Array {
  const r = rng(seed)
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = Math.floor(r() * 256)
  return out
}

function writeCapture(name: string, frames: {tsUs: number; data: Uint8Array}[]): string {
  const file = path.join(tmp, name)
  fs.writeFileSync(file, encodePcap(LINKTYPE.ETHERNET, frames))
  return file
}

describe('replay --write-streams', () => {
  it('rebuilds a transfer sent in shuffled, duplicated and overlapping segments byte for byte', async () => {
    const upload = randomBytes(200_000, 7)
    const download = randomBytes(120_000, 8)
    const file = writeCapture('transfer.pcap', tcpConversation({
      client: '192.0.2.10', server: '192.0.2.20', clientPort: 40000, serverPort: 9000,
      toServer: upload, toClient: download, maxSegment: 1400, shuffle: true, duplicate: 0.2, overlap: 0.2, seed: 3,
    }))
    const out = path.join(tmp, 'streams')
    const r = await runCli(['replay', file, '--write-streams', out, '--events', path.join(tmp, 'ev.json')])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const files = fs.readdirSync(out).sort()
    expect(files).toEqual(['192.000.002.010.40000-192.000.002.020.09000', '192.000.002.020.09000-192.000.002.010.40000'])
    expect(Buffer.compare(fs.readFileSync(path.join(out, files[0])), Buffer.from(upload))).toBe(0)
    expect(Buffer.compare(fs.readFileSync(path.join(out, files[1])), Buffer.from(download))).toBe(0)
  })

  it('keeps the first bytes when an overlapping segment conflicts, and says so', async () => {
    const frames = tcpConversation({
      client: '192.0.2.10', server: '192.0.2.20', clientPort: 40001, serverPort: 9000,
      toServer: new TextEncoder().encode('GET /index.html HTTP/1.0\r\n\r\n'), maxSegment: 1400,
    })
    // after the request (and before the server acknowledges it), a segment re-sends its first
    // 8 bytes with other content
    const {buildTcpPacket} = await import('../../src/core/packet/encode.js')
    const serverAck = frames.findIndex((f, i) => i > 2 && f.data[6 + 5] === 2) // first frame from the server's MAC after the handshake
    frames.splice(serverAck, 0, {tsUs: frames[serverAck - 1].tsUs + 1, data: buildTcpPacket({
      src: '192.0.2.10', dst: '192.0.2.20', srcPort: 40001, dstPort: 9000, seq: 1001, ack: 500_001, flags: 0x18, window: 65535,
      srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02', payload: new TextEncoder().encode('GET /adm'),
    })})
    const file = writeCapture('conflict.pcap', frames)
    const out = path.join(tmp, 'streams2')
    const r = await runCli(['replay', file, '--write-streams', out, '--events', '-'])
    expect(r.code).toBe(1)
    const events = jsonLines<{event_type: string; anomaly?: {event: string}}>(r.stdout)
    expect(events.map((e) => e.anomaly?.event)).toContain('tcp.overlap_conflict')
    expect(fs.readFileSync(path.join(out, '192.000.002.010.40001-192.000.002.020.09000'), 'latin1')).toBe('GET /index.html HTTP/1.0\r\n\r\n')
  })
})

describe('replay exit codes and errors', () => {
  const clean = () => writeCapture('clean.pcap', tcpConversation({
    client: '192.0.2.1', server: '192.0.2.2', clientPort: 50000, serverPort: 7000,
    toServer: new TextEncoder().encode('hello'), toClient: new TextEncoder().encode('world'),
  }))

  it('exits 0 when nothing is found and reports the counts as JSON', async () => {
    const r = await runCli(['replay', clean(), '--json'])
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out.files).toHaveLength(1)
    expect(out.files[0]).toMatchObject({packets: 10, flows: 1, tcpStreams: 1, alerts: 0, anomalies: 0, error: null})
    expect(out.events).toEqual([])
  })

  it('exits 1 when an exploit raises an alert', async () => {
    const file = writeCapture('shellshock.pcap', tcpConversation({
      client: '192.0.2.1', server: '192.0.2.2', clientPort: 50001, serverPort: 80,
      toServer: new TextEncoder().encode('GET /cgi-bin/status HTTP/1.1\r\nHost: x\r\nReferer: () { ignored; }; /bin/id\r\n\r\n'),
    }))
    const r = await runCli(['replay', file, '--json'])
    expect(r.code).toBe(1)
    const out = JSON.parse(r.stdout)
    const alerts = out.events.filter((e: {event_type: string}) => e.event_type === 'alert')
    expect(alerts).toHaveLength(1)
    expect(alerts[0]).toMatchObject({src_ip: '192.0.2.1', dest_ip: '192.0.2.2', dest_port: 80, proto: 'TCP', app_proto: 'http'})
    expect(alerts[0].patchpoint.cves).toContain('CVE-2014-6271')
  })

  it('--events - --json: every stdout line is JSON, the events then the summary (JSON lines for jq)', async () => {
    const file = writeCapture('shellshock-lines.pcap', tcpConversation({
      client: '192.0.2.1', server: '192.0.2.2', clientPort: 50002, serverPort: 80,
      toServer: new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: () { :; }; /bin/id\r\n\r\n'),
    }))
    const r = await runCli(['replay', file, '--events', '-', '--json'])
    expect(r.code).toBe(1)
    const lines = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as {event_type?: string; totals?: {alerts: number}; eventsWrittenTo?: string})
    expect(lines.length).toBeGreaterThanOrEqual(2)
    expect(lines[0].event_type).toBe('alert')
    const summary = lines[lines.length - 1]
    expect(summary.totals?.alerts).toBe(1)
    expect(summary.eventsWrittenTo).toBe('standard output')
  })

  it('names a bad file in one line, still replays the others, and exits 2', async () => {
    const bad = path.join(tmp, 'notes.txt')
    fs.writeFileSync(bad, 'these are not packets\n')
    const truncated = path.join(tmp, 'cut.pcap')
    const whole = fs.readFileSync(clean())
    fs.writeFileSync(truncated, whole.subarray(0, whole.length - 5))
    const good = clean()
    const r = await runCli(['replay', bad, truncated, good])
    expect(r.code).toBe(2)
    const lines = r.stderr.split('\n').filter(Boolean)
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatch(/^patchpoint: .*notes\.txt: .*magic/)
    expect(lines[1]).toMatch(/^patchpoint: .*cut\.pcap: truncated/)
    expect(r.stdout).toMatch(/clean\.pcap\s+10\s+1\s+1\s+0\s+0\s+ok/)
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/)
  })

  it('writes into the project event log when run inside a project', async () => {
    const proj = path.join(tmp, 'proj')
    expect((await runCli(['init', proj])).code).toBe(0)
    const file = writeCapture('frag.pcap', [])
    const r = await runCli(['replay', file, path.join(tmp, 'clean.pcap')], {cwd: proj})
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/events written to .*\.patchpoint\/events\/eve\.json/)
  })
})
