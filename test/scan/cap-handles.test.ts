/**
 * libpcap handles (`cap`) that were closed must not crash node when the garbage collector frees
 * them (see src/core/capture/cap-handles.ts): `fingerprint` exited 139 now and then, and
 * `fingerprint --passive` on Ctrl-C.
 *
 *   ns <id>-cap : lo only (no other interface, no route); handles are opened on lo, nothing is sent
 *
 * A child node (the tsc build in dist/, as the CLI tests use) opens and closes scanner and
 * gateway-port handles, then allocates until young and old generations have been collected
 * several times. Before the fix it died with SIGSEGV in every run. Needs root and `ip netns`.
 */
import {spawnSync} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import path from 'node:path'
import {pathToFileURL} from 'node:url'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {Lab, labSupport} from '../lab/netns.js'
import {repoRoot} from '../support/cli.js'

const support = labSupport()
if (!support.ok) console.warn(`test/scan/cap-handles.test.ts skipped: ${support.reason}`)

const dist = (p: string) => pathToFileURL(path.join(repoRoot, 'dist', p)).href

describe.skipIf(!support.ok)('closed libpcap handles and the garbage collector', () => {
  let lab: Lab
  let ns: string
  let script: string

  beforeAll(() => {
    lab = new Lab(24, {switch: false})
    ns = lab.addNamespace('cap')
    script = path.join(lab.dir, 'cap-gc.mjs')
    writeFileSync(script, `
import {CapLink} from ${JSON.stringify(dist('core/scan/raw.js'))}
import {LivePort} from ${JSON.stringify(dist('core/gateway/live.js'))}
let garbage = []
for (let round = 0; round < 20; round++) {
  for (let i = 0; i < 5; i++) new CapLink('lo', 'tcp port 9').close()
  const port = new LivePort('lo', 0)
  port.open('tcp port 9', () => {})
  port.open('tcp port 10', () => {}) // a reopen closes the first handle
  port.close()
  await new Promise((r) => setTimeout(r, 1))
  for (let i = 0; i < 300000; i++) {
    garbage.push({i, s: 'x' + i})
    if (garbage.length > 1000) garbage = []
  }
}
console.log('survived')
`)
  })

  afterAll(() => lab?.cleanup())

  it('opening and closing scanner and gateway handles, then collecting, does not kill node', () => {
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, script], {encoding: 'utf8', timeout: 120_000})
    expect({signal: r.signal, status: r.status, stderr: r.stderr}).toEqual({signal: null, status: 0, stderr: ''})
    expect(r.stdout.trim()).toBe('survived')
  }, 150_000)
})
