/**
 * ONC RPC analyzer (RFC 5531) over TCP (record marking, section 11) and UDP (one message per
 * datagram). One 'call' or 'reply' PDU per record. Replies are matched to calls by xid (bounded
 * table); portmapper/rpcbind replies (GETPORT, GETADDR, DUMP) announce dynamic services.
 */
import type {Analyzer, AnalyzerContext, Direction, FieldValue, Fields} from '../types.js'
import {PMAP_PROG, be32, parseMessage, xdrLengths} from './parser.js'

export interface OncrpcLimits {
  /** bytes of one record held (hitting it: oncrpc.record_too_long; parsed from its head, rest skipped) */
  maxRecordBytes: number
  /** fragments of one record (hitting it: oncrpc.fragment_limit) */
  maxFragments: number
  /** calls awaiting a reply (hitting it: oncrpc.call_limit, oldest dropped) */
  maxPending: number
  /** services reported from one DUMP reply */
  maxServices: number
}

export const ONCRPC_LIMITS: Readonly<OncrpcLimits> = {
  maxRecordBytes: 64 * 1024,
  maxFragments: 64,
  maxPending: 256,
  maxServices: 64,
}

interface DirState {
  hdr: Uint8Array
  hdrLen: number
  /** bytes left in the current fragment */
  fragLeft: number
  last: boolean
  rec: Uint8Array
  recLen: number
  recTotal: number
  frags: number
  start: number
  inRecord: boolean
  pos: number
  dead: boolean
}

interface CallInfo {
  prog: number
  vers: number
  proc: number
  /** portmapper GETPORT/GETADDR: the program, transport asked about */
  askProg: number
  askProto: 'tcp' | 'udp'
}

function sp(v: number, base: number, rel: number): FieldValue {
  return base < 0 ? {v} : {v, off: base + rel, len: 4}
}

/** universal address "h1.h2.h3.h4.p1.p2" (RFC 5665 section 5.2.3.3) -> ip, port */
function uaddr(s: string): {ip: string; port: number} | null {
  const parts = s.split('.')
  if (parts.length !== 6) return null
  const nums = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : -1))
  if (nums.some((x) => x < 0 || x > 255)) return null
  return {ip: nums.slice(0, 4).join('.'), port: nums[4]! * 256 + nums[5]!}
}

export class OncrpcAnalyzer implements Analyzer {
  readonly protocol = 'oncrpc'
  private readonly limits: OncrpcLimits
  private readonly st: Record<Direction, DirState>
  private readonly calls = new Map<number, CallInfo>()

  constructor(
    private readonly ctx: AnalyzerContext,
    private readonly transport: 'tcp' | 'udp',
    limits: Partial<OncrpcLimits> = ONCRPC_LIMITS,
  ) {
    this.limits = limits === ONCRPC_LIMITS ? ONCRPC_LIMITS : {...ONCRPC_LIMITS, ...limits}
    const mk = (): DirState => ({hdr: new Uint8Array(4), hdrLen: 0, fragLeft: 0, last: false, rec: new Uint8Array(0), recLen: 0, recTotal: 0, frags: 0, start: 0, inRecord: false, pos: 0, dead: false})
    this.st = {toserver: mk(), toclient: mk()}
  }

  heldState(): Record<string, number> {
    return {recToserver: this.st.toserver.rec.length, recToclient: this.st.toclient.rec.length, calls: this.calls.size}
  }

  data(dir: Direction, chunk: Uint8Array): void {
    const s = this.st[dir]
    const base = s.pos
    s.pos += chunk.length
    if (s.dead) return
    if (this.transport === 'udp') {
      this.record(dir, chunk, base, base, base + chunk.length, 1, chunk.length)
      return
    }
    let i = 0
    const n = chunk.length
    while (i < n) {
      if (s.fragLeft === 0) {
        if (!s.inRecord) {
          s.start = base + i
          s.inRecord = true
          s.recLen = 0
          s.recTotal = 0
          s.frags = 0
        }
        const k = Math.min(4 - s.hdrLen, n - i)
        s.hdr.set(chunk.subarray(i, i + k), s.hdrLen)
        s.hdrLen += k
        i += k
        if (s.hdrLen < 4) break
        s.hdrLen = 0
        const w = be32(s.hdr, 0)
        s.last = w >= 0x80000000
        s.fragLeft = w & 0x7fffffff
        s.frags++
        if (s.frags > this.limits.maxFragments) {
          this.ctx.anomaly({type: 'applayer', event: 'oncrpc.fragment_limit', detail: {offset: s.start, limit: this.limits.maxFragments}})
        }
        if (s.fragLeft === 0 && s.last) {
          this.finish(dir, base + i)
          continue
        }
        if (s.rec.length === 0) s.rec = new Uint8Array(Math.min(this.limits.maxRecordBytes, Math.max(s.fragLeft, 64)))
        continue
      }
      const k = Math.min(s.fragLeft, n - i)
      this.append(s, chunk.subarray(i, i + k))
      s.fragLeft -= k
      s.recTotal += k
      i += k
      if (s.fragLeft === 0 && s.last) this.finish(dir, base + i)
    }
  }

