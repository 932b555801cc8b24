//! State machine snapshot format (version 1).
//!
//! A snapshot is the whole replicated state, so that a follower installing it
//! ends with exactly the state the leader had (I4, I7):
//!
//! ```text
//! Encoder::new("sm-snapshot", 1)
//!   .digest(genesis_digest)
//!   .bytes(JSON Option<LogId>)            last applied Raft log id
//!   .bytes(JSON StoredMembership)         last applied membership
//!   .u64(head.index) .digest(head.hash)   ledger head
//!   .count(n) then n × .bytes(LedgerEntry::encode())   entries 1..=n in order
//!   .count(3) then for each reserved column family, in the order
//!        policy (always empty: the policy layer is derived from the
//!        ledger's seals), nonces, idempotency:
//!     .str(name) .count(m) then m × (.bytes(key) .bytes(value)), keys ascending
//! followed by SHA3-256 of all preceding bytes (32 raw bytes).
//! ```
//!
//! Decoding is strict (bounded lengths, fixed section order, no trailing
//! bytes). Installing additionally re-verifies the ledger chain from genesis
//! and the recorded head before anything is replaced.

use senatus_genesis::codec::{Digest, Encoder, sha3};

use super::keys::{cf, to_json};
use senatus_genesis::codec::{ReadError, Reader};

use crate::ledger::{ChainError, DecodeError, LedgerEntry, LedgerHead};
use crate::raft_types::{LogId, StoredMembership};

/// Domain-separation object name of the snapshot format.
pub const SNAPSHOT_TAG: &str = "sm-snapshot";
/// Version of the snapshot format.
pub const SNAPSHOT_VERSION: u8 = 1;
/// Default bound on snapshot size in bytes (`snapshot_bytes_max`). Snapshots
/// are built and received in memory, so this also bounds memory use.
pub const SNAPSHOT_BYTES_MAX_DEFAULT: usize = 512 * 1024 * 1024;
/// Largest key in a reserved column family, in bytes.
pub const RESERVED_KEY_BYTES_MAX: usize = 1024;
/// Largest value in a reserved column family, in bytes (a policy layer is the
/// largest expected value).
pub const RESERVED_VALUE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Largest JSON metadata field (applied log id, membership), in bytes.
pub const SNAPSHOT_META_JSON_BYTES_MAX: usize = 1024 * 1024;
/// The reserved column families carried by a snapshot, in encoding order.
pub const RESERVED_CFS: [&str; 3] = [cf::POLICY, cf::NONCES, cf::IDEMPOTENCY];

/// Raw key/value pairs of one column family, keys ascending.
pub type CfPairs = Vec<(Vec<u8>, Vec<u8>)>;

/// The decoded content of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotContents {
    /// Genesis the ledger chains from.
    pub genesis: Digest,
    /// Last applied Raft log id.
    pub last_applied: Option<LogId>,
    /// Last applied membership.
    pub last_membership: StoredMembership,
    /// Recorded ledger head.
    pub head: LedgerHead,
    /// Every ledger entry, from index 1.
    pub ledger: Vec<LedgerEntry>,
    /// Pairs of each of [`RESERVED_CFS`], in that order.
    pub reserved: [CfPairs; 3],
}

/// Why a snapshot was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Larger than `snapshot_bytes_max`.
    #[error("snapshot is {bytes} bytes, above snapshot_bytes_max {max}")]
    TooLarge {
        /// Snapshot size.
        bytes: u64,
        /// The bound.
        max: u64,
    },
    /// The bytes are not a version-1 snapshot.
    #[error("snapshot bytes are malformed: {0}")]
    Malformed(#[from] DecodeError),
    /// The trailing checksum does not match the content.
    #[error("snapshot checksum expected {expected} (recomputed), found {found}")]
    Checksum {
        /// SHA3-256 of the content.
        expected: Digest,
        /// The trailing 32 bytes.
        found: Digest,
    },
    /// The snapshot belongs to another genesis.
    #[error("snapshot chains from genesis {found}, this store from genesis {expected}")]
    WrongGenesis {
        /// This store's genesis.
        expected: Digest,
        /// The snapshot's genesis.
        found: Digest,
    },
    /// The snapshot's ledger chain is broken.
    #[error("snapshot ledger chain broken: {0}")]
    Chain(#[from] ChainError),
    /// The snapshot's ledger does not apply again from genesis.
    #[error("snapshot ledger does not apply again: {0}")]
    Derived(String),
    /// The snapshot's records are not the ones its own ledger makes.
    #[error(
        "snapshot {cf} records are not the ones its ledger makes: {sent} sent, {derived} derived, first difference at record {first_difference}"
    )]
    RecordsMismatch {
        /// The column family.
        cf: &'static str,
        /// Records the snapshot carries.
        sent: usize,
        /// Records its ledger makes.
        derived: usize,
        /// Position (in key order) of the first record that differs.
        first_difference: usize,
    },
    /// The snapshot's ledger ends before this validator's committed one.
    #[error(
        "snapshot ledger ends at index {snapshot}, before ledger index {committed} this validator committed"
    )]
    BehindCommitted {
        /// The snapshot's ledger head index.
        snapshot: u64,
        /// This validator's committed ledger head index.
        committed: u64,
    },
    /// The snapshot's ledger forks from this validator's committed one.
    #[error(
        "snapshot ledger forks below this validator's commit: entry {index} hashes to {sent}, this validator committed {committed}"
    )]
    ForksCommitted {
        /// The ledger index compared (this validator's head).
        index: u64,
        /// This validator's entry hash there.
        committed: Digest,
        /// The snapshot's.
        sent: Digest,
    },
    /// The snapshot content disagrees with the metadata it was sent with.
    #[error("snapshot {field} is {found}, but its meta says {expected}")]
    MetaMismatch {
        /// Which field.
        field: &'static str,
        /// Value in the meta.
        expected: String,
        /// Value in the content.
        found: String,
    },
}

