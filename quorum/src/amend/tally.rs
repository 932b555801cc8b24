//! The tally: a deterministic state machine fed proposals and votes in
//! ledger order (with each one's ledger index) that says which proposal, if
//! any, passes. One `Tally` per base: it is built from the active layer and
//! seal, and replaced when a new seal becomes active.
//!
//! Rules (`docs/PROTOCOL.md` 16.5), with `n` validators in the active seal
//! and `t` the active `amendment.threshold`:
//!
//! * a proposal passes at its `t`-th approval; its approvers are exactly the
//!   first `t`, in ledger order;
//! * it is rejected once rejections plus recusals reach `n - t + 1` (then at
//!   most `t - 1` approvals remain possible);
//! * it expires once the ledger index passes `proposed_at + deadline_entries`;
//! * once a proposal passes, every other open proposal on the same base is
//!   superseded and new ones are refused: at most one amendment per base;
//! * once decided, a proposal's outcome never changes; later votes are
//!   recorded (to catch equivocation) but count for nothing;
//! * an identical repeated vote is a no-op; a different vote by the same
//!   voter on the same proposal yields [`Equivocation`] evidence and the
//!   first vote stands.

use std::collections::BTreeMap;

use senatus_genesis::{Digest, LedgerIndex, NodeId, PolicyLayer, PolicyVersion, Seal, Validator};

use super::proposal::{AdmittedProposal, ProposalId};
use super::vote::{Equivocation, SignedVote, Verdict, VoteError};

/// Most proposals open at once on one base; a proposal is open until it
/// passes, is rejected, expires or is superseded.
pub const PROPOSALS_MAX: usize = 64;

/// Where a proposal stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Still collecting votes.
    Open,
    /// Reached `t` approvals at this index.
    Passed {
        /// Ledger index of the deciding vote.
        at: LedgerIndex,
    },
    /// Reached `n - t + 1` rejections and recusals at this index.
    Rejected {
        /// Ledger index of the deciding vote.
        at: LedgerIndex,
    },
    /// The deadline passed; the first ledger index past it.
    Expired {
        /// The ledger index at which the tally saw the deadline had passed.
        at: LedgerIndex,
    },
    /// Another proposal on the same base passed.
    Superseded {
        /// The proposal that passed.
        by: ProposalId,
        /// Ledger index at which it passed.
        at: LedgerIndex,
    },
}

/// What one input did, in the order it happened (the exact list is part of
/// the state machine's contract, so tests compare it whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TallyEvent {
    /// A proposal was opened; it expires after `deadline`.
    Opened {
        /// The proposal.
        proposal: ProposalId,
        /// The last ledger index at which a vote still counts.
        deadline: LedgerIndex,
    },
    /// A vote was counted.
    Counted {
        /// The proposal.
        proposal: ProposalId,
        /// The voter.
        voter: NodeId,
        /// `"approve"`, `"reject"` or `"recuse"`.
        verdict: &'static str,
    },
    /// The identical vote was seen before: nothing changed.
    Repeated {
        /// The proposal.
        proposal: ProposalId,
        /// The voter.
        voter: NodeId,
    },
    /// A first vote on an already decided proposal: recorded, not counted.
    Late {
        /// The proposal.
        proposal: ProposalId,
        /// The voter.
        voter: NodeId,
    },
    /// A voter signed a second, different vote on one proposal.
    Equivocation(Box<Equivocation>),
    /// The proposal passed.
    Passed {
        /// The proposal.
        proposal: ProposalId,
        /// Exactly the first `t` approvers, in ledger order.
        approvers: Vec<NodeId>,
    },
    /// The proposal was rejected.
    Rejected {
        /// The proposal.
        proposal: ProposalId,
        /// Who rejected, in ledger order.
        rejecters: Vec<NodeId>,
        /// Who recused, in ledger order.
        recusers: Vec<NodeId>,
    },
    /// The proposal expired.
    Expired {
        /// The proposal.
        proposal: ProposalId,
    },
    /// The proposal lost to one that passed on the same base.
    Superseded {
        /// The proposal.
        proposal: ProposalId,
        /// The one that passed.
        by: ProposalId,
    },
}

