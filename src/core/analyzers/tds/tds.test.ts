import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {runAnalyzer, type ScriptStep} from '../harness.js'
import {fuzzRuns, loadHexFixture, splitInvariance} from '../line/testing.js'
import {binarySpanMismatches, fuzzScripts, many, one} from '../mysql/testing.js'
import type {Pdu} from '../types.js'
import {TDS_FIELDS, TdsAnalyzer, detectTds, makeTdsAnalyzer, tdsAnalyzer} from './index.js'

const fixture = loadHexFixture(new URL('./fixtures/benign_mssql_tds7_login_query.s0.hex', import.meta.url))
const UCS2 = (name: string): boolean => name.startsWith('tds.login.') || name === 'tds.sql' || name === 'tds.rpc.proc_name'

const cat = (...parts: (string | number[] | Uint8Array)[]): Uint8Array =>
  Uint8Array.from(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p)))))
const u16 = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'utf16le'))
const be16 = (n: number): number[] => [n >> 8, n & 0xff]
const le16 = (n: number): number[] => [n & 0xff, n >> 8]
const le32 = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff]
/** one TDS packet */
const pkt = (type: number, status: number, payload: Uint8Array, id = 1): Uint8Array => cat([type, status], be16(payload.length + 8), [0, 0, id, 0], payload)
const S = (data: Uint8Array): ScriptStep => ({dir: 'toserver', data})
const ALL_HEADERS = cat(le32(22), le32(18), le16(2), new Uint8Array(8), le32(1))

/** a PRELOGIN payload from [token, data] options, computing offsets */
function prelogin(opts: [number, Uint8Array][], override?: (i: number) => [number, number] | undefined): Uint8Array {
  const table: number[] = []
  let off = opts.length * 5 + 1
  opts.forEach(([tok, data], i) => {
    const [o, l] = override?.(i) ?? [off, data.length]
    table.push(tok, ...be16(o), ...be16(l))
    off += data.length
  })
  return cat(table, [0xff], ...opts.map(([, d]) => d))
}

/** a LOGIN7 payload (TDS 7.4) with the given strings; `bad` moves the user name offset out of the message */
function login7(user: string, db: string, bad = false): Uint8Array {
  const strings = [u16('host1'), u16(user), u16('pw'), u16('app'), u16('srv'), new Uint8Array(0), u16('lib'), u16(''), u16(db)]
  const fixed = 94
  const offs: number[] = []
  let o = fixed
  for (const s of strings) {
    offs.push(o)
    o += s.length
  }
  const total = o
  const head: number[] = [...le32(total), ...le32(0x74000004), ...le32(4096), ...le32(7), ...le32(100), ...le32(0), 0xe0, 3, 0, 0, ...le32(0), ...le32(0x409)]
  strings.forEach((s, i) => head.push(...le16(bad && i === 1 ? 0xfff0 : offs[i]!), ...le16(s.length / 2)))
  head.push(0, 0, 0, 0, 0, 0, ...le16(0), ...le16(0), ...le16(0), ...le16(0), ...le16(0), ...le16(0), ...le32(0))
  expect(head.length).toBe(fixed)
  return cat(head, ...strings)
}

describe('tds: fixture benign_mssql_tds7_login_query', () => {
  it('every split and 1-byte chunks give the same PDUs', () => {
    expect(splitInvariance(tdsAnalyzer, fixture)).toEqual([])
  })

  it('spans map onto the stream bytes (UCS-2 values decoded)', () => {
    const r = runAnalyzer(tdsAnalyzer, fixture)
    expect(binarySpanMismatches(r.pdus, fixture, UCS2)).toEqual([])
  })

  it('prelogin, login, SQL batch and responses', () => {
    const r = runAnalyzer(tdsAnalyzer, fixture)
    expect(r.anomalies).toEqual([])
    expect(r.pdus.map((p) => `${p.dir === 'toserver' ? '>' : '<'}${p.kind}`)).toEqual(['>prelogin', '<prelogin_response', '>login', '<response', '>sql_batch', '<response'])
    const pl = r.pdus[0]!
    expect(many(pl, 'tds.prelogin.option').map((v) => v.v)).toEqual([0, 1, 2, 3])
    expect(many(pl, 'tds.prelogin.option_length').map((v) => v.v)).toEqual([6, 1, 12, 4])
    expect(one(pl, 'tds.prelogin.version').v).toBe('8.0.341.0')
    expect(one(pl, 'tds.prelogin.instance')).toEqual({v: 'MSSQLServer', off: 36, len: 11})
    expect(one(pl, 'tds.prelogin.option_offset_invalid').v).toBe(0)
    expect(one(r.pdus[1], 'tds.server_version').v).toBe('8.0.2039.0')
    const l = r.pdus[2]!
    expect(one(l, 'tds.login.user')).toEqual({v: 'testuser', off: 168, len: 16})
    expect(one(l, 'tds.login.hostname').v).toBe('LIV-VXP-007')
    expect(one(l, 'tds.login.appname').v).toBe('Microsoft Data Access Components')
    expect(one(l, 'tds.login.field_invalid').v).toBe(0)
    expect(one(l, 'tds.login.tds_version').v).toBe(0x71000001)
    const q = r.pdus[4]!
    expect(one(q, 'tds.sql').v).toBe("select name from master.dbo.syscharsets where id = convert(tinyint, databasepropertyex ( db_name() , 'sqlcharset'))")
    expect(one(q, 'tds.sql.length').v).toBe(115)
    expect(one(q, 'tds.type').v).toBe(1)
    expect(one(q, 'tds.length').v).toBe(238)
  })
})

