import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {fileURLToPath} from 'node:url'
import {RE2JS} from 're2js'
import {fixedSuffixLength, mayMatch, requiredLiterals} from './regex-literals.js'
import {loadRules} from './engine.js'
import {compileRule, evalMatcher} from './compile.js'
import type {RuleDoc} from './types.js'

const runs = (n: number) => Number(process.env.PATCHPOINT_FUZZ_RUNS ?? n)
const rulesDir = fileURLToPath(new URL('../../../rules/', import.meta.url))

describe('requiredLiterals', () => {
  it('reads the literal runs of the top level', () => {
    expect(requiredLiterals(String.raw`^\s*\(\s*\)\s*\{`)).toEqual([['(', ')', '{']])
    expect(requiredLiterals(String.raw`\$\{jndi:`)).toEqual([['${jndi:']])
    expect(requiredLiterals(String.raw`\.\./x`)).toEqual([['../x']])
    expect(requiredLiterals(String.raw`bytes=\d+-\d{20,}`)).toEqual([['bytes=', '-']])
  })

  it('drops optional atoms, groups, classes and escape classes', () => {
    expect(requiredLiterals('abc?d')).toEqual([['ab', 'd']])
    expect(requiredLiterals('ab*c')).toEqual([['a', 'c']])
    expect(requiredLiterals('ab{0,3}c')).toEqual([['a', 'c']])
    expect(requiredLiterals('ab+c')).toEqual([['ab', 'c']])
    expect(requiredLiterals('x(ab|cd)y[z]w')).toEqual([['x', 'y', 'w']])
    expect(requiredLiterals(String.raw`a\d\x41b\101c`)).toEqual([['a', 'b', 'c']])
  })

  it('gives one list per branch of a top-level alternation, and only non-letters when case-insensitive', () => {
    expect(requiredLiterals('abc|def')).toEqual([['abc'], ['def']])
    expect(requiredLiterals('abc|[d]ef|x')).toEqual([['abc'], ['ef'], ['x']])
    expect(requiredLiterals('abc|\\d')).toEqual([])
    expect(requiredLiterals('<a|<b', true)).toEqual([['<']])
    expect(requiredLiterals('(?i)jndi:ldap')).toEqual([[':']])
    expect(requiredLiterals(String.raw`\$\{jndi:`, true)).toEqual([['${', ':']])
    expect(requiredLiterals('select', true)).toEqual([])
  })

  it('a value the regex matches always contains the literals (random patterns and values)', () => {
    const atom = fc.oneof(
      fc.constantFrom('a', 'b', 'A', '(', ')', '{', '$', '-', '.', '\\(', '\\{', '\\.', '\\d', '\\s', '[ab]', '(a|b)', '(?i)', '\\x41', '\\101', '|', '^', '$', '\\b', '(?:ab)', '[^a]', '(?s)', '\\pL', '\\n'),
      fc.constantFrom('a', 'b', '('),
    )
    const quant = fc.constantFrom('', '', '', '*', '+', '?', '{0,2}', '{1,2}', '*?', '{2}', '{0}', '??', '+?', '{1,}')
    const pattern = fc.array(fc.tuple(atom, quant), {minLength: 1, maxLength: 8}).map((xs) => xs.map(([a, q]) => (a === '(?i)' ? a : a + q)).join(''))
    fc.assert(fc.property(pattern, fc.boolean(), fc.array(fc.string({unit: fc.constantFrom('a', 'b', 'A', 'B', '(', ')', '{', '$', '-', '.', ' ', '1', '\n', 'é')}), {maxLength: 30}), (p, ci, values) => {
      let re: RE2JS
      try {
        re = RE2JS.compile(p, (ci ? RE2JS.CASE_INSENSITIVE : 0) | RE2JS.DOTALL)
      } catch {
        return
      }
      const lits = requiredLiterals(p, ci)
      for (const v of values) if (re.test(v)) expect(mayMatch(v, lits), `${p} on ${JSON.stringify(v)} needs ${JSON.stringify(lits)}`).toBe(true)
    }), {numRuns: runs(2000)})
  })

  it('every regex of the rule pack: each sample string it matches contains its literals', () => {
    const {rules} = loadRules(rulesDir)
    const values: string[] = []
    const collect = (x: unknown): void => {
      if (typeof x === 'string') {
        values.push(x, ...x.split(/\r?\n|: |[?&;=]/))
      } else if (Array.isArray(x)) x.forEach(collect)
      else if (x && typeof x === 'object') Object.values(x).forEach(collect)
    }
    for (const r of rules) collect(r.doc.samples)
    let checked = 0
    let skipped = 0
    for (const r of rules) {
      for (const s of r.selections) {
        for (const m of s.matchers) {
          m.res.forEach((re, i) => {
            for (const v of values) {
              if (!re.test(v)) continue
              checked++
              expect(mayMatch(v, m.musts[i]), `${r.id} ${s.name}: ${JSON.stringify(m.musts[i])} in ${JSON.stringify(v.slice(0, 80))}`).toBe(true)
            }
            if (m.musts[i].length === 0) skipped++
          })
        }
      }
    }
    expect(checked).toBeGreaterThan(50)
    // most regexes of the pack give a literal to check first
    expect(skipped).toBeLessThan(checked)
  })
})

