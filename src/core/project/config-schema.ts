/**
 * JSON Schema of `patchpoint.yaml` (draft-07, validated with ajv; `default`s are applied by
 * ajv's `useDefaults`). Every object is closed (`additionalProperties: false`) so a typo is an
 * error with a did-you-mean hint instead of a silently ignored key.
 *
 * `gateway.id` has no static default: loadConfig fills in the hostname.
 */
import {protectionsSchema, type ProtectionsConfig} from '../protections/config.js'

export const DEFRAG_POLICIES = ['first', 'last', 'bsd', 'bsd-right', 'linux', 'windows', 'solaris'] as const
export type DefragPolicy = (typeof DEFRAG_POLICIES)[number]

export const TCP_POLICIES = [
  'first', 'last', 'bsd', 'linux', 'old-linux', 'windows', 'vista', 'solaris', 'hpux10', 'hpux11',
  'irix', 'macos',
] as const
export type TcpPolicy = (typeof TCP_POLICIES)[number]

/** Operating systems a host entry may name; the engine maps them to overlap policies. */
export const HOST_OSES = [
  'linux', 'old-linux', 'windows', 'vista', 'bsd', 'macos', 'solaris', 'hpux10', 'hpux11', 'irix',
] as const
export type HostOs = (typeof HOST_OSES)[number]

const MiB = 1024 * 1024

/** Defaults, in one place: the schema and the commented patchpoint.yaml template use them. */
export const CONFIG_DEFAULTS = Object.freeze({
  events: {file: '.patchpoint/events/eve.json', rotate_bytes: 100 * MiB, keep: 5},
  engine: {
    defrag_policy: 'first' as DefragPolicy,
    tcp_policy: 'first' as TcpPolicy,
    limits: {
      flows: 65_536,
      tcp_memory_bytes: 64 * MiB,
      tcp_segments_per_flow: 1_024,
      defrag_bytes: 16 * MiB,
      defrag_trackers: 4_096,
      flow_timeout_s: 120,
    },
  },
})

export interface PatchpointConfig {
  gateway: {id: string}
  events: {file: string; rotate_bytes: number; keep: number}
  engine: {
    defrag_policy: DefragPolicy
    tcp_policy: TcpPolicy
    limits: {
      flows: number
      tcp_memory_bytes: number
      tcp_segments_per_flow: number
      defrag_bytes: number
      defrag_trackers: number
      flow_timeout_s: number
    }
  }
  hosts: HostPolicy[]
  /** generic protections: rate limits, file-extension blacklist, outbound HTTP whitelist */
  protections: ProtectionsConfig
  /** reserved for the rules section (owned by the rule engine) */
  rules: Record<string, unknown>
  /** reserved for the alarms section */
  alarms: Record<string, unknown>
}

export interface HostPolicy {
  /** IPv4/IPv6 address or CIDR */
  match: string
  os?: HostOs
  defrag_policy?: DefragPolicy
  tcp_policy?: TcpPolicy
}

const L = CONFIG_DEFAULTS.engine.limits
const posInt = (def: number, description: string, max = Number.MAX_SAFE_INTEGER) =>
  ({type: 'integer', minimum: 1, maximum: max, default: def, description}) as const

export const configSchema = {
  $id: 'https://patchpoint.dev/schema/patchpoint.yaml.json',
  type: 'object',
  additionalProperties: false,
  properties: {
    gateway: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        id: {type: 'string', minLength: 1, maxLength: 253, description: 'name of this gateway in events (default: hostname)'},
      },
    },
    events: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        file: {type: 'string', minLength: 1, default: CONFIG_DEFAULTS.events.file, description: 'EVE JSON log, relative to the project folder'},
        rotate_bytes: posInt(CONFIG_DEFAULTS.events.rotate_bytes, 'rotate the log when it reaches this size'),
        keep: {type: 'integer', minimum: 0, maximum: 1000, default: CONFIG_DEFAULTS.events.keep, description: 'rotated files to keep'},
      },
    },
    engine: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        defrag_policy: {enum: [...DEFRAG_POLICIES], default: CONFIG_DEFAULTS.engine.defrag_policy},
        tcp_policy: {enum: [...TCP_POLICIES], default: CONFIG_DEFAULTS.engine.tcp_policy},
        limits: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            flows: posInt(L.flows, 'flows tracked at once'),
            tcp_memory_bytes: posInt(L.tcp_memory_bytes, 'bytes buffered by TCP reassembly, all flows'),
            tcp_segments_per_flow: posInt(L.tcp_segments_per_flow, 'out-of-order segments held per flow'),
            defrag_bytes: posInt(L.defrag_bytes, 'bytes held by IP defragmentation'),
            defrag_trackers: posInt(L.defrag_trackers, 'datagrams being reassembled at once'),
            flow_timeout_s: posInt(L.flow_timeout_s, 'idle seconds before a flow is ended', 86_400),
          },
        },
      },
    },
    hosts: {
      type: 'array',
      default: [],
      maxItems: 100_000,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['match'],
        properties: {
          match: {type: 'string', format: 'ip-or-cidr'},
          os: {enum: [...HOST_OSES]},
          defrag_policy: {enum: [...DEFRAG_POLICIES]},
          tcp_policy: {enum: [...TCP_POLICIES]},
        },
      },
    },
    protections: protectionsSchema,
    rules: {type: 'object', default: {}},
    alarms: {type: 'object', default: {}},
  },
} as const
