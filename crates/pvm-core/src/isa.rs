//! The PVM instruction set: opcode tables for both supported Gray Paper versions, argument
//! classes (GP A.5.1–A.5.13) and operand decoding.
//!
//! GP 0.8.0 and GP 0.7.2 share every opcode number except the two-register class: 0.8.0 adds
//! `unlikely` (2), removes `sbrk` (0.7.2: 101) and moves 0.7.2's 102–111 down to 101–110. The
//! [`Opcode`] enum is version-independent; [`Opcode::from_byte`] maps a code byte to an opcode
//! under a given [`Spec`].

use crate::Spec;

/// The argument layout of an instruction (GP A.5.x subsections).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgClass {
    /// A.5.1: no arguments.
    NoArgs,
    /// A.5.2: one immediate.
    Imm,
    /// A.5.3: one register and one 64-bit immediate.
    RegImm64,
    /// A.5.4: two immediates.
    ImmImm,
    /// A.5.5: one offset.
    Offset,
    /// A.5.6: one register and one immediate.
    RegImm,
    /// A.5.7: one register and two immediates.
    RegImmImm,
    /// A.5.8: one register, one immediate and one offset.
    RegImmOffset,
    /// A.5.9: two registers.
    RegReg,
    /// A.5.10: two registers and one immediate.
    RegRegImm,
    /// A.5.11: two registers and one offset.
    RegRegOffset,
    /// A.5.12: two registers and two immediates.
    RegRegImmImm,
    /// A.5.13: three registers.
    RegRegReg,
}

macro_rules! opcodes {
    ($( $variant:ident = ($v08:expr, $v07:expr, $name:literal, $class:ident, $term:expr) ),* $(,)?) => {
        /// A PVM instruction kind, independent of the numbering of a particular GP version.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum Opcode { $( $variant ),* }

        impl Opcode {
            /// Every opcode, in GP 0.8.0 numbering order.
            pub const ALL: &'static [Opcode] = &[ $( Opcode::$variant ),* ];

            /// The instruction's name as written in the Gray Paper (e.g. `add_64`).
            pub const fn name(self) -> &'static str {
                match self { $( Opcode::$variant => $name ),* }
            }

            /// The argument class (GP A.5.x).
            pub const fn class(self) -> ArgClass {
                match self { $( Opcode::$variant => ArgClass::$class ),* }
            }

            /// Whether the opcode is a basic-block terminator (the set T of GP A.3).
            pub const fn is_terminator(self) -> bool {
                match self { $( Opcode::$variant => $term ),* }
            }

            /// The opcode byte under `spec`, or `None` if the instruction does not exist there.
            pub const fn byte(self, spec: Spec) -> Option<u8> {
                let (v08, v07): (i32, i32) = match self { $( Opcode::$variant => ($v08, $v07) ),* };
                let v = match spec { Spec::Gp0_8_0 => v08, Spec::Gp0_7_2 => v07 };
                if v < 0 { None } else { Some(v as u8) }
            }
        }

        const fn build_table(spec: Spec) -> [Option<Opcode>; 256] {
            let mut t: [Option<Opcode>; 256] = [None; 256];
            $(
                let v: i32 = match spec { Spec::Gp0_8_0 => $v08, Spec::Gp0_7_2 => $v07 };
                if v >= 0 { t[v as usize] = Some(Opcode::$variant); }
            )*
            t
        }
    };
}

