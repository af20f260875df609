/**
 * Literals every match of a regex must contain, read off the pattern (the "fast pattern" of an
 * IDS rule): a value lacking one of them cannot match, so the RE2 engine is not run on it.
 *
 * Conservative by construction: only the top level of the pattern is read (a group, a character
 * class, an escape class or any other construct ends the current literal run and contributes
 * nothing), and an atom followed by `*`, `?` or `{0,...}` is optional, so it is dropped from its
 * run. A top-level alternation gives one list per branch (a match contains all the literals of
 * at least one branch), or nothing when a branch has none. For a case-insensitive pattern only
 * the runs' non-letter pieces are kept (a letter could match in either case).
 */

/** characters that stand for themselves after a backslash */
const ESCAPED_LITERALS = new Set('.[]{}()\\*+?^$|/-#&~"\'<>=!:;,%@`_ '.split(''))
const CONTROL: Record<string, string> = {n: '\n', r: '\r', t: '\t', f: '\f', v: '\v'}
/** literals kept per regex (the longest) */
export const MAX_REQUIRED_LITERALS = 3

/** index just past the group opening at `i` (a '('), or -1 when unbalanced */
function skipGroup(p: string, i: number): number {
  let depth = 0
  for (; i < p.length; i++) {
    const c = p[i]
    if (c === '\\') {
      i++
      continue
    }
    if (c === '[') {
      i = skipClass(p, i) - 1
      if (i < 0) return -1
      continue
    }
    if (c === '(') depth++
    else if (c === ')' && --depth === 0) return i + 1
  }
  return -1
}

/** index just past the character class opening at `i` (a '['), or -1 when unbalanced */
function skipClass(p: string, i: number): number {
  let j = i + 1
  if (p[j] === '^') j++
  if (p[j] === ']') j++
  for (; j < p.length; j++) {
    if (p[j] === '\\') j++
    else if (p[j] === '[' && p[j + 1] === ':') {
      const end = p.indexOf(':]', j + 2)
      if (end < 0) return -1
      j = end + 1
    } else if (p[j] === ']') return j + 1
  }
  return -1
}

/** the top-level branches of a pattern (split at `|` outside groups and classes) */
function branches(p: string): string[] | null {
  const out: string[] = []
  let start = 0
  for (let i = 0; i < p.length; i++) {
    const c = p[i]
    if (c === '\\') i++
    else if (c === '[') {
      const j = skipClass(p, i)
      if (j < 0) return null
      i = j - 1
    } else if (c === '(') {
      const j = skipGroup(p, i)
      if (j < 0) return null
      i = j - 1
    } else if (c === '|') {
      out.push(p.slice(start, i))
      start = i + 1
    }
  }
  out.push(p.slice(start))
  return out
}

/**
 * What every match of `pattern` contains: a list of alternatives, each a list of literals (longest
 * first, at most MAX_REQUIRED_LITERALS) that a match holds all of; a match satisfies at least one
 * alternative. [] when nothing can be read off safely.
 */
export function requiredLiterals(pattern: string, caseInsensitive = false): string[][] {
  const ci = caseInsensitive || pattern.includes('(?i')
  const parts = branches(pattern)
  if (parts === null) return []
  const alts: string[][] = []
  for (const b of parts) {
    const lits = branchLiterals(b, ci)
    if (lits.length === 0) return []
    if (!alts.some((a) => a.length === lits.length && a.every((x, i) => x === lits[i]))) alts.push(lits)
  }
  return alts
}

