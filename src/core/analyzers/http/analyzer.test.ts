import {describe, expect, it} from 'vitest'
import {bytes, runAnalyzer, summarize, type ScriptStep} from '../harness.js'
import type {AnalyzerContext, Pdu} from '../types.js'
import {HttpAnalyzer, httpAnalyzer, httpAnalyzerWith, type HttpLimits} from './index.js'
import {spanProblems, val, vals} from './testing.js'
import {readsMismatches} from '../testing.js'
import fc from 'fast-check'

function conv(steps: [('>' | '<'), string][]): ScriptStep[] {
  return steps.map(([d, t]) => ({dir: d === '>' ? 'toserver' : 'toclient', data: bytes(t)}))
}

function run(steps: ScriptStep[], limits: Partial<HttpLimits> = {}) {
  const factory = Object.keys(limits).length > 0 ? httpAnalyzerWith(limits) : httpAnalyzer
  const r = runAnalyzer(factory, steps)
  const streams = {
    toserver: Uint8Array.from(Buffer.concat(steps.filter((s) => s.dir === 'toserver').map((s) => s.data))),
    toclient: Uint8Array.from(Buffer.concat(steps.filter((s) => s.dir === 'toclient').map((s) => s.data))),
  }
  expect(spanProblems(r.pdus, streams)).toEqual([])
  // split invariance on every hand-written case too
  expect(summarize(runAnalyzer(factory, steps, {chunkSize: 1}).pdus)).toEqual(summarize(r.pdus))
  return {...r, events: r.anomalies.map((a) => a.event), reqs: r.pdus.filter((p) => p.dir === 'toserver'), resps: r.pdus.filter((p) => p.dir === 'toclient')}
}

const req = (t: string) => run(conv([['>', t]]))

