import {describe, expect, it} from 'vitest'
import {Engine} from '../engine/engine.js'
import {buildUdpPacket} from '../packet/encode.js'
import {LINKTYPE} from '../packet/linktype.js'
import {ByteBudget, SharedScope} from './scope.js'
import type {AnalyzerFactory, EngineScope} from './types.js'

describe('ByteBudget', () => {
  it('starts full, spends only what it holds, refills at its rate up to its burst', () => {
    const b = new ByteBudget(1000, 1500)
    expect(b.take(1000, 0)).toBe(true)
    expect(b.take(600, 0)).toBe(false)
    // a refused take spends nothing
    expect(b.take(500, 0)).toBe(true)
    expect(b.take(1, 0)).toBe(false)
    // half a second: 500 back
    expect(b.take(501, 500_000)).toBe(false)
    expect(b.take(500, 500_000)).toBe(true)
    // a long pause fills it to the burst, not beyond
    expect(b.take(1500, 60_000_000)).toBe(true)
    expect(b.take(1, 60_000_000)).toBe(false)
    // time going backwards (reordered capture) refills nothing
    expect(b.take(1, 59_000_000)).toBe(false)
  })
})

describe('SharedScope', () => {
  it('one object per key, made once', () => {
    const s = new SharedScope(() => 7)
    let made = 0
    const a = s.shared('k', () => ({n: ++made}))
    expect(s.shared('k', () => ({n: ++made}))).toBe(a)
    expect(s.shared('other', () => ({n: ++made}))).not.toBe(a)
    expect(made).toBe(2)
    expect(s.nowUs()).toBe(7)
  })

  it('the engine hands every flow\'s analyzer the same scope, on its packet clock', () => {
    const seen: {scope: EngineScope | undefined; now: number}[] = []
    const factory: AnalyzerFactory = {
      protocol: 'probe', fields: [], ports: [9999], transport: 'udp', detect: () => false,
      create: (ctx) => {
        seen.push({scope: ctx.engine, now: ctx.engine?.nowUs() ?? -1})
        return {protocol: 'probe', data() {}, gap() {}, end() {}, pendingFrom: () => -1}
      },
    }
    const run = () => {
      const engine = new Engine({onEvent: () => {}, analyzers: [factory]})
      for (const [port, t] of [[40000, 1_000_000], [40001, 2_500_000]]) {
        engine.processFrame(buildUdpPacket({src: '192.0.2.1', dst: '192.0.2.2', srcPort: port, dstPort: 9999, payload: new Uint8Array([1])}), LINKTYPE.ETHERNET, t)
      }
      engine.finish()
    }
    run()
    run()
    expect(seen.map((s) => s.now)).toEqual([1_000_000, 2_500_000, 1_000_000, 2_500_000])
    expect(seen[0].scope).toBeDefined()
    expect(seen[1].scope).toBe(seen[0].scope)
    // another engine, another scope
    expect(seen[2].scope).not.toBe(seen[0].scope)
  })
})
