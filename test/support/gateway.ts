/** A forwarder harness for tests: fake ports, a session on one protected HTTP service, and HTTP requests. */
import {PacketDecoder} from '../../src/core/packet/decode.js'
import {LINKTYPE} from '../../src/core/packet/linktype.js'
import type {Detection} from '../../src/core/engine/detection.js'
import type {EveEvent} from '../../src/core/events/eve.js'
import type {GatewayLimits, GatewayPort} from '../../src/core/gateway/forwarder.js'
import type {Policy} from '../../src/core/gateway/policy.js'
import {GatewaySession} from '../../src/core/gateway/session.js'

export const enc = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'))
export const SHELLSHOCK = 'GET /cgi-bin/status HTTP/1.1\r\nHost: x\r\nUser-Agent: () { :; }; /bin/cat /etc/passwd\r\nAccept: */*\r\n\r\n'
export const BENIGN = 'GET /index.html HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n'
export const RESPONSE = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'

/** keeps a copy of every frame sent through it */
export class FakePort implements GatewayPort {
  frames: Uint8Array[] = []
  send(frame: Uint8Array): void {
    this.frames.push(frame.slice())
  }
}

/** a gateway session protecting SERVER:80/tcp with `action`, on two fake ports */
export function gatewaySession(detection: Detection, server: string, action: 'fix' | 'drop' | 'log', limits: Partial<GatewayLimits> = {}, failClosed = false) {
  const policy: Policy = {services: [{ip: server, port: 80, proto: 'tcp', action}]}
  const ports = [new FakePort(), new FakePort()] as const
  const events: EveEvent[] = []
  const s = new GatewaySession({detection, policy, ports, onEvent: (e) => events.push(e), limits, failClosed})
  return {s, ports, events}
}

/** frames through the forwarder: the client's arrive on port 0, the server's on port 1 */
export function runFrames(s: GatewaySession, client: string, frames: {tsUs: number; data: Uint8Array}[]): void {
  const dec = new PacketDecoder()
  for (const f of frames) {
    const p = dec.decode(f.data, LINKTYPE.ETHERNET)
    s.forwarder.handle(f.data.slice(), p.src === client ? 0 : 1, f.tsUs)
  }
}
