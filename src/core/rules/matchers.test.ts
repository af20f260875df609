import {describe, it, expect} from 'vitest'
import fc from 'fast-check'
import {RE2JS} from 're2js'
import {RuleSet} from './engine.js'
import {ruleFromYaml, pduOf} from './testing.js'
import {compileRule, evalMatcher} from './compile.js'
import type {RuleDoc} from './types.js'

const hit = (detect: string, fields: Parameters<typeof pduOf>[0], condition = 's') =>
  new RuleSet([ruleFromYaml(`detect:\n${detect}\ncondition: ${condition}\naction: log`)]).evaluate(pduOf(fields)).length > 0

describe('matcher operators', () => {
  it('equals / contains / startswith / endswith, lists = any of, nocase', () => {
    expect(hit('  s: {field: http.method, equals: GET}', {'http.method': 'GET'})).toBe(true)
    expect(hit('  s: {field: http.method, equals: GET}', {'http.method': 'get'})).toBe(false)
    expect(hit('  s: {field: http.method, equals: GET, nocase: true}', {'http.method': 'get'})).toBe(true)
    expect(hit('  s: {field: http.uri.raw, contains: [etc/passwd, win.ini]}', {'http.uri.raw': '/x/win.ini'})).toBe(true)
    expect(hit('  s: {field: http.uri.raw, startswith: /cgi-bin/}', {'http.uri.raw': '/x/cgi-bin/'})).toBe(false)
    expect(hit('  s: {field: http.uri.raw, endswith: .php}', {'http.uri.raw': '/a.php'})).toBe(true)
    expect(hit('  s: {field: http.uri.raw, contains: "x"}', {})).toBe(false)
  })
  it('multi-valued fields match if ANY value matches; prefix families', () => {
    expect(hit('  s: {field: http.header.x, equals: b}', {'http.header.x': ['a', 'b']})).toBe(true)
    expect(hit('  s: {field: http.header.*, contains: evil}', {'http.header.a': 'ok', 'http.header.b': ['x', 'so evil']})).toBe(true)
    expect(hit('  s: {field: http.header.*, contains: evil}', {'http.headerx': 'evil'})).toBe(false)
    expect(hit('  s: {fields: [http.uri.raw, http.body], contains: evil}', {'http.body': 'evil'})).toBe(true)
  })
  it('transforms run before the operator', () => {
    expect(hit('  s: {field: http.uri.raw, transform: [url_decode_all, normalize_path], startswith: /etc/}', {'http.uri.raw': '/a/..%252f../etc/x'})).toBe(true)
    expect(hit('  s: {field: http.uri.raw, contains: /etc/}', {'http.uri.raw': '/a/..%252f../etc%2fx'})).toBe(false)
  })
  it('regex (RE2), nocase flag, and a backtracking-killer pattern stays linear', () => {
    expect(hit("  s: {field: http.header.ua, regex: '^\\s*\\(\\s*\\)\\s*\\{'}", {'http.header.ua': ' () { :;}'})).toBe(true)
    expect(hit("  s: {field: http.header.ua, regex: 'SQLMAP', nocase: true}", {'http.header.ua': 'sqlmap/1.0'})).toBe(true)
    const big = 'a'.repeat(50_000) + 'b'
    const t = Date.now()
    expect(hit("  s: {field: http.body, regex: '(a+)+$'}", {'http.body': big})).toBe(false)
    expect(RE2JS.compile('(a|aa)+$').test(big)).toBe(false)
    expect(Date.now() - t).toBeLessThan(1000)
  })
  it('regexes RE2 rejects are compile problems (backreferences)', () => {
    const {problems} = compileRule({id: 'PP-X-1', rev: 1, status: 'test', title: 't', severity: 'low', protocol: 'http', detect: {s: {field: 'a', regex: '(a)\\1'}}, condition: 's'} as RuleDoc)
    expect(problems[0].message).toMatch(/RE2/)
  })
  it('length and numeric bounds, bigint-exact', () => {
    expect(hit('  s: {field: http.uri.raw, length: {gt: 3}}', {'http.uri.raw': '/abc'})).toBe(true)
    expect(hit('  s: {field: http.uri.raw, length: {gt: 4}}', {'http.uri.raw': '/abc'})).toBe(false)
    expect(hit("  s: {field: http.range.end, gt: '18446744073709551615'}", {'http.range.end': '18446744073709551616'})).toBe(true)
    expect(hit("  s: {field: http.range.end, gt: '18446744073709551615'}", {'http.range.end': 18446744073709551615n})).toBe(false)
    expect(hit("  s: {field: http.range.end, gt: '18446744073709551615'}", {'http.range.end': 18446744073709551616n})).toBe(true)
    expect(hit('  s: {field: n, gte: 10, lt: 20}', {n: 10})).toBe(true)
    expect(hit('  s: {field: n, gte: 10, lt: 20}', {n: '20'})).toBe(false)
    expect(hit('  s: {field: n, eq: 5}', {n: 'five'})).toBe(false)
    expect(hit('  s: {field: n, lte: 1.5}', {n: '1.25'})).toBe(true)
  })
  it('count (of values, or of values satisfying the operator) and exists', () => {
    expect(hit('  s: {field: smtp.rcpt, count: {gt: 2}}', {'smtp.rcpt': ['a', 'b', 'c']})).toBe(true)
    expect(hit('  s: {field: smtp.rcpt, count: {gt: 2}}', {'smtp.rcpt': ['a', 'b']})).toBe(false)
    expect(hit('  s: {field: smtp.rcpt, contains: "@evil", count: {gte: 2}}', {'smtp.rcpt': ['a@evil', 'b@ok', 'c@evil']})).toBe(true)
    expect(hit('  s: {field: smtp.rcpt, contains: "@evil", count: {gte: 2}}', {'smtp.rcpt': ['a@evil', 'b@ok']})).toBe(false)
    expect(hit('  s: {field: http.header.te, exists: true}', {'http.header.te': 'x'})).toBe(true)
    expect(hit('  s: {field: http.header.te, exists: false}', {'http.header.te': 'x'})).toBe(false)
    expect(hit('  s: {field: http.header.te, exists: false}', {})).toBe(true)
  })
  it('all: / any: selections and the condition', () => {
    const d = '  a:\n    all:\n      - {field: m, equals: POST}\n      - {field: u, contains: login}\n  b:\n    any:\n      - {field: x, exists: true}\n      - {field: y, exists: true}'
    expect(hit(d, {m: 'POST', u: '/login'}, 'a and not b')).toBe(true)
    expect(hit(d, {m: 'POST', u: '/login', y: 1}, 'a and not b')).toBe(false)
    expect(hit(d, {m: 'GET', u: '/login', y: 1}, 'a or b')).toBe(true)
  })
  it('one operator per matcher', () => {
    expect(() => ruleFromYaml('detect:\n  s: {field: a, equals: x, contains: y}\ncondition: s')).toThrow(/ONE operator/)
  })
  it('evidence carries the field and a bounded, escaped excerpt', () => {
    const m = new RuleSet([ruleFromYaml('detect:\n  s: {field: http.header.*, contains: evil}\ncondition: s\naction: log')])
      .evaluate(pduOf({'http.header.a': 'ok', 'http.header.b': 'evil\x01' + 'z'.repeat(500)}))
    expect(m[0].evidence.field).toBe('http.header.b')
    expect(m[0].evidence.value.startsWith('evil\\x01zz')).toBe(true)
    expect(m[0].evidence.value.length).toBeLessThan(200)
  })
  it('a field with more values than the limit is bounded and reported', () => {
    const anomalies: string[] = []
    const set = new RuleSet([ruleFromYaml('detect:\n  s: {field: h, equals: needle}\ncondition: s\naction: log')], {prefilter: false, anomaly: (a) => anomalies.push(a.event)})
    const vals = Array.from({length: 5000}, () => 'hay')
    vals.push('needle')
    expect(set.evaluate(pduOf({h: vals})).length).toBe(0)
    expect(anomalies).toContain('rules.values_per_matcher')
  })
})

