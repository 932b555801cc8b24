//! Ledger behaviour of the RocksDB state machine: the hash chain on apply,
//! durability across reopen, tamper detection, and snapshot transfer that
//! refuses a broken chain.

use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, Membership, RaftLogReader, RaftSnapshotBuilder,
    Vote,
};
use senatus_genesis::codec::{Digest, sha3};
use senatus_node::ledger::{
    ChainError, EntryKind, LEDGER_PAYLOAD_BYTES_MAX, LedgerEntry, LedgerHead, verify_chain,
};
use senatus_node::raft_types::{Command, CommandRejection, CommandResponse, RaftEntry};
use senatus_node::store::snapshot::SnapshotContents;
use senatus_node::store::{
    self, LogStore, SnapshotError, StateMachineStore, StoreError, cf, open_db,
};

fn genesis() -> Digest {
    sha3(b"ledger store test genesis")
}

fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn normal(index: u64, kind: EntryKind, payload: &[u8]) -> RaftEntry {
    Entry {
        log_id: log_id(1, index),
        payload: EntryPayload::Normal(Command::new(kind, payload.to_vec())),
    }
}

fn blank(index: u64) -> RaftEntry {
    Entry {
        log_id: log_id(1, index),
        payload: EntryPayload::Blank,
    }
}

fn membership(index: u64) -> RaftEntry {
    let voters: BTreeSet<u64> = [1, 2, 3].into_iter().collect();
    Entry {
        log_id: log_id(1, index),
        payload: EntryPayload::Membership(Membership::new(vec![voters], None)),
    }
}

struct Opened {
    db: Arc<rocksdb::DB>,
    log: LogStore,
    sm: StateMachineStore,
}

/// Opens the store keeping a raw handle, so a test can tamper with bytes.
fn open_raw(path: &Path) -> Opened {
    let db = open_db(path).expect("open db");
    let log = LogStore::open(db.clone()).expect("log store");
    let sm = StateMachineStore::open(db.clone(), genesis()).expect("state machine");
    Opened { db, log, sm }
}

/// Applies `n` record commands at Raft indexes `first_raft_index..`,
/// returning the ledger entries they appended.
async fn apply_commands(
    sm: &mut StateMachineStore,
    first_raft_index: u64,
    n: u64,
) -> Vec<LedgerHead> {
    let entries: Vec<RaftEntry> = (0..n)
        .map(|i| {
            normal(
                first_raft_index + i,
                EntryKind::Record,
                format!("record {}", first_raft_index + i).as_bytes(),
            )
        })
        .collect();
    let responses = sm.apply(entries).await.expect("apply");
    responses
        .iter()
        .map(|r| r.appended().expect("command appended an entry"))
        .collect()
}

fn flip_ledger_byte(db: &rocksdb::DB, index: u64, offset: usize) {
    let h = db.cf_handle(cf::LEDGER).expect("ledger cf");
    let key = index.to_be_bytes();
    let mut value = db.get_cf(h, key).expect("read").expect("entry present");
    value[offset] ^= 0x01;
    db.put_cf(h, key, value).expect("write");
}

/// Offset of the first payload byte in an encoded entry: tag (24) + index (8)
/// + kind (1) + length (4).
const PAYLOAD_OFFSET: usize = 24 + 8 + 1 + 4;

