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
use std::time::{Duration, Instant};

use openraft::ServerState;
use senatus_genesis::seal::SealAttestations;
use senatus_genesis::{Digest, Genesis, Key32, NodeId, Seal};
use senatus_proto::reason::{Reason, Reasoned, reason_of};
use senatus_proto::v1 as pb;
use senatus_proto::v1::peer_client::PeerClient;
use senatus_proto::v1::senatus_client::SenatusClient;
use senatus_quorum::Outcome;
use senatus_quorum::auth::SignedRequest;
use senatus_quorum::batch::{BATCH_REQUESTS_MAX, BuiltBatch, DecisionBatch};
use senatus_quorum::quota::{QuotaKind, Quotas};
use senatus_quorum::request::{AgentContext, DecisionRequest};
use senatus_quorum::signing::{
    self, CommitmentBook, NoncePool, PublishedCommitment, SignRequest, SignedShare, Signer,
};
use senatus_quorum::token;
use tokio::sync::{mpsc, oneshot};
use tonic::Status;
use tonic::transport::Channel;

use crate::breach::Breach;
use crate::clock::{lock, now_ms};
use crate::cluster::Cluster;
#[cfg(feature = "fault-injection")]
use crate::fault;
pub use crate::gate_error::{GateCallError, RequestError};
use crate::ledger::EntryKind;
use crate::raft_types::Command;
pub use senatus_replica::records::{Redemption, idempotency_key, redemption_nonce};

mod batcher;
mod coordinator;
mod forward;
mod redeem;
mod signer;

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
    /// A decision batch at this ledger index, with the leader's signed
    /// attestation of its times (PROTOCOL 21.5).
    Batch {
        ledger_index: u64,
        attestation: Vec<u8>,
    },
    /// The next seal of a passed amendment, by these approvers, over the
    /// head a quorum attested.
    Seal {
        proposal: senatus_quorum::amend::ProposalId,
        signers: Vec<NodeId>,
        attested: SealAttestations,
    },
}

/// A request waiting for its batch.
struct Pending {
    request: SignedRequest,
    reply: oneshot::Sender<Result<pb::DecideReply, GateCallError>>,
}

/// The decision gate of one validator: its signer (always) and, while it
/// leads, the batcher and coordinator.
pub struct Gate {
    id: u64,
    config: GateConfig,
    genesis_digest: Digest,
    genesis: Genesis,
    /// Agents' signatures this validator already found valid.
    verified: Arc<crate::caller::VerifiedMemo>,
    /// The sealed versions (derived from the ledger): the active one decides
    /// new batches; each batch is evaluated under the seal it names.
    amend: crate::store::StateHandle,
    /// This validator's breach state (lockdown, exclusions, certifying).
    breach: Arc<Breach>,
    /// Leader attestations this signer accepted, to witness to the others.
    witnesses: Arc<crate::witness::WitnessQueue>,
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
    /// Decisions and redemptions admitted per agent and per tenant in
    /// their current windows (`[quotas]`), counted while this validator
    /// leads. Local: a new leader starts its windows afresh. Taken after
    /// `inflight` when both are held.
    quotas: Mutex<Quotas>,
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
        amend: crate::store::StateHandle,
        breach: Arc<Breach>,
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
                    .max_decoding_message_size(crate::network::API_MESSAGE_BYTES_MAX),
            );
        }
        let (queue, queue_rx) = mpsc::channel(config.queue_requests_max);
        let broker = senatus_quorum::broker::Broker::new(&genesis, &[Self::seal_zero(&genesis)])
            .map_err(|e| GateError::Seal(format!("broker over genesis: {e}")))?;
        Ok(Gate {
            breach,
            witnesses: Arc::default(),
            id,
            config,
            genesis_digest: genesis.digest(),
            verified: Arc::default(),
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
            quotas: Mutex::new(Quotas::new()),
        })
    }

    /// Seal 0 as the first link of a seal chain (unsigned: genesis
    /// authenticates it).
    pub fn seal_zero(genesis: &Genesis) -> senatus_genesis::SignedSeal {
        senatus_genesis::SignedSeal {
            seal: Seal::genesis(genesis),
            signature: None,
            attested: None,
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

    /// The leader attestations this signer accepted, waiting to be
    /// witnessed to the other validators.
    pub fn witnesses(&self) -> &Arc<crate::witness::WitnessQueue> {
        &self.witnesses
    }

    /// The genesis this gate serves (for `GetSealChain`).
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// Starts the batcher; call once, after the services exist. It ends
    /// when `stop` resolves (node shutdown).
    pub fn spawn(
        self: &Arc<Self>,
        shared: Cluster,
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
}

fn ledger_read(e: impl std::fmt::Display) -> GateCallError {
    GateCallError::StorageRead {
        what: "ledger",
        error: e.to_string(),
    }
}

/// Signs `wire` as the agent holding `key` does (docs/PROTOCOL.md 10.1):
/// over the digest of the canonical request a validator rebuilds from the
/// wire fields ([`request_from_wire`]), for the chain `genesis_digest`, at
/// `signed_at_ms`. Fills `signed_at_ms`, `agent_key` and `signature`.
pub fn sign_wire(
    wire: &mut pb::DecideRequest,
    key: &ed25519_dalek::SigningKey,
    genesis_digest: &Digest,
    signed_at_ms: u64,
) -> Result<(), RequestError> {
    let request = request_from_wire(wire)?;
    let signed = SignedRequest::sign(key, genesis_digest, request, signed_at_ms);
    wire.signed_at_ms = signed_at_ms;
    wire.agent_key = signed.key.0.to_vec();
    wire.signature = signed.signature.to_vec();
    Ok(())
}

/// The wire request as a validated [`DecisionRequest`].
pub fn request_from_wire(r: &pb::DecideRequest) -> Result<DecisionRequest, RequestError> {
    let params = senatus_quorum::parse_params(&r.params_json).map_err(RequestError::Params)?;
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
