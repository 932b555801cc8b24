//! The replicated core of senatus: what every validator does with a
//! committed command, as one pure function.
//!
//! [`State::apply`](state::State::apply) takes the state and a command and
//! returns the [`Effects`](state::Effects) to persist or the
//! [`CommandRejection`](command::CommandRejection) every validator reaches.
//! The ledger model and chain verifier ([`ledger`]), the amendment tally and
//! seal chain ([`amend`]), certified subjects ([`certified`]) and the nonce
//! and idempotency records ([`records`]) are its parts. No I/O, no clock, no
//! async runtime: the node persists the effects, and replay, snapshot
//! install and the simulation run the same function.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod amend;
pub mod certified;
pub mod command;
pub mod ledger;
pub mod records;
pub mod state;

pub use command::{Command, CommandRejection, CommandResponse};
pub use ledger::{EntryKind, LedgerEntry, LedgerHead};
pub use records::{IdempotencyRecord, MemRecords, Overlay, Records};
pub use state::{ApplyError, Effects, ReplayError, State};
