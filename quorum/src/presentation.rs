//! Presentations: an agent handing one token to one broker, signed by the
//! agent (docs/PROTOCOL.md 10.3).
//!
//! ```text
//! presentation_signing_bytes = "senatus/presentation-signature/v1" 0x00
//!     fixed32 genesis_digest   the chain the token is of
//!     fixed32 token_digest     SHA3-256 of the token's wire bytes (9.6)
//!     str     broker           the registered name of the broker it is handed to
//!     fixed32 params_hash      SHA3-256 of the params JSON text handed over, as is
//!     u64     presented_at_ms  the agent's clock
//!
//! presentation = "senatus/presentation/v1" 0x00
//!     fixed32 token_digest
//!     str     broker
//!     fixed32 params_hash
//!     u64     presented_at_ms
//!     fixed32 key              the agent's Ed25519 public key
//!     fixed64 signature        Ed25519 over presentation_signing_bytes
//! ```
//!
//! A presentation is the only evidence that can certify an agent: a broker
//! redeems a token only with the presentation of the agent the token names,
//! to that broker, with the params it is about to run. What one agent
//! signed, no broker, validator or outsider can produce for it; so a
//! certificate about an agent (token forged, modified or replayed) carries
//! the agent's own presentations, and a made-up token or a stolen one
//! certifies nobody.
//!
//! The token is bound by its whole wire form (payload, proof and
//! signature), not by its payload digest: a presentation of a genuine
//! token stays a presentation of that genuine token, so whoever holds it
//! cannot spoil the signature or the proof and pass the agent's signature
//! off as the presentation of a forgery.
//!
//! The params are bound as text (a hash of the exact bytes), not as their
//! canonical digest: a presentation of params that do not even parse is
//! still the agent's statement, and is what proves a modified token.

use senatus_genesis::codec::{Decoder, Encoder, sha3};
use senatus_genesis::registry::{Identity, Registry, Role};
use senatus_genesis::{Digest, Key32};

use crate::auth::{AuthError, Verified, VerifyAll, fresh, verify};
use crate::token::{FIELD_BYTES_MAX, Token};

/// Domain object name of the bytes an agent signs.
pub const PRESENTATION_SIGNATURE_OBJECT: &str = "presentation-signature";
/// Domain object name of a presentation.
pub const PRESENTATION_OBJECT: &str = "presentation";
/// Version of both encodings.
pub const PRESENTATION_VERSION: u8 = 1;
/// Longest broker name in a presentation, in bytes.
pub const BROKER_NAME_BYTES_MAX: usize = FIELD_BYTES_MAX;
/// Largest encoded presentation: tag, digest, broker name at its bound,
/// params hash, time, key, signature.
pub const PRESENTATION_BYTES_MAX: usize =
    "senatus/presentation/v1\0".len() + 32 + 4 + BROKER_NAME_BYTES_MAX + 32 + 8 + 32 + 64;

/// Why a presentation is refused. [`PresentationError::code`] is the
/// machine-readable rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresentationError {
    /// No presentation was given.
    #[error(
        "no presentation: a token is redeemed only as handed over by the agent it names (docs/PROTOCOL.md 10.3)"
    )]
    Missing,
    /// Not a `senatus/presentation/v1` encoding (truncated, trailing,
    /// oversized, wrong tag).
    #[error("presentation does not decode: {0}")]
    Malformed(String),
    /// It presents another token.
    #[error("the presentation is of token {presented}, not of this token {token}")]
    OtherToken {
        /// The digest the agent signed.
        presented: Digest,
        /// This token's digest.
        token: Digest,
    },
    /// It hands the token to another broker.
    #[error("the presentation hands the token to broker {presented:?}, not to {broker:?}")]
    OtherBroker {
        /// The broker the agent named.
        presented: String,
        /// The broker redeeming.
        broker: String,
    },
    /// The params given are not the text the agent presented.
    #[error("the params given hash to {given}, the agent presented params hashing to {presented}")]
    OtherParams {
        /// The params hash the agent signed.
        presented: Digest,
        /// SHA3-256 of the params given.
        given: Digest,
    },
    /// The key is registered, but is not the agent the token names.
    #[error(
        "key {key} is not the agent the token names (tenant {tenant:?}, actor {actor:?}{})",
        match agent { Some(a) => format!(", registered as {a:?}"), None => ", which no registered agent may act as".to_string() }
    )]
    OtherAgent {
        /// The key that signed.
        key: Key32,
        /// The token's tenant.
        tenant: String,
        /// The token's actor.
        actor: String,
        /// The registered agent that may act as (tenant, actor), if any.
        agent: Option<String>,
    },
    /// The registry refuses the key, its time or its signature.
    #[error("{0}")]
    Auth(AuthError),
}

impl PresentationError {
    /// The key that signed, when there is one to name.
    pub fn key(&self) -> Option<Key32> {
        match self {
            PresentationError::OtherAgent { key, .. } => Some(*key),
            PresentationError::Auth(e) => Some(e.key()),
            _ => None,
        }
    }

