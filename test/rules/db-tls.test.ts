/**
 * The database and TLS rule pack (rules/mssql, rules/mysql, rules/oracle, rules/tls): the rules
 * lint clean, pass their own samples, and - with EXTRA variants that are not in the samples
 * (other encodings, case, blanks, comments, splitting, descriptor placement, record sizes) -
 * the right rule fires through the real analyzer and the engine, while near misses stay quiet.
 * Also checked against the analyzers' capture extracts and the real captures.
 */
import {existsSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import {deflateSync} from 'node:zlib'
import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {runAnalyzer, type ScriptStep} from '../../src/core/analyzers/harness.js'
import {loadHexFixture} from '../../src/core/analyzers/line/testing.js'
import {factoryFor} from '../../src/core/analyzers/registry.js'
import {dtlsAnalyzer} from '../../src/core/analyzers/tls/index.js'
import {makeMysqlAnalyzer} from '../../src/core/analyzers/mysql/index.js'
import type {AnalyzerFactory} from '../../src/core/analyzers/types.js'
import {runReplay} from '../../src/core/engine/replay-run.js'
import {fieldsFor, testFactoryFor} from '../../src/core/rules/fields.js'
import {loadRules, RuleSet} from '../../src/core/rules/engine.js'
import {testRule} from '../../src/core/rules/sample-test.js'
import {anomalyPdu} from '../../src/core/protections/anomaly-fields.js'
import {SharedScope} from '../../src/core/analyzers/scope.js'

const RULE_DIRS = ['mssql', 'mysql', 'oracle', 'tls'].map((d) => fileURLToPath(new URL(`../../rules/${d}/`, import.meta.url)))
const PCAPS = fileURLToPath(new URL('../../../shared/corpus/pcaps/', import.meta.url))
const FUZZ_RUNS = Number(process.env.PATCHPOINT_FUZZ_RUNS ?? 50)

const {rules, errors} = loadRules(RULE_DIRS, {fieldsFor})
const set = new RuleSet(rules, {actionFor: () => 'fix'})

// ---- byte builders -----------------------------------------------------------------------------

type Part = string | number[] | Uint8Array
const cat = (...parts: Part[]): Uint8Array =>
  Uint8Array.from(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p)))))
const be16 = (n: number): number[] => [(n >> 8) & 0xff, n & 0xff]
const le16 = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff]
const le32 = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff]
const S = (...p: Part[]): ScriptStep => ({dir: 'toserver', data: cat(...p)})
const C = (...p: Part[]): ScriptStep => ({dir: 'toclient', data: cat(...p)})

// MySQL: 3-byte length, sequence id, payload
const my = (seq: number, ...p: Part[]): Uint8Array => {
  const body = cat(...p)
  return cat([body.length & 0xff, (body.length >> 8) & 0xff, body.length >> 16, seq], body)
}
const MY_GREETING = C(my(0, [10], '5.5.23-log\0', le32(42), 'abcdefgh', [0], le16(0xf7ff), [0x21], le16(2), le16(0x000f), [21], new Uint8Array(10), 'ijklmnopqrst\0', 'mysql_native_password\0'))
const MY_CAPS = 0x0000a205 | 0x80000
const myLogin = (user: string): ScriptStep => S(my(1, le32(MY_CAPS), le32(1 << 24), [0x21], new Uint8Array(23), user, [0, 20], new Uint8Array(20).fill(0x11), 'mysql_native_password\0'))
const MY_OK = (seq: number): ScriptStep => C(my(seq, [0, 0, 0, 2, 0, 0, 0]))
const MY_ERR = (seq: number): ScriptStep => C(my(seq, [0xff], le16(1045), '#28000', "Access denied for user 'root'@'h' (using password: YES)"))
const changeUser = (user: string, fill = 0x22): ScriptStep => S(my(0, [0x11], user, [0, 20], new Uint8Array(20).fill(fill), [0], le16(0x21), 'mysql_native_password\0'))
const query = (q: string): ScriptStep => S(my(0, [3], q))
const MY_SESSION = [MY_GREETING, myLogin('admin'), MY_OK(2)]
const mysqlQuery = (q: string): ScriptStep[] => [...MY_SESSION, query(q)]
// the compressed protocol (CLIENT_COMPRESS in the greeting and the login): after the login's OK
// each direction is a sequence of compressed packets: 3-byte compressed length, sequence id,
// 3-byte uncompressed length (0: the payload as is), then the payload (a zlib stream otherwise)
const le24 = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff]
const myz = (seq: number, inner: Uint8Array, form: 'zlib' | 'raw' = 'zlib'): Uint8Array => {
  const body = form === 'zlib' ? deflateSync(inner) : inner
  return cat(le24(body.length), [seq], le24(form === 'zlib' ? inner.length : 0), body)
}
const MYZ_SESSION = [MY_GREETING, S(my(1, le32(MY_CAPS | 0x20), le32(1 << 24), [0x21], new Uint8Array(23), 'admin', [0, 20], new Uint8Array(20).fill(0x11), 'mysql_native_password\0')), MY_OK(2)]
const zQuery = (q: string, form: 'zlib' | 'raw' = 'zlib'): ScriptStep[] => [...MYZ_SESSION, S(myz(0, query(q).data, form))]
const zSplitQuery = (q: string, at: number): ScriptStep[] => {
  const inner = query(q).data
  return [...MYZ_SESSION, S(myz(0, inner.subarray(0, at))), S(myz(1, inner.subarray(at)))]
}
const zChangeUser = (fill: number): ScriptStep => S(myz(0, changeUser('root', fill).data))
const zErr = (): ScriptStep => C(myz(0, MY_ERR(1).data))

// TDS: 8-byte header, PRELOGIN option table
const tds = (type: number, payload: Uint8Array): Uint8Array => cat([type, 1], be16(8 + payload.length), [0, 0, 1, 0], payload)
function prelogin(opts: [number, Part][]): Uint8Array {
  let off = opts.length * 5 + 1
  const table: Part[] = []
  const data: Part[] = []
  for (const [t, d] of opts) {
    const b = cat(d)
    table.push([t, ...be16(off), ...be16(b.length)])
    data.push(b)
    off += b.length
  }
  return cat(...table, [0xff], ...data)
}
const TDS_VER: Part = [8, 0, 0, 0xc2, 0, 0]

// TNS CONNECT (inline or deferred descriptor) and DATA
function tnsConnect(cd: string, deferred = cd.length > 230): ScriptStep[] {
  const fixed = (len: number, off: number): number[] => [
    ...be16(314), ...be16(300), 0, 0, ...be16(8192), ...be16(32767), 0x7f, 0x08, 0, 0, 0, 1, ...be16(len), ...be16(off), 0, 0, 0, 0, 0x41, 0x41,
    ...new Array<number>(24).fill(0),
  ]
  if (deferred) {
    const connect = cat(be16(58), [0, 0, 1, 0, 0, 0], fixed(cd.length, 58))
    const data = cat(be16(10 + cd.length), [0, 0, 6, 0, 0, 0], [0, 0], cd)
    return [S(connect), S(data)]
  }
  return [S(be16(58 + cd.length), [0, 0, 1, 0, 0, 0], fixed(cd.length, 58), cd)]
}
const desc = (connectData: string): string => `(DESCRIPTION=(ADDRESS=(PROTOCOL=TCP)(HOST=db1.example.com)(PORT=1521))(CONNECT_DATA=${connectData}))`

