//! Redeem: a registered broker's signed call with the agent's presentation;
//! the token verified here, its nonce redeemed through Raft exactly once
//! (on the leader); a replayed, modified or forged token certifies the
//! agent only on evidence the agent produced (its presentations).

use super::*;
use senatus_replica::records::Redemption;

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
        // Every node refuses a caller that is not a registered broker
        // itself, before anything is forwarded; the leader checks the rest
        // of the redemption (and, when it is forwarded, this again).
        let broker = crate::caller::authorize(
            shared.sm.amendments(),
            &self.genesis_digest,
            senatus_replica::records::REDEEM_METHOD,
            &req.presentation,
            req.auth.as_ref(),
            &[senatus_genesis::registry::Role::Broker],
        )?;
        let deadline = Instant::now() + Duration::from_millis(shared.bounds.leader_wait_ms);
        loop {
            let leader = shared.raft.metrics().borrow().current_leader;
            match leader {
                Some(l) if l == self.id => match self.redeem_here(shared, &req, &broker).await {
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
        broker: &senatus_genesis::registry::Identity,
    ) -> Result<pb::RedeemReply, GateCallError> {
        let redemption = self.check_redeemable(shared, r, broker)?;
        let nonce = redemption.token.payload.nonce;
        let w = match shared
            .write_as_leader(Command::new(EntryKind::Redemption, redemption.encode()))
            .await
        {
            Ok(w) => w,
            Err(
                e @ crate::write_error::WriteError::Rejected(
                    crate::raft_types::CommandRejection::NonceReplayed { first_index, .. },
                ),
            ) => {
                return Err(self.certify_replay(shared, &redemption, first_index, e));
            }
            Err(e) => return Err(GateCallError::Write(e)),
        };
        Ok(pb::RedeemReply {
            ledger_index: w.index,
            entry_hash: w.hash,
            nonce: nonce.0.to_vec(),
        })
    }

    /// Checks a redemption by `broker` (whose signed call
    /// [`crate::caller::authorize`] admitted, `CALLER_*` otherwise) before
    /// its nonce is consumed (docs/PROTOCOL.md 10.3, 15.2), in this order,
    /// each refusal changing nothing:
    ///
    /// 1. (the broker's call, checked by the caller);
    /// 2. the token decodes (`TOKEN_MALFORMED`), for a surface that broker
    ///    guards (`CALLER_NOT_AUTHORIZED`, rule `wrong-surface`);
    /// 3. the agent's presentation hands this token to this broker with
    ///    exactly these params, signed recently by the agent the token
    ///    names (`PRESENTATION_REFUSED`; nobody is certified);
    /// 4. the token is authentic (signature, proof, chain) and its params
    ///    digest is that of the params the agent presented: otherwise the
    ///    agent, by its own presentation, handed a forged or modified token,
    ///    and a shutdown certificate carrying that presentation is issued
    ///    against it (flow 5);
    /// 5. a PERMIT, not expired;
    /// 6. within the agent's and tenant's redemption quotas (PROTOCOL 10.4,
    ///    `QUOTA_EXCEEDED`).
    pub fn check_redeemable(
        &self,
        shared: &Cluster,
        r: &pb::RedeemRequest,
        broker: &senatus_genesis::registry::Identity,
    ) -> Result<Redemption, GateCallError> {
        use senatus_quorum::certificate::Evidence;
        use senatus_quorum::presentation::{Presentation, PresentationError};
        const METHOD: &str = senatus_replica::records::REDEEM_METHOD;
        let t = token::Token::from_bytes(&r.token)
            .map_err(|e| GateCallError::TokenMalformed(e.to_string()))?;
        if !broker.surfaces.contains(&t.payload.surface) {
            return Err(crate::caller::CallerError::OutsideSurfaces {
                method: METHOD,
                broker: broker.name.clone(),
                key: broker.key,
                surface: t.payload.surface.clone(),
                surfaces: broker.surfaces.clone(),
            }
            .into());
        }
        let active = shared
            .sm
            .amendments()
            .with(|s| s.active_evaluator())
            .ok_or(crate::caller::CallerError::NoLayer { method: METHOD })?;
        let refused = |error| GateCallError::PresentationRefused { error };
        if r.presentation.is_empty() {
            return Err(refused(PresentationError::Missing));
        }
        let presentation = Presentation::decode(&r.presentation).map_err(refused)?;
        // A byte-identical presentation of a token already redeemed, from
        // the broker it names, is that broker's retry, whatever its age (a
        // retry after a lost answer may come late): the same answer as a
        // retry within the window, and nobody certified. (Another broker
        // relaying it is refused below: it was not handed to it.)
        let nonce = t.payload.nonce;
        if presentation.broker == broker.name
            && let Some(first_index) =
                shared
                    .sm
                    .nonce_redemption(&nonce.0)
                    .map_err(|e| GateCallError::StorageRead {
                        what: "nonce",
                        error: e.to_string(),
                    })?
            && redemption_at(shared, first_index)
                .is_ok_and(|first| first.presentation == presentation)
        {
            return Err(GateCallError::Replayed {
                write: crate::write_error::WriteError::Rejected(
                    crate::raft_types::CommandRejection::NonceReplayed {
                        nonce: nonce.to_hex(),
                        first_index,
                    },
                ),
                certified: retry_note(first_index),
            });
        }
        let agent = presentation
            .admit(
                active.registry(),
                &t,
                &broker.name,
                &r.params_json,
                now_ms(),
                active.signed_skew_ms_max(),
            )
            .map_err(refused)?
            .name
            .clone();
        // From here on the agent the token names handed it to this broker
        // with these params: what follows is its own doing.
        let v = match self.broker()?.verify_receipt_token(t.clone()) {
            Ok(v) => v,
            Err(e) => {
                let certified = self.certify_agent(
                    shared,
                    &t,
                    Evidence::TokenForged {
                        token: r.token.clone(),
                        presentation,
                    },
                );
                return Err(GateCallError::TokenForged {
                    error: e.to_string(),
                    certified,
                });
            }
        };
        let t = v.token;
        let same = senatus_quorum::parse_params(&r.params_json)
            .ok()
            .and_then(|p| senatus_quorum::params_digest(&p).ok())
            .is_some_and(|d| d == t.payload.params_digest);
        if !same {
            let certified = self.certify_agent(
                shared,
                &t,
                Evidence::TokenModified {
                    token: r.token.clone(),
                    params_json: r.params_json.clone(),
                    presentation,
                },
            );
            return Err(GateCallError::TokenParamsMismatch {
                params_digest: t.payload.params_digest,
                certified,
            });
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
        // Last, so that only a redemption about to be written counts.
        self.admit_redemption(&t.payload.tenant, &agent)?;
        let auth = r
            .auth
            .as_ref()
            .expect("authorize refuses a call without auth");
        Ok(Redemption {
            token_bytes: r.token.clone(),
            token: t,
            presentation,
            broker: senatus_quorum::auth::CallAuth {
                key: broker.key,
                signed_at_ms: auth.signed_at_ms,
                signature: <[u8; 64]>::try_from(auth.signature.as_slice())
                    .expect("authorize checked the signature's length"),
            },
        })
    }

    /// A second redemption of a valid token's nonce. The same presentation
    /// again (a broker's retry, or a broker replaying what it was handed)
    /// certifies nobody; another presentation by the agent of the same
    /// token is the agent presenting it twice: it is certified with both
    /// (flow 5). Returns the refusal, naming what happened.
    pub fn certify_replay(
        &self,
        shared: &Cluster,
        second: &Redemption,
        first_index: u64,
        refused: crate::write_error::WriteError,
    ) -> GateCallError {
        let first = match redemption_at(shared, first_index) {
            Ok(f) => f,
            Err(why) => {
                return GateCallError::Replayed {
                    write: refused,
                    certified: format!(
                        "nobody certified: the first redemption at ledger index {first_index} cannot be read ({why})"
                    ),
                };
            }
        };
        if first.presentation == second.presentation {
            return GateCallError::Replayed {
                write: refused,
                certified: retry_note(first_index),
            };
        }
        let certified = self.certify_agent(
            shared,
            &second.token,
            senatus_quorum::certificate::Evidence::TokenReplayed {
                token: second.token_bytes.clone(),
                first_index,
                first_token: first.token_bytes,
                first: first.presentation,
                second: second.presentation.clone(),
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

/// The Redemption entry at ledger index `index`.
fn redemption_at(shared: &Cluster, index: u64) -> Result<Redemption, String> {
    match shared.sm.ledger_range(index, index, 1) {
        Ok(mut entries) if entries.len() == 1 => {
            Redemption::decode(&entries.remove(0).payload).map_err(|e| e.to_string())
        }
        Ok(_) => Err(format!("ledger entry {index} is missing")),
        Err(e) => Err(e.to_string()),
    }
}

fn retry_note(first_index: u64) -> String {
    format!(
        "the same presentation was redeemed at ledger index {first_index} (a retry): nobody certified"
    )
}
