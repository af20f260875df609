/**
 * Which of an analyzer's documented fields the loaded rules read, per direction: a table of
 * booleans an analyzer tests before it builds a field (AnalyzerContext.reads). Without `reads`
 * (no judge, `rules test`, the passive fingerprinter) every field is built.
 */
import type {AnalyzerContext, Direction} from './types.js'

/** field name -> is it built in PDUs of this direction */
export type Wants<N extends string> = Readonly<Record<N, boolean>>

export interface DirWants<N extends string> {
  readonly toserver: Wants<N>
  readonly toclient: Wants<N>
}

type Reads = NonNullable<AnalyzerContext['reads']>

/**
 * A function from a reads function to its tables, remembered per reads function (one per
 * engine): analyzers of every flow share them, and no flow asks the rules again.
 */
export function fieldWants<N extends string>(specs: readonly {readonly name: N}[]): (reads: Reads | undefined) => DirWants<N> {
  const names = specs.map((s) => s.name)
  // built in one go (not property by property, which leaves a slow dictionary-mode object): every
  // table has the same shape, so the analyzers' reads of it stay monomorphic
  const table = (read: (name: N) => boolean): Wants<N> => Object.fromEntries(names.map((n) => [n, read(n)])) as Record<N, boolean>
  const all = table(() => true)
  const everything: DirWants<N> = {toserver: all, toclient: all}
  const byReads = new WeakMap<Reads, DirWants<N>>()
  return (reads) => {
    if (reads === undefined) return everything
    let w = byReads.get(reads)
    if (w === undefined) {
      const of = (dir: Direction): Wants<N> => table((n) => reads(n, dir))
      w = {toserver: of('toserver'), toclient: of('toclient')}
      byReads.set(reads, w)
    }
    return w
  }
}
