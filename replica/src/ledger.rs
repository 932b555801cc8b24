//! The decision ledger (ILK): entry model, hash chain and byte encoding.
//!
//! Every validator computes each entry's hash itself when it applies the
//! Raft log, so the chain is identical on every honest validator (I4) and an
//! auditor can re-check it with nothing but SHA3-256.
//!
//! # Entry hash (`docs/PROTOCOL.md`, "Ledger entry")
//!
//! ```text
//! hash = SHA3-256( Encoder::new("ledger-entry", 1)
//!                    .u64(index)
//!                    .u8(kind)
//!                    .bytes(payload)
//!                    .digest(prev_hash) )
//! ```
//!
//! that is, the bytes
//! `"senatus/ledger-entry/v1" 0x00 || index (u64 BE) || kind (u8) ||
//! len(payload) (u32 BE) || payload || prev_hash (32 bytes)`.
//! Indexes start at 1; entry 1's `prev_hash` is the genesis digest, and entry
//! `i`'s `prev_hash` is entry `i - 1`'s `hash`.
//!
//! # Entry encoding (storage and export)
//!
//! An encoded entry is the hash pre-image above followed by the 32-byte
//! `hash`. Decoding is strict: the tag must match, the payload must fit
//! [`LEDGER_PAYLOAD_BYTES_MAX`], and no byte may trail the hash. Decoding
//! does not check the hash; [`ChainVerifier`] does.

use std::borrow::Borrow;
use std::fmt;

use senatus_genesis::codec::{Digest, Encoder, ReadError, Reader, sha3};
use serde::{Deserialize, Serialize};

/// Domain-separation object name of the entry hash pre-image.
pub const LEDGER_ENTRY_TAG: &str = "ledger-entry";
/// Version of the entry hash pre-image and encoding.
pub const LEDGER_ENTRY_VERSION: u8 = 1;
/// Largest payload one ledger entry may carry, in bytes. Decisions are small;
/// the bound leaves room for a batch of decisions in one entry.
pub const LEDGER_PAYLOAD_BYTES_MAX: usize = 4 * 1024 * 1024;

/// What a ledger entry records. The `u8` codes are part of the hash and are
/// stable forever: never renumber, only add.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
#[repr(u8)]
pub enum EntryKind {
    /// An opaque operator or test record.
    Record = 1,
    /// A governance decision (PERMIT / DENY / SILENCE).
    Decision = 2,
    /// A token nonce redeemed by a broker.
    Redemption = 3,
    /// A policy amendment proposal.
    Proposal = 4,
    /// A validator's signed vote on a proposal.
    Vote = 5,
    /// A threshold-signed seal.
    Seal = 6,
    /// A validator's redeclaration of the genesis lock after a reseal.
    Redeclaration = 7,
    /// A shutdown certificate.
    Certificate = 8,
}

impl EntryKind {
    /// Every kind, in code order.
    pub const ALL: [EntryKind; 8] = [
        EntryKind::Record,
        EntryKind::Decision,
        EntryKind::Redemption,
        EntryKind::Proposal,
        EntryKind::Vote,
        EntryKind::Seal,
        EntryKind::Redeclaration,
        EntryKind::Certificate,
    ];

    /// The stable wire code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Parses a wire code.
    pub fn from_code(code: u8) -> Result<Self, UnknownEntryKind> {
        EntryKind::ALL
            .into_iter()
            .find(|k| k.code() == code)
            .ok_or(UnknownEntryKind(code))
    }
}

impl TryFrom<u8> for EntryKind {
    type Error = UnknownEntryKind;
    fn try_from(code: u8) -> Result<Self, Self::Error> {
        EntryKind::from_code(code)
    }
}

impl From<EntryKind> for u8 {
    fn from(k: EntryKind) -> u8 {
        k.code()
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}({})", self.code())
    }
}

/// A byte that is not an [`EntryKind`] code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown ledger entry kind code {0} (known: 1..=8)")]
pub struct UnknownEntryKind(pub u8);

