// The example of docs/NODE-API.md, type-checked by `npm test` (tsc --noEmit).
import { readFileSync } from 'node:fs'

import {
  builtinHostCallIds,
  InnerPvms,
  Program,
  PvmError,
  replayJip6,
  Status,
  type BuiltinHostCallIds,
  type BuiltinResult,
  type Exit,
  type HostCallHandler,
  type Pvm,
  type ReplayResult,
  type RunOptions,
} from '../../index.js'

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

// Inner PVMs, tracing and JIP-6 (docs/NODE-API.md "Inner PVMs", "Tracing", "JIP-6 logs").
export function refineWithBuiltins(bytes: Uint8Array, myHost: HostCallHandler): { exit: Exit; log: string } {
  const vm = Program.fromStandard(bytes).instantiate({ gas: 10_000_000n })
  // The VM's own inner machines answer the PVM-level host calls; myHost the chain-state ones.
  const exit = vm.run((id, vm) => vm.handleBuiltin(id) ?? myHost.call(vm, id, vm), { jip6: true })
  return { exit, log: vm.jip6Log() }
}

export function withInnerPvms(vm: Pvm): BuiltinResult[] {
  const inner = new InnerPvms('0.8.0') // machines that live as long as `inner`
  const ids: BuiltinHostCallIds = builtinHostCallIds('0.8.0')
  const results: BuiltinResult[] = []
  vm.run((id, vm) => {
    const r = inner.handle(id, vm)
    results.push(r)
    return r ?? (id === ids.gas ? 'panic' : undefined)
  })
  return results
}

export function traceRun(vm: Pvm, onLine: (line: string) => void): string {
  const options: RunOptions = { trace: onLine, traceHashEvery: 100, builtins: true }
  vm.run(null, options)
  const hash: Buffer = vm.pvmHash()
  return `${hash.toString('hex')}\n${vm.dumpState()}`
}

export function replay(log: string): bigint {
  try {
    const r: ReplayResult = replayJip6(log, { spec: '0.8.0', verify: true })
    return r.gas
  } catch (e) {
    if (e instanceof PvmError && e.code === 'DIVERGENCE') console.log(e.message)
    throw e
  }
}
