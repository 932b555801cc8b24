//! The publish gate: `Decide` batching on the leader, the decision ledger
//! entry, independent re-evaluation by every signer, one-round FROST
//! signing over the batch's Merkle root, and tokens back to the callers.
//!
//! Order of events for one batch (DESIGN.md, flow 2):
//! 1. the leader collects waiting requests (at most `batch_requests_max`,
//!    never waiting for more: a lone request goes out alone);
//! 2. it commits one `Decision` ledger entry through Raft carrying the
//!    requests, its clock, the token lifetime, the policy version and seal;
//!    nothing is answered before that commit (I1);
//! 3. it picks t signers (itself first) with preprocessed commitments and
//!    sends each the batch message; every signer waits until it has applied
//!    that ledger entry, evaluates every request itself under its own active
//!    policy, rebuilds the token payloads and the batch message, and signs
//!    only if the leader's message is byte-identical to its own (I2);
//! 4. shares are aggregated (an invalid share names its signer, who is left
//!    out of the retry); the resulting Ed25519 signature and each token's
//!    Merkle proof go back to the callers.
//!
//! Any failure before a signature exists answers with an error and no
//! token: fail closed (I5).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openraft::ServerState;
use senatus_genesis::{Digest, Genesis, Key32, NodeId, Seal};
use senatus_proto::reason::{Reason, Reasoned, reason_of};
use senatus_proto::v1 as pb;
use senatus_proto::v1::peer_client::PeerClient;
use senatus_proto::v1::senatus_client::SenatusClient;
use senatus_quorum::Outcome;
use senatus_quorum::batch::{BATCH_REQUESTS_MAX, BuiltBatch, DecisionBatch};
use senatus_quorum::request::{AgentContext, DecisionRequest};
use senatus_quorum::signing::{
    self, CommitmentBook, NoncePool, PublishedCommitment, SignRequest, SignedShare, Signer,
};
use senatus_quorum::token;
use tokio::sync::{mpsc, oneshot};
use tonic::Status;
use tonic::transport::Channel;

pub use crate::gate_error::{GateCallError, RequestError};
use crate::ledger::EntryKind;
use crate::raft_types::Command;
use crate::service::Shared;

/// Tunables of the gate, with their units last.
#[derive(Debug, Clone, Copy)]
pub struct GateConfig {
    /// Lifetime of a token, from the batch's issue time.
    pub token_ttl_ms: u64,
    /// Most requests per batch (one ledger entry, one signature).
    pub batch_requests_max: usize,
    /// Batches signed concurrently by one leader.
    pub batches_inflight_max: usize,
    /// Requests waiting for a batch; beyond it `Decide` answers
    /// `RESOURCE_EXHAUSTED` at once.
    pub queue_requests_max: usize,
    /// Longest a signer waits to apply the entry it is asked to sign.
    pub apply_wait_ms: u64,
    /// Longest the leader waits for one signer's share.
    pub share_timeout_ms: u64,
    /// Signer sets tried per batch before giving up (each retry leaves out
    /// the signers that failed).
    pub sign_attempts_max: usize,
    /// Commitments fetched from a signer per refill.
    pub commitments_refill: u32,
    /// Refill a signer's commitments when fewer remain.
    pub commitments_low_water: usize,
    /// Longest a forwarded `Decide` may take end to end.
    pub forward_timeout_ms: u64,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            token_ttl_ms: 60_000,
            batch_requests_max: 256,
            batches_inflight_max: 4,
            queue_requests_max: 8192,
            apply_wait_ms: 3_000,
            share_timeout_ms: 2_000,
            sign_attempts_max: 3,
            commitments_refill: 128,
            commitments_low_water: 32,
            forward_timeout_ms: 15_000,
        }
    }
}

/// What a signing round signs.
#[derive(Debug, Clone)]
enum SignTarget {
    /// A decision batch at this ledger index.
    Batch { ledger_index: u64 },
    /// The next seal of a passed amendment, by these approvers.
    Seal {
        proposal: senatus_quorum::amend::ProposalId,
        signers: Vec<NodeId>,
    },
}

/// A request waiting for its batch.
struct Pending {
    request: DecisionRequest,
    reply: oneshot::Sender<Result<pb::DecideReply, GateCallError>>,
}

