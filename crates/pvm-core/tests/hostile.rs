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
    ProgramOptions::new(spec)
}

/// Runs `f` `n` times and fails if that takes longer than `limit`.
fn within<T>(what: &str, n: usize, limit: Duration, mut f: impl FnMut() -> T) {
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(f());
    }
    let took = t.elapsed();
    assert!(
        took < limit,
        "{what}: {n} runs took {took:?} (limit {limit:?})"
    );
}

// ---- F2: loading costs O(blob size); GP erratum #559 limits ----

/// The reproducers: 8- and 9-byte blobs declaring up to 2^24 zero-width jump-table entries took
/// 0.2–0.45 s and 64 MB per load.
const ZERO_WIDTH_BLOBS: [&str; 3] = [
    "e100000000010001",
    "0500ffefd900200000",
    "d741000003d1870901",
];

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
    for (addr, want) in [
        (2u64, Exit::Halt),
        (1 << 25, Exit::Halt),
        ((1 << 25) + 2, Exit::Panic),
    ] {
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
    within("output_len", 200, Duration::from_secs(1), || {
        vm.output_len()
    });
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

// ---- shared helpers for the host-call tests ----

use pvm_core::inner::{codes, InnerLimits, InnerPvms, GP072_REFINE_GAS, MAX_MACHINES};
use pvm_core::{Access, HostCallContext, HostOutcome};

/// An outer instance of a standard program (`trap`) with `heap_pages` heap pages and stack `s`.
fn outer(spec: Spec, heap_pages: u16, stack: u32) -> Instance {
    let mut a = Assembler::for_spec(spec);
    a.inst(O::Trap, Ops::none());
    let bytes = standard_program(None, &[1, 2, 3], &[], heap_pages, stack, &a.finish());
    let p = Program::from_standard(&bytes, false, opts(spec)).unwrap();
    let mut vm = p.instantiate(&[]).unwrap();
    vm.set_gas(1 << 40);
    vm
}

/// Calls host function `id` with φ7.. = `args`.
fn call(inner: &mut InnerPvms, vm: &mut Instance, id: u32, args: &[u64]) -> Option<HostOutcome> {
    for (i, v) in args.iter().enumerate() {
        vm.registers_mut()[7 + i] = *v;
    }
    inner.handle(id, &mut HostCallContext::new(vm))
}

/// Writes `blob` at the start of the outer heap and returns (address, length).
fn put_blob(vm: &mut Instance, blob: &[u8]) -> (u64, u64) {
    let at = vm.program().standard_layout().unwrap().rw_start();
    vm.memory_mut().write(at, blob).unwrap();
    (at as u64, blob.len() as u64)
}

/// An inner program: an endless loop.
fn endless_loop(spec: Spec) -> Vec<u8> {
    let mut a = Assembler::for_spec(spec);
    let top = a.here();
    a.inst(O::AddImm64, Ops::reg_reg_imm(1, 1, 1));
    a.inst(O::Jump, Ops::to(top));
    a.finish()
}

// ---- F6/F7: inner machines under GP 0.7.2 ----

/// GP 0.7.2 ids: machine = 8, invoke = 12, expunge = 13.
const MACHINE_072: u32 = 8;
const INVOKE_072: u32 = 12;
const EXPUNGE_072: u32 = 13;

#[test]
fn gp072_machine_count_is_capped_with_full() {
    assert_eq!(
        InnerLimits::default(),
        InnerLimits {
            max_machines_0_7_2: MAX_MACHINES,
            inner_gas_budget_0_7_2: GP072_REFINE_GAS,
            max_copy_bytes_0_7_2: 16 << 20,
            max_pages_0_7_2: 4096,
            memory_budget_0_7_2: 256 << 20,
        }
    );
    let mut vm = outer(Spec::Gp0_7_2, 4, 4096);
    let (at, len) = put_blob(&mut vm, &endless_loop(Spec::Gp0_7_2));
    let mut inner = InnerPvms::new(Spec::Gp0_7_2);
    // Old code: 2,000 machines (11,111 in 8 s for a 200,000-gas guest; OOM at 2,000,000).
    within("2000 machine calls", 1, Duration::from_secs(2), || {
        for _ in 0..2000 {
            assert_eq!(
                call(&mut inner, &mut vm, MACHINE_072, &[at, len, 0]),
                Some(HostOutcome::Continue)
            );
        }
    });
    assert_eq!(
        (inner.len(), vm.registers()[7]),
        (MAX_MACHINES, codes::FULL)
    );
    // A host-chosen cap.
    let limits = InnerLimits {
        max_machines_0_7_2: 5,
        ..InnerLimits::default()
    };
    let mut inner = InnerPvms::with_limits(Spec::Gp0_7_2, limits);
    let ids: Vec<u64> = (0..6)
        .map(|_| {
            call(&mut inner, &mut vm, MACHINE_072, &[at, len, 0]);
            vm.registers()[7]
        })
        .collect();
    assert_eq!(ids, [0, 1, 2, 3, 4, codes::FULL]);
    // GP 0.8.0 keeps its own limit of 63 whatever the 0.7.2 limits say.
    let mut vm8 = outer(Spec::Gp0_8_0, 4, 4096);
    let (at8, len8) = put_blob(&mut vm8, &endless_loop(Spec::Gp0_8_0));
    let mut inner8 = InnerPvms::with_limits(Spec::Gp0_8_0, limits);
    for _ in 0..70 {
        call(&mut inner8, &mut vm8, 9, &[at8, len8, 0]);
    }
    assert_eq!(inner8.len(), MAX_MACHINES);
}

/// n = min(n ∉ K(m)) under any order of creations and expunges (checked against a scan).
#[test]
fn machine_ids_are_the_least_free_index() {
    let mut vm = outer(Spec::Gp0_7_2, 4, 4096);
    let (at, len) = put_blob(&mut vm, &endless_loop(Spec::Gp0_7_2));
    let mut inner = InnerPvms::new(Spec::Gp0_7_2);
    let mut live = std::collections::BTreeSet::new();
    let mut rng = 0x1234_5678_9abc_def1u64;
    for step in 0..3000 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        if rng % 3 == 0 && !live.is_empty() {
            let n = *live.iter().nth((rng >> 8) as usize % live.len()).unwrap();
            call(&mut inner, &mut vm, EXPUNGE_072, &[n]);
            assert_eq!(vm.registers()[7], 0, "expunge returns the pc");
            live.remove(&n);
        } else {
            call(&mut inner, &mut vm, MACHINE_072, &[at, len, 0]);
            if live.len() == MAX_MACHINES {
                assert_eq!(vm.registers()[7], codes::FULL);
                continue;
            }
            let want = (0u64..).find(|n| !live.contains(n)).unwrap();
            assert_eq!(vm.registers()[7], want, "step {step}");
            live.insert(want);
        }
        assert_eq!(inner.len(), live.len());
    }
}

