//! Five real `senatus node` processes on loopback: replication, failover,
//! quorum loss, full restart, snapshot catch-up, on-disk tamper and bad
//! client input. Every test is bounded and its `Testnet` kills what it
//! started when dropped, also on failure.

mod common;

use std::time::{Duration, Instant};

use common::*;
use senatus_proto::reason::Reason;
use senatus_proto::v1 as pb;
use senatus_testnet::{Head, RaftOverrides};
use tonic::Code;

/// Upper bound of any one test, cluster start included.
const TEST_BOUND: Duration = Duration::from_secs(120);
/// The failover bound the issue sets: a new leader within 2 s of a crash.
const FAILOVER_MS_MAX: u64 = 2_000;
/// Longest a write may take to be refused once a quorum is gone. The node
/// refuses at once when its leader lease is stale, otherwise after its own
/// leader wait/commit timeouts (3 s each); 10 s leaves room for both.
const UNAVAILABLE_MS_MAX: u64 = 10_000;
/// Longest wait for a cluster to settle after a fault heals.
const CONVERGE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_any_node_replicate_identically_to_all_five() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "replication", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let mut acks = Vec::new();
        for via in net.ids() {
            for i in 0..4 {
                acks.push(write(&net, via, payload(&format!("via{via}"), i)).await);
            }
        }
        acks.extend(write_many(&net, net.ids()[2], "burst", 60, 16).await);
        let head = net.wait_converged(CONVERGE).await.expect("converged");
        assert_eq!(head.index, 80, "every write got exactly one entry");
        let genesis = genesis_digest(&net, 1).await;
        let reference = verified_ledger(&net, 1, &head, genesis).await;
        assert_acked_present(&reference, &acks, "node 1");
        assert_identical_everywhere(&net, &head, genesis, &reference).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_elects_a_new_one_within_two_seconds_and_loses_nothing() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "leader failover", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let old = net.wait_leader(CONVERGE).await.expect("leader");
        let mut acks = write_many(&net, other_than(&net, &[old]), "before", 40, 8).await;

        net.kill(old).expect("kill leader");
        let killed_at = Instant::now();
        let new = net
            .wait_leader(Duration::from_millis(FAILOVER_MS_MAX))
            .await
            .unwrap_or_else(|e| panic!("no new leader within {FAILOVER_MS_MAX} ms: {e}"));
        let failover = killed_at.elapsed();
        assert_ne!(new, old, "the dead node cannot lead");
        eprintln!("failover: node {new} leads {failover:?} after node {old} was killed");
        // wait_leader may return a reply that arrived just past its
        // deadline: the bound itself is checked here.
        assert!(
            failover <= Duration::from_millis(FAILOVER_MS_MAX),
            "node {new} led only {failover:?} after the kill, over {FAILOVER_MS_MAX} ms"
        );

        acks.extend(write_many(&net, other_than(&net, &[new]), "after", 40, 8).await);
        net.start(old).expect("restart old leader");
        let head = net.wait_converged(CONVERGE).await.expect("converged");
        assert_eq!(head.index, 80);
        let genesis = genesis_digest(&net, new).await;
        let reference = verified_ledger(&net, new, &head, genesis).await;
        assert_acked_present(&reference, &acks, "new leader");
        assert_identical_everywhere(&net, &head, genesis, &reference).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_crashed_nodes_leave_the_cluster_live_three_make_writes_unavailable() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "quorum loss", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let leader = net.wait_leader(CONVERGE).await.expect("leader");
        let mut acks = write_many(&net, leader, "five", 10, 4).await;

        // Two down, one of them the leader: the other three still commit.
        let first_two = [leader, other_than(&net, &[leader])];
        for id in first_two {
            net.kill(id).expect("kill");
        }
        net.wait_leader(CONVERGE).await.expect("leader among three");
        let survivor = net.running()[0];
        acks.extend(write_many(&net, survivor, "three", 10, 4).await);
        let head3 = net.wait_converged(CONVERGE).await.expect("three converge");
        assert_eq!(head3.index, 20);

        // A third down: no quorum. A write is refused with UNAVAILABLE,
        // bounded, and leaves the survivors' ledgers as they were.
        let third = other_than(&net, &[]);
        net.kill(third).expect("kill third");
        let left = net.running();
        assert_eq!(left.len(), 2);
        for via in &left {
            let started = Instant::now();
            let err = net
                .append_record(*via, b"no-quorum".to_vec())
                .await
                .expect_err("a write without quorum must fail");
            let took = started.elapsed();
            assert_eq!(
                err.code(),
                Code::Unavailable,
                "via node {via}: {:?}: {}",
                err.code(),
                err.message()
            );
            assert!(
                took <= Duration::from_millis(UNAVAILABLE_MS_MAX),
                "via node {via}: refusal took {took:?}"
            );
            eprintln!(
                "no quorum, via node {via}: {} after {took:?}",
                err.message()
            );
        }
        for via in &left {
            let s = net.status(*via).await.expect("status");
            assert_eq!(Head::of(&s), head3, "node {via}: nothing half-applied");
        }

        // Heal: everything converges to one chain holding every ack.
        for id in first_two.into_iter().chain([third]) {
            net.start(id).expect("restart");
        }
        net.wait_leader(CONVERGE).await.expect("leader after heal");
        acks.extend(write_many(&net, leader, "healed", 5, 2).await);
        let head = net.wait_converged(CONVERGE).await.expect("converged");
        let genesis = genesis_digest(&net, 1).await;
        let reference = verified_ledger(&net, 1, &head, genesis).await;
        assert_acked_present(&reference, &acks, "node 1");
        assert_identical_everywhere(&net, &head, genesis, &reference).await;
        // A refused write may only ever appear whole: at most once, on
        // every node alike (checked above), never partially.
        let refused = reference
            .iter()
            .filter(|e| e.payload == b"no-quorum")
            .count();
        assert!(refused <= 1, "a refused write appears {refused} times");
        assert_eq!(head.index, 25 + refused as u64);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_all_five_keeps_identical_complete_ledgers() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "full restart", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let acks = write_many(&net, 3, "persist", 50, 8).await;
        let before = net.wait_converged(CONVERGE).await.expect("converged");
        assert_eq!(before.index, 50);

        // Clean stops for three, crashes for two: both must be durable.
        for id in [1, 2, 3] {
            let st = net.stop(id).await.expect("stop");
            assert!(st.success(), "node {id} exited with {st} on SIGTERM");
        }
        for id in [4, 5] {
            net.kill(id).expect("kill");
        }
        assert!(net.running().is_empty());
        for id in net.ids() {
            net.start(id).expect("start");
        }
        net.wait_leader(CONVERGE)
            .await
            .expect("leader after restart");
        let after = net.wait_converged(CONVERGE).await.expect("converged");
        assert_eq!(after, before, "same head index and hash after restart");
        let genesis = genesis_digest(&net, 1).await;
        let reference = verified_ledger(&net, 1, &after, genesis).await;
        assert_acked_present(&reference, &acks, "node 1");
        assert_identical_everywhere(&net, &after, genesis, &reference).await;

        // And the restarted cluster still takes writes.
        let more = write(&net, 5, b"after-restart".to_vec()).await;
        assert_eq!(more.reply.index, 51);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_missed_many_entries_catches_up_by_snapshot() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "snapshot catch-up", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        // Snapshot every 50 entries and keep only 10 logs behind it, so a
        // node that misses 300 entries cannot be fed from the log.
        let raft = RaftOverrides {
            snapshot_logs_since_last: Some(50),
            logs_kept_after_snapshot: Some(10),
            ..RaftOverrides::default()
        };
        let net = cluster(tmp.path(), raft).await;
        let leader = net.wait_leader(CONVERGE).await.expect("leader");
        let lagging = other_than(&net, &[leader]);
        let mut acks = write_many(&net, leader, "early", 20, 4).await;
        net.kill(lagging).expect("kill");

        acks.extend(write_many(&net, leader, "missed", 300, 32).await);
        net.start(lagging).expect("restart lagging node");
        let head = net.wait_converged(CONVERGE).await.expect("converged");
        assert_eq!(head.index, 320);

        let log = net.last_run_log(lagging).expect("log");
        assert!(
            log.contains("installed snapshot"),
            "node {lagging} caught up without installing a snapshot; its log:\n{log}"
        );
        let genesis = genesis_digest(&net, leader).await;
        let reference = verified_ledger(&net, leader, &head, genesis).await;
        assert_acked_present(&reference, &acks, "leader");
        assert_identical_everywhere(&net, &head, genesis, &reference).await;
    })
    .await;
}

