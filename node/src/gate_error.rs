//! Why a gate call ended without its answer: one error type, naming the
//! culprit and the value, turned into a `Status` with its machine-readable
//! reason (docs/PROTOCOL.md 20) only at the service edge.

use senatus_genesis::{Digest, NodeId};
use senatus_proto::reason::{Reason, Reasoned};
use senatus_quorum::Outcome;
use senatus_quorum::certificate::BreachKind;
use tonic::Status;

use crate::ledger::EntryKind;
use crate::write_error::WriteError;

/// The `quota` a `QUOTA_EXCEEDED` refusal names when the leader's quota
/// table is full of live windows rather than a constitution quota reached
/// (its `limit` is then the table's bound, `QUOTA_KEYS_MAX`).
pub const QUOTA_TABLE_FULL: &str = "quota_keys_max";

/// Why a gate call — `Decide`, `Redeem`, or a signer's `SignBatch` /
/// `SignSeal` — ended without its answer. Each variant names the validator,
/// index, key or bound at fault; [`Status`] is made from it only at the
/// service edge ([`Reasoned::to_status`]), carrying its machine-readable
/// [`Reason`] and the gRPC code that reason travels with. The
/// messages are for humans; a Decide refusal says "no token" in words too.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GateCallError {
    /// This validator is locked down by a shutdown certificate about it.
    /// The leading "LockedDown:" is for humans and log searches; clients
    /// read the reason.
    #[error(
        "LockedDown: validator {node} is locked down by shutdown certificate {certificate} ({kind}); it decides, signs and votes on nothing until a sealed amendment reinstates it; ask another validator; no token"
    )]
    LockedDown {
        /// This validator.
        node: u64,
        /// The certificate locking it.
        certificate: Digest,
        /// Its breach kind.
        kind: BreachKind,
    },
    /// The `Decide` request does not validate.
    #[error("{0}")]
    InvalidRequest(#[from] RequestError),
    /// The `Decide` request is not signed by a registered agent allowed
    /// its tenant and actor, or not fresh. No token.
    #[error("{0}; no token")]
    Caller(#[from] crate::caller::CallerError),
    /// The leader is not in the seal's membership (a broken invariant).
    #[error("leader {leader} has no api address")]
    LeaderNotInSeal {
        /// The leader.
        leader: u64,
    },
    /// The leader gave no decision within the forwarding bound.
    #[error("leader {leader} gave no decision within {timeout_ms} ms; no token")]
    DecideTimeout {
        /// The leader.
        leader: u64,
        /// The bound.
        timeout_ms: u64,
    },
    /// The leader did not answer a forwarded redemption within the bound;
    /// the nonce may still be consumed.
    #[error(
        "leader {leader} did not answer the redemption within {timeout_ms} ms; it may still be redeemed"
    )]
    RedeemTimeout {
        /// The leader.
        leader: u64,
        /// The bound.
        timeout_ms: u64,
    },
    /// The leader's own answer to a forwarded call, passed on unchanged
    /// (its code, message and reason).
    #[error("{}", .0.message())]
    Leader(Status),
    /// A forwarded `Decide` failed without a senatus answer from the
    /// leader (transport), or the leader kept giving way until the wait
    /// ended.
    #[error("forwarding to leader {leader}: {}; no token", .status.message())]
    ForwardFailed {
        /// The leader.
        leader: u64,
        /// What the call returned.
        status: Status,
    },
    /// No leader was known within the wait.
    #[error(
        "no leader known within {wait_ms} ms; the cluster may have lost its quorum; {}",
        if *.redeem { "not redeemed" } else { "no token" }
    )]
    NoLeader {
        /// The wait.
        wait_ms: u64,
        /// True for a redemption, false for a decision.
        redeem: bool,
    },
    /// The idempotency key was already used by this agent for a different
    /// request, decided at this ledger index and position.
    #[error(
        "idempotency key {key:?} was already used by agent {actor:?} for a different request (decided at ledger index {ledger_index}, position {position}); no token"
    )]
    IdempotencyConflict {
        /// The key.
        key: String,
        /// The agent.
        actor: String,
        /// Where the first request was decided.
        ledger_index: u64,
        /// Its position in that batch.
        position: u32,
    },
    /// The idempotency key is in use by a different request being decided.
    #[error("idempotency key {key:?} is in use by a different request being decided; no token")]
    IdempotencyInUse {
        /// The key.
        key: String,
    },
    /// The same request is being decided right now.
    #[error("a request with idempotency key {key:?} is being decided; retry to get its answer")]
    IdempotencyInFlight {
        /// The key.
        key: String,
    },
    /// The decision queue is full.
    #[error("decision queue full ({queue_requests_max} waiting); retry later")]
    QueueFull {
        /// The bound.
        queue_requests_max: usize,
    },
    /// A quota of the active constitution's `[quotas]` refused the call
    /// before it was queued (or the leader's quota table is full of live
    /// windows): the agent or its tenant retries after the window.
    #[error("{error}; {}", if *.redeem { "not redeemed" } else { "no token" })]
    QuotaExceeded {
        /// Which quota, its limit and window, the tenant and the agent.
        error: senatus_quorum::quota::QuotaError,
        /// True for a redemption, false for a decision.
        redeem: bool,
    },
    /// The batcher has stopped (node shutdown).
    #[error("decision gate stopped")]
    GateStopped,
    /// This validator has not redeclared the active seal within the wait.
    #[error(
        "validator {node} has not redeclared policy version {policy_version} within {wait_ms} ms; it does not decide under a seal it has not redeclared; no token"
    )]
    NotRedeclared {
        /// This validator.
        node: u64,
        /// The active version.
        policy_version: u64,
        /// The wait.
        wait_ms: u64,
    },
    /// The ledger write of a decision batch failed: nothing was decided.
    #[error("{0}; no token")]
    NotWritten(WriteError),
    /// The ledger write of a redemption failed.
    #[error("{0}")]
    Write(WriteError),
    /// A second redemption of a valid token's nonce, with the certificate
    /// issued against its agent (or why none was).
    #[error("{write}; {certified}")]
    Replayed {
        /// The ledger's refusal.
        write: WriteError,
        /// The certificate, in words.
        certified: String,
    },
    /// A read from this node's store failed.
    #[error("{what} read failed: {error}")]
    StorageRead {
        /// What was read ("ledger", "idempotency").
        what: &'static str,
        /// The store's error.
        error: String,
    },
    /// A ledger index this node has applied is missing.
    #[error("ledger index {ledger_index} missing")]
    EntryMissing {
        /// The index.
        ledger_index: u64,
    },
    /// A stored idempotency record points at an entry that is not a
    /// decision batch.
    #[error("ledger index {ledger_index} is not a decision batch: {error}")]
    StoredNotABatch {
        /// The index.
        ledger_index: u64,
        /// Why.
        error: String,
    },
    /// A stored idempotency record points past the end of its batch.
    #[error("ledger index {ledger_index} has no position {position}")]
    NoPosition {
        /// The index.
        ledger_index: u64,
        /// The position.
        position: u32,
    },
    /// A batch names a seal this validator has not sealed.
    #[error(
        "batch at ledger index {ledger_index} names policy version {policy_version} seal {seal}, which this validator has not sealed"
    )]
    SealUnknown {
        /// The batch's index.
        ledger_index: u64,
        /// The version it names.
        policy_version: u64,
        /// The seal it names.
        seal: Digest,
    },
    /// Fewer than t validators signed a committed decision.
    #[error(
        "decision committed at ledger index {ledger_index} but fewer than t={threshold} validators signed; no token ({why})"
    )]
    NotSigned {
        /// The decision entry.
        ledger_index: u64,
        /// t.
        threshold: usize,
        /// Each signer's failure.
        why: String,
    },
    /// Fewer than t approvers signed a passed amendment's next seal.
    #[error(
        "amendment {proposal} passed but its approvers {signers:?} did not all sign its seal ({why})"
    )]
    SealNotSigned {
        /// The amendment.
        proposal: senatus_quorum::amend::ProposalId,
        /// Its approvers.
        signers: Vec<NodeId>,
        /// Each signer's failure.
        why: String,
    },
    /// The signer has not applied the entry it is asked to sign in time.
    #[error("validator {node} has not applied ledger index {ledger_index} within {wait_ms} ms")]
    NotApplied {
        /// The signer.
        node: u64,
        /// The entry.
        ledger_index: u64,
        /// The wait.
        wait_ms: u64,
    },
    /// The entry a signer is asked to sign is not a decision.
    #[error("ledger index {ledger_index} is a {kind:?} entry, not a decision")]
    NotADecision {
        /// The entry.
        ledger_index: u64,
        /// Its kind.
        kind: EntryKind,
    },
    /// The decision entry a signer is asked to sign does not decode.
    #[error("ledger index {ledger_index}: {error}")]
    UndecodableBatch {
        /// The entry.
        ledger_index: u64,
        /// Why.
        error: String,
    },
    /// The batch's times are outside what the constitution lets a signer
    /// sign (docs/PROTOCOL.md 21.4).
    #[error("validator {node} refuses to sign ledger index {ledger_index}: {error}")]
    BatchTimes {
        /// The signer.
        node: u64,
        /// The entry.
        ledger_index: u64,
        /// Batch issue time.
        issued_at_ms: u64,
        /// Batch expiry.
        expires_at_ms: u64,
        /// Why.
        error: senatus_quorum::batch::BatchTimesError,
    },
    /// The leader's attestation of the batch is not for this entry or does
    /// not verify under its identity key.
    #[error(
        "validator {node} refuses to sign ledger index {ledger_index}: leader {leader}'s attestation is not of this batch or does not verify"
    )]
    BadBatchAttestation {
        /// The signer.
        node: u64,
        /// The entry.
        ledger_index: u64,
        /// The leader named.
        leader: u64,
    },
    /// The signer's own evaluation gives a different batch message.
    #[error(
        "validator {node} refuses to sign: its own evaluation of ledger index {ledger_index} gives a different batch ({error})"
    )]
    EvaluationDiffers {
        /// The signer.
        node: u64,
        /// The entry.
        ledger_index: u64,
        /// The signing error.
        error: String,
    },
    /// The signer's nonce pool or key refused the request.
    #[error("validator {node}: {error}")]
    SignerFailed {
        /// The signer.
        node: u64,
        /// The signing error.
        error: String,
    },
    /// No passed amendment awaits this seal on the signer.
    #[error("validator {node} has no passed amendment {proposal} awaiting its seal")]
    NoPendingSeal {
        /// The signer.
        node: u64,
        /// The amendment asked about.
        proposal: senatus_quorum::amend::ProposalId,
    },
    /// The signer is not among the approvers that sign this seal.
    #[error(
        "validator {node} is not among the approvers {signers:?} that sign amendment {proposal}"
    )]
    NotAnApprover {
        /// The signer.
        node: u64,
        /// The approvers.
        signers: Vec<NodeId>,
        /// The amendment.
        proposal: senatus_quorum::amend::ProposalId,
    },
    /// The seal the signer computes differs from the one asked for.
    #[error(
        "validator {node} refuses to sign: the seal it computes for {proposal} differs ({error})"
    )]
    SealDiffers {
        /// The signer.
        node: u64,
        /// The amendment.
        proposal: senatus_quorum::amend::ProposalId,
        /// The signing error.
        error: String,
    },
    /// A seal head that is not this validator's own: another index than
    /// where its tally passed the amendment, or another entry hash there.
    #[error(
        "validator {node} passed the amendment at ledger index {passed_at}{}, not {theirs} at {ledger_index}",
        mine.map_or_else(String::new, |h| format!(" and holds {h} there"))
    )]
    HeadDiffers {
        /// The validator asked.
        node: u64,
        /// The head's index as asked.
        ledger_index: u64,
        /// Where its own tally passed the amendment.
        passed_at: u64,
        /// Its own entry hash at `ledger_index` when that is where it
        /// passed the amendment.
        mine: Option<senatus_genesis::Digest>,
        /// The hash it was asked to attest.
        theirs: senatus_genesis::Digest,
    },
    /// A seal without a quorum of valid attestations of its head.
    #[error("validator {node}: the seal of {proposal} is not attested: {why}")]
    SealUnattested {
        /// The validator that refused (or, as coordinator, gave up).
        node: u64,
        /// The amendment.
        proposal: senatus_quorum::amend::ProposalId,
        /// Why.
        why: String,
    },
    /// `refuse-sign` fault injection (test builds only).
    #[error("validator {node} refuses to sign (fault injection: refuse-sign)")]
    FaultRefusesToSign {
        /// The signer.
        node: u64,
    },
    /// The agent's presentation does not hand this token to this broker
    /// with these params; nobody is certified.
    #[error("redemption refused: presentation {}: {error}; nobody certified, nothing changed", error.code())]
    PresentationRefused {
        /// Why.
        error: senatus_quorum::presentation::PresentationError,
    },
    /// The token does not decode.
    #[error("malformed token: {0}")]
    TokenMalformed(String),
    /// The token does not verify; its agent is certified.
    #[error("token refused: {error}; {certified}")]
    TokenForged {
        /// The verifier's error.
        error: String,
        /// The certificate, in words.
        certified: String,
    },
    /// The params presented are not the token's; its agent is certified.
    #[error(
        "token refused: the params presented are not the params it was issued for (digest {params_digest}); {certified}"
    )]
    TokenParamsMismatch {
        /// The token's params digest.
        params_digest: Digest,
        /// The certificate, in words.
        certified: String,
    },
    /// A DENY or SILENCE receipt presented for redemption.
    #[error("token refused: a {outcome} receipt can never be redeemed")]
    TokenNotPermit {
        /// Its outcome.
        outcome: Outcome,
    },
    /// The token has expired.
    #[error("token refused: expired at {expires_at_ms} ms (now {now_ms} ms)")]
    TokenExpired {
        /// Its expiry.
        expires_at_ms: u64,
        /// This validator's clock.
        now_ms: u64,
    },
    /// A broken invariant on this validator.
    #[error("{0}")]
    Internal(String),
}

