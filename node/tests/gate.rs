//! The publish gate on five real `senatus node` processes: PERMIT, DENY and
//! SILENCE through the example policy, tokens that verify offline (broker
//! and plain Ed25519), one-time redemption, and receipts that never redeem.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use senatus_genesis::{Genesis, Seal};
use senatus_proto::reason::{Reason, reason_of};
use senatus_proto::v1 as pb;
use senatus_quorum::broker::{Broker, Expectation, VerifyError};
use senatus_quorum::token::Token;
use senatus_testnet::RaftOverrides;
use tonic::Code;

const TEST_BOUND: Duration = Duration::from_secs(120);
const CALL: Duration = Duration::from_secs(20);

fn request(
    surface: &str,
    action: &str,
    actor: &str,
    params: serde_json::Value,
    key: &str,
) -> pb::DecideRequest {
    pb::DecideRequest {
        surface: surface.into(),
        action: action.into(),
        actor: actor.into(),
        tenant: "acme".into(),
        params_json: params.to_string(),
        context: Some(pb::AgentContext::default()),
        idempotency_key: key.into(),
        ..Default::default()
    }
}

async fn decide(
    net: &senatus_testnet::Testnet,
    via: u64,
    r: pb::DecideRequest,
) -> Result<pb::DecideReply, tonic::Status> {
    let mut c = net.client(via).expect("client");
    match tokio::time::timeout(CALL, c.decide(common::signed(net, r))).await {
        Err(_) => panic!("Decide via node {via} gave no answer within {CALL:?}"),
        Ok(r) => r.map(tonic::Response::into_inner),
    }
}

