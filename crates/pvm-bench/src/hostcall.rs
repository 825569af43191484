//! The host-call round trip: a loop of N `ecalli`s answered by an empty handler, against the same
//! loop with `fallthrough` in their place, in every engine (Rust API; PolkaVM through its
//! `RawInstance` interrupt loop). Reported in ns per call (median of the runs).

use pvm_core::asm::{standard_program, Assembler, Operands as Ops};
use pvm_core::isa::Opcode as O;
use pvm_core::Spec;

use crate::engines::{EngineKind, Engines, ModelBytes};
use crate::GasModel;

/// Calls per timed run.
pub const CALLS: i64 = 1_000_000;

fn program(with_calls: bool) -> Vec<u8> {
    let mut a = Assembler::for_spec(Spec::Gp0_8_0);
    a.inst(O::LoadImm, Ops::reg_imm(1, CALLS));
    a.inst(O::Fallthrough, Ops::none());
    let top = a.here();
    if with_calls {
        a.inst(O::Ecalli, Ops::imm(1));
    } else {
        a.inst(O::Fallthrough, Ops::none());
    }
    a.inst(O::AddImm64, Ops::reg_reg_imm(1, 1, -1));
    a.inst(O::BranchNeImm, Ops::branch_imm(1, 0, top));
    a.inst(O::JumpInd, Ops::reg_imm(0, 0));
    standard_program(None, &[], &[], 0, 4096, &a.finish())
}

/// Per engine: ns per host call (median over `runs` runs, each with a warm-up), or the error.
pub fn measure(engines: &Engines, runs: usize) -> Vec<(EngineKind, Result<f64, String>)> {
    let (calls, base) = (program(true), program(false));
    engines
        .available()
        .into_iter()
        .map(|kind| {
            let time = |b: &[u8]| -> Result<f64, String> {
                let mb = ModelBytes {
                    libpvm: b,
                    polkavm: b,
                };
                let mut ts = Vec::new();
                for i in 0..=runs {
                    let s = engines.run_once(kind, &mb, GasModel::Gp080, &[], 0)?;
                    if s.outcome.status != "halt" {
                        return Err(format!("{}: status {}", kind.label(), s.outcome.status));
                    }
                    if i > 0 {
                        ts.push(s.execute.as_secs_f64());
                    }
                }
                ts.sort_by(f64::total_cmp);
                Ok(ts[ts.len() / 2])
            };
            let r = time(&calls).and_then(|c| Ok((c - time(&base)?) * 1e9 / CALLS as f64));
            (kind, r)
        })
        .collect()
}

/// The Markdown section.
pub fn markdown(results: &[(EngineKind, Result<f64, String>)]) -> String {
    let mut s = format!(
        "### Host-call round trip (Rust API; {CALLS} `ecalli`s answered by an empty handler, minus the same loop without them)\n\n| engine | ns per host call |\n|---|--:|\n"
    );
    for (k, r) in results {
        let v = match r {
            Ok(ns) => format!("{ns:.0}"),
            Err(e) => format!("error: {e}"),
        };
        s.push_str(&format!("| {} | {} |\n", k.label(), v));
    }
    s
}
