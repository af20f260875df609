/** Test support for the binary RPC analyzers (dcerpc, smb, oncrpc): span checks. Not used by the engine. */
import type {ScriptStep} from '../harness.js'
import {directionBytes} from '../line/testing.js'
import type {Pdu} from '../types.js'

/**
 * Every field value with a span must match the stream bytes under it: strings as latin1 or as
 * UTF-16LE text, numbers as a little- or big-endian unsigned integer, bigints as little-endian.
 */
export function binarySpanMismatches(pdus: readonly Pdu[], script: readonly ScriptStep[]): string[] {
  const streams = {toserver: directionBytes(script, 'toserver'), toclient: directionBytes(script, 'toclient')}
  const bad: string[] = []
  for (const p of pdus) {
    const s = streams[p.dir]
    for (const [name, fv] of p.fields) {
      for (const v of Array.isArray(fv) ? fv : [fv]) {
        if (v.off === undefined || v.len === undefined) continue
        if (v.off < p.start || v.off + v.len > p.end || v.off + v.len > s.length) {
          bad.push(`${name}@${v.off}+${v.len} outside pdu [${p.start},${p.end})`)
          continue
        }
        const raw = Buffer.from(s.subarray(v.off, v.off + v.len))
        let ok: boolean
        if (typeof v.v === 'string') ok = raw.toString('latin1') === v.v || raw.toString('utf16le') === v.v || Buffer.from(raw.toString('utf16le'), 'utf8').toString('latin1') === v.v
        else if (typeof v.v === 'bigint') ok = v.len === 8 && raw.readBigUInt64LE(0) === v.v
        else ok = v.len <= 4 && v.len > 0 && (raw.readUIntLE(0, v.len) === v.v || raw.readUIntBE(0, v.len) === v.v)
        if (!ok) bad.push(`${name}@${v.off}+${v.len}: ${raw.toString('hex').slice(0, 40)} != ${String(v.v).slice(0, 40)}`)
      }
    }
  }
  return bad
}
