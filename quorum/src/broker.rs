//! Offline token verification for brokers.
//!
//! A broker sits in front of an execution surface and holds only public
//! material: the genesis document and the seal chain. From those it learns
//! every epoch's group key and every sealed (policy version, seal digest)
//! pair, and it checks a token with nothing else: no network, no clock of
//! its own (`now_ms` is an input), no cluster. Redemption (exactly once,
//! through Raft) is the caller's next step and is not done here.
//!
//! Every rejection is a distinct [`VerifyError`] carrying the bad value, and
//! the steps run in the order `docs/PROTOCOL.md` ("Broker verification")
//! lists, so the same token always fails the same way.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use ed25519_dalek::{Signature, VerifyingKey};
use senatus_genesis::document::GenesisError;
use senatus_genesis::policy::TOKEN_LIFETIME_MS_HARD_MAX;
use senatus_genesis::seal::{SealError, verify_chain};
use senatus_genesis::{Digest, Epoch, Genesis, Key32, PolicyVersion, SignedSeal};
use sha3::{Digest as _, Sha3_256};

use crate::merkle::{self, MerkleError};
use crate::outcome::Outcome;
use crate::params::{ParamsError, params_digest};
use crate::token::{DecodeError, Nonce, Token};

/// How far in the future `issued_at_ms` may lie before a token is refused as
/// not yet valid: validator and broker clocks differ by this much at most.
pub const CLOCK_SKEW_MS_MAX: u64 = 5_000;

/// Verified (batch message, signature) pairs remembered, so the other
/// tokens of a batch skip the Ed25519 check. 4096 entries of 32 bytes plus
/// set overhead: well under 1 MiB. Oldest evicted first.
pub const VERIFIED_BATCHES_MAX: usize = 4096;

