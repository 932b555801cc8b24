//! `senatus decide` and `senatus broker fetch-chain|verify|redeem` as an
//! agent and a broker meet them, running the real binary.
//!
//! Tokens here are real: a ceremony made by `senatus genesis init`, payloads
//! bound to that genesis and its seal 0, threshold-signed by three of the
//! five FROST shares the ceremony wrote. Offline verification is checked
//! against each rejection path; the commands that need a cluster are
//! checked against a closed port (fail closed, bounded time) and against a
//! small in-process stand-in for the public API that issues and redeems such
//! tokens.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::RngCore as _;
use senatus_genesis::keys::FrostShare;
use senatus_genesis::{Digest, Epoch, Genesis, LedgerIndex, NodeId, Seal, SignedSeal, sha3};
use senatus_proto::v1 as pb;
use senatus_quorum::Outcome;
use senatus_quorum::params_digest;
use senatus_quorum::signing::{CommitmentBook, NoncePool, Signer, aggregate, public_key_package};
use senatus_quorum::token::{Token, TokenBatch, TokenPayload, decision_id, derive_nonce};
use serde_json::{Value, json};

/// Upper bound for a command that must fail because nothing listens:
/// connect (3 s) plus call timeout, with room for a loaded machine.
const UNREACHABLE_BOUND: Duration = Duration::from_secs(30);

fn senatus(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_senatus"))
        .args(args)
        .env_remove("SENATUS_LOG")
        .env_remove("SENATUS_GENESIS")
        .output()
        .expect("run senatus")
}

/// `senatus ARGS` with `SENATUS_GENESIS=genesis`: the genesis the public
/// API's TLS is pinned to, and `SENATUS_KEY` an agent key beside it (the
/// stand-in validator checks no signature; the real ones do, see gate.rs).
fn senatus_pinned(genesis: &Path, args: &[&str]) -> Output {
    let key = genesis.with_file_name("stand-in-agent.key");
    if !key.exists() {
        senatus_genesis::keys::SecretKey::generate(&mut rand::rngs::OsRng)
            .write_client(&key, senatus_genesis::registry::Role::Agent)
            .expect("agent key");
    }
    Command::new(env!("CARGO_BIN_EXE_senatus"))
        .args(args)
        .env_remove("SENATUS_LOG")
        .env("SENATUS_GENESIS", genesis)
        .env("SENATUS_KEY", &key)
        .output()
        .expect("run senatus")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    addr.to_string()
}

fn transfer_params() -> Value {
    json!({"amount": 1200, "currency": "EUR", "to": "acct-42"})
}

/// A ceremony directory, its genesis, and tokens signed by its shares.
struct Net {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    genesis: Genesis,
}

impl Net {
    fn new() -> Net {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("net");
        let out = senatus(&["genesis", "init", "--out", path(&dir)]);
        assert!(out.status.success(), "init failed: {}", text(&out.stderr));
        let genesis = Genesis::load(&dir.join("genesis.json")).expect("genesis loads");
        Net {
            _tmp: tmp,
            dir,
            genesis,
        }
    }

    fn genesis_path(&self) -> PathBuf {
        self.dir.join("genesis.json")
    }

    /// A decision payload of this genesis, epoch 0, under seal 0.
    #[allow(clippy::too_many_arguments)]
    fn payload(
        &self,
        ledger_index: u64,
        position: u32,
        outcome: Outcome,
        (surface, action, tenant, actor): (&str, &str, &str, &str),
        params: &Value,
        issued_at_ms: u64,
        expires_at_ms: u64,
    ) -> TokenPayload {
        let g = &self.genesis;
        let entry_hash = sha3(format!("entry {ledger_index} of {}", g.digest()).as_bytes());
        TokenPayload {
            genesis_digest: g.digest(),
            decision_id: decision_id(LedgerIndex(ledger_index), &entry_hash, position),
            ledger_index: LedgerIndex(ledger_index),
            entry_hash,
            position,
            outcome,
            surface: surface.into(),
            action: action.into(),
            tenant: tenant.into(),
            actor: actor.into(),
            params_digest: params_digest(params).expect("params digest"),
            policy_version: g.body.policy_version,
            seal_digest: Seal::genesis(g).digest(),
            epoch: Epoch(0),
            nonce: derive_nonce(&entry_hash, position),
            issued_at_ms,
            expires_at_ms,
        }
    }

