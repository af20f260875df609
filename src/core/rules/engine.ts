/**
 * The rule engine: loads and compiles rule files, indexes them by protocol + unit kind +
 * direction, and judges each PDU.
 *
 * Prefilter: a rule whose condition REQUIRES a literal (an AND path through an
 * equals/contains/startswith/endswith matcher with no transform other than lowercase) is only
 * evaluated when that literal occurs in the fields involved. One case-insensitive Aho–Corasick
 * scan per PDU (over the union of those fields) finds every rule's literal at once; rules without
 * such an anchor always run. The prefilter never changes results (it only skips rules that
 * cannot match): see the property test in engine.test.ts.
 *
 * Presence: a rule whose condition needs a field the PDU lacks (CompiledRule.needs: every
 * matcher of an AND path sees no value, and a matcher without a value is false) is not evaluated
 * either. Each field's presence is looked up once per PDU, when a rule first asks.
 */
import type {AnomalySink} from '../events/anomaly.js'
import type {Direction, FieldValue, Pdu} from '../analyzers/types.js'
import {AhoCorasick} from './aho.js'
import {
  evalSelection, gatherPrefixed, hasPrefix, MAX_VALUES_PER_MATCHER, prefixedEntry, prefixedKey, releasePrefixed, type CompiledRule,
} from './compile.js'
import {computeFix} from './fixes.js'
import {lintRules, type LintError, type LintOptions} from './lint.js'
import type {Action, CondNode, Match, MatchedValue} from './types.js'

/** Most (protocol, kind, direction) index buckets kept; beyond it buckets are built per PDU. */
export const MAX_BUCKETS = 4096
/** Most matches reported for one PDU (the rest are dropped with an anomaly). */
export const MAX_MATCHES_PER_PDU = 64
/** Longest evidence excerpt (chars, before escaping). */
export const MAX_EVIDENCE_CHARS = 128
/** answers RuleSet.reads remembers (the names analyzers ask about) */
const MAX_READS_CACHE = 1024

export interface RuleSetOptions {
  /** operator override of a rule's default action */
  actionFor?(rule: CompiledRule): Action
  /** disabled rules are not indexed */
  enabled?(rule: CompiledRule): boolean
  /** default true; false evaluates every candidate rule (for comparison and benchmarks) */
  prefilter?: boolean
  /** limit reports ('limit' anomalies) */
  anomaly?: AnomalySink
  maxBuckets?: number
  maxMatchesPerPdu?: number
}

interface Bucket {
  rules: CompiledRule[]
  /** per rule: ids of its anchor literals (any one suffices), or undefined = always run */
  anchorIds: (Int32Array | undefined)[]
  ac?: AhoCorasick
  found: Uint8Array
  fields: string[]
  /** prefixes of the anchor fields (prefilter scan) */
  prefixes: string[]
  /** prefixes of every matcher of every rule: the PDU's fields under them are gathered once */
  allPrefixes: string[]
  /** per rule: its needs (CompiledRule.needs) as lists of ids into needNames, or undefined */
  needIds: (Int32Array[] | undefined)[]
  /** the field names and the families (isFamily 1: a `prefix.`) the rules' needs name */
  needNames: string[]
  isFamily: Uint8Array
  /** per need name, for the current PDU: -1 not looked up yet, 0 absent, 1 present */
  present: Int8Array
}

/** what curFields holds between PDUs (no PDU's fields kept alive, no Map per PDU) */
const EMPTY_FIELDS: Pdu['fields'] = new Map()

/** the fields and families (`name.` prefixes) some rules read */
interface ReadNeeds {
  fields: Set<string>
  prefixes: string[]
}

function newReadNeeds(): ReadNeeds {
  return {fields: new Set(), prefixes: []}
}

const NO_MATCHES: readonly Match[] = Object.freeze([]) as readonly Match[]

/** Printable excerpt: printable ASCII kept, other bytes as \xHH, bounded. */
export function excerpt(v: FieldValue['v']): string {
  const s = typeof v === 'string' ? v : String(v)
  let out = ''
  const n = Math.min(s.length, MAX_EVIDENCE_CHARS)
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    out += c >= 0x20 && c < 0x7f && c !== 0x5c ? s[i] : c === 0x5c ? '\\\\' : `\\x${(c & 0xff).toString(16).padStart(2, '0')}`
  }
  return s.length > n ? out + '...' : out
}

