/**
 * Data-driven service probes, in the manner of nmap's `nmap-service-probes`: a probe is bytes to
 * send (or nothing: the NULL probe waits for a banner), the ports it is most likely to hit, a
 * rarity, and many matchers. A matcher is an RE2 regular expression over the response (bytes as
 * latin1 text, so `\x00` and `.` match any byte with the `s` flag) whose capture groups fill the
 * product, version, extra information, CPE and OS hint through templates:
 *
 *   $1 .. $9          the group's text
 *   $P(n)             the group with non-printable bytes removed
 *   $I(n,>) $I(n,<)   the group's bytes as a big/little-endian unsigned integer
 *   $SUBST(n,a,b)     the group with every `a` replaced by `b`
 *   $T(name,n)        a named transform of the group (see TRANSFORMS; e.g. oracle_vsnnum)
 *
 * A `soft` matcher names the service only; detection continues with the probes that can match
 * that service. The matcher code knows nothing about any protocol: everything protocol-specific
 * is in `rules/probes/*.yaml`.
 */
import {readdirSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {readFileSync} from 'node:fs'
import {RE2JS} from 're2js'
import {formatDiagnostic, parseYamlWithSchema, type YamlDiagnostic} from '../project/yaml-schema.js'
import {MAX_RESPONSE_BYTES} from './connect.js'

/** bytes of a response that matchers look at (nmap reads at most ~ this much too); defined in connect.ts */
export {MAX_RESPONSE_BYTES}
export const MAX_PROBES = 256
export const MAX_MATCHERS_PER_PROBE = 1024
export const MAX_PROBE_BYTES = 8 * 1024

export const DEFAULT_PROBES_DIR = fileURLToPath(new URL('../../../rules/probes/', import.meta.url))

export interface ProbeMatcherSpec {
  service: string
  pattern: string
  /** RE2 flags: i (case-insensitive), s (dot matches newline; default on), m (multi-line) */
  flags?: string
  soft?: boolean
  product?: string
  version?: string
  extra?: string
  cpe?: string[]
  /** OS hint from the banner */
  os?: {family: string; detail?: string}
  /** 0..1, default 1 (hard) or 0.3 (soft) */
  confidence?: number
  /** possible products/versions when the response cannot tell them apart */
  candidates?: {product: string; version?: string; confidence: number}[]
}

export interface ProbeSpec {
  name: string
  protocol: 'tcp'
  /** bytes to send, nmap-style escapes: \r \n \t \0 \xNN \\ ; '' = NULL probe */
  send: string
  /** ports this probe is tried first on */
  ports?: number[]
  /** ports where the probe is sent inside TLS */
  tls_ports?: number[]
  /** 1 (common) .. 9 (rare): probes above the scan's intensity are skipped unless port-hinted */
  rarity?: number
  /** how long to wait for the response, ms */
  wait_ms?: number
  /** other probes whose matchers also apply to this probe's responses */
  fallback?: string[]
  /** only over TLS (after a TLS tunnel was found) or never over TLS */
  tls?: 'only' | 'never' | 'any'
  matchers: ProbeMatcherSpec[]
}

export interface CompiledMatcher {
  spec: ProbeMatcherSpec
  re: RE2JS
  probe: string
  /** where it came from, for diagnostics */
  where: string
}

export interface CompiledProbe {
  spec: ProbeSpec
  name: string
  bytes: Uint8Array
  ports: Set<number>
  tlsPorts: Set<number>
  rarity: number
  waitMs: number
  matchers: CompiledMatcher[]
  /** own matchers then fallbacks' (filled after all probes are loaded) */
  allMatchers: CompiledMatcher[]
  /** services any of allMatchers can name */
  services: Set<string>
}

export interface ProbeSet {
  probes: CompiledProbe[]
  byName: Map<string, CompiledProbe>
  diagnostics: YamlDiagnostic[]
}

export interface ServiceMatch {
  probe: string
  service: string
  soft: boolean
  product?: string
  version?: string
  extra?: string
  cpe?: string[]
  os?: {family: string; detail?: string}
  confidence: number
  candidates?: {product: string; version?: string; confidence: number}[]
}

// ---------------------------------------------------------------------------------------------
// loading

const probeSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['probes'],
  properties: {
    probes: {
      type: 'array',
      maxItems: MAX_PROBES,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'send', 'matchers'],
        properties: {
          name: {type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$'},
          protocol: {enum: ['tcp'], default: 'tcp'},
          send: {type: 'string', maxLength: MAX_PROBE_BYTES * 4},
          ports: {type: 'array', items: {type: 'integer', minimum: 1, maximum: 65535}},
          tls_ports: {type: 'array', items: {type: 'integer', minimum: 1, maximum: 65535}},
          rarity: {type: 'integer', minimum: 1, maximum: 9},
          wait_ms: {type: 'integer', minimum: 50, maximum: 30000},
          fallback: {type: 'array', items: {type: 'string'}},
          tls: {enum: ['only', 'never', 'any']},
          matchers: {
            type: 'array',
            maxItems: MAX_MATCHERS_PER_PROBE,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['service', 'pattern'],
              properties: {
                service: {type: 'string', minLength: 1},
                pattern: {type: 'string', minLength: 1},
                flags: {type: 'string', pattern: '^[ism]*$'},
                soft: {type: 'boolean'},
                product: {type: 'string'},
                version: {type: 'string'},
                extra: {type: 'string'},
                cpe: {type: 'array', items: {type: 'string'}},
                os: {type: 'object', additionalProperties: false, required: ['family'], properties: {family: {type: 'string'}, detail: {type: 'string'}}},
                confidence: {type: 'number', minimum: 0, maximum: 1},
                candidates: {
                  type: 'array',
                  items: {type: 'object', additionalProperties: false, required: ['product', 'confidence'], properties: {product: {type: 'string'}, version: {type: 'string'}, confidence: {type: 'number', minimum: 0, maximum: 1}}},
                },
              },
            },
          },
        },
      },
    },
  },
}

