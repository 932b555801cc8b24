//! Who is asking: requests signed by a registered agent, and calls signed by
//! a registered operator or auditor (docs/PROTOCOL.md 10.1 and 10.2).
//!
//! ```text
//! request_signing_bytes = "senatus/request-signature/v1" 0x00
//!     fixed32 genesis_digest   the chain the request is meant for
//!     fixed32 request_digest   SHA3-256 of the canonical request (10)
//!     u64     signed_at_ms     the agent's clock when it signed
//!
//! signed_request = "senatus/signed-request/v1" 0x00
//!     bytes   request          the canonical request (10)
//!     u64     signed_at_ms
//!     fixed32 key              the agent's Ed25519 public key
//!     fixed64 signature        Ed25519 over request_signing_bytes
//!
//! call_signing_bytes = "senatus/call/v1" 0x00
//!     fixed32 genesis_digest
//!     str     method           e.g. "GetLedger", "AppendRecord"
//!     bytes   body             the call's arguments (PROTOCOL 10.2)
//!     u64     signed_at_ms
//! ```
//!
//! A signed request is what the ledger stores (inside a decision batch), so
//! an auditor holding an export proves with SHA3-256 and Ed25519 alone that
//! the holder of `key` asked exactly this request; the sealed registry then
//! says who that is. Everything here is pure: the caller supplies the
//! registry, the genesis digest and the time to judge freshness against.

use senatus_genesis::codec::{Decoder, Encoder};
use senatus_genesis::registry::{Identity, Registry, Role};
use senatus_genesis::{Digest, Key32};

use crate::request::{DecisionRequest, RequestError};

/// Domain object name of the bytes an agent signs.
pub const REQUEST_SIGNATURE_OBJECT: &str = "request-signature";
/// Domain object name of a signed request.
pub const SIGNED_REQUEST_OBJECT: &str = "signed-request";
/// Domain object name of the bytes an operator or auditor signs for a call.
pub const CALL_OBJECT: &str = "call";

/// Why a caller is not who it must be. Every variant names the key; the
/// [`AuthError::code`] is the machine-readable reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No identity in the sealed registry holds the key (never registered,
    /// or removed by amendment).
    #[error("key {key} is not in the sealed identity registry")]
    UnknownKey {
        /// The key.
        key: Key32,
    },
    /// The key's identity has another role than the call needs.
    #[error("key {key} is {name:?} with role {role}; this needs role {needs}")]
    WrongRole {
        /// The key.
        key: Key32,
        /// Its identity.
        name: String,
        /// Its role.
        role: Role,
        /// What the call needs (e.g. "agent", "auditor or operator").
        needs: String,
    },
    /// The request names a tenant the agent does not act for.
    #[error("key {key} is agent {name:?} of tenant {own:?}; the request names tenant {asked:?}")]
    WrongTenant {
        /// The key.
        key: Key32,
        /// The agent.
        name: String,
        /// Its tenant.
        own: String,
        /// The tenant asked for.
        asked: String,
    },
    /// The request names an actor the agent may not use.
    #[error("key {key} is agent {name:?}, which may not act as {actor:?} (its actors: {actors:?})")]
    WrongActor {
        /// The key.
        key: Key32,
        /// The agent.
        name: String,
        /// The actor asked for.
        actor: String,
        /// The actors it may use.
        actors: Vec<String>,
    },
    /// Signed too long ago or too far ahead of the reference clock.
    #[error(
        "key {key} signed at {signed_at_ms} ms, {distance_ms} ms from {reference_ms} ms; the freshness window is {skew_ms} ms"
    )]
    NotFresh {
        /// The key.
        key: Key32,
        /// The signed time.
        signed_at_ms: u64,
        /// The clock it was judged against.
        reference_ms: u64,
        /// The distance.
        distance_ms: u64,
        /// The window (`requests.signed_skew_ms_max`).
        skew_ms: u64,
    },
    /// The signature does not verify under the key.
    #[error("the signature does not verify under key {key}")]
    BadSignature {
        /// The key.
        key: Key32,
    },
}

