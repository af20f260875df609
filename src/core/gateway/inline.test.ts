import {describe, it, expect} from 'vitest'
import {canonicalPolicy} from './inline.js'
import type {Policy} from './policy.js'

describe('canonicalPolicy', () => {
  it('writes every address as the engine prints it, leaves the rest of the policy alone', () => {
    const p: Policy = {
      services: [
        {ip: 'FD00:0006:0:0::0003', port: 80, proto: 'tcp', action: 'drop', rules: ['PP-SHELLSHOCK']},
        {ip: '10.66.0.3', port: 81, proto: 'tcp'},
      ],
      default_action: 'log',
      hosts: [{ip: 'fd00:6:0:0:0:0:0:3', defrag: 'linux', tcp: 'linux'}],
    }
    const c = canonicalPolicy(p)
    expect(c.services.map((s) => s.ip)).toEqual(['fd00:6::3', '10.66.0.3'])
    expect(c.services[0]).toEqual({ip: 'fd00:6::3', port: 80, proto: 'tcp', action: 'drop', rules: ['PP-SHELLSHOCK']})
    expect(c.hosts?.[0].ip).toBe('fd00:6::3')
    expect(c.default_action).toBe('log')
    // the input is not modified; an already canonical policy is returned as it is
    expect(p.services[0].ip).toBe('FD00:0006:0:0::0003')
    const same: Policy = {services: [{ip: 'fd00:6::3', port: 80, proto: 'tcp'}]}
    expect(canonicalPolicy(same)).toBe(same)
  })
})
