//! senatus quorum: the pure cores of the publish gate and of governance.
//!
//! Decision evaluation, governance tokens and their Merkle batches, FROST
//! signing sessions and nonce pools, and offline token verification for
//! brokers. No tokio, tonic or RocksDB: time, randomness and messages are
//! inputs; decisions are outputs (that is what makes replay byte-identical).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod amend;
pub mod auth;
pub mod batch;
pub mod broker;
pub mod certificate;
pub mod detect;
pub mod evaluate;
pub mod merkle;
pub mod outcome;
pub mod params;
pub mod presentation;
pub mod quota;
pub mod request;
pub mod signing;
pub mod token;

pub use outcome::Outcome;
pub use params::{ParamsError, canonical_params, params_digest, parse_params};
