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
//! | `idempotency` | idempotency key bytes | `LedgerHead` bytes of the entry it produced |
//! | `snapshot` | `meta`, `data` | JSON `SnapshotMeta` / snapshot bytes ([`snapshot`]) |
//!
//! The state machine is durable by itself: every applied batch is one synced
//! `WriteBatch` (ledger entries, head and applied log id together), so a
//! restart resumes exactly where apply stopped.

pub mod log_store;
pub mod snapshot;
pub mod state_machine;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType, Options};
use senatus_genesis::codec::Digest;

use crate::ledger::ChainError;

pub use log_store::LogStore;
pub use snapshot::{SNAPSHOT_BYTES_MAX_DEFAULT, SnapshotError};
pub use state_machine::{PendingApply, StateBatch, StateMachineStore};

/// Column family names.
pub mod cf {
    /// Raft log entries.
    pub const LOGS: &str = "logs";
    /// Raft vote, committed and last purged log ids.
    pub const LOG_META: &str = "log_meta";
    /// State machine metadata: genesis, applied log id, membership, ledger head.
    pub const SM_META: &str = "sm_meta";
    /// Ledger entries.
    pub const LEDGER: &str = "ledger";
    /// Active policy layer and newest seal.
    pub const POLICY: &str = "policy";
    /// Redeemed token nonces.
    pub const NONCES: &str = "nonces";
    /// Idempotency keys of applied commands.
    pub const IDEMPOTENCY: &str = "idempotency";
    /// The current snapshot (meta and bytes).
    pub const SNAPSHOT: &str = "snapshot";

    /// Every column family this version opens.
    pub const ALL: [&str; 8] = [
        LOGS,
        LOG_META,
        SM_META,
        LEDGER,
        POLICY,
        NONCES,
        IDEMPOTENCY,
        SNAPSHOT,
    ];
}

/// Fixed keys inside the metadata column families.
pub mod key {
    /// `log_meta`: the last saved vote.
    pub const VOTE: &[u8] = b"vote";
    /// `log_meta`: the last saved committed log id.
    pub const COMMITTED: &[u8] = b"committed";
    /// `log_meta`: the last purged log id.
    pub const LAST_PURGED: &[u8] = b"last_purged";
    /// `sm_meta`: the genesis digest the database belongs to.
    pub const GENESIS: &[u8] = b"genesis";
    /// `sm_meta`: last applied log id.
    pub const APPLIED: &[u8] = b"applied";
    /// `sm_meta`: last applied membership.
    pub const MEMBERSHIP: &[u8] = b"membership";
    /// `sm_meta`: ledger head.
    pub const LEDGER_HEAD: &[u8] = b"ledger_head";
    /// `policy`: canonical bytes of the active policy layer.
    pub const ACTIVE_POLICY: &[u8] = b"active";
    /// `policy`: canonical bytes of the newest seal.
    pub const SEAL: &[u8] = b"seal";
    /// `snapshot`: JSON snapshot meta.
    pub const SNAPSHOT_META: &[u8] = b"meta";
    /// `snapshot`: snapshot bytes.
    pub const SNAPSHOT_DATA: &[u8] = b"data";
}

