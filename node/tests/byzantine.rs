//! An authenticated validator that lies (docs/PROTOCOL.md 21): the test
//! plays validator `liar` with that validator's own TLS key and
//! certificate, so every message below passes mutual TLS and reaches the
//! peer service. Each lie gets its specific refusal naming the sender,
//! counted in `/metrics`; nothing changes on the receiver, Raft keeps
//! running, and a token redeemed before still cannot be redeemed again.

mod common;

use std::time::Duration;

use common::*;

/// A PERMIT for agent-5 through node `via`.
async fn permit(net: &Testnet, via: u64, key: &str) -> pb::DecideReply {
    permit_request(net, via, transfer_by("agent-5", 40, key)).await
}
use openraft::{CommittedLeaderId, EntryPayload, LogId, Vote};
use senatus_node::ledger::{EntryKind, LedgerEntry, LedgerHead};
use senatus_node::network::encode;
use senatus_node::raft_types::{RaftEntry, SnapshotMeta, TypeConfig};
use senatus_node::store::snapshot::SnapshotContents;
use senatus_proto::reason::Reason;
use senatus_proto::v1 as pb;
use senatus_testnet::{RaftOverrides, Testnet};

const TEST_BOUND: Duration = Duration::from_secs(180);
const CALL: Duration = Duration::from_secs(30);

async fn redeem(
    net: &Testnet,
    via: u64,
    hand_off: pb::RedeemRequest,
) -> Result<pb::RedeemReply, tonic::Status> {
    let mut c = net.client(via).expect("client");
    tokio::time::timeout(CALL, c.redeem(hand_off))
        .await
        .expect("redeem within bound")
        .map(tonic::Response::into_inner)
}

/// A PERMIT token's hand-off (the agent's presentation to broker-1),
/// redeemed once: what a lying snapshot would like to make redeemable
/// again. Sent again, it is the broker's retry.
async fn redeemed_token(net: &Testnet) -> pb::RedeemRequest {
    let reply = permit(net, 1, "byzantine-redeemed").await;
    let params = transfer_by("agent-5", 40, "-").params_json;
    let hand_off = net.redeem_request(&reply.token, &params).expect("hand-off");
    redeem(net, 2, hand_off.clone())
        .await
        .expect("the first redemption succeeds");
    hand_off
}

/// Two distinct followers: the target and the validator whose identity the
/// test lies with.
async fn target_and_liar(net: &Testnet) -> (u64, u64, u64) {
    let leader = net
        .wait_leader(Duration::from_secs(20))
        .await
        .expect("leader");
    let followers: Vec<u64> = net.ids().into_iter().filter(|i| *i != leader).collect();
    (followers[0], followers[1], leader)
}

async fn term(net: &Testnet, id: u64) -> u64 {
    net.status(id).await.expect("status").term
}

fn raft(from: u64, payload: Vec<u8>) -> pb::RaftMessage {
    pb::RaftMessage { from, payload }
}

fn assert_refused(s: &tonic::Status, reason: Reason, liar: u64, needle: &str) {
    assert_eq!(Reason::of(s), Some(reason), "{s:?}");
    assert!(
        s.message().contains(&format!("validator {liar}")) && s.message().contains(needle),
        "{s:?}"
    );
}

