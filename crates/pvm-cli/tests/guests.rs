//! The real guest programs (C compiled to GP standard programs, bench/) at their small sizes:
//! libpvm must produce the output, status and gas that PolkaVM 0.37 produced (recorded in
//! bench/expected.json and cross-checked there against native builds), under both gas models.

use std::path::PathBuf;

use pvm_cli::bench::for_gp072;
use pvm_core::{Exit, HostOutcome, Program, ProgramOptions, Spec};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn expected() -> Value {
    serde_json::from_slice(&std::fs::read(root().join("bench/expected.json")).unwrap()).unwrap()
}

/// Runs a standard program; the handler answers `get_number` (1001) with 100, 200, 300, … and
/// every other host call by continuing. Returns (exit, gas used, output, host calls).
fn run(bytes: &[u8], spec: Spec, args: &[u8]) -> (Exit, u64, Vec<u8>, u32) {
    let program = Program::from_standard(bytes, false, ProgramOptions::new(spec)).unwrap();
    let mut vm = program.instantiate(args).unwrap();
    let gas = 10_000_000_000i64;
    vm.set_gas(gas);
    let (mut calls, mut next) = (0u32, 100u64);
    let exit = vm.run_with_host(|id, ctx| {
        calls += 1;
        if id == 1001 {
            ctx.set_reg(7, next);
            next += 100;
        }
        HostOutcome::Continue
    });
    (
        exit,
        (gas - vm.gas()) as u64,
        vm.output().unwrap_or_default(),
        calls,
    )
}

fn check(name: &str, file: &str, case: &Value) {
    let bytes = std::fs::read(root().join(file)).unwrap();
    let args = hex(case["args"].as_str().unwrap());
    let want_out = hex(case["output"].as_str().unwrap());
    assert_eq!(case["status"], "halt");

    let (exit, gas, out, _) = run(&bytes, Spec::Gp0_8_0, &args);
    assert_eq!(exit, Exit::Halt, "{name} GP 0.8.0");
    assert_eq!(out, want_out, "{name} GP 0.8.0 output");
    assert_eq!(
        gas,
        case["gas_0_8"].as_u64().unwrap(),
        "{name} GP 0.8.0 gas"
    );

    let bytes07 = for_gp072(&bytes, true).unwrap();
    let (exit, gas, out, _) = run(&bytes07, Spec::Gp0_7_2, &args);
    assert_eq!(exit, Exit::Halt, "{name} GP 0.7.2");
    assert_eq!(out, want_out, "{name} GP 0.7.2 output");
    assert_eq!(
        gas,
        case["gas_0_7"].as_u64().unwrap(),
        "{name} GP 0.7.2 gas (= instructions)"
    );
}

#[test]
fn benchmark_guests_small_sizes_match_polkavm() {
    let e = expected();
    let programs = e["programs"].as_object().unwrap();
    assert!(programs.len() >= 5);
    for (name, p) in programs {
        check(name, p["file"].as_str().unwrap(), &p["small"]);
    }
}

#[test]
fn hostcalls_example_matches_polkavm() {
    let e = expected();
    let h = &e["examples"]["hostcalls"];
    check("hostcalls", h["file"].as_str().unwrap(), &h["default"]);
    let bytes = std::fs::read(root().join(h["file"].as_str().unwrap())).unwrap();
    let (_, _, out, calls) = run(&bytes, Spec::Gp0_8_0, &[]);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "numbers: 100, 200, 300; sum = 600"
    );
    assert_eq!(calls as u64, h["default"]["host_calls"].as_u64().unwrap());
}

/// Block costs of every bench blob are computed without error and cover every block start; the
/// larger blobs load (parse + validate + block costs + compile).
#[test]
fn all_bench_blobs_load() {
    for entry in std::fs::read_dir(root().join("bench/programs")).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let p = Program::from_standard(&bytes, false, ProgramOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!p.block_gas_costs().is_empty());
        assert!(p.block_gas_costs().iter().all(|b| b.cost >= 1));
    }
}

/// `examples/guests/hostcalls-gp072.jam` is `hostcalls.jam` re-encoded for the GP 0.7.2 opcode
/// table (for the JS cross-implementation tests against anan-as, a GP 0.7.2 PVM). Regenerate it
/// with `LIBPVM_REGENERATE=1 cargo test -p pvm-cli --test guests`.
#[test]
fn hostcalls_gp072_fixture_is_current() {
    let src = std::fs::read(root().join("examples/guests/hostcalls.jam")).unwrap();
    let want = for_gp072(&src, true).unwrap();
    let path = root().join("examples/guests/hostcalls-gp072.jam");
    if std::env::var_os("LIBPVM_REGENERATE").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        want,
        "regenerate the fixture"
    );
    let (exit, _, out, _) = run(&want, Spec::Gp0_7_2, &[]);
    assert_eq!(exit, Exit::Halt);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "numbers: 100, 200, 300; sum = 600"
    );
}