/// The 112-byte invoke area at `at`: gas limit, then 13 registers.
fn invoke_area(vm: &mut Instance, at: u64, gas: u64) {
    let mut b = gas.to_le_bytes().to_vec();
    b.resize(112, 0);
    vm.memory_mut().write(at as u32, &b).unwrap();
}

fn read_u64(vm: &Instance, at: u64) -> u64 {
    let mut b = [0u8; 8];
    vm.memory().read(at as u32, &mut b).unwrap();
    u64::from_le_bytes(b)
}

#[test]
fn gp072_invoke_inner_gas_is_bounded_by_the_host_budget() {
    let mut vm = outer(Spec::Gp0_7_2, 4, 4096);
    let (at, len) = put_blob(&mut vm, &endless_loop(Spec::Gp0_7_2));
    let area = at + 0x1000;
    let limits = InnerLimits {
        inner_gas_budget_0_7_2: 3_000_000,
        ..InnerLimits::default()
    };
    let mut inner = InnerPvms::with_limits(Spec::Gp0_7_2, limits);
    call(&mut inner, &mut vm, MACHINE_072, &[at, len, 0]);
    let n = vm.registers()[7];
    // A guest asks for 2^62 inner gas for a 10-gas invoke (old code: ~2^62 gas of work).
    invoke_area(&mut vm, area, 1 << 62);
    let gas_before = vm.gas();
    within("bounded invoke", 1, Duration::from_secs(5), || {
        call(&mut inner, &mut vm, INVOKE_072, &[n, area])
    });
    assert_eq!(gas_before - vm.gas(), 10, "GP 0.7.2 charges 10");
    assert_eq!(vm.registers()[7], codes::OOG);
    assert_eq!(read_u64(&vm, area), 0, "g' = 0 at the bound");
    assert_eq!(inner.inner_gas_left(), 0);
    // The budget is spent: every further invoke stops at once.
    invoke_area(&mut vm, area, 1000);
    call(&mut inner, &mut vm, INVOKE_072, &[n, area]);
    assert_eq!((vm.registers()[7], read_u64(&vm, area)), (codes::OOG, 0));
    // Below the budget the GP 0.7.2 text is followed exactly: the inner machine gets g.
    let mut inner = InnerPvms::with_limits(Spec::Gp0_7_2, limits);
    call(&mut inner, &mut vm, MACHINE_072, &[at, len, 0]);
    invoke_area(&mut vm, area, 1001);
    call(&mut inner, &mut vm, INVOKE_072, &[0, area]);
    assert_eq!(vm.registers()[7], codes::OOG);
    let left = read_u64(&vm, area);
    assert!(left < 1001);
    assert_eq!(inner.inner_gas_left(), 3_000_000 - (1001 - left));
}

