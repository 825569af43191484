//! PVM RAM (GP 4.7, A.4): 4 KiB pages over the 32-bit address space, each inaccessible,
//! read-only or read-write. Addresses are taken mod 2^32.
//!
//! Representation: a flat table of 2^20 words, one per page, holding the address of the page's
//! storage with the access bits in the low bits (0 = unmapped). The table is allocated zeroed (so
//! the OS maps it lazily) and a guest load or store on the fast path is one table load, one bit
//! test and the access itself. Mapping is lazy: a page that was never written points at a shared
//! static zero page (readable on the fast path, never writable through it) and gets storage of its
//! own on its first write, so instances are cheap to create and memory is proportional to the
//! pages actually written. Page storage is boxed and never moves while mapped, which lets the
//! bindings expose zero-copy views of it (`page_ptr` materialises the page first).
//!
//! Pages below 2^16 can never be mapped: GP A.4 makes every access there a panic "regardless of
//! the apparent (in)accessibility", and refusing to map them keeps that rule in one place.

use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use thiserror::Error;

/// Z_P: the PVM page size.
pub const PAGE_SIZE: u32 = 4096;
/// Accesses to addresses below this always panic (GP A.4).
pub const MIN_ADDRESS: u32 = 1 << 16;
const PAGE_COUNT: usize = 1 << 20;
const READ: usize = 1;
const WRITE: usize = 2;
/// Writable, but not yet backed by storage of its own: the entry points at the shared zero page
/// and the first write materialises the page (through the store slow path).
const LAZY: usize = 4;
const BITS: usize = READ | WRITE | LAZY;

/// Access of one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Inaccessible (∅).
    None,
    /// Readable (R).
    Read,
    /// Readable and writable (W).
    Write,
}

impl Access {
    fn bits(self) -> usize {
        match self {
            Access::None => 0,
            Access::Read => READ,
            Access::Write => READ | WRITE,
        }
    }

    /// The bits of a page without storage of its own (pointing at the zero page).
    fn lazy_bits(self) -> usize {
        match self {
            Access::None => 0,
            Access::Read => READ,
            Access::Write => READ | LAZY,
        }
    }
}

/// Why a guest access failed: GP ε^μ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trap {
    /// The lowest inaccessible address is below 2^16.
    Panic,
    /// Page fault at this page address (the lowest inaccessible page).
    Fault(u32),
}

/// Errors of the host-side memory API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum MemoryError {
    /// A checked access touched an inaccessible (or, for writes, read-only) address.
    #[error("memory at address {address:#x} is not {}", if *.write { "writable" } else { "readable" })]
    Inaccessible {
        /// The lowest offending address.
        address: u32,
        /// Whether the access was a write.
        write: bool,
    },
    /// An unchecked access touched a page with no storage.
    #[error("memory at address {address:#x} is not mapped")]
    Unmapped {
        /// The lowest offending address.
        address: u32,
    },
    /// A range reaches below 2^16, where pages can never be mapped.
    #[error(
        "address range starting at {address:#x} reaches below 0x10000, which is never accessible"
    )]
    BelowMinimum {
        /// Start of the range.
        address: u32,
    },
    /// A range runs past 2^32.
    #[error(
        "range at {address:#x} of length {length} runs past the end of the 32-bit address space"
    )]
    OutOfRange {
        /// Start of the range.
        address: u64,
        /// Length of the range.
        length: u64,
    },
}

/// Page storage. The alignment only has to leave the access bits free in the pointer; 64 keeps
/// each page on cache-line boundaries without the allocator overhead of 4096-byte alignment.
#[repr(C, align(64))]
struct Page([u8; PAGE_SIZE as usize]);

/// The storage every mapped-but-never-written page reads from. Nothing ever writes through it:
/// entries pointing at it never carry the WRITE bit, and every mutable access materialises a page
/// of its own first.
static ZERO_PAGE: Page = Page([0; PAGE_SIZE as usize]);

fn zero_page_addr() -> usize {
    (&raw const ZERO_PAGE).expose_provenance()
}

/// The page pointer stored in a table entry (whose provenance was exposed when the page was
/// allocated; the low bits hold the access).
#[inline(always)]
fn page_ptr(entry: usize) -> *mut Page {
    std::ptr::with_exposed_provenance_mut(entry & !BITS)
}

