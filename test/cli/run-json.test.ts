/**
 * `patchpoint run ... --events - --json --stats-interval N` (the help's example: "Events as JSON
 * lines on stdout"): stdout carries JSON lines only, the gateway's own lines go to stderr. The
 * real binary over dist/ in proxy mode on loopback (no root); it only listens: no connection is
 * made, nothing is sent.
 */
import {spawn} from 'node:child_process'
import {mkdtempSync, realpathSync} from 'node:fs'
import net from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {bin} from '../support/cli.js'

const dir = realpathSync(mkdtempSync(path.join(tmpdir(), 'pp-runjson-')))

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const {port} = s.address() as net.AddressInfo
      s.close(() => resolve(port))
    })
  })
}

describe('patchpoint run --json', () => {
  it('stdout is JSON lines only (stats, then the summary); ready and stopped go to stderr', async () => {
    const port = await freePort()
    const env: NodeJS.ProcessEnv = {...process.env, NO_COLOR: '1'}
    delete env.PATCHPOINT_PROJECT
    const child = spawn(process.execPath, [bin, 'run', '--proxy', `127.0.0.1:${port}=127.0.0.1:9`, '--events', '-', '--json', '--stats-interval', '1'],
      {cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    const until = async (ok: () => boolean) => {
      for (let i = 0; i < 300 && !ok() && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100))
    }
    await until(() => stdout.includes('"event_type":"stats"'))
    child.kill('SIGINT')
    expect(await exited).toBe(0)

    const lines = stdout.split('\n').filter((l) => l !== '')
    const docs = lines.map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>
      } catch {
        throw new Error(`not a JSON line on stdout: ${l}`)
      }
    })
    expect(docs.some((d) => d.event_type === 'stats')).toBe(true)
    expect(docs.at(-1)).toMatchObject({mode: ['proxy'], proxies: [{listen: `127.0.0.1:${port}`, upstream: '127.0.0.1:9'}]})
    expect(stderr).toContain(`patchpoint: proxy 127.0.0.1:${port} -> 127.0.0.1:9\npatchpoint: ready\n`)
    expect(stderr).toContain('patchpoint: stopped\n')
  }, 60_000)
})
