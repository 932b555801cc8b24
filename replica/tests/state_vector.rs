//! Pins the state digest of docs/PROTOCOL.md 19.1 to
//! docs/vectors/state-v1.json: a record, a redemption (15.2, version 2: the
//! token vector's leaf 0 with the presentation vector's hand-off, redeemed
//! by broker-1) and the request vector's decision batch applied from the
//! genesis vector's digest, with the state digest after each. The digests
//! are computed here a second time from the spelled-out byte layout,
//! independently of `State`. Regenerate deliberately with
//! `SENATUS_WRITE_VECTORS=1 cargo test -p senatus-replica --test state_vector`.

use std::path::PathBuf;

use senatus_genesis::Key32;
use senatus_genesis::codec::{Digest, Encoder};
use senatus_genesis::registry::{Identity, Registry, Role};
use senatus_quorum::auth::{CallAuth, call_signing_bytes};
use senatus_quorum::batch::DecisionBatch;
use senatus_quorum::presentation::{Presentation, token_wire_digest};
use senatus_quorum::token::Token;
use senatus_replica::command::Command;
use senatus_replica::ledger::EntryKind;
use senatus_replica::records::{MemRecords, REDEEM_METHOD, REDEMPTION_OBJECT, Redemption};
use senatus_replica::state::State;
use serde_json::{Value, json};

/// The broker's secret seed in this vector: 32 bytes of 0xb1 (published
/// here; it is in no shipped registry).
const BROKER_SEED: [u8; 32] = [0xb1; 32];

fn vectors_dir() -> PathBuf {
    PathBuf::from(
        &std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../docs/vectors")
}

fn load(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(vectors_dir().join(name)).expect(name))
        .expect("json")
}

/// One chain step, as PROTOCOL 19.1 spells it.
fn step(object: &str, chain: &Digest, write: impl FnOnce(&mut Encoder)) -> Digest {
    let mut e = Encoder::new(object, 1);
    e.digest(chain);
    write(&mut e);
    e.digest_of()
}

