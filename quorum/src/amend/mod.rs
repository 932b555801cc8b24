//! Policy amendments, the pure core: proposals, their admission, each
//! validator's independent constitutional review, signed votes, the tally
//! that turns votes in ledger order into an outcome, and the next seal of a
//! passed amendment.
//!
//! # The flow (DESIGN.md, "Amend")
//!
//! 1. A proposer signs a [`Proposal`] with its Ed25519 identity key; the
//!    [`SignedProposal`] is the payload of a Proposal ledger entry (kind 4).
//! 2. Every validator [`admit`]s it on apply: sizes within bounds, the key is
//!    authorized (founding authority, an active validator, or listed in the
//!    active constitution's `amendment.proposers`) and the signature verifies
//!    strictly. An inadmissible proposal is not a proposal at all: it is
//!    never reviewed, never tallied, and votes naming it are refused.
//! 3. Every validator [`review`]s an admitted proposal against its own
//!    active layer and seal and signs a [`Vote`] whose verdict follows from
//!    the review ([`Vote::from_review`]); the [`SignedVote`] is the payload of
//!    a Vote entry (kind 5).
//! 4. Every validator feeds proposals and votes, in ledger order, to its
//!    [`Tally`]. The outcome depends only on the ledger, so every honest
//!    validator reaches the same one at the same ledger index (I7).
//! 5. At `t` approvals the first `t` approvers threshold-sign
//!    [`PassedAmendment::next_seal`] with the FROST code in
//!    [`crate::signing`]; each node checks it with
//!    `senatus_genesis::seal::verify_successor` before swapping its policy.
//!
//! # Byte strings (version 1; `docs/PROTOCOL.md` section 16)
//!
//! ```text
//! proposal_signing_bytes =
//!     "senatus/amendment-proposal/v1" 0x00
//!     u64      base_version          the active policy version
//!     fixed32  base_seal             digest of the active seal
//!     bytes    layer                 policy_layer_bytes of the new layer
//!     str      justification         at most JUSTIFICATION_BYTES_MAX bytes
//!     fixed32  proposer              Ed25519 public key
//!     u64      created_at_ms
//! proposal_id     = SHA3-256(proposal_signing_bytes)
//! signed_proposal = proposal_signing_bytes || 64-byte Ed25519 signature
//!
//! vote_signing_bytes =
//!     "senatus/amendment-vote/v1" 0x00
//!     fixed32  proposal_id
//!     u64      voter                 node id 1..=65535
//!     u8       verdict               1 approve, 2 reject, 3 recuse
//!     list<str> reasons              reject: 1..=32 codes, sorted, unique;
//!                                    approve and recuse: none
//! signed_vote = vote_signing_bytes || 64-byte Ed25519 signature
//! ```

mod proposal;
mod review;
mod seal;
mod tally;
mod vote;

pub use proposal::{
    AdmissionError, AdmittedProposal, JUSTIFICATION_BYTES_MAX, PROPOSAL_OBJECT,
    PROPOSAL_OVERHEAD_BYTES, PROPOSAL_VERSION, Proposal, ProposalDecodeError, ProposalId,
    ProposerRole, SIGNATURE_BYTES, SignedProposal, admit,
};
pub use review::{RejectReason, Review, review};
pub use seal::NextSealError;
pub use tally::{PROPOSALS_MAX, PassedAmendment, Status, Tally, TallyError, TallyEvent};
pub use vote::{
    Equivocation, EvidenceError, REASON_BYTES_MAX, REASONS_MAX, SIGNED_VOTE_BYTES_MAX, SignedVote,
    VOTE_OBJECT, VOTE_VERSION, Verdict, Vote, VoteDecodeError, VoteError,
};
