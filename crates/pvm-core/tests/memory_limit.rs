//! The total guest memory limit (`Memory::set_page_limit`, issue #12 item 3): a store that needs
//! storage beyond the limit is a page fault at that page, nothing written, resumable; programs
//! under the limit run exactly as without it; host writes fail with `MemoryError::PageLimit`.

use pvm_core::asm::{Assembler, Operands as Ops};
use pvm_core::isa::Opcode as O;
use pvm_core::trace::pvm_hash;
use pvm_core::{Access, Backend, Exit, Instance, MemoryError, Program, ProgramOptions, Spec};

const BASE: u32 = 0x10_0000;
const PAGES: i64 = 64;

/// Writes r1 to the first word of `PAGES` consecutive pages from `BASE` (r1 counting down), then
/// traps. `beyond_the_limit…` runs it on both backends (the recompiler hands a store to a page
/// without storage to the interpreter, whose slow path checks the limit).
fn page_writer(spec: Spec) -> Program {
    page_writer_on(spec, Backend::Auto)
}

fn page_writer_on(spec: Spec, backend: Backend) -> Program {
    let mut a = Assembler::for_spec(spec);
    a.inst(O::LoadImm64, Ops::reg_imm(1, PAGES));
    a.inst(O::LoadImm64, Ops::reg_imm(2, BASE as i64));
    a.inst(O::Fallthrough, Ops::none());
    let top = a.here();
    a.inst(O::StoreIndU64, Ops::reg_reg_imm(1, 2, 8));
    a.inst(O::AddImm64, Ops::reg_reg_imm(2, 2, 4096));
    a.inst(O::AddImm64, Ops::reg_reg_imm(1, 1, -1));
    a.inst(O::BranchNeImm, Ops::branch_imm(1, 0, top));
    a.inst(O::Trap, Ops::none());
    let mut opts = ProgramOptions::new(spec);
    opts.backend = backend;
    Program::from_code(&a.finish(), opts).unwrap()
}

fn vm(p: &Program, limit: Option<u64>) -> Instance {
    let mut vm = p.instantiate(&[]).unwrap();
    vm.memory_mut()
        .map(BASE, PAGES as u32 * 4096, Access::Write)
        .unwrap();
    vm.memory_mut().set_page_limit(limit);
    vm.set_gas(1_000_000);
    vm
}

fn state(vm: &Instance) -> (u32, i64, [u64; 13], [u8; 32]) {
    (vm.pc(), vm.gas(), *vm.registers(), pvm_hash(vm))
}

#[test]
fn under_the_limit_nothing_changes() {
    for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
        let p = page_writer(spec);
        let mut free = vm(&p, None);
        assert_eq!(free.run(), Exit::Panic);
        let mut exact = vm(&p, Some(PAGES as u64));
        assert_eq!(exact.run(), Exit::Panic);
        assert!(!exact.memory().page_limit_reached());
        assert_eq!(state(&exact), state(&free), "{spec:?}");
        assert_eq!(exact.memory().backed_pages(), PAGES as usize);
    }
}

#[test]
fn beyond_the_limit_the_store_faults_and_resuming_is_exact() {
    for (spec, backend) in [Spec::Gp0_8_0, Spec::Gp0_7_2]
        .into_iter()
        .flat_map(|s| [(s, Backend::Interpreter), (s, Backend::Recompiler)])
    {
        if backend == Backend::Recompiler && !Backend::recompiler_supported() {
            continue;
        }
        let p = page_writer_on(spec, backend);
        let mut free = vm(&p, None);
        assert_eq!(free.run(), Exit::Panic);

        let mut vm = vm(&p, Some(10));
        let exit = vm.run();
        assert_eq!(
            exit,
            Exit::PageFault(BASE + 10 * 4096),
            "{spec:?} {backend:?}"
        );
        assert!(vm.memory().page_limit_reached());
        assert_eq!(vm.memory().backed_pages(), 10);
        // Nothing of the faulting store was written; the loop counter shows 10 stores done.
        assert_eq!(vm.registers()[1], PAGES as u64 - 10);
        let mut word = [0u8; 8];
        vm.memory().read(BASE + 10 * 4096 + 8, &mut word).unwrap();
        assert_eq!(word, [0; 8]);
        // The host raises the limit (twice) and resumes: the end state is the unlimited one.
        // (Under GP 0.7.2 a faulting instruction is charged its 1 gas, README conformance item
        // 2, and charged again when it re-executes: the host refunds it.)
        let refund = (spec == Spec::Gp0_7_2) as i64;
        vm.set_gas(vm.gas() + refund);
        vm.memory_mut().set_page_limit(Some(40));
        assert!(!vm.memory().page_limit_reached());
        assert_eq!(vm.run(), Exit::PageFault(BASE + 40 * 4096));
        vm.set_gas(vm.gas() + refund);
        vm.memory_mut().set_page_limit(None);
        assert_eq!(vm.run(), Exit::Panic);
        assert_eq!(state(&vm), state(&free), "{spec:?} {backend:?}");
    }
}

#[test]
fn a_store_straddling_two_pages_needs_room_for_both() {
    let mut a = Assembler::new();
    a.inst(O::StoreU64, Ops::reg_imm(1, (BASE + 4092) as i64));
    a.inst(O::Trap, Ops::none());
    let p = Program::from_code(&a.finish(), ProgramOptions::default()).unwrap();
    let mut vm = vm(&p, Some(1));
    vm.registers_mut()[1] = u64::MAX;
    assert_eq!(vm.run(), Exit::PageFault(BASE));
    assert_eq!(vm.memory().backed_pages(), 0);
    vm.memory_mut().set_page_limit(Some(2));
    assert_eq!(vm.run(), Exit::Panic);
    assert_eq!(vm.memory().backed_pages(), 2);
}

#[test]
fn host_writes_and_views_respect_the_limit() {
    let p = page_writer(Spec::Gp0_8_0);
    let mut vm = vm(&p, Some(1));
    let m = vm.memory_mut();
    m.write(BASE, &[1]).unwrap();
    // A page that has storage stays writable; a new one does not.
    m.write(BASE + 100, &[2]).unwrap();
    assert_eq!(
        m.write(BASE + 4095, &[1, 2]),
        Err(MemoryError::PageLimit {
            address: BASE + 4096,
            limit: 1
        })
    );
    assert_eq!(
        m.write_unchecked(BASE + 8192, &[1]),
        Err(MemoryError::PageLimit {
            address: BASE + 8192,
            limit: 1
        })
    );
    assert!(m.page_ptr(BASE / 4096 + 3).is_none());
    assert!(m.page_ptr(BASE / 4096).is_some());
    assert!(m.page_limit_reached());
    // A limit below the pages that already have storage keeps them usable.
    m.set_page_limit(Some(0));
    m.write(BASE + 5, &[3]).unwrap();
    assert_eq!(m.backed_pages(), 1);
    // Mapping is never limited.
    m.map(0x4000_0000, 1 << 30, Access::Write).unwrap();
    assert_eq!(m.page_limit(), Some(0));
    // Clones keep the limit.
    assert_eq!(vm.clone().memory().page_limit(), Some(0));
}