/// Position and hash of a ledger entry; as the ledger head it names the last
/// entry (index 0 and the genesis digest for an empty ledger).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct LedgerHead {
    /// Ledger index (1-based; 0 only for the empty ledger).
    pub index: u64,
    /// The entry's hash (the genesis digest for the empty ledger).
    pub hash: Digest,
}

impl LedgerHead {
    /// Length of [`LedgerHead::to_bytes`].
    pub const ENCODED_LEN: usize = 8 + Digest::LEN;

    /// Head of the empty ledger.
    pub fn genesis(genesis_digest: Digest) -> Self {
        LedgerHead {
            index: 0,
            hash: genesis_digest,
        }
    }

    /// `index` (u64 BE) followed by `hash`.
    pub fn to_bytes(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[..8].copy_from_slice(&self.index.to_be_bytes());
        out[8..].copy_from_slice(&self.hash.0);
        out
    }

    /// Strict inverse of [`LedgerHead::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let index = r.u64("index")?;
        let hash = r.digest("hash")?;
        r.finish()?;
        Ok(LedgerHead { index, hash })
    }
}

impl fmt::Display for LedgerHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}:{}", self.index, self.hash)
    }
}

/// One ledger entry.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LedgerEntry {
    /// Ledger index, 1-based, independent of the Raft log index.
    pub index: u64,
    /// What the payload is.
    pub kind: EntryKind,
    /// Kind-specific canonical bytes; opaque to the ledger.
    pub payload: Vec<u8>,
    /// Hash of the previous entry, or the genesis digest for entry 1.
    pub prev_hash: Digest,
    /// [`LedgerEntry::compute_hash`] of the fields above.
    pub hash: Digest,
}

impl LedgerEntry {
    /// The hash pre-image (see the module docs).
    pub fn preimage(index: u64, kind: EntryKind, payload: &[u8], prev_hash: &Digest) -> Encoder {
        let mut e = Encoder::new(LEDGER_ENTRY_TAG, LEDGER_ENTRY_VERSION);
        e.u64(index)
            .u8(kind.code())
            .bytes(payload)
            .digest(prev_hash);
        e
    }

    /// The entry hash (see the module docs).
    pub fn compute_hash(index: u64, kind: EntryKind, payload: &[u8], prev_hash: &Digest) -> Digest {
        Self::preimage(index, kind, payload, prev_hash).digest_of()
    }

    /// Builds the entry that follows `prev` (the current head), hashing it.
    pub fn next(prev: &LedgerHead, kind: EntryKind, payload: Vec<u8>) -> Self {
        let index = prev
            .index
            .checked_add(1)
            .expect("ledger index overflowed u64");
        let hash = Self::compute_hash(index, kind, &payload, &prev.hash);
        LedgerEntry {
            index,
            kind,
            payload,
            prev_hash: prev.hash,
            hash,
        }
    }

    /// Re-hashes the entry's fields (ignores the stored `hash`).
    pub fn recompute_hash(&self) -> Digest {
        Self::compute_hash(self.index, self.kind, &self.payload, &self.prev_hash)
    }

    /// This entry's position and hash.
    pub fn head(&self) -> LedgerHead {
        LedgerHead {
            index: self.index,
            hash: self.hash,
        }
    }

    /// Storage / export encoding: the hash pre-image, then the 32-byte hash.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes =
            Self::preimage(self.index, self.kind, &self.payload, &self.prev_hash).finish();
        bytes.extend_from_slice(&self.hash.0);
        bytes
    }

    /// Strict inverse of [`LedgerEntry::encode`]. Does not verify the hash.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.tag(LEDGER_ENTRY_TAG, LEDGER_ENTRY_VERSION)?;
        let index = r.u64("index")?;
        let code = r.u8("kind")?;
        let kind = EntryKind::from_code(code).map_err(|e| DecodeError {
            offset: r.position(),
            reason: e.to_string(),
        })?;
        let payload = r.bytes_max("payload", LEDGER_PAYLOAD_BYTES_MAX)?.to_vec();
        let prev_hash = r.digest("prev_hash")?;
        let hash = r.digest("hash")?;
        r.finish()?;
        Ok(LedgerEntry {
            index,
            kind,
            payload,
            prev_hash,
            hash,
        })
    }
}

