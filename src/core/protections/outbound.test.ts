import {describe, it, expect} from 'vitest'
import {OutboundHttp, hostOnly} from './outbound.js'
import {collector, fakeFlow} from '../../../test/protections/support.js'
import {requestPdus, get} from '../../../test/protections/http.js'

const ob = new OutboundHttp({servers: ['10.0.0.0/24', '2001:db8::5'], allow: ['updates.example.com', '*.ubuntu.com', '192.0.2.0/28']})
const server = fakeFlow({clientIp: '10.0.0.7', serverIp: '203.0.113.1'})

function check(raw: string, flow = server): string[] {
  const c = collector()
  for (const p of requestPdus(raw)) ob.onPdu(p, flow, c.report)
  return c.events('protection.outbound_not_allowed').map((r) => String(r.a.detail?.host))
}

describe('outbound HTTP whitelist', () => {
  it('allowed: exact host, subdomains of *.domain, address ranges, ports and case', () => {
    expect(check('GET /pkg HTTP/1.1\r\nHost: updates.example.com\r\n\r\n')).toEqual([])
    expect(check('GET /dists HTTP/1.1\r\nHost: Archive.Ubuntu.COM:80\r\n\r\n')).toEqual([])
    expect(check('GET / HTTP/1.1\r\nHost: 192.0.2.9:8080\r\n\r\n')).toEqual([])
    expect(check('GET / HTTP/1.1\r\nHost: updates.example.com.\r\n\r\n')).toEqual([])
  })
  it('not allowed: other hosts, the bare parent of *.domain, look-alikes, no host', () => {
    expect(check('GET /stage2 HTTP/1.1\r\nHost: evil.example.net\r\n\r\n')).toEqual(['evil.example.net'])
    expect(check('GET / HTTP/1.1\r\nHost: ubuntu.com\r\n\r\n')).toEqual(['ubuntu.com'])
    expect(check('GET / HTTP/1.1\r\nHost: evilubuntu.com\r\n\r\n')).toEqual(['evilubuntu.com'])
    expect(check('GET / HTTP/1.1\r\nHost: updates.example.com.evil.net\r\n\r\n')).toEqual(['updates.example.com.evil.net'])
    expect(check('GET / HTTP/1.1\r\nHost: 192.0.2.200\r\n\r\n')).toEqual(['192.0.2.200'])
    expect(check('GET / HTTP/1.0\r\n\r\n')).toEqual([''])
  })
  it('absolute URI and CONNECT targets count; all named hosts must be allowed', () => {
    expect(check('GET http://evil.example.net/x HTTP/1.1\r\nHost: updates.example.com\r\n\r\n')).toEqual(['evil.example.net'])
    expect(check('CONNECT evil.example.net:443 HTTP/1.1\r\nHost: updates.example.com\r\n\r\n')).toEqual(['evil.example.net:443'])
    expect(check('CONNECT updates.example.com:443 HTTP/1.1\r\nHost: updates.example.com:443\r\n\r\n')).toEqual([])
  })
  it('only requests started by protected servers are judged', () => {
    expect(check(get('/x').replace('Host: x', 'Host: evil.example.net'), fakeFlow({clientIp: '10.0.1.7'}))).toEqual([])
    expect(check(get('/x').replace('Host: x', 'Host: evil.example.net'), fakeFlow({clientIp: '2001:db8::5'}))).toEqual(['evil.example.net'])
    expect(new OutboundHttp({servers: [], allow: []}).enabled).toBe(false)
  })
  it('hostOnly strips ports, brackets, userinfo and trailing dots', () => {
    expect(hostOnly('User:pw@Example.com.:8080')).toBe('example.com')
    expect(hostOnly('[2001:db8::1]:443')).toBe('2001:db8::1')
    expect(hostOnly('2001:db8::1')).toBe('2001:db8::1')
    expect(hostOnly('[broken')).toBe('')
  })
})