#[test]
fn state_vector() {
    let gd = Digest::from_hex(
        load("genesis-v1.json")["genesis_digest"]
            .as_str()
            .expect("str"),
    )
    .expect("digest");
    let batch_hex = load("request-v1.json")["batch"]["batch_bytes"]
        .as_str()
        .expect("str")
        .to_string();
    let batch_bytes = hex::decode(&batch_hex).expect("hex");
    let batch = DecisionBatch::decode(&batch_bytes).expect("batch");

    // The redemption: the token vector's leaf 0, handed to broker-1 by the
    // presentation vector, and broker-1's signed Redeem call on it.
    let token_hex = load("token-v1.json")["leaves"][0]["token_wire"]
        .as_str()
        .expect("str")
        .to_string();
    let token_bytes = hex::decode(&token_hex).expect("hex");
    let token = Token::from_bytes(&token_bytes).expect("the token vector's token");
    let pv = load("presentation-v1.json");
    let presentation_bytes = hex::decode(pv["presentation"].as_str().expect("str")).expect("hex");
    let presentation = Presentation::decode(&presentation_bytes).expect("presentation");
    // It presents the token by its wire bytes (PROTOCOL 10.3).
    assert_eq!(
        presentation.token_digest,
        senatus_genesis::sha3(&token_bytes)
    );
    assert_eq!(presentation.token_digest, token_wire_digest(&token));
    let broker_key = ed25519_dalek::SigningKey::from_bytes(&BROKER_SEED);
    let broker_signed_at_ms = presentation.presented_at_ms + 500;
    let call = CallAuth::sign(
        &broker_key,
        &gd,
        REDEEM_METHOD,
        &presentation_bytes,
        broker_signed_at_ms,
    );
    let redemption = Redemption {
        token_bytes: token_bytes.clone(),
        token: token.clone(),
        presentation: presentation.clone(),
        broker: call.clone(),
    };
    let redemption_bytes = redemption.encode();
    assert_eq!(
        Redemption::decode(&redemption_bytes).as_ref(),
        Ok(&redemption)
    );
    // The redemption a governed state would take: under a registry where
    // the agent-7 key acts as the token's acme/agent-1 (as in the
    // presentation vector) and broker-1 guards payments.
    let registry = Registry::new(vec![
        Identity {
            name: "agent-7".into(),
            role: Role::Agent,
            key: presentation.key,
            tenant: Some("acme".into()),
            actors: vec!["agent-1".into()],
            surfaces: Vec::new(),
        },
        Identity {
            name: "broker-1".into(),
            role: Role::Broker,
            key: Key32(broker_key.verifying_key().to_bytes()),
            tenant: None,
            actors: Vec::new(),
            surfaces: vec!["payments".into()],
        },
    ])
    .expect("registry");
    assert_eq!(redemption.check(&registry, &gd), Ok("broker-1".to_string()));
    // Spelled out (PROTOCOL 15.2).
    let mut spelled = Encoder::new(REDEMPTION_OBJECT, 2);
    spelled
        .bytes(&token_bytes)
        .bytes(&presentation_bytes)
        .fixed32(&call.key.0)
        .u64(broker_signed_at_ms)
        .fixed64(&call.signature);
    assert_eq!(spelled.finish(), redemption_bytes);
    let redemption_json = json!({
        "token_source": "token-v1.json leaves[0]",
        "token": token_hex,
        "presentation_source": "presentation-v1.json",
        "presentation": hex::encode(&presentation_bytes),
        "broker": {
            "name": "broker-1",
            "secret_seed": hex::encode(BROKER_SEED),
            "key": call.key.to_string(),
            "method": REDEEM_METHOD,
            "signed_at_ms": broker_signed_at_ms,
            "signing_bytes": hex::encode(call_signing_bytes(
                &gd,
                REDEEM_METHOD,
                &presentation_bytes,
                broker_signed_at_ms,
            )),
            "signature": hex::encode(call.signature),
        },
    });

    let commands = [
        Command::new(EntryKind::Record, b"state vector record".to_vec()),
        Command::new(EntryKind::Redemption, redemption_bytes),
        Command::new(EntryKind::Decision, batch_bytes.clone()),
    ];

    let mut state = State::new(gd, None);
    let mut records = MemRecords::new();
    let zero = Digest([0; 32]);
    let (mut nonces, mut nonce_count) = (zero, 0u64);
    let (mut idems, mut idem_count) = (zero, 0u64);
    let empty = state.digest();
    let mut entries = Vec::new();
    for c in &commands {
        let fx = state.apply(&records, c).expect("applies");
        records.absorb(&fx);
        let redeemed = fx.redeemed.as_ref().map(|(nonce, index)| {
            nonces = step("state-nonce", &nonces, |e| {
                e.bytes(nonce).u64(*index);
            });
            nonce_count += 1;
            json!({ "nonce": hex::encode(nonce), "index": index })
        });
        let idem: Vec<Value> = fx
            .idempotency
            .iter()
            .map(|(key, r)| {
                idems = step("state-idempotency", &idems, |e| {
                    e.bytes(key)
                        .u64(r.ledger_index)
                        .u32(r.position)
                        .digest(&r.request_digest);
                });
                idem_count += 1;
                let rq = &batch.requests[r.position as usize];
                json!({
                    "agent_key": rq.key.to_string(),
                    "tenant": rq.request.tenant,
                    "actor": rq.request.actor,
                    "idempotency_key": rq.request.idempotency_key,
                    "key": hex::encode(key),
                    "ledger_index": r.ledger_index,
                    "position": r.position,
                    "request_digest": r.request_digest.to_hex(),
                })
            })
            .collect();
        // The state digest, from the spelled-out layout.
        let mut e = Encoder::new("state", 1);
        e.u64(fx.entry.index)
            .digest(&fx.entry.hash)
            .digest(&zero)
            .u64(nonce_count)
            .digest(&nonces)
            .u64(idem_count)
            .digest(&idems);
        assert_eq!(fx.state_digest, e.digest_of(), "entry {}", fx.entry.index);
        entries.push(json!({
            "index": fx.entry.index,
            "kind": fx.entry.kind.code(),
            "payload": hex::encode(&fx.entry.payload),
            "redemption": (fx.entry.kind == EntryKind::Redemption).then(|| redemption_json.clone()),
            "hash": fx.entry.hash.to_hex(),
            "redeemed": redeemed,
            "idempotency": idem,
            "nonce_chain": { "count": nonce_count, "digest": nonces.to_hex() },
            "idempotency_chain": { "count": idem_count, "digest": idems.to_hex() },
            "state_digest": fx.state_digest.to_hex(),
        }));
    }
    let vector = json!({
        "description": "The state digest (PROTOCOL.md 19.1) before and after each of three commands applied from the genesis vector's digest, without amendments (amend_digest is 32 zero bytes): a record; a redemption (PROTOCOL.md 15.2, senatus/redemption/v2) of the token vector's leaf 0 with the presentation vector's hand-off by agent-7 to broker-1 and broker-1's signed Redeem call (secret seed b1 x 32, body the presentation bytes), redeeming that token's nonce; and the request vector's decision batch.",
        "genesis_digest": gd.to_hex(),
        "empty_state_digest": empty.to_hex(),
        "entries": entries,
    });
    let text = serde_json::to_string_pretty(&vector).expect("json") + "\n";
    let path = vectors_dir().join("state-v1.json");
    if std::env::var_os("SENATUS_WRITE_VECTORS").is_some() {
        std::fs::write(&path, &text).expect("write");
    }
    assert_eq!(
        std::fs::read_to_string(&path).expect("state vector"),
        text,
        "docs/vectors/state-v1.json no longer matches the code"
    );
}