describe('tds: hand-written messages', () => {
  it('SQL batch over three packets (ALL_HEADERS) is reassembled; a value crossing packets has no span', () => {
    const sql = u16("EXEC xp_cmdshell 'whoami'")
    const msg = cat(ALL_HEADERS, sql)
    const script = [S(pkt(1, 0, msg.subarray(0, 30), 1)), S(pkt(1, 0, msg.subarray(30, 50), 2)), S(pkt(1, 1, msg.subarray(50), 3))]
    const r = runAnalyzer(tdsAnalyzer, script)
    expect(r.anomalies).toEqual([])
    expect(r.pdus.length).toBe(1)
    const p = r.pdus[0]!
    expect(one(p, 'tds.sql')).toEqual({v: "EXEC xp_cmdshell 'whoami'"})
    expect(one(p, 'tds.packets').v).toBe(3)
    expect(one(p, 'tds.sql.length').v).toBe(25)
    expect([p.start, p.end]).toEqual([0, msg.length + 24])
    expect(splitInvariance(tdsAnalyzer, script)).toEqual([])
    // one packet: the span covers the UCS-2 bytes
    const r1 = runAnalyzer(tdsAnalyzer, [S(pkt(1, 1, msg))])
    expect(one(r1.pdus[0], 'tds.sql')).toEqual({v: "EXEC xp_cmdshell 'whoami'", off: 8 + 22, len: sql.length})
  })

  it('pendingFrom holds a message until its EOM packet', () => {
    const a = new TdsAnalyzer({emit: () => {}, anomaly: () => {}})
    a.data('toserver', pkt(1, 0, u16('select 1')))
    expect(a.pendingFrom('toserver')).toBe(0)
    a.data('toserver', pkt(1, 1, u16(' ')))
    expect(a.pendingFrom('toserver')).toBe(-1)
  })

  it('PRELOGIN option leaving the packet: option_offset_invalid (CVE-2002-1123 class)', () => {
    const p = prelogin([[0, Uint8Array.from([9, 0, 0, 0, 0, 0])], [1, Uint8Array.from([0])]], (i) => (i === 1 ? [0x4000, 0x100] : undefined))
    const r = runAnalyzer(tdsAnalyzer, [S(pkt(0x12, 1, p))])
    expect(one(r.pdus[0], 'tds.prelogin.option_offset_invalid').v).toBe(1)
    expect(many(r.pdus[0], 'tds.prelogin.option_length').map((v) => v.v)).toEqual([6, 0x100])
    expect(r.anomalies.map((a) => a.event)).toEqual(['tds.prelogin.invalid_option'])
  })

  it('overlong INSTOPT instance name is exposed with its length and span', () => {
    const inst = 'A'.repeat(600)
    const script = [S(pkt(0x12, 1, prelogin([[0, Uint8Array.from([9, 0, 0, 0, 0, 0])], [2, cat(inst, [0])]])))]
    const r = runAnalyzer(tdsAnalyzer, script)
    expect(one(r.pdus[0], 'tds.prelogin.instance.length').v).toBe(600)
    expect(one(r.pdus[0], 'tds.prelogin.instance').v).toBe(inst)
    expect(binarySpanMismatches(r.pdus, script, UCS2)).toEqual([])
  })

  it('LOGIN7 fields; an offset outside the message sets field_invalid', () => {
    const good = [S(pkt(0x10, 1, login7('sa', 'master')))]
    const r = runAnalyzer(tdsAnalyzer, good)
    expect(one(r.pdus[0], 'tds.login.user').v).toBe('sa')
    expect(one(r.pdus[0], 'tds.login.database').v).toBe('master')
    expect(one(r.pdus[0], 'tds.login.library').v).toBe('lib')
    expect(one(r.pdus[0], 'tds.login.password.length').v).toBe(2)
    expect(r.pdus[0]!.fields.has('tds.login.password')).toBe(false)
    expect(one(r.pdus[0], 'tds.login.field_invalid').v).toBe(0)
    expect(binarySpanMismatches(r.pdus, good, UCS2)).toEqual([])
    const rb = runAnalyzer(tdsAnalyzer, [S(pkt(0x10, 1, login7('sa', 'master', true)))])
    expect(one(rb.pdus[0], 'tds.login.field_invalid').v).toBe(1)
    expect(rb.pdus[0]!.fields.has('tds.login.user')).toBe(false)
    expect(rb.anomalies.map((a) => a.event)).toEqual(['tds.login.field_invalid'])
  })

  it('message over maxMessageBytes: truncated, with the full text length', () => {
    const sql = u16('select ' + 'x'.repeat(3000))
    const script = [S(pkt(1, 0, sql.subarray(0, 4000))), S(pkt(1, 1, sql.subarray(4000)))]
    const r = runAnalyzer(makeTdsAnalyzer({maxMessageBytes: 1000}), script)
    const p = r.pdus[0]!
    expect(one(p, 'tds.truncated').v).toBe(1)
    expect(one(p, 'tds.sql.length').v).toBe(3007)
    expect((one(p, 'tds.sql').v as string).length).toBe(500)
    expect(r.anomalies.map((a) => a.event)).toEqual(['tds.message_too_long'])
  })

  it('RPC by ProcID and by name', () => {
    const r = runAnalyzer(tdsAnalyzer, [S(pkt(3, 1, cat(ALL_HEADERS, le16(0xffff), le16(10), le16(0)))), S(pkt(3, 1, cat(ALL_HEADERS, le16(6), u16('sp_foo'), le16(0))))])
    expect(one(r.pdus[0], 'tds.rpc.proc_id').v).toBe(10)
    expect(one(r.pdus[0], 'tds.rpc.proc_name').v).toBe('sp_executesql')
    expect(one(r.pdus[1], 'tds.rpc.proc_name')).toEqual({v: 'sp_foo', off: 36 + 8 + 22 + 2, len: 12})
  })

  it('invalid header stops the direction; TLS records become tls PDUs', () => {
    const r = runAnalyzer(tdsAnalyzer, [S(cat([0x99, 1, 0, 8, 0, 0, 0, 0])), S(pkt(1, 1, u16('x')))])
    expect(r.pdus).toEqual([])
    expect(r.anomalies.map((a) => a.event)).toEqual(['tds.invalid_header'])
    const t = runAnalyzer(tdsAnalyzer, [S(cat([0x17, 3, 3, 0, 3, 1, 2, 3])), S(pkt(1, 1, u16('x')))])
    expect(t.pdus.map((p) => p.kind)).toEqual(['tls', 'sql_batch'])
  })

  it('gap inside a message: the partial message is emitted truncated, then the direction stops', () => {
    const a = new TdsAnalyzer({emit: (p) => pdus.push(p), anomaly: (x) => ev.push(x.event)})
    const pdus: Pdu[] = []
    const ev: string[] = []
    a.data('toserver', pkt(1, 0, u16('select 1')))
    a.gap('toserver', 10)
    expect(ev).toEqual(['tds.gap'])
    expect(pdus.length).toBe(1)
    expect(one(pdus[0], 'tds.truncated').v).toBe(1)
    expect(one(pdus[0], 'tds.sql').v).toBe('select 1')
  })
})

