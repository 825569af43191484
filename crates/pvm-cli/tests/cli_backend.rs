//! `pvm` command line: `--backend` everywhere a program is loaded, `run -v`, and `pvm info`.

use std::path::PathBuf;
use std::process::{Command, Output};

use pvm_core::metadata::ProgramMetadata;
use pvm_core::Backend;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pvm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pvm"))
        .args(args)
        .current_dir(root())
        .env_remove("LIBPVM_BACKEND")
        .output()
        .expect("pvm runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const GUEST: &str = "examples/guests/hostcalls.jam";
const VECTOR: &str = "tests/vectors/gp-0.8/programs/inst_add_64.json";

#[test]
fn backend_option_on_every_loading_command() {
    let runs: Vec<Vec<&str>> = vec![
        vec!["run", "--host", "continue", GUEST],
        vec!["trace", "--limit", "3", GUEST],
        vec!["dump", "--at", "3", GUEST],
        vec!["disasm", GUEST],
        vec!["info", GUEST],
        vec!["block-gas", VECTOR],
        vec!["test-vectors", VECTOR],
    ];
    for r in &runs {
        let mut args = r.clone();
        args.splice(1..1, ["--backend", "interpreter"]);
        let o = pvm(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let mut args = r.clone();
        args.splice(1..1, ["--backend", "nonsense"]);
        let o = pvm(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&o).contains("unknown backend `nonsense`"),
            "{args:?}: {}",
            stderr(&o)
        );
        // The recompiler: it runs where supported, else one clear error.
        let mut args = r.clone();
        args.splice(1..1, ["--backend", "recompiler"]);
        let o = pvm(&args);
        if Backend::recompiler_supported() {
            assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        } else {
            assert_eq!(o.status.code(), Some(2), "{args:?}");
            assert!(
                stderr(&o).contains("not supported"),
                "{args:?}: {}",
                stderr(&o)
            );
        }
    }
}

#[test]
fn run_verbose_reports_the_backend() {
    let o = pvm(&[
        "run",
        "-v",
        "--backend",
        "interpreter",
        "--host",
        "continue",
        GUEST,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("backend: interpreter\n"),
        "{}",
        stdout(&o)
    );
    let o = pvm(&["run", "--host", "continue", GUEST]);
    assert!(!stdout(&o).contains("backend:"), "only with -v");
    // auto resolves to a concrete backend.
    let o = pvm(&[
        "run",
        "--verbose",
        "--backend",
        "auto",
        "--host",
        "continue",
        GUEST,
    ]);
    let want = if Backend::recompiler_supported() {
        "backend: recompiler\n"
    } else {
        "backend: interpreter\n"
    };
    assert!(stdout(&o).contains(want), "{}", stdout(&o));
}

#[test]
fn test_vectors_all_backends() {
    let o = pvm(&["test-vectors", "--backend", "all", VECTOR]);
    assert!(o.status.success(), "{}", stderr(&o));
    let n = if Backend::recompiler_supported() {
        2
    } else {
        1
    };
    assert_eq!(
        stdout(&o).matches("1 passed, 0 failed").count(),
        n,
        "{}",
        stdout(&o)
    );
}

#[test]
fn info_shows_metadata_and_structure() {
    let md = ProgramMetadata {
        format: 0,
        name: "my-service".into(),
        version: "1.2.3".into(),
        license: "MIT".into(),
        authors: vec!["Alice <alice@example.com>".into()],
        trailing: 0,
    };
    let standard = std::fs::read(root().join(GUEST)).unwrap();
    let mut blob = Vec::new();
    let m = md.encode();
    pvm_core::program::blob::encode_varint(m.len() as u64, &mut blob);
    blob.extend_from_slice(&m);
    blob.extend_from_slice(&standard);
    let dir = std::env::temp_dir().join(format!("pvm-info-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("service.jam");
    std::fs::write(&file, &blob).unwrap();
    let o = pvm(&["info", file.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for want in [
        "kind: JAM service blob",
        "metadata (JIP-6 format 0):",
        "  name: my-service\n",
        "  version: 1.2.3\n",
        "  license: MIT\n",
        "  author: Alice <alice@example.com>\n",
        "code size: 450 bytes\n",
        "basic blocks: 20\n",
        "jump table: 0 entries\n",
        "pc 0 (is-authorized / refine)",
        "pc 5 (accumulate)",
        "stack: 16384 bytes",
        "spec: 0.8.0\n",
        "backend: ",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    // A code blob with a jump table (a vector's program).
    let o = pvm(&[
        "info",
        "tests/vectors/gp-0.8/programs/inst_jump_indirect_misaligned_djump_with_offset_nok.json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("kind: generic code blob (GP A.1)\n"), "{out}");
    assert!(
        out.contains("jump table: 1 entries\n  [0] (address 2) -> pc 7\n"),
        "{out}"
    );
    assert!(
        out.contains("entry point: pc 0 (no standard layout)"),
        "{out}"
    );
    let o = pvm(&["info", "--help"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("usage: pvm info"));
}

#[test]
fn run_prints_the_executed_instruction_count() {
    // The same count as the library's, answering every host call by continuing.
    let bytes = std::fs::read(root().join(GUEST)).unwrap();
    let program =
        pvm_core::Program::from_standard(&bytes, false, pvm_core::ProgramOptions::default())
            .unwrap();
    let mut vm = program.instantiate(&[]).unwrap();
    vm.set_gas(1 << 40);
    vm.run_with_host(|_, _| pvm_core::HostOutcome::Continue);
    let line = format!("\ninstructions: {}\n", vm.instruction_count());
    assert!(vm.instruction_count() > 100);
    let mut backends = vec!["interpreter"];
    if Backend::recompiler_supported() {
        backends.push("recompiler");
    }
    for backend in backends {
        let o = pvm(&["run", "--backend", backend, "--host", "continue", GUEST]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains(&line), "{backend}: {}", stdout(&o));
    }
}
