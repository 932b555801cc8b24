//! Governance tokens: the signed payload of one decision, its Merkle batch,
//! and the wire and text forms a broker receives.
//!
//! A batch of decisions gets one FROST signature: the validators sign the
//! batch message (genesis digest, epoch, group key, Merkle root, leaf count)
//! and each token carries its own payload, its audit path and that one
//! signature. Every byte string here is specified in `docs/PROTOCOL.md`,
//! "Governance tokens", and pinned by `docs/vectors/token-v1.json`.
//!
//! Determinism (I7): nothing in a payload comes from a clock or an RNG at
//! signing time. The nonce and decision id derive from the ledger entry hash
//! and the decision's position in it, and issue/expiry times come from the
//! ledger entry, so replaying the ledger rebuilds byte-identical payloads,
//! leaves and roots. Only the FROST signature itself differs between signing
//! runs, which is why [`Token::digest`] covers the payload and not the wire
//! bytes.

use std::fmt;

use senatus_genesis::codec::{self, Decoder, domain_tag};
use senatus_genesis::{Digest, Encoder, Epoch, Key32, LedgerIndex, PolicyVersion, sha3};
use serde::Serialize;

use crate::merkle::{self, BATCH_LEAVES_MAX, MerkleError, MerkleTree, PROOF_DIGESTS_MAX};
use crate::outcome::Outcome;

/// Object name of the payload tag: `senatus/token/v1` 0x00.
pub const PAYLOAD_OBJECT: &str = "token";
/// Object name of the batch message tag: `senatus/token-batch/v1` 0x00.
pub const BATCH_OBJECT: &str = "token-batch";
/// Object name of the wire form's tag: `senatus/token-wire/v1` 0x00.
pub const WIRE_OBJECT: &str = "token-wire";
/// Object name of the decision id tag: `senatus/decision-id/v1` 0x00.
pub const DECISION_ID_OBJECT: &str = "decision-id";
/// Object name of the nonce tag: `senatus/token-nonce/v1` 0x00.
pub const NONCE_OBJECT: &str = "token-nonce";
/// The only version of each of the above.
pub const TOKEN_VERSION: u8 = 1;

/// Longest `surface`, `action`, `tenant` or `actor`, in bytes of UTF-8.
pub const FIELD_BYTES_MAX: usize = 256;
/// Length of a token nonce.
pub const NONCE_BYTES: usize = 16;

const PAYLOAD_TAG: &[u8] = b"senatus/token/v1\0";
const WIRE_TAG: &[u8] = b"senatus/token-wire/v1\0";
const WIRE_TAG_PREFIX: &[u8] = b"senatus/token-wire/v";

/// Largest encoded payload: tag, 5 digests, 5 `u64`, `u32`, `u8`, four
/// strings at their limit, nonce.
pub const PAYLOAD_BYTES_MAX: usize =
    PAYLOAD_TAG.len() + 5 * 32 + 5 * 8 + 4 + 1 + 4 * (4 + FIELD_BYTES_MAX) + NONCE_BYTES;
/// Largest wire token: tag, payload, index, count, root, proof, signature.
pub const TOKEN_BYTES_MAX: usize =
    WIRE_TAG.len() + 4 + PAYLOAD_BYTES_MAX + 4 + 4 + 32 + 4 + PROOF_DIGESTS_MAX * 32 + 64;
/// Largest text token (hex doubles the bytes).
pub const TOKEN_TEXT_BYTES_MAX: usize = 2 * TOKEN_BYTES_MAX;

/// A 16-byte token nonce; redeemed at most once (I6).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nonce(pub [u8; NONCE_BYTES]);

impl Nonce {
    /// Lower-case hex, 32 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({})", self.to_hex())
    }
}

