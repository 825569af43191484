// Inner PVMs and the other PVM-level host calls answered by libpvm: vm.handleBuiltin,
// InnerPvms, builtins: true.
import { execFileSync } from 'node:child_process'

import { describe, expect, it } from 'vitest'

import { builtinHostCallIds, InnerPvms, Program, PvmError, type Pvm } from '../index.js'
import { I, codeBlob } from './asm.mjs'
import { ROOT, pvmError, refineGuest } from './guests'

const GAS_COST = 48n // GP 0.8.0 I.4.5: the `gas` host call


const guest = refineGuest()
const refine = () => Program.fromStandard(guest.bytes).instantiate({ gas: guest.gas })
const expectRefineResult = (vm: Pvm, gas: bigint) => {
  expect(vm.status).toBe('halt')
  expect(vm.output()!.readBigUInt64LE(0)).toBe(142n)
  expect(vm.output()!.length).toBe(8)
  expect(gas).toBe(guest.gasLeft)
}

/** ecalli 0 (gas); r8 = r7; ecalli 77; ecalli 0; halt. */
const gasProgram = (spec: '0.8.0' | '0.7.2' = '0.8.0') =>
  Program.fromCode(codeBlob([I.ecalli(0), I.moveReg(8, 7), I.ecalli(77), I.ecalli(0), I.halt(0)]), { spec })

describe('the refine-style guest (examples/c/refine_guest.h) end to end', () => {
  it('has the expected shape', () => {
    expect(guest.bytes.length).toBe(188)
    expect(guest.gas).toBe(10_000_000n)
    expect(guest.gasLeft).toBe(9_994_261n)
    expect(guest.calls).toEqual([9, 12, 11, 13, 13, 10, 14])
  })

  it('runs with instantiate({ builtins: true }) and no handler', () => {
    const vm = Program.fromStandard(guest.bytes).instantiate({ gas: guest.gas, builtins: true })
    expect(vm.builtins).toBe(true)
    const exit = vm.run()
    expectRefineResult(vm, exit.gas)
    expect(vm.innerMachineCount).toBe(0) // expunged
  })

  it('runs with vm.handleBuiltin(id) inside a JavaScript handler', () => {
    const vm = refine()
    const seen: Array<[number, number]> = []
    const exit = vm.run((id, v) => {
      const r = v.handleBuiltin(id)
      seen.push([id, v.innerMachineCount])
      return r ?? 'panic'
    })
    expectRefineResult(vm, exit.gas)
    // The machine made by `machine` persists across host calls until `expunge`.
    expect(seen).toEqual(guest.calls.map((id) => [id, id === 14 ? 0 : 1]))
  })

  it('runs with a standalone InnerPvms', () => {
    const inner = new InnerPvms()
    expect(inner.spec).toBe('0.8.0')
    expect(inner.machineCount).toBe(0)
    const counts: number[] = []
    const vm = refine()
    const exit = vm.run((id, v) => {
      const r = inner.handle(id, v)
      counts.push(inner.machineCount)
      return r
    })
    expectRefineResult(vm, exit.gas)
    expect(counts).toEqual([1, 1, 1, 1, 1, 1, 0])
    expect(vm.innerMachineCount).toBe(0) // the VM's own set was never used
  })

  it("runs with run(hostCall, { builtins: true }): the handler sees none of them", () => {
    const calls: number[] = []
    const vm = refine()
    const exit = vm.run((id) => void calls.push(id), { builtins: true })
    expectRefineResult(vm, exit.gas)
    expect(calls).toEqual([])
    expect(vm.builtins).toBe(false) // the option applies to that run only
  })

  it('runs without a handler, answering each stop with handleBuiltin (machines persist across runs)', () => {
    const vm = refine()
    const ids: number[] = []
    let exit = vm.run()
    while (exit.status === 'host') {
      ids.push(exit.hostCallId!)
      expect(vm.handleBuiltin(exit.hostCallId!)).toBe('continue')
      exit = vm.run()
    }
    expect(ids).toEqual(guest.calls)
    expectRefineResult(vm, exit.gas)
  })

  it('is what examples/js/refine.mjs prints', () => {
    const out = execFileSync(process.execPath, [`${ROOT}examples/js/refine.mjs`], { encoding: 'utf8' })
    expect(out).toMatch(/^status: halt, gas left: 9994261, output: 142\n/)
    expect(out).toMatch(/\nJIP-6 log: \d+ lines; replayed 7 host calls, halt, gas 9994261\n/)
  })

  it("switches with vm.builtins and run's builtins option", () => {
    const vm = Program.fromStandard(guest.bytes).instantiate({ gas: guest.gas, builtins: true })
    expect(vm.run(null, { builtins: false })).toMatchObject({ status: 'host', hostCallId: 9 })
    vm.builtins = false
    expect(vm.builtins).toBe(false)
    expect(vm.handleBuiltin(9)).toBe('continue')
    vm.builtins = true
    const exit = vm.run()
    expectRefineResult(vm, exit.gas)
  })
})

