//! Pins `docs/vectors/request-v1.json`: two governed requests
//! (`senatus/request/v1`), the decision each gets under the example policy
//! layer (`senatus/decision/v1`), and the decision batch carrying both
//! (`senatus/decision-batch/v1`, the payload of a ledger `Decision` entry).
//! `scripts/verify-vectors.py` rebuilds the request and batch bytes from the
//! JSON fields alone. Regenerate deliberately with
//! `SENATUS_WRITE_VECTORS=1 cargo test -p senatus-quorum --test request_vectors`,
//! then update docs/PROTOCOL.md and review the diff.

use std::collections::BTreeMap;
use std::path::PathBuf;

use senatus_genesis::{Digest, Epoch, PolicyLayer, sha3};
use senatus_quorum::Outcome;
use senatus_quorum::batch::DecisionBatch;
use senatus_quorum::evaluate::{Evaluator, REASON_NO_PERMIT};
use senatus_quorum::params::canonical_params;
use senatus_quorum::request::{AgentContext, DecisionRequest};
use serde_json::{Value, json};

/// The batch time: 2026-01-01T00:00:00Z, as in the token vector.
const NOW_MS: u64 = 1_767_225_600_000;
const TTL_MS: u64 = 60_000;

fn vectors_dir() -> PathBuf {
    PathBuf::from(
        // At run time: cargo sets it to this checkout, while a binary reused
        // from a shared target dir may have another checkout compiled in.
        &std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../docs/vectors")
}

/// Params are ASCII strings and integers only, so that Python's
/// `json.dumps(sort_keys=True, separators=(",", ":"))` is exactly JCS.
fn requests() -> Vec<DecisionRequest> {
    vec![
        DecisionRequest {
            surface: "payments".into(),
            action: "transfer".into(),
            actor: "agent-7".into(),
            tenant: "acme".into(),
            params: json!({"to_account": "acct-1", "currency": "EUR", "amount": 5000}),
            context: AgentContext {
                uncertainty_permille: 12,
                resources: BTreeMap::from([
                    ("cpu_millis".to_string(), 250),
                    ("api_calls".to_string(), 3),
                ]),
                external_endpoints: Vec::new(),
            },
            idempotency_key: "k-transfer-1".into(),
        },
        DecisionRequest {
            surface: "data".into(),
            action: "export".into(),
            actor: "agent-9".into(),
            tenant: "acme".into(),
            params: json!({
                "dataset": "crm-contacts",
                "destination": "https://files.example.net/drop?owner=jane.doe@example.org",
                "rows": 10
            }),
            context: AgentContext {
                uncertainty_permille: 0,
                resources: BTreeMap::new(),
                external_endpoints: vec!["https://files.example.net/drop".into()],
            },
            idempotency_key: "k-export-1".into(),
        },
    ]
}

#[test]
fn request_vector() {
    let evaluator = Evaluator::new(&PolicyLayer::example()).expect("example layer compiles");
    let requests = requests();
    let seal_digest = seal0_digest();
    let batch = DecisionBatch {
        issued_at_ms: NOW_MS,
        expires_at_ms: NOW_MS + TTL_MS,
        policy_version: evaluator.policy_version(),
        seal_digest,
        epoch: Epoch(0),
        requests: requests.clone(),
    };
    let decisions: Vec<_> = requests
        .iter()
        .map(|r| evaluator.evaluate(r, batch.issued_at_ms))
        .collect();
    // What the vector is meant to show: a PERMIT and a DENY by an immutable
    // forbid clause, with the detector facts that caused it.
    assert_eq!(decisions[0].outcome, Outcome::Permit);
    assert_eq!(decisions[0].reasons, ["payments.transfer-within-limit"]);
    assert_eq!(decisions[1].outcome, Outcome::Deny);
    assert_eq!(decisions[1].reasons, ["data.no-pii-external"]);
    assert!(decisions[1].facts.pii_detected);
    assert!(decisions[1].facts.destination_external);
    assert_eq!(decisions[1].facts.external_endpoints, 1);
    assert_ne!(decisions[1].reasons, [REASON_NO_PERMIT]);

    for r in &requests {
        assert_eq!(DecisionRequest::decode(&r.encode()).as_ref(), Ok(r));
    }
    let batch_bytes = batch.encode();
    assert_eq!(DecisionBatch::decode(&batch_bytes).as_ref(), Ok(&batch));

    let value = json!({
        "description": "Two governed requests (senatus/request/v1), the decision each gets \
            from the example policy layer at issued_at_ms (senatus/decision/v1), and the \
            decision batch holding both (senatus/decision-batch/v1, the payload of a ledger \
            entry of kind 2). Params are ASCII strings and integers, so Python's \
            json.dumps(sort_keys=True, separators=(',', ':')) equals RFC 8785 JCS. See \
            docs/PROTOCOL.md sections 10-13.",
        "policy_digest": PolicyLayer::example().digest().to_hex(),
        "requests": requests.iter().zip(&decisions).map(|(r, d)| {
            json!({
                "surface": r.surface,
                "action": r.action,
                "actor": r.actor,
                "tenant": r.tenant,
                "params": r.params,
                "params_jcs": String::from_utf8(canonical_params(&r.params).expect("jcs"))
                    .expect("utf-8"),
                "uncertainty_permille": r.context.uncertainty_permille,
                "resources": r.context.resources.iter()
                    .map(|(name, amount)| json!([name, amount]))
                    .collect::<Vec<_>>(),
                "external_endpoints": r.context.external_endpoints,
                "idempotency_key": r.idempotency_key,
                "request_bytes": hex::encode(r.encode()),
                "request_digest": r.digest().to_hex(),
                "decision": {
                    "outcome": d.outcome.code(),
                    "reasons": d.reasons,
                    "policy_version": d.policy_version.0,
                    "facts": d.facts.to_json(),
                    "decision_bytes": hex::encode(d.encode()),
                    "decision_digest": d.digest().to_hex(),
                },
            })
        }).collect::<Vec<_>>(),
        "batch": {
            "issued_at_ms": batch.issued_at_ms,
            "expires_at_ms": batch.expires_at_ms,
            "policy_version": batch.policy_version.0,
            "seal_digest": batch.seal_digest.to_hex(),
            "epoch": batch.epoch.0,
            "batch_bytes": hex::encode(&batch_bytes),
            "batch_digest": sha3(&batch_bytes).to_hex(),
        },
    });
    let path = vectors_dir().join("request-v1.json");
    let text = format!("{}\n", serde_json::to_string_pretty(&value).expect("json"));
    if std::env::var_os("SENATUS_WRITE_VECTORS").is_some() {
        std::fs::write(&path, &text).expect("write vector");
        return;
    }
    let pinned = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("missing vector {}: {e}", path.display()));
    assert_eq!(
        pinned, text,
        "docs/vectors/request-v1.json no longer matches the code; if the protocol changed on \
         purpose, regenerate (see this file's header) and update docs/PROTOCOL.md"
    );
}

/// Seal 0 of the genesis vector, so this batch chains to the same cluster
/// as the token vector.
fn seal0_digest() -> Digest {
    let gv: Value = serde_json::from_str(
        &std::fs::read_to_string(vectors_dir().join("genesis-v1.json")).expect("genesis vector"),
    )
    .expect("json");
    Digest::from_hex(gv["seal0_digest"].as_str().expect("seal0_digest")).expect("digest")
}
