import {describe, it, expect, beforeAll, afterAll} from 'vitest'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {UserError} from '../errors.js'
import {combinedHostPolicy} from './host-policy.js'
import {divertSets} from './nft.js'
import {fieldLine, loadPolicy, normalizeIp, serviceKey, validatePolicy} from './policy.js'

let dir = ''
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pp-policy-'))
})
afterAll(() => {
  fs.rmSync(dir, {recursive: true, force: true})
})

function write(name: string, text: string): string {
  const f = path.join(dir, name)
  fs.writeFileSync(f, text)
  return f
}

function errorOf(fn: () => unknown): UserError {
  try {
    fn()
  } catch (e) {
    if (e instanceof UserError) return e
    throw e
  }
  throw new Error('no error')
}

describe('policy loader: addresses', () => {
  it('normalizeIp: RFC 5952 for IPv6 (case, leading zeros, zero runs), IPv4 as it is; leading-zero IPv4, zone ids and junk refused', () => {
    expect(normalizeIp('FD00:0006:0:0::0003')).toBe('fd00:6::3')
    expect(normalizeIp('fd00:6:0:0:0:0:0:3')).toBe('fd00:6::3')
    expect(normalizeIp('2001:DB8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1')
    expect(normalizeIp('::FFFF:0a00:0003')).toBe('::ffff:10.0.0.3')
    expect(normalizeIp('10.66.0.3')).toBe('10.66.0.3')
    for (const bad of ['010.0.0.3', '10.0.0', 'fe80::1%eth0', '10.0.0.256', 'host', '']) expect(normalizeIp(bad), bad).toBeNull()
  })

  it('every consumer sees the engine form: services, hosts, the judge key, the nft sets and the host policies', () => {
    const f = write('policy.json', JSON.stringify({
      services: [
        {ip: 'FD00:0006:0:0::0003', port: 80, proto: 'tcp', action: 'drop', rules: ['PP-SHELLSHOCK']},
        {ip: '10.66.0.3', port: 81, proto: 'tcp'},
      ],
      default_action: 'log',
      hosts: [{ip: 'FD00:6:0:0:0:0:0:0003', defrag: 'linux', tcp: 'windows'}],
    }, null, 2))
    const p = loadPolicy(f)
    expect(p.services.map((s) => s.ip)).toEqual(['fd00:6::3', '10.66.0.3'])
    expect(p.services[0]).toEqual({ip: 'fd00:6::3', port: 80, proto: 'tcp', action: 'drop', rules: ['PP-SHELLSHOCK']})
    expect(p.hosts?.[0].ip).toBe('fd00:6::3')
    expect(p.default_action).toBe('log')
    // the per-service judge's key of a flow the engine prints as fd00:6::3
    expect(p.services.map((s) => serviceKey(s.ip, s.port, s.proto))).toContain(serviceKey('fd00:6::3', 80, 6))
    expect(divertSets(p.services).tcp6).toEqual(['fd00:6::3 . 80'])
    // run hands the loaded policy's hosts to the engine: found under the engine's text
    expect(combinedHostPolicy(p, undefined)?.('fd00:6::3')).toEqual({defrag: 'linux', tcp: 'windows'})
  })

  it('two spellings of one service are a duplicate', () => {
    const e = errorOf(() => validatePolicy({services: [
      {ip: 'fd00:6::3', port: 80, proto: 'tcp'},
      {ip: 'FD00:0006::0003', port: 80, proto: 'tcp'},
    ]}, 'p.json'))
    expect(e.message).toBe('p.json: services[1]: duplicate service fd00:6::3 tcp/80 (written "FD00:0006::0003")')
  })
})

describe('policy loader: errors name file, line and field on one line', () => {
  const text = [
    '{',
    '  "services": [',
    '    {"ip": "10.0.0.3", "port": 80, "proto": "tcp"},',
    '    {',
    '      "ip": "10.0.0.300",',
    '      "port": 81,',
    '      "proto": "tcp"',
    '    }',
    '  ],',
    '  "hosts": [{"ip": "fe80::1%eth0", "defrag": "linux", "tcp": "linux"}]',
    '}',
  ].join('\n')

  it('a bad service address', () => {
    const f = write('bad-ip.json', text)
    const e = errorOf(() => loadPolicy(f))
    expect(e.message).toBe(`${f}:5: services[1].ip: must be an IPv4 or IPv6 address, got "10.0.0.300"`)
    expect(e.message).not.toContain('\n')
    expect(e.code).toBe('POLICY_INVALID')
  })

  it('a bad host address, a missing field (its object\'s line), a bad action, broken JSON', () => {
    const hostBad = write('bad-host.json', text.replace('10.0.0.300', '10.0.0.4'))
    expect(errorOf(() => loadPolicy(hostBad)).message).toBe(`${hostBad}:10: hosts[0].ip: must be an IPv4 or IPv6 address, got "fe80::1%eth0"`)
    const noPort = write('no-port.json', text.replace('10.0.0.300', '10.0.0.4').replace('      "port": 81,\n', ''))
    expect(errorOf(() => loadPolicy(noPort)).message).toBe(`${noPort}:4: services[1].port: must be an integer 1-65535, got undefined`)
    const action = write('action.json', '{"services": [],\n "default_action": "block"}')
    expect(errorOf(() => loadPolicy(action)).message).toBe(`${action}:2: default_action: must be one of fix, log, drop, got "block"`)
    const broken = write('broken.json', '{"services": [\n  {"ip": "10.0.0.3",}\n]}')
    expect(errorOf(() => loadPolicy(broken)).message).toMatch(new RegExp(`^${broken.replace(/[.\\/]/g, '\\$&')}:2: \\(json\\): `))
  })

  it('fieldLine: keys, array elements, nested fields; unknown paths fall back to the nearest enclosing value', () => {
    expect(fieldLine(text, 'services')).toBe(2)
    expect(fieldLine(text, 'services[0]')).toBe(3)
    expect(fieldLine(text, 'services[0].proto')).toBe(3)
    expect(fieldLine(text, 'services[1]')).toBe(4)
    expect(fieldLine(text, 'services[1].proto')).toBe(7)
    expect(fieldLine(text, 'services[1].rules')).toBe(4)
    expect(fieldLine(text, 'hosts[0].tcp')).toBe(10)
    expect(fieldLine(text, '(top)')).toBe(1)
    expect(fieldLine('{"a": "x\\"\\n", "b": 1}', 'b')).toBe(1)
  })
})
