//! Canonical byte encoding shared by every hashed and signed object.
//!
//! The rules are deliberately small so that an auditor can re-implement them
//! in any language (see `docs/PROTOCOL.md`, "Encoding primitives"):
//!
//! * every message starts with a domain-separation tag: ASCII
//!   `senatus/<object>/v<version>` followed by one `0x00` byte;
//! * integers are fixed-width big-endian;
//! * byte strings and UTF-8 strings are a `u32` big-endian length, then the
//!   bytes;
//! * lists are a `u32` big-endian count, then the items;
//! * 32-byte keys and digests are written raw, without a length.

use std::fmt;

use sha3::{Digest as _, Sha3_256};

/// A SHA3-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// Length of a digest in bytes.
    pub const LEN: usize = 32;

    /// The all-zero digest, used as "no previous" where the protocol says so.
    pub const ZERO: Digest = Digest([0u8; 32]);

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self, DigestParseError> {
        let bytes = hex::decode(s.trim()).map_err(|_| DigestParseError(s.to_string()))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| DigestParseError(s.to_string()))?;
        Ok(Digest(arr))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// A string that is not 64 hex characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SHA3-256 digest (want 64 hex characters): {0:?}")]
pub struct DigestParseError(pub String);

/// SHA3-256 of `bytes`.
pub fn sha3(bytes: &[u8]) -> Digest {
    Digest(Sha3_256::digest(bytes).into())
}

/// Builder for a canonical message: starts with the domain-separation tag.
///
/// `tag` is the object name without prefix or version, e.g. `"genesis"`;
/// the message begins with `senatus/genesis/v1\0`.
#[derive(Debug, Clone)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// Starts a message for `object` at `version`.
    pub fn new(object: &str, version: u8) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(domain_tag(object, version).as_bytes());
        buf.push(0);
        Encoder { buf }
    }

    /// Appends one byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Appends a big-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends 32 raw bytes (a key or a digest).
    pub fn fixed32(&mut self, v: &[u8; 32]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// Appends a digest (32 raw bytes).
    pub fn digest(&mut self, d: &Digest) -> &mut Self {
        self.fixed32(&d.0)
    }

    /// Appends a length-prefixed byte string.
    ///
    /// # Panics
    /// If `v` is longer than `u32::MAX`; every caller bounds its inputs far
    /// below that, so reaching it is a broken invariant.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        let len = u32::try_from(v.len()).expect("canonical field longer than u32::MAX bytes");
        self.u32(len);
        self.buf.extend_from_slice(v);
        self
    }

    /// Appends a length-prefixed UTF-8 string.
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    /// Appends a list count; the caller appends the items.
    ///
    /// # Panics
    /// If `n` exceeds `u32::MAX` (a broken invariant, as for [`Encoder::bytes`]).
    pub fn count(&mut self, n: usize) -> &mut Self {
        let n = u32::try_from(n).expect("canonical list longer than u32::MAX items");
        self.u32(n)
    }

    /// The encoded bytes.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }

    /// SHA3-256 of the encoded bytes.
    pub fn digest_of(&self) -> Digest {
        sha3(&self.buf)
    }
}

/// Why canonical bytes do not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The message does not start with the expected tag and version.
    #[error("expected tag {expected:?}")]
    Tag {
        /// The tag wanted (without the `0x00`).
        expected: String,
    },
    /// The input ends inside `field`.
    #[error(
        "truncated at byte {offset} reading {field}: need {needed} more bytes, {remaining} left"
    )]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Where the input ended.
        offset: usize,
        /// Bytes the read needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// `field` is not valid UTF-8.
    #[error("{field} at byte {offset} is not UTF-8")]
    NotUtf8 {
        /// The field.
        field: &'static str,
        /// Where it starts.
        offset: usize,
    },
    /// Bytes remain after the last field.
    #[error("{count} trailing bytes after the last field")]
    Trailing {
        /// How many.
        count: usize,
    },
}

