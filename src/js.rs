//! Thin helpers over raw Node-API calls.
//!
//! The hot paths of the binding (the host-call round trip, register and gas accessors) use raw
//! `napi_*` calls instead of napi-rs conversions so that they allocate nothing on the Rust side,
//! and every argument is converted here so that a wrong argument becomes a `PvmError` with code
//! `INVALID_ARGUMENT` that names the parameter.

use std::cell::Cell;
use std::ffi::{c_void, CStr};
use std::ptr;

use napi::sys;

use crate::error::{Code, Fail, Res};

pub(crate) type RawEnv = sys::napi_env;
pub(crate) type Val = sys::napi_value;

/// Maps a Node-API status to `Res`: a pending exception stays pending, anything else becomes an
/// `INTERNAL` error naming the operation.
pub(crate) fn check(env: RawEnv, status: sys::napi_status, what: &str) -> Res<()> {
    if status == sys::Status::napi_ok {
        return Ok(());
    }
    let mut pending = false;
    // SAFETY: `env` is the live env of the current call.
    unsafe { sys::napi_is_exception_pending(env, &mut pending) };
    if pending || status == sys::Status::napi_pending_exception {
        return Err(Fail::Pending);
    }
    Err(Fail::new(
        Code::Internal,
        format!("Node-API call failed ({what}, status {status})"),
    ))
}

// ---- per-environment globals ----

#[derive(Clone, Copy)]
struct Globals {
    env: RawEnv,
    error_ctor: sys::napi_ref,
    buffer_ctor: sys::napi_ref,
    buffer_from: sys::napi_ref,
    exit_factory: sys::napi_ref,
}

thread_local! {
    // One JavaScript environment per thread (the main thread or one worker).
    static GLOBALS: Cell<Option<Globals>> = const { Cell::new(None) };
}

/// The `PvmError` class. Defined in JavaScript so that it is a real `Error` subclass (stack
/// trace, `instanceof Error`, `util.types.isNativeError`), and created once per environment.
const PVM_ERROR_SOURCE: &str = r#"(function () {
  'use strict';
  class PvmError extends Error {
    constructor(code, message, details) {
      super(message);
      this.code = code;
      if (details !== undefined && details !== null) {
        for (const key of Object.keys(details)) this[key] = details[key];
      }
    }
  }
  Object.defineProperty(PvmError.prototype, 'name', {
    value: 'PvmError', writable: true, enumerable: false, configurable: true,
  });
  return PvmError;
})()"#;

/// Makes `vm.registers` cheap to read: napi-rs 3.x spends ~0.7 µs on every native accessor call
/// (borrow tracking, type-tag check), while handlers typically read `vm.registers[i]` several
/// times per host call. The native getter always returns the same external `BigUint64Array`, so
/// a JavaScript getter remembers it per VM (in a WeakMap) and calls the native one only the first
/// time, after `free()` (the cached array is then detached, and the native getter throws
/// `VM_FREED`), or where external buffers are unavailable (each native call returns a new copy,
/// which is never cached). The setter stays native.
const REGISTERS_SHIM_SOURCE: &str = r#"(function (Pvm) {
  'use strict';
  const desc = Object.getOwnPropertyDescriptor(Pvm.prototype, 'registers');
  if (!desc || typeof desc.get !== 'function') return;
  const nativeGet = desc.get;
  const cache = new WeakMap();
  Object.defineProperty(Pvm.prototype, 'registers', {
    configurable: true,
    enumerable: desc.enumerable,
    get() {
      const cached = cache.get(this);
      if (cached !== undefined && cached.length !== 0) return cached;
      const regs = Reflect.apply(nativeGet, this, []);
      if (regs.length !== 0 && Reflect.apply(nativeGet, this, []) === regs) cache.set(this, regs);
      return regs;
    },
    set: desc.set,
  });
})"#;

/// The status names an `Exit` object can carry, in the order [`exit_object`] numbers them.
pub(crate) const STATUS_NAMES: [&str; 7] = [
    "halt",
    "panic",
    "oog",
    "fault",
    "host",
    "running",
    "interrupted",
];

/// Makes the function that builds `Exit` objects. Built in JavaScript, an object literal gets its
/// shape at once; built natively, every property is a Node-API call that internalises its key
/// and moves the object to a new hidden class (about 1 µs per exit, most of a `run()` that stops
/// at a host call).
const EXIT_FACTORY_SOURCE: &str = r#"(function (names) {
  'use strict';
  return function exit(s, pc, gas, kind, x) {
    const status = names[s];
    if (kind === 1) return { status, pc, gas, hostCallId: x };
    if (kind === 2) return { status, pc, gas, faultAddress: x };
    return { status, pc, gas };
  };
})"#;