// (GP 0.8.0 number, GP 0.7.2 number (-1: absent), name, class, terminator)
opcodes! {
    Trap = (0, 0, "trap", NoArgs, true),
    Fallthrough = (1, 1, "fallthrough", NoArgs, true),
    Unlikely = (2, -1, "unlikely", NoArgs, false),
    Ecalli = (10, 10, "ecalli", Imm, false),
    LoadImm64 = (20, 20, "load_imm_64", RegImm64, false),
    StoreImmU8 = (30, 30, "store_imm_u8", ImmImm, false),
    StoreImmU16 = (31, 31, "store_imm_u16", ImmImm, false),
    StoreImmU32 = (32, 32, "store_imm_u32", ImmImm, false),
    StoreImmU64 = (33, 33, "store_imm_u64", ImmImm, false),
    Jump = (40, 40, "jump", Offset, true),
    JumpInd = (50, 50, "jump_ind", RegImm, true),
    LoadImm = (51, 51, "load_imm", RegImm, false),
    LoadU8 = (52, 52, "load_u8", RegImm, false),
    LoadI8 = (53, 53, "load_i8", RegImm, false),
    LoadU16 = (54, 54, "load_u16", RegImm, false),
    LoadI16 = (55, 55, "load_i16", RegImm, false),
    LoadU32 = (56, 56, "load_u32", RegImm, false),
    LoadI32 = (57, 57, "load_i32", RegImm, false),
    LoadU64 = (58, 58, "load_u64", RegImm, false),
    StoreU8 = (59, 59, "store_u8", RegImm, false),
    StoreU16 = (60, 60, "store_u16", RegImm, false),
    StoreU32 = (61, 61, "store_u32", RegImm, false),
    StoreU64 = (62, 62, "store_u64", RegImm, false),
    StoreImmIndU8 = (70, 70, "store_imm_ind_u8", RegImmImm, false),
    StoreImmIndU16 = (71, 71, "store_imm_ind_u16", RegImmImm, false),
    StoreImmIndU32 = (72, 72, "store_imm_ind_u32", RegImmImm, false),
    StoreImmIndU64 = (73, 73, "store_imm_ind_u64", RegImmImm, false),
    LoadImmJump = (80, 80, "load_imm_jump", RegImmOffset, true),
    BranchEqImm = (81, 81, "branch_eq_imm", RegImmOffset, true),
    BranchNeImm = (82, 82, "branch_ne_imm", RegImmOffset, true),
    BranchLtUImm = (83, 83, "branch_lt_u_imm", RegImmOffset, true),
    BranchLeUImm = (84, 84, "branch_le_u_imm", RegImmOffset, true),
    BranchGeUImm = (85, 85, "branch_ge_u_imm", RegImmOffset, true),
    BranchGtUImm = (86, 86, "branch_gt_u_imm", RegImmOffset, true),
    BranchLtSImm = (87, 87, "branch_lt_s_imm", RegImmOffset, true),
    BranchLeSImm = (88, 88, "branch_le_s_imm", RegImmOffset, true),
    BranchGeSImm = (89, 89, "branch_ge_s_imm", RegImmOffset, true),
    BranchGtSImm = (90, 90, "branch_gt_s_imm", RegImmOffset, true),
    MoveReg = (100, 100, "move_reg", RegReg, false),
    Sbrk = (-1, 101, "sbrk", RegReg, false),
    CountSetBits64 = (101, 102, "count_set_bits_64", RegReg, false),
    CountSetBits32 = (102, 103, "count_set_bits_32", RegReg, false),
    LeadingZeroBits64 = (103, 104, "leading_zero_bits_64", RegReg, false),
    LeadingZeroBits32 = (104, 105, "leading_zero_bits_32", RegReg, false),
    TrailingZeroBits64 = (105, 106, "trailing_zero_bits_64", RegReg, false),
    TrailingZeroBits32 = (106, 107, "trailing_zero_bits_32", RegReg, false),
    SignExtend8 = (107, 108, "sign_extend_8", RegReg, false),
    SignExtend16 = (108, 109, "sign_extend_16", RegReg, false),
    ZeroExtend16 = (109, 110, "zero_extend_16", RegReg, false),
    ReverseBytes = (110, 111, "reverse_bytes", RegReg, false),
    StoreIndU8 = (120, 120, "store_ind_u8", RegRegImm, false),
    StoreIndU16 = (121, 121, "store_ind_u16", RegRegImm, false),
    StoreIndU32 = (122, 122, "store_ind_u32", RegRegImm, false),
    StoreIndU64 = (123, 123, "store_ind_u64", RegRegImm, false),
    LoadIndU8 = (124, 124, "load_ind_u8", RegRegImm, false),
    LoadIndI8 = (125, 125, "load_ind_i8", RegRegImm, false),
    LoadIndU16 = (126, 126, "load_ind_u16", RegRegImm, false),
    LoadIndI16 = (127, 127, "load_ind_i16", RegRegImm, false),
    LoadIndU32 = (128, 128, "load_ind_u32", RegRegImm, false),
    LoadIndI32 = (129, 129, "load_ind_i32", RegRegImm, false),
    LoadIndU64 = (130, 130, "load_ind_u64", RegRegImm, false),
    AddImm32 = (131, 131, "add_imm_32", RegRegImm, false),
    AndImm = (132, 132, "and_imm", RegRegImm, false),
    XorImm = (133, 133, "xor_imm", RegRegImm, false),
    OrImm = (134, 134, "or_imm", RegRegImm, false),
    MulImm32 = (135, 135, "mul_imm_32", RegRegImm, false),
    SetLtUImm = (136, 136, "set_lt_u_imm", RegRegImm, false),
    SetLtSImm = (137, 137, "set_lt_s_imm", RegRegImm, false),
    ShloLImm32 = (138, 138, "shlo_l_imm_32", RegRegImm, false),
    ShloRImm32 = (139, 139, "shlo_r_imm_32", RegRegImm, false),
    SharRImm32 = (140, 140, "shar_r_imm_32", RegRegImm, false),
    NegAddImm32 = (141, 141, "neg_add_imm_32", RegRegImm, false),
    SetGtUImm = (142, 142, "set_gt_u_imm", RegRegImm, false),
    SetGtSImm = (143, 143, "set_gt_s_imm", RegRegImm, false),
    ShloLImmAlt32 = (144, 144, "shlo_l_imm_alt_32", RegRegImm, false),
    ShloRImmAlt32 = (145, 145, "shlo_r_imm_alt_32", RegRegImm, false),
    SharRImmAlt32 = (146, 146, "shar_r_imm_alt_32", RegRegImm, false),
    CmovIzImm = (147, 147, "cmov_iz_imm", RegRegImm, false),
    CmovNzImm = (148, 148, "cmov_nz_imm", RegRegImm, false),
    AddImm64 = (149, 149, "add_imm_64", RegRegImm, false),
    MulImm64 = (150, 150, "mul_imm_64", RegRegImm, false),
    ShloLImm64 = (151, 151, "shlo_l_imm_64", RegRegImm, false),
    ShloRImm64 = (152, 152, "shlo_r_imm_64", RegRegImm, false),
    SharRImm64 = (153, 153, "shar_r_imm_64", RegRegImm, false),
    NegAddImm64 = (154, 154, "neg_add_imm_64", RegRegImm, false),
    ShloLImmAlt64 = (155, 155, "shlo_l_imm_alt_64", RegRegImm, false),
    ShloRImmAlt64 = (156, 156, "shlo_r_imm_alt_64", RegRegImm, false),
    SharRImmAlt64 = (157, 157, "shar_r_imm_alt_64", RegRegImm, false),
    RotR64Imm = (158, 158, "rot_r_64_imm", RegRegImm, false),
    RotR64ImmAlt = (159, 159, "rot_r_64_imm_alt", RegRegImm, false),
    RotR32Imm = (160, 160, "rot_r_32_imm", RegRegImm, false),
    RotR32ImmAlt = (161, 161, "rot_r_32_imm_alt", RegRegImm, false),
    BranchEq = (170, 170, "branch_eq", RegRegOffset, true),
    BranchNe = (171, 171, "branch_ne", RegRegOffset, true),
    BranchLtU = (172, 172, "branch_lt_u", RegRegOffset, true),
    BranchLtS = (173, 173, "branch_lt_s", RegRegOffset, true),
    BranchGeU = (174, 174, "branch_ge_u", RegRegOffset, true),
    BranchGeS = (175, 175, "branch_ge_s", RegRegOffset, true),
    LoadImmJumpInd = (180, 180, "load_imm_jump_ind", RegRegImmImm, true),
    Add32 = (190, 190, "add_32", RegRegReg, false),
    Sub32 = (191, 191, "sub_32", RegRegReg, false),
    Mul32 = (192, 192, "mul_32", RegRegReg, false),
    DivU32 = (193, 193, "div_u_32", RegRegReg, false),
    DivS32 = (194, 194, "div_s_32", RegRegReg, false),
    RemU32 = (195, 195, "rem_u_32", RegRegReg, false),
    RemS32 = (196, 196, "rem_s_32", RegRegReg, false),
    ShloL32 = (197, 197, "shlo_l_32", RegRegReg, false),
    ShloR32 = (198, 198, "shlo_r_32", RegRegReg, false),
    SharR32 = (199, 199, "shar_r_32", RegRegReg, false),
    Add64 = (200, 200, "add_64", RegRegReg, false),
    Sub64 = (201, 201, "sub_64", RegRegReg, false),
    Mul64 = (202, 202, "mul_64", RegRegReg, false),
    DivU64 = (203, 203, "div_u_64", RegRegReg, false),
    DivS64 = (204, 204, "div_s_64", RegRegReg, false),
    RemU64 = (205, 205, "rem_u_64", RegRegReg, false),
    RemS64 = (206, 206, "rem_s_64", RegRegReg, false),
    ShloL64 = (207, 207, "shlo_l_64", RegRegReg, false),
    ShloR64 = (208, 208, "shlo_r_64", RegRegReg, false),
    SharR64 = (209, 209, "shar_r_64", RegRegReg, false),
    And = (210, 210, "and", RegRegReg, false),
    Xor = (211, 211, "xor", RegRegReg, false),
    Or = (212, 212, "or", RegRegReg, false),
    MulUpperSS = (213, 213, "mul_upper_s_s", RegRegReg, false),
    MulUpperUU = (214, 214, "mul_upper_u_u", RegRegReg, false),
    MulUpperSU = (215, 215, "mul_upper_s_u", RegRegReg, false),
    SetLtU = (216, 216, "set_lt_u", RegRegReg, false),
    SetLtS = (217, 217, "set_lt_s", RegRegReg, false),
    CmovIz = (218, 218, "cmov_iz", RegRegReg, false),
    CmovNz = (219, 219, "cmov_nz", RegRegReg, false),
    RotL64 = (220, 220, "rot_l_64", RegRegReg, false),
    RotL32 = (221, 221, "rot_l_32", RegRegReg, false),
    RotR64 = (222, 222, "rot_r_64", RegRegReg, false),
    RotR32 = (223, 223, "rot_r_32", RegRegReg, false),
    AndInv = (224, 224, "and_inv", RegRegReg, false),
    OrInv = (225, 225, "or_inv", RegRegReg, false),
    Xnor = (226, 226, "xnor", RegRegReg, false),
    Max = (227, 227, "max", RegRegReg, false),
    MaxU = (228, 228, "max_u", RegRegReg, false),
    Min = (229, 229, "min", RegRegReg, false),
    MinU = (230, 230, "min_u", RegRegReg, false),
}

