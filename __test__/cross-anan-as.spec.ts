// Cross-implementation JIP-7 trace tests against anan-as (the GP 0.7.2 PVM typeberry uses, a
// devDependency): logs that libpvm records replay in anan-as's own replay tool with verification,
// and logs recorded from anan-as (driven through its API by the host below) replay in libpvm with
// verification. The runs include out-of-gas mid-block and hosts that change gas, so this pins
// libpvm's GP 0.7.2 gas to another implementation's at every host call and at the end.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, describe, expect, it } from 'vitest'

import { Program, replayJip7, type Pvm } from '../index.js'
import { ROOT } from './guests'

// anan-as ships its replay tool (the `anan-as replay-trace` command) in its package, outside the
// package's exports: load the files directly.
const ANAN = `${ROOT}node_modules/@fluffylabs/anan-as/dist/`
const { replayTraceFile } = await import(`${ANAN}bin/src/trace-replay.js`)
const { NoOpTracer } = await import(`${ANAN}bin/src/tracer.js`)
const anan = await import(`${ANAN}build/release.js`)

const GUEST = readFileSync(`${ROOT}examples/guests/hostcalls-gp072.jam`)
const tmp = mkdtempSync(join(tmpdir(), 'libpvm-anan-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

/** What the host does, identically for both implementations. */
interface Scenario {
  name: string
  gas: bigint
  args: Uint8Array
  /** At the n-th host call (1-based), replace the gas with f(gas after the call). */
  setGas?: (n: number, gas: bigint) => bigint | undefined
}

/** The host's answer to one call: get_number (1001) returns 100, 200, …; log (100) reads its
 * message and returns 0. */
function answer(id: number, n: { next: bigint }, regs: bigint[], read: (a: number, l: number) => Uint8Array) {
  const out: { reads: Array<[number, Uint8Array]>; r7: bigint } = { reads: [], r7: 0n }
  if (id === 1001) {
    out.r7 = n.next
    n.next += 100n
  } else if (id === 100) {
    const [ptr, len] = [Number(regs[7]), Number(regs[8])]
    out.reads.push([ptr, read(ptr, len)])
  }
  return out
}

/** Runs the guest on libpvm with JIP-7 recording; returns the log and the final status. */
function recordWithLibpvm(s: Scenario): { log: string; status: string; pc: number; gas: bigint } {
  const vm: Pvm = Program.fromStandard(GUEST, { spec: '0.7.2' }).instantiate({ gas: s.gas, args: s.args })
  const n = { next: 100n }
  let calls = 0
  const exit = vm.run(
    (id, vm) => {
      calls += 1
      const a = answer(id, n, Array.from(vm.registers), (p, l) => vm.readMemory(p, l))
      vm.registers[7] = a.r7
      const g = s.setGas?.(calls, vm.gas)
      if (g !== undefined) vm.gas = g
    },
    { jip7: true },
  )
  const log = vm.jip7Log()
  vm.free()
  return { log, status: exit.status, pc: exit.pc, gas: exit.gas }
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const addr = (a: number) => `0x${a.toString(16).padStart(8, '0')}`
const regList = (regs: ArrayLike<bigint>) =>
  Array.from(regs)
    .map((v, i) => [v, i] as const)
    .filter(([v]) => v !== 0n)
    .map(([v, i]) => `r${String(i).padStart(2, '0')}=0x${v.toString(16)}`)
    .join(' ')

/** Runs the guest on anan-as through its API, as a host, and writes the JIP-7 log of the run. */
function recordWithAnanAs(s: Scenario): { log: string; status: string; pc: number; gas: bigint } {
  const prepared = anan.prepareProgram(anan.InputKind.SPI, anan.HasMetadata.No, Array.from(GUEST), [], [], [], Array.from(s.args), 128)
  // GP 0.7.2 gas as its text has it: the sbrk gas option off.
  const id = anan.pvmStart(prepared, false)
  const lines = [`program 0x${hex(GUEST)}`]
  if (s.args.length > 0) lines.push(`memwrite ${addr(0xfeff0000)} len=${s.args.length} <- 0x${hex(s.args)}`)
  try {
    let gas = s.gas
    let pc = 0
    let first = true
    const n = { next: 100n }
    let calls = 0
    for (;;) {
      const pause = anan.pvmResume(id, gas, pc, false)
      if (first) {
        // The initial registers: GP A.7 for the argument length.
        const start = [0xffff0000n, 0xfefe0000n, 0n, 0n, 0n, 0n, 0n, 0xfeff0000n, BigInt(s.args.length), 0n, 0n, 0n, 0n]
        lines.push(`start pc=0 gas=${s.gas} ${regList(start)}`)
        first = false
      }
      const regs: bigint[] = Array.from(pause.registers as ArrayLike<bigint>).map((v) => BigInt.asUintN(64, BigInt(v)))
      if (pause.status === 3) {
        calls += 1
        lines.push(`ecalli=${pause.exitCode} pc=${pause.pc} gas=${pause.gas} ${regList(regs)}`)
        const a = answer(pause.exitCode, n, regs, (p, l) => anan.pvmReadMemory(id, p, l) as Uint8Array)
        for (const [p, data] of a.reads) lines.push(`memread ${addr(p)} len=${data.length} -> 0x${hex(data)}`)
        regs[7] = a.r7
        lines.push(`setreg r07 <- 0x${a.r7.toString(16)}`)
        anan.pvmSetRegisters(id, regs)
        gas = BigInt(pause.gas)
        const g = s.setGas?.(calls, gas)
        if (g !== undefined) {
          gas = g
          lines.push(`setgas <- ${g}`)
        }
        pc = pause.nextPc
        continue
      }
      const status = { 0: 'halt', 1: 'panic', 2: 'fault', 4: 'oog' }[pause.status as number] ?? '?'
      const word = { halt: 'HALT', oog: 'OOG', panic: 'PANIC=0', fault: `PANIC=${pause.exitCode}` }[status]
      lines.push(`${word} pc=${pause.pc} gas=${pause.gas} ${regList(regs)}`)
      return { log: `${lines.join('\n')}\n`, status, pc: pause.pc, gas: BigInt(pause.gas) }
    }
  } finally {
    anan.pvmDestroy(id)
  }
}

/** Replays a log with anan-as's replay tool (verifying every ecalli, memread and the end). */
function replayWithAnanAs(log: string, name: string) {
  const file = join(tmp, `${name}.log`)
  writeFileSync(file, log)
  return replayTraceFile(file, {
    logs: false,
    hasMetadata: anan.HasMetadata.No,
    verify: true,
    logHostCall: false,
    tracer: new NoOpTracer(),
  })
}

// The gas the whole default run takes, for budgets that end out of gas at every depth.
const full = recordWithLibpvm({ name: 'full', gas: 1_000_000n, args: new Uint8Array() })
const used = 1_000_000n - full.gas
// Block starts, to find budgets whose out-of-gas falls inside a block.
const blockStarts = new Set(
  Program.fromStandard(GUEST, { spec: '0.7.2' })
    .blockGasCosts()
    .map((b) => b.pc),
)

const scenarios: Scenario[] = [
  { name: 'default run', gas: 1_000_000n, args: new Uint8Array() },
  { name: 'eight numbers', gas: 1_000_000n, args: Uint8Array.from([8, 0, 0, 0]) },
  { name: 'host adds gas', gas: 1_000_000n, args: new Uint8Array(), setGas: (n, g) => (n === 2 ? g + 12345n : undefined) },
  { name: 'host takes gas', gas: 1_000_000n, args: new Uint8Array(), setGas: (n, g) => (n === 1 ? g - 7n : undefined) },
  { name: 'host leaves 3 gas', gas: 1_000_000n, args: new Uint8Array(), setGas: (n) => (n === 3 ? 3n : undefined) },
  ...[1n, 2n, 5n, 17n, 40n, used / 2n, used - 1n].map((k) => ({
    name: `out of gas, ${used - k} of ${used}`,
    gas: used - k,
    args: new Uint8Array(),
  })),
]

describe('libpvm and anan-as agree on GP 0.7.2 JIP-7 traces (hostcalls guest)', () => {
  it('the full run halts with the expected output, and some budgets end mid-block', () => {
    expect(full.status).toBe('halt')
    const midBlock = scenarios
      .filter((s) => s.name.startsWith('out of gas'))
      .map((s) => recordWithLibpvm(s))
      .filter((r) => r.status === 'oog' && !blockStarts.has(r.pc))
    expect(midBlock.length).toBeGreaterThan(0)
  })

  it.each(scenarios.map((s) => [s.name, s] as const))('%s: libpvm records, anan-as replays', (name, s) => {
    const ours = recordWithLibpvm(s)
    const r = replayWithAnanAs(ours.log, `libpvm-${name.replace(/\W+/g, '_')}`)
    expect(r.success).toBe(true)
    expect(r.termination.gas).toBe(ours.gas)
  })

  it.each(scenarios.map((s) => [s.name, s] as const))('%s: anan-as records, libpvm replays', (_name, s) => {
    const theirs = recordWithAnanAs(s)
    const r = replayJip7(theirs.log, { spec: '0.7.2' })
    expect(r.status).toBe(theirs.status)
    expect(r.pc).toBe(theirs.pc)
    expect(r.gas).toBe(theirs.gas)
    // And the two implementations made the same run.
    const ours = recordWithLibpvm(s)
    expect([ours.status, ours.pc, ours.gas]).toEqual([theirs.status, theirs.pc, theirs.gas])
  })
})
