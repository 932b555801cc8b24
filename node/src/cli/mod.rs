//! The `senatus` command line, one module per command group: operators
//! (`genesis`, `ledger`, `status`), agents (`decide`), brokers (`broker`),
//! proposers (`amend`), auditors (`replay`, `certificates`). Every command
//! that talks to a validator goes through [`api`]: TLS pinned to genesis.

pub mod amend;
pub mod api;
pub mod breach;
pub mod gate;
pub mod genesis;
pub mod identity;
pub mod ledger;
pub mod replay;