/// Compiles and runs a constant script.
unsafe fn run_script(env: RawEnv, source: &str) -> Option<Val> {
    let mut script = ptr::null_mut();
    let mut result = ptr::null_mut();
    // SAFETY: `source` is valid UTF-8 of the given length; `env` is live.
    let ok = unsafe {
        sys::napi_create_string_utf8(
            env,
            source.as_ptr().cast(),
            source.len() as isize,
            &mut script,
        ) == sys::Status::napi_ok
            && sys::napi_run_script(env, script, &mut result) == sys::Status::napi_ok
    };
    ok.then_some(result)
}

/// Defines `PvmError` on `exports`, installs the `registers` getter shim and caches `Buffer.from`.
///
/// # Safety
/// `env` and `exports` must be the live env and exports object of module registration.
pub(crate) unsafe fn init_module(env: RawEnv, exports: Val) -> napi::Result<()> {
    let fail = |what: &str| napi::Error::from_reason(format!("libpvm: cannot initialise: {what}"));
    let mut global = ptr::null_mut();
    let mut buffer = ptr::null_mut();
    let mut from = ptr::null_mut();
    let mut pvm_class = ptr::null_mut();
    let mut ignored = ptr::null_mut();
    unsafe {
        let Some(class) = run_script(env, PVM_ERROR_SOURCE) else {
            return Err(fail("defining PvmError"));
        };
        let Some(shim) = run_script(env, REGISTERS_SHIM_SOURCE) else {
            return Err(fail("defining the registers getter"));
        };
        if sys::napi_get_named_property(env, exports, c"Pvm".as_ptr(), &mut pvm_class)
            != sys::Status::napi_ok
            || sys::napi_call_function(env, exports, shim, 1, &pvm_class, &mut ignored)
                != sys::Status::napi_ok
        {
            return Err(fail("installing the registers getter"));
        }
        if sys::napi_set_named_property(env, exports, c"PvmError".as_ptr(), class)
            != sys::Status::napi_ok
        {
            return Err(fail("exporting PvmError"));
        }
        if sys::napi_get_global(env, &mut global) != sys::Status::napi_ok
            || sys::napi_get_named_property(env, global, c"Buffer".as_ptr(), &mut buffer)
                != sys::Status::napi_ok
            || sys::napi_get_named_property(env, buffer, c"from".as_ptr(), &mut from)
                != sys::Status::napi_ok
        {
            return Err(fail("looking up Buffer.from"));
        }
        let Some(maker) = run_script(env, EXIT_FACTORY_SOURCE) else {
            return Err(fail("defining the Exit factory"));
        };
        let mut names = ptr::null_mut();
        let mut factory = ptr::null_mut();
        if sys::napi_create_array(env, &mut names) != sys::Status::napi_ok {
            return Err(fail("defining the Exit factory"));
        }
        for (i, name) in STATUS_NAMES.iter().enumerate() {
            let mut v = ptr::null_mut();
            if sys::napi_create_string_utf8(env, name.as_ptr().cast(), name.len() as isize, &mut v)
                != sys::Status::napi_ok
                || sys::napi_set_element(env, names, i as u32, v) != sys::Status::napi_ok
            {
                return Err(fail("defining the Exit factory"));
            }
        }
        if sys::napi_call_function(env, exports, maker, 1, &names, &mut factory)
            != sys::Status::napi_ok
        {
            return Err(fail("defining the Exit factory"));
        }
        let mut g = Globals {
            env,
            error_ctor: ptr::null_mut(),
            buffer_ctor: ptr::null_mut(),
            buffer_from: ptr::null_mut(),
            exit_factory: ptr::null_mut(),
        };
        if sys::napi_create_reference(env, class, 1, &mut g.error_ctor) != sys::Status::napi_ok
            || sys::napi_create_reference(env, buffer, 1, &mut g.buffer_ctor)
                != sys::Status::napi_ok
            || sys::napi_create_reference(env, from, 1, &mut g.buffer_from) != sys::Status::napi_ok
            || sys::napi_create_reference(env, factory, 1, &mut g.exit_factory)
                != sys::Status::napi_ok
        {
            return Err(fail("keeping references"));
        }
        GLOBALS.with(|cell| cell.set(Some(g)));
    }
    Ok(())
}

fn globals(env: RawEnv) -> Option<Globals> {
    GLOBALS.with(|c| c.get()).filter(|g| g.env == env)
}

/// The `PvmError` constructor, if the module was initialised in this environment.
pub(crate) fn error_ctor(env: RawEnv) -> Option<Val> {
    let g = globals(env)?;
    deref(env, g.error_ctor)
}

/// What an `Exit` object carries besides status, pc and gas.
#[derive(Clone, Copy)]
pub(crate) enum ExitExtra {
    None,
    HostCallId(u32),
    FaultAddress(u32),
}

