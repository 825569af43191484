// The page's script (bundled by build.mjs into dist/main.js): loads libpvm's wasm build, runs a
// standard program with host calls answered here, shows the result and a per-instruction trace,
// then times the same benchmark guest on libpvm (wasm) and on anan-as (wasm).
import './buffer-global.mjs'

import * as anan from '@fluffylabs/anan-as/release-mini'
import { Program } from 'libpvm'

import { standardToGp07 } from '../../__test__/asm.mjs'

const $ = (id) => document.getElementById(id)
const fetchBytes = async (path) => new Uint8Array(await (await fetch(path)).arrayBuffer())

async function main() {
  const bytes = await fetchBytes('./dist/guests/hostcalls.jam')
  const program = Program.fromStandard(bytes)

  // Host calls: get_number (1001) returns 100, 200, 300; log (100) prints the guest's message.
  const host = () => {
    let next = 0n
    const log = []
    let calls = 0
    const handler = (id, vm) => {
      calls++
      const r = vm.registers
      if (id === 1001) r[7] = next += 100n
      else if (id === 100) log.push(vm.readMemory(Number(r[7]), Number(r[8])).toString())
      else return 'panic'
    }
    return { handler, log, calls: () => calls }
  }

  const h = host()
  const vm = program.instantiate({ gas: 1_000_000n })
  const exit = vm.run(h.handler)
  $('exit').textContent = exit.status
  $('output').textContent = vm.output()?.toString() ?? ''
  $('gas').textContent = String(exit.gas)
  $('hostcalls').textContent = String(h.calls())
  $('log').textContent = h.log.join('\n')
  vm.free()

  // The same run traced: one line per instruction (`pvm trace`'s format).
  const lines = []
  const traced = program.instantiate({ gas: 1_000_000n })
  const h2 = host()
  traced.run(h2.handler, { trace: (line) => lines.push(line) })
  traced.free()
  $('trace-count').textContent = String(lines.length)
  $('trace').textContent = lines.join('\n')

  $('status').textContent = 'benchmarking…'
  await new Promise((r) => setTimeout(r, 0))
  const results = bench(await fetchBytes('./dist/guests/sieve.jam'))
  for (const r of results.rows) {
    const tr = document.createElement('tr')
    tr.className = 'engine'
    for (const cell of [r.engine, r.instructions, r.ms.toFixed(1), (r.instructions / r.ms / 1e3).toFixed(1)]) {
      const td = document.createElement(cell === r.engine ? 'th' : 'td')
      td.textContent = String(cell)
      tr.append(td)
    }
    $('bench').append(tr)
  }
  $('ratio').textContent = `libpvm (wasm) is ${results.ratio.toFixed(2)}x the speed of anan-as release-mini (wasm) on this guest`
  $('ratio').dataset.ratio = String(results.ratio)
  $('status').textContent = 'done'
}

const GAS = 10n ** 12n
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
function timeIt(f) {
  let result = f()
  const times = []
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now()
    result = f()
    times.push(performance.now() - t0)
  }
  return { ms: median(times), result }
}

function bench(sieve) {
  const args = new Uint8Array(new Uint32Array([400_000]).buffer)
  const gp07 = standardToGp07(sieve)
  const program = Program.fromStandard(gp07, { spec: '0.7.2' })
  const lib = timeIt(() => {
    const vm = program.instantiate({ gas: GAS, args })
    const exit = vm.run()
    const out = { status: exit.status, gas: GAS - exit.gas, output: Buffer.from(vm.output()).toString('hex') }
    vm.free()
    return out
  })
  const an = timeIt(() => {
    const p = anan.prepareProgram(anan.InputKind.SPI, anan.HasMetadata.No, Array.from(gp07), [], [], [], Array.from(args), 1024)
    const id = anan.pvmStart(p, false)
    const pause = anan.pvmResume(id, GAS, 0, false)
    const out = Buffer.from(anan.pvmReadMemory(id, Number(pause.registers[7]), Number(pause.registers[8])) ?? []).toString('hex')
    const gas = GAS - BigInt(pause.gas)
    anan.pvmDestroy(id)
    anan.__collect?.()
    return { gas, output: out }
  })
  if (lib.result.status !== 'halt' || lib.result.output !== an.result.output || lib.result.gas !== an.result.gas) {
    throw new Error(`libpvm and anan-as disagree: ${JSON.stringify([lib.result, an.result], (_, v) => (typeof v === 'bigint' ? String(v) : v))}`)
  }
  const instructions = Number(lib.result.gas) // GP 0.7.2: one gas per instruction
  return {
    rows: [
      { engine: 'libpvm (wasm)', instructions, ms: lib.ms },
      { engine: 'anan-as release-mini (wasm)', instructions, ms: an.ms },
    ],
    ratio: an.ms / lib.ms,
  }
}

main().catch((e) => {
  $('status').textContent = `error: ${e?.stack ?? e}`
  console.error(e)
})
