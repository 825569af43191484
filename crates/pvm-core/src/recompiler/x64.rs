//! A small x86-64 encoder: exactly the instruction forms the code generator uses, with labels and
//! rel32 fixups. Registers are numbered as the hardware numbers them (rax = 0 … r15 = 15).

/// A general-purpose register, hardware numbering.
pub(crate) type R = u8;

pub(crate) const RAX: R = 0;
pub(crate) const RCX: R = 1;
pub(crate) const RDX: R = 2;
pub(crate) const RBX: R = 3;
pub(crate) const RSP: R = 4;
pub(crate) const RBP: R = 5;
pub(crate) const RSI: R = 6;
pub(crate) const RDI: R = 7;
pub(crate) const R8: R = 8;
pub(crate) const R9: R = 9;
pub(crate) const R10: R = 10;
pub(crate) const R11: R = 11;
pub(crate) const R12: R = 12;
pub(crate) const R13: R = 13;
pub(crate) const R14: R = 14;
pub(crate) const R15: R = 15;

/// A register or memory operand (the ModRM `r/m` field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rm {
    /// A register.
    Reg(R),
    /// `[base + index * scale + disp]`.
    Mem {
        base: R,
        index: Option<(R, u8)>,
        disp: i32,
    },
}

impl Rm {
    /// `[base + disp]`.
    pub fn mem(base: R, disp: i32) -> Rm {
        Rm::Mem {
            base,
            index: None,
            disp,
        }
    }

    /// `[base + index * scale]`.
    pub fn idx(base: R, index: R, scale: u8) -> Rm {
        Rm::Mem {
            base,
            index: Some((index, scale)),
            disp: 0,
        }
    }
}

/// Operand size of an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Size {
    B8,
    B16,
    B32,
    B64,
}

/// The arithmetic group of opcodes `00`–`3F` and `81 /n` (the `/n` digit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Alu {
    Add = 0,
    Or = 1,
    And = 4,
    Sub = 5,
    Xor = 6,
    Cmp = 7,
}

/// The shift group `C1/D3 /n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shift {
    Rol = 0,
    Ror = 1,
    Shl = 4,
    Shr = 5,
    Sar = 7,
}

/// Condition codes (the low nibble of `Jcc`/`SETcc`/`CMOVcc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cond {
    /// Below (unsigned <).
    B = 0x2,
    /// Above or equal (unsigned >=).
    Ae = 0x3,
    /// Equal / zero.
    E = 0x4,
    /// Not equal / not zero.
    Ne = 0x5,
    /// Below or equal (unsigned <=).
    Be = 0x6,
    /// Above (unsigned >).
    A = 0x7,
    /// Less (signed <).
    L = 0xc,
    /// Greater or equal (signed >=).
    Ge = 0xd,
    /// Less or equal (signed <=).
    Le = 0xe,
    /// Greater (signed >).
    G = 0xf,
}

/// A position in the code that jumps can name before it is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Label(pub u32);

/// One instruction assembled in registers: `head` holds the prefixes, REX, opcode, ModRM and SIB
/// (at most 7 bytes), `tail` the displacement and immediate (at most 8 bytes). Appended to the
/// code at once by [`Asm::emit`].
#[derive(Clone, Copy)]
struct Enc {
    head: u64,
    hn: u32,
    tail: u64,
    tn: u32,
}

impl Enc {
    #[inline(always)]
    fn new() -> Enc {
        Enc {
            head: 0,
            hn: 0,
            tail: 0,
            tn: 0,
        }
    }

    /// Appends a byte to the head.
    #[inline(always)]
    fn put(&mut self, b: u8) {
        debug_assert!(self.hn < 8);
        self.head |= (b as u64) << (8 * self.hn);
        self.hn += 1;
    }

    /// Appends a byte to the tail.
    #[inline(always)]
    fn tail8(&mut self, b: u8) {
        debug_assert!(self.tn < 8);
        self.tail |= (b as u64) << (8 * self.tn);
        self.tn += 1;
    }

    /// Appends a little-endian 16-bit value to the tail.
    #[inline(always)]
    fn tail16(&mut self, v: u16) {
        debug_assert!(self.tn <= 6);
        self.tail |= (v as u64) << (8 * self.tn);
        self.tn += 2;
    }

    /// Appends a little-endian 32-bit value to the tail.
    #[inline(always)]
    fn tail32(&mut self, v: u32) {
        debug_assert!(self.tn <= 4);
        self.tail |= (v as u64) << (8 * self.tn);
        self.tn += 4;
    }

