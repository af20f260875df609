/**
 * The rule pack's own exploit samples (`samples.malicious` in each rule YAML), as the client
 * half of a conversation the demo replays against a real server through the gateway.
 *
 * Only the client's bytes are sent (`toserver*` steps, in order); the server answers for itself.
 * Bounded: at most `maxSamples` samples, `maxSampleBytes` client bytes each, `maxRuleFileBytes`
 * per rule file. A rule file that is missing, unreadable or malformed is reported in `problems`,
 * never thrown.
 */
import {readdirSync, readFileSync, statSync} from 'node:fs'
import path from 'node:path'
import {parse} from 'yaml'
import {sampleScript} from '../rules/sample-test.js'
import type {SampleDoc} from '../rules/types.js'

export const DEMO_SAMPLE_LIMITS = {
  /** samples sent in one demo */
  maxSamples: 64,
  /** client bytes in one sample */
  maxSampleBytes: 64 * 1024,
  /** size of one rule file read */
  maxRuleFileBytes: 1024 * 1024,
  /** rule files indexed under the rules folder */
  maxRuleFiles: 4096,
  /** folder depth searched under the rules folder */
  maxDepth: 4,
}
export type DemoSampleLimits = typeof DEMO_SAMPLE_LIMITS

/** One exploit sample to send. */
export interface ExploitSample {
  rule: string
  name: string
  /** the rule's protocol (http, ftp, smtp, ...) */
  protocol: string
  /** client-to-server chunks, in order (base64 keeps them JSON-safe for the client process) */
  chunks: string[]
  /** where it goes */
  ip: string
  port: number
}

export interface LoadedSamples {
  samples: ExploitSample[]
  problems: string[]
}

/** Every `<ID>.yaml` under `dir` (rule id -> file), bounded by the limits. */
export function indexRuleFiles(dir: string, limits: DemoSampleLimits = DEMO_SAMPLE_LIMITS): Map<string, string> {
  const out = new Map<string, string>()
  const walk = (d: string, depth: number): void => {
    if (depth > limits.maxDepth || out.size >= limits.maxRuleFiles) return
    let names: string[]
    try {
      names = readdirSync(d).sort()
    } catch {
      return
    }
    for (const n of names) {
      if (out.size >= limits.maxRuleFiles) return
      const p = path.join(d, n)
      if (n.endsWith('.yaml') || n.endsWith('.yml')) {
        out.set(n.replace(/\.ya?ml$/, ''), p)
        continue
      }
      try {
        if (n !== 'schema' && n !== 'probes' && statSync(p).isDirectory()) walk(p, depth + 1)
      } catch {
        // vanished
      }
    }
  }
  walk(dir, 0)
  return out
}

/** A protected service as the policy names it. */
export interface ProtectedTarget {
  ip: string
  port: number
  proto: string
  rules?: string[]
  shadow?: boolean
  /** the protocol the policy names for the service (smtp, ftp, ...) */
  protocol?: string
}

/**
 * The malicious samples of the rules assigned to each protected TCP service. A service without
 * a rule list gets nothing (the demo sends only what the policy explicitly protects). Rules that
 * judge the server's bytes (`direction: toclient`, e.g. reverse Heartbleed) are skipped: the
 * demo plays the client, and the lab's real servers never send those exploits. So are samples of
 * another protocol than the service's (the TLS rules on a mail server: their samples speak TLS
 * from the first byte, the server only after STARTTLS).
 */
export function loadExploitSamples(rulesDir: string, targets: readonly ProtectedTarget[], limits: DemoSampleLimits = DEMO_SAMPLE_LIMITS): LoadedSamples {
  const problems: string[] = []
  const samples: ExploitSample[] = []
  const files = indexRuleFiles(rulesDir, limits)
  for (const t of targets) {
    if (t.proto !== 'tcp' || t.shadow === true) continue
    for (const id of t.rules ?? []) {
      const file = files.get(id)
      if (file === undefined) {
        problems.push(`rule ${id}: no file ${id}.yaml under ${rulesDir}`)
        continue
      }
      let doc: {protocol?: unknown; direction?: unknown; samples?: {malicious?: unknown}}
      try {
        if (statSync(file).size > limits.maxRuleFileBytes) {
          problems.push(`${file}: larger than ${limits.maxRuleFileBytes} bytes, skipped`)
          continue
        }
        doc = parse(readFileSync(file, 'utf8')) as typeof doc
      } catch (err) {
        problems.push(`${file}: ${(err as Error).message.split('\n')[0]}`)
        continue
      }
      const mal = doc?.samples?.malicious
      if (!Array.isArray(mal) || doc.direction === 'toclient') continue
      if (t.protocol !== undefined && doc.protocol !== t.protocol) continue
      for (const s of mal as SampleDoc[]) {
        if (samples.length >= limits.maxSamples) {
          problems.push(`more than ${limits.maxSamples} exploit samples: the rest were not sent`)
          return {samples, problems}
        }
        const chunks = toServerChunks(s, limits.maxSampleBytes)
        if (chunks === undefined) {
          problems.push(`${id} "${s?.name ?? '?'}": more than ${limits.maxSampleBytes} client bytes, skipped`)
          continue
        }
        if (chunks.length === 0) continue
        samples.push({rule: id, name: String(s.name ?? ''), protocol: String(doc.protocol ?? ''), chunks, ip: t.ip, port: t.port})
      }
    }
  }
  return {samples, problems}
}

/** The client's chunks of a sample (base64), or undefined when over `maxBytes`. Never throws. */
export function toServerChunks(s: SampleDoc, maxBytes: number): string[] | undefined {
  let script
  try {
    script = sampleScript(s)
  } catch {
    return []
  }
  const out: string[] = []
  let total = 0
  for (const st of script) {
    if (st.dir !== 'toserver' || st.data.length === 0) continue
    total += st.data.length
    if (total > maxBytes) return undefined
    out.push(Buffer.from(st.data).toString('base64'))
  }
  return out
}
