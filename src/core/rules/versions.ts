/**
 * Version ranges for `affects:`. A small comparator of our own, because `semver` rejects most
 * real-world server versions: `1.3.5rc3`, `9.2p1` (OpenSSH), `8.17.1.9` (4 segments),
 * `5.5.20-log`, `10.3.39-MariaDB-0+deb12u1`, `1.0.1g` (OpenSSL letters).
 *
 * Ordering:
 *  - numeric segments compare numerically; a missing segment counts as 0 (`2.4` == `2.4.0`);
 *  - pre-release tags sort before the release: dev < alpha (a1) < beta (b1) < pre/preview < rc;
 *    a lone trailing letter is post-release (`1.3.5a` > `1.3.5`, as ProFTPD and OpenSSL number);
 *  - other letters are post-release (`9.2` < `9.2p1` < `9.3`, `1.0.1` < `1.0.1g` < `1.0.2`);
 *  - a suffix after '-' that is not a pre-release tag (`-log`, `-MariaDB-0+deb12u1`, `-ubuntu`)
 *    is a build/distro tag: ignored for ranges, and only a tie-breaker in compareVersions.
 */

/** Longest version string parsed. */
export const MAX_VERSION_LENGTH = 128

const PRE_RANK: Record<string, number> = {dev: -5, alpha: -4, a: -4, beta: -3, b: -3, pre: -2, preview: -2, rc: -1, cr: -1}

type Tok = number | string

export interface ParsedVersion {
  toks: Tok[]
  build: string
}

const PRE_AFTER_DASH = /^(dev|alpha|a|beta|b|pre|preview|rc|cr)(\d|\.|$)/i

export function parseVersion(v: string): ParsedVersion | undefined {
  let s = v.trim().slice(0, MAX_VERSION_LENGTH)
  if (s.startsWith('v') || s.startsWith('V')) s = s.slice(1)
  if (!/^\d/.test(s)) return undefined
  let build = ''
  for (let i = s.indexOf('-'); i >= 0; i = s.indexOf('-', i + 1)) {
    if (PRE_AFTER_DASH.test(s.slice(i + 1))) continue
    build = s.slice(i + 1)
    s = s.slice(0, i)
    break
  }
  const toks: Tok[] = []
  const re = /(\d+)|([A-Za-z]+)/g
  let m: RegExpExecArray | null
  while ((m = re.exec(s)) !== null) {
    if (m[1] !== undefined) toks.push(m[1].length > 15 ? Number.MAX_SAFE_INTEGER : Number(m[1]))
    else toks.push(m[2].toLowerCase())
  }
  // a lone trailing 'a'/'b' is a post-release letter (ProFTPD 1.3.5a, OpenSSL 1.0.1b), not
  // alpha/beta, which are followed by a number (2.0a1, 2.0b2)
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]
    if ((t === 'a' || t === 'b') && typeof toks[i + 1] !== 'number') toks[i] = t + '_'
  }
  return {toks, build}
}

function tokCmp(a: Tok | undefined, b: Tok | undefined): number {
  if (a === undefined && b === undefined) return 0
  if (a === undefined) return -tokCmp(b, a)
  if (typeof a === 'number') {
    if (b === undefined) return a === 0 ? 0 : 1
    if (typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0
    return 1 // a number beats any letter tag at the same position
  }
  // a is a string
  const ra = PRE_RANK[a]
  if (b === undefined) return ra !== undefined ? -1 : 1
  if (typeof b === 'number') return -1
  const rb = PRE_RANK[b]
  if (ra !== undefined && rb !== undefined) return ra < rb ? -1 : ra > rb ? 1 : 0
  if (ra !== undefined) return -1
  if (rb !== undefined) return 1
  return a < b ? -1 : a > b ? 1 : 0
}

function cmpParsed(a: ParsedVersion, b: ParsedVersion): number {
  const n = Math.max(a.toks.length, b.toks.length)
  for (let i = 0; i < n; i++) {
    const c = tokCmp(a.toks[i], b.toks[i])
    if (c !== 0) return c
  }
  return 0
}

/** Compare two versions, ignoring build/distro suffixes; undefined when either is unparseable. */
export function compareCore(a: string, b: string): number | undefined {
  const pa = parseVersion(a)
  const pb = parseVersion(b)
  if (!pa || !pb) return undefined
  return cmpParsed(pa, pb)
}

/** Total order for sorting: core version first, then the build suffix as a string. */
export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a)
  const pb = parseVersion(b)
  if (!pa || !pb) return pa ? 1 : pb ? -1 : a < b ? -1 : a > b ? 1 : 0
  const c = cmpParsed(pa, pb)
  if (c !== 0) return c
  return pa.build < pb.build ? -1 : pa.build > pb.build ? 1 : 0
}

type RangeOp = '>=' | '<=' | '>' | '<' | '=' | '!='

export interface Constraint {
  op: RangeOp
  v: ParsedVersion
  text: string
}

/** One range entry: every constraint must hold. `*` is the empty list (matches everything). */
export type VersionRange = Constraint[]

/** Parse `>=2.4.49 <2.4.51`, `=2.4.49`, `2.4.49`, `<5.5.20`, `*`. Returns an error message on bad syntax. */
export function parseRange(src: string): VersionRange | string {
  const t = src.trim()
  if (t === '*' || t === '') return t === '*' ? [] : 'empty version range'
  const out: Constraint[] = []
  for (const part of t.split(/\s+/)) {
    const m = /^(>=|<=|>|<|==|=|!=)?(.+)$/.exec(part)
    if (!m) return `bad constraint '${part}'`
    const v = parseVersion(m[2])
    if (!v) return `'${m[2]}' is not a version (must start with a digit)`
    const op = (m[1] === '==' || m[1] === undefined ? '=' : m[1]) as RangeOp
    out.push({op, v, text: m[2]})
  }
  return out
}

export function inRange(version: string, range: VersionRange): boolean {
  const v = parseVersion(version)
  if (!v) return range.length === 0
  for (const c of range) {
    const r = cmpParsed(v, c.v)
    const ok = c.op === '>=' ? r >= 0 : c.op === '<=' ? r <= 0 : c.op === '>' ? r > 0 : c.op === '<' ? r < 0 : c.op === '=' ? r === 0 : r !== 0
    if (!ok) return false
  }
  return true
}

/** true when `version` is in any of the range strings (unparseable ranges never match). */
export function inAnyRange(version: string, ranges: readonly string[]): boolean {
  for (const r of ranges) {
    const p = parseRange(r)
    if (typeof p !== 'string' && inRange(version, p)) return true
  }
  return false
}

interface AffectsLike {
  doc: {affects?: {product: string; versions?: string[]}[]}
}

/**
 * Does the rule apply to this product/version? A rule without `affects` applies everywhere; an
 * unknown product or version is treated as affected (a virtual patch errs on the side of
 * protection). Product names compare case-insensitively; `*` matches any product.
 */
export function affects(rule: AffectsLike, product: string | undefined, version: string | undefined): boolean {
  const list = rule.doc.affects
  if (list === undefined || list.length === 0 || product === undefined) return true
  const p = product.toLowerCase()
  for (const a of list) {
    if (a.product !== '*' && a.product.toLowerCase() !== p) continue
    if (version === undefined || a.versions === undefined || a.versions.length === 0) return true
    if (parseVersion(version) === undefined) return true
    if (inAnyRange(version, a.versions)) return true
  }
  return false
}
