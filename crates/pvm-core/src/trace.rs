//! Tracing for cross-implementation debugging: the PVM hash (v1) and state dump, per-instruction
//! trace lines, and JIP-7 host-call I/O records.
//!
//! ## PVM hash v1
//! `pvmHash = blake2b-256(E8(φ0) ⌢ … ⌢ E8(φ12) ⌢ E8(ϱ) ⌢ E(ν))` with E8 little-endian (gas as its
//! unsigned 64-bit two's-complement value) and `E(ν)` = for every page in ascending page index,
//! `E4(page index) ⌢ the page's 4096 bytes`. **Page set (libpvm's reading of "initialized, read
//! or written to with non-zero values"):** every page that is readable by the guest (access R or
//! W) and holds at least one non-zero byte. Inaccessible pages never count, whatever they hold;
//! an all-zero readable page never counts, whether or not it was touched. This makes the hash a
//! function of the GP state alone (registers, gas, readable memory), independent of the
//! implementation's allocation history.
//!
//! ## Cost, and hashing after every instruction
//! The registers and gas come first in the preimage and change on nearly every instruction, so
//! every hash digests all non-zero pages again (no prefix of the blake2b state can be reused):
//! about (112 + 4100·pages) bytes of blake2b per hash. [`state_hash`] feeds the pages to blake2b
//! straight from their storage (no copy) and finds the all-zero ones with a word-wise scan, so
//! it runs within a few percent of the `blake2` crate hashing one contiguous buffer of the same
//! size (`cargo run --release -p pvm-bench --bin pvm-hash-bench`, numbers in
//! `docs/BENCHMARKS.md`). For a hash after every step, [`StepHasher`] adds two things on top:
//! it reuses the previous hash when nothing hashed can have changed (same registers and gas, and
//! only instructions that cannot write memory executed since), and it can hash on worker
//! threads from snapshots of the state ([`StepHasher::parallel`]), handing the hashes back in
//! request order.

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};

use crate::instance::Instance;
use crate::isa::Opcode;
use crate::memory::{Memory, PAGE_SIZE};

mod parallel;

type Blake2b256 = Blake2b<U32>;

/// The pages of the hash preimage: readable pages with at least one non-zero byte, ascending.
///
/// Only pages with storage of their own are read ([`Memory::readable_backed_pages`], from the page
/// table's bitmaps): a mapped page that was never written reads the shared zero page, so it can
/// never be in the set and is skipped without being read. The cost is O(written pages), not
/// O(mapped pages) — a guest that maps the whole 4 GiB space and writes one byte hashes one page.
/// The set is exactly the v1 definition: a page that was written and zeroed again still has
/// storage, is read, and is left out because it is all zero.
pub fn hashed_pages(
    memory: &Memory,
) -> impl Iterator<Item = (u32, &[u8; PAGE_SIZE as usize])> + '_ {
    memory
        .readable_backed_pages()
        .filter(|(_, bytes)| !is_all_zero(bytes))
}

/// Whether a page holds only zeros. The page is OR-ed together 64 bytes (eight words) at a time,
/// which the compiler turns into vector code, stopping at the first block with a non-zero byte:
/// a byte-by-byte `any` ran at about 2 GB/s, a third of the time of hashing the page when its
/// non-zero bytes are at its end (a stack page).
fn is_all_zero(page: &[u8; PAGE_SIZE as usize]) -> bool {
    page.chunks_exact(64).all(|block| {
        block.chunks_exact(8).fold(0u64, |acc, w| {
            acc | u64::from_ne_bytes(w.try_into().expect("8 bytes"))
        }) == 0
    })
}

/// The first 112 bytes of the preimage: E8 of the 13 registers and of the gas.
pub fn registers_and_gas(registers: &[u64; 13], gas: i64) -> [u8; 112] {
    let mut out = [0u8; 112];
    for (i, r) in registers.iter().enumerate() {
        out[8 * i..8 * i + 8].copy_from_slice(&r.to_le_bytes());
    }
    out[104..].copy_from_slice(&(gas as u64).to_le_bytes());
    out
}

/// PVM hash v1 of an instance's state.
pub fn pvm_hash(instance: &Instance) -> [u8; 32] {
    state_hash(instance.registers(), instance.gas(), instance.memory())
}