describe('tds: detect and fields', () => {
  it('detects PRELOGIN toserver, not other bytes', () => {
    expect(detectTds('toserver', fixture[0]!.data)).toBe(true)
    expect(detectTds('toserver', fixture[0]!.data.subarray(0, 8))).toBe(true)
    expect(detectTds('toclient', fixture[0]!.data)).toBe(false)
    expect(detectTds('toserver', Buffer.from('GET / HTTP/1.1\r\n'))).toBe(false)
    expect(detectTds('toserver', fixture[4]!.data)).toBe(false) // an SQL batch is not a flow start
  })

  it('every emitted field is documented', () => {
    const known = new Set(TDS_FIELDS.map((f) => f.name))
    for (const p of runAnalyzer(tdsAnalyzer, fixture).pdus) for (const k of p.fields.keys()) expect(known.has(k), k).toBe(true)
  })
})

describe('tds: fuzz', () => {
  it('never throws, keeps buffers under the caps', () => {
    const limits = {maxMessageBytes: 2048, maxMessagePackets: 8, maxPreloginOptions: 8}
    fc.assert(
      fc.property(fuzzScripts(fixture), fc.oneof(fc.constant(0), fc.constant(0), fc.integer({min: 1, max: 64})), (script, chunk) => {
        const pdus: Pdu[] = []
        const a = new TdsAnalyzer({emit: (p) => pdus.push(p), anomaly: () => {}}, limits)
        let maxCap = 0
        let maxPieces = 0
        for (const s of script) {
          const step = chunk === 0 ? s.data.length || 1 : chunk
          for (let i = 0; i < s.data.length; i += step) {
            a.data(s.dir, s.data.subarray(i, i + step))
            const st = a.stats()
            maxCap = Math.max(maxCap, st.capacity - 0)
            maxPieces = Math.max(maxPieces, st.pieces)
          }
        }
        a.end('toserver')
        a.end('toclient')
        // two framers (one TDS packet / TLS record each) + two messages
        expect(maxCap).toBeLessThanOrEqual(2 * (5 + 65536) + 2 * limits.maxMessageBytes)
        expect(maxPieces).toBeLessThanOrEqual(2 * 3 * limits.maxMessagePackets)
        expect(pdus.every((p) => p.end > p.start)).toBe(true)
        const bad = binarySpanMismatches(pdus, script, UCS2)
        if (bad.length > 0) expect(bad).toEqual([])
      }),
      {numRuns: fuzzRuns(10_000)},
    )
  })
})
