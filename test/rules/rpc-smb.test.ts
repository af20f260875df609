/**
 * The Microsoft RPC / SMB / SunRPC rule pack (rules/windows, rules/samba, rules/sunrpc): every
 * rule passes its own samples, and EXTRA variants that are not in the samples (other
 * separators, deeper nesting, fragmentation, other interfaces/opnums, UDP transport) make the
 * right rule fire through the real analyzers, while benign near misses make none fire.
 */
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {runAnalyzer, type ScriptStep} from '../../src/core/analyzers/harness.js'
import {dcerpcAnalyzer} from '../../src/core/analyzers/dcerpc/index.js'
import {SmbAnalyzer, smbAnalyzer, type SmbLimits} from '../../src/core/analyzers/smb/index.js'
import {splitInvariance} from '../../src/core/analyzers/line/testing.js'
import {binarySpanMismatches} from '../../src/core/analyzers/dcerpc/testing.js'
import {readsMismatches} from '../../src/core/analyzers/testing.js'
import {oncrpcAnalyzer, oncrpcUdpAnalyzer} from '../../src/core/analyzers/oncrpc/index.js'
import type {AnalyzerFactory, Pdu} from '../../src/core/analyzers/types.js'
import type {CompiledRule} from '../../src/core/rules/compile.js'
import {RuleSet, loadRules} from '../../src/core/rules/engine.js'
import {fieldsFor, testFactoryFor} from '../../src/core/rules/fields.js'
import {lintRules} from '../../src/core/rules/lint.js'
import {testRule} from '../../src/core/rules/sample-test.js'
import {anomalyPdu} from '../../src/core/protections/anomaly-fields.js'

const RULES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../rules')
const DIRS = ['windows', 'samba', 'sunrpc'].map((d) => path.join(RULES, d))
const FUZZ_RUNS = Number(process.env.PATCHPOINT_FUZZ_RUNS ?? 200)

const all = lintRules(DIRS)
const byId = new Map(all.rules.map((r) => [r.id, r]))
function rule(id: string): CompiledRule {
  const r = byId.get(id)
  if (!r) throw new Error(`rule ${id} not loaded`)
  return r
}

/** ids of the rules (of this pack, for `protocol`) that fire on the units of `script` */
function fired(factory: AnalyzerFactory, script: ScriptStep[], chunkSize?: number): string[] {
  const res = runAnalyzer(factory, script, {chunkSize})
  const set = new RuleSet(all.rules.filter((r) => r.protocol !== 'anomaly'))
  // SMB builds only the fields the rules read: the same PDUs with those fields (chains, compounds, secondaries)
  if (factory.protocol === 'smb') expect(readsMismatches(factory, script, (f, dir) => set.reads(f, dir), {chunkSize})).toEqual([])
  const anomalySet = new RuleSet(all.rules.filter((r) => r.protocol === 'anomaly'))
  const ids = new Set<string>()
  const units: Pdu[] = [...res.pdus]
  for (const a of res.anomalies) {
    units.push(anomalyPdu(a))
  }
  for (const p of units) for (const m of (p.protocol === 'anomaly' ? anomalySet : set).evaluate(p)) ids.add(m.rule.id)
  return [...ids].sort()
}

// ---- DCE/RPC builders (C706 12.6) ----
function pdu(ptype: number, flags: number, callId: number, body: Buffer): Buffer {
  const h = Buffer.alloc(16)
  h.writeUInt8(5, 0)
  h.writeUInt8(ptype, 2)
  h.writeUInt8(flags, 3)
  h.writeUInt32BE(0x10000000, 4)
  h.writeUInt16LE(16 + body.length, 8)
  h.writeUInt32LE(callId, 12)
  return Buffer.concat([h, body])
}
function uuidLe(u: string): Buffer {
  const p = u.split('-')
  const b = Buffer.alloc(16)
  b.writeUInt32LE(parseInt(p[0]!, 16), 0)
  b.writeUInt16LE(parseInt(p[1]!, 16), 4)
  b.writeUInt16LE(parseInt(p[2]!, 16), 6)
  Buffer.from(p[3]! + p[4]!, 'hex').copy(b, 8)
  return b
}
function bind(u: string, ver = 0): Buffer {
  const b = Buffer.alloc(56)
  b.writeUInt16LE(4280, 0)
  b.writeUInt16LE(4280, 2)
  b.writeUInt8(1, 8)
  b.writeUInt8(1, 14)
  uuidLe(u).copy(b, 16)
  b.writeUInt16LE(ver, 32)
  Buffer.from('045d888aeb1cc9119fe808002b10486002000000', 'hex').copy(b, 36)
  return pdu(11, 3, 1, b)
}
/** a request, in `frags` fragments */
function request(callId: number, opnum: number, stub: Buffer, frags = 1): Buffer {
  const out: Buffer[] = []
  const size = Math.ceil(stub.length / frags)
  for (let i = 0; i < frags; i++) {
    const part = stub.subarray(i * size, (i + 1) * size)
    const b = Buffer.alloc(8)
    b.writeUInt32LE(stub.length, 0)
    b.writeUInt16LE(opnum, 6)
    out.push(pdu(0, (i === 0 ? 1 : 0) | (i === frags - 1 ? 2 : 0), callId, Buffer.concat([b, part])))
  }
  return Buffer.concat(out)
}
function ndrString(s: string): Buffer {
  const t = Buffer.from(s + '\0', 'utf16le')
  const h = Buffer.alloc(12)
  h.writeUInt32LE(s.length + 1, 0)
  h.writeUInt32LE(s.length + 1, 8)
  return Buffer.concat([h, t, Buffer.alloc((4 - (t.length % 4)) % 4)])
}
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n >>> 0, 0)
  return b
}
const SRVSVC = '4b324fc8-1670-01d3-1278-5a47bf6ee188'
const NETLOGON = '12345678-1234-abcd-ef00-01234567cffb'
const ISA = '000001a0-0000-0000-c000-000000000046'
const IRA = '4d9f4ab8-7d1c-11cf-861e-0020af6e7c57'
const DSSETUP = '3919286a-b10c-11d0-9ba8-00c04fd92ef5'
const rpc = (u: string, ver: number, opnum: number, stub: Buffer, frags = 1): ScriptStep[] => [
  {dir: 'toserver', data: Buffer.concat([bind(u, ver), request(2, opnum, stub, frags)])},
]
const canon = (p: string): Buffer => Buffer.concat([u32(0x20000), ndrString('SRV'), ndrString(p), u32(1), ndrString('\\'), u32(1), u32(0)])
const auth3 = (cred: Buffer): Buffer =>
  Buffer.concat([u32(0x20000), ndrString('\\\\DC01'), ndrString('DC01$'), Buffer.from('06000000', 'hex'), ndrString('DC01'), cred, Buffer.from('ffff2f21', 'hex')])
const activation = (name: string): Buffer => Buffer.concat([Buffer.alloc(32), u32(0x20004), ndrString(name), u32(0), u32(0)])

/** reference: does a canonicalizer that drops '.' and empty segments see '..' above the start? */
function climbsAboveRoot(p: string): boolean {
  let depth = 0
  for (const seg of p.split(/[\\/]/)) {
    if (seg === '' || seg === '.') continue
    if (seg === '..') {
      if (depth === 0) return true
      depth--
    } else depth++
  }
  return false
}

