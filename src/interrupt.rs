//! Interrupts from JavaScript: `vm.interrupt()`, `vm.interruptToken()` + `interruptVm(token)`
//! (from any worker), and prompt termination of a run when its worker is terminated.
//!
//! Every VM has a token (a positive safe integer, never reused in the process) and an entry in a
//! process-global registry: its `InterruptHandle` (pvm-core, `Send + Sync`), a flag saying that
//! the interrupt was asked for by the host, and the env it belongs to. The entry is removed when
//! the VM is freed or finalised; an unknown (stale) token makes `interruptVm` return false.
//!
//! Worker termination. `worker.terminate()` stops the worker's JavaScript, but a run is native
//! code: V8 cannot stop it, and env cleanup hooks only run on the worker's own thread after the
//! run returns. So while runs are in progress a watchdog thread interrupts them every
//! [`POLL_MS`] milliseconds ("polls"); the run loop then asks Node whether the env may still run
//! JavaScript ([`crate::js::env_stopping`]). If it may not (the env is being torn down), the run
//! ends with status `'interrupted'` and the worker exits; otherwise the run continues exactly
//! where it stopped (an interrupt is resumable at a block boundary, so polls change nothing but
//! a few hundred nanoseconds every 20 ms). Runs that are not interrupted by the host never return
//! `'interrupted'`. An env cleanup hook also interrupts every VM of the env, for runs that reach
//! the env's teardown some other way.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;
use pvm_core::InterruptHandle;

use crate::error::{guard, Code, Fail};
use crate::js::{self, RawEnv};

/// The watchdog's period while runs are in progress.
pub(crate) const POLL_MS: u64 = 20;

struct Entry {
    handle: InterruptHandle,
    requested: Arc<AtomicBool>,
    /// The env (as an address) the VM was created in.
    env: usize,
}

#[derive(Default)]
struct Registry {
    vms: HashMap<u64, Entry>,
    /// Tokens of the VMs whose run is in progress (the watchdog polls these).
    running: HashSet<u64>,
    watchdog: bool,
    /// The watchdog waits for a first run (no run in progress): only then does starting a run
    /// wake it. (Waking it at every run would make it poll at once: a `run()` per host call
    /// would be interrupted at every call, a futex wake and a needless exit each.)
    sleeping: bool,
}

fn registry() -> MutexGuard<'static, Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    // A panic while the lock is held cannot leave the maps inconsistent (single inserts and
    // removes), so a poisoned lock is used as is.
    R.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

fn wake() -> &'static Condvar {
    static C: OnceLock<Condvar> = OnceLock::new();
    C.get_or_init(Condvar::new)
}

/// Tokens start at 1 and stay below 2^53 (a JavaScript safe integer).
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// A VM's side of the registry; unregisters on drop.
pub(crate) struct Registration {
    pub token: u64,
    requested: Arc<AtomicBool>,
}

impl Registration {
    pub(crate) fn new(env: RawEnv, handle: InterruptHandle) -> Registration {
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        let requested = Arc::new(AtomicBool::new(false));
        registry().vms.insert(
            token,
            Entry {
                handle,
                requested: requested.clone(),
                env: env as usize,
            },
        );
        Registration { token, requested }
    }

    /// Interrupts the VM on behalf of the host (`vm.interrupt()`).
    pub(crate) fn interrupt(&self) {
        interrupt_token(self.token);
    }

    /// Consumes a host interrupt request: true if the host asked for the interrupt that stopped
    /// the run (as opposed to a watchdog poll).
    pub(crate) fn take_request(&self) -> bool {
        self.requested.swap(false, Ordering::Relaxed)
    }

    /// Removes the VM from the registry (`free()`); idempotent.
    pub(crate) fn unregister(&self) {
        let mut r = registry();
        r.vms.remove(&self.token);
        r.running.remove(&self.token);
    }