/// Why a `DecideRequest` does not validate (INVALID_ARGUMENT).
#[derive(Debug, Clone, thiserror::Error)]
pub enum RequestError {
    /// `params_json` is not JSON, or not JSON that RFC 8785 binds one to
    /// one (`senatus_quorum::parse_params`).
    #[error("params_json: {0}")]
    Params(senatus_quorum::ParamsError),
    /// `context.uncertainty_permille` is above 1000.
    #[error("context.uncertainty_permille {0} is above 1000")]
    Uncertainty(u32),
    /// The request breaks a rule of `DecisionRequest::validate`.
    #[error("{0}")]
    Invalid(String),
}

impl Reasoned for GateCallError {
    fn reason(&self) -> Option<Reason> {
        use GateCallError as E;
        Some(match self {
            E::LockedDown { .. } => Reason::LockedDown,
            E::InvalidRequest(_) => Reason::InvalidRequest,
            E::Caller(c) => return c.reason(),
            E::LeaderNotInSeal { .. } | E::Internal(_) => Reason::InternalError,
            E::DecideTimeout { .. } | E::RedeemTimeout { .. } => Reason::LeaderTimeout,
            E::Leader(s) => return Reason::of(s),
            E::ForwardFailed { .. } => Reason::LeaderUnreachable,
            E::NoLeader { .. } => Reason::NoLeader,
            E::IdempotencyConflict { .. } | E::IdempotencyInUse { .. } => {
                Reason::IdempotencyConflict
            }
            E::IdempotencyInFlight { .. } => Reason::IdempotencyInFlight,
            E::QueueFull { .. } => Reason::QueueFull,
            E::QuotaExceeded { .. } => Reason::QuotaExceeded,
            E::GateStopped => Reason::GateUnavailable,
            E::NotRedeclared { .. } => Reason::NotRedeclared,
            E::NotWritten(w) | E::Write(w) | E::Replayed { write: w, .. } => return w.reason(),
            E::StorageRead { .. } => Reason::StorageFailed,
            E::EntryMissing { .. } | E::StoredNotABatch { .. } | E::NoPosition { .. } => {
                Reason::LedgerInconsistent
            }
            E::SealUnknown { .. } => Reason::SealUnknown,
            E::NotSigned { .. } | E::SealNotSigned { .. } => Reason::NotSigned,
            E::NotApplied { .. } => Reason::EntryNotApplied,
            E::NotADecision { .. }
            | E::UndecodableBatch { .. }
            | E::EvaluationDiffers { .. }
            | E::SignerFailed { .. }
            | E::NoPendingSeal { .. }
            | E::NotAnApprover { .. }
            | E::SealDiffers { .. }
            | E::SealUnattested { .. }
            | E::FaultRefusesToSign { .. } => Reason::SigningRefused,
            E::HeadDiffers { .. } => Reason::PeerLogConflict,
            E::BatchTimes { .. } => Reason::BatchTimesRefused,
            E::BadBatchAttestation { .. } => Reason::SigningRefused,
            E::PresentationRefused { .. } => Reason::PresentationRefused,
            E::TokenMalformed(_) => Reason::TokenMalformed,
            E::TokenForged { .. } => Reason::TokenForged,
            E::TokenParamsMismatch { .. } => Reason::TokenParamsMismatch,
            E::TokenNotPermit { .. } => Reason::TokenNotPermit,
            E::TokenExpired { .. } => Reason::TokenExpired,
        })
    }

