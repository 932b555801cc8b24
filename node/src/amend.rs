//! Amendments on a validator: the replicated tally that Proposal and Vote
//! ledger entries feed on apply, and the voter that reviews every admitted
//! proposal independently and casts this validator's signed vote through
//! Raft.
//!
//! The tally is derived state: every validator rebuilds it from its own
//! ledger at boot and after installing a snapshot, and updates it on apply,
//! so it never needs storage of its own and cannot disagree with the ledger
//! (I7). A Proposal that is not admissible, and a Vote the tally refuses,
//! produce no ledger entry; every validator refuses them identically.
//!
//! What this module does not do yet: a passed amendment is recorded and
//! shown, but its seal is not yet threshold-signed or made active, so the
//! last sealed policy stays in force (fail closed, DESIGN.md flow 4).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use senatus_genesis::{Digest, Key32, LedgerIndex, NodeId, PolicyLayer, Seal};
use senatus_quorum::amend::{
    self, AdmissionError, ProposalDecodeError, ProposalId, ProposerRole, SignedProposal,
    SignedVote, Status, Tally, TallyError, TallyEvent, Verdict, Vote, VoteDecodeError,
};

use crate::ledger::{EntryKind, LedgerEntry};

/// Why a Proposal or Vote command is refused on apply (no ledger entry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmendRejection {
    /// The store was opened without amendment state (storage tests).
    #[error("this node's state machine does not tally amendments")]
    NotEnabled,
    /// The proposal does not decode.
    #[error("proposal: {0}")]
    ProposalDecode(String),
    /// The proposal is not admissible (proposer, signature, sizes).
    #[error("proposal not admitted: {0}")]
    Admission(String),
    /// The vote does not decode.
    #[error("vote: {0}")]
    VoteDecode(String),
    /// The tally refused the input.
    #[error("{0}")]
    Tally(String),
    /// The identical vote is already on the ledger.
    #[error("the identical vote of {voter} on proposal {proposal} is already on the ledger")]
    RepeatedVote {
        /// The voter.
        voter: NodeId,
        /// The proposal.
        proposal: ProposalId,
    },
}

impl From<ProposalDecodeError> for AmendRejection {
    fn from(e: ProposalDecodeError) -> Self {
        AmendRejection::ProposalDecode(e.to_string())
    }
}

impl From<AdmissionError> for AmendRejection {
    fn from(e: AdmissionError) -> Self {
        AmendRejection::Admission(e.to_string())
    }
}

impl From<VoteDecodeError> for AmendRejection {
    fn from(e: VoteDecodeError) -> Self {
        AmendRejection::VoteDecode(e.to_string())
    }
}

impl From<TallyError> for AmendRejection {
    fn from(e: TallyError) -> Self {
        AmendRejection::Tally(e.to_string())
    }
}

/// A proposal as the ledger recorded it.
#[derive(Debug, Clone)]
pub struct ProposalRecord {
    /// Its id.
    pub id: ProposalId,
    /// Ledger index of its Proposal entry.
    pub index: u64,
    /// Who proposed it.
    pub proposer: Key32,
    /// In which capacity.
    pub role: ProposerRole,
    /// The proposer's justification.
    pub justification: String,
    /// Digest of the proposed layer's canonical bytes.
    pub layer_digest: Digest,
    /// Version the proposed constitution declares, if the layer parses.
    pub proposed_version: Option<u64>,
    /// The signed proposal, for this validator's own review.
    pub signed: SignedProposal,
}

/// A vote as the ledger recorded it.
#[derive(Debug, Clone)]
pub struct VoteRecord {
    /// Ledger index of its Vote entry.
    pub index: u64,
    /// The signed vote.
    pub vote: SignedVote,
    /// How the tally took it: "counted", "late" or "equivocation".
    pub effect: &'static str,
}

/// The amendment state of one validator, derived from its ledger.
#[derive(Debug)]
pub struct AmendState {
    layer: Arc<PolicyLayer>,
    seal: Seal,
    authority: Key32,
    tally: Tally,
    proposals: BTreeMap<ProposalId, ProposalRecord>,
    votes: BTreeMap<ProposalId, Vec<VoteRecord>>,
    /// Ledger index of the last entry seen.
    last_index: u64,
}

impl AmendState {
    /// An empty tally over the active layer and seal.
    pub fn new(layer: Arc<PolicyLayer>, seal: Seal, authority: Key32) -> Result<Self, TallyError> {
        let tally = Tally::new(&layer, &seal)?;
        Ok(AmendState {
            layer,
            seal,
            authority,
            tally,
            proposals: BTreeMap::new(),
            votes: BTreeMap::new(),
            last_index: 0,
        })
    }

    /// An empty tally over the same layer, seal and authority (to rebuild
    /// from another ledger).
    pub fn fresh(&self) -> Result<Self, TallyError> {
        AmendState::new(self.layer.clone(), self.seal.clone(), self.authority)
    }

    /// The active layer (what every review is against).
    pub fn layer(&self) -> &PolicyLayer {
        &self.layer
    }