fn broker(dir: &Path) -> (Broker, Genesis) {
    let genesis = Genesis::load(&dir.join("net/genesis.json")).expect("genesis");
    let chain = [senatus_node::gate::Gate::seal_zero(&genesis)];
    (Broker::new(&genesis, &chain).expect("broker"), genesis)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permit_deny_and_silence_come_back_signed_by_three_validators() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "decide", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let (broker, genesis) = broker(tmp.path());
        let group_key =
            ed25519_dalek::VerifyingKey::from_bytes(&Seal::genesis(&genesis).group_key.0)
                .expect("group key");
        let leader = net.wait_leader(Duration::from_secs(10)).await.expect("leader");
        let follower = other_than(&net, &[leader]);

        let transfer = serde_json::json!({"amount": 50_000, "currency": "EUR", "to_account": "acct-supplier-7"});
        let cases = [
            (
                request("payments", "transfer", "agent-7", transfer.clone(), "k-permit"),
                "PERMIT",
                vec!["payments.transfer-within-limit"],
            ),
            (
                request(
                    "payments",
                    "transfer",
                    "agent-7",
                    serde_json::json!({"amount": 100, "currency": "EUR", "to_account": "acct-sanctioned-0001"}),
                    "k-deny",
                ),
                "DENY",
                vec!["payments.blocklist"],
            ),
            (
                request(
                    "infra",
                    "mutate",
                    "agent-7",
                    serde_json::json!({"target": "db-primary", "operation": "resize"}),
                    "k-silence",
                ),
                "SILENCE",
                vec!["senatus.no-permit"],
            ),
        ];
        let mut permit_token = None;
        let mut deny_token = None;
        for (i, (req, outcome, reasons)) in cases.into_iter().enumerate() {
            // Alternate between the leader and a follower (which forwards).
            let via = if i % 2 == 0 { follower } else { leader };
            let params: serde_json::Value =
                serde_json::from_str(&req.params_json).expect("params");
            let (surface, action) = (req.surface.clone(), req.action.clone());
            let params_json = req.params_json.clone();
            let reply = decide(&net, via, req)
                .await
                .unwrap_or_else(|s| panic!("{outcome}: {:?}: {}", s.code(), s.message()));
            assert_eq!(reply.outcome, outcome);
            assert_eq!(reply.reasons, reasons, "{outcome} reasons");
            assert_eq!(reply.signers.len(), 3, "{outcome}: t=3 signers");
            assert!(reply.ledger_index >= 1);

            // The token is a plain Ed25519 signature under the group key.
            let token = Token::from_bytes(&reply.token).expect("token decodes");
            assert_eq!(token.payload.outcome.as_str(), outcome);
            assert_eq!(token.payload.ledger_index.0, reply.ledger_index);
            let sig = ed25519_dalek::Signature::from_bytes(&token.signature);
            group_key
                .verify_strict(&token.batch_message(&Seal::genesis(&genesis).group_key), &sig)
                .expect("plain ed25519 verify_strict");

            // The decision is on every validator's ledger at that index.
            let head = net.wait_converged(Duration::from_secs(10)).await.expect("converged");
            assert!(head.index >= reply.ledger_index);
            let entry = net
                .ledger(1, reply.ledger_index, reply.ledger_index)
                .await
                .expect("ledger")
                .pop()
                .expect("entry");
            assert_eq!(entry.kind, 2, "a Decision entry");
            assert_eq!(entry.hash, reply.entry_hash);

            let expect = Expectation {
                surface: &surface,
                action: &action,
                tenant: "acme",
                params: &params,
            };
            let verdict = broker.verify(&reply.token, &expect, now_unix_ms());
            match outcome {
                "PERMIT" => {
                    verdict.expect("PERMIT verifies in the broker");
                    permit_token = Some((reply.token.clone(), params_json.clone()));
                }
                _ => {
                    assert!(
                        matches!(verdict, Err(VerifyError::NotPermit { .. })),
                        "{outcome}: {verdict:?}"
                    );
                    broker
                        .verify_receipt(&reply.token)
                        .expect("a receipt is authentic evidence");
                    if outcome == "DENY" {
                        deny_token = Some((reply.token.clone(), params_json.clone()));
                    }
                }
            }
        }

        // Redeem exactly once, through any node. The broker's retry of the
        // same presentation is refused and certifies nobody.
        let (permit, permit_params) = permit_token.expect("permit token");
        let hand_off = net.redeem_request(&permit, &permit_params).expect("hand-off");
        let mut c = net.client(follower).expect("client");
        let first = c
            .redeem(hand_off.clone())
            .await
            .expect("first redemption")
            .into_inner();
        assert_eq!(first.nonce.len(), 16);
        let again = net
            .client(leader)
            .expect("client")
            .redeem(hand_off)
            .await
            .expect_err("second redemption");
        assert_eq!(again.code(), Code::AlreadyExists, "{}", again.message());
        assert!(
            again.message().contains(&format!("ledger index {}", first.ledger_index)),
            "{}",
            again.message()
        );

        // A DENY receipt can never be redeemed; a flipped byte is refused.
        let (deny, deny_params) = deny_token.expect("deny token");
        let err = c
            .redeem(net.redeem_request(&deny, &deny_params).expect("hand-off"))
            .await
            .expect_err("receipt redemption");
        assert_eq!(err.code(), Code::PermissionDenied, "{}", err.message());
        assert_eq!(Reason::of(&err), Some(Reason::TokenNotPermit), "{err:?}");
        let mut forged = permit;
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let err = c
            .redeem(net.redeem_request(&forged, &permit_params).expect("hand-off"))
            .await
            .expect_err("forged redemption");
        assert_eq!(err.code(), Code::PermissionDenied, "{}", err.message());
        assert_eq!(Reason::of(&err), Some(Reason::TokenForged), "{err:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_decisions_batch_and_every_token_verifies() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "batched decide", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let (broker, _) = broker(tmp.path());
        let mut set = tokio::task::JoinSet::new();
        for i in 0..64u64 {
            let mut c = net.client(1 + i % 5).expect("client");
            let params = serde_json::json!({"amount": 100 + i, "currency": "USD", "to_account": "acct-supplier-7"});
            let signed = common::signed(
                &net,
                request("payments", "transfer", "agent-9", params.clone(), &format!("b-{i}")),
            );
            set.spawn(async move {
                let r = c
                    .decide(signed)
                    .await
                    .map(tonic::Response::into_inner);
                (params, r)
            });
        }
        let mut entries = std::collections::BTreeSet::new();
        let mut nonces = std::collections::BTreeSet::new();
        while let Some(done) = set.join_next().await {
            let (params, r) = done.expect("task");
            let reply = r.unwrap_or_else(|s| panic!("{:?}: {}", s.code(), s.message()));
            assert_eq!(reply.outcome, "PERMIT");
            let expect = Expectation {
                surface: "payments",
                action: "transfer",
                tenant: "acme",
                params: &params,
            };
            let v = broker
                .verify(&reply.token, &expect, now_unix_ms())
                .expect("every batched token verifies");
            entries.insert(reply.ledger_index);
            assert!(nonces.insert(v.nonce()), "nonces are unique");
        }
        assert_eq!(nonces.len(), 64);
        eprintln!("64 concurrent decisions in {} ledger entries", entries.len());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redeemed_nonce_stays_redeemed_across_leader_change_and_full_restart() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "replay across restarts", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let leader = net
            .wait_leader(Duration::from_secs(10))
            .await
            .expect("leader");
        let params =
            serde_json::json!({"amount": 10, "currency": "EUR", "to_account": "acct-supplier-7"});
        let reply = decide(
            &net,
            leader,
            request("payments", "transfer", "agent-3", params.clone(), "r-1"),
        )
        .await
        .expect("decide");
        assert_eq!(reply.outcome, "PERMIT");
        // One hand-off, sent again by the broker after each failure: a
        // retry, refused without certifying anyone.
        let hand_off = net
            .redeem_request(&reply.token, &serde_json::to_string(&params).expect("json"))
            .expect("hand-off");
        let redeem = |via: u64| {
            let mut c = net.client(via).expect("client");
            let hand_off = hand_off.clone();
            async move {
                tokio::time::timeout(CALL, c.redeem(hand_off))
                    .await
                    .expect("redeem answered in time")
            }
        };
        let first = redeem(leader).await.expect("first redemption").into_inner();

        // Leader change: the new leader refuses the replay.
        net.kill(leader).expect("kill leader");
        let new = net
            .wait_leader(Duration::from_secs(10))
            .await
            .expect("new leader");
        assert_ne!(new, leader);
        let err = redeem(new).await.expect_err("replay after leader change");
        assert_eq!(err.code(), Code::AlreadyExists, "{}", err.message());
        net.start(leader).expect("restart old leader");
        net.wait_converged(Duration::from_secs(30))
            .await
            .expect("converged");

        // Full restart: still refused, naming the first redemption.
        for id in net.ids() {
            net.stop(id).await.expect("stop");
        }
        for id in net.ids() {
            net.start(id).expect("start");
        }
        net.wait_leader(Duration::from_secs(30))
            .await
            .expect("leader after restart");
        let err = redeem(other_than(&net, &[]))
            .await
            .expect_err("replay after restart");
        assert_eq!(err.code(), Code::AlreadyExists, "{}", err.message());
        assert!(
            err.message()
                .contains(&format!("ledger index {}", first.ledger_index)),
            "{}",
            err.message()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_quorum_a_decision_fails_with_no_token() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "decide without quorum", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let leader = net
            .wait_leader(Duration::from_secs(10))
            .await
            .expect("leader");
        let before = net
            .wait_converged(Duration::from_secs(10))
            .await
            .expect("converged");
        for id in [leader, other_than(&net, &[leader])] {
            net.kill(id).expect("kill");
        }
        let third = other_than(&net, &[]);
        net.kill(third).expect("kill");
        let params =
            serde_json::json!({"amount": 10, "currency": "EUR", "to_account": "acct-supplier-7"});
        for via in net.running() {
            let started = std::time::Instant::now();
            let err = decide(
                &net,
                via,
                request("payments", "transfer", "agent-3", params.clone(), "q-1"),
            )
            .await
            .expect_err("no quorum, no decision");
            assert_eq!(
                err.code(),
                Code::Unavailable,
                "via {via}: {}",
                err.message()
            );
            assert!(err.message().contains("no token"), "{}", err.message());
            assert!(
                started.elapsed() <= Duration::from_secs(10),
                "bounded refusal"
            );
            let s = net.status(via).await.expect("status");
            assert_eq!(senatus_testnet::Head::of(&s), before, "nothing appended");
        }
    })
    .await;
}