  private append(s: DirState, b: Uint8Array): void {
    const room = this.limits.maxRecordBytes - s.recLen
    const k = Math.min(room, b.length)
    if (k <= 0) return
    if (s.recLen + k > s.rec.length) {
      const nb = new Uint8Array(Math.min(this.limits.maxRecordBytes, Math.max(s.rec.length * 2, s.recLen + k)))
      nb.set(s.rec.subarray(0, s.recLen))
      s.rec = nb
    }
    s.rec.set(b.subarray(0, k), s.recLen)
    s.recLen += k
  }

  private finish(dir: Direction, end: number): void {
    const s = this.st[dir]
    const rec = s.rec.subarray(0, s.recLen)
    if (s.recTotal > this.limits.maxRecordBytes) {
      this.ctx.anomaly({type: 'applayer', event: 'oncrpc.record_too_long', detail: {offset: s.start, length: s.recTotal, limit: this.limits.maxRecordBytes}})
    }
    const frags = s.frags
    const total = s.recTotal
    s.inRecord = false
    s.rec = new Uint8Array(0)
    s.recLen = 0
    this.record(dir, rec, frags === 1 && total === rec.length ? s.start + 4 : -1, s.start, end, frags, total)
  }

  gap(dir: Direction, length: number): void {
    const s = this.st[dir]
    s.pos += length
    if (s.dead) return
    if (this.transport === 'udp') return
    this.ctx.anomaly({type: 'applayer', event: 'oncrpc.gap', detail: {length}})
    s.dead = true
    s.rec = new Uint8Array(0)
  }

  end(dir: Direction): void {
    const s = this.st[dir]
    if (!s.dead && s.inRecord) this.ctx.anomaly({type: 'applayer', event: 'oncrpc.truncated_record', detail: {offset: s.start}})
    s.inRecord = false
    s.rec = new Uint8Array(0)
    s.recLen = 0
  }

  pendingFrom(dir: Direction): number {
    const s = this.st[dir]
    return !s.dead && s.inRecord ? s.start : -1
  }

  /** one RPC message b (base = absolute offset of b[0] when contiguous, else -1) */
  private record(dir: Direction, b: Uint8Array, base: number, start: number, end: number, frags: number, total: number): void {
    const f: Fields = new Map()
    f.set('oncrpc.record.length', {v: total})
    f.set('oncrpc.fragment_count', {v: frags})
    if (total > b.length) f.set('oncrpc.truncated', {v: 1})
    const m = parseMessage(b)
    if (m.status === 'error') {
      this.ctx.anomaly({type: 'applayer', event: 'oncrpc.malformed', detail: {offset: start, reason: m.reason}})
      if (b.length >= 4) f.set('oncrpc.xid', sp(be32(b, 0), base, 0))
      this.ctx.emit({protocol: 'oncrpc', kind: 'malformed', dir, start, end, fields: f})
      return
    }
    if ('call' in m) {
      const c = m.call
      f.set('oncrpc.xid', sp(c.xid, base, 0))
      f.set('oncrpc.rpc_version', sp(c.rpcvers, base, 8))
      f.set('oncrpc.program', sp(c.prog, base, 12))
      f.set('oncrpc.version', sp(c.vers, base, 16))
      f.set('oncrpc.procedure', sp(c.proc, base, 20))
      f.set('oncrpc.cred_flavor', sp(c.credFlavor, base, 24))
      f.set('oncrpc.cred_length', sp(c.credLength, base, 28))
      f.set('oncrpc.body.length', {v: Math.max(0, total - c.argsStart)})
      const x = xdrLengths(b, c.argsStart, c.prog, c.vers, c.proc)
      f.set('oncrpc.xdr.max_length', x.maxAt >= 0 ? sp(x.max, base, x.maxAt) : {v: x.max})
      f.set('oncrpc.xdr.length_exceeds_body', {v: x.exceeds ? 1 : 0})
      if (x.exceeds) this.ctx.anomaly({type: 'applayer', event: 'oncrpc.xdr_length_exceeds_body', detail: {offset: start, length: x.max}})
      const info: CallInfo = {prog: c.prog, vers: c.vers, proc: c.proc, askProg: -1, askProto: 'tcp'}
      if (c.prog === PMAP_PROG && c.argsStart + 12 <= b.length) {
        info.askProg = be32(b, c.argsStart)
        if (c.vers === 2) info.askProto = be32(b, c.argsStart + 8) === 17 ? 'udp' : 'tcp'
        else if (c.argsStart + 12 <= b.length) {
          const nl = be32(b, c.argsStart + 8)
          if (nl <= 16 && c.argsStart + 12 + nl <= b.length) info.askProto = Buffer.from(b.subarray(c.argsStart + 12, c.argsStart + 12 + nl)).toString('latin1').startsWith('udp') ? 'udp' : 'tcp'
        }
      }
      if (!this.calls.has(c.xid) && this.calls.size >= this.limits.maxPending) {
        this.ctx.anomaly({type: 'applayer', event: 'oncrpc.call_limit', detail: {limit: this.limits.maxPending}})
        this.calls.delete(this.calls.keys().next().value as number)
      }
      this.calls.set(c.xid, info)
      this.ctx.emit({protocol: 'oncrpc', kind: 'call', dir, start, end, fields: f})
      return
    }
    const r = m.reply
    f.set('oncrpc.xid', sp(r.xid, base, 0))
    f.set('oncrpc.reply_stat', sp(r.replyStat, base, 8))
    if (r.replyStat === 0) f.set('oncrpc.accept_stat', {v: r.stat})
    else f.set('oncrpc.reject_stat', {v: r.stat})
    const call = this.calls.get(r.xid)
    this.calls.delete(r.xid)
    if (call !== undefined) {
      f.set('oncrpc.program', {v: call.prog})
      f.set('oncrpc.version', {v: call.vers})
      f.set('oncrpc.procedure', {v: call.proc})
      if (call.prog === PMAP_PROG && r.resultsStart >= 0) this.portmapReply(f, b, r.resultsStart, call)
    }
    this.ctx.emit({protocol: 'oncrpc', kind: 'reply', dir, start, end, fields: f})
  }