    /// Signs `payloads` as one batch with the shares of validators 1, 2, 3
    /// (read from the ceremony directory), through the one-round FROST
    /// signing of `senatus_quorum::signing`.
    fn sign(&self, payloads: Vec<TokenPayload>) -> Vec<Token> {
        let batch = TokenBatch::new(payloads).expect("batch");
        let msg = batch.message(&self.genesis.body.group_key);
        let mut rng = rand::rngs::OsRng;
        let mut book = CommitmentBook::default();
        let mut signers = BTreeMap::new();
        for id in 1..=3 {
            let share = FrostShare::read(&self.dir.join(format!("node-{id}/frost-share.key")))
                .expect("frost share");
            let node = share.node_id;
            let mut s = Signer::new(share.key_package, NoncePool::new(node, rng.next_u64()))
                .expect("signer");
            for c in s.replenish(1, &mut rng) {
                book.insert(c).expect("commitment filed");
            }
            signers.insert(node, s);
        }
        let ids: Vec<NodeId> = signers.keys().copied().collect();
        let plan = book.take_for(&ids).expect("plan");
        let req = plan.request(&msg);
        let mut shares = BTreeMap::new();
        for id in plan.signers() {
            let reply = signers
                .get_mut(&id)
                .expect("signer")
                .sign(&req, &msg)
                .expect("share");
            shares.insert(id, plan.accept(id, &reply).expect("accepted"));
        }
        let public = public_key_package(&Seal::genesis(&self.genesis)).expect("public keys");
        let sig = aggregate(&plan.package(&msg), &shares, &public).expect("aggregate");
        batch.tokens(sig)
    }

    /// A batch of two: a PERMIT and a DENY for payments/transfer/acme,
    /// valid from one second ago for ten minutes.
    fn permit_and_deny(&self) -> (Token, Token) {
        let now = now_ms();
        let params = transfer_params();
        let who = ("payments", "transfer", "acme", "agent-7");
        let mut t = self.sign(vec![
            self.payload(
                7,
                0,
                Outcome::Permit,
                who,
                &params,
                now - 1_000,
                now + 600_000,
            ),
            self.payload(
                7,
                1,
                Outcome::Deny,
                who,
                &params,
                now - 1_000,
                now + 600_000,
            ),
        ]);
        let deny = t.pop().expect("deny");
        let permit = t.pop().expect("permit");
        (permit, deny)
    }
}

/// Runs `senatus broker verify` for payments/transfer/acme with `params`.
fn verify(net: &Net, token: &str, params: &str, extra: &[&str]) -> Output {
    let g = net.genesis_path();
    let mut args = vec![
        "broker",
        "verify",
        "--genesis",
        path(&g),
        "--token",
        token,
        "--surface",
        "payments",
        "--action",
        "transfer",
        "--tenant",
        "acme",
        "--params",
        params,
    ];
    args.extend_from_slice(extra);
    senatus(&args)
}

fn assert_refused(out: &Output, reason: &str, what: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{what}: {err}");
    assert!(err.contains("token REFUSED: "), "{what}: {err}");
    assert!(err.contains(reason), "{what}: want {reason:?} in {err}");
    assert!(!text(&out.stdout).contains("token OK"), "{what}");
}

#[test]
fn every_gate_command_explains_itself_and_its_exit_codes() {
    for args in [
        vec!["--help"],
        vec!["decide", "--help"],
        vec!["broker", "--help"],
        vec!["broker", "fetch-chain", "--help"],
        vec!["broker", "verify", "--help"],
        vec!["broker", "redeem", "--help"],
    ] {
        let out = senatus(&args);
        assert!(out.status.success(), "{args:?}");
        let help = text(&out.stdout);
        assert!(help.contains("Usage:"), "{args:?}: {help}");
        assert!(
            help.lines().count() > 6,
            "{args:?} help is too thin: {help}"
        );
    }
    let top = text(&senatus(&["--help"]).stdout);
    assert!(top.contains("decide") && top.contains("broker"), "{top}");
    let decide = text(&senatus(&["decide", "--help"]).stdout);
    assert!(decide.contains("Exit codes:"), "{decide}");
    assert!(decide.contains("UNAVAILABLE"), "{decide}");
    let verify = text(&senatus(&["broker", "verify", "--help"]).stdout);
    assert!(verify.contains("Exit codes:"), "{verify}");
    assert!(verify.contains("3  token REFUSED"), "{verify}");
    let redeem = text(&senatus(&["broker", "redeem", "--help"]).stdout);
    assert!(redeem.contains("redemption DENIED"), "{redeem}");
    assert!(redeem.contains("Never execute on non-zero"), "{redeem}");
    let fetch = text(&senatus(&["broker", "fetch-chain", "--help"]).stdout);
    assert!(fetch.contains("Exit codes:"), "{fetch}");
}

