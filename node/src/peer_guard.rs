//! What an authenticated validator may not make this one do, checked
//! before openraft sees its message (docs/PROTOCOL.md 21).
//!
//! Mutual TLS says who sent a Raft message; it does not make the sender
//! honest. openraft trusts its peers: it adopts any higher term, and its
//! snapshot receiver seeks wherever a chunk's offset says. So every Raft
//! message from a peer passes through here first:
//!
//! - **Terms** more than [`TERM_AHEAD_MAX`] above this validator's own, or
//!   above [`TERM_MAX`] at all, are refused, in requests and in replies: a
//!   persisted term near `u64::MAX` would make the next election overflow
//!   on every restart.
//! - **Committed means committed.** An AppendEntries whose `prev_log_id`
//!   or any entry sits at or below this validator's committed index with
//!   another log id than the local one is refused: no peer can make it
//!   drop or replace a committed entry.
//! - **Indexes** of an AppendEntries follow its `prev_log_id` one by one,
//!   so no arithmetic on them can overflow.
//! - **Snapshots** are collected here ([`SnapshotInbox`]): chunks must be
//!   contiguous from offset 0 and the total stays within the snapshot
//!   bound; the whole snapshot is verified before openraft installs it.
//!
//! A refusal names the sender and counts against it (`/metrics`,
//! `senatus_peer_refusals_total`). These lies arrive over TLS only, signed
//! by nobody, so nobody else could check them: they are logged and counted,
//! never turned into a shutdown certificate.

use std::sync::Mutex;

use crate::raft_types::{LogId, Vote};
use crate::store::LogStore;

/// This validator's guard state: its own log (for the committed index,
/// the vote's term and local log ids) and the snapshot being received.
#[derive(Debug)]
pub struct Guard {
    /// This validator's Raft log (shared with openraft).
    pub log: LogStore,
    /// The snapshot being received.
    pub inbox: SnapshotInbox,
}

impl Guard {
    /// A guard over `log`.
    pub fn new(log: LogStore) -> Self {
        Guard {
            log,
            inbox: SnapshotInbox::default(),
        }
    }
}

/// How far above this validator's own term a peer's term may be. An honest
/// validator cut off from the others raises its term once per election
/// timeout (250–500 ms by default), so this is about seven weeks of
/// isolation;
/// a Byzantine one needs 2^38 round trips at this step to reach
/// [`TERM_MAX`].
pub const TERM_AHEAD_MAX: u64 = 1 << 24;
/// No term above this is accepted from anyone: terms stay far from
/// `u64::MAX`, so `term + 1` never overflows.
pub const TERM_MAX: u64 = 1 << 62;

/// What a peer sent that this validator refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerLie {
    /// A term too far above this validator's own.
    #[error(
        "term {term} is above {max} (this validator's term {local} + {TERM_AHEAD_MAX}, at most {TERM_MAX})"
    )]
    TermOutOfBounds {
        /// The term sent.
        term: u64,
        /// This validator's term.
        local: u64,
        /// The highest term accepted now.
        max: u64,
    },
    /// An AppendEntries that contradicts the committed log.
    #[error(
        "{what} is {sent} but this validator committed {local} there (committed through index {committed})"
    )]
    LogConflict {
        /// `prev_log_id` or `entry`.
        what: &'static str,
        /// The log id sent.
        sent: String,
        /// The local committed log id at that index.
        local: String,
        /// This validator's committed index.
        committed: u64,
    },
    /// An AppendEntries whose entries do not follow its `prev_log_id`.
    #[error("entry {position} has index {index}, but it must follow index {after}")]
    NotConsecutive {
        /// Position of the entry in the request.
        position: usize,
        /// Its index.
        index: u64,
        /// The index it must follow.
        after: String,
    },
}

/// The highest term a peer may send while this validator is at `local`.
pub fn term_max(local: u64) -> u64 {
    local.saturating_add(TERM_AHEAD_MAX).min(TERM_MAX)
}