describe('requests', () => {
  it('request line, URI forms, headers, cookies, args', () => {
    const r = req('GET /a/../b/x.PHP;jsessionid=1?id=1%27+OR+1&x=%2541&id=2 HTTP/1.1\r\nHost: h\r\nCookie: s=abc; T=1\r\nX-Multi: 1\r\nx-multi: 2\r\n\r\n')
    expect(r.events).toEqual([])
    const p = r.pdus[0]
    expect(p.kind).toBe('request')
    expect([p.start, p.end]).toEqual([0, r.pdus[0].end])
    expect(val(p, 'http.method')).toBe('GET')
    expect(val(p, 'http.version')).toBe('HTTP/1.1')
    expect(val(p, 'http.uri.path.raw')).toBe('/a/../b/x.PHP;jsessionid=1')
    expect(val(p, 'http.uri.path')).toBe('/b/x.PHP')
    expect(val(p, 'http.uri.extension')).toBe('php')
    expect(vals(p, 'http.uri.path_params')).toEqual(['jsessionid=1'])
    expect(vals(p, 'http.uri.segments')).toEqual(['b', 'x.PHP'])
    expect(val(p, 'http.uri.query.raw')).toBe('id=1%27+OR+1&x=%2541&id=2')
    expect(val(p, 'http.uri.decoded')).toBe("/b/x.PHP?id=1'+OR+1&x=%41&id=2")
    expect(vals(p, 'http.arg.id')).toEqual(["1' OR 1", '2'])
    expect(vals(p, 'http.arg.x')).toEqual(['%41'])
    expect(vals(p, 'http.args')).toEqual(["1' OR 1", '%41', '2'])
    expect(vals(p, 'http.arg_names')).toEqual(['id', 'x', 'id'])
    expect(vals(p, 'http.header.x-multi')).toEqual(['1', '2'])
    expect(vals(p, 'http.header_name.x-multi')).toEqual(['X-Multi', 'x-multi'])
    expect(vals(p, 'http.header_names')).toEqual(['Host', 'Cookie', 'X-Multi', 'x-multi'])
    expect(val(p, 'http.headers.count')).toBe(4)
    expect(val(p, 'http.header_bytes')).toBe(p.end - p.start)
    expect(vals(p, 'http.cookie.s')).toEqual(['abc'])
    expect(vals(p, 'http.cookie.t')).toEqual(['1'])
    expect(val(p, 'http.body.length')).toBe(0)
    expect(p.fields.has('http.body')).toBe(false)
  })

  it('absolute-form target', () => {
    const p = req('GET http://evil.example:81/%2e%2e/etc/passwd HTTP/1.1\r\n\r\n').pdus[0]
    expect(val(p, 'http.uri.host')).toBe('evil.example:81')
    expect(val(p, 'http.uri.path')).toBe('/etc/passwd')
  })

  it('URI anomalies are reported', () => {
    expect(req('GET /scripts/..%255c../winnt/system32/cmd.exe?/c+dir HTTP/1.0\r\n\r\n').events).toEqual(['http.uri.double_encoding', 'http.uri.traversal_above_root'])
    expect(req('GET /%u002e%u002e/a HTTP/1.1\r\n\r\n').events).toEqual(['http.uri.u_encoding', 'http.uri.traversal_above_root'])
  })

  it('Content-Length body, urlencoded args with spans, pipelined next request', () => {
    const body = 'user=admin&pass=%27or%271%27%3D%271'
    const r = req(`POST /login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body}GET /next HTTP/1.1\r\n\r\n`)
    expect(r.events).toEqual([])
    expect(r.pdus.length).toBe(2)
    const p = r.pdus[0]
    expect(val(p, 'http.body')).toBe(body)
    expect(p.fields.get('http.body')).toMatchObject({off: p.end - body.length, len: body.length})
    expect(val(p, 'http.body.length')).toBe(body.length)
    expect(val(p, 'http.content_length')).toBe(BigInt(body.length))
    expect(vals(p, 'http.arg.pass')).toEqual(["'or'1'='1"])
    expect(vals(p, 'http.args')).toEqual(['admin', "'or'1'='1"])
    expect(val(r.pdus[1], 'http.uri.raw')).toBe('/next')
    expect(r.pdus[1].start).toBe(p.end)
  })

  it('chunked body with extensions and trailers is de-chunked', () => {
    const r = req('POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\nGET / HTTP/1.1\r\n\r\n')
    expect(r.events).toEqual([])
    const p = r.pdus[0]
    expect(val(p, 'http.body')).toBe('hello world')
    expect(p.fields.get('http.body')).not.toHaveProperty('off')
    expect(val(p, 'http.chunks')).toBe(2)
    expect(vals(p, 'http.chunk_ext')).toEqual([';ext=1'])
    expect(vals(p, 'http.trailer.x-trailer')).toEqual(['t'])
    expect(vals(p, 'http.transfer_encoding')).toEqual(['chunked'])
    expect(r.pdus.length).toBe(2)
  })

  it('JSON bodies: string values as http.json_values (JSON escapes decoded, spans of the raw strings)', () => {
    const body = '{"id":"1 OR 1=1","q":["a\\u0027b"],"n":1}'
    for (const ct of ['application/json', 'application/vnd.api+json; charset=utf-8', 'text/json']) {
      const r = req(`POST /api HTTP/1.1\r\nContent-Type: ${ct}\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
      expect(vals(r.pdus[0], 'http.json_values'), ct).toEqual(['1 OR 1=1', "a'b"])
      expect(vals(r.pdus[0], 'http.args')).toEqual([])
    }
    expect(vals(req(`POST /api HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`).pdus[0], 'http.json_values')).toEqual([])
  })

  it('multipart/form-data: names, filenames, part bodies, fields as args', () => {
    const body = '--B\r\nContent-Disposition: form-data; name="note"\r\n\r\nhi there\r\n--B\r\nContent-Disposition: form-data; name="file"; filename="shell.php"\r\nContent-Type: application/x-php\r\n\r\n<?php system($_GET[1]); ?>\r\n--B--\r\n'
    const r = req(`POST /upload HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
    expect(r.events).toEqual([])
    const p = r.pdus[0]
    expect(vals(p, 'http.multipart.name')).toEqual(['note', 'file'])
    expect(vals(p, 'http.multipart.filename')).toEqual(['shell.php'])
    expect(vals(p, 'http.multipart.content_type')).toEqual(['application/x-php'])
    expect(vals(p, 'http.multipart.body')).toEqual(['hi there', '<?php system($_GET[1]); ?>'])
    expect(vals(p, 'http.arg.note')).toEqual(['hi there'])
    expect(p.fields.get('http.multipart.filename')).toEqual([expect.objectContaining({off: expect.any(Number), len: 9})])
  })

  it('Range headers: every range, bigint, lenient', () => {
    const r = req('GET /f HTTP/1.1\r\nRange: bytes=0-18446744073709551615\r\nRequest-Range: bytes = 5-, -5\r\n\r\n')
    const p = r.pdus[0]
    expect(vals(p, 'http.range.start')).toEqual([0n, 5n, -1n])
    expect(vals(p, 'http.range.end')).toEqual([18446744073709551615n, -1n, 5n])
    expect(val(p, 'http.range.count')).toBe(3)
    expect(r.events).toEqual([])
    expect(req('GET /f HTTP/1.1\r\nRange: pages=1-2\r\n\r\n').events).toEqual(['http.range_invalid'])
  })

  it('body cap: emits at the cap, passes the rest, parses the next request', () => {
    const big = 'A'.repeat(300)
    const steps = conv([['>', `POST /x HTTP/1.1\r\nContent-Length: 300\r\n\r\n${big}GET /after HTTP/1.1\r\n\r\n`]])
    const r = run(steps, {maxBodyInspect: 100})
    const p = r.pdus[0]
    expect(val(p, 'http.body')).toBe('A'.repeat(100))
    expect(val(p, 'http.body.truncated')).toBe(1)
    expect(val(p, 'http.body.length')).toBe(100)
    expect(p.end).toBe(p.fields.get('http.body') !== undefined ? (p.fields.get('http.body') as {off: number}).off + 100 : -1)
    expect(val(r.pdus[1], 'http.uri.raw')).toBe('/after')
    expect(r.events).toEqual([])
  })

  it('chunked body over the cap is truncated too', () => {
    const r = run(conv([['>', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n' + 'b'.repeat(64) + '\r\n40\r\n' + 'c'.repeat(64) + '\r\n0\r\n\r\nGET /z HTTP/1.1\r\n\r\n']]), {maxBodyInspect: 100})
    expect(val(r.pdus[0], 'http.body')).toBe('b'.repeat(64) + 'c'.repeat(36))
    expect(val(r.pdus[0], 'http.body.truncated')).toBe(1)
    expect(val(r.pdus[1], 'http.uri.raw')).toBe('/z')
  })

  it('obs-fold, bare LF, space before colon', () => {
    const r = req('GET / HTTP/1.1\nHost : a\nX: 1\n 2\n\n')
    expect(r.events.sort()).toEqual(['http.bare_lf', 'http.obs_fold', 'http.space_before_colon'])
    expect(vals(r.pdus[0], 'http.header.x')).toEqual(['1 2'])
    expect(vals(r.pdus[0], 'http.header.host')).toEqual(['a'])
  })

  it('leading CRLFs between requests are ignored', () => {
    const r = req('\r\n\r\nGET / HTTP/1.1\r\n\r\n\r\nGET /2 HTTP/1.1\r\n\r\n')
    expect(r.pdus.map((p) => p.start)).toEqual([4, 24])
    expect(r.events).toEqual([])
  })
})

describe('framing anomalies (request smuggling)', () => {
  it('CL and TE: TE wins, anomaly, smuggled request becomes its own PDU', () => {
    const r = req('POST / HTTP/1.1\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n')
    expect(r.events).toEqual(['http.cl_and_te'])
    expect(r.pdus.map((p) => val(p, 'http.uri.raw'))).toEqual(['/', '/admin'])
    expect(val(r.pdus[0], 'http.body')).toBe('')
  })

  it('bare LF in chunked framing (size line, after data, trailer, last line): http.chunk_bare_lf, not http.bare_lf', () => {
    const a = req('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x\nabc\r\n0\r\n\r\n')
    expect(a.events).toEqual(['http.chunk_bare_lf'])
    expect(val(a.pdus[0], 'http.body')).toBe('abc')
    expect(req('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n').events).toEqual(['http.chunk_bare_lf'])
    expect(req('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX: 1\n\r\n').events).toEqual(['http.chunk_bare_lf'])
    expect(req('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\n').events).toEqual(['http.chunk_bare_lf'])
    expect(req('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX: 1\r\n\r\n').events).toEqual([])
  })

  it('a framing field hidden in an obs-fold continuation or spelled with _ (http.obs_fold_framing, http.framing_name_underscore)', () => {
    const f = req('POST / HTTP/1.1\r\nX: y\r\n Transfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\nz')
    expect(f.events.sort()).toEqual(['http.obs_fold', 'http.obs_fold_framing'])
    expect(vals(f.pdus[0], 'http.header.x')).toEqual(['y Transfer-Encoding: chunked'])
    expect(req('GET / HTTP/1.1\r\nX: y\r\n\tcontent_LENGTH\t: 4\r\n\r\n').events.sort()).toEqual(['http.obs_fold', 'http.obs_fold_framing'])
    expect(req('GET / HTTP/1.1\r\nX: y\r\n content: 4\r\n\r\n').events).toEqual(['http.obs_fold'])
    expect(req('GET / HTTP/1.1\r\nX: y\r\n Content-Length 4\r\n\r\n').events).toEqual(['http.obs_fold'])
    expect(req('POST / HTTP/1.1\r\nTransfer_Encoding: chunked\r\nContent-Length: 1\r\n\r\nz').events).toEqual(['http.framing_name_underscore'])
    expect(req('POST / HTTP/1.1\r\nCONTENT_length: 1\r\n\r\n').events).toEqual(['http.framing_name_underscore'])
    expect(req('GET / HTTP/1.1\r\nX_Forwarded_For: 1\r\n\r\n').events).toEqual([])
    // a response is not the protected server's input
    const r = run(conv([['>', 'GET / HTTP/1.1\r\n\r\n'], ['<', 'HTTP/1.1 200 OK\r\nX: y\r\n Content-Length: 1\r\nContent-Length: 2\r\n\r\nok']]))
    expect(r.events).toEqual(['http.obs_fold'])
  })

  it('Transfer-Encoding not ending in chunked: body to end of stream', () => {
    const r = req('POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n')
    expect(r.events).toEqual(['http.te_not_chunked'])
    expect(r.pdus.length).toBe(1)
    expect(val(r.pdus[0], 'http.body')).toBe('GET /smuggled HTTP/1.1\r\n\r\n')
  })

  it('Content-Length: invalid, overflow, differing', () => {
    expect(req('POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n').events).toEqual(['http.content_length_invalid'])
    expect(req('POST / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n').events).toEqual(['http.content_length_invalid'])
    const o = req('POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\nGET /s HTTP/1.1\r\n\r\n')
    expect(o.events).toEqual(['http.content_length_overflow'])
    expect(val(o.pdus[0], 'http.content_length')).toBe(18446744073709551616n)
    expect(val(o.pdus[1], 'http.uri.raw')).toBe('/s')
    const d = req('POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc')
    expect(d.events).toEqual(['http.multiple_content_length'])
    expect(val(d.pdus[0], 'http.body')).toBe('abc')
    expect(req('POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc').events).toEqual([])
  })

  it('bad chunk sizes: invalid, overflow, data longer than its size; resync finds the next request', () => {
    const inv = req('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET /next HTTP/1.1\r\n\r\n')
    expect(inv.events).toEqual(['http.chunk_size_invalid', 'http.resync'])
    expect(inv.pdus.map((p) => val(p, 'http.uri.raw'))).toEqual(['/', '/next'])
    const ovf = req('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\nxx')
    expect(ovf.events).toEqual(['http.chunk_size_overflow'])
    const long = req('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd\r\n0\r\n\r\n')
    expect(long.events).toEqual(['http.chunk_size_invalid'])
    expect(val(long.pdus[0], 'http.body')).toBe('ab')
    // a bad size line that is itself a request line
    const smug = req('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nGET /x HTTP/1.1\r\n\r\n')
    expect(smug.pdus.map((p) => val(p, 'http.uri.raw'))).toEqual(['/', '/x'])
  })

  it('head too long: PDU with what was seen, then skip to the empty line', () => {
    const r = run(conv([['>', 'GET / HTTP/1.1\r\n' + 'X-Pad: ' + 'p'.repeat(300) + '\r\nY: 1\r\n\r\nGET /ok HTTP/1.1\r\n\r\n']]), {maxHeaderBytes: 200})
    expect(r.events).toEqual(['http.header_too_long'])
    expect(r.pdus.length).toBe(2)
    expect(val(r.pdus[0], 'http.head_truncated')).toBe(1)
    expect(val(r.pdus[0], 'http.header_bytes')).toBe(200)
    expect(String(val(r.pdus[0], 'http.header.x-pad')).length).toBeGreaterThan(100)
    expect(val(r.pdus[1], 'http.uri.raw')).toBe('/ok')
  })

  it('request line too long: PDU carries the URI length seen', () => {
    const r = run(conv([['>', 'GET /' + 'a'.repeat(500) + ' HTTP/1.1\r\n\r\nGET /ok HTTP/1.1\r\n\r\n']]), {maxRequestLine: 100})
    expect(r.events).toEqual(['http.request_line_too_long'])
    expect(String(val(r.pdus[0], 'http.uri.raw')).length).toBe(96)
    expect(val(r.pdus[1], 'http.uri.raw')).toBe('/ok')
  })

  it('too many headers', () => {
    const r = run(conv([['>', 'GET / HTTP/1.1\r\n' + 'A: 1\r\n'.repeat(10) + '\r\n']]), {maxHeaders: 4})
    expect(r.events).toEqual(['http.too_many_headers'])
    expect(val(r.pdus[0], 'http.headers.count')).toBe(4)
  })

  it('not HTTP at all: one PDU, anomaly, resync', () => {
    const r = req('\x16\x03\x01\x00\x05hello\r\n\r\nGET / HTTP/1.1\r\n\r\n')
    expect(r.events).toEqual(['http.invalid_request_line', 'http.resync'])
    expect(r.pdus.length).toBe(2)
  })
})

describe('responses and pairing', () => {
  it('HEAD, 1xx, 204, 304 have no body; pipelining pairs methods in order', () => {
    const r = run(conv([
      ['>', 'HEAD /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\nGET /d HTTP/1.1\r\n\r\n'],
      ['<', 'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'],
    ]))
    expect(r.events).toEqual([])
    expect(r.resps.map((p) => [val(p, 'http.status'), val(p, 'http.request.method'), val(p, 'http.response.body')])).toEqual([
      [200, 'HEAD', undefined], [100, 'GET', undefined], [204, 'GET', undefined], [304, 'GET', undefined], [200, 'GET', 'hello'],
    ])
    expect(val(r.resps[0], 'http.response.content_length')).toBe(50n)
  })

  it('response body: first maxResponseBody bytes, then passed', () => {
    const r = run(conv([['>', 'GET / HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n'], ['<', 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n' + 'x'.repeat(100) + 'HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n']]), {maxResponseBody: 10})
    expect(r.resps.map((p) => [val(p, 'http.status'), val(p, 'http.response.body'), val(p, 'http.response.body.truncated')])).toEqual([[200, 'x'.repeat(10), 1], [404, 'abc', undefined]])
  })

  it('a response body no rule reads is counted, not kept; request bodies stay', () => {
    const steps = conv([
      ['>', 'POST /f HTTP/1.1\r\nContent-Length: 7\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\na=1&b=2'],
      ['<', 'HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello, world'],
    ])
    const needs = (reads: ((f: string) => boolean) | undefined, chunkSize = 0) => runAnalyzer(httpAnalyzer, steps, {reads, chunkSize}).pdus
      .map((p) => [val(p, 'http.body'), vals(p, 'http.args'), val(p, 'http.response.body'), val(p, 'http.response.body.length')])
    const all = [['a=1&b=2', ['1', '2'], undefined, undefined], [undefined, [], 'hello, world', 12]]
    expect(needs(undefined)).toEqual(all)
    expect(needs(() => true, 1)).toEqual(all)
    const noResponseBody = (f: string) => f !== 'http.response.body'
    expect(needs(noResponseBody)).toEqual([all[0], [undefined, [], undefined, 12]])
    expect(needs(noResponseBody, 1)).toEqual([all[0], [undefined, [], undefined, 12]])
  })

  it('per-header families no rule reads are left out; request header values always stay', () => {
    const steps = conv([['>', 'GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n'], ['<', 'HTTP/1.1 200 OK\r\nServer: s\r\nContent-Length: 0\r\n\r\n']])
    const families = (reads?: (f: string) => boolean) => runAnalyzer(httpAnalyzer, steps, {reads}).pdus.map((p) => [...p.fields.keys()]
      .filter((k) => /header(_name)?[.s]/.test(k) && !k.endsWith('.count')).sort())
    expect(families()).toEqual([
      ['http.header.host', 'http.header.x-a', 'http.header_name.host', 'http.header_name.x-a', 'http.header_names'],
      ['http.response.header.content-length', 'http.response.header.server', 'http.response.header_names'],
    ])
    // a rule set reading none of the optional families (as the rule pack does)
    const optional = ['http.header_name.', 'http.header_names', 'http.response.header.', 'http.response.header_names']
    expect(families((f) => !optional.includes(f))).toEqual([['http.header.host', 'http.header.x-a'], []])
    expect(families((f) => f === 'http.response.header.')).toEqual([['http.header.host', 'http.header.x-a'], ['http.response.header.content-length', 'http.response.header.server']])
  })

  it('plain fields no rule reads are left out; the engine\'s own fields stay, every kept value as before', () => {
    const steps = conv([
      ['>', 'POST http://h.example/a/b;p=1/c.php?x=%41&y=2 HTTP/1.1\r\nHost: h\r\nCookie: s=1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nq=1\r\n0\r\n\r\n'],
      ['<', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc'],
    ])
    for (const chunkSize of [0, 1, 7]) {
      const all = runAnalyzer(httpAnalyzer, steps, {chunkSize})
      const none = runAnalyzer(httpAnalyzer, steps, {chunkSize, reads: () => false})
      expect(none.anomalies).toEqual(all.anomalies)
      expect(none.pdus.length).toBe(all.pdus.length)
      // what is kept is what was built without reads
      none.pdus.forEach((p, i) => {
        for (const [k, v] of p.fields) expect(v).toEqual(all.pdus[i]!.fields.get(k))
      })
      expect(none.pdus.map((p) => [...p.fields.keys()].sort())).toEqual([
        ['http.arg.x', 'http.arg.y', 'http.arg_names', 'http.args', 'http.body', 'http.cookie.s', 'http.header.cookie', 'http.header.host', 'http.header.transfer-encoding', 'http.method', 'http.uri.host', 'http.uri.raw'],
        [],
      ])
      // asked for, they are there
      const some = new Set(['http.request_line', 'http.uri.segments', 'http.transfer_encoding', 'http.chunks', 'http.status', 'http.response.content_length', 'http.response.body.length'])
      const asked = runAnalyzer(httpAnalyzer, steps, {chunkSize, reads: (f) => some.has(f)})
      for (const [i, name] of [[0, 'http.request_line'], [0, 'http.uri.segments'], [0, 'http.transfer_encoding'], [0, 'http.chunks'], [1, 'http.status'], [1, 'http.response.content_length'], [1, 'http.response.body.length']] as const) {
        expect(asked.pdus[i]!.fields.get(name)).toEqual(all.pdus[i]!.fields.get(name))
        expect(all.pdus[i]!.fields.has(name)).toBe(true)
      }
    }
  })

  it('response header fields and start lines no rule reads are not kept: same PDUs and anomalies with any of them read, any chunking', () => {
    const steps = conv([
      ['>', 'GET / HTTP/1.1\r\nHost: h\r\n\r\nHEAD / HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n'],
      ['<', 'HTTP/1.1 200 OK\r\nServer: s\r\n fold\r\nContent-Length: 3\r\nX-A: 1\r\n\r\nabc'],
      ['<', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nX-B: 2\r\n\r\n'],
      ['<', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length:\r\n 4\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n2\r\nxy\r\n0\r\n\r\n'],
      ['<', 'HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nContent-Length: 2\r\n\r\nok'],
    ])
    const optional = ['http.response.headers.count', 'http.response.content_length', 'http.response.transfer_encoding', 'http.status', 'http.status_line', 'http.response.header_bytes', 'http.response.body', 'http.request_line']
    fc.assert(
      fc.property(fc.subarray(optional), fc.integer({min: 0, max: 30}), fc.constantFrom(4, 100), (down, chunkSize, maxHeaders) => {
        // request fields all read but the request line; of the response's, those drawn (never a header value or name)
        const reads = (name: string, dir?: 'toserver' | 'toclient') => (dir !== 'toclient' && !name.startsWith('http.response.') && !optional.includes(name)) || down.includes(name)
        expect(readsMismatches(httpAnalyzerWith({maxHeaders}), steps, reads, {chunkSize})).toEqual([])
      }),
      {numRuns: 60},
    )
  })

  it('response without length runs to the end of the stream', () => {
    const r = run(conv([['>', 'GET / HTTP/1.0\r\n\r\n'], ['<', 'HTTP/1.0 200 OK\r\n\r\nall of it']]))
    expect(val(r.resps[0], 'http.response.body')).toBe('all of it')
  })

  it('CONNECT 200 and 101 switch to a tunnel (no more parsing)', () => {
    const c = run(conv([['>', 'CONNECT example.com:443 HTTP/1.1\r\n\r\n'], ['<', 'HTTP/1.1 200 Connection established\r\n\r\n'], ['>', '\x16\x03\x01\x02\x00\x01'], ['<', '\x16\x03\x03 binary']]))
    expect(c.pdus.length).toBe(2)
    expect(c.events).toEqual([])
    const u = run(conv([['>', 'GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n'], ['<', 'HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x05hello'], ['>', '\x81\x85abcd']]))
    expect(u.pdus.length).toBe(2)
    expect(u.events).toEqual([])
    // CONNECT refused: parsing continues
    const f = run(conv([['>', 'CONNECT x:443 HTTP/1.1\r\n\r\n'], ['<', 'HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n'], ['>', 'GET / HTTP/1.1\r\n\r\n']]))
    expect(f.reqs.length).toBe(2)
  })

  it('Expect: 100-continue: head judged first, body as request_body', () => {
    const r = run(conv([['>', 'POST /u HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n'], ['<', 'HTTP/1.1 100 Continue\r\n\r\n'], ['>', 'data']]))
    expect(r.reqs.map((p) => p.kind)).toEqual(['request', 'request_body'])
    expect(r.reqs[0].fields.has('http.body')).toBe(false)
    expect(val(r.reqs[1], 'http.body')).toBe('data')
    expect(val(r.reqs[1], 'http.uri.raw')).toBe('/u')
    expect(r.reqs[1].start).toBe(r.reqs[0].end)
  })
})

describe('pendingFrom, gaps, end', () => {
  function make(limits: Partial<HttpLimits> = {}) {
    const pdus: Pdu[] = []
    const events: string[] = []
    const ctx: AnalyzerContext = {emit: (p) => pdus.push(p), anomaly: (a) => events.push(a.event)}
    return {a: new HttpAnalyzer(ctx, limits), pdus, events}
  }

  it('holds the head and inspected body, releases after the PDU', () => {
    const {a, pdus} = make({maxBodyInspect: 10})
    expect(a.pendingFrom('toserver')).toBe(-1)
    a.data('toserver', bytes('\r\nPOST / HTTP/1.1\r\nContent-'))
    expect(a.pendingFrom('toserver')).toBe(2)
    a.data('toserver', bytes('Length: 30\r\n\r\n12345'))
    expect(a.pendingFrom('toserver')).toBe(2)
    expect(pdus.length).toBe(0)
    a.data('toserver', bytes('67890X'))
    expect(pdus.length).toBe(1)
    expect(a.pendingFrom('toserver')).toBe(-1)
    a.data('toserver', bytes('Y'.repeat(19) + 'GET'))
    expect(a.pendingFrom('toserver')).toBe(2 + 39 + 30)
    expect(a.stats().buffered).toBe(3)
  })

  it('a gap inside a Content-Length body keeps framing; a gap in a head resyncs', () => {
    const {a, pdus, events} = make()
    a.data('toserver', bytes('POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab'))
    a.gap('toserver', 5)
    a.data('toserver', bytes('cde'))
    a.data('toserver', bytes('GET /n'))
    a.gap('toserver', 3)
    a.data('toserver', bytes('xx\r\nGET /after HTTP/1.1\r\n\r\n'))
    expect(pdus.map((p) => [val(p, 'http.uri.raw'), val(p, 'http.body'), p.start])).toEqual([['/', 'ab', 0], ['/n', undefined, 49], ['/after', undefined, 62]])
    expect(pdus[1].fields.get('http.head_truncated')).toEqual({v: 1})
    expect(events).toEqual(['http.gap', 'http.gap', 'http.resync'])
  })

  it('end of stream flushes a partial head and an incomplete body', () => {
    const h = make()
    h.a.data('toserver', bytes('GET /partial HTTP/1.1\r\nHost: x'))
    h.a.end('toserver')
    expect(val(h.pdus[0], 'http.uri.raw')).toBe('/partial')
    expect(h.events).toEqual(['http.incomplete_message'])
    const b = make()
    b.a.data('toserver', bytes('POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc'))
    b.a.end('toserver')
    expect(val(b.pdus[0], 'http.body')).toBe('abc')
    expect(b.events).toEqual(['http.incomplete_message'])
  })
})

describe('detect', () => {
  it('requests, responses and negatives', () => {
    expect(httpAnalyzer.detect('toserver', bytes('GET / HTTP/1.1\r\n'))).toBe(true)
    expect(httpAnalyzer.detect('toserver', bytes('PROPFIND /webdav HTTP/1.1\r\n'))).toBe(true)
    expect(httpAnalyzer.detect('toserver', bytes('BREW /pot HTTP/1.1\r\n'))).toBe(true)
    expect(httpAnalyzer.detect('toclient', bytes('HTTP/1.1 200 OK\r\n'))).toBe(true)
    expect(httpAnalyzer.detect('toserver', bytes('\x16\x03\x01\x00\xa5\x01\x00'))).toBe(false)
    expect(httpAnalyzer.detect('toserver', bytes('EHLO mail.example.com\r\n'))).toBe(false)
    expect(httpAnalyzer.detect('toclient', bytes('220 smtp ready\r\n'))).toBe(false)
    expect(httpAnalyzer.detect('toserver', bytes('GE'))).toBe(false)
  })
})
