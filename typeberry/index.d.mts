// Typings of libpvm/typeberry: libpvm as a PVM backend of typeberry (@typeberry/lib >= 0.11.0).
import type { Program } from '../index.js'
import type { Gas, IGasCounter, IMemory, IPvmInterpreter, IRegisters, Status } from '@typeberry/lib/pvm-interface'
import type { U32 } from '@typeberry/lib/numbers'

/** A bounded, content-keyed LRU of compiled programs (service blobs and code blobs). */
export declare class ProgramCache {
  constructor(capacity?: number)
  readonly capacity: number
  /** Programs currently kept. */
  readonly size: number
  /** Lookups answered from the cache / that parsed the blob. */
  readonly hits: number
  readonly misses: number
  /** The compiled GP 0.7.2 program of `bytes` (`'jam'`: a service blob with metadata). */
  get(bytes: Uint8Array, kind: 'jam' | 'generic'): Program
  clear(): void
}

/** The cache every `LibpvmInterpreter` uses unless given another one (32 programs). */
export declare const programCache: ProgramCache

export interface LibpvmInterpreterOptions {
  cache?: ProgramCache
}

/** libpvm as typeberry's `IPvmInterpreter` (GP 0.7.2). */
export declare class LibpvmInterpreter implements IPvmInterpreter {
  constructor(options?: LibpvmInterpreterOptions)
  static new(options?: LibpvmInterpreterOptions): Promise<LibpvmInterpreter>
  readonly gas: IGasCounter
  readonly registers: IRegisters
  readonly memory: IMemory
  resetJam(program: Uint8Array, args: Uint8Array, pc: number, gas: Gas): void
  resetGeneric(rawProgram: Uint8Array, pc: number, gas: Gas): void
  runProgram(): void
  getStatus(): Status
  getPC(): number
  getExitParam(): U32 | null
  /** Frees the current VM now. */
  free(): void
}

/**
 * Replaces `PvmInstanceManager.new` (from `@typeberry/lib/pvm-host-calls`) so that every PVM
 * invocation typeberry makes runs on a `LibpvmInterpreter`. Returns a function restoring it.
 */
export declare function installLibpvm(
  PvmInstanceManager: { new: (...args: any[]) => Promise<unknown> },
  options?: LibpvmInterpreterOptions,
): () => void
