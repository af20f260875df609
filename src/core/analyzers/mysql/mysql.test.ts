import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {runAnalyzer, type ScriptStep} from '../harness.js'
import {fuzzRuns, loadHexFixture, splitInvariance} from '../line/testing.js'
import type {AnalyzerContext, Pdu} from '../types.js'
import {MYSQL_FIELDS, MysqlAnalyzer, detectMysql, makeMysqlAnalyzer, mysqlAnalyzer, parseLogin} from './index.js'
import {RecordFramer} from './records.js'
import {binarySpanMismatches, fuzzScripts, one} from './testing.js'

const fixture = loadHexFixture(new URL('./fixtures/benign_mysql_session.s0.hex', import.meta.url))

const cat = (...parts: (string | number[] | Uint8Array)[]): Uint8Array =>
  Uint8Array.from(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p)))))
const le32 = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff]
/** one MySQL packet: 3-byte length, sequence id, payload */
const pkt = (seq: number, payload: Uint8Array): Uint8Array => cat([payload.length & 0xff, (payload.length >> 8) & 0xff, payload.length >> 16, seq], payload)
const S = (seq: number, ...p: (string | number[] | Uint8Array)[]): ScriptStep => ({dir: 'toserver', data: pkt(seq, cat(...p))})
const C = (seq: number, ...p: (string | number[] | Uint8Array)[]): ScriptStep => ({dir: 'toclient', data: pkt(seq, cat(...p))})

// HandshakeV10 from MySQL 8.0 with caching_sha2_password
const CAPS = 0x000fa7ff | 0x200000 // includes PROTOCOL_41, SECURE_CONNECTION, PLUGIN_AUTH, CONNECT_WITH_DB, SSL
const GREETING = C(0, [10], '8.0.36\0', le32(77), '12345678', [0], [CAPS & 0xff, (CAPS >> 8) & 0xff], [0xff, 2, 0], [(CAPS >> 16) & 0xff, CAPS >>> 24], [21], new Uint8Array(10), 'abcdefghijkl\0', 'caching_sha2_password\0')
const CL_CAPS = 0x200 | 0x8000 | 0x8 | 0x80000 | 0x1
const login = (user: string, extra: (string | number[] | Uint8Array)[] = [], caps = CL_CAPS): ScriptStep =>
  S(1, le32(caps), le32(16777216), [45], new Uint8Array(23), user, ...extra)
const OK = (seq: number): ScriptStep => C(seq, [0, 0, 0, 2, 0, 0, 0])
const ERR = (seq: number, code: number, msg: string): ScriptStep => C(seq, [0xff, code & 0xff, code >> 8], '#28000', msg)
const query = (q: string): ScriptStep => S(0, [3], q)
const runAll = (script: ScriptStep[], limits = {}) => runAnalyzer(makeMysqlAnalyzer(limits), script)

describe('mysql: fixture benign_mysql_session', () => {
  it('every split and 1-byte chunks give the same PDUs', () => {
    expect(splitInvariance(mysqlAnalyzer, fixture)).toEqual([])
  })

  it('spans map onto the stream bytes', () => {
    const r = runAnalyzer(mysqlAnalyzer, fixture)
    expect(binarySpanMismatches(r.pdus, fixture)).toEqual([])
  })

  it('greeting, login, queries and responses', () => {
    const r = runAnalyzer(mysqlAnalyzer, fixture)
    expect(r.anomalies).toEqual([])
    const g = r.pdus[0]!
    expect(g.kind).toBe('greeting')
    expect(one(g, 'mysql.server_version')).toEqual({v: '5.0.54', off: 5, len: 6})
    expect(one(g, 'mysql.protocol_version').v).toBe(10)
    const l = r.pdus.find((p) => p.kind === 'login')!
    expect(one(l, 'mysql.user')).toEqual({v: 'tfoerste', off: 36, len: 8})
    expect(one(l, 'mysql.auth_response.length').v).toBe(20)
    expect(one(l, 'mysql.login.malformed').v).toBe(0)
    expect(one(l, 'mysql.login.user_unterminated').v).toBe(0)
    const queries = r.pdus.filter((p) => p.kind === 'command' && one(p, 'mysql.command').v === 'COM_QUERY').map((p) => one(p, 'mysql.query').v)
    expect(queries).toContain('show databases')
    expect(queries).toContain('insert into foo (animal, name) values ("dog", "Goofy")')
    expect(queries.length).toBe(14)
    const initDb = r.pdus.find((p) => p.fields.get('mysql.command.code') !== undefined && one(p, 'mysql.command').v === 'COM_INIT_DB')!
    expect(one(initDb, 'mysql.database').v).toBe('test')
    expect(r.pdus.filter((p) => p.kind === 'ok').length).toBe(9)
    expect(r.pdus.every((p) => one(p, 'mysql.auth_failures').v === 0)).toBe(true)
    // every byte of both directions is in exactly one PDU
    for (const dir of ['toserver', 'toclient'] as const) {
      const ps = r.pdus.filter((p) => p.dir === dir)
      for (let i = 1; i < ps.length; i++) expect(ps[i]!.start).toBe(ps[i - 1]!.end)
    }
  })
})