/// A bounds-checked reader of [`Encoder`] output: the inverse of each
/// encoder method, refusing truncation, bad UTF-8 and trailing bytes.
/// Lengths are checked against the input before anything is allocated.
#[derive(Debug)]
pub struct Decoder<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    /// Starts reading a message for `object` at `version`, checking its tag.
    pub fn new(bytes: &'a [u8], object: &str, version: u8) -> Result<Self, DecodeError> {
        let tag = domain_tag(object, version);
        let want = tag.len() + 1;
        if bytes.len() < want || &bytes[..tag.len()] != tag.as_bytes() || bytes[tag.len()] != 0 {
            return Err(DecodeError::Tag { expected: tag });
        }
        Ok(Decoder { bytes, pos: want })
    }

    /// Byte offset of the next field.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// The next `n` raw bytes.
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(DecodeError::Truncated {
                field,
                offset: self.bytes.len(),
                needed: n,
                remaining: self.remaining(),
            })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, field)?[0])
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8, field)?);
        Ok(u64::from_be_bytes(a))
    }

    /// 32 raw bytes.
    pub fn fixed32(&mut self, field: &'static str) -> Result<[u8; 32], DecodeError> {
        let mut a = [0u8; 32];
        a.copy_from_slice(self.take(32, field)?);
        Ok(a)
    }

    /// A digest (32 raw bytes).
    pub fn digest(&mut self, field: &'static str) -> Result<Digest, DecodeError> {
        self.fixed32(field).map(Digest)
    }

    /// A length-prefixed byte string.
    pub fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(field)?;
        self.take(len as usize, field)
    }

    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let offset = self.pos;
        std::str::from_utf8(self.bytes(field)?).map_err(|_| DecodeError::NotUtf8 { field, offset })
    }

    /// Ends reading: no byte may remain.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::Trailing { count }),
        }
    }
}