#[tokio::test]
async fn apply_builds_a_verifiable_chain_independent_of_raft_indexes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_log, mut sm) = store::open(dir.path(), genesis()).expect("open");
    assert_eq!(
        sm.ledger_head().expect("head"),
        LedgerHead::genesis(genesis())
    );

    let responses = sm
        .apply([
            blank(1),
            membership(2),
            normal(3, EntryKind::Record, b"d1"),
            blank(4),
            normal(5, EntryKind::Record, b"v1"),
        ])
        .await
        .expect("apply");
    assert_eq!(responses.len(), 5);
    assert_eq!(responses[0], CommandResponse::NoCommand);
    assert_eq!(responses[1], CommandResponse::NoCommand);
    assert_eq!(responses[3], CommandResponse::NoCommand);
    let first = responses[2].appended().expect("entry 1");
    let second = responses[4].appended().expect("entry 2");
    assert_eq!((first.index, second.index), (1, 2));

    let entries = sm.ledger_range(1, 10, 100).expect("range");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].kind, EntryKind::Record);
    assert_eq!(entries[0].prev_hash, genesis());
    assert_eq!(entries[1].prev_hash, entries[0].hash);
    assert_eq!(entries[1].head(), second);
    assert_eq!(verify_chain(&entries, genesis()), Ok(second.hash));
    assert_eq!(sm.ledger_head().expect("head"), second);
    assert_eq!(sm.verify_integrity(), Ok(second));

    let (applied, mem) = sm.applied_state().await.expect("applied state");
    assert_eq!(applied, Some(log_id(1, 5)));
    assert_eq!(mem.log_id(), &Some(log_id(1, 2)));
    assert_eq!(sm.last_applied().expect("applied"), Some(log_id(1, 5)));

    // The hash is the specified one, recomputable from the fields alone.
    assert_eq!(
        first.hash,
        LedgerEntry::compute_hash(1, EntryKind::Record, b"d1", &genesis())
    );

    // Proposals and votes go through the amendment tally; a store opened
    // without one refuses them and appends nothing.
    let refused = sm
        .apply([
            normal(6, EntryKind::Vote, b"v1"),
            normal(7, EntryKind::Proposal, b"p1"),
        ])
        .await
        .expect("apply");
    for r in &refused {
        assert_eq!(
            r,
            &CommandResponse::Rejected(CommandRejection::Amendment(
                "this node's state machine does not tally amendments".into()
            ))
        );
    }
    assert_eq!(sm.ledger_head().expect("head"), second);
}

#[tokio::test]
async fn ledger_range_bounds_and_single_entry_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_log, mut sm) = store::open(dir.path(), genesis()).expect("open");
    let heads = apply_commands(&mut sm, 1, 10).await;

    assert_eq!(sm.ledger_range(3, 5, 100).expect("range").len(), 3);
    let capped = sm.ledger_range(1, 10, 4).expect("range");
    assert_eq!(
        capped.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert!(sm.ledger_range(5, 4, 100).expect("empty").is_empty());
    assert!(sm.ledger_range(11, 20, 100).expect("past head").is_empty());
    assert!(sm.ledger_range(1, 10, 0).expect("zero max").is_empty());
    assert_eq!(
        sm.ledger_entry(7).expect("entry").map(|e| e.head()),
        Some(heads[6])
    );
    assert_eq!(sm.ledger_entry(11).expect("absent"), None);
}

#[tokio::test]
async fn ledger_range_stops_at_its_byte_budget_and_pages_resume_from_the_last_index() {
    use senatus_node::store::state_machine::LEDGER_RANGE_BYTES_MAX;
    const MIB: usize = 1024 * 1024;
    let dir = tempfile::tempdir().expect("tempdir");
    let (_log, mut sm) = store::open(dir.path(), genesis()).expect("open");
    // Ten 1 MiB records (10 MiB stored), then one of the largest payload
    // an entry may carry, over the budget by itself.
    let mut raft: Vec<RaftEntry> = (1..=10u8)
        .map(|i| normal(u64::from(i), EntryKind::Record, &vec![i; MIB]))
        .collect();
    raft.push(normal(
        11,
        EntryKind::Record,
        &vec![11; LEDGER_PAYLOAD_BYTES_MAX],
    ));
    let responses = sm.apply(raft).await.expect("apply");
    assert!(responses.iter().all(|r| r.appended().is_some()));

    let stored = sm
        .ledger_entry(1)
        .expect("read")
        .expect("entry 1")
        .encode()
        .len();
    assert!(stored > MIB);
    let fits = LEDGER_RANGE_BYTES_MAX / stored;
    assert_eq!(fits, 3, "three 1 MiB entries fit 4 MiB, a fourth does not");
    // Paging from the last index + 1, as GetLedger's clients do: short
    // pages of whole entries, none skipped, none repeated.
    let mut pages = Vec::new();
    let mut all = Vec::new();
    let mut next = 1;
    while next <= 11 {
        let page = sm.ledger_range(next, 11, 1000).expect("page");
        let last = page.last().expect("every page makes progress").index;
        pages.push(page.iter().map(|e| e.index).collect::<Vec<_>>());
        next = last + 1;
        all.extend(page);
    }
    assert_eq!(
        pages,
        vec![
            vec![1, 2, 3],
            vec![4, 5, 6],
            vec![7, 8, 9],
            vec![10],
            vec![11]
        ],
        "the 4 MiB entry comes alone, never with another"
    );
    let head = sm.ledger_head().expect("head");
    assert_eq!(verify_chain(&all, genesis()), Ok(head.hash));
    assert_eq!(all[10].payload.len(), LEDGER_PAYLOAD_BYTES_MAX);
    for (i, e) in all.iter().take(10).enumerate() {
        assert_eq!(e.payload, vec![i as u8 + 1; MIB], "entry {}", e.index);
    }
    // The count bound still holds below the byte bound, and a range
    // ending early ends at `to` as before.
    assert_eq!(sm.ledger_range(1, 11, 2).expect("two").len(), 2);
    assert_eq!(sm.ledger_range(2, 3, 1000).expect("to").len(), 2);
    // A single read of the large entry is whole.
    assert_eq!(
        sm.ledger_entry(11).expect("read").map(|e| e.payload.len()),
        Some(LEDGER_PAYLOAD_BYTES_MAX)
    );
}

