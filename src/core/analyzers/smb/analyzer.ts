/**
 * SMB analyzer (MS-SMB/MS-CIFS SMB1, MS-SMB2 SMB2/3) over TCP 445 (direct, 4-byte NetBIOS
 * session header) and 139 (NetBIOS session service). One PDU per SMB1 command (AndX chains
 * split; each PDU of a chain spans the whole message, whose header they share), per SMB2 command
 * (compounds split), per compression/encryption transform header and per non-message NetBIOS
 * packet. DCE/RPC carried on named pipes (SMB1 WRITE_ANDX/READ_ANDX/TRANS TransactNmPipe, SMB2
 * WRITE/READ/IOCTL FSCTL_PIPE_TRANSCEIVE) is fed to one DcerpcConn per pipe, which emits
 * 'dcerpc' PDUs with spans in this stream. Commands chained after an SMB1 NT_CREATE_ANDX, and
 * SMB2 related operations after a CREATE, reach the pipe it opens (a provisional key until the
 * reply gives its FID / FileId).
 *
 * Limits: a NetBIOS message longer than maxMessageBytes is parsed from its first maxMessageBytes
 * bytes (smb.truncated = 1, anomaly smb.message_too_long) and the rest is skipped.
 */
import type {Analyzer, AnalyzerContext, Direction, FieldValue, Fields} from '../types.js'
import {DCERPC_LIMITS, DcerpcConn, SPARE_BUFFER_MAX, type DcerpcLimits} from '../dcerpc/conn.js'
import {
  FSCTL_PIPE_TRANSCEIVE,
  NBSS_HEADER_LEN,
  SMB1_COMMANDS,
  SMB1_HEADER_LEN,
  SMB2_COMMANDS,
  SMB2_HEADER_LEN,
  cstr,
  parseNbss,
  smbMagic,
  u16,
  u32,
  u64,
  utf16,
} from './parser.js'
import {SMB_FIELDS, type SmbField} from './fields.js'
import {fieldWants, type DirWants, type Wants} from '../wants.js'
import {decompressedLength, XCA_CORRUPT} from './xca.js'

export interface SmbLimits {
  /** bytes of one NetBIOS message held and parsed */
  maxMessageBytes: number
  /** named pipes tracked (each with its DCE/RPC state) */
  maxPipes: number
  /** outstanding requests remembered (MID/MessageId -> tree path, file name, FID) */
  maxPending: number
  /** SMB1 transactions tracked across secondaries */
  maxTransactions: number
  /** trees (TID) remembered as IPC$ */
  maxTrees: number
  /** characters kept of a name or path */
  maxNameChars: number
  /** dialects / negotiate contexts / algorithms reported */
  maxListItems: number
  /** SMB2 commands parsed in one compound message */
  maxCompound: number
  /** SMB1 commands parsed in one AndX chain (the first command included) */
  maxAndX: number
  /** bytes of TRANS_SECONDARY pipe data held until the data before them arrives (all transactions) */
  maxTransHeldBytes: number
}

export const SMB_LIMITS: Readonly<SmbLimits> = {
  maxMessageBytes: 128 * 1024,
  maxPipes: 32,
  maxPending: 256,
  maxTransactions: 32,
  maxTrees: 64,
  maxNameChars: 1024,
  maxListItems: 64,
  maxCompound: 32,
  maxAndX: 16,
  maxTransHeldBytes: 64 * 1024,
}

interface DirState {
  hdr: Uint8Array
  hdrLen: number
  /** message body being held (may be longer than `keep`), its declared length, bytes received */
  buf: Uint8Array | null
  /** bytes of the message held: min(msgLen, maxMessageBytes) */
  keep: number
  /**
   * the buffer of the last message that spanned chunks, for the next one (nothing refers to a
   * message's bytes once it was parsed: fields are copies, held TRANS_SECONDARY data is copied);
   * at most SPARE_BUFFER_MAX bytes
   */
  spare: Uint8Array
  have: number
  msgLen: number
  type: number
  start: number
  skip: number
  pos: number
  dead: boolean
}

interface Trans {
  cmd: number
  totalParam: number
  totalData: number
  gotParam: number
  gotData: number
  /** TransactNmPipe on a tracked pipe: its key, and the data bytes fed to it so far */
  pipe?: string
  fed: number
  /** secondaries' data that arrived before the data preceding it (by displacement), to feed in order */
  held?: {disp: number; data: Uint8Array; off: number}[]
  heldBytes: number
}

interface Pending {
  kind: 'tree' | 'create' | 'fid'
  name: string
  pipe: boolean
  /** create: the provisional key of the pipe it opens, fed by commands chained or related to it */
  tmp?: string
}

/** what the commands of one SMB1 AndX chain share */
interface Smb1Chain {
  /** the fields some rule reads in this direction */
  fw: Wants<SmbField>
  reply: boolean
  unicode: boolean
  tid: number
  mid: number
  msgLen: number
  /** a TREE_CONNECT_ANDX of the chain: whether its path is IPC$ (undefined: the header TID decides) */
  ipc: boolean | undefined
  /** an NT_CREATE_ANDX of the chain: its provisional pipe key, null for another file (undefined: FIDs decide) */
  open: string | null | undefined
}

/** what an SMB2 command related to the previous ones of its compound inherits (MS-SMB2 3.3.5.2.7.2) */
interface Smb2Chain {
  /** the fields some rule reads in this direction */
  fw: Wants<SmbField>
  tree: number
  /** a TREE_CONNECT of the compound: whether its path is IPC$ */
  ipc: boolean | undefined
  /** the file of the previous operation: a pipe key (maybe provisional), null for a file not tracked */
  file: string | null | undefined
}

interface Feed {
  key: string
  dir: Direction
  data: Uint8Array
  off: number
}

const smbWants = fieldWants(SMB_FIELDS)

const NO_BYTES = new Uint8Array(0)

/**
 * Word offsets (from the parameter words) of TotalParameterCount, TotalDataCount,
 * ParameterCount, ParameterOffset, ParameterDisplacement, DataCount, DataOffset,
 * DataDisplacement; -1: the request has no such word (0)
 */
const TRANS_WORDS: readonly number[] = [0, 2, 18, 20, -1, 22, 24, -1]
const SECONDARY_WORDS: readonly number[] = [0, 2, 4, 6, 8, 10, 12, 14]
const NT_TRANSACT_WORDS: readonly number[] = [3, 7, 19, 23, -1, 27, 31, -1]
const NT_SECONDARY_WORDS: readonly number[] = [3, 7, 11, 15, 19, 23, 27, 31]

const SECONDARY_OF: Readonly<Record<number, number>> = {0x26: 0x25, 0x33: 0x32, 0xa1: 0xa0}
/** SMB1 commands whose first words are AndXCommand, AndXReserved, AndXOffset (MS-CIFS 2.2.3.4) */
const ANDX_COMMANDS: ReadonlySet<number> = new Set([0x24, 0x2d, 0x2e, 0x2f, 0x73, 0x74, 0x75, 0xa2])
const IPC_PATH = /IPC\$$/i

function sp(v: string | number | bigint, off: number, len: number): FieldValue {
  return {v, off, len}
}

