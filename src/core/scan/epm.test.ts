import {existsSync} from 'node:fs'
import net from 'node:net'
import {fileURLToPath} from 'node:url'
import {describe, it, expect, beforeAll, afterAll} from 'vitest'
import {openCapture} from '../capture/reader.js'
import {PacketDecoder} from '../packet/decode.js'
import {buildEptLookup, eptLookupAll, parseEptLookupStub} from './epm.js'

const CORPUS = fileURLToPath(new URL('../../../../shared/corpus/pcaps/', import.meta.url))
const PCAP = `${CORPUS}cve-2020-1472_zerologon_netlogon_win2019.pcap`
const have = existsSync(PCAP)

/** server payloads of the first connection to port 135 in the capture: bind_ack, ept_map response */
function recordedEpm(): {bindAck: Buffer; mapResponse: Buffer} {
  const r = openCapture(PCAP)
  const dec = new PacketDecoder()
  const out: Buffer[] = []
  try {
    for (let rec = r.next(); rec && out.length < 2; rec = r.next()) {
      const p = dec.decode(rec.data, rec.linktype)
      if (p.l4 !== 'tcp' || p.srcPort !== 135 || p.payloadLength === 0) continue
      out.push(Buffer.from(rec.data.subarray(p.payloadOffset, p.payloadOffset + p.payloadLength)))
    }
  } finally {
    r.close()
  }
  return {bindAck: out[0], mapResponse: out[1]}
}

/** ept_lookup response PDU (ptype 2) around entries built from tower octet strings */
function lookupResponse(callId: number, handle: Buffer, towers: {tower: Buffer; annotation: string}[], status: number): Buffer {
  const parts: Buffer[] = []
  const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); return b }
  const pad = (len: number) => Buffer.alloc((4 - (len % 4)) % 4)
  parts.push(handle, u32(towers.length), u32(towers.length), u32(0), u32(towers.length))
  towers.forEach((t, i) => {
    const ann = Buffer.from(`${t.annotation}\0`, 'latin1')
    parts.push(Buffer.alloc(16), u32(0x100 + i), u32(0), u32(ann.length), ann, pad(ann.length))
  })
  for (const t of towers) parts.push(u32(t.tower.length), u32(t.tower.length), t.tower, pad(t.tower.length))
  parts.push(u32(status))
  const stub = Buffer.concat(parts)
  const h = Buffer.alloc(24)
  h.set([5, 0, 2, 3, 0x10, 0, 0, 0])
  h.writeUInt16LE(24 + stub.length, 8)
  h.writeUInt32LE(callId, 12)
  h.writeUInt32LE(stub.length, 16)
  return Buffer.concat([h, stub])
}

