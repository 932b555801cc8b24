//! Runs openraft's storage conformance suite against the RocksDB store, each
//! test in a fresh temporary directory.

use openraft::testing::{StoreBuilder, Suite};
use openraft::{StorageError, StorageIOError};
use senatus_genesis::codec::sha3;
use senatus_node::raft_types::TypeConfig;
use senatus_node::store::{self, LogStore, StateMachineStore};
use tempfile::TempDir;

struct RocksBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for RocksBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError<u64>> {
        let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(&e))?;
        let (log, sm) = store::open(dir.path(), sha3(b"store suite genesis"))
            .map_err(|e| StorageIOError::write(&e))?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite_passes() {
    if let Err(e) = Suite::test_all(RocksBuilder) {
        panic!("openraft storage suite failed: {e}");
    }
}
