//! The hashing benchmark's guest keeps exactly the chosen number of pages non-zero and loops
//! for as long as it has gas; every hashing mode of the benchmark agrees with `pvm_hash`.

use pvm_bench::hashing::{guest, measure, state_hash_bytewise, Mode, Setup};
use pvm_core::trace::{hashed_pages, pvm_hash};

#[test]
fn guest_keeps_its_pages_non_zero_and_loops() {
    for pages in [1, 4, 16, 64] {
        let mut vm = guest(pages);
        for i in 0..20_000 {
            assert_eq!(vm.step(), None, "{pages} pages, step {i}");
            if i % 997 == 0 {
                assert_eq!(hashed_pages(vm.memory()).count(), pages as usize);
                assert_eq!(state_hash_bytewise(&vm), pvm_hash(&vm));
            }
        }
    }
}

#[test]
fn every_mode_runs() {
    let s = Setup {
        pages: 4,
        steps: 300,
    };
    for m in [
        Mode::Ceiling,
        Mode::HashOnly,
        Mode::Bytewise,
        Mode::Sequential,
        Mode::Reuse,
        Mode::Parallel(2),
        Mode::Trace(0),
        Mode::Trace(2),
    ] {
        let r = measure(m, &s);
        assert!(r.rate > 0.0 && r.cpu_rate > 0.0, "{m:?}");
        if let Some(r) = r.reused {
            // One step in 8 (the jump) changes nothing hashed, and with 4 pages one in 32 more
            // (the shift of a page index 0).
            assert!((0.12..0.17).contains(&r), "{m:?}: {r}");
        }
    }
}
