//! Compiled code never touches host memory outside its VM: guests that load, store and jump
//! everywhere (every page of the 32-bit space, page-straddling and wrapping accesses, random
//! addresses, dynamic jumps to arbitrary values) end exactly as the interpreter says, the host
//! survives, and only the guest's own pages change. Also: many VMs on many threads at once, and
//! no mappings leak when programs and instances come and go.

use pvm_core::asm::{Assembler, Operands as Ops};
use pvm_core::isa::Opcode as O;
use pvm_core::{Access, Backend, Exit, Instance, Program, ProgramOptions, Spec};

fn build(spec: Spec, backend: Backend, f: impl Fn(&mut Assembler)) -> Program {
    let mut a = Assembler::for_spec(spec);
    f(&mut a);
    Program::from_code(&a.finish(), ProgramOptions { spec, backend }).unwrap()
}

fn both(spec: Spec, f: impl Fn(&mut Assembler) + Copy) -> Option<(Program, Program)> {
    if !Backend::recompiler_supported() {
        return None;
    }
    Some((
        build(spec, Backend::Interpreter, f),
        build(spec, Backend::Recompiler, f),
    ))
}

fn memory_of(vm: &Instance) -> Vec<(u32, Access, Vec<u8>)> {
    let m = vm.memory();
    m.pages()
        .map(|(p, a)| {
            let mut b = vec![0; 4096];
            m.read_unchecked(p * 4096, &mut b).unwrap();
            (p, a, b)
        })
        .collect()
}

/// `body` in a loop run r3 times (r3 counts down; the loop ends in a `trap`).
fn counted_loop(a: &mut Assembler, body: impl Fn(&mut Assembler)) {
    let top = a.label();
    a.inst(O::Fallthrough, Ops::none());
    a.bind(top);
    body(a);
    a.inst(O::AddImm64, Ops::reg_reg_imm(3, 3, -1));
    a.inst(O::BranchNeImm, Ops::branch_imm(3, 0, top));
    a.inst(O::Trap, Ops::none());
}

/// `op [r1 + off]` on every page of the address space (r1 steps by 4096 and wraps): each
/// fault is answered by skipping the access, so the sweep reaches all 2^20 pages. Interpreter
/// and recompiler must see the same exits and leave the same memory.
fn sweep(op: O, off: i64, spec: Spec) {
    let program = |a: &mut Assembler| {
        counted_loop(a, |a| {
            a.inst(op, Ops::reg_reg_imm(2, 1, off));
            a.inst(O::AddImm32, Ops::reg_reg_imm(1, 1, 4096));
        })
    };
    let Some((pi, pn)) = both(spec, program) else {
        return;
    };
    let skip_to = pi.next_pc(pi.next_pc(0)); // the add after the access
    let go = |p: &Program| {
        let mut vm = p.instantiate(&[]).unwrap();
        let m = vm.memory_mut();
        m.map(0x10000, 0x3000, Access::Write).unwrap();
        m.map(0x20000, 0x1000, Access::Read).unwrap();
        m.map(0xFFFF_E000, 0x2000, Access::Write).unwrap();
        vm.registers_mut()[1] = 0;
        vm.registers_mut()[2] = 0x1122_3344_5566_7788;
        vm.registers_mut()[3] = 1 << 20;
        vm.set_gas(i64::MAX);
        let mut exits = Vec::new();
        loop {
            let e = vm.run();
            exits.push((e, vm.pc(), vm.registers()[1]));
            match e {
                Exit::PageFault(_) | Exit::Panic
                    if vm.pc() != skip_to && vm.registers()[3] != 0 =>
                {
                    vm.set_pc(skip_to);
                    vm.set_gas_charged(true);
                }
                _ => break,
            }
        }
        (exits, memory_of(&vm), vm.gas())
    };
    let (a, b) = (go(&pi), go(&pn));
    assert_eq!(
        a.0.len(),
        b.0.len(),
        "{} {spec:?}: number of exits",
        op.name()
    );
    assert!(
        a == b,
        "{} {spec:?}: interpreter and recompiler differ",
        op.name()
    );
    // The sweep really went everywhere: one fault (or panic) per inaccessible page.
    assert!(a.0.len() > (1 << 20) - 16, "{}", a.0.len());
}

