import {describe, expect, it} from 'vitest'
import {bytes} from '../harness.js'
import {
  contentTypeParam, looksLikeRequest, looksLikeResponse, parseArgs, parseChunkSize, parseContentLength,
  parseCookies, parseHead, parseJsonStrings, parseMultipart, parseRanges, parseTransferEncoding,
} from './parser.js'

function head(text: string, kind: 'request' | 'response' = 'request') {
  const b = bytes(text)
  return {b, h: parseHead(b, 0, b.length, kind, 100)}
}

describe('parseHead', () => {
  it('request line and headers with spans', () => {
    const {b, h} = head('GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-A:  v v \r\n\r\n')
    expect(h.valid).toBe(true)
    expect([h.method, h.target, h.version]).toEqual(['GET', '/a?b=1', 'HTTP/1.1'])
    expect(h.headers.map((x) => [x.name, x.value])).toEqual([['Host', 'x'], ['X-A', 'v v']])
    const x = h.headers[1]
    expect(Buffer.from(b.subarray(x.valueOff, x.valueOff + x.valueLen)).toString('latin1')).toBe('v v')
    expect(Buffer.from(b.subarray(x.nameOff, x.nameOff + x.nameLen)).toString('latin1')).toBe('X-A')
    expect(h.anomalies).toEqual([])
  })

  it('obs-fold joins continuation lines', () => {
    const {h} = head('GET / HTTP/1.1\r\nX-A: one\r\n  two\r\n\tthree\r\n\r\n')
    expect(h.headers[0].value).toBe('one two three')
    expect(h.anomalies).toEqual(['http.obs_fold'])
  })

  it('space before colon, bare LF, bare CR, no colon', () => {
    expect(head('GET / HTTP/1.1\r\nHost : x\r\n\r\n').h.anomalies).toEqual(['http.space_before_colon'])
    expect(head('GET / HTTP/1.1\nHost: x\n\n').h.anomalies).toEqual(['http.bare_lf'])
    expect(head('GET / HTTP/1.1\r\nHo\rst: x\r\n\r\n').h.anomalies).toContain('http.bare_cr')
    expect(head('GET / HTTP/1.1\r\nnocolon\r\n\r\n').h.anomalies).toEqual(['http.header_invalid'])
  })

  it('invalid request lines', () => {
    expect(head('GET  /  HTTP/1.1\r\n\r\n').h.anomalies).toEqual(['http.invalid_request_line'])
    expect(head('GET /\r\n\r\n').h.anomalies).toEqual(['http.invalid_request_line'])
    expect(head('G(T / HTTP/1.1\r\n\r\n').h.anomalies).toEqual(['http.invalid_request_line'])
    expect(head('GET / HTTP/1.1 extra\r\n\r\n').h.anomalies).toEqual(['http.invalid_request_line'])
  })

  it('too many headers', () => {
    const b = bytes('GET / HTTP/1.1\r\n' + 'A: 1\r\n'.repeat(5) + '\r\n')
    const h = parseHead(b, 0, b.length, 'request', 3)
    expect(h.headers.length).toBe(3)
    expect(h.headerLines).toBe(5)
    expect(h.anomalies).toEqual(['http.too_many_headers'])
  })

  it('with keep, only the fields of those names are recorded (all are counted, checked and flagged alike); the start line text only when asked', () => {
    const t = 'HTTP/1.1 200 OK\r\nServer: x\r\n folded\r\nContent-Length: 1\r\n 2\r\nBad Name: v\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\nX-B: 2\r\n\r\n'
    const b = bytes(t)
    for (const max of [3, 4, 100]) {
      const all = parseHead(b, 0, b.length, 'response', max)
      const some = parseHead(b, 0, b.length, 'response', max, {keep: new Set(['content-length', 'transfer-encoding']), line: true})
      expect(some.headers).toEqual(all.headers.filter((x) => x.lname === 'content-length' || x.lname === 'transfer-encoding'))
      expect(some.count).toBe(all.count)
      expect(some.count).toBe(all.headers.length)
      expect(some.anomalies).toEqual(all.anomalies)
      expect(some.headerLines).toBe(all.headerLines)
    }
    const some = parseHead(b, 0, b.length, 'response', 100, {keep: new Set(['content-length']), line: false})
    expect(some.headers.map((x) => [x.name, x.value])).toEqual([['Content-Length', '1 2']])
    expect(some.count).toBe(6)
    expect([some.line, some.lineOff, some.lineLen, some.status]).toEqual(['', 0, 15, 200])
  })

  it('status line', () => {
    const {h} = head('HTTP/1.1 404 Not Found\r\nA: b\r\n\r\n', 'response')
    expect([h.version, h.status, h.reason, h.valid]).toEqual(['HTTP/1.1', 404, 'Not Found', true])
    expect(head('HTTP/1.1 20 OK\r\n\r\n', 'response').h.anomalies).toEqual(['http.invalid_status_line'])
  })

  it('trailer section has no start line', () => {
    const b = bytes('X-T: 1\r\n\r\n')
    expect(parseHead(b, 0, b.length, 'trailer', 10).headers.map((x) => x.name)).toEqual(['X-T'])
  })
})

