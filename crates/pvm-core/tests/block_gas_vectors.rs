//! Checks `block_cost` (GP 0.8.0 A.9/A.10) against the `block-gas-costs` of every GP 0.8
//! conformance vector in `tests/vectors/gp-0.8/programs`.

use std::path::{Path, PathBuf};

use pvm_core::gas::simulator::block_cost;
use pvm_core::isa::Code;

/// A byte reader over a program blob.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        out
    }

    fn le(&mut self, n: usize) -> u64 {
        self.take(n)
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
    }

    /// GP natural-number (varint) decoding: l leading one bits in the first byte say how many
    /// little-endian bytes follow.
    fn varint(&mut self) -> u64 {
        let first = self.take(1)[0];
        if first == 0xff {
            return self.le(8);
        }
        let l = first.leading_ones() as usize;
        let high = u64::from(first & (0x7f >> l));
        (high << (8 * l)) + self.le(l)
    }
}

/// Splits the blob E(|j|) ⌢ E_1(z) ⌢ E(|c|) ⌢ E_z(j) ⌢ c ⌢ k into the code and the unpacked
/// bitmask.
fn parse_blob(blob: &[u8]) -> (Vec<u8>, Vec<bool>) {
    let mut r = Reader { bytes: blob, at: 0 };
    let jump_count = r.varint() as usize;
    let z = r.take(1)[0] as usize;
    let code_len = r.varint() as usize;
    r.take(jump_count * z);
    let code = r.take(code_len).to_vec();
    let packed = r.take(code_len.div_ceil(8));
    let bitmask = (0..code_len)
        .map(|i| (packed[i / 8] >> (i % 8)) & 1 == 1)
        .collect();
    assert_eq!(r.at, blob.len(), "trailing bytes in blob");
    (code, bitmask)
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/gp-0.8/programs")
}

#[test]
fn block_gas_costs_match_gp_0_8_vectors() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(vectors_dir())
        .expect("vector directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 363, "expected 363 GP 0.8 vector files");

    let mut mismatches = Vec::new();
    let mut files_ok = 0;
    let mut blocks = 0;
    for path in &files {
        let text = std::fs::read_to_string(path).expect("read vector");
        let json: serde_json::Value = serde_json::from_str(&text).expect("parse vector");
        let blob: Vec<u8> = json["program"]
            .as_array()
            .expect("program")
            .iter()
            .map(|b| b.as_u64().expect("byte") as u8)
            .collect();
        let (code, bitmask) = parse_blob(&blob);
        let code = Code {
            code: &code,
            bitmask: &bitmask,
        };
        let name = json["name"].as_str().expect("name").to_owned();
        let mut ok = true;
        for entry in json["block-gas-costs"].as_array().expect("block-gas-costs") {
            let pc = entry["pc"].as_u64().expect("pc") as u32;
            let expected = entry["cost"].as_u64().expect("cost") as u32;
            let got = block_cost(&code, pc);
            blocks += 1;
            if got != expected {
                ok = false;
                mismatches.push(format!("{name} @ pc {pc}: expected {expected}, got {got}"));
            }
        }
        files_ok += usize::from(ok);
    }
    for m in &mismatches {
        eprintln!("{m}");
    }
    eprintln!(
        "{files_ok}/{} files fully match ({blocks} blocks, {} mismatches)",
        files.len(),
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} block cost mismatches",
        mismatches.len()
    );
}
