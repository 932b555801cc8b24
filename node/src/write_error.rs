//! Why a ledger write appended nothing (or may not have): one error type,
//! naming the node, the bound or the value at fault, turned into a
//! `Status` with its machine-readable reason (docs/PROTOCOL.md 20) only at
//! the service edge.

use senatus_genesis::Digest;
use senatus_proto::reason::{Reason, Reasoned, reason_of};
use tonic::Status;

use crate::raft_types::CommandRejection;

/// Why a write ([`Shared::write`](crate::cluster::Cluster::write), [`Shared::write_as_leader`](crate::cluster::Cluster::write_as_leader)) appended
/// nothing — or, for [`WriteError::NotCommitted`], may not have. Each
/// names the node, the bound or the value at fault; a [`Status`] is made
/// from it only at the service edge ([`Reasoned::to_status`]), carrying its
/// reason.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// Every validator refuses the command identically: its bounds before
    /// proposing, or its content on apply.
    #[error("{}{}", .0, rejected_suffix(.0))]
    Rejected(CommandRejection),
    /// The leader is not in this node's peer list (a broken invariant).
    #[error("leader {leader} has no address")]
    LeaderNotInPeers {
        /// The leader.
        leader: u64,
    },
    /// The leader's answer to a forwarded write, passed on unchanged (its
    /// code, message and reason).
    #[error("{}", .0.message())]
    Leader(Status),
    /// A forwarded write failed without a senatus answer (transport).
    #[error("{}", .status.message())]
    LeaderUnreachable {
        /// The leader.
        leader: u64,
        /// What the call returned.
        status: Status,
    },
    /// No leader was known within the wait.
    #[error("no leader known within {wait_ms} ms; the cluster may have lost its quorum")]
    NoLeader {
        /// The wait.
        wait_ms: u64,
    },
    /// This node leads but is locked down: it appends nothing but
    /// certificates, so its followers elect another.
    #[error(
        "node {node} is locked down by certificate {certificate} and leads no writes; not the leader"
    )]
    LockedLeader {
        /// This node.
        node: u64,
        /// The certificate locking it.
        certificate: Digest,
    },
    /// This node is not the leader.
    #[error("node {node} is not the leader (leader: {leader:?})")]
    NotLeader {
        /// This node.
        node: u64,
        /// The leader it knows.
        leader: Option<u64>,
    },
    /// This node stopped leading before the entry was appended.
    #[error("node {node} is no longer the leader (leader: {leader:?})")]
    NoLongerLeader {
        /// This node.
        node: u64,
        /// The new leader, if known.
        leader: Option<u64>,
    },
    /// The leader has not heard from a majority within the bound.
    #[error(
        "no quorum: leader {leader} last heard from a majority {} ago (limit {quorum_ack_max_ms} ms); nothing was written",
        .since_quorum_ack_ms.map_or("never".to_string(), |ms| format!("{ms} ms"))
    )]
    NoQuorum {
        /// This node (the leader).
        leader: u64,
        /// Since the last majority acknowledgement; `None` for never.
        since_quorum_ack_ms: Option<u64>,
        /// The bound.
        quorum_ack_max_ms: u64,
    },
    /// The entry was not committed within the bound; it may still commit.
    #[error(
        "not committed within {commit_timeout_ms} ms (quorum lost?); the entry may still commit if the quorum returns"
    )]
    NotCommitted {
        /// The bound.
        commit_timeout_ms: u64,
    },
    /// Raft refused the write otherwise.
    #[error("write failed: {0}")]
    Raft(String),
    /// The log entry produced no ledger entry (a broken invariant).
    #[error("write produced no ledger entry")]
    NoEntry,
}

impl Reasoned for WriteError {
    fn reason(&self) -> Option<Reason> {
        Some(match self {
            WriteError::Rejected(r) => rejection_reason(r),
            WriteError::LeaderNotInPeers { .. } | WriteError::NoEntry => Reason::InternalError,
            WriteError::Leader(s) => return Reason::of(s),
            WriteError::LeaderUnreachable { .. } => Reason::LeaderUnreachable,
            WriteError::NoLeader { .. } => Reason::NoLeader,
            WriteError::LockedLeader { .. }
            | WriteError::NotLeader { .. }
            | WriteError::NoLongerLeader { .. } => Reason::NotLeader,
            WriteError::NoQuorum { .. } => Reason::NoQuorum,
            WriteError::NotCommitted { .. } => Reason::CommitTimeout,
            WriteError::Raft(_) => Reason::WriteFailed,
        })
    }