describe('fixedSuffixLength', () => {
  it('gives the one match length of `P$`, and nothing when lengths vary or P looks around', () => {
    expect(fixedSuffixLength('\x00{516}$')).toBe(516)
    expect(fixedSuffixLength('\x00{8}.{4}$')).toBe(12)
    expect(fixedSuffixLength(String.raw`(?:ab|cd)[x-z]\.\x41\pL$`)).toBe(6)
    expect(fixedSuffixLength(String.raw`a\\$`)).toBe(2)
    for (const p of ['ab', String.raw`a\$`, 'a|b$', 'a*$', 'a?$', 'a{2,3}$', 'a{2,}$', '(?:ab|c)$', '^ab$', String.raw`\bab$`, '(?i)ab$', String.raw`a\z$`, '(?P<n>a)$', '$']) {
      expect(fixedSuffixLength(p), p).toBeUndefined()
    }
  })

  it('a matcher running `^(?:P)$` on the last L characters agrees with RE2 on the whole value (random patterns and values)', () => {
    const atom = fc.constantFrom('a', 'b', '.', '\\x00', '\\d', '[ab]', '[^a]', '(?:ab|ba)', '(a|b)', '\\.', '\\pL', 'a?', 'b*', '^', '\\b', '$', '|')
    const quant = fc.constantFrom('', '', '{2}', '{3}', '{1,2}', '{2}?')
    const pattern = fc.array(fc.tuple(atom, quant), {minLength: 1, maxLength: 6}).map((xs) => xs.map(([a, q]) => a + q).join('') + '$')
    const value = fc.string({unit: fc.constantFrom('a', 'b', 'A', '\x00', '.', '1', '\n', 'é', '\u{1F600}'), maxLength: 40})
    let fixed = 0
    fc.assert(fc.property(pattern, fc.boolean(), fc.array(value, {maxLength: 20}), (p, ci, values) => {
      let re: RE2JS
      try {
        re = RE2JS.compile(p, (ci ? RE2JS.CASE_INSENSITIVE : 0) | RE2JS.DOTALL)
      } catch {
        return
      }
      if (fixedSuffixLength(p) !== undefined) fixed++
      const doc = {id: 'T', rev: 1, status: 'test', title: 't', severity: 'low', protocol: 'http', detect: {s: {field: 'f', regex: p, nocase: ci}}, condition: 's'} as unknown as RuleDoc
      const m = compileRule(doc).rule!.selections[0].matchers[0]
      for (const v of values) expect(evalMatcher(m, new Map([['f', {v}]])), `${p} on ${JSON.stringify(v)}`).toBe(re.test(v))
    }), {numRuns: runs(2000)})
    expect(fixed).toBeGreaterThan(100)
  })
})
