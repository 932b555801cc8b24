//! Seals: the chain of threshold-signed statements "policy version V with
//! digest D is active for epoch E under group key K and this membership".
//!
//! Seal 0 is derived from genesis and authenticated by the genesis signature.
//! Every later seal is a plain Ed25519 signature (produced with FROST) under
//! the group key of the seal before it, so a verifier holding only genesis
//! can follow the chain.
//!
//! Every later seal also carries the attestations of a ledger head by
//! [`attestation_quorum`] members of the previous seal (4 of 5): each
//! says "my own committed ledger has this entry at this index, and the
//! next seal my own tally computes from it is this one". Two such quorums
//! share at least `f + 1` validators, so at least one honest validator,
//! which attests one seal per version, would have had to attest both:
//! a leader that forks the log cannot get two seals for one version past
//! a broker, even with a threshold of the group key's shares.

use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};

use crate::codec::{DecodeError, Decoder, Digest, Encoder, sha3};
use crate::document::{Genesis, Key32, Sig64, VALIDATORS_MAX, Validator};
use crate::ids::{Epoch, NodeId, PolicyVersion};

/// The content of a seal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seal {
    /// Policy version this seal makes active.
    pub version: PolicyVersion,
    /// Digest of that policy layer.
    pub policy_digest: Digest,
    /// Digest of the previous seal; for seal 0, the genesis digest.
    pub prev_seal: Digest,
    /// Membership epoch.
    pub epoch: Epoch,
    /// FROST threshold for this epoch.
    pub threshold: u16,
    /// Group verifying key for this epoch.
    pub group_key: Key32,
    /// The validator set for this epoch, sorted by id.
    pub membership: Vec<Validator>,
}

/// A seal with its threshold signature (absent for seal 0, which genesis
/// authenticates).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedSeal {
    /// The seal.
    pub seal: Seal,
    /// FROST-produced Ed25519 signature under the previous seal's group key
    /// over [`Seal::signing_bytes`]; `None` only for seal 0.
    pub signature: Option<Sig64>,
    /// The ledger head the previous seal's members attested for this seal;
    /// `None` only for seal 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attested: Option<SealAttestations>,
}

/// Domain object of a seal attestation's signing bytes.
pub const SEAL_ATTESTATION_OBJECT: &str = "seal-attestation";

/// How many members of a membership of `n` must attest a seal's ledger
/// head: `ceil((n + f + 1) / 2)` with `f = floor((n - 1) / 3)` Byzantine
/// members tolerated (4 of 5, 3 of 4, 2 of 3, 1 of 1). Two sets this large
/// overlap in at least `f + 1` members, one of them honest.
pub fn attestation_quorum(n: usize) -> usize {
    let f = n.saturating_sub(1) / 3;
    (n + f + 2) / 2
}

/// One member's identity-key signature over
/// [`SealAttestations::signing_bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadAttestation {
    /// The attesting validator (a member of the previous seal).
    pub validator: NodeId,
    /// Its Ed25519 identity-key signature.
    pub signature: Sig64,
}

/// The ledger head a seal was attested over, and the attestations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealAttestations {
    /// The ledger index of the entry at which the amendment passed.
    pub ledger_index: u64,
    /// That entry's hash (PROTOCOL 6) on the attesters' ledgers.
    pub entry_hash: Digest,
    /// The attestations, strictly ascending by validator id.
    pub by: Vec<HeadAttestation>,
}

/// Why encoded attestations did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestationsDecodeError {
    /// The bytes are malformed.
    #[error("attestations: {0}")]
    Decode(#[from] DecodeError),
    /// An attester id outside `1..=65535`.
    #[error("attestations: validator id {0} is not a node id")]
    NodeId(u64),
}

