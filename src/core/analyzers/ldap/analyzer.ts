/**
 * Stateful LDAPv3 analyzer (RFC 4511): one PDU per LDAPMessage in each direction, framed by its
 * BER length. Exposes the operation, the DN it names, bind and search parameters, result codes,
 * referrals, and the attributes of entries (search results, add, modify) with their values as
 * `ldap.attr.<type>`: what a JNDI lookup turns into a Java object (CVE-2021-44228's second
 * stage is an LDAP search result carrying javaCodeBase / javaFactory / javaSerializedData).
 *
 * After a successful StartTLS extended operation the LDAP framing stops and a TLS analyzer reads
 * both directions from the next byte, as after SMTP STARTTLS.
 */
import type {AnomalySink} from '../../events/anomaly.js'
import type {Analyzer, AnalyzerContext, Direction, Fields, FieldValue, Pdu} from '../types.js'
import {latin1} from '../line/text.js'
import {RecordFramer, addValue} from '../mysql/records.js'
import {TlsAnalyzer} from '../tls/analyzer.js'
import {BER, LDAP_HEADER, LDAP_OPS, STARTTLS_OID, Tlv, berInt, messageLength} from './parser.js'
import {LDAP_FIELDS} from './fields.js'
import {fieldWants, type DirWants, type Wants} from '../wants.js'

export const LDAP_LIMITS = {
  /** bytes held of one message; longer messages are inspected truncated (anomaly ldap.message_too_long) */
  maxMessageBytes: 256 * 1024,
  /** attribute values exposed per message (anomaly ldap.too_many_values beyond) */
  maxValues: 1024,
}

export type LdapLimits = typeof LDAP_LIMITS

/** field names `ldap.attr.<type>` kept for reuse */
const ATTR_FIELD_NAMES = 1024
const attrFieldNames = new Map<string, string>()

function attrField(type: string): string {
  let name = attrFieldNames.get(type)
  if (name === undefined) {
    name = `ldap.attr.${type}`
    if (attrFieldNames.size < ATTR_FIELD_NAMES) attrFieldNames.set(type, name)
  }
  return name
}

/** per direction, the fields some loaded rule reads: the others are left out */
const ldapWants = fieldWants(LDAP_FIELDS)

/** operation tags whose body is an LDAPResult (RFC 4511 §4.1.9) */
const RESULT_OPS = new Set([1, 5, 7, 9, 11, 13, 15, 24])

/** one message being decoded: the record, its stream offset, its fields */
interface Msg {
  rec: Uint8Array
  start: number
  f: Fields
  /** the fields read in the message's direction */
  w: Wants<string>
  /** some ldap.attr.<type> is read in it */
  attrs: boolean
  values: number
}

class Malformed extends Error {}

export class LdapAnalyzer implements Analyzer {
  readonly protocol = 'ldap'
  private readonly limits: LdapLimits
  private readonly ctx: AnalyzerContext
  private readonly emitPdu: (pdu: Pdu) => void
  private readonly anomalySink: AnomalySink
  private readonly cs: RecordFramer
  private readonly sc: RecordFramer
  private readonly tlv = new Tlv()
  /** messageID of a StartTLS request waiting for its response, or -1 */
  private startTlsId = -1
  /** the TLS layer after StartTLS */
  private inner: TlsAnalyzer | undefined
  private readonly want: DirWants<string>
  /** per direction: some ldap.attr.<type> field is read (a family: not in `want`) */
  private readonly attrs: Record<Direction, boolean>
  /** the resultCode of the LDAPResult last read */
  private code = -1

  constructor(ctx: AnalyzerContext, limits: Partial<LdapLimits> = LDAP_LIMITS) {
    this.limits = limits === LDAP_LIMITS ? LDAP_LIMITS : {...LDAP_LIMITS, ...limits}
    this.ctx = ctx
    this.emitPdu = ctx.emit
    this.anomalySink = ctx.anomaly
    this.want = ldapWants(ctx.reads)
    const reads = ctx.reads
    this.attrs = reads === undefined ? {toserver: true, toclient: true} : {toserver: reads('ldap.attr.', 'toserver'), toclient: reads('ldap.attr.', 'toclient')}
    this.cs = this.framer('toserver')
    this.sc = this.framer('toclient')
  }

  private framer(dir: Direction): RecordFramer {
    return new RecordFramer(LDAP_HEADER, Math.max(this.limits.maxMessageBytes, 64), {
      recordLength: (h, o) => messageLength(h, o),
      onRecord: (rec, start, declared, truncated) => this.message(dir, rec, start, declared, truncated),
      onBadHeader: (h, start) => this.anomaly('ldap.invalid_header', {dir, offset: start, tag: h[0]!}),
      onLost: (at, length) => this.anomaly('ldap.gap', {dir, offset: at, length}),
    })
  }

