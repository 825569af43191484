// Runs the PVM conformance vectors (tests/vectors, formats in tests/vectors/README.md) through the
// JavaScript API, the way crates/pvm-cli/src/vectors.rs runs them through pvm-core.

import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { Program, recompilerSupported, type Backend, type Exit, type Pvm } from '../index.js'

export const VECTORS = fileURLToPath(new URL('../tests/vectors/', import.meta.url))

/** The GP 0.7 page-fault vectors whose expected gas charges the fault's whole block; libpvm
 * charges the faulting instruction only (README, "Where the vectors and the GP text differ"). */
export const BLOCK_CHARGED_FAULTS: string[] = readFileSync(join(VECTORS, 'gp-0.7', 'block-charged-faults.txt'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'))

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function blockChargedFault(v: any): boolean {
  return v['expected-status'] === 'page-fault' && BLOCK_CHARGED_FAULTS.includes(v.name)
}

/** A JSON number that may exceed 2^53: parsed as a bigint when it is an integer of 16+ digits. */
type Num = number | bigint

/**
 * JSON.parse that keeps u64 register values exact: integers of 16 or more digits are quoted with
 * a marker before parsing and turned into bigints by the reviver (JSON.parse alone would round
 * them to doubles). The vector files contain no strings of digits, so the pre-pass is safe.
 */
export function parseJsonExact(text: string): any {
  const marked = text.replace(/(?<=[:,[]\s*)(-?\d{16,})(?=\s*[,\]}])/g, '"#u64:$1"')
  return JSON.parse(marked, (_key, value) =>
    typeof value === 'string' && value.startsWith('#u64:') ? BigInt(value.slice(5)) : value,
  )
}

export function vectorFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => join(dir, f))
}

export function loadVector(path: string): any {
  return parseJsonExact(readFileSync(path, 'utf8'))
}

const big = (x: Num): bigint => (typeof x === 'bigint' ? x : BigInt(x))

/** 0.8 assert statuses → `Exit.status`. */
const STATUS: Record<string, string> = {
  halt: 'halt',
  panic: 'panic',
  'page-fault': 'fault',
  'out-of-gas': 'oog',
  ecalli: 'host',
}

/**
 * The machine a vector drives. A GP 0.8.0 blob that fails prevalidation cannot become a Program;
 * Ψ then panics at every invocation with gas untouched. For such a blob the registers and memory
 * live in a stand-in VM (of a one-instruction program) and `run` is emulated.
 */
class Machine {
  readonly vm: Pvm
  readonly program: Program | null
  private emulated: { pc: number; gas: bigint } | null = null

  constructor(blob: Uint8Array, spec: '0.8.0' | '0.7.2', backend: Backend = 'auto') {
    let program: Program | null = null
    try {
      program = Program.fromCode(blob, { spec, backend })
    } catch (e: any) {
      // An unsupported backend is INVALID_ARGUMENT: rethrown, never taken for an invalid program.
      if (e?.code !== 'INVALID_PROGRAM') throw e
    }
    if (program && backend !== 'auto' && program.backend !== backend) {
      throw new Error(`asked for backend ${backend}, got ${program.backend}`)
    }
    this.program = program
    if (program) {
      this.vm = program.instantiate({ gas: 0n })
    } else {
      this.vm = Program.fromCode(Uint8Array.from([0, 0, 1, 0, 1]), { spec }).instantiate({ gas: 0n })
      this.emulated = { pc: 0, gas: 0n }
    }
  }

  get pc(): number {
    return this.emulated ? this.emulated.pc : this.vm.pc
  }
  set pc(pc: number) {
    if (this.emulated) this.emulated.pc = pc
    else this.vm.pc = pc
  }
  get gas(): bigint {
    return this.emulated ? this.emulated.gas : this.vm.gas
  }
  set gas(gas: bigint) {
    if (this.emulated) this.emulated.gas = gas
    else this.vm.gas = gas
  }
  run(): Exit {
    if (this.emulated) return { status: 'panic', pc: this.emulated.pc, gas: this.emulated.gas }
    return this.vm.run()
  }
}

/** address → byte for every non-zero byte of the given regions. */
function nonzeroBytes(vm: Pvm, regions: Array<[number, number]>): Map<number, number> {
  const out = new Map<number, number>()
  for (const [address, length] of regions) {
    const bytes = vm.readMemory(address, length, { unchecked: true })
    for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) out.set(address + i, bytes[i])
  }
  return out
}

function expectedBytes(chunks: Array<{ address: Num; contents: Num[] }>): Map<number, number> {
  const out = new Map<number, number>()
  for (const c of chunks) {
    c.contents.forEach((b, i) => {
      if (Number(b) !== 0) out.set(Number(c.address) + i, Number(b))
    })
  }
  return out
}

function diffMemory(f: string[], expected: Map<number, number>, actual: Map<number, number>) {
  const keys = [...new Set([...expected.keys(), ...actual.keys()])].sort((a, b) => a - b)
  let shown = 0
  for (const a of keys) {
    const e = expected.get(a) ?? 0
    const g = actual.get(a) ?? 0
    if (e !== g) {
      if (shown < 16) f.push(`memory[0x${a.toString(16)}]: expected ${e}, got ${g}`)
      shown++
    }
  }
  if (shown > 16) f.push(`... and ${shown - 16} more differing memory bytes`)
}