describe('rpc/smb pack: lint and own samples', () => {
  it('loads every rule of the pack', () => {
    expect([...byId.keys()].sort()).toEqual([
      'PP-2003-0352', 'PP-2003-0533', 'PP-2008-4250', 'PP-2017-0143', 'PP-2017-7494', 'PP-2017-8779', 'PP-2020-0796',
      'PP-2020-1206', 'PP-2020-1472', 'PP-2020-1472-PASSWORDSET', 'PP-2022-26809', 'PP-DCERPC-MALFORMED-PDU', 'PP-SMB3-COMPRESSION-NEGOTIATE',
    ])
  })

  it('field check: only the smb2.* negotiate fields are rejected (lint wants protocol-prefixed names)', () => {
    const checked = lintRules(DIRS, {fieldsFor})
    const errs = checked.errors.filter((e) => e.severity !== 'warning').map((e) => `${path.basename(e.file ?? '')} ${e.message}`)
    expect(errs.every((e) => e.startsWith('PP-SMB3-COMPRESSION-NEGOTIATE.yaml') && /unknown field 'smb2\./.test(e))).toBe(true)
  })

  for (const id of byId.keys()) {
    it(`${id}: malicious samples match (and the fix neutralizes), benign ones do not`, () => {
      const r = rule(id)
      const res = testRule(r, testFactoryFor(r.protocol)!)
      expect(res.samples.filter((s) => !s.ok)).toEqual([])
      expect(res.samples.filter((s) => s.kind === 'malicious').length).toBeGreaterThanOrEqual(1)
      expect(res.samples.filter((s) => s.kind === 'benign').length).toBeGreaterThanOrEqual(2)
    })
  }
})

describe('MS08-067 path canonicalization', () => {
  const variants: [string, boolean][] = [
    ['\\a\\b\\c\\d\\e\\f\\g\\h\\i\\j\\..\\..\\..\\..\\..\\..\\..\\..\\..\\..\\..\\x', true], // deeper than the regex nesting
    ['a/..\\../x', true], // mixed separators, relative
    ['\\\\a\\\\..\\\\..\\\\x', true], // doubled separators
    ['\\.\\.\\..', true], // only dot segments then ..
    ['\\a\\b\\..\\c\\..\\..\\..\\x', true],
    ['\\a\\b\\..\\c\\..\\..\\x', false],
    ['\\..x\\a..\\...\\b', false],
    ['\\dir\\file.txt', false],
  ]
  for (const [p, bad] of variants) {
    it(`${JSON.stringify(p)} -> ${bad ? 'PP-2008-4250' : 'nothing'} (opnum 31 and 32, also in 3 fragments)`, () => {
      for (const op of [31, 32]) {
        for (const frags of [1, 3]) expect(fired(dcerpcAnalyzer, rpc(SRVSVC, 3, op, canon(p), frags))).toEqual(bad ? ['PP-2008-4250'] : [])
      }
    })
  }

  it('the same path in another srvsvc call (NetrShareGetInfo, opnum 16) is not judged', () => {
    expect(fired(dcerpcAnalyzer, rpc(SRVSVC, 3, 16, canon('\\a\\..\\..\\x')))).toEqual([])
  })

  it('property: the rule agrees with a reference canonicalizer up to 8 levels of nesting', () => {
    const seg = fc.constantFrom('a', 'bb', '..', '.', '', 'x.y', '...', '..z')
    const sep = fc.constantFrom('\\', '/')
    const pathArb = fc.tuple(fc.boolean(), fc.array(fc.tuple(seg, sep), {minLength: 1, maxLength: 12})).map(
      ([lead, parts]) => (lead ? '\\' : '') + parts.map(([s, p], i) => (i === 0 ? s : p + s)).join(''),
    )
    const r = new RuleSet([rule('PP-2008-4250')])
    fc.assert(
      fc.property(pathArb, (p) => {
        const nested = p.split(/[\\/]/).filter((s) => s !== '' && s !== '.' && s !== '..').length
        fc.pre(nested <= 8)
        const res = runAnalyzer(dcerpcAnalyzer, rpc(SRVSVC, 3, 31, canon(p)))
        const req = res.pdus.find((x) => x.kind === 'request')!
        expect(r.evaluate(req).length > 0).toBe(climbsAboveRoot(p))
      }),
      {numRuns: FUZZ_RUNS},
    )
  })
})

describe('DCOM activation, LSASS, Netlogon', () => {
  it('MS03-026: 64+ character UNC host on ISystemActivator opnum 3 and forward slashes fire; 63 does not', () => {
    expect(fired(dcerpcAnalyzer, rpc(ISA, 0, 3, activation('\\\\' + 'A'.repeat(64) + '\\x')))).toEqual(['PP-2003-0352'])
    expect(fired(dcerpcAnalyzer, rpc(IRA, 0, 0, activation('//' + 'B'.repeat(90))))).toEqual(['PP-2003-0352'])
    expect(fired(dcerpcAnalyzer, rpc(IRA, 0, 0, activation('\\\\' + 'C'.repeat(63) + '\\share\\f.doc')))).toEqual([])
    // a long UNC path (share and file, short host) past MAX_PATH: declared length > 260
    expect(fired(dcerpcAnalyzer, rpc(IRA, 0, 0, activation('\\\\h\\' + 'd\\'.repeat(150))))).toEqual(['PP-2003-0352'])
  })

  it('MS04-011: long string in opnum 9 fires also when fragmented; 260 characters do not', () => {
    const ds = (s: string): Buffer => Buffer.concat([u32(0x20000), ndrString(s), u32(0)])
    expect(fired(dcerpcAnalyzer, rpc(DSSETUP, 0, 9, ds('Z'.repeat(3000)), 4))).toEqual(['PP-2003-0533'])
    expect(fired(dcerpcAnalyzer, rpc(DSSETUP, 0, 9, ds('Z'.repeat(259))))).toEqual([])
  })

  it('Zerologon: zero credential fires in 2 fragments and in 1-byte chunks; one non-zero byte does not', () => {
    expect(fired(dcerpcAnalyzer, rpc(NETLOGON, 1, 26, auth3(Buffer.alloc(8)), 2))).toEqual(['PP-2020-1472'])
    expect(fired(dcerpcAnalyzer, rpc(NETLOGON, 1, 26, auth3(Buffer.alloc(8))), 1)).toEqual(['PP-2020-1472'])
    expect(fired(dcerpcAnalyzer, rpc(NETLOGON, 1, 26, auth3(Buffer.from('8000000000000000', 'hex'))))).toEqual([])
    // NetrServerAuthenticate2 (opnum 15) checks the credential the same way: judged too (rule rev 2)
    expect(fired(dcerpcAnalyzer, rpc(NETLOGON, 1, 15, auth3(Buffer.alloc(8))))).toEqual(['PP-2020-1472'])
    // another netlogon call with the same bytes (NetrLogonSamLogon, opnum 2) is not judged
    expect(fired(dcerpcAnalyzer, rpc(NETLOGON, 1, 2, auth3(Buffer.alloc(8))))).toEqual([])
  })
})

describe('SMB and SunRPC', () => {
  const nb = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, b.length >> 16, (b.length >> 8) & 255, b.length & 255]), b])
  const smb1 = (cmd: number, words: Buffer, mid: number): Buffer => {
    const h = Buffer.alloc(32)
    Buffer.from('ff534d42', 'hex').copy(h)
    h.writeUInt8(cmd, 4)
    h.writeUInt16LE(mid, 30)
    return nb(Buffer.concat([h, Buffer.from([words.length / 2]), words, Buffer.from([0, 0])]))
  }
  it('MS17-010: a TRANS2_SECONDARY whose displacement passes the primary total fires; split at every 7 bytes too', () => {
    const t2 = Buffer.alloc(30)
    t2.writeUInt16LE(0, 0)
    t2.writeUInt16LE(100, 2)
    t2.writeUInt8(1, 26)
    t2.writeUInt16LE(0x0e, 28)
    const sec = Buffer.alloc(18)
    sec.writeUInt16LE(100, 2)
    sec.writeUInt16LE(50, 10)
    sec.writeUInt16LE(60, 12)
    sec.writeUInt16LE(80, 14) // 80 + 50 > 100
    const script: ScriptStep[] = [{dir: 'toserver', data: Buffer.concat([smb1(0x32, t2, 4), smb1(0x33, sec, 4)])}]
    expect(fired(smbAnalyzer, script)).toContain('PP-2017-0143')
    expect(fired(smbAnalyzer, script, 7)).toContain('PP-2017-0143')
    sec.writeUInt16LE(0, 10) // a secondary carrying nothing, at displacement 100 = the total: consistent
    sec.writeUInt16LE(0, 12)
    sec.writeUInt16LE(100, 14)
    expect(fired(smbAnalyzer, [{dir: 'toserver', data: Buffer.concat([smb1(0x32, t2, 4), smb1(0x33, sec, 4)])}])).toEqual([])
  })

  it('SMBGhost: chained-flag transform with an overflowing size fires; a big but valid size does not', () => {
    const ct = (orig: number, flags: number, off: number): ScriptStep[] => {
      const t = Buffer.alloc(16 + 32)
      Buffer.from('fc534d42', 'hex').copy(t)
      t.writeUInt32LE(orig >>> 0, 4)
      t.writeUInt16LE(3, 8)
      t.writeUInt16LE(flags, 10)
      t.writeUInt32LE(off, 12)
      return [{dir: 'toserver', data: nb(t)}]
    }
    expect(fired(smbAnalyzer, ct(0xffffff00, 0, 0x100))).toEqual(['PP-2020-0796'])
    expect(fired(smbAnalyzer, ct(0x00800000, 0, 0x10))).toEqual([])
  })

  it('rpcbomb over UDP (the usual transport) and with two fragments over TCP', () => {
    const w = (...xs: number[]): Buffer => {
      const b = Buffer.alloc(4 * xs.length)
      xs.forEach((x, i) => b.writeUInt32BE(x >>> 0, 4 * i))
      return b
    }
    const call = Buffer.concat([w(7, 0, 2, 100000, 3, 3, 0, 0, 0, 0, 100005, 3, 0x40000000), Buffer.from('tcp\0'), w(0, 0)])
    expect(fired(oncrpcUdpAnalyzer, [{dir: 'toserver', data: call}])).toEqual(['PP-2017-8779'])
    const a = call.subarray(0, 24)
    const b = call.subarray(24)
    const tcp = Buffer.concat([w(a.length), a, w(0x80000000 + b.length), b])
    expect(fired(oncrpcAnalyzer, [{dir: 'toserver', data: tcp}])).toEqual(['PP-2017-8779'])
    const ok = Buffer.concat([w(7, 0, 2, 100000, 3, 3, 0, 0, 0, 0, 100005, 3, 3), Buffer.from('tcp\0'), w(0, 0)])
    expect(fired(oncrpcUdpAnalyzer, [{dir: 'toserver', data: ok}])).toEqual([])
    // portmapper v2 CALLIT: rpcbind decodes its encapsulated args<> with the same unbounded
    // xdr_bytes; its other v2 procedures have fixed-size arguments (a GETPORT's port 0x40000000 is no length)
    const callit = (len: number, data: string): Buffer => Buffer.concat([w(8, 0, 2, 100000, 2, 5, 0, 0, 0, 0, 100003, 3, 0, len), Buffer.from(data)])
    expect(fired(oncrpcUdpAnalyzer, [{dir: 'toserver', data: callit(0x7ffffff0, 'abcd')}])).toEqual(['PP-2017-8779'])
    expect(fired(oncrpcUdpAnalyzer, [{dir: 'toserver', data: callit(8, 'abcdefgh')}])).toEqual([])
    expect(fired(oncrpcUdpAnalyzer, [{dir: 'toserver', data: w(9, 0, 2, 100000, 2, 3, 0, 0, 0, 0, 100003, 3, 17, 0x40000000)}])).toEqual([])
  })
})

// ---- variant audit (session 5): transports, encodings and call shapes the samples do not have ----

/** a DCE/RPC PDU in either data representation (drep[0] 0x10 little-endian, 0x00 big-endian) */
function pduX(ptype: number, flags: number, callId: number, body: Buffer, be = false, authLength = 0): Buffer {
  const h = Buffer.alloc(16)
  h.writeUInt8(5, 0)
  h.writeUInt8(ptype, 2)
  h.writeUInt8(flags, 3)
  h.writeUInt32BE(be ? 0 : 0x10000000, 4)
  if (be) {
    h.writeUInt16BE(16 + body.length, 8)
    h.writeUInt16BE(authLength, 10)
    h.writeUInt32BE(callId, 12)
  } else {
    h.writeUInt16LE(16 + body.length, 8)
    h.writeUInt16LE(authLength, 10)
    h.writeUInt32LE(callId, 12)
  }
  return Buffer.concat([h, body])
}
function uuidX(u: string, be: boolean): Buffer {
  if (!be) return uuidLe(u)
  return Buffer.from(u.replace(/-/g, ''), 'hex')
}
const NDR20 = '8a885d04-1ceb-11c9-9fe8-08002b104860'
const NDR64 = '71710533-beba-4937-8319-b5dbef9ccc36'
/** bind (ptype 11) or alter_context (14) offering each [uuid, version] as context id 0, 1, 2... */
function bindX(ifaces: [string, number][], opts: {be?: boolean; ptype?: number; callId?: number; syntax?: string} = {}): Buffer {
  const be = opts.be ?? false
  const w16 = (b: Buffer, v: number, o: number): number => (be ? b.writeUInt16BE(v, o) : b.writeUInt16LE(v, o))
  const w32 = (b: Buffer, v: number, o: number): number => (be ? b.writeUInt32BE(v, o) : b.writeUInt32LE(v, o))
  const head = Buffer.alloc(12)
  w16(head, 4280, 0)
  w16(head, 4280, 2)
  head.writeUInt8(ifaces.length, 8)
  const items = ifaces.map(([u, ver], i) => {
    const c = Buffer.alloc(44)
    w16(c, i, 0)
    c.writeUInt8(1, 2)
    uuidX(u, be).copy(c, 4)
    w16(c, ver, 20)
    uuidX(opts.syntax ?? NDR20, be).copy(c, 24)
    w32(c, opts.syntax === NDR64 ? 1 : 2, 40)
    return c
  })
  return pduX(opts.ptype ?? 11, 3, opts.callId ?? 1, Buffer.concat([head, ...items]), be)
}
/** a request on context `ctx`: optional object UUID, auth verifier with `authPad` padding bytes, fragments */
function requestX(opnum: number, stub: Buffer, opts: {be?: boolean; ctx?: number; object?: string; authPad?: number; frags?: number; callId?: number} = {}): Buffer {
  const be = opts.be ?? false
  const frags = opts.frags ?? 1
  const out: Buffer[] = []
  const size = Math.ceil(stub.length / frags)
  for (let i = 0; i < frags; i++) {
    const part = stub.subarray(i * size, (i + 1) * size)
    const h = Buffer.alloc(8)
    if (be) {
      h.writeUInt32BE(stub.length, 0)
      h.writeUInt16BE(opts.ctx ?? 0, 4)
      h.writeUInt16BE(opnum, 6)
    } else {
      h.writeUInt32LE(stub.length, 0)
      h.writeUInt16LE(opts.ctx ?? 0, 4)
      h.writeUInt16LE(opnum, 6)
    }
    const obj = opts.object !== undefined ? uuidX(opts.object, be) : Buffer.alloc(0)
    let auth = Buffer.alloc(0)
    let authLength = 0
    if (opts.authPad !== undefined) {
      // sec_trailer: auth_type 10 (NTLM), level 5 (integrity), pad length, reserved, context id; then a 16-byte signature
      const t = Buffer.from([10, 5, opts.authPad, 0, 0, 0, 0, 0])
      auth = Buffer.concat([Buffer.alloc(opts.authPad, 0xaa), t, Buffer.alloc(16, 0x5a)])
      authLength = 16
    }
    const flags = (i === 0 ? 1 : 0) | (i === frags - 1 ? 2 : 0) | (opts.object !== undefined ? 0x80 : 0)
    out.push(pduX(0, flags, opts.callId ?? 2, Buffer.concat([h, obj, part, auth]), be, authLength))
  }
  return Buffer.concat(out)
}
/** NDR conformant varying string in either byte order; `pad` aligns its end to 4 (what precedes a 4-aligned field) */
function ndrStr(s: string, opts: {be?: boolean; max?: number; pad?: boolean; raw?: Buffer} = {}): Buffer {
  const be = opts.be ?? false
  let t = opts.raw ?? Buffer.from(s + '\0', 'utf16le')
  if (be) t = Buffer.from(t).swap16()
  const n = t.length / 2
  const h = Buffer.alloc(12)
  if (be) {
    h.writeUInt32BE(opts.max ?? n, 0)
    h.writeUInt32BE(n, 8)
  } else {
    h.writeUInt32LE(opts.max ?? n, 0)
    h.writeUInt32LE(n, 8)
  }
  return Buffer.concat([h, t, Buffer.alloc(opts.pad === false ? 0 : (4 - (t.length % 4)) % 4)])
}
const u32x = (n: number, be = false): Buffer => {
  const b = Buffer.alloc(4)
  if (be) b.writeUInt32BE(n >>> 0, 0)
  else b.writeUInt32LE(n >>> 0, 0)
  return b
}
const canonX = (p: string, be = false): Buffer =>
  Buffer.concat([u32x(0x20000, be), ndrStr('SRV', {be}), ndrStr(p, {be}), u32x(1, be), ndrStr('\\', {be}), u32x(1, be), u32x(0, be)])
