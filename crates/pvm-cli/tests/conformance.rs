//! Runs every public conformance vector (tests/vectors) under `cargo test`.

use std::path::PathBuf;

use pvm_cli::vectors::{
    collect_files, gp07_block_charged_faults, run_file, run_file_on, supported_backends, Mode,
};
use pvm_core::{Backend, Spec};

fn vectors_dir(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/vectors")
        .join(sub)
}

fn run_suite(sub: &str, spec: Spec, expected_count: usize) {
    run_suite_with(sub, spec, expected_count, Mode::Run)
}

/// Runs the suite under every backend this machine supports (the interpreter always, the
/// recompiler where `Backend::recompiler_supported()`), so a new backend is covered as soon as
/// it is supported.
fn run_suite_with(sub: &str, spec: Spec, expected_count: usize, mode: Mode) {
    let files = collect_files(&[vectors_dir(sub)]).expect("vector directory readable");
    assert_eq!(files.len(), expected_count, "vector count in {sub}");
    let mut failures = Vec::new();
    for backend in supported_backends() {
        for f in &files {
            let r = run_file_on(f, Some(spec), mode, backend);
            if !r.failures.is_empty() {
                failures.push(format!(
                    "{} ({backend}):\n  {}",
                    f.display(),
                    r.failures.join("\n  ")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} vector runs failed:\n{}",
        failures.len(),
        files.len() * supported_backends().len(),
        failures.join("\n")
    );
}

#[test]
fn gp_0_8_0_all_vectors_pass() {
    run_suite("gp-0.8/programs", Spec::Gp0_8_0, 363);
}

#[test]
fn gp_0_7_2_all_vectors_pass() {
    run_suite("gp-0.7/programs", Spec::Gp0_7_2, 307);
}

/// Single-stepping (`Instance::step`, which charges block gas at the start of the next step as
/// Ψ_1 does) must reach exactly the states that `run` (which charges inside the jump) reaches.
#[test]
fn gp_0_8_0_all_vectors_pass_when_single_stepped() {
    run_suite_with("gp-0.8/programs", Spec::Gp0_8_0, 363, Mode::Step);
}

#[test]
fn gp_0_7_2_all_vectors_pass_when_single_stepped() {
    run_suite_with("gp-0.7/programs", Spec::Gp0_7_2, 307, Mode::Step);
}

/// The four files upstream removed (tests/vectors/README.md, "Discrepancies" 3): two expect the
/// 0.7 page-fault gas artifact and pass with the runner's correction; the two read-only-write
/// tests expect `panic` where the GP (and gp-0.8) say page-fault. libpvm follows the GP there, so
/// exactly those two must fail, with exactly that status difference and the gas artifact.
#[test]
fn gp_0_7_excluded_vectors_behave_as_documented() {
    let files = collect_files(&[vectors_dir("gp-0.7/excluded-fluffylabs-only")]).unwrap();
    assert_eq!(files.len(), 4);
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let r = run_file(&f, Some(Spec::Gp0_7_2));
        if name.contains("read_only") {
            // Also the whole-block gas artifact (2 gas for a fault on the first instruction),
            // not corrected because the file's status is not a page fault.
            assert_eq!(
                r.failures,
                vec![
                    "status: expected panic, got page-fault".to_string(),
                    "gas: expected 9998, got 9999".to_string()
                ],
                "{name}"
            );
        } else {
            assert!(r.failures.is_empty(), "{name}: {:?}", r.failures);
        }
    }
}

/// The GP 0.7.2 page-fault gas decision (README, "Where libpvm deviates"): the runner corrects
/// the expected gas of exactly the 0.7 page-fault vectors, each of which faults on its first
/// instruction and whose file expects a two-instruction block to be charged.
#[test]
fn gp_0_7_block_charged_fault_list_is_exactly_the_page_fault_vectors() {
    let mut found = Vec::new();
    for dir in ["gp-0.7/programs", "gp-0.7/excluded-fluffylabs-only"] {
        for f in collect_files(&[vectors_dir(dir)]).unwrap() {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
            if v["expected-status"] == "page-fault" {
                assert_eq!(v["expected-pc"], v["initial-pc"], "{f:?}: faults first");
                let consumed =
                    v["initial-gas"].as_i64().unwrap() - v["expected-gas"].as_i64().unwrap();
                assert_eq!(consumed, 2, "{f:?}");
                found.push(v["name"].as_str().unwrap().to_string());
            }
        }
    }
    found.sort();
    let mut listed: Vec<String> = gp07_block_charged_faults()
        .iter()
        .map(|s| s.to_string())
        .collect();
    listed.sort();
    assert_eq!(found, listed);
}

/// A 0.8-format vector run under the wrong spec must fail: the runner can detect mismatches.
#[test]
fn wrong_spec_is_detected() {
    let f = vectors_dir("gp-0.8/programs/inst_count_set_bits_64.json");
    assert!(!run_file(&f, Some(Spec::Gp0_7_2)).failures.is_empty());
}

/// The backends the suites run under: the interpreter always, the recompiler exactly when this
/// machine supports it.
#[test]
fn suites_run_under_every_supported_backend() {
    let b = supported_backends();
    assert_eq!(b[0], Backend::Interpreter);
    assert_eq!(
        b.contains(&Backend::Recompiler),
        Backend::recompiler_supported()
    );
    assert!(!b.contains(&Backend::Auto));
}

/// Asking for the recompiler where it is not supported fails every vector with a backend error,
/// never as an "invalid program" that a vector might expect.
#[test]
fn unsupported_backend_is_a_clear_failure() {
    let f = vectors_dir("gp-0.8/programs/inst_add_64.json");
    let r = run_file_on(&f, None, Mode::Run, Backend::Recompiler);
    if Backend::recompiler_supported() {
        assert!(r.failures.is_empty(), "{:?}", r.failures);
    } else {
        assert_eq!(r.failures.len(), 1);
        assert!(r.failures[0].contains("not supported"), "{:?}", r.failures);
    }
}