/** nmap-style escapes to bytes; unknown escapes keep the character. */
export function unescapeProbe(s: string): Uint8Array {
  const out: number[] = []
  for (let i = 0; i < s.length && out.length <= MAX_PROBE_BYTES; i++) {
    const c = s.charCodeAt(i)
    if (c !== 0x5c || i + 1 >= s.length) {
      if (c > 0xff) for (const b of Buffer.from(s[i], 'utf8')) out.push(b)
      else out.push(c)
      continue
    }
    const n = s[++i]
    if (n === 'r') out.push(13)
    else if (n === 'n') out.push(10)
    else if (n === 't') out.push(9)
    else if (n === '0') out.push(0)
    else if (n === 'x' && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
      out.push(parseInt(s.slice(i + 1, i + 3), 16))
      i += 2
    } else out.push(n.charCodeAt(0) & 0xff)
  }
  return Uint8Array.from(out.slice(0, MAX_PROBE_BYTES))
}

function compileFlags(flags: string | undefined): number {
  const f = flags ?? 's'
  return (f.includes('i') ? RE2JS.CASE_INSENSITIVE : 0) | (f.includes('s') || flags === undefined ? RE2JS.DOTALL : 0) | (f.includes('m') ? RE2JS.MULTILINE : 0)
}

/** Compile the probes of YAML texts: [{text, file}]. Bad matchers are reported, the rest load. */
export function compileProbes(files: {text: string; file: string}[]): ProbeSet {
  const set: ProbeSet = {probes: [], byName: new Map(), diagnostics: []}
  for (const {text, file} of files) {
    const r = parseYamlWithSchema<{probes: ProbeSpec[]}>(text, file, probeSchema)
    set.diagnostics.push(...r.diagnostics)
    if (!r.ok || !r.value) continue
    r.value.probes.forEach((p, pi) => {
      if (set.byName.has(p.name)) {
        set.diagnostics.push({file, line: r.locate?.(`/probes/${pi}/name`).line ?? 0, col: 1, message: `probe ${p.name} is defined twice`, pointer: `/probes/${pi}/name`, severity: 'error', code: 'duplicate'})
        return
      }
      if (set.probes.length >= MAX_PROBES) return
      const cp: CompiledProbe = {
        spec: p, name: p.name, bytes: unescapeProbe(p.send), ports: new Set(p.ports ?? []), tlsPorts: new Set(p.tls_ports ?? []),
        rarity: p.rarity ?? 5, waitMs: p.wait_ms ?? 3000, matchers: [], allMatchers: [], services: new Set(),
      }
      p.matchers.forEach((m, mi) => {
        const pointer = `/probes/${pi}/matchers/${mi}/pattern`
        try {
          cp.matchers.push({spec: m, re: RE2JS.compile(m.pattern, compileFlags(m.flags)), probe: p.name, where: `${file}:${r.locate?.(pointer).line ?? 0}`})
        } catch (err) {
          const loc = r.locate?.(pointer) ?? {line: 0, col: 0}
          set.diagnostics.push({file, line: loc.line, col: loc.col, message: `probe ${p.name}: bad pattern: ${(err as Error).message}`, pointer, severity: 'error', code: 'pattern'})
        }
      })
      set.probes.push(cp)
      set.byName.set(p.name, cp)
    })
  }
  for (const p of set.probes) {
    p.allMatchers = [...p.matchers]
    for (const fb of p.spec.fallback ?? []) {
      const other = set.byName.get(fb)
      if (other) p.allMatchers.push(...other.matchers)
      else set.diagnostics.push({file: p.name, line: 0, col: 0, message: `probe ${p.name}: unknown fallback probe ${fb}`, pointer: '', severity: 'error', code: 'fallback'})
    }
    for (const m of p.allMatchers) p.services.add(m.spec.service)
  }
  return set
}