/// PVM hash v1 of registers, gas and memory.
pub fn state_hash(registers: &[u64; 13], gas: i64, memory: &Memory) -> [u8; 32] {
    let mut h = Blake2b256::new();
    h.update(registers_and_gas(registers, gas));
    for (p, bytes) in hashed_pages(memory) {
        h.update(p.to_le_bytes());
        h.update(bytes);
    }
    h.finalize().into()
}

/// The page part of a hash preimage, `E(ν)`, copied out of a [`Memory`]: for every hashed page,
/// `E4(index) ⌢ its 4096 bytes`, in one contiguous buffer. Hashing the registers and gas and then
/// this buffer gives the PVM hash of the state it was captured from, whatever happens to the
/// memory afterwards, so it can be hashed on another thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryImage {
    bytes: Vec<u8>,
}

impl MemoryImage {
    /// Copies the hashed pages of `memory` (about a memcpy of them; the all-zero check is the
    /// fast scan of [`hashed_pages`]).
    pub fn capture(memory: &Memory) -> MemoryImage {
        let mut bytes = Vec::with_capacity(memory.backed_pages() * (4 + PAGE_SIZE as usize));
        for (p, page) in hashed_pages(memory) {
            bytes.extend_from_slice(&p.to_le_bytes());
            bytes.extend_from_slice(page);
        }
        MemoryImage { bytes }
    }

    /// The number of hashed pages in the image.
    pub fn pages(&self) -> usize {
        self.bytes.len() / (4 + PAGE_SIZE as usize)
    }

    /// `E(ν)`: the bytes that follow the registers and gas in the preimage.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The PVM hash of these pages with `registers` and `gas`.
    pub fn hash_with(&self, registers: &[u64; 13], gas: i64) -> [u8; 32] {
        let mut h = Blake2b256::new();
        h.update(registers_and_gas(registers, gas));
        h.update(&self.bytes);
        h.finalize().into()
    }
}

/// A state to hash on another thread: registers, gas and a shared [`MemoryImage`].
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// φ.
    pub registers: [u64; 13],
    /// ϱ.
    pub gas: i64,
    /// The hashed pages (shared between consecutive snapshots while memory does not change).
    pub memory: std::sync::Arc<MemoryImage>,
}

impl Snapshot {
    /// The PVM hash of the snapshot.
    pub fn hash(&self) -> [u8; 32] {
        self.memory.hash_with(&self.registers, self.gas)
    }
}

/// A hash asked of a [`StepHasher`]; [`StepHasher::resolve`] turns tickets into hashes, in the
/// order they were handed out.
#[derive(Debug)]
#[must_use = "a ticket must be resolved, in order"]
pub struct HashTicket {
    seq: u64,
    kind: TicketKind,
}

#[derive(Debug)]
enum TicketKind {
    /// Computed already (sequential hashing).
    Ready([u8; 32]),
    /// Nothing hashed changed since the previous ticket: its hash.
    SameAsPrevious,
    /// Submitted to the worker threads.
    Pending,
}

/// What a [`StepHasher`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HashStats {
    /// Hashes computed (here or on the workers).
    pub computed: u64,
    /// Hashes reused because nothing hashed could have changed.
    pub reused: u64,
    /// Memory images captured (parallel hashing).
    pub images: u64,
}

