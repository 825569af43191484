// What hosts need beyond run(): the backend choice, vm.invoke (entering a standard program again)
// and JIP-6 program metadata.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { describe, expect, it } from 'vitest'

import { Program, recompilerSupported, replayJip7, type HostCallHandler } from '../index.js'
import { I, LAYOUT, codeBlob, standardProgram, varint } from './asm.mjs'
import { HOSTCALLS, ROOT, pvmError, refineGuest } from './guests'

const k = (n: number) => Uint8Array.from([n, 0, 0, 0])

/** get_number (1001) returns 100, 200, ...; log (100) is ignored. */
function numbers(): HostCallHandler {
  let next = 0n
  return (id, vm) => {
    if (id === 1001) vm.setRegister(7, (next += 100n))
  }
}

/** JIP-6 metadata: format 0, then ↕name ↕version ↕licence ↕[↕author]. */
function jip6(name: string, version: string, license: string, authors: string[]): number[] {
  const s = (x: string) => {
    const b = [...Buffer.from(x, 'utf8')]
    return [...varint(b.length), ...b]
  }
  return [0, ...s(name), ...s(version), ...s(license), ...varint(authors.length), ...authors.flatMap(s)]
}

const serviceBlob = (m: number[], program: Uint8Array) => Uint8Array.from([...varint(m.length), ...m, ...program])

describe('backend option', () => {
  const bytes = readFileSync(HOSTCALLS)

  it('defaults to a concrete backend and accepts the interpreter everywhere', () => {
    const auto = Program.fromStandard(bytes)
    expect(['interpreter', 'recompiler']).toContain(auto.backend)
    expect(Program.fromStandard(bytes, { backend: 'auto' }).backend).toBe(auto.backend)
    expect(Program.fromStandard(bytes, { backend: 'interpreter' }).backend).toBe('interpreter')
    expect(Program.fromCode(codeBlob([I.trap()]), { backend: 'interpreter' }).backend).toBe('interpreter')
    expect(Program.fromCode(codeBlob([I.trap()]), { backend: 'INTERPRETER' as any }).backend).toBe('interpreter')
    expect(typeof recompilerSupported()).toBe('boolean')
  })

  it("gives the recompiler when supported, else a clear error", () => {
    for (const load of [
      () => Program.fromStandard(bytes, { backend: 'recompiler' }),
      () => Program.fromCode(codeBlob([I.trap()]), { backend: 'recompiler' }),
    ]) {
      if (recompilerSupported()) {
        expect(load().backend).toBe('recompiler')
      } else {
        const e = pvmError(load)
        expect(e.code).toBe('INVALID_ARGUMENT')
        expect(e.message).toMatch(/recompiler backend is not supported/)
      }
    }
  })

  it('rejects unknown names and types', () => {
    const e = pvmError(() => Program.fromStandard(bytes, { backend: 'fast' as any }))
    expect(e.code).toBe('INVALID_ARGUMENT')
    expect(e.message).toBe("options.backend must be 'interpreter', 'recompiler' or 'auto', got 'fast'")
    expect(pvmError(() => Program.fromCode(codeBlob([I.trap()]), { backend: 1 as any })).code).toBe('INVALID_ARGUMENT')
  })

  it('runs programs identically on every supported backend', () => {
    const backends = recompilerSupported() ? (['interpreter', 'recompiler'] as const) : (['interpreter'] as const)
    const results = backends.map((backend) => {
      const vm = Program.fromStandard(bytes, { backend }).instantiate({ gas: 1_000_000n, args: k(4) })
      const exit = vm.run(numbers())
      return { exit, out: vm.output()!.toString() }
    })
    for (const r of results) expect(r).toEqual(results[0])
  })
})

