//! Tracing: the PVM hash against an independent blake2b (Python's hashlib), traces of
//! conformance vectors ending in the vector's expected state hash, JIP-6 record/replay round trips
//! and detection of corrupted logs, trace-diff.

use std::path::PathBuf;
use std::process::Command;

use pvm_cli::tracing::{load_target, record, trace, trace_diff, HostMode, TraceOptions};
use pvm_cli::vectors::{collect_files, initial_instance};
use pvm_core::jip6::{replay, Jip6Error, Jip6Log};
use pvm_core::trace::{dump_state, hex, pvm_hash};
use pvm_core::{Exit, Spec};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn path(p: &str) -> String {
    root().join(p).to_string_lossy().into_owned()
}

/// The preimage is everything after the colons of the dump, spaces removed.
fn preimage_hex(dump: &str) -> String {
    dump.lines()
        .filter_map(|l| l.split_once(": ").map(|(_, h)| h.replace(' ', "")))
        .collect()
}

#[test]
fn pvm_hash_matches_python_hashlib_over_the_dump() {
    let mut t = load_target(
        &path("bench/programs/blake2b.jam"),
        None,
        None,
        &hex_bytes("40000000"),
    )
    .unwrap();
    t.vm.set_gas(1 << 40);
    let mut states = Vec::new();
    for steps in [0u64, 1, 5000, 100_000] {
        while (states.len() as u64) < steps {
            t.vm.step();
            states.push(());
        }
        let dump = dump_state(&t.vm);
        assert!(
            dump.lines().count() >= 2,
            "some non-zero pages after {steps} steps"
        );
        let ours = hex(&pvm_hash(&t.vm));
        let py = Command::new("python3")
            .args(["-c", "import hashlib,sys; print(hashlib.blake2b(bytes.fromhex(sys.stdin.read().strip()), digest_size=32).hexdigest())"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(preimage_hex(&dump).as_bytes())?;
                c.wait_with_output()
            })
            .expect("python3 runs");
        assert!(py.status.success());
        assert_eq!(
            String::from_utf8(py.stdout).unwrap().trim(),
            ours,
            "after {steps} steps"
        );
    }
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The preimage excludes unreadable and all-zero pages, so mapping an empty page or changing an
/// inaccessible one does not change the hash, while any readable byte does.
#[test]
fn hash_page_set_rules() {
    let mut t = load_target(
        &path("tests/vectors/gp-0.8/programs/inst_store_u8.json"),
        None,
        None,
        &[],
    )
    .unwrap();
    let h0 = pvm_hash(&t.vm);
    t.vm.memory_mut()
        .map(0x50000, 4096, pvm_core::Access::Write)
        .unwrap();
    assert_eq!(
        pvm_hash(&t.vm),
        h0,
        "an all-zero readable page is not hashed"
    );
    t.vm.memory_mut().write(0x50000, &[1]).unwrap();
    let h1 = pvm_hash(&t.vm);
    assert_ne!(h1, h0);
    t.vm.memory_mut()
        .map(0x50000, 4096, pvm_core::Access::None)
        .unwrap();
    assert_eq!(
        pvm_hash(&t.vm),
        h0,
        "an inaccessible page is not hashed, whatever it holds"
    );
    t.vm.set_gas(t.vm.gas() - 1);
    assert_ne!(pvm_hash(&t.vm), h0, "gas is hashed");
}

/// For every single-run vector, tracing ends with the hash of the vector's expected state
/// (computed from the vector's data, not from our run).
#[test]
fn traces_of_vectors_end_with_the_expected_state_hash() {
    let mut checked = 0;
    for (dir, spec) in [
        ("tests/vectors/gp-0.8/programs", Spec::Gp0_8_0),
        ("tests/vectors/gp-0.7/programs", Spec::Gp0_7_2),
    ] {
        for f in collect_files(&[root().join(dir)]).unwrap() {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
            let Ok((mut vm, Some(expected))) = initial_instance(&v, Some(spec)) else {
                continue;
            };
            let opts = TraceOptions {
                hash_every: 0,
                from: 1,
                limit: 0,
            };
            let (_, hash) = trace(
                &mut vm,
                &mut HostMode::Stop,
                None,
                &opts,
                &mut std::io::sink(),
            )
            .unwrap();
            assert_eq!(hex(&hash), hex(&expected.pvm_hash()), "{}", f.display());
            checked += 1;
        }
    }
    assert!(checked > 600, "checked {checked}");
}

fn record_and_replay(file: &str, args: &str, host: HostMode) -> (Exit, Jip6Log) {
    let mut t = load_target(&path(file), None, None, &hex_bytes(args)).unwrap();
    t.vm.set_gas(1 << 40);
    let mut host = host;
    let (exit, log) = record(&mut t, &mut host, None).unwrap();
    let text = log.to_text();
    let parsed = Jip6Log::parse(&text).unwrap();
    assert_eq!(
        parsed.to_text(),
        text,
        "{file}: the text format round-trips"
    );
    let r =
        replay(&parsed, Spec::Gp0_8_0, 0, true).unwrap_or_else(|e| panic!("{file}: {e}\n{text}"));
    assert_eq!(r.exit, exit);
    assert_eq!(r.host_calls, log.entries.len());
    (exit, parsed)
}

#[test]
fn jip6_record_and_replay_round_trip() {
    let (exit, log) = record_and_replay("examples/guests/hostcalls.jam", "", HostMode::Continue);
    assert_eq!(exit, Exit::Halt);
    assert_eq!(log.entries.len(), 5);
    assert!(log.entries[0].reads.is_empty());
    for p in ["blake2b", "sort", "sieve", "mandel", "interp"] {
        let e: serde_json::Value =
            serde_json::from_slice(&std::fs::read(root().join("bench/expected.json")).unwrap())
                .unwrap();
        let args = e["programs"][p]["small"]["args"]
            .as_str()
            .unwrap()
            .to_string();
        let (exit, log) =
            record_and_replay(&format!("bench/programs/{p}.jam"), &args, HostMode::Stop);
        assert_eq!(exit, Exit::Halt, "{p}");
        assert_eq!(log.initial_writes.len(), 1, "{p}: the arguments are logged");
    }
}

/// A host that reads and writes memory, sets registers and gas: every effect is in the log, and
/// a corrupted log is detected at the right entry.
#[test]
fn jip6_logs_host_effects_and_detects_corruption() {
    use pvm_core::asm::{standard_program, Assembler, Operands as Ops};
    use pvm_core::isa::Opcode as O;
    let mut a = Assembler::new();
    a.inst(O::LoadImm, Ops::reg_imm(7, 0x20000)); // the heap: 2Z_Z + Q(|o| = 0)
    a.inst(
        O::StoreImmU32,
        Ops {
            imm1: 0x20000,
            imm2: 0x01020304,
            ..Ops::default()
        },
    );
    a.inst(O::Ecalli, Ops::imm(7));
    a.inst(O::LoadIndU64, Ops::reg_reg_imm(8, 7, 8));
    a.inst(O::Ecalli, Ops::imm(8));
    a.inst(O::LoadImm, Ops::reg_imm(0, -65536));
    a.inst(O::JumpInd, Ops::reg_imm(0, 0));
    let bytes = standard_program(Some(b"meta"), &[], &[], 1, 4096, &a.finish());
    let program = pvm_core::Program::from_standard(&bytes, true, Default::default()).unwrap();
    let mut vm = program.instantiate(b"xy").unwrap();
    vm.set_gas(100_000);
    let mut log = Jip6Log {
        program: bytes.clone(),
        initial_writes: vec![(
            program.standard_layout().unwrap().args_start(),
            b"xy".to_vec(),
        )],
        ..Default::default()
    };
    let exit = pvm_core::jip6::run_recorded(&mut vm, &mut log, |id, ctx| {
        if id == 7 {
            let mut buf = [0u8; 4];
            ctx.read_memory(0x20000, &mut buf).unwrap();
            ctx.write_memory(0x20008, &[9, 9]).unwrap();
            ctx.set_reg(3, 0);
            ctx.set_reg(9, 77);
            let g = ctx.gas();
            ctx.set_gas(g - 50);
        }
        pvm_core::HostOutcome::Continue
    });
    assert_eq!(exit, Exit::Halt);
    let text = log.to_text();
    for needle in [
        "memread 0x00020000 len=4 -> 0x04030201",
        "memwrite 0x00020008 len=2 <- 0x0909",
        "setreg r03 <- 0x0",
        "setreg r09 <- 0x4d",
        "setgas <- ",
        "ecalli=7 pc=",
        "HALT pc=",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in\n{text}");
    }
    assert!(replay(&Jip6Log::parse(&text).unwrap(), Spec::Gp0_8_0, 0, true).is_ok());
    // Corruptions: a register in the second ecalli line; the data of a read; a malformed line.
    // (the first ` r08=0x909` is in the `ecalli=8` line: r8 holds the bytes the host wrote)
    let bad = text.replacen(" r08=0x909", " r08=0x908", 1);
    let err = replay(&Jip6Log::parse(&bad).unwrap(), Spec::Gp0_8_0, 0, true).unwrap_err();
    assert!(
        matches!(&err, Jip6Error::Divergence { what, .. } if what == "ecalli #2"),
        "{err}\n{bad}"
    );
    let bad = text.replace("-> 0x04030201", "-> 0x04030209");
    let err = replay(&Jip6Log::parse(&bad).unwrap(), Spec::Gp0_8_0, 0, true).unwrap_err();
    assert!(err.to_string().contains("memread"), "{err}");
    let bad = text.replace("len=2 <- 0x0909", "len=3 <- 0x0909");
    assert!(matches!(Jip6Log::parse(&bad), Err(Jip6Error::Parse { line, .. }) if line > 0));
    // Without verification the corrupted register is simply run.
    let bad = text.replacen(" r08=0x909", " r08=0x908", 1);
    assert!(replay(&Jip6Log::parse(&bad).unwrap(), Spec::Gp0_8_0, 0, false).is_ok());
}

#[test]
fn trace_diff_reports_the_first_difference_and_tolerates_prefixes() {
    let a = "1: PC 0 ADD_64 g=10 pvmHash=0xaa reg=\"[1 2 3]\"\n2: PC 3 TRAP g=10 reg=\"[1 2 3]\"\n";
    let b = "[INFO pvm] 1: PC 0 add_64 g=10 pvmHash=0xaa reg=[1 2 3] extra=1\n[INFO pvm] 2: PC 3 TRAP g=10 reg=[1 2 4]\n";
    let report = trace_diff(a, b).expect("they differ");
    assert!(
        report.contains("step 2") && report.contains("r2 3 vs 4"),
        "{report}"
    );
    assert!(trace_diff(a, a).is_none());
    let c = "1: PC 0 ADD_64 g=10 pvmHash=0xab reg=[1 2 3]\n";
    assert!(trace_diff(a, c).unwrap().contains("pvmHash differs"));
}
