import {describe, it, expect} from 'vitest'
import {loadRules} from './engine.js'
import {packageRulesDir} from './rule-schema.js'
import {testRule} from './sample-test.js'
import {fakeHttpFactory} from './fake-http.js'
import {ruleFromYaml} from './testing.js'
import {testFactoryFor} from './fields.js'

describe('testRule', () => {
  const {rules} = loadRules(packageRulesDir)
  it('reports a benign sample that matches, a malicious one that does not, and a fix that does not neutralize', () => {
    const rule = ruleFromYaml(`units: [request]
detect:
  s: {field: http.uri.raw, transform: [url_decode], contains: evil}
condition: s
fix:
  - rename: matched
samples:
  malicious:
    - {name: m1, toserver: "GET /evil HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"}
    - {name: m2, toserver: "GET /%65vil HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"}
    - {name: m3, toserver: "GET /good HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"}
  benign:
    - {name: b1, toserver: "GET /evil HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"}
`)
    const res = testRule(rule, fakeHttpFactory)
    const by = Object.fromEntries(res.samples.map((s) => [s.name, s]))
    expect(res.ok).toBe(false)
    expect(by.m1.problems).toEqual([expect.stringMatching(/does not neutralize/)])
    expect(by.m2.problems).toEqual([expect.stringMatching(/does not neutralize/)])
    expect(by.m3.problems).toContain('malicious sample did not match')
    expect(by.b1.problems).toContain('benign sample matched')
  })
  it('every pack rule passes its samples with the real analyzers', () => {
    expect(rules.length).toBeGreaterThanOrEqual(45)
    for (const rule of rules) {
      const factory = testFactoryFor(rule.protocol)
      expect(factory, `${rule.id}: no analyzer for ${rule.protocol}`).toBeDefined()
      const res = testRule(rule, factory!)
      expect(res.samples.filter((s) => !s.ok), rule.id).toEqual([])
    }
  })
})
