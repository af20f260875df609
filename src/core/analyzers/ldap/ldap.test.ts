import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {runAnalyzer, type ScriptStep} from '../harness.js'
import {fuzzRuns, loadHexFixture, splitInvariance} from '../line/testing.js'
import {binarySpanMismatches, feedMaxCapacity, fuzzScripts, many, one} from '../mysql/testing.js'
import type {Pdu} from '../types.js'
import {LdapAnalyzer, detectLdap, ldapAnalyzer, makeLdapAnalyzer} from './index.js'
import {LDAP_FIELDS} from './fields.js'
import {readsMismatches} from '../testing.js'
import {berInt, messageLength} from './parser.js'
import {replayFile} from '../../engine/replay.js'
import {engineDetection} from '../../engine/detection.js'

const fixture = (name: string): ScriptStep[] => loadHexFixture(new URL(`./fixtures/${name}.hex`, import.meta.url))
const callback = fixture('log4shell_ldap_callback.s1')
const slapdAdd = fixture('slapd.s0')
const slapdSearch = fixture('slapd.s1')
const slapdReference = fixture('slapd.s2')
const slapdStartTls = fixture('slapd.s3')

/** BER element: tag, definite length (short or long form), contents */
function tlv(tag: number, ...parts: (string | number[] | Uint8Array)[]): Uint8Array {
  const body = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))))
  const n = body.length
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff]
  return Uint8Array.from(Buffer.concat([Buffer.from([tag, ...len]), body]))
}
const int = (v: number, tag = 0x02): Uint8Array => tlv(tag, [v])
const oct = (s: string): Uint8Array => tlv(0x04, s)
const msg = (id: number, op: Uint8Array): Uint8Array => tlv(0x30, int(id), op)
const entry = (id: number, dn: string, attrs: [string, ...string[]][]): Uint8Array =>
  msg(id, tlv(0x64, oct(dn), tlv(0x30, ...attrs.map(([t, ...vals]) => tlv(0x30, oct(t), tlv(0x31, ...vals.map(oct)))))))
const S = (d: Uint8Array): ScriptStep => ({dir: 'toserver', data: d})
const C = (d: Uint8Array): ScriptStep => ({dir: 'toclient', data: d})
const kinds = (pdus: Pdu[]): string[] => pdus.map((p) => `${p.dir === 'toserver' ? '>' : '<'}${p.kind}`)

