/**
 * Stateful MySQL analyzer: one PDU per MySQL packet in each direction (see parser.ts for the
 * layouts). Connection phases: server greeting -> client login (or SSLRequest: both directions
 * stop, TLS follows) -> authentication exchange (OK / ERR / auth switch / more data) -> command
 * phase (one command per client packet with sequence 0, server responses classified as OK, ERR,
 * EOF, result set, rows, LOCAL INFILE request). COM_CHANGE_USER re-enters authentication, so a
 * flow may carry many login attempts: `mysql.auth_failures` counts the failed ones.
 *
 * Compressed protocol: when the greeting and the login both set CLIENT_COMPRESS, every byte of
 * both directions after the server's OK to the login is carried in compressed packets. Each
 * direction then has two framers: `wire` cuts the stream into compressed packets and unwraps
 * them (inflated with a bounded output, or taken as is when the uncompressed length is 0), and
 * `packets` cuts the unwrapped bytes into the same MySQL packets as without compression. A PDU
 * of such a packet spans the compressed packets that carried it, [start of the one holding its
 * first byte, end of the one holding its last byte (or the current one, for a packet inspected
 * truncated)); several PDUs may share one compressed packet. String values keep their stream
 * spans only when the packet lies whole in one compressed packet sent uncompressed; values that
 * came out of zlib or straddle compressed packets have no span (a fix cannot rewrite them in
 * place). A payload that fails to inflate, or inflates to another length than declared, or
 * declares more than maxInflateBytes, or would take its direction or the whole engine over its
 * inflate budget (MYSQL_LIMITS), is an anomaly and the analyzer stops on the flow: such a flow can no longer be
 * inspected, and PP-EVASION-MYSQL-UNINSPECTABLE drops it.
 */
import {constants as zlibConstants, inflateSync} from 'node:zlib'
import type {AnomalySink} from '../../events/anomaly.js'
import type {Analyzer, AnalyzerContext, Direction, EngineScope, FieldValue, Fields, Pdu} from '../types.js'
import {ByteBudget} from '../scope.js'
import {latin1} from '../line/text.js'
import {RecordFramer, u24le} from './records.js'
import {
  CLIENT_COMPRESS, CLIENT_SECURE_CONNECTION, COM_CHANGE_USER, COM_CREATE_DB, COM_DROP_DB, COM_FIELD_LIST, COM_INIT_DB,
  COM_QUERY, COM_QUIT, COM_STMT_CLOSE, COM_STMT_PREPARE, COM_STMT_SEND_LONG_DATA, MYSQL_COMPRESSED_HEADER, MYSQL_HEADER,
  MYSQL_MAX_PAYLOAD, commandName, findNul, parseChangeUser, parseErr, parseGreeting, parseLogin,
  type Login,
} from './parser.js'

export const MYSQL_LIMITS = {
  /** bytes held of one packet (header included); longer packets are inspected truncated (anomaly mysql.packet_too_long) */
  maxPacketBytes: 256 * 1024,
  /**
   * bytes held of one compressed packet (7-byte header included); a longer one is unwrapped from
   * its first part (anomaly mysql.compressed_too_long) and the rest is skipped
   */
  maxCompressedBytes: 256 * 1024,
  /**
   * largest uncompressed length of a compressed packet that is inflated (the output buffer of one
   * inflate); above it the analyzer stops on the flow (anomaly mysql.inflate_too_large). The
   * default is the protocol's own largest (a 3-byte length): every valid packet is inflated.
   */
  maxInflateBytes: 0xffffff,
  /**
   * inflate budget of one direction: the bytes inflated so far may not exceed
   * inflateAllowanceBytes + inflateRatio x the compressed bytes received. zlib reaches ~1000:1, so
   * without it a few kilobytes a second of bombs would keep the engine inflating; a direction
   * over budget is an anomaly (mysql.inflate_budget) and the analyzer stops on the flow (the
   * rule PP-EVASION-MYSQL-UNINSPECTABLE drops such flows)
   */
  inflateAllowanceBytes: 64 * 1024 * 1024,
  inflateRatio: 100,
  /**
   * inflate budget of the whole engine (every flow's inflated bytes together, AnalyzerContext.engine):
   * refilled at engineInflateBytesPerSecond of packet time, at most engineInflateBurstBytes saved.
   * The per-flow allowance alone lets each new flow inflate 64 MB from a few kilobytes of bombs.
   * A packet that finds the engine's budget spent is an anomaly (mysql.inflate_budget, scope
   * engine) and the analyzer stops on its flow, as over its own budget.
   */
  engineInflateBytesPerSecond: 256 * 1024 * 1024,
  engineInflateBurstBytes: 512 * 1024 * 1024,
  /**
   * failed logins remembered across the flows of an engine, per client address and server
   * (AuthHistory, field mysql.source_auth_failures: CVE-2012-2122 exploits open one connection
   * per attempt): at most authHistoryEntries pairs (least recently used forgotten first), each
   * forgotten after authHistoryIdleSeconds of packet time without a login attempt of the pair
   */
  authHistoryEntries: 4096,
  authHistoryIdleSeconds: 600,
}

