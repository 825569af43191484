//! Markdown and JSON renderings of a [`Report`].

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

use crate::engines::EngineKind;
use crate::{hex_encode, Report, Stats};

fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1e3;
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn millions(x: f64) -> String {
    let m = x / 1e6;
    if m >= 100.0 {
        format!("{m:.0}")
    } else if m >= 10.0 {
        format!("{m:.1}")
    } else {
        format!("{m:.2}")
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

fn ratio(x: Option<f64>) -> String {
    x.map_or("–".to_string(), |x| format!("{x:.2}×"))
}

fn per_second(count: u64, d: Duration) -> f64 {
    let s = d.as_secs_f64();
    if s > 0.0 {
        count as f64 / s
    } else {
        0.0
    }
}

/// The Markdown report: machine, one table per gas model with speedups and geometric means,
/// preparation of the larger blobs, the block-gas cross-check, failures.
pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let m = &r.machine;
    let _ = writeln!(
        s,
        "Machine: {} ({} logical CPUs), Linux {}, {}; libpvm at {}; PolkaVM 0.37.0.  \nLoad average at start / end: {} / {}.  \n{} sizes, median of {} runs per engine; recompiler: {}; musttail interpreter: {}.\n",
        m.cpu,
        m.cores,
        m.kernel,
        m.rustc,
        m.revision,
        m.load_start,
        m.load_end,
        if r.small { "Small (`--small`)" } else { "Default" },
        r.runs,
        r.recompiler_error
            .as_deref()
            .map_or("available".to_string(), |e| format!("NOT AVAILABLE ({e})")),
        r.musttail_error.as_deref().map_or(
            "available (nightly, child process)".to_string(),
            |e| format!("NOT AVAILABLE ({e})")
        ),
    );
    for model in &r.models {
        let _ = writeln!(s, "### {}\n", model.model.title());
        if r.timed {
            let _ = writeln!(
                s,
                "| program | instructions | gas | engine | exec ms | spread | M instr/s | M gas/s | prepare ms | instance ms | peak RSS Δ MiB |"
            );
            let _ = writeln!(s, "|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|");
            for p in &model.programs {
                let gas = p.outcome.as_ref().map_or(0, |o| o.gas_used);
                if p.engines.is_empty() {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | **FAILED** | | | | | | | |",
                        p.name,
                        millions(p.instructions as f64) + " M",
                        millions(gas as f64) + " M"
                    );
                    continue;
                }
                for (i, e) in p.engines.iter().enumerate() {
                    let exec = e.execute.median();
                    let mem = match (&e.memory, &e.memory_error) {
                        (Some(mu), _) => match mu.worker {
                            Some(w) => format!(
                                "{} ({} + {} worker)",
                                mib(mu.total()),
                                mib(mu.host),
                                mib(w)
                            ),
                            None => mib(mu.host),
                        },
                        (None, Some(_)) => "error".to_string(),
                        (None, None) => "–".to_string(),
                    };
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {} | {} | {:.0} % | {} | {} | {} | {} | {} |",
                        if i == 0 { p.name.as_str() } else { "" },
                        if i == 0 {
                            millions(p.instructions as f64) + " M"
                        } else {
                            String::new()
                        },
                        if i == 0 {
                            millions(gas as f64) + " M"
                        } else {
                            String::new()
                        },
                        e.engine.label(),
                        ms(exec),
                        e.execute.spread() * 100.0,
                        millions(per_second(p.instructions, exec)),
                        millions(per_second(gas, exec)),
                        ms(e.prepare.median()),
                        ms(e.instantiate.median()),
                        mem
                    );
                }
            }
            let _ = writeln!(
                s,
                "\nSpeedup = the other engine's execution time / libpvm's execution time (> 1: libpvm is faster); *time ratio* = libpvm recompiler time / PolkaVM recompiler time (the #16 target is <= 1.0):\n"
            );
            let _ = writeln!(
                s,
                "| program | interp. vs PolkaVM interp. | interp. vs PolkaVM recomp. | recomp. vs PolkaVM recomp. | recomp. time ratio | recomp. vs libpvm interp. |"
            );
            let _ = writeln!(s, "|---|--:|--:|--:|--:|--:|");
            let (li, lr, pi, pr) = (
                EngineKind::Libpvm,
                EngineKind::LibpvmRecompiler,
                EngineKind::PolkavmInterpreter,
                EngineKind::PolkavmRecompiler,
            );
            let inv = |x: Option<f64>| x.map(|v| 1.0 / v);
            for p in &model.programs {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} |",
                    p.name,
                    ratio(p.speedup_of(li, pi)),
                    ratio(p.speedup_of(li, pr)),
                    ratio(p.speedup_of(lr, pr)),
                    ratio(inv(p.speedup_of(lr, pr))),
                    ratio(p.speedup_of(lr, li)),
                );
            }
            let _ = writeln!(
                s,
                "| **geometric mean** | **{}** | **{}** | **{}** | **{}** | **{}** |\n",
                ratio(model.geomean_speedup_of(li, pi)),
                ratio(model.geomean_speedup_of(li, pr)),
                ratio(model.geomean_speedup_of(lr, pr)),
                ratio(inv(model.geomean_speedup_of(lr, pr))),
                ratio(model.geomean_speedup_of(lr, li)),
            );
            let mt = EngineKind::PolkavmMusttail;
            if model.programs.iter().any(|p| p.engine(mt).is_some()) {
                let _ = writeln!(
                    s,
                    "Interpreters (issue #14): *time ratio* = libpvm interpreter time / PolkaVM interpreter time (< 1: libpvm is faster), against PolkaVM's default interpreter and its `interpreter-musttail-dispatch` build:\n"
                );
                let _ = writeln!(
                    s,
                    "| program | libpvm interp. ms | PolkaVM interp. ms | PolkaVM musttail ms | time ratio vs PolkaVM interp. | time ratio vs musttail |"
                );
                let _ = writeln!(s, "|---|--:|--:|--:|--:|--:|");
                let exec = |p: &crate::ProgramResult, k| {
                    p.engine(k)
                        .map_or("–".to_string(), |e| ms(e.execute.median()))
                };
                for p in &model.programs {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {} | {} | {} |",
                        p.name,
                        exec(p, li),
                        exec(p, pi),
                        exec(p, mt),
                        ratio(inv(p.speedup_of(li, pi))),
                        ratio(inv(p.speedup_of(li, mt))),
                    );
                }
                let _ = writeln!(
                    s,
                    "| **geometric mean** | | | | **{}** | **{}** |\n",
                    ratio(inv(model.geomean_speedup_of(li, pi))),
                    ratio(inv(model.geomean_speedup_of(li, mt))),
                );
            }
        } else {
            let _ = writeln!(
                s,
                "| program | status | instructions | gas | engines agree |"
            );
            let _ = writeln!(s, "|---|---|--:|--:|---|");
            for p in &model.programs {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} |",
                    p.name,
                    p.outcome.as_ref().map_or("?", |o| o.status.as_str()),
                    p.instructions,
                    p.outcome.as_ref().map_or(0, |o| o.gas_used),
                    if p.failures.is_empty() {
                        "yes"
                    } else {
                        "**NO**"
                    }
                );
            }
            let _ = writeln!(s);
        }
    }

    if !r.load.is_empty() {
        let _ = writeln!(
            s,
            "### Program preparation of the larger blobs (median of {} runs)\n\nPrepare = what happens before the first instruction can run: libpvm `Program::from_standard` (parse, validate, block table); PolkaVM `ProgramBlob::from_parts` + `Module::from_blob`. Both interpreters compile lazily, block by block, during execution (the recompiler compiles everything here). *compile all* = libpvm compiling and costing every block afterwards (`Program::block_gas_costs()`), an upper bound on what execution adds. Speedup = PolkaVM time / libpvm time.\n",
            r.runs
        );
        let _ = writeln!(
            s,
            "| blob | size KiB | gas model | libpvm prepare ms | PolkaVM interp. prepare ms | PolkaVM recomp. prepare ms | speedup vs interp. | speedup vs recomp. | libpvm compile all ms | libpvm recomp. compile ms (µs/KiB) | PolkaVM recomp. µs/KiB | recomp. compile speedup | instance ms (libpvm interp. / libpvm recomp. / PolkaVM interp. / recomp.) |"
        );
        let _ = writeln!(s, "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
        for l in &r.load {
            let get = |k: EngineKind| l.engines.iter().find(|(e, _, _)| *e == k);
            let prep = |k| {
                get(k).map_or(
                    "–".to_string(),
                    |(_, p, _): &(EngineKind, Stats, Stats)| ms(p.median()),
                )
            };
            let inst: Vec<String> = EngineKind::ALL
                .iter()
                .filter(|&&k| k != EngineKind::PolkavmMusttail)
                .map(|&k| get(k).map_or("–".to_string(), |(_, _, i)| ms(i.median())))
                .collect();
            let kib = l.size as f64 / 1024.0;
            let per_kib = |k| {
                l.prepare_secs(k)
                    .map_or("–".to_string(), |t| format!("{:.1}", t * 1e6 / kib))
            };
            let ours_compile = format!(
                "{} ({})",
                prep(EngineKind::LibpvmRecompiler),
                per_kib(EngineKind::LibpvmRecompiler)
            );
            let _ = writeln!(
                s,
                "| {} | {:.1} | GP {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                l.blob,
                l.size as f64 / 1024.0,
                l.model.key(),
                prep(EngineKind::Libpvm),
                prep(EngineKind::PolkavmInterpreter),
                prep(EngineKind::PolkavmRecompiler),
                ratio(l.speedup(EngineKind::PolkavmInterpreter)),
                ratio(l.speedup(EngineKind::PolkavmRecompiler)),
                if l.compile_all.samples.is_empty() {
                    "–".to_string()
                } else {
                    ms(l.compile_all.median())
                },
                ours_compile,
                per_kib(EngineKind::PolkavmRecompiler),
                ratio(l.speedup_of(EngineKind::LibpvmRecompiler, EngineKind::PolkavmRecompiler)),
                inst.join(" / ")
            );
        }
        let _ = writeln!(s);
    }
    if !r.large_runs.is_empty() {
        let bad = r
            .large_runs
            .iter()
            .filter(|(_, _, f)| !f.is_empty())
            .count();
        let _ = writeln!(
            s,
            "Runs of the larger blobs (every entry of large-O0/O2 at the small args, bigcode): {} of {} agree across engines and with bench/expected.json.\n",
            r.large_runs.len() - bad,
            r.large_runs.len()
        );
    }

    if !r.block_gas.is_empty() {
        let _ = writeln!(
            s,
            "### Block-gas cross-check: libpvm `Program::block_gas_costs()` vs PolkaVM `Module::calculate_gas_cost_for(pc)`\n"
        );
        let _ = writeln!(s, "| blob | instructions | blocks (GP 0.8 / 0.7) | GP 0.8.0 vs `Full(L2Hit)` | GP 0.7.2 vs naive `Simple` |");
        let _ = writeln!(s, "|---|--:|--:|---|---|");
        let mut names: Vec<&str> = r.block_gas.iter().map(|c| c.blob.as_str()).collect();
        names.dedup();
        for name in names {
            let cell = |key: &str| {
                r.block_gas
                    .iter()
                    .find(|c| c.blob == name && c.model.key() == key)
                    .map_or("–".to_string(), |c| match (&c.error, c.mismatch_count) {
                        (Some(e), _) => format!("**ERROR** {e}"),
                        (None, 0) => format!("identical (Σ {})", c.total_cost),
                        (None, n) => format!("**{n} differences**"),
                    })
            };
            let first = r.block_gas.iter().find(|c| c.blob == name).expect("listed");
            let blocks = |key: &str| {
                r.block_gas
                    .iter()
                    .find(|c| c.blob == name && c.model.key() == key)
                    .map_or("–".to_string(), |c| c.blocks.to_string())
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} / {} | {} | {} |",
                name,
                first.instructions,
                blocks("0.8"),
                blocks("0.7"),
                cell("0.8"),
                cell("0.7")
            );
        }
        for c in r.block_gas.iter().filter(|c| c.mismatch_count > 0) {
            let _ = writeln!(s, "\nDifferences in {} (GP {}):\n", c.blob, c.model.key());
            for d in c.mismatches.iter().take(50) {
                let _ = writeln!(s, "- {d}");
            }
            if c.mismatch_count > 50 {
                let _ = writeln!(s, "- … {} more (all in the JSON)", c.mismatch_count - 50);
            }
        }
        let _ = writeln!(s);
    }

    let failures = r.failures();
    if failures.is_empty() {
        let _ = writeln!(
            s,
            "**Result: all engines agree on status, output and gas; block gas identical.**"
        );
    } else {
        let _ = writeln!(s, "**Result: FAILED ({} problem(s))**\n", failures.len());
        for f in failures {
            let _ = writeln!(s, "- {f}");
        }
    }
    s
}