/// Why a broker could not be built from genesis and seals.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Genesis does not verify.
    #[error("genesis: {0}")]
    Genesis(#[from] GenesisError),
    /// The seal chain does not verify from genesis.
    #[error("seal chain: {0}")]
    Seal(#[from] SealError),
    /// A seal's group key is not a usable Ed25519 public key.
    #[error("epoch {epoch} group key {group_key} is not a valid Ed25519 public key")]
    BadGroupKey {
        /// The epoch.
        epoch: Epoch,
        /// The key.
        group_key: Key32,
    },
    /// Two seals of one epoch name different group keys. Keys change only
    /// at handover (a new epoch); anything else is refused, fail closed.
    #[error("epoch {epoch} has two group keys, {first} and {second}")]
    EpochKeyChanged {
        /// The epoch.
        epoch: Epoch,
        /// The key of its first seal.
        first: Key32,
        /// The conflicting key.
        second: Key32,
    },
}

/// Why a token was refused. Each variant is one check, carrying the value
/// that failed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a token: truncated, garbled, trailing bytes, unknown version.
    #[error("malformed token: {0}")]
    Malformed(#[from] DecodeError),
    /// Issued by another cluster (another genesis).
    #[error("token is for genesis {found}, this broker trusts genesis {expected}")]
    ChainMismatch {
        /// This broker's genesis digest.
        expected: Digest,
        /// The token's.
        found: Digest,
    },
    /// No seal in the chain names this epoch, so no signing key is known.
    #[error("token epoch {0} has no sealed group key in this broker's chain")]
    UnknownEpoch(Epoch),
    /// The payload is not leaf `leaf_index` of the signed root.
    #[error("inclusion proof for leaf {leaf_index} of {leaf_count} fails: {reason}")]
    BadInclusionProof {
        /// Claimed leaf index.
        leaf_index: u32,
        /// Claimed leaf count.
        leaf_count: u32,
        /// What failed.
        reason: MerkleError,
    },
    /// The signature does not verify (strictly) under the epoch's group key.
    #[error("signature does not verify under epoch {epoch} group key {group_key}")]
    BadSignature {
        /// The epoch.
        epoch: Epoch,
        /// Its group key.
        group_key: Key32,
    },
    /// The (policy version, seal digest) pair is not in the seal chain.
    #[error("policy version {version} with seal {seal_digest} is not in the seal chain")]
    UnknownPolicyVersion {
        /// Claimed version.
        version: PolicyVersion,
        /// Claimed seal digest.
        seal_digest: Digest,
    },
    /// The named seal belongs to another epoch than the signing one.
    #[error(
        "seal {seal_digest} is of epoch {seal_epoch}, the token is signed in epoch {token_epoch}"
    )]
    SealEpochMismatch {
        /// The seal.
        seal_digest: Digest,
        /// Its epoch.
        seal_epoch: Epoch,
        /// The token's epoch.
        token_epoch: Epoch,
    },
    /// A genuine DENY or SILENCE receipt: evidence, never permission.
    #[error("token records outcome {0}, not PERMIT")]
    NotPermit(Outcome),
    /// Permit for another surface.
    #[error("token is for surface {found:?}, this broker guards {expected:?}")]
    WrongSurface {
        /// What the broker guards.
        expected: String,
        /// What the token says.
        found: String,
    },
    /// Permit for another action.
    #[error("token is for action {found:?}, the request is {expected:?}")]
    WrongAction {
        /// The action about to run.
        expected: String,
        /// What the token says.
        found: String,
    },
    /// Permit for another tenant.
    #[error("token is for tenant {found:?}, the request is for {expected:?}")]
    WrongTenant {
        /// The tenant about to be acted for.
        expected: String,
        /// What the token says.
        found: String,
    },
    /// The params about to be executed cannot be digested (fail closed).
    #[error("request params: {0}")]
    Params(ParamsError),
    /// The params about to be executed are not the ones decided on.
    #[error("params digest {actual} differs from the token's {token}")]
    ParamsMismatch {
        /// Digest in the token.
        token: Digest,
        /// Digest of the actual params.
        actual: Digest,
    },
    /// At or past expiry.
    #[error("token expired at {expires_at_ms} ms, now is {now_ms} ms")]
    Expired {
        /// Expiry.
        expires_at_ms: u64,
        /// The time checked.
        now_ms: u64,
    },
    /// Lives longer than any constitution may allow
    /// ([`TOKEN_LIFETIME_MS_HARD_MAX`]): signers never sign such a token.
    #[error(
        "token lives {lifetime_ms} ms (issued {issued_at_ms}, expiring {expires_at_ms}), above the {TOKEN_LIFETIME_MS_HARD_MAX} ms any constitution allows"
    )]
    LifetimeTooLong {
        /// Issue time.
        issued_at_ms: u64,
        /// Expiry.
        expires_at_ms: u64,
        /// `expires_at_ms - issued_at_ms`.
        lifetime_ms: u64,
    },
    /// Issued further in the future than [`CLOCK_SKEW_MS_MAX`].
    #[error(
        "token issued at {issued_at_ms} ms, beyond now ({now_ms} ms) plus {CLOCK_SKEW_MS_MAX} ms skew"
    )]
    NotYetValid {
        /// Issue time.
        issued_at_ms: u64,
        /// The time checked.
        now_ms: u64,
    },
}

/// What the broker is about to execute; a PERMIT must match all of it.
#[derive(Debug, Clone, Copy)]
pub struct Expectation<'a> {
    /// The surface this broker guards.
    pub surface: &'a str,
    /// The action about to run.
    pub action: &'a str,
    /// The tenant it runs for.
    pub tenant: &'a str,
    /// The exact params it runs with.
    pub params: &'a serde_json::Value,
}

/// A token that passed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The token.
    pub token: Token,
    /// [`Token::digest`], for the redemption record.
    pub digest: Digest,
}

impl VerifiedToken {
    /// The nonce to redeem exactly once.
    pub fn nonce(&self) -> Nonce {
        self.token.payload.nonce
    }
}

#[derive(Debug)]
struct EpochKey {
    group_key: Key32,
    key: VerifyingKey,
}

