/**
 * Runs the real binary (bin/run.js over the tsc build in dist/; `npm test` builds first).
 */
import {execFile} from 'node:child_process'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
export const bin = path.join(repoRoot, 'bin', 'run.js')
export const corpusDir = path.resolve(repoRoot, '../shared/corpus/pcaps')
export const examplesDir = path.join(repoRoot, 'examples/pcaps')

export interface CliRun {
  code: number
  stdout: string
  stderr: string
}

export function runCli(args: string[], opts: {cwd?: string; env?: Record<string, string>} = {}): Promise<CliRun> {
  const env: NodeJS.ProcessEnv = {...process.env, NO_COLOR: '1', ...opts.env}
  if (!opts.env?.PATCHPOINT_PROJECT) delete env.PATCHPOINT_PROJECT
  delete env.PATCHPOINT_DEBUG
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], {cwd: opts.cwd ?? repoRoot, env, maxBuffer: 64 << 20}, (err, stdout, stderr) => {
      resolve({code: err ? Number((err as {code?: number}).code ?? 1) : 0, stdout, stderr})
    })
  })
}

/** JSON lines -> objects (blank lines skipped) */
export function jsonLines<T = Record<string, unknown>>(text: string): T[] {
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as T)
}
