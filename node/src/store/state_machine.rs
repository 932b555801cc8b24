//! The replicated state machine in RocksDB: openraft storage-v2
//! [`RaftStateMachine`] and [`RaftSnapshotBuilder`].
//!
//! All state lives in RocksDB. Applying a batch of Raft entries is one synced
//! `WriteBatch` holding the new ledger entries, the ledger head, the applied
//! log id and the membership, so the state after a crash is exactly the state
//! after some whole batch. Only `Normal` entries carrying a [`Command`]
//! produce ledger entries; the ledger index is independent of the Raft index.

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, RaftSnapshotBuilder, Snapshot, StorageIOError};
use rocksdb::{DB, IteratorMode, SnapshotWithThreadMode, WriteBatch, WriteOptions};
use senatus_genesis::codec::{Digest, sha3};

use senatus_replica::records::{IdempotencyRecord, MemRecords, Overlay, Records};
use senatus_replica::state::{ApplyError, Effects, State};

use super::db::{StoreError, cf_handle, from_json, parse_index_key, rocks};
use super::keys::{cf, index_key, key, key_label, to_json};
use super::snapshot::{
    CfPairs, RESERVED_CFS, SNAPSHOT_BYTES_MAX_DEFAULT, SnapshotContents, SnapshotError,
};

use super::state::StateHandle;
use crate::ledger::{ChainError, ChainVerifier, LedgerEntry, LedgerHead};
use crate::raft_types::{
    CommandResponse, LogId, RaftEntry, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use senatus_replica::amend::AmendState;

/// Largest number of entries one [`StateMachineStore::ledger_range`] call
/// returns, whatever the caller asks for.
pub const LEDGER_RANGE_ENTRIES_MAX: usize = 10_000;
/// Most stored bytes one [`StateMachineStore::ledger_range`] call decodes
/// (beyond its first entry). Each stored value's length is checked against
/// it before the value is copied or decoded, so a range of large entries
/// (up to `LEDGER_PAYLOAD_BYTES_MAX`, 4 MiB, each) ends early instead of
/// allocating up to [`LEDGER_RANGE_ENTRIES_MAX`] of them. A `GetLedger`
/// page is then at most about this plus its entries' framing, well under
/// the API's 16 MiB reply limit (`PEER_MESSAGE_BYTES_MAX`).
pub const LEDGER_RANGE_BYTES_MAX: usize = 4 * 1024 * 1024;

type DbSnapshot<'a> = SnapshotWithThreadMode<'a, DB>;

/// The state machine over the shared RocksDB. Cloning is cheap; clones share
/// the database and see the same state (reads never see half a batch).
#[derive(Clone)]
pub struct StateMachineStore {
    db: Arc<DB>,
    genesis: Digest,
    snapshot_bytes_max: usize,
    /// Serialises writes of the `snapshot` column family (a snapshot build
    /// runs concurrently with apply and install).
    snapshot_lock: Arc<Mutex<()>>,
    /// The replicated state `apply` runs on, derived from the ledger
    /// (loaded by [`StateMachineStore::load_state`], or on first use
    /// without amendments).
    state: StateHandle,
    /// When this validator applied its most recent ledger entries, by its
    /// own clock: what a signer measures a batch's issue time against.
    /// Local, not replicated; lost on restart.
    applied_at: Arc<Mutex<std::collections::VecDeque<(u64, u64)>>>,
    /// The snapshot the peer service verified before handing it to
    /// openraft, kept for openraft's install so the whole ledger is not
    /// replayed twice (see [`StateMachineStore::install_snapshot_bytes`]).
    prepared: Arc<Mutex<Option<Prepared>>>,
}

/// A verified snapshot waiting for openraft's install: its meta, its
/// checksum (the trailing SHA3-256 of its content) and what verifying made.
struct Prepared {
    meta: SnapshotMeta,
    checksum: [u8; 32],
    verified: VerifiedSnapshot,
}

/// Most ledger entries whose local apply time is remembered.
pub const APPLIED_TIMES_MAX: usize = 65_536;

impl std::fmt::Debug for StateMachineStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMachineStore")
            .field("genesis", &self.genesis)
            .field("snapshot_bytes_max", &self.snapshot_bytes_max)
            .finish_non_exhaustive()
    }
}

fn synced() -> WriteOptions {
    let mut wo = WriteOptions::default();
    wo.set_sync(true);
    wo
}

/// Writes to the state machine's column families, committed atomically.
/// Only the state machine itself commits one (apply and snapshot install), so
/// every state change goes through the Raft log.
pub struct StateBatch<'a> {
    store: &'a StateMachineStore,
    batch: WriteBatch,
}

impl std::fmt::Debug for StateBatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateBatch")
            .field("len", &self.batch.len())
            .finish()
    }
}

impl<'a> StateBatch<'a> {
    fn new(store: &'a StateMachineStore) -> Self {
        StateBatch {
            store,
            batch: WriteBatch::default(),
        }
    }

