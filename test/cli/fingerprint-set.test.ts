/**
 * `fingerprint --set`: the admin settles a version by hand, in every form the help shows; and
 * `fingerprint --pcap` shows what the capture taught (the real binary over dist/, in a temporary
 * project; nothing is scanned).
 */
import {mkdtempSync, readFileSync, realpathSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {beforeAll, describe, expect, it} from 'vitest'
import {corpusDir, runCli} from '../support/cli.js'
import {parseSetWords} from '../../src/core/scan/fingerprint.js'

const dir = realpathSync(mkdtempSync(path.join(tmpdir(), 'pp-fpset-')))
const env = {PATCHPOINT_PROJECT: dir}
const cli = (...args: string[]) => runCli(args, {cwd: dir, env})

interface Svc {port: number; proto: string; product?: string; version?: string; manual?: unknown}
const services = (): Svc[] => {
  const inv = JSON.parse(readFileSync(path.join(dir, '.patchpoint', 'inventory.json'), 'utf8')) as {hosts: {ip: string; services: Svc[]}[]}
  return inv.hosts.flatMap((h) => h.services.map((s) => ({...s, port: s.port, ip: h.ip})))
}

describe('parseSetWords', () => {
  it('groups the words after each HOST:PORT, whether oclif split them or the user quoted them', () => {
    const split = parseSetWords(['192.0.2.10:443', 'product=nginx/nginx', 'version=1.22.1'])
    const quoted = parseSetWords(['192.0.2.10:443 product=nginx/nginx version=1.22.1'])
    expect(split).toEqual(quoted)
    expect(split).toEqual([{host: '192.0.2.10', port: 443, proto: 'tcp', fields: {product: 'nginx/nginx', version: '1.22.1'}}])
    expect(parseSetWords(['192.0.2.10:443 version=1.22.1', '192.0.2.11:53/udp', 'clear']).map((s) => [s.host, s.port, s.proto, s.fields]))
      .toEqual([['192.0.2.10', 443, 'tcp', {version: '1.22.1'}], ['192.0.2.11', 53, 'udp', null]])
  })

  it('refuses words before any target, a target with nothing to set, and malformed words', () => {
    expect(() => parseSetWords(['product=nginx/nginx', '192.0.2.10:443'])).toThrow(/comes before any HOST:PORT/)
    expect(() => parseSetWords(['192.0.2.10:443', '192.0.2.11:80', 'version=1'])).toThrow(/192.0.2.10:443: nothing to set/)
    expect(() => parseSetWords(['192.0.2.10:443', 'product=nginx'])).toThrow(/not vendor\/product/)
    expect(() => parseSetWords(['192.0.2.10', 'version=1'])).toThrow(/expected HOST:PORT/)
  })
})

describe('patchpoint fingerprint --set (real binary)', () => {
  beforeAll(async () => {
    expect((await cli('init')).code).toBe(0)
    expect((await cli('discover', '--add', '192.0.2.10', '--add', '192.0.2.11')).code).toBe(0)
  }, 60_000)

  it('the help\'s own example works: --set HOST:PORT product=X version=Y', async () => {
    const r = await cli('fingerprint', '--set', '192.0.2.10:443', 'product=nginx/nginx', 'version=1.22.1')
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout.trim()).toBe('192.0.2.10:443 = nginx/nginx 1.22.1')
    expect(services().find((s) => s.port === 443)).toMatchObject({product: 'nginx/nginx', version: '1.22.1'})
  })

  it('several targets in one run, quoted or not, with --json; clear removes a manual value', async () => {
    const r = await cli('fingerprint', '--json', '--set', '192.0.2.11:3306 product=mariadb/mariadb version=10.11.6', '--set', '192.0.2.10:443', 'version=1.24.0')
    expect(r.code).toBe(0)
    expect((JSON.parse(r.stdout) as {services: unknown[]}).services).toEqual([
      {host: '192.0.2.11', port: 3306, product: 'mariadb/mariadb', version: '10.11.6'},
      {host: '192.0.2.10', port: 443, product: 'nginx/nginx', version: '1.24.0'},
    ])
    expect((await cli('fingerprint', '--set', '192.0.2.11:3306', 'clear')).code).toBe(0)
    expect(services().find((s) => s.port === 3306)?.manual).toBeUndefined()
  })

  it('a bad --set is one line naming it, exit 2, and the inventory is left as it was', async () => {
    const before = readFileSync(path.join(dir, '.patchpoint', 'inventory.json'), 'utf8')
    for (const args of [['--set', 'product=nginx/nginx'], ['--set', '192.0.2.10:443'], ['--set', '192.0.2.10:443', 'product=nginx']]) {
      const r = await cli('fingerprint', ...args)
      expect(r.code).toBe(2)
      const lines = r.stderr.split('\n').filter((l) => l !== '')
      expect(lines[0]).toMatch(/^patchpoint: --set[ :]/)
      expect(r.stderr).not.toMatch(/\n\s+at /)
    }
    expect(readFileSync(path.join(dir, '.patchpoint', 'inventory.json'), 'utf8')).toBe(before)
  })
})

describe('patchpoint fingerprint --pcap (real binary)', () => {
  it('lists what the capture taught, not the rest of the inventory; the inventory keeps both', async () => {
    const r = await cli('fingerprint', '--json', '--pcap', path.join(corpusDir, 'benign_smtp_session.pcap'))
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout) as {hosts: {ip: string; services: Svc[]}[]}
    const ips = out.hosts.map((h) => h.ip)
    expect(ips).toContain('74.53.140.153')
    expect(ips).not.toContain('192.0.2.10')
    expect(ips).not.toContain('192.0.2.11')
    expect(out.hosts.find((h) => h.ip === '74.53.140.153')!.services.map((s) => s.port)).toContain(25)
    // the hand-set hosts are still in the inventory, only not in this answer
    expect(services().map((s) => (s as Svc & {ip: string}).ip)).toEqual(expect.arrayContaining(['192.0.2.10', '74.53.140.153']))
    // a capture that teaches no service: exit 1 (the help's "1 none")
    const none = await cli('fingerprint', '--json', '--pcap', path.join(corpusDir, 'benign_ipv4_icmp_fragments.pcap'))
    expect(none.code).toBe(1)
    expect((JSON.parse(none.stdout) as {hosts: {services: unknown[]}[]}).hosts.every((h) => h.services.length === 0)).toBe(true)
  })
})

