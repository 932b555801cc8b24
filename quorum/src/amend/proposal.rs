//! Amendment proposals: content, canonical signing bytes, the signed wire
//! form, and admission (size bounds, an authorized proposer, a valid
//! signature).

use std::fmt;

use ed25519_dalek::{Signature, Signer as _, SigningKey};
use senatus_genesis::codec::{self, Decoder};
use senatus_genesis::policy::LAYER_BYTES_HARD_MAX;
use senatus_genesis::{Digest, Encoder, Key32, NodeId, PolicyLayer, PolicyVersion, Seal, Sig64};

/// Domain-separation object name of a proposal.
pub const PROPOSAL_OBJECT: &str = "amendment-proposal";
/// Version of the proposal encoding.
pub const PROPOSAL_VERSION: u8 = 1;
/// Longest justification, in bytes of UTF-8.
pub const JUSTIFICATION_BYTES_MAX: usize = 4096;
/// Length of an Ed25519 signature.
pub const SIGNATURE_BYTES: usize = 64;
/// Bytes of a signed proposal besides the layer and justification bodies:
/// tag, base version, base seal, two length prefixes, proposer, creation
/// time and signature.
pub const PROPOSAL_OVERHEAD_BYTES: usize =
    "senatus/amendment-proposal/v1\0".len() + 8 + 32 + 4 + 4 + 32 + 8 + SIGNATURE_BYTES;

/// A proposal's id: the SHA3-256 of its signing bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProposalId(pub Digest);

impl fmt::Debug for ProposalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProposalId({})", self.0)
    }
}

impl fmt::Display for ProposalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// What a proposer asks the validators to seal next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The policy version active when it was proposed.
    pub base_version: PolicyVersion,
    /// Digest of the seal active when it was proposed.
    pub base_seal_digest: Digest,
    /// Canonical bytes of the proposed layer
    /// (`PolicyLayer::canonical_bytes`); carried unparsed so that a layer
    /// that fails validation is reviewed (and rejected, with its error)
    /// rather than undecodable.
    pub layer: Vec<u8>,
    /// Why: free UTF-8 text, at most [`JUSTIFICATION_BYTES_MAX`] bytes.
    pub justification: String,
    /// The proposer's Ed25519 public key.
    pub proposer: Key32,
    /// The proposer's clock when it signed, Unix milliseconds
    /// (informational; signed, so two otherwise equal proposals differ).
    pub created_at_ms: u64,
}

impl Proposal {
    /// The exact bytes the proposer signs (see the module documentation).
    ///
    /// # Panics
    /// If the layer or justification is longer than `u32::MAX` bytes;
    /// [`admit`] and [`SignedProposal::decode`] bound both far below that.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::new(PROPOSAL_OBJECT, PROPOSAL_VERSION);
        e.u64(self.base_version.0)
            .digest(&self.base_seal_digest)
            .bytes(&self.layer)
            .str(&self.justification)
            .fixed32(&self.proposer.0)
            .u64(self.created_at_ms);
        e.finish()
    }

    /// The proposal id: SHA3-256 of [`Proposal::signing_bytes`].
    pub fn id(&self) -> ProposalId {
        ProposalId(senatus_genesis::sha3(&self.signing_bytes()))
    }

    /// SHA3-256 of the layer bytes: the policy digest the next seal will
    /// carry if this proposal passes.
    pub fn layer_digest(&self) -> Digest {
        senatus_genesis::sha3(&self.layer)
    }

    /// Signs with `key`, which must be the key named in `proposer`.
    pub fn sign(self, key: &SigningKey) -> Result<SignedProposal, AdmissionError> {
        let signing_key = Key32(key.verifying_key().to_bytes());
        if signing_key != self.proposer {
            return Err(AdmissionError::SigningKeyMismatch {
                proposer: self.proposer,
                signing_key,
            });
        }
        let signature = Sig64(key.sign(&self.signing_bytes()).to_bytes());
        Ok(SignedProposal {
            proposal: self,
            signature,
        })
    }
}

/// A proposal with its proposer's signature: the payload of a Proposal
/// ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedProposal {
    /// The content.
    pub proposal: Proposal,
    /// Ed25519 signature by `proposal.proposer` over the signing bytes.
    pub signature: Sig64,
}

