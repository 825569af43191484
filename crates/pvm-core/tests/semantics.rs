//! Semantics the conformance vectors do not cover, each written from the GP text (appendix A).

use pvm_core::asm::{standard_program, Assembler, Operands as Ops};
use pvm_core::isa::Opcode as O;
use pvm_core::{
    Access, Exit, HostOutcome, Instance, InvalidCodeReason, InvocationResult, Program,
    ProgramError, ProgramOptions, Spec,
};

fn program(spec: Spec, build: impl FnOnce(&mut Assembler)) -> Program {
    let mut a = Assembler::for_spec(spec);
    build(&mut a);
    Program::from_code(&a.finish(), ProgramOptions::new(spec)).expect("valid program")
}

fn instance(p: &Program, gas: i64) -> Instance {
    let mut vm = p.instantiate(&[]).unwrap();
    vm.set_gas(gas);
    vm
}

/// Runs `op` with r1 = a, r2 = b into r3 (three-register class) under both specs.
fn three(op: O, a: u64, b: u64) -> u64 {
    let mut results = Vec::new();
    for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
        let p = program(spec, |asm| {
            asm.inst(O::LoadImm64, Ops::reg_imm(1, a as i64));
            asm.inst(O::LoadImm64, Ops::reg_imm(2, b as i64));
            asm.inst(op, Ops::three(3, 1, 2));
            asm.inst(O::Trap, Ops::none());
        });
        let mut vm = instance(&p, 1000);
        assert_eq!(vm.run(), Exit::Panic);
        results.push(vm.registers()[3]);
    }
    assert_eq!(results[0], results[1], "{op:?} differs between specs");
    results[0]
}

/// Runs `op` with r1 = a (source) into r3 (two-register class), GP 0.8.0.
fn two(op: O, a: u64) -> u64 {
    let p = program(Spec::Gp0_8_0, |asm| {
        asm.inst(O::LoadImm64, Ops::reg_imm(1, a as i64));
        asm.inst(op, Ops::dst_src(3, 1));
        asm.inst(O::Trap, Ops::none());
    });
    let mut vm = instance(&p, 1000);
    vm.run();
    vm.registers()[3]
}

/// Runs `op` r3 = f(r2 = b, imm) (two registers and an immediate), GP 0.8.0.
fn reg_imm(op: O, b: u64, imm: i64) -> u64 {
    let p = program(Spec::Gp0_8_0, |asm| {
        asm.inst(O::LoadImm64, Ops::reg_imm(2, b as i64));
        asm.inst(op, Ops::reg_reg_imm(3, 2, imm));
        asm.inst(O::Trap, Ops::none());
    });
    let mut vm = instance(&p, 1000);
    vm.run();
    vm.registers()[3]
}

const MIN64: u64 = 1 << 63;
const NEG1: u64 = u64::MAX;

#[test]
fn division_and_remainder_edge_cases() {
    // A.5.13: division by zero gives 2^64 − 1; remainder by zero gives the dividend.
    assert_eq!(three(O::DivU64, 7, 0), u64::MAX);
    assert_eq!(three(O::DivS64, 7, 0), u64::MAX);
    assert_eq!(three(O::RemU64, 7, 0), 7);
    assert_eq!(three(O::RemS64, (-7i64) as u64, 0), (-7i64) as u64);
    assert_eq!(three(O::DivU32, 7, 0), u64::MAX);
    assert_eq!(three(O::DivS32, 7, 0), u64::MAX);
    assert_eq!(
        three(O::RemU32, 0xffff_ffff_8000_0000, 0),
        0xffff_ffff_8000_0000
    );
    assert_eq!(three(O::RemS32, 0x1_ffff_fff9, 0), (-7i64) as u64);
    // Overflow: MIN / −1 = MIN, MIN rem −1 = 0.
    assert_eq!(three(O::DivS64, MIN64, NEG1), MIN64);
    assert_eq!(three(O::RemS64, MIN64, NEG1), 0);
    assert_eq!(
        three(O::DivS32, 0x8000_0000, 0xffff_ffff),
        0xffff_ffff_8000_0000
    );
    assert_eq!(three(O::RemS32, 0x8000_0000, 0xffff_ffff), 0);
    // Rounding toward zero; smod keeps the numerator's sign.
    assert_eq!(three(O::DivS64, (-7i64) as u64, 2), (-3i64) as u64);
    assert_eq!(three(O::RemS64, (-7i64) as u64, 2), (-1i64) as u64);
    assert_eq!(three(O::RemS64, 7, (-2i64) as u64), 1);
    assert_eq!(three(O::DivS32, 0xffff_fff9, 2), (-3i64) as u64);
    assert_eq!(three(O::RemS32, 0xffff_fff9, 2), (-1i64) as u64);
    // 32-bit forms use only the low 32 bits and sign-extend the result.
    assert_eq!(three(O::DivU32, 0x1_8000_0000, 1), 0xffff_ffff_8000_0000);
    assert_eq!(three(O::RemU32, 0x5_0000_0007, 4), 3);
}