/// Every ledger identical and verified, every acknowledged write present,
/// the state digest replaying, and the cluster still writing.
async fn unchanged_and_running(net: &Testnet, acks: &[Ack], via: u64) {
    let head = net
        .wait_converged(Duration::from_secs(30))
        .await
        .expect("converged");
    let g = genesis_digest(net, 1).await;
    let reference = verified_ledger(net, 1, &head, g).await;
    assert_identical_everywhere(net, &head, g, &reference).await;
    assert_acked_present(&reference, acks, "every node");
    assert_state_replays(net).await;
    write(net, via, payload("after-the-lie", 0)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_entries_conflicting_below_the_commit_index_is_refused() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "conflicting append", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let acks = write_many(&net, 1, "committed", 8, 4).await;
        net.wait_converged(Duration::from_secs(20))
            .await
            .expect("converged");
        let (target, liar, _) = target_and_liar(&net).await;
        let t = term(&net, target).await;
        let mut c = peer_client(&net, target, liar).await;
        let lie = CommittedLeaderId::new(t + 1, liar);

        // A prev_log_id at index 2, committed everywhere, under the liar's
        // new term.
        let conflicting_prev = openraft::raft::AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(t + 1, liar),
            prev_log_id: Some(LogId::new(lie, 2)),
            entries: vec![],
            leader_commit: Some(LogId::new(lie, 2)),
        };
        let s = c
            .append_entries(raft(liar, encode(&conflicting_prev).expect("encode")))
            .await
            .expect_err("refused");
        assert_refused(&s, Reason::PeerLogConflict, liar, "prev_log_id");

        // From the start of the log, replacing entry 0 (the genesis
        // membership) and 1.
        let entries: Vec<RaftEntry> = (0..2)
            .map(|i| RaftEntry {
                log_id: LogId::new(lie, i),
                payload: EntryPayload::Blank,
            })
            .collect();
        let rewrite = openraft::raft::AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(t + 1, liar),
            prev_log_id: None,
            entries,
            leader_commit: Some(LogId::new(lie, 1)),
        };
        let s = c
            .append_entries(raft(liar, encode(&rewrite).expect("encode")))
            .await
            .expect_err("refused");
        assert_refused(&s, Reason::PeerLogConflict, liar, "entry");

        assert_eq!(
            refusals(&net, target, liar, Reason::PeerLogConflict).await,
            2
        );
        let status = net.status(target).await.expect("status");
        assert_ne!(
            (status.term, status.leader_id),
            (t + 1, liar),
            "the target adopted the liar's term and leadership"
        );
        unchanged_and_running(&net, &acks, 3).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_term_near_u64_max_is_refused_and_the_node_restarts_and_elects() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "term at u64::MAX", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let acks = write_many(&net, 1, "before", 4, 2).await;
        let (target, liar, _) = target_and_liar(&net).await;
        let t = term(&net, target).await;
        let mut c = peer_client(&net, target, liar).await;

        let vote = openraft::raft::VoteRequest::<u64> {
            vote: Vote::new(u64::MAX, liar),
            last_log_id: Some(LogId::new(CommittedLeaderId::new(u64::MAX, liar), u64::MAX)),
        };
        let s = c
            .vote(raft(liar, encode(&vote).expect("encode")))
            .await
            .expect_err("refused");
        assert_refused(&s, Reason::PeerTermOutOfBounds, liar, &u64::MAX.to_string());

        // Just past the step allowed above the target's own term, as a
        // leader's heartbeat.
        let far = t + senatus_node::peer_guard::TERM_AHEAD_MAX + 1;
        let append = openraft::raft::AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(far, liar),
            prev_log_id: None,
            entries: vec![],
            leader_commit: None,
        };
        let s = c
            .append_entries(raft(liar, encode(&append).expect("encode")))
            .await
            .expect_err("refused");
        assert_refused(&s, Reason::PeerTermOutOfBounds, liar, &far.to_string());
        assert_eq!(
            refusals(&net, target, liar, Reason::PeerTermOutOfBounds).await,
            2
        );
        assert!(term(&net, target).await < far, "the target took the term");

        // The target restarts, and takes part in a new election: the
        // leader goes away and the cluster elects another.
        net.stop(target).await.expect("stop");
        net.start(target).expect("start");
        let leader = net
            .wait_leader(Duration::from_secs(30))
            .await
            .expect("leader");
        net.stop(leader).await.expect("stop the leader");
        let next = net
            .wait_leader(Duration::from_secs(30))
            .await
            .expect("a new leader");
        assert_ne!(next, leader);
        net.start(leader).expect("restart the old leader");
        let after = term(&net, target).await;
        assert!(after > t && after < t + 100, "term {t} -> {after}");
        permit(&net, target, "after-u64-max").await;
        unchanged_and_running(&net, &acks, 3).await;
    })
    .await;
}