fn stats_json(st: &Stats) -> Value {
    json!({
        "median_ns": st.median().as_nanos() as u64,
        "min_ns": st.min().as_nanos() as u64,
        "max_ns": st.max().as_nanos() as u64,
        "spread": st.spread(),
        "samples_ns": st.samples.iter().map(|d| d.as_nanos() as u64).collect::<Vec<_>>(),
    })
}

/// The JSON report (all samples included).
pub fn json(r: &Report) -> Value {
    let models: Vec<Value> = r
        .models
        .iter()
        .map(|m| {
            let programs: Vec<Value> = m
                .programs
                .iter()
                .map(|p| {
                    let gas = p.outcome.as_ref().map_or(0, |o| o.gas_used);
                    let mut engines = serde_json::Map::new();
                    for e in &p.engines {
                        let exec = e.execute.median();
                        engines.insert(
                            e.engine.key().to_string(),
                            json!({
                                "execute": stats_json(&e.execute),
                                "prepare": stats_json(&e.prepare),
                                "instantiate": stats_json(&e.instantiate),
                                "instructions_per_s": per_second(p.instructions, exec),
                                "gas_per_s": per_second(gas, exec),
                                "peak_rss_delta_bytes": e.memory.map(|mu| mu.total()),
                                "peak_rss_delta_host_bytes": e.memory.map(|mu| mu.host),
                                "peak_rss_delta_worker_bytes": e.memory.and_then(|mu| mu.worker),
                                "hwm_reset": e.memory.map(|mu| mu.hwm_reset),
                                "memory_error": e.memory_error,
                            }),
                        );
                    }
                    json!({
                        "program": p.name,
                        "args": hex_encode(&p.args),
                        "status": p.outcome.as_ref().map(|o| o.status.clone()),
                        "output": p.outcome.as_ref().map(|o| hex_encode(&o.output)),
                        "gas_used": gas,
                        "instructions": p.instructions,
                        "engines": engines,
                        "speedup_vs_polkavm_interpreter": p.speedup(EngineKind::PolkavmInterpreter),
                        "speedup_vs_polkavm_recompiler": p.speedup(EngineKind::PolkavmRecompiler),
                        "speedup_vs_polkavm_musttail": p.speedup(EngineKind::PolkavmMusttail),
                        "recompiler_speedup_vs_polkavm_recompiler": p.speedup_of(EngineKind::LibpvmRecompiler, EngineKind::PolkavmRecompiler),
                        "recompiler_speedup_vs_libpvm_interpreter": p.speedup_of(EngineKind::LibpvmRecompiler, EngineKind::Libpvm),
                        "failures": p.failures,
                    })
                })
                .collect();
            json!({
                "gas_model": m.model.key(),
                "programs": programs,
                "geomean_speedup_vs_polkavm_interpreter": m.geomean_speedup(EngineKind::PolkavmInterpreter),
                "geomean_speedup_vs_polkavm_recompiler": m.geomean_speedup(EngineKind::PolkavmRecompiler),
                "geomean_speedup_vs_polkavm_musttail": m.geomean_speedup(EngineKind::PolkavmMusttail),
                "recompiler_geomean_speedup_vs_polkavm_recompiler": m.geomean_speedup_of(EngineKind::LibpvmRecompiler, EngineKind::PolkavmRecompiler),
                "recompiler_geomean_speedup_vs_libpvm_interpreter": m.geomean_speedup_of(EngineKind::LibpvmRecompiler, EngineKind::Libpvm),
            })
        })
        .collect();
    let load: Vec<Value> = r
        .load
        .iter()
        .map(|l| {
            let mut engines = serde_json::Map::new();
            for (k, p, i) in &l.engines {
                engines.insert(
                    k.key().to_string(),
                    json!({"prepare": stats_json(p), "instantiate": stats_json(i)}),
                );
            }
            json!({
                "blob": l.blob,
                "size_bytes": l.size,
                "gas_model": l.model.key(),
                "engines": engines,
                "libpvm_compile_all": stats_json(&l.compile_all),
                "prepare_speedup_vs_polkavm_interpreter": l.speedup(EngineKind::PolkavmInterpreter),
                "prepare_speedup_vs_polkavm_recompiler": l.speedup(EngineKind::PolkavmRecompiler),
                "recompiler_compile_speedup_vs_polkavm_recompiler": l.speedup_of(EngineKind::LibpvmRecompiler, EngineKind::PolkavmRecompiler),
            })
        })
        .collect();
    let block_gas: Vec<Value> = r
        .block_gas
        .iter()
        .map(|c| {
            json!({
                "blob": c.blob,
                "gas_model": c.model.key(),
                "instructions": c.instructions,
                "blocks": c.blocks,
                "total_cost": c.total_cost,
                "ok": c.ok(),
                "mismatch_count": c.mismatch_count,
                "mismatches": c.mismatches,
                "error": c.error,
            })
        })
        .collect();
    let failures = r.failures();
    json!({
        "machine": {
            "cpu": r.machine.cpu,
            "logical_cpus": r.machine.cores,
            "rustc": r.machine.rustc,
            "kernel": r.machine.kernel,
            "libpvm_revision": r.machine.revision,
            "loadavg_start": r.machine.load_start,
            "loadavg_end": r.machine.load_end,
        },
        "polkavm_version": "0.37.0",
        "small": r.small,
        "runs": r.runs,
        "recompiler_available": r.recompiler_error.is_none(),
        "recompiler_error": r.recompiler_error,
        "musttail_available": r.musttail_error.is_none(),
        "musttail_error": r.musttail_error,
        "gas_models": models,
        "load": load,
        "large_runs": r.large_runs.iter().map(|(n, m, f)| json!({"run": n, "gas_model": m.key(), "ok": f.is_empty(), "failures": f})).collect::<Vec<_>>(),
        "block_gas": block_gas,
        "ok": failures.is_empty(),
        "failures": failures,
    })
}
