//! Byte-level decoding of the GP formats: the natural-number varint E, the generic program blob
//! `E(|j|) E1(z) E(|c|) E_z(j) c k` (A.1), the standard program `Y` (A.7) and the JAM service blob
//! with its metadata prefix `E(|m|) m`.

use crate::error::ProgramError;

/// A cursor over input bytes that reports truncation with the byte offset.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub(crate) fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], ProgramError> {
        if n > self.remaining() as u64 {
            return Err(ProgramError::Truncated {
                what,
                offset: self.pos,
                needed: n,
                available: self.remaining(),
            });
        }
        let s = &self.bytes[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    /// E_n: an n-byte little-endian integer.
    pub(crate) fn fixed(&mut self, n: u64, what: &'static str) -> Result<u64, ProgramError> {
        let b = self.take(n, what)?;
        Ok(b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | x as u64))
    }

    /// E: the general natural-number encoding (GP C.1): the count l of leading one bits of the
    /// first byte says how many little-endian bytes follow; 0xFF means 8 bytes follow.
    pub(crate) fn varint(&mut self, what: &'static str) -> Result<u64, ProgramError> {
        let first = self.take(1, what)?[0];
        let l = first.leading_ones();
        if l == 8 {
            return self.fixed(8, what);
        }
        let low = self.fixed(l as u64, what)?;
        let high = (first & (0x7f >> l)) as u64;
        Ok((high << (8 * l)) | low)
    }

    pub(crate) fn finish(&self, after: &'static str) -> Result<(), ProgramError> {
        if self.remaining() != 0 {
            return Err(ProgramError::TrailingBytes {
                offset: self.pos,
                count: self.remaining(),
                after,
            });
        }
        Ok(())
    }
}

/// GP erratum #559: a program blob holds at most 2^25 bytes of code.
pub const MAX_CODE_LEN: u64 = 1 << 25;
/// GP erratum #559: a program blob holds at most 2^24 jump-table entries.
pub const MAX_JUMP_TABLE_LEN: u64 = 1 << 24;

/// The dynamic jump table j: code offsets, entries of up to 8 bytes kept as u64.
///
/// A table of zero-width entries (z = 0) takes no input bytes however long it is, and every such
/// entry decodes to 0; it is kept as its length alone, so an 8-byte blob that declares 2^24 of
/// them costs nothing to load. [`JumpTable::iter`] and [`JumpTable::get`] read both forms alike.
#[derive(Clone, Default)]
pub struct JumpTable {
    /// The explicit entries; empty for an all-zero table of `len` entries.
    entries: Vec<u64>,
    len: usize,
}

static ZERO_ENTRY: u64 = 0;

impl JumpTable {
    /// A table of `len` entries that are all 0 (what z = 0 encodes).
    pub fn zeros(len: usize) -> JumpTable {
        JumpTable {
            entries: Vec::new(),
            len,
        }
    }

    /// Number of entries |j|.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entry `i`.
    pub fn get(&self, i: usize) -> Option<u64> {
        if i >= self.len {
            return None;
        }
        Some(self.entries.get(i).copied().unwrap_or(0))
    }

    /// The entries, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &u64> + '_ {
        let zeros = if self.entries.is_empty() { self.len } else { 0 };
        let explicit: &[u64] = &self.entries;
        JumpTableIter {
            explicit: explicit.iter(),
            zeros,
        }
    }

    /// The explicit entries, or `None` for an all-zero table kept as its length.
    pub fn explicit(&self) -> Option<&[u64]> {
        (!self.entries.is_empty() || self.len == 0).then_some(&self.entries[..])
    }
}

struct JumpTableIter<'a> {
    explicit: std::slice::Iter<'a, u64>,
    zeros: usize,
}

