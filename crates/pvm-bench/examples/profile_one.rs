//! Runs one bench guest on one engine N times (for perf/callgrind): `profile_one NAME 0.8|0.7 interpreter|recompiler [RUNS [ARGS_HEX]]` (RUNS 0: time preparation only).
use pvm_bench::engines::{libpvm_execute, libpvm_instantiate, libpvm_prepare};
use pvm_bench::GasModel;
use pvm_core::Backend;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 4 || a[1] == "--help" {
        eprintln!("usage: profile_one NAME 0.8|0.7 interpreter|recompiler [RUNS [ARGS_HEX]]");
        std::process::exit(2);
    }
    let model = if a[2] == "0.7" {
        GasModel::Gp072
    } else {
        GasModel::Gp080
    };
    let backend = if a[3] == "recompiler" {
        Backend::Recompiler
    } else {
        Backend::Interpreter
    };
    let runs: usize = a.get(4).map_or(1, |s| s.parse().unwrap());
    let args: Vec<u8> = a.get(5).map_or(vec![], |h| {
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect()
    });
    let mut bytes = std::fs::read(format!("bench/programs/{}.jam", a[1])).unwrap();
    if model == GasModel::Gp072 {
        bytes = pvm_cli::bench::for_gp072(&bytes, true).unwrap();
    }
    if runs == 0 {
        // Preparation only (for the recompiler: the whole compile), timed 10 times.
        for _ in 0..10 {
            let t = std::time::Instant::now();
            let p = libpvm_prepare(&bytes, model, backend).unwrap();
            eprintln!("prepared in {:?}", t.elapsed());
            drop(p);
        }
        return;
    }
    let p = libpvm_prepare(&bytes, model, backend).unwrap();
    for _ in 0..runs {
        let t = std::time::Instant::now();
        let mut vm = libpvm_instantiate(&p, &args, 0).unwrap();
        let o = libpvm_execute(&mut vm);
        eprintln!("{} gas {} in {:?}", o.status, o.gas_used, t.elapsed());
    }
}