// ---- item 3: grow_heap errata GP #533 / #538 ----

const GROW_HEAP: u32 = 1;

/// b = (2^32 − 3Z_Z − Z_I − Q(s))/Z_P (erratum GP #538), in pages.
fn heap_limit(stack: u64) -> u64 {
    let zone = 1u64 << 16;
    ((1u64 << 32) - 3 * zone - (1 << 24) - stack.div_ceil(zone) * zone) / 4096
}

#[test]
fn grow_heap_upper_bound_rounds_the_stack_to_a_zone() {
    // s = 4096: P(s) = 1 page, Q(s) = 16 pages; the 0.8.0 text's b would be 15 pages higher.
    let mut vm = outer(Spec::Gp0_8_0, 0, 4096);
    let mut inner = InnerPvms::new(Spec::Gp0_8_0);
    let b = heap_limit(4096);
    let text_b = ((1u64 << 32) - 3 * (1 << 16) - (1 << 24) - 4096) / 4096;
    assert_eq!(text_b - b, 15);
    let a = vm.program().standard_layout().unwrap().rw_start() as u64 / 4096;
    // Beyond b (but within the text's b): a no-op for 275 gas.
    let g = vm.gas();
    call(&mut inner, &mut vm, GROW_HEAP, &[b + 1]);
    assert_eq!((g - vm.gas(), vm.registers()[7]), (275, a));
    assert_eq!(vm.memory().access((b * 4096) as u32), Access::None);
    // Exactly b: grows to b.
    let g = vm.gas();
    call(&mut inner, &mut vm, GROW_HEAP, &[b]);
    assert_eq!(vm.registers()[7], b);
    assert_eq!(g - vm.gas(), 275 + 121 * (b - a) as i64);
    assert_eq!(vm.memory().access(((b - 1) * 4096) as u32), Access::Write);
    assert_eq!(vm.memory().access((b * 4096) as u32), Access::None);
}

#[test]
fn grow_heap_out_of_gas_sets_gas_to_zero() {
    let mut vm = outer(Spec::Gp0_8_0, 0, 4096);
    let mut inner = InnerPvms::new(Spec::Gp0_8_0);
    let a = vm.program().standard_layout().unwrap().rw_start() as u64 / 4096;
    vm.set_gas(275 + 2 * 121 - 1);
    assert_eq!(
        call(&mut inner, &mut vm, GROW_HEAP, &[a + 2]),
        Some(HostOutcome::OutOfGas)
    );
    assert_eq!(vm.gas(), 0, "erratum GP #533: ϱ' = 0");
    assert_eq!(vm.registers()[7], a);
    assert_eq!(vm.memory().access((a * 4096) as u32), Access::None);
}

