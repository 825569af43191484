//! The executed-instruction counter (`Instance::instruction_count`, issue #13 item 5) agrees with
//! `step()`: every `step()` that returns `None` executed one instruction, a step that exits
//! executed one unless it ran out of gas (or entered a GP 0.8.0 non-instruction pc), and `run()`
//! on either backend, or any mix of steps and runs, ends every exit with the same count. The
//! bundled guests' counts are also checked against `bench/expected.json` (measured in PolkaVM).

use pvm_core::asm::{Assembler, Operands as Ops};
use pvm_core::isa::Opcode as O;
use pvm_core::{Access, Backend, Exit, HostCallContext, Instance, Program, ProgramOptions, Spec};

const SPECS: [Spec; 2] = [Spec::Gp0_8_0, Spec::Gp0_7_2];

fn backends() -> Vec<Backend> {
    let mut b = vec![Backend::Interpreter];
    if Backend::recompiler_supported() {
        b.push(Backend::Recompiler);
    }
    b
}

fn root(path: &str) -> String {
    format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))
}

/// A bundled guest (built for GP 0.8.0; for GP 0.7.2 renumbered by
/// `pvm_core::asm::renumber_for_gp072`).
fn standard(path: &str, spec: Spec, backend: Backend) -> Program {
    let mut bytes = std::fs::read(root(path)).unwrap();
    if spec == Spec::Gp0_7_2 {
        bytes = pvm_core::asm::renumber_for_gp072(&bytes, true).unwrap();
    }
    Program::from_standard(&bytes, false, ProgramOptions { spec, backend }).unwrap()
}

/// How a driver advances the machine.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Run,
    Step,
    /// A few steps (0..=`n`, varying) before every run.
    Mixed(u32),
}

/// One exit: kind, pc, gas, registers, instruction count.
type Snap = (Exit, u32, i64, [u64; 13], u64);

/// Whether an exit produced by `step()` executed an instruction.
fn step_exit_counts(e: Exit, vm: &Instance, pc_before: u32) -> bool {
    match e {
        Exit::OutOfGas | Exit::Interrupted => false,
        Exit::Panic if vm.program().spec() == Spec::Gp0_8_0 => {
            vm.program().is_instruction_start(pc_before)
                && pc_before <= vm.program().code().len() as u32
        }
        _ => true,
    }
}

/// One `step()`, checking that the counter moved by exactly the instruction it executed.
fn checked_step(vm: &mut Instance) -> Option<Exit> {
    let (before, pc) = (vm.instruction_count(), vm.next_pc());
    let r = vm.step();
    let executed = match r {
        None => true,
        Some(e) => step_exit_counts(e, vm, pc),
    };
    assert_eq!(
        vm.instruction_count(),
        before + executed as u64,
        "step at pc {pc} ended {r:?}"
    );
    r
}

/// Drives `vm` to a final exit: host calls are answered (get_number = 1001 returns 100, 200, …),
/// page faults map the page writable, out-of-gas adds `refill` gas (up to `max_refills` times).
fn drive(vm: &mut Instance, mode: Mode, refill: i64, max_refills: u32) -> Vec<Snap> {
    let mut trace = Vec::new();
    let mut refills = 0;
    let mut numbers = 0;
    let mut turn = 0u32;
    loop {
        turn += 1;
        let e = match mode {
            Mode::Run => vm.run(),
            Mode::Step => loop {
                if let Some(e) = checked_step(vm) {
                    break e;
                }
            },
            Mode::Mixed(n) => {
                let mut exit = None;
                for _ in 0..turn.wrapping_mul(7) % (n + 1) {
                    exit = checked_step(vm);
                    if exit.is_some() {
                        break;
                    }
                }
                exit.unwrap_or_else(|| vm.run())
            }
        };
        trace.push((
            e,
            vm.pc(),
            vm.gas(),
            *vm.registers(),
            vm.instruction_count(),
        ));
        match e {
            Exit::HostCall(id) => {
                let mut ctx = HostCallContext::new(vm);
                if id == 1001 {
                    numbers += 100;
                    ctx.set_reg(7, numbers);
                }
                ctx.set_gas(ctx.gas() - 3);
            }
            Exit::PageFault(addr) => vm.memory_mut().map(addr, 4096, Access::Write).unwrap(),
            Exit::OutOfGas if refills < max_refills => {
                refills += 1;
                vm.set_gas(vm.gas() + refill);
            }
            _ => return trace,
        }
    }
}

