//! openraft type configuration and the application command carried in the
//! Raft log.
//!
//! A [`Command`] is a ledger write request. Every validator turns a committed
//! command into a [`LedgerEntry`](crate::ledger::LedgerEntry) on apply and
//! computes its hash itself; the [`CommandResponse`] reports the entry it
//! produced.

use std::io::Cursor;

pub use senatus_replica::command::{Command, CommandRejection, CommandResponse};

openraft::declare_raft_types!(
    /// Type configuration of the senatus Raft group.
    pub TypeConfig:
        D = Command,
        R = CommandResponse,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// Raft node id (the validator id as an integer).
pub type RaftNodeId = u64;
/// A Raft log entry of this configuration.
pub type RaftEntry = openraft::Entry<TypeConfig>;
/// openraft's storage error for this configuration.
pub type StorageError = openraft::StorageError<RaftNodeId>;
/// A Raft log id of this configuration.
pub type LogId = openraft::LogId<RaftNodeId>;
/// A Raft vote of this configuration.
pub type Vote = openraft::Vote<RaftNodeId>;
/// Snapshot metadata of this configuration.
pub type SnapshotMeta = openraft::SnapshotMeta<RaftNodeId, openraft::BasicNode>;
/// Last applied membership of this configuration.
pub type StoredMembership = openraft::StoredMembership<RaftNodeId, openraft::BasicNode>;