impl AuthError {
    /// The machine-readable reason (`senatus.identity.<code>` in a DENY,
    /// metadata `rule` on a refusal).
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::UnknownKey { .. } => "unknown-key",
            AuthError::WrongRole { .. } => "wrong-role",
            AuthError::WrongTenant { .. } => "wrong-tenant",
            AuthError::WrongActor { .. } => "wrong-actor",
            AuthError::NotFresh { .. } => "not-fresh",
            AuthError::BadSignature { .. } => "bad-signature",
        }
    }

    /// The key it is about.
    pub fn key(&self) -> Key32 {
        match self {
            AuthError::UnknownKey { key }
            | AuthError::WrongRole { key, .. }
            | AuthError::WrongTenant { key, .. }
            | AuthError::WrongActor { key, .. }
            | AuthError::NotFresh { key, .. }
            | AuthError::BadSignature { key } => *key,
        }
    }
}

/// Why bytes are not a signed request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedRequestError {
    /// Not a `senatus/signed-request/v1` encoding, truncated or trailing.
    #[error("signed request: {0}")]
    Encoding(String),
    /// The request inside does not decode.
    #[error("signed request: {0}")]
    Request(#[from] RequestError),
}

/// The bytes an agent signs for `request_digest` at `signed_at_ms`.
pub fn request_signing_bytes(
    genesis_digest: &Digest,
    request_digest: &Digest,
    signed_at_ms: u64,
) -> Vec<u8> {
    let mut e = Encoder::new(REQUEST_SIGNATURE_OBJECT, 1);
    e.digest(genesis_digest)
        .digest(request_digest)
        .u64(signed_at_ms);
    e.finish()
}

/// The bytes an operator or auditor signs to call `method` with `body`.
pub fn call_signing_bytes(
    genesis_digest: &Digest,
    method: &str,
    body: &[u8],
    signed_at_ms: u64,
) -> Vec<u8> {
    let mut e = Encoder::new(CALL_OBJECT, 1);
    e.digest(genesis_digest)
        .str(method)
        .bytes(body)
        .u64(signed_at_ms);
    e.finish()
}

/// Signatures already found valid, so that one process checks each
/// (key, message, signature) once: the leader that admitted a request does
/// not verify it again when it builds the batch, nor does a signer that
/// admitted it itself. A memo changes no result, only its cost: Ed25519
/// verification is deterministic, and an entry is made only for a
/// signature that verified.
pub trait Verified: Sync {
    /// Whether `check` (a digest of key, message and signature) verified.
    fn seen(&self, check: &Digest) -> bool;
    /// Records that `check` verified.
    fn remember(&self, check: Digest);
}

/// No memo: every signature is verified.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyAll;

impl Verified for VerifyAll {
    fn seen(&self, _: &Digest) -> bool {
        false
    }

    fn remember(&self, _: Digest) {}
}

/// Domain object name of a memo entry (never on the wire).
const VERIFIED_OBJECT: &str = "verified-signature";

pub(crate) fn verify(
    registry: &Registry,
    key: &Key32,
    message: &[u8],
    signature: &[u8; 64],
    memo: &dyn Verified,
) -> Result<(), AuthError> {
    let bad = || AuthError::BadSignature { key: *key };
    let mut e = Encoder::new(VERIFIED_OBJECT, 1);
    e.fixed32(&key.0).bytes(message).fixed64(signature);
    let check = e.digest_of();
    if memo.seen(&check) {
        return Ok(());
    }
    let vk = registry.verifying_key(key).ok_or_else(bad)?;
    vk.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature))
        .map_err(|_| bad())?;
    memo.remember(check);
    Ok(())
}

pub(crate) fn fresh(
    key: &Key32,
    signed_at_ms: u64,
    reference_ms: u64,
    skew_ms: u64,
) -> Result<(), AuthError> {
    let distance_ms = signed_at_ms.abs_diff(reference_ms);
    if distance_ms > skew_ms {
        return Err(AuthError::NotFresh {
            key: *key,
            signed_at_ms,
            reference_ms,
            distance_ms,
            skew_ms,
        });
    }
    Ok(())
}

/// A governed agent's request with its signature: what `Decide` carries and
/// a decision batch stores.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedRequest {
    /// The request.
    pub request: DecisionRequest,
    /// The agent's clock when it signed, unix milliseconds.
    pub signed_at_ms: u64,
    /// The agent's public key.
    pub key: Key32,
    /// Ed25519 over [`request_signing_bytes`].
    pub signature: [u8; 64],
}

