//! Amendment proposals and votes on five real `senatus node` processes:
//! `senatus amend propose` records a signed proposal only if every
//! validator admits it, each validator reviews it on its own and casts a
//! signed vote through Raft, and every validator's tally (rebuilt from its
//! own ledger, also after a restart) reaches the same outcome with the same
//! votes.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::*;
use senatus_proto::v1 as pb;
use senatus_testnet::RaftOverrides;

const TEST_BOUND: Duration = Duration::from_secs(180);
const VOTES_WITHIN: Duration = Duration::from_secs(30);

/// Runs `senatus ARGS` against `net`: its genesis is the one the public
/// API's TLS is pinned to (`SENATUS_GENESIS`).
async fn cli(net: &senatus_testnet::Testnet, args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    senatus_cli_for(net, args).await
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// An edit of a proposed policy directory.
type LayerEdit = Box<dyn Fn(&Path)>;

/// The proposal id `amend propose` printed.
fn proposal_id(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout);
    out.split_whitespace()
        .nth(1)
        .filter(|w| w.len() == 64)
        .unwrap_or_else(|| panic!("no proposal id in: {}", show(o)))
        .to_string()
}

async fn amend_status(net: &senatus_testnet::Testnet, id: u64) -> Vec<pb::ProposalView> {
    let mut c = net.client(id).expect("client");
    tokio::time::timeout(
        Duration::from_secs(10),
        c.amend_status(pb::AmendStatusRequest {
            proposal_id: Vec::new(),
        }),
    )
    .await
    .expect("AmendStatus answered in time")
    .expect("AmendStatus")
    .into_inner()
    .proposals
}

