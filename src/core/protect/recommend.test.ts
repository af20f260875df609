import {describe, expect, it} from 'vitest'
import {loadRules} from '../rules/engine.js'
import {packageRulesDir} from '../rules/rule-schema.js'
import type {InventoryService} from '../inventory/inventory.js'
import {encryptedRules, recommend, ruleVerdict, serviceIdentities, tlsLibraryIds} from './recommend.js'

const {rules, errors} = loadRules(packageRulesDir)
const byId = new Map(rules.map((r) => [r.id, r]))
const rule = (id: string) => {
  const r = byId.get(id)
  if (!r) throw new Error(`rule ${id} not shipped`)
  return r
}

function svc(fields: Partial<InventoryService>): InventoryService {
  return {port: 80, proto: 'tcp', state: 'open', source: 'active', first_seen: 't', last_seen: 't', ...fields}
}
const recIds = (s: InventoryService) => recommend(s, rules).map((r) => r.rule_id)
const basisOf = (s: InventoryService, id: string) => recommend(s, rules).find((r) => r.rule_id === id)?.basis

describe('ruleVerdict near the boundaries of the shipped ranges', () => {
  it('loads the rule pack', () => expect(errors).toEqual([]))
  const cases: [string, string, string, string][] = [
    ['PP-2021-41773', 'apache/http_server', '2.4.48', 'out'],
    ['PP-2021-41773', 'apache/http_server', '2.4.49', 'in'],
    ['PP-2021-41773', 'apache/http_server', '2.4.50', 'in'],
    ['PP-2021-41773', 'apache/http_server', '2.4.51', 'out'],
    ['PP-2021-41773', 'Apache/HTTP_Server', '2.4.49', 'in'],
    ['PP-2011-2523', 'vsftpd/vsftpd', '2.3.4', 'in'],
    ['PP-2011-2523', 'vsftpd/vsftpd', '2.3.5', 'out'],
    ['PP-2011-2523', 'vsftpd/vsftpd', '3.0.3', 'out'],
    ['PP-2019-10149', 'exim/exim', '4.86', 'out'],
    ['PP-2019-10149', 'exim/exim', '4.87', 'in'],
    ['PP-2019-10149', 'exim/exim', '4.91', 'in'],
    ['PP-2019-10149', 'exim/exim', '4.92', 'out'],
    ['PP-2019-10149', 'exim/exim', '4.92.1', 'out'],
    ['PP-2018-6789', 'exim/exim', '4.90', 'in'],
    ['PP-2018-6789', 'exim/exim', '4.90.1', 'out'],
    ['PP-2010-4221', 'proftpd/proftpd', '1.3.2rc2', 'out'],
    ['PP-2010-4221', 'proftpd/proftpd', '1.3.2rc3', 'in'],
    ['PP-2010-4221', 'proftpd/proftpd', '1.3.3b', 'in'],
    ['PP-2010-4221', 'proftpd/proftpd', '1.3.3c', 'out'],
    ['PP-2015-3306', 'proftpd/proftpd', '1.3.5rc3', 'out'],
    ['PP-2015-3306', 'proftpd/proftpd', '1.3.5a', 'out'],
    ['PP-2021-26855', 'microsoft/exchange_server', '15.1.2176.8', 'in'],
    ['PP-2021-26855', 'microsoft/exchange_server', '15.1.2176.9', 'out'],
    ['PP-2021-41773', 'apache/http_server', 'unknown-build', 'unknown'],
    ['PP-2021-41773', 'nginx/nginx', '1.22.1', 'other'],
    ['PP-FTP-BOUNCE', 'vsftpd/vsftpd', '3.0.3', 'generic'],
  ]
  for (const [id, product, version, want] of cases) {
    it(`${id} on ${product} ${version}: ${want}`, () => expect(ruleVerdict(rule(id), product, version)).toBe(want))
  }
  it('PP-2015-3306 on proftpd/proftpd 1.3.5: in (1.3.5a is the fix, a post-release letter)', () => {
    expect(ruleVerdict(rule('PP-2015-3306'), 'proftpd/proftpd', '1.3.5')).toBe('in')
  })
  it('a rule for every product that also names one stays generic when that product is patched', () => {
    expect(ruleVerdict(rule('PP-IMAP-LONG-FETCH'), 'mailenable/mailenable', '3.13')).toBe('in')
    expect(ruleVerdict(rule('PP-IMAP-LONG-FETCH'), 'mailenable/mailenable', '3.14')).toBe('generic')
  })
})

