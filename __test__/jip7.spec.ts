// JIP-7 ecalli traces: run(hostCall, { jip7: true }), vm.jip7Log() and replayJip7 (and the
// earlier JIP-6 names, kept as aliases).
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { describe, expect, it } from 'vitest'

import { Program, PvmError, replayJip6, replayJip7, type HostCallHandler, type Pvm } from '../index.js'
import { I, codeBlob, standardProgram } from './asm.mjs'
import { HOSTCALLS, PVM_CLI, hasCli, hex, pvmError, refineGuest } from './guests'

const ARGS_START = 0xfeff0000
const START = 'hostcalls: start'
const RESULT = 'numbers: 100, 200, 300; sum = 600'


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
  const dir = mkdtempSync(join(tmpdir(), 'libpvm-jip7-'))
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
    const exit = vm.run(host(logs), { jip7: true })
    expect(exit.status).toBe('halt')
    expect(logs).toEqual([START, RESULT])
    const log = vm.jip7Log()
    const lines = log.split('\n')
    expect(lines[0]).toMatch(/^comment implementation libpvm .* \(Node\.js API\)$/)
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
    const r = replayJip7(log)
    expect(r).toMatchObject({ hostCalls: 5, status: 'halt', pc: exit.pc, gas: exit.gas })
    expect([...r.registers]).toEqual([...vm.registers])
    expect(replayJip7(Buffer.from(log), { verify: false, spec: '0.8.0' }).hostCalls).toBe(5)
    // And by the CLI.
    const cli = cliReplay(log)
    if (cli) {
      expect(cli.status).toBe(0)
      expect(cli.stdout).toMatch(/replayed 5 of 5 host calls; exit halt/)
    }
  })

  it('detects a corrupted log (DIVERGENCE)', () => {
    const vm = hostcalls()
    vm.run(host(), { jip7: true })
    const log = vm.jip7Log()

    // A different answer to the second get_number: the guest's running sum (r2) differs at the
    // next host call.
    const answer = log.replace('setreg r07 <- 0xc8', 'setreg r07 <- 0xc9')
    expect(answer).not.toBe(log)
    const e = pvmError(() => replayJip7(answer))
    expect(e.code).toBe('DIVERGENCE')
    expect(e.message).toMatch(/^divergence at ecalli #4 \(ecalli=1001\): r2: logged 0x12c, replayed 0x12d/)
    // Without verify the replay still runs to the end.
    expect(replayJip7(answer, { verify: false }).status).toBe('halt')

    // A wrong gas on an ecalli line.
    const gas = log.replace(/^(ecalli=1001 pc=\d+ gas=)(\d+)/m, (_m, a, g) => `${a}${BigInt(g) + 1n}`)
    expect(gas).not.toBe(log)
    const g = pvmError(() => replayJip7(gas))
    expect(g.code).toBe('DIVERGENCE')
    expect(g.message).toMatch(/^divergence at ecalli #2 \(ecalli=1001\): gas: logged \d+, replayed \d+$/)

    // A dropped host call.
    const dropped = log.replace(/\necalli=100 [^\n]*\nmemread [^\n]*\nsetgas [^\n]*\n\nHALT/, '\nHALT')
    expect(dropped).not.toBe(log)
    expect(pvmError(() => replayJip7(dropped)).message).toMatch(/the log has no more host calls/)

    const cli = cliReplay(answer)
    if (cli) expect(cli.status).toBe(1)
  })

  it('records built-in host calls (inner PVMs) and their effects', () => {
    const g = refineGuest()
    const vm = Program.fromStandard(g.bytes).instantiate({ gas: g.gas, builtins: true })
    const exit = vm.run(null, { jip7: true })
    expect(exit.gas).toBe(g.gasLeft)
    const log = vm.jip7Log()
    expect(log.split('\n').filter((l) => l.startsWith('ecalli=')).map((l) => Number(l.slice(7, l.indexOf(' '))))).toEqual(g.calls)
    expect(log).toMatch(/\nmemwrite 0x00030008 len=8 <- 0x8e00000000000000\n/) // peek of the result
    expect(replayJip7(log)).toMatchObject({ hostCalls: 7, status: 'halt', gas: g.gasLeft })
    const cli = cliReplay(log)
    if (cli) expect(cli.status).toBe(0)
  })

  it('records host calls answered between runs, without a handler', () => {
    const vm = hostcalls()
    let exit = vm.run(null, { jip7: true })
    let n = 0n
    const messages: string[] = []
    while (exit.status === 'host') {
      const inside = vm.jip7Log() // an open host call is rendered as it stands
      expect(inside).toMatch(new RegExp(`\\necalli=${exit.hostCallId} pc=${exit.pc} [^\\n]*\\n$`))
      if (exit.hostCallId === 100) {
        messages.push(vm.readMemory(Number(vm.getRegister(7)), Number(vm.getRegister(8))).toString())
      } else {
        vm.setRegister(7, (n += 100n))
      }
      vm.gas = vm.gas - 1n
      exit = vm.run(null, { jip7: true })
    }
    expect(exit.status).toBe('halt')
    expect(messages).toEqual([START, RESULT])
    const log = vm.jip7Log()
    expect(log.match(/^ecalli=/gm)).toHaveLength(5)
    expect(log.match(/^start /gm)).toHaveLength(1)
    expect(log).toMatch(/\nsetreg r07 <- 0x64\nsetgas <- \d+\n/)
    expect(replayJip7(log)).toMatchObject({ hostCalls: 5, status: 'halt', gas: exit.gas })
  })

  it('records explicit register writes even when the value does not change, and host-ended runs', () => {
    // ecalli 5; halt — the handler sets r3 to its current value, then ends the run with 'panic'.
    const vm = Program.fromCode(codeBlob([I.ecalli(5), I.halt(0)])).instantiate({ gas: 100n })
    const exit = vm.run((_id, v) => {
      v.setRegister(3, 0n)
      return 'panic'
    }, { jip7: true })
    expect(exit).toMatchObject({ status: 'panic', pc: 0 })
    const log = vm.jip7Log()
    expect(log).toMatch(/\necalli=5 pc=0 gas=\d+\nsetreg r03 <- 0x0\n\nPANIC=0 pc=0 gas=\d+\n$/)
    expect(replayJip7(log)).toMatchObject({ hostCalls: 1, status: 'panic', pc: 0 })
    // No memwrite prelude for a code blob; the program line is the blob.
    expect(log).not.toMatch(/^memwrite/m)
  })

  it('starts a new log per invocation; unrecorded runs are not logged', () => {
    const p = Program.fromCode(codeBlob([I.ecalli(1), I.ecalli(2), I.halt(0)]))
    const vm = p.instantiate({ gas: 1000n })
    expect(pvmError(() => vm.jip7Log()).code).toBe('INVALID_STATE')
    vm.run(() => undefined, { jip7: true })
    expect(vm.jip7Log().match(/^ecalli=/gm)).toHaveLength(2)
    vm.pc = 0
    vm.run(() => undefined) // not recorded: the log stays
    expect(vm.jip7Log().match(/^ecalli=/gm)).toHaveLength(2)
    vm.pc = 5
    vm.gasCharged = false // a new invocation starts with no block paid for, as replay does
    vm.run(() => undefined, { jip7: true }) // a new log, from pc 5
    const log = vm.jip7Log()
    expect(log.match(/^ecalli=/gm)).toHaveLength(1)
    expect(log).toMatch(/^start pc=5 /m)
    expect(replayJip7(log).hostCalls).toBe(1)
  })
})

