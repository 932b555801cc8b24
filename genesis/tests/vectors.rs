//! Pins the byte strings of docs/PROTOCOL.md to the files in docs/vectors/.
//!
//! The vectors are generated from a seeded ceremony, so they are the same on
//! every run. To regenerate after a deliberate protocol change:
//! `SENATUS_WRITE_VECTORS=1 cargo test -p senatus-genesis --test vectors`,
//! then update PROTOCOL.md and review the diff.

use std::path::PathBuf;

use rand::SeedableRng as _;
use rand_chacha::ChaCha20Rng;
use senatus_genesis::ceremony::{Ceremony, CeremonyParams, NodeAddrs};
use senatus_genesis::lock::lock_digest;
use senatus_genesis::policy::clause_digest;
use senatus_genesis::{Genesis, PolicyLayer, Seal};
use serde_json::{Value, json};

fn vectors_dir() -> PathBuf {
    PathBuf::from(
        // At run time: cargo sets it to this checkout, while a binary reused
        // from a shared target dir may have another checkout compiled in.
        &std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../docs/vectors")
}

fn check_or_write(name: &str, value: &Value) {
    let path = vectors_dir().join(name);
    let text = format!("{}\n", serde_json::to_string_pretty(value).expect("json"));
    if std::env::var_os("SENATUS_WRITE_VECTORS").is_some() {
        std::fs::create_dir_all(vectors_dir()).expect("mkdir");
        std::fs::write(&path, &text).expect("write vector");
        return;
    }
    let pinned = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("missing vector {}: {e}", path.display()));
    assert_eq!(
        pinned,
        text,
        "{} no longer matches the code; if the protocol changed on purpose, regenerate \
         (see this file's header) and update docs/PROTOCOL.md",
        path.display()
    );
}

fn seeded_ceremony() -> Ceremony {
    let params = CeremonyParams {
        chain_id: "senatus-vectors".into(),
        threshold: 3,
        nodes: (1..=5)
            .map(|i| NodeAddrs {
                peer: format!("10.0.0.{i}:7000"),
                api: format!("10.0.0.{i}:7001"),
                metrics: format!("10.0.0.{i}:7002"),
            })
            .collect(),
        policy: PolicyLayer::example(),
        created_at_ms: 1_767_225_600_000,
    };
    Ceremony::run(params, &mut ChaCha20Rng::seed_from_u64(2026)).expect("ceremony")
}

#[test]
fn genesis_vector() {
    let c = seeded_ceremony();
    // Two runs with the same seed give the same bytes (determinism).
    assert_eq!(seeded_ceremony().genesis, c.genesis);
    let g: &Genesis = &c.genesis;
    g.verify().expect("verifies");
    let seal0 = Seal::genesis(g);
    let v1 = &g.body.validators[0];
    let lock = lock_digest(
        &g.digest(),
        &seal0.digest(),
        &g.body.policy_digest,
        v1.id,
        &v1.identity_key,
        &v1.verifying_share,
    );
    let value = json!({
        "description": "A 5-validator genesis from a seeded ceremony. Rebuild genesis_signing_bytes from the genesis JSON (PROTOCOL.md section 3), hash it, verify the signature; rebuild seal 0 (section 4) and the lock digest of node 1 (section 5).",
        "genesis": serde_json::to_value(g).expect("genesis json"),
        "genesis_signing_bytes": hex::encode(g.body.signing_bytes()),
        "genesis_digest": g.digest().to_hex(),
        "seal0_signing_bytes": hex::encode(seal0.signing_bytes()),
        "seal0_digest": seal0.digest().to_hex(),
        "lock_node1": {
            "node_id": v1.id.get(),
            "identity_key": v1.identity_key.to_string(),
            "verifying_share": v1.verifying_share.to_string(),
            "lock_digest": lock.to_hex(),
        },
    });
    check_or_write("genesis-v1.json", &value);
}

#[test]
fn policy_layer_vector() {
    // The helper's unit tests pin a hand-written minimal layer byte by
    // byte; this pins the bundled example an auditor will meet first.
    let example = PolicyLayer::example();
    let files: serde_json::Map<String, Value> = example
        .files()
        .iter()
        .map(|(p, b)| {
            (
                p.clone(),
                Value::String(String::from_utf8(b.clone()).expect("utf-8 layer")),
            )
        })
        .collect();
    let clauses: serde_json::Map<String, Value> = example
        .files()
        .iter()
        .filter_map(|(p, b)| {
            let id = p.strip_prefix("policies/")?.strip_suffix(".cedar")?;
            Some((id.to_string(), Value::String(clause_digest(id, b).to_hex())))
        })
        .collect();
    let value = json!({
        "description": "The bundled example policy layer: its files, canonical bytes (PROTOCOL.md section 2), digest, and each clause digest.",
        "files": files,
        "canonical_bytes": hex::encode(example.canonical_bytes()),
        "policy_digest": example.digest().to_hex(),
        "clause_digests": clauses,
    });
    check_or_write("policy-layer-v1.json", &value);
    // Round trip through the transport form.
    let back = PolicyLayer::from_canonical_bytes(&example.canonical_bytes()).expect("decode");
    assert_eq!(back.digest(), example.digest());
}
