//! A signer: hands out commitments and signs only a committed entry it
//! evaluated itself (or the seal its own tally computes).

use super::*;
use senatus_quorum::certificate::AttestedBatch;

impl Gate {
    /// Preprocessed commitments for coordinator `from`. A new coordinator
    /// means the previous one's commitments are abandoned: they are retired
    /// so the pool does not fill with nonces nobody will use.
    pub fn commitments_for(&self, from: u64, count: usize) -> Vec<PublishedCommitment> {
        let count = count.min(signing::POOL_NONCES_MAX);
        let mut signer = lock(&self.signer);
        let mut last = lock(&self.last_coordinator);
        if *last != Some(from) {
            signer.retire_through(u64::MAX);
            *last = Some(from);
        }
        if signer.pool().room() < count {
            // Nonces stranded by failed plans fill the pool: retire them all.
            // The coordinator forgets a signer's commitments whenever one of
            // them fails, so it holds none of these any more.
            signer.retire_through(u64::MAX);
            if from == self.id {
                let node = signer.node();
                lock(&self.book).forget_signer(node);
            }
        }
        signer.replenish(count, &mut rand::rngs::OsRng)
    }

    pub(super) async fn sign_locally(
        &self,
        shared: &Cluster,
        ledger_index: u64,
        req: &SignRequest,
    ) -> Result<SignedShare, String> {
        self.sign_entry(shared, ledger_index, req, None)
            .await
            .map_err(|e| format!("{:?}: {e}", e.code()))
    }

    /// The signer's side of `SignBatch`: waits until it has applied the
    /// entry at `ledger_index`, checks the leader's attestation of it
    /// (`None` only for this validator's own share as leader) and the
    /// batch's times, re-evaluates it, and signs only the message its own
    /// evaluation produces.
    pub async fn sign_entry(
        &self,
        shared: &Cluster,
        ledger_index: u64,
        req: &SignRequest,
        attestation: Option<&AttestedBatch>,
    ) -> Result<SignedShare, GateCallError> {
        if let Some(l) = crate::breach::check_memory(shared, &self.breach) {
            return Err(l.error(self.id));
        }
        let deadline = Instant::now() + Duration::from_millis(self.config.apply_wait_ms);
        let entry = loop {
            // Read the applied position before the ledger, so an apply that
            // lands in between still changes it and wakes the wait below.
            let seen = shared.raft.metrics().borrow().last_applied;
            let head = shared.sm.ledger_head().map_err(ledger_read)?;
            if head.index >= ledger_index {
                break shared
                    .sm
                    .ledger_entry(ledger_index)
                    .map_err(ledger_read)?
                    .ok_or(GateCallError::EntryMissing { ledger_index })?;
            }
            if Instant::now() >= deadline {
                return Err(GateCallError::NotApplied {
                    node: self.id,
                    ledger_index,
                    wait_ms: self.config.apply_wait_ms,
                });
            }
            next_apply(shared, seen, deadline).await;
        };
        if entry.kind != EntryKind::Decision {
            return Err(GateCallError::NotADecision {
                ledger_index,
                kind: entry.kind,
            });
        }
        let batch =
            DecisionBatch::decode(&entry.payload).map_err(|e| GateCallError::UndecodableBatch {
                ledger_index,
                error: e.to_string(),
            })?;
        if let Some(a) = attestation {
            let attests = a.attests(ledger_index, &entry.hash, &batch);
            if !attests || a.verify(&self.genesis().body.validators).is_err() {
                return Err(GateCallError::BadBatchAttestation {
                    node: self.id,
                    ledger_index,
                    leader: a.leader.get(),
                });
            }
            // A signed head of the committed ledger: the other validators
            // check it against theirs (a forking leader signs two). One
            // witness per batch is enough with one Byzantine validator
            // (the leader): the lowest-id signer other than the leader.
            let witness = req
                .commitments
                .iter()
                .map(|c| c.signer.get())
                .find(|s| *s != a.leader.get());
            if witness == Some(self.id) {
                self.witnesses.push(a.clone());
            }
        }
        // The times are the leader's word; a signer signs only times its
        // own clock and the constitution agree with. Issue time is measured
        // against when this signer applied the entry (a retried request's
        // batch is re-signed later), or now if it does not remember.
        let rules = self
            .amend
            .with(|s| s.layer().constitution().tokens.clone())
            .unwrap_or_default();
        let reference = shared
            .sm
            .applied_at_ms(ledger_index)
            .unwrap_or_else(crate::clock::now_ms);
        if let Err(error) = batch.check_times(reference, &rules) {
            // A lifetime no constitution allows is a lie the leader signed;
            // a skewed issue time is refused but not certified (an honest
            // attestation delivered late looks the same).
            if let Some(a) = attestation
                && a.lifetime_ms() > senatus_genesis::policy::TOKEN_LIFETIME_MS_HARD_MAX
            {
                self.breach.certify_validator(
                    shared,
                    a.leader,
                    senatus_quorum::certificate::Evidence::BatchLifetime(a.clone()),
                    "the leader signed a batch lifetime no constitution allows",
                );
            }
            return Err(GateCallError::BatchTimes {
                node: self.id,
                ledger_index,
                issued_at_ms: batch.issued_at_ms,
                expires_at_ms: batch.expires_at_ms,
                error,
            });
        }
        // A batch under the seal active here needs this validator's own
        // redeclaration of it first; a batch under an older seal was
        // decided before the reseal and is evaluated under that seal.
        let under_active = self
            .amend
            .with(|s| s.is_active(batch.policy_version.0, &batch.seal_digest))
            .unwrap_or(false);
        if under_active {
            self.wait_redeclared(shared).await?;
        }
        let built = self.build(&batch, ledger_index, entry.hash)?;
        #[cfg(feature = "fault-injection")]
        fault::refuse_sign(self.id)?;
        let mut signer = lock(&self.signer);
        let share = signer.sign(req, &built.message).map_err(|e| match e {
            signing::SigningError::MessageMismatch { .. } => GateCallError::EvaluationDiffers {
                node: self.id,
                ledger_index,
                error: e.to_string(),
            },
            other => GateCallError::SignerFailed {
                node: self.id,
                error: other.to_string(),
            },
        })?;
        #[cfg(feature = "fault-injection")]
        if fault::active() == fault::Fault::BadShare {
            return Ok(fault::corrupt(share));
        }
        Ok(share)
    }

