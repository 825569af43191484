// Tracing: vm.pvmHash(), vm.dumpState() and run(hostCall, { trace }), compared with `pvm trace`.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { describe, expect, it } from 'vitest'

import { Program, PvmError, type Pvm } from '../index.js'
import { I, codeBlob } from './asm.mjs'
import { HOSTCALLS, PVM_CLI, ROOT, hasCli, refineGuest, vectorVm } from './guests'
import { VECTORS, vectorFiles } from './vectors'

const INST_ADD_64 = join(VECTORS, 'gp-0.8/programs/inst_add_64.json')
/** `pvm trace tests/vectors/gp-0.8/programs/inst_add_64.json`: the final pvmHash. */
const INST_ADD_64_HASH = 'fbe7bba0b6707be1e9e514fd45db996956caea70cf341541978bd412fd04fa88'
const PAGE = 0x20000

/** blake2b-256 by Python's hashlib, or null without python3. */
function pythonBlake2b256(data: Buffer): string | null {
  const r = spawnSync(
    'python3',
    ['-c', 'import hashlib,sys; print(hashlib.blake2b(sys.stdin.buffer.read(), digest_size=32).hexdigest())'],
    { input: data, encoding: 'utf8' },
  )
  return r.status === 0 ? r.stdout.trim() : null
}

/** The preimage that dumpState() spells out: the hex after each colon, spaces removed. */
function preimageOf(dump: string): Buffer {
  const hexText = dump
    .trimEnd()
    .split('\n')
    .map((l) => l.slice(l.indexOf(':') + 1).replace(/\s/g, ''))
    .join('')
  return Buffer.from(hexText, 'hex')
}

function traced(vm: Pvm, handler: Parameters<Pvm['run']>[0], options: { traceHashEvery?: number; builtins?: boolean } = {}) {
  const lines: string[] = []
  const exit = vm.run(handler, { ...options, trace: (line) => void lines.push(line) })
  return { exit, lines }
}

const LINE = /^(\d+): PC (\d+) ([A-Z0-9_]+) g=(-?\d+)( pvmHash=0x[0-9a-f]{64})? reg="\[(\d+(?: \d+){12})\]"$/

describe('pvmHash and dumpState', () => {
  it("match `pvm trace`'s final hash for inst_add_64", () => {
    const vm = vectorVm(INST_ADD_64)
    expect(vm.run().status).toBe('panic')
    const hash = vm.pvmHash()
    expect(Buffer.isBuffer(hash)).toBe(true)
    expect(hash.length).toBe(32)
    expect(hash.toString('hex')).toBe(INST_ADD_64_HASH)
  })

  it('hash the preimage that dumpState spells out (checked with Python hashlib)', () => {
    const vm = Program.fromStandard(readFileSync(HOSTCALLS)).instantiate({ gas: 1_000_000n })
    vm.run((id, v) => {
      if (id === 1001) v.registers[7] = 100n
    })
    const dump = vm.dumpState()
    const lines = dump.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^regs\+gas: [0-9a-f]{224}$/)
    for (const l of lines.slice(1)) expect(l).toMatch(/^page 0x[0-9a-f]{5}: [0-9a-f]{8} [0-9a-f]{8192}$/)
    const preimage = preimageOf(dump)
    expect(preimage.length).toBe(112 + (lines.length - 1) * 4100)
    // The preimage starts with the registers and gas, little-endian.
    expect(preimage.readBigUInt64LE(7 * 8)).toBe(vm.registers[7])
    expect(preimage.readBigInt64LE(13 * 8)).toBe(vm.gas)
    const python = pythonBlake2b256(preimage)
    if (python !== null) expect(vm.pvmHash().toString('hex')).toBe(python)
  })

  it('hashes readable non-zero pages only (PVM hash v1)', () => {
    const vm = Program.fromCode(codeBlob([I.trap()])).instantiate({ gas: 5n })
    const empty = vm.pvmHash().toString('hex')
    expect(vm.dumpState().trimEnd().split('\n')).toHaveLength(1)
    vm.mapPages(PAGE, 8192, 'write') // zero pages: not hashed
    expect(vm.pvmHash().toString('hex')).toBe(empty)
    vm.writeMemory(PAGE + 4096, Uint8Array.from([1]))
    const one = vm.pvmHash().toString('hex')
    expect(one).not.toBe(empty)
    expect(vm.dumpState()).toMatch(/^page 0x00021: 21000000 01/m)
    vm.mapPages(PAGE + 4096, 4096, 'none') // inaccessible: not hashed, whatever it holds
    expect(vm.pvmHash().toString('hex')).toBe(empty)
    vm.gas = 6n
    expect(vm.pvmHash().toString('hex')).not.toBe(empty)
    vm.free()
    expect(() => vm.pvmHash()).toThrow(PvmError)
  })
})

