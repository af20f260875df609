/**
 * The condition language (Sigma-like), parsed once at load:
 *
 *   expr    := or
 *   or      := and ('or' and)*
 *   and     := unary ('and' unary)*
 *   unary   := 'not' unary | primary
 *   primary := '(' expr ')' | quant 'of' target | NAME
 *   quant   := '1' | 'any' | 'all'
 *   target  := 'them' | PATTERN       (PATTERN: a name with '*' wildcards)
 *
 * Precedence: not > and > or. Names are resolved to selection indexes; `1 of x_*` and
 * `all of them` expand to or/and nodes. An unknown name or a pattern matching nothing is an error.
 */
import type {CondNode} from './types.js'

/** Longest condition accepted (chars). */
export const MAX_CONDITION_LENGTH = 4096
/** Deepest nesting of parentheses / not accepted. */
export const MAX_CONDITION_DEPTH = 64

export class ConditionError extends Error {
  constructor(message: string, readonly pos: number) {
    super(message)
  }
}

interface Tok {
  v: string
  pos: number
}

function tokenize(src: string): Tok[] {
  const toks: Tok[] = []
  const re = /\s*([()]|[A-Za-z0-9_*.-]+)/y
  let i = 0
  for (;;) {
    while (i < src.length && /\s/.test(src[i])) i++
    if (i >= src.length) break
    re.lastIndex = i
    const m = re.exec(src)
    if (m === null) throw new ConditionError(`unexpected character '${src[i]}' at ${i + 1}`, i)
    toks.push({v: m[1], pos: m.index + m[0].length - m[1].length})
    i = re.lastIndex
  }
  return toks
}

function globToRe(p: string): RegExp {
  return new RegExp('^' + p.replace(/[.+?^${}()|[\]\\-]/g, '\\$&').replace(/\*/g, '.*') + '$')
}

const KEYWORDS = new Set(['and', 'or', 'not', 'of', 'them'])

/** Parse `src` against the selection names (index = position in `names`). Throws ConditionError. */
export function parseCondition(src: string, names: readonly string[]): CondNode {
  if (src.length > MAX_CONDITION_LENGTH) throw new ConditionError(`condition longer than ${MAX_CONDITION_LENGTH} chars`, 0)
  const toks = tokenize(src)
  let p = 0
  const peek = (): string | undefined => toks[p]?.v.toLowerCase()
  const posOf = (): number => toks[p]?.pos ?? src.length

  function expect(v: string): void {
    if (peek() !== v) throw new ConditionError(`expected '${v}' at ${posOf() + 1}${toks[p] ? `, found '${toks[p].v}'` : ''}`, posOf())
    p++
  }

  function or(depth: number): CondNode {
    const a = [and(depth)]
    while (peek() === 'or') {
      p++
      a.push(and(depth))
    }
    return a.length === 1 ? a[0] : {t: 'or', a}
  }
  function and(depth: number): CondNode {
    const a = [unary(depth)]
    while (peek() === 'and') {
      p++
      a.push(unary(depth))
    }
    return a.length === 1 ? a[0] : {t: 'and', a}
  }
  function unary(depth: number): CondNode {
    if (depth > MAX_CONDITION_DEPTH) throw new ConditionError('condition nested too deeply', posOf())
    if (peek() === 'not') {
      p++
      return {t: 'not', a: unary(depth + 1)}
    }
    return primary(depth)
  }
  function primary(depth: number): CondNode {
    const t = toks[p]
    if (t === undefined) throw new ConditionError('unexpected end of condition', src.length)
    const v = t.v.toLowerCase()
    if (v === '(') {
      p++
      const e = or(depth + 1)
      expect(')')
      return e
    }
    if ((v === '1' || v === 'any' || v === 'all') && toks[p + 1]?.v.toLowerCase() === 'of') {
      p += 2
      const target = toks[p]
      if (target === undefined) throw new ConditionError(`expected a name pattern or 'them' after 'of'`, src.length)
      p++
      let idx: number[]
      if (target.v.toLowerCase() === 'them') idx = names.map((_, i) => i)
      else {
        const re = globToRe(target.v)
        idx = []
        names.forEach((n, i) => {
          if (re.test(n)) idx.push(i)
        })
      }
      if (idx.length === 0) throw new ConditionError(`'${target.v}' matches no selection`, target.pos)
      const a: CondNode[] = idx.map((i) => ({t: 'sel', i}))
      return a.length === 1 ? a[0] : {t: v === 'all' ? 'and' : 'or', a}
    }
    if (v === ')' || KEYWORDS.has(v)) throw new ConditionError(`unexpected '${t.v}' at ${t.pos + 1}`, t.pos)
    if (t.v.includes('*')) throw new ConditionError(`pattern '${t.v}' needs '1 of' or 'all of'`, t.pos)
    const i = names.indexOf(t.v)
    if (i < 0) throw new ConditionError(`unknown selection '${t.v}'`, t.pos)
    p++
    return {t: 'sel', i}
  }

  if (toks.length === 0) throw new ConditionError('empty condition', 0)
  const node = or(0)
  if (p < toks.length) throw new ConditionError(`unexpected '${toks[p].v}' at ${toks[p].pos + 1}`, toks[p].pos)
  return node
}

/** Evaluate with a selection oracle. */
export function evalCondition(n: CondNode, sel: (i: number) => boolean): boolean {
  switch (n.t) {
    case 'sel':
      return sel(n.i)
    case 'not':
      return !evalCondition(n.a, sel)
    case 'and':
      for (let i = 0; i < n.a.length; i++) if (!evalCondition(n.a[i], sel)) return false
      return true
    case 'or':
      for (let i = 0; i < n.a.length; i++) if (evalCondition(n.a[i], sel)) return true
      return false
  }
}

/** Selections referenced anywhere in the condition. */
export function referencedSelections(n: CondNode, out = new Set<number>()): Set<number> {
  if (n.t === 'sel') out.add(n.i)
  else if (n.t === 'not') referencedSelections(n.a, out)
  else for (const c of n.a) referencedSelections(c, out)
  return out
}