    /// The active seal.
    pub fn seal(&self) -> &Seal {
        &self.seal
    }

    /// The largest proposal layer accepted (the active constitution's).
    pub fn layer_bytes_max(&self) -> u32 {
        self.layer.constitution().limits.layer_bytes_max
    }

    /// Checks and applies the command that would become ledger entry
    /// `index`. `Ok(())` means: append it. A refused command changes nothing.
    pub fn apply(
        &mut self,
        index: u64,
        kind: EntryKind,
        payload: &[u8],
    ) -> Result<(), AmendRejection> {
        let at = LedgerIndex(index);
        match kind {
            EntryKind::Proposal => {
                let signed = SignedProposal::decode(payload, self.layer_bytes_max())?;
                let admitted =
                    amend::admit(signed.clone(), &self.authority, &self.layer, &self.seal)?;
                let events = self.tally.open(admitted.clone(), at)?;
                let p = admitted.proposal();
                let proposed_version = PolicyLayer::from_canonical_bytes(&p.layer)
                    .ok()
                    .map(|l| l.constitution().version);
                self.proposals.insert(
                    admitted.id(),
                    ProposalRecord {
                        id: admitted.id(),
                        index,
                        proposer: p.proposer,
                        role: admitted.role(),
                        justification: p.justification.clone(),
                        layer_digest: p.layer_digest(),
                        proposed_version,
                        signed,
                    },
                );
                log_events(&events);
            }
            EntryKind::Vote => {
                let vote = SignedVote::decode(payload)?;
                // Check before counting: a repeated vote appends nothing.
                if let Some(prev) = self.votes.get(&vote.vote.proposal)
                    && prev.iter().any(|r| r.vote == vote)
                {
                    return Err(AmendRejection::RepeatedVote {
                        voter: vote.vote.voter,
                        proposal: vote.vote.proposal,
                    });
                }
                let events = self.tally.vote(&vote, at)?;
                let effect = events
                    .iter()
                    .find_map(|e| match e {
                        TallyEvent::Counted { .. } => Some("counted"),
                        TallyEvent::Late { .. } => Some("late"),
                        TallyEvent::Equivocation(_) => Some("equivocation"),
                        _ => None,
                    })
                    .unwrap_or("recorded");
                log_events(&events);
                self.votes
                    .entry(vote.vote.proposal)
                    .or_default()
                    .push(VoteRecord {
                        index,
                        vote,
                        effect,
                    });
            }
            _ => {
                if self.tally.open_count() > 0 {
                    let events = self.tally.advance(at)?;
                    log_events(&events);
                }
            }
        }
        self.last_index = index;
        Ok(())
    }

    /// Feeds an already verified ledger (boot, snapshot install) through
    /// [`AmendState::apply`]. An entry that was appended must apply again;
    /// if one does not, the ledger and this code disagree: a broken
    /// invariant, named.
    pub fn replay<'a>(
        &mut self,
        entries: impl IntoIterator<Item = &'a LedgerEntry>,
    ) -> Result<(), String> {
        for e in entries {
            self.apply(e.index, e.kind, &e.payload).map_err(|r| {
                format!(
                    "ledger index {} ({}) was appended but does not apply again: {r}",
                    e.index, e.kind
                )
            })?;
        }
        Ok(())
    }

    /// Open proposals `voter` has not voted on, oldest first.
    pub fn unvoted(&self, voter: NodeId) -> Vec<ProposalRecord> {
        self.proposals
            .values()
            .filter(|p| self.tally.status(&p.id) == Some(&Status::Open))
            .filter(|p| {
                !self
                    .votes
                    .get(&p.id)
                    .is_some_and(|vs| vs.iter().any(|r| r.vote.vote.voter == voter))
            })
            .cloned()
            .collect()
    }

    /// Every proposal (or the one named), oldest first, with its status and
    /// votes.
    pub fn view(&self, only: Option<ProposalId>) -> Vec<(ProposalRecord, Status, Vec<VoteRecord>)> {
        self.proposals
            .values()
            .filter(|p| only.is_none_or(|id| id == p.id))
            .map(|p| {
                (
                    p.clone(),
                    self.tally.status(&p.id).cloned().unwrap_or(Status::Open),
                    self.votes.get(&p.id).cloned().unwrap_or_default(),
                )
            })
            .collect()
    }

    /// The approvers of the proposal that passed on this base, if any.
    pub fn passed(&self) -> Option<(ProposalId, Vec<NodeId>)> {
        self.tally
            .passed()
            .map(|p| (p.proposal().id(), p.approvers().to_vec()))
    }
}

fn log_events(events: &[TallyEvent]) {
    for e in events {
        match e {
            TallyEvent::Equivocation(ev) => {
                tracing::warn!(evidence = ?ev, "amendment vote equivocation");
            }
            other => tracing::info!(event = ?other, "amendment tally"),
        }
    }
}

/// The state machine's handle on the amendment state: shared with the
/// voter and the API, replaced whole on snapshot install.
#[derive(Debug, Clone, Default)]
pub struct AmendHandle(Arc<Mutex<Option<AmendState>>>);

