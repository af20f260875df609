/**
 * `protect` on a real project folder (runProtect in-process), with an inventory shaped like what
 * `fingerprint` writes for the lab's services, and the shipped rule pack.
 */
import {copyFileSync, mkdtempSync, readFileSync, realpathSync, writeFileSync, existsSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {beforeAll, describe, expect, it} from 'vitest'
import {initProject} from '../../src/core/project/init.js'
import {projectLocation, type ProjectLocation} from '../../src/core/project/find.js'
import {loadRules} from '../../src/core/rules/engine.js'
import {packageRulesDir} from '../../src/core/rules/rule-schema.js'
import type {CompiledRule} from '../../src/core/rules/compile.js'
import {loadPolicy} from '../../src/core/gateway/policy.js'
import type {Inventory} from '../../src/core/inventory/inventory.js'
import {runProtect, type ProtectOp} from '../../src/core/protect/protect.js'
import {UserError} from '../../src/core/errors.js'

const fixture = fileURLToPath(new URL('./fixtures/inventory-lab.json', import.meta.url))
const root = realpathSync(mkdtempSync(path.join(tmpdir(), 'pp-protect-')))
let rules: CompiledRule[] = []
let n = 0

beforeAll(() => {
  rules = loadRules(packageRulesDir).rules
})

async function project(): Promise<ProjectLocation> {
  const dir = path.join(root, `p${n++}`)
  await initProject(dir)
  const p = projectLocation(dir, 'flag')
  copyFileSync(fixture, path.join(p.stateDir, 'inventory.json'))
  return p
}

const T1 = '2026-03-02T10:05:00.000Z'
const T2 = '2026-03-09T08:00:00.000Z'
const T3 = '2026-03-20T08:00:00.000Z'
const protect = (p: ProjectLocation, op: ProtectOp = {op: 'show'}, now = T1, extra: {dryRun?: boolean; defaultAction?: 'fix' | 'log' | 'drop'} = {}) =>
  runProtect({project: p, op, rules, now, ...extra})
const files = (p: ProjectLocation) => ['policy.yaml', '.patchpoint/policy.json', '.patchpoint/retired.json']
  .map((f) => (existsSync(path.join(p.dir, f)) ? readFileSync(path.join(p.dir, f), 'utf8') : null))

function editInventory(p: ProjectLocation, fn: (inv: Inventory) => void): void {
  const file = path.join(p.stateDir, 'inventory.json')
  const inv = JSON.parse(readFileSync(file, 'utf8')) as Inventory
  fn(inv)
  writeFileSync(file, JSON.stringify(inv, null, 2) + '\n')
}
const service = (inv: Inventory, ip: string, port: number) => {
  const s = inv.hosts.find((h) => h.ip === ip)?.services.find((x) => x.port === port)
  if (!s) throw new Error(`no ${ip}:${port}`)
  return s
}

describe('protect --all', () => {
  it('assigns the recommended rules, compiles policy.json for run, and is idempotent', async () => {
    const p = await project()
    const first = await protect(p, {op: 'all', action: 'drop'})
    expect(first.changed).toBe(true)
    expect(first.diff.assignments.added).toContain('10.77.0.10:80/tcp')
    const policy = loadPolicy(path.join(p.stateDir, 'policy.json')) // the gateway's own validator accepts it
    const web = policy.services.find((s) => s.ip === '10.77.0.10' && s.port === 80)
    expect(web).toMatchObject({proto: 'tcp', protocol: 'http', action: 'drop'})
    expect(web?.rules).toContain('PP-2021-41773')
    expect(policy.services.find((s) => s.ip === '10.77.0.10' && s.port === 21)?.rules).toContain('PP-2011-2523')
    expect(policy.services.find((s) => s.ip === '10.77.0.10' && s.port === 25)?.rules).toContain('PP-2019-10149')
    expect(policy.services.find((s) => s.ip === '10.77.0.11' && s.port === 8080)?.rules).not.toContain('PP-2021-41773')
    expect(policy.services.find((s) => s.ip === '10.77.0.11' && s.port === 25)?.rules ?? []).not.toContain('PP-2019-10149')
    // OS hints -> reassembly policies per host
    expect(policy.hosts).toContainEqual({ip: '10.77.0.10', os: 'linux', defrag: 'linux', tcp: 'linux'})
    const before = files(p)
    const second = await protect(p, {op: 'all', action: 'drop'}, T2)
    expect(second.changed).toBe(false)
    expect(second.written).toEqual([])
    expect(second.diff.services).toEqual([])
    expect(files(p)).toEqual(before)
  })

  it('--dry-run reports the change and writes nothing', async () => {
    const p = await project()
    const r = await protect(p, {op: 'all'}, T1, {dryRun: true})
    expect(r.changed).toBe(true)
    expect(r.diff.services.length).toBeGreaterThan(0)
    expect(files(p)).toEqual([null, null, null])
  })

  it('without policy.yaml, showing writes nothing (a hand-written policy.json stays)', async () => {
    const p = await project()
    writeFileSync(path.join(p.stateDir, 'policy.json'), '{"services": []}\n')
    const r = await protect(p)
    expect(r.changed).toBe(false)
    expect(r.services.find((s) => s.host === '10.77.0.10' && s.port === 80)?.recommended.map((x) => x.rule_id)).toContain('PP-2021-41773')
    expect(files(p)).toEqual([null, '{"services": []}\n', null])
  })
})

describe('retirement', () => {
  it('retires a patch when fingerprint reports the fixed version, keeps it on reruns, and brings it back', async () => {
    const p = await project()
    await protect(p, {op: 'all'})
    editInventory(p, (inv) => {
      const s = service(inv, '10.77.0.10', 80)
      s.version = '2.4.51'
      s.last_seen = '2026-03-09T07:00:00.000Z'
    })
    const r = await protect(p, {op: 'show'}, T2)
    expect(r.changed).toBe(true)
    expect(r.diff.retired).toHaveLength(1)
    const entry = {
      host: '10.77.0.10', port: 80, proto: 'tcp', rule_id: 'PP-2021-41773', cve: 'CVE-2021-41773', cves: ['CVE-2021-41773', 'CVE-2021-42013'],
      product: 'apache/http_server', version: '2.4.51', retired_at: T2,
      evidence: {product: 'apache/http_server', version_seen: '2.4.51', source: 'fingerprint', seen_at: '2026-03-09T07:00:00.000Z', affected: ['>=2.4.49 <2.4.51'], fixed: ['2.4.51']},
    }
    expect(JSON.parse(readFileSync(path.join(p.stateDir, 'retired.json'), 'utf8'))).toEqual({version: 1, retired: [entry]})
    const view = r.services.find((s) => s.host === '10.77.0.10' && s.port === 80)
    expect(view?.retired).toEqual(['PP-2021-41773'])
    expect(view?.active).not.toContain('PP-2021-41773')
    expect(loadPolicy(path.join(p.stateDir, 'policy.json')).services.find((s) => s.ip === '10.77.0.10' && s.port === 80)?.rules ?? []).not.toContain('PP-2021-41773')
    expect(r.diff.services).toContainEqual(expect.objectContaining({service: '10.77.0.10:80/tcp', rules_removed: ['PP-2021-41773']}))

    // idempotent: later runs keep the first date
    const again = await protect(p, {op: 'show'}, T3)
    expect(again.changed).toBe(false)
    expect(again.retired).toEqual([entry])

    // the version goes back (a rollback): the virtual patch comes back
    editInventory(p, (inv) => {
      service(inv, '10.77.0.10', 80).version = '2.4.50'
    })
    const back = await protect(p, {op: 'show'}, T3)
    expect(back.diff.unretired.map((e) => e.rule_id)).toEqual(['PP-2021-41773'])
    expect(back.retired).toEqual([])
    expect(loadPolicy(path.join(p.stateDir, 'policy.json')).services.find((s) => s.ip === '10.77.0.10' && s.port === 80)?.rules).toContain('PP-2021-41773')
  })

  it('an explicitly listed rule is retired by a manual version too', async () => {
    const p = await project()
    await protect(p, {op: 'add', targets: ['10.77.0.10:21'], rules: ['PP-2011-2523']})
    editInventory(p, (inv) => {
      service(inv, '10.77.0.10', 21).manual = {version: '3.0.3', set_at: '2026-03-05T00:00:00.000Z'}
    })
    const r = await protect(p, {op: 'show'}, T2)
    expect(r.retired).toEqual([expect.objectContaining({rule_id: 'PP-2011-2523', version: '3.0.3', evidence: expect.objectContaining({source: 'manual', seen_at: '2026-03-05T00:00:00.000Z'})})])
    // no rule left: the service is no longer diverted
    expect(loadPolicy(path.join(p.stateDir, 'policy.json')).services.some((s) => s.ip === '10.77.0.10' && s.port === 21)).toBe(false)
  })

  it('a service that was never vulnerable retires nothing', async () => {
    const p = await project()
    const r = await protect(p, {op: 'all'})
    expect(r.retired).toEqual([])
    expect(existsSync(path.join(p.stateDir, 'retired.json'))).toBe(false)
  })
})

describe('assigning', () => {
  it('a TLS service gets the TLS rules, and protect says which of its product\'s rules no gateway can enforce', async () => {
    const p = await project()
    editInventory(p, (inv) => {
      const s = service(inv, '10.77.0.12', 8443)
      s.tunnel = 'ssl'
      s.version = '2.4.49'
    })
    const r = await protect(p, {op: 'all', action: 'drop'})
    const svc = loadPolicy(path.join(p.stateDir, 'policy.json')).services.find((s) => s.ip === '10.77.0.12' && s.port === 8443)
    // the gateway reads TLS records there (the port joins the TLS analyzer's), nothing of the HTTP inside
    expect(svc).toMatchObject({protocol: 'tls', rules: ['PP-2014-0160', 'PP-HEARTBLEED-CLIENT', 'PP-HEARTBLEED-LEAK']})
    expect(r.warnings.find((w) => w.startsWith('10.77.0.12:8443/tcp speaks TLS: its product is exposed to'))).toContain('PP-2021-41773')
    // the mail and FTP servers get them beside their own (STARTTLS, AUTH TLS)
    expect(loadPolicy(path.join(p.stateDir, 'policy.json')).services.find((s) => s.ip === '10.77.0.10' && s.port === 25)?.rules)
      .toEqual(expect.arrayContaining(['PP-2019-10149', 'PP-2014-0160']))
    // an HTTP rule named by hand there cannot fire: said so
    const by = await protect(p, {op: 'add', targets: ['10.77.0.12:8443'], rules: ['PP-2021-41773']})
    expect(by.warnings).toContain('10.77.0.12:8443/tcp speaks TLS: PP-2021-41773 cannot see inside it and will not fire')
  })

  it('HOST:PORT --rule --action sets per-rule actions; --remove --rule and --remove undo it', async () => {
    const p = await project()
    let r = await protect(p, {op: 'add', targets: ['10.77.0.10:80'], rules: ['PP-2021-41773'], action: 'log', shadow: true})
    let svc = loadPolicy(path.join(p.stateDir, 'policy.json')).services[0]
    expect(svc).toMatchObject({ip: '10.77.0.10', port: 80, rules: ['PP-2021-41773'], shadow: true, rule_actions: {'PP-2021-41773': 'log'}})
    expect(readFileSync(path.join(p.dir, 'policy.yaml'), 'utf8')).toContain('10.77.0.10:80/tcp:')
    r = await protect(p, {op: 'add', targets: ['10.77.0.10:80'], action: 'drop', shadow: false})
    svc = loadPolicy(path.join(p.stateDir, 'policy.json')).services[0]
    expect(svc.action).toBe('drop')
    expect(svc.shadow).toBe(false)
    expect(svc.rules).toEqual(expect.arrayContaining(['PP-2021-41773']))
    expect(svc.rules?.length).toBeGreaterThan(1) // the recommended generic HTTP rules joined it
    r = await protect(p, {op: 'remove', targets: ['10.77.0.10:80'], rules: ['PP-2021-41773']})
    expect(r.diff.services).toEqual([expect.objectContaining({rules_removed: ['PP-2021-41773']})])
    r = await protect(p, {op: 'remove', targets: ['10.77.0.10:80']})
    expect(r.diff.assignments.removed).toEqual(['10.77.0.10:80/tcp'])
    expect(loadPolicy(path.join(p.stateDir, 'policy.json')).services).toEqual([])
    r = await protect(p, {op: 'remove', targets: ['10.77.0.10:80']})
    expect(r.changed).toBe(false)
  })

  it('an RPC program is assigned by program and follows its port', async () => {
    const p = await project()
    await protect(p, {op: 'add', targets: ['10.77.0.11:20048'], rules: ['PP-FTP-BOUNCE']})
    expect(readFileSync(path.join(p.dir, 'policy.yaml'), 'utf8')).toContain('10.77.0.11/rpc:100005:')
    expect(loadPolicy(path.join(p.stateDir, 'policy.json')).services).toEqual([expect.objectContaining({port: 20048, rpc_program: 100005})])
    editInventory(p, (inv) => {
      service(inv, '10.77.0.11', 20048).port = 33333
    })
    const r = await protect(p, {op: 'show'}, T2)
    expect(r.diff.services.map((c) => [c.service, c.change])).toEqual([['10.77.0.11:33333/tcp', 'added'], ['10.77.0.11:20048/tcp', 'removed']])
    expect(loadPolicy(path.join(p.stateDir, 'policy.json')).services).toEqual([expect.objectContaining({port: 33333, rpc_program: 100005})])
  })

  it('refuses unknown rules and targets outside the inventory without --rule (exit 2)', async () => {
    const p = await project()
    await expect(protect(p, {op: 'add', targets: ['10.77.0.10:80'], rules: ['PP-NOPE']})).rejects.toThrow(/unknown rule 'PP-NOPE'/)
    const err = await protect(p, {op: 'add', targets: ['10.77.0.99:80']}).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UserError)
    expect((err as UserError).exitCode).toBe(2)
    await expect(protect(p, {op: 'add', targets: ['nonsense']})).rejects.toThrow(/not HOST:PORT/)
  })
})

