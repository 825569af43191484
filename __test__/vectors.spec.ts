// Every conformance vector of both Gray Paper versions, run through the JavaScript API.
import { join } from 'node:path'

import { describe, expect, it } from 'vitest'

import { loadVector, parseJsonExact, runGp07, runGp08, supportedBackends, VECTORS, vectorFiles } from './vectors'
import { recompilerSupported } from '../index.js'

const gp08 = vectorFiles(join(VECTORS, 'gp-0.8', 'programs'))
const gp07 = vectorFiles(join(VECTORS, 'gp-0.7', 'programs'))
const name = (path: string) => path.slice(path.lastIndexOf('/') + 1, -'.json'.length)

describe('vector files', () => {
  it('are all present (363 for GP 0.8, 307 for GP 0.7)', () => {
    expect(gp08).toHaveLength(363)
    expect(gp07).toHaveLength(307)
  })

  it('parse u64 values exactly', () => {
    const v = parseJsonExact('{"a": [18446744073709551615, 9007199254740993, 12, -9223372036854775808]}')
    expect(v.a).toEqual([2n ** 64n - 1n, 9007199254740993n, 12, -(2n ** 63n)])
  })
})

describe('backends', () => {
  it('the suites run under the interpreter, and the recompiler exactly where it is supported', () => {
    expect(supportedBackends()[0]).toBe('interpreter')
    expect(supportedBackends().includes('recompiler')).toBe(recompilerSupported())
  })
})

for (const backend of supportedBackends()) {
  describe(`GP 0.8.0 vectors (tests/vectors/gp-0.8), ${backend}`, () => {
    it.each(gp08.map((p) => [name(p), p]))('%s', (_name, path) => {
      expect(runGp08(loadVector(path), '0.8.0', backend)).toEqual([])
    })
  })

  describe(`GP 0.7.2 vectors (tests/vectors/gp-0.7), ${backend}`, () => {
    it.each(gp07.map((p) => [name(p), p]))('%s', (_name, path) => {
      expect(runGp07(loadVector(path), '0.7.2', backend)).toEqual([])
    })
  })
}
