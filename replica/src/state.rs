//! The replicated state and the one function every validator runs on every
//! committed command: [`State::apply`].
//!
//! `apply` decides whether a command becomes a ledger entry, computes that
//! entry, and returns everything the caller must persist as [`Effects`]:
//! the entry, the nonce it redeemed, the idempotency keys it resolved, and
//! the state digest after it. A refused command returns a
//! [`CommandRejection`] and changes nothing. The node's state machine,
//! its boot-time replay, snapshot install and the simulation all run this
//! function and nothing else, so they cannot disagree (I7).
//!
//! # State digest (`docs/PROTOCOL.md`, "State digest")
//!
//! ```text
//! state_digest = SHA3-256( "senatus/state/v1" 0x00
//!                  u64 head.index  fixed32 head.hash
//!                  fixed32 amend_digest      (32 zero bytes without amendments)
//!                  u64 nonces.count          fixed32 nonces.chain
//!                  u64 idempotency.count     fixed32 idempotency.chain )
//! nonces.chain'      = SHA3-256("senatus/state-nonce/v1" 0x00 fixed32 chain bytes nonce u64 index)
//! idempotency.chain' = SHA3-256("senatus/state-idempotency/v1" 0x00 fixed32 chain bytes key
//!                               u64 ledger_index u32 position fixed32 request_digest)
//! ```
//!
//! Both chains start at 32 zero bytes and take records in ledger order
//! (index, then position), which is also the order of their `ledger_index`
//! fields, so they are a function of the records' contents and a node can
//! recompute them from its store.

use std::collections::HashSet;

use senatus_genesis::codec::{Digest, Encoder};
use senatus_quorum::batch::DecisionBatch;
use senatus_quorum::certificate::{Evidence, SignedCertificate};

use crate::amend::{AmendRejection, AmendState};
use crate::command::{Command, CommandRejection};
use crate::ledger::{EntryKind, LedgerEntry, LedgerHead};
use crate::records::{IdempotencyRecord, Records, Redemption, idempotency_key};

/// Domain object of the state digest.
pub const STATE_OBJECT: &str = "state";
/// Domain object of one step of the nonce chain.
pub const STATE_NONCE_OBJECT: &str = "state-nonce";
/// Domain object of one step of the idempotency chain.
pub const STATE_IDEMPOTENCY_OBJECT: &str = "state-idempotency";

/// What applying one command made: everything its caller persists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effects {
    /// The ledger entry appended.
    pub entry: LedgerEntry,
    /// The nonce a Redemption entry redeemed, at the entry's index.
    pub redeemed: Option<(Vec<u8>, u64)>,
    /// The idempotency keys a Decision entry resolved first, with where.
    pub idempotency: Vec<(Vec<u8>, IdempotencyRecord)>,
    /// The state digest after this entry.
    pub state_digest: Digest,
}

/// Why [`State::apply`] did not append.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError<E: std::error::Error + 'static> {
    /// Every validator refuses this command identically; nothing changed.
    #[error("{0}")]
    Rejected(CommandRejection),
    /// The records could not be read; nothing changed, and the caller must
    /// not go on (its store is failing).
    #[error("records could not be read: {0}")]
    Records(#[source] E),
}

/// Why an entry of an already verified ledger did not apply again.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError<E: std::error::Error + 'static> {
    /// The entry was refused: the ledger and these rules disagree.
    #[error("ledger index {index} ({kind}) was appended but does not apply again: {rejection}")]
    Refused {
        /// The entry's index.
        index: u64,
        /// Its kind.
        kind: EntryKind,
        /// Why it was refused now.
        rejection: CommandRejection,
    },
    /// Applying it produced another entry than the one on the ledger.
    #[error("ledger index {index}: applying it gives hash {derived}, the ledger holds {recorded}")]
    Diverged {
        /// The entry's index.
        index: u64,
        /// The hash `apply` computed.
        derived: Digest,
        /// The hash the ledger holds.
        recorded: Digest,
    },
    /// The records could not be read.
    #[error("records could not be read: {0}")]
    Records(#[source] E),
}

/// A running digest over records taken in ledger order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Chain {
    count: u64,
    digest: Digest,
}

impl Chain {
    const EMPTY: Chain = Chain {
        count: 0,
        digest: Digest([0; 32]),
    };

