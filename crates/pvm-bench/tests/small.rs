//! The reduced-size comparison as a test: correctness and gas equality only, no timing.
//!
//! * every suite program at its small size, under both gas models: libpvm, PolkaVM's interpreter
//!   and (where its sandbox works) PolkaVM's recompiler end with the same status, output and gas
//!   used, equal to bench/expected.json;
//! * the same for every entry of large-O0/large-O2 and for bigcode;
//! * the block-gas cross-check passes for every blob in bench/programs.

use pvm_bench::engines::Engines;
use pvm_bench::{run, suite, verify_workload, GasModel, Options};

#[test]
fn small_comparison_all_engines_agree_and_block_gas_matches() {
    let options = Options {
        small: true,
        runs: 0, // verify only
        memory_probe_exe: None,
        ..Options::default()
    };
    let report = run(&options).expect("harness runs");
    if let Some(e) = &report.recompiler_error {
        eprintln!(
            "note: PolkaVM recompiler not available here, compared with the interpreter only: {e}"
        );
    }
    let failures = report.failures();
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));

    assert_eq!(report.models.len(), 2);
    for m in &report.models {
        assert_eq!(m.programs.len(), 5, "GP {}", m.model.key());
        for p in &m.programs {
            let o = p.outcome.as_ref().expect("libpvm ran");
            assert_eq!(o.status, "halt", "{} GP {}", p.name, m.model.key());
            if m.model == GasModel::Gp072 {
                assert_eq!(o.gas_used, p.instructions);
            }
        }
    }
    assert_eq!(
        report.large_runs.len(),
        2 * 11,
        "5 + 5 entries + bigcode, both models"
    );
    // 8 blobs × 2 gas models, every one identical.
    assert_eq!(report.block_gas.len(), 16);
    for c in &report.block_gas {
        assert!(
            c.ok(),
            "{} GP {}: {:?}",
            c.blob,
            c.model.key(),
            c.mismatches
        );
        assert!(c.blocks > 0 && c.instructions >= c.blocks);
    }
}

#[test]
fn a_gas_mismatch_is_reported() {
    let engines = Engines::new(false).expect("PolkaVM interpreter");
    let mut w = suite(&pvm_bench::default_bench_dir(), true, &["interp".into()])
        .expect("suite")
        .remove(0);
    let (reference, failures) = verify_workload(&engines, &w, GasModel::Gp080);
    assert!(failures.is_empty(), "{failures:?}");
    assert!(reference.is_some());
    w.expected.gas_0_8 += 1;
    let (_, failures) = verify_workload(&engines, &w, GasModel::Gp080);
    // Every engine (libpvm's backends and PolkaVM's interpreter) disagrees with the (tampered)
    // expectation.
    assert_eq!(failures.len(), engines.available().len(), "{failures:?}");
    assert!(engines.available().len() >= 2);
    assert!(failures.iter().all(|f| f.contains("MISMATCH")));
}
