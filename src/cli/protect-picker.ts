/**
 * The interactive picker of `patchpoint protect` (a terminal, no selection flags): a list of the
 * inventory services with their product/version, recommended and assigned rules; the user
 * chooses services, their rules, the action and shadow mode, and `w` returns the choice.
 *
 * The picker only chooses: it returns a {@link Selection}, which {@link selectionOps} turns into
 * the same `add` operations `protect HOST:PORT --rule ID --action A --shadow` runs (runProtect /
 * applyOp). No policy logic lives here.
 *
 * Keys (list): up/down (or k/j) move, space toggles the service, enter opens its recommended rules,
 * a cycles the action (rule default -> fix -> log -> drop), s toggles shadow, w writes,
 * q or Esc quits without writing. Keys (rules): up/down move, space toggles the rule,
 * a / s as above, enter / Esc / left go back, w writes, q quits.
 */
import React from 'react'
import {Box, render, Text, useApp, useInput, type Key} from 'ink'
import type {ServiceView} from '../core/protect/compile.js'
import type {ProtectOp, ProtectResult} from '../core/protect/protect.js'
import {formatAssignmentKey} from '../core/protect/policy-file.js'
import type {Action} from '../core/rules/types.js'

const h = React.createElement

/** Terminal height assumed when the stream does not say (rows). */
export const DEFAULT_ROWS = 24
/** Lines of the picker that are not service/rule rows (title, help, status). */
export const CHROME_ROWS = 5
/** Widest rule-id column of the rules view. */
export const MAX_ID_WIDTH = 40
/** Fewest list rows shown, however small the terminal. */
export const MIN_LIST_ROWS = 3

/** One chosen service, as `protect TARGET [--rule ID...] [--action A] [--shadow|--no-shadow]`. */
export interface PickedService {
  /** HOST:PORT/PROTO (or the policy.yaml key of an RPC assignment) */
  target: string
  /** explicit rule ids; undefined = the recommended rules */
  rules?: string[]
  /** with rules: a per-rule override for them; without: the service's action (as the CLI) */
  action?: Action
  shadow?: boolean
}

export interface Selection {
  services: PickedService[]
}

interface Choice {
  selected: boolean
  /** rule ids turned off in the rules view (all recommended on by default) */
  off: string[]
  action?: Action
  shadow?: boolean
}

export interface PickerState {
  mode: 'list' | 'rules'
  cursor: number
  ruleCursor: number
  choices: Choice[]
  message: string
}

export type PickerOutcome = {done: false; state: PickerState} | {done: true; selection: Selection | null}

const ACTIONS: (Action | undefined)[] = [undefined, 'fix', 'log', 'drop']

export function initialState(services: readonly ServiceView[]): PickerState {
  return {mode: 'list', cursor: 0, ruleCursor: 0, choices: services.map(() => ({selected: false, off: []})), message: ''}
}

/** The target string `protect` accepts for a service of the table. */
export function targetOf(s: ServiceView): string {
  if (s.key && s.rpc_program !== undefined) return s.key
  return formatAssignmentKey({kind: 'port', host: s.host, port: s.port, proto: s.proto})
}

/** The selection the state stands for (services chosen with at least one rule). */
export function selectionOf(services: readonly ServiceView[], st: PickerState): Selection {
  const out: PickedService[] = []
  services.forEach((s, i) => {
    const c = st.choices[i]
    if (!c?.selected) return
    const p: PickedService = {target: targetOf(s)}
    if (c.off.length > 0) {
      const off = new Set(c.off)
      p.rules = s.recommended.map((r) => r.rule_id).filter((id) => !off.has(id))
      if (p.rules.length === 0) return
    }
    if (c.action) p.action = c.action
    if (c.shadow !== undefined) p.shadow = c.shadow
    out.push(p)
  })
  return {services: out}
}

function withChoice(st: PickerState, i: number, fn: (c: Choice) => Choice, message = ''): PickerState {
  const choices = st.choices.slice()
  choices[i] = fn(choices[i])
  return {...st, choices, message}
}