/// Refuses a term too far above `local`.
pub fn check_term(term: u64, local: u64) -> Result<(), PeerLie> {
    let max = term_max(local);
    if term > max {
        return Err(PeerLie::TermOutOfBounds { term, local, max });
    }
    Ok(())
}

/// Refuses an AppendEntries (`prev`, then entries with `ids`) that does not
/// run consecutively, or that contradicts what this validator committed
/// through index `committed`. `local_at` reads the local log id at an index
/// (`None`: purged, or absent).
pub fn check_append<E>(
    prev: Option<&LogId>,
    ids: &[LogId],
    committed: Option<u64>,
    mut local_at: impl FnMut(u64) -> Result<Option<LogId>, E>,
) -> Result<Result<(), PeerLie>, E> {
    let mut next = prev.map_or(Some(0), |p| p.index.checked_add(1));
    for (position, id) in ids.iter().enumerate() {
        if next != Some(id.index) {
            return Ok(Err(PeerLie::NotConsecutive {
                position,
                index: id.index,
                after: prev.map_or("none (the start of the log)".into(), |p| p.to_string()),
            }));
        }
        next = id.index.checked_add(1);
    }
    let Some(committed) = committed else {
        return Ok(Ok(()));
    };
    let claims = prev
        .map(|p| ("prev_log_id", p))
        .into_iter()
        .chain(ids.iter().map(|i| ("entry", i)))
        .take_while(|(_, id)| id.index <= committed);
    for (what, sent) in claims {
        if let Some(local) = local_at(sent.index)?
            && local != *sent
        {
            return Ok(Err(PeerLie::LogConflict {
                what,
                sent: sent.to_string(),
                local: local.to_string(),
                committed,
            }));
        }
    }
    Ok(Ok(()))
}

/// A snapshot being received in chunks.
#[derive(Debug, PartialEq)]
pub struct Partial {
    /// The validator sending it.
    pub sender: u64,
    /// Its vote when it began.
    pub vote: Vote,
    /// The snapshot id from its meta.
    pub snapshot_id: String,
    /// The bytes so far.
    pub data: Vec<u8>,
}

/// Why a snapshot chunk is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The chunk does not continue the snapshot being received.
    #[error(
        "chunk at offset {offset} of snapshot {snapshot_id}, but {have} bytes of it were received"
    )]
    NotContiguous {
        /// The snapshot.
        snapshot_id: String,
        /// The chunk's offset.
        offset: u64,
        /// Bytes received so far (0 when nothing was begun).
        have: u64,
    },
    /// The snapshot would exceed the snapshot bound.
    #[error("snapshot {snapshot_id} would be {bytes} bytes, above snapshot_bytes_max {max}")]
    TooLarge {
        /// The snapshot.
        snapshot_id: String,
        /// Its size with this chunk.
        bytes: u64,
        /// The bound.
        max: u64,
    },
    /// Another validator with at least the same vote is sending one.
    #[error("validator {other} is sending a snapshot under vote {vote}; not replaced")]
    Busy {
        /// The other sender.
        other: u64,
        /// Its vote.
        vote: String,
    },
}

/// The one snapshot this validator is receiving. Only one at a time: a
/// second sender replaces it only with a higher vote, so a Byzantine
/// validator cannot starve the leader's transfer by restarting its own.
#[derive(Debug, Default)]
pub struct SnapshotInbox {
    partial: Mutex<Option<Partial>>,
}

