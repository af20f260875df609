/**
 * DCE/RPC endpoint mapper enumeration over TCP 135: bind to the EPM interface, then `ept_lookup`
 * (opnum 2) with RPC_C_EP_ALL_ELTS until the server says ept_s_not_registered (or the entry
 * handle comes back empty), so every dynamically assigned ncacn_ip_tcp / ncadg_ip_udp port is
 * listed with its interface UUID. Towers are decoded by the DCE/RPC analyzer's `scanEpmTowers`,
 * one tower octet string at a time.
 *
 * C706 §12.6.3.1 connection-oriented PDU header (16 bytes):
 *   0       1       2        3        4..7          8..9        10..11      12..15
 *  +-------+-------+--------+--------+-------------+-----------+-----------+--------+
 *  | rpc_v | minor | ptype  | flags  | drep[4]     | frag_len  | auth_len  | call_id|
 *  +-------+-------+--------+--------+-------------+-----------+-----------+--------+
 * request (ptype 0) body: alloc_hint u32, p_cont_id u16, opnum u16, stub.
 * response (ptype 2) body: alloc_hint u32, p_cont_id u16, cancel_count u8, reserved u8, stub.
 *
 * ept_lookup (C706 Appendix O, ept.idl; MS-RPCE 3.1.1.5.1 for the entry handle paging):
 *   [in]  unsigned32 inquiry_type; [in,ptr] uuid_p_t object; [in,ptr] rpc_if_id_p_t interface_id;
 *   [in]  unsigned32 vers_option; [in,out] ept_lookup_handle_t *entry_handle (20 bytes);
 *   [in]  unsigned32 max_ents;
 *   [out] unsigned32 *num_ents; [out, length_is(*num_ents), size_is(max_ents)] ept_entry_t entries[];
 *   [out] error_status_t *status
 * ept_entry_t: uuid_t object; twr_p_t tower; [string] char annotation[64]
 * twr_t: unsigned32 tower_length; [size_is(tower_length)] byte tower_octet_string[]
 *
 * Everything read is bounded (EPM_LIMITS); malformed replies end the enumeration with what was
 * read so far and a reason, never an exception.
 */
import net from 'node:net'
import {INTERFACE_NAMES, parseHeader, scanEpmTowers, uuidAt, PFC_LAST_FRAG} from '../analyzers/dcerpc/parser.js'

export const EPM_PORT = 135

export const EPM_LIMITS = {
  /** ept_lookup calls per host */
  maxCalls: 64,
  /** entries asked for per call (max_ents) */
  entriesPerCall: 128,
  /** entries kept per host */
  maxEntries: 4096,
  /** largest PDU accepted (frag_length) */
  maxPduBytes: 65_535,
  /** stub bytes reassembled from fragments per response */
  maxStubBytes: 1 << 20,
  /** tower bytes decoded per entry */
  maxTowerBytes: 1024,
  connectTimeoutMs: 3000,
  /** per reply */
  readTimeoutMs: 3000,
}

const EPT_S_NOT_REGISTERED = 0x16c9a0d6
/** the endpoint mapper interface (bound by buildEpmBind) */
export const EPM_UUID = 'e1af8308-5d1f-11c9-91a4-08002b14a0fa'

export interface EpmEntry {
  uuid: string
  /** interface name (well-known UUIDs) or the registration's annotation */
  name?: string
  annotation?: string
  /** interface version major.minor (tower floor 1) */
  version: string
  proto: 'tcp' | 'udp'
  port: number
  /** address in the tower (often 0.0.0.0 or the server's) */
  ip: string
}

export interface EpmResult {
  entries: EpmEntry[]
  calls: number
  /** why enumeration stopped: done, refused, timeout, malformed, limit, fault */
  stop: 'done' | 'connect-failed' | 'timeout' | 'malformed' | 'limit' | 'fault' | 'bind-rejected'
}

export interface EpmOptions {
  port?: number
  limits?: Partial<typeof EPM_LIMITS>
}

/** bind to EPM v3.0 with NDR 2.0 (the same bytes as the DCERPCBind probe) */
export function buildEpmBind(callId = 1): Uint8Array {
  const b = Buffer.from('05000b03100000004800000001000000b810b81000000000010000000000010008' +
    '83afe11f5dc91191a408002b14a0fa03000000045d888aeb1cc9119fe808002b10486002000000', 'hex')
  b.writeUInt32LE(callId, 12)
  return b
}

