//! PVM RAM (GP 4.7, A.4): 4 KiB pages over the 32-bit address space, each inaccessible,
//! read-only or read-write. Addresses are taken mod 2^32.
//!
//! Representation: a two-level page table. Each page's entry holds the address of its storage
//! with the access bits in the low bits (0 = unmapped); entries come in chunks of 512 pages,
//! allocated when a page in the chunk is first mapped, under a 2048-pointer top level whose
//! unallocated slots point at a shared all-unmapped chunk. A guest load or store on the fast path
//! is two dependent table loads, one bit test and the access itself. Mapping is lazy: a page that
//! was never written points at a shared static zero page (readable on the fast path, never
//! writable through it) and gets storage of its own on its first write, so instances are cheap
//! to create (about 25 KB for a standard program) and memory is proportional to the pages
//! actually written. Each chunk keeps bitmaps of its mapped, readable, writable and backed pages,
//! so that page-set questions (the heap size of `grow_heap`, a free range for `sbrk`, the pages
//! of the PVM hash) cost O(chunks) rather than O(pages) and never read a page that was never
//! written. Page storage is boxed and never moves while mapped, which lets the bindings expose
//! zero-copy views of it (`page_ptr` materialises the page first).
//!
//! Pages below 2^16 can never be mapped: GP A.4 makes every access there a panic "regardless of
//! the apparent (in)accessibility", and refusing to map them keeps that rule in one place.

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
/// The low bits of every entry with the WRITE bit: compiled code (`recompiler/codegen.rs`)
/// addresses a writable page as `entry - WRITABLE_BITS + offset` without masking, so an entry
/// with WRITE must have exactly these bits (checked in `set_entry`).
pub(crate) const WRITABLE_BITS: usize = READ | WRITE;

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
    /// A write needed storage for more pages than [`Memory::set_page_limit`] allows.
    #[error(
        "writing at {address:#x} needs a page of storage beyond the VM's memory limit of {limit} pages"
    )]
    PageLimit {
        /// The lowest page address of the write that has no storage yet.
        address: u32,
        /// The limit, in pages.
        limit: u64,
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

/// Whether an entry maps its page (with any access).
#[inline(always)]
fn is_mapped(e: usize) -> bool {
    e & !BITS != 0
}

/// Whether an entry points at storage of its own (not unmapped, not the zero page).
#[inline(always)]
fn is_backed(e: usize) -> bool {
    let addr = e & !BITS;
    addr != 0 && addr != zero_page_addr()
}

/// log2 of the pages per chunk of the page-set bitmaps.
const CHUNK_BITS: u32 = 9;
/// Pages per chunk: 512 (4 KiB of page table, 2 MiB of guest address space).
const CHUNK_PAGES: usize = 1 << CHUNK_BITS;
/// Chunks: 2048.
const CHUNKS: usize = PAGE_COUNT / CHUNK_PAGES;
/// Bitmap words per chunk.
const WORDS: usize = CHUNK_PAGES / 64;
/// Words of the allocated-chunk bitmap.
const CHUNK_WORDS: usize = CHUNKS / 64;

/// The page sets of one chunk of 512 pages: bitmaps of the pages that are mapped, readable (R or
/// W), writable (W, backed or lazy) and backed (storage of their own). They answer "which pages
/// are mapped / writable / hold data" in one bit test per page, or 64 pages per word, without
/// reading the page table, let alone the pages. Allocated when a page of the chunk is first
/// mapped, freed when its last page is unmapped.
struct Meta {
    mapped: [u64; WORDS],
    readable: [u64; WORDS],
    writable: [u64; WORDS],
    backed: [u64; WORDS],
    /// The number of bits set in `writable`, so that a fully writable chunk is recognised in O(1).
    writable_count: u32,
}

/// The page table: 2^20 entries (8 MiB of address space), one per page, mapped so that only the
/// parts that are written take memory. Owned through a raw pointer rather than a `Box`: the
/// interpreter keeps a copy of the base pointer in a register for its fast paths (see
/// [`GuestTable`]) while the slow paths still go through `&mut Memory`. With a `Box`, every use
/// of the box would invalidate that copy (a `Box` asserts uniqueness); with a raw pointer,
/// references made for individual accesses are short-lived children and the copy stays valid.
///
/// # Why not `alloc_zeroed`
/// A zeroed 8 MiB allocation is fresh `mmap` memory, free until touched, only while the
/// allocator decides to `mmap` it. glibc raises its mmap threshold to the size of every mmapped
/// block that is freed (up to 32 MiB), so after the first instance is dropped each new table
/// comes from the heap, where `calloc` must `memset` all 8 MiB: 0.5 ms per instance and the
/// whole table resident, for every live instance. On Unix the table is therefore mapped directly
/// (`mmap` of anonymous zero pages, `MAP_NORESERVE`): a 4 KiB page of the table, which covers
/// 2 MiB of guest memory, becomes resident when an entry in it is first written, so a standard
/// program's table costs 8 KiB (the low sections, and the stack with the arguments). Elsewhere
/// `alloc_zeroed` is used (on Windows large allocations are fresh zero pages too). Dropped
/// tables of which little was used go to a small pool (`TABLE_POOL`), all entries zero again.
struct Table(NonNull<[usize; PAGE_COUNT]>);

// SAFETY: `Table` owns its allocation exactly like a `Box`; access follows `&`/`&mut` of the
// owning `Memory`.
unsafe impl Send for Table {}
// SAFETY: as above; `&Table` only gives shared reads.
unsafe impl Sync for Table {}

#[cfg(unix)]
const TABLE_BYTES: usize = PAGE_COUNT * std::mem::size_of::<usize>();

impl Table {
    /// A table with every entry 0 (unmapped).
    fn new() -> Table {
        #[cfg(unix)]
        {
            // SAFETY: an anonymous private mapping at an address of the kernel's choosing
            // touches no existing memory; the result is checked before use.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    TABLE_BYTES,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            match NonNull::new(ptr as *mut [usize; PAGE_COUNT]) {
                Some(p) if ptr != libc::MAP_FAILED => Table(p),
                _ => std::alloc::handle_alloc_error(Self::layout()),
            }
        }
        #[cfg(not(unix))]
        {
            // SAFETY: the layout has a non-zero size.
            let ptr = unsafe { std::alloc::alloc_zeroed(Self::layout()) };
            match NonNull::new(ptr as *mut [usize; PAGE_COUNT]) {
                Some(p) => Table(p),
                None => std::alloc::handle_alloc_error(Self::layout()),
            }
        }
    }

    fn layout() -> std::alloc::Layout {
        std::alloc::Layout::new::<[usize; PAGE_COUNT]>()
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        #[cfg(unix)]
        // SAFETY: the mapping was made by `Table::new` with this length and is unmapped once;
        // no reference into it outlives the `Memory` that owns this table.
        unsafe {
            libc::munmap(self.0.as_ptr() as *mut libc::c_void, TABLE_BYTES);
        }
        #[cfg(not(unix))]
        // SAFETY: allocated in `Table::new` with this layout, freed once.
        unsafe {
            std::alloc::dealloc(self.0.as_ptr() as *mut u8, Self::layout());
        }
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
    /// The table's base pointer (for compiled code).
    pub(crate) fn as_ptr(self) -> *const usize {
        self.0
    }

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
///
/// A flat page table (one word per page, so that a guest access is one table load) that takes
/// memory only where it is written (see `Table`), and per 512-page chunk the page-set bitmaps
/// (`Meta`, 264 bytes, allocated with the chunk's first mapped page) that the slow paths
/// consult. A fresh standard program costs about 30 KB: 8 KiB of table, the 16 KiB chunk
/// directory, two chunks' bitmaps and the pages its sections write.
pub struct Memory {
    /// Dropped explicitly in `Drop` (returned to [`TABLE_POOL`] when little of it is resident).
    table: std::mem::ManuallyDrop<Table>,
    /// The chunk directory (boxed, so that a `Memory` is four words).
    dir: Box<Dir>,
    /// Number of mapped pages.
    count: usize,
    /// Number of pages with storage of their own.
    backed: usize,
}

/// The per-chunk page sets of a [`Memory`].
struct Dir {
    /// The page-set bitmaps of each chunk, `None` while no page of the chunk is mapped.
    meta: [Option<Box<Meta>>; CHUNKS],
    /// Which chunks have bitmaps (have mapped pages).
    chunk_set: [u64; CHUNK_WORDS],
    /// Which chunks are entirely writable.
    full: [u64; CHUNK_WORDS],
    /// The most pages that may have storage of their own ([`Memory::set_page_limit`]).
    page_limit: usize,
    /// A write was refused because of `page_limit` (sticky until the limit is set again).
    limit_reached: bool,
}

/// Sets or clears `bit` of `word`.
#[inline(always)]
fn set_bit(word: &mut u64, bit: u64, on: bool) {
    if on {
        *word |= bit;
    } else {
        *word &= !bit;
    }
}

/// The bits of word `w` (pages 64w..64w+64 of a chunk) that lie in [lo, hi).
#[inline]
fn word_mask(w: usize, lo: usize, hi: usize) -> u64 {
    let (start, end) = (w * 64, w * 64 + 64);
    let (a, b) = (lo.max(start), hi.min(end));
    if a >= b {
        return 0;
    }
    let n = b - a;
    let bits = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
    bits << (a - start)
}

/// The set bits of `bits`, ascending, as indices offset by `base`.
fn ones(bits: u64, base: usize) -> impl Iterator<Item = usize> {
    let mut bits = bits;
    std::iter::from_fn(move || {
        (bits != 0).then(|| {
            let i = base + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            i
        })
    })
}

/// The chunks overlapping the pages [first, end) whose bit is set in the chunk bitmap given word
/// by word by `word`, ascending: O((end − first)/2^15 + matches).
fn chunks_where(
    word: impl Fn(usize) -> u64,
    first: usize,
    end: usize,
) -> impl Iterator<Item = usize> {
    let (c0, c1) = if first < end {
        (first >> CHUNK_BITS, (end - 1) / CHUNK_PAGES + 1)
    } else {
        (0, 0)
    };
    (c0 / 64..c1.div_ceil(64)).flat_map(move |w| ones(word(w) & word_mask(w, c0, c1), w * 64))
}

/// The in-chunk span [lo, hi) of chunk `c` that lies in the pages [first, end).
fn span_of(c: usize, first: usize, end: usize) -> (usize, usize) {
    let base = c << CHUNK_BITS;
    (
        first.saturating_sub(base).min(CHUNK_PAGES),
        (end - base).min(CHUNK_PAGES),
    )
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
            .field("backed", &self.backed)
            .finish()
    }
}

impl Clone for Memory {
    fn clone(&self) -> Self {
        let mut m = Memory::new();
        for c in self.chunks() {
            let src = self.chunk(c).expect("chunk with bitmaps");
            m.dir.meta[c] = Some(Box::new(Meta {
                mapped: src.mapped,
                readable: src.readable,
                writable: src.writable,
                backed: src.backed,
                writable_count: src.writable_count,
            }));
            m.dir.chunk_set[c / 64] |= 1 << (c % 64);
            for w in 0..WORDS {
                for i in ones(src.mapped[w], (c << CHUNK_BITS) + w * 64) {
                    let e = self.table[i];
                    m.table[i] = if is_backed(e) {
                        // SAFETY: a backed entry points at a live page of `self`.
                        let bytes = unsafe { &(*page_ptr(e)).0 };
                        let ptr = Box::into_raw(Box::new(Page(*bytes)));
                        ptr.expose_provenance() | (e & BITS)
                    } else {
                        e
                    };
                }
            }
        }
        m.dir.full = self.dir.full;
        m.dir.page_limit = self.dir.page_limit;
        m.dir.limit_reached = self.dir.limit_reached;
        m.count = self.count;
        m.backed = self.backed;
        m
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        let chunks: Vec<usize> = self.chunks().collect();
        for &c in &chunks {
            // (Clears every non-zero entry of the chunk.)
            self.free_chunk(c);
        }
        // SAFETY: `drop` runs once and `self.table` is not used after this line; no `GuestTable`
        // copy outlives the `&mut` borrow that made it.
        let table = unsafe { std::mem::ManuallyDrop::take(&mut self.table) };
        // Every entry is zero again. A table of which little was used (so little is resident)
        // is kept for the next Memory: that saves the mmap/munmap pair and the page faults,
        // ~15 µs per instance.
        if chunks.len() <= POOLED_CHUNKS {
            if let Ok(mut pool) = TABLE_POOL.lock() {
                if pool.len() < TABLE_POOL_SIZE {
                    pool.push(table);
                }
            }
        }
    }
}

/// Page tables of dropped memories, every entry zero, reused by [`Memory::new`].
static TABLE_POOL: std::sync::Mutex<Vec<Table>> = std::sync::Mutex::new(Vec::new());
/// At most this many tables are kept...
const TABLE_POOL_SIZE: usize = 4;
/// ...and only tables that had at most this many chunks (4 KiB of table each) in use when
/// dropped, so the pool holds at most 4 × 64 KiB of resident table (a table that was used more
/// is unmapped, which returns its memory).
const POOLED_CHUNKS: usize = 16;

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
    /// Empty memory: every page inaccessible. Maps the page table (no memory until written) and
    /// allocates the 16 KiB chunk directory.
    pub fn new() -> Self {
        Memory {
            table: std::mem::ManuallyDrop::new(
                TABLE_POOL
                    .lock()
                    .ok()
                    .and_then(|mut pool| pool.pop())
                    .unwrap_or_else(Table::new),
            ),
            dir: Box::new(Dir {
                meta: [const { None }; CHUNKS],
                chunk_set: [0; CHUNK_WORDS],
                full: [0; CHUNK_WORDS],
                page_limit: usize::MAX,
                limit_reached: false,
            }),
            count: 0,
            backed: 0,
        }
    }

    /// Indices of the chunks with mapped pages, ascending.
    fn chunks(&self) -> impl Iterator<Item = usize> + '_ {
        self.dir
            .chunk_set
            .iter()
            .enumerate()
            .flat_map(|(w, &bits)| ones(bits, w * 64))
    }

    /// The bitmaps of chunk `c`, if it has mapped pages.
    #[inline]
    fn chunk(&self, c: usize) -> Option<&Meta> {
        self.dir.meta[c].as_deref()
    }

    /// Frees the pages of chunk `c` and its bitmaps (all its pages are unmapped afterwards).
    fn free_chunk(&mut self, c: usize) {
        let Some(meta) = self.dir.meta[c].take() else {
            return;
        };
        let base = c << CHUNK_BITS;
        let mut mapped = 0;
        let mut freed = 0;
        for w in 0..WORDS {
            mapped += meta.mapped[w].count_ones() as usize;
            for i in ones(meta.mapped[w], base + w * 64) {
                let e = self.table[i];
                if is_backed(e) {
                    // SAFETY: a backed entry holds the pointer produced by `Box::into_raw` in
                    // `materialize` (or `clone`), freed exactly once: the entry is cleared here,
                    // and `unmap` clears it too when it frees a page.
                    drop(unsafe { Box::from_raw(page_ptr(e)) });
                    freed += 1;
                }
                self.table[i] = 0;
            }
        }
        self.dir.chunk_set[c / 64] &= !(1 << (c % 64));
        self.dir.full[c / 64] &= !(1 << (c % 64));
        self.count -= mapped;
        self.backed -= freed;
    }

    /// The table entry of `page` (< 2^20).
    #[inline]
    fn entry(&self, page: u32) -> usize {
        self.table[page as usize]
    }

    /// Writes the table entry of `page`, keeping the chunk's bitmaps and the counts in step; the
    /// bitmaps of an emptied chunk are freed. (The caller frees or keeps the old entry's storage.)
    fn set_entry(&mut self, page: u32, new: usize) {
        assert!(
            new & WRITE == 0 || new & BITS == WRITABLE_BITS,
            "a writable entry is READ | WRITE"
        );
        let c = page as usize >> CHUNK_BITS;
        let i = page as usize & (CHUNK_PAGES - 1);
        let old = self.table[page as usize];
        if old == new {
            return;
        }
        self.table[page as usize] = new;
        let meta = self.meta_mut(c);
        let (w, bit) = (i / 64, 1u64 << (i % 64));
        set_bit(&mut meta.mapped[w], bit, is_mapped(new));
        set_bit(&mut meta.readable[w], bit, new & READ != 0);
        let (was_w, is_w) = (old & (WRITE | LAZY) != 0, new & (WRITE | LAZY) != 0);
        set_bit(&mut meta.writable[w], bit, is_w);
        meta.writable_count = meta.writable_count + is_w as u32 - was_w as u32;
        set_bit(&mut meta.backed[w], bit, is_backed(new));
        let emptied = !is_mapped(new) && meta.mapped.iter().all(|w| *w == 0);
        let full = meta.writable_count == CHUNK_PAGES as u32;
        set_bit(&mut self.dir.full[c / 64], 1 << (c % 64), full);
        self.count = self.count + is_mapped(new) as usize - is_mapped(old) as usize;
        self.backed = self.backed + is_backed(new) as usize - is_backed(old) as usize;
        if emptied {
            self.dir.meta[c] = None;
            self.dir.chunk_set[c / 64] &= !(1 << (c % 64));
        } else {
            self.dir.chunk_set[c / 64] |= 1 << (c % 64);
        }
    }

    /// Gives a mapped page storage of its own (zero-filled) if it has none, keeping its access (a
    /// lazy writable page becomes an ordinary writable one), and returns it.
    fn materialize(&mut self, page: u32) -> &mut Page {
        let e = self.entry(page);
        debug_assert!(is_mapped(e));
        let ptr = if is_backed(e) {
            page_ptr(e)
        } else {
            let bits = if e & LAZY != 0 {
                READ | WRITE
            } else {
                e & (READ | WRITE)
            };
            let ptr = Box::into_raw(Box::new(Page([0; PAGE_SIZE as usize])));
            self.set_entry(page, ptr.expose_provenance() | bits);
            ptr
        };
        // SAFETY: `ptr` is a live page owned by this Memory (just allocated or found in the
        // table, never the shared zero page); the returned borrow is tied to `&mut self`, so no
        // other reference exists.
        unsafe { &mut *ptr }
    }

    /// Maps one page with `access`, keeping its contents.
    #[inline]
    fn map_page(&mut self, p: u32, access: Access) {
        let e = self.entry(p);
        let new = if is_backed(e) {
            (e & !BITS) | access.bits()
        } else {
            zero_page_addr() | access.lazy_bits()
        };
        if new != e {
            self.set_entry(p, new);
        }
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
        let pages = page_range(address, length)?;
        let (first, end) = (pages.start as usize, pages.end as usize);
        for c in first >> CHUNK_BITS..(end - 1) / CHUNK_PAGES + 1 {
            let (lo, hi) = span_of(c, first, end);
            let fresh = self.chunk(c).is_none_or(|m| {
                (lo / 64..hi.div_ceil(64)).all(|w| m.mapped[w] & word_mask(w, lo, hi) == 0)
            });
            if fresh {
                self.map_fresh(c, lo, hi, access);
            } else {
                for p in (c << CHUNK_BITS) + lo..(c << CHUNK_BITS) + hi {
                    self.map_page(p as u32, access);
                }
            }
        }
        Ok(())
    }

    /// Maps the pages [lo, hi) of chunk `c`, none of which is mapped, with `access` and no
    /// storage: what [`Memory::map_page`] does page by page (through `set_entry`), with the
    /// entries filled at once and the bitmaps and counts updated a word at a time (a large heap
    /// is mapped in microseconds).
    fn map_fresh(&mut self, c: usize, lo: usize, hi: usize, access: Access) {
        let entry = zero_page_addr() | access.lazy_bits();
        let base = c << CHUNK_BITS;
        self.table[base + lo..base + hi].fill(entry);
        let meta = self.meta_mut(c);
        for w in lo / 64..hi.div_ceil(64) {
            let bits = word_mask(w, lo, hi);
            meta.mapped[w] |= bits;
            if access != Access::None {
                meta.readable[w] |= bits;
            }
            if access == Access::Write {
                meta.writable[w] |= bits;
            }
        }
        if access == Access::Write {
            meta.writable_count += (hi - lo) as u32;
        }
        let full = meta.writable_count == CHUNK_PAGES as u32;
        set_bit(&mut self.dir.full[c / 64], 1 << (c % 64), full);
        self.dir.chunk_set[c / 64] |= 1 << (c % 64);
        self.count += hi - lo;
    }

    /// The page-set bitmaps of chunk `c`, allocated (empty) if it has none.
    fn meta_mut(&mut self, c: usize) -> &mut Meta {
        self.dir.meta[c].get_or_insert_with(|| {
            Box::new(Meta {
                mapped: [0; WORDS],
                readable: [0; WORDS],
                writable: [0; WORDS],
                backed: [0; WORDS],
                writable_count: 0,
            })
        })
    }

    /// Makes every page of `pages` writable, keeping contents, and touches only the pages that
    /// are not writable yet: O(chunks in the range + pages changed) rather than O(pages). Equal
    /// to `map_range` with [`Access::Write`] over the same pages.
    pub fn make_writable(&mut self, pages: std::ops::Range<u32>) -> Result<(), MemoryError> {
        if pages.is_empty() {
            return Ok(());
        }
        if pages.start < MIN_ADDRESS / PAGE_SIZE {
            return Err(MemoryError::BelowMinimum {
                address: pages.start.wrapping_mul(PAGE_SIZE),
            });
        }
        if pages.end as usize > PAGE_COUNT {
            return Err(MemoryError::OutOfRange {
                address: pages.start as u64 * PAGE_SIZE as u64,
                length: (pages.end - pages.start) as u64 * PAGE_SIZE as u64,
            });
        }
        let (first, end) = (pages.start as usize, pages.end as usize);
        // Chunks that are not entirely writable (including those without mapped pages).
        let todo: Vec<usize> = chunks_where(|w| !self.dir.full[w], first, end).collect();
        for c in todo {
            let (lo, hi) = span_of(c, first, end);
            for w in lo / 64..hi.div_ceil(64) {
                let writable = self.chunk(c).map_or(0, |ch| ch.writable[w]);
                let missing = !writable & word_mask(w, lo, hi);
                for i in ones(missing, (c << CHUNK_BITS) + w * 64) {
                    self.map_page(i as u32, Access::Write);
                }
            }
        }
        Ok(())
    }

    /// The number of writable pages (access W) among `pages`: O(range/2^15 + partly writable
    /// chunks), from the bitmaps.
    pub fn writable_page_count(&self, pages: std::ops::Range<u32>) -> u64 {
        let (first, end) = (pages.start as usize, (pages.end as usize).min(PAGE_COUNT));
        if first >= end {
            return 0;
        }
        // Entirely writable chunks inside the range, 64 at a time.
        let (c0, c1) = (first.div_ceil(CHUNK_PAGES), end / CHUNK_PAGES);
        let mut n = 0u64;
        if c0 < c1 {
            for w in c0 / 64..c1.div_ceil(64) {
                n += (self.dir.full[w] & word_mask(w, c0, c1)).count_ones() as u64
                    * CHUNK_PAGES as u64;
            }
        }
        // Every other chunk with mapped pages.
        let counted = |w: usize| self.dir.full[w] & word_mask(w, c0, c1);
        for c in chunks_where(|w| self.dir.chunk_set[w] & !counted(w), first, end) {
            let (lo, hi) = span_of(c, first, end);
            let ch = self.chunk(c).expect("chunk with mapped pages");
            for w in lo / 64..hi.div_ceil(64) {
                n += (ch.writable[w] & word_mask(w, lo, hi)).count_ones() as u64;
            }
        }
        n
    }

    /// The first page of `pages` that the guest can read (access R or W): O(range/2^15 + chunks
    /// with mapped pages in the range), from the bitmaps.
    pub fn first_readable_page(&self, pages: std::ops::Range<u32>) -> Option<u32> {
        let (first, end) = (pages.start as usize, (pages.end as usize).min(PAGE_COUNT));
        for c in chunks_where(|w| self.dir.chunk_set[w], first, end) {
            let (lo, hi) = span_of(c, first, end);
            let ch = self.chunk(c).expect("chunk with mapped pages");
            for w in lo / 64..hi.div_ceil(64) {
                let bits = ch.readable[w] & word_mask(w, lo, hi);
                if bits != 0 {
                    let i = w * 64 + bits.trailing_zeros() as usize;
                    return Some(((c << CHUNK_BITS) + i) as u32);
                }
            }
        }
        None
    }

    /// Removes the pages covering [address, address + length) and frees their storage.
    pub fn unmap(&mut self, address: u32, length: u32) -> Result<(), MemoryError> {
        if length == 0 {
            return Ok(());
        }
        let range = page_range(address as u64, length as u64)?;
        let (first, end) = (range.start as usize, range.end as usize);
        let chunks: Vec<usize> = chunks_where(|w| self.dir.chunk_set[w], first, end).collect();
        for c in chunks {
            let (lo, hi) = span_of(c, first, end);
            if lo == 0 && hi == CHUNK_PAGES {
                self.free_chunk(c);
                continue;
            }
            for w in lo / 64..hi.div_ceil(64) {
                let Some(ch) = self.chunk(c) else {
                    break;
                };
                let mapped = ch.mapped[w] & word_mask(w, lo, hi);
                for i in ones(mapped, (c << CHUNK_BITS) + w * 64) {
                    let e = self.entry(i as u32);
                    self.set_entry(i as u32, 0);
                    if is_backed(e) {
                        // SAFETY: a backed entry holds a pointer from `Box::into_raw` that has
                        // not been freed; the page is now removed from the table.
                        drop(unsafe { Box::from_raw(page_ptr(e)) });
                    }
                }
            }
        }
        Ok(())
    }

    /// Fills the mapped pages covering the range with zeros (access unchanged; unmapped pages are
    /// skipped). Pages without storage of their own already read as zeros and are not touched.
    pub fn zero(&mut self, address: u32, length: u32) -> Result<(), MemoryError> {
        if length == 0 {
            return Ok(());
        }
        let range = page_range(address as u64, length as u64)?;
        let (first, end) = (range.start as usize, range.end as usize);
        for c in chunks_where(|w| self.dir.chunk_set[w], first, end) {
            let (lo, hi) = span_of(c, first, end);
            let ch = self.chunk(c).expect("chunk with mapped pages");
            for w in lo / 64..hi.div_ceil(64) {
                for i in ones(ch.backed[w] & word_mask(w, lo, hi), w * 64) {
                    // SAFETY: a backed entry points at a live page owned by this Memory, which
                    // `&mut self` holds exclusively.
                    unsafe { (*page_ptr(self.table[(c << CHUNK_BITS) + i])).0.fill(0) };
                }
            }
        }
        Ok(())
    }

    /// The access of the page holding `address`.
    pub fn access(&self, address: u32) -> Access {
        let e = self.entry(address >> 12);
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
        (page as usize) < PAGE_COUNT && is_mapped(self.entry(page))
    }

    /// The contents of a mapped page (whatever its access).
    pub fn page_bytes(&self, page: u32) -> Option<&[u8; PAGE_SIZE as usize]> {
        if page as usize >= PAGE_COUNT {
            return None;
        }
        let e = self.entry(page);
        if !is_mapped(e) {
            return None;
        }
        // SAFETY: a mapped entry points to a live page owned by this Memory or to the static
        // zero page; the shared borrow is tied to `&self`, and mutation needs `&mut self`.
        Some(unsafe { &(*page_ptr(e)).0 })
    }

    /// Mutable contents of a mapped page (whatever its access); a page that was never written
    /// gets storage of its own first.
    pub fn page_bytes_mut(&mut self, page: u32) -> Option<&mut [u8; PAGE_SIZE as usize]> {
        if !self.is_allocated(page) {
            return None;
        }
        Some(&mut self.materialize(page).0)
    }

    /// Raw pointer to a page's storage, stable until the page is unmapped or the Memory dropped.
    /// For zero-copy views in the bindings.
    pub fn page_ptr(&mut self, page: u32) -> Option<*mut u8> {
        if page as usize >= PAGE_COUNT || self.check_page_limit(page << 12, 1).is_err() {
            return None;
        }
        self.page_bytes_mut(page).map(|p| p.as_mut_ptr())
    }

    /// Mapped page indices, ascending, with their access.
    pub fn pages(&self) -> impl Iterator<Item = (u32, Access)> + '_ {
        self.chunks().flat_map(move |c| {
            let ch = self.chunk(c).expect("allocated chunk");
            (0..WORDS).flat_map(move |w| {
                ones(ch.mapped[w], w * 64).map(move |i| {
                    let p = ((c << CHUNK_BITS) + i) as u32;
                    (p, self.access(p << 12))
                })
            })
        })
    }

    /// The pages the guest can read (access R or W) that have storage of their own, ascending,
    /// with their contents. Every other page reads as zeros to the guest (a readable page without
    /// storage reads the shared zero page) or is unreadable: this is every page that can hold a
    /// non-zero byte the guest can see, found from the bitmaps without reading any other page.
    pub fn readable_backed_pages(
        &self,
    ) -> impl Iterator<Item = (u32, &[u8; PAGE_SIZE as usize])> + '_ {
        self.chunks().flat_map(move |c| {
            let ch = self.chunk(c).expect("allocated chunk");
            (0..WORDS).flat_map(move |w| {
                ones(ch.backed[w] & ch.readable[w], w * 64).map(move |i| {
                    // SAFETY: a backed entry points at a live page owned by this Memory; the
                    // shared borrow is tied to `&self`.
                    let bytes = unsafe { &(*page_ptr(self.table[(c << CHUNK_BITS) + i])).0 };
                    (((c << CHUNK_BITS) + i) as u32, bytes)
                })
            })
        })
    }

    #[cfg(test)]
    fn is_backed_page(&self, page: u32) -> bool {
        is_backed(self.entry(page))
    }

    /// Number of mapped pages.
    pub fn mapped_page_count(&self) -> usize {
        self.count
    }

    /// Number of pages with storage of their own (written at least once), for memory accounting.
    pub fn backed_pages(&self) -> usize {
        self.backed
    }

    /// Limits the pages with storage of their own (4 KiB of host memory each) to `pages`; `None`
    /// removes the limit (the default). Mapping costs no storage and is never limited: a page
    /// gets storage on its first write. A guest store that would give storage to a page beyond
    /// the limit is a page fault at the lowest page of the store without storage (nothing is
    /// written, the pc stays at the store); a checked or unchecked host write
    /// ([`Memory::write`], [`Memory::write_unchecked`], and with them the built-in host calls)
    /// fails with [`MemoryError::PageLimit`]; a zero-copy view of such a page
    /// ([`Memory::page_ptr`]) is refused. Either sets [`Memory::page_limit_reached`]. Pages that
    /// already have storage stay usable, also when the limit is set below their number.
    /// ([`Memory::page_bytes_mut`], the host's direct page access, is not limited.)
    pub fn set_page_limit(&mut self, pages: Option<u64>) {
        self.dir.page_limit = pages.map_or(usize::MAX, |p| p.min(usize::MAX as u64) as usize);
        self.dir.limit_reached = false;
    }

    /// The limit of [`Memory::set_page_limit`] (`None`: unlimited).
    pub fn page_limit(&self) -> Option<u64> {
        (self.dir.page_limit != usize::MAX).then_some(self.dir.page_limit as u64)
    }

    /// Whether a write or view was refused because of the page limit since it was last set:
    /// tells a page fault caused by the limit from one the GP defines.
    pub fn page_limit_reached(&self) -> bool {
        self.dir.limit_reached
    }

    /// Checks that writing `[address, address + len)` gives storage to no more pages than the
    /// limit allows; otherwise returns the lowest page address of the range without storage
    /// (and records that the limit was reached). `len` is at most 2^32 − 1 and the range is
    /// mapped.
    fn check_page_limit(&mut self, address: u32, len: u32) -> Result<(), u32> {
        if self.dir.page_limit == usize::MAX || len == 0 {
            return Ok(());
        }
        let room = self.dir.page_limit.saturating_sub(self.backed);
        let mut needed = 0usize;
        let mut lowest: Option<u32> = None;
        let mut i = 0u64;
        while i < len as u64 {
            let a = address.wrapping_add(i as u32);
            let page = a >> 12;
            if !is_backed(self.entry(page)) {
                needed += 1;
                lowest = Some(lowest.map_or(page, |l| l.min(page)));
            }
            i += (PAGE_SIZE - (a & (PAGE_SIZE - 1))) as u64;
            if needed > room {
                break;
            }
        }
        if needed > room {
            self.dir.limit_reached = true;
            return Err(lowest.expect("a page without storage") << 12);
        }
        Ok(())
    }

    fn limit_error(&self, address: u32) -> MemoryError {
        MemoryError::PageLimit {
            address,
            limit: self.dir.page_limit as u64,
        }
    }

    /// The page-table memory in use: one 4 KiB page of the table per chunk with mapped pages (the
    /// 512 entries of a chunk are one page of the page-aligned mapping).
    fn table_bytes(&self) -> usize {
        self.chunks().count() * CHUNK_PAGES * std::mem::size_of::<usize>()
    }

    /// Bytes of host memory this Memory holds (an estimate of what it makes resident): the parts
    /// of the page table in use, the chunk directory and bitmaps, and the backed pages.
    pub fn host_bytes(&self) -> usize {
        self.table_bytes()
            + CHUNKS * std::mem::size_of::<Option<Box<Meta>>>()
            + self.chunks().count() * std::mem::size_of::<Meta>()
            + self.backed * std::mem::size_of::<Page>()
    }

    /// Finds the lowest address of `[address, address + len)` (mod 2^32) that is not accessible
    /// for the given kind of access.
    fn first_inaccessible(&self, address: u32, len: u32, write: bool) -> Option<u32> {
        let need = if write { WRITE | LAZY } else { READ };
        let mut lowest: Option<u32> = None;
        let mut i = 0u32;
        while i < len {
            let a = address.wrapping_add(i);
            let e = self.entry(a >> 12);
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
        // Beyond the page limit the store faults at a page of its own (the page is mapped and
        // writable, so this is not a GP fault: `page_limit_reached` tells them apart).
        self.check_page_limit(address, data.len() as u32)
            .map_err(Trap::Fault)?;
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
                self.check_page_limit(address, data.len() as u32)
                    .map_err(|a| self.limit_error(a))?;
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
        self.check_page_limit(address, data.len() as u32)
            .map_err(|a| self.limit_error(a))?;
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
            if self.entry(a >> 12) & need == 0 {
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
    #[inline(never)]
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
    #[inline(never)]
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
    fn fresh_memories_start_empty() {
        for round in 0..(2 * TABLE_POOL_SIZE) {
            let mut m = Memory::new();
            assert_eq!(m.pages().count(), 0, "round {round}");
            assert!(m.table.iter().all(|e| *e == 0), "round {round}");
            assert_eq!(
                m.load::<1>(0x30000),
                Err(Trap::Fault(0x30000)),
                "round {round}"
            );
            m.map(0x30000, 3 * 4096, Access::Write).unwrap();
            m.store::<1>(0x31000, [9]).unwrap();
            m.map(0x40000, 4096, Access::None).unwrap();
            m.map(0xfefe_0000, 0x3000, Access::Read).unwrap();
            m.write_unchecked(0xfefe_1000, &[1]).unwrap();
            m.unmap(0xfefe_2000, 0x1000).unwrap();
        }
    }

    /// The chunk bitmaps and counts agree with the entries.
    fn check_bitmaps(m: &Memory) {
        let (mut mapped, mut backed) = (0, 0);
        for c in 0..CHUNKS {
            let entries = &m.table[c << CHUNK_BITS..(c + 1) << CHUNK_BITS];
            let Some(ch) = m.chunk(c) else {
                // (Reading all 2^20 entries is slow in debug builds: a sample of chunks.)
                if c % 61 == 0 || c == CHUNKS - 1 {
                    assert!(entries.iter().all(|e| *e == 0), "chunk {c}");
                }
                assert_eq!(m.dir.chunk_set[c / 64] >> (c % 64) & 1, 0);
                continue;
            };
            assert_eq!(m.dir.chunk_set[c / 64] >> (c % 64) & 1, 1);
            let mut writable = 0;
            assert!(ch.mapped.iter().any(|w| *w != 0), "empty chunk {c} kept");
            for i in 0..CHUNK_PAGES {
                let e = entries[i];
                let bit = |words: &[u64; WORDS]| words[i / 64] >> (i % 64) & 1 == 1;
                assert_eq!(bit(&ch.mapped), is_mapped(e));
                assert_eq!(bit(&ch.readable), e & READ != 0);
                assert_eq!(bit(&ch.writable), e & (WRITE | LAZY) != 0);
                assert!(e & WRITE == 0 || e & BITS == WRITABLE_BITS);
                assert_eq!(bit(&ch.backed), is_backed(e));
                writable += (e & (WRITE | LAZY) != 0) as u32;
                mapped += is_mapped(e) as usize;
                backed += is_backed(e) as usize;
            }
            assert_eq!(ch.writable_count, writable);
            assert_eq!(
                m.dir.full[c / 64] >> (c % 64) & 1 == 1,
                writable == CHUNK_PAGES as u32
            );
        }
        assert_eq!((m.count, m.backed), (mapped, backed));
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
            // Mostly short ranges; one in eight spans whole 512-page chunks (the bulk path of
            // mapping fresh chunks, and chunks that become entirely writable).
            let n = if next() % 8 == 0 {
                1 + next() % 1100
            } else {
                1 + next() % 70
            } as u32;
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
            check_bitmaps(&m);
            if step % 500 == 0 {
                let c = m.clone();
                assert_eq!(c.pages().collect::<Vec<_>>(), want);
                assert_eq!((c.count, c.backed_pages()), (m.count, m.backed_pages()));
            }
        }
    }

    #[test]
    fn page_set_queries_match_a_scan() {
        let mut rng = 0x9e3779b97f4a7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut m = Memory::new();
        let accesses = [Access::None, Access::Read, Access::Write];
        for step in 0..400 {
            let first = 16 + (next() % 3000) as u32;
            let n = 1 + (next() % 1200) as u32;
            match next() % 5 {
                0 | 1 => m
                    .map(first << 12, n << 12, accesses[next() as usize % 3])
                    .unwrap(),
                2 => m.unmap(first << 12, n << 12).unwrap(),
                3 => m.make_writable(first..first + n).unwrap(),
                _ => {
                    if let Some(b) = m.page_bytes_mut(first) {
                        b[1] = 1;
                    }
                }
            }
            check_bitmaps(&m);
            let (a, b) = (16 + (next() % 3500) as u32, (next() % 2000) as u32);
            let range = a..a + b;
            let scan_w = range
                .clone()
                .filter(|p| m.access(p << 12) == Access::Write)
                .count();
            assert_eq!(
                m.writable_page_count(range.clone()),
                scan_w as u64,
                "step {step}"
            );
            let scan_r = range.clone().find(|p| m.access(p << 12) != Access::None);
            assert_eq!(m.first_readable_page(range.clone()), scan_r, "step {step}");
            let want: Vec<u32> = m
                .pages()
                .filter(|(p, acc)| *acc != Access::None && m.is_backed_page(*p))
                .map(|(p, _)| p)
                .collect();
            let got: Vec<u32> = m.readable_backed_pages().map(|(p, _)| p).collect();
            assert_eq!(got, want, "step {step}");
        }
        // make_writable keeps contents, like map_range with Access::Write.
        let mut m = Memory::new();
        m.map(0x20000, 4096, Access::Read).unwrap();
        m.write_unchecked(0x20000, &[5]).unwrap();
        m.make_writable(0x1f..0x22).unwrap();
        assert_eq!(m.load::<1>(0x20000), Ok([5]));
        assert_eq!(m.writable_page_count(0..PAGE_COUNT as u32), 3);
        assert_eq!(m.store::<1>(0x21000, [1]), Ok(()));
        assert!(m.make_writable(0..2).is_err());
    }
}