/// Why a seal's attestations were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    /// Fewer valid attestations than the quorum.
    #[error("{found} attestations, {needed} of the {members} members needed")]
    TooFew {
        /// How many were carried.
        found: usize,
        /// The quorum.
        needed: usize,
        /// Members of the previous seal.
        members: usize,
    },
    /// An attester that is not a member of the previous seal.
    #[error("validator {validator} attests but is not a member")]
    NotMember {
        /// The attester.
        validator: NodeId,
    },
    /// Attesters not strictly ascending (a repeat counts once, never twice).
    #[error("attestation by validator {validator} is out of order or repeated")]
    NotAscending {
        /// The attester out of order.
        validator: NodeId,
    },
    /// A signature that does not verify under the attester's identity key.
    #[error("attestation by validator {validator} does not verify under its identity key")]
    BadSignature {
        /// The attester.
        validator: NodeId,
    },
}

impl HeadAttestation {
    /// `validator`'s attestation, signed with its identity key `key`, that
    /// its ledger holds `entry_hash` at `ledger_index` and that the next
    /// seal it computes there has digest `seal_digest`.
    pub fn sign(
        validator: NodeId,
        key: &ed25519_dalek::SigningKey,
        seal_digest: &Digest,
        ledger_index: u64,
        entry_hash: &Digest,
    ) -> Self {
        use ed25519_dalek::Signer;
        let bytes = SealAttestations::signing_bytes(seal_digest, ledger_index, entry_hash);
        HeadAttestation {
            validator,
            signature: Sig64(key.sign(&bytes).to_bytes()),
        }
    }

    /// Checks this attestation over `message` (the
    /// [`SealAttestations::signing_bytes`] of one seal and head): its
    /// validator is in `membership` and signed it with its identity key.
    pub fn verify(&self, message: &[u8], membership: &[Validator]) -> Result<(), AttestationError> {
        let member = membership.iter().find(|v| v.id == self.validator).ok_or(
            AttestationError::NotMember {
                validator: self.validator,
            },
        )?;
        let bad = AttestationError::BadSignature {
            validator: self.validator,
        };
        let key = crate::ed25519::verifying_key(&member.identity_key.0).map_err(|_| bad.clone())?;
        key.verify_strict(message, &Signature::from_bytes(&self.signature.0))
            .map_err(|_| bad)
    }
}

impl SealAttestations {
    /// The set of `by` over one head, ascending by validator; a second
    /// attestation by one validator is dropped (the first is kept).
    pub fn new(
        ledger_index: u64,
        entry_hash: Digest,
        by: impl IntoIterator<Item = HeadAttestation>,
    ) -> Self {
        let mut by: Vec<HeadAttestation> = by.into_iter().collect();
        by.sort_by_key(|a| a.validator);
        by.dedup_by_key(|a| a.validator);
        SealAttestations {
            ledger_index,
            entry_hash,
            by,
        }
    }

    /// The bytes each attester signs with its identity key
    /// (`docs/PROTOCOL.md` 4.1).
    pub fn signing_bytes(seal_digest: &Digest, ledger_index: u64, entry_hash: &Digest) -> Vec<u8> {
        let mut e = Encoder::new(SEAL_ATTESTATION_OBJECT, 1);
        e.digest(seal_digest).u64(ledger_index).digest(entry_hash);
        e.finish()
    }

    /// Appends `u64 ledger_index || fixed32 entry_hash || list<u64
    /// validator || fixed64 signature>` to `e`.
    pub fn encode_into(&self, e: &mut Encoder) {
        e.u64(self.ledger_index)
            .digest(&self.entry_hash)
            .count(self.by.len());
        for a in &self.by {
            let (lo, hi) = a.signature.0.split_at(32);
            e.u64(a.validator.get())
                .fixed32(lo.try_into().expect("32 bytes"))
                .fixed32(hi.try_into().expect("32 bytes"));
        }
    }

