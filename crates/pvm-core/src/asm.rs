//! A small PVM assembler: builds code blobs instruction by instruction, with labels for branch
//! and jump targets and jump-table entries. Used by the tests, the benchmarks and the examples;
//! handy for anyone who wants to hand-write a PVM program.
//!
//! ```
//! use pvm_core::asm::{Assembler, Operands};
//! use pvm_core::isa::Opcode;
//! use pvm_core::{Program, ProgramOptions, Exit};
//! let mut a = Assembler::new();
//! a.inst(Opcode::LoadImm, Operands::reg_imm(7, 5));
//! a.inst(Opcode::Trap, Operands::none());
//! let program = Program::from_code(&a.finish(), ProgramOptions::default()).unwrap();
//! let mut vm = program.instantiate(&[]).unwrap();
//! vm.set_gas(1000);
//! assert_eq!(vm.run(), Exit::Panic);
//! assert_eq!(vm.registers()[7], 5);
//! ```

use crate::isa::{ArgClass, Opcode};
use crate::program::Blob;
use crate::Spec;

/// A position in the code, bound with [`Assembler::bind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(usize);

/// Operands of one instruction; which fields are used depends on the opcode's class.
#[derive(Clone, Copy, Debug, Default)]
pub struct Operands {
    /// r_A (or the source register of the two-register class).
    pub ra: u8,
    /// r_B.
    pub rb: u8,
    /// r_D.
    pub rd: u8,
    /// First immediate ν_X.
    pub imm1: i64,
    /// Second immediate ν_Y.
    pub imm2: i64,
    /// Branch/jump target.
    pub target: Option<Label>,
}

impl Operands {
    /// No operands.
    pub fn none() -> Self {
        Self::default()
    }
    /// One immediate (`ecalli`).
    pub fn imm(imm: i64) -> Self {
        Operands {
            imm1: imm,
            ..Self::default()
        }
    }
    /// Register and immediate (`load_imm`, loads/stores with an absolute address, `jump_ind`).
    pub fn reg_imm(ra: u8, imm: i64) -> Self {
        Operands {
            ra,
            imm1: imm,
            ..Self::default()
        }
    }
    /// Two registers: destination and source (A.5.9).
    pub fn dst_src(rd: u8, ra: u8) -> Self {
        Operands {
            rd,
            ra,
            ..Self::default()
        }
    }
    /// Two registers and an immediate (A.5.10: r_A, r_B, ν_X).
    pub fn reg_reg_imm(ra: u8, rb: u8, imm: i64) -> Self {
        Operands {
            ra,
            rb,
            imm1: imm,
            ..Self::default()
        }
    }
    /// Three registers (A.5.13: r_D = r_A op r_B).
    pub fn three(rd: u8, ra: u8, rb: u8) -> Self {
        Operands {
            rd,
            ra,
            rb,
            ..Self::default()
        }
    }
    /// A jump target.
    pub fn to(target: Label) -> Self {
        Operands {
            target: Some(target),
            ..Self::default()
        }
    }
    /// Branch comparing two registers (A.5.11).
    pub fn branch(ra: u8, rb: u8, target: Label) -> Self {
        Operands {
            ra,
            rb,
            target: Some(target),
            ..Self::default()
        }
    }
    /// Branch comparing a register with an immediate (A.5.8).
    pub fn branch_imm(ra: u8, imm: i64, target: Label) -> Self {
        Operands {
            ra,
            imm1: imm,
            target: Some(target),
            ..Self::default()
        }
    }
}

/// Builds a code blob.
#[derive(Clone, Debug)]
pub struct Assembler {
    spec: Spec,
    code: Vec<u8>,
    bitmask: Vec<bool>,
    labels: Vec<Option<u32>>,
    /// (byte position of a 4-byte offset, pc of its instruction, label)
    fixups: Vec<(usize, u32, Label)>,
    jump_table: Vec<Label>,
}

impl Default for Assembler {
    fn default() -> Self {
        Self::new()
    }
}

/// The shortest little-endian encoding of `x` that sign-extends back to it (0–4 bytes; values
/// outside i32 are truncated to 4 bytes).
fn imm_bytes(x: i64) -> Vec<u8> {
    for n in 0..4usize {
        let bits = 8 * n as u32;
        let back = if n == 0 {
            0
        } else {
            (x << (64 - bits)) >> (64 - bits)
        };
        if back == x {
            return x.to_le_bytes()[..n].to_vec();
        }
    }
    (x as i32).to_le_bytes().to_vec()
}

impl Assembler {
    /// An assembler for GP 0.8.0 opcode numbers.
    pub fn new() -> Self {
        Self::for_spec(Spec::Gp0_8_0)
    }

    /// An assembler for the given spec's opcode numbers.
    pub fn for_spec(spec: Spec) -> Self {
        Assembler {
            spec,
            code: Vec::new(),
            bitmask: Vec::new(),
            labels: Vec::new(),
            fixups: Vec::new(),
            jump_table: Vec::new(),
        }
    }

