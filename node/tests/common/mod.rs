//! Helpers for the multi-process cluster tests: starting a testnet from the
//! `senatus` binary under test, bounded waits, ledger checks, and a raw
//! gRPC codec for sending bytes that are not a valid request.

#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use prost::bytes::{Buf as _, BufMut as _};
use senatus_genesis::Digest;
use senatus_node::ledger::{EntryKind, LedgerEntry, verify_chain};
use senatus_proto::v1 as pb;
use senatus_testnet::{Head, RaftOverrides, Testnet, UpOptions};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Cluster tests share two cores; one cluster at a time keeps the timing
/// bounds they assert (failover, fail-fast) meaningful.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Takes the one-cluster-at-a-time lock.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// Runs a test body with an upper bound; the body owns its `Testnet`, so
/// hitting the bound drops it and kills its processes before failing.
pub async fn bounded<T>(limit: Duration, what: &str, body: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, body).await {
        Ok(t) => t,
        Err(_) => panic!("{what}: exceeded the test bound of {limit:?}"),
    }
}

/// A five-node testnet in `tmp/net`, started from the binary under test,
/// ready (leader elected, one ledger head).
pub async fn cluster(tmp: &Path, raft: RaftOverrides) -> Testnet {
    let opts = UpOptions {
        raft,
        ready_timeout: Duration::from_secs(20),
        log_filter: "info".into(),
        ..UpOptions::default()
    };
    Testnet::up(
        &tmp.join("net"),
        Path::new(env!("CARGO_BIN_EXE_senatus")),
        opts,
    )
    .await
    .expect("testnet up")
}

/// Restarts `ids` with `SENATUS_FAULT=fault` (test builds only) and waits
/// for one leader and one ledger head.
pub async fn with_fault(net: &Testnet, ids: &[u64], fault: &str) {
    for &id in ids {
        net.stop(id).await.expect("stop");
        net.set_env(id, "SENATUS_FAULT", fault).expect("env");
        net.start(id).expect("start");
    }
    net.wait_leader(Duration::from_secs(30))
        .await
        .expect("leader");
    net.wait_converged(Duration::from_secs(30))
        .await
        .expect("converged");
}

/// A peer-service client of node `id`, authenticated by mutual TLS as
/// validator `as_node` (its `tls.key` and `tls.crt` from the testnet's
/// ceremony): what that validator would use. The connection is pinned to
/// validator `id`'s certificate.
pub async fn peer_client(
    net: &Testnet,
    id: u64,
    as_node: u64,
) -> senatus_proto::v1::peer_client::PeerClient<tonic::transport::Channel> {
    let dir = net.dir().join(format!("node-{as_node}"));
    let material =
        senatus_genesis::tls::TlsMaterial::read(&dir.join("tls.key"), &dir.join("tls.crt"))
            .unwrap_or_else(|e| panic!("TLS material of validator {as_node}: {e}"));
    let tls = senatus_transport::NodeTls::new(&material, net.genesis().clone());
    let target = senatus_genesis::NodeId::new(id).expect("node id");
    let config = tls.peer_client(target).expect("peer TLS client config");
    let endpoint = tonic::transport::Endpoint::from_shared(format!(
        "http://{}",
        net.spec(id).expect("spec").peer
    ))
    .expect("peer endpoint")
    .connect_timeout(Duration::from_secs(5));
    senatus_proto::v1::peer_client::PeerClient::new(senatus_transport::lazy_channel(
        &endpoint, config,
    ))
}