    fn put(&mut self, cf_name: &'static str, k: &[u8], v: &[u8]) -> Result<(), StoreError> {
        let h = cf_handle(&self.store.db, cf_name)?;
        self.batch.put_cf(h, k, v);
        Ok(())
    }

    /// Stores a ledger entry under its index.
    pub fn put_ledger_entry(&mut self, entry: &LedgerEntry) -> Result<(), StoreError> {
        self.put(cf::LEDGER, &index_key(entry.index), &entry.encode())
    }

    /// Records the ledger head.
    pub fn put_ledger_head(&mut self, head: &LedgerHead) -> Result<(), StoreError> {
        self.put(cf::SM_META, key::LEDGER_HEAD, &head.to_bytes())
    }

    /// Records the last applied log id.
    pub fn put_applied(&mut self, applied: &Option<LogId>) -> Result<(), StoreError> {
        self.put(cf::SM_META, key::APPLIED, &to_json(applied))
    }

    /// Records the last applied membership.
    pub fn put_membership(&mut self, membership: &StoredMembership) -> Result<(), StoreError> {
        self.put(cf::SM_META, key::MEMBERSHIP, &to_json(membership))
    }

    /// Marks `nonce` redeemed by the ledger entry at `ledger_index`.
    pub fn put_redeemed_nonce(
        &mut self,
        nonce: &[u8],
        ledger_index: u64,
    ) -> Result<(), StoreError> {
        check_reserved_key("nonce", nonce)?;
        self.put(cf::NONCES, nonce, &ledger_index.to_be_bytes())
    }

    /// Records that idempotency key `idem` produced the decision `rec`.
    pub fn put_idempotency(
        &mut self,
        idem: &[u8],
        rec: &IdempotencyRecord,
    ) -> Result<(), StoreError> {
        check_reserved_key("idempotency key", idem)?;
        self.put(cf::IDEMPOTENCY, idem, &rec.to_bytes())
    }

    /// Records the state digest after the ledger entry at `index`.
    pub fn put_state_digest(&mut self, index: u64, digest: &Digest) -> Result<(), StoreError> {
        self.put(cf::STATE, &index_key(index), &digest.0)
    }

    /// Persists what `apply` made of one command, and nothing else: the
    /// entry, the nonce it redeemed, the idempotency keys it resolved and
    /// the state digest after it.
    pub fn put_effects(&mut self, effects: &Effects) -> Result<(), StoreError> {
        if let Some((nonce, index)) = &effects.redeemed {
            self.put_redeemed_nonce(nonce, *index)?;
        }
        for (key, record) in &effects.idempotency {
            self.put_idempotency(key, record)?;
        }
        self.put_ledger_entry(&effects.entry)?;
        self.put_state_digest(effects.entry.index, &effects.state_digest)
    }

    fn commit(self) -> Result<(), StoreError> {
        self.store
            .db
            .write_opt(self.batch, &synced())
            .map_err(rocks("write batch", cf::SM_META))
    }
}

fn check_reserved_key(what: &'static str, k: &[u8]) -> Result<(), StoreError> {
    let max = super::snapshot::RESERVED_KEY_BYTES_MAX;
    if k.is_empty() || k.len() > max {
        return Err(StoreError::Limit {
            what,
            value: k.len() as u64,
            limit_name: "reserved_key_bytes_max (and non-empty)",
            limit: max as u64,
        });
    }
    Ok(())
}

impl StateMachineStore {
    /// Wraps an opened database. On first open records `genesis_digest`; on
    /// later opens refuses a different one.
    pub fn open(db: Arc<DB>, genesis_digest: Digest) -> Result<Self, StoreError> {
        for name in [cf::SM_META, cf::LEDGER, cf::SNAPSHOT]
            .into_iter()
            .chain(RESERVED_CFS)
        {
            cf_handle(&db, name)?;
        }
        let meta = cf_handle(&db, cf::SM_META)?;
        match db
            .get_pinned_cf(meta, key::GENESIS)
            .map_err(rocks("get", cf::SM_META))?
        {
            Some(stored) => {
                let stored: [u8; 32] =
                    stored
                        .as_ref()
                        .try_into()
                        .map_err(|_| StoreError::Corrupt {
                            cf: cf::SM_META,
                            key: key_label(key::GENESIS),
                            reason: format!("{} bytes, want 32", stored.len()),
                        })?;
                if stored != genesis_digest.0 {
                    return Err(StoreError::GenesisMismatch {
                        stored: Digest(stored),
                        given: genesis_digest,
                    });
                }
            }
            None => db
                .put_cf_opt(meta, key::GENESIS, genesis_digest.0, &synced())
                .map_err(rocks("put", cf::SM_META))?,
        }
        Ok(StateMachineStore {
            db,
            genesis: genesis_digest,
            snapshot_bytes_max: SNAPSHOT_BYTES_MAX_DEFAULT,
            snapshot_lock: Arc::new(Mutex::new(())),
            state: StateHandle::default(),
            applied_at: Arc::default(),
            prepared: Arc::default(),
        })
    }