/// Why the tally refused an input. A refused input changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TallyError {
    /// The active constitution and seal disagree, so no amendment can be
    /// tallied under them.
    #[error("cannot tally amendments: rule `{rule}` fails: {value}")]
    Config {
        /// The rule that must hold.
        rule: &'static str,
        /// The values.
        value: String,
    },
    /// Inputs must come in ledger order.
    #[error("ledger index {found} is before the last index the tally saw, {last}")]
    OutOfOrder {
        /// The last index seen.
        last: LedgerIndex,
        /// The index given.
        found: LedgerIndex,
    },
    /// The proposal amends another base than this tally's.
    #[error(
        "proposal {proposal} amends version {found_version} (seal {found_seal}); this tally is for version {version} (seal {seal})"
    )]
    StaleBase {
        /// The proposal.
        proposal: ProposalId,
        /// This tally's base version.
        version: PolicyVersion,
        /// This tally's base seal digest.
        seal: Digest,
        /// The proposal's base version.
        found_version: PolicyVersion,
        /// The proposal's base seal digest.
        found_seal: Digest,
    },
    /// A proposal already passed on this base.
    #[error("proposal {passed} already passed on this base; no further proposal can")]
    BaseClosed {
        /// The proposal that passed.
        passed: ProposalId,
    },
    /// The proposal was opened before.
    #[error("proposal {proposal} is already open or decided")]
    DuplicateProposal {
        /// The proposal.
        proposal: ProposalId,
    },
    /// [`PROPOSALS_MAX`] proposals are open.
    #[error("{open} proposals are open on this base, the limit is {PROPOSALS_MAX}")]
    TooManyProposals {
        /// How many are open.
        open: usize,
    },
    /// A vote on a proposal this tally never opened.
    #[error("vote by {voter} names unknown proposal {proposal}")]
    UnknownProposal {
        /// The proposal named.
        proposal: ProposalId,
        /// The voter.
        voter: NodeId,
    },
    /// The vote is not a member's, or its signature fails.
    #[error(transparent)]
    Vote(#[from] VoteError),
}

/// A proposal that passed, with exactly the first `t` approvers. Only a
/// [`Tally`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassedAmendment {
    proposal: AdmittedProposal,
    approvers: Vec<NodeId>,
    passed_at: LedgerIndex,
}

impl PassedAmendment {
    /// The proposal.
    pub fn proposal(&self) -> &AdmittedProposal {
        &self.proposal
    }

    /// Exactly the first `t` approvers, in ledger order.
    pub fn approvers(&self) -> &[NodeId] {
        &self.approvers
    }

    /// Ledger index of the deciding approval.
    pub fn passed_at(&self) -> LedgerIndex {
        self.passed_at
    }
}

#[derive(Debug)]
struct Entry {
    /// Held while open; moved into [`PassedAmendment`] or dropped once
    /// decided, so decided proposals cost only their votes.
    admitted: Option<AdmittedProposal>,
    deadline: LedgerIndex,
    /// First vote of each voter.
    votes: BTreeMap<NodeId, SignedVote>,
    approvers: Vec<NodeId>,
    rejecters: Vec<NodeId>,
    recusers: Vec<NodeId>,
    status: Status,
}

/// The amendment tally of one base (see the module documentation).
#[derive(Debug)]
pub struct Tally {
    base_version: PolicyVersion,
    base_seal: Digest,
    membership: Vec<Validator>,
    threshold: usize,
    deadline_entries: u64,
    last_index: LedgerIndex,
    proposals: BTreeMap<ProposalId, Entry>,
    passed: Option<PassedAmendment>,
}