describe('traced runs', () => {
  /** ecalli 7; r7 += 1; ecalli 8; halt (2 instructions). */
  const twoCalls = () => Program.fromCode(codeBlob([I.ecalli(7), I.addImm64(7, 7, 1), I.ecalli(8), I.halt(0)]))

  it('give one line per instruction, ECALLI lines and an EXIT line', () => {
    const vm = twoCalls().instantiate({ gas: 1000n })
    const { exit, lines } = traced(vm, () => undefined)
    expect(exit.status).toBe('halt')
    // 5 instructions: ecalli, add, ecalli, load_imm, jump_ind (the halting one has no line).
    expect(lines).toHaveLength(4 + 2 + 1)
    expect(lines.map((l) => l.replace(/ (reg|pvmHash)=.*$/, ''))).toEqual([
      '1: PC 0 ECALLI g=898',
      'ECALLI 7 g=898',
      '2: PC 5 ADD_IMM_64 g=898',
      '3: PC 11 ECALLI g=898',
      'ECALLI 8 g=898',
      '4: PC 16 LOAD_IMM g=898',
      'EXIT halt pc=22 g=898',
    ])
    for (const l of [lines[0], lines[2], lines[3], lines[5]]) expect(l).toMatch(LINE)
    expect(lines[2]).toMatch(/ reg="\[0 0 0 0 0 0 0 1 0 0 0 0 0\]"$/)
    expect(lines[6]).toBe(`EXIT halt pc=22 g=898 pvmHash=0x${vm.pvmHash().toString('hex')} steps=5`)
    // No hashes by default; the same exit as an untraced run.
    expect(lines.filter((l) => l.includes('pvmHash'))).toHaveLength(1)
    expect(twoCalls().instantiate({ gas: 1000n }).run(() => undefined)).toEqual(exit)
  })

  it('hash every N-th instruction line and every ECALLI line with traceHashEvery', () => {
    const { lines } = traced(twoCalls().instantiate({ gas: 1000n }), () => undefined, { traceHashEvery: 2 })
    expect(lines.map((l) => l.includes('pvmHash='))).toEqual([false, true, true, false, true, true, true])
  })

  it('stop at host calls without a handler and continue the numbering', () => {
    const vm = twoCalls().instantiate({ gas: 1000n })
    const first = traced(vm, null)
    expect(first.exit).toMatchObject({ status: 'host', hostCallId: 7 })
    expect(first.lines).toEqual([expect.stringMatching(/^1: PC 0 ECALLI /), expect.stringMatching(/^EXIT host=7 pc=0 g=898 pvmHash=0x[0-9a-f]{64} steps=1$/)])
    const second = traced(vm, null)
    expect(second.lines[0]).toMatch(/^2: PC 5 ADD_IMM_64 /)
    expect(second.lines.at(-1)).toMatch(/^EXIT host=8 pc=11 .* steps=3$/)
  })

  it('end with the outcome a handler returns', () => {
    const { exit, lines } = traced(twoCalls().instantiate({ gas: 1000n }), () => 'panic')
    expect(exit.status).toBe('panic')
    expect(lines).toHaveLength(2)
    expect(lines[1]).toMatch(/^EXIT panic pc=0 g=898 /)
  })

  it('pass what the sink throws through and refuse re-entrant calls from the sink', () => {
    const vm = twoCalls().instantiate({ gas: 1000n })
    const boom = new Error('sink')
    expect(() => vm.run(null, { trace: () => { throw boom } })).toThrow(boom)
    expect(vm.status).toBe('host') // the first instruction was the ecalli
    const errors: PvmError[] = []
    vm.run(() => undefined, {
      trace() {
        try {
          this.run()
        } catch (e) {
          errors.push(e as PvmError)
        }
      },
    })
    expect(errors.length).toBeGreaterThan(0)
    expect(errors[0].code).toBe('REENTRANT_CALL')
    expect(errors[0].message).toMatch(/trace sink/)
    expect(() => vm.run(null, { trace: 'x' as any })).toThrow(/options.trace must be a function/)
    expect(() => vm.run(null, { traceHashEvery: -1, trace: () => {} })).toThrow(PvmError)
  })

  it('trace the inner-PVM guest with built-in host calls', () => {
    const g = refineGuest()
    const { exit, lines } = traced(Program.fromStandard(g.bytes).instantiate({ gas: g.gas }), null, { builtins: true })
    expect(exit.gas).toBe(g.gasLeft)
    expect(lines.filter((l) => l.startsWith('ECALLI ')).map((l) => Number(l.split(' ')[1]))).toEqual(g.calls)
  })
})

