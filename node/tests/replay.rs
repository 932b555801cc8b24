//! Forensic replay (`senatus replay`) against five real `senatus node`
//! processes: every decision, PERMIT, DENY and SILENCE, alone or inside a
//! batch, is rebuilt from the ledger byte-identical to the token that was
//! issued, from a live node and from an export file; each way a replay can
//! fail names what failed.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::*;
use senatus_proto::v1 as pb;
use senatus_quorum::token::Token;
use senatus_testnet::RaftOverrides;
use serde_json::Value;

const TEST_BOUND: Duration = Duration::from_secs(180);
const CALL: Duration = Duration::from_secs(20);

fn request(surface: &str, action: &str, params: Value, key: &str) -> pb::DecideRequest {
    pb::DecideRequest {
        surface: surface.into(),
        action: action.into(),
        actor: "agent-3".into(),
        tenant: "acme".into(),
        params_json: params.to_string(),
        context: Some(pb::AgentContext::default()),
        idempotency_key: key.into(),
        ..Default::default()
    }
}

async fn decide(net: &senatus_testnet::Testnet, via: u64, r: pb::DecideRequest) -> pb::DecideReply {
    let mut c = net.client(via).expect("client");
    match tokio::time::timeout(CALL, c.decide(common::signed(net, r))).await {
        Err(_) => panic!("Decide via node {via} gave no answer within {CALL:?}"),
        Ok(Err(s)) => panic!("Decide via node {via}: {:?}: {}", s.code(), s.message()),
        Ok(Ok(r)) => r.into_inner(),
    }
}

fn s(p: &Path) -> String {
    p.to_str().expect("utf8 path").to_string()
}

/// Runs `senatus replay` off the async runtime.
async fn replay(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut all = vec!["replay".to_string()];
        all.extend(args);
        senatus_cli(all)
    })
    .await
    .expect("replay task")
}