impl Tally {
    /// An empty tally for the base `(active, active_seal)`. Refuses a
    /// constitution whose `amendment.validators` is not the membership size,
    /// or whose threshold is below the seal's FROST threshold (the approvers
    /// could not sign the next seal).
    pub fn new(active: &PolicyLayer, active_seal: &Seal) -> Result<Tally, TallyError> {
        let a = &active.constitution().amendment;
        let n = active_seal.membership.len();
        if usize::from(a.validators) != n {
            return Err(TallyError::Config {
                rule: "amendment.validators == validators in the active seal",
                value: format!("amendment.validators = {}, seal has {n}", a.validators),
            });
        }
        if a.threshold < active_seal.threshold {
            return Err(TallyError::Config {
                rule: "amendment.threshold >= the active seal's threshold",
                value: format!(
                    "amendment.threshold = {}, seal threshold = {}",
                    a.threshold, active_seal.threshold
                ),
            });
        }
        Ok(Tally {
            base_version: active_seal.version,
            base_seal: active_seal.digest(),
            membership: active_seal.membership.clone(),
            threshold: usize::from(a.threshold),
            deadline_entries: a.deadline_entries,
            last_index: LedgerIndex(0),
            proposals: BTreeMap::new(),
            passed: None,
        })
    }

    /// Approvals a proposal needs (`t`).
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// Validators that vote (`n`).
    pub fn members(&self) -> usize {
        self.membership.len()
    }

    /// The status of `proposal`, if this tally opened it.
    pub fn status(&self, proposal: &ProposalId) -> Option<&Status> {
        self.proposals.get(proposal).map(|e| &e.status)
    }

    /// The amendment that passed on this base, if one did.
    pub fn passed(&self) -> Option<&PassedAmendment> {
        self.passed.as_ref()
    }

    /// Proposals currently open.
    pub fn open_count(&self) -> usize {
        self.proposals
            .values()
            .filter(|e| e.status == Status::Open)
            .count()
    }

    fn check_order(&self, index: LedgerIndex) -> Result<(), TallyError> {
        if index < self.last_index {
            return Err(TallyError::OutOfOrder {
                last: self.last_index,
                found: index,
            });
        }
        Ok(())
    }

    /// Opens an admitted proposal recorded at ledger `index`. Expiries due
    /// at `index` happen first.
    pub fn open(
        &mut self,
        proposal: AdmittedProposal,
        index: LedgerIndex,
    ) -> Result<Vec<TallyEvent>, TallyError> {
        self.check_order(index)?;
        let id = proposal.id();
        if let Some(passed) = &self.passed {
            return Err(TallyError::BaseClosed {
                passed: passed.proposal.id(),
            });
        }
        let p = proposal.proposal();
        if p.base_version != self.base_version || p.base_seal_digest != self.base_seal {
            return Err(TallyError::StaleBase {
                proposal: id,
                version: self.base_version,
                seal: self.base_seal,
                found_version: p.base_version,
                found_seal: p.base_seal_digest,
            });
        }
        if self.proposals.contains_key(&id) {
            return Err(TallyError::DuplicateProposal { proposal: id });
        }
        // Counted as if the expiries due at `index` had happened, without
        // making them happen: a refused input changes nothing.
        let open = self
            .proposals
            .values()
            .filter(|e| e.status == Status::Open && index <= e.deadline)
            .count();
        if open >= PROPOSALS_MAX {
            return Err(TallyError::TooManyProposals { open });
        }
        let mut events = self.expire(index);
        let deadline = LedgerIndex(index.0.saturating_add(self.deadline_entries));
        self.proposals.insert(
            id,
            Entry {
                admitted: Some(proposal),
                deadline,
                votes: BTreeMap::new(),
                approvers: Vec::new(),
                rejecters: Vec::new(),
                recusers: Vec::new(),
                status: Status::Open,
            },
        );
        events.push(TallyEvent::Opened {
            proposal: id,
            deadline,
        });
        Ok(events)
    }