/// A snapshot built by a real node: `source` is stopped, its store opened
/// for its current snapshot, and started again.
async fn real_snapshot(net: &Testnet, source: u64) -> (SnapshotMeta, Vec<u8>) {
    let g = genesis_digest(net, source).await;
    net.stop(source).await.expect("stop");
    let db = net.spec(source).expect("spec").db.clone();
    let got = tokio::task::spawn_blocking(move || {
        let (_log, sm) = senatus_node::store::open(&db, g).expect("open the store");
        sm.current_snapshot().expect("read the snapshot")
    })
    .await
    .expect("join")
    .expect("the node built a snapshot");
    net.start(source).expect("start");
    net.wait_converged(Duration::from_secs(30))
        .await
        .expect("converged");
    got
}

/// The ledger `entries`, chained again from genesis after edits.
fn rechain(genesis: senatus_genesis::Digest, entries: &[LedgerEntry]) -> Vec<LedgerEntry> {
    let mut head = LedgerHead::genesis(genesis);
    entries
        .iter()
        .map(|e| {
            let next = LedgerEntry::next(&head, e.kind, e.payload.clone());
            head = next.head();
            next
        })
        .collect()
}

/// What each snapshot case sends, made from a real snapshot's meta and
/// bytes and the target's ledger head index: the chunk (meta, offset,
/// data, done).
type Build = fn(&SnapshotMeta, &[u8], u64) -> (SnapshotMeta, u64, Vec<u8>, bool);

/// Record entries appended until the ledger is longer than `len`, so that
/// a lie is compared with the receiver's head rather than being short.
fn lengthen(ledger: &mut Vec<LedgerEntry>, len: u64) {
    let mut i = 0;
    while (ledger.len() as u64) <= len {
        let head = ledger.last().expect("entries").head();
        ledger.push(LedgerEntry::next(
            &head,
            EntryKind::Record,
            format!("padding-{i}").into_bytes(),
        ));
        i += 1;
    }
}

