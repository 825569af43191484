//! JIP-7 text: the data model of a log, the writer and a total parser (any input gives a log or
//! a [`Jip7Error::Parse`] naming the line; nothing panics).

use std::fmt::Write as _;

use thiserror::Error;

use crate::memory::{Access, PAGE_SIZE};

/// pc, gas and registers as a JIP-7 `start`, `ecalli` or termination line shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmState {
    /// Program counter.
    pub pc: u32,
    /// Gas (saturated at 0 on termination lines).
    pub gas: u64,
    /// The 13 registers.
    pub regs: [u64; 13],
}

/// A change of the page map made by a host call (libpvm extension record `x-pages`): the pages
/// covering `[address, address + len)` now have access `access` (`None`: unmapped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PageChange {
    /// First byte of the first page (page-aligned).
    pub address: u32,
    /// Length in bytes (a non-zero multiple of the page size; `address + len <= 2^32`).
    pub len: u64,
    /// The new state: `Some(access)` for a mapped page (`Access::None` keeps its contents but
    /// hides them), `None` for an unmapped page.
    pub access: Option<AccessOrd>,
}

/// [`Access`] with an order, so page changes sort.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccessOrd {
    /// Inaccessible but mapped.
    None,
    /// Readable.
    Read,
    /// Readable and writable.
    Write,
}

impl From<Access> for AccessOrd {
    fn from(a: Access) -> Self {
        match a {
            Access::None => AccessOrd::None,
            Access::Read => AccessOrd::Read,
            Access::Write => AccessOrd::Write,
        }
    }
}

impl From<AccessOrd> for Access {
    fn from(a: AccessOrd) -> Self {
        match a {
            AccessOrd::None => Access::None,
            AccessOrd::Read => Access::Read,
            AccessOrd::Write => Access::Write,
        }
    }
}

fn access_name(a: Option<AccessOrd>) -> &'static str {
    match a {
        None => "unmapped",
        Some(AccessOrd::None) => "none",
        Some(AccessOrd::Read) => "read",
        Some(AccessOrd::Write) => "write",
    }
}

/// One host call and the handler's observable effects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostCallEntry {
    /// Host-call index (the `ecalli` immediate).
    pub index: u32,
    /// State when the `ecalli` was reached (before the host call).
    pub state: Option<VmState>,
    /// Memory the handler read, ascending by address.
    pub reads: Vec<(u32, Vec<u8>)>,
    /// Memory the handler wrote, ascending by address.
    pub writes: Vec<(u32, Vec<u8>)>,
    /// Registers the handler wrote, ascending by index.
    pub set_regs: Vec<(u8, u64)>,
    /// The gas after the host call, if the handler changed it.
    pub set_gas: Option<u64>,
    /// Page-map changes made by the handler, ascending by address (extension `x-pages`).
    pub page_changes: Vec<PageChange>,
    /// The built-in PVM-level host call (GP B.5–B.6: `gas`, `grow_heap`, `machine`, `peek`,
    /// `poke`, `pages`, `invoke`, `expunge`) that answered this call, if libpvm's
    /// [`InnerPvms`](crate::inner::InnerPvms) did (extension `x-builtin`). A replayer with the
    /// same built-ins can re-execute the call, inner PVMs included, and compare.
    pub builtin: Option<String>,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Termination {
    /// `HALT`.
    Halt,
    /// `PANIC=<argument>` (`None`: the bare `PANIC` of older libpvm logs).
    Panic(Option<u64>),
    /// `OOG`.
    OutOfGas,
    /// A page fault at the address: written as `x-fault 0x<address>` followed by
    /// `PANIC=<address>` (JIP-7 has no fault termination; its readers see a panic). Older libpvm
    /// logs wrote `FAULT=0x<address>`, which is still read.
    Fault(u32),
}

/// A whole JIP-7 log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Jip7Log {
    /// Comment lines before `program` (implementation, environment), without the `comment`
    /// keyword. Older logs' free-text lines before `program` land here too.
    pub context: Vec<String>,
    /// The program blob.
    pub program: Vec<u8>,
    /// Page-map changes the host made before the run, relative to the program's own initial
    /// layout (extension `x-pages` in the prelude; applied before the initial writes).
    pub initial_pages: Vec<PageChange>,
    /// Initial memory writes.
    pub initial_writes: Vec<(u32, Vec<u8>)>,
    /// The initial state, if logged.
    pub start: Option<VmState>,
    /// The host calls, in order.
    pub entries: Vec<HostCallEntry>,
    /// The termination, if logged.
    pub end: Option<(Termination, VmState)>,
}

