//! A validator's independent constitutional review of a proposal: a pure
//! function of the active layer, the active seal and the proposal, so every
//! honest validator reaches the same verdict.

use senatus_genesis::{Digest, PolicyLayer, PolicyVersion, Seal};

use super::proposal::Proposal;

/// The verdict of a review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Review {
    /// Every rule holds.
    Approve,
    /// Every rule that fails, in the order they are checked (never empty).
    Reject(Vec<RejectReason>),
}

/// One rule a proposal breaks. The message carries the values; [`code`]
/// is the stable string a vote carries.
///
/// [`code`]: RejectReason::code
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// The proposal amends a version other than the active one.
    #[error("stale base: proposal amends version {found}, the active version is {active}")]
    StaleBaseVersion {
        /// The active version.
        active: PolicyVersion,
        /// The proposal's base version.
        found: PolicyVersion,
    },
    /// The proposal names a seal other than the active one.
    #[error("stale base: proposal names seal {found}, the active seal is {active}")]
    StaleBaseSeal {
        /// The active seal's digest.
        active: Digest,
        /// The proposal's base seal digest.
        found: Digest,
    },
    /// The layer is over the active constitution's `limits.layer_bytes_max`.
    #[error("proposed layer is {bytes} bytes, over the active limits.layer_bytes_max = {max}")]
    LayerTooLarge {
        /// Layer length.
        bytes: u64,
        /// The active limit.
        max: u64,
    },
    /// The layer does not decode or fails validation against its own
    /// schema and constitution; rules that need the parsed layer are then
    /// not checked.
    #[error("proposed layer is invalid: {error}")]
    LayerInvalid {
        /// The `PolicyError` text.
        error: String,
    },
    /// The new constitution's version is not the active version plus one.
    #[error("proposed constitution has version {found}, want {expected} (active + 1)")]
    WrongVersion {
        /// Active version + 1.
        expected: u64,
        /// The proposed constitution's version.
        found: u64,
    },
    /// An immutable clause of the active layer has no file in the new one.
    #[error("immutable clause `{id}` is removed: the proposed layer has no policies/{id}.cedar")]
    ImmutableClauseRemoved {
        /// The clause id.
        id: String,
    },
    /// An immutable clause of the active layer has different text.
    #[error(
        "immutable clause `{id}` is changed: the active constitution seals digest {expected}, the proposed policies/{id}.cedar has {found}"
    )]
    ImmutableClauseChanged {
        /// The clause id.
        id: String,
        /// The digest the active constitution seals.
        expected: Digest,
        /// The digest of the proposed text.
        found: Digest,
    },
    /// An immutable clause of the active layer is missing from the new
    /// constitution's `immutable_clauses` (so a later amendment could
    /// change it).
    #[error(
        "immutable clause `{id}` is dropped from the proposed constitution's immutable_clauses"
    )]
    ImmutableClauseUnlisted {
        /// The clause id.
        id: String,
    },
    /// The new amendment threshold is below the active floor.
    #[error(
        "proposed amendment.threshold {threshold} is below the active amendment.threshold_floor {floor}"
    )]
    ThresholdBelowFloor {
        /// The proposed threshold.
        threshold: u16,
        /// The active floor.
        floor: u16,
    },
    /// The new floor is below the active floor.
    #[error("proposed amendment.threshold_floor {found} is below the active floor {active}")]
    FloorLowered {
        /// The active floor.
        active: u16,
        /// The proposed floor.
        found: u16,
    },
    /// The new `amendment.validators` is not the active membership size
    /// (membership changes by epoch handover, not by amendment).
    #[error(
        "proposed amendment.validators is {found}, the active membership has {membership} validators"
    )]
    ValidatorsChanged {
        /// Validators in the active seal.
        membership: usize,
        /// The proposed count.
        found: u16,
    },
}

