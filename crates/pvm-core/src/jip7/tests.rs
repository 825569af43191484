//! Parser totality, format round trips and the replay gas bound.

use super::*;
use crate::Spec;

/// A small deterministic generator (xorshift64*), so the property tests need no dependency and
/// every failure is reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const SAMPLE: &str = "comment implementation test 1
program 0x0102aabbccddeeff
memwrite 0x00001000 len=8 <- 0x0000000000000001
start pc=0 gas=10000 r07=0x10 r09=0x10000

ecalli=10 pc=42 gas=9980 r01=0x1 r03=0x1000
memread 0x00001000 len=4 -> 0x01020304
memwrite 0x00002000 len=2 <- 0xffee
setreg r00 <- 0x100
setgas <- 9950

HALT pc=42 gas=9920 r00=0x100 r02=0x4
";

/// Pieces that random lines are built from: keywords, their fields, and hostile characters.
const PIECES: &[&str] = &[
    "program",
    "memwrite",
    "memread",
    "start",
    "ecalli=",
    "ecalli=7",
    "setreg",
    "setgas",
    "HALT",
    "OOG",
    "PANIC=",
    "PANIC=3",
    "FAULT=0x",
    "comment",
    "#",
    "x-pages",
    "x-fault",
    "x-builtin",
    "pc=",
    "pc=5",
    "gas=",
    "gas=10",
    "r07=0x1",
    "r13=0x1",
    "r99999999999999=1",
    "len=",
    "len=2",
    "len=99999999999999999999",
    "<-",
    "->",
    "0x",
    "0xaé0",
    "0xé",
    "0x0g",
    "0x00",
    "0x0001",
    "0x00010000",
    "0xffffffff",
    "access=write",
    "access=bogus",
    "é",
    "€",
    "😀",
    "\u{0}",
    "\t",
    "r",
    "r00",
    "r12",
    "=",
    "0x1é",
    "18446744073709551616",
    "-1",
    "+1",
    "invoke",
    "ecalli",
    "set_gas",
    "read_memory",
];

fn random_line(rng: &mut Rng) -> String {
    let n = rng.below(7);
    let mut parts = Vec::new();
    for _ in 0..n {
        if rng.below(5) == 0 {
            // Raw characters, multi-byte ones included.
            let len = rng.below(6);
            let s: String = (0..len)
                .map(|_| match rng.below(4) {
                    0 => char::from(b'0' + rng.below(10) as u8),
                    1 => ['é', '€', '😀', 'ß', 'x'][rng.below(5)],
                    2 => ['a', 'f', 'g', '=', '-'][rng.below(5)],
                    _ => char::from_u32(rng.next() as u32 % 0x11_0000).unwrap_or('?'),
                })
                .collect();
            parts.push(s);
        } else {
            let p = PIECES[rng.below(PIECES.len())].to_string();
            // Sometimes glue a piece to the next (`0x` + digits, `pc=` + text).
            if rng.below(3) == 0 {
                if let Some(last) = parts.last_mut() {
                    last.push_str(&p);
                    continue;
                }
            }
            parts.push(p);
        }
    }
    parts.join(if rng.below(8) == 0 { "  " } else { " " })
}