impl fmt::Display for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Nonce {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

/// The decision id: SHA3-256(`senatus/decision-id/v1` 0x00 || u64
/// ledger_index || fixed32 entry_hash || u32 position).
///
/// `entry_hash` already commits to the chain and to the entry's content;
/// the index is repeated so the id alone says where to look.
pub fn decision_id(ledger_index: LedgerIndex, entry_hash: &Digest, position: u32) -> Digest {
    let mut e = Encoder::new(DECISION_ID_OBJECT, TOKEN_VERSION);
    e.u64(ledger_index.0).digest(entry_hash).u32(position);
    e.digest_of()
}

/// The token nonce: the first 16 bytes of SHA3-256(`senatus/token-nonce/v1`
/// 0x00 || fixed32 entry_hash || u32 position).
///
/// Derived, not drawn: every validator (and a replay) computes the same
/// nonce, and it is unique because entry hashes are unique in a chain.
pub fn derive_nonce(entry_hash: &Digest, position: u32) -> Nonce {
    let mut e = Encoder::new(NONCE_OBJECT, TOKEN_VERSION);
    e.digest(entry_hash).u32(position);
    let d = e.digest_of();
    let mut n = [0u8; NONCE_BYTES];
    n.copy_from_slice(&d.0[..NONCE_BYTES]);
    Nonce(n)
}

fn outcome_str<S: serde::Serializer>(o: &Outcome, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(o.as_str())
}

/// What one token says: the signed content of one decision (a Merkle leaf).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenPayload {
    /// Digest of the genesis this cluster started from. Chosen over the
    /// chain id because the id is only an operator-chosen name, while the
    /// digest commits to the authority key, the validator set and the first
    /// group key: two clusters that reuse a name still cannot swap tokens.
    pub genesis_digest: Digest,
    /// [`decision_id`] of this decision.
    pub decision_id: Digest,
    /// Ledger index of the entry holding the decision batch.
    pub ledger_index: LedgerIndex,
    /// Hash of that ledger entry.
    pub entry_hash: Digest,
    /// Position of the decision within that entry's batch.
    pub position: u32,
    /// What was decided.
    #[serde(serialize_with = "outcome_str")]
    pub outcome: Outcome,
    /// Execution surface the action runs on (e.g. `payments`).
    pub surface: String,
    /// The action on that surface (e.g. `transfer`).
    pub action: String,
    /// Tenant the action is for.
    pub tenant: String,
    /// The agent that asked.
    pub actor: String,
    /// [`crate::params_digest`] of the request's params.
    pub params_digest: Digest,
    /// Policy version the decision was evaluated under.
    pub policy_version: PolicyVersion,
    /// Digest of the seal that made that version active.
    pub seal_digest: Digest,
    /// Membership epoch whose group key signs the batch.
    pub epoch: Epoch,
    /// [`derive_nonce`] of this decision.
    pub nonce: Nonce,
    /// Issue time, Unix milliseconds (from the ledger entry, not a clock).
    pub issued_at_ms: u64,
    /// Expiry, Unix milliseconds; the token is valid strictly before it.
    pub expires_at_ms: u64,
}

impl TokenPayload {
    /// The canonical bytes (the Merkle leaf); see `docs/PROTOCOL.md`.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new(PAYLOAD_OBJECT, TOKEN_VERSION);
        e.digest(&self.genesis_digest)
            .digest(&self.decision_id)
            .u64(self.ledger_index.0)
            .digest(&self.entry_hash)
            .u32(self.position)
            .u8(self.outcome.code())
            .str(&self.surface)
            .str(&self.action)
            .str(&self.tenant)
            .str(&self.actor)
            .digest(&self.params_digest)
            .u64(self.policy_version.0)
            .digest(&self.seal_digest)
            .u64(self.epoch.0)
            .u64(self.issued_at_ms)
            .u64(self.expires_at_ms);
        // The nonce is the one fixed 16-byte field; it goes last, raw.
        let mut bytes = e.finish();
        bytes.extend_from_slice(&self.nonce.0);
        bytes
    }

    /// Strictly decodes [`TokenPayload::encode`] output: exact tag, every
    /// field bounded, a known outcome, `issued_at_ms < expires_at_ms`, and
    /// no trailing bytes (so decoding and re-encoding is the identity).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > PAYLOAD_BYTES_MAX {
            return Err(DecodeError::TooLarge {
                what: "payload",
                len: bytes.len(),
                max: PAYLOAD_BYTES_MAX,
            });
        }
        let mut r = open(bytes, PAYLOAD_OBJECT, b"senatus/token/v", "payload")?;
        let genesis_digest = r.digest("genesis_digest")?;
        let decision_id = r.digest("decision_id")?;
        let ledger_index = LedgerIndex(r.u64("ledger_index")?);
        let entry_hash = r.digest("entry_hash")?;
        let position = r.u32("position")?;
        let code = r.u8("outcome")?;
        let outcome = Outcome::from_code(code).ok_or(DecodeError::UnknownOutcome(code))?;
        let surface = read_str(&mut r, "surface")?;
        let action = read_str(&mut r, "action")?;
        let tenant = read_str(&mut r, "tenant")?;
        let actor = read_str(&mut r, "actor")?;
        let params_digest = r.digest("params_digest")?;
        let policy_version = PolicyVersion(r.u64("policy_version")?);
        let seal_digest = r.digest("seal_digest")?;
        let epoch = Epoch(r.u64("epoch")?);
        let issued_at_ms = r.u64("issued_at_ms")?;
        let expires_at_ms = r.u64("expires_at_ms")?;
        let nonce = Nonce(r.array::<NONCE_BYTES>("nonce")?);
        r.finish()?;
        if issued_at_ms >= expires_at_ms {
            return Err(DecodeError::Lifetime {
                issued_at_ms,
                expires_at_ms,
            });
        }
        Ok(TokenPayload {
            genesis_digest,
            decision_id,
            ledger_index,
            entry_hash,
            position,
            outcome,
            surface,
            action,
            tenant,
            actor,
            params_digest,
            policy_version,
            seal_digest,
            epoch,
            nonce,
            issued_at_ms,
            expires_at_ms,
        })
    }

    /// Checks what [`TokenPayload::decode`] would refuse, before signing:
    /// the signers must never sign a leaf no broker can read.
    pub fn validate(&self) -> Result<(), DecodeError> {
        for (field, v) in [
            ("surface", &self.surface),
            ("action", &self.action),
            ("tenant", &self.tenant),
            ("actor", &self.actor),
        ] {
            if v.len() > FIELD_BYTES_MAX {
                return Err(DecodeError::FieldTooLong {
                    field,
                    len: v.len(),
                    max: FIELD_BYTES_MAX,
                });
            }
        }
        if self.issued_at_ms >= self.expires_at_ms {
            return Err(DecodeError::Lifetime {
                issued_at_ms: self.issued_at_ms,
                expires_at_ms: self.expires_at_ms,
            });
        }
        Ok(())
    }

    /// The Merkle leaf hash of this payload.
    pub fn leaf_hash(&self) -> Digest {
        merkle::leaf_hash(&self.encode())
    }
}