impl AmendHandle {
    /// Runs `f` on the state, if the store tallies amendments.
    pub fn with<T>(&self, f: impl FnOnce(&mut AmendState) -> T) -> Option<T> {
        let mut g = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.as_mut().map(f)
    }

    /// Installs (or replaces) the state.
    pub fn set(&self, s: AmendState) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(s);
    }
}

/// This validator's own review of a recorded proposal, as a signed vote.
pub fn own_vote(
    state: &AmendState,
    p: &ProposalRecord,
    voter: NodeId,
    key: &ed25519_dalek::SigningKey,
) -> Result<SignedVote, String> {
    let review = amend::review(state.layer(), state.seal(), &p.signed.proposal);
    if let amend::Review::Reject(reasons) = &review {
        let why: Vec<String> = reasons.iter().map(ToString::to_string).collect();
        tracing::info!(proposal = %p.id, reasons = ?why, "review rejects the proposal");
    }
    Vote::from_review(p.id, voter, &review)
        .sign(key)
        .map_err(|e| format!("cannot sign the vote on {}: {e}", p.id))
}

/// How often the voter looks for proposals it has not voted on, besides
/// waking on every apply.
pub const VOTER_RESCAN_MS: u64 = 1_000;

/// Runs until `stop`: whenever this node has applied something, reviews
/// each open proposal it has not voted on and casts its vote through Raft
/// (any node forwards to the leader). A vote that does not commit is cast
/// again on the next pass; the bytes are identical, so it never counts
/// twice.
pub async fn run_voter(
    shared: crate::service::Shared,
    key: ed25519_dalek::SigningKey,
    mut stop: impl std::future::Future<Output = ()> + Unpin,
) {
    let Ok(voter) = NodeId::new(shared.id) else {
        tracing::error!(node = shared.id, "voter: invalid node id");
        return;
    };
    let mut metrics = shared.raft.metrics();
    loop {
        let pending = shared
            .sm
            .amendments()
            .with(|s| {
                s.unvoted(voter)
                    .into_iter()
                    .map(|p| own_vote(s, &p, voter, &key).map(|v| (p.id, v)))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        for v in pending {
            match v {
                Ok((id, vote)) => {
                    let verdict = match &vote.vote.verdict {
                        Verdict::Approve => "approve",
                        Verdict::Reject(_) => "reject",
                        Verdict::Recuse => "recuse",
                    };
                    let cmd = crate::raft_types::Command::new(EntryKind::Vote, vote.encode());
                    match shared.write(cmd).await {
                        Ok(r) => {
                            tracing::info!(node = shared.id, proposal = %id, verdict, ledger_index = r.index, "vote cast")
                        }
                        Err(s) => {
                            tracing::warn!(node = shared.id, proposal = %id, code = ?s.code(), message = s.message(), "vote not committed; will retry")
                        }
                    }
                }
                Err(e) => tracing::error!(node = shared.id, error = %e, "voter"),
            }
        }
        tokio::select! {
            _ = &mut stop => return,
            changed = metrics.changed() => {
                if changed.is_err() {
                    return; // Raft is gone.
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(VOTER_RESCAN_MS)) => {}
        }
    }
}

/// The wire view of every proposal (or the one named).
pub fn views(s: &AmendState, only: Option<ProposalId>) -> Vec<senatus_proto::v1::ProposalView> {
    use senatus_proto::v1 as pb;
    s.view(only)
        .into_iter()
        .map(|(p, status, votes)| {
            let (status, decided_at) = match status {
                Status::Open => ("open", 0),
                Status::Passed { at } => ("passed", at.0),
                Status::Rejected { at } => ("rejected", at.0),
                Status::Expired { at } => ("expired", at.0),
                Status::Superseded { at, .. } => ("superseded", at.0),
            };
            let approvers = match s.passed() {
                Some((id, approvers)) if id == p.id => approvers.iter().map(|n| n.get()).collect(),
                _ => Vec::new(),
            };
            pb::ProposalView {
                id: p.id.0.0.to_vec(),
                ledger_index: p.index,
                proposer: p.proposer.0.to_vec(),
                role: match p.role {
                    ProposerRole::Authority => "authority".into(),
                    ProposerRole::Validator(id) => format!("validator {id}"),
                    ProposerRole::Listed => "listed".into(),
                },
                justification: p.justification.clone(),
                layer_digest: p.layer_digest.0.to_vec(),
                proposed_version: p.proposed_version.unwrap_or(0),
                status: status.into(),
                decided_at,
                approvers,
                votes: votes
                    .into_iter()
                    .map(|r| {
                        let (verdict, reasons) = match &r.vote.vote.verdict {
                            Verdict::Approve => ("approve", Vec::new()),
                            Verdict::Reject(why) => ("reject", why.clone()),
                            Verdict::Recuse => ("recuse", Vec::new()),
                        };
                        pb::VoteView {
                            voter: r.vote.vote.voter.get(),
                            verdict: verdict.into(),
                            reasons,
                            ledger_index: r.index,
                            effect: r.effect.into(),
                        }
                    })
                    .collect(),
            }
        })
        .collect()
}