/// A break in the ledger chain, naming the first bad index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// Entries are not consecutive from 1.
    #[error("ledger index {expected}: expected entry {expected}, found entry {found}")]
    IndexGap {
        /// The index the chain needs next.
        expected: u64,
        /// The index the entry carries.
        found: u64,
    },
    /// `prev_hash` does not link to the previous entry (or genesis).
    #[error("ledger index {index}: prev_hash expected {expected}, found {found}")]
    PrevHashMismatch {
        /// The bad entry.
        index: u64,
        /// Hash of the previous entry (or the genesis digest).
        expected: Digest,
        /// The entry's `prev_hash`.
        found: Digest,
    },
    /// The stored hash is not the hash of the entry's fields.
    #[error("ledger index {index}: hash expected {expected} (recomputed), found {found}")]
    HashMismatch {
        /// The bad entry.
        index: u64,
        /// Recomputed hash.
        expected: Digest,
        /// Stored hash.
        found: Digest,
    },
    /// The stored bytes of an entry do not decode.
    #[error("ledger index {index}: stored entry does not decode: {reason}")]
    Undecodable {
        /// Index (storage key) of the bad entry.
        index: u64,
        /// Why decoding failed.
        reason: String,
    },
    /// An entry is stored under another index's key.
    #[error("ledger index {index}: entry stored under key {index} carries index {found}")]
    KeyMismatch {
        /// The storage key.
        index: u64,
        /// The index inside the entry.
        found: u64,
    },
    /// The recorded head is not the head the entries recompute to.
    #[error("ledger index {index}: recorded head expected {expected} (recomputed), found {found}")]
    HeadMismatch {
        /// The larger of the two head indexes: where the disagreement shows.
        index: u64,
        /// Head recomputed from the entries.
        expected: LedgerHead,
        /// Head recorded in the store or snapshot.
        found: LedgerHead,
    },
    /// The entries could not be read at all.
    #[error("ledger index {index}: entry unreadable: {reason}")]
    Unreadable {
        /// The first index not verified.
        index: u64,
        /// The storage error.
        reason: String,
    },
}

impl ChainError {
    /// The first ledger index at which the chain is broken.
    pub fn index(&self) -> u64 {
        match self {
            ChainError::IndexGap { expected, .. } => *expected,
            ChainError::PrevHashMismatch { index, .. }
            | ChainError::HashMismatch { index, .. }
            | ChainError::Undecodable { index, .. }
            | ChainError::KeyMismatch { index, .. }
            | ChainError::HeadMismatch { index, .. }
            | ChainError::Unreadable { index, .. } => *index,
        }
    }
}

/// Incremental chain check: feed entries in order from index 1.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    head: LedgerHead,
}

impl ChainVerifier {
    /// Starts at the empty ledger of `genesis_digest`.
    pub fn new(genesis_digest: Digest) -> Self {
        ChainVerifier {
            head: LedgerHead::genesis(genesis_digest),
        }
    }

    /// Checks that `entry` is the next link and advances the head.
    pub fn push(&mut self, entry: &LedgerEntry) -> Result<(), ChainError> {
        let expected = self.next_index();
        if entry.index != expected {
            return Err(ChainError::IndexGap {
                expected,
                found: entry.index,
            });
        }
        if entry.prev_hash != self.head.hash {
            return Err(ChainError::PrevHashMismatch {
                index: entry.index,
                expected: self.head.hash,
                found: entry.prev_hash,
            });
        }
        let computed = entry.recompute_hash();
        if computed != entry.hash {
            return Err(ChainError::HashMismatch {
                index: entry.index,
                expected: computed,
                found: entry.hash,
            });
        }
        self.head = entry.head();
        Ok(())
    }

    /// The index the next entry must carry.
    pub fn next_index(&self) -> u64 {
        self.head.index.saturating_add(1)
    }