/** NetrServerAuthenticate/2/3 stub laid out as NDR does: the 8-byte credential (alignment 1) right after ComputerName */
function authX(cred: Buffer, opts: {be?: boolean; flags?: boolean; name?: string; trailing?: Buffer} = {}): Buffer {
  const be = opts.be ?? false
  const name = opts.name ?? 'DC01'
  const parts = [u32x(0x20000, be), ndrStr('\\\\' + name, {be}), ndrStr(name + '$', {be, pad: false})]
  let len = parts.reduce((a, b) => a + b.length, 0)
  const enumPad = len % 2
  const sct = Buffer.alloc(2)
  if (be) sct.writeUInt16BE(2, 0)
  else sct.writeUInt16LE(2, 0)
  parts.push(Buffer.alloc(enumPad), sct)
  len += enumPad + 2
  parts.push(Buffer.alloc((4 - (len % 4)) % 4))
  len += (4 - (len % 4)) % 4
  const comp = ndrStr(name, {be, pad: false})
  parts.push(comp, cred)
  len += comp.length + 8
  if (opts.flags ?? true) parts.push(Buffer.alloc((4 - (len % 4)) % 4), be ? Buffer.from('212fffff', 'hex') : Buffer.from('ffff2f21', 'hex'))
  if (opts.trailing) parts.push(opts.trailing)
  return Buffer.concat(parts)
}
const WKSSVC = '6bffd098-a112-3610-9833-46c3f87e345a'
const EPM = 'e1af8308-5d1f-11c9-91a4-08002b14a0fa'
const LSARPC = '12345778-1234-abcd-ef00-0123456789ab'
const ts = (...bufs: Buffer[]): ScriptStep[] => [{dir: 'toserver', data: Buffer.concat(bufs)}]

describe('variant audit: DCE/RPC call shapes', () => {
  const climb = '\\a\\..\\..\\..\\x'
  it('MS08-067: srvsvc as the third context of a bind, and added later by alter_context', () => {
    expect(fired(dcerpcAnalyzer, ts(bindX([[WKSSVC, 1], [EPM, 3], [SRVSVC, 3]]), requestX(31, canonX(climb), {ctx: 2})))).toEqual(['PP-2008-4250'])
    // the same stub on the wkssvc context (ctx 0) is another call: nothing
    expect(fired(dcerpcAnalyzer, ts(bindX([[WKSSVC, 1], [EPM, 3], [SRVSVC, 3]]), requestX(31, canonX(climb), {ctx: 0})))).toEqual([])
    const alter = bindX([[WKSSVC, 1], [SRVSVC, 3]], {ptype: 14, callId: 2})
    expect(fired(dcerpcAnalyzer, ts(bindX([[WKSSVC, 1]]), alter, requestX(32, canonX(climb), {ctx: 1, callId: 3})))).toEqual(['PP-2008-4250'])
  })

  it('MS08-067: big-endian data representation, object UUID, auth verifier padding, 5 fragments', () => {
    expect(fired(dcerpcAnalyzer, ts(bindX([[SRVSVC, 3]], {be: true}), requestX(31, canonX(climb, true), {be: true})))).toEqual(['PP-2008-4250'])
    expect(fired(dcerpcAnalyzer, ts(bindX([[SRVSVC, 3]], {be: true}), requestX(31, canonX('\\a\\..\\b', true), {be: true})))).toEqual([])
    expect(fired(dcerpcAnalyzer, ts(bindX([[SRVSVC, 3]]), requestX(31, canonX(climb), {object: DSSETUP})))).toEqual(['PP-2008-4250'])
    expect(fired(dcerpcAnalyzer, ts(bindX([[SRVSVC, 3]]), requestX(31, canonX(climb), {authPad: 4})))).toEqual(['PP-2008-4250'])
    expect(fired(dcerpcAnalyzer, ts(bindX([[SRVSVC, 3]]), requestX(31, canonX(climb), {frags: 5, object: DSSETUP, authPad: 8})), 3)).toEqual(['PP-2008-4250'])
  })

  it('MS04-011: a string whose first character is not ASCII (shellcode), and max_count above actual_count', () => {
    const sc = Buffer.concat([Buffer.alloc(1200, 0x90), Buffer.from([0, 0])])
    const ds = (s: Buffer, be = false, max?: number): Buffer => Buffer.concat([u32x(0x20000, be), ndrStr('', {raw: s, be, max}), u32x(0, be)])
    expect(fired(dcerpcAnalyzer, ts(bindX([[DSSETUP, 0]]), requestX(9, ds(sc))))).toEqual(['PP-2003-0533'])
    expect(fired(dcerpcAnalyzer, ts(bindX([[DSSETUP, 0]], {be: true}), requestX(9, ds(sc, true), {be: true, frags: 3})))).toEqual(['PP-2003-0533'])
    expect(fired(dcerpcAnalyzer, ts(bindX([[DSSETUP, 0]]), requestX(9, ds(Buffer.from('B'.repeat(400) + '\0', 'utf16le'), false, 2000))))).toEqual(['PP-2003-0533'])
    // a domain name of non-Latin characters within the limit
    expect(fired(dcerpcAnalyzer, ts(bindX([[DSSETUP, 0]]), requestX(9, ds(Buffer.from('域'.repeat(60) + '\0', 'utf16le')))))).toEqual([])
  })

  it('MS03-026: a host name of non-Latin characters, over alter_context with ISystemActivator second', () => {
    const act = (name: string, be = false): Buffer => Buffer.concat([Buffer.alloc(32), u32x(0x20004, be), ndrStr(name, {be}), u32x(0, be), u32x(0, be)])
    expect(fired(dcerpcAnalyzer, ts(bindX([[EPM, 3]]), bindX([[EPM, 3], [ISA, 0]], {ptype: 14, callId: 2}), requestX(4, act('\\\\' + 'ꙮ'.repeat(80) + '\\c$'), {ctx: 1, callId: 3})))).toEqual(['PP-2003-0352'])
    expect(fired(dcerpcAnalyzer, ts(bindX([[IRA, 0]], {be: true}), requestX(0, act('\\\\' + 'H'.repeat(70), true), {be: true})))).toEqual(['PP-2003-0352'])
    expect(fired(dcerpcAnalyzer, ts(bindX([[IRA, 0]], {be: true}), requestX(0, act('\\\\fileserver01\\docs\\a.doc', true), {be: true})))).toEqual([])
  })
})

describe('variant audit: Zerologon', () => {
  const nl = (opnum: number, stub: Buffer, opts: {be?: boolean; frags?: number} = {}): ScriptStep[] =>
    ts(bindX([[NETLOGON, 1]], {be: opts.be}), requestX(opnum, stub, {be: opts.be, frags: opts.frags}))
  const zero = Buffer.alloc(8)
  it('NetrServerAuthenticate (5), 2 (15) and 3 (26) with a zero credential, laid out as NDR does (no padding before it)', () => {
    for (const name of ['DC01', 'DC1', 'BAS-AD-01']) {
      expect(fired(dcerpcAnalyzer, nl(26, authX(zero, {name})))).toEqual(['PP-2020-1472'])
      expect(fired(dcerpcAnalyzer, nl(15, authX(zero, {name})))).toEqual(['PP-2020-1472'])
      expect(fired(dcerpcAnalyzer, nl(5, authX(zero, {name, flags: false})))).toEqual(['PP-2020-1472'])
    }
  })

  it('seven zero bytes and a free last byte (CFB8 accepts it 1 time in 256), big-endian, fragmented, trailing bytes', () => {
    const c7 = Buffer.from('00000000000000a5', 'hex')
    expect(fired(dcerpcAnalyzer, nl(26, authX(c7)))).toEqual(['PP-2020-1472'])
    expect(fired(dcerpcAnalyzer, nl(26, authX(zero, {be: true}), {be: true}))).toEqual(['PP-2020-1472'])
    expect(fired(dcerpcAnalyzer, nl(26, authX(c7, {name: 'DC01'}), {frags: 3}), 1)).toEqual(['PP-2020-1472'])
    expect(fired(dcerpcAnalyzer, nl(15, authX(zero, {trailing: Buffer.from('01020304', 'hex')})))).toEqual(['PP-2020-1472'])
  })

  it('benign: random credentials on all three calls, four leading zero bytes, a zero challenge request alone', () => {
    const rnd = Buffer.from('9f3b71c2e4a05d18', 'hex')
    for (const op of [5, 15, 26]) expect(fired(dcerpcAnalyzer, nl(op, authX(rnd, {flags: op !== 5})))).toEqual([])
    expect(fired(dcerpcAnalyzer, nl(26, authX(Buffer.from('00000000c3d2e1f0', 'hex'))))).toEqual([])
    // credential bytes that happen to end in zeros (the old end-relative read took padding for the credential)
    expect(fired(dcerpcAnalyzer, nl(26, authX(Buffer.from('7a00000000000000', 'hex'), {name: 'DC01'})))).toEqual([])
    const reqChallenge = Buffer.concat([u32x(0x20000), ndrStr('\\\\DC01'), ndrStr('DC01', {pad: false}), zero])
    expect(fired(dcerpcAnalyzer, nl(4, reqChallenge))).toEqual([])
  })

  it('NetrServerPasswordSet2: zero password found by parsing, also with bytes after it; a real one is not', () => {
    const ps2 = (pw: Buffer, trailing = Buffer.alloc(0)): Buffer => {
      const head = authX(Buffer.alloc(0), {flags: false, name: 'DC01'})
      const padded = Buffer.concat([head, Buffer.alloc((4 - (head.length % 4)) % 4)])
      return Buffer.concat([padded, Buffer.alloc(12), pw, trailing])
    }
    expect(fired(dcerpcAnalyzer, nl(30, ps2(Buffer.alloc(516))))).toEqual(['PP-2020-1472-PASSWORDSET'])
    expect(fired(dcerpcAnalyzer, nl(30, ps2(Buffer.alloc(516), Buffer.alloc(8, 0x41))))).toEqual(['PP-2020-1472-PASSWORDSET'])
    expect(fired(dcerpcAnalyzer, nl(30, ps2(Buffer.alloc(516, 0x3c))))).toEqual([])
  })
})