static TABLE_0_8_0: [Option<Opcode>; 256] = build_table(Spec::Gp0_8_0);
static TABLE_0_7_2: [Option<Opcode>; 256] = build_table(Spec::Gp0_7_2);

impl Opcode {
    /// Decodes an opcode byte under `spec` (`None`: not in U for that version).
    #[inline]
    pub fn from_byte(byte: u8, spec: Spec) -> Option<Opcode> {
        match spec {
            Spec::Gp0_8_0 => TABLE_0_8_0[byte as usize],
            Spec::Gp0_7_2 => TABLE_0_7_2[byte as usize],
        }
    }

    /// Whether executing the instruction can change guest memory (contents or page access): the
    /// stores, `sbrk` (GP 0.7.2) and `ecalli` (the host may write memory). Every other
    /// instruction reads at most. The per-step PVM hash relies on this to reuse the previous
    /// hash (see [`crate::trace::StepHasher`]), so the list must stay complete.
    pub const fn may_write_memory(self) -> bool {
        matches!(
            self,
            Opcode::StoreImmU8
                | Opcode::StoreImmU16
                | Opcode::StoreImmU32
                | Opcode::StoreImmU64
                | Opcode::StoreU8
                | Opcode::StoreU16
                | Opcode::StoreU32
                | Opcode::StoreU64
                | Opcode::StoreImmIndU8
                | Opcode::StoreImmIndU16
                | Opcode::StoreImmIndU32
                | Opcode::StoreImmIndU64
                | Opcode::StoreIndU8
                | Opcode::StoreIndU16
                | Opcode::StoreIndU32
                | Opcode::StoreIndU64
                | Opcode::Sbrk
                | Opcode::Ecalli
        )
    }