describe('policy.yaml', () => {
  it('keeps hand-written comments when protect edits it; --default-action lands in it', async () => {
    const p = await project()
    writeFileSync(path.join(p.dir, 'policy.yaml'), '# our web servers\nservices:\n  # the old Apache: drop\n  10.77.0.10:80/tcp:\n    rules: [recommended]\n    action: drop\n')
    const r = await protect(p, {op: 'add', targets: ['10.77.0.10:21']}, T1, {defaultAction: 'log'})
    const text = readFileSync(path.join(p.dir, 'policy.yaml'), 'utf8')
    expect(text).toContain('# our web servers')
    expect(text).toContain('# the old Apache: drop')
    expect(text).toContain('10.77.0.10:21/tcp:')
    expect(text).toMatch(/^default_action: log$/m)
    expect(r.default_action).toBe('log')
    expect(loadPolicy(path.join(p.stateDir, 'policy.json')).default_action).toBe('log')
  })

  it('reports errors as file:line:col with a hint', async () => {
    const p = await project()
    writeFileSync(path.join(p.dir, 'policy.yaml'), 'services:\n  10.77.0.10:80/tcp:\n    rules: [PP-2021-41772]\n    action: block\n')
    const err = await protect(p).catch((e: unknown) => e) as UserError
    expect(err).toBeInstanceOf(UserError)
    expect(err.code).toBe('PROTECT_POLICY_INVALID')
    expect(err.message).toMatch(/policy\.yaml:4:13: services\.10\.77\.0\.10:80\/tcp\.action: must be one of fix, log, drop/)
    writeFileSync(path.join(p.dir, 'policy.yaml'), 'services:\n  10.77.0.10:80/tcp:\n    rules: [PP-2021-41772]\n')
    const err2 = await protect(p).catch((e: unknown) => e) as UserError
    expect(err2.message).toMatch(/policy\.yaml:3:13: .*unknown rule 'PP-2021-41772'/)
    expect(err2.suggestion).toBe("did you mean 'PP-2021-41773'?")
    writeFileSync(path.join(p.dir, 'policy.yaml'), 'services:\n  10.77.0.10:http:\n    rules: [recommended]\n')
    const err3 = await protect(p).catch((e: unknown) => e) as UserError
    expect(err3.message).toMatch(/policy\.yaml:2:3: services: '10\.77\.0\.10:http' is not HOST:PORT/)
  })
})