    /// Rebuilds the replicated state from the stored ledger, with `amend`
    /// (the tally over seal 0) or without amendments, by running every
    /// entry through `apply` again: the same function that appended it.
    /// Then `apply` goes on from there.
    pub fn load_state(&self, amend: Option<AmendState>) -> Result<(), StoreError> {
        let state = self.replay_stored(State::new(self.genesis, amend))?;
        self.state.set(state);
        Ok(())
    }

    /// Replays the stored ledger into `state`, reading the stored records
    /// (apply disregards those made at or after the entry it replays).
    fn replay_stored(&self, mut state: State) -> Result<State, StoreError> {
        let snap = self.db.snapshot();
        let (_, ledger) = self.read_chain(&snap, true)?;
        drop(snap);
        for entry in &ledger {
            state.replay(self, entry).map_err(|e| StoreError::Corrupt {
                cf: cf::LEDGER,
                key: format!("index {}", entry.index),
                reason: e.to_string(),
            })?;
        }
        Ok(state)
    }

    /// The replicated state (shared with the gate, the voter and the API).
    pub fn amendments(&self) -> &StateHandle {
        &self.state
    }

    /// The state digest after the ledger entry at `index`, as this node
    /// computed it when it applied that entry.
    pub fn state_digest_at(&self, index: u64) -> Result<Option<Digest>, StoreError> {
        match self.get_in(None, cf::STATE, &index_key(index))? {
            None => Ok(None),
            Some(v) => {
                let d: [u8; 32] = v.as_slice().try_into().map_err(|_| StoreError::Corrupt {
                    cf: cf::STATE,
                    key: format!("index {index}"),
                    reason: format!("{} bytes, want 32", v.len()),
                })?;
                Ok(Some(Digest(d)))
            }
        }
    }

    /// Sets `snapshot_bytes_max`: larger snapshots are neither built nor
    /// installed.
    pub fn with_snapshot_bytes_max(mut self, bytes: usize) -> Self {
        self.snapshot_bytes_max = bytes;
        self
    }

    /// The genesis digest entry 1 links to.
    pub fn genesis_digest(&self) -> Digest {
        self.genesis
    }

    /// The bound on snapshot size in bytes.
    pub fn snapshot_bytes_max(&self) -> usize {
        self.snapshot_bytes_max
    }

    // ---- reads -------------------------------------------------------------

    fn get_in(
        &self,
        snap: Option<&DbSnapshot<'_>>,
        cf_name: &'static str,
        k: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let h = cf_handle(&self.db, cf_name)?;
        match snap {
            Some(s) => s.get_cf(h, k),
            None => self.db.get_cf(h, k),
        }
        .map_err(rocks("get", cf_name))
    }

    fn head_in(&self, snap: Option<&DbSnapshot<'_>>) -> Result<LedgerHead, StoreError> {
        match self.get_in(snap, cf::SM_META, key::LEDGER_HEAD)? {
            None => Ok(LedgerHead::genesis(self.genesis)),
            Some(bytes) => LedgerHead::from_bytes(&bytes).map_err(|e| StoreError::Corrupt {
                cf: cf::SM_META,
                key: key_label(key::LEDGER_HEAD),
                reason: e.to_string(),
            }),
        }
    }

    fn applied_in(&self, snap: Option<&DbSnapshot<'_>>) -> Result<Option<LogId>, StoreError> {
        match self.get_in(snap, cf::SM_META, key::APPLIED)? {
            None => Ok(None),
            Some(bytes) => from_json(cf::SM_META, key::APPLIED, &bytes),
        }
    }

    fn membership_in(&self, snap: Option<&DbSnapshot<'_>>) -> Result<StoredMembership, StoreError> {
        match self.get_in(snap, cf::SM_META, key::MEMBERSHIP)? {
            None => Ok(StoredMembership::default()),
            Some(bytes) => from_json(cf::SM_META, key::MEMBERSHIP, &bytes),
        }
    }

    /// The ledger head (index 0 and the genesis digest when empty).
    pub fn ledger_head(&self) -> Result<LedgerHead, StoreError> {
        self.head_in(None)
    }

    /// Last applied Raft log id.
    pub fn last_applied(&self) -> Result<Option<LogId>, StoreError> {
        self.applied_in(None)
    }

    /// Last applied membership.
    pub fn last_membership(&self) -> Result<StoredMembership, StoreError> {
        self.membership_in(None)
    }