#[tokio::test]
async fn oversized_command_is_rejected_deterministically_without_an_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_log, mut sm) = store::open(dir.path(), genesis()).expect("open");
    let big = vec![0u8; LEDGER_PAYLOAD_BYTES_MAX + 1];
    let responses = sm
        .apply([
            normal(1, EntryKind::Record, &big),
            normal(2, EntryKind::Record, b"ok"),
        ])
        .await
        .expect("apply");
    assert_eq!(
        responses[0],
        CommandResponse::Rejected(CommandRejection::PayloadTooLarge {
            bytes: big.len() as u64,
            max: LEDGER_PAYLOAD_BYTES_MAX as u64,
        })
    );
    assert_eq!(responses[1].appended().map(|h| h.index), Some(1));
    assert_eq!(sm.ledger_head().expect("head").index, 1);
    assert_eq!(sm.last_applied().expect("applied"), Some(log_id(1, 2)));
}

#[tokio::test]
async fn reopen_restores_identical_head_applied_vote_and_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let head = {
        let (mut log, mut sm) = store::open(dir.path(), genesis()).expect("open");
        let vote = Vote::new(3, 2);
        log.save_vote(&vote).await.expect("save vote");
        append(&mut log, vec![blank(1), membership(2)]).await;
        let heads = apply_commands(&mut sm, 1, 25).await;
        heads[24]
    };
    let (mut log, mut sm) = store::open(dir.path(), genesis()).expect("reopen");
    assert_eq!(sm.ledger_head().expect("head"), head);
    assert_eq!(sm.verify_integrity(), Ok(head));
    assert_eq!(
        sm.applied_state().await.expect("applied").0,
        Some(log_id(1, 25))
    );
    assert_eq!(log.read_vote().await.expect("vote"), Some(Vote::new(3, 2)));
    let entries = log.try_get_log_entries(1..10).await.expect("log");
    assert_eq!(
        entries.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
        vec![1, 2]
    );

    // Applying continues the same chain after the restart.
    let next = apply_commands(&mut sm, 26, 1).await;
    assert_eq!(next[0].index, 26);
    assert_eq!(
        sm.ledger_entry(26)
            .expect("entry")
            .expect("present")
            .prev_hash,
        head.hash
    );
}

#[test]
fn reopening_with_another_genesis_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(store::open(dir.path(), genesis()).expect("open"));
    let other = sha3(b"another genesis");
    let err = store::open(dir.path(), other).expect_err("must refuse");
    match err {
        StoreError::GenesisMismatch { stored, given } => {
            assert_eq!((stored, given), (genesis(), other));
        }
        e => panic!("unexpected error: {e}"),
    }
}

