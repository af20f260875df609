/**
 * What judges the traffic: the protocol analyzers and the rules (the package's own pack plus the
 * project's `rules/` folder), loaded once per run.
 */
import fs from 'node:fs'
import path from 'node:path'
import type {AnalyzerFactory} from '../analyzers/types.js'
import type {ProjectLocation} from '../project/find.js'
import type {Engine, PduJudge} from './engine.js'
import {analyzerFactories} from '../analyzers/registry.js'
import {loadRules, RuleSet} from '../rules/engine.js'
import {packageRulesDir} from '../rules/rule-schema.js'
import {formatLintError} from '../rules/lint.js'
import {UserError} from '../errors.js'
import {RuleJudge, type RuleJudgeOptions} from './judge.js'
import type {CompiledRule} from '../rules/compile.js'

export interface Detection {
  analyzers: readonly AnalyzerFactory[]
  rules: readonly CompiledRule[]
  /** a judge bound to one engine (the engine is created after the judge, hence the thunk) */
  judgeFor(engine: () => Engine, opts?: RuleJudgeOptions): PduJudge
}

export function ruleDirs(project?: ProjectLocation): string[] {
  const dirs = [packageRulesDir]
  if (project) {
    const own = path.join(project.dir, 'rules')
    if (fs.existsSync(own)) dirs.push(own)
  }
  return dirs
}

export async function engineDetection(project?: ProjectLocation, opts: {rules?: boolean} = {}): Promise<Detection> {
  let rules: CompiledRule[] = []
  if (opts.rules !== false) {
    const loaded = loadRules(ruleDirs(project))
    if (loaded.errors.length > 0) {
      throw new UserError(formatLintError(loaded.errors[0]), {
        code: 'RULE_INVALID',
        details: loaded.errors.slice(1, 5).map(formatLintError),
        suggestion: 'run `patchpoint rules lint` for every problem',
      })
    }
    rules = loaded.rules
  }
  const set = new RuleSet(rules)
  return {
    analyzers: analyzerFactories,
    rules,
    judgeFor: (engine, judgeOpts) => new RuleJudge(engine, set, judgeOpts),
  }
}
