/**
 * Detection and false-positive rates of the SQL injection detector on the hand-written corpus
 * (test/protections/sqli-corpus.ts), and through the PP-SQLI rule with the real HTTP analyzer
 * (values URL-encoded in a query string, a form body, a cookie and User-Agent).
 */
import {describe, it, expect} from 'vitest'
import {SqliDetector} from '../../src/core/rules/sqli.js'
import {loadRules} from '../../src/core/rules/engine.js'
import {packageRulesDir} from '../../src/core/rules/rule-schema.js'
import {SQLI_ATTACKS, SQLI_BENIGN} from './sqli-corpus.js'
import {get, matchIds} from './http.js'

const d = new SqliDetector()
const sqliRule = loadRules(packageRulesDir).rules.filter((r) => r.id === 'PP-SQLI')
const enc = (s: string) => encodeURIComponent(s)

describe('SQL injection corpus', () => {
  it('has at least 100 injections and 100 benign near misses', () => {
    expect(SQLI_ATTACKS.length).toBeGreaterThanOrEqual(100)
    expect(SQLI_BENIGN.length).toBeGreaterThanOrEqual(100)
  })

  it('detects every injection and flags no benign value (detector)', () => {
    const missed = SQLI_ATTACKS.filter((s) => !d.detect(s).hit)
    const fps = SQLI_BENIGN.filter((s) => d.detect(s).hit)
    const rate = (n: number, of: number) => `${((100 * n) / of).toFixed(1)}%`
    console.log(`sqli detector: detection ${rate(SQLI_ATTACKS.length - missed.length, SQLI_ATTACKS.length)} (${SQLI_ATTACKS.length} injections), false positives ${rate(fps.length, SQLI_BENIGN.length)} (${SQLI_BENIGN.length} benign)`)
    expect(missed).toEqual([])
    expect(fps).toEqual([])
  })

  it('PP-SQLI through the HTTP analyzer: query, form body, cookie, User-Agent', () => {
    expect(sqliRule.length).toBe(1)
    const missed: string[] = []
    for (const [i, s] of SQLI_ATTACKS.entries()) {
      const raw = i % 4 === 0 ? get(`/item?id=${enc(s)}`)
        : i % 4 === 1 ? `POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${`u=${enc(s)}&p=1`.length}\r\n\r\nu=${enc(s)}&p=1`
          : i % 4 === 2 ? get('/', `Cookie: a=1; id=${enc(s)}\r\n`)
            : get('/', `User-Agent: ${s.replace(/[\r\n]/g, ' ')}\r\n`)
      if (!matchIds(sqliRule, raw).includes('PP-SQLI')) missed.push(s)
    }
    const fps: string[] = []
    for (const s of SQLI_BENIGN) {
      if (matchIds(sqliRule, get(`/search?q=${enc(s)}`, `Cookie: pref=${enc(s)}\r\n`)).length > 0) fps.push(s)
    }
    console.log(`PP-SQLI over HTTP: missed ${missed.length}/${SQLI_ATTACKS.length}, false positives ${fps.length}/${SQLI_BENIGN.length}`)
    expect(missed).toEqual([])
    expect(fps).toEqual([])
  })
})