describe('variant audit: CVE-2022-26809 responses', () => {
  const ack = (ptype: number, maxXmit: number): Buffer => {
    const b = Buffer.alloc(10 + 2 + 4 + 24)
    b.writeUInt16LE(maxXmit, 0)
    b.writeUInt16LE(maxXmit, 2)
    b.writeUInt16LE(0, 8) // no secondary address (an alter_context_resp carries none)
    b.writeUInt8(1, 12)
    uuidLe(NDR20).copy(b, 20)
    b.writeUInt32LE(2, 36)
    return pduX(ptype, 3, 2, b)
  }
  it('a malformed alter_context_resp fires like a malformed bind_ack; a normal one does not', () => {
    const script = (ptype: number, x: number): ScriptStep[] => [
      {dir: 'toserver', data: bindX([[SRVSVC, 3]])},
      {dir: 'toclient', data: ack(12, 4280)},
      {dir: 'toserver', data: bindX([[SRVSVC, 3], [WKSSVC, 1]], {ptype: 14, callId: 2})},
      {dir: 'toclient', data: ack(ptype, x)},
    ]
    expect(fired(dcerpcAnalyzer, script(15, 16))).toEqual(['PP-2022-26809', 'PP-DCERPC-MALFORMED-PDU'])
    expect(fired(dcerpcAnalyzer, script(12, 16))).toEqual(['PP-2022-26809', 'PP-DCERPC-MALFORMED-PDU'])
    expect(fired(dcerpcAnalyzer, script(15, 4280))).toEqual([])
  })
})

// ---- SMB transports for DCE/RPC ----
const nbss = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, b.length >> 16, (b.length >> 8) & 255, b.length & 255]), b])
function smb1(cmd: number, o: {reply?: boolean; tid?: number; mid: number; status?: number}, words: Buffer, bytes: Buffer): Buffer {
  const h = Buffer.alloc(32)
  Buffer.from('ff534d42', 'hex').copy(h)
  h.writeUInt8(cmd, 4)
  h.writeUInt32LE(o.status ?? 0, 5)
  h.writeUInt8(o.reply ? 0x98 : 0x18, 9)
  h.writeUInt16LE(o.tid ?? 0, 24)
  h.writeUInt16LE(o.mid, 30)
  const bc = Buffer.alloc(2)
  bc.writeUInt16LE(bytes.length, 0)
  return nbss(Buffer.concat([h, Buffer.from([words.length / 2]), words, bc, bytes]))
}
/** SMB1: tree connect to \\SRV\<share> (tid 7), NT_CREATE_ANDX of `name` (FID 0x4001), ANSI names */
function smb1Open(share: string, name: string): ScriptStep[] {
  const tcw = Buffer.alloc(8)
  tcw.writeUInt8(0xff, 0)
  tcw.writeUInt16LE(1, 6)
  const create = Buffer.alloc(48)
  create.writeUInt8(0xff, 0)
  create.writeUInt16LE(name.length, 5)
  const resp = Buffer.alloc(68)
  resp.writeUInt8(0xff, 0)
  resp.writeUInt16LE(0x4001, 5)
  return [
    {dir: 'toserver', data: smb1(0x75, {mid: 1}, tcw, Buffer.from(`\0\\\\SRV\\${share}\0?????\0`, 'latin1'))},
    {dir: 'toclient', data: smb1(0x75, {reply: true, mid: 1, tid: 7}, Buffer.from('ff0000000000', 'hex'), Buffer.alloc(0))},
    {dir: 'toserver', data: smb1(0xa2, {mid: 2, tid: 7}, create, Buffer.from(name + '\0', 'latin1'))},
    {dir: 'toclient', data: smb1(0xa2, {reply: true, mid: 2, tid: 7}, resp, Buffer.alloc(0))},
  ]
}
function smb1WriteAndX(data: Buffer, mid: number): Buffer {
  const w = Buffer.alloc(28)
  w.writeUInt8(0xff, 0)
  w.writeUInt16LE(0x4001, 4)
  w.writeUInt16LE(0x08, 14) // message start
  w.writeUInt16LE(data.length, 20)
  w.writeUInt16LE(32 + 1 + 28 + 2 + 1, 22)
  return smb1(0x2f, {mid, tid: 7}, w, Buffer.concat([Buffer.alloc(1), data]))
}
/** TransactNmPipe carrying data[0, first) in the TRANS and the rest in TRANS_SECONDARY messages of `step` bytes */
function smb1Transact(data: Buffer, mid: number, first: number, step: number): Buffer {
  const w = Buffer.alloc(32)
  w.writeUInt16LE(data.length, 2)
  w.writeUInt16LE(1024, 6)
  w.writeUInt16LE(first, 22)
  w.writeUInt16LE(32 + 1 + 32 + 2 + 7, 24)
  w.writeUInt8(2, 26)
  w.writeUInt16LE(0x26, 28)
  w.writeUInt16LE(0x4001, 30)
  const out = [smb1(0x25, {mid, tid: 7}, w, Buffer.concat([Buffer.from('\\PIPE\\\0', 'latin1'), data.subarray(0, first)]))]
  for (let at = first; at < data.length; at += step) {
    const part = data.subarray(at, at + step)
    const s = Buffer.alloc(16)
    s.writeUInt16LE(data.length, 2)
    s.writeUInt16LE(part.length, 10)
    s.writeUInt16LE(32 + 1 + 16 + 2, 12)
    s.writeUInt16LE(at, 14)
    out.push(smb1(0x26, {mid, tid: 7}, s, part))
  }
  return Buffer.concat(out)
}
function smb2(cmd: number, o: {reply?: boolean; tree?: number; id: number; status?: number}, body: Buffer): Buffer {
  const h = Buffer.alloc(64)
  Buffer.from('fe534d42', 'hex').copy(h)
  h.writeUInt16LE(64, 4)
  h.writeUInt32LE(o.status ?? 0, 8)
  h.writeUInt16LE(cmd, 12)
  h.writeUInt32LE(o.reply ? 1 : 0, 16)
  h.writeBigUInt64LE(BigInt(o.id), 24)
  h.writeUInt32LE(o.tree ?? 0, 36)
  return nbss(Buffer.concat([h, body]))
}
const FILE_ID = Buffer.from('0102030405060708090a0b0c0d0e0f10', 'hex')
/** the FileId 0xff..ff: a related compound operation's "the file the CREATE before opened" */
const ANY_FILE = Buffer.alloc(16, 0xff)
const writeBody = (data: Buffer, file = ANY_FILE): Buffer => {
  const b = Buffer.alloc(48)
  b.writeUInt16LE(49, 0)
  b.writeUInt16LE(64 + 48, 2)
  b.writeUInt32LE(data.length, 4)
  file.copy(b, 16)
  return Buffer.concat([b, data])
}
const ioctlBody = (data: Buffer, file = ANY_FILE): Buffer => {
  const b = Buffer.alloc(56)
  b.writeUInt16LE(57, 0)
  b.writeUInt32LE(0x0011c017, 4)
  file.copy(b, 8)
  b.writeUInt32LE(64 + 56, 24)
  b.writeUInt32LE(data.length, 28)
  b.writeUInt32LE(1024, 44)
  b.writeUInt32LE(1, 48)
  return Buffer.concat([b, data])
}
/** SMB2: tree connect to \\SRV\<share> (tree 5), CREATE of `name` (FileId FILE_ID) */
function smb2Open(share: string, name: string): ScriptStep[] {
  const path = Buffer.from(`\\\\SRV\\${share}`, 'utf16le')
  const tc = Buffer.alloc(8)
  tc.writeUInt16LE(9, 0)
  tc.writeUInt16LE(72, 4)
  tc.writeUInt16LE(path.length, 6)
  const nm = Buffer.from(name, 'utf16le')
  const cr = Buffer.alloc(56)
  cr.writeUInt16LE(57, 0)
  cr.writeUInt16LE(120, 44)
  cr.writeUInt16LE(nm.length, 46)
  const crr = Buffer.alloc(88)
  FILE_ID.copy(crr, 64)
  return [
    {dir: 'toserver', data: smb2(3, {id: 1}, Buffer.concat([tc, path]))},
    {dir: 'toclient', data: smb2(3, {reply: true, id: 1, tree: 5}, Buffer.alloc(16))},
    {dir: 'toserver', data: smb2(5, {id: 2, tree: 5}, Buffer.concat([cr, nm]))},
    {dir: 'toclient', data: smb2(5, {reply: true, id: 2, tree: 5}, crr)},
  ]
}
function smb2Write(data: Buffer, id: number): Buffer {
  return smb2(9, {id, tree: 5}, writeBody(data, FILE_ID))
}
function smb2Ioctl(data: Buffer, id: number): Buffer {
  return smb2(11, {id, tree: 5}, ioctlBody(data, FILE_ID))
}

describe('variant audit: DCE/RPC over SMB named pipes', () => {
  const bad = Buffer.concat([bindX([[SRVSVC, 3]]), requestX(31, canonX('\\x\\..\\..\\y'), {frags: 2})])
  const good = Buffer.concat([bindX([[SRVSVC, 3]]), requestX(31, canonX('\\x\\..\\y'))])
  it('MS08-067 over SMB1 WRITE_ANDX, TRANS TransactNmPipe (with TRANS_SECONDARY), SMB2 WRITE and SMB2 IOCTL', () => {
    expect(fired(smbAnalyzer, [...smb1Open('IPC$', '\\srvsvc'), {dir: 'toserver', data: smb1WriteAndX(bad, 3)}])).toEqual(['PP-2008-4250'])
    expect(fired(smbAnalyzer, [...smb1Open('IPC$', '\\srvsvc'), {dir: 'toserver', data: smb1Transact(bad, 3, bad.length, 1)}])).toEqual(['PP-2008-4250'])
    // the request split over the TRANS and three secondaries (a transaction's data may be)
    expect(fired(smbAnalyzer, [...smb1Open('IPC$', '\\srvsvc'), {dir: 'toserver', data: smb1Transact(bad, 3, 90, 60)}])).toEqual(['PP-2008-4250'])
    expect(fired(smbAnalyzer, [...smb1Open('IPC$', '\\srvsvc'), {dir: 'toserver', data: smb1Transact(bad, 3, 90, 60)}], 5)).toEqual(['PP-2008-4250'])
    expect(fired(smbAnalyzer, [...smb2Open('IPC$', 'srvsvc'), {dir: 'toserver', data: smb2Write(bad, 3)}])).toEqual(['PP-2008-4250'])
    expect(fired(smbAnalyzer, [...smb2Open('IPC$', 'srvsvc'), {dir: 'toserver', data: smb2Ioctl(bad, 3)}])).toEqual(['PP-2008-4250'])
  })

  it('benign: the same calls with a path that stays inside its root', () => {
    expect(fired(smbAnalyzer, [...smb1Open('IPC$', '\\srvsvc'), {dir: 'toserver', data: smb1Transact(good, 3, 90, 60)}])).toEqual([])
    expect(fired(smbAnalyzer, [...smb2Open('IPC$', 'srvsvc'), {dir: 'toserver', data: smb2Ioctl(good, 3)}])).toEqual([])
  })

  it('Zerologon over the netlogon pipe (SMB2 IOCTL), MS04-011 over lsarpc (SMB1 TRANS)', () => {
    const zl = Buffer.concat([bindX([[NETLOGON, 1]]), requestX(26, authX(Buffer.alloc(8)))])
    expect(fired(smbAnalyzer, [...smb2Open('IPC$', 'netlogon'), {dir: 'toserver', data: smb2Ioctl(zl, 3)}])).toEqual(['PP-2020-1472'])
    const ds = Buffer.concat([u32x(0x20000), ndrStr('', {raw: Buffer.concat([Buffer.alloc(3000, 0xeb), Buffer.alloc(2)])}), u32x(0)])
    const sasser = Buffer.concat([bindX([[LSARPC, 0], [DSSETUP, 0]]), requestX(9, ds, {ctx: 1, frags: 3})])
    expect(fired(smbAnalyzer, [...smb1Open('IPC$', '\\lsarpc'), {dir: 'toserver', data: smb1Transact(sasser, 3, 1000, 2000)}])).toEqual(['PP-2003-0533'])
  })
})