    /// Moves the tally to ledger `index` (call it for every applied entry,
    /// so deadlines pass without votes) and returns the expiries.
    pub fn advance(&mut self, index: LedgerIndex) -> Result<Vec<TallyEvent>, TallyError> {
        self.check_order(index)?;
        Ok(self.expire(index))
    }

    /// Every open proposal whose deadline is before `index` expires, in
    /// proposal id order.
    fn expire(&mut self, index: LedgerIndex) -> Vec<TallyEvent> {
        debug_assert!(index >= self.last_index);
        self.last_index = index;
        let mut events = Vec::new();
        for (id, e) in &mut self.proposals {
            if e.status == Status::Open && index > e.deadline {
                e.status = Status::Expired { at: index };
                e.admitted = None;
                events.push(TallyEvent::Expired { proposal: *id });
            }
        }
        events
    }

    /// Applies a signed vote recorded at ledger `index`. Refuses (changing
    /// nothing) a vote out of ledger order, on an unknown proposal, by a
    /// non-member, or with a bad signature.
    pub fn vote(
        &mut self,
        vote: &SignedVote,
        index: LedgerIndex,
    ) -> Result<Vec<TallyEvent>, TallyError> {
        self.check_order(index)?;
        let v = &vote.vote;
        if !self.proposals.contains_key(&v.proposal) {
            return Err(TallyError::UnknownProposal {
                proposal: v.proposal,
                voter: v.voter,
            });
        }
        vote.verify(&self.membership)?;
        let mut events = self.expire(index);
        let (n, t) = (self.membership.len(), self.threshold);
        let entry = self
            .proposals
            .get_mut(&v.proposal)
            .expect("checked above, and expiry removes no entry");
        if let Some(first) = entry.votes.get(&v.voter) {
            if first.vote == *v {
                events.push(TallyEvent::Repeated {
                    proposal: v.proposal,
                    voter: v.voter,
                });
            } else {
                events.push(TallyEvent::Equivocation(Box::new(Equivocation {
                    first: first.clone(),
                    second: vote.clone(),
                })));
            }
            return Ok(events);
        }
        entry.votes.insert(v.voter, vote.clone());
        if entry.status != Status::Open {
            events.push(TallyEvent::Late {
                proposal: v.proposal,
                voter: v.voter,
            });
            return Ok(events);
        }
        match v.verdict {
            Verdict::Approve => entry.approvers.push(v.voter),
            Verdict::Reject(_) => entry.rejecters.push(v.voter),
            Verdict::Recuse => entry.recusers.push(v.voter),
        }
        events.push(TallyEvent::Counted {
            proposal: v.proposal,
            voter: v.voter,
            verdict: v.verdict.name(),
        });
        if entry.approvers.len() == t {
            entry.status = Status::Passed { at: index };
            let admitted = entry
                .admitted
                .take()
                .expect("an open proposal holds its content");
            let approvers = entry.approvers.clone();
            events.push(TallyEvent::Passed {
                proposal: v.proposal,
                approvers: approvers.clone(),
            });
            self.passed = Some(PassedAmendment {
                proposal: admitted,
                approvers,
                passed_at: index,
            });
            for (id, other) in &mut self.proposals {
                if other.status == Status::Open {
                    other.status = Status::Superseded {
                        by: v.proposal,
                        at: index,
                    };
                    other.admitted = None;
                    events.push(TallyEvent::Superseded {
                        proposal: *id,
                        by: v.proposal,
                    });
                }
            }
        } else if entry.rejecters.len() + entry.recusers.len() > n - t {
            entry.status = Status::Rejected { at: index };
            entry.admitted = None;
            events.push(TallyEvent::Rejected {
                proposal: v.proposal,
                rejecters: entry.rejecters.clone(),
                recusers: entry.recusers.clone(),
            });
        }
        Ok(events)
    }
}
