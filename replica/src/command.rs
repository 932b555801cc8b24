//! The application command carried in the Raft log and what applying it
//! returns.
//!
//! A [`Command`] is a ledger write request. Every validator turns a committed
//! command into a [`LedgerEntry`](crate::ledger::LedgerEntry) on apply and
//! computes its hash itself; the [`CommandResponse`] reports the entry it
//! produced, or the [`CommandRejection`] every validator reached.

use serde::{Deserialize, Serialize};

use crate::ledger::{EntryKind, LEDGER_PAYLOAD_BYTES_MAX, LedgerHead};

/// A ledger write request: append one entry of `kind` carrying `payload`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Command {
    /// Kind of the ledger entry to append.
    pub kind: EntryKind,
    /// Kind-specific canonical bytes (base64 in serde formats).
    #[serde(with = "base64_bytes")]
    pub payload: Vec<u8>,
}

impl Command {
    /// A command appending an entry of `kind` with `payload`.
    pub fn new(kind: EntryKind, payload: Vec<u8>) -> Self {
        Command { kind, payload }
    }

    /// Checks the bounds every validator enforces on apply; proposers should
    /// call it before submitting so that a refused command never reaches the
    /// log.
    pub fn validate(&self) -> Result<(), CommandRejection> {
        if self.payload.len() > LEDGER_PAYLOAD_BYTES_MAX {
            return Err(CommandRejection::PayloadTooLarge {
                bytes: self.payload.len() as u64,
                max: LEDGER_PAYLOAD_BYTES_MAX as u64,
            });
        }
        Ok(())
    }
}

/// Result of applying one Raft log entry to the state machine.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum CommandResponse {
    /// The command appended this ledger entry.
    Appended(LedgerHead),
    /// The log entry carried no command (blank or membership); the ledger is
    /// unchanged.
    NoCommand,
    /// Every validator refused the command identically on apply; the ledger
    /// is unchanged.
    Rejected(CommandRejection),
}

impl CommandResponse {
    /// The appended entry's index and hash, if any.
    pub fn appended(&self) -> Option<LedgerHead> {
        match self {
            CommandResponse::Appended(h) => Some(*h),
            CommandResponse::NoCommand | CommandResponse::Rejected(_) => None,
        }
    }
}

/// Why a committed command produced no ledger entry. Deterministic: every
/// validator reaches the same rejection from the same log.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, thiserror::Error)]
pub enum CommandRejection {
    /// The payload exceeds [`LEDGER_PAYLOAD_BYTES_MAX`].
    #[error("command payload is {bytes} bytes, above ledger_payload_bytes_max {max}")]
    PayloadTooLarge {
        /// Payload length.
        bytes: u64,
        /// The bound.
        max: u64,
    },
    /// A decision entry whose payload is not a decision batch.
    #[error("decision payload is not a decision batch")]
    MalformedDecision,
    /// A redemption whose payload is not a redemption.
    #[error("redemption payload is malformed")]
    MalformedRedemption,
    /// A redemption whose presentation or broker does not check out
    /// against the registry sealed at its index.
    #[error("redemption refused: {0}")]
    RedemptionRefused(String),
    /// The token's nonce was already redeemed.
    #[error("token nonce {nonce} was already redeemed at ledger index {first_index}")]
    NonceReplayed {
        /// The nonce, hex.
        nonce: String,
        /// The ledger index of the first (only valid) redemption.
        first_index: u64,
    },
    /// A decision batch names a seal other than the one active at its
    /// index (a reseal committed in between).
    #[error(
        "decision batch is for policy version {batch_version}, but version {active_version} (seal {active_seal}) is active at its index"
    )]
    StalePolicy {
        /// The batch's version.
        batch_version: u64,
        /// The active version.
        active_version: u64,
        /// The active seal digest, hex.
        active_seal: String,
    },
    /// A proposal that is not admissible, or a vote the tally refuses
    /// (`crate::amend::AmendRejection`, as text).
    #[error("{0}")]
    Amendment(String),
    /// A certificate already on the ledger (another validator appended it
    /// first).
    #[error("certificate: certificate {id} is already on the ledger at index {first_index}")]
    CertificateOnLedger {
        /// The certificate id, hex.
        id: String,
        /// The ledger index of its Certificate entry.
        first_index: u64,
    },
}

/// Serde adapter: `Vec<u8>` as a base64 (standard, padded) string, so that
/// JSON log entries stay compact.
mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_json_is_compact_and_strict() {
        let c = Command::new(EntryKind::Decision, vec![0, 1, 2, 255]);
        let json = serde_json::to_string(&c).expect("serializes");
        assert_eq!(json, r#"{"kind":2,"payload":"AAEC/w=="}"#);
        assert_eq!(serde_json::from_str::<Command>(&json).ok(), Some(c));
        assert!(serde_json::from_str::<Command>(r#"{"kind":0,"payload":""}"#).is_err());
        assert!(serde_json::from_str::<Command>(r#"{"kind":1,"payload":"!!"}"#).is_err());
    }

    #[test]
    fn oversized_payload_is_rejected_by_validate() {
        let c = Command::new(EntryKind::Record, vec![0; LEDGER_PAYLOAD_BYTES_MAX + 1]);
        let err = c.validate().expect_err("must be refused");
        assert!(
            err.to_string().contains("above ledger_payload_bytes_max"),
            "{err}"
        );
        assert!(
            Command::new(EntryKind::Record, vec![0; 10])
                .validate()
                .is_ok()
        );
    }
}
