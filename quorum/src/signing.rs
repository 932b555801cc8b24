//! FROST (Ed25519) threshold signing in one round: nonce pools, the
//! coordinator's commitment book, the signer's refusals, aggregation that
//! names culprits, and the wire encoding of everything that crosses the
//! network.
//!
//! # One round per signature
//!
//! FROST has two rounds: each signer commits to a pair of fresh nonces, then
//! signs a package made of everyone's commitments and the message. The first
//! round does not depend on the message, so each signer runs it ahead of time
//! in batches ([`NoncePool::replenish`]) and publishes the commitments
//! ([`PublishedCommitment`]). The coordinator files them in a
//! [`CommitmentBook`]; when a decision is committed it takes one unused
//! commitment per chosen signer ([`CommitmentBook::take_for`]), sends each
//! signer a [`SignRequest`], and gets a [`SignedShare`] back: one network
//! round trip per signature. [`aggregate`] sums the shares into a standard
//! 64-byte Ed25519 signature, or names the signers whose shares are invalid.
//!
//! # No FROST nonce is ever used twice, across restarts
//!
//! Signing two different packages with one nonce pair reveals the signer's
//! key share, so this is the property everything here is built around:
//!
//! * Secret nonces ([`SigningNonces`]) live only in a [`NoncePool`] in memory.
//!   They are never serialized, never written to disk, and zeroize when
//!   dropped (frost's `ZeroizeOnDrop`).
//! * Every commitment has an id `(generation, seq)`. `seq` counts up from 0
//!   and is never reissued within a pool. `generation` is a random 64-bit
//!   value the process draws at start and hands to [`NoncePool::new`].
//! * [`NoncePool::take`] *removes* the nonce before it is used. A second take
//!   of the same id finds nothing and is refused ([`SigningError::AlreadyUsed`]).
//!   [`Signer::sign`] takes the nonce before any check that can fail after
//!   it, so a refused or failed signing never puts a nonce back.
//! * After a restart the pool is empty and has a new generation. Every
//!   commitment of the old process carries the old generation and is refused
//!   ([`SigningError::StaleGeneration`]); the secrets it referred to died with
//!   the old process. Nothing on disk could resurrect them, because nothing
//!   was ever on disk. Two processes drawing the same random generation has
//!   probability 2^-64 per restart pair, and even then the new pool only
//!   answers for nonces it generated itself.
//!
//! # Abandoned commitments and capacity
//!
//! Both sides are bounded: a pool holds at most `nonces_max` unused nonces
//! ([`POOL_NONCES_MAX`] by default) and a book at most `per_signer_max`
//! commitments per signer. A plan that is abandoned (a signer timed out, the
//! coordinator retried with another set) leaves the nonces of the signers
//! that never answered in their pools. They are never reused by anyone: the
//! book handed them out once and forgot them. They only take room until the
//! signer drops them ([`NoncePool::retire_through`]) or restarts. A full pool
//! issues no new commitments (fail closed: signing stops, nothing is reused).
//!
//! # What aggregation proves
//!
//! [`aggregate`] returns a signature only if it verifies under the group key
//! with strict Ed25519 rules. Individual shares are checked (and every
//! invalid one named) only when the sum fails; a set of shares whose sum is
//! valid is accepted as is.
//!
//! # Wire format (version 1)
//!
//! Encoding primitives as in `docs/PROTOCOL.md` §1 (big-endian integers,
//! `u32` length prefixes, a `senatus/<object>/v1\0` tag). Every decoder
//! rejects a wrong tag, a short read, trailing bytes, out-of-range node ids,
//! non-canonical or invalid points and scalars, and anything over its size
//! bound, naming the field.
//!
//! ```text
//! commitment  = "senatus/frost-commitment/v1" 0x00
//!               u64 signer  u64 generation  u64 seq
//!               fixed32 hiding  fixed32 binding          (116 bytes)
//! sign_request = "senatus/frost-sign-request/v1" 0x00
//!               bytes message                            (<= SIGN_MESSAGE_BYTES_MAX)
//!               u32 count                                (1..=REQUEST_SIGNERS_MAX)
//!               count x (u64 signer  u64 generation  u64 seq
//!                        fixed32 hiding  fixed32 binding)  signers strictly ascending
//! share       = "senatus/frost-share/v1" 0x00
//!               u64 signer  u64 generation  u64 seq
//!               fixed32 share                            (79 bytes)
//! ```
//!
//! `hiding`/`binding` are the compressed Edwards points of the nonce
//! commitments (prime order, not the identity); `share` is the canonical
//! little-endian scalar `z_i`. The signer and commitment id inside a share let
//! the coordinator check a reply against its plan; the coordinator still
//! attributes a share to the authenticated peer it came from, never to the
//! id written inside it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use frost_ed25519::SigningPackage;
use frost_ed25519::keys::{KeyPackage, PublicKeyPackage};
use frost_ed25519::round1::{NonceCommitment, SigningCommitments, SigningNonces};
use frost_ed25519::round2::SignatureShare;
use rand::{CryptoRng, RngCore};
use senatus_genesis::codec::{Bound, DecodeError, Decoder};
use senatus_genesis::{Digest, Encoder, NodeId, sha3};

/// Default capacity of a signer's nonce pool (unused nonces held at once).
pub const POOL_NONCES_MAX: usize = 1024;
/// Default number of unused commitments the coordinator holds per signer.
pub const BOOK_COMMITMENTS_PER_SIGNER_MAX: usize = 1024;
/// Largest message one signing request may carry. Token batches sign a
/// 32-byte Merkle root; a seal over 255 validators is well under this.
pub const SIGN_MESSAGE_BYTES_MAX: usize = 64 * 1024;
/// Most signers in one request (genesis allows at most 255 validators).
pub const REQUEST_SIGNERS_MAX: usize = 255;

/// Object name of an encoded [`PublishedCommitment`].
pub const COMMITMENT_OBJECT: &str = "frost-commitment";
/// Object name of an encoded [`SignRequest`].
pub const SIGN_REQUEST_OBJECT: &str = "frost-sign-request";
/// Object name of an encoded [`SignedShare`].
pub const SHARE_OBJECT: &str = "frost-share";
/// Version of all three encodings.
pub const WIRE_VERSION: u8 = 1;