const TLS_RULES = ['PP-2014-0160', 'PP-HEARTBLEED-CLIENT', 'PP-HEARTBLEED-LEAK']
const TLS_BY_PROTOCOL = TLS_RULES.map((id) => [id, 'by protocol'])

describe('recommend', () => {
  it('Apache 2.4.49 gets the path traversal rule by version, 2.4.51 does not', () => {
    expect(basisOf(svc({service: 'http', product: 'apache/http_server', version: '2.4.49'}), 'PP-2021-41773')).toBe('version')
    expect(recIds(svc({service: 'http', product: 'apache/http_server', version: '2.4.51'}))).not.toContain('PP-2021-41773')
  })
  it('vsftpd 2.3.4 gets the backdoor rule; 3.0.3 only the generic FTP rules (and the TLS ones: AUTH TLS)', () => {
    const old = recommend(svc({port: 21, service: 'ftp', product: 'vsftpd/vsftpd', version: '2.3.4'}), rules)
    expect(old.find((r) => r.rule_id === 'PP-2011-2523')).toMatchObject({basis: 'version', cves: ['CVE-2011-2523']})
    const fixed = recommend(svc({port: 21, service: 'ftp', product: 'vsftpd/vsftpd', version: '3.0.3'}), rules)
    expect(fixed.map((r) => r.rule_id)).not.toContain('PP-2011-2523')
    expect(fixed.length).toBeGreaterThan(0)
    expect(fixed.filter((r) => rule(r.rule_id).protocol === 'ftp').every((r) => r.basis === 'generic')).toBe(true)
    expect(fixed.filter((r) => rule(r.rule_id).protocol !== 'ftp').map((r) => [r.rule_id, r.basis])).toEqual(TLS_BY_PROTOCOL)
  })
  it('Exim 4.91 gets CVE-2019-10149, 4.92.1 does not', () => {
    expect(recIds(svc({port: 25, service: 'smtp', product: 'exim/exim', version: '4.91'}))).toContain('PP-2019-10149')
    expect(recIds(svc({port: 25, service: 'smtp', product: 'exim/exim', version: '4.92.1'}))).not.toContain('PP-2019-10149')
  })
  it('nginx 1.22.1 and MariaDB 10.11.6 get no product rule', () => {
    const ng = recommend(svc({service: 'http', product: 'nginx/nginx', version: '1.22.1'}), rules)
    expect(ng.every((r) => r.basis === 'generic')).toBe(true)
    expect(recommend(svc({port: 3306, service: 'mysql', product: 'mariadb/mariadb', version: '10.11.6-MariaDB-0+deb12u1'}), rules)
      .filter((r) => r.basis !== 'generic')).toEqual([])
  })
  it('an unknown version gets the product rules marked "version unknown"', () => {
    const s = svc({service: 'http', product: 'apache/http_server'})
    expect(basisOf(s, 'PP-2021-41773')).toBe('version unknown')
    expect(basisOf(s, 'PP-2011-3192')).toBe('version unknown')
  })
  it('candidates: the union, marked', () => {
    const s = svc({service: 'http', candidates: [{product: 'apache/http_server', version: '2.4.51', confidence: 0.5}, {product: 'apache/http_server', version: '2.2.19', confidence: 0.5}]})
    expect(serviceIdentities(s)).toMatchObject({fromCandidates: true, definite: false})
    expect(basisOf(s, 'PP-2011-3192')).toBe('candidates') // only 2.2.19 is affected
    expect(basisOf(s, 'PP-2021-41773')).toBeUndefined()
  })
  it('a manual value wins over the detection', () => {
    const s = svc({service: 'http', product: 'apache/http_server', version: '2.4.49', manual: {version: '2.4.51', set_at: 't'}})
    expect(recIds(s)).not.toContain('PP-2021-41773')
    expect(serviceIdentities(s)).toMatchObject({definite: true, ids: [{product: 'apache/http_server', version: '2.4.51'}]})
  })
  it('no product: every rule of the protocol, by protocol', () => {
    const recs = recommend(svc({service: 'http'}), rules)
    expect(recs.find((r) => r.rule_id === 'PP-2021-41773')?.basis).toBe('by protocol')
    expect(recs.every((r) => r.basis === 'by protocol' && rule(r.rule_id).protocol === 'http')).toBe(true)
    expect(recommend(svc({service: 'unknown-thing'}), rules)).toEqual([])
  })
})

