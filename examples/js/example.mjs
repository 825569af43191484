// Runs examples/guests/hostcalls.jam (a JAM standard program built from C, see
// examples/guests/hostcalls.c) with host calls answered by JavaScript.
//
//   ecalli 100  "log":        r7 = address of a message, r8 = its length
//   ecalli 1001 "get_number": returns a u64 in r7
//
// Usage: npm run example [-- K]   (K = how many numbers the guest asks for, default 3)
import { readFileSync } from 'node:fs'

import { Program, PvmError } from '../../index.js'

const k = Number(process.argv[2] ?? 3)
const args = new Uint8Array(4)
new DataView(args.buffer).setUint32(0, k, true)

const bytes = readFileSync(new URL('../guests/hostcalls.jam', import.meta.url))
const program = Program.fromStandard(bytes)
const vm = program.instantiate({ gas: 1_000_000n, args })
const regs = vm.registers // a live BigUint64Array over the VM's registers: cache it

let next = 0n
let hostCalls = 0
const host = (id, vm) => {
  hostCalls++
  switch (id) {
    case 100: // log(message, length)
      console.log(`  guest log: ${vm.readMemory(Number(regs[7]), Number(regs[8])).toString('utf8')}`)
      return
    case 1001: // get_number() -> u64
      next += 100n
      regs[7] = next
      return
    default:
      console.log(`  unknown host call ${id}: panicking`)
      return 'panic'
  }
}
const exit = vm.run(host)

console.log(`status: ${exit.status}, pc: ${exit.pc}, gas used: ${1_000_000n - exit.gas}, host calls: ${hostCalls}`)
console.log(`output: ${vm.output()?.toString('utf8')}`)

// Enter the program again with new arguments: vm.invoke sets the GP A.7 registers (r0 = halt
// address, r1 = stack top, r7/r8 = arguments), writes the arguments, sets pc and gas and runs.
hostCalls = 0
const again = vm.invoke(0, Uint8Array.of(2, 0, 0, 0), 1_000_000n, host)
console.log(`invoke again with K = 2: status: ${again.status}, host calls: ${hostCalls}`)
console.log(`output: ${vm.output()?.toString('utf8')}`)
console.log(`backend: ${program.backend}`)
vm.free()

try {
  Program.fromStandard(bytes.subarray(0, 20))
} catch (e) {
  if (!(e instanceof PvmError)) throw e
  console.log(`a truncated program is rejected: ${e.code}: ${e.message}`)
}