describe('variant audit: SMB', () => {
  it('SambaCry: a path as pipe name over SMB1 (ANSI) and SMB2; not on a disk share, not an ordinary pipe', () => {
    expect(fired(smbAnalyzer, smb1Open('IPC$', '/srv/share/x.so'))).toEqual(['PP-2017-7494'])
    expect(fired(smbAnalyzer, smb1Open('ipc$', '\\\\PIPE\\/tmp/evil.so'))).toEqual(['PP-2017-7494'])
    expect(fired(smbAnalyzer, smb2Open('IPC$', '/data/upload/payload.so'))).toEqual(['PP-2017-7494'])
    expect(fired(smbAnalyzer, smb2Open('DATA', 'docs/a/b.txt'))).toEqual([])
    expect(fired(smbAnalyzer, smb2Open('IPC$', 'srvsvc'))).toEqual([])
  })

  const t = (cmd: number, mid: number, v: Record<number, number>, words: number, data = Buffer.alloc(0)): Buffer => {
    const w = Buffer.alloc(words * 2)
    const nt = cmd === 0xa0 || cmd === 0xa1
    for (const [off, val] of Object.entries(v)) {
      const o = Number(off)
      if (nt && o !== 36 && o !== 0) w.writeUInt32LE(val, o)
      else w.writeUInt16LE(val, o)
    }
    return smb1(cmd, {mid, tid: 7}, w, data)
  }
  it('MS17-010: NT_TRANSACT then TRANS2_SECONDARY (EternalBlue), NT_TRANSACT_SECONDARY past the total, TRANS2 offset past the message', () => {
    // NT_TRANSACT: TotalParam 30 @3, TotalData 66512 @7, ParamCount 30 @19, DataCount 976 @27, function 0 @36
    const ntt = t(0xa0, 9, {3: 30, 7: 66512, 19: 30, 23: 84, 27: 976, 31: 116, 36: 0}, 20)
    const t2s = t(0x33, 9, {0: 0, 2: 4096, 10: 4096, 12: 68, 14: 976}, 9)
    expect(fired(smbAnalyzer, [{dir: 'toserver', data: Buffer.concat([ntt, t2s])}])).toContain('PP-2017-0143')
    // NT_TRANSACT_SECONDARY: DataCount 100 @23 at displacement 66500 @31 (> TotalData 66512)
    const nts = t(0xa1, 9, {7: 66512, 23: 100, 27: 80, 31: 66500}, 18)
    expect(fired(smbAnalyzer, [{dir: 'toserver', data: Buffer.concat([ntt, nts])}])).toContain('PP-2017-0143')
    // TRANS2 whose DataOffset + DataCount passes the message
    const t2 = t(0x32, 10, {0: 0, 2: 200, 22: 200, 24: 4000, 26: 1, 28: 0x0e}, 15)
    expect(fired(smbAnalyzer, [{dir: 'toserver', data: t2}])).toContain('PP-2017-0143')
    // benign: a TRANS2 whose data arrives in a consistent secondary
    const p = t(0x32, 11, {0: 0, 2: 100, 22: 0, 24: 0, 26: 1, 28: 0x05}, 15)
    const s = t(0x33, 11, {2: 100, 10: 100, 12: 32 + 1 + 18 + 2, 14: 0}, 9, Buffer.alloc(100, 0x41))
    expect(fired(smbAnalyzer, [{dir: 'toserver', data: Buffer.concat([p, s])}])).toEqual([])
  })

  it('SMBGhost: every compression algorithm, an Offset alone near 2^32, over NetBIOS 139; ordinary transforms pass', () => {
    const ct = (orig: number, alg: number, off: number, data = Buffer.alloc(32)): Buffer => {
      const b = Buffer.alloc(16 + data.length)
      Buffer.from('fc534d42', 'hex').copy(b)
      b.writeUInt32LE(orig >>> 0, 4)
      b.writeUInt16LE(alg, 8)
      b.writeUInt32LE(off >>> 0, 12)
      data.copy(b, 16)
      return nbss(b)
    }
    for (const alg of [1, 2, 3, 4]) expect(fired(smbAnalyzer, ts(ct(0xffffffff, alg, 0x10)))).toEqual(['PP-2020-0796'])
    expect(fired(smbAnalyzer, ts(ct(0x20, 1, 0xfffffff0)))).toEqual(['PP-2020-0796'])
    const session = Buffer.concat([Buffer.from([0x81, 0, 0, 68]), Buffer.alloc(68, 0x41)])
    expect(fired(smbAnalyzer, ts(session, ct(0x80000000, 2, 0x80000000)))).toEqual(['PP-2020-0796'])
    // ordinary: an LZNT1 chunk stored as is (4096 bytes), an LZ77+Huffman transform (not sized)
    const stored = Buffer.concat([Buffer.from([0xff, 0x3f]), Buffer.alloc(4096, 0x42)])
    expect(fired(smbAnalyzer, ts(ct(0x1000, 1, 0, stored), ct(0x10000, 3, 0x40, Buffer.alloc(0x60))))).toEqual([])
  })

  it('SMBleed: data shorter than declared, in LZNT1 and LZ77, whole or cut in 7-byte segments, after an uncompressed prefix', () => {
    const ct = (orig: number, alg: number, data: Buffer, prefix = Buffer.alloc(0)): Buffer => {
      const b = Buffer.alloc(16)
      Buffer.from('fc534d42', 'hex').copy(b)
      b.writeUInt32LE(orig >>> 0, 4)
      b.writeUInt16LE(alg, 8)
      b.writeUInt32LE(prefix.length, 12)
      return nbss(Buffer.concat([b, prefix, data]))
    }
    // [MS-XCA] 3.2's 'abc' x 100 (300 bytes), and two LZNT1 chunks: 4096 bytes stored, then 'abc' + a 297-byte reference
    const lz77 = Buffer.from('ffffff1f61626317000fff2601', 'hex')
    const lznt1 = Buffer.concat([Buffer.from([0xff, 0x3f]), Buffer.alloc(4096, 0x42), Buffer.from('05b0086162632621', 'hex')])
    const prefix = Buffer.concat([Buffer.from('fe534d42', 'hex'), Buffer.alloc(60)])
    for (const chunk of [undefined, 7]) {
      expect(fired(smbAnalyzer, ts(ct(300 + 1, 2, lz77)), chunk)).toEqual(['PP-2020-1206'])
      expect(fired(smbAnalyzer, ts(ct(4096 + 300 + 0x800, 1, lznt1)), chunk)).toEqual(['PP-2020-1206'])
      expect(fired(smbAnalyzer, ts(ct(0x10000, 2, lz77, prefix)), chunk)).toEqual(['PP-2020-1206'])
      // exact sizes pass; so does a size below what the data holds (the server stops there)
      expect(fired(smbAnalyzer, ts(ct(300, 2, lz77), ct(4096 + 300, 1, lznt1), ct(300, 2, lz77, prefix), ct(10, 1, lznt1)), chunk)).toEqual([])
    }
  })

  it('rpcbomb: v4 GETADDRLIST and v3 TADDR2UADDR netbufs, a TCP record in four fragments; a normal GETADDR passes', () => {
    const w = (...xs: number[]): Buffer => {
      const b = Buffer.alloc(4 * xs.length)
      xs.forEach((x, i) => b.writeUInt32BE(x >>> 0, 4 * i))
      return b
    }
    const hdr = (vers: number, proc: number): Buffer => w(0x1234, 0, 2, 100000, vers, proc, 0, 0, 0, 0)
    const v4 = Buffer.concat([hdr(4, 11), w(100005, 3, 0xfffffff0), Buffer.from('tcp\0'), w(0, 0)])
    expect(fired(oncrpcUdpAnalyzer, [{dir: 'toserver', data: v4}])).toEqual(['PP-2017-8779'])
    const t2u = Buffer.concat([hdr(3, 8), w(0x7fffffff, 0x7fffffff), Buffer.alloc(8)])
    expect(fired(oncrpcUdpAnalyzer, [{dir: 'toserver', data: t2u}])).toEqual(['PP-2017-8779'])
    const parts = [v4.subarray(0, 12), v4.subarray(12, 40), v4.subarray(40, 44), v4.subarray(44)]
    const tcp = Buffer.concat(parts.flatMap((p, i) => [w((i === parts.length - 1 ? 0x80000000 : 0) + p.length), p]))
    expect(fired(oncrpcAnalyzer, [{dir: 'toserver', data: tcp}], 3)).toEqual(['PP-2017-8779'])
    const ok = Buffer.concat([hdr(4, 3), w(100005, 3, 3), Buffer.from('tcp\0'), w(0, 0)])
    expect(fired(oncrpcUdpAnalyzer, [{dir: 'toserver', data: ok}])).toEqual([])
  })
})

// ---- variant audit (session 5, H9): SMB1 AndX chains, SMB2 compounds, out-of-order TRANS_SECONDARY ----

