//! The VM handle behind `pvm_vm_t*`, the registry of live handles, the thread-local last error and
//! the helpers every entry point uses (panic catching, handle validation, C slices).
//!
//! Soundness rules (see `docs/C-API.md`, "Re-entrancy and soundness"):
//! - a handle is only ever accessed through a shared `&VmHandle`; all mutable state lives in
//!   `Cell`s and in one `RefCell<Box<Instance>>`;
//! - the `RefCell`s are borrowed only for the duration of one engine operation and are never held
//!   while C code (a host callback or a trace sink) runs, so callbacks can call any API function
//!   on the same VM;
//! - a handle is freed only when it is not running; `pvm_destroy` from inside the VM's own
//!   callback defers the free to the end of the run that invoked the callback.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::ffi::{c_char, c_int, c_void, CString};
use std::marker::{PhantomData, PhantomPinned};
use std::sync::Mutex;

use pvm_core::inner::InnerPvms;
use pvm_core::{Instance, Spec};

use crate::jip6::Recording;

/// The opaque VM type of the C API (`pvm_vm_t` in `pvm.h`). Pointers to it really point to a
/// [`VmHandle`]; the type itself has no fields so C (and Rust callers) cannot look inside.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct pvm_vm_t {
    _opaque: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// A host callback: `pvm_host_result_t (*)(pvm_vm_t* vm, int func_id)`. The return value is
/// taken as a plain `int` so that an out-of-range value from C is not undefined behaviour.
#[allow(non_camel_case_types)]
pub type pvm_host_callback_t =
    Option<unsafe extern "C" fn(vm: *mut pvm_vm_t, func_id: c_int) -> c_int>;

/// A trace sink: `void (*)(void* user, const char* line)`; the line has no trailing newline.
#[allow(non_camel_case_types)]
pub type pvm_trace_sink_t = Option<unsafe extern "C" fn(user: *mut c_void, line: *const c_char)>;

/// Machine state "ready": created, stepped or repositioned, not stopped at an exit (extension).
pub const STATE_READY: u8 = 5;

/// Everything one VM needs. Only accessed as `&VmHandle`.
pub struct VmHandle {
    /// The engine instance, boxed so the register array's address never changes.
    pub inst: RefCell<Box<Instance>>,
    /// The instance's interrupt handle: the one field other threads read (`pvm_interrupt`),
    /// immutable after creation and `Sync`.
    pub interrupt: pvm_core::InterruptHandle,
    /// The host callback, if any.
    pub callback: Cell<pvm_host_callback_t>,
    /// True while `pvm_execute`/`pvm_resume`/`pvm_step` runs (including inside callbacks).
    pub running: Cell<bool>,
    /// Set by `pvm_destroy` while running: the run frees the handle when it returns.
    pub destroy_pending: Cell<bool>,
    /// The machine state of the last exit (`PVM_HALT` … `PVM_OOG`, or [`STATE_READY`]).
    pub state: Cell<u8>,
    /// The last `pvm_result_t` of a run, or -1 before the first.
    pub result: Cell<c_int>,
    /// Page address of the last page fault.
    pub fault_address: Cell<u32>,
    /// Id of the last `ecalli` reached.
    pub host_call_id: Cell<u32>,
    /// `service_index` given to `pvm_create` (0 for the other constructors).
    pub service_index: u32,
    /// `is_child` of the last `pvm_execute`.
    pub is_child: Cell<bool>,
    /// Logging flag: one line per exit and host call on stderr.
    pub logging: Cell<bool>,
    /// Tracing flag: runs step and emit one trace line per instruction to the sink.
    pub tracing: Cell<bool>,
    /// Where trace lines go (`None`: stderr).
    pub trace_sink: Cell<pvm_trace_sink_t>,
    /// The `user` pointer handed to the trace sink (never dereferenced by the library).
    pub trace_user: Cell<*mut c_void>,
    /// Include the PVM hash in every N-th trace line (0: never).
    pub trace_hash_interval: Cell<u64>,
    /// Trace step counter (reset when tracing is enabled and when `pvm_execute` starts a run).
    pub trace_step: Cell<u64>,
    /// Answer the PVM-level host calls inside the run for a non-child VM.
    pub builtin_host_calls: Cell<bool>,
    /// The inner PVMs of this VM's refine context, created on first use.
    pub inner: RefCell<Option<InnerPvms>>,
    /// True while the host callback runs (for `pvm_handle_builtin_host_call`).
    pub in_callback: Cell<bool>,
    /// Set when the current host call has been performed by `pvm_handle_builtin_host_call`.
    pub builtin_done: Cell<bool>,
    /// The program bytes the VM was created from (the JIP-6 `program` line).
    pub program_bytes: Vec<u8>,
    /// The argument data written at creation, with its address (the JIP-6 initial write).
    /// `pvm_invoke` replaces it with the new invocation's arguments.
    pub args_write: RefCell<Option<(u32, Vec<u8>)>>,
    /// JIP-6 recording is on.
    pub jip6_on: Cell<bool>,
    /// The JIP-6 log being (or last) recorded.
    pub jip6: RefCell<Option<Recording>>,
}