function addMulti(f: Fields, name: string, v: FieldValue): void {
  const cur = f.get(name)
  if (cur === undefined) f.set(name, [v])
  else if (Array.isArray(cur)) cur.push(v)
  else f.set(name, [cur, v])
}

/** an SMB2 header's MessageId as a key of `pending` (made only by the commands that remember or look up) */
function smb2Id(m: Uint8Array): string {
  return `2:${u64(m, 24)}`
}

function hexKey(b: Uint8Array, from: number): string {
  return Buffer.from(b.buffer, b.byteOffset + from, 16).toString('hex')
}

export class SmbAnalyzer implements Analyzer {
  readonly protocol = 'smb'
  private readonly limits: SmbLimits
  private readonly rpcLimits: DcerpcLimits
  private readonly st: Record<Direction, DirState>
  private readonly pipes = new Map<string, {name: string; conn: DcerpcConn | null}>()
  /** request id -> what the response needs (tree path, create name, FID of a read) */
  private readonly pending = new Map<string, Pending>()
  private readonly ipcTrees = new Set<number>()
  /**
   * transactions awaiting secondaries, by what the server finds them by (MS-CIFS 3.3.5.2.2: UID,
   * TID, PID and MID): "uid:tid:pid:mid"
   */
  private readonly trans = new Map<string, Trans>()
  /** bytes held in Trans.held, all transactions */
  private transHeld = 0
  private feeds: Feed[] = []
  /** per direction: the fields some rule reads (all without ctx.reads) */
  private readonly want: DirWants<SmbField>

  constructor(
    private readonly ctx: AnalyzerContext,
    limits: Partial<SmbLimits> = SMB_LIMITS,
    rpcLimits: Partial<DcerpcLimits> = DCERPC_LIMITS,
  ) {
    this.limits = limits === SMB_LIMITS ? SMB_LIMITS : {...SMB_LIMITS, ...limits}
    this.rpcLimits = rpcLimits === DCERPC_LIMITS ? DCERPC_LIMITS : {...DCERPC_LIMITS, ...rpcLimits}
    this.want = smbWants(ctx.reads)
    const mk = (): DirState => ({hdr: new Uint8Array(4), hdrLen: 0, buf: null, keep: 0, spare: NO_BYTES, have: 0, msgLen: 0, type: 0, start: 0, skip: 0, pos: 0, dead: false})
    this.st = {toserver: mk(), toclient: mk()}
  }

  heldState(): Record<string, number> {
    let rpc = 0
    for (const p of this.pipes.values()) if (p.conn !== null) for (const v of Object.values(p.conn.heldState())) rpc += v
    return {
      bufToserver: this.st.toserver.buf === null ? 0 : this.st.toserver.keep,
      bufToclient: this.st.toclient.buf === null ? 0 : this.st.toclient.keep,
      pipes: this.pipes.size,
      pending: this.pending.size,
      trees: this.ipcTrees.size,
      trans: this.trans.size,
      transHeld: this.transHeld,
      rpc,
    }
  }

  data(dir: Direction, chunk: Uint8Array): void {
    const s = this.st[dir]
    const base = s.pos
    s.pos += chunk.length
    if (s.dead) return
    let i = 0
    const n = chunk.length
    while (i < n && !s.dead) {
      if (s.skip > 0) {
        const k = Math.min(s.skip, n - i)
        s.skip -= k
        i += k
        continue
      }
      if (s.buf === null) {
        if (s.hdrLen === 0 && n - i >= NBSS_HEADER_LEN) {
          const h = parseNbss(chunk, i)
          if (h.status === 'error') {
            this.fail(dir, 'smb.bad_nbss', base + i)
            return
          }
          if (h.status === 'ok' && n - i - NBSS_HEADER_LEN >= h.length && h.length <= this.limits.maxMessageBytes) {
            const body = chunk.subarray(i + 4, i + 4 + h.length)
            this.message(dir, h.type, body, base + i + 4, base + i, h.length)
            i += 4 + h.length
            continue
          }
        }
        const k = Math.min(NBSS_HEADER_LEN - s.hdrLen, n - i)
        if (s.hdrLen === 0) s.start = base + i
        s.hdr.set(chunk.subarray(i, i + k), s.hdrLen)
        s.hdrLen += k
        i += k
        if (s.hdrLen < NBSS_HEADER_LEN) break
        const h = parseNbss(s.hdr, 0)
        if (h.status !== 'ok') {
          this.fail(dir, 'smb.bad_nbss', s.start)
          return
        }
        s.hdrLen = 0
        s.type = h.type
        s.msgLen = h.length
        s.have = 0
        s.keep = Math.min(h.length, this.limits.maxMessageBytes)
        s.buf = s.spare.length >= s.keep ? s.spare : new Uint8Array(s.keep)
        s.spare = NO_BYTES
        if (h.length === 0) {
          this.complete(dir)
        }
        continue
      }
      const room = s.keep - s.have
      const k = Math.min(room, n - i)
      s.buf.set(chunk.subarray(i, i + k), s.have)
      s.have += k
      i += k
      if (s.have === s.keep) this.complete(dir)
    }
  }

  private complete(dir: Direction): void {
    const s = this.st[dir]
    const held = s.buf!
    s.buf = null
    const buf = held.length === s.keep ? held : held.subarray(0, s.keep)
    const truncated = s.msgLen > buf.length
    if (truncated) {
      this.ctx.anomaly({type: 'applayer', event: 'smb.message_too_long', detail: {offset: s.start, length: s.msgLen, limit: this.limits.maxMessageBytes}})
      s.skip = s.msgLen - buf.length
    }
    this.message(dir, s.type, buf, s.start + 4, s.start, s.msgLen)
    if (held.length <= SPARE_BUFFER_MAX) s.spare = held
  }

  gap(dir: Direction, length: number): void {
    const s = this.st[dir]
    if (!s.dead && s.skip >= length && s.buf === null && s.hdrLen === 0) {
      // the gap falls inside bytes we were skipping anyway
      s.skip -= length
      s.pos += length
      return
    }
    s.pos += length
    if (s.dead) return
    this.fail(dir, 'smb.gap', s.pos - length)
  }

  end(dir: Direction): void {
    const s = this.st[dir]
    if (!s.dead && (s.buf !== null || s.hdrLen > 0)) {
      this.ctx.anomaly({type: 'applayer', event: 'smb.truncated_message', detail: {offset: s.start, have: s.have, length: s.msgLen}})
    }
    s.buf = null
    s.hdrLen = 0
    for (const p of this.pipes.values()) p.conn?.end(dir)
  }

  pendingFrom(dir: Direction): number {
    const s = this.st[dir]
    return !s.dead && (s.buf !== null || s.hdrLen > 0) ? s.start : -1
  }

  private fail(dir: Direction, event: string, offset: number): void {
    const s = this.st[dir]
    this.ctx.anomaly({type: 'applayer', event, detail: {offset}})
    s.dead = true
    s.buf = null
    s.hdrLen = 0
    for (const p of this.pipes.values()) p.conn?.gap(dir, 0)
  }

  // ---- messages -----------------------------------------------------------------------------