    /// Whether the opcode is a conditional branch (`branch(b, C)` in GP A.4).
    pub const fn is_branch(self) -> bool {
        matches!(self.class(), ArgClass::RegRegOffset)
            || (matches!(self.class(), ArgClass::RegImmOffset)
                && !matches!(self, Opcode::LoadImmJump))
    }
}

/// The name of an opcode byte under `spec`, or `None` if the byte is not a valid opcode.
pub fn opcode_name(byte: u8, spec: Spec) -> Option<&'static str> {
    Opcode::from_byte(byte, spec).map(Opcode::name)
}

/// Decoded operands of one instruction. Which fields are meaningful depends on the opcode's
/// [`ArgClass`]; the others are zero. Register indices are already clamped to 0..=12 (GP: min(12, ·)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Args {
    /// r_A (A.5.3, A.5.6–A.5.8, A.5.10–A.5.13) or the source register of A.5.9.
    pub ra: u8,
    /// r_B.
    pub rb: u8,
    /// r_D (A.5.9 destination, A.5.13 destination).
    pub rd: u8,
    /// ν_X: first immediate, already sign-extended to 64 bits (for A.5.5/A.5.11 the absolute target,
    /// which may lie outside the code: see [`Args::target`]).
    pub imm1: u64,
    /// ν_Y: second immediate, sign-extended.
    pub imm2: u64,
    /// Absolute target of an offset (A.5.5, A.5.8, A.5.11) as ı + signed offset. It can be negative
    /// or beyond the code; such targets are never basic-block starts.
    pub target: i64,
}

