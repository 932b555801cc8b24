//! Outsiders out, on five real `senatus node` processes: the peer port is
//! mutual TLS 1.3 pinned to the validators of genesis, the public API is
//! TLS 1.3 pinned to genesis, and an authenticated validator cannot speak
//! for another. Each hostile case shows its own refusal, and afterwards the
//! cluster is unchanged and still deciding.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;

/// A PERMIT for agent-7 through node `via`.
async fn permit(net: &Testnet, via: u64, key: &str) -> pb::DecideReply {
    permit_request(net, via, transfer_by("agent-7", 50_000, key)).await
}
use openraft::{LogId, Vote};
use senatus_genesis::tls::{PresentedIdentity, TlsMaterial};
use senatus_genesis::{Genesis, NodeId};
use senatus_node::ledger::EntryKind;
use senatus_node::network::encode;
use senatus_node::raft_types::TypeConfig;
use senatus_proto::reason::Reason;
use senatus_proto::v1 as pb;
use senatus_proto::v1::peer_client::PeerClient;
use senatus_testnet::{RaftOverrides, Testnet};
use senatus_transport::NodeTls;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::transport::{Channel, Endpoint};

const TEST_BOUND: Duration = Duration::from_secs(150);
const CALL: Duration = Duration::from_secs(10);
/// The HTTP/2 client preface and an empty SETTINGS frame: what a gRPC
/// client sends first once TLS is up.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

fn genesis(net: &Testnet) -> Arc<Genesis> {
    Arc::new(Genesis::load(&net.dir().join("genesis.json")).expect("genesis"))
}

fn material(net: &Testnet, id: u64) -> TlsMaterial {
    let d = net.dir().join(format!("node-{id}"));
    TlsMaterial::read(&d.join("tls.key"), &d.join("tls.crt")).expect("tls material")
}

/// Validator `id`'s own TLS identity, as its node uses it.
fn node_tls(net: &Testnet, id: u64) -> NodeTls {
    NodeTls::new(&material(net, id), genesis(net))
}

fn node(id: u64) -> NodeId {
    NodeId::new(id).expect("node id")
}

fn endpoint(addr: &str) -> Endpoint {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(3))
}

fn peer(channel: Channel) -> PeerClient<Channel> {
    PeerClient::new(channel)
        .max_decoding_message_size(senatus_node::network::PEER_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(senatus_node::network::PEER_MESSAGE_BYTES_MAX)
}

/// Connects to `addr` with `config`, sends the HTTP/2 preface and reads
/// the server's first bytes. `Ok` only if the server answered over an
/// established TLS session; `Err` carries the TLS error text (a refusal
/// by the server arrives as an alert on the first read in TLS 1.3).
async fn handshake(addr: &str, config: Arc<rustls::ClientConfig>) -> Result<usize, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("tcp: {e}"))?;
    let name = rustls::pki_types::ServerName::try_from("senatus.invalid")
        .expect("name")
        .to_owned();
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(H2_PREFACE).await.map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    match tokio::time::timeout(CALL, tls.read(&mut buf)).await {
        Err(_) => Err("no answer".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(0)) => Err("closed".into()),
        Ok(Ok(n)) => Ok(n),
    }
}