/// The exact bytes the epoch's group threshold-signs for one batch.
///
/// ```text
/// "senatus/token-batch/v1" 0x00
/// fixed32 genesis_digest   u64 epoch   fixed32 group_key
/// fixed32 root             u32 leaf_count
/// ```
///
/// Binding the group key and epoch (not just the root) means a signature
/// can never be replayed as a seal or under another epoch's key, and the
/// leaf count pins the tree shape the proofs are checked against.
///
/// The FROST aggregate is a standard Ed25519 signature over these bytes
/// under `group_key`.
pub fn batch_message(
    genesis_digest: &Digest,
    epoch: Epoch,
    group_key: &Key32,
    root: &Digest,
    leaf_count: u32,
) -> Vec<u8> {
    let mut e = Encoder::new(BATCH_OBJECT, TOKEN_VERSION);
    e.digest(genesis_digest)
        .u64(epoch.0)
        .fixed32(&group_key.0)
        .digest(root)
        .u32(leaf_count);
    e.finish()
}

/// Why a set of payloads cannot form a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Empty or too large.
    #[error(transparent)]
    Merkle(#[from] MerkleError),
    /// One batch is signed for one chain and one epoch.
    #[error(
        "payload {index} is for genesis {found_genesis} epoch {found_epoch}, but the batch is \
         for genesis {genesis} epoch {epoch}"
    )]
    Mixed {
        /// The first offending payload.
        index: usize,
        /// The batch's genesis (from payload 0).
        genesis: Digest,
        /// The batch's epoch (from payload 0).
        epoch: Epoch,
        /// The offending payload's genesis.
        found_genesis: Digest,
        /// The offending payload's epoch.
        found_epoch: Epoch,
    },
    /// A payload would not decode.
    #[error("payload {index} is not encodable as a token: {source}")]
    Invalid {
        /// The offending payload.
        index: usize,
        /// Why.
        source: DecodeError,
    },
}

/// The payloads of one signed batch and their Merkle tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBatch {
    payloads: Vec<TokenPayload>,
    tree: MerkleTree,
}

