import {describe, it, expect} from 'vitest'
import fc from 'fast-check'
import {transforms, urlDecode, urlDecodeAll, utf8Overlong, htmlEntity, base64Decode, compressWhitespace, removeWhitespace,
  removeNulls, normalizePath, trim, log4jLookups, hexDecode, jsonUnescape, MAX_TRANSFORM_OUTPUT, registerTransform, applyTransforms} from './transforms.js'

describe('transforms', () => {
  it('url_decode handles %XX, %uXXXX and leaves malformed escapes', () => {
    expect(urlDecode('a%20b%2fc')).toBe('a b/c')
    expect(urlDecode('%u0041%u002e')).toBe('A.')
    expect(urlDecode('%zz%4')).toBe('%zz%4')
    expect(urlDecode('%u2215')).toBe(Buffer.from('\u2215', 'utf8').toString('latin1'))
  })
  it('url_decode_all stops after 4 rounds', () => {
    expect(urlDecodeAll('%2524')).toBe('$')
    expect(urlDecodeAll('%25252525252541')).toBe('%252541')
  })
  it('utf8_overlong decodes overlong ASCII only', () => {
    expect(utf8Overlong('\xc0\xaf..\xe0\x80\xae')).toBe('/...')
    expect(utf8Overlong('\xf0\x80\x80\xaf')).toBe('/')
    expect(utf8Overlong('\xc3\xa9')).toBe('\xc3\xa9')
  })
  it('html_entity decodes numeric and named entities', () => {
    expect(htmlEntity('&lt;script&gt;&#x24;&#123;x&#125')).toBe('<script>${x}')
    expect(htmlEntity('&bogus; & x')).toBe('&bogus; & x')
  })
  it('base64_decode, hex_decode', () => {
    expect(base64Decode('JHtqbmRpOn0=')).toBe('${jndi:}')
    expect(hexDecode('0x2476')).toBe('$v')
    expect(hexDecode('a\\x24\\x7bb')).toBe('a${b')
  })
  it('json_unescape decodes what JSON.parse decodes, left to right, and leaves other backslashes', () => {
    expect(jsonUnescape('\\u0024\\u007Bjndi:x\\u007d')).toBe('${jndi:x}')
    expect(jsonUnescape('a\\\\u0024')).toBe('a\\u0024')
    expect(jsonUnescape('\\"q\\" \\/ \\n\\t')).toBe('"q" / \n\t')
    expect(jsonUnescape('\\x24 \\u12 \\uZZZZ \\')).toBe('\\x24 \\u12 \\uZZZZ \\')
    expect(jsonUnescape('\\u00e9\\ud83d\\ude00')).toBe('\xe9' + Buffer.from('\u{1f600}', 'utf8').toString('latin1'))
    // a JSON string literal's content, unescaped, equals JSON.parse's (as latin1 for ASCII content)
    fc.assert(fc.property(fc.string({unit: fc.constantFrom('a', '$', '{', '"', '\\', '/', '\n', '\t', '\u0001', '\u007f')}), (x) => {
      const lit = JSON.stringify(x).slice(1, -1).replace(/[${}]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))
      expect(jsonUnescape(lit)).toBe(x)
      expect(jsonUnescape(lit).length).toBeLessThanOrEqual(lit.length)
    }))
  })
  it('whitespace and nulls', () => {
    expect(compressWhitespace('a \t\r\n b')).toBe('a b')
    expect(removeWhitespace(' a b\tc ')).toBe('abc')
    expect(removeWhitespace('abc')).toBe('abc')
    expect(removeWhitespace(' \t\u00a0')).toBe('')
    fc.assert(fc.property(fc.string({unit: fc.constantFrom('a', 'b', ' ', '\t', '\n', '\r', '\v', '\f', '\u00a0', '\u2003')}), (x) => {
      expect(removeWhitespace(x)).toBe([...x].filter((c) => !/^[ \t\n\v\f\r\u00a0]$/.test(c)).join(''))
      expect(compressWhitespace(x)).toBe(x.replace(/[ \t\n\v\f\r\u00a0]+/g, ' '))
    }))
    expect(removeNulls('a\0b\0')).toBe('ab')
    expect(trim('  x \0')).toBe('x')
  })
  it('normalize_path resolves dot segments, backslashes, repeated slashes', () => {
    expect(normalizePath('/a/./b/../../../etc//passwd')).toBe('/etc/passwd')
    expect(normalizePath('\\cgi-bin\\..\\..\\x?a=../b')).toBe('/x?a=../b')
    expect(normalizePath('/a/b/')).toBe('/a/b/')
  })
  it('log4j_lookups resolves obfuscations conservatively', () => {
    expect(log4jLookups('${jndi:ldap://x/a}')).toBe('${jndi:ldap://x/a}')
    expect(log4jLookups('${${lower:J}${upper:n}di:x}')).toBe('${jNdi:x}')
    expect(log4jLookups('${${::-j}${::-n}${::-d}${::-i}:rmi://x}')).toBe('${jndi:rmi://x}')
    // Java: 'ı'.toUpperCase() === 'I' (UTF-8 bytes as latin1 text)
    expect(log4jLookups('${jnd${upper:\xc4\xb1}:ldap://x}')).toBe('${jndI:ldap://x}')
    expect(log4jLookups('${upper:\xc5\xbf}')).toBe('S')
    expect(log4jLookups("${${env:NOPE:-j}nd${date:'i'}:x}")).toBe('${jndi:x}')
    expect(log4jLookups('${env:HOME}')).toBe('${env:HOME}')
    expect(log4jLookups('${unterminated')).toBe('${unterminated')
    // deep nesting is bounded and linear
    const deep = '${'.repeat(5000) + 'x' + '}'.repeat(5000)
    const t = Date.now()
    expect(log4jLookups(deep).length).toBeLessThanOrEqual(deep.length)
    expect(Date.now() - t).toBeLessThan(1000)
  })
  it('registry: every documented transform exists; outputs are capped', () => {
    for (const n of ['lowercase', 'url_decode', 'url_decode_all', 'utf8_overlong', 'html_entity', 'base64_decode', 'compress_whitespace',
      'remove_whitespace', 'remove_nulls', 'normalize_path', 'trim', 'log4j_lookups', 'hex_decode']) expect(transforms.has(n)).toBe(true)
    registerTransform('double', (s) => s + s)
    const big = 'x'.repeat(MAX_TRANSFORM_OUTPUT)
    expect(transforms.get('double')!(big).length).toBe(MAX_TRANSFORM_OUTPUT)
    expect(applyTransforms([transforms.get('lowercase')!, transforms.get('url_decode')!], 'A%42')).toBe('aB')
  })
})
