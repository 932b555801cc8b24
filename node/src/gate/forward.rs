//! Decide on any validator: answered here when leading, else forwarded to the
//! leader once, with what to do with the leader's refusal decided by its
//! machine-readable reason.

use super::*;

impl Gate {
    /// Answers one `Decide`: here when leading, else forwarded to the leader.
    pub async fn decide(
        &self,
        shared: &Cluster,
        req: pb::DecideRequest,
    ) -> Result<pb::DecideReply, GateCallError> {
        // A locked validator decides nothing, not even by forwarding.
        if let Some(l) = self.breach.lockdown(&self.amend) {
            return Err(l.error(self.id));
        }
        let request = request_from_wire(&req)?;
        // Who is asking, before anything is queued or forwarded: a request
        // no registered agent signed never reaches the ledger.
        let request = crate::caller::signed_request(
            &self.amend,
            &self.genesis_digest,
            &req,
            request,
            &*self.verified,
        )?;
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
}

/// What to do with a leader's refusal of a forwarded `Decide`, decided by
/// its reason (docs/PROTOCOL.md 20), never by its words.
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
            (Code::ResourceExhausted, "QUOTA_EXCEEDED"),
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
        let e = GateCallError::NotWritten(crate::write_error::WriteError::NotCommitted {
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
    fn a_quota_refusal_names_the_quota_and_a_follower_passes_it_on_unchanged() {
        use senatus_quorum::quota::QuotaError;
        let e = GateCallError::QuotaExceeded {
            error: QuotaError::Exceeded {
                quota: "agent_decisions_max",
                limit: 3,
                window_ms: 600_000,
                tenant: "acme".into(),
                agent: "agent-1".into(),
            },
            redeem: false,
        };
        let s = Status::from(e);
        assert_eq!(s.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            s.message(),
            "agent \"agent-1\" has reached its quota agent_decisions_max = 3 per 600000 ms (agent \"agent-1\" of tenant \"acme\"); retry after the window; no token"
        );
        let r = reason::reason_of(&s).expect("reason");
        assert_eq!(r.known(), Some(Reason::QuotaExceeded));
        let meta: Vec<(&str, &str)> = r
            .metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            meta,
            [
                ("agent", "agent-1"),
                ("limit", "3"),
                ("quota", "agent_decisions_max"),
                ("tenant", "acme"),
                ("windowMs", "600000"),
            ]
        );
        // A follower's answer is the leader's: final, and the same status.
        assert_eq!(forwarded(&s, true), Forwarded::Final);
        let passed = Status::from(GateCallError::Leader(s.clone()));
        assert_eq!(passed.code(), s.code());
        assert_eq!(passed.message(), s.message());
        assert_eq!(reason::reason_of(&passed), Some(r));

        // A full quota table is refused too, naming the table's bound; a
        // redemption says so.
        let s = Status::from(GateCallError::QuotaExceeded {
            error: QuotaError::TableFull {
                keys_max: senatus_quorum::quota::QUOTA_KEYS_MAX,
                window_ms: 1000,
                tenant: "acme".into(),
                agent: "agent-2".into(),
            },
            redeem: true,
        });
        assert_eq!(s.code(), tonic::Code::ResourceExhausted);
        assert!(s.message().ends_with("; not redeemed"), "{}", s.message());
        let r = reason::reason_of(&s).expect("reason");
        assert_eq!(r.known(), Some(Reason::QuotaExceeded));
        assert_eq!(r.metadata["quota"], crate::gate_error::QUOTA_TABLE_FULL);
        assert_eq!(r.metadata["limit"], "65536");
        assert_eq!(r.metadata["agent"], "agent-2");
    }

    #[test]
    fn a_malformed_request_names_its_field() {
        let bad = pb::DecideRequest {
            params_json: "{".into(),
            ..Default::default()
        };
        let e = GateCallError::from(request_from_wire(&bad).expect_err("not JSON"));
        assert!(
            e.to_string()
                .starts_with("params_json: params are not JSON: "),
            "{e}"
        );
        let s = Status::from(e);
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        let r = reason::reason_of(&s).expect("reason");
        assert_eq!(r.known(), Some(Reason::InvalidRequest));
        assert_eq!(r.metadata["field"], "params_json");
    }
}
