//! This validator's handle on the replicated cluster ([`Cluster`]): the
//! Raft node, the state machine and the write path (leader-side append, or
//! forwarding to the leader), with its timing bounds. Everything above it
//! (breach detection, the gate, the amendment driver, the services) writes
//! through it; it depends on none of them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use openraft::{Raft, ServerState};
use senatus_genesis::Digest;
use senatus_proto::v1 as pb;
use senatus_proto::v1::peer_client::PeerClient;
use tonic::transport::Channel;

use crate::certs::Certificates;
use crate::ledger::EntryKind;
use crate::metrics::{Gauges, Metrics};
use crate::network;
use crate::raft_types::{Command, CommandResponse, TypeConfig};
use crate::store::StateMachineStore;
use crate::write_error::WriteError;

/// Timing bounds of the write path.
#[derive(Debug, Clone, Copy)]
pub struct WriteBounds {
    /// A leader whose last quorum acknowledgement is older than this
    /// refuses writes at once (`UNAVAILABLE`) instead of appending an entry
    /// that cannot commit.
    pub quorum_ack_max_ms: u64,
    /// Longest wait for a write to commit and apply.
    pub commit_timeout_ms: u64,
    /// Longest wait for a leader to be known.
    pub leader_wait_ms: u64,
}

impl Default for WriteBounds {
    fn default() -> Self {
        WriteBounds {
            quorum_ack_max_ms: 1000,
            commit_timeout_ms: 3000,
            leader_wait_ms: 3000,
        }
    }
}

/// This validator's handle on the replicated cluster: its Raft node,
/// state machine, peers for forwarding, and the write path every part of
/// the node appends through.
#[derive(Clone)]
pub struct Cluster {
    /// This node.
    pub id: u64,
    /// Chain id from genesis.
    pub chain_id: String,
    /// The Raft handle.
    pub raft: Raft<TypeConfig>,
    /// The state machine (ledger reads).
    pub sm: StateMachineStore,
    /// Genesis digest (ledger entry 1 links to it).
    pub genesis_digest: Digest,
    /// One lazily connecting client per peer, for forwarding writes.
    pub forward: Arc<BTreeMap<u64, PeerClient<Channel>>>,
    /// Request metrics.
    pub metrics: Arc<Metrics>,
    /// Write timing bounds.
    pub bounds: WriteBounds,
    /// The certificates this validator validated (its lockdown).
    pub certs: Arc<Certificates>,
    /// What authenticated validators may not make this one do.
    pub guard: Arc<crate::peer_guard::Guard>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Live gauges for the metrics endpoint and `Status`.
    pub async fn gauges(&self) -> Gauges {
        let m = self.raft.metrics().borrow().clone();
        let commit = self
            .raft
            .with_raft_state(|s| s.committed.map(|l| l.index).unwrap_or(0))
            .await
            .unwrap_or(0);
        Gauges {
            node_id: self.id,
            term: m.current_term,
            leader: m.current_leader.unwrap_or(0),
            is_leader: m.state == ServerState::Leader,
            commit_index: commit,
            applied_index: m.last_applied.map(|l| l.index).unwrap_or(0),
            last_log_index: m.last_log_index.unwrap_or(0),
            ledger_index: self.sm.ledger_head().map(|h| h.index).unwrap_or(0),
        }
    }