/**
 * Failed logins per client address and server (ip:port), shared by the MySQL flows of an engine.
 * A pair is forgotten when no login of it was attempted for `idleUs`; every attempt (also one
 * that a rule then drops) keeps it, a success does not clear it (a valid low-privilege account
 * would otherwise reset the count between guesses). Bounded: `maxEntries` pairs, LRU.
 */
export class AuthHistory {
  private readonly pairs = new Map<string, {failures: number; lastUs: number}>()

  constructor(readonly maxEntries: number, readonly idleUs: number) {}

  get size(): number {
    return this.pairs.size
  }

  /** a login attempt of `key` at `nowUs`: the failures remembered before it */
  attempt(key: string, nowUs: number): number {
    const e = this.pairs.get(key)
    if (e === undefined) return 0
    this.pairs.delete(key)
    if (nowUs - e.lastUs > this.idleUs) return 0
    e.lastUs = Math.max(e.lastUs, nowUs)
    this.pairs.set(key, e)
    return e.failures
  }

  /** a failed login of `key` at `nowUs` */
  fail(key: string, nowUs: number): void {
    let e = this.pairs.get(key)
    if (e !== undefined) this.pairs.delete(key)
    if (e === undefined || nowUs - e.lastUs > this.idleUs) e = {failures: 0, lastUs: nowUs}
    e.failures++
    e.lastUs = Math.max(e.lastUs, nowUs)
    this.pairs.set(key, e)
    while (this.pairs.size > this.maxEntries) {
      const oldest = this.pairs.keys().next().value
      if (oldest === undefined) break
      this.pairs.delete(oldest)
    }
  }
}

export type MysqlLimits = typeof MYSQL_LIMITS

const PH_GREETING = 0
const PH_LOGIN = 1
const PH_AUTH = 2
const PH_COMMAND = 3
const PH_TLS = 4

/** server responses expected in the command phase */
const R_NONE = 0
const R_FIRST = 1
const R_RESULT = 2

/** one direction's framing state */
interface Side {
  readonly dir: Direction
  /** MySQL packets: of the TCP stream until compression starts, then of the unwrapped bytes */
  packets: RecordFramer
  /** compressed packets of the TCP stream once compression is on (packets then gets their contents) */
  wire: RecordFramer | undefined
  /** the compressed packet being unwrapped: stream start and end, offset of its first unwrapped byte */
  segStart: number
  segEnd: number
  segInner: number
  /** its payload was sent as is (uncompressed length 0): unwrapped bytes are stream bytes */
  segPlain: boolean
  /** stream start of the compressed packet holding the first byte of the packet `packets` holds */
  pendStart: number
  /** compressed bytes received and bytes inflated (the inflate budget) */
  zIn: number
  zOut: number
}

export class MysqlAnalyzer implements Analyzer {
  readonly protocol = 'mysql'
  private readonly limits: MysqlLimits
  private readonly emitPdu: (pdu: Pdu) => void
  private readonly anomalySink: AnomalySink
  private readonly engine: EngineScope | undefined
  /** client address and server of the flow, the key of AuthHistory (null: no flow info or engine) */
  private readonly pairKey: string | null
  private readonly cs: Side
  private readonly sc: Side
  private phase = PH_GREETING
  private serverCaps = 0
  private clientCaps = 0
  private compressed = false
  private response = R_NONE
  private authFailures = 0
  /** the previous packet of this direction had a 0xffffff payload: this one continues it */
  private contC = false
  private contS = false
  private lastCommand = ''
  /** the packet being handled: PDU end, and the stream offset of its byte 0 (-1: its values get no span) */
  private curEnd = 0
  private spanBase = 0