#[tokio::test]
async fn a_flipped_byte_is_named_by_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = open_raw(dir.path());
    apply_commands(&mut o.sm, 1, 6).await;

    flip_ledger_byte(&o.db, 4, PAYLOAD_OFFSET);
    let err =
        o.sm.verify_integrity()
            .expect_err("tamper must be detected");
    assert_eq!(err.index(), 4, "{err}");
    assert!(
        matches!(err, ChainError::HashMismatch { index: 4, .. }),
        "{err}"
    );
    assert!(err.to_string().starts_with("ledger index 4:"), "{err}");

    // Reads refuse the tampered entry too, and so does a snapshot build.
    let err =
        o.sm.ledger_range(1, 6, 10)
            .expect_err("range read must refuse");
    assert!(
        matches!(
            err,
            StoreError::Chain(ChainError::HashMismatch { index: 4, .. })
        ),
        "{err}"
    );
    assert!(o.sm.ledger_range(1, 3, 10).is_ok());
    let err = o.sm.build_snapshot_bytes().expect_err("build must refuse");
    assert!(
        matches!(
            err,
            StoreError::Chain(ChainError::HashMismatch { index: 4, .. })
        ),
        "{err}"
    );

    // Restoring the byte restores integrity.
    flip_ledger_byte(&o.db, 4, PAYLOAD_OFFSET);
    assert!(o.sm.verify_integrity().is_ok());

    // A flipped tag byte makes the entry undecodable, still named by index.
    flip_ledger_byte(&o.db, 2, 0);
    let err =
        o.sm.verify_integrity()
            .expect_err("tamper must be detected");
    assert!(
        matches!(err, ChainError::Undecodable { index: 2, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_tampered_entry_survives_restart_as_a_detected_break() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut o = open_raw(dir.path());
        apply_commands(&mut o.sm, 1, 5).await;
        flip_ledger_byte(&o.db, 3, PAYLOAD_OFFSET + 2);
    }
    let (_log, sm) = store::open(dir.path(), genesis()).expect("reopen");
    let err = sm.verify_integrity().expect_err("tamper must be detected");
    assert_eq!(err.index(), 3, "{err}");
}

#[tokio::test]
async fn deleted_entry_and_forged_head_are_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = open_raw(dir.path());
    apply_commands(&mut o.sm, 1, 5).await;
    let ledger = o.db.cf_handle(cf::LEDGER).expect("cf");

    // Removing the last entry leaves a head that no longer matches.
    let last =
        o.db.get_cf(ledger, 5u64.to_be_bytes())
            .expect("read")
            .expect("present");
    o.db.delete_cf(ledger, 5u64.to_be_bytes()).expect("delete");
    let err = o.sm.verify_integrity().expect_err("head mismatch");
    assert!(
        matches!(err, ChainError::HeadMismatch { index: 5, .. }),
        "{err}"
    );
    o.db.put_cf(ledger, 5u64.to_be_bytes(), last)
        .expect("restore");

    // Removing a middle entry is a gap at that index.
    o.db.delete_cf(ledger, 2u64.to_be_bytes()).expect("delete");
    let err = o.sm.verify_integrity().expect_err("gap");
    assert_eq!(
        err,
        ChainError::IndexGap {
            expected: 2,
            found: 3
        }
    );
}

#[tokio::test]
async fn snapshot_transfers_the_whole_state_and_survives_restart() {
    let src_dir = tempfile::tempdir().expect("tempdir");
    let dst_dir = tempfile::tempdir().expect("tempdir");
    let mut src = open_raw(src_dir.path());
    src.sm.apply([membership(1)]).await.expect("membership");
    apply_commands(&mut src.sm, 2, 12).await;

    // Nonce and idempotency records are derived from its ledger on
    // install: see `a_snapshot_whose_records_its_ledger_did_not_make_is_refused`.
    let snap = src.sm.build_snapshot().await.expect("build");
    let src_head = src.sm.ledger_head().expect("head");
    assert_eq!(snap.meta.last_log_id, Some(log_id(1, 13)));

    let mut dst = open_raw(dst_dir.path());
    // The destination had committed a shorter prefix of the same history;
    // the snapshot extends it.
    dst.sm.apply([membership(1)]).await.expect("membership");
    apply_commands(&mut dst.sm, 2, 3).await;
    let mut recv = dst.sm.begin_receiving_snapshot().await.expect("begin");
    *recv = Cursor::new(snap.snapshot.get_ref().clone());
    dst.sm
        .install_snapshot(&snap.meta, recv)
        .await
        .expect("install");

    assert_eq!(dst.sm.ledger_head().expect("head"), src_head);
    assert_eq!(dst.sm.verify_integrity(), Ok(src_head));
    assert_eq!(
        dst.sm.ledger_range(1, 100, 100).expect("dst"),
        src.sm.ledger_range(1, 100, 100).expect("src")
    );
    assert_eq!(
        dst.sm.applied_state().await.expect("dst"),
        src.sm.applied_state().await.expect("src")
    );
    assert_eq!(dst.sm.nonce_redemption(b"nonce-1").expect("nonce"), None);
    // The state digest after every entry is the source's, derived again.
    for index in 1..=src_head.index {
        assert_eq!(
            dst.sm.state_digest_at(index).expect("dst digest"),
            src.sm.state_digest_at(index).expect("src digest"),
            "index {index}"
        );
    }
    assert!(
        dst.sm
            .state_digest_at(src_head.index)
            .expect("digest")
            .is_some()
    );

    // The current snapshot is kept in the database across a restart.
    drop(dst);
    let (_log, mut dst_sm) = store::open(dst_dir.path(), genesis()).expect("reopen");
    let current = dst_sm
        .get_current_snapshot()
        .await
        .expect("current")
        .expect("present");
    assert_eq!(current.meta, snap.meta);
    assert_eq!(current.snapshot.get_ref(), snap.snapshot.get_ref());
}