    fn step(&mut self, object: &str, write: impl FnOnce(&mut Encoder)) {
        let mut e = Encoder::new(object, 1);
        e.digest(&self.digest);
        write(&mut e);
        self.digest = e.digest_of();
        self.count += 1;
    }
}

/// The replicated state of one validator, derived from its ledger: the
/// ledger head, the amendment tally with the seal chain and certificates,
/// and digests of the records kept beside it.
#[derive(Debug)]
pub struct State {
    genesis: Digest,
    head: LedgerHead,
    amend: Option<AmendState>,
    nonces: Chain,
    idempotency: Chain,
    /// The amendment state's digest, recomputed only when it may change.
    amend_digest: Digest,
}

impl State {
    /// The state before entry 1 of the ledger chained from `genesis`.
    /// Without `amend` the state tallies no amendments: every Proposal,
    /// Vote, Seal, Redeclaration and Certificate is refused (storage tests).
    pub fn new(genesis: Digest, amend: Option<AmendState>) -> Self {
        let amend_digest = amend.as_ref().map_or(Digest([0; 32]), AmendState::digest);
        State {
            genesis,
            head: LedgerHead::genesis(genesis),
            amend,
            nonces: Chain::EMPTY,
            idempotency: Chain::EMPTY,
            amend_digest,
        }
    }

    /// The same rules and seal 0, with nothing applied: to rebuild from
    /// another copy of the ledger (a snapshot).
    pub fn fresh(&self) -> Result<Self, String> {
        let amend = self.amend.as_ref().map(AmendState::fresh).transpose()?;
        Ok(State::new(self.genesis, amend))
    }

    /// The genesis digest entry 1 links to.
    pub fn genesis(&self) -> Digest {
        self.genesis
    }

    /// The head of the ledger applied so far.
    pub fn head(&self) -> LedgerHead {
        self.head
    }

    /// The amendment state, when this state tallies amendments.
    pub fn amend(&self) -> Option<&AmendState> {
        self.amend.as_ref()
    }

    /// Mutable access to the amendment state, for what is not replicated
    /// (taking queued equivocation evidence, test hooks).
    pub fn amend_mut(&mut self) -> Option<&mut AmendState> {
        self.amend.as_mut()
    }

    /// The state digest (module docs) after the last applied entry.
    pub fn digest(&self) -> Digest {
        let mut e = Encoder::new(STATE_OBJECT, 1);
        e.u64(self.head.index)
            .digest(&self.head.hash)
            .digest(&self.amend_digest)
            .u64(self.nonces.count)
            .digest(&self.nonces.digest)
            .u64(self.idempotency.count)
            .digest(&self.idempotency.digest);
        e.digest_of()
    }