const ENTRY_BYTES: usize = 8 + 8 + 8 + 32 + 32;
/// Encoded size of a [`PublishedCommitment`].
pub const COMMITMENT_BYTES: usize = COMMITMENT_OBJECT.len() + 12 + ENTRY_BYTES;
/// Encoded size of a [`SignedShare`].
pub const SHARE_BYTES: usize = SHARE_OBJECT.len() + 12 + 8 + 8 + 8 + 32;
/// Largest encoded [`SignRequest`].
pub const SIGN_REQUEST_BYTES_MAX: usize = SIGN_REQUEST_OBJECT.len()
    + 12
    + 4
    + SIGN_MESSAGE_BYTES_MAX
    + 4
    + REQUEST_SIGNERS_MAX * ENTRY_BYTES;

// ---------------------------------------------------------------------------
// Ids and published commitments
// ---------------------------------------------------------------------------

/// Names one nonce pair a signer generated: the process generation that made
/// it and its sequence number within that process.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct CommitmentId {
    /// Random per-process value; changes on every restart.
    pub generation: u64,
    /// Position in the pool's issue order, from 0.
    pub seq: u64,
}

impl fmt::Display for CommitmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}/{}", self.generation, self.seq)
    }
}

/// A signer's round-1 commitment, published ahead of any message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PublishedCommitment {
    /// Who committed.
    pub signer: NodeId,
    /// Which of its nonce pairs this is.
    pub id: CommitmentId,
    /// The FROST commitments (public).
    pub commitments: SigningCommitments,
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a signer refused to produce a share.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    /// The commitment belongs to an earlier process of this signer (before a
    /// restart); its secret nonces no longer exist.
    #[error(
        "commitment {id} for signer {signer} is from generation {:016x}, but the signer now runs generation {current:016x} (issued before a restart)",
        id.generation
    )]
    StaleGeneration {
        /// This signer.
        signer: NodeId,
        /// The id asked for.
        id: CommitmentId,
        /// The pool's generation.
        current: u64,
    },
    /// The nonce was issued and has already been consumed (by a signing, a
    /// refused signing, or [`NoncePool::retire_through`]).
    #[error("commitment {id} of signer {signer} was already used")]
    AlreadyUsed {
        /// This signer.
        signer: NodeId,
        /// The id asked for.
        id: CommitmentId,
    },
    /// The current generation never issued this sequence number.
    #[error("commitment {id} was never issued by signer {signer} (next seq is {next_seq})")]
    NeverIssued {
        /// This signer.
        signer: NodeId,
        /// The id asked for.
        id: CommitmentId,
        /// The next sequence number the pool will issue.
        next_seq: u64,
    },
    /// The request asks to sign something other than what this signer
    /// computed from its own evaluation of the ledger entry.
    #[error(
        "refusing to sign: requested message has SHA3-256 {requested}, this signer's own evaluation gives {expected}"
    )]
    MessageMismatch {
        /// SHA3-256 of the message in the request.
        requested: Digest,
        /// SHA3-256 of the message this signer expected.
        expected: Digest,
    },
    /// Fewer commitments than the threshold.
    #[error("request carries {got} commitments, the threshold is {need}")]
    TooFewSigners {
        /// Commitments in the request.
        got: usize,
        /// The threshold.
        need: usize,
    },
    /// More commitments than [`REQUEST_SIGNERS_MAX`].
    #[error("request carries {got} commitments, at most {REQUEST_SIGNERS_MAX} are accepted")]
    TooManySigners {
        /// Commitments in the request.
        got: usize,
    },
    /// The message is over [`SIGN_MESSAGE_BYTES_MAX`].
    #[error("message is {bytes} bytes, over the {SIGN_MESSAGE_BYTES_MAX}-byte limit")]
    MessageTooLarge {
        /// Its size.
        bytes: usize,
    },
    /// One signer appears twice.
    #[error("signer {signer} appears more than once in the request")]
    DuplicateSigner {
        /// The repeated signer.
        signer: NodeId,
    },
    /// The request has no entry for this signer.
    #[error("request has no commitment for signer {signer}")]
    MissingOwnCommitment {
        /// This signer.
        signer: NodeId,
    },
    /// The request's commitments for this signer's id are not the ones the
    /// pool issued under that id.
    #[error("request's commitments under {id} differ from those signer {signer} issued")]
    CommitmentMismatch {
        /// This signer.
        signer: NodeId,
        /// The id.
        id: CommitmentId,
    },
    /// The key package belongs to a different participant than the pool.
    #[error("key package is not node {node}'s (pool and key must name the same FROST identifier)")]
    KeyMismatch {
        /// The pool's node.
        node: NodeId,
    },
    /// FROST itself refused (should not happen after the checks above).
    #[error("FROST refused to sign: {0}")]
    Frost(String),
}

/// Why the coordinator's book refused a commitment or a plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    /// The signer already has the per-signer maximum of unused commitments.
    #[error("commitment book holds {max} unused commitments for signer {signer}, its limit")]
    Full {
        /// The signer.
        signer: NodeId,
        /// The limit.
        max: usize,
    },
    /// The same id was published twice with different commitments.
    #[error("signer {signer} published two different commitments under {id}")]
    Conflicting {
        /// The signer.
        signer: NodeId,
        /// The id.
        id: CommitmentId,
    },
    /// The requested signer set is empty.
    #[error("no signers requested")]
    NoSigners,
    /// A signer was listed twice.
    #[error("signer {signer} listed twice")]
    DuplicateSigner {
        /// The signer.
        signer: NodeId,
    },
    /// Some signers have no unused commitment; nothing was taken.
    #[error("no unused commitment for signers {signers:?}")]
    NoCommitment {
        /// Every listed signer without one, ascending.
        signers: Vec<NodeId>,
    },
}

