//! Errors: every failure is thrown as a `PvmError` (a real JavaScript `Error` subclass defined
//! at module initialisation, see `js::init_module`) with a machine-readable `code` and, where
//! known, the byte `offset`, `pc` or memory `address` it concerns.
//!
//! napi-rs lets a function return `Err` while a JavaScript exception is pending and then leaves
//! that exception in place, so the binding throws its own `PvmError` object with `napi_throw`
//! and returns `Status::PendingException`. The same path forwards an exception thrown by a host
//! call handler unchanged.

use std::ptr;

use napi::sys;
use napi_derive::napi;

use crate::js::{self, RawEnv};

/// Machine-readable error codes of `PvmError.code`.
#[napi(string_enum = "UPPER_SNAKE")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PvmErrorCode {
    /// A program blob, standard program or service blob is malformed; the message names the byte
    /// offset (`offset`) or the pc (`pc`) of the problem.
    InvalidProgram,
    /// A function was called with an argument of the wrong type or out of range.
    InvalidArgument,
    /// A checked memory access touched an inaccessible (or, for writes, read-only) address, or an
    /// unchecked one touched an unmapped page; `address` is the lowest offending address.
    MemoryFault,
    /// `run`, `step` or `free` was called from inside the VM's own host-call handler.
    ReentrantCall,
    /// The VM was used after `free()`.
    VmFreed,
    /// The call is not allowed in the VM's current state: a built-in host call when the VM is not
    /// stopped at an `ecalli` (or one that was already performed for this `ecalli`), or
    /// `jip6Log()` before any recorded run.
    InvalidState,
    /// `replayJip6` with `verify`: the replay diverged from the log (the message says where).
    Divergence,
    /// A Node-API call failed unexpectedly, or libpvm hit an internal error (a bug: a Rust panic,
    /// caught at the boundary; the message names it).
    Internal,
}

pub(crate) use PvmErrorCode as Code;

impl Code {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Code::InvalidProgram => "INVALID_PROGRAM",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::MemoryFault => "MEMORY_FAULT",
            Code::ReentrantCall => "REENTRANT_CALL",
            Code::VmFreed => "VM_FREED",
            Code::InvalidState => "INVALID_STATE",
            Code::Divergence => "DIVERGENCE",
            Code::Internal => "INTERNAL",
        }
    }
}

/// One `PvmError` to be thrown.
#[derive(Debug)]
pub(crate) struct PvmErr {
    pub code: Code,
    pub message: String,
    /// Extra numeric properties (`offset`, `pc`, `address`).
    pub details: Vec<(&'static std::ffi::CStr, f64)>,
}

/// Why a binding call failed.
#[derive(Debug)]
pub(crate) enum Fail {
    /// Throw this `PvmError`.
    Pvm(PvmErr),
    /// A JavaScript exception is already pending (thrown by a host-call handler or a Node-API
    /// call): let it propagate.
    Pending,
}

pub(crate) type Res<T> = Result<T, Fail>;

impl Fail {
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Fail {
        Fail::Pvm(PvmErr {
            code,
            message: message.into(),
            details: Vec::new(),
        })
    }

