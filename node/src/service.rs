//! The gRPC services: `Peer` (Raft between validators, write forwarding)
//! and `Senatus` (the public API).

use std::sync::Arc;
use std::time::Instant;

use openraft::ServerState;
use senatus_genesis::Digest;
use senatus_proto::v1 as pb;
use tonic::{Request, Response, Status};

pub use crate::cluster::{Cluster, WriteBounds};
use crate::ledger::{EntryKind, LedgerEntry};
use crate::network::{decode, encode};
use crate::raft_types::{Command, TypeConfig};
use crate::store::StoreError;
pub use crate::write_error::WriteError;
use senatus_proto::reason::{self, Reason};

pub use crate::network::API_MESSAGE_BYTES_MAX;
/// Largest operator record payload (`INVALID_ARGUMENT` above it).
pub const RECORD_PAYLOAD_BYTES_MAX: usize = 64 * 1024;
/// Most ledger entries one `GetLedger` call returns.
pub const GET_LEDGER_ENTRIES_MAX: u32 = 1000;
/// Most payload bytes one `GetLedger` reply carries (beyond its first
/// entry), well inside the API's 16 MiB encoding limit.
pub const GET_LEDGER_REPLY_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Bytes a wire ledger entry adds to its payload (index, kind, two hashes,
/// protobuf framing), counted generously.
const LEDGER_ENTRY_WIRE_OVERHEAD_BYTES: usize = 96;

/// What both services share: the cluster handle, the decision gate and
/// the breach state.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The cluster (Raft, state machine, write path).
    pub cluster: Cluster,
    /// The decision gate.
    pub gate: Arc<crate::gate::Gate>,
    /// Breach state: validated certificates, lockdown, fan-out.
    pub breach: Arc<crate::breach::Breach>,
}

impl std::ops::Deref for Shared {
    type Target = Cluster;

    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}

