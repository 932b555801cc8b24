//! Pins the ledger entry hash of docs/PROTOCOL.md (section "Ledger") to
//! docs/vectors/ledger-v1.json: three entries chained from the genesis
//! vector's digest. Regenerate deliberately with
//! `SENATUS_WRITE_VECTORS=1 cargo test -p senatus-node --test vectors`.

use std::path::PathBuf;

use senatus_genesis::Digest;
use senatus_node::ledger::{EntryKind, LedgerEntry, LedgerHead, verify_chain};
use serde_json::{Value, json};

fn vectors_dir() -> PathBuf {
    PathBuf::from(
        // At run time: cargo sets it to this checkout, while a binary reused
        // from a shared target dir may have another checkout compiled in.
        &std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../docs/vectors")
}

#[test]
fn ledger_vector() {
    let genesis_vec: Value = serde_json::from_str(
        &std::fs::read_to_string(vectors_dir().join("genesis-v1.json")).expect("genesis vector"),
    )
    .expect("json");
    let gd =
        Digest::from_hex(genesis_vec["genesis_digest"].as_str().expect("str")).expect("digest");
    let payloads: [(EntryKind, &[u8]); 3] = [
        (EntryKind::Record, b"first operator record"),
        (EntryKind::Record, b""),
        (EntryKind::Decision, &[0x00, 0xff, 0x10]),
    ];
    let mut head = LedgerHead::genesis(gd);
    let mut entries = Vec::new();
    for (kind, p) in payloads {
        let e = LedgerEntry::next(&head, kind, p.to_vec());
        head = e.head();
        entries.push(e);
    }
    assert_eq!(verify_chain(entries.iter(), gd).expect("chain"), head.hash);
    let value = json!({
        "description": "Three ledger entries chained from the genesis vector's digest (PROTOCOL.md, Ledger). 'encoded' is the hash pre-image followed by the 32-byte hash.",
        "genesis_digest": gd.to_hex(),
        "entries": entries.iter().map(|e| json!({
            "index": e.index,
            "kind": e.kind.code(),
            "payload": hex::encode(&e.payload),
            "prev_hash": e.prev_hash.to_hex(),
            "hash": e.hash.to_hex(),
            "encoded": hex::encode(e.encode()),
        })).collect::<Vec<_>>(),
    });
    let path = vectors_dir().join("ledger-v1.json");
    let text = format!("{}\n", serde_json::to_string_pretty(&value).expect("json"));
    if std::env::var_os("SENATUS_WRITE_VECTORS").is_some() {
        std::fs::write(&path, &text).expect("write");
        return;
    }
    let pinned = std::fs::read_to_string(&path).expect("ledger vector present");
    assert_eq!(
        pinned, text,
        "docs/vectors/ledger-v1.json no longer matches the code"
    );
}
