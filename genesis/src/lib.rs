//! senatus genesis: the sealed policy layer, its canonical encoding and
//! digest, the genesis document and ceremony, the genesis lock, and seals.
//!
//! Pure: no network, no clocks, no global randomness. Time and randomness are
//! inputs; the only I/O is reading and writing files the caller names.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod ceremony;
pub mod codec;
pub mod config;
pub mod document;
pub mod ed25519;
pub mod ids;
pub mod keys;
pub mod lock;
pub mod policy;
pub mod registry;
pub mod seal;
pub mod tls;

pub use codec::{Digest, Encoder, sha3};
pub use document::{Genesis, GenesisBody, Key32, Sig64, Validator};
pub use ids::{Epoch, LedgerIndex, NodeId, PolicyVersion};
pub use lock::GenesisLock;
pub use policy::PolicyLayer;
pub use seal::{Seal, SignedSeal};