#[test]
fn multibyte_character_among_hex_digits_is_a_typed_error() {
    // Issue #12 F1: `program 0xaé0` used to slice inside the `é`.
    let bytes = [
        0x70, 0x72, 0x6f, 0x67, 0x72, 0x61, 0x6d, 0x20, 0x30, 0x78, 0x61, 0xc3, 0xa9, 0x30, 0x0a,
    ];
    let text = std::str::from_utf8(&bytes).unwrap();
    assert_eq!(text, "program 0xaé0\n");
    match Jip7Log::parse(text) {
        Err(Jip7Error::Parse { line: 1, message }) => {
            assert!(message.contains("not hex"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    for t in [
        "program 0x00\nmemwrite 0x0001é000 len=1 <- 0x00",
        "program 0x00\nmemwrite 0x00010000 len=1 <- 0xé",
        "program 0x00\nstart pc=é gas=1",
        "program 0x00\nstart pc=1 gas=1 r01=0x1é",
        "program 0x00\necalli=é pc=1 gas=1",
        "program 0x00\nHALT pc=1 gas=1é",
        "program 0x00\nPANIC=é pc=1 gas=1",
    ] {
        assert!(
            matches!(Jip7Log::parse(t), Err(Jip7Error::Parse { line: 2, .. })),
            "{t}: {:?}",
            Jip7Log::parse(t)
        );
    }
}

#[test]
fn random_lines_never_panic() {
    for seed in 1..=400u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut lines = vec![];
        if rng.below(2) == 0 {
            lines.push("program 0x000005280000000001".to_string());
        }
        for _ in 0..rng.below(30) {
            lines.push(random_line(&mut rng));
        }
        let text = lines.join("\n");
        let r = std::panic::catch_unwind(|| Jip7Log::parse(&text));
        let parsed = r.unwrap_or_else(|_| panic!("seed {seed}: parser panicked on {text:?}"));
        match parsed {
            Ok(log) => {
                // Whatever parses, renders and parses back to the same log (context aside).
                let again = Jip7Log::parse(&log.to_text())
                    .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text:?}"));
                assert_eq!(again.entries, log.entries, "seed {seed}");
                assert_eq!(again.end, log.end, "seed {seed}");
            }
            Err(Jip7Error::Parse { line, .. }) => assert!(line <= lines.len(), "seed {seed}"),
            Err(e) => panic!("seed {seed}: not a parse error: {e}"),
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    for seed in 1..=300u64 {
        let mut rng = Rng(seed.wrapping_mul(0xd1b5_4a32_d192_ed03) | 1);
        let mut bytes: Vec<u8> = b"program 0x".to_vec();
        for _ in 0..rng.below(200) {
            // Mostly ASCII with keywords, some arbitrary bytes (invalid UTF-8 included).
            match rng.below(4) {
                0 => bytes.push(rng.next() as u8),
                1 => bytes.extend_from_slice(PIECES[rng.below(PIECES.len())].as_bytes()),
                2 => bytes.push(b"\n \t0x=<->"[rng.below(9)]),
                _ => bytes.push(b"0123456789abcdef"[rng.below(16)]),
            }
        }
        let r = std::panic::catch_unwind(|| Jip7Log::parse_bytes(&bytes));
        assert!(r.is_ok(), "seed {seed}: parser panicked on {bytes:x?}");
        let lossy = String::from_utf8_lossy(&bytes).into_owned();
        assert!(std::panic::catch_unwind(|| Jip7Log::parse(&lossy)).is_ok());
    }
}

#[test]
fn invalid_utf8_names_its_line() {
    let mut b = b"program 0x00\nstart pc=0 gas=1\n".to_vec();
    b.extend_from_slice(&[0x65, 0xff, 0x0a]);
    match Jip7Log::parse_bytes(&b) {
        Err(Jip7Error::Parse { line: 3, message }) => assert!(message.contains("UTF-8")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn current_spelling_parses_and_is_written_back_verbatim() {
    let log = Jip7Log::parse(SAMPLE).unwrap();
    assert_eq!(log.context, vec!["implementation test 1".to_string()]);
    assert_eq!(log.entries.len(), 1);
    assert_eq!(log.entries[0].set_regs, vec![(0, 0x100)]);
    assert_eq!(log.end.as_ref().unwrap().0, Termination::Halt);
    assert_eq!(log.to_text(), SAMPLE);
}

#[test]
fn termination_spellings() {
    let end = |t: &str| {
        Jip7Log::parse(&format!("program 0x00\n{t}"))
            .unwrap()
            .end
            .unwrap()
            .0
    };
    assert_eq!(end("PANIC=0 pc=1 gas=0"), Termination::Panic(Some(0)));
    assert_eq!(end("PANIC=0x2a pc=1 gas=0"), Termination::Panic(Some(42)));
    assert_eq!(end("PANIC pc=1 gas=0"), Termination::Panic(None));
    assert_eq!(end("OOG pc=1 gas=0"), Termination::OutOfGas);
    assert_eq!(end("FAULT=0x20000 pc=1 gas=0"), Termination::Fault(0x20000));
    assert_eq!(
        end("x-fault 0x00020000\nPANIC=131072 pc=1 gas=0"),
        Termination::Fault(0x20000)
    );
    // Written: PANIC always with an argument; a fault as x-fault + PANIC=<address>.
    let mut log = Jip7Log::parse("program 0x00\nPANIC pc=1 gas=0").unwrap();
    assert!(log.to_text().ends_with("\nPANIC=0 pc=1 gas=0\n"));
    log.end.as_mut().unwrap().0 = Termination::Fault(0x20000);
    assert!(log
        .to_text()
        .ends_with("\nx-fault 0x00020000\nPANIC=131072 pc=1 gas=0\n"));
}

#[test]
fn comments_prefixes_and_extension_records() {
    let text = "# a hash comment with ecalli=3 pc=1 gas=1\n\
        comment chain fluffy memwrite 0x00010000 len=1 <- 0x00\n\
        [node 1] INFO program 0x00\n\
        start pc=0 gas=100\n\
        2026-01-01 ecalli=1 pc=0 gas=90 r07=0x5\n\
        x-builtin grow_heap\n\
        x-pages 0x00030000 len=8192 access=write\n\
        x-something-new 0x1 whatever\n\
        comment ecalli=99 pc=1 gas=1 is not an entry\n\
        setreg r07 <- 0x32\n\
        OOG pc=0 gas=0\n";
    let log = Jip7Log::parse(text).unwrap();
    assert_eq!(
        log.context,
        vec!["chain fluffy memwrite 0x00010000 len=1 <- 0x00"]
    );
    assert!(log.initial_writes.is_empty());
    assert_eq!(log.entries.len(), 1);
    let e = &log.entries[0];
    assert_eq!(e.builtin.as_deref(), Some("grow_heap"));
    assert_eq!(
        e.page_changes,
        vec![PageChange {
            address: 0x30000,
            len: 8192,
            access: Some(AccessOrd::Write)
        }]
    );
    let again = Jip7Log::parse(&log.to_text()).unwrap();
    assert_eq!(again, log);
}

#[test]
fn malformed_records_name_their_line() {
    for (t, line) in [
        ("program 0x00\nmemread 0x00010000 len=1 -> 0x00", 2),
        ("program 0x00\nstart pc=0 gas=1\nsetgas <- 5", 3),
        ("program 0x00\necalli=1 pc=0 gas=1\nsetreg r13 <- 0x1", 3),
        (
            "program 0x00\necalli=1 pc=0 gas=1\nmemwrite 0x10000 len=2 <- 0x00",
            3,
        ),
        (
            "program 0x00\necalli=1 pc=0 gas=1\nx-pages 0x10001 len=4096 access=read",
            3,
        ),
        (
            "program 0x00\necalli=1 pc=0 gas=1\nx-pages 0x10000 len=4096 access=rw",
            3,
        ),
        ("program 0x00\nprogram 0x00", 2),
        ("program 0x00\nHALT pc=0 gas=0\necalli=1 pc=0 gas=1", 3),
        ("program 0x00\nx-fault 0x10000\nHALT pc=0 gas=0", 3),
        ("program 0x00\nmemwrite 0xffffffff len=2 <- 0x0000", 2),
        ("start pc=0 gas=1", 0),
    ] {
        match Jip7Log::parse(t) {
            Err(Jip7Error::Parse { line: l, .. }) => assert_eq!(l, line, "{t}"),
            other => panic!("{t}: {other:?}"),
        }
    }
}

#[test]
fn a_log_without_start_replays_with_a_bounded_gas() {
    // Issue #12 F5: a jump-to-self loop (code blob: no jump table, 5 code bytes `jump 0`) and
    // no `start` line used to run with 2^63 − 1 gas and never return.
    let log = Jip7Log::parse("program 0x000005280000000001").unwrap();
    let opts = ReplayOptions {
        gas: Some(1000),
        ..ReplayOptions::default()
    };
    let r = replay_with(&log, &opts).unwrap();
    assert_eq!(r.exit, crate::Exit::OutOfGas);
    assert!(r.divergences.is_empty(), "{:?}", r.divergences);
    assert!(r.end.gas < 1000);
    const { assert!(DEFAULT_REPLAY_GAS < i64::MAX / 1_000_000) };
}

#[test]
fn default_gas_bound_terminates() {
    if cfg!(debug_assertions) {
        // 10^9 gas of a tight loop takes a few seconds in an optimised build only.
        return;
    }
    let log = Jip7Log::parse("program 0x000005280000000001").unwrap();
    let r = replay_with(&log, &ReplayOptions::default()).unwrap();
    assert_eq!(r.exit, crate::Exit::OutOfGas);
}

#[test]
fn old_spelling_still_parses() {
    let text = "implementation old 0\nprogram 0x00\nstart pc=0 gas=5\n\
        ecalli=2 pc=0 gas=4\nread_memory 0x00010000 -> 0x01\nwrite_memory 0x00010000 <- 0x02\n\
        set_register r07 <- 0x3\nset_gas <- 1\nPANIC pc=0 gas=0\n";
    let log = Jip7Log::parse(text).unwrap();
    assert_eq!(log.context, vec!["implementation old 0"]);
    let e = &log.entries[0];
    assert_eq!(
        (e.reads.len(), e.writes.len(), e.set_regs.clone(), e.set_gas),
        (1, 1, vec![(7, 3)], Some(1))
    );
    assert_eq!(log.end.unwrap().0, Termination::Panic(None));
    // The replay wrapper keeps its old signature.
    let _ = replay(
        &Jip7Log::parse("program 0x00").unwrap(),
        Spec::Gp0_8_0,
        10,
        false,
    );
}

#[test]
fn host_set_up_pages_and_memory_are_logged_in_the_prelude() {
    use crate::asm::{Assembler, Operands as Ops};
    use crate::isa::Opcode as O;
    use crate::{Access, HostOutcome, Program};
    // r9 = μ[0x20000]; ecalli 3; halt — on a code blob, whose memory is all the host's doing.
    let mut a = Assembler::new();
    a.inst(O::LoadU64, Ops::reg_imm(9, 0x20000));
    a.inst(O::Ecalli, Ops::imm(3));
    a.inst(O::LoadImm, Ops::reg_imm(0, -65536));
    a.inst(O::JumpInd, Ops::reg_imm(0, 0));
    let blob = a.finish();
    let program = Program::from_code(&blob, Default::default()).unwrap();
    let mut vm = program.instantiate(&[]).unwrap();
    vm.set_gas(10_000);
    vm.memory_mut().map(0x20000, 4096, Access::Write).unwrap();
    vm.memory_mut().map(0x40000, 8192, Access::Read).unwrap();
    vm.memory_mut().write(0x20000, &[0x34, 0x12]).unwrap();
    let mut log = Jip7Log {
        program: blob.clone(),
        ..Jip7Log::default()
    };
    let exit = run_recorded(&mut vm, &mut log, |_, _| HostOutcome::Continue);
    assert_eq!(exit, crate::Exit::Halt);
    assert_eq!(vm.registers()[9], 0x1234);
    let text = log.to_text();
    let prelude = format!(
        "program 0x{}\n\
         x-pages 0x00020000 len=4096 access=write\n\
         x-pages 0x00040000 len=8192 access=read\n\
         memwrite 0x00020000 len=2 <- 0x3412\n\
         start pc=0 gas=10000\n",
        crate::trace::hex(&blob)
    );
    assert!(text.starts_with(&prelude), "{text}");
    let parsed = Jip7Log::parse(&text).unwrap();
    assert_eq!(parsed, log);
    let r = replay_with(&parsed, &ReplayOptions::default()).unwrap();
    assert!(r.divergences.is_empty(), "{:?}", r.divergences);
    assert_eq!(r.end.regs[9], 0x1234);
    // Without the page records the initial write has nowhere to go.
    let stripped = text.replace("x-pages 0x00020000 len=4096 access=write\n", "");
    let err = replay_with(
        &Jip7Log::parse(&stripped).unwrap(),
        &ReplayOptions::default(),
    );
    assert!(matches!(err, Err(Jip7Error::Program(_))), "{err:?}");
}

#[test]
fn replaying_random_logs_never_panics() {
    // Programs: a jump-to-self loop, ecalli 1 + trap, and a standard program (hostcalls-like
    // layout from the assembler) so that memory records land on real pages.
    let std_prog = {
        use crate::asm::{standard_program, Assembler, Operands as Ops};
        use crate::isa::Opcode as O;
        let mut a = Assembler::new();
        a.inst(O::Ecalli, Ops::imm(1));
        a.inst(O::LoadU64, Ops::reg_imm(9, 0x20000));
        a.inst(O::Ecalli, Ops::imm(2));
        a.inst(O::Trap, Ops::none());
        crate::trace::hex(&standard_program(None, &[1, 2], &[3], 1, 4096, &a.finish()))
    };
    let programs = [
        "000005280000000001".to_string(),
        "00000a0a0100000000000021".to_string(),
        std_prog,
    ];
    let addrs = [
        "0x00000000",
        "0x00010000",
        "0x00020000",
        "0x00021000",
        "0xfffff000",
        "0xfeff0000",
    ];
    let (mut replayed, mut loaded) = (0, 0);
    for seed in 1..=300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut t = format!("program 0x{}\n", programs[rng.below(programs.len())]);
        if rng.below(3) == 0 {
            t += &format!(
                "x-pages {} len=4096 access=write\n",
                addrs[rng.below(addrs.len())]
            );
        }
        if rng.below(2) == 0 {
            t += &format!(
                "start pc={} gas={} r07=0x{:x}\n",
                rng.below(12),
                [0u64, 5, 1000, u64::MAX][rng.below(4)],
                rng.next()
            );
        }
        for _ in 0..rng.below(5) {
            t += &format!(
                "ecalli={} pc={} gas={}\n",
                rng.below(3),
                rng.below(12),
                rng.below(2000)
            );
            for _ in 0..rng.below(4) {
                let a = addrs[rng.below(addrs.len())];
                t += &match rng.below(6) {
                    0 => format!("memread {a} len=2 -> 0x0102\n"),
                    1 => format!("memwrite {a} len=1 <- 0x07\n"),
                    2 => format!(
                        "x-pages {a} len=8192 access={}\n",
                        ["unmapped", "none", "read", "write"][rng.below(4)]
                    ),
                    3 => format!("setreg r{:02} <- 0x{:x}\n", rng.below(13), rng.next()),
                    4 => format!(
                        "x-builtin {}\n",
                        ["gas", "grow_heap", "invoke", "nonsense"][rng.below(4)]
                    ),
                    _ => format!("setgas <- {}\n", rng.next()),
                };
            }
        }
        if rng.below(2) == 0 {
            if rng.below(3) == 0 {
                t += &format!("x-fault {}\n", addrs[rng.below(addrs.len())]);
                t += "PANIC=1 pc=3 gas=0\n";
            } else {
                t += &format!(
                    "{} pc={} gas=0 r09=0x1\n",
                    ["HALT", "OOG", "PANIC=0"][rng.below(3)],
                    rng.below(12)
                );
            }
        }
        let Ok(log) = Jip7Log::parse(&t) else {
            continue;
        };
        for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
            let opts = ReplayOptions {
                spec,
                gas: Some(5000),
                all: rng.below(2) == 0,
                ..ReplayOptions::default()
            };
            let r = std::panic::catch_unwind(|| replay_with(&log, &opts));
            let r = r.unwrap_or_else(|_| panic!("seed {seed}: replay panicked on\n{t}"));
            replayed += 1;
            loaded += r.is_ok() as usize;
        }
    }
    assert!(
        replayed > 300 && loaded > 200,
        "{replayed} replays, {loaded} loaded"
    );
}
