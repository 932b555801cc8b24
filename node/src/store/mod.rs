//! Durable storage: one RocksDB holding the Raft log ([`LogStore`]) and the
//! replicated state machine ([`StateMachineStore`]) in separate column
//! families, sharing one `Arc<DB>`.
//!
//! # Layout
//!
//! | column family | key | value |
//! |---|---|---|
//! | `logs` | Raft log index, u64 BE | JSON `openraft::Entry<TypeConfig>` |
//! | `log_meta` | `vote`, `committed`, `last_purged` | JSON `Vote` / `Option<LogId>` / `LogId` |
//! | `sm_meta` | `genesis` | 32-byte genesis digest the database belongs to |
//! | | `applied` | JSON `Option<LogId>`: last applied Raft log id |
//! | | `membership` | JSON `StoredMembership`: last applied membership |
//! | | `ledger_head` | [`LedgerHead::to_bytes`](crate::ledger::LedgerHead::to_bytes) |
//! | `ledger` | ledger index, u64 BE | [`LedgerEntry::encode`](crate::ledger::LedgerEntry::encode) |
//! | `policy` | `active`, `seal` | canonical bytes of the active policy layer / newest seal |
//! | `nonces` | token nonce bytes | u64 BE ledger index of the redemption |
//! | `idempotency` | idempotency key bytes | [`IdempotencyRecord::to_bytes`](senatus_replica::IdempotencyRecord::to_bytes) of the decision it produced |
//! | `state` | ledger index, u64 BE | 32-byte state digest after that entry ([`senatus_replica::State::digest`]) |
//! | `snapshot` | `meta`, `data` | JSON `SnapshotMeta` / snapshot bytes ([`snapshot`]) |
//!
//! The state machine is durable by itself: every applied batch is one synced
//! `WriteBatch` (ledger entries, head and applied log id together), so a
//! restart resumes exactly where apply stopped.

pub mod db;
pub mod keys;
pub mod log_store;
pub mod snapshot;
pub mod state;
pub mod state_machine;

use std::path::Path;

use senatus_genesis::codec::Digest;

pub use db::{StoreError, open_db};
pub use keys::{cf, key};
pub use log_store::LogStore;
pub use snapshot::{SNAPSHOT_BYTES_MAX_DEFAULT, SnapshotError};
pub use state::StateHandle;
pub use state_machine::{StateBatch, StateMachineStore};

/// Opens the database at `path` and returns its log store and state machine,
/// sharing one `Arc<DB>`. `genesis_digest` is the digest entry 1 of the
/// ledger links to; a database created for another genesis is refused.
pub fn open(
    path: &Path,
    genesis_digest: Digest,
) -> Result<(LogStore, StateMachineStore), StoreError> {
    let db = open_db(path)?;
    let log = LogStore::open(db.clone())?;
    let sm = StateMachineStore::open(db, genesis_digest)?;
    Ok((log, sm))
}