/// Why bytes are not a signed proposal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalDecodeError {
    /// The input is longer than any proposal the bound allows; refused
    /// before anything is read.
    #[error("amendment proposal is {bytes} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Input length.
        bytes: usize,
        /// The limit (overhead + layer bound + justification bound).
        max: usize,
    },
    /// Tag, truncation, UTF-8 or trailing bytes.
    #[error("amendment proposal: {0}")]
    Encoding(#[from] codec::DecodeError),
    /// The layer is longer than the bound the caller gave (the active
    /// constitution's `limits.layer_bytes_max`).
    #[error("amendment proposal layer is {bytes} bytes, over the limit of {max}")]
    LayerTooLarge {
        /// Layer length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The justification is longer than [`JUSTIFICATION_BYTES_MAX`].
    #[error(
        "amendment proposal justification is {bytes} bytes, over the {JUSTIFICATION_BYTES_MAX}-byte limit"
    )]
    JustificationTooLong {
        /// Its length.
        bytes: usize,
    },
}

impl SignedProposal {
    /// The wire form: signing bytes, then the 64 signature bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.proposal.signing_bytes();
        out.extend_from_slice(&self.signature.0);
        out
    }

    /// The proposal id.
    pub fn id(&self) -> ProposalId {
        self.proposal.id()
    }

    /// Strict inverse of [`SignedProposal::encode`]: the tag, every length
    /// against the input, the layer against `layer_bytes_max` (pass the
    /// active constitution's `limits.layer_bytes_max`; it is capped at
    /// `LAYER_BYTES_HARD_MAX`), the justification against
    /// [`JUSTIFICATION_BYTES_MAX`], and no trailing bytes. Does not parse the
    /// layer or check the signature: see [`admit`] and [`review`](crate::amend::review()).
    pub fn decode(bytes: &[u8], layer_bytes_max: u32) -> Result<Self, ProposalDecodeError> {
        let layer_max = layer_bytes_max.min(LAYER_BYTES_HARD_MAX) as usize;
        let max = PROPOSAL_OVERHEAD_BYTES + layer_max + JUSTIFICATION_BYTES_MAX;
        if bytes.len() > max {
            return Err(ProposalDecodeError::TooLarge {
                bytes: bytes.len(),
                max,
            });
        }
        let mut d = Decoder::new(bytes, PROPOSAL_OBJECT, PROPOSAL_VERSION)?;
        let base_version = PolicyVersion(d.u64("base_version")?);
        let base_seal_digest = d.digest("base_seal")?;
        // The decoder borrows; nothing is copied before the bound is checked.
        let layer = d.bytes("layer")?;
        if layer.len() > layer_max {
            return Err(ProposalDecodeError::LayerTooLarge {
                bytes: layer.len(),
                max: layer_max,
            });
        }
        let justification = d.str("justification")?;
        if justification.len() > JUSTIFICATION_BYTES_MAX {
            return Err(ProposalDecodeError::JustificationTooLong {
                bytes: justification.len(),
            });
        }
        let proposer = Key32(d.fixed32("proposer")?);
        let created_at_ms = d.u64("created_at_ms")?;
        let signature = d.array::<SIGNATURE_BYTES>("signature")?;
        d.finish()?;
        let out = SignedProposal {
            proposal: Proposal {
                base_version,
                base_seal_digest,
                layer: layer.to_vec(),
                justification: justification.to_string(),
                proposer,
                created_at_ms,
            },
            signature: Sig64(signature),
        };
        debug_assert_eq!(out.encode(), bytes);
        Ok(out)
    }
}

/// On whose authority a proposal was admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposerRole {
    /// The genesis founding authority key.
    Authority,
    /// The identity key of this active validator.
    Validator(NodeId),
    /// A key in the active constitution's `amendment.proposers`.
    Listed,
}