/// Why shares did not aggregate to a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggregateError {
    /// These signers' shares fail verification against their verifying
    /// shares: they misbehaved (or their share was corrupted in transit).
    #[error("invalid signature shares from {culprits:?}")]
    InvalidShares {
        /// Every signer whose share is invalid, ascending.
        culprits: Vec<NodeId>,
    },
    /// Shares and package name different signer sets.
    #[error(
        "shares do not match the signing package: missing from {missing:?}, unexpected from {unexpected:?}"
    )]
    SignerSetMismatch {
        /// In the package, no share.
        missing: Vec<NodeId>,
        /// A share, not in the package.
        unexpected: Vec<NodeId>,
    },
    /// Fewer shares than the threshold.
    #[error("{got} shares, the threshold is {need}")]
    TooFewShares {
        /// Shares given.
        got: usize,
        /// The threshold.
        need: usize,
    },
    /// The public key package does not state a threshold.
    #[error("public key package carries no threshold")]
    NoThreshold,
    /// A signer has no verifying share in the public key package.
    #[error("signer {signer} has no verifying share")]
    UnknownSigner {
        /// The signer.
        signer: NodeId,
    },
    /// The aggregate does not verify under strict Ed25519 rules (a broken
    /// invariant: FROST verified it; reported rather than handed out).
    #[error("aggregated signature fails strict Ed25519 verification: {0}")]
    NotStrictlyValid(String),
    /// Any other FROST failure.
    #[error("FROST aggregation failed: {0}")]
    Frost(String),
}

/// Why bytes from the wire were refused. `object` is the encoding's object
/// name, `field` the field being read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Larger than the object's bound.
    #[error("{object}: {bytes} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Object name.
        object: &'static str,
        /// Size given.
        bytes: usize,
        /// The bound.
        max: usize,
    },
    /// Wrong domain tag or version.
    #[error("{object}: wrong tag or version (want \"senatus/{object}/v{WIRE_VERSION}\\0\")")]
    Tag {
        /// Object name.
        object: &'static str,
    },
    /// Ends inside a field.
    #[error("{object}: truncated in field `{field}`")]
    Truncated {
        /// Object name.
        object: &'static str,
        /// The field.
        field: &'static str,
    },
    /// Bytes after the last field.
    #[error("{object}: {count} trailing bytes")]
    Trailing {
        /// Object name.
        object: &'static str,
        /// How many.
        count: usize,
    },
    /// A field decodes but its value is not allowed.
    #[error("{object}: field `{field}` is invalid: {reason}")]
    Invalid {
        /// Object name.
        object: &'static str,
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

// ---------------------------------------------------------------------------
// Signer side: the nonce pool
// ---------------------------------------------------------------------------

/// A signer's preprocessed FROST round-1 nonces, in memory only.
///
/// Holds at most `nonces_max` unused nonces. Ids are issued with strictly
/// increasing `seq` under one `generation`; see the module docs for why that
/// makes nonce reuse impossible, including across restarts.
pub struct NoncePool {
    node: NodeId,
    generation: u64,
    next_seq: u64,
    nonces_max: usize,
    unused: BTreeMap<u64, SigningNonces>,
}

impl fmt::Debug for NoncePool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NoncePool(node={}, generation={:016x}, unused={}, next_seq={}, nonces=<redacted>)",
            self.node,
            self.generation,
            self.unused.len(),
            self.next_seq
        )
    }
}

impl NoncePool {
    /// An empty pool of capacity [`POOL_NONCES_MAX`]. `generation` must be
    /// drawn at random each time the process starts.
    pub fn new(node: NodeId, generation: u64) -> Self {
        Self::with_capacity(node, generation, POOL_NONCES_MAX)
    }

    /// An empty pool holding at most `nonces_max` unused nonces.
    ///
    /// # Panics
    /// If `nonces_max` is zero (a pool that can never sign is a
    /// configuration bug, not a runtime condition).
    pub fn with_capacity(node: NodeId, generation: u64, nonces_max: usize) -> Self {
        assert!(nonces_max > 0, "nonce pool capacity must be at least 1");
        NoncePool {
            node,
            generation,
            next_seq: 0,
            nonces_max,
            unused: BTreeMap::new(),
        }
    }

    /// The node this pool signs for.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// This process's generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Unused nonces held.
    pub fn len(&self) -> usize {
        self.unused.len()
    }

    /// True when no unused nonce is held.
    pub fn is_empty(&self) -> bool {
        self.unused.is_empty()
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.nonces_max
    }

    /// How many more nonces fit.
    pub fn room(&self) -> usize {
        self.nonces_max - self.unused.len()
    }

    /// Generates up to `count` fresh nonce pairs (fewer if the pool would
    /// exceed its capacity; none when full) and returns their commitments in
    /// issue order, ready to publish.
    ///
    /// # Panics
    /// If `key` is not this pool's node's key package (a wiring bug).
    pub fn replenish<R: RngCore + CryptoRng>(
        &mut self,
        key: &KeyPackage,
        count: usize,
        rng: &mut R,
    ) -> Vec<PublishedCommitment> {
        assert_eq!(
            *key.identifier(),
            self.node.frost_identifier(),
            "nonce pool of node {} replenished with another node's key package",
            self.node
        );
        let count = count.min(self.room());
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let (nonces, commitments) = frost_ed25519::round1::commit(key.signing_share(), rng);
            let seq = self.next_seq;
            self.next_seq = seq
                .checked_add(1)
                .expect("2^64 nonces issued by one process");
            let previous = self.unused.insert(seq, nonces);
            assert!(previous.is_none(), "sequence number {seq} issued twice");
            out.push(PublishedCommitment {
                signer: self.node,
                id: CommitmentId {
                    generation: self.generation,
                    seq,
                },
                commitments,
            });
        }
        debug_assert!(self.unused.len() <= self.nonces_max);
        out
    }

    /// Removes and returns the nonces for `id`. After this call the id is
    /// refused forever by this pool.
    pub fn take(&mut self, id: CommitmentId) -> Result<SigningNonces, SigningError> {
        if id.generation != self.generation {
            return Err(SigningError::StaleGeneration {
                signer: self.node,
                id,
                current: self.generation,
            });
        }
        if id.seq >= self.next_seq {
            return Err(SigningError::NeverIssued {
                signer: self.node,
                id,
                next_seq: self.next_seq,
            });
        }
        self.unused
            .remove(&id.seq)
            .ok_or(SigningError::AlreadyUsed {
                signer: self.node,
                id,
            })
    }

    /// Drops every unused nonce with `seq <= through` (for commitments the
    /// coordinator reports it abandoned) and returns how many were dropped.
    pub fn retire_through(&mut self, through: u64) -> usize {
        let keep = match through.checked_add(1) {
            Some(first_kept) => self.unused.split_off(&first_kept),
            None => BTreeMap::new(),
        };
        let dropped = std::mem::replace(&mut self.unused, keep);
        dropped.len()
    }
}