    /// `[prefix] [REX] opcode ModRM [SIB] [disp]` for register field `reg` and operand `rm`.
    /// `force_rex` is for byte operations on spl/bpl/sil/dil.
    #[inline(always)]
    fn rm(size: Size, opcode: &[u8], reg: u8, rm: Rm, force_rex: bool) -> Enc {
        let mut e = Enc::new();
        if size == Size::B16 {
            e.put(0x66);
        }
        // A mandatory prefix (F3 of popcnt/lzcnt/tzcnt) goes before REX.
        let opcode = match opcode {
            [0xf3, rest @ ..] => {
                e.put(0xf3);
                rest
            }
            _ => opcode,
        };
        let w = (size == Size::B64) as u8;
        let r = (reg >> 3) & 1;
        let (x, b) = match rm {
            Rm::Reg(rr) => (0, (rr >> 3) & 1),
            Rm::Mem { base, index, .. } => {
                (index.map_or(0, |(i, _)| (i >> 3) & 1), (base >> 3) & 1)
            }
        };
        let byte_regs = size == Size::B8
            && (force_rex
                || (4..8).contains(&reg)
                || matches!(rm, Rm::Reg(rr) if (4..8).contains(&rr)));
        if w | r | x | b != 0 || byte_regs || force_rex {
            e.put(0x40 | (w << 3) | (r << 2) | (x << 1) | b);
        }
        for &o in opcode {
            e.put(o);
        }
        let reg3 = (reg & 7) << 3;
        match rm {
            Rm::Reg(rr) => e.put(0xc0 | reg3 | (rr & 7)),
            Rm::Mem { base, index, disp } => {
                let (md, disp_len) = if disp == 0 && base & 7 != RBP {
                    (0x00, 0)
                } else if i8::try_from(disp).is_ok() {
                    (0x40, 1)
                } else {
                    (0x80, 4)
                };
                match index {
                    None if base & 7 != RSP => e.put(md | reg3 | (base & 7)),
                    None => {
                        e.put(md | reg3 | 4);
                        e.put(0x24);
                    }
                    Some((i, scale)) => {
                        debug_assert!(i != RSP);
                        let ss = match scale {
                            1 => 0,
                            2 => 1,
                            4 => 2,
                            _ => 3,
                        };
                        e.put(md | reg3 | 4);
                        e.put((ss << 6) | ((i & 7) << 3) | (base & 7));
                    }
                }
                match disp_len {
                    0 => {}
                    1 => e.tail8(disp as i8 as u8),
                    _ => e.tail32(disp as u32),
                }
            }
        }
        e
    }
}

/// Machine code under construction.
pub(crate) struct Asm {
    pub code: Vec<u8>,
    labels: Vec<u32>,
    /// (position of a rel32 field, label it refers to).
    fixups: Vec<(u32, Label)>,
    /// Registers (bit `r`) that the code emitted since the last [`Asm::take_written`] may have
    /// written, with every register counted at a join point (a bound label) and after
    /// instructions with implicit operands. A superset: codegen relies on a register it finds
    /// absent here still holding what it held.
    written: u16,
}

const UNBOUND: u32 = u32::MAX;

/// Every register (for [`Asm`]'s `written`).
const ALL: u16 = u16::MAX;

impl Asm {
    /// An assembler with room for `code` bytes, `labels` labels and `fixups` rel32 fixups.
    pub fn with_capacity(code: usize, labels: usize, fixups: usize) -> Asm {
        Asm {
            code: Vec::with_capacity(code),
            labels: Vec::with_capacity(labels),
            fixups: Vec::with_capacity(fixups),
            written: ALL,
        }
    }

    /// The registers that may have been written since the last call (see `written`), and
    /// starts counting afresh.
    pub fn take_written(&mut self) -> u16 {
        std::mem::replace(&mut self.written, 0)
    }

    /// Counts `r` as written.
    #[inline(always)]
    fn wrote(&mut self, r: R) {
        self.written |= 1 << r;
    }

    /// Counts the register of `rm`, if it is one, as written.
    #[inline(always)]
    fn wrote_rm(&mut self, rm: Rm) {
        if let Rm::Reg(r) = rm {
            self.wrote(r);
        }
    }

    /// A new, unbound label.
    pub fn label(&mut self) -> Label {
        self.labels.push(UNBOUND);
        Label(self.labels.len() as u32 - 1)
    }

