//! Node.js binding of libpvm, built with napi-rs.
//!
//! The engine is `pvm-core`; this crate only translates between JavaScript values and the engine:
//!
//! - [`program::Program`]: an immutable compiled program (`Program.fromStandard`, `Program.fromCode`).
//! - [`vm::Pvm`]: one running instance with registers, gas, pc and memory; `run(hostCall)` calls a
//!   JavaScript function synchronously on every `ecalli`.
//! - `PvmError`: the error class every function throws (see [`error`]).
//! - [`builtin`]: the PVM-level host calls (inner PVMs) answered by libpvm (`vm.handleBuiltin`,
//!   `InnerPvms`, `builtins: true`).
//! - [`trace`]: traced runs (`run(hostCall, { trace })`), `vm.pvmHash()`, `vm.dumpState()`.
//! - [`jip7`]: JIP-7 host-call recording (`run(hostCall, { jip7: true })`, `vm.jip7Log()`) and
//!   `replayJip7` (the `jip6` names are aliases).
//!
//! The JavaScript API is documented in `docs/NODE-API.md`; the generated `index.d.ts` is the
//! reference for the types.

#![deny(clippy::all)]

mod builtin;
mod error;
mod interrupt;
mod jip7;
/// The earlier name of [`jip7`], for the other modules.
use jip7 as jip6;
mod js;
mod panic;
mod program;
mod trace;
mod vm;

use napi::bindgen_prelude::*;
use napi_derive::napi;

/// Module initialisation: defines the `PvmError` class, caches the few JavaScript built-ins the
/// binding calls (`Buffer.from`) and installs the panic-guarded `replayJip6` (see [`panic`]). Runs once per JavaScript environment (main thread or worker).
#[napi(module_exports)]
pub fn init(exports: Object, env: Env) -> Result<()> {
    panic::catch(|| {
        // SAFETY: called by napi-rs during module registration with a live env and exports
        // object.
        unsafe {
            js::init_module(env.raw(), exports.raw())?;
            interrupt::install_cleanup_hook(env.raw());
            panic::install_exports(env.raw(), exports.raw())
        }
    })
    .unwrap_or_else(|msg| {
        Err(Error::from_reason(format!(
            "libpvm: cannot initialise: {msg}"
        )))
    })
}
