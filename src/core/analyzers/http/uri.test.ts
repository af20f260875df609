import fc from 'fast-check'
import {describe, expect, it} from 'vitest'
import {collapseOverlong, normalizeUri, percentDecode} from './uri.js'

const RUNS = Number(process.env.PATCHPOINT_FUZZ_RUNS ?? 2000)

describe('normalizeUri', () => {
  it('overlong UTF-8 slash (IIS unicode traversal)', () => {
    const u = normalizeUri('/scripts/..%c0%af../winnt/system32/cmd.exe')
    expect(u.path).toBe('/winnt/system32/cmd.exe')
    expect(u.extension).toBe('exe')
    expect(u.segments).toEqual(['winnt', 'system32', 'cmd.exe'])
    expect(u.anomalies).toContain('http.uri.overlong_utf8')
    expect(u.anomalies).toContain('http.uri.traversal_above_root')
    expect(u.anomalies).not.toContain('http.uri.double_encoding')
  })

  it('double-encoded backslash (IIS double decode)', () => {
    const u = normalizeUri('/scripts/..%255c../winnt/')
    expect(u.path).toBe('/winnt/')
    expect(u.anomalies).toEqual(expect.arrayContaining(['http.uri.double_encoding', 'http.uri.traversal_above_root']))
  })

  it('encoded dots', () => {
    const u = normalizeUri('/icons/.%2e/%2e%2e/etc/passwd')
    expect(u.path).toBe('/etc/passwd')
    expect(u.anomalies).toEqual(['http.uri.traversal_above_root'])
  })

  it('nested percent encoding %%32%65', () => {
    const u = normalizeUri('/%%32%65%%32%65/')
    expect(u.path).toBe('/')
    expect(u.anomalies).toEqual(expect.arrayContaining(['http.uri.double_encoding', 'http.uri.traversal_above_root']))
  })

  it('IIS ;params', () => {
    const u = normalizeUri('/shell.asp;.jpg')
    expect(u.path).toBe('/shell.asp')
    expect(u.params).toEqual(['.jpg'])
    expect(u.extension).toBe('asp')
  })

  it('Tomcat ..; traversal', () => {
    expect(normalizeUri('/app/..;/manager/html').path).toBe('/manager/html')
  })

  it('trailing dots and spaces', () => {
    expect(normalizeUri('/file.asp.').path).toBe('/file.asp')
    expect(normalizeUri('/file.asp.').extension).toBe('asp')
    expect(normalizeUri('/file.ASP%20%20.').extension).toBe('asp')
  })

  it('dot segments and repeated slashes', () => {
    const u = normalizeUri('/a/./b//c/../d')
    expect(u.path).toBe('/a/b/d')
    expect(u.anomalies).toEqual([])
    expect(normalizeUri('/a/b/..').path).toBe('/a/')
    expect(normalizeUri('/a/b/.').path).toBe('/a/b/')
    expect(normalizeUri('//').path).toBe('/')
  })

  it('%u encoding, fullwidth fold', () => {
    const u = normalizeUri('/%u002e%u002e/%uff0e%uff0e/x.asp')
    expect(u.path).toBe('/x.asp')
    expect(u.anomalies).toEqual(expect.arrayContaining(['http.uri.u_encoding', 'http.uri.traversal_above_root']))
    expect(normalizeUri('/%u4e2d').path).toBe('/\u00e4\u00b8\u00ad') // UTF-8 bytes as latin1
  })

  it('%u best-fit look-alikes of / \\ and . fold as IIS folds them', () => {
    expect(normalizeUri('/scripts/..%u2215..%u2215winnt/cmd.exe').path).toBe('/winnt/cmd.exe')
    expect(normalizeUri('/scripts/..%u2216..%u2044x').anomalies).toContain('http.uri.traversal_above_root')
    expect(normalizeUri('/a/%u2024%u2024/b').path).toBe('/b')
    // the same characters as UTF-8 (no %u) are not IIS's best fit: they stay bytes
    expect(normalizeUri('/a/%e2%88%95/b').path).toBe('/a/\u00e2\u0088\u0095/b')
  })

  it('3-byte overlong and IIS %c1%1c', () => {
    expect(normalizeUri('/a/%e0%80%ae%e0%80%ae/b').path).toBe('/b')
    expect(normalizeUri('/a/..%c1%1c../b').path).toBe('/b')
    expect(normalizeUri('/a/..%c1%9c../b').path).toBe('/b')
  })

  it('NUL truncates the path', () => {
    const u = normalizeUri('/upload/evil.php%00.jpg')
    expect(u.path).toBe('/upload/evil.php')
    expect(u.extension).toBe('php')
    expect(u.anomalies).toContain('http.uri.nul')
  })

  it('query decoded once, path kept apart', () => {
    const u = normalizeUri('/test?q=%24%7Bjndi%3Aldap%7D&x=%2541')
    expect(u.pathRaw).toBe('/test')
    expect(u.queryRaw).toBe('q=%24%7Bjndi%3Aldap%7D&x=%2541')
    expect(u.query).toBe('q=${jndi:ldap}&x=%41')
    expect(u.decoded).toBe('/test?q=${jndi:ldap}&x=%41')
    expect(u.anomalies).toEqual([])
  })

  it('absolute-form and special targets', () => {
    const u = normalizeUri('http://example.com:8080/a/../b.php?x=1')
    expect(u.authority).toBe('http://example.com:8080')
    expect(u.path).toBe('/b.php')
    expect(normalizeUri('*').path).toBe('*')
    expect(normalizeUri('example.com:443').path).toBe('example.com:443')
  })

  it('decoding passes are bounded', () => {
    // four levels of %25: three passes leave one level encoded
    const u = normalizeUri('/%2525252e', {maxDecodePasses: 3})
    expect(u.path).toBe('/%2e')
    expect(normalizeUri('/%2525252e', {maxDecodePasses: 4}).path).toBe('/')
  })

  it('properties: canonical output for any path', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('a', '.', '..', '%2e', '%2f', '/', '\\', '%c0%af', '%252e', ';x', 'b.asp', '%00', ' ', '%u002e'), {maxLength: 20}), (parts) => {
        const u = normalizeUri('/' + parts.join(''))
        expect(u.path.startsWith('/')).toBe(true)
        expect(u.path).not.toMatch(/\/\//)
        expect(u.path).not.toContain('\\')
        expect(u.path).not.toContain('\u0000')
        for (const s of u.segments) {
          expect(s === '.' || s === '..' || s === '').toBe(false)
          expect(s).not.toContain(';')
        }
        // normalizing the normalized path again changes nothing
        expect(normalizeUri(u.path).path).toBe(u.path)
      }),
      {numRuns: RUNS},
    )
  })
})

describe('percentDecode / collapseOverlong', () => {
  it('keeps invalid escapes literally', () => {
    expect(percentDecode('%zz%4')).toBe('%zz%4')
    expect(percentDecode('%41%u0042+', undefined, true)).toBe('AB ')
    expect(percentDecode('a+b')).toBe('a+b')
  })
  it('collapses overlong forms only', () => {
    expect(collapseOverlong('\u00c0\u00ae')).toBe('.')
    expect(collapseOverlong('\u00c3\u00a9')).toBeUndefined()
  })
})