/// Hashes the state after every step (or every few steps) of a run as fast as possible while
/// giving exactly [`pvm_hash`] of each state:
///
/// * **Reuse:** when the registers and gas equal those of the previous request and no
///   instruction that may write memory ([`Opcode::may_write_memory`]: stores, `sbrk`, `ecalli`)
///   ran since, and the caller reported no other memory change ([`StepHasher::memory_changed`]),
///   the state is the one hashed last, and so is the hash. Under GP 0.8.0 that is a branch,
///   jump or fallthrough that ends a block of more than one instruction, or a move of a value
///   a register already holds (gas is charged by the step that enters a block, so the other
///   steps of a block leave it alone); under GP 0.7.2 gas changes on every step, so nothing is
///   reused. The decision costs a 112-byte compare,
///   nothing in the interpreter.
/// * **Worker threads** ([`StepHasher::parallel`]): a request takes a [`Snapshot`] (the
///   registers, the gas and a [`MemoryImage`], which is shared with the previous snapshot when no
///   memory-writing instruction ran in between, and copied otherwise) and hands it to the next
///   worker in turn; tickets are resolved in request order from the workers' result queues.
///
/// The caller must report every executed instruction ([`StepHasher::executed`]) and every change
/// of memory made other than by an instruction, e.g. by a host call ([`StepHasher::memory_changed`]).
pub struct StepHasher {
    reuse: bool,
    pool: Option<parallel::Pool>,
    /// Registers and gas of the last request.
    last: Option<([u64; 13], i64)>,
    /// Memory may differ from what the last request hashed (and from `image`).
    memory_dirty: bool,
    /// The image of the last parallel request, valid while `!memory_dirty`.
    image: Option<std::sync::Arc<MemoryImage>>,
    next_seq: u64,
    next_resolve: u64,
    last_resolved: Option<[u8; 32]>,
    stats: HashStats,
}

impl std::fmt::Debug for StepHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepHasher")
            .field("reuse", &self.reuse)
            .field("threads", &self.threads())
            .field("stats", &self.stats)
            .finish()
    }
}

impl StepHasher {
    /// Hashes on the calling thread, reusing unchanged hashes.
    pub fn sequential() -> StepHasher {
        StepHasher {
            reuse: true,
            pool: None,
            last: None,
            memory_dirty: true,
            image: None,
            next_seq: 0,
            next_resolve: 0,
            last_resolved: None,
            stats: HashStats::default(),
        }
    }

    /// Hashes on `threads` worker threads (at least 1), reusing unchanged hashes.
    pub fn parallel(threads: usize) -> StepHasher {
        StepHasher {
            pool: Some(parallel::Pool::new(threads.max(1))),
            ..StepHasher::sequential()
        }
    }

    /// Turns the reuse of unchanged hashes on or off (on by default; off only to measure it).
    pub fn with_reuse(mut self, reuse: bool) -> StepHasher {
        self.reuse = reuse;
        self
    }

    /// The number of worker threads (0: sequential).
    pub fn threads(&self) -> usize {
        self.pool.as_ref().map_or(0, |p| p.threads())
    }

    /// What was done so far.
    pub fn stats(&self) -> HashStats {
        self.stats
    }

    /// Reports that the instruction `op` was executed (`None`: an invalid opcode, treated as if
    /// it might have written memory).
    #[inline]
    pub fn executed(&mut self, op: Option<Opcode>) {
        if op.is_none_or(Opcode::may_write_memory) {
            self.memory_dirty = true;
        }
    }

    /// Reports that memory may have changed other than by an executed instruction.
    pub fn memory_changed(&mut self) {
        self.memory_dirty = true;
    }

    /// Asks for the hash of the state `(registers, gas, memory)`.
    pub fn request(&mut self, registers: &[u64; 13], gas: i64, memory: &Memory) -> HashTicket {
        let seq = self.next_seq;
        self.next_seq += 1;
        let unchanged = self.reuse
            && !self.memory_dirty
            && self.last.is_some_and(|(r, g)| r == *registers && g == gas);
        let kind = if unchanged {
            self.stats.reused += 1;
            TicketKind::SameAsPrevious
        } else {
            self.stats.computed += 1;
            match &mut self.pool {
                None => TicketKind::Ready(state_hash(registers, gas, memory)),
                Some(pool) => {
                    let image = match &self.image {
                        Some(i) if !self.memory_dirty => i.clone(),
                        _ => {
                            self.stats.images += 1;
                            let i = std::sync::Arc::new(MemoryImage::capture(memory));
                            self.image = Some(i.clone());
                            i
                        }
                    };
                    pool.submit(Snapshot {
                        registers: *registers,
                        gas,
                        memory: image,
                    });
                    TicketKind::Pending
                }
            }
        };
        self.last = Some((*registers, gas));
        self.memory_dirty = false;
        HashTicket { seq, kind }
    }

    /// [`StepHasher::request`] for an instance's state.
    pub fn request_for(&mut self, instance: &Instance) -> HashTicket {
        self.request(instance.registers(), instance.gas(), instance.memory())
    }

