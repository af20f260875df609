import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {runAnalyzer, type ScriptStep} from '../harness.js'
import {fuzzRuns, loadHexFixture, splitInvariance} from '../line/testing.js'
import type {FieldValue, Pdu} from '../types.js'
import {binarySpanMismatches} from './testing.js'
import {DcerpcAnalyzer, dcerpcAnalyzer, detectDcerpc, makeDcerpcAnalyzer, scanNdrStrings} from './index.js'

const fx = (name: string) => loadHexFixture(new URL(`./fixtures/${name}.hex`, import.meta.url))
const one = (p: Pdu, name: string): FieldValue => {
  const v = p.fields.get(name)
  if (v === undefined || Array.isArray(v)) throw new Error(`${name}: ${JSON.stringify(v)}`)
  return v
}
const S = (hex: string): ScriptStep => ({dir: 'toserver', data: Uint8Array.from(Buffer.from(hex, 'hex'))})

/** a little-endian CO PDU */
function pdu(ptype: number, flags: number, callId: number, body: Buffer, authLength = 0): Buffer {
  const h = Buffer.alloc(16)
  h.writeUInt8(5, 0)
  h.writeUInt8(ptype, 2)
  h.writeUInt8(flags, 3)
  h.writeUInt32BE(0x10000000, 4)
  h.writeUInt16LE(16 + body.length, 8)
  h.writeUInt16LE(authLength, 10)
  h.writeUInt32LE(callId, 12)
  return Buffer.concat([h, body])
}
function bind(uuidLe: string, ctxId = 0): Buffer {
  const b = Buffer.alloc(12 + 44)
  b.writeUInt16LE(4280, 0)
  b.writeUInt16LE(4280, 2)
  b.writeUInt8(1, 8)
  b.writeUInt16LE(ctxId, 12)
  b.writeUInt8(1, 14)
  Buffer.from(uuidLe, 'hex').copy(b, 16)
  b.writeUInt16LE(3, 32)
  Buffer.from('045d888aeb1cc9119fe808002b10486002000000', 'hex').copy(b, 36)
  return pdu(11, 3, 1, b)
}
function request(flags: number, callId: number, opnum: number, stub: Buffer): Buffer {
  const b = Buffer.alloc(8)
  b.writeUInt32LE(stub.length, 0)
  b.writeUInt16LE(opnum, 6)
  return pdu(0, flags, callId, Buffer.concat([b, stub]))
}
function ndrString(s: string): Buffer {
  const t = Buffer.from(s + '\0', 'utf16le')
  const h = Buffer.alloc(12)
  h.writeUInt32LE(s.length + 1, 0)
  h.writeUInt32LE(s.length + 1, 8)
  const pad = (4 - (t.length % 4)) % 4
  return Buffer.concat([h, t, Buffer.alloc(pad)])
}
const SRVSVC = 'c84f324b7016d30112785a47bf6ee188'

