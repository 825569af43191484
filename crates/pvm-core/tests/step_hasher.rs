//! `StepHasher` (reuse of unchanged hashes, worker threads) gives exactly `pvm_hash` after every
//! step, including steps that change memory but neither registers nor gas.

use pvm_core::asm::{Assembler, Operands};
use pvm_core::isa::Opcode;
use pvm_core::trace::{pvm_hash, MemoryImage, StepHasher};
use pvm_core::{Access, Instance, Program, ProgramOptions, Spec};

const BASE: u32 = 0x2_0000;

/// A loop whose blocks mix stores that change memory and nothing else (`store_imm_*`: no
/// register, and under GP 0.8.0 no gas, changes within a block), register-only steps, a store
/// of an unchanged value, and jumps/branches (nothing hashed changes), ending after 40 rounds.
fn program(spec: Spec) -> Instance {
    let mut a = Assembler::for_spec(spec);
    let top = a.here();
    let imm = |addr: u32, v: i64| Operands {
        imm1: addr as i64,
        imm2: v,
        ..Operands::none()
    };
    // Memory-only changes: same registers, same gas (inside one block), different memory.
    a.inst(Opcode::StoreImmU8, imm(BASE + 5, 1));
    a.inst(Opcode::StoreImmU8, imm(BASE + 5, 2));
    a.inst(Opcode::StoreImmU32, imm(BASE + 4096 + 4092, 7));
    a.inst(Opcode::StoreImmU8, imm(BASE + 5, 0));
    // Zeroes page 0 again (after the first round it only held byte 5): it leaves the page set.
    a.inst(Opcode::StoreImmU64, imm(BASE, 0));
    a.inst(Opcode::AddImm64, Operands::reg_reg_imm(1, 1, 1));
    a.inst(Opcode::StoreIndU64, Operands::reg_reg_imm(1, 2, 64));
    // The same value again: memory and registers unchanged, but a store, so hashed again.
    a.inst(Opcode::StoreIndU64, Operands::reg_reg_imm(1, 2, 64));
    a.inst(Opcode::LoadIndU64, Operands::reg_reg_imm(3, 2, 64));
    let next = a.label();
    a.inst(Opcode::Jump, Operands::to(next));
    a.bind(next);
    a.inst(Opcode::Fallthrough, Operands::none());
    a.inst(Opcode::BranchLtUImm, Operands::branch_imm(1, 40, top));
    a.inst(Opcode::Trap, Operands::none());
    let p = Program::from_code(
        &a.finish(),
        ProgramOptions {
            spec,
            ..ProgramOptions::default()
        },
    )
    .unwrap();
    let mut vm = p.instantiate(&[]).unwrap();
    vm.memory_mut().map(BASE, 3 * 4096, Access::Write).unwrap();
    vm.registers_mut()[2] = (BASE + 2 * 4096) as u64;
    vm.set_gas(1 << 30);
    vm
}

/// Steps to the end, hashing after every step with `hasher` and with `pvm_hash`.
fn check(spec: Spec, mut hasher: StepHasher) -> (u64, u64) {
    let mut vm = program(spec);
    let mut memory_only_changes = 0;
    let mut prev: Option<([u64; 13], i64, [u8; 32])> = None;
    let mut tickets = std::collections::VecDeque::new();
    let mut want = Vec::new();
    loop {
        let op = vm.program().instruction_at(vm.next_pc()).opcode;
        let exit = vm.step();
        hasher.executed(op);
        let h = pvm_hash(&vm);
        if let Some((r, g, ph)) = prev {
            if r == *vm.registers() && g == vm.gas() && ph != h {
                memory_only_changes += 1;
            }
        }
        prev = Some((*vm.registers(), vm.gas(), h));
        tickets.push_back(hasher.request_for(&vm));
        want.push(h);
        // Resolve with a lag, as the trace does, so that requests run ahead of resolution.
        if tickets.len() > 5 {
            let i = want.len() - tickets.len();
            assert_eq!(
                hasher.resolve(tickets.pop_front().unwrap()),
                want[i],
                "step {i}"
            );
        }
        if exit.is_some() {
            break;
        }
    }
    while let Some(t) = tickets.pop_front() {
        let i = want.len() - tickets.len() - 1;
        assert_eq!(hasher.resolve(t), want[i], "step {i}");
    }
    (memory_only_changes, hasher.stats().reused)
}

#[test]
fn memory_only_changes_change_the_hash_and_unchanged_states_are_reused() {
    for threads in [0, 1, 2, 3] {
        let h = || match threads {
            0 => StepHasher::sequential(),
            n => StepHasher::parallel(n),
        };
        // GP 0.8.0: the stores inside a block change memory only, and every one of them must
        // give a new hash (a reuse decided from registers and gas alone would fail here).
        let (memory_only, reused) = check(Spec::Gp0_8_0, h());
        assert!(memory_only >= 3 * 40, "{memory_only}");
        // The jump of every round changes nothing hashed (the fallthrough and the branch are
        // blocks of their own, so the step that runs each also charges its gas).
        assert!(reused >= 40, "threads {threads}: reused {reused}");
        // GP 0.7.2: gas changes on every step, so nothing is reused.
        let (_, reused) = check(Spec::Gp0_7_2, h());
        assert_eq!(reused, 0);
        let (_, reused) = check(Spec::Gp0_8_0, h().with_reuse(false));
        assert_eq!(reused, 0);
    }
}

/// A memory change made by the host (not by an instruction) is taken into account once reported.
#[test]
fn reported_host_writes_are_hashed() {
    for mut hasher in [StepHasher::sequential(), StepHasher::parallel(2)] {
        let mut vm = program(Spec::Gp0_8_0);
        let h0 = hasher.hash_now(&vm);
        assert_eq!(h0, pvm_hash(&vm));
        assert_eq!(hasher.hash_now(&vm), h0);
        assert_eq!(hasher.stats().reused, 1);
        vm.memory_mut().write(BASE + 100, &[9]).unwrap();
        hasher.memory_changed();
        let h1 = hasher.hash_now(&vm);
        assert_ne!(h1, h0);
        assert_eq!(h1, pvm_hash(&vm));
    }
}

#[test]
fn memory_image_hash_is_the_pvm_hash() {
    let mut vm = program(Spec::Gp0_8_0);
    for _ in 0..50 {
        vm.step();
    }
    let image = MemoryImage::capture(vm.memory());
    assert!(image.pages() >= 2, "{}", image.pages());
    assert_eq!(image.hash_with(vm.registers(), vm.gas()), pvm_hash(&vm));
}

#[test]
#[should_panic(expected = "request order")]
fn tickets_resolve_in_order() {
    let vm = program(Spec::Gp0_8_0);
    let mut hasher = StepHasher::parallel(1);
    let _a = hasher.request_for(&vm);
    let b = hasher.request_for(&vm);
    hasher.resolve(b);
}
