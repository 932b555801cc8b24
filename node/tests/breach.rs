//! Breach detection on five real `senatus node` processes: every detector
//! triggered for real (a policy file edited on disk, the in-memory layer
//! edited through a test-only hook, a stored ledger byte flipped, a signer
//! sending a bad share, a validator signing two conflicting votes, tokens
//! presented modified, forged or replayed) produces a shutdown certificate
//! that every live validator validates; a certified validator is locked
//! (across restarts) and left out of every signing set while the other
//! four keep deciding; forged certificates change nothing; only a sealed
//! amendment naming the certificate reinstates.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use senatus_proto::reason::{Reason, reason_of};
use senatus_proto::v1 as pb;
use senatus_testnet::{RaftOverrides, Testnet};

const TEST_BOUND: Duration = Duration::from_secs(180);
const WITHIN: Duration = Duration::from_secs(20);

fn config(net: &Testnet, id: u64) -> senatus_genesis::config::NodeConfig {
    senatus_genesis::config::NodeConfig::load(&net.spec(id).expect("spec").config)
        .expect("node config")
}

async fn certificates(net: &Testnet, id: u64) -> pb::ListCertificatesReply {
    let mut c = net.client(id).expect("client");
    tokio::time::timeout(
        Duration::from_secs(5),
        c.list_certificates(pb::ListCertificatesRequest {}),
    )
    .await
    .expect("ListCertificates answered in time")
    .expect("ListCertificates")
    .into_inner()
}

