//! Issue #12 F8: resident memory per live instance. A test binary of its own, with one test, so
//! that no other test allocates while the resident set size is measured.

#[cfg(target_os = "linux")]
#[test]
fn live_instances_cost_tens_of_kilobytes_each() {
    use pvm_core::asm::{standard_program, Assembler, Operands as Ops};
    use pvm_core::isa::Opcode as O;
    use pvm_core::{Program, ProgramOptions};

    /// Resident set size in bytes (/proc/self/statm, second field, in pages).
    fn rss() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        pages * 4096
    }

    let mut a = Assembler::new();
    a.inst(O::Trap, Ops::none());
    // 16 heap pages, 64 KiB of stack, 100 bytes of ro data and of arguments: a typical layout.
    let bytes = standard_program(None, &[1; 100], &[2; 100], 16, 64 * 1024, &a.finish());
    let program = Program::from_standard(&bytes, false, ProgramOptions::default()).unwrap();
    let args = [3u8; 100];
    // Warm up the allocator (and, before the fix, the page-table pool).
    let warm: Vec<_> = (0..8)
        .map(|_| program.instantiate(&args).unwrap())
        .collect();
    drop(warm);
    const N: u64 = 100;
    let before = rss();
    let live: Vec<_> = (0..N)
        .map(|_| program.instantiate(&args).unwrap())
        .collect();
    let per_vm = rss().saturating_sub(before) / N;
    eprintln!("resident memory per live instance: {per_vm} bytes");
    // Before the fix: ~3.9 MB per instance (8 MiB zeroed page table from the heap).
    assert!(per_vm < 96 * 1024, "{per_vm} bytes per live instance");
    drop(live);
}
