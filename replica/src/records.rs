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

use senatus_genesis::codec::{Decoder, Digest, Encoder};
use senatus_quorum::auth::SignedRequest;
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

/// Payload of a `Redemption` ledger entry: the token's nonce, decision id
/// and digest.
///
/// ```text
/// redemption = "senatus/redemption/v1" 0x00  bytes16 nonce (u32 length 16, then 16 bytes)
///              fixed32 decision_id  fixed32 token_digest
/// ```
pub fn redemption_payload(t: &token::Token) -> Vec<u8> {
    let mut e = Encoder::new(REDEMPTION_OBJECT, 1);
    e.bytes(&t.payload.nonce.0)
        .digest(&t.payload.decision_id)
        .digest(&t.digest());
    e.finish()
}

/// The nonce of a `Redemption` payload (what the records key on); `None`
/// when the payload is not exactly a redemption.
pub fn redemption_nonce(payload: &[u8]) -> Option<Vec<u8>> {
    let mut d = Decoder::new(payload, REDEMPTION_OBJECT, 1).ok()?;
    let nonce = d.bytes("nonce").ok()?.to_vec();
    d.digest("decision_id").ok()?;
    d.digest("token_digest").ok()?;
    d.finish().ok()?;
    (nonce.len() == token::NONCE_BYTES).then_some(nonce)
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

    #[test]
    fn a_redemption_payload_names_exactly_one_nonce() {
        let mut e = Encoder::new(REDEMPTION_OBJECT, 1);
        e.bytes(&[5; token::NONCE_BYTES])
            .digest(&Digest([1; 32]))
            .digest(&Digest([2; 32]));
        let good = e.finish();
        assert_eq!(redemption_nonce(&good), Some(vec![5; token::NONCE_BYTES]));
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(redemption_nonce(&trailing), None);
        assert_eq!(redemption_nonce(&good[..good.len() - 1]), None);
        let mut short = Encoder::new(REDEMPTION_OBJECT, 1);
        short
            .bytes(&[5; token::NONCE_BYTES - 1])
            .digest(&Digest([1; 32]))
            .digest(&Digest([2; 32]));
        assert_eq!(redemption_nonce(&short.finish()), None);
    }
}