describe('dcerpc: fixtures', () => {
  for (const name of ['zerologon-epm', 'zerologon-netlogon', 'domain-join']) {
    it(`${name}: every split and 1-byte chunks give the same PDUs`, () => {
      expect(splitInvariance(dcerpcAnalyzer, fx(name), name === 'domain-join' ? 3 : 1)).toEqual([])
    })
    it(`${name}: spans map onto the stream, no anomalies`, () => {
      const script = fx(name)
      const r = runAnalyzer(dcerpcAnalyzer, script)
      expect(r.pdus.length).toBeGreaterThanOrEqual(4)
      expect(r.anomalies).toEqual([])
      expect(binarySpanMismatches(r.pdus, script)).toEqual([])
    })
  }

  it('zerologon: NetrServerAuthenticate3 with an all-zero credential on netlogon', () => {
    const r = runAnalyzer(dcerpcAnalyzer, fx('zerologon-netlogon'))
    const auth = r.pdus.find((p) => p.kind === 'request' && one(p, 'dcerpc.opnum').v === 26)!
    expect(one(auth, 'dcerpc.interface.name').v).toBe('netlogon')
    expect(one(auth, 'netlogon.client_credential').v).toBe('0000000000000000')
    expect(one(auth, 'netlogon.client_credential_zero').v).toBe(1)
    expect(one(auth, 'dcerpc.opnum')).toEqual({v: 26, off: 176 + 22, len: 2})
    expect(auth.fields.get('dcerpc.stub.strings')).toEqual([{v: '\\\\BAS-AD-01'}, {v: 'BAS-AD-01$'}, {v: 'BAS-AD-01'}])
    const resp = r.pdus.find((p) => p.kind === 'response' && one(p, 'dcerpc.call_id').v === 2)!
    expect(one(resp, 'dcerpc.opnum').v).toBe(26)
  })

  it('epm map response announces the netlogon port as a dynamic service', () => {
    const r = runAnalyzer(dcerpcAnalyzer, fx('zerologon-epm'))
    expect(r.dynamic).toEqual([{ip: '172.16.5.58', port: 49668, proto: 'tcp', protocol: 'dcerpc', program: '12345678-1234-abcd-ef00-01234567cffb'}])
    const bindAck = r.pdus.find((p) => p.kind === 'bind_ack')!
    expect(one(bindAck, 'dcerpc.bind_ack.secondary_address').v).toBe('135\0')
  })

  it('detect: fixture first bytes yes, HTTP no', () => {
    expect(detectDcerpc('toserver', fx('zerologon-epm')[0]!.data.subarray(0, 64))).toBe(true)
    expect(detectDcerpc('toserver', fx('domain-join')[0]!.data.subarray(0, 16))).toBe(true)
    expect(detectDcerpc('toserver', Buffer.from('GET / HTTP/1.1\r\n'))).toBe(false)
  })
})