/** One key press: the next state, or the end (a selection, or null when quitting). Pure. */
export function step(services: readonly ServiceView[], st: PickerState, input: string, key: Partial<Key>): PickerOutcome {
  const n = services.length
  const cur = services[st.cursor] as ServiceView | undefined
  const next = (state: PickerState): PickerOutcome => ({done: false, state})
  if (input === 'q' || (key.escape && st.mode === 'list')) return {done: true, selection: null}
  if (input === 'w') {
    const selection = selectionOf(services, st)
    if (selection.services.length === 0) return next({...st, message: 'nothing selected: space selects a service, q quits'})
    return {done: true, selection}
  }
  if (!cur) return next(st)
  if (input === 'a') {
    return next(withChoice(st, st.cursor, (c) => ({...c, action: ACTIONS[(ACTIONS.indexOf(c.action) + 1) % ACTIONS.length]})))
  }
  if (input === 's') return next(withChoice(st, st.cursor, (c) => ({...c, shadow: !(c.shadow ?? cur.shadow)})))
  if (st.mode === 'list') {
    if (key.upArrow || input === 'k') return next({...st, cursor: Math.max(0, st.cursor - 1), message: ''})
    if (key.downArrow || input === 'j') return next({...st, cursor: Math.min(n - 1, st.cursor + 1), message: ''})
    if (input === ' ') {
      if (cur.recommended.length === 0) return next({...st, message: `${targetOf(cur)}: no recommended rules to assign`})
      return next(withChoice(st, st.cursor, (c) => ({...c, selected: !c.selected})))
    }
    if (key.return || key.rightArrow) {
      if (cur.recommended.length === 0) return next({...st, message: `${targetOf(cur)}: no recommended rules`})
      return next({...st, mode: 'rules', ruleCursor: 0, message: ''})
    }
    return next(st)
  }
  // rules view
  const m = cur.recommended.length
  if (key.upArrow || input === 'k') return next({...st, ruleCursor: Math.max(0, st.ruleCursor - 1)})
  if (key.downArrow || input === 'j') return next({...st, ruleCursor: Math.min(m - 1, st.ruleCursor + 1)})
  if (key.return || key.escape || key.leftArrow) return next({...st, mode: 'list', message: ''})
  if (input === ' ' && m > 0) {
    const id = cur.recommended[st.ruleCursor].rule_id
    return next(withChoice(st, st.cursor, (c) => {
      const off = c.off.includes(id) ? c.off.filter((x) => x !== id) : [...c.off, id]
      // toggling a rule chooses the service; turning every rule off un-chooses it
      return {...c, off, selected: off.length < m}
    }))
  }
  return next(st)
}

function productOf(s: ServiceView): string {
  return [s.product, s.version].filter(Boolean).join(' ') || s.service || s.protocol || '?'
}

function actionText(c: Choice, s: ServiceView): string {
  const a = c.action ?? (s.assigned ? s.action : undefined)
  const shadow = c.shadow ?? s.shadow
  return `${a ?? 'rule default'}${shadow ? ' (shadow)' : ''}`
}

function pad(s: string, w: number): string {
  return s.length >= w ? s.slice(0, w - 1) + ' ' : s + ' '.repeat(w - s.length)
}

/** First row shown of a list of `n` with `rows` visible, keeping `cursor` in view. */
export function windowStart(n: number, rows: number, cursor: number): number {
  return Math.max(0, Math.min(cursor - Math.floor(rows / 2), n - rows))
}

export interface PickerProps {
  services: readonly ServiceView[]
  onDone: (selection: Selection | null) => void
  rows?: number
}