describe('replayJip7', () => {
  it('reports malformed logs and programs', () => {
    const noProgram = pvmError(() => replayJip7('ecalli=1 pc=0 gas=5\n'))
    expect(noProgram.code).toBe('INVALID_ARGUMENT')
    expect(noProgram.line).toBe(0)
    const bad = pvmError(() => replayJip7('program 0x00\necalli=1 pc=zz gas=5\n'))
    expect(bad.code).toBe('INVALID_ARGUMENT')
    expect(bad.line).toBe(2)
    expect(bad.message).toMatch(/^JIP-7 log: line 2: /)
    const program = pvmError(() => replayJip7('program 0x0102\n'))
    expect(program.code).toBe('INVALID_PROGRAM')
    expect(pvmError(() => replayJip7(42 as any)).code).toBe('INVALID_ARGUMENT')
    expect(pvmError(() => replayJip7('program 0x00', { spec: '1.0' as any })).code).toBe('INVALID_ARGUMENT')
  })

  it('uses options.gas when the log has no start line', () => {
    const blob = codeBlob([I.trap()])
    const cost = BigInt(Program.fromCode(blob).blockGasCosts()[0].cost)
    const log = `program 0x${hex(blob)}\n`
    expect(replayJip7(log, { gas: 5n })).toMatchObject({ hostCalls: 0, status: 'panic', gas: 5n - cost })
    expect(replayJip7(log, { gas: 0 }).status).toBe('oog')
    expect(pvmError(() => replayJip7(log, { gas: -1 })).code).toBe('INVALID_ARGUMENT')
  })

  it('bounds the gas of a looping log without a start line (issue #12 F5)', () => {
    // A code blob that jumps to itself, and no start line: used to run with 2^63 - 1 gas.
    const log = 'program 0x000005280000000001\n'
    expect(replayJip7(log, { gas: 1000n })).toMatchObject({ hostCalls: 0, status: 'oog' })
    expect(replayJip7(log).status).toBe('oog') // the default bound, 10^9
  })

  it('throws a typed error, never aborts, on a multi-byte character among hex digits (issue #12 F1)', () => {
    const bytes = Buffer.from('70726f6772616d20307861c3a9300a', 'hex')
    expect(bytes.toString()).toBe('program 0xaé0\n')
    for (const input of [bytes.toString(), bytes]) {
      const e = pvmError(() => replayJip7(input))
      expect(e.code).toBe('INVALID_ARGUMENT')
      expect(e.line).toBe(1)
      expect(e.message).toMatch(/not hex/)
    }
    const utf8 = pvmError(() => replayJip7(Uint8Array.from([...Buffer.from('program 0x00\n'), 0xff])))
    expect(utf8.code).toBe('INVALID_ARGUMENT')
    expect(utf8.line).toBe(2)
    // Random lines of keywords and multi-byte characters: always a result or a PvmError.
    const pieces = ['program', '0x', 'é', '€', '😀', 'ecalli=1', 'pc=', 'gas=', 'memwrite', 'len=1', '<-', '0xa', 'HALT', 'x-pages']
    let seed = 7
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n)
    for (let i = 0; i < 300; i++) {
      const lines = Array.from({ length: rand(6) }, () =>
        Array.from({ length: rand(5) }, () => pieces[rand(pieces.length)]).join(rand(3) ? ' ' : ''),
      )
      try {
        replayJip7(['program 0x00', ...lines].join('\n'), { gas: 100n })
      } catch (e) {
        expect(e).toBeInstanceOf(PvmError)
      }
    }
  })
})

