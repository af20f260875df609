/**
 * examples/ansible against localhost with a local connection, twice: the second run must
 * report no change. Slow (two playbook runs, about a minute): runs with PATCHPOINT_ANSIBLE=1 and
 * ansible-playbook installed (Debian: apt-get install ansible).
 */
import {execFile, execFileSync} from 'node:child_process'
import {copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {beforeAll, describe, expect, it} from 'vitest'
import {createBundle, generateSigningKey} from '../../src/core/bundle/bundle.js'
import {generateEvents} from '../../src/core/report/testing.js'
import {packageRulesDir} from '../../src/core/rules/rule-schema.js'
import {ensureBuilt, repoRoot} from './support.js'

function has(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], {stdio: 'pipe'})
    return true
  } catch {
    return false
  }
}

const play = (args: string[], cwd: string): Promise<{code: number; out: string}> => new Promise((resolve) => {
  execFile('ansible-playbook', args, {
    cwd,
    env: {...process.env, ANSIBLE_NOCOLOR: '1', ANSIBLE_CONFIG: path.join(repoRoot, 'examples/ansible/ansible.cfg'), ANSIBLE_LOCAL_TEMP: path.join(cwd, '.ansible-tmp'), ANSIBLE_REMOTE_TEMP: path.join(cwd, '.ansible-tmp')},
    maxBuffer: 64 << 20,
    timeout: 300_000,
  }, (err, stdout, stderr) => resolve({code: err ? Number((err as {code?: number}).code ?? 1) : 0, out: stdout + stderr}))
})

describe.skipIf(process.env.PATCHPOINT_ANSIBLE !== '1' || !has('ansible-playbook'))('examples/ansible (ansible-playbook, local connection)', () => {
  const root = realpathSync(mkdtempSync(path.join(tmpdir(), 'pp-ansible-')))
  const proj = path.join(root, 'gateway')
  let args: string[] = []

  beforeAll(() => {
    ensureBuilt()
    const key = generateSigningKey()
    writeFileSync(path.join(root, 'ops.pub'), key.publicPem)
    mkdirSync(path.join(root, 'rules-src'))
    copyFileSync(path.join(packageRulesDir, 'generic', 'PP-SHELLSHOCK.yaml'), path.join(root, 'rules-src', 'PP-SHELLSHOCK.yaml'))
    writeFileSync(path.join(root, 'rules.bundle.json'), JSON.stringify(createBundle(path.join(root, 'rules-src'), key.privatePem)))
    // events the gateway already logged: fetched back and reported
    mkdirSync(path.join(proj, '.patchpoint', 'events'), {recursive: true})
    writeFileSync(path.join(proj, '.patchpoint', 'events', 'eve.json'), [...generateEvents(200, {seed: 5, gateways: ['localgw']})].map((e) => JSON.stringify(e)).join('\n') + '\n')
    writeFileSync(path.join(root, 'inventory.ini'), `[gateways]\nlocalgw ansible_connection=local ansible_become=false ansible_python_interpreter=/usr/bin/python3\n\n[all:vars]\nansible_connection=local\nansible_become=false\nansible_python_interpreter=/usr/bin/python3\n`)
    const vars = {
      patchpoint_prefix: path.join(root, 'opt'),
      patchpoint_source_dir: repoRoot.replace(/\/$/, ''),
      patchpoint_bin: path.join(root, 'bin', 'patchpoint'),
      patchpoint_node: process.execPath,
      patchpoint_project_dir: proj,
      patchpoint_manage_user: false,
      patchpoint_manage_service: false,
      patchpoint_unit_dir: root,
      patchpoint_trusted_key: path.join(root, 'ops.pub'),
      patchpoint_rule_bundle: path.join(root, 'rules.bundle.json'),
      patchpoint_hosts: [{match: '10.20.0.0/16', os: 'windows'}],
      patchpoint_collect_dir: path.join(root, 'collected'),
      patchpoint_report_cmd: `${process.execPath} ${path.join(repoRoot, 'bin/run.js')}`,
      patchpoint_report_file: path.join(root, 'fleet.json'),
      patchpoint_report_since: '2025-01-01',
    }
    mkdirSync(path.join(root, 'bin'), {recursive: true})
    writeFileSync(path.join(root, 'vars.json'), JSON.stringify(vars))
    args = ['-i', path.join(root, 'inventory.ini'), '-e', `@${path.join(root, 'vars.json')}`, path.join(repoRoot, 'examples/ansible/site.yml')]
  }, 300_000)

  it('installs, configures, pushes the bundle, fetches logs, reports; the second run changes nothing', async () => {
    const first = await play(args, root)
    expect(first.code, first.out).toBe(0)
    expect(first.out).toMatch(/localgw\s*: ok=\d+\s+changed=[1-9]/)
    expect(existsSync(path.join(root, 'patchpoint.service'))).toBe(true)
    expect(readFileSync(path.join(proj, 'patchpoint.yaml'), 'utf8')).toMatch(/id: "localgw"[\s\S]*match: 10\.20\.0\.0\/16/)
    expect(existsSync(path.join(proj, 'rules', 'PP-SHELLSHOCK.yaml'))).toBe(true)
    expect(existsSync(path.join(root, 'collected', 'localgw', 'eve.json'))).toBe(true)
    const second = await play(args, root)
    expect(second.code, second.out).toBe(0)
    expect(second.out).toMatch(/localgw\s*: ok=\d+\s+changed=0 /)
    expect(second.out).toMatch(/localhost\s*: ok=\d+\s+changed=0 /)
    const report = readFileSync(path.join(root, 'fleet.json'), 'utf8')
    expect(JSON.parse(report).totals.events).toBe(200)
    expect(JSON.parse(report).inputs[0].label).toMatch(/collected\/localgw\/eve\.json$/)
  }, 600_000)
})
