//! Real GP 0.7.2 host-call traces recorded by anan-as from a real JAM service
//! (`tests/traces/anan-as/`, see its README) replay exactly: the index, pc, gas and registers at
//! every `ecalli`, every `memread`, and the final status, pc, gas and registers, including the runs
//! that end out of gas mid-block. This pins libpvm's GP 0.7.2 gas to what the ecosystem records.

use std::path::PathBuf;

use pvm_core::jip7::{replay, Jip7Log};
use pvm_core::{Exit, Spec};

#[test]
fn every_anan_as_trace_replays_with_full_verification() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/traces/anan-as");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 63);
    let (mut halts, mut oogs, mut calls) = (0, 0, 0);
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let log = Jip7Log::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let r = replay(&log, Spec::Gp0_7_2, i64::MAX, true)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!(r.host_calls, log.entries.len(), "{}", f.display());
        calls += r.host_calls;
        match r.exit {
            Exit::Halt => halts += 1,
            Exit::OutOfGas => oogs += 1,
            e => panic!("{}: unexpected exit {e:?}", f.display()),
        }
    }
    assert_eq!((halts, oogs), (57, 6));
    assert_eq!(calls, 3741);
}