// ---- F11: a no-op grow_heap costs O(1) in the heap size ----

#[test]
fn no_op_grow_heap_does_not_walk_the_heap() {
    let mut vm = outer(Spec::Gp0_8_0, 0, 4096);
    let mut inner = InnerPvms::new(Spec::Gp0_8_0);
    let b = heap_limit(4096);
    call(&mut inner, &mut vm, GROW_HEAP, &[b]);
    assert_eq!(vm.registers()[7], b);
    // ~1M writable pages now. Old code: 0.8-12 ms per no-op call.
    within("no-op grow_heap", 400, Duration::from_secs(2), || {
        call(&mut inner, &mut vm, GROW_HEAP, &[0]);
        assert_eq!(vm.registers()[7], b);
    });
}

// ---- F12: a failing GP 0.7.2 sbrk costs O(1) in the request ----

#[test]
fn failing_sbrk_does_not_scan_the_address_space() {
    // r2 = a size that runs from the heap end into the stack; 2000 times `r3 = sbrk(r2)`.
    let program = |count: i64| {
        let mut a = Assembler::for_spec(Spec::Gp0_7_2);
        a.inst(O::LoadImm, Ops::reg_imm(4, count));
        let top = a.label();
        a.inst(O::Jump, Ops::to(top));
        a.bind(top);
        a.inst(O::Sbrk, Ops::dst_src(3, 2));
        a.inst(O::AddImm64, Ops::reg_reg_imm(4, 4, -1));
        a.inst(O::BranchNeImm, Ops::branch_imm(4, 0, top));
        a.inst(O::Trap, Ops::none());
        let bytes = standard_program(None, &[], &[], 1, 4096, &a.finish());
        Program::from_standard(&bytes, false, opts(Spec::Gp0_7_2)).unwrap()
    };
    let mut vm = program(2000).instantiate(&[]).unwrap();
    let heap_end = vm.heap_top() as u64;
    vm.registers_mut()[2] = 0xffff_f000 - heap_end;
    vm.set_gas(100_000);
    // Old code: ~3 ms per sbrk (a scan up to the stack).
    within("2000 failing sbrk", 1, Duration::from_secs(2), || {
        assert_eq!(vm.run(), Exit::Panic)
    });
    assert_eq!((vm.registers()[3], vm.registers()[4]), (0, 0));
    assert_eq!(vm.heap_top() as u64, heap_end);
    assert_eq!(vm.memory().access(heap_end as u32), Access::None);
    // A request that fits still succeeds and maps exactly its pages.
    let mut vm = program(1).instantiate(&[]).unwrap();
    vm.registers_mut()[2] = 3 * 4096 + 1;
    vm.set_gas(100);
    assert_eq!(vm.run(), Exit::Panic);
    assert_eq!(vm.registers()[3], heap_end);
    assert_eq!(vm.heap_top() as u64, heap_end + 3 * 4096 + 1);
    assert_eq!(
        vm.memory().access((heap_end + 3 * 4096) as u32),
        Access::Write
    );
    assert_eq!(
        vm.memory().access((heap_end + 4 * 4096) as u32),
        Access::None
    );
}

// ---- F14: hashing and dumping skip never-written pages ----

/// The PVM hash v1 computed from its definition: every mapped readable page is read.
fn reference_hash(vm: &Instance) -> [u8; 32] {
    use blake2::digest::consts::U32;
    use blake2::{Blake2b, Digest};
    let mut h = Blake2b::<U32>::new();
    h.update(pvm_core::trace::registers_and_gas(vm.registers(), vm.gas()));
    for (p, access) in vm.memory().pages() {
        let bytes = vm.memory().page_bytes(p).unwrap();
        if access != Access::None && bytes.iter().any(|b| *b != 0) {
            h.update(p.to_le_bytes());
            h.update(bytes);
        }
    }
    h.finalize().into()
}

