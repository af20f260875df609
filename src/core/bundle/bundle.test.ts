import {cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import fc from 'fast-check'
import {describe, expect, it} from 'vitest'
import {packageRulesDir} from '../rules/rule-schema.js'
import {lintRules, formatLintError} from '../rules/lint.js'
import {canonicalJson, createBundle, generateSigningKey, parsePublicKey, readTrustedKeys, validBundlePath, verifyBundle} from './bundle.js'
import type {RuleBundle, TrustedKey} from './bundle.js'
import {installBundle, readBundleSource, readRulesState, rollbackRules} from './install.js'

const RUNS = Number(process.env.PATCHPOINT_FUZZ_RUNS ?? 30)
const tmp = () => mkdtempSync(path.join(tmpdir(), 'pp-bundle-'))
const key = generateSigningKey()
const trusted: TrustedKey[] = [{keyId: key.keyId, key: parsePublicKey(key.publicPem)!, source: 'test'}]
const lint = (dir: string) => lintRules([dir]).errors.filter((e) => e.severity === 'error').map(formatLintError)

function rulesFolder(): string {
  const d = tmp()
  mkdirSync(path.join(d, 'generic'))
  cpSync(path.join(packageRulesDir, 'generic', 'PP-SHELLSHOCK.yaml'), path.join(d, 'generic', 'PP-SHELLSHOCK.yaml'))
  return d
}

function project(): string {
  const p = tmp()
  writeFileSync(path.join(p, 'patchpoint.yaml'), 'gateway: {id: t}\n')
  mkdirSync(path.join(p, '.patchpoint', 'trusted-keys'), {recursive: true})
  writeFileSync(path.join(p, '.patchpoint', 'trusted-keys', 'ops.pub'), key.publicPem)
  return p
}

/** every file under dir, relative path -> content */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, {withFileTypes: true})) {
      const p = path.join(d, e.name)
      if (e.isDirectory()) walk(p, rel + e.name + '/')
      else out[rel + e.name] = readFileSync(p, 'utf8')
    }
  }
  walk(dir, '')
  return out
}

describe('bundle signing', () => {
  const bundle = createBundle(rulesFolder(), key.privatePem, {comment: 'test'})
  const text = JSON.stringify(bundle)

  it('round-trips: verifies with the trusted key, files equal the source', () => {
    const v = verifyBundle(text, trusted)
    expect(v.ok).toBe(true)
    if (!v.ok) return
    expect(v.keyId).toBe(key.keyId)
    expect([...v.files.keys()]).toEqual(['generic/PP-SHELLSHOCK.yaml'])
    expect(v.files.get('generic/PP-SHELLSHOCK.yaml')!.toString()).toBe(readFileSync(path.join(packageRulesDir, 'generic/PP-SHELLSHOCK.yaml'), 'utf8'))
  })

  const refuse = (b: unknown, why: RegExp, keys = trusted) => {
    const v = verifyBundle(typeof b === 'string' ? b : JSON.stringify(b), keys)
    expect(v.ok).toBe(false)
    if (!v.ok) expect(v.reason).toMatch(why)
  }
  const clone = (): RuleBundle => JSON.parse(text)

  it('refuses tampered, unsigned, untrusted and malformed bundles, each with its reason', () => {
    const b1 = clone()
    b1.files['generic/PP-SHELLSHOCK.yaml'] = Buffer.from('id: evil\n').toString('base64')
    refuse(b1, /content differs|size differs/)
    const b2 = clone()
    b2.manifest.comment = 'changed'
    refuse(b2, /modified after signing/)
    const b3 = clone()
    b3.files['generic/extra.yaml'] = 'AAAA'
    refuse(b3, /not in the signed manifest/)
    const b4 = clone()
    delete b4.signature
    refuse(b4, /not signed/)
    const other = generateSigningKey()
    refuse(text, /untrusted key/, [{keyId: other.keyId, key: parsePublicKey(other.publicPem)!, source: 'x'}])
    refuse(text, /no trusted keys/, [])
    refuse('{', /not JSON/)
    refuse({format: 'zip'}, /not a rule bundle/)
    const b5 = clone()
    b5.signature!.value = 'AAAA'
    refuse(b5, /malformed/)
  })

  it('a signed manifest with a path escaping the folder is refused', () => {
    for (const bad of ['../x.yaml', '/etc/passwd', 'a/../../b', '.hidden', 'a//b', 'a\\b', '']) expect(validBundlePath(bad)).toBe(false)
    expect(validBundlePath('apache/PP-2021-44228.yaml')).toBe(true)
  })

  it('verification never throws on arbitrary input', () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.json(), fc.anything().map((x) => {
      try {
        return JSON.stringify({...clone(), manifest: x})
      } catch {
        return '{}'
      }
    })), (s) => {
      const v = verifyBundle(s ?? '', trusted)
      expect(v.ok).toBe(false)
    }), {numRuns: RUNS})
  })

  it('canonical JSON sorts keys at every level', () => {
    expect(canonicalJson({b: 1, a: [{d: 1, c: 2}]})).toBe('{"a":[{"c":2,"d":1}],"b":1}')
  })
})