impl TokenBatch {
    /// Builds the tree; all payloads must share genesis digest and epoch.
    pub fn new(payloads: Vec<TokenPayload>) -> Result<Self, BatchError> {
        let first = payloads.first().ok_or(MerkleError::Empty)?;
        let (genesis, epoch) = (first.genesis_digest, first.epoch);
        for (index, p) in payloads.iter().enumerate() {
            p.validate()
                .map_err(|source| BatchError::Invalid { index, source })?;
            if p.genesis_digest != genesis || p.epoch != epoch {
                return Err(BatchError::Mixed {
                    index,
                    genesis,
                    epoch,
                    found_genesis: p.genesis_digest,
                    found_epoch: p.epoch,
                });
            }
        }
        let tree = MerkleTree::from_leaf_hashes(payloads.iter().map(|p| p.leaf_hash()).collect())?;
        Ok(TokenBatch { payloads, tree })
    }

    /// The payloads, in leaf order.
    pub fn payloads(&self) -> &[TokenPayload] {
        &self.payloads
    }

    /// The tree.
    pub fn tree(&self) -> &MerkleTree {
        &self.tree
    }

    /// The Merkle root.
    pub fn root(&self) -> Digest {
        self.tree.root()
    }

    /// Number of leaves.
    pub fn leaf_count(&self) -> u32 {
        self.tree.leaf_count()
    }

    /// The message to threshold-sign under the epoch's `group_key`.
    pub fn message(&self, group_key: &Key32) -> Vec<u8> {
        let p = &self.payloads[0];
        batch_message(
            &p.genesis_digest,
            p.epoch,
            group_key,
            &self.root(),
            self.leaf_count(),
        )
    }

    /// One token per payload, all carrying `signature`.
    pub fn tokens(&self, signature: [u8; 64]) -> Vec<Token> {
        let count = self.leaf_count();
        self.payloads
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let leaf_index = u32::try_from(i).expect("batch size bounded by BATCH_LEAVES_MAX");
                Token {
                    payload: p.clone(),
                    leaf_index,
                    leaf_count: count,
                    root: self.root(),
                    proof: self
                        .tree
                        .proof(leaf_index)
                        .expect("index below the leaf count"),
                    signature,
                }
            })
            .collect()
    }
}

fn sig_hex<S: serde::Serializer>(sig: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(sig))
}

/// A governance token as a broker receives it.
///
/// The serde form is a JSON view for printing (`senatus token show`); the
/// wire form is [`Token::to_bytes`] and the text form [`Token::to_text`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Token {
    /// The decision.
    pub payload: TokenPayload,
    /// Position of the payload's leaf in the signed batch.
    pub leaf_index: u32,
    /// Leaves in the signed batch (signed, in the batch message).
    pub leaf_count: u32,
    /// The signed Merkle root. Carried (though derivable from the proof) so
    /// a broken proof and a bad signature are told apart.
    pub root: Digest,
    /// Audit path from the leaf to `root`, bottom up.
    pub proof: Vec<Digest>,
    /// Ed25519 (FROST aggregate) signature over the batch message.
    #[serde(serialize_with = "sig_hex")]
    pub signature: [u8; 64],
}

