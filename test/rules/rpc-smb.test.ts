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
import {smbAnalyzer} from '../../src/core/analyzers/smb/index.js'
import {oncrpcAnalyzer, oncrpcUdpAnalyzer} from '../../src/core/analyzers/oncrpc/index.js'
import type {AnalyzerFactory, Pdu} from '../../src/core/analyzers/types.js'
import type {CompiledRule} from '../../src/core/rules/compile.js'
import {RuleSet} from '../../src/core/rules/engine.js'
import {fieldsFor, testFactoryFor} from '../../src/core/rules/fields.js'
import {lintRules} from '../../src/core/rules/lint.js'
import {testRule} from '../../src/core/rules/sample-test.js'

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
  const anomalySet = new RuleSet(all.rules.filter((r) => r.protocol === 'anomaly'))
  const ids = new Set<string>()
  const units: Pdu[] = [...res.pdus]
  for (const a of res.anomalies) {
    units.push({protocol: 'anomaly', kind: a.type, dir: 'toserver', start: 0, end: 0, fields: new Map([['anomaly.event', {v: a.event}], ['anomaly.type', {v: a.type}]])})
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
      'PP-2020-1472', 'PP-2020-1472-PASSWORDSET', 'PP-2022-26809', 'PP-DCERPC-MALFORMED-PDU', 'PP-SMB3-COMPRESSION-NEGOTIATE',
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
    // same bytes on another netlogon call (NetrServerAuthenticate2, opnum 15) are not judged by this rule
    expect(fired(dcerpcAnalyzer, rpc(NETLOGON, 1, 15, auth3(Buffer.alloc(8))))).toEqual([])
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
  })
})