/** ept_lookup request PDU: all elements, every version, continuing from `handle` (20 bytes) */
export function buildEptLookup(callId: number, handle: Uint8Array, maxEnts: number): Uint8Array {
  const stubLen = 40
  const b = Buffer.alloc(24 + stubLen)
  b.set([5, 0, 0, 3, 0x10, 0, 0, 0])
  b.writeUInt16LE(b.length, 8)
  b.writeUInt16LE(0, 10)
  b.writeUInt32LE(callId, 12)
  b.writeUInt32LE(stubLen, 16) // alloc_hint
  b.writeUInt16LE(0, 20) // context id
  b.writeUInt16LE(2, 22) // opnum 2: ept_lookup
  let o = 24
  b.writeUInt32LE(0, o); o += 4 // inquiry_type RPC_C_EP_ALL_ELTS
  b.writeUInt32LE(0, o); o += 4 // object: null
  b.writeUInt32LE(0, o); o += 4 // interface_id: null
  b.writeUInt32LE(1, o); o += 4 // vers_option RPC_C_VERS_ALL
  b.set(handle.subarray(0, 20), o); o += 20
  b.writeUInt32LE(maxEnts, o)
  return b
}

export interface LookupReply {
  handle: Uint8Array
  entries: EpmEntry[]
  status: number
  /** the stub did not parse as an ept_lookup reply */
  malformed: boolean
}

/** Parses an ept_lookup response stub (little-endian NDR). Never throws. */
export function parseEptLookupStub(stub: Uint8Array, maxEntries = EPM_LIMITS.maxEntries, maxTowerBytes = EPM_LIMITS.maxTowerBytes): LookupReply {
  const out: LookupReply = {handle: new Uint8Array(20), entries: [], status: 0, malformed: false}
  const n = stub.length
  if (n < 24) return {...out, malformed: true}
  out.handle = Uint8Array.from(stub.subarray(0, 20))
  const dv = new DataView(stub.buffer, stub.byteOffset, stub.byteLength)
  out.status = dv.getUint32(n - 4, true)
  if (n < 40) return out // no entries (e.g. a bare not-registered reply)
  const num = dv.getUint32(20, true)
  const actual = dv.getUint32(32, true)
  if (actual !== num || actual > 0x10000) return {...out, malformed: true}
  let o = 36
  const heads: {object: string; hasTower: boolean; annotation: string}[] = []
  for (let i = 0; i < actual; i++) {
    if (o + 28 > n) return {...out, malformed: true}
    const object = uuidAt(stub, o, true)
    const ptr = dv.getUint32(o + 16, true)
    const annLen = dv.getUint32(o + 24, true)
    o += 28
    if (annLen > 64 || o + annLen > n) return {...out, malformed: true}
    let annotation = ''
    for (let k = 0; k < annLen; k++) {
      const c = stub[o + k]!
      if (c === 0) break
      annotation += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '?'
    }
    o = (o + annLen + 3) & ~3
    heads.push({object, hasTower: ptr !== 0, annotation})
  }
  for (const h of heads) {
    if (!h.hasTower) continue
    if (o + 8 > n) return {...out, malformed: true}
    const len = dv.getUint32(o + 4, true)
    o += 8
    if (o + len > n) return {...out, malformed: true}
    const tower = stub.subarray(o, o + Math.min(len, maxTowerBytes))
    const towers = scanEpmTowers(tower, 1)
    // floor 1: count(2) lhs_len(2) 0x0d uuid(16) major(2) rhs_len(2) minor(2), little-endian
    const version = tower.length >= 27 && tower[4] === 0x0d ? `${tower[21]! | (tower[22]! << 8)}.${tower[25]! | (tower[26]! << 8)}` : '0.0'
    o = (o + len + 3) & ~3
    const t = towers[0]
    if (!t || out.entries.length >= maxEntries) continue
    const name = INTERFACE_NAMES[t.uuid] ?? (h.annotation || undefined)
    out.entries.push({uuid: t.uuid, name, annotation: h.annotation || undefined, version, proto: t.proto, port: t.port, ip: t.ip})
  }
  return out
}