// ---------------------------------------------------------------------------
// Signer side: refusing and signing
// ---------------------------------------------------------------------------

/// What the coordinator sends each chosen signer: the message and one
/// commitment per signer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignRequest {
    /// The bytes to sign (the node derives them from the ledger entry).
    pub message: Vec<u8>,
    /// One entry per signer, ascending by signer.
    pub commitments: Vec<PublishedCommitment>,
}

impl SignRequest {
    /// The FROST signing package of this request (signer ids as FROST
    /// identifiers). A duplicate signer keeps its last entry; [`Signer::sign`]
    /// refuses duplicates before building a package.
    pub fn package(&self) -> SigningPackage {
        let map = self
            .commitments
            .iter()
            .map(|c| (c.signer.frost_identifier(), c.commitments))
            .collect();
        SigningPackage::new(map, &self.message)
    }
}

/// A signer's reply: its share, labelled with the commitment it used.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SignedShare {
    /// Who signed (the coordinator checks this against the peer).
    pub signer: NodeId,
    /// The commitment whose nonces were consumed.
    pub id: CommitmentId,
    /// The FROST signature share.
    pub share: SignatureShare,
}

/// One validator's signing state: its key package and its nonce pool.
pub struct Signer {
    key_package: KeyPackage,
    pool: NoncePool,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer(key=<redacted>, pool={:?})", self.pool)
    }
}

impl Signer {
    /// A signer for `pool.node()`; refuses a key package of another node.
    pub fn new(key_package: KeyPackage, pool: NoncePool) -> Result<Self, SigningError> {
        if *key_package.identifier() != pool.node().frost_identifier() {
            return Err(SigningError::KeyMismatch { node: pool.node() });
        }
        Ok(Signer { key_package, pool })
    }

    /// This signer's node id.
    pub fn node(&self) -> NodeId {
        self.pool.node()
    }

    /// The nonce pool (read-only).
    pub fn pool(&self) -> &NoncePool {
        &self.pool
    }

    /// Generates up to `count` nonce pairs and returns the commitments to
    /// publish (see [`NoncePool::replenish`]).
    pub fn replenish<R: RngCore + CryptoRng>(
        &mut self,
        count: usize,
        rng: &mut R,
    ) -> Vec<PublishedCommitment> {
        self.pool.replenish(&self.key_package, count, rng)
    }

    /// Drops abandoned nonces (see [`NoncePool::retire_through`]).
    pub fn retire_through(&mut self, through: u64) -> usize {
        self.pool.retire_through(through)
    }

    /// Signs `req` if and only if its message is `expected_message`, which
    /// the caller computed from its own evaluation of the committed ledger
    /// entry.
    ///
    /// Structural refusals (too few or too many signers, a duplicate, no
    /// entry for this signer, an oversized message) consume nothing. Once the
    /// request names one of this signer's commitments, that nonce is removed
    /// from the pool *first*; every later refusal (commitment mismatch,
    /// message mismatch) or failure leaves it consumed.
    pub fn sign(
        &mut self,
        req: &SignRequest,
        expected_message: &[u8],
    ) -> Result<SignedShare, SigningError> {
        let me = self.node();
        let need = usize::from(*self.key_package.min_signers());
        let got = req.commitments.len();
        if got < need {
            return Err(SigningError::TooFewSigners { got, need });
        }
        if got > REQUEST_SIGNERS_MAX {
            return Err(SigningError::TooManySigners { got });
        }
        if req.message.len() > SIGN_MESSAGE_BYTES_MAX {
            return Err(SigningError::MessageTooLarge {
                bytes: req.message.len(),
            });
        }
        let mut seen = BTreeSet::new();
        for c in &req.commitments {
            if !seen.insert(c.signer) {
                return Err(SigningError::DuplicateSigner { signer: c.signer });
            }
        }
        let own = req
            .commitments
            .iter()
            .find(|c| c.signer == me)
            .ok_or(SigningError::MissingOwnCommitment { signer: me })?;

        // From here on the nonce is gone from the pool whatever happens.
        let nonces = self.pool.take(own.id)?;

        if *nonces.commitments() != own.commitments {
            return Err(SigningError::CommitmentMismatch {
                signer: me,
                id: own.id,
            });
        }
        if req.message != expected_message {
            return Err(SigningError::MessageMismatch {
                requested: sha3(&req.message),
                expected: sha3(expected_message),
            });
        }
        let share = frost_ed25519::round2::sign(&req.package(), &nonces, &self.key_package)
            .map_err(|e| SigningError::Frost(e.to_string()))?;
        // `nonces` drops here and zeroizes.
        Ok(SignedShare {
            signer: me,
            id: own.id,
            share,
        })
    }
}

// ---------------------------------------------------------------------------
// Coordinator side: the commitment book and plans
// ---------------------------------------------------------------------------

#[derive(Debug, Default)]
struct SignerCommitments {
    generation: u64,
    unused: BTreeMap<u64, SigningCommitments>,
}

/// The coordinator's store of signers' published, not yet used commitments.
///
/// One generation per signer: a commitment from a new generation means the
/// signer restarted, so every commitment of its previous generation is
/// dropped (the signer would refuse them).
#[derive(Debug)]
pub struct CommitmentBook {
    per_signer_max: usize,
    signers: BTreeMap<NodeId, SignerCommitments>,
}

impl Default for CommitmentBook {
    fn default() -> Self {
        Self::new(BOOK_COMMITMENTS_PER_SIGNER_MAX)
    }
}

impl CommitmentBook {
    /// An empty book holding at most `per_signer_max` commitments per signer.
    ///
    /// # Panics
    /// If `per_signer_max` is zero.
    pub fn new(per_signer_max: usize) -> Self {
        assert!(
            per_signer_max > 0,
            "commitment book limit must be at least 1"
        );
        CommitmentBook {
            per_signer_max,
            signers: BTreeMap::new(),
        }
    }