/// Sends the lie `build` makes of a real snapshot to a follower, as
/// validator `liar` at a higher term, and checks the refusal, that nothing
/// changed, and that the token redeemed before still cannot be redeemed.
async fn snapshot_lie(what: &str, build: Build, needle: &str) {
    let _serial = serial().await;
    bounded(TEST_BOUND, what, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(
            tmp.path(),
            RaftOverrides {
                snapshot_logs_since_last: Some(20),
                ..RaftOverrides::default()
            },
        )
        .await;
        let token = redeemed_token(&net).await;
        let acks = write_many(&net, 1, "snapshotted", 45, 8).await;
        net.wait_converged(Duration::from_secs(30))
            .await
            .expect("converged");
        let (target, liar, _) = target_and_liar(&net).await;
        let (meta, bytes) = real_snapshot(&net, liar).await;
        let target_head = net.status(target).await.expect("status").ledger_index;
        let (meta, offset, data, done) = build(&meta, &bytes, target_head);
        let t = term(&net, target).await;
        let request = openraft::raft::InstallSnapshotRequest::<TypeConfig> {
            vote: Vote::new_committed(t + 1, liar),
            meta,
            offset,
            data,
            done,
        };
        let mut c = peer_client(&net, target, liar).await;
        let s = c
            .install_snapshot(raft(liar, encode(&request).expect("encode")))
            .await
            .expect_err("refused");
        assert_refused(&s, Reason::SnapshotRefused, liar, needle);
        assert_eq!(
            refusals(&net, target, liar, Reason::SnapshotRefused).await,
            1
        );
        let status = net.status(target).await.expect("status");
        assert!(
            status.role != "shutdown",
            "Raft stopped on the target: {status:?}"
        );
        unchanged_and_running(&net, &acks, 3).await;
        permit(&net, target, &format!("after-{}", what.replace(' ', "-"))).await;
        let again = redeem(&net, target, token.clone())
            .await
            .expect_err("a redeemed token redeems again");
        assert_eq!(Reason::of(&again), Some(Reason::NonceRedeemed), "{again:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_chunk_at_offset_2_pow_40_is_refused() {
    snapshot_lie(
        "chunk at 2^40",
        |meta, _, _| (meta.clone(), 1 << 40, vec![0; 16], false),
        "offset 1099511627776",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_snapshot_is_refused() {
    snapshot_lie(
        "truncated snapshot",
        |meta, bytes, _| (meta.clone(), 0, bytes[..bytes.len() - 100].to_vec(), true),
        "checksum",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_snapshot_is_refused() {
    snapshot_lie(
        "garbage snapshot",
        |meta, bytes, _| {
            let garbage = (0..bytes.len()).map(|i| (i * 131 % 251) as u8).collect();
            (meta.clone(), 0, garbage, true)
        },
        "checksum",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_consistent_snapshot_without_its_redemptions_is_refused() {
    snapshot_lie(
        "snapshot without redemptions",
        |meta, bytes, len| {
            let mut c = SnapshotContents::decode(bytes, usize::MAX).expect("decodes");
            assert!(
                c.ledger.iter().any(|e| e.kind == EntryKind::Redemption),
                "the snapshot holds the redemption"
            );
            // Every redemption becomes a record with the same bytes, the
            // chain is rebuilt, and the nonce records its ledger no longer
            // makes are dropped: a snapshot that verifies on its own, in
            // which the token was never redeemed.
            for e in &mut c.ledger {
                if e.kind == EntryKind::Redemption {
                    e.kind = EntryKind::Record;
                }
            }
            lengthen(&mut c.ledger, len);
            c.ledger = rechain(c.genesis, &c.ledger);
            c.head = c.ledger.last().expect("entries").head();
            c.reserved[1].clear();
            (meta.clone(), 0, c.encode(), true)
        },
        "forks below",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_forking_below_the_receivers_commit_is_refused() {
    snapshot_lie(
        "forked snapshot",
        |meta, bytes, len| {
            let mut c = SnapshotContents::decode(bytes, usize::MAX).expect("decodes");
            let at = c
                .ledger
                .iter()
                .position(|e| e.kind == EntryKind::Record)
                .expect("a record");
            c.ledger[at].payload = b"what the liar says was recorded".to_vec();
            lengthen(&mut c.ledger, len);
            c.ledger = rechain(c.genesis, &c.ledger);
            c.head = c.ledger.last().expect("entries").head();
            (meta.clone(), 0, c.encode(), true)
        },
        "forks below",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_signing_a_head_the_cluster_did_not_commit_is_certified_and_the_cluster_goes_on() {
    use senatus_quorum::certificate::AttestedBatch;
    let _serial = serial().await;
    bounded(TEST_BOUND, "forked head", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let decided = permit(&net, 1, "before-the-fork").await;
        let index = decided.ledger_index;
        let (target, witness, leader) = target_and_liar(&net).await;
        let key = identity_key(&net, leader);
        let attest = |entry_hash: senatus_genesis::Digest, key: &ed25519_dalek::SigningKey| {
            use ed25519_dalek::Signer as _;
            AttestedBatch::new(
                senatus_genesis::NodeId::new(leader).expect("id"),
                index,
                entry_hash,
                (decided.expires_at_ms - 60_000, decided.expires_at_ms),
                |bytes| key.sign(bytes).to_bytes(),
            )
            .encode()
        };
        let head = net.status(target).await.expect("status");
        let committed = {
            let mut c = net.client(target).expect("client");
            let r = c
                .get_ledger(pb::GetLedgerRequest {
                    from: index,
                    to: index,
                    limit: 1,
                    auth: Some(net.call_auth(
                        &net.client_key("auditor-1").expect("auditor key"),
                        "GetLedger",
                        &senatus_quorum::auth::get_ledger_body(index, index, 1),
                    )),
                })
                .await
                .expect("GetLedger")
                .into_inner();
            digest(&r.entries[0].hash)
        };
        assert!(head.ledger_index >= index);

        // The leader asking the target to sign the entry at `index` with an
        // attestation of another head there: the signer refuses, since it
        // signs only the head it committed itself.
        let mut as_leader = peer_client(&net, target, leader).await;
        let request = sign_request_as(&mut as_leader, leader, b"any message".to_vec()).await;
        let s = as_leader
            .sign_batch(pb::SignBatchRequest {
                from: leader,
                ledger_index: index,
                request: request.to_bytes(),
                attestation: attest(senatus_genesis::sha3(b"another head"), &key),
            })
            .await
            .expect_err("refused");
        assert_eq!(Reason::of(&s), Some(Reason::SigningRefused), "{s:?}");
        assert!(
            s.message().contains("attestation is not of this batch"),
            "{s:?}"
        );

        let mut c = peer_client(&net, target, witness).await;
        let send = |attestations: Vec<Vec<u8>>| pb::WitnessRequest {
            from: witness,
            attestations,
        };

        // The committed head, signed by the leader: agreed, nothing else.
        let r = c
            .witness(send(vec![attest(committed, &key)]))
            .await
            .expect("witness")
            .into_inner();
        assert_eq!((r.agreed, r.not_applied, r.forks), (1, 0, 0));

        // Bytes that are no attestation: refused, naming the position.
        let s = c
            .witness(send(vec![attest(committed, &key), vec![7; 40]]))
            .await
            .expect_err("refused");
        assert_refused(&s, Reason::InvalidRequest, witness, "attestation 1");

        // Another head at that index under another key than the leader's:
        // a forgery by the witness, refused, nothing certified.
        let forked = senatus_genesis::sha3(b"the branch the other followers were sent");
        let s = c
            .witness(send(vec![attest(forked, &identity_key(&net, witness))]))
            .await
            .expect_err("refused");
        assert_refused(&s, Reason::InvalidRequest, witness, "does not verify");
        assert!(certified_kinds(&net, target, leader).await.is_empty());

        // The leader's own signature over a head the cluster did not commit
        // at `index`: what a leader forking the log must sign to get the
        // other branch signed. Certified at once, then everywhere.
        let sent = std::time::Instant::now();
        let r = c
            .witness(send(vec![attest(forked, &key)]))
            .await
            .expect("witness")
            .into_inner();
        assert_eq!(r.forks, 1);
        let mut everywhere = None;
        while everywhere.is_none() {
            let mut all = true;
            for id in net.running() {
                all &= certified_kinds(&net, id, leader)
                    .await
                    .iter()
                    .any(|k| k == "ledger-fork");
            }
            if all {
                everywhere = Some(sent.elapsed());
            } else {
                assert!(
                    sent.elapsed() < Duration::from_secs(30),
                    "validator {leader} not certified for ledger-fork everywhere"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        eprintln!(
            "ledger-fork: certified on every validator {:?} after the witness call",
            everywhere.expect("measured")
        );

        // The certified leader gives way; the others elect and go on
        // deciding, with identical ledgers that replay.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let next = loop {
            let l = net
                .wait_leader(Duration::from_secs(30))
                .await
                .expect("leader");
            if l != leader {
                break l;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the certified leader still leads"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        permit(&net, next, "after-the-fork").await;
        unchanged_and_running(&net, &[], next).await;
    })
    .await;
}

/// The entry hash node `id` holds at ledger `index`, once it has applied
/// it (bounded).
async fn entry_hash(net: &Testnet, id: u64, index: u64) -> Vec<u8> {
    let deadline = std::time::Instant::now() + CALL;
    loop {
        let entries = net.ledger(id, index, index).await.expect("GetLedger");
        if let Some(e) = entries.first() {
            return e.hash.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node {id} never applied ledger entry {index}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A leader that really forks the log (the `FORK_LOG` hook: every Record
/// entry it sends two of its followers carries other bytes than the one it
/// keeps and sends the other two; same Raft log ids, so openraft sees
/// nothing): the two followers on the other branch certify it from the
/// next signed head they are shown, and an amendment proposed after the
/// fork, recorded on both branches, is sealed on neither (each branch has
/// three attesters with the leader; a seal needs four).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_forking_the_log_between_two_pairs_is_certified_and_seals_nothing() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "forking leader", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let leader = net
            .wait_leader(Duration::from_secs(10))
            .await
            .expect("leader");
        // The real branch: the two lowest-id followers (the leader's
        // signers); the other branch: the two others.
        let followers: Vec<u64> = net.ids().into_iter().filter(|i| *i != leader).collect();
        let (real, other) = (&followers[..2], &followers[2..]);
        let config = senatus_genesis::config::NodeConfig::load(&net.spec(leader).expect("spec").config)
            .expect("node config");
        std::fs::write(
            config.data_dir.join("FORK_LOG"),
            format!("{},{}", other[0], other[1]),
        )
        .expect("fork hook");
        logged(&net, leader, &["fault injection: forking the log"]).await;

        // A record: committed on all five, another entry on the other pair.
        let ack = write(&net, leader, payload("forked", 0)).await;
        let index = ack.reply.index;
        for &r in real {
            assert_eq!(entry_hash(&net, r, index).await, ack.reply.hash, "node {r}");
        }
        let branch = entry_hash(&net, other[0], index).await;
        assert_ne!(branch, ack.reply.hash, "the other branch holds another entry");
        assert_eq!(entry_hash(&net, other[1], index).await, branch);

        // The next decision is signed by the leader and the real pair; its
        // signed head reaches the other pair through the witness, and both
        // certify the leader.
        let sent = std::time::Instant::now();
        permit(&net, leader, "after-the-fork").await;
        let mut certified_after = Vec::new();
        for &o in other {
            loop {
                if certified_kinds(&net, o, leader)
                    .await
                    .iter()
                    .any(|k| k == "ledger-fork")
                {
                    certified_after.push(sent.elapsed());
                    break;
                }
                assert!(
                    sent.elapsed() < Duration::from_secs(30),
                    "node {o} never certified the forking leader {leader}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        eprintln!(
            "forked head certified by both validators of the other branch within {:?} of the decision being sent",
            certified_after.iter().max().expect("two")
        );
        // The real pair holds the leader's head: the certificate's evidence
        // is false there, so each refuses it when the other pair sends it.
        for &r in real {
            logged(&net, r, &["certificate refused; nothing changes"]).await;
            assert!(
                certified_kinds(&net, r, leader).await.is_empty(),
                "node {r} of the leader's own branch certified it"
            );
        }

        // An amendment proposed now is recorded on both branches and passes
        // on the leader's; its seal needs four attestations of the head and
        // the other pair's ledgers hold another entry there.
        let v2 = proposed(tmp.path(), "v2", |_| {});
        let before = refusals(&net, other[0], leader, Reason::PeerLogConflict).await;
        propose_via(&net, tmp.path(), leader, &v2, "proposed on a forked log").await;
        logged(&net, leader, &["3 attestations, 4 of the 5 members needed"]).await;
        assert!(refusals(&net, other[0], leader, Reason::PeerLogConflict).await > before);
        for id in net.ids() {
            let mut c = net.client(id).expect("client");
            let chain = c
                .get_seal_chain(pb::SealChainRequest {})
                .await
                .expect("GetSealChain")
                .into_inner();
            assert_eq!(chain.seals_json.len(), 1, "node {id} holds a second seal");
        }
    })
    .await;
}