  constructor(ctx: AnalyzerContext, limits: Partial<MysqlLimits> = MYSQL_LIMITS) {
    this.limits = limits === MYSQL_LIMITS ? MYSQL_LIMITS : {...MYSQL_LIMITS, ...limits}
    this.emitPdu = ctx.emit
    this.anomalySink = ctx.anomaly
    this.engine = ctx.engine
    this.pairKey = ctx.flow !== undefined && ctx.engine !== undefined ? `${ctx.flow.clientIp}|${ctx.flow.serverIp}|${ctx.flow.serverPort}` : null
    this.cs = this.side('toserver')
    this.sc = this.side('toclient')
  }

  private side(dir: Direction): Side {
    const s: Side = {dir, packets: undefined as unknown as RecordFramer, wire: undefined, segStart: 0, segEnd: 0, segInner: 0, segPlain: false, pendStart: 0, zIn: 0, zOut: 0}
    s.packets = this.packetFramer(s)
    return s
  }

  private packetFramer(s: Side): RecordFramer {
    return new RecordFramer(MYSQL_HEADER, Math.max(this.limits.maxPacketBytes, MYSQL_HEADER + 1), {
      recordLength: (h, o) => MYSQL_HEADER + u24le(h, o),
      onRecord: (rec, start, declared, truncated) => this.packet(s, rec, start, declared, truncated),
      onBadHeader: () => {},
      onLost: (at, length) => {
        if (s.wire === undefined) this.anomaly('mysql.gap', {dir: s.dir, offset: at, length})
        else this.anomaly('mysql.gap', {dir: s.dir, offset: s.segStart, length, compressed: true})
      },
    })
  }

  data(dir: Direction, chunk: Uint8Array): void {
    const s = dir === 'toserver' ? this.cs : this.sc
    if (s.wire !== undefined) {
      s.wire.data(chunk)
      return
    }
    const base = s.packets.pos
    s.packets.data(chunk)
    // compression began at a packet inside this chunk: the rest is compressed packets
    const wire = this.wireOf(s)
    if (wire !== undefined && wire.pos - base < chunk.length) wire.data(chunk.subarray(wire.pos - base))
  }

  gap(dir: Direction, length: number): void {
    const s = dir === 'toserver' ? this.cs : this.sc
    ;(s.wire ?? s.packets).gap(length)
  }

  end(dir: Direction): void {
    const s = dir === 'toserver' ? this.cs : this.sc
    const fr = s.wire ?? s.packets
    if (!fr.dead && fr.held() > 0) this.anomaly('mysql.truncated_packet', {dir, offset: fr.pending(), held: fr.held()})
    else if (s.wire !== undefined && !s.packets.dead && s.packets.held() > 0) {
      this.anomaly('mysql.truncated_packet', {dir, offset: s.pendStart, held: s.packets.held(), compressed: true})
    }
    fr.stop()
    s.packets.stop()
  }

  pendingFrom(dir: Direction): number {
    const s = dir === 'toserver' ? this.cs : this.sc
    if (s.wire === undefined) return s.packets.pending()
    if (s.wire.dead) return -1
    return s.packets.pending() >= 0 ? s.pendStart : s.wire.pending()
  }

  /** buffer use, for tests and memory accounting */
  stats(): {held: number; capacity: number} {
    let held = 0
    let capacity = 0
    for (const fr of [this.cs.packets, this.sc.packets, this.cs.wire, this.sc.wire]) {
      if (fr === undefined) continue
      held += fr.held()
      capacity += fr.capacity()
    }
    return {held, capacity}
  }

  private anomaly(event: string, detail: Record<string, number | string | boolean>): void {
    this.anomalySink({type: 'applayer', event, detail})
  }