#[derive(Debug, Default)]
struct BatchCache {
    seen: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

impl BatchCache {
    fn insert(&mut self, k: [u8; 32]) {
        if self.seen.insert(k) {
            self.order.push_back(k);
            if self.order.len() > VERIFIED_BATCHES_MAX {
                let old = self.order.pop_front().expect("non-empty");
                self.seen.remove(&old);
            }
        }
        debug_assert_eq!(self.seen.len(), self.order.len());
    }
}

/// Verifies tokens offline against a verified genesis and seal chain.
#[derive(Debug)]
pub struct Broker {
    genesis_digest: Digest,
    epochs: BTreeMap<Epoch, EpochKey>,
    /// seal digest -> (policy version, epoch).
    seals: HashMap<Digest, (PolicyVersion, Epoch)>,
    cache: Mutex<BatchCache>,
}

impl Broker {
    /// Verifies genesis and the seal chain (with genesis' own functions) and
    /// keeps each epoch's parsed group key and every sealed version.
    pub fn new(genesis: &Genesis, seals: &[SignedSeal]) -> Result<Broker, BrokerError> {
        genesis.verify()?;
        verify_chain(genesis, seals)?;
        let mut epochs: BTreeMap<Epoch, EpochKey> = BTreeMap::new();
        let mut sealed = HashMap::new();
        for signed in seals {
            let s = &signed.seal;
            match epochs.get(&s.epoch) {
                Some(k) if k.group_key != s.group_key => {
                    return Err(BrokerError::EpochKeyChanged {
                        epoch: s.epoch,
                        first: k.group_key,
                        second: s.group_key,
                    });
                }
                Some(_) => {}
                None => {
                    let key =
                        senatus_genesis::ed25519::verifying_key(&s.group_key.0).map_err(|_| {
                            BrokerError::BadGroupKey {
                                epoch: s.epoch,
                                group_key: s.group_key,
                            }
                        })?;
                    epochs.insert(
                        s.epoch,
                        EpochKey {
                            group_key: s.group_key,
                            key,
                        },
                    );
                }
            }
            sealed.insert(s.digest(), (s.version, s.epoch));
        }
        Ok(Broker {
            genesis_digest: genesis.digest(),
            epochs,
            seals: sealed,
            cache: Mutex::new(BatchCache::default()),
        })
    }

    /// The genesis digest tokens must carry.
    pub fn genesis_digest(&self) -> Digest {
        self.genesis_digest
    }

    /// Decodes and fully verifies a wire token for `expect` at `now_ms`:
    /// it must be an authentic PERMIT for exactly this request, in its
    /// validity window.
    pub fn verify(
        &self,
        token_bytes: &[u8],
        expect: &Expectation<'_>,
        now_ms: u64,
    ) -> Result<VerifiedToken, VerifyError> {
        let token = Token::from_bytes(token_bytes)?;
        self.verify_token(token, expect, now_ms)
    }

    /// [`Broker::verify`] for an already decoded token.
    pub fn verify_token(
        &self,
        token: Token,
        expect: &Expectation<'_>,
        now_ms: u64,
    ) -> Result<VerifiedToken, VerifyError> {
        let v = self.verify_receipt_token(token)?;
        let p = &v.token.payload;
        if p.outcome != Outcome::Permit {
            return Err(VerifyError::NotPermit(p.outcome));
        }
        if p.surface != expect.surface {
            return Err(VerifyError::WrongSurface {
                expected: expect.surface.to_string(),
                found: p.surface.clone(),
            });
        }
        if p.action != expect.action {
            return Err(VerifyError::WrongAction {
                expected: expect.action.to_string(),
                found: p.action.clone(),
            });
        }
        if p.tenant != expect.tenant {
            return Err(VerifyError::WrongTenant {
                expected: expect.tenant.to_string(),
                found: p.tenant.clone(),
            });
        }
        let actual = params_digest(expect.params).map_err(VerifyError::Params)?;
        if actual != p.params_digest {
            return Err(VerifyError::ParamsMismatch {
                token: p.params_digest,
                actual,
            });
        }
        let lifetime_ms = p.expires_at_ms.saturating_sub(p.issued_at_ms);
        if lifetime_ms > TOKEN_LIFETIME_MS_HARD_MAX {
            return Err(VerifyError::LifetimeTooLong {
                issued_at_ms: p.issued_at_ms,
                expires_at_ms: p.expires_at_ms,
                lifetime_ms,
            });
        }
        if p.issued_at_ms > now_ms.saturating_add(CLOCK_SKEW_MS_MAX) {
            return Err(VerifyError::NotYetValid {
                issued_at_ms: p.issued_at_ms,
                now_ms,
            });
        }
        if now_ms >= p.expires_at_ms {
            return Err(VerifyError::Expired {
                expires_at_ms: p.expires_at_ms,
                now_ms,
            });
        }
        Ok(v)
    }

