// The JavaScript API: host calls, memory and register views, resuming, errors.
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

import { describe, expect, it } from 'vitest'

import { Program, Pvm, PvmError, PvmErrorCode, Status, type Exit, type HostCallHandler } from '../index.js'
import { I, LAYOUT, codeBlob, standardProgram } from './asm.mjs'
import { pvmError } from './guests'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const HOSTCALLS = `${ROOT}examples/guests/hostcalls.jam`
const PAGE = 0x20000


/** ecalli 7; r7 += 1; ecalli 8; halt. */
const twoCalls = () =>
  Program.fromCode(codeBlob([I.ecalli(7), I.addImm64(7, 7, 1), I.ecalli(8), I.halt(0)]))

/** r7 = u64 [PAGE]; ecalli 1; u64 [PAGE + 8] = r7; halt. */
const memoryProgram = () =>
  Program.fromCode(codeBlob([I.loadU64(7, PAGE), I.ecalli(1), I.storeU64(7, PAGE + 8), I.halt(0)]))

describe('Program', () => {
  it('loads a code blob and reports block gas costs', () => {
    const p = twoCalls()
    expect(p.spec).toBe('0.8.0')
    expect(p.isStandard).toBe(false)
    expect(p.codeLength).toBe(5 + 6 + 5 + 6 + 6)
    const costs = p.blockGasCosts()
    expect(costs[0].pc).toBe(0)
    expect(costs.every((c) => typeof c.cost === 'number' && c.cost > 0)).toBe(true)
    expect(p.isInstructionStart(0)).toBe(true)
    expect(p.isInstructionStart(1)).toBe(false)
    expect(p.metadata).toBeNull()
  })

  it('loads GP 0.7.2 programs, where costs are instruction counts', () => {
    const p = Program.fromCode(codeBlob([I.loadImm(7, 1), I.addImm64(7, 7, 2), I.trap()]), { spec: '0.7.2' })
    expect(p.spec).toBe('0.7.2')
    expect(p.blockGasCosts()).toEqual([{ pc: 0, cost: 3 }])
  })

  it('loads a standard program and a service blob with metadata', () => {
    const bytes = standardProgram([I.trap()], { ro: [1, 2, 3], rw: [4], heapPages: 1 })
    const p = Program.fromStandard(bytes)
    expect(p.isStandard).toBe(true)
    const withMeta = Program.fromStandard(Uint8Array.from([3, 0xaa, 0xbb, 0xcc, ...bytes]), { metadata: true })
    expect([...withMeta.metadata!.raw]).toEqual([0xaa, 0xbb, 0xcc])
    expect(withMeta.metadata!.jip6).toBe(false)
    const vm = p.instantiate({ gas: 10n, args: Uint8Array.from([9, 8]) })
    expect(vm.readMemory(LAYOUT.roStart, 3)).toEqual(Buffer.from([1, 2, 3]))
    expect(vm.readMemory(LAYOUT.rwStart(3), 2)).toEqual(Buffer.from([4, 0]))
    expect(vm.registers[7]).toBe(BigInt(LAYOUT.argsStart))
    expect(vm.registers[8]).toBe(2n)
    expect(vm.registers[1]).toBe(BigInt(LAYOUT.stackEnd))
    expect(vm.registers[0]).toBe(0xffff0000n)
    expect(vm.readMemory(LAYOUT.argsStart, 2)).toEqual(Buffer.from([9, 8]))
    expect(vm.pageAccess(LAYOUT.roStart)).toBe('read')
    expect(vm.pageAccess(LAYOUT.rwStart(3))).toBe('write')
    expect(vm.pageAccess(0x5000_0000)).toBe('none')
  })

  it('rejects malformed programs with the byte offset or pc', () => {
    const truncated = pvmError(() => Program.fromCode(Uint8Array.from([0, 0, 10, 1, 2])))
    expect(truncated.code).toBe('INVALID_PROGRAM')
    expect(truncated.code).toBe(PvmErrorCode.InvalidProgram)
    expect(truncated.message).toMatch(/byte offset 3/)
    expect(truncated.offset).toBe(3)

    const trailing = pvmError(() => Program.fromCode(Uint8Array.from([0, 0, 1, 0, 1, 0xee])))
    expect(trailing.message).toMatch(/trailing byte.*offset 5/)
    expect(trailing.offset).toBe(5)

    // GP 0.8.0 prevalidation: the last instruction must be a terminator.
    const invalid = pvmError(() => Program.fromCode(codeBlob([I.trap(), I.loadImm(7, 1)])))
    expect(invalid.code).toBe('INVALID_PROGRAM')
    expect(invalid.message).toMatch(/invalid code at pc 1/)
    expect(invalid.pc).toBe(1)
    // GP 0.7.2 has no prevalidation.
    expect(() => Program.fromCode(codeBlob([I.trap(), I.loadImm(7, 1)]), { spec: '0.7.2' })).not.toThrow()

    const header = pvmError(() => Program.fromStandard(Uint8Array.from([1, 0, 0, 0])))
    expect(header.code).toBe('INVALID_PROGRAM')
    expect(header.message).toMatch(/byte offset \d+/)
    expect(typeof header.offset).toBe('number')
  })

  it('rejects bad arguments with INVALID_ARGUMENT', () => {
    expect(pvmError(() => Program.fromCode('nope' as any)).code).toBe('INVALID_ARGUMENT')
    expect(pvmError(() => Program.fromCode(new Uint16Array(4) as any)).code).toBe('INVALID_ARGUMENT')
    const spec = pvmError(() => Program.fromCode(codeBlob([I.trap()]), { spec: '0.9' as any }))
    expect(spec.code).toBe('INVALID_ARGUMENT')
    expect(spec.message).toMatch(/options.spec/)
    const p = twoCalls()
    expect(pvmError(() => p.instantiate({} as any)).message).toMatch(/options.gas/)
    expect(pvmError(() => p.instantiate({ gas: 1.5 })).code).toBe('INVALID_ARGUMENT')
    expect(pvmError(() => p.instantiate({ gas: 2n ** 64n })).code).toBe('INVALID_ARGUMENT')
    expect(pvmError(() => p.instantiate({ gas: 1n, args: Uint8Array.from([1]) })).message).toMatch(/standard memory layout/)
    expect(pvmError(() => p.instantiate({ gas: 1n, registers: new Array(14).fill(0n) })).message).toMatch(/13 registers/)
  })

  it('accepts Buffer, ArrayBuffer and plain numbers where documented', () => {
    const blob = codeBlob([I.trap()])
    expect(Program.fromCode(Buffer.from(blob)).codeLength).toBe(1)
    expect(Program.fromCode(blob.buffer as any).codeLength).toBe(1)
    const vm = Program.fromCode(blob).instantiate({ gas: 5, pc: 0, registers: [1n, 2, 3n] })
    expect(vm.gas).toBe(5n)
    expect([...vm.registers.slice(0, 4)]).toEqual([1n, 2n, 3n, 0n])
  })
})

