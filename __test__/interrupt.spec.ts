// Interrupts from JavaScript (issue #12 item 4): `vm.interrupt()`, `interruptVm(token)` from
// another worker, and `worker.terminate()` of a worker stuck in a long run.
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'

import { interruptVm, Program, type Pvm } from '../index.js'
import { aluLoop, codeBlob, I } from './asm.mjs'
import { ROOT, hex } from './guests.js'

const INDEX = JSON.stringify(`${ROOT}index.js`)
/** `r7 += 1` forever. */
const ENDLESS = codeBlob([I.label('l'), I.addImm64(7, 7, 1), I.jump('l')])

/** Starts a worker that loads `code`, posts `{ token }`, then runs with `gas` and posts the exit. */
function runInWorker(code: Uint8Array, gas: bigint, spec = '0.8.0') {
  const source = `
    const { parentPort, workerData } = require('node:worker_threads')
    const { Program } = require(${INDEX})
    const vm = Program.fromCode(workerData.code, { spec: workerData.spec }).instantiate({ gas: workerData.gas })
    parentPort.postMessage({ token: vm.interruptToken() })
    const exit = vm.run()
    parentPort.postMessage({ status: exit.status, r7: vm.registers[7], gas: vm.gas })
    const again = vm.run()
    parentPort.postMessage({ status: again.status })
  `
  const worker = new Worker(source, { eval: true, workerData: { code, gas, spec } })
  const messages: unknown[] = []
  const waiters: Array<() => void> = []
  worker.on('message', (m) => {
    messages.push(m)
    waiters.splice(0).forEach((w) => w())
  })
  const errors: unknown[] = []
  worker.on('error', (e) => errors.push(e))
  const next = async (): Promise<any> => {
    while (messages.length === 0) {
      if (errors.length) throw errors[0]
      await new Promise<void>((r) => {
        waiters.push(r)
        setTimeout(r, 100)
      })
    }
    return messages.shift()
  }
  return { worker, next }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function finalState(vm: Pvm) {
  return { regs: [...vm.registers], gas: vm.gas, pc: vm.pc, status: vm.status, hash: hex(vm.pvmHash()) }
}

describe('interrupts', () => {
  for (const spec of ['0.8.0', '0.7.2']) {
    it(`interruptVm(token) from the main thread stops an endless loop in a worker (GP ${spec})`, async () => {
      const { worker, next } = runInWorker(ENDLESS, 1n << 40n, spec)
      try {
        const { token } = await next()
        expect(typeof token).toBe('number')
        await sleep(50)
        const t0 = performance.now()
        expect(interruptVm(token)).toBe(true)
        const exit = await next()
        const elapsed = performance.now() - t0
        expect(exit.status).toBe('interrupted')
        expect(exit.r7).toBeGreaterThan(0n)
        expect(exit.gas).toBeLessThan(1n << 40n)
        expect(elapsed).toBeLessThan(2000)
        // The run continues; a second interrupt stops it again.
        await sleep(20)
        expect(interruptVm(BigInt(token))).toBe(true)
        expect((await next()).status).toBe('interrupted')
      } finally {
        await worker.terminate()
      }
    })
  }

  it('worker.terminate() of a worker stuck in a 2^40-gas loop returns promptly', async () => {
    const { worker, next } = runInWorker(ENDLESS, 1n << 40n)
    const { token } = await next()
    await sleep(100)
    const t0 = performance.now()
    await worker.terminate()
    expect(performance.now() - t0).toBeLessThan(5000)
    // The VM was collected with its worker (or at least cannot crash anything).
    await sleep(50)
    expect(typeof interruptVm(token)).toBe('boolean')
  })

  it('stale and bogus tokens return false', () => {
    const vm = Program.fromCode(ENDLESS).instantiate({ gas: 10n })
    const token = vm.interruptToken()
    expect(token).toBeGreaterThan(0)
    expect(vm.interruptToken()).toBe(token)
    vm.free()
    expect(interruptVm(token)).toBe(false)
    expect(interruptVm(0)).toBe(false)
    expect(interruptVm(2 ** 53 - 1)).toBe(false)
    expect(interruptVm(-1)).toBe(false)
    expect(interruptVm(1.5)).toBe(false)
    expect(interruptVm(1n << 70n)).toBe(false)
    expect(() => interruptVm('1' as any)).toThrow(/token must be a number or bigint/)
    expect(() => vm.interrupt()).toThrow(/freed/)
  })

  it('vm.interrupt() from a host-call handler, and a resumed run ends in the uninterrupted state', () => {
    const code = codeBlob([
      I.loadImm(1, 1000),
      I.fallthrough(),
      I.label('l'),
      I.ecalli(5),
      I.addImm64(7, 7, 3),
      I.mulImm64(8, 7, 7),
      I.addImm64(1, 1, -1),
      I.branchNeImm(1, 0, 'l'),
      I.halt(0),
    ])
    for (const spec of ['0.8.0', '0.7.2'] as const) {
      const reference = Program.fromCode(code, { spec }).instantiate({ gas: 1_000_000n })
      let calls = 0
      expect(reference.run(() => void calls++).status).toBe('halt')
      const expected = finalState(reference)

      const vm = Program.fromCode(code, { spec }).instantiate({ gas: 1_000_000n })
      let interrupts = 0
      let n = 0
      const handler = (_id: number, v: Pvm) => {
        if (n++ % 7 === 0) v.interrupt()
      }
      let exit = vm.run(handler)
      while (exit.status === 'interrupted') {
        interrupts++
        expect(vm.status).toBe('interrupted')
        exit = vm.run(handler)
      }
      expect(n).toBe(calls)
      expect(interrupts).toBe(Math.ceil(calls / 7))
      expect(finalState(vm)).toEqual(expected)
    }
  })

  it('an interrupt asked for between runs stops the next run; steps ignore it', () => {
    const vm = Program.fromCode(aluLoop(100)).instantiate({ gas: 1_000_000n })
    vm.interrupt()
    expect(vm.step(3).status).toBe('running')
    const exit = vm.run()
    expect(exit.status).toBe('interrupted')
    expect(vm.run().status).toBe('halt')
  })

  it('interrupts from another worker while the main thread runs: the final state is exact', async () => {
    const iterations = 3_000_000
    const program = Program.fromCode(aluLoop(iterations))
    const reference = program.instantiate({ gas: 1n << 40n })
    expect(reference.run().status).toBe('halt')
    const expected = finalState(reference)

    const vm = program.instantiate({ gas: 1n << 40n })
    const shared = new Int32Array(new SharedArrayBuffer(4))
    // The worker interrupts the VM every 200 µs until told to stop.
    const worker = new Worker(
      `
      const { workerData } = require('node:worker_threads')
      const { interruptVm } = require(${INDEX})
      const flag = new Int32Array(workerData.shared)
      Atomics.store(flag, 0, 1)
      while (Atomics.load(flag, 0) === 1) {
        interruptVm(workerData.token)
        Atomics.wait(flag, 0, 1, 0.2)
      }
    `,
      { eval: true, workerData: { shared: shared.buffer, token: vm.interruptToken() } },
    )
    try {
      while (Atomics.load(shared, 0) === 0) await sleep(5)
      let interrupts = 0
      let exit = vm.run()
      while (exit.status === 'interrupted') {
        interrupts++
        exit = vm.run()
      }
      Atomics.store(shared, 0, 2)
      expect(exit.status).toBe('halt')
      expect(interrupts).toBeGreaterThan(0)
      expect(finalState(vm)).toEqual(expected)
    } finally {
      Atomics.store(shared, 0, 2)
      await worker.terminate()
    }
  })
})
