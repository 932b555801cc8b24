//! Faults a test can switch on in one validator process through the
//! `SENATUS_FAULT` environment variable. Compiled only with the
//! `fault-injection` feature, which the test suite enables and no shipped
//! build does: there is no way to turn these on in a normal binary.
#![cfg(feature = "fault-injection")]
use std::sync::OnceLock;

use senatus_genesis::Key32;
use senatus_quorum::Outcome;
use senatus_quorum::batch::BuiltBatch;
use senatus_quorum::signing::SignedShare;
use senatus_quorum::token::TokenBatch;

/// One injectable fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// None (the variable is unset).
    None,
    /// `bad-share`: sign, then send a share that is not the real one.
    BadShare,
    /// `refuse-sign`: refuse every signing request.
    RefuseSign,
    /// `lie-outcome`: as leader, ask signers to sign PERMIT for every
    /// request, whatever the evaluation said.
    LieOutcome,
    /// `vote-reject`: vote reject on every amendment, whatever the
    /// review said (a validator that disagrees).
    VoteReject,
    /// `vote-abstain`: never vote on an amendment.
    VoteAbstain,
    /// `vote-equivocate`: vote approve, then also reject, on every
    /// amendment (two conflicting signed votes for one slot).
    VoteEquivocate,
    /// `batch-past`: as leader, date every batch one hour in the past.
    BatchPast,
    /// `batch-day`: as leader, give every batch a one-day lifetime.
    BatchDay,
}

/// The fault of this process, read once.
pub fn active() -> Fault {
    static FAULT: OnceLock<Fault> = OnceLock::new();
    *FAULT.get_or_init(|| match std::env::var("SENATUS_FAULT").as_deref() {
        Ok("bad-share") => Fault::BadShare,
        Ok("refuse-sign") => Fault::RefuseSign,
        Ok("lie-outcome") => Fault::LieOutcome,
        Ok("vote-reject") => Fault::VoteReject,
        Ok("vote-abstain") => Fault::VoteAbstain,
        Ok("vote-equivocate") => Fault::VoteEquivocate,
        Ok("batch-past") => Fault::BatchPast,
        Ok("batch-day") => Fault::BatchDay,
        _ => Fault::None,
    })
}

/// The followers a leader with `DATA_DIR/FORK_LOG` sends a forked log.
static FORK_TO: std::sync::Mutex<Vec<u64>> = std::sync::Mutex::new(Vec::new());

/// `FORK_LOG`: a Byzantine leader forking the log. Every Record entry in
/// an AppendEntries to one of the followers `FORK_LOG` named carries other
/// bytes than the entry this leader keeps and sends the rest: same Raft
/// log ids, different ledger entries, so those followers commit another
/// branch of the ledger (PROTOCOL 21.6).
pub fn fork_entries(
    target: u64,
    mut rpc: openraft::raft::AppendEntriesRequest<crate::raft_types::TypeConfig>,
) -> openraft::raft::AppendEntriesRequest<crate::raft_types::TypeConfig> {
    let forked = FORK_TO
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains(&target);
    if forked {
        for e in &mut rpc.entries {
            if let openraft::EntryPayload::Normal(c) = &mut e.payload
                && c.kind == senatus_replica::ledger::EntryKind::Record
            {
                c.payload.extend_from_slice(b" (the other branch)");
            }
        }
    }
    rpc
}

/// File triggers of the tamper hooks, checked by the detector loop:
/// `DATA_DIR/TAMPER_MEMORY` (any content) edits the active policy layer
/// in memory; `DATA_DIR/FLIP_LEDGER` (a ledger index) flips one stored
/// byte of that entry; `DATA_DIR/FORK_LOG` (validator ids, comma
/// separated) makes this validator, while it leads, fork the log for
/// those followers ([`fork_entries`]). Each file is removed once acted on.
pub fn tamper_hooks(id: u64, sm: &crate::store::StateMachineStore, data_dir: &std::path::Path) {
    let fork = data_dir.join("FORK_LOG");
    if let Ok(text) = std::fs::read_to_string(&fork) {
        let _ = std::fs::remove_file(&fork);
        let ids: Result<Vec<u64>, _> = text.trim().split(',').map(|t| t.trim().parse()).collect();
        match ids {
            Ok(ids) => {
                tracing::warn!(
                    node = id,
                    ?ids,
                    "fault injection: forking the log for these followers"
                );
                *FORK_TO.lock().unwrap_or_else(|p| p.into_inner()) = ids;
            }
            Err(e) => tracing::error!(node = id, error = %e, "FORK_LOG holds no ids"),
        }
    }
    let memory = data_dir.join("TAMPER_MEMORY");
    if memory.exists() && std::fs::remove_file(&memory).is_ok() {
        tracing::warn!(
            node = id,
            "fault injection: tampering the in-memory policy layer"
        );
        let _ = sm.amendments().with(|s| s.tamper_active_layer());
    }
    let flip = data_dir.join("FLIP_LEDGER");
    if let Ok(text) = std::fs::read_to_string(&flip) {
        let _ = std::fs::remove_file(&flip);
        match text.trim().parse::<u64>() {
            Ok(index) => {
                tracing::warn!(
                    node = id,
                    index,
                    "fault injection: flipping a stored ledger byte"
                );
                if let Err(e) = sm.flip_stored_byte(index) {
                    tracing::error!(node = id, error = %e, "flip hook failed");
                }
            }
            Err(e) => {
                tracing::error!(node = id, error = %e, "FLIP_LEDGER holds no index")
            }
        }
    }
}

/// The batch times a leader with `batch-past` or `batch-day` proposes:
/// `(issued_at_ms, lifetime_ms)`.
pub fn batch_times(issued_at_ms: u64, lifetime_ms: u64) -> (u64, u64) {
    const HOUR_MS: u64 = 3_600_000;
    match active() {
        Fault::BatchPast => (issued_at_ms.saturating_sub(HOUR_MS), lifetime_ms),
        Fault::BatchDay => (issued_at_ms, 24 * HOUR_MS),
        _ => (issued_at_ms, lifetime_ms),
    }
}

/// `refuse-sign`: the refusal every signing request gets.
pub fn refuse_sign(id: u64) -> Result<(), crate::gate_error::GateCallError> {
    if active() == Fault::RefuseSign {
        return Err(crate::gate_error::GateCallError::FaultRefusesToSign { node: id });
    }
    Ok(())
}

/// The share with its value replaced (still a valid scalar encoding).
pub fn corrupt(mut share: SignedShare) -> SignedShare {
    if let Ok(bad) = frost_ed25519::round2::SignatureShare::deserialize(&[1u8; 32]) {
        share.share = bad;
    }
    share
}

/// The batch with every outcome turned into PERMIT and the message
/// recomputed: what a lying leader would ask signers to sign.
pub fn lie(built: BuiltBatch, group_key: &Key32) -> BuiltBatch {
    let payloads = built
        .tokens
        .payloads()
        .iter()
        .cloned()
        .map(|mut p| {
            p.outcome = Outcome::Permit;
            p
        })
        .collect();
    let Ok(tokens) = TokenBatch::new(payloads) else {
        return built;
    };
    let message = tokens.message(group_key);
    BuiltBatch {
        decisions: built.decisions,
        tokens,
        message,
    }
}
