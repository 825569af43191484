//! Differential test: generated programs run through the interpreter and the recompiler must end
//! in the same state — every exit (kind, pc, gas, registers) along the way, and at the end the
//! whole memory. The generator covers every opcode of both GP versions, edge-value immediates and
//! registers (including register nibbles 13–15), every memory case (unmapped, read-only, lazy
//! first writes, page-straddling, the page at 2^16 and the last page below 2^32 with accesses
//! that wrap), jump tables with valid and invalid entries, dynamic jumps to valid, invalid and
//! halt addresses, host calls whose handler changes registers, gas and memory, small gas
//! budgets, and runs that start with interpreter steps and continue compiled (a backend switch
//! in the middle of a block).
//!
//! `cargo test` runs a short pass; `PVM_DIFF_ITERS=200000 cargo test --release -p pvm-core --test
//! differential` is the long run (`PVM_DIFF_SEED` picks another seed).

use pvm_core::asm::{Assembler, Label, Operands as Ops};
use pvm_core::isa::{ArgClass, Opcode as O};
use pvm_core::{Access, Backend, Exit, HostOutcome, Instance, Program, ProgramOptions, Spec};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const RW: u32 = 0x20000;
const RO: u32 = 0x23000;
const UNMAPPED: u32 = 0x24000;
const LOW: u32 = 0x10000;
const TOP: u32 = 0xFFFF_F000;

/// Values that sit on the edges of the arithmetic and of the memory map.
fn edge_value(r: &mut Rng) -> u64 {
    let addresses = [RW, RO, UNMAPPED, LOW, TOP];
    let offsets = [
        0u32, 1, 2, 4, 7, 8, 4088, 4092, 4094, 4095, 4096, 8190, 12284, 12287,
    ];
    match r.below(10) {
        0..=3 => {
            let base = r.pick(&addresses);
            base.wrapping_add(r.pick(&offsets)) as u64
        }
        4 => r.pick(&[0xFFFF_FFFFu64, 0xFFFF_FFFC, 0xFFFF_0000, 0xFFFF, 0xFFF8]),
        5 => r.pick(&[2u64, 4, 6, 8, 10, 1, 3]), // jump-table addresses
        6 => r.pick(&[
            0u64,
            1,
            u64::MAX,
            i64::MIN as u64,
            i64::MAX as u64,
            0x8000_0000,
            0x7FFF_FFFF,
            0xFFFF_FFFF_8000_0000,
            63,
            64,
            31,
            32,
        ]),
        7 => r.below(16),
        _ => r.next(),
    }
}

fn edge_imm(r: &mut Rng) -> i64 {
    match r.below(6) {
        0 => r.pick(&[
            0i64, 1, -1, 2, 31, 32, 63, 64, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000,
        ]),
        1 => r.pick(&[i32::MIN as i64, i32::MAX as i64, -2, -4096, 4095, 4096]),
        2 | 3 => edge_value(r) as u32 as i32 as i64,
        _ => r.next() as i32 as i64 >> r.below(32),
    }
}

fn reg(r: &mut Rng) -> u8 {
    // Mostly a few registers (dependencies), ω12 (kept in memory by the recompiler) often, and
    // sometimes the nibbles 13–15 that decode as ω12.
    match r.below(10) {
        0..=5 => r.below(4) as u8 + 7,
        6 | 7 => 12,
        8 => r.below(13) as u8,
        _ => 13 + r.below(3) as u8,
    }
}

fn opcodes(spec: Spec) -> Vec<O> {
    O::ALL
        .iter()
        .copied()
        .filter(|o| o.byte(spec).is_some())
        .collect()
}