#[test]
fn hash_and_dump_skip_never_written_pages() {
    let mut vm = outer(Spec::Gp0_8_0, 0, 4096);
    // The whole space above 2^16 mapped lazily (old code: 5.5 s per hash, a 538 MB dump).
    vm.memory_mut()
        .map_range(1 << 16, (1u64 << 32) - (1 << 16), Access::Write)
        .unwrap();
    vm.memory_mut().write(0x1234_5678, &[7]).unwrap();
    let want = reference_hash(&vm);
    within("pvm_hash", 20, Duration::from_secs(2), || {
        assert_eq!(pvm_core::trace::pvm_hash(&vm), want)
    });
    within("dump_state_len", 20, Duration::from_secs(2), || {
        pvm_core::trace::dump_state_len(&vm)
    });
    let dump = pvm_core::trace::dump_state(&vm);
    assert_eq!(dump.len(), pvm_core::trace::dump_state_len(&vm));
    // The ro data page (1, 2, 3) and the written page.
    assert_eq!(dump.lines().count(), 3, "{}", &dump[..300]);
}

#[test]
fn hash_is_unchanged_by_written_then_zeroed_pages() {
    let fresh = outer(Spec::Gp0_8_0, 16, 4096);
    let mut vm = outer(Spec::Gp0_8_0, 16, 4096);
    let rw = vm.program().standard_layout().unwrap().rw_start();
    // Pages with storage that hold zeros again, a read-only page with data, an inaccessible
    // page with data: none of them is in the page set.
    vm.memory_mut().write(rw + 5, &[1, 2, 3]).unwrap();
    vm.memory_mut().write(rw + 5, &[0, 0, 0]).unwrap();
    vm.memory_mut().page_bytes_mut(rw / 4096 + 3).unwrap();
    vm.memory_mut().write(rw + 0x4000, &[9]).unwrap();
    vm.memory_mut()
        .map(rw + 0x4000, 4096, Access::None)
        .unwrap();
    vm.memory_mut().write(rw + 0x5000, &[0]).unwrap();
    assert!(vm.memory().backed_pages() > fresh.memory().backed_pages() + 2);
    assert_eq!(
        pvm_core::trace::pvm_hash(&vm),
        pvm_core::trace::pvm_hash(&fresh)
    );
    assert_eq!(pvm_core::trace::pvm_hash(&vm), reference_hash(&vm));
    assert_eq!(
        pvm_core::trace::dump_state(&vm),
        pvm_core::trace::dump_state(&fresh)
    );
    // A non-zero byte in a writable or a read-only page changes it, exactly as the definition says.
    vm.memory_mut().write(rw + 0x5000, &[1]).unwrap();
    assert_ne!(
        pvm_core::trace::pvm_hash(&vm),
        pvm_core::trace::pvm_hash(&fresh)
    );
    assert_eq!(pvm_core::trace::pvm_hash(&vm), reference_hash(&vm));
    vm.memory_mut()
        .map(rw + 0x5000, 4096, Access::Read)
        .unwrap();
    assert_eq!(pvm_core::trace::pvm_hash(&vm), reference_hash(&vm));
    vm.memory_mut()
        .map(rw + 0x4000, 4096, Access::Read)
        .unwrap();
    assert_eq!(pvm_core::trace::pvm_hash(&vm), reference_hash(&vm));
    assert_eq!(pvm_core::trace::dump_state(&vm).lines().count(), 4);
}

// ---- F8: an instance costs tens of KB until the guest touches memory ----

#[test]
fn a_fresh_instance_holds_tens_of_kilobytes() {
    let vm = outer(Spec::Gp0_8_0, 16, 64 * 1024);
    let bytes = vm.memory().host_bytes();
    assert!(bytes < 64 * 1024, "{bytes} bytes");
    // Touching a page far from the others adds one chunk (4.3 KB) and the page.
    let mut vm = vm;
    vm.memory_mut()
        .map(0x8000_0000, 4096, Access::Write)
        .unwrap();
    vm.memory_mut().write(0x8000_0000, &[1]).unwrap();
    assert!(vm.memory().host_bytes() < bytes + 4096 + 4096 + 512);
}

