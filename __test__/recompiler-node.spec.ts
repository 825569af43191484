// The recompiler inside Node: V8 handles WebAssembly out-of-bounds accesses with its own signal
// handler on x86-64; libpvm's compiled code uses no signals at all (explicit bounds checks, see
// docs/ARCHITECTURE.md), so both work in one process, interleaved, and neither disturbs the other.
import { join } from 'node:path'

import { describe, expect, it } from 'vitest'

import { loadVector, runGp08, VECTORS, vectorFiles } from './vectors'

// (module (memory 1) (func (export "load") (param i32) (result i32) local.get 0 i32.load))
const WASM = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f, 0x03, 0x02, 0x01,
  0x00, 0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x08, 0x01, 0x04, 0x6c, 0x6f, 0x61, 0x64, 0x00, 0x00, 0x0a, 0x09, 0x01,
  0x07, 0x00, 0x20, 0x00, 0x28, 0x02, 0x00, 0x0b,
])

// The tsconfig has no DOM lib, so WebAssembly is reached untyped.
const wasm = (globalThis as any).WebAssembly

describe('recompiled guests and WebAssembly in one Node process', () => {
  it('interleave page faults of both without interference', async () => {
    const { instance } = await wasm.instantiate(WASM)
    const load = instance.exports.load as (a: number) => number
    const vectors = vectorFiles(join(VECTORS, 'gp-0.8', 'programs')).map(loadVector)
    for (let round = 0; round < 3; round++) {
      for (const v of vectors) {
        // A wasm trap (V8's guard-page fault handler) before and after every guest run.
        expect(() => load(70000)).toThrow(wasm.RuntimeError)
        expect(runGp08(v, '0.8.0')).toEqual([])
        expect(load(8)).toBe(0)
      }
    }
  })
})