const ANDX = new Set([0x2e, 0x2f, 0x73, 0x75, 0xa2])
/** the state an SMB analyzer holds after `script`, and its anomalies */
function held(script: readonly ScriptStep[], limits: Partial<SmbLimits> = {}): {state: Record<string, number>; anomalies: string[]} {
  const anomalies: string[] = []
  const a = new SmbAnalyzer({emit: () => {}, anomaly: (x) => anomalies.push(x.event)}, limits)
  for (const s of script) a.data(s.dir, s.data)
  return {state: a.heldState(), anomalies}
}
interface Blk {
  cmd: number
  /** the command's words, given where (from the SMB header) its bytes will start */
  words: (bytesAt: number) => Buffer
  bytes?: Buffer
}
/** one SMB1 message chaining `blocks` (AndXCommand / AndXOffset filled in for AndX commands) */
function smb1Chain(o: {reply?: boolean; tid?: number; mid: number; status?: number}, blocks: Blk[]): Buffer {
  const h = Buffer.alloc(32)
  Buffer.from('ff534d42', 'hex').copy(h)
  h.writeUInt8(blocks[0]!.cmd, 4)
  h.writeUInt32LE(o.status ?? 0, 5)
  h.writeUInt8(o.reply ? 0x98 : 0x18, 9)
  h.writeUInt16LE(o.tid ?? 0, 24)
  h.writeUInt16LE(o.mid, 30)
  const parts: Buffer[] = [h]
  let at = 32
  blocks.forEach((b, i) => {
    const bytes = b.bytes ?? Buffer.alloc(0)
    const wlen = b.words(0).length
    const words = Buffer.from(b.words(at + 1 + wlen + 2))
    const next = at + 1 + wlen + 2 + bytes.length
    if (ANDX.has(b.cmd) && words.length >= 4) {
      words.writeUInt8(i + 1 < blocks.length ? blocks[i + 1]!.cmd : 0xff, 0)
      words.writeUInt16LE(i + 1 < blocks.length ? next : 0, 2)
    }
    const bc = Buffer.alloc(2)
    bc.writeUInt16LE(bytes.length, 0)
    parts.push(Buffer.from([wlen / 2]), words, bc, bytes)
    at = next
  })
  return nbss(Buffer.concat(parts))
}
const treeConnect = (share: string): Blk => {
  const w = Buffer.alloc(8)
  w.writeUInt16LE(1, 6)
  return {cmd: 0x75, words: () => w, bytes: Buffer.from(`\0\\\\SRV\\${share}\0?????\0`, 'latin1')}
}
const ntCreate = (name: string): Blk => {
  const w = Buffer.alloc(48)
  w.writeUInt16LE(name.length, 5)
  return {cmd: 0xa2, words: () => w, bytes: Buffer.from(name + '\0', 'latin1')}
}
const sessionSetup: Blk = {cmd: 0x73, words: () => Buffer.alloc(26), bytes: Buffer.alloc(8)}
/** WRITE_ANDX of `data` to `fid` (0xffff: the FID a chained create opens is used whatever this says) */
const writeAndX = (data: Buffer, fid = 0xffff): Blk => ({
  cmd: 0x2f,
  words: (at) => {
    const w = Buffer.alloc(24)
    w.writeUInt16LE(fid, 4)
    w.writeUInt16LE(data.length, 20)
    w.writeUInt16LE(at + 1, 22)
    return w
  },
  bytes: Buffer.concat([Buffer.alloc(1), data]),
})
const readAndX = (fid = 0xffff): Blk => {
  const w = Buffer.alloc(20)
  w.writeUInt16LE(fid, 4)
  w.writeUInt16LE(1024, 10)
  return {cmd: 0x2e, words: () => w}
}
const treeConnectResp: Blk = {cmd: 0x75, words: () => Buffer.alloc(6), bytes: Buffer.from('IPC\0', 'latin1')}
const ntCreateResp = (fid: number): Blk => {
  const w = Buffer.alloc(68)
  w.writeUInt16LE(fid, 5)
  return {cmd: 0xa2, words: () => w}
}
const writeResp: Blk = {cmd: 0x2f, words: () => Buffer.alloc(12)}
const readResp = (data: Buffer): Blk => ({
  cmd: 0x2e,
  words: (at) => {
    const w = Buffer.alloc(24)
    w.writeUInt16LE(data.length, 10)
    w.writeUInt16LE(at + 1, 12)
    return w
  },
  bytes: Buffer.concat([Buffer.alloc(1), data]),
})
/** a bind_ack whose max_xmit_frag is under the 1432-byte minimum (CVE-2022-26809 rule, PP-DCERPC-MALFORMED-PDU) */
function badBindAck(): Buffer {
  const b = Buffer.alloc(10 + 2 + 4 + 24)
  b.writeUInt16LE(16, 0)
  b.writeUInt16LE(16, 2)
  b.writeUInt8(1, 12)
  uuidLe(NDR20).copy(b, 20)
  b.writeUInt32LE(2, 36)
  return pduX(12, 3, 1, b)
}

/** SMB2 command (header + body) for a compound: flags 1 reply, 4 related */
function smb2Cmd(cmd: number, o: {reply?: boolean; related?: boolean; tree?: number; id: number; status?: number}, body: Buffer): Buffer {
  const h = Buffer.alloc(64)
  Buffer.from('fe534d42', 'hex').copy(h)
  h.writeUInt16LE(64, 4)
  h.writeUInt32LE(o.status ?? 0, 8)
  h.writeUInt16LE(cmd, 12)
  h.writeUInt32LE((o.reply ? 1 : 0) | (o.related ? 4 : 0), 16)
  h.writeBigUInt64LE(BigInt(o.id), 24)
  h.writeUInt32LE(o.tree ?? 0, 36)
  return Buffer.concat([h, body])
}
/** NextCommand chaining, each command but the last padded to 8 bytes */
function compound(...cmds: Buffer[]): Buffer {
  const parts = cmds.map((c, i) => {
    if (i === cmds.length - 1) return c
    const p = Buffer.concat([c, Buffer.alloc((8 - (c.length % 8)) % 8)])
    p.writeUInt32LE(p.length, 20)
    return p
  })
  return nbss(Buffer.concat(parts))
}
const createBody = (name: string): Buffer => {
  const nm = Buffer.from(name, 'utf16le')
  const cr = Buffer.alloc(56)
  cr.writeUInt16LE(57, 0)
  cr.writeUInt16LE(120, 44)
  cr.writeUInt16LE(nm.length, 46)
  return Buffer.concat([cr, nm])
}
const readBody = (file = ANY_FILE): Buffer => {
  const b = Buffer.alloc(49)
  b.writeUInt16LE(49, 0)
  b.writeUInt32LE(1024, 4)
  file.copy(b, 16)
  return b
}
const readRespBody = (data: Buffer): Buffer => {
  const b = Buffer.alloc(16)
  b.writeUInt16LE(17, 0)
  b.writeUInt8(64 + 16, 2)
  b.writeUInt32LE(data.length, 4)
  return Buffer.concat([b, data])
}
const createRespBody = (): Buffer => {
  const b = Buffer.alloc(88)
  b.writeUInt16LE(89, 0)
  FILE_ID.copy(b, 64)
  return b
}
/** SMB2 tree connect to \\SRV\<share> answered with tree 5 */
function smb2Tree(share: string): ScriptStep[] {
  const path = Buffer.from(`\\\\SRV\\${share}`, 'utf16le')
  const tc = Buffer.alloc(8)
  tc.writeUInt16LE(9, 0)
  tc.writeUInt16LE(72, 4)
  tc.writeUInt16LE(path.length, 6)
  return [
    {dir: 'toserver', data: smb2(3, {id: 1}, Buffer.concat([tc, path]))},
    {dir: 'toclient', data: smb2(3, {reply: true, id: 1, tree: 5}, Buffer.alloc(16))},
  ]
}

describe('variant audit: SMB1 AndX chains', () => {
  const bad = Buffer.concat([bindX([[SRVSVC, 3]]), requestX(31, canonX('\\x\\..\\..\\y'))])
  const good = Buffer.concat([bindX([[SRVSVC, 3]]), requestX(31, canonX('\\x\\..\\y'))])
  const tc1 = (share: string): ScriptStep[] => smb1Open(share, '\\x').slice(0, 2) // tree 7

  it('SambaCry: NT_CREATE_ANDX chained after TREE_CONNECT_ANDX (and after SESSION_SETUP_ANDX) on IPC$', () => {
    expect(fired(smbAnalyzer, ts(smb1Chain({mid: 1}, [treeConnect('IPC$'), ntCreate('/tmp/evil.so')])))).toEqual(['PP-2017-7494'])
    expect(fired(smbAnalyzer, ts(smb1Chain({mid: 1}, [sessionSetup, treeConnect('IPC$'), ntCreate('\\\\PIPE\\/srv/up/x.so')])), 3)).toEqual(['PP-2017-7494'])
    // on a tree connected earlier (tid 7), the create chained behind a READ_ANDX
    expect(fired(smbAnalyzer, [...tc1('IPC$'), ...ts(smb1Chain({mid: 2, tid: 7}, [readAndX(1), ntCreate('/tmp/evil.so')]))])).toEqual(['PP-2017-7494'])
  })

  it('benign chains: a path on a disk share, an ordinary pipe on IPC$', () => {
    expect(fired(smbAnalyzer, ts(smb1Chain({mid: 1}, [treeConnect('DATA'), ntCreate('docs/a/b.txt')])))).toEqual([])
    expect(fired(smbAnalyzer, ts(smb1Chain({mid: 1}, [treeConnect('IPC$'), ntCreate('\\srvsvc')])))).toEqual([])
    // the chained tree is a disk share even though the header's tid 7 is IPC$
    expect(fired(smbAnalyzer, [...tc1('IPC$'), ...ts(smb1Chain({mid: 2, tid: 7}, [treeConnect('DATA'), ntCreate('docs/a/b.txt')]))])).toEqual([])
  })

  it('MS08-067: WRITE_ANDX chained after the NT_CREATE_ANDX that opens srvsvc reaches the pipe, also with the tree connect chained', () => {
    expect(fired(smbAnalyzer, [...tc1('IPC$'), ...ts(smb1Chain({mid: 2, tid: 7}, [ntCreate('\\srvsvc'), writeAndX(bad), readAndX()]))])).toEqual(['PP-2008-4250'])
    expect(fired(smbAnalyzer, ts(smb1Chain({mid: 2}, [treeConnect('IPC$'), ntCreate('\\srvsvc'), writeAndX(bad)])), 5)).toEqual(['PP-2008-4250'])
    expect(fired(smbAnalyzer, [...tc1('IPC$'), ...ts(smb1Chain({mid: 2, tid: 7}, [ntCreate('\\srvsvc'), writeAndX(good), readAndX()]))])).toEqual([])
    // a file on a disk share is not a pipe: the same bytes written to it are not DCE/RPC
    expect(fired(smbAnalyzer, ts(smb1Chain({mid: 2}, [treeConnect('DATA'), ntCreate('srvsvc'), writeAndX(bad)])))).toEqual([])
  })

  it('the reply chain gives the FID: the pipe keeps its bind, later writes and chained reads reach it', () => {
    const script: ScriptStep[] = [
      ...tc1('IPC$'),
      ...ts(smb1Chain({mid: 2, tid: 7}, [ntCreate('\\srvsvc'), writeAndX(bindX([[SRVSVC, 3]])), readAndX()])),
      {dir: 'toclient', data: smb1Chain({reply: true, mid: 2, tid: 7}, [ntCreateResp(0x4002), writeResp, readResp(badBindAck())])},
      ...ts(smb1Chain({mid: 3, tid: 7}, [writeAndX(requestX(31, canonX('\\x\\..\\..\\y')), 0x4002)])),
    ]
    expect(fired(smbAnalyzer, script)).toEqual(['PP-2008-4250', 'PP-2022-26809', 'PP-DCERPC-MALFORMED-PDU'])
    const r = runAnalyzer(smbAnalyzer, script)
    expect(r.pdus.filter((p) => p.protocol === 'smb').map((p) => `${p.kind}:${String(p.fields.get('smb.command.name') && (p.fields.get('smb.command.name') as {v: string}).v)}`)).toEqual([
      'smb1_request:tree_connect_andx', 'smb1_response:tree_connect_andx',
      'smb1_request:nt_create_andx', 'smb1_request:write_andx', 'smb1_request:read_andx',
      'smb1_response:nt_create_andx', 'smb1_response:write_andx', 'smb1_response:read_andx',
      'smb1_request:write_andx',
    ])
    expect(held(script).state.pipes).toBe(1)
    // the same with the create refused: no pipe is left behind, the later write is not DCE/RPC
    const refused = [...script.slice(0, 3), {dir: 'toclient' as const, data: smb1Chain({reply: true, mid: 2, tid: 7, status: 0xc0000034}, [{cmd: 0xa2, words: () => Buffer.alloc(0)}])}, script[4]!]
    expect(held(refused).state).toMatchObject({pipes: 0, pending: 0})
    expect(fired(smbAnalyzer, refused)).toEqual([])
  })

  it('a chain stopped by an error reply before the create: nothing stays pending', () => {
    const r = held([
      ...ts(smb1Chain({mid: 2}, [treeConnect('IPC$'), ntCreate('\\srvsvc'), writeAndX(bad)])),
      {dir: 'toclient', data: smb1Chain({reply: true, mid: 2, status: 0xc00000cc}, [{cmd: 0x75, words: () => Buffer.alloc(0)}])},
    ])
    expect(r.state).toMatchObject({pipes: 0, pending: 0, trees: 0})
    // a tree connected, then the create chained after it refused: the tree is still IPC$
    const r2 = held([
      ...ts(smb1Chain({mid: 2}, [treeConnect('IPC$'), ntCreate('\\nosuch')])),
      {dir: 'toclient', data: smb1Chain({reply: true, mid: 2, tid: 9, status: 0xc0000034}, [treeConnectResp, {cmd: 0xa2, words: () => Buffer.alloc(0)}])},
    ])
    expect(r2.state).toMatchObject({pipes: 0, pending: 0, trees: 1})
  })

  it('bounded: offsets that go back or past the message, and chains longer than maxAndX, are anomalies', () => {
    const msg = smb1Chain({mid: 1}, [treeConnect('IPC$'), ntCreate('/tmp/evil.so')])
    const back = Buffer.from(msg)
    back.writeUInt16LE(20, 4 + 33 + 2) // AndXOffset of the tree connect -> inside the header
    const r = runAnalyzer(smbAnalyzer, ts(back))
    expect(r.anomalies.map((a) => a.event)).toEqual(['smb.andx_bad_offset'])
    expect(r.pdus).toHaveLength(1)
    const past = Buffer.from(msg)
    past.writeUInt16LE(msg.length, 4 + 33 + 2)
    expect(runAnalyzer(smbAnalyzer, ts(past)).anomalies.map((a) => a.event)).toEqual(['smb.andx_bad_offset'])
    const long = smb1Chain({mid: 1, tid: 7}, Array.from({length: 20}, () => readAndX(1)))
    const rl = runAnalyzer(smbAnalyzer, ts(long))
    expect(rl.anomalies.map((a) => a.event)).toEqual(['smb.andx_limit'])
    expect(rl.pdus).toHaveLength(16)
  })

  it('every split of the chained sessions gives the same PDUs', () => {
    const script: ScriptStep[] = [
      ...ts(smb1Chain({mid: 2}, [sessionSetup, treeConnect('IPC$'), ntCreate('\\srvsvc'), writeAndX(bindX([[SRVSVC, 3]])), readAndX()])),
      {dir: 'toclient', data: smb1Chain({reply: true, mid: 2, tid: 7}, [{cmd: 0x73, words: () => Buffer.alloc(6)}, treeConnectResp, ntCreateResp(0x4002), writeResp, readResp(badBindAck())])},
      ...ts(smb1Chain({mid: 3, tid: 7}, [writeAndX(requestX(31, canonX('\\x\\..\\..\\y')), 0x4002)])),
    ]
    expect(splitInvariance(smbAnalyzer, script, 1)).toEqual([])
    const r = runAnalyzer(smbAnalyzer, script)
    expect(binarySpanMismatches(r.pdus, script)).toEqual([])
    expect(r.pdus.filter((p) => p.protocol === 'dcerpc').map((p) => p.kind)).toEqual(['bind', 'bind_ack', 'request'])
  })
})