// TLS records
const rec = (type: number, body: Uint8Array): Uint8Array => cat([type, 3, 2], be16(body.length), body)
const CLIENT_HELLO = (() => {
  const exts = cat(be16(15), be16(1), [1])
  const ch = cat(be16(0x0302), new Uint8Array(32).fill(0x11), [0], be16(4), [0xc0, 0x14, 0, 0x2f], [1, 0], be16(exts.length), exts)
  return rec(22, cat([1, 0], be16(ch.length), ch))
})()
const SERVER_HELLO = (() => {
  const exts = cat(be16(15), be16(1), [1])
  const sh = cat(be16(0x0302), new Uint8Array(32).fill(0x22), [0], [0xc0, 0x14], [0], be16(exts.length), exts)
  return rec(22, cat([2, 0], be16(sh.length), sh, [0x0e, 0, 0, 0]))
})()
const heartbeat = (type: number, claim: number, payload: number, pad = 16): Uint8Array =>
  rec(24, cat([type], be16(claim), new Uint8Array(payload).fill(0x41), new Uint8Array(pad)))
const TLS_HS = [S(CLIENT_HELLO), C(SERVER_HELLO)]
const CCS = rec(20, Uint8Array.of(1))

// DTLS records (RFC 6347 §4.1): type, version 0xfefd (1.2) or 0xfeff (1.0), epoch, 48-bit sequence, length
const drec = (type: number, epoch: number, seq: number, body: Uint8Array, version = 0xfefd): Uint8Array =>
  cat([type], be16(version), be16(epoch), [0, 0], be16(seq >>> 16), be16(seq & 0xffff), be16(body.length), body)
const DTLS_CLIENT_HELLO = (() => {
  const exts = cat(be16(15), be16(1), [1])
  const ch = cat(be16(0xfefd), new Uint8Array(32).fill(0x11), [0], [0], be16(2), [0xc0, 0x2b], [1, 0], be16(exts.length), exts)
  const u24 = (n: number): number[] => [n >> 16, (n >> 8) & 0xff, n & 0xff]
  return drec(22, 0, 0, cat([1], u24(ch.length), be16(0), u24(0), u24(ch.length), ch))
})()
const dheartbeat = (type: number, claim: number, payload: number, pad = 16, epoch = 0, version = 0xfefd): Uint8Array =>
  drec(24, epoch, 1, cat([type], be16(claim), new Uint8Array(payload).fill(0x41), new Uint8Array(pad)), version)

// ---- evaluation ----------------------------------------------------------------------------------

/**
 * Ids of the rules of this pack that fire on the conversation: the analyzer's units, and its
 * anomaly reports judged as protocol 'anomaly' units (as the engine does).
 */
function fired(protocol: string, steps: readonly ScriptStep[], chunkSize?: number, over?: AnalyzerFactory): string[] {
  const factory = over ?? factoryFor(protocol)
  if (factory === undefined) throw new Error(`no analyzer for ${protocol}`)
  const res = runAnalyzer(factory, steps, {chunkSize})
  const ids = new Set<string>()
  for (const pdu of res.pdus) for (const m of set.evaluate(pdu)) ids.add(m.rule.id)
  for (const a of res.anomalies) {
    for (const m of set.evaluate(anomalyPdu(a))) ids.add(m.rule.id)
  }
  return [...ids].sort()
}

interface Case {
  name: string
  protocol: string
  steps: ScriptStep[]
  /** exactly the rules of this pack that must fire ([] = none) */
  expect: string[]
  /** datagram protocol: every step is one datagram, never re-chunked */
  datagram?: boolean
  /** the analyzer, when not the protocol's first (DTLS is protocol 'tls' over UDP) */
  factory?: AnalyzerFactory
}

const A = (n: number, ch = 'A'): string => ch.repeat(n)

