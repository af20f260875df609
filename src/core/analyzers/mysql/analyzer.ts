/**
 * Stateful MySQL analyzer: one PDU per MySQL packet in each direction (see parser.ts for the
 * layouts). Connection phases: server greeting -> client login (or SSLRequest: both directions
 * stop, TLS follows) -> authentication exchange (OK / ERR / auth switch / more data) -> command
 * phase (one command per client packet with sequence 0, server responses classified as OK, ERR,
 * EOF, result set, rows, LOCAL INFILE request). COM_CHANGE_USER re-enters authentication, so a
 * flow may carry many login attempts: `mysql.auth_failures` counts the failed ones.
 */
import type {AnomalySink} from '../../events/anomaly.js'
import type {Analyzer, AnalyzerContext, Direction, FieldValue, Fields, Pdu} from '../types.js'
import {latin1} from '../line/text.js'
import {RecordFramer, u24le} from './records.js'
import {
  CLIENT_SECURE_CONNECTION, COM_CHANGE_USER, COM_CREATE_DB, COM_DROP_DB, COM_FIELD_LIST, COM_INIT_DB,
  COM_QUERY, COM_QUIT, COM_STMT_CLOSE, COM_STMT_PREPARE, COM_STMT_SEND_LONG_DATA, MYSQL_HEADER,
  MYSQL_MAX_PAYLOAD, commandName, findNul, parseChangeUser, parseErr, parseGreeting, parseLogin,
  type Login,
} from './parser.js'