    /// The hash stored with ledger entry `index`, read without re-hashing
    /// the entry (the detectors re-verify the stored chain on their own
    /// schedule): for comparisons on a hot path.
    pub fn stored_entry_hash(&self, index: u64) -> Result<Option<Digest>, StoreError> {
        let h = cf_handle(&self.db, cf::LEDGER)?;
        let Some(v) = self
            .db
            .get_pinned_cf(h, index_key(index))
            .map_err(rocks("get", cf::LEDGER))?
        else {
            return Ok(None);
        };
        // The hash is the encoding's last field.
        let Some(at) = v.len().checked_sub(Digest::LEN) else {
            return Err(StoreError::Corrupt {
                cf: cf::LEDGER,
                key: format!("#{index}"),
                reason: format!("{} bytes, shorter than a hash", v.len()),
            });
        };
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&v[at..]);
        Ok(Some(Digest(hash)))
    }

    /// The ledger entry at `index`, checked against its own hash and key.
    pub fn ledger_entry(&self, index: u64) -> Result<Option<LedgerEntry>, StoreError> {
        Ok(self.ledger_range(index, index, 1)?.into_iter().next())
    }

    /// Ledger entries `from..=to_inclusive`, at most `max_entries` of them
    /// (and at most [`LEDGER_RANGE_ENTRIES_MAX`]), read from one consistent
    /// view. The range also ends before an entry whose stored bytes would
    /// take the total past [`LEDGER_RANGE_BYTES_MAX`], checked before that
    /// entry is copied or decoded; the first entry is always returned (its
    /// own bound, `LEDGER_PAYLOAD_BYTES_MAX`, holds it), so a caller that
    /// asks again from the last index + 1 always makes progress. Each entry
    /// is checked after reading: it decodes, sits under its own index,
    /// re-hashes to its stored hash and links to its predecessor in the
    /// range.
    pub fn ledger_range(
        &self,
        from: u64,
        to_inclusive: u64,
        max_entries: usize,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let limit = max_entries.min(LEDGER_RANGE_ENTRIES_MAX);
        let mut out: Vec<LedgerEntry> = Vec::new();
        if from > to_inclusive || limit == 0 {
            return Ok(out);
        }
        let h = cf_handle(&self.db, cf::LEDGER)?;
        let snap = self.db.snapshot();
        // The raw iterator lends each value in place: its length is known
        // before anything is copied.
        let mut iter = snap.raw_iterator_cf(h);
        iter.seek(index_key(from));
        let mut bytes = 0usize;
        while out.len() < limit {
            let (Some(k), Some(v)) = (iter.key(), iter.value()) else {
                iter.status().map_err(rocks("iterate", cf::LEDGER))?;
                break;
            };
            let index = parse_index_key(cf::LEDGER, k)?;
            if index > to_inclusive {
                break;
            }
            bytes = bytes.saturating_add(v.len());
            if !out.is_empty() && bytes > LEDGER_RANGE_BYTES_MAX {
                break;
            }
            let entry = LedgerEntry::decode(v).map_err(|e| ChainError::Undecodable {
                index,
                reason: e.to_string(),
            })?;
            if entry.index != index {
                return Err(ChainError::KeyMismatch {
                    index,
                    found: entry.index,
                }
                .into());
            }
            let computed = entry.recompute_hash();
            if computed != entry.hash {
                return Err(ChainError::HashMismatch {
                    index,
                    expected: computed,
                    found: entry.hash,
                }
                .into());
            }
            if let Some(prev) = out.last() {
                if prev.index.checked_add(1) != Some(index) {
                    return Err(ChainError::IndexGap {
                        expected: prev.index.saturating_add(1),
                        found: index,
                    }
                    .into());
                }
                if entry.prev_hash != prev.hash {
                    return Err(ChainError::PrevHashMismatch {
                        index,
                        expected: prev.hash,
                        found: entry.prev_hash,
                    }
                    .into());
                }
            }
            out.push(entry);
            iter.next();
        }
        Ok(out)
    }

    /// Re-reads every stored ledger entry, re-hashes it, checks the chain
    /// from genesis and that the recorded head equals the recomputed head.
    /// The error names the first bad index.
    pub fn verify_integrity(&self) -> Result<LedgerHead, ChainError> {
        let snap = self.db.snapshot();
        let (verifier, _) = self.read_chain(&snap, false)?;
        let recorded = self
            .head_in(Some(&snap))
            .map_err(|e| ChainError::Unreadable {
                index: verifier.next_index(),
                reason: e.to_string(),
            })?;
        verifier.check_head(&recorded)
    }

    /// Walks the stored ledger in `snap` through a [`ChainVerifier`],
    /// optionally collecting the entries.
    fn read_chain(
        &self,
        snap: &DbSnapshot<'_>,
        collect: bool,
    ) -> Result<(ChainVerifier, Vec<LedgerEntry>), ChainError> {
        let mut verifier = ChainVerifier::new(self.genesis);
        let mut entries = Vec::new();
        let h = cf_handle(&self.db, cf::LEDGER).map_err(|e| ChainError::Unreadable {
            index: 1,
            reason: e.to_string(),
        })?;
        for item in snap.iterator_cf(h, IteratorMode::Start) {
            let expected = verifier.next_index();
            let (k, v) = item.map_err(|e| ChainError::Unreadable {
                index: expected,
                reason: e.to_string(),
            })?;
            let index = parse_index_key(cf::LEDGER, &k).map_err(|e| ChainError::Undecodable {
                index: expected,
                reason: e.to_string(),
            })?;
            if index != expected {
                return Err(ChainError::IndexGap {
                    expected,
                    found: index,
                });
            }
            let entry = LedgerEntry::decode(&v).map_err(|e| ChainError::Undecodable {
                index,
                reason: e.to_string(),
            })?;
            if entry.index != index {
                return Err(ChainError::KeyMismatch {
                    index,
                    found: entry.index,
                });
            }
            verifier.push(&entry)?;
            if collect {
                entries.push(entry);
            }
        }
        Ok((verifier, entries))
    }

    /// Test hook (fault-injection builds only): flips one stored byte of
    /// ledger entry `index` in place, under the hash, as a failing disk or
    /// an intruder would; the chain no longer verifies at `index`.
    #[cfg(feature = "fault-injection")]
    pub fn flip_stored_byte(&self, index: u64) -> Result<(), StoreError> {
        let h = cf_handle(&self.db, cf::LEDGER)?;
        let k = index_key(index);
        let mut v = self
            .db
            .get_cf(h, k)
            .map_err(rocks("get", cf::LEDGER))?
            .ok_or_else(|| StoreError::Corrupt {
                cf: cf::LEDGER,
                key: index.to_string(),
                reason: "no such entry to flip".into(),
            })?;
        // Past the tag, index, kind and payload length: the payload's first
        // byte (or prev_hash's, for an empty payload).
        let at = crate::ledger::LEDGER_ENTRY_TAG.len() + "senatus//v1".len() + 1 + 8 + 1 + 4;
        let at = at.min(v.len() - 33);
        v[at] ^= 0x01;
        self.db
            .put_cf_opt(h, k, &v, &synced())
            .map_err(rocks("put", cf::LEDGER))
    }

    /// Ledger index of the entry that redeemed `nonce`, if it was redeemed.
    pub fn nonce_redemption(&self, nonce: &[u8]) -> Result<Option<u64>, StoreError> {
        check_reserved_key("nonce", nonce)?;
        match self.get_in(None, cf::NONCES, nonce)? {
            None => Ok(None),
            Some(v) => parse_index_key(cf::NONCES, &v).map(Some),
        }
    }

    /// The decision idempotency key `idem` produced, if any.
    pub fn idempotency_result(&self, idem: &[u8]) -> Result<Option<IdempotencyRecord>, StoreError> {
        check_reserved_key("idempotency key", idem)?;
        match self.get_in(None, cf::IDEMPOTENCY, idem)? {
            None => Ok(None),
            Some(v) => {
                IdempotencyRecord::from_bytes(&v)
                    .map(Some)
                    .ok_or_else(|| StoreError::Corrupt {
                        cf: cf::IDEMPOTENCY,
                        key: key_label(idem),
                        reason: format!(
                            "value is {} bytes, expected {}",
                            v.len(),
                            IdempotencyRecord::LEN
                        ),
                    })
            }
        }
    }

    // ---- apply -------------------------------------------------------------

    /// Applies committed Raft entries in one atomic, synced write and returns
    /// one response per entry. Each command goes through the replicated
    /// core's `apply`; this persists its effects and nothing else.
    pub fn apply_entries<I>(&self, entries: I) -> Result<Vec<CommandResponse>, StoreError>
    where
        I: IntoIterator<Item = RaftEntry>,
    {
        if !self.state.is_loaded() {
            self.load_state(None)?;
        }
        // Check what was written against what apply holds: they are one
        // state, or the store changed under it.
        let stored = self.ledger_head()?;
        let held = self.state.head().unwrap_or(stored);
        if held != stored {
            return Err(StoreError::Corrupt {
                cf: cf::SM_META,
                key: key_label(key::LEDGER_HEAD),
                reason: format!("stored head is {stored}, the replicated state is at {held}"),
            });
        }
        let mut batch = StateBatch::new(self);
        let mut overlay = Overlay::new(self);
        let mut responses = Vec::new();
        let mut last_applied = None;
        let mut membership = None;
        let mut head = stored;
        let mut appended = Vec::new();
        for entry in entries {
            last_applied = Some(entry.log_id);
            let response = match entry.payload {
                EntryPayload::Blank => CommandResponse::NoCommand,
                EntryPayload::Membership(m) => {
                    membership = Some(StoredMembership::new(Some(entry.log_id), m));
                    CommandResponse::NoCommand
                }
                EntryPayload::Normal(cmd) => match self.state.apply(&overlay, &cmd) {
                    Ok(effects) => {
                        batch.put_effects(&effects)?;
                        overlay.absorb(&effects);
                        head = effects.entry.head();
                        appended.push(head.index);
                        CommandResponse::Appended(head)
                    }
                    Err(ApplyError::Rejected(rejection)) => {
                        tracing::warn!(%rejection, "committed command refused on apply");
                        CommandResponse::Rejected(rejection)
                    }
                    Err(ApplyError::Records(e)) => return Err(e),
                },
            };
            responses.push(response);
        }
        if last_applied.is_none() {
            return Ok(responses);
        }
        batch.put_applied(&last_applied)?;
        batch.put_ledger_head(&head)?;
        if let Some(m) = &membership {
            batch.put_membership(m)?;
        }
        batch.commit()?;
        self.note_applied(&appended);
        Ok(responses)
    }

    fn note_applied(&self, indexes: &[u64]) {
        if indexes.is_empty() {
            return;
        }
        let now = crate::clock::now_ms();
        let mut times = crate::clock::lock(&self.applied_at);
        for &i in indexes {
            times.push_back((i, now));
        }
        while times.len() > APPLIED_TIMES_MAX {
            times.pop_front();
        }
    }

    /// When this validator applied ledger entry `index`, by its own clock,
    /// if it applied it since it started and it is among the last
    /// [`APPLIED_TIMES_MAX`].
    pub fn applied_at_ms(&self, index: u64) -> Option<u64> {
        let times = crate::clock::lock(&self.applied_at);
        times
            .binary_search_by_key(&index, |(i, _)| *i)
            .ok()
            .and_then(|at| times.get(at))
            .map(|(_, ms)| *ms)
    }

    // ---- snapshots ---------------------------------------------------------

    /// Serialises the whole state from one consistent view, verifying the
    /// ledger chain on the way, and records it as the current snapshot.
    pub fn build_snapshot_bytes(&self) -> Result<(SnapshotMeta, Vec<u8>), StoreError> {
        let snap = self.db.snapshot();
        let (verifier, ledger) = self.read_chain(&snap, true)?;
        let head = verifier.check_head(&self.head_in(Some(&snap))?)?;
        let last_applied = self.applied_in(Some(&snap))?;
        let last_membership = self.membership_in(Some(&snap))?;
        let mut reserved: [CfPairs; 3] = Default::default();
        for (name, pairs) in RESERVED_CFS.into_iter().zip(reserved.iter_mut()) {
            let h = cf_handle(&self.db, name)?;
            for item in snap.iterator_cf(h, IteratorMode::Start) {
                let (k, v) = item.map_err(rocks("iterate", name))?;
                pairs.push((k.into_vec(), v.into_vec()));
            }
        }
        drop(snap);
        let contents = SnapshotContents {
            genesis: self.genesis,
            last_applied,
            last_membership: last_membership.clone(),
            head,
            ledger,
            reserved,
        };
        let bytes = contents.encode();
        if bytes.len() > self.snapshot_bytes_max {
            return Err(SnapshotError::TooLarge {
                bytes: bytes.len() as u64,
                max: self.snapshot_bytes_max as u64,
            }
            .into());
        }
        let snapshot_id = match &last_applied {
            Some(id) => format!("{}-{}-ledger{}", id.leader_id, id.index, head.index),
            None => format!("none-ledger{}", head.index),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership,
            snapshot_id,
        };
        self.save_current_snapshot(&meta, &bytes, None)?;
        Ok((meta, bytes))
    }

    /// Verifies `bytes` completely, changing nothing (docs/PROTOCOL.md
    /// 21.3): size, format, checksum, genesis, the ledger chain from entry 1,
    /// the head, agreement with `meta`; the snapshot's ledger extends this
    /// validator's own committed ledger (the same entry hash at its head);
    /// and every record the snapshot carries is the one `apply` makes from
    /// that ledger. The peer service calls it before openraft sees a
    /// snapshot, so a bad one is a refusal, never a storage error.
    pub fn verify_snapshot_bytes(
        &self,
        meta: &SnapshotMeta,
        bytes: &[u8],
    ) -> Result<VerifiedSnapshot, StoreError> {
        let contents = SnapshotContents::decode(bytes, self.snapshot_bytes_max)?;
        let head = contents.verify(self.genesis)?;
        if contents.last_applied != meta.last_log_id {
            return Err(SnapshotError::MetaMismatch {
                field: "last applied log id",
                expected: format!("{:?}", meta.last_log_id),
                found: format!("{:?}", contents.last_applied),
            }
            .into());
        }
        if contents.last_membership != meta.last_membership {
            return Err(SnapshotError::MetaMismatch {
                field: "last membership",
                expected: meta.last_membership.to_string(),
                found: contents.last_membership.to_string(),
            }
            .into());
        }
        self.check_extends_committed(&contents.ledger, head)?;

        // The active policy and seal chain are derived from the ledger's
        // seals by `apply`; nothing writes the policy column family, so a
        // snapshot carrying anything there carries what no ledger made.
        if !contents.reserved[0].is_empty() {
            return Err(SnapshotError::RecordsMismatch {
                cf: cf::POLICY,
                sent: contents.reserved[0].len(),
                derived: 0,
                first_difference: 0,
            }
            .into());
        }
        // Everything derived from the ledger is derived here again, by the
        // same `apply` that made it, and must match what was sent: a
        // snapshot cannot carry records its own ledger did not make.
        let fresh = match self.state.with_state(State::fresh) {
            Some(fresh) => fresh,
            None => Ok(State::new(self.genesis, None)),
        };
        let mut state = fresh.map_err(|reason| StoreError::Corrupt {
            cf: cf::LEDGER,
            key: "replicated state".into(),
            reason,
        })?;
        let mut records = MemRecords::new();
        let mut derived = Vec::with_capacity(contents.ledger.len());
        for entry in &contents.ledger {
            let effects = match state.replay(&records, entry) {
                Ok(e) => e,
                Err(e) => return Err(SnapshotError::Derived(e.to_string()).into()),
            };
            records.absorb(&effects);
            derived.push(effects);
        }
        check_derived(&contents.reserved, &derived)?;
        Ok(VerifiedSnapshot {
            contents,
            head,
            state,
            derived,
        })
    }

    /// What this validator applied is committed: a snapshot's ledger must
    /// carry exactly that ledger as its prefix.
    fn check_extends_committed(
        &self,
        ledger: &[LedgerEntry],
        head: LedgerHead,
    ) -> Result<(), StoreError> {
        let local = self.ledger_head()?;
        if local.index == 0 {
            return Ok(());
        }
        let at = usize::try_from(local.index - 1).unwrap_or(usize::MAX);
        match ledger.get(at) {
            None => Err(SnapshotError::BehindCommitted {
                snapshot: head.index,
                committed: local.index,
            }
            .into()),
            Some(e) if e.hash != local.hash => Err(SnapshotError::ForksCommitted {
                index: local.index,
                committed: local.hash,
                sent: e.hash,
            }
            .into()),
            Some(_) => Ok(()),
        }
    }

    /// Verifies `bytes` ([`Self::verify_snapshot_bytes`]) and keeps the
    /// result for openraft's install of exactly these bytes, which then
    /// re-checks only the checksum and that the snapshot still extends the
    /// committed ledger. A later call replaces what an earlier one kept.
    pub fn prepare_snapshot(&self, meta: &SnapshotMeta, bytes: &[u8]) -> Result<(), StoreError> {
        let verified = self.verify_snapshot_bytes(meta, bytes)?;
        let mut checksum = [0u8; 32];
        // Decoding checked it: the bytes end in their content's SHA3-256.
        checksum.copy_from_slice(&bytes[bytes.len() - Digest::LEN..]);
        *crate::clock::lock(&self.prepared) = Some(Prepared {
            meta: meta.clone(),
            checksum,
            verified,
        });
        Ok(())
    }

    /// Drops what [`Self::prepare_snapshot`] kept (openraft did not install
    /// it, for instance because it is older than what is applied here).
    pub fn forget_prepared_snapshot(&self) {
        crate::clock::lock(&self.prepared).take();
    }

    /// The prepared verification of exactly `meta` and `bytes`, if there is
    /// one and it still holds; taken either way.
    fn take_prepared(
        &self,
        meta: &SnapshotMeta,
        bytes: &[u8],
    ) -> Result<Option<VerifiedSnapshot>, StoreError> {
        let Some(p) = crate::clock::lock(&self.prepared).take() else {
            return Ok(None);
        };
        let Some(split) = bytes.len().checked_sub(Digest::LEN) else {
            return Ok(None);
        };
        let (content, trailer) = bytes.split_at(split);
        if p.meta != *meta || p.checksum != trailer || sha3(content).0 != p.checksum {
            return Ok(None);
        }
        // Applies may have landed since it was verified.
        self.check_extends_committed(&p.verified.contents.ledger, p.verified.head)?;
        Ok(Some(p.verified))
    }

    /// Verifies `bytes` completely ([`Self::verify_snapshot_bytes`], or
    /// the verification [`Self::prepare_snapshot`] kept for these exact
    /// bytes) and only then replaces the whole state with it in one atomic
    /// write. On any error the state is untouched.
    pub fn install_snapshot_bytes(
        &self,
        meta: &SnapshotMeta,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let verified = match self.take_prepared(meta, bytes)? {
            Some(v) => v,
            None => self.verify_snapshot_bytes(meta, bytes)?,
        };
        let VerifiedSnapshot {
            contents,
            head,
            state,
            derived,
        } = verified;
        let mut batch = StateBatch::new(self);
        // Delete the current contents of every replaced column family; puts
        // later in the same batch win over these deletes.
        for name in [cf::LEDGER, cf::STATE].into_iter().chain(RESERVED_CFS) {
            let h = cf_handle(&self.db, name)?;
            for item in self.db.iterator_cf(h, IteratorMode::Start) {
                let (k, _) = item.map_err(rocks("iterate", name))?;
                batch.batch.delete_cf(h, k);
            }
        }
        for effects in &derived {
            batch.put_effects(effects)?;
        }
        batch.put_ledger_head(&head)?;
        batch.put_applied(&contents.last_applied)?;
        batch.put_membership(&contents.last_membership)?;
        self.save_current_snapshot(meta, bytes, Some(batch))?;
        self.state.set(state);
        tracing::info!(
            snapshot = %meta.snapshot_id,
            ledger_index = head.index,
            ledger_hash = %head.hash,
            bytes = bytes.len(),
            "installed snapshot"
        );
        Ok(())
    }

    /// Records `meta`/`bytes` as the current snapshot, in the same atomic
    /// write as `state` when given. A built snapshot older than the recorded
    /// one (an install overtook the build) is not recorded.
    fn save_current_snapshot(
        &self,
        meta: &SnapshotMeta,
        bytes: &[u8],
        state: Option<StateBatch<'_>>,
    ) -> Result<(), StoreError> {
        // The guarded value is `()`, so a poisoned lock protects nothing
        // inconsistent: recover it.
        let _guard = self
            .snapshot_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut batch = match state {
            Some(b) => b,
            None => {
                let overtaken = self
                    .current_snapshot()?
                    .is_some_and(|(current, _)| current.last_log_id > meta.last_log_id);
                if overtaken {
                    return Ok(());
                }
                StateBatch::new(self)
            }
        };
        batch.put(cf::SNAPSHOT, key::SNAPSHOT_META, &to_json(meta))?;
        batch.put(cf::SNAPSHOT, key::SNAPSHOT_DATA, bytes)?;
        batch.commit()
    }

    /// The current snapshot (the last built or installed), surviving restart.
    pub fn current_snapshot(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StoreError> {
        let snap = self.db.snapshot();
        let Some(meta) = self.get_in(Some(&snap), cf::SNAPSHOT, key::SNAPSHOT_META)? else {
            return Ok(None);
        };
        let meta: SnapshotMeta = from_json(cf::SNAPSHOT, key::SNAPSHOT_META, &meta)?;
        let Some(data) = self.get_in(Some(&snap), cf::SNAPSHOT, key::SNAPSHOT_DATA)? else {
            return Err(StoreError::Corrupt {
                cf: cf::SNAPSHOT,
                key: key_label(key::SNAPSHOT_DATA),
                reason: "snapshot meta is recorded but its data is missing".into(),
            });
        };
        Ok(Some((meta, data)))
    }
}

