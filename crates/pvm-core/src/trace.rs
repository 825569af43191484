//! Tracing for cross-implementation debugging: the PVM hash (v1) and state dump, per-instruction
//! trace lines, and JIP-6 host-call I/O records.
//!
//! ## PVM hash v1
//! `pvmHash = blake2b-256(E8(φ0) ⌢ … ⌢ E8(φ12) ⌢ E8(ϱ) ⌢ E(ν))` with E8 little-endian (gas as its
//! unsigned 64-bit two's-complement value) and `E(ν)` = for every page in ascending page index,
//! `E4(page index) ⌢ the page's 4096 bytes`. **Page set (libpvm's reading of "initialized, read
//! or written to with non-zero values"):** every page that is readable by the guest (access R or
//! W) and holds at least one non-zero byte. Inaccessible pages never count, whatever they hold;
//! an all-zero readable page never counts, whether or not it was touched. This makes the hash a
//! function of the GP state alone (registers, gas, readable memory), independent of the
//! implementation's allocation history.
//!
//! Cost: the registers and gas come first in the preimage and change on nearly every
//! instruction, so every hash digests all non-zero pages again (no prefix of the blake2b state
//! can be reused). Hashing after every instruction therefore costs about (112 + 4100·pages)
//! bytes of blake2b per step; use a hash interval for long traces.

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};

use crate::instance::Instance;
use crate::memory::{Memory, PAGE_SIZE};

type Blake2b256 = Blake2b<U32>;

/// The pages of the hash preimage: readable pages with at least one non-zero byte, ascending.
///
/// Only pages with storage of their own are read ([`Memory::readable_backed_pages`], from the page
/// table's bitmaps): a mapped page that was never written reads the shared zero page, so it can
/// never be in the set and is skipped without being read. The cost is O(written pages), not
/// O(mapped pages) — a guest that maps the whole 4 GiB space and writes one byte hashes one page.
/// The set is exactly the v1 definition: a page that was written and zeroed again still has
/// storage, is read, and is left out because it is all zero.
pub fn hashed_pages(
    memory: &Memory,
) -> impl Iterator<Item = (u32, &[u8; PAGE_SIZE as usize])> + '_ {
    memory
        .readable_backed_pages()
        .filter(|(_, bytes)| bytes.iter().any(|b| *b != 0))
}

/// The first 112 bytes of the preimage: E8 of the 13 registers and of the gas.
pub fn registers_and_gas(registers: &[u64; 13], gas: i64) -> [u8; 112] {
    let mut out = [0u8; 112];
    for (i, r) in registers.iter().enumerate() {
        out[8 * i..8 * i + 8].copy_from_slice(&r.to_le_bytes());
    }
    out[104..].copy_from_slice(&(gas as u64).to_le_bytes());
    out
}

/// PVM hash v1 of an instance's state.
pub fn pvm_hash(instance: &Instance) -> [u8; 32] {
    state_hash(instance.registers(), instance.gas(), instance.memory())
}

/// PVM hash v1 of registers, gas and memory.
pub fn state_hash(registers: &[u64; 13], gas: i64, memory: &Memory) -> [u8; 32] {
    let mut h = Blake2b256::new();
    h.update(registers_and_gas(registers, gas));
    for (p, bytes) in hashed_pages(memory) {
        h.update(p.to_le_bytes());
        h.update(bytes);
    }
    h.finalize().into()
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// The hash preimage as text: the line `regs+gas: <224 hex digits>`, then one line per hashed
/// page `page 0x000fe: <E4(index), 8 hex digits> <the page's 8192 hex digits>`. Concatenating
/// everything after the colons, without spaces, gives the exact preimage, so the dump can be fed
/// to any blake2b-256 tool and diffed with any text diff.
pub fn dump_state(instance: &Instance) -> String {
    let mut s = format!(
        "regs+gas: {}\n",
        hex(&registers_and_gas(instance.registers(), instance.gas()))
    );
    for (p, bytes) in hashed_pages(instance.memory()) {
        s.push_str(&format!(
            "page {p:#07x}: {} {}\n",
            hex(&p.to_le_bytes()),
            hex(bytes)
        ));
    }
    s
}

/// Length in bytes of the first line of [`dump_state`]: `regs+gas: ` + 224 hex digits + `\n`.
const DUMP_HEADER_LEN: usize = 10 + 224 + 1;
/// Length of one page line: `page 0x000fe: ` + 8 hex digits + ` ` + 8192 hex digits + `\n`
/// (page indices are below 2^20, so `{:#07x}` always prints 5 digits).
const DUMP_PAGE_LEN: usize = 14 + 8 + 1 + 2 * PAGE_SIZE as usize + 1;

/// `dump_state(instance).len()` without building the text (it reads only the pages that hold
/// storage of their own, to check that they are non-zero).
pub fn dump_state_len(instance: &Instance) -> usize {
    DUMP_HEADER_LEN + DUMP_PAGE_LEN * hashed_pages(instance.memory()).count()
}

/// One per-instruction trace line (`STEP: PC pc NAME g=gas pvmHash=0x… reg="[r0 … r12]"`); the
/// hash field is omitted when `hash` is `None`.
pub fn trace_line(
    step: u64,
    pc: u32,
    name: &str,
    gas: i64,
    hash: Option<&[u8; 32]>,
    registers: &[u64; 13],
) -> String {
    let regs: Vec<String> = registers.iter().map(|r| r.to_string()).collect();
    let hash = hash
        .map(|h| format!(" pvmHash=0x{}", hex(h)))
        .unwrap_or_default();
    format!(
        "{step}: PC {pc} {} g={gas}{hash} reg=\"[{}]\"",
        name.to_uppercase(),
        regs.join(" ")
    )
}

/// The line after a host call of a trace: `ECALLI id g=gas[ pvmHash=0x…]`.
pub fn ecalli_line(id: u32, gas: i64, hash: Option<&[u8; 32]>) -> String {
    let hash = hash
        .map(|h| format!(" pvmHash=0x{}", hex(h)))
        .unwrap_or_default();
    format!("ECALLI {id} g={gas}{hash}")
}

/// The last line of a trace: `EXIT halt|panic|oog|fault=0x…|host=id pc= g= pvmHash=0x… steps=`.
pub fn exit_line(exit: crate::Exit, pc: u32, gas: i64, hash: &[u8; 32], steps: u64) -> String {
    let what = match exit {
        crate::Exit::PageFault(a) => format!("fault={a:#x}"),
        crate::Exit::HostCall(id) => format!("host={id}"),
        other => other.name().to_string(),
    };
    format!(
        "EXIT {what} pc={pc} g={gas} pvmHash=0x{} steps={steps}",
        hex(hash)
    )
}