/// Proposes the layer in `dir` through node `via` with `senatus amend
/// propose`, signed by the testnet's authority key (`tmp/net`), and
/// returns the proposal id it printed.
pub async fn propose_via(net: &Testnet, tmp: &Path, via: u64, dir: &Path, why: &str) -> String {
    let path = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    let args = vec![
        "amend".to_string(),
        "propose".into(),
        "--api".into(),
        net.spec(via).expect("spec").api.clone(),
        "--policy".into(),
        path(dir),
        "--justification".into(),
        why.into(),
        "--key".into(),
        path(&tmp.join("net/authority.key")),
    ];
    let genesis = net.genesis_path();
    let out = tokio::task::spawn_blocking(move || senatus_cli_with_genesis(&genesis, args))
        .await
        .expect("cli task");
    assert!(out.status.success(), "propose: {}", show(&out));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .filter(|w| w.len() == 64)
        .unwrap_or_else(|| panic!("no proposal id in: {}", show(&out)))
        .to_string()
}

/// A record payload naming its writer, distinct per `(tag, i)`.
pub fn payload(tag: &str, i: usize) -> Vec<u8> {
    format!("{tag}-{i:04}").into_bytes()
}

/// An acknowledged write: what was sent and what the cluster answered.
#[derive(Debug, Clone)]
pub struct Ack {
    /// The record payload sent.
    pub payload: Vec<u8>,
    /// The node's reply (ledger index and entry hash).
    pub reply: pb::WriteReply,
}

/// Writes one record through `via`, panicking on any error.
pub async fn write(net: &Testnet, via: u64, payload: Vec<u8>) -> Ack {
    let reply = net
        .append_record(via, payload.clone())
        .await
        .unwrap_or_else(|s| panic!("write via node {via}: {:?}: {}", s.code(), s.message()));
    assert_eq!(reply.hash.len(), 32, "entry hash length");
    Ack { payload, reply }
}

/// Writes `n` records through `via`, `concurrency` at a time; returns the
/// acknowledgements sorted by ledger index.
pub async fn write_many(
    net: &Testnet,
    via: u64,
    tag: &str,
    n: usize,
    concurrency: usize,
) -> Vec<Ack> {
    let client = net.client(via).expect("client");
    let operator = net.client_key("operator-1").expect("operator key");
    let mut acks = Vec::with_capacity(n);
    let mut next = 0usize;
    let mut set = tokio::task::JoinSet::new();
    while next < n || !set.is_empty() {
        while next < n && set.len() < concurrency {
            let mut c = client.clone();
            let p = payload(tag, next);
            let auth = net.call_auth(&operator, "AppendRecord", &p);
            set.spawn(async move {
                let r = c
                    .append_record(pb::AppendRecordRequest {
                        payload: p.clone(),
                        auth: Some(auth),
                    })
                    .await;
                (p, r)
            });
            next += 1;
        }
        let Some(done) = set.join_next().await else {
            break;
        };
        let (payload, r) = done.expect("writer task");
        let reply = r
            .unwrap_or_else(|s| panic!("write via node {via}: {:?}: {}", s.code(), s.message()))
            .into_inner();
        acks.push(Ack { payload, reply });
    }
    acks.sort_by_key(|a| a.reply.index);
    acks
}

/// The genesis digest node `id` chains entry 1 to.
pub async fn genesis_digest(net: &Testnet, id: u64) -> Digest {
    let h = net
        .client(id)
        .expect("client")
        .ledger_head(pb::LedgerHeadRequest {})
        .await
        .expect("LedgerHead")
        .into_inner();
    digest(&h.genesis_digest)
}

/// A 32-byte digest from the wire.
pub fn digest(bytes: &[u8]) -> Digest {
    Digest(bytes.try_into().expect("32-byte digest"))
}

/// A wire entry as the node's domain type.
pub fn domain(e: &pb::LedgerEntry) -> LedgerEntry {
    LedgerEntry {
        index: e.index,
        kind: EntryKind::from_code(u8::try_from(e.kind).expect("kind fits u8"))
            .expect("known kind"),
        payload: e.payload.clone(),
        prev_hash: digest(&e.prev_hash),
        hash: digest(&e.hash),
    }
}