/// Errors of parsing or replaying a log.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Jip7Error {
    /// The text is malformed.
    #[error("line {line}: {message}")]
    Parse {
        /// 1-based line number (0: the whole file).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The program in the log cannot be loaded.
    #[error("the logged program cannot be loaded: {0}")]
    Program(String),
    /// Replay diverged from the log.
    #[error("divergence at {what}: {message}")]
    Divergence {
        /// Which entry (e.g. `ecalli #3` or `termination`).
        what: String,
        /// Logged vs replayed values.
        message: String,
    },
}

fn reg_dump(regs: &[u64; 13]) -> String {
    let mut s = String::new();
    for (i, r) in regs.iter().enumerate() {
        if *r != 0 {
            let _ = write!(s, " r{i:02}={r:#x}");
        }
    }
    s
}

fn state_fields(st: &VmState) -> String {
    format!("pc={} gas={}{}", st.pc, st.gas, reg_dump(&st.regs))
}

fn hex0x(b: &[u8]) -> String {
    format!("0x{}", crate::trace::hex(b))
}

fn mem_line(s: &mut String, kw: &str, arrow: &str, a: u32, d: &[u8]) {
    let _ = writeln!(s, "{kw} {a:#010x} len={} {arrow} {}", d.len(), hex0x(d));
}

fn pages_line(s: &mut String, c: &PageChange) {
    let _ = writeln!(
        s,
        "x-pages {:#010x} len={} access={}",
        c.address,
        c.len,
        access_name(c.access)
    );
}

impl Jip7Log {
    /// Renders the log as JIP-7 text: `comment` lines, the prelude, one block per host call
    /// (preceded by an empty line, as in the JIP-7 example) and the termination line. libpvm's
    /// extension records (`x-builtin`, `x-pages`, `x-fault`) are written where they apply; other
    /// readers ignore them.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for c in &self.context {
            // One comment per line; a line break inside would end the comment.
            for l in c.lines() {
                let _ = writeln!(s, "comment {l}");
            }
        }
        let _ = writeln!(s, "program {}", hex0x(&self.program));
        for c in &self.initial_pages {
            pages_line(&mut s, c);
        }
        for (a, d) in &self.initial_writes {
            mem_line(&mut s, "memwrite", "<-", *a, d);
        }
        if let Some(st) = &self.start {
            let _ = writeln!(s, "start {}", state_fields(st));
        }
        for e in &self.entries {
            s.push('\n');
            if let Some(st) = &e.state {
                let _ = writeln!(s, "ecalli={} {}", e.index, state_fields(st));
            }
            if let Some(b) = &e.builtin {
                let _ = writeln!(s, "x-builtin {b}");
            }
            for (a, d) in &e.reads {
                mem_line(&mut s, "memread", "->", *a, d);
            }
            for c in &e.page_changes {
                pages_line(&mut s, c);
            }
            for (a, d) in &e.writes {
                mem_line(&mut s, "memwrite", "<-", *a, d);
            }
            for (i, v) in &e.set_regs {
                let _ = writeln!(s, "setreg r{i:02} <- {v:#x}");
            }
            if let Some(g) = e.set_gas {
                let _ = writeln!(s, "setgas <- {g}");
            }
        }
        if let Some((t, st)) = &self.end {
            s.push('\n');
            let kind = match t {
                Termination::Halt => "HALT".to_string(),
                Termination::Panic(c) => format!("PANIC={}", c.unwrap_or(0)),
                Termination::OutOfGas => "OOG".to_string(),
                Termination::Fault(a) => {
                    let _ = writeln!(s, "x-fault {a:#010x}");
                    format!("PANIC={a}")
                }
            };
            let _ = writeln!(s, "{kind} {}", state_fields(st));
        }
        s
    }

    /// Parses JIP-7 bytes: like [`Jip7Log::parse`], after checking that the bytes are UTF-8 (an
    /// invalid sequence is an error naming its line).
    pub fn parse_bytes(bytes: &[u8]) -> Result<Jip7Log, Jip7Error> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Jip7Log::parse(text),
            Err(e) => {
                let at = e.valid_up_to();
                let line = 1 + bytes[..at].iter().filter(|b| **b == b'\n').count();
                Err(Jip7Error::Parse {
                    line,
                    message: format!("not UTF-8 text (invalid byte at offset {at})"),
                })
            }
        }
    }

    /// Parses JIP-7 text (and the older libpvm/JIP-6 spellings, see the module docs). Lines that
    /// match no record are ignored, as are `comment` lines, lines starting with `#` and unknown
    /// `x-` extension records; a keyword may be preceded by a logger prefix. A line that starts a
    /// known record but is malformed is an error naming its line number. Never panics.
    pub fn parse(text: &str) -> Result<Jip7Log, Jip7Error> {
        let mut p = Parser::default();
        for (n, raw) in text.lines().enumerate() {
            p.line(raw).map_err(|message| Jip7Error::Parse {
                line: n + 1,
                message,
            })?;
        }
        if !p.seen_program {
            return Err(Jip7Error::Parse {
                line: 0,
                message: "no `program` line".into(),
            });
        }
        if p.pending_fault.is_some() {
            return Err(Jip7Error::Parse {
                line: 0,
                message: "`x-fault` without a following PANIC termination line".into(),
            });
        }
        Ok(p.log)
    }
}