/// Waits until every running node reports proposal `pid` with the given
/// status and a number of votes in `votes`, all of them the same view;
/// returns it. A vote cast after the decision lands as "late" (validators
/// keep reviewing a decided proposal until it is sealed), so a node may be
/// one vote ahead of another for a moment: that is waited out, not failed.
async fn settled(
    net: &senatus_testnet::Testnet,
    pid: &str,
    status: &str,
    votes: std::ops::RangeInclusive<usize>,
) -> pb::ProposalView {
    let deadline = Instant::now() + VOTES_WITHIN;
    loop {
        let mut views = Vec::new();
        for id in net.running() {
            let v = amend_status(net, id)
                .await
                .into_iter()
                .find(|p| hex::encode(&p.id) == pid);
            views.push((id, v));
        }
        let first = views[0].1.clone();
        let all_done = views.iter().all(|(_, v)| {
            v.as_ref()
                .is_some_and(|p| p.status == status && votes.contains(&p.votes.len()))
                && *v == first
        });
        if all_done {
            return first.expect("view");
        }
        if Instant::now() > deadline {
            panic!(
                "proposal {pid} not {status} with {votes:?} votes, the same on every node, within {VOTES_WITHIN:?}: {views:#?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_are_admitted_reviewed_by_every_validator_and_tallied_identically() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "amendments", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let api = |id: u64| net.spec(id).expect("spec").api.clone();
        let genesis = tmp.path().join("net/genesis.json");
        let authority = tmp.path().join("net/authority.key");

        // 1. An edit of an immutable clause (its listed digest updated so
        //    the layer itself is valid): every validator rejects it, naming
        //    the clause.
        let bad = proposed(tmp.path(), "bad", |dir| {
            let clause = dir.join("policies/payments.blocklist.cedar");
            let mut text = std::fs::read(&clause).expect("clause");
            text.extend_from_slice(b"\n// loosened\n");
            std::fs::write(&clause, &text).expect("write");
            let old = senatus_genesis::policy::clause_digest(
                "payments.blocklist",
                &std::fs::read(
                    tmp.path()
                        .join("net/policy/policies/payments.blocklist.cedar"),
                )
                .expect("old clause"),
            );
            let new = senatus_genesis::policy::clause_digest("payments.blocklist", &text);
            let c = dir.join("constitution.toml");
            let t = std::fs::read_to_string(&c).expect("constitution");
            assert!(t.contains(&old.to_hex()));
            std::fs::write(&c, t.replace(&old.to_hex(), &new.to_hex())).expect("write");
        });
        let out = cli(&net, &[
            "amend",
            "propose",
            "--api",
            &api(2),
            "--policy",
            s(&bad),
            "--justification",
            "loosen the blocklist",
            "--key",
            s(&authority),
            "--genesis",
            s(&genesis),
        ])
        .await;
        assert!(out.status.success(), "propose bad: {}", show(&out));
        let bad_id = proposal_id(&out);
        let view = settled(&net, &bad_id, "rejected", 5..=5).await;
        assert_eq!(view.role, "authority");
        assert_eq!(view.proposed_version, 2);
        for v in &view.votes {
            assert_eq!(v.verdict, "reject", "{v:?}");
            assert_eq!(
                v.reasons,
                ["immutable-clause-changed:payments.blocklist"],
                "{v:?}"
            );
        }
        let voters: std::collections::BTreeSet<u64> = view.votes.iter().map(|v| v.voter).collect();
        assert_eq!(voters.len(), 5, "one vote per validator: {view:?}");
        assert!(view.approvers.is_empty());

        // 1b. A weakened threshold (below the floor: with n = 5 the layer
        //     is then invalid too), a lowered floor, and a policy that does
        //     not validate against its schema: each rejected by all five
        //     with its reason.
        let cases: [(&str, LayerEdit, &str); 3] = [
            (
                "threshold",
                Box::new(|dir: &Path| {
                    let c = dir.join("constitution.toml");
                    let t = std::fs::read_to_string(&c).expect("constitution");
                    std::fs::write(&c, t.replacen("\nthreshold = 3\n", "\nthreshold = 2\n", 1))
                        .expect("write");
                }),
                "layer-invalid",
            ),
            (
                "floor",
                Box::new(|dir: &Path| {
                    let c = dir.join("constitution.toml");
                    let t = std::fs::read_to_string(&c).expect("constitution");
                    std::fs::write(
                        &c,
                        t.replacen("\nthreshold_floor = 3\n", "\nthreshold_floor = 2\n", 1),
                    )
                    .expect("write");
                }),
                "floor-lowered",
            ),
            (
                "schema",
                Box::new(|dir: &Path| {
                    std::fs::write(
                        dir.join("policies/payments.bad.cedar"),
                        "permit (principal, action == Senatus::Action::\"payments.transfer\", resource)\nwhen { context.params.no_such_field > resource.no_such_limit };\n",
                    )
                    .expect("write");
                }),
                "layer-invalid",
            ),
        ];
        for (name, edit, code) in cases {
            let dir = proposed(tmp.path(), name, |d| edit(d));
            // The CLI refuses a layer that does not load; a proposer that
            // sends one anyway gets it reviewed and rejected by everyone.
            let id = propose_raw(&net, &dir, &authority).await;
            let view = settled(&net, &id, "rejected", 5..=5).await;
            for v in &view.votes {
                assert_eq!(v.verdict, "reject", "{name}: {v:?}");
                assert!(v.reasons.iter().any(|r| r == code), "{name}: wanted {code}: {v:?}");
            }
        }

        // 2. A proposer no genesis authorizes: refused on apply by every
        //    validator, nothing appended.
        let head_before = net
            .wait_converged(Duration::from_secs(10))
            .await
            .expect("converged");
        let other = tmp.path().join("other");
        let o = cli(&net, &["genesis", "init", "--out", s(&other)]).await;
        assert!(o.status.success(), "{}", show(&o));
        let good = proposed(tmp.path(), "good", |_| {});
        let out = cli(&net, &[
            "amend",
            "propose",
            "--api",
            &api(4),
            "--policy",
            s(&good),
            "--justification",
            "an outsider",
            "--key",
            s(&other.join("authority.key")),
        ])
        .await;
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("proposal not admitted") && err.contains("is not authorized"),
            "{err}"
        );
        let head_after = net
            .wait_converged(Duration::from_secs(10))
            .await
            .expect("converged");
        assert_eq!(
            head_after, head_before,
            "a refused proposal appends nothing"
        );

        // 3. A valid amendment, proposed by a validator: every validator
        //    approves; it passes with exactly the first three approvers.
        let out = cli(&net, &[
            "amend",
            "propose",
            "--api",
            &api(5),
            "--policy",
            s(&good),
            "--justification",
            "version 2 of the example policy",
            "--key",
            s(&tmp.path().join("net/node-3/identity.key")),
        ])
        .await;
        assert!(out.status.success(), "propose good: {}", show(&out));
        let good_id = proposal_id(&out);
        let view = settled(&net, &good_id, "passed", 3..=5).await;
        assert_eq!(view.role, "validator 3");
        assert_eq!(view.approvers.len(), 3, "{view:?}");
        let counted: Vec<u64> = view
            .votes
            .iter()
            .filter(|v| v.effect == "counted")
            .map(|v| v.voter)
            .collect();
        assert_eq!(counted, view.approvers, "the first three approvals pass it");
        assert!(
            view.votes.iter().all(|v| v.verdict == "approve"),
            "{view:?}"
        );
        assert_eq!(
            view.votes.iter().filter(|v| v.effect == "late").count(),
            view.votes.len() - 3,
            "every vote after the third is late: {view:?}"
        );

        // 4. Once sealed, a competitor on the old base is stale: refused
        //    on apply by every validator, nothing appended.
        let chain = chain_everywhere(&net, 2).await;
        let key =
            senatus_genesis::keys::SecretKey::read_authority(&authority).expect("authority key");
        let competitor = senatus_quorum::amend::Proposal {
            base_version: chain[0].seal.version,
            base_seal_digest: chain[0].seal.digest(),
            layer: senatus_genesis::PolicyLayer::load_dir(&good)
                .expect("layer")
                .canonical_bytes(),
            justification: "a competitor on the old base".into(),
            proposer: senatus_genesis::Key32(key.public()),
            created_at_ms: 1,
        }
        .sign(key.signing_key())
        .expect("sign");
        let mut c = net.client(1).expect("client");
        let err = c
            .propose(pb::ProposeRequest {
                signed_proposal: competitor.encode(),
            })
            .await
            .expect_err("stale competitor");
        assert_eq!(
            err.code(),
            tonic::Code::InvalidArgument,
            "{}",
            err.message()
        );
        assert!(
            err.message().contains("amends version 1"),
            "{}",
            err.message()
        );
        let proposals_on_ledger = ledger(&net, 1)
            .await
            .iter()
            .filter(|e| e.kind == 4)
            .count();
        assert_eq!(
            proposals_on_ledger, 5,
            "the stale competitor appended nothing"
        );

        // 5. The CLI shows it; a restarted validator rebuilds the same
        //    tally from its own ledger.
        let st = cli(&net, &["amend", "status", "--api", &api(3), &good_id]).await;
        assert!(st.status.success(), "{}", show(&st));
        let text = String::from_utf8_lossy(&st.stdout);
        assert!(text.contains("PASSED"), "{text}");
        assert!(text.contains("approvers: "), "{text}");
        let before = amend_status(&net, 2).await;
        net.stop(2).await.expect("stop");
        net.start(2).expect("start");
        net.wait_converged(Duration::from_secs(20))
            .await
            .expect("converged");
        assert_eq!(
            amend_status(&net, 2).await,
            before,
            "rebuilt from the ledger"
        );

        let unknown = cli(&net, &["amend", "status", "--api", &api(1), &"cd".repeat(32)]).await;
        assert_eq!(unknown.status.code(), Some(2), "{}", show(&unknown));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_down_during_the_vote_catches_up_by_snapshot_with_the_same_tally() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "amendment catch-up", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        // Snapshots every 50 entries, 10 logs kept: the returning node
        // cannot be fed from the log and must rebuild its tally from the
        // snapshot's ledger.
        let raft = RaftOverrides {
            snapshot_logs_since_last: Some(50),
            logs_kept_after_snapshot: Some(10),
            ..RaftOverrides::default()
        };
        let net = cluster(tmp.path(), raft).await;
        let leader = net
            .wait_leader(Duration::from_secs(10))
            .await
            .expect("leader");
        let down = other_than(&net, &[leader]);
        net.kill(down).expect("kill");

        // The other four vote; it passes with three of them.
        let good = proposed(tmp.path(), "good", |_| {});
        let id = propose_via(
            &net,
            tmp.path(),
            leader,
            &good,
            "while one validator is down",
        )
        .await;
        let view = settled(&net, &id, "passed", 3..=4).await;
        assert!(!view.votes.iter().any(|v| v.voter == down), "{view:?}");

        write_many(&net, leader, "after-the-vote", 120, 16).await;
        net.start(down).expect("restart");
        net.wait_converged(Duration::from_secs(30))
            .await
            .expect("converged");
        let log = net.last_run_log(down).expect("log");
        assert!(
            log.contains("installed snapshot"),
            "node {down} caught up without a snapshot; its log:\n{log}"
        );
        assert_eq!(
            amend_status(&net, down).await,
            amend_status(&net, leader).await,
            "the returning validator's tally, rebuilt from the snapshot"
        );
        // It verified the seal (it serves the same chain) and redeclares.
        let chain = chain_everywhere(&net, 2).await;
        assert_eq!(chain[1].seal.version.0, 2);
        wait_redeclared(&net, leader, |r| r.contains(&down)).await;
    })
    .await;
}