describe('run and host calls', () => {
  it('calls the handler with the id and the same Pvm object, synchronously', () => {
    const vm = twoCalls().instantiate({ gas: 1000n })
    const seen: Array<[number, boolean, boolean, bigint]> = []
    const exit = vm.run(function (this: Pvm, id, v) {
      seen.push([id, v === vm, this === vm, v.registers[7]])
      v.registers[7] += 10n
    })
    expect(seen).toEqual([
      [7, true, true, 0n],
      [8, true, true, 11n],
    ])
    expect(exit.status).toBe('halt')
    expect(exit.status).toBe(Status.Halt)
    expect(vm.registers[7]).toBe(21n)
    expect(vm.status).toBe('halt')
    expect(typeof exit.gas).toBe('bigint')
    expect(exit.gas).toBe(vm.gas)
  })

  it('lets the handler charge gas, set the pc and use every accessor', () => {
    const vm = twoCalls().instantiate({ gas: 1000n })
    const gas0 = vm.run(() => undefined).gas
    const vm2 = twoCalls().instantiate({ gas: 1000n })
    const exit = vm2.run((id, v) => {
      v.gas -= 100n
      v.setRegister(2, 2n ** 64n - 1n)
      expect(v.getRegister(2)).toBe(2n ** 64n - 1n)
      expect(v.pc).toBe(id === 7 ? 0 : 11)
      expect(v.nextPc).toBe(id === 7 ? 5 : 16)
      expect(v.status).toBe('host')
      expect(v.gasCharged).toBe(true)
    })
    expect(exit.gas).toBe(gas0 - 200n)
  })

  it('sees memory the handler writes, checked or through a view', () => {
    const p = Program.fromCode(
      codeBlob([I.ecalli(1), I.loadU64(7, PAGE), I.loadU64(8, PAGE + 8), I.ecalli(2), I.halt(0)]),
    )
    const vm = p.instantiate({ gas: 1000n })
    vm.mapPages(PAGE, 4096, 'write')
    const exit = vm.run((id, v) => {
      if (id === 1) {
        v.writeMemory(PAGE, Buffer.from('0102030405060708', 'hex'))
        v.memory(PAGE + 8, 8).writeBigUInt64LE(0xabcdefn)
      } else {
        expect(v.registers[7]).toBe(0x0807060504030201n)
        expect(v.registers[8]).toBe(0xabcdefn)
        // Host accesses inside the handler are checked like anywhere else.
        expect(pvmError(() => v.readMemory(PAGE + 4096, 1)).address).toBe(PAGE + 4096)
      }
    })
    expect(exit.status).toBe('halt')
  })

  it("ends the run when the handler returns 'halt', 'panic' or 'oog'", () => {
    for (const result of ['halt', 'panic', 'oog'] as const) {
      const vm = twoCalls().instantiate({ gas: 1000n })
      const exit = vm.run(() => result)
      expect(exit.status).toBe(result)
      expect(exit.pc).toBe(0) // the ecalli's pc
      expect(exit.hostCallId).toBeUndefined()
      expect(vm.status).toBe(result)
      expect(vm.registers[7]).toBe(0n)
    }
    // After a host 'halt' the output is r7..+r8 (here r8 = 0: empty).
    const vm = twoCalls().instantiate({ gas: 1000n })
    vm.run(() => 'halt')
    expect(vm.output()).toEqual(Buffer.alloc(0))
  })

  it('rethrows what the handler throws and stays resumable', () => {
    const vm = twoCalls().instantiate({ gas: 1000n })
    const boom = new Error('boom')
    let calls = 0
    try {
      vm.run(() => {
        calls++
        throw boom
      })
      expect.unreachable()
    } catch (e) {
      expect(e).toBe(boom)
    }
    expect(calls).toBe(1)
    expect(vm.status).toBe('host')
    expect(vm.pc).toBe(0)
    expect(vm.nextPc).toBe(5)
    // The host completes the call by hand and resumes after the ecalli.
    vm.registers[7] = 100n
    const ids: number[] = []
    const exit = vm.run((id) => void ids.push(id))
    expect(ids).toEqual([8])
    expect(exit.status).toBe('halt')
    expect(vm.registers[7]).toBe(101n)
  })

  it('refuses run, step and free from inside its own handler (REENTRANT_CALL)', () => {
    const vm = twoCalls().instantiate({ gas: 1000n })
    const errors: PvmError[] = []
    const other = twoCalls().instantiate({ gas: 1000n })
    const exit = vm.run((id, v) => {
      errors.push(pvmError(() => v.run()))
      errors.push(pvmError(() => v.step()))
      errors.push(pvmError(() => v.free()))
      // Another VM may run inside the handler.
      if (id === 7) expect(other.run().status).toBe('host')
    })
    expect(exit.status).toBe('halt')
    expect(errors).toHaveLength(6)
    for (const e of errors) {
      expect(e.code).toBe('REENTRANT_CALL')
      expect(e.message).toMatch(/host-call handler/)
    }
  })

  it('rejects a handler result other than undefined, halt, panic or oog', () => {
    const vm = twoCalls().instantiate({ gas: 1000n })
    const e = pvmError(() => vm.run((() => 42) as any))
    expect(e.code).toBe('INVALID_ARGUMENT')
    expect(e.message).toMatch(/returned a number/)
    expect(pvmError(() => vm.run((async () => undefined) as any)).message).toMatch(/a Promise is not awaited/)
    expect(vm.status).toBe('host')
    expect(pvmError(() => vm.run('x' as any)).message).toMatch(/hostCall must be a function/)
  })

  it("without a handler stops with 'host' and resumes after the ecalli", () => {
    const vm = twoCalls().instantiate({ gas: 1000n })
    const first: Exit = vm.run()
    expect(first).toMatchObject({ status: 'host', pc: 0, hostCallId: 7 })
    vm.registers[7] = 41n
    const second = vm.run(null)
    expect(second).toMatchObject({ status: 'host', pc: 11, hostCallId: 8 })
    expect(vm.registers[7]).toBe(42n)
    expect(vm.run()).toMatchObject({ status: 'halt' })
  })

  it('runs out of gas and reports faults', () => {
    const vm = twoCalls().instantiate({ gas: 1n })
    expect(vm.run()).toMatchObject({ status: 'oog', pc: 0, gas: 1n })
    const fault = memoryProgram().instantiate({ gas: 1000n }).run()
    expect(fault).toMatchObject({ status: 'fault', faultAddress: PAGE, pc: 0 })
  })

  it('returns plain Exit objects with exactly the documented keys', () => {
    const shape = (e: Exit) => [Object.getPrototypeOf(e) === Object.prototype, ...Object.keys(e)]
    const vm = twoCalls().instantiate({ gas: 1000n })
    const host = vm.run()
    expect(shape(host)).toEqual([true, 'status', 'pc', 'gas', 'hostCallId'])
    expect(host).toStrictEqual({ status: 'host', pc: 0, gas: vm.gas, hostCallId: 7 })
    const running = vm.step()
    expect(shape(running)).toEqual([true, 'status', 'pc', 'gas'])
    expect(running).toStrictEqual({ status: 'running', pc: 11, gas: vm.gas })
    expect(vm.run().status).toBe('host')
    const halt = vm.run()
    expect(halt).toStrictEqual({ status: 'halt', pc: vm.pc, gas: vm.gas })
    const oog = twoCalls().instantiate({ gas: 1n }).run()
    expect(oog).toStrictEqual({ status: 'oog', pc: 0, gas: 1n })
    const fault = memoryProgram().instantiate({ gas: 1000n }).run()
    expect(shape(fault)).toEqual([true, 'status', 'pc', 'gas', 'faultAddress'])
    expect(fault).toMatchObject({ status: 'fault', pc: 0, faultAddress: PAGE })
    const panic = Program.fromCode(codeBlob([I.trap()])).instantiate({ gas: 10n }).run()
    expect(shape(panic)).toEqual([true, 'status', 'pc', 'gas'])
    expect(panic).toMatchObject({ status: 'panic', pc: 0 })
  })

  it('steps instruction by instruction', () => {
    const vm = twoCalls().instantiate({ gas: 1000n })
    expect(vm.status).toBe('running')
    expect(vm.step()).toMatchObject({ status: 'host', hostCallId: 7, pc: 0 })
    expect(vm.step()).toMatchObject({ status: 'running', pc: 11 })
    expect(vm.registers[7]).toBe(1n)
    expect(vm.status).toBe('running')
    expect(vm.step(100)).toMatchObject({ status: 'host', hostCallId: 8 })
    expect(vm.step(0)).toMatchObject({ status: 'host', pc: 11 })
    expect(vm.step(100)).toMatchObject({ status: 'halt' })
  })

  it('runs the bundled C guest with JavaScript host calls', () => {
    const vm = Program.fromStandard(readFileSync(HOSTCALLS)).instantiate({ gas: 1_000_000n })
    const logs: string[] = []
    let n = 0
    const handler: HostCallHandler = (id, v) => {
      if (id === 100) logs.push(v.readMemory(Number(v.registers[7]), Number(v.registers[8])).toString())
      else if (id === 1001) v.registers[7] = BigInt(++n * 100)
    }
    const exit = vm.run(handler)
    expect(exit.status).toBe('halt')
    expect(vm.output()!.toString()).toBe('numbers: 100, 200, 300; sum = 600')
    expect(logs).toEqual(['hostcalls: start', 'numbers: 100, 200, 300; sum = 600'])
    expect(n).toBe(3)
    expect(1_000_000n - exit.gas).toBe(2071n) // bench/expected.json: gas_0_8
  })
})

