import {deflateSync} from 'node:zlib'
import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {runAnalyzer, type ScriptStep} from '../harness.js'
import {fuzzRuns, loadHexFixture, splitInvariance} from '../line/testing.js'
import type {AnalyzerContext, Pdu} from '../types.js'
import {MYSQL_FIELDS, MysqlAnalyzer, detectMysql, makeMysqlAnalyzer, mysqlAnalyzer, parseLogin} from './index.js'
import {RecordFramer} from './records.js'
import {AuthHistory} from './analyzer.js'
import {SharedScope} from '../scope.js'
import {binarySpanMismatches, feedMaxCapacity, fuzzScripts, one} from './testing.js'

const fixture = loadHexFixture(new URL('./fixtures/benign_mysql_session.s0.hex', import.meta.url))
/** MariaDB 10.11 and its client with --compress (see the file's header) */
const mariadbCompressed = loadHexFixture(new URL('./fixtures/mariadb_compressed_session.s0.hex', import.meta.url))

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

// compressed protocol: 3-byte compressed length, sequence id, 3-byte uncompressed length (0: payload as is)
const le24 = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff]
const zpkt = (seq: number, inner: Uint8Array, form: 'zlib' | 'raw' = 'zlib'): Uint8Array => {
  const body = form === 'zlib' ? deflateSync(inner) : inner
  return cat(le24(body.length), [seq], le24(form === 'zlib' ? inner.length : 0), body)
}
const ZS = (seq: number, inner: Uint8Array, form: 'zlib' | 'raw' = 'zlib'): ScriptStep => ({dir: 'toserver', data: zpkt(seq, inner, form)})
const ZC = (seq: number, inner: Uint8Array, form: 'zlib' | 'raw' = 'zlib'): ScriptStep => ({dir: 'toclient', data: zpkt(seq, inner, form)})
const CL_COMPRESS = CL_CAPS | 0x20
/** greeting (CLIENT_COMPRESS offered), login asking for it, OK: compressed packets follow */
const Z_SESSION = [GREETING, login('root\0', [[20], new Uint8Array(20), 'mysql\0', 'caching_sha2_password\0'], CL_COMPRESS), OK(2)]
const Q6662 = "SET GLOBAL general_log_file = '/var/lib/mysql/my.cnf'"
const OK_BODY = (seq: number): Uint8Array => OK(seq).data

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

// a compressed session: zlib and as-is payloads, a packet straddling two compressed packets
const zInner = query(Q6662).data
const zFixture: ScriptStep[] = [
  ...Z_SESSION, ZS(0, zInner), ZC(0, OK_BODY(1), 'raw'), ZS(0, zInner.subarray(0, 30)), ZS(1, zInner.subarray(30), 'raw'),
  ZC(0, cat(C(1, [1]).data, C(2, [3], 'def').data, C(3, [0xfe, 0, 0, 2, 0]).data, C(4, [1], '1').data, C(5, [0xfe, 0, 0, 2, 0]).data)),
]

