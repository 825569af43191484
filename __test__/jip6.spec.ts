// JIP-6 PVM I/O logs: run(hostCall, { jip6: true }), vm.jip6Log() and replayJip6.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { describe, expect, it } from 'vitest'

import { Program, PvmError, replayJip6, type HostCallHandler, type Pvm } from '../index.js'
import { I, codeBlob } from './asm.mjs'
import { HOSTCALLS, PVM_CLI, hasCli, hex, refineGuest } from './guests'

const ARGS_START = 0xfeff0000
const START = 'hostcalls: start'
const RESULT = 'numbers: 100, 200, 300; sum = 600'

function pvmError(f: () => unknown): PvmError {
  try {
    f()
  } catch (e) {
    expect(e).toBeInstanceOf(PvmError)
    return e as PvmError
  }
  throw new Error('expected a PvmError')
}

const textHex = (s: string) => Buffer.from(s).toString('hex')
const args3 = () => Uint8Array.from([3, 0, 0, 0])
const hostcalls = () => Program.fromStandard(readFileSync(HOSTCALLS)).instantiate({ gas: 1_000_000n, args: args3() })

/** get_number (1001) → 100, 200, 300 through the zero-copy registers; log (100) reads the message; both charge 10 gas. */
function host(logs: string[] = []): HostCallHandler {
  let n = 0n
  return (id, vm) => {
    vm.gas -= 10n
    if (id === 100) logs.push(vm.readMemory(Number(vm.registers[7]), Number(vm.registers[8])).toString())
    else if (id === 1001) vm.registers[7] = n += 100n
    else return 'panic'
  }
}