/// A snapshot is only its ledger: nonce and idempotency records its
/// ledger did not make (a redemption left out, a nonce made up) are
/// refused, and the receiver's state stays as it was (issue 14's
/// "self-consistent snapshot").
#[tokio::test]
async fn a_snapshot_whose_records_its_ledger_did_not_make_is_refused() {
    let src_dir = tempfile::tempdir().expect("tempdir");
    let dst_dir = tempfile::tempdir().expect("tempdir");
    let mut src = open_raw(src_dir.path());
    apply_commands(&mut src.sm, 1, 4).await;
    let nonces = src.db.cf_handle(cf::NONCES).expect("cf");
    src.db
        .put_cf(nonces, b"nonce-1", 7u64.to_be_bytes())
        .expect("put");
    let (meta, bytes) = src.sm.build_snapshot_bytes().expect("build");

    let mut dst = open_raw(dst_dir.path());
    let before = apply_commands(&mut dst.sm, 1, 2).await[1];
    let err = dst
        .sm
        .install_snapshot_bytes(&meta, &bytes)
        .expect_err("must refuse");
    assert!(
        matches!(
            err,
            StoreError::Snapshot(SnapshotError::RecordsMismatch {
                cf: "nonces",
                sent: 1,
                derived: 0,
                first_difference: 0,
            })
        ),
        "{err}"
    );
    assert_eq!(dst.sm.ledger_head().expect("head"), before);
    assert_eq!(dst.sm.nonce_redemption(b"nonce-1").expect("nonce"), None);

    // Nor anything in the policy column family, which no ledger writes.
    let policy_dir = tempfile::tempdir().expect("tempdir");
    let mut with_policy = open_raw(policy_dir.path());
    apply_commands(&mut with_policy.sm, 1, 4).await;
    let policy = with_policy.db.cf_handle(cf::POLICY).expect("cf");
    with_policy
        .db
        .put_cf(policy, b"active", b"a layer no seal made")
        .expect("put");
    let (meta, bytes) = with_policy.sm.build_snapshot_bytes().expect("build");
    let err = dst
        .sm
        .install_snapshot_bytes(&meta, &bytes)
        .expect_err("must refuse");
    assert!(
        matches!(
            err,
            StoreError::Snapshot(SnapshotError::RecordsMismatch {
                cf: "policy",
                sent: 1,
                derived: 0,
                ..
            })
        ),
        "{err}"
    );
    // The refused snapshot left the state apply runs on untouched too.
    let next = dst
        .sm
        .apply([normal(3, EntryKind::Record, b"after")])
        .await
        .expect("apply");
    assert_eq!(next[0].appended().map(|h| h.index), Some(3));
}