#[test]
fn stores_to_every_page_fault_exactly() {
    for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
        sweep(O::StoreIndU64, 0, spec);
        sweep(O::StoreIndU32, 4094, spec); // straddles every page boundary
    }
}

#[test]
fn loads_from_every_page_fault_exactly() {
    for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
        sweep(O::LoadIndU64, 4093, spec); // straddles, and wraps past 2^32 on the last page
        sweep(O::LoadIndI8, 0, spec);
    }
}

/// Dynamic jumps to arbitrary addresses: every one is a panic, a halt or a jump to a valid
/// jump-table target, as the interpreter says.
#[test]
fn dynamic_jumps_to_anywhere() {
    for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
        let program = |a: &mut Assembler| {
            let target = a.label();
            a.inst(O::JumpInd, Ops::reg_imm(1, 0));
            a.bind(target);
            a.inst(O::LoadImm, Ops::reg_imm(7, 77));
            a.inst(O::Trap, Ops::none());
            for _ in 0..5 {
                a.jump_table_entry(target);
            }
        };
        let Some((pi, pn)) = both(spec, program) else {
            return;
        };
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let target = match i % 4 {
                0 => x,
                1 => x % 16,
                2 => 0xFFFF_0000 + (x % 5),
                _ => (x as u32) as u64,
            };
            let run = |p: &Program| {
                let mut vm = p.instantiate(&[]).unwrap();
                vm.registers_mut()[1] = target;
                vm.set_gas(1000);
                let e = vm.run();
                (e, vm.pc(), vm.gas(), *vm.registers())
            };
            assert_eq!(run(&pi), run(&pn), "{spec:?} jump to {target:#x}");
        }
    }
}

/// One recompiled program, many instances on many threads at once.
#[test]
fn many_vms_on_many_threads() {
    let program = |a: &mut Assembler| {
        let top = a.label();
        a.inst(O::LoadImm, Ops::reg_imm(2, 0x10000));
        a.inst(O::Fallthrough, Ops::none());
        a.bind(top);
        a.inst(O::StoreIndU64, Ops::reg_reg_imm(1, 2, 0));
        a.inst(O::LoadIndU64, Ops::reg_reg_imm(3, 2, 0));
        a.inst(O::Add64, Ops::three(4, 4, 3));
        a.inst(O::AddImm64, Ops::reg_reg_imm(2, 2, 8));
        a.inst(O::AddImm64, Ops::reg_reg_imm(1, 1, -1));
        a.inst(O::BranchNeImm, Ops::branch_imm(1, 0, top));
        a.inst(O::Trap, Ops::none());
    };
    let Some((pi, pn)) = both(Spec::Gp0_8_0, program) else {
        return;
    };
    let run = |p: &Program, n: u64| {
        let mut vm = p.instantiate(&[]).unwrap();
        vm.memory_mut()
            .map(0x10000, 0x10000, Access::Write)
            .unwrap();
        vm.registers_mut()[1] = n;
        vm.set_gas(1 << 40);
        let e = vm.run();
        (e, vm.gas(), *vm.registers(), memory_of(&vm))
    };
    let expected: Vec<_> = (0..8).map(|t| run(&pi, 1000 + t * 100)).collect();
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let (pn, expected) = (&pn, &expected);
            s.spawn(move || {
                for _ in 0..200 {
                    assert!(run(pn, 1000 + t * 100) == expected[t as usize]);
                }
            });
        }
    });
}

fn mapping_count() -> Option<usize> {
    std::fs::read_to_string("/proc/self/maps")
        .ok()
        .map(|s| s.lines().count())
}