impl SignedRequest {
    /// Signs `request` for the chain `genesis_digest` at `signed_at_ms`.
    pub fn sign(
        key: &ed25519_dalek::SigningKey,
        genesis_digest: &Digest,
        request: DecisionRequest,
        signed_at_ms: u64,
    ) -> SignedRequest {
        use ed25519_dalek::Signer as _;
        let message = request_signing_bytes(genesis_digest, &request.digest(), signed_at_ms);
        SignedRequest {
            signature: key.sign(&message).to_bytes(),
            key: Key32(key.verifying_key().to_bytes()),
            request,
            signed_at_ms,
        }
    }

    /// Canonical bytes (module documentation).
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new(SIGNED_REQUEST_OBJECT, 1);
        e.bytes(&self.request.encode())
            .u64(self.signed_at_ms)
            .fixed32(&self.key.0)
            .fixed64(&self.signature);
        e.finish()
    }

    /// Strict inverse of [`SignedRequest::encode`]; the request inside is
    /// decoded as strictly as [`DecisionRequest::decode`] does. The
    /// signature is not checked here.
    pub fn decode(bytes: &[u8]) -> Result<SignedRequest, SignedRequestError> {
        let enc =
            |e: senatus_genesis::codec::DecodeError| SignedRequestError::Encoding(e.to_string());
        let mut d = Decoder::new(bytes, SIGNED_REQUEST_OBJECT, 1).map_err(enc)?;
        let request = DecisionRequest::decode(d.bytes("request").map_err(enc)?)?;
        let signed_at_ms = d.u64("signed_at_ms").map_err(enc)?;
        let key = Key32(d.fixed32("key").map_err(enc)?);
        let signature = d.fixed64("signature").map_err(enc)?;
        d.finish().map_err(enc)?;
        Ok(SignedRequest {
            request,
            signed_at_ms,
            key,
            signature,
        })
    }

    /// Checks that the request is the registered agent's: its key is an
    /// agent of the sealed `registry`, acting for the request's tenant as one
    /// of its actors, signed within `skew_ms` of `reference_ms`, with a
    /// valid signature for the chain `genesis_digest`. Returns the agent.
    pub fn authenticate<'r>(
        &self,
        registry: &'r Registry,
        genesis_digest: &Digest,
        reference_ms: u64,
        skew_ms: u64,
    ) -> Result<&'r Identity, AuthError> {
        self.authenticate_memo(registry, genesis_digest, reference_ms, skew_ms, &VerifyAll)
    }

    /// [`SignedRequest::authenticate`], skipping the signature check for a
    /// signature `memo` has seen verify.
    pub fn authenticate_memo<'r>(
        &self,
        registry: &'r Registry,
        genesis_digest: &Digest,
        reference_ms: u64,
        skew_ms: u64,
        memo: &dyn Verified,
    ) -> Result<&'r Identity, AuthError> {
        let key = self.key;
        let id = registry.by_key(&key).ok_or(AuthError::UnknownKey { key })?;
        if id.role != Role::Agent {
            return Err(AuthError::WrongRole {
                key,
                name: id.name.clone(),
                role: id.role,
                needs: "agent".into(),
            });
        }
        let own = id.tenant.as_deref().unwrap_or_default();
        if own != self.request.tenant {
            return Err(AuthError::WrongTenant {
                key,
                name: id.name.clone(),
                own: own.to_string(),
                asked: self.request.tenant.clone(),
            });
        }
        if !id.actors.contains(&self.request.actor) {
            return Err(AuthError::WrongActor {
                key,
                name: id.name.clone(),
                actor: self.request.actor.clone(),
                actors: id.actors.clone(),
            });
        }
        fresh(&key, self.signed_at_ms, reference_ms, skew_ms)?;
        let message =
            request_signing_bytes(genesis_digest, &self.request.digest(), self.signed_at_ms);
        verify(registry, &key, &message, &self.signature, memo)?;
        Ok(id)
    }
}

/// An operator's or auditor's signature on one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallAuth {
    /// The caller's public key.
    pub key: Key32,
    /// The caller's clock when it signed, unix milliseconds.
    pub signed_at_ms: u64,
    /// Ed25519 over [`call_signing_bytes`].
    pub signature: [u8; 64],
}

