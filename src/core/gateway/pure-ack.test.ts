/**
 * Pure ACKs are left to the kernel (nft.ts PURE_ACK4_NFT) and kept out of the capture
 * (PURE_ACK4_BPF): both must select exactly the same frames. The BPF side is checked by libpcap
 * itself (tcpdump reading a capture of hand-built frames); the nft side by the rule text, whose
 * terms are the same four conditions.
 */
import {describe, it, expect} from 'vitest'
import {execFileSync} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {PURE_ACK4_BPF, PURE_ACK4_NFT, divertSets, rulesetScript} from './nft.js'
import {captureFilter} from './bpf.js'
import {writeFrames} from '../../../test/support/pcap.js'
import {hasCommand} from '../lab/netns.js'

const hasTcpdump = hasCommand('tcpdump')

interface Spec {
  flags: number
  payload: number
  /** TCP data offset in 32-bit words (5..15) */
  doff?: number
  /** IPv4 header length in 32-bit words (5..15) */
  ihl?: number
  fragOff?: number
}

/** Ethernet + IPv4 + TCP, 10.0.0.1:40000 -> 10.0.0.3:80 (checksums do not matter to filters) */
function frame(s: Spec): Uint8Array {
  const ihl = s.ihl ?? 5
  const doff = s.doff ?? 5
  const ipLen = ihl * 4 + doff * 4 + s.payload
  const f = new Uint8Array(14 + ipLen)
  const dv = new DataView(f.buffer)
  f.set([2, 0, 0, 0, 0, 3, 2, 0, 0, 0, 0, 1], 0)
  dv.setUint16(12, 0x0800)
  const ip = 14
  f[ip] = 0x40 | ihl
  dv.setUint16(ip + 2, ipLen)
  dv.setUint16(ip + 6, s.fragOff ?? 0)
  f[ip + 8] = 64
  f[ip + 9] = 6
  f.set([10, 0, 0, 1, 10, 0, 0, 3], ip + 12)
  const t = ip + ihl * 4
  dv.setUint16(t, 40000)
  dv.setUint16(t + 2, 80)
  dv.setUint32(t + 4, 1000)
  dv.setUint32(t + 8, 2000)
  f[t + 12] = doff << 4
  f[t + 13] = s.flags
  dv.setUint16(t + 14, 1000)
  return f
}

const ACK = 0x10
const PSH = 0x08
const FIN = 0x01
const SYN = 0x02
const RST = 0x04
const ECE = 0x40

/** [spec, pure ACK?] */
const CASES: [Spec, boolean][] = [
  [{flags: ACK, payload: 0}, true],
  [{flags: ACK, payload: 0, doff: 8}, true],
  [{flags: ACK, payload: 0, doff: 11}, true],
  [{flags: ACK, payload: 0, doff: 15}, true],
  [{flags: ACK, payload: 1}, false],
  [{flags: ACK, payload: 1, doff: 8}, false],
  [{flags: ACK, payload: 1400, doff: 8}, false],
  [{flags: ACK | PSH, payload: 0}, false],
  [{flags: ACK | FIN, payload: 0}, false],
  [{flags: ACK | SYN, payload: 0}, false],
  [{flags: ACK | RST, payload: 0}, false],
  [{flags: ACK | ECE, payload: 0}, false],
  [{flags: SYN, payload: 0}, false],
  // IP options: not bypassed (both sides require IHL 5)
  [{flags: ACK, payload: 0, ihl: 6}, false],
  // a first fragment (MF) and a later one
  [{flags: ACK, payload: 0, fragOff: 0x2000}, false],
  [{flags: ACK, payload: 0, fragOff: 0x0001}, false],
]

/** the definition both filters implement (RFC 9293 §3.1 header, RFC 791 §3.1) */
function isPureAck4(s: Spec): boolean {
  return s.flags === ACK && (s.ihl ?? 5) === 5 && (s.fragOff ?? 0) === 0 && s.payload === 0
}

describe('pure ACKs: kernel-forwarded, not captured', () => {
  it('the cases agree with the definition', () => {
    for (const [s, pure] of CASES) expect(isPureAck4(s)).toBe(pure)
  })

  it('nft: ACK-only, IHL 5, unfragmented frames jump to a chain matching total length against data offset', () => {
    // the largest pure ACK is 20 + 60 bytes: the first comparison sends full-size segments on
    expect(PURE_ACK4_NFT).toBe('ip length <= 80 ip hdrlength 5 ip frag-off & 0x3fff == 0 tcp flags == ack jump pureack4')
    const script = rulesetScript(divertSets([{ip: '10.0.0.3', port: 80, proto: 'tcp'}]), {ports: ['ga', 'gb']})
    const at = script.indexOf('  chain pureack4 {\n')
    const chain = script.slice(at, script.indexOf('\n  }\n', at))
    const pairs = [...chain.matchAll(/ip length (\d+) tcp doff (\d+) accept/g)].map((m) => [Number(m[1]), Number(m[2])])
    expect(pairs.length).toBe(11)
    for (const [len, doff] of pairs) expect(len).toBe(20 + 4 * doff)
    expect(new Set(pairs.map((p) => p[1]))).toEqual(new Set([5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]))
    // in both directions of a protected IPv4 tuple, on each port: before the divert (fwd to the port's pair)
    for (const chain of ['tcp4c_0', 'tcp4s_0', 'tcp4c_1', 'tcp4s_1']) {
      const c = script.slice(script.indexOf(`  chain ${chain} {`), script.indexOf('\n  }\n', script.indexOf(`  chain ${chain} {`)))
      expect(c.indexOf('jump pureack4')).toBeGreaterThan(0)
      expect(c.indexOf('jump pureack4')).toBeLessThan(c.indexOf(' fwd to '))
    }
  })

  it('the capture filter of a protected service excludes them', () => {
    const f = captureFilter(divertSets([{ip: '10.0.0.3', port: 80, proto: 'tcp'}]))
    expect(f).toContain(`not ${PURE_ACK4_BPF}`)
  })

  describe.skipIf(!hasTcpdump)('libpcap evaluates the filters (tcpdump -r)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ppd-pureack-'))
    const file = path.join(dir, 'cases.pcap')
    writeFrames(file, CASES.map(([s]) => frame(s)))
    const matched = (filter: string): number[] => {
      const out = execFileSync('tcpdump', ['-r', file, '-nn', '-tt', filter], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore']})
      return out.split('\n').filter(Boolean).map((l) => Number(l.split('.')[0]) - 1)
    }

    it('PURE_ACK4_BPF selects exactly the pure ACKs', () => {
      const want = CASES.map(([, p], i) => (p ? i : -1)).filter((i) => i >= 0)
      expect(matched(PURE_ACK4_BPF)).toEqual(want)
    })

    it('the capture filter takes every other frame of the protected tuple', () => {
      const want = CASES.map(([s], i) => (isPureAck4(s) || (s.fragOff ?? 0) !== 0 ? -1 : i)).filter((i) => i >= 0)
      const got = matched(captureFilter(divertSets([{ip: '10.0.0.3', port: 80, proto: 'tcp'}])))
      // fragments are captured too (by host), like the nft fragment rules divert them
      const frags = CASES.map(([s], i) => ((s.fragOff ?? 0) !== 0 ? i : -1)).filter((i) => i >= 0)
      expect(got).toEqual([...want, ...frags].sort((a, b) => a - b))
      fs.rmSync(dir, {recursive: true, force: true})
    })
  })
})