#[test]
fn shifts_are_taken_modulo_the_width() {
    assert_eq!(three(O::ShloL32, 1, 33), 2);
    assert_eq!(three(O::ShloL64, 1, 65), 2);
    assert_eq!(three(O::ShloR64, MIN64, 64 + 63), 1);
    assert_eq!(three(O::SharR64, MIN64, 63), NEG1);
    assert_eq!(three(O::SharR32, 0x8000_0000, 1), 0xffff_ffff_c000_0000);
    assert_eq!(
        three(O::ShloR32, 0xffff_ffff_8000_0000, 32),
        0xffff_ffff_8000_0000
    );
    assert_eq!(three(O::ShloL32, 0x4000_0000, 1), 0xffff_ffff_8000_0000);
    assert_eq!(reg_imm(O::ShloLImm32, 1, 31), 0xffff_ffff_8000_0000);
    assert_eq!(reg_imm(O::ShloLImmAlt64, 3, 2), 16); // imm << (r_B mod 64): 2 << 3
    assert_eq!(reg_imm(O::SharRImmAlt32, 4, -256), (-16i64) as u64);
    assert_eq!(reg_imm(O::ShloRImmAlt64, 64 + 4, 256), 16);
}

#[test]
fn thirty_two_bit_results_are_sign_extended() {
    assert_eq!(three(O::Add32, 0x7fff_ffff, 1), 0xffff_ffff_8000_0000);
    assert_eq!(three(O::Sub32, 0, 1), NEG1);
    assert_eq!(three(O::Mul32, 0x10000, 0x8000), 0xffff_ffff_8000_0000);
    assert_eq!(reg_imm(O::AddImm32, 0xffff_ffff, 1), 0);
    assert_eq!(reg_imm(O::NegAddImm32, 1, 0), NEG1);
    assert_eq!(reg_imm(O::MulImm32, 0x4000_0000, 2), 0xffff_ffff_8000_0000);
}

#[test]
fn multiply_upper_variants() {
    assert_eq!(three(O::MulUpperUU, NEG1, NEG1), NEG1 - 1);
    assert_eq!(three(O::MulUpperSS, NEG1, NEG1), 0);
    assert_eq!(three(O::MulUpperSS, MIN64, MIN64), 1 << 62);
    assert_eq!(three(O::MulUpperSU, NEG1, NEG1), NEG1); // −1 · (2^64 − 1) = −2^64 + 1 → floor(/2^64) = −1
    assert_eq!(three(O::MulUpperSU, 2, NEG1), 1);
    assert_eq!(three(O::Mul64, NEG1, 3), NEG1 - 2);
}

#[test]
fn rotates_bit_ops_and_comparisons() {
    assert_eq!(three(O::RotL64, 0x8000_0000_0000_0001, 1), 3);
    assert_eq!(three(O::RotR64, 3, 65), 0x8000_0000_0000_0001);
    assert_eq!(three(O::RotL32, 0x8000_0001, 1), 3);
    assert_eq!(three(O::RotR32, 1, 1), 0xffff_ffff_8000_0000);
    assert_eq!(reg_imm(O::RotR64Imm, 1, 1), MIN64);
    assert_eq!(reg_imm(O::RotR64ImmAlt, 1, 2), 1); // imm rotated right by r_B: 2 ror 1
    assert_eq!(reg_imm(O::RotR32Imm, 1, 33), 0xffff_ffff_8000_0000);
    assert_eq!(reg_imm(O::RotR32ImmAlt, 4, 1), 0x1000_0000);
    assert_eq!(three(O::AndInv, 0b1100, 0b1010), 0b0100);
    assert_eq!(three(O::OrInv, 0, NEG1), 0);
    assert_eq!(three(O::Xnor, 0b1100, 0b1010), !0b0110u64);
    assert_eq!(three(O::Max, NEG1, 1), 1);
    assert_eq!(three(O::MaxU, NEG1, 1), NEG1);
    assert_eq!(three(O::Min, NEG1, 1), NEG1);
    assert_eq!(three(O::MinU, NEG1, 1), 1);
    assert_eq!(three(O::SetLtS, NEG1, 0), 1);
    assert_eq!(three(O::SetLtU, NEG1, 0), 0);
    assert_eq!(reg_imm(O::SetGtSImm, 0, -1), 1);
    assert_eq!(reg_imm(O::SetGtUImm, 0, -1), 0);
}

