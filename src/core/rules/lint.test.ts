import {describe, it, expect} from 'vitest'
import {mkdtempSync, writeFileSync, mkdirSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {lintRuleText, lintRules, formatLintError} from './lint.js'
import {fakeHttpFactory} from './fake-http.js'

const opts = {fieldsFor: (p: string) => (p === 'http' ? fakeHttpFactory.fields : undefined)}
const GOOD = `id: PP-TEST-1
rev: 1
status: test
title: t
severity: low
protocol: http
detect:
  s:
    field: http.uri.raw
    contains: x
condition: s
`
const lint = (text: string, file = 'rules/x/PP-TEST-1.yaml') => lintRuleText(text, file, opts).errors.map(formatLintError)

describe('rule lint', () => {
  it('a good rule has no errors', () => {
    expect(lint(GOOD)).toEqual([])
  })
  it('schema errors point at file:line:col with did-you-mean', () => {
    const out = lint(GOOD.replace('    contains: x', '    contians: x'))
    expect(out.some((l) => l.startsWith("rules/x/PP-TEST-1.yaml:10:5: unknown key 'contians'"))).toBe(true)
    expect(lint(GOOD.replace('severity: low', 'severity: lo'))[0]).toMatch(/^rules\/x\/PP-TEST-1\.yaml:5:11: severity: must be one of/)
  })
  it('YAML syntax errors have positions', () => {
    expect(lint(GOOD + 'x: [\n')[0]).toMatch(/^rules\/x\/PP-TEST-1\.yaml:\d+:\d+: /)
  })
  it('semantic errors: regex, unknown field, condition, version range, id/file, stable without samples', () => {
    expect(lint(GOOD.replace('    contains: x', "    regex: '(a)\\1'"))[0]).toMatch(/:10:12: .*RE2/)
    expect(lint(GOOD.replace('http.uri.raw', 'http.uri.rawx'))[0]).toMatch(/:9:12: unknown field 'http.uri.rawx'/)
    expect(lint(GOOD.replace('field: http.uri.raw', 'field: http.header.*'))).toEqual([])
    expect(lint(GOOD.replace('condition: s', 'condition: s and t'))[0]).toMatch(/:11:12: condition: unknown selection 't'/)
    expect(lint(GOOD.replace('protocol: http', 'protocol: gopher'))[0]).toMatch(/:6:11: no analyzer for protocol 'gopher'/)
    expect(lint(GOOD + "affects:\n  - product: a/b\n    versions: ['>=x.1']\n")[0]).toMatch(/:14:16: version range '>=x.1'/)
    expect(lint(GOOD, 'rules/x/PP-OTHER.yaml')[0]).toMatch(/:1:5: id 'PP-TEST-1' does not match the file name/)
    expect(lint(GOOD.replace('status: test', 'status: stable'))[0]).toMatch(/:3:9: a stable rule needs/)
    expect(lint(GOOD + 'fix:\n  - {rename: http.header_name.range, remove: x}\n')[0]).toMatch(/:13:5: a fix item takes exactly one/)
  })
  it('duplicate ids across files', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pp-rules-'))
    mkdirSync(path.join(dir, 'a'))
    mkdirSync(path.join(dir, 'b'))
    writeFileSync(path.join(dir, 'a', 'PP-TEST-1.yaml'), GOOD)
    writeFileSync(path.join(dir, 'b', 'PP-TEST-1.yaml'), GOOD)
    const r = lintRules([dir], opts)
    expect(r.rules.length).toBe(1)
    expect(r.errors.map((e) => e.message)).toEqual([expect.stringMatching(/duplicate rule id 'PP-TEST-1'/)])
  })
})