/// Why a signed proposal is not admitted. An inadmissible proposal is never
/// reviewed or tallied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    /// The key is neither the founding authority, an active validator's
    /// identity key, nor listed in the active `amendment.proposers`.
    #[error(
        "proposer key {proposer} is not authorized: not the founding authority, not an active validator's identity key, not in amendment.proposers"
    )]
    Unauthorized {
        /// The proposer key.
        proposer: Key32,
    },
    /// The proposer key is not a valid Ed25519 point.
    #[error("proposer key {proposer} is not a valid Ed25519 public key")]
    BadProposerKey {
        /// The proposer key.
        proposer: Key32,
    },
    /// The signature does not verify strictly under the proposer key.
    #[error("proposal {proposal} signature does not verify under proposer key {proposer}")]
    BadSignature {
        /// The proposal id.
        proposal: ProposalId,
        /// The proposer key.
        proposer: Key32,
    },
    /// The layer is over `LAYER_BYTES_HARD_MAX` (a proposal built in memory;
    /// the decoder refuses such bytes already).
    #[error("proposed layer is {bytes} bytes, over the hard ceiling of {max}")]
    LayerTooLarge {
        /// Layer length.
        bytes: usize,
        /// The ceiling.
        max: usize,
    },
    /// The justification is over [`JUSTIFICATION_BYTES_MAX`].
    #[error("justification is {bytes} bytes, over the {JUSTIFICATION_BYTES_MAX}-byte limit")]
    JustificationTooLong {
        /// Its length.
        bytes: usize,
    },
    /// [`Proposal::sign`] was given a key other than the proposer's.
    #[error("signing key {signing_key} is not the proposal's proposer key {proposer}")]
    SigningKeyMismatch {
        /// The key the proposal names.
        proposer: Key32,
        /// The key it was to be signed with.
        signing_key: Key32,
    },
}

/// A proposal that passed admission; only these are reviewed and tallied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmittedProposal {
    signed: SignedProposal,
    id: ProposalId,
    role: ProposerRole,
}

impl AdmittedProposal {
    /// The signed proposal.
    pub fn signed(&self) -> &SignedProposal {
        &self.signed
    }

    /// The proposal content.
    pub fn proposal(&self) -> &Proposal {
        &self.signed.proposal
    }

    /// The proposal id.
    pub fn id(&self) -> ProposalId {
        self.id
    }

    /// On whose authority it was admitted.
    pub fn role(&self) -> ProposerRole {
        self.role
    }
}

/// Admits `signed` under the active state: `authority_key` is the genesis
/// founding authority key, `active` the active policy layer (its
/// `amendment.proposers`), `active_seal` the active seal (its membership).
///
/// Checks, in order: the hard size bounds, that the proposer is authorized,
/// then the signature (strict Ed25519). Whether the proposal is *acceptable*
/// (base, layer, constitution rules) is each validator's [`review`] and vote,
/// not admission.
///
/// [`review`]: crate::amend::review()
pub fn admit(
    signed: SignedProposal,
    authority_key: &Key32,
    active: &PolicyLayer,
    active_seal: &Seal,
) -> Result<AdmittedProposal, AdmissionError> {
    let p = &signed.proposal;
    if p.layer.len() > LAYER_BYTES_HARD_MAX as usize {
        return Err(AdmissionError::LayerTooLarge {
            bytes: p.layer.len(),
            max: LAYER_BYTES_HARD_MAX as usize,
        });
    }
    if p.justification.len() > JUSTIFICATION_BYTES_MAX {
        return Err(AdmissionError::JustificationTooLong {
            bytes: p.justification.len(),
        });
    }
    let role = if p.proposer == *authority_key {
        ProposerRole::Authority
    } else if let Some(v) = active_seal
        .membership
        .iter()
        .find(|v| v.identity_key == p.proposer)
    {
        ProposerRole::Validator(v.id)
    } else if active
        .constitution()
        .amendment
        .proposers
        .contains(&p.proposer)
    {
        ProposerRole::Listed
    } else {
        return Err(AdmissionError::Unauthorized {
            proposer: p.proposer,
        });
    };
    let key = senatus_genesis::ed25519::verifying_key(&p.proposer.0).map_err(|_| {
        AdmissionError::BadProposerKey {
            proposer: p.proposer,
        }
    })?;
    let id = p.id();
    key.verify_strict(
        &p.signing_bytes(),
        &Signature::from_bytes(&signed.signature.0),
    )
    .map_err(|_| AdmissionError::BadSignature {
        proposal: id,
        proposer: p.proposer,
    })?;
    Ok(AdmittedProposal { signed, id, role })
}