#[tokio::test]
async fn a_snapshot_that_does_not_extend_the_committed_ledger_is_refused() {
    let src_dir = tempfile::tempdir().expect("tempdir");
    let mut src = open_raw(src_dir.path());
    apply_commands(&mut src.sm, 1, 8).await;
    let (meta, bytes) = src.sm.build_snapshot_bytes().expect("build");
    let src_head = src.sm.ledger_head().expect("head");

    // Committed another entry 2: the snapshot forks below its commit.
    let fork_dir = tempfile::tempdir().expect("tempdir");
    let mut fork = open_raw(fork_dir.path());
    apply_commands(&mut fork.sm, 1, 1).await;
    let own = fork
        .sm
        .apply([normal(
            2,
            EntryKind::Record,
            b"what this validator committed",
        )])
        .await
        .expect("apply")[0]
        .appended()
        .expect("appended");
    let err = fork
        .sm
        .verify_snapshot_bytes(&meta, &bytes)
        .expect_err("must refuse");
    assert!(
        matches!(
            err,
            StoreError::Snapshot(SnapshotError::ForksCommitted { index: 2, committed, .. })
                if committed == own.hash
        ),
        "{err}"
    );
    assert!(err.to_string().contains("forks below"), "{err}");
    let err = fork
        .sm
        .install_snapshot_bytes(&meta, &bytes)
        .expect_err("install refuses too");
    assert!(
        matches!(
            err,
            StoreError::Snapshot(SnapshotError::ForksCommitted { .. })
        ),
        "{err}"
    );
    assert_eq!(fork.sm.ledger_head().expect("head"), own);

    // Committed more of the same history: the snapshot is behind it.
    let ahead_dir = tempfile::tempdir().expect("tempdir");
    let mut ahead = open_raw(ahead_dir.path());
    let heads = apply_commands(&mut ahead.sm, 1, 10).await;
    assert_eq!(heads[7], src_head, "the same history");
    let err = ahead
        .sm
        .verify_snapshot_bytes(&meta, &bytes)
        .expect_err("must refuse");
    assert!(
        matches!(
            err,
            StoreError::Snapshot(SnapshotError::BehindCommitted {
                snapshot: 8,
                committed: 10
            })
        ),
        "{err}"
    );

    // A prefix of it is extended.
    let behind_dir = tempfile::tempdir().expect("tempdir");
    let mut behind = open_raw(behind_dir.path());
    apply_commands(&mut behind.sm, 1, 3).await;
    let verified = behind
        .sm
        .verify_snapshot_bytes(&meta, &bytes)
        .expect("a snapshot extending the committed ledger verifies");
    assert_eq!(verified.head(), src_head);
}

#[tokio::test]
async fn a_snapshot_with_a_broken_chain_is_refused_and_the_old_state_stays() {
    let src_dir = tempfile::tempdir().expect("tempdir");
    let dst_dir = tempfile::tempdir().expect("tempdir");
    let mut src = open_raw(src_dir.path());
    apply_commands(&mut src.sm, 1, 8).await;
    let (meta, bytes) = src.sm.build_snapshot_bytes().expect("build");

    // Forge: alter entry 5's payload and re-seal the snapshot checksum, as an
    // attacker (not a transport error) would.
    let mut contents = SnapshotContents::decode(&bytes, usize::MAX).expect("decode");
    contents.ledger[4].payload = b"forged".to_vec();
    let forged = contents.encode();

    let mut dst = open_raw(dst_dir.path());
    let before = apply_commands(&mut dst.sm, 1, 2).await[1];
    let before_applied = dst.sm.last_applied().expect("applied");

    let err = dst
        .sm
        .install_snapshot_bytes(&meta, &forged)
        .expect_err("must refuse");
    assert!(
        matches!(
            err,
            StoreError::Snapshot(SnapshotError::Chain(ChainError::HashMismatch {
                index: 5,
                ..
            }))
        ),
        "{err}"
    );
    assert!(err.to_string().contains("ledger index 5"), "{err}");

    // Through the openraft trait, too.
    let err = dst
        .sm
        .install_snapshot(&meta, Box::new(Cursor::new(forged)))
        .await
        .expect_err("must refuse");
    assert!(err.to_string().contains("ledger index 5"), "{err}");

    assert_eq!(dst.sm.ledger_head().expect("head"), before);
    assert_eq!(dst.sm.last_applied().expect("applied"), before_applied);
    assert_eq!(dst.sm.verify_integrity(), Ok(before));
    assert!(dst.sm.current_snapshot().expect("current").is_none());
}

