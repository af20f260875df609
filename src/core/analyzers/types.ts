/**
 * The contract between the flow engine and the protocol analyzers, and between the analyzers and
 * the rule engine.
 *
 * The engine reassembles each TCP direction (or takes each UDP datagram) and feeds the bytes, in
 * order, to one Analyzer per flow. The analyzer parses incrementally and emits PDUs: one complete
 * protocol unit (an HTTP request head, an SMTP command line, a MySQL packet, a TLS record...)
 * with named fields. The rule engine judges each PDU; a rule's fix edits the PDU's bytes through
 * the byte spans its fields carry.
 *
 * Offsets are absolute stream offsets: byte N of a direction is the N-th byte that direction
 * delivered since the flow began (gaps count: the engine adds their length).
 */
import type {AnomalySink} from '../events/anomaly.js'

export type Direction = 'toserver' | 'toclient'

/** One value of a field. `raw` values are latin1 strings (one char per byte: binary-safe). */
export interface FieldValue {
  /** the value: latin1 string for text and bytes, number for counts and lengths, bigint for huge integers */
  v: string | number | bigint
  /** absolute stream offset of the bytes this value came from, when it maps onto the stream */
  off?: number
  /** length in stream bytes of that span */
  len?: number
}

/** Field name -> one value or many (repeated headers, several RCPT, several ranges). */
export type Fields = Map<string, FieldValue | FieldValue[]>

export interface Pdu {
  /** analyzer name: 'http', 'smtp', 'ftp', 'imap', 'pop3', 'mysql', 'tds', 'tns', 'dcerpc', 'smb', 'oncrpc', 'tls', 'mssql-ssrp', 'ldap' */
  protocol: string
  /** unit kind within the protocol: 'request', 'response', 'command', 'reply', 'packet', 'record', 'bind', ... */
  kind: string
  dir: Direction
  /** absolute stream offsets [start, end) of the whole unit */
  start: number
  end: number
  fields: Fields
}

/** What an analyzer exposes to rules: documented, so `rules lint` can reject unknown fields. */
export interface FieldSpec {
  /** full dotted name, e.g. 'http.uri.raw', 'http.header.<name>' for a family */
  name: string
  /** one line */
  description: string
  type: 'string' | 'number' | 'bigint' | 'bytes'
  /** true when the field may carry several values */
  multi?: boolean
}

export interface FlowInfo {
  clientIp: string
  clientPort: number
  serverIp: string
  serverPort: number
  transport: 'tcp' | 'udp'
}

/** What the analyzers of one engine share across its flows (src/core/analyzers/scope.ts). */
export interface EngineScope {
  /** the engine's clock: the latest packet time, in microseconds */
  nowUs(): number
  /** the engine's one object under `key`, made by `make` on first use */
  shared<T>(key: string, make: () => T): T
}

export interface AnalyzerContext {
  /** who talks to whom: analyzers compare protocol contents with it (FTP PORT to a third host) */
  flow?: FlowInfo
  /** a complete unit, for the rules to judge */
  emit(pdu: Pdu): void
  /** a protocol anomaly (type 'applayer'), e.g. 'http.cl_and_te', 'smtp.line_too_long' */
  anomaly: AnomalySink
  /**
   * Does any loaded rule read this field (a name, or a family ending in '.': any field of it), in
   * PDUs of direction `dir` (any direction when `dir` is absent: rules only judge PDUs of their
   * own direction)? An analyzer may leave out a field no rule reads (absent: every field is
   * built). The same function for every flow of an engine: an analyzer may remember its answers
   * by it.
   */
  reads?(field: string, dir?: Direction): boolean
  /**
   * A port assigned at run time that now carries a known protocol (portmapper GETPORT replies,
   * DCE/RPC endpoint-mapper replies, FTP PASV/EPSV answers): the engine and gateway start
   * inspecting it. `program` names the RPC program or interface UUID.
   */
  dynamicService?(info: {ip: string; port: number; proto: 'tcp' | 'udp'; protocol: string; program?: string}): void
  /** state shared by the flows of the engine (absent: each flow is bounded alone) */
  engine?: EngineScope
}

/**
 * One per flow (TCP) or per flow for datagram protocols (each datagram is one `data` call).
 * Incremental: any split of the same bytes into `data` calls yields the same PDUs.
 */
export interface Analyzer {
  readonly protocol: string
  data(dir: Direction, chunk: Uint8Array): void
  /** `length` bytes of this direction were never seen; resynchronise or give up on the flow */
  gap(dir: Direction, length: number): void
  end(dir: Direction): void
  /**
   * Absolute offset of the first byte of this direction that belongs to a unit not yet emitted
   * (the gateway must hold those bytes until the unit is judged), or -1 when nothing is pending.
   * Analyzers only hold what a rule may need to judge (e.g. an HTTP request head and the body
   * up to a cap), never a whole download.
   */
  pendingFrom(dir: Direction): number
}

export interface AnalyzerFactory {
  readonly protocol: string
  readonly fields: readonly FieldSpec[]
  /** default ports, for port-based selection before content detection */
  readonly ports: readonly number[]
  readonly transport: 'tcp' | 'udp'
  /**
   * Content detection on the first bytes of a flow (toserver first, or toclient for protocols
   * whose server speaks first: SMTP, FTP, IMAP, POP3, MySQL). Return true when these bytes are
   * this protocol. Must not need more than 64 bytes; may be called with fewer.
   */
  detect(dir: Direction, firstBytes: Uint8Array): boolean
  create(ctx: AnalyzerContext): Analyzer
}
