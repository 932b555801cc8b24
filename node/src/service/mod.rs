//! The gRPC services, the only place errors become a `tonic::Status`:
//! [`peer`] (Raft between validators, write forwarding, signing,
//! certificates) and [`api`] (the public `Senatus` API). This module holds
//! what both share.

use std::sync::Arc;
use std::time::Instant;

use openraft::ServerState;
use senatus_genesis::Digest;
use senatus_proto::v1 as pb;
use tonic::{Request, Response, Status};

pub use crate::cluster::{Cluster, WriteBounds};
use crate::ledger::{EntryKind, LedgerEntry};
use crate::network::{decode, encode};
use crate::raft_types::{Command, TypeConfig};
use crate::store::StoreError;
pub use crate::write_error::WriteError;
use senatus_proto::reason::{self, Reason};

pub mod api;
pub mod peer;

pub use crate::network::API_MESSAGE_BYTES_MAX;
/// Largest operator record payload (`INVALID_ARGUMENT` above it).
pub const RECORD_PAYLOAD_BYTES_MAX: usize = 64 * 1024;
/// Most ledger entries one `GetLedger` call returns. A reply also ends
/// early, at `store::state_machine::LEDGER_RANGE_BYTES_MAX` stored bytes
/// beyond its first entry (well inside the API's 16 MiB encoding limit);
/// clients page from the last index they got + 1.
pub const GET_LEDGER_ENTRIES_MAX: u32 = 1000;

/// What both services share: the cluster handle, the decision gate and
/// the breach state.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The cluster (Raft, state machine, write path).
    pub cluster: Cluster,
    /// The decision gate.
    pub gate: Arc<crate::gate::Gate>,
    /// Breach state: validated certificates, lockdown, fan-out.
    pub breach: Arc<crate::breach::Breach>,
}

impl std::ops::Deref for Shared {
    type Target = Cluster;

    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}

/// A refusal at the service edge: `message`, carrying `why` and the gRPC
/// code it travels with.
fn refusal(
    why: Reason,
    message: impl Into<String>,
    metadata: impl IntoIterator<Item = (&'static str, String)>,
) -> Status {
    reason::status(why.code(), message, why, metadata)
}

fn internal(what: &str, e: impl std::fmt::Display) -> Status {
    refusal(Reason::InternalError, format!("{what}: {e}"), [])
}

fn invalid(message: impl Into<String>, field: Option<&'static str>) -> Status {
    refusal(
        Reason::InvalidRequest,
        message,
        field.map(|f| ("field", f.to_string())),
    )
}

fn ledger_read_failed(e: impl std::fmt::Display) -> Status {
    refusal(
        Reason::StorageFailed,
        format!("ledger read failed: {e}"),
        [],
    )
}

fn amendments_disabled() -> Status {
    refusal(
        Reason::AmendmentsDisabled,
        "this node does not tally amendments",
        [],
    )
}

/// A record's bound, checked where it enters: the public API and a
/// follower's forward.
fn check_record(payload: &[u8]) -> Result<(), Status> {
    if payload.len() > RECORD_PAYLOAD_BYTES_MAX {
        return Err(refusal(
            Reason::PayloadTooLarge,
            format!(
                "record payload is {} bytes, above record_payload_bytes_max {RECORD_PAYLOAD_BYTES_MAX}",
                payload.len()
            ),
            [
                ("payloadBytes", payload.len().to_string()),
                ("payloadBytesMax", RECORD_PAYLOAD_BYTES_MAX.to_string()),
            ],
        ));
    }
    Ok(())
}

/// Refuses a proposal that cannot decode before it costs a Raft round;
/// admission itself is decided on apply, identically everywhere.
fn check_proposal(shared: &Shared, signed: &[u8]) -> Result<(), Status> {
    let max = shared
        .sm
        .amendments()
        .with(|s| s.layer_bytes_max())
        .ok_or_else(amendments_disabled)?;
    senatus_quorum::amend::SignedProposal::decode(signed, max)
        .map(|_| ())
        .map_err(|e| invalid(format!("proposal: {e}"), Some("signed_proposal")))
}
