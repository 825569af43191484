//! Disassembly: instructions as text, and a whole program listing with basic-block starts, block
//! gas costs and jump-table targets.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::isa::{ArgClass, Instruction, Opcode};
use crate::program::Program;

fn target(t: i64) -> String {
    format!("@{t}")
}

/// Formats one decoded instruction (`add_64 r3, r1, r2`, `load_u8 r7, [0x20000]`, …).
pub fn format_instruction(ins: &Instruction) -> String {
    let Some(op) = ins.opcode else {
        return format!("invalid (byte {})", ins.byte);
    };
    let a = &ins.args;
    let (ra, rb, rd) = (a.ra, a.rb, a.rd);
    let (x, y) = (a.imm1 as i64, a.imm2 as i64);
    let name = op.name();
    let is_load = name.starts_with("load_") && !name.starts_with("load_imm");
    let is_store = name.starts_with("store_");
    let operands = match op.class() {
        ArgClass::NoArgs => String::new(),
        ArgClass::Imm => format!("{}", a.imm1 as u32),
        ArgClass::RegImm64 => format!("r{ra}, {:#x}", a.imm1),
        ArgClass::ImmImm => format!("[{:#x}], {y}", a.imm1 as u32),
        ArgClass::Offset => target(a.target),
        ArgClass::RegImm if op == Opcode::JumpInd => format!("r{ra} + {x}"),
        ArgClass::RegImm if is_load => format!("r{ra}, [{:#x}]", a.imm1 as u32),
        ArgClass::RegImm if is_store => format!("[{:#x}], r{ra}", a.imm1 as u32),
        ArgClass::RegImm => format!("r{ra}, {x}"),
        ArgClass::RegImmImm => format!("[r{ra} + {x}], {y}"),
        ArgClass::RegImmOffset => format!("r{ra}, {x}, {}", target(a.target)),
        ArgClass::RegReg => format!("r{rd}, r{ra}"),
        ArgClass::RegRegImm if is_store => format!("[r{rb} + {x}], r{ra}"),
        ArgClass::RegRegImm if is_load => format!("r{ra}, [r{rb} + {x}]"),
        ArgClass::RegRegImm => format!("r{ra}, r{rb}, {x}"),
        ArgClass::RegRegOffset => format!("r{ra}, r{rb}, {}", target(a.target)),
        ArgClass::RegRegImmImm => format!("r{ra}, {x}, r{rb} + {y}"),
        ArgClass::RegRegReg => format!("r{rd}, r{ra}, r{rb}"),
    };
    if operands.is_empty() {
        name.to_string()
    } else {
        format!("{name} {operands}")
    }
}

/// A listing of the whole program: every instruction with its pc, a header line at every basic
/// block start with its gas cost, and the jump table (dynamic address → target pc).
pub fn disassemble(program: &Program) -> String {
    let mut out = String::new();
    let spec = program.spec();
    let blob = program.blob();
    let _ = writeln!(
        out,
        "; GP {} program: {} bytes of code, {} jump-table entries",
        spec.as_str(),
        blob.code.len(),
        blob.jump_table.len()
    );
    let mut targets: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, t) in blob.jump_table.iter().enumerate() {
        targets.entry(*t).or_default().push(i);
    }
    for (i, t) in blob.jump_table.iter().enumerate() {
        let _ = writeln!(out, "; jump table [{i}] (address {}) -> @{t}", (i + 1) * 2);
    }
    let costs: BTreeMap<u32, u32> = program
        .block_gas_costs()
        .iter()
        .map(|b| (b.pc, b.cost))
        .collect();
    let mut pc = 0u32;
    while (pc as usize) < blob.code.len() {
        if let Some(cost) = costs.get(&pc) {
            let _ = writeln!(out, "block @{pc}: gas {cost}");
        }
        if let Some(entries) = targets.get(&(pc as u64)) {
            let _ = writeln!(out, "  ; jump-table target of entries {entries:?}");
        }
        let ins = program.instruction_at(pc);
        let _ = writeln!(out, "  {pc:>7}: {}", format_instruction(&ins));
        pc = ins.next_pc(pc);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asm::{Assembler, Operands as Ops};
    use crate::isa::Opcode as O;
    use crate::ProgramOptions;

    #[test]
    fn lists_blocks_operands_and_jump_table() {
        let mut a = Assembler::new();
        let t = a.label();
        a.jump_table_entry(t);
        a.inst(O::LoadImm, Ops::reg_imm(1, -5));
        a.inst(O::LoadIndU32, Ops::reg_reg_imm(7, 1, 16));
        a.inst(O::StoreIndU8, Ops::reg_reg_imm(7, 1, 2));
        a.inst(O::Add64, Ops::three(3, 1, 2));
        a.inst(O::BranchEqImm, Ops::branch_imm(3, 0, t));
        a.bind(t);
        a.inst(O::Trap, Ops::none());
        let p = Program::from_code(&a.finish(), ProgramOptions::default()).unwrap();
        let text = disassemble(&p);
        for needle in [
            "load_imm r1, -5",
            "load_ind_u32 r7, [r1 + 16]",
            "store_ind_u8 [r1 + 2], r7",
            "add_64 r3, r1, r2",
            "branch_eq_imm r3, 0, @",
            "jump table [0] (address 2) -> @",
            "block @0: gas",
        ] {
            assert!(text.contains(needle), "missing `{needle}` in\n{text}");
        }
    }
}
