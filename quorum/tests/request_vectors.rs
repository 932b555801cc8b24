//! Pins `docs/vectors/request-v1.json`: two governed requests
//! (`senatus/request/v1`), each signed by its agent
//! (`senatus/request-signature/v1`, `senatus/signed-request/v1`), the
//! decision each gets under the example policy layer (`senatus/decision/v1`),
//! the decision batch carrying both (`senatus/decision-batch/v2`, the payload
//! of a ledger `Decision` entry), and an auditor's signed `GetLedger` call
//! (`senatus/call/v1`). The agents' and the auditor's secret seeds are in the
//! vector: they are the example registry's published test keys.
//! `scripts/verify-vectors.py` rebuilds the request and batch bytes from the
//! JSON fields alone. Regenerate deliberately with
//! `SENATUS_WRITE_VECTORS=1 cargo test -p senatus-quorum --test request_vectors`,
//! then update docs/PROTOCOL.md and review the diff.

mod common;

use std::collections::BTreeMap;

use common::vectors_dir;

use senatus_genesis::{Digest, Epoch, PolicyLayer, sha3};
use senatus_quorum::Outcome;
use senatus_quorum::auth::{
    CallAuth, SignedRequest, call_signing_bytes, get_ledger_body, request_signing_bytes,
};
use senatus_quorum::batch::DecisionBatch;
use senatus_quorum::evaluate::{Evaluator, REASON_NO_PERMIT};
use senatus_quorum::params::canonical_params;
use senatus_quorum::request::{AgentContext, DecisionRequest};
use serde_json::{Value, json};

/// The batch time: 2026-01-01T00:00:00Z, as in the token vector.
const NOW_MS: u64 = 1_767_225_600_000;
const TTL_MS: u64 = 60_000;
/// When the agents signed: 1.5 s before the batch.
const SIGNED_AT_MS: u64 = NOW_MS - 1_500;

/// The secret seed of a published test key (`identities.toml` of the
/// example layer): 32 bytes of `b`.
fn seed(b: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[b; 32])
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
    let genesis_digest = genesis_digest();
    let seeds = [0x07u8, 0x09];
    let signed: Vec<SignedRequest> = requests
        .iter()
        .zip(seeds)
        .map(|(r, b)| SignedRequest::sign(&seed(b), &genesis_digest, r.clone(), SIGNED_AT_MS))
        .collect();
    let batch = DecisionBatch {
        issued_at_ms: NOW_MS,
        expires_at_ms: NOW_MS + TTL_MS,
        policy_version: evaluator.policy_version(),
        seal_digest,
        epoch: Epoch(0),
        requests: signed.clone(),
    };
    // Each request is its agent's, as the sealed registry says.
    let who: Vec<String> = signed
        .iter()
        .map(|s| {
            evaluator
                .authenticate(s, &genesis_digest, NOW_MS, &senatus_quorum::auth::VerifyAll)
                .map(|i| i.name.clone())
                .expect("a registered agent signed it")
        })
        .collect();
    assert_eq!(who, ["agent-7", "agent-9"]);
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
    for s in &signed {
        assert_eq!(SignedRequest::decode(&s.encode()).as_ref(), Ok(s));
    }
    // An auditor's signed read of entries 1..=10.
    let auditor = seed(0xa1);
    let body = get_ledger_body(1, 10, 0);
    let call = CallAuth::sign(&auditor, &genesis_digest, "GetLedger", &body, SIGNED_AT_MS);
    let batch_bytes = batch.encode();
    assert_eq!(DecisionBatch::decode(&batch_bytes).as_ref(), Ok(&batch));

    let value = json!({
        "description": "Two governed requests (senatus/request/v1), each signed by its \
            agent (senatus/request-signature/v1, senatus/signed-request/v1), the decision \
            each gets from the example policy layer at issued_at_ms (senatus/decision/v1), \
            the decision batch holding both (senatus/decision-batch/v2, the payload of a \
            ledger entry of kind 2), and an auditor's signed GetLedger call \
            (senatus/call/v1). The secret seeds are the example registry's published test \
            keys. Params are ASCII strings and integers, so Python's \
            json.dumps(sort_keys=True, separators=(',', ':')) equals RFC 8785 JCS. See \
            docs/PROTOCOL.md sections 2.1, 10-13.",
        "genesis_digest": genesis_digest.to_hex(),
        "policy_digest": PolicyLayer::example().digest().to_hex(),
        "requests": requests.iter().zip(&decisions).zip(signed.iter().zip(seeds)).map(|((r, d), (sg, b))| {
            json!({
                "agent": {
                    "name": r.actor,
                    "secret_seed": hex::encode([b; 32]),
                    "key": sg.key.to_string(),
                    "signed_at_ms": sg.signed_at_ms,
                    "signing_bytes": hex::encode(request_signing_bytes(
                        &genesis_digest,
                        &r.digest(),
                        sg.signed_at_ms,
                    )),
                    "signature": hex::encode(sg.signature),
                    "signed_request_bytes": hex::encode(sg.encode()),
                },
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
        "call": {
            "caller": "auditor-1",
            "secret_seed": hex::encode([0xa1u8; 32]),
            "key": call.key.to_string(),
            "method": "GetLedger",
            "from": 1,
            "to": 10,
            "limit": 0,
            "body": hex::encode(&body),
            "signed_at_ms": call.signed_at_ms,
            "signing_bytes": hex::encode(call_signing_bytes(
                &genesis_digest,
                "GetLedger",
                &body,
                call.signed_at_ms,
            )),
            "signature": hex::encode(call.signature),
        },
    });
    common::pin("request-v1.json", &value);
}

/// The genesis vector's digest: the chain the requests are signed for.
fn genesis_digest() -> Digest {
    let gv: Value = serde_json::from_str(
        &std::fs::read_to_string(vectors_dir().join("genesis-v1.json")).expect("genesis vector"),
    )
    .expect("json");
    Digest::from_hex(gv["genesis_digest"].as_str().expect("genesis_digest")).expect("digest")
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