#[tokio::test]
async fn snapshots_that_are_too_large_corrupt_or_mismatched_are_refused() {
    let src_dir = tempfile::tempdir().expect("tempdir");
    let dst_dir = tempfile::tempdir().expect("tempdir");
    let mut src = open_raw(src_dir.path());
    apply_commands(&mut src.sm, 1, 4).await;
    let (meta, bytes) = src.sm.build_snapshot_bytes().expect("build");
    let dst = open_raw(dst_dir.path());

    let small = dst.sm.clone().with_snapshot_bytes_max(bytes.len() - 1);
    let err = small
        .install_snapshot_bytes(&meta, &bytes)
        .expect_err("too large");
    assert!(
        matches!(err, StoreError::Snapshot(SnapshotError::TooLarge { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("snapshot_bytes_max"), "{err}");
    let err = src
        .sm
        .clone()
        .with_snapshot_bytes_max(16)
        .build_snapshot_bytes()
        .expect_err("build too large");
    assert!(
        matches!(
            err,
            StoreError::Snapshot(SnapshotError::TooLarge { max: 16, .. })
        ),
        "{err}"
    );

    let mut corrupt = bytes.clone();
    corrupt[40] ^= 0x80;
    let err = dst
        .sm
        .install_snapshot_bytes(&meta, &corrupt)
        .expect_err("checksum");
    assert!(
        matches!(err, StoreError::Snapshot(SnapshotError::Checksum { .. })),
        "{err}"
    );

    let mut other_meta = meta.clone();
    other_meta.last_log_id = Some(log_id(2, 99));
    let err = dst
        .sm
        .install_snapshot_bytes(&other_meta, &bytes)
        .expect_err("meta mismatch");
    assert!(
        matches!(
            err,
            StoreError::Snapshot(SnapshotError::MetaMismatch { .. })
        ),
        "{err}"
    );

    // A snapshot from a cluster with another genesis.
    let foreign_dir = tempfile::tempdir().expect("tempdir");
    let (_l, mut foreign) = store::open(foreign_dir.path(), sha3(b"foreign")).expect("open");
    foreign
        .apply([normal(1, EntryKind::Record, b"x")])
        .await
        .expect("apply");
    let (fmeta, fbytes) = foreign.build_snapshot_bytes().expect("build");
    let err = dst
        .sm
        .install_snapshot_bytes(&fmeta, &fbytes)
        .expect_err("foreign");
    assert!(
        matches!(
            err,
            StoreError::Snapshot(SnapshotError::WrongGenesis { .. })
        ),
        "{err}"
    );
    assert_eq!(
        dst.sm.ledger_head().expect("head"),
        LedgerHead::genesis(genesis())
    );
}

#[tokio::test]
async fn log_store_persists_purges_and_truncates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = open_raw(dir.path());
    let mut log = o.log.clone();
    for i in 1..=10 {
        append(&mut log, vec![blank(i)]).await;
    }
    log.purge(log_id(1, 3)).await.expect("purge");
    log.truncate(log_id(1, 8)).await.expect("truncate");
    let state = log.get_log_state().await.expect("state");
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 3)));
    assert_eq!(state.last_log_id, Some(log_id(1, 7)));
    let got: Vec<u64> = log
        .try_get_log_entries(0..100)
        .await
        .expect("read")
        .iter()
        .map(|e| e.log_id.index)
        .collect();
    assert_eq!(
        got,
        vec![4, 5, 6, 7],
        "purged and truncated entries are gone"
    );
    let got: Vec<u64> = log
        .try_get_log_entries(4..=7)
        .await
        .expect("read")
        .iter()
        .map(|e| e.log_id.index)
        .collect();
    assert_eq!(got, vec![4, 5, 6, 7]);
    // The ids the peer guard compares with: from memory, and the same
    // after a restart from the log itself.
    let ids = |log: &LogStore| -> Vec<Option<u64>> {
        (2..=9)
            .map(|i| log.log_id_at(i).expect("read").map(|id| id.index))
            .collect()
    };
    let expected = vec![None, None, Some(4), Some(5), Some(6), Some(7), None, None];
    assert_eq!(ids(&log), expected);
    append(&mut log, vec![normal(8, EntryKind::Record, b"x")]).await;
    assert_eq!(log.log_id_at(8).expect("read"), Some(log_id(1, 8)));
    log.truncate(log_id(1, 8)).await.expect("truncate");
    assert_eq!(log.log_id_at(8).expect("read"), None);
    assert_eq!(log.committed_index(), None);
    log.save_committed(Some(log_id(1, 6)))
        .await
        .expect("committed");
    assert_eq!(log.committed_index(), Some(6));
    drop((o, log));
    assert_eq!(ids(&open_raw(dir.path()).log), expected);
    assert_eq!(open_raw(dir.path()).log.committed_index(), Some(6));

    let mut o = open_raw(dir.path());
    assert_eq!(
        o.log.read_committed().await.expect("committed"),
        Some(log_id(1, 6))
    );
    let state = o.log.get_log_state().await.expect("state");
    assert_eq!(state.last_log_id, Some(log_id(1, 7)));

    // Purging everything leaves last_log_id at the purge point.
    o.log.purge(log_id(1, 7)).await.expect("purge all");
    let state = o.log.get_log_state().await.expect("state");
    assert_eq!(state.last_log_id, Some(log_id(1, 7)));
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 7)));
}

