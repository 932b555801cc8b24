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
