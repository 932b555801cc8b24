//! The `Peer` service: Raft between validators, write forwarding, the
//! signing calls and certificate delivery; every caller is a validator
//! authenticated by mutual TLS, and every claim it makes is checked
//! against that identity.

use super::*;

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

/// Most commitments one `Commitments` call hands out.
pub const COMMITMENTS_PER_CALL_MAX: u32 = 256;

fn command_from_wire(w: pb::WriteCommand) -> Result<Command, Status> {
    let code = u8::try_from(w.kind)
        .map_err(|_| invalid(format!("entry kind {} out of range", w.kind), Some("kind")))?;
    let kind = EntryKind::from_code(code).map_err(|e| invalid(e.to_string(), Some("kind")))?;
    Ok(Command::new(kind, w.payload))
}
