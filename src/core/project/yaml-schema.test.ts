import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import fc from 'fast-check'
import {describe, expect, it} from 'vitest'
import {
  didYouMean, dottedPath, formatDiagnostic, isIpOrCidr, loadYamlWithSchema, MAX_DIAGNOSTICS,
  parseYamlWithSchema, pointerSegments,
} from './yaml-schema.js'

const RUNS = Number(process.env.PATCHPOINT_FUZZ_RUNS ?? 200)

const schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    name: {type: 'string'},
    size: {type: 'integer', minimum: 1, default: 10},
    mode: {enum: ['fast', 'slow']},
    items: {
      type: 'array',
      items: {type: 'object', additionalProperties: false, required: ['id'], properties: {id: {type: 'integer'}, net: {type: 'string', format: 'ip-or-cidr'}}},
    },
  },
}

describe('parseYamlWithSchema', () => {
  it('applies defaults and returns the value', () => {
    const r = parseYamlWithSchema<{name: string; size: number}>('name: a\n', 'f.yaml', schema)
    expect(r.ok).toBe(true)
    expect(r.value).toEqual({name: 'a', size: 10})
    expect(r.diagnostics).toEqual([])
  })

  it('points a wrong type at the value (line and column, 1-based)', () => {
    const r = parseYamlWithSchema('name: a\nsize:   "big"\n', 'f.yaml', schema)
    expect(r.ok).toBe(false)
    expect(r.value).toBeUndefined()
    expect(r.diagnostics).toHaveLength(1)
    expect(formatDiagnostic(r.diagnostics[0])).toBe('f.yaml:2:9: size: must be an integer')
  })

  it('points an unknown key at the key, with a did-you-mean hint', () => {
    const r = parseYamlWithSchema('name: a\n\nnmae: b\n', 'f.yaml', schema)
    const d = r.diagnostics[0]
    expect([d.line, d.col, d.code]).toEqual([3, 1, 'additionalProperties'])
    expect(d.message).toBe("unknown top-level key 'nmae'")
    expect(d.hint).toBe("did you mean 'name'?")
  })

  it('lists allowed keys when nothing is close', () => {
    const r = parseYamlWithSchema('zzzzzzzz: 1\n', 'f.yaml', schema)
    expect(r.diagnostics[0].hint).toBe('allowed keys: name, size, mode, items')
  })

  it('maps errors inside arrays, missing keys to the item, and formats', () => {
    const text = 'items:\n  - id: 1\n    net: 10.0.0.0/8\n  - net: 300.1.1.1\n'
    const r = parseYamlWithSchema(text, 'f.yaml', schema)
    const msgs = r.diagnostics.map(formatDiagnostic)
    expect(msgs).toContain("f.yaml:4:5: items[1]: missing required key 'id'")
    expect(msgs).toContain("f.yaml:4:10: items[1].net: '300.1.1.1' is not an IP address or CIDR block")
  })

  it('suggests the closest enum value', () => {
    const r = parseYamlWithSchema('mode: fats\n', 'f.yaml', schema)
    expect(r.diagnostics[0].message).toBe('mode: must be one of fast, slow')
    expect(r.diagnostics[0].hint).toBe("did you mean 'fast'?")
    expect(r.diagnostics[0].col).toBe(7)
  })

  it('reports syntax errors with their position and no schema errors', () => {
    const r = parseYamlWithSchema('name: a\nsize: [1\nmode: x\n', 'f.yaml', schema)
    expect(r.ok).toBe(false)
    expect(r.diagnostics.every((d) => d.code === 'syntax')).toBe(true)
    expect(r.diagnostics[0].line).toBeGreaterThanOrEqual(2)
    expect(formatDiagnostic(r.diagnostics[0])).toMatch(/^f\.yaml:\d+:\d+: \S/)
    expect(formatDiagnostic(r.diagnostics[0])).not.toContain('\n')
  })

  it('rejects duplicate keys', () => {
    const r = parseYamlWithSchema('name: a\nname: b\n', 'f.yaml', schema)
    expect(r.ok).toBe(false)
    expect(r.diagnostics[0].line).toBe(2)
  })

  it('stops alias expansion bombs', () => {
    let text = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n'
    for (let i = 1; i < 12; i++) text += `a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]\n`
    const r = parseYamlWithSchema(text, 'f.yaml', {type: 'object'})
    expect(r.ok).toBe(false)
    expect(r.diagnostics[0].code).toBe('syntax')
  })

  it('uses emptyValue for an empty document', () => {
    expect(parseYamlWithSchema('# nothing\n', 'f.yaml', schema, {emptyValue: {}}).value).toEqual({size: 10})
    expect(parseYamlWithSchema('', 'f.yaml', schema).ok).toBe(false)
  })

  it('refuses text above maxBytes', () => {
    const r = parseYamlWithSchema('name: abcdef\n', 'f.yaml', schema, {maxBytes: 5})
    expect(r.diagnostics[0].code).toBe('too_large')
    expect(formatDiagnostic(r.diagnostics[0])).toMatch(/^f\.yaml: file too large/)
  })

  it('caps the number of diagnostics', () => {
    const text = 'items:\n' + Array.from({length: 300}, () => '  - {}\n').join('')
    const r = parseYamlWithSchema(text, 'f.yaml', schema)
    expect(r.diagnostics.length).toBe(MAX_DIAGNOSTICS + 1)
    expect(r.diagnostics.at(-1)?.message).toBe('200 more problems not shown')
  })

  it('never throws on arbitrary text and keeps diagnostics bounded (fuzz)', () => {
    const yamlish = fc.array(fc.constantFrom('name', 'size', 'mode', 'items', ':', ' ', '\n', '-', '[', ']', '{', '}', '&a', '*a', '"', "'", '#', '1', '!!str', '? ', '|', '\t', 'id: 2', '10.0.0.0/8'), {maxLength: 60}).map((a) => a.join(''))
    fc.assert(fc.property(fc.oneof(yamlish, fc.string({maxLength: 200})), (text) => {
      const r = parseYamlWithSchema(text, 'f.yaml', schema)
      expect(r.diagnostics.length).toBeLessThanOrEqual(MAX_DIAGNOSTICS + 1)
      expect(r.ok).toBe(!r.diagnostics.some((d) => d.severity === 'error'))
      for (const d of r.diagnostics) {
        expect(d.line).toBeGreaterThanOrEqual(0)
        expect(formatDiagnostic(d)).not.toContain('\n')
      }
    }), {numRuns: RUNS})
  })
})

