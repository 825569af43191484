//! `pvm info`: what a program is, without running it.

use std::fmt::Write as _;

use pvm_core::trace::hex;
use pvm_core::Program;

/// The description `pvm info` prints: the JIP-6 metadata of a service blob, code size, basic
/// blocks, jump table, entry points, the standard layout's sizes, spec and backend.
pub fn program_info(p: &Program) -> String {
    use pvm_core::metadata::{lossy_text, ProgramMetadata};
    let mut out = String::new();
    let kind = match (p.metadata().is_some(), p.standard_layout().is_some()) {
        (true, _) => "JAM service blob (metadata prefix + GP A.7 standard program)",
        (false, true) => "GP A.7 standard program",
        (false, false) => "generic code blob (GP A.1)",
    };
    let _ = writeln!(out, "kind: {kind}");
    let _ = writeln!(out, "spec: {}", p.spec().as_str());
    let _ = writeln!(out, "backend: {}", p.backend());
    if let Some(m) = p.metadata() {
        let _ = writeln!(out, "metadata: {} bytes: 0x{}", m.len(), hex(m));
        match ProgramMetadata::parse(m) {
            Some(md) => {
                let _ = writeln!(out, "metadata (JIP-6 format {}):", md.format);
                let _ = writeln!(out, "  name: {}", md.name);
                let _ = writeln!(out, "  version: {}", md.version);
                let _ = writeln!(out, "  license: {}", md.license);
                if md.authors.is_empty() {
                    let _ = writeln!(out, "  authors: (none)");
                }
                for a in &md.authors {
                    let _ = writeln!(out, "  author: {a}");
                }
                if md.trailing > 0 {
                    let _ = writeln!(out, "  trailing bytes (ignored): {}", md.trailing);
                }
            }
            None => {
                let _ = writeln!(
                    out,
                    "metadata (not JIP-6; as UTF-8, best effort): {:?}",
                    lossy_text(m)
                );
            }
        }
    }
    let blob = p.blob();
    let _ = writeln!(out, "code size: {} bytes", blob.code.len());
    let _ = writeln!(out, "basic blocks: {}", p.block_gas_costs().len());
    let jt = &blob.jump_table;
    let _ = writeln!(out, "jump table: {} entries", jt.len());
    const SHOWN: usize = 64;
    for (i, target) in jt.iter().take(SHOWN).enumerate() {
        let _ = writeln!(
            out,
            "  [{i}] (address {}) -> pc {target}",
            (i as u64 + 1) * 2
        );
    }
    if jt.len() > SHOWN {
        let _ = writeln!(out, "  ... {} more", jt.len() - SHOWN);
    }
    if let Some(l) = p.standard_layout() {
        let _ = writeln!(out, "entry points (GP 0.8.0 B):");
        for (pc, what) in [(0u32, "is-authorized / refine"), (5, "accumulate")] {
            let ok = p.is_instruction_start(pc);
            let _ = writeln!(
                out,
                "  pc {pc} ({what}): {}",
                if ok {
                    pvm_core::disasm::format_instruction(&p.instruction_at(pc))
                } else {
                    "not an instruction start".to_string()
                }
            );
        }
        let _ = writeln!(out, "layout (GP A.7):");
        let _ = writeln!(
            out,
            "  read-only data: {} bytes at {:#x}",
            l.ro_data.len(),
            l.ro_start()
        );
        let _ = writeln!(
            out,
            "  read-write data: {} bytes at {:#x}",
            l.rw_data.len(),
            l.rw_start()
        );
        let _ = writeln!(
            out,
            "  heap: {} zero pages, writable to {:#x}",
            l.heap_pages,
            l.heap_end()
        );
        let _ = writeln!(
            out,
            "  stack: {} bytes, {:#x}..{:#x}",
            l.stack_size,
            l.stack_start(),
            l.stack_end()
        );
        let _ = writeln!(out, "  arguments at: {:#x}", l.args_start());
    } else {
        let _ = writeln!(out, "entry point: pc 0 (no standard layout)");
    }
    out
}