describe('mysql: compressed protocol', () => {
  it('compressed session: every split and 1-byte chunks give the same PDUs, spans map onto the stream', () => {
    expect(splitInvariance(mysqlAnalyzer, zFixture)).toEqual([])
    const r = runAnalyzer(mysqlAnalyzer, zFixture)
    expect(r.anomalies).toEqual([])
    expect(r.pdus.map((p) => p.kind)).toEqual(['greeting', 'login', 'ok', 'command', 'ok', 'command', 'resultset', 'row', 'eof', 'row', 'eof'])
    expect(binarySpanMismatches(r.pdus, zFixture)).toEqual([])
  })

  it('real MariaDB --compress session: every split gives the same PDUs; queries, zlib result sets and the error parsed', () => {
    expect(splitInvariance(mysqlAnalyzer, mariadbCompressed)).toEqual([])
    const r = runAnalyzer(mysqlAnalyzer, mariadbCompressed)
    expect(r.anomalies).toEqual([])
    expect(binarySpanMismatches(r.pdus, mariadbCompressed)).toEqual([])
    const cmds = r.pdus.filter((p) => p.kind === 'command')
    expect(cmds.map((p) => one(p, 'mysql.command').v)).toEqual(['COM_QUERY', 'COM_QUERY', 'COM_QUERY', 'COM_QUIT'])
    expect(cmds.slice(0, 3).map((p) => one(p, 'mysql.query').v)).toEqual(['SELECT 1', "SELECT REPEAT('abc', 500) AS big", Q6662])
    // the client sent its short statements as is (uncompressed length 0): spans kept
    expect(one(cmds[2], 'mysql.query').off).toBe(cmds[2]!.start + 7 + 5)
    expect(r.pdus.filter((p) => p.dir === 'toclient').map((p) => p.kind)).toEqual([
      'greeting', 'ok', 'resultset', 'row', 'eof', 'row', 'eof', 'resultset', 'row', 'eof', 'row', 'eof', 'error',
    ])
    expect(one(r.pdus.find((p) => p.kind === 'error'), 'mysql.error_code').v).toBe(1231)
  })

  it('CLIENT_COMPRESS on both sides: zlib-wrapped query and answer give the plain PDUs, without spans', () => {
    const q = ZS(0, query(Q6662).data)
    const script = [...Z_SESSION, q, ZC(0, OK_BODY(1))]
    const r = runAll(script)
    expect(r.anomalies).toEqual([])
    expect(r.pdus.map((p) => p.kind)).toEqual(['greeting', 'login', 'ok', 'command', 'ok'])
    const c = r.pdus[3]!
    const before = Z_SESSION.filter((s) => s.dir === 'toserver').reduce((n, s) => n + s.data.length, 0)
    expect(one(c, 'mysql.command').v).toBe('COM_QUERY')
    expect(one(c, 'mysql.query')).toEqual({v: Q6662})
    expect(one(c, 'mysql.query.length').v).toBe(Q6662.length)
    expect(one(c, 'mysql.compressed').v).toBe(1)
    expect([c.start, c.end]).toEqual([before, before + q.data.length])
    expect(r.pdus[2]!.fields.has('mysql.compressed')).toBe(false)
    expect(one(r.pdus[4], 'mysql.response_to').v).toBe('COM_QUERY')
    expect(binarySpanMismatches(r.pdus, script)).toEqual([])
  })

  it('uncompressed payloads (length 0) keep their stream spans', () => {
    const script = [...Z_SESSION, ZS(0, query(Q6662).data, 'raw'), ZC(0, ERR(1, 1227, 'Access denied; you need SUPER').data, 'raw')]
    const r = runAll(script)
    expect(r.anomalies).toEqual([])
    const c = r.pdus[3]!
    expect(one(c, 'mysql.query')).toEqual({v: Q6662, off: c.start + 7 + 5, len: Q6662.length})
    const e = r.pdus[4]!
    expect(e.kind).toBe('error')
    expect(one(e, 'mysql.error_message').v).toBe('Access denied; you need SUPER')
    expect(one(e, 'mysql.error_message').off).toBeDefined()
    expect(binarySpanMismatches(r.pdus, script)).toEqual([])
  })

  it('a packet split over two compressed packets, and two packets in one', () => {
    const inner = query(Q6662).data
    const a = zpkt(0, inner.subarray(0, 20))
    const b = zpkt(1, inner.subarray(20), 'raw')
    const two = zpkt(2, cat(query('select 1').data, query('select 2').data))
    const script: ScriptStep[] = [...Z_SESSION, {dir: 'toserver', data: a}, {dir: 'toserver', data: b}, {dir: 'toserver', data: two}]
    const r = runAll(script)
    expect(r.anomalies).toEqual([])
    const cmds = r.pdus.filter((p) => p.kind === 'command')
    expect(cmds.map((p) => one(p, 'mysql.query'))).toEqual([{v: Q6662}, {v: 'select 1'}, {v: 'select 2'}])
    const base = cmds[0]!.start
    expect(cmds.map((p) => [p.start - base, p.end - base])).toEqual([
      [0, a.length + b.length],
      [a.length + b.length, a.length + b.length + two.length],
      [a.length + b.length, a.length + b.length + two.length],
    ])
    expect(splitInvariance(mysqlAnalyzer, script)).toEqual([])
  })

  it('the switch may fall inside one data() call; every split gives the same PDUs', () => {
    // the server's OK and a compressed packet in one chunk (and every other cut of it)
    const okAndMore: ScriptStep = {dir: 'toclient', data: cat(OK(2).data, zpkt(0, ERR(0, 1040, 'Too many connections').data))}
    const script: ScriptStep[] = [GREETING, login('u\0', [[0]], CL_COMPRESS), okAndMore, ZS(0, query(Q6662).data), ZC(0, OK_BODY(1), 'raw'), ZS(0, query('select 1').data, 'raw')]
    const r = runAll(script)
    expect(r.anomalies).toEqual([])
    expect(r.pdus.map((p) => p.kind)).toEqual(['greeting', 'login', 'ok', 'error', 'command', 'ok', 'command'])
    expect(one(r.pdus[3], 'mysql.error_code').v).toBe(1040)
    expect(splitInvariance(mysqlAnalyzer, script)).toEqual([])
  })

  it('only one side asking for compression: plain packets go on', () => {
    expect(runAll([GREETING, login('u\0', [[0]]), OK(2), query('select 1')]).pdus[3]!.fields.has('mysql.compressed')).toBe(false)
    const noServer = C(0, [10], '5.0.0\0', le32(1), '12345678', [0], [0xdf, 0xf7])
    const r = runAll([noServer, login('u\0', [[0]], CL_COMPRESS), OK(2), query('select 1')])
    expect(one(r.pdus[3], 'mysql.query').v).toBe('select 1')
  })

  it('failed COM_CHANGE_USER logins are still counted', () => {
    const cu = S(0, [0x11], 'root\0', [20], new Uint8Array(20), 'mysql\0').data
    const script: ScriptStep[] = [...Z_SESSION]
    for (let i = 0; i < 3; i++) script.push(ZS(0, cu), ZC(0, ERR(1, 1045, 'Access denied').data))
    const r = runAll(script)
    expect(r.pdus.filter((p) => p.kind === 'error').map((p) => one(p, 'mysql.auth_failures').v)).toEqual([1, 2, 3])
  })

  it('corrupt zlib, a bomb, a short stream and an oversized declaration: anomaly, then the flow is not parsed', () => {
    const hdr = (clen: number, ulen: number): number[] => [...le24(clen), 0, ...le24(ulen)]
    const bomb = deflateSync(new Uint8Array(1 << 20))
    const short = deflateSync(query('select 1').data)
    const bad: [ScriptStep, string, string | undefined][] = [
      [{dir: 'toserver', data: cat(hdr(10, 50), 'not zlib!!')}, 'mysql.inflate_failed', 'corrupt'],
      [{dir: 'toserver', data: cat(hdr(bomb.length, 100), bomb)}, 'mysql.inflate_failed', 'longer_than_declared'],
      [{dir: 'toserver', data: cat(hdr(short.length, 200), short)}, 'mysql.inflate_failed', 'shorter_than_declared'],
      [{dir: 'toserver', data: cat(hdr(0, 20))}, 'mysql.inflate_failed', 'corrupt'],
      // the protocol's largest declaration is inflated (and found short) by default...
      [{dir: 'toserver', data: cat(hdr(bomb.length, 0xffffff), bomb)}, 'mysql.inflate_failed', 'shorter_than_declared'],
      // ...and refused under a smaller maxInflateBytes
      [{dir: 'toserver', data: cat(hdr(bomb.length, (1 << 20) + 1), bomb)}, 'mysql.inflate_too_large', undefined],
    ]
    for (const [step, event, reason] of bad) {
      const script = [...Z_SESSION, step, ZS(0, query(Q6662).data), ZC(0, OK_BODY(1))]
      const r = runAll(script, reason === undefined ? {maxInflateBytes: 1 << 20} : {})
      expect(r.anomalies.map((a) => a.event)).toEqual([event])
      expect(r.anomalies[0]!.detail?.['reason']).toBe(reason)
      expect(r.pdus.map((p) => p.kind)).toEqual(['greeting', 'login', 'ok'])
      expect(splitInvariance(makeMysqlAnalyzer(reason === undefined ? {maxInflateBytes: 1 << 20} : {}), script, 5)).toEqual([])
    }
  })

  it('inflate budget: bombs past allowance + ratio x compressed bytes stop the flow before inflating; honest traffic stays under it', () => {
    const limits = {inflateAllowanceBytes: 1 << 20, inflateRatio: 100}
    // each: a 200 KB query of one repeated byte, a few hundred bytes compressed (~1000:1)
    const inner = query('SELECT ' + 'x'.repeat(200_000)).data
    const bombQuery = ZS(0, inner)
    // the n-th fits while n x inflated <= allowance + ratio x n x compressed
    const fit = Math.floor(limits.inflateAllowanceBytes / (inner.length - limits.inflateRatio * bombQuery.data.length))
    expect(fit).toBeGreaterThan(3)
    const script = [...Z_SESSION, ...Array.from({length: fit + 2}, () => bombQuery), ZS(0, query(Q6662).data)]
    const r = runAll(script, limits)
    expect(r.anomalies.map((a) => a.event)).toEqual(['mysql.inflate_budget'])
    // the statement after the bombs is never parsed
    expect(r.pdus.filter((p) => p.kind === 'command')).toHaveLength(fit)
    expect(splitInvariance(makeMysqlAnalyzer(limits), script, 997)).toEqual([])
    // ordinary statements compress a few times at most: far under the budget
    const honest = [...Z_SESSION, ...Array.from({length: 200}, (_, i) => ZS(0, query(`SELECT id, name FROM users WHERE id = ${i} AND name LIKE '%${i}%'`).data))]
    const h = runAll(honest, {inflateAllowanceBytes: 0, inflateRatio: 20})
    expect(h.anomalies).toEqual([])
    expect(h.pdus.filter((p) => p.kind === 'command')).toHaveLength(200)
  })

  it('engine inflate budget: the flows of one engine together inflate at most its rate; packet time refills it', () => {
    const limits = {engineInflateBytesPerSecond: 500_000, engineInflateBurstBytes: 500_000}
    let now = 1_700_000_000_000_000
    const scope = new SharedScope(() => now)
    // each flow: two 200 KB statements (a few hundred bytes compressed each, under every per-flow budget)
    const inner = query('SELECT ' + 'x'.repeat(200_000)).data
    const script = [...Z_SESSION, ZS(0, inner), ZS(1, inner), ZS(2, query(Q6662).data)]
    const flow = (engine?: SharedScope) => runAnalyzer(makeMysqlAnalyzer(limits), script, {engine})
    const commands = (r: ReturnType<typeof flow>) => r.pdus.filter((p) => p.kind === 'command').length
    const first = flow(scope)
    expect(first.anomalies).toEqual([])
    expect(commands(first)).toBe(3)
    // the second flow finds 100 KB left: its first statement stops it, nothing after is parsed
    const second = flow(scope)
    expect(second.anomalies.map((a) => [a.event, a.detail?.['scope']])).toEqual([['mysql.inflate_budget', 'engine']])
    expect(commands(second)).toBe(0)
    // a second of packet time later the budget is full again
    now += 1_000_000
    const third = flow(scope)
    expect(third.anomalies).toEqual([])
    expect(commands(third)).toBe(3)
    // another engine (or none: replay of one flow) has its own
    expect(flow(new SharedScope(() => now)).anomalies).toEqual([])
    expect(flow().anomalies).toEqual([])
  })

  it('a compressed packet over maxCompressedBytes: unwrapped from its first part, then in sync again', () => {
    const big = query('SELECT ' + 'x'.repeat(3000)).data
    const limits = {maxCompressedBytes: 512, maxPacketBytes: 200}
    for (const form of ['zlib', 'raw'] as const) {
      // zlib output of 3000 x is tiny: pad the zlib form with incompressible bytes
      let x = 1
      const noise = Array.from({length: 3000}, () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 16) & 0xff)
      const inner = form === 'raw' ? big : query('SELECT ' + Buffer.from(noise).toString('latin1')).data
      const script = [...Z_SESSION, ZS(0, inner, form), ZS(0, query('select 2').data)]
      const r = runAll(script, limits)
      const cmds = r.pdus.filter((p) => p.kind === 'command')
      expect(cmds.length).toBe(2)
      expect(one(cmds[0], 'mysql.query.truncated').v).toBe(1)
      expect(one(cmds[0], 'mysql.query.length').v).toBe(inner.length - 5)
      expect(one(cmds[1], 'mysql.query').v).toBe('select 2')
      expect(r.anomalies.map((a) => a.event)).toEqual(['mysql.compressed_too_long', 'mysql.packet_too_long'])
      expect(splitInvariance(makeMysqlAnalyzer(limits), script, 41)).toEqual([])
    }
  })

  it('pendingFrom points at the compressed packet where the unfinished packet began', () => {
    const pdus: Pdu[] = []
    const a = new MysqlAnalyzer({emit: (p) => pdus.push(p), anomaly: () => {}})
    for (const s of Z_SESSION) a.data(s.dir, s.data)
    const at = a.pendingFrom('toserver')
    expect(at).toBe(-1)
    const inner = query(Q6662).data
    const first = zpkt(0, inner.subarray(0, 20))
    const start = Z_SESSION.filter((s) => s.dir === 'toserver').reduce((n, s) => n + s.data.length, 0)
    a.data('toserver', first.subarray(0, 3))
    expect(a.pendingFrom('toserver')).toBe(start)
    a.data('toserver', first.subarray(3))
    expect(a.pendingFrom('toserver')).toBe(start)
    a.data('toserver', zpkt(1, inner.subarray(20)).subarray(0, 9))
    expect(a.pendingFrom('toserver')).toBe(start)
    a.end('toserver')
    expect(pdus.filter((p) => p.kind === 'command')).toEqual([])
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
  for (const [name, fx] of [['plain fixture', fixture], ['compressed session', zFixture]] as const) {
    it(`never throws, keeps buffers under the cap, PDUs well-formed (${name})`, () => {
      const cap = 512
      fc.assert(
        fc.property(fuzzScripts(fx), fc.oneof(fc.constant(0), fc.constant(0), fc.integer({min: 1, max: 64})), (script, chunk) => {
          const pdus: Pdu[] = []
          const a = new MysqlAnalyzer({emit: (p) => pdus.push(p), anomaly: () => {}}, {maxPacketBytes: cap, maxCompressedBytes: cap})
          const maxCap = feedMaxCapacity(a, script, chunk)
          // a packet framer per direction, and a compressed-packet framer per direction once compressed
          expect(maxCap).toBeLessThanOrEqual(4 * cap)
          a.end('toserver')
          a.end('toclient')
          expect(pdus.every((p) => p.end > p.start)).toBe(true)
          const bad = binarySpanMismatches(pdus, script)
          if (bad.length > 0) expect(bad).toEqual([])
        }),
        {numRuns: fuzzRuns(name === 'plain fixture' ? 10_000 : 3_000)},
      )
    })
  }

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

describe('AuthHistory (failed logins across connections, CVE-2012-2122)', () => {
  it('counts per pair, forgets a pair idle for the window, keeps it while attempts go on, and is bounded (LRU)', () => {
    const h = new AuthHistory(3, 10e6)
    h.fail('a', 0)
    h.fail('a', 1e6)
    expect(h.attempt('a', 2e6)).toBe(2)
    expect(h.attempt('b', 2e6)).toBe(0)
    // attempts refresh the pair: 9 s later, then 9 s after that, still remembered
    expect(h.attempt('a', 11e6)).toBe(2)
    expect(h.attempt('a', 20e6)).toBe(2)
    // idle longer than the window: forgotten, and a new failure starts over
    expect(h.attempt('a', 31e6)).toBe(0)
    h.fail('a', 31e6)
    expect(h.attempt('a', 32e6)).toBe(1)
    // bounded: a fourth pair evicts the least recently used
    h.fail('b', 33e6)
    h.fail('c', 34e6)
    h.fail('d', 35e6)
    expect(h.size).toBe(3)
    expect(h.attempt('a', 36e6)).toBe(0)
    expect(h.attempt('d', 36e6)).toBe(1)
  })

  it('the analyzer reports the failures of earlier flows on the login (and none without the engine scope)', () => {
    let now = 0
    const scope = new SharedScope(() => now)
    const flow = {clientIp: '198.51.100.7', clientPort: 1, serverIp: '192.0.2.20', serverPort: 3306, transport: 'tcp' as const}
    const greeting = Buffer.from('4e0000000a352e352e32332d6c6f67002a000000616263646566676800fff72102000f001500000000000000000000696a6b6c6d6e6f7071727374006d7973716c5f6e61746976655f70617373776f726400', 'hex')
    const login = Buffer.from('5100000105a208000000000121000000000000000000000000000000000000000000000061646d696e001411111111111111111111111111111111111111116d7973716c5f6e61746976655f70617373776f726400', 'hex')
    const err = Buffer.from('0c000002ff1504233238303030782078', 'hex')
    const script: ScriptStep[] = [{dir: 'toclient', data: greeting}, {dir: 'toserver', data: login}, {dir: 'toclient', data: err}]
    const seen: unknown[] = []
    for (let i = 0; i < 3; i++) {
      now += 1e6
      const res = runAnalyzer(mysqlAnalyzer, script, {engine: scope, flow})
      seen.push(res.pdus.find((p) => p.kind === 'login')!.fields.get('mysql.source_auth_failures'))
    }
    expect(seen).toEqual([{v: 0}, {v: 1}, {v: 2}])
    const alone = runAnalyzer(mysqlAnalyzer, script)
    expect(alone.pdus.find((p) => p.kind === 'login')!.fields.has('mysql.source_auth_failures')).toBe(false)
  })
})