    /// Checks `command` as the next ledger entry and, unless it is refused,
    /// appends it: returns what to persist. Reads earlier records through
    /// `records`, disregarding any made at or after the new entry's index.
    pub fn apply<R: Records>(
        &mut self,
        records: &R,
        command: &Command,
    ) -> Result<Effects, ApplyError<R::Error>> {
        let reject = |r| Err(ApplyError::Rejected(r));
        let at = self.head.index + 1;
        if let Err(r) = command.validate() {
            return reject(r);
        }
        // Records strictly before the new entry: what the ledger held when
        // it was first applied, on replay as much as live.
        let before = |i: u64| i < at;

        // A nonce is redeemed at most once (I6): every validator refuses a
        // second redemption identically, from its own records.
        let mut redeemed = None;
        if command.kind == EntryKind::Redemption {
            let Ok(redemption) = Redemption::decode(&command.payload) else {
                return reject(CommandRejection::MalformedRedemption);
            };
            // Who handed the token to whom, checked by every validator
            // against the registry sealed at this index: a leader cannot
            // burn a nonce without the agent's presentation and a
            // registered broker's signature.
            if let Some(a) = &self.amend
                && let Err(why) = redemption.check(a.layer().registry(), &self.genesis)
            {
                return reject(CommandRejection::RedemptionRefused(why));
            }
            let nonce = redemption.nonce();
            let first = records
                .redeemed(&nonce)
                .map_err(ApplyError::Records)?
                .filter(|i| before(*i));
            if let Some(first_index) = first {
                return reject(CommandRejection::NonceReplayed {
                    nonce: hex::encode(&nonce),
                    first_index,
                });
            }
            redeemed = Some((nonce, at));
        }

        // Each request's idempotency key resolves to its first decision.
        let mut idempotency = Vec::new();
        if command.kind == EntryKind::Decision {
            let Ok(decisions) = DecisionBatch::decode(&command.payload) else {
                return reject(CommandRejection::MalformedDecision);
            };
            // A batch is decided under the seal active at its own index,
            // never a mix: one proposed before a reseal that commits after
            // it is refused everywhere, and the leader decides it again.
            if let Some(a) = &self.amend
                && !a.is_active(decisions.policy_version.0, &decisions.seal_digest)
            {
                return reject(CommandRejection::StalePolicy {
                    batch_version: decisions.policy_version.0,
                    active_version: a.seal().version.0,
                    active_seal: a.seal().digest().to_hex(),
                });
            }
            let mut seen = HashSet::new();
            for (position, r) in decisions.requests.iter().enumerate() {
                let key = idempotency_key(r);
                if seen.contains(&key) {
                    continue;
                }
                let earlier = records
                    .idempotency(&key)
                    .map_err(ApplyError::Records)?
                    .filter(|rec| before(rec.ledger_index));
                seen.insert(key.clone());
                if earlier.is_some() {
                    continue;
                }
                let position = u32::try_from(position)
                    .expect("a decision batch decodes with far fewer than 2^32 requests");
                idempotency.push((
                    key,
                    IdempotencyRecord {
                        ledger_index: at,
                        position,
                        request_digest: r.request.digest(),
                    },
                ));
            }
        }

        // A certificate's evidence that names this ledger (a break at an
        // index, a nonce's first redemption) is checked against it here;
        // the rest on the amendment state below.
        if command.kind == EntryKind::Certificate {
            let checked = crate::certified::decode(&command.payload)
                .map_err(LocalFactError::Other)
                .and_then(|cert| local_facts(records, &cert, at));
            match checked {
                Ok(()) => {}
                Err(LocalFactError::Records(e)) => return Err(ApplyError::Records(e)),
                Err(LocalFactError::Other(why)) => {
                    return reject(CommandRejection::Amendment(format!("certificate: {why}")));
                }
            }
        }

        // A seal's attested head names an entry of this ledger: its hash
        // must be the one this validator holds there. (Honest members
        // attest only their own; a quorum over another hash is a seal of
        // another branch of the log, refused here.)
        if command.kind == EntryKind::Seal && self.amend.is_some() {
            let entry = crate::amend::SealEntry::decode(&command.payload).map_err(|why| {
                ApplyError::Rejected(CommandRejection::Amendment(format!("seal entry: {why}")))
            })?;
            let head = entry.attested.ledger_index;
            let mine = if head < at {
                records.entry_hash(head).map_err(ApplyError::Records)?
            } else {
                None
            };
            match mine {
                Some(h) if h == entry.attested.entry_hash => {}
                Some(h) => {
                    return reject(CommandRejection::Amendment(format!(
                        "seal entry: the attested head is entry {head} with hash {}, this validator's entry {head} has hash {h}",
                        entry.attested.entry_hash
                    )));
                }
                None => {
                    return reject(CommandRejection::Amendment(format!(
                        "seal entry: the attested head {head} is not an earlier entry of this ledger"
                    )));
                }
            }
        }

        // Amendments last: the tally changes only for an entry that is
        // appended. Proposals and votes it refuses append nothing.
        let amends = matches!(
            command.kind,
            EntryKind::Proposal
                | EntryKind::Vote
                | EntryKind::Seal
                | EntryKind::Redeclaration
                | EntryKind::Certificate
        );
        match &mut self.amend {
            Some(a) => {
                let was_open = a.open_count() > 0;
                match a.apply(at, command.kind, &command.payload) {
                    Ok(()) => {}
                    Err(AmendRejection::CertificateOnLedger { id, first_index }) => {
                        return reject(CommandRejection::CertificateOnLedger {
                            id: id.to_hex(),
                            first_index,
                        });
                    }
                    Err(r) => return reject(CommandRejection::Amendment(r.to_string())),
                }
                if amends || was_open {
                    self.amend_digest = a.digest();
                }
            }
            None if amends => {
                return reject(CommandRejection::Amendment(
                    AmendRejection::NotEnabled.to_string(),
                ));
            }
            None => {}
        }

        // Everything checked: append.
        let entry = LedgerEntry::next(&self.head, command.kind, command.payload.clone());
        if let Some((nonce, index)) = &redeemed {
            self.nonces.step(STATE_NONCE_OBJECT, |e| {
                e.bytes(nonce).u64(*index);
            });
        }
        for (key, r) in &idempotency {
            self.idempotency.step(STATE_IDEMPOTENCY_OBJECT, |e| {
                e.bytes(key)
                    .u64(r.ledger_index)
                    .u32(r.position)
                    .digest(&r.request_digest);
            });
        }
        self.head = entry.head();
        Ok(Effects {
            entry,
            redeemed,
            idempotency,
            state_digest: self.digest(),
        })
    }

