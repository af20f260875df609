/** LDAPv3 analyzer (RFC 4511). */
import type {AnalyzerFactory, Direction} from '../types.js'
import {LDAP_LIMITS, LdapAnalyzer, type LdapLimits} from './analyzer.js'
import {LDAP_FIELDS} from './fields.js'
import {BER, LDAP_HEADER, Tlv, messageLength} from './parser.js'

export {LDAP_LIMITS, LdapAnalyzer, type LdapLimits} from './analyzer.js'
export {LDAP_FIELDS} from './fields.js'

/** application tags of the operations a client starts with (bind, unbind, search, modify, add, delete, modify DN, compare, abandon, extended) */
const CLIENT_OPS = new Set([0x60, 0x42, 0x63, 0x66, 0x68, 0x4a, 0x6c, 0x6e, 0x50, 0x77])

/**
 * by content (LDAP also runs on other ports than 389, e.g. 1389 for a JNDI exploit's server): a
 * client's first message is a SEQUENCE whose length covers a small INTEGER messageID followed by
 * a request's application tag
 */
export function detectLdap(dir: Direction, firstBytes: Uint8Array): boolean {
  if (dir !== 'toserver' || firstBytes.length < LDAP_HEADER) return false
  const total = messageLength(firstBytes, 0)
  if (total < 0) return false
  const t = new Tlv()
  const body = firstBytes[1]! < 0x80 ? 2 : 2 + (firstBytes[1]! & 0x7f)
  const end = Math.min(total, firstBytes.length)
  if (!t.read(firstBytes, body, end) || t.tag !== BER.INTEGER || t.ve - t.vs < 1 || t.ve - t.vs > 4 || t.ve >= end) return false
  return CLIENT_OPS.has(firstBytes[t.ve]!)
}

/** an LDAP analyzer factory with limits overridden (tests, tuning) */
export function makeLdapAnalyzer(limits: Partial<LdapLimits> = LDAP_LIMITS): AnalyzerFactory {
  return {
    protocol: 'ldap',
    fields: LDAP_FIELDS,
    ports: [389, 3268],
    transport: 'tcp',
    detect: detectLdap,
    create: (ctx) => new LdapAnalyzer(ctx, limits),
  }
}

export const ldapAnalyzer: AnalyzerFactory = makeLdapAnalyzer()