function diffRegs(f: string[], expected: Num[], actual: BigUint64Array) {
  for (let i = 0; i < 13; i++) {
    if (big(expected[i]) !== actual[i]) f.push(`r${i}: expected ${big(expected[i])}, got ${actual[i]}`)
  }
}

function checkExit(f: string[], exit: Exit, status: string, fault?: Num, hostcall?: Num) {
  const want = STATUS[status] ?? status
  if (exit.status !== want) f.push(`status: expected ${want}, got ${exit.status}`)
  if (fault !== undefined && exit.status === 'fault' && exit.faultAddress !== Number(fault)) {
    f.push(`fault address: expected ${fault}, got ${exit.faultAddress}`)
  }
  if (hostcall !== undefined && exit.status === 'host' && exit.hostCallId !== Number(hostcall)) {
    f.push(`host-call id: expected ${hostcall}, got ${exit.hostCallId}`)
  }
}

/** Runs a GP 0.7-format vector (one run from `initial-*`, compared with `expected-*`). */
/**
 * The backends this machine runs: the interpreter always, the recompiler where
 * `recompilerSupported()`. The vector suites run under each, so a new backend is covered as soon
 * as it is supported.
 */
export function supportedBackends(): ('interpreter' | 'recompiler')[] {
  return recompilerSupported() ? ['interpreter', 'recompiler'] : ['interpreter']
}

export function runGp07(v: any, spec: '0.8.0' | '0.7.2' = '0.7.2', backend: Backend = 'auto'): string[] {
  const m = new Machine(Uint8Array.from(v.program.map(Number)), spec, backend)
  const vm = m.vm
  vm.registers = v['initial-regs']
  const regions: Array<[number, number]> = []
  for (const e of v['initial-page-map']) {
    vm.mapPages(Number(e.address), Number(e.length), e['is-writable'] ? 'write' : 'read')
    regions.push([Number(e.address), Number(e.length)])
  }
  for (const c of v['initial-memory']) {
    vm.writeMemory(Number(c.address), Uint8Array.from(c.contents.map(Number)), { unchecked: true })
  }
  m.pc = Number(v['initial-pc'])
  m.gas = big(v['initial-gas'])
  const exit = m.run()
  const f: string[] = []
  checkExit(f, exit, v['expected-status'], v['expected-page-fault-address'])
  if (exit.pc !== Number(v['expected-pc'])) f.push(`pc: expected ${v['expected-pc']}, got ${exit.pc}`)
  if (m.pc !== exit.pc) f.push(`vm.pc ${m.pc} differs from exit.pc ${exit.pc}`)
  const gas = big(v['expected-gas']) + (spec === '0.7.2' && blockChargedFault(v) ? 1n : 0n)
  if (exit.gas !== gas) f.push(`gas: expected ${gas}, got ${exit.gas}`)
  diffRegs(f, v['expected-regs'], vm.registers)
  diffMemory(f, expectedBytes(v['expected-memory']), nonzeroBytes(vm, regions))
  vm.free()
  return f
}

/** Runs a GP 0.8-format vector (a list of steps with asserts). */
export function runGp08(v: any, spec: '0.8.0' | '0.7.2' = '0.8.0', backend: Backend = 'auto'): string[] {
  const m = new Machine(Uint8Array.from(v.program.map(Number)), spec, backend)
  const vm = m.vm
  m.pc = Number(v['initial-pc'])
  m.gas = big(v['initial-gas'])
  const f: string[] = []
  const regions: Array<[number, number]> = []
  let last: Exit | null = null
  v.steps.forEach((step: any, n: number) => {
    const [kind, body] = Object.entries(step)[0] as [string, any]
    switch (kind) {
      case 'run':
        last = m.run()
        break
      case 'map':
        vm.mapPages(Number(body.address), Number(body.length), body['is-writable'] ? 'write' : 'read')
        regions.push([Number(body.address), Number(body.length)])
        break
      case 'write':
        vm.writeMemory(Number(body.address), Uint8Array.from(body.contents.map(Number)), { unchecked: true })
        break
      case 'set-reg':
        vm.setRegister(Number(body.reg), big(body.value))
        break
      case 'assert': {
        const before = f.length
        if (!last) {
          f.push(`step ${n}: assert before any run`)
          break
        }
        const exit: Exit = last
        checkExit(f, exit, body.status, body['page-fault-address'], body.hostcall)
        if (body.pc !== undefined && m.pc !== Number(body.pc)) f.push(`pc: expected ${body.pc}, got ${m.pc}`)
        if (body.gas !== undefined && m.gas !== big(body.gas)) f.push(`gas: expected ${body.gas}, got ${m.gas}`)
        if (body.regs !== undefined) diffRegs(f, body.regs, vm.registers)
        if (body.memory !== undefined) diffMemory(f, expectedBytes(body.memory), nonzeroBytes(vm, regions))
        for (let i = before; i < f.length; i++) f[i] = `step ${n} (assert): ${f[i]}`
        break
      }
      default:
        f.push(`step ${n}: unknown step kind ${kind}`)
    }
  })
  if (m.program && spec === '0.8.0' && v['block-gas-costs']) {
    const ours = JSON.stringify(m.program.blockGasCosts())
    const theirs = JSON.stringify(v['block-gas-costs'].map((c: any) => ({ pc: Number(c.pc), cost: Number(c.cost) })))
    if (ours !== theirs) f.push(`block-gas-costs differ: expected ${theirs}, got ${ours}`)
  }
  vm.free()
  return f
}