#[derive(Default)]
struct Parser {
    log: Jip7Log,
    seen_program: bool,
    pending_fault: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kw {
    Comment,
    Program,
    Start,
    Ecalli(Option<u32>),
    Read,
    Write,
    SetReg,
    SetGas,
    End(Termination),
    XPages,
    XFault,
    XBuiltin,
}

impl Parser {
    fn entry(&mut self, what: &str) -> Result<&mut HostCallEntry, String> {
        if self.log.end.is_some() {
            return Err(format!("`{what}` after the termination line"));
        }
        self.log
            .entries
            .last_mut()
            .ok_or_else(|| format!("`{what}` before any `ecalli` line"))
    }

    fn line(&mut self, raw: &str) -> Result<(), String> {
        if raw.trim_start().starts_with('#') {
            return Ok(());
        }
        let tokens: Vec<&str> = raw.split_whitespace().collect();
        let mut found = None;
        for (i, t) in tokens.iter().enumerate() {
            if let Some(k) = keyword(t, tokens.get(i + 1).copied())? {
                found = Some((i, k));
                break;
            }
        }
        let Some((pos, kw)) = found else {
            if !self.seen_program && !raw.trim().is_empty() {
                self.log.context.push(raw.trim().to_string());
            }
            return Ok(());
        };
        let rest = &tokens[pos..];
        match kw {
            Kw::Comment => {
                if !self.seen_program {
                    let body: Vec<&str> = rest[1..].to_vec();
                    self.log.context.push(body.join(" "));
                }
            }
            Kw::Program => {
                if self.seen_program {
                    return Err("a second `program` line (one run per log)".into());
                }
                let h = rest.get(1).ok_or("`program` needs the blob in hex")?;
                self.log.program = parse_hex(h)?;
                self.seen_program = true;
            }
            Kw::Start => {
                if !self.log.entries.is_empty() || self.log.end.is_some() {
                    return Err("`start` after the first `ecalli` line".into());
                }
                self.log.start = Some(parse_state(&rest[1..])?);
            }
            Kw::Ecalli(idx) => {
                if self.log.end.is_some() {
                    return Err("`ecalli` after the termination line".into());
                }
                self.log.entries.push(HostCallEntry {
                    index: idx.unwrap_or(0),
                    state: Some(parse_state(&rest[1..])?),
                    ..Default::default()
                });
            }
            Kw::Read => {
                let m = parse_mem(rest, "->")?;
                self.entry("memread")?.reads.push(m);
            }
            Kw::Write => {
                let m = parse_mem(rest, "<-")?;
                if self.log.entries.is_empty() && self.log.end.is_none() {
                    self.log.initial_writes.push(m);
                } else {
                    self.entry("memwrite")?.writes.push(m);
                }
            }
            Kw::SetReg => {
                let r = rest
                    .get(1)
                    .and_then(|t| t.strip_prefix('r'))
                    .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|t| t.parse::<u8>().ok())
                    .filter(|r| *r < 13)
                    .ok_or("`setreg` needs a register r00..r12")?;
                expect_arrow(rest, 2, "<-")?;
                let v = parse_num(rest.get(3).ok_or("`setreg` needs a value")?)?;
                self.entry("setreg")?.set_regs.push((r, v));
            }
            Kw::SetGas => {
                expect_arrow(rest, 1, "<-")?;
                let v = parse_num(rest.get(2).ok_or("`setgas` needs a value")?)?;
                self.entry("setgas")?.set_gas = Some(v);
            }
            Kw::End(t) => {
                if self.log.end.is_some() {
                    return Err("a second termination line".into());
                }
                let st = parse_state(&rest[1..])?;
                let t = match (self.pending_fault.take(), t) {
                    (Some(a), Termination::Panic(_)) => Termination::Fault(a),
                    (Some(_), _) => {
                        return Err("`x-fault` must be followed by a PANIC termination".into())
                    }
                    (None, t) => t,
                };
                self.log.end = Some((t, st));
            }
            Kw::XPages => {
                let c = parse_pages(rest)?;
                if self.log.entries.is_empty() && self.log.end.is_none() {
                    self.log.initial_pages.push(c);
                } else {
                    self.entry("x-pages")?.page_changes.push(c);
                }
            }
            Kw::XFault => {
                if self.log.end.is_some() {
                    return Err("`x-fault` after the termination line".into());
                }
                let a = parse_num(rest.get(1).ok_or("`x-fault` needs an address")?)?;
                let a = u32::try_from(a).map_err(|_| format!("address {a:#x} is not 32-bit"))?;
                self.pending_fault = Some(a);
            }
            Kw::XBuiltin => {
                let name = rest.get(1).ok_or("`x-builtin` needs a name")?;
                if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(format!("`x-builtin` name `{}` is invalid", shorten(name)));
                }
                let name = name.to_string();
                self.entry("x-builtin")?.builtin = Some(name);
            }
        }
        Ok(())
    }
}