#[test]
fn conditional_moves_keep_the_destination_otherwise() {
    let run = |b: u64| {
        let p = program(Spec::Gp0_8_0, |a| {
            a.inst(O::LoadImm, Ops::reg_imm(1, 5));
            a.inst(O::LoadImm64, Ops::reg_imm(2, b as i64));
            a.inst(O::LoadImm, Ops::reg_imm(3, 9));
            a.inst(O::CmovIz, Ops::three(3, 1, 2));
            a.inst(O::LoadImm, Ops::reg_imm(4, 9));
            a.inst(O::CmovNzImm, Ops::reg_reg_imm(4, 2, 7));
            a.inst(O::Trap, Ops::none());
        });
        let mut vm = instance(&p, 1000);
        vm.run();
        (vm.registers()[3], vm.registers()[4])
    };
    assert_eq!(run(0), (5, 9));
    assert_eq!(run(1), (9, 7));
}

#[test]
fn two_register_bit_operations() {
    assert_eq!(two(O::CountSetBits32, 0xffff_ffff_0000_0001), 1);
    assert_eq!(two(O::CountSetBits64, NEG1), 64);
    assert_eq!(two(O::LeadingZeroBits32, 0), 32);
    assert_eq!(two(O::LeadingZeroBits64, 0), 64);
    assert_eq!(two(O::LeadingZeroBits32, 0xffff_ffff_0000_0001), 31);
    assert_eq!(two(O::TrailingZeroBits64, 0), 64);
    assert_eq!(two(O::TrailingZeroBits32, 0x1_0000_0000), 32);
    assert_eq!(two(O::SignExtend8, 0x80), 0xffff_ffff_ffff_ff80);
    assert_eq!(two(O::SignExtend16, 0x1_7fff), 0x7fff);
    assert_eq!(two(O::ZeroExtend16, NEG1), 0xffff);
    assert_eq!(
        two(O::ReverseBytes, 0x0102_0304_0506_0708),
        0x0807_0605_0403_0201
    );
}

// ---- prevalidation (GP 0.8.0 A.1) ----

fn code_blob(code: &[u8], bitmask: &[bool]) -> Vec<u8> {
    pvm_core::Blob {
        jump_table: Default::default(),
        code: code.to_vec(),
        bitmask: bitmask.to_vec(),
    }
    .encode()
}

fn invalid_reason(code: &[u8], bitmask: &[bool]) -> (u32, InvalidCodeReason) {
    match Program::from_code(&code_blob(code, bitmask), ProgramOptions::default()) {
        Err(ProgramError::InvalidCode { pc, reason }) => (pc, reason),
        other => panic!("expected InvalidCode, got {other:?}"),
    }
}

#[test]
fn prevalidation_rejects_bad_code() {
    assert_eq!(invalid_reason(&[], &[]), (0, InvalidCodeReason::Empty));
    // unknown opcode 3
    assert_eq!(
        invalid_reason(&[3, 0], &[true, true]),
        (0, InvalidCodeReason::UnknownOpcode(3))
    );
    // opcode 111 exists only in GP 0.7.2
    assert_eq!(
        invalid_reason(&[111, 0, 0], &[true, false, true]),
        (0, InvalidCodeReason::UnknownOpcode(111))
    );
    // last instruction is not a terminator
    assert!(matches!(
        invalid_reason(&[51, 1, 5], &[true, false, false]),
        (0, InvalidCodeReason::NoTerminatorAtEnd("load_imm"))
    ));
    // the first byte is not an instruction start
    assert_eq!(
        invalid_reason(&[0, 0], &[false, true]),
        (0, InvalidCodeReason::NotInstructionStart)
    );
    // a gap of more than 24 bytes: the walk from 0 lands on pc 25, which is not a start
    let mut code = vec![0u8; 30];
    let mut k = vec![false; 30];
    k[0] = true;
    k[29] = true;
    code[0] = 1; // fallthrough
    assert_eq!(
        invalid_reason(&code, &k),
        (25, InvalidCodeReason::NotInstructionStart)
    );
}

