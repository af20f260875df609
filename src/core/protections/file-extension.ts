/**
 * The file-extension blacklist as a rule: rules/generic/PP-FILE-EXTENSION.yaml holds the rule
 * with the default lists; `protectionRules(config)` rebuilds it with the lists of patchpoint.yaml
 * `protections.file_extensions` (the detection layer replaces the file's rule by id, see
 * `withProtectionRules`).
 */
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {parse} from 'yaml'
import {compileRule, type CompiledRule} from '../rules/compile.js'
import {packageRulesDir} from '../rules/rule-schema.js'
import type {MatcherDoc, RuleDoc} from '../rules/types.js'
import {protectionsConfig, type DeepPartial, type ProtectionsConfig} from './config.js'

export const FILE_EXTENSION_RULE_ID = 'PP-FILE-EXTENSION'
/** Extensions accepted per list (schema-checked too). */
export const MAX_EXTENSIONS = 1000

const EXT = /^[a-z0-9_~-]{1,32}$/

function cleanList(list: readonly string[]): string[] {
  const out = new Set<string>()
  for (const raw of list) {
    const e = raw.trim().toLowerCase().replace(/^\.+/, '')
    if (EXT.test(e)) out.add(e)
    if (out.size >= MAX_EXTENSIONS) break
  }
  return [...out]
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&')
}

/** the upload-filename regex for a list: a listed extension ends the name, maybe disguised */
export function uploadRegex(exts: readonly string[]): string {
  return `\\.(${exts.map(escapeRe).join('|')})(?:[\\s.]*$|;|\\x00)`
}

/** the PUT-target regex for a list: a listed extension ends the normalized path, trailing slashes ignored */
export function putPathRegex(exts: readonly string[]): string {
  return `\\.(${exts.map(escapeRe).join('|')})/*$`
}

let baseDoc: RuleDoc | undefined

function loadBase(): RuleDoc {
  if (baseDoc) return baseDoc
  baseDoc = parse(readFileSync(path.join(packageRulesDir, 'generic', `${FILE_EXTENSION_RULE_ID}.yaml`), 'utf8')) as RuleDoc
  return baseDoc
}

/** The rule document with `cfg`'s lists in place of the defaults (selections dropped when a list is empty). */
export function fileExtensionRuleDoc(cfg: ProtectionsConfig['file_extensions']): RuleDoc {
  const base = loadBase()
  const requests = cleanList(cfg.requests)
  const uploads = cleanList(cfg.uploads)
  const detect: Record<string, RuleDoc['detect'][string]> = {}
  const names: string[] = []
  if (requests.length > 0) {
    detect.request_path = {...(base.detect.request_path as MatcherDoc), equals: requests}
    names.push('request_path')
  }
  if (uploads.length > 0) {
    detect.upload_name = {...(base.detect.upload_name as MatcherDoc), regex: uploadRegex(uploads)}
    const disguised = base.detect.disguised_script as {all: MatcherDoc[]}
    detect.disguised_script = {all: [{...disguised.all[0], equals: uploads}, disguised.all[1]]}
    const put = base.detect.put_script as {all: MatcherDoc[]}
    detect.put_script = {all: [put.all[0], {...put.all[1], regex: putPathRegex(uploads)}]}
    names.push('upload_name', 'disguised_script', 'put_script')
  }
  return {...base, detect, condition: names.join(' or ')}
}

/**
 * The rules generated from the `protections:` config: today the file-extension blacklist (none
 * when it is disabled or both lists are empty). Never throws on a bad list: invalid entries are
 * skipped.
 */
export function protectionRules(config: DeepPartial<ProtectionsConfig> | ProtectionsConfig = {}): CompiledRule[] {
  const cfg = protectionsConfig(config as DeepPartial<ProtectionsConfig>)
  if (!cfg.file_extensions.enabled) return []
  const doc = fileExtensionRuleDoc(cfg.file_extensions)
  if (Object.keys(doc.detect).length === 0) return []
  const {rule} = compileRule(doc, path.join(packageRulesDir, 'generic', `${FILE_EXTENSION_RULE_ID}.yaml`))
  return rule ? [rule] : []
}

/**
 * `rules` (as loaded from the rule folders) with the config-generated protection rules in place
 * of the file's versions: same id replaced, disabled protections removed.
 */
export function withProtectionRules(rules: readonly CompiledRule[], config: DeepPartial<ProtectionsConfig> | ProtectionsConfig = {}): CompiledRule[] {
  const generated = protectionRules(config)
  const ids = new Set([FILE_EXTENSION_RULE_ID])
  return [...rules.filter((r) => !ids.has(r.id)), ...generated]
}