/// Runs the `senatus` binary under test, bounded by its own timeouts, with
/// `SENATUS_GENESIS=genesis` (the genesis the public API's TLS is pinned
/// to; the broker's own `--genesis` wins where it gives one).
fn cli(genesis: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_senatus"))
        .args(args)
        .env("SENATUS_GENESIS", genesis)
        .output()
        .expect("run senatus")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_and_broker_commands_work_against_a_real_cluster() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "cli against the cluster", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let api = |id: u64| net.spec(id).expect("spec").api.clone();
        let out_dir = tmp.path().join("broker");
        let token = tmp.path().join("permit.token");
        let params = r#"{"amount": 4200, "currency": "USD", "to_account": "acct-supplier-7"}"#;
        let (a1, a2, a3) = (api(1), api(2), api(3));
        let (out_s, token_s) = (
            out_dir.to_str().expect("utf8").to_string(),
            token.to_str().expect("utf8").to_string(),
        );
        let g = net.genesis_path();
        let agent_key = net.client_key_path("agent-4");
        let agent_key = agent_key.to_str().expect("utf8").to_string();
        let broker_key = net.client_key_path("broker-1");
        let broker_key = broker_key.to_str().expect("utf8").to_string();
        let presented = tmp.path().join("permit.presented");
        let presented_s = presented.to_str().expect("utf8").to_string();
        let outputs = tokio::task::spawn_blocking(move || {
            let decide = cli(
                &g,
                &[
                    "decide",
                    "--key",
                    &agent_key,
                    "--api",
                    &a2,
                    "--surface",
                    "payments",
                    "--action",
                    "transfer",
                    "--actor",
                    "agent-4",
                    "--tenant",
                    "acme",
                    "--params",
                    params,
                    "--token-out",
                    &token_s,
                ],
            );
            let fetch = cli(
                &g,
                &["broker", "fetch-chain", "--api", &a1, "--out", &out_s],
            );
            let genesis = format!("{out_s}/genesis.json");
            let seals = format!("{out_s}/seals.json");
            let scope = [
                "--genesis",
                genesis.as_str(),
                "--seals",
                seals.as_str(),
                "--token-file",
                token_s.as_str(),
                "--surface",
                "payments",
                "--action",
                "transfer",
                "--tenant",
                "acme",
                "--params",
                params,
            ];
            let verify = cli(&g, &[&["broker", "verify"], &scope[..]].concat());
            // The agent hands the token to broker-1 (one presentation);
            // the broker redeems with it, then retries.
            let present = cli(
                &g,
                &[
                    "present",
                    "--key",
                    &agent_key,
                    "--broker",
                    "broker-1",
                    "--token-file",
                    &token_s,
                    "--params",
                    params,
                    "--out",
                    &presented_s,
                ],
            );
            let with = [
                "--key",
                broker_key.as_str(),
                "--presentation-file",
                presented_s.as_str(),
            ];
            let redeem = cli(
                &g,
                &[
                    &["broker", "redeem", "--api", a3.as_str()],
                    &scope[..],
                    &with[..],
                ]
                .concat(),
            );
            let again = cli(
                &g,
                &[
                    &["broker", "redeem", "--api", a1.as_str()],
                    &scope[..],
                    &with[..],
                ]
                .concat(),
            );
            [decide, fetch, verify, present, redeem, again]
        })
        .await
        .expect("cli task");
        let show = |o: &std::process::Output| {
            format!(
                "status {:?}\nstdout: {}\nstderr: {}",
                o.status.code(),
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        };
        let [decide, fetch, verify, present, redeem, again] = outputs;
        assert!(decide.status.success(), "decide: {}", show(&decide));
        assert!(
            String::from_utf8_lossy(&decide.stdout).contains("PERMIT"),
            "{}",
            show(&decide)
        );
        assert!(fetch.status.success(), "fetch-chain: {}", show(&fetch));
        assert!(verify.status.success(), "verify: {}", show(&verify));
        assert!(
            String::from_utf8_lossy(&verify.stdout).contains("token OK"),
            "{}",
            show(&verify)
        );
        assert!(present.status.success(), "present: {}", show(&present));
        assert!(
            String::from_utf8_lossy(&present.stdout).contains("to broker \"broker-1\""),
            "{}",
            show(&present)
        );
        assert!(redeem.status.success(), "redeem: {}", show(&redeem));
        assert!(
            String::from_utf8_lossy(&redeem.stdout).contains("presented by acme/agent-4"),
            "{}",
            show(&redeem)
        );
        assert_eq!(
            again.status.code(),
            Some(4),
            "second redeem: {}",
            show(&again)
        );
        assert!(
            String::from_utf8_lossy(&again.stderr).contains("redemption DENIED")
                || String::from_utf8_lossy(&again.stdout).contains("redemption DENIED"),
            "{}",
            show(&again)
        );
        assert!(
            String::from_utf8_lossy(&again.stderr).contains("nobody certified"),
            "a broker's retry certifies nobody: {}",
            show(&again)
        );
        // Decisions and redemptions replay through `apply` alone to the
        // state digest every validator reports at every index.
        assert_state_replays(&net).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_request_gets_its_first_decision_and_a_reused_key_is_refused() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "idempotency", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let (broker, _) = broker(tmp.path());
        let params =
            serde_json::json!({"amount": 777, "currency": "EUR", "to_account": "acct-supplier-7"});
        let req = request(
            "payments",
            "transfer",
            "agent-5",
            params.clone(),
            "retry-me",
        );
        let first = decide(&net, 2, req.clone()).await.expect("first");
        let head = net
            .wait_converged(Duration::from_secs(10))
            .await
            .expect("converged");

        // The same request again, through other nodes: the same decision,
        // no second ledger entry.
        for via in [4, 1] {
            let again = decide(&net, via, req.clone()).await.expect("retry");
            assert_eq!(again.ledger_index, first.ledger_index);
            assert_eq!(again.position, first.position);
            assert_eq!(again.decision_id, first.decision_id);
            assert_eq!(again.outcome, first.outcome);
            assert_eq!(again.expires_at_ms, first.expires_at_ms);
            let (a, b) = (
                Token::from_bytes(&first.token).expect("token"),
                Token::from_bytes(&again.token).expect("token"),
            );
            assert_eq!(a.payload, b.payload, "the same signed payload");
            let expect = Expectation {
                surface: "payments",
                action: "transfer",
                tenant: "acme",
                params: &params,
            };
            broker
                .verify(&again.token, &expect, now_unix_ms())
                .expect("reissued token verifies");
        }
        let after = net
            .wait_converged(Duration::from_secs(10))
            .await
            .expect("converged");
        assert_eq!(after, head, "a retry appends nothing");

        // The key with a different request: refused, nothing appended.
        let mut other = req.clone();
        other.params_json =
            serde_json::json!({"amount": 778, "currency": "EUR", "to_account": "acct-supplier-7"})
                .to_string();
        let err = decide(&net, 3, other.clone())
            .await
            .expect_err("reused key");
        assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
        assert!(
            err.message().contains("different request"),
            "{}",
            err.message()
        );
        // The reason an SDK matches on, with the first decision's place;
        // the same through every node, leader or follower.
        for via in [3, 1, 5] {
            let err = decide(&net, via, other.clone())
                .await
                .expect_err("reused key");
            let why = reason_of(&err).expect("a reason");
            assert_eq!(
                why.known(),
                Some(Reason::IdempotencyConflict),
                "via {via}: {err:?}"
            );
            assert_eq!(why.metadata["idempotencyKey"], "retry-me");
            assert_eq!(why.metadata["actor"], "agent-5");
            assert_eq!(why.metadata["ledgerIndex"], first.ledger_index.to_string());
            assert_eq!(why.metadata["position"], first.position.to_string());
        }
        let after = net
            .wait_converged(Duration::from_secs(10))
            .await
            .expect("converged");
        assert_eq!(after, head, "a refused retry appends nothing");

        // The first token and the reissued one share one nonce: one redemption.
        // (The agent's one presentation is of the payload, so it presents
        // the reissued token too: the second call is a retry.)
        let mut c = net.client(5).expect("client");
        let hand_off = net
            .redeem_request(&first.token, &req.params_json)
            .expect("hand-off");
        c.redeem(hand_off.clone()).await.expect("redeem");
        let again = decide(&net, 5, req).await.expect("retry after redemption");
        let err = c
            .redeem(pb::RedeemRequest {
                token: again.token,
                ..hand_off
            })
            .await
            .expect_err("same nonce");
        assert_eq!(err.code(), Code::AlreadyExists, "{}", err.message());
        assert_eq!(Reason::of(&err), Some(Reason::NonceRedeemed), "{err:?}");
    })
    .await;
}

