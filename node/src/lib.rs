//! senatus validator node: Raft replication over RocksDB storage, gRPC
//! services, the decision gate, breach detection and the `senatus` CLI.

pub mod amend;
pub mod breach;
pub mod caller;
pub mod certs;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod fault;
pub mod gate;
pub mod gate_error;
/// The ledger model and chain verifier (from the replicated core).
pub use senatus_replica::ledger;
pub mod metrics;
pub mod network;
pub mod peer_guard;
pub mod raft_types;
pub mod runtime;
pub mod service;
pub mod store;
pub mod witness;
pub mod write_error;
