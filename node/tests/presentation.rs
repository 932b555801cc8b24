//! Brokers with keys and presentations only the agent can sign (issue 16,
//! docs/PROTOCOL.md 10.3 and 17), on a real 5-node testnet: a made-up or
//! stolen token certifies nobody, a retry certifies nobody, two distinct
//! presentations by the agent certify it with evidence an outsider checks
//! from an export, and every caller or presentation that is not right is
//! refused with its own reason and rule, changing nothing.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use senatus_genesis::keys::SecretKey;
use senatus_genesis::registry::{Identity, Registry, Role};
use senatus_genesis::{Key32, PolicyLayer};
use senatus_node::ledger::EntryKind;
use senatus_proto::reason::{Reason, reason_of};
use senatus_proto::v1 as pb;
use senatus_quorum::certificate::{Evidence, SignedCertificate, Subject};
use senatus_quorum::token::Token;
use senatus_replica::records::Redemption;
use senatus_testnet::{RaftOverrides, Testnet, UpOptions};
use tonic::Code;

const TEST_BOUND: Duration = Duration::from_secs(180);
const WITHIN: Duration = Duration::from_secs(30);

async fn redeem(
    net: &Testnet,
    via: u64,
    r: pb::RedeemRequest,
) -> Result<pb::RedeemReply, tonic::Status> {
    let mut c = net.client(via).expect("client");
    tokio::time::timeout(Duration::from_secs(20), c.redeem(r))
        .await
        .unwrap_or_else(|_| panic!("Redeem via node {via}: no answer within 20 s"))
        .map(tonic::Response::into_inner)
}