impl From<ReadError> for SnapshotError {
    fn from(e: ReadError) -> Self {
        SnapshotError::Malformed(DecodeError::from(e))
    }
}

impl SnapshotContents {
    /// Encodes the snapshot (see the module docs).
    ///
    /// # Panics
    /// If a field exceeds `u32::MAX` bytes; callers bound sizes far below.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new(SNAPSHOT_TAG, SNAPSHOT_VERSION);
        e.digest(&self.genesis);
        e.bytes(&to_json(&self.last_applied));
        e.bytes(&to_json(&self.last_membership));
        e.u64(self.head.index).digest(&self.head.hash);
        e.count(self.ledger.len());
        for entry in &self.ledger {
            e.bytes(&entry.encode());
        }
        e.count(RESERVED_CFS.len());
        for (name, pairs) in RESERVED_CFS.iter().zip(&self.reserved) {
            e.str(name).count(pairs.len());
            for (k, v) in pairs {
                e.bytes(k).bytes(v);
            }
        }
        let checksum = e.digest_of();
        let mut bytes = e.finish();
        bytes.extend_from_slice(&checksum.0);
        bytes
    }

    /// Strictly decodes snapshot bytes (at most `bytes_max` of them). Checks
    /// the format and checksum only; [`SnapshotContents::verify`] checks the
    /// ledger.
    pub fn decode(bytes: &[u8], bytes_max: usize) -> Result<Self, SnapshotError> {
        if bytes.len() > bytes_max {
            return Err(SnapshotError::TooLarge {
                bytes: bytes.len() as u64,
                max: bytes_max as u64,
            });
        }
        let Some(split) = bytes.len().checked_sub(Digest::LEN) else {
            return Err(DecodeError {
                offset: 0,
                reason: "shorter than the checksum".into(),
            }
            .into());
        };
        let (content, trailer) = bytes.split_at(split);
        let mut found = [0u8; 32];
        found.copy_from_slice(trailer);
        let expected = sha3(content);
        if expected.0 != found {
            return Err(SnapshotError::Checksum {
                expected,
                found: Digest(found),
            });
        }

        let mut r = Reader::new(content);
        r.tag(SNAPSHOT_TAG, SNAPSHOT_VERSION)?;
        let genesis = r.digest("genesis")?;
        let last_applied = json_field(&mut r, "last applied log id")?;
        let last_membership = json_field(&mut r, "last membership")?;
        let head = LedgerHead {
            index: r.u64("head index")?,
            hash: r.digest("head hash")?,
        };
        let n = r.count("entries", usize::MAX)?;
        let mut ledger = Vec::new();
        for _ in 0..n {
            let at = r.position();
            let raw = r.bytes_max("entry", bytes_max)?;
            let entry = LedgerEntry::decode(raw).map_err(|e| DecodeError {
                offset: at + 4 + e.offset,
                reason: format!("ledger entry {}: {}", ledger.len() + 1, e.reason),
            })?;
            ledger.push(entry);
        }
        let sections = r.count("sections", RESERVED_CFS.len())?;
        if sections != RESERVED_CFS.len() {
            return Err(DecodeError {
                offset: r.position(),
                reason: format!("{sections} reserved sections, want {}", RESERVED_CFS.len()),
            }
            .into());
        }
        let mut reserved: [CfPairs; 3] = Default::default();
        for (name, pairs) in RESERVED_CFS.iter().zip(reserved.iter_mut()) {
            let at = r.position();
            let got = r.bytes_max("section name", 64)?;
            if got != name.as_bytes() {
                return Err(DecodeError {
                    offset: at,
                    reason: format!("section {:?}, want {name:?}", String::from_utf8_lossy(got)),
                }
                .into());
            }
            let m = r.count("pairs", usize::MAX)?;
            for _ in 0..m {
                let k = r.bytes_max("key", RESERVED_KEY_BYTES_MAX)?.to_vec();
                let v = r.bytes_max("value", RESERVED_VALUE_BYTES_MAX)?.to_vec();
                if pairs.last().is_some_and(|(prev, _)| *prev >= k) {
                    return Err(DecodeError {
                        offset: r.position(),
                        reason: format!("section {name:?}: keys not strictly ascending"),
                    }
                    .into());
                }
                pairs.push((k, v));
            }
        }
        r.finish()?;
        Ok(SnapshotContents {
            genesis,
            last_applied,
            last_membership,
            head,
            ledger,
            reserved,
        })
    }

    /// Verifies the snapshot against this store's genesis: the ledger chain
    /// from entry 1 and the recorded head. Returns the head.
    pub fn verify(&self, genesis: Digest) -> Result<LedgerHead, SnapshotError> {
        if self.genesis != genesis {
            return Err(SnapshotError::WrongGenesis {
                expected: genesis,
                found: self.genesis,
            });
        }
        let mut v = crate::ledger::ChainVerifier::new(genesis);
        for entry in &self.ledger {
            v.push(entry)?;
        }
        Ok(v.check_head(&self.head)?)
    }
}