    /// Waits (bounded by `apply_wait_ms`) until this validator's own tally
    /// has passed `proposal` and the entry it passed at is stored; returns
    /// the next seal it computes, who may sign it, the ledger index at
    /// which it passed and that entry's stored hash (the head of PROTOCOL
    /// 4.1). The tally in memory runs a moment ahead of the store while an
    /// apply is written, so both are waited for.
    pub async fn await_pending_seal(
        &self,
        shared: &Cluster,
        proposal: senatus_quorum::amend::ProposalId,
    ) -> Result<(Seal, Vec<NodeId>, u64, Digest), GateCallError> {
        let deadline = Instant::now() + Duration::from_millis(self.config.apply_wait_ms);
        loop {
            let seen = shared.raft.metrics().borrow().last_applied;
            let pending = self
                .amend
                .with(|s| {
                    s.pending_seal().and_then(|(id, seal, signers)| {
                        Some((id, seal, signers, s.passed_at(&id)?))
                    })
                })
                .flatten();
            let passed_at = match pending {
                Some((id, seal, signers, at)) if id == proposal => {
                    let stored = shared
                        .sm
                        .stored_entry_hash(at)
                        .map_err(|e| GateCallError::Internal(format!("ledger entry {at}: {e}")))?;
                    if let Some(hash) = stored {
                        return Ok((seal, signers, at, hash));
                    }
                    Some(at)
                }
                _ => None,
            };
            if Instant::now() >= deadline {
                return Err(match passed_at {
                    Some(at) => GateCallError::NotApplied {
                        node: self.id,
                        ledger_index: at,
                        wait_ms: self.config.apply_wait_ms,
                    },
                    None => GateCallError::NoPendingSeal {
                        node: self.id,
                        proposal,
                    },
                });
            }
            next_apply(shared, seen, deadline).await;
        }
    }

    /// Checks a head (`ledger_index`, `entry_hash`) against this validator's
    /// own: the index at which its tally passed the amendment and the hash
    /// it stored there.
    fn check_own_head(
        &self,
        (passed_at, mine): (u64, Digest),
        ledger_index: u64,
        entry_hash: &Digest,
    ) -> Result<(), GateCallError> {
        if ledger_index != passed_at || mine != *entry_hash {
            let mine = if ledger_index == passed_at {
                Some(mine)
            } else {
                None
            };
            return Err(GateCallError::HeadDiffers {
                node: self.id,
                ledger_index,
                passed_at,
                mine,
                theirs: *entry_hash,
            });
        }
        Ok(())
    }