#[test]
fn gp072_executes_invalid_code_as_trap() {
    // Opcode 3 is invalid: GP 0.7.2 runs it as trap (panic at that pc); the instruction before it
    // still executes.
    let blob = code_blob(&[51, 7, 9, 3], &[true, false, false, true]);
    let p = Program::from_code(&blob, ProgramOptions::new(Spec::Gp0_7_2)).unwrap();
    let mut vm = instance(&p, 100);
    assert_eq!(vm.run(), Exit::Panic);
    assert_eq!((vm.pc(), vm.registers()[7]), (3, 9));
    // Running off the end executes the implicit trap at |c|.
    let blob = code_blob(&[51, 7, 9], &[true, false, false]);
    let p = Program::from_code(&blob, ProgramOptions::new(Spec::Gp0_7_2)).unwrap();
    let mut vm = instance(&p, 100);
    assert_eq!(vm.run(), Exit::Panic);
    assert_eq!((vm.pc(), vm.gas()), (3, 98));
}

// ---- control flow ----

#[test]
fn gp080_branch_checks_both_edges_gp072_only_the_taken_one() {
    // branch_eq_imm r1, 1 → a pc inside an instruction (not a block start); r1 = 0 so not taken.
    let build = |spec| {
        let mut a = Assembler::for_spec(spec);
        let bad = a.label();
        a.inst(O::BranchEqImm, Ops::branch_imm(1, 1, bad));
        a.inst(O::LoadImm, Ops::reg_imm(7, 42));
        a.bind(bad);
        a.raw(&[0, 0]); // bad points at the second byte of a load_imm-less filler
        a.inst(O::Trap, Ops::none());
        let mut blob = a.finish_blob();
        // point the target one byte further, into the middle of the filler
        let off = i32::from_le_bytes(blob.code[3..7].try_into().unwrap()) + 1;
        blob.code[3..7].copy_from_slice(&off.to_le_bytes());
        blob.bitmask[off as usize] = false;
        Program::from_blob(blob, ProgramOptions::new(spec)).unwrap()
    };
    let mut vm = instance(&build(Spec::Gp0_8_0), 1000);
    assert_eq!(vm.run(), Exit::Panic);
    assert_eq!((vm.pc(), vm.registers()[7]), (0, 0));
    let mut vm = instance(&build(Spec::Gp0_7_2), 1000);
    assert_eq!(vm.run(), Exit::Panic); // continues, loads 42, then traps later
    assert_eq!(vm.registers()[7], 42);
}

/// A program whose first instruction (built by `first`) targets a pc one byte into the
/// `load_imm r7, 42` that follows it: not an instruction start, so never in ϖ.
fn first_targets_mid_instruction(
    spec: Spec,
    first: impl Fn(pvm_core::asm::Label) -> (O, Ops),
) -> Program {
    let mut a = Assembler::for_spec(spec);
    let bad = a.label();
    let (opcode, operands) = first(bad);
    a.inst(opcode, operands);
    a.bind(bad);
    a.inst(O::LoadImm, Ops::reg_imm(7, 42));
    a.inst(O::Trap, Ops::none());
    let mut blob = a.finish_blob();
    // The offset is the last 4 bytes of the first instruction (before the 3-byte load_imm and the trap).
    let at = blob.code.len() - 1 - 3 - 4;
    let off = i32::from_le_bytes(blob.code[at..at + 4].try_into().unwrap()) + 1;
    blob.code[at..at + 4].copy_from_slice(&off.to_le_bytes());
    Program::from_blob(blob, ProgramOptions::new(spec)).unwrap()
}

