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

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// libpvm entry points active on this thread.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// What the hook saw of the last panic inside libpvm on this thread.
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

fn install_hook() {
    if HOOK.is_completed() || std::thread::panicking() {
        return;
    }
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !DEPTH.try_with(|d| d.get() > 0).unwrap_or(false) {
                return previous(info);
            }
            let what = payload_text(info.payload());
            let text = match info.location() {
                Some(l) => format!("{what} (at {}:{})", l.file(), l.line()),
                None => what,
            };
            let _ = CAUGHT.try_with(|c| {
                if let Ok(mut slot) = c.try_borrow_mut() {
                    *slot = Some(text);
                }
            });
        }));
    });
}

fn payload_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".into())
}

/// Restores the depth however the entry point ends.
struct Depth(u32);

impl Drop for Depth {
    fn drop(&mut self) {
        let _ = DEPTH.try_with(|d| d.set(self.0));
    }
}

/// Runs `f` as libpvm code: a panic inside it prints nothing and is returned as
/// `Err("internal error (a bug in libpvm; Rust panic caught): <message> (at <file>:<line>)")`.
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    install_hook();
    let old = DEPTH.try_with(|d| d.get()).unwrap_or(0);
    let _ = DEPTH.try_with(|d| d.set(old.saturating_add(1)));
    let depth = Depth(old);
    let r = catch_unwind(AssertUnwindSafe(f));
    drop(depth);
    r.map_err(|payload| {
        let seen = CAUGHT
            .try_with(|c| c.try_borrow_mut().ok().and_then(|mut s| s.take()))
            .ok()
            .flatten();
        let what = seen.unwrap_or_else(|| payload_text(payload.as_ref()));
        // A payload whose destructor panics must not escape: leak it instead.
        std::mem::forget(payload);
        format!("internal error (a bug in libpvm; Rust panic caught): {what}")
    })
}

// ---- raw exports: the guarded `replayJip6` and a deliberate panic for the tests ----

use std::ptr;

use napi::bindgen_prelude::{Env, FromNapiValue, Unknown};
use napi::sys;

use crate::error::{guard, Code, Fail, Res};
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

/// `replayJip6(log, options?)`: `crate::jip6::replay_jip6` (owned by the JIP-6 code) run under
/// [`guard`], so that a panic while parsing or replaying a log is a `PvmError` `INTERNAL`, not an
/// abort. Installed over the napi-rs export of the same name at module initialisation.
unsafe extern "C" fn replay_jip6_guarded(env: RawEnv, info: sys::napi_callback_info) -> Val {
    guard(env, || {
        let [log, options] = args::<2>(env, info)?;
        let internal = |e: napi::Error| Fail::new(Code::Internal, e.reason.clone());
        // SAFETY: `log` and `options` are live values of this call; `Unknown` only wraps them.
        let log = unsafe { Unknown::from_napi_value(env, log) }.map_err(internal)?;
        let options = if js::is_nullish(env, options) {
            None
        } else {
            // SAFETY: as above.
            Some(unsafe { Unknown::from_napi_value(env, options) }.map_err(internal)?)
        };
        crate::jip6::replay_jip6(&Env::from_raw(env), log, options).map_err(|e| {
            if e.status == napi::Status::PendingException {
                Fail::Pending
            } else {
                internal(e)
            }
        })
    })
    .unwrap_or(ptr::null_mut())
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

/// Installs the raw exports on `exports`.
///
/// # Safety
/// `env` and `exports` must be the live env and exports object of module registration.
pub(crate) unsafe fn install_exports(env: RawEnv, exports: Val) -> napi::Result<()> {
    let fail = |what: &str| napi::Error::from_reason(format!("libpvm: cannot initialise: {what}"));
    for (name, cb) in [
        (
            c"replayJip6",
            replay_jip6_guarded as unsafe extern "C" fn(RawEnv, sys::napi_callback_info) -> Val,
        ),
        (c"__panicForTesting", panic_for_testing),
    ] {
        let mut f = ptr::null_mut();
        // SAFETY: `name` is NUL-terminated (length -1, NAPI_AUTO_LENGTH: up to the NUL); `cb`
        // has the napi callback signature and never unwinds (its body runs under `guard`).
        let ok = unsafe {
            sys::napi_create_function(env, name.as_ptr(), -1, Some(cb), ptr::null_mut(), &mut f)
                == sys::Status::napi_ok
                && sys::napi_set_named_property(env, exports, name.as_ptr(), f)
                    == sys::Status::napi_ok
        };
        if !ok {
            return Err(fail("defining the guarded exports"));
        }
    }
    Ok(())
}