    fn metadata(&self) -> Vec<(&'static str, String)> {
        use GateCallError as E;
        let s = |v: &dyn std::fmt::Display| v.to_string();
        match self {
            E::LockedDown {
                node,
                certificate,
                kind,
            } => vec![
                ("node", s(node)),
                ("certificate", s(certificate)),
                ("breachKind", s(kind)),
            ],
            E::Caller(c) => c.metadata(),
            E::InvalidRequest(r) => r
                .field()
                .map(|f| ("field", f.to_string()))
                .into_iter()
                .collect(),
            E::LeaderNotInSeal { leader } | E::ForwardFailed { leader, .. } => {
                vec![("leader", s(leader))]
            }
            E::DecideTimeout { leader, timeout_ms } | E::RedeemTimeout { leader, timeout_ms } => {
                vec![("leader", s(leader)), ("timeoutMs", s(timeout_ms))]
            }
            E::NoLeader { wait_ms, .. } => vec![("waitMs", s(wait_ms))],
            E::IdempotencyConflict {
                key,
                actor,
                ledger_index,
                position,
            } => vec![
                ("idempotencyKey", key.clone()),
                ("actor", actor.clone()),
                ("ledgerIndex", s(ledger_index)),
                ("position", s(position)),
            ],
            E::IdempotencyInUse { key } | E::IdempotencyInFlight { key } => {
                vec![("idempotencyKey", key.clone())]
            }
            E::QueueFull { queue_requests_max } => {
                vec![("queueRequestsMax", s(queue_requests_max))]
            }
            E::QuotaExceeded { error, .. } => {
                use senatus_quorum::quota::QuotaError as Q;
                let (quota, limit, window_ms, tenant, agent) = match error {
                    Q::Exceeded {
                        quota,
                        limit,
                        window_ms,
                        tenant,
                        agent,
                    } => (*quota, *limit, window_ms, tenant, agent),
                    Q::TableFull {
                        keys_max,
                        window_ms,
                        tenant,
                        agent,
                    } => (QUOTA_TABLE_FULL, *keys_max as u64, window_ms, tenant, agent),
                };
                vec![
                    ("quota", quota.to_string()),
                    ("limit", s(&limit)),
                    ("windowMs", s(window_ms)),
                    ("tenant", tenant.clone()),
                    ("agent", agent.clone()),
                ]
            }
            E::NotRedeclared {
                node,
                policy_version,
                wait_ms,
            } => vec![
                ("node", s(node)),
                ("policyVersion", s(policy_version)),
                ("waitMs", s(wait_ms)),
            ],
            E::NotWritten(w) | E::Write(w) | E::Replayed { write: w, .. } => w.metadata(),
            E::EntryMissing { ledger_index }
            | E::StoredNotABatch { ledger_index, .. }
            | E::NoPosition { ledger_index, .. } => vec![("ledgerIndex", s(ledger_index))],
            E::SealUnknown {
                ledger_index,
                policy_version,
                seal,
            } => vec![
                ("ledgerIndex", s(ledger_index)),
                ("policyVersion", s(policy_version)),
                ("seal", s(seal)),
            ],
            E::NotSigned {
                ledger_index,
                threshold,
                ..
            } => vec![
                ("ledgerIndex", s(ledger_index)),
                ("threshold", s(threshold)),
            ],
            E::NotApplied {
                node,
                ledger_index,
                wait_ms,
            } => vec![
                ("node", s(node)),
                ("ledgerIndex", s(ledger_index)),
                ("waitMs", s(wait_ms)),
            ],
            E::NotADecision { ledger_index, .. } | E::UndecodableBatch { ledger_index, .. } => {
                vec![("ledgerIndex", s(ledger_index))]
            }
            E::EvaluationDiffers {
                node, ledger_index, ..
            } => vec![("node", s(node)), ("ledgerIndex", s(ledger_index))],
            E::BadBatchAttestation {
                node,
                ledger_index,
                leader,
            } => vec![
                ("node", s(node)),
                ("ledgerIndex", s(ledger_index)),
                ("leader", s(leader)),
            ],
            E::BatchTimes {
                node,
                ledger_index,
                issued_at_ms,
                expires_at_ms,
                ..
            } => vec![
                ("node", s(node)),
                ("ledgerIndex", s(ledger_index)),
                ("issuedAtMs", s(issued_at_ms)),
                ("expiresAtMs", s(expires_at_ms)),
            ],
            E::SignerFailed { node, .. }
            | E::NoPendingSeal { node, .. }
            | E::NotAnApprover { node, .. }
            | E::SealDiffers { node, .. }
            | E::SealUnattested { node, .. }
            | E::FaultRefusesToSign { node } => vec![("node", s(node))],
            E::HeadDiffers {
                node, ledger_index, ..
            } => vec![("node", s(node)), ("ledgerIndex", s(ledger_index))],
            E::TokenParamsMismatch { params_digest, .. } => {
                vec![("paramsDigest", s(params_digest))]
            }
            E::PresentationRefused { error } => {
                let mut m = vec![("rule", error.code().to_string())];
                if let Some(k) = error.key() {
                    m.push(("key", s(&k)));
                }
                m
            }
            E::TokenNotPermit { outcome } => vec![("outcome", s(outcome))],
            E::TokenExpired {
                expires_at_ms,
                now_ms,
            } => vec![("expiresAtMs", s(expires_at_ms)), ("nowMs", s(now_ms))],
            E::Leader(_)
            | E::GateStopped
            | E::StorageRead { .. }
            | E::SealNotSigned { .. }
            | E::TokenMalformed(_)
            | E::TokenForged { .. }
            | E::Internal(_) => Vec::new(),
        }
    }

    fn carried(&self) -> Option<&Status> {
        use GateCallError as E;
        match self {
            E::Leader(s) | E::ForwardFailed { status: s, .. } => Some(s),
            E::NotWritten(w) | E::Write(w) | E::Replayed { write: w, .. } => w.carried(),
            _ => None,
        }
    }
}

impl RequestError {
    /// The request field at fault, when one is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            RequestError::Params(_) => Some("params_json"),
            RequestError::Uncertainty(_) => Some("context.uncertainty_permille"),
            RequestError::Invalid(_) => None,
        }
    }
}

impl From<GateCallError> for Status {
    fn from(e: GateCallError) -> Status {
        e.to_status()
    }
}