    /// Files `c`. Returns how many commitments of an older generation of the
    /// same signer were dropped (0 normally). Re-filing an identical
    /// commitment is a no-op.
    pub fn insert(&mut self, c: PublishedCommitment) -> Result<usize, BookError> {
        let entry = self.signers.entry(c.signer).or_default();
        let mut dropped = 0;
        if entry.generation != c.id.generation {
            dropped = entry.unused.len();
            entry.unused.clear();
            entry.generation = c.id.generation;
        }
        if let Some(existing) = entry.unused.get(&c.id.seq) {
            return if *existing == c.commitments {
                Ok(dropped)
            } else {
                Err(BookError::Conflicting {
                    signer: c.signer,
                    id: c.id,
                })
            };
        }
        if entry.unused.len() >= self.per_signer_max {
            return Err(BookError::Full {
                signer: c.signer,
                max: self.per_signer_max,
            });
        }
        entry.unused.insert(c.id.seq, c.commitments);
        Ok(dropped)
    }

    /// Unused commitments held for `signer`.
    pub fn available(&self, signer: NodeId) -> usize {
        self.signers.get(&signer).map_or(0, |s| s.unused.len())
    }

    /// Signers with at least one unused commitment, ascending.
    pub fn ready_signers(&self) -> Vec<NodeId> {
        self.signers
            .iter()
            .filter(|(_, s)| !s.unused.is_empty())
            .map(|(n, _)| *n)
            .collect()
    }

    /// Takes the oldest unused commitment of each of `signers`, removing
    /// them. All or nothing: if any signer has none, nothing is taken.
    pub fn take_for(&mut self, signers: &[NodeId]) -> Result<SigningPlan, BookError> {
        if signers.is_empty() {
            return Err(BookError::NoSigners);
        }
        let mut set = BTreeSet::new();
        for &s in signers {
            if !set.insert(s) {
                return Err(BookError::DuplicateSigner { signer: s });
            }
        }
        let missing: Vec<NodeId> = set
            .iter()
            .copied()
            .filter(|s| self.available(*s) == 0)
            .collect();
        if !missing.is_empty() {
            return Err(BookError::NoCommitment { signers: missing });
        }
        let mut commitments = BTreeMap::new();
        for s in set {
            let entry = self.signers.get_mut(&s).expect("checked above");
            let (seq, c) = entry.unused.pop_first().expect("checked above");
            let id = CommitmentId {
                generation: entry.generation,
                seq,
            };
            commitments.insert(s, (id, c));
        }
        Ok(SigningPlan { commitments })
    }

    /// Drops everything held for `signer` (it restarted, or is excluded);
    /// returns how many commitments were dropped.
    pub fn forget_signer(&mut self, signer: NodeId) -> usize {
        self.signers.remove(&signer).map_or(0, |s| s.unused.len())
    }

    /// Drops `signer`'s commitments if they are of `generation` (e.g. after
    /// the signer answered [`SigningError::StaleGeneration`]); returns how
    /// many were dropped.
    pub fn forget_generation(&mut self, signer: NodeId, generation: u64) -> usize {
        match self.signers.get(&signer) {
            Some(s) if s.generation == generation => self.forget_signer(signer),
            _ => 0,
        }
    }
}

/// One commitment per chosen signer, taken out of the book for one signing.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SigningPlan {
    commitments: BTreeMap<NodeId, (CommitmentId, SigningCommitments)>,
}

impl SigningPlan {
    /// The signers, ascending.
    pub fn signers(&self) -> Vec<NodeId> {
        self.commitments.keys().copied().collect()
    }

    /// The commitment id planned for `signer`.
    pub fn commitment_id(&self, signer: NodeId) -> Option<CommitmentId> {
        self.commitments.get(&signer).map(|(id, _)| *id)
    }

    /// The request to send to every signer in the plan.
    pub fn request(&self, message: &[u8]) -> SignRequest {
        SignRequest {
            message: message.to_vec(),
            commitments: self
                .commitments
                .iter()
                .map(|(&signer, &(id, commitments))| PublishedCommitment {
                    signer,
                    id,
                    commitments,
                })
                .collect(),
        }
    }

    /// The FROST signing package for `message`.
    pub fn package(&self, message: &[u8]) -> SigningPackage {
        let map = self
            .commitments
            .iter()
            .map(|(s, (_, c))| (s.frost_identifier(), *c))
            .collect();
        SigningPackage::new(map, message)
    }

    /// Checks a reply received from authenticated peer `from` against the
    /// plan: it must be labelled with `from` and with the commitment planned
    /// for `from`. Returns the share to aggregate.
    pub fn accept(&self, from: NodeId, reply: &SignedShare) -> Result<SignatureShare, WireError> {
        let Some((planned, _)) = self.commitments.get(&from) else {
            return Err(WireError::Invalid {
                object: SHARE_OBJECT,
                field: "signer",
                reason: format!("peer {from} is not in this signing plan"),
            });
        };
        if reply.signer != from {
            return Err(WireError::Invalid {
                object: SHARE_OBJECT,
                field: "signer",
                reason: format!(
                    "share says signer {}, received from peer {from}",
                    reply.signer
                ),
            });
        }
        if reply.id != *planned {
            return Err(WireError::Invalid {
                object: SHARE_OBJECT,
                field: "seq",
                reason: format!("share used commitment {}, the plan has {planned}", reply.id),
            });
        }
        Ok(reply.share)
    }
}

/// The next signer set to try: the `size` lowest ids of `available` that are
/// not in `excluded` (duplicates ignored). `None` if fewer than `size`
/// remain. Deterministic, so every node retrying after the same culprits
/// picks the same set.
pub fn next_signer_set(
    available: &[NodeId],
    excluded: &[NodeId],
    size: usize,
) -> Option<Vec<NodeId>> {
    let excluded: BTreeSet<NodeId> = excluded.iter().copied().collect();
    let chosen: Vec<NodeId> = available
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|n| !excluded.contains(n))
        .take(size)
        .collect();
    (chosen.len() == size).then_some(chosen)
}

