//! Faulty validators on a real five-node cluster, switched on per process
//! with `SENATUS_FAULT` (compiled in only with the `fault-injection`
//! feature, which scripts/test.sh enables): an invalid signature share is
//! attributed and routed around, fewer than t willing signers means no
//! token, and a leader asking for an outcome the signers did not reach gets
//! no signature.

#![cfg(feature = "fault-injection")]

mod common;

use std::time::Duration;

use common::*;
use senatus_proto::v1 as pb;
use senatus_testnet::{RaftOverrides, Testnet};
use tonic::Code;

const TEST_BOUND: Duration = Duration::from_secs(120);
const CALL: Duration = Duration::from_secs(30);

fn transfer(to: &str, key: &str) -> pb::DecideRequest {
    pb::DecideRequest {
        surface: "payments".into(),
        action: "transfer".into(),
        actor: "agent-2".into(),
        tenant: "acme".into(),
        params_json: serde_json::json!({"amount": 25, "currency": "EUR", "to_account": to})
            .to_string(),
        context: Some(pb::AgentContext::default()),
        idempotency_key: key.into(),
        ..Default::default()
    }
}

async fn decide(
    net: &Testnet,
    via: u64,
    r: pb::DecideRequest,
) -> Result<pb::DecideReply, tonic::Status> {
    let mut c = net.client(via).expect("client");
    tokio::time::timeout(CALL, c.decide(common::signed(net, r)))
        .await
        .unwrap_or_else(|_| panic!("Decide via node {via}: no answer within {CALL:?}"))
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_shares_are_attributed_and_the_decision_completes_without_them() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "bad shares", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        // Validators 1 and 2 (the lowest ids, always in the first signer
        // set) send invalid shares.
        with_fault(&net, &[1, 2], "bad-share").await;
        let leader = net
            .wait_leader(Duration::from_secs(10))
            .await
            .expect("leader");
        let reply = decide(&net, 3, transfer("acct-supplier-7", "bad-share-1"))
            .await
            .unwrap_or_else(|s| panic!("{:?}: {}", s.code(), s.message()));
        assert_eq!(reply.outcome, "PERMIT");
        assert_eq!(reply.signers.len(), 3);
        assert!(
            !reply.signers.contains(&1) && !reply.signers.contains(&2),
            "the culprits' shares are left out: {:?}",
            reply.signers
        );
        let log = net.last_run_log(leader).expect("leader log");
        assert!(
            log.contains("invalid signature shares") && log.contains("culprits"),
            "the leader names the culprits; its log:\n{log}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fewer_than_t_willing_signers_means_no_token() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "refusing signers", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        with_fault(&net, &[3, 4, 5], "refuse-sign").await;
        let err = decide(&net, 1, transfer("acct-supplier-7", "refused-1"))
            .await
            .expect_err("only two validators sign: no token");
        assert_eq!(err.code(), Code::Unavailable, "{}", err.message());
        assert!(
            err.message()
                .contains("fewer than t=3 validators signed; no token"),
            "{}",
            err.message()
        );
        assert!(err.message().contains("refuse-sign"), "{}", err.message());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_asking_for_an_outcome_the_signers_did_not_reach_gets_no_token() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "lying leader", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        // Whichever validator leads turns every outcome into PERMIT.
        with_fault(&net, &net.ids(), "lie-outcome").await;
        let err = decide(&net, 2, transfer("acct-sanctioned-0001", "lie-1"))
            .await
            .expect_err("a DENY dressed as PERMIT must not be signed");
        assert_eq!(err.code(), Code::Unavailable, "{}", err.message());
        assert!(
            err.message().contains("gives a different batch") && err.message().contains("no token"),
            "{}",
            err.message()
        );
    })
    .await;
}

/// Whichever validator leads proposes batches with `fault`'s times: every
/// signer refuses them against its own clock and the constitution, so the
/// decision commits but no token exists. Returns the testnet (for the
/// certificate checks).
async fn leader_with_bad_batch_times(
    tmp: &std::path::Path,
    fault: &str,
    key: &str,
    why: &str,
) -> (Testnet, u64) {
    let net = cluster(tmp, RaftOverrides::default()).await;
    with_fault(&net, &net.ids(), fault).await;
    let leader = net
        .wait_leader(Duration::from_secs(10))
        .await
        .expect("leader");
    let err = decide(&net, 2, transfer("acct-supplier-7", key))
        .await
        .expect_err("a batch with such times must not be signed");
    assert_eq!(err.code(), Code::Unavailable, "{}", err.message());
    assert_eq!(
        senatus_proto::reason::Reason::of(&err),
        Some(senatus_proto::reason::Reason::NotSigned),
        "{err:?}"
    );
    assert!(
        err.message().contains("refuses to sign") && err.message().contains(why),
        "{}",
        err.message()
    );
    (net, leader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_dating_batches_an_hour_back_gets_no_token_and_no_certificate() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "batch-past", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (net, leader) = leader_with_bad_batch_times(
            tmp.path(),
            "batch-past",
            "past-1",
            "from this signer's clock",
        )
        .await;
        // Refused, but not certified: an honest attestation delayed by an
        // hour would look the same to anyone else.
        for id in net.running() {
            assert!(
                certified_kinds(&net, id, leader).await.is_empty(),
                "node {id} certified validator {leader} for a skewed time"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_giving_tokens_a_day_to_live_gets_no_token_and_is_certified() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "batch-day", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (net, leader) =
            leader_with_bad_batch_times(tmp.path(), "batch-day", "day-1", "would live 86400000 ms")
                .await;
        // The leader's own signature over the times is the evidence: every
        // validator validates the certificate about the leader that asked
        // (the one that led when the decision was sent, unless leadership
        // moved in between: then that one).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let mut everywhere = Vec::new();
            for subject in net.ids() {
                let mut all = true;
                for id in net.running() {
                    let kinds = certified_kinds(&net, id, subject).await;
                    all &= kinds.iter().any(|k| k == "batch-lifetime");
                }
                if all {
                    everywhere.push(subject);
                }
            }
            if !everywhere.is_empty() {
                assert!(
                    everywhere.contains(&leader) || everywhere.len() == 1,
                    "certified {everywhere:?}, leader was {leader}"
                );
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no leader certified for batch-lifetime on every validator (leader was {leader})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
}