    /// Head after the entries pushed so far.
    pub fn head(&self) -> LedgerHead {
        self.head
    }

    /// Checks that a recorded head equals the recomputed one.
    pub fn check_head(&self, recorded: &LedgerHead) -> Result<LedgerHead, ChainError> {
        if *recorded != self.head {
            return Err(ChainError::HeadMismatch {
                index: recorded.index.max(self.head.index),
                expected: self.head,
                found: *recorded,
            });
        }
        Ok(self.head)
    }
}

/// Verifies a whole ledger from entry 1 and returns the head hash.
pub fn verify_chain<I>(entries: I, genesis_digest: Digest) -> Result<Digest, ChainError>
where
    I: IntoIterator,
    I::Item: Borrow<LedgerEntry>,
{
    let mut v = ChainVerifier::new(genesis_digest);
    for e in entries {
        v.push(e.borrow())?;
    }
    Ok(v.head().hash)
}

/// Bytes that are not a valid encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed encoding at byte {offset}: {reason}")]
pub struct DecodeError {
    /// Byte offset where decoding stopped.
    pub offset: usize,
    /// What was wrong.
    pub reason: String,
}

impl From<ReadError> for DecodeError {
    /// The shared reader's error as this module's (same offsets and texts
    /// as before the readers were unified).
    fn from(e: ReadError) -> Self {
        let (offset, reason) = match e {
            ReadError::Truncated {
                offset,
                needed,
                remaining,
                ..
            } => (offset, format!("need {needed} bytes, {remaining} left")),
            ReadError::Tag { offset, expected } => {
                (offset, format!("domain tag is not {expected:?}"))
            }
            ReadError::TooLong(b) => (
                b.offset,
                format!("length {} exceeds the bound {}", b.value, b.max),
            ),
            ReadError::TooMany(b) => (
                b.offset,
                format!("count {} exceeds the bound {}", b.value, b.max),
            ),
            ReadError::Trailing { offset, count } => (offset, format!("{count} trailing bytes")),
            ReadError::NotUtf8 { field, offset } => (offset, format!("{field} is not UTF-8")),
        };
        DecodeError { offset, reason }
    }
}