const cases: Case[] = [
  // ---- SQL Server Resolution Service (Slammer)
  {name: 'ssrp: Slammer-shaped 376 bytes, non-printable name, no NUL', protocol: 'mssql-ssrp', datagram: true, steps: [S([4], new Uint8Array(96).fill(1), [0xdc, 0xc9, 0xb0, 0x42, 0xeb, 0x0e], new Uint8Array(272).fill(0x90))], expect: ['PP-2002-0649']},
  {name: 'ssrp: 33-byte name with NUL (one over the limit)', protocol: 'mssql-ssrp', datagram: true, steps: [S([4], A(33), [0])], expect: ['PP-2002-0649']},
  {name: 'ssrp: short name without NUL', protocol: 'mssql-ssrp', datagram: true, steps: [S([4], 'MSSQLSERVER')], expect: ['PP-2002-0649']},
  {name: 'ssrp: DAC request with an overlong name', protocol: 'mssql-ssrp', datagram: true, steps: [S([0x0f, 1], A(80), [0])], expect: ['PP-2002-0649']},
  {name: 'ssrp: ordinary 0x04 lookup', protocol: 'mssql-ssrp', datagram: true, steps: [S([4], 'SQLEXPRESS', [0])], expect: []},
  {name: 'ssrp: 32-byte name, the protocol maximum', protocol: 'mssql-ssrp', datagram: true, steps: [S([4], A(32), [0])], expect: []},
  {name: 'ssrp: server response listing instances', protocol: 'mssql-ssrp', datagram: true, steps: [S([3]), C([5], le16(62), 'ServerName;DB1;InstanceName;SQLEXPRESS;IsClustered;No;tcp;1433;;')], expect: []},
  // ---- TDS hello overflow
  {name: 'tds: 33-byte INSTOPT without NUL', protocol: 'tds', steps: [S(tds(0x12, prelogin([[0, TDS_VER], [1, [0]], [2, A(33, 'x')]])))], expect: ['PP-2002-1123']},
  {name: 'tds: PRELOGIN split over two TDS packets, long instance', protocol: 'tds', steps: (() => {
    const p = prelogin([[0, TDS_VER], [1, [0]], [2, cat(A(500), [0])], [3, [0, 0, 0, 1]]])
    const h = (st: number, part: Uint8Array): Uint8Array => cat([0x12, st], be16(8 + part.length), [0, 0, 1, 0], part)
    return [S(h(0, p.subarray(0, 100))), S(h(1, p.subarray(100)))]
  })(), expect: ['PP-2002-1123']},
  {name: 'tds: option table without its 0xFF terminator', protocol: 'tds', steps: [S(tds(0x12, cat([0], be16(5), be16(6), [1], be16(11), be16(1))))], expect: ['PP-2002-1123']},
  {name: 'tds: instance option of exactly 32 bytes', protocol: 'tds', steps: [S(tds(0x12, prelogin([[0, TDS_VER], [2, cat(A(32), [0])]])))], expect: []},
  {name: 'tds: prelogin without INSTOPT, MARS on', protocol: 'tds', steps: [S(tds(0x12, prelogin([[0, TDS_VER], [1, [2]], [4, [1]]])))], expect: []},
  // ---- MySQL
  {name: 'mysql auth bypass: three failed COM_CHANGE_USER, the fourth is held', protocol: 'mysql', steps: [...MY_SESSION, changeUser('root', 1), MY_ERR(1), changeUser('root', 2), MY_ERR(1), changeUser('root', 3), MY_ERR(1), changeUser('root', 4)], expect: ['PP-2012-2122']},
  {name: 'mysql auth bypass: two failures then success stays quiet', protocol: 'mysql', steps: [...MY_SESSION, changeUser('root', 1), MY_ERR(1), changeUser('root', 2), MY_ERR(1), changeUser('root', 3), MY_OK(2), query('SELECT 1')], expect: []},
  {name: 'mysql 2006-1516: login that ends inside the user name', protocol: 'mysql', steps: [MY_GREETING, S(my(1, le32(MY_CAPS), le32(1 << 24), [0x21], new Uint8Array(23), 'r'))], expect: ['PP-2006-1516']},
  {name: 'mysql 2006-1516: lenenc auth length beyond the packet (CLIENT_PLUGIN_AUTH_LENENC)', protocol: 'mysql', steps: [MY_GREETING, S(my(1, le32(MY_CAPS | 0x200000), le32(1 << 24), [0x21], new Uint8Array(23), 'root\0', [0xfc], le16(4000), 'abc'))], expect: ['PP-2006-1516']},
  {name: 'mysql 2006-1516: 4.0-style (pre-4.1) login is well formed', protocol: 'mysql', steps: [MY_GREETING, S(my(1, le16(0x0005), [0, 0, 0x40], 'olduser\0', 'abcdefgh'))], expect: []},
  {name: 'mysql 6662: general_log_file, tabs and newlines, upper case', protocol: 'mysql', steps: mysqlQuery("SET\tGLOBAL\n  GENERAL_LOG_FILE\n=\n'/VAR/LIB/MYSQL/MY.CNF'"), expect: ['PP-2016-6662']},
  {name: 'mysql 6662: version comment hides GLOBAL, # comment before the value', protocol: 'mysql', steps: mysqlQuery("SET /*!40101 GLOBAL */ slow_query_log_file = # x\n'/var/lib/mysql/my.cnf'"), expect: ['PP-2016-6662']},
  {name: 'mysql 6662: Windows my.ini with backslashes', protocol: 'mysql', steps: mysqlQuery("SET GLOBAL general_log_file='C:\\\\ProgramData\\\\MySQL\\\\MySQL Server 5.5\\\\my.ini'"), expect: ['PP-2016-6662']},
  {name: 'mysql 6662: value from a user variable', protocol: 'mysql', steps: mysqlQuery('SET GLOBAL general_log_file = @p'), expect: ['PP-2016-6662']},
  {name: 'mysql 6662: traversal out of the data directory', protocol: 'mysql', steps: mysqlQuery("SET GLOBAL general_log_file = 'logs/../../../etc/my.log'"), expect: ['PP-2016-6662']},
  {name: 'mysql 6662: PERSIST with backquoted name, := and adjacent literals', protocol: 'mysql', steps: mysqlQuery("SET PERSIST `general_log_file` := '/var/lib/mysql/.my' '.cnf'"), expect: ['PP-2016-6662']},
  {name: 'mysql 6662: INTO DUMPFILE a .cnf', protocol: 'mysql', steps: mysqlQuery("SELECT 0x5b6d7973716c645d INTO DUMPFILE '/var/lib/mysql/my.cnf'"), expect: ['PP-2016-6662']},
  {name: 'mysql 6662: COM_STMT_PREPARE of the statement', protocol: 'mysql', steps: [...MY_SESSION, S(my(0, [0x16], "SET GLOBAL general_log_file='/var/lib/mysql/my.cnf'"))], expect: ['PP-2016-6662']},
  {name: 'mysql 6662: compressed protocol, zlib payload', protocol: 'mysql', steps: zQuery("SET GLOBAL general_log_file = '/var/lib/mysql/my.cnf'"), expect: ['PP-2016-6662']},
  {name: 'mysql 6662: compressed protocol, payload sent uncompressed', protocol: 'mysql', steps: zQuery("SET GLOBAL general_log_file = '/var/lib/mysql/my.cnf'", 'raw'), expect: ['PP-2016-6662']},
  {name: 'mysql 6662: compressed protocol, statement split over two compressed packets', protocol: 'mysql', steps: zSplitQuery("SET GLOBAL general_log_file = '/var/lib/mysql/my.cnf'", 25), expect: ['PP-2016-6662']},
  {name: 'mysql 6662: compressed protocol, a benign SELECT', protocol: 'mysql', steps: [...zQuery('SELECT @@general_log_file, @@slow_query_log_file'), C(myz(0, cat(my(1, [2]), my(2, 'def'))))], expect: []},
  {name: 'mysql auth bypass: compressed protocol, three failed COM_CHANGE_USER, the fourth is held', protocol: 'mysql', steps: [...MYZ_SESSION, zChangeUser(1), zErr(), zChangeUser(2), zErr(), zChangeUser(3), zErr(), zChangeUser(4)], expect: ['PP-2012-2122']},
  {name: 'mysql 6662: a log name that merely contains cnf', protocol: 'mysql', steps: mysqlQuery("SET GLOBAL general_log_file = '/var/log/mysql/cnf-changes.log'"), expect: []},
  {name: 'mysql 6662: the statement quoted as data in an INSERT', protocol: 'mysql', steps: mysqlQuery("INSERT INTO notes VALUES ('never run general_log_file = my.cnf')"), expect: []},
  {name: 'mysql 6662: turning the general log on', protocol: 'mysql', steps: mysqlQuery("SET GLOBAL general_log = 'ON'"), expect: []},
  // audit: evasions the server's lexer accepts (checked on MariaDB 10.11) that the rev 1 patterns missed
  {name: 'mysql 6662 audit: a comment holding ";" between SET and the variable', protocol: 'mysql', steps: mysqlQuery("SET /*;*/ GLOBAL general_log_file='/var/lib/mysql/my.cnf'"), expect: ['PP-2016-6662']},
  {name: 'mysql 6662 audit: \\v (0x0b) around "="', protocol: 'mysql', steps: mysqlQuery("SET GLOBAL general_log_file\x0b=\x0b'/var/lib/mysql/my.cnf'"), expect: ['PP-2016-6662']},
  {name: 'mysql 6662 audit: "--" comment directly before the newline', protocol: 'mysql', steps: mysqlQuery("SET GLOBAL general_log_file--\n='/var/lib/mysql/my.cnf'"), expect: ['PP-2016-6662']},
  {name: 'mysql 6662 audit: 0b binary literal value', protocol: 'mysql', steps: mysqlQuery('SET GLOBAL general_log_file=0b' + [...Buffer.from('/var/lib/mysql/my.cnf')].map((b) => b.toString(2).padStart(8, '0')).join('')), expect: ['PP-2016-6662']},
  {name: 'mysql 6662 audit: /*!50000SET*/ version comment (digits glued to SET)', protocol: 'mysql', steps: mysqlQuery("/*!50000SET*/ /*!50000GLOBAL*/ general_log_file='/var/lib/mysql/my.cnf'"), expect: ['PP-2016-6662']},
  {name: 'mysql 6662 audit: escaped NUL cuts the name (my.cnf\\0.log writes my.cnf)', protocol: 'mysql', steps: mysqlQuery("SET GLOBAL general_log_file='/var/lib/mysql/my.cnf\\0.log'"), expect: ['PP-2016-6662']},
  {name: 'mysql 6662 audit: raw NUL byte inside the literal', protocol: 'mysql', steps: mysqlQuery("SET GLOBAL general_log_file='/var/lib/mysql/my.cnf\x00.log'"), expect: ['PP-2016-6662']},
  {name: 'mysql 6662 audit: COLLATE after the literal', protocol: 'mysql', steps: mysqlQuery("SET GLOBAL general_log_file='/var/lib/mysql/my.cnf' COLLATE utf8mb3_bin"), expect: ['PP-2016-6662']},
  {name: 'mysql 6662 audit: /*!50000INTO*/ OUTFILE with a NUL-cut name', protocol: 'mysql', steps: mysqlQuery("SELECT 'x' /*!50000INTO*/ OUTFILE '/var/lib/mysql/my.cnf\\0.csv'"), expect: ['PP-2016-6662']},
  {name: 'mysql 6662 audit benign: ";" in a comment of another SET, 0b for general_log', protocol: 'mysql', steps: [...mysqlQuery('SET /*;*/ GLOBAL max_connections=10'), query('SET GLOBAL general_log=0b1')], expect: []},
  // ---- Oracle TNS
  {name: 'tns poison: registration command in mixed case, deferred descriptor', protocol: 'tns', steps: tnsConnect(`(DESCRIPTION=(CONNECT_DATA=(CID=(PROGRAM=${A(200, 'p')}))(COMMAND=Service_Register_NSGR))(ADDRESS=(PROTOCOL=TCP)(HOST=10.0.0.9)(PORT=1521)))`), expect: ['PP-2012-1675']},
  {name: 'tns poison: descriptor that does not parse still searched raw', protocol: 'tns', steps: tnsConnect('(DESCRIPTION=(CONNECT_DATA=(COMMAND = service_register_NSGR)(((', false), expect: ['PP-2012-1675']},
  {name: 'tns poison: the word in a SERVICE_NAME is not a command', protocol: 'tns', steps: tnsConnect(desc('(SERVICE_NAME=service_register_demo)')), expect: []},
  {name: 'tns 2002-0965: 129-byte SERVICE_NAME inline', protocol: 'tns', steps: tnsConnect(desc(`(SERVICE_NAME=${A(129)})`), false), expect: ['PP-2002-0965']},
  {name: 'tns 2002-0965: lower-case sid of 500 bytes, deferred', protocol: 'tns', steps: tnsConnect(desc(`(sid=${A(500, 's')})`)), expect: ['PP-2002-0965']},
  {name: 'tns 2002-0965: 128-byte SERVICE_NAME is allowed', protocol: 'tns', steps: tnsConnect(desc(`(SERVICE_NAME=${A(128)})`)), expect: []},
  {name: 'tns long: 6000-byte descriptor with a 2000-byte SERVICE_NAME trips the service-name and length bounds', protocol: 'tns', steps: tnsConnect(desc(`(SERVICE_NAME=${A(2000)})(CID=(PROGRAM=${A(4000, 'q')}))`)), expect: ['PP-2002-0965', 'PP-TNS-LONG-CONNECT-DATA']},
  // ---- TLS heartbeat
  {name: 'heartbleed: TLS 1.0 record version, claim 0x4000 in 3 bytes', protocol: 'tls', steps: [...TLS_HS, S(cat([24, 3, 1], be16(3), [1, 0x40, 0]))], expect: ['PP-2014-0160']},
  {name: 'heartbleed: padding below the 16-byte minimum makes the claim overflow', protocol: 'tls', steps: [...TLS_HS, S(heartbeat(1, 100, 100, 15))], expect: ['PP-2014-0160']},
  {name: 'heartbleed: honest request with extra padding', protocol: 'tls', steps: [...TLS_HS, S(heartbeat(1, 100, 100, 200)), C(heartbeat(2, 100, 100, 16))], expect: []},
  {name: 'heartbleed leak: encrypted request, 16 KB encrypted response', protocol: 'tls', steps: [...TLS_HS, S(CCS), C(CCS), S(rec(24, new Uint8Array(64).fill(7))), C(rec(24, new Uint8Array(16448).fill(9)))], expect: ['PP-HEARTBLEED-LEAK']},
  {name: 'heartbleed leak: encrypted echo of the same size', protocol: 'tls', steps: [...TLS_HS, S(CCS), C(CCS), S(rec(24, new Uint8Array(64).fill(7))), C(rec(24, new Uint8Array(80).fill(9)))], expect: []},
  {name: 'reverse heartbleed: server claims more than it sends', protocol: 'tls', steps: [...TLS_HS, C(heartbeat(1, 0xffff, 0))], expect: ['PP-HEARTBLEED-CLIENT']},
  // ---- variant audit (session 5)
  ...([0x0300, 0x0301, 0x0302, 0x0303] as const).map((v): Case => ({
    name: `heartbleed variant: record version ${v.toString(16)}, right after the ClientHello (no ServerHello yet)`, protocol: 'tls',
    steps: [S(CLIENT_HELLO), S(cat([24], be16(v), be16(3), [1, 0xff, 0xff]))], expect: ['PP-2014-0160'],
  })),
  {name: 'heartbleed variant: the heartbeat is the first record of the connection', protocol: 'tls', steps: [S(heartbeat(1, 0x4000, 1, 0))], expect: ['PP-2014-0160']},
  {name: 'heartbleed variant: after an SSLv2-format ClientHello', protocol: 'tls', steps: [
    S([0x80, 0x2e, 1, 3, 1], be16(21), be16(0), be16(16), [0, 0, 0x39, 0, 0, 0x38, 0, 0, 0x35, 0, 0, 0x16, 0, 0, 0x13, 0, 0, 0x0a, 0x07, 0, 0xc0], new Uint8Array(16).fill(0x5a)),
    C(SERVER_HELLO), S(heartbeat(1, 0x4000, 0, 0))], expect: ['PP-2014-0160']},
  {name: 'heartbleed variant: two heartbeat messages in one record, the first over-claims', protocol: 'tls', steps: [...TLS_HS, S(rec(24, cat([1], be16(0x4000), [0x41, 0x41], [1], be16(2), [0x42, 0x42], new Uint8Array(16))))], expect: ['PP-2014-0160']},
  {name: 'heartbleed variant: an honest heartbeat, then an over-claiming one in the same segment', protocol: 'tls', steps: [...TLS_HS, S(heartbeat(1, 20, 20), heartbeat(1, 0xffff, 20))], expect: ['PP-2014-0160']},
  // DTLS: OpenSSL's DTLS heartbeat code had the same over-read (d1_both.c), fixed by the same check
  {name: 'heartbleed over DTLS 1.2: claim 0x4000 in 3 bytes after the ClientHello', protocol: 'tls', factory: dtlsAnalyzer, datagram: true, steps: [S(DTLS_CLIENT_HELLO), S(drec(24, 0, 1, cat([1], be16(0x4000), [0x41])))], expect: ['PP-2014-0160']},
  {name: 'heartbleed over DTLS 1.0: the heartbeat rides in the ClientHello\'s datagram', protocol: 'tls', factory: dtlsAnalyzer, datagram: true, steps: [S(DTLS_CLIENT_HELLO, dheartbeat(1, 0xffff, 8, 16, 0, 0xfeff))], expect: ['PP-2014-0160']},
  {name: 'heartbleed over DTLS: record length claims more than the datagram holds', protocol: 'tls', factory: dtlsAnalyzer, datagram: true, steps: [S(cat([24], be16(0xfefd), be16(0), new Uint8Array(6), be16(200), [1], be16(100), new Uint8Array(20)))], expect: ['PP-2014-0160']},
  {name: 'heartbleed over DTLS, leak: encrypted request (epoch 1), 16 KB encrypted response', protocol: 'tls', factory: dtlsAnalyzer, datagram: true, steps: [S(DTLS_CLIENT_HELLO), S(drec(24, 1, 5, new Uint8Array(64).fill(7))), C(drec(24, 1, 9, new Uint8Array(16448).fill(9)))], expect: ['PP-HEARTBLEED-LEAK']},
  {name: 'reverse heartbleed over DTLS: the server claims more than it sends', protocol: 'tls', factory: dtlsAnalyzer, datagram: true, steps: [C(dheartbeat(1, 0x4000, 0))], expect: ['PP-HEARTBLEED-CLIENT']},
  {name: 'heartbleed over DTLS benign: honest request and its response', protocol: 'tls', factory: dtlsAnalyzer, datagram: true, steps: [S(DTLS_CLIENT_HELLO), S(dheartbeat(1, 100, 100, 40)), C(dheartbeat(2, 100, 100, 16))], expect: []},
  {name: 'heartbleed over DTLS benign: encrypted echo of the same size', protocol: 'tls', factory: dtlsAnalyzer, datagram: true, steps: [S(drec(24, 1, 5, new Uint8Array(64).fill(7))), C(drec(24, 1, 9, new Uint8Array(80).fill(9)))], expect: []},
  // audit: encrypted Heartbleed requests (heartleech-style, after the handshake): 3 plaintext bytes + MAC/tag, no padding
  {name: 'heartbleed audit: encrypted 23-byte request (RC4-SHA: 3 + 20 MAC), no response yet', protocol: 'tls', steps: [...TLS_HS, S(CCS), C(CCS), S(rec(24, new Uint8Array(23).fill(0xc3)))], expect: ['PP-2014-0160']},
  {name: 'heartbleed audit: encrypted 27-byte request (AES-GCM) split over three segments', protocol: 'tls', steps: (() => { const r = rec(24, new Uint8Array(27).fill(0x5e)); return [...TLS_HS, S(CCS), C(CCS), S(r.subarray(0, 2)), S(r.subarray(2, 9)), S(r.subarray(9))] })(), expect: ['PP-2014-0160']},
  {name: 'reverse heartbleed audit: the server sends an encrypted 32-byte request (AES-CBC-SHA, TLS 1.0)', protocol: 'tls', steps: [...TLS_HS, S(CCS), C(CCS), C(rec(24, new Uint8Array(32).fill(0xa7)))], expect: ['PP-HEARTBLEED-CLIENT']},
  {name: 'heartbleed over DTLS audit: encrypted 27-byte request in epoch 1', protocol: 'tls', factory: dtlsAnalyzer, datagram: true, steps: [S(drec(24, 1, 5, new Uint8Array(27).fill(0x33)))], expect: ['PP-2014-0160']},
  {name: 'heartbleed audit benign: smallest honest encrypted heartbeats (35 bytes) and a 48-byte CBC one, both ways', protocol: 'tls', steps: [...TLS_HS, S(CCS), C(CCS), S(rec(24, new Uint8Array(35).fill(0xc3))), C(rec(24, new Uint8Array(35).fill(0xc4))), S(rec(24, new Uint8Array(48).fill(0x11))), C(rec(24, new Uint8Array(48).fill(0x12)))], expect: []},
  // STARTTLS: the line protocols hand the stream to a TLS analyzer once the server says go
  // (heartbleed scanners and Metasploit's openssl_heartbleed all offer SMTP, IMAP, POP3 and FTP)
  {name: 'heartbleed over SMTP STARTTLS', protocol: 'smtp', factory: factoryFor('smtp'), steps: [C('220 mx ESMTP\r\n'), S('EHLO x\r\n'), C('250-mx\r\n250 STARTTLS\r\n'), S('STARTTLS\r\n'), C('220 2.0.0 Ready to start TLS\r\n'), ...TLS_HS, S(heartbeat(1, 0x4000, 0, 0))], expect: ['PP-2014-0160']},
  {name: 'heartbleed over IMAP STARTTLS, before the handshake', protocol: 'imap', factory: factoryFor('imap'), steps: [C('* OK ready\r\n'), S('a1 STARTTLS\r\n'), C('a1 OK Begin TLS negotiation now\r\n'), S(CLIENT_HELLO, heartbeat(1, 0xffff, 0, 0))], expect: ['PP-2014-0160']},
  {name: 'heartbleed over POP3 STLS', protocol: 'pop3', factory: factoryFor('pop3'), steps: [C('+OK POP3 ready\r\n'), S('STLS\r\n'), C('+OK Begin TLS\r\n'), ...TLS_HS, S(heartbeat(1, 0x4000, 0, 0))], expect: ['PP-2014-0160']},
  {name: 'heartbleed over FTP AUTH TLS', protocol: 'ftp', factory: factoryFor('ftp'), steps: [C('220 ftp\r\n'), S('AUTH TLS\r\n'), C('234 AUTH TLS successful\r\n'), ...TLS_HS, S(heartbeat(1, 0x4000, 0, 0))], expect: ['PP-2014-0160']},
  {name: 'reverse heartbleed over SMTP STARTTLS: the server claims more than it sends', protocol: 'smtp', factory: factoryFor('smtp'), steps: [C('220 mx ESMTP\r\n'), S('STARTTLS\r\n'), C('220 go\r\n'), ...TLS_HS, C(heartbeat(1, 0xffff, 0))], expect: ['PP-HEARTBLEED-CLIENT']},
  {name: 'STARTTLS benign: an honest heartbeat and its answer after SMTP STARTTLS', protocol: 'smtp', factory: factoryFor('smtp'), steps: [C('220 mx ESMTP\r\n'), S('STARTTLS\r\n'), C('220 go\r\n'), ...TLS_HS, S(heartbeat(1, 100, 100, 40)), C(heartbeat(2, 100, 100, 16))], expect: []},
  {name: 'STARTTLS refused: a heartbeat-shaped line after a 454 is an SMTP command, not TLS', protocol: 'smtp', factory: factoryFor('smtp'), steps: [C('220 mx ESMTP\r\n'), S('STARTTLS\r\n'), C('454 TLS not available\r\n'), S(heartbeat(1, 0x4000, 0, 0))], expect: []},
  {name: 'heartbleed benign: two honest heartbeats in one record and an answered one', protocol: 'tls', steps: [...TLS_HS, S(rec(24, cat([1], be16(2), [0x41, 0x41], new Uint8Array(16), [1], be16(2), [0x42, 0x42], new Uint8Array(16)))), C(heartbeat(2, 2, 2))], expect: []},
  {name: 'mysql 2006-1516 variant: 4.1 login without CLIENT_SECURE_CONNECTION, user without NUL', protocol: 'mysql', steps: [MY_GREETING, S(my(1, le32(0x0000a205 & ~0x8000), le32(1 << 24), [0x21], new Uint8Array(23), 'rootrootroot'))], expect: ['PP-2006-1516']},
  {name: 'mysql 2006-1516 variant: CLIENT_CONNECT_WITH_DB, database name without NUL', protocol: 'mysql', steps: [MY_GREETING, S(my(1, le32(0x0000a20d), le32(1 << 24), [0x21], new Uint8Array(23), 'root\0', [20], new Uint8Array(20).fill(3), 'mysql'))], expect: ['PP-2006-1516']},
  {name: 'mysql 2006-1516 variant: scramble length past the packet without CLIENT_PLUGIN_AUTH', protocol: 'mysql', steps: [MY_GREETING, S(my(1, le32(0x0000a205), le32(1 << 24), [0x21], new Uint8Array(23), 'root\0', [200], 'abc'))], expect: ['PP-2006-1516']},
  {name: 'mysql 2006-1516 variant: COM_CHANGE_USER whose user has no NUL', protocol: 'mysql', steps: [...MY_SESSION, S(my(0, [0x11], 'rootrootroot'))], expect: ['PP-2006-1516']},
  {name: 'mysql benign: SSLRequest (32 bytes, no user name: TLS follows)', protocol: 'mysql', steps: [MY_GREETING, S(my(1, le32(MY_CAPS | 0x800), le32(1 << 24), [0x21], new Uint8Array(23)))], expect: []},
  {name: 'mysql benign: caching_sha2_password login with connect attributes', protocol: 'mysql', steps: [MY_GREETING, S(my(1, le32(MY_CAPS | 0x100000 | 0x200000), le32(1 << 24), [0xff], new Uint8Array(23), 'app\0', [32], new Uint8Array(32).fill(7), 'caching_sha2_password\0', [10, 3], '_os', [5], 'Linux')), MY_OK(2)], expect: []},
  {name: 'tns poison variant: blanks around every token and parenthesis', protocol: 'tns', steps: tnsConnect('( DESCRIPTION = ( CONNECT_DATA = ( COMMAND = service_register_NSGR ) ) )', false), expect: ['PP-2012-1675']},
  {name: 'tns poison variant: lower-case keys, quoted value, deeper nesting, deferred', protocol: 'tns', steps: tnsConnect(`(description=(address_list=(address=(protocol=tcp)(host=10.0.0.9)(port=1521)))(connect_data=(cid=(program=${A(220, 'x')})(host=h)(user=u))(command="SERVICE_REGISTER_NSGR")))`), expect: ['PP-2012-1675']},
  {name: 'tns poison benign: an ordinary connect whose service is called register', protocol: 'tns', steps: tnsConnect(desc('(SERVER=DEDICATED)(SERVICE_NAME=service_register.example.com)(CID=(PROGRAM=sqlplus)(HOST=c)(USER=u))')), expect: []},
  {name: 'tns 2002-0965 variant: overlong SERVICE_NAME with blanks and lower-case key', protocol: 'tns', steps: tnsConnect(`(DESCRIPTION=(CONNECT_DATA=( service_name = ${A(300, 'n')} )))`), expect: ['PP-2002-0965']},
  {name: 'ssrp variant: heap message 0x08 with a long host:port string', protocol: 'mssql-ssrp', datagram: true, steps: [S([8], A(200, 'H'), ':1433')], expect: ['PP-2002-0649']},
  {name: 'ssrp variant: 0x04 with a 1000-byte name and a NUL', protocol: 'mssql-ssrp', datagram: true, steps: [S([4], A(1000, 'i'), [0])], expect: ['PP-2002-0649']},
  {name: 'ssrp benign: broadcast 0x02 and unicast 0x03 requests, a DAC lookup of a normal instance', protocol: 'mssql-ssrp', datagram: true, steps: [S([2]), S([3]), S([0x0f, 1], 'SQLEXPRESS', [0])], expect: []},
  {name: 'tds variant: INSTOPT first in the table, 100 bytes with NUL', protocol: 'tds', steps: [S(tds(0x12, prelogin([[2, cat(A(100, 'i'), [0])], [0, TDS_VER], [1, [0]]])))], expect: ['PP-2002-1123']},
  {name: 'tds variant: an unknown option whose data leaves the message', protocol: 'tds', steps: [S(tds(0x12, cat([0], be16(11), be16(6), [0x08], be16(17), be16(400), [0xff], TDS_VER)))], expect: ['PP-2002-1123']},
]