/// The refusal's reason and its `rule` metadata ("" when none).
fn refused(s: &tonic::Status) -> (Option<Reason>, String) {
    let r = reason_of(s).unwrap_or_else(|| panic!("no reason: {s:?}"));
    (
        r.known(),
        r.metadata.get("rule").cloned().unwrap_or_default(),
    )
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

/// No running node holds a certificate about `subject`.
async fn nobody_certified(net: &Testnet, subject: &str) {
    for id in net.running() {
        let list = certificates(net, id).await;
        assert!(
            list.certificates.iter().all(|c| c.subject != subject),
            "node {id} certified {subject}: {:?}",
            list.certificates
        );
    }
}

/// Waits until every running node holds a `kind` certificate about
/// `subject` on its ledger; returns its bytes (the same everywhere).
async fn certified_everywhere(net: &Testnet, subject: &str, kind: &str) -> Vec<u8> {
    let deadline = Instant::now() + WITHIN;
    loop {
        let mut found = Vec::new();
        for id in net.running() {
            let list = certificates(net, id).await;
            found.push(
                list.certificates
                    .into_iter()
                    .find(|c| c.subject == subject && c.kind == kind && c.ledger_index > 0),
            );
        }
        if found.iter().all(Option::is_some) {
            let first = found[0].clone().expect("view");
            for c in found.iter().flatten() {
                assert_eq!(
                    c.certificate, first.certificate,
                    "one certificate everywhere"
                );
            }
            return first.certificate;
        }
        assert!(
            Instant::now() < deadline,
            "no {kind} certificate about {subject} on every node within {WITHIN:?}: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A token naming `actor` that the cluster never signed: `real` with
/// another actor and nonce, and its signature spoiled.
fn made_up(real: &[u8], actor: &str, surface: &str, nonce: u64) -> Vec<u8> {
    let mut t = Token::from_bytes(real).expect("token");
    t.payload.actor = actor.to_string();
    t.payload.surface = surface.to_string();
    t.payload.nonce.0[..8].copy_from_slice(&nonce.to_be_bytes());
    t.signature[0] ^= 1;
    t.to_bytes()
}

fn params(amount: u64) -> String {
    transfer_by("x", amount, "x").params_json
}

async fn permit(net: &Testnet, via: u64, actor: &str, key: &str) -> Vec<u8> {
    permit_request(net, via, transfer_by(actor, 10, key))
        .await
        .token
}

fn redemptions(ledger: &[pb::LedgerEntry]) -> Vec<Redemption> {
    ledger
        .iter()
        .filter(|e| e.kind == u32::from(EntryKind::Redemption.code()))
        .map(|e| Redemption::decode(&e.payload).expect("a v2 redemption"))
        .collect()
}

async fn whole_ledger(net: &Testnet, id: u64) -> Vec<pb::LedgerEntry> {
    let head = net
        .wait_converged(Duration::from_secs(10))
        .await
        .expect("converged");
    net.ledger(id, 1, head.index).await.expect("ledger")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_made_up_token_without_its_agents_presentation_certifies_nobody() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "made-up tokens", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let real = permit(&net, 1, "agent-4", "real").await;
        let fake = made_up(&real, "agent-3", "payments", 1);
        let head = net
            .wait_converged(Duration::from_secs(10))
            .await
            .expect("converged");
        let leader = net
            .wait_leader(Duration::from_secs(10))
            .await
            .expect("leader");
        let follower = other_than(&net, &[leader]);
        for via in [leader, follower] {
            // A registered broker without the agent's presentation.
            let r = net
                .redeem_with("broker-1", &fake, &params(10), Vec::new())
                .expect("call");
            let err = redeem(&net, via, r).await.expect_err("no presentation");
            assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
            assert_eq!(
                refused(&err),
                (Some(Reason::PresentationRefused), "missing".into())
            );
            // The presentation of another agent.
            let p = net
                .presentation("agent-4", &fake, "broker-1", &params(10), now_unix_ms())
                .expect("presentation");
            let r = net
                .redeem_with("broker-1", &fake, &params(10), p.encode())
                .expect("call");
            let err = redeem(&net, via, r).await.expect_err("another agent");
            assert_eq!(
                refused(&err),
                (Some(Reason::PresentationRefused), "other-agent".into()),
                "{err:?}"
            );
            // No credentials at all (the old attack: one flipped bit of
            // another agent's real token, sent by anyone).
            let mut flipped = real.clone();
            let last = flipped.len() - 1;
            flipped[last] ^= 1;
            for token in [fake.clone(), flipped] {
                let err = redeem(
                    &net,
                    via,
                    pb::RedeemRequest {
                        token,
                        params_json: params(10),
                        ..Default::default()
                    },
                )
                .await
                .expect_err("unsigned");
                assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
                assert_eq!(
                    refused(&err),
                    (Some(Reason::CallerUnauthenticated), "unsigned".into())
                );
            }
        }
        let after = net
            .wait_converged(Duration::from_secs(10))
            .await
            .expect("converged");
        assert_eq!(after, head, "nothing reached the ledger");
        nobody_certified(&net, "agent acme/agent-3").await;
        nobody_certified(&net, "agent acme/agent-4").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_or_relayed_presentation_redeems_once_and_certifies_nobody() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "retry and relay", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let token = permit(&net, 2, "agent-1", "retry").await;
        let hand_off = net.redeem_request(&token, &params(10)).expect("hand-off");
        let leader = net
            .wait_leader(Duration::from_secs(10))
            .await
            .expect("leader");
        let follower = other_than(&net, &[leader]);
        let first = redeem(&net, follower, hand_off.clone())
            .await
            .expect("first redemption");
        // The broker's retry, through the leader and another follower.
        for via in [leader, other_than(&net, &[leader, follower])] {
            let err = redeem(&net, via, hand_off.clone())
                .await
                .expect_err("retry");
            assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
            assert_eq!(refused(&err).0, Some(Reason::NonceRedeemed));
            assert!(err.message().contains("nobody certified"), "{err:?}");
            assert!(
                err.message()
                    .contains(&format!("ledger index {}", first.ledger_index)),
                "{err:?}"
            );
        }
        // A second broker (which guards payments too) relaying the same
        // presentation: it was handed to broker-1, not to broker-2.
        let relayed = net
            .redeem_with(
                "broker-2",
                &token,
                &params(10),
                hand_off.presentation.clone(),
            )
            .expect("call");
        let err = redeem(&net, leader, relayed).await.expect_err("relayed");
        assert_eq!(
            refused(&err),
            (Some(Reason::PresentationRefused), "other-broker".into()),
            "{err:?}"
        );
        let ledger = whole_ledger(&net, 3).await;
        let nonce = Token::from_bytes(&token).expect("token").payload.nonce;
        let of_token: Vec<_> = redemptions(&ledger)
            .into_iter()
            .filter(|r| r.token.payload.nonce == nonce)
            .collect();
        assert_eq!(of_token.len(), 1, "exactly one redemption");
        assert_eq!(of_token[0].presentation.broker, "broker-1");
        nobody_certified(&net, "agent acme/agent-1").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_presentations_by_the_agent_certify_it_and_the_certificate_verifies_from_an_export() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "replay by the agent", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let token = permit(&net, 1, "agent-2", "twice").await;
        let at = now_unix_ms();
        let presented = |at: u64| {
            net.presentation("agent-2", &token, "broker-1", &params(10), at)
                .expect("presentation")
        };
        let (p1, p2) = (presented(at), presented(at + 1));
        let call = |p: &senatus_quorum::presentation::Presentation| {
            net.redeem_with("broker-1", &token, &params(10), p.encode())
                .expect("call")
        };
        redeem(&net, 2, call(&p1)).await.expect("first");
        let err = redeem(&net, 4, call(&p2)).await.expect_err("second");
        assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
        let bytes = certified_everywhere(&net, "agent acme/agent-2", "token-replayed").await;
        assert!(
            err.message().contains("issued against agent acme/agent-2"),
            "{err:?}"
        );

        // From an export alone: the Certificate entry, checked with public
        // material (genesis, seal 0, the sealed registry), carries the
        // agent's two presentations.
        let ledger = whole_ledger(&net, 5).await;
        let cert = ledger
            .iter()
            .filter(|e| e.kind == u32::from(EntryKind::Certificate.code()))
            .map(|e| SignedCertificate::decode(&e.payload).expect("certificate"))
            .find(|c| c.encode() == bytes)
            .expect("the certificate is in the export");
        match &cert.certificate.evidence {
            Evidence::TokenReplayed { first, second, .. } => {
                assert_eq!((first, second), (&p1, &p2));
            }
            other => panic!("evidence {other:?}"),
        }
        let layer = PolicyLayer::load_dir(&tmp.path().join("net/policy")).expect("layer");
        let genesis = net.genesis().clone();
        let chain = vec![senatus_node::gate::Gate::seal_zero(&genesis)];
        senatus_replica::certified::check_against_chain(&cert, &genesis, &chain, layer.registry())
            .expect("the certificate verifies offline");
        // The one redemption names the agent's first presentation and the
        // broker that signed it; both signatures check out.
        let first = redemptions(&ledger)
            .into_iter()
            .find(|r| r.token_bytes == token)
            .expect("redemption");
        assert_eq!(first.presentation, p1);
        assert_eq!(
            first.check(layer.registry(), &genesis.digest()),
            Ok("broker-1".to_string())
        );
        // Its later decisions are DENY; the others' are not.
        let r = decide_as_is(&net, 3, signed(&net, transfer_by("agent-2", 10, "after")))
            .await
            .expect("decide");
        assert_eq!(r.outcome, "DENY", "{r:?}");
        permit(&net, 3, "agent-8", "unaffected").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_and_presentations_that_are_not_right_are_refused_each_with_its_reason() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "refusals", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let token = permit(&net, 1, "agent-6", "refusals").await;
        let now = now_unix_ms();
        let p = |agent: &str, broker: &str, params: &str, at: u64| {
            net.presentation(agent, &token, broker, params, at)
                .expect("presentation")
                .encode()
        };
        let honest = p("agent-6", "broker-1", &params(10), now);
        let head = net
            .wait_converged(Duration::from_secs(10))
            .await
            .expect("converged");

        let stranger = SecretKey::generate(&mut rand::rngs::OsRng);
        let agent_key = net.client_key("agent-6").expect("key");
        let with_key = |key: &SecretKey, presentation: Vec<u8>| pb::RedeemRequest {
            token: token.clone(),
            params_json: params(10),
            auth: Some(net.call_auth(key, "Redeem", &presentation)),
            presentation,
        };
        let mut other_body = with_key(&net.client_key("broker-1").expect("key"), honest.clone());
        other_body.presentation = p("agent-6", "broker-1", &params(10), now + 1);
        let infra = made_up(&token, "agent-6", "infra", 9);
        let cases: Vec<(&str, pb::RedeemRequest, Reason, &str)> = vec![
            (
                "an unregistered broker key",
                with_key(&stranger, honest.clone()),
                Reason::CallerUnauthenticated,
                "unknown-key",
            ),
            (
                "an agent's key posing as a broker",
                with_key(&agent_key, honest.clone()),
                Reason::CallerNotAuthorized,
                "wrong-role",
            ),
            (
                "a broker signature over another presentation",
                other_body,
                Reason::CallerUnauthenticated,
                "bad-signature",
            ),
            (
                "a broker outside its surfaces",
                net.redeem_with(
                    "broker-2",
                    &infra,
                    &params(10),
                    net.presentation("agent-6", &infra, "broker-2", &params(10), now)
                        .expect("presentation")
                        .encode(),
                )
                .expect("call"),
                Reason::CallerNotAuthorized,
                "wrong-surface",
            ),
            (
                "a presentation signed by another agent",
                net.redeem_with(
                    "broker-1",
                    &token,
                    &params(10),
                    p("agent-7", "broker-1", &params(10), now),
                )
                .expect("call"),
                Reason::PresentationRefused,
                "other-agent",
            ),
            (
                "a presentation to another broker",
                net.redeem_with(
                    "broker-1",
                    &token,
                    &params(10),
                    p("agent-6", "broker-2", &params(10), now),
                )
                .expect("call"),
                Reason::PresentationRefused,
                "other-broker",
            ),
            (
                "params other than those presented",
                net.redeem_with(
                    "broker-1",
                    &token,
                    &params(11),
                    p("agent-6", "broker-1", &params(10), now),
                )
                .expect("call"),
                Reason::PresentationRefused,
                "other-params",
            ),
            (
                "a stale presentation",
                net.redeem_with(
                    "broker-1",
                    &token,
                    &params(10),
                    p("agent-6", "broker-1", &params(10), now - 600_000),
                )
                .expect("call"),
                Reason::PresentationRefused,
                "not-fresh",
            ),
            (
                "a presentation that does not decode",
                net.redeem_with(
                    "broker-1",
                    &token,
                    &params(10),
                    b"not a presentation".to_vec(),
                )
                .expect("call"),
                Reason::PresentationRefused,
                "malformed",
            ),
        ];
        let leader = net
            .wait_leader(Duration::from_secs(10))
            .await
            .expect("leader");
        for (what, call, reason, rule) in cases {
            let err = redeem(&net, leader, call).await.expect_err(what);
            assert_eq!(
                refused(&err),
                (Some(reason), rule.to_string()),
                "{what}: {err:?}"
            );
        }
        let after = net
            .wait_converged(Duration::from_secs(10))
            .await
            .expect("converged");
        assert_eq!(after, head, "nothing reached the ledger");
        nobody_certified(&net, "agent acme/agent-6").await;
        // The token was not burnt: the honest hand-off still redeems.
        let r = net
            .redeem_with("broker-1", &token, &params(10), honest)
            .expect("call");
        redeem(&net, leader, r).await.expect("honest redemption");
    })
    .await;
}

/// Agents `agent-0001` .. `agent-{n}` of tenant acme, and the brokers,
/// operator and auditor a testnet needs, each with a fresh key.
fn many_agents(n: usize) -> (Registry, Vec<(Identity, SecretKey)>) {
    let mut out = Vec::new();
    let mut add = |name: String, role: Role, tenant: Option<&str>, surfaces: &[&str]| {
        let key = SecretKey::generate(&mut rand::rngs::OsRng);
        let id = Identity {
            name: name.clone(),
            role,
            key: Key32(key.public()),
            tenant: tenant.map(str::to_string),
            actors: tenant.map(|_| vec![name.clone()]).unwrap_or_default(),
            surfaces: surfaces.iter().map(|s| s.to_string()).collect(),
        };
        out.push((id, key));
    };
    for i in 1..=n {
        add(format!("agent-{i:04}"), Role::Agent, Some("acme"), &[]);
    }
    add("operator-1".into(), Role::Operator, None, &[]);
    add("auditor-1".into(), Role::Auditor, None, &[]);
    add("broker-1".into(), Role::Broker, None, &["payments"]);
    let registry = Registry::new(out.iter().map(|(i, _)| i.clone()).collect()).expect("registry");
    (registry, out)
}

/// A testnet in `tmp/net` whose sealed registry is `registry`, with the
/// client keys written where the testnet helpers look for them.
async fn cluster_with(tmp: &Path, registry: &Registry, keys: &[(Identity, SecretKey)]) -> Testnet {
    let policy = tmp.join("policy");
    PolicyLayer::example()
        .with_registry(registry)
        .expect("layer")
        .write_dir(&policy)
        .expect("write layer");
    let out = tmp.join("net");
    let args: Vec<String> = vec![
        "genesis".into(),
        "init".into(),
        "--out".into(),
        out.to_str().expect("utf-8").into(),
        "--policy".into(),
        policy.to_str().expect("utf-8").into(),
    ];
    let o = tokio::task::spawn_blocking(move || senatus_cli(args))
        .await
        .expect("init");
    assert!(o.status.success(), "genesis init: {}", show(&o));
    let clients = out.join("clients");
    std::fs::create_dir_all(&clients).expect("clients dir");
    for (id, key) in keys {
        key.write_client(&clients.join(format!("{}.key", id.name)), id.role)
            .expect("client key");
    }
    let opts = UpOptions {
        ready_timeout: Duration::from_secs(20),
        log_filter: "warn".into(),
        ..UpOptions::default()
    };
    Testnet::up(&out, Path::new(env!("CARGO_BIN_EXE_senatus")), opts)
        .await
        .expect("testnet up")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_agent_offences_never_crowd_out_a_validators_drift_certificate() {
    const AGENTS: usize = 120;
    const OFFENCES: usize = 10_000;
    const IN_FLIGHT: usize = 32;
    let _serial = serial().await;
    bounded(Duration::from_secs(600), "offences then drift", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (registry, keys) = many_agents(AGENTS);
        let net = cluster_with(tmp.path(), &registry, &keys).await;
        // Any token the cluster issued, to make up others from.
        let real = decide_as_is(
            &net,
            1,
            signed_as(&net, "agent-0001", transfer_by("agent-0001", 10, "base")),
        )
        .await
        .expect("decide")
        .token;

        // Each offence: agent k presents a token naming itself that the
        // cluster never signed (a forgery, by its own presentation).
        let leader = net.wait_leader(Duration::from_secs(10)).await.expect("leader");
        let started = Instant::now();
        let mut calls = tokio::task::JoinSet::new();
        let mut forged = 0usize;
        for i in 0..OFFENCES {
            let agent = format!("agent-{:04}", 1 + i % AGENTS);
            let token = made_up(&real, &agent, "payments", i as u64 + 1);
            let p = net
                .presentation(&agent, &token, "broker-1", &params(10), now_unix_ms())
                .expect("presentation");
            let call = net
                .redeem_with("broker-1", &token, &params(10), p.encode())
                .expect("call");
            let mut c = net.client(leader).expect("client");
            calls.spawn(async move {
                tokio::time::timeout(Duration::from_secs(20), c.redeem(call))
                    .await
                    .expect("answered in time")
            });
            while calls.len() >= IN_FLIGHT {
                let answer = calls.join_next().await.expect("a call").expect("task");
                let err = answer.expect_err("a forged token never redeems");
                assert_eq!(refused(&err).0, Some(Reason::TokenForged), "{err:?}");
                forged += 1;
            }
        }
        while let Some(answer) = calls.join_next().await {
            let err = answer.expect("task").expect_err("a forged token never redeems");
            assert_eq!(refused(&err).0, Some(Reason::TokenForged), "{err:?}");
            forged += 1;
        }
        assert_eq!(forged, OFFENCES);
        let offences_took = started.elapsed();

        // At most one certificate per agent and kind per issuer.
        for id in net.running() {
            let list = certificates(&net, id).await;
            let agents = list
                .certificates
                .iter()
                .filter(|c| c.subject.starts_with("agent "))
                .count();
            assert!(
                (1..=AGENTS * 5).contains(&agents),
                "node {id} holds {agents} agent certificates"
            );
            eprintln!(
                "node {id}: {agents} certificates about agents after {OFFENCES} offences by {AGENTS} agents ({offences_took:?})"
            );
        }

        // Then a policy drift on validator 4: certified everywhere, locked.
        let config = senatus_genesis::config::NodeConfig::load(&net.spec(4).expect("spec").config)
            .expect("node config");
        let entities = config.policy_dir.join("entities.json");
        let mut edited = std::fs::read(&entities).expect("entities");
        edited.extend_from_slice(b"\n");
        std::fs::write(&entities, &edited).expect("edit");
        let drift = certified_everywhere(&net, "validator 4", "policy-drift").await;
        let drift = SignedCertificate::decode(&drift).expect("certificate");
        let four = senatus_genesis::NodeId::new(4).expect("node id");
        assert_eq!(drift.certificate.subject, Subject::Validator(four));
        let list = certificates(&net, 4).await;
        assert_eq!(list.locked_by, drift.id().0.0.to_vec(), "validator 4 locked");
    })
    .await;
}