/// A new `Exit` object `{ status: STATUS_NAMES[status], pc, gas, hostCallId | faultAddress }`.
pub(crate) fn exit_object(
    env: RawEnv,
    status: usize,
    pc: u32,
    gas: i64,
    extra: ExitExtra,
) -> Res<Val> {
    let g = globals(env).ok_or_else(|| Fail::new(Code::Internal, "libpvm is not initialised"))?;
    let factory = deref(env, g.exit_factory)
        .ok_or_else(|| Fail::new(Code::Internal, "the Exit factory is unavailable"))?;
    let (kind, x) = match extra {
        ExitExtra::None => (0, 0),
        ExitExtra::HostCallId(id) => (1, id),
        ExitExtra::FaultAddress(a) => (2, a),
    };
    let args = [
        uint32(env, status as u32)?,
        uint32(env, pc)?,
        bigint_i64(env, gas)?,
        uint32(env, kind)?,
        uint32(env, x)?,
    ];
    call(
        env,
        undefined(env),
        factory,
        &args,
        "building the Exit object",
    )
}

/// The value behind a reference (None if it was collected or the call failed).
pub(crate) fn deref(env: RawEnv, r: sys::napi_ref) -> Option<Val> {
    let mut v = ptr::null_mut();
    // SAFETY: `r` is a live reference created in this env.
    let s = unsafe { sys::napi_get_reference_value(env, r, &mut v) };
    (s == sys::Status::napi_ok && !v.is_null()).then_some(v)
}

/// A strong reference to `v`.
pub(crate) fn make_ref(env: RawEnv, v: Val) -> Res<sys::napi_ref> {
    let mut r = ptr::null_mut();
    // SAFETY: `v` is a live value of this env.
    check(
        env,
        unsafe { sys::napi_create_reference(env, v, 1, &mut r) },
        "napi_create_reference",
    )?;
    Ok(r)
}

pub(crate) fn delete_ref(env: RawEnv, r: sys::napi_ref) {
    // SAFETY: `r` was created in this env and is deleted exactly once by its owner.
    unsafe { sys::napi_delete_reference(env, r) };
}

/// `Buffer.from(arrayBuffer, offset, length)`: a Buffer sharing the ArrayBuffer's memory.
pub(crate) fn buffer_view(env: RawEnv, ab: Val, offset: u32, length: u32) -> Res<Val> {
    let g = globals(env).ok_or_else(|| Fail::new(Code::Internal, "libpvm is not initialised"))?;
    let (Some(buffer), Some(from)) = (deref(env, g.buffer_ctor), deref(env, g.buffer_from)) else {
        return Err(Fail::new(Code::Internal, "Buffer.from is unavailable"));
    };
    #[cfg(target_family = "wasm")]
    let (ab, offset) = {
        let (buffer, base) = wasm::view_buffer(env, ab)?;
        (buffer, base as u32 + offset)
    };
    let args = [ab, uint32(env, offset)?, uint32(env, length)?];
    let mut out = ptr::null_mut();
    // SAFETY: all values are live in this env; `Buffer.from` is Node's own function.
    check(
        env,
        unsafe { sys::napi_call_function(env, buffer, from, 3, args.as_ptr(), &mut out) },
        "Buffer.from",
    )?;
    Ok(out)
}

// ---- value construction ----

pub(crate) fn null(env: RawEnv) -> Val {
    let mut v = ptr::null_mut();
    // SAFETY: plain value creation in a live env.
    unsafe { sys::napi_get_null(env, &mut v) };
    v
}

pub(crate) fn undefined(env: RawEnv) -> Val {
    let mut v = ptr::null_mut();
    // SAFETY: plain value creation in a live env.
    unsafe { sys::napi_get_undefined(env, &mut v) };
    v
}

pub(crate) fn uint32(env: RawEnv, x: u32) -> Res<Val> {
    let mut v = ptr::null_mut();
    // SAFETY: plain value creation in a live env.
    check(
        env,
        unsafe { sys::napi_create_uint32(env, x, &mut v) },
        "napi_create_uint32",
    )?;
    Ok(v)
}

/// A JS number from an integer (exact for |x| < 2^53).
pub(crate) fn int64(env: RawEnv, x: i64) -> Res<Val> {
    let mut v = ptr::null_mut();
    // SAFETY: plain value creation in a live env.
    check(
        env,
        unsafe { sys::napi_create_int64(env, x, &mut v) },
        "napi_create_int64",
    )?;
    Ok(v)
}

pub(crate) fn bigint_i64(env: RawEnv, x: i64) -> Res<Val> {
    let mut v = ptr::null_mut();
    // SAFETY: plain value creation in a live env.
    check(
        env,
        unsafe { sys::napi_create_bigint_int64(env, x, &mut v) },
        "napi_create_bigint_int64",
    )?;
    Ok(v)
}

pub(crate) fn bigint_u64(env: RawEnv, x: u64) -> Res<Val> {
    let mut v = ptr::null_mut();
    // SAFETY: plain value creation in a live env.
    check(
        env,
        unsafe { sys::napi_create_bigint_uint64(env, x, &mut v) },
        "napi_create_bigint_uint64",
    )?;
    Ok(v)
}