describe('database / TLS rule pack', () => {
  it('lints clean: 11 rules, every one stable with two samples of each kind', () => {
    expect(errors).toEqual([])
    expect(rules.map((r) => r.id).sort()).toEqual([
      'PP-2002-0649', 'PP-2002-0965', 'PP-2002-1123', 'PP-2006-1516', 'PP-2012-1675', 'PP-2012-2122', 'PP-2014-0160',
      'PP-2016-6662', 'PP-HEARTBLEED-CLIENT', 'PP-HEARTBLEED-LEAK', 'PP-TNS-LONG-CONNECT-DATA',
    ])
    for (const r of rules) {
      expect(r.status).toBe('stable')
      expect(r.doc.samples?.malicious?.length ?? 0).toBeGreaterThanOrEqual(2)
      expect(r.doc.samples?.benign?.length ?? 0).toBeGreaterThanOrEqual(2)
      expect(r.doc.references?.length ?? 0).toBeGreaterThanOrEqual(1)
    }
  })

  it('every rule passes its own samples (match, no match, fix neutralizes, 1-byte chunks)', () => {
    for (const r of rules) {
      const res = testRule(r, testFactoryFor(r.protocol)!)
      const failed = res.samples.filter((x) => !x.ok).map((x) => `${x.name}: ${x.problems.join('; ')}`)
      expect(failed, r.id).toEqual([])
    }
  })

  it('the config-file fix blanks the statement in place (same length, session kept)', () => {
    const steps = mysqlQuery("SET GLOBAL general_log_file = '/var/lib/mysql/my.cnf'")
    const res = runAnalyzer(factoryFor('mysql')!, steps)
    const matches = res.pdus.flatMap((p) => set.evaluate(p))
    expect(matches.map((m) => m.rule.id)).toEqual(['PP-2016-6662'])
    const m = matches[0]!
    expect(m.action).toBe('fix')
    expect(m.inline).toBe(true)
    expect(m.edits).toHaveLength(1)
    expect(Buffer.from(m.edits[0]!.data).toString('latin1')).toBe(' '.repeat(m.edits[0]!.len))
  })

  it('compressed protocol: the fix of a zlib-carried statement becomes a drop (no stream span); as-is payloads are blanked in place', () => {
    const q = "SET GLOBAL general_log_file = '/var/lib/mysql/my.cnf'"
    const zm = runAnalyzer(factoryFor('mysql')!, zQuery(q)).pdus.flatMap((p) => set.evaluate(p))
    expect(zm.map((m) => [m.rule.id, m.action])).toEqual([['PP-2016-6662', 'drop']])
    const steps = zQuery(q, 'raw')
    const rm = runAnalyzer(factoryFor('mysql')!, steps).pdus.flatMap((p) => set.evaluate(p))
    expect(rm.map((m) => [m.rule.id, m.action, m.inline])).toEqual([['PP-2016-6662', 'fix', true]])
    const e = rm[0]!.edits[0]!
    const stream = Buffer.concat(steps.filter((x) => x.dir === 'toserver').map((x) => x.data))
    expect(stream.subarray(e.off, e.off + e.len).toString('latin1')).toBe(q)
  })

  it('compressed MySQL that cannot be inspected is dropped (PP-EVASION-MYSQL-UNINSPECTABLE), so nothing after it passes unjudged', () => {
    const evasion = new RuleSet(loadRules(fileURLToPath(new URL('../../rules/generic/PP-EVASION-MYSQL-UNINSPECTABLE.yaml', import.meta.url)), {fieldsFor}).rules)
    const judge = (factory: AnalyzerFactory, steps: ScriptStep[]): string[] => {
      const res = runAnalyzer(factory, steps)
      const ids = new Set<string>()
      for (const pdu of res.pdus) for (const m of [...set.evaluate(pdu), ...evasion.evaluate(pdu)]) ids.add(m.rule.id)
      for (const a of res.anomalies) for (const m of [...set.evaluate(anomalyPdu(a)), ...evasion.evaluate(anomalyPdu(a))]) ids.add(m.rule.id)
      return [...ids].sort()
    }
    const statement = S(myz(0, query("SET GLOBAL general_log_file = '/var/lib/mysql/my.cnf'").data))
    // a corrupt packet first: the statement after it is not parsed, the flow is dropped instead
    const corrupt = S(cat([10, 0, 0, 0], [50, 0, 0], 'not zlib!!'))
    expect(judge(factoryFor('mysql')!, [...MYZ_SESSION, corrupt, statement])).toEqual(['PP-EVASION-MYSQL-UNINSPECTABLE'])
    // a trickle of 1000:1 bombs over the inflate budget (a small allowance here), then the statement
    const bomb = S(myz(0, query('SELECT ' + 'x'.repeat(200_000)).data))
    const small = makeMysqlAnalyzer({inflateAllowanceBytes: 1 << 20})
    expect(judge(small, [...MYZ_SESSION, ...Array.from({length: 12}, () => bomb), statement])).toEqual(['PP-EVASION-MYSQL-UNINSPECTABLE'])
    // under the budget the same statement is judged as itself
    expect(judge(small, [...MYZ_SESSION, bomb, statement])).toEqual(['PP-2016-6662'])
  })

  for (const k of cases) {
    it(k.name, () => {
      expect(fired(k.protocol, k.steps, undefined, k.factory)).toEqual([...k.expect].sort())
      // the verdict must not depend on how a byte stream is cut
      if (!k.datagram) expect(fired(k.protocol, k.steps, 7, k.factory)).toEqual([...k.expect].sort())
    })
  }

  it('mysql auth bypass audit: one connection per attempt (the public exploits) is counted per client and server', () => {
    // the engine's shared scope and packet clock, as the replay engine and the gateway give them
    let now = 1e12
    const scope = new SharedScope(() => now)
    const factory = factoryFor('mysql')!
    const attempt = (clientIp: string, answer: ScriptStep, serverIp = '192.0.2.20'): string[] => {
      now += 50_000
      const res = runAnalyzer(factory, [MY_GREETING, myLogin('root'), answer], {engine: scope, flow: {clientIp, clientPort: 40000 + (now % 20000), serverIp, serverPort: 3306, transport: 'tcp'}})
      const ids = new Set<string>()
      for (const pdu of res.pdus) for (const m of set.evaluate(pdu)) ids.add(m.rule.id)
      return [...ids]
    }
    // five failed connections pass (each fails on its own), the sixth login is held before the server answers
    for (let i = 0; i < 5; i++) expect(attempt('198.51.100.7', MY_ERR(2))).toEqual([])
    expect(attempt('198.51.100.7', MY_OK(2))).toEqual(['PP-2012-2122'])
    // still held while the attempts go on; another client, or the same client to another server, is not
    expect(attempt('198.51.100.7', MY_ERR(2))).toEqual(['PP-2012-2122'])
    expect(attempt('198.51.100.8', MY_OK(2))).toEqual([])
    expect(attempt('198.51.100.7', MY_OK(2), '192.0.2.21')).toEqual([])
    // ten quiet minutes later the pair is forgotten
    now += 601e6
    expect(attempt('198.51.100.7', MY_OK(2))).toEqual([])
    // benign: a user who mistypes four times, then logs in, over separate connections
    for (let i = 0; i < 4; i++) expect(attempt('198.51.100.9', MY_ERR(2))).toEqual([])
    expect(attempt('198.51.100.9', MY_OK(2))).toEqual([])
  })

  it('property: any obfuscation of the config-file statement is caught', () => {
    const gap = fc.constantFrom(' ', '  ', '\t', '\n', ' /* c */ ', '/**/', ' -- x\n', ' # y\n')
    const caseFlip = (s: string, bits: boolean[]): string => [...s].map((ch, i) => (bits[i % bits.length] ? ch.toUpperCase() : ch.toLowerCase())).join('')
    fc.assert(
      fc.property(
        fc.constantFrom('general_log_file', 'slow_query_log_file'),
        fc.constantFrom('SET GLOBAL ', 'set @@global.', 'SET /*!50000 GLOBAL */ ', 'SET PERSIST '),
        gap, gap, fc.constantFrom('=', ':='),
        fc.constantFrom("'/var/lib/mysql/my.cnf'", "'/etc/my.cnf'", "\"/var/lib/mysql/.my.cnf\"", "'my.ini'", "'/var/lib/mysql/my' '.cnf'"),
        fc.array(fc.boolean(), {minLength: 1, maxLength: 8}),
        (v, set_, g1, g2, op, val, bits) => {
          const stmt = caseFlip(`${set_}${v}${g1}${op}${g2}${val}`, bits)
          expect(fired('mysql', mysqlQuery(stmt))).toEqual(['PP-2016-6662'])
        },
      ),
      {numRuns: FUZZ_RUNS},
    )
  })

  it('property: ordinary log file changes and queries raise nothing', () => {
    const name = fc.stringMatching(/^[a-z][a-z0-9_-]{0,20}$/)
    fc.assert(
      fc.property(fc.constantFrom('general_log_file', 'slow_query_log_file'), fc.constantFrom('/var/log/mysql/', '/data/mysql/logs/', ''), name, fc.constantFrom('.log', '.txt', ''), (v, dir, n, ext) => {
        expect(fired('mysql', mysqlQuery(`SET GLOBAL ${v} = '${dir}${n}${ext}'`))).toEqual([])
        expect(fired('mysql', mysqlQuery(`SELECT '${n}' AS ${v.replace('_file', '')}, @@${v}`))).toEqual([])
      }),
      {numRuns: FUZZ_RUNS},
    )
  })

  it('property: a heartbeat request fires exactly when 3 + claim + 16 exceeds the record', () => {
    fc.assert(
      fc.property(fc.integer({min: 0, max: 600}), fc.integer({min: 0, max: 0xffff}), fc.integer({min: 0, max: 64}), (payload, claim, pad) => {
        const over = 3 + claim + 16 > 3 + payload + pad
        expect(fired('tls', [...TLS_HS, S(heartbeat(1, claim, payload, pad))])).toEqual(over ? ['PP-2014-0160'] : [])
      }),
      {numRuns: FUZZ_RUNS},
    )
  })

  it('property: the verdict on a malicious variant is independent of the chunking', () => {
    const variants: [string, ScriptStep[], string][] = [
      ['tds', [S(tds(0x12, prelogin([[0, TDS_VER], [2, cat(A(100), [0])]])))], 'PP-2002-1123'],
      ['mysql', mysqlQuery("SET GLOBAL general_log_file='/var/lib/mysql/my.cnf'"), 'PP-2016-6662'],
      ['mysql', zSplitQuery("SET GLOBAL general_log_file='/var/lib/mysql/my.cnf'", 30), 'PP-2016-6662'],
      ['tns', tnsConnect(desc('(COMMAND=service_register_NSGR)')), 'PP-2012-1675'],
      ['tls', [...TLS_HS, S(heartbeat(1, 0x4000, 0, 0))], 'PP-2014-0160'],
    ]
    fc.assert(
      fc.property(fc.integer({min: 0, max: variants.length - 1}), fc.integer({min: 1, max: 64}), (i, chunk) => {
        const [proto, steps, id] = variants[i]!
        expect(fired(proto, steps, chunk)).toEqual([id])
      }),
      {numRuns: FUZZ_RUNS},
    )
  })
})