  /** (a method so that TypeScript does not narrow `wire` across the call that may set it) */
  private wireOf(s: Side): RecordFramer | undefined {
    return s.wire
  }

  /** the engine's failed-login history, shared by its MySQL flows (one per engine and bounds) */
  private authHistory(): AuthHistory {
    const {authHistoryEntries: max, authHistoryIdleSeconds: idle} = this.limits
    return this.engine!.shared(`mysql.auth_history:${max}:${idle}`, () => new AuthHistory(max, idle * 1e6))
  }

  /** a login or COM_CHANGE_USER: the failures of earlier attempts by this client to this server */
  private sourceFailures(f: Fields): void {
    if (this.pairKey === null) return
    f.set('mysql.source_auth_failures', {v: this.authHistory().attempt(this.pairKey, this.engine!.nowUs())})
  }

  /** the engine's inflate budget, shared by its MySQL flows (one per engine and rate) */
  private engineBudget(): ByteBudget {
    const {engineInflateBytesPerSecond: rate, engineInflateBurstBytes: burst} = this.limits
    return this.engine!.shared(`mysql.inflate:${rate}:${burst}`, () => new ByteBudget(rate, burst))
  }

  private stopAll(): void {
    for (const s of [this.cs, this.sc]) {
      s.packets.stop()
      s.wire?.stop()
    }
  }

  // ---- compressed protocol -----------------------------------------------------------------

  /** the server accepted the login: both directions carry compressed packets from here on */
  private startCompression(endOfOk: number): void {
    this.compressed = true
    for (const s of [this.cs, this.sc]) {
      // the server's switch is right after its OK; the client has sent nothing since its login
      const at = s === this.sc ? endOfOk : s.packets.pos
      const misaligned = s === this.cs && s.packets.held() > 0
      s.packets.stop()
      s.packets = this.packetFramer(s)
      s.wire = new RecordFramer(MYSQL_COMPRESSED_HEADER, Math.max(this.limits.maxCompressedBytes, MYSQL_COMPRESSED_HEADER + 1), {
        recordLength: (h, o) => MYSQL_COMPRESSED_HEADER + u24le(h, o),
        onRecord: (rec, start, declared, truncated) => this.unwrap(s, rec, start, declared, truncated),
        onBadHeader: () => {},
        onLost: (gapAt, length) => this.anomaly('mysql.gap', {dir: s.dir, offset: gapAt, length}),
      })
      s.wire.pos = at
      if (misaligned) {
        // a client packet begun before the OK cannot be continued in compressed form
        this.anomaly('mysql.compress_misaligned', {dir: s.dir, offset: at})
        s.wire.stop()
        s.packets.stop()
      }
    }
  }

  /** one compressed packet: its unwrapped bytes go to the packet framer */
  private unwrap(s: Side, rec: Uint8Array, start: number, declared: number, truncated: boolean): void {
    const H = MYSQL_COMPRESSED_HEADER
    const ulen = u24le(rec, 4)
    s.segStart = start
    s.segEnd = start + declared
    s.segInner = s.packets.pos
    s.segPlain = ulen === 0
    if (truncated) {
      this.anomaly('mysql.compressed_too_long', {dir: s.dir, offset: start, length: declared - H, limit: this.limits.maxCompressedBytes})
    }
    let out: Uint8Array
    let missing: number
    if (ulen === 0) {
      out = rec.subarray(H)
      missing = declared - rec.length
    } else {
      if (ulen > this.limits.maxInflateBytes) {
        this.anomaly('mysql.inflate_too_large', {dir: s.dir, offset: start, length: ulen, limit: this.limits.maxInflateBytes})
        this.stopAll()
        return
      }
      s.zIn += declared
      s.zOut += ulen
      const budget = this.limits.inflateAllowanceBytes + this.limits.inflateRatio * s.zIn
      if (s.zOut > budget) {
        this.anomaly('mysql.inflate_budget', {dir: s.dir, offset: start, scope: 'flow', inflated: s.zOut, compressed: s.zIn, ratio: this.limits.inflateRatio, allowance: this.limits.inflateAllowanceBytes})
        this.stopAll()
        return
      }
      if (this.engine !== undefined && !this.engineBudget().take(ulen, this.engine.nowUs())) {
        this.anomaly('mysql.inflate_budget', {dir: s.dir, offset: start, scope: 'engine', length: ulen, per_second: this.limits.engineInflateBytesPerSecond, burst: this.limits.engineInflateBurstBytes})
        this.stopAll()
        return
      }
      try {
        // a truncated packet: inflate what is held (sync flush: no error for the missing end)
        out = inflateSync(rec.subarray(H), truncated ? {maxOutputLength: ulen, finishFlush: zlibConstants.Z_SYNC_FLUSH} : {maxOutputLength: ulen})
      } catch (e) {
        const reason = (e as {code?: unknown}).code === 'ERR_BUFFER_TOO_LARGE' ? 'longer_than_declared' : 'corrupt'
        this.anomaly('mysql.inflate_failed', {dir: s.dir, offset: start, length: ulen, reason})
        this.stopAll()
        return
      }
      if (!truncated && out.length !== ulen) {
        this.anomaly('mysql.inflate_failed', {dir: s.dir, offset: start, length: ulen, reason: 'shorter_than_declared'})
        this.stopAll()
        return
      }
      missing = ulen - out.length
    }
    s.packets.data(out)
    // bytes of a truncated compressed packet never seen: skipped if inside an oversized packet
    if (missing > 0) s.packets.gap(missing)
    const q = s.packets.pending()
    if (q >= s.segInner) s.pendStart = start
  }

