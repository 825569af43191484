//! `pvm run --jip6 LOG VECTOR.json` records the vector's program blob in the log's `program`
//! line (it used to record an empty program), so the log names the code it was made from.

use std::path::PathBuf;
use std::process::Command;

use pvm_core::jip7::Jip7Log;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn run_jip6_on_a_vector_records_the_vectors_program() {
    let dir = std::env::temp_dir().join(format!("pvm-jip6-vector-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in [
        "inst_add_64.json",
        "multistep_ecalli_in_the_middle_of_block.json",
    ] {
        let vector = root().join("tests/vectors/gp-0.8/programs").join(name);
        let log_path = dir.join(format!("{name}.log"));
        let out = Command::new(env!("CARGO_BIN_EXE_pvm"))
            .args(["run", "--host", "continue", "--jip6"])
            .arg(&log_path)
            .arg(&vector)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.is_empty() || !stderr.contains("panicked"),
            "{stderr}"
        );
        let text = std::fs::read_to_string(&log_path)
            .unwrap_or_else(|e| panic!("{name}: no log written ({e}); stderr: {stderr}"));
        let log = Jip7Log::parse(&text).unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&vector).unwrap()).unwrap();
        let blob: Vec<u8> = v["program"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_u64().unwrap() as u8)
            .collect();
        assert!(!blob.is_empty());
        assert_eq!(log.program, blob, "{name}: the log's program line");
        // And the logged program loads as the code blob it is.
        pvm_core::Program::from_code(&log.program, Default::default()).unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
