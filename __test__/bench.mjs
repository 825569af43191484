// npm run bench: libpvm (this addon) vs @fluffylabs/anan-as (AssemblyScript PVM, WebAssembly)
// from Node.js, on the same programs.
//
// Programs: bench/programs/*.jam (GP standard programs built from C, see bench/README.md) at a
// chosen size, and a hand-assembled ALU/branch loop (a generic code blob, ~10^8 instructions).
// anan-as implements GP 0.7.2, so every engine runs the GP 0.7 rewrite of each program
// (`unlikely` → `fallthrough`, bit-operation opcodes renumbered; same results, and gas = the
// number of instructions executed), and libpvm also runs the original under GP 0.8.0.
// Times cover instantiate + run + reading the output; each engine's output is checked against
// libpvm's. Reported: the median of several runs, instructions per second, libpvm ÷ anan-as
// speed ratios, and the cost of one host-call round trip.
//
// Options: --runs N (default 5), --quick (smaller sizes, 3 runs), --only NAME[,NAME],
//          --no-anan-release (skip anan-as's default `release` build, which is slowest).

import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

import { Program } from '../index.js'
import { I, aluLoop, codeBlob, standardToGp07 } from './asm.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string' },
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    'no-anan-release': { type: 'boolean', default: false },
  },
})
const RUNS = Number(opts.runs ?? (opts.quick ? 3 : 5))
const GAS = 10n ** 15n
/** anan-as status codes (dist/bin/src/trace-parse.js): 0 halt, 1 panic, 2 fault, 3 host, 4 oog. */
const ANAN_HOST = 3

// anan-as builds: `release-mini` (minimal runtime, fastest) and `release` (the package default).
const anan = {
  'release-mini': await import('@fluffylabs/anan-as/release-mini'),
  ...(opts['no-anan-release'] ? {} : { release: await import('@fluffylabs/anan-as') }),
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const now = () => process.hrtime.bigint()
const ms = (a, b) => Number(b - a) / 1e6
const u32le = (n) => {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n)
  return b
}

/** Times `f` RUNS times (after one warm-up run); returns { ms, result }. */
function timeIt(f, runs = RUNS) {
  let result = f()
  const times = []
  for (let i = 0; i < runs; i++) {
    const t0 = now()
    result = f()
    times.push(ms(t0, now()))
  }
  return { ms: median(times), result }
}

// ---- engines ----

function runLibpvm(bytes, kind, spec, args, backend = 'auto') {
  const program = kind === 'standard' ? Program.fromStandard(bytes, { spec, backend }) : Program.fromCode(bytes, { spec, backend })
  const vm = program.instantiate({ gas: GAS, args: kind === 'standard' ? args : undefined })
  const exit = vm.run()
  const out = { status: exit.status, gas: GAS - exit.gas, output: kind === 'standard' ? vm.output()?.toString('hex') : vm.registers[7].toString(16) }
  vm.free()
  return out
}

function runAnan(a, bytes, kind, args) {
  const code = Array.from(bytes)
  const program =
    kind === 'standard'
      ? a.prepareProgram(a.InputKind.SPI, a.HasMetadata.No, code, [], [], [], Array.from(args), 1024)
      : a.prepareProgram(a.InputKind.Generic, a.HasMetadata.No, code, [], [], [], [], 0)
  const id = a.pvmStart(program, false)
  const pause = a.pvmResume(id, GAS, 0, false)
  let output
  if (kind === 'standard') {
    const [ptr, len] = [pause.registers[7], pause.registers[8]]
    output = Buffer.from(a.pvmReadMemory(id, Number(ptr), Number(len)) ?? []).toString('hex')
  } else {
    output = pause.registers[7].toString(16)
  }
  const status = pause.status
  const gas = GAS - pause.gas
  a.pvmDestroy(id)
  a.__collect?.()
  return { status, gas, output }
}

// ---- workloads ----

