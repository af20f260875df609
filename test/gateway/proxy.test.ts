/** Proxy mode on loopback against a real HTTP server (node:http), no root needed. */
import {describe, it, expect, beforeAll, afterAll} from 'vitest'
import http from 'node:http'
import net from 'node:net'
import type {AddressInfo} from 'node:net'
import {engineDetection} from '../../src/core/engine/detection.js'
import type {EveEvent} from '../../src/core/events/eve.js'
import {ProxyServer, parseProxySpec} from '../../src/core/gateway/proxy.js'

function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(text))
    let got = ''
    s.on('data', (d) => (got += d.toString('latin1')))
    s.on('close', () => resolve(got))
    s.on('error', () => resolve(got))
    setTimeout(() => s.destroy(), 3000)
  })
}

describe('patchpoint run --proxy (loopback)', () => {
  const seen: string[] = []
  let server: http.Server
  const proxies: ProxyServer[] = []
  const events: EveEvent[] = []
  let upstreamPort = 0

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      seen.push(`${req.url} ${req.headers['user-agent'] ?? ''}`)
      res.setHeader('connection', 'close')
      res.end('x'.repeat(100_000))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    upstreamPort = (server.address() as AddressInfo).port
  })

  afterAll(async () => {
    for (const p of proxies) await p.close()
    await new Promise<void>((r) => server.close(() => r()))
  })

  async function proxy(action: 'fix' | 'drop' | 'log'): Promise<number> {
    const d = await engineDetection()
    const p = new ProxyServer({specs: [{listenHost: '127.0.0.1', listenPort: 0, upstreamHost: '127.0.0.1', upstreamPort}], analyzers: d.analyzers, rules: d.rules, onEvent: (e) => events.push(e), action})
    proxies.push(p)
    const [a] = await p.listen()
    return Number(a.listen.split(':').pop())
  }

  it('parses LISTEN=UPSTREAM and rejects garbage', () => {
    expect(parseProxySpec('8080=10.0.0.5:80')).toEqual({listenHost: '0.0.0.0', listenPort: 8080, upstreamHost: '10.0.0.5', upstreamPort: 80})
    expect(() => parseProxySpec('nonsense')).toThrow(/LISTEN=UPSTREAM/)
    expect(() => parseProxySpec('1:2=3:99999')).toThrow(/out of range/)
  })

  it('benign requests pass byte for byte, the response too', async () => {
    const port = await proxy('drop')
    const got = await rawRequest(port, 'GET /benign HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8\r\n\r\n')
    expect(got).toMatch(/^HTTP\/1.1 200/)
    expect(got.endsWith('x'.repeat(1000))).toBe(true)
    expect(seen).toContain('/benign curl/8')
  })

  it('drop closes both sockets before the server sees the exploit', async () => {
    const port = await proxy('drop')
    const got = await rawRequest(port, 'GET /pp-drop HTTP/1.1\r\nHost: x\r\nUser-Agent: () { :; }; id\r\n\r\n')
    expect(got).toBe('')
    expect(seen.some((s) => s.startsWith('/pp-drop'))).toBe(false)
    expect(events.some((e) => e.event_type === 'alert')).toBe(true)
  })

  it('fix forwards the neutralised request and the session lives', async () => {
    const port = await proxy('fix')
    const got = await rawRequest(port, 'GET /pp-fix HTTP/1.1\r\nHost: x\r\nUser-Agent: () { :; }; id\r\n\r\n')
    expect(got).toMatch(/^HTTP\/1.1 200/)
    const line = seen.find((s) => s.startsWith('/pp-fix'))
    expect(line).toBeDefined()
    expect(line).not.toContain('() {')
  })
})
