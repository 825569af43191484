// Speed in Node of the wasm build against anan-as (and the native addon) on the guest that the
// browser page times (examples/browser/main.mjs): bench/programs/sieve.jam rewritten for GP 0.7
// (anan-as implements GP 0.7.2), N = 400000, instantiate + run, median of 5 runs after a warm-up,
// all in this one process. Prints the times and the ratios. Run by tests/wasm/run.sh, after the
// wasm files were put next to index.js.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

import * as anan from '@fluffylabs/anan-as/release-mini'

import { standardToGp07 } from '../../__test__/asm.mjs'

const require = createRequire(import.meta.url)
const engines = { 'libpvm wasm': require('../../libpvm.wasi.cjs') }
// The native addon too, where it is built (npm run build); index.js would fall back to wasm.
const native = require('../../index.js')
if (native.__napiBindingTarget === 'native') engines['libpvm native'] = native
const GAS = 10n ** 12n
const args = new Uint8Array(new Uint32Array([400_000]).buffer)
const gp07 = standardToGp07(readFileSync(new URL('../../bench/programs/sieve.jam', import.meta.url)))
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
function timeIt(f) {
  let result = f()
  const times = []
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now()
    result = f()
    times.push(performance.now() - t0)
  }
  return { ms: median(times), result }
}
const rows = {}
for (const [name, lib] of Object.entries(engines)) {
  const program = lib.Program.fromStandard(gp07, { spec: '0.7.2' })
  rows[name] = timeIt(() => {
    const vm = program.instantiate({ gas: GAS, args })
    const exit = vm.run()
    const out = { gas: GAS - exit.gas, output: Buffer.from(vm.output()).toString('hex') }
    vm.free()
    return out
  })
}
rows['anan-as release-mini'] = timeIt(() => {
  const p = anan.prepareProgram(anan.InputKind.SPI, anan.HasMetadata.No, Array.from(gp07), [], [], [], Array.from(args), 1024)
  const id = anan.pvmStart(p, false)
  const pause = anan.pvmResume(id, GAS, 0, false)
  const output = Buffer.from(anan.pvmReadMemory(id, Number(pause.registers[7]), Number(pause.registers[8])) ?? []).toString('hex')
  const gas = GAS - BigInt(pause.gas)
  anan.pvmDestroy(id)
  anan.__collect?.()
  return { gas, output }
})
const ref = rows['libpvm wasm'].result
for (const [name, r] of Object.entries(rows)) {
  if (r.result.gas !== ref.gas || r.result.output !== ref.output) throw new Error(`${name} disagrees: ${r.result.output} gas ${r.result.gas}`)
  console.log(`${name.padEnd(22)} ${String(ref.gas).padStart(9)} instructions ${r.ms.toFixed(1).padStart(8)} ms ${(Number(ref.gas) / r.ms / 1e3).toFixed(1).padStart(7)} M instructions/s`)
}
const ratio = (a, b) => (rows[b].ms / rows[a].ms).toFixed(2)
console.log(`Node ${process.version}: libpvm wasm is ${ratio('libpvm wasm', 'anan-as release-mini')}x the speed of anan-as release-mini`)
if (rows['libpvm native']) console.log(`  libpvm native is ${ratio('libpvm native', 'libpvm wasm')}x the speed of libpvm wasm`)
