import {describe, it, expect} from 'vitest'
import {BENCH_PARTS, benchParts} from './gateway.js'

describe('gateway bench parts (PATCHPOINT_BENCH_PARTS)', () => {
  it('all parts when unset or empty, only the named ones otherwise, unknown names ignored', () => {
    expect([...benchParts(undefined)]).toEqual([...BENCH_PARTS])
    expect([...benchParts('')]).toEqual([...BENCH_PARTS])
    expect([...benchParts('smtp, open')]).toEqual(['open', 'smtp'])
    expect([...benchParts('flood,nonsense')]).toEqual(['flood'])
    // only unknown names: everything, rather than a bench that measures nothing
    expect([...benchParts('nonsense')]).toEqual([...BENCH_PARTS])
  })
})