  data(dir: Direction, chunk: Uint8Array): void {
    if (this.inner) this.inner.data(dir, chunk)
    else (dir === 'toserver' ? this.cs : this.sc).data(chunk)
  }

  gap(dir: Direction, length: number): void {
    if (this.inner) this.inner.gap(dir, length)
    else (dir === 'toserver' ? this.cs : this.sc).gap(length)
  }

  end(dir: Direction): void {
    if (this.inner) {
      this.inner.end(dir)
      return
    }
    const fr = dir === 'toserver' ? this.cs : this.sc
    if (!fr.dead && fr.held() > 0) this.anomaly('ldap.truncated_message', {dir, offset: fr.pending(), held: fr.held()})
    fr.stop()
  }

  pendingFrom(dir: Direction): number {
    if (this.inner) return this.inner.pendingFrom(dir)
    return (dir === 'toserver' ? this.cs : this.sc).pending()
  }

  /** buffer use, for tests and memory accounting */
  stats(): {held: number; capacity: number; tls: boolean} {
    return {held: this.cs.held() + this.sc.held(), capacity: this.cs.capacity() + this.sc.capacity(), tls: this.inner !== undefined}
  }

  private anomaly(event: string, detail: Record<string, number | string | boolean>): void {
    this.anomalySink({type: 'applayer', event, detail})
  }

  private message(dir: Direction, rec: Uint8Array, start: number, declared: number, truncated: boolean): void {
    const f: Fields = new Map()
    const w = this.want[dir]
    if (w['ldap.length']) f.set('ldap.length', {v: declared})
    if (truncated) {
      if (w['ldap.truncated']) f.set('ldap.truncated', {v: 1})
      this.anomaly('ldap.message_too_long', {dir, offset: start, length: declared, limit: this.limits.maxMessageBytes})
    }
    const m: Msg = {rec, start, f, w, attrs: this.attrs[dir], values: 0}
    let kind = 'message'
    let id = -1
    let op = -1
    let code = -1
    let extName = ''
    try {
      const t = this.tlv
      t.error = ''
      t.clamp = truncated
      const body = rec[1]! < 0x80 ? 2 : 2 + (rec[1]! & 0x7f)
      this.need(t.read(rec, body, rec.length) && t.tag === BER.INTEGER, 'messageID')
      id = berInt(rec, t.vs, t.ve)
      this.need(Number.isInteger(id) && id >= 0, 'messageID')
      if (w['ldap.message_id']) f.set('ldap.message_id', {v: id})
      this.need(t.read(rec, t.ve, rec.length) && (t.tag & 0xc0) === 0x40, 'operation tag')
      op = t.tag & 0x1f
      kind = LDAP_OPS[op] ?? 'message'
      if (w['ldap.op']) f.set('ldap.op', {v: kind})
      if (w['ldap.op_tag']) f.set('ldap.op_tag', {v: op})
      const vs = t.vs
      const ve = t.ve
      if (RESULT_OPS.has(op)) {
        const after = this.result(m, vs, ve)
        code = this.code
        if (op === 24 && after < ve && t.read(rec, after, ve) && t.tag === 0x8a) {
          extName = latin1(rec, t.vs, t.ve)
          if (w['ldap.extended.name']) f.set('ldap.extended.name', {v: extName, off: start + t.vs, len: t.ve - t.vs})
        }
      } else {
        extName = this.operation(m, op, vs, ve)
      }
    } catch (err) {
      if (!(err instanceof Malformed)) throw err
      // a truncated message ends where it was cut: that is not a malformed message
      if (!truncated) {
        if (w['ldap.malformed']) f.set('ldap.malformed', {v: 1})
        this.anomaly('ldap.malformed', {dir, offset: start, reason: err.message, op})
      }
    }
    if (m.values > 0 && w['ldap.values']) f.set('ldap.values', {v: m.values})
    this.emitPdu({protocol: 'ldap', kind, dir, start, end: start + declared, fields: f})
    if (dir === 'toserver' && op === 23 && extName === STARTTLS_OID) this.startTlsId = id
    else if (dir === 'toclient' && op === 24 && id === this.startTlsId && id >= 0) {
      this.startTlsId = -1
      if (code === 0) this.startTls(start + declared)
    }
  }

  /** StartTLS accepted: TLS from the next byte of each direction (the client waited for this response) */
  private startTls(toClientAt: number): void {
    const inner = new TlsAnalyzer(this.ctx)
    inner.startAt('toserver', this.cs.pos)
    inner.startAt('toclient', toClientAt)
    this.cs.stop()
    this.sc.stop()
    this.inner = inner
  }