fn rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Creating, running and dropping 100,000 VMs (and 2,000 recompiled programs) leaves the number
/// of mappings and the resident memory flat.
#[test]
fn no_mappings_leak() {
    if !Backend::recompiler_supported() || mapping_count().is_none() {
        return;
    }
    let make = || {
        build(Spec::Gp0_8_0, Backend::Recompiler, |a| {
            a.inst(O::LoadImm, Ops::reg_imm(7, 5));
            a.inst(
                O::StoreImmIndU32,
                Ops {
                    ra: 1,
                    imm1: 0,
                    imm2: 9,
                    ..Ops::default()
                },
            );
            a.inst(O::Trap, Ops::none());
        })
    };
    let cycle = |programs: usize, vms: usize| {
        for _ in 0..programs {
            let p = make();
            for _ in 0..vms {
                let mut vm = p.instantiate(&[]).unwrap();
                vm.memory_mut().map(0x10000, 0x1000, Access::Write).unwrap();
                vm.registers_mut()[1] = 0x10000;
                vm.set_gas(100);
                assert_eq!(vm.run(), Exit::Panic);
            }
        }
    };
    cycle(50, 100); // warm up allocator pools
    let (maps0, rss0) = (mapping_count().unwrap(), rss_kib().unwrap_or(0));
    cycle(2000, 50); // 2,000 programs, 100,000 VMs
    let (maps1, rss1) = (mapping_count().unwrap(), rss_kib().unwrap_or(0));
    assert!(maps1 <= maps0 + 8, "mappings grew from {maps0} to {maps1}");
    // Other tests of this binary allocate at the same time, so RSS gets a wide margin: a leak of
    // the 100,000 instances (~36 KB each) or of 2,000 programs' code would be gigabytes.
    assert!(
        rss1 <= rss0 + 256 * 1024,
        "RSS grew from {rss0} KiB to {rss1} KiB"
    );
}

/// `Auto` does not translate huge programs up front (a 32 MiB blob of one-byte blocks would be
/// gigabytes of machine code): above `AUTO_RECOMPILE_MAX_CODE` it interprets them.
#[test]
fn auto_interprets_programs_above_the_size_limit() {
    if !Backend::recompiler_supported() || std::env::var("LIBPVM_BACKEND").is_ok() {
        return;
    }
    let blob = |len: usize| pvm_core::Blob {
        jump_table: Default::default(),
        code: vec![0; len], // `trap`s: every byte an instruction and a block
        bitmask: vec![true; len],
    };
    let small = Program::from_blob(blob(1000), ProgramOptions::new(Spec::Gp0_8_0)).unwrap();
    assert_eq!(small.backend(), Backend::Recompiler);
    let n = pvm_core::backend::AUTO_RECOMPILE_MAX_CODE + 1;
    let big = Program::from_blob(blob(n), ProgramOptions::new(Spec::Gp0_8_0)).unwrap();
    assert_eq!(big.backend(), Backend::Interpreter);
    let mut vm = big.instantiate(&[]).unwrap();
    vm.set_gas(10);
    assert_eq!(vm.run(), Exit::Panic);
}

/// Runs of accesses through one base register share one page check (`recompiler/mem_groups.rs`);
/// their offsets may sit anywhere in the i32 range, including its ends, where computing a
/// group's host address can overflow 32 bits. Loads and stores at offsets around -2^31, 2^31 - 1
/// and 0 end exactly as the interpreter says (same registers, same memory).
#[test]
fn grouped_accesses_at_the_ends_of_the_offset_range() {
    for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
        for first in [
            i32::MIN as i64,
            i32::MIN as i64 + 8,
            i32::MAX as i64 - 15,
            -8,
            0,
        ] {
            let program = |a: &mut Assembler| {
                // r1 + first = 0x10008 (mod 2^32) whatever `first` is.
                a.inst(
                    O::LoadImm64,
                    Ops::reg_imm(1, (0x10008i64 - first) & 0xffff_ffff),
                );
                a.inst(O::LoadImm64, Ops::reg_imm(5, 0x1122_3344_5566_7788));
                a.inst(O::StoreIndU64, Ops::reg_reg_imm(5, 1, first));
                a.inst(O::StoreIndU32, Ops::reg_reg_imm(5, 1, first + 8));
                a.inst(O::LoadIndU64, Ops::reg_reg_imm(2, 1, first));
                a.inst(O::LoadIndU16, Ops::reg_reg_imm(3, 1, first + 6));
                a.inst(O::LoadIndU64, Ops::reg_reg_imm(4, 1, first + 4));
                a.inst(
                    O::StoreImmIndU8,
                    Ops {
                        ra: 1,
                        imm1: first + 1,
                        imm2: 0x5a,
                        ..Ops::none()
                    },
                );
                a.inst(O::LoadIndU64, Ops::reg_reg_imm(6, 1, first));
                a.inst(O::Trap, Ops::none());
            };
            let Some((pi, pn)) = both(spec, program) else {
                return;
            };
            let go = |p: &Program| {
                let mut vm = p.instantiate(&[]).unwrap();
                let m = vm.memory_mut();
                m.map(0x10000, 0x1000, Access::Write).unwrap();
                // Backed (not lazily zero), so the group's check passes and its path runs.
                m.write(0x10000, &[0xa5; 64]).unwrap();
                vm.set_gas(1_000);
                let exit = vm.run();
                (exit, vm.pc(), *vm.registers(), memory_of(&vm))
            };
            let (want, got) = (go(&pi), go(&pn));
            assert_eq!(want.0, Exit::Panic, "{spec:?} {first}: ran to the trap");
            assert_eq!(want.2[2], 0x1122_3344_5566_7788, "{spec:?} {first}");
            assert_eq!(got, want, "{spec:?} offset {first}");
        }
    }
}