function branchLiterals(p: string, caseInsensitive: boolean): string[] {
  const runs: string[] = []
  let run = ''
  /** length of the last atom appended to `run` (0: the last atom was not a literal) */
  let lastAtom = 0
  /** the last token was a quantifier: another one applies to the quantified atom (`a+(?s)*`) */
  let afterQuant = false
  const end = () => {
    if (run.length > 0) runs.push(run)
    run = ''
    lastAtom = 0
  }
  let i = 0
  while (i < p.length) {
    const c = p[i]
    if (c === '*' || c === '?' || (c === '{' && /^\{0*,|^\{0+\}/.test(p.slice(i)))) {
      // the previous atom is optional: it leaves its run (after a quantifier, the whole run it ended)
      if (afterQuant) runs.pop()
      run = run.slice(0, run.length - lastAtom)
      end()
      afterQuant = true
      i = c === '{' ? p.indexOf('}', i) + 1 || p.length : i + 1
      if (p[i] === '?' || p[i] === '+') i++
      continue
    }
    if (c === '+' || c === '{') {
      // at least once: the atom stays, the run ends after it
      end()
      afterQuant = true
      i = c === '{' ? p.indexOf('}', i) + 1 || p.length : i + 1
      if (p[i] === '?' || p[i] === '+') i++
      continue
    }
    if (c === '(') {
      // a flags group such as (?i) or (?s-m) is no atom: a quantifier after it applies to the atom before
      const flags = /^\(\?[a-zA-Z-]*\)/.exec(p.slice(i, i + 16))
      if (flags) {
        i += flags[0].length
        continue
      }
      afterQuant = false
      end()
      const j = skipGroup(p, i)
      if (j < 0) return []
      i = j
      continue
    }
    afterQuant = false
    if (c === '[') {
      end()
      const j = skipClass(p, i)
      if (j < 0) return []
      i = j
      continue
    }
    if (c === '\\') {
      const e = p[i + 1]
      if (e !== undefined && ESCAPED_LITERALS.has(e)) {
        run += e
        lastAtom = 1
      } else if (e !== undefined && CONTROL[e] !== undefined) {
        run += CONTROL[e]
        lastAtom = 1
      } else {
        end()
        // \pL, \p{...}, \x{...}, \Q...\E: skip what follows the letter too
        if (e === 'p' || e === 'P' || e === 'x') {
          i += 2
          if (p[i] === '{') i = p.indexOf('}', i) + 1 || p.length
          else i += e === 'x' ? 2 : 1
          continue
        }
        if (e === 'Q') return []
        // octal escapes (\0, \12, \123): their digits are not literals
        if (e !== undefined && e >= '0' && e <= '7') {
          i += 2
          for (let k = 0; k < 2 && p[i] >= '0' && p[i] <= '7'; k++) i++
          continue
        }
      }
      i += 2
      continue
    }
    if (c === '.' || c === '^' || c === '$' || c === ')' || c === ']' || c === '}') {
      end()
      i++
      continue
    }
    run += c
    lastAtom = 1
    i++
  }
  end()
  let lits = runs
  // case-insensitive: keep ASCII non-letters only (every other character may fold to another)
  if (caseInsensitive) lits = runs.flatMap((r) => r.split(/[^\x00-\x40\x5b-\x60\x7b-\x7f]+/)).filter((s) => s.length > 0)
  return [...new Set(lits)].sort((a, b) => b.length - a.length).slice(0, MAX_REQUIRED_LITERALS)
}

/** true when `s` may match: it holds every literal of at least one alternative (or none are known) */
export function mayMatch(s: string, alts: readonly (readonly string[])[]): boolean {
  if (alts.length === 0) return true
  for (let a = 0; a < alts.length; a++) {
    const lits = alts[a]
    let all = true
    for (let i = 0; i < lits.length; i++) {
      if (!s.includes(lits[i])) {
        all = false
        break
      }
    }
    if (all) return true
  }
  return false
}

/** Longest fixed match length fixedSuffixLength reports (longer patterns run as they are). */
export const MAX_FIXED_SUFFIX = 4096

/** escapes after a backslash that match one character (classes, controls, escaped punctuation) */
const ONE_CHAR_ESCAPES = new Set('dDwWsSntrfva'.split(''))

/**
 * Length of every match of `p` (in characters), or undefined when matches may differ in length or
 * `p` uses anything this reader does not know. Assertions (`^`, `$`, `\b`, `\B`, `\A`, `\z`) and
 * flag groups are refused: the caller relies on a match not looking at its surroundings.
 */
function fixedLength(p: string): number | undefined {
  const parts = branches(p)
  if (parts === null) return undefined
  let len: number | undefined
  for (const b of parts) {
    const n = branchFixedLength(b)
    if (n === undefined || (len !== undefined && n !== len)) return undefined
    len = n
  }
  return len
}

function branchFixedLength(p: string): number | undefined {
  let total = 0
  let i = 0
  while (i < p.length) {
    const c = p[i]
    let atom: number
    if (c === '(') {
      const j = skipGroup(p, i)
      if (j < 0) return undefined
      // a plain or non-capturing group; flags and named groups are refused
      const inner = p.startsWith('(?:', i) ? p.slice(i + 3, j - 1) : p[i + 1] === '?' ? undefined : p.slice(i + 1, j - 1)
      const n = inner === undefined ? undefined : fixedLength(inner)
      if (n === undefined) return undefined
      atom = n
      i = j
    } else if (c === '[') {
      const j = skipClass(p, i)
      if (j < 0) return undefined
      atom = 1
      i = j
    } else if (c === '\\') {
      const e = p[i + 1]
      if (e === undefined) return undefined
      if (e === 'x') {
        if (p[i + 2] === '{') {
          const k = p.indexOf('}', i + 2)
          if (k < 0) return undefined
          i = k + 1
        } else i += 4
      } else if (e === 'p' || e === 'P') {
        if (p[i + 2] === '{') {
          const k = p.indexOf('}', i + 2)
          if (k < 0) return undefined
          i = k + 1
        } else i += 3
      } else if (ONE_CHAR_ESCAPES.has(e) || ESCAPED_LITERALS.has(e)) i += 2
      else return undefined
      atom = 1
    } else if (c === '^' || c === '$' || c === ')' || c === '*' || c === '+' || c === '?' || c === '{' || c === '|') {
      return undefined
    } else {
      atom = 1
      i++
    }
    // quantifier: only an exact count keeps the length fixed
    const q = p[i]
    if (q === '*' || q === '+' || q === '?') return undefined
    if (q === '{') {
      const m = /^\{(\d+)(?:,(\d*))?\}/.exec(p.slice(i, i + 16))
      if (m === null || (m[2] !== undefined && m[2] !== m[1])) return undefined
      atom *= Number(m[1])
      i += m[0].length
      if (p[i] === '?') i++
      if (p[i] === '*' || p[i] === '+' || p[i] === '?' || p[i] === '{') return undefined
    }
    total += atom
    if (total > MAX_FIXED_SUFFIX) return undefined
  }
  return total
}

/**
 * For a pattern `P$` (no multi-line flag) whose every match has the same length L, L: a match
 * then always covers exactly the last L characters of the text, so `^(?:P)$` run on those alone
 * gives the same answer, at a fraction of the cost of an unanchored search (a pattern such as
 * `\x00{516}$` otherwise keeps hundreds of candidate starts alive at every character).
 * Undefined for every other pattern (flags, assertions inside P, top-level alternation, ...).
 */
export function fixedSuffixLength(pattern: string): number | undefined {
  if (!pattern.endsWith('$')) return undefined
  const body = pattern.slice(0, -1)
  // `\$` is a literal dollar: count the backslashes before it
  let bs = 0
  for (let i = body.length - 1; i >= 0 && body[i] === '\\'; i--) bs++
  if (bs % 2 === 1) return undefined
  const parts = branches(body)
  if (parts === null || parts.length !== 1) return undefined
  const n = fixedLength(body)
  return n !== undefined && n > 0 ? n : undefined
}
