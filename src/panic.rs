//! Rust panics at the Node-API boundary: caught, silent, thrown as `PvmError` `INTERNAL`.
//!
//! Every napi entry point of the binding (functions, methods, getters, setters, module
//! initialisation, and the finalizers that free instances: a `Pvm`'s and its external buffers')
//! runs its body under [`catch`] (see [`crate::error::guard`]). (`Program` and `InnerPvms` are
//! dropped by napi-rs's own finalizer; dropping them runs no libpvm code that can panic.) A panic — always a bug in libpvm — then becomes a JavaScript
//! exception (`PvmError` with code `INTERNAL`, the message naming the panic and its location)
//! instead of aborting the Node process, which is what an unwind reaching napi-rs's
//! `extern "C"` callbacks does.
//!
//! Catching alone would still let Rust's default panic hook print `thread 'main' panicked at …`
//! on the process's stderr. The addon has its own copy of the Rust standard library, and so its
//! own panic hook; libpvm installs its hook once, on the first call, chaining to the previous
//! one: a panic while a libpvm entry point is active on the thread is silent (the hook records the
//! message and location for the exception), any other panic goes to the previous hook. While
//! libpvm calls JavaScript (host-call handlers, trace sinks) the depth is kept: JavaScript cannot
//! panic in Rust, and a nested call back into libpvm is libpvm code again.

/// Runs `f` as libpvm code (`pvm_core::boundary`, shared with the C ABI): a panic inside it
/// prints nothing and is returned as
/// `Err("internal error (a bug in libpvm; Rust panic caught): <message> (at <file>:<line>)")`.
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    pvm_core::boundary::catch(f)
        .map_err(|what| format!("internal error (a bug in libpvm; Rust panic caught): {what}"))
}

// ---- raw export: a deliberate panic for the tests ----

use std::ptr;

use napi::sys;

use crate::error::{guard, Res};
use crate::js::{self, RawEnv, Val};

/// The arguments of a raw callback (missing ones are `undefined`).
fn args<const N: usize>(env: RawEnv, info: sys::napi_callback_info) -> Res<[Val; N]> {
    let mut argc = N;
    let mut argv = [ptr::null_mut(); N];
    // SAFETY: `argv` has room for `argc` values; `info` is this call's callback info.
    let status = unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    js::check(env, status, "napi_get_cb_info")?;
    Ok(argv)
}

/// `__panicForTesting(message?)`: panics inside a libpvm entry point, to test that a panic is
/// a `PvmError` `INTERNAL` (and prints nothing), also from inside host-call handlers and trace
/// sinks. Not part of the API (not in the typings).
unsafe extern "C" fn panic_for_testing(env: RawEnv, info: sys::napi_callback_info) -> Val {
    guard(env, || -> Res<Val> {
        let [message] = args::<1>(env, info)?;
        let text = if js::is_nullish(env, message) {
            "deliberate panic for testing".to_string()
        } else {
            js::to_string(env, message, "message")?
        };
        panic!("{text}")
    })
    .unwrap_or(ptr::null_mut())
}

/// Installs the raw export `__panicForTesting` on `exports`.
///
/// # Safety
/// `env` and `exports` must be the live env and exports object of module registration.
pub(crate) unsafe fn install_exports(env: RawEnv, exports: Val) -> napi::Result<()> {
    let name = c"__panicForTesting";
    let mut f = ptr::null_mut();
    // SAFETY: `name` is NUL-terminated (length -1, NAPI_AUTO_LENGTH: up to the NUL);
    // `panic_for_testing` has the napi callback signature and never unwinds (its body runs under
    // `guard`).
    let ok = unsafe {
        sys::napi_create_function(
            env,
            name.as_ptr(),
            -1,
            Some(panic_for_testing),
            ptr::null_mut(),
            &mut f,
        ) == sys::Status::napi_ok
            && sys::napi_set_named_property(env, exports, name.as_ptr(), f) == sys::Status::napi_ok
    };
    if !ok {
        return Err(napi::Error::from_reason(
            "libpvm: cannot initialise: defining __panicForTesting",
        ));
    }
    Ok(())
}