fn emit(a: &mut Assembler, r: &mut Rng, op: O, labels: &[Label]) {
    let target = labels[r.below(labels.len() as u64) as usize];
    let o = match op.class() {
        ArgClass::NoArgs => Ops::none(),
        ArgClass::Imm => Ops::imm(r.below(4) as i64),
        ArgClass::RegImm64 => Ops::reg_imm(reg(r), edge_value(r) as i64),
        ArgClass::ImmImm => Ops {
            imm1: edge_value(r) as u32 as i32 as i64,
            imm2: edge_imm(r),
            ..Ops::default()
        },
        ArgClass::Offset => Ops::to(target),
        ArgClass::RegImm => Ops::reg_imm(reg(r), edge_imm(r)),
        ArgClass::RegImmImm => Ops {
            ra: reg(r),
            imm1: edge_imm(r),
            imm2: edge_imm(r),
            ..Ops::default()
        },
        ArgClass::RegImmOffset => Ops::branch_imm(reg(r), edge_imm(r), target),
        ArgClass::RegReg => Ops::dst_src(reg(r), reg(r)),
        ArgClass::RegRegImm => Ops::reg_reg_imm(reg(r), reg(r), edge_imm(r)),
        ArgClass::RegRegOffset => Ops::branch(reg(r), reg(r), target),
        ArgClass::RegRegImmImm => Ops {
            ra: reg(r),
            rb: reg(r),
            imm1: edge_imm(r),
            imm2: r.pick(&[0i64, 2, 4, -2, 6]),
            ..Ops::default()
        },
        ArgClass::RegRegReg => Ops::three(reg(r), reg(r), reg(r)),
    };
    a.inst(op, o);
}

/// A run of loads and stores through one base register at nearby offsets (what the recompiler
/// checks once per group): the base near page edges, the offsets around the page end, stores
/// mixed in (read-only and lazy pages), sometimes a write to the base or another register in
/// between, or any other non-terminating instruction (whose code may reuse the scratch register
/// that holds the group's host address).
fn burst(a: &mut Assembler, r: &mut Rng, body: &[O], labels: &[Label]) {
    use O::*;
    let base = reg(r);
    if r.chance(70) {
        let value = if r.chance(50) {
            // Just below a page end: small offsets straddle into the next page.
            let page = r.pick(&[RW, RW + 4096, RW + 8192, RO, LOW, TOP, UNMAPPED - 8192]);
            page.wrapping_add(4096 - r.pick(&[1u32, 2, 3, 4, 6, 7, 8, 12, 16]))
        } else {
            edge_value(r) as u32
        };
        a.inst(LoadImm, Ops::reg_imm(base, value as i32 as i64));
    }
    let loads = [
        LoadIndU8, LoadIndI8, LoadIndU16, LoadIndI16, LoadIndU32, LoadIndI32, LoadIndU64,
    ];
    let stores = [StoreIndU8, StoreIndU16, StoreIndU32, StoreIndU64];
    let imm_stores = [
        StoreImmIndU8,
        StoreImmIndU16,
        StoreImmIndU32,
        StoreImmIndU64,
    ];
    let offsets = [
        0i64, 1, 2, 4, 7, 8, 12, 16, -1, -4, -8, 24, 100, 400, 511, 4088, 4092, 4095, 4096,
    ];
    // Sometimes the same addresses through offsets near the ends of the i32 range (the base
    // moved the other way, mod 2^32): a group's host address must not overflow there.
    let shift = r.pick(&[0i64, 0, 0, i32::MIN as i64, i32::MAX as i64 - 4096, 1 << 30]);
    if shift != 0 {
        let back = (shift as i32).wrapping_neg() as i64;
        a.inst(AddImm32, Ops::reg_reg_imm(base, base, back));
    }
    for _ in 0..2 + r.below(6) {
        let off = (r.pick(&offsets) + shift) as i32 as i64;
        match r.below(10) {
            0..=4 => {
                let mut dst = reg(r);
                if dst == base && r.chance(70) {
                    dst = (base + 1) % 13;
                }
                a.inst(r.pick(&loads), Ops::reg_reg_imm(dst, base, off));
            }
            5 | 6 => a.inst(r.pick(&stores), Ops::reg_reg_imm(reg(r), base, off)),
            7 => a.inst(
                r.pick(&imm_stores),
                Ops {
                    ra: base,
                    imm1: off,
                    imm2: edge_imm(r),
                    ..Ops::default()
                },
            ),
            8 if body.is_empty() || r.chance(50) => a.inst(
                AddImm64,
                Ops::reg_reg_imm(reg(r), reg(r), r.pick(&[1i64, 8, -8])),
            ),
            8 => {
                let op = r.pick(body);
                emit(a, r, op, labels)
            }
            _ => a.inst(Add64, Ops::three(reg(r), reg(r), reg(r))),
        }
    }
}