    /// The machine-readable rule (metadata `rule` of a
    /// `PRESENTATION_REFUSED`).
    pub fn code(&self) -> &'static str {
        match self {
            PresentationError::Missing => "missing",
            PresentationError::Malformed(_) => "malformed",
            PresentationError::OtherToken { .. } => "other-token",
            PresentationError::OtherBroker { .. } => "other-broker",
            PresentationError::OtherParams { .. } => "other-params",
            PresentationError::OtherAgent { .. } => "other-agent",
            PresentationError::Auth(e) => e.code(),
        }
    }
}

/// The bytes an agent signs to hand the token with `token_digest` to
/// `broker` with params text hashing to `params_hash`, at `presented_at_ms`.
pub fn presentation_signing_bytes(
    genesis_digest: &Digest,
    token_digest: &Digest,
    broker: &str,
    params_hash: &Digest,
    presented_at_ms: u64,
) -> Vec<u8> {
    let mut e = Encoder::new(PRESENTATION_SIGNATURE_OBJECT, PRESENTATION_VERSION);
    e.digest(genesis_digest)
        .digest(token_digest)
        .str(broker)
        .digest(params_hash)
        .u64(presented_at_ms);
    e.finish()
}

/// SHA3-256 of the params text exactly as handed over.
pub fn params_hash(params_json: &str) -> Digest {
    sha3(params_json.as_bytes())
}

/// What a presentation binds a token by: SHA3-256 of its wire bytes
/// (payload, proof and signature; the encoding is strict, so a decoded
/// token re-encodes to exactly the bytes it came from).
pub fn token_wire_digest(token: &Token) -> Digest {
    sha3(&token.to_bytes())
}

/// An agent's signed hand-off of one token to one broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presentation {
    /// [`token_wire_digest`] of the token handed over.
    pub token_digest: Digest,
    /// The registered name of the broker it is handed to.
    pub broker: String,
    /// [`params_hash`] of the params text handed over.
    pub params_hash: Digest,
    /// The agent's clock, unix milliseconds.
    pub presented_at_ms: u64,
    /// The agent's public key.
    pub key: Key32,
    /// Ed25519 over [`presentation_signing_bytes`].
    pub signature: [u8; 64],
}

impl Presentation {
    /// Signs the hand-off of `token` to `broker` with `params_json`, for
    /// the chain the token names.
    pub fn sign(
        key: &ed25519_dalek::SigningKey,
        token: &Token,
        broker: &str,
        params_json: &str,
        presented_at_ms: u64,
    ) -> Presentation {
        use ed25519_dalek::Signer as _;
        let token_digest = token_wire_digest(token);
        let params_hash = params_hash(params_json);
        let message = presentation_signing_bytes(
            &token.payload.genesis_digest,
            &token_digest,
            broker,
            &params_hash,
            presented_at_ms,
        );
        Presentation {
            token_digest,
            broker: broker.to_string(),
            params_hash,
            presented_at_ms,
            key: Key32(key.verifying_key().to_bytes()),
            signature: key.sign(&message).to_bytes(),
        }
    }