/// The record a token starts (given the token after it), `Ok(None)` for an ordinary word, or an
/// error for a token that is clearly meant as a record but malformed (`ecalli=x`). A bare word
/// counts as a keyword only when the next token has the record's shape (`program 0x…`,
/// `start pc=…`, `memread 0x…`, `setreg r…`, `setgas <-`, `HALT pc=…`), so that a logger prefix
/// holding such a word is not mistaken for a record.
fn keyword(t: &str, next: Option<&str>) -> Result<Option<Kw>, String> {
    let next = next.unwrap_or("");
    let shaped = match t {
        "program" | "memread" | "read_memory" | "memwrite" | "write_memory" | "x-pages"
        | "x-fault" => next.starts_with("0x"),
        "start" | "ecalli" | "HALT" | "PANIC" | "OOG" => next.starts_with("pc="),
        "setreg" | "set_register" => next.starts_with('r'),
        "setgas" | "set_gas" => next == "<-",
        _ => true,
    };
    if !shaped {
        return Ok(None);
    }
    Ok(Some(match t {
        "comment" => Kw::Comment,
        "program" => Kw::Program,
        "start" => Kw::Start,
        "ecalli" => Kw::Ecalli(None),
        "memread" | "read_memory" => Kw::Read,
        "memwrite" | "write_memory" => Kw::Write,
        "setreg" | "set_register" => Kw::SetReg,
        "setgas" | "set_gas" => Kw::SetGas,
        "HALT" => Kw::End(Termination::Halt),
        "PANIC" => Kw::End(Termination::Panic(None)),
        "OOG" => Kw::End(Termination::OutOfGas),
        "x-pages" => Kw::XPages,
        "x-fault" => Kw::XFault,
        "x-builtin" => Kw::XBuiltin,
        _ => {
            if let Some(i) = t.strip_prefix("ecalli=") {
                let i = parse_num(i)?;
                let i = u32::try_from(i).map_err(|_| format!("host-call index {i} too large"))?;
                return Ok(Some(Kw::Ecalli(Some(i))));
            }
            if let Some(c) = t.strip_prefix("PANIC=") {
                return Ok(Some(Kw::End(Termination::Panic(Some(parse_num(c)?)))));
            }
            if let Some(a) = t.strip_prefix("FAULT=") {
                let a = parse_num(a)?;
                let a = u32::try_from(a).map_err(|_| format!("address {a:#x} is not 32-bit"))?;
                return Ok(Some(Kw::End(Termination::Fault(a))));
            }
            return Ok(None);
        }
    }))
}

/// At most 40 characters of a token, for messages (cut at a character boundary).
fn shorten(t: &str) -> String {
    let mut s: String = t.chars().take(40).collect();
    if s.len() < t.len() {
        s.push('…');
    }
    s
}

/// A decimal or `0x`-prefixed hexadecimal 64-bit number.
fn parse_num(t: &str) -> Result<u64, String> {
    let bad = || format!("`{}` is not a number", shorten(t));
    let (digits, radix) = match t.strip_prefix("0x") {
        Some(h) => (h, 16),
        None => (t, 10),
    };
    // from_str_radix accepts a leading `+`; the format does not.
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    u64::from_str_radix(digits, radix).map_err(|_| bad())
}

