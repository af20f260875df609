/**
 * Find the project folder the way git finds a repository: `--project DIR`, else the
 * `PATCHPOINT_PROJECT` environment variable, else walk up from the current folder until a
 * folder holding `patchpoint.yaml` is found.
 */
import {statSync} from 'node:fs'
import path from 'node:path'
import {UserError} from '../errors.js'
import {CONFIG_FILE_NAME} from './config.js'

/** Folders visited at most while walking up (deeper trees are not real). */
export const MAX_WALK_UP = 256
export const STATE_DIR_NAME = '.patchpoint'

export interface ProjectLocation {
  /** absolute project folder */
  dir: string
  /** absolute path of patchpoint.yaml */
  configPath: string
  /** absolute path of the state folder (.patchpoint) */
  stateDir: string
  /** how it was found */
  source: 'flag' | 'env' | 'walk'
}

export interface FindProjectOptions {
  /** the --project flag */
  explicit?: string
  /** the PATCHPOINT_PROJECT environment variable */
  env?: string
  cwd: string
}

export function projectLocation(dir: string, source: ProjectLocation['source']): ProjectLocation {
  const abs = path.resolve(dir)
  return {dir: abs, configPath: path.join(abs, CONFIG_FILE_NAME), stateDir: path.join(abs, STATE_DIR_NAME), source}
}

function hasConfig(dir: string): boolean {
  try {
    return statSync(path.join(dir, CONFIG_FILE_NAME)).isFile()
  } catch {
    return false
  }
}

export function findProject(options: FindProjectOptions): ProjectLocation {
  const hint = 'create one with `patchpoint init`, or point to it with --project DIR or PATCHPOINT_PROJECT'
  const pick = (value: string, source: 'flag' | 'env', label: string): ProjectLocation => {
    const dir = path.resolve(options.cwd, value)
    if (hasConfig(dir)) return projectLocation(dir, source)
    let why = `no ${CONFIG_FILE_NAME} in ${dir}`
    try {
      const st = statSync(dir)
      if (!st.isDirectory()) why = `${dir} is not a folder`
    } catch {
      why = `${dir} does not exist`
    }
    throw new UserError(`${label}: not a patchpoint project (${why})`, {code: 'PROJECT_NOT_FOUND', suggestion: hint})
  }
  if (options.explicit !== undefined && options.explicit !== '') return pick(options.explicit, 'flag', '--project')
  if (options.env !== undefined && options.env !== '') return pick(options.env, 'env', 'PATCHPOINT_PROJECT')

  let dir = path.resolve(options.cwd)
  for (let i = 0; i < MAX_WALK_UP; i++) {
    if (hasConfig(dir)) return projectLocation(dir, 'walk')
    const parent = path.dirname(dir)
    if (parent === dir) break
    dir = parent
  }
  throw new UserError(
    `not a patchpoint project: no ${CONFIG_FILE_NAME} in ${path.resolve(options.cwd)} or any parent folder`,
    {code: 'PROJECT_NOT_FOUND', suggestion: hint},
  )
}
