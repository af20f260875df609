/**
 * ONC RPC portmapper (rpcbind) client pieces: build a PMAPPROC_DUMP / PMAPPROC_GETPORT call and
 * parse the replies, so dynamically assigned RPC ports (rpc.statd, mountd, nlockmgr, ...)
 * become inventory services carrying their program. Stateless functions: the socket is the
 * caller's (fingerprint: active; passive: replies seen on the wire).
 *
 * RFC 5531 §9 (message), §11 (record marking over TCP: 4-byte header, bit 31 = last fragment,
 * 31 bits of length); RFC 1833 §3 (portmapper v2: DUMP = proc 4, GETPORT = proc 3).
 *
 *   call:   xid | msg_type=0 | rpcvers=2 | prog | vers | proc | cred(flavor,len,body) | verf(...)
 *   reply:  xid | msg_type=1 | reply_stat=0 (accepted) | verf(flavor,len,body) | accept_stat=0 | results
 *   DUMP results: { value_follows=1 | prog | vers | prot | port }* value_follows=0
 */

export const PMAP_PROGRAM = 100000
export const PMAP_PORT = 111
/** registrations read from one DUMP reply at most */
export const MAX_PMAP_ENTRIES = 1024
/** bytes of a record-marked reply kept at most */
export const MAX_RPC_RECORD_BYTES = 256 * 1024

/** Well-known ONC RPC programs (rpcinfo names) and the product serving them on Linux. */
export const RPC_PROGRAMS: Readonly<Record<number, {name: string; product?: string}>> = Object.freeze({
  100000: {name: 'portmapper', product: 'rpcbind/rpcbind'},
  100001: {name: 'rstatd'},
  100002: {name: 'rusersd'},
  100003: {name: 'nfs', product: 'linux/nfsd'},
  100004: {name: 'ypserv'},
  100005: {name: 'mountd', product: 'linux-nfs/nfs-utils'},
  100007: {name: 'ypbind'},
  100011: {name: 'rquotad'},
  100021: {name: 'nlockmgr', product: 'linux/lockd'},
  100024: {name: 'status', product: 'linux-nfs/nfs-utils'},
  100227: {name: 'nfs_acl', product: 'linux/nfsd'},
  100249: {name: 'snmpXdmid'},
  150001: {name: 'pcnfsd'},
  391002: {name: 'sgi_fam'},
})

export interface PmapEntry {
  program: number
  version: number
  /** 6 tcp, 17 udp */
  protocol: number
  port: number
}

function w32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff
  b[o + 1] = (v >>> 16) & 0xff
  b[o + 2] = (v >>> 8) & 0xff
  b[o + 3] = v & 0xff
}

function r32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0
}

/** A record-marked portmapper v2 call (AUTH_NULL). `args` are 32-bit words. */
export function buildPmapCall(xid: number, proc: number, args: readonly number[] = []): Uint8Array {
  const body = 40 + 4 * args.length
  const out = new Uint8Array(4 + body)
  w32(out, 0, (0x80000000 | body) >>> 0)
  const words = [xid >>> 0, 0, 2, PMAP_PROGRAM, 2, proc, 0, 0, 0, 0, ...args]
  words.forEach((w, i) => w32(out, 4 + 4 * i, w >>> 0))
  return out
}

export const buildPmapDump = (xid: number): Uint8Array => buildPmapCall(xid, 4)
export const buildPmapGetport = (xid: number, program: number, version: number, protocol: number): Uint8Array =>
  buildPmapCall(xid, 3, [program, version, protocol, 0])

export type RecordResult =
  | {status: 'complete'; record: Uint8Array; consumed: number}
  | {status: 'need'; need: number}
  | {status: 'invalid'; reason: string}

/**
 * Reassemble one record from record-marked TCP bytes (RFC 5531 §11). `need` tells how many more
 * bytes are needed (at least); lengths beyond MAX_RPC_RECORD_BYTES are invalid, not trusted.
 */
export function readRecord(data: Uint8Array, maxBytes = MAX_RPC_RECORD_BYTES): RecordResult {
  const parts: Uint8Array[] = []
  let off = 0
  let total = 0
  for (;;) {
    if (data.length - off < 4) return {status: 'need', need: off + 4 - data.length}
    const hdr = r32(data, off)
    const len = hdr & 0x7fffffff
    total += len
    if (total > maxBytes) return {status: 'invalid', reason: `record of ${total} bytes exceeds ${maxBytes}`}
    if (data.length - off - 4 < len) return {status: 'need', need: off + 4 + len - data.length}
    parts.push(data.subarray(off + 4, off + 4 + len))
    off += 4 + len
    if (hdr & 0x80000000) break
  }
  const record = parts.length === 1 ? parts[0] : Buffer.concat(parts)
  return {status: 'complete', record, consumed: off}
}

