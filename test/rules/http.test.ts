/**
 * The HTTP rule pack (rules/apache, iis, exchange, php, java, http, generic): every rule lints
 * clean and passes its own samples, and EXTRA variants that are not in the samples (other
 * encodings, case changes, whitespace, splitting) make the right rule fire through the real
 * analyzer, while benign near misses make none fire.
 *
 * Anomaly rules (protocol 'anomaly') are judged the way the engine does it: every anomaly the
 * HTTP analyzer reports becomes a unit {protocol: 'anomaly', kind: type, fields anomaly.event /
 * anomaly.type}.
 */
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {runAnalyzer, type ScriptStep} from '../../src/core/analyzers/harness.js'
import {httpAnalyzer} from '../../src/core/analyzers/http/index.js'
import type {CompiledRule} from '../../src/core/rules/compile.js'
import {RuleSet} from '../../src/core/rules/engine.js'
import {fieldsFor} from '../../src/core/rules/fields.js'
import {applyEdits} from '../../src/core/rules/fixes.js'
import {lintRules} from '../../src/core/rules/lint.js'
import {testRule} from '../../src/core/rules/sample-test.js'
import {anomalyPdu} from '../../src/core/protections/anomaly-fields.js'

const RULES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../rules')
const HTTP_DIRS = ['apache', 'iis', 'exchange', 'php', 'java', 'http', 'generic'].map((d) => path.join(RULES, d))
const FUZZ_RUNS = Number(process.env.PATCHPOINT_FUZZ_RUNS ?? 100)

/** every HTTP-pack rule, compiled without the field check (lint of protocol 'anomaly' is separate) */
const all = lintRules(HTTP_DIRS)
const byId = new Map(all.rules.map((r) => [r.id, r]))
const httpRules = all.rules.filter((r) => r.protocol === 'http')
// the anomaly rules judged here have HTTP samples (one toserver string each); the others (MySQL's
// compressed-protocol evasion: conversations as steps) are checked by their own pack's tests
const anomalyRules = all.rules.filter((r) => r.protocol === 'anomaly' && ![...(r.doc.samples?.malicious ?? []), ...(r.doc.samples?.benign ?? [])].some((x) => x.steps !== undefined))
const httpSet = new RuleSet(httpRules)
const anomalySet = new RuleSet(anomalyRules)

function rule(id: string): CompiledRule {
  const r = byId.get(id)
  if (!r) throw new Error(`rule ${id} not loaded`)
  return r
}

function latin1(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'latin1'))
}


/** ids of the rules that fire on a client conversation (HTTP units and anomaly units) */
function fired(request: string | Uint8Array, chunkSize?: number): Set<string> {
  const data = typeof request === 'string' ? latin1(request) : request
  const res = runAnalyzer(httpAnalyzer, [{dir: 'toserver', data}], {chunkSize})
  const ids = new Set<string>()
  for (const pdu of res.pdus) for (const m of httpSet.evaluate(pdu)) ids.add(m.rule.id)
  for (const a of res.anomalies) for (const m of anomalySet.evaluate(anomalyPdu(a))) ids.add(m.rule.id)
  return ids
}

function get(target: string, headers = ''): string {
  return `GET ${target} HTTP/1.1\r\nHost: x\r\n${headers}\r\n`
}

describe('HTTP rule pack: lint and samples', () => {
  it('loads every rule file of the pack', () => {
    expect(all.errors).toEqual([])
    expect(all.rules.length).toBeGreaterThanOrEqual(18)
  })

  it('lints clean against the analyzers\' field lists (incl. the anomaly pseudo-protocol)', () => {
    const strict = lintRules(HTTP_DIRS, {fieldsFor})
    expect(strict.errors).toEqual([])
    expect(strict.rules.length).toBe(all.rules.length)
    expect(anomalyRules.length).toBeGreaterThanOrEqual(5)
  })

  it.each(httpRules.map((r) => [r.id, r] as const))('%s passes its own samples (whole, bytewise, fix)', (_id, r) => {
    const res = testRule(r, httpAnalyzer)
    expect(res.samples.filter((s) => !s.ok)).toEqual([])
    expect(res.samples.filter((s) => s.kind === 'malicious').length).toBeGreaterThanOrEqual(2)
    expect(res.samples.filter((s) => s.kind === 'benign').length).toBeGreaterThanOrEqual(2)
  })

  it.each(anomalyRules.map((r) => [r.id, r] as const))('%s: its samples raise (or not) the anomaly it judges', (_id, r) => {
    const one = new RuleSet([r])
    for (const kind of ['malicious', 'benign'] as const) {
      for (const s of r.doc.samples?.[kind] ?? []) {
        for (const chunkSize of [undefined, 1]) {
          const script: ScriptStep[] = [{dir: 'toserver', data: latin1(s.toserver ?? '')}]
          const res = runAnalyzer(httpAnalyzer, script, {chunkSize})
          const hits = res.anomalies.reduce((n, a) => n + one.evaluate(anomalyPdu(a)).length, 0)
          if (kind === 'malicious') expect(hits, s.name).toBeGreaterThan(0)
          else expect(hits, s.name).toBe(0)
        }
      }
    }
  })
})

