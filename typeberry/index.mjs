// libpvm as a PVM backend of typeberry (@typeberry/lib 0.11.0): an implementation of typeberry's
// `IPvmInterpreter` (packages/core/pvm-interface) on top of libpvm's Node API, running programs
// under the GP 0.7.2 rules typeberry 0.11.0 follows.
import { createRequire } from 'node:module'
import { OK, Result } from '@typeberry/lib/utils'
import { Status } from '@typeberry/lib/pvm-interface'

const require = createRequire(import.meta.url)
const { Program, PvmError } = require('../index.js')

const SPEC = '0.7.2'
const NO_OF_REGISTERS = 13
const REGISTERS_BYTES = NO_OF_REGISTERS * 8
const PAGE_MASK = ~0xfff >>> 0
const TWO_32 = 2 ** 32

// ---------------------------------------------------------------------------------------------
// Program cache: typeberry hands over the whole service blob on every invocation (each
// accumulate / refine / is-authorized call builds a new executor and calls `resetJam`). Parsing
// is cheap in libpvm but not free for a large blob, so recently used programs are kept, keyed by
// the blob's content: a cheap fingerprint (length and a hash of up to 256 sampled 32-bit words
// and the last bytes) selects a candidate, which is then compared byte for byte (one memcmp).

/** A bounded, content-keyed LRU of compiled programs. */
export class ProgramCache {
  /** @param {number} capacity the number of programs kept (0 disables caching) */
  constructor(capacity = 32) {
    this.capacity = capacity
    /** @type {Map<string, {bytes: Buffer, program: any}[]>} */
    this.map = new Map()
    this.size = 0
    this.hits = 0
    this.misses = 0
  }

  /**
   * The compiled program of `bytes`; `kind` is `'jam'` (a service blob with metadata) or
   * `'generic'` (a code blob). Throws libpvm's `PvmError` for a malformed blob.
   */
  get(bytes, kind) {
    const key = kind + fingerprint(bytes)
    const bucket = this.map.get(key)
    const view = asBuffer(bytes)
    if (bucket !== undefined) {
      for (const entry of bucket) {
        if (entry.bytes.equals(view)) {
          this.hits++
          // Refresh: move the key to the end of the Map's insertion order.
          this.map.delete(key)
          this.map.set(key, bucket)
          return entry.program
        }
      }
    }
    this.misses++
    const program =
      kind === 'jam'
        ? Program.fromStandard(view, { spec: SPEC, metadata: true })
        : Program.fromCode(view, { spec: SPEC })
    if (this.capacity > 0) {
      // The cache keeps its own copy: the caller may reuse its buffer.
      const entry = { bytes: Buffer.from(view), program }
      if (bucket !== undefined) {
        bucket.push(entry)
      } else {
        this.map.set(key, [entry])
      }
      this.size++
      while (this.size > this.capacity) {
        const [oldestKey, oldest] = this.map.entries().next().value
        oldest.shift()
        this.size--
        if (oldest.length === 0) this.map.delete(oldestKey)
      }
    }
    return program
  }

  clear() {
    this.map.clear()
    this.size = 0
  }
}

function asBuffer(bytes) {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** Length and FNV-1a over up to 256 evenly spaced 32-bit words and the last 8 bytes. */
function fingerprint(bytes) {
  const n = bytes.length
  let h = 0x811c9dc5
  const step = Math.max(1, Math.floor(n / 4 / 256)) * 4
  for (let i = 0; i + 4 <= n; i += step) {
    const w = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24)
    h = Math.imul(h ^ w, 0x01000193)
  }
  for (let i = Math.max(0, n - 8); i < n; i++) h = Math.imul(h ^ bytes[i], 0x01000193)
  return `${n}:${(h >>> 0).toString(36)}`
}

/** The process-wide program cache the interpreters share (32 programs). */
export const programCache = new ProgramCache(32)

// ---------------------------------------------------------------------------------------------

function pageFault(address) {
  return Result.error({ address: (address & PAGE_MASK) >>> 0 }, () => `Page fault at 0x${address.toString(16)}`)
}

/** The lowest address of `[address, address + length)` the guest could not access. */
function faultOf(error, address) {
  if (error instanceof PvmError && error.code === 'MEMORY_FAULT') {
    return error.address ?? address
  }
  throw error
}

/** typeberry's `IMemory`: checked reads and writes returning a `PageFault` instead of throwing. */
class LibpvmMemory {
  constructor(owner) {
    this.owner = owner
  }

  store(address, bytes) {
    if (bytes.length === 0) return Result.ok(OK)
    const vm = this.owner.vm
    if (vm === null) return pageFault(address)
    const end = address + bytes.length
    try {
      if (end > TWO_32) {
        // Wraps around 2^32 (as typeberry's own memory does): the part from 0 is never writable
        // (addresses below 0x10000 are inaccessible), so this faults; check the upper part first.
        vm.writeMemory(address, bytes.subarray(0, TWO_32 - address))
        return pageFault(0)
      }
      vm.writeMemory(address, bytes)
      return Result.ok(OK)
    } catch (e) {
      return pageFault(faultOf(e, address))
    }
  }

  read(address, result) {
    if (result.length === 0) return Result.ok(OK)
    const vm = this.owner.vm
    if (vm === null) return pageFault(address)
    const end = address + result.length
    try {
      if (end > TWO_32) {
        vm.readMemory(address, TWO_32 - address)
        return pageFault(0)
      }
      result.set(vm.readMemory(address, result.length))
      return Result.ok(OK)
    } catch (e) {
      return pageFault(faultOf(e, address))
    }
  }
}

