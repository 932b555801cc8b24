//! Redeem: a token verified offline here, its nonce redeemed through Raft
//! exactly once (on the leader); a replayed or forged token certifies the
//! agent only on evidence the agent produced.

use super::*;

impl Gate {
    /// Redeems a token: here when leading, else the same `Redeem` request
    /// is forwarded to the leader's public API, which checks it again. A
    /// follower never forwards a ready-made Redemption entry: the peer port
    /// refuses those from every validator.
    pub async fn redeem(
        &self,
        shared: &Cluster,
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

    pub(super) async fn redeem_here(
        &self,
        shared: &Cluster,
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
                e @ crate::write_error::WriteError::Rejected(
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

    /// Checks a token before its nonce is consumed: authentic (signature,
    /// proof, chain), a PERMIT, not expired, and — when the bearer's params
    /// are given — for exactly those params. The broker checks scope and
    /// params offline; the cluster refuses to burn a nonce for a forgery.
    /// A token that decodes but does not verify, or whose params were
    /// modified, is a breach by the agent it names: a shutdown certificate
    /// against that agent is issued (flow 5).
    pub fn check_redeemable(
        &self,
        shared: &Cluster,
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
            let same = senatus_quorum::parse_params(params_json)
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
        shared: &Cluster,
        token_bytes: &[u8],
        refused: crate::write_error::WriteError,
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

    pub(super) fn certify_agent(
        &self,
        shared: &Cluster,
        t: &token::Token,
        evidence: senatus_quorum::certificate::Evidence,
    ) -> String {
        let subject = senatus_quorum::certificate::Subject::Agent {
            tenant: t.payload.tenant.clone(),
            actor: t.payload.actor.clone(),
        };
        match self.breach.issue(shared, subject.clone(), evidence) {
            Ok(id) => format!("shutdown certificate {id} issued against {subject}"),
            Err(why) => format!("no certificate against {subject}: {why}"),
        }
    }
}