describe('nocase string operators', () => {
  it('agree with comparing lowercased text, with and without a non-letter to look for first', () => {
    // rule strings are latin1 (compile turns others into their UTF-8 bytes); values may hold
    // characters that lowercase to ASCII letters (Kelvin sign, dotted capital I)
    const latin = ['a', 'B', 'k', 'K', 'É', 'é', '$', '{', ':', '-', '1', ' ', 'i']
    const needle = fc.string({unit: fc.constantFrom(...latin), minLength: 1, maxLength: 6})
    const text = fc.string({unit: fc.constantFrom(...latin, '\u212a', '\u0130'), maxLength: 12})
    const ops = ['equals', 'contains', 'startswith', 'endswith'] as const
    fc.assert(fc.property(fc.constantFrom(...ops), fc.array(needle, {minLength: 1, maxLength: 3}), fc.array(text, {maxLength: 8}), (op, strs, values) => {
      const doc = {id: 'T', rev: 1, status: 'test', title: 't', severity: 'low', protocol: 'http', detect: {s: {field: 'f', [op]: strs, nocase: true}}, condition: 's'} as unknown as RuleDoc
      const m = compileRule(doc).rule!.selections[0].matchers[0]
      const needles = strs.map((x) => x.toLowerCase())
      for (const v of values) {
        const l = v.toLowerCase()
        const want = needles.some((x) => (op === 'equals' ? l === x : op === 'contains' ? l.includes(x) : op === 'startswith' ? l.startsWith(x) : l.endsWith(x)))
        expect(evalMatcher(m, new Map([['f', {v}]])), `${op} ${JSON.stringify(strs)} on ${JSON.stringify(v)}`).toBe(want)
      }
    }), {numRuns: Number(process.env.PATCHPOINT_FUZZ_RUNS ?? 1000)})
  })

  it('look for a non-letter only when every string has one', () => {
    const needs = (strs: string[]) => compileRule({id: 'T', rev: 1, status: 'test', title: 't', severity: 'low', protocol: 'http', detect: {s: {field: 'f', contains: strs, nocase: true}}, condition: 's'} as unknown as RuleDoc).rule!.selections[0].matchers[0].needChars
    expect(needs(['${jndi:'])).toEqual(['$'])
    expect(needs(['${jndi:', 'x-y'])).toEqual(['$', '-'])
    expect(needs(['${jndi:', 'abc'])).toBeUndefined()
  })
})