pub(crate) fn string(env: RawEnv, s: &str) -> Res<Val> {
    let mut v = ptr::null_mut();
    // SAFETY: `s` is valid UTF-8 of the given length.
    check(
        env,
        unsafe { sys::napi_create_string_utf8(env, s.as_ptr().cast(), s.len() as isize, &mut v) },
        "napi_create_string_utf8",
    )?;
    Ok(v)
}

/// A new Buffer holding a copy of `data`.
pub(crate) fn buffer_copy(env: RawEnv, data: &[u8]) -> Res<Val> {
    let mut v = ptr::null_mut();
    let mut out_data = ptr::null_mut();
    // SAFETY: `data` is readable for its length; Node copies it.
    check(
        env,
        unsafe {
            sys::napi_create_buffer_copy(
                env,
                data.len(),
                data.as_ptr().cast(),
                &mut out_data,
                &mut v,
            )
        },
        "napi_create_buffer_copy",
    )?;
    Ok(v)
}

pub(crate) fn set(env: RawEnv, obj: Val, key: &CStr, v: Val) -> Res<()> {
    // SAFETY: `obj` and `v` are live values of this env.
    check(
        env,
        unsafe { sys::napi_set_named_property(env, obj, key.as_ptr(), v) },
        "napi_set_named_property",
    )
}

pub(crate) fn object(env: RawEnv) -> Res<Val> {
    let mut v = ptr::null_mut();
    // SAFETY: plain value creation in a live env.
    check(
        env,
        unsafe { sys::napi_create_object(env, &mut v) },
        "napi_create_object",
    )?;
    Ok(v)
}

/// An external ArrayBuffer over `len` bytes at `data`, whose finalizer drops `keepalive`.
/// Returns `Ok(None)` where the runtime refuses external buffers (Electron's V8 sandbox).
///
/// In the wasm build (emnapi) it is a `Uint8Array` over the wasm memory instead: emnapi's
/// external ArrayBuffer is a copy that nothing keeps in sync, while a memory view is live (the
/// memory is shared, so growing it does not detach views). [`biguint64_array`] and
/// [`buffer_view`] take either. Such a view cannot be detached: see [`detach`].
///
/// # Safety
/// `data` must stay valid for `len` bytes until the ArrayBuffer is detached or finalized.
pub(crate) unsafe fn external_arraybuffer<T: 'static>(
    env: RawEnv,
    data: *mut u8,
    len: usize,
    keepalive: T,
) -> Res<Option<Val>> {
    unsafe extern "C" fn finalize<T>(_env: RawEnv, _data: *mut c_void, hint: *mut c_void) {
        // SAFETY: `hint` is the `Box<T>` leaked below, finalized exactly once by Node.
        let keepalive = unsafe { Box::from_raw(hint.cast::<T>()) };
        // Dropping it may free a whole instance: no panic may unwind into Node from here.
        let _ = crate::panic::catch(move || drop(keepalive));
    }
    let hint = Box::into_raw(Box::new(keepalive));
    let mut v = ptr::null_mut();
    #[cfg(target_family = "wasm")]
    // SAFETY: as below; emnapi makes a Uint8Array (type 1) over [data, data + len).
    let status = unsafe {
        wasm::emnapi_create_memory_view(
            env,
            1,
            data.cast(),
            len,
            Some(finalize::<T>),
            hint.cast(),
            &mut v,
        )
    };
    #[cfg(not(target_family = "wasm"))]
    // SAFETY: the caller guarantees `data`; `hint` is reclaimed by `finalize` or below.
    let status = unsafe {
        sys::napi_create_external_arraybuffer(
            env,
            data.cast(),
            len,
            Some(finalize::<T>),
            hint.cast(),
            &mut v,
        )
    };
    if status != sys::Status::napi_ok {
        // SAFETY: Node did not take ownership of the hint.
        drop(unsafe { Box::from_raw(hint) });
        if status == sys::Status::napi_no_external_buffers_allowed {
            return Ok(None);
        }
        check(env, status, "napi_create_external_arraybuffer")?;
    }
    Ok(Some(v))
}

/// Detaches an ArrayBuffer (views over it become empty); ignores buffers already detached.
///
/// In the wasm build the views are over the shared wasm memory, which cannot be detached: this
/// does nothing there, and a view kept after `free()` or an unmap reads and writes memory the
/// allocator may reuse (inside the wasm instance only).
pub(crate) fn detach(env: RawEnv, ab: Val) {
    // SAFETY: `ab` is a live ArrayBuffer of this env.
    unsafe { sys::napi_detach_arraybuffer(env, ab) };
}

/// The ArrayBuffer behind a typed array.
pub(crate) fn typedarray_buffer(env: RawEnv, ta: Val) -> Option<Val> {
    let mut ty = 0;
    let mut len = 0;
    let mut data = ptr::null_mut();
    let mut ab = ptr::null_mut();
    let mut off = 0;
    // SAFETY: `ta` is a live typed array of this env.
    let s = unsafe {
        sys::napi_get_typedarray_info(env, ta, &mut ty, &mut len, &mut data, &mut ab, &mut off)
    };
    (s == sys::Status::napi_ok).then_some(ab)
}

