import {describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {FlowTable, flowKey, type FlowBase} from './table.js'

interface F extends FlowBase {
  name: string
}

function flow(table: FlowTable<F>, a: number, ap: number, b: number, bp: number, proto = 6): F {
  const f: F = {
    name: `${a}:${ap}-${b}:${bp}/${proto}`, key: '', proto, v4: false, v4lo: 0, v4hi: 0, v4ports: 0, hashNext: null,
    lastUs: 0, idleUs: 1000, lruPrev: null, lruNext: null, lruList: null,
  }
  table.setV4Tuple(f, a, ap, b, bp)
  return f
}

describe('FlowTable', () => {
  it('finds an IPv4 flow from either direction, and not a different tuple', () => {
    const t = new FlowTable<F>(() => {})
    const f = flow(t, 0xc0a80001, 40000, 0x0a000001, 80)
    t.add(f)
    expect(t.get4(6, 0xc0a80001, 40000, 0x0a000001, 80)).toBe(f)
    expect(t.get4(6, 0x0a000001, 80, 0xc0a80001, 40000)).toBe(f)
    expect(t.get4(17, 0xc0a80001, 40000, 0x0a000001, 80)).toBeUndefined()
    expect(t.get4(6, 0xc0a80001, 40001, 0x0a000001, 80)).toBeUndefined()
    expect(t.get4(6, 0xc0a80002, 40000, 0x0a000001, 80)).toBeUndefined()
    expect(t.size).toBe(1)
  })

  it('keeps string-keyed and IPv4 flows apart and counts both', () => {
    const t = new FlowTable<F>(() => {})
    t.add(flow(t, 1, 2, 3, 4))
    const other: F = {...flow(t, 0, 0, 0, 0), v4: false, key: flowKey(58, 'fe80::1', 0, 'fe80::2', 0)}
    t.add(other)
    expect(t.size).toBe(2)
    expect(t.get(other.key)).toBe(other)
    expect([...t.values()]).toHaveLength(2)
  })

  it('stays correct when every flow lands in one bucket (chains)', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat(5), fc.nat(3), fc.boolean()), {maxLength: 60}), (ops) => {
      const ended: F[] = []
      const t = new FlowTable<F>((f) => ended.push(f), 1000, 0)
      const model = new Map<string, F>()
      let now = 0
      for (const [a, p, del] of ops) {
        const name = `${a}:${p}`
        const found = t.get4(6, a, p, 99, 80) ?? null
        expect(found).toBe(model.get(name) ?? null)
        if (!found) {
          const f = flow(t, a, p, 99, 80)
          t.add(f)
          t.touch(f, now)
          model.set(name, f)
        } else if (del) {
          // expire exactly this flow: age everything else out of the way first
          found.idleUs = 1
          t.touch(found, now)
          t.expire(now + 1)
          for (const e of ended.splice(0)) model.delete(`${e.v4lo === 99 ? e.v4hi : e.v4lo}:${e.v4lo === 99 ? e.v4ports & 0xffff : e.v4ports >>> 16}`)
        }
        now++
        expect(t.size).toBe(model.size)
        expect([...t.values()].length).toBe(model.size)
      }
    }), {numRuns: 200})
  })

  it('evicts the least recently used flow at the cap', () => {
    const evicted: string[] = []
    const t = new FlowTable<F>((f, why) => evicted.push(`${f.name} ${why}`), 3)
    const flows = [1, 2, 3, 4, 5].map((i) => flow(t, i, 1000, 99, 80))
    flows.forEach((f, i) => {
      t.add(f)
      t.touch(f, i)
      if (i === 2) t.touch(flows[0], 10) // flow 1 becomes the most recent
    })
    expect(t.size).toBe(3)
    expect(evicted).toEqual(['2:1000-99:80/6 limit', '3:1000-99:80/6 limit'])
    expect(t.get4(6, 1, 1000, 99, 80)).toBe(flows[0])
    expect(t.get4(6, 2, 1000, 99, 80)).toBeUndefined()
  })

  it('flush ends every flow, oldest first, and empties both indexes', () => {
    const ended: string[] = []
    const t = new FlowTable<F>((f, why) => ended.push(`${f.name} ${why}`))
    const a = flow(t, 1, 1, 2, 2)
    const b = flow(t, 3, 3, 4, 4)
    t.add(a)
    t.touch(a, 5)
    t.add(b)
    t.touch(b, 1)
    t.flush()
    expect(ended).toEqual(['3:3-4:4/6 flush', '1:1-2:2/6 flush'])
    expect(t.size).toBe(0)
    expect(t.get4(6, 1, 1, 2, 2)).toBeUndefined()
  })
})

describe('FlowTable caps', () => {
  it('a class cap evicts within the class only', () => {
    const ended: string[] = []
    const t = new FlowTable<F>((f, why) => ended.push(`${f.name} ${why}`), 1000)
    const est = flow(t, 1, 1, 99, 80)
    est.idleUs = 600
    t.add(est)
    for (let i = 0; i < 10; i++) {
      const f = flow(t, 100 + i, 5, 99, 80)
      f.idleUs = 30
      f.lastUs = i
      t.add(f, 4)
      t.touch(f, i)
    }
    expect(t.countOf(30)).toBe(4)
    expect(t.get4(6, 1, 1, 99, 80)).toBe(est)
    expect(ended).toHaveLength(6)
    expect(ended[0]).toBe('100:5-99:80/6 limit')
  })

  it('at the table cap, the flow furthest through its own timeout goes first', () => {
    const ended: string[] = []
    const t = new FlowTable<F>((f) => ended.push(f.name), 2)
    const est = flow(t, 1, 1, 99, 80)
    est.idleUs = 600
    t.add(est)
    t.touch(est, 0) // idle 50 of 600
    const syn = flow(t, 2, 2, 99, 80)
    syn.idleUs = 30
    t.add(syn)
    t.touch(syn, 40) // idle 10 of 30: younger, but further through its timeout
    const next = flow(t, 3, 3, 99, 80)
    next.lastUs = 50
    t.add(next)
    expect(ended).toEqual(['2:2-99:80/6'])
    expect(t.get4(6, 1, 1, 99, 80)).toBe(est)
  })
})