/** Load every `*.yaml` under dir (default: the shipped rules/probes). */
export function loadProbes(dir = DEFAULT_PROBES_DIR): ProbeSet {
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()
    .map((f) => ({text: readFileSync(path.join(dir, f), 'utf8'), file: path.join(path.basename(dir), f)}))
  return compileProbes(files)
}

export function probeDiagnosticsText(set: ProbeSet): string[] {
  return set.diagnostics.map(formatDiagnostic)
}

// ---------------------------------------------------------------------------------------------
// matching

/** Named transforms usable as $T(name,n) in templates. */
export const TRANSFORMS: Readonly<Record<string, (s: string) => string>> = Object.freeze({
  /** Oracle TNS VSNNUM (decimal) -> dotted version: 8 bits major, 4 minor, 4, 8, 8 */
  oracle_vsnnum: (s: string) => {
    const n = Number.parseInt(s, 10)
    if (!Number.isFinite(n) || n < 0 || n > 0xffffffff) return ''
    return [n >>> 24, (n >>> 20) & 0xf, (n >>> 16) & 0xf, (n >>> 8) & 0xff, n & 0xff].join('.')
  },
  /** Microsoft product version bytes major.minor.build(2 bytes BE) */
  ms_version: (s: string) => s.length < 4 ? '' : `${s.charCodeAt(0)}.${s.charCodeAt(1)}.${(s.charCodeAt(2) << 8) | s.charCodeAt(3)}`,
  /** SMB2 dialect revision (2 bytes, little-endian) -> "2.0.2", "3.1.1" */
  smb2_dialect: (s: string) => {
    if (s.length < 2) return ''
    const d = s.charCodeAt(0) | (s.charCodeAt(1) << 8)
    const known: Record<number, string> = {0x0202: '2.0.2', 0x0210: '2.1', 0x0300: '3.0', 0x0302: '3.0.2', 0x0311: '3.1.1', 0x02ff: '2.x'}
    return known[d] ?? `0x${d.toString(16)}`
  },
  lower: (s: string) => s.toLowerCase(),
})

function groupInt(g: string, little: boolean): string {
  let n = 0
  const len = Math.min(g.length, 6)
  for (let i = 0; i < len; i++) {
    const b = g.charCodeAt(little ? len - 1 - i : i) & 0xff
    n = n * 256 + b
  }
  return String(n)
}

/** Fill a template from regex groups (index 0 = whole match). */
export function fillTemplate(tpl: string, groups: readonly (string | null | undefined)[]): string {
  const g = (n: string): string => groups[Number(n)] ?? ''
  return tpl
    .replace(/\$I\((\d),([<>])\)/g, (_, n: string, e: string) => groupInt(g(n), e === '<'))
    .replace(/\$P\((\d)\)/g, (_, n: string) => g(n).replace(/[^\x20-\x7e]/g, ''))
    .replace(/\$SUBST\((\d),"([^"]*)","([^"]*)"\)/g, (_, n: string, a: string, b: string) => a === '' ? g(n) : g(n).split(a).join(b))
    .replace(/\$T\((\w+),(\d)\)/g, (_, name: string, n: string) => TRANSFORMS[name]?.(g(n)) ?? '')
    .replace(/\$(\d)/g, (_, n: string) => g(n))
    .trim()
}