describe('Apache / generic rules: extra variants', () => {
  it('PP-2021-41773: CVE-2021-42013 with the dot written %%32%45 / %25%32%45 (upper-case E)', () => {
    expect(fired(get('/cgi-bin/.%%32%45/.%%32%45/.%%32%45/bin/sh'))).toContain('PP-2021-41773')
    expect(fired(get('/icons/.%25%32%45/.%25%32%45/etc/passwd'))).toContain('PP-2021-41773')
    expect(fired(get('/dist/v%34.%32/../file'))).not.toContain('PP-2021-41773')
  })

  it('PP-2021-41773: encodings of the dot segment the samples do not use', () => {
    for (const t of [
      '/cgi-bin/%2e%2e/%2e%2e/%2e%2e/bin/sh',
      '/cgi-bin/%2E./%2E./bin/sh',
      '/icons/.%%32%65/.%%32e/%%32%65./etc/passwd',
      '/icons/.%2%65/.%2%65/etc/passwd',
      '/x/%u002e%u002e/%u002e%u002e/etc/hosts',
      '/cgi-bin/.%25%32%65/.%25%32%65/etc/shadow',
    ]) {
      expect(fired(get(t)), t).toContain('PP-2021-41773')
    }
  })

  it('PP-2021-41773: benign near misses', () => {
    for (const t of ['/a/b/../c.html', '/%2e%2ehidden/file', '/v%2e1/..a/b', '/docs/%7Euser/page.html', '/a%2fb/../c']) {
      expect(fired(get(t)), t).not.toContain('PP-2021-41773')
    }
  })

  it('PP-2021-41773: matches when the request arrives one byte at a time, and the fix leaves no traversal', () => {
    const req = get('/cgi-bin/.%2e/%2e%2e/.%%32%65/bin/sh')
    expect(fired(req, 1)).toContain('PP-2021-41773')
    const set = new RuleSet([rule('PP-2021-41773')], {actionFor: () => 'fix'})
    const data = latin1(req)
    const pdu = runAnalyzer(httpAnalyzer, [{dir: 'toserver', data}]).pdus[0]
    const [m] = set.evaluate(pdu)
    expect(m.inline).toBe(true)
    const fixed = Buffer.from(applyEdits(data, 0, m.edits)).toString('latin1')
    expect(fixed.startsWith('GET /cgi-bin/._2e/_2e_2e/.__32_65/bin/sh HTTP/1.1')).toBe(true)
    expect(fired(fixed).has('PP-2021-41773')).toBe(false)
  })

  it('PP-2021-44228: a JSON body\'s \\u escapes (decoded by the JSON parser before the value is logged)', () => {
    const post = (body: string) => `POST /api HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`
    expect(fired(post('{"u":"\\u0024\\u007Bjndi:ldap://x/a\\u007d"}'))).toContain('PP-2021-44228')
    expect(fired(post('{"u":"$\\u007b${lower:j}ndi\\u003aldap://x/a}"}'))).toContain('PP-2021-44228')
    expect(fired(post('{"u":"\\\\u0024{jndi:x}"}'))).not.toContain('PP-2021-44228')
    expect(fired(post('{"note":"\\u0024{HOME} and \\u007bjndi\\u007d"}'))).not.toContain('PP-2021-44228')
  })

  it('PP-2021-44228: XML character references in a body, and the dotless i that Java upper-cases to I', () => {
    const post = (ct: string, body: string) => `POST /ws HTTP/1.1\r\nHost: x\r\nContent-Type: ${ct}\r\nContent-Length: ${body.length}\r\n\r\n${body}`
    expect(fired(post('text/xml', '<a><u>&#36;&#123;jndi:ldap://x/a&#125;</u></a>'))).toContain('PP-2021-44228')
    expect(fired(post('application/xml', '<a><u>&#x24;{jndi:ldap://x/a}</u></a>'))).toContain('PP-2021-44228')
    expect(fired(post('application/xml', '<a>&#36;5 &#123;each&#125; &amp; jndi</a>'))).not.toContain('PP-2021-44228')
    expect(fired(get('/?q=${jnd${upper:%C4%B1}:ldap://x/a}'))).toContain('PP-2021-44228')
    expect(fired(post('application/json', '{"u":"${jnd${upper:\\u0131}:ldap://x/a}"}'))).toContain('PP-2021-44228')
  })

  it('a body sent after Expect: 100-continue (judged as its own unit) is judged by every rule that reads bodies, once', () => {
    const post = (ct: string, body: string, extra = '') =>
      `POST /app HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n${extra}Content-Type: ${ct}\r\nContent-Length: ${body.length}\r\n\r\n${body}`
    const form = 'application/x-www-form-urlencoded'
    const part = (name: string, value: string, filename?: string) =>
      `--ZZ\r\nContent-Disposition: form-data; name="${name}"${filename === undefined ? '' : `; filename="${filename}"`}\r\n\r\n${value}\r\n--ZZ--\r\n`
    const cases: [string, string][] = [
      [post(form, 'class.module.classLoader.resources.context.parent.pipeline.first.pattern=x'), 'PP-2022-22965'],
      [post(form, 'user=%24%7Bjndi%3Aldap%3A%2F%2Fx%2Fa%7D'), 'PP-2021-44228'],
      [post('application/json', '{"u":"${jndi:ldap://x/a}"}'), 'PP-2021-44228'],
      [post(form, "id=1' union select password from users--"), 'PP-SQLI'],
      [post(form, 'a=() { :; }; /bin/id'), 'PP-SHELLSHOCK'],
      [post('multipart/form-data; boundary=ZZ', part('f', 'x', "%{(#cmd='id')}")), 'PP-2017-5638'],
      [post('multipart/form-data; boundary=ZZ', part('f', '<% x %>', 'shell.jsp')), 'PP-FILE-EXTENSION'],
    ]
    for (const [req, id] of cases) {
      const pdus = runAnalyzer(httpAnalyzer, [{dir: 'toserver', data: latin1(req)}]).pdus
      expect(pdus.map((p) => p.kind), id).toEqual(['request', 'request_body'])
      expect(httpSet.evaluate(pdus[0]).map((m) => m.rule.id), id).not.toContain(id)
      expect(httpSet.evaluate(pdus[1]).map((m) => m.rule.id), id).toContain(id)
    }
    // a head that matched is not reported again by its body unit (which carries the head as context)
    const pdus = runAnalyzer(httpAnalyzer, [{dir: 'toserver', data: latin1(post(form, 'a=1', 'User-Agent: ${jndi:ldap://x/a}\r\n'))}]).pdus
    expect(httpSet.evaluate(pdus[0]).map((m) => m.rule.id)).toContain('PP-2021-44228')
    expect(httpSet.evaluate(pdus[1]).map((m) => m.rule.id)).not.toContain('PP-2021-44228')
  })

  it('PP-SHELLSHOCK covers the CVE-2014-7169 follow-ups in other CGI variables', () => {
    expect(rule('PP-SHELLSHOCK').cves).toEqual(expect.arrayContaining(['CVE-2014-6271', 'CVE-2014-7169']))
    expect(fired(get('/cgi-bin/a.sh', 'Accept-Language: () { (a)=>\\\' bash -c "echo date"\r\n'))).toContain('PP-SHELLSHOCK')
    expect(fired(get('/cgi-bin/a.sh', 'X-Forwarded-For:\t(){:;};echo;id\r\n'))).toContain('PP-SHELLSHOCK')
    expect(fired(get('/cgi-bin/a.sh?x=%2528%2529%2520%257B%3A%3B%7D%3B%20id'))).toContain('PP-SHELLSHOCK')
    expect(fired(get('/cgi-bin/a.sh', 'Cookie: s=() { _; } >_[$($())] { echo hi; }\r\n'))).toContain('PP-SHELLSHOCK')
    expect(fired(get('/cgi-bin/a.sh', 'User-Agent: Mozilla/5.0 (Windows NT 10.0) () {x}\r\n'))).not.toContain('PP-SHELLSHOCK')
  })

  it('PP-2011-3192: count at the analyzer cap, Request-Range, suffix ranges', () => {
    const many = Array.from({length: 200}, (_, i) => `${i}-${i + 10}`).join(',')
    expect(fired(get('/big', `Range: bytes=${many}\r\n`))).toContain('PP-2011-3192')
    expect(fired(get('/big', `Request-Range: bytes=${many}\r\n`))).toContain('PP-2011-3192')
    expect(fired(get('/big', 'Range: bytes = -10 , -20\r\n'))).toContain('PP-2011-3192')
    expect(fired(get('/big', 'Range: bytes=0-99,200-299,-100\r\n'))).not.toContain('PP-2011-3192')
  })
})