/// The page table, owned through a raw pointer rather than a `Box`: the interpreter keeps a copy
/// of the base pointer in a register for its fast paths (see [`GuestTable`]) while the slow
/// paths still go through `&mut Memory`. With a `Box`, every use of the box would invalidate that
/// copy (a `Box` asserts uniqueness); with a raw pointer, references made for individual
/// accesses are short-lived children and the copy stays valid.
struct Table(NonNull<[usize; PAGE_COUNT]>);

// SAFETY: `Table` owns its allocation exactly like the `Box` it was made from; access follows
// `&`/`&mut` of the owning `Memory`.
unsafe impl Send for Table {}
// SAFETY: as above; `&Table` only gives shared reads.
unsafe impl Sync for Table {}

impl Table {
    fn from_box(table: Box<[usize; PAGE_COUNT]>) -> Table {
        Table(NonNull::from(Box::leak(table)))
    }

    /// Gives the allocation back as a `Box`.
    ///
    /// # Safety
    /// `self` must not be used afterwards (it is consumed; no copies of it exist).
    unsafe fn into_box(self) -> Box<[usize; PAGE_COUNT]> {
        // SAFETY: the pointer came from `Box::leak` in `from_box` and is given back once.
        unsafe { Box::from_raw(self.0.as_ptr()) }
    }
}

impl std::ops::Deref for Table {
    type Target = [usize; PAGE_COUNT];
    #[inline(always)]
    fn deref(&self) -> &Self::Target {
        // SAFETY: the allocation is live and owned by this `Table`; the borrow is tied to `&self`.
        unsafe { self.0.as_ref() }
    }
}

impl std::ops::DerefMut for Table {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut Self::Target {
        // SAFETY: as above, and `&mut self` makes this the only reference.
        unsafe { self.0.as_mut() }
    }
}

/// A copy of a memory's page-table pointer for the interpreter's guest load/store fast paths.
/// Keeping it in a local lets the compiler hold it in a register: read through `&mut Memory`, it
/// had to be reloaded after every guest store (which might, as far as the compiler knows, have
/// written the `Memory` itself), an extra load on the critical path of every guest access that
/// made store-heavy guests up to 2× slower.
#[derive(Clone, Copy)]
pub(crate) struct GuestTable(*const usize);

impl GuestTable {
    /// Guest load fast path: `None` when the slow path must decide (not readable, crosses a page).
    ///
    /// # Safety
    /// The `Memory` this came from must still be alive (its table never moves while it is).
    #[inline(always)]
    pub(crate) unsafe fn load<const N: usize>(self, address: u32) -> Option<[u8; N]> {
        let off = (address & (PAGE_SIZE - 1)) as usize;
        // SAFETY: the table has 2^20 entries and `address >> 12 < 2^20`; the caller keeps the
        // table alive.
        let e = unsafe { *self.0.add((address >> 12) as usize) };
        if e & READ != 0 && off <= PAGE_SIZE as usize - N {
            let ptr = page_ptr(e) as *const u8;
            // SAFETY: the entry is readable, so it holds a live page pointer; off + N <= 4096
            // keeps the read inside that page. `read_unaligned` has no alignment requirement.
            return Some(unsafe { ptr.add(off).cast::<[u8; N]>().read_unaligned() });
        }
        None
    }

    /// Guest store fast path: `false` when the slow path must do it (not writable yet, crosses a
    /// page).
    ///
    /// # Safety
    /// As for [`GuestTable::load`], and the caller must hold the `Memory` exclusively (the page
    /// written is owned by it).
    #[inline(always)]
    pub(crate) unsafe fn store<const N: usize>(self, address: u32, bytes: [u8; N]) -> bool {
        let off = (address & (PAGE_SIZE - 1)) as usize;
        // SAFETY: as in `load`.
        let e = unsafe { *self.0.add((address >> 12) as usize) };
        if e & WRITE != 0 && off <= PAGE_SIZE as usize - N {
            let ptr = page_ptr(e) as *mut u8;
            // SAFETY: the entry is writable, so it holds a live page pointer owned by the
            // Memory, which the caller holds exclusively; off + N <= 4096 keeps the write inside.
            unsafe { ptr.add(off).cast::<[u8; N]>().write_unaligned(bytes) };
            return true;
        }
        false
    }
}