describe('field value parsers', () => {
  it('Content-Length', () => {
    expect(parseContentLength(['42'])).toEqual({status: 'ok', value: 42n})
    expect(parseContentLength(['42, 42'])).toEqual({status: 'ok', value: 42n})
    expect(parseContentLength(['42', '43']).status).toBe('differ')
    expect(parseContentLength(['-1']).status).toBe('invalid')
    expect(parseContentLength(['0x10']).status).toBe('invalid')
    expect(parseContentLength(['18446744073709551615'])).toEqual({status: 'overflow', value: 18446744073709551615n})
    expect(parseContentLength(['9223372036854775807']).status).toBe('ok')
  })

  it('Transfer-Encoding', () => {
    expect(parseTransferEncoding(['gzip, Chunked']).chunked).toBe(true)
    expect(parseTransferEncoding(['chunked, gzip']).chunked).toBe(false)
    expect(parseTransferEncoding(['xchunked']).chunked).toBe(false)
    // only SP / HT are OWS; a parameter makes chunked another coding
    expect(parseTransferEncoding([' \tchunked\t ']).chunked).toBe(true)
    expect(parseTransferEncoding(['\x0bchunked']).chunked).toBe(false)
    expect(parseTransferEncoding(['chunked\x0c']).chunked).toBe(false)
    expect(parseTransferEncoding(['chunked\xa0']).chunked).toBe(false)
    expect(parseTransferEncoding(['chunked;x=1']).chunked).toBe(false)
    expect(parseTransferEncoding(['gzip;q=1, chunked']).chunked).toBe(true)
  })

  it('chunk-size lines', () => {
    const cs = (t: string) => {
      const b = bytes(t)
      return parseChunkSize(b, 0, b.length)
    }
    expect(cs('1a')).toMatchObject({status: 'ok', size: 26, extLen: 0})
    expect(cs('A ; name=val')).toMatchObject({status: 'ok', size: 10, extOff: 2, extLen: 10})
    expect(cs('0000000000000000001')).toMatchObject({status: 'ok', size: 1})
    expect(cs('1ffffffffffffffff').status).toBe('overflow')
    expect(cs('').status).toBe('invalid')
    expect(cs('zz').status).toBe('invalid')
    expect(cs('5 x').status).toBe('invalid')
    // a control byte inside an extension (a bare CR another parser ends the line at) is invalid
    expect(cs('3;x\rfoo').status).toBe('invalid')
    expect(cs('3;x=\x00').status).toBe('invalid')
    expect(cs('3;a="b c"\t;d').status).toBe('ok')
  })

  it('ranges, leniently', () => {
    const r = parseRanges('bytes=0-18446744073709551615', 10)
    expect(r.ranges.map((x) => [x.start, x.end])).toEqual([[0n, 18446744073709551615n]])
    const r2 = parseRanges('Bytes = 5-, -5 ,1 - 2', 10)
    expect(r2.invalid).toBe(false)
    expect(r2.ranges.map((x) => [x.start, x.end])).toEqual([[5n, -1n], [-1n, 5n], [1n, 2n]])
    expect(parseRanges('items=1-2', 10).invalid).toBe(true)
    expect(parseRanges('bytes=a-b', 10).invalid).toBe(true)
    expect(parseRanges('bytes=1-2,3-4,5-6', 2).tooMany).toBe(true)
    // past the cap, the range with the largest end is still reported (MS15-034 behind 70 ranges)
    const many = parseRanges('bytes=' + Array.from({length: 70}, (_, i) => `${i}-${i}`).join(',') + ',9-18446744073709551615,8-9', 64)
    expect(many.tooMany).toBe(true)
    expect(many.ranges.length).toBe(65)
    expect(many.ranges[64].end).toBe(18446744073709551615n)
    // leading zeros do not count against the digit limit
    const z = parseRanges('bytes=0-' + '0'.repeat(80) + '18446744073709551615', 10)
    expect(z.invalid).toBe(false)
    expect(z.ranges[0].end).toBe(18446744073709551615n)
    expect(parseRanges('bytes=0-' + '9'.repeat(65), 10).invalid).toBe(true)
  })

  it('cookies and args', () => {
    expect(parseCookies('a=1; b = x y ;c', 10).map((c) => [c.name, c.value, c.valueOff])).toEqual([['a', '1', 2], ['b', 'x y', 9]])
    const a = parseArgs('a=%41+b&&c&d=', 10, (x) => decodeURIComponent(x.replace(/\+/g, ' ')))
    expect(a.args.map((x) => [x.name, x.value, x.valueOff, x.valueLen])).toEqual([['a', 'A b', 2, 5], ['c', '', 10, 0], ['d', '', 13, 0]])
    expect(parseArgs('a&b&c', 2, (x) => x).tooMany).toBe(true)
  })

  it('content type params', () => {
    expect(contentTypeParam('multipart/form-data; boundary="--x y"', 'boundary')).toBe('--x y')
    expect(contentTypeParam('multipart/form-data;BOUNDARY=abc', 'boundary')).toBe('abc')
  })

  it('multipart/form-data', () => {
    const body = bytes('--XX\r\nContent-Disposition: form-data; name="a"\r\n\r\nvalue1\r\n--XX\r\nContent-Disposition: form-data; name="f"; filename="s.php"\r\nContent-Type: text/plain\r\n\r\n<?php x\r\n--XX--\r\n')
    const r = parseMultipart(body, body.length, 'XX', 10)
    expect(r.malformed).toBe(false)
    expect(r.parts.map((p) => [p.name, p.filename, p.contentType])).toEqual([['a', undefined, undefined], ['f', 's.php', 'text/plain']])
    const txt = (o: number, l: number) => Buffer.from(body.subarray(o, o + l)).toString('latin1')
    expect(txt(r.parts[0].bodyOff, r.parts[0].bodyLen)).toBe('value1')
    expect(txt(r.parts[1].bodyOff, r.parts[1].bodyLen)).toBe('<?php x')
    expect(txt(r.parts[1].filenameOff, 5)).toBe('s.php')
    expect(txt(r.parts[1].nameOff, 1)).toBe('f')
    expect(parseMultipart(body, body.length, 'XX', 1).tooMany).toBe(true)
    expect(parseMultipart(body, body.length, 'nope', 10).malformed).toBe(true)
  })
})