describe('install and rollback', () => {
  it('installs atomically via the rules link, keeps the hand-made folder for rollback, is idempotent', async () => {
    const p = project()
    mkdirSync(path.join(p, 'rules'))
    writeFileSync(path.join(p, 'rules', 'note.txt'), 'hand made')
    const v = verifyBundle(JSON.stringify(createBundle(rulesFolder(), key.privatePem)), await readTrustedKeys(path.join(p, '.patchpoint')))
    if (!v.ok) throw new Error(v.reason)
    const r = await installBundle(p, v, {lint})
    expect(r.changed).toBe(true)
    expect(lstatSync(path.join(p, 'rules')).isSymbolicLink()).toBe(true)
    expect(readlinkSync(path.join(p, 'rules'))).toMatch(/^\.patchpoint\/rules-store\//)
    expect(Object.keys(snapshot(path.join(p, 'rules')))).toEqual(['generic/PP-SHELLSHOCK.yaml'])
    expect(lintRules([path.join(p, 'rules')]).rules.map((x) => x.id)).toEqual(['PP-SHELLSHOCK'])
    expect((await installBundle(p, v, {lint})).changed).toBe(false)
    const back = await rollbackRules(p)
    expect(back.current.id).toMatch(/^local-/)
    expect(snapshot(path.join(p, 'rules'))).toEqual({'note.txt': 'hand made'})
    await rollbackRules(p) // rollback twice = redo
    expect(Object.keys(snapshot(path.join(p, 'rules')))).toEqual(['generic/PP-SHELLSHOCK.yaml'])
    expect((await readRulesState(path.join(p, '.patchpoint'))).previous?.id).toMatch(/^local-/)
  })

  it('a bundle failing lint changes nothing', async () => {
    const p = project()
    const good = verifyBundle(JSON.stringify(createBundle(rulesFolder(), key.privatePem, {created: new Date('2026-01-01')})), trusted)
    if (!good.ok) throw new Error(good.reason)
    await installBundle(p, good, {lint})
    const before = snapshot(path.join(p, 'rules'))
    const stateBefore = readFileSync(path.join(p, '.patchpoint', 'rules-state.json'), 'utf8')
    const bad = rulesFolder()
    writeFileSync(path.join(bad, 'generic', 'PP-BROKEN.yaml'), 'id: PP-BROKEN\nthis is: [not a rule\n')
    const v = verifyBundle(JSON.stringify(createBundle(bad, key.privatePem, {created: new Date('2026-02-01')})), trusted)
    if (!v.ok) throw new Error(v.reason)
    await expect(installBundle(p, v, {lint})).rejects.toThrow(/rejected by lint: generic\/PP-BROKEN\.yaml:\d+:\d+: .*rules unchanged/)
    expect(snapshot(path.join(p, 'rules'))).toEqual(before)
    expect(readFileSync(path.join(p, '.patchpoint', 'rules-state.json'), 'utf8')).toBe(stateBefore)
    expect(readdirSync(path.join(p, '.patchpoint', 'rules-store')).filter((n) => n.startsWith('.staging'))).toEqual([])
  })

  it('refuses an older bundle (replay) unless allowed', async () => {
    const p = project()
    const mk = (d: string) => {
      const v = verifyBundle(JSON.stringify(createBundle(rulesFolder(), key.privatePem, {created: new Date(d)})), trusted)
      if (!v.ok) throw new Error(v.reason)
      return v
    }
    await installBundle(p, mk('2026-03-01'), {lint})
    await expect(installBundle(p, mk('2026-01-01'), {lint})).rejects.toThrow(/older/)
    expect((await installBundle(p, mk('2026-01-01'), {lint, allowDowngrade: true})).changed).toBe(true)
    expect(readdirSync(path.join(p, '.patchpoint', 'rules-store'))).toHaveLength(2) // current + previous only
  })

  it('rollback without a previous version is a user error', async () => {
    await expect(rollbackRules(project())).rejects.toThrow(/no previous rules/)
  })

  it('reads a bundle from a folder (newest *.bundle.json) and refuses a missing one', async () => {
    const d = tmp()
    writeFileSync(path.join(d, 'a.bundle.json'), '{"a":1}')
    const r = await readBundleSource(d)
    expect(r.source).toBe(path.join(d, 'a.bundle.json'))
    await expect(readBundleSource(path.join(d, 'none'))).rejects.toThrow(/no such file/)
    expect(existsSync(d)).toBe(true)
  })
})