    /// The canonical bytes (module documentation).
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new(PRESENTATION_OBJECT, PRESENTATION_VERSION);
        e.digest(&self.token_digest)
            .str(&self.broker)
            .digest(&self.params_hash)
            .u64(self.presented_at_ms)
            .fixed32(&self.key.0)
            .fixed64(&self.signature);
        e.finish()
    }

    /// SHA3-256 of [`Presentation::encode`]: two presentations are the same
    /// hand-off exactly when their digests are equal.
    pub fn digest(&self) -> Digest {
        sha3(&self.encode())
    }

    /// Strict inverse of [`Presentation::encode`]: bounded by
    /// [`PRESENTATION_BYTES_MAX`], exact tag, a broker name within
    /// [`BROKER_NAME_BYTES_MAX`], no trailing bytes. Checks no signature.
    pub fn decode(bytes: &[u8]) -> Result<Presentation, PresentationError> {
        if bytes.len() > PRESENTATION_BYTES_MAX {
            return Err(PresentationError::Malformed(format!(
                "{} bytes, above presentation_bytes_max {PRESENTATION_BYTES_MAX}",
                bytes.len()
            )));
        }
        let bad =
            |e: senatus_genesis::codec::DecodeError| PresentationError::Malformed(e.to_string());
        let mut d = Decoder::new(bytes, PRESENTATION_OBJECT, PRESENTATION_VERSION).map_err(bad)?;
        let token_digest = d.digest("token_digest").map_err(bad)?;
        let broker = d.str("broker").map_err(bad)?;
        if broker.len() > BROKER_NAME_BYTES_MAX {
            return Err(PresentationError::Malformed(format!(
                "broker name is {} bytes, above {BROKER_NAME_BYTES_MAX}",
                broker.len()
            )));
        }
        let broker = broker.to_string();
        let params_hash = d.digest("params_hash").map_err(bad)?;
        let presented_at_ms = d.u64("presented_at_ms").map_err(bad)?;
        let key = Key32(d.fixed32("key").map_err(bad)?);
        let signature = d.fixed64("signature").map_err(bad)?;
        d.finish().map_err(bad)?;
        let p = Presentation {
            token_digest,
            broker,
            params_hash,
            presented_at_ms,
            key,
            signature,
        };
        debug_assert_eq!(p.encode(), bytes);
        Ok(p)
    }

    /// What holds for this presentation at any time, as an auditor checks
    /// it from an export: it presents `token`, its key is the registered
    /// agent of `registry` that may act as the token's (tenant, actor), and
    /// its signature verifies for the token's chain. Returns the agent.
    pub fn verify_for<'r>(
        &self,
        registry: &'r Registry,
        token: &Token,
    ) -> Result<&'r Identity, PresentationError> {
        self.verify_memo(registry, token, &VerifyAll)
    }

    /// [`Presentation::verify_for`], skipping a signature `memo` has seen
    /// verify.
    pub fn verify_memo<'r>(
        &self,
        registry: &'r Registry,
        token: &Token,
        memo: &dyn Verified,
    ) -> Result<&'r Identity, PresentationError> {
        self.presents(token)?;
        let agent = self.agent(registry, token)?;
        let message = presentation_signing_bytes(
            &token.payload.genesis_digest,
            &self.token_digest,
            &self.broker,
            &self.params_hash,
            self.presented_at_ms,
        );
        verify(registry, &self.key, &message, &self.signature, memo)
            .map_err(PresentationError::Auth)?;
        Ok(agent)
    }

    /// What a validator checks before redeeming: [`Presentation::verify_for`],
    /// and that it hands the token to `broker` with exactly `params_json`,
    /// signed within `skew_ms` of `now_ms`.
    pub fn admit<'r>(
        &self,
        registry: &'r Registry,
        token: &Token,
        broker: &str,
        params_json: &str,
        now_ms: u64,
        skew_ms: u64,
    ) -> Result<&'r Identity, PresentationError> {
        self.presents(token)?;
        if self.broker != broker {
            return Err(PresentationError::OtherBroker {
                presented: self.broker.clone(),
                broker: broker.to_string(),
            });
        }
        let given = params_hash(params_json);
        if given != self.params_hash {
            return Err(PresentationError::OtherParams {
                presented: self.params_hash,
                given,
            });
        }
        self.agent(registry, token)?;
        fresh(&self.key, self.presented_at_ms, now_ms, skew_ms).map_err(PresentationError::Auth)?;
        self.verify_for(registry, token)
    }

    /// It presents `token` (by its wire bytes).
    fn presents(&self, token: &Token) -> Result<(), PresentationError> {
        let digest = token_wire_digest(token);
        if self.token_digest != digest {
            return Err(PresentationError::OtherToken {
                presented: self.token_digest,
                token: digest,
            });
        }
        Ok(())
    }

    /// The registered agent of the token, which must hold this key.
    fn agent<'r>(
        &self,
        registry: &'r Registry,
        token: &Token,
    ) -> Result<&'r Identity, PresentationError> {
        let key = self.key;
        let Some(signer) = registry.by_key(&key) else {
            return Err(PresentationError::Auth(AuthError::UnknownKey { key }));
        };
        if signer.role != Role::Agent {
            return Err(PresentationError::Auth(AuthError::WrongRole {
                key,
                name: signer.name.clone(),
                role: signer.role,
                needs: Role::Agent.to_string(),
            }));
        }
        let p = &token.payload;
        match registry.agent_for(&p.tenant, &p.actor) {
            Some(agent) if agent.key == key => Ok(agent),
            other => Err(PresentationError::OtherAgent {
                key,
                tenant: p.tenant.clone(),
                actor: p.actor.clone(),
                agent: other.map(|a| a.name.clone()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_as_documented() {
        assert_eq!("senatus/presentation/v1\0".len(), 24);
        assert_eq!(PRESENTATION_BYTES_MAX, 24 + 32 + 4 + 256 + 32 + 8 + 32 + 64);
    }

    #[test]
    fn decode_refuses_oversize_trailing_and_truncated_bytes() {
        let p = Presentation {
            token_digest: Digest([1; 32]),
            broker: "broker-1".into(),
            params_hash: Digest([2; 32]),
            presented_at_ms: 7,
            key: Key32([3; 32]),
            signature: [4; 64],
        };
        let bytes = p.encode();
        assert_eq!(Presentation::decode(&bytes), Ok(p.clone()));
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            Presentation::decode(&long).map_err(|e| e.code()),
            Err("malformed")
        );
        for cut in [0, 10, bytes.len() - 1] {
            assert_eq!(
                Presentation::decode(&bytes[..cut]).map_err(|e| e.code()),
                Err("malformed"),
                "cut at {cut}"
            );
        }
        let mut huge = p;
        huge.broker = "b".repeat(BROKER_NAME_BYTES_MAX + 1);
        let e = Presentation::decode(&huge.encode()).expect_err("oversized");
        assert_eq!(e.code(), "malformed");
    }
}
