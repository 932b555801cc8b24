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

    /// A Raft message's term must be within [`crate::peer_guard`]'s bound
    /// of this validator's own.
    fn check_term(&self, rpc: &'static str, sender: u64, term: u64) -> Result<(), Status> {
        let local = self.0.guard.log.vote_term();
        crate::peer_guard::check_term(term, local).map_err(|lie| {
            self.refuse_lie(
                rpc,
                sender,
                Reason::PeerTermOutOfBounds,
                &lie,
                [("term", term.to_string()), ("localTerm", local.to_string())],
            )
        })
    }

    /// A refused message from authenticated validator `sender`: logged with
    /// the sender and counted against it (`senatus_peer_refusals_total`).
    /// It arrived over TLS only, signed by nobody, so it is no evidence
    /// anyone else could check: no certificate is claimed.
    fn refuse_lie(
        &self,
        rpc: &'static str,
        sender: u64,
        why: Reason,
        lie: &dyn std::fmt::Display,
        metadata: impl IntoIterator<Item = (&'static str, String)>,
    ) -> Status {
        tracing::warn!(
            node = self.0.id,
            rpc,
            sender,
            reason = why.as_str(),
            %lie,
            "refused a message from an authenticated validator; nothing changed (not signed: logged and counted, no certificate)"
        );
        self.0.metrics.peer_refused(sender, why.as_str());
        let mut meta = vec![("rpc", rpc.to_string()), ("sender", sender.to_string())];
        meta.extend(metadata);
        refusal(
            why,
            format!("{rpc} from validator {sender}: {lie}; refused"),
            meta,
        )
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
        let sender = rpc.vote.leader_id().node_id;
        self.check_term("AppendEntries", sender, rpc.vote.leader_id().term)?;
        let guard = &self.0.guard;
        // No lock between the check and openraft: the committed index only
        // grows, and openraft takes any entry at or below its own committed
        // index as matching (it never replaces one), so an entry that
        // becomes committed in between is safe. A lock here serialised
        // heartbeats behind synced appends: -6% at c=256 (BENCHMARKS.md).
        let ids: Vec<_> = rpc.entries.iter().map(|e| e.log_id).collect();
        let committed = guard.log.committed_index();
        let checked =
            crate::peer_guard::check_append(rpc.prev_log_id.as_ref(), &ids, committed, |i| {
                guard.log.log_id_at(i)
            })
            .map_err(|e| internal("read the local log", e))?;
        if let Err(lie) = checked {
            return Err(self.refuse_lie(
                "AppendEntries",
                sender,
                Reason::PeerLogConflict,
                &lie,
                [(
                    "committed",
                    committed.map_or("none".into(), |c| c.to_string()),
                )],
            ));
        }
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
        self.check_term(
            "Vote",
            rpc.vote.leader_id().node_id,
            rpc.vote.leader_id().term,
        )?;
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
        let sender = rpc.vote.leader_id().node_id;
        self.check_term("InstallSnapshot", sender, rpc.vote.leader_id().term)?;
        let local = self.0.raft.metrics().borrow().vote;
        if rpc.vote < local {
            // A stale leader: answered with this validator's vote, as
            // openraft would, so it steps down; nothing received.
            return encode_reply(&SnapshotReply::Ok(snapshot_vote(local)));
        }
        let bytes_max = self.0.sm.snapshot_bytes_max();
        let whole = self
            .0
            .guard
            .inbox
            .chunk(
                sender,
                rpc.vote,
                &rpc.meta.snapshot_id,
                rpc.offset,
                &rpc.data,
                rpc.done,
                bytes_max,
            )
            .map_err(|e| {
                self.refuse_lie(
                    "InstallSnapshot",
                    sender,
                    Reason::SnapshotRefused,
                    &e,
                    [("snapshot", rpc.meta.snapshot_id.clone())],
                )
            })?;
        let Some(whole) = whole else {
            return encode_reply(&SnapshotReply::Ok(snapshot_vote(local)));
        };
        // Verified here, off the async threads, before openraft sees it: a
        // snapshot that does not verify is this refusal, never a storage
        // error that would stop Raft.
        let sm = self.0.sm.clone();
        let meta = rpc.meta.clone();
        let (data, verified) = tokio::task::spawn_blocking(move || {
            let v = sm.prepare_snapshot(&meta, &whole.data);
            (whole.data, v)
        })
        .await
        .map_err(|e| internal("snapshot verification task", e))?;
        if let Err(e) = verified {
            return Err(self.refuse_lie(
                "InstallSnapshot",
                sender,
                Reason::SnapshotRefused,
                &e,
                [("snapshot", rpc.meta.snapshot_id.clone())],
            ));
        }
        let snapshot = openraft::Snapshot {
            meta: rpc.meta,
            snapshot: Box::new(std::io::Cursor::new(data)),
        };
        let installed = self.0.raft.install_full_snapshot(rpc.vote, snapshot).await;
        // Installed (and taken) or ignored by openraft: nothing to keep.
        self.0.sm.forget_prepared_snapshot();
        let r: SnapshotReply = match installed {
            Ok(resp) => Ok(snapshot_vote(resp.vote)),
            Err(fatal) => Err(openraft::error::RaftError::Fatal(fatal)),
        };
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
        let attestation = senatus_quorum::certificate::AttestedBatch::decode(
            senatus_quorum::certificate::BreachKind::BatchLifetime,
            &r.attestation,
        )
        .map_err(|e| invalid(format!("attestation: {e}"), Some("attestation")))?;
        self.check_claim(
            "SignBatch",
            sender,
            "the attestation's leader",
            attestation.leader.get(),
        )?;
        let gate = self.0.gate.clone();
        let share = gate
            .sign_entry(&self.0, r.ledger_index, &sign_req, Some(&attestation))
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
        let id = digest32(&r.proposal_id, "proposal_id")?;
        let sign_req = senatus_quorum::signing::SignRequest::from_bytes(&r.request)
            .map_err(|e| invalid(format!("sign request: {e}"), Some("request")))?;
        let attested = seal_attestations(r.ledger_index, &r.entry_hash, &r.attestations)?;
        let gate = self.0.gate.clone();
        let share = gate
            .sign_seal(
                &self.0,
                senatus_quorum::amend::ProposalId(id),
                &sign_req,
                &attested,
            )
            .await
            .map_err(|e| self.refuse_head(e, "SignSeal", sender))?;
        Ok(Response::new(self.attested(&sign_req, &share)))
    }

    async fn attest_seal(
        &self,
        req: Request<pb::AttestSealRequest>,
    ) -> Result<Response<pb::AttestSealReply>, Status> {
        let sender = self.sender(&req)?;
        let r = req.into_inner();
        self.check_claim("AttestSeal", sender, "from", r.from)?;
        let proposal = digest32(&r.proposal_id, "proposal_id")?;
        let seal_digest = digest32(&r.seal_digest, "seal_digest")?;
        let entry_hash = digest32(&r.entry_hash, "entry_hash")?;
        let gate = self.0.gate.clone();
        let signature = gate
            .attest_seal(
                &self.0,
                senatus_quorum::amend::ProposalId(proposal),
                seal_digest,
                r.ledger_index,
                entry_hash,
            )
            .await
            .map_err(|e| self.refuse_head(e, "AttestSeal", sender))?;
        Ok(Response::new(pb::AttestSealReply {
            signature: signature.to_vec(),
        }))
    }

    async fn witness(
        &self,
        req: Request<pb::WitnessRequest>,
    ) -> Result<Response<pb::WitnessReply>, Status> {
        let sender = self.sender(&req)?;
        let r = req.into_inner();
        self.check_claim("Witness", sender, "from", r.from)?;
        let validators = &self.0.gate.genesis().body.validators;
        let judged = crate::witness::judge(&self.0, &self.0.breach, validators, &r.attestations)
            .map_err(|e| self.refuse_lie("Witness", sender, Reason::InvalidRequest, &e, []))?;
        let count = |w: crate::witness::Witnessed| {
            u32::try_from(judged.iter().filter(|j| **j == w).count()).unwrap_or(u32::MAX)
        };
        Ok(Response::new(pb::WitnessReply {
            agreed: count(crate::witness::Witnessed::Agrees),
            not_applied: count(crate::witness::Witnessed::NotApplied),
            forks: count(crate::witness::Witnessed::Fork),
        }))
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
    /// A gate refusal as a status; a head that forks this validator's own
    /// ledger is a lie that arrived over TLS only, so it is also logged
    /// and counted against the sender (PROTOCOL 4.1, 21).
    fn refuse_head(
        &self,
        e: crate::gate_error::GateCallError,
        rpc: &'static str,
        sender: u64,
    ) -> Status {
        match &e {
            crate::gate_error::GateCallError::HeadDiffers { ledger_index, .. } => self.refuse_lie(
                rpc,
                sender,
                Reason::PeerLogConflict,
                &e,
                [("ledgerIndex", ledger_index.to_string())],
            ),
            _ => Status::from(e),
        }
    }

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

/// What an InstallSnapshot call answers, as openraft's chunked receiver
/// would.
type SnapshotReply = Result<
    openraft::raft::InstallSnapshotResponse<u64>,
    openraft::error::RaftError<u64, openraft::error::InstallSnapshotError>,
>;

fn snapshot_vote(vote: crate::raft_types::Vote) -> openraft::raft::InstallSnapshotResponse<u64> {
    openraft::raft::InstallSnapshotResponse { vote }
}

/// Most commitments one `Commitments` call hands out.
pub const COMMITMENTS_PER_CALL_MAX: u32 = 256;

fn command_from_wire(w: pb::WriteCommand) -> Result<Command, Status> {
    let code = u8::try_from(w.kind)
        .map_err(|_| invalid(format!("entry kind {} out of range", w.kind), Some("kind")))?;
    let kind = EntryKind::from_code(code).map_err(|e| invalid(e.to_string(), Some("kind")))?;
    Ok(Command::new(kind, w.payload))
}

/// A 32-byte digest field of a peer request, or INVALID_ARGUMENT naming it.
fn digest32(bytes: &[u8], field: &'static str) -> Result<Digest, Status> {
    <[u8; 32]>::try_from(bytes).map(Digest).map_err(|_| {
        invalid(
            format!("{field} is {} bytes, not 32", bytes.len()),
            Some(field),
        )
    })
}

/// The attested head a `SignSeal` carries, decoded strictly: a 32-byte
/// hash, at most `VALIDATORS_MAX` attestations, valid ids, 64-byte
/// signatures (whether they verify is the signer's check).
fn seal_attestations(
    ledger_index: u64,
    entry_hash: &[u8],
    attestations: &[pb::HeadAttestation],
) -> Result<senatus_genesis::seal::SealAttestations, Status> {
    let entry_hash = digest32(entry_hash, "entry_hash")?;
    if attestations.len() > senatus_genesis::document::VALIDATORS_MAX {
        return Err(invalid(
            format!(
                "{} attestations; at most {}",
                attestations.len(),
                senatus_genesis::document::VALIDATORS_MAX
            ),
            Some("attestations"),
        ));
    }
    let mut by = Vec::with_capacity(attestations.len());
    for a in attestations {
        let validator = senatus_genesis::NodeId::new(a.validator).map_err(|_| {
            invalid(
                format!("attestation by {}, not a node id", a.validator),
                Some("attestations"),
            )
        })?;
        let signature = <[u8; 64]>::try_from(a.signature.as_slice()).map_err(|_| {
            invalid(
                format!(
                    "attestation by {validator}: a {}-byte signature, not 64",
                    a.signature.len()
                ),
                Some("attestations"),
            )
        })?;
        by.push(senatus_genesis::seal::HeadAttestation {
            validator,
            signature: senatus_genesis::Sig64(signature),
        });
    }
    // Carried as given: a repeat or disorder is the signer's refusal to
    // make, not something to tidy away here.
    Ok(senatus_genesis::seal::SealAttestations {
        ledger_index,
        entry_hash,
        by,
    })
}