async fn decide(
    net: &senatus_testnet::Testnet,
    via: u64,
    amount: u64,
    key: &str,
) -> pb::DecideReply {
    let mut c = net.client(via).expect("client");
    let r = pb::DecideRequest {
        surface: "payments".into(),
        action: "transfer".into(),
        actor: "agent-1".into(),
        tenant: "acme".into(),
        params_json: serde_json::json!({"amount": amount, "currency": "EUR", "to_account": "acct-supplier-7"}).to_string(),
        context: Some(pb::AgentContext::default()),
        idempotency_key: key.into(),
        ..Default::default()
    };
    tokio::time::timeout(Duration::from_secs(20), c.decide(common::signed(net, r)))
        .await
        .expect("Decide answered in time")
        .unwrap_or_else(|s| panic!("Decide via {via}: {:?}: {}", s.code(), s.message()))
        .into_inner()
}

async fn seal_chain(net: &senatus_testnet::Testnet, id: u64) -> Vec<senatus_genesis::SignedSeal> {
    let mut c = net.client(id).expect("client");
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        c.get_seal_chain(pb::SealChainRequest {}),
    )
    .await
    .expect("answered")
    .expect("GetSealChain")
    .into_inner();
    r.seals_json
        .iter()
        .map(|j| serde_json::from_str(j).expect("SignedSeal json"))
        .collect()
}