// ---------------------------------------------------------------------------
// Aggregation
// ---------------------------------------------------------------------------

/// Aggregates `shares` into a 64-byte Ed25519 signature (`R || S`) that
/// verifies with `verify_strict` under the group key.
///
/// Every share is checked when the aggregate fails, and every invalid one is
/// named in [`AggregateError::InvalidShares`]. The keys of `shares` must be
/// the peers the shares were received from, never ids read from the shares.
pub fn aggregate(
    package: &SigningPackage,
    shares: &BTreeMap<NodeId, SignatureShare>,
    pubkeys: &PublicKeyPackage,
) -> Result<[u8; 64], AggregateError> {
    let need = usize::from(pubkeys.min_signers().ok_or(AggregateError::NoThreshold)?);
    if shares.len() < need {
        return Err(AggregateError::TooFewShares {
            got: shares.len(),
            need,
        });
    }
    let planned: BTreeSet<frost_ed25519::Identifier> =
        package.signing_commitments().keys().copied().collect();
    let given: BTreeSet<frost_ed25519::Identifier> =
        shares.keys().map(|n| n.frost_identifier()).collect();
    if planned != given {
        let by_id = |id: &frost_ed25519::Identifier| identifier_to_node(id);
        return Err(AggregateError::SignerSetMismatch {
            missing: planned.difference(&given).filter_map(by_id).collect(),
            unexpected: given.difference(&planned).filter_map(by_id).collect(),
        });
    }
    for n in shares.keys() {
        if !pubkeys
            .verifying_shares()
            .contains_key(&n.frost_identifier())
        {
            return Err(AggregateError::UnknownSigner { signer: *n });
        }
    }
    let frost_shares: BTreeMap<_, _> = shares
        .iter()
        .map(|(n, s)| (n.frost_identifier(), *s))
        .collect();
    let signature = frost_ed25519::aggregate_custom(
        package,
        &frost_shares,
        pubkeys,
        frost_ed25519::CheaterDetection::AllCheaters,
    )
    .map_err(|e| match e {
        frost_ed25519::Error::InvalidSignatureShare { culprits } => {
            let mut culprits: Vec<NodeId> = culprits
                .iter()
                .map(|id| {
                    shares
                        .keys()
                        .copied()
                        .find(|n| n.frost_identifier() == *id)
                        .expect("frost names only identifiers it was given")
                })
                .collect();
            culprits.sort();
            AggregateError::InvalidShares { culprits }
        }
        other => AggregateError::Frost(other.to_string()),
    })?;
    let bytes: [u8; 64] = signature
        .serialize()
        .map_err(|e| AggregateError::Frost(e.to_string()))?
        .try_into()
        .map_err(|v: Vec<u8>| AggregateError::Frost(format!("signature is {} bytes", v.len())))?;
    // Brokers verify strictly; never hand out a signature they would refuse.
    let group_bytes: [u8; 32] = pubkeys
        .verifying_key()
        .serialize()
        .map_err(|e| AggregateError::Frost(e.to_string()))?
        .try_into()
        .map_err(|_| AggregateError::Frost("group key is not 32 bytes".into()))?;
    let group = senatus_genesis::ed25519::verifying_key(&group_bytes)
        .map_err(|e| AggregateError::NotStrictlyValid(e.to_string()))?;
    group
        .verify_strict(
            package.message(),
            &ed25519_dalek::Signature::from_bytes(&bytes),
        )
        .map_err(|e| AggregateError::NotStrictlyValid(e.to_string()))?;
    Ok(bytes)
}

/// Why a seal's key material does not make a FROST public key package.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealKeyError {
    /// The group key is not a valid prime-order point.
    #[error("seal group key is not a valid FROST verifying key")]
    GroupKey,
    /// A member's verifying share is not a valid prime-order point.
    #[error("verifying share of validator {node} is not a valid point")]
    VerifyingShare {
        /// The member.
        node: NodeId,
    },
    /// The threshold is outside `2..=members`.
    #[error("threshold {threshold} is outside 2..={members}")]
    Threshold {
        /// The seal's threshold.
        threshold: u16,
        /// Members in the seal.
        members: usize,
    },
}

/// The FROST public key package of the epoch a seal declares: its group key,
/// its threshold and each member's verifying share. This is what
/// [`aggregate`] checks shares against.
pub fn public_key_package(seal: &senatus_genesis::Seal) -> Result<PublicKeyPackage, SealKeyError> {
    let members = seal.membership.len();
    if seal.threshold < 2 || usize::from(seal.threshold) > members {
        return Err(SealKeyError::Threshold {
            threshold: seal.threshold,
            members,
        });
    }
    let group = frost_ed25519::VerifyingKey::deserialize(&seal.group_key.0)
        .map_err(|_| SealKeyError::GroupKey)?;
    let mut shares = BTreeMap::new();
    for v in &seal.membership {
        let share = frost_ed25519::keys::VerifyingShare::deserialize(&v.verifying_share.0)
            .map_err(|_| SealKeyError::VerifyingShare { node: v.id })?;
        shares.insert(v.id.frost_identifier(), share);
    }
    Ok(PublicKeyPackage::new(shares, group, Some(seal.threshold)))
}

/// The node id whose FROST identifier is `id`, if it is one (ids are the
/// scalars 1..=65535, little-endian).
fn identifier_to_node(id: &frost_ed25519::Identifier) -> Option<NodeId> {
    let bytes = id.serialize();
    if bytes.len() != 32 || bytes[2..].iter().any(|b| *b != 0) {
        return None;
    }
    NodeId::new(u64::from(u16::from_le_bytes([bytes[0], bytes[1]]))).ok()
}

// ---------------------------------------------------------------------------
// Wire encoding
// ---------------------------------------------------------------------------

fn point_bytes(p: &NonceCommitment) -> [u8; 32] {
    p.serialize()
        .expect("a valid nonce commitment serializes")
        .try_into()
        .expect("an Ed25519 point is 32 bytes")
}

fn put_entry(e: &mut Encoder, c: &PublishedCommitment) {
    e.u64(c.signer.get())
        .u64(c.id.generation)
        .u64(c.id.seq)
        .fixed32(&point_bytes(c.commitments.hiding()))
        .fixed32(&point_bytes(c.commitments.binding()));
}