impl Token {
    /// The versioned wire form (`docs/PROTOCOL.md`, token wire format).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::new(WIRE_OBJECT, TOKEN_VERSION);
        e.bytes(&self.payload.encode())
            .u32(self.leaf_index)
            .u32(self.leaf_count)
            .digest(&self.root)
            .count(self.proof.len());
        for d in &self.proof {
            e.digest(d);
        }
        let mut bytes = e.finish();
        bytes.extend_from_slice(&self.signature);
        bytes
    }

    /// Strictly decodes the wire form: size bound, exact tag and version,
    /// a strict payload, `leaf_index < leaf_count <= BATCH_LEAVES_MAX`, at
    /// most [`PROOF_DIGESTS_MAX`] proof digests, no trailing bytes.
    ///
    /// The proof's *length* for the position is checked by verification
    /// (as an inclusion-proof failure), not here.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > TOKEN_BYTES_MAX {
            return Err(DecodeError::TooLarge {
                what: "token",
                len: bytes.len(),
                max: TOKEN_BYTES_MAX,
            });
        }
        let mut r = open(bytes, WIRE_OBJECT, WIRE_TAG_PREFIX, "token")?;
        let len = r.u32("payload length")? as usize;
        if len > PAYLOAD_BYTES_MAX {
            return Err(DecodeError::TooLarge {
                what: "payload",
                len,
                max: PAYLOAD_BYTES_MAX,
            });
        }
        let payload = TokenPayload::decode(r.take(len, "payload")?)?;
        let leaf_index = r.u32("leaf_index")?;
        let leaf_count = r.u32("leaf_count")?;
        if leaf_count == 0 || leaf_count > BATCH_LEAVES_MAX {
            return Err(DecodeError::LeafCount(leaf_count));
        }
        if leaf_index >= leaf_count {
            return Err(DecodeError::LeafIndex {
                index: leaf_index,
                count: leaf_count,
            });
        }
        let root = r.digest("root")?;
        let n = r.count("proof length", PROOF_DIGESTS_MAX)?;
        let proof = (0..n)
            .map(|_| r.digest("proof"))
            .collect::<Result<Vec<_>, _>>()?;
        let signature = r.array::<64>("signature")?;
        r.finish()?;
        Ok(Token {
            payload,
            leaf_index,
            leaf_count,
            root,
            proof,
            signature,
        })
    }

    /// The text form: lower-case hex of [`Token::to_bytes`]. Hex rather than
    /// base64url because it needs no extra dependency in any language,
    /// survives shells, headers and URLs unquoted, and is what every other
    /// senatus byte string looks like in JSON.
    pub fn to_text(&self) -> String {
        hex::encode(self.to_bytes())
    }

    /// Parses the text form (surrounding ASCII whitespace is ignored; hex
    /// digits may be either case), then decodes strictly.
    pub fn from_text(text: &str) -> Result<Self, DecodeError> {
        let t = text.trim_ascii();
        if t.len() > TOKEN_TEXT_BYTES_MAX {
            return Err(DecodeError::TooLarge {
                what: "token text",
                len: t.len(),
                max: TOKEN_TEXT_BYTES_MAX,
            });
        }
        let bytes = hex::decode(t).map_err(|e| DecodeError::Text(e.to_string()))?;
        Token::from_bytes(&bytes)
    }

    /// The token digest, recorded on redemption: SHA3-256 of the payload
    /// bytes (which begin with their own domain tag). It leaves out the
    /// proof and the signature, so a replayed ledger reproduces it and a
    /// re-signed batch does not change it.
    pub fn digest(&self) -> Digest {
        sha3(&self.payload.encode())
    }

    /// The batch message this token's signature must verify over, for the
    /// given epoch group key.
    pub fn batch_message(&self, group_key: &Key32) -> Vec<u8> {
        batch_message(
            &self.payload.genesis_digest,
            self.payload.epoch,
            group_key,
            &self.root,
            self.leaf_count,
        )
    }
}

/// Why bytes are not a token (reported by brokers as `Malformed`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Input over its size limit.
    #[error("{what} is {len} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Which object.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Does not start with the expected tag at all.
    #[error("{what} does not start with its senatus tag")]
    BadTag {
        /// Which object.
        what: &'static str,
    },
    /// The right object at a version this code does not know.
    #[error("{what} has unknown version {found:?}; this verifier knows v1")]
    UnknownVersion {
        /// Which object.
        what: &'static str,
        /// The version text found (up to the zero byte, lossy UTF-8).
        found: String,
    },
    /// Input ends inside a field.
    #[error("truncated in {field}: need {needed} more bytes, {remaining} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left.
        remaining: usize,
    },
    /// A string over [`FIELD_BYTES_MAX`].
    #[error("{field} is {len} bytes, over the {max}-byte limit")]
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A string field that is not UTF-8.
    #[error("{field} is not valid UTF-8")]
    NotUtf8 {
        /// The field.
        field: &'static str,
    },
    /// An outcome code other than 1, 2, 3.
    #[error("unknown outcome code {0}")]
    UnknownOutcome(u8),
    /// Not issued strictly before it expires.
    #[error("issued_at_ms {issued_at_ms} is not before expires_at_ms {expires_at_ms}")]
    Lifetime {
        /// Issue time.
        issued_at_ms: u64,
        /// Expiry.
        expires_at_ms: u64,
    },
    /// Leaf count 0 or over [`BATCH_LEAVES_MAX`].
    #[error("leaf count {0} is outside 1..={BATCH_LEAVES_MAX}")]
    LeafCount(u32),
    /// Leaf index not below the count.
    #[error("leaf index {index} is not below leaf count {count}")]
    LeafIndex {
        /// The index.
        index: u32,
        /// The count.
        count: u32,
    },
    /// More than [`PROOF_DIGESTS_MAX`] proof digests.
    #[error("proof has {0} digests, over the limit of {PROOF_DIGESTS_MAX}")]
    ProofTooLong(u32),
    /// Bytes left after the last field.
    #[error("{0} trailing bytes after the token")]
    TrailingBytes(usize),
    /// The text form is not hex.
    #[error("token text is not hex: {0}")]
    Text(String),
}