describe('variant audit: SMB2 compound requests', () => {
  const bad = Buffer.concat([bindX([[SRVSVC, 3]]), requestX(31, canonX('\\x\\..\\..\\y'))])
  const good = Buffer.concat([bindX([[SRVSVC, 3]]), requestX(31, canonX('\\x\\..\\y'))])
  const createThen = (op: Buffer, related = true, name = 'srvsvc'): ScriptStep[] =>
    ts(compound(smb2Cmd(5, {id: 2, tree: 5}, createBody(name)), smb2Cmd(op === ANY_FILE ? 8 : op.readUInt16LE(0) === 57 ? 11 : 9, {id: 3, tree: 5, related}, op)))

  it('MS08-067: CREATE of srvsvc + related WRITE or IOCTL on FileId 0xFF..FF reaches the pipe', () => {
    expect(fired(smbAnalyzer, [...smb2Tree('IPC$'), ...createThen(writeBody(bad))])).toEqual(['PP-2008-4250'])
    expect(fired(smbAnalyzer, [...smb2Tree('IPC$'), ...createThen(ioctlBody(bad))], 7)).toEqual(['PP-2008-4250'])
    // three in a row: CREATE, WRITE (bind), IOCTL (request), each related to the one before
    const three = compound(
      smb2Cmd(5, {id: 2, tree: 5}, createBody('srvsvc')),
      smb2Cmd(9, {id: 3, related: true}, writeBody(bindX([[SRVSVC, 3]]))),
      smb2Cmd(11, {id: 4, related: true}, ioctlBody(requestX(31, canonX('\\x\\..\\..\\y')))),
    )
    expect(fired(smbAnalyzer, [...smb2Tree('IPC$'), ...ts(three)])).toEqual(['PP-2008-4250'])
  })

  it('benign: the same with a path that stays inside its root; unrelated all-FF FileId; a file on a disk share', () => {
    expect(fired(smbAnalyzer, [...smb2Tree('IPC$'), ...createThen(writeBody(good))])).toEqual([])
    expect(fired(smbAnalyzer, [...smb2Tree('IPC$'), ...createThen(writeBody(bad), false)])).toEqual([])
    expect(fired(smbAnalyzer, [...smb2Tree('DATA'), ...createThen(writeBody(bad))])).toEqual([])
  })

  it('the CREATE reply names the pipe: related READ gets the reply, a later WRITE with the real FileId reaches the same pipe', () => {
    const script: ScriptStep[] = [
      ...smb2Tree('IPC$'),
      ...ts(compound(smb2Cmd(5, {id: 2, tree: 5}, createBody('srvsvc')), smb2Cmd(9, {id: 3, related: true}, writeBody(bindX([[SRVSVC, 3]]))), smb2Cmd(8, {id: 4, related: true}, readBody()))),
      {dir: 'toclient', data: compound(smb2Cmd(5, {reply: true, id: 2, tree: 5}, createRespBody()), smb2Cmd(9, {reply: true, related: true, id: 3, tree: 5}, Buffer.alloc(16)), smb2Cmd(8, {reply: true, related: true, id: 4, tree: 5}, readRespBody(badBindAck())))},
      {dir: 'toserver', data: smb2Write(requestX(31, canonX('\\x\\..\\..\\y')), 5)},
    ]
    expect(fired(smbAnalyzer, script)).toEqual(['PP-2008-4250', 'PP-2022-26809', 'PP-DCERPC-MALFORMED-PDU'])
    expect(splitInvariance(smbAnalyzer, script, 1)).toEqual([])
    const r = runAnalyzer(smbAnalyzer, script)
    expect(binarySpanMismatches(r.pdus, script)).toEqual([])
    expect(held(script).state).toMatchObject({pipes: 1, pending: 0})
    // the CREATE refused: the provisional pipe goes
    expect(held([...script.slice(0, 3), {dir: 'toclient', data: smb2(5, {reply: true, id: 2, tree: 5, status: 0xc0000034}, Buffer.alloc(9))}]).state).toMatchObject({pipes: 0})
  })
})

describe('variant audit: TRANS_SECONDARY out of order', () => {
  const bad = Buffer.concat([bindX([[SRVSVC, 3]]), requestX(31, canonX('\\x\\..\\..\\y'))])
  const good = Buffer.concat([bindX([[SRVSVC, 3]]), requestX(31, canonX('\\x\\..\\y'))])
  /** smb1Transact's messages, the secondaries in `order` */
  const shuffled = (data: Buffer, order: (n: number) => number[]): Buffer => {
    const all = smb1Transact(data, 3, 90, 60)
    const msgs: Buffer[] = []
    for (let i = 0; i < all.length; ) {
      const len = all.readUIntBE(i + 1, 3)
      msgs.push(all.subarray(i, i + 4 + len))
      i += 4 + len
    }
    const sec = msgs.slice(1)
    return Buffer.concat([msgs[0]!, ...order(sec.length).map((k) => sec[k]!)])
  }
  const reversed = (n: number): number[] => Array.from({length: n}, (_, i) => n - 1 - i)

  it('MS08-067: secondaries in reverse and in shuffled order are reassembled by displacement', () => {
    expect(fired(smbAnalyzer, [...smb1Open('IPC$', '\\srvsvc'), ...ts(shuffled(bad, reversed))])).toEqual(['PP-2008-4250'])
    expect(fired(smbAnalyzer, [...smb1Open('IPC$', '\\srvsvc'), ...ts(shuffled(bad, (n) => [1, ...Array.from({length: n - 2}, (_, i) => i + 2), 0]))], 5)).toEqual(['PP-2008-4250'])
    expect(fired(smbAnalyzer, [...smb1Open('IPC$', '\\srvsvc'), ...ts(shuffled(good, reversed))])).toEqual([])
    const script = [...smb1Open('IPC$', '\\srvsvc'), ...ts(shuffled(bad, reversed))]
    expect(splitInvariance(smbAnalyzer, script, 3)).toEqual([])
    expect(held(script)).toEqual({state: expect.objectContaining({transHeld: 0, trans: 0}), anomalies: []})
  })

  it('a secondary over bytes already fed (the server would run others) is smb.trans.out_of_order', () => {
    const s = Buffer.alloc(16)
    s.writeUInt16LE(bad.length, 2)
    s.writeUInt16LE(10, 10)
    s.writeUInt16LE(32 + 1 + 16 + 2, 12)
    s.writeUInt16LE(40, 14) // displacement 40: inside the 90 bytes the TRANS carried
    const over = smb1(0x26, {mid: 3, tid: 7}, s, Buffer.alloc(10, 0x41))
    const all = smb1Transact(bad, 3, 90, 60)
    const r = runAnalyzer(smbAnalyzer, [...smb1Open('IPC$', '\\srvsvc'), ...ts(all.subarray(0, 4 + all.readUIntBE(1, 3)), over)])
    // the pipe's parser saw the request's head only, and the rewrite is dropped
    expect(r.anomalies.map((a) => a.event)).toEqual(['smb.trans.out_of_order', 'dcerpc.truncated_pdu'])
    const evasion = new RuleSet(loadRules(path.join(RULES, 'generic', 'PP-EVASION-SMB-TRANS-OUT-OF-ORDER.yaml')).rules)
    expect(r.anomalies.flatMap((a) => evasion.evaluate(anomalyPdu(a)).map((m) => m.action))).toEqual(['drop'])
    // held data is bounded
    const a = held([...smb1Open('IPC$', '\\srvsvc'), ...ts(shuffled(bad, reversed))], {maxTransHeldBytes: 20})
    expect(a.anomalies).toEqual(['smb.trans_held_limit', 'smb.trans.out_of_order'])
    expect(a.state.transHeld).toBe(0)
  })
})