/// A refusal at the service edge: `message`, carrying `why` and the gRPC
/// code it travels with.
fn refusal(
    why: Reason,
    message: impl Into<String>,
    metadata: impl IntoIterator<Item = (&'static str, String)>,
) -> Status {
    reason::status(why.code(), message, why, metadata)
}

fn internal(what: &str, e: impl std::fmt::Display) -> Status {
    refusal(Reason::InternalError, format!("{what}: {e}"), [])
}

fn invalid(message: impl Into<String>, field: Option<&'static str>) -> Status {
    refusal(
        Reason::InvalidRequest,
        message,
        field.map(|f| ("field", f.to_string())),
    )
}

fn ledger_read_failed(e: impl std::fmt::Display) -> Status {
    refusal(
        Reason::StorageFailed,
        format!("ledger read failed: {e}"),
        [],
    )
}

fn amendments_disabled() -> Status {
    refusal(
        Reason::AmendmentsDisabled,
        "this node does not tally amendments",
        [],
    )
}

/// `Peer` service.
#[derive(Debug, Clone)]
pub struct PeerService(pub Shared);

fn decode_req<T: serde::de::DeserializeOwned>(m: &pb::RaftMessage) -> Result<T, Status> {
    decode(&m.payload).map_err(|e| invalid(format!("bad raft payload: {e}"), Some("payload")))
}

fn encode_reply<T: serde::Serialize>(v: &T) -> Result<Response<pb::RaftMessage>, Status> {
    let payload = encode(v).map_err(|e| internal("encode raft reply", e))?;
    Ok(Response::new(pb::RaftMessage { from: 0, payload }))
}

impl PeerService {
    /// The validator that authenticated this request's connection with its
    /// certificate (mutual TLS). The peer port's TLS layer admits no one
    /// else; a connection without one is refused here too.
    fn sender<T>(&self, req: &Request<T>) -> Result<u64, Status> {
        senatus_transport::caller(req)
            .map(|n| n.get())
            .ok_or_else(|| {
                refusal(
                    Reason::PeerUnauthenticated,
                    "no validator certificate on this connection; the peer port is for validators of genesis only",
                    [],
                )
            })
    }

    /// What a message says about its sender (`from`, a vote's leader or
    /// candidate) must be the authenticated validator.
    fn check_claim(
        &self,
        rpc: &'static str,
        sender: u64,
        field: &'static str,
        claimed: u64,
    ) -> Result<(), Status> {
        if sender == claimed {
            return Ok(());
        }
        tracing::warn!(
            node = self.0.id,
            rpc,
            sender,
            field,
            claimed,
            "peer message claims another validator; refused, nothing changed"
        );
        Err(refusal(
            Reason::PeerIdentityMismatch,
            format!(
                "{rpc}: authenticated as validator {sender}, but {field} names {claimed}; refused"
            ),
            [
                ("rpc", rpc.to_string()),
                ("sender", sender.to_string()),
                ("field", field.to_string()),
                ("claimed", claimed.to_string()),
            ],
        ))
    }

    /// A signing request must come from the leader this validator follows,
    /// authenticated as itself.
    fn check_signing_caller(
        &self,
        rpc: &'static str,
        sender: u64,
        from: u64,
    ) -> Result<(), Status> {
        self.check_claim(rpc, sender, "from", from)?;
        if !crate::gate::Gate::is_leader(&self.0, from) {
            return Err(refusal(
                Reason::CallerNotLeader,
                format!("node {from} is not the leader this validator follows; not signing"),
                [("caller", from.to_string())],
            ));
        }
        Ok(())
    }

    /// A Raft message: `from` and the vote inside (leader or candidate)
    /// must both be the authenticated validator.
    fn raft_sender<T>(
        &self,
        rpc: &'static str,
        req: &Request<pb::RaftMessage>,
        vote_of: impl FnOnce(&T) -> u64,
    ) -> Result<T, Status>
    where
        T: serde::de::DeserializeOwned,
    {
        let sender = self.sender(req)?;
        let m = req.get_ref();
        self.check_claim(rpc, sender, "from", m.from)?;
        let decoded: T = decode_req(m)?;
        self.check_claim(rpc, sender, "the vote's node id", vote_of(&decoded))?;
        Ok(decoded)
    }

    /// What a follower may forward: a record, a proposal, its own vote, its
    /// own redeclaration or a certificate — each re-checked as the public
    /// API would. Decisions and seals are appended by the leader itself and
    /// redemptions arrive as `Redeem` requests, so none is forwardable.
    fn check_forwardable(&self, sender: u64, cmd: &Command) -> Result<(), Status> {
        let refuse = |why: String| {
            tracing::warn!(node = self.0.id, rpc = "ForwardWrite", sender, kind = ?cmd.kind, %why, "forwarded write refused, nothing changed");
            Err(refusal(
                Reason::ForwardRefused,
                format!("ForwardWrite from validator {sender}: {why}; refused"),
                [
                    ("sender", sender.to_string()),
                    ("kind", format!("{:?}", cmd.kind)),
                ],
            ))
        };
        match cmd.kind {
            EntryKind::Record => check_record(&cmd.payload),
            EntryKind::Proposal => check_proposal(&self.0, &cmd.payload),
            EntryKind::Vote => {
                let v = senatus_quorum::amend::SignedVote::decode(&cmd.payload)
                    .map_err(|e| invalid(format!("vote: {e}"), Some("payload")))?;
                let voter = v.vote.voter.get();
                if voter != sender {
                    return refuse(format!("a vote cast by validator {voter}, not by the sender"));
                }
                Ok(())
            }
            EntryKind::Redeclaration => {
                let gate = self.0.gate.clone();
                let r = crate::amend::Redeclaration::verify(
                    &cmd.payload,
                    &gate.genesis().body.validators,
                )
                .map_err(|e| invalid(format!("redeclaration: {e}"), Some("payload")))?;
                if r.node.get() != sender {
                    return refuse(format!(
                        "a redeclaration by validator {}, not by the sender",
                        r.node
                    ));
                }
                Ok(())
            }
            EntryKind::Certificate => crate::breach::decode(&cmd.payload)
                .map(|_| ())
                .map_err(|e| {
                    refusal(
                        Reason::CertificateRefused,
                        format!("certificate refused: {e}"),
                        [],
                    )
                }),
            EntryKind::Decision | EntryKind::Seal => refuse(format!(
                "{:?} entries are appended only by the leader itself",
                cmd.kind
            )),
            EntryKind::Redemption => refuse(
                "redemptions are forwarded as Redeem requests, which the leader re-checks, never as ledger entries"
                    .into(),
            ),
        }
    }
}

#[tonic::async_trait]
impl pb::peer_server::Peer for PeerService {
    async fn append_entries(
        &self,
        req: Request<pb::RaftMessage>,
    ) -> Result<Response<pb::RaftMessage>, Status> {
        let rpc: openraft::raft::AppendEntriesRequest<TypeConfig> = self.raft_sender(
            "AppendEntries",
            &req,
            |r: &openraft::raft::AppendEntriesRequest<TypeConfig>| r.vote.leader_id().node_id,
        )?;
        let r = self.0.raft.append_entries(rpc).await;
        encode_reply(&r)
    }

    async fn vote(
        &self,
        req: Request<pb::RaftMessage>,
    ) -> Result<Response<pb::RaftMessage>, Status> {
        let rpc: openraft::raft::VoteRequest<u64> =
            self.raft_sender("Vote", &req, |r: &openraft::raft::VoteRequest<u64>| {
                r.vote.leader_id().node_id
            })?;
        let r = self.0.raft.vote(rpc).await;
        encode_reply(&r)
    }

    async fn install_snapshot(
        &self,
        req: Request<pb::RaftMessage>,
    ) -> Result<Response<pb::RaftMessage>, Status> {
        let rpc: openraft::raft::InstallSnapshotRequest<TypeConfig> = self.raft_sender(
            "InstallSnapshot",
            &req,
            |r: &openraft::raft::InstallSnapshotRequest<TypeConfig>| r.vote.leader_id().node_id,
        )?;
        let r = self.0.raft.install_snapshot(rpc).await;
        encode_reply(&r)
    }

    async fn forward_write(
        &self,
        req: Request<pb::WriteCommand>,
    ) -> Result<Response<pb::WriteReply>, Status> {
        let sender = self.sender(&req)?;
        let cmd = command_from_wire(req.into_inner())?;
        self.check_forwardable(sender, &cmd)?;
        self.0
            .write_as_leader(cmd)
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn commitments(
        &self,
        req: Request<pb::CommitmentsRequest>,
    ) -> Result<Response<pb::CommitmentsReply>, Status> {
        let sender = self.sender(&req)?;
        let r = req.into_inner();
        self.check_signing_caller("Commitments", sender, r.from)?;
        let count = usize::try_from(r.count.min(COMMITMENTS_PER_CALL_MAX)).unwrap_or(0);
        let gate = self.0.gate.clone();
        if let Some(l) = self.0.breach.lockdown(self.0.sm.amendments()) {
            return Err(l.status(self.0.id));
        }
        let list = gate.commitments_for(r.from, count);
        Ok(Response::new(pb::CommitmentsReply {
            commitments: list.iter().map(|c| c.to_bytes()).collect(),
        }))
    }

    async fn sign_batch(
        &self,
        req: Request<pb::SignBatchRequest>,
    ) -> Result<Response<pb::SignBatchReply>, Status> {
        let sender = self.sender(&req)?;
        let r = req.into_inner();
        self.check_signing_caller("SignBatch", sender, r.from)?;
        let sign_req = senatus_quorum::signing::SignRequest::from_bytes(&r.request)
            .map_err(|e| invalid(format!("sign request: {e}"), Some("request")))?;
        let gate = self.0.gate.clone();
        let share = gate
            .sign_entry(&self.0, r.ledger_index, &sign_req)
            .await
            .map_err(Status::from)?;
        Ok(Response::new(self.attested(&sign_req, &share)))
    }

    async fn sign_seal(
        &self,
        req: Request<pb::SignSealRequest>,
    ) -> Result<Response<pb::SignBatchReply>, Status> {
        let sender = self.sender(&req)?;
        let r = req.into_inner();
        self.check_signing_caller("SignSeal", sender, r.from)?;
        let id: [u8; 32] = r.proposal_id.as_slice().try_into().map_err(|_| {
            invalid(
                format!("proposal_id is {} bytes, not 32", r.proposal_id.len()),
                Some("proposal_id"),
            )
        })?;
        let sign_req = senatus_quorum::signing::SignRequest::from_bytes(&r.request)
            .map_err(|e| invalid(format!("sign request: {e}"), Some("request")))?;
        let gate = self.0.gate.clone();
        let share = gate
            .sign_seal(
                &self.0,
                senatus_quorum::amend::ProposalId(Digest(id)),
                &sign_req,
            )
            .await
            .map_err(Status::from)?;
        Ok(Response::new(self.attested(&sign_req, &share)))
    }

    async fn certify(
        &self,
        req: Request<pb::CertifyRequest>,
    ) -> Result<Response<pb::CertifyReply>, Status> {
        let sender = self.sender(&req)?;
        let r = req.into_inner();
        self.check_claim("Certify", sender, "from", r.from)?;
        let cert = crate::breach::decode(&r.certificate).map_err(|e| {
            refusal(
                Reason::CertificateRefused,
                format!("certificate refused: {e}"),
                [],
            )
        })?;
        match self.0.breach.accept(&self.0, &cert) {
            Ok(id) => {
                self.0.breach.certify_head_conflict(&self.0, &cert);
                Ok(Response::new(pb::CertifyReply { id: id.0.to_vec() }))
            }
            Err(why) => {
                tracing::warn!(node = self.0.id, from = r.from, certificate = %cert.id(), %why, "certificate refused; nothing changes");
                Err(refusal(
                    Reason::CertificateRefused,
                    format!("certificate {} refused: {why}", cert.id()),
                    [("certificate", cert.id().to_string())],
                ))
            }
        }
    }
}

impl PeerService {
    /// A share with this validator's identity signature over it (PROTOCOL
    /// 17.1), so an invalid one is attributable.
    fn attested(
        &self,
        req: &senatus_quorum::signing::SignRequest,
        share: &senatus_quorum::signing::SignedShare,
    ) -> pb::SignBatchReply {
        let bytes = senatus_quorum::certificate::AttestedShare::signing_bytes(req, share);
        pb::SignBatchReply {
            share: share.to_bytes(),
            attestation: self.0.breach.sign(&bytes).to_vec(),
        }
    }
}

/// A record's bound, checked where it enters: the public API and a
/// follower's forward.
fn check_record(payload: &[u8]) -> Result<(), Status> {
    if payload.len() > RECORD_PAYLOAD_BYTES_MAX {
        return Err(refusal(
            Reason::PayloadTooLarge,
            format!(
                "record payload is {} bytes, above record_payload_bytes_max {RECORD_PAYLOAD_BYTES_MAX}",
                payload.len()
            ),
            [
                ("payloadBytes", payload.len().to_string()),
                ("payloadBytesMax", RECORD_PAYLOAD_BYTES_MAX.to_string()),
            ],
        ));
    }
    Ok(())
}

/// Refuses a proposal that cannot decode before it costs a Raft round;
/// admission itself is decided on apply, identically everywhere.
fn check_proposal(shared: &Shared, signed: &[u8]) -> Result<(), Status> {
    let max = shared
        .sm
        .amendments()
        .with(|s| s.layer_bytes_max())
        .ok_or_else(amendments_disabled)?;
    senatus_quorum::amend::SignedProposal::decode(signed, max)
        .map(|_| ())
        .map_err(|e| invalid(format!("proposal: {e}"), Some("signed_proposal")))
}

/// Most commitments one `Commitments` call hands out.
pub const COMMITMENTS_PER_CALL_MAX: u32 = 256;

fn command_from_wire(w: pb::WriteCommand) -> Result<Command, Status> {
    let code = u8::try_from(w.kind)
        .map_err(|_| invalid(format!("entry kind {} out of range", w.kind), Some("kind")))?;
    let kind = EntryKind::from_code(code).map_err(|e| invalid(e.to_string(), Some("kind")))?;
    Ok(Command::new(kind, w.payload))
}

/// The public `Senatus` service.
#[derive(Debug, Clone)]
pub struct ApiService(pub Shared);

impl ApiService {
    async fn timed<T>(
        &self,
        method: &'static str,
        f: impl std::future::Future<Output = Result<T, Status>>,
    ) -> Result<Response<T>, Status> {
        let start = Instant::now();
        let r = f.await;
        let code = r.as_ref().map_or_else(|s| s.code(), |_| tonic::Code::Ok);
        self.0.metrics.observe(method, code, start.elapsed());
        r.map(Response::new)
    }
}

fn entry_to_wire(e: LedgerEntry, state_digest: Option<Digest>) -> pb::LedgerEntry {
    pb::LedgerEntry {
        index: e.index,
        kind: u32::from(e.kind.code()),
        payload: e.payload,
        prev_hash: e.prev_hash.0.to_vec(),
        hash: e.hash.0.to_vec(),
        state_digest: state_digest.map(|d| d.0.to_vec()).unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl pb::senatus_server::Senatus for ApiService {
    async fn append_record(
        &self,
        req: Request<pb::AppendRecordRequest>,
    ) -> Result<Response<pb::WriteReply>, Status> {
        let payload = req.into_inner().payload;
        self.timed("AppendRecord", async {
            check_record(&payload)?;
            self.0
                .write(Command::new(EntryKind::Record, payload))
                .await
                .map_err(Status::from)
        })
        .await
    }

    async fn get_ledger(
        &self,
        req: Request<pb::GetLedgerRequest>,
    ) -> Result<Response<pb::GetLedgerReply>, Status> {
        let r = req.into_inner();
        self.timed("GetLedger", async {
            if r.from == 0 || r.to < r.from {
                return Err(invalid(
                    format!(
                        "range [{}, {}] is empty or starts at 0 (ledger indexes start at 1)",
                        r.from, r.to
                    ),
                    Some("from"),
                ));
            }
            let limit = if r.limit == 0 {
                GET_LEDGER_ENTRIES_MAX
            } else {
                r.limit
            };
            let limit = limit.min(GET_LEDGER_ENTRIES_MAX) as usize;
            let entries = self
                .0
                .sm
                .ledger_range(r.from, r.to, limit)
                .map_err(ledger_read_failed)?;
            // Bound the reply by bytes as well as by count: a page of large
            // entries stops early (never before its first entry, which is
            // at most LEDGER_PAYLOAD_BYTES_MAX), and the caller asks again.
            let mut bytes = 0usize;
            let entries = entries
                .into_iter()
                .take_while(|e| {
                    let first = bytes == 0;
                    bytes += e.payload.len() + LEDGER_ENTRY_WIRE_OVERHEAD_BYTES;
                    first || bytes <= GET_LEDGER_REPLY_BYTES_MAX
                })
                .map(|e| {
                    let digest = self.0.sm.state_digest_at(e.index)?;
                    Ok(entry_to_wire(e, digest))
                })
                .collect::<Result<_, StoreError>>()
                .map_err(ledger_read_failed)?;
            Ok(pb::GetLedgerReply { entries })
        })
        .await
    }

    async fn ledger_head(
        &self,
        _req: Request<pb::LedgerHeadRequest>,
    ) -> Result<Response<pb::LedgerHeadReply>, Status> {
        self.timed("LedgerHead", async {
            let h = self.0.sm.ledger_head().map_err(ledger_read_failed)?;
            let state_digest = self
                .0
                .sm
                .state_digest_at(h.index)
                .map_err(ledger_read_failed)?;
            Ok(pb::LedgerHeadReply {
                index: h.index,
                hash: h.hash.0.to_vec(),
                genesis_digest: self.0.genesis_digest.0.to_vec(),
                state_digest: state_digest.map(|d| d.0.to_vec()).unwrap_or_default(),
            })
        })
        .await
    }

    async fn decide(
        &self,
        req: Request<pb::DecideRequest>,
    ) -> Result<Response<pb::DecideReply>, Status> {
        let r = req.into_inner();
        self.timed("Decide", async {
            let gate = self.0.gate.clone();
            gate.decide(&self.0, r).await.map_err(Status::from)
        })
        .await
    }

    async fn redeem(
        &self,
        req: Request<pb::RedeemRequest>,
    ) -> Result<Response<pb::RedeemReply>, Status> {
        let r = req.into_inner();
        self.timed("Redeem", async {
            self.0.gate.redeem(&self.0, r).await.map_err(Status::from)
        })
        .await
    }

    async fn get_seal_chain(
        &self,
        _req: Request<pb::SealChainRequest>,
    ) -> Result<Response<pb::SealChainReply>, Status> {
        self.timed("GetSealChain", async {
            let gate = self.0.gate.clone();
            let genesis_json = serde_json::to_string_pretty(gate.genesis())
                .map_err(|e| internal("encode genesis", e))?;
            let seals_json = gate
                .seal_chain()
                .iter()
                .map(serde_json::to_string)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| internal("encode seal", e))?;
            Ok(pb::SealChainReply {
                genesis_json,
                seals_json,
            })
        })
        .await
    }

    async fn propose(
        &self,
        req: Request<pb::ProposeRequest>,
    ) -> Result<Response<pb::WriteReply>, Status> {
        let r = req.into_inner();
        self.timed("Propose", async {
            check_proposal(&self.0, &r.signed_proposal)?;
            self.0
                .write(Command::new(EntryKind::Proposal, r.signed_proposal))
                .await
                .map_err(Status::from)
        })
        .await
    }

    async fn list_certificates(
        &self,
        _req: Request<pb::ListCertificatesRequest>,
    ) -> Result<Response<pb::ListCertificatesReply>, Status> {
        self.timed("ListCertificates", async {
            let amend = self.0.sm.amendments();
            Ok(pb::ListCertificatesReply {
                certificates: self.0.breach.views(amend),
                locked_by: self
                    .0
                    .breach
                    .lockdown(amend)
                    .map(|l| l.id.0.to_vec())
                    .unwrap_or_default(),
            })
        })
        .await
    }

    async fn amend_status(
        &self,
        req: Request<pb::AmendStatusRequest>,
    ) -> Result<Response<pb::AmendStatusReply>, Status> {
        let r = req.into_inner();
        self.timed("AmendStatus", async {
            let only = match r.proposal_id.len() {
                0 => None,
                32 => {
                    let mut a = [0u8; 32];
                    a.copy_from_slice(&r.proposal_id);
                    Some(senatus_quorum::amend::ProposalId(Digest(a)))
                }
                n => {
                    return Err(invalid(
                        format!("proposal_id is {n} bytes, not 32 (or empty for all)"),
                        Some("proposal_id"),
                    ));
                }
            };
            let proposals = self
                .0
                .sm
                .amendments()
                .with(|s| crate::amend::views(s, only))
                .ok_or_else(amendments_disabled)?;
            if only.is_some() && proposals.is_empty() {
                return Err(refusal(
                    Reason::ProposalNotFound,
                    format!(
                        "no proposal {} on this node's ledger",
                        hex::encode(&r.proposal_id)
                    ),
                    [("proposal", hex::encode(&r.proposal_id))],
                ));
            }
            Ok(pb::AmendStatusReply { proposals })
        })
        .await
    }

    async fn status(
        &self,
        _req: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusReply>, Status> {
        self.timed("Status", async {
            let m = self.0.raft.metrics().borrow().clone();
            let g = self.0.gauges().await;
            let head = self.0.sm.ledger_head().map_err(ledger_read_failed)?;
            let role = match m.state {
                ServerState::Leader => "leader",
                ServerState::Follower => "follower",
                ServerState::Candidate => "candidate",
                ServerState::Learner => "learner",
                ServerState::Shutdown => "shutdown",
            };
            Ok(pb::StatusReply {
                node_id: self.0.id,
                role: role.to_string(),
                term: g.term,
                leader_id: g.leader,
                commit_index: g.commit_index,
                applied_index: g.applied_index,
                ledger_index: head.index,
                ledger_hash: head.hash.0.to_vec(),
                voters: m.membership_config.membership().voter_ids().collect(),
                chain_id: self.0.chain_id.clone(),
            })
        })
        .await
    }
}
