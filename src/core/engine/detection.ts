/**
 * What judges the traffic: the protocol analyzers and the rules (the package's own pack plus the
 * project's `rules/` folder), loaded once per run.
 */
import type {AnalyzerFactory} from '../analyzers/types.js'
import type {ProjectLocation} from '../project/find.js'
import type {Engine, PduJudge} from './engine.js'
import {analyzerFactories} from '../analyzers/registry.js'
import {loadRules, RuleSet} from '../rules/engine.js'
import {formatLintError} from '../rules/lint.js'
import {ruleDirsFor} from '../rules/fields.js'
import {UserError} from '../errors.js'
import {RuleJudge, type RuleJudgeOptions} from './judge.js'
import type {CompiledRule} from '../rules/compile.js'
import type {ProtectionsConfig} from '../protections/config.js'
import {createProtections, withProtectionRules} from '../protections/index.js'
import type {EngineProtections} from './engine.js'

export interface Detection {
  analyzers: readonly AnalyzerFactory[]
  rules: readonly CompiledRule[]
  /** a judge bound to one engine (the engine is created after the judge, hence the thunk) */
  judgeFor(engine: () => Engine, opts?: RuleJudgeOptions): PduJudge
  /** fresh generic protections (rate tables and the like) for one engine */
  protectionsFor(): EngineProtections
}

export interface DetectionOptions {
  /** false: analyzers only */
  rules?: boolean
  /** the config's `protections:` section (defaults when absent) */
  protections?: ProtectionsConfig
}

export async function engineDetection(project?: ProjectLocation, opts: DetectionOptions = {}): Promise<Detection> {
  let rules: CompiledRule[] = []
  if (opts.rules !== false) {
    const loaded = loadRules(ruleDirsFor(project))
    if (loaded.errors.length > 0) {
      throw new UserError(formatLintError(loaded.errors[0]), {
        code: 'RULE_INVALID',
        details: loaded.errors.slice(1, 5).map(formatLintError),
        suggestion: 'run `patchpoint rules lint` for every problem',
      })
    }
    // the file-extension blacklist rule is rebuilt from the config's lists
    rules = withProtectionRules(loaded.rules, opts.protections)
  }
  const set = new RuleSet(rules)
  return {
    analyzers: analyzerFactories,
    rules,
    judgeFor: (engine, judgeOpts) => new RuleJudge(engine, set, judgeOpts),
    protectionsFor: () => createProtections(opts.protections),
  }
}