describe('built-in host calls', () => {
  it('lets ids that are not built in fall through to the handler, or stop the run', () => {
    const vm = gasProgram().instantiate({ gas: 10_000n, builtins: true })
    const calls: number[] = []
    const exit = vm.run((id, v) => {
      calls.push(id)
      expect(v.handleBuiltin(id)).toBeUndefined()
      v.registers[9] = 99n
    })
    expect(exit.status).toBe('halt')
    expect(calls).toEqual([77])
    expect(vm.registers[9]).toBe(99n)

    const stops = gasProgram().instantiate({ gas: 10_000n, builtins: true })
    expect(stops.run()).toMatchObject({ status: 'host', hostCallId: 77 })
    expect(stops.handleBuiltin(77)).toBeUndefined()
    expect(stops.run()).toMatchObject({ status: 'halt' })
  })

  it('gas: charges 48 and returns the remaining gas in r7', () => {
    const vm = gasProgram().instantiate({ gas: 10_000n })
    const atEcalli = vm.run().gas // stopped at the first ecalli (block already paid)
    expect(vm.handleBuiltin(0)).toBe('continue')
    expect(vm.registers[7]).toBe(atEcalli - GAS_COST)
    expect(vm.gas).toBe(atEcalli - GAS_COST)
    expect(vm.run()).toMatchObject({ status: 'host', hostCallId: 77 })
    expect(vm.registers[8]).toBe(atEcalli - GAS_COST)
    // GP 0.7.2 charges a flat 10.
    const old = gasProgram('0.7.2').instantiate({ gas: 10_000n })
    const g = old.run().gas
    expect(old.handleBuiltin(0)).toBe('continue')
    expect(old.registers[7]).toBe(g - 10n)
  })

  it("gas: out of gas ends the run with 'oog' at the ecalli", () => {
    const probe = gasProgram().instantiate({ gas: 10_000n })
    const blockCost = 10_000n - probe.run().gas
    // Enough for the block, 10 short of the host call.
    const vm = gasProgram().instantiate({ gas: blockCost + GAS_COST - 10n, builtins: true })
    const exit = vm.run(() => 'panic')
    expect(exit).toMatchObject({ status: 'oog', pc: 0 })
    expect(exit.gas).toBe(-10n) // ϱ' = ϱ − g (GP B.5)
    expect(vm.status).toBe('oog')

    // The same through handleBuiltin inside a handler: the handler returns the outcome.
    const vm2 = gasProgram().instantiate({ gas: blockCost + GAS_COST - 10n })
    expect(vm2.run((id, v) => v.handleBuiltin(id))).toMatchObject({ status: 'oog', pc: 0 })

    // And outside a handler: the outcome ends the run at once.
    const vm3 = gasProgram().instantiate({ gas: blockCost + GAS_COST - 10n })
    expect(vm3.run().status).toBe('host')
    expect(vm3.handleBuiltin(0)).toBe('oog')
    expect(vm3.status).toBe('oog')
    expect(vm3.pc).toBe(0)
    expect(pvmError(() => vm3.handleBuiltin(0)).code).toBe('INVALID_STATE')
  })

  it('is only performed at an ecalli, once', () => {
    const vm = gasProgram().instantiate({ gas: 10_000n })
    const fresh = pvmError(() => vm.handleBuiltin(0))
    expect(fresh.code).toBe('INVALID_STATE')
    expect(fresh.message).toMatch(/not stopped at an ecalli/)
    const twice: PvmError[] = []
    vm.run((id, v) => {
      if (id !== 0) return
      expect(v.handleBuiltin(id)).toBe('continue')
      twice.push(pvmError(() => v.handleBuiltin(id)))
      return 'continue'
    })
    expect(twice).toHaveLength(2)
    for (const e of twice) expect(e.message).toMatch(/already performed/)
    // Moving the pc abandons the ecalli.
    const moved = gasProgram().instantiate({ gas: 10_000n })
    moved.run()
    moved.pc = 0
    expect(pvmError(() => moved.handleBuiltin(0)).code).toBe('INVALID_STATE')
    expect(pvmError(() => new InnerPvms().handle(0, moved)).code).toBe('INVALID_STATE')
    moved.free()
    expect(pvmError(() => moved.handleBuiltin(0)).code).toBe('VM_FREED')
  })

  it('checks the InnerPvms arguments', () => {
    const vm = gasProgram('0.7.2').instantiate({ gas: 10_000n })
    vm.run()
    const spec = pvmError(() => new InnerPvms('0.8.0').handle(0, vm))
    expect(spec.code).toBe('INVALID_ARGUMENT')
    expect(spec.message).toMatch(/GP 0.8.0, the VM's program GP 0.7.2/)
    expect(new InnerPvms('0.7.2').handle(0, vm)).toBe('continue')
    expect(pvmError(() => new InnerPvms().handle(0, {} as any)).message).toMatch(/vm must be a Pvm/)
    expect(pvmError(() => new InnerPvms().handle(0, Program.fromCode(codeBlob([I.trap()])) as any)).code).toBe(
      'INVALID_ARGUMENT',
    )
    expect(pvmError(() => new InnerPvms('0.9' as any)).code).toBe('INVALID_ARGUMENT')
    expect(pvmError(() => vm.handleBuiltin(-1)).code).toBe('INVALID_ARGUMENT')
  })

  it('lists the built-in ids per spec', () => {
    expect(builtinHostCallIds()).toEqual({
      gas: 0,
      growHeap: 1,
      machine: 9,
      peek: 10,
      poke: 11,
      pages: 12,
      invoke: 13,
      expunge: 14,
    })
    const old = builtinHostCallIds('0.7.2')
    expect(old.machine).toBe(8)
    expect(old.expunge).toBe(13)
    expect(old.growHeap).toBeUndefined()
    expect(new InnerPvms('0.7.2').ids).toEqual(old)
  })

  it("accepts 'continue' as a handler result", () => {
    const vm = gasProgram().instantiate({ gas: 10_000n })
    expect(vm.run(() => 'continue').status).toBe('halt')
  })
})