/// Appends through the public storage API. `LogFlushed` can only be built by
/// openraft, so this goes through `RaftLogStorageExt::blocking_append`.
async fn append(log: &mut LogStore, entries: Vec<RaftEntry>) {
    use openraft::storage::RaftLogStorageExt;
    log.blocking_append(entries).await.expect("append");
}

#[tokio::test]
async fn decision_and_redemption_entries_must_carry_their_payloads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_log, mut sm) = store::open(dir.path(), genesis()).expect("open");
    let responses = sm
        .apply([
            normal(1, EntryKind::Decision, b"not a batch"),
            normal(2, EntryKind::Redemption, b"not a redemption"),
        ])
        .await
        .expect("apply");
    assert_eq!(
        responses,
        vec![
            CommandResponse::Rejected(CommandRejection::MalformedDecision),
            CommandResponse::Rejected(CommandRejection::MalformedRedemption),
        ]
    );
    assert_eq!(
        sm.ledger_head().expect("head"),
        LedgerHead::genesis(genesis()),
        "refused commands append nothing"
    );
}

#[tokio::test]
async fn a_prepared_snapshot_installs_once_and_is_checked_again_against_the_commit() {
    let src_dir = tempfile::tempdir().expect("tempdir");
    let mut src = open_raw(src_dir.path());
    apply_commands(&mut src.sm, 1, 6).await;
    let (meta, bytes) = src.sm.build_snapshot_bytes().expect("build");
    let src_head = src.sm.ledger_head().expect("head");

    // Prepared, then installed: the same state as a plain install.
    let dst_dir = tempfile::tempdir().expect("tempdir");
    let dst = open_raw(dst_dir.path());
    dst.sm.prepare_snapshot(&meta, &bytes).expect("prepare");
    dst.sm
        .install_snapshot_bytes(&meta, &bytes)
        .expect("install");
    assert_eq!(dst.sm.verify_integrity(), Ok(src_head));

    // Prepared while behind, then the validator commits past the snapshot
    // on its own: the install refuses what no longer extends its ledger.
    let late_dir = tempfile::tempdir().expect("tempdir");
    let mut late = open_raw(late_dir.path());
    apply_commands(&mut late.sm, 1, 2).await;
    late.sm.prepare_snapshot(&meta, &bytes).expect("prepare");
    let ahead = apply_commands(&mut late.sm, 3, 6).await;
    let err = late
        .sm
        .install_snapshot_bytes(&meta, &bytes)
        .expect_err("no longer extends the commit");
    assert!(
        matches!(
            err,
            StoreError::Snapshot(SnapshotError::BehindCommitted {
                snapshot: 6,
                committed: 8
            })
        ),
        "{err}"
    );
    assert_eq!(late.sm.ledger_head().expect("head"), ahead[5]);

    // Other bytes than the prepared ones are verified in full.
    let other_dir = tempfile::tempdir().expect("tempdir");
    let other = open_raw(other_dir.path());
    other.sm.prepare_snapshot(&meta, &bytes).expect("prepare");
    let mut contents = SnapshotContents::decode(&bytes, usize::MAX).expect("decode");
    contents.ledger[2].payload = b"forged".to_vec();
    let err = other
        .sm
        .install_snapshot_bytes(&meta, &contents.encode())
        .expect_err("must refuse");
    assert!(
        matches!(
            err,
            StoreError::Snapshot(SnapshotError::Chain(ChainError::HashMismatch {
                index: 3,
                ..
            }))
        ),
        "{err}"
    );
}