  /** one NetBIOS packet: m = its body (maybe truncated), mOff = absolute offset of m[0] */
  private message(dir: Direction, type: number, m: Uint8Array, mOff: number, start: number, msgLen: number): void {
    const end = start + 4 + msgLen
    const truncated = msgLen > m.length
    const fw = this.want[dir]
    if (type !== 0) {
      const f: Fields = new Map()
      if (fw['smb.netbios.type']) f.set('smb.netbios.type', sp(type, start, 1))
      if (fw['smb.message_length']) f.set('smb.message_length', {v: msgLen})
      this.ctx.emit({protocol: 'smb', kind: 'netbios', dir, start, end, fields: f})
      return
    }
    const magic = smbMagic(m, 0)
    if (magic === 0) {
      if (m.length > 0) this.ctx.anomaly({type: 'applayer', event: 'smb.bad_magic', detail: {offset: mOff}})
      return
    }
    // most messages feed no pipe: a new list only when the last one was used
    if (this.feeds.length > 0) this.feeds = []
    if (magic === 1) this.smb1(dir, m, mOff, start, end, msgLen, truncated, fw)
    else if (magic === 2) this.smb2(dir, m, mOff, start, end, msgLen, truncated, fw)
    else if (magic === 3) this.compression(dir, m, mOff, start, end, msgLen, fw)
    else {
      const f: Fields = new Map()
      if (fw['smb.version']) f.set('smb.version', {v: 3})
      if (fw['smb.message_length']) f.set('smb.message_length', {v: msgLen})
      this.ctx.emit({protocol: 'smb', kind: 'encryption_transform', dir, start, end, fields: f})
    }
    const feeds = this.feeds
    if (feeds.length === 0) return
    this.feeds = []
    for (const fd of feeds) {
      const p = this.pipes.get(fd.key)
      if (p === undefined) continue
      if (p.conn === null) {
        p.conn = new DcerpcConn(
          {emit: (pdu) => this.ctx.emit(pdu), anomaly: this.ctx.anomaly, dynamicService: this.ctx.dynamicService, serverIp: this.ctx.flow?.serverIp, reads: this.ctx.reads},
          this.rpcLimits,
        )
      }
      p.conn.data(fd.dir, fd.data, fd.off)
    }
  }

  private feed(key: string, dir: Direction, m: Uint8Array, mOff: number, from: number, count: number): void {
    if (!this.pipes.has(key) || from < 0 || count <= 0 || from >= m.length) return
    const to = Math.min(m.length, from + count)
    this.feeds.push({key, dir, data: m.subarray(from, to), off: mOff + from})
  }

  /** an SMB1 string at `p` (UTF-16LE from an even offset when `unicode`, else ASCII), NUL- or `be`-ended; `p` after alignment */
  private smb1String(m: Uint8Array, p: number, be: number, unicode: boolean): {p: number; s: string; end: number} {
    if (unicode && (p & 1) !== 0) p++
    const r = unicode ? utf16(m, p, be, this.limits.maxNameChars) : cstr(m, p, be, this.limits.maxNameChars)
    return {p, s: r.s, end: r.end}
  }

  /** a TREE_CONNECT(_ANDX) request's path at `p`: reported, remembered for the reply; null when it lies past the bytes */
  private treeRequest(m: Uint8Array, p: number, be: number, unicode: boolean, id: string, f: Fields, fw: Record<string, boolean>, mOff: number): string | null {
    const path = this.smb1String(m, p, be, unicode)
    if (path.p > be) return null
    if (fw['smb.tree']) f.set('smb.tree', sp(path.s, mOff + path.p, path.end - path.p))
    this.remember(id, {kind: 'tree', name: path.s, pipe: false})
    return path.s
  }

  /** a TREE_CONNECT(_ANDX) reply: the TID of an IPC$ tree the server granted is a pipe tree */
  private treeReply(id: string, status: number, tid: number): void {
    const pend = this.pending.get(id)
    if (pend?.kind !== 'tree') return
    this.pending.delete(id)
    if (status === 0 && IPC_PATH.test(pend.name)) this.addTree(tid)
  }

  private remember(id: string, v: Pending): void {
    if (!this.pending.has(id) && this.pending.size >= this.limits.maxPending) {
      this.ctx.anomaly({type: 'applayer', event: 'smb.pending_limit', detail: {limit: this.limits.maxPending}})
      this.pending.delete(this.pending.keys().next().value as string)
    }
    this.pending.set(id, v)
  }

  private addPipe(key: string, name: string): void {
    if (this.pipes.has(key)) return
    if (this.pipes.size >= this.limits.maxPipes) {
      this.ctx.anomaly({type: 'applayer', event: 'smb.pipe_limit', detail: {limit: this.limits.maxPipes}})
      return
    }
    this.pipes.set(key, {name, conn: null})
  }

  /** a create of a pipe succeeded: its pipe is `key` (the provisional one renamed, when there was one) */
  private openPipe(pend: Pending, key: string): void {
    const tmp = pend.tmp
    const p = tmp === undefined ? undefined : this.pipes.get(tmp)
    if (tmp === undefined || p === undefined) {
      this.addPipe(key, pend.name)
      return
    }
    this.pipes.delete(tmp)
    this.pipes.set(key, p)
    for (const q of this.pending.values()) if (q.kind === 'fid' && q.name === tmp) q.name = key
  }

  private addTree(tid: number): void {
    if (this.ipcTrees.has(tid)) return
    if (this.ipcTrees.size >= this.limits.maxTrees) {
      this.ctx.anomaly({type: 'applayer', event: 'smb.tree_limit', detail: {limit: this.limits.maxTrees}})
      return
    }
    this.ipcTrees.add(tid)
  }

  private pipeFields(f: Fields, name: FieldValue, fw: Wants<SmbField>): void {
    if (fw['smb.pipe']) f.set('smb.pipe', name)
    if (fw['smb.pipe.has_slash']) f.set('smb.pipe.has_slash', {v: typeof name.v === 'string' && name.v.includes('/') ? 1 : 0})
  }

  // ---- SMB1 (MS-SMB / MS-CIFS) --------------------------------------------------------------