describe('JIP-7 extension records', () => {
  it('records grow_heap pages (x-pages) so that the log replays', () => {
    // grow_heap(0x24): 3 new heap pages from 0x21000; store into the last; host call 100; halt.
    const bytes = standardProgram(
      [I.loadImm(7, 0x24), I.ecalli(1), I.loadImm(8, 0x55), I.storeU64(8, 0x23008), I.ecalli(100), I.loadU64(9, 0x23008), ...I.halt(0)],
      { heapPages: 1 },
    )
    const vm = Program.fromStandard(bytes).instantiate({ gas: 100_000n, builtins: true })
    const exit = vm.run(() => undefined, { jip7: true })
    expect(exit.status).toBe('halt')
    expect(vm.getRegister(9)).toBe(0x55n)
    const log = vm.jip7Log()
    expect(log).toMatch(/\necalli=1 pc=\d+ [^\n]*\nx-builtin grow_heap\nx-pages 0x00021000 len=12288 access=write\nsetreg r07 <- 0x24\nsetgas <- \d+\n/)
    expect(replayJip7(log)).toMatchObject({ hostCalls: 2, status: 'halt', gas: exit.gas })
    // Without the extension records the store faults: the replay diverges at the termination.
    const plain = log.replace(/^x-.*\n/gm, '')
    const e = pvmError(() => replayJip7(plain))
    expect(e.code).toBe('DIVERGENCE')
    expect(e.message).toMatch(/termination/)
  })

  it('marks built-in (inner PVM) host calls with x-builtin and re-executes them on replay', () => {
    const g = refineGuest()
    const vm = Program.fromStandard(g.bytes).instantiate({ gas: g.gas, builtins: true })
    vm.run(null, { jip7: true })
    const log = vm.jip7Log()
    for (const b of ['machine', 'pages', 'poke', 'invoke', 'peek', 'expunge']) expect(log).toContain(`\nx-builtin ${b}\n`)
    // A different result of the inner machine in the peek: re-executing the inner PVMs notices.
    const tampered = log.replace('memwrite 0x00030008 len=8 <- 0x8e00000000000000', 'memwrite 0x00030008 len=8 <- 0x8f00000000000000')
    expect(tampered).not.toBe(log)
    const e = pvmError(() => replayJip7(tampered))
    expect(e.code).toBe('DIVERGENCE')
    expect(e.message).toMatch(/x-builtin peek: writes differ/)
    // Without verification the log's answers are used as they are.
    expect(replayJip7(tampered, { verify: false }).status).toBe('halt')
  })
})

