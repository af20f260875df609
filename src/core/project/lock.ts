/**
 * Exclusive, cross-process lock files in `<project>/.patchpoint/locks/<name>.lock`, so a cron job
 * and a running gateway never clobber each other's state.
 *
 * - The lock file appears atomically WITH its content (written to a temp file, then `link()`ed
 *   into place, which fails with EEXIST if someone holds it), holding pid, hostname, time, the
 *   holder's process start time and a random token.
 * - A lock whose holder is a dead process on this host (or a recycled pid: start time differs)
 *   is stale and taken over. Takeover is serialized by a second `.takeover` lock and re-checks
 *   that the lock file is unchanged, so two waiters cannot both take over.
 * - Release removes the file only if it still holds our token. Locks still held when the
 *   process exits are removed by an `exit` handler.
 * - Timeout -> UserError naming the holder.
 */
import {randomBytes} from 'node:crypto'
import {readFileSync, unlinkSync} from 'node:fs'
import {link, mkdir, open, stat, unlink, writeFile} from 'node:fs/promises'
import {hostname} from 'node:os'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {UserError} from '../errors.js'

export const DEFAULT_LOCK_TIMEOUT_MS = 10_000
/** first poll interval; doubles up to LOCK_MAX_POLL_MS */
export const LOCK_POLL_MS = 10
export const LOCK_MAX_POLL_MS = 200
/** a takeover lock or an unreadable lock file older than this is abandoned */
export const LOCK_ABANDONED_MS = 10_000
/** lock files are tiny; never read more than this */
export const MAX_LOCK_FILE_BYTES = 4096

export interface LockOptions {
  /** give up after this long (default DEFAULT_LOCK_TIMEOUT_MS); 0 = try once */
  timeoutMs?: number
  /** folder for lock files (default `<projectDir>/.patchpoint/locks`) */
  lockDir?: string
}

export interface LockHolder {
  name: string
  pid: number
  hostname: string
  /** ISO time the lock was taken */
  time: string
  /** holder's process start time (Linux /proc clock ticks), to detect recycled pids */
  start?: string
  token: string
}

const held = new Map<string, string>() // lock file -> our token
let exitHookInstalled = false

export function lockPath(projectDir: string, name: string, lockDir?: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) {
    throw new Error(`invalid lock name ${JSON.stringify(name)}`)
  }
  return path.join(lockDir ?? path.join(projectDir, '.patchpoint', 'locks'), `${name}.lock`)
}

/** Run fn while holding the named lock; the lock is released however fn ends. */
export async function withLock<T>(
  projectDir: string,
  name: string,
  fn: () => T | Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  const file = lockPath(projectDir, name, options.lockDir)
  const token = await acquire(file, name, options.timeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS)
  try {
    return await fn()
  } finally {
    await release(file, token)
  }
}

/** Who holds a lock file now (undefined if free or unreadable). */
export async function readLockHolder(file: string): Promise<LockHolder | undefined> {
  const raw = await readSmall(file)
  return raw === undefined ? undefined : parseHolder(raw)
}

async function acquire(file: string, name: string, timeoutMs: number): Promise<string> {
  await mkdir(path.dirname(file), {recursive: true})
  const token = randomBytes(12).toString('hex')
  const holder: LockHolder = {name, pid: process.pid, hostname: hostname(), time: '', start: procStart(process.pid), token}
  const deadline = Date.now() + timeoutMs
  let poll = LOCK_POLL_MS
  for (;;) {
    holder.time = new Date().toISOString()
    if (await createExclusive(file, JSON.stringify(holder) + '\n')) {
      held.set(file, token)
      installExitHook()
      return token
    }
    const raw = await readSmall(file)
    if (raw === undefined) continue // released meanwhile: retry at once
    const other = parseHolder(raw)
    if (other && other.pid === process.pid && other.hostname === holder.hostname && held.get(file) === other.token) {
      throw new Error(`lock '${name}' is already held by this process (nested withLock)`)
    }
    if (await isStale(file, other)) {
      await takeOver(file, raw)
      continue
    }
    if (Date.now() >= deadline) {
      const who = other
        ? `pid ${other.pid} on ${other.hostname} since ${other.time}`
        : 'an unknown process (unreadable lock file)'
      throw new UserError(`lock '${name}' is held by ${who}; gave up after ${timeoutMs} ms`, {
        code: 'LOCK_TIMEOUT',
        suggestion: `wait for it to finish; if that process is gone, delete ${file}`,
      })
    }
    const jitter = Math.random() * poll
    await sleep(Math.min(poll + jitter, Math.max(1, deadline - Date.now())))
    poll = Math.min(poll * 2, LOCK_MAX_POLL_MS)
  }
}

