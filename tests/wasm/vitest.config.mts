// The vitest suite against the wasm32-wasip1-threads build (npm/wasm32-wasi): the same tests as
// `npm test`, with the package's loader forced onto the wasm binding in the test workers only
// (NAPI_RS_FORCE_WASI=error: wasm or fail, no native fallback; vitest's own napi-rs tools keep
// their native bindings). Run by tests/wasm/run.sh, which puts the wasm files next to index.js.
//
// Left out: the 10 tests of what the wasm build cannot do like the native addon (README, "The
// wasm build"):
// - views are over the shared wasm memory: `view.buffer` is the whole memory and `byteOffset` the
//   wasm address ("gives zero-copy views" checks the per-page ArrayBuffer), and they cannot be
//   detached on unmap or free ("detaches views");
// - a Rust panic is a wasm trap (`RuntimeError: unreachable`), not a PvmError INTERNAL, and the
//   wasm instance is not usable after it ("Rust panics" x2);
// - emnapi reads a detached ArrayBuffer argument with a TypeError before libpvm can say
//   INVALID_ARGUMENT ("a detached ArrayBuffer");
// - wasm memory is never returned and V8 is not told of it, so unfreed VMs are not reclaimed in
//   time: call vm.free() ("unfreed VMs are reclaimed");
// - `vm.invoke` remaps the argument area, and the old view cannot be detached ("sets the GP A.7
//   registers and argument area", which checks the detachment);
// - every worker loads a wasm instance of its own, so an interrupt token from one worker names
//   nothing in another (`interruptVm` across workers: 3 tests); `vm.interrupt()` in the same
//   worker works.
import { defineConfig, mergeConfig } from 'vitest/config'

import base from '../../vitest.config.mts'

const leftOut = [
  'gives zero-copy views',
  'detaches views when pages are unmapped',
  'Rust panics become PvmError INTERNAL',
  'Rust panics do not abort the process',
  'a detached ArrayBuffer',
  'unfreed VMs are reclaimed',
  'sets the GP A.7 registers and argument area',
  'interruptVm(token) from the main thread stops an endless loop in a worker',
  'interrupts from another worker while the main thread runs',
]
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

export default mergeConfig(
  base,
  defineConfig({
    root: new URL('../..', import.meta.url).pathname,
    test: {
      // NODE_NO_WARNINGS: Node 20 warns on stderr that WASI is experimental, and some tests check
      // the stderr of child processes.
      env: { NAPI_RS_FORCE_WASI: 'error', NODE_NO_WARNINGS: '1' },
      testNamePattern: new RegExp(`^(?!.*(${leftOut.map(escape).join('|')}))`),
      // wasm is slower than the native addon.
      testTimeout: 120_000,
    },
  }),
)
