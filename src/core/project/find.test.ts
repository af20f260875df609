import {mkdirSync, mkdtempSync, realpathSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {UserError} from '../errors.js'
import {findProject} from './find.js'

const root = realpathSync(mkdtempSync(path.join(tmpdir(), 'pp-find-')))
const proj = path.join(root, 'proj')
const deep = path.join(proj, 'a', 'b', 'c')
const other = path.join(root, 'other')
mkdirSync(deep, {recursive: true})
mkdirSync(path.join(other, 'x'), {recursive: true})
writeFileSync(path.join(proj, 'patchpoint.yaml'), '')
writeFileSync(path.join(other, 'patchpoint.yaml'), '')

describe('findProject', () => {
  it('walks up from cwd like git', () => {
    const loc = findProject({cwd: deep})
    expect(loc).toEqual({dir: proj, configPath: path.join(proj, 'patchpoint.yaml'), stateDir: path.join(proj, '.patchpoint'), source: 'walk'})
  })

  it('the flag wins over the env, the env over walking', () => {
    expect(findProject({explicit: other, env: proj, cwd: deep})).toMatchObject({dir: other, source: 'flag'})
    expect(findProject({env: other, cwd: deep})).toMatchObject({dir: other, source: 'env'})
    expect(findProject({explicit: '../../../../other', cwd: deep}).dir).toBe(other)
  })

  it('an explicit folder must itself be a project (no walking up from it)', () => {
    expect(() => findProject({explicit: path.join(other, 'x'), cwd: root})).toThrow(/--project: not a patchpoint project \(no patchpoint.yaml in .*other\/x\)/)
    expect(() => findProject({env: path.join(root, 'missing'), cwd: root})).toThrow(/PATCHPOINT_PROJECT: .*missing does not exist/)
    expect(() => findProject({explicit: path.join(proj, 'patchpoint.yaml'), cwd: root})).toThrow(/is not a folder/)
  })

  it('not found: UserError naming where it looked and suggesting init', () => {
    let err: unknown
    try {
      findProject({cwd: root})
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(UserError)
    expect((err as UserError).message).toBe(`not a patchpoint project: no patchpoint.yaml in ${root} or any parent folder`)
    expect((err as UserError).suggestion).toMatch(/patchpoint init/)
    expect((err as UserError).exitCode).toBe(2)
  })
})
