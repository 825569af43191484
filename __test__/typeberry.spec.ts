// libpvm/typeberry: libpvm behind typeberry's PVM interface (@typeberry/lib 0.11.0).
//
// 1. In-process (this Node): LibpvmInterpreter and typeberry's own interpreter are driven side by
//    side through `IPvmInterpreter` and must agree step for step: the storage service blob of
//    the committed traces with a scripted host (host calls, memory reads/writes, faults, gas),
//    and every GP 0.7.2 conformance program through `resetGeneric`.
// 2. Block import (Node 26, fetched through npm, see node26.mjs): typeberry's state transition over
//    tests/typeberry-traces with its built-in PVM and with libpvm must both compute the traces'
//    post-state roots.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

import { describe, expect, it } from 'vitest'

import { Interpreter } from '@typeberry/lib/pvm-interpreter'
import { Status, tryAsGas, type IPvmInterpreter } from '@typeberry/lib/pvm-interface'
import { tryAsU32 } from '@typeberry/lib/numbers'
import { LibpvmInterpreter, ProgramCache, installLibpvm, programCache } from 'libpvm/typeberry'

import { node26 } from './node26.mjs'
import { VECTORS, loadVector, vectorFiles } from './vectors'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const TRACES = `${ROOT}tests/typeberry-traces/`
const SERVICE = readFileSync(`${TRACES}storage-service.bin`)
const WHAT = 2n ** 64n - 2n

function regs(pvm: IPvmInterpreter): bigint[] {
  const b = pvm.registers.getAllEncoded()
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength)
  return Array.from({ length: 13 }, (_, i) => dv.getBigUint64(i * 8, true))
}

function snapshot(pvm: IPvmInterpreter) {
  const status = pvm.getStatus()
  return {
    status: Status[status],
    pc: pvm.getPC(),
    gas: BigInt(pvm.gas.get()),
    exit: status === Status.HOST || status === Status.FAULT ? pvm.getExitParam() : null,
    regs: regs(pvm),
  }
}

/**
 * Runs a service blob to the end with a scripted host: every host call costs 10 gas, reads 64
 * bytes at r7, writes 8 bytes (the call's number) at r8 when that read succeeded, and returns
 * WHAT in r7. Returns the observable history.
 */
function drive(pvm: IPvmInterpreter, blob: Uint8Array, args: Uint8Array, gas: bigint) {
  pvm.resetJam(blob, args, 5, tryAsGas(gas))
  const history: unknown[] = []
  for (let call = 0; call < 500; call++) {
    pvm.runProgram()
    const s = snapshot(pvm)
    history.push(s)
    if (pvm.getStatus() !== Status.HOST) break
    if (pvm.gas.sub(tryAsGas(10))) {
      history.push('oog in host')
      break
    }
    const buf = new Uint8Array(64)
    const read = pvm.memory.read(tryAsU32(Number(s.regs[7] & 0xffffffffn)), buf)
    history.push(read.isOk ? ['read', Buffer.from(buf).toString('hex')] : ['read fault', read.error.address])
    if (read.isOk) {
      const bytes = new Uint8Array(new BigUint64Array([BigInt(call)]).buffer)
      const store = pvm.memory.store(tryAsU32(Number(s.regs[8] & 0xffffffffn)), bytes)
      history.push(store.isOk ? 'stored' : ['store fault', store.error.address])
    }
    const encoded = new Uint8Array(pvm.registers.getAllEncoded())
    new DataView(encoded.buffer).setBigUint64(7 * 8, WHAT, true)
    pvm.registers.setAllEncoded(encoded)
  }
  return history
}