/// The RAM of one PVM instance.
pub struct Memory {
    /// Dropped explicitly (returned to [`TABLE_POOL`]) in `Drop`.
    table: ManuallyDrop<Table>,
    /// Which groups of 64 pages may hold mapped pages (a page is mapped iff its entry has a
    /// pointer, to its storage or to the zero page): the table itself is the set of mapped pages,
    /// this summary lets `pages()` and `drop` visit it without scanning 2^20 entries. A bit may
    /// stay set after its group was unmapped again.
    groups: Box<[u64; GROUP_WORDS]>,
    /// Number of mapped pages.
    count: usize,
}

/// Pages per summary bit.
const GROUP: usize = 64;
/// Words of the summary bitmap: one bit per group of 64 pages.
const GROUP_WORDS: usize = PAGE_COUNT / GROUP / 64;

/// The groups marked in a summary bitmap, ascending.
fn marked_groups(groups: &[u64; GROUP_WORDS]) -> impl Iterator<Item = usize> + '_ {
    groups.iter().enumerate().flat_map(|(w, &bits)| {
        let mut bits = bits;
        std::iter::from_fn(move || {
            (bits != 0).then(|| {
                let group = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                group
            })
        })
    })
}

/// Whether an entry maps its page (with any access).
#[inline(always)]
fn is_mapped(e: usize) -> bool {
    e & !BITS != 0
}

impl Default for Memory {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory")
            .field("pages", &self.count)
            .finish()
    }
}

impl Clone for Memory {
    fn clone(&self) -> Self {
        let mut m = Memory::new();
        for p in self.mapped_pages() {
            let e = self.table[p as usize];
            if self.is_backed(e) {
                // (`materialize` records the page as mapped.)
                let new = m.materialize(p);
                new.0
                    .copy_from_slice(self.page_bytes(p).expect("mapped page"));
                m.table[p as usize] = (m.table[p as usize] & !BITS) | (e & BITS);
            } else {
                m.note_mapped(p);
                m.table[p as usize] = e;
            }
        }
        debug_assert_eq!(m.count, self.count);
        m
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        for group in marked_groups(&self.groups) {
            for p in group * GROUP..(group + 1) * GROUP {
                let e = self.table[p];
                if self.is_backed(e) {
                    // SAFETY: a backed entry holds the pointer produced by `Box::into_raw` in
                    // `materialize`, freed exactly once (here or in `unmap`, which also zeroes
                    // the entry).
                    drop(unsafe { Box::from_raw(page_ptr(e)) });
                }
                self.table[p] = 0;
            }
        }
        // Every entry is zero again (entries are only set in groups marked in `groups`): keep
        // the table for the next Memory instead of having the allocator zero 8 MiB again.
        // SAFETY: `drop` runs once and `self.table` is not used after this line; no `GuestTable`
        // copy outlives the `&mut` borrow that made it.
        let table = unsafe { ManuallyDrop::take(&mut self.table).into_box() };
        if let Ok(mut pool) = TABLE_POOL.lock() {
            if pool.len() < TABLE_POOL_SIZE {
                pool.push(table);
            }
        }
    }
}

/// Page tables of dropped memories, all entries zero, reused by [`Memory::new`]. Allocating a
/// fresh zeroed 8 MiB table costs ~0.5 ms once the allocator serves it from its heap (glibc
/// raises its mmap threshold after the first large free); a pooled table costs nothing.
static TABLE_POOL: std::sync::Mutex<Vec<Box<[usize; PAGE_COUNT]>>> =
    std::sync::Mutex::new(Vec::new());
/// At most this many tables (8 MiB each) are kept.
const TABLE_POOL_SIZE: usize = 4;

/// Checks that [address, address + length) lies inside the 32-bit space and returns its page range.
fn page_range(address: u64, length: u64) -> Result<std::ops::Range<u32>, MemoryError> {
    let end = address.checked_add(length).filter(|e| *e <= 1 << 32);
    let Some(end) = end else {
        return Err(MemoryError::OutOfRange { address, length });
    };
    let first = (address / PAGE_SIZE as u64) as u32;
    let last = end.div_ceil(PAGE_SIZE as u64) as u32;
    Ok(first..last)
}