export interface RpcReply {
  xid: number
  /** accepted + SUCCESS */
  success: boolean
  /** accept_stat (0 success, 1 prog unavail, 2 prog mismatch, 3 proc unavail, 4 garbage args) or -1 when denied */
  acceptStat: number
  /** offset of the results in the record */
  resultsOffset: number
}

/** Parse an RPC reply header (no record mark). null when it is not a well-formed reply. */
export function parseRpcReply(rec: Uint8Array): RpcReply | null {
  if (rec.length < 12) return null
  const xid = r32(rec, 0)
  if (r32(rec, 4) !== 1) return null
  if (r32(rec, 8) !== 0) return {xid, success: false, acceptStat: -1, resultsOffset: rec.length}
  if (rec.length < 20) return null
  const verfLen = r32(rec, 16)
  if (verfLen > 400) return null
  const o = 20 + ((verfLen + 3) & ~3)
  if (rec.length < o + 4) return null
  const acceptStat = r32(rec, o)
  return {xid, success: acceptStat === 0, acceptStat, resultsOffset: o + 4}
}

export interface DumpResult {
  entries: PmapEntry[]
  /** the list was longer than the limit or ended early */
  truncated: boolean
}

/** Parse a PMAPPROC_DUMP reply record (after record marking). null when not a successful reply. */
export function parsePmapDumpReply(rec: Uint8Array, maxEntries = MAX_PMAP_ENTRIES): DumpResult | null {
  const h = parseRpcReply(rec)
  if (!h || !h.success) return null
  const entries: PmapEntry[] = []
  let o = h.resultsOffset
  for (;;) {
    if (o + 4 > rec.length) return {entries, truncated: true}
    if (r32(rec, o) === 0) return {entries, truncated: false}
    if (o + 20 > rec.length) return {entries, truncated: true}
    if (entries.length >= maxEntries) return {entries, truncated: true}
    const port = r32(rec, o + 16)
    entries.push({program: r32(rec, o + 4), version: r32(rec, o + 8), protocol: r32(rec, o + 12), port: port <= 65535 ? port : 0})
    o += 20
  }
}

/** Port from a GETPORT reply (0 = not registered), null when not a successful reply. */
export function parsePmapGetportReply(rec: Uint8Array): number | null {
  const h = parseRpcReply(rec)
  if (!h || !h.success || h.resultsOffset + 4 > rec.length) return null
  const p = r32(rec, h.resultsOffset)
  return p <= 65535 ? p : null
}

export interface RpcCall {
  xid: number
  program: number
  version: number
  proc: number
  /** offset of the procedure arguments */
  argsOffset: number
}

/** Parse an RPC call header (no record mark); null when not a call. */
export function parseRpcCall(rec: Uint8Array): RpcCall | null {
  if (rec.length < 40 || r32(rec, 4) !== 0 || r32(rec, 8) !== 2) return null
  const credLen = r32(rec, 28)
  if (credLen > 400) return null
  let o = 32 + ((credLen + 3) & ~3)
  if (rec.length < o + 8) return null
  const verfLen = r32(rec, o + 4)
  if (verfLen > 400) return null
  o += 8 + ((verfLen + 3) & ~3)
  if (o > rec.length) return null
  return {xid: r32(rec, 0), program: r32(rec, 12), version: r32(rec, 16), proc: r32(rec, 20), argsOffset: o}
}

export interface RpcService {
  port: number
  proto: 'tcp' | 'udp'
  program: number
  name?: string
  product?: string
  versions: number[]
}

/** Group DUMP entries by (port, protocol): one service per port with its program and versions. */
export function rpcServices(entries: readonly PmapEntry[]): RpcService[] {
  const map = new Map<string, RpcService>()
  for (const e of entries) {
    if (e.port === 0 || (e.protocol !== 6 && e.protocol !== 17)) continue
    const proto = e.protocol === 6 ? 'tcp' : 'udp'
    const key = `${proto}/${e.port}/${e.program}`
    let s = map.get(key)
    if (!s) {
      const known = RPC_PROGRAMS[e.program]
      s = {port: e.port, proto, program: e.program, name: known?.name, product: known?.product, versions: []}
      map.set(key, s)
    }
    if (!s.versions.includes(e.version)) s.versions.push(e.version)
  }
  // one port may serve several programs (nfs + nfs_acl on 2049): keep the lowest program number
  const byPort = new Map<string, RpcService>()
  for (const s of [...map.values()].sort((a, b) => a.program - b.program)) {
    const k = `${s.proto}/${s.port}`
    if (!byPort.has(k)) byPort.set(k, s)
  }
  return [...byPort.values()].map((s) => ({...s, versions: s.versions.sort((a, b) => a - b)}))
    .sort((a, b) => a.proto.localeCompare(b.proto) || a.port - b.port)
}
