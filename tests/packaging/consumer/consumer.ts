// A user's program, compiled with `tsc --strict` against the installed `libpvm` package (its
// index.d.ts) and run with node by tests/packaging/run.sh: it loads the addon through the package's
// loader, runs a standard program whose host calls are answered here in JS, and checks the result.
// Prints one line `ok <platform-arch> <binding> <output>` and exits 0, or throws.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

import * as libpvm from 'libpvm'
import { Program, Status, type Exit, type HostCallHandler, type Pvm } from 'libpvm'

const guest = process.argv[2]
if (!guest) throw new Error('usage: node consumer.js GUEST.jam')

const program: Program = Program.fromStandard(readFileSync(guest))
const vm: Pvm = program.instantiate({ gas: 1_000_000n, args: new Uint8Array([4, 0, 0, 0]) })
const logs: string[] = []
let next = 0n
const host: HostCallHandler = (id, vm) => {
  const r = vm.registers
  if (id === 1001) r[7] = next += 25n // get_number
  else if (id === 100) logs.push(vm.readMemory(Number(r[7]), Number(r[8])).toString()) // log
  else return 'panic'
}
const exit: Exit = vm.run(host)
const output = vm.output()?.toString() ?? ''
const expected = 'numbers: 25, 50, 75, 100; sum = 250'
if (exit.status !== Status.Halt) throw new Error(`exit ${JSON.stringify(exit, (_, v) => (typeof v === 'bigint' ? String(v) : v))}`)
if (output !== expected) throw new Error(`output ${JSON.stringify(output)}, expected ${JSON.stringify(expected)}`)
if (logs.join('|') !== `hostcalls: start|${expected}`) throw new Error(`logs ${JSON.stringify(logs)}`)
if (exit.gas <= 0n || exit.gas >= 1_000_000n) throw new Error(`gas ${exit.gas}`)
vm.free()

// Which artifact the package's loader took: 'native' (the platform package's .node) or the
// wasm fallback ('wasm32-wasi'), and the file it came from.
const target = (libpvm as unknown as { __napiBindingTarget?: string }).__napiBindingTarget
const require = createRequire(import.meta.url)
const file = Object.keys(require.cache).find((f) => /\.(node|wasm|wasi\.cjs)$/.test(f)) ?? '?'
if (process.env.EXPECT_BINDING && target !== process.env.EXPECT_BINDING) {
  throw new Error(`loaded the ${target} binding (${file}), expected ${process.env.EXPECT_BINDING}`)
}
console.log(`ok ${process.platform}-${process.arch} node ${process.version}: ${target} ${file}: ${output} (gas left ${exit.gas})`)
