//! Per-agent and per-tenant decision and redemption quotas
//! (docs/PROTOCOL.md 10.4, I12),
//! on a real 5-node testnet: a constitution amended to small quotas makes
//! the leader refuse the call over a quota with `QUOTA_EXCEEDED`, naming
//! the quota, through any validator, before anything is written; a retry
//! of a decided request still answers; other agents and tenants decide on.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use senatus_node::ledger::EntryKind;
use senatus_proto::reason::{Reason, reason_of};
use senatus_proto::v1 as pb;
use senatus_testnet::{RaftOverrides, Testnet};
use tonic::Code;

const TEST_BOUND: Duration = Duration::from_secs(180);
/// Longest wait for an amendment to be sealed and redeclared everywhere.
const SEALED_WITHIN: Duration = Duration::from_secs(90);

/// The quotas the amendment seals: a window longer than the test, so
/// every count below falls in one window.
const QUOTAS: &str = "\n[quotas]\nwindow_ms = 600000\nagent_decisions_max = 3\ntenant_decisions_max = 6\nagent_redemptions_max = 2\n";

/// Waits (bounded) until `via`'s ledger holds a Redeclaration by each of
/// the five validators: the seal before them is applied there, so the
/// layer it seals is the one `via` decides under.
async fn wait_redeclared_by_all(net: &Testnet, via: u64) {
    let deadline = Instant::now() + SEALED_WITHIN;
    loop {
        let head = net.status(via).await.expect("status").ledger_index;
        let entries = net.ledger(via, 1, head).await.expect("GetLedger");
        let redeclared = entries
            .iter()
            .filter(|e| e.kind == u32::from(EntryKind::Redeclaration.code()))
            .count();
        if redeclared >= 5 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {via}: {redeclared} of 5 redeclarations within {SEALED_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The one ledger head every node reaches (bounded).
async fn converged(net: &Testnet) -> senatus_testnet::Head {
    net.wait_converged(Duration::from_secs(30))
        .await
        .expect("converged")
}

/// A payment by `actor` of `tenant` (the example registry gives each agent
/// one actor, its own name).
fn payment(actor: &str, tenant: &str, key: &str) -> pb::DecideRequest {
    pb::DecideRequest {
        tenant: tenant.into(),
        ..transfer_by(actor, 10, key)
    }
}

/// Decides `r`, signed now by its actor, through `via`: a decision (any
/// outcome), or the refusal.
async fn decide(
    net: &Testnet,
    via: u64,
    r: pb::DecideRequest,
) -> Result<pb::DecideReply, tonic::Status> {
    decide_as_is(net, via, signed(net, r)).await
}

/// Asserts `s` is a quota refusal naming `quota` (of value `limit`) for
/// `agent` of `tenant`, with exactly the metadata PROTOCOL 20.2 lists.
fn assert_quota_refusal(s: &tonic::Status, quota: &str, limit: u64, tenant: &str, agent: &str) {
    assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
    let r = reason_of(s).unwrap_or_else(|| panic!("no reason: {s:?}"));
    assert_eq!(r.known(), Some(Reason::QuotaExceeded), "{s:?}");
    let want: BTreeMap<String, String> = [
        ("quota", quota.to_string()),
        ("limit", limit.to_string()),
        ("windowMs", "600000".to_string()),
        ("tenant", tenant.to_string()),
        ("agent", agent.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(r.metadata, want, "{s:?}");
    assert!(s.message().contains(quota), "{s:?}");
    assert!(s.message().ends_with("; no token"), "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_over_an_agents_or_a_tenants_quota_are_refused_through_any_validator() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "quotas", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        // Version 2: the example layer with small quotas.
        let v2 = proposed(tmp.path(), "quotas", |dir| {
            let c = dir.join("constitution.toml");
            let text = std::fs::read_to_string(&c).expect("constitution");
            std::fs::write(&c, format!("{text}{QUOTAS}")).expect("write");
        });
        propose_via(&net, tmp.path(), 2, &v2, "small quotas").await;
        let leader = net
            .wait_leader(Duration::from_secs(30))
            .await
            .expect("leader");
        wait_redeclared_by_all(&net, leader).await;
        let follower = other_than(&net, &[leader]);

        // Agent quota. agent-1 decides three times, through the leader and
        // through followers: each a decision under version 2.
        let mut first = Vec::new();
        for (i, via) in [leader, follower, leader].into_iter().enumerate() {
            let r = decide(&net, via, payment("agent-1", "acme", &format!("a1-{i}")))
                .await
                .unwrap_or_else(|s| panic!("agent-1's decision {i} via {via}: {s:?}"));
            assert_eq!(
                (r.outcome.as_str(), r.policy_version),
                ("PERMIT", 2),
                "{r:?}"
            );
            first.push(r);
        }
        let head = converged(&net).await;
        // The fourth is refused by the leader, asked directly or through
        // a follower (which passes the leader's answer on unchanged).
        for (key, via) in [("a1-3", leader), ("a1-4", follower)] {
            let s = decide(&net, via, payment("agent-1", "acme", key))
                .await
                .expect_err("over agent-1's quota");
            assert_quota_refusal(&s, "agent_decisions_max", 3, "acme", "agent-1");
        }
        // A retry of a decided request (signed again) answers from the
        // ledger, through either, and counts nothing.
        for via in [follower, leader] {
            let again = decide(&net, via, payment("agent-1", "acme", "a1-1"))
                .await
                .unwrap_or_else(|s| panic!("retry via {via}: {s:?}"));
            assert_eq!(again.decision_id, first[1].decision_id);
            assert_eq!(again.ledger_index, first[1].ledger_index);
        }
        // Nothing refused or retried was written.
        assert_eq!(
            converged(&net).await,
            head,
            "refusals and retries append nothing"
        );
        // One agent over its quota does not hold back another.
        let mut agent2 = Vec::new();
        for (key, via) in [("a2-0", follower), ("a2-1", leader)] {
            let r = decide(&net, via, payment("agent-2", "acme", key))
                .await
                .unwrap_or_else(|s| panic!("agent-2 via {via}: {s:?}"));
            assert_eq!(r.outcome, "PERMIT", "{r:?}");
            agent2.push(r);
        }

        // Tenant quota. acme has had 5 decisions admitted (agent-1's three,
        // agent-2's two; refusals and retries count nothing); agent-3 takes
        // the sixth, and then every acme agent is refused, naming the
        // tenant's quota, though none of them is over its own.
        let r = decide(&net, leader, payment("agent-3", "acme", "a3-0"))
            .await
            .expect("acme's sixth decision");
        assert_eq!(r.outcome, "PERMIT", "{r:?}");
        let head = converged(&net).await;
        for (agent, key, via) in [
            ("agent-3", "a3-1", leader),
            ("agent-4", "a4-0", follower),
            ("agent-2", "a2-2", leader),
        ] {
            let s = decide(&net, via, payment(agent, "acme", key))
                .await
                .expect_err("over acme's quota");
            assert_quota_refusal(&s, "tenant_decisions_max", 6, "acme", agent);
        }
        // agent-1 is still refused by its own quota first.
        let s = decide(&net, follower, payment("agent-1", "acme", "a1-5"))
            .await
            .expect_err("over agent-1's quota");
        assert_quota_refusal(&s, "agent_decisions_max", 3, "acme", "agent-1");
        assert_eq!(converged(&net).await, head, "refusals append nothing");
        // Another tenant's agent is not affected.
        let r = decide(&net, follower, payment("agent-g1", "globex", "g1-0"))
            .await
            .expect("globex decides");
        assert_eq!(r.policy_version, 2, "{r:?}");

        // Redemption quota: agent-1's tokens redeem twice, the third is
        // refused naming the quota (and stays unredeemed), and agent-2's
        // tokens still redeem.
        let params = payment("x", "acme", "x").params_json;
        let mut c = net.client(follower).expect("client");
        for r in &first[..2] {
            c.redeem(net.redeem_request(&r.token, &params).expect("hand-off"))
                .await
                .expect("within agent-1's redemption quota");
        }
        let third = net
            .redeem_request(&first[2].token, &params)
            .expect("hand-off");
        let head = converged(&net).await;
        let s = c
            .redeem(third)
            .await
            .expect_err("over agent-1's redemption quota");
        assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
        let why = reason_of(&s).unwrap_or_else(|| panic!("no reason: {s:?}"));
        assert_eq!(why.known(), Some(Reason::QuotaExceeded), "{s:?}");
        assert_eq!(why.metadata["quota"], "agent_redemptions_max", "{s:?}");
        assert_eq!(why.metadata["limit"], "2", "{s:?}");
        assert_eq!(why.metadata["agent"], "agent-1", "{s:?}");
        assert_eq!(
            converged(&net).await,
            head,
            "a refused redemption appends nothing"
        );
        for r in &agent2 {
            c.redeem(net.redeem_request(&r.token, &params).expect("hand-off"))
                .await
                .expect("agent-2's redemptions are not held back");
        }
    })
    .await;
}
