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

    /// Appends 64 raw bytes (an Ed25519 signature).
    pub fn fixed64(&mut self, v: &[u8; 64]) -> &mut Self {
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

/// Why a [`Reader`] refused its input. Every variant names where it
/// stopped, so each decoder can map it into its own error without losing
/// anything it used to report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The input ends inside `field`. Nothing of the failed read is
    /// consumed (a length prefix read before it stays consumed).
    #[error("truncated at byte {offset} reading {field}: need {needed} bytes, {remaining} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Where the read that did not fit starts.
        offset: usize,
        /// Bytes the read needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length prefix declares more bytes than the caller allows.
    #[error("{} at byte {} declares {} bytes, over the bound of {}", .0.field, .0.offset, .0.value, .0.max)]
    TooLong(Bound),
    /// A list count declares more items than the caller allows.
    #[error("{} at byte {} declares {} items, over the bound of {}", .0.field, .0.offset, .0.value, .0.max)]
    TooMany(Bound),
    /// `field` is not valid UTF-8.
    #[error("{field} at byte {offset} is not UTF-8")]
    NotUtf8 {
        /// The field.
        field: &'static str,
        /// Where the field (its length prefix) starts.
        offset: usize,
    },
    /// The bytes where a domain tag belongs are not the expected tag.
    #[error("expected tag {expected:?} at byte {offset}")]
    Tag {
        /// Where the tag should start.
        offset: usize,
        /// The tag wanted (without the `0x00`).
        expected: String,
    },
    /// Bytes remain after the last field.
    #[error("{count} trailing bytes at byte {offset}")]
    Trailing {
        /// Where the trailing bytes start.
        offset: usize,
        /// How many.
        count: usize,
    },
}

/// A length or count read off the input that is over the caller's bound
/// ([`ReadError::TooLong`], [`ReadError::TooMany`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// The field.
    pub field: &'static str,
    /// Where the body or first item would start (just after the prefix).
    pub offset: usize,
    /// The length or count declared.
    pub value: usize,
    /// The bound.
    pub max: usize,
}

/// The one bounds-checked cursor over canonical bytes: fixed-width
/// big-endian integers, raw arrays, `u32`-length-prefixed byte strings and
/// UTF-8 strings, `u32` list counts and domain tags (see the module
/// documentation). It never allocates on success, and every length read off
/// the input is checked against the bytes left (and the caller's bound)
/// before anything is taken, so a huge prefix costs nothing.
///
/// [`Decoder`] is this reader behind a checked tag; module decoders with
/// their own error types map [`ReadError`] into them.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    /// Byte offset of the next field.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next `n` raw bytes.
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], ReadError> {
        if n > self.remaining() {
            return Err(ReadError::Truncated {
                field,
                offset: self.pos,
                needed: n,
                remaining: self.remaining(),
            });
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// The next `N` raw bytes as an array (a key, digest or signature).
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], ReadError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, field)?);
        Ok(a)
    }

    /// One byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, ReadError> {
        Ok(self.take(1, field)?[0])
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, ReadError> {
        self.array(field).map(u16::from_be_bytes)
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, ReadError> {
        self.array(field).map(u32::from_be_bytes)
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, ReadError> {
        self.array(field).map(u64::from_be_bytes)
    }

    /// A digest (32 raw bytes).
    pub fn digest(&mut self, field: &'static str) -> Result<Digest, ReadError> {
        self.array(field).map(Digest)
    }

    /// A `u32`-length-prefixed byte string, bounded only by the input.
    pub fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], ReadError> {
        self.bytes_max(field, usize::MAX)
    }

    /// A `u32`-length-prefixed byte string of at most `max` bytes; the
    /// length is refused before the body is read.
    pub fn bytes_max(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], ReadError> {
        let len = self.prefix(field, max, ReadError::TooLong)?;
        self.take(len, field)
    }

    /// A `u32`-length-prefixed UTF-8 string.
    pub fn str(&mut self, field: &'static str) -> Result<&'a str, ReadError> {
        let offset = self.pos;
        std::str::from_utf8(self.bytes(field)?).map_err(|_| ReadError::NotUtf8 { field, offset })
    }

    /// A `u32` list count of at most `max` items, refused before any item
    /// is read.
    pub fn count(&mut self, field: &'static str, max: usize) -> Result<usize, ReadError> {
        self.prefix(field, max, ReadError::TooMany)
    }

    /// A `u32` length or count of at most `max`; `over` names the error.
    fn prefix(
        &mut self,
        field: &'static str,
        max: usize,
        over: fn(Bound) -> ReadError,
    ) -> Result<usize, ReadError> {
        let value = self.u32(field)? as usize;
        if value > max {
            return Err(over(Bound {
                field,
                offset: self.pos,
                value,
                max,
            }));
        }
        Ok(value)
    }

    /// The domain tag `senatus/<object>/v<version>` and its `0x00`,
    /// compared in place. Input too short for the tag is
    /// [`ReadError::Truncated`]; other bytes are [`ReadError::Tag`] and are
    /// not consumed.
    pub fn tag(&mut self, object: &str, version: u8) -> Result<(), ReadError> {
        let mut digits = [0u8; 3];
        let parts: [&[u8]; 5] = [
            b"senatus/",
            object.as_bytes(),
            b"/v",
            decimal(version, &mut digits),
            b"\0",
        ];
        let start = self.pos;
        let mut got = self.take(parts.iter().map(|p| p.len()).sum(), "domain tag")?;
        for part in parts {
            match got.strip_prefix(part) {
                Some(rest) => got = rest,
                None => {
                    self.pos = start;
                    return Err(ReadError::Tag {
                        offset: start,
                        expected: domain_tag(object, version),
                    });
                }
            }
        }
        Ok(())
    }

    /// Ends reading: no byte may remain.
    pub fn finish(self) -> Result<(), ReadError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(ReadError::Trailing {
                offset: self.pos,
                count,
            }),
        }
    }
}