/// A storage fault, naming the column family, key and what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// RocksDB refused to open the database.
    #[error("rocksdb: cannot open {path}: {source}")]
    Open {
        /// Database directory.
        path: PathBuf,
        /// RocksDB's error.
        source: rocksdb::Error,
    },
    /// A RocksDB read or write failed.
    #[error("rocksdb: {op} on column family {cf:?} failed: {source}")]
    Rocks {
        /// What was attempted.
        op: &'static str,
        /// Column family.
        cf: &'static str,
        /// RocksDB's error.
        source: rocksdb::Error,
    },
    /// The database was opened without a column family this code needs.
    #[error("column family {0:?} is missing from the opened database")]
    MissingColumnFamily(&'static str),
    /// A stored value (or key) does not decode.
    #[error("{cf}/{key}: stored value does not decode: {reason}")]
    Corrupt {
        /// Column family.
        cf: &'static str,
        /// The key, printed readably.
        key: String,
        /// What was wrong.
        reason: String,
    },
    /// The database was created for another genesis.
    #[error("database belongs to genesis {stored}, but was opened with genesis {given}")]
    GenesisMismatch {
        /// Digest recorded in the database.
        stored: Digest,
        /// Digest passed to `open`.
        given: Digest,
    },
    /// A bound on a request or value was exceeded.
    #[error("{what} is {value}, above {limit_name} {limit}")]
    Limit {
        /// What was measured.
        what: &'static str,
        /// The measured value.
        value: u64,
        /// Name of the limit.
        limit_name: &'static str,
        /// The limit.
        limit: u64,
    },
    /// The ledger chain read back from the store is broken.
    #[error("ledger chain broken: {0}")]
    Chain(#[from] ChainError),
    /// A snapshot was refused.
    #[error("snapshot refused: {0}")]
    Snapshot(#[from] SnapshotError),
}

/// Opens (creating if missing) the RocksDB at `path` with every column
/// family of [`cf::ALL`], without compression (the rocksdb crate is built
/// without codecs).
pub fn open_db(path: &Path) -> Result<Arc<DB>, StoreError> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_compression_type(DBCompressionType::None);

    // Open column families a newer version may have added, too: RocksDB
    // refuses to open a database without naming all of them.
    let mut names: Vec<String> = cf::ALL.iter().map(|s| s.to_string()).collect();
    if let Ok(existing) = DB::list_cf(&opts, path) {
        for name in existing {
            if name != rocksdb::DEFAULT_COLUMN_FAMILY_NAME && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    let descriptors = names.into_iter().map(|name| {
        let mut cf_opts = Options::default();
        cf_opts.set_compression_type(DBCompressionType::None);
        ColumnFamilyDescriptor::new(name, cf_opts)
    });
    let db =
        DB::open_cf_descriptors(&opts, path, descriptors).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(Arc::new(db))
}

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

/// The handle of column family `name`.
pub(crate) fn cf_handle<'a>(
    db: &'a DB,
    name: &'static str,
) -> Result<&'a ColumnFamily, StoreError> {
    db.cf_handle(name)
        .ok_or(StoreError::MissingColumnFamily(name))
}

/// Big-endian key of a log or ledger index (sorts numerically).
pub(crate) fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// Inverse of [`index_key`].
pub(crate) fn parse_index_key(cf: &'static str, key: &[u8]) -> Result<u64, StoreError> {
    let arr: [u8; 8] = key.try_into().map_err(|_| StoreError::Corrupt {
        cf,
        key: key_label(key),
        reason: format!("index key is {} bytes, want 8", key.len()),
    })?;
    Ok(u64::from_be_bytes(arr))
}

/// A key printed readably: ASCII as text, anything else as hex.
pub(crate) fn key_label(key: &[u8]) -> String {
    if !key.is_empty() && key.iter().all(|b| b.is_ascii_graphic()) {
        String::from_utf8_lossy(key).into_owned()
    } else if key.len() == 8 {
        let mut a = [0u8; 8];
        a.copy_from_slice(key);
        format!("#{}", u64::from_be_bytes(a))
    } else {
        format!("0x{}", hex::encode(key))
    }
}

/// Maps a rocksdb error of `op` on column family `cf`.
pub(crate) fn rocks(
    op: &'static str,
    cf: &'static str,
) -> impl FnOnce(rocksdb::Error) -> StoreError {
    move |source| StoreError::Rocks { op, cf, source }
}

/// Decodes a JSON value read from `cf`/`key`.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    cf: &'static str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        cf,
        key: key_label(key),
        reason: e.to_string(),
    })
}

/// Encodes a value as JSON. The types stored this way (openraft ids, votes,
/// memberships, entries) always serialize; a failure is a broken invariant.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("openraft storage types serialize to JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_sort_numerically_and_parse_strictly() {
        assert!(index_key(255) < index_key(256));
        assert!(index_key(1) < index_key(u64::MAX));
        assert_eq!(parse_index_key(cf::LOGS, &index_key(42)).ok(), Some(42));
        let err = parse_index_key(cf::LOGS, &[1, 2, 3]).expect_err("3 bytes is not a key");
        assert!(
            err.to_string().contains("index key is 3 bytes, want 8"),
            "{err}"
        );
    }

    #[test]
    fn key_labels_are_readable() {
        assert_eq!(key_label(b"vote"), "vote");
        assert_eq!(key_label(&index_key(7)), "#7");
        assert_eq!(key_label(&[0, 1]), "0x0001");
    }
}