    /// The current pc.
    pub fn pc(&self) -> u32 {
        self.code.len() as u32
    }

    /// A new, unbound label.
    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Binds `label` to the current pc.
    pub fn bind(&mut self, label: Label) {
        self.labels[label.0] = Some(self.pc());
    }

    /// A new label bound here.
    pub fn here(&mut self) -> Label {
        let l = self.label();
        self.bind(l);
        l
    }

    /// Appends a jump-table entry pointing at `label`; returns the dynamic address that
    /// `jump_ind` must use for it ((index + 1) · Z_A).
    pub fn jump_table_entry(&mut self, label: Label) -> u32 {
        self.jump_table.push(label);
        self.jump_table.len() as u32 * 2
    }

    /// Appends raw bytes as one instruction (first byte marked as an opcode).
    pub fn raw(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().enumerate() {
            self.code.push(*b);
            self.bitmask.push(i == 0);
        }
    }

    /// Appends one instruction. Panics if the opcode does not exist in the assembler's spec or a
    /// target label is missing where the class needs one (programming errors in the caller).
    pub fn inst(&mut self, op: Opcode, o: Operands) {
        let pc = self.pc();
        let byte = op
            .byte(self.spec)
            .unwrap_or_else(|| panic!("{} does not exist in GP {}", op.name(), self.spec.as_str()));
        let mut b = vec![byte];
        let target = |s: &mut Self, b: &mut Vec<u8>| {
            let label = o.target.expect("instruction needs a target label");
            s.fixups.push((pc as usize + b.len(), pc, label));
            b.extend_from_slice(&[0; 4]);
        };
        let (r, x) = (|r: u8| r & 15, imm_bytes(o.imm1));
        match op.class() {
            ArgClass::NoArgs => {}
            ArgClass::Imm => b.extend_from_slice(&x),
            ArgClass::RegImm64 => {
                b.push(r(o.ra));
                b.extend_from_slice(&o.imm1.to_le_bytes());
            }
            ArgClass::ImmImm => {
                b.push(x.len() as u8);
                b.extend_from_slice(&x);
                b.extend_from_slice(&imm_bytes(o.imm2));
            }
            ArgClass::Offset => target(self, &mut b),
            ArgClass::RegImm => {
                b.push(r(o.ra));
                b.extend_from_slice(&x);
            }
            ArgClass::RegImmImm => {
                b.push(r(o.ra) | ((x.len() as u8) << 4));
                b.extend_from_slice(&x);
                b.extend_from_slice(&imm_bytes(o.imm2));
            }
            ArgClass::RegImmOffset => {
                b.push(r(o.ra) | ((x.len() as u8) << 4));
                b.extend_from_slice(&x);
                target(self, &mut b);
            }
            ArgClass::RegReg => b.push(r(o.rd) | (r(o.ra) << 4)),
            ArgClass::RegRegImm => {
                b.push(r(o.ra) | (r(o.rb) << 4));
                b.extend_from_slice(&x);
            }
            ArgClass::RegRegOffset => {
                b.push(r(o.ra) | (r(o.rb) << 4));
                target(self, &mut b);
            }
            ArgClass::RegRegImmImm => {
                b.push(r(o.ra) | (r(o.rb) << 4));
                b.push(x.len() as u8);
                b.extend_from_slice(&x);
                b.extend_from_slice(&imm_bytes(o.imm2));
            }
            ArgClass::RegRegReg => {
                b.push(r(o.ra) | (r(o.rb) << 4));
                b.push(r(o.rd));
            }
        }
        self.raw(&b);
    }

    /// Resolves labels and returns the blob parts.
    pub fn finish_blob(mut self) -> Blob {
        for (at, pc, label) in std::mem::take(&mut self.fixups) {
            let t = self.labels[label.0].expect("label bound before finish");
            let off = (t as i64 - pc as i64) as i32;
            self.code[at..at + 4].copy_from_slice(&off.to_le_bytes());
        }
        let jump_table = self
            .jump_table
            .iter()
            .map(|l| self.labels[l.0].expect("label bound") as u64)
            .collect();
        Blob {
            jump_table,
            code: self.code,
            bitmask: self.bitmask,
        }
    }

    /// Resolves labels and returns the encoded code blob `E(|j|) E1(z) E(|c|) j c k`.
    pub fn finish(self) -> Vec<u8> {
        self.finish_blob().encode()
    }
}

/// Builds a GP A.7 standard program `E3(|o|) E3(|w|) E2(z) E3(s) o w E4(|p|) p`, optionally with
/// a metadata prefix `E(|m|) m`.
pub fn standard_program(
    metadata: Option<&[u8]>,
    ro: &[u8],
    rw: &[u8],
    heap_pages: u16,
    stack: u32,
    blob: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(m) = metadata {
        crate::program::blob::encode_varint(m.len() as u64, &mut out);
        out.extend_from_slice(m);
    }
    out.extend_from_slice(&(ro.len() as u32).to_le_bytes()[..3]);
    out.extend_from_slice(&(rw.len() as u32).to_le_bytes()[..3]);
    out.extend_from_slice(&heap_pages.to_le_bytes());
    out.extend_from_slice(&stack.to_le_bytes()[..3]);
    out.extend_from_slice(ro);
    out.extend_from_slice(rw);
    out.extend_from_slice(&(blob.len() as u32).to_le_bytes());
    out.extend_from_slice(blob);
    out
}