impl PublishedCommitment {
    /// The version-1 encoding (see the module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::new(COMMITMENT_OBJECT, WIRE_VERSION);
        put_entry(&mut e, self);
        let out = e.finish();
        debug_assert_eq!(out.len(), COMMITMENT_BYTES);
        out
    }

    /// Decodes and validates a version-1 encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(COMMITMENT_OBJECT, bytes, COMMITMENT_BYTES)?;
        let c = r.entry()?;
        r.finish()?;
        Ok(c)
    }
}

impl SignRequest {
    /// The version-1 encoding (entries written in ascending signer order).
    ///
    /// # Panics
    /// If the request is over its bounds (the coordinator builds requests
    /// from plans, which are within them).
    pub fn to_bytes(&self) -> Vec<u8> {
        assert!(
            self.message.len() <= SIGN_MESSAGE_BYTES_MAX,
            "sign request message too large"
        );
        assert!(
            self.commitments.len() <= REQUEST_SIGNERS_MAX,
            "too many signers"
        );
        let mut sorted: Vec<&PublishedCommitment> = self.commitments.iter().collect();
        sorted.sort_by_key(|c| c.signer);
        let mut e = Encoder::new(SIGN_REQUEST_OBJECT, WIRE_VERSION);
        e.bytes(&self.message).count(sorted.len());
        for c in sorted {
            put_entry(&mut e, c);
        }
        e.finish()
    }

    /// Decodes and validates a version-1 encoding: at least one entry,
    /// signers strictly ascending (so no duplicates), every bound respected.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(SIGN_REQUEST_OBJECT, bytes, SIGN_REQUEST_BYTES_MAX)?;
        let message = r.bytes("message", SIGN_MESSAGE_BYTES_MAX)?.to_vec();
        let count = r.u32("count")? as usize;
        if count == 0 || count > REQUEST_SIGNERS_MAX {
            return Err(r.invalid(
                "count",
                format!("{count} commitments, want 1..={REQUEST_SIGNERS_MAX}"),
            ));
        }
        let mut commitments: Vec<PublishedCommitment> = Vec::with_capacity(count);
        for _ in 0..count {
            let c = r.entry()?;
            if let Some(prev) = commitments.last()
                && prev.signer >= c.signer
            {
                return Err(r.invalid(
                    "signer",
                    format!(
                        "signer {} after {}: want strictly ascending",
                        c.signer, prev.signer
                    ),
                ));
            }
            commitments.push(c);
        }
        r.finish()?;
        Ok(SignRequest {
            message,
            commitments,
        })
    }
}

impl SignedShare {
    /// The version-1 encoding (see the module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let share: [u8; 32] = self
            .share
            .serialize()
            .try_into()
            .expect("an Ed25519 scalar is 32 bytes");
        let mut e = Encoder::new(SHARE_OBJECT, WIRE_VERSION);
        e.u64(self.signer.get())
            .u64(self.id.generation)
            .u64(self.id.seq)
            .fixed32(&share);
        let out = e.finish();
        debug_assert_eq!(out.len(), SHARE_BYTES);
        out
    }

    /// Decodes and validates a version-1 encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(SHARE_OBJECT, bytes, SHARE_BYTES)?;
        let signer = r.node("signer")?;
        let generation = r.u64("generation")?;
        let seq = r.u64("seq")?;
        let raw = r.fixed32("share")?;
        let share = SignatureShare::deserialize(&raw)
            .map_err(|e| r.invalid("share", format!("not a canonical scalar: {e}")))?;
        if share.serialize() != raw {
            return Err(r.invalid("share", "non-canonical encoding".into()));
        }
        r.finish()?;
        Ok(SignedShare {
            signer,
            id: CommitmentId { generation, seq },
            share,
        })
    }
}

/// The shared strict decoder, with its errors named after the object being
/// read; adds the bounds and value checks of the encodings above.
struct Reader<'a> {
    object: &'static str,
    d: Decoder<'a>,
}

impl<'a> Reader<'a> {
    fn new(object: &'static str, buf: &'a [u8], max: usize) -> Result<Self, WireError> {
        if buf.len() > max {
            return Err(WireError::TooLarge {
                object,
                bytes: buf.len(),
                max,
            });
        }
        let d = Decoder::new(buf, object, WIRE_VERSION).map_err(|e| wire_error(object, e))?;
        Ok(Reader { object, d })
    }

    fn invalid(&self, field: &'static str, reason: String) -> WireError {
        WireError::Invalid {
            object: self.object,
            field,
            reason,
        }
    }

