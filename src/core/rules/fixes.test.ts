import {describe, it, expect} from 'vitest'
import {applyEdits} from './fixes.js'
import {RuleSet} from './engine.js'
import {ruleFromYaml} from './testing.js'
import {runAnalyzer, bytes} from '../analyzers/harness.js'
import {fakeHttpFactory} from './fake-http.js'
import {applyEditsToScript} from './sample-test.js'

const latin1 = (b: Uint8Array) => Buffer.from(b).toString('latin1')

function fixOf(fix: string, req: string, detect = "  s: {field: http.header.user-agent, contains: evil}") {
  const rule = ruleFromYaml(`units: [request]\ndetect:\n${detect}\ncondition: s\nfix:\n${fix}\naction: fix`)
  const data = bytes(req)
  const pdus = runAnalyzer(fakeHttpFactory, [{dir: 'toserver', data}]).pdus
  const m = new RuleSet([rule]).evaluate(pdus[0])[0]
  return {m, out: latin1(applyEdits(data, 0, m.edits))}
}

const REQ = 'GET /a HTTP/1.1\r\nHost: x\r\nUser-Agent: evil ${x}\r\n\r\n'

describe('fixes land on the right bytes', () => {
  it('rename: first byte of the header name', () => {
    const {m, out} = fixOf('  - rename: http.header_name.user-agent', REQ)
    expect(out).toBe(REQ.replace('User-Agent', 'Xser-Agent'))
    expect(m.inline).toBe(true)
  })
  it('overwrite: default filler for http is a space; `with` overrides; `matched` targets the matched value', () => {
    expect(fixOf('  - overwrite: matched', REQ).out).toBe(REQ.replace('evil ${x}', '         '))
    expect(fixOf("  - {overwrite: http.header.user-agent, with: '-'}", REQ).out).toBe(REQ.replace('evil ${x}', '---------'))
  })
  it('defuse replaces only the listed characters', () => {
    expect(fixOf("  - defuse: {field: matched, chars: '${}'}", REQ).out).toBe(REQ.replace('evil ${x}', 'evil __x_'))
  })
  it('proxy-only fixes change the length and are not inline', () => {
    const t = fixOf('  - truncate: {field: http.header.user-agent, length: 2}', REQ)
    expect(t.out).toBe(REQ.replace('evil ${x}', 'ev'))
    expect(t.m.inline).toBe(false)
    expect(fixOf('  - remove: http.header.user-agent', REQ).out).toBe(REQ.replace('evil ${x}', ''))
    expect(fixOf('  - replace_unit: "GET / HTTP/1.0\\r\\n\\r\\n"', REQ).out).toBe('GET / HTTP/1.0\r\n\r\n')
    const r = fixOf("  - reply: \"HTTP/1.1 400 Bad Request\\r\\nContent-Length: 0\\r\\n\\r\\n\"", REQ)
    expect(latin1(r.m.reply!)).toBe('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n')
    expect(r.out).toBe('')
  })
  it('applies at absolute offsets of a later request and ignores out-of-buffer / overlapping edits', () => {
    const two = 'GET / HTTP/1.1\r\nHost: a\r\n\r\n' + REQ
    const rule = ruleFromYaml('detect:\n  s: {field: http.header.user-agent, contains: evil}\ncondition: s\nfix:\n  - rename: http.header_name.user-agent')
    const pdus = runAnalyzer(fakeHttpFactory, [{dir: 'toserver', data: bytes(two)}]).pdus
    const m = new RuleSet([rule]).evaluate(pdus[1])[0]
    expect(m.edits[0].off).toBe(two.indexOf('User-Agent'))
    // the same edit applied to a buffer that starts at the second request
    const second = bytes(two).subarray(two.indexOf('GET /a'))
    expect(latin1(applyEdits(second, two.indexOf('GET /a'), m.edits))).toBe(REQ.replace('User-Agent', 'Xser-Agent'))
    expect(latin1(applyEdits(bytes('abc'), 10, [{off: 5, len: 1, data: bytes('x')}]))).toBe('abc')
    expect(latin1(applyEdits(bytes('abcdef'), 0, [{off: 1, len: 3, data: bytes('XYZ')}, {off: 2, len: 1, data: bytes('Q')}]))).toBe('aXYZef')
  })
  it('script remapping keeps step order across length-changing edits', () => {
    const script = [{dir: 'toserver' as const, data: bytes('abcd')}, {dir: 'toclient' as const, data: bytes('12')}, {dir: 'toserver' as const, data: bytes('efgh')}]
    const out = applyEditsToScript(script, {toserver: [{off: 2, len: 4, data: bytes('_')}], toclient: []})
    expect(out.map((s) => latin1(s.data))).toEqual(['ab_', '12', 'gh'])
  })
})