  private smb1(dir: Direction, m: Uint8Array, mOff: number, start: number, end: number, msgLen: number, truncated: boolean, fw: Wants<SmbField>): void {
    const reply = m.length > 9 && (m[9]! & 0x80) !== 0
    const kind = reply ? 'smb1_response' : 'smb1_request'
    if (m.length < SMB1_HEADER_LEN + 1) {
      const f: Fields = new Map()
      if (fw['smb.version']) f.set('smb.version', {v: 1})
      if (fw['smb.message_length']) f.set('smb.message_length', {v: msgLen})
      if (truncated && fw['smb.truncated']) f.set('smb.truncated', {v: 1})
      this.ctx.anomaly({type: 'applayer', event: 'smb.malformed', detail: {offset: mOff, length: m.length}})
      this.ctx.emit({protocol: 'smb', kind, dir, start, end, fields: f})
      return
    }
    const status = u32(m, 5)
    const mid = u16(m, 30)
    const x: Smb1Chain = {fw, reply, unicode: (u16(m, 10) & 0x8000) !== 0, tid: u16(m, 24), mid, msgLen, ipc: undefined, open: undefined}
    // MS-CIFS 2.2.3.4 AndX chain: each command's block starts at its WordCount; an AndX command's
    // first words are AndXCommand(1) AndXReserved(1) AndXOffset(2, from the SMB header). One PDU
    // per command, each spanning the whole message (the header is shared).
    let cmd = m[4]!
    let cmdAt = 4
    let at = SMB1_HEADER_LEN
    let k = 0
    for (; ; k++) {
      const f = this.smb1Header(fw, m, mOff, msgLen, truncated, cmd, cmdAt)
      const wc = m[at]!
      const w = at + 1
      const bcAt = w + 2 * wc
      if (bcAt + 2 > m.length) {
        if (!truncated) this.ctx.anomaly({type: 'applayer', event: 'smb.malformed', detail: {offset: mOff + at, word_count: wc}})
        this.ctx.emit({protocol: 'smb', kind, dir, start, end, fields: f})
        break
      }
      const bs = bcAt + 2
      const be = Math.min(m.length, bs + u16(m, bcAt))
      const next = ANDX_COMMANDS.has(cmd) && wc >= 2 ? m[w]! : 0xff
      // a reply chain stops at the command that failed: the header status is the last command's
      this.smb1Command(cmd, f, m, mOff, w, wc, bs, be, k === 0 ? `1:${mid}` : `1:${mid}.${k}`, next === 0xff ? status : 0, next !== 0xff, x)
      this.ctx.emit({protocol: 'smb', kind, dir, start, end, fields: f})
      if (next === 0xff) break
      const nextAt = u16(m, w + 2)
      if (nextAt <= at || nextAt >= msgLen) {
        this.ctx.anomaly({type: 'applayer', event: 'smb.andx_bad_offset', detail: {offset: mOff + w + 2, andx_offset: nextAt, command: next}})
        break
      }
      if (nextAt >= m.length) break // past the bytes kept of a truncated message
      if (k + 1 >= this.limits.maxAndX) {
        this.ctx.anomaly({type: 'applayer', event: 'smb.andx_limit', detail: {offset: mOff + nextAt, limit: this.limits.maxAndX}})
        break
      }
      cmd = next
      cmdAt = w
      at = nextAt
    }
    // an error reply ends the chain early: the requests chained after it were not run
    if (reply && status !== 0 && this.pending.size > 0) {
      for (let j = k + 1; j < this.limits.maxAndX; j++) {
        const id = `1:${mid}.${j}`
        const p = this.pending.get(id)
        if (p === undefined) continue
        this.pending.delete(id)
        if (p.tmp !== undefined) this.pipes.delete(p.tmp)
      }
    }
  }

  private smb1Header(fw: Wants<SmbField>, m: Uint8Array, mOff: number, msgLen: number, truncated: boolean, cmd: number, cmdAt: number): Fields {
    const f: Fields = new Map()
    if (fw['smb.version']) f.set('smb.version', {v: 1})
    if (fw['smb.message_length']) f.set('smb.message_length', {v: msgLen})
    if (truncated && fw['smb.truncated']) f.set('smb.truncated', {v: 1})
    if (fw['smb.command']) f.set('smb.command', sp(cmd, mOff + cmdAt, 1))
    const name = SMB1_COMMANDS[cmd]
    if (name !== undefined && fw['smb.command.name']) f.set('smb.command.name', {v: name})
    if (fw['smb.status']) f.set('smb.status', sp(u32(m, 5), mOff + 5, 4))
    if (fw['smb.flags']) f.set('smb.flags', sp(m[9]!, mOff + 9, 1))
    if (fw['smb.flags2']) f.set('smb.flags2', sp(u16(m, 10), mOff + 10, 2))
    if (fw['smb.tid']) f.set('smb.tid', sp(u16(m, 24), mOff + 24, 2))
    if (fw['smb.uid']) f.set('smb.uid', sp(u16(m, 28), mOff + 28, 2))
    if (fw['smb.mid']) f.set('smb.mid', sp(u16(m, 30), mOff + 30, 2))
    return f
  }

  /** the pipe a FID names: the file a command chained after an NT_CREATE_ANDX opened, else `1:fid` */
  private fidKey(x: Smb1Chain, fid: number): string | null {
    return x.open !== undefined ? x.open : `1:${fid}`
  }