#[test]
fn taking_a_static_edge_outside_varpi_panics_at_the_jumping_instruction() {
    // load_imm_jump r1, 5 → invalid target: φ1 is written, then the jump panics (both versions).
    // A taken GP 0.7.2 branch to an invalid target panics too (GP 0.8.0 rejects such a branch
    // statically). Run and single-step must agree, and gas is the first block's cost.
    for spec in [Spec::Gp0_7_2, Spec::Gp0_8_0] {
        let lij = first_targets_mid_instruction(spec, |l| {
            (
                O::LoadImmJump,
                Ops {
                    ra: 1,
                    imm1: 5,
                    target: Some(l),
                    ..Ops::none()
                },
            )
        });
        let branch =
            first_targets_mid_instruction(spec, |l| (O::BranchEqImm, Ops::branch_imm(1, 0, l)));
        for (p, r1) in [(lij, 5), (branch, 0)] {
            let cost = p.block_gas_costs()[0].cost as i64;
            let mut vm = instance(&p, 100);
            assert_eq!(vm.run(), Exit::Panic, "{spec:?}");
            assert_eq!((vm.pc(), vm.registers()[1], vm.registers()[7]), (0, r1, 0));
            assert_eq!(vm.gas(), 100 - cost);
            let mut vm = instance(&p, 100);
            let mut exit = vm.step();
            let mut steps = 1;
            while exit.is_none() && steps < 10 {
                exit = vm.step();
                steps += 1;
            }
            assert_eq!((exit, steps), (Some(Exit::Panic), 1), "{spec:?}");
            assert_eq!((vm.pc(), vm.registers()[1], vm.gas()), (0, r1, 100 - cost));
        }
    }
}

#[test]
fn gp080_branch_or_fallthrough_at_the_end_of_code_panics() {
    // The fallthrough edge of a final branch is |c|, which is not in ϖ: panic even if taken.
    let p = program(Spec::Gp0_8_0, |a| {
        let top = a.here();
        a.inst(O::BranchEqImm, Ops::branch_imm(1, 0, top));
    });
    let mut vm = instance(&p, 1000);
    assert_eq!(vm.run(), Exit::Panic);
    assert_eq!(vm.pc(), 0);
    let p = program(Spec::Gp0_8_0, |a| a.inst(O::Fallthrough, Ops::none()));
    let mut vm = instance(&p, 1000);
    assert_eq!(vm.run(), Exit::Panic);
    // GP 0.7.2: fallthrough simply continues, into the implicit trap at |c|.
    let p = program(Spec::Gp0_7_2, |a| a.inst(O::Fallthrough, Ops::none()));
    let mut vm = instance(&p, 1000);
    assert_eq!(vm.run(), Exit::Panic);
    assert_eq!(vm.pc(), 1);
}

fn djump_program(target_reg_value: u64) -> Instance {
    let p = program(Spec::Gp0_8_0, |a| {
        let t = a.label();
        let addr = a.jump_table_entry(t);
        assert_eq!(addr, 2);
        a.inst(O::LoadImm64, Ops::reg_imm(1, target_reg_value as i64));
        a.inst(O::JumpInd, Ops::reg_imm(1, 0));
        a.bind(t);
        a.inst(O::LoadImm, Ops::reg_imm(7, 1));
        a.inst(O::Trap, Ops::none());
    });
    let mut vm = instance(&p, 1000);
    vm.run();
    vm
}

#[test]
fn dynamic_jump_rules() {
    let vm = djump_program(2);
    assert_eq!((vm.last_exit(), vm.registers()[7]), (Some(Exit::Panic), 1)); // reached the target, then trap
                                                                             // 0: panic; odd: misaligned; 4: beyond |j|·Z_A.
    for bad in [0u64, 1, 3, 4] {
        let vm = djump_program(bad);
        assert_eq!(
            (vm.last_exit(), vm.registers()[7]),
            (Some(Exit::Panic), 0),
            "address {bad:#x}"
        );
    }
    // The address is (φ_A + ν) mod 2^32: 0x1_0000_0002 jumps through entry 0.
    let vm = djump_program(0x1_0000_0002);
    assert_eq!((vm.last_exit(), vm.registers()[7]), (Some(Exit::Panic), 1));
    let vm = djump_program(0xffff_ffff_ffff_0000);
    assert_eq!(vm.last_exit(), Some(Exit::Halt));
    assert_eq!(vm.pc(), 10); // the jump_ind's pc (after a 10-byte load_imm_64)
}