describe('vm.invoke', () => {
  const program = Program.fromStandard(readFileSync(HOSTCALLS))

  it('enters the program again with new arguments, like a fresh VM', () => {
    const vm = program.instantiate({ gas: 1_000_000n, args: k(3) })
    expect(vm.run(numbers()).status).toBe('halt')
    expect(vm.output()!.toString()).toBe('numbers: 100, 200, 300; sum = 600')

    const exit = vm.invoke(0, k(5), 1_000_000n, numbers())
    const fresh = program.instantiate({ gas: 1_000_000n, args: k(5) })
    const freshExit = fresh.run(numbers())
    expect(exit).toEqual(freshExit)
    expect(exit.status).toBe('halt')
    expect(vm.output()!.toString()).toBe('numbers: 100, 200, 300, 400, 500; sum = 1500')
    expect([...vm.registers]).toEqual([...fresh.registers])
    expect(vm.gas).toBe(fresh.gas)
  })

  it('sets the GP A.7 registers and argument area', () => {
    const vm = program.instantiate({ gas: 10n, args: new Uint8Array(5000).fill(7) })
    const args = Uint8Array.from([9])
    const view = vm.memory(LAYOUT.argsStart, 16) // a zero-copy view of the old argument page
    vm.registers[5] = 55n
    expect(vm.invoke(0, args, 0n).status).toBe('oog') // no gas: nothing runs
    const r = vm.registers
    expect(r[0]).toBe(0xffff0000n)
    expect(r[1]).toBe(BigInt(LAYOUT.stackEnd))
    expect(r[7]).toBe(BigInt(LAYOUT.argsStart))
    expect(r[8]).toBe(1n)
    expect(r[5]).toBe(0n)
    expect(vm.pc).toBe(0)
    expect(vm.gasCharged).toBe(false)
    expect(view.byteLength).toBe(0) // detached: the page was unmapped
    expect(vm.readMemory(LAYOUT.argsStart, 2)).toEqual(Buffer.from([9, 0]))
    expect(vm.pageAccess(LAYOUT.argsStart + 4096)).toBe('none')
    // Without a handler an ecalli stops it ('host') and run() continues it.
    expect(vm.invoke(0, null, 1_000_000n).status).toBe('host')
    expect(vm.run(numbers()).status).toBe('halt')
    expect(vm.output()!.toString()).toBe('numbers: 100, 200, 300; sum = 600')
  })

  it('answers the PVM-level host calls with a new refine context', () => {
    const g = refineGuest()
    const vm = Program.fromStandard(g.bytes).instantiate({ gas: g.gas, builtins: true })
    expect(vm.run().status).toBe('halt')
    expect(vm.gas).toBe(g.gasLeft)
    expect(vm.invoke(0, null, g.gas).status).toBe('halt')
    expect(vm.gas).toBe(g.gasLeft)
    expect(vm.innerMachineCount).toBe(0)
  })

  it('records a new JIP-7 log with the new arguments', () => {
    const vm = program.instantiate({ gas: 1_000_000n, args: k(1) })
    vm.run(numbers(), { jip7: true })
    vm.invoke(0, k(2), 1_000_000n, numbers(), { jip7: true })
    const log = vm.jip7Log()
    expect(log).toMatch(/memwrite 0xfeff0000 len=4 <- 0x02000000/)
    expect(log.match(/ecalli=1001/g)).toHaveLength(2)
    // The memory the first invocation left is in the prelude too, so the log replays.
    const r = replayJip7(log)
    expect(r.status).toBe("halt")
    expect(r.hostCalls).toBe(4)
  })

  it('refuses a code blob, too long arguments and calls from the handler, leaving the VM unchanged', () => {
    const code = Program.fromCode(codeBlob([I.trap()])).instantiate({ gas: 5n })
    const e = pvmError(() => code.invoke(0, null, 10n))
    expect(e.code).toBe('INVALID_STATE')
    expect(e.message).toMatch(/needs a standard program/)
    expect(code.gas).toBe(5n)

    const vm = program.instantiate({ gas: 5n })
    expect(pvmError(() => vm.invoke(0, new Uint8Array(2 ** 24 + 1), 10n)).code).toBe('INVALID_ARGUMENT')
    expect(vm.gas).toBe(5n)
    expect(pvmError(() => vm.invoke(0, 'abc' as any, 10n)).code).toBe('INVALID_ARGUMENT')

    const inner = program.instantiate({ gas: 1_000_000n })
    const err = pvmError(() => inner.run(() => void inner.invoke(0, null, 10n)))
    expect(err.code).toBe('REENTRANT_CALL')
  })
})