/// `v` in decimal ASCII, written into `buf`.
fn decimal(mut v: u8, buf: &mut [u8; 3]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + v % 10;
        v /= 10;
        if v == 0 {
            return &buf[at..];
        }
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
    /// A length prefix declares more bytes than the decoder allows
    /// ([`Decoder::bytes_max`]); worded as [`ReadError::TooLong`].
    #[error("{}", ReadError::TooLong(*.0))]
    TooLong(Bound),
    /// A list count declares more items than the decoder allows
    /// ([`Decoder::count`]); worded as [`ReadError::TooMany`].
    #[error("{}", ReadError::TooMany(*.0))]
    TooMany(Bound),
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

impl From<ReadError> for DecodeError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Truncated {
                field,
                offset,
                needed,
                remaining,
            } => DecodeError::Truncated {
                field,
                offset: offset + remaining,
                needed,
                remaining,
            },
            ReadError::TooLong(b) => DecodeError::TooLong(b),
            ReadError::TooMany(b) => DecodeError::TooMany(b),
            ReadError::NotUtf8 { field, offset } => DecodeError::NotUtf8 { field, offset },
            ReadError::Tag { expected, .. } => DecodeError::Tag { expected },
            ReadError::Trailing { count, .. } => DecodeError::Trailing { count },
        }
    }
}

/// A [`Reader`] over a message whose tag and version have been checked:
/// the inverse of each [`Encoder`] method, refusing truncation, bad UTF-8
/// and trailing bytes. Lengths are checked against the input before
/// anything is allocated.
#[derive(Debug)]
pub struct Decoder<'a> {
    r: Reader<'a>,
}