/// Reads node `id`'s whole ledger `1..=head.index`, checks it is complete
/// (every index, in order), that every hash recomputes and links from the
/// genesis digest, and that it ends at `head`.
pub async fn verified_ledger(
    net: &Testnet,
    id: u64,
    head: &Head,
    genesis: Digest,
) -> Vec<pb::LedgerEntry> {
    let entries = net.ledger(id, 1, head.index).await.expect("GetLedger");
    let indexes: Vec<u64> = entries.iter().map(|e| e.index).collect();
    let expected: Vec<u64> = (1..=head.index).collect();
    assert_eq!(
        indexes, expected,
        "node {id}: ledger incomplete or out of order"
    );
    let domain: Vec<LedgerEntry> = entries.iter().map(domain).collect();
    let tip = verify_chain(&domain, genesis)
        .unwrap_or_else(|e| panic!("node {id}: served ledger does not verify: {e}"));
    assert_eq!(
        tip.0.to_vec(),
        head.hash,
        "node {id}: chain tip is not the head"
    );
    entries
}

/// Asserts every acknowledged write is in `ledger` at its index, with its
/// hash and payload.
pub fn assert_acked_present(ledger: &[pb::LedgerEntry], acks: &[Ack], who: &str) {
    for a in acks {
        let i = a.reply.index;
        let e = ledger
            .get(
                usize::try_from(i)
                    .expect("index fits usize")
                    .wrapping_sub(1),
            )
            .unwrap_or_else(|| panic!("{who}: acknowledged index {i} missing"));
        assert_eq!(e.index, i, "{who}: entry position");
        assert_eq!(
            e.hash, a.reply.hash,
            "{who}: hash of acknowledged index {i}"
        );
        assert_eq!(
            e.payload, a.payload,
            "{who}: payload of acknowledged index {i}"
        );
        assert_eq!(
            e.kind,
            u32::from(EntryKind::Record.code()),
            "{who}: kind at {i}"
        );
    }
}

/// Asserts every running node serves exactly `reference` (entry by entry)
/// and reports `head`.
pub async fn assert_identical_everywhere(
    net: &Testnet,
    head: &Head,
    genesis: Digest,
    reference: &[pb::LedgerEntry],
) {
    for id in net.running() {
        let ledger = verified_ledger(net, id, head, genesis).await;
        assert_eq!(ledger.len(), reference.len(), "node {id}: ledger length");
        for (mine, theirs) in ledger.iter().zip(reference) {
            assert_eq!(mine, theirs, "node {id}: entry {} differs", theirs.index);
        }
        let s = net.status(id).await.expect("status");
        assert_eq!(&Head::of(&s), head, "node {id}: head");
    }
}

/// Every running validator's ledger replays through the replicated core's
/// `apply` alone (`senatus ledger verify`, docs/PROTOCOL.md 19), and the
/// state digest each one reports at every index is the one the replay
/// computes. Waits for the running nodes to converge first.
pub async fn assert_state_replays(net: &Testnet) {
    net.wait_converged(Duration::from_secs(30))
        .await
        .expect("converged before the state replay");
    let genesis = net.genesis_path().display().to_string();
    for id in net.running() {
        let api = net.spec(id).expect("spec").api.clone();
        let out = senatus_cli_for(
            net,
            vec![
                "ledger".into(),
                "verify".into(),
                "--genesis".into(),
                genesis.clone(),
                "--key".into(),
                net.client_key_path("auditor-1").display().to_string(),
                "--api".into(),
                api,
            ],
        )
        .await;
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("state OK") && text.contains("matches at all"),
            "node {id}: {}",
            show(&out)
        );
    }
}

/// A running node other than `not`.
pub fn other_than(net: &Testnet, not: &[u64]) -> u64 {
    net.running()
        .into_iter()
        .find(|id| !not.contains(id))
        .expect("another running node")
}

/// A gRPC codec that sends and receives raw bytes: lets a test put any
/// body on the wire where a protobuf is expected.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n).to_vec()))
    }
}

/// Sends `body` as the request message of `method` on the public API of
/// node `id`, bypassing protobuf encoding.
pub async fn raw_call(
    net: &Testnet,
    id: u64,
    method: &'static str,
    body: Vec<u8>,
) -> Result<Vec<u8>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(net.channel(id).expect("channel"));
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(method);
    grpc.unary(tonic::Request::new(body), path, RawCodec)
        .await
        .map(tonic::Response::into_inner)
}