export class RuleSet {
  readonly rules: readonly CompiledRule[]
  private readonly opts: RuleSetOptions
  /** protocol -> kind -> [toserver, toclient] buckets (no key text per PDU) */
  private readonly buckets = new Map<string, Map<string, [Bucket | undefined, Bucket | undefined]>>()
  private bucketCount = 0
  private readonly prefilter: boolean
  private readonly maxBuckets: number
  private readonly maxMatches: number
  private cache = new Int8Array(16)
  private curFields: Pdu['fields'] = EMPTY_FIELDS
  private curRule: CompiledRule | undefined
  private readonly onLimit: (field: string) => void
  /** every field a matcher or fix of an enabled rule names, and the `name.*` families: all rules, toserver rules, toclient rules */
  private readonly readNeeds: [ReadNeeds, ReadNeeds, ReadNeeds] = [newReadNeeds(), newReadNeeds(), newReadNeeds()]
  /** per direction of the question (any, toserver, toclient): name -> answer */
  private readonly readsCache: [Map<string, boolean>, Map<string, boolean>, Map<string, boolean>] = [new Map(), new Map(), new Map()]

  constructor(rules: readonly CompiledRule[], opts: RuleSetOptions = {}) {
    this.opts = opts
    this.rules = opts.enabled ? rules.filter((r) => opts.enabled!(r)) : [...rules]
    this.prefilter = opts.prefilter !== false
    this.maxBuckets = opts.maxBuckets ?? MAX_BUCKETS
    this.maxMatches = opts.maxMatchesPerPdu ?? MAX_MATCHES_PER_PDU
    let maxSel = 1
    for (const r of this.rules) maxSel = Math.max(maxSel, r.selections.length)
    this.cache = new Int8Array(maxSel)
    for (const r of this.rules) {
      for (const needs of [this.readNeeds[0], this.readNeeds[r.direction === 'toserver' ? 1 : 2]]) {
        for (const sel of r.selections) {
          for (const m of sel.matchers) {
            m.fields.forEach((f) => needs.fields.add(f))
            for (const p of m.prefixes) if (!needs.prefixes.includes(p)) needs.prefixes.push(p)
          }
        }
        for (const f of r.fixes) {
          if (!('field' in f)) continue
          // a fix of a family (`name.*`) edits any field of it
          if (f.field.endsWith('.*')) {
            const p = f.field.slice(0, -1)
            if (!needs.prefixes.includes(p)) needs.prefixes.push(p)
          } else needs.fields.add(f.field)
        }
      }
    }
    const sink = opts.anomaly
    this.onLimit = (field) => sink?.({type: 'limit', event: 'rules.values_per_matcher', detail: {rule: this.curRule?.id ?? '', field, limit: MAX_VALUES_PER_MATCHER}})
  }

  /**
   * Does an enabled rule read `name`? A field name, or a family ending in '.' (true when a rule
   * reads any field of it). With `dir`, only rules of that direction count (a rule judges only
   * PDUs of its own direction). Analyzers may skip fields no rule reads. Answers are remembered.
   */
  reads(name: string, dir?: Direction): boolean {
    const d = dir === undefined ? 0 : dir === 'toserver' ? 1 : 2
    const cache = this.readsCache[d]
    let r = cache.get(name)
    if (r === undefined) {
      const {fields, prefixes} = this.readNeeds[d]
      r = prefixes.some((p) => name.startsWith(p) || (name.endsWith('.') && p.startsWith(name)))
        || (name.endsWith('.') ? [...fields].some((f) => f.startsWith(name)) : fields.has(name))
      // names come from analyzer code, not traffic: a few hundred at most
      if (cache.size < MAX_READS_CACHE) cache.set(name, r)
    }
    return r
  }

  private buildBucket(protocol: string, kind: string, dir: string): Bucket {
    const rules = this.rules.filter((r) => r.protocol === protocol && r.direction === dir && (r.units.length === 0 || r.units.includes(kind)))
    const literals = new Map<string, number>()
    const fields = new Set<string>()
    const prefixes = new Set<string>()
    const anchorIds = rules.map((r) => {
      if (!r.anchors || !r.anchorFields) return undefined
      r.anchorFields.fields.forEach((f) => fields.add(f))
      r.anchorFields.prefixes.forEach((p) => prefixes.add(p))
      return Int32Array.from(r.anchors, (lit) => {
        let id = literals.get(lit)
        if (id === undefined) {
          id = literals.size
          literals.set(lit, id)
        }
        return id
      })
    })
    let ac: AhoCorasick | undefined
    if (literals.size > 0) {
      ac = new AhoCorasick([...literals.keys()])
      // literals the automaton could not hold are never reported: their rules must always run
      if (ac.dropped.length > 0) {
        const dropped = new Set(ac.dropped)
        anchorIds.forEach((ids, i) => {
          if (ids && ids.some((id) => dropped.has(id))) anchorIds[i] = undefined
        })
        this.opts.anomaly?.({type: 'limit', event: 'rules.prefilter_states', detail: {dropped: ac.dropped.length}})
      }
    }
    const allPrefixes = new Set<string>()
    for (const r of rules) for (const sel of r.selections) for (const m of sel.matchers) m.prefixes.forEach((p) => allPrefixes.add(p))
    // one id per needed field name and per needed family (a field may be named like a family)
    const needNames: string[] = []
    const family: number[] = []
    const ids = [new Map<string, number>(), new Map<string, number>()]
    const needId = (name: string, isFamily: number): number => {
      let id = ids[isFamily].get(name)
      if (id === undefined) {
        id = needNames.length
        ids[isFamily].set(name, id)
        needNames.push(name)
        family.push(isFamily)
      }
      return id
    }
    const needIds = rules.map((r) => r.needs?.map((set) => Int32Array.from([...set.fields.map((f) => needId(f, 0)), ...set.prefixes.map((p) => needId(p, 1))])))
    return {
      rules, anchorIds, ac, found: new Uint8Array(literals.size), fields: [...fields], prefixes: [...prefixes], allPrefixes: [...allPrefixes],
      needIds, needNames, isFamily: Uint8Array.from(family), present: new Int8Array(needNames.length),
    }
  }