impl Memory {
    /// Empty memory: every page inaccessible.
    pub fn new() -> Self {
        let table = TABLE_POOL
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .unwrap_or_else(|| {
                let table: Box<[usize]> = vec![0usize; PAGE_COUNT].into_boxed_slice();
                table.try_into().expect("length is PAGE_COUNT")
            });
        Memory {
            table: ManuallyDrop::new(Table::from_box(table)),
            groups: Box::new([0; GROUP_WORDS]),
            count: 0,
        }
    }

    /// Records that `page` is about to get a table entry (before the entry is written).
    #[inline(always)]
    fn note_mapped(&mut self, page: u32) {
        if !is_mapped(self.table[page as usize]) {
            self.count += 1;
        }
        let group = page as usize / GROUP;
        self.groups[group / 64] |= 1 << (group % 64);
    }

    /// Mapped page indices, ascending.
    fn mapped_pages(&self) -> impl Iterator<Item = u32> + '_ {
        marked_groups(&self.groups).flat_map(move |g| {
            (g * GROUP..(g + 1) * GROUP)
                .filter(move |&p| is_mapped(self.table[p]))
                .map(|p| p as u32)
        })
    }

    /// Whether an entry points at storage of its own (not unmapped, not the zero page).
    fn is_backed(&self, e: usize) -> bool {
        let addr = e & !BITS;
        addr != 0 && addr != zero_page_addr()
    }

    /// Gives a page storage of its own (zero-filled) if it has none, keeping its access (a lazy
    /// writable page becomes an ordinary writable one), and returns it.
    fn materialize(&mut self, page: u32) -> &mut Page {
        let e = self.table[page as usize];
        let ptr = if self.is_backed(e) {
            page_ptr(e)
        } else {
            let bits = if e & LAZY != 0 {
                READ | WRITE
            } else {
                e & (READ | WRITE)
            };
            let ptr = Box::into_raw(Box::new(Page([0; PAGE_SIZE as usize])));
            self.note_mapped(page);
            self.table[page as usize] = ptr.expose_provenance() | bits;
            ptr
        };
        // SAFETY: `ptr` is a live page owned by this Memory (just allocated or found in the
        // table, never the shared zero page); the returned borrow is tied to `&mut self`, so no
        // other reference exists.
        unsafe { &mut *ptr }
    }

    /// Makes the pages covering [address, address + length) accessible with `access`. New pages
    /// read as zeros and take no storage until first written; existing contents are kept.
    /// `Access::None` keeps the contents but makes them inaccessible to the guest.
    pub fn map(&mut self, address: u32, length: u32, access: Access) -> Result<(), MemoryError> {
        self.map_range(address as u64, length as u64, access)
    }

    /// Like [`Memory::map`] with a 64-bit range (which must end at or below 2^32).
    pub fn map_range(
        &mut self,
        address: u64,
        length: u64,
        access: Access,
    ) -> Result<(), MemoryError> {
        if length == 0 {
            return Ok(());
        }
        if address < MIN_ADDRESS as u64 {
            return Err(MemoryError::BelowMinimum {
                address: address as u32,
            });
        }
        let zero = zero_page_addr();
        for p in page_range(address, length)? {
            let e = self.table[p as usize];
            self.note_mapped(p);
            self.table[p as usize] = if self.is_backed(e) {
                (e & !BITS) | access.bits()
            } else {
                zero | access.lazy_bits()
            };
        }
        Ok(())
    }

    /// Removes the pages covering [address, address + length) and frees their storage.
    pub fn unmap(&mut self, address: u32, length: u32) -> Result<(), MemoryError> {
        if length == 0 {
            return Ok(());
        }
        for p in page_range(address as u64, length as u64)? {
            let e = self.table[p as usize];
            if is_mapped(e) {
                self.table[p as usize] = 0;
                self.count -= 1;
                if self.is_backed(e) {
                    // SAFETY: a backed entry holds a pointer from `Box::into_raw` that has not
                    // been freed; the page is now removed from the table.
                    drop(unsafe { Box::from_raw(page_ptr(e)) });
                }
            }
        }
        Ok(())
    }

    /// Fills the mapped pages covering the range with zeros (access unchanged; unmapped pages are
    /// skipped).
    pub fn zero(&mut self, address: u32, length: u32) -> Result<(), MemoryError> {
        if length == 0 {
            return Ok(());
        }
        for p in page_range(address as u64, length as u64)? {
            if self.is_backed(self.table[p as usize]) {
                self.materialize(p).0.fill(0);
            }
        }
        Ok(())
    }

    /// The access of the page holding `address`.
    pub fn access(&self, address: u32) -> Access {
        let e = self.table[(address >> 12) as usize];
        if e & (WRITE | LAZY) != 0 {
            Access::Write
        } else if e & READ != 0 {
            Access::Read
        } else {
            Access::None
        }
    }

    /// Whether the page is mapped (with any access, possibly None).
    pub fn is_allocated(&self, page: u32) -> bool {
        self.table
            .get(page as usize)
            .is_some_and(|e| e & !BITS != 0)
    }

    /// The contents of a mapped page (whatever its access).
    pub fn page_bytes(&self, page: u32) -> Option<&[u8; PAGE_SIZE as usize]> {
        let e = *self.table.get(page as usize)?;
        if e & !BITS == 0 {
            return None;
        }
        // SAFETY: a non-zero entry points to a live page owned by this Memory or to the static
        // zero page; the shared borrow is tied to `&self`, and mutation needs `&mut self`.
        Some(unsafe { &(*page_ptr(e)).0 })
    }

    /// Mutable contents of a mapped page (whatever its access); a page that was never written
    /// gets storage of its own first.
    pub fn page_bytes_mut(&mut self, page: u32) -> Option<&mut [u8; PAGE_SIZE as usize]> {
        let e = *self.table.get(page as usize)?;
        if e & !BITS == 0 {
            return None;
        }
        Some(&mut self.materialize(page).0)
    }

    /// Raw pointer to a page's storage, stable until the page is unmapped or the Memory dropped.
    /// For zero-copy views in the bindings.
    pub fn page_ptr(&mut self, page: u32) -> Option<*mut u8> {
        self.page_bytes_mut(page).map(|p| p.as_mut_ptr())
    }

    /// Mapped page indices, ascending, with their access.
    pub fn pages(&self) -> impl Iterator<Item = (u32, Access)> + '_ {
        self.mapped_pages().map(|p| (p, self.access(p << 12)))
    }

    /// Number of pages with storage of their own (written at least once), for memory accounting.
    pub fn backed_pages(&self) -> usize {
        self.mapped_pages()
            .filter(|&p| self.is_backed(self.table[p as usize]))
            .count()
    }

    /// Finds the lowest address of `[address, address + len)` (mod 2^32) that is not accessible
    /// for the given kind of access.
    fn first_inaccessible(&self, address: u32, len: u32, write: bool) -> Option<u32> {
        let need = if write { WRITE | LAZY } else { READ };
        let mut lowest: Option<u32> = None;
        let mut i = 0u32;
        while i < len {
            let a = address.wrapping_add(i);
            let e = self.table[(a >> 12) as usize];
            let in_page = (PAGE_SIZE - (a & (PAGE_SIZE - 1))).min(len - i);
            if e & need == 0 {
                lowest = Some(lowest.map_or(a, |l| l.min(a)));
            }
            i += in_page;
        }
        lowest
    }

    /// Guest read (GP ε^μ rules) into `buf`.
    pub fn read_guest(&self, address: u32, buf: &mut [u8]) -> Result<(), Trap> {
        if let Some(a) = self.first_inaccessible(address, buf.len() as u32, false) {
            return Err(trap_at(a));
        }
        self.copy_out(address, buf);
        Ok(())
    }

    /// Guest write (GP ε^μ rules).
    pub fn write_guest(&mut self, address: u32, data: &[u8]) -> Result<(), Trap> {
        if let Some(a) = self.first_inaccessible(address, data.len() as u32, true) {
            return Err(trap_at(a));
        }
        self.copy_in(address, data);
        Ok(())
    }

    fn copy_out(&self, address: u32, buf: &mut [u8]) {
        let mut i = 0usize;
        while i < buf.len() {
            let a = address.wrapping_add(i as u32);
            let off = (a & (PAGE_SIZE - 1)) as usize;
            let n = (PAGE_SIZE as usize - off).min(buf.len() - i);
            match self.page_bytes(a >> 12) {
                Some(p) => buf[i..i + n].copy_from_slice(&p[off..off + n]),
                None => buf[i..i + n].fill(0),
            }
            i += n;
        }
    }

    fn copy_in(&mut self, address: u32, data: &[u8]) {
        let mut i = 0usize;
        while i < data.len() {
            let a = address.wrapping_add(i as u32);
            let off = (a & (PAGE_SIZE - 1)) as usize;
            let n = (PAGE_SIZE as usize - off).min(data.len() - i);
            if let Some(p) = self.page_bytes_mut(a >> 12) {
                p[off..off + n].copy_from_slice(&data[i..i + n]);
            }
            i += n;
        }
    }

    /// Host read as the guest sees it: fails on any unreadable byte.
    pub fn read(&self, address: u32, buf: &mut [u8]) -> Result<(), MemoryError> {
        check_len(address, buf.len())?;
        match self.first_inaccessible(address, buf.len() as u32, false) {
            Some(a) => Err(MemoryError::Inaccessible {
                address: a,
                write: false,
            }),
            None => {
                self.copy_out(address, buf);
                Ok(())
            }
        }
    }

    /// Host write as the guest sees it: fails on any byte that is not writable.
    pub fn write(&mut self, address: u32, data: &[u8]) -> Result<(), MemoryError> {
        check_len(address, data.len())?;
        match self.first_inaccessible(address, data.len() as u32, true) {
            Some(a) => Err(MemoryError::Inaccessible {
                address: a,
                write: true,
            }),
            None => {
                self.copy_in(address, data);
                Ok(())
            }
        }
    }

    /// Host read ignoring access: every byte must lie in a page with storage.
    pub fn read_unchecked(&self, address: u32, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.check_allocated(address, buf.len())?;
        self.copy_out(address, buf);
        Ok(())
    }

    /// Host write ignoring write protection (initialising memory): every byte must lie in a page
    /// with storage.
    pub fn write_unchecked(&mut self, address: u32, data: &[u8]) -> Result<(), MemoryError> {
        self.check_allocated(address, data.len())?;
        self.copy_in(address, data);
        Ok(())
    }

    fn check_allocated(&self, address: u32, len: usize) -> Result<(), MemoryError> {
        check_len(address, len)?;
        if len == 0 {
            return Ok(());
        }
        for p in page_range(address as u64, len as u64)? {
            if !self.is_allocated(p) {
                return Err(MemoryError::Unmapped {
                    address: (p << 12).max(address),
                });
            }
        }
        Ok(())
    }

    /// Whether every byte of the range is readable (`write = false`) or writable.
    pub fn is_accessible(&self, address: u32, len: u64, write: bool) -> bool {
        if len == 0 {
            return true;
        }
        if len > 1 << 32 {
            return false;
        }
        let mut i = 0u64;
        let need = if write { WRITE | LAZY } else { READ };
        while i < len {
            let a = (address as u64 + i) as u32;
            if self.table[(a >> 12) as usize] & need == 0 {
                return false;
            }
            i += (PAGE_SIZE - (a & (PAGE_SIZE - 1))) as u64;
        }
        true
    }

    // ---- guest fast paths used by the interpreter ----

    /// The page table for [`GuestTable`]'s fast paths.
    #[inline(always)]
    pub(crate) fn guest_table(&self) -> GuestTable {
        GuestTable(self.table.0.as_ptr() as *const usize)
    }

    /// A guest load (GP A.4 rules): the fast path, else the slow path. (The interpreter inlines
    /// the same two steps with its own copy of the table pointer.)
    #[cfg(test)]
    pub(crate) fn load<const N: usize>(&self, address: u32) -> Result<[u8; N], Trap> {
        // SAFETY: the table belongs to `self`, alive for this call.
        match unsafe { self.guest_table().load::<N>(address) } {
            Some(bytes) => Ok(bytes),
            None => self.load_slow::<N>(address),
        }
    }

    /// The guest load slow path (any access, with the GP fault rules).
    #[cold]
    pub(crate) fn load_slow<const N: usize>(&self, address: u32) -> Result<[u8; N], Trap> {
        let mut buf = [0u8; N];
        self.read_guest(address, &mut buf)?;
        Ok(buf)
    }

    /// A guest store (GP A.4 rules): the fast path, else the slow path.
    #[cfg(test)]
    pub(crate) fn store<const N: usize>(
        &mut self,
        address: u32,
        bytes: [u8; N],
    ) -> Result<(), Trap> {
        // SAFETY: the table belongs to `self`, which is held exclusively for this call.
        if unsafe { self.guest_table().store::<N>(address, bytes) } {
            return Ok(());
        }
        self.store_slow(address, &bytes)
    }

    /// The guest store slow path (any access, with the GP fault rules; materialises lazy pages).
    #[cold]
    pub(crate) fn store_slow(&mut self, address: u32, bytes: &[u8]) -> Result<(), Trap> {
        self.write_guest(address, bytes)
    }
}