/// Re-encodes a GP 0.8.0 program (a standard program if `standard`, else a code blob) for the GP
/// 0.7.2 opcode table, so that the same program runs under the 0.7.2 rules and gas model. Every
/// instruction start is translated: `unlikely` (absent in 0.7.2) becomes `fallthrough` — both
/// simply continue in GP 0.7.2, so results and the instruction count are unchanged — and every
/// other opcode gets its GP 0.7.2 byte (e.g. the two-register class 101–110 moves to 102–111).
/// Fails on a malformed program or an opcode byte that is not a GP 0.8.0 instruction.
pub fn renumber_for_gp072(bytes: &[u8], standard: bool) -> Result<Vec<u8>, crate::ProgramError> {
    use crate::isa::Code;
    use crate::program::StandardParts;
    let rewrite = |blob: &mut Blob| -> Result<(), crate::ProgramError> {
        let mut pc = 0usize;
        while pc < blob.code.len() {
            if blob.bitmask[pc] {
                let byte = blob.code[pc];
                let op = match Opcode::from_byte(byte, Spec::Gp0_8_0) {
                    Some(Opcode::Unlikely) => Opcode::Fallthrough,
                    Some(op) => op,
                    None => {
                        return Err(crate::ProgramError::InvalidCode {
                            pc: pc as u32,
                            reason: crate::InvalidCodeReason::UnknownOpcode(byte),
                        })
                    }
                };
                blob.code[pc] = op
                    .byte(Spec::Gp0_7_2)
                    .expect("every GP 0.8.0 opcode but `unlikely` exists in GP 0.7.2");
            }
            let code = Code {
                code: &blob.code,
                bitmask: &blob.bitmask,
            };
            pc += 1 + code.skip(pc as u32) as usize;
        }
        Ok(())
    };
    if standard {
        let mut parts = StandardParts::parse(bytes, false)?;
        rewrite(&mut parts.blob)?;
        Ok(standard_program(
            None,
            &parts.ro_data,
            &parts.rw_data,
            parts.heap_pages,
            parts.stack_size,
            &parts.blob.encode(),
        ))
    } else {
        let mut blob = Blob::parse(bytes)?;
        rewrite(&mut blob)?;
        Ok(blob.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same program assembled for GP 0.7.2 is what renumbering the GP 0.8.0 one gives
    /// (`unlikely` as `fallthrough`); an unknown opcode byte is refused with its pc.
    #[test]
    fn renumbering_matches_the_gp072_assembly() {
        // The `expect` in `renumber_for_gp072`: every GP 0.8.0 opcode but `unlikely` has a GP
        // 0.7.2 byte, so no input can reach it.
        for byte in 0..=255u8 {
            if let Some(op) = Opcode::from_byte(byte, Spec::Gp0_8_0) {
                assert!(
                    op == Opcode::Unlikely || op.byte(Spec::Gp0_7_2).is_some(),
                    "{byte}"
                );
            }
        }
        let build = |spec: Spec, unlikely: Opcode| {
            let mut a = Assembler::for_spec(spec);
            a.inst(Opcode::LoadImm, Operands::reg_imm(7, 5));
            a.inst(unlikely, Operands::none());
            a.inst(Opcode::CountSetBits64, Operands::dst_src(1, 7));
            a.inst(Opcode::Add64, Operands::three(2, 1, 7));
            a.inst(Opcode::Trap, Operands::none());
            a.finish()
        };
        let gp080 = build(Spec::Gp0_8_0, Opcode::Unlikely);
        let gp072 = build(Spec::Gp0_7_2, Opcode::Fallthrough);
        assert_ne!(gp080, gp072);
        assert_eq!(renumber_for_gp072(&gp080, false).unwrap(), gp072);
        let standard = |blob: &[u8]| standard_program(None, b"ro", b"rw", 1, 4096, blob);
        assert_eq!(
            renumber_for_gp072(&standard(&gp080), true).unwrap(),
            standard(&gp072)
        );
        let mut bad = Blob::parse(&gp080).unwrap();
        // The second instruction (after load_imm) gets an opcode byte no GP 0.8.0 instruction has.
        let at = (1..bad.code.len()).find(|&i| bad.bitmask[i]).unwrap();
        bad.code[at] = 255;
        match renumber_for_gp072(&bad.encode(), false) {
            Err(crate::ProgramError::InvalidCode { pc, .. }) => assert_eq!(pc as usize, at),
            other => panic!("expected InvalidCode, got {other:?}"),
        }
    }
}