/** Create `file` with `content` only if absent; the file never exists without its content. */
async function createExclusive(file: string, content: string): Promise<boolean> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  await writeFile(tmp, content, {flag: 'wx', mode: 0o644})
  try {
    await link(tmp, file)
    return true
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') return false
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err
    // no hard links on this filesystem: O_EXCL create (content follows a moment later)
    try {
      await writeFile(file, content, {flag: 'wx', mode: 0o644})
      return true
    } catch (err2) {
      if ((err2 as NodeJS.ErrnoException).code === 'EEXIST') return false
      throw err2
    }
  } finally {
    await unlink(tmp).catch(() => {})
  }
}

async function isStale(file: string, holder: LockHolder | undefined): Promise<boolean> {
  if (!holder) return olderThan(file, LOCK_ABANDONED_MS)
  if (holder.hostname !== hostname()) return false // cannot check another host's processes
  if (!pidAlive(holder.pid)) return true
  if (holder.start !== undefined) {
    const now = procStart(holder.pid)
    if (now !== undefined && now !== holder.start) return true // pid recycled
  }
  return false
}

/** Remove a stale lock, unless it changed since we looked (serialized by a takeover lock). */
async function takeOver(file: string, rawSeen: string): Promise<void> {
  const guard = `${file}.takeover`
  let fh
  try {
    fh = await open(guard, 'wx')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    if (await olderThan(guard, LOCK_ABANDONED_MS)) await unlink(guard).catch(() => {})
    else await sleep(LOCK_POLL_MS)
    return
  }
  try {
    await fh.close()
    if ((await readSmall(file)) === rawSeen) await unlink(file).catch(() => {})
  } finally {
    await unlink(guard).catch(() => {})
  }
}

async function release(file: string, token: string): Promise<void> {
  held.delete(file)
  const raw = await readSmall(file)
  if (raw !== undefined && parseHolder(raw)?.token === token) await unlink(file).catch(() => {})
}

function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const [file, token] of held) {
      try {
        if (parseHolder(readFileSync(file, 'utf8').slice(0, MAX_LOCK_FILE_BYTES))?.token === token) unlinkSync(file)
      } catch {
        // already gone
      }
    }
  })
}

async function readSmall(file: string): Promise<string | undefined> {
  let fh
  try {
    fh = await open(file, 'r')
    const buf = Buffer.alloc(MAX_LOCK_FILE_BYTES)
    const {bytesRead} = await fh.read(buf, 0, buf.length, 0)
    return buf.toString('utf8', 0, bytesRead)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  } finally {
    await fh?.close()
  }
}

function parseHolder(raw: string): LockHolder | undefined {
  try {
    const v = JSON.parse(raw) as Partial<LockHolder>
    if (typeof v.pid !== 'number' || typeof v.hostname !== 'string' || typeof v.token !== 'string') return undefined
    return {name: String(v.name ?? ''), pid: v.pid, hostname: v.hostname, time: String(v.time ?? ''), start: typeof v.start === 'string' ? v.start : undefined, token: v.token}
  } catch {
    return undefined
  }
}

async function olderThan(file: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(file)).mtimeMs > ms
  } catch {
    return false
  }
}

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' // exists, owned by someone else
  }
}

/** Process start time from /proc/<pid>/stat (field 22), or undefined off Linux. */
function procStart(pid: number): string | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = s.slice(s.lastIndexOf(')') + 2).split(' ')
    return fields[19]
  } catch {
    return undefined
  }
}
