import {describe, it, expect} from 'vitest'
import {compareCore, compareVersions, parseRange, inAnyRange, affects} from './versions.js'

describe('versions', () => {
  it('orders real-world versions', () => {
    const lt = (a: string, b: string) => expect(compareCore(a, b), `${a} < ${b}`).toBe(-1)
    lt('2.4.48', '2.4.49')
    lt('1.3.5rc3', '1.3.5')
    lt('1.3.5beta1', '1.3.5rc1')
    lt('1.3.5', '1.3.6rc1')
    lt('9.2', '9.2p1')
    lt('9.2p1', '9.2p2')
    lt('9.2p2', '9.3')
    lt('8.17.1.9', '8.17.1.10')
    lt('1.0.1', '1.0.1g')
    lt('1.0.1f', '1.0.1g')
    lt('2.0.0-beta9', '2.0.0')
    lt('2.0.0-rc1', '2.0.0')
    expect(compareCore('5.5.20-log', '5.5.20')).toBe(0)
    expect(compareCore('10.3.39-MariaDB-0+deb12u1', '10.3.39')).toBe(0)
    expect(compareCore('2.4', '2.4.0')).toBe(0)
    expect(compareVersions('10.3.39-MariaDB', '10.3.39')).toBe(1)
    expect(compareCore('x', '1')).toBeUndefined()
  })
  it('ranges near boundaries', () => {
    const r = ['>=2.4.49 <2.4.51']
    expect(inAnyRange('2.4.48', r)).toBe(false)
    expect(inAnyRange('2.4.49', r)).toBe(true)
    expect(inAnyRange('2.4.50', r)).toBe(true)
    expect(inAnyRange('2.4.51', r)).toBe(false)
    expect(inAnyRange('2.4.51-rc1', r)).toBe(true)
    expect(inAnyRange('5.5.19-log', ['<5.5.20'])).toBe(true)
    expect(inAnyRange('5.5.20-log', ['<5.5.20'])).toBe(false)
    expect(inAnyRange('2.4.49', ['=2.4.49'])).toBe(true)
    expect(inAnyRange('2.4.49', ['2.4.50', '2.4.49'])).toBe(true)
    expect(inAnyRange('anything-1', ['*'])).toBe(true)
    expect(typeof parseRange('>=abc')).toBe('string')
    expect(typeof parseRange('')).toBe('string')
  })
  it('affects()', () => {
    const rule = {doc: {affects: [{product: 'apache/http_server', versions: ['>=2.2.0 <2.2.20']}]}}
    expect(affects(rule, 'apache/http_server', '2.2.19')).toBe(true)
    expect(affects(rule, 'Apache/HTTP_Server', '2.2.20')).toBe(false)
    expect(affects(rule, 'apache/http_server', undefined)).toBe(true)
    expect(affects(rule, 'nginx/nginx', '1.0')).toBe(false)
    expect(affects(rule, undefined, undefined)).toBe(true)
    expect(affects({doc: {}}, 'x/y', '1')).toBe(true)
  })
})

describe('post-release letters', () => {
  it('reads a lone trailing a/b as a patch letter, a1/b2 as alpha/beta', () => {
    expect(compareVersions('1.3.5a', '1.3.5')).toBe(1)
    expect(compareVersions('1.3.5a', '1.3.5b')).toBe(-1)
    expect(compareVersions('1.0.1a', '1.0.1g')).toBe(-1)
    expect(compareVersions('2.0a1', '2.0')).toBe(-1)
    expect(compareVersions('2.0b2', '2.0a1')).toBe(1)
    expect(compareVersions('1.3.5rc3', '1.3.5')).toBe(-1)
  })
})
