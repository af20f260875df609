/**
 * Install a verified rule bundle into a project, atomically, keeping the previous rules for
 * rollback.
 *
 * Layout: the project's `rules` is a symbolic link to a version folder
 * `.patchpoint/rules-store/<created>-<id12>/`. An install writes the new version into a staging
 * folder, lints it, renames it into the store, then replaces the link with rename(2) over it
 * (a new link made beside it first): a reader, or a gateway reloading on SIGHUP, sees the old
 * rules or the new ones, never a mix or nothing. The first install moves a hand-made `rules/`
 * folder into the store as the "previous" version, so `--rollback` returns to it.
 *
 * `.patchpoint/rules-state.json` records {current, previous}; only those two versions are kept.
 * Everything runs under the project's `rules` lock (withLock), so two updates never interleave.
 */
import {randomBytes} from 'node:crypto'
import {lstat, mkdir, readdir, readFile, readlink, rename, rm, stat, symlink, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {UserError} from '../errors.js'
import {fsyncDir, writeJsonAtomic} from '../project/atomic.js'
import {withLock} from '../project/lock.js'
import {MAX_BUNDLE_BYTES} from './bundle.js'
import type {VerifyResult} from './bundle.js'

export const RULES_STORE_DIR = 'rules-store'
export const RULES_STATE_FILE = 'rules-state.json'
export const RULES_LOCK = 'rules'
/** Bundle files considered in a --from folder. */
export const MAX_DIR_BUNDLES = 1000
/** Time allowed to download a bundle. */
export const FETCH_TIMEOUT_MS = 60_000

export interface RulesVersion {
  /** bundle id (sha256 hex) or 'local-<time>' for a hand-made folder */
  id: string
  /** folder name under rules-store */
  dir: string
  created: string | null
  key_id: string | null
  installed_at: string
  files: number
}

export interface RulesState {
  version: 1
  current: RulesVersion | null
  previous: RulesVersion | null
}

export interface InstallResult {
  changed: boolean
  current: RulesVersion
  previous: RulesVersion | null
  /** the linked rules folder */
  rulesDir: string
}

/** Problems found by linting the staged rules, as one-line messages (empty = fine). */
export type LintStaged = (dir: string) => string[]

export interface InstallOptions {
  lint?: LintStaged
  /** install a bundle older than the current one (default: refused, a replayed old bundle) */
  allowDowngrade?: boolean
  lockTimeoutMs?: number
}

const stateFile = (stateDir: string) => path.join(stateDir, RULES_STATE_FILE)

export async function readRulesState(stateDir: string): Promise<RulesState> {
  try {
    const v = JSON.parse(await readFile(stateFile(stateDir), 'utf8')) as RulesState
    if (v && v.version === 1) return {version: 1, current: v.current ?? null, previous: v.previous ?? null}
  } catch {
    // none yet, or unreadable: start over
  }
  return {version: 1, current: null, previous: null}
}

/** Point `link` at `target` atomically (new link beside it, then rename over it). */
async function swapLink(link: string, target: string): Promise<void> {
  const tmp = path.join(path.dirname(link), `.${path.basename(link)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  await symlink(target, tmp)
  try {
    await rename(tmp, link)
  } catch (e) {
    await rm(tmp, {force: true})
    throw e
  }
  await fsyncDir(path.dirname(link))
}

function versionDirName(created: string | null, id: string): string {
  const c = (created ?? new Date().toISOString()).replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
  return `${c}-${id.replace(/^local-/, 'local').slice(0, 12)}`
}

/** Write the bundle into staging, lint, move into the store, swap the link, record the state. */
export async function installBundle(projectDir: string, v: Extract<VerifyResult, {ok: true}>, opts: InstallOptions = {}): Promise<InstallResult> {
  const stateDir = path.join(projectDir, '.patchpoint')
  const store = path.join(stateDir, RULES_STORE_DIR)
  const link = path.join(projectDir, 'rules')
  return withLock(projectDir, RULES_LOCK, async () => {
    const state = await readRulesState(stateDir)
    const linked = await linkTarget(link)
    if (state.current && state.current.id === v.id && linked === path.join(store, state.current.dir)) {
      return {changed: false, current: state.current, previous: state.previous, rulesDir: linked}
    }
    if (state.current?.created && !opts.allowDowngrade && Date.parse(v.manifest.created) < Date.parse(state.current.created)) {
      throw new UserError(`bundle is older (${v.manifest.created}) than the installed rules (${state.current.created}); refused`, {
        code: 'BUNDLE_DOWNGRADE', suggestion: 'use --rollback to go back, or --allow-downgrade if this is intended',
      })
    }
    await mkdir(store, {recursive: true})
    const staging = path.join(store, `.staging-${process.pid}-${randomBytes(4).toString('hex')}`)
    try {
      await mkdir(staging)
      for (const [rel, bytes] of v.files) {
        const dest = path.join(staging, ...rel.split('/'))
        await mkdir(path.dirname(dest), {recursive: true})
        await writeFile(dest, bytes, {mode: 0o644, flag: 'wx'})
      }
      const problems = opts.lint ? opts.lint(staging) : []
      if (problems.length > 0) {
        throw new UserError(`bundle rejected by lint: ${problems[0].split(staging + path.sep).join('')}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}; rules unchanged`, {
          code: 'BUNDLE_LINT', details: problems.slice(1, 20).map((p) => p.split(staging + path.sep).join('')),
        })
      }
      const name = versionDirName(v.manifest.created, v.id)
      const final = path.join(store, name)
      await rm(final, {recursive: true, force: true}) // same bundle installed earlier, then rolled away
      await rename(staging, final)
      // a hand-made rules/ folder (not our link) becomes the previous version
      let previous = state.current
      const st = await lstat(link).catch(() => undefined)
      if (st && !st.isSymbolicLink()) {
        if (!st.isDirectory()) throw new UserError(`${link} exists and is not a folder; move it away first`)
        const installedAt = new Date().toISOString()
        const localName = versionDirName(installedAt, `local-${randomBytes(3).toString('hex')}`)
        await rename(link, path.join(store, localName))
        previous = {id: `local-${installedAt}`, dir: localName, created: null, key_id: null, installed_at: installedAt, files: -1}
      }
      await swapLink(link, path.relative(projectDir, final))
      const current: RulesVersion = {id: v.id, dir: name, created: v.manifest.created, key_id: v.keyId, installed_at: new Date().toISOString(), files: v.files.size}
      const next: RulesState = {version: 1, current, previous: previous && previous.dir !== name ? previous : null}
      await writeJsonAtomic(stateFile(stateDir), next)
      await prune(store, next)
      return {changed: true, current, previous: next.previous, rulesDir: final}
    } finally {
      await rm(staging, {recursive: true, force: true})
    }
  }, {timeoutMs: opts.lockTimeoutMs})
}

/** Swap back to the previous version (the current one becomes previous: rollback twice = undo). */
export async function rollbackRules(projectDir: string, opts: {lockTimeoutMs?: number} = {}): Promise<InstallResult> {
  const stateDir = path.join(projectDir, '.patchpoint')
  const store = path.join(stateDir, RULES_STORE_DIR)
  const link = path.join(projectDir, 'rules')
  return withLock(projectDir, RULES_LOCK, async () => {
    const state = await readRulesState(stateDir)
    if (!state.previous) throw new UserError('no previous rules to roll back to', {code: 'NO_PREVIOUS_RULES'})
    const target = path.join(store, state.previous.dir)
    if (!(await stat(target).catch(() => undefined))?.isDirectory()) {
      throw new UserError(`previous rules folder ${target} is missing; nothing changed`, {code: 'NO_PREVIOUS_RULES'})
    }
    const st = await lstat(link).catch(() => undefined)
    if (st && !st.isSymbolicLink()) throw new UserError(`${link} is a folder not managed by rules update; nothing changed`)
    await swapLink(link, path.relative(projectDir, target))
    const next: RulesState = {version: 1, current: state.previous, previous: state.current}
    await writeJsonAtomic(stateFile(stateDir), next)
    return {changed: true, current: next.current!, previous: next.previous, rulesDir: target}
  }, {timeoutMs: opts.lockTimeoutMs})
}

async function linkTarget(link: string): Promise<string | undefined> {
  try {
    return path.resolve(path.dirname(link), await readlink(link))
  } catch {
    return undefined
  }
}

/** Remove store folders that are neither current nor previous (and stale staging folders). */
async function prune(store: string, state: RulesState): Promise<void> {
  const keep = new Set([state.current?.dir, state.previous?.dir])
  for (const n of await readdir(store).catch(() => [] as string[])) {
    if (keep.has(n)) continue
    if (n.startsWith('.staging-')) {
      const pid = Number(n.split('-')[1])
      if (pid === process.pid) continue
      try {
        process.kill(pid, 0)
        continue // its owner is alive
      } catch {
        // owner gone: stale
      }
    }
    await rm(path.join(store, n), {recursive: true, force: true})
  }
}

/**
 * The bundle text from `--from`: an http(s) URL (size-capped download), a file, or a folder
 * (its newest `*.bundle.json`, by modification time). UserError when there is none.
 */
export async function readBundleSource(from: string, fetchImpl: typeof fetch = fetch): Promise<{text: Buffer; source: string}> {
  if (/^https?:\/\//i.test(from)) {
    let res: Response
    try {
      res = await fetchImpl(from, {signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: 'follow'})
    } catch (e) {
      throw new UserError(`cannot download ${from}: ${(e as Error).message}`, {code: 'BUNDLE_FETCH'})
    }
    if (!res.ok || !res.body) throw new UserError(`cannot download ${from}: HTTP ${res.status}`, {code: 'BUNDLE_FETCH'})
    const chunks: Buffer[] = []
    let len = 0
    const reader = res.body.getReader()
    for (;;) {
      const {done, value} = await reader.read()
      if (done) break
      len += value.length
      if (len > MAX_BUNDLE_BYTES) {
        await reader.cancel().catch(() => {})
        throw new UserError(`${from}: larger than ${MAX_BUNDLE_BYTES} bytes; refused`, {code: 'BUNDLE_TOO_LARGE'})
      }
      chunks.push(Buffer.from(value))
    }
    return {text: Buffer.concat(chunks, len), source: from}
  }
  const abs = path.resolve(from)
  let st
  try {
    st = await stat(abs)
  } catch {
    throw new UserError(`${from}: no such file or folder`, {code: 'BUNDLE_NOT_FOUND'})
  }
  let file = abs
  if (st.isDirectory()) {
    const names = (await readdir(abs)).filter((n) => n.endsWith('.bundle.json')).slice(0, MAX_DIR_BUNDLES)
    let best: {f: string; t: number} | undefined
    for (const n of names) {
      const s = await stat(path.join(abs, n)).catch(() => undefined)
      if (s?.isFile() && (!best || s.mtimeMs > best.t || (s.mtimeMs === best.t && n > path.basename(best.f)))) best = {f: path.join(abs, n), t: s.mtimeMs}
    }
    if (!best) throw new UserError(`${from}: no *.bundle.json file in this folder`, {code: 'BUNDLE_NOT_FOUND'})
    file = best.f
    st = await stat(file)
  }
  if (st.size > MAX_BUNDLE_BYTES) throw new UserError(`${file}: larger than ${MAX_BUNDLE_BYTES} bytes; refused`, {code: 'BUNDLE_TOO_LARGE'})
  return {text: await readFile(file), source: file}
}