/// SHA3-256 of an encoded entry's pre-image part, for auditors holding only
/// the export bytes: equals the entry hash when the encoding is intact.
pub fn hash_of_encoded(encoded: &[u8]) -> Option<Digest> {
    let split = encoded.len().checked_sub(Digest::LEN)?;
    Some(sha3(&encoded[..split]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn genesis() -> Digest {
        sha3(b"test genesis")
    }

    fn chain(n: usize) -> Vec<LedgerEntry> {
        let mut head = LedgerHead::genesis(genesis());
        let mut out = Vec::new();
        for i in 0..n {
            let e = LedgerEntry::next(&head, EntryKind::Record, format!("r{i}").into_bytes());
            head = e.head();
            out.push(e);
        }
        out
    }

    #[test]
    fn entry_hash_matches_the_spelled_out_preimage() {
        let e = LedgerEntry::next(
            &LedgerHead::genesis(Digest([7u8; 32])),
            EntryKind::Decision,
            b"ab".to_vec(),
        );
        let mut pre = b"senatus/ledger-entry/v1\0".to_vec();
        pre.extend_from_slice(&1u64.to_be_bytes());
        pre.push(2);
        pre.extend_from_slice(&[0, 0, 0, 2, b'a', b'b']);
        pre.extend_from_slice(&[7u8; 32]);
        assert_eq!(e.hash, sha3(&pre));
        let mut enc = pre.clone();
        enc.extend_from_slice(&e.hash.0);
        assert_eq!(e.encode(), enc);
        assert_eq!(hash_of_encoded(&enc), Some(e.hash));
    }

    #[test]
    fn entry_hash_vector_is_pinned() {
        // Pins the spec: an outside implementation must reproduce this.
        let e = LedgerEntry::next(
            &LedgerHead::genesis(Digest::ZERO),
            EntryKind::Record,
            b"senatus".to_vec(),
        );
        assert_eq!(e.hash, e.recompute_hash());
        let mut pre = b"senatus/ledger-entry/v1\0".to_vec();
        pre.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 7]);
        pre.extend_from_slice(b"senatus");
        pre.extend_from_slice(&[0u8; 32]);
        assert_eq!(e.hash, sha3(&pre));
    }

    #[test]
    fn encoding_round_trips_and_is_strict() {
        let e = &chain(2)[1];
        let enc = e.encode();
        assert_eq!(LedgerEntry::decode(&enc).as_ref(), Ok(e));

        let mut trailing = enc.clone();
        trailing.push(0);
        let err = LedgerEntry::decode(&trailing).expect_err("must fail");
        assert!(err.reason.contains("1 trailing bytes"), "{err}");

        let err = LedgerEntry::decode(&enc[..enc.len() - 1]).expect_err("must fail");
        assert!(err.reason.contains("need 32 bytes"), "{err}");

        let mut bad_kind = enc.clone();
        bad_kind[24 + 8] = 9;
        let err = LedgerEntry::decode(&bad_kind).expect_err("must fail");
        assert!(
            err.reason.contains("unknown ledger entry kind code 9"),
            "{err}"
        );

        let mut bad_tag = enc;
        bad_tag[0] = b'S';
        let err = LedgerEntry::decode(&bad_tag).expect_err("must fail");
        assert_eq!(err.offset, 0);
    }

    #[test]
    fn entry_kind_codes_are_stable() {
        let codes: Vec<u8> = EntryKind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(codes, vec![1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(EntryKind::from_code(0), Err(UnknownEntryKind(0)));
        assert_eq!(EntryKind::from_code(9), Err(UnknownEntryKind(9)));
        assert_eq!(
            serde_json::to_string(&EntryKind::Seal).expect("must succeed"),
            "6"
        );
        assert!(serde_json::from_str::<EntryKind>("9").is_err());
    }

    #[test]
    fn verify_chain_accepts_a_good_chain() {
        let c = chain(5);
        assert_eq!(verify_chain(&c, genesis()), Ok(c[4].hash));
        assert_eq!(
            verify_chain(Vec::<LedgerEntry>::new(), genesis()),
            Ok(genesis())
        );
    }

    #[test]
    fn verify_chain_names_the_first_bad_index() {
        let mut c = chain(5);
        c[2].payload = b"tampered".to_vec();
        let err = verify_chain(&c, genesis()).expect_err("must fail");
        assert!(
            matches!(err, ChainError::HashMismatch { index: 3, .. }),
            "{err}"
        );
        assert_eq!(err.index(), 3);

        let c = chain(5);
        let err = verify_chain(&c, sha3(b"other genesis")).expect_err("must fail");
        assert!(
            matches!(err, ChainError::PrevHashMismatch { index: 1, .. }),
            "{err}"
        );

        let mut c = chain(5);
        c.remove(3);
        let err = verify_chain(&c, genesis()).expect_err("must fail");
        assert_eq!(
            err,
            ChainError::IndexGap {
                expected: 4,
                found: 5
            }
        );
        assert!(err.to_string().contains("expected entry 4, found entry 5"));

        // A re-hashed tampered entry still breaks the next link.
        let mut c = chain(5);
        c[1].payload = b"forged".to_vec();
        c[1].hash = c[1].recompute_hash();
        let err = verify_chain(&c, genesis()).expect_err("must fail");
        assert!(
            matches!(err, ChainError::PrevHashMismatch { index: 3, .. }),
            "{err}"
        );
    }

    #[test]
    fn head_bytes_round_trip_strictly() {
        let h = chain(3)[2].head();
        assert_eq!(LedgerHead::from_bytes(&h.to_bytes()), Ok(h));
        assert!(LedgerHead::from_bytes(&h.to_bytes()[..39]).is_err());
        let mut long = h.to_bytes().to_vec();
        long.push(1);
        assert!(LedgerHead::from_bytes(&long).is_err());
    }
}
