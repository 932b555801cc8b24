//! The records `apply` keeps besides the ledger: which nonce was redeemed
//! where (I6), and where each request's idempotency key first led; the
//! payload codecs they are keyed by; and how `apply` reads them.
//!
//! The records only grow, one ledger entry at a time, so they live where
//! the caller keeps them (RocksDB on a validator, memory in a replay or a
//! simulation) and `apply` reads them through [`Records`]. It ignores every
//! record made at or after the index of the entry it is applying, so
//! replaying a ledger over the records that ledger already produced gives
//! exactly the effects it gave the first time.

use std::collections::HashMap;
use std::convert::Infallible;

use senatus_genesis::Key32;
use senatus_genesis::codec::{Decoder, Digest, Encoder};
use senatus_genesis::registry::{Registry, Role};
use senatus_quorum::auth::{CallAuth, SignedRequest};
use senatus_quorum::presentation::Presentation;
use senatus_quorum::token;

use crate::state::Effects;

/// Domain object of a Redemption entry's payload.
pub const REDEMPTION_OBJECT: &str = "redemption";
/// Domain object of an idempotency store key.
pub const IDEMPOTENCY_OBJECT: &str = "idempotency";

/// Where a request's idempotency key first led: the decision at
/// `position` of the Decision entry at `ledger_index`, for the request with
/// digest `request_digest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Ledger index of the Decision entry.
    pub ledger_index: u64,
    /// Position of the request in that entry.
    pub position: u32,
    /// SHA3-256 of the request's canonical bytes.
    pub request_digest: Digest,
}

impl IdempotencyRecord {
    /// Encoded length: index (8) + position (4) + digest (32).
    pub const LEN: usize = 44;

    /// `u64 ledger_index || u32 position || request_digest`, big-endian.
    pub fn to_bytes(self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..8].copy_from_slice(&self.ledger_index.to_be_bytes());
        out[8..12].copy_from_slice(&self.position.to_be_bytes());
        out[12..].copy_from_slice(&self.request_digest.0);
        out
    }

    /// Strict inverse of [`IdempotencyRecord::to_bytes`]; `None` unless
    /// exactly [`IdempotencyRecord::LEN`] bytes.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let b: &[u8; Self::LEN] = b.try_into().ok()?;
        let (index, rest) = b.split_at(8);
        let (position, digest) = rest.split_at(4);
        Some(IdempotencyRecord {
            ledger_index: u64::from_be_bytes(index.try_into().ok()?),
            position: u32::from_be_bytes(position.try_into().ok()?),
            request_digest: Digest(digest.try_into().ok()?),
        })
    }
}

/// The store key of a request's idempotency key: SHA3-256 over
/// `"senatus/idempotency/v2" 0x00 fixed32 agent_key str tenant str actor
/// str key`. The key belongs to the asker: keys of different agents,
/// tenants, actors, and of one agent before and after a key rotation,
/// never collide, and only the agent's own signed request can resolve it.
pub fn idempotency_key(r: &SignedRequest) -> Vec<u8> {
    let mut e = Encoder::new(IDEMPOTENCY_OBJECT, 2);
    e.fixed32(&r.key.0)
        .str(&r.request.tenant)
        .str(&r.request.actor)
        .str(&r.request.idempotency_key);
    e.digest_of().0.to_vec()
}

/// The method name a broker signs a redemption under (PROTOCOL 10.2): its
/// call body is the presentation's bytes.
pub const REDEEM_METHOD: &str = "Redeem";

/// Payload of a `Redemption` ledger entry (version 2): the token, the
/// agent's presentation of it to the broker, and the broker's signature on
/// the call — what lets every validator, and an auditor holding an export,
/// check who handed which token to whom.
///
/// ```text
/// redemption = "senatus/redemption/v2" 0x00
///     bytes   token                the token's wire bytes (9.5)
///     bytes   presentation         the agent's presentation (10.3)
///     fixed32 broker_key           the broker's registered key
///     u64     broker_signed_at_ms
///     fixed64 broker_signature     Ed25519 over call_signing_bytes(genesis,
///                                  "Redeem", presentation, broker_signed_at_ms)
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redemption {
    /// The token's wire bytes, as redeemed.
    pub token_bytes: Vec<u8>,
    /// The token, decoded.
    pub token: token::Token,
    /// The agent's presentation.
    pub presentation: Presentation,
    /// The broker's signature on the `Redeem` call.
    pub broker: CallAuth,
}

