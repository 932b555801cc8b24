//! Pins the state digest of docs/PROTOCOL.md 19.1 to
//! docs/vectors/state-v1.json: a record, a redemption and the request
//! vector's decision batch applied from the genesis vector's digest, with
//! the state digest after each. The digests are computed here a second
//! time from the spelled-out byte layout, independently of `State`.
//! Regenerate deliberately with
//! `SENATUS_WRITE_VECTORS=1 cargo test -p senatus-replica --test state_vector`.

use std::path::PathBuf;

use senatus_genesis::codec::{Digest, Encoder};
use senatus_quorum::batch::DecisionBatch;
use senatus_replica::command::Command;
use senatus_replica::ledger::EntryKind;
use senatus_replica::records::{MemRecords, REDEMPTION_OBJECT};
use senatus_replica::state::State;
use serde_json::{Value, json};

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

    let mut redemption = Encoder::new(REDEMPTION_OBJECT, 1);
    redemption
        .bytes(&[7; 16])
        .digest(&Digest([1; 32]))
        .digest(&Digest([2; 32]));
    let commands = [
        Command::new(EntryKind::Record, b"state vector record".to_vec()),
        Command::new(EntryKind::Redemption, redemption.finish()),
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
            "hash": fx.entry.hash.to_hex(),
            "redeemed": redeemed,
            "idempotency": idem,
            "nonce_chain": { "count": nonce_count, "digest": nonces.to_hex() },
            "idempotency_chain": { "count": idem_count, "digest": idems.to_hex() },
            "state_digest": fx.state_digest.to_hex(),
        }));
    }
    let vector = json!({
        "description": "The state digest (PROTOCOL.md 19.1) before and after each of three commands applied from the genesis vector's digest, without amendments (amend_digest is 32 zero bytes): a record, a redemption of nonce 07..07, and the request vector's decision batch.",
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
