// Allocation-free, non-throwing guest memory access for hosts: readMemoryInto / tryWriteMemory.
import { describe, expect, it } from 'vitest'

import { Program } from '../index.js'

const code = Uint8Array.from([0, 0, 1, 0, 1]) // one `trap`
const vmWithPages = () => {
  const vm = Program.fromCode(code).instantiate({ gas: 100n })
  vm.mapPages(0x20000, 4096, 'write')
  vm.mapPages(0x21000, 4096, 'read')
  vm.writeMemory(0x20ffe, Uint8Array.from([1, 2]))
  vm.writeMemory(0x21000, Uint8Array.from([3, 4]), { unchecked: true })
  return vm
}

describe('readMemoryInto', () => {
  it('fills the target and returns -1 when every byte is readable, across pages', () => {
    const vm = vmWithPages()
    const t = new Uint8Array(4)
    expect(vm.readMemoryInto(0x20ffe, t)).toBe(-1)
    expect(Array.from(t)).toEqual([1, 2, 3, 4])
    vm.free()
  })

  it('returns the lowest unreadable address and leaves the target unchanged', () => {
    const vm = vmWithPages()
    const t = Uint8Array.from([9, 9, 9, 9])
    expect(vm.readMemoryInto(0x21ffe, t)).toBe(0x22000)
    expect(Array.from(t)).toEqual([9, 9, 9, 9])
    expect(vm.readMemoryInto(0x8000, t)).toBe(0x8000)
    expect(vm.readMemoryInto(0xfffffffc, t)).toBe(0xfffffffc)
    vm.free()
  })

  it('agrees with readMemory, and range errors still throw', () => {
    const vm = vmWithPages()
    const t = Buffer.alloc(8)
    expect(vm.readMemoryInto(0x20ff8, t)).toBe(-1)
    expect(t.equals(vm.readMemory(0x20ff8, 8))).toBe(true)
    expect(() => vm.readMemoryInto(0xfffffffe, new Uint8Array(4))).toThrow(/2\^32|32-bit/)
    vm.free()
  })
})

describe('tryWriteMemory', () => {
  it('writes and returns -1 when every byte is writable', () => {
    const vm = vmWithPages()
    expect(vm.tryWriteMemory(0x20010, Uint8Array.from([7, 8]))).toBe(-1)
    expect(Array.from(vm.readMemory(0x20010, 2))).toEqual([7, 8])
    vm.free()
  })

  it('returns the lowest unwritable address and writes nothing', () => {
    const vm = vmWithPages()
    expect(vm.tryWriteMemory(0x20ffe, Uint8Array.from([5, 5, 5, 5]))).toBe(0x21000)
    expect(Array.from(vm.readMemory(0x20ffe, 4))).toEqual([1, 2, 3, 4])
    expect(vm.tryWriteMemory(0x100, Uint8Array.from([1]))).toBe(0x100)
    vm.free()
  })

  it('accepts a view of guest memory itself as the data', () => {
    const vm = vmWithPages()
    const view = vm.memory(0x21000, 2)
    expect(vm.tryWriteMemory(0x20000, view)).toBe(-1)
    expect(Array.from(vm.readMemory(0x20000, 2))).toEqual([3, 4])
    vm.free()
  })
})