impl Redemption {
    /// The entry payload (type documentation).
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new(REDEMPTION_OBJECT, 2);
        e.bytes(&self.token_bytes)
            .bytes(&self.presentation.encode())
            .fixed32(&self.broker.key.0)
            .u64(self.broker.signed_at_ms)
            .fixed64(&self.broker.signature);
        e.finish()
    }

    /// Strict inverse of [`Redemption::encode`]: the token and the
    /// presentation decode strictly, no trailing bytes. Checks no
    /// signature.
    pub fn decode(payload: &[u8]) -> Result<Redemption, String> {
        let mut d = Decoder::new(payload, REDEMPTION_OBJECT, 2).map_err(|e| e.to_string())?;
        let token_bytes = d.bytes("token").map_err(|e| e.to_string())?.to_vec();
        let token = token::Token::from_bytes(&token_bytes).map_err(|e| format!("token: {e}"))?;
        let presentation =
            Presentation::decode(d.bytes("presentation").map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
        let key = Key32(d.fixed32("broker_key").map_err(|e| e.to_string())?);
        let signed_at_ms = d.u64("broker_signed_at_ms").map_err(|e| e.to_string())?;
        let signature = d.fixed64("broker_signature").map_err(|e| e.to_string())?;
        d.finish().map_err(|e| e.to_string())?;
        Ok(Redemption {
            token_bytes,
            token,
            presentation,
            broker: CallAuth {
                key,
                signed_at_ms,
                signature,
            },
        })
    }

    /// The nonce redeemed.
    pub fn nonce(&self) -> Vec<u8> {
        self.token.payload.nonce.0.to_vec()
    }

    /// What every validator checks on apply, against the sealed `registry`
    /// active at the entry's index (no clock: freshness was the leader's
    /// admission check; nor the group signature, which the leader checked
    /// with the seal chain): the token is of this chain, the presentation
    /// is of this token by the agent
    /// the token names; the broker is registered, is the one the agent
    /// handed it to, guards the token's surface, and signed this call.
    /// Returns the broker's name.
    pub fn check(&self, registry: &Registry, genesis_digest: &Digest) -> Result<String, String> {
        if self.token.payload.genesis_digest != *genesis_digest {
            return Err(format!(
                "the token is of genesis {}, this ledger's is {genesis_digest}",
                self.token.payload.genesis_digest
            ));
        }
        self.presentation
            .verify_for(registry, &self.token)
            .map_err(|e| format!("presentation ({}): {e}", e.code()))?;
        let broker = self
            .broker
            .authorize(
                registry,
                &[Role::Broker],
                genesis_digest,
                REDEEM_METHOD,
                &self.presentation.encode(),
                // Judged against its own time with no window: no clock
                // here, the leader judged freshness on admission.
                self.broker.signed_at_ms,
                0,
            )
            .map_err(|e| format!("broker ({}): {e}", e.code()))?;
        if broker.name != self.presentation.broker {
            return Err(format!(
                "broker {:?} redeemed a token the agent handed to {:?}",
                broker.name, self.presentation.broker
            ));
        }
        let surface = &self.token.payload.surface;
        if !broker.surfaces.contains(surface) {
            return Err(format!(
                "broker {:?} does not guard surface {surface:?} (its surfaces: {:?})",
                broker.name, broker.surfaces
            ));
        }
        Ok(broker.name.clone())
    }
}

/// The nonce of a `Redemption` payload (what the records key on); `None`
/// when the payload is not exactly a redemption.
pub fn redemption_nonce(payload: &[u8]) -> Option<Vec<u8>> {
    Redemption::decode(payload).ok().map(|r| r.nonce())
}

