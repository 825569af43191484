//! Rust panics at the C boundary: caught, silent, reported through `pvm_last_error`.
//!
//! Every entry point runs its body under [`catch`] (through [`crate::handle::ffi`]), so a panic
//! (a bug in libpvm) never unwinds into C; it becomes the function's error value plus an
//! "internal error" message. Catching alone is not enough: Rust's default panic hook prints
//! `thread '…' panicked at …` (and maybe a backtrace) to stderr *before* unwinding starts, and a
//! library must not write to its host's stderr.
//!
//! Design (implemented once for both front ends in `pvm_core::boundary`): the panic hook is process-wide (per copy of the Rust standard library), so libpvm
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

use pvm_core::boundary;

#[cfg(test)]
use pvm_core::boundary::inside;

/// Runs `f` as libpvm code: a panic inside it prints nothing and is returned as
/// `Err("internal error (Rust panic caught): <message> (at <file>:<line>)")`.
pub fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    boundary::catch(f).map_err(|what| format!("internal error (Rust panic caught): {what}"))
}

/// Runs host code (`f` calls a C callback or trace sink) from inside libpvm: panics in the host's
/// own Rust code are not libpvm's to silence while it runs.
pub fn outside<R>(f: impl FnOnce() -> R) -> R {
    boundary::outside(f)
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
