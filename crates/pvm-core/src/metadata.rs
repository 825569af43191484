//! JIP-6 "Program metadata": the content m of a JAM service blob's metadata prefix `E(|m|) m`.
//!
//! The GP only says that a service's code blob starts with `E(|m|) m` (the metadata is not
//! interpreted by the chain). JIP-6 (polkadot-fellows/JIPs, "JIP-6: Program metadata") proposes
//! a standard content for it:
//!
//! m ≡ [0] ⌢ E(↕p, ↕v, ↕l, ↕[↕a | a ∈ A])
//!
//! a format byte 0, then the program name p, its version v, its licence l (an SPDX expression)
//! and the sequence of authors A, each a length-prefixed UTF-8 string (↕x = E(|x|) ⌢ x, E the GP
//! natural-number encoding). Writers put nothing after this; readers ignore anything after it.
//! Readers must also handle metadata that does not follow the format: [`ProgramMetadata::parse`]
//! returns `None` for such bytes, and the raw bytes stay available.

use crate::program::blob::Reader;

/// The fields of JIP-6 program metadata (format 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramMetadata {
    /// The format byte (0 is the only one JIP-6 defines).
    pub format: u8,
    /// The program name p (by convention alphanumerics, `_` and `-`; a Rust crate's name).
    pub name: String,
    /// The program version v.
    pub version: String,
    /// The licence l (by convention an SPDX licence expression).
    pub license: String,
    /// The authors A (each a person or organisation, optionally `Name <email>`).
    pub authors: Vec<String>,
    /// Bytes after the last field (JIP-6: writers should not add any; readers ignore them).
    pub trailing: usize,
}

impl ProgramMetadata {
    /// Parses metadata bytes m as JIP-6 format 0. `None` if they are not in that format (another
    /// format byte, a truncated field, or a field that is not UTF-8).
    pub fn parse(m: &[u8]) -> Option<ProgramMetadata> {
        let (&format, rest) = m.split_first()?;
        if format != 0 {
            return None;
        }
        let mut r = Reader::new(rest);
        let string = |r: &mut Reader<'_>| -> Option<String> {
            let len = r.varint("metadata string length").ok()?;
            let bytes = r.take(len, "metadata string").ok()?;
            String::from_utf8(bytes.to_vec()).ok()
        };
        let name = string(&mut r)?;
        let version = string(&mut r)?;
        let license = string(&mut r)?;
        let count = r.varint("metadata author count").ok()?;
        // Each author needs at least one byte: a count beyond the input is malformed (and must
        // not size an allocation).
        if count > rest.len() as u64 {
            return None;
        }
        let mut authors = Vec::with_capacity(count as usize);
        for _ in 0..count {
            authors.push(string(&mut r)?);
        }
        Some(ProgramMetadata {
            format,
            name,
            version,
            license,
            authors,
            trailing: rest.len() - r.offset(),
        })
    }

    /// Encodes these fields as JIP-6 format-0 metadata (`trailing` is not encoded).
    pub fn encode(&self) -> Vec<u8> {
        use crate::program::blob::encode_varint;
        let mut out = vec![self.format];
        let string = |s: &str, out: &mut Vec<u8>| {
            encode_varint(s.len() as u64, out);
            out.extend_from_slice(s.as_bytes());
        };
        string(&self.name, &mut out);
        string(&self.version, &mut out);
        string(&self.license, &mut out);
        encode_varint(self.authors.len() as u64, &mut out);
        for a in &self.authors {
            string(a, &mut out);
        }
        out
    }
}

impl crate::Program {
    /// The metadata m of a JAM service blob parsed as JIP-6 (see [`ProgramMetadata::parse`]):
    /// `None` without metadata or when it does not follow JIP-6 (the raw bytes are
    /// [`crate::Program::metadata`]).
    pub fn parsed_metadata(&self) -> Option<ProgramMetadata> {
        self.metadata().and_then(ProgramMetadata::parse)
    }
}

/// A best-effort text rendering of metadata that is not JIP-6: the bytes as UTF-8 with invalid
/// sequences replaced (U+FFFD).
pub fn lossy_text(m: &[u8]) -> String {
    String::from_utf8_lossy(m).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ProgramMetadata {
        ProgramMetadata {
            format: 0,
            name: "my-service".into(),
            version: "1.2.3".into(),
            license: "MIT OR Apache-2.0".into(),
            authors: vec!["Alice <alice@example.com>".into(), "Bob".into()],
            trailing: 0,
        }
    }

    #[test]
    fn round_trips() {
        let m = sample();
        let bytes = m.encode();
        assert_eq!(bytes[0], 0);
        assert_eq!(bytes[1], 10); // E(|"my-service"|)
        assert_eq!(ProgramMetadata::parse(&bytes), Some(m));
    }

    #[test]
    fn trailing_bytes_are_ignored_but_counted() {
        let mut bytes = sample().encode();
        bytes.extend_from_slice(b"xyz");
        let m = ProgramMetadata::parse(&bytes).unwrap();
        assert_eq!(m.trailing, 3);
        assert_eq!(m.name, "my-service");
    }

    #[test]
    fn malformed_metadata_is_none() {
        let bytes = sample().encode();
        assert_eq!(ProgramMetadata::parse(&[]), None);
        assert_eq!(
            ProgramMetadata::parse(&[1, 0, 0, 0, 0]),
            None,
            "unknown format"
        );
        for cut in 1..bytes.len() {
            assert_eq!(ProgramMetadata::parse(&bytes[..cut]), None, "cut at {cut}");
        }
        // A huge author count must not allocate.
        assert_eq!(
            ProgramMetadata::parse(&[
                0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ]),
            None
        );
        // Not UTF-8.
        assert_eq!(ProgramMetadata::parse(&[0, 1, 0xff, 0, 0, 0]), None);
        assert_eq!(lossy_text(b"ab\xffc"), "ab\u{fffd}c");
    }

    #[test]
    fn empty_fields_parse() {
        let m = ProgramMetadata::parse(&[0, 0, 0, 0, 0]).unwrap();
        assert_eq!((m.name.as_str(), m.authors.len(), m.trailing), ("", 0, 0));
    }
}