  private announce(f: Fields, prog: number, port: number, proto: 'tcp' | 'udp', ip: string | undefined): void {
    const host = ip === undefined || ip === '0.0.0.0' ? this.ctx.flow?.serverIp : ip
    const ports = (f.get('oncrpc.portmap.port') as FieldValue[] | undefined) ?? []
    if (ports.length >= this.limits.maxServices) return
    ports.push({v: port})
    f.set('oncrpc.portmap.port', ports)
    const progs = (f.get('oncrpc.portmap.program') as FieldValue[] | undefined) ?? []
    progs.push({v: prog})
    f.set('oncrpc.portmap.program', progs)
    if (host !== undefined && port > 0 && port < 65536) this.ctx.dynamicService?.({ip: host, port, proto, protocol: 'oncrpc', program: String(prog)})
  }

  /** RFC 1833: GETPORT (v2 proc 3) -> port; GETADDR (v3/4 proc 3) -> uaddr; DUMP (proc 4) -> list */
  private portmapReply(f: Fields, b: Uint8Array, at: number, call: CallInfo): void {
    const n = b.length
    const str = (i: number): {s: string; next: number} | null => {
      if (i + 4 > n) return null
      const len = be32(b, i)
      if (len > 1024 || i + 4 + len > n) return null
      return {s: Buffer.from(b.subarray(i + 4, i + 4 + len)).toString('latin1'), next: i + 4 + ((len + 3) & ~3)}
    }
    if (call.proc === 3) {
      if (call.vers === 2) {
        if (at + 4 <= n && call.askProg >= 0) {
          const port = be32(b, at)
          if (port !== 0) this.announce(f, call.askProg, port, call.askProto, undefined)
        }
      } else {
        const s = str(at)
        const a = s === null ? null : uaddr(s.s)
        if (a !== null && call.askProg >= 0) this.announce(f, call.askProg, a.port, call.askProto, a.ip)
      }
      return
    }
    if (call.proc !== 4) return
    let i = at
    for (let k = 0; k < this.limits.maxServices && i + 4 <= n && be32(b, i) === 1; k++) {
      i += 4
      if (call.vers === 2) {
        if (i + 16 > n) return
        this.announce(f, be32(b, i), be32(b, i + 12), be32(b, i + 8) === 17 ? 'udp' : 'tcp', undefined)
        i += 16
      } else {
        if (i + 8 > n) return
        const prog = be32(b, i)
        const netid = str(i + 8)
        if (netid === null) return
        const addr = str(netid.next)
        if (addr === null) return
        const owner = str(addr.next)
        if (owner === null) return
        i = owner.next
        const a = uaddr(addr.s)
        if (a !== null && (netid.s === 'tcp' || netid.s === 'udp')) this.announce(f, prog, a.port, netid.s, a.ip)
      }
    }
  }
}

/** TCP: a record-marking header followed by an RPC CALL with rpcvers 2 */
export function detectOncrpcTcp(dir: Direction, b: Uint8Array): boolean {
  if (dir !== 'toserver' || b.length < 20) return false
  const len = be32(b, 0) & 0x7fffffff
  return len >= 24 && be32(b, 8) === 0 && be32(b, 12) === 2
}

/** UDP: an RPC CALL with rpcvers 2 */
export function detectOncrpcUdp(dir: Direction, b: Uint8Array): boolean {
  return dir === 'toserver' && b.length >= 24 && be32(b, 4) === 0 && be32(b, 8) === 2
}