impl CallAuth {
    /// Signs a call of `method` with `body` at `signed_at_ms`.
    pub fn sign(
        key: &ed25519_dalek::SigningKey,
        genesis_digest: &Digest,
        method: &str,
        body: &[u8],
        signed_at_ms: u64,
    ) -> CallAuth {
        use ed25519_dalek::Signer as _;
        let message = call_signing_bytes(genesis_digest, method, body, signed_at_ms);
        CallAuth {
            key: Key32(key.verifying_key().to_bytes()),
            signed_at_ms,
            signature: key.sign(&message).to_bytes(),
        }
    }

    /// Checks that a registered identity with one of `roles` signed this
    /// call of `method` with `body`, within `skew_ms` of `now_ms`. Returns
    /// the caller.
    #[allow(clippy::too_many_arguments)]
    pub fn authorize<'r>(
        &self,
        registry: &'r Registry,
        roles: &[Role],
        genesis_digest: &Digest,
        method: &str,
        body: &[u8],
        now_ms: u64,
        skew_ms: u64,
    ) -> Result<&'r Identity, AuthError> {
        let key = self.key;
        let id = registry.by_key(&key).ok_or(AuthError::UnknownKey { key })?;
        if !roles.contains(&id.role) {
            return Err(AuthError::WrongRole {
                key,
                name: id.name.clone(),
                role: id.role,
                needs: Role::either(roles),
            });
        }
        fresh(&key, self.signed_at_ms, now_ms, skew_ms)?;
        let message = call_signing_bytes(genesis_digest, method, body, self.signed_at_ms);
        verify(registry, &key, &message, &self.signature, &VerifyAll)?;
        Ok(id)
    }
}