describe('LibpvmInterpreter vs typeberry Interpreter (IPvmInterpreter, in process)', () => {
  it('runs the storage service blob with a scripted host exactly like typeberry', () => {
    // Accumulate arguments E(timeslot, service id, count) with a few variations.
    for (const args of [[2, 0, 1], [6, 0, 2], [], [1, 2, 3, 4, 5, 6, 7, 8, 9]]) {
      for (const gas of [1_000_000n, 60_000n, 1_234n]) {
        const ours = drive(new LibpvmInterpreter(), SERVICE, new Uint8Array(args), gas)
        const theirs = drive(Interpreter.new({ useSbrkGas: false }), SERVICE, new Uint8Array(args), gas)
        expect(ours).toEqual(theirs)
        if (gas === 1_000_000n) expect(ours.length).toBeGreaterThan(3) // at least one host call
      }
    }
  })

  it('agrees on every GP 0.7.2 conformance program through resetGeneric', () => {
    const dir = `${VECTORS}gp-0.7/programs/`
    let n = 0
    for (const file of vectorFiles(dir)) {
      const v = loadVector(file)
      const results = [new LibpvmInterpreter(), Interpreter.new({ useSbrkGas: false })].map((pvm) => {
        pvm.resetGeneric(new Uint8Array(v.program), v['initial-pc'], tryAsGas(BigInt(v['initial-gas'])))
        const encoded = new Uint8Array(104)
        const dv = new DataView(encoded.buffer)
        v['initial-regs'].forEach((r: number | bigint, i: number) => dv.setBigUint64(i * 8, BigInt(r), true))
        pvm.registers.setAllEncoded(encoded)
        pvm.runProgram()
        const s = snapshot(pvm)
        // A fault's exit parameter: libpvm reports the page's address (GP A.7), typeberry's
        // interpreter sometimes the faulting address inside that page; both name the same page.
        if (s.status === 'FAULT' && s.exit !== null) s.exit = tryAsU32((s.exit & ~0xfff) >>> 0)
        return s
      })
      expect(results[0], file.split('/').pop()).toEqual(results[1])
      n++
    }
    expect(n).toBe(307)
  })

  it('exposes the registers as a zero-copy 104-byte little-endian view', () => {
    const pvm = new LibpvmInterpreter()
    pvm.resetJam(SERVICE, new Uint8Array([1, 2, 3]), 5, tryAsGas(1000))
    const view = pvm.registers.getAllEncoded()
    expect(view.length).toBe(104)
    expect(pvm.registers.getAllEncoded()).toBe(view)
    const vm = (pvm as any).vm
    // GP A.7: r7 = the argument address 0xFEFF0000, r8 = its length.
    expect(new DataView(view.buffer, view.byteOffset).getBigUint64(7 * 8, true)).toBe(0xfeff0000n)
    expect(vm.registers[8]).toBe(3n)
    view[9 * 8] = 0x2a
    expect(vm.registers[9]).toBe(0x2an)
    vm.registers[10] = 0x0102n
    expect([view[80], view[81]]).toEqual([2, 1])
    const copy = new Uint8Array(104)
    copy[0] = 7
    pvm.registers.setAllEncoded(copy)
    expect(vm.registers[0]).toBe(7n)
    expect(vm.registers[9]).toBe(0n)
    expect(() => pvm.registers.setAllEncoded(new Uint8Array(8))).toThrow(/registers/)
  })

  it('checked memory returns page faults (page address) instead of throwing', () => {
    for (const pvm of [new LibpvmInterpreter(), Interpreter.new({ useSbrkGas: false })]) {
      pvm.resetJam(SERVICE, new Uint8Array([1, 2, 3]), 5, tryAsGas(1000))
      const buf = new Uint8Array(4)
      expect(pvm.memory.read(tryAsU32(0xfeff0000), buf).isOk).toBe(true)
      expect([...buf]).toEqual([1, 2, 3, 0])
      const r1 = pvm.memory.read(tryAsU32(0x80000123), buf)
      expect(r1.isError && r1.error.address).toBe(0x80000000)
      const r2 = pvm.memory.store(tryAsU32(5), new Uint8Array([1]))
      expect(r2.isError && r2.error.address).toBe(0)
      // the argument area is read-only
      const r3 = pvm.memory.store(tryAsU32(0xfeff0001), new Uint8Array([9]))
      expect(r3.isError && r3.error.address).toBe(0xfeff0000)
      expect(pvm.memory.read(tryAsU32(0x80000123), new Uint8Array(0)).isOk).toBe(true)
      // gas counter
      expect(pvm.gas.sub(tryAsGas(400))).toBe(false)
      expect(BigInt(pvm.gas.get())).toBe(600n)
      expect(BigInt(pvm.gas.used())).toBe(400n)
      expect(pvm.gas.sub(tryAsGas(601))).toBe(true)
      expect(BigInt(pvm.gas.get())).toBe(0n)
    }
  })

  it('keeps compiled programs in a bounded content-keyed cache', () => {
    const cache = new ProgramCache(2)
    const pvm = new LibpvmInterpreter({ cache })
    const load = (blob: Uint8Array) => pvm.resetJam(blob, new Uint8Array(), 5, tryAsGas(10))
    // Same programs with another metadata byte (the metadata E(|m|) m starts the blob).
    const variant = (i: number) => {
      const b = new Uint8Array(SERVICE)
      b[i] ^= 0x20
      return b
    }
    load(SERVICE)
    load(new Uint8Array(SERVICE)) // same content, another buffer
    expect([cache.hits, cache.misses, cache.size]).toEqual([1, 1, 1])
    load(variant(2))
    load(variant(3))
    expect([cache.hits, cache.misses, cache.size]).toEqual([1, 3, 2])
    load(SERVICE) // evicted (least recently used)
    expect([cache.hits, cache.misses]).toEqual([1, 4])
    load(variant(3))
    expect([cache.hits, cache.misses]).toEqual([2, 4])
    // The cache holds a copy: changing the caller's buffer afterwards does not alias it.
    const mine = new Uint8Array(SERVICE)
    cache.clear()
    load(mine)
    mine[2] ^= 0x20
    load(mine)
    expect(cache.misses).toBe(6)
    expect(programCache.capacity).toBe(32)
  })

  it('installLibpvm replaces and restores the instance factory', async () => {
    class FakeManager {
      released: unknown[] = []
      constructor(readonly instances: unknown[]) {}
      static async new(_backend: number): Promise<unknown> {
        return 'original'
      }
      releaseInstance(pvm: unknown) {
        this.released.push(pvm)
      }
    }
    const restore = installLibpvm(FakeManager)
    const made = (await FakeManager.new(0)) as FakeManager
    expect(made).toBeInstanceOf(FakeManager)
    const pvm = made.instances[0] as LibpvmInterpreter
    expect(pvm).toBeInstanceOf(LibpvmInterpreter)
    pvm.resetJam(SERVICE, new Uint8Array(), 5, tryAsGas(100))
    const vm = (pvm as any).vm
    made.releaseInstance(pvm) // frees the VM, then the manager's own release runs
    expect(vm.freed).toBe(true)
    expect(made.released).toEqual([pvm])
    restore()
    expect(await FakeManager.new(0)).toBe('original')
  })
})