    /// Binds `l` to the current position.
    pub fn bind(&mut self, l: Label) {
        debug_assert_eq!(self.labels[l.0 as usize], UNBOUND);
        self.labels[l.0 as usize] = self.code.len() as u32;
        // Code may arrive here from anywhere.
        self.written = ALL;
    }

    /// The position a bound label stands for.
    pub fn offset_of(&self, l: Label) -> Option<u32> {
        let o = self.labels[l.0 as usize];
        (o != UNBOUND).then_some(o)
    }

    /// Resolves every rel32 fixup; `false` if a label was never bound.
    pub fn finish(&mut self) -> bool {
        for &(at, l) in &self.fixups {
            let target = self.labels[l.0 as usize];
            if target == UNBOUND {
                return false;
            }
            let rel = target as i64 - (at as i64 + 4);
            self.code[at as usize..at as usize + 4].copy_from_slice(&(rel as i32).to_le_bytes());
        }
        true
    }

    pub fn pos(&self) -> u32 {
        self.code.len() as u32
    }

    #[inline]
    fn byte(&mut self, b: u8) {
        self.code.push(b);
    }

    #[inline]
    fn bytes(&mut self, b: &[u8]) {
        self.code.extend_from_slice(b);
    }

    /// Appends `e` followed by a rel32 field that refers to `l` (resolved by [`Asm::finish`]).
    #[inline]
    fn emit_rel32(&mut self, mut e: Enc, l: Label) {
        debug_assert_eq!(e.tn, 0);
        self.fixups.push((self.pos() + e.hn, l));
        e.tail32(0);
        self.emit(e);
    }

    /// Appends an assembled instruction: each half as a whole word (a fixed-size copy), the
    /// length cut back to the bytes it holds.
    #[inline(always)]
    fn emit(&mut self, e: Enc) {
        let len = self.code.len();
        self.code.extend_from_slice(&e.head.to_le_bytes());
        self.code.truncate(len + e.hn as usize);
        if e.tn != 0 {
            self.code.extend_from_slice(&e.tail.to_le_bytes());
            self.code.truncate(len + (e.hn + e.tn) as usize);
        }
    }

    /// Emits `[prefix] [REX] opcode ModRM [SIB] [disp]` for register field `reg` and operand `rm`.
    /// `force_rex` is for byte operations on spl/bpl/sil/dil.
    #[inline(always)]
    fn op_rm(&mut self, size: Size, opcode: &[u8], reg: u8, rm: Rm, force_rex: bool) {
        self.emit(Enc::rm(size, opcode, reg, rm, force_rex));
    }

    /// [`Asm::op_rm`] followed by an 8-bit immediate.
    #[inline(always)]
    fn op_rm_imm8(&mut self, size: Size, opcode: &[u8], reg: u8, rm: Rm, imm: u8) {
        let mut e = Enc::rm(size, opcode, reg, rm, false);
        e.tail8(imm);
        self.emit(e);
    }

    /// [`Asm::op_rm`] followed by a 16-bit immediate.
    #[inline(always)]
    fn op_rm_imm16(&mut self, size: Size, opcode: &[u8], reg: u8, rm: Rm, imm: u16) {
        let mut e = Enc::rm(size, opcode, reg, rm, false);
        e.tail16(imm);
        self.emit(e);
    }

    /// [`Asm::op_rm`] followed by a 32-bit immediate.
    #[inline(always)]
    fn op_rm_imm32(&mut self, size: Size, opcode: &[u8], reg: u8, rm: Rm, imm: u32) {
        let mut e = Enc::rm(size, opcode, reg, rm, false);
        e.tail32(imm);
        self.emit(e);
    }

    /// `mov dst, src` (register ← r/m), any size (8/16-bit forms merge into the register).
    pub fn mov_r_rm(&mut self, size: Size, dst: R, src: Rm) {
        self.wrote(dst);
        if src == Rm::Reg(dst) && size == Size::B64 {
            return;
        }
        let op = if size == Size::B8 { 0x8a } else { 0x8b };
        self.op_rm(size, &[op], dst, src, false);
    }

    /// `mov dst, src` (r/m ← register).
    pub fn mov_rm_r(&mut self, size: Size, dst: Rm, src: R) {
        self.wrote_rm(dst);
        if dst == Rm::Reg(src) && size == Size::B64 {
            return;
        }
        let op = if size == Size::B8 { 0x88 } else { 0x89 };
        self.op_rm(size, &[op], src, dst, false);
    }

