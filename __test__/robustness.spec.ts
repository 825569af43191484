// Issue #12 (front end): no Rust panic crosses the boundary, detached buffers, freed VMs, native
// memory reported to V8, the 32-bit range rule.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

import { describe, expect, it } from 'vitest'

import * as lib from '../index.js'
import { Program, PvmError, replayJip6 } from '../index.js'
import { I, codeBlob } from './asm.mjs'
import { pvmError } from './guests'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const INDEX = JSON.stringify(`${ROOT}index.js`)


/** Runs a CommonJS script in a fresh Node process (a crash there cannot take vitest down). */
function node(script: string, flags: string[] = []) {
  const r = spawnSync(process.execPath, [...flags, '-e', script], { encoding: 'utf8', timeout: 120_000 })
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }
}

/** The hidden test-only export that panics inside a libpvm entry point. */
const panicForTesting = (lib as unknown as { __panicForTesting: (message?: string) => never }).__panicForTesting

/** ecalli 1; halt. */
const oneCall = () => Program.fromCode(codeBlob([I.ecalli(1), I.halt(0)]))

describe('Rust panics', () => {
  it('become PvmError INTERNAL, also inside host-call handlers and trace sinks', () => {
    expect(typeof panicForTesting).toBe('function')
    const direct = pvmError(() => panicForTesting('boom'))
    expect(direct.code).toBe('INTERNAL')
    expect(direct.message).toMatch(/internal error .*Rust panic caught.*boom \(at src\/panic\.rs:\d+\)/)

    // A panic in a libpvm call made by the handler: the handler throws it, run() rethrows it,
    // and the VM stays usable at the ecalli.
    const vm = oneCall().instantiate({ gas: 1000n })
    const inHandler = pvmError(() => vm.run(() => panicForTesting('in handler')))
    expect(inHandler.code).toBe('INTERNAL')
    expect(inHandler.message).toMatch(/in handler/)
    expect(vm.status).toBe('host')
    expect(vm.run(() => undefined).status).toBe('halt')

    const traced = oneCall().instantiate({ gas: 1000n })
    const inSink = pvmError(() => traced.run(() => undefined, { trace: () => panicForTesting('in sink') }))
    expect(inSink.code).toBe('INTERNAL')
    expect(inSink.message).toMatch(/in sink/)
    expect(traced.run(() => undefined).status).toBe('halt')
  })

  it('do not abort the process or print anything on stderr', () => {
    // Before the guard this process died with SIGABRT ("panic in a function that cannot
    // unwind") on the first call; replayJip6 of this log did too (a parser bug that is fixed
    // separately: either fix makes it an ordinary error).
    const script = `
      const lib = require(${INDEX})
      const codes = []
      try { lib.__panicForTesting() } catch (e) { codes.push(e instanceof lib.PvmError && e.code) }
      const log = Buffer.from('70726f6772616d20307861c3a9300a', 'hex').toString()
      try { lib.replayJip6(log) } catch (e) { codes.push(e instanceof lib.PvmError && e.code !== undefined) }
      try { lib.replayJip6(Buffer.from(log)) } catch (e) { codes.push(e instanceof lib.PvmError && e.code !== undefined) }
      console.log(JSON.stringify(codes))
    `
    const r = node(script)
    expect(r.signal).toBeNull()
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual(['INTERNAL', true, true])
  })

  it('replayJip6 still works normally behind the guard', () => {
    const vm = oneCall().instantiate({ gas: 1000n })
    vm.run((_id, vm) => { vm.registers[7] = 5n }, { jip6: true })
    const r = replayJip6(vm.jip6Log())
    expect(r.status).toBe('halt')
    expect(r.registers[7]).toBe(5n)
    expect(pvmError(() => replayJip6(42 as unknown as string)).code).toBe('INVALID_ARGUMENT')
  })
})

describe('arguments', () => {
  const detach = (ab: ArrayBuffer) => structuredClone(ab, { transfer: [ab] })

  it('a detached ArrayBuffer (or a view of one) is INVALID_ARGUMENT, not a truncated program', () => {
    const bytes = codeBlob([I.halt(0)])
    const ab = bytes.slice().buffer
    const view = new Uint8Array(ab)
    const dataView = new DataView(ab)
    expect(Program.fromCode(view).codeLength).toBeGreaterThan(0)
    detach(ab)
    for (const input of [ab, view, dataView] as Uint8Array[]) {
      const e = pvmError(() => Program.fromCode(input))
      expect(e.code).toBe('INVALID_ARGUMENT')
      expect(e.message).toMatch(/detached/)
      expect(pvmError(() => Program.fromStandard(input)).code).toBe('INVALID_ARGUMENT')
    }
    // An empty (not detached) input is still a malformed program.
    expect(pvmError(() => Program.fromCode(new Uint8Array())).code).toBe('INVALID_PROGRAM')

    const vm = Program.fromCode(bytes).instantiate({ gas: 10n })
    vm.mapPages(0x20000, 4096, 'write')
    const data = new Uint8Array(4).fill(7)
    detach(data.buffer)
    expect(pvmError(() => vm.writeMemory(0x20000, data)).code).toBe('INVALID_ARGUMENT')
    expect(pvmError(() => Program.fromCode(bytes).instantiate({ gas: 1n, args: data })).code).toBe(
      'INVALID_ARGUMENT',
    )
  })

  it('ranges past 2^32 are INVALID_ARGUMENT; ranges ending at 2^32 are fine', () => {
    const vm = Program.fromCode(codeBlob([I.halt(0)])).instantiate({ gas: 10n })
    vm.mapPages(0xffff_f000, 4096, 'write')
    vm.writeMemory(0xffff_fffc, Uint8Array.from([1, 2, 3, 4]))
    expect([...vm.readMemory(0xffff_fffc, 4)]).toEqual([1, 2, 3, 4])
    for (const f of [
      () => vm.readMemory(0xffff_fffe, 4),
      () => vm.readMemory(0xffff_fffe, 4, { unchecked: true }),
      () => vm.writeMemory(0xffff_fffe, new Uint8Array(4)),
      () => vm.writeMemory(0xffff_fffe, new Uint8Array(4), { unchecked: true }),
      () => vm.mapPages(0xffff_f000, 0x1001, 'none'),
      () => vm.unmapPages(2, 0xffff_ffff),
      () => vm.memory(0xffff_ffff, 2),
    ]) {
      const e = pvmError(f)
      expect(e.code).toBe('INVALID_ARGUMENT')
    }
    expect([...vm.readMemory(0xffff_fffc, 4)]).toEqual([1, 2, 3, 4])
    expect(vm.pageAccess(0xffff_f000)).toBe('write')
  })
})

