//! Who is calling the public API (I10, docs/PROTOCOL.md 10.1 and 10.2): an
//! agent's signed `Decide`, an auditor's or operator's signed read, an
//! operator's signed record. Every check is against the registry of the
//! active sealed layer and this validator's own clock; a refusal names the
//! key, its role and the rule, and changes nothing.

use senatus_genesis::Key32;
use senatus_genesis::registry::{Identity, Role};
use senatus_proto::reason::{Reason, Reasoned};
use senatus_proto::v1 as pb;
use senatus_quorum::auth::{AuthError, CallAuth, SignedRequest, Verified};
use senatus_quorum::evaluate::Evaluator;
use senatus_quorum::request::DecisionRequest;

use crate::clock::now_ms;
use crate::store::state::StateHandle;

/// Most signatures a [`VerifiedMemo`] remembers (32 bytes each): about
/// 20 s of decisions at the bench's rate; the oldest are forgotten first.
pub const VERIFIED_MEMO_ENTRIES_MAX: usize = 65_536;

/// The signatures this validator found valid, bounded
/// ([`VERIFIED_MEMO_ENTRIES_MAX`], oldest forgotten first): the leader that
/// admitted a request, and a signer that admitted it itself, do not verify
/// it again when they evaluate the committed batch. A forgotten entry
/// only costs a verification; an entry is made only for a signature that
/// verified, so the memo never changes an outcome.
#[derive(Debug, Default)]
pub struct VerifiedMemo(std::sync::Mutex<MemoInner>);

#[derive(Debug, Default)]
struct MemoInner {
    set: std::collections::HashSet<senatus_genesis::Digest>,
    order: std::collections::VecDeque<senatus_genesis::Digest>,
}

impl Verified for VerifiedMemo {
    fn seen(&self, check: &senatus_genesis::Digest) -> bool {
        crate::clock::lock(&self.0).set.contains(check)
    }

    fn remember(&self, check: senatus_genesis::Digest) {
        let mut m = crate::clock::lock(&self.0);
        if m.set.insert(check) {
            m.order.push_back(check);
            while m.order.len() > VERIFIED_MEMO_ENTRIES_MAX {
                if let Some(old) = m.order.pop_front() {
                    m.set.remove(&old);
                }
            }
        }
    }
}

/// Why a caller was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallerError {
    /// No signature at all.
    #[error(
        "{method} needs a signature by a registered {needs} key (docs/PROTOCOL.md 10.2); none was given; nothing changed"
    )]
    Unsigned {
        /// The call.
        method: &'static str,
        /// The roles it needs, e.g. "auditor or operator".
        needs: String,
    },
    /// A key or signature of the wrong length.
    #[error("{method}: {field} is {len} bytes, want {want}; nothing changed")]
    Malformed {
        /// The call.
        method: &'static str,
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The length it must have.
        want: usize,
    },
    /// The registry refuses the key, its signature, its time or its role.
    #[error("{method} refused: {error}; nothing changed")]
    Refused {
        /// The call.
        method: &'static str,
        /// Why (boxed: it is the largest variant by far).
        error: Box<AuthError>,
        /// The role of the key's identity, when it has one.
        role: Option<Role>,
    },
    /// A registered broker redeeming a token for a surface it does not
    /// guard.
    #[error(
        "{method} refused: key {key} is broker {broker:?}, which guards {surfaces:?}, not surface {surface:?}; nothing changed"
    )]
    OutsideSurfaces {
        /// The call.
        method: &'static str,
        /// The broker.
        broker: String,
        /// Its key.
        key: Key32,
        /// The token's surface.
        surface: String,
        /// The surfaces it guards.
        surfaces: Vec<String>,
    },
    /// This validator has no active sealed layer loaded (starting).
    #[error("{method}: no sealed policy layer is loaded yet; retry")]
    NoLayer {
        /// The call.
        method: &'static str,
    },
}

impl Reasoned for CallerError {
    fn reason(&self) -> Option<Reason> {
        Some(match self {
            CallerError::Unsigned { .. } | CallerError::Malformed { .. } => {
                Reason::CallerUnauthenticated
            }
            CallerError::Refused { error, .. } => match **error {
                AuthError::UnknownKey { .. }
                | AuthError::BadSignature { .. }
                | AuthError::NotFresh { .. } => Reason::CallerUnauthenticated,
                AuthError::WrongRole { .. }
                | AuthError::WrongTenant { .. }
                | AuthError::WrongActor { .. } => Reason::CallerNotAuthorized,
            },
            CallerError::OutsideSurfaces { .. } => Reason::CallerNotAuthorized,
            CallerError::NoLayer { .. } => Reason::GateUnavailable,
        })
    }