/// `0x` followed by an even number of hex digits. Works on bytes, so any character is safe.
fn parse_hex(t: &str) -> Result<Vec<u8>, String> {
    let h = t
        .strip_prefix("0x")
        .ok_or_else(|| format!("`{}` is not 0x-prefixed hex", shorten(t)))?
        .as_bytes();
    if h.len() % 2 != 0 {
        return Err(format!("hex `{}` has an odd number of digits", shorten(t)));
    }
    fn digit(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    h.chunks_exact(2)
        .enumerate()
        .map(|(i, pair)| match (digit(pair[0]), digit(pair[1])) {
            (Some(hi), Some(lo)) => Ok(hi << 4 | lo),
            _ => Err(format!(
                "`{}` is not hex (bad digit at byte {} of the hex)",
                shorten(t),
                2 * i
            )),
        })
        .collect()
}

fn expect_arrow(rest: &[&str], i: usize, arrow: &str) -> Result<(), String> {
    match rest.get(i) {
        Some(a) if *a == arrow => Ok(()),
        _ => Err(format!("`{}` expects `{arrow}`", rest[0])),
    }
}

fn parse_addr(t: Option<&&str>) -> Result<u32, String> {
    let a = parse_num(t.ok_or("missing address")?)?;
    u32::try_from(a).map_err(|_| format!("address {a:#x} is not 32-bit"))
}

/// `memread|memwrite 0x<addr> [len=<n>] (->|<-) 0x<data>`
fn parse_mem(rest: &[&str], arrow: &str) -> Result<(u32, Vec<u8>), String> {
    let addr = parse_addr(rest.get(1))?;
    let mut i = 2;
    let mut len = None;
    if let Some(l) = rest.get(i).and_then(|t| t.strip_prefix("len=")) {
        len = Some(parse_num(l)?);
        i += 1;
    }
    expect_arrow(rest, i, arrow)?;
    let data = parse_hex(rest.get(i + 1).ok_or("missing data")?)?;
    if let Some(l) = len {
        if l != data.len() as u64 {
            return Err(format!("len={l} but the data holds {} bytes", data.len()));
        }
    }
    if addr as u64 + data.len() as u64 > 1 << 32 {
        return Err(format!(
            "{} bytes at {addr:#x} run past the 32-bit address space",
            data.len()
        ));
    }
    Ok((addr, data))
}

/// `x-pages 0x<addr> len=<bytes> access=<unmapped|none|read|write>`
fn parse_pages(rest: &[&str]) -> Result<PageChange, String> {
    let address = parse_addr(rest.get(1))?;
    let len = rest
        .get(2)
        .and_then(|t| t.strip_prefix("len="))
        .ok_or("`x-pages` needs len=<bytes>")?;
    let len = parse_num(len)?;
    let access = match rest.get(3).and_then(|t| t.strip_prefix("access=")) {
        Some("unmapped") => None,
        Some("none") => Some(AccessOrd::None),
        Some("read") => Some(AccessOrd::Read),
        Some("write") => Some(AccessOrd::Write),
        _ => return Err("`x-pages` needs access=unmapped|none|read|write".into()),
    };
    let page = PAGE_SIZE as u64;
    if address as u64 % page != 0 || len == 0 || len % page != 0 {
        return Err(
            "`x-pages` needs a page-aligned address and a non-zero length in whole pages".into(),
        );
    }
    if address as u64 + len > 1 << 32 {
        return Err("`x-pages` range runs past the 32-bit address space".into());
    }
    Ok(PageChange {
        address,
        len,
        access,
    })
}

/// `pc=<pc> gas=<gas> r00=0x.. …` (other tokens ignored).
fn parse_state(fields: &[&str]) -> Result<VmState, String> {
    let mut st = VmState {
        pc: 0,
        gas: 0,
        regs: [0; 13],
    };
    let (mut pc, mut gas) = (false, false);
    for f in fields {
        if let Some(v) = f.strip_prefix("pc=") {
            let v = parse_num(v)?;
            st.pc = u32::try_from(v).map_err(|_| format!("pc {v} is not 32-bit"))?;
            pc = true;
        } else if let Some(v) = f.strip_prefix("gas=") {
            st.gas = parse_num(v)?;
            gas = true;
        } else if let Some((r, v)) = f.strip_prefix('r').and_then(|x| x.split_once('=')) {
            if !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()) {
                match r.parse::<usize>() {
                    Ok(i) if i < 13 => st.regs[i] = parse_num(v)?,
                    _ => return Err(format!("register `r{}` does not exist", shorten(r))),
                }
            }
        }
    }
    if !pc || !gas {
        return Err("expected pc=… and gas=…".into());
    }
    Ok(st)
}
