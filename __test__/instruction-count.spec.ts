// The executed-instruction count (`vm.instructionCount`, issue #13 item 5): one per `step()`,
// the same with `run()` on either backend and under both GP versions.
import { readFileSync } from 'node:fs'

import { describe, expect, it } from 'vitest'

import { Program, recompilerSupported, type Pvm } from '../index.js'
import { I, codeBlob, standardToGp07 } from './asm.mjs'
import { HOSTCALLS } from './guests'

const backends = recompilerSupported() ? (['interpreter', 'recompiler'] as const) : (['interpreter'] as const)
const specs = ['0.8.0', '0.7.2'] as const

/** The bundled guest: get_number (1001) returns 100, 200, 300; log (100) is ignored. */
function guest(spec: (typeof specs)[number], backend: (typeof backends)[number]): Pvm {
  const bytes = readFileSync(HOSTCALLS)
  const program = Program.fromStandard(spec === '0.8.0' ? bytes : standardToGp07(bytes), { spec, backend })
  return program.instantiate({ gas: 1_000_000n })
}

function answer(vm: Pvm, id: number, n: { v: number }) {
  if (id === 1001) vm.registers[7] = BigInt(++n.v * 100)
}

describe('instructionCount', () => {
  for (const spec of specs) {
    for (const backend of backends) {
      it(`counts 357 instructions of hostcalls.jam with run() and with step() (GP ${spec}, ${backend})`, () => {
        const n = { v: 0 }
        const ran = guest(spec, backend)
        expect(ran.instructionCount).toBe(0n)
        expect(ran.run((id, v) => answer(v, id, n)).status).toBe('halt')
        expect(ran.instructionCount).toBe(357n) // PolkaVM's count (bench/README.md)

        const m = { v: 0 }
        const stepped = guest(spec, backend)
        let steps = 0n
        for (;;) {
          const before = stepped.instructionCount
          const exit = stepped.step()
          expect(stepped.instructionCount).toBe(before + 1n)
          steps++
          if (exit.status === 'host') answer(stepped, exit.hostCallId!, m)
          else if (exit.status !== 'running') {
            expect(exit.status).toBe('halt')
            break
          }
        }
        expect(steps).toBe(357n)
        expect(stepped.instructionCount).toBe(357n)
        expect(stepped.registers).toEqual(ran.registers)
        expect(stepped.gas).toBe(ran.gas)
      })
    }
  }

  it('does not count what out of gas stops, and can be set', () => {
    for (const backend of backends) {
      // r7 = 3; loop: r7 -= 1; until r7 == 0; halt
      const code = codeBlob([I.loadImm(7, 3), I.fallthrough(), I.label('l'), I.addImm64(7, 7, -1), I.branchNeImm(7, 0, 'l'), I.halt(0)])
      const vm = Program.fromCode(code, { backend }).instantiate({ gas: 0n })
      expect(vm.run().status).toBe('oog')
      expect(vm.instructionCount).toBe(0n)
      vm.gas = 1000n
      expect(vm.run().status).toBe('halt')
      // load_imm, fallthrough, 3 × (add, branch), halt (load_imm + jump_ind)
      expect(vm.instructionCount).toBe(10n)
      vm.instructionCount = 5
      expect(vm.instructionCount).toBe(5n)
      vm.instructionCount = 2n ** 64n - 1n
      expect(vm.instructionCount).toBe(2n ** 64n - 1n)
      expect(() => {
        vm.instructionCount = -1n
      }).toThrow()
    }
  })
})