  /** the message breaks BER or RFC 4511 at `what` */
  private need(ok: boolean, what: string): void {
    if (!ok) throw new Malformed(this.tlv.error === '' ? what : `${what}: ${this.tlv.error}`)
  }

  private str(m: Msg, vs: number, ve: number): FieldValue {
    return {v: latin1(m.rec, vs, ve), off: m.start + vs, len: ve - vs}
  }

  /** read one element of `tag` at p within end; its span is in this.tlv */
  private expect(m: Msg, p: number, end: number, tag: number, what: string): void {
    const t = this.tlv
    t.error = ''
    if (!t.read(m.rec, p, end)) throw new Malformed(`${what}: ${t.error}`)
    if (t.tag !== tag) throw new Malformed(`${what}: tag 0x${t.tag.toString(16)}`)
  }

  /** an LDAPResult at [vs, ve); returns the offset after its referral (its resultCode: this.code) */
  private result(m: Msg, vs: number, ve: number): number {
    const t = this.tlv
    const f = m.f
    const w = m.w
    this.expect(m, vs, ve, BER.ENUMERATED, 'resultCode')
    this.code = berInt(m.rec, t.vs, t.ve)
    if (w['ldap.result.code']) f.set('ldap.result.code', {v: this.code})
    this.expect(m, t.ve, ve, BER.OCTET_STRING, 'matchedDN')
    if (w['ldap.result.matched_dn']) f.set('ldap.result.matched_dn', this.str(m, t.vs, t.ve))
    this.expect(m, t.ve, ve, BER.OCTET_STRING, 'diagnosticMessage')
    if (w['ldap.result.message']) f.set('ldap.result.message', this.str(m, t.vs, t.ve))
    let p = t.ve
    if (p < ve && m.rec[p] === 0xa3) {
      this.expect(m, p, ve, 0xa3, 'referral')
      const end = t.ve
      this.urls(m, t.vs, end)
      p = end
    }
    return p
  }

  /** a SEQUENCE OF URI's contents at [p, end) */
  private urls(m: Msg, p: number, end: number): void {
    const t = this.tlv
    while (p < end) {
      this.expect(m, p, end, BER.OCTET_STRING, 'URI')
      if (m.w['ldap.referral']) addValue(m.f, 'ldap.referral', this.str(m, t.vs, t.ve))
      p = t.ve
    }
  }

