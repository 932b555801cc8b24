//! The Raft log in RocksDB: openraft storage-v2 [`RaftLogStorage`] and
//! [`RaftLogReader`].
//!
//! Durability rule: a write that openraft relies on surviving a crash (vote,
//! appended entries, truncation, purge) is a synced RocksDB write, finished
//! before `save_vote` returns or before the append callback fires.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader, StorageIOError};
use rocksdb::{DB, Direction, IteratorMode, WriteBatch, WriteOptions};

use super::db::{StoreError, cf_handle, from_json, parse_index_key, rocks};
use super::keys::{cf, index_key, key, to_json};
use crate::raft_types::{LogId, RaftEntry, StorageError, TypeConfig, Vote};

/// Raft log storage over the shared RocksDB. Cloning is cheap; clones share
/// the database (the clone handed out as log reader only reads).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
    marks: Arc<Marks>,
}

/// What this validator has itself persisted about Raft, readable without a
/// round through openraft: the term of its vote and the highest index it
/// knows committed. The peer guard (`crate::peer_guard`) measures what a
/// peer sends against them.
#[derive(Debug, Default)]
struct Marks {
    term: AtomicU64,
    /// Highest committed index + 1 (0: nothing known committed).
    committed_next: AtomicU64,
    /// The ids of the newest entries appended since this process started,
    /// at consecutive indexes: what the peer guard compares a leader's
    /// claims with on every AppendEntries, without reading and decoding a
    /// whole entry.
    recent: std::sync::Mutex<std::collections::VecDeque<LogId>>,
}

/// Most recent log ids kept in memory for the peer guard.
pub const RECENT_LOG_IDS_MAX: usize = 65_536;

impl std::fmt::Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").finish_non_exhaustive()
    }
}

fn synced() -> WriteOptions {
    let mut wo = WriteOptions::default();
    wo.set_sync(true);
    wo
}

impl LogStore {
    /// Wraps an opened database, checking that the log column families exist.
    pub fn open(db: Arc<DB>) -> Result<Self, StoreError> {
        cf_handle(&db, cf::LOGS)?;
        cf_handle(&db, cf::LOG_META)?;
        let store = LogStore {
            db,
            marks: Arc::default(),
        };
        let vote: Option<Vote> = store.get_meta(key::VOTE)?;
        store.note_term(vote.map_or(0, |v| v.leader_id().term));
        let committed: Option<Option<LogId>> = store.get_meta(key::COMMITTED)?;
        store.note_committed(committed.flatten());
        Ok(store)
    }

    fn note_term(&self, term: u64) {
        self.marks.term.fetch_max(term, Ordering::AcqRel);
    }

    fn note_committed(&self, committed: Option<LogId>) {
        if let Some(c) = committed {
            self.marks
                .committed_next
                .fetch_max(c.index.saturating_add(1), Ordering::AcqRel);
        }
    }

    /// The term of this validator's persisted vote (never decreases).
    pub fn vote_term(&self) -> u64 {
        self.marks.term.load(Ordering::Acquire)
    }

