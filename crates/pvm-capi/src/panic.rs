//! Rust panics at the C boundary: caught, silent, reported through `pvm_last_error`.
//!
//! Every entry point runs its body under [`catch`] (through [`crate::handle::ffi`]), so a panic
//! (a bug in libpvm) never unwinds into C; it becomes the function's error value plus an
//! "internal error" message. Catching alone is not enough: Rust's default panic hook prints
//! `thread '…' panicked at …` (and maybe a backtrace) to stderr *before* unwinding starts, and a
//! library must not write to its host's stderr.
//!
//! Design: the panic hook is process-wide (per copy of the Rust standard library), so libpvm
//! installs its hook **once**, on the first call into the library, and that hook *chains* to the
//! hook that was installed before it:
//! - a thread-local depth counts the libpvm entry points active on the current thread; it is
//!   set back to zero while libpvm calls out to host code (the host callback and the trace sink,
//!   see [`outside`]), so "inside libpvm" means "executing libpvm's own code";
//! - a panic while the depth is non-zero is silent: the hook only stores the message and the
//!   location, which [`catch`] turns into the error message;
//! - any other panic — on another thread, or in the host's own Rust code sharing this standard
//!   library (a Rust program linking the rlib, the crate's tests), including inside a host
//!   callback — goes to the previous hook and prints as usual.
//!
//! Limits: a host that installs its own panic hook *after* its first libpvm call replaces this
//! one (panics inside libpvm are then still caught, but printed by the host's hook); the hook is
//! not installed from a thread that is already panicking (`set_hook` would abort then).
//! `libpvm.so` and `libpvm.a` carry their own standard library, so with a C, Go or Python host
//! no other Rust code shares the hook at all.

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

fn inside() -> bool {
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
/// `Err("internal error (Rust panic caught): <message> (at <file>:<line>)")`.
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
        format!("internal error (Rust panic caught): {what}")
    })
}

/// Runs host code (`f` calls a C callback or trace sink) from inside libpvm: panics in the host's
/// own Rust code are not libpvm's to silence while it runs.
pub fn outside<R>(f: impl FnOnce() -> R) -> R {
    let _depth = set_depth(|_| 0);
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run in a child process by `panics_inside_libpvm_are_silent_and_host_panics_print`, which
    /// checks its stderr.
    #[test]
    #[ignore = "run in a child process by panics_inside_libpvm_are_silent_and_host_panics_print"]
    fn child_panics() {
        if std::env::var_os("PVM_PANIC_CHILD").is_none() {
            return;
        }
        // A panic inside libpvm: caught, reported, silent.
        let err = catch(|| -> u32 { panic!("deliberate libpvm panic") }).unwrap_err();
        assert!(err.contains("deliberate libpvm panic"), "{err}");
        assert!(
            err.contains("panic.rs:"),
            "the message names the location: {err}"
        );
        eprintln!("CHILD-CAUGHT: {err}");
        // Through a real entry point: a JIP-6 log with a multi-byte character in the program hex
        // (the parser used to panic on it): an error, and silent either way.
        let log = "program 0xaé0\n";
        let mut report = [0 as std::ffi::c_char; 128];
        // SAFETY: `log` and `report` are valid for their lengths.
        let r = unsafe {
            crate::pvm_jip6_replay(
                log.as_ptr().cast(),
                log.len(),
                0,
                1,
                report.as_mut_ptr(),
                128,
            )
        };
        assert_eq!(r, -1);
        // A panic of the host's own code (here inside a callback libpvm calls): printed.
        let host = catch(|| {
            outside(|| std::panic::catch_unwind(|| panic!("deliberate host panic")).is_err())
        });
        assert_eq!(host, Ok(true));
        // And on another thread, outside any libpvm call: printed too.
        let t = std::thread::spawn(|| panic!("deliberate thread panic")).join();
        assert!(t.is_err());
        // Nesting: the depth is restored after an inner call and after a caught panic.
        let nested = catch(|| {
            let _ = catch(|| panic!("inner"));
            inside()
        });
        assert_eq!(nested, Ok(true));
        assert!(!inside());
    }

    #[test]
    fn panics_inside_libpvm_are_silent_and_host_panics_print() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "panic::tests::child_panics",
                "--nocapture",
            ])
            .env("PVM_PANIC_CHILD", "1")
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
        assert!(stderr.contains("CHILD-CAUGHT: internal error"), "{stderr}");
        // Exactly the host's two panics print (the default hook's `thread '…' panicked at`).
        assert_eq!(stderr.matches("panicked at").count(), 2, "{stderr}");
        assert!(stderr.contains("deliberate host panic"), "{stderr}");
        assert!(stderr.contains("deliberate thread panic"), "{stderr}");
        let leaked: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.starts_with("CHILD-CAUGHT"))
            .filter(|l| l.contains("deliberate libpvm panic") || l.trim() == "inner")
            .collect();
        assert!(
            leaked.is_empty(),
            "libpvm panics printed: {leaked:?}\n{stderr}"
        );
    }
}
