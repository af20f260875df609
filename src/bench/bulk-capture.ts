/**
 * A bulk-transfer capture for benchmarks: HTTP downloads of 1 MB in full-size segments, each
 * acknowledged, over many client addresses — the traffic a gateway in front of web servers mostly
 * carries, where throughput in Gbit/s is the figure that matters.
 */
import {PcapWriter} from '../core/capture/writer.js'
import {LINKTYPE} from '../core/packet/linktype.js'
import {buildTcpPacket} from '../core/packet/encode.js'
import {ACK, FIN, PSH, SYN} from '../core/packet/decode.js'

const MSS = 1448

export function buildBulkCapture(out: string, targetBytes: number, responseBytes = 1 << 20): {packets: number; bytes: number} {
  const writer = PcapWriter.open(out, {linktype: LINKTYPE.ETHERNET})
  const body = new Uint8Array(MSS)
  for (let i = 0; i < body.length; i++) body[i] = 0x41 + (i % 26)
  let t = 1_700_000_000_000_000
  let bytes = 0
  let packets = 0
  const put = (frame: Uint8Array) => {
    writer.write((t += 20), frame)
    bytes += frame.length
    packets++
  }
  try {
    for (let n = 0; bytes < targetBytes; n++) {
      const client = `10.${(n >> 16) & 0xff}.${(n >> 8) & 0xff}.${n & 0xff}`
      const server = '192.0.2.80'
      const cport = 20000 + (n % 40000)
      const c = {src: client, dst: server, srcPort: cport, dstPort: 80, window: 65535}
      const s = {src: server, dst: client, srcPort: 80, dstPort: cport, window: 65535}
      const request = new TextEncoder().encode(`GET /file/${n} HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n`)
      const head = new TextEncoder().encode(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${responseBytes}\r\n\r\n`)
      let cs = 1000
      let ss = 9000
      put(buildTcpPacket({...c, seq: cs, flags: SYN}))
      put(buildTcpPacket({...s, seq: ss, ack: cs + 1, flags: SYN | ACK}))
      cs++
      ss++
      put(buildTcpPacket({...c, seq: cs, ack: ss, flags: ACK}))
      put(buildTcpPacket({...c, seq: cs, ack: ss, flags: ACK | PSH, payload: request}))
      cs += request.length
      put(buildTcpPacket({...s, seq: ss, ack: cs, flags: ACK | PSH, payload: head}))
      ss += head.length
      for (let sent = 0, k = 0; sent < responseBytes; k++) {
        const len = Math.min(MSS, responseBytes - sent)
        put(buildTcpPacket({...s, seq: ss, ack: cs, flags: ACK, payload: body.subarray(0, len)}))
        ss = (ss + len) >>> 0
        sent += len
        if (k % 2 === 1) put(buildTcpPacket({...c, seq: cs, ack: ss, flags: ACK}))
      }
      put(buildTcpPacket({...s, seq: ss, ack: cs, flags: FIN | ACK}))
      put(buildTcpPacket({...c, seq: cs, ack: ss + 1, flags: FIN | ACK}))
      put(buildTcpPacket({...s, seq: ss + 1, ack: cs + 1, flags: ACK}))
    }
  } finally {
    writer.close()
  }
  return {packets, bytes}
}
