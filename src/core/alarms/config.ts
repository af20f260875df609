/**
 * The `alarms:` section of patchpoint.yaml (the project schema reserves it as an open object;
 * it is validated here, with file:line:col diagnostics through parseYamlWithSchema).
 *
 *   alarms:
 *     events: [alert]            # event types that raise an alarm: alert, anomaly
 *     actions: [fix, drop, log]  # alerts only: which actions (shadow-mode alerts: add shadow)
 *     rate_limit: {per_second: 10, burst: 50}
 *     syslog:
 *       host: 127.0.0.1
 *       port: 514
 *       protocol: udp            # udp (RFC 5426) or tcp (RFC 6587 octet counting)
 *       facility: local0
 *       app_name: patchpoint
 *     webhook:
 *       url: https://hooks.example.net/patchpoint
 *       headers: {Authorization: Bearer XYZ}
 *       timeout_ms: 5000
 *       retries: 8               # attempts after the first
 *       backoff_ms: 500          # first retry delay, doubled each time up to max_backoff_ms
 *       max_backoff_ms: 30000
 *       queue: 1000              # alarms waiting at most; more are dropped and counted
 */
import {readFile} from 'node:fs/promises'
import {Ajv} from 'ajv'
import {UserError} from '../errors.js'
import {formatDiagnostic, parseYamlWithSchema} from '../project/yaml-schema.js'
import type {YamlDiagnostic} from '../project/yaml-schema.js'

export const SYSLOG_FACILITIES = [
  'kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'authpriv', 'ftp',
  'ntp', 'audit', 'alert', 'clock', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7',
] as const
export type SyslogFacility = (typeof SYSLOG_FACILITIES)[number]

export const ALARM_EVENT_TYPES = ['alert', 'anomaly'] as const
export const ALARM_ACTIONS = ['fix', 'log', 'drop', 'shadow'] as const

export const ALARM_DEFAULTS = Object.freeze({
  events: ['alert'] as string[],
  actions: ['fix', 'drop', 'log'] as string[],
  rate_limit: {per_second: 10, burst: 50},
  syslog: {port: 514, protocol: 'udp' as const, facility: 'local0' as SyslogFacility, app_name: 'patchpoint', queue: 1000},
  webhook: {timeout_ms: 5000, retries: 8, backoff_ms: 500, max_backoff_ms: 30_000, queue: 1000},
})

export interface SyslogTarget {
  host: string
  port: number
  protocol: 'udp' | 'tcp'
  facility: SyslogFacility
  app_name: string
  /** HOSTNAME field (default: the gateway id) */
  hostname?: string
  queue: number
}

export interface WebhookTarget {
  url: string
  headers?: Record<string, string>
  timeout_ms: number
  retries: number
  backoff_ms: number
  max_backoff_ms: number
  queue: number
}

export interface AlarmsConfig {
  events: ('alert' | 'anomaly')[]
  actions: ('fix' | 'log' | 'drop' | 'shadow')[]
  rate_limit: {per_second: number; burst: number}
  syslog?: SyslogTarget
  webhook?: WebhookTarget
}

const D = ALARM_DEFAULTS
const int = (min: number, max: number, def?: number) => ({type: 'integer', minimum: min, maximum: max, ...(def === undefined ? {} : {default: def})})

export const alarmsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    events: {type: 'array', items: {enum: [...ALARM_EVENT_TYPES]}, uniqueItems: true, default: D.events},
    actions: {type: 'array', items: {enum: [...ALARM_ACTIONS]}, uniqueItems: true, default: D.actions},
    rate_limit: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        per_second: {type: 'number', exclusiveMinimum: 0, maximum: 100_000, default: D.rate_limit.per_second},
        burst: int(1, 1_000_000, D.rate_limit.burst),
      },
    },
    syslog: {
      type: 'object',
      additionalProperties: false,
      required: ['host'],
      properties: {
        host: {type: 'string', minLength: 1, maxLength: 253},
        port: int(1, 65535, D.syslog.port),
        protocol: {enum: ['udp', 'tcp'], default: D.syslog.protocol},
        facility: {enum: [...SYSLOG_FACILITIES], default: D.syslog.facility},
        app_name: {type: 'string', pattern: '^[!-~]{1,48}$', default: D.syslog.app_name},
        hostname: {type: 'string', pattern: '^[!-~]{1,255}$'},
        queue: int(1, 1_000_000, D.syslog.queue),
      },
    },
    webhook: {
      type: 'object',
      additionalProperties: false,
      required: ['url'],
      properties: {
        url: {type: 'string', pattern: '^https?://'},
        headers: {type: 'object', additionalProperties: {type: 'string'}},
        timeout_ms: int(1, 600_000, D.webhook.timeout_ms),
        retries: int(0, 1000, D.webhook.retries),
        backoff_ms: int(1, 3_600_000, D.webhook.backoff_ms),
        max_backoff_ms: int(1, 86_400_000, D.webhook.max_backoff_ms),
        queue: int(1, 1_000_000, D.webhook.queue),
      },
    },
  },
} as const

/** Schema of a whole patchpoint.yaml as far as alarms are concerned (other sections pass). */
const fileSchema = {type: 'object', properties: {alarms: {...alarmsSchema, default: {}}}} as const

export interface AlarmsCheck {
  config?: AlarmsConfig
  diagnostics: YamlDiagnostic[]
}

const prepare = (data: unknown): unknown => {
  if (data && typeof data === 'object' && !Array.isArray(data) && (data as Record<string, unknown>).alarms === null) {
    (data as Record<string, unknown>).alarms = {}
  }
  return data
}

/** Validate the alarms section of patchpoint.yaml text; diagnostics name file:line:col. */
export function checkAlarmsText(text: string, file = 'patchpoint.yaml'): AlarmsCheck {
  const res = parseYamlWithSchema<{alarms: AlarmsConfig}>(text, file, fileSchema, {emptyValue: {}, prepare})
  if (!res.ok || !res.value) return {diagnostics: res.diagnostics}
  return {config: res.value.alarms, diagnostics: res.diagnostics}
}

/** Same, reading the file. UserError naming file:line:col on the first problem. */
export async function loadAlarmsConfig(file: string): Promise<AlarmsConfig> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (e) {
    throw new UserError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  const res = checkAlarmsText(text, file)
  if (!res.config) {
    const errs = res.diagnostics.filter((d) => d.severity === 'error')
    throw new UserError(errs[0] ? formatDiagnostic(errs[0]) : `${file}: invalid alarms section`, {
      code: 'CONFIG_INVALID',
      suggestion: errs[0]?.hint,
      details: errs.slice(1).map(formatDiagnostic),
    })
  }
  return res.config
}

let validate: ReturnType<Ajv['compile']> | undefined

/**
 * Validate an already-parsed alarms object (PatchpointConfig.alarms), applying defaults.
 * UserError on a bad value (no line numbers: use checkAlarmsText for those).
 */
export function normalizeAlarms(value: unknown): AlarmsConfig {
  validate ??= new Ajv({useDefaults: true, allErrors: false, strict: false}).compile(alarmsSchema)
  const copy = structuredClone(value ?? {}) as unknown
  if (!validate(copy)) {
    const e = validate.errors?.[0]
    throw new UserError(`alarms${(e?.instancePath ?? '').replace(/\//g, '.')}: ${e?.message ?? 'invalid'}`, {code: 'CONFIG_INVALID'})
  }
  return copy as AlarmsConfig
}