    /// The hash of a ticket. Tickets must be resolved in the order they were handed out
    /// (panics otherwise); with worker threads this waits for the hash.
    pub fn resolve(&mut self, ticket: HashTicket) -> [u8; 32] {
        assert_eq!(
            ticket.seq, self.next_resolve,
            "StepHasher tickets are resolved in request order"
        );
        self.next_resolve += 1;
        let h = match ticket.kind {
            TicketKind::Ready(h) => h,
            TicketKind::SameAsPrevious => self.last_resolved.expect("a previous hash"),
            TicketKind::Pending => self
                .pool
                .as_mut()
                .expect("pending tickets come from the pool")
                .next_result(),
        };
        self.last_resolved = Some(h);
        h
    }

    /// Requests and resolves at once (only when no other ticket is outstanding).
    pub fn hash_now(&mut self, instance: &Instance) -> [u8; 32] {
        let t = self.request_for(instance);
        self.resolve(t)
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// The hash preimage as text: the line `regs+gas: <224 hex digits>`, then one line per hashed
/// page `page 0x000fe: <E4(index), 8 hex digits> <the page's 8192 hex digits>`. Concatenating
/// everything after the colons, without spaces, gives the exact preimage, so the dump can be fed
/// to any blake2b-256 tool and diffed with any text diff.
pub fn dump_state(instance: &Instance) -> String {
    let mut s = format!(
        "regs+gas: {}\n",
        hex(&registers_and_gas(instance.registers(), instance.gas()))
    );
    for (p, bytes) in hashed_pages(instance.memory()) {
        s.push_str(&format!(
            "page {p:#07x}: {} {}\n",
            hex(&p.to_le_bytes()),
            hex(bytes)
        ));
    }
    s
}

/// Length in bytes of the first line of [`dump_state`]: `regs+gas: ` + 224 hex digits + `\n`.
const DUMP_HEADER_LEN: usize = 10 + 224 + 1;
/// Length of one page line: `page 0x000fe: ` + 8 hex digits + ` ` + 8192 hex digits + `\n`
/// (page indices are below 2^20, so `{:#07x}` always prints 5 digits).
const DUMP_PAGE_LEN: usize = 14 + 8 + 1 + 2 * PAGE_SIZE as usize + 1;

/// `dump_state(instance).len()` without building the text (it reads only the pages that hold
/// storage of their own, to check that they are non-zero).
pub fn dump_state_len(instance: &Instance) -> usize {
    DUMP_HEADER_LEN + DUMP_PAGE_LEN * hashed_pages(instance.memory()).count()
}

/// One per-instruction trace line (`STEP: PC pc NAME g=gas pvmHash=0x… reg="[r0 … r12]"`); the
/// hash field is omitted when `hash` is `None`.
pub fn trace_line(
    step: u64,
    pc: u32,
    name: &str,
    gas: i64,
    hash: Option<&[u8; 32]>,
    registers: &[u64; 13],
) -> String {
    let regs: Vec<String> = registers.iter().map(|r| r.to_string()).collect();
    let hash = hash
        .map(|h| format!(" pvmHash=0x{}", hex(h)))
        .unwrap_or_default();
    format!(
        "{step}: PC {pc} {} g={gas}{hash} reg=\"[{}]\"",
        name.to_uppercase(),
        regs.join(" ")
    )
}

/// The line after a host call of a trace: `ECALLI id g=gas[ pvmHash=0x…]`.
pub fn ecalli_line(id: u32, gas: i64, hash: Option<&[u8; 32]>) -> String {
    let hash = hash
        .map(|h| format!(" pvmHash=0x{}", hex(h)))
        .unwrap_or_default();
    format!("ECALLI {id} g={gas}{hash}")
}

/// The last line of a trace: `EXIT halt|panic|oog|fault=0x…|host=id pc= g= pvmHash=0x… steps=`.
pub fn exit_line(exit: crate::Exit, pc: u32, gas: i64, hash: &[u8; 32], steps: u64) -> String {
    let what = match exit {
        crate::Exit::PageFault(a) => format!("fault={a:#x}"),
        crate::Exit::HostCall(id) => format!("host={id}"),
        other => other.name().to_string(),
    };
    format!(
        "EXIT {what} pc={pc} g={gas} pvmHash=0x{} steps={steps}",
        hex(hash)
    )
}