  /**
   * One SMB1 command (alone or chained): its words at w (wc of them), its bytes [bs, be); id keys
   * what the reply needs; status is this command's (0 for a reply's commands before the last);
   * more = another command is chained after it.
   */
  private smb1Command(cmd: number, f: Fields, m: Uint8Array, mOff: number, w: number, wc: number, bs: number, be: number, id: string, status: number, more: boolean, x: Smb1Chain): void {
    const reply = x.reply
    const fw = x.fw
    switch (cmd) {
      case 0x72:
        // the dialect strings are only a field
        if (!reply && fw['smb.dialects']) {
          let i = bs
          while (i < be) {
            if (m[i] !== 2) break
            const d = cstr(m, i + 1, be, this.limits.maxNameChars)
            addMulti(f, 'smb.dialects', sp(d.s, mOff + i + 1, d.end - i - 1))
            i = d.end + 1
            const cur = f.get('smb.dialects')
            if (Array.isArray(cur) && cur.length >= this.limits.maxListItems) break
          }
        }
        break
      case 0x75:
        if (!reply && wc >= 4) {
          const path = this.treeRequest(m, bs + u16(m, w + 6), be, x.unicode, id, f, fw, mOff)
          if (path !== null) {
            // the commands chained after it run on this tree (MS-CIFS 2.2.3.4)
            x.ipc = IPC_PATH.test(path)
            x.open = undefined
          }
        } else if (reply) {
          this.treeReply(id, status, x.tid)
        }
        break
      case 0x70:
        // MS-CIFS 2.2.4.50 SMB_COM_TREE_CONNECT (core): bytes 0x04 Path 0x04 Password 0x04 Service;
        // the reply's words are MaxBufferSize, TID. Servers still accept it (Samba reply_tcon)
        if (!reply && bs < be && m[bs] === 4) this.treeRequest(m, bs + 1, be, x.unicode, id, f, fw, mOff)
        else if (reply) this.treeReply(id, status, wc >= 2 ? u16(m, w + 2) : x.tid)
        break
      case 0x2d:
      case 0xa2:
        // NT_CREATE_ANDX (MS-CIFS 2.2.4.64: 24 words, the name is the bytes) and OPEN_ANDX
        // (2.2.4.41: 15 words, the same; Samba and Windows open a pipe on IPC$ with either)
        if (!reply && wc >= (cmd === 0xa2 ? 24 : 15)) {
          const nm = this.smb1String(m, bs, be, x.unicode)
          const v = sp(nm.s, mOff + nm.p, nm.end - nm.p)
          if (fw['smb.create.name']) f.set('smb.create.name', v)
          const pipe = x.ipc ?? this.ipcTrees.has(x.tid)
          if (pipe) this.pipeFields(f, v, fw)
          // commands chained after it use the file it opens, whose FID only the reply will tell:
          // a pipe opened so is tracked under a provisional key until then
          let tmp: string | undefined
          if (more) {
            if (pipe) {
              tmp = `1:c${id}`
              this.addPipe(tmp, nm.s)
              if (!this.pipes.has(tmp)) tmp = undefined
            }
            x.open = tmp ?? null
          }
          this.remember(id, {kind: 'create', name: nm.s, pipe, tmp})
        } else if (reply) {
          const pend = this.pending.get(id)
          if (pend?.kind === 'create') {
            this.pending.delete(id)
            // the FID follows OpLockLevel(1) in the NT_CREATE_ANDX reply, the AndX words in OPEN_ANDX's
            const fidAt = cmd === 0xa2 ? w + 5 : w + 4
            if (wc >= 3) {
              const fid = u16(m, fidAt)
              if (fw['smb.fid']) f.set('smb.fid', sp(fid, mOff + fidAt, 2))
              if (pend.pipe && status === 0) this.openPipe(pend, `1:${fid}`)
            }
            if (pend.tmp !== undefined) this.pipes.delete(pend.tmp)
          }
        }
        break
      case 0x2f:
        if (!reply && wc >= 12) {
          const fid = u16(m, w + 4)
          if (fw['smb.fid']) f.set('smb.fid', sp(fid, mOff + w + 4, 2))
          const len = u16(m, w + 20) + (u16(m, w + 18) << 16)
          let off = u16(m, w + 22)
          if (fw['smb.write.length']) f.set('smb.write.length', sp(len, mOff + w + 20, 2))
          let cnt = len
          // MS-CIFS 2.2.4.43.1: WriteMode MessageStart on a pipe: 2-byte message length first
          if ((u16(m, w + 14) & 0x08) !== 0 && m[off] !== 5 && m[off + 2] === 5) {
            off += 2
            cnt -= 2
          }
          const key = this.fidKey(x, fid)
          if (key !== null) this.feed(key, 'toserver', m, mOff, off, cnt)
        }
        break
      case 0x0b:
        // MS-CIFS 2.2.4.12 SMB_COM_WRITE: FID(2) Count(2) Offset(4) Remaining(2); bytes: 0x01 DataLength(2) Data
        if (!reply && wc >= 5 && bs + 3 <= be) {
          const fid = u16(m, w)
          if (fw['smb.fid']) f.set('smb.fid', sp(fid, mOff + w, 2))
          const key = this.fidKey(x, fid)
          if (key !== null) this.feed(key, 'toserver', m, mOff, bs + 3, u16(m, bs + 1))
        }
        break
      case 0x2e:
        if (!reply && wc >= 10) {
          const fid = u16(m, w + 4)
          if (fw['smb.fid']) f.set('smb.fid', sp(fid, mOff + w + 4, 2))
          const key = this.fidKey(x, fid)
          if (key !== null && this.pipes.has(key)) this.remember(id, {kind: 'fid', name: key, pipe: true})
        } else if (reply && wc >= 12) {
          const pend = this.pending.get(id)
          if (pend?.kind === 'fid') {
            this.pending.delete(id)
            this.feed(pend.name, 'toclient', m, mOff, u16(m, w + 12), u16(m, w + 10))
          }
        }
        break
      case 0x25:
      case 0x32:
      case 0xa0:
      case 0x26:
      case 0x33:
      case 0xa1:
        if (!reply) this.transaction(cmd, f, fw, m, mOff, w, wc, x.mid, x.msgLen, id, x.ipc ?? this.ipcTrees.has(x.tid), x.unicode, `${u16(m, 28)}:${x.tid}:${u16(m, 12) * 0x10000 + u16(m, 26)}:${x.mid}`)
        else if (cmd === 0x25 && wc >= 10) {
          const pend = this.pending.get(id)
          if (pend?.kind === 'fid') {
            this.pending.delete(id)
            this.feed(pend.name, 'toclient', m, mOff, u16(m, w + 14), u16(m, w + 12))
          }
        }
        break
      default:
        break
    }
  }

