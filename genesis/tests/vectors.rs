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

/// PROTOCOL.md 1.1: what every Ed25519 verifier in senatus accepts and
/// refuses. Each refused case is one a lax verifier (RFC 8032 without the
/// extra rules, as OpenSSL's) may accept.
#[test]
fn ed25519_vector() {
    use ed25519_dalek::{Signature, Signer as _, SigningKey};
    use senatus_genesis::ed25519::{KeyError, verifying_key};
    let key = SigningKey::from_bytes(&[42; 32]);
    let public = key.verifying_key().to_bytes();
    let message = b"senatus ed25519 vector".to_vec();
    let signature = key.sign(&message).to_bytes();
    let strict = |k: &[u8; 32], sig: &[u8; 64], msg: &[u8]| -> Result<(), String> {
        verifying_key(k)
            .map_err(|e| e.to_string())?
            .verify_strict(msg, &Signature::from_bytes(sig))
            .map_err(|_| "signature does not verify".to_string())
    };
    strict(&public, &signature, &message).expect("the accepted case");

    let hex32 = |s: &str| -> [u8; 32] { hex::decode(s).expect("hex").try_into().expect("32") };
    let identity = hex32("0100000000000000000000000000000000000000000000000000000000000000");
    let mut forged = [0u8; 64];
    forged[..32].copy_from_slice(&identity);
    // S + L: the same scalar, non-canonically encoded.
    let l: [u8; 32] = hex32("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
    let mut s_plus_l = signature;
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(s_plus_l[32 + i]) + u16::from(l[i]) + carry;
        s_plus_l[32 + i] = v as u8;
        carry = v >> 8;
    }
    let small_r = {
        let mut sig = signature;
        sig[..32].copy_from_slice(&identity);
        sig
    };
    let mut rejected = Vec::new();
    for (why, k, sig, msg) in [
        (
            "small-order key (the identity) with R = identity, S = 0: verifies any message under a lax verifier",
            identity,
            forged,
            b"any message at all".to_vec(),
        ),
        (
            "small-order key of order 2",
            hex32("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
            forged,
            b"any message at all".to_vec(),
        ),
        (
            "non-canonical key encoding (y = p + 1, the identity again)",
            hex32("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
            forged,
            b"any message at all".to_vec(),
        ),
        ("non-canonical S (S + L)", public, s_plus_l, message.clone()),
        (
            "small-order R (the identity)",
            public,
            small_r,
            message.clone(),
        ),
    ] {
        let err = strict(&k, &sig, &msg).expect_err(why);
        rejected.push(json!({
            "why": why,
            "public_key": hex::encode(k),
            "signature": hex::encode(sig),
            "message": hex::encode(&msg),
            "error": err,
        }));
    }
    assert_eq!(verifying_key(&identity).err(), Some(KeyError::SmallOrder));
    let value = json!({
        "description": "Ed25519 as every senatus verifier takes it (PROTOCOL.md 1.1): the public key a canonical encoding of a point not of small order, R canonical and not of small order, S < L, the cofactorless equation. accepted verifies; each of rejected must be refused, though a lax RFC 8032 verifier may accept some (the first verifies any message under OpenSSL).",
        "accepted": {
            "public_key": hex::encode(public),
            "signature": hex::encode(signature),
            "message": hex::encode(&message),
        },
        "rejected": rejected,
    });
    check_or_write("ed25519-v1.json", &value);
}