    fn metadata(&self) -> Vec<(&'static str, String)> {
        let s = |v: &dyn std::fmt::Display| v.to_string();
        match self {
            WriteError::Rejected(r) => rejection_metadata(r),
            WriteError::LeaderNotInPeers { leader }
            | WriteError::LeaderUnreachable { leader, .. } => {
                vec![("leader", s(leader))]
            }
            WriteError::NoLeader { wait_ms } => vec![("waitMs", s(wait_ms))],
            WriteError::LockedLeader { node, certificate } => {
                vec![("node", s(node)), ("certificate", s(certificate))]
            }
            WriteError::NotLeader { node, leader }
            | WriteError::NoLongerLeader { node, leader } => {
                let mut m = vec![("node", s(node))];
                m.extend(leader.map(|l| ("leader", s(&l))));
                m
            }
            WriteError::NoQuorum {
                leader,
                since_quorum_ack_ms,
                quorum_ack_max_ms,
            } => {
                let mut m = vec![
                    ("leader", s(leader)),
                    ("quorumAckMaxMs", s(quorum_ack_max_ms)),
                ];
                m.extend(since_quorum_ack_ms.map(|ms| ("sinceQuorumAckMs", s(&ms))));
                m
            }
            WriteError::NotCommitted { commit_timeout_ms } => {
                vec![("commitTimeoutMs", s(commit_timeout_ms))]
            }
            WriteError::Leader(_) | WriteError::Raft(_) | WriteError::NoEntry => Vec::new(),
        }
    }

    fn carried(&self) -> Option<&Status> {
        match self {
            WriteError::Leader(s) | WriteError::LeaderUnreachable { status: s, .. } => Some(s),
            _ => None,
        }
    }
}

impl WriteError {
    /// A forwarded write's failure: the leader's answer if it gave one
    /// (it carries a reason), else the transport's.
    pub(crate) fn from_leader(leader: u64, status: Status) -> WriteError {
        if reason_of(&status).is_some() {
            WriteError::Leader(status)
        } else {
            WriteError::LeaderUnreachable { leader, status }
        }
    }
}

impl From<WriteError> for Status {
    fn from(e: WriteError) -> Status {
        e.to_status()
    }
}

/// A stale batch is decided again by the caller's retry: say so.
fn rejected_suffix(r: &CommandRejection) -> &'static str {
    match r {
        CommandRejection::StalePolicy { .. } => "; nothing was decided, retry",
        _ => "",
    }
}

/// The reason of a command every validator refused.
fn rejection_reason(r: &CommandRejection) -> Reason {
    match r {
        CommandRejection::PayloadTooLarge { .. } => Reason::PayloadTooLarge,
        CommandRejection::MalformedDecision
        | CommandRejection::MalformedRedemption
        | CommandRejection::RedemptionRefused(_) => Reason::EntryMalformed,
        CommandRejection::NonceReplayed { .. } => Reason::NonceRedeemed,
        CommandRejection::StalePolicy { .. } => Reason::StalePolicy,
        CommandRejection::Amendment(_) => Reason::AmendmentRefused,
        CommandRejection::CertificateOnLedger { .. } => Reason::CertificateOnLedger,
    }
}

