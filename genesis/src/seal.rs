//! Seals: the chain of threshold-signed statements "policy version V with
//! digest D is active for epoch E under group key K and this membership".
//!
//! Seal 0 is derived from genesis and authenticated by the genesis signature.
//! Every later seal is a plain Ed25519 signature (produced with FROST) under
//! the group key of the seal before it, so a verifier holding only genesis
//! can follow the chain.

use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::codec::{Digest, Encoder, sha3};
use crate::document::{Genesis, Key32, Sig64, Validator};
use crate::ids::{Epoch, PolicyVersion};

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

/// Checks that `next` validly follows `prev` (position is for messages).
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
    let key = VerifyingKey::from_bytes(&prev.group_key.0).map_err(|_| bad.clone())?;
    key.verify_strict(&s.signing_bytes(), &Signature::from_bytes(&sig.0))
        .map_err(|_| bad)
}