    /// Strict inverse of [`SealAttestations::encode_into`]: at most
    /// `VALIDATORS_MAX` attestations, each a valid node id.
    pub fn decode_from(d: &mut Decoder<'_>) -> Result<Self, AttestationsDecodeError> {
        let ledger_index = d.u64("ledger_index")?;
        let entry_hash = d.digest("entry_hash")?;
        let n = d.count("attestations", VALIDATORS_MAX)?;
        let mut by = Vec::with_capacity(n);
        for _ in 0..n {
            let raw = d.u64("validator")?;
            let validator = NodeId::new(raw).map_err(|_| AttestationsDecodeError::NodeId(raw))?;
            let lo = d.fixed32("signature")?;
            let hi = d.fixed32("signature")?;
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&lo);
            sig[32..].copy_from_slice(&hi);
            by.push(HeadAttestation {
                validator,
                signature: Sig64(sig),
            });
        }
        Ok(SealAttestations {
            ledger_index,
            entry_hash,
            by,
        })
    }

    /// Checks that at least [`attestation_quorum`] distinct members of
    /// `membership`, in ascending id order, signed this head for the seal
    /// with digest `seal_digest`. Every carried attestation must verify:
    /// one bad one refuses the whole set.
    pub fn verify(
        &self,
        seal_digest: &Digest,
        membership: &[Validator],
    ) -> Result<(), AttestationError> {
        let message = Self::signing_bytes(seal_digest, self.ledger_index, &self.entry_hash);
        let mut last: Option<NodeId> = None;
        for a in &self.by {
            if last.is_some_and(|l| l >= a.validator) {
                return Err(AttestationError::NotAscending {
                    validator: a.validator,
                });
            }
            last = Some(a.validator);
            a.verify(&message, membership)?;
        }
        let needed = attestation_quorum(membership.len());
        if self.by.len() < needed {
            return Err(AttestationError::TooFew {
                found: self.by.len(),
                needed,
                members: membership.len(),
            });
        }
        Ok(())
    }
}

/// Why a seal or seal chain was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Seal 0 does not equal the one derived from genesis.
    #[error("seal 0 does not match genesis (field {field})")]
    GenesisMismatch {
        /// The first differing field.
        field: &'static str,
    },
    /// Seal 0 carries a signature (genesis authenticates it) or a later
    /// seal lacks one.
    #[error("seal {position}: {message}")]
    SignaturePresence {
        /// Position in the chain.
        position: usize,
        /// What is wrong.
        message: &'static str,
    },
    /// `prev_seal` does not name the seal before it.
    #[error("seal {position} names previous seal {found}, expected {expected}")]
    BrokenLink {
        /// Position in the chain.
        position: usize,
        /// The previous seal's digest.
        expected: Digest,
        /// What the seal names.
        found: Digest,
    },
    /// The policy version does not increase by one (amendment) or stay the
    /// same (epoch handover).
    #[error("seal {position} has policy version {found}, after version {previous}")]
    BadVersion {
        /// Position in the chain.
        position: usize,
        /// Version of the seal before.
        previous: PolicyVersion,
        /// Version of this one.
        found: PolicyVersion,
    },
    /// The epoch goes backwards or skips.
    #[error("seal {position} has epoch {found}, after epoch {previous}")]
    BadEpoch {
        /// Position in the chain.
        position: usize,
        /// Epoch of the seal before.
        previous: Epoch,
        /// Epoch of this one.
        found: Epoch,
    },
    /// The signature does not verify under the previous group key.
    #[error("seal {position} signature does not verify under group key {group_key}")]
    BadSignature {
        /// Position in the chain.
        position: usize,
        /// The key it was checked against.
        group_key: Key32,
    },
    /// A seal after seal 0 without attestations, or seal 0 with some.
    #[error("seal {position}: {message}")]
    AttestationPresence {
        /// Position in the chain.
        position: usize,
        /// What is wrong.
        message: &'static str,
    },
    /// The attestations of the seal's ledger head are refused.
    #[error("seal {position} attestations: {error}")]
    Attestation {
        /// Position in the chain.
        position: usize,
        /// Why.
        error: AttestationError,
    },
    /// The chain is empty.
    #[error("seal chain is empty")]
    Empty,
}

impl Seal {
    /// Seal 0, derived from genesis.
    pub fn genesis(genesis: &Genesis) -> Seal {
        let b = &genesis.body;
        Seal {
            version: b.policy_version,
            policy_digest: b.policy_digest,
            prev_seal: genesis.digest(),
            epoch: Epoch(0),
            threshold: b.threshold,
            group_key: b.group_key,
            membership: b.validators.clone(),
        }
    }