/// GP ε^μ for the lowest inaccessible address `a`.
fn trap_at(a: u32) -> Trap {
    if a < MIN_ADDRESS {
        Trap::Panic
    } else {
        Trap::Fault(a & !(PAGE_SIZE - 1))
    }
}

fn check_len(address: u32, len: usize) -> Result<(), MemoryError> {
    // The guest-access helpers count lengths in u32; a 4 GiB range can never be accessible anyway
    // (the pages below 2^16 never are).
    if len as u64 > u32::MAX as u64 {
        return Err(MemoryError::OutOfRange {
            address: address as u64,
            length: len as u64,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_read_write_and_protection() {
        let mut m = Memory::new();
        m.map(0x20000, 4096, Access::Write).unwrap();
        m.map(0x21000, 4096, Access::Read).unwrap();
        m.write(0x20ffe, &[1, 2]).unwrap();
        let mut b = [0u8; 2];
        m.read(0x20ffe, &mut b).unwrap();
        assert_eq!(b, [1, 2]);
        assert_eq!(
            m.write(0x20fff, &[1, 2]),
            Err(MemoryError::Inaccessible {
                address: 0x21000,
                write: true
            })
        );
        m.write_unchecked(0x21000, &[9]).unwrap();
        assert_eq!(m.load::<1>(0x21000), Ok([9]));
        assert_eq!(m.store::<1>(0x21000, [1]), Err(Trap::Fault(0x21000)));
        assert_eq!(m.load::<4>(0x21ffe), Err(Trap::Fault(0x22000)));
        assert_eq!(m.load::<1>(0x100), Err(Trap::Panic));
        assert_eq!(
            m.map(0xf000, 0x2000, Access::Read),
            Err(MemoryError::BelowMinimum { address: 0xf000 })
        );
    }

    #[test]
    fn wrapping_access_below_2_16_panics() {
        let mut m = Memory::new();
        m.map(0xffff_f000, 4096, Access::Write).unwrap();
        assert_eq!(m.load::<4>(0xffff_fffe), Err(Trap::Panic));
        assert_eq!(m.load::<2>(0xffff_fffe), Ok([0, 0]));
    }

    #[test]
    fn fault_reports_lowest_inaccessible_page() {
        let mut m = Memory::new();
        m.map(0x30000, 4096, Access::Read).unwrap();
        // a write spanning a read-only page and an unmapped page faults at the read-only one
        assert_eq!(m.store::<8>(0x30ffc, [0; 8]), Err(Trap::Fault(0x30000)));
    }

    #[test]
    fn unmap_and_clone() {
        let mut m = Memory::new();
        m.map(0x40000, 8192, Access::Write).unwrap();
        m.write(0x40010, &[7]).unwrap();
        let c = m.clone();
        m.unmap(0x40000, 4096).unwrap();
        assert!(!m.is_allocated(0x40));
        let mut b = [0u8];
        c.read(0x40010, &mut b).unwrap();
        assert_eq!(b, [7]);
        assert_eq!(c.pages().count(), 2);
    }

    #[test]
    fn mapped_pages_take_storage_only_when_written() {
        let mut m = Memory::new();
        m.map(0x100000, 64 * 4096, Access::Write).unwrap();
        assert_eq!((m.pages().count(), m.backed_pages()), (64, 0));
        assert_eq!(m.load::<8>(0x100ff8), Ok([0; 8]));
        assert_eq!(m.access(0x100000), Access::Write);
        assert!(m.is_accessible(0x100000, 64 * 4096, true));
        assert_eq!(m.store::<4>(0x101ffe, [1, 2, 3, 4]), Ok(())); // crosses into the next page
        assert_eq!(m.backed_pages(), 2);
        assert_eq!(m.load::<4>(0x101ffe), Ok([1, 2, 3, 4]));
        // read-only lazy pages can be initialised by the host, never written by the guest
        m.map(0x200000, 4096, Access::Read).unwrap();
        assert_eq!(m.store::<1>(0x200000, [1]), Err(Trap::Fault(0x200000)));
        m.write_unchecked(0x200000, &[7]).unwrap();
        assert_eq!(
            (m.load::<1>(0x200000), m.access(0x200000)),
            (Ok([7]), Access::Read)
        );
        // a clone keeps lazy pages lazy and copies backed ones
        let c = m.clone();
        assert_eq!((c.pages().count(), c.backed_pages()), (65, 3));
        assert_eq!(c.load::<4>(0x101ffe), Ok([1, 2, 3, 4]));
        // changing access keeps contents; unmapping frees
        m.map(0x101000, 4096, Access::Read).unwrap();
        assert_eq!(m.load::<2>(0x102000), Ok([3, 4]));
        m.unmap(0x100000, 64 * 4096).unwrap();
        assert_eq!((m.pages().count(), m.backed_pages()), (1, 1));
    }

    #[test]
    fn lengths_of_4_gib_or_more_are_rejected() {
        let mut m = Memory::new();
        m.map(0x20000, 4096, Access::Write).unwrap();
        let huge = 1usize << 32;
        assert!(matches!(
            m.check_allocated(0x20000, huge),
            Err(MemoryError::OutOfRange { .. })
        ));
        assert!(check_len(0x20000, huge).is_err());
        assert!(!m.is_accessible(0x20000, 1 << 32, false));
    }

    #[test]
    fn reused_page_tables_start_empty() {
        for round in 0..(2 * TABLE_POOL_SIZE) {
            let mut m = Memory::new();
            assert_eq!(m.pages().count(), 0, "round {round}");
            assert_eq!(
                m.load::<1>(0x30000),
                Err(Trap::Fault(0x30000)),
                "round {round}"
            );
            m.map(0x30000, 3 * 4096, Access::Write).unwrap();
            m.store::<1>(0x31000, [9]).unwrap();
            m.map(0x40000, 4096, Access::None).unwrap();
        }
    }

    #[test]
    fn page_set_matches_a_model_under_random_map_unmap_write_and_clone() {
        use std::collections::BTreeMap;
        // Pages near group boundaries (64 pages) and the ends of the address space.
        let spots = [
            18u32, 63, 64, 127, 128, 4095, 4096, 0x8000, 0xfffc0, 0xfffff,
        ];
        let mut rng = 0x2545f4914f6cdd1du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut m = Memory::new();
        let mut model: BTreeMap<u32, Access> = BTreeMap::new();
        let accesses = [Access::None, Access::Read, Access::Write];
        let steps = if cfg!(miri) { 200 } else { 3000 };
        for step in 0..steps {
            let first = spots[next() as usize % spots.len()] - (next() % 3) as u32;
            let n = (1 + next() % 70) as u32;
            let n = n.min(0x100000 - first);
            match next() % 4 {
                0 | 1 => {
                    let access = accesses[next() as usize % 3];
                    m.map(first << 12, n << 12, access).unwrap();
                    for p in first..first + n {
                        model.insert(p, access);
                    }
                }
                2 => {
                    m.unmap(first << 12, n << 12).unwrap();
                    for p in first..first + n {
                        model.remove(&p);
                    }
                }
                _ => {
                    if let Some(bytes) = m.page_bytes_mut(first) {
                        bytes[7] = step as u8;
                    }
                }
            }
            let got: Vec<(u32, Access)> = m.pages().collect();
            let want: Vec<(u32, Access)> = model.iter().map(|(&p, &a)| (p, a)).collect();
            assert_eq!(got, want, "step {step}");
            assert_eq!(m.count, model.len());
            if step % 500 == 0 {
                let c = m.clone();
                assert_eq!(c.pages().collect::<Vec<_>>(), want);
                assert_eq!((c.count, c.backed_pages()), (m.count, m.backed_pages()));
            }
        }
    }
}