impl<'a> Decoder<'a> {
    /// Starts reading a message for `object` at `version`, checking its tag.
    pub fn new(bytes: &'a [u8], object: &str, version: u8) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.tag(object, version).map_err(|_| DecodeError::Tag {
            expected: domain_tag(object, version),
        })?;
        Ok(Decoder { r })
    }

    /// Byte offset of the next field.
    pub fn position(&self) -> usize {
        self.r.position()
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.r.remaining()
    }

    /// The next `n` raw bytes.
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        Ok(self.r.take(n, field)?)
    }

    /// The next `N` raw bytes as an array.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        Ok(self.r.array(field)?)
    }

    /// One byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.r.u8(field)?)
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(self.r.u16(field)?)
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(self.r.u32(field)?)
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(self.r.u64(field)?)
    }

    /// 32 raw bytes.
    pub fn fixed32(&mut self, field: &'static str) -> Result<[u8; 32], DecodeError> {
        self.array(field)
    }

    /// 64 raw bytes (an Ed25519 signature).
    pub fn fixed64(&mut self, field: &'static str) -> Result<[u8; 64], DecodeError> {
        self.array(field)
    }

    /// A digest (32 raw bytes).
    pub fn digest(&mut self, field: &'static str) -> Result<Digest, DecodeError> {
        Ok(self.r.digest(field)?)
    }

    /// A length-prefixed byte string.
    pub fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        Ok(self.r.bytes(field)?)
    }

    /// A length-prefixed byte string of at most `max` bytes, refused
    /// ([`DecodeError::TooLong`]) before the body is read.
    pub fn bytes_max(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        Ok(self.r.bytes_max(field, max)?)
    }

    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        Ok(self.r.str(field)?)
    }

    /// A list count of at most `max` items, refused
    /// ([`DecodeError::TooMany`]) before any item is read.
    pub fn count(&mut self, field: &'static str, max: usize) -> Result<usize, DecodeError> {
        Ok(self.r.count(field, max)?)
    }

    /// Ends reading: no byte may remain.
    pub fn finish(self) -> Result<(), DecodeError> {
        Ok(self.r.finish()?)
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
    fn decoder_bounds_lengths_and_counts_before_reading_on() {
        let mut e = Encoder::new("example", 1);
        e.bytes(b"abcd").count(3);
        let bytes = e.finish();
        let tag_len = b"senatus/example/v1\0".len();
        let mut d = Decoder::new(&bytes, "example", 1).expect("tag");
        assert_eq!(d.bytes_max("body", 4), Ok(&b"abcd"[..]));
        assert_eq!(d.count("items", 3), Ok(3));
        assert_eq!(d.finish(), Ok(()));
        let mut d = Decoder::new(&bytes, "example", 1).expect("tag");
        let e = d.bytes_max("body", 3).expect_err("over the bound");
        assert_eq!(
            e,
            DecodeError::TooLong(Bound {
                field: "body",
                offset: tag_len + 4,
                value: 4,
                max: 3,
            })
        );
        assert_eq!(
            e.to_string(),
            format!(
                "body at byte {} declares 4 bytes, over the bound of 3",
                tag_len + 4
            )
        );
        d.take(4, "body").expect("body");
        assert_eq!(
            d.count("items", 2),
            Err(DecodeError::TooMany(Bound {
                field: "items",
                offset: bytes.len(),
                value: 3,
                max: 2,
            }))
        );
        let mut with_sig = Encoder::new("example", 1).finish();
        with_sig.extend_from_slice(&[7u8; 64]);
        let mut d = Decoder::new(&with_sig, "example", 1).expect("tag");
        assert_eq!(d.array::<64>("signature"), Ok([7u8; 64]));
        assert_eq!(d.finish(), Ok(()));
    }

    /// Canonical bytes for the reader tests: `u16 7`, `str "abc"`, `u64 9`.
    fn sample() -> Vec<u8> {
        let mut v = vec![0, 7];
        v.extend_from_slice(&[0, 0, 0, 3, b'a', b'b', b'c']);
        v.extend_from_slice(&9u64.to_be_bytes());
        v
    }

    #[test]
    fn reader_exact_fit_succeeds() {
        let bytes = sample();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u16("a"), Ok(7));
        assert_eq!(r.str("b"), Ok("abc"));
        assert_eq!(r.position(), 9);
        assert!(!r.is_empty());
        assert_eq!(r.u64("c"), Ok(9));
        assert!(r.is_empty());
        assert_eq!(r.remaining(), 0);
        assert_eq!(r.finish(), Ok(()));
        // A bound equal to the length, and a count equal to its bound.
        let mut r = Reader::new(&bytes[2..9]);
        assert_eq!(r.bytes_max("b", 3), Ok(&b"abc"[..]));
        assert_eq!(r.finish(), Ok(()));
        let mut r = Reader::new(&[0, 0, 0, 2]);
        assert_eq!(r.count("n", 2), Ok(2));
        assert_eq!(r.finish(), Ok(()));
        // Every fixed width, back to back, to the last byte.
        let mut all = vec![0xab];
        all.extend_from_slice(&0x0102u16.to_be_bytes());
        all.extend_from_slice(&0x0304_0506u32.to_be_bytes());
        all.extend_from_slice(&[5u8; 32]);
        all.extend_from_slice(&[6u8; 64]);
        let mut r = Reader::new(&all);
        assert_eq!(r.u8("u8"), Ok(0xab));
        assert_eq!(r.u16("u16"), Ok(0x0102));
        assert_eq!(r.u32("u32"), Ok(0x0304_0506));
        assert_eq!(r.digest("digest"), Ok(Digest([5u8; 32])));
        assert_eq!(r.array::<64>("signature"), Ok([6u8; 64]));
        assert_eq!(r.finish(), Ok(()));
        assert_eq!(Reader::new(&[]).finish(), Ok(()));
    }

    #[test]
    fn reader_truncation_names_the_field_and_counts() {
        let bytes = sample();
        // Inside a fixed-width field: nothing is consumed.
        let mut r = Reader::new(&bytes[..12]);
        r.u16("a").expect("u16");
        r.str("b").expect("str");
        assert_eq!(
            r.u64("c"),
            Err(ReadError::Truncated {
                field: "c",
                offset: 9,
                needed: 8,
                remaining: 3,
            })
        );
        assert_eq!(r.position(), 9);
        assert_eq!(r.remaining(), 3);
        // Inside the body of a string: the prefix stays read, the body is
        // where it stopped.
        let mut r = Reader::new(&bytes[..8]);
        r.u16("a").expect("u16");
        assert_eq!(
            r.str("b"),
            Err(ReadError::Truncated {
                field: "b",
                offset: 6,
                needed: 3,
                remaining: 2,
            })
        );
        // Each reader on empty input.
        let needs = |r: Result<(), ReadError>, field: &'static str, needed: usize| {
            assert_eq!(
                r,
                Err(ReadError::Truncated {
                    field,
                    offset: 0,
                    needed,
                    remaining: 0,
                })
            );
        };
        let e = || Reader::new(&[]);
        needs(e().u8("a").map(drop), "a", 1);
        needs(e().u16("b").map(drop), "b", 2);
        needs(e().u32("c").map(drop), "c", 4);
        needs(e().u64("d").map(drop), "d", 8);
        needs(e().digest("e").map(drop), "e", 32);
        needs(e().array::<64>("f").map(drop), "f", 64);
        needs(e().bytes("g").map(drop), "g", 4);
        needs(e().bytes_max("h", 9).map(drop), "h", 4);
        needs(e().str("i").map(drop), "i", 4);
        needs(e().count("j", 9).map(drop), "j", 4);
        needs(e().tag("example", 1).map(drop), "domain tag", 19);
        let msg = Reader::new(&[1])
            .u32("field x")
            .expect_err("short")
            .to_string();
        assert_eq!(
            msg,
            "truncated at byte 0 reading field x: need 4 bytes, 1 left"
        );
    }

    #[test]
    fn reader_refuses_a_huge_length_before_allocating_anything() {
        // Four bytes that claim four gigabytes: refused by comparing with
        // the bytes left, never by trying to reserve them.
        let huge = u32::MAX.to_be_bytes();
        assert_eq!(
            Reader::new(&huge).bytes("body"),
            Err(ReadError::Truncated {
                field: "body",
                offset: 4,
                needed: u32::MAX as usize,
                remaining: 0,
            })
        );
        assert!(matches!(
            Reader::new(&huge).str("text"),
            Err(ReadError::Truncated { field: "text", needed, .. }) if needed == u32::MAX as usize
        ));
        // Over the caller's bound: refused at the prefix, even where the
        // body is all there.
        let mut bounded = 4u32.to_be_bytes().to_vec();
        bounded.extend_from_slice(b"abcd");
        assert_eq!(
            Reader::new(&bounded).bytes_max("body", 3),
            Err(ReadError::TooLong(Bound {
                field: "body",
                offset: 4,
                value: 4,
                max: 3,
            }))
        );
        assert_eq!(
            Reader::new(&huge).count("items", 1000),
            Err(ReadError::TooMany(Bound {
                field: "items",
                offset: 4,
                value: u32::MAX as usize,
                max: 1000,
            }))
        );
        // The widest take does not overflow the cursor.
        let mut r = Reader::new(&huge);
        r.u8("pad").expect("u8");
        assert_eq!(
            r.take(usize::MAX, "max"),
            Err(ReadError::Truncated {
                field: "max",
                offset: 1,
                needed: usize::MAX,
                remaining: 3,
            })
        );
        assert_eq!(r.position(), 1);
    }

    #[test]
    fn reader_finish_refuses_trailing_bytes() {
        let bytes = sample();
        let mut r = Reader::new(&bytes);
        r.u16("a").expect("u16");
        assert_eq!(
            r.finish(),
            Err(ReadError::Trailing {
                offset: 2,
                count: 15,
            })
        );
        assert_eq!(
            Reader::new(&[0]).finish(),
            Err(ReadError::Trailing {
                offset: 0,
                count: 1,
            })
        );
    }

    #[test]
    fn reader_refuses_invalid_utf8_at_the_field_start() {
        let mut bytes = vec![9];
        bytes.extend_from_slice(&[0, 0, 0, 2, b'o', 0xff]);
        let mut r = Reader::new(&bytes);
        r.u8("pad").expect("u8");
        assert_eq!(
            r.str("name"),
            Err(ReadError::NotUtf8 {
                field: "name",
                offset: 1,
            })
        );
    }

    #[test]
    fn reader_tag_matches_the_encoder_and_refuses_others_in_place() {
        for version in [0u8, 1, 9, 10, 99, 100, 255] {
            let mut bytes = Encoder::new("example", version).finish();
            bytes.push(7);
            let mut r = Reader::new(&bytes);
            assert_eq!(r.tag("example", version), Ok(()), "v{version}");
            assert_eq!(r.u8("after"), Ok(7));
            assert_eq!(r.finish(), Ok(()));
        }
        let v1 = Encoder::new("example", 1).finish();
        let refused = |bytes: &[u8], object: &str, version: u8| {
            let mut r = Reader::new(bytes);
            let e = r.tag(object, version);
            assert_eq!(r.position(), 0, "{object} v{version}: consumed");
            e
        };
        let want = |expected: &str| {
            Err(ReadError::Tag {
                offset: 0,
                expected: expected.to_string(),
            })
        };
        assert_eq!(refused(&v1, "exampla", 1), want("senatus/exampla/v1"));
        assert_eq!(refused(&v1, "example", 2), want("senatus/example/v2"));
        assert_eq!(
            refused(b"senatus/example/v1X", "example", 1),
            want("senatus/example/v1")
        );
        // Longer tags than the input are truncation, not a mismatch.
        assert!(matches!(
            refused(&v1, "examples", 1),
            Err(ReadError::Truncated {
                field: "domain tag",
                needed: 20,
                remaining: 19,
                ..
            })
        ));
        assert!(matches!(
            refused(&v1, "example", 10),
            Err(ReadError::Truncated { .. })
        ));
        // Mid-stream, the offset is where the tag should be.
        let mut inner = vec![0, 0];
        inner.extend_from_slice(&v1);
        let mut r = Reader::new(&inner);
        r.u16("pad").expect("u16");
        assert_eq!(
            r.tag("other", 1),
            Err(ReadError::Tag {
                offset: 2,
                expected: "senatus/other/v1".to_string(),
            })
        );
        assert_eq!(r.tag("example", 1), Ok(()));
        assert_eq!(r.finish(), Ok(()));
    }

    /// Each reader error becomes the decoder error it always was; the
    /// truncation offset there is where the input ends.
    #[test]
    fn read_errors_map_onto_decode_errors() {
        assert_eq!(
            DecodeError::from(ReadError::Truncated {
                field: "f",
                offset: 5,
                needed: 8,
                remaining: 3,
            }),
            DecodeError::Truncated {
                field: "f",
                offset: 8,
                needed: 8,
                remaining: 3,
            }
        );
        assert_eq!(
            DecodeError::from(ReadError::Trailing {
                offset: 5,
                count: 2,
            }),
            DecodeError::Trailing { count: 2 }
        );
        assert_eq!(
            DecodeError::from(ReadError::NotUtf8 {
                field: "f",
                offset: 5,
            }),
            DecodeError::NotUtf8 {
                field: "f",
                offset: 5,
            }
        );
        assert_eq!(
            DecodeError::from(ReadError::Tag {
                offset: 0,
                expected: "senatus/x/v1".into(),
            }),
            DecodeError::Tag {
                expected: "senatus/x/v1".into(),
            }
        );
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