    /// Marks a run as in progress (the watchdog polls it) until the guard is dropped.
    pub(crate) fn running(&self) -> RunGuard {
        let mut r = registry();
        if r.vms.contains_key(&self.token) {
            r.running.insert(self.token);
            if !r.watchdog {
                r.watchdog = std::thread::Builder::new()
                    .name("libpvm-interrupt-watchdog".into())
                    .spawn(watchdog)
                    .is_ok();
            }
            if r.sleeping {
                wake().notify_one();
            }
        }
        RunGuard(self.token)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.unregister();
    }
}

pub(crate) struct RunGuard(u64);

impl Drop for RunGuard {
    fn drop(&mut self) {
        registry().running.remove(&self.0);
    }
}

/// Interrupts every running VM every [`POLL_MS`] while there are any; sleeps otherwise. A run
/// is polled at the end of the period in which it is found running (never as it starts).
fn watchdog() {
    let mut r = registry();
    loop {
        if r.running.is_empty() {
            r.sleeping = true;
            r = wake().wait(r).unwrap_or_else(|p| p.into_inner());
            r.sleeping = false;
            continue;
        }
        r = wake()
            .wait_timeout(r, Duration::from_millis(POLL_MS))
            .unwrap_or_else(|p| p.into_inner())
            .0;
        for t in &r.running {
            if let Some(e) = r.vms.get(t) {
                e.handle.interrupt();
            }
        }
    }
}

fn interrupt_token(token: u64) -> bool {
    let r = registry();
    match r.vms.get(&token) {
        Some(e) => {
            e.requested.store(true, Ordering::Relaxed);
            e.handle.interrupt();
            true
        }
        None => false,
    }
}

/// Env cleanup hook: interrupts every VM of the env being torn down.
unsafe extern "C" fn on_env_cleanup(arg: *mut std::ffi::c_void) {
    let env = arg as usize;
    let _ = crate::panic::catch(move || {
        let r = registry();
        for e in r.vms.values().filter(|e| e.env == env) {
            e.requested.store(true, Ordering::Relaxed);
            e.handle.interrupt();
        }
    });
}

/// Installs [`on_env_cleanup`] for `env` (module initialisation). Not on wasm: emnapi provides
/// `napi_add_env_cleanup_hook` from another import module than napi-sys declares it in (the
/// link fails), and a wasm build has no worker of its own to terminate mid-run.
///
/// # Safety
/// `env` must be the live env of module registration.
pub(crate) unsafe fn install_cleanup_hook(env: RawEnv) {
    #[cfg(not(target_family = "wasm"))]
    // SAFETY: the hook only reads the registry; `env` is used as a key, never dereferenced.
    unsafe {
        sys::napi_add_env_cleanup_hook(env, Some(on_env_cleanup), env.cast());
    }
    #[cfg(target_family = "wasm")]
    let _ = (
        env,
        on_env_cleanup as unsafe extern "C" fn(*mut std::ffi::c_void),
    );
}

/// Interrupts the VM with this token (from `vm.interruptToken()`), from any worker thread of the
/// process: its current run — or, if it is not running, its next run — ends with status
/// `'interrupted'` at the next basic-block boundary, and the next run continues exactly there.
/// Returns false if no such VM is live (freed, collected, or a token that was never issued);
/// never throws for a number or bigint.
#[cfg_attr(test, allow(dead_code))]
#[napi(
    js_name = "interruptVm",
    ts_args_type = "token: number | bigint",
    ts_return_type = "boolean"
)]
pub fn interrupt_vm(env: &Env, token: Unknown) -> Result<bool> {
    let env = env.raw();
    guard(env, || {
        let t = token.raw();
        let ty = js::type_of(env, t);
        if ty != sys::ValueType::napi_number && ty != sys::ValueType::napi_bigint {
            return Err(Fail::new(
                Code::InvalidArgument,
                format!(
                    "token must be a number or bigint from vm.interruptToken(), got {}",
                    js::describe(env, t)
                ),
            ));
        }
        // Anything that is not a valid token is simply not a live VM.
        Ok(match js::to_u64(env, t, "token") {
            Ok(t) => interrupt_token(t),
            Err(_) => false,
        })
    })
}