/// A plain code blob: a loop that loads from four unmapped pages (each faults once, then the
/// driver maps it), makes a host call per iteration, and ends in `trap` or a halt.
fn fault_loop(spec: Spec, halt: bool) -> Program {
    let mut a = Assembler::for_spec(spec);
    let top = a.label();
    a.inst(O::LoadImm, Ops::reg_imm(7, 0x20000));
    a.inst(O::LoadImm, Ops::reg_imm(9, 4));
    a.inst(O::LoadImm, Ops::reg_imm(0, -65536)); // 0xFFFF0000 after the 32-bit jump address
    a.inst(O::Fallthrough, Ops::none());
    a.bind(top);
    a.inst(O::LoadIndU64, Ops::reg_reg_imm(8, 7, 8));
    a.inst(O::AddImm64, Ops::reg_reg_imm(7, 7, 4096));
    a.inst(O::Ecalli, Ops::imm(1));
    a.inst(O::AddImm64, Ops::reg_reg_imm(9, 9, -1));
    a.inst(O::BranchNeImm, Ops::branch_imm(9, 0, top));
    if halt {
        a.inst(O::JumpInd, Ops::reg_imm(0, 0));
    } else {
        a.inst(O::Trap, Ops::none());
    }
    let opts = ProgramOptions {
        spec,
        backend: Backend::Interpreter,
    };
    Program::from_code(&a.finish(), opts).unwrap()
}

fn with_backend(p: &Program, backend: Backend) -> Program {
    let opts = ProgramOptions {
        spec: p.spec(),
        backend,
    };
    Program::from_blob(p.blob().clone(), opts).unwrap()
}

/// Every mode on every backend gives the same exits, counts included; returns the final count.
fn agree(make: impl Fn(Backend) -> Instance, refill: i64, max_refills: u32) -> (Exit, u64) {
    let reference = drive(
        &mut make(Backend::Interpreter),
        Mode::Step,
        refill,
        max_refills,
    );
    for backend in backends() {
        for mode in [Mode::Run, Mode::Step, Mode::Mixed(3), Mode::Mixed(40)] {
            let got = drive(&mut make(backend), mode, refill, max_refills);
            if got != reference {
                let at = got.iter().zip(&reference).position(|(x, y)| x != y);
                panic!(
                    "{backend:?} {mode:?} differs from stepping at exit {at:?} of {}/{}: {:?} vs {:?}",
                    got.len(),
                    reference.len(),
                    at.map(|i| &got[i]),
                    at.map(|i| &reference[i]),
                );
            }
        }
    }
    let last = reference.last().unwrap();
    (last.0, last.4)
}

/// Small inputs of the bundled guests (u32 LE size arguments), so that stepping stays quick.
const GUESTS: [(&str, u32); 5] = [
    ("bench/programs/blake2b.jam", 2),
    ("bench/programs/sort.jam", 300),
    ("bench/programs/sieve.jam", 3000),
    ("bench/programs/mandel.jam", 6),
    ("bench/programs/interp.jam", 60),
];

#[test]
fn guests_count_the_same_with_run_step_and_both_backends() {
    for spec in SPECS {
        for (path, n) in GUESTS {
            let args = n.to_le_bytes();
            let make = |b| {
                let mut vm = standard(path, spec, b).instantiate(&args).unwrap();
                vm.set_gas(1 << 40);
                vm
            };
            let (exit, count) = agree(make, 0, 0);
            assert_eq!(exit, Exit::Halt, "{path} {spec:?}");
            assert!(count > 1000, "{path}: {count}");
            let mut vm = make(Backend::Interpreter);
            vm.run();
            if spec == Spec::Gp0_7_2 {
                // GP 0.7.2: one gas per instruction.
                assert_eq!((1i64 << 40) - vm.gas(), count as i64, "{path}");
            }
        }
    }
}

#[test]
fn out_of_gas_counts_nothing_and_resuming_completes_the_count() {
    for spec in SPECS {
        for (path, n) in GUESTS {
            let args = n.to_le_bytes();
            let full = {
                let mut vm = standard(path, spec, Backend::Interpreter)
                    .instantiate(&args)
                    .unwrap();
                vm.set_gas(1 << 40);
                assert_eq!(vm.run(), Exit::Halt);
                vm.instruction_count()
            };
            for (gas, refill) in [(0, 97), (1000, 1000), (5, 0)] {
                let make = |b| {
                    let mut vm = standard(path, spec, b).instantiate(&args).unwrap();
                    vm.set_gas(gas);
                    vm
                };
                let (exit, count) = agree(make, refill, if refill > 0 { 1 << 20 } else { 0 });
                if refill > 0 {
                    assert_eq!((exit, count), (Exit::Halt, full), "{path} gas {gas}");
                } else {
                    assert_eq!(exit, Exit::OutOfGas, "{path}");
                    assert!(count < full);
                }
            }
        }
    }
}

#[test]
fn host_calls_faults_traps_and_halts_count_once_per_execution() {
    for spec in SPECS {
        for halt in [false, true] {
            let p = fault_loop(spec, halt);
            for (gas, refill) in [(1 << 20, 0), (2, 2)] {
                let make = |b| {
                    let mut vm = with_backend(&p, b).instantiate(&[]).unwrap();
                    vm.set_gas(gas);
                    vm
                };
                let (exit, count) = agree(make, refill, 1 << 12);
                assert_eq!(exit, if halt { Exit::Halt } else { Exit::Panic });
                // 3 loads + 1 fallthrough, 4 × (load, add, ecalli, add, branch), the 4 faulting
                // loads once more, and the trap or halting jump.
                assert_eq!(count, 4 + 4 * 5 + 4 + 1, "{spec:?} halt {halt} gas {gas}");
            }
        }
        // The host-call guest (5 host calls).
        let make = |b| {
            let mut vm = standard("examples/guests/hostcalls.jam", spec, b)
                .instantiate(&[])
                .unwrap();
            vm.set_gas(1 << 30);
            vm
        };
        let (exit, count) = agree(make, 0, 0);
        assert_eq!((exit, count), (Exit::Halt, 357), "{spec:?}");
    }
}