/// A random program: segments of random instructions, most starting at a block boundary (so
/// their labels are valid targets), some in the middle of a block (invalid targets).
fn program(r: &mut Rng, spec: Spec, ops: &[O]) -> Vec<u8> {
    let (terminators, body): (Vec<O>, Vec<O>) = ops.iter().partition(|o| o.is_terminator());
    let mut a = Assembler::for_spec(spec);
    let segments = 2 + r.below(8) as usize;
    let labels: Vec<Label> = (0..segments).map(|_| a.label()).collect();
    for _ in 0..r.below(6) {
        let l = labels[r.below(segments as u64) as usize];
        a.jump_table_entry(l);
    }
    for &l in &labels {
        if r.chance(85) {
            a.inst(O::Fallthrough, Ops::none());
        }
        a.bind(l);
        if r.chance(30) {
            burst(&mut a, r, &body, &labels);
        }
        for _ in 0..r.below(12) {
            let op = if r.chance(4) {
                r.pick(&terminators)
            } else {
                r.pick(&body)
            };
            emit(&mut a, r, op, &labels);
        }
        let t = r.pick(&terminators);
        emit(&mut a, r, t, &labels);
    }
    a.inst(O::Trap, Ops::none());
    a.finish()
}

fn instance(program: &Program, r: &mut Rng, regs: &[u64; 13], gas: i64) -> Instance {
    let mut vm = program.instantiate(&[]).unwrap();
    let m = vm.memory_mut();
    m.map(RW, 3 * 4096, Access::Write).unwrap();
    m.map(RO, 4096, Access::Read).unwrap();
    m.map(LOW, 4096, Access::Write).unwrap();
    m.map(TOP, 4096, Access::Write).unwrap();
    let mut data = [0u8; 64];
    for b in data.iter_mut() {
        *b = r.next() as u8;
    }
    m.write_unchecked(RO + 4032, &data).unwrap();
    m.write_unchecked(RW + 4090, &data[..16]).unwrap();
    // Half the time the other writable pages are backed too (so grouped and single accesses
    // take their fast paths there), otherwise they stay lazily zero (first writes yield).
    if r.chance(50) {
        for page in [RW + 8192, LOW, TOP] {
            m.write_unchecked(page, &data).unwrap();
        }
    }
    vm.registers_mut().copy_from_slice(regs);
    vm.set_gas(gas);
    vm
}

/// What must agree: exit, pc, gas, registers, executed instructions.
type Snapshot = (Exit, u32, i64, [u64; 13], u64);
/// Every mapped page: number, access, contents.
type Pages = Vec<(u32, Access, Vec<u8>)>;

fn snapshot(vm: &Instance, e: Exit) -> Snapshot {
    (
        e,
        vm.pc(),
        vm.gas(),
        *vm.registers(),
        vm.instruction_count(),
    )
}

/// Runs to a final exit, answering host calls deterministically; returns every exit's state and
/// the final memory.
fn run(vm: &mut Instance, steps: u32) -> (Vec<Snapshot>, Pages) {
    let mut trace = Vec::new();
    let mut stepped = 0;
    let mut calls = 0;
    loop {
        let e = if stepped < steps {
            stepped += 1;
            match vm.step() {
                Some(e) => e,
                None => continue,
            }
        } else {
            vm.run()
        };
        trace.push(snapshot(vm, e));
        let Exit::HostCall(id) = e else { break };
        calls += 1;
        if calls > 50 {
            break;
        }
        let mut ctx = pvm_core::HostCallContext::new(vm);
        let r7 = ctx.reg(7);
        ctx.set_reg(7, r7.wrapping_mul(31).wrapping_add(id as u64));
        ctx.set_gas(ctx.gas() - id as i64);
        let _ = ctx.write_memory(RW + 8 * id, &r7.to_le_bytes());
        let outcome = if id == 3 && r7 & 1 == 1 {
            HostOutcome::Panic
        } else {
            HostOutcome::Continue
        };
        if let Some(e) = vm.finish_host_call(outcome) {
            trace.push(snapshot(vm, e));
            break;
        }
    }
    let m = vm.memory();
    let pages = m
        .pages()
        .map(|(p, acc)| {
            let mut buf = vec![0u8; 4096];
            m.read_unchecked(p * 4096, &mut buf).unwrap();
            (p, acc, buf)
        })
        .collect();
    (trace, pages)
}

