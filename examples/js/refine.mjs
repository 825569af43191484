// Runs the refine-style guest of examples/c/refine_guest.h (a standard program that creates an
// inner PVM, pages, pokes, invokes, peeks and expunges it, then returns the u64 142) with the
// PVM-level host calls answered by libpvm, while tracing it and recording a JIP-6 log, then
// replays the log statelessly.
//
// Usage (after npm run build): node examples/js/refine.mjs
import { readFileSync } from 'node:fs'

import { Program, replayJip6 } from '../../index.js'

const header = readFileSync(new URL('../c/refine_guest.h', import.meta.url), 'utf8')
const body = header.slice(header.indexOf('REFINE_GUEST[] = {'), header.indexOf('};'))
const bytes = Uint8Array.from([...body.matchAll(/0x([0-9a-fA-F]{2})/g)].map((m) => parseInt(m[1], 16)))

const vm = Program.fromStandard(bytes).instantiate({ gas: 10_000_000n })
const trace = []
const chainHostCalls = []
const exit = vm.run(
  // Built-in host calls first; anything else would be a chain-state host call of the host's own.
  (id, vm) => vm.handleBuiltin(id) ?? void chainHostCalls.push(id),
  { trace: (line) => trace.push(line), traceHashEvery: 10, jip6: true },
)
console.log(`status: ${exit.status}, gas left: ${exit.gas}, output: ${vm.output()?.readBigUInt64LE(0)}`)
console.log(`chain-state host calls: ${chainHostCalls.length}, inner machines left: ${vm.innerMachineCount}`)
console.log(`trace: ${trace.length} lines, the last: ${trace.at(-1)}`)

const log = vm.jip6Log()
const replayed = replayJip6(log)
console.log(`JIP-6 log: ${log.split('\n').length} lines; replayed ${replayed.hostCalls} host calls, ${replayed.status}, gas ${replayed.gas}`)
console.log(`pvmHash: 0x${vm.pvmHash().toString('hex')}`)
