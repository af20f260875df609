/**
 * Compile a test entry point (and what it imports) to plain JS in a temp folder, so it can run
 * with `node` inside a lab namespace.
 */
import {execFileSync} from 'node:child_process'
import {existsSync, mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** returns the path of the compiled entry (.js) */
export function compileEntry(entryFromRoot: string): string {
  const out = mkdtempSync(path.join(tmpdir(), 'pp-compiled-'))
  try {
    execFileSync(path.join(REPO_ROOT, 'node_modules/.bin/tsc'), [
    '--outDir', out, '--rootDir', REPO_ROOT, '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022',
    '--skipLibCheck', '--esModuleInterop', '--types', 'node', '--noEmitOnError', 'false', path.join(REPO_ROOT, entryFromRoot),
    ], {cwd: REPO_ROOT, stdio: 'ignore', timeout: 180_000})
  } catch {
    // type errors elsewhere in the tree still emit JS; a missing output fails below
  }
  const js = path.join(out, entryFromRoot.replace(/\.ts$/, '.js'))
  if (!existsSync(js)) throw new Error(`could not compile ${entryFromRoot}`)
  // node resolves bare imports (cap, re2js, yaml) from the repo's node_modules
  execFileSync('ln', ['-s', path.join(REPO_ROOT, 'node_modules'), path.join(out, 'node_modules')])
  return js
}
