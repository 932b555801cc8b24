//! The public `Senatus` API: records, the ledger, decisions, redemptions,
//! the seal chain, status, amendments and certificates.

use super::*;
use senatus_genesis::registry::Role;
use senatus_proto::reason::Reasoned as _;
use senatus_quorum::auth::get_ledger_body;

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
        let r = req.into_inner();
        let payload = r.payload;
        self.timed("AppendRecord", async {
            // Bounds first (cheap, no state), then who is asking.
            check_record(&payload)?;
            crate::caller::authorize(
                self.0.sm.amendments(),
                &self.0.genesis_digest,
                "AppendRecord",
                &payload,
                r.auth.as_ref(),
                &[Role::Operator],
            )
            .map_err(|e| e.to_status())?;
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
            // Entries carry every request's params: auditors and operators
            // only, signed and fresh. (An agent reads its own decision by
            // retrying its signed request.)
            crate::caller::authorize(
                self.0.sm.amendments(),
                &self.0.genesis_digest,
                "GetLedger",
                &get_ledger_body(r.from, r.to, r.limit),
                r.auth.as_ref(),
                &[Role::Auditor, Role::Operator],
            )
            .map_err(|e| e.to_status())?;
            let limit = if r.limit == 0 {
                GET_LEDGER_ENTRIES_MAX
            } else {
                r.limit
            };
            let limit = limit.min(GET_LEDGER_ENTRIES_MAX) as usize;
            // Bounded by bytes as well as by count, before anything is
            // decoded (LEDGER_RANGE_BYTES_MAX): a page of large entries
            // ends early (never before its first entry), and the caller
            // asks again from its last index + 1.
            let entries = self
                .0
                .sm
                .ledger_range(r.from, r.to, limit)
                .map_err(ledger_read_failed)?;
            let entries = entries
                .into_iter()
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