describe('a freed VM', () => {
  it('throws VM_FREED from every method, getter and setter (arguments checked after)', () => {
    const vm = oneCall().instantiate({ gas: 1000n })
    vm.mapPages(0x20000, 4096, 'write')
    vm.free()
    vm.free() // idempotent
    expect(vm.freed).toBe(true)
    const uses: Array<[string, () => unknown]> = [
      ['run', () => vm.run()],
      ['step', () => vm.step()],
      ['status', () => vm.status],
      ['registers', () => vm.registers],
      ['registers =', () => { vm.registers = [1n] }],
      ['registers = garbage', () => { vm.registers = 'x' as unknown as bigint[] }],
      ['getRegister', () => vm.getRegister(0)],
      ['setRegister', () => vm.setRegister(0, 1n)],
      ['setRegister(bad)', () => vm.setRegister(99, 1n)],
      ['gas', () => vm.gas],
      ['gas =', () => { vm.gas = 5n }],
      ['pc', () => vm.pc],
      ['pc =', () => { vm.pc = 0 }],
      ['nextPc', () => vm.nextPc],
      ['gasCharged', () => vm.gasCharged],
      ['gasCharged =', () => { vm.gasCharged = true }],
      ['readMemory', () => vm.readMemory(0x20000, 1)],
      ['writeMemory', () => vm.writeMemory(0x20000, new Uint8Array(1))],
      ['memory', () => vm.memory(0x20000, 1)],
      ['mapPages', () => vm.mapPages(0x20000, 1, 'read')],
      ['mapPages(bad)', () => vm.mapPages(0x20000, 1, 'bad' as 'read')],
      ['unmapPages', () => vm.unmapPages(0x20000, 1)],
      ['pageAccess', () => vm.pageAccess(0x20000)],
      ['pages', () => vm.pages()],
      ['output', () => vm.output()],
      ['handleBuiltin', () => vm.handleBuiltin(0)],
      ['builtins', () => vm.builtins],
      ['builtins =', () => { vm.builtins = true }],
      ['innerMachineCount', () => vm.innerMachineCount],
      ['pvmHash', () => vm.pvmHash()],
      ['dumpState', () => vm.dumpState()],
      // jip6Log() is the exception when a log was recorded (jip6.spec.ts: the log outlives the
      // instance); this VM recorded none.
      ['jip6Log', () => vm.jip6Log()],
    ]
    const codes = Object.fromEntries(uses.map(([name, f]) => [name, pvmError(f).code]))
    expect(codes).toEqual(Object.fromEntries(uses.map(([name]) => [name, 'VM_FREED'])))
    expect(vm.freed).toBe(true)
  })
})

describe('native memory', () => {
  it('unfreed VMs are reclaimed: 3,000 VMs with 2 MiB of guest pages each stay under 1.5 GB RSS', () => {
    // Each VM writes 2 MiB of guest memory (512 pages with storage) and is dropped without
    // free(): 6 GB if nothing were reclaimed. The script checks its own RSS after every VM and
    // stops at 1.5 GB, so a regression fails quickly instead of exhausting the machine. It
    // yields to the event loop every 50 VMs because Node runs native finalizers from the event
    // loop: a loop that never yields cannot get VMs reclaimed by the GC, whatever the addon
    // reports (call free() there).
    const script = `
      const lib = require(${INDEX})
      const program = lib.Program.fromCode(Uint8Array.from([0, 0, 1, 0, 1]))
      const data = new Uint8Array(2 << 20).fill(1)
      const limit = 1.5 * 2 ** 30
      let max = 0
      ;(async () => {
        for (let i = 0; i < 3000; i++) {
          const vm = program.instantiate({ gas: 10n })
          vm.mapPages(0x100000, data.length, 'write')
          vm.writeMemory(0x100000, data)
          const rss = process.memoryUsage.rss()
          max = Math.max(max, rss)
          if (rss > limit) {
            console.log(JSON.stringify({ failedAt: i, rss }))
            process.exit(1)
          }
          if (i % 50 === 49) await new Promise((r) => setImmediate(r))
        }
        console.log(JSON.stringify({ done: true, maxMiB: Math.round(max / 2 ** 20) }))
      })()
    `
    const r = node(script, ['--max-old-space-size=64'])
    expect(r.stderr).toBe('')
    const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}')
    expect(out).toMatchObject({ done: true })
    expect(r.status).toBe(0)
    expect(out.maxMiB).toBeLessThan(1536)
  }, 120_000)
})