    fn metadata(&self) -> Vec<(&'static str, String)> {
        match self {
            CallerError::Unsigned { method, .. } => {
                vec![("method", method.to_string()), ("rule", "unsigned".into())]
            }
            CallerError::Malformed { method, field, .. } => vec![
                ("method", method.to_string()),
                ("field", field.to_string()),
                ("rule", "malformed".into()),
            ],
            CallerError::Refused {
                method,
                error,
                role,
            } => {
                let mut m = vec![
                    ("method", method.to_string()),
                    ("key", error.key().to_string()),
                    ("rule", error.code().to_string()),
                ];
                if let Some(r) = role {
                    m.push(("role", r.to_string()));
                }
                m
            }
            CallerError::OutsideSurfaces {
                method,
                key,
                surface,
                ..
            } => vec![
                ("method", method.to_string()),
                ("key", key.to_string()),
                ("rule", "wrong-surface".into()),
                ("role", Role::Broker.to_string()),
                ("surface", surface.clone()),
            ],
            CallerError::NoLayer { method } => vec![("method", method.to_string())],
        }
    }
}

fn key32(method: &'static str, field: &'static str, b: &[u8]) -> Result<Key32, CallerError> {
    <[u8; 32]>::try_from(b)
        .map(Key32)
        .map_err(|_| CallerError::Malformed {
            method,
            field,
            len: b.len(),
            want: 32,
        })
}

fn sig64(method: &'static str, field: &'static str, b: &[u8]) -> Result<[u8; 64], CallerError> {
    <[u8; 64]>::try_from(b).map_err(|_| CallerError::Malformed {
        method,
        field,
        len: b.len(),
        want: 64,
    })
}

fn refused<'a>(
    active: &'a Evaluator,
    method: &'static str,
) -> impl Fn(AuthError) -> CallerError + 'a {
    move |error| {
        let role = active.registry().by_key(&error.key()).map(|i| i.role);
        CallerError::Refused {
            method,
            error: Box::new(error),
            role,
        }
    }
}

/// Checks that `auth` is a fresh signature on `method` with `body` by a
/// registered identity holding one of `roles`; returns that identity.
pub fn authorize(
    state: &StateHandle,
    genesis_digest: &senatus_genesis::Digest,
    method: &'static str,
    body: &[u8],
    auth: Option<&pb::CallAuth>,
    roles: &[Role],
) -> Result<Identity, CallerError> {
    let Some(a) = auth else {
        return Err(CallerError::Unsigned {
            method,
            needs: Role::either(roles),
        });
    };
    let auth = CallAuth {
        key: key32(method, "auth.key", &a.key)?,
        signed_at_ms: a.signed_at_ms,
        signature: sig64(method, "auth.signature", &a.signature)?,
    };
    // The compiled active layer, taken out of the state lock: the
    // signature is checked without holding it.
    let active = state
        .with(|s| s.active_evaluator())
        .ok_or(CallerError::NoLayer { method })?;
    auth.authorize(
        active.registry(),
        roles,
        genesis_digest,
        method,
        body,
        now_ms(),
        active.signed_skew_ms_max(),
    )
    .cloned()
    .map_err(refused(&active, method))
}

/// The `Decide` request as its agent signed it, checked against the active
/// registry and this validator's clock (PROTOCOL 10.1): refused before it
/// reaches the ledger. Every signer checks it again, against the batch's
/// time, when it evaluates the committed entry.
pub fn signed_request(
    state: &StateHandle,
    genesis_digest: &senatus_genesis::Digest,
    wire: &pb::DecideRequest,
    request: DecisionRequest,
    memo: &dyn Verified,
) -> Result<SignedRequest, CallerError> {
    const METHOD: &str = "Decide";
    if wire.agent_key.is_empty() && wire.signature.is_empty() {
        return Err(CallerError::Unsigned {
            method: METHOD,
            needs: Role::Agent.to_string(),
        });
    }
    let signed = SignedRequest {
        key: key32(METHOD, "agent_key", &wire.agent_key)?,
        signature: sig64(METHOD, "signature", &wire.signature)?,
        signed_at_ms: wire.signed_at_ms,
        request,
    };
    let active = state
        .with(|s| s.active_evaluator())
        .ok_or(CallerError::NoLayer { method: METHOD })?;
    match active.authenticate(&signed, genesis_digest, now_ms(), memo) {
        Ok(_) => Ok(signed),
        Err(e) => Err(refused(&active, METHOD)(e)),
    }
}