impl From<codec::DecodeError> for DecodeError {
    fn from(e: codec::DecodeError) -> Self {
        match e {
            // Tags are checked by `open`, which names the object; this arm
            // only keeps the conversion total.
            codec::DecodeError::Tag { .. } => DecodeError::BadTag { what: "input" },
            codec::DecodeError::Truncated {
                field,
                needed,
                remaining,
                ..
            } => DecodeError::Truncated {
                field,
                needed,
                remaining,
            },
            codec::DecodeError::NotUtf8 { field, .. } => DecodeError::NotUtf8 { field },
            codec::DecodeError::Trailing { count } => DecodeError::TrailingBytes(count),
            codec::DecodeError::TooLong(codec::Bound {
                field, value, max, ..
            }) => DecodeError::FieldTooLong {
                field,
                len: value,
                max,
            },
            // The proof length is the only bounded count in a token.
            codec::DecodeError::TooMany(b) => {
                DecodeError::ProofTooLong(u32::try_from(b.value).unwrap_or(u32::MAX))
            }
        }
    }
}

/// Starts decoding `bytes` as `object` v1. The shared decoder only says the
/// tag is wrong; a verifier also says whether the input is a cut-off tag or
/// the same object at another version (`prefix` is the tag up to the
/// version number), so those are told apart here.
fn open<'a>(
    bytes: &'a [u8],
    object: &str,
    prefix: &[u8],
    what: &'static str,
) -> Result<Decoder<'a>, DecodeError> {
    if let Ok(d) = Decoder::new(bytes, object, TOKEN_VERSION) {
        return Ok(d);
    }
    let tag_len = domain_tag(object, TOKEN_VERSION).len() + 1;
    let tag_prefix = bytes.len() < tag_len
        && bytes
            .iter()
            .zip(domain_tag(object, TOKEN_VERSION).bytes())
            .all(|(a, b)| *a == b);
    if tag_prefix {
        return Err(DecodeError::Truncated {
            field: "tag",
            needed: tag_len,
            remaining: bytes.len(),
        });
    }
    if let Some(after) = bytes.strip_prefix(prefix) {
        let end = after
            .iter()
            .take(8)
            .position(|&b| b == 0)
            .unwrap_or(after.len().min(8));
        return Err(DecodeError::UnknownVersion {
            what,
            found: String::from_utf8_lossy(&after[..end]).into_owned(),
        });
    }
    Err(DecodeError::BadTag { what })
}

