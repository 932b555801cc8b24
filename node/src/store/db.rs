//! Opening the database and the storage error: RocksDB failures, corrupt
//! values and refused snapshots, each naming the column family and key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType, Options};
use senatus_genesis::codec::Digest;

use super::keys::{cf, key_label};
use super::snapshot::SnapshotError;
use crate::ledger::ChainError;

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

/// The handle of column family `name`.
pub fn cf_handle<'a>(db: &'a DB, name: &'static str) -> Result<&'a ColumnFamily, StoreError> {
    db.cf_handle(name)
        .ok_or(StoreError::MissingColumnFamily(name))
}

/// Inverse of [`index_key`].
pub fn parse_index_key(cf: &'static str, key: &[u8]) -> Result<u64, StoreError> {
    let arr: [u8; 8] = key.try_into().map_err(|_| StoreError::Corrupt {
        cf,
        key: key_label(key),
        reason: format!("index key is {} bytes, want 8", key.len()),
    })?;
    Ok(u64::from_be_bytes(arr))
}

/// Maps a rocksdb error of `op` on column family `cf`.
pub fn rocks(op: &'static str, cf: &'static str) -> impl FnOnce(rocksdb::Error) -> StoreError {
    move |source| StoreError::Rocks { op, cf, source }
}

/// Decodes a JSON value read from `cf`/`key`.
pub fn from_json<T: serde::de::DeserializeOwned>(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::keys::index_key;

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