#[test]
fn load_imm_jump_ind_reads_the_base_register_before_writing() {
    let p = program(Spec::Gp0_8_0, |a| {
        let t = a.label();
        a.jump_table_entry(t);
        a.inst(O::LoadImm, Ops::reg_imm(1, 0));
        // r1 = 2 (ν_X) and jump to (old r1 = 0) + 2 = 2 → entry 0
        a.inst(
            O::LoadImmJumpInd,
            Ops {
                ra: 1,
                rb: 1,
                imm1: 99,
                imm2: 2,
                target: None,
                rd: 0,
            },
        );
        a.bind(t);
        a.inst(O::Trap, Ops::none());
    });
    let mut vm = instance(&p, 1000);
    assert_eq!(vm.run(), Exit::Panic);
    assert_eq!(vm.registers()[1], 99);
    assert_eq!(vm.pc(), p.block_gas_costs().last().unwrap().pc);
}

#[test]
fn gp080_entry_at_a_non_instruction_panics_with_gas_untouched() {
    let p = program(Spec::Gp0_8_0, |a| {
        a.inst(O::LoadImm, Ops::reg_imm(7, 300));
        a.inst(O::Trap, Ops::none());
    });
    let mut vm = instance(&p, 1000);
    vm.set_pc(1);
    assert_eq!(vm.run(), Exit::Panic);
    assert_eq!((vm.pc(), vm.gas(), vm.gas_charged()), (1, 1000, false));
    vm.set_pc(1000);
    assert_eq!(vm.run(), Exit::Panic);
    assert_eq!(vm.gas(), 1000);
}

// ---- gas ----

#[test]
fn out_of_gas_leaves_gas_and_pc_and_can_resume() {
    let p = program(Spec::Gp0_8_0, |a| {
        a.inst(O::LoadImm, Ops::reg_imm(1, 3));
        a.inst(O::Fallthrough, Ops::none());
        let top = a.here();
        a.inst(O::AddImm64, Ops::reg_reg_imm(1, 1, -1));
        a.inst(O::BranchNeImm, Ops::branch_imm(1, 0, top));
        a.inst(O::Trap, Ops::none());
    });
    let costs: Vec<_> = p.block_gas_costs().to_vec();
    assert_eq!(costs.len(), 3);
    let (entry, loop_block, tail) = (
        costs[0].cost as i64,
        costs[1].cost as i64,
        costs[2].cost as i64,
    );
    let total = entry + 3 * loop_block + tail;
    let mut vm = instance(&p, total - 1);
    assert_eq!(vm.run(), Exit::OutOfGas);
    // stopped at the start of the final block, gas unchanged by the failed charge
    assert_eq!(
        (vm.pc(), vm.gas(), vm.gas_charged()),
        (costs[2].pc, tail - 1, false)
    );
    vm.set_gas(vm.gas() + 1);
    assert_eq!(vm.run(), Exit::Panic);
    assert_eq!(vm.gas(), 0);
    // exactly enough gas: runs to the end with 0 left
    let mut vm = instance(&p, total);
    assert_eq!(vm.run(), Exit::Panic);
    assert_eq!(vm.gas(), 0);
}

#[test]
fn resuming_mid_block_after_a_host_call_does_not_charge_again() {
    let p = program(Spec::Gp0_8_0, |a| {
        a.inst(O::LoadImm, Ops::reg_imm(7, 1));
        a.inst(O::Ecalli, Ops::imm(5));
        a.inst(O::LoadImm, Ops::reg_imm(8, 2));
        a.inst(O::Trap, Ops::none());
    });
    assert_eq!(p.block_gas_costs().len(), 1);
    let cost = p.block_gas_costs()[0].cost as i64;
    let mut vm = instance(&p, 10_000);
    assert_eq!(vm.run(), Exit::HostCall(5));
    assert_eq!(
        (vm.pc(), vm.gas(), vm.gas_charged()),
        (3, 10_000 - cost, true)
    );
    assert_eq!(vm.run(), Exit::Panic);
    assert_eq!(vm.gas(), 10_000 - cost);
    assert_eq!(vm.registers()[8], 2);
}