    /// The attester's side of `AttestSeal` (PROTOCOL 4.1): its identity-key
    /// signature that its own ledger holds `entry_hash` at `ledger_index`,
    /// where its own tally passed `proposal`, and that the next seal it
    /// computes has digest `seal_digest`. One validator attests at most one
    /// seal per version: its committed ledger, from which it computes both,
    /// never changes (PROTOCOL 21.2).
    pub async fn attest_seal(
        &self,
        shared: &Cluster,
        proposal: senatus_quorum::amend::ProposalId,
        seal_digest: Digest,
        ledger_index: u64,
        entry_hash: Digest,
    ) -> Result<[u8; 64], GateCallError> {
        if let Some(l) = self.breach.lockdown(&self.amend) {
            return Err(l.error(self.id));
        }
        let (seal, _signers, passed_at, mine) = self.await_pending_seal(shared, proposal).await?;
        if seal.digest() != seal_digest {
            return Err(GateCallError::SealDiffers {
                node: self.id,
                proposal,
                error: format!("it computes seal {}, not {seal_digest}", seal.digest()),
            });
        }
        self.check_own_head((passed_at, mine), ledger_index, &entry_hash)?;
        Ok(self.breach.sign(&SealAttestations::signing_bytes(
            &seal_digest,
            ledger_index,
            &entry_hash,
        )))
    }

    /// The signer's side of `SignSeal`: waits (bounded) until its own
    /// tally has passed `proposal`, and signs only if it is one of the
    /// approvers, the message is the next seal its own tally computes, and
    /// `attested` is a quorum of the active members' attestations of that
    /// seal over its own head (PROTOCOL 4.1): a seal is signed only over a
    /// head that cannot be another branch's.
    pub async fn sign_seal(
        &self,
        shared: &Cluster,
        proposal: senatus_quorum::amend::ProposalId,
        req: &SignRequest,
        attested: &SealAttestations,
    ) -> Result<SignedShare, GateCallError> {
        if let Some(l) = self.breach.lockdown(&self.amend) {
            return Err(l.error(self.id));
        }
        let (seal, signers, passed_at, mine) = self.await_pending_seal(shared, proposal).await?;
        if !signers.iter().any(|n| n.get() == self.id) {
            return Err(GateCallError::NotAnApprover {
                node: self.id,
                signers,
                proposal,
            });
        }
        let members = self
            .amend
            .with(|s| s.seal().membership.clone())
            .unwrap_or_default();
        attested
            .verify(&seal.digest(), &members)
            .map_err(|e| GateCallError::SealUnattested {
                node: self.id,
                proposal,
                why: e.to_string(),
            })?;
        self.check_own_head(
            (passed_at, mine),
            attested.ledger_index,
            &attested.entry_hash,
        )?;
        #[cfg(feature = "fault-injection")]
        fault::refuse_sign(self.id)?;
        let message = seal.signing_bytes();
        let mut signer = lock(&self.signer);
        signer
            .sign(req, &message)
            .map_err(|e| GateCallError::SealDiffers {
                node: self.id,
                proposal,
                error: e.to_string(),
            })
    }

    /// Waits (bounded by `apply_wait_ms`) until this validator has
    /// redeclared the active seal. Until then it neither decides nor signs
    /// under that seal: it never fails open (DESIGN.md, flow 4).
    pub(super) async fn wait_redeclared(&self, shared: &Cluster) -> Result<(), GateCallError> {
        let me = NodeId::new(self.id).map_err(|e| GateCallError::Internal(e.to_string()))?;
        let deadline = Instant::now() + Duration::from_millis(self.config.apply_wait_ms);
        loop {
            let seen = shared.raft.metrics().borrow().last_applied;
            let pending = self
                .amend
                .with(|s| (!s.has_redeclared(me)).then(|| s.seal().version.0))
                .ok_or_else(|| GateCallError::Internal("no sealed policy".into()))?;
            let Some(version) = pending else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                return Err(GateCallError::NotRedeclared {
                    node: self.id,
                    policy_version: version,
                    wait_ms: self.config.apply_wait_ms,
                });
            }
            next_apply(shared, seen, deadline).await;
        }
    }

    /// True while this node leads (for the peer handlers).
    pub fn is_leader(shared: &Cluster, from: u64) -> bool {
        let m = shared.raft.metrics().borrow().clone();
        m.current_leader == Some(from) && (from != shared.id || m.state == ServerState::Leader)
    }
}

/// Waits until this node applies past `seen`, or until `deadline`. Read
/// `seen` before the state being waited on, so an apply that lands in
/// between still ends the wait.
async fn next_apply(shared: &Cluster, seen: Option<crate::raft_types::LogId>, deadline: Instant) {
    let left = deadline.saturating_duration_since(Instant::now());
    let _ = shared
        .raft
        .wait(Some(left))
        .metrics(|m| m.last_applied != seen, "an apply")
        .await;
}