/// A snapshot that verified, ready to install.
#[derive(Debug)]
pub struct VerifiedSnapshot {
    contents: SnapshotContents,
    head: LedgerHead,
    state: State,
    derived: Vec<Effects>,
}

impl VerifiedSnapshot {
    /// The snapshot's ledger head.
    pub fn head(&self) -> LedgerHead {
        self.head
    }
}

/// Compares a snapshot's nonce and idempotency records with those its own
/// ledger derives: they must be exactly the same pairs.
fn check_derived(reserved: &[CfPairs; 3], derived: &[Effects]) -> Result<(), SnapshotError> {
    let mut nonces: CfPairs = Vec::new();
    let mut idempotency: CfPairs = Vec::new();
    for e in derived {
        if let Some((nonce, index)) = &e.redeemed {
            nonces.push((nonce.clone(), index.to_be_bytes().to_vec()));
        }
        for (key, record) in &e.idempotency {
            idempotency.push((key.clone(), record.to_bytes().to_vec()));
        }
    }
    nonces.sort();
    idempotency.sort();
    for (name, sent, derived) in [
        (cf::NONCES, &reserved[1], &nonces),
        (cf::IDEMPOTENCY, &reserved[2], &idempotency),
    ] {
        if sent != derived {
            let first = sent
                .iter()
                .zip(derived.iter())
                .position(|(a, b)| a != b)
                .unwrap_or(sent.len().min(derived.len()));
            return Err(SnapshotError::RecordsMismatch {
                cf: name,
                sent: sent.len(),
                derived: derived.len(),
                first_difference: first,
            });
        }
    }
    Ok(())
}

