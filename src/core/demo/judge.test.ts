import {describe, it, expect} from 'vitest'
import type {ClientResult} from './client.js'
import {countAlerts, judgeExploits, parseEvents} from './judge.js'
import {compactSections} from './demo.js'
import {loadExploitSamples, toServerChunks} from './samples.js'
import {fileURLToPath} from 'node:url'

const sent = (local_port: number, rule = 'PP-SQLI'): ClientResult => ({rule, name: 'n', ip: '198.51.100.10', port: 80, local_port, connected: true, sent: 10, reset: true, closed: true, answer: ''})
const alert = (src_port: number, rule_id: string, action: string, shadow?: boolean) =>
  JSON.stringify({event_type: 'alert', src_port, dest_ip: '198.51.100.10', dest_port: 80, patchpoint: {rule_id, action, shadow}})

describe('demo verdicts', () => {
  it('a sample is stopped only by an enforcing, non-shadow alert on its own connection', () => {
    const events = parseEvents([alert(1000, 'PP-SQLI', 'drop'), alert(1001, 'PP-SQLI', 'log'), alert(1002, 'PP-SQLI', 'fix', true),
      alert(1003, 'PP-OTHER', 'fix'), '{torn', ''].join('\n'))
    expect(events).toHaveLength(4)
    const v = judgeExploits([sent(1000), sent(1001), sent(1002), sent(1003), sent(1004), sent(0)], events)
    expect(v.map((x) => x.stopped)).toEqual([true, false, false, true, false, false])
    expect(v[0].action).toBe('drop')
    expect(v[1].action).toBe('log')
    expect(v[3].rules_fired).toEqual(['PP-OTHER'])
  })

  it('counts alerts per action like report does (shadow apart)', () => {
    const c = countAlerts(parseEvents([alert(1, 'A', 'fix'), alert(2, 'A', 'drop'), alert(3, 'A', 'fix', true), alert(4, 'A', 'log'), '{"event_type":"anomaly"}'].join('\n')))
    expect(c).toEqual({alerts: 4, fix: 1, drop: 1, log: 1, shadow: 1})
  })

  it('parseEvents is bounded', () => {
    expect(parseEvents(Array.from({length: 50}, (_, i) => alert(i, 'A', 'fix')).join('\n'), 10)).toHaveLength(10)
  })

  it('compactSections shortens long tables and keeps short ones', () => {
    const long = ['Per day', 'start n', ...Array.from({length: 40}, (_, i) => `row${i}`)].join('\n')
    const out = compactSections(`${long}\n\nAlerts by action\naction n\nfix 1`, 12)
    expect(out).toContain('row39')
    expect(out).not.toContain('row20')
    expect(out).toContain('30 rows not shown')
    expect(out).toContain('Alerts by action\naction n\nfix 1')
  })
})

describe('exploit samples from the rule pack', () => {
  const rules = fileURLToPath(new URL('../../../rules/', import.meta.url))

  it('loads the client half of the malicious samples of the assigned rules only', () => {
    const {samples, problems} = loadExploitSamples(rules, [
      // PP-HEARTBLEED-CLIENT judges the server's bytes: the demo client cannot play it
      // PP-2014-0160's samples speak TLS from the first byte: not to an FTP server (AUTH TLS first)
      {ip: '198.51.100.10', port: 21, proto: 'tcp', protocol: 'ftp', rules: ['PP-FTP-BOUNCE', 'PP-NO-SUCH-RULE', 'PP-HEARTBLEED-CLIENT', 'PP-2014-0160']},
      {ip: '198.51.100.10', port: 80, proto: 'tcp', rules: ['PP-SHELLSHOCK'], shadow: true},
    ])
    expect(problems).toEqual([expect.stringContaining('PP-NO-SUCH-RULE')])
    expect(samples.map((s) => s.rule)).toEqual(['PP-FTP-BOUNCE', 'PP-FTP-BOUNCE', 'PP-FTP-BOUNCE'])
    // steps: only toserver chunks, in order
    expect(samples[0].chunks.map((c) => Buffer.from(c, 'base64').toString())).toEqual(['USER ftp\r\n', 'PASS x@\r\n', 'PORT 198,51,100,7,0,80\r\n'])
    expect(samples[0].protocol).toBe('ftp')
  })

  it('limits: sample count and bytes per sample', () => {
    const r = loadExploitSamples(rules, [{ip: '192.0.2.1', port: 80, proto: 'tcp', rules: ['PP-SQLI']}], {
      maxSamples: 2, maxSampleBytes: 65536, maxRuleFileBytes: 1 << 20, maxRuleFiles: 4096, maxDepth: 4,
    })
    expect(r.samples).toHaveLength(2)
    expect(r.problems.join()).toMatch(/more than 2/)
    expect(toServerChunks({name: 'x', toserver: 'A'.repeat(100)}, 10)).toBeUndefined()
    expect(toServerChunks({name: 'x', toclient: '220 hi'}, 10)).toEqual([])
  })
})