impl VmHandle {
    /// A new handle in state "ready". `program_bytes` and `args_write` are the JIP-6 prelude.
    pub fn new(
        inst: Instance,
        service_index: u32,
        program_bytes: Vec<u8>,
        args_write: Option<(u32, Vec<u8>)>,
    ) -> VmHandle {
        VmHandle {
            interrupt: inst.interrupt_handle(),
            inst: RefCell::new(Box::new(inst)),
            callback: Cell::new(None),
            running: Cell::new(false),
            destroy_pending: Cell::new(false),
            state: Cell::new(STATE_READY),
            result: Cell::new(-1),
            fault_address: Cell::new(0),
            host_call_id: Cell::new(0),
            service_index,
            is_child: Cell::new(false),
            logging: Cell::new(false),
            tracing: Cell::new(false),
            trace_sink: Cell::new(None),
            trace_user: Cell::new(std::ptr::null_mut()),
            trace_hash_interval: Cell::new(0),
            trace_step: Cell::new(0),
            builtin_host_calls: Cell::new(false),
            inner: RefCell::new(None),
            in_callback: Cell::new(false),
            builtin_done: Cell::new(false),
            program_bytes,
            args_write: RefCell::new(args_write),
            jip6_on: Cell::new(false),
            jip6: RefCell::new(None),
        }
    }

    /// Shared borrow of the instance; fails (never panics) if it is mutably borrowed.
    pub fn inst(&self) -> Result<std::cell::Ref<'_, Box<Instance>>, String> {
        self.inst
            .try_borrow()
            .map_err(|_| "internal error: the VM is busy".to_string())
    }

    /// Mutable borrow of the instance; fails (never panics) if it is borrowed.
    pub fn inst_mut(&self) -> Result<std::cell::RefMut<'_, Box<Instance>>, String> {
        self.inst
            .try_borrow_mut()
            .map_err(|_| "internal error: the VM is busy".to_string())
    }

    /// The spec the VM's program follows.
    pub fn spec(&self) -> Result<Spec, String> {
        Ok(self.inst()?.program().spec())
    }
}

/// Addresses of live handles. Every entry point checks its `pvm_vm_t*` here, which turns NULL,
/// stale (destroyed) and foreign pointers into errors instead of undefined behaviour.
static LIVE: Mutex<BTreeSet<usize>> = Mutex::new(BTreeSet::new());

fn live() -> std::sync::MutexGuard<'static, BTreeSet<usize>> {
    // The set stays consistent even if a thread panicked while holding the lock.
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Boxes a handle, registers it and returns the C pointer.
pub fn register(handle: VmHandle) -> *mut pvm_vm_t {
    let ptr = Box::into_raw(Box::new(handle)) as *mut pvm_vm_t;
    live().insert(ptr as usize);
    ptr
}

/// Removes `vm` from the registry; false if it was not live.
pub fn unregister(vm: *mut pvm_vm_t) -> bool {
    live().remove(&(vm as usize))
}

/// Frees a handle that has been removed from the registry.
///
/// # Safety
/// `vm` must come from [`register`], must have been unregistered, must not be freed yet, and no
/// reference to the handle may be alive.
pub unsafe fn free_handle(vm: *mut pvm_vm_t) {
    // SAFETY: guaranteed by the caller: `vm` is the `Box::into_raw` pointer of a `VmHandle` that
    // is freed exactly once (it was just removed from the registry) with no outstanding borrows.
    drop(unsafe { Box::from_raw(vm as *mut VmHandle) });
}

