import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {UserError} from '../errors.js'
import {CONFIG_TEMPLATE, initProject} from './init.js'

const root = realpathSync(mkdtempSync(path.join(tmpdir(), 'pp-init-')))

describe('initProject', () => {
  it('creates the folder, a commented config and the state folder', async () => {
    const dir = path.join(root, 'new', 'gw')
    const r = await initProject(dir)
    expect(r.project).toBe(dir)
    expect(r.created).toBe(true)
    expect(r.files).toEqual(expect.arrayContaining([
      path.join(dir, 'patchpoint.yaml'), path.join(dir, '.patchpoint'), path.join(dir, '.patchpoint', 'events'),
      path.join(dir, '.patchpoint', 'README'),
    ]))
    expect(readFileSync(path.join(dir, 'patchpoint.yaml'), 'utf8')).toBe(CONFIG_TEMPLATE)
    expect(statSync(path.join(dir, '.patchpoint', 'events')).isDirectory()).toBe(true)
    expect(readFileSync(path.join(dir, '.patchpoint', 'README'), 'utf8').split('\n').filter(Boolean)).toHaveLength(1)
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([])
  })

  it('is idempotent and never overwrites the user config', async () => {
    const dir = path.join(root, 'idem')
    await initProject(dir)
    writeFileSync(path.join(dir, 'patchpoint.yaml'), 'gateway: {id: mine}\n')
    const before = statSync(path.join(dir, 'patchpoint.yaml')).mtimeMs
    const r = await initProject(dir, {force: true})
    expect(r).toEqual({project: dir, created: false, files: []})
    expect(readFileSync(path.join(dir, 'patchpoint.yaml'), 'utf8')).toBe('gateway: {id: mine}\n')
    expect(statSync(path.join(dir, 'patchpoint.yaml')).mtimeMs).toBe(before)
  })

  it('restores a deleted state folder without touching the config', async () => {
    const dir = path.join(root, 'restore')
    await initProject(dir)
    rmSync(path.join(dir, '.patchpoint'), {recursive: true})
    const r = await initProject(dir)
    expect(r.created).toBe(false)
    expect(r.files).toContain(path.join(dir, '.patchpoint', 'events'))
    expect(existsSync(path.join(dir, '.patchpoint', 'README'))).toBe(true)
  })

  it('refuses a project nested in another unless forced', async () => {
    const outer = path.join(root, 'outer')
    await initProject(outer)
    const inner = path.join(outer, 'sub', 'inner')
    await expect(initProject(inner)).rejects.toThrow(`${inner} is inside the patchpoint project ${outer}`)
    expect(existsSync(inner)).toBe(false)
    expect((await initProject(inner, {force: true})).created).toBe(true)
  })

  it('a file in the way is a UserError', async () => {
    const f = path.join(root, 'afile')
    writeFileSync(f, 'x')
    await expect(initProject(f)).rejects.toBeInstanceOf(UserError)
    mkdirSync(path.join(root, 'ro'))
    const blocked = path.join(root, 'ro', 'x')
    writeFileSync(blocked, '')
    const err = await initProject(path.join(blocked, 'deeper')).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UserError)
    expect((err as UserError).message).toMatch(/cannot initialize .*ENOTDIR/)
  })
})