    /// `mov dst, imm`: the shortest form that gives the 64-bit value `imm` in a register. Never
    /// touches the flags.
    pub fn mov_r_imm(&mut self, dst: R, imm: u64) {
        self.wrote(dst);
        if imm <= u32::MAX as u64 {
            let mut e = Enc::new();
            if dst >= 8 {
                e.put(0x41);
            }
            e.put(0xb8 + (dst & 7));
            e.tail32(imm as u32);
            self.emit(e);
        } else if (imm as i64) >= i32::MIN as i64 && (imm as i64) <= i32::MAX as i64 {
            self.op_rm_imm32(Size::B64, &[0xc7], 0, Rm::Reg(dst), imm as i32 as u32);
        } else {
            let mut e = Enc::new();
            e.put(0x48 | ((dst >> 3) & 1));
            e.put(0xb8 + (dst & 7));
            e.tail = imm;
            e.tn = 8;
            self.emit(e);
        }
    }

    /// `mov size [dst], imm` (the immediate sign-extended to 64 bits for `B64`).
    pub fn mov_rm_imm(&mut self, size: Size, dst: Rm, imm: i32) {
        self.wrote_rm(dst);
        match size {
            Size::B8 => {
                self.op_rm_imm8(size, &[0xc6], 0, dst, imm as u8);
            }
            Size::B16 => {
                self.op_rm_imm16(size, &[0xc7], 0, dst, imm as u16);
            }
            _ => {
                self.op_rm_imm32(size, &[0xc7], 0, dst, imm as u32);
            }
        }
    }

    /// `movzx dst, byte/word src` (zero-extends to 64 bits).
    pub fn movzx(&mut self, from: Size, dst: R, src: Rm) {
        self.wrote(dst);
        let op = if from == Size::B8 { 0xb6 } else { 0xb7 };
        self.op_rm(Size::B32, &[0x0f, op], dst, src, from == Size::B8);
    }

    /// `movsx dst64, byte/word/dword src`.
    pub fn movsx(&mut self, from: Size, dst: R, src: Rm) {
        self.wrote(dst);
        match from {
            Size::B8 => self.op_rm(Size::B64, &[0x0f, 0xbe], dst, src, true),
            Size::B16 => self.op_rm(Size::B64, &[0x0f, 0xbf], dst, src, false),
            _ => self.op_rm(Size::B64, &[0x63], dst, src, false),
        }
    }

    /// `lea dst, [mem]` (32-bit destination: the address is taken mod 2^32).
    pub fn lea(&mut self, size: Size, dst: R, mem: Rm) {
        self.wrote(dst);
        self.op_rm(size, &[0x8d], dst, mem, false);
    }

    /// `op dst, src` (register ← register op r/m).
    pub fn alu_r_rm(&mut self, size: Size, op: Alu, dst: R, src: Rm) {
        self.wrote(dst);
        self.op_rm(size, &[(op as u8) * 8 + 3], dst, src, false);
    }

    /// `op dst, src` (r/m ← r/m op register).
    pub fn alu_rm_r(&mut self, size: Size, op: Alu, dst: Rm, src: R) {
        self.wrote_rm(dst);
        self.op_rm(size, &[(op as u8) * 8 + 1], src, dst, false);
    }

    /// `op dst, imm` (imm sign-extended).
    pub fn alu_rm_imm(&mut self, size: Size, op: Alu, dst: Rm, imm: i32) {
        self.wrote_rm(dst);
        if size == Size::B8 {
            self.op_rm_imm8(size, &[0x80], op as u8, dst, imm as u8);
        } else if let Ok(i) = i8::try_from(imm) {
            self.op_rm_imm8(size, &[0x83], op as u8, dst, i as u8);
        } else {
            self.op_rm_imm32(size, &[0x81], op as u8, dst, imm as u32);
        }
    }

    /// `test a, b`.
    pub fn test_rm_r(&mut self, size: Size, a: Rm, b: R) {
        let op = if size == Size::B8 { 0x84 } else { 0x85 };
        self.op_rm(size, &[op], b, a, false);
    }

    /// `test a, imm` (8-bit form for B8).
    pub fn test_rm_imm(&mut self, size: Size, a: Rm, imm: i32) {
        if size == Size::B8 {
            self.op_rm_imm8(size, &[0xf6], 0, a, imm as u8);
        } else {
            self.op_rm_imm32(size, &[0xf7], 0, a, imm as u32);
        }
    }

    /// `shift dst, cl`.
    pub fn shift_cl(&mut self, size: Size, op: Shift, dst: Rm) {
        self.wrote_rm(dst);
        self.op_rm(size, &[0xd3], op as u8, dst, false);
    }