/// The decision gate of one validator: its signer (always) and, while it
/// leads, the batcher and coordinator.
pub struct Gate {
    id: u64,
    config: GateConfig,
    genesis_digest: Digest,
    genesis: Genesis,
    /// The sealed versions (derived from the ledger): the active one decides
    /// new batches; each batch is evaluated under the seal it names.
    amend: crate::amend::AmendHandle,
    group_key: Key32,
    threshold: usize,
    pubkeys: frost_ed25519::keys::PublicKeyPackage,
    signer: Mutex<Signer>,
    /// The coordinator that last drew commitments from this signer; a new
    /// one means the old one's commitments are abandoned.
    last_coordinator: Mutex<Option<u64>>,
    book: Mutex<CommitmentBook>,
    queue: mpsc::Sender<Pending>,
    queue_rx: Mutex<Option<mpsc::Receiver<Pending>>>,
    peers: BTreeMap<u64, PeerClient<Channel>>,
    apis: BTreeMap<u64, SenatusClient<Channel>>,
    /// A broker over the seal chain, rebuilt when the chain grows.
    broker: Mutex<(usize, Arc<senatus_quorum::broker::Broker>)>,
    /// Idempotency keys of requests queued or being decided here, with
    /// their request digests.
    inflight: Mutex<std::collections::HashMap<Vec<u8>, Digest>>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("id", &self.id)
            .field("policy_version", &self.amend.with(|s| s.seal().version.0))
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch (0 before it).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every guarded value stays consistent across a panic in a holder (each
    // update is a single call), so a poisoned lock is recovered.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why the gate could not be built at boot.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The sealed policy layer does not compile for evaluation.
    #[error("policy layer cannot be evaluated: {0}")]
    Policy(String),
    /// The seal's key material is inconsistent.
    #[error("seal key material: {0}")]
    Seal(String),
    /// A channel to another validator cannot be built (its address, or
    /// this node's TLS configuration); the error names the validator.
    #[error(transparent)]
    Channel(#[from] crate::network::ChannelError),
}

impl Gate {
    /// Builds the gate from the verified boot material: the active seal is
    /// seal 0 (amendments will replace it), the evaluator is compiled once,
    /// and the nonce pool gets a fresh random generation.
    pub fn new(
        id: u64,
        material: &senatus_genesis::lock::BootMaterial,
        config: GateConfig,
        amend: crate::amend::AmendHandle,
        tls: &senatus_transport::NodeTls,
    ) -> Result<Gate, GateError> {
        let genesis = material.genesis.clone();
        // Amendments keep the epoch's group key, threshold and membership:
        // seal 0 gives them until membership rotation exists.
        let seal = Seal::genesis(&genesis);
        if amend.with(|_| ()).is_none() {
            return Err(GateError::Policy(
                "the state machine does not track sealed versions".into(),
            ));
        }
        let pubkeys =
            signing::public_key_package(&seal).map_err(|e| GateError::Seal(e.to_string()))?;
        let node = NodeId::new(id).map_err(|e| GateError::Seal(e.to_string()))?;
        let generation: u64 = rand::random();
        let signer = Signer::new(
            material.frost.key_package.clone(),
            NoncePool::new(node, generation),
        )
        .map_err(|e| GateError::Seal(e.to_string()))?;
        let mut peers = BTreeMap::new();
        let mut apis = BTreeMap::new();
        for v in &seal.membership {
            let vid = v.id.get();
            if vid == id {
                continue;
            }
            peers.insert(
                vid,
                PeerClient::new(crate::network::peer_channel(tls, vid, &v.peer_addr)?),
            );
            apis.insert(
                vid,
                SenatusClient::new(crate::network::api_channel(tls, vid, &v.api_addr)?)
                    .max_decoding_message_size(crate::service::API_MESSAGE_BYTES_MAX),
            );
        }
        let (queue, queue_rx) = mpsc::channel(config.queue_requests_max);
        let broker = senatus_quorum::broker::Broker::new(&genesis, &[Self::seal_zero(&genesis)])
            .map_err(|e| GateError::Seal(format!("broker over genesis: {e}")))?;
        Ok(Gate {
            id,
            config,
            genesis_digest: genesis.digest(),
            group_key: seal.group_key,
            threshold: usize::from(seal.threshold),
            genesis,
            amend,
            pubkeys,
            signer: Mutex::new(signer),
            last_coordinator: Mutex::new(None),
            book: Mutex::new(CommitmentBook::default()),
            queue,
            queue_rx: Mutex::new(Some(queue_rx)),
            peers,
            apis,
            broker: Mutex::new((1, Arc::new(broker))),
            inflight: Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// Seal 0 as the first link of a seal chain (unsigned: genesis
    /// authenticates it).
    pub fn seal_zero(genesis: &Genesis) -> senatus_genesis::SignedSeal {
        senatus_genesis::SignedSeal {
            seal: Seal::genesis(genesis),
            signature: None,
        }
    }

    /// The seal chain, seal 0 first (for `GetSealChain`).
    pub fn seal_chain(&self) -> Vec<senatus_genesis::SignedSeal> {
        self.amend
            .with(|s| s.chain())
            .unwrap_or_else(|| vec![Self::seal_zero(&self.genesis)])
    }

    /// A broker over the current seal chain.
    fn broker(&self) -> Result<Arc<senatus_quorum::broker::Broker>, GateCallError> {
        let chain = self.seal_chain();
        let mut b = lock(&self.broker);
        if b.0 != chain.len() {
            let fresh = senatus_quorum::broker::Broker::new(&self.genesis, &chain)
                .map_err(|e| GateCallError::Internal(format!("seal chain does not verify: {e}")))?;
            *b = (chain.len(), Arc::new(fresh));
        }
        Ok(b.1.clone())
    }

    /// The genesis this gate serves (for `GetSealChain`).
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// Starts the batcher; call once, after the services exist. It ends
    /// when `stop` resolves (node shutdown).
    pub fn spawn(
        self: &Arc<Self>,
        shared: Shared,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
        tasks: &mut tokio::task::JoinSet<()>,
    ) {
        let Some(rx) = lock(&self.queue_rx).take() else {
            return;
        };
        let gate = self.clone();
        tasks.spawn(async move {
            tokio::select! {
                () = gate.batcher(shared, rx) => {}
                () = stop => {}
            }
        });
    }

    // ---- Decide ------------------------------------------------------------

    /// Answers one `Decide`: here when leading, else forwarded to the leader.
    pub async fn decide(
        &self,
        shared: &Shared,
        req: pb::DecideRequest,
    ) -> Result<pb::DecideReply, GateCallError> {
        // A locked validator decides nothing, not even by forwarding.
        if let Some(l) = shared.breach.lockdown(&self.amend) {
            return Err(l.error(self.id));
        }
        let request = request_from_wire(&req)?;
        let deadline = Instant::now() + Duration::from_millis(shared.bounds.leader_wait_ms);
        loop {
            let leader = shared.raft.metrics().borrow().current_leader;
            match leader {
                Some(l) if l == self.id => return self.submit(shared, request).await,
                Some(l) => {
                    let Some(client) = self.apis.get(&l) else {
                        return Err(GateCallError::LeaderNotInSeal { leader: l });
                    };
                    let mut client = client.clone();
                    let call = client.decide(req.clone());
                    let timeout = Duration::from_millis(self.config.forward_timeout_ms);
                    let s = match tokio::time::timeout(timeout, call).await {
                        Err(_) => {
                            return Err(GateCallError::DecideTimeout {
                                leader: l,
                                timeout_ms: self.config.forward_timeout_ms,
                            });
                        }
                        Ok(Ok(r)) => return Ok(r.into_inner()),
                        Ok(Err(s)) => s,
                    };
                    match forwarded(&s, Instant::now() < deadline) {
                        Forwarded::LookAgain => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Forwarded::Final => return Err(GateCallError::Leader(s)),
                        Forwarded::Failed => {
                            return Err(GateCallError::ForwardFailed {
                                leader: l,
                                status: s,
                            });
                        }
                    }
                }
                None if Instant::now() >= deadline => {
                    return Err(GateCallError::NoLeader {
                        wait_ms: shared.bounds.leader_wait_ms,
                        redeem: false,
                    });
                }
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    // ---- Redeem ------------------------------------------------------------

    /// Redeems a token: here when leading, else the same `Redeem` request
    /// is forwarded to the leader's public API, which checks it again. A
    /// follower never forwards a ready-made Redemption entry: the peer port
    /// refuses those from every validator.
    pub async fn redeem(
        &self,
        shared: &Shared,
        req: pb::RedeemRequest,
    ) -> Result<pb::RedeemReply, GateCallError> {
        let deadline = Instant::now() + Duration::from_millis(shared.bounds.leader_wait_ms);
        loop {
            let leader = shared.raft.metrics().borrow().current_leader;
            match leader {
                Some(l) if l == self.id => match self.redeem_here(shared, &req).await {
                    // No longer the leader, or a locked one giving way.
                    Err(e)
                        if e.code() == tonic::Code::FailedPrecondition
                            && Instant::now() < deadline => {}
                    other => return other,
                },
                Some(l) => {
                    let Some(client) = self.apis.get(&l) else {
                        return Err(GateCallError::LeaderNotInSeal { leader: l });
                    };
                    let timeout = Duration::from_millis(
                        shared.bounds.commit_timeout_ms + shared.bounds.quorum_ack_max_ms,
                    );
                    let mut client = client.clone();
                    let call = client.redeem(req.clone());
                    match tokio::time::timeout(timeout, call).await {
                        Err(_) => {
                            return Err(GateCallError::RedeemTimeout {
                                leader: l,
                                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                            });
                        }
                        Ok(Ok(r)) => return Ok(r.into_inner()),
                        // The leader moved or is giving way: look again.
                        Ok(Err(s))
                            if matches!(
                                s.code(),
                                tonic::Code::Unavailable | tonic::Code::FailedPrecondition
                            ) && Instant::now() < deadline => {}
                        Ok(Err(s)) if reason_of(&s).is_some() => {
                            return Err(GateCallError::Leader(s));
                        }
                        Ok(Err(s)) => {
                            return Err(GateCallError::Leader(senatus_proto::reason::status(
                                s.code(),
                                s.message(),
                                Reason::LeaderUnreachable,
                                [("leader", l.to_string())],
                            )));
                        }
                    }
                }
                None if Instant::now() >= deadline => {
                    return Err(GateCallError::NoLeader {
                        wait_ms: shared.bounds.leader_wait_ms,
                        redeem: true,
                    });
                }
                None => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = shared
                .raft
                .wait(Some(left.min(Duration::from_millis(50))))
                .metrics(
                    |m| m.current_leader.is_some() && m.current_leader != leader,
                    "leader",
                )
                .await;
        }
    }

    async fn redeem_here(
        &self,
        shared: &Shared,
        r: &pb::RedeemRequest,
    ) -> Result<pb::RedeemReply, GateCallError> {
        let token = self.check_redeemable(shared, &r.token, &r.params_json)?;
        let payload = redemption_payload(&token);
        let w = match shared
            .write_as_leader(Command::new(EntryKind::Redemption, payload))
            .await
        {
            Ok(w) => w,
            Err(
                e @ crate::service::WriteError::Rejected(
                    crate::raft_types::CommandRejection::NonceReplayed { .. },
                ),
            ) => {
                return Err(self.certify_replay(shared, &r.token, e));
            }
            Err(e) => return Err(GateCallError::Write(e)),
        };
        Ok(pb::RedeemReply {
            ledger_index: w.index,
            entry_hash: w.hash,
            nonce: token.payload.nonce.0.to_vec(),
        })
    }

    async fn submit(
        &self,
        shared: &Shared,
        request: DecisionRequest,
    ) -> Result<pb::DecideReply, GateCallError> {
        // Idempotency: a key already decided answers with that decision
        // (re-signed: same payload, same nonce), never a second entry; a
        // key used for another request is refused.
        let key = idempotency_key(&request);
        let digest = request.digest();
        let known = shared
            .sm
            .idempotency_result(&key)
            .map_err(|e| GateCallError::StorageRead {
                what: "idempotency",
                error: e.to_string(),
            })?;
        if let Some(rec) = known {
            if rec.request_digest != digest {
                return Err(GateCallError::IdempotencyConflict {
                    key: request.idempotency_key,
                    actor: request.actor,
                    ledger_index: rec.ledger_index,
                    position: rec.position,
                });
            }
            return self.reissue(shared, rec.ledger_index, rec.position).await;
        }
        {
            let mut inflight = lock(&self.inflight);
            match inflight.get(&key) {
                Some(d) if *d == digest => {
                    return Err(GateCallError::IdempotencyInFlight {
                        key: request.idempotency_key,
                    });
                }
                Some(_) => {
                    return Err(GateCallError::IdempotencyInUse {
                        key: request.idempotency_key,
                    });
                }
                None => {
                    inflight.insert(key.clone(), digest);
                }
            }
        }
        let answer = self.enqueue(request).await;
        lock(&self.inflight).remove(&key);
        answer
    }

    async fn enqueue(&self, request: DecisionRequest) -> Result<pb::DecideReply, GateCallError> {
        let (tx, rx) = oneshot::channel();
        self.queue
            .try_send(Pending { request, reply: tx })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => GateCallError::QueueFull {
                    queue_requests_max: self.config.queue_requests_max,
                },
                mpsc::error::TrySendError::Closed(_) => GateCallError::GateStopped,
            })?;
        rx.await.unwrap_or_else(|_| {
            Err(GateCallError::Internal(
                "decision batch dropped its request".into(),
            ))
        })
    }

    async fn batcher(self: Arc<Self>, shared: Shared, mut rx: mpsc::Receiver<Pending>) {
        let inflight = Arc::new(tokio::sync::Semaphore::new(
            self.config.batches_inflight_max,
        ));
        let max = self.config.batch_requests_max.clamp(1, BATCH_REQUESTS_MAX);
        while let Some(first) = rx.recv().await {
            let Ok(permit) = inflight.clone().acquire_owned().await else {
                return;
            };
            // Take what is already waiting, never wait for more: a lone
            // request goes out alone (low latency); under load the queue
            // fills while earlier batches are in flight (throughput).
            let mut items = vec![first];
            while items.len() < max {
                match rx.try_recv() {
                    Ok(p) => items.push(p),
                    Err(_) => break,
                }
            }
            let gate = self.clone();
            let shared = shared.clone();
            tokio::spawn(async move {
                gate.run_batch(&shared, items).await;
                drop(permit);
            });
        }
    }

    async fn run_batch(&self, shared: &Shared, items: Vec<Pending>) {
        let (requests, replies): (Vec<_>, Vec<_>) =
            items.into_iter().map(|p| (p.request, p.reply)).unzip();
        match self.decide_batch(shared, requests).await {
            Ok(answers) => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(Ok(answer));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }

    async fn decide_batch(
        &self,
        shared: &Shared,
        requests: Vec<DecisionRequest>,
    ) -> Result<Vec<pb::DecideReply>, GateCallError> {
        // A validator decides only under a seal it has redeclared (flow 4):
        // between a reseal and its own Redeclaration it waits, bounded.
        self.wait_redeclared(shared).await?;
        // The genesis lock again, before every batch: the active layer in
        // memory must still be the sealed one.
        if let Some(l) = crate::breach::check_memory(shared, &shared.breach) {
            return Err(l.error(self.id));
        }
        let issued_at_ms = now_ms();
        let active = self
            .amend
            .with(|s| s.active_sealed())
            .ok_or_else(|| GateCallError::Internal("no sealed policy".into()))?;
        let batch = DecisionBatch {
            issued_at_ms,
            expires_at_ms: issued_at_ms.saturating_add(self.config.token_ttl_ms),
            policy_version: active.seal.seal.version,
            seal_digest: active.digest,
            epoch: active.seal.seal.epoch,
            requests,
        };
        let started = Instant::now();
        // Log before answer: the entry commits first (I1).
        let written = shared
            .write_as_leader(Command::new(EntryKind::Decision, batch.encode()))
            .await
            .map_err(GateCallError::NotWritten)?;
        let entry_hash = Digest(written.hash.as_slice().try_into().map_err(|_| {
            GateCallError::Internal("ledger returned a malformed entry hash".into())
        })?);
        let built = self.build(&batch, written.index, entry_hash)?;
        #[cfg(feature = "fault-injection")]
        let built = if fault::active() == fault::Fault::LieOutcome {
            fault::lie(built, &self.group_key)
        } else {
            built
        };
        let committed = started.elapsed();
        let (signature, signers) = self.sign(shared, written.index, &built.message).await?;
        tracing::debug!(
            node = self.id,
            ledger_index = written.index,
            requests = built.decisions.len(),
            commit_us = committed.as_micros() as u64,
            total_us = started.elapsed().as_micros() as u64,
            "batch decided and signed"
        );
        Ok(answers(
            built,
            written.index,
            entry_hash,
            signature,
            &signers,
        ))
    }

    /// The answer to a retried request: its committed decision, rebuilt from
    /// this node's ledger and signed again by t validators. The payload
    /// (decision id, nonce, expiry) is the one first issued; FROST
    /// signatures are randomized, so the signature bytes differ, and either
    /// token redeems the one nonce once.
    async fn reissue(
        &self,
        shared: &Shared,
        ledger_index: u64,
        position: u32,
    ) -> Result<pb::DecideReply, GateCallError> {
        let entry = shared
            .sm
            .ledger_entry(ledger_index)
            .map_err(ledger_read)?
            .ok_or(GateCallError::EntryMissing { ledger_index })?;
        let batch =
            DecisionBatch::decode(&entry.payload).map_err(|e| GateCallError::StoredNotABatch {
                ledger_index,
                error: e.to_string(),
            })?;
        let built = self.build(&batch, ledger_index, entry.hash)?;
        let (signature, signers) = self.sign(shared, ledger_index, &built.message).await?;
        answers(built, ledger_index, entry.hash, signature, &signers)
            .into_iter()
            .nth(position as usize)
            .ok_or(GateCallError::NoPosition {
                ledger_index,
                position,
            })
    }

    /// Evaluates every request of `batch` (committed at `ledger_index` with
    /// `entry_hash`) and builds the token batch and the message to sign.
    /// Pure given its inputs: the leader and every signer run exactly this.
    fn build(
        &self,
        batch: &DecisionBatch,
        ledger_index: u64,
        entry_hash: Digest,
    ) -> Result<BuiltBatch, GateCallError> {
        // The state machine appended this batch only if the seal it names
        // was active at its index; evaluate under exactly that seal, even
        // if a later one is active here by now.
        let sealed = self
            .amend
            .with(|s| s.sealed(&batch.seal_digest))
            .flatten()
            .filter(|s| s.seal.seal.version == batch.policy_version)
            .ok_or(GateCallError::SealUnknown {
                ledger_index,
                policy_version: batch.policy_version.0,
                seal: batch.seal_digest,
            })?;
        // Agents certified on the ledger before this batch get DENY, with
        // the certificate as reason: the same on every signer (I7).
        let barred = self
            .amend
            .with(|s| s.certified().agents_at(ledger_index))
            .unwrap_or_default();
        batch
            .build_barred(
                &sealed.evaluator,
                self.genesis_digest,
                senatus_genesis::LedgerIndex(ledger_index),
                entry_hash,
                &self.group_key,
                &|r| {
                    barred
                        .get(&(r.tenant.clone(), r.actor.clone()))
                        .map(|id| format!("senatus.certificate.{id}"))
                },
            )
            .map_err(|e| GateCallError::Internal(format!("ledger index {ledger_index}: {e}")))
    }

    // ---- coordinator -------------------------------------------------------

    /// Gets t shares over `message` and aggregates them; retries with other
    /// signers when one refuses, times out or sends an invalid share.
    async fn sign(
        &self,
        shared: &Shared,
        ledger_index: u64,
        message: &[u8],
    ) -> Result<([u8; 64], Vec<u64>), GateCallError> {
        self.sign_for(shared, &SignTarget::Batch { ledger_index }, message)
            .await
    }

    /// Has `t` of the approvers (`signers`) of the passed amendment `proposal`
    /// threshold-sign `message` (its next seal's signing bytes); each of
    /// them computes the seal from its own tally and signs nothing else.
    pub async fn sign_next_seal(
        &self,
        shared: &Shared,
        proposal: senatus_quorum::amend::ProposalId,
        signers: Vec<NodeId>,
        message: &[u8],
    ) -> Result<[u8; 64], GateCallError> {
        let target = SignTarget::Seal { proposal, signers };
        self.sign_for(shared, &target, message).await.map(|r| r.0)
    }

    async fn sign_for(
        &self,
        shared: &Shared,
        target: &SignTarget,
        message: &[u8],
    ) -> Result<([u8; 64], Vec<u64>), GateCallError> {
        let ledger_index = match target {
            SignTarget::Batch { ledger_index } => *ledger_index,
            SignTarget::Seal { .. } => 0,
        };
        let mut excluded: Vec<NodeId> = Vec::new();
        let mut failures: Vec<String> = Vec::new();
        for _ in 0..self.config.sign_attempts_max {
            self.refill(shared).await;
            let ready: Vec<NodeId> = lock(&self.book).ready_signers();
            // The leader signs first: its own evaluation is the one it
            // proposed; the others are lowest-id first.
            let mut order: Vec<NodeId> = ready.clone();
            order.sort_by_key(|n| (n.get() != self.id, n.get()));
            let chosen: Vec<NodeId> = order
                .into_iter()
                .filter(|n| !excluded.contains(n))
                // A certified validator is in no signing set (flow 5).
                .filter(|n| shared.breach.excluded(*n, &self.amend).is_none())
                .filter(|n| match target {
                    SignTarget::Batch { .. } => true,
                    SignTarget::Seal { signers, .. } => signers.contains(n),
                })
                .take(self.threshold)
                .collect();
            if chosen.len() < self.threshold {
                break;
            }
            let plan = lock(&self.book)
                .take_for(&chosen)
                .map_err(|e| GateCallError::Internal(format!("commitment book: {e}")))?;
            let req = plan.request(message);
            let wire = req.to_bytes();
            let mut calls = tokio::task::JoinSet::new();
            let mut local = None;
            for signer in plan.signers() {
                let wire = wire.clone();
                let this = signer.get();
                if this == self.id {
                    local = Some(signer);
                    continue;
                }
                let Some(client) = self.peers.get(&this).cloned() else {
                    continue;
                };
                let from = self.id;
                let timeout = Duration::from_millis(self.config.share_timeout_ms);
                let target = target.clone();
                calls.spawn(async move {
                    let mut client = client;
                    let call = async {
                        match target {
                            SignTarget::Batch { ledger_index } => {
                                client
                                    .sign_batch(pb::SignBatchRequest {
                                        from,
                                        ledger_index,
                                        request: wire,
                                    })
                                    .await
                            }
                            SignTarget::Seal { proposal, .. } => {
                                client
                                    .sign_seal(pb::SignSealRequest {
                                        from,
                                        proposal_id: proposal.0.0.to_vec(),
                                        request: wire,
                                    })
                                    .await
                            }
                        }
                    };
                    let r = match tokio::time::timeout(timeout, call).await {
                        Err(_) => Err(format!("no share within {} ms", timeout.as_millis())),
                        Ok(Err(s)) => Err(format!("{:?}: {}", s.code(), s.message())),
                        Ok(Ok(r)) => {
                            let r = r.into_inner();
                            SignedShare::from_bytes(&r.share)
                                .map_err(|e| format!("malformed share: {e}"))
                                .map(|share| (share, <[u8; 64]>::try_from(r.attestation).ok()))
                        }
                    };
                    (signer, r)
                });
            }
            // The remote signers work while this node signs its own share.
            let t0 = Instant::now();
            let mut results = Vec::with_capacity(self.threshold);
            if let Some(me) = local {
                let share = match target {
                    SignTarget::Batch { ledger_index } => {
                        self.sign_locally(shared, *ledger_index, &req).await
                    }
                    SignTarget::Seal { proposal, .. } => self
                        .sign_seal(shared, *proposal, &req)
                        .await
                        .map_err(|e| format!("{:?}: {e}", e.code())),
                };
                let share = share.map(|sh| {
                    let att = shared.breach.sign(
                        &senatus_quorum::certificate::AttestedShare::signing_bytes(&req, &sh),
                    );
                    (sh, Some(att))
                });
                results.push((me, share));
            }
            let local_us = t0.elapsed().as_micros() as u64;
            while let Some(joined) = calls.join_next().await {
                if let Ok(r) = joined {
                    results.push(r);
                }
            }
            tracing::debug!(
                node = self.id,
                ledger_index,
                local_us,
                shares_us = t0.elapsed().as_micros() as u64,
                "signature shares collected"
            );
            let mut shares = BTreeMap::new();
            let mut attested = BTreeMap::new();
            for (signer, r) in results {
                // A certified signer's share is refused, even if asked for
                // before its certificate arrived.
                let r = r.and_then(
                    |(s, att)| match shared.breach.excluded(signer, &self.amend) {
                        Some(c) => Err(format!("excluded by shutdown certificate {c}")),
                        None => {
                            if let Some(att) = att {
                                attested.insert(signer, (s, att));
                            }
                            Ok(s)
                        }
                    },
                );
                match r.and_then(|s| plan.accept(signer, &s).map_err(|e| e.to_string())) {
                    Ok(share) => {
                        shares.insert(signer, share);
                    }
                    Err(why) => {
                        tracing::warn!(node = self.id, signer = signer.get(), ledger_index, %why, "signer gave no share");
                        failures.push(format!("validator {signer}: {why}"));
                        excluded.push(signer);
                        // Whatever went wrong (a restart, retired nonces),
                        // its other commitments are suspect: fetch fresh.
                        lock(&self.book).forget_signer(signer);
                    }
                }
            }
            if shares.len() < self.threshold {
                continue;
            }
            match signing::aggregate(&plan.package(message), &shares, &self.pubkeys) {
                Ok(sig) => {
                    return Ok((sig, plan.signers().iter().map(|n| n.get()).collect()));
                }
                Err(signing::AggregateError::InvalidShares { culprits }) => {
                    tracing::error!(
                        node = self.id,
                        ledger_index,
                        ?culprits,
                        "invalid signature shares"
                    );
                    // Each culprit signed its reply: the share is evidence
                    // any validator can re-check (flow 5).
                    for c in &culprits {
                        let Some((share, att)) = attested.get(c) else {
                            continue;
                        };
                        let evidence = senatus_quorum::certificate::Evidence::InvalidShare(
                            senatus_quorum::certificate::AttestedShare {
                                request: req.clone(),
                                share: *share,
                                signature: senatus_genesis::Sig64(*att),
                            },
                        );
                        if let Err(why) = shared.breach.issue(
                            shared,
                            senatus_quorum::certificate::Subject::Validator(*c),
                            evidence,
                        ) {
                            tracing::error!(node = self.id, culprit = %c, %why, "cannot certify an invalid share");
                        }
                    }
                    failures.push(format!("invalid shares from {culprits:?}"));
                    excluded.extend(culprits);
                }
                Err(e) => failures.push(format!("aggregate: {e}")),
            }
        }
        let why = if failures.is_empty() {
            "not enough signers with commitments reachable".to_string()
        } else {
            failures.join("; ")
        };
        Err(match target {
            SignTarget::Batch { .. } => GateCallError::NotSigned {
                ledger_index,
                threshold: self.threshold,
                why,
            },
            SignTarget::Seal { proposal, signers } => GateCallError::SealNotSigned {
                proposal: *proposal,
                signers: signers.clone(),
                why,
            },
        })
    }

    /// Tops up the commitment book: this node's own pool directly, peers
    /// over `Commitments`, concurrently and bounded.
    async fn refill(&self, shared: &Shared) {
        let low = self.config.commitments_low_water;
        let n = self.config.commitments_refill;
        let mine_low = match NodeId::new(self.id) {
            Ok(me) => {
                let available = lock(&self.book).available(me);
                available < low
            }
            Err(_) => false,
        };
        if mine_low {
            let fresh = self.commitments_for(self.id, n as usize);
            let mut book = lock(&self.book);
            for c in fresh {
                let _ = book.insert(c);
            }
        }
        let mut calls = tokio::task::JoinSet::new();
        for (id, client) in &self.peers {
            let Ok(node) = NodeId::new(*id) else { continue };
            let available = lock(&self.book).available(node);
            if available >= low {
                continue;
            }
            let mut client = client.clone();
            let from = self.id;
            let timeout = Duration::from_millis(self.config.share_timeout_ms);
            calls.spawn(async move {
                let call = client.commitments(pb::CommitmentsRequest { from, count: n });
                match tokio::time::timeout(timeout, call).await {
                    Ok(Ok(r)) => r.into_inner().commitments,
                    _ => Vec::new(),
                }
            });
        }
        let _ = shared;
        while let Some(Ok(list)) = calls.join_next().await {
            let mut book = lock(&self.book);
            for raw in list {
                if let Ok(c) = PublishedCommitment::from_bytes(&raw) {
                    let _ = book.insert(c);
                }
            }
        }
    }

    // ---- signer ------------------------------------------------------------

    /// Preprocessed commitments for coordinator `from`. A new coordinator
    /// means the previous one's commitments are abandoned: they are retired
    /// so the pool does not fill with nonces nobody will use.
    pub fn commitments_for(&self, from: u64, count: usize) -> Vec<PublishedCommitment> {
        let count = count.min(signing::POOL_NONCES_MAX);
        let mut signer = lock(&self.signer);
        let mut last = lock(&self.last_coordinator);
        if *last != Some(from) {
            signer.retire_through(u64::MAX);
            *last = Some(from);
        }
        if signer.pool().room() < count {
            // Nonces stranded by failed plans fill the pool: retire them all.
            // The coordinator forgets a signer's commitments whenever one of
            // them fails, so it holds none of these any more.
            signer.retire_through(u64::MAX);
            if from == self.id {
                let node = signer.node();
                lock(&self.book).forget_signer(node);
            }
        }
        signer.replenish(count, &mut rand::rngs::OsRng)
    }

    async fn sign_locally(
        &self,
        shared: &Shared,
        ledger_index: u64,
        req: &SignRequest,
    ) -> Result<SignedShare, String> {
        self.sign_entry(shared, ledger_index, req)
            .await
            .map_err(|e| format!("{:?}: {e}", e.code()))
    }

    /// The signer's side of `SignBatch`: waits until it has applied the
    /// entry at `ledger_index`, re-evaluates it, and signs only the message
    /// its own evaluation produces.
    pub async fn sign_entry(
        &self,
        shared: &Shared,
        ledger_index: u64,
        req: &SignRequest,
    ) -> Result<SignedShare, GateCallError> {
        if let Some(l) = crate::breach::check_memory(shared, &shared.breach) {
            return Err(l.error(self.id));
        }
        let deadline = Instant::now() + Duration::from_millis(self.config.apply_wait_ms);
        let entry = loop {
            // Read the applied position before the ledger, so an apply that
            // lands in between still changes it and wakes the wait below.
            let seen = shared.raft.metrics().borrow().last_applied;
            let head = shared.sm.ledger_head().map_err(ledger_read)?;
            if head.index >= ledger_index {
                break shared
                    .sm
                    .ledger_entry(ledger_index)
                    .map_err(ledger_read)?
                    .ok_or(GateCallError::EntryMissing { ledger_index })?;
            }
            if Instant::now() >= deadline {
                return Err(GateCallError::NotApplied {
                    node: self.id,
                    ledger_index,
                    wait_ms: self.config.apply_wait_ms,
                });
            }
            next_apply(shared, seen, deadline).await;
        };
        if entry.kind != EntryKind::Decision {
            return Err(GateCallError::NotADecision {
                ledger_index,
                kind: entry.kind,
            });
        }
        let batch =
            DecisionBatch::decode(&entry.payload).map_err(|e| GateCallError::UndecodableBatch {
                ledger_index,
                error: e.to_string(),
            })?;
        // A batch under the seal active here needs this validator's own
        // redeclaration of it first; a batch under an older seal was
        // decided before the reseal and is evaluated under that seal.
        let under_active = self
            .amend
            .with(|s| s.is_active(batch.policy_version.0, &batch.seal_digest))
            .unwrap_or(false);
        if under_active {
            self.wait_redeclared(shared).await?;
        }
        let built = self.build(&batch, ledger_index, entry.hash)?;
        #[cfg(feature = "fault-injection")]
        fault::refuse_sign(self.id)?;
        let mut signer = lock(&self.signer);
        let share = signer.sign(req, &built.message).map_err(|e| match e {
            signing::SigningError::MessageMismatch { .. } => GateCallError::EvaluationDiffers {
                node: self.id,
                ledger_index,
                error: e.to_string(),
            },
            other => GateCallError::SignerFailed {
                node: self.id,
                error: other.to_string(),
            },
        })?;
        #[cfg(feature = "fault-injection")]
        if fault::active() == fault::Fault::BadShare {
            return Ok(fault::corrupt(share));
        }
        Ok(share)
    }

    /// The signer's side of `SignSeal`: waits (bounded) until its own
    /// tally has passed `proposal`, and signs only if it is one of the first
    /// `t` approvers and the message is the next seal its own tally
    /// computes.
    pub async fn sign_seal(
        &self,
        shared: &Shared,
        proposal: senatus_quorum::amend::ProposalId,
        req: &SignRequest,
    ) -> Result<SignedShare, GateCallError> {
        if let Some(l) = shared.breach.lockdown(&self.amend) {
            return Err(l.error(self.id));
        }
        let deadline = Instant::now() + Duration::from_millis(self.config.apply_wait_ms);
        let (seal, signers) = loop {
            let seen = shared.raft.metrics().borrow().last_applied;
            let pending = self.amend.with(|s| s.pending_seal()).flatten();
            match pending {
                Some((id, seal, signers)) if id == proposal => break (seal, signers),
                _ if Instant::now() >= deadline => {
                    return Err(GateCallError::NoPendingSeal {
                        node: self.id,
                        proposal,
                    });
                }
                _ => {}
            }
            next_apply(shared, seen, deadline).await;
        };
        if !signers.iter().any(|n| n.get() == self.id) {
            return Err(GateCallError::NotAnApprover {
                node: self.id,
                signers,
                proposal,
            });
        }
        #[cfg(feature = "fault-injection")]
        fault::refuse_sign(self.id)?;
        let message = seal.signing_bytes();
        let mut signer = lock(&self.signer);
        signer
            .sign(req, &message)
            .map_err(|e| GateCallError::SealDiffers {
                node: self.id,
                proposal,
                error: e.to_string(),
            })
    }

    /// Waits (bounded by `apply_wait_ms`) until this validator has
    /// redeclared the active seal. Until then it neither decides nor signs
    /// under that seal: it never fails open (DESIGN.md, flow 4).
    async fn wait_redeclared(&self, shared: &Shared) -> Result<(), GateCallError> {
        let me = NodeId::new(self.id).map_err(|e| GateCallError::Internal(e.to_string()))?;
        let deadline = Instant::now() + Duration::from_millis(self.config.apply_wait_ms);
        loop {
            let seen = shared.raft.metrics().borrow().last_applied;
            let pending = self
                .amend
                .with(|s| (!s.has_redeclared(me)).then(|| s.seal().version.0))
                .ok_or_else(|| GateCallError::Internal("no sealed policy".into()))?;
            let Some(version) = pending else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                return Err(GateCallError::NotRedeclared {
                    node: self.id,
                    policy_version: version,
                    wait_ms: self.config.apply_wait_ms,
                });
            }
            next_apply(shared, seen, deadline).await;
        }
    }

    /// True while this node leads (for the peer handlers).
    pub fn is_leader(shared: &Shared, from: u64) -> bool {
        let m = shared.raft.metrics().borrow().clone();
        m.current_leader == Some(from) && (from != shared.id || m.state == ServerState::Leader)
    }

    // ---- redemption --------------------------------------------------------

    /// Checks a token before its nonce is consumed: authentic (signature,
    /// proof, chain), a PERMIT, not expired, and — when the bearer's params
    /// are given — for exactly those params. The broker checks scope and
    /// params offline; the cluster refuses to burn a nonce for a forgery.
    /// A token that decodes but does not verify, or whose params were
    /// modified, is a breach by the agent it names: a shutdown certificate
    /// against that agent is issued (flow 5).
    pub fn check_redeemable(
        &self,
        shared: &Shared,
        token_bytes: &[u8],
        params_json: &str,
    ) -> Result<token::Token, GateCallError> {
        use senatus_quorum::certificate::Evidence;
        let t = token::Token::from_bytes(token_bytes)
            .map_err(|e| GateCallError::TokenMalformed(e.to_string()))?;
        let v = match self.broker()?.verify_receipt_token(t.clone()) {
            Ok(v) => v,
            Err(e) => {
                let certified = self.certify_agent(
                    shared,
                    &t,
                    Evidence::TokenForged {
                        token: token_bytes.to_vec(),
                    },
                );
                return Err(GateCallError::TokenForged {
                    error: e.to_string(),
                    certified,
                });
            }
        };
        let t = v.token;
        if !params_json.is_empty() {
            let same = serde_json::from_str::<serde_json::Value>(params_json)
                .ok()
                .and_then(|p| senatus_quorum::params_digest(&p).ok())
                .is_some_and(|d| d == t.payload.params_digest);
            if !same {
                let certified = self.certify_agent(
                    shared,
                    &t,
                    Evidence::TokenModified {
                        token: token_bytes.to_vec(),
                        params_json: params_json.to_string(),
                    },
                );
                return Err(GateCallError::TokenParamsMismatch {
                    params_digest: t.payload.params_digest,
                    certified,
                });
            }
        }
        if t.payload.outcome != Outcome::Permit {
            return Err(GateCallError::TokenNotPermit {
                outcome: t.payload.outcome,
            });
        }
        let now = now_ms();
        if now >= t.payload.expires_at_ms {
            return Err(GateCallError::TokenExpired {
                expires_at_ms: t.payload.expires_at_ms,
                now_ms: now,
            });
        }
        Ok(t)
    }

    /// A second redemption of a valid token's nonce: certifies the agent
    /// it names (flow 5) and returns the refusal, naming both.
    pub fn certify_replay(
        &self,
        shared: &Shared,
        token_bytes: &[u8],
        refused: crate::service::WriteError,
    ) -> GateCallError {
        let Ok(t) = token::Token::from_bytes(token_bytes) else {
            return GateCallError::Write(refused);
        };
        let first = shared
            .sm
            .nonce_redemption(&t.payload.nonce.0)
            .ok()
            .flatten();
        let Some(first_index) = first else {
            return GateCallError::Write(refused);
        };
        let certified = self.certify_agent(
            shared,
            &t,
            senatus_quorum::certificate::Evidence::TokenReplayed {
                token: token_bytes.to_vec(),
                first_index,
            },
        );
        GateCallError::Replayed {
            write: refused,
            certified,
        }
    }

    fn certify_agent(
        &self,
        shared: &Shared,
        t: &token::Token,
        evidence: senatus_quorum::certificate::Evidence,
    ) -> String {
        let subject = senatus_quorum::certificate::Subject::Agent {
            tenant: t.payload.tenant.clone(),
            actor: t.payload.actor.clone(),
        };
        match shared.breach.issue(shared, subject.clone(), evidence) {
            Ok(id) => format!("shutdown certificate {id} issued against {subject}"),
            Err(why) => format!("no certificate against {subject}: {why}"),
        }
    }
}

/// Waits until this node applies past `seen`, or until `deadline`. Read
/// `seen` before the state being waited on, so an apply that lands in
/// between still ends the wait.
async fn next_apply(shared: &Shared, seen: Option<crate::raft_types::LogId>, deadline: Instant) {
    let left = deadline.saturating_duration_since(Instant::now());
    let _ = shared
        .raft
        .wait(Some(left))
        .metrics(|m| m.last_applied != seen, "an apply")
        .await;
}

/// One reply per request of a signed batch.
fn answers(
    built: BuiltBatch,
    ledger_index: u64,
    entry_hash: Digest,
    signature: [u8; 64],
    signers: &[u64],
) -> Vec<pb::DecideReply> {
    built
        .tokens
        .tokens(signature)
        .into_iter()
        .zip(built.decisions)
        .map(|(t, d)| pb::DecideReply {
            outcome: d.outcome.as_str().to_string(),
            reasons: d.reasons,
            ledger_index,
            entry_hash: entry_hash.0.to_vec(),
            position: t.payload.position,
            decision_id: t.payload.decision_id.0.to_vec(),
            policy_version: t.payload.policy_version.0,
            expires_at_ms: t.payload.expires_at_ms,
            token: t.to_bytes(),
            signers: signers.to_vec(),
        })
        .collect()
}

/// The store key of a request's idempotency key: SHA3-256 over
/// `"senatus/idempotency/v1" 0x00 str tenant str actor str key`, so keys of
/// different agents and tenants never collide.
pub fn idempotency_key(r: &DecisionRequest) -> Vec<u8> {
    let mut e = senatus_genesis::codec::Encoder::new("idempotency", 1);
    e.str(&r.tenant).str(&r.actor).str(&r.idempotency_key);
    e.digest_of().0.to_vec()
}

fn ledger_read(e: impl std::fmt::Display) -> GateCallError {
    GateCallError::StorageRead {
        what: "ledger",
        error: e.to_string(),
    }
}

/// What to do with a leader's refusal of a forwarded `Decide`, decided by
/// its reason (docs/PROTOCOL.md 19), never by its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forwarded {
    /// The leader is giving way (locked down), moved, is starting, or
    /// could not be reached: look for the leader again.
    LookAgain,
    /// The leader's own answer: the gate's final word, passed on as it is.
    Final,
    /// No senatus answer (transport), and no time left to look again.
    Failed,
}

/// Classifies a leader's refusal `s` of a forwarded `Decide`; `time_left`
/// says whether the leader wait has not ended yet.
fn forwarded(s: &Status, time_left: bool) -> Forwarded {
    match reason_of(s) {
        Some(r) => match r.known() {
            Some(Reason::LockedDown | Reason::NotLeader | Reason::GateUnavailable) if time_left => {
                Forwarded::LookAgain
            }
            // Every other reason (one this build does not know included)
            // is the leader's answer; so is a giving-way one past the wait.
            _ => Forwarded::Final,
        },
        None if s.code() == tonic::Code::Unavailable && time_left => Forwarded::LookAgain,
        None => Forwarded::Failed,
    }
}

/// The wire request as a validated [`DecisionRequest`].
pub fn request_from_wire(r: &pb::DecideRequest) -> Result<DecisionRequest, RequestError> {
    let params: serde_json::Value = serde_json::from_str(&r.params_json)
        .map_err(|e| RequestError::ParamsNotJson(e.to_string()))?;
    let ctx = r.context.clone().unwrap_or_default();
    let uncertainty = u16::try_from(ctx.uncertainty_permille)
        .map_err(|_| RequestError::Uncertainty(ctx.uncertainty_permille))?;
    let request = DecisionRequest {
        surface: r.surface.clone(),
        action: r.action.clone(),
        actor: r.actor.clone(),
        tenant: r.tenant.clone(),
        params,
        context: AgentContext {
            uncertainty_permille: uncertainty,
            resources: ctx.resources.into_iter().collect(),
            external_endpoints: ctx.external_endpoints,
        },
        idempotency_key: r.idempotency_key.clone(),
    };
    request
        .validate()
        .map_err(|e| RequestError::Invalid(e.to_string()))?;
    Ok(request)
}

/// Payload of a `Redemption` ledger entry: the token's nonce, decision id
/// and digest.
///
/// ```text
/// redemption = "senatus/redemption/v1" 0x00  bytes16 nonce (u32 length 16, then 16 bytes)
///              fixed32 decision_id  fixed32 token_digest
/// ```
pub fn redemption_payload(t: &token::Token) -> Vec<u8> {
    let mut e = senatus_genesis::codec::Encoder::new("redemption", 1);
    e.bytes(&t.payload.nonce.0)
        .digest(&t.payload.decision_id)
        .digest(&t.digest());
    e.finish()
}

/// The nonce of a `Redemption` payload (what the state machine keys on).
pub fn redemption_nonce(payload: &[u8]) -> Option<Vec<u8>> {
    let mut d = senatus_genesis::codec::Decoder::new(payload, "redemption", 1).ok()?;
    let nonce = d.bytes("nonce").ok()?.to_vec();
    d.digest("decision_id").ok()?;
    d.digest("token_digest").ok()?;
    d.finish().ok()?;
    (nonce.len() == token::NONCE_BYTES).then_some(nonce)
}

/// Faults a test can switch on in one validator process through the
/// `SENATUS_FAULT` environment variable. Compiled only with the
/// `fault-injection` feature, which the test suite enables and no shipped
/// build does: there is no way to turn these on in a normal binary.
#[cfg(feature = "fault-injection")]
pub mod fault {
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
            _ => Fault::None,
        })
    }

    /// File triggers of the tamper hooks, checked by the detector loop:
    /// `DATA_DIR/TAMPER_MEMORY` (any content) edits the active policy layer
    /// in memory; `DATA_DIR/FLIP_LEDGER` (a ledger index) flips one stored
    /// byte of that entry. Each file is removed once acted on.
    pub fn tamper_hooks(shared: &crate::service::Shared, data_dir: &std::path::Path) {
        let memory = data_dir.join("TAMPER_MEMORY");
        if memory.exists() && std::fs::remove_file(&memory).is_ok() {
            tracing::warn!(
                node = shared.id,
                "fault injection: tampering the in-memory policy layer"
            );
            let _ = shared.sm.amendments().with(|s| s.tamper_active_layer());
        }
        let flip = data_dir.join("FLIP_LEDGER");
        if let Ok(text) = std::fs::read_to_string(&flip) {
            let _ = std::fs::remove_file(&flip);
            match text.trim().parse::<u64>() {
                Ok(index) => {
                    tracing::warn!(
                        node = shared.id,
                        index,
                        "fault injection: flipping a stored ledger byte"
                    );
                    if let Err(e) = shared.sm.flip_stored_byte(index) {
                        tracing::error!(node = shared.id, error = %e, "flip hook failed");
                    }
                }
                Err(e) => {
                    tracing::error!(node = shared.id, error = %e, "FLIP_LEDGER holds no index")
                }
            }
        }
    }

    /// `refuse-sign`: the refusal every signing request gets.
    pub fn refuse_sign(id: u64) -> Result<(), super::GateCallError> {
        if active() == Fault::RefuseSign {
            return Err(super::GateCallError::FaultRefusesToSign { node: id });
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use senatus_proto::reason;

    fn with(code: tonic::Code, r: &str) -> Status {
        // A reason this build may not know, built as a newer validator would.
        let rpc = senatus_proto::v1::RpcStatus {
            code: code as i32,
            message: "m".into(),
            details: vec![senatus_proto::v1::AnyDetail {
                type_url: reason::ERROR_INFO_TYPE_URL.into(),
                value: prost::Message::encode_to_vec(&senatus_proto::v1::ErrorInfo {
                    reason: r.into(),
                    domain: reason::DOMAIN.into(),
                    metadata: Default::default(),
                }),
            }],
        };
        Status::with_details(code, "m", prost::Message::encode_to_vec(&rpc).into())
    }

    #[test]
    fn a_forwarded_decide_is_judged_by_the_leaders_reason_not_its_words() {
        use tonic::Code;
        // Giving way, moved or starting: look again while the wait lasts.
        for r in ["LOCKED_DOWN", "NOT_LEADER", "GATE_UNAVAILABLE"] {
            let s = with(Code::Unavailable, r);
            assert_eq!(forwarded(&s, true), Forwarded::LookAgain, "{r}");
            assert_eq!(forwarded(&s, false), Forwarded::Final, "{r}");
        }
        // The gate's own answer, whatever its code: final at once.
        for (code, r) in [
            (Code::FailedPrecondition, "IDEMPOTENCY_CONFLICT"),
            (Code::Unavailable, "NOT_SIGNED"),
            (Code::Unavailable, "NO_QUORUM"),
            (Code::ResourceExhausted, "QUEUE_FULL"),
            (Code::Unavailable, "FROM_A_NEWER_VALIDATOR"),
        ] {
            assert_eq!(forwarded(&with(code, r), true), Forwarded::Final, "{r}");
        }
        // No senatus answer: a transport failure. UNAVAILABLE is looked at
        // again; the rest, or past the wait, is a failed forward.
        let words = Status::unavailable("LockedDown: no token");
        assert_eq!(forwarded(&words, true), Forwarded::LookAgain);
        assert_eq!(forwarded(&words, false), Forwarded::Failed);
        let words = Status::failed_precondition("LockedDown: ...; no token");
        assert_eq!(forwarded(&words, true), Forwarded::Failed);
    }

    #[test]
    fn a_gate_refusal_keeps_its_words_and_carries_its_reason_and_values() {
        let e = GateCallError::IdempotencyConflict {
            key: "k-1".into(),
            actor: "agent-5".into(),
            ledger_index: 12,
            position: 3,
        };
        let s = Status::from(e);
        assert_eq!(s.code(), tonic::Code::FailedPrecondition);
        assert_eq!(
            s.message(),
            "idempotency key \"k-1\" was already used by agent \"agent-5\" for a different request (decided at ledger index 12, position 3); no token"
        );
        let r = reason::reason_of(&s).expect("reason");
        assert_eq!(r.known(), Some(Reason::IdempotencyConflict));
        assert_eq!(r.metadata["idempotencyKey"], "k-1");
        assert_eq!(r.metadata["ledgerIndex"], "12");

        // A failed batch write keeps the write's reason, with "no token".
        let e = GateCallError::NotWritten(crate::service::WriteError::NotCommitted {
            commit_timeout_ms: 3000,
        });
        let s = Status::from(e);
        assert_eq!(s.code(), tonic::Code::Unavailable);
        assert!(
            s.message().ends_with("if the quorum returns; no token"),
            "{}",
            s.message()
        );
        assert_eq!(Reason::of(&s), Some(Reason::CommitTimeout));

        // A leader's answer passed on is the same status.
        let leader = Status::from(GateCallError::QueueFull {
            queue_requests_max: 8,
        });
        let s = Status::from(GateCallError::Leader(leader.clone()));
        assert_eq!(s.message(), leader.message());
        assert_eq!(s.details(), leader.details());

        // A transport failure on the way to the leader names it.
        let s = Status::from(GateCallError::ForwardFailed {
            leader: 2,
            status: Status::cancelled("operation was canceled"),
        });
        assert_eq!(s.code(), tonic::Code::Cancelled);
        assert_eq!(
            s.message(),
            "forwarding to leader 2: operation was canceled; no token"
        );
        assert_eq!(Reason::of(&s), Some(Reason::LeaderUnreachable));
    }

    #[test]
    fn a_malformed_request_names_its_field() {
        let bad = pb::DecideRequest {
            params_json: "{".into(),
            ..Default::default()
        };
        let e = GateCallError::from(request_from_wire(&bad).expect_err("not JSON"));
        assert!(
            e.to_string().starts_with("params_json is not JSON: "),
            "{e}"
        );
        let s = Status::from(e);
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        let r = reason::reason_of(&s).expect("reason");
        assert_eq!(r.known(), Some(Reason::InvalidRequest));
        assert_eq!(r.metadata["field"], "params_json");
    }
}