  /** one MySQL packet (`start` is a stream offset, or an offset in the unwrapped bytes once compressed) */
  private packet(s: Side, rec: Uint8Array, start: number, declared: number, truncated: boolean): void {
    let pduStart = start
    if (s.wire === undefined) {
      this.curEnd = start + declared
      this.spanBase = start
    } else {
      // all of rec was unwrapped from the current compressed packet, or it began in an earlier one
      const here = start >= s.segInner
      pduStart = here ? s.segStart : s.pendStart
      this.curEnd = s.segEnd
      this.spanBase = here && s.segPlain ? s.segStart + MYSQL_COMPRESSED_HEADER + (start - s.segInner) : -1
    }
    if (s.dir === 'toserver') this.client(rec, pduStart, declared, truncated)
    else this.server(rec, pduStart, declared, truncated)
  }

  /** a string value at index `i` of the current packet, with its stream span when it has one */
  private at(v: string, i: number): FieldValue {
    return this.spanBase < 0 ? {v} : {v, off: this.spanBase + i, len: v.length}
  }

  private base(rec: Uint8Array, start: number, declared: number, truncated: boolean): Fields {
    const f: Fields = new Map()
    f.set('mysql.packet.length', {v: declared - MYSQL_HEADER})
    f.set('mysql.seq', {v: rec[3]!})
    if (this.compressed) f.set('mysql.compressed', {v: 1})
    if (truncated) {
      f.set('mysql.packet.truncated', {v: 1})
      this.anomaly('mysql.packet_too_long', {offset: start, length: declared - MYSQL_HEADER, limit: this.limits.maxPacketBytes})
    }
    return f
  }

  private emit(kind: string, dir: Direction, start: number, f: Fields): void {
    f.set('mysql.auth_failures', {v: this.authFailures})
    this.emitPdu({protocol: 'mysql', kind, dir, start, end: this.curEnd, fields: f})
  }

  // ---- client -------------------------------------------------------------------------------

