/**
 * Load `patchpoint.yaml`: YAML -> JSON Schema validation -> typed config with defaults applied.
 */
import {hostname} from 'node:os'
import path from 'node:path'
import {UserError} from '../errors.js'
import {configSchema} from './config-schema.js'
import type {PatchpointConfig} from './config-schema.js'
import {formatDiagnostic, loadYamlWithSchema, parseYamlWithSchema} from './yaml-schema.js'
import type {YamlDiagnostic, YamlSchemaResult} from './yaml-schema.js'

export const CONFIG_FILE_NAME = 'patchpoint.yaml'

/** A section whose keys are all commented out parses as null: treat it as empty. */
function nullSectionsAsEmpty(data: unknown): unknown {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return data
  const o = data as Record<string, unknown>
  for (const k of ['gateway', 'events', 'engine', 'rules', 'alarms', 'protections']) if (k in o && o[k] === null) o[k] = {}
  if ('hosts' in o && o.hosts === null) o.hosts = []
  const engine = o.engine
  if (engine && typeof engine === 'object' && !Array.isArray(engine)) {
    const e = engine as Record<string, unknown>
    if ('limits' in e && e.limits === null) e.limits = {}
  }
  return data
}

const LOAD_OPTIONS = {emptyValue: {}, prepare: nullSectionsAsEmpty}

export interface ConfigCheck {
  /** the effective config (defaults applied), when there is no error */
  config?: PatchpointConfig
  /** errors and warnings, sorted by position */
  diagnostics: YamlDiagnostic[]
}

/** Validate a config file; never throws. Warnings (e.g. duplicate host entries) do not block. */
export async function checkConfig(file: string, displayName?: string): Promise<ConfigCheck> {
  const res = await loadYamlWithSchema<PatchpointConfig>(file, configSchema, {...LOAD_OPTIONS, displayName})
  return finishCheck(res, displayName ?? res.diagnostics[0]?.file ?? file)
}

/** Same as checkConfig, for text in memory. */
export function checkConfigText(text: string, displayName = CONFIG_FILE_NAME): ConfigCheck {
  return finishCheck(parseYamlWithSchema<PatchpointConfig>(text, displayName, configSchema, LOAD_OPTIONS), displayName)
}

function finishCheck(res: YamlSchemaResult<PatchpointConfig>, file: string): ConfigCheck {
  if (!res.ok || !res.value) return {diagnostics: res.diagnostics}
  const config = res.value
  if (config.gateway.id === undefined) config.gateway.id = hostname()
  const diagnostics = [...res.diagnostics]
  const seen = new Map<string, number>()
  config.hosts.forEach((h, i) => {
    const prev = seen.get(h.match)
    if (prev !== undefined) {
      const pos = res.locate?.(`/hosts/${i}`) ?? {line: 0, col: 0}
      diagnostics.push({
        file, ...pos, pointer: `/hosts/${i}`, severity: 'warning', code: 'duplicate_host',
        message: `hosts[${i}]: '${h.match}' is already matched by hosts[${prev}]; the first entry wins`,
      })
    } else seen.set(h.match, i)
  })
  return {config, diagnostics}
}

/** Turn error diagnostics into one UserError: first one as the message, the others as details. */
export function configError(diagnostics: YamlDiagnostic[]): UserError {
  const errors = diagnostics.filter((d) => d.severity === 'error')
  const first = errors[0]
  return new UserError(first ? formatDiagnostic(first) : 'invalid configuration', {
    code: 'CONFIG_INVALID',
    suggestion: first?.hint,
    details: errors.slice(1).map((d) => formatDiagnostic(d) + (d.hint ? ` (${d.hint})` : '')),
  })
}

/**
 * Load and validate `patchpoint.yaml`; returns the typed config with defaults applied.
 * Throws UserError (exit 2) naming `file:line:col` of the first problem.
 */
export async function loadConfig(file: string, displayName?: string): Promise<PatchpointConfig> {
  const res = await checkConfig(file, displayName)
  if (!res.config) throw configError(res.diagnostics)
  return res.config
}

/** Absolute path of the events log of a project. */
export function eventsFilePath(config: PatchpointConfig, projectDir: string): string {
  return path.resolve(projectDir, config.events.file)
}