describe.skipIf(!have)('endpoint mapper ept_lookup against a synthetic EPM (recorded bytes)', () => {
  let server: net.Server
  let port = 0
  const requests: Buffer[] = []
  let netlogonTower: Buffer

  beforeAll(async () => {
    const {bindAck, mapResponse} = recordedEpm()
    expect(bindAck[2]).toBe(12) // bind_ack
    expect(mapResponse[2]).toBe(2) // response
    // the recorded ept_map reply's stub: handle(20) num(4) max(4) off(4) actual(4) ptr(4), then twr_t
    const stub = mapResponse.subarray(24)
    const len = stub.readUInt32LE(44)
    netlogonTower = Buffer.from(stub.subarray(48, 48 + len))
    // a copy of the tower on another port (same floors, port floor rewritten), and a tower
    // without TCP/UDP+IP floors (ncalrpc-like: only the interface floor) that must be skipped
    const second = Buffer.from(netlogonTower)
    const pi = second.indexOf(Buffer.from([1, 0, 7, 2, 0]))
    second.writeUInt16BE(49667, pi + 5)
    second.writeUInt8(0x79, 5) // interface uuid (little-endian, after count(2) lhs_len(2) 0x0d): 12345678 -> 12345679
    const local = Buffer.from(netlogonTower.subarray(0, 27))
    const pages = [
      (id: number) => lookupResponse(id, Buffer.from('00000000' + 'aa'.repeat(16), 'hex'), [{tower: netlogonTower, annotation: 'Netlogon'}], 0),
      (id: number) => lookupResponse(id, Buffer.from('00000000' + 'bb'.repeat(16), 'hex'), [{tower: second, annotation: 'Custom svc'}, {tower: local, annotation: ''}], 0),
      (id: number) => lookupResponse(id, Buffer.alloc(20), [], 0x16c9a0d6),
    ]
    server = net.createServer((s) => {
      let page = 0
      s.on('data', (d) => {
        requests.push(Buffer.from(d))
        const callId = d.readUInt32LE(12)
        if (d[2] === 11) s.write(bindAck)
        else if (d[2] === 0) s.write(pages[Math.min(page++, pages.length - 1)](callId))
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    port = (server.address() as net.AddressInfo).port
  })
  afterAll(() => { server?.close() })

  it('pages through ept_lookup and lists every dynamic TCP port with its interface', async () => {
    const r = await eptLookupAll('127.0.0.1', {port})
    expect(r.stop).toBe('done')
    expect(r.calls).toBe(3)
    expect(r.entries).toEqual([
      {uuid: '12345678-1234-abcd-ef00-01234567cffb', name: 'netlogon', annotation: 'Netlogon', version: '1.0', proto: 'tcp', port: 49668, ip: '172.16.5.58'},
      {uuid: '12345679-1234-abcd-ef00-01234567cffb', name: 'Custom svc', annotation: 'Custom svc', version: '1.0', proto: 'tcp', port: 49667, ip: '172.16.5.58'},
    ])
    // requests: bind, then ept_lookup (opnum 2) carrying the previous reply's entry handle
    expect(requests[0][2]).toBe(11)
    expect(requests[1].readUInt16LE(22)).toBe(2)
    expect(requests[1].subarray(40, 60).every((x) => x === 0)).toBe(true)
    expect(requests[2].subarray(40, 60).toString('hex')).toBe('00000000' + 'aa'.repeat(16))
    expect(requests[3].subarray(40, 60).toString('hex')).toBe('00000000' + 'bb'.repeat(16))
  })

  it('a closed port or a silent server ends with a reason, never a throw', async () => {
    const closed = await eptLookupAll('127.0.0.1', {port: 1, limits: {connectTimeoutMs: 500}})
    expect(closed).toEqual({entries: [], calls: 0, stop: 'connect-failed'})
    const silent = net.createServer(() => {})
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
    const r = await eptLookupAll('127.0.0.1', {port: (silent.address() as net.AddressInfo).port, limits: {readTimeoutMs: 100}})
    silent.close()
    expect(r.stop).toBe('timeout')
  })
})

describe('parseEptLookupStub (malformed input is data)', () => {
  it('flags truncated and lying stubs without throwing, and keeps entries bounded', () => {
    expect(parseEptLookupStub(new Uint8Array(3)).malformed).toBe(true)
    const lie = new Uint8Array(64)
    new DataView(lie.buffer).setUint32(20, 5000, true)
    new DataView(lie.buffer).setUint32(32, 5000, true)
    expect(parseEptLookupStub(lie).malformed).toBe(true)
    for (let seed = 0; seed < 300; seed++) {
      const b = new Uint8Array(40 + (seed % 200))
      for (let i = 0; i < b.length; i++) b[i] = (seed * 31 + i * 17) & 0xff
      const r = parseEptLookupStub(b, 4)
      expect(r.entries.length).toBeLessThanOrEqual(4)
    }
  })

  it('builds an ept_lookup request of the documented layout', () => {
    const req = buildEptLookup(7, new Uint8Array(20).fill(9), 100)
    expect(req.length).toBe(64)
    expect(req[2]).toBe(0)
    expect(Buffer.from(req).readUInt16LE(8)).toBe(64)
    expect(Buffer.from(req).readUInt16LE(22)).toBe(2)
    expect(Buffer.from(req).readUInt32LE(36)).toBe(1) // vers_option: all
    expect(Buffer.from(req).readUInt32LE(60)).toBe(100)
  })
})

describe.skipIf(!have)('fingerprint adds the endpoint mapper\'s dynamic ports', () => {
  it('each dynamic TCP port becomes a service carrying its interface', async () => {
    const {bindAck, mapResponse} = recordedEpm()
    const stub = mapResponse.subarray(24)
    const tower = Buffer.from(stub.subarray(48, 48 + stub.readUInt32LE(44)))
    const server = net.createServer((s) => {
      s.on('data', (d) => {
        if (d[0] !== 5) return
        if (d[2] === 11) s.write(bindAck)
        else if (d[2] === 0) s.write(lookupResponse(d.readUInt32LE(12), Buffer.alloc(20), [{tower, annotation: 'Netlogon'}], 0))
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as net.AddressInfo).port
    try {
      const {fingerprint} = await import('./fingerprint.js')
      const {loadProbes} = await import('./probes.js')
      const r = await fingerprint({hosts: ['127.0.0.1'], ports: [port], method: 'connect', epm: {port}, probes: loadProbes(fileURLToPath(new URL('../../../rules/probes/', import.meta.url))), intensity: 2, waitScale: 0.2})
      const dyn = r.hosts[0].services.find((s) => s.port === 49668)
      expect(dyn).toMatchObject({proto: 'tcp', service: 'msrpc', dcerpc_interface: {uuid: '12345678-1234-abcd-ef00-01234567cffb', version: '1.0', annotation: 'Netlogon'}})
      expect(dyn?.extra).toContain('netlogon')
    } finally {
      server.close()
    }
  }, 30_000)
})