describe('ldap: real captures', () => {
  it('every split and 1-byte chunks give the same PDUs (all five fixtures)', () => {
    for (const fx of [callback, slapdAdd, slapdSearch, slapdReference, slapdStartTls]) expect(splitInvariance(ldapAnalyzer, fx)).toEqual([])
  })

  it("the Log4Shell victim's JNDI lookup: bind, search of the payload's name, a javaNamingReference entry", () => {
    const r = runAnalyzer(ldapAnalyzer, callback)
    expect(r.anomalies).toEqual([])
    expect(binarySpanMismatches(r.pdus, callback)).toEqual([])
    expect(kinds(r.pdus)).toEqual(['>bind_request', '<bind_response', '>search_request', '<search_result_entry', '<search_result_done', '>unbind_request'])
    const search = r.pdus[2]!
    expect(one(search, 'ldap.dn').v).toBe('Basic/Command/Base64/cGluZyAtYyAxMCAxLjEuMS4x')
    expect(one(search, 'ldap.message_id').v).toBe(2)
    const e = r.pdus[3]!
    expect(many(e, 'ldap.attribute').map((v) => v.v)).toEqual(['javaClassName', 'javaCodeBase', 'objectClass', 'javaFactory'])
    expect(many(e, 'ldap.attr.javacodebase').map((v) => v.v)).toEqual(['http://34.91.73.37:8080/'])
    expect(many(e, 'ldap.attr.objectclass').map((v) => v.v)).toEqual(['javaNamingReference'])
    expect(one(e, 'ldap.values').v).toBe(4)
    expect(one(r.pdus[4], 'ldap.result.code').v).toBe(0)
  })

  it('slapd and ldapadd: a simple bind as the admin and three add requests with their attributes', () => {
    const r = runAnalyzer(ldapAnalyzer, slapdAdd)
    expect(r.anomalies).toEqual([])
    expect(binarySpanMismatches(r.pdus, slapdAdd)).toEqual([])
    expect(kinds(r.pdus).filter((k) => k === '>add_request')).toHaveLength(3)
    expect(one(r.pdus[0], 'ldap.dn').v).toBe('cn=admin,dc=example,dc=org')
    expect(one(r.pdus[0], 'ldap.bind.auth').v).toBe('simple')
    const alice = r.pdus.find((p) => p.kind === 'add_request' && one(p, 'ldap.dn').v === 'cn=Alice,dc=example,dc=org')
    expect(many(alice, 'ldap.attr.mail').map((v) => v.v)).toEqual(['alice@example.org'])
    expect(r.pdus.filter((p) => p.kind === 'add_response').map((p) => one(p, 'ldap.result.code').v)).toEqual([0, 0, 0])
  })

  it('slapd and ldapsearch: the requested attributes, the entry, the result', () => {
    const r = runAnalyzer(ldapAnalyzer, slapdSearch)
    expect(r.anomalies).toEqual([])
    const req = r.pdus.find((p) => p.kind === 'search_request')
    expect(one(req, 'ldap.search.scope').v).toBe(2)
    expect(many(req, 'ldap.search.attributes').map((v) => v.v)).toEqual(['cn', 'mail'])
    const e = r.pdus.find((p) => p.kind === 'search_result_entry')
    expect(one(e, 'ldap.dn').v).toBe('cn=Alice,dc=example,dc=org')
    expect(many(e, 'ldap.attribute').map((v) => v.v)).toEqual(['cn', 'mail'])
  })

  it('StartTLS accepted by slapd: the TLS analyzer reads both directions from the next byte', () => {
    const a = new LdapAnalyzer({emit: () => {}, anomaly: () => {}})
    const r = runAnalyzer(ldapAnalyzer, slapdStartTls)
    expect(r.anomalies).toEqual([])
    expect(kinds(r.pdus).slice(0, 4)).toEqual(['>extended_request', '<extended_response', '>client_hello', '<server_hello'])
    expect(one(r.pdus[0], 'ldap.extended.name').v).toBe('1.3.6.1.4.1.1466.20037')
    expect(r.pdus.slice(2).every((p) => p.protocol === 'tls')).toBe(true)
    // the ClientHello starts right after the StartTLS request in the client's stream
    expect(r.pdus[2]!.start).toBe(slapdStartTls[0]!.data.length)
    for (const s of slapdStartTls) a.data(s.dir, s.data)
    expect(a.stats().tls).toBe(true)
  })

  it('a refused StartTLS keeps LDAP', () => {
    const starttls = msg(1, tlv(0x77, tlv(0x80, '1.3.6.1.4.1.1466.20037')))
    const refused = msg(1, tlv(0x78, int(2, 0x0a), oct(''), oct('unsupported')))
    const r = runAnalyzer(ldapAnalyzer, [S(starttls), C(refused), S(msg(2, tlv(0x42)))])
    expect(kinds(r.pdus)).toEqual(['>extended_request', '<extended_response', '>unbind_request'])
    expect(one(r.pdus[1], 'ldap.result.code').v).toBe(2)
  })
})