// ---- GP 0.7.2 peek / poke / pages: flat 10 gas for up to 4 GiB ----

const PEEK_072: u32 = 9;
const POKE_072: u32 = 10;
const PAGES_072: u32 = 11;
const DEST: u32 = 0x1000_0000;

/// An outer GP 0.7.2 VM with 16 MiB writable at `DEST`, and machine 0 with 16 MiB readable.
fn copy_setup(limits: InnerLimits) -> (Instance, InnerPvms) {
    let mut vm = outer(Spec::Gp0_7_2, 4, 4096);
    vm.memory_mut().map(DEST, 16 << 20, Access::Write).unwrap();
    let (at, len) = put_blob(&mut vm, &endless_loop(Spec::Gp0_7_2));
    let mut inner = InnerPvms::with_limits(Spec::Gp0_7_2, limits);
    call(&mut inner, &mut vm, MACHINE_072, &[at, len, 0]);
    assert_eq!(vm.registers()[7], 0);
    call(&mut inner, &mut vm, PAGES_072, &[0, 16, 4096, 2]);
    assert_eq!(vm.registers()[7], codes::OK);
    (vm, inner)
}

/// The reproducer: a 1,000-gas GP 0.7.2 guest that peeks 16 MiB in a loop (10 gas per call)
/// would make the host copy ~1 GiB; the memory budget (256 MiB) ends it out of gas after 15
/// copies (16 MiB of the budget went to the host's own `pages` call).
#[test]
fn gp072_peek_loop_of_a_1000_gas_guest_is_bounded() {
    let (vm, mut inner) = copy_setup(InnerLimits::default());
    let mut a = Assembler::for_spec(Spec::Gp0_7_2);
    let top = a.here();
    a.inst(O::LoadImm, Ops::reg_imm(7, 0));
    a.inst(O::LoadImm64, Ops::reg_imm(8, DEST as i64));
    a.inst(O::LoadImm, Ops::reg_imm(9, 0x10000));
    a.inst(O::LoadImm64, Ops::reg_imm(10, 16 << 20));
    a.inst(O::Ecalli, Ops::imm(PEEK_072 as i64));
    a.inst(O::Jump, Ops::to(top));
    let guest = Program::from_code(&a.finish(), opts(Spec::Gp0_7_2)).unwrap();
    let mut g = guest.instantiate(&[]).unwrap();
    *g.memory_mut() = vm.memory().clone();
    g.set_gas(1000);
    let mut calls = 0;
    let t = Instant::now();
    let exit = g.run_with_host(|id, ctx| {
        calls += 1;
        inner.handle(id, ctx).unwrap()
    });
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(exit, Exit::OutOfGas);
    assert_eq!(calls, 16, "15 copies, then the budget is spent");
    assert!(g.gas() > 0, "ended by the budget, not by gas");
    assert_eq!(inner.memory_budget_left(), 0);
}

