//! `Instance::invoke`: entering a standard program again with new arguments (issue #13 item 4).

use pvm_core::asm::{Assembler, Operands};
use pvm_core::isa::Opcode;
use pvm_core::{Exit, HostOutcome, Program, ProgramError, ProgramOptions};

fn guest() -> Program {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/guests/hostcalls.jam"
    );
    Program::from_standard(
        &std::fs::read(path).unwrap(),
        false,
        ProgramOptions::default(),
    )
    .unwrap()
}

fn k(n: u32) -> Vec<u8> {
    n.to_le_bytes().to_vec()
}

/// Answers the guest's host calls: get_number (1001) returns 100, 200, ...; log (100) is ignored.
fn host() -> impl FnMut(u32, &mut pvm_core::HostCallContext<'_>) -> HostOutcome {
    let mut next = 0;
    move |id, ctx| {
        if id == 1001 {
            next += 100;
            ctx.set_reg(7, next);
        }
        HostOutcome::Continue
    }
}

#[test]
fn invoke_equals_a_fresh_instance_for_the_same_arguments() {
    let p = guest();
    // A fresh instance with args [5] vs. one that ran with [3] first and was invoked with [5].
    let mut fresh = p.instantiate(&k(5)).unwrap();
    fresh.set_gas(1_000_000);
    let exit_fresh = fresh.run_with_host(host());

    let mut vm = p.instantiate(&k(3)).unwrap();
    vm.set_gas(1_000_000);
    assert_eq!(vm.run_with_host(host()), Exit::Halt);
    assert_eq!(
        String::from_utf8(vm.output().unwrap()).unwrap(),
        "numbers: 100, 200, 300; sum = 600"
    );
    let exit = vm.invoke_with_host(0, &k(5), 1_000_000, host()).unwrap();
    assert_eq!(exit, exit_fresh);
    assert_eq!(exit, Exit::Halt);
    assert_eq!(vm.output(), fresh.output());
    assert_eq!(
        vm.gas(),
        fresh.gas(),
        "the entered block is charged again (χ reset)"
    );
    assert_eq!(vm.registers(), fresh.registers());
    assert_eq!(
        String::from_utf8(vm.output().unwrap()).unwrap(),
        "numbers: 100, 200, 300, 400, 500; sum = 1500"
    );
}

#[test]
fn prepare_invoke_lays_out_registers_and_arguments_as_instantiate() {
    let p = guest();
    let layout = p.standard_layout().unwrap().clone();
    let args = vec![7u8; 5000]; // two pages
    let fresh = p.instantiate(&args).unwrap();
    let mut vm = p.instantiate(&[1, 2, 3]).unwrap();
    vm.registers_mut()[5] = 99;
    vm.prepare_invoke(0, &args, 1234).unwrap();
    assert_eq!(vm.registers(), fresh.registers());
    assert_eq!(vm.registers()[0], 0xffff_0000);
    assert_eq!(vm.registers()[1], layout.stack_end() as u64);
    assert_eq!(vm.registers()[7], layout.args_start() as u64);
    assert_eq!(vm.registers()[8], 5000);
    assert_eq!(
        (vm.pc(), vm.gas(), vm.gas_charged(), vm.last_exit()),
        (0, 1234, false, None)
    );
    let pages = |i: &pvm_core::Instance| i.memory().pages().collect::<Vec<_>>();
    assert_eq!(pages(&vm), pages(&fresh));
    assert_eq!(pvm_core::trace::pvm_hash(&vm), {
        let mut f = fresh.clone();
        f.set_gas(1234);
        pvm_core::trace::pvm_hash(&f)
    });
    // Shorter arguments unmap the pages the longer ones needed.
    vm.prepare_invoke(0, &[9], 1).unwrap();
    let a = layout.args_start();
    assert_eq!(vm.memory().access(a), pvm_core::Access::Read);
    assert_eq!(vm.memory().access(a + 4096), pvm_core::Access::None);
    let mut b = [0u8; 2];
    vm.memory().read(a, &mut b).unwrap();
    assert_eq!(b, [9, 0], "zero-padded to the page");
    // No arguments: nothing mapped in the argument zone.
    vm.prepare_invoke(0, &[], 1).unwrap();
    assert_eq!(vm.memory().access(a), pvm_core::Access::None);
}

#[test]
fn invoke_after_a_host_call_stop_starts_over() {
    let p = guest();
    let mut vm = p.instantiate(&k(2)).unwrap();
    vm.set_gas(1_000_000);
    assert_eq!(vm.run(), Exit::HostCall(100));
    // Invoking again drops the pending continuation and starts at the entry.
    assert_eq!(vm.invoke(0, &k(2), 1_000_000).unwrap(), Exit::HostCall(100));
    assert_eq!(vm.gas(), {
        let mut f = p.instantiate(&k(2)).unwrap();
        f.set_gas(1_000_000);
        f.run();
        f.gas()
    });
}

#[test]
fn invoke_errors_leave_the_instance_unchanged() {
    let p = guest();
    let mut vm = p.instantiate(&[]).unwrap();
    vm.set_gas(77);
    let too_long = vec![0u8; (1 << 24) + 1];
    assert_eq!(
        vm.prepare_invoke(0, &too_long, 5),
        Err(ProgramError::ArgumentsTooLong {
            len: too_long.len()
        })
    );
    assert_eq!(vm.gas(), 77);

    let mut a = Assembler::new();
    a.inst(Opcode::Trap, Operands::default());
    let code = Program::from_code(&a.finish(), ProgramOptions::default()).unwrap();
    let mut vm = code.instantiate(&[]).unwrap();
    let e = vm.invoke(0, &[], 10).unwrap_err();
    assert_eq!(e, ProgramError::InvokeWithoutLayout);
    assert!(e.to_string().contains("standard program"), "{e}");
}

#[test]
fn invoke_with_little_gas_runs_out() {
    let p = guest();
    let mut vm = p.instantiate(&[]).unwrap();
    assert_eq!(vm.invoke(0, &k(1), 0).unwrap(), Exit::OutOfGas);
    assert_eq!(vm.gas(), 0);
}