/// Params JCS cannot bind one to one (PROTOCOL 9.1) are refused by the
/// validator asked, naming the rule, and nothing reaches the ledger; other
/// spellings of numbers a double holds exactly decide like their RFC 8785
/// form, with the same params digest in the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn params_a_digest_cannot_bind_one_to_one_are_refused_and_exact_spellings_agree() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "params binding", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let with_params = |params: &str, key: &str| pb::DecideRequest {
            params_json: params.to_string(),
            ..transfer_by("agent-5", 0, key)
        };
        let head = net.status(1).await.expect("status").ledger_index;
        for (params, rule) in [
            (
                r#"{"amount": 40, "amount": 4000, "currency": "EUR", "to_account": "acct-supplier-7"}"#,
                r#"repeat the key "amount""#,
            ),
            (
                r#"{"amount": 9007199254740993, "currency": "EUR", "to_account": "acct-supplier-7"}"#,
                "integer 9007199254740993 is beyond +/-(2^53 - 1)",
            ),
            (
                r#"{"amount": 40, "rate": 0.10000000000000001, "currency": "EUR", "to_account": "acct-supplier-7"}"#,
                "number 0.10000000000000001 is not exactly a double: RFC 8785 makes it 0.1",
            ),
        ] {
            for via in [1u64, 4] {
                let mut c = net.client(via).expect("client");
                let s = tokio::time::timeout(CALL, c.decide(with_params(params, "bad-params")))
                    .await
                    .expect("answered in time")
                    .expect_err(params);
                assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
                let r = reason_of(&s).expect("reason");
                assert_eq!(r.known(), Some(Reason::InvalidRequest), "{s:?}");
                assert_eq!(r.metadata["field"], "params_json");
                assert!(s.message().contains(rule), "{params}: {s:?}");
            }
        }
        assert_eq!(
            net.status(1).await.expect("status").ledger_index,
            head,
            "nothing was appended"
        );

        // Numbers a double holds exactly are accepted, in any spelling, with
        // the params digest of their plain form: 1.0 is 1, 1e2 and 100.0
        // are 100, 4e1 is 40.
        let digest_of = |r: &pb::DecideReply| {
            Token::from_bytes(&r.token).expect("token").payload.params_digest
        };
        for (i, (plain, spellings)) in
            [("1", &["1.0"][..]), ("100", &["1e2", "100.0"][..]), ("40", &["4e1"][..])]
                .into_iter()
                .enumerate()
        {
            let params = |amount: &str| {
                format!(r#"{{"amount": {amount}, "currency": "EUR", "to_account": "acct-supplier-7"}}"#)
            };
            let want = permit_request(&net, 1, with_params(&params(plain), &format!("plain-{i}"))).await;
            for (j, spelled) in spellings.iter().enumerate() {
                let r = permit_request(
                    &net,
                    2 + j as u64,
                    with_params(&params(spelled), &format!("spelled-{i}-{j}")),
                )
                .await;
                assert_eq!(digest_of(&r), digest_of(&want), "{spelled} is {plain}");
            }
        }
    })
    .await;
}