describe('ldap: detection and framing', () => {
  it('detects a client request by content, not the server side or other protocols', () => {
    expect(detectLdap('toserver', callback[0]!.data)).toBe(true)
    expect(detectLdap('toserver', slapdStartTls[0]!.data)).toBe(true)
    expect(detectLdap('toserver', slapdReference[2]!.data)).toBe(true)
    expect(detectLdap('toclient', callback[1]!.data)).toBe(false)
    expect(detectLdap('toserver', callback[1]!.data)).toBe(false) // a response is not how a client starts
    for (const other of ['GET / HTTP/1.1\r\n', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03', '\x00\x00\x00\x85\xffSMBr\x00\x00\x00\x00', '\x05\x00\x0b\x03\x10\x00\x00\x00\x48\x00']) {
      expect(detectLdap('toserver', Uint8Array.from(Buffer.from(other, 'latin1')))).toBe(false)
    }
    expect(detectLdap('toserver', callback[0]!.data.subarray(0, 5))).toBe(false)
  })

  it('message lengths: short and long form; indefinite, over 4 length bytes, non-SEQUENCE refused', () => {
    expect(messageLength(Uint8Array.from([0x30, 0x0c, 2, 1, 1, 0x60]), 0)).toBe(14)
    expect(messageLength(Uint8Array.from([0x30, 0x82, 0x01, 0x00, 2, 1]), 0)).toBe(260)
    expect(messageLength(Uint8Array.from([0x30, 0x84, 0, 1, 0, 0]), 0)).toBe(6 + 65536)
    expect(messageLength(Uint8Array.from([0x30, 0x80, 2, 1, 1, 0x60]), 0)).toBe(-1)
    expect(messageLength(Uint8Array.from([0x30, 0x85, 0, 0, 0, 0]), 0)).toBe(-1)
    expect(messageLength(Uint8Array.from([0x31, 0x0c, 2, 1, 1, 0x60]), 0)).toBe(-1)
    expect(berInt(Uint8Array.from([0xff]), 0, 1)).toBe(-1)
    expect(berInt(Uint8Array.from([0x00, 0x80]), 0, 2)).toBe(128)
  })

  it('a message whose inner length overruns its container is malformed: an anomaly, the PDU still emitted, the stream goes on', () => {
    const bad = Uint8Array.from(entry(2, 'cn=x', [['cn', 'x']]))
    bad[bad.length - 2] = 0x7f // the value's length now points past the message
    const r = runAnalyzer(ldapAnalyzer, [C(bad), C(entry(3, 'cn=y', [['cn', 'y']]))])
    expect(r.anomalies.map((a) => a.event)).toEqual(['ldap.malformed'])
    expect(String(r.anomalies[0]!.detail!.reason)).toMatch(/attribute value: length beyond its container/)
    expect(one(r.pdus[0], 'ldap.malformed').v).toBe(1)
    expect(one(r.pdus[1], 'ldap.dn').v).toBe('cn=y')
  })

  it('an impossible header stops the direction with ldap.invalid_header', () => {
    const r = runAnalyzer(ldapAnalyzer, [S(Uint8Array.from(Buffer.from('HELLO there, not BER', 'latin1'))), S(callback[0]!.data)])
    expect(r.anomalies.map((a) => a.event)).toEqual(['ldap.invalid_header'])
    expect(r.pdus).toEqual([])
  })

  it('a message over maxMessageBytes is inspected truncated (anomaly), its head still parsed, and the next message framed', () => {
    const big = entry(7, 'cn=big', [['objectClass', 'javaNamingReference'], ['description', 'x'.repeat(3000)]])
    const r = runAnalyzer(makeLdapAnalyzer({maxMessageBytes: 512}), [C(big), C(entry(8, 'cn=next', [['cn', 'next']]))], {chunkSize: 100})
    expect(r.anomalies.map((a) => a.event)).toEqual(['ldap.message_too_long'])
    expect(one(r.pdus[0], 'ldap.truncated').v).toBe(1)
    expect(one(r.pdus[0], 'ldap.length').v).toBe(big.length)
    expect(many(r.pdus[0], 'ldap.attr.objectclass').map((v) => v.v)).toEqual(['javaNamingReference'])
    expect(r.pdus[0]!.fields.has('ldap.malformed')).toBe(false)
    expect(one(r.pdus[1], 'ldap.dn').v).toBe('cn=next')
  })

  it('attribute values per message are capped (ldap.too_many_values), the entry still judged on the rest', () => {
    const vals = Array.from({length: 40}, (_, i) => `v${i}`)
    const r = runAnalyzer(makeLdapAnalyzer({maxValues: 10}), [C(entry(2, 'cn=many', [['objectClass', 'javaNamingReference'], ['member', ...vals]]))])
    expect(r.anomalies.map((a) => a.event)).toEqual(['ldap.too_many_values'])
    expect(many(r.pdus[0], 'ldap.attr.member')).toHaveLength(9)
    expect(many(r.pdus[0], 'ldap.attr.objectclass').map((v) => v.v)).toEqual(['javaNamingReference'])
  })

  it('attribute options keep their name and search result references expose their URLs', () => {
    const ref = msg(2, tlv(0x73, oct('ldap://198.51.100.7/o=a'), oct('ldap://198.51.100.8/o=b')))
    const r = runAnalyzer(ldapAnalyzer, [C(entry(2, 'o=x', [['javaSerializedData;binary', '\xac\xed\x00\x05']])), C(ref)])
    expect(many(r.pdus[0], 'ldap.attribute').map((v) => v.v)).toEqual(['javaSerializedData;binary'])
    expect(many(r.pdus[1], 'ldap.referral').map((v) => v.v)).toEqual(['ldap://198.51.100.7/o=a', 'ldap://198.51.100.8/o=b'])
  })
})

describe('ldap: fields no rule reads are left out', () => {
  const names = LDAP_FIELDS.map((f) => f.name).filter((n) => !n.includes('<'))
  const built = [
    S(msg(1, tlv(0x60, int(3), oct('cn=admin'), tlv(0x80, 'pw')))),
    S(msg(2, tlv(0x60, int(3), oct(''), tlv(0xa3, oct('GSSAPI'))))),
    S(msg(3, tlv(0x63, oct('dc=x'), int(2, 0x0a), int(0, 0x0a), int(5), int(0), tlv(0x01, [0]), tlv(0x87, 'objectClass'), tlv(0x30, oct('cn'), oct('member'))))),
    S(msg(4, tlv(0x6e, oct('cn=a'), tlv(0x30, oct('member'), oct('cn=b'))))),
    S(msg(5, tlv(0x77, tlv(0x80, '1.3.6.1.4.1.1466.20037')))),
    S(msg(6, tlv(0x4a, 'cn=gone'))),
    S(msg(7, tlv(0x66, oct('cn=a'), tlv(0x30, tlv(0x30, int(0, 0x0a), tlv(0x30, oct('member'), tlv(0x31, oct('x')))))))),
    C(msg(1, tlv(0x61, int(49, 0x0a), oct('cn=m'), oct('bad'), tlv(0xa3, oct('ldap://h/o=a'))))),
    C(entry(3, 'cn=e', [['objectClass', 'top', 'person'], ['member', ...Array.from({length: 12}, (_, i) => `v${i}`)], ['CN', 'e']])),
    C(msg(5, tlv(0x78, int(2, 0x0a), oct(''), oct('no'), tlv(0x8a, '1.3.6.1.4.1.1466.20037')))),
    C(msg(8, tlv(0x73, oct('ldap://198.51.100.7/o=a')))),
    C(tlv(0x30, int(9), tlv(0x61, int(0, 0x0a), oct('')))),
    C(entry(10, 'cn=' + 'z'.repeat(300), [['member', 'y'.repeat(300)]])),
  ]
  const scripts = [callback, slapdAdd, slapdSearch, slapdReference, slapdStartTls, built]
  const limited = makeLdapAnalyzer({maxValues: 10, maxMessageBytes: 200})

  it('same PDUs and anomalies with any set of fields read, per direction, any chunking', () => {
    fc.assert(
      fc.property(fc.subarray(names), fc.subarray(names), fc.boolean(), fc.boolean(), fc.integer({min: 0, max: scripts.length - 1}), fc.integer({min: 0, max: 50}), (up, down, aUp, aDown, k, chunkSize) => {
        // the ldap.attr.<type> family is built whole or not at all
        const has = (f: string, fields: string[], a: boolean) => (f.startsWith('ldap.attr.') ? a : fields.includes(f))
        const reads = (f: string, dir?: 'toserver' | 'toclient') => (dir !== 'toclient' && has(f, up, aUp)) || (dir !== 'toserver' && has(f, down, aDown))
        expect(readsMismatches(ldapAnalyzer, scripts[k]!, reads, {chunkSize})).toEqual([])
        expect(readsMismatches(limited, scripts[k]!, reads, {chunkSize})).toEqual([])
      }),
      {numRuns: fuzzRuns(150)},
    )
  })

  it('with only ldap.attribute read toclient (the pack), entries carry it alone; the StartTLS exchange still switches to TLS', () => {
    const reads = (f: string, dir?: 'toserver' | 'toclient') => f === 'ldap.attribute' && dir !== 'toserver'
    const r = runAnalyzer(ldapAnalyzer, built, {reads})
    expect(r.pdus.filter((p) => p.kind === 'search_result_entry').map((p) => [...p.fields.keys()])).toEqual([['ldap.attribute'], ['ldap.attribute']])
    expect(r.pdus.filter((p) => p.dir === 'toserver').every((p) => p.fields.size === 0)).toBe(true)
    expect(r.anomalies).toEqual(runAnalyzer(ldapAnalyzer, built).anomalies)
    const tls = runAnalyzer(ldapAnalyzer, slapdStartTls, {reads})
    expect(kinds(tls.pdus)).toEqual(kinds(runAnalyzer(ldapAnalyzer, slapdStartTls).pdus))
  })
})

describe('ldap: fuzz', () => {
  it('never throws, and holds at most one capped message per direction', () => {
    const limit = 4096
    fc.assert(
      fc.property(fuzzScripts(callback), fc.integer({min: 0, max: 40}), (script, chunk) => {
        const a = new LdapAnalyzer({emit: () => {}, anomaly: () => {}}, {maxMessageBytes: limit})
        const cap = feedMaxCapacity(a, script, chunk)
        a.end('toserver')
        a.end('toclient')
        expect(cap).toBeLessThanOrEqual(2 * 2 * limit)
      }),
      {numRuns: fuzzRuns(300)},
    )
  })
})

describe('ldap: through the engine and the rule pack', () => {
  it('slapd on port 10389 is found by content; only the javaNamingReference search result raises PP-2021-44228-JNDI-LDAP', async () => {
    const pcap = fileURLToPath(new URL('./fixtures/slapd_ldapsearch.pcap', import.meta.url))
    const events: {event_type: string; app_proto?: string; alert?: {signature: string}; dest_port?: number}[] = []
    const detection = await engineDetection()
    replayFile(pcap, {onEvent: (e) => events.push(e as (typeof events)[number]), detection, flowEvents: true})
    const flows = events.filter((e) => e.event_type === 'flow')
    expect(flows).toHaveLength(4)
    expect(flows.every((f) => f.app_proto === 'ldap')).toBe(true)
    const alerts = events.filter((e) => e.event_type === 'alert')
    expect(alerts.map((a) => a.alert!.signature.split(' ')[0])).toEqual(['PP-2021-44228-JNDI-LDAP'])
    expect(events.filter((e) => e.event_type === 'anomaly')).toEqual([])
  })
})