/// Runs the `senatus` binary under test to completion (for tests that
/// drive the CLI; call it through `spawn_blocking` from async code), with
/// no `SENATUS_GENESIS` from the environment the tests run in.
pub fn senatus_cli(args: Vec<String>) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_senatus"))
        .args(args)
        .env_remove("SENATUS_GENESIS")
        .output()
        .expect("run senatus")
}

/// [`senatus_cli`] with `SENATUS_GENESIS` set to `genesis`: the commands
/// that talk to the public API pin their TLS connection to it (an explicit
/// `--genesis` in `args` still wins).
pub fn senatus_cli_with_genesis(genesis: &Path, args: Vec<String>) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_senatus"))
        .args(args)
        .env("SENATUS_GENESIS", genesis)
        .output()
        .expect("run senatus")
}

/// [`senatus_cli_with_genesis`] with the genesis of `net`, off the async
/// runtime.
pub async fn senatus_cli_for(net: &Testnet, args: Vec<String>) -> std::process::Output {
    let genesis = net.genesis_path();
    tokio::task::spawn_blocking(move || senatus_cli_with_genesis(&genesis, args))
        .await
        .expect("cli task")
}

/// Exit status, stdout and stderr of a finished command, for messages.
pub fn show(o: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Copies a directory tree (a policy layer, say) so a test can edit it.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).expect("copy");
        }
    }
}

/// The breach kinds of the certificates node `id` holds about validator
/// `subject` (none when it does not answer within the bound).
pub async fn certified_kinds(net: &Testnet, id: u64, subject: u64) -> Vec<String> {
    let mut c = net.client(id).expect("client");
    let Ok(Ok(r)) = tokio::time::timeout(
        Duration::from_secs(30),
        c.list_certificates(pb::ListCertificatesRequest {}),
    )
    .await
    else {
        return Vec::new();
    };
    r.into_inner()
        .certificates
        .into_iter()
        .filter(|v| v.subject == format!("validator {subject}"))
        .map(|v| v.kind)
        .collect()
}

/// Unix milliseconds now.
pub fn now_unix_ms() -> u64 {
    senatus_testnet::now_ms()
}

/// `r` signed now by the testnet's example identity `signer` (its key in
/// `clients/`), as that agent's SDK would (docs/PROTOCOL.md 10.1).
pub fn signed_as(net: &Testnet, signer: &str, mut r: pb::DecideRequest) -> pb::DecideRequest {
    let key = net.client_key(signer).expect("client key");
    senatus_node::gate::sign_wire(
        &mut r,
        key.signing_key(),
        &net.genesis().digest(),
        now_unix_ms(),
    )
    .expect("a valid request signs");
    r
}

/// `r` signed now by the agent its actor names (the example registry gives
/// each agent one actor, its own name).
pub fn signed(net: &Testnet, r: pb::DecideRequest) -> pb::DecideRequest {
    let actor = r.actor.clone();
    signed_as(net, &actor, r)
}

/// A payment of `amount` EUR to a supplier by agent `actor` of tenant
/// acme, which the example policy permits.
pub fn transfer_by(actor: &str, amount: u64, key: &str) -> pb::DecideRequest {
    pb::DecideRequest {
        surface: "payments".into(),
        action: "transfer".into(),
        actor: actor.into(),
        tenant: "acme".into(),
        params_json: serde_json::json!({"amount": amount, "currency": "EUR", "to_account": "acct-supplier-7"}).to_string(),
        context: Some(pb::AgentContext::default()),
        idempotency_key: key.into(),
        ..Default::default()
    }
}

