import {describe, it, expect} from 'vitest'
import {parseCondition, evalCondition, ConditionError} from './condition.js'

const names = ['a', 'b', 'c', 'sel_x', 'sel_y']
const ev = (src: string, truth: Record<string, boolean>) => evalCondition(parseCondition(src, names), (i) => truth[names[i]] ?? false)

describe('condition parser', () => {
  it('not > and > or', () => {
    expect(ev('a or b and c', {a: true})).toBe(true)
    expect(ev('a or b and c', {b: true})).toBe(false)
    expect(ev('(a or b) and c', {a: true})).toBe(false)
    expect(ev('not a and b', {b: true})).toBe(true)
    expect(ev('not (a and b)', {a: true, b: true})).toBe(false)
    expect(ev('not not a', {a: true})).toBe(true)
  })
  it('1 of / all of patterns and them', () => {
    expect(ev('1 of sel_*', {sel_y: true})).toBe(true)
    expect(ev('all of sel_*', {sel_y: true})).toBe(false)
    expect(ev('all of sel_*', {sel_x: true, sel_y: true})).toBe(true)
    expect(ev('all of them', {a: true, b: true, c: true, sel_x: true, sel_y: true})).toBe(true)
    expect(ev('1 of them and not c', {a: true})).toBe(true)
  })
  it('errors: unknown names, bad syntax, patterns matching nothing', () => {
    const bad = ['d', 'a and', 'a b', '(a', 'a)', '1 of zz*', 'sel_*', 'and a', '', 'a & b']
    for (const src of bad) expect(() => parseCondition(src, names), src).toThrow(ConditionError)
    expect(() => parseCondition('a or nope', names)).toThrow(/unknown selection 'nope'/)
  })
  it('bounded nesting', () => {
    expect(() => parseCondition('('.repeat(200) + 'a' + ')'.repeat(200), names)).toThrow(/deeply/)
  })
})
