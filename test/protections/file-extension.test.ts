import {describe, it, expect} from 'vitest'
import {protectionRules, withProtectionRules, FILE_EXTENSION_RULE_ID} from '../../src/core/protections/index.js'
import {loadRules} from '../../src/core/rules/engine.js'
import {packageRulesDir} from '../../src/core/rules/rule-schema.js'
import {get, matchIds, upload} from './http.js'

const ID = FILE_EXTENSION_RULE_ID
const defaults = protectionRules()
const hit = (raw: string, rules = defaults) => matchIds(rules, raw).includes(ID)

describe('file-extension blacklist (defaults)', () => {
  it('request paths: backups and configs, after normalization', () => {
    for (const t of ['/db/dump.sql', '/web.config', '/web.config.', '/web%2econfig', '/web%252econfig', '/.htaccess', '/index.php.bak',
      '/index.php.swp;jsessionid=1', '/a/../.env', '/x/%2e%2e/site.old', '/APP.INI']) {
      expect({t, hit: hit(get(t))}).toEqual({t, hit: true})
    }
  })
  it('request paths near misses: scripts, directories named like extensions, extensions in the query', () => {
    for (const t of ['/index.php', '/default.aspx?x=1', '/config/settings.html', '/backup/', '/view?file=a.log', '/logo.png', '/sql.html', '/env']) {
      expect({t, hit: hit(get(t))}).toEqual({t, hit: false})
    }
  })
  it('uploads: executable names, disguised by ; trailing dots, blanks, NUL or case', () => {
    for (const n of ['shell.asp', 'shell.asp;.jpg', 'shell.php.', 'shell.PhP', 'shell.aspx ', 'shell.php%00.png', 'shell.jsp.. ', 'x.htaccess', 'run.BAT']) {
      expect({n, hit: hit(upload(n))}).toEqual({n, hit: true})
    }
  })
  it('uploads near misses: images, documents, names that merely contain a listed word', () => {
    for (const n of ['photo.jpg', 'holiday.php.jpg', 'report.pdf', 'my_asp_notes.txt', 'php.png', 'shell', 'archive.tar.gz']) {
      expect({n, hit: hit(upload(n))}).toEqual({n, hit: false})
    }
  })
  it('requests for a script disguised by ; or a trailing dot', () => {
    expect(hit(get('/uploads/shell.asp;.jpg'))).toBe(true)
    expect(hit(get('/uploads/shell.php.'))).toBe(true)
    expect(hit(get('/uploads/shell.php%2e'))).toBe(true)
    expect(hit(get('/uploads/shell.php'))).toBe(false)
  })
})

describe('file-extension blacklist: filename*= and PUT', () => {
  const dispo = (params: string): string => {
    const part = `--b\r\nContent-Disposition: form-data; name="f"; ${params}\r\n\r\nx\r\n--b--\r\n`
    return `POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: ${part.length}\r\n\r\n${part}`
  }
  const put = (target: string): string => `PUT ${target} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx`
  it('an executable name in the RFC 8187 filename* parameter, next to or instead of filename=', () => {
    for (const p of [`filename*=UTF-8''shell.jsp`, `filename="a.jpg"; filename*=UTF-8''shell.jsp`, `filename*=utf-8'en'shell%2Ejsp`, `filename="shell.php"; filename*=UTF-8''a.jpg`, `FILENAME*=UTF-8''x.ASPX`]) {
      expect({p, hit: hit(dispo(p))}).toEqual({p, hit: true})
    }
    for (const p of [`filename*=UTF-8''f%C3%A9te.png`, `filename="a.jpg"; filename*=UTF-8''a.jsp.jpg`]) expect({p, hit: hit(dispo(p))}).toEqual({p, hit: false})
  })
  it('PUT of an executable name, a trailing slash or dot included (CVE-2017-12617); other methods and names are not uploads', () => {
    for (const t of ['/uploads/shell.jsp', '/shell.jsp/', '/shell.JSP//', '/a/shell.php.', '/x/web.config', '/shell%2ejsp/']) expect({t, hit: hit(put(t))}).toEqual({t, hit: true})
    for (const t of ['/dav/report.txt', '/dav/jsp/', '/dav/shell.jsp.txt']) expect({t, hit: hit(put(t))}).toEqual({t, hit: false})
    expect(hit(get('/uploads/shell.jsp'))).toBe(false)
    const rules = protectionRules({file_extensions: {uploads: ['svg']}})
    expect(hit(put('/img/x.svg/'), rules)).toBe(true)
    expect(hit(put('/img/x.jsp'), rules)).toBe(false)
  })
})

describe('file-extension blacklist from the config', () => {
  it('replaces the lists', () => {
    const rules = protectionRules({file_extensions: {requests: ['md'], uploads: ['svg']}})
    expect(hit(get('/README.md'), rules)).toBe(true)
    expect(hit(get('/dump.sql'), rules)).toBe(false)
    expect(hit(upload('x.svg'), rules)).toBe(true)
    expect(hit(upload('x.php'), rules)).toBe(false)
  })
  it('empty lists or enabled: false give no rule; invalid entries are skipped', () => {
    expect(protectionRules({file_extensions: {enabled: false}})).toEqual([])
    expect(protectionRules({file_extensions: {requests: [], uploads: []}})).toEqual([])
    const rules = protectionRules({file_extensions: {requests: ['.BAK', 'a b', '(x|y)'], uploads: []}})
    expect(rules.length).toBe(1)
    expect(hit(get('/a.bak'), rules)).toBe(true)
  })
  it('withProtectionRules replaces the file rule by id', () => {
    const loaded = loadRules(packageRulesDir).rules
    expect(loaded.filter((r) => r.id === ID).length).toBe(1)
    const merged = withProtectionRules(loaded, {file_extensions: {requests: ['md']}})
    expect(merged.filter((r) => r.id === ID).length).toBe(1)
    expect(merged.length).toBe(loaded.length)
    expect(withProtectionRules(loaded, {file_extensions: {enabled: false}}).some((r) => r.id === ID)).toBe(false)
  })
})
