//! Tracing: the PVM hash against an independent blake2b (Python's hashlib), traces of
//! conformance vectors ending in the vector's expected state hash, JIP-7 record/replay round trips
//! (with grow_heap pages and inner PVMs) and detection of corrupted logs, the anan-as JIP-7 corpus,
//! the `pvm` command's help and replay options, trace-diff.

use std::path::PathBuf;
use std::process::Command;

use pvm_cli::tracing::{load_target, record, trace, trace_diff, HostMode, TraceOptions};
use pvm_cli::vectors::{collect_files, initial_instance};
use pvm_core::jip7::{replay, Jip7Error, Jip7Log};
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
                ..TraceOptions::default()
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

fn record_and_replay(file: &str, args: &str, host: HostMode) -> (Exit, Jip7Log) {
    let mut t = load_target(&path(file), None, None, &hex_bytes(args)).unwrap();
    t.vm.set_gas(1 << 40);
    let mut host = host;
    let (exit, log) = record(&mut t, &mut host, None).unwrap();
    let text = log.to_text();
    let parsed = Jip7Log::parse(&text).unwrap();
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
fn jip7_record_and_replay_round_trip() {
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
fn jip7_logs_host_effects_and_detects_corruption() {
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
    let mut log = Jip7Log {
        program: bytes.clone(),
        initial_writes: vec![(
            program.standard_layout().unwrap().args_start(),
            b"xy".to_vec(),
        )],
        ..Default::default()
    };
    let exit = pvm_core::jip7::run_recorded(&mut vm, &mut log, |id, ctx| {
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
    assert!(replay(&Jip7Log::parse(&text).unwrap(), Spec::Gp0_8_0, 0, true).is_ok());
    // Corruptions: a register in the second ecalli line; the data of a read; a malformed line.
    // (the first ` r08=0x909` is in the `ecalli=8` line: r8 holds the bytes the host wrote)
    let bad = text.replacen(" r08=0x909", " r08=0x908", 1);
    let err = replay(&Jip7Log::parse(&bad).unwrap(), Spec::Gp0_8_0, 0, true).unwrap_err();
    assert!(
        matches!(&err, Jip7Error::Divergence { what, .. } if what.starts_with("ecalli #2 ")),
        "{err}\n{bad}"
    );
    let bad = text.replace("-> 0x04030201", "-> 0x04030209");
    let err = replay(&Jip7Log::parse(&bad).unwrap(), Spec::Gp0_8_0, 0, true).unwrap_err();
    assert!(err.to_string().contains("memread"), "{err}");
    let bad = text.replace("len=2 <- 0x0909", "len=3 <- 0x0909");
    assert!(matches!(Jip7Log::parse(&bad), Err(Jip7Error::Parse { line, .. }) if line > 0));
    // Without verification the corrupted register is simply run.
    let bad = text.replacen(" r08=0x909", " r08=0x908", 1);
    assert!(replay(&Jip7Log::parse(&bad).unwrap(), Spec::Gp0_8_0, 0, false).is_ok());
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

// ---- JIP-7: extension records, the anan-as corpus, the command line ----

use pvm_cli::tracing::Target;
use pvm_core::asm::{standard_program, Assembler, Operands as Ops};
use pvm_core::inner::InnerPvms;
use pvm_core::isa::Opcode as O;
use pvm_core::jip7::{replay_with, ReplayOptions};

fn halt(a: &mut Assembler) {
    a.inst(O::LoadImm, Ops::reg_imm(0, -65536));
    a.inst(O::JumpInd, Ops::reg_imm(0, 0));
}

fn target_of(bytes: Vec<u8>) -> Target {
    let program =
        pvm_core::Program::from_standard(&bytes, false, Default::default()).expect("valid");
    let mut vm = program.instantiate(&[]).unwrap();
    vm.set_gas(10_000_000);
    Target {
        vm,
        expected: None,
        bytes,
        args: vec![],
    }
}

/// Records a run with libpvm's built-ins answering the PVM-level host calls and every other
/// host call continuing.
fn record_with_builtins(bytes: Vec<u8>) -> (Exit, String) {
    let mut t = target_of(bytes);
    let mut inner = InnerPvms::new(Spec::Gp0_8_0);
    let (exit, log) = record(&mut t, &mut HostMode::Continue, Some(&mut inner)).unwrap();
    (exit, log.to_text())
}

fn replay_text(text: &str, opts: &ReplayOptions) -> Vec<String> {
    let log = Jip7Log::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let r = replay_with(&log, opts).unwrap();
    r.divergences.iter().map(|d| d.to_string()).collect()
}

/// A guest that grows its heap by 3 pages with `grow_heap`, stores into the new pages, makes
/// a host call and halts.
fn grow_heap_guest() -> Vec<u8> {
    let mut a = Assembler::new();
    // rw_start = 0x20000 (no read-only data); one heap page, so the heap ends at page 0x21.
    a.inst(O::LoadImm, Ops::reg_imm(7, 0x24));
    a.inst(O::Ecalli, Ops::imm(1)); // grow_heap
    a.inst(
        O::StoreImmU64,
        Ops {
            imm1: 0x23008,
            imm2: 0x55,
            ..Ops::default()
        },
    );
    a.inst(O::LoadImm, Ops::reg_imm(8, 0x23008));
    a.inst(O::Ecalli, Ops::imm(100)); // answered by the host (continue)
    a.inst(O::LoadIndU64, Ops::reg_reg_imm(9, 8, 0));
    halt(&mut a);
    standard_program(None, &[], &[], 1, 4096, &a.finish())
}

#[test]
fn jip7_grow_heap_pages_record_and_replay() {
    let (exit, text) = record_with_builtins(grow_heap_guest());
    assert_eq!(exit, Exit::Halt, "{text}");
    for needle in [
        "comment implementation libpvm",
        "ecalli=1 pc=",
        "x-builtin grow_heap",
        "x-pages 0x00021000 len=12288 access=write",
        "setreg r07 <- 0x24",
        "ecalli=100 pc=",
        "HALT pc=",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in\n{text}");
    }
    let verify = ReplayOptions::default();
    assert_eq!(replay_text(&text, &verify), Vec::<String>::new(), "{text}");
    // The page record is what makes the log replayable by a reader without built-ins: without
    // it (and without x-builtin) the store faults.
    let stripped: String = text
        .lines()
        .filter(|l| !l.starts_with("x-"))
        .map(|l| format!("{l}\n"))
        .collect();
    let d = replay_text(&stripped, &verify);
    assert!(
        d.iter().any(|d| d.contains("termination")),
        "{d:?}\n{stripped}"
    );
    // Re-executing the built-in catches a page record that disagrees with it.
    let wrong = text.replace("len=12288 access=write", "len=8192 access=write");
    let d = replay_text(&wrong, &verify);
    assert!(
        d.iter()
            .any(|d| d.contains("x-builtin grow_heap") && d.contains("x-pages")),
        "{d:?}"
    );
}

/// A small inner program: r9 = 40 + 2, stored at 0x20000 of the inner memory; halt.
fn inner_blob() -> Vec<u8> {
    let mut a = Assembler::new();
    a.inst(O::LoadImm, Ops::reg_imm(8, 40));
    a.inst(O::AddImm64, Ops::reg_reg_imm(9, 8, 2));
    a.inst(O::LoadImm, Ops::reg_imm(1, 0x20000));
    a.inst(O::StoreIndU64, Ops::reg_reg_imm(9, 1, 0));
    halt(&mut a);
    a.finish()
}

/// A refine-style guest: machine (blob in its read-only data), pages, invoke, peek, expunge.
fn inner_pvm_guest() -> Vec<u8> {
    let blob = inner_blob();
    let mut a = Assembler::new();
    let area = 0x30100i64; // in the heap page (rw_start = 0x30000 with a read-only section)
    let call = |a: &mut Assembler, id: i64| a.inst(O::Ecalli, Ops::imm(id));
    a.inst(O::LoadImm, Ops::reg_imm(7, 0x10000));
    a.inst(O::LoadImm, Ops::reg_imm(8, blob.len() as i64));
    a.inst(O::LoadImm, Ops::reg_imm(9, 0));
    call(&mut a, 9); // machine
    a.inst(O::MoveReg, Ops::dst_src(5, 7));
    a.inst(O::LoadImm, Ops::reg_imm(8, 0x20));
    a.inst(O::LoadImm, Ops::reg_imm(9, 1));
    a.inst(O::LoadImm, Ops::reg_imm(10, 2));
    call(&mut a, 12); // pages(n, 0x20, 1, write)
    a.inst(
        O::StoreImmU64,
        Ops {
            imm1: area,
            imm2: 100_000,
            ..Ops::default()
        },
    );
    a.inst(O::MoveReg, Ops::dst_src(7, 5));
    a.inst(O::LoadImm, Ops::reg_imm(8, area));
    call(&mut a, 13); // invoke
    a.inst(O::MoveReg, Ops::dst_src(7, 5));
    a.inst(O::LoadImm, Ops::reg_imm(8, area + 200));
    a.inst(O::LoadImm, Ops::reg_imm(9, 0x20000));
    a.inst(O::LoadImm, Ops::reg_imm(10, 8));
    call(&mut a, 10); // peek(n, area + 200, 0x20000, 8)
    a.inst(O::MoveReg, Ops::dst_src(7, 5));
    call(&mut a, 14); // expunge
    a.inst(O::LoadImm, Ops::reg_imm(1, area + 200));
    a.inst(O::LoadIndU64, Ops::reg_reg_imm(11, 1, 0));
    halt(&mut a);
    standard_program(None, &blob, &[], 1, 4096, &a.finish())
}

#[test]
fn jip7_inner_pvms_record_and_replay_with_reexecution() {
    let (exit, text) = record_with_builtins(inner_pvm_guest());
    assert_eq!(exit, Exit::Halt, "{text}");
    assert!(text.contains(" r11=0x2a"), "the guest peeked 42:\n{text}");
    for b in ["machine", "pages", "invoke", "peek", "expunge"] {
        assert!(
            text.contains(&format!("x-builtin {b}\n")),
            "no {b} in\n{text}"
        );
    }
    let verify = ReplayOptions::default();
    assert_eq!(replay_text(&text, &verify), Vec::<String>::new(), "{text}");
    // Tamper with what the inner machine returned (the r9 slot of invoke's register area):
    // the outer log alone still replays without verification, but re-executing the inner PVM
    // reports the invoke entry.
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| *l == "x-builtin invoke").unwrap();
    let w = (at..lines.len())
        .find(|&i| lines[i].starts_with("memwrite 0x00030100 len=112"))
        .unwrap();
    let data = lines[w].rsplit_once("0x").unwrap().1;
    // Slot 0 is the gas, slots 1..=13 the registers: r9 is slot 10, bytes 80..88.
    assert_eq!(&data[160..162], "2a", "{}", lines[w]);
    let tampered_line = format!(
        "{}0x{}2b{}",
        lines[w].rsplit_once("0x").unwrap().0,
        &data[..160],
        &data[162..]
    );
    let tampered = text.replace(lines[w], &tampered_line);
    let d = replay_text(&tampered, &verify);
    assert!(
        d.iter()
            .any(|d| d.contains("x-builtin invoke") && d.contains("writes differ")),
        "{d:?}"
    );
    let no_verify = ReplayOptions {
        verify: false,
        ..ReplayOptions::default()
    };
    assert_eq!(replay_text(&tampered, &no_verify), Vec::<String>::new());
}

fn count_lines(text: &str, prefix: &str) -> usize {
    text.lines()
        .filter(|l| l.trim_start().starts_with(prefix))
        .count()
}

#[test]
fn anan_as_jip7_corpus_parses() {
    let dir = root().join("tests/traces/anan-as");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 63, "the corpus has 63 logs");
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let log = Jip7Log::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let name = f.display();
        assert_eq!(log.entries.len(), count_lines(&text, "ecalli="), "{name}");
        let reads: usize = log.entries.iter().map(|e| e.reads.len()).sum();
        assert_eq!(reads, count_lines(&text, "memread "), "{name}");
        let writes: usize = log.entries.iter().map(|e| e.writes.len()).sum();
        assert_eq!(
            writes + log.initial_writes.len(),
            count_lines(&text, "memwrite "),
            "{name}"
        );
        let regs: usize = log.entries.iter().map(|e| e.set_regs.len()).sum();
        assert_eq!(regs, count_lines(&text, "setreg "), "{name}");
        let gas = log.entries.iter().filter(|e| e.set_gas.is_some()).count();
        assert_eq!(gas, count_lines(&text, "setgas "), "{name}");
        assert_eq!(
            log.start.is_some(),
            count_lines(&text, "start ") == 1,
            "{name}"
        );
        assert!(log.end.is_some(), "{name}: a termination line");
        assert!(!log.program.is_empty(), "{name}");
        // What libpvm writes reads back to the same log.
        assert_eq!(Jip7Log::parse(&log.to_text()).unwrap(), log, "{name}");
    }
}

fn pvm(args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pvm"));
    cmd.args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_file(name: &str, bytes: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("pvm-jip7-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn every_subcommand_has_help() {
    for cmd in [
        "test-vectors",
        "block-gas",
        "run",
        "trace",
        "dump",
        "trace-diff",
        "disasm",
        "replay",
        "bench",
    ] {
        for flag in ["--help", "-h"] {
            let (code, out, err) = pvm(&[cmd, flag], None);
            assert_eq!(code, 0, "pvm {cmd} {flag}: {err}");
            assert!(
                out.starts_with(&format!("usage: pvm {cmd}")),
                "pvm {cmd} {flag}: {out}"
            );
        }
    }
    let (code, out, _) = pvm(&["--help"], None);
    assert_eq!(code, 0);
    assert!(out.contains("replay"));
    let (code, out, _) = pvm(&["replay", "--help"], None);
    assert_eq!(code, 0);
    for opt in ["--gas", "--all", "--no-verify", "--ignore-gas"] {
        assert!(out.contains(opt), "{out}");
    }
}

#[test]
fn replay_cli_rejects_bad_text_without_crashing() {
    // Issue #12 F1: `program 0xaé0` used to exit 101 (a panic).
    let f = temp_file("f1.log", b"program 0xa\xc3\xa90\n");
    let (code, out, err) = pvm(&["replay", &f], None);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("line 1") && err.contains("not hex"), "{err}");
    let f = temp_file("utf8.log", b"program 0x00\n\xff\n");
    let (code, _, err) = pvm(&["replay", &f], None);
    assert_eq!(code, 2);
    assert!(err.contains("line 2") && err.contains("UTF-8"), "{err}");
    let (code, _, err) = pvm(&["replay", "--bogus", &f], None);
    assert_eq!(code, 2);
    assert!(err.contains("unknown option"), "{err}");
}

#[test]
fn replay_cli_gas_bound() {
    // Issue #12 F5: no `start` line and a loop: bounded by --gas (or the default bound).
    let f = temp_file("f5.log", b"program 0x000005280000000001\n");
    let (code, out, err) = pvm(&["replay", "--gas", "5000", &f], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("exit oog"), "{out}");
    let (code, out, _) = pvm(
        &["replay", "--gas", "5000", "-"],
        Some(b"program 0x000005280000000001"),
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("exit oog"), "{out}");
}

#[test]
fn replay_cli_all_no_verify_and_ignore_gas() {
    let (_, text) = record_with_builtins(grow_heap_guest());
    let ok = temp_file("ok.log", text.as_bytes());
    let (code, out, err) = pvm(&["replay", &ok], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("replayed 2 of 2 host calls; exit halt"),
        "{out}"
    );
    // Two corruptions: the gas of both ecalli lines, and a register of the termination.
    let mut bad = String::new();
    for l in text.lines() {
        let l = if l.starts_with("ecalli=") {
            let (head, tail) = l.split_once(" gas=").unwrap();
            let (g, rest) = tail.split_once(' ').unwrap_or((tail, ""));
            let g: u64 = g.parse().unwrap();
            format!("{head} gas={} {rest}", g + 1)
        } else if l.starts_with("HALT ") {
            format!("{l} r12=0x7")
        } else {
            l.to_string()
        };
        bad.push_str(l.trim_end());
        bad.push('\n');
    }
    let bad = temp_file("bad.log", bad.as_bytes());
    let (code, out, _) = pvm(&["replay", &bad], None);
    assert_eq!(code, 1);
    assert_eq!(out.matches("divergence at").count(), 1, "first only: {out}");
    assert!(
        out.contains("ecalli #1") && out.contains("gas: logged"),
        "{out}"
    );
    let (code, out, _) = pvm(&["replay", "--all", &bad], None);
    assert_eq!(code, 1);
    assert_eq!(out.matches("divergence at").count(), 3, "every one: {out}");
    assert!(out.contains("ecalli #2") && out.contains("termination") && out.contains("r12"));
    // --ignore-gas leaves the gas out: only the register of the termination remains.
    let (code, out, _) = pvm(&["replay", "--all", "--ignore-gas", &bad], None);
    assert_eq!(code, 1);
    assert_eq!(out.matches("divergence at").count(), 1, "{out}");
    // --no-verify does not check the host calls but still compares the final state.
    let (code, out, _) = pvm(&["replay", "--no-verify", &bad], None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("termination") && out.contains("r12") && !out.contains("ecalli #"));
    let (code, out, _) = pvm(&["replay", "--no-verify", &ok], None);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn run_jip7_and_jip6_alias_record_the_same_log() {
    let guest = temp_file("grow.jam", &grow_heap_guest());
    let a = temp_file("a.log", b"");
    let b = temp_file("b.log", b"");
    let (code, out, err) = pvm(
        &["run", "--inner", "--host", "continue", "--jip7", &a, &guest],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, _) = pvm(
        &["run", "--inner", "--host", "continue", "--jip6", &b, &guest],
        None,
    );
    assert_eq!(code, 0);
    let (ta, tb) = (
        std::fs::read_to_string(&a).unwrap(),
        std::fs::read_to_string(&b).unwrap(),
    );
    assert_eq!(ta, tb);
    assert!(
        ta.contains("x-pages 0x00021000 len=12288 access=write"),
        "{ta}"
    );
    let (code, out, _) = pvm(&["replay", &a], None);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn run_jip7_records_a_vector_with_its_program_and_memory() {
    // Issue #12: `pvm run --jip6` on a vector .json used to record an empty program.
    let out = temp_file("vector.log", b"");
    let v = path("tests/vectors/gp-0.8/programs/inst_store_u8.json");
    let (_, stdout, err) = pvm(&["run", "--jip7", &out, &v], None);
    assert!(stdout.starts_with("exit: "), "{stdout}{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    let log = Jip7Log::parse(&text).unwrap();
    assert!(!log.program.is_empty(), "{text}");
    assert!(
        text.contains("\nx-pages 0x00020000 len=4096 access=write\n"),
        "the vector's page is in the prelude:\n{text}"
    );
    let (code, stdout, _) = pvm(&["replay", &out], None);
    assert_eq!(code, 0, "{stdout}");
}

/// The trace as it was written before `StepHasher`: `pvm_hash` after every hashed step, computed
/// there and then, with the same line rules as `tracing::trace`.
fn reference_trace(t: &mut Target, mut host: HostMode, opts: &TraceOptions) -> String {
    use pvm_core::trace::{ecalli_line, exit_line, trace_line};
    use pvm_core::HostOutcome;
    let vm = &mut t.vm;
    let mut out = String::new();
    let mut step = 0u64;
    let exit = loop {
        let pc = vm.next_pc();
        let name = vm
            .program()
            .instruction_at(pc)
            .opcode
            .map_or("invalid", |o| o.name());
        let result = vm.step();
        step += 1;
        let shown = step >= opts.from && (opts.limit == 0 || step < opts.from + opts.limit);
        let hash =
            (shown && opts.hash_every > 0 && step % opts.hash_every == 0).then(|| pvm_hash(vm));
        let line = |vm: &pvm_core::Instance| {
            trace_line(step, pc, name, vm.gas(), hash.as_ref(), vm.registers()) + "\n"
        };
        match result {
            None if shown => out += &line(vm),
            None => {}
            Some(Exit::HostCall(id)) => {
                if shown {
                    out += &line(vm);
                }
                match host.answer(None, id, vm).unwrap() {
                    None => break Exit::HostCall(id),
                    Some(HostOutcome::Continue) => {
                        if shown {
                            let h = (opts.hash_every > 0).then(|| pvm_hash(vm));
                            out += &(ecalli_line(id, vm.gas(), h.as_ref()) + "\n");
                        }
                    }
                    Some(other) => break vm.finish_host_call(other).unwrap(),
                }
            }
            Some(e) => break e,
        }
    };
    let h = pvm_hash(vm);
    out + &exit_line(exit, vm.pc(), vm.gas(), &h, step) + "\n"
}

/// `pvm trace` output is the same with hashes computed on the stepping thread (reusing
/// unchanged ones) and on 1–3 worker threads, and the same as hashing every state afresh: on the
/// bundled blake2b guest (stores to the stack and the heap) and on the host-call example,
/// answered by continuing and by replaying a JIP-7 log (whose host calls write memory).
/// A loop of 200 host calls whose logged answers only write memory (no register, no gas), and
/// that log: after each `ecalli` only memory differs from the state hashed on its step line.
fn host_writes_guest() -> (Vec<u8>, Jip7Log) {
    let mut a = Assembler::new();
    let top = a.here();
    a.inst(O::AddImm64, Ops::reg_reg_imm(5, 5, 1));
    a.inst(O::Ecalli, Ops::imm(7));
    a.inst(O::BranchLtUImm, Ops::branch_imm(5, 200, top));
    halt(&mut a);
    let bytes = standard_program(None, &[], &[], 1, 4096, &a.finish());
    let mut t = target_of(bytes.clone());
    let mut log = Jip7Log {
        program: bytes.clone(),
        ..Default::default()
    };
    let mut n = 0u32;
    let exit = pvm_core::jip7::run_recorded(&mut t.vm, &mut log, |_, ctx| {
        n += 1;
        ctx.write_memory(0x20000 + 8 * (n % 300), &n.to_le_bytes())
            .unwrap();
        pvm_core::HostOutcome::Continue
    });
    assert_eq!(exit, Exit::Halt);
    assert_eq!(log.entries.len(), 200);
    (bytes, log)
}

/// `pvm trace` output is the same with hashes computed on the stepping thread (reusing
/// unchanged ones) and on 1–3 worker threads, and the same as hashing every state afresh: on the
/// bundled blake2b guest (stores to the stack and the heap), on the host-call example answered
/// by continuing, and on a guest whose host calls (replayed from a JIP-7 log) write memory only.
#[test]
fn trace_output_is_the_same_sequential_and_parallel() {
    type Case = (
        &'static str,
        Box<dyn Fn() -> Target>,
        Box<dyn Fn() -> HostMode>,
    );
    let file = |f: &'static str, args: &'static str, gas: i64| {
        move || {
            let mut t = load_target(&path(f), None, None, &hex_bytes(args)).unwrap();
            t.vm.set_gas(gas);
            t
        }
    };
    let (bytes, log) = host_writes_guest();
    let cases: Vec<Case> = vec![
        (
            "blake2b",
            Box::new(file("bench/programs/blake2b.jam", "40000000", 60_000)),
            Box::new(|| HostMode::Stop),
        ),
        (
            "hostcalls",
            Box::new(file("examples/guests/hostcalls.jam", "", 1 << 30)),
            Box::new(|| HostMode::Continue),
        ),
        (
            "host writes",
            Box::new(move || target_of(bytes.clone())),
            Box::new(move || HostMode::Replay(Box::new(log.clone()), 0)),
        ),
    ];
    for (name, load, host) in &cases {
        for (hash_every, from, limit) in [(1, 1, 0), (3, 1, 0), (1, 100, 500)] {
            let opts = TraceOptions {
                hash_every,
                from,
                limit,
                ..TraceOptions::default()
            };
            let want = reference_trace(&mut load(), host(), &opts);
            assert!(want.lines().count() > 100, "{name}");
            for hash_threads in [0, 1, 2, 3] {
                let mut t = load();
                let mut out = Vec::new();
                let opts = TraceOptions {
                    hash_threads,
                    ..opts.clone()
                };
                trace(&mut t.vm, &mut host(), None, &opts, &mut out).unwrap();
                assert!(
                    String::from_utf8(out).unwrap() == want,
                    "{name}: hash_every {hash_every}, from {from}, limit {limit}, \
                     {hash_threads} threads"
                );
            }
        }
    }
}