    /// The highest log index this validator knows committed, if any.
    pub fn committed_index(&self) -> Option<u64> {
        self.marks
            .committed_next
            .load(Ordering::Acquire)
            .checked_sub(1)
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<LogId>> {
        self.marks
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The id of the log entry at `index`, if the log holds it (purged
    /// indexes and indexes past the end do not): from memory for recent
    /// entries, else read from the log.
    pub fn log_id_at(&self, index: u64) -> Result<Option<LogId>, StoreError> {
        {
            let recent = self.recent();
            if let Some(first) = recent.front()
                && let Some(at) = index.checked_sub(first.index)
                && let Some(id) = usize::try_from(at).ok().and_then(|at| recent.get(at))
            {
                return Ok(Some(*id));
            }
        }
        let h = cf_handle(&self.db, cf::LOGS)?;
        let key = index_key(index);
        match self
            .db
            .get_pinned_cf(h, key)
            .map_err(rocks("get", cf::LOGS))?
        {
            None => Ok(None),
            Some(v) => Ok(Some(decode_entry(&key, &v)?.log_id)),
        }
    }

    fn get_meta<T: serde::de::DeserializeOwned>(
        &self,
        k: &'static [u8],
    ) -> Result<Option<T>, StoreError> {
        let h = cf_handle(&self.db, cf::LOG_META)?;
        match self
            .db
            .get_pinned_cf(h, k)
            .map_err(rocks("get", cf::LOG_META))?
        {
            None => Ok(None),
            Some(bytes) => from_json(cf::LOG_META, k, &bytes).map(Some),
        }
    }

    fn put_meta_synced(&self, k: &'static [u8], value: Vec<u8>) -> Result<(), StoreError> {
        let h = cf_handle(&self.db, cf::LOG_META)?;
        self.db
            .put_cf_opt(h, k, value, &synced())
            .map_err(rocks("put", cf::LOG_META))
    }

    /// Last purged log id.
    pub fn last_purged(&self) -> Result<Option<LogId>, StoreError> {
        self.get_meta(key::LAST_PURGED)
    }

    /// Log id of the last entry present in the log, if any.
    pub fn last_entry_id(&self) -> Result<Option<LogId>, StoreError> {
        let h = cf_handle(&self.db, cf::LOGS)?;
        let Some(item) = self.db.iterator_cf(h, IteratorMode::End).next() else {
            return Ok(None);
        };
        let (k, v) = item.map_err(rocks("iterate", cf::LOGS))?;
        let entry = decode_entry(&k, &v)?;
        Ok(Some(entry.log_id))
    }

    /// The entries present with `start <= index < end` (`end` `None`: no
    /// upper bound), in index order. Purged indexes are simply absent;
    /// openraft checks the count where it needs a complete range.
    pub fn read_range(&self, start: u64, end: Option<u64>) -> Result<Vec<RaftEntry>, StoreError> {
        let h = cf_handle(&self.db, cf::LOGS)?;
        let start_key = index_key(start);
        let mut out = Vec::new();
        let iter = self
            .db
            .iterator_cf(h, IteratorMode::From(&start_key, Direction::Forward));
        for item in iter {
            let (k, v) = item.map_err(rocks("iterate", cf::LOGS))?;
            let index = parse_index_key(cf::LOGS, &k)?;
            if end.is_some_and(|end| index >= end) {
                break;
            }
            out.push(decode_entry(&k, &v)?);
        }
        Ok(out)
    }

    fn append_entries<I>(&self, entries: I) -> Result<(), StoreError>
    where
        I: IntoIterator<Item = RaftEntry>,
    {
        let h = cf_handle(&self.db, cf::LOGS)?;
        let mut batch = WriteBatch::default();
        let mut ids = Vec::new();
        for entry in entries {
            batch.put_cf(h, index_key(entry.log_id.index), to_json(&entry));
            ids.push(entry.log_id);
        }
        self.db
            .write_opt(batch, &synced())
            .map_err(rocks("append", cf::LOGS))?;
        let mut recent = self.recent();
        for id in ids {
            // Only a run of consecutive indexes is kept: anything else
            // starts the run again.
            if recent
                .back()
                .is_some_and(|b| b.index.checked_add(1) != Some(id.index))
            {
                recent.clear();
            }
            recent.push_back(id);
            if recent.len() > RECENT_LOG_IDS_MAX {
                recent.pop_front();
            }
        }
        Ok(())
    }

    fn truncate_since(&self, index: u64) -> Result<(), StoreError> {
        // Forget first: a failed write must not leave a cached id for an
        // entry that may be gone.
        {
            let mut recent = self.recent();
            while recent.back().is_some_and(|b| b.index >= index) {
                recent.pop_back();
            }
        }
        let h = cf_handle(&self.db, cf::LOGS)?;
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(h, index_key(index), index_key(u64::MAX));
        batch.delete_cf(h, index_key(u64::MAX));
        self.db
            .write_opt(batch, &synced())
            .map_err(rocks("truncate", cf::LOGS))
    }

    fn purge_upto(&self, log_id: &LogId) -> Result<(), StoreError> {
        {
            let mut recent = self.recent();
            while recent.front().is_some_and(|f| f.index <= log_id.index) {
                recent.pop_front();
            }
        }
        let logs = cf_handle(&self.db, cf::LOGS)?;
        let meta = cf_handle(&self.db, cf::LOG_META)?;
        let mut batch = WriteBatch::default();
        // Record the purge point first in the same atomic batch, so the log
        // state never shows a hole without the matching last_purged.
        batch.put_cf(meta, key::LAST_PURGED, to_json(log_id));
        batch.delete_range_cf(logs, index_key(0), index_key(log_id.index));
        batch.delete_cf(logs, index_key(log_id.index));
        self.db
            .write_opt(batch, &synced())
            .map_err(rocks("purge", cf::LOGS))
    }
}

fn decode_entry(k: &[u8], v: &[u8]) -> Result<RaftEntry, StoreError> {
    let index = parse_index_key(cf::LOGS, k)?;
    let entry: RaftEntry = from_json(cf::LOGS, k, v)?;
    if entry.log_id.index != index {
        return Err(StoreError::Corrupt {
            cf: cf::LOGS,
            key: format!("#{index}"),
            reason: format!("entry carries log index {}", entry.log_id.index),
        });
    }
    Ok(entry)
}

fn range_to_start_end<RB: RangeBounds<u64>>(range: &RB) -> (u64, Option<u64>) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.checked_add(1),
        Bound::Excluded(&e) => Some(e),
        Bound::Unbounded => None,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<RaftEntry>, StorageError> {
        let (start, end) = range_to_start_end(&range);
        self.read_range(start, end)
            .map_err(|e| StorageIOError::read_logs(&e).into())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let purged = self
            .last_purged()
            .map_err(|e| StorageIOError::read_logs(&e))?;
        let last = self
            .last_entry_id()
            .map_err(|e| StorageIOError::read_logs(&e))?;
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last.or(purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        // Synced: a vote must survive a crash before it is acted upon.
        self.put_meta_synced(key::VOTE, to_json(vote))
            .map_err(|e| StorageIOError::write_vote(&e))?;
        self.note_term(vote.leader_id().term);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.get_meta(key::VOTE)
            .map_err(|e| StorageIOError::read_vote(&e).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not synced: committed is an optimisation for restart; losing the
        // newest value only means re-learning it from the leader.
        let h = cf_handle(&self.db, cf::LOG_META).map_err(|e| StorageIOError::write(&e))?;
        self.db
            .put_cf(h, key::COMMITTED, to_json(&committed))
            .map_err(rocks("put", cf::LOG_META))
            .map_err(|e| StorageIOError::write(&e))?;
        self.note_committed(committed);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let committed: Option<Option<LogId>> = self
            .get_meta(key::COMMITTED)
            .map_err(|e| StorageIOError::read(&e))?;
        Ok(committed.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = RaftEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        match self.append_entries(entries) {
            Ok(()) => {
                // The batch was a synced write: the entries are on disk.
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(&e).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.truncate_since(log_id.index)
            .map_err(|e| StorageIOError::write_log_entry(log_id, &e).into())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.purge_upto(&log_id)
            .map_err(|e| StorageIOError::write_log_entry(log_id, &e).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_convert_to_half_open_bounds() {
        assert_eq!(range_to_start_end(&(3..7)), (3, Some(7)));
        assert_eq!(range_to_start_end(&(3..=7)), (3, Some(8)));
        assert_eq!(range_to_start_end(&(..)), (0, None));
        assert_eq!(range_to_start_end(&(5..)), (5, None));
        assert_eq!(range_to_start_end(&(0..=u64::MAX)), (0, None));
    }
}