export const MYSQL_LIMITS = {
  /** bytes held of one packet (header included); longer packets are inspected truncated (anomaly mysql.packet_too_long) */
  maxPacketBytes: 256 * 1024,
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

function span(v: string, off: number): FieldValue {
  return {v, off, len: v.length}
}

export class MysqlAnalyzer implements Analyzer {
  readonly protocol = 'mysql'
  private readonly limits: MysqlLimits
  private readonly emitPdu: (pdu: Pdu) => void
  private readonly anomalySink: AnomalySink
  private readonly cs: RecordFramer
  private readonly sc: RecordFramer
  private phase = PH_GREETING
  private serverCaps = 0
  private response = R_NONE
  private authFailures = 0
  /** the previous packet of this direction had a 0xffffff payload: this one continues it */
  private contC = false
  private contS = false
  private lastCommand = ''

  constructor(ctx: AnalyzerContext, limits: Partial<MysqlLimits> = MYSQL_LIMITS) {
    this.limits = limits === MYSQL_LIMITS ? MYSQL_LIMITS : {...MYSQL_LIMITS, ...limits}
    this.emitPdu = ctx.emit
    this.anomalySink = ctx.anomaly
    const max = Math.max(this.limits.maxPacketBytes, MYSQL_HEADER + 1)
    this.cs = new RecordFramer(MYSQL_HEADER, max, {
      recordLength: (h, o) => MYSQL_HEADER + u24le(h, o),
      onRecord: (rec, start, declared, truncated) => this.client(rec, start, declared, truncated),
      onBadHeader: () => {},
      onLost: (at, length) => this.anomaly('mysql.gap', {dir: 'toserver', offset: at, length}),
    })
    this.sc = new RecordFramer(MYSQL_HEADER, max, {
      recordLength: (h, o) => MYSQL_HEADER + u24le(h, o),
      onRecord: (rec, start, declared, truncated) => this.server(rec, start, declared, truncated),
      onBadHeader: () => {},
      onLost: (at, length) => this.anomaly('mysql.gap', {dir: 'toclient', offset: at, length}),
    })
  }

  data(dir: Direction, chunk: Uint8Array): void {
    ;(dir === 'toserver' ? this.cs : this.sc).data(chunk)
  }

  gap(dir: Direction, length: number): void {
    ;(dir === 'toserver' ? this.cs : this.sc).gap(length)
  }

  end(dir: Direction): void {
    const fr = dir === 'toserver' ? this.cs : this.sc
    if (!fr.dead && fr.held() > 0) this.anomaly('mysql.truncated_packet', {dir, offset: fr.pending(), held: fr.held()})
    fr.stop()
  }

  pendingFrom(dir: Direction): number {
    return (dir === 'toserver' ? this.cs : this.sc).pending()
  }

  /** buffer use, for tests and memory accounting */
  stats(): {held: number; capacity: number} {
    return {held: this.cs.held() + this.sc.held(), capacity: this.cs.capacity() + this.sc.capacity()}
  }

  private anomaly(event: string, detail: Record<string, number | string | boolean>): void {
    this.anomalySink({type: 'applayer', event, detail})
  }

  private base(rec: Uint8Array, start: number, declared: number, truncated: boolean): Fields {
    const f: Fields = new Map()
    f.set('mysql.packet.length', {v: declared - MYSQL_HEADER})
    f.set('mysql.seq', {v: rec[3]!})
    if (truncated) {
      f.set('mysql.packet.truncated', {v: 1})
      this.anomaly('mysql.packet_too_long', {offset: start, length: declared - MYSQL_HEADER, limit: this.limits.maxPacketBytes})
    }
    return f
  }

  private emit(kind: string, dir: Direction, start: number, declared: number, f: Fields): void {
    f.set('mysql.auth_failures', {v: this.authFailures})
    this.emitPdu({protocol: 'mysql', kind, dir, start, end: start + declared, fields: f})
  }

  // ---- client -------------------------------------------------------------------------------

  private client(rec: Uint8Array, start: number, declared: number, truncated: boolean): void {
    const f = this.base(rec, start, declared, truncated)
    const cont = this.contC
    this.contC = declared - MYSQL_HEADER === MYSQL_MAX_PAYLOAD
    if (cont) {
      f.set('mysql.continuation', {v: 1})
      this.emit('packet', 'toserver', start, declared, f)
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
          this.emit('ssl_request', 'toserver', start, declared, f)
          this.phase = PH_TLS
          this.cs.stop()
          this.sc.stop()
          return
        }
        this.loginFields(f, l, rec, start, 'mysql.login_malformed')
        f.set('mysql.capabilities', {v: l.capabilities})
        if (l.status === 'ok') {
          f.set('mysql.max_packet', {v: l.maxPacket})
          if (l.charset >= 0) f.set('mysql.charset', {v: l.charset})
        }
        this.phase = PH_AUTH
        this.emit('login', 'toserver', start, declared, f)
        return
      }
      case PH_AUTH:
        f.set('mysql.auth_response.length', {v: declared - MYSQL_HEADER})
        this.emit('auth', 'toserver', start, declared, f)
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
      f.set('mysql.user', span(latin1(rec, l.userStart, l.userEnd), start + l.userStart))
      f.set('mysql.user.length', {v: l.userEnd - l.userStart})
    }
    f.set('mysql.login.user_unterminated', {v: l.userTerminated ? 0 : 1})
    f.set('mysql.login.malformed', {v: l.malformed ? 1 : 0})
    if (l.authStart >= 0) {
      f.set('mysql.auth_response.length', {v: l.authDeclared >= 0 ? l.authDeclared : l.authAvailable})
      f.set('mysql.auth_response.available', {v: l.authAvailable})
    }
    if (l.dbStart >= 0) f.set('mysql.database', span(latin1(rec, l.dbStart, l.dbEnd), start + l.dbStart))
    if (l.pluginStart >= 0) f.set('mysql.auth_plugin', span(latin1(rec, l.pluginStart, l.pluginEnd), start + l.pluginStart))
    if (l.malformed) {
      this.anomaly(event, {offset: start, user_unterminated: !l.userTerminated, auth_declared: l.authDeclared, auth_available: l.authAvailable})
    }
  }

  private command(f: Fields, rec: Uint8Array, start: number, declared: number, truncated: boolean): void {
    const n = rec.length
    if (rec[3] !== 0 || n <= MYSQL_HEADER) {
      // LOAD DATA LOCAL file contents, long data continuation: not a command
      this.emit('packet', 'toserver', start, declared, f)
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
        f.set('mysql.query', span(latin1(rec, a, n), start + a))
        f.set('mysql.query.length', {v: declared - a})
        if (truncated) f.set('mysql.query.truncated', {v: 1})
        break
      case COM_INIT_DB:
      case COM_CREATE_DB:
      case COM_DROP_DB:
        f.set('mysql.database', span(latin1(rec, a, n), start + a))
        break
      case COM_FIELD_LIST: {
        const z = findNul(rec, a, n)
        f.set('mysql.table', span(latin1(rec, a, z < 0 ? n : z), start + a))
        break
      }
      case COM_CHANGE_USER: {
        const l = parseChangeUser(rec, (this.serverCaps & CLIENT_SECURE_CONNECTION) !== 0)
        this.loginFields(f, l, rec, start, 'mysql.change_user_malformed')
        this.phase = PH_AUTH
        break
      }
      default:
        break
    }
    if (code === 0 || code > 0x1f) this.anomaly('mysql.unknown_command', {offset: start, code})
    this.response = code === COM_QUIT || code === COM_STMT_CLOSE || code === COM_STMT_SEND_LONG_DATA || code === COM_CHANGE_USER ? R_NONE : R_FIRST
    this.emit('command', 'toserver', start, declared, f)
  }

  // ---- server -------------------------------------------------------------------------------

  private server(rec: Uint8Array, start: number, declared: number, truncated: boolean): void {
    const f = this.base(rec, start, declared, truncated)
    const cont = this.contS
    this.contS = declared - MYSQL_HEADER === MYSQL_MAX_PAYLOAD
    if (cont || rec.length <= MYSQL_HEADER) {
      this.emit('packet', 'toclient', start, declared, f)
      return
    }
    const t = rec[MYSQL_HEADER]!
    if (this.phase === PH_GREETING) {
      if (t === 0xff) {
        this.errFields(f, rec, start)
        this.emit('error', 'toclient', start, declared, f)
        return
      }
      const g = parseGreeting(rec)
      f.set('mysql.protocol_version', {v: g.protocol})
      if (g.versionStart >= 0) f.set('mysql.server_version', span(latin1(rec, g.versionStart, g.versionEnd), start + g.versionStart))
      if (g.connectionId >= 0) f.set('mysql.connection_id', {v: g.connectionId})
      f.set('mysql.server_capabilities', {v: g.capabilities})
      if (g.pluginStart >= 0) f.set('mysql.auth_plugin', span(latin1(rec, g.pluginStart, g.pluginEnd), start + g.pluginStart))
      if (g.status !== 'ok') this.anomaly('mysql.greeting_malformed', {offset: start, protocol: g.protocol})
      this.serverCaps = g.capabilities
      this.phase = PH_LOGIN
      this.emit('greeting', 'toclient', start, declared, f)
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
        f.set('mysql.auth_failed', {v: 1})
        this.errFields(f, rec, start)
        this.phase = PH_COMMAND
        this.response = R_NONE
      } else if (t === 0xfe) {
        kind = 'auth_switch'
        const a = MYSQL_HEADER + 1
        const z = findNul(rec, a, rec.length)
        if (rec.length > a) f.set('mysql.auth_plugin', span(latin1(rec, a, z < 0 ? rec.length : z), start + a))
      }
      this.emit(kind, 'toclient', start, declared, f)
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
        f.set('mysql.local_infile', span(latin1(rec, a, rec.length), start + a))
      } else kind = 'resultset'
      this.response = kind === 'resultset' ? R_RESULT : R_NONE
    } else if (t === 0xfe && declared - MYSQL_HEADER < 9) {
      kind = 'eof'
    } else {
      kind = this.response === R_RESULT ? 'row' : 'packet'
    }
    if (this.lastCommand !== '') f.set('mysql.response_to', {v: this.lastCommand})
    this.emit(kind, 'toclient', start, declared, f)
  }

  private errFields(f: Fields, rec: Uint8Array, start: number): void {
    const e = parseErr(rec)
    if (e.status !== 'ok') {
      this.anomaly('mysql.err_malformed', {offset: start})
      return
    }
    f.set('mysql.error_code', {v: e.code})
    if (e.stateStart >= 0) f.set('mysql.sql_state', span(latin1(rec, e.stateStart, e.stateStart + 5), start + e.stateStart))
    f.set('mysql.error_message', span(latin1(rec, e.msgStart, rec.length), start + e.msgStart))
  }
}
