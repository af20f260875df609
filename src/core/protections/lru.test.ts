import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {LruMap, type LruEntry} from './lru.js'

interface E extends LruEntry<number> {
  v: number
}
const entry = (k: number): E => ({lruKey: k, lruPrev: null, lruNext: null, v: k})

describe('LruMap', () => {
  it('evicts in least-recently-used order, like a reference model', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom('get', 'add', 'evict'), fc.nat(20)), {maxLength: 200}), (ops) => {
      const m = new LruMap<number, E>()
      const model: number[] = [] // oldest first
      for (const [op, k] of ops) {
        if (op === 'get') {
          const e = m.get(k)
          expect(e?.v).toBe(model.includes(k) ? k : undefined)
          if (e) {
            m.touch(e)
            model.splice(model.indexOf(k), 1)
            model.push(k)
          }
        } else if (op === 'add') {
          if (!model.includes(k)) {
            m.set(entry(k))
            model.push(k)
          }
        } else {
          expect(m.evictOldest()?.v).toBe(model.shift())
        }
        expect(m.size).toBe(model.length)
      }
    }), {numRuns: 300})
  })
})