function runTraces(pvm: string, node: string, dirs = [`${TRACES}storage`, `${TRACES}storage_light`]) {
  const r = spawnSync(node, [`${ROOT}__test__/typeberry-runner.mjs`, '--pvm', pvm, ...dirs], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  })
  if (r.status !== 0) throw new Error(`runner (${pvm}) failed: ${r.stderr}`)
  const lines = r.stdout.trim().split('\n')
  return JSON.parse(lines[lines.length - 1])
}

const NODE26 = node26()
describe.skipIf(NODE26 === null)('typeberry block import (Node 26)', () => {
  it('imports the committed traces with libpvm and the built-in PVM to the same post-state roots', () => {
    const builtin = runTraces('builtin', NODE26!)
    const libpvm = runTraces('libpvm', NODE26!)
    expect(builtin.node).toMatch(/^v26\./)
    expect(libpvm.traces.length).toBe(7)
    for (const [i, t] of libpvm.traces.entries()) {
      const b = builtin.traces[i]
      expect(t.file).toBe(b.file)
      expect(t.error, t.file).toBeUndefined()
      expect(t.rejected, t.file).toBeUndefined()
      expect(b.error, b.file).toBeUndefined()
      expect(t.root, t.file).toBe(t.expected)
      expect(b.root, b.file).toBe(b.expected)
      expect(t.invocations, t.file).toBeGreaterThan(0) // the PVM did run
      expect(t.invocations).toBe(b.invocations)
    }
  }, 300_000)

  // More traces, not committed (e.g. davxy/jam-conformance fuzz-reports/0.7.2/traces/*, which
  // has no licence): TYPEBERRY_TRACES="dir1 dir2 ..." npx vitest run __test__/typeberry.spec.ts
  const extra = (process.env.TYPEBERRY_TRACES ?? '').split(/\s+/).filter(Boolean)
  it.skipIf(extra.length === 0)('imports $TYPEBERRY_TRACES with both PVMs to the same roots', () => {
    const builtin = runTraces('builtin', NODE26!, extra)
    const libpvm = runTraces('libpvm', NODE26!, extra)
    for (const [i, t] of libpvm.traces.entries()) {
      const b = builtin.traces[i]
      expect([t.file, t.root, t.error]).toEqual([b.file, b.root, b.error])
      if (t.error === undefined) expect(t.root, t.file).toBe(t.expected)
    }
  }, 3_600_000)
})
