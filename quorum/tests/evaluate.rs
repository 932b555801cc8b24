//! Evaluation against the bundled example policy layer, the detectors, and
//! the request encoding: every outcome with its exact reasons, every
//! detector both ways, every request rejection path.

use std::collections::BTreeMap;

use senatus_genesis::PolicyLayer;
use senatus_genesis::policy::DetectorSettings;
use senatus_quorum::Outcome;
use senatus_quorum::detect::{Detectors, Facts, Finding, sealed_tenants};
use senatus_quorum::evaluate::{
    Decision, Evaluator, REASON_EXTERNAL_ENDPOINTS, REASON_INVALID_REQUEST, REASON_NO_PERMIT,
    REASON_UNCERTAINTY,
};
use senatus_quorum::params::ParamsError;
use senatus_quorum::request::{
    AgentContext, DecisionRequest, ENDPOINTS_MAX, PARAMS_BYTES_MAX_DEFAULT, RESOURCES_MAX,
    RequestError,
};
use serde_json::json;

/// A fixed decision time: 2026-01-01T00:00:00Z.
const NOW: u64 = 1_767_225_600_000;

fn evaluator() -> Evaluator {
    Evaluator::new(&PolicyLayer::example()).expect("example layer compiles")
}

fn request(surface: &str, action: &str, params: serde_json::Value) -> DecisionRequest {
    DecisionRequest {
        surface: surface.to_string(),
        action: action.to_string(),
        actor: "agent-7".to_string(),
        tenant: "acme".to_string(),
        params,
        context: AgentContext::default(),
        idempotency_key: "idem-1".to_string(),
    }
}

fn transfer(amount: i64, currency: &str, to: &str) -> DecisionRequest {
    request(
        "payments",
        "transfer",
        json!({ "amount": amount, "currency": currency, "to_account": to }),
    )
}

fn export(dataset: &str, destination: &str, rows: i64) -> DecisionRequest {
    request(
        "data",
        "export",
        json!({ "dataset": dataset, "destination": destination, "rows": rows }),
    )
}

fn mutate(actor: &str) -> DecisionRequest {
    let mut r = request(
        "infra",
        "mutate",
        json!({ "target": "db-primary", "operation": "resize" }),
    );
    r.actor = actor.to_string();
    r
}

#[track_caller]
fn assert_decision(d: &Decision, outcome: Outcome, reasons: &[&str]) {
    assert_eq!(
        (
            d.outcome,
            d.reasons.iter().map(String::as_str).collect::<Vec<_>>()
        ),
        (outcome, reasons.to_vec()),
        "detail: {:?}",
        d.detail
    );
}

// ---------------------------------------------------------------- outcomes

#[test]
fn permit_transfer_within_limit() {
    let e = evaluator();
    let d = e.evaluate(&transfer(50_000, "EUR", "acct-supplier-7"), NOW);
    assert_decision(&d, Outcome::Permit, &["payments.transfer-within-limit"]);
    assert_eq!(d.policy_version.0, 1);
    assert_eq!(d.facts, Facts::default());
    // Exactly at the sealed limit is still within it.
    let d = e.evaluate(&transfer(100_000, "USD", "acct-supplier-7"), NOW);
    assert_decision(&d, Outcome::Permit, &["payments.transfer-within-limit"]);
}

#[test]
fn permit_internal_export() {
    let d = evaluator().evaluate(&export("orders-2025", "warehouse", 10_000), NOW);
    assert_decision(&d, Outcome::Permit, &["data.export-internal"]);
    assert!(!d.facts.destination_external);
}

#[test]
fn deny_blocklisted_account_even_within_limit() {
    let d = evaluator().evaluate(&transfer(100, "EUR", "acct-sanctioned-0001"), NOW);
    assert_decision(&d, Outcome::Deny, &["payments.blocklist"]);
    let d = evaluator().evaluate(&transfer(100, "EUR", "acct-fraud-0042"), NOW);
    assert_decision(&d, Outcome::Deny, &["payments.blocklist"]);
}

#[test]
fn deny_pii_to_external_destination() {
    let d = evaluator().evaluate(
        &export(
            "contacts of alice@example.org",
            "https://upload.partner.example/in",
            10,
        ),
        NOW,
    );
    assert_decision(&d, Outcome::Deny, &["data.no-pii-external"]);
    assert!(d.facts.pii_detected && d.facts.destination_external);
    assert_eq!(d.facts.external_endpoints, 1);
    assert_eq!(d.findings, vec![Finding::Email]);
}