const workloads = []
const expectedPath = `${ROOT}bench/expected.json`
if (existsSync(expectedPath)) {
  const expected = JSON.parse(readFileSync(expectedPath, 'utf8'))
  for (const [name, e] of Object.entries(expected.programs)) {
    const path = `${ROOT}${e.file}`
    if (!existsSync(path)) continue
    // Sizes: about 8 × `small` work by default (15–30 M instructions), `small` with --quick.
    // mandel's work grows with N² (an N×N image).
    const n = opts.quick ? e.small_n : e.small_n * (name === 'mandel' ? 3 : 8)
    const original = readFileSync(path)
    workloads.push({ name: `${name} (N=${n})`, kind: 'standard', bytes08: original, bytes07: standardToGp07(original), args: u32le(n) })
  }
} else {
  console.log('(bench/expected.json not found: only the hand-assembled loop runs)')
}
const loopIterations = opts.quick ? 1_000_000 : 8_333_333
const loop = aluLoop(loopIterations)
workloads.push({ name: `ALU/branch loop (${loopIterations} iterations)`, kind: 'code', bytes08: loop, bytes07: loop, args: null })

const only = opts.only?.split(',')
const selected = only ? workloads.filter((w) => only.some((o) => w.name.startsWith(o))) : workloads

// ---- run ----

const fmt = (x, d = 1) => x.toFixed(d).padStart(8)
const rate = (instructions, t) => `${fmt(instructions / t / 1e3, 1)} M/s`
console.log(`libpvm ${process.platform}-${process.arch}, Node ${process.version}; median of ${RUNS} runs (anan-as release-mini: ${Math.min(RUNS, 3)}, release: 1), each after a warm-up run\n`)
// The default backend (the recompiler on x86-64 Unix), and the interpreter for comparison.
const defaultBackend = Program.fromCode(aluLoop(1)).backend
const header = ['program', 'instructions', `libpvm 0.8.0 (${defaultBackend})`, `libpvm 0.7.2 (${defaultBackend})`, 'libpvm 0.7.2 (interpreter)', `${defaultBackend} vs interpreter`, ...Object.keys(anan).map((k) => `anan-as ${k}`), ...Object.keys(anan).map((k) => `ratio vs ${k}`)]
console.log(header.join(' | '))
const ratios = Object.fromEntries(Object.keys(anan).map((k) => [k, []]))
const backendRatios = []
for (const w of selected) {
  const l07 = timeIt(() => runLibpvm(w.bytes07, w.kind, '0.7.2', w.args))
  const l08 = timeIt(() => runLibpvm(w.bytes08, w.kind, '0.8.0', w.args))
  const instructions = Number(l07.result.gas) // GP 0.7.2: one gas per instruction
  if (l07.result.status !== 'halt' || l08.result.output !== l07.result.output) {
    throw new Error(`${w.name}: libpvm 0.8.0 and 0.7.2 disagree: ${JSON.stringify([l08.result, l07.result])}`)
  }
  const li = timeIt(() => runLibpvm(w.bytes07, w.kind, '0.7.2', w.args, 'interpreter'))
  const same = (a, b) => a.status === b.status && BigInt(a.gas) === BigInt(b.gas) && a.output === b.output
  if (!same(li.result, l07.result)) {
    throw new Error(`${w.name}: the interpreter and the ${defaultBackend} disagree: ${[li.result, l07.result].map((r) => `${r.status} ${r.gas} ${r.output}`).join(' / ')}`)
  }
  backendRatios.push(li.ms / l07.ms)
  const cells = [w.name, String(instructions), `${fmt(l08.ms)} ms ${rate(instructions, l08.ms)}`, `${fmt(l07.ms)} ms ${rate(instructions, l07.ms)}`, `${fmt(li.ms)} ms ${rate(instructions, li.ms)}`, `${(li.ms / l07.ms).toFixed(1)}x`]
  const rs = []
  for (const [k, a] of Object.entries(anan)) {
    // anan-as's default `release` build is slow (~4 M instructions/s): one timed run after the warm-up.
    const r = timeIt(() => runAnan(a, w.bytes07, w.kind, w.args), k === 'release' ? 1 : Math.min(RUNS, 3))
    if (r.result.output !== l07.result.output || BigInt(r.result.gas) !== BigInt(l07.result.gas)) {
      throw new Error(`${w.name}: anan-as ${k} disagrees with libpvm: ${JSON.stringify(r.result)} vs ${JSON.stringify(l07.result)}`)
    }
    cells.push(`${fmt(r.ms)} ms ${rate(instructions, r.ms)}`)
    rs.push(r.ms / l07.ms)
    ratios[k].push(r.ms / l07.ms)
  }
  cells.push(...rs.map((x) => `${x.toFixed(1)}x`))
  console.log(cells.join(' | '))
}
for (const [k, rs] of Object.entries(ratios)) {
  if (rs.length) console.log(`\nlibpvm (GP 0.7.2, ${defaultBackend}) is ${median(rs).toFixed(1)}x faster than anan-as ${k} (median over programs)`)
}
if (backendRatios.length) console.log(`libpvm's ${defaultBackend} is ${median(backendRatios).toFixed(1)}x faster than its interpreter from JS (median over programs)`)

