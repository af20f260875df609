/** Run HTTP requests through the real HTTP analyzer and a rule set. */
import {analyzerFactories} from '../../src/core/analyzers/registry.js'
import {bytes, runAnalyzer} from '../../src/core/analyzers/harness.js'
import type {Pdu} from '../../src/core/analyzers/types.js'
import {RuleSet} from '../../src/core/rules/engine.js'
import type {CompiledRule} from '../../src/core/rules/compile.js'

export const httpFactory = analyzerFactories.find((f) => f.protocol === 'http')!

export function requestPdus(raw: string): Pdu[] {
  return runAnalyzer(httpFactory, [{dir: 'toserver', data: bytes(raw)}]).pdus.filter((p) => p.kind === 'request')
}

/** ids of the rules matching any request PDU of `raw` */
export function matchIds(rules: readonly CompiledRule[], raw: string): string[] {
  const set = new RuleSet(rules)
  const out = new Set<string>()
  for (const p of requestPdus(raw)) for (const m of set.evaluate(p)) out.add(m.rule.id)
  return [...out]
}

export function upload(filename: string, body = 'x'): string {
  const part = `--b\r\nContent-Disposition: form-data; name="f"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n${body}\r\n--b--\r\n`
  return `POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: ${Buffer.byteLength(part, 'latin1')}\r\n\r\n${part}`
}

export const get = (target: string, headers = ''): string => `GET ${target} HTTP/1.1\r\nHost: x\r\n${headers}\r\n`