/** bytes as a latin1 string (one char per byte): what the matchers see */
export function responseText(data: Uint8Array): string {
  const d = data.length > MAX_RESPONSE_BYTES ? data.subarray(0, MAX_RESPONSE_BYTES) : data
  return Buffer.from(d.buffer, d.byteOffset, d.length).toString('latin1')
}

function toMatch(m: CompiledMatcher, groups: readonly (string | null | undefined)[]): ServiceMatch {
  const s = m.spec
  const opt = (t: string | undefined): string | undefined => {
    if (t === undefined) return undefined
    const v = fillTemplate(t, groups)
    return v === '' ? undefined : v
  }
  const version = opt(s.version)
  const cpe = s.cpe?.map((c) => fillTemplate(c, groups)).map((c) => c.replace(/:$/, '')).filter((c) => c !== '')
  return {
    probe: m.probe,
    service: s.service,
    soft: s.soft === true,
    product: opt(s.product)?.toLowerCase(),
    version,
    extra: opt(s.extra),
    cpe: cpe && cpe.length > 0 ? cpe : undefined,
    os: s.os ? {family: fillTemplate(s.os.family, groups), detail: opt(s.os.detail)} : undefined,
    confidence: s.confidence ?? (s.soft ? 0.3 : version ? 1 : 0.8),
    candidates: s.candidates?.map((c) => ({product: c.product.toLowerCase(), version: c.version === undefined ? undefined : fillTemplate(c.version, groups), confidence: c.confidence})),
  }
}

/**
 * Match a response against matchers in order: the first hard match wins; otherwise the first
 * soft match; null when nothing matches. `onlyService` restricts to one service (after a soft
 * match elsewhere).
 */
export function matchResponse(matchers: readonly CompiledMatcher[], data: Uint8Array | string, onlyService?: string): ServiceMatch | null {
  if (data.length === 0) return null
  const text = typeof data === 'string' ? data : responseText(data)
  let soft: ServiceMatch | null = null
  for (const m of matchers) {
    if (onlyService !== undefined && m.spec.service !== onlyService) continue
    if (m.spec.soft && soft) continue
    const groups = m.re.exec(text)
    if (!groups) continue
    const r = toMatch(m, groups)
    if (!r.soft) return r
    soft = r
  }
  return soft
}

/** The probe's own matchers and its fallbacks'. */
export function matchProbe(set: ProbeSet, probe: string, data: Uint8Array | string, onlyService?: string): ServiceMatch | null {
  const p = set.byName.get(probe)
  return p ? matchResponse(p.allMatchers, data, onlyService) : null
}

/** Every matcher of every probe (for passive learning, where the request is not ours). */
export function matchAnyProbe(set: ProbeSet, data: Uint8Array | string, preferProbes: readonly string[] = ['NULL']): ServiceMatch | null {
  const text = typeof data === 'string' ? data : responseText(data)
  let soft: ServiceMatch | null = null
  const order = [...preferProbes.map((n) => set.byName.get(n)).filter((p): p is CompiledProbe => p !== undefined), ...set.probes.filter((p) => !preferProbes.includes(p.name))]
  for (const p of order) {
    const m = matchResponse(p.matchers, text)
    if (m && !m.soft) return m
    if (m && !soft) soft = m
  }
  return soft
}

/**
 * Probes to try on a port, in order: NULL first, then those hinted for the port (by rarity),
 * then the rest up to `intensity` (by rarity). Over TLS, `tls: never` probes are skipped; in
 * clear, `tls: only` ones.
 */
export function probeOrder(set: ProbeSet, port: number, opts: {intensity?: number; tls?: boolean} = {}): CompiledProbe[] {
  const intensity = opts.intensity ?? 7
  const usable = set.probes.filter((p) => opts.tls ? p.spec.tls !== 'never' : p.spec.tls !== 'only')
  const hinted = (p: CompiledProbe) => p.ports.has(port) || (opts.tls === true && p.tlsPorts.has(port))
  const nul = usable.filter((p) => p.bytes.length === 0)
  const rest = usable.filter((p) => p.bytes.length > 0)
  const byRarity = (a: CompiledProbe, b: CompiledProbe) => a.rarity - b.rarity || a.name.localeCompare(b.name)
  return [
    ...nul,
    ...rest.filter(hinted).sort(byRarity),
    ...rest.filter((p) => !hinted(p) && p.rarity <= intensity).sort(byRarity),
  ]
}
