/** MySQL client/server protocol analyzer (MySQL internals: Protocol::Packet, HandshakeV10, COM_*). */
import type {AnalyzerFactory, Direction} from '../types.js'
import {MYSQL_LIMITS, MysqlAnalyzer, type MysqlLimits} from './analyzer.js'
import {MYSQL_FIELDS} from './fields.js'
import {looksLikeGreeting} from './parser.js'

export {MYSQL_LIMITS, MysqlAnalyzer, type MysqlLimits} from './analyzer.js'
export {MYSQL_FIELDS} from './fields.js'
export {commandName, lenenc, looksLikeGreeting, parseChangeUser, parseErr, parseGreeting, parseLogin, parsePacketHeader} from './parser.js'

/** the server speaks first: detect the HandshakeV10 greeting toclient */
export function detectMysql(dir: Direction, firstBytes: Uint8Array): boolean {
  return dir === 'toclient' && looksLikeGreeting(firstBytes.subarray(0, 64))
}

/** a MySQL analyzer factory with limits overridden (tests, tuning) */
export function makeMysqlAnalyzer(limits: Partial<MysqlLimits> = MYSQL_LIMITS): AnalyzerFactory {
  return {
    protocol: 'mysql',
    fields: MYSQL_FIELDS,
    ports: [3306],
    transport: 'tcp',
    detect: detectMysql,
    create: (ctx) => new MysqlAnalyzer(ctx, limits),
  }
}

export const mysqlAnalyzer: AnalyzerFactory = makeMysqlAnalyzer()