// ---- host-call round trip ----

const CALLS = opts.quick ? 200_000 : 2_000_000
const withCalls = Program.fromCode(
  codeBlob([I.loadImm(1, CALLS), I.fallthrough(), I.label('l'), I.ecalli(1), I.addImm64(1, 1, -1), I.branchNeImm(1, 0, 'l'), I.halt(0)]),
)
// The same loop with `fallthrough` in place of `ecalli` (same code size and block structure).
const withoutCalls = Program.fromCode(
  codeBlob([I.loadImm(1, CALLS), I.fallthrough(), I.label('l'), I.fallthrough(), I.fallthrough(), I.fallthrough(), I.fallthrough(), I.fallthrough(), I.addImm64(1, 1, -1), I.branchNeImm(1, 0, 'l'), I.halt(0)]),
)
const empty = () => {}
const withHandler = timeIt(() => withCalls.instantiate({ gas: GAS }).run(empty).status)
const baseline = timeIt(() => withoutCalls.instantiate({ gas: GAS }).run().status)
const perCall = ((withHandler.ms - baseline.ms) * 1e6) / CALLS
console.log(`\nhost-call round trip (run(hostCall) with an empty JS callback): ${perCall.toFixed(0)} ns per call`)
console.log(`  (${CALLS} calls: ${withHandler.ms.toFixed(1)} ms, the same loop without ecalli: ${baseline.ms.toFixed(1)} ms)`)
const resume = timeIt(() => {
  const vm = withCalls.instantiate({ gas: GAS })
  let n = 0
  while (vm.run().status === 'host' && n < CALLS / 10) n++
  return n
}, 3)
console.log(`run() → 'host' → run() without a callback: ${((resume.ms * 1e6) / (CALLS / 10)).toFixed(0)} ns per host call`)
const a = anan['release-mini']
const ananCalls = timeIt(() => {
  const program = a.prepareProgram(a.InputKind.Generic, a.HasMetadata.No, Array.from(codeBlob([I.loadImm(1, CALLS / 10), I.fallthrough(), I.label('l'), I.ecalli(1), I.addImm64(1, 1, -1), I.branchNeImm(1, 0, 'l'), I.halt(0)])), [], [], [], [], 0)
  const id = a.pvmStart(program, false)
  let pause = a.pvmResume(id, GAS, 0, false)
  let n = 0
  while (pause.status === ANAN_HOST) {
    n++
    pause = a.pvmResume(id, pause.gas, pause.nextPc, false)
  }
  a.pvmDestroy(id)
  a.__collect?.()
  return n
}, 3)
console.log(`anan-as release-mini pvmResume per host call: ${((ananCalls.ms * 1e6) / (CALLS / 10)).toFixed(0)} ns (${ananCalls.result} calls)`)