#[test]
fn external_export_without_pii_is_silence_and_pii_internal_is_permitted() {
    let e = evaluator();
    let d = e.evaluate(
        &export("orders", "https://upload.partner.example/in", 10),
        NOW,
    );
    assert_decision(&d, Outcome::Silence, &[REASON_NO_PERMIT]);
    let d = e.evaluate(
        &export("contacts of alice@example.org", "warehouse", 10),
        NOW,
    );
    assert_decision(&d, Outcome::Permit, &["data.export-internal"]);
    assert!(d.facts.pii_detected);
    // A declared external endpoint makes the destination external too.
    let mut r = export("orders", "warehouse", 10);
    r.context.external_endpoints = vec!["https://api.partner.example".to_string()];
    let d = e.evaluate(&r, NOW);
    assert_decision(&d, Outcome::Silence, &[REASON_NO_PERMIT]);
    assert!(d.facts.destination_external);
}

#[test]
fn deny_secret_in_params_for_any_action() {
    let e = evaluator();
    let d = e.evaluate(&transfer(100, "EUR", "AKIAIOSFODNN7EXAMPLE"), NOW);
    assert_decision(&d, Outcome::Deny, &["safety.no-secrets"]);
    assert_eq!(d.findings, vec![Finding::AwsAccessKeyId]);
    let mut r = mutate("ops-agent-1");
    r.params["operation"] = json!("rotate with ghp_0123456789abcdefghijABCDEFGHIJ012345");
    let d = e.evaluate(&r, NOW);
    assert_decision(&d, Outcome::Deny, &["safety.no-secrets"]);
}

#[test]
fn deny_secret_and_blocklist_together_name_both_forbids() {
    let r = request(
        "payments",
        "transfer",
        json!({
            "amount": 100,
            "currency": "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "to_account": "acct-sanctioned-0001",
        }),
    );
    let d = evaluator().evaluate(&r, NOW);
    assert_decision(
        &d,
        Outcome::Deny,
        &["payments.blocklist", "safety.no-secrets"],
    );
}

#[test]
fn deny_too_many_external_endpoints() {
    let e = evaluator();
    let mut r = transfer(100, "EUR", "acct-supplier-7");
    r.context.external_endpoints = vec![
        "https://a.example.com".to_string(),
        "https://b.example.com/x".to_string(),
        "c.example.com:443".to_string(),
    ];
    let d = e.evaluate(&r, NOW);
    assert_decision(&d, Outcome::Permit, &["payments.transfer-within-limit"]);
    assert_eq!(d.facts.external_endpoints, 3);
    // Same host twice is one endpoint.
    r.context
        .external_endpoints
        .push("HTTPS://A.example.com:8443/other".to_string());
    let d = e.evaluate(&r, NOW);
    assert_eq!(d.facts.external_endpoints, 3);
    assert_eq!(d.outcome, Outcome::Permit);
    // A URL inside params counts as well.
    r.params["to_account"] = json!("see https://d.example.com/acct");
    let d = e.evaluate(&r, NOW);
    assert_decision(&d, Outcome::Deny, &[REASON_EXTERNAL_ENDPOINTS]);
    assert_eq!(d.facts.external_endpoints, 4);
}

#[test]
fn silence_unknown_action() {
    let e = evaluator();
    let d = e.evaluate(&request("payments", "refund", json!({"amount": 1})), NOW);
    assert_decision(&d, Outcome::Silence, &[REASON_INVALID_REQUEST]);
    assert!(
        d.detail
            .as_deref()
            .is_some_and(|m| m.contains("payments.refund"))
    );
}

#[test]
fn silence_when_uncertainty_reaches_alpha() {
    let e = evaluator();
    let mut r = transfer(100, "EUR", "acct-supplier-7");
    r.context.uncertainty_permille = 699;
    assert_decision(
        &e.evaluate(&r, NOW),
        Outcome::Permit,
        &["payments.transfer-within-limit"],
    );
    for u in [700, 1000] {
        r.context.uncertainty_permille = u;
        assert_decision(
            &e.evaluate(&r, NOW),
            Outcome::Silence,
            &[REASON_UNCERTAINTY],
        );
    }
    // Uncertainty wins over what policy would have said.
    let mut r = transfer(100, "EUR", "acct-sanctioned-0001");
    r.context.uncertainty_permille = 900;
    assert_decision(
        &e.evaluate(&r, NOW),
        Outcome::Silence,
        &[REASON_UNCERTAINTY],
    );
}

