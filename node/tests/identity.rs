//! Who is asking (I10, docs/PROTOCOL.md 2.1, 10.1, 10.2), on a real 5-node
//! testnet: every way of calling without being a registered identity is
//! refused with its own reason and rule, before anything reaches the
//! ledger; what a broker needs stays public.

mod common;

use std::time::{Duration, Instant};

use common::*;
use senatus_proto::reason::{Reason, reason_of};
use senatus_proto::v1 as pb;
use senatus_testnet::{RaftOverrides, Testnet};
use tonic::Code;

const TEST_BOUND: Duration = Duration::from_secs(120);

async fn decide(
    net: &Testnet,
    via: u64,
    r: pb::DecideRequest,
) -> Result<pb::DecideReply, tonic::Status> {
    decide_as_is(net, via, r).await
}

/// The refusal's reason and its `rule` metadata.
fn refused(s: &tonic::Status) -> (Option<Reason>, String) {
    let r = reason_of(s).unwrap_or_else(|| panic!("no reason: {s:?}"));
    (
        r.known(),
        r.metadata.get("rule").cloned().unwrap_or_default(),
    )
}

/// Asserts `r` is refused with `reason` and `rule`, naming the key, and
/// that nothing was appended on node 1.
async fn assert_refused(
    net: &Testnet,
    r: pb::DecideRequest,
    reason: Reason,
    rule: &str,
) -> tonic::Status {
    let head = net.status(1).await.expect("status").ledger_index;
    for via in [1u64, 4] {
        let s = decide(net, via, r.clone()).await.expect_err("refused");
        assert_eq!(
            refused(&s),
            (Some(reason), rule.to_string()),
            "via {via}: {s:?}"
        );
        assert_eq!(s.code(), reason.code(), "{s:?}");
        assert!(s.message().contains("no token"), "{s:?}");
        if !r.agent_key.is_empty() && rule != "malformed" {
            let key = hex::encode(&r.agent_key);
            assert_eq!(reason_of(&s).expect("reason").metadata["key"], key, "{s:?}");
            assert!(s.message().contains(&key), "names the key: {s:?}");
        }
    }
    assert_eq!(
        net.status(1).await.expect("status").ledger_index,
        head,
        "nothing was appended"
    );
    decide(net, 1, r).await.expect_err("still refused")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_credentials_nothing_is_decided_read_or_written_but_genesis_seals_and_status_answer()
 {
    let _serial = serial().await;
    bounded(TEST_BOUND, "no credentials", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        // A record, so that there is a ledger to refuse.
        let ack = write(&net, 2, b"an operator's record".to_vec()).await;
        assert_eq!(ack.reply.index, 1);
        net.wait_converged(Duration::from_secs(10))
            .await
            .expect("every node applied the record");

        // Decide, unsigned.
        assert_refused(
            &net,
            transfer_by("agent-7", 10, "unsigned"),
            Reason::CallerUnauthenticated,
            "unsigned",
        )
        .await;
        // A key or signature of the wrong length.
        let mut short = signed(&net, transfer_by("agent-7", 10, "short"));
        short.signature.truncate(63);
        let s = assert_refused(&net, short, Reason::CallerUnauthenticated, "malformed").await;
        assert_eq!(
            reason_of(&s).expect("reason").metadata["field"],
            "signature"
        );

        let mut c = net.client(3).expect("client");
        // AppendRecord and GetLedger, unsigned.
        for s in [
            c.append_record(pb::AppendRecordRequest {
                payload: b"anyone's record".to_vec(),
                auth: None,
            })
            .await
            .expect_err("unsigned record"),
            c.get_ledger(pb::GetLedgerRequest {
                from: 1,
                to: 10,
                limit: 0,
                auth: None,
            })
            .await
            .expect_err("unsigned read"),
        ] {
            assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
            assert_eq!(
                refused(&s),
                (Some(Reason::CallerUnauthenticated), "unsigned".into())
            );
        }
        // Signed, but not right: a key of the wrong length, an operator's
        // record signature on another payload, an agent's key on a read.
        let operator = net.client_key("operator-1").expect("operator key");
        let mut short = net.call_auth(&operator, "AppendRecord", b"signed record");
        short.key.pop();
        let moved = net.call_auth(&operator, "AppendRecord", b"signed record");
        let agent = net.client_key("agent-7").expect("agent key");
        let body = senatus_quorum::auth::get_ledger_body(1, 10, 0);
        for (s, want) in [
            (
                c.append_record(pb::AppendRecordRequest {
                    payload: b"signed record".to_vec(),
                    auth: Some(short),
                })
                .await
                .expect_err("short key"),
                (Reason::CallerUnauthenticated, "malformed"),
            ),
            (
                c.append_record(pb::AppendRecordRequest {
                    payload: b"another record".to_vec(),
                    auth: Some(moved),
                })
                .await
                .expect_err("moved signature"),
                (Reason::CallerUnauthenticated, "bad-signature"),
            ),
            (
                c.get_ledger(pb::GetLedgerRequest {
                    from: 1,
                    to: 10,
                    limit: 0,
                    auth: Some(net.call_auth(&agent, "GetLedger", &body)),
                })
                .await
                .expect_err("an agent's read"),
                (Reason::CallerNotAuthorized, "wrong-role"),
            ),
        ] {
            assert_eq!(refused(&s), (Some(want.0), want.1.to_string()), "{s:?}");
        }
        // Export and replay through the CLI, with a key no amendment
        // registered: the validator refuses the reads.
        let stranger = tmp.path().join("stranger-auditor.key");
        let keygen = senatus_cli(vec![
            "keygen".into(),
            "--role".into(),
            "auditor".into(),
            "--out".into(),
            stranger.to_str().expect("utf8").into(),
        ]);
        assert!(keygen.status.success(), "{}", show(&keygen));
        assert!(String::from_utf8_lossy(&keygen.stdout).contains("public key: "));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&stranger)
                .expect("key")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "key files are 0600");
        }
        let api = net.spec(2).expect("spec").api.clone();
        let key = stranger.to_str().expect("utf8").to_string();
        let export = tmp.path().join("export.jsonl");
        let out = senatus_cli_for(
            &net,
            vec![
                "ledger".into(),
                "export".into(),
                "--api".into(),
                api.clone(),
                "--key".into(),
                key.clone(),
                "--out".into(),
                export.to_str().expect("utf8").into(),
            ],
        )
        .await;
        assert!(!out.status.success(), "{}", show(&out));
        assert!(
            show(&out).contains("not in the sealed identity registry"),
            "{}",
            show(&out)
        );
        assert!(!export.exists(), "a refused export leaves no file");
        let out = senatus_cli_for(
            &net,
            vec![
                "replay".into(),
                "ab".repeat(32),
                "--genesis".into(),
                net.genesis_path().to_str().expect("utf8").into(),
                "--api".into(),
                api,
                "--key".into(),
                key,
            ],
        )
        .await;
        assert_eq!(out.status.code(), Some(4), "{}", show(&out));
        assert!(
            show(&out).contains("not in the sealed identity registry"),
            "{}",
            show(&out)
        );

        // What a broker needs, and status, stay public.
        let chain = c
            .get_seal_chain(pb::SealChainRequest {})
            .await
            .expect("seal chain is public")
            .into_inner();
        assert_eq!(chain.seals_json.len(), 1);
        assert!(chain.genesis_json.contains("senatus.genesis.v1"));
        let head = c
            .ledger_head(pb::LedgerHeadRequest {})
            .await
            .expect("ledger head is public")
            .into_inner();
        assert_eq!(head.index, 1, "only the record is on the ledger");
        assert_eq!(
            net.status(3).await.expect("status is public").ledger_index,
            1
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_signing_for_another_actor_is_refused() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "another actor", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        // agent-8 signs a request naming agent-7.
        let r = signed_as(&net, "agent-8", transfer_by("agent-7", 10, "as-7"));
        let s = assert_refused(&net, r, Reason::CallerNotAuthorized, "wrong-actor").await;
        assert_eq!(reason_of(&s).expect("reason").metadata["role"], "agent");
        assert!(s.message().contains("may not act as \"agent-7\""), "{s:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_signing_for_another_tenant_is_refused() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "another tenant", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        // agent-g1 acts for globex; it names acme (and an actor of its own
        // name, so only the tenant is wrong).
        let r = signed_as(&net, "agent-g1", transfer_by("agent-g1", 10, "as-acme"));
        let s = assert_refused(&net, r, Reason::CallerNotAuthorized, "wrong-tenant").await;
        assert!(s.message().contains("of tenant \"globex\""), "{s:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_no_amendment_registered_is_refused() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "unknown key", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let mut r = transfer_by("agent-7", 10, "stranger");
        let stranger = ed25519_dalek::SigningKey::from_bytes(&[0x5a; 32]);
        senatus_node::gate::sign_wire(&mut r, &stranger, &net.genesis().digest(), now_unix_ms())
            .expect("signs");
        assert_refused(&net, r, Reason::CallerUnauthenticated, "unknown-key").await;
        // The example layer's published test key for agent-7 is not
        // sealed in a testnet's registry either.
        let mut r = transfer_by("agent-7", 10, "published");
        let published = ed25519_dalek::SigningKey::from_bytes(&[0x07; 32]);
        senatus_node::gate::sign_wire(&mut r, &published, &net.genesis().digest(), now_unix_ms())
            .expect("signs");
        assert_refused(&net, r, Reason::CallerUnauthenticated, "unknown-key").await;
        // An auditor's key signing a Decide: registered, but not an agent.
        let r = signed_as(&net, "auditor-1", transfer_by("agent-7", 10, "auditor"));
        assert_refused(&net, r, Reason::CallerNotAuthorized, "wrong-role").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_signature_bit_is_refused() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "flipped bit", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let mut r = signed(&net, transfer_by("agent-7", 10, "flipped"));
        r.signature[17] ^= 0x04;
        assert_refused(&net, r, Reason::CallerUnauthenticated, "bad-signature").await;
        // The signature is over the request: the same signature on another
        // amount is as bad.
        let mut other = signed(&net, transfer_by("agent-7", 10, "moved"));
        other.params_json = other.params_json.replace("10", "11");
        assert_refused(&net, other, Reason::CallerUnauthenticated, "bad-signature").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_signed_ten_minutes_ago_is_refused() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "stale", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let key = net.client_key("agent-7").expect("key");
        let digest = net.genesis().digest();
        for (at, what) in [
            (now_unix_ms() - 600_000, "ten-minutes-ago"),
            (now_unix_ms() + 600_000, "ten-minutes-ahead"),
        ] {
            let mut r = transfer_by("agent-7", 10, what);
            senatus_node::gate::sign_wire(&mut r, key.signing_key(), &digest, at).expect("signs");
            let s = assert_refused(&net, r, Reason::CallerUnauthenticated, "not-fresh").await;
            assert!(
                s.message().contains("the freshness window is 120000 ms"),
                "{what}: {s:?}"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_an_agents_request_appends_nothing_and_answers_the_first_decision() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "copy", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let original = signed(&net, transfer_by("agent-7", 25, "k-copied"));
        let first = decide(&net, 1, original.clone()).await.expect("decided");
        assert_eq!(first.outcome, "PERMIT", "{first:?}");
        let head = net
            .wait_converged(Duration::from_secs(10))
            .await
            .expect("converged")
            .index;
        // Anyone who saw the signed request sends it again, through
        // another validator: the same decision, no new entry.
        let copy = decide(&net, 4, original.clone()).await.expect("answered");
        assert_eq!(copy.decision_id, first.decision_id);
        assert_eq!(copy.ledger_index, first.ledger_index);
        // agent-7 retrying with a fresh signature gets it too.
        let retry = signed(&net, transfer_by("agent-7", 25, "k-copied"));
        assert_ne!(retry.signature, original.signature);
        let again = decide(&net, 2, retry).await.expect("answered");
        assert_eq!(again.decision_id, first.decision_id);
        // Someone else re-signing it under their own key is refused (its
        // actor is agent-7's).
        let theirs = signed_as(&net, "agent-8", transfer_by("agent-7", 25, "k-copied"));
        decide(&net, 3, theirs)
            .await
            .expect_err("not agent-8's actor");
        net.wait_converged(Duration::from_secs(10))
            .await
            .expect("converged");
        assert_eq!(
            net.status(1).await.expect("status").ledger_index,
            head,
            "no new ledger entry"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_removed_by_amendment_is_refused_once_it_is_sealed() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "removed", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let before = decide(&net, 1, signed(&net, transfer_by("agent-3", 10, "before")))
            .await
            .expect("decided");
        assert_eq!(before.outcome, "PERMIT");
        // `senatus agent remove` builds the amended layer and proposes it.
        let path = |p: &std::path::Path| p.to_str().expect("utf-8").to_string();
        let out = senatus_cli_for(
            &net,
            vec![
                "agent".into(),
                "remove".into(),
                "--policy".into(),
                path(&tmp.path().join("net/policy")),
                "--out".into(),
                path(&tmp.path().join("v2")),
                "--name".into(),
                "agent-3".into(),
                "--api".into(),
                net.spec(2).expect("spec").api.clone(),
                "--proposer-key".into(),
                path(&tmp.path().join("net/authority.key")),
                "--justification".into(),
                "agent-3 is decommissioned".into(),
            ],
        )
        .await;
        assert!(out.status.success(), "{}", show(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("version 1 -> 2, removes agent agent-3"),
            "{text}"
        );
        // Once every validator runs under the new seal, agent-3's key is
        // refused everywhere; the others decide on.
        let deadline = Instant::now() + Duration::from_secs(60);
        for via in net.ids() {
            loop {
                let r = signed(&net, transfer_by("agent-3", 10, &format!("after-{via}")));
                match decide(&net, via, r).await {
                    Err(s)
                        if refused(&s)
                            == (Some(Reason::CallerUnauthenticated), "unknown-key".into()) =>
                    {
                        break;
                    }
                    other => assert!(
                        Instant::now() < deadline,
                        "node {via} still accepts agent-3: {other:?}"
                    ),
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let other = decide(&net, 5, signed(&net, transfer_by("agent-4", 10, "others")))
            .await
            .expect("decided");
        assert_eq!(
            (other.outcome.as_str(), other.policy_version),
            ("PERMIT", 2)
        );
    })
    .await;
}
