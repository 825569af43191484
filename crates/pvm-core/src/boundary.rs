//! Rust panics at a foreign-function boundary (the C ABI, the Node addon): caught, silent, and
//! turned into an error message. Both front ends use this one implementation; each links its own
//! copy of pvm-core (and of the standard library), so each has its own hook and counters.
//!
//! Catching alone is not enough: Rust's default panic hook prints `thread '…' panicked at …` (and
//! maybe a backtrace) to stderr *before* unwinding starts, and a library must not write to its
//! host's stderr. The panic hook is process-wide (per copy of the standard library), so the hook
//! is installed **once**, on the first [`catch`], and *chains* to the hook installed before it:
//! - a thread-local depth counts the libpvm entry points active on the current thread; the front
//!   end sets it back to zero while it calls host code whose panics are the host's own (see
//!   [`outside`]), so "inside libpvm" means "executing libpvm's own code";
//! - a panic while the depth is non-zero is silent: the hook only stores the message and the
//!   location, which [`catch`] returns;
//! - any other panic (another thread, the host's own Rust code sharing this standard library)
//!   goes to the previous hook and prints as usual.
//!
//! Limits: a host that installs its own panic hook *after* its first libpvm call replaces this
//! one (panics inside libpvm are then still caught, but printed by the host's hook); the hook is
//! not installed from a thread that is already panicking (`set_hook` would abort then).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// libpvm entry points active on this thread (0 while host code runs).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// What the hook saw of the last panic inside libpvm on this thread.
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Whether libpvm code is executing on this thread (inside a [`catch`], not in an [`outside`]).
pub fn inside() -> bool {
    DEPTH.try_with(|d| d.get() > 0).unwrap_or(false)
}

fn install_hook() {
    if HOOK.is_completed() || std::thread::panicking() {
        return;
    }
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !inside() {
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

/// Restores the depth when an entry point (or a call out to host code) ends, however it ends.
struct Depth(u32);

impl Drop for Depth {
    fn drop(&mut self) {
        let _ = DEPTH.try_with(|d| d.set(self.0));
    }
}

fn set_depth(f: impl FnOnce(u32) -> u32) -> Depth {
    let old = DEPTH.try_with(|d| d.get()).unwrap_or(0);
    let _ = DEPTH.try_with(|d| d.set(f(old)));
    Depth(old)
}

/// Runs `f` as libpvm code: a panic inside it prints nothing and is returned as
/// `Err("<message> (at <file>:<line>)")`.
pub fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    install_hook();
    let depth = set_depth(|d| d.saturating_add(1));
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
        what
    })
}

/// Runs host code from inside libpvm (a C callback or trace sink): panics in the host's own Rust
/// code are not libpvm's to silence while it runs.
pub fn outside<R>(f: impl FnOnce() -> R) -> R {
    let _depth = set_depth(|_| 0);
    f()
}