    fn wire<T>(&self, r: Result<T, DecodeError>) -> Result<T, WireError> {
        r.map_err(|e| wire_error(self.object, e))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        let r = self.d.u32(field);
        self.wire(r)
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, WireError> {
        let r = self.d.u64(field);
        self.wire(r)
    }

    fn fixed32(&mut self, field: &'static str) -> Result<[u8; 32], WireError> {
        let r = self.d.fixed32(field);
        self.wire(r)
    }

    /// A length-prefixed byte string; the length is checked against `max`
    /// before the body is read.
    fn bytes(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], WireError> {
        let r = self.d.bytes_max(field, max);
        self.wire(r)
    }

    fn node(&mut self, field: &'static str) -> Result<NodeId, WireError> {
        let raw = self.u64(field)?;
        NodeId::new(raw).map_err(|e| self.invalid(field, e.to_string()))
    }

    fn point(&mut self, field: &'static str) -> Result<NonceCommitment, WireError> {
        let raw = self.fixed32(field)?;
        let p = NonceCommitment::deserialize(&raw)
            .map_err(|e| self.invalid(field, format!("not a valid commitment point: {e}")))?;
        if point_bytes(&p) != raw {
            return Err(self.invalid(field, "non-canonical point encoding".into()));
        }
        Ok(p)
    }

    fn entry(&mut self) -> Result<PublishedCommitment, WireError> {
        let signer = self.node("signer")?;
        let generation = self.u64("generation")?;
        let seq = self.u64("seq")?;
        let hiding = self.point("hiding")?;
        let binding = self.point("binding")?;
        Ok(PublishedCommitment {
            signer,
            id: CommitmentId { generation, seq },
            commitments: SigningCommitments::new(hiding, binding),
        })
    }

    fn finish(self) -> Result<(), WireError> {
        let object = self.object;
        self.d.finish().map_err(|e| wire_error(object, e))
    }
}

/// The wire error for a shared-decoder failure while reading `object`.
fn wire_error(object: &'static str, e: DecodeError) -> WireError {
    match e {
        DecodeError::Tag { .. } => WireError::Tag { object },
        DecodeError::Truncated { field, .. } => WireError::Truncated { object, field },
        DecodeError::Trailing { count } => WireError::Trailing { object, count },
        DecodeError::TooLong(Bound {
            field, value, max, ..
        }) => WireError::Invalid {
            object,
            field,
            reason: format!("{value} bytes, over the {max}-byte limit"),
        },
        // No encoding here reads a bounded count; kept total for safety.
        DecodeError::TooMany(b) => WireError::Invalid {
            object,
            field: b.field,
            reason: DecodeError::TooMany(b).to_string(),
        },
        // No encoding here has a string field; kept total for safety.
        DecodeError::NotUtf8 { field, .. } => WireError::Invalid {
            object,
            field,
            reason: "not UTF-8".to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: u64) -> NodeId {
        NodeId::new(v).expect("node id")
    }

    #[test]
    fn wire_sizes_are_as_documented() {
        assert_eq!(COMMITMENT_BYTES, 116);
        assert_eq!(SHARE_BYTES, 79);
        assert_eq!(
            SIGN_REQUEST_BYTES_MAX,
            30 + 4 + SIGN_MESSAGE_BYTES_MAX + 4 + REQUEST_SIGNERS_MAX * 88
        );
    }

    #[test]
    fn identifiers_map_back_to_node_ids() {
        for v in [1u64, 2, 255, 256, 65_535] {
            assert_eq!(identifier_to_node(&n(v).frost_identifier()), Some(n(v)));
        }
        let big = frost_ed25519::Identifier::derive(b"not a small id").expect("derive");
        assert_eq!(identifier_to_node(&big), None);
    }

    #[test]
    fn next_signer_set_takes_lowest_ids_not_excluded() {
        let all: Vec<NodeId> = [5, 3, 1, 4, 2, 3].into_iter().map(n).collect();
        assert_eq!(next_signer_set(&all, &[], 3), Some(vec![n(1), n(2), n(3)]));
        assert_eq!(
            next_signer_set(&all, &[n(2)], 3),
            Some(vec![n(1), n(3), n(4)])
        );
        assert_eq!(
            next_signer_set(&all, &[n(1), n(2)], 3),
            Some(vec![n(3), n(4), n(5)])
        );
        assert_eq!(next_signer_set(&all, &[n(1), n(2), n(3)], 3), None);
        assert_eq!(next_signer_set(&[], &[], 0), Some(vec![]));
    }

    #[test]
    fn reader_refuses_lengths_past_the_end_without_overflow() {
        let mut buf = b"senatus/frost-sign-request/v1\0".to_vec();
        buf.extend_from_slice(&8u32.to_be_bytes());
        buf.extend_from_slice(b"abc");
        assert_eq!(
            SignRequest::from_bytes(&buf),
            Err(WireError::Truncated {
                object: SIGN_REQUEST_OBJECT,
                field: "message"
            })
        );
        let mut r =
            Reader::new(SHARE_OBJECT, b"senatus/frost-share/v1\0", SHARE_BYTES).expect("tag only");
        assert!(r.d.take(usize::MAX, "x").is_err());
    }

    /// Byte layout of all three encodings, written out by hand (not with
    /// [`Encoder`]) so a change to either side shows up here.
    #[test]
    fn wire_layouts_are_pinned() {
        // The Ed25519 base point and the scalar 1: valid, fixed values.
        let base: [u8; 32] =
            hex::decode("5866666666666666666666666666666666666666666666666666666666666666")
                .expect("hex")
                .try_into()
                .expect("32");
        let mut one = [0u8; 32];
        one[0] = 1;
        let point = NonceCommitment::deserialize(&base).expect("base point");
        let c = PublishedCommitment {
            signer: n(3),
            id: CommitmentId {
                generation: 0x0102_0304_0506_0708,
                seq: 9,
            },
            commitments: SigningCommitments::new(point, point),
        };
        let mut want = b"senatus/frost-commitment/v1\0".to_vec();
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 3]);
        want.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9]);
        want.extend_from_slice(&base);
        want.extend_from_slice(&base);
        assert_eq!(c.to_bytes(), want);
        assert_eq!(PublishedCommitment::from_bytes(&want), Ok(c));

        let req = SignRequest {
            message: b"hi".to_vec(),
            commitments: vec![c],
        };
        let mut want = b"senatus/frost-sign-request/v1\0".to_vec();
        want.extend_from_slice(&[0, 0, 0, 2, b'h', b'i', 0, 0, 0, 1]);
        want.extend_from_slice(&c.to_bytes()[COMMITMENT_OBJECT.len() + 12..]);
        assert_eq!(req.to_bytes(), want);
        assert_eq!(SignRequest::from_bytes(&want), Ok(req));

        let share = SignedShare {
            signer: n(3),
            id: c.id,
            share: SignatureShare::deserialize(&one).expect("scalar 1"),
        };
        let mut want = b"senatus/frost-share/v1\0".to_vec();
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 3]);
        want.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9]);
        want.extend_from_slice(&one);
        assert_eq!(share.to_bytes(), want);
        assert_eq!(SignedShare::from_bytes(&want), Ok(share));
    }

    #[test]
    fn errors_print_the_bad_values() {
        let id = CommitmentId {
            generation: 0xab,
            seq: 7,
        };
        let e = SigningError::StaleGeneration {
            signer: n(2),
            id,
            current: 0xcd,
        };
        let msg = e.to_string();
        assert!(
            msg.contains("00000000000000ab")
                && msg.contains("00000000000000cd")
                && msg.contains("signer 2"),
            "{msg}"
        );
        assert_eq!(id.to_string(), "00000000000000ab/7");
    }
}
