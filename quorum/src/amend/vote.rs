//! Signed votes on proposals, their verification against the membership,
//! and equivocation evidence (two different signed votes of one validator
//! on one proposal) that anyone can re-verify.

use ed25519_dalek::{Signature, Signer as _, SigningKey};
use senatus_genesis::codec::{self, Decoder};
use senatus_genesis::{Encoder, Key32, NodeId, Sig64, Validator};

use super::proposal::{ProposalId, SIGNATURE_BYTES};
use super::review::{RejectReason, Review};

/// Domain-separation object name of a vote.
pub const VOTE_OBJECT: &str = "amendment-vote";
/// Version of the vote encoding.
pub const VOTE_VERSION: u8 = 1;
/// Most reason codes one rejection carries.
pub const REASONS_MAX: usize = 32;
/// Longest reason code, in bytes (a kind plus a 64-byte clause id fits).
pub const REASON_BYTES_MAX: usize = 128;
/// Largest signed vote: tag, proposal id, voter, verdict, reason count,
/// [`REASONS_MAX`] reasons of [`REASON_BYTES_MAX`] bytes, signature.
pub const SIGNED_VOTE_BYTES_MAX: usize = "senatus/amendment-vote/v1\0".len()
    + 32
    + 8
    + 1
    + 4
    + REASONS_MAX * (4 + REASON_BYTES_MAX)
    + SIGNATURE_BYTES;

const APPROVE: u8 = 1;
const REJECT: u8 = 2;
const RECUSE: u8 = 3;

/// How a validator votes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Seal it.
    Approve,
    /// Do not seal it, for these reasons: [`RejectReason::code`]s, sorted
    /// bytewise and unique, 1..=[`REASONS_MAX`] of them.
    Reject(Vec<String>),
    /// Abstain explicitly (counts toward neither side, but no longer toward
    /// a possible approval; see [`crate::amend::Tally`]).
    Recuse,
}

impl Verdict {
    /// The wire code: 1 approve, 2 reject, 3 recuse.
    pub fn code(&self) -> u8 {
        match self {
            Verdict::Approve => APPROVE,
            Verdict::Reject(_) => REJECT,
            Verdict::Recuse => RECUSE,
        }
    }

    /// `"approve"`, `"reject"` or `"recuse"`.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Reject(_) => "reject",
            Verdict::Recuse => "recuse",
        }
    }
}

/// One validator's vote on one proposal. The slot is `(proposal, voter)`:
/// nothing else (no time, no ledger index) is signed, so an honest
/// validator that votes again after a restart signs the identical bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    /// The proposal voted on.
    pub proposal: ProposalId,
    /// The voter.
    pub voter: NodeId,
    /// The verdict.
    pub verdict: Verdict,
}

/// Why a vote is malformed, not a member's, or not signed by it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoteError {
    /// The voter is not in the active membership.
    #[error("voter {voter} is not a member of the active validator set")]
    NotMember {
        /// The voter.
        voter: NodeId,
    },
    /// The signature does not verify under the voter's identity key.
    #[error(
        "vote of {voter} on proposal {proposal} does not verify under its identity key {identity_key}"
    )]
    BadSignature {
        /// The voter.
        voter: NodeId,
        /// The proposal.
        proposal: ProposalId,
        /// The key it was checked against.
        identity_key: Key32,
    },
    /// A reject without reasons.
    #[error("a reject vote must carry at least one reason")]
    NoReasons,
    /// More than [`REASONS_MAX`] reasons.
    #[error("vote carries {count} reasons, at most {REASONS_MAX} are allowed")]
    TooManyReasons {
        /// How many.
        count: usize,
    },
    /// A reason that is empty, too long or outside `[a-z0-9._:-]`.
    #[error("reason {reason:?} is not 1..={REASON_BYTES_MAX} bytes of [a-z0-9._:-]")]
    BadReason {
        /// The reason (at most [`REASON_BYTES_MAX`] characters of it).
        reason: String,
    },
    /// Reasons not strictly ascending (unsorted or duplicated).
    #[error("reason {found:?} after {previous:?}: reasons must be sorted and unique")]
    ReasonsNotSorted {
        /// The reason before.
        previous: String,
        /// The reason out of place.
        found: String,
    },
}

