/**
 * The `protections:` section of patchpoint.yaml: thresholds of the generic protections, the
 * file-extension lists and the outbound HTTP whitelist. Defaults and the JSON Schema fragment
 * live here; src/core/project/config-schema.ts embeds the fragment.
 */

export interface RateLimit {
  enabled: boolean
  /** sustained events per second (token refill rate) */
  per_second: number
  /** events allowed at once above the sustained rate (bucket size) */
  burst: number
}

export interface ProtectionsConfig {
  /** requests (HTTP requests; SMTP/FTP/IMAP/POP3 commands) per source and service */
  request_rate: RateLimit
  /** new connections per source and service */
  connection_rate: RateLimit & {
    /** new connections per source to all services together (scans) */
    per_source_per_second: number
    per_source_burst: number
  }
  /** failed logins per source and service within window_s */
  auth_failures: {enabled: boolean; max: number; window_s: number}
  /** requests whose head/body is still incomplete after head_timeout_s, per source */
  slow_requests: {enabled: boolean; head_timeout_s: number; max_per_source: number}
  /** sources (and source+service pairs) tracked at once; least recently seen are forgotten */
  max_sources: number
  /** file-extension blacklists (lower-case, without the dot) */
  file_extensions: {enabled: boolean; requests: string[]; uploads: string[]}
  /** requests that protected servers themselves start may only go to allowed hosts */
  outbound_http: {servers: string[]; allow: string[]}
}

/** Extensions of files that should never be fetched from a web server: backups, configs, secrets. */
export const DEFAULT_REQUEST_EXTENSIONS: readonly string[] = Object.freeze([
  'bak', 'old', 'orig', 'save', 'swp', 'swo', 'tmp', 'config', 'conf', 'ini', 'env', 'htaccess', 'htpasswd',
  'sql', 'mdb', 'inc', 'log', 'pem', 'key', 'git', 'svn', 'ds_store',
])

/** Extensions of uploaded files a server may execute: scripts, server pages, binaries, handler configs. */
export const DEFAULT_UPLOAD_EXTENSIONS: readonly string[] = Object.freeze([
  'asp', 'aspx', 'asa', 'cer', 'ashx', 'asmx', 'axd', 'cshtml', 'php', 'php3', 'php4', 'php5', 'php7', 'phtml',
  'phar', 'pht', 'jsp', 'jspx', 'jsw', 'jsv', 'cgi', 'pl', 'py', 'rb', 'sh', 'exe', 'dll', 'bat', 'cmd', 'com',
  'scr', 'ps1', 'vbs', 'hta', 'shtml', 'htaccess', 'config', 'war', 'jar',
])

export const PROTECTIONS_DEFAULTS: Readonly<ProtectionsConfig> = Object.freeze({
  request_rate: {enabled: true, per_second: 100, burst: 300},
  connection_rate: {enabled: true, per_second: 50, burst: 150, per_source_per_second: 100, per_source_burst: 300},
  auth_failures: {enabled: true, max: 10, window_s: 60},
  slow_requests: {enabled: true, head_timeout_s: 10, max_per_source: 5},
  max_sources: 65_536,
  file_extensions: {enabled: true, requests: [...DEFAULT_REQUEST_EXTENSIONS], uploads: [...DEFAULT_UPLOAD_EXTENSIONS]},
  outbound_http: {servers: [], allow: []},
})

/** A partial section (as a test or an older config may give it) completed with the defaults. */
export function protectionsConfig(p: DeepPartial<ProtectionsConfig> = {}): ProtectionsConfig {
  const d = PROTECTIONS_DEFAULTS
  return {
    request_rate: {...d.request_rate, ...p.request_rate},
    connection_rate: {...d.connection_rate, ...p.connection_rate},
    auth_failures: {...d.auth_failures, ...p.auth_failures},
    slow_requests: {...d.slow_requests, ...p.slow_requests},
    max_sources: p.max_sources ?? d.max_sources,
    file_extensions: {
      enabled: p.file_extensions?.enabled ?? d.file_extensions.enabled,
      requests: [...(p.file_extensions?.requests ?? d.file_extensions.requests)] as string[],
      uploads: [...(p.file_extensions?.uploads ?? d.file_extensions.uploads)] as string[],
    },
    outbound_http: {
      servers: [...(p.outbound_http?.servers ?? [])] as string[],
      allow: [...(p.outbound_http?.allow ?? [])] as string[],
    },
  }
}

export type DeepPartial<T> = {[K in keyof T]?: T[K] extends (infer U)[] ? U[] : T[K] extends object ? DeepPartial<T[K]> : T[K]}

const D = PROTECTIONS_DEFAULTS
const num = (def: number, description: string, min = 1, max = 1_000_000) =>
  ({type: 'number', minimum: min, maximum: max, default: def, description}) as const
const int = (def: number, description: string, min = 1, max = 1_000_000) =>
  ({type: 'integer', minimum: min, maximum: max, default: def, description}) as const
const enabled = {type: 'boolean', default: true, description: 'turn this protection on or off'} as const
const extList = (def: readonly string[], description: string) => ({
  type: 'array', maxItems: 1000, default: [...def], description,
  items: {type: 'string', pattern: '^[a-z0-9_~-]{1,32}$', description: 'lower-case extension without the dot'},
}) as const

/** JSON Schema (draft-07) of the `protections:` section, with defaults for ajv's useDefaults. */
export const protectionsSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  description: 'generic protections: rate limits, file-extension blacklist, outbound HTTP whitelist',
  properties: {
    request_rate: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        enabled,
        per_second: num(D.request_rate.per_second, 'sustained requests per second per source and service'),
        burst: int(D.request_rate.burst, 'requests allowed at once above the sustained rate'),
      },
    },
    connection_rate: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        enabled,
        per_second: num(D.connection_rate.per_second, 'sustained new connections per second per source and service'),
        burst: int(D.connection_rate.burst, 'new connections allowed at once per source and service'),
        per_source_per_second: num(D.connection_rate.per_source_per_second, 'sustained new connections per second per source, all services'),
        per_source_burst: int(D.connection_rate.per_source_burst, 'new connections allowed at once per source, all services'),
      },
    },
    auth_failures: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        enabled,
        max: int(D.auth_failures.max, 'failed logins allowed per source and service within window_s'),
        window_s: int(D.auth_failures.window_s, 'seconds over which failed logins are counted', 1, 86_400),
      },
    },
    slow_requests: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        enabled,
        head_timeout_s: int(D.slow_requests.head_timeout_s, 'seconds a request may stay incomplete', 1, 3_600),
        max_per_source: int(D.slow_requests.max_per_source, 'incomplete requests held open by one source before it is flagged'),
      },
    },
    max_sources: int(D.max_sources, 'sources and source+service pairs tracked at once', 16, 10_000_000),
    file_extensions: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        enabled,
        requests: extList(D.file_extensions.requests, 'extensions no request path may end with (after URI normalization)'),
        uploads: extList(D.file_extensions.uploads, 'extensions no multipart upload filename may carry'),
      },
    },
    outbound_http: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        servers: {type: 'array', maxItems: 100_000, default: [], items: {type: 'string', format: 'ip-or-cidr'}, description: 'protected servers (addresses or CIDR blocks) whose own HTTP requests are checked'},
        allow: {
          type: 'array', maxItems: 100_000, default: [],
          items: {type: 'string', minLength: 1, maxLength: 253, pattern: '^(\\*\\.)?[A-Za-z0-9_.:/-]+$'},
          description: 'hosts they may reach: a hostname, *.domain (any subdomain), an address or CIDR block',
        },
      },
    },
  },
} as const