/// One decoded instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instruction {
    /// The opcode; `None` if the byte at this position is not a valid opcode under the spec.
    pub opcode: Option<Opcode>,
    /// The raw opcode byte.
    pub byte: u8,
    /// The decoded operands.
    pub args: Args,
    /// skip(ı): the number of bytes after the opcode up to the next instruction (at most 24).
    pub skip: u32,
}

impl Instruction {
    /// ı + 1 + skip(ı).
    pub fn next_pc(&self, pc: u32) -> u32 {
        pc + 1 + self.skip
    }
}

/// The code `c` and bitmask `k` of a program, with GP helper functions (skip, ζ).
#[derive(Clone, Copy, Debug)]
pub struct Code<'a> {
    /// Instruction bytes c.
    pub code: &'a [u8],
    /// Opcode bitmask k, unpacked: one bool per code byte.
    pub bitmask: &'a [bool],
}

/// skip(i) = min(24, j : (k ⌢ [1,1,…])_{i+1+j} = 1) on an unpacked bitmask.
#[inline]
pub(crate) fn skip(bitmask: &[bool], i: usize) -> usize {
    let start = i + 1;
    let end = (start + 24).min(bitmask.len());
    if start >= end {
        return 0;
    }
    // Eight positions at a time: bools are bytes 0/1, so the first set one is the lowest
    // non-zero byte of the little-endian word.
    let mut at = start;
    while at + 8 <= end {
        let chunk: [bool; 8] = bitmask[at..at + 8].try_into().expect("8 positions");
        let word = u64::from_le_bytes(chunk.map(u8::from));
        if word != 0 {
            return at - start + (word.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    bitmask[at..end]
        .iter()
        .position(|&b| b)
        .map_or(end - start, |j| at - start + j)
}

impl<'a> Code<'a> {
    /// ζ_i: the code byte at `i`, or 0 past the end.
    #[inline]
    pub fn zeta(&self, i: u64) -> u8 {
        if i < self.code.len() as u64 {
            self.code[i as usize]
        } else {
            0
        }
    }

    /// skip(i) = min(24, j : (k ⌢ [1,1,…])_{i+1+j} = 1).
    pub fn skip(&self, i: u32) -> u32 {
        skip(self.bitmask, i as usize) as u32
    }

    /// Whether position `i` is an instruction start holding a valid opcode (𝔳_inst without the
    /// |k| = |c| part).
    pub fn is_valid_instruction(&self, i: u32, spec: Spec) -> bool {
        (i as usize) < self.code.len()
            && self.bitmask[i as usize]
            && Opcode::from_byte(self.code[i as usize], spec).is_some()
    }

    /// Reads `len` (≤ 8) little-endian bytes of ζ starting at `at`.
    #[inline]
    fn read_le(&self, at: u64, len: u32) -> u64 {
        debug_assert!(len <= 8);
        // Fast path: eight bytes inside the code, masked to `len`.
        if let Some(word) = at
            .checked_add(8)
            .filter(|&e| e <= self.code.len() as u64)
            .map(|e| &self.code[at as usize..e as usize])
        {
            let v = u64::from_le_bytes(word.try_into().expect("eight bytes"));
            return if len >= 8 {
                v
            } else {
                v & ((1u64 << (8 * len)) - 1)
            };
        }
        let mut v = 0u64;
        for n in 0..len as u64 {
            v |= (self.zeta(at + n) as u64) << (8 * n);
        }
        v
    }

    /// X_n: sign-extends an n-byte value to 64 bits.
    fn sext(value: u64, n: u32) -> u64 {
        if n == 0 {
            return 0;
        }
        if n >= 8 {
            return value;
        }
        let shift = 64 - 8 * n;
        (((value << shift) as i64) >> shift) as u64
    }

    fn imm(&self, at: u64, len: u32) -> u64 {
        Self::sext(self.read_le(at, len), len)
    }

    /// Decodes the instruction at `pc` under `spec` (GP A.5 operand rules, reading ζ).
    pub fn decode(&self, pc: u32, spec: Spec) -> Instruction {
        let byte = self.zeta(pc as u64);
        let opcode = Opcode::from_byte(byte, spec);
        let skip = self.skip(pc);
        let mut args = Args::default();
        if let Some(op) = opcode {
            self.decode_args(op.class(), pc, skip, &mut args);
        }
        Instruction {
            opcode,
            byte,
            args,
            skip,
        }
    }

    /// The instruction at `pc` with only its opcode and register operands decoded (`ra`, `rb`,
    /// `rd` as [`Code::decode`] gives them; immediates, targets and `skip` left 0): what the
    /// register-use counts of the recompiler need, without the cost of the immediates.
    #[cfg_attr(not(all(target_arch = "x86_64", unix)), allow(dead_code))]
    pub(crate) fn decode_registers(&self, pc: u32, spec: Spec) -> Instruction {
        let byte = self.zeta(pc as u64);
        let opcode = Opcode::from_byte(byte, spec);
        let mut args = Args::default();
        if let Some(op) = opcode {
            let b1 = self.zeta(pc as u64 + 1);
            let lo = (b1 % 16).min(12);
            let hi = (b1 / 16).min(12);
            match op.class() {
                ArgClass::NoArgs | ArgClass::Imm | ArgClass::ImmImm | ArgClass::Offset => {}
                ArgClass::RegImm64
                | ArgClass::RegImm
                | ArgClass::RegImmImm
                | ArgClass::RegImmOffset => args.ra = lo,
                ArgClass::RegReg => {
                    args.rd = lo;
                    args.ra = hi;
                }
                ArgClass::RegRegImm | ArgClass::RegRegOffset | ArgClass::RegRegImmImm => {
                    args.ra = lo;
                    args.rb = hi;
                }
                ArgClass::RegRegReg => {
                    args.ra = lo;
                    args.rb = hi;
                    args.rd = self.zeta(pc as u64 + 2).min(12);
                }
            }
        }
        Instruction {
            opcode,
            byte,
            args,
            skip: 0,
        }
    }

    fn decode_args(&self, class: ArgClass, pc: u32, l: u32, a: &mut Args) {
        let i = pc as u64;
        let b1 = self.zeta(i + 1);
        let lo = (b1 % 16).min(12);
        let hi = (b1 / 16).min(12);
        let offset = |at: u64, len: u32| -> i64 {
            pc as i64 + Self::sext(self.read_le(at, len), len) as i64
        };
        match class {
            ArgClass::NoArgs => {}
            ArgClass::Imm => {
                let lx = l.min(4);
                a.imm1 = self.imm(i + 1, lx);
            }
            ArgClass::RegImm64 => {
                a.ra = lo;
                a.imm1 = self.read_le(i + 2, 8);
            }
            ArgClass::ImmImm => {
                let lx = ((b1 % 8) as u32).min(4);
                let ly = l.saturating_sub(lx + 1).min(4);
                a.imm1 = self.imm(i + 2, lx);
                a.imm2 = self.imm(i + 2 + lx as u64, ly);
            }
            ArgClass::Offset => {
                let lx = l.min(4);
                a.target = offset(i + 1, lx);
            }
            ArgClass::RegImm => {
                a.ra = lo;
                let lx = l.saturating_sub(1).min(4);
                a.imm1 = self.imm(i + 2, lx);
            }
            ArgClass::RegImmImm | ArgClass::RegImmOffset => {
                a.ra = lo;
                let lx = (((b1 / 16) % 8) as u32).min(4);
                let ly = l.saturating_sub(lx + 1).min(4);
                a.imm1 = self.imm(i + 2, lx);
                if class == ArgClass::RegImmImm {
                    a.imm2 = self.imm(i + 2 + lx as u64, ly);
                } else {
                    a.target = offset(i + 2 + lx as u64, ly);
                }
            }
            ArgClass::RegReg => {
                a.rd = lo;
                a.ra = hi;
            }
            ArgClass::RegRegImm => {
                a.ra = lo;
                a.rb = hi;
                let lx = l.saturating_sub(1).min(4);
                a.imm1 = self.imm(i + 2, lx);
            }
            ArgClass::RegRegOffset => {
                a.ra = lo;
                a.rb = hi;
                let lx = l.saturating_sub(1).min(4);
                a.target = offset(i + 2, lx);
            }
            ArgClass::RegRegImmImm => {
                a.ra = lo;
                a.rb = hi;
                let b2 = self.zeta(i + 2);
                let lx = ((b2 % 8) as u32).min(4);
                let ly = l.saturating_sub(lx + 2).min(4);
                a.imm1 = self.imm(i + 3, lx);
                a.imm2 = self.imm(i + 3 + lx as u64, ly);
            }
            ArgClass::RegRegReg => {
                a.ra = lo;
                a.rb = hi;
                a.rd = self.zeta(i + 2).min(12);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `decode_registers` gives exactly `decode`'s opcode and register operands.
    #[test]
    fn decode_registers_matches_decode() {
        for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
            for byte in 0..=255u8 {
                for b1 in [0x00u8, 0x12, 0x3c, 0xd7, 0xff] {
                    for b2 in [0x00u8, 0x05, 0x0c, 0x0d, 0xff] {
                        let code = [byte, b1, b2, 0x81, 0x7f, 0x01, 0x02, 0x03, 0x04, 0x05];
                        for mask_len in [1usize, 2, 3, 10] {
                            let mut bitmask = vec![false; code.len()];
                            bitmask[0] = true;
                            if mask_len < code.len() {
                                bitmask[mask_len] = true;
                            }
                            let c = Code {
                                code: &code[..],
                                bitmask: &bitmask,
                            };
                            let full = c.decode(0, spec);
                            let regs = c.decode_registers(0, spec);
                            assert_eq!(full.opcode, regs.opcode);
                            assert_eq!(
                                (full.args.ra, full.args.rb, full.args.rd),
                                (regs.args.ra, regs.args.rb, regs.args.rd),
                                "{spec:?} {byte} {b1} {b2}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn both_tables_have_139_opcodes() {
        for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
            let n = (0..=255u8)
                .filter(|b| Opcode::from_byte(*b, spec).is_some())
                .count();
            assert_eq!(n, 139, "{spec:?}");
        }
    }

    /// The memory-writing set is exactly the stores, `sbrk` and `ecalli`, checked against the
    /// names so that a store opcode added later without updating `may_write_memory` fails here.
    #[test]
    fn may_write_memory_is_every_store_sbrk_and_ecalli() {
        for &op in Opcode::ALL {
            let expected =
                op.name().starts_with("store") || op.name() == "sbrk" || op.name() == "ecalli";
            assert_eq!(op.may_write_memory(), expected, "{}", op.name());
        }
        assert_eq!(
            Opcode::ALL.iter().filter(|o| o.may_write_memory()).count(),
            18
        );
    }

    #[test]
    fn renumbered_two_register_class() {
        assert_eq!(Opcode::from_byte(101, Spec::Gp0_7_2), Some(Opcode::Sbrk));
        assert_eq!(
            Opcode::from_byte(101, Spec::Gp0_8_0),
            Some(Opcode::CountSetBits64)
        );
        assert_eq!(
            Opcode::from_byte(111, Spec::Gp0_7_2),
            Some(Opcode::ReverseBytes)
        );
        assert_eq!(
            Opcode::from_byte(110, Spec::Gp0_8_0),
            Some(Opcode::ReverseBytes)
        );
        assert_eq!(Opcode::from_byte(111, Spec::Gp0_8_0), None);
        assert_eq!(Opcode::from_byte(2, Spec::Gp0_8_0), Some(Opcode::Unlikely));
        assert_eq!(Opcode::from_byte(2, Spec::Gp0_7_2), None);
        for op in Opcode::ALL {
            for spec in [Spec::Gp0_8_0, Spec::Gp0_7_2] {
                if let Some(b) = op.byte(spec) {
                    assert_eq!(Opcode::from_byte(b, spec), Some(*op));
                }
            }
        }
    }

    #[test]
    fn word_at_a_time_skip_equals_the_definition() {
        let mut rng = 0x9e3779b97f4a7c15u64;
        for len in [0usize, 1, 7, 8, 9, 23, 24, 25, 40, 100] {
            for density in [1u64, 3, 16, 64] {
                let bitmask: Vec<bool> = (0..len)
                    .map(|_| {
                        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1);
                        (rng >> 33) % density == 0
                    })
                    .collect();
                let code = vec![0u8; len];
                let c = Code {
                    code: &code,
                    bitmask: &bitmask,
                };
                for i in 0..len {
                    assert_eq!(
                        skip(&bitmask, i) as u32,
                        c.skip(i as u32),
                        "len {len} i {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn skip_is_capped_at_24_and_ends_with_implicit_ones() {
        let code = [0u8; 40];
        let mut k = [false; 40];
        k[0] = true;
        let c = Code {
            code: &code,
            bitmask: &k,
        };
        assert_eq!(c.skip(0), 24);
        k[3] = true;
        let c = Code {
            code: &code,
            bitmask: &k,
        };
        assert_eq!(c.skip(0), 2);
        assert_eq!(c.skip(39), 0);
    }

    #[test]
    fn decodes_immediates_with_sign_extension() {
        // load_imm r1, -2 (one immediate byte 0xfe)
        let code = [51u8, 0x01, 0xfe];
        let k = [true, false, false];
        let c = Code {
            code: &code,
            bitmask: &k,
        };
        let ins = c.decode(0, Spec::Gp0_8_0);
        assert_eq!(ins.opcode, Some(Opcode::LoadImm));
        assert_eq!(ins.args.ra, 1);
        assert_eq!(ins.args.imm1, (-2i64) as u64);
        // register indices above 12 are clamped
        let code = [100u8, 0xff];
        let k = [true, false];
        let ins = Code {
            code: &code,
            bitmask: &k,
        }
        .decode(0, Spec::Gp0_8_0);
        assert_eq!((ins.args.rd, ins.args.ra), (12, 12));
    }

    #[test]
    fn offsets_are_relative_to_the_instruction() {
        // jump -3 from pc 5
        let mut code = vec![1u8; 5];
        code.extend_from_slice(&[40, 0xfd]);
        let mut k = vec![true; 5];
        k.extend_from_slice(&[true, false]);
        let ins = Code {
            code: &code,
            bitmask: &k,
        }
        .decode(5, Spec::Gp0_8_0);
        assert_eq!(ins.args.target, 2);
    }
}
