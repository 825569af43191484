// Bundles the page into examples/browser/dist/ (esbuild): main.js with libpvm's browser loader
// (libpvm.wasi-browser.js, made at the repository root by
// `napi build --platform --release -p libpvm-node --target wasm32-wasip1-threads`, or taken from an
// installed libpvm-wasm32-wasi package with LIBPVM_WASM_DIR), its thread worker, the wasm files
// and the guests. `node examples/browser/serve.mjs` then serves the page.
import { copyFileSync, existsSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { build } from 'esbuild'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '../..')
const wasmDir = process.env.LIBPVM_WASM_DIR ?? root
const loader = join(wasmDir, 'libpvm.wasi-browser.js')
if (!existsSync(loader)) {
  throw new Error(`${loader} is missing: build the wasm target first (see the README, "The wasm build")`)
}
const dist = join(here, 'dist')
mkdirSync(join(dist, 'guests'), { recursive: true })
// node:* imports are anan-as's Node-only branch (a dynamic import it does not take in a browser).
const common = { bundle: true, format: 'esm', target: 'es2022', logLevel: 'warning', absWorkingDir: root, external: ['node:*'], nodePaths: [join(root, 'node_modules')] }
await build({ ...common, entryPoints: [join(here, 'main.mjs')], outfile: join(dist, 'main.js'), alias: { libpvm: loader } })
await build({ ...common, entryPoints: [join(wasmDir, 'wasi-worker-browser.mjs')], outfile: join(dist, 'wasi-worker-browser.mjs') })
copyFileSync(join(wasmDir, 'libpvm.wasm32-wasi.wasm'), join(dist, 'libpvm.wasm32-wasi.wasm'))
const anan = dirname(fileURLToPath(import.meta.resolve('@fluffylabs/anan-as/release-mini')))
copyFileSync(join(anan, 'release-mini.wasm'), join(dist, 'release-mini.wasm'))
copyFileSync(join(root, 'examples/guests/hostcalls.jam'), join(dist, 'guests/hostcalls.jam'))
copyFileSync(join(root, 'bench/programs/sieve.jam'), join(dist, 'guests/sieve.jam'))
console.log(`bundled into ${dist}`)