/// Why bytes are not a signed vote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoteDecodeError {
    /// Longer than [`SIGNED_VOTE_BYTES_MAX`]; refused before reading.
    #[error("amendment vote is {bytes} bytes, over the {SIGNED_VOTE_BYTES_MAX}-byte limit")]
    TooLarge {
        /// Input length.
        bytes: usize,
    },
    /// Tag, truncation, UTF-8 or trailing bytes.
    #[error("amendment vote: {0}")]
    Encoding(#[from] codec::DecodeError),
    /// The voter field is not a node id.
    #[error("amendment vote: voter {0} is outside 1..=65535")]
    Voter(u64),
    /// A verdict code other than 1, 2, 3.
    #[error("amendment vote: unknown verdict code {0}")]
    UnknownVerdict(u8),
    /// An approve (1) or recuse (3) that carries reasons.
    #[error("amendment vote: verdict code {verdict} carries {count} reasons, want none")]
    UnexpectedReasons {
        /// The verdict code.
        verdict: u8,
        /// Reasons found.
        count: usize,
    },
    /// Decodes, but the reasons break a rule.
    #[error("amendment vote: {0}")]
    Invalid(#[from] VoteError),
}

fn check_reason(r: &str) -> Result<(), VoteError> {
    let ok = !r.is_empty()
        && r.len() <= REASON_BYTES_MAX
        && r.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b':' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(VoteError::BadReason {
            reason: r.chars().take(REASON_BYTES_MAX).collect(),
        })
    }
}

impl Vote {
    /// The vote that follows from `review`: approve, or reject with the
    /// sorted, unique codes of its reasons.
    pub fn from_review(proposal: ProposalId, voter: NodeId, review: &Review) -> Vote {
        let verdict = match review {
            Review::Approve => Verdict::Approve,
            Review::Reject(reasons) => Verdict::Reject(codes(reasons)),
        };
        Vote {
            proposal,
            voter,
            verdict,
        }
    }

    /// Checks the reasons: none unless rejecting; when rejecting
    /// 1..=[`REASONS_MAX`] codes of `[a-z0-9._:-]`, strictly ascending.
    pub fn validate(&self) -> Result<(), VoteError> {
        let Verdict::Reject(reasons) = &self.verdict else {
            return Ok(());
        };
        if reasons.is_empty() {
            return Err(VoteError::NoReasons);
        }
        if reasons.len() > REASONS_MAX {
            return Err(VoteError::TooManyReasons {
                count: reasons.len(),
            });
        }
        for (i, r) in reasons.iter().enumerate() {
            check_reason(r)?;
            if i > 0 && reasons[i - 1].as_bytes() >= r.as_bytes() {
                return Err(VoteError::ReasonsNotSorted {
                    previous: reasons[i - 1].clone(),
                    found: r.clone(),
                });
            }
        }
        Ok(())
    }

    /// The exact bytes the voter signs (see the module documentation of
    /// [`crate::amend`]).
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::new(VOTE_OBJECT, VOTE_VERSION);
        e.digest(&self.proposal.0)
            .u64(self.voter.get())
            .u8(self.verdict.code());
        match &self.verdict {
            Verdict::Reject(reasons) => {
                e.count(reasons.len());
                for r in reasons {
                    e.str(r);
                }
            }
            Verdict::Approve | Verdict::Recuse => {
                e.count(0);
            }
        }
        e.finish()
    }

    /// Validates, then signs with the voter's identity key.
    pub fn sign(self, key: &SigningKey) -> Result<SignedVote, VoteError> {
        self.validate()?;
        let signature = Sig64(key.sign(&self.signing_bytes()).to_bytes());
        Ok(SignedVote {
            vote: self,
            signature,
        })
    }
}

/// The stable, sorted, unique codes of `reasons` (at most [`REASONS_MAX`];
/// a review yields far fewer distinct codes than that for any real layer,
/// and the excess would only repeat the same kinds for more clauses).
fn codes(reasons: &[RejectReason]) -> Vec<String> {
    let set: std::collections::BTreeSet<String> = reasons.iter().map(RejectReason::code).collect();
    set.into_iter().take(REASONS_MAX).collect()
}

/// A vote with the voter's signature: the payload of a Vote ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedVote {
    /// The content.
    pub vote: Vote,
    /// Ed25519 signature by the voter's identity key over the signing bytes.
    pub signature: Sig64,
}