/// What `apply` reads of the records earlier entries made. Answers as
/// stored; `apply` itself disregards a record made at or after the entry it
/// applies.
pub trait Records {
    /// A failure to read (a store error); `apply` stops on it.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The ledger index of the Redemption entry that redeemed `nonce`.
    fn redeemed(&self, nonce: &[u8]) -> Result<Option<u64>, Self::Error>;

    /// Where idempotency store key `key` first led.
    fn idempotency(&self, key: &[u8]) -> Result<Option<IdempotencyRecord>, Self::Error>;

    /// The hash of ledger entry `index`.
    fn entry_hash(&self, index: u64) -> Result<Option<Digest>, Self::Error>;
}

/// Records kept in memory: a replay, a test, the simulation, and the
/// effects of one apply call not yet written to a store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemRecords {
    nonces: HashMap<Vec<u8>, u64>,
    idempotency: HashMap<Vec<u8>, IdempotencyRecord>,
    hashes: HashMap<u64, Digest>,
}

impl MemRecords {
    /// Empty records.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records what one applied entry made.
    pub fn absorb(&mut self, effects: &Effects) {
        if let Some((nonce, index)) = &effects.redeemed {
            self.nonces.insert(nonce.clone(), *index);
        }
        for (key, record) in &effects.idempotency {
            self.idempotency.insert(key.clone(), *record);
        }
        self.hashes.insert(effects.entry.index, effects.entry.hash);
    }
}

impl Records for MemRecords {
    type Error = Infallible;

    fn redeemed(&self, nonce: &[u8]) -> Result<Option<u64>, Infallible> {
        Ok(self.nonces.get(nonce).copied())
    }

    fn idempotency(&self, key: &[u8]) -> Result<Option<IdempotencyRecord>, Infallible> {
        Ok(self.idempotency.get(key).copied())
    }

    fn entry_hash(&self, index: u64) -> Result<Option<Digest>, Infallible> {
        Ok(self.hashes.get(&index).copied())
    }
}

/// The records of a store with the effects of entries applied since its
/// last write laid over them: what one apply call reads before it writes
/// its batch.
#[derive(Debug)]
pub struct Overlay<'a, R> {
    base: &'a R,
    pending: MemRecords,
}

impl<'a, R: Records> Overlay<'a, R> {
    /// Nothing pending over `base`.
    pub fn new(base: &'a R) -> Self {
        Overlay {
            base,
            pending: MemRecords::default(),
        }
    }

    /// Lays one applied entry's effects over the store.
    pub fn absorb(&mut self, effects: &Effects) {
        self.pending.absorb(effects);
    }
}

impl<R: Records> Records for Overlay<'_, R> {
    type Error = R::Error;

    fn redeemed(&self, nonce: &[u8]) -> Result<Option<u64>, R::Error> {
        match self.pending.nonces.get(nonce) {
            Some(i) => Ok(Some(*i)),
            None => self.base.redeemed(nonce),
        }
    }

    fn idempotency(&self, key: &[u8]) -> Result<Option<IdempotencyRecord>, R::Error> {
        match self.pending.idempotency.get(key) {
            Some(r) => Ok(Some(*r)),
            None => self.base.idempotency(key),
        }
    }

    fn entry_hash(&self, index: u64) -> Result<Option<Digest>, R::Error> {
        match self.pending.hashes.get(&index) {
            Some(h) => Ok(Some(*h)),
            None => self.base.entry_hash(index),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_records_round_trip_strictly() {
        let r = IdempotencyRecord {
            ledger_index: 0x0102_0304_0506_0708,
            position: 9,
            request_digest: Digest([7; 32]),
        };
        let b = r.to_bytes();
        assert_eq!(&b[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&b[8..12], &[0, 0, 0, 9]);
        assert_eq!(IdempotencyRecord::from_bytes(&b), Some(r));
        assert_eq!(IdempotencyRecord::from_bytes(&b[..43]), None);
        let mut long = b.to_vec();
        long.push(0);
        assert_eq!(IdempotencyRecord::from_bytes(&long), None);
    }
}