/// Interrupts `vm` from any thread (`pvm_interrupt`); false if it is not live. The registry lock
/// is held while the flag is set, so the handle cannot be freed meanwhile (handles are
/// unregistered, under that lock, before they are freed).
pub fn interrupt(vm: *mut pvm_vm_t) -> bool {
    let live = live();
    if vm.is_null() || !live.contains(&(vm as usize)) {
        return false;
    }
    // SAFETY: the address is a registered, unfreed `Box<VmHandle>` (see above), and stays so while
    // `live` is held. Only the `interrupt` field is read, through a raw field pointer: no
    // reference to the (non-`Sync`) handle as a whole is created on this thread, and the field is
    // immutable and `Sync`, so reading it while the owning thread runs the VM is not a data race.
    let flag = unsafe { &*std::ptr::addr_of!((*(vm as *const VmHandle)).interrupt) };
    flag.interrupt();
    true
}

/// Validates `vm` and runs `f` on the handle.
pub fn with_vm<R>(
    vm: *mut pvm_vm_t,
    f: impl FnOnce(&VmHandle) -> Result<R, String>,
) -> Result<R, String> {
    if vm.is_null() {
        return Err("the pvm_vm_t pointer is NULL".into());
    }
    if !live().contains(&(vm as usize)) {
        return Err(format!(
            "{vm:p} is not a live pvm_vm_t (already destroyed, or never created by libpvm)"
        ));
    }
    // SAFETY: the address is in the registry, so it is a `Box<VmHandle>` pointer that has not been
    // freed (handles are unregistered before they are freed, and never freed while running).
    // A VM is not shared between threads (documented contract), so no other thread frees it during
    // this call. Only a shared reference is created; all mutation goes through Cell/RefCell.
    let handle = unsafe { &*(vm as *const VmHandle) };
    f(handle)
}

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Records the thread's last error message.
pub fn set_last_error(msg: impl Into<String>) {
    let mut msg = msg.into();
    msg.retain(|c| c != '\0');
    let c = CString::new(msg).unwrap_or_default();
    // `try_with`: during thread teardown the slot may be gone; dropping the message is fine then.
    let _ = LAST_ERROR.try_with(|e| {
        if let Ok(mut slot) = e.try_borrow_mut() {
            *slot = Some(c);
        }
    });
}

/// The thread's last error message, or NULL.
pub fn last_error_ptr() -> *const c_char {
    LAST_ERROR
        .try_with(|e| match e.try_borrow() {
            Ok(slot) => slot.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            Err(_) => std::ptr::null(),
        })
        .unwrap_or(std::ptr::null())
}

/// Forgets the thread's last error message.
pub fn clear_last_error() {
    let _ = LAST_ERROR.try_with(|e| {
        if let Ok(mut slot) = e.try_borrow_mut() {
            *slot = None;
        }
    });
}

/// The body of every entry point: runs `f`, turns `Err` into `fallback` plus a last-error message,
/// and stops Rust panics at the boundary (they become `fallback` plus an "internal error"
/// message, and print nothing: see [`crate::panic`]).
pub fn ffi<R>(fallback: R, f: impl FnOnce() -> Result<R, String>) -> R {
    match crate::panic::catch(f) {
        Ok(Ok(r)) => r,
        Ok(Err(msg)) | Err(msg) => {
            set_last_error(msg);
            fallback
        }
    }
}

/// A C input array as a slice. `len == 0` accepts any pointer, including NULL.
///
/// # Safety
/// If `len > 0` and `ptr` is not NULL, `ptr` must be valid for reads of `len` elements for `'a`
/// and not be written to during that time.
pub unsafe fn slice_in<'a, T>(ptr: *const T, len: usize, what: &str) -> Result<&'a [T], String> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(format!("{what} is NULL but its length is {len}"));
    }
    if len > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(format!("{what}: length {len} is too large"));
    }
    if !ptr.is_aligned() {
        return Err(format!("{what} is not suitably aligned"));
    }
    // SAFETY: non-NULL, aligned, the byte size fits in isize (checked above) and the caller
    // guarantees validity for `len` elements.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A C output array as a mutable slice. `len == 0` accepts any pointer, including NULL.
///
/// # Safety
/// If `len > 0` and `ptr` is not NULL, `ptr` must be valid for writes of `len` elements for `'a`
/// and not be accessed through other pointers during that time.
pub unsafe fn slice_out<'a, T>(ptr: *mut T, len: usize, what: &str) -> Result<&'a mut [T], String> {
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(format!("{what} is NULL but its length is {len}"));
    }
    if len > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(format!("{what}: length {len} is too large"));
    }
    if !ptr.is_aligned() {
        return Err(format!("{what} is not suitably aligned"));
    }
    // SAFETY: non-NULL, aligned, size fits in isize, and the caller guarantees exclusive
    // validity for `len` elements.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}
