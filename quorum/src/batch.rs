//! The payload of a `Decision` ledger entry: one batch of governed
//! requests, proposed by the leader and evaluated by every signer from
//! these exact bytes.
//!
//! ```text
//! decision_batch = "senatus/decision-batch/v2" 0x00
//!                  u64 issued_at_ms      leader's clock when it proposed the batch
//!                  u64 expires_at_ms     issued_at_ms + the token lifetime
//!                  u64 policy_version    the sealed version the batch is decided under
//!                  fixed32 seal_digest   digest of the seal that made it active
//!                  u64 epoch
//!                  u32 count             1..=BATCH_REQUESTS_MAX
//!                  count × bytes signed_request (auth::SignedRequest::encode)
//! ```
//!
//! Everything a token needs beyond the request itself (times, policy
//! version, seal, epoch) is fixed here, in the ledger, so that replaying the
//! ledger rebuilds byte-identical token payloads (I7) and no signer ever
//! consults its own clock to decide what it signs.

use senatus_genesis::codec::{Decoder, Encoder};
use senatus_genesis::{Digest, Epoch, PolicyVersion};

use crate::auth::{SignedRequest, SignedRequestError};
use crate::request::DecisionRequest;

/// Domain object name of a decision batch.
pub const BATCH_OBJECT: &str = "decision-batch";
/// Version of the decision batch encoding (2: requests carry the agent's
/// signature).
pub const BATCH_VERSION: u8 = 2;
/// Most requests one batch (one ledger entry, one signature) carries.
pub const BATCH_REQUESTS_MAX: usize = 1024;

/// One batch of requests as committed to the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionBatch {
    /// Leader's clock at proposal, unix milliseconds.
    pub issued_at_ms: u64,
    /// Expiry of every token of the batch, unix milliseconds.
    pub expires_at_ms: u64,
    /// Policy version the batch is decided under.
    pub policy_version: PolicyVersion,
    /// Digest of the seal that made that version active.
    pub seal_digest: Digest,
    /// Membership epoch.
    pub epoch: Epoch,
    /// The signed requests, in position order.
    pub requests: Vec<SignedRequest>,
}

/// Why bytes are not a decision batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchDecodeError {
    /// Not a `senatus/decision-batch/v1` encoding, or truncated.
    #[error("decision batch: {0}")]
    Encoding(String),
    /// `count` is 0 or above [`BATCH_REQUESTS_MAX`].
    #[error("decision batch holds {count} requests; allowed 1..={BATCH_REQUESTS_MAX}")]
    Count {
        /// The count found.
        count: u64,
    },
    /// `expires_at_ms` is not after `issued_at_ms`.
    #[error(
        "decision batch expires at {expires_at_ms} ms, not after it was issued ({issued_at_ms} ms)"
    )]
    Lifetime {
        /// Issue time.
        issued_at_ms: u64,
        /// Expiry.
        expires_at_ms: u64,
    },
    /// A request inside does not decode.
    #[error("decision batch request {position}: {error}")]
    Request {
        /// Its position.
        position: u32,
        /// Why.
        error: SignedRequestError,
    },
}

impl DecisionBatch {
    /// Canonical bytes (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new(BATCH_OBJECT, BATCH_VERSION);
        e.u64(self.issued_at_ms)
            .u64(self.expires_at_ms)
            .u64(self.policy_version.0)
            .digest(&self.seal_digest)
            .u64(self.epoch.0);
        e.count(self.requests.len());
        for r in &self.requests {
            e.bytes(&r.encode());
        }
        e.finish()
    }

    /// Strict inverse of [`DecisionBatch::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, BatchDecodeError> {
        let enc =
            |e: senatus_genesis::codec::DecodeError| BatchDecodeError::Encoding(e.to_string());
        let mut d = Decoder::new(bytes, BATCH_OBJECT, BATCH_VERSION).map_err(enc)?;
        let issued_at_ms = d.u64("issued_at_ms").map_err(enc)?;
        let expires_at_ms = d.u64("expires_at_ms").map_err(enc)?;
        let policy_version = PolicyVersion(d.u64("policy_version").map_err(enc)?);
        let seal_digest = d.digest("seal_digest").map_err(enc)?;
        let epoch = Epoch(d.u64("epoch").map_err(enc)?);
        let count = d.u32("count").map_err(enc)?;
        if count == 0 || count as usize > BATCH_REQUESTS_MAX {
            return Err(BatchDecodeError::Count {
                count: u64::from(count),
            });
        }
        if expires_at_ms <= issued_at_ms {
            return Err(BatchDecodeError::Lifetime {
                issued_at_ms,
                expires_at_ms,
            });
        }
        let mut requests = Vec::with_capacity(count as usize);
        for position in 0..count {
            let raw = d.bytes("request").map_err(enc)?;
            let r = SignedRequest::decode(raw)
                .map_err(|error| BatchDecodeError::Request { position, error })?;
            requests.push(r);
        }
        d.finish().map_err(enc)?;
        Ok(DecisionBatch {
            issued_at_ms,
            expires_at_ms,
            policy_version,
            seal_digest,
            epoch,
            requests,
        })
    }
}