/// Compiled code keeps the page of each hot access site in a cache that lives for one entry to
/// compiled code. Every change of a page entry happens outside compiled code, so each entry must
/// start with the caches empty: here the page under a cached load is freed and mapped again with
/// new storage, made inaccessible, and materialised from the shared zero page by a first write,
/// between the loop's iterations (at a host call, and at the yield of a store to a lazy page).
/// A stale cache would read freed storage or the zero page; both backends must agree exactly.
#[test]
fn page_caches_are_emptied_at_every_entry() {
    const PAGE: u32 = 0x10000;
    for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
        // Host-call loop: r2 = [r1]; r4 += r2; ecalli; r3 -= 1; loop.
        let host_loop = |a: &mut Assembler| {
            counted_loop(a, |a| {
                a.inst(O::LoadIndU64, Ops::reg_reg_imm(2, 1, 8));
                a.inst(O::Add64, Ops::three(4, 4, 2));
                a.inst(O::Ecalli, Ops::imm(0));
            })
        };
        let Some((pi, pn)) = both(spec, host_loop) else {
            return;
        };
        let go = |p: &Program| {
            let mut vm = p.instantiate(&[]).unwrap();
            vm.memory_mut().map(PAGE, 0x1000, Access::Write).unwrap();
            vm.memory_mut()
                .write(PAGE + 8, &1u64.to_le_bytes())
                .unwrap();
            vm.registers_mut()[1] = PAGE as u64;
            vm.registers_mut()[3] = 6;
            vm.set_gas(1_000_000);
            let mut exits = Vec::new();
            for call in 0u64.. {
                let e = vm.run();
                exits.push((e, vm.pc(), *vm.registers()));
                if e != Exit::HostCall(0) {
                    break;
                }
                let m = vm.memory_mut();
                match call {
                    // New storage for the page, with a new value.
                    0 | 2 => {
                        m.unmap(PAGE, 0x1000).unwrap();
                        m.map(PAGE, 0x1000, Access::Write).unwrap();
                        m.write(PAGE + 8, &(100 + call).to_le_bytes()).unwrap();
                    }
                    // Back to a lazy page (reads as zero).
                    1 => {
                        m.unmap(PAGE, 0x1000).unwrap();
                        m.map(PAGE, 0x1000, Access::Read).unwrap();
                    }
                    // Inaccessible: the next load faults.
                    _ => m.map(PAGE, 0x1000, Access::None).unwrap(),
                }
            }
            (exits, vm.gas(), memory_of(&vm))
        };
        let (want, got) = (go(&pi), go(&pn));
        let last = want.0.last().unwrap();
        assert_eq!(
            last.0,
            Exit::PageFault(PAGE),
            "{spec:?}: the last load faults"
        );
        assert_eq!(
            last.2[4],
            [1u64, 100, 0, 102].iter().sum::<u64>(), // one load per host call
            "{spec:?}: each load saw its page's value"
        );
        assert_eq!(
            (&got.0, got.1),
            (&want.0, want.1),
            "{spec:?}: host-call loop"
        );
        assert!(got.2 == want.2, "{spec:?}: host-call loop: memory differs");

        // First-write loop: r2 = [r1]; r2 += 1; [r5] = r2 (r5 = r1: not one memory group);
        // r3 -= 1; loop. The page starts lazy: the load reads the zero page until the first
        // store (a yield) gives the page storage of its own.
        let write_loop = |a: &mut Assembler| {
            counted_loop(a, |a| {
                a.inst(O::LoadIndU64, Ops::reg_reg_imm(2, 1, 16));
                a.inst(O::AddImm64, Ops::reg_reg_imm(2, 2, 1));
                a.inst(O::StoreIndU64, Ops::reg_reg_imm(2, 5, 16));
            })
        };
        let Some((pi, pn)) = both(spec, write_loop) else {
            return;
        };
        let go = |p: &Program| {
            let mut vm = p.instantiate(&[]).unwrap();
            vm.memory_mut().map(PAGE, 0x1000, Access::Write).unwrap();
            vm.registers_mut()[1] = PAGE as u64;
            vm.registers_mut()[5] = PAGE as u64;
            vm.registers_mut()[3] = 50;
            vm.set_gas(1_000_000);
            let e = vm.run();
            (e, vm.pc(), *vm.registers(), vm.gas(), memory_of(&vm))
        };
        let (want, got) = (go(&pi), go(&pn));
        assert_eq!(
            (want.0, want.2[2]),
            (Exit::Panic, 50),
            "{spec:?}: counted to 50"
        );
        assert_eq!(
            (got.0, got.1, got.2, got.3),
            (want.0, want.1, want.2, want.3),
            "{spec:?}: first-write loop"
        );
        assert!(
            got.4 == want.4,
            "{spec:?}: first-write loop: memory differs"
        );

        // Byte-stepping loop over a page end: r2 = [r1] (u64); r4 = 3 r4 + r2; r1 += 1. The
        // site's cached page serves the accesses inside it; the ones that straddle into the
        // next page (another allocation, or unmapped) must not be served from the cache.
        let step_loop = |a: &mut Assembler| {
            counted_loop(a, |a| {
                a.inst(O::LoadIndU64, Ops::reg_reg_imm(2, 1, 0));
                a.inst(O::MulImm64, Ops::reg_reg_imm(4, 4, 3));
                a.inst(O::Add64, Ops::three(4, 4, 2));
                a.inst(O::AddImm64, Ops::reg_reg_imm(1, 1, 1));
            })
        };
        let Some((pi, pn)) = both(spec, step_loop) else {
            return;
        };
        for next_mapped in [true, false] {
            let go = |p: &Program| {
                let mut vm = p.instantiate(&[]).unwrap();
                let m = vm.memory_mut();
                let pages = if next_mapped { 2 } else { 1 };
                m.map(PAGE, 0x1000 * pages, Access::Write).unwrap();
                let bytes: Vec<u8> = (0..0x1000 * pages).map(|i| (i * 7 + 1) as u8).collect();
                m.write(PAGE, &bytes).unwrap();
                vm.registers_mut()[1] = (PAGE + 0xff0) as u64;
                vm.registers_mut()[3] = 40;
                vm.set_gas(1_000_000);
                let e = vm.run();
                (e, vm.pc(), *vm.registers(), vm.gas())
            };
            let (want, got) = (go(&pi), go(&pn));
            if next_mapped {
                assert_eq!(want.0, Exit::Panic, "{spec:?}: ran across the page end");
            } else {
                assert_eq!(want.0, Exit::PageFault(PAGE + 0x1000), "{spec:?}");
                assert_eq!(
                    want.2[1],
                    (PAGE + 0xff9) as u64,
                    "{spec:?}: first straddling load"
                );
            }
            assert_eq!(
                got, want,
                "{spec:?}: byte-stepping loop, next page mapped: {next_mapped}"
            );
        }
    }
}

