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

/// File triggers of the tamper hooks, checked by the detector loop:
/// `DATA_DIR/TAMPER_MEMORY` (any content) edits the active policy layer
/// in memory; `DATA_DIR/FLIP_LEDGER` (a ledger index) flips one stored
/// byte of that entry. Each file is removed once acted on.
pub fn tamper_hooks(id: u64, sm: &crate::store::StateMachineStore, data_dir: &std::path::Path) {
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