describe('Java / PHP rules: extra variants', () => {
  it('PP-2017-5638: OGNL in Content-Type with other syntax and spacing', () => {
    expect(fired(get('/x.action', 'Content-Type: ${(#nike=\'multipart/form-data\').(#cmd=\'whoami\')}\r\n'))).toContain('PP-2017-5638')
    expect(fired(get('/x.action', 'content-type:   text/plain %{@java.lang.Runtime@getRuntime().exec(\'id\')}\r\n'))).toContain('PP-2017-5638')
    expect(fired(get('/x.action', 'Content-Type: %{1337*1337}\r\n'))).toContain('PP-2017-5638')
    expect(fired(get('/x.action', 'Content-Disposition: attachment; filename="%{#a=1}"\r\n'))).toContain('PP-2017-5638')
    expect(fired(get('/x.action', 'Content-Type: text/html; charset=%{x}\r\n'))).not.toContain('PP-2017-5638')
    expect(fired(get('/x.action', 'Content-Type: application/vnd.api+json\r\n'))).not.toContain('PP-2017-5638')
  })

  it('PP-2017-5638: a nested brace keeps the expression open (Struts counts braces)', () => {
    expect(fired(get('/x.action', "Content-Type: %{'{}'+(#_='multipart/form-data').(#cmd='id')}\r\n"))).toContain('PP-2017-5638')
    expect(fired(get('/x.action', "Content-Type: multipart/form-data %{{1}.(#cmd='id').(@java.lang.Runtime@getRuntime().exec(#cmd))}\r\n"))).toContain('PP-2017-5638')
    const body = "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"%{'{}'+(#cmd='id')}\0b\"\r\n\r\nx\r\n--b--\r\n"
    expect(fired(`POST /upload.action HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: ${body.length}\r\n\r\n${body}`)).toContain('PP-2017-5638')
    expect(fired(get('/x.action', 'Content-Disposition: attachment; filename="budget ${year} (1) [v2].txt"\r\n'))).not.toContain('PP-2017-5638')
  })

  it('PP-2017-5638: S2-046 filename when the multipart body is split across segments', () => {
    const body = '--b\r\nContent-Disposition: form-data; name="f"; filename="${#context[\'x\'].addHeader(\'a\',1)}"\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n'
    const req = `POST /upload.action HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: ${body.length}\r\n\r\n${body}`
    expect(fired(req)).toContain('PP-2017-5638')
    expect(fired(req, 7)).toContain('PP-2017-5638')
  })

  it('PP-2022-22965: case, encoding, bracket and multipart variants', () => {
    expect(fired(get('/app?CLASS.MODULE.CLASSLOADER.resources.x=1'))).toContain('PP-2022-22965')
    expect(fired(get('/app?class%5B%27module%27%5D.classLoader.x=1'))).toContain('PP-2022-22965')
    expect(fired(get('/app?%63lass.%6dodule.%63lassLoader.x=1'))).toContain('PP-2022-22965')
    expect(fired(get('/app?class.protectionDomain.codeSource.x=1'))).toContain('PP-2022-22965')
    const body = '--b\r\nContent-Disposition: form-data; name="class.module.classLoader.resources.context.parent.pipeline.first.pattern"\r\n\r\nx\r\n--b--\r\n'
    expect(fired(`POST /app HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: ${body.length}\r\n\r\n${body}`)).toContain('PP-2022-22965')
    expect(fired(get('/app?classname=module.classloader&className=x'))).not.toContain('PP-2022-22965')
    expect(fired(get('/app?q=class.module.classLoader'))).not.toContain('PP-2022-22965')
  })

  it('PP-2012-1823: option variants and near misses', () => {
    expect(fired(get('/index.php?-s'))).toContain('PP-2012-1823')
    expect(fired(get('/index.php?%20-d+safe_mode%3doff'))).toContain('PP-2012-1823')
    expect(fired(get('/index.php?+%2Dn'))).toContain('PP-2012-1823')
    expect(fired(get('/php-cgi/php-cgi.exe?%adc+C%3a/x.ini'))).toContain('PP-2012-1823')
    expect(fired(get('/index.php?-d=1'))).not.toContain('PP-2012-1823')
    expect(fired(get('/index.php?a-b-c'))).not.toContain('PP-2012-1823')
    expect(fired(get('/index.php?'))).not.toContain('PP-2012-1823')
  })
})

describe('IIS rules: extra variants', () => {
  it('PP-2015-1635: the wrapping end behind more ranges than the analyzer keeps, or behind leading zeros', () => {
    const many = Array.from({length: 70}, (_, i) => `${i * 10}-${i * 10 + 1}`).join(',')
    expect(fired(get('/', `Range: bytes=${many},900-18446744073709551615\r\n`))).toContain('PP-2015-1635')
    expect(fired(get('/', `Range: bytes=0-${'0'.repeat(70)}18446744073709551615\r\n`))).toContain('PP-2015-1635')
    expect(fired(get('/', `Range: bytes=${many}\r\n`))).not.toContain('PP-2015-1635')
  })

  it('PP-2000-0884: escapes only IIS decodes (lenient hex, 5- and 6-byte overlong forms)', () => {
    for (const sep of ['%c0%9v', '%c0%qf', '%c1%8s', '%c1%pc', '%f8%80%80%80%af', '%fc%80%80%80%80%af']) {
      expect(fired(`GET /scripts/..${sep}../winnt/system32/cmd.exe?/c+dir HTTP/1.0\r\n\r\n`), sep).toContain('PP-2000-0884')
    }
    expect(fired(get('/files/100%25..final/report..v2%c3%a9.pdf'))).not.toContain('PP-2000-0884')
  })

  it('PP-2015-1635: Request-Range, huge ends, tabs', () => {
    expect(fired(get('/', 'Request-Range: bytes=0-18446744073709551615\r\n'))).toContain('PP-2015-1635')
    expect(fired(get('/', 'Range: bytes=\t5-18446744073709551616\r\n'))).toContain('PP-2015-1635')
    expect(fired(get('/', 'Range: bytes=0-18446744073709551614\r\n'))).not.toContain('PP-2015-1635')
    expect(fired(get('/', 'Range: bytes=18446744073709551615-\r\n'))).not.toContain('PP-2015-1635')
  })

  it('PP-2017-7269: other WebDAV methods, lower-case header name', () => {
    const long = 'http://h/' + 'x'.repeat(250)
    expect(fired(`MOVE /a HTTP/1.1\r\nHost: x\r\nif: <${long}> (<opaquelocktoken:1>)\r\nDestination: /b\r\n\r\n`)).toContain('PP-2017-7269')
    expect(fired(`PROPPATCH /a HTTP/1.1\r\nHost: x\r\nIf: (<opaquelocktoken:1>) <${long}>\r\nContent-Length: 0\r\n\r\n`)).toContain('PP-2017-7269')
    expect(fired(`PROPFIND /a HTTP/1.1\r\nHost: x\r\nIf: (<opaquelocktoken:${'a'.repeat(150)}>)\r\n\r\n`)).not.toContain('PP-2017-7269')
  })

  it('PP-2001-0500: .idq, encodings of the extension', () => {
    const n = 'N'.repeat(230)
    expect(fired(get(`/x.idq?${n}=X`))).toContain('PP-2001-0500')
    expect(fired(get(`/default%2eida?${n}=X`))).toContain('PP-2001-0500')
    expect(fired(get(`/scripts/default.ida;x?${'%u9090'.repeat(80)}=X`))).toContain('PP-2001-0500')
    expect(fired(get(`/default.ida?CiRestriction=${n}`))).not.toContain('PP-2001-0500')
    expect(fired(get(`/default.idaa?${n}=X`))).not.toContain('PP-2001-0500')
  })

  it('PP-2000-0884: other overlong and double-decode separators', () => {
    for (const t of [
      '/scripts/..%c1%9c../winnt/system32/cmd.exe',
      '/scripts/..%c0%2f../winnt/system32/cmd.exe',
      '/scripts/..%e0%80%af../winnt/system32/cmd.exe',
      '/scripts/..%25%35%63../winnt/system32/cmd.exe',
      '/scripts/%c0%ae%c0%ae%c0%af%c0%ae%c0%ae/winnt/win.ini',
      '/msadc/..%255c..%255c..%255cwinnt/system32/cmd.exe',
    ]) {
      expect(fired(get(t)), t).toContain('PP-2000-0884')
    }
    for (const t of ['/scripts/..%2f../x', '/a/%C3%A9t%C3%A9/../b', '/x/..%20/y']) {
      expect(fired(get(t)), t).not.toContain('PP-2000-0884')
    }
  })

  it('PP-2003-0109: long WebDAV target beyond the request-line cap, split in segments', () => {
    const req = `PROPPATCH /${'%u0041'.repeat(6000)} HTTP/1.1\r\nHost: x\r\n\r\n`
    expect(fired(req)).toContain('PP-2003-0109')
    expect(fired(req, 4096)).toContain('PP-2003-0109')
    expect(fired(`GET /${'A'.repeat(40000)} HTTP/1.1\r\nHost: x\r\n\r\n`)).not.toContain('PP-2003-0109')
    expect(fired(`MKCOL /${'d/'.repeat(2000)} HTTP/1.1\r\nHost: x\r\n\r\n`)).not.toContain('PP-2003-0109')
  })
})

describe('Exchange rules: extra variants', () => {
  it('PP-2021-26855: backslash, encoded separators, /owa/auth', () => {
    expect(fired(get('/ecp/x.js', 'Cookie: X-BEResource=localhost\\owa\\auth~1942062522\r\n'))).toContain('PP-2021-26855')
    expect(fired(get('/owa/auth/z.css', 'Cookie: X-AnonResource=true; X-AnonResource-Backend=localhost%252Fecp%252Fdefault.flt%253F~3\r\n'))).toContain('PP-2021-26855')
    expect(fired(get('/ECP/DDI/x.js', 'Cookie:x-beresource=evil.example:443/owa/?~1\r\n'))).toContain('PP-2021-26855')
    expect(fired(get('/ecp/x.js', 'Cookie: X-BEResource=mbx02.corp.local~1942062522~extra\r\n'))).not.toContain('PP-2021-26855')
    expect(fired(get('/api/x', 'Cookie: X-BEResource=localhost/owa/?~3\r\n'))).not.toContain('PP-2021-26855')
  })

  it('PP-2021-34473 / PP-2022-41040: encoded and re-cased variants', () => {
    const ps = '/autodiscover/autodiscover.json?@evil.corp/powershell/?X-Rps-CAT=x&Email=autodiscover/autodiscover.json%3F@evil.corp'
    const both = fired(get(ps))
    expect(both).toContain('PP-2021-34473')
    expect(both).toContain('PP-2022-41040')
    expect(fired(get('/AutoDiscover/AutoDiscover.JSON?%40x/mapi/nspi&Email=Autodiscover%5CAutodiscover%2Ejson%3F%40x'))).toContain('PP-2021-34473')
    expect(fired(get('/autodiscover/autodiscover.json?@x/%50ower%53hell'))).toContain('PP-2022-41040')
    expect(fired(get('/autodiscover/autodiscover.json?Email=a%40b.com&Protocol=Ews&RedirectCount=1'))).toEqual(new Set())
    expect(fired(get('/owa/?path=/autodiscover/autodiscover.json&x=@y'))).not.toContain('PP-2021-34473')
  })

  it('PP-2021-34473 / PP-2022-41040: the Email read from a cookie or the form body, and a sub-path', () => {
    // ASP.NET Request.Params["Email"]: query, form and cookies
    expect(fired(get('/autodiscover/autodiscover.json?a=x@y.com/mapi/nspi/', 'Cookie: Email=autodiscover/autodiscover.json?a=x@y.com\r\n'))).toContain('PP-2021-34473')
    const body = 'Email=autodiscover/autodiscover.json%3Fa%3Dx@y.com'
    expect(fired(`POST /autodiscover/autodiscover.json?a=x@y.com/ews/exchange.asmx HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body}`)).toContain('PP-2021-34473')
    expect(fired(get('/autodiscover/foo/autodiscover.json?@x.com/mapi/nspi/?&Email=autodiscover/foo/autodiscover.json%3F@x.com'))).toContain('PP-2021-34473')
    expect(fired(get('/autodiscover/autodiscover.json?a=x/powershell/', 'Cookie: Email=autodiscover/autodiscover.json?a=x\r\n'))).toContain('PP-2022-41040')
    expect(fired(get('/autodiscover/autodiscover.json?Protocol=Ews', 'Cookie: Email=user%40example.com\r\n'))).toEqual(new Set())
    expect(fired(get('/autodiscover/autodiscover.json/v1.0/user@example.com?Protocol=Ews'))).toEqual(new Set())
  })
})

describe('smuggling and anomaly rules: extra variants', () => {
  it('PP-HTTP-SMUGGLING-CL-TE: only SP/HT are whitespace around chunked; a parameter makes it another coding', () => {
    const te = (v: string) => `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ${v}\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n`
    for (const v of ['\x0bchunked', 'chunked\x0c', 'chunked\xa0', 'chunked;x=1']) expect(fired(te(v)), JSON.stringify(v)).toContain('PP-HTTP-SMUGGLING-CL-TE')
    expect(fired(te('\t chunked \t'))).not.toContain('PP-HTTP-SMUGGLING-CL-TE')
    expect(fired(te('gzip;q=1, chunked'))).not.toContain('PP-HTTP-SMUGGLING-CL-TE')
  })

  it('CL.TE / TE.CL framing variants', () => {
    expect(fired('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n')).toContain('PP-HTTP-SMUGGLING-CL-TE')
    expect(fired('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n')).toContain('PP-HTTP-SMUGGLING-CL-TE')
    expect(fired('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, CHUNKED\r\n\r\n0\r\n\r\n')).toContain('PP-HTTP-SMUGGLING-CL-TE')
    expect(fired('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n')).not.toContain('PP-HTTP-SMUGGLING-CL-TE')
    expect(fired('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!')).toContain('PP-HTTP-SMUGGLING-DUPLICATE-CL')
    expect(fired('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n')).toContain('PP-HTTP-SMUGGLING-CHUNK-SIZE')
    expect(fired('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n')).toContain('PP-HTTP-CL-OVERFLOW')
    expect(fired('GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n')).toContain('PP-HTTP-TRAVERSAL-ABOVE-ROOT')
  })

  it('PP-HTTP-SMUGGLING-CHUNK-SIZE: a bare LF anywhere in a request\'s chunked framing, not in a response', () => {
    const body = (b: string) => `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${b}`
    for (const b of ['3;x\nabc\r\n0\r\n\r\n', '3\nabc\n0\n\n', '3\r\nabc\n0\r\n\r\n', '3\r\nabc\r\n0\r\nX: 1\n\r\n', '3\r\nabc\r\n0\r\n\n']) {
      expect(fired(body(b)), JSON.stringify(b)).toContain('PP-HTTP-SMUGGLING-CHUNK-SIZE')
      expect(fired(body(b), 1), JSON.stringify(b)).toContain('PP-HTTP-SMUGGLING-CHUNK-SIZE')
    }
    expect(fired(body('3;x=1\r\nabc\r\n0\r\nX: 1\r\n\r\n'))).toEqual(new Set())
    // a bare LF in a head is not chunked framing
    expect(fired('GET / HTTP/1.1\nHost: x\n\n')).toEqual(new Set())
    const res = runAnalyzer(httpAnalyzer, [
      {dir: 'toserver', data: latin1(get('/'))},
      {dir: 'toclient', data: latin1('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\n0\n\n')},
    ])
    expect(res.anomalies.map((a) => a.event)).toContain('http.chunk_bare_lf')
    expect(res.anomalies.flatMap((a) => anomalySet.evaluate(anomalyPdu(a)).map((m) => m.rule.id))).toEqual([])
  })

  it('PP-HTTP-SMUGGLING-CL-TE: framing fields hidden in obs-fold continuations or spelled with an underscore', () => {
    const tail = 'Content-Length: 5\r\n\r\n0\r\n\r\n'
    for (const h of ['X: y\r\n Transfer-Encoding: chunked\r\n', 'X: y\r\n\t\ttransfer-encoding\t:chunked\r\n', 'X: y\r\n Content-Length: 0\r\n', 'Transfer_Encoding: chunked\r\n', 'TRANSFER_ENCODING: chunked\r\n', 'Content_Length: 0\r\n']) {
      expect(fired(`POST / HTTP/1.1\r\nHost: x\r\n${h}${tail}`), JSON.stringify(h)).toContain('PP-HTTP-SMUGGLING-CL-TE')
    }
    for (const h of ['X: y\r\n content: 1\r\n', 'X: a,\r\n b\r\n', 'X_Forwarded_For: 1\r\n', 'X-Transfer-Encoding: chunked\r\n']) {
      expect(fired(`POST / HTTP/1.1\r\nHost: x\r\n${h}${tail}`), JSON.stringify(h)).not.toContain('PP-HTTP-SMUGGLING-CL-TE')
    }
  })

  it('PP-HTTP-SMUGGLING-INVALID-CL: lengths lenient parsers read differently, from the client only', () => {
    for (const v of ['+4', '-4', '4.0', '0x4', '4 4', '4abc']) {
      expect(fired(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${v}\r\n\r\nabcd`), v).toContain('PP-HTTP-SMUGGLING-INVALID-CL')
    }
    expect(fired('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0004\r\n\r\nabcd')).not.toContain('PP-HTTP-SMUGGLING-INVALID-CL')
    // a server's invalid response length is the client's problem, not the protected server's
    const res = runAnalyzer(httpAnalyzer, [
      {dir: 'toserver', data: latin1(get('/'))},
      {dir: 'toclient', data: latin1('HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok')},
    ])
    const events = res.anomalies.map((a) => a.event)
    expect(events).toContain('http.content_length_invalid')
    expect(res.anomalies.flatMap((a) => anomalySet.evaluate(anomalyPdu(a)).map((m) => m.rule.id))).not.toContain('PP-HTTP-SMUGGLING-INVALID-CL')
  })

  it('ordinary pipelined traffic fires nothing', () => {
    const reqs = [
      get('/index.html', 'Accept: text/html\r\nCookie: a=1; b=2\r\n'),
      'POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\n\r\nname=a-b&c=',
      'PUT /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
      get('/video.mp4', 'Range: bytes=0-1023\r\n'),
      get('/search?q=%2E%2E%2Fetc&lang=en-US'),
      'PROPFIND /dav/ HTTP/1.1\r\nHost: x\r\nDepth: 1\r\nIf: (<opaquelocktoken:abc>)\r\nContent-Length: 0\r\n\r\n',
    ].join('')
    expect(fired(reqs)).toEqual(new Set())
    expect(fired(reqs, 3)).toEqual(new Set())
  })

  it('fuzz: random request targets never make the pack throw, and benign-alphabet targets fire nothing', () => {
    const safe = fc.stringMatching(/^[a-zA-Z0-9_/-]{0,60}$/)
    fc.assert(
      fc.property(safe, fc.string({maxLength: 80}), (benign, any) => {
        expect(fired(get('/' + benign))).toEqual(new Set())
        const ids = fired(get('/' + encodeURI(any)))
        expect(ids.size).toBeLessThanOrEqual(all.rules.length)
      }),
      {numRuns: FUZZ_RUNS},
    )
  })
})

describe('PP-SQLI: JSON body values and double-encoded parameters', () => {
  const json = (b: string, ct = 'application/json') => `POST /api HTTP/1.1\r\nHost: x\r\nContent-Type: ${ct}\r\nContent-Length: ${b.length}\r\n\r\n${b}`
  it('an injection in a JSON string value (nested, escaped, +json) fires; member names and prose do not', () => {
    for (const b of ['{"id":"1 OR 1=1"}', '{"a":{"b":["x","1\' OR \'1\'=\'1"]}}', '{"q":"admin\\u0027--"}']) {
      expect(fired(json(b)), b).toContain('PP-SQLI')
      expect(fired(json(b), 3), b).toContain('PP-SQLI')
    }
    expect(fired(json('{"q":"1 UNION SELECT password FROM users"}', 'application/vnd.x+json'))).toContain('PP-SQLI')
    for (const b of ['{"name":"O\'Brien","q":"a sentence that mentions union select"}', '{"1 OR 1=1":"x"}', '{"comment":"it\'s fine","stars":5}']) expect(fired(json(b)), b).not.toContain('PP-SQLI')
  })
  it('a parameter that becomes SQL after one more percent-decoding fires; double-encoded prose does not', () => {
    for (const q of ['id=%2527%2520OR%25201%253D1--', 'id=1%2520OR%25201%253D1', 'id=1%252527%252520or%252520%2525271%252527%25253D%2525271']) expect(fired(get('/i?' + q)), q).toContain('PP-SQLI')
    for (const q of ['n=O%2527Brien', 'd=50%2525+off', 'q=union%2520select%2520of%2520the%2520library']) expect(fired(get('/i?' + q)), q).not.toContain('PP-SQLI')
  })
})

describe('PP-XSS and PP-HTTP-SMUGGLING-NESTED-MESSAGE: variants beyond the samples', () => {
  const get = (q: string) => `GET /p?${q} HTTP/1.1\r\nHost: x\r\n\r\n`
  it('script markup in any encoding fires PP-XSS; ordinary angle brackets do not', () => {
    for (const q of [
      'x=%3CScRiPt%20src=//e.example/a.js%3E%3C/script%3E',
      'x=%26lt;img%20src=x%20onerror=alert(1)%26gt;', // entity-encoded after percent-decoding
      'x=%3Ciframe%2Fsrc%3Ddata:text/html,x%3E',
      'x=%3Cdiv%09onmouseover%0A=%22x()%22%3E',
    ]) expect(fired(get(q)), q).toContain('PP-XSS')
    for (const q of ['x=1%3C2', 'x=%3Cp%3Ehello%3C%2Fp%3E', 'x=onload%3D1', 'x=%3Cscripture%3E']) expect(fired(get(q)), q).not.toContain('PP-XSS')
  })
  it('PP-XSS: URLs as the WHATWG parser reads them, JSON bodies, the URL path; on + a real event name only', () => {
    for (const q of [
      'x=%3Ca%20href%3Djava%09script:alert(1)%3E', // tab removed by URL parsing
      'x=%3Ca%20href%3D%22jav%26%23x0A;ascript:alert(1)%22%3E', // LF as an entity in the attribute
      'x=%3Ca%20href%3D%22javascript%0D:alert(1)%22%3E',
      'x=%3Ca%20href%3D%22%01javascript:alert(1)%22%3E', // leading C0 control stripped
      'x=%3Ca%20href%3D%22%26%23x20;%26%23x1f;vbscript:x%22%3E',
      'x=%3Cbody%20ononline%3Dalert(1)%3E',
      'x=%3Cp%20onpointerdown%3Dalert(1)%3E',
    ]) expect(fired(get(q)), q).toContain('PP-XSS')
    for (const q of ['x=x%3Cy%20online%3Dtrue', 'x=%3Cb%20onion=1%3E', 'x=%3Ca%20href%3D%22javascript%20:x%22%3E']) expect(fired(get(q)), q).not.toContain('PP-XSS')
    const post = (ct: string, b: string) => `POST /api HTTP/1.1\r\nHost: x\r\nContent-Type: ${ct}\r\nContent-Length: ${b.length}\r\n\r\n${b}`
    expect(fired(post('application/json', '{"c":"<img src=x onerror=alert(1)>"}'))).toContain('PP-XSS')
    expect(fired(post('application/vnd.api+json; charset=utf-8', '{"c":"\\u003csvg/onload=alert(1)\\u003e"}'))).toContain('PP-XSS')
    expect(fired(post('application/json', '{"c":"\\u003csvg/onload=alert(1)\\u003e"}'), 5)).toContain('PP-XSS')
    expect(fired(post('application/json', '{"c":"1 < 2 and online=3, <b>x</b>"}'))).not.toContain('PP-XSS')
    expect(fired(post('text/html', '<html><script>var a = 1</script></html>'))).not.toContain('PP-XSS')
    expect(fired('GET /p/%3Cscript%3Ealert(1)%3C/script%3E HTTP/1.1\r\nHost: x\r\n\r\n')).toContain('PP-XSS')
    expect(fired('GET /p/%253Csvg%2520onload%253Dalert(1)%253E HTTP/1.1\r\nHost: x\r\n\r\n')).toContain('PP-XSS')
    expect(fired('GET /docs/a%3Cb/online=1/index.html HTTP/1.1\r\nHost: x\r\n\r\n')).not.toContain('PP-XSS')
  })

  it('PP-XSS: the fix leaves no markup in a JSON body or a path', () => {
    const set = new RuleSet([rule('PP-XSS')], {actionFor: () => 'fix'})
    for (const req of [
      'POST /api HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 41\r\n\r\n{"c":"\\u003cscript\\u003ex\\u003c/script>"}',
      'GET /p/%3Cscript%3Ealert(1)%3C/script%3E HTTP/1.1\r\nHost: x\r\n\r\n',
    ]) {
      const data = latin1(req)
      const res = runAnalyzer(httpAnalyzer, [{dir: 'toserver', data}])
      const edits = res.pdus.flatMap((p) => set.evaluate(p).flatMap((m) => m.edits))
      expect(edits.length, req).toBeGreaterThan(0)
      const fixed = applyEdits(data, 0, edits)
      expect(fired(fixed), req).not.toContain('PP-XSS')
    }
  })

  it('framing headers nested in a message/* body fire, split in 3-byte chunks too', () => {
    const body = 'Received: by mx\r\n transfer-encoding :  chunked\r\n\r\n'
    const req = `POST / HTTP/1.1\r\nHost: x\r\nContent-Type: message/rfc822; charset=us-ascii\r\nContent-Length: ${body.length}\r\n\r\n${body}`
    expect(fired(req)).toContain('PP-HTTP-SMUGGLING-NESTED-MESSAGE')
    expect(fired(req, 3)).toContain('PP-HTTP-SMUGGLING-NESTED-MESSAGE')
    const plain = req.replace('message/rfc822', 'text/plain')
    expect(fired(plain)).not.toContain('PP-HTTP-SMUGGLING-NESTED-MESSAGE')
  })
})

describe('PP-EVASION-HTTP-UNINSPECTABLE: a head padded past the inspection caps', () => {
  const shellshock = 'User-Agent: () { :; }; /bin/id\r\n'
  it('fires on each cap (request line, head bytes, field count), whole or in 7-byte segments', () => {
    const longLine = `GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`
    // what Apache httpd accepts (100 fields of under 8190 bytes) but is over 64 KB
    const bigHead = `GET /cgi-bin/x HTTP/1.1\r\nHost: x\r\n${`X-Pad: ${'p'.repeat(700)}\r\n`.repeat(99)}${shellshock}\r\n`
    const manyFields = `GET /cgi-bin/x HTTP/1.1\r\nHost: x\r\n${'A: 1\r\n'.repeat(140)}${shellshock}\r\n`
    for (const req of [longLine, bigHead, manyFields]) {
      expect(fired(req)).toContain('PP-EVASION-HTTP-UNINSPECTABLE')
      expect(fired(req, 7)).toContain('PP-EVASION-HTTP-UNINSPECTABLE')
    }
    // past the field cap the exploit header itself is not judged: this rule is what stops it
    expect(fired(manyFields)).not.toContain('PP-SHELLSHOCK')
  })

  it('ordinary large heads stay quiet: an 8 KB cookie, 100 fields, a long query string', () => {
    const cookie = `GET / HTTP/1.1\r\nHost: x\r\nCookie: s=${'c'.repeat(8000)}\r\n\r\n`
    const hundred = `GET / HTTP/1.1\r\nHost: x\r\n${'X-Trace: 1\r\n'.repeat(100)}\r\n`
    const query = `GET /search?q=${'w'.repeat(8000)} HTTP/1.1\r\nHost: x\r\n\r\n`
    for (const req of [cookie, hundred, query]) expect(fired(req)).not.toContain('PP-EVASION-HTTP-UNINSPECTABLE')
  })

  it("a server's response head over the caps is not the client's evasion", () => {
    const res = runAnalyzer(httpAnalyzer, [
      {dir: 'toserver', data: latin1('GET / HTTP/1.1\r\nHost: x\r\n\r\n')},
      {dir: 'toclient', data: latin1(`HTTP/1.1 200 OK\r\n${'Set-Cookie: a=1\r\n'.repeat(140)}Content-Length: 0\r\n\r\n`)},
    ])
    expect(res.anomalies.map((a) => a.event)).toEqual(['http.too_many_headers'])
    const ids = res.anomalies.flatMap((a) => anomalySet.evaluate(anomalyPdu(a)).map((m) => m.rule.id))
    expect(ids).not.toContain('PP-EVASION-HTTP-UNINSPECTABLE')
  })
})

describe("framing anomalies in a server's response are not the client's smuggling", () => {
  const framingRules = ['PP-HTTP-CL-OVERFLOW', 'PP-HTTP-SMUGGLING-CL-TE', 'PP-HTTP-SMUGGLING-DUPLICATE-CL', 'PP-HTTP-SMUGGLING-CHUNK-SIZE', 'PP-HTTP-SMUGGLING-INVALID-CL']
  const responses = [
    'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
    'HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nabc',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n',
  ]
  it.each(responses.map((r, i) => [i, r]))('response %i: the anomaly is reported, no framing rule fires', (_i, response) => {
    const res = runAnalyzer(httpAnalyzer, [
      {dir: 'toserver', data: latin1('GET / HTTP/1.1\r\nHost: x\r\n\r\n')},
      {dir: 'toclient', data: latin1(response as string)},
    ])
    expect(res.anomalies.length).toBeGreaterThan(0)
    expect(res.anomalies.every((a) => a.detail?.dir === 'toclient')).toBe(true)
    const ids = res.anomalies.flatMap((a) => anomalySet.evaluate(anomalyPdu(a)).map((m) => m.rule.id))
    expect(ids.filter((id) => framingRules.includes(id))).toEqual([])
  })

  it('a bare CR inside a chunk extension is a malformed chunk line (PP-HTTP-SMUGGLING-CHUNK-SIZE)', () => {
    expect(fired('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;x\rGET /admin HTTP/1.1\r\nabc\r\n0\r\n\r\n')).toContain('PP-HTTP-SMUGGLING-CHUNK-SIZE')
    expect(fired('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;name="v"\r\nabc\r\n0\r\n\r\n')).not.toContain('PP-HTTP-SMUGGLING-CHUNK-SIZE')
  })

  it('the same framing from the client still fires', () => {
    expect(fired('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd')).toContain('PP-HTTP-SMUGGLING-DUPLICATE-CL')
    expect(fired('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')).toContain('PP-HTTP-SMUGGLING-CL-TE')
  })
})
