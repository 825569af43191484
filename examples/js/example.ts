// The example of docs/NODE-API.md, type-checked by `npm test` (tsc --noEmit).
import { readFileSync } from 'node:fs'

import { Program, PvmError, Status, type Exit, type HostCallHandler, type Pvm } from '../../index.js'

export function runHostcalls(path: string, count = 3): { exit: Exit; output: string } {
  const program: Program = Program.fromStandard(readFileSync(path), { spec: '0.8.0' })
  const args = new Uint8Array(new Uint32Array([count]).buffer)
  const vm: Pvm = program.instantiate({ gas: 1_000_000n, args })
  const regs: BigUint64Array = vm.registers
  let n = 0n
  const hostCall: HostCallHandler = (id, vm) => {
    if (id === 100) {
      console.log(vm.readMemory(Number(regs[7]), Number(regs[8])).toString())
    } else if (id === 1001) {
      regs[7] = (n += 100n)
    } else {
      return 'panic'
    }
  }
  const exit = vm.run(hostCall)
  const output = exit.status === Status.Halt ? (vm.output()?.toString() ?? '') : ''
  vm.free()
  return { exit, output }
}

export function describeError(e: unknown): string {
  if (e instanceof PvmError) return `${e.code} at ${e.offset ?? e.address ?? e.pc}: ${e.message}`
  return String(e)
}

export function memoryDemo(vm: Pvm): bigint {
  vm.mapPages(0x20000, 4096, 'write')
  const view: Buffer = vm.memory(0x20000, 8) // zero-copy, within one page
  view.writeBigUInt64LE(42n)
  vm.writeMemory(0x20008, new Uint8Array([1, 2, 3]))
  const exit: Exit = vm.step(10)
  if (exit.status === 'fault') console.log(exit.faultAddress)
  vm.gas = 1000n
  vm.pc = 0
  return vm.readMemory(0x20000, 8).readBigUInt64LE()
}
