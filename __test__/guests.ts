// Programs shared by the inner-PVM, trace and JIP-6 tests.
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

import { expect } from 'vitest'

import { Program, PvmError, type Pvm } from '../index.js'
import { loadVector } from './vectors'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))
export const HOSTCALLS = `${ROOT}examples/guests/hostcalls.jam`
/** The CLI, if built (`cargo build --release -p pvm-cli`; CI builds it before the Node tests). */
export const PVM_CLI = `${ROOT}target/release/pvm`
export const hasCli = () => existsSync(PVM_CLI)

/**
 * examples/c/refine_guest.h: a standard program that creates an inner machine, pages, pokes,
 * invokes (twice: the inner program makes host call 77 once), peeks, expunges and halts with the
 * u64 142; with its initial gas, the gas left when libpvm answers every host call, and the host
 * calls it makes in order.
 */
export function refineGuest(): { bytes: Uint8Array; gas: bigint; gasLeft: bigint; calls: number[] } {
  const h = readFileSync(`${ROOT}examples/c/refine_guest.h`, 'utf8')
  const body = h.slice(h.indexOf('REFINE_GUEST[] = {'), h.indexOf('};'))
  const bytes = Uint8Array.from([...body.matchAll(/0x([0-9a-fA-F]{2})/g)].map((m) => parseInt(m[1], 16)))
  const define = (name: string) => {
    const m = new RegExp(`^#define ${name} (.+)$`, 'm').exec(h)
    if (!m) throw new Error(`refine_guest.h has no ${name}`)
    return m[1]
  }
  return {
    bytes,
    gas: BigInt(define('REFINE_GUEST_GAS').replace(/u$/, '')),
    gasLeft: BigInt(define('REFINE_GUEST_GAS_LEFT').replace(/u$/, '')),
    calls: JSON.parse(define('REFINE_GUEST_CALLS').replace('{', '[').replace('}', ']')),
  }
}

/**
 * A GP 0.8 conformance vector's machine before its first `run` step, set up the way `pvm trace`
 * does (crates/pvm-cli/src/vectors.rs `initial_instance`): the map, write and set-reg steps, then
 * the vector's pc and gas.
 */
export function vectorVm(path: string): Pvm {
  const v = loadVector(path)
  const vm = Program.fromCode(Uint8Array.from(v.program.map(Number))).instantiate({ gas: 0n })
  for (const step of v.steps) {
    const [kind, body] = Object.entries(step)[0] as [string, any]
    if (kind === 'run') break
    if (kind === 'map') vm.mapPages(Number(body.address), Number(body.length), body['is-writable'] ? 'write' : 'read')
    else if (kind === 'write') vm.writeMemory(Number(body.address), Uint8Array.from(body.contents.map(Number)), { unchecked: true })
    else if (kind === 'set-reg') vm.setRegister(Number(body.reg), BigInt(body.value))
  }
  vm.pc = Number(v['initial-pc'])
  vm.gas = BigInt(v['initial-gas'])
  return vm
}

export const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')

/** Calls `f` and returns the PvmError it throws (failing the test if it throws anything else). */
export function pvmError(f: () => unknown): PvmError {
  try {
    f()
  } catch (e) {
    expect(e).toBeInstanceOf(PvmError)
    return e as PvmError
  }
  throw new Error('expected a PvmError')
}
