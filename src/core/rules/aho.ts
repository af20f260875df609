/**
 * Aho–Corasick multi-pattern matcher, ASCII/latin1 case-insensitive, for the rule prefilter.
 * The alphabet is reduced to the characters that occur in the patterns (one class for all
 * others), so the DFA table is states x classes, not states x 256.
 */

/** Most trie states one automaton may hold (total pattern length bound). */
export const MAX_AC_STATES = 1 << 16

/** latin1 case folding table (the same folding `String#toLowerCase` applies within latin1) */
export const FOLD: Uint8Array = (() => {
  const t = new Uint8Array(256)
  for (let c = 0; c < 256; c++) {
    const l = String.fromCharCode(c).toLowerCase()
    t[c] = l.length === 1 && l.charCodeAt(0) < 256 ? l.charCodeAt(0) : c
  }
  return t
})()

export function foldLatin1(s: string): string {
  let out = ''
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    out += c < 256 ? String.fromCharCode(FOLD[c]) : s[i]
  }
  return out
}

export class AhoCorasick {
  readonly patternCount: number
  /** patterns that did not fit under maxStates (never reported: callers must treat as found) */
  readonly dropped: number[] = []
  private readonly cls = new Uint16Array(256)
  private readonly k: number
  private readonly delta: Int32Array
  private readonly out: (number[] | undefined)[]

  constructor(patterns: readonly string[], maxStates = MAX_AC_STATES) {
    this.patternCount = patterns.length
    // character classes
    let k = 1
    for (const p of patterns) {
      for (let i = 0; i < p.length; i++) {
        const c = p.charCodeAt(i)
        const f = c < 256 ? FOLD[c] : 0
        if (this.cls[f] === 0 && c < 256) {
          this.cls[f] = k++
        }
      }
    }
    for (let c = 0; c < 256; c++) if (FOLD[c] !== c) this.cls[c] = this.cls[FOLD[c]]
    this.k = k
    // trie
    const gotoT: number[][] = [new Array<number>(k).fill(-1)]
    const out: (number[] | undefined)[] = [undefined]
    patterns.forEach((p, id) => {
      if (p.length === 0) {
        this.dropped.push(id)
        return
      }
      let s = 0
      for (let i = 0; i < p.length; i++) {
        const c = p.charCodeAt(i)
        const x = c < 256 ? this.cls[c] : 0
        if (gotoT[s][x] < 0) {
          if (gotoT.length >= maxStates) {
            this.dropped.push(id)
            return
          }
          gotoT[s][x] = gotoT.length
          gotoT.push(new Array<number>(k).fill(-1))
          out.push(undefined)
        }
        s = gotoT[s][x]
      }
      ;(out[s] ??= []).push(id)
    })
    const n = gotoT.length
    const delta = new Int32Array(n * k)
    const fail = new Int32Array(n)
    const queue: number[] = []
    for (let x = 0; x < k; x++) {
      const t = gotoT[0][x]
      if (t > 0) {
        fail[t] = 0
        delta[x] = t
        queue.push(t)
      } else delta[x] = 0
    }
    // class 0 (characters in no pattern) always returns to the root
    for (let qi = 0; qi < queue.length; qi++) {
      const s = queue[qi]
      const fo = out[fail[s]]
      if (fo !== undefined) out[s] = [...(out[s] ?? []), ...fo]
      for (let x = 0; x < k; x++) {
        const t = gotoT[s][x]
        if (t > 0) {
          fail[t] = delta[fail[s] * k + x]
          delta[s * k + x] = t
          queue.push(t)
        } else delta[s * k + x] = delta[fail[s] * k + x]
      }
    }
    this.delta = delta
    this.out = out
  }

  /** Mark found[id] = 1 for each pattern occurring in `s`; returns how many new ones were marked. */
  scan(s: string, found: Uint8Array): number {
    const cls = this.cls
    const k = this.k
    const delta = this.delta
    const out = this.out
    let st = 0
    let marked = 0
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i)
      st = delta[st * k + (c < 256 ? cls[c] : 0)]
      const o = out[st]
      if (o !== undefined) {
        for (let j = 0; j < o.length; j++) {
          if (found[o[j]] === 0) {
            found[o[j]] = 1
            marked++
          }
        }
      }
    }
    return marked
  }
}