type TraceCase = {
  name: string
  kind: 'vector' | 'standard' | 'refine'
  file: string
  cli: string[]
  gas?: string
  args?: string
  host?: 'continue' | 'builtins'
  hashEvery: number
  lines: string[]
}
const FIXTURE: { traces: TraceCase[] } = JSON.parse(readFileSync(join(ROOT, '__test__/fixtures/traces.json'), 'utf8'))

/** Runs a fixture case through the JavaScript API. */
function jsTrace(c: TraceCase): string[] {
  let vm: Pvm
  if (c.kind === 'vector') vm = vectorVm(join(ROOT, c.file))
  else {
    const bytes = c.kind === 'refine' ? refineGuest().bytes : readFileSync(join(ROOT, c.file))
    vm = Program.fromStandard(bytes).instantiate({ gas: BigInt(c.gas!), args: Buffer.from(c.args ?? '', 'hex') })
  }
  const { lines } = traced(vm, c.host === 'continue' ? () => undefined : null, {
    traceHashEvery: c.hashEvery,
    builtins: c.host === 'builtins',
  })
  vm.free()
  return lines
}

/** `pvm trace` output without the vector's EXPECTED line. */
function cliTrace(args: string[], file: string): string[] {
  const out = execFileSync(PVM_CLI, ['trace', ...args, file], { encoding: 'utf8', maxBuffer: 1 << 28 })
  return out
    .trimEnd()
    .split('\n')
    .filter((l) => !l.startsWith('EXPECTED'))
}

describe('traces equal `pvm trace`', () => {
  it.each(FIXTURE.traces.map((c) => [c.name, c] as const))('%s (checked-in pvm trace output)', (_name, c) => {
    expect(jsTrace(c)).toEqual(c.lines)
  })

  it.runIf(hasCli())('the checked-in output is what the current CLI prints', () => {
    const dir = mkdtempSync(join(tmpdir(), 'libpvm-trace-'))
    try {
      const refine = join(dir, 'refine_guest.bin')
      writeFileSync(refine, refineGuest().bytes)
      for (const c of FIXTURE.traces) {
        expect(cliTrace(c.cli, c.kind === 'refine' ? refine : join(ROOT, c.file)), c.name).toEqual(c.lines)
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it.runIf(hasCli())(
    'for every GP 0.8.0 conformance vector (live CLI)',
    () => {
      const files = vectorFiles(join(VECTORS, 'gp-0.8/programs'))
      let compared = 0
      for (const file of files) {
        const lines = jsTrace({ name: file, kind: 'vector', file: file.slice(ROOT.length), cli: [], hashEvery: 1, lines: [] })
        expect(lines, file).toEqual(cliTrace([], file))
        compared++
      }
      expect(compared).toBe(363)
    },
    120_000,
  )
})
