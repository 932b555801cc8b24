//! Amendments on a validator, the I/O half: the handle the state machine
//! shares with the voter and the API, this validator's own review and vote,
//! and the driver that casts votes, has the approvers seal a passed
//! amendment and records this validator's redeclaration.
//!
//! The replicated rules (the tally, the seal chain, redeclarations) live in
//! `senatus_replica::amend`, re-exported here.

use std::time::Duration;

use senatus_genesis::{Digest, NodeId, PolicyLayer, Sig64};
use senatus_proto::reason::Reasoned as _;
#[cfg(feature = "fault-injection")]
use senatus_quorum::amend::Vote;
use senatus_quorum::amend::{ProposalId, ProposerRole, SignedVote, Status, Verdict};

use std::sync::Arc;

use crate::cluster::Cluster;
use crate::gate::Gate;
use crate::ledger::EntryKind;

pub use senatus_replica::amend::*;
/// This validator's own review of a recorded proposal, as a signed vote
/// (with the test-only fault that rejects everything).
pub fn own_vote(
    state: &AmendState,
    p: &ProposalRecord,
    voter: NodeId,
    key: &ed25519_dalek::SigningKey,
) -> Result<SignedVote, String> {
    #[cfg(feature = "fault-injection")]
    if crate::fault::active() == crate::fault::Fault::VoteReject {
        let vote = Vote {
            proposal: p.id,
            voter,
            verdict: Verdict::Reject(vec!["fault-injection".into()]),
        };
        return vote
            .sign(key)
            .map_err(|e| format!("cannot sign the vote on {}: {e}", p.id));
    }
    senatus_replica::amend::review_vote(state, p, voter, key)
}

/// How often the driver looks for work, besides waking on every apply.
pub const DRIVER_RESCAN_MS: u64 = 1_000;
/// Pause after a failed seal attempt before the leader tries again.
pub const SEAL_RETRY_MS: u64 = 500;