    /// The exact bytes that are threshold-signed (`docs/PROTOCOL.md`).
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::new("seal", 1);
        e.u64(self.version.0)
            .digest(&self.policy_digest)
            .digest(&self.prev_seal)
            .u64(self.epoch.0)
            .u16(self.threshold)
            .fixed32(&self.group_key.0)
            .count(self.membership.len());
        for v in &self.membership {
            v.encode(&mut e);
        }
        e.finish()
    }

    /// The seal digest: SHA3-256 of the signing bytes.
    pub fn digest(&self) -> Digest {
        sha3(&self.signing_bytes())
    }
}

/// Verifies a seal chain from a verified genesis; returns the newest seal.
///
/// The caller must have verified `genesis` (its signature) first.
pub fn verify_chain<'a>(genesis: &Genesis, chain: &'a [SignedSeal]) -> Result<&'a Seal, SealError> {
    let first = chain.first().ok_or(SealError::Empty)?;
    let derived = Seal::genesis(genesis);
    if first.signature.is_some() {
        return Err(SealError::SignaturePresence {
            position: 0,
            message: "seal 0 must not carry a signature; genesis authenticates it",
        });
    }
    if first.attested.is_some() {
        return Err(SealError::AttestationPresence {
            position: 0,
            message: "seal 0 must not carry attestations; genesis authenticates it",
        });
    }
    let s = &first.seal;
    let field = if s.version != derived.version {
        Some("version")
    } else if s.policy_digest != derived.policy_digest {
        Some("policy_digest")
    } else if s.prev_seal != derived.prev_seal {
        Some("prev_seal")
    } else if s.epoch != derived.epoch {
        Some("epoch")
    } else if s.threshold != derived.threshold {
        Some("threshold")
    } else if s.group_key != derived.group_key {
        Some("group_key")
    } else if s.membership != derived.membership {
        Some("membership")
    } else {
        None
    };
    if let Some(field) = field {
        return Err(SealError::GenesisMismatch { field });
    }
    let mut prev = &first.seal;
    for (position, signed) in chain.iter().enumerate().skip(1) {
        verify_successor(prev, signed, position)?;
        prev = &signed.seal;
    }
    Ok(prev)
}

/// Checks that `next` validly follows `prev` (position is for messages):
/// link, version or epoch step, the threshold signature under `prev`'s
/// group key, and the attestations of its ledger head by a quorum of
/// `prev`'s members.
pub fn verify_successor(prev: &Seal, next: &SignedSeal, position: usize) -> Result<(), SealError> {
    let s = &next.seal;
    let expected = prev.digest();
    if s.prev_seal != expected {
        return Err(SealError::BrokenLink {
            position,
            expected,
            found: s.prev_seal,
        });
    }
    let amendment = s.version.0 == prev.version.0.wrapping_add(1) && s.epoch == prev.epoch;
    let handover = s.version == prev.version && s.epoch.0 == prev.epoch.0.wrapping_add(1);
    if !amendment && !handover {
        return if s.version != prev.version && s.version.0 != prev.version.0.wrapping_add(1) {
            Err(SealError::BadVersion {
                position,
                previous: prev.version,
                found: s.version,
            })
        } else {
            Err(SealError::BadEpoch {
                position,
                previous: prev.epoch,
                found: s.epoch,
            })
        };
    }
    let sig = next.signature.ok_or(SealError::SignaturePresence {
        position,
        message: "a seal after seal 0 must carry a threshold signature",
    })?;
    let bad = SealError::BadSignature {
        position,
        group_key: prev.group_key,
    };
    let key = crate::ed25519::verifying_key(&prev.group_key.0).map_err(|_| bad.clone())?;
    key.verify_strict(&s.signing_bytes(), &Signature::from_bytes(&sig.0))
        .map_err(|_| bad)?;
    let attested = next
        .attested
        .as_ref()
        .ok_or(SealError::AttestationPresence {
            position,
            message: "a seal after seal 0 must carry the attestations of its ledger head",
        })?;
    attested
        .verify(&s.digest(), &prev.membership)
        .map_err(|error| SealError::Attestation { position, error })
}
