// The total guest memory limit per VM (issue #12 item 3): `vm.memoryLimit` (pages with storage).
import { describe, expect, it } from 'vitest'

import { Program } from '../index.js'
import { codeBlob, I } from './asm.mjs'
import { hex, pvmError } from './guests.js'

const BASE = 0x100000
/** Stores r1 = 7 at the first word of 16 pages from BASE, then traps. */
function writer() {
  const ins = [I.loadImm(1, 7)]
  for (let k = 0; k < 16; k++) ins.push(I.storeU64(1, BASE + k * 4096))
  ins.push(I.trap())
  return Program.fromCode(codeBlob(ins))
}

describe('memoryLimit', () => {
  it('is null by default, settable, and a store beyond it faults (resumable)', () => {
    const p = writer()
    const free = p.instantiate({ gas: 10_000n })
    free.mapPages(BASE, 16 * 4096, 'write')
    expect(free.memoryLimit).toBeNull()
    expect(free.run().status).toBe('panic')

    const vm = p.instantiate({ gas: 10_000n })
    vm.mapPages(BASE, 16 * 4096, 'write')
    vm.memoryLimit = 5
    expect(vm.memoryLimit).toBe(5)
    const exit = vm.run()
    expect(exit.status).toBe('fault')
    expect(exit.faultAddress).toBe(BASE + 5 * 4096)
    expect(vm.memoryLimitReached).toBe(true)
    // Host writes: a page with storage is fine, a new one is refused.
    vm.writeMemory(BASE + 9, Uint8Array.of(0))
    const e = pvmError(() => vm.writeMemory(BASE + 6 * 4096, Uint8Array.of(1)))
    expect(e.code).toBe('MEMORY_FAULT')
    expect(e.address).toBe(BASE + 6 * 4096)
    expect(e.message).toMatch(/memory limit of 5 pages/)
    expect(vm.tryWriteMemory(BASE + 7 * 4096, Uint8Array.of(1))).toBe(BASE + 7 * 4096)
    expect(() => vm.memory(BASE + 8 * 4096, 8)).toThrow(/memory limit/)
    vm.memoryLimit = null
    expect(vm.memoryLimitReached).toBe(false)
    expect(vm.run().status).toBe('panic')
    expect(hex(vm.pvmHash())).toBe(hex(free.pvmHash()))
    expect(() => (vm.memoryLimit = -1 as any)).toThrow(/memoryLimit/)
    vm.free()
    expect(() => vm.memoryLimit).toThrow(/freed/)
  })
})