#[test]
fn page_fault_then_map_then_resume_retries_without_charging() {
    let mut store_pc = 0;
    let p = program(Spec::Gp0_8_0, |a| {
        a.inst(O::LoadImm, Ops::reg_imm(1, 0x20000));
        a.inst(O::LoadImm, Ops::reg_imm(2, 77));
        store_pc = a.pc();
        a.inst(O::StoreIndU8, Ops::reg_reg_imm(2, 1, 5));
        a.inst(O::LoadIndU8, Ops::reg_reg_imm(7, 1, 5));
        a.inst(O::Trap, Ops::none());
    });
    let mut vm = instance(&p, 10_000);
    assert_eq!(vm.run(), Exit::PageFault(0x20000));
    let gas = vm.gas();
    assert_eq!(vm.registers()[2], 77);
    assert_eq!(vm.pc(), store_pc);
    vm.memory_mut().map(0x20000, 4096, Access::Read).unwrap();
    assert_eq!(vm.run(), Exit::PageFault(0x20000)); // read-only: still a fault
    vm.memory_mut().map(0x20000, 4096, Access::Write).unwrap();
    assert_eq!(vm.run(), Exit::Panic);
    assert_eq!((vm.registers()[7], vm.gas()), (77, gas));
}

#[test]
fn memory_below_2_16_panics_and_addresses_wrap() {
    let p = program(Spec::Gp0_8_0, |a| {
        a.inst(O::LoadU8, Ops::reg_imm(7, 0xffff));
        a.inst(O::Trap, Ops::none());
    });
    let mut vm = instance(&p, 1000);
    assert_eq!(vm.run(), Exit::Panic);
    assert_eq!(vm.pc(), 0);
    // r1 + imm wraps mod 2^32: 0xffff_ffff_0002_0000 + 0 → 0x20000
    let p = program(Spec::Gp0_8_0, |a| {
        a.inst(
            O::LoadImm64,
            Ops::reg_imm(1, 0xffff_ffff_0002_0000u64 as i64),
        );
        a.inst(O::LoadIndU8, Ops::reg_reg_imm(7, 1, 0));
        a.inst(O::Trap, Ops::none());
    });
    let mut vm = instance(&p, 1000);
    vm.memory_mut().map(0x20000, 4096, Access::Read).unwrap();
    vm.memory_mut().write_unchecked(0x20000, &[5]).unwrap();
    assert_eq!(vm.run(), Exit::Panic);
    assert_eq!(vm.registers()[7], 5);
}

// ---- standard programs (A.7) and Ψ_M (A.8) ----

fn echo_program(metadata: Option<&[u8]>) -> Vec<u8> {
    // Returns its arguments as output: r7/r8 already hold (args address, |args|); halt via r0.
    let mut a = Assembler::new();
    a.inst(O::JumpInd, Ops::reg_imm(0, 0));
    standard_program(metadata, b"ro!", b"rw", 2, 8192, &a.finish())
}

#[test]
fn standard_program_layout() {
    let p = Program::from_standard(&echo_program(None), false, ProgramOptions::default()).unwrap();
    let vm = p.instantiate(b"hello").unwrap();
    let r = vm.registers();
    assert_eq!(r[0], 0xffff_0000);
    assert_eq!(r[1], (1u64 << 32) - 2 * (1 << 16) - (1 << 24));
    assert_eq!(r[7], (1u64 << 32) - (1 << 16) - (1 << 24));
    assert_eq!(r[8], 5);
    let m = vm.memory();
    assert_eq!(m.access(0x10000), Access::Read);
    assert_eq!(m.access(0x10000 + 4096), Access::None);
    let rw = 2 * 0x10000 + 0x10000; // 2Z_Z + Q(|o|)
    assert_eq!(m.access(rw), Access::Write);
    assert_eq!(m.access(rw + 2 * 4096), Access::Write); // P(|w|) + z·Z_P = 3 pages
    assert_eq!(m.access(rw + 3 * 4096), Access::None);
    assert_eq!(m.access(r[1] as u32 - 1), Access::Write);
    assert_eq!(m.access(r[1] as u32 - 8193), Access::None);
    let mut buf = [0u8; 3];
    m.read(0x10000, &mut buf).unwrap();
    assert_eq!(&buf, b"ro!");
    assert_eq!(m.access(r[7] as u32), Access::Read);
}

