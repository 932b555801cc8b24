//! The senatus benchmark (not a test): a live local five-validator testnet
//! driven at several concurrencies, broker verifications on one core,
//! amendment passage and breach latency, and the same closed-loop load
//! generator against a five-member etcd cluster, as a markdown report.
//!
//! A crate and binary (`senatus-bench`) of its own, so the validator
//! binary `senatus` links neither this harness nor etcd's definitions;
//! `senatus bench` runs `senatus-bench` from the same directory. The
//! testnets are started through `senatus-testnet`, which drives the
//! `senatus` executable like an operator would.
//!
//! | module | what |
//! |---|---|
//! | [`gate_bench`] | the whole run and its report (`senatus-bench`) |
//! | [`bench`] | series of load levels, the etcd baseline, tables, machine description |
//! | [`load`] | the closed-loop load generator |
//! | [`etcd`] | a local etcd cluster and etcd's `KV/Put` client |

#![deny(missing_docs)]

pub mod bench;
pub mod etcd;
pub mod gate_bench;
pub mod load;
