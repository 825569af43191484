//! `pvm-hash-bench`: per-instruction PVM hashing against the BLAKE2b ceiling.
//!
//! ```text
//! cargo run --release -p pvm-bench --bin pvm-hash-bench -- [--runs N] [--pages 4,16,64]
//!     [--threads N] [--seconds S]
//! ```

use std::process::ExitCode;

use pvm_bench::hashing::{measure, median, preimage_len, snapshot_micros, Mode, Setup};

const USAGE: &str =
    "usage: pvm-hash-bench [--runs N] [--pages N[,N...]] [--threads N] [--seconds S]

Hashes the PVM state (pvm_hash v1) after every step of a guest that keeps N pages non-zero
(default 4, 16 and 64; a loop of 8 instructions, one of them a store and one a jump that changes
neither registers nor gas), and prints per page count, side by side, hashed steps per second of:
  BLAKE2b ceiling        the blake2 crate alone over one contiguous buffer of the preimage size
                         (and its MB/s); the other columns give their ratio to it
  state_hash only        pvm_hash of an unchanging state, no stepping
  byte-wise scan         step + the hash as computed before (all-zero pages found byte by byte)
  step+hash              step + pvm_hash
  reuse unchanged        step + StepHasher::sequential() (reuses the hash when nothing changed)
  N workers              step + StepHasher::parallel(N), hashes resolved in order
  pvm trace              the `pvm trace` loop into a sink, sequential and with N workers
Medians of the runs and the best run, by wall-clock time and per second of CPU time of the
process (all threads: what the work costs, whatever else the machine runs). The runs of the
columns are interleaved and every run is paired with a run of the ceiling just before it, so
each ratio (the median of the per-run ratios) compares like with like on a loaded machine. Also prints the cost of one snapshot (the non-zero
pages copied vs Memory::clone).
  --runs N      runs per column (default 7)
  --pages LIST  page counts (powers of two up to 1024; default 4,16,64)
  --threads N   worker threads of the parallel columns (default: available cores, at least 2)
  --seconds S   target time of one run of one column (default 0.2)";

fn main() -> ExitCode {
    let mut runs = 7usize;
    let mut pages = vec![4u32, 16, 64];
    let mut threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2);
    let mut seconds = 0.2f64;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_default();
        let ok = match a.as_str() {
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "--runs" => value().parse().map(|n: usize| runs = n.max(1)).is_ok(),
            "--threads" => value().parse().map(|n: usize| threads = n.max(1)).is_ok(),
            "--seconds" => value()
                .parse()
                .map(|s: f64| seconds = s)
                .is_ok_and(|_| seconds > 0.0),
            "--pages" => {
                let v: Result<Vec<u32>, _> = value().split(',').map(str::parse).collect();
                match v {
                    Ok(v)
                        if !v.is_empty() && v.iter().all(|p| p.is_power_of_two() && *p <= 1024) =>
                    {
                        pages = v;
                        true
                    }
                    _ => false,
                }
            }
            _ => false,
        };
        if !ok {
            eprintln!("bad argument {a}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    let modes = [
        Mode::Ceiling,
        Mode::HashOnly,
        Mode::Bytewise,
        Mode::Sequential,
        Mode::Reuse,
        Mode::Parallel(1),
        Mode::Parallel(threads),
        Mode::Trace(0),
        Mode::Trace(threads),
    ];
    println!(
        "{} runs per column, {threads} worker threads, {} cores, load average {}",
        runs,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    println!();
    println!(
        "| pages (preimage) | mode | hashed steps/s, wall (median) | best run | × ceiling | \
         steps/s per CPU-second | × ceiling (CPU) | reused |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for &p in &pages {
        let len = preimage_len(p);
        // Calibrate the step count of a run from the ceiling.
        let probe = Setup {
            pages: p,
            steps: 200,
        };
        let ceiling_rate = measure(Mode::Ceiling, &probe).rate;
        let s = Setup {
            pages: p,
            steps: ((ceiling_rate * seconds) as u64).max(200),
        };
        let n = modes.len();
        let (mut wall, mut cpu) = (vec![Vec::new(); n], vec![Vec::new(); n]);
        let (mut wall_x, mut cpu_x) = (vec![Vec::new(); n], vec![Vec::new(); n]);
        let mut reused: Vec<Option<f64>> = vec![None; n];
        for _ in 0..runs {
            // The ceiling is measured again before every run of every column, and each ratio is
            // taken to the ceiling measured just before it, under the same load.
            for (i, m) in modes.iter().enumerate() {
                let c = measure(Mode::Ceiling, &s);
                let r = if *m == Mode::Ceiling {
                    c
                } else {
                    measure(*m, &s)
                };
                wall[i].push(r.rate);
                cpu[i].push(r.cpu_rate);
                wall_x[i].push(r.rate / c.rate);
                cpu_x[i].push(r.cpu_rate / c.cpu_rate);
                reused[i] = r.reused;
            }
        }
        for (i, m) in modes.iter().enumerate() {
            let best = wall[i].iter().cloned().fold(0.0, f64::max);
            let (w, c) = (median(wall[i].clone()), median(cpu[i].clone()));
            let title = if *m == Mode::Ceiling {
                format!(
                    "{} ({:.0} MB/s wall, {:.0} MB/s per CPU-second)",
                    m.title(),
                    w * len as f64 / 1e6,
                    c * len as f64 / 1e6
                )
            } else {
                m.title()
            };
            println!(
                "| {p} ({len} B) | {title} | {w:.0} | {best:.0} | {:.2} | {c:.0} | {:.2} | {} |",
                median(wall_x[i].clone()),
                median(cpu_x[i].clone()),
                reused[i].map_or("".into(), |x| format!("{:.1}%", 100.0 * x)),
            );
        }
        let (image, clone) = snapshot_micros(p, 2000);
        println!(
            "| {p} ({len} B) | snapshot: copy of the non-zero pages {image:.2} µs, Memory::clone \
             {clone:.2} µs | | | | | | |"
        );
    }
    println!();
    println!("load average after: {}", load_average());
    ExitCode::SUCCESS
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