/** One TCP association that reads whole PDUs, bounded. */
class PduReader {
  private buf: Buffer = Buffer.alloc(0)
  private waiting: ((pdu: Buffer | null) => void) | null = null
  private timer: NodeJS.Timeout | undefined
  closed = false
  constructor(private readonly sock: net.Socket, private readonly maxPdu: number) {
    sock.on('data', (d: Buffer) => {
      if (this.buf.length + d.length > maxPdu * 2) { this.fail(); return }
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d])
      this.pump()
    })
    sock.once('close', () => this.fail())
    sock.once('error', () => this.fail())
  }
  private fail(): void {
    this.closed = true
    this.deliver(null)
  }
  private deliver(p: Buffer | null): void {
    const w = this.waiting
    if (!w) return
    this.waiting = null
    clearTimeout(this.timer)
    w(p)
  }
  private pump(): void {
    if (!this.waiting || this.buf.length < 16) return
    const h = parseHeader(this.buf, 0)
    if (h.status === 'incomplete') return
    if (h.status === 'error' || h.header.fragLength > this.maxPdu || h.header.fragLength < 16) { this.buf = Buffer.alloc(0); this.fail(); return }
    const len = h.header.fragLength
    if (this.buf.length < len) return
    const pdu = this.buf.subarray(0, len)
    this.buf = this.buf.subarray(len)
    this.deliver(pdu)
  }
  next(timeoutMs: number): Promise<Buffer | null> {
    if (this.closed && this.buf.length < 16) return Promise.resolve(null)
    return new Promise((resolve) => {
      this.waiting = resolve
      this.timer = setTimeout(() => this.deliver(null), timeoutMs)
      this.pump()
    })
  }
}

function connect(host: string, port: number, timeoutMs: number): Promise<net.Socket | null> {
  return new Promise((resolve) => {
    const s = net.connect({host, port})
    const t = setTimeout(() => { s.destroy(); resolve(null) }, timeoutMs)
    s.once('connect', () => { clearTimeout(t); resolve(s) })
    s.once('error', () => { clearTimeout(t); s.destroy(); resolve(null) })
  })
}

/** Enumerates the endpoint mapper of `host`. Never throws. */
export async function eptLookupAll(host: string, o: EpmOptions = {}): Promise<EpmResult> {
  const L = {...EPM_LIMITS, ...o.limits}
  const sock = await connect(host, o.port ?? EPM_PORT, L.connectTimeoutMs)
  if (!sock) return {entries: [], calls: 0, stop: 'connect-failed'}
  const rd = new PduReader(sock, L.maxPduBytes)
  const entries: EpmEntry[] = []
  const seen = new Set<string>()
  let calls = 0
  try {
    sock.write(buildEpmBind(1))
    const ack = await rd.next(L.readTimeoutMs)
    if (!ack) return {entries, calls, stop: rd.closed ? 'malformed' : 'timeout'}
    if (ack[2] !== 12) return {entries, calls, stop: 'bind-rejected'}
    let handle: Uint8Array = new Uint8Array(20)
    for (;;) {
      if (calls >= L.maxCalls) return {entries, calls, stop: 'limit'}
      calls++
      sock.write(buildEptLookup(calls + 1, handle, L.entriesPerCall))
      const stub = await readResponse(rd, L)
      if (stub === 'fault') return {entries, calls, stop: 'fault'}
      if (stub === 'timeout') return {entries, calls, stop: 'timeout'}
      if (stub === 'malformed') return {entries, calls, stop: 'malformed'}
      const r = parseEptLookupStub(stub, L.maxEntries, L.maxTowerBytes)
      for (const e of r.entries) {
        const key = `${e.proto}/${e.port}/${e.uuid}`
        if (seen.has(key)) continue
        if (entries.length >= L.maxEntries) return {entries, calls, stop: 'limit'}
        seen.add(key)
        entries.push(e)
      }
      if (r.malformed) return {entries, calls, stop: 'malformed'}
      if (r.status === EPT_S_NOT_REGISTERED || r.status !== 0) return {entries, calls, stop: 'done'}
      if (r.handle.every((x) => x === 0) || r.entries.length === 0 && r.handle.every((x, i) => x === handle[i])) return {entries, calls, stop: 'done'}
      handle = r.handle
    }
  } finally {
    sock.destroy()
  }
}

async function readResponse(rd: PduReader, L: typeof EPM_LIMITS): Promise<Uint8Array | 'fault' | 'timeout' | 'malformed'> {
  const parts: Buffer[] = []
  let size = 0
  for (;;) {
    const pdu = await rd.next(L.readTimeoutMs)
    if (!pdu) return rd.closed ? 'malformed' : 'timeout'
    const h = parseHeader(pdu, 0)
    if (h.status !== 'ok') return 'malformed'
    if (h.header.ptype === 3) return 'fault'
    if (h.header.ptype !== 2 || !h.header.le) return 'malformed'
    const stubEnd = pdu.length - (h.header.authLength > 0 ? h.header.authLength + 8 : 0)
    if (stubEnd < 24) return 'malformed'
    const part = pdu.subarray(24, stubEnd)
    size += part.length
    if (size > L.maxStubBytes) return 'malformed'
    parts.push(Buffer.from(part))
    if (h.header.flags & PFC_LAST_FRAG) return parts.length === 1 ? parts[0] : Buffer.concat(parts)
  }
}