    /// Appends `cmd` through Raft: directly when leading, else forwarded to
    /// the leader. Returns once the entry is committed and applied here or
    /// on the leader.
    pub async fn write(&self, cmd: Command) -> Result<pb::WriteReply, WriteError> {
        cmd.validate().map_err(WriteError::Rejected)?;
        let deadline = Instant::now() + Duration::from_millis(self.bounds.leader_wait_ms);
        loop {
            let leader = self.raft.metrics().borrow().current_leader;
            match leader {
                Some(l) if l == self.id => return self.write_as_leader(cmd).await,
                Some(l) => {
                    let client = self
                        .forward
                        .get(&l)
                        .ok_or(WriteError::LeaderNotInPeers { leader: l })?;
                    let timeout = Duration::from_millis(
                        self.bounds.commit_timeout_ms + self.bounds.quorum_ack_max_ms,
                    );
                    let fwd = pb::WriteCommand {
                        kind: u32::from(cmd.kind.code()),
                        payload: cmd.payload.clone(),
                    };
                    match network::forward_write(client, fwd, timeout).await {
                        // The leader moved between our read and its answer:
                        // look again until the deadline.
                        Err(s) if s.code() == tonic::Code::FailedPrecondition => {}
                        Err(s)
                            if s.code() == tonic::Code::Unavailable
                                && Instant::now() < deadline =>
                        {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Ok(r) => return Ok(r),
                        Err(s) => return Err(WriteError::from_leader(l, s)),
                    }
                }
                None => {}
            }
            if Instant::now() >= deadline {
                return Err(WriteError::NoLeader {
                    wait_ms: self.bounds.leader_wait_ms,
                });
            }
            // Wait for the leader to change (or appear), bounded.
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = self
                .raft
                .wait(Some(left.min(Duration::from_millis(200))))
                .metrics(
                    |m| m.current_leader.is_some() && m.current_leader != leader,
                    "leader",
                )
                .await;
        }
    }

    /// Leader-side write: refuse fast without a recent quorum, then append
    /// and wait (bounded) for commit and apply.
    pub async fn write_as_leader(&self, cmd: Command) -> Result<pb::WriteReply, WriteError> {
        // A locked leader appends nothing but certificates, so its
        // followers stop hearing from it and elect another (flow 5).
        if cmd.kind != EntryKind::Certificate
            && let Some(l) = self.certs.lockdown(self.sm.amendments())
        {
            return Err(WriteError::LockedLeader {
                node: self.id,
                certificate: l.id,
            });
        }
        let mut m = self.raft.metrics().borrow().clone();
        if m.state == ServerState::Leader && m.millis_since_quorum_ack.is_none() {
            // Just elected: no majority has acknowledged this leader yet.
            // Give it the ack bound to hear from one instead of refusing a
            // healthy cluster; a leader that hears nothing still refuses.
            let _ = self
                .raft
                .wait(Some(Duration::from_millis(self.bounds.quorum_ack_max_ms)))
                .metrics(
                    |m| m.millis_since_quorum_ack.is_some() || m.state != ServerState::Leader,
                    "first quorum ack",
                )
                .await;
            m = self.raft.metrics().borrow().clone();
        }
        if m.state != ServerState::Leader {
            return Err(WriteError::NotLeader {
                node: self.id,
                leader: m.current_leader,
            });
        }
        // A leader alone (single-voter clusters) has no acks to wait for.
        let voters = m.membership_config.membership().voter_ids().count();
        if voters > 1 {
            match m.millis_since_quorum_ack {
                Some(ms) if ms <= self.bounds.quorum_ack_max_ms => {}
                other => {
                    return Err(WriteError::NoQuorum {
                        leader: self.id,
                        since_quorum_ack_ms: other,
                        quorum_ack_max_ms: self.bounds.quorum_ack_max_ms,
                    });
                }
            }
        }
        let timeout = Duration::from_millis(self.bounds.commit_timeout_ms);
        let resp = match tokio::time::timeout(timeout, self.raft.client_write(cmd)).await {
            Err(_) => {
                return Err(WriteError::NotCommitted {
                    commit_timeout_ms: self.bounds.commit_timeout_ms,
                });
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                return Err(WriteError::NoLongerLeader {
                    node: self.id,
                    leader: f.leader_id,
                });
            }
            Ok(Err(e)) => return Err(WriteError::Raft(e.to_string())),
            Ok(Ok(r)) => r,
        };
        match resp.data {
            CommandResponse::Appended(head) => Ok(pb::WriteReply {
                index: head.index,
                hash: head.hash.0.to_vec(),
                log_index: resp.log_id.index,
            }),
            // A replayed nonce is ALREADY_EXISTS; a stale batch (a reseal
            // committed between proposing and committing it) is ABORTED:
            // nothing was decided, the caller retries and the next batch
            // is decided under the new seal. See `WriteError::code`.
            CommandResponse::Rejected(r) => Err(WriteError::Rejected(r)),
            CommandResponse::NoCommand => Err(WriteError::NoEntry),
        }
    }
}