  private client(rec: Uint8Array, start: number, declared: number, truncated: boolean): void {
    const f = this.base(rec, start, declared, truncated)
    const cont = this.contC
    this.contC = declared - MYSQL_HEADER === MYSQL_MAX_PAYLOAD
    if (cont) {
      f.set('mysql.continuation', {v: 1})
      this.emit('packet', 'toserver', start, f)
      return
    }
    switch (this.phase) {
      case PH_GREETING:
      case PH_LOGIN: {
        if (this.phase === PH_GREETING) this.anomaly('mysql.client_first', {offset: start})
        const l = parseLogin(rec)
        if (l.ssl) {
          f.set('mysql.capabilities', {v: l.capabilities})
          f.set('mysql.ssl_request', {v: 1})
          this.emit('ssl_request', 'toserver', start, f)
          this.phase = PH_TLS
          this.stopAll()
          return
        }
        this.loginFields(f, l, rec, start, 'mysql.login_malformed')
        f.set('mysql.capabilities', {v: l.capabilities})
        this.clientCaps = l.capabilities
        if (l.status === 'ok') {
          f.set('mysql.max_packet', {v: l.maxPacket})
          if (l.charset >= 0) f.set('mysql.charset', {v: l.charset})
        }
        this.phase = PH_AUTH
        this.sourceFailures(f)
        this.emit('login', 'toserver', start, f)
        return
      }
      case PH_AUTH:
        f.set('mysql.auth_response.length', {v: declared - MYSQL_HEADER})
        this.emit('auth', 'toserver', start, f)
        return
      case PH_COMMAND:
        this.command(f, rec, start, declared, truncated)
        return
      default:
        return
    }
  }

  private loginFields(f: Fields, l: Login, rec: Uint8Array, start: number, event: string): void {
    if (l.userStart >= 0) {
      f.set('mysql.user', this.at(latin1(rec, l.userStart, l.userEnd), l.userStart))
      f.set('mysql.user.length', {v: l.userEnd - l.userStart})
    }
    f.set('mysql.login.user_unterminated', {v: l.userTerminated ? 0 : 1})
    f.set('mysql.login.malformed', {v: l.malformed ? 1 : 0})
    if (l.authStart >= 0) {
      f.set('mysql.auth_response.length', {v: l.authDeclared >= 0 ? l.authDeclared : l.authAvailable})
      f.set('mysql.auth_response.available', {v: l.authAvailable})
    }
    if (l.dbStart >= 0) f.set('mysql.database', this.at(latin1(rec, l.dbStart, l.dbEnd), l.dbStart))
    if (l.pluginStart >= 0) f.set('mysql.auth_plugin', this.at(latin1(rec, l.pluginStart, l.pluginEnd), l.pluginStart))
    if (l.malformed) {
      this.anomaly(event, {offset: start, user_unterminated: !l.userTerminated, auth_declared: l.authDeclared, auth_available: l.authAvailable})
    }
  }

  private command(f: Fields, rec: Uint8Array, start: number, declared: number, truncated: boolean): void {
    const n = rec.length
    if (rec[3] !== 0 || n <= MYSQL_HEADER) {
      // LOAD DATA LOCAL file contents, long data continuation: not a command
      this.emit('packet', 'toserver', start, f)
      return
    }
    const code = rec[MYSQL_HEADER]!
    const name = commandName(code)
    this.lastCommand = name
    f.set('mysql.command', {v: name})
    f.set('mysql.command.code', {v: code})
    const a = MYSQL_HEADER + 1
    switch (code) {
      case COM_QUERY:
      case COM_STMT_PREPARE:
        f.set('mysql.query', this.at(latin1(rec, a, n), a))
        f.set('mysql.query.length', {v: declared - a})
        if (truncated) f.set('mysql.query.truncated', {v: 1})
        break
      case COM_INIT_DB:
      case COM_CREATE_DB:
      case COM_DROP_DB:
        f.set('mysql.database', this.at(latin1(rec, a, n), a))
        break
      case COM_FIELD_LIST: {
        const z = findNul(rec, a, n)
        f.set('mysql.table', this.at(latin1(rec, a, z < 0 ? n : z), a))
        break
      }
      case COM_CHANGE_USER: {
        const l = parseChangeUser(rec, (this.serverCaps & CLIENT_SECURE_CONNECTION) !== 0)
        this.loginFields(f, l, rec, start, 'mysql.change_user_malformed')
        this.phase = PH_AUTH
        this.sourceFailures(f)
        break
      }
      default:
        break
    }
    if (code === 0 || code > 0x1f) this.anomaly('mysql.unknown_command', {offset: start, code})
    this.response = code === COM_QUIT || code === COM_STMT_CLOSE || code === COM_STMT_SEND_LONG_DATA || code === COM_CHANGE_USER ? R_NONE : R_FIRST
    this.emit('command', 'toserver', start, f)
  }

  // ---- server -------------------------------------------------------------------------------

