//! GP 0.7.2 gas is exact per instruction (0.7.2 A.1, A.6): every executed instruction costs 1,
//! charged before it executes (so a faulting or panicking instruction is paid for, as anan-as,
//! typeberry and the GP errata after 0.7.2 do), and out-of-gas stops at exactly the instruction
//! that cannot be paid. `run()` pre-charges blocks and refunds; `step()` walks instruction by
//! instruction: they must agree at every observable point, for every gas budget.

use pvm_core::asm::{Assembler, Operands as Ops};
use pvm_core::isa::Opcode as O;
use pvm_core::{Access, Exit, Instance, Program, ProgramOptions, Spec};

fn program(build: impl FnOnce(&mut Assembler)) -> Program {
    let mut a = Assembler::for_spec(Spec::Gp0_7_2);
    build(&mut a);
    Program::from_code(&a.finish(), ProgramOptions::new(Spec::Gp0_7_2)).expect("valid program")
}

fn instance(p: &Program, gas: i64) -> Instance {
    let mut vm = p.instantiate(&[]).unwrap();
    vm.memory_mut().map(0x20000, 4096, Access::Write).unwrap();
    vm.set_gas(gas);
    vm
}

/// One observable state: the exit, pc, gas and registers.
type Observation = (Exit, u32, i64, [u64; 13]);

/// How the host answers: every call continues; `set_gas` (if any) replaces the gas at the n-th
/// call.
#[derive(Clone, Copy)]
struct Host {
    set_gas_at: Option<(usize, i64)>,
}

/// Runs to a final exit with `run()` (or `step()`), recording every host call and the end.
/// Returns the observations and the number of instructions the steps executed (step mode only).
fn observe(mut vm: Instance, stepping: bool, host: Host) -> (Vec<Observation>, u64) {
    let mut seen = Vec::new();
    let mut steps = 0u64;
    loop {
        let exit = if stepping {
            loop {
                let before = vm.gas();
                let e = vm.step();
                // A step that executes an instruction costs exactly 1; one that stops for gas
                // costs nothing.
                if e != Some(Exit::OutOfGas) {
                    assert_eq!(before - vm.gas(), 1, "a step costs one gas");
                    steps += 1;
                } else {
                    assert_eq!(before, vm.gas(), "out of gas leaves gas unchanged");
                }
                if let Some(e) = e {
                    break e;
                }
            }
        } else {
            vm.run()
        };
        seen.push((exit, vm.pc(), vm.gas(), *vm.registers()));
        assert!(!vm.gas_charged(), "χ is never set under GP 0.7.2");
        match exit {
            Exit::HostCall(_) => {
                if let Some((n, g)) = host.set_gas_at {
                    if seen.len() == n {
                        vm.set_gas(g);
                    }
                }
            }
            _ => return (seen, steps),
        }
    }
}

/// run() and step() agree for every gas budget from 0 to `max_gas`, and the stepped instruction
/// count equals the gas used (out-of-gas runs use all of it).
fn agree_for_all_budgets(p: &Program, max_gas: i64, host: Host) {
    for gas in 0..=max_gas {
        let (ran, _) = observe(instance(p, gas), false, host);
        let (stepped, steps) = observe(instance(p, gas), true, host);
        assert_eq!(ran, stepped, "gas {gas}: run and step differ");
        if host.set_gas_at.is_none() {
            let last = ran.last().unwrap();
            assert_eq!(
                gas - last.2,
                steps as i64,
                "gas {gas}: one gas per instruction"
            );
            if last.0 == Exit::OutOfGas {
                assert_eq!(last.2, 0, "gas {gas}: out of gas with nothing left");
            }
        }
    }
}

/// A loop whose body makes a host call mid-block, then a final block with a store.
fn looping_host_calls() -> Program {
    program(|a| {
        a.inst(O::LoadImm, Ops::reg_imm(1, 3));
        a.inst(O::LoadImm, Ops::reg_imm(5, 0x20000));
        a.inst(O::Fallthrough, Ops::none());
        let top = a.here();
        a.inst(O::AddImm64, Ops::reg_reg_imm(2, 2, 10));
        a.inst(O::Ecalli, Ops::imm(7));
        a.inst(O::AddImm64, Ops::reg_reg_imm(1, 1, -1));
        a.inst(O::BranchNeImm, Ops::branch_imm(1, 0, top));
        a.inst(O::StoreIndU64, Ops::reg_reg_imm(2, 5, 8));
        a.inst(O::AddImm64, Ops::reg_reg_imm(3, 3, 1));
        a.inst(O::Trap, Ops::none());
    })
}

#[test]
fn host_calls_see_exact_gas_and_run_agrees_with_step_for_every_budget() {
    let p = looping_host_calls();
    // 3 instructions, then 3 × 4, then 3 (store, add, trap): 18 instructions.
    let mut vm = instance(&p, 100);
    assert_eq!(vm.run(), Exit::HostCall(7));
    // load_imm, load_imm, fallthrough, add_imm, ecalli
    assert_eq!(
        (vm.pc(), vm.gas()),
        (p.next_pc(p.next_pc(p.next_pc(0))) + 3, 95)
    );
    for _ in 0..2 {
        assert_eq!(vm.run(), Exit::HostCall(7));
    }
    assert_eq!(vm.gas(), 100 - 5 - 4 - 4);
    assert_eq!(vm.run(), Exit::Panic);
    assert_eq!(vm.gas(), 100 - 18);
    assert_eq!(vm.registers()[3], 1);
    agree_for_all_budgets(&p, 20, Host { set_gas_at: None });
}