/// A BigUint64Array of `len` elements over `ab` (in the wasm build: over the memory that the
/// view `ab` covers).
pub(crate) fn biguint64_array(env: RawEnv, ab: Val, len: usize) -> Res<Val> {
    #[cfg(target_family = "wasm")]
    let (ab, offset) = wasm::view_buffer(env, ab)?;
    #[cfg(not(target_family = "wasm"))]
    let offset = 0;
    let mut v = ptr::null_mut();
    // SAFETY: `ab` is a live ArrayBuffer of at least 8 * len bytes.
    check(
        env,
        unsafe {
            sys::napi_create_typedarray(
                env,
                sys::TypedarrayType::biguint64_array,
                len,
                ab,
                offset,
                &mut v,
            )
        },
        "napi_create_typedarray",
    )?;
    Ok(v)
}

/// A new (non-shared) BigUint64Array holding a copy of `values`.
pub(crate) fn biguint64_array_copy(env: RawEnv, values: &[u64]) -> Res<Val> {
    let mut ab = ptr::null_mut();
    let mut data = ptr::null_mut();
    let bytes = std::mem::size_of_val(values);
    // SAFETY: Node allocates `bytes` bytes at `data`, which we fill before handing it out.
    check(
        env,
        unsafe { sys::napi_create_arraybuffer(env, bytes, &mut data, &mut ab) },
        "napi_create_arraybuffer",
    )?;
    // SAFETY: `data` has room for `values.len()` u64 (ArrayBuffer storage is 8-aligned in V8, but
    // copy bytewise to avoid relying on it).
    unsafe { ptr::copy_nonoverlapping(values.as_ptr().cast::<u8>(), data.cast::<u8>(), bytes) };
    wrote(env, ab, bytes);
    biguint64_array(env, ab, values.len())
}

// ---- value inspection and argument conversion ----

pub(crate) fn type_of(env: RawEnv, v: Val) -> i32 {
    let mut t = 0;
    // SAFETY: `v` is a live value of this env.
    unsafe { sys::napi_typeof(env, v, &mut t) };
    t
}

pub(crate) fn is_nullish(env: RawEnv, v: Val) -> bool {
    v.is_null()
        || matches!(
            type_of(env, v),
            sys::ValueType::napi_undefined | sys::ValueType::napi_null
        )
}

pub(crate) fn is_function(env: RawEnv, v: Val) -> bool {
    type_of(env, v) == sys::ValueType::napi_function
}

/// Property `key` of `obj`, or None when it is undefined or null.
pub(crate) fn get(env: RawEnv, obj: Val, key: &CStr) -> Res<Option<Val>> {
    let mut v = ptr::null_mut();
    // SAFETY: `obj` is a live object of this env.
    check(
        env,
        unsafe { sys::napi_get_named_property(env, obj, key.as_ptr(), &mut v) },
        "napi_get_named_property",
    )?;
    Ok((!is_nullish(env, v)).then_some(v))
}

pub(crate) fn describe(env: RawEnv, v: Val) -> &'static str {
    match type_of(env, v) {
        sys::ValueType::napi_undefined => "undefined",
        sys::ValueType::napi_null => "null",
        sys::ValueType::napi_boolean => "a boolean",
        sys::ValueType::napi_number => "a number",
        sys::ValueType::napi_string => "a string",
        sys::ValueType::napi_symbol => "a symbol",
        sys::ValueType::napi_object => "an object",
        sys::ValueType::napi_function => "a function",
        sys::ValueType::napi_external => "an external",
        sys::ValueType::napi_bigint => "a bigint",
        _ => "an unknown value",
    }
}

fn invalid(what: &str, expected: &str, env: RawEnv, v: Val) -> Fail {
    Fail::new(
        Code::InvalidArgument,
        format!("{what} must be {expected}, got {}", describe(env, v)),
    )
}

fn number(env: RawEnv, v: Val) -> f64 {
    let mut x = 0.0;
    // SAFETY: `v` is a number (checked by the callers).
    unsafe { sys::napi_get_value_double(env, v, &mut x) };
    x
}

/// A u32 from a JavaScript number (an integer in 0..2^32).
pub(crate) fn to_u32(env: RawEnv, v: Val, what: &str) -> Res<u32> {
    if type_of(env, v) == sys::ValueType::napi_number {
        let x = number(env, v);
        if x.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&x) {
            return Ok(x as u32);
        }
        return Err(Fail::new(
            Code::InvalidArgument,
            format!("{what} must be an integer in 0..2^32, got {x}"),
        ));
    }
    Err(invalid(what, "a number", env, v))
}

