//! Interrupting a run from another thread: the run stops at a basic-block boundary with
//! `Exit::Interrupted`, and resuming continues exactly, under both gas models.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pvm_core::asm::{Assembler, Operands as Ops};
use pvm_core::isa::Opcode as O;
use pvm_core::{Exit, Instance, Program, ProgramOptions, Spec};

/// r1 counts down from `n`; r2 accumulates; then trap.
fn counting_loop(spec: Spec, n: i64) -> Program {
    let mut a = Assembler::for_spec(spec);
    a.inst(O::LoadImm64, Ops::reg_imm(1, n));
    a.inst(O::Fallthrough, Ops::none());
    let top = a.here();
    a.inst(O::AddImm64, Ops::reg_reg_imm(2, 2, 3));
    a.inst(O::AddImm64, Ops::reg_reg_imm(1, 1, -1));
    a.inst(O::BranchNeImm, Ops::branch_imm(1, 0, top));
    a.inst(O::Trap, Ops::none());
    Program::from_code(&a.finish(), ProgramOptions::new(spec)).unwrap()
}

fn state(vm: &Instance) -> (u32, i64, [u64; 13]) {
    (vm.pc(), vm.gas(), *vm.registers())
}

#[test]
fn an_endless_loop_is_interrupted_from_another_thread() {
    for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
        let mut a = Assembler::for_spec(spec);
        let top = a.here();
        a.inst(O::AddImm64, Ops::reg_reg_imm(1, 1, 1));
        a.inst(O::Jump, Ops::to(top));
        let p = Program::from_code(&a.finish(), ProgramOptions::new(spec)).unwrap();
        let mut vm = p.instantiate(&[]).unwrap();
        vm.set_gas(i64::MAX);
        let handle = vm.interrupt_handle();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            handle.interrupt();
        });
        let started = Instant::now();
        assert_eq!(vm.run(), Exit::Interrupted, "{spec:?}");
        t.join().unwrap();
        assert!(started.elapsed() < Duration::from_secs(30));
        assert_eq!(vm.pc(), 0, "stopped at the loop's block start");
        assert!(!vm.gas_charged());
        let count = vm.registers()[1];
        assert!(count > 0);
        // Consumed: the next run is not interrupted again by the same request.
        vm.set_gas(vm.gas().min(1000));
        assert_eq!(vm.run(), Exit::OutOfGas);
        assert!(vm.registers()[1] > count);
    }
}

#[test]
fn repeated_interrupts_leave_the_run_exact() {
    for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
        let p = counting_loop(spec, 2_000_000);
        let mut reference = p.instantiate(&[]).unwrap();
        reference.set_gas(1 << 40);
        assert_eq!(reference.run(), Exit::Panic);

        let mut vm = p.instantiate(&[]).unwrap();
        vm.set_gas(1 << 40);
        let handle = vm.interrupt_handle();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let t = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                handle.interrupt();
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        let mut interrupts = 0;
        let exit = loop {
            match vm.run() {
                Exit::Interrupted => interrupts += 1,
                e => break e,
            }
        };
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
        assert_eq!(exit, Exit::Panic, "{spec:?}");
        assert_eq!(
            state(&vm),
            state(&reference),
            "{spec:?} after {interrupts} interrupts"
        );
    }
}

#[test]
fn an_interrupt_before_a_run_stops_it_at_the_first_block_boundary() {
    let p = counting_loop(Spec::Gp0_8_0, 10);
    let mut vm = p.instantiate(&[]).unwrap();
    vm.set_gas(10_000);
    vm.interrupt_handle().interrupt();
    assert_eq!(vm.run(), Exit::Interrupted);
    // The entry block ran (load_imm, fallthrough); the loop block was not entered or charged.
    assert_eq!(vm.registers()[1], 10);
    assert_eq!(vm.registers()[2], 0);
    let top = p.next_pc(0);
    assert_eq!(vm.pc(), p.next_pc(top));
    assert_eq!(vm.gas(), 10_000 - p.block_cost_at(0).unwrap() as i64);
    assert_eq!(vm.run(), Exit::Panic);
    assert_eq!(vm.registers()[2], 30);
    // A clone has a flag of its own.
    let mut a = p.instantiate(&[]).unwrap();
    a.set_gas(10_000);
    let mut b = a.clone();
    a.interrupt_handle().interrupt();
    assert_eq!(b.run(), Exit::Panic);
    assert_eq!(a.run(), Exit::Interrupted);
}

/// The recompiler runs on gas slices of `NATIVE_GAS_SLICE` (that is how it sees interrupt
/// requests): a block that costs more than a slice, runs spanning many slices, and gas that
/// runs out just before, at and after a slice boundary all end exactly as in the interpreter.
#[test]
fn gas_slices_of_the_recompiler_change_nothing() {
    use pvm_core::{Backend, NATIVE_GAS_SLICE};
    if !Backend::recompiler_supported() {
        return;
    }
    for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
        // One block longer than a slice, then a loop of small blocks, then trap.
        let mut a = Assembler::for_spec(spec);
        for _ in 0..NATIVE_GAS_SLICE + 100 {
            a.inst(O::AddImm64, Ops::reg_reg_imm(1, 1, 1));
        }
        a.inst(O::LoadImm64, Ops::reg_imm(3, 300_000));
        a.inst(O::Fallthrough, Ops::none());
        let top = a.here();
        a.inst(O::AddImm64, Ops::reg_reg_imm(2, 2, 3));
        a.inst(O::AddImm64, Ops::reg_reg_imm(3, 3, -1));
        a.inst(O::BranchNeImm, Ops::branch_imm(3, 0, top));
        a.inst(O::Trap, Ops::none());
        let code = a.finish();
        let program =
            |backend| Program::from_code(&code, ProgramOptions { spec, backend }).unwrap();
        let (interp, recomp) = (program(Backend::Interpreter), program(Backend::Recompiler));
        let first = interp.block_cost_at(0).unwrap() as i64;
        assert!(
            first > NATIVE_GAS_SLICE,
            "{spec:?}: the first block costs {first}"
        );
        let mut reference = interp.instantiate(&[]).unwrap();
        reference.set_gas(i64::MAX);
        assert_eq!(reference.run(), Exit::Panic);
        let total = i64::MAX - reference.gas();
        let gases = [
            first - 1,
            first,
            first + 1,
            NATIVE_GAS_SLICE,
            NATIVE_GAS_SLICE + 1,
            first + NATIVE_GAS_SLICE,
            first + NATIVE_GAS_SLICE + 7,
            total - 1,
            total,
            i64::MAX,
        ];
        for gas in gases {
            let mut want = interp.instantiate(&[]).unwrap();
            let mut got = recomp.instantiate(&[]).unwrap();
            want.set_gas(gas);
            got.set_gas(gas);
            let (ew, eg) = (want.run(), got.run());
            assert_eq!(eg, ew, "{spec:?} gas {gas}");
            assert_eq!(state(&got), state(&want), "{spec:?} gas {gas}");
            assert_eq!(
                got.instruction_count(),
                want.instruction_count(),
                "{spec:?} gas {gas}"
            );
        }
    }
}