#[test]
fn broker_verify_accepts_the_permit_it_was_issued_for() {
    let net = Net::new();
    let (permit, _) = net.permit_and_deny();
    let p = &permit.payload;
    let t = permit.to_text();
    // Key order and whitespace do not change the params digest.
    let out = verify(
        &net,
        &t,
        r#"{ "to": "acct-42", "currency": "EUR", "amount": 1200 }"#,
        &[],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.starts_with("token OK: "), "{stdout}");
    for want in [
        p.decision_id.to_hex(),
        p.nonce.to_hex(),
        "ledger index 7".to_string(),
        "outcome PERMIT".to_string(),
        format!("expires at {} ms", p.expires_at_ms),
    ] {
        assert!(stdout.contains(&want), "want {want:?} in {stdout}");
    }

    // The same from files, with an explicit seal chain and time.
    let tmp = tempfile::tempdir().expect("tempdir");
    let token_file = tmp.path().join("token.txt");
    std::fs::write(&token_file, format!("{t}\n")).expect("write token");
    let params_file = tmp.path().join("params.json");
    std::fs::write(&params_file, transfer_params().to_string()).expect("write params");
    let seals_file = tmp.path().join("seals.json");
    let chain = vec![SignedSeal {
        seal: Seal::genesis(&net.genesis),
        signature: None,
        attested: None,
    }];
    std::fs::write(&seals_file, serde_json::to_vec(&chain).expect("json")).expect("seals");
    let now = (p.issued_at_ms + 1).to_string();
    let g = net.genesis_path();
    let out = senatus(&[
        "broker",
        "verify",
        "--genesis",
        path(&g),
        "--seals",
        path(&seals_file),
        "--token-file",
        path(&token_file),
        "--surface",
        "payments",
        "--action",
        "transfer",
        "--tenant",
        "acme",
        "--params-file",
        path(&params_file),
        "--now-ms",
        &now,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("token OK"));
    // An empty seals file means "seal 0 only", the same chain.
    std::fs::write(&seals_file, b"[]").expect("seals");
    let out = verify(
        &net,
        &t,
        &transfer_params().to_string(),
        &["--seals", path(&seals_file)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn broker_verify_refuses_each_mismatch_with_its_own_error() {
    let net = Net::new();
    let (permit, deny) = net.permit_and_deny();
    let t = permit.to_text();
    let params = transfer_params().to_string();
    let p = &permit.payload;

    // Params changed by one byte: 1200 -> 1201.
    let changed = params.replace("1200", "1201");
    assert_eq!(changed.len(), params.len());
    assert_refused(
        &verify(&net, &t, &changed, &[]),
        "differs from the token's",
        "params +1",
    );
    // Params that are not an object cannot match anything.
    assert_refused(
        &verify(&net, &t, "[1200]", &[]),
        "request params: params must be a JSON object",
        "params array",
    );

    let g = net.genesis_path();
    let with = |surface: &str, action: &str, tenant: &str| {
        senatus(&[
            "broker",
            "verify",
            "--genesis",
            path(&g),
            "--token",
            &t,
            "--surface",
            surface,
            "--action",
            action,
            "--tenant",
            tenant,
            "--params",
            &params,
        ])
    };
    assert_refused(
        &with("exports", "transfer", "acme"),
        r#"token is for surface "payments", this broker guards "exports""#,
        "surface",
    );
    assert_refused(
        &with("payments", "refund", "acme"),
        r#"token is for action "transfer", the request is "refund""#,
        "action",
    );
    assert_refused(
        &with("payments", "transfer", "globex"),
        r#"token is for tenant "acme", the request is for "globex""#,
        "tenant",
    );

    // Exactly at expiry and after it.
    let at = p.expires_at_ms.to_string();
    assert_refused(
        &verify(&net, &t, &params, &["--now-ms", &at]),
        &format!("token expired at {} ms, now is {at} ms", p.expires_at_ms),
        "expired",
    );
    let later = (p.expires_at_ms + 86_400_000).to_string();
    assert_refused(
        &verify(&net, &t, &params, &["--now-ms", &later]),
        "token expired at",
        "a day later",
    );
    // Long before issue: not yet valid.
    let early = (p.issued_at_ms - 60_000).to_string();
    assert_refused(
        &verify(&net, &t, &params, &["--now-ms", &early]),
        "beyond now",
        "not yet valid",
    );

    // Truncated text, garbage, an odd hex digit, a flipped signature bit.
    assert_refused(
        &verify(&net, &t[..t.len() - 2], &params, &[]),
        "malformed token: truncated in signature",
        "truncated",
    );
    assert_refused(
        &verify(&net, &t[..40], &params, &[]),
        "malformed token: truncated",
        "cut short",
    );
    assert_refused(
        &verify(&net, "not a token at all", &params, &[]),
        "malformed token: token text is not hex",
        "garbage",
    );
    assert_refused(
        &verify(&net, "deadbeef", &params, &[]),
        "malformed token: token does not start with its senatus tag",
        "hex garbage",
    );
    let mut bytes = permit.to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    assert_refused(
        &verify(&net, &hex::encode(&bytes), &params, &[]),
        "signature does not verify under epoch 0 group key",
        "signature bit",
    );

    // A genuine DENY receipt from the same signed batch is never a permit.
    assert_refused(
        &verify(&net, &deny.to_text(), &params, &[]),
        "token records outcome DENY, not PERMIT",
        "deny",
    );

    // A valid permit of another cluster.
    let other = Net::new();
    let (foreign, _) = other.permit_and_deny();
    assert_refused(
        &verify(&net, &foreign.to_text(), &params, &[]),
        &format!(
            "token is for genesis {}, this broker trusts genesis {}",
            other.genesis.digest(),
            net.genesis.digest()
        ),
        "another genesis",
    );
}

#[test]
fn broker_verify_refuses_bad_trust_material_as_a_usage_error() {
    let net = Net::new();
    let (permit, _) = net.permit_and_deny();
    let tmp = tempfile::tempdir().expect("tempdir");
    // A genesis whose content no longer matches its authority signature.
    let raw = std::fs::read_to_string(net.genesis_path()).expect("read");
    let forged = raw.replacen("senatus-local", "senatus-forge", 1);
    assert_ne!(raw, forged);
    let bad = tmp.path().join("genesis.json");
    std::fs::write(&bad, forged).expect("write");
    let out = senatus(&[
        "broker",
        "verify",
        "--genesis",
        path(&bad),
        "--token",
        &permit.to_text(),
        "--surface",
        "payments",
        "--action",
        "transfer",
        "--tenant",
        "acme",
        "--params",
        "{}",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("genesis"),
        "{}",
        text(&out.stderr)
    );
    // A seals file that is not a seal chain.
    let seals = tmp.path().join("seals.json");
    std::fs::write(&seals, b"{\"not\": \"a chain\"}").expect("write");
    let out = verify(
        &net,
        &permit.to_text(),
        &transfer_params().to_string(),
        &["--seals", path(&seals)],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("is not a JSON array of SignedSeal"));
    // Neither --token nor --token-file: clap refuses, exit 2.
    let out = senatus(&[
        "broker",
        "verify",
        "--genesis",
        path(&net.genesis_path()),
        "--surface",
        "payments",
        "--action",
        "transfer",
        "--tenant",
        "acme",
        "--params",
        "{}",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

fn write_request(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec(v).expect("json")).expect("write");
    p
}

fn good_request() -> Value {
    json!({
        "surface": "payments",
        "action": "transfer",
        "actor": "agent-7",
        "tenant": "acme",
        "params": transfer_params(),
        "context": {
            "uncertainty_permille": 12,
            "resources": {"cpu_millis": 250},
            "external_endpoints": ["https://api.example.com/v1"]
        },
        "idempotency_key": "k-1"
    })
}

#[test]
fn decide_refuses_invalid_requests_locally_naming_the_field() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let api = closed_port();
    let mut cases: Vec<(Value, &str)> = Vec::new();
    let mut r = good_request();
    r["context"]["uncertainty_permille"] = json!(1001);
    cases.push((r, "context.uncertainty_permille is 1001, want 0..=1000"));
    let mut r = good_request();
    r["actor"] = json!("");
    cases.push((r, "actor is empty"));
    let mut r = good_request();
    r["params"] = json!([1, 2]);
    cases.push((r, "params: params must be a JSON object, found an array"));
    let mut r = good_request();
    r["surface"] = json!("Payments");
    cases.push((r, "surface has a character outside"));
    let mut r = good_request();
    r["context"]["external_endpoints"] = json!(["no host here"]);
    cases.push((r, "context.external_endpoints[0]"));
    let mut r = good_request();
    r["context"]["resources"] = json!({"CPU": 1});
    cases.push((r, "context.resources key has a character outside"));
    for (i, (req, want)) in cases.into_iter().enumerate() {
        let f = write_request(tmp.path(), &format!("bad-{i}.json"), &req);
        let out = senatus(&["decide", "--api", &api, "--file", path(&f)]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{want}: {err}");
        assert!(err.contains("invalid request (not sent)"), "{want}: {err}");
        assert!(err.contains(want), "want {want:?} in {err}");
        assert!(!err.contains("decide failed"), "{err}");
    }
    // Strict parsing: unknown fields, at the top and in the context.
    let mut r = good_request();
    r["priority"] = json!("high");
    let f = write_request(tmp.path(), "unknown.json", &r);
    let out = senatus(&["decide", "--api", &api, "--file", path(&f)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown field `priority`"),
        "{}",
        text(&out.stderr)
    );
    let mut r = good_request();
    r["context"]["confidence"] = json!(3);
    let f = write_request(tmp.path(), "unknown-ctx.json", &r);
    let out = senatus(&["decide", "--api", &api, "--file", path(&f)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown field `confidence`"));
    // The same checks from flags.
    let out = senatus(&[
        "decide",
        "--api",
        &api,
        "--surface",
        "payments",
        "--action",
        "transfer",
        "--actor",
        "agent 7",
        "--tenant",
        "acme",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("actor has a character outside"));
    let out = senatus(&[
        "decide",
        "--api",
        &api,
        "--surface",
        "payments",
        "--action",
        "transfer",
        "--actor",
        "agent-7",
        "--tenant",
        "acme",
        "--uncertainty",
        "1001",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("context.uncertainty_permille is 1001"));
    let out = senatus(&[
        "decide",
        "--api",
        &api,
        "--surface",
        "payments",
        "--action",
        "transfer",
        "--actor",
        "agent-7",
        "--tenant",
        "acme",
        "--params",
        "\"x\"",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("params must be a JSON object, found a string"));
    let out = senatus(&[
        "decide",
        "--api",
        &api,
        "--surface",
        "payments",
        "--action",
        "transfer",
        "--actor",
        "agent-7",
        "--tenant",
        "acme",
        "--resource",
        "cpu_millis",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("expected NAME=AMOUNT"));
    // --file and request flags are exclusive.
    let f = write_request(tmp.path(), "good.json", &good_request());
    let out = senatus(&["decide", "--api", &api, "--file", path(&f), "--tenant", "x"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn decide_without_a_cluster_fails_within_bounds_and_issues_nothing() {
    let net = Net::new();
    let tmp = tempfile::tempdir().expect("tempdir");
    let f = write_request(tmp.path(), "good.json", &good_request());
    let token_out = tmp.path().join("token.txt");
    let started = Instant::now();
    let out = senatus_pinned(
        &net.genesis_path(),
        &[
            "decide",
            "--genesis",
            path(&net.genesis_path()),
            "--api",
            &closed_port(),
            "--file",
            path(&f),
            "--token-out",
            path(&token_out),
            "--timeout-ms",
            "2000",
        ],
    );
    assert!(
        started.elapsed() < UNREACHABLE_BOUND,
        "{:?}",
        started.elapsed()
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("decide failed"), "{err}");
    assert!(err.contains("Unavailable"), "{err}");
    assert!(err.contains("no token was issued"), "{err}");
    assert!(!token_out.exists());
}

#[test]
fn redeem_without_a_cluster_is_denied_and_a_bad_token_never_leaves() {
    let net = Net::new();
    let (permit, _) = net.permit_and_deny();
    let g = net.genesis_path();
    let params = transfer_params().to_string();
    let api = closed_port();
    let broker_key = net.dir.join("clients/broker-1.key");
    let out = senatus(&[
        "present",
        "--key",
        path(&net.dir.join("clients/agent-1.key")),
        "--broker",
        "broker-1",
        "--token",
        &permit.to_text(),
        "--params",
        &params,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let presentation = text(&out.stdout).trim().to_string();
    let redeem = |tenant: &str| {
        senatus(&[
            "broker",
            "redeem",
            "--api",
            &api,
            "--genesis",
            path(&g),
            "--token",
            &permit.to_text(),
            "--surface",
            "payments",
            "--action",
            "transfer",
            "--tenant",
            tenant,
            "--params",
            &params,
            "--key",
            path(&broker_key),
            "--presentation",
            &presentation,
            "--timeout-ms",
            "2000",
        ])
    };
    let started = Instant::now();
    let out = redeem("acme");
    assert!(
        started.elapsed() < UNREACHABLE_BOUND,
        "{:?}",
        started.elapsed()
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("redemption DENIED"), "{err}");
    assert!(err.contains(&permit.payload.nonce.to_hex()), "{err}");
    assert!(!text(&out.stdout).contains("redeemed"));

    // A peer that accepts the connection and never answers: the call
    // timeout bounds the wait, and the answer is still a denial.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_addr = silent.local_addr().expect("addr").to_string();
    let started = Instant::now();
    let out = senatus(&[
        "broker",
        "redeem",
        "--api",
        &silent_addr,
        "--genesis",
        path(&g),
        "--token",
        &permit.to_text(),
        "--surface",
        "payments",
        "--action",
        "transfer",
        "--tenant",
        "acme",
        "--params",
        &params,
        "--key",
        path(&broker_key),
        "--presentation",
        &presentation,
        "--timeout-ms",
        "1000",
    ]);
    let waited = started.elapsed();
    drop(silent);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("redemption DENIED"), "{err}");
    assert!(waited >= Duration::from_millis(900), "{waited:?}: {err}");
    assert!(waited < UNREACHABLE_BOUND, "{waited:?}");

    let out = redeem("globex");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("redemption DENIED: token refused offline (cluster not contacted)"),
        "{err}"
    );
    assert!(err.contains("tenant"), "{err}");
}

#[test]
fn fetch_chain_without_a_cluster_writes_nothing() {
    let net = Net::new();
    let tmp = tempfile::tempdir().expect("tempdir");
    let out_dir = tmp.path().join("broker");
    let out = senatus(&[
        "broker",
        "fetch-chain",
        "--genesis",
        path(&net.genesis_path()),
        "--api",
        &closed_port(),
        "--out",
        path(&out_dir),
        "--timeout-ms",
        "2000",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("fetching the seal chain"));
    assert!(!out_dir.join("genesis.json").exists());
    assert!(!out_dir.join("seals.json").exists());
}

// ---- against a stand-in for the public API ---------------------------------

/// Answers Decide with tokens threshold-signed by the ceremony's shares,
/// Redeem exactly once per nonce, and GetSealChain with the ceremony's
/// genesis. Behaviour switches on the actor: `agent-noquorum` gets
/// UNAVAILABLE, `agent-liar` a token for another tenant.
struct StandIn {
    net: Net,
    genesis_json: String,
    next_index: AtomicU64,
    redeemed: Mutex<HashSet<Vec<u8>>>,
}

#[tonic::async_trait]
impl pb::senatus_server::Senatus for StandIn {
    async fn append_record(
        &self,
        _: tonic::Request<pb::AppendRecordRequest>,
    ) -> Result<tonic::Response<pb::WriteReply>, tonic::Status> {
        Err(tonic::Status::unimplemented("stand-in"))
    }

    async fn get_ledger(
        &self,
        _: tonic::Request<pb::GetLedgerRequest>,
    ) -> Result<tonic::Response<pb::GetLedgerReply>, tonic::Status> {
        Err(tonic::Status::unimplemented("stand-in"))
    }

    async fn decide(
        &self,
        req: tonic::Request<pb::DecideRequest>,
    ) -> Result<tonic::Response<pb::DecideReply>, tonic::Status> {
        let r = req.into_inner();
        if r.actor == "agent-noquorum" {
            return Err(tonic::Status::unavailable(
                "no quorum: 2 of 5 validators reachable",
            ));
        }
        let params: Value = serde_json::from_str(&r.params_json)
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
        let ctx = r.context.unwrap_or_default();
        if ctx.uncertainty_permille != 12 || ctx.resources.get("cpu_millis") != Some(&250) {
            return Err(tonic::Status::invalid_argument(
                "context did not arrive intact",
            ));
        }
        let outcome = if r.tenant == "denied-tenant" {
            Outcome::Deny
        } else {
            Outcome::Permit
        };
        let tenant = if r.actor == "agent-liar" {
            "someone-else"
        } else {
            &r.tenant
        };
        let index = self.next_index.fetch_add(1, Ordering::SeqCst);
        let now = now_ms();
        let payload = self.net.payload(
            index,
            0,
            outcome,
            (&r.surface, &r.action, tenant, &r.actor),
            &params,
            now,
            now + 600_000,
        );
        let token = self.net.sign(vec![payload]).pop().expect("one token");
        let p = &token.payload;
        Ok(tonic::Response::new(pb::DecideReply {
            outcome: p.outcome.to_string(),
            reasons: vec!["payments-within-limit".into()],
            ledger_index: index,
            entry_hash: p.entry_hash.0.to_vec(),
            position: 0,
            decision_id: p.decision_id.0.to_vec(),
            token: token.to_bytes(),
            policy_version: p.policy_version.0,
            expires_at_ms: p.expires_at_ms,
            signers: vec![1, 2, 3],
        }))
    }

    async fn redeem(
        &self,
        req: tonic::Request<pb::RedeemRequest>,
    ) -> Result<tonic::Response<pb::RedeemReply>, tonic::Status> {
        let t = Token::from_bytes(&req.into_inner().token)
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
        let nonce = t.payload.nonce.0.to_vec();
        if !self.redeemed.lock().expect("lock").insert(nonce.clone()) {
            return Err(tonic::Status::already_exists(format!(
                "nonce {} already redeemed",
                t.payload.nonce
            )));
        }
        Ok(tonic::Response::new(pb::RedeemReply {
            ledger_index: self.next_index.fetch_add(1, Ordering::SeqCst),
            entry_hash: vec![7; 32],
            nonce,
        }))
    }

    async fn get_seal_chain(
        &self,
        _: tonic::Request<pb::SealChainRequest>,
    ) -> Result<tonic::Response<pb::SealChainReply>, tonic::Status> {
        Ok(tonic::Response::new(pb::SealChainReply {
            genesis_json: self.genesis_json.clone(),
            seals_json: vec![],
        }))
    }

    async fn ledger_head(
        &self,
        _: tonic::Request<pb::LedgerHeadRequest>,
    ) -> Result<tonic::Response<pb::LedgerHeadReply>, tonic::Status> {
        Err(tonic::Status::unimplemented("stand-in"))
    }

    async fn propose(
        &self,
        _: tonic::Request<pb::ProposeRequest>,
    ) -> Result<tonic::Response<pb::WriteReply>, tonic::Status> {
        Err(tonic::Status::unimplemented("stand-in"))
    }

    async fn list_certificates(
        &self,
        _: tonic::Request<pb::ListCertificatesRequest>,
    ) -> Result<tonic::Response<pb::ListCertificatesReply>, tonic::Status> {
        Err(tonic::Status::unimplemented("stand-in"))
    }

    async fn amend_status(
        &self,
        _: tonic::Request<pb::AmendStatusRequest>,
    ) -> Result<tonic::Response<pb::AmendStatusReply>, tonic::Status> {
        Err(tonic::Status::unimplemented("stand-in"))
    }

    async fn status(
        &self,
        _: tonic::Request<pb::StatusRequest>,
    ) -> Result<tonic::Response<pb::StatusReply>, tonic::Status> {
        Err(tonic::Status::unimplemented("stand-in"))
    }
}

/// Serves a [`StandIn`] on a loopback port until the runtime is dropped,
/// over TLS as validator 1 of the ceremony (its `tls.key` and `tls.crt`),
/// as a real validator's public API.
fn stand_in(net: Net) -> (tokio::runtime::Runtime, String, Digest) {
    let genesis_json = std::fs::read_to_string(net.genesis_path()).expect("genesis");
    let digest = net.genesis.digest();
    let node1 = net.dir.join("node-1");
    let material =
        senatus_genesis::tls::TlsMaterial::read(&node1.join("tls.key"), &node1.join("tls.crt"))
            .expect("validator 1's TLS material");
    let tls = senatus_transport::NodeTls::new(&material, std::sync::Arc::new(net.genesis.clone()));
    let config = tls.api_server().expect("API server TLS config");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let svc = pb::senatus_server::SenatusServer::new(StandIn {
        net,
        genesis_json,
        next_index: AtomicU64::new(10),
        redeemed: Mutex::new(HashSet::new()),
    });
    let _in_runtime = rt.enter();
    let incoming = senatus_transport::incoming(
        listener,
        config,
        senatus_transport::AcceptLimits::default(),
        "stand-in api",
    );
    rt.spawn(
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(incoming),
    );
    (rt, addr.to_string(), digest)
}

#[test]
fn decide_fetch_chain_verify_and_redeem_once_against_a_stand_in() {
    let net = Net::new();
    let ceremony_genesis = net.genesis_path();
    let clients = net.dir.join("clients");
    let (_rt, api, genesis_digest) = stand_in(net);
    let tmp = tempfile::tempdir().expect("tempdir");
    let keep = tmp.path().join("ceremony-genesis.json");
    std::fs::copy(&ceremony_genesis, &keep).expect("copy genesis");

    // The broker fetches its trust material, pinned to the ceremony's.
    let broker_dir = tmp.path().join("broker");
    let out = senatus(&[
        "broker",
        "fetch-chain",
        "--api",
        &api,
        "--out",
        path(&broker_dir),
        "--genesis",
        path(&keep),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&genesis_digest.to_hex()));
    let g = broker_dir.join("genesis.json");
    let seals = broker_dir.join("seals.json");
    let chain: Vec<SignedSeal> =
        serde_json::from_slice(&std::fs::read(&seals).expect("seals")).expect("chain json");
    assert_eq!(chain.len(), 1, "seal 0 only");
    assert!(chain[0].signature.is_none());
    assert_eq!(
        Genesis::load(&g).expect("saved genesis verifies").digest(),
        genesis_digest
    );
    // Fetching again refreshes the chain, keeping the same genesis.
    let out = senatus(&[
        "broker",
        "fetch-chain",
        "--api",
        &api,
        "--out",
        path(&broker_dir),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A broker pinned to another genesis refuses to switch.
    let other = Net::new();
    let out = senatus(&[
        "broker",
        "fetch-chain",
        "--api",
        &api,
        "--out",
        path(&tmp.path().join("elsewhere")),
        "--genesis",
        path(&other.genesis_path()),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("refusing to switch"));
    assert!(!tmp.path().join("elsewhere/genesis.json").exists());
    // Its TLS identity is what failed: one line naming the address and the
    // endorsement that does not verify under that genesis.
    let err = text(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "fetching the seal chain from {api}: TLS: not a validator of genesis"
        )),
        "{err}"
    );
    assert!(
        err.contains("not endorsed by node 1's identity key"),
        "{err}"
    );
    // An agent pinned to another genesis sends nothing: the same refusal.
    let req = write_request(tmp.path(), "elsewhere.json", &good_request());
    let out = senatus_pinned(
        &other.genesis_path(),
        &["decide", "--api", &api, "--file", path(&req)],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "decide failed on {api}: TLS: not a validator of the genesis given"
        )),
        "{err}"
    );
    assert!(!err.contains("transport error"), "{err}");

    // The agent asks, from a file, and keeps the token.
    let req = write_request(tmp.path(), "req.json", &good_request());
    let token_file = tmp.path().join("token.txt");
    let out = senatus_pinned(
        &keep,
        &[
            "decide",
            "--api",
            &api,
            "--file",
            path(&req),
            "--token-out",
            path(&token_file),
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for want in [
        "outcome: PERMIT",
        "reasons: payments-within-limit",
        "ledger index: 10",
        "decision id: ",
        "signers: 1, 2, 3",
        "expires at: ",
        "token: ",
    ] {
        assert!(stdout.contains(want), "want {want:?} in {stdout}");
    }
    let token_text = std::fs::read_to_string(&token_file).expect("token file");
    assert!(stdout.contains(token_text.trim()));
    // --token-out never overwrites.
    let out = senatus_pinned(
        &keep,
        &[
            "decide",
            "--api",
            &api,
            "--file",
            path(&req),
            "--token-out",
            path(&token_file),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("refusing to overwrite"));

    // The broker verifies it offline with the fetched material...
    let check = |cmd: &str, extra: &[&str]| {
        let mut args = vec![
            "broker",
            cmd,
            "--genesis",
            path(&g),
            "--seals",
            path(&seals),
            "--token-file",
            path(&token_file),
            "--surface",
            "payments",
            "--action",
            "transfer",
            "--tenant",
            "acme",
            "--params",
            r#"{"to":"acct-42","amount":1200,"currency":"EUR"}"#,
        ];
        args.extend_from_slice(extra);
        senatus(&args)
    };
    let out = check("verify", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("token OK"));
    // The agent hands it over (one presentation, bound to the exact
    // params text)...
    let presented = tmp.path().join("token.presented");
    let out = senatus(&[
        "present",
        "--key",
        path(&clients.join("agent-1.key")),
        "--broker",
        "broker-1",
        "--token-file",
        path(&token_file),
        "--params",
        r#"{"to":"acct-42","amount":1200,"currency":"EUR"}"#,
        "--out",
        path(&presented),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A broker's key must be a broker's.
    let broker_key = clients.join("broker-1.key");
    let out = check(
        "redeem",
        &[
            "--api",
            &api,
            "--key",
            path(&clients.join("agent-1.key")),
            "--presentation-file",
            path(&presented),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("needs role broker"),
        "{}",
        text(&out.stderr)
    );
    // Params text other than the presented one: refused here.
    let mut args = vec![
        "broker",
        "redeem",
        "--api",
        &api,
        "--genesis",
        path(&g),
        "--seals",
        path(&seals),
        "--token-file",
        path(&token_file),
        "--surface",
        "payments",
        "--action",
        "transfer",
        "--tenant",
        "acme",
        "--params",
        r#"{"amount":1200,"currency":"EUR","to":"acct-42"}"#,
    ];
    args.extend_from_slice(&[
        "--key",
        path(&broker_key),
        "--presentation-file",
        path(&presented),
    ]);
    let out = senatus(&args);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("presentation refused (cluster not contacted)"),
        "{}",
        text(&out.stderr)
    );
    // ...and the broker redeems it exactly once.
    let with = [
        "--api",
        api.as_str(),
        "--key",
        path(&broker_key),
        "--presentation-file",
        path(&presented),
    ];
    let out = check("redeem", &with);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("redeemed: nonce "), "{stdout}");
    assert!(stdout.contains("at ledger index 11"), "{stdout}");
    let out = check("redeem", &with);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("redemption DENIED"), "{err}");
    assert!(err.contains("AlreadyExists"), "{err}");
    assert!(err.contains("already redeemed"), "{err}");

    // Flags instead of a file, JSON output, a generated idempotency key,
    // a DENY: an answer, exit 0, with a receipt that is not a permit.
    let out = senatus_pinned(
        &keep,
        &[
            "decide",
            "--api",
            &api,
            "--surface",
            "payments",
            "--action",
            "transfer",
            "--actor",
            "agent-7",
            "--tenant",
            "denied-tenant",
            "--params",
            &transfer_params().to_string(),
            "--uncertainty",
            "12",
            "--resource",
            "cpu_millis=250",
            "--endpoint",
            "https://api.example.com/v1",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["outcome"], "DENY");
    assert!(
        v["idempotency_key"]
            .as_str()
            .expect("key")
            .starts_with("cli-")
    );
    let receipt = v["token"].as_str().expect("token text");
    let t = Token::from_text(receipt).expect("decodes");
    assert_eq!(t.payload.outcome, Outcome::Deny);
    assert_eq!(v["nonce"], t.payload.nonce.to_hex());

    // No quorum: a clear error and no token.
    let mut r = good_request();
    r["actor"] = json!("agent-noquorum");
    let f = write_request(tmp.path(), "noquorum.json", &r);
    let out = senatus_pinned(&keep, &["decide", "--api", &api, "--file", path(&f)]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("Unavailable: no quorum"), "{err}");
    assert!(err.contains("no token was issued"), "{err}");
    // A token that does not match the request is refused, not shown.
    let mut r = good_request();
    r["actor"] = json!("agent-liar");
    let f = write_request(tmp.path(), "liar.json", &r);
    let out = senatus_pinned(&keep, &["decide", "--api", &api, "--file", path(&f)]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("cluster reply is inconsistent: token tenant"),
        "{err}"
    );
    assert!(!text(&out.stdout).contains("token: "));
}