/// Sends `r` to node `via` exactly as it is (signed or not), bounded at
/// 20 s; the node's answer.
pub async fn decide_as_is(
    net: &Testnet,
    via: u64,
    r: pb::DecideRequest,
) -> Result<pb::DecideReply, tonic::Status> {
    let mut c = net.client(via).expect("client");
    tokio::time::timeout(Duration::from_secs(20), c.decide(r))
        .await
        .unwrap_or_else(|_| panic!("Decide via node {via}: no answer within 20 s"))
        .map(tonic::Response::into_inner)
}

/// Decides `request` (signed here by its actor) through node `via`
/// (bounded) and expects PERMIT.
pub async fn permit_request(
    net: &Testnet,
    via: u64,
    request: pb::DecideRequest,
) -> pb::DecideReply {
    let mut c = net.client(via).expect("client");
    let r = tokio::time::timeout(Duration::from_secs(30), c.decide(signed(net, request)))
        .await
        .expect("decide within bound")
        .expect("decide")
        .into_inner();
    assert_eq!(r.outcome, "PERMIT", "{r:?}");
    r
}

/// `senatus_peer_refusals_total{sender, reason}` on node `id`.
pub async fn refusals(
    net: &Testnet,
    id: u64,
    sender: u64,
    reason: senatus_proto::reason::Reason,
) -> u64 {
    let addr = net.spec(id).expect("spec").metrics.clone();
    let mut s = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("metrics connect");
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
        .await
        .expect("metrics request");
    let mut body = String::new();
    s.read_to_string(&mut body).await.expect("metrics body");
    let needle = format!(
        "senatus_peer_refusals_total{{sender=\"{sender}\",reason=\"{}\"}} ",
        reason.as_str()
    );
    body.lines()
        .find_map(|l| l.strip_prefix(&needle))
        .map_or(0, |n| n.trim().parse().expect("counter"))
}

/// Validator `id`'s identity key, from the testnet's ceremony directory:
/// what a Byzantine validator signs with.
pub fn identity_key(net: &Testnet, id: u64) -> ed25519_dalek::SigningKey {
    let path = net.dir().join(format!("node-{id}")).join("identity.key");
    let (key, node) =
        senatus_genesis::keys::SecretKey::read_identity(&path).expect("identity key file");
    assert_eq!(node.get(), id);
    key.signing_key().clone()
}

/// The testnet's policy layer (`tmp/net/policy`) as version 2 in
/// `tmp/name`, with `edit` applied to that directory.
pub fn proposed(tmp: &Path, name: &str, edit: impl FnOnce(&Path)) -> std::path::PathBuf {
    let dir = tmp.join(name);
    copy_dir(&tmp.join("net/policy"), &dir);
    let c = dir.join("constitution.toml");
    let text = std::fs::read_to_string(&c).expect("constitution");
    assert!(text.contains("\nversion = 1\n"), "{text}");
    std::fs::write(&c, text.replace("\nversion = 1\n", "\nversion = 2\n")).expect("write");
    edit(&dir);
    dir
}

/// A one-signer FROST sign request for `message` over a commitment that
/// validator `target` hands out to `leader` through `client` (a peer
/// client authenticated as `leader`): what a leader sends a signer.
pub async fn sign_request_as(
    client: &mut senatus_proto::v1::peer_client::PeerClient<tonic::transport::Channel>,
    leader: u64,
    message: Vec<u8>,
) -> senatus_quorum::signing::SignRequest {
    let commitment = client
        .commitments(pb::CommitmentsRequest {
            from: leader,
            count: 1,
        })
        .await
        .expect("commitments for the leader")
        .into_inner()
        .commitments
        .remove(0);
    senatus_quorum::signing::SignRequest {
        message,
        commitments: vec![
            senatus_quorum::signing::PublishedCommitment::from_bytes(&commitment)
                .expect("commitment"),
        ],
    }
}

/// Waits (bounded) until node `id`'s log of this run holds every one of
/// `needles`.
pub async fn logged(net: &Testnet, id: u64, needles: &[&str]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let log = net.last_run_log(id).expect("log");
        if needles.iter().all(|n| log.contains(n)) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node {id} never logged {needles:?}; its log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
