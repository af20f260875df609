/**
 * Where the package's rule pack and its JSON Schema live. The same relative path works from the
 * sources (src/core/rules/) and from the build (dist/core/rules/): three levels up is the
 * package root, which holds `rules/`.
 */
import {readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

/** The package's own rules directory (rules/<product>/<id>.yaml). */
export const packageRulesDir: string = fileURLToPath(new URL('../../../rules/', import.meta.url))

/** rules/schema/rule.schema.json, parsed. */
export const ruleSchema: object = JSON.parse(
  readFileSync(new URL('../../../rules/schema/rule.schema.json', import.meta.url), 'utf8'),
) as object