/// Between two accesses of one memory group, compiled code keeps the group's checked host
/// address in rax across ops whose code leaves rax alone, and must reload it after any op whose
/// code may write rax (an access outside the group, a division, a multiplication's high half,
/// any op that uses rax as scratch). A stale rax would send the group's second access to
/// whatever rax held: here every non-terminating opcode in turn sits between the two accesses
/// of a group, with operands that make accesses succeed, and both backends must agree.
#[test]
fn a_group_survives_exactly_the_ops_between_its_accesses() {
    use pvm_core::isa::ArgClass as C;
    const GROUP: u32 = 0x10000;
    const OTHER: u32 = 0x20000;
    for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
        let ops = O::ALL
            .iter()
            .copied()
            .filter(|o| o.byte(spec).is_some() && !o.is_terminator());
        for op in ops {
            // Register fields name r5..r7 (never the base r1 or the results r2..r4); r5 and r7
            // hold addresses in OTHER, so an access through them or at an immediate address
            // succeeds and fills rax on the way.
            let operands = match op.class() {
                C::NoArgs => Ops::none(),
                C::Imm => Ops::imm(0),
                C::RegImm64 => Ops::reg_imm(6, 0x1234_5678_9abc_def0u64 as i64),
                C::RegImm => Ops::reg_imm(6, OTHER as i64 + 8),
                C::ImmImm => Ops {
                    imm1: OTHER as i64 + 16,
                    imm2: -3,
                    ..Ops::none()
                },
                C::RegImmImm => Ops {
                    ra: 5,
                    imm1: 24,
                    imm2: 77,
                    ..Ops::none()
                },
                C::RegReg => Ops::dst_src(6, 7),
                C::RegRegImm => Ops::reg_reg_imm(6, 5, 40),
                C::RegRegReg => Ops::three(6, 5, 7),
                other => panic!("{op:?}: class {other:?} has no terminator-free form here"),
            };
            // With `spill`, a loop that never runs uses every other register often, so that
            // r5..r7 are the ones kept in frame slots (their code paths use scratch registers).
            for spill in [false, true] {
                let program = |a: &mut Assembler| {
                    a.inst(O::LoadIndU64, Ops::reg_reg_imm(2, 1, 0));
                    a.inst(op, operands);
                    a.inst(O::LoadIndU64, Ops::reg_reg_imm(3, 1, 8));
                    a.inst(O::StoreIndU64, Ops::reg_reg_imm(3, 1, 16));
                    a.inst(O::LoadIndU32, Ops::reg_reg_imm(4, 1, 20));
                    a.inst(O::Trap, Ops::none());
                    if spill {
                        let others = [0u8, 1, 2, 3, 4, 8, 9, 10, 11, 12];
                        let top = a.here();
                        for (i, &d) in others.iter().enumerate() {
                            for &s in &others[i..] {
                                a.inst(O::Add64, Ops::three(d, d, s));
                            }
                        }
                        a.inst(O::Jump, Ops::to(top));
                    }
                };
                let Some((pi, pn)) = both(spec, program) else {
                    return;
                };
                let go = |p: &Program| {
                    let mut vm = p.instantiate(&[]).unwrap();
                    let m = vm.memory_mut();
                    m.map(GROUP, 0x1000, Access::Write).unwrap();
                    m.map(OTHER, 0x1000, Access::Write).unwrap();
                    // Backed pages (not lazily zero), so the group's check passes.
                    let fill: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
                    m.write(GROUP, &fill).unwrap();
                    m.write(OTHER, &fill[8..]).unwrap();
                    let r = vm.registers_mut();
                    r[1] = GROUP as u64;
                    r[5] = OTHER as u64;
                    r[6] = 0x8000_0000_0000_0003;
                    r[7] = OTHER as u64 + 8;
                    vm.set_gas(1_000);
                    let exit = vm.run();
                    (exit, vm.pc(), *vm.registers(), vm.gas(), memory_of(&vm))
                };
                let (want, got) = (go(&pi), go(&pn));
                if want.0 == Exit::Panic {
                    let second = u64::from_le_bytes(
                        (8..16u8)
                            .map(|i| i.wrapping_mul(37) ^ 0x5a)
                            .collect::<Vec<_>>()
                            .try_into()
                            .unwrap(),
                    );
                    assert_eq!(want.2[3], second, "{spec:?} {op:?}: the second access");
                }
                assert_eq!(
                    (got.0, got.1, got.2, got.3),
                    (want.0, want.1, want.2, want.3),
                    "{spec:?}: {op:?} between a group's accesses (spilled operands: {spill})"
                );
                assert!(got.4 == want.4, "{spec:?}: {op:?}: memory differs");
            }
        }
    }
}