    /// `shift dst, imm8`.
    pub fn shift_imm(&mut self, size: Size, op: Shift, dst: Rm, imm: u8) {
        self.wrote_rm(dst);
        self.op_rm_imm8(size, &[0xc1], op as u8, dst, imm);
    }

    /// `imul dst, src` (two-operand, low half).
    pub fn imul_r_rm(&mut self, size: Size, dst: R, src: Rm) {
        self.wrote(dst);
        self.op_rm(size, &[0x0f, 0xaf], dst, src, false);
    }

    /// `imul dst, src, imm32`.
    pub fn imul_r_rm_imm(&mut self, size: Size, dst: R, src: Rm, imm: i32) {
        self.wrote(dst);
        self.op_rm_imm32(size, &[0x69], dst, src, imm as u32);
    }

    /// The `F7 /n` group: 4 = mul, 5 = imul (one operand), 6 = div, 7 = idiv, 2 = not, 3 = neg.
    pub fn group3(&mut self, size: Size, digit: u8, src: Rm) {
        // mul/div write rax and rdx implicitly.
        self.written = ALL;
        self.op_rm(size, &[0xf7], digit, src, false);
    }

    /// `cqo` (sign-extend rax into rdx).
    pub fn cqo(&mut self) {
        self.written = ALL;
        self.bytes(&[0x48, 0x99]);
    }

    /// `cdq` (sign-extend eax into edx).
    pub fn cdq(&mut self) {
        self.written = ALL;
        self.byte(0x99);
    }

    /// `bswap r64`.
    pub fn bswap(&mut self, r: R) {
        self.wrote(r);
        self.byte(0x48 | ((r >> 3) & 1));
        self.bytes(&[0x0f, 0xc8 + (r & 7)]);
    }

    /// `setcc r8` (the low byte of `r`).
    pub fn setcc(&mut self, c: Cond, r: R) {
        self.wrote(r);
        self.op_rm(Size::B8, &[0x0f, 0x90 + c as u8], 0, Rm::Reg(r), true);
    }

    /// `cmovcc dst, src`.
    pub fn cmov(&mut self, size: Size, c: Cond, dst: R, src: Rm) {
        self.wrote(dst);
        self.op_rm(size, &[0x0f, 0x40 + c as u8], dst, src, false);
    }

    /// `popcnt` / `lzcnt` / `tzcnt` (`F3 0F B8/BD/BC`).
    pub fn bitcount(&mut self, size: Size, op: u8, dst: R, src: Rm) {
        self.wrote(dst);
        self.op_rm(size, &[0xf3, 0x0f, op], dst, src, false);
    }

    /// `jcc label` (rel32).
    pub fn jcc(&mut self, c: Cond, l: Label) {
        let mut e = Enc::new();
        e.put(0x0f);
        e.put(0x80 + c as u8);
        self.emit_rel32(e, l);
    }

    /// `jmp label` (rel32).
    pub fn jmp(&mut self, l: Label) {
        let mut e = Enc::new();
        e.put(0xe9);
        self.emit_rel32(e, l);
    }

    /// `jmp r/m64`.
    pub fn jmp_rm(&mut self, target: Rm) {
        self.op_rm(Size::B32, &[0xff], 4, target, false);
    }

    /// `lea dst, [rip + label]`.
    pub fn lea_rip(&mut self, dst: R, l: Label) {
        self.wrote(dst);
        let mut e = Enc::new();
        e.put(0x48 | ((dst >> 3) & 1) << 2);
        e.put(0x8d);
        e.put(0x05 | ((dst & 7) << 3));
        self.emit_rel32(e, l);
    }

    pub fn push(&mut self, r: R) {
        if r >= 8 {
            self.byte(0x41);
        }
        self.byte(0x50 + (r & 7));
    }

    pub fn pop(&mut self, r: R) {
        self.wrote(r);
        if r >= 8 {
            self.byte(0x41);
        }
        self.byte(0x58 + (r & 7));
    }

    pub fn ret(&mut self) {
        self.written = ALL;
        self.byte(0xc3);
    }

    /// Pads with `int3` to a multiple of `align`.
    pub fn align(&mut self, align: usize) {
        self.written = ALL;
        while self.code.len() % align != 0 {
            self.byte(0xcc);
        }
    }

    /// Raw little-endian 32-bit data.
    pub fn data32(&mut self, v: u32) {
        self.written = ALL;
        self.bytes(&v.to_le_bytes());
    }
}
