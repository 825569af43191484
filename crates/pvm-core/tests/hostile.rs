//! Issue #12, "Nothing a guest, a log or a caller sends can hurt the host" (core part), and the
//! GP errata of issue #13. Each test is built from a reproducer that took seconds or hundreds of
//! megabytes before the fix; time bounds are generous (10-100× the fixed cost) so that they only
//! fail on the old behaviour.

use std::time::{Duration, Instant};

use pvm_core::asm::{standard_program, Assembler, Operands as Ops};
use pvm_core::isa::Opcode as O;
use pvm_core::{Exit, Instance, Program, ProgramError, ProgramOptions, Spec};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn opts(spec: Spec) -> ProgramOptions {
    ProgramOptions { spec }
}

/// Runs `f` `n` times and fails if that takes longer than `limit`.
fn within<T>(what: &str, n: usize, limit: Duration, mut f: impl FnMut() -> T) {
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(f());
    }
    let took = t.elapsed();
    assert!(took < limit, "{what}: {n} runs took {took:?} (limit {limit:?})");
}

// ---- F2: loading costs O(blob size); GP erratum #559 limits ----

/// The reproducers: 8- and 9-byte blobs declaring up to 2^24 zero-width jump-table entries took
/// 0.2–0.45 s and 64 MB per load.
const ZERO_WIDTH_BLOBS: [&str; 3] = ["e100000000010001", "0500ffefd900200000", "d741000003d1870901"];

#[test]
fn zero_width_jump_tables_load_in_constant_time() {
    let blob = hex(ZERO_WIDTH_BLOBS[0]);
    let p = Program::from_code(&blob, opts(Spec::Gp0_8_0)).unwrap();
    assert_eq!(p.blob().jump_table.len(), 1 << 24);
    assert_eq!(p.blob().jump_table.get((1 << 24) - 1), Some(0));
    assert_eq!(p.blob().jump_table.get(1 << 24), None);
    for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
        for b in ZERO_WIDTH_BLOBS {
            let bytes = hex(b);
            // Old code: 0.2-0.45 s per load (when accepted).
            within(b, 50, Duration::from_secs(2), || {
                let _ = Program::from_code(&bytes, opts(spec));
            });
        }
    }
}

/// `jump_ind` through a table of 2^24 zero-width entries: every entry goes to pc 0, the address
/// after the last one panics. At pc 0: `if r1 != 0 halt; r1 = 1; jump_ind r0`.
#[test]
fn zero_width_jump_table_entries_all_jump_to_pc_0() {
    let mut a = Assembler::new();
    let done = a.label();
    a.inst(O::BranchNeImm, Ops::branch_imm(1, 0, done));
    a.inst(O::LoadImm, Ops::reg_imm(1, 1));
    a.inst(O::JumpInd, Ops::reg_imm(0, 0));
    a.bind(done);
    a.inst(O::LoadImm64, Ops::reg_imm(0, 0xffff_0000));
    a.inst(O::JumpInd, Ops::reg_imm(0, 0));
    let mut blob = a.finish_blob();
    blob.jump_table = pvm_core::JumpTable::zeros(1 << 24);
    let encoded = blob.encode();
    assert!(encoded.len() < 64, "z = 0 takes no bytes per entry");
    let p = Program::from_code(&encoded, opts(Spec::Gp0_8_0)).unwrap();
    for (addr, want) in [(2u64, Exit::Halt), (1 << 25, Exit::Halt), ((1 << 25) + 2, Exit::Panic)] {
        let mut vm = p.instantiate(&[]).unwrap();
        vm.set_gas(1000);
        vm.registers_mut()[0] = addr;
        assert_eq!(vm.run(), want, "jump to {addr:#x}");
    }
}