/// An i64 from a bigint or a safe-integer number.
pub(crate) fn to_i64(env: RawEnv, v: Val, what: &str) -> Res<i64> {
    match type_of(env, v) {
        sys::ValueType::napi_bigint => {
            let mut x = 0i64;
            let mut lossless = false;
            // SAFETY: `v` is a bigint.
            unsafe { sys::napi_get_value_bigint_int64(env, v, &mut x, &mut lossless) };
            if lossless {
                Ok(x)
            } else {
                Err(Fail::new(
                    Code::InvalidArgument,
                    format!("{what} must fit in a signed 64-bit integer"),
                ))
            }
        }
        sys::ValueType::napi_number => {
            let x = number(env, v);
            if x.fract() == 0.0 && x.abs() <= 9007199254740991.0 {
                Ok(x as i64)
            } else {
                Err(Fail::new(
                    Code::InvalidArgument,
                    format!("{what} must be a bigint or a safe integer, got {x}"),
                ))
            }
        }
        _ => Err(invalid(what, "a bigint", env, v)),
    }
}

/// A u64 from a bigint in 0..2^64 or a non-negative safe-integer number.
pub(crate) fn to_u64(env: RawEnv, v: Val, what: &str) -> Res<u64> {
    match type_of(env, v) {
        sys::ValueType::napi_bigint => {
            let mut x = 0u64;
            let mut lossless = false;
            // SAFETY: `v` is a bigint.
            unsafe { sys::napi_get_value_bigint_uint64(env, v, &mut x, &mut lossless) };
            if lossless {
                Ok(x)
            } else {
                Err(Fail::new(
                    Code::InvalidArgument,
                    format!("{what} must be a bigint in 0..2^64"),
                ))
            }
        }
        sys::ValueType::napi_number => {
            let x = number(env, v);
            if x.fract() == 0.0 && (0.0..=9007199254740991.0).contains(&x) {
                Ok(x as u64)
            } else {
                Err(Fail::new(
                    Code::InvalidArgument,
                    format!("{what} must be a bigint in 0..2^64 or a non-negative safe integer, got {x}"),
                ))
            }
        }
        _ => Err(invalid(what, "a bigint", env, v)),
    }
}

pub(crate) fn to_bool(env: RawEnv, v: Val, what: &str) -> Res<bool> {
    if type_of(env, v) != sys::ValueType::napi_boolean {
        return Err(invalid(what, "a boolean", env, v));
    }
    let mut b = false;
    // SAFETY: `v` is a boolean.
    unsafe { sys::napi_get_value_bool(env, v, &mut b) };
    Ok(b)
}

/// A short string (at most 15 bytes; longer strings are truncated, which no accepted value is).
pub(crate) fn short_string(env: RawEnv, v: Val, buf: &mut [u8; 16]) -> Option<&str> {
    if type_of(env, v) != sys::ValueType::napi_string {
        return None;
    }
    let mut len = 0usize;
    // SAFETY: `buf` has 16 bytes; Node writes at most 15 plus a NUL.
    let s = unsafe {
        sys::napi_get_value_string_utf8(env, v, buf.as_mut_ptr().cast(), buf.len(), &mut len)
    };
    if s != sys::Status::napi_ok {
        return None;
    }
    std::str::from_utf8(&buf[..len]).ok()
}

/// A whole string (any length), from a JavaScript string.
// Only `replayJip6` calls this, and napi-derive exports it outside `cfg(test)` only.
#[cfg_attr(test, allow(dead_code))]
pub(crate) fn to_string(env: RawEnv, v: Val, what: &str) -> Res<String> {
    if type_of(env, v) != sys::ValueType::napi_string {
        return Err(invalid(what, "a string", env, v));
    }
    let mut len = 0usize;
    // SAFETY: a NULL buffer asks only for the length in bytes.
    check(
        env,
        unsafe { sys::napi_get_value_string_utf8(env, v, ptr::null_mut(), 0, &mut len) },
        "napi_get_value_string_utf8",
    )?;
    let mut buf = vec![0u8; len + 1];
    let mut written = 0usize;
    // SAFETY: `buf` has room for the string and its NUL.
    check(
        env,
        unsafe {
            sys::napi_get_value_string_utf8(
                env,
                v,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut written,
            )
        },
        "napi_get_value_string_utf8",
    )?;
    buf.truncate(written);
    // Node writes valid UTF-8 (lone surrogates become U+FFFD).
    String::from_utf8(buf).map_err(|_| invalid(what, "valid text", env, v))
}

/// Calls `f` with `this` and `args` (no handle scope of its own).
pub(crate) fn call(env: RawEnv, this: Val, f: Val, args: &[Val], what: &str) -> Res<Val> {
    let mut ret = ptr::null_mut();
    // SAFETY: all values are live in this env.
    let status =
        unsafe { sys::napi_call_function(env, this, f, args.len(), args.as_ptr(), &mut ret) };
    check(env, status, what)?;
    Ok(ret)
}

