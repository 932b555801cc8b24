//! The seal a passed amendment makes: the active seal with the version one
//! higher, the new policy digest and the active seal as its predecessor.
//! Its signature is FROST (see [`crate::signing`]) by approvers; chain
//! verification is `senatus_genesis::seal::verify_successor`, unchanged.

use senatus_genesis::{Digest, NodeId, PolicyVersion, Seal};

use super::tally::PassedAmendment;

/// Why a passed amendment cannot be sealed on top of `active_seal`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NextSealError {
    /// The amendment was proposed on another seal than the one given.
    #[error("amendment is based on seal {found}, the active seal is {active}")]
    BaseSeal {
        /// The active seal's digest.
        active: Digest,
        /// The proposal's base seal.
        found: Digest,
    },
    /// The amendment was proposed on another version than the one given.
    #[error("amendment is based on version {found}, the active version is {active}")]
    BaseVersion {
        /// The active version.
        active: PolicyVersion,
        /// The proposal's base version.
        found: PolicyVersion,
    },
    /// The active version is `u64::MAX`.
    #[error("policy version {0} cannot be incremented")]
    VersionOverflow(PolicyVersion),
    /// Fewer approvers than the seal's FROST threshold.
    #[error("{approvers} approvers cannot sign a seal with threshold {threshold}")]
    TooFewApprovers {
        /// Approvers.
        approvers: usize,
        /// The seal's threshold.
        threshold: u16,
    },
}

impl PassedAmendment {
    /// The next seal: `version + 1`, the proposed layer's digest,
    /// `prev_seal` = the active seal's digest, and the active seal's epoch,
    /// threshold, group key and membership. The bytes every approver signs
    /// are its `signing_bytes()`; each approver computes them itself from
    /// its own tally and refuses to sign anything else (I2).
    pub fn next_seal(&self, active_seal: &Seal) -> Result<Seal, NextSealError> {
        let p = self.proposal().proposal();
        let active = active_seal.digest();
        if p.base_seal_digest != active {
            return Err(NextSealError::BaseSeal {
                active,
                found: p.base_seal_digest,
            });
        }
        if p.base_version != active_seal.version {
            return Err(NextSealError::BaseVersion {
                active: active_seal.version,
                found: p.base_version,
            });
        }
        let version = active_seal
            .version
            .0
            .checked_add(1)
            .ok_or(NextSealError::VersionOverflow(active_seal.version))?;
        Ok(Seal {
            version: PolicyVersion(version),
            // SHA3-256 of the canonical layer bytes, which is the digest of
            // the layer they decode to (PROTOCOL.md section 2).
            policy_digest: p.layer_digest(),
            prev_seal: active,
            epoch: active_seal.epoch,
            threshold: active_seal.threshold,
            group_key: active_seal.group_key,
            membership: active_seal.membership.clone(),
        })
    }

    /// Who signs the next seal: the first `threshold` approvers (of the
    /// active seal), in ledger order.
    pub fn signers(&self, active_seal: &Seal) -> Result<&[NodeId], NextSealError> {
        let t = usize::from(active_seal.threshold);
        self.approvers()
            .get(..t)
            .ok_or(NextSealError::TooFewApprovers {
                approvers: self.approvers().len(),
                threshold: active_seal.threshold,
            })
    }
}
