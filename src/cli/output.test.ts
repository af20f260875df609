import {describe, expect, it} from 'vitest'
import {isInteractive, renderTable} from './output.js'

describe('output', () => {
  it('isInteractive needs a TTY and no CI', () => {
    expect(isInteractive({isTTY: true}, {})).toBe(true)
    expect(isInteractive({isTTY: true}, {CI: 'true'})).toBe(false)
    expect(isInteractive({isTTY: false}, {})).toBe(false)
    expect(isInteractive({}, {})).toBe(false)
  })

  it('plain tables: aligned columns, no borders, no colour codes', () => {
    const t = renderTable(['rule', 'hits'], [['smb-ghost', 3], ['log4shell', null]], {interactive: false})
    const lines = t.split('\n')
    expect(lines).toHaveLength(3)
    expect(lines[0]).toMatch(/^rule\s+hits$/)
    expect(lines[1]).toMatch(/^smb-ghost\s+3$/)
    expect(lines[2]).toBe('log4shell')
    expect(lines[1].indexOf('3')).toBe(lines[0].indexOf('hits'))
    expect(t).not.toMatch(/\u001b\[/)
  })

  it('interactive tables are boxed', () => {
    const t = renderTable(['a'], [['x']], {interactive: true})
    expect(t).toContain('┌')
    expect(t).toContain('x')
  })
})