pub(crate) fn to_short_string<'a>(
    env: RawEnv,
    v: Val,
    buf: &'a mut [u8; 16],
    what: &str,
) -> Res<&'a str> {
    if type_of(env, v) != sys::ValueType::napi_string {
        return Err(invalid(what, "a string", env, v));
    }
    short_string(env, v, buf).ok_or_else(|| invalid(what, "a short string", env, v))
}

/// Whether `ab` is a detached ArrayBuffer (its memory was transferred or freed).
fn is_detached(env: RawEnv, ab: Val) -> bool {
    let mut detached = false;
    // SAFETY: `ab` is a live ArrayBuffer of this env; the call only writes `detached`.
    let s = unsafe { sys::napi_is_detached_arraybuffer(env, ab, &mut detached) };
    s == sys::Status::napi_ok && detached
}

/// The bytes of a Uint8Array, Uint8ClampedArray, Buffer, ArrayBuffer or DataView.
///
/// A detached buffer (or a view of one) is an `INVALID_ARGUMENT`, not an empty input: it has no
/// bytes to read, and treating it as empty would report a truncated program instead of the
/// caller's mistake.
///
/// The slice is valid while `v` is alive and not detached: callers use it before calling any
/// JavaScript.
pub(crate) fn to_bytes<'a>(env: RawEnv, v: Val, what: &str) -> Res<&'a [u8]> {
    let (data, len) = bytes_ptr(env, v, what)?;
    if len == 0 {
        return Ok(&[]);
    }
    // SAFETY: Node reported `len` readable bytes at `data`, alive while `v` is.
    Ok(unsafe { std::slice::from_raw_parts(data, len) })
}

/// The memory of a `Uint8Array`/`Buffer`/`ArrayBuffer`/`DataView` as a raw pointer and length
/// (null and 0 when empty), for writing into it. The caller writes through the pointer only with
/// raw copies (the memory may alias other views, guest pages included) and only while `v` lives.
pub(crate) fn bytes_ptr(env: RawEnv, v: Val, what: &str) -> Res<(*mut u8, usize)> {
    let mut yes = false;
    let mut data: *mut c_void = ptr::null_mut();
    let mut len = 0usize;
    // The ArrayBuffer behind `v` (itself, for an ArrayBuffer).
    let mut buffer: Val = ptr::null_mut();
    // SAFETY (all calls below): `v` is a live value of this env; the info calls only write their
    // out-parameters.
    unsafe {
        sys::napi_is_typedarray(env, v, &mut yes);
        if yes {
            let mut ty = 0;
            let mut off = 0;
            sys::napi_get_typedarray_info(
                env,
                v,
                &mut ty,
                &mut len,
                &mut data,
                &mut buffer,
                &mut off,
            );
            if ty != sys::TypedarrayType::uint8_array
                && ty != sys::TypedarrayType::uint8_clamped_array
                && ty != sys::TypedarrayType::int8_array
            {
                return Err(Fail::new(
                    Code::InvalidArgument,
                    format!("{what} must be a Uint8Array or Buffer, got another typed array"),
                ));
            }
        } else {
            sys::napi_is_arraybuffer(env, v, &mut yes);
            if yes {
                buffer = v;
                sys::napi_get_arraybuffer_info(env, v, &mut data, &mut len);
            } else {
                sys::napi_is_dataview(env, v, &mut yes);
                if !yes {
                    return Err(invalid(what, "a Uint8Array or Buffer", env, v));
                }
                let mut off = 0;
                sys::napi_get_dataview_info(env, v, &mut len, &mut data, &mut buffer, &mut off);
            }
        }
    }
    if !buffer.is_null() && is_detached(env, buffer) {
        return Err(Fail::new(
            Code::InvalidArgument,
            format!(
                "{what} is a detached ArrayBuffer (or a view of one): its memory was transferred \
                 or freed, so it has no bytes"
            ),
        ));
    }
    if len == 0 || data.is_null() {
        return Ok((ptr::null_mut(), 0));
    }
    Ok((data.cast::<u8>(), len))
}