fn check(spec: Spec, iters: u64, seed: u64) {
    check_with(spec, iters, seed, &opcodes(spec), 12);
}

/// `check` with programs of `ops` only and up to `max_steps` initial steps.
fn check_with(spec: Spec, iters: u64, seed: u64, ops: &[O], max_steps: u64) {
    let mut r = Rng(seed);
    for i in 0..iters {
        let bytes = program(&mut r, spec, ops);
        let build = |backend| Program::from_code(&bytes, ProgramOptions { spec, backend });
        let (Ok(interp), Ok(native)) = (build(Backend::Interpreter), build(Backend::Recompiler))
        else {
            panic!("program {i} did not load")
        };
        assert_eq!(native.backend(), Backend::Recompiler);
        let mut regs = [0u64; 13];
        for x in regs.iter_mut() {
            *x = edge_value(&mut r);
        }
        let gas = r.pick(&[0i64, 1, 3, 10, 40, 200, 1000, 100_000, -5]);
        let steps = if r.chance(30) {
            r.below(max_steps) as u32
        } else {
            0
        };
        let seed_mem = r.next();
        let mut a = instance(&interp, &mut Rng(seed_mem | 1), &regs, gas);
        let mut b = instance(&native, &mut Rng(seed_mem | 1), &regs, gas);
        let ra = run(&mut a, steps);
        let rb = run(&mut b, steps);
        // Every third program also runs by `step()` alone on the interpreter: the same exits,
        // instruction counts included.
        if i % 3 == 0 {
            let mut c = instance(&interp, &mut Rng(seed_mem | 1), &regs, gas);
            let rc = run(&mut c, u32::MAX);
            assert!(
                rc == ra,
                "{spec:?} program {i} (seed {seed}): stepping differs from running\n\
                 stepping: {:?}\nrunning:  {:?}",
                rc.0,
                ra.0
            );
        }
        if ra != rb {
            let diverge = ra.0.iter().zip(&rb.0).position(|(x, y)| x != y);
            panic!(
                "{spec:?} program {i} (seed {seed}): interpreter and recompiler differ\n\
                 first differing exit: {diverge:?}\ninterpreter: {:?}\nrecompiler:  {:?}\n\
                 memory equal: {}\nblob: {}",
                ra.0,
                rb.0,
                ra.1 == rb.1,
                bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
            );
        }
    }
}

fn iters() -> u64 {
    std::env::var("PVM_DIFF_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000)
}

fn seed() -> u64 {
    std::env::var("PVM_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15)
}

#[test]
fn recompiler_matches_interpreter_gp080() {
    if !Backend::recompiler_supported() {
        return;
    }
    check(Spec::Gp0_8_0, iters(), seed());
}

#[test]
fn recompiler_matches_interpreter_gp072() {
    if !Backend::recompiler_supported() {
        return;
    }
    check(Spec::Gp0_7_2, iters(), seed() ^ 0x5555);
}

/// The interpreter fuses hot pairs of ops (`program/lower.rs`, `FUSED`); the recompiler compiles
/// the unfused ops. Programs made mostly of the kinds in those pairs (loads and stores that may
/// fault, branches as second halves), with longer step-mode prefixes (where a fused op executes
/// only its first half).
#[test]
fn recompiler_matches_interpreter_on_fused_pairs() {
    if !Backend::recompiler_supported() {
        return;
    }
    let fusable = [
        O::Add64,
        O::Xor,
        O::Or,
        O::Mul64,
        O::MulUpperSS,
        O::AddImm64,
        O::AndImm,
        O::ShloLImm64,
        O::ShloRImm64,
        O::RotR64Imm,
        O::LoadIndU8,
        O::LoadIndU64,
        O::StoreIndU8,
        O::StoreIndU64,
        O::BranchLtU,
        O::BranchLtS,
        O::Sub64,
        O::LoadImm,
        O::BranchNe,
        O::Trap,
    ];
    for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
        let mut ops: Vec<O> = fusable.to_vec();
        if spec == Spec::Gp0_8_0 {
            ops.push(O::Unlikely);
        }
        check_with(spec, iters(), seed() ^ 0xF05E, &ops, 40);
    }
}