describe('recommend: TLS', () => {
  it('a service that speaks TLS first gets the TLS rules only: what it carries is out of sight', () => {
    const https = svc({port: 443, service: 'http', tunnel: 'ssl', product: 'apache/http_server', version: '2.4.49'})
    expect(recommend(https, rules).map((r) => [r.rule_id, r.basis])).toEqual(TLS_BY_PROTOCOL)
    // by its name alone (passive learning, a hand-added service)
    expect(recIds(svc({port: 993, service: 'imaps'}))).toEqual(TLS_RULES)
    // passive learning names a port answering a ClientHello `ssl`; a DTLS service is added by hand
    expect(recIds(svc({port: 4443, service: 'ssl'}))).toEqual(TLS_RULES)
    expect(recIds(svc({port: 4433, proto: 'udp', service: 'dtls'}))).toEqual(TLS_RULES)
    // and the product's own rules are listed as what no gateway can enforce
    expect(encryptedRules(https, rules)).toContain('PP-2021-41773')
    expect(encryptedRules(svc({service: 'http', product: 'apache/http_server', version: '2.4.49'}), rules)).toEqual([])
  })
  it('the TLS library named in the banner decides: OpenSSL 1.0.1f gets Heartbleed by version, 1.0.1g does not', () => {
    const at = (extra: string) => recommend(svc({port: 443, service: 'http', tunnel: 'ssl', product: 'apache/http_server', version: '2.4.7', extra}), rules)
    expect(at('(Ubuntu) OpenSSL/1.0.1f').map((r) => [r.rule_id, r.basis])).toEqual(TLS_RULES.map((id) => [id, 'version']))
    expect(at('(Ubuntu) OpenSSL/1.0.1g')).toEqual([])
    expect(at('(Debian) OpenSSL/1.0.2-beta1').map((r) => r.basis)).toEqual(['version', 'version', 'version'])
    expect(tlsLibraryIds({cpe: ['cpe:/a:openssl:openssl:1.0.1e']})).toEqual([{product: 'openssl/openssl', version: '1.0.1e'}])
  })
  it('mail and FTP servers (STARTTLS, AUTH TLS) get the TLS rules beside their own', () => {
    const exim = recommend(svc({port: 25, service: 'smtp', product: 'exim/exim', version: '4.91'}), rules)
    expect(exim.find((r) => r.rule_id === 'PP-2019-10149')?.basis).toBe('version')
    expect(exim.filter((r) => rule(r.rule_id).protocol === 'tls').map((r) => [r.rule_id, r.basis])).toEqual(TLS_BY_PROTOCOL)
    // no product, but the library named: the SMTP rules by protocol, Heartbleed by version
    const anon = recommend(svc({port: 25, service: 'smtp', extra: 'OpenSSL/1.0.1f'}), rules)
    expect(anon.find((r) => r.rule_id === 'PP-2019-10149')?.basis).toBe('by protocol')
    expect(anon.find((r) => r.rule_id === 'PP-2014-0160')?.basis).toBe('version')
    // HTTP, MySQL...: no STARTTLS the analyzers follow, no TLS rules
    expect(recIds(svc({service: 'http', product: 'nginx/nginx', version: '1.22.1'})).filter((id) => TLS_RULES.includes(id))).toEqual([])
  })
})