fn json_of(o: &Output) -> Value {
    assert!(o.status.success(), "replay: {}", show(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("replay --json: {e}: {}", show(o)))
}

/// The replay's view must equal what the cluster issued, field by field and
/// byte by byte.
fn assert_replays(
    v: &Value,
    reply: &pb::DecideReply,
    token: &Token,
    group_key: &ed25519_dalek::VerifyingKey,
    what: &str,
) {
    assert_eq!(
        v["decision_id"],
        hex::encode(&reply.decision_id),
        "{what}: id"
    );
    assert_eq!(v["ledger_index"], reply.ledger_index, "{what}: index");
    assert_eq!(v["position"], reply.position, "{what}: position");
    assert_eq!(v["outcome"], reply.outcome.as_str(), "{what}: outcome");
    let reasons: Vec<Value> = reply
        .reasons
        .iter()
        .map(|r| Value::from(r.as_str()))
        .collect();
    assert_eq!(v["reasons"], Value::Array(reasons), "{what}: reasons");
    assert_eq!(v["policy_version"], reply.policy_version, "{what}: version");
    assert_eq!(
        v["payload"],
        hex::encode(token.payload.encode()),
        "{what}: token payload bytes"
    );
    assert_eq!(v["merkle_root"], token.root.to_hex(), "{what}: root");
    assert_eq!(
        v["issued_token"]["identical"],
        Value::Bool(true),
        "{what}: issued token compared"
    );
    assert_eq!(
        v["issued_token"]["token_digest"],
        token.digest().to_hex(),
        "{what}: token digest"
    );
    // The signed message is the one the token's signature covers.
    let message = hex::decode(v["signed_message"].as_str().expect("message")).expect("hex");
    group_key
        .verify_strict(
            &message,
            &ed25519_dalek::Signature::from_bytes(&token.signature),
        )
        .unwrap_or_else(|e| panic!("{what}: signature over the replayed message: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_decision_replays_byte_identical_from_a_node_and_from_an_export() {
    let _serial = serial().await;
    bounded(TEST_BOUND, "replay", async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = cluster(tmp.path(), RaftOverrides::default()).await;
        let genesis_path = tmp.path().join("net/genesis.json");
        let genesis = senatus_genesis::Genesis::load(&genesis_path).expect("genesis");
        let group_key =
            ed25519_dalek::VerifyingKey::from_bytes(&senatus_genesis::Seal::genesis(&genesis).group_key.0)
                .expect("group key");
        let leader = net.wait_leader(Duration::from_secs(10)).await.expect("leader");
        let follower = other_than(&net, &[leader]);

        let permit = serde_json::json!({"amount": 50_000, "currency": "EUR", "to_account": "acct-supplier-7"});
        let mut decided = vec![
            decide(&net, follower, request("payments", "transfer", permit.clone(), "r-permit")).await,
            decide(
                &net,
                leader,
                request(
                    "payments",
                    "transfer",
                    serde_json::json!({"amount": 100, "currency": "EUR", "to_account": "acct-sanctioned-0001"}),
                    "r-deny",
                ),
            )
            .await,
            decide(
                &net,
                follower,
                request("infra", "mutate", serde_json::json!({"target": "db-primary", "operation": "resize"}), "r-silence"),
            )
            .await,
        ];
        let outcomes: Vec<&str> = decided.iter().map(|r| r.outcome.as_str()).collect();
        assert_eq!(outcomes, ["PERMIT", "DENY", "SILENCE"]);

        // Many at once through one node: some land in batches of several,
        // whose tokens carry non-empty Merkle proofs.
        let mut tasks = Vec::new();
        for i in 0..24u64 {
            let c = net.client(1 + i % 5).expect("client");
            let r = request(
                "payments",
                "transfer",
                serde_json::json!({"amount": 1000 + i, "currency": "EUR", "to_account": "acct-supplier-7"}),
                &format!("r-batch-{i}"),
            );
            let r = common::signed(&net, r);
            tasks.push(tokio::spawn(async move {
                let mut c = c;
                tokio::time::timeout(CALL, c.decide(r)).await
            }));
        }
        for t in tasks {
            let reply = t
                .await
                .expect("task")
                .expect("answered in time")
                .unwrap_or_else(|s| panic!("batch decide: {:?}: {}", s.code(), s.message()));
            decided.push(reply.into_inner());
        }
        let tokens: Vec<Token> = decided
            .iter()
            .map(|r| Token::from_bytes(&r.token).expect("token decodes"))
            .collect();
        assert!(
            tokens.iter().any(|t| t.leaf_count > 1),
            "no batch of several formed from 24 concurrent requests"
        );

        let g = s(&genesis_path);
        let api = |id: u64| net.spec(id).expect("spec").api.clone();
        let export = tmp.path().join("ledger.jsonl");
        let exported = tokio::task::spawn_blocking({
            let (a, out, g) = (api(4), s(&export), g.clone());
            let key = s(&net.client_key_path("auditor-1"));
            move || senatus_cli(vec!["ledger".into(), "export".into(), "--api".into(), a, "--genesis".into(), g, "--out".into(), out, "--key".into(), key])
        })
        .await
        .expect("export task");
        assert!(exported.status.success(), "export: {}", show(&exported));

        for (i, (reply, token)) in decided.iter().zip(&tokens).enumerate() {
            let id = hex::encode(&reply.decision_id);
            let what = format!("decision {i} ({})", reply.outcome);
            // From a live node other than the one that answered...
            let live = replay(vec![
                id.clone(), "--genesis".into(), g.clone(), "--api".into(), api(1 + (i as u64 + 2) % 5),
                "--key".into(), s(&net.client_key_path("auditor-1")),
                "--token".into(), token.to_text(), "--json".into(),
            ])
            .await;
            let v = json_of(&live);
            assert_replays(&v, reply, token, &group_key, &what);
            // ...and from the export file, with the same result.
            let offline = replay(vec![
                id, "--genesis".into(), g.clone(), "--file".into(), s(&export),
                "--token".into(), token.to_text(), "--json".into(),
            ])
            .await;
            let w = json_of(&offline);
            assert_replays(&w, reply, token, &group_key, &format!("{what} from the export"));
            for field in ["payload", "merkle_root", "signed_message", "request", "reasons"] {
                assert_eq!(v[field], w[field], "{what}: {field} live vs export");
            }
        }

        // The text form says it plainly.
        let text = replay(vec![
            hex::encode(&decided[0].decision_id), "--genesis".into(), g.clone(),
            "--file".into(), s(&export), "--token".into(), tokens[0].to_text(),
        ])
        .await;
        assert!(text.status.success(), "{}", show(&text));
        let out = String::from_utf8_lossy(&text.stdout);
        assert!(out.contains("outcome: PERMIT"), "{out}");
        assert!(out.contains("reasons: payments.transfer-within-limit"), "{out}");
        assert!(out.contains("issued token: byte-identical to the replay"), "{out}");

        refusals(tmp.path(), &g, &export, &decided, &tokens).await;
    })
    .await;
}

/// Every way a replay fails, each with its own exit code and message.
async fn refusals(
    tmp: &Path,
    g: &str,
    export: &Path,
    decided: &[pb::DecideReply],
    tokens: &[Token],
) {
    let id0 = hex::encode(&decided[0].decision_id);
    let auditor_key = s(&tmp.join("net/clients/auditor-1.key"));
    let base = |id: &str| -> Vec<String> {
        vec![
            id.to_string(),
            "--genesis".into(),
            g.to_string(),
            "--file".into(),
            s(export),
        ]
    };
    let expect = |o: &Output, code: i32, needle: &str, what: &str| {
        assert_eq!(o.status.code(), Some(code), "{what}: {}", show(o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(needle),
            "{what}: wanted {needle:?}: {}",
            show(o)
        );
        assert_eq!(err.lines().count(), 1, "{what}: one line: {}", show(o));
    };

    // Another decision's token: the first differing field is named.
    let mut args = base(&id0);
    args.extend(["--token".into(), tokens[1].to_text()]);
    expect(
        &replay(args).await,
        3,
        "replay MISMATCH: the issued token differs from the replay in field decision_id",
        "another decision's token",
    );

    // The right payload with a flipped signature bit.
    let mut forged = tokens[0].clone();
    forged.signature[0] ^= 0x01;
    let mut args = base(&id0);
    args.extend(["--token".into(), forged.to_text()]);
    expect(
        &replay(args).await,
        3,
        "signature does not verify over the replayed batch message",
        "flipped signature",
    );

    // A token whose proof was swapped for another leaf's (same batch).
    if let Some(j) = (1..tokens.len())
        .find(|&j| tokens[j].root == tokens[0].root && tokens[j].payload != tokens[0].payload)
    {
        let mut t = tokens[j].clone();
        t.proof = tokens[0].proof.clone();
        let mut args = base(&hex::encode(&decided[j].decision_id));
        args.extend(["--token".into(), t.to_text()]);
        let o = replay(args).await;
        assert_eq!(o.status.code(), Some(3), "swapped proof: {}", show(&o));
    }

    // An id that no decision has.
    expect(
        &replay(base(&"ab".repeat(32))).await,
        2,
        "is not in the ledger (verified from genesis to index",
        "unknown id",
    );
    expect(&replay(base("xyz")).await, 2, "is not hex", "not hex");
    expect(
        &replay(base("abcd")).await,
        2,
        "decision id is 2 bytes, not 32",
        "short id",
    );

    // A policy layer that is not the sealed one.
    let policy = tmp.join("edited-policy");
    copy_dir(&tmp.join("net/policy"), &policy);
    let constitution = policy.join("constitution.toml");
    let mut text = std::fs::read_to_string(&constitution).expect("constitution");
    text.push_str("\n# an edit\n");
    std::fs::write(&constitution, text).expect("write");
    let mut args = base(&id0);
    args.extend(["--policy".into(), s(&policy)]);
    expect(
        &replay(args).await,
        2,
        "was sealed with digest",
        "edited policy",
    );

    // An export with one flipped byte in the middle of the chain.
    let lines: Vec<String> = std::fs::read_to_string(export)
        .expect("export")
        .lines()
        .map(str::to_string)
        .collect();
    let at = 1 + (lines.len() - 1) / 2;
    let mut line: Value = serde_json::from_str(&lines[at]).expect("line");
    let index = line["index"].as_u64().expect("index");
    let mut entry = hex::decode(line["entry"].as_str().expect("entry")).expect("hex");
    // The payload's last byte: before prev_hash and the hash (32 bytes each).
    let k = entry.len() - 65;
    entry[k] ^= 0x01;
    line["entry"] = Value::from(hex::encode(entry));
    let mut tampered = lines.clone();
    tampered[at] = line.to_string();
    let bad = tmp.join("tampered.jsonl");
    std::fs::write(&bad, tampered.join("\n") + "\n").expect("write");
    let args = vec![
        id0.clone(),
        "--genesis".into(),
        g.to_string(),
        "--file".into(),
        s(&bad),
    ];
    expect(
        &replay(args).await,
        2,
        &format!("ledger does not verify: ledger index {index}"),
        "tampered export",
    );

    // A node that does not answer.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let args = vec![
        id0,
        "--genesis".into(),
        g.to_string(),
        "--api".into(),
        closed,
        "--key".into(),
        auditor_key,
    ];
    let o = replay(args).await;
    assert_eq!(o.status.code(), Some(4), "unreachable node: {}", show(&o));
}
