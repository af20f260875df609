import {describe, it, expect} from 'vitest'
import fc from 'fast-check'
import {RuleSet, loadRules} from './engine.js'
import {AhoCorasick} from './aho.js'
import {ruleFromYaml, pduOf} from './testing.js'
import {fieldsFor} from './fields.js'
import {packageRulesDir} from './rule-schema.js'
import {evalSelection, type CompiledRule} from './compile.js'
import {evalCondition} from './condition.js'

const RUNS = Number(process.env.PATCHPOINT_FUZZ_RUNS ?? 200)

describe('Aho–Corasick', () => {
  it('finds every pattern, case-insensitively, overlapping', () => {
    const ac = new AhoCorasick(['he', 'she', 'his', 'HERS', '${jndi:'])
    const found = new Uint8Array(5)
    ac.scan('uSHErs', found)
    expect([...found]).toEqual([1, 1, 0, 1, 0])
    found.fill(0)
    ac.scan('x${JNDI:ldap', found)
    expect([...found]).toEqual([0, 0, 0, 0, 1])
  })
  it('agrees with indexOf on random strings', () => {
    fc.assert(fc.property(fc.array(fc.string({unit: fc.constantFrom('a', 'b', 'A', 'c'), minLength: 1, maxLength: 4}), {minLength: 1, maxLength: 6}),
      fc.string({unit: fc.constantFrom('a', 'b', 'B', 'c', 'x'), maxLength: 40}), (pats, text) => {
        const found = new Uint8Array(pats.length)
        new AhoCorasick(pats).scan(text, found)
        pats.forEach((p, i) => expect(found[i] === 1).toBe(text.toLowerCase().includes(p.toLowerCase())))
      }), {numRuns: RUNS})
  })
})