describe('mysql: hand-written sessions', () => {
  it('MySQL 8 greeting, login with database and plugin, CVE-2016-6662-class query', () => {
    const q = "SET GLOBAL general_log_file = '/var/lib/mysql/my.cnf'"
    const script = [GREETING, login('root\0', [[20], new Uint8Array(20), 'mysql\0', 'caching_sha2_password\0']), OK(2), query(q), OK(1)]
    const r = runAll(script)
    expect(r.anomalies).toEqual([])
    expect(binarySpanMismatches(r.pdus, script)).toEqual([])
    expect(one(r.pdus[0], 'mysql.auth_plugin').v).toBe('caching_sha2_password')
    expect(one(r.pdus[0], 'mysql.connection_id').v).toBe(77)
    const l = r.pdus[1]!
    expect(one(l, 'mysql.user').v).toBe('root')
    expect(one(l, 'mysql.database').v).toBe('mysql')
    expect(one(l, 'mysql.auth_plugin').v).toBe('caching_sha2_password')
    const c = r.pdus.find((p) => p.kind === 'command')!
    expect(one(c, 'mysql.command').v).toBe('COM_QUERY')
    expect(one(c, 'mysql.query')).toEqual({v: q, off: c.start + 5, len: q.length})
    expect(one(c, 'mysql.query.length').v).toBe(q.length)
    expect(c.start).toBe(l.end)
  })

  it('user name without NUL: user_unterminated and malformed (CVE-2006-1516 class)', () => {
    const r = runAll([GREETING, login('A'.repeat(300))])
    const l = r.pdus[1]!
    expect(one(l, 'mysql.login.user_unterminated').v).toBe(1)
    expect(one(l, 'mysql.login.malformed').v).toBe(1)
    expect(one(l, 'mysql.user.length').v).toBe(300)
    expect(r.anomalies.map((a) => a.event)).toEqual(['mysql.login_malformed'])
  })

  it('auth-response length byte beyond the packet: declared vs available', () => {
    const r = runAll([GREETING, login('bob\0', [[200], 'short'])])
    const l = r.pdus[1]!
    expect(one(l, 'mysql.auth_response.length').v).toBe(200)
    expect(one(l, 'mysql.auth_response.available').v).toBe(5)
    expect(one(l, 'mysql.login.malformed').v).toBe(1)
    expect(one(l, 'mysql.login.user_unterminated').v).toBe(0)
    expect(r.anomalies[0]!.event).toBe('mysql.login_malformed')
    expect(parseLogin(pkt(1, cat(le32(CL_CAPS), le32(0), [8], new Uint8Array(23), 'x\0', [3], 'abc'))).malformed).toBe(false)
  })

  it('failed logins are counted per flow (COM_CHANGE_USER retries, CVE-2012-2122 class)', () => {
    const script: ScriptStep[] = [GREETING, login('root\0', [[20], new Uint8Array(20)]), ERR(2, 1045, 'Access denied')]
    for (let i = 0; i < 5; i++) script.push(S(0, [0x11], 'root\0', [20], new Uint8Array(20), 'mysql\0'), ERR(1, 1045, 'Access denied'))
    script.push(S(0, [0x11], 'root\0', [20], new Uint8Array(20), '\0'), OK(1), query('select 1'))
    const r = runAll(script)
    const errs = r.pdus.filter((p) => p.kind === 'error')
    expect(errs.map((p) => one(p, 'mysql.auth_failures').v)).toEqual([1, 2, 3, 4, 5, 6])
    expect(one(errs[0], 'mysql.error_code').v).toBe(1045)
    expect(one(errs[0], 'mysql.sql_state').v).toBe('28000')
    expect(one(errs[0], 'mysql.error_message').v).toBe('Access denied')
    const changes = r.pdus.filter((p) => p.kind === 'command' && one(p, 'mysql.command').v === 'COM_CHANGE_USER')
    expect(changes.length).toBe(6)
    expect(one(changes[0], 'mysql.user').v).toBe('root')
    const last = r.pdus[r.pdus.length - 1]!
    expect(one(last, 'mysql.query').v).toBe('select 1')
    expect(one(last, 'mysql.auth_failures').v).toBe(6)
    expect(binarySpanMismatches(r.pdus, script)).toEqual([])
  })

  it('SSLRequest: emitted, then both directions stop', () => {
    const ssl = S(1, le32(CL_CAPS | 0x800), le32(16777216), [45], new Uint8Array(23))
    const r = runAll([GREETING, ssl, {dir: 'toserver', data: cat([0x16, 3, 1, 0, 5], 'hello')}, {dir: 'toclient', data: cat([0x16, 3, 3, 0, 2, 1, 2])}])
    expect(r.pdus.map((p) => p.kind)).toEqual(['greeting', 'ssl_request'])
    expect(one(r.pdus[1], 'mysql.ssl_request').v).toBe(1)
    expect(r.anomalies).toEqual([])
  })

  it('packet over maxPacketBytes: truncated query PDU with the full length, then in sync again', () => {
    const big = 'SELECT ' + 'x'.repeat(5000)
    const script = [GREETING, login('u\0', [[0]]), OK(2), query(big), query('select 2')]
    const r = runAll(script, {maxPacketBytes: 1024})
    const cmds = r.pdus.filter((p) => p.kind === 'command')
    expect(one(cmds[0], 'mysql.query.truncated').v).toBe(1)
    expect(one(cmds[0], 'mysql.query.length').v).toBe(big.length)
    expect((one(cmds[0], 'mysql.query').v as string).length).toBe(1024 - 5)
    expect(cmds[0]!.end - cmds[0]!.start).toBe(big.length + 5)
    expect(one(cmds[1], 'mysql.query').v).toBe('select 2')
    expect(r.anomalies.map((a) => a.event)).toEqual(['mysql.packet_too_long'])
    expect(splitInvariance(makeMysqlAnalyzer({maxPacketBytes: 1024}), script, 97)).toEqual([])
  })

  it('LOCAL INFILE request and unknown command are flagged', () => {
    const r = runAll([GREETING, login('u\0', [[0]]), OK(2), query('LOAD DATA LOCAL INFILE "x" INTO TABLE t'), C(1, [0xfb], '/etc/passwd'), S(0, [0x7a])])
    const li = r.pdus.find((p) => p.kind === 'local_infile')!
    expect(one(li, 'mysql.local_infile').v).toBe('/etc/passwd')
    const unk = r.pdus[r.pdus.length - 1]!
    expect(one(unk, 'mysql.command').v).toBe('COM_0x7a')
    expect(r.anomalies.map((a) => a.event)).toEqual(['mysql.unknown_command'])
  })

  it('pendingFrom holds a partial packet; a gap inside one stops the direction with an anomaly', () => {
    const pdus: Pdu[] = []
    const anomalies: string[] = []
    const ctx: AnalyzerContext = {emit: (p) => pdus.push(p), anomaly: (a) => anomalies.push(a.event)}
    const a = new MysqlAnalyzer(ctx)
    a.data('toclient', GREETING.data)
    expect(a.pendingFrom('toclient')).toBe(-1)
    const q = query('select 1').data
    a.data('toserver', q.subarray(0, 6))
    expect(a.pendingFrom('toserver')).toBe(0)
    a.gap('toserver', 3)
    expect(anomalies).toEqual(['mysql.gap'])
    expect(a.pendingFrom('toserver')).toBe(-1)
    a.data('toserver', query('select 2').data)
    expect(pdus.length).toBe(1)
    a.end('toclient')
    a.data('toclient', OK(1).data)
    expect(pdus.length).toBe(1)
  })

  it('end of stream inside a packet: anomaly', () => {
    const r = runAll([GREETING, {dir: 'toserver', data: query('select 1').data.subarray(0, 7)}])
    expect(r.anomalies.map((a) => a.event)).toEqual(['mysql.truncated_packet'])
  })
})