    pub(crate) fn with(mut self, key: &'static std::ffi::CStr, value: f64) -> Fail {
        if let Fail::Pvm(e) = &mut self {
            e.details.push((key, value));
        }
        self
    }
}

impl From<pvm_core::ProgramError> for Fail {
    fn from(e: pvm_core::ProgramError) -> Fail {
        use pvm_core::ProgramError as E;
        let code = match e {
            E::ArgumentsTooLong { .. }
            | E::ArgumentsWithoutLayout { .. }
            | E::BackendUnsupported
            | E::InvalidBackendEnv { .. } => Code::InvalidArgument,
            E::InvokeWithoutLayout => Code::InvalidState,
            _ => Code::InvalidProgram,
        };
        let f = Fail::new(code, e.to_string());
        match e {
            E::Truncated { offset, .. }
            | E::TrailingBytes { offset, .. }
            | E::JumpTableEntrySize { offset, .. }
            | E::TooLarge { offset, .. } => f.with(c"offset", offset as f64),
            E::InvalidCode { pc, .. } => f.with(c"pc", pc as f64),
            _ => f,
        }
    }
}

impl From<pvm_core::MemoryError> for Fail {
    fn from(e: pvm_core::MemoryError) -> Fail {
        use pvm_core::MemoryError as E;
        match e {
            E::Inaccessible { address, .. }
            | E::Unmapped { address }
            | E::PageLimit { address, .. } => {
                Fail::new(Code::MemoryFault, e.to_string()).with(c"address", address as f64)
            }
            E::BelowMinimum { address } => {
                Fail::new(Code::InvalidArgument, e.to_string()).with(c"address", address as f64)
            }
            E::OutOfRange { address, .. } => {
                Fail::new(Code::InvalidArgument, e.to_string()).with(c"address", address as f64)
            }
        }
    }
}

/// Creates the JavaScript `PvmError` object for `e` (a plain `Error` with `code` if the class is
/// unavailable).
fn make_error(env: RawEnv, e: &PvmErr) -> Option<js::Val> {
    let code = js::string(env, e.code.as_str()).ok()?;
    let message = js::string(env, &e.message).ok()?;
    let mut obj = ptr::null_mut();
    // SAFETY: all values are live in this env.
    let status = match js::error_ctor(env) {
        Some(ctor) => unsafe {
            let args = [code, message];
            sys::napi_new_instance(env, ctor, 2, args.as_ptr(), &mut obj)
        },
        None => unsafe { sys::napi_create_error(env, code, message, &mut obj) },
    };
    if status != sys::Status::napi_ok || obj.is_null() {
        return None;
    }
    for (key, value) in &e.details {
        let mut v = ptr::null_mut();
        // SAFETY: plain value creation and property set in a live env.
        unsafe {
            sys::napi_create_double(env, *value, &mut v);
            sys::napi_set_named_property(env, obj, key.as_ptr(), v);
        }
    }
    Some(obj)
}

/// Throws `f` into JavaScript (unless an exception is already pending) and returns the napi-rs
/// error that tells the generated glue to let the pending exception propagate.
pub(crate) fn throw(env: RawEnv, f: Fail) -> napi::Error {
    let mut pending = false;
    // SAFETY: `env` is the live env of the current call.
    unsafe { sys::napi_is_exception_pending(env, &mut pending) };
    match f {
        Fail::Pvm(e) if !pending => {
            match make_error(env, &e) {
                // SAFETY: `obj` is a live error object.
                Some(obj) => unsafe {
                    sys::napi_throw(env, obj);
                },
                None => {
                    let msg =
                        std::ffi::CString::new(e.message.replace('\0', " ")).unwrap_or_default();
                    let code = std::ffi::CString::new(e.code.as_str()).unwrap_or_default();
                    // SAFETY: NUL-terminated strings.
                    unsafe { sys::napi_throw_error(env, code.as_ptr(), msg.as_ptr()) };
                }
            }
            napi::Error::new(napi::Status::PendingException, e.message)
        }
        Fail::Pvm(e) => napi::Error::new(napi::Status::PendingException, e.message),
        Fail::Pending => napi::Error::new(
            napi::Status::PendingException,
            "a JavaScript exception is pending".to_string(),
        ),
    }
}

/// The body of every napi entry point: runs `f` under [`crate::panic::catch`] and throws its
/// failure — a `PvmError`, a pending JavaScript exception, or a Rust panic as `PvmError`
/// `INTERNAL` — into JavaScript.
pub(crate) fn guard<T>(env: RawEnv, f: impl FnOnce() -> Res<T>) -> napi::Result<T> {
    match crate::panic::catch(f) {
        Ok(r) => r.map_err(|e| throw(env, e)),
        Err(msg) => Err(throw(env, Fail::new(Code::Internal, msg))),
    }
}

// Declaration of the `PvmError` class for the generated typings. At run time the module's
// initialisation replaces this class with a JavaScript `class PvmError extends Error` (see
// `js::init_module`), so instances are real `Error`s; `index.d.ts` merges this declaration with
// `interface PvmError extends Error` from the typings header `src/header.d.ts`.
/// The error every libpvm function throws: an `Error` subclass (`name` `'PvmError'`) with a
/// machine-readable `code` and, where known, the `offset`, `pc` or `address` it concerns. An error
/// thrown by a host-call handler is rethrown unchanged instead.
#[napi]
pub struct PvmError {
    /// What went wrong, machine-readable.
    #[napi(ts_type = "PvmErrorCodeName")]
    pub code: String,
    /// Byte offset in the program bytes of a malformed field (`INVALID_PROGRAM`).
    pub offset: Option<u32>,
    /// The pc of an invalid instruction (`INVALID_PROGRAM`, GP 0.8.0 prevalidation).
    pub pc: Option<u32>,
    /// The lowest offending guest address (`MEMORY_FAULT`).
    pub address: Option<u32>,
    /// The 1-based line of a malformed JIP-6 log (`replayJip6`, `INVALID_ARGUMENT`; 0: the whole
    /// text).
    pub line: Option<u32>,
}

#[napi]
impl PvmError {
    /// `new PvmError(code, message, details?)`: `details` are copied onto the error.
    #[napi(
        constructor,
        ts_args_type = "code: PvmErrorCodeName, message: string, details?: { offset?: number, pc?: number, address?: number, line?: number }"
    )]
    pub fn new(code: String) -> Self {
        PvmError {
            code,
            offset: None,
            pc: None,
            address: None,
            line: None,
        }
    }
}