impl<'a> Iterator for JumpTableIter<'a> {
    type Item = &'a u64;
    fn next(&mut self) -> Option<&'a u64> {
        if let Some(e) = self.explicit.next() {
            return Some(e);
        }
        (self.zeros > 0).then(|| {
            self.zeros -= 1;
            &ZERO_ENTRY
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.explicit.len() + self.zeros;
        (n, Some(n))
    }
}

impl ExactSizeIterator for JumpTableIter<'_> {}

impl From<Vec<u64>> for JumpTable {
    fn from(entries: Vec<u64>) -> JumpTable {
        JumpTable {
            len: entries.len(),
            entries,
        }
    }
}

impl FromIterator<u64> for JumpTable {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> JumpTable {
        Vec::from_iter(iter).into()
    }
}

impl PartialEq for JumpTable {
    fn eq(&self, other: &JumpTable) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for JumpTable {}

impl std::fmt::Debug for JumpTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.explicit() {
            Some(e) => f.debug_list().entries(e).finish(),
            None => write!(f, "[0; {}]", self.len),
        }
    }
}

/// A decoded generic program blob (GP A.1 `deblob` without the validity checks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    /// The dynamic jump table j.
    pub jump_table: JumpTable,
    /// The instruction bytes c.
    pub code: Vec<u8>,
    /// The opcode bitmask k, unpacked (one bool per code byte).
    pub bitmask: Vec<bool>,
}

impl Blob {
    /// Parses `E(|j|) E1(z) E(|c|) E_z(j) c k`. The whole input must be consumed. Costs
    /// O(input size) in time and memory: a declared length is checked against the input and the
    /// GP erratum #559 limits before anything is allocated.
    pub fn parse(bytes: &[u8]) -> Result<Blob, ProgramError> {
        let mut r = Reader::new(bytes);
        let blob = Self::parse_from(&mut r)?;
        r.finish("opcode bitmask")?;
        Ok(blob)
    }

    pub(crate) fn parse_from(r: &mut Reader<'_>) -> Result<Blob, ProgramError> {
        let jt_offset = r.offset();
        let jt_len = r.varint("jump table length")?;
        let z_offset = r.offset();
        let z = r.take(1, "jump table entry size")?[0];
        if z > 8 {
            return Err(ProgramError::JumpTableEntrySize {
                size: z,
                offset: z_offset,
            });
        }
        let code_offset = r.offset();
        let code_len = r.varint("code length")?;
        check_limits(jt_len, jt_offset, code_len, code_offset)?;
        // jt_len <= 2^24 and z <= 8: no overflow.
        let jt_raw = r.take(jt_len * z as u64, "jump table")?;
        let jump_table = if z == 0 {
            JumpTable::zeros(jt_len as usize)
        } else {
            jt_raw
                .chunks_exact(z as usize)
                .map(|c| c.iter().rev().fold(0u64, |acc, &x| (acc << 8) | x as u64))
                .collect()
        };
        let code = r.take(code_len, "code")?.to_vec();
        let k_len = code_len.div_ceil(8);
        let packed = r.take(k_len, "opcode bitmask")?;
        let bitmask = unpack_bitmask(packed, code.len());
        Ok(Blob {
            jump_table,
            code,
            bitmask,
        })
    }

    /// Builds a blob from separately supplied parts (the C ABI's `pvm_create`). The bitmask may be
    /// packed (ceil(|c|/8) bytes, LSB first) or unpacked (one 0/1 byte per code byte).
    pub fn from_parts(
        code: &[u8],
        bitmask: &[u8],
        jump_table: &[u32],
    ) -> Result<Blob, ProgramError> {
        check_limits(jump_table.len() as u64, 0, code.len() as u64, 0)?;
        let packed_len = code.len().div_ceil(8);
        // When |c| <= 1 both forms have the same length; the packed reading is used then.
        let bitmask = if bitmask.len() == packed_len {
            unpack_bitmask(bitmask, code.len())
        } else if bitmask.len() == code.len() {
            bitmask.iter().map(|b| *b != 0).collect()
        } else {
            return Err(ProgramError::BitmaskLength {
                len: bitmask.len(),
                packed: packed_len,
                unpacked: code.len(),
            });
        };
        Ok(Blob {
            jump_table: jump_table.iter().map(|x| *x as u64).collect(),
            code: code.to_vec(),
            bitmask,
        })
    }