#[test]
fn invocation_returns_output_gas_used_and_handles_failures() {
    let bytes = echo_program(Some(b"meta"));
    let p = Program::from_standard(&bytes, true, ProgramOptions::default()).unwrap();
    assert_eq!(p.metadata(), Some(&b"meta"[..]));
    let (used, result) =
        pvm_core::host::invoke(Ok(&p), 0, 1000, b"hi", |_, _| HostOutcome::Continue);
    assert_eq!(result, InvocationResult::Output(b"hi".to_vec()));
    assert_eq!(used, p.block_gas_costs()[0].cost as u64);
    let (used, result) = pvm_core::host::invoke(Ok(&p), 0, 1, b"hi", |_, _| HostOutcome::Continue);
    assert_eq!((used, result), (0, InvocationResult::OutOfGas));
    let err = Program::from_standard(&bytes[..10], true, ProgramOptions::default()).unwrap_err();
    assert_eq!(
        pvm_core::host::invoke(Err(&err), 0, 1000, b"", |_, _| HostOutcome::Continue),
        (0, InvocationResult::Panic)
    );
}

#[test]
fn malformed_standard_programs_are_typed_errors() {
    let good = echo_program(None);
    for cut in [0, 5, 12, 14, good.len() - 1] {
        let e = Program::from_standard(&good[..cut], false, ProgramOptions::default()).unwrap_err();
        assert!(
            matches!(e, ProgramError::Truncated { .. }),
            "cut {cut}: {e}"
        );
        assert!(e.to_string().contains("byte offset"), "{e}");
    }
    let mut extra = good.clone();
    extra.push(0);
    assert!(matches!(
        Program::from_standard(&extra, false, ProgramOptions::default()),
        Err(ProgramError::TrailingBytes { .. })
    ));
    // sections that cannot fit in 2^32
    let huge = standard_program(None, &[], &[], u16::MAX, 0xff_ffff, &{
        let mut a = Assembler::new();
        a.inst(O::Trap, Ops::none());
        a.finish()
    });
    let mut huge = huge;
    huge[0..3].copy_from_slice(&[0xff, 0xff, 0xff]); // |o| = 2^24 - 1, but the data is absent
    assert!(Program::from_standard(&huge, false, ProgramOptions::default()).is_err());
    let p = Program::from_standard(&good, false, ProgramOptions::default()).unwrap();
    assert!(matches!(
        p.instantiate(&vec![0; (1 << 24) + 1]),
        Err(ProgramError::ArgumentsTooLong { .. })
    ));
}

#[test]
fn host_call_loop_outcomes() {
    let p = program(Spec::Gp0_8_0, |a| {
        a.inst(O::Ecalli, Ops::imm(1));
        a.inst(O::Ecalli, Ops::imm(2));
        a.inst(O::Trap, Ops::none());
    });
    let mut seen = Vec::new();
    let mut vm = instance(&p, 10_000);
    let exit = vm.run_with_host(|id, ctx| {
        seen.push((id, ctx.gas()));
        ctx.set_reg(7, id as u64 * 10);
        HostOutcome::Continue
    });
    assert_eq!(exit, Exit::Panic);
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(vm.registers()[7], 20);
    for (outcome, exit) in [
        (HostOutcome::Halt, Exit::Halt),
        (HostOutcome::Panic, Exit::Panic),
        (HostOutcome::OutOfGas, Exit::OutOfGas),
    ] {
        let mut vm = instance(&p, 10_000);
        assert_eq!(vm.run_with_host(|_, _| outcome), exit);
        assert_eq!(vm.pc(), 0, "stops at the ecalli");
    }
}

/// Setting the pc of a finished instance (after a halt) clears χ: the next run pays for the
/// block it enters, exactly as a fresh instance does.
#[test]
fn set_pc_after_a_halt_charges_the_entered_block_again() {
    let p = program(Spec::Gp0_8_0, |a| {
        a.inst(O::LoadImm, Ops::reg_imm(1, 0xffff_0000u32 as i64));
        a.inst(O::AddImm64, Ops::reg_reg_imm(2, 2, 1));
        a.inst(O::JumpInd, Ops::reg_imm(1, 0));
    });
    let cost = p.block_cost_at(0).unwrap() as i64;
    let mut vm = instance(&p, 1000);
    assert_eq!(vm.run(), Exit::Halt);
    assert_eq!(vm.gas(), 1000 - cost);
    assert!(vm.gas_charged());
    vm.set_pc(0);
    assert!(!vm.gas_charged());
    assert_eq!(vm.run(), Exit::Halt);
    assert_eq!(vm.gas(), 1000 - 2 * cost, "the second entry is paid for");
    assert_eq!(vm.registers()[2], 2);
}