describe('loadYamlWithSchema', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pp-yaml-'))
  it('reads a file and names it in diagnostics', async () => {
    const f = path.join(dir, 'a.yaml')
    writeFileSync(f, 'size: 0\n')
    const r = await loadYamlWithSchema(f, schema, {displayName: 'a.yaml'})
    expect(formatDiagnostic(r.diagnostics[0])).toBe('a.yaml:1:7: size: must be >= 1')
  })
  it('reports a missing file or a folder as a diagnostic without position', async () => {
    const r = await loadYamlWithSchema(path.join(dir, 'nope.yaml'), schema, {displayName: 'nope.yaml'})
    expect(r.ok).toBe(false)
    expect(formatDiagnostic(r.diagnostics[0])).toBe('nope.yaml: cannot read: ENOENT')
    expect((await loadYamlWithSchema(dir, schema)).diagnostics[0].message).toBe('not a regular file')
  })
  it('refuses oversized files before reading them', async () => {
    const f = path.join(dir, 'big.yaml')
    writeFileSync(f, 'name: ' + 'x'.repeat(100) + '\n')
    const r = await loadYamlWithSchema(f, schema, {maxBytes: 50})
    expect(r.diagnostics[0].code).toBe('too_large')
  })
})

describe('helpers', () => {
  it('isIpOrCidr', () => {
    for (const ok of ['10.0.0.1', '10.0.0.0/8', '0.0.0.0/0', '::1', '2001:db8::/32', '::/128']) expect(isIpOrCidr(ok), ok).toBe(true)
    for (const bad of ['10.0.0.0/33', '::/129', '10.0.0/8', 'host', '10.0.0.1/', '10.0.0.1/-1', '10.0.0.1/8/8', '']) expect(isIpOrCidr(bad), bad).toBe(false)
  })
  it('didYouMean', () => {
    expect(didYouMean('gatway', ['gateway', 'events'])).toBe('gateway')
    expect(didYouMean('EVENTS', ['gateway', 'events'])).toBe('events')
    expect(didYouMean('xyz', ['gateway', 'events'])).toBeUndefined()
  })
  it('pointers and dotted paths', () => {
    expect(pointerSegments('/a~1b/0/c~0d')).toEqual(['a/b', '0', 'c~d'])
    expect(dottedPath('/hosts/2/match')).toBe('hosts[2].match')
    expect(dottedPath('')).toBe('')
  })
})