#[test]
fn out_of_gas_stops_at_the_exact_instruction() {
    let p = looping_host_calls();
    // 7 gas: load_imm, load_imm, fallthrough, add_imm, ecalli (5), then add_imm, branch (7);
    // the loop body's add_imm (the 8th instruction) cannot be paid.
    let mut vm = instance(&p, 7);
    assert_eq!(vm.run(), Exit::HostCall(7));
    assert_eq!(vm.gas(), 2);
    assert_eq!(vm.run(), Exit::OutOfGas);
    let top = p.next_pc(p.next_pc(p.next_pc(0)));
    assert_eq!((vm.pc(), vm.gas()), (top, 0));
    assert_eq!(
        vm.registers()[1],
        2,
        "the decrement after the host call ran"
    );
    assert_eq!(vm.registers()[2], 10, "the loop body ran once");
    // More gas resumes exactly there.
    vm.set_gas(1000);
    assert_eq!(vm.run(), Exit::HostCall(7));
    assert_eq!(vm.gas(), 998);
}

#[test]
fn a_host_that_changes_gas_is_followed_exactly() {
    let p = looping_host_calls();
    for g in [0, 1, 2, 3, 5, 50] {
        agree_for_all_budgets(
            &p,
            12,
            Host {
                set_gas_at: Some((1, g)),
            },
        );
    }
    // Gas set to 1 at the first call: the add_imm after it runs, the branch cannot be paid.
    let mut vm = instance(&p, 100);
    assert_eq!(vm.run(), Exit::HostCall(7));
    vm.set_gas(1);
    assert_eq!(vm.run(), Exit::OutOfGas);
    assert_eq!((vm.gas(), vm.registers()[1]), (0, 2));
}

#[test]
fn a_mid_block_page_fault_charges_the_faulting_instruction_only() {
    let p = program(|a| {
        a.inst(O::LoadImm, Ops::reg_imm(1, 0x30000)); // unmapped
        a.inst(O::LoadImm, Ops::reg_imm(2, 9));
        a.inst(O::StoreIndU8, Ops::reg_reg_imm(2, 1, 0));
        a.inst(O::LoadImm, Ops::reg_imm(3, 1));
        a.inst(O::LoadImm, Ops::reg_imm(4, 1));
        a.inst(O::Trap, Ops::none());
    });
    let mut vm = instance(&p, 100);
    assert_eq!(vm.run(), Exit::PageFault(0x30000));
    assert_eq!(vm.gas(), 97);
    assert_eq!(vm.pc(), p.next_pc(p.next_pc(0)));
    // Mapping the page and resuming retries the store, paying for it again.
    vm.memory_mut().map(0x30000, 4096, Access::Write).unwrap();
    assert_eq!(vm.run(), Exit::Panic);
    assert_eq!(vm.gas(), 97 - 4);
    agree_for_all_budgets(&p, 8, Host { set_gas_at: None });
}

#[test]
fn a_mid_block_panic_below_2_16_charges_up_to_the_panicking_instruction() {
    let p = program(|a| {
        a.inst(O::LoadImm, Ops::reg_imm(1, 0x100));
        a.inst(O::LoadIndU32, Ops::reg_reg_imm(2, 1, 0));
        a.inst(O::LoadImm, Ops::reg_imm(3, 1));
        a.inst(O::Trap, Ops::none());
    });
    let mut vm = instance(&p, 50);
    assert_eq!(vm.run(), Exit::Panic);
    assert_eq!((vm.pc(), vm.gas()), (p.next_pc(0), 48));
    agree_for_all_budgets(&p, 6, Host { set_gas_at: None });
}

#[test]
fn entering_at_a_non_instruction_costs_one_gas() {
    let p = program(|a| {
        a.inst(O::LoadImm, Ops::reg_imm(1, 0x100));
        a.inst(O::Trap, Ops::none());
    });
    let mut vm = instance(&p, 10);
    vm.set_pc(1);
    assert_eq!(vm.run(), Exit::Panic);
    assert_eq!(vm.gas(), 9);
    let mut vm = instance(&p, 0);
    vm.set_pc(1);
    assert_eq!(vm.run(), Exit::OutOfGas);
    assert_eq!(vm.gas(), 0);
}

#[test]
fn host_call_then_out_of_gas_on_the_next_instruction() {
    let p = program(|a| {
        a.inst(O::Ecalli, Ops::imm(1));
        a.inst(O::LoadImm, Ops::reg_imm(1, 5));
        a.inst(O::Trap, Ops::none());
    });
    let mut vm = instance(&p, 1);
    assert_eq!(vm.run(), Exit::HostCall(1));
    assert_eq!(vm.gas(), 0);
    assert_eq!(vm.run(), Exit::OutOfGas);
    assert_eq!((vm.pc(), vm.gas(), vm.registers()[1]), (p.next_pc(0), 0, 0));
    vm.set_gas(2);
    assert_eq!(vm.run(), Exit::Panic);
    assert_eq!((vm.gas(), vm.registers()[1]), (0, 5));
}
