import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {runAnalyzer, summarize, type ScriptStep} from '../harness.js'
import {fuzzRuns, loadHexFixture, splitInvariance} from '../line/testing.js'
import type {FieldValue, Pdu} from '../types.js'
import {binarySpanMismatches} from './testing.js'
import {readsMismatches} from '../testing.js'
import {DCERPC_FIELDS, DcerpcAnalyzer, dcerpcAnalyzer, detectDcerpc, makeDcerpcAnalyzer, scanNdrStrings} from './index.js'
import {SPARE_BUFFER_MAX} from './conn.js'
import {RuleSet, loadRules} from '../../rules/engine.js'
import {packageRulesDir} from '../../rules/rule-schema.js'

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

describe('dcerpc: fields no rule reads are left out', () => {
  const pack = new RuleSet(loadRules(packageRulesDir).rules)
  const packReads = (f: string, dir?: 'toserver' | 'toclient') => pack.reads(f, dir)
  const names = DCERPC_FIELDS.map((f) => f.name)
  const fragmented = [
    S(bind(SRVSVC).toString('hex')),
    S(Buffer.concat([request(1, 7, 31, Buffer.concat([ndrString('SRV'), Buffer.alloc(90, 0x41)])), request(0, 7, 31, Buffer.alloc(100, 0x42)), request(2, 7, 31, ndrString('\\a\\..\\x'))]).toString('hex')),
    S(request(3, 8, 31, ndrString('\\..\\y')).toString('hex')),
  ]

  it('with the pack: the fields its rules read, per direction; responses and bind_acks carry only theirs', () => {
    const script = fx('zerologon-netlogon')
    expect(readsMismatches(dcerpcAnalyzer, script, packReads)).toEqual([])
    const r = runAnalyzer(dcerpcAnalyzer, script, {reads: packReads})
    // NetrServerAuthenticate3: what the Zerologon rule reads, not the stub itself (no rule reads it)
    const auth = r.pdus.find((p) => p.kind === 'request' && (p.fields.get('dcerpc.opnum') as FieldValue | undefined)?.v === 26)!
    expect([...auth.fields.keys()].sort()).toEqual(['dcerpc.interface.name', 'dcerpc.opnum', 'dcerpc.stub.max_string_length', 'dcerpc.stub.strings', 'netlogon.client_credential.leading_zeros'])
    expect(r.pdus.filter((p) => p.kind === 'response').every((p) => p.fields.size === 0)).toBe(true)
    for (const p of r.pdus.filter((x) => x.kind === 'bind_ack')) expect([...p.fields.keys()]).toEqual(['dcerpc.bind_ack.malformed'])
  })

  it('fixtures and fragments: same PDUs with any set of fields read, in each direction', () => {
    const scripts = [fx('zerologon-epm'), fx('zerologon-netlogon'), fx('domain-join'), fragmented]
    const limited = makeDcerpcAnalyzer({maxStubBytes: 150})
    fc.assert(
      fc.property(fc.subarray(names), fc.subarray(names), fc.integer({min: 0, max: 3}), fc.integer({min: 0, max: 300}), (up, down, k, chunk) => {
        const ups = new Set<string>(up)
        const downs = new Set<string>(down)
        const reads = (f: string, dir?: 'toserver' | 'toclient') => (dir !== 'toclient' && ups.has(f)) || (dir !== 'toserver' && downs.has(f))
        const opts = {chunkSize: chunk}
        expect(readsMismatches(dcerpcAnalyzer, scripts[k]!, reads, opts)).toEqual([])
        expect(readsMismatches(limited, fragmented, reads, opts)).toEqual([])
      }),
      {numRuns: fuzzRuns(200)},
    )
    // nothing read: every PDU still emitted, none with a field
    const none = runAnalyzer(dcerpcAnalyzer, fx('domain-join'), {reads: () => false}).pdus
    expect(none.length).toBe(runAnalyzer(dcerpcAnalyzer, fx('domain-join')).pdus.length)
    expect(none.every((p) => p.fields.size === 0)).toBe(true)
  })

  it('each field read alone, in either direction: same PDUs (responses and faults carry it as without reads)', () => {
    const C = (b: Buffer): ScriptStep => ({dir: 'toclient', data: Uint8Array.from(b)})
    // a response with an NTLM sec_trailer and a 16-byte verifier, then a fault, to a srvsvc call
    const head = (allocHint: number) => {
      const b = Buffer.alloc(8)
      b.writeUInt32LE(allocHint, 0)
      return b
    }
    const trailer = Buffer.from('0a02000000000000', 'hex')
    const fault = Buffer.alloc(8)
    fault.writeUInt32LE(0x1c010002, 0)
    const replies = [
      S(bind(SRVSVC).toString('hex')),
      S(Buffer.concat([request(3, 5, 31, ndrString('a')), request(3, 6, 16, Buffer.alloc(4))]).toString('hex')),
      C(pdu(2, 3, 5, Buffer.concat([head(8), Buffer.alloc(8, 1), trailer, Buffer.alloc(16, 2)]), 16)),
      C(pdu(3, 3, 6, Buffer.concat([head(0), fault]))),
    ]
    const scripts = [fx('zerologon-epm'), fx('zerologon-netlogon'), fx('domain-join'), fragmented, replies]
    const all = runAnalyzer(dcerpcAnalyzer, replies).pdus
    expect(all.map((p) => p.kind)).toEqual(['bind', 'request', 'request', 'response', 'fault'])
    expect(all[3]!.fields.has('dcerpc.auth.type') && all[4]!.fields.has('dcerpc.fault.status')).toBe(true)
    for (const name of names) {
      for (const dir of ['toserver', 'toclient'] as const) {
        const reads = (f: string, d?: 'toserver' | 'toclient') => f === name && (d === undefined || d === dir)
        for (const script of scripts) expect([name, dir, readsMismatches(dcerpcAnalyzer, script, reads)]).toEqual([name, dir, []])
      }
    }
  })

  it('fragment limit with only counts read: stub.length and stub.truncated as when the stub is kept', () => {
    const f = makeDcerpcAnalyzer({maxStubBytes: 150})
    const parts = [request(1, 7, 9, Buffer.alloc(100)), request(0, 7, 9, Buffer.alloc(100)), request(2, 7, 9, Buffer.alloc(1))]
    const reads = (n: string) => n === 'dcerpc.stub.length' || n === 'dcerpc.stub.truncated' || n === 'dcerpc.frag_count'
    const r = runAnalyzer(f, [S(Buffer.concat(parts).toString('hex'))], {reads})
    expect(r.pdus.map((p) => Object.fromEntries([...p.fields].map(([k, v]) => [k, (v as FieldValue).v])))).toEqual([
      {'dcerpc.stub.length': 200, 'dcerpc.frag_count': 2, 'dcerpc.stub.truncated': 1},
    ])
    const whole = runAnalyzer(f, [S(Buffer.concat([request(1, 7, 9, Buffer.alloc(100)), request(2, 7, 9, Buffer.alloc(40))]).toString('hex'))], {reads})
    expect(whole.pdus.map((p) => [...p.fields.keys()])).toEqual([['dcerpc.stub.length', 'dcerpc.frag_count']])
  })

  it('every split with the pack reads gives the same PDUs', () => {
    expect(splitInvariance(dcerpcAnalyzer, fx('domain-join'), 3, {reads: packReads})).toEqual([])
  })

  it('fragments that span chunks, of growing, shrinking and oversize lengths, reuse one buffer safely', () => {
    const sizes = [3000, 100, 6000, SPARE_BUFFER_MAX + 500, 40, 2000]
    const stream = Buffer.concat(sizes.map((n, i) => request(3, i + 1, 1, Buffer.alloc(n, 0x41 + i))))
    const whole = summarize(runAnalyzer(dcerpcAnalyzer, [S(stream.toString('hex'))]).pdus)
    expect(whole).toHaveLength(sizes.length)
    for (const chunk of [1000, 1460, 7]) {
      expect(summarize(runAnalyzer(dcerpcAnalyzer, [S(stream.toString('hex'))], {chunkSize: chunk}).pdus)).toEqual(whole)
    }
  })
})
