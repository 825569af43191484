//! JIP-7 "PVM Ecalli Trace" logs: record every host call of a run (what the handler read and
//! wrote), and replay a log statelessly, answering each `ecalli` from the log and checking that
//! the VM reaches every `ecalli` and the termination with the logged pc, gas and registers.
//! (This format was called JIP-6 in earlier libpvm releases; JIP-6 is now "Program metadata".)
//!
//! What libpvm writes (the current JIP-7 spelling, plus libpvm's `x-` extension records):
//! ```text
//! comment implementation libpvm <version> (<front end>)
//! program 0x<program blob, with metadata if any>
//! x-pages 0x<address> len=<bytes> access=<…>                (extension: pages the host set up)
//! memwrite 0x<address, 8 digits> len=<n> <- 0x<bytes>      (initial writes: the arguments,
//!                                                             and memory the host set up)
//! start pc=<pc> gas=<gas> <register dump>
//!
//! ecalli=<index> pc=<pc> gas=<gas> <register dump>
//! x-builtin <name>                                          (extension: answered by a built-in)
//! memread 0x<address> len=<n> -> 0x<bytes>                  (ascending address)
//! x-pages 0x<address> len=<bytes> access=<unmapped|none|read|write>   (extension: page map)
//! memwrite 0x<address> len=<n> <- 0x<bytes>                 (ascending address)
//! setreg r<idx, 2 digits> <- 0x<value>                      (ascending index)
//! setgas <- <gas>
//!
//! x-fault 0x<address>                                       (extension: the panic is a fault)
//! HALT|PANIC=<arg>|OOG pc=<pc> gas=<gas> <register dump>
//! ```
//! A register dump lists `r<idx>=0x<value>` for every non-zero register (2-digit indices, values
//! in hex without leading zeros). libpvm writes `PANIC=0` for a panic and, for a page fault,
//! `x-fault 0x<address>` followed by `PANIC=<address in decimal>`.
//!
//! What libpvm reads: all of the above, `comment` lines and lines starting with `#` (ignored),
//! lines that match no record (ignored; a keyword may follow a logger prefix), and the older
//! spellings: `read_memory`/`write_memory`/`set_register`/`set_gas`, a bare `PANIC`, and
//! `FAULT=0x<address>`. Extension records are documented in `docs/JIP-7-EXTENSIONS.md`; other
//! readers ignore them (they hold none of the JIP-7 keywords).

mod format;
mod record;
mod replay;

pub use format::{AccessOrd, HostCallEntry, Jip7Error, Jip7Log, PageChange, Termination, VmState};
pub use record::{
    builtin_name, handle_builtin, record_prelude, run_recorded, run_recorded_with, start_state_of,
    state_of, termination_of, CallRecorder, OpenCall, PageMap,
};
pub use replay::{
    apply_entry, apply_page_changes, load_program, load_program_with, replay, replay_with,
    Divergence, ReplayOptions, ReplayReport, DEFAULT_REPLAY_GAS,
};

/// The earlier name of [`Jip7Log`].
#[deprecated(note = "renamed to Jip7Log (the format is JIP-7)")]
pub type Jip6Log = Jip7Log;

/// The earlier name of [`Jip7Error`].
#[deprecated(note = "renamed to Jip7Error (the format is JIP-7)")]
pub type Jip6Error = Jip7Error;

#[cfg(test)]
mod tests;
