//! The leader's signing coordinator: chooses t signers, collects their
//! commitments and shares, checks each share and aggregates.

use super::*;

impl Gate {
    /// Gets t shares over `message` and aggregates them; retries with other
    /// signers when one refuses, times out or sends an invalid share.
    pub(super) async fn sign(
        &self,
        shared: &Cluster,
        ledger_index: u64,
        entry_hash: Digest,
        batch: &DecisionBatch,
        message: &[u8],
    ) -> Result<([u8; 64], Vec<u64>), GateCallError> {
        let attestation = self.attest(ledger_index, entry_hash, batch).encode();
        let target = SignTarget::Batch {
            ledger_index,
            attestation,
        };
        self.sign_for(shared, &target, message).await
    }

    /// This leader's signed statement of the ledger head (index, entry
    /// hash) and the times of the batch it asks signers to sign: what makes
    /// a lie about either evidence (PROTOCOL 21.5, 21.6).
    fn attest(
        &self,
        ledger_index: u64,
        entry_hash: Digest,
        batch: &DecisionBatch,
    ) -> senatus_quorum::certificate::AttestedBatch {
        senatus_quorum::certificate::AttestedBatch::new(
            self.breach.me(),
            ledger_index,
            entry_hash,
            (batch.issued_at_ms, batch.expires_at_ms),
            |bytes| self.breach.sign(bytes),
        )
    }

    /// Has `t` of the approvers (`signers`) of the passed amendment `proposal`
    /// threshold-sign `message` (its next seal's signing bytes); each of
    /// them computes the seal from its own tally, checks `attested` against
    /// it and its own head, and signs nothing else.
    pub async fn sign_next_seal(
        &self,
        shared: &Cluster,
        proposal: senatus_quorum::amend::ProposalId,
        signers: Vec<NodeId>,
        attested: SealAttestations,
        message: &[u8],
    ) -> Result<[u8; 64], GateCallError> {
        let target = SignTarget::Seal {
            proposal,
            signers,
            attested,
        };
        self.sign_for(shared, &target, message).await.map(|r| r.0)
    }

    /// Collects the attestations of the head (`ledger_index`, `entry_hash`)
    /// for `seal`, the next seal of `proposal` (PROTOCOL 4.1): this
    /// validator's own and every other member's, asked at once, each
    /// checked under the attester's identity key. Fails unless a quorum of
    /// the active seal's members attested; a member that answers with a
    /// bad signature is left out and named.
    pub async fn attest_next_seal(
        &self,
        shared: &Cluster,
        proposal: senatus_quorum::amend::ProposalId,
        seal: &Seal,
        ledger_index: u64,
        entry_hash: Digest,
    ) -> Result<SealAttestations, GateCallError> {
        let seal_digest = seal.digest();
        let members = self
            .amend
            .with(|s| s.seal().membership.clone())
            .unwrap_or_default();
        let timeout = Duration::from_millis(self.config.share_timeout_ms);
        let mut calls = tokio::task::JoinSet::new();
        for v in &members {
            let id = v.id.get();
            if id == self.id {
                continue;
            }
            let Some(mut client) = self.peers.get(&id).cloned() else {
                continue;
            };
            let req = pb::AttestSealRequest {
                from: self.id,
                proposal_id: proposal.0.0.to_vec(),
                seal_digest: seal_digest.0.to_vec(),
                ledger_index,
                entry_hash: entry_hash.0.to_vec(),
            };
            calls.spawn(async move {
                let r = match tokio::time::timeout(timeout, client.attest_seal(req)).await {
                    Err(_) => Err(format!("no attestation within {} ms", timeout.as_millis())),
                    Ok(Err(s)) => Err(format!("{:?}: {}", s.code(), s.message())),
                    Ok(Ok(r)) => <[u8; 64]>::try_from(r.into_inner().signature)
                        .map_err(|b| format!("a {}-byte signature", b.len())),
                };
                (id, r)
            });
        }
        let mut results = Vec::with_capacity(members.len());
        results.push((
            self.id,
            self.attest_seal(shared, proposal, seal_digest, ledger_index, entry_hash)
                .await
                .map_err(|e| e.to_string()),
        ));
        while let Some(joined) = calls.join_next().await {
            if let Ok(r) = joined {
                results.push(r);
            }
        }
        let message = SealAttestations::signing_bytes(&seal_digest, ledger_index, &entry_hash);
        let mut by = Vec::new();
        let mut failures = Vec::new();
        for (id, r) in results {
            let checked = r.and_then(|sig| {
                let a = senatus_genesis::seal::HeadAttestation {
                    validator: NodeId::new(id).map_err(|e| e.to_string())?,
                    signature: senatus_genesis::Sig64(sig),
                };
                a.verify(&message, &members).map_err(|e| e.to_string())?;
                Ok(a)
            });
            match checked {
                Ok(a) => by.push(a),
                Err(why) => failures.push(format!("validator {id}: {why}")),
            }
        }
        let attested = SealAttestations::new(ledger_index, entry_hash, by);
        attested
            .verify(&seal_digest, &members)
            .map_err(|e| GateCallError::SealUnattested {
                node: self.id,
                proposal,
                why: format!("{e}; {}", failures.join("; ")),
            })?;
        Ok(attested)
    }

