/**
 * A SYN flood against the engine's flow table: bare SYNs from ever new sources start embryonic
 * flows, capped apart from the rest, so an established session idle during the flood keeps its
 * flow (and its reassembly) while the flood only evicts its own flows.
 */
import {describe, expect, it} from 'vitest'
import {Engine} from './engine.js'
import {buildTcpPacket} from '../packet/encode.js'
import {ACK, PSH, SYN} from '../packet/decode.js'
import {LINKTYPE} from '../packet/linktype.js'

describe('SYN flood', () => {
  it('embryonic flows stay under their cap and never push out an established flow', () => {
    const streams: string[] = []
    const engine = new Engine({
      onEvent: () => {},
      maxFlows: 1000,
      maxEmbryonicFlows: 200,
      streamTap: (_f, dir, data) => { if (dir === 'toserver') streams.push(Buffer.from(data).toString()) },
    })
    let now = 1_700_000_000_000_000
    const send = (src: string, sp: number, flags: number, seq: number, ack: number, payload?: string) =>
      engine.processFrame(buildTcpPacket({
        src, dst: '192.0.2.1', srcPort: sp, dstPort: 443, flags, seq, ack, window: 65535,
        payload: payload === undefined ? undefined : new TextEncoder().encode(payload),
      }), LINKTYPE.ETHERNET, now)
    const reply = (flags: number, seq: number, ack: number) =>
      engine.processFrame(buildTcpPacket({src: '192.0.2.1', dst: '198.51.100.5', srcPort: 443, dstPort: 40000, flags, seq, ack, window: 65535}), LINKTYPE.ETHERNET, now)
    send('198.51.100.5', 40000, SYN, 100, 0)
    reply(SYN | ACK, 900, 101)
    send('198.51.100.5', 40000, ACK, 101, 901)
    send('198.51.100.5', 40000, PSH | ACK, 101, 901, 'hello ')
    let peak = 0
    for (let i = 0; i < 20_000; i++) {
      now += 50 // 20,000 SYNs a second
      send(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 1024 + (i % 60000), SYN, i, 0)
      peak = Math.max(peak, engine.flowCount)
    }
    expect(peak).toBeLessThanOrEqual(201)
    expect(engine.stats.flowsEvicted).toBeGreaterThan(19_000)
    // the established session goes on where it was
    send('198.51.100.5', 40000, PSH | ACK, 107, 901, 'world')
    engine.finish()
    expect(streams.join('')).toBe('hello world')
  })
})
