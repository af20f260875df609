import {describe, it, expect} from 'vitest'
import fc from 'fast-check'
import {SqliDetector, detectSqli, isSqli, MAX_SQLI_MEMO, MAX_SQLI_MEMO_CHARS, MAX_TOKENS} from './sqli.js'
import {RuleSet} from './engine.js'
import {pduOf, ruleFromYaml} from './testing.js'
import {compileRule} from './compile.js'
import type {RuleDoc} from './types.js'

const RUNS = Number(process.env.PATCHPOINT_FUZZ_RUNS ?? 300)
const d = new SqliDetector()

describe('SQL tokenizer fingerprints', () => {
  it('folds strings, numbers, keywords, operators, comments per context', () => {
    expect(d.fingerprint("1' OR '1'='1", "'")).toBe('s&sos')
    expect(d.fingerprint("1' OR '1'='1", 'as-is')).toBe('nsnsn')
    expect(d.fingerprint('-1 UNION ALL SELECT @@version,0x41--', 'as-is')).toBe('onUkEv,nc')
    expect(d.fingerprint('1/**/UNION/**/SELECT/**/1', 'as-is')).toBe('nUEn')
    expect(d.fingerprint('1 /*!50000UNION*/ /*!SELECT*/ 1', 'as-is')).toBe('nUEn')
    expect(d.fingerprint("admin'#", "'")).toBe('sc')
    expect(d.fingerprint("x' AND SLEEP(5)", "'")).toBe('s&T(n)')
    expect(d.fingerprint('`t`.id; DROP TABLE t', 'as-is')).toBe('bxb;Ekb')
    expect(d.fingerprint("O'Brien", "'")).toBe('sb')
  })
  it('escapes: doubled quotes and backslashes keep the string open', () => {
    expect(d.fingerprint("it''s or 1=1", "'")).toBe('s')
    expect(d.fingerprint("it\\'s' or 1=1--", "'")).toBe('s&nonc')
    expect(d.fingerprint("it\\'s' or 1=1--", "'", false)).toBe('sbs')
  })
  it('stops at MAX_TOKENS', () => {
    expect(d.fingerprint('1 '.repeat(500), 'as-is').length).toBe(MAX_TOKENS)
  })
})

describe('SQL injection judgement', () => {
  it('names the context and the grammar rule', () => {
    expect(detectSqli("1' OR '1'='1")).toMatchObject({hit: true, context: "'", reason: 'boolean'})
    expect(detectSqli('-1 UNION SELECT 1')).toMatchObject({hit: true, context: 'as-is', reason: 'union_select'})
    expect(detectSqli('" or 1=1--')).toMatchObject({hit: true, context: '"'})
    expect(detectSqli("x'; DROP TABLE users--")).toMatchObject({hit: true, reason: 'stacked_query'})
    expect(detectSqli('1 AND SLEEP(5)')).toMatchObject({hit: true, reason: 'time_delay'})
    expect(detectSqli("admin'--")).toMatchObject({hit: true, reason: 'break_comment'})
    expect(detectSqli("1' ORDER BY 3--")).toMatchObject({hit: true, reason: 'clause'})
  })
  it('prose and data pass', () => {
    for (const s of ["O'Brien", "it's fine", 'a sentence that mentions union select of the library', 'bob@example.com',
      '{"a":"it\'s","n":1}', '42', '1 or 2', 'sleep(8 hours)', "what is 'union select'", 'Select the union of two sets']) {
      expect({s, hit: detectSqli(s).hit}).toEqual({s, hit: false})
    }
  })
  it('a comparison needs a valid statement tail: trailing prose cancels it', () => {
    expect(detectSqli('2 and 2=4').hit).toBe(true)
    expect(detectSqli('2 and 2=4 apples').hit).toBe(false)
  })
  it('padding before the break cannot hide an attack (strings are one token)', () => {
    expect(detectSqli('x'.repeat(20_000) + "' OR 1=1--").hit).toBe(true)
    expect(detectSqli('a '.repeat(5000) + "' OR 1=1--").hit).toBe(true)
  })
  it('letters, blanks and punctuation without quotes, digits or parentheses never hit', () => {
    fc.assert(fc.property(fc.stringMatching(/^[a-zA-Z ,.!?;:-]{0,80}$/), (s) => !detectSqli(s).hit), {numRuns: RUNS})
  })
  it('never throws, bounded time on arbitrary input', () => {
    const t = Date.now()
    fc.assert(fc.property(fc.string({maxLength: 300}), (s) => typeof detectSqli(s).hit === 'boolean'), {numRuns: RUNS})
    fc.assert(fc.property(fc.array(fc.constantFrom("'", '"', '(', ')', ' or ', '1', '=', '--', '/*', '*/', 'select', 'union', ';', 'sleep', ',', '\\', '#'), {maxLength: 60}),
      (parts) => typeof detectSqli(parts.join('')).hit === 'boolean'), {numRuns: RUNS})
    const big = "'(".repeat(40_000)
    detectSqli(big)
    expect(Date.now() - t).toBeLessThan(5000)
  })
})

describe('the `sqli` matcher operator', () => {
  const rule = ruleFromYaml('detect:\n  s: {field: http.args, transform: [url_decode], sqli: true}\ncondition: s\naction: drop')
  const set = new RuleSet([rule])
  it('matches injected values and not benign ones; transforms run first', () => {
    expect(set.evaluate(pduOf({'http.args': ['ok', "1' OR '1'='1"]})).length).toBe(1)
    expect(set.evaluate(pduOf({'http.args': '1%27%20OR%201%3D1--'})).length).toBe(1)
    expect(set.evaluate(pduOf({'http.args': ["O'Brien", 'hello']})).length).toBe(0)
  })
  it('sqli: false holds on values that are not injections; one operator per matcher', () => {
    const neg = new RuleSet([ruleFromYaml('detect:\n  s: {field: http.args, sqli: false}\ncondition: s')])
    expect(neg.evaluate(pduOf({'http.args': 'hello'})).length).toBe(1)
    expect(neg.evaluate(pduOf({'http.args': '1 OR 1=1'})).length).toBe(0)
    const doc = {id: 'X', rev: 1, status: 'test', title: 't', severity: 'low', protocol: 'http', detect: {s: {field: 'http.args', sqli: true, contains: 'x'}}, condition: 's'} as unknown as RuleDoc
    expect(compileRule(doc).problems.map((p) => p.message).join()).toContain('ONE operator')
  })
})

describe('isSqli verdict memo', () => {
  it('gives the detector\'s verdict for repeated, long and more than MAX_SQLI_MEMO distinct values', () => {
    const attacks = ["1' OR '1'='1", '-1 UNION SELECT 1', "x'; DROP TABLE users--"]
    const benign = ["O'Brien", 'hello world', 'Mozilla/5.0 (X11; Linux x86_64)']
    const long = '1 UNION SELECT ' + 'a'.repeat(MAX_SQLI_MEMO_CHARS)
    for (let round = 0; round < 3; round++) {
      for (const v of [...attacks, long]) expect(isSqli(v), v.slice(0, 40)).toBe(true)
      for (const v of benign) expect(isSqli(v), v).toBe(false)
    }
    // fill the memo past its cap (it empties and starts over), then ask again
    for (let i = 0; i <= MAX_SQLI_MEMO + 10; i++) {
      const v = i % 2 === 0 ? `${i}' OR 'a'='a` : `item ${i}`
      expect(isSqli(v)).toBe(detectSqli(v).hit)
    }
    for (const v of attacks) expect(isSqli(v)).toBe(true)
    for (const v of benign) expect(isSqli(v)).toBe(false)
  })
})