impl SignedVote {
    /// The wire form: signing bytes, then the 64 signature bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.vote.signing_bytes();
        out.extend_from_slice(&self.signature.0);
        out
    }

    /// Strict inverse of [`SignedVote::encode`]: bounded, reasons only on a
    /// rejection and sorted, no trailing bytes. Does not check the
    /// signature: see [`SignedVote::verify`].
    pub fn decode(bytes: &[u8]) -> Result<Self, VoteDecodeError> {
        if bytes.len() > SIGNED_VOTE_BYTES_MAX {
            return Err(VoteDecodeError::TooLarge { bytes: bytes.len() });
        }
        let mut d = Decoder::new(bytes, VOTE_OBJECT, VOTE_VERSION)?;
        let proposal = ProposalId(d.digest("proposal")?);
        let raw_voter = d.u64("voter")?;
        let voter = NodeId::new(raw_voter).map_err(|_| VoteDecodeError::Voter(raw_voter))?;
        let code = d.u8("verdict")?;
        let count = d.u32("reasons")? as usize;
        if count > REASONS_MAX {
            return Err(VoteError::TooManyReasons { count }.into());
        }
        let mut reasons = Vec::with_capacity(count);
        for _ in 0..count {
            reasons.push(d.str("reason")?.to_string());
        }
        let verdict = match code {
            APPROVE | RECUSE if !reasons.is_empty() => {
                return Err(VoteDecodeError::UnexpectedReasons {
                    verdict: code,
                    count: reasons.len(),
                });
            }
            APPROVE => Verdict::Approve,
            RECUSE => Verdict::Recuse,
            REJECT => Verdict::Reject(reasons),
            other => return Err(VoteDecodeError::UnknownVerdict(other)),
        };
        let signature = d.array::<SIGNATURE_BYTES>("signature")?;
        d.finish()?;
        let vote = Vote {
            proposal,
            voter,
            verdict,
        };
        vote.validate()?;
        let out = SignedVote {
            vote,
            signature: Sig64(signature),
        };
        debug_assert_eq!(out.encode(), bytes);
        Ok(out)
    }

    /// Checks the vote against `membership` (the active seal's): the voter
    /// is a member, the reasons are well formed, and the signature verifies
    /// strictly under the voter's identity key.
    pub fn verify(&self, membership: &[Validator]) -> Result<(), VoteError> {
        let v = &self.vote;
        let member = membership
            .iter()
            .find(|m| m.id == v.voter)
            .ok_or(VoteError::NotMember { voter: v.voter })?;
        v.validate()?;
        let bad = VoteError::BadSignature {
            voter: v.voter,
            proposal: v.proposal,
            identity_key: member.identity_key,
        };
        let key = senatus_genesis::ed25519::verifying_key(&member.identity_key.0)
            .map_err(|_| bad.clone())?;
        key.verify_strict(
            &v.signing_bytes(),
            &Signature::from_bytes(&self.signature.0),
        )
        .map_err(|_| bad)
    }
}

/// Two different votes, both validly signed by one validator, on one
/// proposal (I8). Self-contained: anyone holding the membership re-verifies
/// it with [`Equivocation::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Equivocation {
    /// The vote seen first (in ledger order).
    pub first: SignedVote,
    /// The conflicting vote seen later.
    pub second: SignedVote,
}

/// Why equivocation evidence does not hold up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    /// The two votes are by different voters.
    #[error("evidence names two voters, {first} and {second}")]
    DifferentVoters {
        /// Voter of the first vote.
        first: NodeId,
        /// Voter of the second.
        second: NodeId,
    },
    /// The two votes are on different proposals (a validator may vote on
    /// every proposal).
    #[error("evidence names two proposals, {first} and {second}")]
    DifferentProposals {
        /// Proposal of the first vote.
        first: ProposalId,
        /// Proposal of the second.
        second: ProposalId,
    },
    /// The two votes sign identical bytes: a repeat, not a conflict.
    #[error("the two votes of {voter} are identical; a repeated vote is not equivocation")]
    SameContent {
        /// The voter.
        voter: NodeId,
    },
    /// One of the votes does not verify.
    #[error("{which} vote: {error}")]
    Vote {
        /// `"first"` or `"second"`.
        which: &'static str,
        /// Why.
        error: VoteError,
    },
}

impl Equivocation {
    /// Checks the evidence: same voter, same proposal, different signed
    /// bytes, and both signatures valid under that member's identity key.
    /// Returns the culprit.
    pub fn verify(&self, membership: &[Validator]) -> Result<NodeId, EvidenceError> {
        let (a, b) = (&self.first.vote, &self.second.vote);
        if a.voter != b.voter {
            return Err(EvidenceError::DifferentVoters {
                first: a.voter,
                second: b.voter,
            });
        }
        if a.proposal != b.proposal {
            return Err(EvidenceError::DifferentProposals {
                first: a.proposal,
                second: b.proposal,
            });
        }
        if a.signing_bytes() == b.signing_bytes() {
            return Err(EvidenceError::SameContent { voter: a.voter });
        }
        self.first
            .verify(membership)
            .map_err(|error| EvidenceError::Vote {
                which: "first",
                error,
            })?;
        self.second
            .verify(membership)
            .map_err(|error| EvidenceError::Vote {
                which: "second",
                error,
            })?;
        Ok(a.voter)
    }

    /// The voter the evidence names (check it with [`Equivocation::verify`]).
    pub fn voter(&self) -> NodeId {
        self.first.vote.voter
    }

    /// The proposal the votes are on.
    pub fn proposal(&self) -> ProposalId {
        self.first.vote.proposal
    }
}
