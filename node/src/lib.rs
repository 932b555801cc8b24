//! senatus validator node: Raft replication over RocksDB storage, gRPC
//! services, the decision gate, breach detection and the `senatus` CLI.

pub mod amend;
pub mod breach;
pub mod cli_amend;
pub mod cli_api;
pub mod cli_breach;
pub mod cli_gate;
pub mod cli_genesis;
pub mod cli_ledger;
pub mod cli_replay;
pub mod gate;
pub mod gate_error;
pub mod ledger;
pub mod metrics;
pub mod network;
pub mod raft_types;
pub mod runtime;
pub mod service;
pub mod store;
pub mod write_error;