describe('RuleSet', () => {
  it('reports a match only when it involves the unit\'s own bytes (values wholly before its start are context)', () => {
    const r = ruleFromYaml('detect:\n  s: {field: a, equals: x}\n  t: {field: b, exists: true}\n  n: {field: c, exists: true}\ncondition: s and (t or not n)\naction: log')
    const set = new RuleSet([r])
    const at = (start: number, fields: Parameters<typeof pduOf>[0]) => ({...pduOf(fields), start})
    // `a` came from bytes 10..11, the unit starts at 100: context only
    expect(set.evaluate(at(100, {a: {v: 'x', off: 10, len: 1}})).length).toBe(0)
    // a value of the unit's own (b at 120) or a value without a span makes it the unit's
    expect(set.evaluate(at(100, {a: {v: 'x', off: 10, len: 1}, b: {v: 1, off: 120, len: 1}})).length).toBe(1)
    expect(set.evaluate(at(100, {a: {v: 'x', off: 10, len: 1}, b: 1})).length).toBe(1)
    // a value that reaches into the unit counts as its own
    expect(set.evaluate(at(100, {a: {v: 'x', off: 99, len: 2}})).length).toBe(1)
    expect(set.evaluate(at(0, {a: {v: 'x', off: 10, len: 1}})).length).toBe(1)
  })

  it('indexes by protocol, unit kind and direction', () => {
    const r = ruleFromYaml('units: [request]\ndetect:\n  s: {field: a, exists: true}\ncondition: s\naction: log')
    const set = new RuleSet([r])
    expect(set.evaluate(pduOf({a: 1})).length).toBe(1)
    expect(set.evaluate(pduOf({a: 1}, 'response')).length).toBe(0)
    expect(set.evaluate(pduOf({a: 1}, 'request', 'smtp')).length).toBe(0)
    expect(set.evaluate({...pduOf({a: 1}), dir: 'toclient'}).length).toBe(0)
    // the same again, from the cached buckets
    expect(set.evaluate(pduOf({a: 1})).length).toBe(1)
    expect(set.evaluate({...pduOf({a: 1}), dir: 'toclient'}).length).toBe(0)
  })

  it('caches at most maxBuckets buckets and still judges the rest (reported)', () => {
    const r = ruleFromYaml('units: [request]\ndetect:\n  s: {field: a, exists: true}\ncondition: s\naction: log')
    const limits: string[] = []
    const set = new RuleSet([r], {maxBuckets: 2, anomaly: (a) => limits.push(a.event)})
    for (let i = 0; i < 5; i++) {
      expect(set.evaluate(pduOf({a: 1})).length).toBe(1)
      expect(set.evaluate(pduOf({a: 1}, `kind${i}`)).length).toBe(0)
    }
    expect(limits.length).toBeGreaterThan(0)
    expect(new Set(limits)).toEqual(new Set(['rules.buckets']))
  })
  it('actionFor overrides, enabled filters; a fix without a span falls back to drop with a note', () => {
    const r = ruleFromYaml('detect:\n  s: {field: a, equals: y}\ncondition: s\nfix:\n  - rename: a')
    expect(new RuleSet([r], {enabled: () => false}).evaluate(pduOf({a: 'y'})).length).toBe(0)
    expect(new RuleSet([r], {actionFor: () => 'log'}).evaluate(pduOf({a: 'y'}))[0].action).toBe('log')
    const m = new RuleSet([r]).evaluate(pduOf({a: 'y'}))[0]
    expect(m.action).toBe('drop')
    expect(m.note).toBe('fix_unavailable_drop')
    const ok = new RuleSet([r]).evaluate(pduOf({a: {v: 'y', off: 7, len: 1}}))[0]
    expect(ok.action).toBe('fix')
    expect(ok.edits).toEqual([{off: 7, len: 1, data: new Uint8Array([0x58])}])
  })
  it('extracts required literals only from AND paths without non-lowercase transforms', () => {
    const a = ruleFromYaml('detect:\n  s: {field: u, contains: etc/passwd}\n  t: {field: m, equals: GET}\ncondition: s and t')
    expect(a.anchors).toEqual(['etc/passwd'])
    const b = ruleFromYaml('detect:\n  s: {field: u, contains: ABC}\n  t: {field: m, equals: GET}\ncondition: s or t')
    expect(b.anchors?.sort()).toEqual(['abc', 'get'])
    expect(ruleFromYaml('detect:\n  s: {field: u, contains: abc}\ncondition: not s').anchors).toBeUndefined()
    expect(ruleFromYaml('detect:\n  s: {field: u, transform: [url_decode], contains: abc}\ncondition: s').anchors).toBeUndefined()
    expect(ruleFromYaml('detect:\n  s: {field: u, transform: [lowercase], contains: abc}\ncondition: s').anchors).toEqual(['abc'])
    expect(ruleFromYaml('detect:\n  s: {field: u, contains: abc}\n  t: {field: m, exists: true}\ncondition: s or t').anchors).toBeUndefined()
  })

  it('presence needs: one field of each set, from AND paths; nothing from NOT, an unmet-free OR, exists: false or a count 0 meets', () => {
    const needs = (src: string) => ruleFromYaml(src).needs
    expect(needs('detect:\n  s: {field: u, contains: x}\n  t: {fields: [m, h.*], exists: true}\ncondition: s and t'))
      .toEqual([{fields: ['u'], prefixes: []}, {fields: ['m'], prefixes: ['h.']}])
    expect(needs('detect:\n  s: {field: u, contains: x}\n  t: {field: m, gt: 1}\ncondition: s or t')).toEqual([{fields: ['u', 'm'], prefixes: []}])
    expect(needs('detect:\n  s: {field: u, contains: x}\n  t: {field: m, exists: false}\ncondition: s or t')).toBeUndefined()
    expect(needs('detect:\n  s: {field: u, contains: x}\ncondition: not s')).toBeUndefined()
    expect(needs('detect:\n  s: {field: u, count: {lt: 3}}\ncondition: s')).toBeUndefined()
    expect(needs('detect:\n  s: {field: u, count: {gte: 3}}\ncondition: s')).toEqual([{fields: ['u'], prefixes: []}])
    expect(needs('detect:\n  s:\n    any:\n      - {field: a, contains: x}\n      - {field: b, contains: y}\ncondition: s')).toEqual([{fields: ['a', 'b'], prefixes: []}])
    // the same set twice is kept once
    expect(needs('detect:\n  s: {field: u, contains: x}\n  t: {field: u, contains: y}\ncondition: s and t')).toEqual([{fields: ['u'], prefixes: []}])
    const r = ruleFromYaml('detect:\n  s: {field: u, contains: x}\n  t: {field: h.*, exists: true}\ncondition: s and t\naction: log')
    const set = new RuleSet([r])
    expect(set.evaluate(pduOf({u: 'x', 'h.a': 1})).length).toBe(1)
    expect(set.evaluate(pduOf({u: 'x', 'hx': 1})).length).toBe(0)
    expect(set.evaluate(pduOf({'h.a': 1})).length).toBe(0)
    // a field named like a family is a field: its own presence counts, not its family's
    const plain = ruleFromYaml('detect:\n  s: {field: h., exists: true}\ncondition: s\naction: log', {id: 'PP-R-2'})
    expect(new RuleSet([plain]).evaluate(pduOf({'h.': 1})).length).toBe(1)
    const both = new RuleSet([r, plain])
    expect(both.evaluate(pduOf({'h.': 1})).map((m) => m.rule.id)).toEqual(['PP-R-2'])
    expect(both.evaluate(pduOf({'h.a': 1})).length).toBe(0)
  })

  // rules whose literals are drawn from a small alphabet so random PDUs hit and miss them
  const words = ['ab', 'ba', 'abc', 'Ca', 'cab', 'b']
  const ops = ['equals', 'contains', 'startswith', 'endswith']
  const fieldNames = ['f.a', 'f.b', 'g.x']
  const matcherArb = fc.record({
    field: fc.constantFrom('f.a', 'f.b', 'f.*', 'g.x'),
    op: fc.constantFrom(...ops),
    lit: fc.constantFrom(...words),
    nocase: fc.boolean(),
    lower: fc.boolean(),
  }).map((m) => `{field: ${m.field}, ${m.op}: '${m.lit}'${m.nocase ? ', nocase: true' : ''}${m.lower ? ', transform: [lowercase]' : ''}}`)
  // matchers a PDU without the field may satisfy (exists: false, a count 0 meets) or not (presence needs)
  const otherMatcherArb = fc.record({
    field: fc.constantFrom('f.a', 'f.b', 'f.*', 'g.x', 'h.*'),
    test: fc.constantFrom('exists: true', 'exists: false', 'count: {lt: 2}', 'count: {gte: 1}', 'contains: a, count: {lte: 1}', 'length: {gt: 2}'),
  }).map((m) => `{field: ${m.field}, ${m.test}}`)
  const anyMatcherArb = fc.oneof(matcherArb, otherMatcherArb)
  const ruleArb = fc.tuple(anyMatcherArb, anyMatcherArb, anyMatcherArb, fc.constantFrom('s1 and s2', 's1 or s2', 's1 and (s2 or s3)', 'not s1 and s2', '1 of them', 'all of them', 's1 and not s3'))
    .map(([a, b, c, cond]) => `detect:\n  s1: ${a}\n  s2: ${b}\n  s3: ${c}\ncondition: ${cond}\naction: log`)
  const valueArb = fc.string({unit: fc.constantFrom('a', 'b', 'c', 'A', 'B', 'C'), maxLength: 6})
  const pduArb = fc.dictionary(fc.constantFrom(...fieldNames, 'h.y'), fc.oneof(valueArb, fc.array(valueArb, {maxLength: 3})))

  it('property: evaluate with prefilter == evaluate without', () => {
    fc.assert(fc.property(fc.array(ruleArb, {minLength: 1, maxLength: 8}), fc.array(pduArb, {minLength: 1, maxLength: 10}), (srcs, pdus) => {
      const rules: CompiledRule[] = srcs.map((s, i) => ruleFromYaml(s, {id: `PP-R-${i}`}))
      const withPf = new RuleSet(rules)
      const without = new RuleSet(rules, {prefilter: false})
      for (const f of pdus) {
        const p = pduOf(f)
        const ids = withPf.evaluate(p).map((m) => m.rule.id)
        expect(ids).toEqual(without.evaluate(p).map((m) => m.rule.id))
        // and both equal each rule judged alone, its families walked over every field (no gathering)
        const alone = rules.filter((r) => evalCondition(r.condition, (i) => evalSelection(r.selections[i], p.fields))).map((r) => r.id)
        expect(ids).toEqual(alone)
      }
    }), {numRuns: RUNS})
  })

  it('reads: the fields and families its enabled rules match or fix', () => {
    const r = ruleFromYaml('detect:\n  s: {fields: [a.b, h.*], contains: x}\ncondition: s\nfix:\n  - rename: c.d', {id: 'PP-R-1'})
    const other = ruleFromYaml('detect:\n  s: {field: z, exists: true}\ncondition: s', {id: 'PP-R-2'})
    const set = new RuleSet([r, other], {enabled: (x) => x.id === 'PP-R-1'})
    expect(['a.b', 'h.one', 'h.', 'c.d', 'z', 'a', 'h'].map((f) => set.reads(f))).toEqual([true, true, true, true, false, false, false])
    // families: any field of it read, or a read family inside or around it
    expect(['a.', 'c.', 'h.x.', 'z.', 'b.'].map((f) => set.reads(f))).toEqual([true, true, true, false, false])
  })

  it('reads with a direction: only the rules of that direction count; a fixed family counts', () => {
    const up = ruleFromYaml('direction: toserver\ndetect:\n  s: {field: a.b, contains: x}\ncondition: s\nfix:\n  - defuse: {field: f.*, chars: x, with: y}', {id: 'PP-R-1'})
    const down = ruleFromYaml('direction: toclient\ndetect:\n  s: {fields: [c.d, h.*], contains: x}\ncondition: s', {id: 'PP-R-2'})
    const set = new RuleSet([up, down])
    const names = ['a.b', 'c.d', 'h.one', 'h.', 'f.g', 'f.', 'z']
    expect(names.map((f) => set.reads(f, 'toserver'))).toEqual([true, false, false, false, true, true, false])
    expect(names.map((f) => set.reads(f, 'toclient'))).toEqual([false, true, true, true, false, false, false])
    expect(names.map((f) => set.reads(f))).toEqual([true, true, true, true, true, true, false])
  })

  it('fuzz: random PDUs against the pack never throw and matches stay bounded', () => {
    const {rules} = loadRules(packageRulesDir)
    const set = new RuleSet(rules, {maxMatchesPerPdu: 2})
    fc.assert(fc.property(fc.dictionary(fc.constantFrom('http.header.a', 'http.uri.raw', 'http.arg.q', 'http.body', 'http.range.count', 'http.range.end'),
      fc.oneof(fc.string({maxLength: 40}), fc.integer(), fc.bigInt())), (f) => {
      const out = set.evaluate(pduOf(f))
      expect(out.length).toBeLessThanOrEqual(2)
    }), {numRuns: RUNS})
  })

  it('loads the package pack against the real analyzers\' fields, without errors', () => {
    const {rules, errors} = loadRules(packageRulesDir, {fieldsFor})
    expect(errors).toEqual([])
    expect(rules.map((r) => r.id)).toEqual(expect.arrayContaining(['PP-2011-3192', 'PP-2021-44228', 'PP-SHELLSHOCK', 'PP-2014-0160', 'PP-2020-1472']))
  })
})
