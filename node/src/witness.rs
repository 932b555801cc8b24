//! Witnessing the leader's signed ledger heads (docs/PROTOCOL.md 21.6).
//!
//! Every `SignBatch` carries the leader's attestation of the Decision
//! entry's ledger hash at its index (21.5): a signed ledger head. A leader
//! that forks the log — different entries to different followers at one
//! index — must attest both branches to get tokens on both, so each branch
//! holds the leader's signature over a head the other branch did not
//! commit. The lowest-id signer of a batch other than the leader queues its
//! accepted attestation here (with one Byzantine validator, the leader,
//! one honest witness per batch suffices), and
//! every [`WITNESS_INTERVAL_MS`] sends what it queued to every other
//! validator in one `Witness` call. A receiver compares each attestation
//! with its own committed entry at that index: the same hash costs one
//! read; another hash, under a valid signature of the leader, certifies
//! the leader (`ledger-fork`), evidence that every validator on this
//! branch re-checks against its own ledger.
//!
//! Detection bound: a fork is certified by the first honest validator of
//! the other branch within one interval plus one round trip after a signer
//! there accepted the forked head (measured in node/tests/byzantine.rs).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use senatus_proto::v1 as pb;
use senatus_quorum::certificate::{AttestedBatch, BreachKind, Evidence};

use senatus_genesis::Validator;

use crate::breach::Breach;
use crate::clock::lock;
use crate::cluster::Cluster;

/// How often queued attestations are sent to the other validators.
pub const WITNESS_INTERVAL_MS: u64 = 100;
/// Most attestations queued between two sends; one `Witness` call carries
/// at most this many. Past it the oldest are dropped (and logged with the
/// next send): a dropped attestation loses a chance to detect a fork,
/// never a token.
pub const WITNESS_QUEUE_MAX: usize = 4_096;
/// Longest one `Witness` call may take.
pub const WITNESS_TIMEOUT_MS: u64 = 1_000;

/// Attestations this signer accepted, waiting to be sent.
#[derive(Debug, Default)]
pub struct WitnessQueue {
    queue: Mutex<VecDeque<AttestedBatch>>,
    dropped: std::sync::atomic::AtomicU64,
}

/// What one send takes from the queue.
struct Taken {
    attestations: Vec<AttestedBatch>,
    dropped: u64,
}

impl WitnessQueue {
    /// Queues `a` for the next send.
    pub fn push(&self, a: AttestedBatch) {
        let mut q = lock(&self.queue);
        if q.len() >= WITNESS_QUEUE_MAX {
            q.pop_front();
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        q.push_back(a);
    }

    fn take(&self) -> Taken {
        Taken {
            attestations: lock(&self.queue).drain(..).collect(),
            dropped: self.dropped.swap(0, std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// What a receiver made of one witnessed attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Witnessed {
    /// It names the entry hash this validator committed there.
    Agrees,
    /// This validator has not applied that index (yet): not judged.
    NotApplied,
    /// It names another hash under the leader's valid signature: the
    /// leader was certified (or already was).
    Fork,
}

/// Why a witnessed attestation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    /// The bytes are not an attested batch.
    #[error("attestation {position}: {why}")]
    Malformed {
        /// Its position in the call.
        position: usize,
        /// Why.
        why: String,
    },
    /// It names another hash but the leader's signature does not verify:
    /// the sender forwarded a forgery.
    #[error("attestation {position} by leader {leader} at ledger index {index} does not verify")]
    Forged {
        /// Its position in the call.
        position: usize,
        /// The leader it names.
        leader: u64,
        /// The ledger index.
        index: u64,
    },
    /// More attestations than one call may carry.
    #[error("{count} attestations in one call, at most {WITNESS_QUEUE_MAX}")]
    TooMany {
        /// How many.
        count: usize,
    },
}

/// Judges attestations another validator witnessed, against this
/// validator's own ledger; certifies a leader whose signed head forks it.
pub fn judge(
    shared: &Cluster,
    breach: &std::sync::Arc<Breach>,
    validators: &[Validator],
    attestations: &[Vec<u8>],
) -> Result<Vec<Witnessed>, WitnessError> {
    if attestations.len() > WITNESS_QUEUE_MAX {
        return Err(WitnessError::TooMany {
            count: attestations.len(),
        });
    }
    let mut out = Vec::with_capacity(attestations.len());
    for (position, bytes) in attestations.iter().enumerate() {
        let a = AttestedBatch::decode(BreachKind::LedgerFork, bytes).map_err(|e| {
            WitnessError::Malformed {
                position,
                why: e.to_string(),
            }
        })?;
        let mine = shared.sm.stored_entry_hash(a.ledger_index).ok().flatten();
        let verdict = match mine {
            None => Witnessed::NotApplied,
            Some(h) if h == a.entry_hash => Witnessed::Agrees,
            Some(_) => {
                // Only a mismatch is worth a signature check: it is the
                // evidence.
                if a.verify(validators).is_err() {
                    return Err(WitnessError::Forged {
                        position,
                        leader: a.leader.get(),
                        index: a.ledger_index,
                    });
                }
                breach.certify_validator(
                    shared,
                    a.leader,
                    Evidence::LedgerFork(a),
                    "the leader signed a ledger head this validator did not commit (ledger fork)",
                );
                Witnessed::Fork
            }
        };
        out.push(verdict);
    }
    Ok(out)
}

/// Sends what [`WitnessQueue`] holds to every other validator every
/// [`WITNESS_INTERVAL_MS`], until `stop`.
pub async fn run(
    shared: Cluster,
    breach: std::sync::Arc<Breach>,
    queue: std::sync::Arc<WitnessQueue>,
    mut stop: impl std::future::Future<Output = ()> + Unpin,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(WITNESS_INTERVAL_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        let Taken {
            attestations: batch,
            dropped,
        } = queue.take();
        if dropped > 0 {
            tracing::warn!(
                node = shared.id,
                dropped,
                "witness queue full: oldest attestations dropped unsent"
            );
        }
        if batch.is_empty() {
            continue;
        }
        let req = pb::WitnessRequest {
            from: shared.id,
            attestations: batch.iter().map(AttestedBatch::encode).collect(),
        };
        for (peer, client) in breach.peers() {
            let mut client = client.clone();
            let mut call = tonic::Request::new(req.clone());
            call.set_timeout(Duration::from_millis(WITNESS_TIMEOUT_MS));
            let peer = *peer;
            tokio::spawn(async move {
                if let Err(s) = client.witness(call).await {
                    tracing::debug!(peer, code = ?s.code(), message = s.message(), "witness not delivered");
                }
            });
        }
    }
}