/// Offset of the first payload byte in a stored ledger entry: tag (24) +
/// index (8) + kind (1) + payload length (4); see docs/PROTOCOL.md.
const PAYLOAD_OFFSET: usize = 24 + 8 + 1 + 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_on_disk_makes_that_node_refuse_naming_the_index() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "tamper", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let leader = net.wait_leader(CONVERGE).await.expect("leader");
        let victim = other_than(&net, &[leader]);
        write_many(&net, leader, "t", 12, 4).await;
        let head = net.wait_converged(CONVERGE).await.expect("converged");
        assert_eq!(head.index, 12);

        let st = net.stop(victim).await.expect("stop");
        assert!(st.success(), "{st}");
        {
            let db_path = &net.spec(victim).expect("spec").db;
            let db = senatus_node::store::open_db(db_path).expect("open victim db");
            let cf = db
                .cf_handle(senatus_node::store::cf::LEDGER)
                .expect("ledger column family");
            let key = 7u64.to_be_bytes();
            let mut value = db.get_cf(cf, key).expect("read").expect("entry 7 stored");
            value[PAYLOAD_OFFSET] ^= 0x01;
            db.put_cf(cf, key, value).expect("write");
        }

        net.start(victim).expect("start tampered node");
        let exit = net
            .wait_exit(victim, Duration::from_secs(20))
            .await
            .expect("a tampered node must refuse to run");
        assert!(!exit.success(), "tampered node exited with {exit}");
        let log = net.last_run_log(victim).expect("log");
        assert!(
            log.contains("ledger integrity check failed") && log.contains("index 7"),
            "refusal must name index 7; log:\n{log}"
        );

        // The other four are unaffected.
        let more = write_many(&net, leader, "after", 5, 2).await;
        assert_eq!(more.last().expect("acks").reply.index, 17);
        let head = net.wait_converged(CONVERGE).await.expect("four converge");
        let genesis = genesis_digest(&net, leader).await;
        let reference = verified_ledger(&net, leader, &head, genesis).await;
        assert_identical_everywhere(&net, &head, genesis, &reference).await;
    })
    .await;
}