    pub(super) async fn sign_for(
        &self,
        shared: &Cluster,
        target: &SignTarget,
        message: &[u8],
    ) -> Result<([u8; 64], Vec<u64>), GateCallError> {
        let ledger_index = match target {
            SignTarget::Batch { ledger_index, .. } => *ledger_index,
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
                .filter(|n| self.breach.excluded(*n, &self.amend).is_none())
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
                            SignTarget::Batch {
                                ledger_index,
                                attestation,
                            } => {
                                client
                                    .sign_batch(pb::SignBatchRequest {
                                        from,
                                        ledger_index,
                                        request: wire,
                                        attestation,
                                    })
                                    .await
                            }
                            SignTarget::Seal {
                                proposal, attested, ..
                            } => {
                                client
                                    .sign_seal(pb::SignSealRequest {
                                        from,
                                        proposal_id: proposal.0.0.to_vec(),
                                        request: wire,
                                        ledger_index: attested.ledger_index,
                                        entry_hash: attested.entry_hash.0.to_vec(),
                                        attestations: attested
                                            .by
                                            .iter()
                                            .map(|a| pb::HeadAttestation {
                                                validator: a.validator.get(),
                                                signature: a.signature.0.to_vec(),
                                            })
                                            .collect(),
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
                    SignTarget::Batch { ledger_index, .. } => {
                        self.sign_locally(shared, *ledger_index, &req).await
                    }
                    SignTarget::Seal {
                        proposal, attested, ..
                    } => self
                        .sign_seal(shared, *proposal, &req, attested)
                        .await
                        .map_err(|e| format!("{:?}: {e}", e.code())),
                };
                let share = share.map(|sh| {
                    let att = self.breach.sign(
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
                let r = r.and_then(|(s, att)| match self.breach.excluded(signer, &self.amend) {
                    Some(c) => Err(format!("excluded by shutdown certificate {c}")),
                    None => {
                        if let Some(att) = att {
                            attested.insert(signer, (s, att));
                        }
                        Ok(s)
                    }
                });
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
                        if let Err(why) = self.breach.issue(
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
            SignTarget::Seal {
                proposal, signers, ..
            } => GateCallError::SealNotSigned {
                proposal: *proposal,
                signers: signers.clone(),
                why,
            },
        })
    }

    /// Tops up the commitment book: this node's own pool directly, peers
    /// over `Commitments`, concurrently and bounded.
    pub(super) async fn refill(&self, shared: &Cluster) {
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
}