/// An interrupt requested while a host call is being answered (as the Node addon's watchdog does
/// every 20 ms) must not change the count or the result: the run after the host call takes its
/// first block in the interpreter, then stops at a block boundary, and the next run goes on.
#[test]
fn interrupts_pending_at_host_call_resumption_change_nothing() {
    // (exit, instructions, gas, registers) of the host-call guest, the host interrupting after
    // every host call or not.
    let finish = |spec, backend, interrupt: bool| {
        let mut vm = standard("examples/guests/hostcalls.jam", spec, backend)
            .instantiate(&[])
            .unwrap();
        vm.set_gas(1 << 30);
        let handle = vm.interrupt_handle();
        let mut interrupts = 0;
        let exit = loop {
            match vm.run() {
                Exit::HostCall(_) if interrupt => handle.interrupt(),
                Exit::HostCall(_) => {}
                Exit::Interrupted => interrupts += 1,
                e => break e,
            }
        };
        assert_eq!(interrupts > 0, interrupt, "{spec:?} {backend:?}");
        (exit, vm.instruction_count(), vm.gas(), *vm.registers())
    };
    for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
        let reference = finish(spec, Backend::Interpreter, false);
        assert_eq!(reference.0, Exit::Halt);
        for backend in backends() {
            assert_eq!(
                finish(spec, backend, true),
                reference,
                "{spec:?} {backend:?}"
            );
        }
    }
}

#[test]
fn entering_a_non_instruction_counts_as_gp_says() {
    for spec in SPECS {
        for backend in backends() {
            let p = with_backend(&fault_loop(spec, true), backend);
            let mut vm = p.instantiate(&[]).unwrap();
            vm.set_gas(100);
            vm.set_pc(1); // inside the first `load_imm`
            assert_eq!(vm.run(), Exit::Panic);
            // GP 0.8.0: an immediate panic; GP 0.7.2: the position executes as `trap`.
            let expected = (spec == Spec::Gp0_7_2) as u64;
            assert_eq!(vm.instruction_count(), expected, "{spec:?} {backend:?}");
        }
    }
}

#[test]
fn set_instruction_count_and_invoke() {
    for backend in backends() {
        let p = standard("examples/guests/hostcalls.jam", Spec::Gp0_8_0, backend);
        let mut vm = p.instantiate(&[]).unwrap();
        vm.set_gas(1 << 30);
        vm.set_instruction_count(1000);
        // get_number returns 100, 200, 300, as in `drive`.
        let host = || {
            let mut n = 0;
            move |id: u32, ctx: &mut HostCallContext<'_>| {
                if id == 1001 {
                    n += 100;
                    ctx.set_reg(7, n);
                }
                pvm_core::HostOutcome::Continue
            }
        };
        assert_eq!(vm.run_with_host(host()), Exit::Halt);
        assert_eq!(vm.instruction_count(), 1357);
        // `invoke` keeps counting (the counter is the instance's, not the invocation's).
        assert_eq!(vm.invoke_with_host(0, &[], 1 << 30, host()), Ok(Exit::Halt));
        assert_eq!(vm.instruction_count(), 1714);
    }
}

/// The bundled guests' "small" inputs execute exactly the instruction counts PolkaVM measured.
#[test]
fn guests_match_the_polkavm_instruction_counts() {
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root("bench/expected.json")).unwrap())
            .unwrap();
    let programs = expected["programs"].as_object().unwrap();
    let mut checked = 0;
    for (name, entry) in programs {
        let file = entry["file"].as_str().unwrap();
        let small = &entry["small"];
        let Some(instructions) = small["instructions"].as_u64() else {
            continue;
        };
        if !file.starts_with("bench/programs/") || small["status"] != "halt" {
            continue;
        }
        let hex = small["args"].as_str().unwrap();
        let args: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        for spec in SPECS {
            for backend in backends() {
                let mut vm = standard(file, spec, backend).instantiate(&args).unwrap();
                vm.set_gas(1 << 40);
                assert_eq!(vm.run(), Exit::Halt, "{name}");
                assert_eq!(
                    vm.instruction_count(),
                    instructions,
                    "{name} {spec:?} {backend:?}"
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 5, "{checked} programs checked");
}

#[test]
fn the_counter_wraps_at_2_pow_64() {
    for spec in SPECS {
        for backend in backends() {
            let p = with_backend(&fault_loop(spec, true), backend);
            let mut vm = p.instantiate(&[]).unwrap();
            vm.set_gas(1 << 20);
            vm.set_instruction_count(u64::MAX - 1);
            let trace = drive(&mut vm, Mode::Run, 0, 0);
            assert_eq!(trace.last().unwrap().0, Exit::Halt);
            assert_eq!(vm.instruction_count(), 29 - 2, "{spec:?} {backend:?}");
        }
    }
}