describe('dcerpc: requests, fragments, anomalies', () => {
  it('MS08-067: srvsvc opnum 31 path with \\..\\ appears in stub strings', () => {
    const stub = Buffer.concat([Buffer.from('01000000', 'hex'), ndrString('SRV'), ndrString('\\a\\..\\..\\x')])
    const script = [S(bind(SRVSVC).toString('hex')), S(request(3, 2, 31, stub).toString('hex'))]
    const r = runAnalyzer(dcerpcAnalyzer, script)
    const req = r.pdus.find((p) => p.kind === 'request')!
    expect(one(req, 'dcerpc.interface.name').v).toBe('srvsvc')
    expect(one(req, 'dcerpc.opnum').v).toBe(31)
    expect((req.fields.get('dcerpc.stub.strings') as FieldValue[]).map((v) => v.v)).toContain('\\a\\..\\..\\x')
    expect(binarySpanMismatches(r.pdus, script)).toEqual([])
  })

  it('fragmented request is reassembled into one PDU; stub has no span', () => {
    const a = request(1, 7, 9, Buffer.alloc(100, 0x41))
    const b = request(0, 7, 9, Buffer.alloc(100, 0x42))
    const c = request(2, 7, 9, Buffer.alloc(10, 0x43))
    const r = runAnalyzer(dcerpcAnalyzer, [S(Buffer.concat([a, b, c]).toString('hex'))])
    expect(r.pdus).toHaveLength(1)
    const p = r.pdus[0]!
    expect(one(p, 'dcerpc.frag_count').v).toBe(3)
    expect(one(p, 'dcerpc.stub.length').v).toBe(210)
    expect(one(p, 'dcerpc.stub').off).toBeUndefined()
    expect([p.start, p.end]).toEqual([0, a.length + b.length + c.length])
  })

  it('fragment limit: anomaly, PDU emitted with the length seen so far, state bounded', () => {
    const f = makeDcerpcAnalyzer({maxStubBytes: 150})
    const parts = [request(1, 7, 9, Buffer.alloc(100)), request(0, 7, 9, Buffer.alloc(100)), request(0, 7, 9, Buffer.alloc(100)), request(2, 7, 9, Buffer.alloc(1))]
    const r = runAnalyzer(f, [S(Buffer.concat(parts).toString('hex'))])
    expect(r.anomalies.map((a) => a.event)).toContain('dcerpc.fragment_limit')
    expect(r.pdus).toHaveLength(1)
    expect(one(r.pdus[0]!, 'dcerpc.stub.length').v).toBe(200)
    expect(one(r.pdus[0]!, 'dcerpc.stub.truncated').v).toBe(1)
  })

  it('malformed: bad version, frag_length < 16, auth_length too long, bind_ack sizes, middle fragment without first', () => {
    expect(runAnalyzer(dcerpcAnalyzer, [S('0400000310000000')]).anomalies[0]!.event).toBe('dcerpc.bad_version')
    expect(runAnalyzer(dcerpcAnalyzer, [S('0500000310000000080000000100000000')]).anomalies[0]!.event).toBe('dcerpc.frag_too_short')
    const big = pdu(0, 3, 1, Buffer.alloc(16), 500)
    expect(runAnalyzer(dcerpcAnalyzer, [S(big.toString('hex'))]).anomalies.map((a) => a.event)).toContain('dcerpc.auth_length_too_long')
    const ack = Buffer.alloc(10)
    ack.writeUInt16LE(4280, 0)
    ack.writeUInt16LE(4280, 2)
    ack.writeUInt16LE(0xffff, 8)
    const r = runAnalyzer(dcerpcAnalyzer, [{dir: 'toclient', data: pdu(12, 3, 1, ack)}])
    expect(r.anomalies.map((a) => a.event)).toEqual(['dcerpc.bind_ack_malformed'])
    expect(one(r.pdus[0]!, 'dcerpc.bind_ack.malformed').v).toBe(1)
    const mid = runAnalyzer(dcerpcAnalyzer, [S(request(0, 5, 1, Buffer.alloc(4)).toString('hex'))])
    expect(mid.anomalies.map((a) => a.event)).toEqual(['dcerpc.fragment_without_first', 'dcerpc.fragment_incomplete'])
  })

  it('pendingFrom: start of a partial PDU, -1 when none', () => {
    const a = new DcerpcAnalyzer({emit: () => {}, anomaly: () => {}})
    const req = request(3, 1, 1, Buffer.alloc(20))
    a.data('toserver', req.subarray(0, 10))
    expect(a.pendingFrom('toserver')).toBe(0)
    a.data('toserver', req.subarray(10))
    expect(a.pendingFrom('toserver')).toBe(-1)
  })

  it('scanNdrStrings reports the declared length of a huge string (MS04-011 / MS03-026 class)', () => {
    const h = Buffer.alloc(12)
    h.writeUInt32LE(100000, 0)
    h.writeUInt32LE(100000, 8)
    const r = scanNdrStrings(Buffer.concat([h, Buffer.from('AAAA', 'utf16le')]), true, 8, 16)
    expect(r.maxLength).toBe(100000)
    expect(r.strings).toEqual(['AAAA'])
  })

  it('fuzz: random and mutated input never throws and keeps state bounded', () => {
    const base = Buffer.concat(fx('zerologon-netlogon').filter((s) => s.dir === 'toserver').map((s) => Buffer.from(s.data)))
    const f = makeDcerpcAnalyzer({maxStubBytes: 4096, maxPendingCalls: 4})
    fc.assert(
      fc.property(fc.uint8Array({maxLength: 400}), fc.array(fc.tuple(fc.nat(), fc.integer({min: 0, max: 255})), {maxLength: 8}), fc.integer({min: 1, max: 64}), (rnd, muts, chunk) => {
        const m = Uint8Array.from(base)
        for (const [i, v] of muts) m[i % m.length] = v
        for (const data of [rnd, m]) {
          let a: DcerpcAnalyzer | undefined
          runAnalyzer({...f, create: (ctx) => (a = new DcerpcAnalyzer(ctx, {maxStubBytes: 4096, maxPendingCalls: 4}))}, [{dir: 'toserver', data}], {chunkSize: chunk, end: false})
          const held = a!.conn.heldState()
          expect(held.stubKept).toBeLessThanOrEqual(4096)
          expect(held.pendingCalls).toBeLessThanOrEqual(4)
          expect(held.bufToserver).toBeLessThanOrEqual(65535)
        }
      }),
      {numRuns: fuzzRuns(10000)},
    )
  })
})
