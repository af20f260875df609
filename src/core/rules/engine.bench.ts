/**
 * Micro benchmark of the rule engine: PDUs/s over realistic HTTP requests with the package pack
 * plus N synthetic literal rules, with the prefilter and without, in the same run.
 * Run: `npx tsx`-free: `npm run build && node -e "import('./dist/core/rules/engine.bench.js').then(m => console.log(m.benchRules()))"`
 */
import {runAnalyzer, bytes} from '../analyzers/harness.js'
import type {Pdu} from '../analyzers/types.js'
import {compileRule, type CompiledRule} from './compile.js'
import {RuleSet, loadRules} from './engine.js'
import {fakeHttpFactory} from './fake-http.js'
import {packageRulesDir} from './rule-schema.js'
import type {RuleDoc} from './types.js'

export interface BenchResult {
  rules: number
  pdus: number
  withPrefilterPerSec: number
  withoutPrefilterPerSec: number
  speedup: number
  matchesWith: number
  matchesWithout: number
}

function syntheticRules(n: number): CompiledRule[] {
  const out: CompiledRule[] = []
  for (let i = 0; i < n; i++) {
    const doc = {
      id: `PP-BENCH-${i}`, rev: 1, status: 'test', title: 'bench', severity: 'low', protocol: 'http', units: ['request'],
      detect: {
        path: {field: 'http.uri.raw', contains: `/vuln-endpoint-${i}/`},
        arg: {field: 'http.arg.*', transform: ['url_decode_all'], regex: `(?i)select.+from.+tbl${i}`},
      },
      condition: 'path and arg', action: 'log',
    } as unknown as RuleDoc
    const {rule} = compileRule(doc)
    if (rule) out.push(rule)
  }
  return out
}

function samplePdus(): Pdu[] {
  const reqs = [
    'GET /index.html?lang=en&page=2 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0\r\nAccept: text/html\r\nCookie: sid=abcdef0123456789; theme=dark\r\n\r\n',
    'POST /api/login HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 29\r\n\r\nuser=alice&password=s3cr3t!!!',
    'GET /static/app.js HTTP/1.1\r\nHost: www.example.com\r\nRange: bytes=0-1023\r\nReferer: https://www.example.com/\r\n\r\n',
    'GET /vuln-endpoint-7/x?q=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: curl/8.0\r\n\r\n',
  ]
  const pdus: Pdu[] = []
  for (const r of reqs) pdus.push(...runAnalyzer(fakeHttpFactory, [{dir: 'toserver', data: bytes(r)}]).pdus)
  return pdus
}

function measure(set: RuleSet, pdus: readonly Pdu[], minMs: number): {perSec: number; matches: number} {
  let n = 0
  let matches = 0
  const t0 = performance.now()
  let t = t0
  while (t - t0 < minMs) {
    for (let i = 0; i < pdus.length; i++) matches += set.evaluate(pdus[i]).length
    n += pdus.length
    t = performance.now()
  }
  return {perSec: Math.round((n * 1000) / (t - t0)), matches}
}

/** PDUs/s with and without the prefilter, same rules and PDUs, same run. */
export function benchRules(opts: {syntheticRules?: number; ms?: number} = {}): BenchResult {
  const rules = [...loadRules(packageRulesDir).rules, ...syntheticRules(opts.syntheticRules ?? 300)]
  const pdus = samplePdus()
  const ms = opts.ms ?? 1000
  const withPf = new RuleSet(rules)
  const without = new RuleSet(rules, {prefilter: false})
  measure(withPf, pdus, 50)
  measure(without, pdus, 50)
  const a = measure(withPf, pdus, ms)
  const b = measure(without, pdus, ms)
  return {
    rules: rules.length, pdus: pdus.length,
    withPrefilterPerSec: a.perSec, withoutPrefilterPerSec: b.perSec,
    speedup: Math.round((a.perSec / b.perSec) * 10) / 10,
    matchesWith: a.matches, matchesWithout: b.matches,
  }
}
