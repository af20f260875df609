/**
 * `fingerprint --passive` on a live interface (libpcap through `cap`), in a namespace lab:
 *
 *   ns client 198.51.100.2  : the learner listens on eth0; curl talks to the web server
 *   ns web    198.51.100.11 : nginx on the non-default port 8181
 *
 * Nothing is sent by the learner: the service is learned from the SYN-ACK and the HTTP answer
 * curl draws. Needs root, iproute2, nginx and curl.
 */
import {execFileSync, spawn} from 'node:child_process'
import {rmSync} from 'node:fs'
import path from 'node:path'
import {describe, it, expect, beforeAll, afterAll} from 'vitest'
import {hasCommand, Lab, labSupport} from '../lab/netns.js'
import {compileEntry, REPO_ROOT} from '../lab/compile.js'
import {startNginx} from '../lab/servers.js'
import type {PassiveHost, PassiveService} from '../../src/core/scan/passive.js'

const support = labSupport()
const skip = !support.ok || !hasCommand('nginx') && !hasCommand('/usr/sbin/nginx') || !hasCommand('curl')
const NET = '198.51.100'

describe.skipIf(skip)('passive learning from live traffic (namespace lab)', () => {
  let lab: Lab
  let runner: string

  beforeAll(async () => {
    lab = new Lab()
    try {
      const compiling = Promise.resolve().then(() => compileEntry('test/scan/run-scan.ts'))
      lab.addHost('client', `${NET}.2`)
      lab.addHost('web', `${NET}.11`)
      await startNginx(lab, 'web', `${NET}.11`, [8181])
      runner = await compiling
    } catch (err) {
      lab.cleanup()
      throw err
    }
  }, 300_000)

  afterAll(() => {
    lab?.cleanup()
    if (runner) rmSync(path.dirname(path.dirname(path.dirname(runner))), {recursive: true, force: true})
  })

  it('learns nginx on a non-default port from curl traffic, sending nothing', async () => {
    const job = JSON.stringify({kind: 'passive', probesDir: path.join(REPO_ROOT, 'rules/probes'), options: {iface: 'eth0', durationMs: 4000}})
    const child = spawn('ip', ['netns', 'exec', lab.ns('client'), process.execPath, runner, job], {stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    const ready = new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString()
        if (err.includes('ready')) resolve()
      })
      child.once('exit', (code) => reject(new Error(`learner exited early (${code}): ${err}`)))
    })
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
    await ready
    for (let i = 0; i < 3; i++) {
      const body = execFileSync('ip', ['netns', 'exec', lab.ns('client'), 'curl', '-s', '-m', '5', `http://${NET}.11:8181/`], {encoding: 'utf8'})
      expect(body).toBe('lab\n')
    }
    expect(await exited).toBe(0)
    const {result} = JSON.parse(out.trim().split('\n').pop()!) as {result: {hosts: PassiveHost[]; services: PassiveService[]; frames: number}}
    expect(result.frames).toBeGreaterThan(10)
    const web = result.services.find((s) => s.ip === `${NET}.11` && s.port === 8181)
    expect(web).toBeDefined()
    expect(web!.seen).toEqual(expect.arrayContaining(['syn-ack', 'stream']))
    expect(web!.match).toMatchObject({service: 'http', product: 'nginx/nginx'})
    expect(web!.match!.version).toMatch(/^\d+\.\d+/)
    // the client's ephemeral ports are not services
    expect(result.services.every((s) => s.ip === `${NET}.11`)).toBe(true)
    expect(result.hosts.find((h) => h.ip === `${NET}.11`)?.os_hints.length).toBeGreaterThan(0)
  }, 60_000)
})