/// The stored records, as `apply` reads them.
impl Records for StateMachineStore {
    type Error = StoreError;

    fn redeemed(&self, nonce: &[u8]) -> Result<Option<u64>, StoreError> {
        self.nonce_redemption(nonce)
    }

    fn idempotency(&self, key: &[u8]) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.idempotency_result(key)
    }

    fn entry_hash(&self, index: u64) -> Result<Option<Digest>, StoreError> {
        Ok(self.ledger_entry(index)?.map(|e| e.hash))
    }
}

fn read_err(e: &StoreError) -> StorageError {
    StorageIOError::read_state_machine(e).into()
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (meta, bytes) = self
            .build_snapshot_bytes()
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = StateMachineStore;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let snap = self.db.snapshot();
        let applied = self.applied_in(Some(&snap)).map_err(|e| read_err(&e))?;
        let membership = self.membership_in(Some(&snap)).map_err(|e| read_err(&e))?;
        Ok((applied, membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResponse>, StorageError>
    where
        I: IntoIterator<Item = RaftEntry> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let entries: Vec<RaftEntry> = entries.into_iter().collect();
        let last = entries.last().map(|e| e.log_id);
        self.apply_entries(entries).map_err(|e| match last {
            Some(id) => StorageIOError::apply(id, &e).into(),
            None => StorageIOError::write_state_machine(&e).into(),
        })
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        self.install_snapshot_bytes(meta, &bytes).map_err(|e| {
            tracing::error!(error = %e, snapshot = %meta, "snapshot refused");
            StorageIOError::write_snapshot(Some(meta.signature()), &e).into()
        })
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let current = self
            .current_snapshot()
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(current.map(|(meta, bytes)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}