describe('Program.metadata (JIP-6)', () => {
  const std = standardProgram([I.trap()], { ro: [1, 2, 3] })

  it('parses JIP-6 fields, keeps the raw bytes and detects the prefix by itself', () => {
    const m = jip6('my-service', '1.2.3', 'MIT OR Apache-2.0', ['Alice <alice@example.com>', 'Bob'])
    const blob = serviceBlob(m, std)
    for (const p of [Program.fromStandard(blob), Program.fromStandard(blob, { metadata: true })]) {
      const md = p.metadata!
      expect([...md.raw]).toEqual(m)
      expect(md.jip6).toBe(true)
      expect(md.format).toBe(0)
      expect(md.name).toBe('my-service')
      expect(md.version).toBe('1.2.3')
      expect(md.license).toBe('MIT OR Apache-2.0')
      expect(md.authors).toEqual(['Alice <alice@example.com>', 'Bob'])
      expect(md.trailing).toBe(0)
      expect(p.isStandard).toBe(true)
    }
    expect(Program.fromStandard(std).metadata).toBeNull()
    expect(Program.fromStandard(std, { metadata: false }).metadata).toBeNull()
  })

  it('gives raw bytes and a best-effort text for metadata that is not JIP-6', () => {
    const md = Program.fromStandard(serviceBlob([...Buffer.from('hello \xff', 'latin1')], std)).metadata!
    expect(md.jip6).toBe(false)
    expect(md.name).toBeUndefined()
    expect(md.text).toBe('hello \ufffd')
  })

  it('says to pass `metadata` when neither reading works', () => {
    const e = pvmError(() => Program.fromStandard(Uint8Array.from([5, 1, 2])))
    expect(e.code).toBe('INVALID_PROGRAM')
    expect(e.message).toMatch(/read as a JAM service blob with a metadata prefix: .*Pass `metadata: true`/)
    // With the option given, only that reading is tried.
    expect(pvmError(() => Program.fromStandard(Uint8Array.from([5, 1, 2]), { metadata: false })).message).not.toMatch(
      /metadata: true/,
    )
  })
})

describe('the README example', () => {
  it('uses vm.invoke and prints what its comments say', () => {
    const readme = readFileSync(`${ROOT}README.md`, 'utf8')
    const block = /```js\n([\s\S]*?)```/.exec(readme)![1]
    expect(block).toMatch(/vm\.invoke\(/)
    const dir = mkdtempSync(join(tmpdir(), 'libpvm-readme-'))
    const file = join(dir, 'readme.mjs')
    writeFileSync(file, block.replace("from 'libpvm'", `from '${ROOT}index.js'`))
    const out = execFileSync(process.execPath, [file], { cwd: ROOT, encoding: 'utf8' })
    rmSync(dir, { recursive: true })
    expect(out).toContain('halt numbers: 100, 200, 300; sum = 600\n')
    expect(out).toContain('halt numbers: 400, 500; sum = 900\n')
  })

  it('npm run example (examples/js/example.mjs) runs and invokes again', () => {
    const out = execFileSync(process.execPath, [`${ROOT}examples/js/example.mjs`], { encoding: 'utf8' })
    expect(out).toContain('output: numbers: 100, 200, 300; sum = 600')
    expect(out).toContain('output: numbers: 400, 500; sum = 900')
  })
})
