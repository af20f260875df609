/**
 * The reference docs cannot drift: docs/ must be exactly what src/docs/generate.ts produces now.
 * The commands part loads the BUILT commands (dist/commands, through oclif's Config), so run
 * `npm run build` first (`npm test` does, through pretest). On a failure: `npm run docs`.
 */
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {analyzerFactories} from '../../src/core/analyzers/registry.js'
import {EXIT} from '../../src/core/errors.js'
import {anomalyFields} from '../../src/core/rules/fields.js'
import {transforms} from '../../src/core/rules/transforms.js'
import {
  EXIT_DESCRIPTIONS,
  TRANSFORM_DESCRIPTIONS,
  cell,
  commandFilesIn,
  generateDocs,
  loadCommands,
  loadRuleLanguageInput,
  renderCommands,
  renderRuleLanguage,
  type CommandDoc,
  type CommandsInput,
  type SchemaNode,
} from '../../src/docs/generate.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const DOCS = path.join(ROOT, 'docs')
const BUILT = existsSync(path.join(ROOT, 'dist/commands'))

/** Markdown table rows whose first cell is `name` (in backticks). */
function rowsFor(md: string, name: string): string[] {
  return md.split('\n').filter((l) => l.startsWith('| `' + name + '` |'))
}

describe('rule-language.md', () => {
  const input = loadRuleLanguageInput()
  const md = renderRuleLanguage(input)

  it('documents every top-level key with its required-ness and description', () => {
    const schema = input.schema
    for (const [key, node] of Object.entries(schema.properties!)) {
      const rows = rowsFor(md, key)
      expect(rows.length, key).toBeGreaterThan(0)
      const req = schema.required!.includes(key)
      expect(rows.some((r) => r.split(' | ')[2] === (req ? 'yes' : '')), `${key} required=${req}`).toBe(true)
      if (node.description) expect(md).toContain(node.description.slice(0, 30))
    }
  })

  it('documents every key of every definition and the enum values', () => {
    for (const [name, def] of Object.entries(input.schema.definitions!)) {
      expect(md, name).toContain(`<a id="def-${name}"></a>`)
      for (const key of Object.keys(def.properties ?? {})) expect(rowsFor(md, key).length, `${name}.${key}`).toBeGreaterThan(0)
    }
    for (const s of ['experimental', 'deprecated', 'critical', 'toclient', 'drop']) expect(md).toContain('`' + s + '`')
    // nested inline objects get their own section
    expect(md).toContain('### `fix[].defuse`')
    expect(md).toContain('### `affects[]`')
  })

  it('lists every registered transform, each with a description, matching the schema enum', () => {
    const names = [...transforms.keys()]
    for (const n of names) {
      expect(TRANSFORM_DESCRIPTIONS[n], `description for transform ${n}`).toBeDefined()
      expect(rowsFor(md, n).length, n).toBeGreaterThan(0)
    }
    const enumNames = (input.schema.definitions!.matcher.properties!.transform.items!.enum as string[])
    expect([...enumNames].sort()).toEqual([...names].sort())
    expect(md).not.toContain('(undocumented)')
  })

  it('documents every field of every analyzer and of the anomaly pseudo-protocol', () => {
    for (const f of analyzerFactories) {
      expect(md).toContain(`<a id="protocol-${f.protocol}"></a>`)
      for (const port of f.ports) expect(md).toMatch(new RegExp(`transport ${f.transport}, default ports: [^\\n]*\\b${port}\\b`))
      for (const spec of f.fields) {
        const rows = rowsFor(md, spec.name)
        expect(rows.length, spec.name).toBeGreaterThan(0)
        expect(rows.some((r) => r.includes(`| ${spec.type} | ${spec.multi ? 'yes' : ''} |`)), spec.name).toBe(true)
      }
    }
    for (const spec of anomalyFields) expect(rowsFor(md, spec.name).length).toBe(1)
  })

  it('shows the example rule in full and how to lint and test it', () => {
    expect(md).toContain('id: PP-2011-3192')
    expect(md).toContain('patchpoint rules lint rules/apache/PP-2011-3192.yaml')
    expect(md).toContain('patchpoint rules test PP-2011-3192')
  })

  it('escapes table-breaking text and renders a superset definition as "plus"', () => {
    expect(cell('a <b> *c* `x<y*` ')).toBe('a &lt;b> \\*c\\* `x<y*` ')
    const schema: SchemaNode = {
      type: 'object', required: ['a'],
      properties: {a: {type: 'string', description: 'one | two'}, b: {$ref: '#/definitions/big'}},
      definitions: {
        small: {type: 'object', properties: {x: {type: 'string'}}},
        big: {type: 'object', properties: {x: {type: 'string'}, y: {enum: ['p', 'q']}}},
      },
    }
    const out = renderRuleLanguage({...input, schema, analyzers: [], transformNames: []})
    expect(out).toContain('| `a` | string | yes | one \\| two |')
    expect(out).toContain('Every key of [`small`](#def-small), plus:')
    expect(out.indexOf('Definition `small`')).toBeLessThan(out.indexOf('Definition `big`'))
    expect(out).toContain('| `y` | one of `p`, `q` |  |  |')
  })

  it('is deterministic', () => {
    expect(renderRuleLanguage(loadRuleLanguageInput())).toBe(md)
  })
})

