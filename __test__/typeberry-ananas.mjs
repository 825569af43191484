// A minimal typeberry `IPvmInterpreter` over @fluffylabs/anan-as 1.2.0 (its `release-mini` build,
// one WebAssembly instance per interpreter), for the typeberry block-import benchmark only.
// typeberry 0.11.0 ships its own anan-as backend, but it needs anan-as >= 1.4.0, which the npm
// registry available here does not have (its calls fail inside anan-as 1.2.0's resetJAM).
import { instantiate } from '@fluffylabs/anan-as/release-mini-inline'
import { OK, Result } from '@typeberry/lib/utils'
import { Status } from '@typeberry/lib/pvm-interface'

const fault = (address) => Result.error({ address: (address & ~0xfff) >>> 0 }, () => 'anan-as: page fault')

class AnanasLite {
  constructor(an) {
    this.an = an
    this.gas = {
      initialGas: 0n,
      get: () => an.getGasLeft(),
      set: (g) => an.setGasLeft(BigInt(g)),
      sub: (g) => {
        const left = an.getGasLeft() - BigInt(g)
        an.setGasLeft(left >= 0n ? left : 0n)
        return left < 0n
      },
      used: () => {
        const used = BigInt(this.gas.initialGas) - an.getGasLeft()
        return used < 0n ? this.gas.initialGas : used
      },
    }
    this.registers = {
      getAllEncoded: () => an.getRegisters(),
      setAllEncoded: (bytes) => an.setRegisters(Array.from(bytes)),
    }
    this.memory = {
      store: (address, bytes) => (bytes.length === 0 || an.setMemory(address, bytes) ? Result.ok(OK) : fault(address)),
      read: (address, result) => {
        if (result.length === 0) return Result.ok(OK)
        const bytes = an.getMemory(address, result.length)
        if (bytes === null) return fault(address)
        result.set(bytes)
        return Result.ok(OK)
      },
    }
  }

  resetJam(program, args, pc, gas) {
    this.gas.initialGas = gas
    this.an.resetJAM(Array.from(program), pc, BigInt(gas), Array.from(args), true)
  }

  resetGeneric(program, pc, gas) {
    this.gas.initialGas = gas
    this.an.resetGeneric(Array.from(program), new Array(104).fill(0), BigInt(gas), false)
    this.an.setNextProgramCounter(pc)
  }

  runProgram() {
    while (this.an.nSteps(2 ** 32 - 1)) {}
  }

  getStatus() {
    const s = this.an.getStatus()
    return s < 0 || s === 255 ? Status.OK : s
  }

  getPC() {
    return this.an.getProgramCounter()
  }

  getExitParam() {
    return this.an.getExitArg()
  }
}

export async function installAnanas(PvmInstanceManager) {
  PvmInstanceManager.new = async () => {
    const an = await instantiate({ env: { abort: () => { throw new Error('anan-as abort') } } })
    return new PvmInstanceManager([new AnanasLite(an)])
  }
}