impl RejectReason {
    /// The stable code a vote carries: a kebab-case kind, then `:` and the
    /// clause id for the clause rules. Codes never contain values that
    /// depend on a library's wording, so honest validators' votes agree
    /// byte for byte.
    pub fn code(&self) -> String {
        match self {
            RejectReason::StaleBaseVersion { .. } => "stale-base-version".into(),
            RejectReason::StaleBaseSeal { .. } => "stale-base-seal".into(),
            RejectReason::LayerTooLarge { .. } => "layer-too-large".into(),
            RejectReason::LayerInvalid { .. } => "layer-invalid".into(),
            RejectReason::WrongVersion { .. } => "wrong-version".into(),
            RejectReason::ImmutableClauseRemoved { id } => format!("immutable-clause-removed:{id}"),
            RejectReason::ImmutableClauseChanged { id, .. } => {
                format!("immutable-clause-changed:{id}")
            }
            RejectReason::ImmutableClauseUnlisted { id } => {
                format!("immutable-clause-unlisted:{id}")
            }
            RejectReason::ThresholdBelowFloor { .. } => "threshold-below-floor".into(),
            RejectReason::FloorLowered { .. } => "floor-lowered".into(),
            RejectReason::ValidatorsChanged { .. } => "validators-changed".into(),
        }
    }
}

/// Reviews `proposal` against the active layer and seal. Returns every
/// applicable reason, checked in this order: base version, base seal, size
/// against the active `limits.layer_bytes_max`, then the layer must decode
/// and validate (if it does not, the rules below cannot be evaluated and
/// are not reported), then the new constitution's version, each active
/// immutable clause (removed or changed, then dropped from the list, in the
/// active list's order), the threshold against the active floor, the floor
/// itself, and `amendment.validators` against the membership.
///
/// Admission (who proposed it, the signature) is checked before, by
/// [`crate::amend::admit`].
pub fn review(active: &PolicyLayer, active_seal: &Seal, proposal: &Proposal) -> Review {
    let mut reasons = Vec::new();
    let c = active.constitution();
    // The active seal is authoritative; the layer's own version equals it
    // whenever the node's state is consistent (the genesis lock).
    if proposal.base_version != active_seal.version {
        reasons.push(RejectReason::StaleBaseVersion {
            active: active_seal.version,
            found: proposal.base_version,
        });
    }
    let active_digest = active_seal.digest();
    if proposal.base_seal_digest != active_digest {
        reasons.push(RejectReason::StaleBaseSeal {
            active: active_digest,
            found: proposal.base_seal_digest,
        });
    }
    let max = u64::from(c.limits.layer_bytes_max);
    let bytes = proposal.layer.len() as u64;
    if bytes > max {
        reasons.push(RejectReason::LayerTooLarge { bytes, max });
        // Parsing a layer over the active bound is work the constitution
        // says no validator owes anyone.
        return Review::Reject(reasons);
    }
    let new = match PolicyLayer::from_canonical_bytes(&proposal.layer) {
        Ok(layer) => layer,
        Err(e) => {
            reasons.push(RejectReason::LayerInvalid {
                error: e.to_string(),
            });
            return Review::Reject(reasons);
        }
    };
    let nc = new.constitution();
    let expected = active_seal.version.0.saturating_add(1);
    if nc.version != expected {
        reasons.push(RejectReason::WrongVersion {
            expected,
            found: nc.version,
        });
    }
    for clause in &c.immutable_clauses {
        match new.clause_text(&clause.id) {
            None => reasons.push(RejectReason::ImmutableClauseRemoved {
                id: clause.id.clone(),
            }),
            Some(text) => {
                let found = senatus_genesis::policy::clause_digest(&clause.id, text);
                if found != clause.sha3 {
                    reasons.push(RejectReason::ImmutableClauseChanged {
                        id: clause.id.clone(),
                        expected: clause.sha3,
                        found,
                    });
                }
            }
        }
        // A valid layer's listed digests match its files, so a listed clause
        // whose text is unchanged is listed with the active digest.
        if !nc.is_immutable(&clause.id) {
            reasons.push(RejectReason::ImmutableClauseUnlisted {
                id: clause.id.clone(),
            });
        }
    }
    let (a, na) = (&c.amendment, &nc.amendment);
    if na.threshold < a.threshold_floor {
        reasons.push(RejectReason::ThresholdBelowFloor {
            threshold: na.threshold,
            floor: a.threshold_floor,
        });
    }
    if na.threshold_floor < a.threshold_floor {
        reasons.push(RejectReason::FloorLowered {
            active: a.threshold_floor,
            found: na.threshold_floor,
        });
    }
    if usize::from(na.validators) != active_seal.membership.len() {
        reasons.push(RejectReason::ValidatorsChanged {
            membership: active_seal.membership.len(),
            found: na.validators,
        });
    }
    if reasons.is_empty() {
        Review::Approve
    } else {
        Review::Reject(reasons)
    }
}