/// The `body` of a `GetLedger` call: `u64 from, u64 to, u32 limit`
/// (big-endian, no tag: the call's own tag covers it).
pub fn get_ledger_body(from: u64, to: u64, limit: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(20);
    b.extend_from_slice(&from.to_be_bytes());
    b.extend_from_slice(&to.to_be_bytes());
    b.extend_from_slice(&limit.to_be_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use senatus_genesis::registry::Identity;

    fn sk(seed: u8) -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
    }

    fn registry() -> Registry {
        let k = |s| Key32(sk(s).verifying_key().to_bytes());
        Registry::new(vec![
            Identity {
                name: "agent-7".into(),
                role: Role::Agent,
                key: k(1),
                tenant: Some("acme".into()),
                actors: vec!["agent-7".into()],
                surfaces: vec![],
            },
            Identity {
                name: "auditor-1".into(),
                role: Role::Auditor,
                key: k(2),
                tenant: None,
                actors: vec![],
                surfaces: vec![],
            },
        ])
        .expect("valid registry")
    }

    fn request(actor: &str, tenant: &str) -> DecisionRequest {
        DecisionRequest {
            surface: "payments".into(),
            action: "transfer".into(),
            actor: actor.into(),
            tenant: tenant.into(),
            params: serde_json::json!({"amount": 5, "currency": "EUR", "to_account": "a"}),
            context: Default::default(),
            idempotency_key: "k-1".into(),
        }
    }

    const G: Digest = Digest([7; 32]);
    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn a_signed_request_round_trips_and_authenticates_its_agent() {
        let s = SignedRequest::sign(&sk(1), &G, request("agent-7", "acme"), NOW);
        let bytes = s.encode();
        let back = SignedRequest::decode(&bytes).expect("decodes");
        assert_eq!(back, s);
        assert_eq!(back.encode(), bytes);
        let reg = registry();
        let who = s
            .authenticate(&reg, &G, NOW + 1000, 120_000)
            .expect("genuine");
        assert_eq!(who.name, "agent-7");
        // Trailing bytes, truncation: refused.
        let mut long = bytes.clone();
        long.push(0);
        assert!(SignedRequest::decode(&long).is_err());
        assert!(SignedRequest::decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn each_way_of_not_being_the_agent_is_refused_with_its_own_code() {
        let reg = registry();
        let code = |s: &SignedRequest, at: u64| {
            s.authenticate(&reg, &G, at, 120_000)
                .map(|_| ())
                .map_err(|e| e.code())
        };
        let other_actor = SignedRequest::sign(&sk(1), &G, request("agent-8", "acme"), NOW);
        assert_eq!(code(&other_actor, NOW), Err("wrong-actor"));
        let other_tenant = SignedRequest::sign(&sk(1), &G, request("agent-7", "globex"), NOW);
        assert_eq!(code(&other_tenant, NOW), Err("wrong-tenant"));
        let unknown = SignedRequest::sign(&sk(9), &G, request("agent-7", "acme"), NOW);
        assert_eq!(code(&unknown, NOW), Err("unknown-key"));
        let auditor = SignedRequest::sign(&sk(2), &G, request("agent-7", "acme"), NOW);
        assert_eq!(code(&auditor, NOW), Err("wrong-role"));
        let good = SignedRequest::sign(&sk(1), &G, request("agent-7", "acme"), NOW);
        assert_eq!(code(&good, NOW + 600_000), Err("not-fresh"));
        assert_eq!(code(&good, NOW - 120_001), Err("not-fresh"));
        assert_eq!(code(&good, NOW + 120_000), Ok(()));
        let mut flipped = good.clone();
        flipped.signature[10] ^= 1;
        assert_eq!(code(&flipped, NOW), Err("bad-signature"));
        // Another chain, or another request under the same signature.
        let elsewhere =
            SignedRequest::sign(&sk(1), &Digest([8; 32]), request("agent-7", "acme"), NOW);
        assert_eq!(code(&elsewhere, NOW), Err("bad-signature"));
        let mut swapped = good.clone();
        swapped.request.idempotency_key = "k-2".into();
        assert_eq!(code(&swapped, NOW), Err("bad-signature"));
    }

    /// A memo that counts the signatures it was asked about.
    #[derive(Default)]
    struct Memo(std::sync::Mutex<(std::collections::HashSet<Digest>, usize)>);

    impl Verified for Memo {
        fn seen(&self, d: &Digest) -> bool {
            let mut m = self.0.lock().expect("lock");
            m.1 += 1;
            m.0.contains(d)
        }

        fn remember(&self, d: Digest) {
            self.0.lock().expect("lock").0.insert(d);
        }
    }

    #[test]
    fn a_memo_spares_a_second_verification_and_changes_no_outcome() {
        let reg = registry();
        let memo = Memo::default();
        let good = SignedRequest::sign(&sk(1), &G, request("agent-7", "acme"), NOW);
        let check = |s: &SignedRequest, at: u64| {
            s.authenticate_memo(&reg, &G, at, 120_000, &memo)
                .map(|i| i.name.clone())
                .map_err(|e| e.code())
        };
        assert_eq!(check(&good, NOW), Ok("agent-7".into()));
        assert_eq!(
            memo.0.lock().expect("lock").0.len(),
            1,
            "remembered once verified"
        );
        assert_eq!(check(&good, NOW), Ok("agent-7".into()));
        assert_eq!(memo.0.lock().expect("lock").0.len(), 1);
        // Freshness and the registry are judged every time, memo or not.
        assert_eq!(check(&good, NOW + 600_000), Err("not-fresh"));
        // A flipped bit is another signature: verified, refused, and never
        // remembered.
        let mut flipped = good.clone();
        flipped.signature[3] ^= 1;
        assert_eq!(check(&flipped, NOW), Err("bad-signature"));
        assert_eq!(check(&flipped, NOW), Err("bad-signature"));
        assert_eq!(memo.0.lock().expect("lock").0.len(), 1);
    }

    #[test]
    fn a_call_is_authorized_only_for_its_roles_method_and_body() {
        let reg = registry();
        let body = get_ledger_body(1, 10, 0);
        let auth = CallAuth::sign(&sk(2), &G, "GetLedger", &body, NOW);
        let ok = |a: &CallAuth, method: &str, body: &[u8]| {
            a.authorize(
                &reg,
                &[Role::Auditor, Role::Operator],
                &G,
                method,
                body,
                NOW,
                120_000,
            )
            .map(|i| i.name.clone())
            .map_err(|e| e.code())
        };
        assert_eq!(ok(&auth, "GetLedger", &body), Ok("auditor-1".to_string()));
        assert_eq!(
            ok(&auth, "GetLedger", &get_ledger_body(1, 11, 0)),
            Err("bad-signature")
        );
        assert_eq!(ok(&auth, "AppendRecord", &body), Err("bad-signature"));
        let agent = CallAuth::sign(&sk(1), &G, "GetLedger", &body, NOW);
        assert_eq!(ok(&agent, "GetLedger", &body), Err("wrong-role"));
        let stale = CallAuth::sign(&sk(2), &G, "GetLedger", &body, NOW - 600_000);
        assert_eq!(ok(&stale, "GetLedger", &body), Err("not-fresh"));
    }
}
