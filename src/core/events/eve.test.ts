import fc from 'fast-check'
import {describe, expect, it} from 'vitest'
import {anomalyEvent, eveProto, flowIdFor, fnv1a52, formatEveTimestamp, parseEveTimestamp} from './eve.js'

const RUNS = Number(process.env.PATCHPOINT_FUZZ_RUNS ?? 200)

/** Reference FNV-1a 64 with BigInt, over the same byte encoding as eve.ts. */
function refFnv52(parts: (string | number)[]): number {
  let h = 0xcbf29ce484222325n
  const byte = (b: number) => {
    h ^= BigInt(b)
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn
  }
  for (const p of parts) {
    if (typeof p === 'string') {
      for (let i = 0; i < p.length; i++) {
        const c = p.charCodeAt(i)
        byte(c & 0xff)
        if (c > 0xff) byte(c >>> 8)
      }
      byte(0)
    } else {
      let n = BigInt(p)
      for (let i = 0; i < 8; i++, n >>= 8n) byte(Number(n & 0xffn))
    }
  }
  return Number(h & 0xfffffffffffffn)
}

describe('formatEveTimestamp', () => {
  it('formats microseconds in UTC like Suricata', () => {
    const us = Date.UTC(2026, 10, 26, 7, 33, 4) * 1000 + 123456
    expect(formatEveTimestamp(us)).toBe('2026-11-26T07:33:04.123456+0000')
    expect(formatEveTimestamp(us + 1)).toBe('2026-11-26T07:33:04.123457+0000')
    expect(formatEveTimestamp(0)).toBe('1970-01-01T00:00:00.000000+0000')
    expect(formatEveTimestamp(-1)).toBe('1969-12-31T23:59:59.999999+0000')
    expect(formatEveTimestamp(Number.NaN)).toBe('1970-01-01T00:00:00.000000+0000')
  })

  it('round-trips through parseEveTimestamp (property)', () => {
    fc.assert(fc.property(fc.integer({min: 0, max: 4_102_444_800_000_000}), (us) => {
      const s = formatEveTimestamp(us)
      expect(s).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+0000$/)
      expect(parseEveTimestamp(s)).toBe(us)
    }), {numRuns: RUNS})
  })

  it('parses other offsets and rejects junk', () => {
    expect(parseEveTimestamp('2017-04-07T22:24:37.251547+0100')).toBe(Date.UTC(2017, 3, 7, 21, 24, 37) * 1000 + 251547)
    expect(parseEveTimestamp('2009-11-24T21:27:09.534255')).toBe(Date.UTC(2009, 10, 24, 21, 27, 9) * 1000 + 534255)
    expect(parseEveTimestamp('yesterday')).toBeNaN()
  })
})

describe('flowIdFor', () => {
  it('matches a BigInt FNV-1a 64 reference (property)', () => {
    fc.assert(fc.property(fc.array(fc.oneof(fc.string({maxLength: 20}), fc.string({unit: 'binary', maxLength: 5}), fc.integer({min: 0, max: Number.MAX_SAFE_INTEGER})), {maxLength: 6}), (parts) => {
      expect(fnv1a52(parts)).toBe(refFnv52(parts))
    }), {numRuns: RUNS})
  })

  it('is a stable, direction-independent safe integer that depends on every field', () => {
    const id = flowIdFor('192.0.2.1', 51000, '198.51.100.9', 445, 6, 1_700_000_000_000_000)
    expect(Number.isSafeInteger(id)).toBe(true)
    expect(id).toBeGreaterThanOrEqual(0)
    expect(id).toBeLessThan(2 ** 52)
    expect(id).toBe(refFnv52([6, '192.0.2.1', 51000, '198.51.100.9', 445, 1_700_000_000_000_000]))
    expect(flowIdFor('198.51.100.9', 445, '192.0.2.1', 51000, 6, 1_700_000_000_000_000)).toBe(id)
    expect(flowIdFor('192.0.2.1', 51001, '198.51.100.9', 445, 6, 1_700_000_000_000_000)).not.toBe(id)
    expect(flowIdFor('192.0.2.1', 51000, '198.51.100.9', 445, 17, 1_700_000_000_000_000)).not.toBe(id)
    expect(flowIdFor('192.0.2.1', 51000, '198.51.100.9', 445, 6, 1_700_000_000_000_001)).not.toBe(id)
  })

  it('symmetry holds for any tuple (property)', () => {
    fc.assert(fc.property(fc.ipV4(), fc.ipV6(), fc.nat(65535), fc.nat(65535), fc.nat(255), fc.nat(), (a, b, pa, pb, proto, t) => {
      const id = flowIdFor(a, pa, b, pb, proto, t)
      expect(flowIdFor(b, pb, a, pa, proto, t)).toBe(id)
      expect(Number.isSafeInteger(id)).toBe(true)
    }), {numRuns: RUNS})
  })
})

describe('event helpers', () => {
  it('eveProto names the common protocols', () => {
    expect([6, 17, 1, 58, 132, 47].map(eveProto)).toEqual(['TCP', 'UDP', 'ICMP', 'IPv6-ICMP', 'SCTP', 47])
  })

  it('anomalyEvent nests type/event like Suricata and keeps the tuple', () => {
    const ev = anomalyEvent({type: 'defrag', event: 'ipv4.frag_overlap_conflict', detail: {offset: 8}}, {
      timestamp: formatEveTimestamp(0), flow_id: 7, src_ip: '10.0.0.1', dest_ip: '10.0.0.2', proto: 'UDP',
    })
    expect(JSON.parse(JSON.stringify(ev))).toEqual({
      timestamp: '1970-01-01T00:00:00.000000+0000', flow_id: 7, src_ip: '10.0.0.1', dest_ip: '10.0.0.2', proto: 'UDP',
      event_type: 'anomaly', anomaly: {type: 'defrag', event: 'ipv4.frag_overlap_conflict', detail: {offset: 8}},
    })
  })

  it('anomalyEvent writes keys in the order of the common section, then event_type and anomaly, and leaves common alone', () => {
    const common = {timestamp: formatEveTimestamp(0), flow_id: 7, src_ip: '10.0.0.1', dest_ip: '10.0.0.2', proto: 'TCP' as const,
      src_port: 1, dest_port: 2, app_proto: 'http', pcap_filename: 'x.pcap'}
    const before = JSON.stringify(common)
    const ev = anomalyEvent({type: 'applayer', event: 'http.bare_lf'}, common, 'parser')
    expect(Object.keys(ev)).toEqual([...Object.keys(common), 'event_type', 'anomaly'])
    expect(ev.anomaly).toEqual({type: 'applayer', event: 'http.bare_lf', layer: 'parser'})
    expect(JSON.stringify(common)).toBe(before)
    expect(ev).not.toBe(common)
  })
})
