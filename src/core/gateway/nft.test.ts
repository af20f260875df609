import {describe, it, expect} from 'vitest'
import {ALIVE_TIMEOUT_MS, ENGINE_STALL_MS, NFT_TABLE, REFRESH_MS, divertSets, refreshLine, rulesetScript} from './nft.js'

describe('nftables divert script', () => {
  const sets = divertSets([
    {ip: '10.0.0.3', port: 80, proto: 'tcp'},
    {ip: '10.0.0.3', port: 80, proto: 'tcp'},
    {ip: '10.0.0.4', port: 53, proto: 'udp'},
    {ip: 'fd00::3', port: 80, proto: 'tcp'},
  ])

  it('sets: one element per service, hosts for fragments, IPv6 left out', () => {
    expect(sets.tcp4).toEqual(['10.0.0.3 . 80'])
    expect(sets.udp4).toEqual(['10.0.0.4 . 53'])
    expect(sets.hosts4.sort()).toEqual(['10.0.0.3', '10.0.0.4'])
  })

  it('diverts every IPv4 fragment to or from a protected host, matched by address only', () => {
    const s = rulesetScript(sets, {ports: ['ga', 'gb']})
    // non-first fragments carry no ports: a rule on tcp dport would miss them
    expect(s).toMatch(/ip frag-off & 0x3fff != 0 ip daddr @hosts4 drop/)
    expect(s).toMatch(/ip frag-off & 0x3fff != 0 ip saddr @hosts4 drop/)
    expect(s).toContain('iifname { "ga", "gb" } ether type @alive ip daddr . tcp dport @tcp4 drop')
    expect(s).toContain(`delete table bridge ${NFT_TABLE}`)
  })

  it('fail-open: the alive element expires unless refreshed; fail-closed: it does not', () => {
    expect(rulesetScript(sets)).toContain(`elements = { ip timeout ${ALIVE_TIMEOUT_MS}ms }`)
    expect(rulesetScript(sets, {failClosed: true})).toContain('elements = { ip }')
    expect(refreshLine()).toContain(`add element bridge ${NFT_TABLE} alive { ip timeout ${ALIVE_TIMEOUT_MS}ms }`)
    // at least two refreshes per lifetime, and the "within one second"
    expect(REFRESH_MS * 2).toBeLessThan(ALIVE_TIMEOUT_MS)
    expect(ALIVE_TIMEOUT_MS).toBeLessThanOrEqual(1000)
    expect(ENGINE_STALL_MS).toBeGreaterThan(ALIVE_TIMEOUT_MS)
  })
})
