import {mkdtempSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {atomicWriteFile, writeJsonAtomic} from './atomic.js'

const dir = mkdtempSync(path.join(tmpdir(), 'pp-atomic-'))

describe('atomicWriteFile', () => {
  it('creates and replaces files, leaving no temp files', async () => {
    const f = path.join(dir, 'a.txt')
    await atomicWriteFile(f, 'one')
    await atomicWriteFile(f, Buffer.from('two'))
    expect(readFileSync(f, 'utf8')).toBe('two')
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([])
  })

  it('overwrite: false never replaces an existing file', async () => {
    const f = path.join(dir, 'keep.txt')
    writeFileSync(f, 'user data')
    await expect(atomicWriteFile(f, 'ours', {overwrite: false})).rejects.toMatchObject({code: 'EEXIST'})
    expect(readFileSync(f, 'utf8')).toBe('user data')
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([])
  })

  it('a concurrent reader only ever sees a whole old or whole new file', async () => {
    const f = path.join(dir, 'race.json')
    const a = JSON.stringify({v: 'a'.repeat(200_000)})
    const b = JSON.stringify({v: 'b'.repeat(300_000)})
    await atomicWriteFile(f, a)
    let stop = false
    let reads = 0
    const reader = (async () => {
      while (!stop) {
        const text = await readFile(f, 'utf8')
        expect(text === a || text === b).toBe(true)
        reads++
      }
    })()
    for (let i = 0; i < 30; i++) await atomicWriteFile(f, i % 2 ? a : b)
    stop = true
    await reader
    expect(reads).toBeGreaterThan(0)
  })

  it('writeJsonAtomic writes indented JSON with a final newline', async () => {
    const f = path.join(dir, 'x.json')
    await writeJsonAtomic(f, {a: [1, 2]})
    expect(readFileSync(f, 'utf8')).toBe('{\n  "a": [\n    1,\n    2\n  ]\n}\n')
  })

  it('fails cleanly when the folder does not exist', async () => {
    await expect(atomicWriteFile(path.join(dir, 'nope', 'x'), 'x')).rejects.toMatchObject({code: 'ENOENT'})
  })
})
