//! Local multi-process senatus testnets: start five `senatus node`
//! processes from one ceremony directory, inject faults (crash, stop,
//! restart), drive writes and read ledgers back, and stop exactly the
//! processes that were started.
//!
//! The crate talks to nodes only through the `senatus` executable and the
//! public gRPC API (TLS 1.3 pinned to the ceremony's `genesis.json`, as any
//! client), so it tests the binary an operator runs. It does not
//! depend on `senatus-node` (that binary embeds [`cli`] as
//! `senatus testnet`).
//!
//! Layout of a testnet directory (`genesis init` output plus two files):
//!
//! | path | what |
//! |---|---|
//! | `genesis.json`, `node-<id>/node.toml`, … | the ceremony |
//! | `node-<id>/node.log` | that node's stdout and stderr, appended per start |
//! | `testnet.json` | [`Manifest`]: pid, config and addresses of each started node |

#![deny(missing_docs)]

pub mod cli;
mod manifest;
mod nodes;
mod ops;
mod process;
mod rpc;
mod testnet;

pub use manifest::{MANIFEST_FILE, MANIFEST_VERSION, Manifest, ManifestNode};
pub use nodes::{NodeSpec, RaftOverrides, discover, patch_raft};
pub use ops::{
    DownOutcome, DownReport, NodeView, down, kill_node, start_node, status, wait_healthy,
};
pub use process::{ProcState, proc_state};
pub use rpc::Head;
pub use testnet::{Testnet, UpOptions, now_ms};
