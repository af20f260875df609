import {mkdtempSync, writeFileSync} from 'node:fs'
import {hostname, tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {UserError} from '../errors.js'
import {PROTECTIONS_DEFAULTS} from '../protections/config.js'
import {CONFIG_DEFAULTS} from './config-schema.js'
import {checkConfigText, eventsFilePath, loadConfig} from './config.js'
import {CONFIG_TEMPLATE} from './init.js'
import {formatDiagnostic} from './yaml-schema.js'

const dir = mkdtempSync(path.join(tmpdir(), 'pp-config-'))
function file(text: string): string {
  const f = path.join(dir, `c${Math.random().toString(36).slice(2)}.yaml`)
  writeFileSync(f, text)
  return f
}

describe('config', () => {
  it('an empty file gives every default, gateway.id = hostname', () => {
    const {config, diagnostics} = checkConfigText('')
    expect(diagnostics).toEqual([])
    expect(config).toEqual({
      gateway: {id: hostname()},
      events: CONFIG_DEFAULTS.events,
      engine: CONFIG_DEFAULTS.engine,
      hosts: [],
      rules: {},
      alarms: {},
      protections: PROTECTIONS_DEFAULTS,
    })
  })

  it('the commented template of `init` is valid and states exactly the defaults', () => {
    expect(checkConfigText(CONFIG_TEMPLATE)).toEqual(checkConfigText(''))
    // every schema key is explained in the template
    for (const key of ['gateway', 'id', 'events', 'file', 'rotate_bytes', 'keep', 'engine', 'defrag_policy', 'tcp_policy', 'limits', 'flows', 'tcp_memory_bytes', 'defrag_bytes', 'hosts', 'match', 'os']) {
      expect(CONFIG_TEMPLATE, key).toMatch(new RegExp(`^\\s*#?\\s*-?\\s*${key}:`, 'm'))
    }
  })

  it('sections with every key commented out count as empty', () => {
    const {config} = checkConfigText('gateway:\n  # id: x\nengine:\n  limits:\nhosts:\n')
    expect(config?.engine.limits.flows).toBe(CONFIG_DEFAULTS.engine.limits.flows)
    expect(config?.hosts).toEqual([])
  })

  it('keeps given values and host policies', () => {
    const {config} = checkConfigText('gateway: {id: gw-7}\nengine:\n  tcp_policy: windows\nhosts:\n  - match: 10.1.0.0/16\n    os: windows\n    defrag_policy: bsd-right\n')
    expect(config?.gateway.id).toBe('gw-7')
    expect(config?.engine.tcp_policy).toBe('windows')
    expect(config?.engine.defrag_policy).toBe('first')
    expect(config?.hosts).toEqual([{match: '10.1.0.0/16', os: 'windows', defrag_policy: 'bsd-right'}])
  })

  it('unknown keys at any level are errors with a hint', () => {
    const r = checkConfigText('events:\n  rotate_byte: 5\n')
    expect(r.config).toBeUndefined()
    expect(formatDiagnostic(r.diagnostics[0])).toBe("patchpoint.yaml:2:3: unknown key 'rotate_byte' in events")
    expect(r.diagnostics[0].hint).toBe("did you mean 'rotate_bytes'?")
  })

  it('duplicate host entries are a warning with the position of the second', () => {
    const r = checkConfigText('hosts:\n  - match: 10.0.0.1\n  - match: 10.0.0.1\n')
    expect(r.config).toBeDefined()
    expect(r.diagnostics).toHaveLength(1)
    expect(r.diagnostics[0].severity).toBe('warning')
    expect(formatDiagnostic(r.diagnostics[0])).toBe("patchpoint.yaml:3:5: warning: hosts[1]: '10.0.0.1' is already matched by hosts[0]; the first entry wins")
  })

  it('loadConfig throws one UserError naming file:line:col, others as details', async () => {
    const f = file('events:\n  keep: -1\nengine:\n  tcp_policy: nope\n')
    const err = await loadConfig(f, 'patchpoint.yaml').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UserError)
    const ue = err as UserError
    expect(ue.exitCode).toBe(2)
    expect(ue.code).toBe('CONFIG_INVALID')
    expect(ue.message).toBe('patchpoint.yaml:2:9: events.keep: must be >= 0')
    expect(ue.details).toEqual([expect.stringMatching(/^patchpoint\.yaml:4:15: engine\.tcp_policy: must be one of first, /)])
  })

  it('loadConfig of a valid file and eventsFilePath', async () => {
    const config = await loadConfig(file('events: {file: logs/e.json}\n'))
    expect(eventsFilePath(config, '/srv/gw')).toBe('/srv/gw/logs/e.json')
    expect(eventsFilePath({...config, events: {...config.events, file: '/var/log/e.json'}}, '/srv/gw')).toBe('/var/log/e.json')
  })

  it('a missing file is a UserError too', async () => {
    await expect(loadConfig(path.join(dir, 'none.yaml'), 'none.yaml')).rejects.toThrow('none.yaml: cannot read: ENOENT')
  })
})