export function ProtectPicker(props: PickerProps): React.ReactElement {
  const {services, onDone} = props
  const {exit} = useApp()
  const [st, setSt] = React.useState(() => initialState(services))
  const stRef = React.useRef(st)
  useInput((input: string, key: Key) => {
    // keys typed fast (or sent by tmux in one write) arrive as one string: one step per char
    const presses: [string, Partial<Key>][] = input.length > 1 && !input.startsWith('\u001b')
      ? [...input].map((ch): [string, Partial<Key>] => (ch === '\r' || ch === '\n' ? ['', {return: true}] : [ch, {}]))
      : [[input, key]]
    let state = stRef.current
    for (const [ch, k] of presses) {
      const out = step(services, state, ch, k)
      if (out.done) {
        onDone(out.selection)
        exit()
        return
      }
      state = out.state
    }
    stRef.current = state
    setSt(state)
  })
  const visible = Math.max(MIN_LIST_ROWS, (props.rows ?? DEFAULT_ROWS) - CHROME_ROWS)
  const lines: React.ReactElement[] = []
  if (services.length === 0) {
    lines.push(h(Text, {key: 'none'}, 'no services in the inventory (run `patchpoint discover` and `patchpoint fingerprint`); q quits'))
  } else if (st.mode === 'list') {
    const from = windowStart(services.length, visible, st.cursor)
    for (let i = from; i < Math.min(services.length, from + visible); i++) {
      const s = services[i]
      const c = st.choices[i]
      const here = i === st.cursor
      const recs = s.recommended.length === 0 ? 'no recommendation' : `${s.recommended.length} recommended${c.off.length ? ` (${s.recommended.length - c.off.length} chosen)` : ''}`
      const assigned = s.assigned ? `assigned: ${s.active.join(' ') || '(none left)'}` : 'not assigned'
      const text = `${here ? '>' : ' '} [${c.selected ? 'x' : ' '}] ${pad(targetOf(s), 24)}${pad(productOf(s), 26)}${pad(recs, 30)}${pad(actionText(c, s), 20)}${assigned}`
      lines.push(h(Text, {key: `s${i}`, color: here ? 'cyan' : undefined, bold: c.selected}, text))
    }
  } else {
    const s = services[st.cursor]
    const c = st.choices[st.cursor]
    lines.push(h(Text, {key: 'svc', bold: true}, `${targetOf(s)}  ${productOf(s)}  action: ${actionText(c, s)}  ${c.selected ? 'selected' : 'not selected'}`))
    const idWidth = Math.min(MAX_ID_WIDTH, Math.max(8, ...s.recommended.map((r) => r.rule_id.length)) + 2)
    const from = windowStart(s.recommended.length, visible - 1, st.ruleCursor)
    for (let j = from; j < Math.min(s.recommended.length, from + visible - 1); j++) {
      const r = s.recommended[j]
      const on = !c.off.includes(r.rule_id)
      const here = j === st.ruleCursor
      const assigned = s.active.includes(r.rule_id) ? ' [assigned]' : ''
      const text = `${here ? '>' : ' '} [${on ? 'x' : ' '}] ${pad(r.rule_id, idWidth)}${pad(r.basis, 16)}${pad(r.severity ?? '', 10)}${r.title ?? ''}${assigned}`
      lines.push(h(Text, {key: `r${j}`, color: here ? 'cyan' : undefined}, text))
    }
  }
  const help = st.mode === 'list'
    ? 'up/down move  space select  enter rules  a action  s shadow  w write  q/Esc quit'
    : 'up/down move  space toggle rule  a action  s shadow  enter/Esc back  w write  q quit'
  const chosen = st.choices.filter((c) => c.selected).length
  return h(Box, {flexDirection: 'column'},
    h(Text, {bold: true}, `patchpoint protect: choose services and rules (${chosen} selected)`),
    h(Text, {dimColor: true}, help),
    ...lines,
    h(Text, {color: 'yellow'}, st.message || ' '),
  )
}

export interface PickerStreams {
  stdin?: NodeJS.ReadStream
  stdout?: NodeJS.WriteStream
  /** ink debug mode: every frame written whole (tests) */
  debug?: boolean
}

/** Shows the picker until `w` (the selection) or q/Esc/Ctrl-C (null). */
export async function runPicker(services: readonly ServiceView[], streams: PickerStreams = {}): Promise<Selection | null> {
  let result: Selection | null = null
  const stdout = streams.stdout ?? process.stdout
  const app = render(h(ProtectPicker, {services, rows: stdout.rows, onDone: (s: Selection | null) => { result = s }}), {
    stdin: streams.stdin ?? process.stdin,
    stdout,
    debug: streams.debug ?? false,
    patchConsole: false,
    exitOnCtrlC: true,
  })
  await app.waitUntilExit()
  return result
}

/**
 * The runProtect operations that apply a selection: one `add` per distinct (rules, action,
 * shadow), exactly what `protect T1 T2 --rule ... --action ... --shadow` would run.
 */
export function selectionOps(sel: Selection): ProtectOp[] {
  const groups = new Map<string, Extract<ProtectOp, {op: 'add'}>>()
  for (const p of sel.services) {
    const k = JSON.stringify([p.rules ?? null, p.action ?? null, p.shadow ?? null])
    const g = groups.get(k)
    if (g) g.targets.push(p.target)
    else groups.set(k, {op: 'add', targets: [p.target], rules: p.rules, action: p.action, shadow: p.shadow})
  }
  return [...groups.values()]
}

/** Several runProtect results as one (the last state, every change and written file). */
export function mergeResults(results: readonly ProtectResult[]): ProtectResult {
  const last = results[results.length - 1]
  const uniq = (xs: string[]) => [...new Set(xs)]
  return {
    ...last,
    changed: results.some((r) => r.changed),
    written: uniq(results.flatMap((r) => r.written)),
    warnings: uniq(results.flatMap((r) => r.warnings)),
    diff: {
      assignments: {
        added: uniq(results.flatMap((r) => r.diff.assignments.added)),
        removed: uniq(results.flatMap((r) => r.diff.assignments.removed)),
        changed: uniq(results.flatMap((r) => r.diff.assignments.changed)).filter((k) => !results.some((r) => r.diff.assignments.added.includes(k))),
      },
      default_action: results.find((r) => r.diff.default_action)?.diff.default_action,
      services: results.flatMap((r) => r.diff.services),
      retired: results.flatMap((r) => r.diff.retired),
      unretired: results.flatMap((r) => r.diff.unretired),
    },
  }
}