  /**
   * TRANS / TRANS2 / NT_TRANSACT requests and their secondaries (MS-CIFS 2.2.4.33, 2.2.4.46,
   * 2.2.4.62): counts, offsets, displacements; inconsistent when a displacement + count passes
   * the total, an offset + count passes the message, or a secondary follows another type.
   */
  private transaction(cmd: number, f: Fields, fw: Wants<SmbField>, m: Uint8Array, mOff: number, w: number, wc: number, mid: number, msgLen: number, id: string, pipeTree = false, unicode = false, tkey = `${mid}`): void {
    const nt = cmd === 0xa0 || cmd === 0xa1
    const secondary = cmd === 0x26 || cmd === 0x33 || cmd === 0xa1
    const need = cmd === 0xa0 ? 19 : cmd === 0xa1 ? 18 : secondary ? 8 : 14
    if (wc < need) {
      this.ctx.anomaly({type: 'applayer', event: 'smb.trans_malformed', detail: {offset: mOff, command: cmd, word_count: wc}})
      if (fw['smb.trans.inconsistent']) f.set('smb.trans.inconsistent', {v: 1})
      return
    }
    const o = cmd === 0xa0 ? NT_TRANSACT_WORDS : cmd === 0xa1 ? NT_SECONDARY_WORDS : secondary ? SECONDARY_WORDS : TRANS_WORDS
    const size = nt ? 4 : 2
    const rd = (k: number): number => (o[k]! < 0 ? 0 : nt ? u32(m, w + o[k]!) : u16(m, w + o[k]!))
    // the value as a field: with its span, or 0 without one (no such word on primaries)
    const put = (name: SmbField, k: number, v: number): void => {
      if (fw[name]) f.set(name, o[k]! < 0 ? {v} : sp(v, mOff + w + o[k]!, size))
    }
    const tp = rd(0)
    const td = rd(1)
    const pc = rd(2)
    const po = rd(3)
    const pd = rd(4)
    const dc = rd(5)
    const dof = rd(6)
    const dd = rd(7)
    put('smb.trans.total_param_count', 0, tp)
    put('smb.trans.total_data_count', 1, td)
    put('smb.trans.param_count', 2, pc)
    put('smb.trans.param_offset', 3, po)
    put('smb.trans.param_displacement', 4, pd)
    put('smb.trans.data_count', 5, dc)
    put('smb.trans.data_offset', 6, dof)
    put('smb.trans.data_displacement', 7, dd)
    let bad = po + pc > msgLen || dof + dc > msgLen
    if (cmd === 0x32 && m.length >= w + 30 && fw['smb.trans2.subcommand']) f.set('smb.trans2.subcommand', sp(u16(m, w + 28), mOff + w + 28, 2))
    if (cmd === 0xa0 && m.length >= w + 38 && fw['smb.nt_transact.function']) f.set('smb.nt_transact.function', sp(u16(m, w + 36), mOff + w + 36, 2))
    // NT_TRANSACT_CREATE (function 1, MS-CIFS 2.2.7.1): the parameters hold NameLength at 44 and
    // the name at 53 (aligned to 2 from the parameters when Unicode); on IPC$ it opens a pipe by
    // that name (Samba do_nt_transact_create_pipe), like NT_CREATE_ANDX
    if (cmd === 0xa0 && pipeTree && m.length >= w + 38 && u16(m, w + 36) === 1 && pc >= 57 && po + pc <= m.length) {
      const len = u32(m, po + 44)
      let p = po + 53
      if (unicode && (p - po) & 1) p++
      const stop = Math.min(po + pc, p + len)
      const nm = unicode ? utf16(m, p, stop, this.limits.maxNameChars) : cstr(m, p, stop, this.limits.maxNameChars)
      const v = sp(nm.s, mOff + p, nm.end - p)
      if (fw['smb.create.name']) f.set('smb.create.name', v)
      this.pipeFields(f, v, fw)
    }
    let pipe: string | undefined
    if (cmd === 0x25 && m.length >= w + 32 && m[w + 26]! >= 2) {
      const fn = u16(m, w + 28)
      const fid = u16(m, w + 30)
      if (fw['smb.trans.function']) f.set('smb.trans.function', sp(fn, mOff + w + 28, 2))
      if (fw['smb.fid']) f.set('smb.fid', sp(fid, mOff + w + 30, 2))
      if (fn === 0x26 && this.pipes.has(`1:${fid}`)) {
        pipe = `1:${fid}`
        this.feed(pipe, 'toserver', m, mOff, dof, dc)
        this.remember(id, {kind: 'fid', name: pipe, pipe: true})
      }
    }
    if (!secondary) {
      bad ||= pc > tp || dc > td
      if (pc < tp || dc < td) {
        if (!this.trans.has(tkey) && this.trans.size >= this.limits.maxTransactions) {
          this.ctx.anomaly({type: 'applayer', event: 'smb.transaction_limit', detail: {limit: this.limits.maxTransactions}})
          this.dropTrans(this.trans.keys().next().value as string)
        }
        this.dropTrans(tkey)
        this.trans.set(tkey, {cmd, totalParam: tp, totalData: td, gotParam: pc, gotData: dc, pipe, fed: dc, heldBytes: 0})
      } else {
        this.dropTrans(tkey)
      }
    } else {
      const t = this.trans.get(tkey)
      if (t === undefined) {
        if (fw['smb.trans.no_primary']) f.set('smb.trans.no_primary', {v: 1})
        bad ||= pd + pc > tp || dd + dc > td
      } else {
        const mismatch = SECONDARY_OF[cmd] !== t.cmd
        if (fw['smb.trans.type_mismatch']) f.set('smb.trans.type_mismatch', {v: mismatch ? 1 : 0})
        // the rest of a TransactNmPipe's data (a DCE/RPC request split over secondaries)
        if (t.pipe !== undefined && cmd === 0x26) this.transPipeData(t, m, mOff, dof, dd, dc)
        t.gotParam += pc
        t.gotData += dc
        bad ||= mismatch || pd + pc > t.totalParam || dd + dc > t.totalData || tp > t.totalParam || td > t.totalData
        bad ||= t.gotParam > t.totalParam || t.gotData > t.totalData
        if (fw['smb.trans.primary_total_param_count']) f.set('smb.trans.primary_total_param_count', {v: t.totalParam})
        if (fw['smb.trans.primary_total_data_count']) f.set('smb.trans.primary_total_data_count', {v: t.totalData})
        if (t.gotParam >= t.totalParam && t.gotData >= t.totalData) {
          // complete, yet data held back: the pieces overlap and leave a hole the server fills
          if (t.pipe !== undefined && t.held !== undefined && t.held.length > 0) this.outOfOrder(t, mOff, mid)
          this.dropTrans(tkey)
        }
      }
    }
    if (fw['smb.trans.inconsistent']) f.set('smb.trans.inconsistent', {v: bad ? 1 : 0})
    if (bad) this.ctx.anomaly({type: 'applayer', event: 'smb.trans_inconsistent', detail: {offset: mOff, command: cmd, mid}})
  }

  /**
   * TRANS_SECONDARY data of a TransactNmPipe at displacement `disp`: the server places each piece
   * at its displacement, so pieces are fed to the pipe in displacement order. A piece ahead of
   * the data fed so far is held (copied; bounded by maxTransHeldBytes) until the bytes before it
   * arrive; a piece over bytes already fed or held, or past TotalDataCount, would make the server
   * run other bytes than the pipe's parser saw: anomaly smb.trans.out_of_order, and the
   * transaction is no longer fed.
   */
  private transPipeData(t: Trans, m: Uint8Array, mOff: number, dof: number, disp: number, count: number): void {
    const pipe = t.pipe!
    if (count <= 0) return
    if (disp === t.fed) {
      this.feed(pipe, 'toserver', m, mOff, dof, count)
      t.fed += count
      const held = t.held
      while (held !== undefined && held.length > 0 && held[0]!.disp <= t.fed) {
        const h = held.shift()!
        t.heldBytes -= h.data.length
        this.transHeld -= h.data.length
        if (h.disp < t.fed) {
          this.outOfOrder(t, h.off, -1)
          return
        }
        this.feeds.push({key: pipe, dir: 'toserver', data: h.data, off: h.off})
        t.fed += h.data.length
      }
      return
    }
    if (disp < t.fed || disp + count > t.totalData || dof >= m.length) {
      this.outOfOrder(t, mOff + Math.min(dof, m.length), -1)
      return
    }
    const data = m.slice(dof, Math.min(m.length, dof + count))
    if (this.transHeld + data.length > this.limits.maxTransHeldBytes) {
      this.ctx.anomaly({type: 'applayer', event: 'smb.trans_held_limit', detail: {offset: mOff + dof, limit: this.limits.maxTransHeldBytes}})
      this.outOfOrder(t, mOff + dof, -1)
      return
    }
    const held = (t.held ??= [])
    let i = 0
    while (i < held.length && held[i]!.disp < disp) i++
    const prev = held[i - 1]
    const next = held[i]
    if ((prev !== undefined && prev.disp + prev.data.length > disp) || (next !== undefined && disp + data.length > next.disp)) {
      this.outOfOrder(t, mOff + dof, -1)
      return
    }
    held.splice(i, 0, {disp, data, off: mOff + dof})
    t.heldBytes += data.length
    this.transHeld += data.length
  }

  /** pipe data of transaction `t` that cannot be fed in order: anomaly; stop feeding it */
  private outOfOrder(t: Trans, offset: number, mid: number): void {
    this.ctx.anomaly({type: 'applayer', event: 'smb.trans.out_of_order', detail: mid >= 0 ? {offset, mid} : {offset}})
    this.transHeld -= t.heldBytes
    t.heldBytes = 0
    t.held = undefined
    t.pipe = undefined
  }

  private dropTrans(key: string): void {
    const t = this.trans.get(key)
    if (t === undefined) return
    this.transHeld -= t.heldBytes
    this.trans.delete(key)
  }

  // ---- SMB2/3 (MS-SMB2) ---------------------------------------------------------------------

