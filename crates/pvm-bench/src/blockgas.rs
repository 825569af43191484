//! Block-gas cross-check: libpvm's `Program::block_gas_costs()` against PolkaVM's
//! `Module::calculate_gas_cost_for(pc)`.
//!
//! Every instruction start of the code is visited. At a pc where libpvm has a basic block,
//! PolkaVM must return the same cost; at any other instruction start PolkaVM must return `None`
//! (it is not a block start there either). So both the block boundaries and the costs are
//! compared.
//!
//! * GP 0.8.0: libpvm's GP 0.8.0 program vs PolkaVM with `CostModelKind::Full(CacheModel::L2Hit)`
//!   (the required check).
//! * GP 0.7.2: libpvm's GP 0.7.2 program (the re-encoded blob; every instruction keeps its pc)
//!   vs PolkaVM with the naive simple cost model (instructions per block) on the same program
//!   (`unlikely` → `fallthrough`, see [`crate::unlikely_to_fallthrough`]). On the unmodified
//!   GP 0.8.0 blob the block boundaries differ at every `unlikely`: PolkaVM does not end a block
//!   there, GP 0.7.2's `fallthrough` does (the sum over the split block is the same).

use std::collections::HashMap;

use polkavm::ProgramCounter;

use crate::engines::{libpvm_prepare, PolkaVm};
use crate::GasModel;

/// How many differences a check keeps (the count is always exact).
const MAX_LISTED: usize = 1000;

/// Result of one blob under one gas model.
#[derive(Clone, Debug)]
pub struct BlockGasCheck {
    /// Blob name.
    pub blob: String,
    /// Gas model.
    pub model: GasModel,
    /// Instruction starts visited.
    pub instructions: usize,
    /// libpvm's basic blocks (`block_gas_costs().len()`).
    pub blocks: usize,
    /// Sum of all block costs (libpvm), a fingerprint.
    pub total_cost: u64,
    /// Number of differences.
    pub mismatch_count: usize,
    /// The first differences: "pc P: libpvm X, PolkaVM Y".
    pub mismatches: Vec<String>,
    /// Set if the check could not run at all.
    pub error: Option<String>,
}

impl BlockGasCheck {
    /// Whether the check passed.
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.mismatch_count == 0
    }
}

/// Compares the block costs of one blob. `libpvm_bytes` must use the model's opcode table,
/// `polkavm_bytes` the GP 0.8.0 numbering (see [`crate::Blob::bytes`]).
pub fn check(
    name: &str,
    model: GasModel,
    libpvm_bytes: &[u8],
    polkavm_bytes: &[u8],
    interpreter: &PolkaVm,
) -> BlockGasCheck {
    let mut result = BlockGasCheck {
        blob: name.to_string(),
        model,
        instructions: 0,
        blocks: 0,
        total_cost: 0,
        mismatch_count: 0,
        mismatches: Vec::new(),
        error: None,
    };
    let program = match libpvm_prepare(libpvm_bytes, model, pvm_core::Backend::Interpreter) {
        Ok(p) => p,
        Err(e) => {
            result.error = Some(e);
            return result;
        }
    };
    let module = match interpreter.prepare(polkavm_bytes, model) {
        Ok(m) => m,
        Err(e) => {
            result.error = Some(e);
            return result;
        }
    };
    let blocks: HashMap<u32, u32> = program
        .block_gas_costs()
        .iter()
        .map(|b| (b.pc, b.cost))
        .collect();
    result.blocks = blocks.len();
    result.total_cost = blocks.values().map(|&c| u64::from(c)).sum();

    let code_len = program.code().len() as u32;
    let mut seen_blocks = 0usize;
    let mut pc = 0u32;
    while pc < code_len {
        result.instructions += 1;
        let ours = blocks.get(&pc).copied();
        seen_blocks += usize::from(ours.is_some());
        let theirs = module.calculate_gas_cost_for(ProgramCounter(pc));
        if ours.map(i64::from) != theirs {
            result.mismatch_count += 1;
            if result.mismatches.len() < MAX_LISTED {
                let show = |x: Option<i64>| x.map_or("no block".to_string(), |c| c.to_string());
                result.mismatches.push(format!(
                    "pc {pc}: libpvm {}, PolkaVM {}",
                    show(ours.map(i64::from)),
                    show(theirs)
                ));
            }
        }
        pc = program.next_pc(pc);
    }
    if seen_blocks != blocks.len() {
        // A libpvm block start that is not an instruction start reached from pc 0.
        result.mismatch_count += blocks.len() - seen_blocks;
        result.mismatches.push(format!(
            "{} libpvm block(s) start off the instruction walk",
            blocks.len() - seen_blocks
        ));
    }
    result
}