describe('start detection', () => {
  it('request starts', () => {
    const t = (s: string) => {
      const b = bytes(s)
      return looksLikeRequest(b, 0, b.length)
    }
    expect(t('GET / HTTP/1.1')).toBe(1)
    expect(t('PROPFIND /x')).toBe(1)
    expect(t('CONNECT host:443 HTTP/1.1')).toBe(1)
    expect(t('FOO /x')).toBe(1)
    expect(t('FOO http://x/')).toBe(1)
    expect(t('FOO *')).toBe(1)
    expect(t('FOO x')).toBe(0)
    expect(t('GE')).toBe(-1)
    expect(t('FOO ht')).toBe(-1)
    expect(t('\x16\x03\x01')).toBe(0)
    expect(t('SSH-2.0-OpenSSH_8.4\r\n')).toBe(0)
  })
  it('response starts', () => {
    const b = bytes('HTTP/1.1 200')
    expect(looksLikeResponse(b, 0, b.length)).toBe(1)
    expect(looksLikeResponse(b, 0, 4)).toBe(-1)
    const c = bytes('HTTP/2 200')
    expect(looksLikeResponse(c, 0, c.length)).toBe(0)
  })
})

describe('parseJsonStrings', () => {
  const un = (x: string) => x.replace(/\\u0027/g, "'")
  it('string values, not member names, with offsets of the raw content; escapes left to the callback', () => {
    const t = '{"id": "1 OR 1=1", "a": [ "x\\"y", 2, {"k" :"\\u0027"} ], "n": null}'
    const r = parseJsonStrings(t, 10, un)
    expect(r.values.map((v) => v.value)).toEqual(['1 OR 1=1', 'x\\"y', "'"])
    for (const v of r.values) expect(t.charAt(v.valueOff - 1)).toBe('"')
    expect(t.slice(r.values[0].valueOff, r.values[0].valueOff + r.values[0].valueLen)).toBe('1 OR 1=1')
    expect(r.tooMany).toBe(false)
  })
  it('a body cut short still gives its values; the cap is reported', () => {
    expect(parseJsonStrings('{"a":"b","c":"unterminat', 10, un).values.map((v) => v.value)).toEqual(['b', 'unterminat'])
    const r = parseJsonStrings('["a","b","c"]', 2, un)
    expect(r.values.length).toBe(2)
    expect(r.tooMany).toBe(true)
  })
})

describe('parseMultipart: filename*', () => {
  it('the RFC 8187 extended filename is kept next to filename=, without its charset\'lang\' prefix', () => {
    const body = `--B\r\nContent-Disposition: form-data; name="f"; filename="a.jpg"; filename*=UTF-8'en'shell%2Ejsp\r\n\r\nx\r\n--B--\r\n`
    const b = bytes(body)
    const p = parseMultipart(b, b.length, 'B', 10).parts[0]
    expect(p.filename).toBe('a.jpg')
    expect(p.filenameExt).toBe('shell%2Ejsp')
    expect(body.slice(p.filenameExtOff, (p.filenameExtOff ?? 0) + 11)).toBe('shell%2Ejsp')
  })
})