/** typeberry's `IRegisters`: the VM's 13 registers as a zero-copy little-endian byte view. */
class LibpvmRegisters {
  constructor(owner) {
    this.owner = owner
    /** Used before any program is loaded. */
    this.empty = new Uint8Array(REGISTERS_BYTES)
  }

  getAllEncoded() {
    return this.owner.registerBytes ?? this.empty
  }

  setAllEncoded(bytes) {
    if (bytes.length !== REGISTERS_BYTES) {
      throw new Error(`Incorrect size of input registers. Got: ${bytes.length}, need: ${REGISTERS_BYTES}`)
    }
    const target = this.getAllEncoded()
    // typeberry usually hands back the very view it got from getAllEncoded(): nothing to copy.
    if (bytes.buffer === target.buffer && bytes.byteOffset === target.byteOffset) return
    target.set(bytes)
  }
}

/** typeberry's `IGasCounter` over the VM's gas. */
class LibpvmGas {
  constructor(owner) {
    this.owner = owner
    this.initialGas = 0n
  }

  get() {
    const vm = this.owner.vm
    return vm === null ? 0n : vm.gas
  }

  set(g) {
    const vm = this.owner.vm
    if (vm !== null) vm.gas = BigInt(g)
  }

  sub(g) {
    const vm = this.owner.vm
    if (vm === null) return true
    const left = vm.gas - BigInt(g)
    if (left >= 0n) {
      vm.gas = left
      return false
    }
    vm.gas = 0n
    return true
  }

  used() {
    const used = BigInt(this.initialGas) - this.get()
    return used < 0n ? this.initialGas : used
  }
}

const STATUS = {
  halt: Status.HALT,
  panic: Status.PANIC,
  fault: Status.FAULT,
  host: Status.HOST,
  oog: Status.OOG,
  running: Status.OK,
}

/**
 * libpvm as typeberry's `IPvmInterpreter`. One VM at a time: `resetJam` / `resetGeneric` load a
 * program (from the shared `programCache`) and create a fresh instance; `runProgram` runs until
 * the next host call (status `HOST`, `getExitParam()` = the host-call index) or the end;
 * calling it again after a host call continues after the `ecalli`.
 */
export class LibpvmInterpreter {
  /** @param {{ cache?: ProgramCache }} [options] */
  constructor(options = {}) {
    this.cache = options.cache ?? programCache
    this.vm = null
    this.registerBytes = null
    this.status = Status.OK
    this.exitParam = null
    this.gas = new LibpvmGas(this)
    this.registers = new LibpvmRegisters(this)
    this.memory = new LibpvmMemory(this)
  }

  static async new(options) {
    return new LibpvmInterpreter(options)
  }

  resetJam(program, args, pc, gas) {
    this.load(this.cache.get(program, 'jam'), { gas: BigInt(gas), pc, args }, gas)
  }

  resetGeneric(rawProgram, pc, gas) {
    this.load(this.cache.get(rawProgram, 'generic'), { gas: BigInt(gas), pc }, gas)
  }

  load(program, options, gas) {
    if (this.vm !== null) this.vm.free()
    this.vm = null
    this.registerBytes = null
    const vm = program.instantiate(options)
    const regs = vm.registers
    this.vm = vm
    this.registerBytes = new Uint8Array(regs.buffer, regs.byteOffset, REGISTERS_BYTES)
    this.gas.initialGas = gas
    this.status = Status.OK
    this.exitParam = null
  }

  runProgram() {
    const vm = this.vm
    if (vm === null) throw new Error('libpvm: runProgram() before resetJam()/resetGeneric()')
    const exit = vm.run()
    this.status = STATUS[exit.status]
    if (exit.status === 'host') {
      this.exitParam = exit.hostCallId
    } else if (exit.status === 'fault') {
      this.exitParam = exit.faultAddress
    } else {
      this.exitParam = null
      // GP Ψ: running out of gas consumes all of it (typeberry's interpreter leaves 0 too).
      if (exit.status === 'oog') vm.gas = 0n
    }
  }

  getStatus() {
    return this.status
  }

  getPC() {
    return this.vm === null ? 0 : this.vm.pc
  }

  getExitParam() {
    return this.exitParam
  }

  /** Frees the current VM now (otherwise the next reset or the garbage collector does). */
  free() {
    if (this.vm !== null) this.vm.free()
    this.vm = null
    this.registerBytes = null
  }
}

/**
 * Makes typeberry run every PVM invocation on libpvm: replaces `PvmInstanceManager.new` (the
 * closed switch over typeberry's `PvmBackend` enum) with a factory of `LibpvmInterpreter`s,
 * whatever backend typeberry is configured with. Pass the class from
 * `@typeberry/lib/pvm-host-calls`. Returns a function that restores the original factory.
 */
export function installLibpvm(PvmInstanceManager, options) {
  const original = PvmInstanceManager.new
  PvmInstanceManager.new = async () => {
    const manager = new PvmInstanceManager([new LibpvmInterpreter(options)])
    // typeberry releases the instance once an invocation's result (registers, output) has been
    // copied out; the VM's memory can go then rather than at the next garbage collection.
    const release = manager.releaseInstance
    if (typeof release === 'function') {
      manager.releaseInstance = function (pvm) {
        if (pvm instanceof LibpvmInterpreter) pvm.free()
        return release.call(this, pvm)
      }
    }
    return manager
  }
  return () => {
    PvmInstanceManager.new = original
  }
}