const APPEND_RECORD: &str = "/senatus.v1.Senatus/AppendRecord";
const GET_LEDGER: &str = "/senatus.v1.Senatus/GetLedger";
const DECIDE: &str = "/senatus.v1.Senatus/Decide";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_client_input_is_refused_and_changes_nothing() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "bad input", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        write_many(&net, 1, "base", 3, 1).await;
        let before = net.wait_converged(CONVERGE).await.expect("converged");

        // (what, method, body, accepted codes, the reason a client gets;
        // None where the gRPC layer refuses before any senatus code runs)
        let oversized_payload = pb::AppendRecordRequest {
            payload: vec![7; 64 * 1024 + 1],
            ..Default::default()
        };
        let not_json = pb::DecideRequest {
            surface: "payments".into(),
            action: "transfer".into(),
            actor: "agent-1".into(),
            tenant: "acme".into(),
            params_json: "{\"amount\": ".into(),
            context: None,
            idempotency_key: "bad-input-1".into(),
            ..Default::default()
        };
        type Case = (
            &'static str,
            &'static str,
            Vec<u8>,
            &'static [Code],
            Option<Reason>,
        );
        let cases: Vec<Case> = vec![
            (
                "garbage bytes",
                APPEND_RECORD,
                vec![0xff; 64],
                &[Code::InvalidArgument],
                Some(Reason::MalformedMessage),
            ),
            // Field 1 (payload, bytes) sent as a varint.
            (
                "wrong field type",
                APPEND_RECORD,
                vec![0x08, 0x96, 0x01],
                &[Code::InvalidArgument],
                Some(Reason::MalformedMessage),
            ),
            // Length prefix promises more bytes than follow.
            (
                "truncated message",
                APPEND_RECORD,
                vec![0x0a, 0x10, 1, 2, 3],
                &[Code::InvalidArgument],
                Some(Reason::MalformedMessage),
            ),
            (
                "payload over record_payload_bytes_max",
                APPEND_RECORD,
                prost::Message::encode_to_vec(&oversized_payload),
                &[Code::InvalidArgument],
                Some(Reason::PayloadTooLarge),
            ),
            // Over the 1 MiB message limit: refused while decoding.
            (
                "message over 1 MiB",
                APPEND_RECORD,
                prost::Message::encode_to_vec(&pb::AppendRecordRequest {
                    payload: vec![1; 2 * 1024 * 1024],
                    ..Default::default()
                }),
                &[
                    Code::InvalidArgument,
                    Code::OutOfRange,
                    Code::ResourceExhausted,
                ],
                None,
            ),
            (
                "ledger range backwards",
                GET_LEDGER,
                prost::Message::encode_to_vec(&pb::GetLedgerRequest {
                    from: 3,
                    to: 1,
                    limit: 10,
                    ..Default::default()
                }),
                &[Code::InvalidArgument],
                Some(Reason::InvalidRequest),
            ),
            (
                "garbage ledger query",
                GET_LEDGER,
                vec![0x08, 0xff],
                &[Code::InvalidArgument],
                Some(Reason::MalformedMessage),
            ),
            (
                "garbage decide",
                DECIDE,
                vec![0xff; 64],
                &[Code::InvalidArgument],
                Some(Reason::MalformedMessage),
            ),
            // Parses as a DecideRequest, but params_json is not JSON: refused
            // by the node asked, leader or not, before anything is forwarded.
            (
                "decide with params_json not JSON",
                DECIDE,
                prost::Message::encode_to_vec(&not_json),
                &[Code::InvalidArgument],
                Some(Reason::InvalidRequest),
            ),
        ];
        for (what, method, body, codes, reason) in cases {
            for via in [1, 4] {
                let err = raw_call(&net, via, method, body.clone())
                    .await
                    .expect_err(what);
                assert!(
                    codes.contains(&err.code()),
                    "{what} via node {via}: got {:?}: {}",
                    err.code(),
                    err.message()
                );
                assert!(!err.message().is_empty(), "{what}: error must say why");
                if let Some(want) = reason {
                    assert_eq!(
                        Reason::of(&err),
                        Some(want),
                        "{what} via node {via}: {err:?}"
                    );
                }
            }
        }
        // The malformed Decide names the field at fault, machine-readably.
        let err = raw_call(&net, 2, DECIDE, prost::Message::encode_to_vec(&not_json))
            .await
            .expect_err("not JSON");
        let why = senatus_proto::reason::reason_of(&err).expect("a reason");
        assert_eq!(
            why.metadata.get("field").map(String::as_str),
            Some("params_json"),
            "{err:?}"
        );

        // Nobody crashed, nothing was appended, and writes still work.
        let after = net.wait_converged(CONVERGE).await.expect("converged");
        assert_eq!(after, before, "bad input changed the ledger");
        assert_eq!(net.running().len(), 5, "a node died on bad input");
        let ok = write(&net, 2, b"still-serving".to_vec()).await;
        assert_eq!(ok.reply.index, before.index + 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_larger_than_one_reply_is_read_in_short_pages_by_every_client() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "ledger pages", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        // Records of the largest size an operator may write, more of them
        // than one GetLedger reply carries (about 4.5 MiB stored).
        let size = senatus_node::service::RECORD_PAYLOAD_BYTES_MAX;
        let mut acks = Vec::new();
        for i in 0..70u8 {
            acks.push(write(&net, 1 + u64::from(i % 5), vec![i; size]).await);
        }
        let head = net.wait_converged(CONVERGE).await.expect("converged");
        assert_eq!(head.index, 70);

        // Asked for all 70 at once, a validator answers with the entries
        // that fit its byte budget, counted on the stored entries.
        let auditor = net.client_key("auditor-1").expect("auditor key");
        let body = senatus_quorum::auth::get_ledger_body(1, 70, 1000);
        let page = net
            .client(3)
            .expect("client")
            .get_ledger(pb::GetLedgerRequest {
                from: 1,
                to: 70,
                limit: 1000,
                auth: Some(net.call_auth(&auditor, "GetLedger", &body)),
            })
            .await
            .expect("GetLedger")
            .into_inner()
            .entries;
        let stored = domain(&page[0]).encode().len();
        let fits = senatus_node::store::state_machine::LEDGER_RANGE_BYTES_MAX / stored;
        assert!(fits < 70, "the test ledger must not fit one reply");
        assert_eq!(
            page.iter().map(|e| e.index).collect::<Vec<_>>(),
            (1..=fits as u64).collect::<Vec<_>>(),
            "a short page of whole entries from the start"
        );

        // A client that asks again from the last index + 1 reads it all:
        // the testnet's reader (complete, in order, chained to genesis)...
        let genesis = genesis_digest(&net, 1).await;
        let ledger = verified_ledger(&net, 3, &head, genesis).await;
        assert_acked_present(&ledger, &acks, "node 3");
        // ...and `senatus ledger export`, whose file verifies offline.
        let file = tmp.path().join("ledger.jsonl");
        let path = |p: &std::path::Path| p.display().to_string();
        let out = senatus_cli_for(
            &net,
            vec![
                "ledger".into(),
                "export".into(),
                "--key".into(),
                path(&net.client_key_path("auditor-1")),
                "--api".into(),
                net.spec(3).expect("spec").api.clone(),
                "--out".into(),
                path(&file),
            ],
        )
        .await;
        assert!(out.status.success(), "export: {}", show(&out));
        let text = std::fs::read_to_string(&file).expect("export file");
        assert_eq!(text.lines().count(), 71, "a header and 70 entries");
        let out = senatus_cli_for(
            &net,
            vec![
                "ledger".into(),
                "verify".into(),
                "--genesis".into(),
                path(&net.genesis_path()),
                "--file".into(),
                path(&file),
            ],
        )
        .await;
        assert!(out.status.success(), "verify: {}", show(&out));
    })
    .await;
}