describe('memory', () => {
  it('reads and writes as the guest sees it, or unchecked', () => {
    const vm = memoryProgram().instantiate({ gas: 1000n })
    vm.mapPages(PAGE, 4096, 'read')
    const e = pvmError(() => vm.writeMemory(PAGE + 8, Uint8Array.from([1])))
    expect(e.code).toBe('MEMORY_FAULT')
    expect(e.address).toBe(PAGE + 8)
    expect(e.message).toMatch(/0x20008 is not writable/)
    vm.writeMemory(PAGE + 8, Uint8Array.from([1, 2]), { unchecked: true })
    expect([...vm.readMemory(PAGE + 8, 2)]).toEqual([1, 2])
    const r = pvmError(() => vm.readMemory(PAGE + 4090, 10))
    expect(r.address).toBe(PAGE + 4096)
    expect(r.message).toMatch(/0x21000 is not readable/)
    expect(pvmError(() => vm.readMemory(0x1000, 1)).code).toBe('MEMORY_FAULT')
    expect(pvmError(() => vm.mapPages(0x1000, 4096, 'write')).code).toBe('INVALID_ARGUMENT')
    expect(pvmError(() => vm.mapPages(PAGE, 4096, 'rw' as any)).message).toMatch(/'read', 'write' or 'none'/)
    expect(pvmError(() => vm.readMemory(0xffff_fff0, 0x20)).code).toBe('INVALID_ARGUMENT')
    vm.mapPages(PAGE, 4096, 'none')
    expect(pvmError(() => vm.readMemory(PAGE, 1)).code).toBe('MEMORY_FAULT')
    expect([...vm.readMemory(PAGE + 8, 2, { unchecked: true })]).toEqual([1, 2])
    expect(vm.pages()).toEqual([{ address: PAGE, access: 'none' }])
    vm.unmapPages(PAGE, 4096)
    expect(vm.pages()).toEqual([])
    expect(pvmError(() => vm.readMemory(PAGE, 1, { unchecked: true })).message).toMatch(/not mapped/)
  })

  it('gives zero-copy views: host writes reach the guest, guest writes reach the view', () => {
    const vm = memoryProgram().instantiate({ gas: 1000n })
    vm.mapPages(PAGE, 4096, 'write')
    const view = vm.memory(PAGE, 16)
    expect(Buffer.isBuffer(view)).toBe(true)
    expect(view.length).toBe(16)
    view.writeBigUInt64LE(42n, 0)
    const exit = vm.run((_id, v) => {
      expect(v.registers[7]).toBe(42n) // the guest loaded what the view wrote
      v.registers[7] = 99n
    })
    expect(exit.status).toBe('halt')
    expect(view.readBigUInt64LE(8)).toBe(99n) // the guest's store, seen without copying
    // One external buffer per page, shared by every view of that page.
    expect(vm.memory(PAGE + 100, 4).buffer).toBe(view.buffer)
    expect(vm.memory(PAGE + 100, 4).byteOffset).toBe(100)
  })

  it('refuses views across pages or of inaccessible memory', () => {
    const vm = memoryProgram().instantiate({ gas: 1000n })
    vm.mapPages(PAGE, 8192, 'write')
    const cross = pvmError(() => vm.memory(PAGE + 4090, 10))
    expect(cross.code).toBe('INVALID_ARGUMENT')
    expect(cross.message).toMatch(/spans 2 pages.*readMemory/)
    expect(vm.memory(PAGE + 4096 - 6, 6).length).toBe(6)
    const none = pvmError(() => vm.memory(0x40000, 4))
    expect(none.code).toBe('MEMORY_FAULT')
    expect(none.address).toBe(0x40000)
    expect(vm.memory(PAGE, 0).length).toBe(0)
  })

  it('detaches views when pages are unmapped or made inaccessible, and on free', () => {
    const vm = memoryProgram().instantiate({ gas: 1000n })
    vm.mapPages(PAGE, 3 * 4096, 'write')
    const a = vm.memory(PAGE, 8)
    const b = vm.memory(PAGE + 4096, 8)
    const c = vm.memory(PAGE + 8192, 8)
    vm.unmapPages(PAGE, 4096)
    expect(a.length).toBe(0)
    expect(a.buffer.byteLength).toBe(0)
    expect(b.length).toBe(8)
    vm.mapPages(PAGE + 4096, 4096, 'none')
    expect(b.length).toBe(0)
    // A fresh mapping gives a fresh view.
    vm.mapPages(PAGE, 4096, 'write')
    const a2 = vm.memory(PAGE, 8)
    expect(a2.length).toBe(8)
    const regs = vm.registers
    vm.free()
    expect(vm.freed).toBe(true)
    expect(a2.length).toBe(0)
    expect(c.length).toBe(0)
    expect(regs.length).toBe(0)
    const e = pvmError(() => vm.gas)
    expect(e.code).toBe('VM_FREED')
    expect(pvmError(() => vm.registers).code).toBe('VM_FREED')
    expect(pvmError(() => vm.run()).code).toBe('VM_FREED')
    vm.free() // idempotent
  })

  it('exposes the registers as one live BigUint64Array', () => {
    const vm = twoCalls().instantiate({ gas: 1000n, registers: new BigUint64Array([5n, 6n]) })
    const regs = vm.registers
    expect(regs).toBeInstanceOf(BigUint64Array)
    expect(regs.length).toBe(13)
    expect(vm.registers).toBe(regs)
    expect(regs[0]).toBe(5n)
    regs[7] = 2n ** 64n - 1n
    expect(vm.getRegister(7)).toBe(2n ** 64n - 1n)
    vm.registers = [1n, 2n, 3n]
    expect([...regs.slice(0, 3)]).toEqual([1n, 2n, 3n])
    vm.run(() => undefined)
    expect(regs[7]).toBe(0n) // r7 += 1 wrapped: the guest's write is visible in the same array
    expect(pvmError(() => vm.getRegister(13)).code).toBe('INVALID_ARGUMENT')
    expect(pvmError(() => vm.setRegister(0, -1n)).code).toBe('INVALID_ARGUMENT')
  })

  it('returns the output slice after a halt', () => {
    const p = Program.fromStandard(
      standardProgram([I.loadImm(7, 0x10000), I.loadImm(8, 3), I.halt(0)], { ro: [7, 8, 9, 10] }),
    )
    const vm = p.instantiate({ gas: 100n })
    expect(vm.output()).toBeNull()
    expect(vm.run().status).toBe('halt')
    expect([...vm.output()!]).toEqual([7, 8, 9])
  })

  it('keeps memory alive for views that outlive a garbage-collected VM', () => {
    const script = `
      const { Program } = require(${JSON.stringify(`${ROOT}index.js`)})
      let views = []
      for (let i = 0; i < 50; i++) {
        const vm = Program.fromCode(Uint8Array.from([0, 0, 1, 0, 1])).instantiate({ gas: 1n })
        vm.mapPages(0x20000, 4096, 'write')
        const v = vm.memory(0x20000, 4096)
        v.fill(i)
        views.push([v, vm.registers])
      }
      global.gc(); global.gc()
      setImmediate(() => {
        global.gc()
        let ok = views.every(([v, r], i) => v.length === 4096 && v[4095] === i && r.length === 13)
        views = null
        global.gc()
        console.log(ok ? 'ok' : 'bad')
      })
    `
    const out = execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' })
    expect(out.trim()).toBe('ok')
  })
})