  private bucketFor(pdu: Pdu): Bucket {
    let byKind = this.buckets.get(pdu.protocol)
    const pair = byKind?.get(pdu.kind)
    const d = pdu.dir === 'toserver' ? 0 : 1
    let b = pair?.[d]
    if (b === undefined) {
      b = this.buildBucket(pdu.protocol, pdu.kind, pdu.dir)
      if (this.bucketCount < this.maxBuckets) {
        if (byKind === undefined) this.buckets.set(pdu.protocol, (byKind = new Map()))
        const p = pair ?? [undefined, undefined]
        p[d] = b
        byKind.set(pdu.kind, p)
        this.bucketCount++
      } else this.opts.anomaly?.({type: 'limit', event: 'rules.buckets', detail: {limit: this.maxBuckets}})
    }
    return b
  }

  private scanEntry(ac: AhoCorasick, found: Uint8Array, e: FieldValue | FieldValue[]): void {
    if (Array.isArray(e)) {
      const n = Math.min(e.length, MAX_VALUES_PER_MATCHER)
      for (let i = 0; i < n; i++) {
        const v = e[i].v
        ac.scan(typeof v === 'string' ? v : String(v), found)
      }
    } else {
      const v = e.v
      ac.scan(typeof v === 'string' ? v : String(v), found)
    }
  }

  /** `nPrefixed`: the PDU's fields gathered under the bucket's prefixes (gatherPrefixed) */
  private runPrefilter(b: Bucket, pdu: Pdu, nPrefixed: number): void {
    const ac = b.ac!
    const found = b.found
    found.fill(0)
    const fields = pdu.fields
    for (let i = 0; i < b.fields.length; i++) {
      const e = fields.get(b.fields[i])
      if (e !== undefined) this.scanEntry(ac, found, e)
    }
    if (b.prefixes.length === 0) return
    for (let i = 0; i < nPrefixed; i++) {
      const k = prefixedKey(i)
      for (let j = 0; j < b.prefixes.length; j++) {
        if (hasPrefix(k, b.prefixes[j])) {
          this.scanEntry(ac, found, prefixedEntry(i))
          break
        }
      }
    }
  }

  /** does the PDU have, for each of a rule's needs, one of its fields? (b.present remembers) */
  private hasNeeded(b: Bucket, needs: Int32Array[], fields: Pdu['fields'], nPrefixed: number): boolean {
    for (let c = 0; c < needs.length; c++) {
      const ids = needs[c]
      let found = false
      for (let j = 0; j < ids.length && !found; j++) {
        const id = ids[j]
        let p = b.present[id]
        if (p < 0) {
          const name = b.needNames[id]
          if (b.isFamily[id] === 0) p = fields.has(name) ? 1 : 0
          else {
            // a family's fields are among the gathered ones (its prefix is one of b.allPrefixes)
            p = 0
            for (let i = 0; i < nPrefixed && p === 0; i++) if (hasPrefix(prefixedKey(i), name)) p = 1
          }
          b.present[id] = p
        }
        found = p === 1
      }
      if (!found) return false
    }
    return true
  }

  private sel(i: number): boolean {
    const c = this.cache[i]
    if (c >= 0) return c === 1
    const r = evalSelection(this.curRule!.selections[i], this.curFields, undefined, this.onLimit)
    this.cache[i] = r ? 1 : 0
    return r
  }

  private cond(n: CondNode): boolean {
    switch (n.t) {
      case 'sel':
        return this.sel(n.i)
      case 'not':
        return !this.cond(n.a)
      case 'and':
        for (let i = 0; i < n.a.length; i++) if (!this.cond(n.a[i])) return false
        return true
      case 'or':
        for (let i = 0; i < n.a.length; i++) if (this.cond(n.a[i])) return true
        return false
    }
  }