fn rejection_metadata(r: &CommandRejection) -> Vec<(&'static str, String)> {
    match r {
        CommandRejection::PayloadTooLarge { bytes, max } => vec![
            ("payloadBytes", bytes.to_string()),
            ("payloadBytesMax", max.to_string()),
        ],
        CommandRejection::MalformedDecision => vec![("kind", "decision".into())],
        CommandRejection::MalformedRedemption | CommandRejection::RedemptionRefused(_) => {
            vec![("kind", "redemption".into())]
        }
        CommandRejection::NonceReplayed { nonce, first_index } => vec![
            ("nonce", nonce.clone()),
            ("firstIndex", first_index.to_string()),
        ],
        CommandRejection::StalePolicy {
            batch_version,
            active_version,
            active_seal,
        } => vec![
            ("batchVersion", batch_version.to_string()),
            ("activeVersion", active_version.to_string()),
            ("activeSeal", active_seal.clone()),
        ],
        CommandRejection::Amendment(_) => Vec::new(),
        CommandRejection::CertificateOnLedger { id, first_index } => vec![
            ("certificate", id.clone()),
            ("ledgerIndex", first_index.to_string()),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(e: WriteError) -> (tonic::Code, String, Option<Reason>) {
        let s = Status::from(e);
        (s.code(), s.message().to_string(), Reason::of(&s))
    }

    #[test]
    fn each_refused_command_has_its_code_reason_and_unchanged_words() {
        use tonic::Code;
        let replayed = CommandRejection::NonceReplayed {
            nonce: "ab".repeat(16),
            first_index: 7,
        };
        let (code, message, reason) = status_of(WriteError::Rejected(replayed.clone()));
        assert_eq!(code, Code::AlreadyExists);
        assert_eq!(message, replayed.to_string());
        assert_eq!(reason, Some(Reason::NonceRedeemed));

        let stale = CommandRejection::StalePolicy {
            batch_version: 1,
            active_version: 2,
            active_seal: "cd".repeat(32),
        };
        let (code, message, reason) = status_of(WriteError::Rejected(stale.clone()));
        assert_eq!(code, Code::Aborted);
        assert_eq!(message, format!("{stale}; nothing was decided, retry"));
        assert_eq!(reason, Some(Reason::StalePolicy));

        let on_ledger = CommandRejection::CertificateOnLedger {
            id: "ef".repeat(32),
            first_index: 9,
        };
        let (code, message, reason) = status_of(WriteError::Rejected(on_ledger));
        assert_eq!(code, Code::InvalidArgument);
        assert_eq!(
            message,
            format!(
                "certificate: certificate {} is already on the ledger at index 9",
                "ef".repeat(32)
            )
        );
        assert_eq!(reason, Some(Reason::CertificateOnLedger));

        for (r, want) in [
            (
                CommandRejection::PayloadTooLarge { bytes: 9, max: 8 },
                Reason::PayloadTooLarge,
            ),
            (CommandRejection::MalformedDecision, Reason::EntryMalformed),
            (
                CommandRejection::MalformedRedemption,
                Reason::EntryMalformed,
            ),
            (
                CommandRejection::Amendment("vote: bad".into()),
                Reason::AmendmentRefused,
            ),
        ] {
            let (code, message, reason) = status_of(WriteError::Rejected(r.clone()));
            assert_eq!(code, Code::InvalidArgument, "{r}");
            assert_eq!(message, r.to_string());
            assert_eq!(reason, Some(want), "{r}");
        }
    }

    #[test]
    fn a_leaders_answer_passes_unchanged_and_a_transport_failure_names_the_leader() {
        let answer = senatus_proto::reason::status(
            tonic::Code::Unavailable,
            "no quorum: leader 2 ...",
            Reason::NoQuorum,
            [("leader", "2".to_string())],
        );
        let e = WriteError::from_leader(2, answer.clone());
        assert!(matches!(e, WriteError::Leader(_)));
        assert_eq!(e.reason(), Some(Reason::NoQuorum));
        let s = Status::from(e);
        assert_eq!((s.code(), s.message()), (answer.code(), answer.message()));
        assert_eq!(reason_of(&s), reason_of(&answer));

        let e = WriteError::from_leader(3, Status::cancelled("operation was canceled"));
        assert_eq!(e.reason(), Some(Reason::LeaderUnreachable));
        let s = Status::from(e);
        assert_eq!(s.code(), tonic::Code::Cancelled);
        assert_eq!(s.message(), "operation was canceled");
        let r = reason_of(&s).expect("a reason");
        assert_eq!(r.known(), Some(Reason::LeaderUnreachable));
        assert_eq!(r.metadata.get("leader").map(String::as_str), Some("3"));
    }

    #[test]
    fn no_quorum_names_the_leader_and_the_bound_in_words_and_metadata() {
        let e = WriteError::NoQuorum {
            leader: 4,
            since_quorum_ack_ms: None,
            quorum_ack_max_ms: 1000,
        };
        assert_eq!(
            e.to_string(),
            "no quorum: leader 4 last heard from a majority never ago (limit 1000 ms); nothing was written"
        );
        let r = reason_of(&Status::from(e)).expect("reason");
        assert_eq!(r.known(), Some(Reason::NoQuorum));
        assert_eq!(r.metadata.get("leader").map(String::as_str), Some("4"));
        assert!(!r.metadata.contains_key("sinceQuorumAckMs"));
    }
}