  private smb2(dir: Direction, m: Uint8Array, mOff: number, start: number, end: number, msgLen: number, truncated: boolean, fw: Wants<SmbField>): void {
    let h = 0
    const x: Smb2Chain = {fw, tree: -1, ipc: undefined, file: undefined}
    for (let count = 0; count < this.limits.maxCompound; count++) {
      const next = m.length >= h + 24 ? u32(m, h + 20) : 0
      const cmdEnd = next >= SMB2_HEADER_LEN && h + next < msgLen ? h + next : msgLen
      const view = m.subarray(h, Math.min(m.length, cmdEnd))
      this.smb2One(dir, view, mOff + h, h === 0 ? start : mOff + h, cmdEnd === msgLen ? end : mOff + cmdEnd, cmdEnd - h, truncated && cmdEnd === msgLen, count > 0, cmdEnd < msgLen, x)
      if (cmdEnd === msgLen || cmdEnd >= m.length) return
      h = cmdEnd
      if (smbMagic(m, h) !== 2) {
        this.ctx.anomaly({type: 'applayer', event: 'smb.bad_magic', detail: {offset: mOff + h}})
        return
      }
    }
    this.ctx.anomaly({type: 'applayer', event: 'smb.compound_limit', detail: {limit: this.limits.maxCompound}})
  }

  /**
   * One SMB2 command; later = not the first of its compound, more = another follows it, x = what
   * the compound's commands share: a request with SMB2_FLAGS_RELATED_OPERATIONS runs on the tree
   * and the file of the previous operation (the file a CREATE opens is known from its reply
   * only: a pipe so opened is fed under a provisional key until then).
   */
  private smb2One(dir: Direction, m: Uint8Array, mOff: number, start: number, end: number, len: number, truncated: boolean, later: boolean, more: boolean, x: Smb2Chain): void {
    const fw = x.fw
    const f: Fields = new Map()
    if (fw['smb.version']) f.set('smb.version', {v: 2})
    if (fw['smb.message_length']) f.set('smb.message_length', {v: len})
    if (truncated && fw['smb.truncated']) f.set('smb.truncated', {v: 1})
    if (m.length < SMB2_HEADER_LEN) {
      this.ctx.anomaly({type: 'applayer', event: 'smb.malformed', detail: {offset: mOff, length: m.length}})
      this.ctx.emit({protocol: 'smb', kind: dir === 'toserver' ? 'smb2_request' : 'smb2_response', dir, start, end, fields: f})
      return
    }
    const flags = u32(m, 16)
    const reply = (flags & 1) !== 0
    const cmd = u16(m, 12)
    const status = u32(m, 8)
    const async = (flags & 2) !== 0
    const tree = async ? -1 : u32(m, 36)
    const related = later && !reply && (flags & 4) !== 0
    if (!reply && !related) {
      x.tree = tree
      x.ipc = undefined
      x.file = undefined
    }
    if (fw['smb2.command']) f.set('smb2.command', sp(cmd, mOff + 12, 2))
    if (cmd < SMB2_COMMANDS.length && fw['smb.command.name']) f.set('smb.command.name', {v: SMB2_COMMANDS[cmd]!})
    if (fw['smb2.status']) f.set('smb2.status', sp(status, mOff + 8, 4))
    if (fw['smb2.credit']) f.set('smb2.credit', sp(u16(m, 14), mOff + 14, 2))
    if (fw['smb2.flags']) f.set('smb2.flags', sp(flags, mOff + 16, 4))
    if (fw['smb2.message_id']) f.set('smb2.message_id', sp(u64(m, 24), mOff + 24, 8))
    if (tree >= 0 && fw['smb2.tree_id']) f.set('smb2.tree_id', sp(tree, mOff + 36, 4))
    if (fw['smb2.session_id']) f.set('smb2.session_id', sp(u64(m, 40), mOff + 40, 8))
    const b = SMB2_HEADER_LEN
    const have = (k: number): boolean => m.length >= b + k
    switch (cmd) {
      case 0:
        if (!reply && have(36)) {
          const cnt = u16(m, b + 2)
          if (fw['smb2.dialects']) for (let k = 0; k < cnt && k < this.limits.maxListItems && have(36 + 2 * k + 2); k++) addMulti(f, 'smb2.dialects', sp(u16(m, b + 36 + 2 * k), mOff + b + 36 + 2 * k, 2))
          this.negContexts(f, fw, m, mOff, u32(m, b + 28), u16(m, b + 32))
        } else if (reply && have(64)) {
          if (fw['smb2.negotiate.dialect']) f.set('smb2.negotiate.dialect', sp(u16(m, b + 4), mOff + b + 4, 2))
          if (u16(m, b + 4) === 0x311) this.negContexts(f, fw, m, mOff, u32(m, b + 60), u16(m, b + 6))
        }
        break
      case 3:
        if (!reply && have(8)) {
          const po = u16(m, b + 4)
          const pl = u16(m, b + 6)
          const p = utf16(m, po, po + pl, this.limits.maxNameChars)
          if (po < m.length) {
            if (fw['smb.tree']) f.set('smb.tree', sp(p.s, mOff + po, p.end - po))
            this.remember(smb2Id(m), {kind: 'tree', name: p.s, pipe: false})
            x.ipc = IPC_PATH.test(p.s)
            x.file = undefined
          }
        } else if (reply) {
          const key = smb2Id(m)
          const pend = this.pending.get(key)
          if (pend?.kind === 'tree') {
            this.pending.delete(key)
            if (status === 0 && tree >= 0 && IPC_PATH.test(pend.name)) this.addTree(tree)
          }
        }
        break
      case 5:
        if (!reply && have(48)) {
          const no = u16(m, b + 44)
          const nl = u16(m, b + 46)
          const nm = utf16(m, no, no + nl, this.limits.maxNameChars)
          const v = sp(nm.s, mOff + no, Math.max(0, nm.end - no))
          if (no < m.length && fw['smb2.create.name']) f.set('smb2.create.name', v)
          const pipe = x.ipc ?? (x.tree >= 0 && this.ipcTrees.has(x.tree))
          if (pipe) this.pipeFields(f, v, fw)
          let tmp: string | undefined
          if (more) {
            if (pipe) {
              tmp = `2:c${u64(m, 24)}`
              this.addPipe(tmp, nm.s)
              if (!this.pipes.has(tmp)) tmp = undefined
            }
            x.file = tmp ?? null
          }
          this.remember(smb2Id(m), {kind: 'create', name: nm.s, pipe, tmp})
        } else if (reply && status !== 0x103) {
          const key = smb2Id(m)
          const pend = this.pending.get(key)
          if (pend?.kind === 'create') {
            this.pending.delete(key)
            if (pend.pipe && status === 0 && have(80)) this.openPipe(pend, `2:${hexKey(m, b + 64)}`)
            if (pend.tmp !== undefined) this.pipes.delete(pend.tmp)
          }
        }
        break
      case 9:
        if (!reply && have(32)) {
          const dof = u16(m, b + 2)
          const dl = u32(m, b + 4)
          if (fw['smb2.write.length']) f.set('smb2.write.length', sp(dl, mOff + b + 4, 4))
          const key = this.smb2File(x, related, m, b + 16)
          if (key !== null) this.feed(key, 'toserver', m, mOff, dof, dl)
        }
        break
      case 8:
        if (!reply && have(32)) {
          const key = this.smb2File(x, related, m, b + 16)
          if (key !== null && this.pipes.has(key)) this.remember(smb2Id(m), {kind: 'fid', name: key, pipe: true})
        } else if (reply && have(8) && status !== 0x103) {
          const key = smb2Id(m)
          const pend = this.pending.get(key)
          if (pend?.kind === 'fid') {
            this.pending.delete(key)
            if (status === 0 || status === 0x80000005) this.feed(pend.name, 'toclient', m, mOff, m[b + 2]!, u32(m, b + 4))
          }
        }
        break
      case 11:
        if (!reply && have(32)) {
          const code = u32(m, b + 4)
          if (fw['smb2.ioctl.ctl_code']) f.set('smb2.ioctl.ctl_code', sp(code, mOff + b + 4, 4))
          const key = this.smb2File(x, related, m, b + 8)
          if (code === FSCTL_PIPE_TRANSCEIVE && key !== null && this.pipes.has(key)) {
            this.feed(key, 'toserver', m, mOff, u32(m, b + 24), u32(m, b + 28))
            this.remember(smb2Id(m), {kind: 'fid', name: key, pipe: true})
          }
        } else if (reply && have(40) && status !== 0x103) {
          const key = smb2Id(m)
          const pend = this.pending.get(key)
          if (pend?.kind === 'fid') {
            this.pending.delete(key)
            this.feed(pend.name, 'toclient', m, mOff, u32(m, b + 32), u32(m, b + 36))
          }
        }
        break
      default:
        break
    }
    this.ctx.emit({protocol: 'smb', kind: reply ? 'smb2_response' : 'smb2_request', dir, start, end, fields: f})
  }