/// Presents a fixed certificate and key, whether or not they belong
/// together (rustls' own builder refuses a mismatched pair; a hostile
/// client need not).
#[derive(Debug)]
struct Present(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for Present {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A TLS 1.3 client config presenting `cert_der` with `pkcs8_der` and
/// accepting validator `target` as the server.
fn client_presenting(
    net: &Testnet,
    cert_der: Vec<u8>,
    pkcs8_der: Vec<u8>,
    target: u64,
) -> Arc<rustls::ClientConfig> {
    let provider = senatus_transport::provider();
    let key = provider
        .key_provider
        .load_private_key(rustls::pki_types::PrivateKeyDer::Pkcs8(pkcs8_der.into()))
        .expect("key");
    let certified = rustls::sign::CertifiedKey::new(vec![cert_der.into()], key);
    let verifier = Arc::new(senatus_transport::GenesisVerifier::new(
        genesis(net),
        Some(node(target)),
    ));
    let mut c = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("tls 1.3")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(Arc::new(Present(Arc::new(certified))));
    c.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(c)
}

/// A call refused below gRPC: the transport failed (TLS alert, closed
/// connection, not HTTP/2), so no service ever saw it. (The peer service's
/// own `PEER_UNAUTHENTICATED` refusal is the second wall: mutual TLS lets
/// no caller without a validator certificate reach it.)
fn assert_refused_below_grpc(what: &str, s: &tonic::Status, why: &str) {
    let text = format!("{s:?}");
    assert!(
        matches!(
            s.code(),
            tonic::Code::Unavailable
                | tonic::Code::Unknown
                | tonic::Code::Internal
                | tonic::Code::Cancelled
        ) && (text.contains("transport error")
            || text.contains("h2 protocol error")
            || text.contains("connection closed"))
            && text.contains(why),
        "{what}: not a transport refusal ({why}): {text}"
    );
    // No handler ran, so no senatus reason: what lets a client tell a
    // refusal by the transport from one by a validator.
    assert_eq!(
        senatus_proto::reason::reason_of(s),
        None,
        "{what}: a transport refusal with a senatus reason: {text}"
    );
}

/// One line of node `id`'s log holds every needle (plain-text logs:
/// `field=value`, strings quoted).
/// The node writes its line just after it sends the alert the client
/// sees, so this waits for it, bounded.
async fn logged(net: &Testnet, id: u64, needles: &[&str]) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let log = net.last_run_log(id).expect("log");
        if log.lines().any(|l| needles.iter().all(|n| l.contains(n))) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fresh Ed25519 key as PKCS#8 v1 DER.
fn random_pkcs8() -> Vec<u8> {
    let seed: [u8; 32] = rand::random();
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&seed);
    der
}

/// Every peer RPC, each with a body that would do harm if it were served:
/// a higher term that rewrites logs, a vote that poisons the term, a
/// snapshot chunk at 1 TiB, writes of every dangerous kind, nonces and
/// shares for whoever names the leader, a certificate.
fn hostile_calls(leader: u64, redemption: Vec<u8>) -> Vec<(&'static str, HostileCall)> {
    let append = openraft::raft::AppendEntriesRequest::<TypeConfig> {
        vote: Vote::new_committed(1_000_000, leader),
        prev_log_id: Some(LogId::new(openraft::CommittedLeaderId::new(1, leader), 1)),
        entries: vec![],
        leader_commit: None,
    };
    let vote = openraft::raft::VoteRequest::<u64> {
        vote: Vote::new(u64::MAX, leader),
        last_log_id: None,
    };
    let snapshot = openraft::raft::InstallSnapshotRequest::<TypeConfig> {
        vote: Vote::new_committed(1_000_000, leader),
        meta: openraft::SnapshotMeta::default(),
        offset: 1 << 40,
        data: vec![0; 16],
        done: false,
    };
    let raft = |payload: Vec<u8>| pb::RaftMessage {
        from: leader,
        payload,
    };
    vec![
        (
            "AppendEntries",
            HostileCall::Append(raft(encode(&append).expect("encode"))),
        ),
        (
            "Vote",
            HostileCall::Vote(raft(encode(&vote).expect("encode"))),
        ),
        (
            "InstallSnapshot",
            HostileCall::Snapshot(raft(encode(&snapshot).expect("encode"))),
        ),
        (
            "ForwardWrite(Record)",
            HostileCall::Forward(pb::WriteCommand {
                kind: u32::from(EntryKind::Record.code()),
                payload: b"written by an outsider".to_vec(),
            }),
        ),
        (
            "ForwardWrite(Redemption)",
            HostileCall::Forward(pb::WriteCommand {
                kind: u32::from(EntryKind::Redemption.code()),
                payload: redemption,
            }),
        ),
        (
            "ForwardWrite(Decision)",
            HostileCall::Forward(pb::WriteCommand {
                kind: u32::from(EntryKind::Decision.code()),
                payload: vec![1, 2, 3],
            }),
        ),
        (
            "Commitments",
            HostileCall::Commitments(pb::CommitmentsRequest {
                from: leader,
                count: 256,
            }),
        ),
        (
            "SignBatch",
            HostileCall::SignBatch(pb::SignBatchRequest {
                from: leader,
                ledger_index: 1,
                request: vec![0; 64],
                attestation: vec![0; 120],
            }),
        ),
        (
            "SignSeal",
            HostileCall::SignSeal(pb::SignSealRequest {
                from: leader,
                proposal_id: vec![0; 32],
                request: vec![0; 64],
                ledger_index: 1,
                entry_hash: vec![0; 32],
                attestations: vec![pb::HeadAttestation {
                    validator: leader,
                    signature: vec![0; 64],
                }],
            }),
        ),
        (
            "AttestSeal",
            HostileCall::AttestSeal(pb::AttestSealRequest {
                from: leader,
                proposal_id: vec![0; 32],
                seal_digest: vec![0; 32],
                ledger_index: 1,
                entry_hash: vec![0; 32],
            }),
        ),
        (
            "Certify",
            HostileCall::Certify(pb::CertifyRequest {
                from: leader,
                certificate: vec![0; 128],
            }),
        ),
        (
            "Witness",
            HostileCall::Witness(pb::WitnessRequest {
                from: leader,
                attestations: vec![vec![0; 128]],
            }),
        ),
    ]
}

#[derive(Debug, Clone)]
enum HostileCall {
    Append(pb::RaftMessage),
    Vote(pb::RaftMessage),
    Snapshot(pb::RaftMessage),
    Forward(pb::WriteCommand),
    Commitments(pb::CommitmentsRequest),
    SignBatch(pb::SignBatchRequest),
    SignSeal(pb::SignSealRequest),
    AttestSeal(pb::AttestSealRequest),
    Certify(pb::CertifyRequest),
    Witness(pb::WitnessRequest),
}

impl HostileCall {
    async fn send(self, c: &mut PeerClient<Channel>) -> Result<(), tonic::Status> {
        match self {
            HostileCall::Append(m) => c.append_entries(m).await.map(drop),
            HostileCall::Vote(m) => c.vote(m).await.map(drop),
            HostileCall::Snapshot(m) => c.install_snapshot(m).await.map(drop),
            HostileCall::Forward(m) => c.forward_write(m).await.map(drop),
            HostileCall::Commitments(m) => c.commitments(m).await.map(drop),
            HostileCall::SignBatch(m) => c.sign_batch(m).await.map(drop),
            HostileCall::SignSeal(m) => c.sign_seal(m).await.map(drop),
            HostileCall::AttestSeal(m) => c.attest_seal(m).await.map(drop),
            HostileCall::Certify(m) => c.certify(m).await.map(drop),
            HostileCall::Witness(m) => c.witness(m).await.map(drop),
        }
    }
}

async fn unchanged_and_deciding(net: &Testnet, before: &pb::DecideReply) {
    // Every ledger identical, the earlier token still unredeemed (it
    // redeems now, once), and the cluster still deciding.
    let head = net
        .wait_converged(Duration::from_secs(20))
        .await
        .expect("converged");
    let g = genesis_digest(net, 1).await;
    let reference = verified_ledger(net, 1, &head, g).await;
    assert_identical_everywhere(net, &head, g, &reference).await;
    assert!(
        !reference
            .iter()
            .any(|e| e.kind == u32::from(EntryKind::Redemption.code())),
        "no redemption reached the ledger"
    );
    let mut c = net.client(2).expect("client");
    let params = transfer_by("agent-7", 50_000, "-").params_json;
    let redeemed = tokio::time::timeout(
        CALL,
        c.redeem(
            net.redeem_request(&before.token, &params)
                .expect("hand-off"),
        ),
    )
    .await
    .expect("redeem within bound")
    .expect("the token was never redeemed by the outsider");
    assert!(redeemed.into_inner().ledger_index > head.index);
    permit(net, 3, "after-the-attack").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_a_validator_key_is_refused_on_every_peer_rpc_of_every_node() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "outsider on the peer port", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let leader = net
            .wait_leader(Duration::from_secs(10))
            .await
            .expect("leader");
        let before = permit(&net, leader, "before-the-attack").await;

        for id in net.ids() {
            let addr = net.spec(id).expect("spec").peer.clone();
            // TLS that verifies the server but presents no certificate:
            // refused by the server at the handshake.
            let no_cert =
                senatus_transport::api_client(genesis(&net), Some(node(id))).expect("config");
            let err = handshake(&addr, no_cert.clone())
                .await
                .expect_err("a client without a certificate must be refused");
            assert!(err.contains("CertificateRequired"), "node {id}: {err}");
            // Plaintext: never reaches gRPC.
            let mut plain = peer(endpoint(&addr).connect_lazy());
            // Every RPC, over both.
            for (what, call) in hostile_calls(leader, ready_made_redemption(&net, &before.token)) {
                let mut tls = peer(senatus_transport::lazy_channel(
                    &endpoint(&addr),
                    no_cert.clone(),
                ));
                for (how, client) in [
                    ("tls without a certificate", &mut tls),
                    ("plaintext", &mut plain),
                ] {
                    let r = tokio::time::timeout(CALL, call.clone().send(client))
                        .await
                        .unwrap_or_else(|_| panic!("{what} on node {id} over {how}: no answer"));
                    let s =
                        r.expect_err(&format!("{what} on node {id} over {how} must be refused"));
                    // Which alert reaches the client first races with its
                    // own writes (broken pipe); the raw handshake above
                    // shows the alert itself.
                    assert_refused_below_grpc(&format!("{what} on node {id} over {how}"), &s, "");
                }
            }
        }
        unchanged_and_deciding(&net, &before).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_certificate_without_its_key_is_refused() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "copied certificate", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        // Validator 2's real certificate (public), another private key.
        let cert = material(&net, 2).cert_der.clone();
        let config = client_presenting(&net, cert, random_pkcs8(), 1);
        let err = handshake(&net.spec(1).expect("spec").peer, config)
            .await
            .expect_err("a certificate without its key must be refused");
        assert!(err.contains("DecryptError"), "{err}");
        assert!(
            logged(&net, 1, &["TLS handshake refused", "listener=\"peer\""]).await,
            "node 1 logs the refusal"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validator_3_answering_at_validator_2s_address_is_refused_by_the_client() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "wrong validator", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        // Validator 1 dials validator 2, but validator 3 (with its real,
        // valid certificate) answers.
        let config = node_tls(&net, 1).peer_client(node(2)).expect("config");
        let err = handshake(&net.spec(3).expect("spec").peer, config)
            .await
            .expect_err("another validator's certificate must be refused");
        assert!(
            err.contains("the server is validator 3, not validator 2 that was dialled"),
            "{err}"
        );
        // The same on the public API: a client that wants validator 2.
        let api = senatus_transport::api_client(genesis(&net), Some(node(2))).expect("config");
        let err = handshake(&net.spec(3).expect("spec").api, api)
            .await
            .expect_err("refused");
        assert!(err.contains("not validator 2"), "{err}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_speaks_only_tls_1_2_is_refused() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "TLS 1.2", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let m = material(&net, 2);
        let verifier = Arc::new(senatus_transport::GenesisVerifier::new(
            genesis(&net),
            Some(node(1)),
        ));
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(m.pkcs8_der().to_vec().into());
        let mut c = rustls::ClientConfig::builder_with_provider(senatus_transport::provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .expect("tls 1.2")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(vec![m.cert_der.clone().into()], key)
            .expect("config");
        c.alpn_protocols = vec![b"h2".to_vec()];
        let c = Arc::new(c);
        for addr in [
            net.spec(1).expect("spec").peer.clone(),
            net.spec(1).expect("spec").api.clone(),
        ] {
            let err = handshake(&addr, c.clone())
                .await
                .expect_err("TLS 1.2 must be refused");
            assert!(
                err.contains("ProtocolVersion") || err.contains("incompatible"),
                "{addr}: {err}"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_certificate_for_a_key_outside_genesis_is_refused() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "key outside genesis", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let g = genesis(&net);
        let mut rng = rand::rngs::OsRng;
        let stranger = senatus_genesis::keys::SecretKey::generate(&mut rng);
        let now = now_unix_ms();
        // Well formed and self-consistent, endorsed by a key genesis does
        // not know: once claiming validator 2, once a node id outside the
        // validator set.
        for (claimed, expect) in [
            (2, "is not endorsed by node 2's identity key"),
            (9, "node 9, which is not a validator of genesis"),
        ] {
            let m = TlsMaterial::issue(
                &stranger,
                &g.body.chain_id,
                node(claimed),
                now - 1000,
                now + 3_600_000,
                &mut rng,
            )
            .expect("issue");
            let p = PresentedIdentity::from_cert_der(&m.cert_der).expect("parses");
            assert!(p.check(&g, now).is_err());
            let config = client_presenting(&net, m.cert_der.clone(), m.pkcs8_der().to_vec(), 1);
            let err = handshake(&net.spec(1).expect("spec").peer, config)
                .await
                .expect_err("refused");
            assert!(
                err.contains("CertificateUnknown"),
                "claiming {claimed}: {err}"
            );
            assert!(
                logged(&net, 1, &["TLS handshake refused", expect]).await,
                "node 1 logs why ({expect})"
            );
        }
        // Another chain's validator 1 (a real, valid ceremony elsewhere).
        let other = TlsMaterial::issue(
            &stranger,
            "another-chain",
            node(1),
            now - 1000,
            now + 3_600_000,
            &mut rng,
        )
        .expect("issue");
        let config = client_presenting(&net, other.cert_der.clone(), other.pkcs8_der().to_vec(), 2);
        let err = handshake(&net.spec(2).expect("spec").peer, config)
            .await
            .expect_err("refused");
        assert!(err.contains("CertificateUnknown"), "{err}");
        assert!(
            logged(
                &net,
                2,
                &["TLS handshake refused", "is for chain \"another-chain\""]
            )
            .await,
            "node 2 logs why"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authenticated_validator_cannot_speak_for_another_or_forward_a_redemption() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "lying validator", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let leader = net
            .wait_leader(Duration::from_secs(10))
            .await
            .expect("leader");
        let before = permit(&net, leader, "before-the-lies").await;
        // Validator 2 (or, when 2 leads, validator 4) lies to the leader.
        let liar = if leader == 2 { 4 } else { 2 };
        let victim = if leader == 3 { 5 } else { 3 };
        let mut c = peer_client(&net, leader, liar).await;

        let claims = [
            (
                "Certify",
                HostileCall::Certify(pb::CertifyRequest {
                    from: victim,
                    certificate: vec![0; 128],
                }),
            ),
            (
                "Witness",
                HostileCall::Witness(pb::WitnessRequest {
                    from: victim,
                    attestations: vec![],
                }),
            ),
            (
                "Commitments",
                HostileCall::Commitments(pb::CommitmentsRequest {
                    from: victim,
                    count: 1,
                }),
            ),
            (
                "Vote",
                HostileCall::Vote(pb::RaftMessage {
                    from: victim,
                    payload: encode(&openraft::raft::VoteRequest::<u64> {
                        vote: Vote::new(u64::MAX, victim),
                        last_log_id: None,
                    })
                    .expect("encode"),
                }),
            ),
        ];
        for (what, call) in claims {
            let s = call.send(&mut c).await.expect_err("refused");
            assert_eq!(s.code(), tonic::Code::PermissionDenied, "{what}: {s:?}");
            let why = senatus_proto::reason::reason_of(&s).expect("a reason");
            assert_eq!(
                why.known(),
                Some(Reason::PeerIdentityMismatch),
                "{what}: {s:?}"
            );
            assert_eq!(why.metadata["sender"], liar.to_string(), "{what}");
            assert_eq!(why.metadata["claimed"], victim.to_string(), "{what}");
            assert_eq!(why.metadata["field"], "from", "{what}");
            assert!(
                s.message().contains(&format!(
                    "authenticated as validator {liar}, but from names {victim}"
                )),
                "{what}: {}",
                s.message()
            );
        }
        // `from` honest, the vote inside naming someone else.
        let s = HostileCall::Vote(pb::RaftMessage {
            from: liar,
            payload: encode(&openraft::raft::VoteRequest::<u64> {
                vote: Vote::new(u64::MAX, victim),
                last_log_id: None,
            })
            .expect("encode"),
        })
        .send(&mut c)
        .await
        .expect_err("refused");
        assert_eq!(s.code(), tonic::Code::PermissionDenied, "{s:?}");
        assert!(
            s.message().contains("the vote's node id names"),
            "{}",
            s.message()
        );
        assert_eq!(Reason::of(&s), Some(Reason::PeerIdentityMismatch), "{s:?}");

        // A ready-made Redemption, from a real validator: refused.
        let s = c
            .forward_write(pb::WriteCommand {
                kind: u32::from(EntryKind::Redemption.code()),
                payload: ready_made_redemption(&net, &before.token),
            })
            .await
            .expect_err("refused");
        assert_eq!(s.code(), tonic::Code::PermissionDenied, "{s:?}");
        assert!(
            s.message()
                .contains(&format!("ForwardWrite from validator {liar}")),
            "{}",
            s.message()
        );
        let why = senatus_proto::reason::reason_of(&s).expect("a reason");
        assert_eq!(why.known(), Some(Reason::ForwardRefused), "{s:?}");
        assert_eq!(why.metadata["sender"], liar.to_string());
        assert_eq!(why.metadata["kind"], "Redemption");

        for rpc in ["rpc=\"Commitments\"", "rpc=\"ForwardWrite\""] {
            assert!(
                logged(&net, leader, &[rpc, &format!("sender={liar}"), "refused"]).await,
                "the leader logs the refusal of {rpc} with the sender"
            );
        }
        unchanged_and_deciding(&net, &before).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_api_answers_only_tls_and_a_client_with_genesis_verifies_it() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "public api", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let api = net.spec(1).expect("spec").api.clone();
        // Plaintext gRPC gets nothing.
        let mut plain =
            senatus_proto::v1::senatus_client::SenatusClient::new(endpoint(&api).connect_lazy());
        let s = tokio::time::timeout(CALL, plain.status(pb::StatusRequest {}))
            .await
            .expect("answer")
            .expect_err("plaintext refused");
        assert_refused_below_grpc("plaintext Status", &s, "");
        // Raw bytes: no HTTP/2 frame ever comes back, only a TLS alert or
        // a closed connection.
        let mut tcp = tokio::net::TcpStream::connect(&api).await.expect("tcp");
        tcp.write_all(H2_PREFACE).await.expect("write");
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(CALL, tcp.read_to_end(&mut buf)).await;
        assert!(
            buf.is_empty() || buf[0] == 0x15,
            "only a TLS alert record, got {:02x?}",
            &buf[..buf.len().min(16)]
        );

        // The CLI with only genesis connects and verifies the server.
        let genesis_path = net.dir().join("genesis.json");
        let args = |g: &Path| {
            vec![
                "status".to_string(),
                "--api".into(),
                api.clone(),
                "--genesis".into(),
                g.to_str().expect("utf-8").into(),
            ]
        };
        let a = args(&genesis_path);
        let out = tokio::task::spawn_blocking(move || senatus_cli(a))
            .await
            .expect("cli");
        assert!(out.status.success(), "{}", show(&out));
        // A genesis of another chain: the server is not one of its validators.
        let other = tmp.path().join("other");
        let init = vec![
            "genesis".to_string(),
            "init".into(),
            "--out".into(),
            other.to_str().expect("utf-8").into(),
            "--chain-id".into(),
            "another-chain".into(),
        ];
        let out = tokio::task::spawn_blocking(move || senatus_cli(init))
            .await
            .expect("cli");
        assert!(out.status.success(), "{}", show(&out));
        let a = args(&other.join("genesis.json"));
        let out = tokio::task::spawn_blocking(move || senatus_cli(a))
            .await
            .expect("cli");
        assert!(!out.status.success(), "{}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("another-chain") || err.contains("not a validator"),
            "{err}"
        );
    })
    .await;
}

/// A well-formed Redemption entry payload for `token` (the agent's
/// presentation to broker-1 and broker-1's signature): what a peer may
/// never forward ready-made, however right it is.
fn ready_made_redemption(net: &Testnet, token: &[u8]) -> Vec<u8> {
    let params = transfer_by("agent-7", 50_000, "-").params_json;
    let call = net.redeem_request(token, &params).expect("hand-off");
    let auth = call.auth.expect("signed");
    senatus_node::gate::Redemption {
        token_bytes: token.to_vec(),
        token: senatus_quorum::token::Token::from_bytes(token).expect("token"),
        presentation: senatus_quorum::presentation::Presentation::decode(&call.presentation)
            .expect("presentation"),
        broker: senatus_quorum::auth::CallAuth {
            key: senatus_genesis::Key32(auth.key.try_into().expect("32 bytes")),
            signed_at_ms: auth.signed_at_ms,
            signature: auth.signature.try_into().expect("64 bytes"),
        },
    }
    .encode()
}