/// A string field: its length is checked against [`FIELD_BYTES_MAX`]
/// before the body is read.
fn read_str(d: &mut Decoder<'_>, field: &'static str) -> Result<String, DecodeError> {
    let raw = d.bytes_max(field, FIELD_BYTES_MAX)?;
    String::from_utf8(raw.to_vec()).map_err(|_| DecodeError::NotUtf8 { field })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(position: u32) -> TokenPayload {
        let entry_hash = sha3(b"entry");
        TokenPayload {
            genesis_digest: sha3(b"genesis"),
            decision_id: decision_id(LedgerIndex(7), &entry_hash, position),
            ledger_index: LedgerIndex(7),
            entry_hash,
            position,
            outcome: Outcome::Permit,
            surface: "payments".into(),
            action: "transfer".into(),
            tenant: "acme".into(),
            actor: "agent-1".into(),
            params_digest: sha3(b"params"),
            policy_version: PolicyVersion(1),
            seal_digest: sha3(b"seal"),
            epoch: Epoch(0),
            nonce: derive_nonce(&entry_hash, position),
            issued_at_ms: 1_000,
            expires_at_ms: 61_000,
        }
    }

    #[test]
    fn payload_layout_is_exact() {
        let p = payload(3);
        let b = p.encode();
        assert!(b.starts_with(b"senatus/token/v1\0"));
        let mut off = PAYLOAD_TAG.len();
        assert_eq!(&b[off..off + 32], &p.genesis_digest.0);
        off += 64;
        assert_eq!(&b[off..off + 8], &7u64.to_be_bytes());
        off += 8 + 32;
        assert_eq!(&b[off..off + 4], &3u32.to_be_bytes());
        off += 4;
        assert_eq!(b[off], 1);
        off += 1;
        assert_eq!(&b[off..off + 12], b"\0\0\0\x08payments");
        assert_eq!(&b[b.len() - 16..], &p.nonce.0);
        assert_eq!(
            b.len(),
            PAYLOAD_TAG.len() + 5 * 32 + 5 * 8 + 4 + 1 + 4 * 4 + 8 + 8 + 4 + 7 + 16
        );
        assert_eq!(TokenPayload::decode(&b), Ok(p));
    }

    #[test]
    fn derivations_are_deterministic_and_position_bound() {
        let e = sha3(b"entry");
        assert_eq!(derive_nonce(&e, 0), derive_nonce(&e, 0));
        assert_ne!(derive_nonce(&e, 0), derive_nonce(&e, 1));
        assert_ne!(derive_nonce(&e, 0), derive_nonce(&sha3(b"other"), 0));
        assert_ne!(
            decision_id(LedgerIndex(1), &e, 0),
            decision_id(LedgerIndex(2), &e, 0)
        );
        let mut pre = b"senatus/token-nonce/v1\0".to_vec();
        pre.extend_from_slice(&e.0);
        pre.extend_from_slice(&5u32.to_be_bytes());
        assert_eq!(derive_nonce(&e, 5).0, sha3(&pre).0[..16]);
    }

    #[test]
    fn payload_decode_is_strict() {
        let p = payload(0);
        let b = p.encode();
        for cut in 0..b.len() {
            assert!(TokenPayload::decode(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = b.clone();
        long.push(0);
        assert_eq!(
            TokenPayload::decode(&long),
            Err(DecodeError::TrailingBytes(1))
        );
        let mut bad = b.clone();
        let outcome_at = PAYLOAD_TAG.len() + 64 + 8 + 32 + 4;
        bad[outcome_at] = 9;
        assert_eq!(
            TokenPayload::decode(&bad),
            Err(DecodeError::UnknownOutcome(9))
        );
        let mut v2 = b.clone();
        v2[PAYLOAD_TAG.len() - 2] = b'2';
        assert!(matches!(
            TokenPayload::decode(&v2),
            Err(DecodeError::UnknownVersion { ref found, .. }) if found == "2"
        ));
        let mut q = p.clone();
        q.expires_at_ms = q.issued_at_ms;
        assert!(matches!(
            TokenPayload::decode(&q.encode()),
            Err(DecodeError::Lifetime { .. })
        ));
        let mut q = p.clone();
        q.actor = "x".repeat(FIELD_BYTES_MAX + 1);
        assert!(matches!(
            TokenPayload::decode(&q.encode()),
            Err(DecodeError::FieldTooLong { field: "actor", .. })
        ));
        assert!(q.validate().is_err());
        let mut q = p;
        for s in [&mut q.surface, &mut q.action, &mut q.tenant, &mut q.actor] {
            *s = "é".repeat(FIELD_BYTES_MAX / 2);
        }
        assert_eq!(q.encode().len(), PAYLOAD_BYTES_MAX);
        // The limits docs/PROTOCOL.md states.
        assert_eq!((PAYLOAD_BYTES_MAX, TOKEN_BYTES_MAX), (1_278, 1_796));
        assert_eq!(TokenPayload::decode(&q.encode()), Ok(q));
    }

    #[test]
    fn truncation_names_the_field_and_the_missing_bytes() {
        let b = payload(0).encode();
        assert_eq!(
            TokenPayload::decode(&b[..5]),
            Err(DecodeError::Truncated {
                field: "tag",
                needed: PAYLOAD_TAG.len(),
                remaining: 5,
            })
        );
        assert_eq!(
            TokenPayload::decode(&b[..PAYLOAD_TAG.len() + 1]),
            Err(DecodeError::Truncated {
                field: "genesis_digest",
                needed: 32,
                remaining: 1,
            })
        );
        let cut = b.len() - 3;
        assert_eq!(
            TokenPayload::decode(&b[..cut]),
            Err(DecodeError::Truncated {
                field: "nonce",
                needed: NONCE_BYTES,
                remaining: NONCE_BYTES - 3,
            })
        );
    }

    #[test]
    fn wire_and_text_round_trip_and_are_strict() {
        let batch = TokenBatch::new((0..7).map(payload).collect()).expect("batch");
        let tokens = batch.tokens([7u8; 64]);
        assert_eq!(tokens.len(), 7);
        for t in &tokens {
            let b = t.to_bytes();
            assert!(b.len() <= TOKEN_BYTES_MAX);
            assert_eq!(Token::from_bytes(&b).as_ref(), Ok(t));
            assert_eq!(
                Token::from_text(&format!(" {}\n", t.to_text())).as_ref(),
                Ok(t)
            );
            merkle::verify(
                &t.payload.leaf_hash(),
                t.leaf_index,
                t.leaf_count,
                &t.proof,
                &t.root,
            )
            .expect("proof");
            for cut in 0..b.len() {
                assert!(Token::from_bytes(&b[..cut]).is_err(), "cut at {cut}");
            }
        }
        let t = &tokens[6];
        let mut b = t.to_bytes();
        b.push(0);
        assert_eq!(Token::from_bytes(&b), Err(DecodeError::TrailingBytes(1)));
        assert!(matches!(Token::from_text("zz"), Err(DecodeError::Text(_))));
        assert!(matches!(
            Token::from_bytes(b"garbage that is not a token"),
            Err(DecodeError::BadTag { what: "token" })
        ));
        // Same payloads re-signed: same digest, different wire bytes.
        let again = batch.tokens([8u8; 64]);
        assert_eq!(again[6].digest(), t.digest());
        assert_ne!(again[6].to_bytes(), t.to_bytes());
        let json = serde_json::to_value(t).expect("json");
        assert_eq!(json["payload"]["outcome"], "PERMIT");
        assert_eq!(json["payload"]["nonce"], t.payload.nonce.to_hex());
        assert_eq!(json["signature"], hex::encode([7u8; 64]));
    }

    #[test]
    fn wire_bounds_are_each_refused() {
        let t = TokenBatch::new(vec![payload(0)])
            .expect("batch")
            .tokens([1u8; 64])
            .remove(0);
        let with = |f: &dyn Fn(&mut Token)| {
            let mut u = t.clone();
            f(&mut u);
            Token::from_bytes(&u.to_bytes())
        };
        assert_eq!(with(&|u| u.leaf_count = 0), Err(DecodeError::LeafCount(0)));
        assert_eq!(
            with(&|u| u.leaf_count = BATCH_LEAVES_MAX + 1),
            Err(DecodeError::LeafCount(BATCH_LEAVES_MAX + 1))
        );
        assert_eq!(
            with(&|u| u.leaf_index = 1),
            Err(DecodeError::LeafIndex { index: 1, count: 1 })
        );
        assert_eq!(
            with(&|u| {
                u.leaf_count = 2;
                u.proof = vec![Digest::ZERO; PROOF_DIGESTS_MAX + 1];
            }),
            Err(DecodeError::ProofTooLong(PROOF_DIGESTS_MAX as u32 + 1))
        );
        let huge = vec![0u8; TOKEN_BYTES_MAX + 1];
        assert!(matches!(
            Token::from_bytes(&huge),
            Err(DecodeError::TooLarge { what: "token", .. })
        ));
        assert!(matches!(
            Token::from_text(&"00".repeat(TOKEN_BYTES_MAX + 1)),
            Err(DecodeError::TooLarge {
                what: "token text",
                ..
            })
        ));
        // A payload length prefix past the limit is refused before reading.
        let mut b = t.to_bytes();
        b[WIRE_TAG.len()..WIRE_TAG.len() + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            Token::from_bytes(&b),
            Err(DecodeError::TooLarge {
                what: "payload",
                ..
            })
        ));
        // Invalid UTF-8 in a string field.
        let mut p = payload(0);
        p.surface = "ab".into();
        let mut pb = p.encode();
        let at = PAYLOAD_TAG.len() + 64 + 8 + 32 + 4 + 1 + 4;
        assert_eq!(&pb[at..at + 2], b"ab");
        pb[at] = 0xff;
        assert_eq!(
            TokenPayload::decode(&pb),
            Err(DecodeError::NotUtf8 { field: "surface" })
        );
        // Not a token at all, and the wrong object's tag.
        assert_eq!(
            Token::from_bytes(&p.encode()),
            Err(DecodeError::BadTag { what: "token" })
        );
    }

    #[test]
    fn batches_are_one_chain_and_one_epoch() {
        let mut ps: Vec<_> = (0..3).map(payload).collect();
        ps[2].epoch = Epoch(1);
        assert!(matches!(
            TokenBatch::new(ps),
            Err(BatchError::Mixed { index: 2, .. })
        ));
        assert_eq!(
            TokenBatch::new(Vec::new()),
            Err(BatchError::Merkle(MerkleError::Empty))
        );
        let one = TokenBatch::new(vec![payload(0)]).expect("one");
        assert_eq!(one.root(), payload(0).leaf_hash());
        assert!(one.tokens([0; 64])[0].proof.is_empty());
    }
}