    /// Applies `entry` of an already verified ledger again and checks it
    /// produces that very entry (boot, snapshot install, an auditor's
    /// replay).
    pub fn replay<R: Records>(
        &mut self,
        records: &R,
        entry: &LedgerEntry,
    ) -> Result<Effects, ReplayError<R::Error>> {
        let command = Command::new(entry.kind, entry.payload.clone());
        let effects = match self.apply(records, &command) {
            Ok(e) => e,
            Err(ApplyError::Records(e)) => return Err(ReplayError::Records(e)),
            Err(ApplyError::Rejected(rejection)) => {
                return Err(ReplayError::Refused {
                    index: entry.index,
                    kind: entry.kind,
                    rejection,
                });
            }
        };
        if effects.entry != *entry {
            return Err(ReplayError::Diverged {
                index: entry.index,
                derived: effects.entry.hash,
                recorded: entry.hash,
            });
        }
        Ok(effects)
    }
}

/// Why certificate evidence about this ledger does not hold.
#[derive(Debug)]
pub enum LocalFactError<E> {
    /// The records could not be read.
    Records(E),
    /// The evidence is false here (the reason, with the values).
    Other(String),
}

impl<E: std::fmt::Display> std::fmt::Display for LocalFactError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LocalFactError::Records(e) => write!(f, "records could not be read: {e}"),
            LocalFactError::Other(why) => f.write_str(why),
        }
    }
}

/// The checks of a certificate that need this ledger's records, as of
/// before ledger index `at`: a ledger break's `expected` hash is the hash
/// this ledger holds at that index (the issuer's copy differs from the
/// chain everyone else holds), and a replayed token's first redemption is
/// in these records at the index the evidence names.
pub fn local_facts<R: Records>(
    records: &R,
    cert: &SignedCertificate,
    at: u64,
) -> Result<(), LocalFactError<R::Error>> {
    let fail = |s: String| Err(LocalFactError::Other(s));
    match &cert.certificate.evidence {
        Evidence::LedgerBreak {
            index, expected, ..
        } => {
            let mine = if *index < at {
                records
                    .entry_hash(*index)
                    .map_err(LocalFactError::Records)?
            } else {
                None
            };
            match mine {
                Some(h) if h == *expected => Ok(()),
                Some(h) => fail(format!(
                    "ledger-break evidence: this validator's entry {index} has hash {h}, the certificate says the chain has {expected}"
                )),
                None => fail(format!(
                    "ledger-break evidence: this validator has no entry {index}"
                )),
            }
        }
        Evidence::TokenReplayed {
            token, first_index, ..
        } => {
            let t = match senatus_quorum::token::Token::from_bytes(token) {
                Ok(t) => t,
                Err(e) => return fail(format!("token-replayed evidence: {e}")),
            };
            let nonce = t.payload.nonce.0.to_vec();
            let first = records
                .redeemed(&nonce)
                .map_err(LocalFactError::Records)?
                .filter(|i| *i < at);
            match first {
                Some(i) if i == *first_index => Ok(()),
                Some(i) => fail(format!(
                    "token-replayed evidence: nonce {} was redeemed at ledger index {i}, not {first_index}",
                    hex::encode(&nonce)
                )),
                None => fail(format!(
                    "token-replayed evidence: nonce {} was never redeemed here",
                    hex::encode(&nonce)
                )),
            }
        }
        Evidence::LedgerFork(a) => {
            let index = a.ledger_index;
            let mine = if index < at {
                records.entry_hash(index).map_err(LocalFactError::Records)?
            } else {
                None
            };
            match mine {
                Some(h) if h != a.entry_hash => Ok(()),
                Some(_) => fail(format!(
                    "ledger-fork evidence: the attested entry hash {} is the one committed at ledger index {index}",
                    a.entry_hash
                )),
                None => fail(format!(
                    "ledger-fork evidence: this validator has no entry {index} to compare"
                )),
            }
        }
        _ => Ok(()),
    }
}