    /// Encodes the blob back to `E(|j|) E1(z) E(|c|) E_z(j) c k`, with z the smallest width that
    /// holds every jump-table entry.
    pub fn encode(&self) -> Vec<u8> {
        let max = self.jump_table.iter().copied().max().unwrap_or(0);
        let z = (0..=8u8)
            .find(|z| *z == 8 || max < (1u64 << (8 * *z as u32)))
            .unwrap_or(8);
        let mut out = Vec::new();
        encode_varint(self.jump_table.len() as u64, &mut out);
        out.push(z);
        encode_varint(self.code.len() as u64, &mut out);
        for e in self.jump_table.iter() {
            out.extend_from_slice(&e.to_le_bytes()[..z as usize]);
        }
        out.extend_from_slice(&self.code);
        out.extend_from_slice(&pack_bitmask(&self.bitmask));
        out
    }
}

/// The GP erratum #559 limits on |j| and |c| (offsets of the fields for the error).
fn check_limits(
    jt_len: u64,
    jt_offset: usize,
    code_len: u64,
    code_offset: usize,
) -> Result<(), ProgramError> {
    if jt_len > MAX_JUMP_TABLE_LEN {
        return Err(ProgramError::LimitExceeded {
            what: "jump table length",
            value: jt_len,
            limit: MAX_JUMP_TABLE_LEN,
            offset: jt_offset,
        });
    }
    if code_len > MAX_CODE_LEN {
        return Err(ProgramError::LimitExceeded {
            what: "code length",
            value: code_len,
            limit: MAX_CODE_LEN,
            offset: code_offset,
        });
    }
    Ok(())
}

/// Every byte's bits, LSB first.
static UNPACKED: [[bool; 8]; 256] = {
    let mut t = [[false; 8]; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut bit = 0;
        while bit < 8 {
            t[byte][bit] = (byte >> bit) & 1 == 1;
            bit += 1;
        }
        byte += 1;
    }
    t
};

/// Unpacks a GP bitstring (LSB first) to `len` bools.
pub fn unpack_bitmask(packed: &[u8], len: usize) -> Vec<bool> {
    let mut out = Vec::with_capacity(len.next_multiple_of(8));
    for &byte in packed.iter().take(len.div_ceil(8)) {
        out.extend_from_slice(&UNPACKED[byte as usize]);
    }
    out.truncate(len);
    out
}

/// Packs bools into a GP bitstring (LSB first, zero padding).
pub fn pack_bitmask(bits: &[bool]) -> Vec<u8> {
    let mut out = vec![0u8; bits.len().div_ceil(8)];
    for (i, b) in bits.iter().enumerate() {
        if *b {
            out[i / 8] |= 1 << (i % 8);
        }
    }
    out
}

/// Appends E(x), the GP general natural-number encoding.
pub fn encode_varint(x: u64, out: &mut Vec<u8>) {
    for l in 0..8u32 {
        if x < 1u64 << (7 * (l + 1)) {
            let high = (x >> (8 * l)) as u8;
            let prefix = !(0xffu8 >> l);
            out.push(prefix | high);
            out.extend_from_slice(&x.to_le_bytes()[..l as usize]);
            return;
        }
    }
    out.push(0xff);
    out.extend_from_slice(&x.to_le_bytes());
}

/// The parts of a GP A.7 standard program `E3(|o|) E3(|w|) E2(z) E3(s) o w E4(|p|) p`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StandardParts {
    /// Read-only data o.
    pub ro_data: Vec<u8>,
    /// Read-write data w.
    pub rw_data: Vec<u8>,
    /// Extra zero heap pages z after the read-write data.
    pub heap_pages: u16,
    /// Stack size s in bytes.
    pub stack_size: u32,
    /// The PVM program blob p.
    pub blob: Blob,
    /// The metadata m, if the input was a JAM service blob `E(|m|) m ⌢ Y`.
    pub metadata: Option<Vec<u8>>,
}

