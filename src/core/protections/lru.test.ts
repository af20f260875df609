import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {TupleLru, TUPLE_TABLE_INITIAL_SLOTS, type TupleEntry} from './lru.js'

interface T extends TupleEntry {
  v: string
}
const keyOf = (a: number, b: number, c: number, text: boolean): string => (text ? `t${a}|${b}|${c}` : `${a}|${b}|${c}`)

describe('TupleLru', () => {
  it('finds, touches and evicts like a Map-backed reference model (integer and text keys, growth, deletion)', () => {
    // small key ranges collide often; negative int32 values stand for addresses at or above 2^31
    const key = fc.tuple(fc.integer({min: -3, max: 3}), fc.constantFrom(0, -1, 0x7fffffff, -0x80000000), fc.nat(40), fc.boolean())
    fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom('get', 'add', 'add', 'evict'), key), {maxLength: 400}), (ops) => {
      const m = new TupleLru<T>()
      const model: string[] = [] // oldest first
      for (const [op, [a, b, c, text]] of ops) {
        const k = keyOf(a, b, c, text)
        if (op === 'get') {
          const e = text ? m.getText(k) : m.get4(a, b, c)
          expect(e?.v).toBe(model.includes(k) ? k : undefined)
          if (e) {
            m.touch(e)
            model.splice(model.indexOf(k), 1)
            model.push(k)
          }
        } else if (op === 'add') {
          if (!model.includes(k)) {
            m.set({k0: a, k1: b, k2: c, text: text ? k : null, lruPrev: null, lruNext: null, v: k})
            model.push(k)
          }
        } else {
          expect(m.evictOldest()?.v).toBe(model.shift())
        }
        expect(m.size).toBe(model.length)
      }
      // every key still present is found, every evicted one is not
      for (const k of model) {
        const [a, b, c] = k.replace(/^t/, '').split('|').map(Number)
        expect((k.startsWith('t') ? m.getText(k) : m.get4(a, b, c))?.v).toBe(k)
      }
    }), {numRuns: 300})
  })

  it('holds more entries than its first table (it grows) and drains to empty', () => {
    const m = new TupleLru<T>()
    const n = TUPLE_TABLE_INITIAL_SLOTS * 8
    for (let i = 0; i < n; i++) m.set({k0: i, k1: -i, k2: i & 7, text: null, lruPrev: null, lruNext: null, v: String(i)})
    expect(m.size).toBe(n)
    for (let i = 0; i < n; i++) expect(m.get4(i, -i, i & 7)?.v).toBe(String(i))
    // evicting the older half leaves holes in probe runs: the younger half must still be found
    for (let i = 0; i < n / 2; i++) expect(m.evictOldest()?.v).toBe(String(i))
    for (let i = 0; i < n; i++) expect(m.get4(i, -i, i & 7)?.v).toBe(i < n / 2 ? undefined : String(i))
    for (let i = n / 2; i < n; i++) expect(m.evictOldest()?.v).toBe(String(i))
    expect(m.evictOldest()).toBeNull()
    expect(m.get4(1, -1, 1)).toBeUndefined()
  })
})