fn json_field<T: serde::de::DeserializeOwned>(
    r: &mut Reader<'_>,
    what: &str,
) -> Result<T, DecodeError> {
    let at = r.position();
    let raw = r.bytes_max("meta", SNAPSHOT_META_JSON_BYTES_MAX)?;
    serde_json::from_slice(raw).map_err(|e| DecodeError {
        offset: at,
        reason: format!("{what}: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::EntryKind;

    fn contents() -> SnapshotContents {
        let genesis = sha3(b"g");
        let mut head = LedgerHead::genesis(genesis);
        let mut ledger = Vec::new();
        for i in 0..3u8 {
            let e = LedgerEntry::next(&head, EntryKind::Record, vec![i]);
            head = e.head();
            ledger.push(e);
        }
        SnapshotContents {
            genesis,
            last_applied: None,
            last_membership: StoredMembership::default(),
            head,
            ledger,
            reserved: [
                vec![(b"active".to_vec(), b"policy".to_vec())],
                vec![(vec![1], 3u64.to_be_bytes().to_vec())],
                vec![],
            ],
        }
    }

    #[test]
    fn round_trips_and_verifies() {
        let c = contents();
        let bytes = c.encode();
        let back = SnapshotContents::decode(&bytes, SNAPSHOT_BYTES_MAX_DEFAULT).expect("decodes");
        assert_eq!(back, c);
        assert_eq!(back.verify(c.genesis), Ok(c.head));
    }

    #[test]
    fn refuses_oversized_corrupted_and_trailing_bytes() {
        let bytes = contents().encode();
        let err = SnapshotContents::decode(&bytes, 10).expect_err("too large");
        assert!(
            matches!(err, SnapshotError::TooLarge { max: 10, .. }),
            "{err}"
        );

        let mut flipped = bytes.clone();
        flipped[30] ^= 1;
        let err = SnapshotContents::decode(&flipped, usize::MAX).expect_err("checksum");
        assert!(matches!(err, SnapshotError::Checksum { .. }), "{err}");

        // Trailing byte with a recomputed checksum still fails strict decode.
        let mut content = bytes[..bytes.len() - 32].to_vec();
        content.push(0);
        let sum = sha3(&content);
        content.extend_from_slice(&sum.0);
        let err = SnapshotContents::decode(&content, usize::MAX).expect_err("trailing");
        assert!(err.to_string().contains("1 trailing bytes"), "{err}");
    }

    #[test]
    fn verify_names_the_broken_index_and_wrong_genesis() {
        let mut c = contents();
        c.ledger[1].payload = vec![9];
        let err = c.verify(c.genesis).expect_err("broken chain");
        assert!(
            matches!(
                err,
                SnapshotError::Chain(ChainError::HashMismatch { index: 2, .. })
            ),
            "{err}"
        );

        let c = contents();
        let err = c.verify(sha3(b"other")).expect_err("wrong genesis");
        assert!(matches!(err, SnapshotError::WrongGenesis { .. }), "{err}");

        let mut c = contents();
        c.head.index = 2;
        let err = c.verify(c.genesis).expect_err("head mismatch");
        assert!(
            matches!(
                err,
                SnapshotError::Chain(ChainError::HeadMismatch { index: 3, .. })
            ),
            "{err}"
        );
    }
}