#[test]
fn silence_transfer_over_limit_or_in_foreign_currency() {
    let e = evaluator();
    for r in [
        transfer(100_001, "EUR", "acct-supplier-7"),
        transfer(100, "GBP", "acct-supplier-7"),
        transfer(0, "EUR", "acct-supplier-7"),
        transfer(-5, "EUR", "acct-supplier-7"),
    ] {
        assert_decision(&e.evaluate(&r, NOW), Outcome::Silence, &[REASON_NO_PERMIT]);
    }
    // globex has a larger sealed limit.
    let mut r = transfer(2_000_000, "USD", "acct-supplier-7");
    r.tenant = "globex".to_string();
    assert_decision(
        &e.evaluate(&r, NOW),
        Outcome::Permit,
        &["payments.transfer-within-limit"],
    );
}

#[test]
fn silence_infra_mutate_by_non_sre_and_outside_a_change_window() {
    let e = evaluator();
    let d = e.evaluate(&mutate("agent-7"), NOW);
    assert_decision(&d, Outcome::Silence, &[REASON_NO_PERMIT]);
    // The example layer seals no change windows, so even SRE agents get
    // SILENCE: fail closed.
    let d = e.evaluate(&mutate("ops-agent-1"), NOW);
    assert_decision(&d, Outcome::Silence, &[REASON_NO_PERMIT]);
    assert!(!d.facts.in_change_window);
}

#[test]
fn silence_params_that_do_not_fit_the_schema() {
    let e = evaluator();
    let bad = [
        json!({ "amount": 100, "currency": "EUR" }),
        json!({ "amount": "100", "currency": "EUR", "to_account": "a" }),
        json!({ "amount": 1.5, "currency": "EUR", "to_account": "a" }),
        json!({ "amount": 100, "currency": "EUR", "to_account": "a", "memo": "x" }),
        json!({ "amount": 100, "currency": ["EUR"], "to_account": "a" }),
    ];
    for params in bad {
        let d = e.evaluate(&request("payments", "transfer", params.clone()), NOW);
        assert_decision(&d, Outcome::Silence, &[REASON_INVALID_REQUEST]);
    }
    // Over limits.params_bytes_max (65536 in the example constitution).
    let big = "x".repeat(PARAMS_BYTES_MAX_DEFAULT as usize);
    let d = e.evaluate(&export(&big, "warehouse", 1), NOW);
    assert_decision(&d, Outcome::Silence, &[REASON_INVALID_REQUEST]);
    assert!(
        d.detail
            .as_deref()
            .is_some_and(|m| m.contains("canonical bytes"))
    );
    // Structurally invalid requests are outcomes too.
    let mut r = transfer(100, "EUR", "acct-supplier-7");
    r.actor = String::new();
    assert_decision(
        &e.evaluate(&r, NOW),
        Outcome::Silence,
        &[REASON_INVALID_REQUEST],
    );
    let mut r = transfer(100, "EUR", "acct-supplier-7");
    r.params = json!([1, 2]);
    assert_decision(
        &e.evaluate(&r, NOW),
        Outcome::Silence,
        &[REASON_INVALID_REQUEST],
    );
}

#[test]
fn policy_error_fails_closed() {
    // A tenant absent from entities.json: the permit reads its attributes
    // and errors. Cedar would skip it; the gate denies and names it.
    let mut r = transfer(100, "EUR", "acct-supplier-7");
    r.tenant = "initech".to_string();
    let d = evaluator().evaluate(&r, NOW);
    assert_decision(
        &d,
        Outcome::Deny,
        &["senatus.policy-error:payments.transfer-within-limit"],
    );
    assert!(d.detail.is_some());
    // A matching forbid is still named next to the error.
    let mut r = transfer(100, "EUR", "acct-sanctioned-0001");
    r.tenant = "initech".to_string();
    let d = evaluator().evaluate(&r, NOW);
    assert_decision(
        &d,
        Outcome::Deny,
        &[
            "payments.blocklist",
            "senatus.policy-error:payments.transfer-within-limit",
        ],
    );
}

// ------------------------------------------------------------- determinism

#[test]
fn evaluator_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Evaluator>();
    assert_send_sync::<Detectors>();
}

