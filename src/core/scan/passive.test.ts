import {existsSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import path from 'node:path'
import {describe, it, expect} from 'vitest'
import {learnFromPcap, PassiveLearner} from './passive.js'
import {loadProbes} from './probes.js'
import {buildTcpPacket} from '../packet/encode.js'
import {buildPmapDump} from './sunrpc.js'
import {SYN, ACK, PSH} from '../packet/decode.js'

const PCAPS = fileURLToPath(new URL('../../../../shared/corpus/pcaps/', import.meta.url))
const probes = loadProbes()

describe.skipIf(!existsSync(PCAPS))('passive learning from corpus captures', () => {
  const learn = (f: string) => learnFromPcap(path.join(PCAPS, f), probes)

  it('ProFTPD 1.3.0a from a DLT_NULL capture', () => {
    const r = learn('benign_ftp_anonymous_dlt_null.pcap')
    const ftp = r.services.find((s) => s.port === 21)!
    expect(ftp.match).toMatchObject({service: 'ftp', product: 'proftpd/proftpd', version: '1.3.0a'})
    expect(ftp.seen).toContain('syn-ack')
  })

  it('Exim 4.69 from an SMTP session, Exchange 5.5 IMAP, MySQL 5.0 greeting', () => {
    expect(learn('benign_smtp_session.pcap').services.find((s) => s.port === 25)?.match).toMatchObject({product: 'exim/exim', version: '4.69'})
    expect(learn('benign_imap_session.pcap').services.find((s) => s.port === 143)?.match).toMatchObject({product: 'microsoft/exchange_server', version: '5.5.2650.23'})
    const my = learn('benign_mysql_session.pcap').services.find((s) => s.port === 3306)
    expect(my?.match).toMatchObject({service: 'mysql', product: 'mysql/mysql'})
    expect(my?.match?.version).toMatch(/^5\./)
  })

  it('an HTTP server answer to a client request (Server header)', () => {
    const r = learn('benign_http_get.pcap')
    const web = r.services.find((s) => s.port === 80)!
    expect(web.match?.service).toBe('http')
    expect(r.hosts.find((h) => h.ip === web.ip)?.os_hints.length).toBeGreaterThan(0)
  })

  it('services on non-default ports are learned (log4shell capture: HTTP on 8080, LDAP 1389)', () => {
    const r = learn('cve-2021-44228_log4shell_http_uri_ldap_ev0.pcap')
    const ports = r.services.map((s) => s.port)
    expect(ports).toContain(8080)
    expect(r.services.find((s) => s.port === 8080)?.match?.service).toBe('http')
  })
})

describe('passive RPC and bounds', () => {
  it('a portmapper DUMP reply on the wire adds the dynamic ports with their programs', () => {
    const l = new PassiveLearner(probes)
    const c = '10.0.0.1'
    const s = '10.0.0.2'
    let ts = 1_000_000
    const f = (src: string, dst: string, sp: number, dp: number, flags: number, seq: number, ack: number, payload?: Uint8Array) =>
      l.frame(buildTcpPacket({src, dst, srcPort: sp, dstPort: dp, flags, seq, ack, payload}), 1, ts += 1000)
    f(c, s, 700, 111, SYN, 100, 0)
    f(s, c, 111, 700, SYN | ACK, 500, 101)
    f(c, s, 700, 111, ACK, 101, 501)
    const call = buildPmapDump(7)
    f(c, s, 700, 111, ACK | PSH, 101, 501, call)
    // reply: record mark, xid 7, reply, accepted, verf null, success, 2 entries, end
    const words = [7, 1, 0, 0, 0, 0, 1, 100024, 1, 6, 41234, 1, 100024, 1, 17, 51234, 0]
    const body = Buffer.alloc(words.length * 4)
    words.forEach((w, i) => body.writeUInt32BE(w, i * 4))
    const rec = Buffer.concat([Buffer.from([0x80, 0, 0, body.length]), body])
    f(s, c, 111, 700, ACK | PSH, 501, 101 + call.length, rec)
    f(c, s, 700, 111, ACK, 101 + call.length, 501 + rec.length)
    l.finish()
    const r = l.results()
    const statd = r.services.find((x) => x.port === 41234 && x.proto === 'tcp')
    expect(statd?.rpc).toMatchObject({program: 100024, name: 'status'})
    expect(r.services.find((x) => x.port === 51234 && x.proto === 'udp')?.rpc?.program).toBe(100024)
  })

  it('fuzz-like: many servers stay within the service limit', () => {
    const l = new PassiveLearner(probes, undefined, {maxServices: 10, streamBytes: 64, streamsPerService: 2, maxOpenStreams: 4})
    for (let i = 0; i < 200; i++) l.frame(buildTcpPacket({src: `10.1.${i >> 8}.${i & 255}`, dst: '10.0.0.1', srcPort: 1000 + i, dstPort: 5555, flags: SYN | ACK, seq: 1, ack: 1}), 1, 1_000_000 + i)
    expect(l.services.size).toBeLessThanOrEqual(10)
  })
})

describe.skipIf(!existsSync(PCAPS))('live passive learning through a capture link (fake, no root)', () => {
  it('learns the same as from the file although every frame arrives in ONE reused buffer', async () => {
    const {learnLive} = await import('./passive.js')
    const {openCapture} = await import('../capture/reader.js')
    const file = path.join(PCAPS, 'benign_smtp_session.pcap')
    const shared = new Uint8Array(65_535)
    let handler: ((f: Uint8Array) => void) | null = null
    let closed = false
    const r = await learnLive('eth-test', 5_000, probes, {
      openLink: (iface, filter) => {
        expect(iface).toBe('eth-test')
        expect(filter).toBe('tcp or udp')
        return {send: () => {}, onFrame: (h) => { handler = h }, close: () => { closed = true }}
      },
      onReady: () => {
        // replay the capture as cap does: each frame written over the same buffer
        const rd = openCapture(file)
        setImmediate(() => {
          for (let rec = rd.next(); rec; rec = rd.next()) {
            shared.fill(0xee)
            shared.set(rec.data)
            handler?.(shared.subarray(0, rec.data.length))
          }
          rd.close()
        })
      },
      signal: AbortSignal.timeout(300),
    })
    expect(closed).toBe(true)
    const fromFile = learnFromPcap(file, probes)
    expect(r.frames).toBe(fromFile.frames)
    expect(r.services.find((s) => s.port === 25)?.match).toMatchObject({product: 'exim/exim', version: '4.69'})
    expect(r.services.map((s) => `${s.ip}:${s.port}`).sort()).toEqual(fromFile.services.map((s) => `${s.ip}:${s.port}`).sort())
  })
})