#[test]
fn erratum_559_limits_code_and_jump_table_sizes() {
    use pvm_core::program::blob::{encode_varint, MAX_CODE_LEN, MAX_JUMP_TABLE_LEN};
    // |j| = 2^24 + 1 zero-width entries: rejected before anything is allocated.
    let mut b = Vec::new();
    encode_varint(MAX_JUMP_TABLE_LEN + 1, &mut b);
    b.extend_from_slice(&[0, 1, 0, 1]);
    let e = Program::from_code(&b, opts(Spec::Gp0_8_0)).unwrap_err();
    assert!(
        matches!(
            e,
            ProgramError::LimitExceeded {
                what: "jump table length",
                limit: MAX_JUMP_TABLE_LEN,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("2^24 jump-table entries"), "{e}");
    // 2^24 entries are fine (see above); 2^25 + 1 bytes of code are not, even when present.
    let code_len = MAX_CODE_LEN + 1;
    let mut b = vec![0, 0];
    encode_varint(code_len, &mut b);
    b.resize(b.len() + code_len as usize, 0);
    b.resize(b.len() + code_len.div_ceil(8) as usize, 0xff);
    let e = Program::from_code(&b, opts(Spec::Gp0_7_2)).unwrap_err();
    assert!(
        matches!(
            e,
            ProgramError::LimitExceeded {
                what: "code length",
                value,
                limit: MAX_CODE_LEN,
                offset: 2,
            } if value == code_len
        ),
        "{e}"
    );
    assert!(e.to_string().contains("2^25 bytes of code"), "{e}");
    // Exactly 2^25 bytes of code load (GP 0.7.2 accepts any code).
    let mut b = vec![0, 0];
    encode_varint(MAX_CODE_LEN, &mut b);
    b.resize(b.len() + MAX_CODE_LEN as usize, 0);
    b.resize(b.len() + (MAX_CODE_LEN / 8) as usize, 0xff);
    assert!(Program::from_code(&b, opts(Spec::Gp0_7_2)).is_ok());
    // The C ABI path (separate parts) has the same limits.
    let code = vec![0u8; code_len as usize];
    let mask = vec![0xffu8; code_len.div_ceil(8) as usize];
    assert!(matches!(
        pvm_core::Blob::from_parts(&code, &mask, &[]),
        Err(ProgramError::LimitExceeded { .. })
    ));
}

// ---- item 4 (#559): cmov's destination is a source in the A.9 gas model ----

/// `a0 = a0 * a3; a0 = a1 if a2 == 0; trap`: the block costs 5 (the cmov waits for the mul,
/// because its destination a0 is also read), so 10000 gas leave 9995.
#[test]
fn cmov_destination_counts_as_a_source_for_gas() {
    let (a0, a1, a2, a3) = (7, 8, 9, 10);
    let mut a = Assembler::new();
    a.inst(O::Mul64, Ops::three(a0, a0, a3));
    a.inst(O::CmovIz, Ops::three(a0, a1, a2));
    a.inst(O::Trap, Ops::none());
    let p = Program::from_code(&a.finish(), opts(Spec::Gp0_8_0)).unwrap();
    let mut vm = p.instantiate(&[]).unwrap();
    vm.set_gas(10_000);
    assert_eq!(vm.run(), Exit::Panic);
    assert_eq!(vm.gas(), 9995);
    assert_eq!(p.block_cost_at(0), Some(5));
}

// ---- F10: the output length costs nothing ----

/// A 23-gas guest whose output is its whole 256 MiB heap (never written).
fn big_output_vm() -> Instance {
    let mut a = Assembler::new();
    // φ7 = rw_start (2·Z_Z + Q(0) = 0x20000), φ8 = 65535 pages.
    a.inst(O::LoadImm, Ops::reg_imm(7, 0x20000));
    a.inst(O::LoadImm, Ops::reg_imm(8, 65535 * 4096));
    a.inst(O::JumpInd, Ops::reg_imm(0, 0));
    let bytes = standard_program(None, &[], &[], 65535, 4096, &a.finish());
    let p = Program::from_standard(&bytes, false, opts(Spec::Gp0_8_0)).unwrap();
    let mut vm = p.instantiate(&[]).unwrap();
    vm.set_gas(100);
    assert_eq!(vm.run(), Exit::Halt);
    assert!(vm.gas() > 0);
    vm
}

#[test]
fn output_length_query_does_not_build_the_output() {
    let vm = big_output_vm();
    assert_eq!(vm.output_len(), Some(65535 * 4096));
    // Old code: every length query built the 256 MiB output.
    within("output_len", 200, Duration::from_secs(1), || vm.output_len());
    let mut prefix = [1u8; 16];
    assert_eq!(vm.output_into(&mut prefix), Some(65535 * 4096));
    assert_eq!(prefix, [0; 16]);
    within("output_into", 200, Duration::from_secs(1), || {
        vm.output_into(&mut prefix)
    });
    // Not halted: no output.
    let fresh = vm.program().instantiate(&[]).unwrap();
    assert_eq!(fresh.output_len(), None);
}