describe('mysql: detect and fields', () => {
  it('detects the greeting toclient, not other bytes', () => {
    expect(detectMysql('toclient', fixture[0]!.data)).toBe(true)
    expect(detectMysql('toclient', GREETING.data.subarray(0, 64))).toBe(true)
    expect(detectMysql('toclient', GREETING.data.subarray(0, 9))).toBe(true)
    expect(detectMysql('toserver', fixture[0]!.data)).toBe(false)
    expect(detectMysql('toclient', Buffer.from('220 mail.example ESMTP\r\n'))).toBe(false)
    expect(detectMysql('toclient', Uint8Array.from([0x34, 0, 0, 0, 10, 0x01, 0x02]))).toBe(false)
    expect(detectMysql('toclient', new Uint8Array(0))).toBe(false)
  })

  it('every emitted field is documented', () => {
    const known = new Set(MYSQL_FIELDS.map((f) => f.name))
    const r = runAnalyzer(mysqlAnalyzer, fixture)
    for (const p of r.pdus) for (const k of p.fields.keys()) expect(known.has(k), k).toBe(true)
  })
})

describe('mysql: fuzz', () => {
  it('never throws, keeps buffers under the cap, PDUs well-formed', () => {
    const cap = 512
    fc.assert(
      fc.property(fuzzScripts(fixture), fc.oneof(fc.constant(0), fc.constant(0), fc.integer({min: 1, max: 64})), (script, chunk) => {
        const pdus: Pdu[] = []
        const a = new MysqlAnalyzer({emit: (p) => pdus.push(p), anomaly: () => {}}, {maxPacketBytes: cap})
        let maxCap = 0
        for (const s of script) {
          const step = chunk === 0 ? s.data.length || 1 : chunk
          for (let i = 0; i < s.data.length; i += step) {
            a.data(s.dir, s.data.subarray(i, i + step))
            maxCap = Math.max(maxCap, a.stats().capacity)
          }
        }
        expect(maxCap).toBeLessThanOrEqual(2 * cap)
        a.end('toserver')
        a.end('toclient')
        expect(pdus.every((p) => p.end > p.start)).toBe(true)
        const bad = binarySpanMismatches(pdus, script)
        if (bad.length > 0) expect(bad).toEqual([])
      }),
      {numRuns: fuzzRuns(10_000)},
    )
  })

  it('framer: random record lengths in random splits give the same records', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({min: 0, max: 300}), {maxLength: 10}), fc.array(fc.nat(), {maxLength: 10}), (lens, cuts) => {
        const bytes = cat(...lens.map((n, i) => pkt(i & 0xff, new Uint8Array(n).fill(i))))
        const collect = (parts: Uint8Array[]): string[] => {
          const out: string[] = []
          const fr = new RecordFramer(4, 128, {
            recordLength: (h, o) => 4 + (h[o]! | (h[o + 1]! << 8) | (h[o + 2]! << 16)),
            onRecord: (rec, start, declared, truncated) => out.push(`${start}:${declared}:${truncated}:${Buffer.from(rec).toString('hex')}`),
            onBadHeader: () => {},
            onLost: () => {},
          })
          for (const p of parts) fr.data(p)
          expect(fr.held()).toBeLessThanOrEqual(128)
          return out
        }
        const pos = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((x, y) => x - y)
        const parts: Uint8Array[] = []
        let prev = 0
        for (const c of pos) {
          parts.push(bytes.subarray(prev, c))
          prev = c
        }
        parts.push(bytes.subarray(prev))
        const whole = collect([bytes])
        expect(whole.length).toBe(lens.length)
        expect(collect(parts)).toEqual(whole)
      }),
      {numRuns: fuzzRuns(500)},
    )
  })
})