describe('audit-rpc: presentation contexts are settled by the server', () => {
  const climb = '\\a\\..\\..\\..\\x'
  const JUNK = '11111111-2222-3333-4444-555555555555'
  /** bind_ack (ptype 12) / alter_context_resp (15) with one result per proposed context */
  const ackR = (ptype: number, callId: number, results: number[]): Buffer => {
    const head = Buffer.alloc(12)
    head.writeUInt16LE(4280, 0)
    head.writeUInt16LE(4280, 2)
    head.writeUInt16LE(0, 8) // no secondary address
    const n = Buffer.from([results.length, 0, 0, 0])
    const items = results.map((r) => {
      const c = Buffer.alloc(24)
      c.writeUInt16LE(r, 0)
      c.writeUInt16LE(r === 0 ? 0 : 1, 2)
      if (r === 0) {
        uuidLe(NDR20).copy(c, 4)
        c.writeUInt32LE(2, 20)
      }
      return c
    })
    return pduX(ptype, 3, callId, Buffer.concat([head.subarray(0, 10), Buffer.alloc(2), n, ...items]))
  }
  const T = (data: Buffer): ScriptStep => ({dir: 'toserver', data})
  const C = (data: Buffer): ScriptStep => ({dir: 'toclient', data})

  it('MS08-067: an alter_context the server rejects does not take context 0 away from srvsvc', () => {
    const s = [T(bindX([[SRVSVC, 3]])), C(ackR(12, 1, [0])), T(bindX([[JUNK, 1]], {ptype: 14, callId: 2})), C(ackR(15, 2, [2])), T(requestX(31, canonX(climb), {callId: 3}))]
    expect(fired(dcerpcAnalyzer, s)).toEqual(['PP-2008-4250'])
    // bind_nak of a second association attempt on the same connection: the same
    const nak = pduX(13, 3, 2, Buffer.from([4, 0]))
    expect(fired(dcerpcAnalyzer, [T(bindX([[SRVSVC, 3]])), C(ackR(12, 1, [0])), T(bindX([[JUNK, 1]], {ptype: 14, callId: 2})), C(nak), T(requestX(31, canonX(climb), {callId: 3}))])).toEqual(['PP-2008-4250'])
  })

  it('MS08-067: sent before the server answers the alter_context, either interface may run it', () => {
    expect(fired(dcerpcAnalyzer, [T(bindX([[SRVSVC, 3]])), T(bindX([[JUNK, 1]], {ptype: 14, callId: 2})), T(requestX(31, canonX(climb), {callId: 3}))])).toEqual(['PP-2008-4250'])
    expect(fired(dcerpcAnalyzer, [T(bindX([[JUNK, 1]])), T(bindX([[SRVSVC, 3]], {ptype: 14, callId: 2})), T(requestX(31, canonX(climb), {callId: 3}))])).toEqual(['PP-2008-4250'])
  })

  it('benign: an accepted alter_context moves context 0 to wkssvc; a rejected srvsvc proposal is dropped', () => {
    expect(fired(dcerpcAnalyzer, [T(bindX([[SRVSVC, 3]])), C(ackR(12, 1, [0])), T(bindX([[WKSSVC, 1]], {ptype: 14, callId: 2})), C(ackR(15, 2, [0])), T(requestX(31, canonX(climb), {callId: 3}))])).toEqual([])
    expect(fired(dcerpcAnalyzer, [T(bindX([[WKSSVC, 1]])), C(ackR(12, 1, [0])), T(bindX([[SRVSVC, 3]], {ptype: 14, callId: 2})), C(ackR(15, 2, [2])), T(requestX(31, canonX(climb), {callId: 3}))])).toEqual([])
  })
})

describe('audit-rpc: other SMB1 ways to open a pipe on IPC$', () => {
  const tree = (share: string): ScriptStep[] => smb1Open(share, 'x').slice(0, 2)
  /** OPEN_ANDX (15 words) of `name` (ANSI), and its reply giving FID 0x4001 */
  const openAndX = (name: string): ScriptStep[] => {
    const w = Buffer.alloc(30)
    w.writeUInt8(0xff, 0)
    w.writeUInt16LE(0x42, 6)
    w.writeUInt16LE(1, 16)
    const r = Buffer.alloc(30)
    r.writeUInt8(0xff, 0)
    r.writeUInt16LE(0x4001, 4)
    return [
      {dir: 'toserver', data: smb1(0x2d, {mid: 2, tid: 7}, w, Buffer.from(name + '\0', 'latin1'))},
      {dir: 'toclient', data: smb1(0x2d, {reply: true, mid: 2, tid: 7}, r, Buffer.alloc(0))},
    ]
  }
  /** NT_TRANSACT_CREATE of `name` (ANSI): the name at parameter offset 53 */
  const ntTransactCreate = (name: string): ScriptStep => {
    const nm = Buffer.from(name, 'latin1')
    const params = Buffer.alloc(53)
    params.writeUInt32LE(nm.length, 44)
    const pdata = Buffer.concat([params, nm])
    const w = Buffer.alloc(38)
    const po = 32 + 1 + 38 + 2
    w.writeUInt32LE(pdata.length, 3)
    w.writeUInt32LE(pdata.length, 19)
    w.writeUInt32LE(po, 23)
    w.writeUInt32LE(po + pdata.length, 31)
    w.writeUInt16LE(1, 36)
    return {dir: 'toserver', data: smb1(0xa0, {mid: 3, tid: 7}, w, pdata)}
  }
  /** core TREE_CONNECT (0x70) of \\SRV\<share>; the reply's words give TID 7 */
  const coreTree = (share: string): ScriptStep[] => [
    {dir: 'toserver', data: smb1(0x70, {mid: 1}, Buffer.alloc(0), Buffer.from(`\x04\\\\SRV\\${share}\0\x04\0\x04?????\0`, 'latin1'))},
    {dir: 'toclient', data: smb1(0x70, {reply: true, mid: 1}, Buffer.from('00040700', 'hex'), Buffer.alloc(0))},
  ]
  const create = (name: string): ScriptStep => smb1Open('IPC$', name)[2]!

  it('SambaCry: a path as pipe name in OPEN_ANDX and NT_TRANSACT_CREATE, and after a core TREE_CONNECT', () => {
    expect(fired(smbAnalyzer, [...tree('IPC$'), ...openAndX('\\PIPE\\/tmp/evil.so')])).toEqual(['PP-2017-7494'])
    expect(fired(smbAnalyzer, [...tree('IPC$'), ntTransactCreate('/tmp/evil.so')])).toEqual(['PP-2017-7494'])
    expect(fired(smbAnalyzer, [...coreTree('IPC$'), create('/tmp/evil.so')])).toEqual(['PP-2017-7494'])
  })

  it('benign: ordinary pipes so opened, and the same paths on a disk share', () => {
    expect(fired(smbAnalyzer, [...tree('IPC$'), ...openAndX('\\PIPE\\srvsvc')])).toEqual([])
    expect(fired(smbAnalyzer, [...tree('DATA'), ...openAndX('\\dir/x.so')])).toEqual([])
    expect(fired(smbAnalyzer, [...tree('DATA'), ntTransactCreate('dir/x.so')])).toEqual([])
    expect(fired(smbAnalyzer, [...coreTree('DATA'), create('dir/x.so')])).toEqual([])
  })

  it('MS08-067 through a pipe opened by OPEN_ANDX', () => {
    const bad = Buffer.concat([bindX([[SRVSVC, 3]]), requestX(31, canonX('\\x\\..\\..\\y'))])
    expect(fired(smbAnalyzer, [...tree('IPC$'), ...openAndX('\\PIPE\\srvsvc'), {dir: 'toserver', data: smb1WriteAndX(bad, 5)}])).toEqual(['PP-2008-4250'])
  })
})

describe('audit-rpc: SMB1 transactions are found by UID, TID, PID and MID', () => {
  /** an SMB1 transaction message (wrapped), words from {byte offset: value}, with PID low word `pid` */
  const tx = (cmd: number, mid: number, pid: number, v: Record<number, number>, words: number, data = Buffer.alloc(0)): Buffer => {
    const w = Buffer.alloc(words * 2)
    const nt = cmd === 0xa0 || cmd === 0xa1
    for (const [off, val] of Object.entries(v)) {
      const o = Number(off)
      if (nt && o !== 36 && o !== 0) w.writeUInt32LE(val, o)
      else w.writeUInt16LE(val, o)
    }
    const b = smb1(cmd, {mid, tid: 7}, w, data)
    b.writeUInt16LE(pid, 4 + 26)
    return b
  }
  // its parameters and first data in the message (offsets 84 and 116): consistent by itself
  const ntt = (pid: number): Buffer => tx(0xa0, 9, pid, {3: 30, 7: 66512, 19: 30, 23: 84, 27: 976, 31: 116, 36: 0}, 20, Buffer.alloc(9 + 30 + 2 + 976))
  // consistent on its own totals (1000 bytes at 976 of 2000): only the NT_TRANSACT it continues makes it the bug
  const t2s = (pid: number): Buffer => tx(0x33, 9, pid, {0: 0, 2: 2000, 10: 1000, 12: 53, 14: 976}, 9, Buffer.alloc(1000, 0x41))

  it('EternalBlue: a complete TRANS2 of another PID with the same MID does not hide the pending NT_TRANSACT', () => {
    const other = tx(0x32, 9, 0x2222, {0: 4, 2: 0, 18: 4, 20: 68, 22: 0, 24: 72, 26: 1, 28: 0x05}, 15, Buffer.alloc(7))
    for (const one of [ntt(0x1111), other, t2s(0x1111)]) expect(fired(smbAnalyzer, [{dir: 'toserver', data: one}])).toEqual([])
    expect(fired(smbAnalyzer, [{dir: 'toserver', data: Buffer.concat([ntt(0x1111), other, t2s(0x1111)])}])).toContain('PP-2017-0143')
  })

  it('benign: two processes run transactions of different types with the same MID, each completed by its own secondary', () => {
    const p1 = tx(0x32, 11, 0x1111, {0: 0, 2: 100, 22: 0, 24: 0, 26: 1, 28: 0x05}, 15)
    const p2 = tx(0xa0, 11, 0x2222, {3: 0, 7: 100, 19: 0, 23: 0, 27: 0, 31: 0, 36: 0}, 20)
    const s1 = tx(0x33, 11, 0x1111, {2: 100, 10: 100, 12: 32 + 1 + 18 + 2, 14: 0}, 9, Buffer.alloc(100, 0x41))
    const s2 = tx(0xa1, 11, 0x2222, {7: 100, 23: 100, 27: 32 + 1 + 36 + 2, 31: 0}, 18, Buffer.alloc(100, 0x42))
    expect(fired(smbAnalyzer, [{dir: 'toserver', data: Buffer.concat([p1, p2, s1, s2])}])).toEqual([])
  })
})

describe('NDR64 transfer syntax (what x64 servers accept when a client offers it)', () => {
  const u64 = (n: number, be = false): Buffer => {
    const b = Buffer.alloc(8)
    if (be) b.writeBigUInt64BE(BigInt(n))
    else b.writeBigUInt64LE(BigInt(n))
    return b
  }
  /** a conformant varying string in NDR64: max_count(8) offset(8) actual_count(8), UTF-16, padded to 8 */
  const ndr64Str = (str: string, be = false): Buffer => {
    let t = Buffer.from(str + '\0', 'utf16le')
    if (be) t = Buffer.from(t).swap16()
    const n = t.length / 2
    return Buffer.concat([u64(n, be), u64(0, be), u64(n, be), t, Buffer.alloc((8 - (t.length % 8)) % 8)])
  }
  const canon64 = (p: string, be = false): Buffer =>
    Buffer.concat([u64(0x20000, be), ndr64Str('SRV', be), ndr64Str(p, be), u64(1, be), ndr64Str('\\', be), u64(1, be), u64(0, be)])
  const climb = '\\a\\..\\..\\..\\x'

  it('MS08-067 whose strings are NDR64 fires on a context bound with NDR64, little- and big-endian, in fragments', () => {
    for (const be of [false, true]) {
      for (const frags of [1, 3]) {
        const steps = ts(bindX([[SRVSVC, 3]], {be, syntax: NDR64}), requestX(31, canon64(climb, be), {be, frags}))
        expect(fired(dcerpcAnalyzer, steps), `be=${be} frags=${frags}`).toEqual(['PP-2008-4250'])
      }
    }
  })

  it('a normal path in NDR64 stays quiet, and NDR20 strings on an NDR64 bind are still read', () => {
    expect(fired(dcerpcAnalyzer, ts(bindX([[SRVSVC, 3]], {syntax: NDR64}), requestX(31, canon64('\\share\\dir\\..\\file'))))).toEqual([])
    expect(fired(dcerpcAnalyzer, ts(bindX([[SRVSVC, 3]], {syntax: NDR64}), requestX(31, canonX(climb))))).toEqual(['PP-2008-4250'])
  })
})
