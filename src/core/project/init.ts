/**
 * `initProject`: create a project folder: a commented `patchpoint.yaml` and the `.patchpoint/`
 * state folder. Idempotent; never overwrites anything that exists.
 */
import {mkdir, stat} from 'node:fs/promises'
import path from 'node:path'
import {EXIT, UserError} from '../errors.js'
import {atomicWriteFile} from './atomic.js'
import {CONFIG_DEFAULTS, DEFRAG_POLICIES, HOST_OSES, TCP_POLICIES} from './config-schema.js'
import {PROTECTIONS_DEFAULTS} from '../protections/config.js'
import {CONFIG_FILE_NAME} from './config.js'
import {findProject, STATE_DIR_NAME} from './find.js'

export interface InitOptions {
  /** allow a project inside another project's folder (it would shadow the outer one below it) */
  force?: boolean
}

export interface InitResult {
  /** absolute project folder */
  project: string
  /** true when patchpoint.yaml was created by this call */
  created: boolean
  /** absolute paths of the files and folders created by this call (empty if nothing changed) */
  files: string[]
}

const D = CONFIG_DEFAULTS
const L = D.engine.limits
const P = PROTECTIONS_DEFAULTS

/** The commented patchpoint.yaml written by `patchpoint init`: every key, with its default. */
export const CONFIG_TEMPLATE = `# patchpoint.yaml: configuration of a patchpoint virtual-patching gateway.
# Every key is optional; the values shown are the defaults. Check with: patchpoint config check

gateway:
  # Name of this gateway in events (patchpoint.gateway). Default: the machine's hostname.
  # id: gw-01

events:
  # EVE JSON event log (Suricata-compatible), relative to this folder.
  file: ${D.events.file}
  # Rotate when the log reaches this many bytes (${D.events.rotate_bytes / 1048576} MiB): eve.json -> eve.json.1 ...
  rotate_bytes: ${D.events.rotate_bytes}
  # Rotated files to keep (eve.json.1 .. eve.json.N); older ones are deleted.
  keep: ${D.events.keep}

engine:
  # How overlapping IP fragments are resolved unless a host entry says otherwise.
  # One of: ${DEFRAG_POLICIES.join(', ')}
  defrag_policy: ${D.engine.defrag_policy}
  # How overlapping TCP segments are resolved unless a host entry says otherwise.
  # One of: ${TCP_POLICIES.join(', ')}
  tcp_policy: ${D.engine.tcp_policy}
  # Resource limits. Reaching one is reported as an anomaly event, never a crash.
  limits:
    # Flows tracked at once.
    flows: ${L.flows}
    # Bytes buffered by TCP reassembly, all flows together (${L.tcp_memory_bytes / 1048576} MiB).
    tcp_memory_bytes: ${L.tcp_memory_bytes}
    # Out-of-order TCP segments held per flow.
    tcp_segments_per_flow: ${L.tcp_segments_per_flow}
    # Bytes held by IP defragmentation (${L.defrag_bytes / 1048576} MiB).
    defrag_bytes: ${L.defrag_bytes}
    # IP datagrams being reassembled at once.
    defrag_trackers: ${L.defrag_trackers}
    # Seconds a flow may stay idle before it is ended (and a flow event written).
    flow_timeout_s: ${L.flow_timeout_s}

# Per destination host policy: the first entry whose match covers the destination wins.
# match: an address or CIDR block; os: ${HOST_OSES.join(', ')}
# (os sets both policies; defrag_policy / tcp_policy override it).
hosts: []
#  - match: 10.0.0.0/24
#    os: windows
#  - match: 2001:db8::7
#    tcp_policy: linux

# Generic protections. Each threshold crossing is an anomaly event (protection.*) that the
# rules in rules/generic/ turn into an action. Rates are token buckets in packet time.
protections:
  # HTTP requests and SMTP/FTP/IMAP/POP3 commands per source and service (server ip:port).
  request_rate:
    enabled: ${P.request_rate.enabled}
    per_second: ${P.request_rate.per_second}
    burst: ${P.request_rate.burst}
  # New connections per source and service; per_source_*: to all services together (scans).
  connection_rate:
    enabled: ${P.connection_rate.enabled}
    per_second: ${P.connection_rate.per_second}
    burst: ${P.connection_rate.burst}
    per_source_per_second: ${P.connection_rate.per_source_per_second}
    per_source_burst: ${P.connection_rate.per_source_burst}
  # Failed logins (FTP, SMTP AUTH, IMAP, POP3, MySQL) per source and service within window_s.
  auth_failures:
    enabled: ${P.auth_failures.enabled}
    max: ${P.auth_failures.max}
    window_s: ${P.auth_failures.window_s}
  # Slowloris: a source holding max_per_source requests incomplete for head_timeout_s.
  slow_requests:
    enabled: ${P.slow_requests.enabled}
    head_timeout_s: ${P.slow_requests.head_timeout_s}
    max_per_source: ${P.slow_requests.max_per_source}
  # Sources (and source+service pairs) remembered at once; the least recently seen are forgotten.
  max_sources: ${P.max_sources}
  # Extensions (lower-case, no dot) blocked after URI normalization (so shell.asp;.jpg,
  # web.config. and %2e tricks count). requests: paths no one should fetch (backups, configs);
  # uploads: multipart filenames a server might execute. Empty lists turn a check off.
  file_extensions:
    enabled: ${P.file_extensions.enabled}
    requests: [${P.file_extensions.requests.join(', ')}]
    uploads: [${P.file_extensions.uploads.join(', ')}]
  # HTTP requests that protected servers start themselves may only go to allowed hosts.
  # servers: addresses or CIDR blocks; allow: host names, *.domain (subdomains), addresses/CIDR.
  # Empty servers = off.
  outbound_http:
    servers: []
    allow: []
  #  servers: [10.0.0.0/24]
  #  allow: [updates.example.com, '*.ubuntu.com', 10.0.0.0/8]

# Reserved for later sections:
# rules: {}
# alarms: {}
`