    /// Checks only that a token is authentic (any outcome, any time): the
    /// cluster really decided this. DENY and SILENCE receipts pass here as
    /// evidence; they never pass [`Broker::verify`].
    pub fn verify_receipt(&self, token_bytes: &[u8]) -> Result<VerifiedToken, VerifyError> {
        self.verify_receipt_token(Token::from_bytes(token_bytes)?)
    }

    /// [`Broker::verify_receipt`] for an already decoded token.
    pub fn verify_receipt_token(&self, token: Token) -> Result<VerifiedToken, VerifyError> {
        let p = &token.payload;
        if p.genesis_digest != self.genesis_digest {
            return Err(VerifyError::ChainMismatch {
                expected: self.genesis_digest,
                found: p.genesis_digest,
            });
        }
        let epoch = self
            .epochs
            .get(&p.epoch)
            .ok_or(VerifyError::UnknownEpoch(p.epoch))?;
        let leaf_bytes = p.encode();
        merkle::verify(
            &merkle::leaf_hash(&leaf_bytes),
            token.leaf_index,
            token.leaf_count,
            &token.proof,
            &token.root,
        )
        .map_err(|reason| VerifyError::BadInclusionProof {
            leaf_index: token.leaf_index,
            leaf_count: token.leaf_count,
            reason,
        })?;
        self.check_signature(&token, epoch, p.epoch)?;
        match self.seals.get(&p.seal_digest) {
            Some(&(version, _)) if version != p.policy_version => {
                return Err(VerifyError::UnknownPolicyVersion {
                    version: p.policy_version,
                    seal_digest: p.seal_digest,
                });
            }
            Some(&(_, seal_epoch)) if seal_epoch != p.epoch => {
                return Err(VerifyError::SealEpochMismatch {
                    seal_digest: p.seal_digest,
                    seal_epoch,
                    token_epoch: p.epoch,
                });
            }
            Some(_) => {}
            None => {
                return Err(VerifyError::UnknownPolicyVersion {
                    version: p.policy_version,
                    seal_digest: p.seal_digest,
                });
            }
        }
        Ok(VerifiedToken {
            digest: senatus_genesis::sha3(&leaf_bytes),
            token,
        })
    }

    fn check_signature(
        &self,
        token: &Token,
        epoch: &EpochKey,
        epoch_no: Epoch,
    ) -> Result<(), VerifyError> {
        let message = token.batch_message(&epoch.group_key);
        // The cache key commits to everything the signature check saw: the
        // whole batch message (chain, epoch, key, root, count) and the
        // signature bytes.
        let mut h = Sha3_256::new();
        h.update(&message);
        h.update(token.signature);
        let cache_key: [u8; 32] = h.finalize().into();
        if self.cache().seen.contains(&cache_key) {
            return Ok(());
        }
        epoch
            .key
            .verify_strict(&message, &Signature::from_bytes(&token.signature))
            .map_err(|_| VerifyError::BadSignature {
                epoch: epoch_no,
                group_key: epoch.group_key,
            })?;
        self.cache().insert(cache_key);
        Ok(())
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, BatchCache> {
        // A panic while holding the lock leaves only a set of verified
        // keys behind, which is still correct; keep using it.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_cache_is_bounded_and_evicts_oldest_first() {
        let mut c = BatchCache::default();
        for i in 0..(VERIFIED_BATCHES_MAX as u32 + 10) {
            let mut k = [0u8; 32];
            k[..4].copy_from_slice(&i.to_be_bytes());
            c.insert(k);
            c.insert(k);
        }
        assert_eq!(c.seen.len(), VERIFIED_BATCHES_MAX);
        assert!(!c.seen.contains(&[0u8; 32]));
        let mut newest = [0u8; 32];
        newest[..4].copy_from_slice(&(VERIFIED_BATCHES_MAX as u32 + 9).to_be_bytes());
        assert!(c.seen.contains(&newest));
    }
}