it('records pages a host maps before the run and in a host call (prelude and entry x-pages)', () => {
  // r9 = μ[0x20000]; ecalli 3 (the host maps 0x40000 and writes there); r10 = μ[0x40000]; halt.
  const vm = Program.fromCode(codeBlob([I.loadU64(9, 0x20000), I.ecalli(3), I.loadU64(10, 0x40000), ...I.halt(0)])).instantiate({ gas: 10_000n })
  vm.mapPages(0x20000, 4096, 'write')
  vm.writeMemory(0x20000, Uint8Array.from([0x34, 0x12]))
  const exit = vm.run((_id, v) => {
    v.mapPages(0x40000, 4096, 'write')
    v.writeMemory(0x40000, Uint8Array.from([7]))
  }, { jip7: true })
  expect(exit.status).toBe('halt')
  const log = vm.jip7Log()
  expect(log).toMatch(/\nx-pages 0x00020000 len=4096 access=write\nmemwrite 0x00020000 len=2 <- 0x3412\nstart pc=0 /)
  expect(log).toMatch(/\necalli=3 [^\n]*\nx-pages 0x00040000 len=4096 access=write\nmemwrite 0x00040000 len=1 <- 0x07\n/)
  const r = replayJip7(log)
  expect(r.status).toBe('halt')
  expect([r.registers[9], r.registers[10]]).toEqual([0x1234n, 7n])
})

describe('JIP-6 aliases', () => {
  it('{ jip6: true }, vm.jip6Log() and replayJip6 are the JIP-7 API under its earlier names', () => {
    const a = hostcalls()
    a.run(host(), { jip6: true })
    const b = hostcalls()
    b.run(host(), { jip7: true })
    expect(a.jip6Log()).toBe(b.jip7Log())
    expect(a.jip7Log()).toBe(a.jip6Log())
    expect(replayJip6(a.jip6Log())).toEqual(replayJip7(b.jip7Log()))
  })
})

// A VM's log is also available after free() unless a host call is open.
it('keeps the log after free()', () => {
  const vm: Pvm = Program.fromCode(codeBlob([I.ecalli(1), I.halt(0)])).instantiate({ gas: 100n })
  vm.run(() => undefined, { jip7: true })
  vm.free()
  expect(vm.jip7Log()).toMatch(/\nHALT /)
})
