import {execFile, spawn} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {hostname, tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'
import ts from 'typescript'
import {describe, expect, it} from 'vitest'
import {UserError} from '../errors.js'
import {lockPath, readLockHolder, withLock} from './lock.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = mkdtempSync(path.join(tmpdir(), 'pp-lock-'))

/** Transpile lock.ts and its imports to plain JS so a child `node` can run them. */
function buildChildModules(): string {
  const out = path.join(root, 'js')
  for (const rel of ['project/lock.ts', 'errors.ts']) {
    const src = readFileSync(path.join(here, '..', rel), 'utf8')
    const js = ts.transpileModule(src, {compilerOptions: {module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022}}).outputText
    const dest = path.join(out, rel.replace(/\.ts$/, '.js'))
    mkdirSync(path.dirname(dest), {recursive: true})
    writeFileSync(dest, js)
  }
  writeFileSync(path.join(out, 'package.json'), '{"type":"module"}')
  return path.join(out, 'project', 'lock.js')
}

function deadPid(): Promise<number> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['-e', ''])
    c.on('exit', () => resolve(c.pid!))
  })
}

describe('withLock', () => {
  it('two processes incrementing a counter 50 times each end at 100', async () => {
    const lockJs = buildChildModules()
    const project = path.join(root, 'race')
    mkdirSync(project)
    const counter = path.join(project, 'counter')
    writeFileSync(counter, '0')
    const script = `
      import {readFileSync, writeFileSync} from 'node:fs'
      import {withLock} from ${JSON.stringify(lockJs)}
      const [project, counter] = process.argv.slice(1)
      for (let i = 0; i < 50; i++) {
        await withLock(project, 'counter', async () => {
          const n = Number(readFileSync(counter, 'utf8'))
          await new Promise((r) => setImmediate(r)) // widen the race window
          writeFileSync(counter, String(n + 1))
        }, {timeoutMs: 30000})
      }`
    const run = () => promisify(execFile)(process.execPath, ['--input-type=module', '-e', script, project, counter])
    await Promise.all([run(), run()])
    expect(readFileSync(counter, 'utf8')).toBe('100')
    expect(existsSync(lockPath(project, 'counter'))).toBe(false)
  })

  it('returns fn result, holds the lock meanwhile, and releases it even when fn throws', async () => {
    const project = path.join(root, 'basic')
    const file = lockPath(project, 'job')
    const v = await withLock(project, 'job', async () => {
      const h = await readLockHolder(file)
      expect(h).toMatchObject({name: 'job', pid: process.pid, hostname: hostname()})
      return 42
    })
    expect(v).toBe(42)
    expect(existsSync(file)).toBe(false)
    await expect(withLock(project, 'job', () => { throw new Error('boom') })).rejects.toThrow('boom')
    expect(existsSync(file)).toBe(false)
  })

  it('times out with a UserError naming the holder', async () => {
    const project = path.join(root, 'busy')
    mkdirSync(path.join(project, '.patchpoint', 'locks'), {recursive: true})
    const file = lockPath(project, 'gw')
    // a live holder: the parent of this process (alive for sure), on this host
    writeFileSync(file, JSON.stringify({name: 'gw', pid: process.ppid, hostname: hostname(), time: '2026-01-01T00:00:00.000Z', token: 't'}))
    const t0 = Date.now()
    const err = await withLock(project, 'gw', () => 1, {timeoutMs: 150}).catch((e: unknown) => e)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140)
    expect(err).toBeInstanceOf(UserError)
    expect((err as UserError).message).toBe(`lock 'gw' is held by pid ${process.ppid} on ${hostname()} since 2026-01-01T00:00:00.000Z; gave up after 150 ms`)
    expect((err as UserError).suggestion).toContain(file)
    expect(readFileSync(file, 'utf8')).toContain('"token":"t"') // not stolen
  })

  it('a lock of another host is never taken over', async () => {
    const project = path.join(root, 'remote')
    mkdirSync(path.join(project, '.patchpoint', 'locks'), {recursive: true})
    writeFileSync(lockPath(project, 'gw'), JSON.stringify({name: 'gw', pid: 1, hostname: 'elsewhere.invalid', time: 'x', token: 't'}))
    await expect(withLock(project, 'gw', () => 1, {timeoutMs: 0})).rejects.toThrow(/held by pid 1 on elsewhere.invalid/)
  })

  it('takes over a stale lock of a dead process on this host', async () => {
    const project = path.join(root, 'stale')
    mkdirSync(path.join(project, '.patchpoint', 'locks'), {recursive: true})
    const file = lockPath(project, 'gw')
    writeFileSync(file, JSON.stringify({name: 'gw', pid: await deadPid(), hostname: hostname(), time: 'x', token: 'old'}))
    expect(await withLock(project, 'gw', () => 'mine', {timeoutMs: 0})).toBe('mine')
    expect(existsSync(file)).toBe(false)
  })

  it('refuses nested use in one process instead of deadlocking', async () => {
    const project = path.join(root, 'nested')
    await expect(withLock(project, 'a', () => withLock(project, 'a', () => 1, {timeoutMs: 5000}))).rejects.toThrow(/already held by this process/)
  })

  it('rejects lock names that could escape the lock folder', () => {
    expect(() => lockPath(root, '../x')).toThrow()
    expect(() => lockPath(root, '')).toThrow()
  })
})