/// The ASCII domain tag (without the trailing `0x00`).
pub fn domain_tag(object: &str, version: u8) -> String {
    format!("senatus/{object}/v{version}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoder_layout_is_exact() {
        let mut e = Encoder::new("example", 1);
        e.u8(7)
            .u16(0x0102)
            .u32(3)
            .u64(4)
            .str("ab")
            .fixed32(&[9u8; 32]);
        let mut want = b"senatus/example/v1\0".to_vec();
        want.push(7);
        want.extend_from_slice(&[1, 2]);
        want.extend_from_slice(&[0, 0, 0, 3]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 4]);
        want.extend_from_slice(&[0, 0, 0, 2, b'a', b'b']);
        want.extend_from_slice(&[9u8; 32]);
        assert_eq!(e.finish(), want);
    }

    /// Every [`Encoder`] method read back by its [`Decoder`] twin.
    #[test]
    fn decoder_reads_back_every_encoder_method() {
        let d32 = sha3(b"d");
        let mut e = Encoder::new("example", 3);
        e.u8(0xfe)
            .u16(0xfedc)
            .u32(0xfedc_ba98)
            .u64(0xfedc_ba98_7654_3210)
            .fixed32(&[5u8; 32])
            .digest(&d32)
            .bytes(b"\x00\xff raw")
            .str("h\u{e9}llo")
            .count(2)
            .str("")
            .bytes(b"");
        let bytes = e.finish();
        let mut d = Decoder::new(&bytes, "example", 3).expect("tag");
        assert_eq!(d.position(), b"senatus/example/v3\0".len());
        assert_eq!(d.u8("u8"), Ok(0xfe));
        assert_eq!(d.u16("u16"), Ok(0xfedc));
        assert_eq!(d.u32("u32"), Ok(0xfedc_ba98));
        assert_eq!(d.u64("u64"), Ok(0xfedc_ba98_7654_3210));
        assert_eq!(d.fixed32("fixed32"), Ok([5u8; 32]));
        assert_eq!(d.digest("digest"), Ok(d32));
        assert_eq!(d.bytes("bytes"), Ok(&b"\x00\xff raw"[..]));
        assert_eq!(d.str("str"), Ok("h\u{e9}llo"));
        assert_eq!(d.u32("count"), Ok(2));
        assert_eq!(d.str("empty str"), Ok(""));
        assert_eq!(d.bytes("empty bytes"), Ok(&b""[..]));
        assert_eq!(d.remaining(), 0);
        assert_eq!(d.position(), bytes.len());
        assert_eq!(d.finish(), Ok(()));

        let raw = [1u8, 2, 3];
        let mut with_raw = Encoder::new("example", 1).finish();
        with_raw.extend_from_slice(&raw);
        let mut d = Decoder::new(&with_raw, "example", 1).expect("tag");
        assert_eq!(d.remaining(), 3);
        assert_eq!(d.take(3, "raw"), Ok(&raw[..]));
        assert_eq!(d.finish(), Ok(()));
    }

    #[test]
    fn decoder_refuses_a_wrong_tag_version_or_missing_zero() {
        let want = DecodeError::Tag {
            expected: "senatus/example/v1".to_string(),
        };
        let v1 = Encoder::new("example", 1).finish();
        assert!(Decoder::new(&v1, "example", 1).is_ok());
        let v2 = Encoder::new("example", 2).finish();
        assert_eq!(Decoder::new(&v2, "example", 1).err(), Some(want.clone()));
        let other = Encoder::new("examples", 1).finish();
        assert_eq!(Decoder::new(&other, "example", 1).err(), Some(want.clone()));
        assert_eq!(
            Decoder::new(b"senatus/example/v1", "example", 1).err(),
            Some(want.clone())
        );
        assert_eq!(
            Decoder::new(b"senatus/example/v1X", "example", 1).err(),
            Some(want.clone())
        );
        assert_eq!(Decoder::new(b"", "example", 1).err(), Some(want));
    }

    #[test]
    fn decoder_names_the_truncated_field_and_what_was_missing() {
        let mut e = Encoder::new("example", 1);
        e.u16(1).str("abcdef");
        let bytes = e.finish();
        let tag_len = b"senatus/example/v1\0".len();
        // Inside a fixed-width field: nothing is consumed.
        let mut d = Decoder::new(&bytes[..tag_len + 1], "example", 1).expect("tag");
        assert_eq!(
            d.u16("first"),
            Err(DecodeError::Truncated {
                field: "first",
                offset: tag_len + 1,
                needed: 2,
                remaining: 1,
            })
        );
        assert_eq!(d.position(), tag_len);
        // Inside the body of a string whose length prefix was read.
        let cut = bytes.len() - 2;
        let mut d = Decoder::new(&bytes[..cut], "example", 1).expect("tag");
        d.u16("first").expect("u16");
        assert_eq!(
            d.str("second"),
            Err(DecodeError::Truncated {
                field: "second",
                offset: cut,
                needed: 6,
                remaining: 4,
            })
        );
        // Each fixed-width reader on empty input.
        let empty = Encoder::new("example", 1).finish();
        let d = || Decoder::new(&empty, "example", 1).expect("tag");
        let needs = |r: Result<(), DecodeError>, field: &'static str, needed: usize| {
            assert_eq!(
                r,
                Err(DecodeError::Truncated {
                    field,
                    offset: tag_len,
                    needed,
                    remaining: 0,
                })
            );
        };
        needs(d().u8("a").map(drop), "a", 1);
        needs(d().u32("b").map(drop), "b", 4);
        needs(d().u64("c").map(drop), "c", 8);
        needs(d().fixed32("d").map(drop), "d", 32);
        needs(d().digest("e").map(drop), "e", 32);
        needs(d().bytes("f").map(drop), "f", 4);
        needs(d().str("g").map(drop), "g", 4);
        // A length prefix far past the end is refused, not allocated or
        // overflowed.
        let mut huge = Encoder::new("example", 1);
        huge.u32(u32::MAX);
        let huge = huge.finish();
        let mut d = Decoder::new(&huge, "example", 1).expect("tag");
        assert!(matches!(
            d.bytes("huge"),
            Err(DecodeError::Truncated { field: "huge", needed, remaining: 0, .. })
                if needed == u32::MAX as usize
        ));
        let mut d = Decoder::new(&huge, "example", 1).expect("tag");
        assert!(matches!(
            d.take(usize::MAX, "max"),
            Err(DecodeError::Truncated { field: "max", .. })
        ));
    }

    #[test]
    fn decoder_refuses_invalid_utf8_at_the_field_start() {
        let mut e = Encoder::new("example", 1);
        e.u8(0).bytes(b"ok\xff");
        let bytes = e.finish();
        let mut d = Decoder::new(&bytes, "example", 1).expect("tag");
        d.u8("pad").expect("u8");
        let at = d.position();
        assert_eq!(
            d.str("name"),
            Err(DecodeError::NotUtf8 {
                field: "name",
                offset: at,
            })
        );
    }

    #[test]
    fn decoder_refuses_trailing_bytes() {
        let mut e = Encoder::new("example", 1);
        e.u8(1).u16(2);
        let bytes = e.finish();
        let mut d = Decoder::new(&bytes, "example", 1).expect("tag");
        d.u8("one").expect("u8");
        assert_eq!(d.finish(), Err(DecodeError::Trailing { count: 2 }));
        let d = Decoder::new(&bytes, "example", 1).expect("tag");
        assert_eq!(d.finish(), Err(DecodeError::Trailing { count: 3 }));
        let e = DecodeError::Trailing { count: 2 }.to_string();
        assert!(e.contains("2 trailing"), "{e}");
    }

    #[test]
    fn sha3_matches_the_nist_vector() {
        // FIPS 202 SHA3-256("abc").
        assert_eq!(
            sha3(b"abc").to_hex(),
            "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"
        );
    }

    #[test]
    fn digest_hex_round_trips_and_rejects_bad_input() {
        let d = sha3(b"x");
        assert_eq!(Digest::from_hex(&d.to_hex()), Ok(d));
        assert!(Digest::from_hex("abc").is_err());
        assert!(Digest::from_hex(&"zz".repeat(32)).is_err());
        assert!(Digest::from_hex(&"00".repeat(33)).is_err());
    }
}