impl StandardParts {
    /// Parses a standard program; with `metadata` set, first strips a `E(|m|) m` prefix.
    pub fn parse(bytes: &[u8], metadata: bool) -> Result<StandardParts, ProgramError> {
        let mut r = Reader::new(bytes);
        let metadata = if metadata {
            let off = r.offset();
            let len = r.varint("metadata length")?;
            if len > bytes.len() as u64 {
                return Err(ProgramError::TooLarge {
                    what: "metadata length",
                    value: len,
                    offset: off,
                });
            }
            Some(r.take(len, "metadata")?.to_vec())
        } else {
            None
        };
        let ro_len = r.fixed(3, "read-only data length E3(|o|)")?;
        let rw_len = r.fixed(3, "read-write data length E3(|w|)")?;
        let heap_pages = r.fixed(2, "heap pages E2(z)")? as u16;
        let stack_size = r.fixed(3, "stack size E3(s)")? as u32;
        let ro_data = r.take(ro_len, "read-only data")?.to_vec();
        let rw_data = r.take(rw_len, "read-write data")?.to_vec();
        let blob_len = r.fixed(4, "program blob length E4(|p|)")?;
        let start = r.offset();
        let blob_bytes = r.take(blob_len, "program blob")?;
        r.finish("program blob")?;
        let blob = Blob::parse(blob_bytes).map_err(|e| shift_offsets(e, start))?;
        Ok(StandardParts {
            ro_data,
            rw_data,
            heap_pages,
            stack_size,
            blob,
            metadata,
        })
    }
}

/// Rebases byte offsets of an error found in an embedded blob onto the enclosing input.
fn shift_offsets(e: ProgramError, by: usize) -> ProgramError {
    match e {
        ProgramError::Truncated {
            what,
            offset,
            needed,
            available,
        } => ProgramError::Truncated {
            what,
            offset: offset + by,
            needed,
            available,
        },
        ProgramError::TrailingBytes {
            offset,
            count,
            after,
        } => ProgramError::TrailingBytes {
            offset: offset + by,
            count,
            after,
        },
        ProgramError::JumpTableEntrySize { size, offset } => ProgramError::JumpTableEntrySize {
            size,
            offset: offset + by,
        },
        ProgramError::TooLarge {
            what,
            value,
            offset,
        } => ProgramError::TooLarge {
            what,
            value,
            offset: offset + by,
        },
        ProgramError::LimitExceeded {
            what,
            value,
            limit,
            offset,
        } => ProgramError::LimitExceeded {
            what,
            value,
            limit,
            offset: offset + by,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trips() {
        for x in [
            0u64,
            1,
            127,
            128,
            300,
            16383,
            16384,
            1 << 21,
            (1 << 56) - 1,
            1 << 56,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            encode_varint(x, &mut out);
            let mut r = Reader::new(&out);
            assert_eq!(r.varint("x").unwrap(), x, "{x}");
            assert!(r.finish("x").is_ok());
        }
    }

    #[test]
    fn blob_round_trips_and_reports_truncation() {
        let blob = Blob {
            jump_table: vec![0, 5].into(),
            code: vec![0, 1, 2, 3, 4, 0],
            bitmask: vec![true, false, true, true, true, true],
        };
        let bytes = blob.encode();
        assert_eq!(Blob::parse(&bytes).unwrap(), blob);
        let err = Blob::parse(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(
            matches!(
                err,
                ProgramError::Truncated {
                    what: "opcode bitmask",
                    ..
                }
            ),
            "{err}"
        );
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(matches!(
            Blob::parse(&extra).unwrap_err(),
            ProgramError::TrailingBytes { count: 1, .. }
        ));
    }

    #[test]
    fn huge_declared_lengths_are_errors_not_allocations() {
        // |j| = 2^56 - 1 with z = 4
        let bytes = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 4, 0];
        assert!(Blob::parse(&bytes).is_err());
        // |c| = huge
        let bytes = [0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(Blob::parse(&bytes).is_err());
        // z = 0 with an absurd count
        let bytes = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0];
        assert!(Blob::parse(&bytes).is_err());
    }

    #[test]
    fn unpacking_the_bitmask_keeps_every_bit() {
        let packed = [0b1010_0110u8, 0xff, 0x01, 0x80];
        for len in 0..=32 {
            let bits = unpack_bitmask(&packed, len);
            let want: Vec<bool> = (0..len)
                .map(|i| (packed[i / 8] >> (i % 8)) & 1 == 1)
                .collect();
            assert_eq!(bits, want);
        }
    }
}
