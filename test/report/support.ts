/**
 * Shared by the report / alarms / bundle CLI tests: the real binary over dist/ (built here when
 * older than the sources; tsc emits even when other folders are mid-edit).
 */
import {execFile, execFileSync} from 'node:child_process'
import {existsSync, readdirSync, statSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
export const bin = path.join(repoRoot, 'bin', 'run.js')

function newest(p: string): number {
  if (!existsSync(p)) return 0
  const st = statSync(p)
  if (!st.isDirectory()) return p.endsWith('.ts') && !p.endsWith('.test.ts') ? st.mtimeMs : 0
  return Math.max(0, ...readdirSync(p).map((n) => newest(path.join(p, n))))
}

export function ensureBuilt(): void {
  const built = path.join(repoRoot, 'dist', 'commands', 'report.js')
  const src = Math.max(...['src/core/report', 'src/core/alarms', 'src/core/bundle', 'src/commands'].map((d) => newest(path.join(repoRoot, d))))
  if (!existsSync(built) || statSync(built).mtimeMs < src) {
    try {
      execFileSync('npm', ['run', 'build'], {cwd: repoRoot, stdio: 'pipe'})
    } catch {
      // checked below
    }
  }
  if (!existsSync(built)) throw new Error('build did not produce dist/commands/report.js')
}

export interface Run {
  code: number
  stdout: string
  stderr: string
}

export function runCli(args: string[], opts: {cwd?: string; env?: Record<string, string>} = {}): Promise<Run> {
  const env: NodeJS.ProcessEnv = {...process.env, NO_COLOR: '1', ...opts.env}
  if (!opts.env?.PATCHPOINT_PROJECT) delete env.PATCHPOINT_PROJECT
  delete env.PATCHPOINT_DEBUG
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], {cwd: opts.cwd ?? repoRoot, env, maxBuffer: 256 << 20}, (err, stdout, stderr) => {
      resolve({code: err ? Number((err as {code?: number}).code ?? 1) : 0, stdout, stderr})
    })
  })
}