/// A committed batch evaluated: one decision and one token payload per
/// request, the Merkle batch over them, and the message t validators sign.
#[derive(Debug, Clone)]
pub struct BuiltBatch {
    /// One decision per request, in position order.
    pub decisions: Vec<crate::evaluate::Decision>,
    /// The token payloads and their Merkle tree.
    pub tokens: crate::token::TokenBatch,
    /// The batch message (section 9.5 of docs/PROTOCOL.md).
    pub message: Vec<u8>,
}

/// Why a committed batch cannot be built into tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A request's params cannot be digested (cannot happen for a batch
    /// that decoded: decoding requires canonical params).
    #[error("request {position}: {error}")]
    Params {
        /// Its position.
        position: u32,
        /// Why.
        error: crate::params::ParamsError,
    },
    /// The payloads do not form a batch.
    #[error("token batch: {0}")]
    Batch(String),
}

/// Why a signer refuses a batch's times (docs/PROTOCOL.md 21.4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchTimesError {
    /// `issued_at_ms` is too far from the signer's clock.
    #[error(
        "issued at {issued_at_ms} ms, {distance_ms} ms from this signer's clock ({now_ms} ms); at most {skew_ms_max} ms allowed"
    )]
    Skew {
        /// The batch's issue time.
        issued_at_ms: u64,
        /// The signer's clock.
        now_ms: u64,
        /// The distance between them.
        distance_ms: u64,
        /// The constitution's bound.
        skew_ms_max: u64,
    },
    /// The tokens would live longer than the constitution allows.
    #[error(
        "tokens would live {lifetime_ms} ms (issued {issued_at_ms}, expiring {expires_at_ms}); at most {lifetime_ms_max} ms allowed"
    )]
    Lifetime {
        /// The batch's issue time.
        issued_at_ms: u64,
        /// The batch's expiry.
        expires_at_ms: u64,
        /// `expires_at_ms - issued_at_ms`.
        lifetime_ms: u64,
        /// The constitution's bound.
        lifetime_ms_max: u64,
    },
}

impl DecisionBatch {
    /// Checks the batch's times as a signer must before signing it: issued
    /// within `rules.issued_skew_ms_max` of the signer's clock `now_ms`,
    /// living at most `rules.lifetime_ms_max`. Pure: the signer passes its
    /// own clock.
    pub fn check_times(
        &self,
        now_ms: u64,
        rules: &senatus_genesis::policy::TokenRules,
    ) -> Result<(), BatchTimesError> {
        let lifetime_ms = self.expires_at_ms.saturating_sub(self.issued_at_ms);
        if lifetime_ms > rules.lifetime_ms_max {
            return Err(BatchTimesError::Lifetime {
                issued_at_ms: self.issued_at_ms,
                expires_at_ms: self.expires_at_ms,
                lifetime_ms,
                lifetime_ms_max: rules.lifetime_ms_max,
            });
        }
        let distance_ms = self.issued_at_ms.abs_diff(now_ms);
        if distance_ms > rules.issued_skew_ms_max {
            return Err(BatchTimesError::Skew {
                issued_at_ms: self.issued_at_ms,
                now_ms,
                distance_ms,
                skew_ms_max: rules.issued_skew_ms_max,
            });
        }
        Ok(())
    }

    /// Evaluates every request with `evaluator` at the batch's issue time
    /// and builds the token payloads of the entry at `ledger_index` with
    /// hash `entry_hash` (docs/PROTOCOL.md section 13), their Merkle batch
    /// and the message to sign under `group_key`. Pure: the leader, every
    /// signer and a forensic replay all run exactly this.
    pub fn build(
        &self,
        evaluator: &crate::evaluate::Evaluator,
        genesis_digest: Digest,
        ledger_index: senatus_genesis::LedgerIndex,
        entry_hash: Digest,
        group_key: &senatus_genesis::Key32,
    ) -> Result<BuiltBatch, BuildError> {
        self.build_barred(
            evaluator,
            genesis_digest,
            ledger_index,
            entry_hash,
            group_key,
            &|_| None,
            &crate::auth::VerifyAll,
        )
    }

