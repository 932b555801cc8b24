//! The leader's batcher: requests queue, are decided together in one
//! Decision entry, and are answered from that entry once it commits.

use super::*;

impl Gate {
    pub(super) async fn submit(
        &self,
        shared: &Cluster,
        request: SignedRequest,
    ) -> Result<pb::DecideReply, GateCallError> {
        // Idempotency: a key already decided answers with that decision
        // (re-signed: same payload, same nonce), never a second entry; a
        // key used for another request is refused.
        let key = idempotency_key(&request);
        let digest = request.request.digest();
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
                    key: request.request.idempotency_key,
                    actor: request.request.actor,
                    ledger_index: rec.ledger_index,
                    position: rec.position,
                });
            }
            return self.reissue(shared, rec.ledger_index, rec.position).await;
        }
        // Quotas are counted here, on the leader every Decide reaches once,
        // and only for new work: a retry answered from the ledger (above)
        // or still in flight (below) counts nothing.
        let active = self
            .amend
            .with(|s| s.active_evaluator())
            .ok_or_else(|| GateCallError::Internal("no sealed policy".into()))?;
        let Some(agent) = active.registry().by_key(&request.key) else {
            // Authenticated against an earlier seal; an amendment removed
            // the key since. The active registry decides.
            return Err(crate::caller::CallerError::Refused {
                method: "Decide",
                error: Box::new(senatus_quorum::auth::AuthError::UnknownKey { key: request.key }),
                role: None,
            }
            .into());
        };
        {
            let mut inflight = lock(&self.inflight);
            match inflight.get(&key) {
                Some(d) if *d == digest => {
                    return Err(GateCallError::IdempotencyInFlight {
                        key: request.request.idempotency_key,
                    });
                }
                Some(_) => {
                    return Err(GateCallError::IdempotencyInUse {
                        key: request.request.idempotency_key,
                    });
                }
                None => {
                    self.admit(
                        QuotaKind::Decisions,
                        &request.request.tenant,
                        &agent.name,
                        active.quotas(),
                    )?;
                    inflight.insert(key.clone(), digest);
                }
            }
        }
        let answer = self.enqueue(request).await;
        lock(&self.inflight).remove(&key);
        answer
    }

    /// Counts one call of `kind` by `agent` of `tenant` against the
    /// active constitution's quotas, or refuses it counting nothing.
    fn admit(
        &self,
        kind: QuotaKind,
        tenant: &str,
        agent: &str,
        limits: &senatus_genesis::policy::QuotaRules,
    ) -> Result<(), GateCallError> {
        lock(&self.quotas)
            .admit(kind, tenant, agent, now_ms(), limits)
            .map_err(|error| GateCallError::QuotaExceeded {
                error,
                redeem: kind == QuotaKind::Redemptions,
            })
    }

    /// Counts one redemption of a token of `agent` (a registered
    /// identity's name) of `tenant` against the active constitution's
    /// `agent_redemptions_max` and `tenant_redemptions_max`, or refuses it
    /// (`QUOTA_EXCEEDED`, "not redeemed") counting nothing. For the leader
    /// to call before it writes a redemption, so each one is counted once.
    pub fn admit_redemption(&self, tenant: &str, agent: &str) -> Result<(), GateCallError> {
        let active = self
            .amend
            .with(|s| s.active_evaluator())
            .ok_or_else(|| GateCallError::Internal("no sealed policy".into()))?;
        self.admit(QuotaKind::Redemptions, tenant, agent, active.quotas())
    }

    pub(super) async fn enqueue(
        &self,
        request: SignedRequest,
    ) -> Result<pb::DecideReply, GateCallError> {
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

    pub(super) async fn batcher(self: Arc<Self>, shared: Cluster, mut rx: mpsc::Receiver<Pending>) {
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

    pub(super) async fn run_batch(&self, shared: &Cluster, items: Vec<Pending>) {
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

    pub(super) async fn decide_batch(
        &self,
        shared: &Cluster,
        requests: Vec<SignedRequest>,
    ) -> Result<Vec<pb::DecideReply>, GateCallError> {
        // A validator decides only under a seal it has redeclared (flow 4):
        // between a reseal and its own Redeclaration it waits, bounded.
        self.wait_redeclared(shared).await?;
        // The genesis lock again, before every batch: the active layer in
        // memory must still be the sealed one.
        if let Some(l) = crate::breach::check_memory(shared, &self.breach) {
            return Err(l.error(self.id));
        }
        let issued_at_ms = now_ms();
        let active = self
            .amend
            .with(|s| s.active_sealed())
            .ok_or_else(|| GateCallError::Internal("no sealed policy".into()))?;
        // Signers refuse a lifetime above the constitution's: the
        // configured one is capped by it.
        let lifetime_ms = self.config.token_ttl_ms.min(
            self.amend
                .with(|s| s.layer().constitution().tokens.lifetime_ms_max)
                .unwrap_or(0),
        );
        #[cfg(feature = "fault-injection")]
        let (issued_at_ms, lifetime_ms) = fault::batch_times(issued_at_ms, lifetime_ms);
        let batch = DecisionBatch {
            issued_at_ms,
            expires_at_ms: issued_at_ms.saturating_add(lifetime_ms),
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
        let (signature, signers) = self
            .sign(shared, written.index, entry_hash, &batch, &built.message)
            .await?;
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
    pub(super) async fn reissue(
        &self,
        shared: &Cluster,
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
        let (signature, signers) = self
            .sign(shared, ledger_index, entry.hash, &batch, &built.message)
            .await?;
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
    pub(super) fn build(
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
                &*self.verified,
            )
            .map_err(|e| GateCallError::Internal(format!("ledger index {ledger_index}: {e}")))
    }
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