describe('errors and module loading', () => {
  it('PvmError is an Error subclass with a code', () => {
    const e = new PvmError('INVALID_ARGUMENT', 'custom', { address: 5 })
    expect(e).toBeInstanceOf(Error)
    expect(e.name).toBe('PvmError')
    expect(e.code).toBe('INVALID_ARGUMENT')
    expect(e.address).toBe(5)
    expect(e.stack).toMatch(/PvmError: custom/)
    const thrown = pvmError(() => Program.fromCode(Uint8Array.from([])))
    expect(thrown.stack).toMatch(/api\.spec\.ts/)
    expect(Object.values(PvmErrorCode)).toContain('REENTRANT_CALL')
    expect(Object.values(Status)).toEqual(['halt', 'panic', 'oog', 'fault', 'host', 'running', 'interrupted'])
  })

  it('works in worker threads', async () => {
    const { Worker } = await import('node:worker_threads')
    const source = `
      const { parentPort } = require('node:worker_threads')
      const { readFileSync } = require('node:fs')
      const { Program, PvmError } = require(${JSON.stringify(`${ROOT}index.js`)})
      const vm = Program.fromStandard(readFileSync(${JSON.stringify(HOSTCALLS)})).instantiate({ gas: 1000000n })
      let n = 0n
      vm.run((id) => { if (id === 1001) vm.registers[7] = (n += 100n) })
      let code
      try { vm.memory(0x10000, 8192) } catch (e) { code = e instanceof PvmError && e.code }
      parentPort.postMessage(vm.output().toString() + ' ' + code)
    `
    const worker = new Worker(source, { eval: true })
    const message = await new Promise((resolve, reject) => {
      worker.once('message', resolve)
      worker.once('error', reject)
    })
    await worker.terminate()
    expect(message).toBe('numbers: 100, 200, 300; sum = 600 INVALID_ARGUMENT')
  })

  it('loads from CommonJS and from ESM', () => {
    const cjs = execFileSync(
      process.execPath,
      [
        '-e',
        `const l = require(${JSON.stringify(`${ROOT}index.js`)}); console.log(typeof l.Program.fromCode, typeof l.PvmError, l.Status.Halt)`,
      ],
      { encoding: 'utf8' },
    )
    expect(cjs.trim()).toBe('function function halt')
    const esm = execFileSync(process.execPath, [`${ROOT}__test__/fixtures/esm.mjs`], { encoding: 'utf8' })
    expect(esm.trim()).toBe('halt numbers: 100, 200, 300; sum = 600 PvmError INVALID_PROGRAM')
  })

  it('the bundled benchmark programs give the expected results', () => {
    const expectedPath = `${ROOT}bench/expected.json`
    if (!existsSync(expectedPath)) return
    const expected = JSON.parse(readFileSync(expectedPath, 'utf8'))
    for (const [name, e] of Object.entries<any>(expected.programs)) {
      const vm = Program.fromStandard(readFileSync(`${ROOT}${e.file}`)).instantiate({
        gas: 10n ** 12n,
        args: Buffer.from(e.small.args, 'hex'),
      })
      const exit = vm.run()
      expect(exit.status, name).toBe('halt')
      expect(vm.output()!.toString('hex'), name).toBe(e.small.output)
      expect(10n ** 12n - exit.gas, name).toBe(BigInt(e.small.gas_0_8))
      vm.free()
    }
  })
})
