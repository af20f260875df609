/**
 * Slow requests through the whole engine (real frames, the HTTP analyzer): a source holding
 * incomplete request heads past the timeout is flagged; flows whose client never sent a byte
 * (a SYN scan) are not even watched.
 */
import {describe, expect, it} from 'vitest'
import {Engine} from '../../src/core/engine/engine.js'
import {engineDetection} from '../../src/core/engine/detection.js'
import {createProtections} from '../../src/core/protections/index.js'
import {buildTcpPacket} from '../../src/core/packet/encode.js'
import {ACK, PSH, SYN} from '../../src/core/packet/decode.js'
import {LINKTYPE} from '../../src/core/packet/linktype.js'
import type {EveEvent} from '../../src/core/events/eve.js'

const S = 1_000_000
const SERVER = '192.0.2.80'

describe('slow requests through the engine', () => {
  it('flags the slowloris flows of one source; SYN-only flows are not watched', async () => {
    const detection = await engineDetection()
    const protections = createProtections({slow_requests: {head_timeout_s: 4, max_per_source: 3}})
    const events: EveEvent[] = []
    const engine: Engine = new Engine({onEvent: (ev) => events.push(ev), analyzers: detection.analyzers, protections})
    let now = 1_700_000_000 * S
    const send = (src: string, dst: string, sp: number, dp: number, flags: number, seq: number, ack: number, payload?: Uint8Array) =>
      engine.processFrame(buildTcpPacket({src, dst, srcPort: sp, dstPort: dp, flags, seq, ack, window: 65535, payload}), LINKTYPE.ETHERNET, now)
    const head = new TextEncoder().encode('GET / HTTP/1.1\r\nHost: victim\r\nX-a: ')
    // three slow connections from one client: handshake, then a request head that never ends
    for (let i = 0; i < 3; i++) {
      const port = 41000 + i
      send('198.51.100.7', SERVER, port, 80, SYN, 1000, 0)
      send(SERVER, '198.51.100.7', 80, port, SYN | ACK, 5000, 1001)
      send('198.51.100.7', SERVER, port, 80, ACK, 1001, 5001)
      send('198.51.100.7', SERVER, port, 80, PSH | ACK, 1001, 5001, head)
    }
    // a SYN scan from elsewhere: 200 flows that never send a byte
    for (let p = 1; p <= 200; p++) send('203.0.113.9', SERVER, 50000, p, SYN, 7, 0)
    expect(protections.rate.size.watched).toBe(3)
    // time passes (a packet a second drives the engine's clock)
    for (let t = 1; t <= 12; t++) {
      now += S
      send(SERVER, '198.51.100.7', 80, 41000, ACK, 5001, 1001 + head.length)
    }
    const slow = events.filter((e) => e.event_type === 'anomaly' && e.anomaly.event === 'protection.slow_request')
    expect(new Set(slow.map((e) => e.src_port))).toEqual(new Set([41000, 41001, 41002]))
    expect(slow.every((e) => e.src_ip === '198.51.100.7' && e.dest_ip === SERVER)).toBe(true)
    engine.finish()
  })
})