const STATE_README = 'patchpoint state folder (event logs, locks): managed by patchpoint, safe to delete when it is stopped.\n'

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p)
    return true
  } catch {
    return false
  }
}

/** Create a project in `dir` (created if missing). Running it again changes nothing. */
export async function initProject(dir: string, options: InitOptions = {}): Promise<InitResult> {
  try {
    return await init(dir, options)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (err instanceof UserError || typeof code !== 'string') throw err
    const p = (err as NodeJS.ErrnoException).path ?? dir
    const exitCode = code === 'EACCES' || code === 'EPERM' ? EXIT.PERMISSION : EXIT.USER
    throw new UserError(`cannot initialize ${path.resolve(dir)}: ${code} on ${p}`, {code: 'INIT_FAILED', exitCode, cause: err})
  }
}

async function init(dir: string, options: InitOptions): Promise<InitResult> {
  const project = path.resolve(dir)
  const files: string[] = []
  try {
    const st = await stat(project)
    if (!st.isDirectory()) throw new UserError(`${project} exists and is not a folder`, {code: 'INIT_NOT_A_FOLDER'})
  } catch (err) {
    if (err instanceof UserError) throw err
  }
  const configPath = path.join(project, CONFIG_FILE_NAME)
  const hadConfig = await exists(configPath)
  if (!hadConfig && !options.force) {
    const parent = path.dirname(project)
    let outer: string | undefined
    try {
      outer = parent === project ? undefined : findProject({cwd: parent}).dir
    } catch {
      outer = undefined
    }
    if (outer !== undefined) {
      throw new UserError(`${project} is inside the patchpoint project ${outer}`, {
        code: 'INIT_NESTED',
        suggestion: 'use that project, or pass --force to create a nested one',
      })
    }
  }
  const mk = async (p: string) => {
    if (await exists(p)) return
    await mkdir(p, {recursive: true})
    files.push(p)
  }
  await mk(project)
  const stateDir = path.join(project, STATE_DIR_NAME)
  await mk(stateDir)
  await mk(path.join(stateDir, 'events'))
  const write = async (p: string, text: string) => {
    if (await exists(p)) return false
    try {
      await atomicWriteFile(p, text, {overwrite: false})
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false // someone else just made it
      throw err
    }
    files.push(p)
    return true
  }
  await write(path.join(stateDir, 'README'), STATE_README)
  await write(path.join(stateDir, '.gitignore'), '# state, not configuration\n*\n')
  const created = await write(configPath, CONFIG_TEMPLATE)
  return {project, created, files}
}