  /**
   * The pipe key of a request's FileId at `at`: a related operation uses the file of the previous
   * operation of its compound (its own FileId, normally all 0xFF, is ignored), which it passes on.
   */
  private smb2File(x: Smb2Chain, related: boolean, m: Uint8Array, at: number): string | null {
    const key = related && x.file !== undefined ? x.file : `2:${hexKey(m, at)}`
    x.file = key
    return key
  }

  /** MS-SMB2 2.2.3.1 negotiate contexts: ContextType(2) DataLength(2) Reserved(4) Data, 8-aligned */
  private negContexts(f: Fields, fw: Wants<SmbField>, m: Uint8Array, mOff: number, off: number, count: number): void {
    let i = off
    for (let k = 0; k < count && k < this.limits.maxListItems; k++) {
      i = Math.ceil(i / 8) * 8
      if (i + 8 > m.length) {
        this.ctx.anomaly({type: 'applayer', event: 'smb2.negotiate_context_overflow', detail: {offset: mOff + i, index: k}})
        return
      }
      const type = u16(m, i)
      const dl = u16(m, i + 2)
      if (fw['smb2.negotiate.context_type']) addMulti(f, 'smb2.negotiate.context_type', sp(type, mOff + i, 2))
      const d = i + 8
      if (d + dl > m.length) {
        this.ctx.anomaly({type: 'applayer', event: 'smb2.negotiate_context_overflow', detail: {offset: mOff + i, index: k, length: dl}})
        return
      }
      if (type === 3 && dl >= 8) {
        const n = u16(m, d)
        if (fw['smb2.compression.algorithm_count']) f.set('smb2.compression.algorithm_count', sp(n, mOff + d, 2))
        if (fw['smb2.compression.algorithms']) for (let a = 0; a < n && a < this.limits.maxListItems && d + 8 + 2 * a + 2 <= d + dl; a++) addMulti(f, 'smb2.compression.algorithms', sp(u16(m, d + 8 + 2 * a), mOff + d + 8 + 2 * a, 2))
      }
      i = d + dl
    }
  }

  /**
   * MS-SMB2 2.2.42 compression transform header (SMBGhost CVE-2020-0796: size + offset overflow;
   * SMBleed CVE-2020-1206: data shorter than its declared size once decompressed)
   */
  private compression(dir: Direction, m: Uint8Array, mOff: number, start: number, end: number, msgLen: number, fw: Wants<SmbField>): void {
    const f: Fields = new Map()
    if (fw['smb.version']) f.set('smb.version', {v: 3})
    if (fw['smb.message_length']) f.set('smb.message_length', {v: msgLen})
    if (m.length < 16) {
      this.ctx.anomaly({type: 'applayer', event: 'smb.malformed', detail: {offset: mOff, length: m.length}})
    } else {
      const orig = u32(m, 4)
      const alg = u16(m, 8)
      const flags = u16(m, 10)
      const off = u32(m, 12)
      if (fw['smb2.compression.original_size']) f.set('smb2.compression.original_size', sp(orig, mOff + 4, 4))
      if (fw['smb2.compression.algorithm']) f.set('smb2.compression.algorithm', sp(alg, mOff + 8, 2))
      if (fw['smb2.compression.flags']) f.set('smb2.compression.flags', sp(flags, mOff + 10, 2))
      if (fw['smb2.compression.offset']) f.set('smb2.compression.offset', sp(off, mOff + 12, 4))
      const overflow = orig + off > 0xffffffff
      if (fw['smb2.compression.overflow']) f.set('smb2.compression.overflow', {v: overflow ? 1 : 0})
      const past = (flags & 1) === 0 && off > msgLen - 16
      if (fw['smb2.compression.offset_past_end']) f.set('smb2.compression.offset_past_end', {v: past ? 1 : 0})
      if (overflow) this.ctx.anomaly({type: 'applayer', event: 'smb2.compression_overflow', detail: {offset: mOff, original_size: orig, data_offset: off}})
      // SMBleed (CVE-2020-1206): data that decompresses to fewer bytes than declared. Sized when
      // unchained and LZNT1 or LZ77 (xca.ts); of a message held in part, when the part decides it
      if ((flags & 1) === 0 && !overflow && !past && 16 + off <= m.length) {
        const n = decompressedLength(alg, m.subarray(16 + off, Math.min(msgLen, m.length)), orig, msgLen <= m.length)
        if (n >= 0) {
          if (fw['smb2.compression.decompressed_length']) f.set('smb2.compression.decompressed_length', {v: n})
          if (n < orig) this.ctx.anomaly({type: 'applayer', event: 'smb2.compression_short', detail: {offset: mOff, original_size: orig, decompressed: n, algorithm: alg}})
        } else if (n === XCA_CORRUPT) this.ctx.anomaly({type: 'applayer', event: 'smb2.compression_corrupt', detail: {offset: mOff, algorithm: alg}})
      }
    }
    this.ctx.emit({protocol: 'smb', kind: 'compression_transform', dir, start, end, fields: f})
  }
}

/** NetBIOS session message / request followed (for messages) by an SMB magic */
export function detectSmb(_dir: Direction, b: Uint8Array): boolean {
  if (b.length < 4) return false
  const h = parseNbss(b, 0)
  if (h.status !== 'ok') return false
  if (h.type === 0x81) return _dir === 'toserver' && h.length >= 68
  if (h.type !== 0 || b.length < 8) return false
  const magic = smbMagic(b, 4)
  return magic >= 1 && magic <= 4
}
