//! Lazy compilation: blocks are decoded, lowered and costed when first entered. Whatever order
//! blocks are compiled in, and however many threads race to compile them, results must be the
//! ones an eager compilation gives.

use std::sync::{Arc, Barrier};

use pvm_core::asm::{Assembler, Operands as Ops};
use pvm_core::isa::Opcode as O;
use pvm_core::{Exit, Program, ProgramOptions, Spec};

const BLOCKS: u32 = 64;

/// A loop over `BLOCKS` blocks: block i adds i to r2 and branches to block i + 1 while
/// r1 (the round counter) runs down; the last block counts down r1 and jumps back through the
/// jump table (a dynamic jump) or halts.
fn many_blocks(spec: Spec, rounds: i64) -> Program {
    let mut a = Assembler::for_spec(spec);
    a.inst(O::LoadImm, Ops::reg_imm(1, rounds));
    a.inst(O::LoadImm, Ops::reg_imm(0, 0xffff_0000u32 as i64));
    let top = a.label();
    a.inst(O::Jump, Ops::to(top));
    a.bind(top);
    let entry = a.jump_table_entry(top);
    let labels: Vec<_> = (0..BLOCKS).map(|_| a.label()).collect();
    a.inst(O::Jump, Ops::to(labels[0]));
    for i in 0..BLOCKS as usize {
        a.bind(labels[i]);
        a.inst(O::AddImm64, Ops::reg_reg_imm(2, 2, i as i64));
        a.inst(O::MulImm64, Ops::reg_reg_imm(3, 2, 3));
        if i + 1 < BLOCKS as usize {
            // Always taken (r4 stays 0): the fallthrough edge is a block of its own.
            a.inst(O::BranchEqImm, Ops::branch_imm(4, 0, labels[i + 1]));
            a.inst(O::Trap, Ops::none());
        }
    }
    a.inst(O::AddImm64, Ops::reg_reg_imm(1, 1, -1));
    let done = a.label();
    a.inst(O::BranchEqImm, Ops::branch_imm(1, 0, done));
    a.inst(O::LoadImm, Ops::reg_imm(5, entry as i64));
    a.inst(O::JumpInd, Ops::reg_imm(5, 0));
    a.bind(done);
    a.inst(O::JumpInd, Ops::reg_imm(0, 0));
    Program::from_code(&a.finish(), ProgramOptions::new(spec)).expect("valid program")
}

fn run(p: &Program, gas: i64) -> (Exit, [u64; 13], i64) {
    let mut vm = p.instantiate(&[]).unwrap();
    vm.set_gas(gas);
    let exit = vm.run();
    (exit, *vm.registers(), vm.gas())
}

#[test]
fn costs_read_before_and_after_running_agree() {
    for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
        let eager = many_blocks(spec, 3).block_gas_costs();
        assert!(eager.len() as u32 > 2 * BLOCKS);
        let lazy = many_blocks(spec, 3);
        let before = run(&lazy, 1 << 40);
        assert_eq!(before.0, Exit::Halt);
        assert_eq!(lazy.block_gas_costs(), eager);
        // A program whose costs were all computed up front runs identically.
        let warm = many_blocks(spec, 3);
        let _ = warm.block_gas_costs();
        assert_eq!(run(&warm, 1 << 40), before);
    }
}

#[test]
fn threads_racing_to_compile_one_program_get_identical_results() {
    for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
        // Miri (which checks the publication protocol for data races) is slow: fewer rounds.
        let (rounds, repeats) = if cfg!(miri) { (2, 1) } else { (50, 10) };
        let expected = run(&many_blocks(spec, rounds), 1 << 40);
        assert_eq!(expected.0, Exit::Halt);
        // Out of gas part-way, at a block boundary: the exit must not depend on which thread
        // compiled the block.
        let short_gas = ((1 << 40) - expected.2) / 2;
        let short = run(&many_blocks(spec, rounds), short_gas);
        assert_eq!(short.0, Exit::OutOfGas);
        for _ in 0..repeats {
            let p = many_blocks(spec, rounds);
            let threads = 4;
            let barrier = Arc::new(Barrier::new(threads));
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (p, barrier) = (p.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        let gas = if t % 2 == 0 { 1 << 40 } else { short_gas };
                        (gas, run(&p, gas))
                    })
                })
                .collect();
            for h in handles {
                let (gas, got) = h.join().unwrap();
                assert_eq!(got, if gas == short_gas { short } else { expected });
            }
        }
    }
}

#[test]
fn stepping_a_fresh_program_matches_running_it() {
    for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
        let expected = run(&many_blocks(spec, 2), 1 << 40);
        let p = many_blocks(spec, 2);
        let mut vm = p.instantiate(&[]).unwrap();
        vm.set_gas(1 << 40);
        let exit = loop {
            if let Some(e) = vm.step() {
                break e;
            }
        };
        assert_eq!((exit, *vm.registers(), vm.gas()), expected);
    }
}

#[test]
fn entering_mid_block_compiles_the_block_and_charges_its_cost() {
    // Start at the second instruction of a block nobody has entered yet: ϱ^Δ(𝔏(pc)) is the
    // containing block's cost (GP 0.8.0 A.4) and execution proceeds from there.
    let p = many_blocks(Spec::Gp0_8_0, 1);
    let blocks = p.block_gas_costs();
    // A block past the first few with at least two instructions.
    let i = (4..blocks.len() - 1)
        .find(|&i| p.next_pc(blocks[i].pc) < blocks[i + 1].pc)
        .unwrap();
    let target = blocks[i];
    let second = p.next_pc(target.pc);
    let fresh = many_blocks(Spec::Gp0_8_0, 1);
    let mut vm = fresh.instantiate(&[]).unwrap();
    vm.set_gas(1000);
    vm.set_pc(second);
    assert_eq!(vm.step(), None);
    assert_eq!(vm.gas(), 1000 - target.cost as i64);
    assert_eq!(fresh.block_cost_at(second), Some(target.cost));
    // A pc inside an instruction is not an instruction start: panic, gas untouched.
    let mut vm = fresh.instantiate(&[]).unwrap();
    vm.set_gas(1000);
    vm.set_pc(second + 1);
    assert_eq!(vm.run(), Exit::Panic);
    assert_eq!(vm.gas(), 1000);
}