#[test]
fn gp072_peek_poke_pages_bounds() {
    let (mut vm, mut inner) = copy_setup(InnerLimits::default());
    // One byte over the per-call limit: out of gas, nothing copied, gas charged (10).
    vm.set_gas(100);
    let over = (16 << 20) + 1;
    assert_eq!(
        call(
            &mut inner,
            &mut vm,
            PEEK_072,
            &[0, DEST as u64, 0x10000, over]
        ),
        Some(HostOutcome::OutOfGas)
    );
    assert_eq!(vm.gas(), 90);
    assert_eq!(
        call(
            &mut inner,
            &mut vm,
            POKE_072,
            &[0, DEST as u64, 0x10000, over]
        ),
        Some(HostOutcome::OutOfGas)
    );
    // 4 GiB (the old reproducer) likewise, in no time.
    within("4 GiB peek", 1000, Duration::from_secs(1), || {
        call(
            &mut inner,
            &mut vm,
            PEEK_072,
            &[0, DEST as u64, 0x10000, u32::MAX as u64],
        )
    });
    // `pages`: 4097 pages is over the per-call limit; 2^20 - 17 pages (valid range) too.
    assert_eq!(
        call(&mut inner, &mut vm, PAGES_072, &[0, 16, 4097, 2]),
        Some(HostOutcome::OutOfGas)
    );
    within(
        "2^20-page pages calls",
        1000,
        Duration::from_secs(1),
        || call(&mut inner, &mut vm, PAGES_072, &[0, 16, (1 << 20) - 17, 0]),
    );
    // An invalid mode does no work and is not limited.
    vm.set_gas(100);
    assert_eq!(
        call(&mut inner, &mut vm, PAGES_072, &[0, 16, 1 << 30, 7]),
        Some(HostOutcome::Continue)
    );
    assert_eq!(vm.registers()[7], codes::HUH);
    // Within the limits: copies work (and count against the budget).
    let left = inner.memory_budget_left();
    vm.set_gas(100);
    assert_eq!(
        call(
            &mut inner,
            &mut vm,
            POKE_072,
            &[0, DEST as u64, 0x10000, 4096]
        ),
        Some(HostOutcome::Continue)
    );
    assert_eq!(vm.registers()[7], codes::OK);
    assert_eq!(inner.memory_budget_left(), left - 4096);

    // Unbounded limits give the GP 0.7.2 text: a 32 MiB-page `pages` call and copies succeed.
    let unbounded = InnerLimits {
        max_copy_bytes_0_7_2: u64::MAX,
        max_pages_0_7_2: u64::MAX,
        memory_budget_0_7_2: u64::MAX,
        ..InnerLimits::default()
    };
    let (mut vm, mut inner) = copy_setup(unbounded);
    vm.memory_mut().map(DEST, 32 << 20, Access::Write).unwrap();
    call(&mut inner, &mut vm, PAGES_072, &[0, 16, 8192, 2]);
    assert_eq!(vm.registers()[7], codes::OK);
    call(
        &mut inner,
        &mut vm,
        PEEK_072,
        &[0, DEST as u64, 0x10000, 32 << 20],
    );
    assert_eq!(vm.registers()[7], codes::OK);
}

/// GP 0.8.0 pays per byte and page: the 0.7.2 limits do not apply.
#[test]
fn gp080_copies_are_paid_for_not_limited() {
    let mut vm = outer(Spec::Gp0_8_0, 4, 4096);
    vm.memory_mut().map(DEST, 32 << 20, Access::Write).unwrap();
    let (at, len) = put_blob(&mut vm, &endless_loop(Spec::Gp0_8_0));
    let mut inner = InnerPvms::new(Spec::Gp0_8_0);
    call(&mut inner, &mut vm, 9, &[at, len, 0]);
    assert_eq!(vm.registers()[7], 0);
    call(&mut inner, &mut vm, 12, &[0, 16, 8192, 2]);
    assert_eq!(vm.registers()[7], codes::OK);
    let before = vm.gas();
    call(
        &mut inner,
        &mut vm,
        10,
        &[0, DEST as u64, 0x10000, 32 << 20],
    );
    assert_eq!(vm.registers()[7], codes::OK);
    assert_eq!(before - vm.gas(), 377 + 336 * (32 << 10));
    // Into a VM with a memory limit (`Memory::set_page_limit`): a host call cannot fault, so a
    // copy needing storage beyond it panics, and the flag tells why.
    let mut fresh = vm.clone();
    fresh.memory_mut().unmap(DEST, 32 << 20).unwrap();
    fresh
        .memory_mut()
        .map(DEST, 32 << 20, Access::Write)
        .unwrap();
    let backed = fresh.memory().backed_pages() as u64;
    fresh.memory_mut().set_page_limit(Some(backed + 10));
    assert_eq!(
        call(
            &mut inner,
            &mut fresh,
            10,
            &[0, DEST as u64, 0x10000, 1 << 20]
        ),
        Some(HostOutcome::Panic)
    );
    assert!(fresh.memory().page_limit_reached());
}