describe('commands.md rendering', () => {
  const base: CommandDoc = {
    id: 'rules:lint', summary: 'Check rules.', description: 'Long text.\n\nSecond paragraph.',
    examples: ['<%= config.bin %> <%= command.id %>', {description: 'A folder.', command: '<%= config.bin %> <%= command.id %> ./x'}],
    strict: false,
    args: {path: {name: 'path', description: 'files'}},
    flags: {
      json: {name: 'json', type: 'boolean', summary: 'Format output as json.'},
      mode: {name: 'mode', type: 'option', options: ['a', 'b'], default: 'a', summary: 'Mode.'},
    },
  }
  const input: CommandsInput = {
    bin: 'pp', topicSeparator: ' ', topics: {rules: 'Rule things'},
    commands: [base, {id: 'init', summary: 'Init.', args: {}, flags: {json: base.flags.json}}, {id: 'secret', hidden: true, args: {}, flags: {}}],
    exitCodes: [{code: 0, name: 'OK', meaning: 'fine'}],
  }
  const md = renderCommands(input)

  it('renders usage, args, flags with options and defaults, examples with templates filled', () => {
    expect(md).toContain('pp rules lint [PATH...] [FLAGS]')
    expect(md).toContain('| `--mode a\\|b` | `a` | Mode. (options: `a`, `b`) |')
    expect(md).toContain('$ pp rules lint ./x')
    expect(md).toContain('# A folder.')
    expect(md).toContain('Second paragraph.')
    expect(md).not.toContain('<%')
    expect(md).not.toContain('secret')
    // --json is on every command: documented once as a global flag, not per command
    expect(md).toContain('## Global flags')
    expect(md.split('\n').filter((l) => l.startsWith('| `--json`')).length).toBe(1)
    expect(md.indexOf('## `pp init`')).toBeLessThan(md.indexOf('## `pp rules lint`'))
    expect(md).toContain('- `pp rules`: Rule things')
    expect(md).toContain('| 0 | `OK` | fine |')
  })
})

describe('loadCommands', () => {
  let root = ''
  beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), 'patchpoint-docs-cmds-'))
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'))
    writeFileSync(path.join(root, 'package.json'), JSON.stringify({
      name: 'pp-docs-fixture', version: '1.0.0', type: 'module',
      oclif: {bin: 'pp', commands: './dist/commands', topicSeparator: ' ', topics: {grp: {description: 'A group'}}},
    }))
    mkdirSync(path.join(root, 'dist/commands/grp'), {recursive: true})
    const ok = (name: string): string => `import {Command, Flags} from '@oclif/core'
export class ${name} extends Command {
  static summary = '${name} summary'
  static flags = {level: Flags.integer({summary: 'Level.', default: 3})}
  async run() {}
}
`
    writeFileSync(path.join(root, 'dist/commands/alpha.js'), ok('Alpha'))
    writeFileSync(path.join(root, 'dist/commands/grp/beta.js'), ok('Beta'))
  })
  afterAll(() => {
    if (root) rmSync(root, {recursive: true, force: true})
  })

  it('finds whatever commands exist, with flag defaults and declared topics', async () => {
    expect(commandFilesIn(root, './dist/commands')).toEqual(['alpha', 'grp:beta'])
    const cmds = await loadCommands(root)
    expect(cmds.commands.map((c) => c.id).sort()).toEqual(['alpha', 'grp:beta'])
    expect(cmds.topics).toEqual({grp: 'A group'})
    const md = renderCommands(cmds)
    expect(md).toContain('## `pp grp beta`')
    expect(md).toContain('| `--level VALUE` | `3` | Level. |')
  })

  it('refuses to document when a command module fails to load (oclif would only warn)', async () => {
    writeFileSync(path.join(root, 'dist/commands/broken.js'), "import {nope} from './missing.js'\nexport const x = nope\n")
    await expect(loadCommands(root)).rejects.toThrow(/broken/)
  })
})

describe.skipIf(!BUILT)('generated docs/ are up to date (run `npm run build && npm run docs` on failure)', () => {
  let tmp = ''
  beforeAll(() => {
    tmp = mkdtempSync(path.join(tmpdir(), 'patchpoint-docs-'))
  })
  afterAll(() => {
    if (tmp) rmSync(tmp, {recursive: true, force: true})
  })

  it('finds every built command and documents each exit code', async () => {
    const cmds = await loadCommands()
    const ids = cmds.commands.map((c) => c.id)
    for (const id of ['init', 'rules:lint', 'rules:test', 'rules:list', 'rules:show', 'replay']) expect(ids).toContain(id)
    for (const name of Object.keys(EXIT)) expect(EXIT_DESCRIPTIONS[name], `exit code ${name}`).toBeDefined()
    const md = renderCommands(cmds)
    for (const c of cmds.commands.filter((x) => !x.hidden)) expect(md).toContain('## `patchpoint ' + c.id.split(':').join(' ') + '`')
  })

  it('docs/ equals a fresh generation', async () => {
    const files = await generateDocs(tmp)
    expect(files.map((f) => path.basename(f)).sort()).toEqual(['commands.md', 'rule-language.md'])
    for (const f of files) {
      const fresh = readFileSync(f, 'utf8')
      // no machine-specific text
      expect(fresh).not.toContain(ROOT)
      expect(fresh).not.toContain(tmpdir())
      const committed = path.join(DOCS, path.basename(f))
      expect(existsSync(committed), `${committed} missing: run npm run docs`).toBe(true)
      expect(readFileSync(committed, 'utf8'), `docs/${path.basename(f)} is stale: run npm run build && npm run docs`).toBe(fresh)
    }
  })
})