describe('database / TLS rule pack on the analyzers\' capture extracts', () => {
  const extracts: [string, string, URL][] = [
    ['mysql', 'login + queries', new URL('../../src/core/analyzers/mysql/fixtures/benign_mysql_session.s0.hex', import.meta.url)],
    ['tds', 'prelogin, login, batch', new URL('../../src/core/analyzers/tds/fixtures/benign_mssql_tds7_login_query.s0.hex', import.meta.url)],
    ['tns', 'connect', new URL('../../src/core/analyzers/tns/fixtures/benign_oracle_tns_connect.s0.hex', import.meta.url)],
    ['tls', 'TLS 1.2 ECDHE handshake', new URL('../../src/core/analyzers/tls/fixtures/ecdhe.txt', import.meta.url)],
    ['tls', 'TLS 1.2 raw IP', new URL('../../src/core/analyzers/tls/fixtures/rawip.txt', import.meta.url)],
  ]
  for (const [proto, what, url] of extracts) {
    it.skipIf(!existsSync(url))(`${proto} (${what}): units parsed, no rule fires`, () => {
      const steps = loadHexFixture(url)
      expect(runAnalyzer(factoryFor(proto)!, steps).pdus.length).toBeGreaterThan(0)
      expect(fired(proto, steps)).toEqual([])
    })
  }
  const hb = new URL('../../src/core/analyzers/tls/fixtures/heartbleed.txt', import.meta.url)
  it.skipIf(!existsSync(hb))('tls heartbleed extract: the request is caught', () => {
    expect(fired('tls', loadHexFixture(hb))).toEqual(['PP-2014-0160'])
  })
  it('mysql (real MariaDB --compress session): the config-file statement is caught through the compressed protocol', () => {
    const fx = loadHexFixture(new URL('../../src/core/analyzers/mysql/fixtures/mariadb_compressed_session.s0.hex', import.meta.url))
    expect(fired('mysql', fx)).toEqual(['PP-2016-6662'])
    expect(fired('mysql', fx, 5)).toEqual(['PP-2016-6662'])
  })
})