/** Runs `pvm replay` on a log, if the CLI is built. */
function cliReplay(log: string): { status: number | null; stdout: string } | null {
  if (!hasCli()) return null
  const dir = mkdtempSync(join(tmpdir(), 'libpvm-jip6-'))
  try {
    writeFileSync(join(dir, 'run.log'), log)
    const r = spawnSync(PVM_CLI, ['replay', join(dir, 'run.log')], { encoding: 'utf8' })
    return { status: r.status, stdout: r.stdout }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

describe('recording', () => {
  it('records every host call of examples/guests/hostcalls.jam answered by JavaScript', () => {
    const vm = hostcalls()
    const logs: string[] = []
    const exit = vm.run(host(logs), { jip6: true })
    expect(exit.status).toBe('halt')
    expect(logs).toEqual([START, RESULT])
    const log = vm.jip6Log()
    const lines = log.split('\n')
    expect(lines[0]).toMatch(/^implementation libpvm .* \(Node\.js API\)$/)
    expect(lines[1]).toBe(`program 0x${hex(readFileSync(HOSTCALLS))}`)
    expect(lines[2]).toBe(`memwrite 0x${ARGS_START.toString(16)} len=4 <- 0x03000000`)
    expect(lines[3]).toMatch(/^start pc=0 gas=1000000 r00=0xffff0000 r01=0x[0-9a-f]+ r07=0xfeff0000 r08=0x4$/)
    const records = lines.filter((l) => /^(ecalli|memread|memwrite|setreg|setgas|HALT)/.test(l)).slice(1)
    const ecallis = records.filter((l) => l.startsWith('ecalli='))
    expect(ecallis.map((l) => l.split(' ')[0])).toEqual([
      'ecalli=100',
      'ecalli=1001',
      'ecalli=1001',
      'ecalli=1001',
      'ecalli=100',
    ])
    // The log calls: what the handler read, and r7 written through the zero-copy view.
    expect(log).toMatch(new RegExp(`\\nmemread 0x[0-9a-f]{8} len=${START.length} -> 0x${textHex(START)}\\n`))
    expect(log).toMatch(new RegExp(`\\nmemread 0x[0-9a-f]{8} len=${RESULT.length} -> 0x${textHex(RESULT)}\\n`))
    for (const v of ['0x64', '0xc8', '0x12c']) expect(records).toContain(`setreg r07 <- ${v}`)
    expect(records.filter((l) => l.startsWith('setgas <- '))).toHaveLength(5)
    expect(records.at(-1)).toBe(`HALT pc=${exit.pc} gas=${exit.gas} ${lines.at(-2)!.split(' ').slice(3).join(' ')}`)
    expect(log.endsWith('\n')).toBe(true)

    // Replayed statelessly, it reaches every ecalli and the halt with the logged state.
    const r = replayJip6(log)
    expect(r).toMatchObject({ hostCalls: 5, status: 'halt', pc: exit.pc, gas: exit.gas })
    expect([...r.registers]).toEqual([...vm.registers])
    expect(replayJip6(Buffer.from(log), { verify: false, spec: '0.8.0' }).hostCalls).toBe(5)
    // And by the CLI.
    const cli = cliReplay(log)
    if (cli) {
      expect(cli.status).toBe(0)
      expect(cli.stdout).toMatch(/replayed 5 host calls; exit halt/)
    }
  })

  it('detects a corrupted log (DIVERGENCE)', () => {
    const vm = hostcalls()
    vm.run(host(), { jip6: true })
    const log = vm.jip6Log()

    // A different answer to the second get_number: the guest's running sum (r2) differs at the
    // next host call.
    const answer = log.replace('setreg r07 <- 0xc8', 'setreg r07 <- 0xc9')
    expect(answer).not.toBe(log)
    const e = pvmError(() => replayJip6(answer))
    expect(e.code).toBe('DIVERGENCE')
    expect(e.message).toMatch(/^divergence at ecalli #4: r2: logged 0x12c, replayed 0x12d/)
    // Without verify the replay still runs to the end.
    expect(replayJip6(answer, { verify: false }).status).toBe('halt')

    // A wrong gas on an ecalli line.
    const gas = log.replace(/^(ecalli=1001 pc=\d+ gas=)(\d+)/m, (_m, a, g) => `${a}${BigInt(g) + 1n}`)
    expect(gas).not.toBe(log)
    const g = pvmError(() => replayJip6(gas))
    expect(g.code).toBe('DIVERGENCE')
    expect(g.message).toMatch(/^divergence at ecalli #2: gas: logged \d+, replayed \d+$/)

    // A dropped host call.
    const dropped = log.replace(/\necalli=100 [^\n]*\nmemread [^\n]*\nsetgas [^\n]*\n\nHALT/, '\nHALT')
    expect(dropped).not.toBe(log)
    expect(pvmError(() => replayJip6(dropped)).message).toMatch(/the log has no more host calls/)

    const cli = cliReplay(answer)
    if (cli) expect(cli.status).toBe(1)
  })

  it('records built-in host calls (inner PVMs) and their effects', () => {
    const g = refineGuest()
    const vm = Program.fromStandard(g.bytes).instantiate({ gas: g.gas, builtins: true })
    const exit = vm.run(null, { jip6: true })
    expect(exit.gas).toBe(g.gasLeft)
    const log = vm.jip6Log()
    expect(log.split('\n').filter((l) => l.startsWith('ecalli=')).map((l) => Number(l.slice(7, l.indexOf(' '))))).toEqual(g.calls)
    expect(log).toMatch(/\nmemwrite 0x00030008 len=8 <- 0x8e00000000000000\n/) // peek of the result
    expect(replayJip6(log)).toMatchObject({ hostCalls: 7, status: 'halt', gas: g.gasLeft })
    const cli = cliReplay(log)
    if (cli) expect(cli.status).toBe(0)
  })

  it('records host calls answered between runs, without a handler', () => {
    const vm = hostcalls()
    let exit = vm.run(null, { jip6: true })
    let n = 0n
    const messages: string[] = []
    while (exit.status === 'host') {
      const inside = vm.jip6Log() // an open host call is rendered as it stands
      expect(inside).toMatch(new RegExp(`\\necalli=${exit.hostCallId} pc=${exit.pc} [^\\n]*\\n$`))
      if (exit.hostCallId === 100) {
        messages.push(vm.readMemory(Number(vm.getRegister(7)), Number(vm.getRegister(8))).toString())
      } else {
        vm.setRegister(7, (n += 100n))
      }
      vm.gas = vm.gas - 1n
      exit = vm.run(null, { jip6: true })
    }
    expect(exit.status).toBe('halt')
    expect(messages).toEqual([START, RESULT])
    const log = vm.jip6Log()
    expect(log.match(/^ecalli=/gm)).toHaveLength(5)
    expect(log.match(/^start /gm)).toHaveLength(1)
    expect(log).toMatch(/\nsetreg r07 <- 0x64\nsetgas <- \d+\n/)
    expect(replayJip6(log)).toMatchObject({ hostCalls: 5, status: 'halt', gas: exit.gas })
  })

  it('records explicit register writes even when the value does not change, and host-ended runs', () => {
    // ecalli 5; halt — the handler sets r3 to its current value, then ends the run with 'panic'.
    const vm = Program.fromCode(codeBlob([I.ecalli(5), I.halt(0)])).instantiate({ gas: 100n })
    const exit = vm.run((_id, v) => {
      v.setRegister(3, 0n)
      return 'panic'
    }, { jip6: true })
    expect(exit).toMatchObject({ status: 'panic', pc: 0 })
    const log = vm.jip6Log()
    expect(log).toMatch(/\necalli=5 pc=0 gas=\d+\nsetreg r03 <- 0x0\n\nPANIC pc=0 gas=\d+\n$/)
    expect(replayJip6(log)).toMatchObject({ hostCalls: 1, status: 'panic', pc: 0 })
    // No memwrite prelude for a code blob; the program line is the blob.
    expect(log).not.toMatch(/^memwrite/m)
  })

  it('starts a new log per invocation; unrecorded runs are not logged', () => {
    const p = Program.fromCode(codeBlob([I.ecalli(1), I.ecalli(2), I.halt(0)]))
    const vm = p.instantiate({ gas: 1000n })
    expect(pvmError(() => vm.jip6Log()).code).toBe('INVALID_STATE')
    vm.run(() => undefined, { jip6: true })
    expect(vm.jip6Log().match(/^ecalli=/gm)).toHaveLength(2)
    vm.pc = 0
    vm.run(() => undefined) // not recorded: the log stays
    expect(vm.jip6Log().match(/^ecalli=/gm)).toHaveLength(2)
    vm.pc = 5
    vm.gasCharged = false // a new invocation starts with no block paid for, as replay does
    vm.run(() => undefined, { jip6: true }) // a new log, from pc 5
    const log = vm.jip6Log()
    expect(log.match(/^ecalli=/gm)).toHaveLength(1)
    expect(log).toMatch(/^start pc=5 /m)
    expect(replayJip6(log).hostCalls).toBe(1)
  })
})

describe('replayJip6', () => {
  it('reports malformed logs and programs', () => {
    const noProgram = pvmError(() => replayJip6('ecalli=1 pc=0 gas=5\n'))
    expect(noProgram.code).toBe('INVALID_ARGUMENT')
    expect(noProgram.line).toBe(0)
    const bad = pvmError(() => replayJip6('program 0x00\necalli=1 pc=zz gas=5\n'))
    expect(bad.code).toBe('INVALID_ARGUMENT')
    expect(bad.line).toBe(2)
    expect(bad.message).toMatch(/^JIP-6 log: line 2: /)
    const program = pvmError(() => replayJip6('program 0x0102\n'))
    expect(program.code).toBe('INVALID_PROGRAM')
    expect(pvmError(() => replayJip6(42 as any)).code).toBe('INVALID_ARGUMENT')
    expect(pvmError(() => replayJip6('program 0x00', { spec: '1.0' as any })).code).toBe('INVALID_ARGUMENT')
  })

  it('uses options.gas when the log has no start line', () => {
    const blob = codeBlob([I.trap()])
    const cost = BigInt(Program.fromCode(blob).blockGasCosts()[0].cost)
    const log = `program 0x${hex(blob)}\n`
    expect(replayJip6(log, { gas: 5n })).toMatchObject({ hostCalls: 0, status: 'panic', gas: 5n - cost })
    expect(replayJip6(log, { gas: 0 }).status).toBe('oog')
  })
})

// A VM's log is also available after free() unless a host call is open.
it('keeps the log after free()', () => {
  const vm: Pvm = Program.fromCode(codeBlob([I.ecalli(1), I.halt(0)])).instantiate({ gas: 100n })
  vm.run(() => undefined, { jip6: true })
  vm.free()
  expect(vm.jip6Log()).toMatch(/\nHALT /)
})