/// 13 register values from a BigUint64Array or an array of bigints (or safe integers). Fewer
/// than 13 values set the first registers only.
pub(crate) fn to_registers(env: RawEnv, v: Val, what: &str) -> Res<Vec<u64>> {
    let mut yes = false;
    // SAFETY (all calls below): `v` is a live value of this env.
    unsafe { sys::napi_is_typedarray(env, v, &mut yes) };
    if yes {
        let mut ty = 0;
        let mut len = 0usize;
        let mut data: *mut c_void = ptr::null_mut();
        let mut ab = ptr::null_mut();
        let mut off = 0;
        unsafe {
            sys::napi_get_typedarray_info(env, v, &mut ty, &mut len, &mut data, &mut ab, &mut off)
        };
        if ty != sys::TypedarrayType::biguint64_array && ty != sys::TypedarrayType::bigint64_array {
            return Err(Fail::new(
                Code::InvalidArgument,
                format!("{what} must be a BigUint64Array or an array of bigints"),
            ));
        }
        check_register_count(what, len)?;
        let mut out = vec![0u64; len];
        if len > 0 {
            // SAFETY: the typed array has `len` 8-byte elements at `data` (possibly unaligned
            // only in theory; copy bytewise).
            unsafe {
                ptr::copy_nonoverlapping(data.cast::<u8>(), out.as_mut_ptr().cast::<u8>(), len * 8)
            };
        }
        return Ok(out);
    }
    unsafe { sys::napi_is_array(env, v, &mut yes) };
    if !yes {
        return Err(invalid(
            what,
            "a BigUint64Array or an array of bigints",
            env,
            v,
        ));
    }
    let mut len = 0u32;
    unsafe { sys::napi_get_array_length(env, v, &mut len) };
    check_register_count(what, len as usize)?;
    let mut out = Vec::with_capacity(len as usize);
    for i in 0..len {
        let mut e = ptr::null_mut();
        check(
            env,
            unsafe { sys::napi_get_element(env, v, i, &mut e) },
            "napi_get_element",
        )?;
        out.push(to_u64(env, e, &format!("{what}[{i}]"))?);
    }
    Ok(out)
}

fn check_register_count(what: &str, len: usize) -> Res<()> {
    if len > pvm_core::NUM_REGISTERS {
        return Err(Fail::new(
            Code::InvalidArgument,
            format!("{what} has {len} values, but the PVM has 13 registers"),
        ));
    }
    Ok(())
}

/// After writing `len` bytes through the data pointer that Node-API gave for the JS-owned
/// ArrayBuffer or view `v`: nothing to do natively; in the wasm build that pointer is emnapi's
/// copy in wasm memory, copied back into `v` here.
pub(crate) fn wrote(env: RawEnv, v: Val, len: usize) {
    #[cfg(target_family = "wasm")]
    {
        let mut v = v;
        // SAFETY: `v` is a live ArrayBuffer or view of this env with at least `len` bytes.
        unsafe { wasm::emnapi_sync_memory(env, false, &mut v, 0, len) };
    }
    #[cfg(not(target_family = "wasm"))]
    let _ = (env, v, len);
}

/// The wasm build's memory views (emnapi).
#[cfg(target_family = "wasm")]
mod wasm {
    use super::*;

    extern "C" {
        /// emnapi: a typed array (`typedarray_type` 1 = Uint8Array) over wasm memory.
        pub(super) fn emnapi_create_memory_view(
            env: RawEnv,
            typedarray_type: i32,
            external_data: *mut c_void,
            byte_length: usize,
            finalize_cb: sys::napi_finalize,
            finalize_hint: *mut c_void,
            result: *mut Val,
        ) -> sys::napi_status;
        /// emnapi: copies between a JS-owned buffer and its copy in wasm memory.
        pub(super) fn emnapi_sync_memory(
            env: RawEnv,
            js_to_wasm: bool,
            arraybuffer_or_view: *mut Val,
            byte_offset: usize,
            length: usize,
        ) -> sys::napi_status;
    }

    /// The buffer (the wasm memory) and byte offset of a view made by `external_arraybuffer`;
    /// an ArrayBuffer itself at offset 0.
    pub(super) fn view_buffer(env: RawEnv, view: Val) -> Res<(Val, usize)> {
        let mut is_view = false;
        // SAFETY: `view` is a live value of this env.
        unsafe { sys::napi_is_typedarray(env, view, &mut is_view) };
        if !is_view {
            return Ok((view, 0));
        }
        let mut ty = 0;
        let mut len = 0;
        let mut data = ptr::null_mut();
        let mut ab = ptr::null_mut();
        let mut off = 0;
        // SAFETY: `view` is a live value of this env; a non-view fails the call.
        let s = unsafe {
            sys::napi_get_typedarray_info(
                env, view, &mut ty, &mut len, &mut data, &mut ab, &mut off,
            )
        };
        check(env, s, "napi_get_typedarray_info")?;
        Ok((ab, off))
    }
}

/// Whether the env can no longer run JavaScript (its worker is being terminated, or the env is
/// shutting down). Node refuses property writes then (`NAPI_PREAMBLE` checks
/// `can_call_into_js()`, which turns false as soon as `worker.terminate()` is called), so this
/// writes one property of a fresh object in a handle scope of its own.
pub(crate) fn env_stopping(env: RawEnv) -> bool {
    let mut scope = ptr::null_mut();
    // SAFETY: scopes are opened and closed in pairs on this thread; the object is local to it.
    unsafe {
        if sys::napi_open_handle_scope(env, &mut scope) != sys::Status::napi_ok {
            return true;
        }
        let mut obj = ptr::null_mut();
        let stopping = sys::napi_create_object(env, &mut obj) != sys::Status::napi_ok
            || sys::napi_set_named_property(env, obj, c"x".as_ptr(), obj) != sys::Status::napi_ok;
        sys::napi_close_handle_scope(env, scope);
        stopping
    }
}
