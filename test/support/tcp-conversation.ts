/**
 * Builds the frames of a TCP conversation for tests: handshake, each side's bytes cut into
 * segments (optionally shuffled, duplicated, overlapped), and a FIN exchange.
 */
import {buildTcpPacket} from '../../src/core/packet/encode.js'
import {ACK, FIN, PSH, SYN} from '../../src/core/packet/decode.js'

export interface ConversationSpec {
  client: string
  server: string
  clientPort: number
  serverPort: number
  toServer: Uint8Array
  toClient?: Uint8Array
  /** segment sizes are drawn from [1, maxSegment] */
  maxSegment?: number
  /** deterministic randomness */
  seed?: number
  shuffle?: boolean
  /** resend this fraction of segments (same bytes) */
  duplicate?: number
  /** add segments that straddle earlier segment boundaries (same bytes) */
  overlap?: number
  startUs?: number
}

export interface Frame {
  tsUs: number
  data: Uint8Array
}

/** xorshift32: small, deterministic */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x / 0x1_0000_0000
  }
}

export function tcpConversation(spec: ConversationSpec): Frame[] {
  const rand = rng(spec.seed ?? 1)
  const max = spec.maxSegment ?? 1400
  const cIsn = 1000
  const sIsn = 500_000
  const frames: Frame[] = []
  let t = spec.startUs ?? 1_700_000_000_000_000
  const c = {src: spec.client, dst: spec.server, srcPort: spec.clientPort, dstPort: spec.serverPort, srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02'}
  const s = {src: spec.server, dst: spec.client, srcPort: spec.serverPort, dstPort: spec.clientPort, srcMac: '02:00:00:00:00:02', dstMac: '02:00:00:00:00:01'}
  const push = (data: Uint8Array) => frames.push({tsUs: (t += 100), data})
  push(buildTcpPacket({...c, seq: cIsn, flags: SYN, window: 65535}))
  push(buildTcpPacket({...s, seq: sIsn, ack: cIsn + 1, flags: SYN | ACK, window: 65535}))
  push(buildTcpPacket({...c, seq: cIsn + 1, ack: sIsn + 1, flags: ACK, window: 65535}))
  const toClient = spec.toClient ?? new Uint8Array(0)
  const segs = (bytes: Uint8Array, isn: number, ack: number, side: typeof c) => {
    const out: Uint8Array[] = []
    const cuts: [number, number][] = []
    for (let off = 0; off < bytes.length; ) {
      const len = Math.min(bytes.length - off, 1 + Math.floor(rand() * max))
      cuts.push([off, off + len])
      off += len
    }
    const extra: [number, number][] = []
    for (const [a, b] of cuts) {
      if (spec.duplicate && rand() < spec.duplicate) extra.push([a, b])
      if (spec.overlap && rand() < spec.overlap && b < bytes.length) {
        const a2 = a + Math.floor((b - a) / 2)
        extra.push([a2, Math.min(bytes.length, b + 1 + Math.floor(rand() * max))])
      }
    }
    const all = cuts.concat(extra)
    if (spec.shuffle) {
      for (let i = all.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1))
        ;[all[i], all[j]] = [all[j], all[i]]
      }
    }
    for (const [a, b] of all) {
      out.push(buildTcpPacket({...side, seq: (isn + 1 + a) >>> 0, ack, flags: ACK | PSH, window: 65535, payload: bytes.subarray(a, b)}))
    }
    return out
  }
  for (const f of segs(spec.toServer, cIsn, sIsn + 1, c)) push(f)
  // the server acknowledges everything, then answers
  push(buildTcpPacket({...s, seq: sIsn + 1, ack: cIsn + 1 + spec.toServer.length, flags: ACK, window: 65535}))
  for (const f of segs(toClient, sIsn, cIsn + 1 + spec.toServer.length, s)) push(f)
  const cEnd = cIsn + 1 + spec.toServer.length
  const sEnd = sIsn + 1 + toClient.length
  push(buildTcpPacket({...c, seq: cEnd, ack: sEnd, flags: FIN | ACK, window: 65535}))
  push(buildTcpPacket({...s, seq: sEnd, ack: cEnd + 1, flags: FIN | ACK, window: 65535}))
  push(buildTcpPacket({...c, seq: cEnd + 1, ack: sEnd + 1, flags: ACK, window: 65535}))
  return frames
}
