/**
 * Fixes: turn a rule's `fix:` list into byte edits of the stream, computed from the spans the
 * matched fields carry (FieldValue.off/len are absolute stream offsets).
 *
 * Inline (same length, usable by the inline gateway): overwrite, rename, defuse.
 * Proxy only (may change length): truncate, remove, replace_unit, reply.
 */
import type {FieldValue, Pdu} from '../analyzers/types.js'
import type {CompiledFix, CompiledRule} from './compile.js'
import type {Edit, MatchedValue} from './types.js'

/** Most edits one fix may produce for one PDU. */
export const MAX_EDITS_PER_MATCH = 256

/**
 * Default filler for `overwrite`, per protocol: a space keeps a text protocol's syntax valid
 * (an HTTP header value or an SMTP argument full of blanks); binary protocols get NUL bytes.
 */
export const DEFAULT_FILLER: Readonly<Record<string, string>> = {
  http: ' ', smtp: ' ', ftp: ' ', imap: ' ', pop3: ' ',
  mysql: '\0', tds: '\0', tns: '\0', dcerpc: '\0', smb: '\0', oncrpc: '\0', tls: '\0', 'mssql-ssrp': '\0', ldap: '\0',
}

export interface FixResult {
  edits: Edit[]
  reply?: Uint8Array
  inline: boolean
}

function fieldMatches(pattern: string, name: string): boolean {
  if (pattern === 'matched') return true
  if (pattern.endsWith('.*')) return name.startsWith(pattern.slice(0, -1))
  return name === pattern
}

/** Values a fix targets: those that matched (if any fit the pattern), else every value of the field. */
function targets(pattern: string, pdu: Pdu, matched: readonly MatchedValue[]): MatchedValue[] {
  const hit = matched.filter((m) => fieldMatches(pattern, m.field))
  if (hit.length > 0 || pattern === 'matched') return hit
  const out: MatchedValue[] = []
  for (const [k, e] of pdu.fields) {
    if (!fieldMatches(pattern, k)) continue
    for (const value of Array.isArray(e) ? e : [e]) out.push({field: k, value})
  }
  return out
}

function span(v: FieldValue): {off: number; len: number} | undefined {
  if (v.off === undefined || v.len === undefined || v.len <= 0 || v.off < 0) return undefined
  return {off: v.off, len: v.len}
}

function fill(ch: string, n: number): Uint8Array {
  return new Uint8Array(n).fill(ch.charCodeAt(0) & 0xff)
}

function editsFor(f: CompiledFix, rule: CompiledRule, pdu: Pdu, matched: readonly MatchedValue[], out: Edit[]): void {
  const unitLen = pdu.end - pdu.start
  switch (f.op) {
    case 'replace_unit':
      out.push({off: pdu.start, len: unitLen, data: f.data})
      return
    case 'reply':
      out.push({off: pdu.start, len: unitLen, data: new Uint8Array(0)})
      return
  }
  for (const t of targets(f.field, pdu, matched)) {
    const sp = span(t.value)
    if (sp === undefined) continue
    const raw = typeof t.value.v === 'string' && t.value.v.length === sp.len ? t.value.v : undefined
    switch (f.op) {
      case 'overwrite':
        out.push({off: sp.off, len: sp.len, data: fill(f.with ?? DEFAULT_FILLER[rule.protocol] ?? ' ', sp.len)})
        break
      case 'rename': {
        const first = raw?.[0]
        out.push({off: sp.off, len: 1, data: fill(first === 'X' || first === 'x' ? 'Z' : 'X', 1)})
        break
      }
      case 'defuse': {
        if (raw === undefined) {
          out.push({off: sp.off, len: sp.len, data: fill(f.with, sp.len)})
          break
        }
        const data = Buffer.from(raw, 'latin1')
        const w = f.with.charCodeAt(0) & 0xff
        let changed = false
        for (let i = 0; i < data.length; i++) {
          if (f.chars.includes(raw[i])) {
            data[i] = w
            changed = true
          }
        }
        if (changed) out.push({off: sp.off, len: sp.len, data: new Uint8Array(data)})
        break
      }
      case 'truncate':
        if (sp.len > f.length) out.push({off: sp.off + f.length, len: sp.len - f.length, data: new Uint8Array(0)})
        break
      case 'remove':
        out.push({off: sp.off, len: sp.len, data: new Uint8Array(0)})
        break
    }
    if (out.length >= MAX_EDITS_PER_MATCH) return
  }
}

/** Sort by offset and drop edits overlapping an earlier one. */
export function normalizeEdits(edits: Edit[]): Edit[] {
  edits.sort((a, b) => a.off - b.off || b.len - a.len)
  const out: Edit[] = []
  let end = -1
  for (const e of edits) {
    if (e.off < end) continue
    out.push(e)
    end = e.off + e.len
  }
  return out
}

/** Compute a rule's fix for a PDU; undefined when nothing could be edited (caller falls back to drop). */
export function computeFix(rule: CompiledRule, pdu: Pdu, matched: readonly MatchedValue[]): FixResult | undefined {
  if (rule.fixes.length === 0) return undefined
  const raw: Edit[] = []
  let reply: Uint8Array | undefined
  for (const f of rule.fixes) {
    if (f.op === 'reply') reply = f.data
    editsFor(f, rule, pdu, matched, raw)
    if (raw.length >= MAX_EDITS_PER_MATCH) break
  }
  if (raw.length === 0 && reply === undefined) return undefined
  const edits = normalizeEdits(raw)
  const inline = reply === undefined && edits.every((e) => e.data.length === e.len)
  return {edits, reply, inline}
}

/**
 * Apply edits to `bytes`, whose first byte is stream offset `baseOffset`. Edits outside the
 * buffer are ignored (clipped); overlapping edits keep the first. Returns a new buffer.
 */
export function applyEdits(bytes: Uint8Array, baseOffset: number, edits: readonly Edit[]): Uint8Array {
  const sorted = normalizeEdits([...edits])
  const parts: Uint8Array[] = []
  let pos = 0
  for (const e of sorted) {
    const s = e.off - baseOffset
    const t = s + e.len
    if (s < pos || t > bytes.length) continue
    parts.push(bytes.subarray(pos, s), e.data)
    pos = t
  }
  parts.push(bytes.subarray(pos))
  return new Uint8Array(Buffer.concat(parts))
}
