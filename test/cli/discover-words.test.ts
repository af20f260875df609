/**
 * `discover` when ranges follow --add or --exclude (oclif hands a repeatable flag every word after
 * it). The real binary over dist/, in a temporary project. Nothing is probed: every run either
 * only adds hosts by hand or stops at the address limit (--max-hosts 1) before any probe, which
 * shows which words became ranges to sweep.
 */
import {mkdtempSync, readFileSync, realpathSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {beforeAll, describe, expect, it} from 'vitest'
import {runCli, type CliRun} from '../support/cli.js'
import {discoverWords} from '../../src/core/scan/discover.js'

const dir = realpathSync(mkdtempSync(path.join(tmpdir(), 'pp-discover-words-')))
const cli = (...args: string[]) => runCli(args, {cwd: dir})
const errLines = (r: CliRun) => r.stderr.split('\n').filter((l) => l !== '')

describe('discoverWords', () => {
  it('a block or range among the --add words is a range to sweep; single addresses stay added by hand', () => {
    expect(discoverWords([], ['198.51.100.20', '192.0.2.0/24', '192.0.2.40-50', '198.51.100.21']))
      .toEqual({targets: ['192.0.2.0/24', '192.0.2.40-50'], add: ['198.51.100.20', '198.51.100.21']})
    expect(discoverWords(['10.1.0.0/24'], [], ['10.1.0.200-250'])).toEqual({targets: ['10.1.0.0/24'], add: []})
  })

  it('excludes without a range to sweep, or nothing at all, are refused', () => {
    expect(() => discoverWords([], [], ['10.1.0.200-250', '10.1.0.0/24'])).toThrow(/--exclude took every word after it \(10\.1\.0\.200-250 10\.1\.0\.0\/24\)/)
    expect(() => discoverWords([], ['198.51.100.20'], ['10.1.0.0/24'])).toThrow(/--exclude took every word/)
    expect(() => discoverWords([], [], [])).toThrow(/no address range given/)
  })
})

describe('patchpoint discover: ranges after --add and --exclude (real binary)', () => {
  beforeAll(async () => {
    expect((await cli('init')).code).toBe(0)
  }, 60_000)

  it('--add HOST RANGE: the range is swept (here: stopped at the limit), not refused as an address', async () => {
    const r = await cli('discover', '--add', '198.51.100.20', '192.0.2.0/30', '--max-hosts', '1')
    expect(r.code).toBe(2)
    expect(errLines(r)[0]).toBe('patchpoint: more than 1 addresses to scan')
  })

  it('--add HOST HOST still adds both by hand, probing nothing', async () => {
    const r = await cli('discover', '--add', '198.51.100.20', '198.51.100.21', '--json')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({targets: 0, packetsSent: 0, added: ['198.51.100.20', '198.51.100.21']})
    const inv = JSON.parse(readFileSync(path.join(dir, '.patchpoint', 'inventory.json'), 'utf8')) as {hosts: {ip: string}[]}
    expect(inv.hosts.map((h) => h.ip)).toEqual(['198.51.100.20', '198.51.100.21'])
  })

  it('--exclude RANGE RANGE with nothing else: one line saying --exclude took the words, exit 2; -- ends the list', async () => {
    const r = await cli('discover', '--exclude', '10.1.0.200-250', '10.1.0.0/24')
    expect(r.code).toBe(2)
    expect(errLines(r)).toEqual([
      'patchpoint: no address range given: --exclude took every word after it (10.1.0.200-250 10.1.0.0/24)',
      '  hint: give the ranges before --exclude (patchpoint discover 10.1.0.0/24 --exclude 10.1.0.200-250), or end its list with --',
    ])
    // (after --, every word is a range: --max-hosts goes first)
    const s = await cli('discover', '--max-hosts', '1', '--exclude', '10.1.0.200-250', '--', '10.1.0.0/24')
    expect(errLines(s)[0]).toBe('patchpoint: the ranges hold 256 addresses, more than the limit of 1')
  })
})