const corpus = existsSync(PCAPS)
const ours = new Set(rules.map((r) => r.id))

describe.skipIf(!corpus)('database / TLS rule pack on the real captures', () => {
  const expectations: [string, string[]][] = [
    ['cve-2014-0160_heartbleed_tls.pcap', ['PP-2014-0160']],
    ['benign_tls12_ecdhe.pcap', []],
    ['benign_tls12_rawip.pcap', []],
    ['benign_imap_starttls.pcap', []],
    ['benign_mysql_session.pcap', []],
    ['benign_mssql_tds7_login_query.pcap', []],
    ['benign_oracle_tns_connect.pcap', []],
  ]
  it('alerts exactly on the attack flows', async () => {
    const files = expectations.map(([f]) => PCAPS + f).filter((f) => existsSync(f))
    const res = await runReplay({files, keepEvents: true})
    const got = new Map<string, string[]>()
    for (const ev of res.events ?? []) {
      const e = ev as unknown as {event_type: string; pcap_filename?: string; patchpoint?: {rule_id?: string}}
      const id = e.patchpoint?.rule_id
      if (e.event_type !== 'alert' || id === undefined || !ours.has(id)) continue
      const f = (e.pcap_filename ?? '').split('/').pop() ?? ''
      got.set(f, [...(got.get(f) ?? []), id])
    }
    for (const [f, want] of expectations) {
      if (!existsSync(PCAPS + f)) continue
      expect(got.get(f) ?? [], f).toEqual(want)
    }
  })
})