/// Waits until every running node lists a certificate with `kind` against
/// `subject` (and, with `on_ledger`, has it on its ledger); returns its id
/// after checking every node holds the same bytes.
async fn certified_everywhere(
    net: &Testnet,
    subject: &str,
    kind: &str,
    on_ledger: bool,
) -> Vec<u8> {
    let deadline = Instant::now() + WITHIN;
    loop {
        let mut found = Vec::new();
        for id in net.running() {
            let list = certificates(net, id).await;
            found.push((
                id,
                list.certificates.into_iter().find(|c| {
                    c.subject == subject && c.kind == kind && (!on_ledger || c.ledger_index > 0)
                }),
            ));
        }
        if found.iter().all(|(_, c)| c.is_some()) {
            let first = found[0].1.clone().expect("view");
            for (id, c) in &found {
                let c = c.as_ref().expect("view");
                assert_eq!(c.id, first.id, "node {id} holds another certificate");
                assert_eq!(c.certificate, first.certificate, "node {id}: bytes");
            }
            return first.id;
        }
        assert!(
            Instant::now() < deadline,
            "no {kind} certificate against {subject} on every node within {WITHIN:?}: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn request(actor: &str, amount: u64, key: &str) -> pb::DecideRequest {
    pb::DecideRequest {
        surface: "payments".into(),
        action: "transfer".into(),
        actor: actor.into(),
        tenant: "acme".into(),
        params_json: params(amount),
        context: Some(pb::AgentContext::default()),
        idempotency_key: key.into(),
        ..Default::default()
    }
}

fn params(amount: u64) -> String {
    serde_json::json!({"amount": amount, "currency": "EUR", "to_account": "acct-supplier-7"})
        .to_string()
}

async fn try_decide(
    net: &Testnet,
    via: u64,
    r: pb::DecideRequest,
) -> Result<pb::DecideReply, tonic::Status> {
    let mut c = net.client(via).expect("client");
    tokio::time::timeout(Duration::from_secs(20), c.decide(common::signed(net, r)))
        .await
        .expect("Decide answered in time")
        .map(tonic::Response::into_inner)
}

async fn decide(net: &Testnet, via: u64, r: pb::DecideRequest) -> pb::DecideReply {
    try_decide(net, via, r)
        .await
        .unwrap_or_else(|s| panic!("Decide via {via}: {:?}: {}", s.code(), s.message()))
}

/// Asserts node `id` refuses to decide, naming certificate `cert`.
async fn assert_locked(net: &Testnet, id: u64, cert: &[u8], key: &str) {
    let err = try_decide(net, id, request("agent-1", 10, key))
        .await
        .expect_err("a locked validator decides nothing");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(err.message().starts_with("LockedDown"), "{err:?}");
    assert!(err.message().contains(&hex::encode(cert)), "{err:?}");
    // What a client decides by: the reason, naming validator and certificate.
    let why = reason_of(&err).expect("a reason");
    assert_eq!(why.known(), Some(Reason::LockedDown), "{err:?}");
    assert_eq!(why.metadata["node"], id.to_string());
    assert_eq!(why.metadata["certificate"], hex::encode(cert));
    let list = certificates(net, id).await;
    assert_eq!(list.locked_by, cert, "node {id} reports its lockdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_file_edited_on_disk_locks_its_validator_across_restart() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "disk drift", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let before = decide(&net, 3, request("agent-2", 10, "disk-before")).await;
        assert_eq!(before.outcome, "PERMIT");

        // Edit node 3's copy of the sealed policy on disk.
        let entities = config(&net, 3).policy_dir.join("entities.json");
        let original = std::fs::read(&entities).expect("entities");
        let mut edited = original.clone();
        edited.extend_from_slice(b"\n");
        std::fs::write(&entities, &edited).expect("edit");

        let cert = certified_everywhere(&net, "validator 3", "policy-drift", false).await;
        assert_locked(&net, 3, &cert, "disk-locked").await;
        // The other four keep deciding and signing, without validator 3.
        for via in [1, 2, 4, 5] {
            let r = decide(
                &net,
                via,
                request("agent-2", 10, &format!("disk-after-{via}")),
            )
            .await;
            assert_eq!(r.outcome, "PERMIT", "{r:?}");
            assert!(
                !r.signers.contains(&3),
                "a certified validator signed: {r:?}"
            );
        }
        let on_ledger = certified_everywhere(&net, "validator 3", "policy-drift", true).await;
        assert_eq!(on_ledger, cert);
        // An auditor exports it and checks it offline.
        let dir = tmp.path().join("certs");
        let args = vec![
            "certificates".to_string(),
            "list".into(),
            "--api".into(),
            net.spec(1).expect("spec").api.clone(),
            "--out".into(),
            s(&dir).into(),
        ];
        let out = senatus_cli_for(&net, args).await;
        assert!(out.status.success(), "{}", show(&out));
        let file = dir.join(format!("{}.cert", hex::encode(&cert)));
        let args = vec![
            "certificates".to_string(),
            "verify".into(),
            s(&file).into(),
            "--genesis".into(),
            s(&tmp.path().join("net/genesis.json")).into(),
        ];
        let out = tokio::task::spawn_blocking(move || senatus_cli(args))
            .await
            .expect("cli");
        assert!(out.status.success(), "{}", show(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("policy-drift against validator 3"),
            "{}",
            show(&out)
        );

        // No bypass: the file restored and the node restarted, it stays
        // locked (its certificate is on its ledger and in its data dir).
        std::fs::write(&entities, &original).expect("restore");
        net.stop(3).await.expect("stop");
        net.start(3).expect("start");
        net.wait_converged(Duration::from_secs(30))
            .await
            .expect("converged");
        assert_locked(&net, 3, &cert, "disk-after-restart").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_memory_edit_and_a_flipped_ledger_byte_are_certified_everywhere() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "memory drift and ledger break", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let written = write(&net, 1, b"a record to flip".to_vec()).await;
        net.wait_converged(Duration::from_secs(10))
            .await
            .expect("converged");

        // The test-only hook edits node 2's active layer in memory.
        std::fs::write(config(&net, 2).data_dir.join("TAMPER_MEMORY"), b"").expect("hook");
        let drift = certified_everywhere(&net, "validator 2", "policy-drift", false).await;
        assert_locked(&net, 2, &drift, "memory-locked").await;

        // The test-only hook flips one stored byte of node 4's entry.
        std::fs::write(
            config(&net, 4).data_dir.join("FLIP_LEDGER"),
            written.reply.index.to_string(),
        )
        .expect("hook");
        let broken = certified_everywhere(&net, "validator 4", "ledger-break", false).await;
        assert_locked(&net, 4, &broken, "ledger-locked").await;

        // Two validators locked, three left: exactly t, still deciding.
        let r = decide(&net, 5, request("agent-3", 10, "memory-after")).await;
        assert_eq!(r.outcome, "PERMIT");
        let mut signers = r.signers.clone();
        signers.sort_unstable();
        assert_eq!(signers, [1, 3, 5], "{r:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_share_certifies_its_signer_who_signs_no_more() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "bad share", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        // Validator 1 is asked first after the leader (lowest id first).
        with_fault(&net, &[1], "bad-share").await;
        let leader = net
            .wait_leader(Duration::from_secs(10))
            .await
            .expect("leader");
        let via = other_than(&net, &[1]);
        // The first batch meets the bad share; the retry leaves 1 out.
        let r = decide(&net, via, request("agent-4", 10, "share-1")).await;
        assert_eq!(r.outcome, "PERMIT", "{r:?}");
        assert!(!r.signers.contains(&1), "{r:?} (leader {leader})");
        let cert = certified_everywhere(&net, "validator 1", "invalid-share", false).await;
        // Validator 1 itself validated the evidence against it: locked.
        assert_locked(&net, 1, &cert, "share-locked").await;
        for i in 2..6 {
            let r = decide(&net, via, request("agent-4", 10, &format!("share-{i}"))).await;
            assert_eq!(r.outcome, "PERMIT");
            assert!(!r.signers.contains(&1), "{r:?}");
        }
    })
    .await;
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The testnet's policy layer as version `version`, with `edit` applied.
fn proposed(tmp: &Path, name: &str, version: u64, edit: impl FnOnce(&Path)) -> PathBuf {
    let dir = tmp.join(name);
    copy_dir(&tmp.join("net/policy"), &dir);
    let c = dir.join("constitution.toml");
    let text = std::fs::read_to_string(&c).expect("constitution");
    assert!(text.contains("\nversion = 1\n"), "{text}");
    std::fs::write(
        &c,
        text.replace("\nversion = 1\n", &format!("\nversion = {version}\n")),
    )
    .expect("write");
    edit(&dir);
    dir
}

/// Waits until node `via` reports proposal `pid` with `status`.
async fn proposal(net: &Testnet, via: u64, pid: &str, status: &str) -> pb::ProposalView {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut c = net.client(via).expect("client");
        let views = c
            .amend_status(pb::AmendStatusRequest {
                proposal_id: Vec::new(),
            })
            .await
            .expect("AmendStatus")
            .into_inner()
            .proposals;
        if let Some(p) = views.iter().find(|p| hex::encode(&p.id) == pid)
            && p.status == status
        {
            return p.clone();
        }
        assert!(
            Instant::now() < deadline,
            "proposal {pid} not {status}: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_conflicting_votes_certify_the_voter_whose_votes_are_then_refused() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "vote equivocation", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        with_fault(&net, &[5], "vote-equivocate").await;
        let v2 = proposed(tmp.path(), "v2", 2, |_| {});
        let pid = propose_via(&net, tmp.path(), 2, &v2, "validator 5 votes twice").await;
        let cert = certified_everywhere(&net, "validator 5", "vote-equivocation", true).await;
        let view = proposal(&net, 1, &pid, "passed").await;
        assert!(
            view.votes
                .iter()
                .any(|v| v.voter == 5 && v.effect == "equivocation"),
            "{view:?}"
        );
        assert_locked(&net, 5, &cert, "equivocator").await;

        // Version 3: validator 5 is certified on the ledger, so no vote of
        // its is accepted; the other four pass it.
        let chain_len = |n: u64| {
            let net = &net;
            async move {
                let mut c = net.client(n).expect("client");
                c.get_seal_chain(pb::SealChainRequest {})
                    .await
                    .expect("chain")
                    .into_inner()
                    .seals_json
                    .len()
            }
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while chain_len(1).await < 2 {
            assert!(Instant::now() < deadline, "version 2 never sealed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let v3 = proposed(tmp.path(), "v3", 3, |_| {});
        let pid3 = propose_via(&net, tmp.path(), 2, &v3, "without the equivocator").await;
        let view = proposal(&net, 1, &pid3, "passed").await;
        assert!(view.votes.iter().all(|v| v.voter != 5), "{view:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modified_forged_and_replayed_tokens_certify_their_agents() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "token breaches", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let c = net.client(2).expect("client");
        let redeem = |r: pb::RedeemRequest| {
            let mut c = c.clone();
            async move { c.redeem(r).await.map(tonic::Response::into_inner) }
        };

        // Modified: the agent presents it with other params than it was
        // issued for.
        let t = decide(&net, 1, request("agent-5", 10, "mod")).await;
        assert_eq!(t.outcome, "PERMIT");
        let err = redeem(
            net.redeem_request(&t.token, &params(99_999))
                .expect("hand-off"),
        )
        .await
        .expect_err("modified params");
        assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
        let modified =
            certified_everywhere(&net, "agent acme/agent-5", "token-modified", true).await;
        assert!(err.message().contains(&hex::encode(&modified)), "{err:?}");

        // Forged: the agent presents a token with a flipped signature byte.
        let t = decide(&net, 1, request("agent-6", 10, "forge")).await;
        let mut forged = t.token.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let err = redeem(net.redeem_request(&forged, &params(10)).expect("hand-off"))
            .await
            .expect_err("forged");
        assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
        certified_everywhere(&net, "agent acme/agent-6", "token-forged", true).await;

        // Replayed: the agent presents the same token twice.
        let t = decide(&net, 1, request("agent-7", 10, "replay")).await;
        let at = now_unix_ms();
        let hand_off = |at: u64| {
            let p = net
                .presentation("agent-7", &t.token, "broker-1", &params(10), at)
                .expect("presentation");
            net.redeem_with("broker-1", &t.token, &params(10), p.encode())
                .expect("hand-off")
        };
        redeem(hand_off(at)).await.expect("first redemption");
        let err = redeem(hand_off(at + 1)).await.expect_err("replay");
        assert_eq!(err.code(), tonic::Code::AlreadyExists, "{err:?}");
        let replayed =
            certified_everywhere(&net, "agent acme/agent-7", "token-replayed", true).await;

        // Every later decision for a certified agent is DENY, with the
        // certificate as its reason; other agents are unaffected.
        let r = decide(&net, 3, request("agent-7", 10, "after-replay")).await;
        assert_eq!(r.outcome, "DENY", "{r:?}");
        assert_eq!(
            r.reasons,
            [format!("senatus.certificate.{}", hex::encode(&replayed))]
        );
        // A replay from the ledger alone reaches the same DENY, byte for
        // byte (I7): the certificate is on the ledger before the batch.
        let token = senatus_quorum::token::Token::from_bytes(&r.token).expect("token");
        let args: Vec<String> = vec![
            "replay".into(),
            hex::encode(&r.decision_id),
            "--key".into(),
            s(&net.client_key_path("auditor-1")).into(),
            "--genesis".into(),
            s(&tmp.path().join("net/genesis.json")).into(),
            "--api".into(),
            net.spec(1).expect("spec").api.clone(),
            "--token".into(),
            token.to_text(),
            "--json".into(),
        ];
        let out = tokio::task::spawn_blocking(move || senatus_cli(args))
            .await
            .expect("replay");
        assert!(out.status.success(), "replay: {}", show(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(v["outcome"], "DENY", "{v}");
        assert_eq!(v["issued_token"]["identical"], true, "{v}");
        let r = decide(&net, 4, request("agent-5", 10, "after-mod")).await;
        assert_eq!(r.outcome, "DENY", "{r:?}");
        let r = decide(&net, 5, request("agent-8", 10, "clean")).await;
        assert_eq!(r.outcome, "PERMIT", "{r:?}");
        // No validator locked itself over an agent's breach.
        for id in net.ids() {
            assert!(certificates(&net, id).await.locked_by.is_empty());
        }
        // Certificates and their evidence replay through `apply` alone to
        // the state digest every validator reports.
        assert_state_replays(&net).await;
    })
    .await;
}

/// A certificate signed with `key` claiming `issuer`, about `subject`.
fn forge(
    subject: senatus_quorum::certificate::Subject,
    evidence: senatus_quorum::certificate::Evidence,
    issuer: u64,
    key: &ed25519_dalek::SigningKey,
) -> Vec<u8> {
    forge_at(subject, evidence, issuer, key, [7; 32])
}

/// As [`forge`], naming ledger head `#1:head`.
fn forge_at(
    subject: senatus_quorum::certificate::Subject,
    evidence: senatus_quorum::certificate::Evidence,
    issuer: u64,
    key: &ed25519_dalek::SigningKey,
    head: [u8; 32],
) -> Vec<u8> {
    senatus_quorum::certificate::Certificate {
        subject,
        evidence,
        head_index: 1,
        head_hash: senatus_genesis::Digest(head),
        issuer: senatus_genesis::NodeId::new(issuer).expect("id"),
        issued_at_ms: 1,
    }
    .sign(key)
    .encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_certificates_are_refused_everywhere_and_shut_nothing_down() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "forged certificates", async {
        use senatus_quorum::certificate::{DriftLocation, Evidence, Subject};
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let written = write(&net, 1, b"an entry to lie about".to_vec()).await;
        let key = |id: u64| {
            senatus_genesis::keys::SecretKey::read_identity(
                &tmp.path().join(format!("net/node-{id}/identity.key")),
            )
            .expect("identity key")
            .0
            .signing_key()
            .clone()
        };
        let id = |n: u64| senatus_genesis::NodeId::new(n).expect("id");
        let sealed = senatus_genesis::PolicyLayer::load_dir(&tmp.path().join("net/policy"))
            .expect("policy")
            .digest();
        let drift = || Evidence::PolicyDrift {
            location: DriftLocation::Disk,
            policy_version: 1,
            sealed_digest: sealed,
            observed_digest: senatus_genesis::Digest([9; 32]),
        };
        let stranger = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let forged = [
            (
                "a signature by another key",
                forge(Subject::Validator(id(3)), drift(), 3, &stranger),
                "does not verify under issuer 3's identity key",
            ),
            (
                "an issuer that is not a validator",
                forge(Subject::Validator(id(9)), drift(), 9, &stranger),
                "issuer 9 is not a member",
            ),
            (
                "drift attested about another validator",
                forge(Subject::Validator(id(3)), drift(), 2, &key(2)),
                "but its evidence names validator 2",
            ),
            (
                "a sealed digest that was never sealed",
                forge(
                    Subject::Validator(id(2)),
                    Evidence::PolicyDrift {
                        location: DriftLocation::Memory,
                        policy_version: 1,
                        sealed_digest: senatus_genesis::Digest([1; 32]),
                        observed_digest: senatus_genesis::Digest([2; 32]),
                    },
                    2,
                    &key(2),
                ),
                "policy-drift evidence",
            ),
            (
                "a ledger break at a hash nobody holds",
                forge(
                    Subject::Validator(id(2)),
                    Evidence::LedgerBreak {
                        index: written.reply.index,
                        expected: senatus_genesis::Digest([3; 32]),
                        found: senatus_genesis::Digest([4; 32]),
                    },
                    2,
                    &key(2),
                ),
                "ledger-break evidence",
            ),
        ];
        for (what, bytes, why) in &forged {
            for n in net.ids() {
                // Validator 1 sends them, as `from` says.
                let mut peer = peer_client(&net, n, 1).await;
                let err = peer
                    .certify(pb::CertifyRequest {
                        from: 1,
                        certificate: bytes.clone(),
                    })
                    .await
                    .expect_err(what);
                assert_eq!(err.code(), tonic::Code::InvalidArgument, "{what}: {err:?}");
                assert!(err.message().contains(why), "{what}: {err:?}");
                assert_eq!(
                    Reason::of(&err),
                    Some(Reason::CertificateRefused),
                    "{what}: {err:?}"
                );
            }
            // Straight into the log: every validator refuses it on apply.
            let leader = net
                .wait_leader(Duration::from_secs(10))
                .await
                .expect("leader");
            let mut peer = peer_client(&net, leader, 1).await;
            let err = peer
                .forward_write(pb::WriteCommand {
                    kind: 8,
                    payload: bytes.clone(),
                })
                .await
                .expect_err(what);
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{what}: {err:?}");
            assert!(err.message().contains("certificate"), "{what}: {err:?}");
            // Refused at the door (does not decode) or on apply (does not
            // check out): either way a reason, never only words.
            assert!(
                matches!(
                    Reason::of(&err),
                    Some(Reason::CertificateRefused | Reason::AmendmentRefused)
                ),
                "{what}: {err:?}"
            );
        }
        // An auditor's offline check refuses them too, naming why (exit 3).
        let genesis = tmp.path().join("net/genesis.json");
        for (what, bytes, why) in &forged {
            let file = tmp.path().join("forged.cert");
            std::fs::write(&file, bytes).expect("write");
            let args = vec![
                "certificates".to_string(),
                "verify".into(),
                s(&file).into(),
                "--genesis".into(),
                s(&genesis).into(),
            ];
            let out = tokio::task::spawn_blocking(move || senatus_cli(args))
                .await
                .expect("cli");
            if why.ends_with(" evidence") {
                // Facts only a validator's own ledger or chain holds: the
                // offline check cannot refuse these, the validators did.
                continue;
            }
            assert_eq!(out.status.code(), Some(3), "{what}: {}", show(&out));
            assert!(
                String::from_utf8_lossy(&out.stderr).contains(why),
                "{what}: {}",
                show(&out)
            );
        }
        // Nothing changed: no certificate, nobody locked, all five sign.
        for n in net.ids() {
            let list = certificates(&net, n).await;
            assert!(list.certificates.is_empty(), "node {n}: {list:?}");
            assert!(list.locked_by.is_empty());
            let r = decide(&net, n, request("agent-9", 10, &format!("forged-{n}"))).await;
            assert_eq!(r.outcome, "PERMIT");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_sealed_amendment_naming_the_certificate_reinstates() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "reinstatement", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        std::fs::write(config(&net, 3).data_dir.join("TAMPER_MEMORY"), b"").expect("hook");
        let cert = certified_everywhere(&net, "validator 3", "policy-drift", true).await;
        // A restart clears the tampered memory but not the lockdown.
        net.stop(3).await.expect("stop");
        net.start(3).expect("start");
        net.wait_converged(Duration::from_secs(30))
            .await
            .expect("converged");
        assert_locked(&net, 3, &cert, "before-reinstatement").await;

        // An amendment that does not name it leaves the lock in place.
        let v2 = proposed(tmp.path(), "v2", 2, |_| {});
        let pid = propose_via(&net, tmp.path(), 2, &v2, "unrelated").await;
        let view = proposal(&net, 1, &pid, "passed").await;
        assert!(
            view.votes.iter().all(|v| v.voter != 3),
            "a locked validator voted: {view:?}"
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut c = net.client(3).expect("client");
            let n = c
                .get_seal_chain(pb::SealChainRequest {})
                .await
                .expect("chain")
                .into_inner()
                .seals_json
                .len();
            if n == 2 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "version 2 never sealed on node 3"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_locked(&net, 3, &cert, "after-v2").await;

        // Version 3 names the certificate: sealed, it reinstates node 3.
        let v3 = proposed(tmp.path(), "v3", 3, |dir| {
            let c = dir.join("constitution.toml");
            let mut text = std::fs::read_to_string(&c).expect("constitution");
            text.push_str(&format!(
                "\n[breach]\nreinstate = [\"{}\"]\n",
                hex::encode(&cert)
            ));
            std::fs::write(&c, text).expect("write");
        });
        let pid = propose_via(&net, tmp.path(), 2, &v3, "validator 3 was repaired").await;
        proposal(&net, 1, &pid, "passed").await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let list = certificates(&net, 3).await;
            if list.locked_by.is_empty() {
                let c = list
                    .certificates
                    .iter()
                    .find(|c| c.id == cert)
                    .expect("still listed");
                assert!(c.reinstated_at > 0, "{c:?}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node 3 never reinstated: {list:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let r = decide(&net, 3, request("agent-1", 10, "reinstated")).await;
        assert_eq!(
            (r.outcome.as_str(), r.policy_version),
            ("PERMIT", 3),
            "{r:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_signed_heads_for_one_index_certify_their_signer() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "head equivocation", async {
        use senatus_quorum::certificate::{DriftLocation, Evidence, Subject};
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let key = senatus_genesis::keys::SecretKey::read_identity(
            &tmp.path().join("net/node-2/identity.key"),
        )
        .expect("identity key")
        .0
        .signing_key()
        .clone();
        let sealed = senatus_genesis::PolicyLayer::load_dir(&tmp.path().join("net/policy"))
            .expect("policy")
            .digest();
        // A test validator (2) signs two statements naming two different
        // hashes for its ledger head at index 1.
        let statement = |head: [u8; 32]| {
            forge_at(
                Subject::Validator(senatus_genesis::NodeId::new(2).expect("id")),
                Evidence::PolicyDrift {
                    location: DriftLocation::Disk,
                    policy_version: 1,
                    sealed_digest: sealed,
                    observed_digest: senatus_genesis::Digest(head),
                },
                2,
                &key,
                head,
            )
        };
        // Validator 2 hands its own two statements to validator 1.
        let mut peer = peer_client(&net, 1, 2).await;
        for head in [[1u8; 32], [2u8; 32]] {
            peer.certify(pb::CertifyRequest {
                from: 2,
                certificate: statement(head),
            })
            .await
            .expect("each statement alone checks out");
        }
        // Validator 1 saw both: it certifies the equivocation, and every
        // validator re-checks the two signed heads itself.
        certified_everywhere(&net, "validator 2", "head-equivocation", true).await;
    })
    .await;
}
