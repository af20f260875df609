/**
 * Types of the virtual-patch rule language: the YAML a rule file holds (RuleDoc), the compiled
 * form the engine runs (CompiledRule) and what the engine reports (Match, Edit).
 */
import type {Direction, FieldValue} from '../analyzers/types.js'
import type {CompiledRule} from './compile.js'

export type Action = 'fix' | 'log' | 'drop'
export type RuleStatus = 'experimental' | 'test' | 'stable' | 'deprecated'
export type Severity = 'low' | 'medium' | 'high' | 'critical'

/** numeric bound: a number, or a digit string for values beyond 2^53 */
export type NumLike = number | string

export interface Bounds {
  gt?: NumLike
  gte?: NumLike
  lt?: NumLike
  lte?: NumLike
  eq?: NumLike
}

/** One matcher as written in YAML. */
export interface MatcherDoc extends Bounds {
  field?: string
  fields?: string[]
  transform?: string[]
  nocase?: boolean
  equals?: string | string[]
  contains?: string | string[]
  startswith?: string | string[]
  endswith?: string | string[]
  regex?: string | string[]
  length?: Bounds
  count?: Bounds
  exists?: boolean
  /** the value tokenizes as SQL injection (src/core/rules/sqli.ts) */
  sqli?: boolean
}

export type SelectionDoc = MatcherDoc | {all: MatcherDoc[]} | {any: MatcherDoc[]}

export type FixDoc =
  | {overwrite: string; with?: string}
  | {rename: string}
  | {defuse: {field: string; chars: string; with?: string}}
  | {truncate: {field: string; length: number}}
  | {remove: string}
  | {replace_unit: string}
  | {reply: string}

/** A conversation step: exactly one direction key, as text, hex or base64. */
export interface StepDoc {
  toserver?: string
  toclient?: string
  toserver_hex?: string
  toclient_hex?: string
  toserver_base64?: string
  toclient_base64?: string
}

export interface SampleDoc extends StepDoc {
  name: string
  steps?: StepDoc[]
}

export interface AffectsDoc {
  product: string
  versions?: string[]
  fixed?: string[]
}

export interface RuleDoc {
  id: string
  rev: number
  status: RuleStatus
  title: string
  description?: string
  cves?: string[]
  references?: string[]
  severity: Severity
  affects?: AffectsDoc[]
  protocol: string
  direction?: Direction
  units?: string[]
  detect: Record<string, SelectionDoc>
  condition: string
  fix?: FixDoc[]
  action?: Action
  samples?: {malicious?: SampleDoc[]; benign?: SampleDoc[]}
}

/** An edit of one direction's stream: replace [off, off+len) by `data` (absolute offsets). */
export interface Edit {
  off: number
  len: number
  data: Uint8Array
}

export interface Evidence {
  field: string
  /** printable excerpt of the (transformed) value that matched, bounded */
  value: string
}

export interface Match {
  rule: CompiledRule
  /** the action to take; a `fix` that cannot be applied inline becomes `drop` (see `note`) */
  action: Action
  edits: Edit[]
  /** bytes to answer the sender with instead of forwarding the unit (proxy mode) */
  reply?: Uint8Array
  /** true when every edit keeps the length (usable in inline mode) */
  inline: boolean
  evidence: Evidence
  /** why the action differs from the requested one, e.g. 'fix_unavailable_drop' */
  note?: string
}

/** A matched field value, remembered so a fix can edit the very bytes that matched. */
export interface MatchedValue {
  field: string
  value: FieldValue
}

export type CondNode =
  | {t: 'sel'; i: number}
  | {t: 'not'; a: CondNode}
  | {t: 'and'; a: CondNode[]}
  | {t: 'or'; a: CondNode[]}

/** Re-exported for convenience: compiled pieces live in compile.ts */
export type {CompiledRule}
export type {CompiledMatcher, CompiledSelection} from './compile.js'