  /** a request or an entry; returns the extended request's name ('' otherwise) */
  private operation(m: Msg, op: number, vs: number, ve: number): string {
    const t = this.tlv
    const f = m.f
    const w = m.w
    const rec = m.rec
    switch (op) {
      case 0: { // bindRequest: version, name, authentication
        this.expect(m, vs, ve, BER.INTEGER, 'bind version')
        if (w['ldap.bind.version']) f.set('ldap.bind.version', {v: berInt(rec, t.vs, t.ve)})
        this.expect(m, t.ve, ve, BER.OCTET_STRING, 'bind name')
        if (w['ldap.dn']) f.set('ldap.dn', this.str(m, t.vs, t.ve))
        this.need(t.read(rec, t.ve, ve), 'authentication')
        const auth = w['ldap.bind.auth']
        if (t.tag === 0x80) {
          if (auth) f.set('ldap.bind.auth', {v: 'simple'})
        } else if (t.tag === 0xa3) {
          if (auth) f.set('ldap.bind.auth', {v: 'sasl'})
          this.expect(m, t.vs, t.ve, BER.OCTET_STRING, 'SASL mechanism')
          if (w['ldap.bind.mechanism']) f.set('ldap.bind.mechanism', this.str(m, t.vs, t.ve))
        } else if (auth) f.set('ldap.bind.auth', {v: 'other'})
        return ''
      }
      case 3: { // searchRequest
        this.expect(m, vs, ve, BER.OCTET_STRING, 'baseObject')
        if (w['ldap.dn']) f.set('ldap.dn', this.str(m, t.vs, t.ve))
        this.expect(m, t.ve, ve, BER.ENUMERATED, 'scope')
        if (w['ldap.search.scope']) f.set('ldap.search.scope', {v: berInt(rec, t.vs, t.ve)})
        this.expect(m, t.ve, ve, BER.ENUMERATED, 'derefAliases')
        this.expect(m, t.ve, ve, BER.INTEGER, 'sizeLimit')
        if (w['ldap.search.size_limit']) f.set('ldap.search.size_limit', {v: berInt(rec, t.vs, t.ve)})
        this.expect(m, t.ve, ve, BER.INTEGER, 'timeLimit')
        this.expect(m, t.ve, ve, BER.BOOLEAN, 'typesOnly')
        this.need(t.read(rec, t.ve, ve) && (t.tag & 0x80) !== 0, 'filter')
        if (w['ldap.search.filter.length']) f.set('ldap.search.filter.length', {v: t.ve - t.vs})
        this.expect(m, t.ve, ve, BER.SEQUENCE, 'attributes')
        let p = t.vs
        const end = t.ve
        while (p < end) {
          this.expect(m, p, end, BER.OCTET_STRING, 'attribute')
          if (w['ldap.search.attributes']) addValue(f, 'ldap.search.attributes', this.str(m, t.vs, t.ve))
          p = t.ve
        }
        return ''
      }
      case 4: // searchResEntry: objectName, PartialAttributeList
      case 8: { // addRequest: entry, AttributeList
        this.expect(m, vs, ve, BER.OCTET_STRING, 'entry name')
        if (w['ldap.dn']) f.set('ldap.dn', this.str(m, t.vs, t.ve))
        this.expect(m, t.ve, ve, BER.SEQUENCE, 'attributes')
        let p = t.vs
        const end = t.ve
        while (p < end) {
          this.expect(m, p, end, BER.SEQUENCE, 'attribute')
          const next = t.ve
          this.attribute(m, t.vs, t.ve)
          p = next
        }
        return ''
      }
      case 6: { // modifyRequest: object, changes (operation, modification)
        this.expect(m, vs, ve, BER.OCTET_STRING, 'object')
        if (w['ldap.dn']) f.set('ldap.dn', this.str(m, t.vs, t.ve))
        this.expect(m, t.ve, ve, BER.SEQUENCE, 'changes')
        let p = t.vs
        const end = t.ve
        while (p < end) {
          this.expect(m, p, end, BER.SEQUENCE, 'change')
          const next = t.ve
          const ce = t.ve
          this.expect(m, t.vs, ce, BER.ENUMERATED, 'operation')
          this.expect(m, t.ve, ce, BER.SEQUENCE, 'modification')
          this.attribute(m, t.vs, t.ve)
          p = next
        }
        return ''
      }
      case 10: // delRequest: the DN is the primitive value itself
        if (w['ldap.dn']) f.set('ldap.dn', this.str(m, vs, ve))
        return ''
      case 12: // modifyDNRequest: entry first
        this.expect(m, vs, ve, BER.OCTET_STRING, 'entry')
        if (w['ldap.dn']) f.set('ldap.dn', this.str(m, t.vs, t.ve))
        return ''
      case 14: { // compareRequest: entry, AttributeValueAssertion
        this.expect(m, vs, ve, BER.OCTET_STRING, 'entry')
        if (w['ldap.dn']) f.set('ldap.dn', this.str(m, t.vs, t.ve))
        this.expect(m, t.ve, ve, BER.SEQUENCE, 'assertion')
        const ae = t.ve
        this.expect(m, t.vs, ae, BER.OCTET_STRING, 'attribute')
        if (w['ldap.attribute']) addValue(f, 'ldap.attribute', this.str(m, t.vs, t.ve))
        const type = m.attrs ? latin1(rec, t.vs, t.ve).toLowerCase() : ''
        this.expect(m, t.ve, ae, BER.OCTET_STRING, 'assertion value')
        this.value(m, type, t.vs, t.ve)
        return ''
      }
      case 19: // searchResRef: SEQUENCE OF URI, the application tag standing for the SEQUENCE
        this.urls(m, vs, ve)
        return ''
      case 23: { // extendedReq: [0] requestName, [1] requestValue
        this.expect(m, vs, ve, 0x80, 'requestName')
        const name = latin1(rec, t.vs, t.ve)
        if (w['ldap.extended.name']) f.set('ldap.extended.name', {v: name, off: m.start + t.vs, len: t.ve - t.vs})
        return name
      }
      default:
        return ''
    }
  }

  /** one attribute: type, then a SET OF values, at [vs, ve) */
  private attribute(m: Msg, vs: number, ve: number): void {
    const t = this.tlv
    this.expect(m, vs, ve, BER.OCTET_STRING, 'attribute type')
    if (m.w['ldap.attribute']) addValue(m.f, 'ldap.attribute', this.str(m, t.vs, t.ve))
    const type = m.attrs ? latin1(m.rec, t.vs, t.ve).toLowerCase() : ''
    this.expect(m, t.ve, ve, BER.SET, 'attribute values')
    let p = t.vs
    const end = t.ve
    while (p < end) {
      this.expect(m, p, end, BER.OCTET_STRING, 'attribute value')
      this.value(m, type, t.vs, t.ve)
      p = t.ve
    }
  }

  private value(m: Msg, type: string, vs: number, ve: number): void {
    m.values++
    if (m.values > this.limits.maxValues) {
      if (m.values === this.limits.maxValues + 1) this.anomaly('ldap.too_many_values', {offset: m.start, limit: this.limits.maxValues})
      return
    }
    if (m.attrs) addValue(m.f, attrField(type), this.str(m, vs, ve))
  }
}