impl SnapshotInbox {
    /// Adds one chunk from `sender`. Returns the whole snapshot once `done`.
    ///
    /// # Errors
    /// A chunk that does not continue the snapshot from this sender at its
    /// exact length, or that would pass `bytes_max`: the snapshot being
    /// received is dropped (the sender starts again from offset 0).
    #[allow(clippy::too_many_arguments)]
    pub fn chunk(
        &self,
        sender: u64,
        vote: Vote,
        snapshot_id: &str,
        offset: u64,
        data: &[u8],
        done: bool,
        bytes_max: usize,
    ) -> Result<Option<Partial>, ChunkError> {
        let mut slot = self
            .partial
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if offset == 0 {
            if let Some(p) = slot.as_ref()
                && p.sender != sender
                && p.vote >= vote
            {
                return Err(ChunkError::Busy {
                    other: p.sender,
                    vote: p.vote.to_string(),
                });
            }
            *slot = Some(Partial {
                sender,
                vote,
                snapshot_id: snapshot_id.to_string(),
                data: Vec::new(),
            });
        }
        let ours = slot
            .as_ref()
            .is_some_and(|p| p.sender == sender && p.snapshot_id == snapshot_id);
        let have = if ours {
            slot.as_ref().map_or(0, |p| p.data.len() as u64)
        } else {
            0
        };
        if !ours || offset != have {
            if ours {
                *slot = None;
            }
            return Err(ChunkError::NotContiguous {
                snapshot_id: snapshot_id.to_string(),
                offset,
                have,
            });
        }
        let bytes = have.saturating_add(data.len() as u64);
        if bytes > bytes_max as u64 {
            *slot = None;
            return Err(ChunkError::TooLarge {
                snapshot_id: snapshot_id.to_string(),
                bytes,
                max: bytes_max as u64,
            });
        }
        if let Some(p) = slot.as_mut() {
            p.data.extend_from_slice(data);
        }
        Ok(if done { slot.take() } else { None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    fn id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    #[test]
    fn terms_far_ahead_or_near_the_top_are_refused_and_nothing_overflows() {
        assert_eq!(check_term(5 + TERM_AHEAD_MAX, 5), Ok(()));
        assert!(matches!(
            check_term(6 + TERM_AHEAD_MAX, 5),
            Err(PeerLie::TermOutOfBounds { term, local: 5, .. }) if term == 6 + TERM_AHEAD_MAX
        ));
        assert!(check_term(u64::MAX, 5).is_err());
        assert!(check_term(u64::MAX, u64::MAX).is_err());
        assert_eq!(term_max(u64::MAX), TERM_MAX);
        assert_eq!(check_term(TERM_MAX, TERM_MAX - 1), Ok(()));
        assert!(check_term(TERM_MAX + 1, TERM_MAX).is_err());
    }

    fn local(log: &[LogId]) -> impl FnMut(u64) -> Result<Option<LogId>, ()> + '_ {
        |i| Ok(log.iter().find(|l| l.index == i).copied())
    }

    #[test]
    fn an_append_that_contradicts_the_committed_log_is_refused() {
        let log = [id(1, 1), id(1, 2), id(2, 3), id(2, 4)];
        // The honest leader resending what matches, and appending past it.
        assert_eq!(
            check_append(
                Some(&id(1, 2)),
                &[id(2, 3), id(2, 4), id(3, 5)],
                Some(4),
                local(&log)
            ),
            Ok(Ok(()))
        );
        // A conflicting prev at or below the commit index.
        let r = check_append(Some(&id(7, 3)), &[id(7, 4)], Some(3), local(&log)).expect("read");
        assert!(
            matches!(
                &r,
                Err(PeerLie::LogConflict {
                    what: "prev_log_id",
                    committed: 3,
                    ..
                })
            ),
            "{r:?}"
        );
        // Matching prev, conflicting entry at the commit index.
        let r = check_append(Some(&id(1, 2)), &[id(7, 3)], Some(3), local(&log)).expect("read");
        assert!(
            matches!(&r, Err(PeerLie::LogConflict { what: "entry", .. })),
            "{r:?}"
        );
        // The same entries above the commit index are Raft's business.
        assert_eq!(
            check_append(Some(&id(1, 2)), &[id(7, 3)], Some(2), local(&log)),
            Ok(Ok(()))
        );
        // Purged indexes cannot be compared and are not refused here.
        assert_eq!(
            check_append(Some(&id(9, 0)), &[id(9, 1)], Some(4), local(&[])),
            Ok(Ok(()))
        );
    }

    #[test]
    fn entries_must_follow_prev_one_by_one_even_at_the_top() {
        let r = check_append(Some(&id(1, 2)), &[id(1, 4)], None, local(&[])).expect("read");
        assert!(matches!(
            r,
            Err(PeerLie::NotConsecutive {
                position: 0,
                index: 4,
                ..
            })
        ));
        let r = check_append(Some(&id(1, u64::MAX)), &[id(1, 0)], None, local(&[])).expect("read");
        assert!(matches!(r, Err(PeerLie::NotConsecutive { .. })), "{r:?}");
        let r = check_append(None, &[id(1, 0), id(1, 1)], None, local(&[])).expect("read");
        assert_eq!(r, Ok(()));
    }

    fn vote(term: u64, node: u64) -> Vote {
        Vote::new_committed(term, node)
    }

    #[test]
    fn snapshot_chunks_must_be_contiguous_and_bounded() {
        let inbox = SnapshotInbox::default();
        assert_eq!(
            inbox.chunk(1, vote(2, 1), "s", 0, b"abc", false, 8),
            Ok(None)
        );
        // A chunk far past the end is refused and drops what was received.
        let e = inbox
            .chunk(1, vote(2, 1), "s", 1 << 40, b"x", false, 8)
            .expect_err("gap");
        assert!(
            matches!(e, ChunkError::NotContiguous { offset, have: 3, .. } if offset == 1 << 40)
        );
        let e = inbox
            .chunk(1, vote(2, 1), "s", 3, b"d", true, 8)
            .expect_err("dropped");
        assert!(matches!(e, ChunkError::NotContiguous { have: 0, .. }));
        // Over the bound.
        assert_eq!(
            inbox.chunk(1, vote(2, 1), "s", 0, b"abcde", false, 8),
            Ok(None)
        );
        let e = inbox
            .chunk(1, vote(2, 1), "s", 5, b"fghi", true, 8)
            .expect_err("big");
        assert!(matches!(
            e,
            ChunkError::TooLarge {
                bytes: 9,
                max: 8,
                ..
            }
        ));
        // Whole.
        assert_eq!(
            inbox.chunk(1, vote(2, 1), "s", 0, b"ab", false, 8),
            Ok(None)
        );
        let p = inbox
            .chunk(1, vote(2, 1), "s", 2, b"cd", true, 8)
            .expect("ok")
            .expect("done");
        assert_eq!(p.data, b"abcd");
    }

    #[test]
    fn another_sender_cannot_replace_a_transfer_without_a_higher_vote() {
        let inbox = SnapshotInbox::default();
        assert_eq!(
            inbox.chunk(2, vote(3, 2), "s", 0, b"ab", false, 8),
            Ok(None)
        );
        // The same vote, or a lower one, does not replace it.
        let e = inbox
            .chunk(1, vote(3, 1), "t", 0, b"zz", false, 8)
            .expect_err("busy");
        assert!(matches!(e, ChunkError::Busy { other: 2, .. }));
        let e = inbox
            .chunk(1, vote(3, 2), "t", 0, b"zz", false, 8)
            .expect_err("busy");
        assert!(matches!(e, ChunkError::Busy { other: 2, .. }));
        // The first transfer goes on.
        assert!(
            inbox
                .chunk(2, vote(3, 2), "s", 2, b"cd", true, 8)
                .expect("ok")
                .is_some()
        );
        // A higher vote replaces.
        assert_eq!(
            inbox.chunk(2, vote(3, 2), "s", 0, b"ab", false, 8),
            Ok(None)
        );
        assert_eq!(
            inbox.chunk(1, vote(4, 1), "t", 0, b"zz", false, 8),
            Ok(None)
        );
        let e = inbox
            .chunk(2, vote(3, 2), "s", 2, b"cd", true, 8)
            .expect_err("replaced");
        assert!(matches!(e, ChunkError::NotContiguous { .. }));
    }
}