    /// As [`DecisionBatch::build`], with `barred` naming the requests that
    /// are DENY whatever the policy says: those of an agent a shutdown
    /// certificate on the ledger before this batch names. A request whose
    /// signature, key, tenant, actor or freshness (against the batch's
    /// `issued_at_ms`) the sealed registry refuses is DENY with reason
    /// `senatus.identity.<code>` (docs/PROTOCOL.md 10.1): a leader that
    /// slips in a request no agent signed gets no PERMIT for it. `barred` returns
    /// the reason (`senatus.certificate.<id>`); it must depend only on the
    /// ledger before `ledger_index`, so every signer and a replay agree.
    /// `memo` spares re-verifying a signature this process already found
    /// valid (it changes no outcome).
    // Each argument is one fact of the entry or one rule of the signer;
    // bundling them would only name the bundle.
    #[allow(clippy::too_many_arguments)]
    pub fn build_barred(
        &self,
        evaluator: &crate::evaluate::Evaluator,
        genesis_digest: Digest,
        ledger_index: senatus_genesis::LedgerIndex,
        entry_hash: Digest,
        group_key: &senatus_genesis::Key32,
        barred: &dyn Fn(&DecisionRequest) -> Option<String>,
        memo: &dyn crate::auth::Verified,
    ) -> Result<BuiltBatch, BuildError> {
        let mut decisions = Vec::with_capacity(self.requests.len());
        let mut payloads = Vec::with_capacity(self.requests.len());
        for (position, signed) in (0u32..).zip(&self.requests) {
            let request = &signed.request;
            let who = evaluator.authenticate(signed, &genesis_digest, self.issued_at_ms, memo);
            let deny = |reason: String, detail: String| crate::evaluate::Decision {
                outcome: crate::Outcome::Deny,
                reasons: vec![reason],
                facts: Default::default(),
                findings: Vec::new(),
                policy_version: self.policy_version,
                detail: Some(detail),
            };
            let decision = match (who, barred(request)) {
                (Err(e), _) => deny(format!("senatus.identity.{}", e.code()), e.to_string()),
                (Ok(_), Some(reason)) => deny(
                    reason,
                    format!(
                        "agent {}/{} is certified by a shutdown certificate",
                        request.tenant, request.actor
                    ),
                ),
                (Ok(_), None) => evaluator.evaluate(request, self.issued_at_ms),
            };
            let params_digest = crate::params::params_digest(&request.params)
                .map_err(|error| BuildError::Params { position, error })?;
            payloads.push(crate::token::TokenPayload {
                genesis_digest,
                decision_id: crate::token::decision_id(ledger_index, &entry_hash, position),
                ledger_index,
                entry_hash,
                position,
                outcome: decision.outcome,
                surface: request.surface.clone(),
                action: request.action.clone(),
                tenant: request.tenant.clone(),
                actor: request.actor.clone(),
                params_digest,
                policy_version: self.policy_version,
                seal_digest: self.seal_digest,
                epoch: self.epoch,
                nonce: crate::token::derive_nonce(&entry_hash, position),
                issued_at_ms: self.issued_at_ms,
                expires_at_ms: self.expires_at_ms,
            });
            decisions.push(decision);
        }
        let tokens = crate::token::TokenBatch::new(payloads)
            .map_err(|e| BuildError::Batch(e.to_string()))?;
        let message = tokens.message(group_key);
        Ok(BuiltBatch {
            decisions,
            tokens,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::AgentContext;

    fn request(i: u64) -> DecisionRequest {
        DecisionRequest {
            surface: "payments".into(),
            action: "transfer".into(),
            actor: "agent-1".into(),
            tenant: "acme".into(),
            params: serde_json::json!({"amount": i, "currency": "EUR", "to_account": "a-1"}),
            context: AgentContext::default(),
            idempotency_key: format!("k-{i}"),
        }
    }

    fn signed(i: u64) -> SignedRequest {
        let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        SignedRequest::sign(&key, &Digest([3; 32]), request(i), 1_700_000_000_000)
    }

    fn batch(n: u64) -> DecisionBatch {
        DecisionBatch {
            issued_at_ms: 1_700_000_000_000,
            expires_at_ms: 1_700_000_060_000,
            policy_version: PolicyVersion(1),
            seal_digest: Digest([7; 32]),
            epoch: Epoch(0),
            requests: (0..n).map(signed).collect(),
        }
    }

    #[test]
    fn round_trips_and_refuses_every_malformation() {
        let b = batch(3);
        let bytes = b.encode();
        assert!(bytes.starts_with(b"senatus/decision-batch/v2\0"));
        assert_eq!(DecisionBatch::decode(&bytes).expect("decode"), b);

        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            DecisionBatch::decode(&trailing),
            Err(BatchDecodeError::Encoding(m)) if m.contains("trailing")
        ));
        for cut in [0, 10, 40, bytes.len() - 1] {
            assert!(
                DecisionBatch::decode(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        assert_eq!(
            DecisionBatch::decode(&batch(0).encode()),
            Err(BatchDecodeError::Count { count: 0 })
        );
        let mut dead = batch(1);
        dead.expires_at_ms = dead.issued_at_ms;
        assert!(matches!(
            DecisionBatch::decode(&dead.encode()),
            Err(BatchDecodeError::Lifetime { .. })
        ));
        // The second signed request's tag broken: named by its position.
        let two = batch(2).encode();
        let tag = b"senatus/signed-request/v1\0";
        let at = two
            .windows(tag.len())
            .enumerate()
            .filter(|(_, w)| *w == tag)
            .nth(1)
            .map(|(i, _)| i)
            .expect("two signed requests");
        let mut bad = two.clone();
        bad[at + 9] ^= 0xff;
        assert!(matches!(
            DecisionBatch::decode(&bad),
            Err(BatchDecodeError::Request { position: 1, .. })
        ));
        // A flipped signature byte still decodes: the signature is judged
        // on evaluation (DENY senatus.identity.bad-signature), not here.
        let mut flipped = two.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x01;
        assert!(DecisionBatch::decode(&flipped).is_ok());
    }

    #[test]
    fn a_request_no_registered_agent_signed_is_denied_on_build_never_permitted() {
        // The example layer seals agent-7 under the published seed 0x07.
        let layer = senatus_genesis::PolicyLayer::example();
        let evaluator = crate::evaluate::Evaluator::new(&layer).expect("example compiles");
        let genesis = Digest([3; 32]);
        let at = 1_700_000_000_000;
        let mut r = request(5);
        r.actor = "agent-7".into();
        let genuine = SignedRequest::sign(
            &ed25519_dalek::SigningKey::from_bytes(&[0x07; 32]),
            &genesis,
            r.clone(),
            at,
        );
        let mut forged = genuine.clone();
        forged.signature[0] ^= 1;
        let stranger = SignedRequest::sign(
            &ed25519_dalek::SigningKey::from_bytes(&[0x33; 32]),
            &genesis,
            r.clone(),
            at,
        );
        let stale = SignedRequest::sign(
            &ed25519_dalek::SigningKey::from_bytes(&[0x07; 32]),
            &genesis,
            r,
            at - 600_000,
        );
        let mut b = batch(1);
        b.issued_at_ms = at;
        b.expires_at_ms = at + 60_000;
        b.requests = vec![genuine, forged, stranger, stale];
        let built = b
            .build(
                &evaluator,
                genesis,
                senatus_genesis::LedgerIndex(4),
                Digest([9; 32]),
                &senatus_genesis::Key32([1; 32]),
            )
            .expect("builds");
        let got: Vec<(crate::Outcome, Vec<String>)> = built
            .decisions
            .iter()
            .map(|d| (d.outcome, d.reasons.clone()))
            .collect();
        assert_eq!(got[0].0, crate::Outcome::Permit, "{got:?}");
        for (i, code) in [(1, "bad-signature"), (2, "unknown-key"), (3, "not-fresh")] {
            assert_eq!(
                got[i],
                (
                    crate::Outcome::Deny,
                    vec![format!("senatus.identity.{code}")]
                ),
                "position {i}"
            );
        }
    }

    #[test]
    fn a_signer_refuses_times_off_its_clock_or_too_long_lived() {
        use senatus_genesis::policy::TokenRules;
        let rules = TokenRules {
            lifetime_ms_max: 60_000,
            issued_skew_ms_max: 10_000,
        };
        let b = batch(1);
        let issued = b.issued_at_ms;
        assert_eq!(b.check_times(issued, &rules), Ok(()));
        assert_eq!(b.check_times(issued + 10_000, &rules), Ok(()));
        assert_eq!(b.check_times(issued - 10_000, &rules), Ok(()));
        // An hour in the past, as the signer's clock sees it.
        assert_eq!(
            b.check_times(issued + 3_600_000, &rules),
            Err(BatchTimesError::Skew {
                issued_at_ms: issued,
                now_ms: issued + 3_600_000,
                distance_ms: 3_600_000,
                skew_ms_max: 10_000,
            })
        );
        assert!(matches!(
            b.check_times(issued - 10_001, &rules),
            Err(BatchTimesError::Skew {
                distance_ms: 10_001,
                ..
            })
        ));
        // A day to live, on time.
        let mut long = batch(1);
        long.expires_at_ms = issued + 86_400_000;
        assert_eq!(
            long.check_times(issued, &rules),
            Err(BatchTimesError::Lifetime {
                issued_at_ms: issued,
                expires_at_ms: issued + 86_400_000,
                lifetime_ms: 86_400_000,
                lifetime_ms_max: 60_000,
            })
        );
        long.expires_at_ms = issued + 60_000;
        assert_eq!(long.check_times(issued, &rules), Ok(()));
        // Extremes do not overflow.
        assert!(b.check_times(u64::MAX, &rules).is_err());
        assert!(b.check_times(0, &rules).is_err());
    }
}