  /** Judge one PDU: the matches of every enabled rule that applies. Never throws on PDU content. */
  evaluate(pdu: Pdu): Match[] {
    const b = this.bucketFor(pdu)
    if (b.rules.length === 0) return NO_MATCHES as Match[]
    const usePrefilter = this.prefilter && b.ac !== undefined
    const nPrefixed = gatherPrefixed(pdu.fields, b.allPrefixes)
    try {
      if (usePrefilter) this.runPrefilter(b, pdu, nPrefixed)
      return this.judgeRules(b, pdu, usePrefilter, nPrefixed)
    } finally {
      releasePrefixed()
    }
  }

  private judgeRules(b: Bucket, pdu: Pdu, usePrefilter: boolean, nPrefixed: number): Match[] {
    let out: Match[] | undefined
    this.curFields = pdu.fields
    const usePresence = this.prefilter && b.needNames.length > 0
    if (usePresence) for (let i = 0; i < b.present.length; i++) b.present[i] = -1
    for (let ri = 0; ri < b.rules.length; ri++) {
      const ids = b.anchorIds[ri]
      if (usePrefilter && ids !== undefined) {
        let hit = false
        for (let j = 0; j < ids.length; j++) {
          if (b.found[ids[j]] === 1) {
            hit = true
            break
          }
        }
        if (!hit) continue
      }
      const needs = b.needIds[ri]
      if (usePresence && needs !== undefined && !this.hasNeeded(b, needs, pdu.fields, nPrefixed)) continue
      const rule = b.rules[ri]
      this.curRule = rule
      // a loop: the builtin fill's call costs more than these few stores
      for (let i = 0; i < rule.selections.length; i++) this.cache[i] = -1
      if (!this.cond(rule.condition)) continue
      const matched = this.matchedValues(rule, pdu)
      if (!ownBytes(matched, pdu)) continue
      out ??= []
      if (out.length >= this.maxMatches) {
        this.opts.anomaly?.({type: 'limit', event: 'rules.matches_per_pdu', detail: {limit: this.maxMatches}})
        break
      }
      out.push(this.buildMatch(rule, pdu, matched))
    }
    this.curRule = undefined
    this.curFields = EMPTY_FIELDS
    return out ?? (NO_MATCHES as Match[])
  }

  /** the values that made the rule's true selections true (cache: this rule's selections) */
  private matchedValues(rule: CompiledRule, pdu: Pdu): MatchedValue[] {
    const matched: MatchedValue[] = []
    for (let i = 0; i < rule.selections.length; i++) {
      if (this.cache[i] === 1) evalSelection(rule.selections[i], pdu.fields, matched)
    }
    return matched
  }

  private buildMatch(rule: CompiledRule, pdu: Pdu, matched: MatchedValue[]): Match {
    const first = matched[0]
    const evidence = first ? {field: first.field, value: excerpt(first.value.v)} : {field: '', value: ''}
    let action = this.opts.actionFor?.(rule) ?? rule.action
    const m: Match = {rule, action, edits: [], inline: true, evidence}
    if (action === 'fix') {
      const fix = computeFix(rule, pdu, matched)
      if (fix === undefined) {
        action = 'drop'
        m.action = action
        m.note = rule.fixes.length === 0 ? 'no_fix_defined_drop' : 'fix_unavailable_drop'
      } else {
        m.edits = fix.edits
        m.inline = fix.inline
        if (fix.reply) m.reply = fix.reply
      }
    }
    return m
  }
}

/**
 * Does a match involve the PDU's own bytes? A unit may carry context from bytes already judged
 * as an earlier unit (an Expect: 100-continue body carries its request head; later units carry
 * the bind or the login they belong to): a match made only of values that lie wholly before
 * the unit's start was that earlier unit's to report (and to fix, while its bytes were held).
 * Values without a stream span (counts, flags, derived text) and conditions that matched no
 * value count as the unit's own.
 */
export function ownBytes(matched: readonly MatchedValue[], pdu: Pdu): boolean {
  if (matched.length === 0) return true
  for (let i = 0; i < matched.length; i++) {
    const v = matched[i].value
    if (v.off === undefined || v.off + (v.len ?? 0) > pdu.start) return true
  }
  return false
}

/** Load and compile every rule file under `dir` (or several dirs/files). Never throws. */
export function loadRules(dir: string | readonly string[], opts: LintOptions = {}): {rules: CompiledRule[]; errors: LintError[]} {
  return lintRules(typeof dir === 'string' ? [dir] : dir, opts)
}