  private server(rec: Uint8Array, start: number, declared: number, truncated: boolean): void {
    const f = this.base(rec, start, declared, truncated)
    const cont = this.contS
    this.contS = declared - MYSQL_HEADER === MYSQL_MAX_PAYLOAD
    if (cont || rec.length <= MYSQL_HEADER) {
      this.emit('packet', 'toclient', start, f)
      return
    }
    const t = rec[MYSQL_HEADER]!
    if (this.phase === PH_GREETING) {
      if (t === 0xff) {
        this.errFields(f, rec, start)
        this.emit('error', 'toclient', start, f)
        return
      }
      const g = parseGreeting(rec)
      f.set('mysql.protocol_version', {v: g.protocol})
      if (g.versionStart >= 0) f.set('mysql.server_version', this.at(latin1(rec, g.versionStart, g.versionEnd), g.versionStart))
      if (g.connectionId >= 0) f.set('mysql.connection_id', {v: g.connectionId})
      f.set('mysql.server_capabilities', {v: g.capabilities})
      if (g.pluginStart >= 0) f.set('mysql.auth_plugin', this.at(latin1(rec, g.pluginStart, g.pluginEnd), g.pluginStart))
      if (g.status !== 'ok') this.anomaly('mysql.greeting_malformed', {offset: start, protocol: g.protocol})
      this.serverCaps = g.capabilities
      this.phase = PH_LOGIN
      this.emit('greeting', 'toclient', start, f)
      return
    }
    if (this.phase === PH_AUTH) {
      let kind = 'auth'
      if (t === 0x00) {
        kind = 'ok'
        this.phase = PH_COMMAND
        this.response = R_NONE
      } else if (t === 0xff) {
        kind = 'error'
        this.authFailures++
        if (this.pairKey !== null) this.authHistory().fail(this.pairKey, this.engine!.nowUs())
        f.set('mysql.auth_failed', {v: 1})
        this.errFields(f, rec, start)
        this.phase = PH_COMMAND
        this.response = R_NONE
      } else if (t === 0xfe) {
        kind = 'auth_switch'
        const a = MYSQL_HEADER + 1
        const z = findNul(rec, a, rec.length)
        if (rec.length > a) f.set('mysql.auth_plugin', this.at(latin1(rec, a, z < 0 ? rec.length : z), a))
      }
      this.emit(kind, 'toclient', start, f)
      // CLIENT_COMPRESS on both sides: compressed packets follow the OK in both directions
      if (kind === 'ok' && !this.compressed && (this.serverCaps & this.clientCaps & CLIENT_COMPRESS) !== 0) this.startCompression(this.curEnd)
      return
    }
    let kind: string
    if (t === 0xff) {
      kind = 'error'
      this.errFields(f, rec, start)
      this.response = R_NONE
    } else if (this.response === R_FIRST) {
      if (t === 0x00) kind = 'ok'
      else if (t === 0xfe && declared - MYSQL_HEADER < 9) kind = 'eof'
      else if (t === 0xfb) {
        kind = 'local_infile'
        const a = MYSQL_HEADER + 1
        f.set('mysql.local_infile', this.at(latin1(rec, a, rec.length), a))
      } else kind = 'resultset'
      this.response = kind === 'resultset' ? R_RESULT : R_NONE
    } else if (t === 0xfe && declared - MYSQL_HEADER < 9) {
      kind = 'eof'
    } else {
      kind = this.response === R_RESULT ? 'row' : 'packet'
    }
    if (this.lastCommand !== '') f.set('mysql.response_to', {v: this.lastCommand})
    this.emit(kind, 'toclient', start, f)
  }

  private errFields(f: Fields, rec: Uint8Array, start: number): void {
    const e = parseErr(rec)
    if (e.status !== 'ok') {
      this.anomaly('mysql.err_malformed', {offset: start})
      return
    }
    f.set('mysql.error_code', {v: e.code})
    if (e.stateStart >= 0) f.set('mysql.sql_state', this.at(latin1(rec, e.stateStart, e.stateStart + 5), e.stateStart))
    f.set('mysql.error_message', this.at(latin1(rec, e.msgStart, rec.length), e.msgStart))
  }
}