/// Waits until every running node serves a seal chain of `len` seals and
/// all serve the same one.
async fn chain_everywhere(
    net: &senatus_testnet::Testnet,
    len: usize,
) -> Vec<senatus_genesis::SignedSeal> {
    let deadline = Instant::now() + VOTES_WITHIN;
    loop {
        let mut chains = Vec::new();
        for id in net.running() {
            chains.push(seal_chain(net, id).await);
        }
        if chains.iter().all(|c| c.len() == len) {
            for c in &chains {
                assert_eq!(c, &chains[0], "every validator serves the same chain");
            }
            return chains.swap_remove(0);
        }
        assert!(
            Instant::now() < deadline,
            "no chain of {len} seals everywhere: {chains:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passed_amendment_is_sealed_and_decides_on_every_validator_after_its_seal() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "amendment passage", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let api = |id: u64| net.spec(id).expect("spec").api.clone();
        let genesis =
            senatus_genesis::Genesis::load(&tmp.path().join("net/genesis.json")).expect("genesis");

        // Under version 1 acme may transfer at most 100,000 per transfer.
        let before = decide(&net, 1, 150_000, "amend-before").await;
        assert_eq!(
            (before.outcome.as_str(), before.policy_version),
            ("SILENCE", 1),
            "{before:?}"
        );

        // Version 2 raises the limit to 200,000.
        let v2 = proposed(tmp.path(), "v2", |dir| {
            let e = dir.join("entities.json");
            let text = std::fs::read_to_string(&e).expect("entities");
            assert!(text.contains("\"transfer_limit\": 100000,"));
            std::fs::write(
                &e,
                text.replacen(
                    "\"transfer_limit\": 100000,",
                    "\"transfer_limit\": 200000,",
                    1,
                ),
            )
            .expect("write");
        });
        let v2_digest = senatus_genesis::PolicyLayer::load_dir(&v2)
            .expect("v2 loads")
            .digest();
        let id = propose_via(&net, tmp.path(), 2, &v2, "raise acme's transfer limit").await;

        // Sealed: the same seal 1 on every validator, a plain Ed25519
        // signature under the genesis group key over its documented bytes.
        let chain = chain_everywhere(&net, 2).await;
        let seal1 = &chain[1];
        assert_eq!(seal1.seal.version.0, 2);
        assert_eq!(seal1.seal.policy_digest, v2_digest);
        assert_eq!(seal1.seal.prev_seal, chain[0].seal.digest());
        let group =
            ed25519_dalek::VerifyingKey::from_bytes(&genesis.body.group_key.0).expect("group key");
        group
            .verify_strict(
                &seal1.seal.signing_bytes(),
                &ed25519_dalek::Signature::from_bytes(&seal1.signature.expect("signed").0),
            )
            .expect("seal 1 verifies as plain Ed25519");
        senatus_genesis::seal::verify_chain(&genesis, &chain).expect("chain verifies from genesis");
        // The operator's view of the same chain, verified back to genesis.
        let out = cli(
            &net,
            &[
                "seal",
                "chain",
                "--api",
                &api(4),
                "--genesis",
                s(&tmp.path().join("net/genesis.json")),
            ],
        )
        .await;
        assert!(out.status.success(), "seal chain: {}", show(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("(2 seals) verified from genesis"), "{text}");
        assert!(text.contains("seal 1: version 2 epoch 0"), "{text}");
        assert!(text.contains("verifies under the group key"), "{text}");
        assert!(text.contains("4 of 5 needed"), "{text}");

        // After the seal every validator decides under version 2.
        let mut permits = Vec::new();
        for via in 1..=5u64 {
            let r = decide(&net, via, 150_000, &format!("amend-after-{via}")).await;
            assert_eq!(
                (r.outcome.as_str(), r.policy_version),
                ("PERMIT", 2),
                "via {via}: {r:?}"
            );
            assert_eq!(r.reasons, ["payments.transfer-within-limit"]);
            permits.push(r);
        }
        // A broker holding genesis and the chain verifies both the new
        // permit and the old receipt, each for what it was.
        let broker = senatus_quorum::broker::Broker::new(&genesis, &chain).expect("broker");
        let t2 = senatus_quorum::token::Token::from_bytes(&permits[0].token).expect("token");
        let v = broker.verify_receipt_token(t2).expect("v2 permit verifies");
        assert_eq!(v.token.payload.policy_version.0, 2);
        let t1 = senatus_quorum::token::Token::from_bytes(&before.token).expect("token");
        let v = broker
            .verify_receipt_token(t1)
            .expect("v1 receipt verifies");
        assert_eq!(v.token.payload.policy_version.0, 1);

        // An auditor replays the v2 permit with genesis alone: version 2's
        // layer comes from the verified ledger, and the rebuilt token is the
        // issued one, byte for byte.
        let t2 = senatus_quorum::token::Token::from_bytes(&permits[0].token).expect("token");
        let out = cli(
            &net,
            &[
                "replay",
                &hex::encode(&permits[0].decision_id),
                "--key",
                s(&net.client_key_path("auditor-1")),
                "--genesis",
                s(&tmp.path().join("net/genesis.json")),
                "--api",
                &api(3),
                "--token",
                &t2.to_text(),
                "--json",
            ],
        )
        .await;
        assert!(out.status.success(), "replay of v2: {}", show(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(v["policy_version"], 2, "{v}");
        assert_eq!(v["issued_token"]["identical"], true, "{v}");

        // Every validator redeclares, and keeps a copy of what it enforces.
        let entries = wait_redeclared(&net, 1, |r| r.len() == 5).await;
        assert_eq!(
            entries.iter().filter(|e| e.kind == 6).count(),
            1,
            "one seal entry"
        );
        for n in 1..=5 {
            let copy = tmp.path().join(format!("net/node-{n}/data/sealed/v2"));
            let layer = senatus_genesis::PolicyLayer::load_dir(&copy).expect("sealed copy loads");
            assert_eq!(layer.digest(), v2_digest, "node {n}'s copy");
        }
        let st = amend_status(&net, 4).await;
        let p = st
            .iter()
            .find(|p| hex::encode(&p.id) == id)
            .expect("proposal");
        assert_eq!(p.status, "passed");
        assert_eq!(p.approvers.len(), 3);

        // A full restart keeps version 2: it is derived from the ledger.
        for n in net.ids() {
            net.stop(n).await.expect("stop");
        }
        for n in net.ids() {
            net.start(n).expect("start");
        }
        net.wait_converged(Duration::from_secs(30))
            .await
            .expect("converged");
        assert_eq!(chain_everywhere(&net, 2).await, chain);
        let r = decide(&net, 3, 150_000, "amend-after-restart").await;
        assert_eq!(
            (r.outcome.as_str(), r.policy_version),
            ("PERMIT", 2),
            "{r:?}"
        );
        // Proposal, votes, seal and redeclarations replay through `apply`
        // alone to the state digest every validator reports.
        assert_state_replays(&net).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_validators_down_three_approvals_pass_it_and_the_seal_waits_for_a_fourth_attestation()
 {
    let _serial = serial().await;
    bounded(TEST_BOUND, "three approvals", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let leader = net
            .wait_leader(Duration::from_secs(10))
            .await
            .expect("leader");
        let a = other_than(&net, &[leader]);
        let b = other_than(&net, &[leader, a]);
        net.kill(a).expect("kill");
        net.kill(b).expect("kill");
        net.wait_leader(Duration::from_secs(10))
            .await
            .expect("leader among three");

        let v2 = proposed(tmp.path(), "v2", |_| {});
        let id = propose_via(&net, tmp.path(), leader, &v2, "three validators decide").await;
        let view = settled(&net, &id, "passed", 3..=3).await;
        let mut approvers = view.approvers.clone();
        approvers.sort_unstable();
        let mut running = net.running();
        running.sort_unstable();
        assert_eq!(
            approvers, running,
            "exactly the three running validators approved"
        );

        // Three approvals pass it and could threshold-sign, but the seal's
        // head needs four of five attestations (PROTOCOL 4.1): the leader
        // tries, says why, and seals nothing.
        let now = net
            .wait_leader(Duration::from_secs(10))
            .await
            .expect("leader");
        logged(
            &net,
            now,
            &[
                "seal head not attested by a quorum",
                "3 attestations, 4 of the 5 members needed",
            ],
        )
        .await;
        for n in net.running() {
            let entries = ledger(&net, n).await;
            assert!(
                entries.iter().all(|e| e.kind != 6),
                "node {n} recorded a seal with three attestations"
            );
        }

        // A fourth validator returns, catches up and attests: sealed.
        net.start(a).expect("start");
        net.wait_converged(Duration::from_secs(30))
            .await
            .expect("converged");
        let chain = chain_everywhere(&net, 2).await;
        assert_eq!(chain[1].seal.version.0, 2);
        let attested = chain[1].attested.as_ref().expect("attested");
        assert!(attested.by.len() >= 4, "{attested:?}");
        assert!(
            attested.by.iter().any(|x| x.validator.get() == a),
            "the returning validator is among the attesters: {attested:?}"
        );
        let genesis =
            senatus_genesis::Genesis::load(&tmp.path().join("net/genesis.json")).expect("genesis");
        senatus_quorum::broker::Broker::new(&genesis, &chain).expect("a broker takes the chain");

        // The fifth returns too, catches up, verifies the seal, redeclares.
        net.start(b).expect("start");
        net.wait_converged(Duration::from_secs(30))
            .await
            .expect("converged");
        assert_eq!(chain_everywhere(&net, 2).await, chain);
        wait_redeclared(&net, leader, |r| r.len() == 5).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_competing_proposals_for_one_version_exactly_one_passes() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "competing proposals", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let api = |id: u64| net.spec(id).expect("spec").api.clone();
        let a = proposed(tmp.path(), "a", |_| {});
        let b = proposed(tmp.path(), "b", |dir| {
            let e = dir.join("entities.json");
            let text = std::fs::read_to_string(&e).expect("entities");
            std::fs::write(
                &e,
                text.replacen(
                    "\"transfer_limit\": 100000,",
                    "\"transfer_limit\": 90000,",
                    1,
                ),
            )
            .expect("write");
        });
        let authority = tmp.path().join("net/authority.key");
        let (pa, pb_) = (s(&a).to_string(), s(&b).to_string());
        let (api1, api3, key) = (api(1), api(3), s(&authority).to_string());
        // Both at once, through different validators.
        let args_a = [
            "amend",
            "propose",
            "--api",
            &api1,
            "--policy",
            &pa,
            "--justification",
            "a",
            "--key",
            &key,
        ];
        let args_b = [
            "amend",
            "propose",
            "--api",
            &api3,
            "--policy",
            &pb_,
            "--justification",
            "b",
            "--key",
            &key,
        ];
        let (oa, ob) = tokio::join!(cli(&net, &args_a), cli(&net, &args_b));
        let mut ids = Vec::new();
        for o in [&oa, &ob] {
            if o.status.success() {
                ids.push(proposal_id(o));
            } else {
                // Only if the other one already passed (the base is
                // closed) or was already sealed (this one is stale).
                let err = String::from_utf8_lossy(&o.stderr);
                assert!(
                    err.contains("already passed on this base") || err.contains("amends version 1"),
                    "{}",
                    show(o)
                );
            }
        }
        let chain = chain_everywhere(&net, 2).await;
        let views = amend_status(&net, 2).await;
        let passed: Vec<&pb::ProposalView> =
            views.iter().filter(|p| p.status == "passed").collect();
        assert_eq!(passed.len(), 1, "exactly one passes: {views:#?}");
        for p in &views {
            assert!(ids.contains(&hex::encode(&p.id)));
            if p.status != "passed" {
                assert_eq!(p.status, "superseded", "{p:?}");
            }
        }
        assert_eq!(
            chain[1].seal.policy_digest.0.to_vec(),
            passed[0].layer_digest,
            "the one sealed is the one that passed"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_approvals_and_three_rejections_leave_the_sealed_policy_standing() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "rejected amendment", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        with_fault(&net, &[1, 2, 3], "vote-reject").await;
        let v2 = proposed(tmp.path(), "v2", |dir| {
            let e = dir.join("entities.json");
            let text = std::fs::read_to_string(&e).expect("entities");
            std::fs::write(
                &e,
                text.replacen(
                    "\"transfer_limit\": 100000,",
                    "\"transfer_limit\": 200000,",
                    1,
                ),
            )
            .expect("write");
        });
        let id = propose_via(&net, tmp.path(), 4, &v2, "three validators disagree").await;
        let view = settled(&net, &id, "rejected", 5..=5).await;
        let approvals: Vec<u64> = view
            .votes
            .iter()
            .filter(|v| v.verdict == "approve")
            .map(|v| v.voter)
            .collect();
        let mut rejections: Vec<u64> = view
            .votes
            .iter()
            .filter(|v| v.verdict == "reject")
            .map(|v| v.voter)
            .collect();
        rejections.sort_unstable();
        assert_eq!(approvals.len(), 2, "{view:?}");
        assert_eq!(rejections, [1, 2, 3], "{view:?}");
        assert!(view.approvers.is_empty());
        // The last sealed state stands: no seal, version 1 still decides.
        assert_eq!(seal_chain(&net, 4).await.len(), 1);
        let r = decide(&net, 5, 150_000, "rejected-amendment").await;
        assert_eq!(
            (r.outcome.as_str(), r.policy_version),
            ("SILENCE", 1),
            "{r:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_without_t_votes_expires_at_its_deadline() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "expired amendment", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        with_fault(&net, &[1, 2, 3], "vote-abstain").await;
        let v2 = proposed(tmp.path(), "v2", |_| {});
        let id = propose_via(&net, tmp.path(), 4, &v2, "three validators stay silent").await;
        let open = settled(&net, &id, "open", 2..=2).await;
        // The example constitution's deadline: 1000 ledger entries.
        let leader = net
            .wait_leader(Duration::from_secs(10))
            .await
            .expect("leader");
        let deadline = open.ledger_index + 1000;
        write_many(&net, leader, "towards-the-deadline", 1000, 32).await;
        let view = settled(&net, &id, "expired", 2..=2).await;
        assert!(
            view.decided_at > deadline,
            "expired only past index {deadline}: {view:?}"
        );
        assert_eq!(seal_chain(&net, 4).await.len(), 1, "nothing sealed");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_mid_vote_loses_no_vote_and_seals_once() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "leader killed mid-vote", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let leader = net
            .wait_leader(Duration::from_secs(10))
            .await
            .expect("leader");
        let via = other_than(&net, &[leader]);
        let v2 = proposed(tmp.path(), "v2", |_| {});
        let id = propose_via(
            &net,
            tmp.path(),
            via,
            &v2,
            "the leader dies during the vote",
        )
        .await;
        // Kill the leader as soon as the proposal is on the ledger, while
        // the votes are being cast.
        net.kill(leader).expect("kill leader");
        net.wait_leader(Duration::from_secs(10))
            .await
            .expect("new leader");
        chain_everywhere(&net, 2).await;
        net.start(leader).expect("restart");
        net.wait_converged(Duration::from_secs(30))
            .await
            .expect("converged");
        let chain = chain_everywhere(&net, 2).await;
        assert_eq!(chain.len(), 2);

        let entries = ledger(&net, via).await;
        assert_eq!(
            entries.iter().filter(|e| e.kind == 6).count(),
            1,
            "exactly one seal"
        );
        assert_eq!(
            entries.iter().filter(|e| e.kind == 4).count(),
            1,
            "one proposal"
        );
        let views: Vec<Vec<pb::ProposalView>> = {
            let mut v = Vec::new();
            for n in net.ids() {
                v.push(amend_status(&net, n).await);
            }
            v
        };
        for v in &views {
            assert_eq!(v, &views[0], "every validator reached the same outcome");
        }
        let p = views[0]
            .iter()
            .find(|p| hex::encode(&p.id) == id)
            .expect("proposal");
        assert_eq!(p.status, "passed");
        let mut voters: Vec<u64> = p.votes.iter().map(|v| v.voter).collect();
        let n = voters.len();
        voters.sort_unstable();
        voters.dedup();
        assert_eq!(voters.len(), n, "no voter counted twice: {p:?}");
        assert!(n >= 3, "{p:?}");
        // Every vote on the ledger is in the tally: none was lost.
        assert_eq!(entries.iter().filter(|e| e.kind == 5).count(), n);
    })
    .await;
}

/// The files of a policy directory (`policies/<id>.cedar` and the three
/// fixed files), as the layer's canonical bytes would carry them.
fn layer_files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let e = e.expect("entry");
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().expect("type").is_dir() {
            for f in std::fs::read_dir(e.path()).expect("read_dir") {
                let f = f.expect("entry");
                files.insert(
                    format!("{name}/{}", f.file_name().to_string_lossy()),
                    std::fs::read(f.path()).expect("read"),
                );
            }
        } else {
            files.insert(name, std::fs::read(e.path()).expect("read"));
        }
    }
    files
}

/// Proposes the directory's files as they are, valid or not (PROTOCOL 2
/// canonical layer bytes), on the active seal, signed by the authority.
async fn propose_raw(net: &senatus_testnet::Testnet, dir: &Path, authority: &Path) -> String {
    let files = layer_files(dir);
    let mut e = senatus_genesis::codec::Encoder::new("policy-layer", 1);
    e.count(files.len());
    for (path, content) in &files {
        e.str(path).bytes(content);
    }
    let chain = seal_chain(net, 1).await;
    let active = &chain.last().expect("seal 0").seal;
    let key = senatus_genesis::keys::SecretKey::read_authority(authority).expect("authority key");
    let signed = senatus_quorum::amend::Proposal {
        base_version: active.version,
        base_seal_digest: active.digest(),
        layer: e.finish(),
        justification: "sent as is".into(),
        proposer: senatus_genesis::Key32(key.public()),
        created_at_ms: 7,
    }
    .sign(key.signing_key())
    .expect("sign");
    let id = hex::encode(signed.id().0.0);
    let mut c = net.client(1).expect("client");
    c.propose(pb::ProposeRequest {
        signed_proposal: signed.encode(),
    })
    .await
    .unwrap_or_else(|s| panic!("propose: {:?}: {}", s.code(), s.message()));
    id
}

/// Node `via`'s whole ledger.
async fn ledger(net: &senatus_testnet::Testnet, via: u64) -> Vec<pb::LedgerEntry> {
    let mut c = net.client(via).expect("client");
    c.get_ledger(pb::GetLedgerRequest {
        from: 1,
        to: u64::MAX,
        limit: 0,
        auth: Some(net.call_auth(
            &net.client_key("auditor-1").expect("auditor key"),
            "GetLedger",
            &senatus_quorum::auth::get_ledger_body(1, u64::MAX, 0),
        )),
    })
    .await
    .expect("GetLedger")
    .into_inner()
    .entries
}

/// Waits (bounded) until the validators whose Redeclaration entries are on
/// `via`'s ledger satisfy `done`; returns that ledger.
async fn wait_redeclared(
    net: &senatus_testnet::Testnet,
    via: u64,
    done: impl Fn(&std::collections::BTreeSet<u64>) -> bool,
) -> Vec<pb::LedgerEntry> {
    let deadline = Instant::now() + VOTES_WITHIN;
    loop {
        let entries = ledger(net, via).await;
        // redeclaration: tag (25 bytes), then u64 node (PROTOCOL 16.9).
        let redeclared: std::collections::BTreeSet<u64> = entries
            .iter()
            .filter(|e| e.kind == 7)
            .map(|e| u64::from_be_bytes(e.payload[25..33].try_into().expect("node id")))
            .collect();
        if done(&redeclared) {
            return entries;
        }
        assert!(
            Instant::now() < deadline,
            "redeclared so far: {redeclared:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// FROST-signs `message` as the validators `signers` could: with three,
/// their real key shares (read from their node directories) make a real
/// signature under the group key. Two cannot: FROST refuses fewer than
/// the threshold, and their shares alone do not interpolate the group
/// secret, so the best two colluding validators can produce is a signature
/// under a key they hold between them (here a 2-of-2 FROST key of their
/// own).
fn frost_sign(tmp: &Path, signers: &[u64], message: &[u8]) -> senatus_genesis::Sig64 {
    use frost_ed25519 as frost;
    let mut rng = rand::rngs::OsRng;
    let shares: Vec<frost::keys::KeyPackage> = if signers.len() >= 3 {
        signers
            .iter()
            .map(|id| {
                let path = tmp.join(format!("net/node-{id}/frost-share.key"));
                senatus_genesis::keys::FrostShare::read(&path)
                    .expect("frost share")
                    .key_package
            })
            .collect()
    } else {
        let (secret, _) =
            frost::keys::generate_with_dealer(2, 2, frost::keys::IdentifierList::Default, rng)
                .expect("their own key");
        secret
            .into_values()
            .map(|s| frost::keys::KeyPackage::try_from(s).expect("key package"))
            .collect()
    };
    let mut nonces = std::collections::BTreeMap::new();
    let mut commitments = std::collections::BTreeMap::new();
    for kp in &shares {
        let (n, c) = frost::round1::commit(kp.signing_share(), &mut rng);
        nonces.insert(*kp.identifier(), n);
        commitments.insert(*kp.identifier(), c);
    }
    let package = frost::SigningPackage::new(commitments, message);
    let mut sig_shares = std::collections::BTreeMap::new();
    for kp in &shares {
        let s = frost::round2::sign(&package, &nonces[kp.identifier()], kp).expect("share");
        sig_shares.insert(*kp.identifier(), s);
    }
    let verifying: std::collections::BTreeMap<_, _> = shares
        .iter()
        .map(|kp| (*kp.identifier(), *kp.verifying_share()))
        .collect();
    let pubkeys = frost::keys::PublicKeyPackage::new(
        verifying,
        *shares[0].verifying_key(),
        Some(*shares[0].min_signers()),
    );
    let sig = frost::aggregate(&package, &sig_shares, &pubkeys).expect("aggregate");
    let bytes: [u8; 64] = sig
        .serialize()
        .expect("serialize")
        .try_into()
        .expect("64 bytes");
    senatus_genesis::Sig64(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seal_signed_by_two_or_over_another_digest_is_refused_by_nodes_and_broker() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "forged seals", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        // Three validators refuse to sign anything: the amendment passes
        // with five approvals, but only two validators would sign its seal.
        with_fault(&net, &[1, 2, 3], "refuse-sign").await;
        let v2 = proposed(tmp.path(), "v2", |_| {});
        let id = propose_via(&net, tmp.path(), 4, &v2, "sealed by too few").await;
        let view = settled(&net, &id, "passed", 5..=5).await;
        let genesis =
            senatus_genesis::Genesis::load(&tmp.path().join("net/genesis.json")).expect("genesis");
        let zero = seal_chain(&net, 4).await.remove(0);
        let next = senatus_genesis::Seal {
            version: senatus_genesis::PolicyVersion(2),
            policy_digest: digest(&view.layer_digest),
            prev_seal: zero.seal.digest(),
            ..zero.seal.clone()
        };
        let other = senatus_genesis::Seal {
            policy_digest: senatus_genesis::codec::sha3(b"a layer nobody proposed"),
            ..next.clone()
        };
        let proposal = senatus_quorum::amend::ProposalId(digest(&hex::decode(&id).expect("hex")));
        let forgeries = [
            (
                "two validators, under a key of their own",
                next.digest(),
                frost_sign(tmp.path(), &[4, 5], &next.signing_bytes()),
                "signature does not verify under group key",
            ),
            (
                "three real shares over another digest",
                other.digest(),
                frost_sign(tmp.path(), &[1, 4, 5], &other.signing_bytes()),
                "this validator's next seal is",
            ),
            (
                "the right digest, signed over another seal",
                next.digest(),
                frost_sign(tmp.path(), &[1, 4, 5], &other.signing_bytes()),
                "signature does not verify under group key",
            ),
        ];
        let leader = net
            .wait_leader(Duration::from_secs(10))
            .await
            .expect("leader");
        // A validator (not the leader) forwards each forgery to the leader.
        // Seal entries are appended only by the leader itself, so the peer
        // port refuses them from anyone else before they reach the log.
        // (A Byzantine leader could still append one; every validator then
        // refuses it on apply with `why`: the unit tests of node/src/amend.rs
        // feed exactly these forgeries to `apply`.)
        let mut peer = peer_client(&net, leader, other_than(&net, &[leader])).await;
        for (what, seal_digest, signature, _why) in &forgeries {
            let entry = senatus_node::amend::SealEntry {
                proposal,
                seal_digest: *seal_digest,
                signature: *signature,
                attested: senatus_genesis::seal::SealAttestations::new(
                    view.decided_at,
                    senatus_genesis::Digest([0; 32]),
                    [],
                ),
            };
            let r = peer
                .forward_write(pb::WriteCommand {
                    kind: 6,
                    payload: entry.encode(),
                })
                .await;
            let status = r.expect_err(what);
            assert_eq!(
                status.code(),
                tonic::Code::PermissionDenied,
                "{what}: {status:?}"
            );
            assert!(
                status
                    .message()
                    .contains("Seal entries are appended only by the leader itself"),
                "{what}: {status:?}"
            );

            // The broker, holding only genesis and the chain, refuses a seal
            // whose signature is not t validators' over that seal. (Three
            // real shares over another seal do verify as that seal: t
            // colluding validators are the threshold by definition; the
            // nodes refuse it because no passed amendment makes it.)
            if *seal_digest == next.digest() {
                let forged = senatus_genesis::SignedSeal {
                    seal: next.clone(),
                    signature: Some(*signature),
                    attested: None,
                };
                let err = senatus_quorum::broker::Broker::new(&genesis, &[zero.clone(), forged])
                    .expect_err(what);
                assert!(err.to_string().contains("does not verify"), "{what}: {err}");
            }
        }
        // Nothing was sealed anywhere: no Seal entry, seal 0 still active.
        assert_eq!(chain_everywhere(&net, 1).await.len(), 1);
        for n in net.ids() {
            let entries = ledger(&net, n).await;
            assert!(
                entries.iter().all(|e| e.kind != 6),
                "node {n} recorded a seal"
            );
        }

        // A third honest signer returns: the real seal is made and taken.
        with_fault(&net, &[1], "none").await;
        let chain = chain_everywhere(&net, 2).await;
        assert_eq!(chain[1].seal, next, "the seal every validator computed");
    })
    .await;
}

/// A leader that forked the log (PROTOCOL 21.6) and had version 2 pass on
/// both branches, at the same index with different entries, wants a seal
/// for each. The test plays the leader with its real TLS and identity
/// keys: two followers run the real branch (the processes the test asks);
/// the other two stand for the followers of the other branch, whose
/// identity keys and FROST shares sign there what honest validators of
/// that branch would. The other branch's seal gets the threshold signature
/// (the leader and those two) and three attestations; the fourth it needs
/// is a real-branch validator's, which refuses (PROTOCOL 4.1), and so do
/// signers shown fewer than four: no broker takes that seal. The real
/// branch's seal, attested by four or five, is the one every validator and
/// broker holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amendment_passed_on_two_branches_of_a_fork_is_sealed_on_at_most_one() {
    use senatus_genesis::seal::{HeadAttestation, SealAttestations};
    use senatus_proto::reason::Reason;
    let _serial = serial().await;
    bounded(TEST_BOUND, "two branches, one seal", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        // Keep the real seal back while the liar works: three validators
        // refuse to give signature shares (attesting is not signing).
        with_fault(&net, &[1, 2, 3], "refuse-sign").await;
        let v2 = proposed(tmp.path(), "v2", |_| {});
        let id = propose_via(&net, tmp.path(), 1, &v2, "the real branch").await;
        let view = settled(&net, &id, "passed", 3..=5).await;
        let proposal = senatus_quorum::amend::ProposalId(digest(&hex::decode(&id).expect("hex")));
        let passed_at = view.decided_at;
        let head_hash = ledger(&net, 1)
            .await
            .iter()
            .find(|e| e.index == passed_at)
            .map(|e| digest(&e.hash))
            .expect("the entry the amendment passed at");
        let genesis =
            senatus_genesis::Genesis::load(&tmp.path().join("net/genesis.json")).expect("genesis");
        let zero = seal_chain(&net, 1).await.remove(0);
        let real = senatus_genesis::Seal {
            version: senatus_genesis::PolicyVersion(2),
            policy_digest: digest(&view.layer_digest),
            prev_seal: zero.seal.digest(),
            ..zero.seal.clone()
        };
        let other = senatus_genesis::Seal {
            policy_digest: senatus_genesis::codec::sha3(b"the layer passed on the other branch"),
            ..real.clone()
        };
        let branch_hash = senatus_genesis::codec::sha3(b"the other branch's entry at that index");
        let liar = net
            .wait_leader(Duration::from_secs(10))
            .await
            .expect("leader");
        let followers: Vec<u64> = net.ids().into_iter().filter(|i| *i != liar).collect();
        let (real_side, other_side) = (&followers[..2], &followers[2..]);
        let branch_signers = [other_side[0], other_side[1], liar];
        let ask =
            |seal_digest: senatus_genesis::Digest, index: u64, hash: senatus_genesis::Digest| {
                pb::AttestSealRequest {
                    from: liar,
                    proposal_id: proposal.0.0.to_vec(),
                    seal_digest: seal_digest.0.to_vec(),
                    ledger_index: index,
                    entry_hash: hash.0.to_vec(),
                }
            };

        // The liar asks validators 1 and 2 of the real branch to attest.
        for &target in real_side {
            let mut c = peer_client(&net, target, liar).await;
            let counted = refusals(&net, target, liar, Reason::PeerLogConflict).await;
            // The other branch's seal at the real head: not the seal it computes.
            let s = c
                .attest_seal(ask(other.digest(), passed_at, head_hash))
                .await
                .expect_err("another seal");
            assert_eq!(Reason::of(&s), Some(Reason::SigningRefused), "{s:?}");
            assert!(s.message().contains("it computes seal"), "{s:?}");
            // The real seal over the other branch's entry, or another index:
            // not its head; logged and counted against the liar.
            for (index, hash, needle) in [
                (
                    passed_at,
                    branch_hash,
                    "not ".to_string() + &branch_hash.to_string(),
                ),
                (
                    passed_at + 1,
                    head_hash,
                    format!("passed the amendment at ledger index {passed_at}"),
                ),
            ] {
                let s = c
                    .attest_seal(ask(real.digest(), index, hash))
                    .await
                    .expect_err("another head");
                assert_eq!(Reason::of(&s), Some(Reason::PeerLogConflict), "{s:?}");
                assert!(
                    s.message()
                        .contains(&format!("AttestSeal from validator {liar}"))
                        && s.message().contains(&needle),
                    "{s:?}"
                );
            }
            assert_eq!(
                refusals(&net, target, liar, Reason::PeerLogConflict).await,
                counted + 2
            );
            // Malformed, and claiming to be someone else: refused as such.
            let mut short = ask(real.digest(), passed_at, head_hash);
            short.entry_hash.pop();
            let s = c.attest_seal(short).await.expect_err("31-byte hash");
            assert_eq!(s.code(), tonic::Code::InvalidArgument, "{s:?}");
            assert!(s.message().contains("entry_hash is 31 bytes"), "{s:?}");
            let mut posing = ask(real.digest(), passed_at, head_hash);
            posing.from = other_side[0];
            let s = c.attest_seal(posing).await.expect_err("posing as 3");
            assert_eq!(Reason::of(&s), Some(Reason::PeerIdentityMismatch), "{s:?}");
        }
        // The leader asks a real-branch approver for its seal share with a
        // head three attested (the threshold, not the quorum), then with
        // four signatures over the other branch's entry: refused both ways.
        let mut c = peer_client(&net, real_side[0], liar).await;
        let request = sign_request_as(&mut c, liar, real.signing_bytes()).await;
        // Attestations go on the wire ascending by validator, as a seal
        // carries them.
        let sign = |hash: senatus_genesis::Digest, ids: &[u64]| pb::SignSealRequest {
            from: liar,
            proposal_id: proposal.0.0.to_vec(),
            request: request.to_bytes(),
            ledger_index: passed_at,
            entry_hash: hash.0.to_vec(),
            attestations: std::collections::BTreeSet::from_iter(ids.iter().copied())
                .iter()
                .map(|&i| {
                    let a = HeadAttestation::sign(
                        senatus_genesis::NodeId::new(i).expect("id"),
                        &identity_key(&net, i),
                        &real.digest(),
                        passed_at,
                        &hash,
                    );
                    pb::HeadAttestation {
                        validator: i,
                        signature: a.signature.0.to_vec(),
                    }
                })
                .collect(),
        };
        let s = c
            .sign_seal(sign(head_hash, &branch_signers))
            .await
            .expect_err("three attestations");
        assert_eq!(Reason::of(&s), Some(Reason::SigningRefused), "{s:?}");
        assert!(
            s.message()
                .contains("3 attestations, 4 of the 5 members needed"),
            "{s:?}"
        );
        let four = [branch_signers.as_slice(), &real_side[1..]].concat();
        let s = c
            .sign_seal(sign(branch_hash, &four))
            .await
            .expect_err("another branch's head");
        assert_eq!(Reason::of(&s), Some(Reason::PeerLogConflict), "{s:?}");
        assert!(s.message().contains(&branch_hash.to_string()), "{s:?}");

        // The truth is what any member gets: a real-branch validator's
        // attestation of the real seal over the real head.
        let honest = peer_client(&net, real_side[0], liar)
            .await
            .attest_seal(ask(real.digest(), passed_at, head_hash))
            .await
            .expect("an honest attestation")
            .into_inner()
            .signature;
        let honest = HeadAttestation {
            validator: senatus_genesis::NodeId::new(real_side[0]).expect("id"),
            signature: senatus_genesis::Sig64(honest.try_into().expect("64 bytes")),
        };

        // The best the liar can assemble for the other branch: the
        // threshold signature of its signers and three attestations.
        let attest = |ids: &[u64], seal: &senatus_genesis::Seal, hash| {
            ids.iter()
                .map(|&i| {
                    HeadAttestation::sign(
                        senatus_genesis::NodeId::new(i).expect("id"),
                        &identity_key(&net, i),
                        &seal.digest(),
                        passed_at,
                        &hash,
                    )
                })
                .collect::<Vec<_>>()
        };
        let branch_seal = |by: Vec<HeadAttestation>| senatus_genesis::SignedSeal {
            seal: other.clone(),
            signature: Some(frost_sign(
                tmp.path(),
                &branch_signers,
                &other.signing_bytes(),
            )),
            attested: Some(SealAttestations::new(passed_at, branch_hash, by)),
        };
        let tries = [
            (
                "three attestations",
                attest(&branch_signers, &other, branch_hash),
                "3 attestations, 4 of the 5 members needed".to_string(),
            ),
            (
                "a fourth forged with the liar's key",
                attest(&branch_signers, &other, branch_hash)
                    .into_iter()
                    .chain([HeadAttestation {
                        validator: senatus_genesis::NodeId::new(real_side[1]).expect("id"),
                        ..attest(&[liar], &other, branch_hash)[0]
                    }])
                    .collect(),
                format!("attestation by validator {} does not verify", real_side[1]),
            ),
            (
                "a fourth copied from the real branch",
                attest(&branch_signers, &other, branch_hash)
                    .into_iter()
                    .chain([honest])
                    .collect(),
                format!("attestation by validator {} does not verify", real_side[0]),
            ),
        ];
        for (what, by, needle) in tries {
            let err =
                senatus_quorum::broker::Broker::new(&genesis, &[zero.clone(), branch_seal(by)])
                    .expect_err(what);
            assert!(err.to_string().contains(&needle), "{what}: {err}");
        }

        // The real branch's seal: made once signers sign again, attested by
        // at least four, the same on every validator, taken by a broker.
        with_fault(&net, &[1, 2, 3], "none").await;
        let chain = chain_everywhere(&net, 2).await;
        assert_eq!(chain[1].seal, real);
        let attested = chain[1].attested.as_ref().expect("attested");
        assert_eq!(
            (attested.ledger_index, attested.entry_hash),
            (passed_at, head_hash)
        );
        assert!(attested.by.len() >= 4, "{attested:?}");
        senatus_quorum::broker::Broker::new(&genesis, &chain).expect("a broker takes it");
    })
    .await;
}