/// Runs until `stop`, waking on every apply:
/// - reviews each open proposal this validator has not voted on and casts
///   its signed vote through Raft (a vote that does not commit is cast
///   again; the bytes are identical, so it never counts twice);
/// - while this node leads and an amendment has passed, has its approvers
///   threshold-sign the next seal and appends the Seal entry;
/// - once a new seal is active here, writes the sealed layer to
///   `data_dir/sealed/v<version>/` and appends this validator's signed
///   Redeclaration.
pub async fn run_driver(
    shared: Cluster,
    gate: Arc<Gate>,
    key: ed25519_dalek::SigningKey,
    data_dir: std::path::PathBuf,
    mut stop: impl std::future::Future<Output = ()> + Unpin,
) {
    let Ok(me) = NodeId::new(shared.id) else {
        tracing::error!(node = shared.id, "amendment driver: invalid node id");
        return;
    };
    let mut metrics = shared.raft.metrics();
    let mut seal_not_before = std::time::Instant::now();
    // Proposals this process has cast a committed vote on: its own apply
    // may lag the commit, and casting again only gets the identical vote
    // refused on apply after a Raft round.
    let mut cast = std::collections::HashSet::new();
    // The seal this process last redeclared with a committed write, for
    // the same reason.
    let mut redeclared = None;
    loop {
        vote(&shared, me, &key, &mut cast).await;
        let leads = shared.raft.metrics().borrow().state == openraft::ServerState::Leader;
        if leads && std::time::Instant::now() >= seal_not_before && !seal(&shared, &gate).await {
            seal_not_before = std::time::Instant::now() + Duration::from_millis(SEAL_RETRY_MS);
        }
        redeclare(&shared, me, &key, &data_dir, &mut redeclared).await;
        tokio::select! {
            _ = &mut stop => return,
            changed = metrics.changed() => {
                if changed.is_err() {
                    return; // Raft is gone.
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(DRIVER_RESCAN_MS)) => {}
        }
    }
}

async fn vote(
    shared: &Cluster,
    me: NodeId,
    key: &ed25519_dalek::SigningKey,
    cast: &mut std::collections::HashSet<ProposalId>,
) {
    #[cfg(feature = "fault-injection")]
    if crate::fault::active() == crate::fault::Fault::VoteAbstain {
        return;
    }
    // A locked validator votes on nothing (flow 5).
    if shared.certs.lockdown(shared.sm.amendments()).is_some() {
        return;
    }
    let pending = shared
        .sm
        .amendments()
        .with(|s| {
            let open = s.unvoted(me);
            // Bounded by the proposals still open to this voter.
            cast.retain(|id| open.iter().any(|p| p.id == *id));
            open.into_iter()
                .filter(|p| !cast.contains(&p.id))
                .map(|p| own_vote(s, &p, me, key).map(|v| (p.id, v)))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    for v in pending {
        match v {
            Ok((id, vote)) => {
                let verdict = vote.vote.verdict.name();
                let cmd = crate::raft_types::Command::new(EntryKind::Vote, vote.encode());
                match shared.write(cmd).await {
                    Ok(r) => {
                        cast.insert(id);
                        tracing::info!(node = shared.id, proposal = %id, verdict, ledger_index = r.index, "vote cast");
                        #[cfg(feature = "fault-injection")]
                        if crate::fault::active() == crate::fault::Fault::VoteEquivocate {
                            let second = Vote {
                                proposal: id,
                                voter: me,
                                verdict: Verdict::Reject(vec!["fault-injection".into()]),
                            };
                            if let Ok(v) = second.sign(key) {
                                let cmd =
                                    crate::raft_types::Command::new(EntryKind::Vote, v.encode());
                                let r = shared.write(cmd).await;
                                tracing::warn!(node = shared.id, proposal = %id, ok = r.is_ok(), "fault injection: conflicting vote cast");
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(node = shared.id, proposal = %id, code = ?e.code(), message = %e, "vote not committed; will retry")
                    }
                }
            }
            Err(e) => tracing::error!(node = shared.id, error = %e, "amendment voter"),
        }
    }
}

/// The leader's part of passage. Returns false when an attempt failed.
async fn seal(shared: &Cluster, gate: &Gate) -> bool {
    let Some(Some((proposal, next, signers))) = shared.sm.amendments().with(|s| s.pending_seal())
    else {
        return true;
    };
    // The head it passed at, attested by a quorum of members (PROTOCOL
    // 4.1) before anyone signs: a seal of another branch cannot get one.
    let (passed_at, entry_hash) = match gate.await_pending_seal(shared, proposal).await {
        Ok((_, _, at, hash)) => (at, hash),
        Err(e) => {
            tracing::warn!(node = shared.id, %proposal, message = %e, "the head the amendment passed at is not stored here yet; will retry");
            return false;
        }
    };
    let attested = match gate
        .attest_next_seal(shared, proposal, &next, passed_at, entry_hash)
        .await
    {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(node = shared.id, %proposal, passed_at, message = %e, "seal head not attested by a quorum; will retry");
            return false;
        }
    };
    let message = next.signing_bytes();
    let signature = match gate
        .sign_next_seal(
            shared,
            proposal,
            signers.clone(),
            attested.clone(),
            &message,
        )
        .await
    {
        Ok(sig) => sig,
        Err(e) => {
            tracing::warn!(node = shared.id, %proposal, ?signers, code = ?e.code(), message = %e, "seal not signed; will retry");
            return false;
        }
    };
    let entry = SealEntry {
        proposal,
        seal_digest: next.digest(),
        signature: Sig64(signature),
        attested,
    };
    let cmd = crate::raft_types::Command::new(EntryKind::Seal, entry.encode());
    match shared.write_as_leader(cmd).await {
        Ok(r) => {
            tracing::info!(node = shared.id, %proposal, seal = %next.digest(), version = next.version.0, ledger_index = r.index, "seal appended");
            true
        }
        Err(e) => {
            tracing::warn!(node = shared.id, %proposal, code = ?e.code(), message = %e, "seal entry not committed; will retry");
            false
        }
    }
}

async fn redeclare(
    shared: &Cluster,
    me: NodeId,
    key: &ed25519_dalek::SigningKey,
    data_dir: &std::path::Path,
    committed: &mut Option<Digest>,
) {
    let Some(Some(active)) = shared
        .sm
        .amendments()
        .with(|s| (!s.has_redeclared(me)).then(|| s.active_sealed()))
    else {
        return;
    };
    // Already committed by this process; its own apply has not caught up.
    if *committed == Some(active.digest) {
        return;
    }
    let version = active.seal.seal.version.0;
    // The operator-visible copy of what this validator now enforces; the
    // authoritative copy is the ledger (the Proposal entry's layer bytes,
    // sealed by the Seal entry).
    let dir = data_dir.join("sealed").join(format!("v{version}"));
    if !dir.exists()
        && let Err(e) = write_sealed_dir(&active.layer, &dir)
    {
        tracing::error!(node = shared.id, dir = %dir.display(), error = %e, "cannot write the sealed policy layer");
        return;
    }
    let r = Redeclaration {
        node: me,
        policy_version: version,
        seal_digest: active.digest,
        policy_digest: active.seal.seal.policy_digest,
    };
    let cmd = crate::raft_types::Command::new(EntryKind::Redeclaration, r.sign(key));
    match shared.write(cmd).await {
        Ok(w) => {
            *committed = Some(active.digest);
            tracing::info!(node = shared.id, version, seal = %active.digest, ledger_index = w.index, "redeclared")
        }
        Err(e) => {
            tracing::warn!(node = shared.id, version, code = ?e.code(), message = %e, "redeclaration not committed; will retry")
        }
    }
}

/// Writes `layer` to `dir` whole or not at all: into a fresh temporary
/// directory beside it, then renamed into place, so the drift detector
/// never reads a half-written copy as drift.
fn write_sealed_dir(layer: &PolicyLayer, dir: &std::path::Path) -> std::io::Result<()> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.with_file_name(format!(".{name}.partial"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    layer.write_dir(&tmp)?;
    std::fs::rename(&tmp, dir)?;
    if let Some(parent) = dir.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// The wire view of every proposal (or the one named).
pub fn views(s: &AmendState, only: Option<ProposalId>) -> Vec<senatus_proto::v1::ProposalView> {
    use senatus_proto::v1 as pb;
    s.view(only)
        .into_iter()
        .map(|(p, status, votes, approvers)| {
            let (status, decided_at) = match status {
                Status::Open => ("open", 0),
                Status::Passed { at } => ("passed", at.0),
                Status::Rejected { at } => ("rejected", at.0),
                Status::Expired { at } => ("expired", at.0),
                Status::Superseded { at, .. } => ("superseded", at.0),
            };
            let approvers: Vec<u64> = approvers.iter().map(|n| n.get()).collect();
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