#[test]
fn evaluation_is_deterministic_and_ignores_key_order() {
    let e = evaluator();
    let a: serde_json::Value =
        serde_json::from_str(r#"{"amount": 5, "currency": "EUR", "to_account": "x-1"}"#)
            .expect("json");
    let b: serde_json::Value =
        serde_json::from_str(r#"{"to_account": "x-1", "amount": 5, "currency": "EUR"}"#)
            .expect("json");
    let ra = request("payments", "transfer", a);
    let rb = request("payments", "transfer", b);
    let da = e.evaluate(&ra, NOW);
    assert_eq!(da.encode(), e.evaluate(&ra, NOW).encode());
    assert_eq!(da.encode(), e.evaluate(&rb, NOW).encode());
    assert_eq!(ra.encode(), rb.encode());
    assert_eq!(ra.digest(), rb.digest());
    // A second evaluator built from the same layer agrees byte for byte.
    assert_eq!(da.encode(), evaluator().evaluate(&rb, NOW).encode());
    // Replay: decoding the logged bytes gives the same decision.
    let replayed = DecisionRequest::decode(&ra.encode()).expect("decode");
    assert_eq!(e.evaluate(&replayed, NOW), da);
}

#[test]
fn leader_and_replay_agree_on_non_canonical_numbers() {
    let e = evaluator();
    // 2.0 is the integer 2 in canonical form, for the leader and for a
    // replica that decodes the ledger entry.
    let r = request(
        "payments",
        "transfer",
        json!({ "amount": 2.0, "currency": "EUR", "to_account": "x" }),
    );
    let leader = e.evaluate(&r, NOW);
    let replay = e.evaluate(&DecisionRequest::decode(&r.encode()).expect("decode"), NOW);
    assert_eq!(leader.encode(), replay.encode());
    assert_decision(
        &leader,
        Outcome::Permit,
        &["payments.transfer-within-limit"],
    );
}

// --------------------------------------------- sealed zones (custom layer)

/// The example layer with `internal_domains` and `change_windows` added to
/// the Tenant type and to acme. Only this test's copy changes: the example
/// files are pinned by vectors.
fn zoned_layer() -> PolicyLayer {
    let mut files = PolicyLayer::example().files().clone();
    let schema = String::from_utf8(files["schema.cedarschema"].clone()).expect("utf8");
    let schema = schema.replace(
        "    export_rows_max: Long,\n",
        "    export_rows_max: Long,\n    internal_domains?: Set<String>,\n    \
         change_windows?: Set<{ start_unix_ms: Long, end_unix_ms: Long }>,\n",
    );
    assert!(schema.contains("internal_domains?"), "schema edit applied");
    files.insert("schema.cedarschema".to_string(), schema.into_bytes());
    let mut entities: serde_json::Value =
        serde_json::from_slice(&files["entities.json"]).expect("json");
    entities[0]["attrs"]["internal_domains"] = json!(["acme.internal", "Corp.Acme.COM."]);
    entities[0]["attrs"]["change_windows"] = json!([
        { "start_unix_ms": NOW, "end_unix_ms": NOW + 3_600_000 }
    ]);
    assert_eq!(entities[0]["uid"]["id"], "acme");
    files.insert(
        "entities.json".to_string(),
        serde_json::to_vec(&entities).expect("json"),
    );
    PolicyLayer::from_files(files).expect("zoned layer is valid")
}

#[test]
fn sealed_internal_domains_make_destinations_internal() {
    let e = Evaluator::new(&zoned_layer()).expect("compiles");
    let d = e.evaluate(
        &export(
            "contacts of alice@example.org",
            "https://files.acme.internal/x",
            10,
        ),
        NOW,
    );
    assert_decision(&d, Outcome::Permit, &["data.export-internal"]);
    assert_eq!(d.facts.external_endpoints, 0);
    let d = e.evaluate(&export("orders", "corp.acme.com", 10), NOW);
    assert_decision(&d, Outcome::Permit, &["data.export-internal"]);
    let d = e.evaluate(
        &export(
            "contacts of alice@example.org",
            "https://acme.internal.evil.example",
            10,
        ),
        NOW,
    );
    assert_decision(&d, Outcome::Deny, &["data.no-pii-external"]);
    // globex declares no internal domains.
    let mut r = export("orders", "https://files.acme.internal/x", 10);
    r.tenant = "globex".to_string();
    assert_decision(&e.evaluate(&r, NOW), Outcome::Silence, &[REASON_NO_PERMIT]);
}

#[test]
fn sealed_change_windows_open_infra_mutation_to_sre_only() {
    let e = Evaluator::new(&zoned_layer()).expect("compiles");
    let sre = mutate("ops-agent-1");
    assert_decision(
        &e.evaluate(&sre, NOW),
        Outcome::Permit,
        &["infra.mutate-sre-window"],
    );
    assert_decision(
        &e.evaluate(&sre, NOW + 3_599_999),
        Outcome::Permit,
        &["infra.mutate-sre-window"],
    );
    for t in [NOW - 1, NOW + 3_600_000] {
        assert_decision(&e.evaluate(&sre, t), Outcome::Silence, &[REASON_NO_PERMIT]);
    }
    assert_decision(
        &e.evaluate(&mutate("agent-7"), NOW),
        Outcome::Silence,
        &[REASON_NO_PERMIT],
    );
}

#[test]
fn malformed_sealed_zones_are_rejected() {
    let bad = [
        r#"[{"uid":{"type":"Senatus::Tenant","id":"t"},"attrs":{"internal_domains":"x"},"parents":[]}]"#,
        r#"[{"uid":{"type":"Senatus::Tenant","id":"t"},"attrs":{"internal_domains":["a b"]},"parents":[]}]"#,
        r#"[{"uid":{"type":"Senatus::Tenant","id":"t"},"attrs":{"change_windows":[{"start_unix_ms":5}]},"parents":[]}]"#,
        r#"[{"uid":{"type":"Senatus::Tenant","id":"t"},"attrs":{"change_windows":[{"start_unix_ms":5,"end_unix_ms":5}]},"parents":[]}]"#,
        r#"{}"#,
    ];
    for text in bad {
        assert!(sealed_tenants(text).is_err(), "{text}");
    }
    let ok = sealed_tenants(
        r#"[{"uid":{"__entity":{"type":"Senatus::Tenant","id":"t"}},"attrs":{"internal_domains":["A.Example."]},"parents":[]}]"#,
    )
    .expect("ok");
    assert_eq!(ok["t"].internal_domains, vec!["a.example".to_string()]);
    assert!(
        sealed_tenants(&String::from_utf8_lossy(
            &PolicyLayer::example().files()["entities.json"]
        ))
        .expect("example")
        .is_empty()
    );
}

// --------------------------------------------------------------- detectors

fn detectors(pii: bool, secrets: bool) -> Detectors {
    Detectors::new(
        &DetectorSettings {
            pii,
            secrets,
            external_endpoints_max: 3,
        },
        BTreeMap::new(),
    )
}

fn findings_in(d: &Detectors, value: serde_json::Value) -> Vec<Finding> {
    let r = request("x", "y", json!({ "v": value }));
    d.detect(&r, NOW).fired
}

#[test]
fn every_detector_fires_on_its_positive_cases() {
    let d = detectors(true, true);
    let cases: &[(&str, Finding)] = &[
        ("mail bob.smith+x@mail.example.co.uk now", Finding::Email),
        ("4111111111111111", Finding::PaymentCard),
        ("card 4111 1111 1111 1111 exp 12/29", Finding::PaymentCard),
        ("5500-0000-0000-0004", Finding::PaymentCard),
        ("378282246310005", Finding::PaymentCard),
        ("ssn 123-45-6789.", Finding::UsSsn),
        ("ssn 123 45 6789", Finding::UsSsn),
        ("DE89370400440532013000", Finding::Iban),
        ("iban GB82 WEST 1234 5698 7654 32 please", Finding::Iban),
        ("fr1420041010050500013m02606", Finding::Iban),
        ("AKIAIOSFODNN7EXAMPLE", Finding::AwsAccessKeyId),
        ("id=ASIAY34FZKBOKMUTVV7A;", Finding::AwsAccessKeyId),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE", Finding::PrivateKey),
        ("-----BEGIN OPENSSH PRIVATE KEY-----", Finding::PrivateKey),
        ("-----BEGIN PRIVATE KEY-----", Finding::PrivateKey),
        ("-----BEGIN PGP PRIVATE KEY BLOCK-----", Finding::PrivateKey),
        (
            "ghp_0123456789abcdefghijABCDEFGHIJ012345",
            Finding::GithubToken,
        ),
        (
            "gho_0123456789abcdefghijABCDEFGHIJ012345",
            Finding::GithubToken,
        ),
        (
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
            Finding::GithubToken,
        ),
        ("xoxb-123456789012-abcdefABCDEF", Finding::SlackToken),
        ("xoxp-1234-5678-abcd-efgh", Finding::SlackToken),
        ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", Finding::ApiKey),
        ("Bearer sk-proj-abcDEF123456ghiJKL789mno", Finding::ApiKey),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            Finding::Jwt,
        ),
    ];
    for (text, finding) in cases {
        assert_eq!(
            findings_in(&d, json!(text)),
            vec![*finding],
            "{text:?} should fire exactly {finding:?}"
        );
    }
}

#[test]
fn detectors_stay_quiet_on_near_misses() {
    let d = detectors(true, true);
    let quiet = [
        "not-an-email@localhost",
        "user at example dot com",
        "4111111111111112",                  // Luhn-invalid
        "4111 1111 1111 1112",               // Luhn-invalid with spaces
        "411111111111",                      // 12 digits: too short
        "41111111111111111111111",           // 23 digits: not a card
        "000-12-3456",                       // area 000
        "666-12-3456",                       // area 666
        "912-12-3456",                       // area 9xx
        "123-00-4567",                       // group 00
        "123-45-0000",                       // serial 0000
        "123-45 6789",                       // mixed separators
        "1123-45-6789",                      // part of a longer number
        "DE89370400440532013001",            // mod-97 fails
        "DE8937040044053201300",             // wrong length for DE
        "ZZ89370400440532013000",            // not a registry country
        "AKIAIOSFODNN7EXAMPL",               // 15 characters
        "-----BEGIN PUBLIC KEY-----",        // public, not private
        "ghp_short",                         // too short
        "xoxz-123456789012",                 // not a Slack token kind
        "sk-some-long-hyphenated-name-here", // no digits: an identifier
        "sk_live_short",                     // too short
        "eyJhbGciOiJIUzI1NiJ9.payload.sig",  // payload not a JSON object
        "task-abcdefghij0123456789klmnop",   // 'sk-' inside a word
        "acct-sanctioned-0001",
        "https://example.com/path?x=1",
    ];
    for text in quiet {
        assert_eq!(
            findings_in(&d, json!(text)),
            Vec::<Finding>::new(),
            "{text:?}"
        );
    }
}

#[test]
fn detectors_scan_keys_nested_values_and_integers() {
    let d = detectors(true, true);
    let r = request(
        "x",
        "y",
        json!({ "a": [{ "alice@example.org": 1 }], "b": { "c": [4111111111111111u64] } }),
    );
    let det = d.detect(&r, NOW);
    assert_eq!(det.fired, vec![Finding::Email, Finding::PaymentCard]);
    assert!(det.facts.pii_detected && !det.facts.secrets_detected);
    let r = request("x", "y", json!({ "deep": [[[["AKIAIOSFODNN7EXAMPLE"]]]] }));
    let det = d.detect(&r, NOW);
    assert_eq!(det.fired, vec![Finding::AwsAccessKeyId]);
    assert!(!det.facts.pii_detected && det.facts.secrets_detected);
}

#[test]
fn disabled_detectors_do_not_fire() {
    let text = "alice@example.org AKIAIOSFODNN7EXAMPLE";
    assert_eq!(
        findings_in(&detectors(false, true), json!(text)),
        vec![Finding::AwsAccessKeyId]
    );
    assert_eq!(
        findings_in(&detectors(true, false), json!(text)),
        vec![Finding::Email]
    );
    assert_eq!(findings_in(&detectors(false, false), json!(text)), vec![]);
}

#[test]
fn endpoint_facts_follow_the_documented_rule() {
    let d = detectors(true, true);
    let facts = |params: serde_json::Value, endpoints: &[&str]| {
        let mut r = request("x", "y", params);
        r.context.external_endpoints = endpoints.iter().map(|s| s.to_string()).collect();
        d.detect(&r, NOW).facts
    };
    let f = facts(json!({ "destination": "warehouse" }), &[]);
    assert!(!f.destination_external);
    assert_eq!(f.external_endpoints, 0);
    let f = facts(json!({ "destination": "s3://bucket-x/key" }), &[]);
    assert!(f.destination_external);
    assert_eq!(f.external_endpoints, 1);
    let f = facts(json!({ "destination": "bob@partner.example" }), &[]);
    assert!(f.destination_external);
    let f = facts(json!({ "destination": 7 }), &[]);
    assert!(
        f.destination_external,
        "a non-string destination fails closed"
    );
    let f = facts(
        json!({ "nested": { "destination": "https://x.example" } }),
        &[],
    );
    assert!(!f.destination_external, "only the top-level destination");
    assert_eq!(f.external_endpoints, 1, "but the URL is still an endpoint");
    let f = facts(
        json!({ "note": "see https://A.example/x and http://a.example:80/y" }),
        &["a.example", "https://b.example"],
    );
    assert!(f.destination_external);
    assert_eq!(f.external_endpoints, 2);
    assert!(!f.in_change_window);
}

// ------------------------------------------------------- request validity

fn valid() -> DecisionRequest {
    let mut r = transfer(5, "EUR", "acct-1");
    r.context = AgentContext {
        uncertainty_permille: 100,
        resources: BTreeMap::from([("cpu_millis".to_string(), 250), ("rows".to_string(), 10)]),
        external_endpoints: vec!["https://api.example.com".to_string()],
    };
    r
}

#[test]
fn every_request_error_path() {
    valid().validate().expect("valid");
    let check = |f: &dyn Fn(&mut DecisionRequest), want: &dyn Fn(&RequestError) -> bool| {
        let mut r = valid();
        f(&mut r);
        let err = r.validate().expect_err("must be rejected");
        assert!(want(&err), "unexpected error: {err}");
        err
    };
    check(
        &|r| r.surface.clear(),
        &|e| matches!(e, RequestError::Empty { field } if field == "surface"),
    );
    check(
        &|r| r.action = "Transfer".to_string(),
        &|e| matches!(e, RequestError::BadCharacter { field, value, .. } if field == "action" && value == "Transfer"),
    );
    check(
        &|r| r.surface = "pay.ments".to_string(),
        &|e| matches!(e, RequestError::BadCharacter { field, .. } if field == "surface"),
    );
    check(
        &|r| r.surface = "-payments".to_string(),
        &|e| matches!(e, RequestError::BadCharacter { field, .. } if field == "surface"),
    );
    let err = check(
        &|r| r.actor = "a".repeat(200),
        &|e| matches!(e, RequestError::TooLong { field, bytes: 200, max: 128, .. } if field == "actor"),
    );
    assert!(
        err.to_string().contains('…'),
        "echoed value is truncated: {err}"
    );
    check(
        &|r| r.tenant = "ac me".to_string(),
        &|e| matches!(e, RequestError::BadCharacter { field, .. } if field == "tenant"),
    );
    check(
        &|r| r.idempotency_key = "k\n".to_string(),
        &|e| matches!(e, RequestError::BadCharacter { field, .. } if field == "idempotency_key"),
    );
    check(
        &|r| r.idempotency_key.clear(),
        &|e| matches!(e, RequestError::Empty { field } if field == "idempotency_key"),
    );
    check(&|r| r.context.uncertainty_permille = 1001, &|e| {
        matches!(e, RequestError::UncertaintyOutOfRange { value: 1001 })
    });
    check(
        &|r| {
            r.context.resources = (0..=RESOURCES_MAX).map(|i| (format!("r{i}"), 1)).collect();
        },
        &|e| matches!(e, RequestError::TooMany { field, count: 33, max: 32 } if field == "context.resources"),
    );
    check(
        &|r| {
            r.context.resources.insert("CPU".to_string(), 1);
        },
        &|e| matches!(e, RequestError::BadCharacter { field, value, .. } if field == "context.resources key" && value == "CPU"),
    );
    check(
        &|r| r.context.external_endpoints = vec!["h.example".to_string(); ENDPOINTS_MAX + 1],
        &|e| matches!(e, RequestError::TooMany { field, count: 33, .. } if field == "context.external_endpoints"),
    );
    check(
        &|r| {
            r.context
                .external_endpoints
                .push("https://x.example/a b".to_string())
        },
        &|e| matches!(e, RequestError::BadCharacter { field, .. } if field == "context.external_endpoints[1]"),
    );
    check(
        &|r| {
            r.context
                .external_endpoints
                .push("https:///path-only".to_string())
        },
        &|e| matches!(e, RequestError::EndpointWithoutHost { field, .. } if field == "context.external_endpoints[1]"),
    );
    check(&|r| r.params = json!("text"), &|e| {
        matches!(
            e,
            RequestError::Params(ParamsError::NotAnObject { found: "a string" })
        )
    });
    check(
        &|r| {
            let mut v = json!(1);
            for _ in 0..40 {
                v = json!({ "k": v });
            }
            r.params = v;
        },
        &|e| matches!(e, RequestError::Params(ParamsError::TooDeep)),
    );
    check(
        &|r| r.params = json!({ "blob": "x".repeat(PARAMS_BYTES_MAX_DEFAULT as usize) }),
        &|e| {
            matches!(
                e,
                RequestError::ParamsTooLarge {
                    max: PARAMS_BYTES_MAX_DEFAULT,
                    ..
                }
            )
        },
    );
    // A larger constitution limit admits the same params.
    let mut r = valid();
    r.params = json!({ "blob": "x".repeat(PARAMS_BYTES_MAX_DEFAULT as usize) });
    r.validate_with(2 * PARAMS_BYTES_MAX_DEFAULT)
        .expect("within the larger limit");
}

// ---------------------------------------------------------------- encoding

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// Hand-built encoding with every field under the test's control.
fn encoded(params: &[u8], resources: &[(&[u8], u64)], actor: &[u8]) -> Vec<u8> {
    let mut b = b"senatus/request/v1\0".to_vec();
    put_str(&mut b, b"payments");
    put_str(&mut b, b"transfer");
    put_str(&mut b, actor);
    put_str(&mut b, b"acme");
    put_str(&mut b, params);
    b.extend_from_slice(&3u16.to_be_bytes());
    b.extend_from_slice(&(resources.len() as u32).to_be_bytes());
    for (name, amount) in resources {
        put_str(&mut b, name);
        b.extend_from_slice(&amount.to_be_bytes());
    }
    b.extend_from_slice(&0u32.to_be_bytes());
    put_str(&mut b, b"k");
    b
}

#[test]
fn encoding_round_trips() {
    let r = valid();
    let bytes = r.encode();
    let back = DecisionRequest::decode(&bytes).expect("decode");
    assert_eq!(back, r);
    assert_eq!(back.encode(), bytes);
    let hand = encoded(br#"{"a":1}"#, &[(b"a", 1), (b"b", 2)], b"agent");
    let decoded = DecisionRequest::decode(&hand).expect("hand-built bytes decode");
    assert_eq!(decoded.encode(), hand);
}

#[test]
fn decode_rejects_every_malformation() {
    let good = valid().encode();
    // Every strict prefix is truncated (or, for the first bytes, a bad tag).
    for cut in 0..good.len() {
        let err = DecisionRequest::decode(&good[..cut]).expect_err("prefix");
        assert!(
            matches!(
                err,
                RequestError::Truncated { .. } | RequestError::BadTag { .. }
            ),
            "cut {cut}: {err}"
        );
    }
    let mut long = good.clone();
    long.push(0);
    assert_eq!(
        DecisionRequest::decode(&long).expect_err("trailing"),
        RequestError::TrailingBytes {
            offset: good.len(),
            count: 1
        }
    );
    let mut wrong_tag = good.clone();
    wrong_tag[17] = b'2';
    assert!(matches!(
        DecisionRequest::decode(&wrong_tag),
        Err(RequestError::BadTag { .. })
    ));
    assert!(matches!(
        DecisionRequest::decode(&encoded(br#"{"a":1}"#, &[], b"ag\xffent")),
        Err(RequestError::NotUtf8 { field, .. }) if field == "actor"
    ));
    assert!(matches!(
        DecisionRequest::decode(&encoded(br#"{"a": 1}"#, &[], b"agent")),
        Err(RequestError::NonCanonicalParams { .. })
    ));
    assert!(matches!(
        DecisionRequest::decode(&encoded(br#"{"b":1,"a":2}"#, &[], b"agent")),
        Err(RequestError::NonCanonicalParams { .. })
    ));
    assert!(matches!(
        DecisionRequest::decode(&encoded(b"{not json", &[], b"agent")),
        Err(RequestError::NonCanonicalParams { .. })
    ));
    assert!(matches!(
        DecisionRequest::decode(&encoded(b"[1]", &[], b"agent")),
        Err(RequestError::Params(ParamsError::NotAnObject { .. }))
    ));
    assert!(matches!(
        DecisionRequest::decode(&encoded(br#"{}"#, &[(b"b", 1), (b"a", 2)], b"agent")),
        Err(RequestError::ResourcesUnsorted { name, .. }) if name == "a"
    ));
    assert!(matches!(
        DecisionRequest::decode(&encoded(br#"{}"#, &[(b"a", 1), (b"a", 2)], b"agent")),
        Err(RequestError::ResourcesUnsorted { .. })
    ));
    // Well-formed bytes of an invalid request: decode validates too.
    assert!(matches!(
        DecisionRequest::decode(&encoded(br#"{}"#, &[], b"")),
        Err(RequestError::Empty { field }) if field == "actor"
    ));
    // A count beyond the limit is refused before reading items.
    let mut many = b"senatus/request/v1\0".to_vec();
    for s in [&b"p"[..], b"t", b"a", b"t", b"{}"] {
        put_str(&mut many, s);
    }
    many.extend_from_slice(&0u16.to_be_bytes());
    many.extend_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        DecisionRequest::decode(&many),
        Err(RequestError::TooMany { count, .. }) if count == u32::MAX as usize
    ));
    // A length prefix beyond the input is truncation, not an allocation.
    let mut huge = b"senatus/request/v1\0".to_vec();
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        DecisionRequest::decode(&huge),
        Err(RequestError::Truncated { field, .. }) if field == "surface"
    ));
}

/// Rough cost of one evaluation; prints only (run with `--release
/// --nocapture`), never asserts on time.
#[test]
fn evaluation_cost_report() {
    let e = evaluator();
    let requests = [
        (
            "transfer permit",
            transfer(50_000, "EUR", "acct-supplier-7"),
        ),
        (
            "export deny (pii, external)",
            export(
                "contacts of alice@example.org",
                "https://upload.partner.example/in",
                10,
            ),
        ),
        ("mutate silence", mutate("ops-agent-1")),
        (
            "invalid params",
            request("payments", "transfer", json!({ "amount": "1" })),
        ),
    ];
    let rounds = 2_000u32;
    for (name, r) in &requests {
        let start = std::time::Instant::now();
        for i in 0..rounds {
            std::hint::black_box(e.evaluate(r, NOW + u64::from(i)));
        }
        println!(
            "evaluate {name}: {:?} per decision",
            start.elapsed() / rounds
        );
    }
}
